package stage_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// telemetry is an SDK MeterProvider and TracerProvider reading into
// memory (the SDK is for tests only: the library uses the API).
type telemetry struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	mp     *sdkmetric.MeterProvider
	tp     *sdktrace.TracerProvider
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	t.Cleanup(func() {
		_ = tel.mp.Shutdown(context.Background())
		_ = tel.tp.Shutdown(context.Background())
	})
	return tel
}

// collect returns the metrics by name.
func (tel *telemetry) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != stage.TelemetryScope {
			t.Fatalf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// attrs is a data point's attributes as a map.
func attrs(s attribute.Set) map[string]string {
	m := map[string]string{}
	for _, kv := range s.ToSlice() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// commandCounts returns stage.commands as "command outcome code" -> count.
func commandCounts(t *testing.T, ms map[string]metricdata.Metrics) map[string]int64 {
	t.Helper()
	sum, ok := ms["stage.commands"].Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("stage.commands: %T", ms["stage.commands"].Data)
	}
	out := map[string]int64{}
	for _, dp := range sum.DataPoints {
		a := attrs(dp.Attributes)
		k := a["stage.command"] + " " + a["stage.outcome"]
		if c := a["stage.code"]; c != "" {
			k += " " + c
		}
		out[k] += dp.Value
	}
	return out
}

// histCount returns how many values a histogram recorded, and their sum,
// over the data points whose attributes include want.
func histCount[N int64 | float64](t *testing.T, ms map[string]metricdata.Metrics, name string, want map[string]string) (n uint64, sum N) {
	t.Helper()
	h, ok := ms[name].Data.(metricdata.Histogram[N])
	if !ok {
		t.Fatalf("%s: %T", name, ms[name].Data)
	}
	for _, dp := range h.DataPoints {
		a := attrs(dp.Attributes)
		match := true
		for k, v := range want {
			match = match && a[k] == v
		}
		if match {
			n += dp.Count
			sum += dp.Sum
		}
	}
	return n, sum
}

func TestWithTelemetry_commands(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	eng, err := stage.New(eventstore.NewMemory(), stage.WithTelemetry(tel.mp, tel.tp), stage.WithAutoTick(false))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	host, viewer := aggregate.PresetHost.Permissions(), aggregate.PresetViewer.Permissions()
	must := func(_ stage.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(eng.AddParticipant(ctx, "m1", aggregate.Participant{UserID: "alice", Permissions: host}))
	must(eng.AddParticipant(ctx, "m1", aggregate.Participant{UserID: "bob", Permissions: viewer}))
	must(eng.RequestAccess(ctx, "m1", "bob", stage.WithIdempotencyKey("k1")))
	must(eng.RequestAccess(ctx, "m1", "bob", stage.WithIdempotencyKey("k1"))) // a duplicate
	if _, err := eng.Join(ctx, "m1", "bob"); !errors.Is(err, aggregate.ErrPermissionDenied) {
		t.Fatalf("Join before a grant: %v", err)
	}
	res, err := eng.GrantAccess(ctx, "m1", "alice", []string{"bob"})
	must(res, err)
	// A second meeting: two meetings cached.
	must(eng.AddParticipant(ctx, "m2", aggregate.Participant{UserID: "carol", Permissions: host}))

	ms := tel.collect(t)
	got := commandCounts(t, ms)
	want := map[string]int64{
		"AddParticipant accepted":        3,
		"RequestAccess accepted":         1,
		"RequestAccess duplicate":        1,
		"Join rejected PermissionDenied": 1,
		"GrantAccess accepted":           1,
	}
	if len(got) != len(want) {
		t.Fatalf("stage.commands %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("stage.commands %v, want %v", got, want)
		}
	}
	if n, sum := histCount[float64](t, ms, "stage.command.duration", map[string]string{"stage.command": "Join", "stage.outcome": "rejected"}); n != 1 || sum <= 0 {
		t.Fatalf("stage.command.duration of the rejected Join: %d values, sum %v", n, sum)
	}
	// Five appends (the duplicate and the rejection append nothing), one
	// event each.
	if n, sum := histCount[float64](t, ms, "stage.append.duration", map[string]string{"stage.append.result": "ok"}); n != 5 || sum <= 0 {
		t.Fatalf("stage.append.duration: %d ok appends (sum %v), want 5", n, sum)
	}
	if n, sum := histCount[int64](t, ms, "stage.append.events", nil); n != 5 || sum != 5 {
		t.Fatalf("stage.append.events: %d appends of %d events, want 5 of 5", n, sum)
	}
	if n, sum := histCount[int64](t, ms, "stage.append.commands", nil); n != 5 || sum != 5 {
		t.Fatalf("stage.append.commands: %d appends of %d commands, want 5 of 5", n, sum)
	}
	if _, ok := ms["stage.conflicts"]; ok {
		t.Fatalf("stage.conflicts recorded with no conflict: %+v", ms["stage.conflicts"].Data)
	}
	gauge, ok := ms["stage.cache.meetings"].Data.(metricdata.Gauge[int64])
	if !ok || len(gauge.DataPoints) != 1 || gauge.DataPoints[0].Value != 2 {
		t.Fatalf("stage.cache.meetings: %+v, want 2", ms["stage.cache.meetings"].Data)
	}

	// Spans: one stage.Execute per command, a stage.append child for each
	// append.
	spans := tel.spans.Ended()
	var execs, appends int
	byID := map[[8]byte]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	for _, s := range spans {
		a := attrs(attribute.NewSet(s.Attributes()...))
		switch s.Name() {
		case "stage.Execute":
			execs++
			if a["stage.meeting"] == "" || a["stage.command"] == "" || a["stage.outcome"] == "" || a["stage.version"] == "" {
				t.Fatalf("Execute span attributes %v", a)
			}
			if a["stage.command"] == "Join" {
				if a["stage.outcome"] != "rejected" || a["stage.code"] != "PermissionDenied" || a["stage.version"] != "3" {
					t.Fatalf("rejected Join's span: %v", a)
				}
				if s.Status().Code == codes.Error {
					t.Fatal("a rejection is not a span error")
				}
			}
			if a["stage.command"] == "GrantAccess" && (a["stage.outcome"] != "accepted" || a["stage.version"] != "4" || a["stage.meeting"] != "m1") {
				t.Fatalf("GrantAccess span: %v", a)
			}
		case "stage.append":
			appends++
			parent, ok := byID[s.Parent().SpanID()]
			if !ok || parent.Name() != "stage.Execute" {
				t.Fatalf("append span's parent: %v", s.Parent())
			}
			if a["stage.append.result"] != "ok" || a["stage.append.events"] != "1" || a["stage.append.commands"] != "1" {
				t.Fatalf("append span attributes %v", a)
			}
		default:
			t.Fatalf("span %q", s.Name())
		}
	}
	if execs != 7 || appends != 5 {
		t.Fatalf("%d Execute spans and %d append spans, want 7 and 5", execs, appends)
	}
}

// Two Engines on one store: the one whose cache is behind meets a
// conflict, catches up and decides again.
func TestWithTelemetry_conflict(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	store := eventstore.NewMemory()
	a, err := stage.New(store, stage.WithTelemetry(tel.mp, tel.tp), stage.WithAutoTick(false))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := stage.New(store, stage.WithAutoTick(false))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	viewer := aggregate.PresetViewer.Permissions()
	if _, err := a.AddParticipant(ctx, "m", aggregate.Participant{UserID: "alice", Permissions: aggregate.PresetHost.Permissions()}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddParticipant(ctx, "m", aggregate.Participant{UserID: "bob", Permissions: viewer}); err != nil {
		t.Fatal(err)
	}
	// a's cache is at version 1, the store at 2.
	res, err := a.AddParticipant(ctx, "m", aggregate.Participant{UserID: "carol", Permissions: viewer})
	if err != nil || res.Version != 3 {
		t.Fatalf("after a conflict: %+v %v", res, err)
	}
	ms := tel.collect(t)
	// Every metric is documented in docs/telemetry.md's table (all seven
	// are recorded by now).
	doc, err := os.ReadFile("docs/telemetry.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 7 {
		t.Fatalf("%d metrics recorded, want 7", len(ms))
	}
	for name, m := range ms {
		if !strings.Contains(string(doc), "| `"+name+"` |") || !strings.Contains(string(doc), "`"+m.Unit+"`") {
			t.Fatalf("metric %s (unit %s) is not in docs/telemetry.md's table", name, m.Unit)
		}
	}
	conflicts, ok := ms["stage.conflicts"].Data.(metricdata.Sum[int64])
	if !ok || len(conflicts.DataPoints) != 1 || conflicts.DataPoints[0].Value != 1 {
		t.Fatalf("stage.conflicts: %+v, want 1", ms["stage.conflicts"].Data)
	}
	if n, _ := histCount[float64](t, ms, "stage.append.duration", map[string]string{"stage.append.result": "conflict"}); n != 1 {
		t.Fatalf("stage.append.duration with result conflict: %d, want 1", n)
	}
	if got := commandCounts(t, ms); got["AddParticipant accepted"] != 2 || len(got) != 1 {
		t.Fatalf("stage.commands %v", got)
	}
	// The command's span has two append children: the conflict and the
	// retry.
	var results []string
	for _, s := range tel.spans.Ended() {
		if s.Name() == "stage.append" {
			results = append(results, attrs(attribute.NewSet(s.Attributes()...))["stage.append.result"])
		}
	}
	if len(results) != 3 || results[1] != "conflict" || results[2] != "ok" {
		t.Fatalf("append spans %v, want ok, conflict, ok", results)
	}
}

// failing is the memory store whose appends fail, when fail is set,
// with a store error that stored nothing; and wait, when set, until gate
// is closed.
type failing struct {
	*eventstore.Memory
	fail    atomic.Bool
	wait    atomic.Bool
	gate    chan struct{}
	waiting chan struct{} // receives when an append starts waiting
}

var errDiskFull = errors.New("disk full")

func (f *failing) Append(ctx context.Context, meetingID string, expected uint64, evs []events.Envelope) (uint64, error) {
	if f.fail.Load() {
		return 0, eventstore.NotStored(errDiskFull)
	}
	if f.wait.CompareAndSwap(true, false) {
		f.waiting <- struct{}{}
		<-f.gate
	}
	return f.Memory.Append(ctx, meetingID, expected, evs)
}

// Commands queued behind a slow append join the next one: the metrics
// see one append of several commands.
func TestWithTelemetry_grouped(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	store := &failing{Memory: eventstore.NewMemory(), gate: make(chan struct{}), waiting: make(chan struct{}, 1)}
	eng, err := stage.New(store, stage.WithTelemetry(tel.mp, tel.tp), stage.WithAutoTick(false))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	eng.GroupAlwaysForTest()
	users := []string{"bob", "carol", "dan", "erin", "fay"}
	for _, u := range append([]string{"alice"}, users...) {
		if _, err := eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: u, Permissions: aggregate.PresetViewer.Permissions()}); err != nil {
			t.Fatal(err)
		}
	}
	store.wait.Store(true)
	errs := make(chan error, 1+len(users))
	go func() { _, err := eng.RequestAccess(ctx, "m", "alice"); errs <- err }()
	<-store.waiting // alice's append holds the meeting
	for _, u := range users {
		go func() { _, err := eng.RequestAccess(ctx, "m", u); errs <- err }()
	}
	time.Sleep(200 * time.Millisecond) // let them queue (generous: a slow machine)
	close(store.gate)
	for range 1 + len(users) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	ms := tel.collect(t)
	if got := commandCounts(t, ms); got["RequestAccess accepted"] != 6 {
		t.Fatalf("stage.commands %v", got)
	}
	h := ms["stage.append.commands"].Data.(metricdata.Histogram[int64])
	largest, _ := h.DataPoints[0].Max.Value()
	n, sum := histCount[int64](t, ms, "stage.append.commands", nil)
	// Six AddParticipant appends, alice's, then the five queued in as few
	// appends as grouping made (at least one of two or more).
	if sum != 12 || largest < 2 || n >= 12 {
		t.Fatalf("stage.append.commands: %d appends of %d commands, max %d: no grouped append", n, sum, largest)
	}
	_, events := histCount[int64](t, ms, "stage.append.events", nil)
	if events != 12 {
		t.Fatalf("stage.append.events: %d events, want 12", events)
	}
	t.Logf("%d appends for 12 commands, the largest of %d", n, largest)
}

func TestWithTelemetry_failure(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	store := &failing{Memory: eventstore.NewMemory()}
	eng, err := stage.New(store, stage.WithTelemetry(tel.mp, tel.tp), stage.WithAutoTick(false))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "alice", Permissions: aggregate.PresetHost.Permissions()}); err != nil {
		t.Fatal(err)
	}
	store.fail.Store(true)
	if _, err := eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "bob", Permissions: aggregate.PresetViewer.Permissions()}); !errors.Is(err, stage.ErrNotStored) {
		t.Fatalf("a failed append: %v", err)
	}
	ms := tel.collect(t)
	got := commandCounts(t, ms)
	if got["AddParticipant accepted"] != 1 || got["AddParticipant not_stored NotStored"] != 1 || len(got) != 2 {
		t.Fatalf("stage.commands %v", got)
	}
	if n, _ := histCount[float64](t, ms, "stage.append.duration", map[string]string{"stage.append.result": "error"}); n != 1 {
		t.Fatalf("stage.append.duration with result error: %d, want 1", n)
	}
	var failed int
	for _, s := range tel.spans.Ended() {
		if s.Status().Code == codes.Error {
			failed++
			if len(s.Events()) == 0 || s.Events()[0].Name != "exception" {
				t.Fatalf("span %s: error status without the error recorded", s.Name())
			}
		}
	}
	if failed != 2 {
		t.Fatalf("%d spans with an error status, want 2 (the command and its append)", failed)
	}
}

// Close unregisters the cache gauge: a collection after it has no gauge.
func TestWithTelemetry_close(t *testing.T) {
	tel := newTelemetry(t)
	eng, err := stage.New(eventstore.NewMemory(), stage.WithTelemetry(tel.mp, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tel.collect(t)["stage.cache.meetings"]; !ok {
		t.Fatal("no stage.cache.meetings while open")
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if m, ok := tel.collect(t)["stage.cache.meetings"]; ok {
		t.Fatalf("stage.cache.meetings after Close: %+v", m.Data)
	}
}

// A nil provider, or the API's noop one, turns its signal off; the other
// still records.
func TestWithTelemetry_oneSignal(t *testing.T) {
	ctx := context.Background()
	for _, mp := range []metric.MeterProvider{nil, metricnoop.NewMeterProvider()} {
		tel := newTelemetry(t)
		eng, err := stage.New(eventstore.NewMemory(), stage.WithTelemetry(mp, tel.tp))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "alice", Permissions: aggregate.PresetHost.Permissions()}); err != nil {
			t.Fatal(err)
		}
		eng.Close()
		if n := len(tel.spans.Ended()); n != 2 {
			t.Fatalf("meter %T: %d spans, want 2", mp, n)
		}
		if ms := tel.collect(t); len(ms) != 0 {
			t.Fatalf("meter %T: metrics recorded by the SDK provider nobody gave: %v", mp, ms)
		}
	}
	// Both off: an Engine as without the option.
	eng, err := stage.New(eventstore.NewMemory(), stage.WithTelemetry(metricnoop.NewMeterProvider(), tracenoop.NewTracerProvider()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "alice", Permissions: aggregate.PresetHost.Permissions()}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkExecute_telemetry: commands on the memory store without
// telemetry, with the API's noop providers, and with the SDK recording
// (metrics and spans, metrics only; spans dropped when they end, as by an
// exporter that costs nothing). One op is two commands.
func BenchmarkExecute_telemetry(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts func(b *testing.B) []stage.Option
	}{
		{"off", func(*testing.B) []stage.Option { return nil }},
		{"noop", func(*testing.B) []stage.Option {
			return []stage.Option{stage.WithTelemetry(metricnoop.NewMeterProvider(), tracenoop.NewTracerProvider())}
		}},
		{"sdk", func(b *testing.B) []stage.Option {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discard{}))
			b.Cleanup(func() { _ = mp.Shutdown(context.Background()); _ = tp.Shutdown(context.Background()) })
			return []stage.Option{stage.WithTelemetry(mp, tp)}
		}},
		{"sdk-metrics-only", func(b *testing.B) []stage.Option {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			return []stage.Option{stage.WithTelemetry(mp, nil)}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			eng, err := stage.New(eventstore.NewMemory(), append(bc.opts(b), stage.WithAutoTick(false), stage.WithSnapshotEvery(0))...)
			if err != nil {
				b.Fatal(err)
			}
			defer eng.Close()
			host, viewer := aggregate.PresetHost.Permissions(), aggregate.PresetViewer.Permissions()
			if _, err := eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "alice", Permissions: host}); err != nil {
				b.Fatal(err)
			}
			if _, err := eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "bob", Permissions: viewer}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				// Request and cancel: two accepted commands a loop, the
				// meeting's state staying small.
				if _, err := eng.RequestAccess(ctx, "m", "bob"); err != nil {
					b.Fatal(err)
				}
				if _, err := eng.CancelRequestAccess(ctx, "m", "bob"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// discard is a span processor that drops every span: the SDK's cost of
// recording spans, without an exporter's.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }
