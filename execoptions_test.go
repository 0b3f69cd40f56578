package stage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// TestExecOptions: every command method takes the trailing ExecOptions:
// a reason lands in the event of a deny or a kick and fails any other
// command with ErrInvalidCommand, storing nothing; an idempotency key
// makes a retry of any method a duplicate; a correlation id is recorded.
func TestExecOptions(t *testing.T) {
	ctx := context.Background()
	store := eventstore.NewMemory()
	eng, err := stage.New(store)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	const m = "opts"
	last := func() events.Envelope {
		t.Helper()
		var e events.Envelope
		for ev, err := range store.Load(ctx, m, 0) {
			if err != nil {
				t.Fatal(err)
			}
			e = ev
		}
		return e
	}
	host, viewer := aggregate.PresetHost.Permissions(), aggregate.PresetViewer.Permissions()
	must := func(what string) func(stage.Result, error) stage.Result {
		return func(r stage.Result, err error) stage.Result {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			return r
		}
	}
	must("add host")(eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "h", Permissions: host}, stage.WithCorrelationID("req-1")))
	if e := last(); e.CorrelationID != "req-1" {
		t.Errorf("AddParticipant correlation id %q, want req-1", e.CorrelationID)
	}
	for _, u := range []string{"a", "b"} {
		must("add " + u)(eng.AddParticipant(ctx, m, aggregate.Participant{UserID: u, Permissions: viewer}))
		must("request " + u)(eng.RequestAccess(ctx, m, u))
	}

	// Deny with a reason.
	must("deny")(eng.DenyAccess(ctx, m, "h", []string{"a"}, stage.WithReason("not now")))
	if p, ok := last().Payload.(*events.AccessDenied); !ok || p.Reason != "not now" {
		t.Errorf("DenyAccess event %+v, want reason %q", last().Payload, "not now")
	}
	// Kick with a reason, keyed: the retry is a duplicate.
	must("grant b")(eng.GrantAccess(ctx, m, "h", []string{"b"}))
	must("join b")(eng.Join(ctx, m, "b"))
	r1 := must("kick")(eng.Kick(ctx, m, "h", []string{"b"}, stage.WithReason("off topic"), stage.WithIdempotencyKey("kick-1")))
	if p, ok := last().Payload.(*events.Kicked); !ok || p.Reason != "off topic" {
		t.Errorf("Kick event %+v, want reason %q", last().Payload, "off topic")
	}
	r2 := must("kick again")(eng.Kick(ctx, m, "h", []string{"b"}, stage.WithReason("off topic"), stage.WithIdempotencyKey("kick-1")))
	if !r2.Duplicate || r2.Version != r1.Version {
		t.Errorf("keyed retry of Kick: %+v, want a duplicate of version %d", r2, r1.Version)
	}
	// The same key with another reason is another command.
	if _, err := eng.Kick(ctx, m, "h", []string{"b"}, stage.WithReason("spam"), stage.WithIdempotencyKey("kick-1")); !errors.Is(err, aggregate.ErrKeyReused) {
		t.Errorf("the key with another reason: %v, want ErrKeyReused", err)
	}
	// Execute takes WithReason too; two different reasons are refused.
	must("request a again")(eng.RequestAccess(ctx, m, "a"))
	must("execute deny")(eng.Execute(ctx, m, aggregate.Command{Actor: "h", Action: aggregate.DenyAccess{Users: []string{"a"}, Reason: "same"}}, stage.WithReason("same")))
	version := last().Version
	if _, err := eng.Execute(ctx, m, aggregate.Command{Actor: "h", Action: aggregate.Kick{Users: []string{"b"}, Reason: "one"}}, stage.WithReason("two")); !errors.Is(err, aggregate.ErrInvalidCommand) {
		t.Errorf("Kick with two reasons: %v, want ErrInvalidCommand", err)
	}
	// A reason on a command that records none.
	for name, f := range map[string]func() (stage.Result, error){
		"Join":          func() (stage.Result, error) { return eng.Join(ctx, m, "a", stage.WithReason("x")) },
		"RequestAccess": func() (stage.Result, error) { return eng.RequestAccess(ctx, m, "a", stage.WithReason("x")) },
		"GrantAccess": func() (stage.Result, error) {
			return eng.GrantAccess(ctx, m, "h", []string{"a"}, stage.WithReason("x"))
		},
		"BanFromStage": func() (stage.Result, error) {
			return eng.BanFromStage(ctx, m, "h", "a", time.Time{}, stage.WithReason("x"))
		},
		"RemoveParticipant": func() (stage.Result, error) { return eng.RemoveParticipant(ctx, m, "a", stage.WithReason("x")) },
	} {
		if _, err := f(); !errors.Is(err, aggregate.ErrInvalidCommand) {
			t.Errorf("%s with a reason: %v, want ErrInvalidCommand", name, err)
		}
	}
	// A reason the rules refuse (a control character).
	if _, err := eng.DenyAccess(ctx, m, "h", []string{"a"}, stage.WithReason("a\x00b")); !errors.Is(err, aggregate.ErrInvalidCommand) {
		t.Errorf("a reason with NUL: %v, want ErrInvalidCommand", err)
	}
	if v := last().Version; v != version {
		t.Fatalf("refused commands stored events: version %d, want %d", v, version)
	}
	// An empty reason is no reason.
	must("request with no reason")(eng.RequestAccess(ctx, m, "a", stage.WithReason("")))
	// Every method takes a key: a keyed retry of each is a duplicate.
	for _, tc := range []struct {
		name string
		f    func(k stage.ExecOption) (stage.Result, error)
	}{
		{"CancelRequestAccess", func(k stage.ExecOption) (stage.Result, error) { return eng.CancelRequestAccess(ctx, m, "a", k) }},
		{"UpdatePermissions", func(k stage.ExecOption) (stage.Result, error) { return eng.UpdatePermissions(ctx, m, "b", host, k) }},
		{"Configure", func(k stage.ExecOption) (stage.Result, error) {
			return eng.Configure(ctx, m, "h", aggregate.Settings{MaxOnStage: 5}, k)
		}},
		{"BanFromStage", func(k stage.ExecOption) (stage.Result, error) {
			return eng.BanFromStage(ctx, m, "h", "a", time.Time{}, k)
		}},
		{"LiftBan", func(k stage.ExecOption) (stage.Result, error) { return eng.LiftBan(ctx, m, "h", "a", k) }},
		{"Disconnect", func(k stage.ExecOption) (stage.Result, error) { return eng.Disconnect(ctx, m, "a", k) }},
	} {
		name, f := tc.name, tc.f
		k := stage.WithIdempotencyKey("key-" + name)
		r1, err := f(k)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r2, err := f(k)
		if err != nil || !r2.Duplicate || r2.Version != r1.Version {
			t.Errorf("%s retried with its key: %+v, %v; want a duplicate of version %d", name, r2, err, r1.Version)
		}
	}
}
