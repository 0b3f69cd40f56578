package replay

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/projections"
)

// ErrUnknownSetting is returned by [ParseOverride] for a name that is not a
// field of [aggregate.Settings]; the error lists the names.
var ErrUnknownSetting = errors.New("replay: unknown setting")

// ErrBadSetting is returned by [ParseOverride] and [WhatIf] for a value that
// does not parse as the field's type, or that the settings refuse (a
// negative capacity or duration).
var ErrBadSetting = errors.New("replay: bad setting value")

// ErrWhatIf is returned by [WhatIf] for input it cannot replay: no events,
// or events of more than one meeting.
var ErrWhatIf = errors.New("replay: cannot replay what-if")

// Override sets one field of a meeting's [aggregate.Settings] in a what-if
// replay. Build it with [ParseOverride].
type Override struct {
	// Field is the name of the field (e.g. "MaxOnStage").
	Field string
	// Value is the typed value: an int, a time.Duration or a bool, as the field is.
	Value any
}

// String writes the override as ParseOverride reads it.
func (o Override) String() string { return fmt.Sprintf("%s=%v", o.Field, o.Value) }

// SettingNames lists the fields of [aggregate.Settings] an override may set.
func SettingNames() []string {
	t := reflect.TypeFor[aggregate.Settings]()
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		out = append(out, t.Field(i).Name)
	}
	return out
}

// ParseOverride reads "Name=value": Name a field of [aggregate.Settings]
// (exact, or differing only in case), value parsed as the field's type: an
// int ("4"), a Go duration ("30s", "2m"; "0" turns the policy off) or a bool.
// An unknown name is an error wrapping [ErrUnknownSetting] that lists the
// names; a value that does not parse, or is negative, wraps [ErrBadSetting].
func ParseOverride(s string) (Override, error) {
	name, val, ok := strings.Cut(s, "=")
	name, val = strings.TrimSpace(name), strings.TrimSpace(val)
	if !ok || name == "" {
		return Override{}, fmt.Errorf("%w: %q: want Name=value", ErrBadSetting, s)
	}
	t := reflect.TypeFor[aggregate.Settings]()
	f, found := t.FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, name) })
	if !found {
		return Override{}, fmt.Errorf("%w %q: the settings are %s", ErrUnknownSetting, name, strings.Join(SettingNames(), ", "))
	}
	o := Override{Field: f.Name}
	switch {
	case f.Type == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(val)
		if err != nil {
			return Override{}, fmt.Errorf("%w: %s=%q: want a duration such as 30s or 2m", ErrBadSetting, f.Name, val)
		}
		o.Value = d
	case f.Type.Kind() == reflect.Int:
		n, err := strconv.Atoi(val)
		if err != nil {
			return Override{}, fmt.Errorf("%w: %s=%q: want a whole number", ErrBadSetting, f.Name, val)
		}
		o.Value = n
	case f.Type.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return Override{}, fmt.Errorf("%w: %s=%q: want true or false", ErrBadSetting, f.Name, val)
		}
		o.Value = b
	default:
		return Override{}, fmt.Errorf("%w: %s has type %s, which what-if cannot set", ErrBadSetting, f.Name, f.Type)
	}
	var probe aggregate.Settings
	if err := o.apply(&probe); err != nil {
		return Override{}, err
	}
	return o, nil
}

// apply sets the field in s, checking the value.
func (o Override) apply(s *aggregate.Settings) error {
	v := reflect.ValueOf(s).Elem().FieldByName(o.Field)
	if !v.IsValid() {
		return fmt.Errorf("%w %q: the settings are %s", ErrUnknownSetting, o.Field, strings.Join(SettingNames(), ", "))
	}
	val := reflect.ValueOf(o.Value)
	if !val.IsValid() || val.Type() != v.Type() {
		return fmt.Errorf("%w: %s wants a %s, not %T", ErrBadSetting, o.Field, v.Type(), o.Value)
	}
	v.Set(val)
	if err := s.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSetting, err)
	}
	return nil
}

// Refusal is a recorded command the rules refuse in the what-if world.
type Refusal struct {
	// Version and Time are the recorded event's.
	Version uint64    `json:"version"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor,omitempty"`
	// Command is the action's name ("Join", "GrantAccess", ...).
	Command string `json:"command"`
	Reason  string `json:"reason"`
}

// Outcome is what a user (or everyone) got in one world.
type Outcome struct {
	// Requests counts requests that needed a decision; Granted and Denied
	// how they were decided.
	Requests int `json:"requests"`
	Granted  int `json:"granted"`
	Denied   int `json:"denied"`
	// Lapses counts lapses (invitations, slots, seat offers, graces, bans
	// that ran out); Waitlisted the Joins that found the stage full;
	// Kicked the kicks.
	Lapses     int `json:"lapses"`
	Waitlisted int `json:"waitlisted"`
	Kicked     int `json:"kicked"`
	// Wait is the total time spent waiting for a decision on a request
	// (pending ones counted up to the meeting's end); LongestWait the longest.
	Wait        time.Duration `json:"waitNs"`
	LongestWait time.Duration `json:"longestWaitNs"`
	// OnStage is the total time on stage, up to the meeting's end.
	OnStage time.Duration `json:"onStageNs"`
	// Refused counts the user's recorded commands the rules refuse (only
	// in the what-if world).
	Refused int `json:"refused"`
}

// UserWhatIf sets side by side what a user got and would have got.
type UserWhatIf struct {
	User     string  `json:"user"`
	Recorded Outcome `json:"recorded"`
	WhatIf   Outcome `json:"whatIf"`
}

// WhatIfReport is the outcome of [WhatIf].
type WhatIfReport struct {
	MeetingID string `json:"meeting"`
	// Overrides are the settings changed, as given.
	Overrides []string `json:"overrides"`
	// Start and End bound the replay: the recorded first and last event.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Commands counts the recorded commands re-decided (a Lapsed event is
	// not a command: the what-if world records its own lapses, when due).
	Commands int `json:"commands"`
	// Refused lists the recorded commands the new rules refuse.
	Refused []Refusal `json:"refused"`
	// Users compares every user who requested, was invited, was on stage
	// or had a command refused, in order of first mention.
	Users []UserWhatIf `json:"users"`
	// Recorded and WhatIf total every user's outcomes.
	Recorded Outcome `json:"recorded"`
	WhatIf   Outcome `json:"whatIf"`
	// Events are the what-if world's events (unsealed: no id or hash).
	Events []events.Envelope `json:"-"`
}

// WhatIf replays one meeting's recorded events under other settings: each
// recorded command (rebuilt with [aggregate.CommandOf]) is decided again with
// [aggregate.Decide] at its recorded time on the what-if state, and the
// report sets each user's outcomes side by side with what happened.
//
// The overrides apply from the meeting's start, and to every settings
// change the log records (the fields not overridden keep the recorded
// values). Deadlines lapse when they are due (a Tick at each deadline), not
// when the log happened to record them.
//
// Limits: no command is invented. A command whose actor could not have
// issued it in the new world (a Join of a user the new rules did not
// accept, a Reconnect after the grace ran out, a Grant of a request that
// lapsed) is refused and listed in Refused; a user who in the new world
// would have acted differently (joined when a seat was offered, requested
// again after a denial that did not happen) is not simulated. List commands
// apply to the targets still eligible. evs must be one meeting's events in
// version order (as [History] reads them); they need not verify, but an
// event no command is known for is skipped.
func WhatIf(evs []events.Envelope, overrides []Override) (*WhatIfReport, error) {
	if len(evs) == 0 {
		return nil, fmt.Errorf("%w: no events", ErrWhatIf)
	}
	meeting := evs[0].MeetingID
	var base aggregate.Settings
	rep := &WhatIfReport{MeetingID: meeting, Overrides: []string{}, Refused: []Refusal{}, Users: []UserWhatIf{},
		Start: evs[0].Time, End: evs[0].Time}
	for _, o := range overrides {
		if err := o.apply(&base); err != nil {
			return nil, err
		}
		rep.Overrides = append(rep.Overrides, o.String())
	}
	override := func(s aggregate.Settings) aggregate.Settings {
		for _, o := range overrides {
			_ = o.apply(&s) // checked above; a recorded value cannot make another field invalid
		}
		return s
	}
	for i := range evs {
		if evs[i].MeetingID != meeting {
			return nil, fmt.Errorf("%w: events of meetings %s and %s", ErrWhatIf, meeting, evs[i].MeetingID)
		}
		if evs[i].Time.After(rep.End) {
			rep.End = evs[i].Time
		}
	}

	s := aggregate.NewState(meeting)
	if !base.IsZero() {
		// The overrides are in force from the start: a settings event
		// before version 1 (Evolve takes it as given; it is not reported).
		aggregate.Evolve(s, &events.Envelope{MeetingID: meeting, Type: events.TypeSettingsChanged, Time: rep.Start,
			Schema: events.SchemaVersion, Payload: &events.SettingsChanged{Settings: base}})
	}
	var out []events.Envelope
	apply := func(d aggregate.Decision) {
		for i := range d.Events {
			aggregate.Evolve(s, &d.Events[i])
			out = append(out, d.Events[i])
		}
	}
	ticks := 0
	tickUntil := func(t time.Time) {
		for {
			next := aggregate.NextDeadline(s)
			if next.IsZero() || next.After(t) {
				return
			}
			ticks++
			d, err := aggregate.Decide(s, aggregate.Command{ID: fmt.Sprintf("whatif-tick-%d", ticks), Action: aggregate.Tick{}}, next)
			if err != nil || len(d.Events) == 0 {
				return
			}
			apply(d)
		}
	}
	refusedBy := map[string]int{}
	for i := range evs {
		e := &evs[i]
		if e.Type == events.TypeLapsed {
			continue // the what-if world records its own
		}
		cmd, ok := aggregate.CommandOf(e)
		if !ok {
			continue
		}
		if c, ok := cmd.Action.(aggregate.Configure); ok {
			cmd.Action = aggregate.Configure{Settings: override(c.Settings)}
		}
		rep.Commands++
		tickUntil(e.Time)
		d, err := aggregate.Decide(s, cmd, e.Time)
		if err == nil && d.Duplicate {
			continue
		}
		if err != nil || d.Err != nil && !errors.Is(d.Err, aggregate.ErrStageFull) {
			if err == nil {
				err = d.Err
			}
			rep.Refused = append(rep.Refused, Refusal{Version: e.Version, Time: e.Time, Actor: e.Actor, Command: cmd.Action.Name(), Reason: err.Error()})
			refusedBy[refusedUser(e)]++
			continue
		}
		apply(d)
	}
	tickUntil(rep.End)
	rep.Events = out

	recorded := projections.HistoryOf(meeting, evs)
	whatif := projections.HistoryOf(meeting, out)
	rec, wi := outcomes(recorded, rep.End), outcomes(whatif, rep.End)
	for u, n := range refusedBy {
		o := wi[u]
		o.Refused = n
		wi[u] = o
	}
	var users []string
	for _, h := range []*projections.History{recorded, whatif} {
		for _, u := range h.Users() {
			if !slices.Contains(users, u) {
				users = append(users, u)
			}
		}
	}
	for _, u := range users {
		r, w := rec[u], wi[u]
		if r == (Outcome{}) && w == (Outcome{}) {
			continue // only entered and left
		}
		rep.Users = append(rep.Users, UserWhatIf{User: u, Recorded: r, WhatIf: w})
		rep.Recorded = rep.Recorded.add(r)
		rep.WhatIf = rep.WhatIf.add(w)
	}
	return rep, nil
}

// refusedUser is whom a refused command concerns: its actor, or for the
// backend's commands the user they name.
func refusedUser(e *events.Envelope) string {
	if e.Actor != "" {
		return e.Actor
	}
	if us := e.Users(); len(us) > 0 {
		return us[0]
	}
	return ""
}

func (o Outcome) add(p Outcome) Outcome {
	return Outcome{Requests: o.Requests + p.Requests, Granted: o.Granted + p.Granted, Denied: o.Denied + p.Denied,
		Lapses: o.Lapses + p.Lapses, Waitlisted: o.Waitlisted + p.Waitlisted, Kicked: o.Kicked + p.Kicked,
		Wait: o.Wait + p.Wait, LongestWait: max(o.LongestWait, p.LongestWait), OnStage: o.OnStage + p.OnStage,
		Refused: o.Refused + p.Refused}
}

// outcomes counts each user's outcomes in a history, open intervals ending at end.
func outcomes(h *projections.History, end time.Time) map[string]Outcome {
	out := map[string]Outcome{}
	for _, r := range h.Requests {
		if r.Outcome == projections.OutcomeAuto {
			continue
		}
		o := out[r.UserID]
		o.Requests++
		switch r.Outcome {
		case projections.OutcomeGranted:
			o.Granted++
		case projections.OutcomeDenied:
			o.Denied++
		}
		w := r.Wait
		if r.DecidedAt.IsZero() {
			w = end.Sub(r.RequestedAt)
		}
		o.Wait += w
		o.LongestWait = max(o.LongestWait, w)
		out[r.UserID] = o
	}
	for _, st := range h.Stints {
		o := out[st.UserID]
		o.OnStage += st.Duration(end)
		out[st.UserID] = o
	}
	for _, en := range h.Entries {
		for _, u := range en.Users {
			o := out[u]
			switch en.Type {
			case events.TypeLapsed:
				o.Lapses++
			case events.TypeSeatWaitlisted:
				o.Waitlisted++
			case events.TypeKicked:
				o.Kicked++
			default:
				continue
			}
			out[u] = o
		}
	}
	return out
}
