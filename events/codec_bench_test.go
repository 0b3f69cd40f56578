package events

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// Benchmarks of the hand-written codec (Fast) side by side with the
// encoding/json reference it replaced (Ref), on the event of
// events/bench_test.go: go test -bench 'Fast|Ref' ./events

func codecBenchEvent(b *testing.B) Envelope {
	e := Envelope{ID: uuid.Must(uuid.NewV7()), MeetingID: "meeting-0001", Version: 7, Type: TypeAccessGranted,
		Time: time.Unix(1_800_000_000, 123456789).UTC(), Actor: "host-1", CommandID: "0192d8a4-5b1f-7c3e-9a0b-123456789abc", Schema: 1,
		Payload: &AccessGranted{Users: []string{"viewer-0001", "viewer-0002"}}, Seq: 99}
	if err := e.Seal(Hash{1}); err != nil {
		b.Fatal(err)
	}
	return e
}

// reportCPU reports the process CPU time per operation (cpu-ns/op) from
// start on, next to the wall-clock ns/op; call it after the loop.
func reportCPU(b *testing.B, start time.Duration) {
	if start > 0 && b.N > 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}

func BenchmarkFastMarshal(b *testing.B) { benchMarshal(b, Marshal) }
func BenchmarkRefMarshal(b *testing.B)  { benchMarshal(b, refMarshal) }

func benchMarshal(b *testing.B, marshal func(*Envelope) ([]byte, error)) {
	e := codecBenchEvent(b)
	b.ReportAllocs()
	defer reportCPU(b, processCPU())
	for b.Loop() {
		if _, err := marshal(&e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFastUnmarshal(b *testing.B) { benchUnmarshal(b, Unmarshal) }
func BenchmarkRefUnmarshal(b *testing.B)  { benchUnmarshal(b, refUnmarshal) }

func benchUnmarshal(b *testing.B, unmarshal func([]byte) (Envelope, error)) {
	e := codecBenchEvent(b)
	data, err := Marshal(&e)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	defer reportCPU(b, processCPU())
	for b.Loop() {
		if _, err := unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFastSeal(b *testing.B) {
	e := codecBenchEvent(b)
	b.ReportAllocs()
	defer reportCPU(b, processCPU())
	for b.Loop() {
		if err := e.Seal(Hash{1}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRefSeal(b *testing.B) {
	e := codecBenchEvent(b)
	b.ReportAllocs()
	defer reportCPU(b, processCPU())
	for b.Loop() {
		h, err := refComputeHash(&e)
		if err != nil {
			b.Fatal(err)
		}
		e.Hash = h
	}
}

// codecBenchLapsed is a policy event: a Lapsed with two lapses.
func codecBenchLapsed(b *testing.B) Envelope {
	at := time.Unix(1_800_000_000, 0).UTC()
	e := codecBenchEvent(b)
	e.Type = TypeLapsed
	e.Actor = ""
	e.Payload = &Lapsed{Lapses: []Lapse{
		{UserID: "viewer-0001", Kind: SlotEnded, Since: at.Add(-5 * time.Minute), Deadline: at,
			Setting: "SpeakingSlot", Limit: Duration(5 * time.Minute), Status: "OnStage"},
		{UserID: "viewer-0002", Kind: InvitationExpired, Since: at.Add(-90 * time.Second), Deadline: at.Add(time.Second),
			Setting: "InvitationTTL", Limit: Duration(90 * time.Second), Status: "AcceptedToJoinStage"},
	}}
	if err := e.Seal(Hash{1}); err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkFastMarshalLapsed(b *testing.B) {
	e := codecBenchLapsed(b)
	b.ReportAllocs()
	defer reportCPU(b, processCPU())
	for b.Loop() {
		if _, err := Marshal(&e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFastUnmarshalLapsed(b *testing.B) {
	e := codecBenchLapsed(b)
	data, err := Marshal(&e)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	defer reportCPU(b, processCPU())
	for b.Loop() {
		if _, err := Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}
