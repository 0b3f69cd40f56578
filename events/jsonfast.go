package events

// A hand-written JSON encoder and strict decoder for the wire format. The
// encoder writes exactly the bytes encoding/json writes for the same values
// (see appendJSONString); the decoder accepts what the encoding/json decoder
// with DisallowUnknownFields accepts, with three deliberate tightenings (see
// Unmarshal): member names must match exactly (encoding/json also matches
// case-insensitively), a name may not repeat within one object, and nothing
// but white space may follow the event.

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/uuid"
)

// jsonSafe[c] is true for the ASCII bytes that encoding/json writes as they
// are in a string (with its default HTML escaping): not a control character,
// '"', '\\', '<', '>' or '&'.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

const lowerHex = "0123456789abcdef"

// appendJSONString appends s as a JSON string exactly as encoding/json writes
// it: '"' and '\\' escaped with a backslash, \b \f \n \r \t by name, other
// control characters and '<', '>', '&' as \u00XX, U+2028 and U+2029 as
// \u2028 and \u2029, and each byte of invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	i := 0
	// Skip 8 safe bytes at a time.
	for len(s)-i >= 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if (x|
			(x-0x2020202020202020)|
			hasZeroByte(x^0x2222222222222222)| // '"'
			hasZeroByte(x^0x5c5c5c5c5c5c5c5c)| // '\\'
			hasZeroByte(x^0x3c3c3c3c3c3c3c3c)| // '<'
			hasZeroByte(x^0x3e3e3e3e3e3e3e3e)| // '>'
			hasZeroByte(x^0x2626262626262626))&0x8080808080808080 != 0 { // '&'
			break
		}
		i += 8
	}
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', lowerHex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONUUID appends u as uuid.UUID.MarshalText writes it, quoted.
func appendJSONUUID(b []byte, u uuid.UUID) []byte {
	b = append(b, '"')
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, lowerHex[c>>4], lowerHex[c&0xf])
	}
	return append(b, '"')
}

// appendJSONHash appends h as Hash.MarshalText writes it, quoted.
func appendJSONHash(b []byte, h *Hash) []byte {
	b = append(b, '"')
	b = hex.AppendEncode(b, h[:])
	return append(b, '"')
}

// appendJSONTime appends t in UTC as time.Time.MarshalJSON writes it. Like
// MarshalJSON it fails for a year outside 0 to 9999.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return b, fmt.Errorf("events: time %s: year outside of range [0,9999]", t)
	}
	b = append(b, '"')
	b = appendRFC3339NanoUTC(b, t)
	return append(b, '"'), nil
}

// appendRFC3339NanoUTC appends t (in UTC, year 0 to 9999) as
// t.AppendFormat(b, time.RFC3339Nano) does.
func appendRFC3339NanoUTC(b []byte, t time.Time) []byte {
	sec := t.Unix()
	days := sec / 86400
	if sec%86400 < 0 {
		days--
	}
	secOfDay := int(sec - days*86400)
	// The proleptic Gregorian date of days since 1970-01-01 (the "civil
	// from days" algorithm).
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := int(z - era*146097)
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	year := yoe + int(era)*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := doy - (153*mp+2)/5 + 1
	month := mp + 3
	if mp >= 10 {
		month = mp - 9
	}
	if month <= 2 {
		year++
	}
	two := func(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
	b = two(two(b, year/100), year%100)
	b = two(append(b, '-'), month)
	b = two(append(b, '-'), day)
	b = two(append(b, 'T'), secOfDay/3600)
	b = two(append(b, ':'), secOfDay/60%60)
	b = two(append(b, ':'), secOfDay%60)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

// appendJSONBool appends true or false.
func appendJSONBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// appendJSONStrings appends list as encoding/json writes a []string: null
// when nil.
func appendJSONStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// decoder reads JSON from data strictly: every value it reads is checked
// against the JSON grammar as it goes, and it never reads past data.
type decoder struct {
	data []byte
	off  int
	// scratch holds the last string that needed unescaping.
	scratch []byte
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: "+format, append([]any{ErrMalformed, d.off}, args...)...)
}

// syntax reports a JSON syntax error at the current offset.
func (d *decoder) syntax(what string) error {
	if d.off >= len(d.data) {
		return d.errorf("unexpected end of JSON input (%s)", what)
	}
	return d.errorf("invalid character %q (%s)", d.data[d.off], what)
}

// wrongType reports a value of the wrong JSON type for a field.
func (d *decoder) wrongType(field, want string) error {
	return d.errorf("%s: want %s", field, want)
}

// skipWS skips JSON white space.
func (d *decoder) skipWS() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, or 0 at the end.
func (d *decoder) peek() byte {
	if d.off < len(d.data) && d.data[d.off] > ' ' { // compact JSON: no space
		return d.data[d.off]
	}
	d.skipWS()
	if d.off < len(d.data) {
		return d.data[d.off]
	}
	return 0
}

// literal consumes lit (true, false or null) at the current offset.
func (d *decoder) literal(lit string) error {
	if len(d.data)-d.off < len(lit) || string(d.data[d.off:d.off+len(lit)]) != lit {
		return d.syntax("in literal " + lit)
	}
	d.off += len(lit)
	return nil
}

// stringBytes reads a JSON string at the current offset (which holds '"')
// and returns its contents, unescaped as encoding/json unescapes them
// (invalid UTF-8 and unpaired surrogates become U+FFFD). The result is
// either a slice of data or of d.scratch: valid until the next call.
func (d *decoder) stringBytes() ([]byte, error) {
	start := d.off + 1
	i := start
	// Skip 8 plain bytes at a time: none a control character, '"', '\\'
	// or non-ASCII.
	for len(d.data)-i >= 8 {
		x := binary.LittleEndian.Uint64(d.data[i:])
		if (x|
			(x-0x2020202020202020)|
			hasZeroByte(x^0x2222222222222222)|
			hasZeroByte(x^0x5c5c5c5c5c5c5c5c))&0x8080808080808080 != 0 {
			break
		}
		i += 8
	}
	ascii := true
	for ; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			s := d.data[start:i]
			if !ascii && !utf8.Valid(s) {
				return d.unescape(start)
			}
			d.off = i + 1
			return s, nil
		case c == '\\':
			return d.unescape(start)
		case c < 0x20:
			d.off = i
			return nil, d.syntax("in string literal")
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	d.off = len(d.data)
	return nil, d.syntax("in string literal")
}

// hasZeroByte has the high bit set in (at least) the first byte of x that
// is zero, and in no byte before it.
func hasZeroByte(x uint64) uint64 {
	return (x - 0x0101010101010101) &^ x
}

// hex4 decodes the 4 hex digits at data[i:], or returns -1.
func hex4(data []byte, i int) rune {
	if len(data)-i < 4 {
		return -1
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescape is the slow path of stringBytes, for strings with escapes or
// invalid UTF-8; start is the offset after the opening quote.
func (d *decoder) unescape(start int) ([]byte, error) {
	b := d.scratch[:0]
	i := start
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.off = i + 1
			d.scratch = b
			return b, nil
		case c == '\\':
			if i+1 >= len(d.data) {
				d.off = len(d.data)
				return nil, d.syntax("in string escape")
			}
			switch e := d.data[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(d.data, i+2)
				if r < 0 {
					d.off = i
					return nil, d.errorf("invalid \\u escape in string literal")
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if len(d.data)-i >= 6 && d.data[i] == '\\' && d.data[i+1] == 'u' {
						if r2 := hex4(d.data, i+2); r2 >= 0 {
							if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
								b = utf8.AppendRune(b, dec)
								i += 6
								continue
							}
						}
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				d.off = i + 1
				return nil, d.syntax("in string escape code")
			}
			i += 2
		case c < 0x20:
			d.off = i
			return nil, d.syntax("in string literal")
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			b = utf8.AppendRune(b, r)
			i += size
		}
	}
	d.off = len(d.data)
	d.scratch = b
	return nil, d.syntax("in string literal")
}

// number reads a JSON number at the current offset and returns its text.
func (d *decoder) number() ([]byte, error) {
	data, start, i := d.data, d.off, d.off
	digits := func() bool {
		j := i
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case !digits():
		d.off = i
		return nil, d.syntax("in numeric literal")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if !digits() {
			d.off = i
			return nil, d.syntax("after decimal point in numeric literal")
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if !digits() {
			d.off = i
			return nil, d.syntax("in exponent of numeric literal")
		}
	}
	d.off = i
	return data[start:i], nil
}

// uintValue reads a JSON number that must be an integer in uint64 range (as
// strconv.ParseUint decides, like encoding/json), or null for 0.
func (d *decoder) uintValue(field string) (uint64, error) {
	switch c := d.peek(); {
	case c == 'n':
		return 0, d.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		num, err := d.number()
		if err != nil {
			return 0, err
		}
		var v uint64
		for _, c := range num {
			if c < '0' || c > '9' || v > (1<<64-1-uint64(c-'0'))/10 {
				return 0, d.errorf("%s: cannot store %s in a uint64", field, num)
			}
			v = v*10 + uint64(c-'0')
		}
		return v, nil
	default:
		return 0, d.wrongType(field, "a number")
	}
}

// intValue reads a JSON number that must be an integer in int range (as
// strconv.ParseInt decides, like encoding/json), or null for 0.
func (d *decoder) intValue(field string) (int, error) {
	switch c := d.peek(); {
	case c == 'n':
		return 0, d.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		num, err := d.number()
		if err != nil {
			return 0, err
		}
		if len(num) == 1 { // a single digit, the schema's case
			return int(num[0] - '0'), nil
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || int64(int(v)) != v {
			return 0, d.errorf("%s: cannot store %s in an int", field, num)
		}
		return int(v), nil
	default:
		return 0, d.wrongType(field, "a number")
	}
}

// boolValue reads true or false, or null for false.
func (d *decoder) boolValue(field string) (bool, error) {
	switch d.peek() {
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return false, d.literal("null")
	default:
		return false, d.wrongType(field, "true or false")
	}
}

// stringOrNull reads a JSON string, or null (reported as null=true).
func (d *decoder) stringOrNull(field string) (s []byte, null bool, err error) {
	switch d.peek() {
	case '"':
		s, err = d.stringBytes()
		return s, false, err
	case 'n':
		return nil, true, d.literal("null")
	default:
		return nil, false, d.wrongType(field, "a string")
	}
}

// stringValue reads a JSON string, or null for "".
func (d *decoder) stringValue(field string) (string, error) {
	s, _, err := d.stringOrNull(field)
	if err != nil || len(s) == 0 {
		return "", err
	}
	return string(s), nil
}

// uuidValue reads a UUID as uuid.UUID.UnmarshalText does, or null for
// uuid.Nil.
func (d *decoder) uuidValue(field string) (uuid.UUID, error) {
	const n = len("01234567-89ab-cdef-0123-456789abcdef")
	if d.peek() == '"' && len(d.data)-d.off > n+1 && d.data[d.off+n+1] == '"' {
		// The common case: the 36 bytes are the whole string.
		if u, err := uuid.ParseBytes(d.data[d.off+1 : d.off+n+1]); err == nil {
			d.off += n + 2
			return u, nil
		}
	}
	s, null, err := d.stringOrNull(field)
	if err != nil || null {
		return uuid.Nil, err
	}
	u, err := uuid.ParseBytes(s)
	if err != nil {
		return uuid.Nil, d.errorf("%s: %v", field, err)
	}
	return u, nil
}

// hashValue reads a Hash as Hash.UnmarshalText does into h; null leaves h
// as it is.
func (d *decoder) hashValue(field string, h *Hash) error {
	const n = 2 * len(Hash{})
	if d.peek() == '"' && len(d.data)-d.off > n+1 && d.data[d.off+n+1] == '"' {
		// The common case: 64 hex digits are the whole string.
		if _, err := hex.Decode(h[:], d.data[d.off+1:d.off+n+1]); err == nil {
			d.off += n + 2
			return nil
		}
	}
	s, null, err := d.stringOrNull(field)
	if err != nil || null {
		return err
	}
	if err := h.UnmarshalText(s); err != nil {
		return d.errorf("%s: %v", field, err)
	}
	return nil
}

// timeValue reads a time as time.Time.UnmarshalJSON does (the raw string,
// with no unescaping), or null for the zero time.
func (d *decoder) timeValue(field string) (time.Time, error) {
	var t time.Time
	switch d.peek() {
	case 'n':
		return t, d.literal("null")
	case '"':
		start := d.off
		if _, err := d.stringBytes(); err != nil {
			return t, err
		}
		if t, ok := parseUTC(d.data[start+1 : d.off-1]); ok {
			return t, nil
		}
		if err := t.UnmarshalJSON(d.data[start:d.off]); err != nil {
			return time.Time{}, d.errorf("%s: %v", field, err)
		}
		return t, nil
	default:
		return t, d.wrongType(field, "an RFC 3339 string")
	}
}

// hasPlainString reports whether a JSON string holding exactly s, with no
// escapes, is at the current offset.
func (d *decoder) hasPlainString(s string) bool {
	end := d.off + 1 + len(s)
	return end < len(d.data) && d.data[end] == '"' && string(d.data[d.off+1:end]) == s
}

// object reads a JSON object whose member names must be among names (at
// most 64 of them), each at most once, and calls member with the name's index to read each value.
// With nullOK, null is accepted (and member never called).
func (d *decoder) object(what string, names []string, nullOK bool, member func(i int) error) error {
	switch d.peek() {
	case '{':
		d.off++
	case 'n':
		if nullOK {
			return d.literal("null")
		}
		fallthrough
	default:
		return d.wrongType(what, "an object")
	}
	if d.peek() == '}' {
		d.off++
		return nil
	}
	var seen uint64
	next := 0 // the name expected next, in the order Marshal writes
	for {
		if d.peek() != '"' {
			return d.syntax("looking for beginning of object key string")
		}
		i := next
		if n := len(names) - i; n > 0 && d.hasPlainString(names[i]) {
			// The name expected next, as Marshal writes it (the names need
			// no escaping, so these bytes are the whole string).
			d.off += len(names[i]) + 2
		} else {
			key, err := d.stringBytes()
			if err != nil {
				return err
			}
			// Look from the name expected next on, wrapping around: a
			// member that Marshal left out costs one more comparison.
			found := false
			for range names {
				if i >= len(names) {
					i = 0
				}
				if names[i] == string(key) {
					found = true
					break
				}
				i++
			}
			if !found {
				return d.errorf("%s: unknown field %q", what, key)
			}
		}
		key := names[i]
		next = i + 1
		if seen&(1<<i) != 0 {
			return d.errorf("%s: duplicate field %q", what, key)
		}
		seen |= 1 << i
		if d.peek() != ':' {
			return d.syntax("after object key")
		}
		d.off++
		if err := member(i); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.off++
		case '}':
			d.off++
			return nil
		default:
			return d.syntax("after object key:value pair")
		}
	}
}

// arrayStart begins reading an array, or null. more reports whether an
// element follows.
func (d *decoder) arrayStart(what string) (null, more bool, err error) {
	switch d.peek() {
	case '[':
		d.off++
	case 'n':
		return true, false, d.literal("null")
	default:
		return false, false, d.wrongType(what, "an array")
	}
	if d.peek() == ']' {
		d.off++
		return false, false, nil
	}
	return false, true, nil
}

// arrayNext consumes the ',' or ']' after an element; more reports whether
// another element follows.
func (d *decoder) arrayNext() (more bool, err error) {
	switch d.peek() {
	case ',':
		d.off++
		return true, nil
	case ']':
		d.off++
		return false, nil
	default:
		return false, d.syntax("after array element")
	}
}

// stringList reads an array of strings (null elements read as "", as
// encoding/json does), or null for a nil slice. An empty array is an empty,
// non-nil slice. The strings share one allocation.
func (d *decoder) stringList(what string) ([]string, error) {
	null, more, err := d.arrayStart(what)
	if err != nil || null {
		return nil, err
	}
	var textBuf [256]byte
	var endsBuf [16]int
	text, ends := textBuf[:0], endsBuf[:0]
	for more {
		s, _, err := d.stringOrNull(what)
		if err != nil {
			return nil, err
		}
		text = append(text, s...)
		ends = append(ends, len(text))
		if more, err = d.arrayNext(); err != nil {
			return nil, err
		}
	}
	list := make([]string, len(ends))
	all := string(text)
	start := 0
	for i, end := range ends {
		list[i], start = all[start:end], end
	}
	return list, nil
}

// skipValue reads any JSON value, checking its syntax, without recursion.
func (d *decoder) skipValue() error {
	// stack of open containers: '{' or '['; the grammar is checked with
	// the expectations below.
	var stackBuf [32]byte
	stack := stackBuf[:0]
	for {
		// Read one value (or open a container).
		switch c := d.peek(); {
		case c == '{':
			d.off++
			if d.peek() == '}' {
				d.off++
				break
			}
			stack = append(stack, '{')
			if err := d.memberKey(); err != nil {
				return err
			}
			continue
		case c == '[':
			d.off++
			if d.peek() == ']' {
				d.off++
				break
			}
			stack = append(stack, '[')
			continue
		case c == '"':
			if _, err := d.stringBytes(); err != nil {
				return err
			}
		case c == 't':
			if err := d.literal("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := d.literal("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := d.literal("null"); err != nil {
				return err
			}
		case c == '-' || ('0' <= c && c <= '9'):
			if _, err := d.number(); err != nil {
				return err
			}
		default:
			return d.syntax("looking for beginning of value")
		}
		// After a value: close containers or move to the next element.
		for {
			if len(stack) == 0 {
				return nil
			}
			top := stack[len(stack)-1]
			c := d.peek()
			if c == ',' {
				d.off++
				if top == '{' {
					if err := d.memberKey(); err != nil {
						return err
					}
				}
				break
			}
			if (top == '{' && c == '}') || (top == '[' && c == ']') {
				d.off++
				stack = stack[:len(stack)-1]
				continue
			}
			return d.syntax("after value")
		}
	}
}

// memberKey reads an object key and the colon after it.
func (d *decoder) memberKey() error {
	if d.peek() != '"' {
		return d.syntax("looking for beginning of object key string")
	}
	if _, err := d.stringBytes(); err != nil {
		return err
	}
	if d.peek() != ':' {
		return d.syntax("after object key")
	}
	d.off++
	return nil
}

// parseUTC parses the times Marshal writes, "2006-01-02T15:04:05Z" with an
// optional fraction of 1 to 9 digits, to exactly what time.Time.UnmarshalJSON
// returns for them. It reports false for anything else (which
// UnmarshalJSON may still accept: another zone, more fraction digits).
func parseUTC(s []byte) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || len(s) > len("2006-01-02T15:04:05.999999999Z") ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	num := func(b []byte) int {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				ok = false
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(s[0:4]), num(s[5:7]), num(s[8:10])
	hour, minute, sec := num(s[11:13]), num(s[14:16]), num(s[17:19])
	nsec := 0
	if frac := s[19 : len(s)-1]; len(frac) > 0 {
		if len(frac) < 2 || frac[0] != '.' {
			return time.Time{}, false
		}
		nsec = num(frac[1:])
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	if !ok || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	// Days since 1970-01-01 of the proleptic Gregorian date (the "days
	// from civil" algorithm).
	y := year
	if month <= 2 {
		y--
	}
	if y < 0 {
		return time.Time{}, false // the algorithm below needs y >= 0
	}
	era := y / 400 // year >= 0, so no negative division
	yoe := y - era*400
	mp := (month + 9) % 12
	doy := (153*mp+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := int64(era)*146097 + int64(doe) - 719468
	unix := days*86400 + int64(hour*3600+minute*60+sec)
	return time.Unix(unix, int64(nsec)).UTC(), true
}

// daysIn returns the number of days in month of year.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// appendJSONTimeAsIs appends t, in its own zone, as time.Time.MarshalJSON
// writes it, and fails where MarshalJSON fails.
func appendJSONTimeAsIs(b []byte, t time.Time) ([]byte, error) {
	if _, offset := t.Zone(); offset == 0 {
		// RFC 3339 writes any zero offset as Z: the UTC form.
		const year0, year10000 = -62167219200, 253402300800 // Unix seconds
		if u := t.UTC(); u.Unix() >= year0 && u.Unix() < year10000 {
			b = append(b, '"')
			b = appendRFC3339NanoUTC(b, u)
			return append(b, '"'), nil
		}
	}
	text, err := t.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return append(b, text...), nil
}

// appendJSONDuration appends d as a JSON string of time.Duration.String
// (its MarshalText), without allocating.
func appendJSONDuration(b []byte, d Duration) []byte {
	// The digits are written backwards from the end of buf, as
	// time.Duration.String does.
	var buf [32]byte
	w := len(buf)
	u := uint64(d)
	if d < 0 {
		u = -u
	}
	if u < uint64(time.Second) {
		// Less than a second: one unit, ns, µs or ms, with a fraction.
		var prec int
		w--
		buf[w] = 's'
		switch {
		case u == 0:
			return append(b, `"0s"`...)
		case u < uint64(time.Microsecond):
			w--
			buf[w] = 'n'
		case u < uint64(time.Millisecond):
			prec = 3
			w -= len("µ")
			copy(buf[w:], "µ")
		default:
			prec = 6
			w--
			buf[w] = 'm'
		}
		w, u = durationFrac(buf[:w], u, prec)
		w = durationInt(buf[:w], u)
	} else {
		// Hours, minutes and seconds with a fraction: "1h2m3.5s".
		w--
		buf[w] = 's'
		w, u = durationFrac(buf[:w], u, 9)
		w = durationInt(buf[:w], u%60)
		if u /= 60; u > 0 {
			w--
			buf[w] = 'm'
			w = durationInt(buf[:w], u%60)
			if u /= 60; u > 0 {
				w--
				buf[w] = 'h'
				w = durationInt(buf[:w], u)
			}
		}
	}
	if d < 0 {
		w--
		buf[w] = '-'
	}
	b = append(b, '"')
	b = append(b, buf[w:]...)
	return append(b, '"')
}

// durationFrac writes the last prec decimal digits of v before the end of
// buf as a fraction (".5"), without trailing zeros and without the point
// when they are all zero. It returns where it began and v without them.
func durationFrac(buf []byte, v uint64, prec int) (int, uint64) {
	w := len(buf)
	digits := false
	for range prec {
		digit := v % 10
		digits = digits || digit != 0
		if digits {
			w--
			buf[w] = byte(digit) + '0'
		}
		v /= 10
	}
	if digits {
		w--
		buf[w] = '.'
	}
	return w, v
}

// durationInt writes v in decimal before the end of buf and returns where
// it began.
func durationInt(buf []byte, v uint64) int {
	w := len(buf)
	for {
		w--
		buf[w] = byte(v%10) + '0'
		if v /= 10; v == 0 {
			return w
		}
	}
}

// durationValue reads a Duration as encoding/json does (a string for
// Duration.UnmarshalText), or null for 0.
func (d *decoder) durationValue(field string) (Duration, error) {
	s, null, err := d.stringOrNull(field)
	if err != nil || null {
		return 0, err
	}
	var v Duration
	if err := v.UnmarshalText(s); err != nil {
		return 0, d.errorf("%s: %v", field, err)
	}
	return v, nil
}

// wordValue is stringValue for the fields whose values are mostly a few
// words (statuses, reasons, lapse kinds and settings, stage access): those
// words come from constants, without allocating.
func (d *decoder) wordValue(field string) (string, error) {
	s, _, err := d.stringOrNull(field)
	if err != nil || len(s) == 0 {
		return "", err
	}
	switch string(s) {
	case "None":
		return "None", nil
	case "OffStage":
		return "OffStage", nil
	case "RequestedToJoinStage":
		return "RequestedToJoinStage", nil
	case "AcceptedToJoinStage":
		return "AcceptedToJoinStage", nil
	case "OnStage":
		return "OnStage", nil
	case "NotParticipant":
		return "NotParticipant", nil
	case "PermissionDenied":
		return "PermissionDenied", nil
	case "InvalidState":
		return "InvalidState", nil
	case "Disconnected":
		return "Disconnected", nil
	case string(Allowed):
		return string(Allowed), nil
	case string(CanRequest):
		return string(CanRequest), nil
	case string(NotAllowed):
		return string(NotAllowed), nil
	case string(InvitationExpired):
		return string(InvitationExpired), nil
	case string(SlotEnded):
		return string(SlotEnded), nil
	case string(SeatOfferLapsed):
		return string(SeatOfferLapsed), nil
	case string(GraceExpired):
		return string(GraceExpired), nil
	case string(BanExpired):
		return string(BanExpired), nil
	case "InvitationTTL":
		return "InvitationTTL", nil
	case "SpeakingSlot":
		return "SpeakingSlot", nil
	case "SeatOfferTTL":
		return "SeatOfferTTL", nil
	case "ReconnectGrace":
		return "ReconnectGrace", nil
	case "BanUntil":
		return "BanUntil", nil
	}
	return string(s), nil
}
