package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/projections"
)

var (
	host      = aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	requester = aggregate.Permissions{StageAccess: aggregate.CanRequest}
)

func TestNew_validates(t *testing.T) {
	eng, err := stage.New(eventstore.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := New(nil, testAuth); !errors.Is(err, ErrNilEngine) {
		t.Errorf("nil engine: %v", err)
	}
	if _, err := New(eng, nil); !errors.Is(err, ErrNilAuthenticator) {
		t.Errorf("nil authenticator: %v", err)
	}
	for name, o := range map[string]Option{
		"body": WithMaxBodyBytes(0), "heartbeat": WithHeartbeat(-1), "buffer": WithSubscriberBuffer(0),
		"logger": WithLogger(nil), "nil": nil, "write": WithStreamWriteTimeout(0),
	} {
		if _, err := New(eng, testAuth, o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestCommands walks every command route's happy path and its typical
// rejections, checking the answers and the engine's state.
func TestCommands(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m := "m1"
	f.addMeeting(m)

	// requestAccess, getAccessRequests (host only).
	res := f.ok("POST", mpath(m, "/stage/requests"), "user:bob", nil)
	if res.Version != 6 || len(res.Events) != 1 || res.Duplicate {
		t.Fatalf("request: %+v", res)
	}
	r := f.do("GET", mpath(m, "/stage/requests"), "user:alice", nil)
	var reqs struct {
		Meeting  string `json:"meeting"`
		Requests []struct {
			User     string `json:"user"`
			Position int    `json:"position"`
		} `json:"requests"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &reqs) != nil || reqs.Meeting != m || len(reqs.Requests) != 1 || reqs.Requests[0].User != "bob" || reqs.Requests[0].Position != 1 {
		t.Fatalf("requests: %d %s", r.status, r.body)
	}
	f.fail(403, "PermissionDenied", "GET", mpath(m, "/stage/requests"), "user:bob", nil)

	// grantAccess with a target that is not a participant: 200, rejected listed.
	res = f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"bob", "zed"}})
	if len(res.Rejected) != 1 || res.Rejected[0].UserID != "zed" || !errors.Is(res.Rejected[0].Err, aggregate.ErrNotParticipant) {
		t.Fatalf("grant rejected: %+v", res.Rejected)
	}
	// Only ineligible targets: the first one's error, with the rejected targets.
	p := f.fail(404, "NotParticipant", "POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"zed", "yan"}})
	if p.Rejection == nil || p.Rejection.UserID != "zed" || len(p.Rejected) != 2 || p.Rejected[1].UserID != "yan" ||
		!errors.Is(p.Rejected[1].Err, aggregate.ErrNotParticipant) {
		t.Fatalf("grant zed and yan: %+v", p)
	}
	f.fail(403, "PermissionDenied", "POST", mpath(m, "/stage/grant"), "user:bob", UsersBody{Users: []string{"carol"}})

	// join, roster, status, leave.
	f.ok("POST", mpath(m, "/stage/join"), "user:bob", nil)
	r = f.do("GET", mpath(m, "/stage"), "user:carol", nil)
	var ro struct {
		Meeting string   `json:"meeting"`
		OnStage []string `json:"onStage"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &ro) != nil || ro.Meeting != m || len(ro.OnStage) != 1 || ro.OnStage[0] != "bob" {
		t.Fatalf("roster: %d %s", r.status, r.body)
	}
	if r := f.do("GET", mpath(m, "/stage"), "backend", nil); r.status != 200 {
		t.Fatalf("roster for the backend: %d %s", r.status, r.body)
	}
	r = f.do("GET", mpath(m, "/stage/status"), "user:bob", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"status":"OnStage"`) || !strings.Contains(string(r.body), `"user":"bob"`) {
		t.Fatalf("status: %d %s", r.status, r.body)
	}
	f.fail(404, "NotParticipant", "GET", mpath(m, "/stage/status"), "user:zed", nil)
	f.ok("POST", mpath(m, "/stage/leave"), "user:bob", nil)
	f.fail(403, "PermissionDenied", "POST", mpath(m, "/stage/join"), "user:bob", nil)
	f.fail(409, "InvalidState", "POST", mpath(m, "/stage/leave"), "user:bob", "{}")

	// cancelRequestAccess.
	f.ok("POST", mpath(m, "/stage/requests"), "user:carol", "{}")
	f.ok("DELETE", mpath(m, "/stage/requests"), "user:carol", nil)
	f.fail(409, "InvalidState", "DELETE", mpath(m, "/stage/requests"), "user:carol", nil)

	// denyAccess with a reason; kick with a reason.
	f.ok("POST", mpath(m, "/stage/requests"), "user:carol", nil)
	res = f.ok("POST", mpath(m, "/stage/deny"), "user:hank", UsersBody{Users: []string{"carol"}, Reason: "not now"})
	if !strings.Contains(mustJSON(t, res), `"reason":"not now"`) {
		t.Fatalf("deny: %s", mustJSON(t, res))
	}
	f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"dave"}})
	f.ok("POST", mpath(m, "/stage/join"), "user:dave", nil)
	res = f.ok("POST", mpath(m, "/stage/kick"), "user:alice", UsersBody{Users: []string{"dave"}, Reason: "off topic"})
	if !strings.Contains(mustJSON(t, res), `"reason":"off topic"`) {
		t.Fatalf("kick: %s", mustJSON(t, res))
	}
	if st, _ := f.eng.Status(ctx, m, "dave"); st != aggregate.OffStage {
		t.Fatalf("dave after kick: %v", st)
	}

	// configure, then the cooldown it sets: 429 with Retry-After.
	f.ok("PUT", mpath(m, "/stage/settings"), "user:alice", `{"requestCooldown":"1m","maxOnStage":3}`)
	if ro, _ := f.eng.Roster(ctx, m); ro.Settings.RequestCooldown != time.Minute || ro.Settings.MaxOnStage != 3 {
		t.Fatalf("settings: %+v", ro.Settings)
	}
	f.fail(403, "PermissionDenied", "PUT", mpath(m, "/stage/settings"), "user:bob", `{}`)
	f.fail(400, "BadRequest", "PUT", mpath(m, "/stage/settings"), "user:alice", `{"cooldown":"1m"}`)
	f.fail(400, "InvalidCommand", "PUT", mpath(m, "/stage/settings"), "user:alice", `{"maxOnStage":-1}`)
	f.ok("POST", mpath(m, "/stage/requests"), "user:dave", nil)
	f.ok("POST", mpath(m, "/stage/deny"), "user:alice", UsersBody{Users: []string{"dave"}})
	rr := f.do("POST", mpath(m, "/stage/requests"), "user:dave", nil)
	if p := rr.problem(t); rr.status != 429 || p.Code != "Cooldown" || p.Rejection == nil || p.Rejection.Until.IsZero() {
		t.Fatalf("cooldown: %d %s", rr.status, rr.body)
	}
	if s, err := strconv.Atoi(rr.header.Get("Retry-After")); err != nil || s < 50 || s > 60 {
		t.Fatalf("Retry-After %q", rr.header.Get("Retry-After"))
	}

	// ban (with and without until) and lift.
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	f.ok("PUT", mpath(m, "/stage/bans/bob"), "user:alice", BanBody{Until: until})
	p = f.fail(403, "PermissionDenied", "POST", mpath(m, "/stage/requests"), "user:bob", nil)
	if p.Rejection == nil || !p.Rejection.Until.Equal(until) {
		t.Fatalf("banned: %+v", p.Rejection)
	}
	f.ok("DELETE", mpath(m, "/stage/bans/bob"), "user:alice", nil)
	f.ok("PUT", mpath(m, "/stage/bans/bob"), "user:alice", nil)
	f.ok("DELETE", mpath(m, "/stage/bans/bob"), "user:alice", nil)
	f.ok("POST", mpath(m, "/stage/requests"), "user:bob", nil)

	// The backend's commands.
	f.ok("PUT", mpath(m, "/participants/bob/permissions"), "backend", aggregate.Permissions{StageAccess: aggregate.Allowed})
	if ro, _ := f.eng.Roster(ctx, m); !hasParticipant(ro.Participants, "bob", aggregate.Allowed) {
		t.Fatalf("permissions: %+v", ro.Participants)
	}
	f.fail(400, "BadRequest", "PUT", mpath(m, "/participants/bob/permissions"), "backend", `{"stageAccess":"Allowed","admin":true}`)
	f.fail(400, "InvalidCommand", "PUT", mpath(m, "/participants/bob/permissions"), "backend", `{"stageAccess":"Sometimes"}`)
	f.ok("PUT", mpath(m, "/stage/settings"), "user:alice", `{"reconnectGrace":"1m"}`)
	f.ok("POST", mpath(m, "/participants/bob/disconnect"), "backend", nil)
	if ro, _ := f.eng.Roster(ctx, m); !disconnected(ro.Participants, "bob") {
		t.Fatalf("disconnect: %+v", ro.Participants)
	}
	f.ok("POST", mpath(m, "/participants/bob/reconnect"), "backend", nil)
	f.fail(409, "InvalidState", "POST", mpath(m, "/participants/bob/reconnect"), "backend", nil)
	f.ok("DELETE", mpath(m, "/participants/bob"), "backend", nil)
	f.fail(404, "NotParticipant", "GET", mpath(m, "/stage/status"), "user:bob", nil)
	f.fail(404, "NotParticipant", "DELETE", mpath(m, "/participants/bob"), "backend", nil)
	f.fail(400, "InvalidCommand", "POST", mpath(m, "/participants"), "backend", ParticipantBody{User: "", Permissions: requester})
}

func hasParticipant(ps []projections.RosterEntry, user string, a aggregate.StageAccess) bool {
	for _, p := range ps {
		if p.UserID == user {
			return p.Permissions.StageAccess == a
		}
	}
	return false
}

func disconnected(ps []projections.RosterEntry, user string) bool {
	for _, p := range ps {
		if p.UserID == user {
			return !p.DisconnectedAt.IsZero()
		}
	}
	return false
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNoMeeting: every route on a meeting with no events answers 404 NoMeeting.
func TestNoMeeting(t *testing.T) {
	f := newFixture(t)
	m := "nowhere"
	for _, c := range []struct{ method, path, token string }{
		{"GET", "/stage", "user:bob"}, {"GET", "/stage/status", "user:bob"}, {"GET", "/stage/requests", "user:bob"},
		{"POST", "/stage/requests", "user:bob"}, {"POST", "/stage/join", "user:bob"},
		{"DELETE", "/participants/bob", "backend"}, {"GET", "/events", "user:bob"},
	} {
		f.fail(404, "NoMeeting", c.method, mpath(m, c.path), c.token, nil)
	}
	f.fail(400, "InvalidCommand", "GET", mpath("bad%01id", "/stage"), "user:bob", nil)
}

// TestAuth: no or bad credential is 401 and changes nothing; the wrong kind
// of credential is 403 and changes nothing.
func TestAuth(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m := "m1"
	f.addMeeting(m)
	before, _ := f.eng.Roster(ctx, m)
	for _, tok := range []string{"", "garbage"} {
		for _, c := range []struct{ method, path string }{
			{"POST", "/stage/requests"}, {"POST", "/stage/join"}, {"GET", "/stage"}, {"GET", "/events"},
			{"POST", "/participants"}, {"DELETE", "/participants/bob"},
		} {
			r := f.do(c.method, mpath(m, c.path), tok, `{"user":"x","permissions":{"stageAccess":"Allowed"}}`)
			if p := r.problem(t); r.status != 401 || p.Code != CodeUnauthenticated || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("%q %s %s: %d %s", tok, c.method, c.path, r.status, r.body)
			}
		}
	}
	// Basic credentials are not bearer ones.
	f.fail(401, CodeUnauthenticated, "POST", mpath(m, "/stage/requests"), "", nil, "Authorization", "Basic dXNlcjpwdw==")
	// A user's credential on the backend's routes.
	for _, c := range []struct{ method, path string }{
		{"POST", "/participants"}, {"DELETE", "/participants/bob"}, {"PUT", "/participants/bob/permissions"},
		{"POST", "/participants/bob/disconnect"}, {"POST", "/participants/bob/reconnect"},
	} {
		f.fail(403, CodeForbidden, c.method, mpath(m, c.path), "user:alice", `{"stageAccess":"Allowed"}`)
	}
	// The backend's credential on the user's routes.
	for _, c := range []struct{ method, path string }{
		{"POST", "/stage/requests"}, {"DELETE", "/stage/requests"}, {"GET", "/stage/requests"}, {"GET", "/stage/status"},
		{"POST", "/stage/grant"}, {"POST", "/stage/deny"}, {"POST", "/stage/join"}, {"POST", "/stage/leave"},
		{"POST", "/stage/kick"}, {"PUT", "/stage/settings"}, {"PUT", "/stage/bans/bob"}, {"DELETE", "/stage/bans/bob"},
		{"GET", "/events"},
	} {
		f.fail(403, CodeForbidden, c.method, mpath(m, c.path), "backend", `{"users":["bob"]}`)
	}
	if after, _ := f.eng.Roster(ctx, m); after.Version != before.Version {
		t.Fatalf("version %d -> %d", before.Version, after.Version)
	}
}

// TestBodies: bad JSON, unknown fields, trailing data, a missing body, an
// oversized body.
func TestBodies(t *testing.T) {
	f := newFixture(t, WithMaxBodyBytes(256))
	ctx := context.Background()
	m := "m1"
	f.addMeeting(m)
	f.ok("POST", mpath(m, "/stage/requests"), "user:bob", nil)
	before, _ := f.eng.Roster(ctx, m)
	grant := mpath(m, "/stage/grant")
	for name, body := range map[string]string{
		"not JSON": `{users:`, "unknown field": `{"users":["bob"],"as":"alice"}`, "trailing": `{"users":["bob"]} {}`,
		"wrong type": `{"users":"bob"}`, "empty": ``, "array": `[]`,
	} {
		p := f.fail(400, CodeBadRequest, "POST", grant, "user:alice", body)
		if p.Detail == "" {
			t.Errorf("%s: no detail", name)
		}
	}
	f.fail(400, CodeBadRequest, "POST", mpath(m, "/stage/join"), "user:bob", `{"actor":"alice"}`)
	big := `{"users":["` + strings.Repeat("b", 300) + `"]}`
	f.fail(413, CodeBodyTooLarge, "POST", grant, "user:alice", big)
	if after, _ := f.eng.Roster(ctx, m); after.Version != before.Version {
		t.Fatalf("version %d -> %d", before.Version, after.Version)
	}
	// The limit is the option's: the default takes that body (and the engine rejects the id).
	g := newFixture(t)
	g.addMeeting(m)
	g.fail(400, "InvalidCommand", "POST", grant, "user:alice", big)
}

func TestRoutes_unknownAndHealth(t *testing.T) {
	f := newFixture(t)
	f.fail(404, CodeNotFound, "GET", "/v2/nothing", "user:bob", nil)
	f.fail(404, CodeNotFound, "GET", mpath("m", "/stage/nothing"), "", nil)
	r := f.do("PATCH", mpath("m", "/stage/join"), "user:bob", nil)
	if p := r.problem(t); r.status != 405 || p.Code != CodeMethodNotAllowed || !strings.Contains(r.header.Get("Allow"), "POST") {
		t.Fatalf("405: %d %s %v", r.status, r.body, r.header)
	}
	r = f.do("GET", "/healthz", "", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"ok"`) {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
	r = f.do("GET", "/v1/openapi.json", "", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" || string(r.body) != string(OpenAPI()) {
		t.Fatalf("openapi: %d", r.status)
	}
	if err := f.h.Close(); err != nil {
		t.Fatal(err)
	}
	f.fail(503, "Closed", "GET", "/healthz", "", nil)
	f.fail(503, "Closed", "POST", mpath("m", "/stage/join"), "user:bob", nil)
}

// TestIdempotencyKey: a retried request answers what the first did; the
// same key for another command is KeyReused; keys are the caller's.
func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	m := "m1"
	f.addMeeting(m)
	path := mpath(m, "/stage/requests")
	first := f.ok("POST", path, "user:bob", nil, "Idempotency-Key", "k1")
	again := f.ok("POST", path, "user:bob", nil, "Idempotency-Key", "k1")
	if first.Duplicate || !again.Duplicate || again.Version != first.Version || again.Seq != first.Seq ||
		len(again.Events) != 1 || again.Events[0].ID != first.Events[0].ID {
		t.Fatalf("first %+v, again %+v", first, again)
	}
	// Without the key the same request is a new command: rejected (already requested).
	f.fail(409, "InvalidState", "POST", path, "user:bob", nil)
	// The same key for another command by the same caller.
	f.fail(422, "KeyReused", "DELETE", path, "user:bob", nil, "Idempotency-Key", "k1")
	// Another caller's key is theirs.
	f.ok("POST", path, "user:carol", nil, "Idempotency-Key", "k1")
	// A list command retried answers the same rejected targets.
	g1 := f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"bob", "zed"}}, "Idempotency-Key", "g")
	g2 := f.ok("POST", mpath(m, "/stage/grant"), "user:alice", UsersBody{Users: []string{"bob", "zed"}}, "Idempotency-Key", "g")
	if !g2.Duplicate || g2.Version != g1.Version || len(g2.Rejected) != 1 || g2.Rejected[0].UserID != "zed" {
		t.Fatalf("grant retried: %s vs %s", mustJSON(t, g1), mustJSON(t, g2))
	}
	if v, _ := f.eng.Roster(context.Background(), m); v.Version != g1.Version {
		t.Fatalf("roster version %d, want %d", v.Version, g1.Version)
	}
	f.fail(400, "InvalidCommand", "POST", path, "user:dave", nil, "Idempotency-Key", strings.Repeat("k", 1000))
}

func TestProblemOf(t *testing.T) {
	if p := ProblemOf(nil); p.Status != 0 || p.Code != "" {
		t.Fatalf("nil: %+v", p)
	}
	err := &aggregate.Error{Command: "Join", UserID: "bob", Err: aggregate.ErrInvalidState, Reason: "x"}
	p := ProblemOf(err)
	b := stage.ErrorBodyOf(err)
	if p.Code != b.Code || p.Status != b.Status || p.Detail != b.Message || p.Rejection != b.Rejection || p.Type != ProblemTypePrefix+"InvalidState" || p.Title != "Conflict" {
		t.Fatalf("%+v vs %+v", p, b)
	}
	if p := ProblemOf(context.Canceled); p.Status != stage.StatusClientClosedRequest || p.Title != "Client Closed Request" {
		t.Fatalf("canceled: %+v", p)
	}
	if p := ProblemOf(stage.ErrClosed); p.Status != http.StatusServiceUnavailable || p.Code != "Closed" {
		t.Fatalf("closed: %+v", p)
	}
}
