package events_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/productdb/stage/events"
)

// FuzzUnmarshal feeds arbitrary bytes to the decoder. It must never panic;
// what it refuses must wrap ErrMalformed; what it accepts must re-encode to
// bytes that decode to the same event (same encoding, same hash, same
// verdict from Verify).
//
// Run with: go test ./events -run '^$' -fuzz FuzzUnmarshal -fuzztime 1m
func FuzzUnmarshal(f *testing.F) {
	for _, e := range samples(f) {
		b, err := events.Marshal(&e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"schema":1}`,
		`{"schema":1,"id":"0192f0c4-7a3e-7b5c-8d9e-0123456789ab","meeting":"m","version":1,"type":"StageJoined",` +
			`"time":"2026-11-29T14:03:07Z","actor":"a","command":"c","payload":{},"prev":"` + zeroHex + `","hash":"` + zeroHex + `"}`,
		`{"schema":1,"id":"0192f0c4-7a3e-7b5c-8d9e-0123456789ab","meeting":"m","version":1,"type":"AccessGranted",` +
			`"time":"0000-01-01T00:30:00+01:00","command":"c","payload":{"users":[],"skipped":[]},"prev":"` + zeroHex + `","hash":"` + zeroHex + `"}`,
		`{"schema":1,"id":"0192f0c4-7a3e-7b5c-8d9e-0123456789ab","meeting":"m","version":1,"type":"Kicked",` +
			`"time":"9999-12-31T23:59:59-01:00","command":"c","payload":{"users":null},"prev":"` + zeroHex + `","hash":"` + zeroHex + `"}`,
		`{"SCHEMA":1,"Type":"StageLeft","payload":{"Declined":true}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := events.Unmarshal(data)
		if err != nil {
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		b, err := events.Marshal(&e)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", e, err)
		}
		e2, err := events.Unmarshal(b)
		if err != nil {
			t.Fatalf("cannot decode the re-encoding %s: %v", b, err)
		}
		b2, err := events.Marshal(&e2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b, b2)
		}
		h1, err1 := e.ComputeHash()
		h2, err2 := e2.ComputeHash()
		if err1 != nil || err2 != nil || h1 != h2 {
			t.Fatalf("hash changed in a round trip: %s, %v; %s, %v", h1, err1, h2, err2)
		}
		if (e.Verify() == nil) != (e2.Verify() == nil) {
			t.Fatal("Verify's verdict changed in a round trip")
		}
		if !e.Time.Equal(e2.Time) || e.ID != e2.ID || e.MeetingID != e2.MeetingID || e.Version != e2.Version ||
			e.Type != e2.Type || e.Actor != e2.Actor || e.CommandID != e2.CommandID || e.Hash != e2.Hash ||
			e.PrevHash != e2.PrevHash || e.Seq != e2.Seq {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", e, e2)
		}
	})
}

const zeroHex = "0000000000000000000000000000000000000000000000000000000000000000"
