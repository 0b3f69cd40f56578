package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
)

// ProblemContentType is the media type of every error answer (RFC 9457).
const ProblemContentType = "application/problem+json"

// ProblemTypePrefix starts every problem's type URI; the engine's or this
// package's stable code follows it ("urn:productdb:stage:error:Cooldown").
const ProblemTypePrefix = "urn:productdb:stage:error:"

// The codes this package adds to the engine's (docs/errors.md) for what
// goes wrong before a command reaches the engine.
const (
	// CodeUnauthenticated (401): no valid bearer credential.
	CodeUnauthenticated = "Unauthenticated"
	// CodeForbidden (403): the credential's kind may not call the route
	// (a user on a backend route, the backend on a user's route).
	CodeForbidden = "Forbidden"
	// CodeBadRequest (400): a body that is not one JSON value of the
	// route's shape (bad JSON, unknown fields, wrong types, trailing data).
	CodeBadRequest = "BadRequest"
	// CodeBodyTooLarge (413): a body over the limit ([WithMaxBodyBytes]).
	CodeBodyTooLarge = "BodyTooLarge"
	// CodeNotFound (404): no such route.
	CodeNotFound = "NotFound"
	// CodeMethodNotAllowed (405): the route exists, not with this method.
	CodeMethodNotAllowed = "MethodNotAllowed"
)

// Problem is an RFC 9457 problem details object, the body of every error
// answer. The members beyond the standard ones (type, title, status,
// detail, instance) are [stage.ErrorBody]'s, plus the rejected targets of
// a list command.
type Problem struct {
	// Type is ProblemTypePrefix followed by Code.
	Type string `json:"type"`
	// Title is the HTTP status text.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail is the error's text, for people.
	Detail string `json:"detail,omitempty"`
	// Instance is the request's path.
	Instance string `json:"instance,omitempty"`
	// Code is the stable code ([stage.ErrorCode], or one of this package's
	// Code constants).
	Code string `json:"code"`
	// Stored is what a failure left stored: "no" or "unknown" (see
	// [stage.ErrorBody]).
	Stored string `json:"stored,omitempty"`
	// Unavailable is true when no server or stream leader was reachable.
	Unavailable bool `json:"unavailable,omitempty"`
	// Rejection is the rule that rejected the command.
	Rejection *aggregate.Error `json:"rejection,omitempty"`
	// Rejected lists the ineligible targets of a list command.
	Rejected []aggregate.Rejection `json:"rejected,omitempty"`
}

// ProblemOf describes an engine error as a Problem, with
// [stage.ErrorBodyOf]'s code, status and details. It returns the zero
// Problem for nil.
func ProblemOf(err error) Problem {
	if err == nil {
		return Problem{}
	}
	b := stage.ErrorBodyOf(err)
	return Problem{Type: ProblemTypePrefix + b.Code, Title: statusTitle(b.Status), Status: b.Status,
		Detail: b.Message, Code: b.Code, Stored: b.Stored, Unavailable: b.Unavailable, Rejection: b.Rejection}
}

func newProblem(status int, code, detail string) Problem {
	return Problem{Type: ProblemTypePrefix + code, Title: statusTitle(status), Status: status, Detail: detail, Code: code}
}

func statusTitle(status int) string {
	if status == stage.StatusClientClosedRequest {
		return "Client Closed Request"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Status " + strconv.Itoa(status)
}

// writeProblem answers p; a Cooldown rejection or a ban with an end gets
// Retry-After.
func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if r != nil && p.Instance == "" {
		p.Instance = r.URL.Path
	}
	h := w.Header()
	h.Set("Content-Type", ProblemContentType)
	h.Set("Cache-Control", "no-store")
	if p.Rejection != nil && errors.Is(p.Rejection, aggregate.ErrCooldown) && !p.Rejection.Until.IsZero() {
		secs := int(time.Until(p.Rejection.Until).Round(time.Second) / time.Second)
		h.Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="stage"`)
	}
	b, err := json.Marshal(p)
	if err != nil { // a rejection that does not marshal: answer without it
		p.Rejection, p.Rejected = nil, nil
		b, _ = json.Marshal(p)
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(b, '\n'))
}
