package httpapi

import (
	"context"

	"go.opentelemetry.io/otel/metric"
)

// RegisterMetrics reports the handler's open event streams on m, as the
// observable gauge "stage.http.streams" (docs/telemetry.md). Unregister
// the returned registration when the handler is done.
func (h *Handler) RegisterMetrics(m metric.Meter) (metric.Registration, error) {
	g, err := m.Int64ObservableGauge("stage.http.streams", metric.WithUnit("{stream}"),
		metric.WithDescription("Server-sent event streams the HTTP API holds open."))
	if err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(g, int64(h.Streams()))
		return nil
	}, g)
}
