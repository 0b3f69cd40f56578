package httpapi

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// gauge collects reader's metrics and returns the named gauge's value.
func gauge(t *testing.T, reader *sdkmetric.ManualReader, name string) (int64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == name && len(g.DataPoints) == 1 {
				return g.DataPoints[0].Value, true
			}
		}
	}
	return 0, false
}

// TestRegisterMetrics: stage.http.streams counts the open event streams,
// and stops being reported once unregistered.
func TestRegisterMetrics(t *testing.T) {
	f := newFixture(t)
	f.addMeeting("m1")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	reg, err := f.h.RegisterMetrics(mp.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := gauge(t, reader, "stage.http.streams"); !ok || n != 0 {
		t.Fatalf("streams %d (%v), want 0", n, ok)
	}
	for _, tok := range []string{"user:bob", "user:carol"} {
		s, _ := f.openStream("m1", tok, "")
		s.until(t, "live")
	}
	if n, ok := gauge(t, reader, "stage.http.streams"); !ok || n != 2 {
		t.Fatalf("streams %d (%v), want 2", n, ok)
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if _, ok := gauge(t, reader, "stage.http.streams"); ok {
		t.Fatal("reported after Unregister")
	}
}
