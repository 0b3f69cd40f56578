package aggregate_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// BenchmarkDecideEvolve measures one command through the pure core: Decide
// then Evolve, the work the engine does per command besides sealing and I/O.
// The meeting cycles a viewer through request, grant, join, leave.
func BenchmarkDecideEvolve(b *testing.B) {
	s := aggregate.NewState("m")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	apply := func(c aggregate.Command, v int) {
		d, err := aggregate.Decide(s, c, t0.Add(time.Duration(v)))
		if err != nil {
			b.Fatal(err)
		}
		for i := range d.Events {
			aggregate.Evolve(s, &d.Events[i])
		}
	}
	apply(aggregate.Command{ID: "h", Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "host",
		Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}}}, 0)
	apply(aggregate.Command{ID: "v", Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "bob",
		Permissions: aggregate.Permissions{StageAccess: aggregate.CanRequest}}}}, 0)
	cycle := []aggregate.Command{
		{Actor: "bob", Action: aggregate.RequestAccess{}},
		{Actor: "host", Action: aggregate.GrantAccess{Users: []string{"bob"}}},
		{Actor: "bob", Action: aggregate.Join{}},
		{Actor: "bob", Action: aggregate.Leave{}},
	}
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = uuid.NewSHA1(uuid.NameSpaceOID, []byte(strconv.Itoa(i))).String()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c := cycle[i%len(cycle)]
		c.ID = ids[i%len(ids)]
		d, err := aggregate.Decide(s, c, t0.Add(time.Duration(i)))
		if err != nil {
			b.Fatal(err)
		}
		aggregate.Evolve(s, &d.Events[0])
	}
}

var sink events.Hash

// BenchmarkSeal measures sealing one event into the hash chain.
func BenchmarkSeal(b *testing.B) {
	e := events.Envelope{MeetingID: "m", Version: 7, Type: events.TypeAccessGranted,
		Time: time.Unix(1, 0), Actor: "host", CommandID: "0192d8a4-5b1f-7c3e-9a0b-123456789abc", Schema: 1,
		Payload: &events.AccessGranted{Users: []string{"bob", "carol"}}}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Seal(sink); err != nil {
			b.Fatal(err)
		}
		sink = e.Hash
	}
}
