package events_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/events"
)

func benchEvent(b *testing.B) events.Envelope {
	e := events.Envelope{ID: uuid.Must(uuid.NewV7()), MeetingID: "meeting-0001", Version: 7, Type: events.TypeAccessGranted,
		Time: time.Unix(1_800_000_000, 123456789).UTC(), Actor: "host-1", CommandID: "0192d8a4-5b1f-7c3e-9a0b-123456789abc", Schema: 1,
		Payload: &events.AccessGranted{Users: []string{"viewer-0001", "viewer-0002"}}, Seq: 99}
	if err := e.Seal(events.Hash{1}); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkMarshal measures encoding one event in the wire format.
func BenchmarkMarshal(b *testing.B) {
	e := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Marshal(&e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshal measures decoding one event from the wire format.
func BenchmarkUnmarshal(b *testing.B) {
	e := benchEvent(b)
	data, err := events.Marshal(&e)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}
