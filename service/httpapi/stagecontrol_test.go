package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
)

// eventPayload returns the payload JSON of res's only event of type typ.
func eventPayload(t testing.TB, res stage.Result, typ string) map[string]any {
	t.Helper()
	var doc struct {
		Events []struct {
			Type    string         `json:"type"`
			Actor   string         `json:"actor"`
			Payload map[string]any `json:"payload"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(mustJSON(t, res)), &doc); err != nil {
		t.Fatal(err)
	}
	for _, e := range doc.Events {
		if e.Type == typ {
			if e.Payload == nil {
				e.Payload = map[string]any{}
			}
			return e.Payload
		}
	}
	t.Fatalf("no %s event in %s", typ, mustJSON(t, res))
	return nil
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func (f *fixture) status(meeting, user string) aggregate.Status {
	f.t.Helper()
	st, err := f.eng.Status(context.Background(), meeting, user)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// TestStageControls walks every stage control route's happy path and its
// refusals over a real socket: the actor is the token's user, and the
// host-only rules are the aggregate's (a co-host or a viewer gets 403
// PermissionDenied).
func TestStageControls(t *testing.T) {
	f := newFixture(t)
	m := "m1"
	f.addMeeting(m) // alice and hank hosts; bob, carol, dave CanRequest

	// Co-hosts: promote, the co-host's limits, demote.
	res := f.ok("PUT", mpath(m, "/stage/cohosts/bob"), "user:alice", nil)
	if p := eventPayload(t, res, "CoHostPromoted"); p["user"] != "bob" || res.Events[0].Actor != "alice" {
		t.Fatalf("promote: %s", mustJSON(t, res))
	}
	f.fail(403, "PermissionDenied", "PUT", mpath(m, "/stage/cohosts/carol"), "user:bob", nil)   // a co-host
	f.fail(403, "PermissionDenied", "PUT", mpath(m, "/stage/cohosts/carol"), "user:carol", nil) // a viewer
	f.fail(403, "PermissionDenied", "DELETE", mpath(m, "/stage/cohosts/bob"), "user:bob", nil)
	f.fail(409, "InvalidState", "PUT", mpath(m, "/stage/cohosts/bob"), "user:alice", nil)
	f.fail(409, "InvalidState", "PUT", mpath(m, "/stage/cohosts/hank"), "user:alice", nil)
	f.fail(404, "NotParticipant", "PUT", mpath(m, "/stage/cohosts/zed"), "user:alice", nil)
	f.fail(400, "BadRequest", "PUT", mpath(m, "/stage/cohosts/carol"), "user:alice", `{"user":"carol"}`)
	for _, c := range []struct{ method, path string }{
		{"POST", "/stage/start"}, {"POST", "/stage/end"}, {"POST", "/stage/requests/close"},
		{"POST", "/stage/requests/open"}, {"POST", "/stage/bring/carol"},
	} {
		p := f.fail(403, "PermissionDenied", c.method, mpath(m, c.path), "user:bob", nil) // a co-host: host-only controls
		if p.Rejection == nil || !errors.Is(p.Rejection, aggregate.ErrPermissionDenied) {
			t.Fatalf("%s %s by a co-host: %+v", c.method, c.path, p)
		}
	}
	res = f.ok("DELETE", mpath(m, "/stage/cohosts/bob"), "user:alice", "{}")
	if p := eventPayload(t, res, "CoHostDemoted"); p["user"] != "bob" {
		t.Fatalf("demote: %s", mustJSON(t, res))
	}
	f.fail(409, "InvalidState", "DELETE", mpath(m, "/stage/cohosts/bob"), "user:alice", nil)

	// Requests closed: pending ones stay, a new one is 409 RequestsClosed.
	f.ok("POST", mpath(m, "/stage/requests"), "user:carol", nil)
	f.fail(403, "PermissionDenied", "POST", mpath(m, "/stage/requests/close"), "user:dave", nil) // a viewer
	res = f.ok("POST", mpath(m, "/stage/requests/close"), "user:alice", nil)
	if p := eventPayload(t, res, "RequestsClosed"); p["denyPending"] != nil || p["denied"] != nil {
		t.Fatalf("close: %s", mustJSON(t, res))
	}
	p := f.fail(409, "RequestsClosed", "POST", mpath(m, "/stage/requests"), "user:dave", nil)
	if p.Rejection == nil || !errors.Is(p.Rejection, aggregate.ErrRequestsClosed) || p.Rejection.UserID != "dave" {
		t.Fatalf("requests closed: %+v", p)
	}
	if st := f.status(m, "carol"); st != aggregate.RequestedToJoinStage {
		t.Fatalf("carol's pending request after close: %v", st)
	}
	f.fail(409, "InvalidState", "POST", mpath(m, "/stage/requests/close"), "user:alice", nil)
	f.fail(403, "PermissionDenied", "POST", mpath(m, "/stage/requests/open"), "user:dave", nil)
	res = f.ok("POST", mpath(m, "/stage/requests/open"), "user:hank", nil)
	eventPayload(t, res, "RequestsOpened")
	f.fail(409, "InvalidState", "POST", mpath(m, "/stage/requests/open"), "user:alice", nil)
	f.ok("POST", mpath(m, "/stage/requests"), "user:dave", nil)
	// Closing with denyPending denies them all in the same event.
	f.fail(400, "BadRequest", "POST", mpath(m, "/stage/requests/close"), "user:alice", `{"deny":true}`)
	f.fail(400, "BadRequest", "POST", mpath(m, "/stage/requests/close"), "user:alice", `{"denyPending":"yes"}`)
	res = f.ok("POST", mpath(m, "/stage/requests/close"), "user:alice", CloseRequestsBody{DenyPending: true})
	if p := eventPayload(t, res, "RequestsClosed"); p["denyPending"] != true || !slices.Equal(strs(p["denied"]), []string{"carol", "dave"}) {
		t.Fatalf("close, deny pending: %s", mustJSON(t, res))
	}
	if f.status(m, "carol") != aggregate.OffStage || f.status(m, "dave") != aggregate.OffStage {
		t.Fatal("pending requests not denied")
	}
	f.ok("POST", mpath(m, "/stage/requests/open"), "user:alice", nil)

	// An invitation, declined.
	res = f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"carol"}})
	if p := eventPayload(t, res, "AccessGranted"); !slices.Equal(strs(p["invited"]), []string{"carol"}) {
		t.Fatalf("invite: %s", mustJSON(t, res))
	}
	res = f.ok("POST", mpath(m, "/stage/decline"), "user:carol", nil)
	if eventPayload(t, res, "InvitationDeclined"); res.Events[0].Actor != "carol" || f.status(m, "carol") != aggregate.OffStage {
		t.Fatalf("decline: %s", mustJSON(t, res))
	}
	f.fail(409, "InvalidState", "POST", mpath(m, "/stage/decline"), "user:carol", nil)
	f.fail(400, "BadRequest", "POST", mpath(m, "/stage/decline"), "user:carol", `{"user":"dave"}`)

	// Bringing on stage: off by default, then allowed by the settings.
	p = f.fail(403, "PermissionDenied", "POST", mpath(m, "/stage/bring/carol"), "user:alice", nil)
	if p.Rejection == nil || !strings.Contains(p.Rejection.Reason, "AllowBringOnStage") {
		t.Fatalf("bring, not allowed: %+v", p)
	}
	f.ok("PUT", mpath(m, "/stage/settings"), "user:alice", `{"allowBringOnStage":true,"requestTTL":"2m"}`)
	f.fail(403, "PermissionDenied", "POST", mpath(m, "/stage/bring/carol"), "user:dave", nil) // a viewer
	res = f.ok("POST", mpath(m, "/stage/bring/carol"), "user:alice", nil)
	if p := eventPayload(t, res, "BroughtOnStage"); p["user"] != "carol" || res.Events[0].Actor != "alice" || f.status(m, "carol") != aggregate.OnStage {
		t.Fatalf("bring: %s", mustJSON(t, res))
	}
	f.fail(409, "InvalidState", "POST", mpath(m, "/stage/bring/carol"), "user:alice", nil)
	f.fail(404, "NotParticipant", "POST", mpath(m, "/stage/bring/zed"), "user:alice", nil)

	// Ending the stage for everyone, then StageEnded for whoever tries.
	f.ok("POST", mpath(m, "/stage/requests"), "user:dave", nil)
	f.fail(403, "PermissionDenied", "POST", mpath(m, "/stage/end"), "user:carol", nil) // on stage, not a host
	res = f.ok("POST", mpath(m, "/stage/end"), "user:alice", nil)
	if p := eventPayload(t, res, "StageEnded"); p["from"] != "Live" || !slices.Equal(strs(p["onStage"]), []string{"carol"}) ||
		!slices.Equal(strs(p["requests"]), []string{"dave"}) {
		t.Fatalf("end: %s", mustJSON(t, res))
	}
	if f.status(m, "carol") != aggregate.OffStage || f.status(m, "dave") != aggregate.OffStage {
		t.Fatal("users left on stage or requested after the end")
	}
	p = f.fail(409, "StageEnded", "POST", mpath(m, "/stage/requests"), "user:dave", nil)
	if p.Rejection == nil || !errors.Is(p.Rejection, aggregate.ErrStageEnded) {
		t.Fatalf("stage ended: %+v", p)
	}
	f.fail(409, "StageEnded", "POST", mpath(m, "/stage/bring/carol"), "user:alice", nil)
	f.fail(409, "StageEnded", "POST", mpath(m, "/stage/join"), "user:alice", nil)
	f.fail(409, "InvalidState", "POST", mpath(m, "/stage/end"), "user:alice", nil)

	// Starting it again: a new period.
	f.fail(403, "PermissionDenied", "POST", mpath(m, "/stage/start"), "user:dave", nil)
	res = f.ok("POST", mpath(m, "/stage/start"), "user:hank", nil)
	if p := eventPayload(t, res, "StageStarted"); p["from"] != "Ended" {
		t.Fatalf("start: %s", mustJSON(t, res))
	}
	f.fail(409, "InvalidState", "POST", mpath(m, "/stage/start"), "user:alice", nil)
	f.ok("POST", mpath(m, "/stage/requests"), "user:dave", nil)
}

// TestStageControls_backstage: a meeting configured to start backstage
// answers a queued request 409 Backstage until a host starts the stage.
func TestStageControls_backstage(t *testing.T) {
	f := newFixture(t)
	m := "m2"
	f.addMeeting(m)
	f.ok("PUT", mpath(m, "/stage/settings"), "user:alice", `{"startBackstage":true}`)
	p := f.fail(409, "Backstage", "POST", mpath(m, "/stage/requests"), "user:bob", nil)
	if p.Rejection == nil || !errors.Is(p.Rejection, aggregate.ErrBackstage) || p.Type != ProblemTypePrefix+"Backstage" || p.Title != "Conflict" {
		t.Fatalf("backstage: %+v", p)
	}
	// Hosts prepare backstage: they join, and invite speakers who join.
	f.ok("POST", mpath(m, "/stage/join"), "user:alice", nil)
	f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"carol"}})
	f.ok("POST", mpath(m, "/stage/join"), "user:carol", nil)
	res := f.ok("POST", mpath(m, "/stage/start"), "user:alice", nil)
	if p := eventPayload(t, res, "StageStarted"); p["from"] != "Backstage" {
		t.Fatalf("start: %s", mustJSON(t, res))
	}
	f.ok("POST", mpath(m, "/stage/requests"), "user:bob", nil)
}

// TestStageControls_settingsRoundTrip: the new settings go in through
// configure and come back in the roster as they were written.
func TestStageControls_settingsRoundTrip(t *testing.T) {
	f := newFixture(t)
	m := "m3"
	f.addMeeting(m)
	f.ok("PUT", mpath(m, "/stage/settings"), "user:alice", `{"maxOnStage":3,"requestTTL":"90s","startBackstage":true,"allowBringOnStage":true}`)
	ro, err := f.eng.Roster(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	want := aggregate.Settings{MaxOnStage: 3, RequestTTL: 90 * time.Second, StartBackstage: true, AllowBringOnStage: true}
	if ro.Settings != want {
		t.Fatalf("engine's settings %+v, want %+v", ro.Settings, want)
	}
	r := f.do("GET", mpath(m, "/stage"), "user:bob", nil)
	var doc struct {
		Settings json.RawMessage `json:"settings"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &doc) != nil {
		t.Fatalf("roster: %d %s", r.status, r.body)
	}
	var got aggregate.Settings
	if err := json.Unmarshal(doc.Settings, &got); err != nil || got != want {
		t.Fatalf("roster settings %s: %+v, %v", doc.Settings, got, err)
	}
	for _, k := range []string{`"requestTTL":"1m30s"`, `"startBackstage":true`, `"allowBringOnStage":true`} {
		if !strings.Contains(string(doc.Settings), k) {
			t.Errorf("roster settings %s lack %s", doc.Settings, k)
		}
	}
	// Writing the roster's settings back is accepted as they are; a
	// wrong type or a negative TTL is refused.
	f.ok("PUT", mpath(m, "/stage/settings"), "user:alice", []byte(doc.Settings))
	f.fail(400, "BadRequest", "PUT", mpath(m, "/stage/settings"), "user:alice", `{"startBackstage":"yes"}`)
	f.fail(400, "BadRequest", "PUT", mpath(m, "/stage/settings"), "user:alice", `{"requestTTL":"soon"}`)
	f.fail(400, "InvalidCommand", "PUT", mpath(m, "/stage/settings"), "user:alice", `{"requestTTL":"-1s"}`)
	// Back to off: absent fields are off.
	f.ok("PUT", mpath(m, "/stage/settings"), "user:alice", `{}`)
	if ro, _ := f.eng.Roster(context.Background(), m); !ro.Settings.IsZero() {
		t.Fatalf("settings after {}: %+v", ro.Settings)
	}
}

// TestStageControls_authAndIdempotency: the backend's credential may not
// call the controls (403 Forbidden, nothing stored); a retried control
// with the same Idempotency-Key answers what the first did.
func TestStageControls_authAndIdempotency(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m := "m4"
	f.addMeeting(m)
	before, _ := f.eng.Roster(ctx, m)
	for _, c := range []struct{ method, path string }{
		{"POST", "/stage/start"}, {"POST", "/stage/end"}, {"POST", "/stage/requests/close"}, {"POST", "/stage/requests/open"},
		{"PUT", "/stage/cohosts/bob"}, {"DELETE", "/stage/cohosts/bob"}, {"POST", "/stage/decline"}, {"POST", "/stage/bring/bob"},
	} {
		f.fail(403, CodeForbidden, c.method, mpath(m, c.path), "backend", nil)
		f.fail(401, CodeUnauthenticated, c.method, mpath(m, c.path), "", nil)
		f.fail(404, "NoMeeting", c.method, mpath("nowhere", c.path), "user:alice", nil)
	}
	if after, _ := f.eng.Roster(ctx, m); after.Version != before.Version {
		t.Fatalf("version %d -> %d", before.Version, after.Version)
	}

	first := f.ok("POST", mpath(m, "/stage/requests/close"), "user:alice", `{"denyPending":true}`, "Idempotency-Key", "c1")
	again := f.ok("POST", mpath(m, "/stage/requests/close"), "user:alice", `{"denyPending":true}`, "Idempotency-Key", "c1")
	if first.Duplicate || !again.Duplicate || again.Version != first.Version || again.Events[0].ID != first.Events[0].ID {
		t.Fatalf("close retried: %s vs %s", mustJSON(t, first), mustJSON(t, again))
	}
	f.fail(409, "InvalidState", "POST", mpath(m, "/stage/requests/close"), "user:alice", nil)
	f.fail(422, "KeyReused", "POST", mpath(m, "/stage/end"), "user:alice", nil, "Idempotency-Key", "c1")
	first = f.ok("PUT", mpath(m, "/stage/cohosts/bob"), "user:alice", nil, "Idempotency-Key", "p1")
	again = f.ok("PUT", mpath(m, "/stage/cohosts/bob"), "user:alice", nil, "Idempotency-Key", "p1")
	if !again.Duplicate || again.Version != first.Version {
		t.Fatalf("promote retried: %s vs %s", mustJSON(t, first), mustJSON(t, again))
	}
}
