package events_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productdb/stage/events"
)

var polT = time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)

func polEnvelope(t *testing.T, p events.Payload) events.Envelope {
	t.Helper()
	e := events.Envelope{ID: uuid.Must(uuid.NewV7()), MeetingID: "m", Version: 1, Type: p.EventType(),
		Time: polT, Actor: "alice", CommandID: "c1", Schema: events.SchemaVersion, Payload: p}
	if err := e.Seal(events.Hash{}); err != nil {
		t.Fatal(err)
	}
	return e
}

// polPayloads has one valid payload of each policy event.
func polPayloads() []events.Payload {
	return []events.Payload{
		&events.SettingsChanged{Settings: events.Settings{MaxOnStage: 2, SeatOfferTTL: 30 * time.Second, InvitationTTL: time.Minute,
			SpeakingSlot: time.Hour, RequestCooldown: 5 * time.Minute, ReconnectGrace: time.Minute,
			RequestTTL: time.Minute, StartBackstage: true, AllowBringOnStage: true}},
		&events.SeatWaitlisted{Position: 1, Status: "OffStage", MaxOnStage: 2},
		&events.StageBanned{UserID: "bob", Until: polT.Add(time.Hour), Status: "OnStage"},
		&events.StageBanned{UserID: "bob", Status: "None"},
		&events.BanLifted{UserID: "bob"},
		&events.Disconnected{UserID: "bob", Grace: events.Duration(time.Minute)},
		&events.Reconnected{UserID: "bob"},
		&events.Lapsed{Lapses: []events.Lapse{{UserID: "bob", Kind: events.SlotEnded, Since: polT.Add(-time.Hour),
			Deadline: polT, Setting: "SpeakingSlot", Limit: events.Duration(time.Hour), Status: "OnStage"}}},
		&events.ParticipantLeft{UserID: "bob", Status: "OnStage", Reason: "Disconnected"},
	}
}

func TestPolicyEvents_RoundTrip(t *testing.T) {
	for _, p := range polPayloads() {
		e := polEnvelope(t, p)
		b, err := events.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := events.Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if err := back.Verify(); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		b2, _ := events.Marshal(&back)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed\n%s\n%s", b, b2)
		}
	}
}

func TestPolicyEvents_Users(t *testing.T) {
	e := polEnvelope(t, &events.Lapsed{Lapses: []events.Lapse{
		{UserID: "a", Kind: events.SlotEnded, Deadline: polT}, {UserID: "b", Kind: events.SeatOfferLapsed, Deadline: polT},
		{UserID: "a", Kind: events.GraceExpired, Deadline: polT}}})
	if u := e.Users(); len(u) != 2 || u[0] != "a" || u[1] != "b" {
		t.Fatalf("Users() = %v", u)
	}
}

func TestPolicyEvents_Rejects(t *testing.T) {
	for name, p := range map[string]events.Payload{
		"no lapses":            &events.Lapsed{},
		"unknown kind":         &events.Lapsed{Lapses: []events.Lapse{{UserID: "a", Kind: "Whatever", Deadline: polT}}},
		"no deadline":          &events.Lapsed{Lapses: []events.Lapse{{UserID: "a", Kind: events.SlotEnded}}},
		"bad lapse user":       &events.Lapsed{Lapses: []events.Lapse{{UserID: "a\x00b", Kind: events.SlotEnded, Deadline: polT}}},
		"negative setting":     &events.SettingsChanged{Settings: events.Settings{SpeakingSlot: -time.Second}},
		"negative request ttl": &events.SettingsChanged{Settings: events.Settings{RequestTTL: -time.Second}},
		"started from live":    &events.StageStarted{From: events.PhaseLive},
		"denied, not chosen":   &events.RequestsClosed{Denied: []string{"bob"}},
		"ended from ended":     &events.StageEnded{From: events.PhaseEnded},
		"position 0":           &events.SeatWaitlisted{MaxOnStage: 1},
		"bad banned user":      &events.StageBanned{UserID: "a\x01"},
	} {
		e := polEnvelope(t, p)
		if err := e.Validate(); !errors.Is(err, events.ErrMalformed) {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
	// Settings decode strictly.
	e := polEnvelope(t, &events.SettingsChanged{})
	b, _ := events.Marshal(&e)
	bad := strings.Replace(string(b), `"settings":{}`, `"settings":{"maxOnStage":1,"extra":true}`, 1)
	if bad == string(b) {
		t.Fatalf("no settings in %s", b)
	}
	if _, err := events.Unmarshal([]byte(bad)); !errors.Is(err, events.ErrMalformed) {
		t.Fatalf("unknown settings field: %v", err)
	}
}

func TestLapse_String(t *testing.T) {
	l := events.Lapse{UserID: "bob", Kind: events.SlotEnded, Since: polT, Deadline: polT.Add(5 * time.Minute),
		Setting: "SpeakingSlot", Limit: events.Duration(5 * time.Minute), Status: "OnStage"}
	want := "bob: speaking slot ended at 2026-11-29T14:05:00Z (SpeakingSlot 5m0s, since 2026-11-29T14:00:00Z, was OnStage)"
	if got := l.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}
