package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/productdb/stage/events"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"u1", true},
		{"alice", true},
		{"webinar-42", true},
		{"user_7:team/blue", true},
		{"0192f0c4-7a3e-7b5c-8d9e-0123456789ab", true},
		{"Zoë", true},
		{"日本", true},
		{"$sys", true},
		{strings.Repeat("x", events.MaxIDLen), true},
		{strings.Repeat("é", events.MaxIDLen/2), true},
		// Since ids are escaped where they name a subject (issue 13),
		// only length, UTF-8 and control characters limit them.
		{"bob@example.com", true},
		{"user.123", true},
		{"a.b", true},
		{".", true},
		{"*", true},
		{">", true},
		{"a*.>", true},
		{"Ana Lima", true},
		{" ", true},
		{"ünï.cödé", true},
		{"a\u00a0b", true},
		{"a\u2028b", true},
		{"a\u3000b", true},
		{"\ufffd", true},
		{"stage.events.x", true},

		{"", false},
		{strings.Repeat("x", events.MaxIDLen+1), false},
		{strings.Repeat("é", events.MaxIDLen/2) + "x", false},
		{"a\tb", false},
		{"a\nb", false},
		{"a\rb", false},
		{"a\x00b", false},
		{"a\x1bb", false},
		{"a\x7f", false},
		{"a\u0085", false},
		{"a\u009fb", false},
		{"\xff", false},
		{"a\xc3", false},
	}
	for _, tc := range tests {
		err := events.ValidateID(tc.id)
		if tc.ok && err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", tc.id, err)
		}
		if !tc.ok && !errors.Is(err, events.ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidID", tc.id, err)
		}
	}
}
