package aggregate_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/productdb/stage/aggregate"
)

// BenchmarkControlsScale decides and applies commands in a meeting with
// every stage control in use (RequestTTL on, requests queued, co-hosts, a
// seat cap), at 1,000 and 100,000 participants with a tenth of them
// queued: a request, a co-host's grant, a decline, and the next deadline
// after each, as a meeting's commands are. The cost per command must not
// grow with the meeting (compare the two sizes' ns/command).
func BenchmarkControlsScale(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("participants=%d/queue=%d", n, n/10), func(b *testing.B) {
			t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
			now := t0
			s := aggregate.NewState("big")
			id := 0
			apply := func(actor string, a aggregate.Action) {
				id++
				now = now.Add(time.Millisecond)
				d, err := aggregate.Decide(s, aggregate.Command{ID: fmt.Sprint("c", id), Actor: actor, Action: a}, now)
				if err != nil {
					b.Fatalf("%s by %s: %v", a.Name(), actor, err)
				}
				for i := range d.Events {
					e := &d.Events[i]
					if err := e.Seal(s.LastHash()); err != nil {
						b.Fatal(err)
					}
					aggregate.Evolve(s, e)
				}
			}
			apply("", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "host", Permissions: aggregate.PresetHost.Permissions()}})
			apply("", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "co", Permissions: aggregate.PresetViewer.Permissions()}})
			apply("host", aggregate.PromoteCoHost{UserID: "co"})
			apply("host", aggregate.Configure{Settings: aggregate.Settings{MaxOnStage: 10, RequestTTL: 24 * time.Hour,
				InvitationTTL: 24 * time.Hour, AllowBringOnStage: true}})
			for i := range n {
				u := fmt.Sprint("v", i)
				apply("", aggregate.AddParticipant{Participant: aggregate.Participant{UserID: u, Permissions: aggregate.PresetViewer.Permissions()}})
				if i < n/10 {
					apply(u, aggregate.RequestAccess{})
				}
			}
			if s.QueueLen() != n/10 {
				b.Fatalf("queue %d", s.QueueLen())
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				u := fmt.Sprint("v", n/10+i%(n-n/10))
				apply(u, aggregate.RequestAccess{})
				_ = aggregate.NextDeadline(s)
				apply("co", aggregate.GrantAccess{Users: []string{u}})
				_ = aggregate.NextDeadline(s)
				apply(u, aggregate.DeclineInvitation{})
				_ = aggregate.NextDeadline(s)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(3*b.N), "ns/command")
			if s.QueueLen() != n/10 {
				b.Fatalf("queue %d", s.QueueLen())
			}
		})
	}
}
