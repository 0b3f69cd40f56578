package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// meterScope names the service's own instruments (the HTTP streams, the
// webhook lag).
const meterScope = "github.com/productdb/stage/service"

// telemetry holds the SDK providers the binary picks (the library uses
// the OpenTelemetry API only): OTLP over HTTP when --otlp-endpoint is set,
// nothing otherwise.
type telemetry struct {
	meters  *sdkmetric.MeterProvider
	tracers *sdktrace.TracerProvider
}

func startTelemetry(ctx context.Context, endpoint string) (*telemetry, error) {
	if endpoint == "" {
		return &telemetry{}, nil
	}
	mexp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(endpoint), otlpmetrichttp.WithInsecure())
	if err != nil {
		return nil, err
	}
	texp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure())
	if err != nil {
		return nil, err
	}
	return &telemetry{
		meters:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp))),
		tracers: sdktrace.NewTracerProvider(sdktrace.WithBatcher(texp)),
	}, nil
}

func (t *telemetry) on() bool { return t.meters != nil }

// shutdown flushes what the exporters hold, within 5 s.
func (t *telemetry) shutdown(log *slog.Logger) {
	if !t.on() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := errors.Join(t.meters.Shutdown(ctx), t.tracers.Shutdown(ctx)); err != nil {
		log.Warn("staged: flushing telemetry", "err", err)
	}
}
