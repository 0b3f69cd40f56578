package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/productdb/stage/service/webhook"
)

// lagGauge collects reader's metrics and returns stage.webhook.lag.
func lagGauge(t *testing.T, reader *sdkmetric.ManualReader) (int64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == "stage.webhook.lag" && len(g.DataPoints) == 1 {
				return g.DataPoints[0].Value, true
			}
		}
	}
	return 0, false
}

// TestSender_RegisterMetrics: stage.webhook.lag reports what a receiver
// that refuses everything leaves undelivered, and 0 once it accepts.
func TestSender_RegisterMetrics(t *testing.T) {
	f := setup(t)
	var accept atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !accept.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(hs.Close)
	s, err := webhook.New(f.js, f.src, []webhook.Endpoint{{Name: "media", URL: hs.URL, Secret: secret}},
		webhook.WithLanes(1), webhook.WithBackoff(5*time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	reg, err := s.RegisterMetrics(mp.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	v := script(t, f.eng, "m1")
	if n, ok := lagGauge(t, reader); !ok || n == 0 || uint64(n) > v {
		t.Fatalf("lag %d (%v) with a receiver refusing %d events", n, ok, v)
	}
	accept.Store(true)
	deadline := time.Now().Add(time.Minute)
	for {
		n, ok := lagGauge(t, reader)
		if ok && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag still %d (%v) once the receiver accepts", n, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
