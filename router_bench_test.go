package stage

import (
	"fmt"
	"testing"
	"time"

	"github.com/productdb/stage/projections"
)

// routerWith is a Router on no Engine, live at version 1, with one
// subscription for each of users u0, u1, ...
func routerWith(tb testing.TB, users, buffer int) (*Router, []*Subscription) {
	r := newRouter(nil, "m", buffer)
	r.route(projections.Notification{ID: "1", Type: projections.Live, Version: 1, MeetingID: "m"})
	subs := make([]*Subscription, users)
	for i := range subs {
		s, err := r.Subscribe(tb.Context(), fmt.Sprint("u", i), "")
		if err != nil {
			tb.Fatal(err)
		}
		<-s.c // Live
		subs[i] = s
	}
	return r, subs
}

// note is the notification of version v (index 0) for to.
func note(v uint64, to string) projections.Notification {
	return projections.Notification{ID: fmt.Sprint(v, ".0"), Type: projections.StageStatusUpdate, Recipient: to,
		MeetingID: "m", Version: v, Time: time.Unix(0, 0), UserID: to}
}

// BenchmarkRouter_route: what routing one notification costs a Router
// with 1, 100 or 10,000 subscribers. "recipient": a notification for one
// subscribed user, read by them; "other": for a user with no
// subscription; both must not grow with the subscribers. "everyone": a
// StageRosterUpdate, delivered to each (one per event that changes the
// stage).
//
//	go test -run '^$' -bench Router_route .
func BenchmarkRouter_route(b *testing.B) {
	for _, users := range []int{1, 100, 10_000} {
		for _, kind := range []string{"recipient", "other", "everyone"} {
			b.Run(fmt.Sprintf("subscribers=%d/%s", users, kind), func(b *testing.B) {
				r, subs := routerWith(b, users, 64)
				to := "u0"
				switch kind {
				case "other":
					to = "nobody"
				case "everyone":
					to = projections.Everyone
				}
				b.ReportAllocs()
				b.ResetTimer()
				v := uint64(2)
				for i := range b.N {
					r.route(note(v, to))
					v++
					switch {
					case kind == "recipient":
						<-subs[0].c
					case kind == "everyone" && i%32 == 31:
						b.StopTimer()
						for _, s := range subs {
							for len(s.c) > 0 {
								<-s.c
							}
						}
						b.StartTimer()
					}
				}
				if r.Subscribers() != users {
					b.Fatalf("%d subscribers left of %d", r.Subscribers(), users)
				}
			})
		}
	}
}

// TestRouter_routeCost: routing a notification for one user allocates the
// same with 10,000 other subscribers as with none, and nothing at all.
func TestRouter_routeCost(t *testing.T) {
	allocs := map[int]float64{}
	for _, users := range []int{1, 10_000} {
		r, subs := routerWith(t, users, 4)
		ns := make([]projections.Notification, 200)
		for i := range ns {
			ns[i] = note(uint64(i+2), "u0")
		}
		i := 0
		allocs[users] = testing.AllocsPerRun(100, func() {
			r.route(ns[i])
			<-subs[0].c
			i++
		})
	}
	if allocs[1] != 0 || allocs[10_000] != 0 {
		t.Errorf("allocations per routed notification: %v", allocs)
	}
}
