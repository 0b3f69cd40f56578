package events

import (
	"strconv"
	"time"
)

// Hand-written JSON for the payload types: appendJSON writes exactly what
// encoding/json writes for the payload (field order, omitempty, escaping,
// time and duration forms), and decodeJSON reads it strictly (see
// Unmarshal). Every payload type has both; the differential tests hold
// each one to encoding/json.

// Member names, in the order of the struct fields.
var (
	permissionsNames        = []string{"stageAccess", "acceptStageRequests"}
	skipNames               = []string{"user", "reason"}
	participantJoinedNames  = []string{"user", "permissions"}
	participantLeftNames    = []string{"user", "status", "reason"}
	permissionsChangedNames = []string{"user", "permissions", "status"}
	accessRequestedNames    = []string{"autoAccepted"}
	accessGrantedNames      = []string{"users", "invited", "skipped"}
	listNames               = []string{"users", "reason", "skipped"} // AccessDenied, Kicked
	stageLeftNames          = []string{"declined"}
)

func (p *Permissions) appendJSON(b []byte) []byte {
	b = append(b, `{"stageAccess":`...)
	b = appendJSONString(b, string(p.StageAccess))
	b = append(b, `,"acceptStageRequests":`...)
	b = appendJSONBool(b, p.AcceptStageRequests)
	return append(b, '}')
}

func (p *Permissions) decodeJSON(d *decoder) error {
	return d.object("permissions", permissionsNames, true, func(i int) (err error) {
		switch i {
		case 0:
			var s string
			s, err = d.wordValue("stageAccess")
			p.StageAccess = StageAccess(s)
		case 1:
			p.AcceptStageRequests, err = d.boolValue("acceptStageRequests")
		}
		return err
	})
}

// appendJSONSkips appends skips as encoding/json writes a []Skip.
func appendJSONSkips(b []byte, skips []Skip) []byte {
	if skips == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range skips {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"user":`...)
		b = appendJSONString(b, skips[i].UserID)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, skips[i].Reason)
		b = append(b, '}')
	}
	return append(b, ']')
}

// decodeSkips reads a []Skip as encoding/json does: null for nil, null
// elements as zero Skips.
func decodeSkips(d *decoder) ([]Skip, error) {
	null, more, err := d.arrayStart("skipped")
	if err != nil || null {
		return nil, err
	}
	list := make([]Skip, 0, 2)
	for more {
		list = append(list, Skip{})
		s := &list[len(list)-1]
		err := d.object("skipped", skipNames, true, func(i int) (err error) {
			switch i {
			case 0:
				s.UserID, err = d.stringValue("user")
			case 1:
				s.Reason, err = d.wordValue("reason")
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if more, err = d.arrayNext(); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func (p *ParticipantJoined) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"user":`...)
	b = appendJSONString(b, p.UserID)
	b = append(b, `,"permissions":`...)
	b = p.Permissions.appendJSON(b)
	return append(b, '}')
}

func (p *ParticipantJoined) decodeJSON(d *decoder) error {
	return d.object("payload", participantJoinedNames, false, func(i int) (err error) {
		switch i {
		case 0:
			p.UserID, err = d.stringValue("user")
		case 1:
			err = p.Permissions.decodeJSON(d)
		}
		return err
	})
}

func (p *ParticipantLeft) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"user":`...)
	b = appendJSONString(b, p.UserID)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, p.Status)
	if p.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, p.Reason)
	}
	return append(b, '}')
}

func (p *ParticipantLeft) decodeJSON(d *decoder) error {
	return d.object("payload", participantLeftNames, false, func(i int) (err error) {
		switch i {
		case 0:
			p.UserID, err = d.stringValue("user")
		case 1:
			p.Status, err = d.wordValue("status")
		case 2:
			p.Reason, err = d.wordValue("reason")
		}
		return err
	})
}

func (p *PermissionsChanged) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"user":`...)
	b = appendJSONString(b, p.UserID)
	b = append(b, `,"permissions":`...)
	b = p.Permissions.appendJSON(b)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, p.Status)
	return append(b, '}')
}

func (p *PermissionsChanged) decodeJSON(d *decoder) error {
	return d.object("payload", permissionsChangedNames, false, func(i int) (err error) {
		switch i {
		case 0:
			p.UserID, err = d.stringValue("user")
		case 1:
			err = p.Permissions.decodeJSON(d)
		case 2:
			p.Status, err = d.wordValue("status")
		}
		return err
	})
}

func (p *AccessRequested) appendJSON(b []byte) []byte {
	switch {
	case p == nil:
		return append(b, "null"...)
	case p.AutoAccepted:
		return append(b, `{"autoAccepted":true}`...)
	default:
		return append(b, "{}"...)
	}
}

func (p *AccessRequested) decodeJSON(d *decoder) error {
	return d.object("payload", accessRequestedNames, false, func(int) (err error) {
		p.AutoAccepted, err = d.boolValue("autoAccepted")
		return err
	})
}

func (p *AccessRequestCancelled) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return append(b, "{}"...)
}

func (p *AccessRequestCancelled) decodeJSON(d *decoder) error {
	return d.object("payload", nil, false, nil)
}

func (p *AccessGranted) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"users":`...)
	b = appendJSONStrings(b, p.Users)
	if len(p.Invited) > 0 {
		b = append(b, `,"invited":`...)
		b = appendJSONStrings(b, p.Invited)
	}
	if len(p.Skipped) > 0 {
		b = append(b, `,"skipped":`...)
		b = appendJSONSkips(b, p.Skipped)
	}
	return append(b, '}')
}

func (p *AccessGranted) decodeJSON(d *decoder) error {
	return d.object("payload", accessGrantedNames, false, func(i int) (err error) {
		switch i {
		case 0:
			p.Users, err = d.stringList("users")
		case 1:
			p.Invited, err = d.stringList("invited")
		case 2:
			p.Skipped, err = decodeSkips(d)
		}
		return err
	})
}

// appendListJSON appends the payload of AccessDenied and Kicked.
func appendListJSON(b []byte, users []string, reason string, skipped []Skip) []byte {
	b = append(b, `{"users":`...)
	b = appendJSONStrings(b, users)
	if reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, reason)
	}
	if len(skipped) > 0 {
		b = append(b, `,"skipped":`...)
		b = appendJSONSkips(b, skipped)
	}
	return append(b, '}')
}

// decodeListJSON reads the payload of AccessDenied and Kicked.
func decodeListJSON(d *decoder, users *[]string, reason *string, skipped *[]Skip) error {
	return d.object("payload", listNames, false, func(i int) (err error) {
		switch i {
		case 0:
			*users, err = d.stringList("users")
		case 1:
			*reason, err = d.wordValue("reason")
		case 2:
			*skipped, err = decodeSkips(d)
		}
		return err
	})
}

func (p *AccessDenied) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return appendListJSON(b, p.Users, p.Reason, p.Skipped)
}

func (p *AccessDenied) decodeJSON(d *decoder) error {
	return decodeListJSON(d, &p.Users, &p.Reason, &p.Skipped)
}

func (p *StageJoined) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return append(b, "{}"...)
}

func (p *StageJoined) decodeJSON(d *decoder) error {
	return d.object("payload", nil, false, nil)
}

func (p *StageLeft) appendJSON(b []byte) []byte {
	switch {
	case p == nil:
		return append(b, "null"...)
	case p.Declined:
		return append(b, `{"declined":true}`...)
	default:
		return append(b, "{}"...)
	}
}

func (p *StageLeft) decodeJSON(d *decoder) error {
	return d.object("payload", stageLeftNames, false, func(int) (err error) {
		p.Declined, err = d.boolValue("declined")
		return err
	})
}

func (p *Kicked) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return appendListJSON(b, p.Users, p.Reason, p.Skipped)
}

func (p *Kicked) decodeJSON(d *decoder) error {
	return decodeListJSON(d, &p.Users, &p.Reason, &p.Skipped)
}

// The policy payloads.

var (
	settingsNames        = []string{"maxOnStage", "seatOfferTTL", "invitationTTL", "speakingSlot", "requestCooldown", "reconnectGrace", "requestTTL", "startBackstage", "allowBringOnStage"}
	settingsChangedNames = []string{"settings", "previous"}
	seatWaitlistedNames  = []string{"position", "status", "maxOnStage"}
	stageBannedNames     = []string{"user", "until", "status"}
	userNames            = []string{"user"} // BanLifted, Reconnected
	disconnectedNames    = []string{"user", "grace"}
	lapsedNames          = []string{"lapses"}
	lapseNames           = []string{"user", "kind", "since", "deadline", "setting", "limit", "status"}
)

// appendJSON appends what Settings.MarshalJSON writes: zero fields omitted.
func (s *Settings) appendJSON(b []byte) []byte {
	b = append(b, '{')
	sep := func(b []byte, name string) []byte {
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		return append(b, '"', ':')
	}
	if s.MaxOnStage != 0 {
		b = strconv.AppendInt(sep(b, "maxOnStage"), int64(s.MaxOnStage), 10)
	}
	for i, d := range [...]time.Duration{s.SeatOfferTTL, s.InvitationTTL, s.SpeakingSlot, s.RequestCooldown, s.ReconnectGrace, s.RequestTTL} {
		if d != 0 {
			b = appendJSONDuration(sep(b, settingsNames[i+1]), Duration(d))
		}
	}
	if s.StartBackstage {
		b = appendJSONBool(sep(b, "startBackstage"), true)
	}
	if s.AllowBringOnStage {
		b = appendJSONBool(sep(b, "allowBringOnStage"), true)
	}
	return append(b, '}')
}

// decodeJSON reads what Settings.UnmarshalJSON reads, with exact,
// unrepeated names; null leaves s as it is.
func (s *Settings) decodeJSON(d *decoder, what string) error {
	return d.object(what, settingsNames, true, func(i int) (err error) {
		var v Duration
		switch i {
		case 0:
			s.MaxOnStage, err = d.intValue("maxOnStage")
			return err
		case 7:
			s.StartBackstage, err = d.boolValue("startBackstage")
			return err
		case 8:
			s.AllowBringOnStage, err = d.boolValue("allowBringOnStage")
			return err
		default:
			v, err = d.durationValue(settingsNames[i])
		}
		switch i {
		case 1:
			s.SeatOfferTTL = time.Duration(v)
		case 2:
			s.InvitationTTL = time.Duration(v)
		case 3:
			s.SpeakingSlot = time.Duration(v)
		case 4:
			s.RequestCooldown = time.Duration(v)
		case 5:
			s.ReconnectGrace = time.Duration(v)
		case 6:
			s.RequestTTL = time.Duration(v)
		}
		return err
	})
}

func (p *SettingsChanged) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"settings":`...)
	b = p.Settings.appendJSON(b)
	b = append(b, `,"previous":`...)
	b = p.Previous.appendJSON(b)
	return append(b, '}')
}

func (p *SettingsChanged) decodeJSON(d *decoder) error {
	return d.object("payload", settingsChangedNames, false, func(i int) error {
		if i == 0 {
			return p.Settings.decodeJSON(d, "settings")
		}
		return p.Previous.decodeJSON(d, "previous")
	})
}

func (p *SeatWaitlisted) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"position":`...)
	b = strconv.AppendInt(b, int64(p.Position), 10)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, p.Status)
	b = append(b, `,"maxOnStage":`...)
	b = strconv.AppendInt(b, int64(p.MaxOnStage), 10)
	return append(b, '}')
}

func (p *SeatWaitlisted) decodeJSON(d *decoder) error {
	return d.object("payload", seatWaitlistedNames, false, func(i int) (err error) {
		switch i {
		case 0:
			p.Position, err = d.intValue("position")
		case 1:
			p.Status, err = d.wordValue("status")
		case 2:
			p.MaxOnStage, err = d.intValue("maxOnStage")
		}
		return err
	})
}

// appendJSON fails, as json.Marshal does, for an Until it cannot write.
func (p *StageBanned) appendJSON(b []byte) ([]byte, error) {
	if p == nil {
		return append(b, "null"...), nil
	}
	b = append(b, `{"user":`...)
	b = appendJSONString(b, p.UserID)
	if !p.Until.IsZero() {
		var err error
		b = append(b, `,"until":`...)
		if b, err = appendJSONTimeAsIs(b, p.Until); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"status":`...)
	b = appendJSONString(b, p.Status)
	return append(b, '}'), nil
}

func (p *StageBanned) decodeJSON(d *decoder) error {
	return d.object("payload", stageBannedNames, false, func(i int) (err error) {
		switch i {
		case 0:
			p.UserID, err = d.stringValue("user")
		case 1:
			p.Until, err = d.timeValue("until")
		case 2:
			p.Status, err = d.wordValue("status")
		}
		return err
	})
}

// appendUserJSON appends the payload of BanLifted and Reconnected.
func appendUserJSON(b []byte, user string) []byte {
	b = append(b, `{"user":`...)
	b = appendJSONString(b, user)
	return append(b, '}')
}

// decodeUserJSON reads the payload of BanLifted and Reconnected.
func decodeUserJSON(d *decoder, user *string) error {
	return d.object("payload", userNames, false, func(int) (err error) {
		*user, err = d.stringValue("user")
		return err
	})
}

func (p *BanLifted) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return appendUserJSON(b, p.UserID)
}

func (p *BanLifted) decodeJSON(d *decoder) error { return decodeUserJSON(d, &p.UserID) }

func (p *Reconnected) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return appendUserJSON(b, p.UserID)
}

func (p *Reconnected) decodeJSON(d *decoder) error { return decodeUserJSON(d, &p.UserID) }

func (p *Disconnected) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"user":`...)
	b = appendJSONString(b, p.UserID)
	b = append(b, `,"grace":`...)
	b = appendJSONDuration(b, p.Grace)
	return append(b, '}')
}

func (p *Disconnected) decodeJSON(d *decoder) error {
	return d.object("payload", disconnectedNames, false, func(i int) (err error) {
		switch i {
		case 0:
			p.UserID, err = d.stringValue("user")
		case 1:
			p.Grace, err = d.durationValue("grace")
		}
		return err
	})
}

// appendJSON fails, as json.Marshal does, for a time it cannot write.
func (p *Lapsed) appendJSON(b []byte) ([]byte, error) {
	if p == nil {
		return append(b, "null"...), nil
	}
	b = append(b, `{"lapses":`...)
	if p.Lapses == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range p.Lapses {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = p.Lapses[i].appendJSON(b); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

func (l *Lapse) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"user":`...)
	b = appendJSONString(b, l.UserID)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(l.Kind))
	b = append(b, `,"since":`...)
	b, err := appendJSONTimeAsIs(b, l.Since)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"deadline":`...)
	if b, err = appendJSONTimeAsIs(b, l.Deadline); err != nil {
		return nil, err
	}
	b = append(b, `,"setting":`...)
	b = appendJSONString(b, l.Setting)
	b = append(b, `,"limit":`...)
	b = appendJSONDuration(b, l.Limit)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, l.Status)
	return append(b, '}'), nil
}

func (p *Lapsed) decodeJSON(d *decoder) error {
	return d.object("payload", lapsedNames, false, func(int) (err error) {
		p.Lapses, err = decodeLapses(d)
		return err
	})
}

// decodeLapses reads a []Lapse as encoding/json does: null for nil, null
// elements as zero Lapses.
func decodeLapses(d *decoder) ([]Lapse, error) {
	null, more, err := d.arrayStart("lapses")
	if err != nil || null {
		return nil, err
	}
	list := make([]Lapse, 0, 1)
	for more {
		list = append(list, Lapse{})
		l := &list[len(list)-1]
		err := d.object("lapses", lapseNames, true, func(i int) (err error) {
			switch i {
			case 0:
				l.UserID, err = d.stringValue("user")
			case 1:
				var s string
				s, err = d.wordValue("kind")
				l.Kind = LapseKind(s)
			case 2:
				l.Since, err = d.timeValue("since")
			case 3:
				l.Deadline, err = d.timeValue("deadline")
			case 4:
				l.Setting, err = d.wordValue("setting")
			case 5:
				l.Limit, err = d.durationValue("limit")
			case 6:
				l.Status, err = d.wordValue("status")
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if more, err = d.arrayNext(); err != nil {
			return nil, err
		}
	}
	return list, nil
}
