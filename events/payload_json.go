package events

// Hand-written JSON for the payload types: appendJSON writes exactly what
// encoding/json writes for the payload (field order, omitempty, escaping),
// and decodeJSON reads it strictly (see Unmarshal). A payload type without
// these methods is encoded and decoded with encoding/json instead, so both
// are optional; the differential tests check each one against encoding/json.

// jsonAppender is a payload that encodes itself; appendJSON must append
// exactly the bytes json.Marshal writes for it.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

// jsonDecoder is a payload that decodes itself from the object at d's
// offset, with the acceptance of encoding/json with DisallowUnknownFields
// (but exact, unrepeated member names).
type jsonDecoder interface {
	decodeJSON(d *decoder) error
}

// Member names, in the order of the struct fields.
var (
	permissionsNames        = []string{"stageAccess", "acceptStageRequests"}
	skipNames               = []string{"user", "reason"}
	participantJoinedNames  = []string{"user", "permissions"}
	participantLeftNames    = []string{"user", "status"}
	permissionsChangedNames = []string{"user", "permissions", "status"}
	accessRequestedNames    = []string{"autoAccepted"}
	accessGrantedNames      = []string{"users", "skipped"}
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
			s, err = d.stringValue("stageAccess")
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
				s.Reason, err = d.stringValue("reason")
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
	return append(b, '}')
}

func (p *ParticipantLeft) decodeJSON(d *decoder) error {
	return d.object("payload", participantLeftNames, false, func(i int) (err error) {
		switch i {
		case 0:
			p.UserID, err = d.stringValue("user")
		case 1:
			p.Status, err = d.stringValue("status")
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
			p.Status, err = d.stringValue("status")
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
			*reason, err = d.stringValue("reason")
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
