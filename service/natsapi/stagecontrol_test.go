package natsapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/service/natsapi"
)

// payload returns the payload of res's event of type typ.
func payload(t *testing.T, res stage.Result, typ string) map[string]any {
	t.Helper()
	for _, e := range res.Events {
		if string(e.Type) != typ {
			continue
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Payload map[string]any `json:"payload"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Payload == nil {
			doc.Payload = map[string]any{}
		}
		return doc.Payload
	}
	t.Fatalf("no %s event in %+v", typ, res)
	return nil
}

func users(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestService_stageControls calls every stage control endpoint through a
// real client and the embedded server: each happy path, and the refusals
// of a co-host or a viewer trying a host's control, of a viewer
// requesting while requests are closed, backstage or after the end.
func TestService_stageControls(t *testing.T) {
	f := setup(t)
	start(t, f.nc, f.eng)
	c := connect(t, f.srv)
	m := M{"meeting": "m1"}
	with := func(k string, v any) M { return M{"meeting": "m1", k: v} }
	status := func(u string) aggregate.Status {
		t.Helper()
		st, err := f.eng.Status(context.Background(), "m1", u)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	var res stage.Result
	for _, u := range []string{"alice", "hank"} {
		ok(t, c, "addParticipant", "backend", "", M{"meeting": "m1", "user": u, "permissions": host}, &res)
	}
	for _, u := range []string{"bob", "carol", "dave"} {
		ok(t, c, "addParticipant", "backend", "", M{"meeting": "m1", "user": u, "permissions": viewer}, &res)
	}

	// Co-hosts.
	ok(t, c, "promoteCoHost", "u:alice", "", with("user", "bob"), &res)
	if p := payload(t, res, "CoHostPromoted"); p["user"] != "bob" || res.Events[0].Actor != "alice" {
		t.Fatalf("promote: %+v", res)
	}
	fails(t, c, "promoteCoHost", "u:bob", with("user", "carol"), 403, "PermissionDenied")     // a co-host
	fails(t, c, "promoteCoHost", "u:carol", with("user", "dave"), 403, "PermissionDenied")    // a viewer
	fails(t, c, "promoteCoHost", "u:alice", with("user", "hank"), 409, "InvalidState")        // a host
	fails(t, c, "promoteCoHost", "u:alice", m, 400, natsapi.CodeBadRequest)                   // no user
	fails(t, c, "promoteCoHost", "backend", with("user", "dave"), 403, natsapi.CodeForbidden) // the backend
	for _, e := range []string{"startStage", "endStage", "closeRequests", "openRequests"} {
		b := fails(t, c, e, "u:bob", m, 403, "PermissionDenied") // a co-host: host-only controls
		if b.Rejection == nil || !errors.Is(b.Rejection, aggregate.ErrPermissionDenied) {
			t.Fatalf("%s by a co-host: %+v", e, b)
		}
	}
	fails(t, c, "demoteCoHost", "u:bob", with("user", "bob"), 403, "PermissionDenied")
	ok(t, c, "demoteCoHost", "u:alice", "", with("user", "bob"), &res)
	if p := payload(t, res, "CoHostDemoted"); p["user"] != "bob" {
		t.Fatalf("demote: %+v", res)
	}
	fails(t, c, "demoteCoHost", "u:alice", with("user", "bob"), 409, "InvalidState")

	// Requests closed and opened.
	ok(t, c, "requestAccess", "u:carol", "", m, &res)
	fails(t, c, "closeRequests", "u:dave", m, 403, "PermissionDenied") // a viewer
	ok(t, c, "closeRequests", "u:alice", "", m, &res)
	if p := payload(t, res, "RequestsClosed"); p["denied"] != nil {
		t.Fatalf("close: %+v", res)
	}
	b := fails(t, c, "requestAccess", "u:dave", m, 409, "RequestsClosed")
	if b.Rejection == nil || !errors.Is(b.Rejection, aggregate.ErrRequestsClosed) {
		t.Fatalf("requests closed: %+v", b)
	}
	if status("carol") != aggregate.RequestedToJoinStage {
		t.Fatal("carol's request did not stay")
	}
	fails(t, c, "closeRequests", "u:alice", m, 409, "InvalidState")
	fails(t, c, "openRequests", "u:alice", with("denyPending", true), 400, natsapi.CodeBadRequest)
	ok(t, c, "openRequests", "u:hank", "", m, &res)
	payload(t, res, "RequestsOpened")
	ok(t, c, "requestAccess", "u:dave", "", m, &res)
	ok(t, c, "closeRequests", "u:alice", "", with("denyPending", true), &res)
	if p := payload(t, res, "RequestsClosed"); p["denyPending"] != true || !slices.Equal(users(p["denied"]), []string{"carol", "dave"}) {
		t.Fatalf("close, deny pending: %+v", res)
	}
	ok(t, c, "openRequests", "u:alice", "", m, &res)

	// An invitation, declined.
	ok(t, c, "grantAccess", "u:alice", "", with("users", []string{"carol"}), &res)
	ok(t, c, "declineInvitation", "u:carol", "", m, &res)
	if payload(t, res, "InvitationDeclined"); res.Events[0].Actor != "carol" || status("carol") != aggregate.OffStage {
		t.Fatalf("decline: %+v", res)
	}
	fails(t, c, "declineInvitation", "u:carol", m, 409, "InvalidState")
	fails(t, c, "declineInvitation", "u:carol", with("user", "dave"), 400, natsapi.CodeBadRequest)

	// Bringing on stage, once the settings allow it.
	fails(t, c, "bringOnStage", "u:alice", with("user", "carol"), 403, "PermissionDenied")
	ok(t, c, "configure", "u:alice", "", with("settings", M{"allowBringOnStage": true, "requestTTL": "2m"}), &res)
	if ro, _ := f.eng.Roster(context.Background(), "m1"); !ro.Settings.AllowBringOnStage || ro.Settings.RequestTTL.Minutes() != 2 {
		t.Fatalf("settings: %+v", ro.Settings)
	}
	fails(t, c, "bringOnStage", "u:dave", with("user", "carol"), 403, "PermissionDenied") // a viewer
	ok(t, c, "bringOnStage", "u:alice", "", with("user", "carol"), &res)
	if p := payload(t, res, "BroughtOnStage"); p["user"] != "carol" || status("carol") != aggregate.OnStage {
		t.Fatalf("bring: %+v", res)
	}

	// The end, and the start of a new period.
	fails(t, c, "endStage", "u:carol", m, 403, "PermissionDenied")
	ok(t, c, "endStage", "u:alice", "end-1", m, &res)
	if p := payload(t, res, "StageEnded"); !slices.Equal(users(p["onStage"]), []string{"carol"}) {
		t.Fatalf("end: %+v", res)
	}
	var again stage.Result
	ok(t, c, "endStage", "u:alice", "end-1", m, &again)
	if !again.Duplicate || again.Version != res.Version {
		t.Fatalf("end retried: %+v", again)
	}
	fails(t, c, "requestAccess", "u:dave", m, 409, "StageEnded")
	fails(t, c, "bringOnStage", "u:alice", with("user", "dave"), 409, "StageEnded")
	fails(t, c, "endStage", "u:alice", m, 409, "InvalidState")
	ok(t, c, "startStage", "u:alice", "", m, &res)
	if p := payload(t, res, "StageStarted"); p["from"] != "Ended" {
		t.Fatalf("start: %+v", res)
	}
	fails(t, c, "startStage", "u:alice", m, 409, "InvalidState")

	// Backstage: a queued request is 409 Backstage.
	ok(t, c, "addParticipant", "backend", "", M{"meeting": "m2", "user": "alice", "permissions": host}, &res)
	ok(t, c, "addParticipant", "backend", "", M{"meeting": "m2", "user": "bob", "permissions": viewer}, &res)
	ok(t, c, "configure", "u:alice", "", M{"meeting": "m2", "settings": M{"startBackstage": true}}, &res)
	b = fails(t, c, "requestAccess", "u:bob", M{"meeting": "m2"}, 409, "Backstage")
	if b.Rejection == nil || !errors.Is(b.Rejection, aggregate.ErrBackstage) {
		t.Fatalf("backstage: %+v", b)
	}
	ok(t, c, "startStage", "u:alice", "", M{"meeting": "m2"}, &res)
	ok(t, c, "requestAccess", "u:bob", "", M{"meeting": "m2"}, &res)
}
