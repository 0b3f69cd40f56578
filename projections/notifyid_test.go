package projections_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/productdb/stage/projections"
)

func TestNotificationID_parse(t *testing.T) {
	for s, want := range map[string]projections.NotificationID{
		"":      {},
		"7":     {Version: 7, Index: -1},
		"7.0":   {Version: 7},
		"12.31": {Version: 12, Index: 31},
	} {
		got, err := projections.ParseNotificationID(s)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", s, got, err, want)
		}
		if s != "" && got.String() != s {
			t.Errorf("%+v writes %q, want %q", got, got.String(), s)
		}
	}
	for _, s := range []string{".", "7.", ".3", "-1", "7.-1", "+7", "7.+1", "a.1", "7.1.2", "7 ", "99999999999999999999999"} {
		if _, err := projections.ParseNotificationID(s); !errors.Is(err, projections.ErrInvalidNotificationID) {
			t.Errorf("%q: %v, want ErrInvalidNotificationID", s, err)
		}
	}
}

func TestNotificationID_covers(t *testing.T) {
	id := projections.NotificationID{Version: 5, Index: 2}
	whole := projections.NotificationID{Version: 5, Index: -1}
	for _, c := range []struct {
		v           uint64
		i           int
		byID, byAll bool
	}{
		{4, 9, true, true}, {5, 0, true, true}, {5, 2, true, true}, {5, 3, false, true}, {6, 0, false, false},
	} {
		if got := id.Covers(c.v, c.i); got != c.byID {
			t.Errorf("5.2 covers %d.%d: %v", c.v, c.i, got)
		}
		if got := whole.Covers(c.v, c.i); got != c.byAll {
			t.Errorf("5 covers %d.%d: %v", c.v, c.i, got)
		}
	}
	if (projections.NotificationID{}).Covers(1, 0) {
		t.Error("the zero id covers version 1")
	}
}

// An emptied queue and an emptied stage are written explicitly; other
// types carry no queue or stage fields.
func TestNotification_JSON(t *testing.T) {
	for _, c := range []struct {
		n          projections.Notification
		has, hasnt []string
	}{
		{projections.Notification{Type: projections.StageAccessRequestUpdate}, []string{`"queue":[]`, `"queueLength":0`}, []string{`"stage"`, `"onStage"`}},
		{projections.Notification{Type: projections.StageRosterUpdate}, []string{`"stage":[]`, `"onStage":0`, `"recipient":""`}, []string{`"queue"`}},
		{projections.Notification{Type: projections.StageStatusUpdate, Recipient: "bob"}, []string{`"recipient":"bob"`}, []string{`"queue"`, `"stage"`, `"queueLength"`, `"onStage"`}},
	} {
		b, err := json.Marshal(c.n)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range c.has {
			if !strings.Contains(string(b), s) {
				t.Errorf("%s: no %s in %s", c.n.Type, s, b)
			}
		}
		for _, s := range c.hasnt {
			if strings.Contains(string(b), s) {
				t.Errorf("%s: %s in %s", c.n.Type, s, b)
			}
		}
		var back projections.Notification
		if err := json.Unmarshal(b, &back); err != nil || back.Type != c.n.Type || back.Recipient != c.n.Recipient {
			t.Errorf("%s read back as %+v, %v", b, back, err)
		}
	}
}
