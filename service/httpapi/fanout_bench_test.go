package httpapi

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/productdb/stage/aggregate"
)

var sseClients = flag.Int("httpapi.sseclients", 1000, "BenchmarkSSEFanout: how many SSE clients (each a user of the meeting) are connected")

// BenchmarkSSEFanout connects -httpapi.sseclients real SSE clients (one
// per user, over loopback) to one meeting, then per iteration puts a user
// on and off the stage through the Engine and waits until every client
// has read both stageRosterUpdate events. It reports the notification
// latency (command issued to event read by a client) at p50, p99 and max
// over every client and roster update.
func BenchmarkSSEFanout(b *testing.B) {
	n := *sseClients
	f := newFixture(b, WithHeartbeat(time.Minute))
	ctx := context.Background()
	m := "fan"
	if _, err := f.eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "speaker", Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed}}); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if _, err := f.eng.AddParticipant(ctx, m, aggregate.Participant{UserID: fmt.Sprintf("u%d", i), Permissions: requester}); err != nil {
			b.Fatal(err)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}}
	var sent atomic.Int64 // UnixNano of the command being measured
	var mu sync.Mutex
	var lat []time.Duration
	got := make(chan struct{}, n)
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	live := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(cctx, "GET", f.srv.URL+mpath(m, "/events"), nil)
			req.Header.Set("Authorization", fmt.Sprintf("Bearer user:u%d", i))
			resp, err := client.Do(req)
			if err != nil {
				live <- err
				return
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				switch {
				case line == "event: live\n":
					live <- nil
				case line == "event: stageRosterUpdate\n":
					mine = append(mine, time.Duration(time.Now().UnixNano()-sent.Load()))
					got <- struct{}{}
				case strings.HasPrefix(line, "event: error"):
					live <- fmt.Errorf("stream ended: %s", line)
					return
				}
			}
		}()
	}
	for range n {
		if err := <-live; err != nil {
			b.Fatal(err)
		}
	}
	wait := func() {
		timeout := time.After(time.Minute)
		for range n {
			select {
			case <-got:
			case <-timeout:
				b.Fatal("a client did not get the roster update within a minute")
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		sent.Store(time.Now().UnixNano())
		if _, err := f.eng.Join(ctx, m, "speaker"); err != nil {
			b.Fatal(err)
		}
		wait()
		sent.Store(time.Now().UnixNano())
		if _, err := f.eng.Leave(ctx, m, "speaker"); err != nil {
			b.Fatal(err)
		}
		wait()
	}
	b.StopTimer()
	cancel()
	wg.Wait()
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatal("no latencies")
	}
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(n), "clients")
	b.ReportMetric(q(0.5), "p50_ms")
	b.ReportMetric(q(0.99), "p99_ms")
	b.ReportMetric(q(1), "max_ms")
}
