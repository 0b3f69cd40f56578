package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/events"
)

var t0 = time.Date(2026, 11, 29, 14, 3, 7, 500_000_000, time.UTC)

var (
	hostPerms   = events.Permissions{StageAccess: events.Allowed, AcceptStageRequests: true}
	viewerPerms = events.Permissions{StageAccess: events.CanRequest}
)

// samples returns one event of every type, each with every optional field
// set, as a sealed chain of meeting "webinar-42".
func samples(t testing.TB) []events.Envelope {
	t.Helper()
	payloads := []events.Payload{
		&events.ParticipantJoined{UserID: "alice", Permissions: hostPerms},
		&events.ParticipantLeft{UserID: "carol", Status: "OnStage"},
		&events.PermissionsChanged{UserID: "bob", Permissions: viewerPerms, Status: "OffStage"},
		&events.AccessRequested{AutoAccepted: true},
		&events.AccessRequestCancelled{},
		&events.AccessGranted{Users: []string{"bob", "dave"}, Invited: []string{"dave"}, Skipped: []events.Skip{{UserID: "eve", Reason: "NotParticipant"}}},
		&events.AccessDenied{Users: []string{"bob"}, Reason: "not now\nsorry", Skipped: []events.Skip{{UserID: "x", Reason: "InvalidState"}}},
		&events.StageJoined{},
		&events.StageLeft{Declined: true},
		&events.Kicked{Users: []string{"dave"}, Reason: "off topic", Skipped: []events.Skip{{UserID: "y", Reason: "InvalidState"}}},
		&events.SettingsChanged{Settings: events.Settings{MaxOnStage: 2, InvitationTTL: time.Minute,
			RequestTTL: time.Minute, StartBackstage: true, AllowBringOnStage: true}},
		&events.SeatWaitlisted{Position: 1, Status: "OffStage", MaxOnStage: 2},
		&events.StageBanned{UserID: "bob", Until: t0.Add(time.Hour), Status: "OnStage"},
		&events.BanLifted{UserID: "bob"},
		&events.Disconnected{UserID: "bob", Grace: events.Duration(time.Minute)},
		&events.Reconnected{UserID: "bob"},
		&events.Lapsed{Lapses: []events.Lapse{{UserID: "bob", Kind: events.SlotEnded, Since: t0, Deadline: t0.Add(time.Hour),
			Setting: "SpeakingSlot", Limit: events.Duration(time.Hour), Status: "OnStage"}}},
		&events.StageStarted{From: events.PhaseBackstage},
		&events.StageEnded{From: events.PhaseLive, OnStage: []string{"bob"}, Accepted: []string{"dave"}, Requests: []string{"eve"}},
		&events.RequestsClosed{DenyPending: true, Denied: []string{"eve"}},
		&events.RequestsOpened{},
		&events.CoHostPromoted{UserID: "carol"},
		&events.CoHostDemoted{UserID: "carol"},
		&events.InvitationDeclined{Invited: true},
		&events.BroughtOnStage{UserID: "bob", Status: "AcceptedToJoinStage"},
	}
	var out []events.Envelope
	var prev events.Hash
	for i, p := range payloads {
		e := events.Envelope{
			ID:            uuid.Must(uuid.NewV7()),
			MeetingID:     "webinar-42",
			Version:       uint64(i + 1),
			Type:          p.EventType(),
			Time:          t0.Add(time.Duration(i) * time.Millisecond),
			Actor:         "alice",
			CommandID:     "cmd-" + string(rune('a'+i)),
			CorrelationID: "req-9",
			Schema:        events.SchemaVersion,
			Payload:       p,
			Seq:           uint64(100 + i),
		}
		if err := e.Seal(prev); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

// sameEvent reports whether a and b are the same event (times compared as
// instants).
func sameEvent(a, b events.Envelope) bool {
	if !a.Time.Equal(b.Time) {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func TestMarshal_roundTrip(t *testing.T) {
	seen := map[events.Type]bool{}
	for _, e := range samples(t) {
		seen[e.Type] = true
		t.Run(string(e.Type), func(t *testing.T) {
			b, err := events.Marshal(&e)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.ContainsAny(b, "\n\r") {
				t.Errorf("encoding is not one line: %s", b)
			}
			got, err := events.Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if !sameEvent(got, e) {
				t.Errorf("round trip changed the event:\n got %+v\nwant %+v", got, e)
			}
			if err := got.Verify(); err != nil {
				t.Errorf("the decoded event does not verify: %v", err)
			}
			// Through encoding/json too, as part of a larger document.
			doc, err := json.Marshal([]events.Envelope{e})
			if err != nil {
				t.Fatal(err)
			}
			var back []events.Envelope
			if err := json.Unmarshal(doc, &back); err != nil {
				t.Fatal(err)
			}
			if len(back) != 1 || !sameEvent(back[0], e) {
				t.Errorf("json round trip changed the event: %+v", back)
			}
		})
	}
	// Every event type has a sample: a new type must get one.
	for _, typ := range events.Types() {
		if !seen[typ] {
			t.Errorf("no round-trip sample of %s: add one to samples", typ)
		}
	}
}

// TestMarshal_wireFormat pins the audit format: field and type names, time
// and hash encodings. Changing this output needs a new schema version.
func TestMarshal_wireFormat(t *testing.T) {
	e := events.Envelope{
		ID:            uuid.MustParse("0192f0c4-7a3e-7b5c-8d9e-0123456789ab"),
		MeetingID:     "webinar-42",
		Version:       7,
		Type:          events.TypeAccessGranted,
		Time:          time.Date(2026, 11, 29, 15, 3, 7, 500_000_000, time.FixedZone("CET", 3600)),
		Actor:         "alice",
		CommandID:     "c-81",
		CorrelationID: "req-9",
		Schema:        1,
		Payload:       &events.AccessGranted{Users: []string{"bob"}, Skipped: []events.Skip{{UserID: "eve", Reason: "NotParticipant"}}},
		PrevHash:      events.Hash{0x9f, 0x2c},
		Hash:          events.Hash{0x51, 0xaa},
		Seq:           1207,
	}
	got, err := events.Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	zeros := strings.Repeat("0", 60)
	want := `{"schema":1,"id":"0192f0c4-7a3e-7b5c-8d9e-0123456789ab","meeting":"webinar-42","version":7,` +
		`"type":"AccessGranted","time":"2026-11-29T14:03:07.5Z","actor":"alice","command":"c-81","correlation":"req-9",` +
		`"payload":{"users":["bob"],"skipped":[{"user":"eve","reason":"NotParticipant"}]},` +
		`"prev":"9f2c` + zeros + `","hash":"51aa` + zeros + `","seq":1207}`
	if string(got) != want {
		t.Errorf("wire format changed:\n got %s\nwant %s", got, want)
	}

	// Optional fields are left out when empty.
	e.Actor, e.CorrelationID, e.Seq = "", "", 0
	e.Type, e.Payload = events.TypeStageLeft, &events.StageLeft{}
	got, _ = events.Marshal(&e)
	for _, field := range []string{`"actor"`, `"correlation"`, `"seq"`, `"declined"`} {
		if bytes.Contains(got, []byte(field)) {
			t.Errorf("empty %s written: %s", field, got)
		}
	}
}

func TestMarshal_nilPayload(t *testing.T) {
	e := samples(t)[0]
	e.Payload = nil
	if _, err := events.Marshal(&e); !errors.Is(err, events.ErrMalformed) {
		t.Errorf("Marshal with no payload: %v", err)
	}
}

func TestUnmarshal_rejects(t *testing.T) {
	good, err := events.Marshal(&samples(t)[5]) // AccessGranted
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(good, &fields); err != nil {
		t.Fatal(err)
	}
	// with returns the good event with field set to raw JSON (or removed for "").
	with := func(field, raw string) []byte {
		m := map[string]json.RawMessage{}
		for k, v := range fields {
			m[k] = v
		}
		if raw == "" {
			delete(m, field)
		} else {
			m[field] = json.RawMessage(raw)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := map[string][]byte{
		"empty input":                        nil,
		"not JSON":                           []byte("hello"),
		"a JSON array":                       []byte("[]"),
		"null":                               []byte("null"),
		"truncated":                          good[:len(good)-1],
		"trailing data":                      append(append([]byte{}, good...), []byte(` {}`)...),
		"unknown field":                      with("extra", `1`),
		"schema 2":                           with("schema", `2`),
		"schema missing":                     with("schema", ""),
		"unknown type":                       with("type", `"AccessTeleported"`),
		"type of another shape":              with("type", `"StageJoined"`),
		"payload not object":                 with("payload", `["bob"]`),
		"payload null":                       with("payload", `null`),
		"payload missing":                    with("payload", ""),
		"unknown payload field":              with("payload", `{"users":["bob"],"everyone":true}`),
		"payload wrong type":                 with("payload", `{"users":"bob"}`),
		"no users":                           with("payload", `{"users":[]}`),
		"null users":                         with("payload", `{"users":null}`),
		"users missing":                      with("payload", `{}`),
		"bad user id":                        with("payload", `{"users":["bob","a\u0007b"]}`),
		"id missing":                         with("id", ""),
		"id not a uuid":                      with("id", `"abc"`),
		"version 0":                          with("version", `0`),
		"version negative":                   with("version", `-1`),
		"version a string":                   with("version", `"7"`),
		"command missing":                    with("command", ""),
		"time missing":                       with("time", ""),
		"time in 3000 (no Unix nanoseconds)": with("time", `"3000-01-01T00:00:00Z"`),
		"time in 1000":                       with("time", `"1000-01-01T00:00:00Z"`),
		"time in year 0 east of UTC":         with("time", `"0000-01-01T00:30:00+01:00"`),
		"time not RFC 3339":                  with("time", `"yesterday"`),
		"meeting missing":                    with("meeting", ""),
		"meeting with a tab":                 with("meeting", `"a\tb"`),
		"actor with a newline":               with("actor", `"a\nb"`),
		"hash too short":                     with("hash", `"abcd"`),
		"hash not hex":                       with("hash", `"`+strings.Repeat("z", 64)+`"`),
		"prev odd length":                    with("prev", `"`+strings.Repeat("a", 65)+`"`),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := events.Unmarshal(data)
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("Unmarshal(%s) = %+v, %v; want ErrMalformed", data, e, err)
			}
			var into events.Envelope
			if err := json.Unmarshal(data, &into); err == nil {
				t.Errorf("json.Unmarshal accepted %s", data)
			}
		})
	}
}

func TestUnmarshal_rejectsBadPermissions(t *testing.T) {
	for _, e := range samples(t)[:3] {
		var raw string
		switch p := e.Payload.(type) {
		case *events.ParticipantJoined:
			p.Permissions.StageAccess = "Sometimes"
		case *events.PermissionsChanged:
			p.Permissions.StageAccess = ""
		default:
			continue
		}
		b, err := events.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		raw = string(b)
		if _, err := events.Unmarshal(b); !errors.Is(err, events.ErrMalformed) {
			t.Errorf("Unmarshal(%s) = %v, want ErrMalformed", raw, err)
		}
	}
}
