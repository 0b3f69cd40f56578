package replay_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"

	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/replay"
)

// FuzzParseReceipt: ParseReceipt never panics and refuses with an error
// wrapping ErrMalformedReceipt; what it accepts writes back to JSON that
// parses to the same JSON, and VerifyReceipt judges it without panicking,
// refusing with ErrReceiptInvalid.
func FuzzParseReceipt(f *testing.F) {
	log := webinar(f)
	r, err := replay.MakeReceipt(f.Context(), seq(log), log[0].MeetingID, 3)
	if err != nil {
		f.Fatal(err)
	}
	data, _ := json.Marshal(r)
	f.Add(data)
	// The same, anchored by a checkpoint of its head.
	pub, priv, _ := ed25519.GenerateKey(nil)
	c, err := checkpoint.Sign(priv, checkpoint.Checkpoint{MeetingID: r.Event.MeetingID, Version: r.Head.Version, Hash: r.Head.Hash, Time: log[len(log)-1].Time})
	if err != nil {
		f.Fatal(err)
	}
	r.Checkpoint = &c
	data, _ = json.Marshal(r)
	f.Add(data)
	f.Add([]byte(`{"receipt":1,"event":{},"links":[],"head":{"version":1,"hash":"00"}}`))
	f.Add([]byte(`{"receipt":1,"links":[{"version":2,"state":"","prefix":64,"tail":"AAAA","hash":""}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := replay.ParseReceipt(data)
		if err != nil {
			if !errors.Is(err, replay.ErrMalformedReceipt) {
				t.Fatalf("error %v does not wrap ErrMalformedReceipt", err)
			}
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("an accepted receipt does not marshal: %v", err)
		}
		back, err := replay.ParseReceipt(out)
		if err != nil {
			t.Fatalf("a written receipt does not parse: %v\n%s", err, out)
		}
		if again, _ := json.Marshal(back); !bytes.Equal(out, again) {
			t.Fatalf("round trip changed it:\n%s\n%s", out, again)
		}
		for _, key := range []ed25519.PublicKey{nil, pub} {
			if _, err := replay.VerifyReceipt(r, key); err != nil && !errors.Is(err, replay.ErrReceiptInvalid) {
				t.Fatalf("VerifyReceipt error %v does not wrap ErrReceiptInvalid", err)
			}
		}
	})
}
