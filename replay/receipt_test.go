package replay_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/replay"
)

// TestReceipt: receipts for the kick (version 10) and the denial (9) of
// signedWebinar, anchored at its checkpoint of version 14, verify offline
// with the key, alone and after a JSON round trip, and carry none of the
// events in between but the event itself.
func TestReceipt(t *testing.T) {
	log, cps, pub := signedWebinar(t)
	ctx := t.Context()
	kicks, err := replay.KicksAndDenials(seq(log), "bob")
	if err != nil || len(kicks) != 1 || kicks[0].Type != events.TypeKicked || kicks[0].Version != 10 {
		t.Fatalf("bob's kicks and denials: %v, %v; want the kick at version 10", kicks, err)
	}
	denials, _ := replay.KicksAndDenials(seq(log), "carol")
	if len(denials) != 1 || denials[0].Version != 9 {
		t.Fatalf("carol's: %v, want the denial at version 9", denials)
	}
	if all, _ := replay.KicksAndDenials(seq(log), ""); len(all) != 2 {
		t.Fatalf("every kick and denial: %d, want 2", len(all))
	}
	for _, ev := range []events.Envelope{kicks[0], denials[0]} {
		r, err := replay.MakeReceipt(ctx, seq(log), "w1", ev.Version, replay.ReceiptCheckpoints(pub, cps))
		if err != nil {
			t.Fatal(err)
		}
		if r.Checkpoint == nil || r.Head.Version != 14 || len(r.Links) != int(14-ev.Version) || r.Head.Hash != log[13].Hash {
			t.Fatalf("receipt of version %d: head %+v, %d links, checkpoint %v", ev.Version, r.Head, len(r.Links), r.Checkpoint)
		}
		v, err := replay.VerifyReceipt(r, pub)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Anchored || v.Version != ev.Version || v.Type != ev.Type || v.Head.Version != 14 || v.Key != checkpoint.KeyIDOf(pub) {
			t.Errorf("verdict %+v", v)
		}
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := replay.ParseReceipt(data)
		if err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		if _, err := replay.VerifyReceipt(back, pub); err != nil {
			t.Fatalf("after a JSON round trip: %v", err)
		}
		again, _ := json.Marshal(back)
		if !bytes.Equal(data, again) {
			t.Errorf("JSON round trip changed the receipt:\n%s\n%s", data, again)
		}
		// The events in between are not in it: no id, command id or time.
		for _, e := range log[ev.Version:14] {
			for _, s := range []string{e.ID.String(), e.CommandID, e.Time.Format(time.RFC3339Nano)} {
				if strings.Contains(string(data), s) {
					t.Errorf("receipt of version %d holds %q of version %d", ev.Version, s, e.Version)
				}
			}
		}
	}

	// Without checkpoints: the log's last event is the head, nothing anchors it.
	r, err := replay.MakeReceipt(ctx, seq(log), "w1", 10)
	if err != nil || r.Checkpoint != nil || r.Head.Version != 14 {
		t.Fatalf("unanchored: %+v, %v", r, err)
	}
	if v, err := replay.VerifyReceipt(r, nil); err != nil || v.Anchored {
		t.Errorf("unanchored receipt without a key: %+v, %v", v, err)
	}
	if _, err := replay.VerifyReceipt(r, pub); !errors.Is(err, replay.ErrReceiptInvalid) {
		t.Errorf("unanchored receipt with a key: %v, want ErrReceiptInvalid", err)
	}
	// A head of one's choice; the event as its own head.
	r, err = replay.MakeReceipt(ctx, seq(log), "w1", 10, replay.ReceiptHeadAt(12), replay.ReceiptCheckpoints(pub, cps))
	if err != nil || r.Head.Version != 12 || r.Checkpoint != nil || len(r.Links) != 2 {
		t.Fatalf("head at 12: %+v, %v", r, err)
	}
	if _, err := replay.VerifyReceipt(r, nil); err != nil {
		t.Error(err)
	}
	r, err = replay.MakeReceipt(ctx, seq(log), "w1", 14, replay.ReceiptCheckpoints(pub, cps))
	if err != nil || len(r.Links) != 0 || r.Checkpoint == nil {
		t.Fatalf("receipt of the head: %+v, %v", r, err)
	}
	if _, err := replay.VerifyReceipt(r, pub); err != nil {
		t.Error(err)
	}
	// The checkpoint of version 6 anchors a receipt of version 5.
	r, err = replay.MakeReceipt(ctx, seq(log), "w1", 5, replay.ReceiptCheckpoints(pub, cps))
	if err != nil || r.Head.Version != 14 || r.Checkpoint.Version != 14 {
		t.Fatalf("receipt of version 5: %+v, %v", r, err)
	}
	r, err = replay.MakeReceipt(ctx, seq(log), "w1", 5, replay.ReceiptHeadAt(6), replay.ReceiptCheckpoints(pub, cps))
	if err != nil || r.Checkpoint == nil || r.Checkpoint.Version != 6 {
		t.Fatalf("receipt of version 5 to 6: %+v, %v", r, err)
	}
	if _, err := replay.VerifyReceipt(r, pub); err != nil {
		t.Error(err)
	}

	// What cannot be made.
	for name, f := range map[string]func() (*replay.Receipt, error){
		"no such version": func() (*replay.Receipt, error) { return replay.MakeReceipt(ctx, seq(log), "w1", 99) },
		"version 0":       func() (*replay.Receipt, error) { return replay.MakeReceipt(ctx, seq(log), "w1", 0) },
		"head before": func() (*replay.Receipt, error) {
			return replay.MakeReceipt(ctx, seq(log), "w1", 10, replay.ReceiptHeadAt(9))
		},
		"head past the end": func() (*replay.Receipt, error) {
			return replay.MakeReceipt(ctx, seq(log), "w1", 10, replay.ReceiptHeadAt(20))
		},
		"unknown meeting": func() (*replay.Receipt, error) { return replay.MakeReceipt(ctx, seq(log), "w2", 1) },
		"broken chain": func() (*replay.Receipt, error) {
			cut := append(append([]events.Envelope(nil), log[:11]...), log[12:]...)
			return replay.MakeReceipt(ctx, seq(cut), "w1", 10)
		},
		"edited event": func() (*replay.Receipt, error) {
			ed := append([]events.Envelope(nil), log...)
			ed[11].CorrelationID = "edited"
			return replay.MakeReceipt(ctx, seq(ed), "w1", 10)
		},
	} {
		if _, err := f(); !errors.Is(err, replay.ErrNoReceipt) {
			t.Errorf("%s: %v, want ErrNoReceipt", name, err)
		}
	}
	if _, err := replay.MakeReceipt(ctx, seq(log), "bad\nid", 1); !errors.Is(err, events.ErrInvalidID) {
		t.Errorf("invalid meeting id: %v", err)
	}
}

// TestReceipt_tampered: every edit of a receipt fails to verify.
func TestReceipt_tampered(t *testing.T) {
	log, cps, pub := signedWebinar(t)
	good, err := replay.MakeReceipt(t.Context(), seq(log), "w1", 10, replay.ReceiptCheckpoints(pub, cps))
	if err != nil {
		t.Fatal(err)
	}
	clone := func() *replay.Receipt {
		data, _ := json.Marshal(good)
		r, err := replay.ParseReceipt(data)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	for name, edit := range map[string]func(r *replay.Receipt) ed25519.PublicKey{
		"edited event": func(r *replay.Receipt) ed25519.PublicKey {
			r.Event.Payload.(*events.Kicked).Users = []string{"mallory"}
			return pub
		},
		"edited and resealed event": func(r *replay.Receipt) ed25519.PublicKey {
			r.Event.Payload.(*events.Kicked).Users = []string{"mallory"}
			r.Event.Seal(r.Event.PrevHash)
			return pub
		},
		"removed link": func(r *replay.Receipt) ed25519.PublicKey {
			r.Links = append(r.Links[:1], r.Links[2:]...)
			return pub
		},
		"removed last link": func(r *replay.Receipt) ed25519.PublicKey {
			r.Links = r.Links[:len(r.Links)-1]
			return pub
		},
		"links swapped": func(r *replay.Receipt) ed25519.PublicKey {
			r.Links[0], r.Links[1] = r.Links[1], r.Links[0]
			r.Links[0].Version, r.Links[1].Version = r.Links[1].Version, r.Links[0].Version
			return pub
		},
		"link hash changed": func(r *replay.Receipt) ed25519.PublicKey {
			r.Links[1].Hash[0] ^= 1
			return pub
		},
		"link state changed": func(r *replay.Receipt) ed25519.PublicKey {
			r.Links[1].State[31] ^= 1
			return pub
		},
		"link tail changed": func(r *replay.Receipt) ed25519.PublicKey {
			r.Links[1].Tail = append(r.Links[1].Tail[:0:0], r.Links[1].Tail...)
			r.Links[1].Tail[0] ^= 1
			return pub
		},
		"link prefix changed": func(r *replay.Receipt) ed25519.PublicKey {
			r.Links[1].Prefix += 64
			return pub
		},
		"swapped head": func(r *replay.Receipt) ed25519.PublicKey {
			r.Head.Hash = log[12].Hash
			return pub
		},
		"head version moved": func(r *replay.Receipt) ed25519.PublicKey {
			r.Head.Version++
			return pub
		},
		"checkpoint of another version": func(r *replay.Receipt) ed25519.PublicKey {
			r.Checkpoint = &cps[0]
			return pub
		},
		"forged checkpoint signature": func(r *replay.Receipt) ed25519.PublicKey {
			r.Checkpoint.Sig[0] ^= 1
			return pub
		},
		"another key": func(r *replay.Receipt) ed25519.PublicKey { return otherPub },
		"no checkpoint, with a key": func(r *replay.Receipt) ed25519.PublicKey {
			r.Checkpoint = nil
			return pub
		},
	} {
		r := clone()
		key := edit(r)
		if _, err := replay.VerifyReceipt(r, key); !errors.Is(err, replay.ErrReceiptInvalid) {
			t.Errorf("%s: %v, want ErrReceiptInvalid", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := replay.VerifyReceipt(nil, pub); !errors.Is(err, replay.ErrReceiptInvalid) {
		t.Errorf("nil receipt: %v", err)
	}

	// Edits of the file itself: each fails to parse or to verify.
	data, _ := json.Marshal(good)
	for name, edit := range map[string]func(string) string{
		"event user renamed": func(s string) string { return strings.Replace(s, `"users":["bob"]`, `"users":["eve"]`, 1) },
		"a link dropped": func(s string) string {
			var m map[string]json.RawMessage
			json.Unmarshal([]byte(s), &m)
			var links []json.RawMessage
			json.Unmarshal(m["links"], &links)
			m["links"], _ = json.Marshal(append(links[:2:2], links[3:]...))
			b, _ := json.Marshal(m)
			return string(b)
		},
		"head hash swapped": func(s string) string {
			return strings.Replace(s, log[13].Hash.String(), log[12].Hash.String(), -1)
		},
		"unknown member": func(s string) string { return strings.Replace(s, `{"receipt":1`, `{"receipt":1,"x":2`, 1) },
		"trailing data":  func(s string) string { return s + "{}" },
		"format 2":       func(s string) string { return strings.Replace(s, `{"receipt":1`, `{"receipt":2`, 1) },
	} {
		s := edit(string(data))
		if s == string(data) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		r, err := replay.ParseReceipt([]byte(s))
		if err == nil {
			_, err = replay.VerifyReceipt(r, pub)
		}
		if !errors.Is(err, replay.ErrMalformedReceipt) && !errors.Is(err, replay.ErrReceiptInvalid) {
			t.Errorf("%s: %v, want it refused", name, err)
		}
	}
}
