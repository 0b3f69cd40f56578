package aggregate

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/productdb/stage/events"
)

// ErrBadSnapshot is wrapped by the error of [UnmarshalState] for data that is
// not a snapshot of the meeting written by [State.MarshalBinary]: truncated,
// altered, of another format version or of another meeting.
var ErrBadSnapshot = errors.New("aggregate: bad snapshot")

// snapMagic opens every snapshot; snapFormat is the format's version,
// raised whenever the encoding changes (an old snapshot is then refused,
// and the state folded from the log again).
const (
	snapMagic  = "stsn"
	snapFormat = 3 // 2: the command window keys commands by actor and id; 3: stage controls
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes the whole state (version, hash, participants, the
// policies' state and the command window) as a snapshot that
// [UnmarshalState] restores exactly. The encoding is canonical (equal states
// encode to equal bytes), versioned and checksummed. It never fails.
func (s *State) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 128+len(s.members)*48+len(s.waitlist)*32+(len(s.bans)+len(s.denied))*32+len(s.recent.ring)*20)
	b = append(b, snapMagic...)
	b = binary.AppendUvarint(b, snapFormat)
	b = appendString(b, s.meetingID)
	b = binary.AppendUvarint(b, s.version)
	b = append(b, s.lastHash[:]...)
	b = appendTime(b, s.lastTime)

	st := s.settings
	b = binary.AppendVarint(b, int64(st.MaxOnStage))
	for _, d := range []time.Duration{st.SeatOfferTTL, st.InvitationTTL, st.SpeakingSlot, st.RequestCooldown, st.ReconnectGrace, st.RequestTTL} {
		b = binary.AppendVarint(b, int64(d))
	}
	b = append(b, flags(st.StartBackstage, st.AllowBringOnStage, false))
	b = append(b, byte(s.phase))
	b = appendTime(b, s.phaseSince)
	b = append(b, boolByte(s.reqClosed))
	b = appendTime(b, s.reqSwitchAt)

	ids := sortedKeys(s.members)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		m := s.members[id]
		b = appendString(b, m.UserID)
		b = appendString(b, string(m.Permissions.StageAccess))
		b = append(b, flags(m.Permissions.AcceptStageRequests, m.CoHost, m.Invited), byte(m.Status))
		b = appendTime(b, m.Since)
		b = appendTime(b, m.RequestedAt)
		b = binary.AppendUvarint(b, m.requestVersion)
		b = appendTime(b, m.DisconnectedAt)
	}

	b = binary.AppendUvarint(b, uint64(len(s.waitlist)))
	for _, w := range s.waitlist {
		b = appendString(b, w.user)
		b = appendTime(b, w.since)
		b = append(b, boolByte(w.offered))
		b = appendTime(b, w.offeredAt)
	}

	ids = sortedKeys(s.bans)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		ban := s.bans[id]
		b = appendString(b, id)
		b = appendString(b, ban.UserID)
		b = appendTime(b, ban.Since)
		b = appendTime(b, ban.Until)
	}

	ids = sortedKeys(s.denied)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = appendString(b, id)
		b = appendTime(b, s.denied[id])
	}

	b = binary.AppendUvarint(b, uint64(len(s.recent.ring)))
	for _, a := range s.recent.ring {
		b = append(b, a.key[:]...)
		b = binary.AppendUvarint(b, a.first)
		b = binary.AppendUvarint(b, a.last)
		b = append(b, boolByte(a.lapsed))
	}
	b = binary.AppendUvarint(b, uint64(s.recent.next))

	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// UnmarshalState restores the state of meetingID from a snapshot written by
// [State.MarshalBinary]. Data that is not such a snapshot of that meeting
// (truncated, altered, of another format version, or inconsistent) returns
// an error wrapping [ErrBadSnapshot]; it never panics.
//
// A snapshot says nothing of the log it came from: check that the log's
// event at the restored Version has the restored LastHash before trusting
// it, then apply the later events with [Evolve].
func UnmarshalState(meetingID string, data []byte) (*State, error) {
	if len(data) < len(snapMagic)+4 || string(data[:len(snapMagic)]) != snapMagic {
		return nil, badSnapshot("not a snapshot")
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, badSnapshot("checksum mismatch")
	}
	d := decoder{b: body[len(snapMagic):]}
	if f := d.uvarint(); d.err == nil && f != snapFormat {
		return nil, badSnapshot("format %d, want %d", f, snapFormat)
	}
	s := NewState(meetingID)
	if id := d.string(); d.err == nil && id != meetingID {
		return nil, badSnapshot("snapshot of meeting %q, not %q", id, meetingID)
	}
	s.version = d.uvarint()
	copy(s.lastHash[:], d.bytes(len(s.lastHash)))
	s.lastTime = d.time()

	s.settings.MaxOnStage = int(d.varint())
	for _, p := range []*time.Duration{&s.settings.SeatOfferTTL, &s.settings.InvitationTTL,
		&s.settings.SpeakingSlot, &s.settings.RequestCooldown, &s.settings.ReconnectGrace, &s.settings.RequestTTL} {
		*p = time.Duration(d.varint())
	}
	s.settings.StartBackstage, s.settings.AllowBringOnStage, _ = d.flags()
	s.phase = Phase(d.byte())
	if s.phase != 0 && s.phase != PhaseLive && s.phase != PhaseEnded {
		d.fail("phase %d", s.phase)
	}
	s.phaseSince = d.time()
	s.reqClosed = d.bool()
	s.reqSwitchAt = d.time()
	if err := s.settings.Validate(); d.err == nil && err != nil {
		d.fail("settings: %v", err)
	}

	// The members are restored into one slice and their ids into one
	// string, and the map is sized once: a few allocations for a meeting of
	// any size, not several per member (a 100,000-member meeting restores in
	// a fraction of the time).
	n := d.count()
	ms := make([]Member, n)
	offs := make([]int, 0, n+1)
	var idBytes []byte
	var prevID []byte
	for i := 0; i < n && d.err == nil; i++ {
		m := &ms[i]
		id := d.rawString()
		offs = append(offs, len(idBytes))
		idBytes = append(idBytes, id...)
		m.Permissions.StageAccess = access(d.rawString())
		m.Permissions.AcceptStageRequests, m.CoHost, m.Invited = d.flags()
		m.Status = Status(d.byte())
		m.Since, m.RequestedAt = d.time(), d.time()
		m.requestVersion = d.uvarint()
		m.DisconnectedAt = d.time()
		if d.err != nil {
			break
		}
		if i > 0 && string(id) <= string(prevID) {
			d.fail("members out of order: %q after %q", id, prevID)
		}
		if m.Status < OffStage || m.Status > OnStage {
			d.fail("member %q has status %d", id, m.Status)
		}
		prevID = id
	}
	if d.err == nil {
		offs = append(offs, len(idBytes))
		all := string(idBytes)
		s.members = make(map[string]*Member, n)
		for i := range ms {
			m := &ms[i]
			m.UserID = all[offs[i]:offs[i+1]]
			s.members[m.UserID] = m
			if m.Status == OnStage {
				s.onStage++
			}
			if m.Status == RequestedToJoinStage {
				s.requested++
			}
			if !m.DisconnectedAt.IsZero() {
				s.disconnected++
			}
			s.index(m)
			s.indexHost(m)
		}
	}

	n = d.count()
	for i := 0; i < n && d.err == nil; i++ {
		w := waiter{user: d.string(), since: d.time(), offered: d.bool(), offeredAt: d.time()}
		if w.offered && i > 0 && !s.waitlist[i-1].offered {
			d.fail("seat offer to %q behind a waiter without one", w.user)
		}
		s.waitlist = append(s.waitlist, w)
	}

	n = d.count()
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		id := d.string()
		ban := Ban{UserID: d.string(), Since: d.time(), Until: d.time()}
		if d.err == nil && i > 0 && id <= prev {
			d.fail("bans out of order: %q after %q", id, prev)
		}
		prev = id
		s.bans[id] = ban
	}

	n = d.count()
	prev = ""
	for i := 0; i < n && d.err == nil; i++ {
		id, t := d.string(), d.time()
		if d.err == nil && i > 0 && id <= prev {
			d.fail("denials out of order: %q after %q", id, prev)
		}
		prev = id
		s.denied[id] = t
	}

	n = d.count()
	if n > CommandWindow {
		d.fail("command window of %d, at most %d", n, CommandWindow)
	}
	for i := 0; i < n && d.err == nil; i++ {
		var a applied
		copy(a.key[:], d.bytes(len(a.key)))
		a.first, a.last = d.uvarint(), d.uvarint()
		a.lapsed = d.bool()
		s.recent.ring = append(s.recent.ring, a)
	}
	next := d.uvarint()
	if d.err == nil && (n < CommandWindow && next != uint64(n%CommandWindow) || n == CommandWindow && next >= CommandWindow) {
		d.fail("command window position %d of %d", next, n)
	}
	s.recent.next = int(next)
	s.rebuildRequests()
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d bytes after the snapshot", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

func badSnapshot(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadSnapshot}, args...)...)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, cmp.Compare)
	return ks
}

// flags packs three booleans in one byte (bits 0, 1, 2).
func flags(a, b, c bool) byte { return boolByte(a) | boolByte(b)<<1 | boolByte(c)<<2 }

// flags reads a byte written by the function flags.
func (d *decoder) flags() (a, b, c bool) {
	v := d.byte()
	if v > 7 {
		d.fail("flags %#x", v)
	}
	return v&1 != 0, v&2 != 0, v&4 != 0
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// access returns the constant for a known StageAccess, so that a restored
// state shares its strings.
func access(a []byte) events.StageAccess {
	switch string(a) {
	case string(events.Allowed):
		return events.Allowed
	case string(events.CanRequest):
		return events.CanRequest
	case string(events.NotAllowed):
		return events.NotAllowed
	}
	return events.StageAccess(a)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime writes t as Unix seconds and nanoseconds; the zero time
// round-trips to the zero time. Zones are not kept: times restore in UTC.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// decoder reads a snapshot; after the first error every read returns zero
// values and d.err keeps that error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = badSnapshot(format, args...)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad or truncated number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad or truncated number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("truncated")
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) byte() byte {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bad boolean")
	return false
}

func (d *decoder) string() string { return string(d.rawString()) }

// rawString reads a string's bytes without copying them.
func (d *decoder) rawString() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("string of %d bytes, %d left", n, len(d.b))
		return nil
	}
	return d.bytes(int(n))
}

// count reads the length of a list, each of whose entries takes at least
// one byte: a length beyond the bytes left is an error, not an allocation.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("list of %d entries, %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail("nanoseconds %d", nsec)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
