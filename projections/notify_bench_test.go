package projections_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
)

// BenchmarkNotifyStep: what one request's notifications cost a watcher of
// a meeting of 100,000 participants (two of them hosts), with 100 or 10,000
// requests queued. Each op is a viewer requesting and then cancelling (two
// events), so the queue keeps its length. "step" is NotifyStep, what Watch
// runs; "notify" is Notify, which applies each event to a copy of the state.
// The "step" figures must not grow with the queue (10,000 vs 100: <= 1.5x).
//
//	go test -run '^$' -bench NotifyStep ./projections
func BenchmarkNotifyStep(b *testing.B) {
	audience := 100_000
	if testing.Short() {
		audience = 20_000
	}
	for _, queued := range []int{100, 10_000} {
		for _, fn := range []string{"step", "notify"} {
			b.Run(fmt.Sprintf("queued=%d/%s", queued, fn), func(b *testing.B) {
				s := queuedMeeting(audience, queued)
				t := s.LastTime()
				req := events.Envelope{MeetingID: "m", Type: events.TypeAccessRequested, Actor: "x", Time: t, Payload: &events.AccessRequested{}}
				cancel := events.Envelope{MeetingID: "m", Type: events.TypeAccessRequestCancelled, Actor: "x", Time: t, Payload: &events.AccessRequestCancelled{}}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					for _, e := range []*events.Envelope{&req, &cancel} {
						e.Version = s.Version() + 1
						if fn == "step" {
							projections.NotifyStep(s, e)
						} else {
							projections.Notify(s, e)
							aggregate.Evolve(s, e)
						}
					}
				}
			})
		}
	}
}

// queuedMeeting is a meeting of audience participants: hosts h1 and h2,
// viewers v0... and x, queued of the viewers requesting.
func queuedMeeting(audience, queued int) *aggregate.State {
	s := aggregate.NewState("m")
	t := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	apply := func(e events.Envelope) {
		e.MeetingID, e.Version, e.Time = "m", s.Version()+1, t
		aggregate.Evolve(s, &e)
	}
	host := events.Permissions{StageAccess: events.Allowed, AcceptStageRequests: true}
	viewer := events.Permissions{StageAccess: events.CanRequest}
	apply(events.Envelope{Type: events.TypeParticipantJoined, Payload: &events.ParticipantJoined{UserID: "h1", Permissions: host}})
	apply(events.Envelope{Type: events.TypeParticipantJoined, Payload: &events.ParticipantJoined{UserID: "h2", Permissions: host}})
	apply(events.Envelope{Type: events.TypeParticipantJoined, Payload: &events.ParticipantJoined{UserID: "x", Permissions: viewer}})
	for i := range audience - 3 {
		u := fmt.Sprint("v", i)
		apply(events.Envelope{Type: events.TypeParticipantJoined, Payload: &events.ParticipantJoined{UserID: u, Permissions: viewer}})
		if i < queued {
			apply(events.Envelope{Type: events.TypeAccessRequested, Actor: u, Payload: &events.AccessRequested{}})
		}
	}
	return s
}
