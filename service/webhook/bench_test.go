package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/service/webhook"
)

// BenchmarkSender_throughput delivers a backlog of events over 32
// meetings to a receiver that takes 1ms per request, with 1 and 4 lanes:
// events/s is what one durable name sustains.
func BenchmarkSender_throughput(b *testing.B) {
	for _, lanes := range []int{1, 4} {
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) {
			f := setupB(b)
			const meetings, perMeeting = 32, 8
			ctx := context.Background()
			for m := range meetings {
				for u := range perMeeting {
					if _, err := f.eng.AddParticipant(ctx, fmt.Sprintf("m%d", m), aggregate.Participant{UserID: fmt.Sprintf("u%d", u), Permissions: aggregate.Permissions{StageAccess: events.Allowed}}); err != nil {
						b.Fatal(err)
					}
				}
			}
			total := int64(meetings * perMeeting)
			b.ResetTimer()
			for i := range b.N {
				var n atomic.Int64
				hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					time.Sleep(time.Millisecond)
					n.Add(1)
				}))
				start := time.Now()
				s, err := webhook.New(f.js, f.src, []webhook.Endpoint{{Name: "r", URL: hs.URL, Secret: secret}},
					webhook.WithLanes(lanes), webhook.WithDeliverAll(), webhook.WithDurable(fmt.Sprintf("b%d", i)))
				if err != nil {
					b.Fatal(err)
				}
				for n.Load() < total {
					time.Sleep(time.Millisecond)
				}
				el := time.Since(start)
				s.Close()
				hs.Close()
				b.ReportMetric(float64(total)/el.Seconds(), "events/s")
			}
		})
	}
}
