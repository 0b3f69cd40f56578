package events_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/events"
)

// verifyChain walks a meeting's log as a verifier does: versions 1, 2, 3,
// ..., each event's hash over its contents, each PrevHash the previous Hash.
func verifyChain(log []events.Envelope) error {
	var prev events.Hash
	for i := range log {
		e := &log[i]
		if e.Version != uint64(i+1) {
			return fmt.Errorf("position %d holds version %d", i+1, e.Version)
		}
		if e.PrevHash != prev {
			return fmt.Errorf("version %d: chain broken", e.Version)
		}
		if err := e.Verify(); err != nil {
			return err
		}
		prev = e.Hash
	}
	return nil
}

func TestSeal_chain(t *testing.T) {
	log := samples(t)
	if err := verifyChain(log); err != nil {
		t.Fatal(err)
	}
	if !log[0].PrevHash.IsZero() {
		t.Error("the first event links to something")
	}
	seen := map[events.Hash]bool{}
	for _, e := range log {
		if e.Hash.IsZero() || seen[e.Hash] {
			t.Errorf("version %d: hash %s is zero or repeated", e.Version, e.Hash)
		}
		seen[e.Hash] = true
	}
}

// TestVerify_edits changes one thing in a sealed event at a time: Verify
// must notice every edit.
func TestVerify_edits(t *testing.T) {
	edits := map[string]func(e *events.Envelope){
		"id":          func(e *events.Envelope) { e.ID = uuid.Must(uuid.NewV7()) },
		"meeting":     func(e *events.Envelope) { e.MeetingID = "webinar-43" },
		"version":     func(e *events.Envelope) { e.Version++ },
		"type":        func(e *events.Envelope) { e.Type = events.TypeAccessDenied },
		"time":        func(e *events.Envelope) { e.Time = e.Time.Add(time.Nanosecond) },
		"actor":       func(e *events.Envelope) { e.Actor = "mallory" },
		"no actor":    func(e *events.Envelope) { e.Actor = "" },
		"command":     func(e *events.Envelope) { e.CommandID = "other" },
		"correlation": func(e *events.Envelope) { e.CorrelationID = "" },
		"schema":      func(e *events.Envelope) { e.Schema = 2 },
		"prev":        func(e *events.Envelope) { e.PrevHash[0] ^= 1 },
		"a user added": func(e *events.Envelope) {
			p := *e.Payload.(*events.AccessGranted)
			p.Users = append(slices.Clone(p.Users), "mallory")
			e.Payload = &p
		},
		"a user renamed": func(e *events.Envelope) {
			p := *e.Payload.(*events.AccessGranted)
			p.Users = []string{"mallory", p.Users[1]}
			e.Payload = &p
		},
		"users reordered": func(e *events.Envelope) {
			p := *e.Payload.(*events.AccessGranted)
			p.Users = []string{p.Users[1], p.Users[0]}
			e.Payload = &p
		},
		"skip removed": func(e *events.Envelope) {
			p := *e.Payload.(*events.AccessGranted)
			p.Skipped = nil
			e.Payload = &p
		},
		// Field boundaries are length-prefixed: moving bytes from one
		// string to the next changes the hash.
		"bytes moved between fields": func(e *events.Envelope) {
			e.Actor, e.CommandID = e.Actor+e.CommandID[:1], e.CommandID[1:]
		},
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			e := samples(t)[5] // AccessGranted of bob, dave; skipped eve
			edit(&e)
			if err := e.Verify(); !errors.Is(err, events.ErrHashMismatch) {
				t.Errorf("Verify after editing the %s: %v", name, err)
			}
		})
	}
	t.Run("seq is not covered", func(t *testing.T) {
		e := samples(t)[5]
		e.Seq = 9999
		if err := e.Verify(); err != nil {
			t.Errorf("Verify after changing Seq: %v", err)
		}
	})
}

// TestVerify_forgery re-seals an edited event, as a forger who knows the
// algorithm would: the event verifies alone, but the chain breaks at the next
// event, and re-sealing the rest of the chain changes the last hash that
// anyone kept.
func TestVerify_forgery(t *testing.T) {
	log := samples(t)
	head := log[len(log)-1].Hash

	forged := slices.Clone(log)
	p := *forged[5].Payload.(*events.AccessGranted)
	p.Users = []string{"mallory"}
	forged[5].Payload = &p
	if err := forged[5].Seal(forged[4].Hash); err != nil {
		t.Fatal(err)
	}
	if err := forged[5].Verify(); err != nil {
		t.Fatalf("the re-sealed event itself: %v", err)
	}
	if err := verifyChain(forged); err == nil {
		t.Error("a re-sealed event in the middle went unnoticed")
	}
	for i := 6; i < len(forged); i++ {
		if err := forged[i].Seal(forged[i-1].Hash); err != nil {
			t.Fatal(err)
		}
	}
	if err := verifyChain(forged); err != nil {
		t.Fatalf("the fully re-sealed chain: %v", err)
	}
	if forged[len(forged)-1].Hash == head {
		t.Error("re-sealing the whole chain kept the head hash")
	}
}

func TestVerify_deleteInsertReorder(t *testing.T) {
	tests := map[string]func(log []events.Envelope) []events.Envelope{
		"delete the first": func(log []events.Envelope) []events.Envelope { return log[1:] },
		"delete one":       func(log []events.Envelope) []events.Envelope { return slices.Delete(log, 3, 4) },
		"duplicate one":    func(log []events.Envelope) []events.Envelope { return slices.Insert(log, 3, log[3]) },
		"swap two": func(log []events.Envelope) []events.Envelope {
			log[3], log[4] = log[4], log[3]
			return log
		},
		"swap and renumber": func(log []events.Envelope) []events.Envelope {
			log[3], log[4] = log[4], log[3]
			log[3].Version, log[4].Version = 4, 5
			return log
		},
		"insert a sealed event": func(log []events.Envelope) []events.Envelope {
			e := events.Envelope{ID: uuid.Must(uuid.NewV7()), MeetingID: "webinar-42", Version: 4, Type: events.TypeStageJoined,
				Time: t0, Actor: "mallory", CommandID: "x", Schema: 1, Payload: &events.StageJoined{}}
			if err := e.Seal(log[2].Hash); err != nil {
				t.Fatal(err)
			}
			return slices.Insert(log, 3, e)
		},
	}
	for name, tamper := range tests {
		t.Run(name, func(t *testing.T) {
			if err := verifyChain(tamper(samples(t))); err == nil {
				t.Error("tampering went unnoticed")
			}
		})
	}
}

func TestHash_text(t *testing.T) {
	h := samples(t)[0].Hash
	b, err := h.MarshalText()
	if err != nil || len(b) != 64 || string(b) != h.String() {
		t.Fatalf("MarshalText = %s, %v", b, err)
	}
	var back events.Hash
	if err := back.UnmarshalText(b); err != nil || back != h {
		t.Errorf("UnmarshalText: %s, %v", back, err)
	}
	for _, bad := range []string{"", "ab", string(b[:63]), string(b) + "0", "g" + string(b[1:])} {
		if err := back.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", bad)
		}
	}
}
