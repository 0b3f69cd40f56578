package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/productdb/stage/aggregate"
)

// BenchmarkCycle runs the request-grant-join-leave cycle b.N times through
// the Engine directly and b.N times through HTTP (loopback, keep-alive
// clients), in the same run, over the same Engine, each worker on its own
// meeting, and reports both rates and their ratio (http/engine).
func BenchmarkCycle(b *testing.B) {
	for _, store := range []string{"memory", "jetstream"} {
		for _, workers := range []int{1, 8} {
			b.Run(fmt.Sprintf("store=%s/workers=%d", store, workers), func(b *testing.B) {
				var f *fixture
				if store == "memory" {
					f = newFixture(b)
				} else {
					f = newJetStreamFixture(b)
				}
				benchCycle(b, f, workers)
			})
		}
	}
}

func benchCycle(b *testing.B, f *fixture, workers int) {
	ctx := context.Background()
	tr := &http.Transport{MaxIdleConns: workers * 2, MaxIdleConnsPerHost: workers * 2, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for w := range workers {
		for _, phase := range []string{"e", "h"} {
			m := fmt.Sprintf("%s%d", phase, w)
			if _, err := f.eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "alice", Permissions: host}); err != nil {
				b.Fatal(err)
			}
			if _, err := f.eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "bob", Permissions: requester}); err != nil {
				b.Fatal(err)
			}
		}
	}
	grantBody := []byte(`{"users":["bob"]}`)
	post := func(path, token string, body []byte) error {
		req, err := http.NewRequest("POST", f.srv.URL+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("POST %s: %d", path, resp.StatusCode)
		}
		return nil
	}
	engineCycle := func(m string) error {
		if _, err := f.eng.RequestAccess(ctx, m, "bob"); err != nil {
			return err
		}
		if _, err := f.eng.GrantAccess(ctx, m, "alice", []string{"bob"}); err != nil {
			return err
		}
		if _, err := f.eng.Join(ctx, m, "bob"); err != nil {
			return err
		}
		_, err := f.eng.Leave(ctx, m, "bob")
		return err
	}
	httpCycle := func(m string) error {
		base := "/v1/meetings/" + m + "/stage/"
		if err := post(base+"requests", "user:bob", nil); err != nil {
			return err
		}
		if err := post(base+"grant", "user:alice", grantBody); err != nil {
			return err
		}
		if err := post(base+"join", "user:bob", nil); err != nil {
			return err
		}
		return post(base+"leave", "user:bob", nil)
	}
	run := func(phase string, cycle func(string) error) time.Duration {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		start := time.Now()
		for w := range workers {
			n := b.N / workers
			if w < b.N%workers {
				n++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := fmt.Sprintf("%s%d", phase, w)
				for range n {
					if err := cycle(m); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		d := time.Since(start)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		return d
	}
	// Warm both paths (connections, caches) before timing.
	if err := engineCycle("e0"); err != nil {
		b.Fatal(err)
	}
	if err := httpCycle("h0"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	de := run("e", engineCycle)
	dh := run("h", httpCycle)
	b.StopTimer()
	cmds := float64(4 * b.N)
	eRate, hRate := cmds/de.Seconds(), cmds/dh.Seconds()
	b.ReportMetric(eRate, "engine_cmds/s")
	b.ReportMetric(hRate, "http_cmds/s")
	b.ReportMetric(hRate/eRate, "http/engine")
}
