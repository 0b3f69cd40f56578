package aggregate_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

var snapUsers = []string{"h", "a", "b", "c", "d", "e"}

// drawCommand draws any command a meeting might see, by any of a few users;
// most are rejected, which is fine: the accepted ones drive the state.
func drawCommand(t *rapid.T, i int) aggregate.Command {
	user := func(label string) string { return rapid.SampledFrom(snapUsers).Draw(t, label) }
	someUsers := func() []string {
		return rapid.SliceOfNDistinct(rapid.SampledFrom(snapUsers), 1, 3, rapid.ID[string]).Draw(t, "users")
	}
	perms := func() aggregate.Permissions {
		return aggregate.Permissions{
			StageAccess:         rapid.SampledFrom([]aggregate.StageAccess{aggregate.Allowed, aggregate.CanRequest, aggregate.NotAllowed}).Draw(t, "access"),
			AcceptStageRequests: rapid.Bool().Draw(t, "host"),
		}
	}
	dur := func(label string) time.Duration {
		return time.Duration(rapid.IntRange(0, 4).Draw(t, label)) * 10 * time.Second
	}
	var a aggregate.Action
	switch rapid.IntRange(0, 24).Draw(t, "kind") {
	case 0, 1:
		p := perms()
		if rapid.IntRange(0, 2).Draw(t, "makeHost") == 0 {
			p = aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
		}
		a = aggregate.AddParticipant{Participant: aggregate.Participant{UserID: user("user"), Permissions: p}}
	case 2:
		a = aggregate.RemoveParticipant{UserID: user("user")}
	case 3:
		a = aggregate.UpdatePermissions{UserID: user("user"), Permissions: perms()}
	case 4:
		a = aggregate.RequestAccess{}
	case 5:
		a = aggregate.CancelRequestAccess{}
	case 6:
		a = aggregate.GrantAccess{Users: someUsers()}
	case 7:
		a = aggregate.DenyAccess{Users: someUsers(), Reason: "no"}
	case 8, 9:
		a = aggregate.Join{}
	case 10:
		a = aggregate.Leave{}
	case 11:
		a = aggregate.Kick{Users: someUsers()}
	case 12:
		a = aggregate.Configure{Settings: aggregate.Settings{MaxOnStage: rapid.IntRange(0, 3).Draw(t, "cap"),
			SeatOfferTTL: dur("offer"), InvitationTTL: dur("invitation"), SpeakingSlot: dur("slot"),
			RequestCooldown: dur("cooldown"), ReconnectGrace: dur("grace"), RequestTTL: dur("requestTTL"),
			StartBackstage: rapid.Bool().Draw(t, "backstage"), AllowBringOnStage: rapid.Bool().Draw(t, "bring")}}
	case 13:
		var until time.Time
		if rapid.Bool().Draw(t, "timed") {
			until = t0.Add(time.Duration(rapid.IntRange(1, 100).Draw(t, "until")) * time.Second)
		}
		a = aggregate.BanFromStage{UserID: user("user"), Until: until}
	case 14:
		a = aggregate.LiftBan{UserID: user("user")}
	case 15:
		if rapid.Bool().Draw(t, "dis") {
			a = aggregate.Disconnect{UserID: user("user")}
		} else {
			a = aggregate.Reconnect{UserID: user("user")}
		}
	case 17:
		a = aggregate.StartStage{}
	case 18:
		a = aggregate.EndStage{}
	case 19:
		a = aggregate.CloseRequests{DenyPending: rapid.Bool().Draw(t, "deny")}
	case 20:
		a = aggregate.OpenRequests{}
	case 21:
		if rapid.Bool().Draw(t, "promote") {
			a = aggregate.PromoteCoHost{UserID: user("user")}
		} else {
			a = aggregate.DemoteCoHost{UserID: user("user")}
		}
	case 22:
		a = aggregate.DeclineInvitation{}
	case 23:
		a = aggregate.BringOnStage{UserID: user("user")}
	default:
		a = aggregate.Tick{}
	}
	id := fmt.Sprint("cmd-", i)
	if rapid.Bool().Draw(t, "uuidID") {
		id = uuid.NewString()
	}
	return aggregate.Command{ID: id, Actor: user("actor"), Action: a}
}

// drawLog decides and applies random commands from the empty meeting,
// returning the events in order.
func drawLog(t *rapid.T) []events.Envelope {
	s := aggregate.NewState("m")
	now := t0
	var log []events.Envelope
	for i, u := range snapUsers { // everyone starts in the meeting, "h" as host
		d, _ := aggregate.Decide(s, aggregate.Command{ID: fmt.Sprint("add-", i), Action: aggregate.AddParticipant{Participant: aggregate.Participant{
			UserID: u, Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: u == "h"}}}}, now)
		for j := range d.Events {
			e := &d.Events[j]
			e.ID = uuid.New()
			if err := e.Seal(s.LastHash()); err != nil {
				t.Fatal(err)
			}
			aggregate.Evolve(s, e)
			log = append(log, *e)
		}
	}
	for i := range 30 + rapid.IntRange(0, 120).Draw(t, "commands") {
		now = now.Add(time.Duration(rapid.IntRange(0, 15).Draw(t, "advance")) * time.Second)
		d, err := aggregate.Decide(s, drawCommand(t, i), now)
		if err != nil {
			continue
		}
		for j := range d.Events {
			e := &d.Events[j]
			e.ID = uuid.New()
			if err := e.Seal(s.LastHash()); err != nil {
				t.Fatal(err)
			}
			aggregate.Evolve(s, e)
			log = append(log, *e)
		}
	}
	return log
}

func TestState_SnapshotRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		log := drawLog(t)
		at := rapid.IntRange(0, len(log)).Draw(t, "snapshotAt")
		plain := aggregate.NewState("m")
		for i := range log[:at] {
			aggregate.Evolve(plain, &log[i])
		}
		data, err := plain.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		restored, err := aggregate.UnmarshalState("m", data)
		if err != nil {
			t.Fatalf("UnmarshalState: %v", err)
		}
		if !restored.Equal(plain) || !plain.Equal(restored) {
			t.Fatalf("restored state at version %d differs from the folded one", plain.Version())
		}
		again, _ := restored.MarshalBinary()
		if string(again) != string(data) {
			t.Fatal("the restored state encodes differently")
		}
		for i := range log[at:] {
			aggregate.Evolve(plain, &log[at+i])
			aggregate.Evolve(restored, &log[at+i])
		}
		if !restored.Equal(plain) {
			t.Fatalf("after folding the rest of the log (to version %d), the restored state differs", plain.Version())
		}
		if !aggregate.NextDeadline(restored).Equal(aggregate.NextDeadline(plain)) {
			t.Fatal("next deadlines differ")
		}
	})
}

func TestUnmarshalState_Rejects(t *testing.T) {
	l := hostAndUsers(t, aggregate.Settings{MaxOnStage: 1, SeatOfferTTL: time.Second}, "a", "b")
	l.ok(t0, "a", aggregate.Join{})
	l.do(t0, "b", aggregate.Join{})
	l.ok(t0, "h", aggregate.BanFromStage{UserID: "x"})
	data, err := l.s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := aggregate.UnmarshalState("m", data); err != nil || !s.Equal(l.s) {
		t.Fatalf("round trip: %v", err)
	}
	flipped := append([]byte(nil), data...)
	flipped[len(flipped)/2] ^= 1
	for name, tc := range map[string]struct {
		meeting string
		data    []byte
	}{
		"empty":         {"m", nil},
		"truncated":     {"m", data[:len(data)-1]},
		"flipped bit":   {"m", flipped},
		"other meeting": {"n", data},
		"trailing":      {"m", append(append([]byte(nil), data...), 0)},
		"not one":       {"m", []byte(`{"version":3}`)},
	} {
		if _, err := aggregate.UnmarshalState(tc.meeting, tc.data); !errors.Is(err, aggregate.ErrBadSnapshot) {
			t.Errorf("%s: got %v, want ErrBadSnapshot", name, err)
		}
	}
}

func TestState_SnapshotZeroTimes(t *testing.T) {
	s := aggregate.NewState("m")
	data, _ := s.MarshalBinary()
	r, err := aggregate.UnmarshalState("m", data)
	if err != nil || !r.Equal(s) || !r.LastTime().IsZero() || r.LastTime() != (time.Time{}) {
		t.Fatalf("empty state: %v, last time %v", err, r.LastTime())
	}
}

func FuzzUnmarshalState(f *testing.F) {
	l := hostAndUsers(&testing.T{}, aggregate.Settings{MaxOnStage: 1, ReconnectGrace: time.Second}, "a", "b")
	l.ok(t0, "a", aggregate.Join{})
	l.do(t0, "b", aggregate.Join{})
	l.ok(t0, "", aggregate.Disconnect{UserID: "a"})
	data, _ := l.s.MarshalBinary()
	f.Add(data)
	empty, _ := aggregate.NewState("m").MarshalBinary()
	f.Add(empty)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzSnapshot(t, data)
		if len(data) >= 4 { // the same bytes with a valid checksum, to get past it
			fixed := slices.Clone(data[:len(data)-4])
			fuzzSnapshot(t, binary.BigEndian.AppendUint32(fixed, crc32.Checksum(fixed, crc32.MakeTable(crc32.Castagnoli))))
		}
	})
}

func fuzzSnapshot(t *testing.T, data []byte) {
	{
		s, err := aggregate.UnmarshalState("m", data)
		if err != nil {
			if !errors.Is(err, aggregate.ErrBadSnapshot) {
				t.Fatalf("error %v does not wrap ErrBadSnapshot", err)
			}
			return
		}
		// A state that decodes is usable: it round-trips and the read
		// paths do not panic.
		again, _ := s.MarshalBinary()
		if r, err := aggregate.UnmarshalState("m", again); err != nil || !r.Equal(s) {
			t.Fatalf("a decoded snapshot does not round-trip: %v", err)
		}
		aggregate.NextDeadline(s)
		aggregate.At(s, t0.Add(time.Hour))
		s.Queue()
		s.Waitlist()
	}
}
