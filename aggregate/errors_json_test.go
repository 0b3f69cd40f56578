package aggregate_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/aggregate"
)

// The JSON forms are a contract with clients: these are their exact bytes.
func TestErrorJSONGolden(t *testing.T) {
	until := time.Date(2026, 12, 4, 17, 0, 30, 0, time.UTC)
	for _, c := range []struct {
		name string
		err  *aggregate.Error
		want string
	}{
		{"cooldown", &aggregate.Error{Command: "RequestAccess", UserID: "bob", Err: aggregate.ErrCooldown, Reason: "denied 10s ago", Until: until},
			`{"code":"Cooldown","command":"RequestAccess","user":"bob","reason":"denied 10s ago","until":"2026-12-04T17:00:30Z","message":"stage: RequestAccess bob: request cooldown: denied 10s ago"}`},
		{"invalid with cause", &aggregate.Error{Command: "Join", Err: aggregate.ErrInvalidCommand, Reason: "user: empty", Cause: errors.New("events: invalid id: empty")},
			`{"code":"InvalidCommand","command":"Join","reason":"user: empty","cause":"events: invalid id: empty","message":"stage: Join: invalid command: user: empty"}`},
		{"bare", &aggregate.Error{Err: aggregate.ErrStageFull},
			`{"code":"StageFull","message":"stage: : stage full"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := json.Marshal(c.err)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			var back aggregate.Error
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(&back, c.err.Err) || back.Command != c.err.Command || back.UserID != c.err.UserID ||
				back.Reason != c.err.Reason || !back.Until.Equal(c.err.Until) || back.Error() != c.err.Error() {
				t.Errorf("round trip: got %#v, want %#v", back, *c.err)
			}
			if (back.Cause == nil) != (c.err.Cause == nil) || back.Cause != nil && back.Cause.Error() != c.err.Cause.Error() {
				t.Errorf("round trip cause: got %v, want %v", back.Cause, c.err.Cause)
			}
		})
	}
}

func TestErrorJSONEveryKindRoundTrips(t *testing.T) {
	kinds := []error{aggregate.ErrPermissionDenied, aggregate.ErrInvalidState, aggregate.ErrNotParticipant,
		aggregate.ErrInvalidCommand, aggregate.ErrStageFull, aggregate.ErrCooldown, aggregate.ErrKeyReused, aggregate.ErrNoMeeting}
	for _, k := range kinds {
		code := aggregate.ReasonCode(k)
		if code == "" || aggregate.ErrorForCode(code) != k {
			t.Fatalf("%v: code %q does not name it", k, code)
		}
		in := &aggregate.Error{Command: "Kick", UserID: "u.1@example.com", Err: k, Reason: "why"}
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `"code":"`+code+`"`) {
			t.Errorf("%v: %s lacks its code", k, data)
		}
		var out aggregate.Error
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&out, in) {
			t.Errorf("%v: round trip got %#v", k, out)
		}
	}
}

func TestErrorJSONRefusesUnknownCode(t *testing.T) {
	for _, in := range []string{`{"code":"Nope"}`, `{}`, `{"code":"permission_denied"}`} {
		var e aggregate.Error
		if err := json.Unmarshal([]byte(in), &e); err == nil {
			t.Errorf("%s: read as %#v, want an error", in, e)
		}
	}
}

func TestRejectionJSON(t *testing.T) {
	r := aggregate.Rejection{UserID: "carol", Err: &aggregate.Error{Command: "GrantAccess", UserID: "carol", Err: aggregate.ErrNotParticipant, Reason: "not in the meeting"}}
	const want = `{"user":"carol","error":{"code":"NotParticipant","command":"GrantAccess","user":"carol","reason":"not in the meeting","message":"stage: GrantAccess carol: not a participant: not in the meeting"}}`
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// As a field of a list, by value and by pointer.
	list, _ := json.Marshal([]aggregate.Rejection{r})
	if string(list) != "["+want+"]" {
		t.Errorf("in a list: %s", list)
	}
	var back []aggregate.Rejection
	if err := json.Unmarshal(list, &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 1 || !reflect.DeepEqual(back[0], r) {
		t.Errorf("round trip: got %#v, want %#v", back, r)
	}
	if !errors.Is(back[0].Err, aggregate.ErrNotParticipant) {
		t.Errorf("round trip lost the kind: %v", back[0].Err)
	}

	// A wrapped *Error is written as the *Error; another error keeps its
	// kind and its text.
	wrapped := aggregate.Rejection{UserID: "dan", Err: fmt.Errorf("wrapped: %w", r.Err)}
	got, _ = json.Marshal(wrapped)
	if !strings.Contains(string(got), `"code":"NotParticipant"`) {
		t.Errorf("wrapped: %s", got)
	}
	plain := aggregate.Rejection{UserID: "erin", Err: fmt.Errorf("odd: %w", aggregate.ErrInvalidState)}
	got, _ = json.Marshal(plain)
	const wantPlain = `{"user":"erin","error":{"code":"InvalidState","user":"erin","reason":"odd: invalid state","message":"stage:  erin: invalid state: odd: invalid state"}}`
	if string(got) != wantPlain {
		t.Errorf("plain: got  %s\nwant %s", got, wantPlain)
	}
	// The recorded rejections a retry rebuilds serialise the same way.
	none, _ := json.Marshal(aggregate.Rejection{UserID: "x"})
	if string(none) != `{"user":"x","error":null}` {
		t.Errorf("no error: %s", none)
	}
}
