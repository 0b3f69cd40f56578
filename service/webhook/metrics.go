package webhook

import (
	"context"

	"go.opentelemetry.io/otel/metric"
)

// RegisterMetrics reports the sender's lag ([Sender.Lag]: events its
// slowest lane has yet to deliver) on m, as the observable gauge
// "stage.webhook.lag" (docs/telemetry.md). Each collection asks the
// server for the lanes' consumer info. Unregister the returned
// registration when the sender is done.
func (s *Sender) RegisterMetrics(m metric.Meter) (metric.Registration, error) {
	g, err := m.Int64ObservableGauge("stage.webhook.lag", metric.WithUnit("{event}"),
		metric.WithDescription("Events the slowest webhook lane has yet to deliver and have acknowledged."))
	if err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		lag, err := s.Lag(ctx)
		if err != nil {
			return err
		}
		o.ObserveInt64(g, int64(lag))
		return nil
	}, g)
}
