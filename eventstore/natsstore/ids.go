package natsstore

import (
	"encoding/base64"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/productdb/stage/events"
)

// How a meeting id becomes part of a NATS name. The store owns two forms,
// both defined on every id events.ValidateID accepts, both reversible.
//
// The subject token (SubjectToken): meeting m's events are on
// "<prefix>.<SubjectToken(m)>". Every byte that a subject token may not
// hold, or that ids could not hold before ids were allowed '.', '*', '>'
// and white space, is written as '*' and two upper-case hex digits; every
// other byte is itself. The bytes escaped are '*' itself, '.', '>', the
// ASCII control characters and space (0x00-0x20, 0x7F), and every byte of
// a non-ASCII rune that is a control character, white space or U+FFFD, or
// of invalid UTF-8. Hence:
//
//   - An id that was valid before (no '.', '*', '>', control character,
//     white space or U+FFFD) has no byte to escape: its token is the id
//     itself, its subject the one it always had, and old streams keep
//     reading.
//   - No two ids share a token: '*' is always escaped, so a token decodes
//     one way only (MeetingOfToken). And an escaped token holds a '*',
//     which no id valid before could hold, so it never names an old
//     meeting either.
//   - A token is one literal subject token: not empty, no '.', no white
//     space, no NUL, valid UTF-8 without U+FFFD, and never a lone '*' or
//     '>' (a '*' inside a longer token is a literal to NATS).
//
// For example "bob@example.com" is on "stage.events.bob@example*2Ecom",
// "a b" on "stage.events.a*20b", ">" on "stage.events.*3E", and "ünï.cödé"
// on "stage.events.ünï*2Ecödé".
//
// The KV key form (meetingKey) names a meeting in the snapshot bucket, the
// marks bucket ("m." and the key), the snapshot object store (the key, "/",
// the version, "/", a unique id) and the checkpoint stream's subjects
// ("<stream>.<key>"): the id itself where it is made of [A-Za-z0-9_=/-]
// only, else "x." and the id in unpadded URL-safe base64. A plain key holds
// no '.', an encoded one always does: the two forms cannot collide, for any
// id. It predates ids with dots and is kept as it was, so old snapshots,
// marks and checkpoints keep their keys.
//
// The command index keys are hashes of the meeting id and the command key,
// and name no meeting.

// SubjectToken returns the subject token of meetingID: meeting m's events
// are on the subject "<prefix>.<SubjectToken(m)>". An id with none of '.',
// '*', '>', white space, control characters or U+FFFD (every id that was
// valid before those were allowed) is its own token; in any other, each
// byte of those is written '*' and two upper-case hex digits ("a.b" is
// "a*2Eb"). The mapping is injective; [MeetingOfToken] reverses it.
func SubjectToken(meetingID string) string {
	i := 0
	for i < len(meetingID) {
		c := meetingID[i]
		if c < utf8.RuneSelf {
			if tokenEscape[c] {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(meetingID[i:])
		if escapeRune(r) {
			break
		}
		i += n
	}
	if i == len(meetingID) {
		return meetingID
	}
	var b strings.Builder
	b.Grow(len(meetingID) + 8)
	b.WriteString(meetingID[:i])
	for i < len(meetingID) {
		c := meetingID[i]
		if c < utf8.RuneSelf {
			if tokenEscape[c] {
				writeEscape(&b, c)
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(meetingID[i:])
		if escapeRune(r) {
			for j := range n {
				writeEscape(&b, meetingID[i+j])
			}
		} else {
			b.WriteString(meetingID[i : i+n])
		}
		i += n
	}
	return b.String()
}

// MeetingOfToken returns the meeting id whose [SubjectToken] is token, and
// false when no valid id (events.ValidateID) has that token: a '*' not
// followed by two upper-case hex digits, an escape of a byte that needs
// none, a byte that needs one, an empty token, or one that decodes to an
// id too long or with a control character.
func MeetingOfToken(token string) (string, bool) {
	if token == "" {
		return "", false
	}
	if !strings.Contains(token, "*") {
		return token, events.ValidateID(token) == nil && SubjectToken(token) == token
	}
	b := make([]byte, 0, len(token))
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c != '*' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(token) {
			return "", false
		}
		hi, ok1 := unhex(token[i+1])
		lo, ok2 := unhex(token[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	id := string(b)
	// Canonical only: the token an id has, not another spelling of it.
	if events.ValidateID(id) != nil || SubjectToken(id) != token {
		return "", false
	}
	return id, true
}

// MeetingOfSubject returns the meeting whose events are on subject in a
// stream with the subject prefix prefix (the inverse of "<prefix>." and
// [SubjectToken]), and false when the subject names no meeting.
func MeetingOfSubject(prefix, subject string) (string, bool) {
	tok, ok := strings.CutPrefix(subject, prefix+".")
	if !ok {
		return "", false
	}
	return MeetingOfToken(tok)
}

// tokenEscape[c] is true for the ASCII bytes SubjectToken escapes.
var tokenEscape = func() (t [utf8.RuneSelf]bool) {
	for c := range utf8.RuneSelf {
		t[c] = c <= ' ' || c == 0x7F || c == '.' || c == '*' || c == '>'
	}
	return t
}()

// escapeRune reports whether SubjectToken escapes the bytes of the
// non-ASCII rune r (utf8.RuneError for a byte of invalid UTF-8).
func escapeRune(r rune) bool {
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r)
}

const upperHex = "0123456789ABCDEF"

func writeEscape(b *strings.Builder, c byte) {
	b.WriteByte('*')
	b.WriteByte(upperHex[c>>4])
	b.WriteByte(upperHex[c&0xF])
}

// unhex decodes one upper-case hex digit.
func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// meetingKey is the KV key form of a meeting (see the top of this file):
// its id where the id is made of [A-Za-z0-9_=/-] only, else "x." and the
// id in unpadded URL-safe base64. A plain key holds no '.', an encoded one
// always does, so the two forms cannot collide.
func meetingKey(meetingID string) string {
	for i := 0; i < len(meetingID); i++ {
		c := meetingID[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '=' || c == '/') {
			return "x." + base64.RawURLEncoding.EncodeToString([]byte(meetingID))
		}
	}
	return meetingID
}

// meetingOfKey is the meeting id of a KV key form (see meetingKey), and
// false when key is no meeting's.
func meetingOfKey(key string) (string, bool) {
	if b64, ok := strings.CutPrefix(key, "x."); ok {
		b, err := base64.RawURLEncoding.DecodeString(b64)
		if err != nil || meetingKey(string(b)) != key {
			return "", false
		}
		return string(b), true
	}
	return key, key != "" && meetingKey(key) == key
}
