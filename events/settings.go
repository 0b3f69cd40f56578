package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Settings are a meeting's stage policies. The zero value turns every policy
// off: no capacity, nothing expires, no cooldown, no reconnect grace. A zero
// field turns its own policy off.
//
// In the log the durations are written as Go duration strings ("90s" is
// written "1m30s"), zero fields omitted:
//
//	{"maxOnStage":2,"invitationTTL":"2m0s","speakingSlot":"10m0s","startBackstage":true}
type Settings struct {
	// MaxOnStage caps how many participants may be OnStage at once. A Join
	// on a full stage fails and puts the joiner on the seat waitlist; a freed
	// seat is offered to the first waitlisted user.
	MaxOnStage int
	// SeatOfferTTL is how long a seat offer is held for a waitlisted user
	// before it passes to the next (zero: until they take or decline it).
	SeatOfferTTL time.Duration
	// InvitationTTL is how long an AcceptedToJoinStage status lasts before it
	// lapses to OffStage (not counting time on the seat waitlist).
	InvitationTTL time.Duration
	// SpeakingSlot is how long anyone may stay OnStage before being moved
	// OffStage.
	SpeakingSlot time.Duration
	// RequestCooldown is how long after a denial the user may not request
	// again.
	RequestCooldown time.Duration
	// ReconnectGrace is how long a disconnected participant keeps their
	// status, queue position and seat before leaving the meeting. Zero: a
	// disconnect removes them at once.
	ReconnectGrace time.Duration
	// RequestTTL is how long a request may wait in the queue before it
	// lapses to OffStage (RequestExpired).
	RequestTTL time.Duration
	// StartBackstage puts the stage backstage until a host starts it
	// (StageStarted): hosts, co-hosts and Allowed or invited speakers may
	// prepare on stage; other users may not request. Once the stage has
	// been started or ended the setting has no effect.
	StartBackstage bool
	// AllowBringOnStage lets hosts move a user straight OnStage, without
	// their consent (BringOnStage; never a NotAllowed or banned user).
	AllowBringOnStage bool
}

// IsZero reports whether every policy is off.
func (s Settings) IsZero() bool { return s == Settings{} }

// Validate reports an error for a negative capacity or duration.
func (s Settings) Validate() error {
	if s.MaxOnStage < 0 {
		return fmt.Errorf("MaxOnStage %d is negative", s.MaxOnStage)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"SeatOfferTTL", s.SeatOfferTTL}, {"InvitationTTL", s.InvitationTTL},
		{"SpeakingSlot", s.SpeakingSlot}, {"RequestCooldown", s.RequestCooldown},
		{"ReconnectGrace", s.ReconnectGrace}, {"RequestTTL", s.RequestTTL},
	} {
		if d.d < 0 {
			return fmt.Errorf("%s %v is negative", d.name, d.d)
		}
	}
	return nil
}

type settingsWire struct {
	MaxOnStage      int      `json:"maxOnStage,omitempty"`
	SeatOfferTTL    Duration `json:"seatOfferTTL,omitzero"`
	InvitationTTL   Duration `json:"invitationTTL,omitzero"`
	SpeakingSlot    Duration `json:"speakingSlot,omitzero"`
	RequestCooldown Duration `json:"requestCooldown,omitzero"`
	ReconnectGrace  Duration `json:"reconnectGrace,omitzero"`
	RequestTTL      Duration `json:"requestTTL,omitzero"`
	StartBackstage  bool     `json:"startBackstage,omitempty"`
	AllowBring      bool     `json:"allowBringOnStage,omitempty"`
}

// MarshalJSON writes the settings in the log's form (see [Settings]).
func (s Settings) MarshalJSON() ([]byte, error) {
	return json.Marshal(settingsWire{
		MaxOnStage: s.MaxOnStage, SeatOfferTTL: Duration(s.SeatOfferTTL),
		InvitationTTL: Duration(s.InvitationTTL), SpeakingSlot: Duration(s.SpeakingSlot),
		RequestCooldown: Duration(s.RequestCooldown), ReconnectGrace: Duration(s.ReconnectGrace),
		RequestTTL: Duration(s.RequestTTL), StartBackstage: s.StartBackstage, AllowBring: s.AllowBringOnStage,
	})
}

// UnmarshalJSON reads settings written by MarshalJSON; unknown fields fail.
func (s *Settings) UnmarshalJSON(b []byte) error {
	var w settingsWire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	*s = Settings{
		MaxOnStage: w.MaxOnStage, SeatOfferTTL: time.Duration(w.SeatOfferTTL),
		InvitationTTL: time.Duration(w.InvitationTTL), SpeakingSlot: time.Duration(w.SpeakingSlot),
		RequestCooldown: time.Duration(w.RequestCooldown), ReconnectGrace: time.Duration(w.ReconnectGrace),
		RequestTTL: time.Duration(w.RequestTTL), StartBackstage: w.StartBackstage, AllowBringOnStage: w.AllowBring,
	}
	return nil
}

// Duration is a time.Duration written in the log as a Go duration string
// ("1m30s"), so that an auditor can read it.
type Duration time.Duration

// String returns the duration as time.Duration formats it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration string (time.ParseDuration).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Valid reports whether k is one of the defined lapse kinds.
func (k LapseKind) Valid() bool {
	switch k {
	case InvitationExpired, SlotEnded, SeatOfferLapsed, GraceExpired, BanExpired, RequestExpired:
		return true
	}
	return false
}

// validPolicy checks the shape of the policy events' payloads (nil for
// every other payload).
func validPolicy(p Payload) error {
	switch p := p.(type) {
	case *SettingsChanged:
		if err := p.Settings.Validate(); err != nil {
			return err
		}
		return p.Previous.Validate()
	case *SeatWaitlisted:
		if p.Position < 1 || p.MaxOnStage < 1 {
			return fmt.Errorf("position %d, maxOnStage %d", p.Position, p.MaxOnStage)
		}
	case *Disconnected:
		if p.Grace < 0 {
			return fmt.Errorf("negative grace %v", p.Grace)
		}
	case *AccessGranted:
		for _, u := range p.Invited {
			if !slices.Contains(p.Users, u) {
				return fmt.Errorf("invited %q is not among the users granted", u)
			}
		}
	case *RequestsClosed:
		if len(p.Denied) > 0 && !p.DenyPending {
			return fmt.Errorf("requests denied without DenyPending")
		}
	case *StageStarted:
		if p.From != PhaseBackstage && p.From != PhaseEnded {
			return fmt.Errorf("stage started from %q", p.From)
		}
	case *StageEnded:
		if p.From != PhaseBackstage && p.From != PhaseLive {
			return fmt.Errorf("stage ended from %q", p.From)
		}
	case *Lapsed:
		if len(p.Lapses) == 0 {
			return fmt.Errorf("no lapses")
		}
		for _, l := range p.Lapses {
			if !l.Kind.Valid() {
				return fmt.Errorf("unknown lapse kind %q", l.Kind)
			}
			if l.Deadline.IsZero() {
				return fmt.Errorf("lapse of %s with no deadline", l.UserID)
			}
		}
	}
	return nil
}

// String describes the lapse in words, for audit trails and timelines:
//
//	bob: speaking slot ended at 2026-11-29T14:05:00Z (SpeakingSlot 5m0s, since 2026-11-29T14:00:00Z, was OnStage)
func (l Lapse) String() string {
	what := map[LapseKind]string{
		InvitationExpired: "invitation expired",
		SlotEnded:         "speaking slot ended",
		SeatOfferLapsed:   "seat offer lapsed",
		GraceExpired:      "reconnect grace expired, left the meeting",
		BanExpired:        "stage ban ended",
		RequestExpired:    "request expired",
	}[l.Kind]
	if what == "" {
		what = string(l.Kind)
	}
	return fmt.Sprintf("%s: %s at %s (%s %s, since %s, was %s)", l.UserID, what,
		l.Deadline.UTC().Format(time.RFC3339Nano), l.Setting, l.Limit, l.Since.UTC().Format(time.RFC3339Nano), l.Status)
}
