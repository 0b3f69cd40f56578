package events

// The stage-control events: the stage's own periods (backstage, live,
// ended), the meeting-wide requests switch, co-hosts, an explicit decline
// and bringing a user on stage. Each is decided by the aggregate like the
// others; see aggregate's package documentation and docs/stage-controls.md.

// The stage phases as written in the log (StageStarted.From, StageEnded.From).
const (
	PhaseBackstage = "Backstage"
	PhaseLive      = "Live"
	PhaseEnded     = "Ended"
)

// StageStarted: the actor (a host) took the stage live, from backstage (a
// meeting whose settings start it backstage) or after it ended. From is the
// phase before.
type StageStarted struct {
	From string `json:"from"`
}

// StageEnded: the actor (a host) ended the stage for everyone, in one event.
// Applying it moves every user listed OffStage: OnStage are those who were
// on stage (a backend stops their media), Accepted those whose invitation or
// approval it withdrew (the seat waitlist goes with them), Requests those
// whose pending request it closed. Each list is sorted by user id. From is
// the phase before (Live or Backstage).
type StageEnded struct {
	From     string   `json:"from"`
	OnStage  []string `json:"onStage,omitempty"`
	Accepted []string `json:"accepted,omitempty"`
	Requests []string `json:"requests,omitempty"`
}

// RequestsClosed: the actor (a host) closed requests for the whole meeting:
// RequestAccess that would queue fails until RequestsOpened. Pending
// requests stay, unless the host chose to deny them all (DenyPending):
// Denied lists them, sorted by user id, and applying the event denies each
// as AccessDenied would (RequestCooldown counts from it).
type RequestsClosed struct {
	DenyPending bool     `json:"denyPending,omitempty"`
	Denied      []string `json:"denied,omitempty"`
}

// RequestsOpened: the actor (a host) opened requests again.
type RequestsOpened struct{}

// CoHostPromoted: the actor (a host) made the participant a co-host.
type CoHostPromoted struct {
	UserID string `json:"user"`
}

// CoHostDemoted: the actor (a host) took the co-host role from the
// participant.
type CoHostDemoted struct {
	UserID string `json:"user"`
}

// InvitationDeclined: the actor declined their invitation or approved
// request (AcceptedToJoinStage) explicitly, and is OffStage. Invited is
// true when it was an invitation (a grant with no request).
type InvitationDeclined struct {
	Invited bool `json:"invited,omitempty"`
}

// BroughtOnStage: the actor (a host) moved the user straight OnStage
// without their consent, which the meeting's settings allowed
// (AllowBringOnStage). Status is the user's status before.
type BroughtOnStage struct {
	UserID string `json:"user"`
	Status string `json:"status"`
}

func (*StageStarted) EventType() Type       { return TypeStageStarted }
func (*StageEnded) EventType() Type         { return TypeStageEnded }
func (*RequestsClosed) EventType() Type     { return TypeRequestsClosed }
func (*RequestsOpened) EventType() Type     { return TypeRequestsOpened }
func (*CoHostPromoted) EventType() Type     { return TypeCoHostPromoted }
func (*CoHostDemoted) EventType() Type      { return TypeCoHostDemoted }
func (*InvitationDeclined) EventType() Type { return TypeInvitationDeclined }
func (*BroughtOnStage) EventType() Type     { return TypeBroughtOnStage }

func (*StageStarted) payload()       {}
func (*StageEnded) payload()         {}
func (*RequestsClosed) payload()     {}
func (*RequestsOpened) payload()     {}
func (*CoHostPromoted) payload()     {}
func (*CoHostDemoted) payload()      {}
func (*InvitationDeclined) payload() {}
func (*BroughtOnStage) payload()     {}

// JSON, as in payload_json.go.

var (
	stageStartedNames       = []string{"from"}
	stageEndedNames         = []string{"from", "onStage", "accepted", "requests"}
	requestsClosedNames     = []string{"denyPending", "denied"}
	invitationDeclinedNames = []string{"invited"}
	broughtOnStageNames     = []string{"user", "status"}
)

func (p *StageStarted) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"from":`...)
	b = appendJSONString(b, p.From)
	return append(b, '}')
}

func (p *StageStarted) decodeJSON(d *decoder) error {
	return d.object("payload", stageStartedNames, false, func(int) (err error) {
		p.From, err = d.wordValue("from")
		return err
	})
}

func (p *StageEnded) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"from":`...)
	b = appendJSONString(b, p.From)
	for i, l := range [...][]string{p.OnStage, p.Accepted, p.Requests} {
		if len(l) > 0 {
			b = append(b, ',', '"')
			b = append(b, stageEndedNames[i+1]...)
			b = append(b, '"', ':')
			b = appendJSONStrings(b, l)
		}
	}
	return append(b, '}')
}

func (p *StageEnded) decodeJSON(d *decoder) error {
	return d.object("payload", stageEndedNames, false, func(i int) (err error) {
		switch i {
		case 0:
			p.From, err = d.wordValue("from")
		case 1:
			p.OnStage, err = d.stringList("onStage")
		case 2:
			p.Accepted, err = d.stringList("accepted")
		case 3:
			p.Requests, err = d.stringList("requests")
		}
		return err
	})
}

func (p *RequestsClosed) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	if p.DenyPending {
		b = append(b, `"denyPending":true`...)
	}
	if len(p.Denied) > 0 {
		if p.DenyPending {
			b = append(b, ',')
		}
		b = append(b, `"denied":`...)
		b = appendJSONStrings(b, p.Denied)
	}
	return append(b, '}')
}

func (p *RequestsClosed) decodeJSON(d *decoder) error {
	return d.object("payload", requestsClosedNames, false, func(i int) (err error) {
		if i == 0 {
			p.DenyPending, err = d.boolValue("denyPending")
		} else {
			p.Denied, err = d.stringList("denied")
		}
		return err
	})
}

func (p *RequestsOpened) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return append(b, "{}"...)
}

func (p *RequestsOpened) decodeJSON(d *decoder) error {
	return d.object("payload", nil, false, nil)
}

func (p *CoHostPromoted) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return appendUserJSON(b, p.UserID)
}

func (p *CoHostPromoted) decodeJSON(d *decoder) error { return decodeUserJSON(d, &p.UserID) }

func (p *CoHostDemoted) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return appendUserJSON(b, p.UserID)
}

func (p *CoHostDemoted) decodeJSON(d *decoder) error { return decodeUserJSON(d, &p.UserID) }

func (p *InvitationDeclined) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	if !p.Invited {
		return append(b, "{}"...)
	}
	return append(b, `{"invited":true}`...)
}

func (p *InvitationDeclined) decodeJSON(d *decoder) error {
	return d.object("payload", invitationDeclinedNames, false, func(int) (err error) {
		p.Invited, err = d.boolValue("invited")
		return err
	})
}

func (p *BroughtOnStage) appendJSON(b []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"user":`...)
	b = appendJSONString(b, p.UserID)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, p.Status)
	return append(b, '}')
}

func (p *BroughtOnStage) decodeJSON(d *decoder) error {
	return d.object("payload", broughtOnStageNames, false, func(i int) (err error) {
		switch i {
		case 0:
			p.UserID, err = d.stringValue("user")
		case 1:
			p.Status, err = d.wordValue("status")
		}
		return err
	})
}
