package stage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// sentinels is every exported sentinel error of the packages whose errors
// reach a service through the Engine, as the Engine returns it (a store
// failure marked with its outcome), with the code and status docs/errors.md
// lists. TestEverySentinelHasCodeAndStatus fails for a sentinel declared in
// those packages and missing here.
var sentinels = map[string]struct {
	err    error
	code   string
	status int
}{
	"aggregate.ErrPermissionDenied": {aggregate.ErrPermissionDenied, "PermissionDenied", 403},
	"aggregate.ErrInvalidState":     {aggregate.ErrInvalidState, "InvalidState", 409},
	"aggregate.ErrNotParticipant":   {aggregate.ErrNotParticipant, "NotParticipant", 404},
	"aggregate.ErrInvalidCommand":   {aggregate.ErrInvalidCommand, "InvalidCommand", 400},
	"aggregate.ErrStageFull":        {aggregate.ErrStageFull, "StageFull", 409},
	"aggregate.ErrCooldown":         {aggregate.ErrCooldown, "Cooldown", 429},
	"aggregate.ErrKeyReused":        {aggregate.ErrKeyReused, "KeyReused", 422},
	"aggregate.ErrBadSnapshot":      {aggregate.ErrBadSnapshot, "BadSnapshot", 500},
	"aggregate.ErrNoMeeting":        {aggregate.ErrNoMeeting, "NoMeeting", 404},
	"aggregate.ErrBackstage":        {aggregate.ErrBackstage, "Backstage", 409},
	"aggregate.ErrStageEnded":       {aggregate.ErrStageEnded, "StageEnded", 409},
	"aggregate.ErrRequestsClosed":   {aggregate.ErrRequestsClosed, "RequestsClosed", 409},
	"stage.ErrRouterClosed":         {stage.ErrRouterClosed, "RouterClosed", 503},
	"stage.ErrSlowConsumer":         {stage.ErrSlowConsumer, "SlowConsumer", 503},
	"stage.ErrClosed":               {eventstore.NotStored(stage.ErrClosed), "Closed", 503},
	"stage.ErrNotStored":            {stage.ErrNotStored, "NotStored", 503},
	"stage.ErrOutcomeUnknown":       {stage.ErrOutcomeUnknown, "OutcomeUnknown", 504},
	"stage.ErrUnavailable":          {eventstore.Unavailable(errors.New("x"), false), "Unavailable", 503},
	"eventstore.ErrConflict":        {eventstore.NotStored(eventstore.ErrConflict), "Conflict", 409},
	"eventstore.ErrInvalidEvents":   {eventstore.NotStored(eventstore.ErrInvalidEvents), "InvalidEvents", 400},
	"eventstore.ErrClosed":          {eventstore.NotStored(eventstore.ErrClosed), "StoreClosed", 503},
	"eventstore.ErrCorrupt":         {eventstore.NotStored(eventstore.ErrCorrupt), "Corrupt", 500},
	"eventstore.ErrHistoryLost":     {eventstore.NotStored(eventstore.ErrHistoryLost), "HistoryLost", 500},
	"eventstore.ErrNotStored":       {eventstore.ErrNotStored, "NotStored", 503},
	"eventstore.ErrOutcomeUnknown":  {eventstore.ErrOutcomeUnknown, "OutcomeUnknown", 504},
	"eventstore.ErrUnavailable":     {eventstore.Unavailable(errors.New("x"), true), "Unavailable", 503},
	"context.DeadlineExceeded":      {eventstore.OutcomeUnknown(context.DeadlineExceeded), "DeadlineExceeded", 504},
	"context.Canceled":              {eventstore.NotStored(context.Canceled), "Canceled", 499},
}

// TestEverySentinelHasCodeAndStatus reads the sources of the packages whose
// errors the Engine returns, and checks that each exported sentinel (a
// package-level Err... variable) has its code and status: a new sentinel
// without them fails here until it is added to the table (errors.go) and
// to docs/errors.md.
func TestEverySentinelHasCodeAndStatus(t *testing.T) {
	found := map[string]bool{}
	for pkg, dir := range map[string]string{"stage": ".", "aggregate": "aggregate", "eventstore": "eventstore"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.VAR {
					continue
				}
				for _, s := range g.Specs {
					for _, n := range s.(*ast.ValueSpec).Names {
						if n.IsExported() && strings.HasPrefix(n.Name, "Err") {
							found[pkg+"."+n.Name] = true
						}
					}
				}
			}
		}
	}
	if len(found) < 15 {
		t.Fatalf("found only %d sentinels: %v", len(found), found)
	}
	for name := range found {
		if _, ok := sentinels[name]; !ok {
			t.Errorf("sentinel %s has no code and HTTP status: add it to errorKinds (errors.go), docs/errors.md and this test", name)
		}
	}
	codes := map[string]string{}
	for name, s := range sentinels {
		if !strings.HasPrefix(name, "context.") && !found[name] {
			t.Errorf("%s: listed, but not declared", name)
		}
		code, status := stage.ErrorCode(s.err), stage.HTTPStatus(s.err)
		if code != s.code || status != s.status {
			t.Errorf("%s: code %q status %d, want %q %d", name, code, status, s.code, s.status)
		}
		if code == stage.CodeInternal || code == "" {
			t.Errorf("%s: no code of its own", name)
		}
		// Wrapped as callers see it, the kind stays.
		w := fmt.Errorf("stage: Join on meeting m: %w", s.err)
		if stage.ErrorCode(w) != code || stage.HTTPStatus(w) != status {
			t.Errorf("%s wrapped: code %q status %d", name, stage.ErrorCode(w), stage.HTTPStatus(w))
		}
		if other, dup := codes[code]; dup && other != name && s.err != sentinels[other].err &&
			!strings.HasSuffix(name, strings.TrimPrefix(other, "stage.")) && !strings.HasSuffix(other, strings.TrimPrefix(name, "stage.")) {
			t.Errorf("%s and %s share code %q", name, other, code)
		}
		codes[code] = name
	}
	if stage.ErrorCode(nil) != "" || stage.HTTPStatus(nil) != http.StatusOK {
		t.Error("nil is not an error")
	}
	if other := errors.New("something else"); stage.ErrorCode(other) != stage.CodeInternal || stage.HTTPStatus(other) != 500 {
		t.Errorf("unknown error: %q %d", stage.ErrorCode(other), stage.HTTPStatus(other))
	}
}

// The most specific kind wins: a rejection over everything, unavailable
// over the context and the outcome.
func TestErrorCodePrecedence(t *testing.T) {
	deadline := eventstore.OutcomeUnknown(fmt.Errorf("append: %w", context.DeadlineExceeded))
	unavail := eventstore.Unavailable(fmt.Errorf("no responders: %w", context.DeadlineExceeded), false)
	for _, c := range []struct {
		err    error
		code   string
		status int
		stored string
	}{
		{deadline, "DeadlineExceeded", 504, stage.StoredUnknown},
		{unavail, "Unavailable", 503, stage.StoredNo},
		{eventstore.OutcomeUnknown(errors.New("connection lost")), "OutcomeUnknown", 504, stage.StoredUnknown},
		{eventstore.NotStored(errors.New("read failed")), "NotStored", 503, stage.StoredNo},
		{&aggregate.Error{Command: "Join", Err: aggregate.ErrStageFull}, "StageFull", 409, ""},
	} {
		b := stage.ErrorBodyOf(c.err)
		if b.Code != c.code || b.Status != c.status || b.Stored != c.stored || b.Message != c.err.Error() {
			t.Errorf("%v: %+v, want %s %d stored %q", c.err, b, c.code, c.status, c.stored)
		}
	}
}

func TestErrorBodyJSONGolden(t *testing.T) {
	until := time.Date(2026, 12, 4, 17, 0, 30, 0, time.UTC)
	for _, c := range []struct {
		err  error
		want string
	}{
		{eventstore.Unavailable(errors.New("nats: no responders available for request"), false),
			`{"code":"Unavailable","status":503,"message":"unavailable, not stored: nats: no responders available for request","stored":"no","unavailable":true}`},
		{eventstore.OutcomeUnknown(context.DeadlineExceeded),
			`{"code":"DeadlineExceeded","status":504,"message":"outcome unknown: context deadline exceeded","stored":"unknown"}`},
		{fmt.Errorf("stage: RequestAccess on meeting m: %w", &aggregate.Error{Command: "RequestAccess", UserID: "bob", Err: aggregate.ErrCooldown, Reason: "denied", Until: until}),
			`{"code":"Cooldown","status":429,"message":"stage: RequestAccess on meeting m: stage: RequestAccess bob: request cooldown: denied",` +
				`"rejection":{"code":"Cooldown","command":"RequestAccess","user":"bob","reason":"denied","until":"2026-12-04T17:00:30Z","message":"stage: RequestAccess bob: request cooldown: denied"}}`},
		{stage.ErrClosed, `{"code":"Closed","status":503,"message":"stage: engine closed"}`},
	} {
		got, err := json.Marshal(stage.ErrorBodyOf(c.err))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
		var back stage.ErrorBody
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, stage.ErrorBodyOf(c.err)) {
			t.Errorf("round trip: %+v", back)
		}
	}
}

func TestResultJSONGolden(t *testing.T) {
	ev := events.Envelope{ID: uuid.MustParse("0193a0b2-0000-7000-8000-000000000001"), MeetingID: "m-1", Version: 4,
		Type: events.TypeAccessGranted, Time: time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC), Actor: "alice", CommandID: "k-1", Schema: events.SchemaVersion,
		Payload: &events.AccessGranted{Users: []string{"bob"}, Skipped: []events.Skip{{UserID: "carol", Reason: "NotParticipant"}}}}
	if err := ev.Seal(events.Hash{}); err != nil {
		t.Fatal(err)
	}
	ev.Seq = 17
	wire, err := events.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	res := stage.Result{Version: 4, Seq: 17, Events: []events.Envelope{ev}, Rejected: aggregate.RejectionsOf(&ev)}
	got, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":4,"seq":17,"duplicate":false,"events":[` + string(wire) + `],"rejected":[` +
		`{"user":"carol","error":{"code":"NotParticipant","command":"GrantAccess","user":"carol","reason":"recorded in version 4","message":"stage: GrantAccess carol: not a participant: recorded in version 4"}}]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var back stage.Result
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, res) {
		t.Errorf("round trip:\ngot  %#v\nwant %#v", back, res)
	}

	empty, _ := json.Marshal(stage.Result{Version: 2, Seq: 9, Duplicate: true})
	if string(empty) != `{"version":2,"seq":9,"duplicate":true,"events":[],"rejected":[]}` {
		t.Errorf("empty: %s", empty)
	}
	if err := json.Unmarshal([]byte(`{"version":4,"seq":17,"events":[{"schema":1}]}`), &back); err == nil {
		t.Error("a malformed event read")
	}
}

// A result from a real Engine survives the trip through JSON.
func TestResultJSONRoundTripFromEngine(t *testing.T) {
	ctx := context.Background()
	eng, err := stage.New(eventstore.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	host := aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	viewer := aggregate.Permissions{StageAccess: aggregate.CanRequest}
	eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "alice", Permissions: host})
	eng.AddParticipant(ctx, "m", aggregate.Participant{UserID: "bob", Permissions: viewer})
	if _, err := eng.RequestAccess(ctx, "m", "bob"); err != nil && !errors.Is(err, aggregate.ErrInvalidCommand) {
		t.Fatal(err)
	}
	res, err := eng.Execute(ctx, "m", aggregate.Command{Actor: "alice", Action: aggregate.GrantAccess{Users: []string{"bob", "carol"}}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back stage.Result
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(data) || len(back.Rejected) != 1 || !errors.Is(back.Rejected[0].Err, aggregate.ErrNotParticipant) ||
		len(back.Events) != 1 || back.Events[0].Hash != res.Events[0].Hash || back.Events[0].Seq != res.Events[0].Seq {
		t.Errorf("round trip:\ngot  %s\nwant %s", again, data)
	}
}
