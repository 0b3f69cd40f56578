package stage

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
)

// Telemetry: OpenTelemetry metrics and traces of the Engine, through the
// OTel API only. The library records; the program that embeds it picks the
// SDK and the exporter (OTLP, Prometheus, ...) and hands the Engine its
// providers with [WithTelemetry]. docs/telemetry.md lists every metric.

// TelemetryScope is the instrumentation scope name of the Engine's meter
// and tracer.
const TelemetryScope = "github.com/productdb/stage"

// The outcomes of a command, the value of the stage.outcome attribute of
// the command metrics and spans.
const (
	// OutcomeAccepted: the command was applied (its events stored).
	OutcomeAccepted = "accepted"
	// OutcomeDuplicate: a retry of a command applied before; nothing new
	// stored (Result.Duplicate).
	OutcomeDuplicate = "duplicate"
	// OutcomeRejected: the rules refused it (stage.code says why).
	OutcomeRejected = "rejected"
	// OutcomeNotStored: a failure that stored nothing ([ErrNotStored]).
	OutcomeNotStored = "not_stored"
	// OutcomeUnknown: a failure whose outcome is unknown
	// ([ErrOutcomeUnknown]).
	OutcomeUnknown = "unknown"
)

// The attribute keys of the Engine's metrics and spans.
const (
	AttrCommand      = attribute.Key("stage.command")         // the command's name: "GrantAccess", ...
	AttrOutcome      = attribute.Key("stage.outcome")         // one of the Outcome constants
	AttrCode         = attribute.Key("stage.code")            // [ErrorCode] of a rejection or failure
	AttrMeeting      = attribute.Key("stage.meeting")         // the meeting id (spans only)
	AttrVersion      = attribute.Key("stage.version")         // the meeting's version after the command (spans only)
	AttrAppendResult = attribute.Key("stage.append.result")   // "ok", "conflict" or "error"
	AttrEvents       = attribute.Key("stage.append.events")   // events in an append (spans only)
	AttrCommands     = attribute.Key("stage.append.commands") // commands in an append (spans only)
)

// WithTelemetry makes the Engine record OpenTelemetry metrics with mp and
// spans with tp (docs/telemetry.md lists them): commands by name and
// outcome, their duration, appends (latency, size, conflicts), and the
// number of cached meetings; a span around each Execute (and each command
// method, which runs through it) and a child span around its append. A
// nil provider records nothing of its kind. Without
// this option the Engine records nothing and pays nothing for it; a nil
// provider, or the API's noop one (metric/noop, trace/noop), costs nothing
// either (see docs/telemetry.md for the figures).
func WithTelemetry(mp metric.MeterProvider, tp trace.TracerProvider) Option {
	return func(c *config) error {
		// The API's noop providers record nothing: skip them as nil, and
		// their calls with them.
		if _, ok := mp.(metricnoop.MeterProvider); ok {
			mp = nil
		}
		if _, ok := tp.(tracenoop.TracerProvider); ok {
			tp = nil
		}
		c.telemetry = nil
		if mp != nil || tp != nil {
			c.telemetry = &telemetryConfig{mp: mp, tp: tp}
		}
		return nil
	}
}

type telemetryConfig struct {
	mp metric.MeterProvider
	tp trace.TracerProvider
}

// telemetry is an Engine's instruments. A nil *telemetry (no
// WithTelemetry) records nothing: every method returns at once. Without a
// MeterProvider metrics is false, without a TracerProvider tracer is nil.
type telemetry struct {
	tracer  trace.Tracer
	metrics bool

	commands       metric.Int64Counter
	commandTime    metric.Float64Histogram
	appendTime     metric.Float64Histogram
	appendEvents   metric.Int64Histogram
	appendCommands metric.Int64Histogram
	conflicts      metric.Int64Counter
	cacheReg       metric.Registration

	// opts caches the options (attribute sets) of the command metrics, by
	// command, outcome and code: a handful of each, built once, so that
	// recording allocates nothing.
	opts sync.Map // attrKey -> *measureOpts
}

// measureOpts are the options of one attribute set, ready to pass.
type measureOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

func newMeasureOpts(s attribute.Set) *measureOpts {
	o := metric.WithAttributeSet(s)
	return &measureOpts{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}}
}

type attrKey struct{ command, outcome, code string }

// Histogram buckets: seconds from 50 us to 10 s; sizes in powers of two up
// to maxGroupEvents.
var (
	latencyBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	sizeBuckets    = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}
)

// newTelemetry creates the instruments of c for e (nil without c).
func newTelemetry(e *Engine, c *telemetryConfig) (*telemetry, error) {
	if c == nil {
		return nil, nil
	}
	t := &telemetry{}
	if c.tp != nil {
		t.tracer = c.tp.Tracer(TelemetryScope)
	}
	if c.mp == nil {
		return t, nil
	}
	t.metrics = true
	m := c.mp.Meter(TelemetryScope)
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	t.commands, err = m.Int64Counter("stage.commands", metric.WithUnit("{command}"),
		metric.WithDescription("Commands executed, by command, outcome and code."))
	check(err)
	t.commandTime, err = m.Float64Histogram("stage.command.duration", metric.WithUnit("s"),
		metric.WithDescription("Time Execute took, by command and outcome."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	check(err)
	t.appendTime, err = m.Float64Histogram("stage.append.duration", metric.WithUnit("s"),
		metric.WithDescription("Time one append to the store took, by result."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	check(err)
	t.appendEvents, err = m.Int64Histogram("stage.append.events", metric.WithUnit("{event}"),
		metric.WithDescription("Events in one append (a grouped append carries several commands' events)."),
		metric.WithExplicitBucketBoundaries(sizeBuckets...))
	check(err)
	t.appendCommands, err = m.Int64Histogram("stage.append.commands", metric.WithUnit("{command}"),
		metric.WithDescription("Commands in one append: 1, or more when queued commands joined it."),
		metric.WithExplicitBucketBoundaries(sizeBuckets...))
	check(err)
	t.conflicts, err = m.Int64Counter("stage.conflicts", metric.WithUnit("{conflict}"),
		metric.WithDescription("Appends refused because another writer appended first (each is caught up and decided again, or given up)."))
	check(err)
	cache, err := m.Int64ObservableGauge("stage.cache.meetings", metric.WithUnit("{meeting}"),
		metric.WithDescription("Meetings whose state the Engine holds in memory."))
	check(err)
	if err == nil {
		t.cacheReg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			e.mu.Lock()
			n := len(e.meetings)
			e.mu.Unlock()
			o.ObserveInt64(cache, int64(n))
			return nil
		}, cache)
		check(err)
	}
	if len(errs) > 0 {
		t.close()
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// close unregisters the cache gauge's callback (the MeterProvider would
// keep the Engine otherwise).
func (t *telemetry) close() {
	if t != nil && t.cacheReg != nil {
		_ = t.cacheReg.Unregister()
		t.cacheReg = nil
	}
}

// commandSpan is a command's telemetry in flight.
type commandSpan struct {
	span  trace.Span
	began time.Time
	name  string
}

// startCommand starts the span of a command on meetingID.
func (t *telemetry) startCommand(ctx context.Context, meetingID string, cmd aggregate.Command) (context.Context, commandSpan) {
	if t == nil {
		return ctx, commandSpan{}
	}
	name := "Command"
	if cmd.Action != nil {
		name = cmd.Action.Name()
	}
	cs := commandSpan{name: name}
	if t.tracer != nil {
		ctx, cs.span = t.tracer.Start(ctx, "stage.Execute")
		if cs.span.IsRecording() {
			cs.span.SetAttributes(AttrCommand.String(name), AttrMeeting.String(meetingID))
		}
	}
	if t.metrics {
		cs.began = time.Now()
	}
	return ctx, cs
}

// endCommand records a command's outcome: its metrics, and its span's
// attributes and end.
func (t *telemetry) endCommand(ctx context.Context, cs commandSpan, res Result, err error) {
	if t == nil {
		return
	}
	outcome, code := commandOutcome(res, err)
	if t.metrics {
		o := t.options(cs.name, outcome, code)
		t.commands.Add(ctx, 1, o.add...)
		t.commandTime.Record(ctx, time.Since(cs.began).Seconds(), o.rec...)
	}
	if cs.span == nil {
		return
	}
	if cs.span.IsRecording() {
		cs.span.SetAttributes(AttrOutcome.String(outcome), AttrVersion.Int64(int64(res.Version)))
		if code != "" {
			cs.span.SetAttributes(AttrCode.String(code))
		}
		if outcome == OutcomeNotStored || outcome == OutcomeUnknown {
			cs.span.RecordError(err)
			cs.span.SetStatus(codes.Error, code)
		}
	}
	cs.span.End()
}

// commandOutcome classifies what Execute returned.
func commandOutcome(res Result, err error) (outcome, code string) {
	switch {
	case err == nil && res.Duplicate:
		return OutcomeDuplicate, ""
	case err == nil:
		return OutcomeAccepted, ""
	}
	code = ErrorCode(err)
	var rej *aggregate.Error
	switch {
	case errors.As(err, &rej) && aggregate.ReasonCode(rej) != "":
		return OutcomeRejected, code
	case errors.Is(err, ErrOutcomeUnknown):
		return OutcomeUnknown, code
	}
	return OutcomeNotStored, code
}

// options returns the options of the command metrics for command,
// outcome and code, built once.
func (t *telemetry) options(command, outcome, code string) *measureOpts {
	k := attrKey{command, outcome, code}
	if o, ok := t.opts.Load(k); ok {
		return o.(*measureOpts)
	}
	kv := []attribute.KeyValue{AttrCommand.String(command), AttrOutcome.String(outcome)}
	if code != "" {
		kv = append(kv, AttrCode.String(code))
	}
	o, _ := t.opts.LoadOrStore(k, newMeasureOpts(attribute.NewSet(kv...)))
	return o.(*measureOpts)
}

// appendSpan is an append's telemetry in flight.
type appendSpan struct {
	span   trace.Span
	events int
	cmds   int
}

// startAppend starts the span of an append of events events carrying
// commands commands (the head's and its group's).
func (t *telemetry) startAppend(ctx context.Context, events, commands int) (context.Context, appendSpan) {
	if t == nil {
		return ctx, appendSpan{}
	}
	as := appendSpan{events: events, cmds: commands}
	if t.tracer != nil {
		ctx, as.span = t.tracer.Start(ctx, "stage.append")
		if as.span.IsRecording() {
			as.span.SetAttributes(AttrEvents.Int(events), AttrCommands.Int(commands))
		}
	}
	return ctx, as
}

var (
	appendOK       = newMeasureOpts(attribute.NewSet(AttrAppendResult.String("ok")))
	appendConflict = newMeasureOpts(attribute.NewSet(AttrAppendResult.String("conflict")))
	appendError    = newMeasureOpts(attribute.NewSet(AttrAppendResult.String("error")))
)

// endAppend records an append that began at began and returned err.
func (t *telemetry) endAppend(ctx context.Context, as appendSpan, began time.Time, err error) {
	if t == nil {
		return
	}
	o, result := appendOK, "ok"
	switch {
	case err == nil:
	case errors.Is(err, eventstore.ErrConflict):
		o, result = appendConflict, "conflict"
	default:
		o, result = appendError, "error"
	}
	if t.metrics {
		t.appendTime.Record(ctx, time.Since(began).Seconds(), o.rec...)
		if err == nil {
			t.appendEvents.Record(ctx, int64(as.events))
			t.appendCommands.Record(ctx, int64(as.cmds))
		} else if result == "conflict" {
			t.conflicts.Add(ctx, 1)
		}
	}
	if as.span == nil {
		return
	}
	if as.span.IsRecording() {
		as.span.SetAttributes(AttrAppendResult.String(result))
		if err != nil && result == "error" {
			as.span.RecordError(err)
			as.span.SetStatus(codes.Error, "append failed")
		}
	}
	as.span.End()
}
