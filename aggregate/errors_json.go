package aggregate

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// errorJSON is the JSON form of an [*Error]. Field names and codes are
// stable: a client in any language may rely on them.
type errorJSON struct {
	// Code is the kind, as [ReasonCode] names it ("PermissionDenied", ...).
	Code    string `json:"code"`
	Command string `json:"command,omitempty"`
	UserID  string `json:"user,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Until is set for a cooldown or a timed ban.
	Until time.Time `json:"until,omitzero"`
	// Cause is the text of the underlying error, if any.
	Cause string `json:"cause,omitempty"`
	// Message is Error()'s text, for people; it is not read back.
	Message string `json:"message"`
}

// MarshalJSON returns the error's stable JSON form:
//
//	{"code":"Cooldown","command":"RequestAccess","user":"bob",
//	 "reason":"denied 10s ago","until":"2026-01-02T15:04:05Z",
//	 "message":"stage: RequestAccess bob: request cooldown: denied 10s ago"}
//
// code is [ReasonCode] of the error; command, user, reason, until (RFC 3339)
// and cause (the text of Cause) are left out when empty; message is
// [Error.Error], for people. See docs/errors.md.
func (e *Error) MarshalJSON() ([]byte, error) {
	j := errorJSON{Code: ReasonCode(e.Err), Command: e.Command, UserID: e.UserID, Reason: e.Reason, Until: e.Until}
	if e.Cause != nil {
		j.Cause = e.Cause.Error()
	}
	if e.Err != nil {
		j.Message = e.Error()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form [Error.MarshalJSON] writes back into e: Err
// is the sentinel its code names (so errors.Is works on the result), and
// Cause, if any, an error with the recorded text (it no longer matches the
// original cause's sentinels). An unknown or missing code is an error.
func (e *Error) UnmarshalJSON(data []byte) error {
	var j errorJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	kind := ErrorForCode(j.Code)
	if kind == nil {
		return fmt.Errorf("aggregate: unknown error code %q", j.Code)
	}
	*e = Error{Command: j.Command, UserID: j.UserID, Err: kind, Reason: j.Reason, Until: j.Until}
	if j.Cause != "" {
		e.Cause = errors.New(j.Cause)
	}
	return nil
}

// rejectionJSON is the JSON form of a [Rejection].
type rejectionJSON struct {
	UserID string `json:"user"`
	// Error is the rejection's error; its own form when it is an *Error.
	Error *Error `json:"error"`
}

// MarshalJSON returns the rejection's stable JSON form,
// {"user":"bob","error":{...}}, the error in [Error.MarshalJSON]'s form.
// An Err that is not an [*Error] is written as one of the same kind, with
// its text as the reason.
func (r Rejection) MarshalJSON() ([]byte, error) {
	j := rejectionJSON{UserID: r.UserID}
	if r.Err != nil {
		if !errors.As(r.Err, &j.Error) {
			kind := ErrorForCode(ReasonCode(r.Err))
			if kind == nil {
				kind = r.Err
			}
			j.Error = &Error{UserID: r.UserID, Err: kind, Reason: r.Err.Error()}
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form [Rejection.MarshalJSON] writes back into r;
// Err is an [*Error].
func (r *Rejection) UnmarshalJSON(data []byte) error {
	var j rejectionJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*r = Rejection{UserID: j.UserID}
	if j.Error != nil {
		r.Err = j.Error
	}
	return nil
}
