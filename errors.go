package stage

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// The outcome of a command that failed for a reason other than the rules
// (a store failure, a context ending, the Engine closing): every such error
// [Engine.Execute] returns wraps exactly one of ErrNotStored and
// ErrOutcomeUnknown, and ErrUnavailable too when no server or stream
// leader could be reached. A rejection by the rules (an [*aggregate.Error])
// wraps neither: it is a decision, not a failure. These are the
// [eventstore] sentinels of the same names: a store reports them, the
// Engine passes them on.
var (
	// ErrNotStored: the command stored nothing. Retrying it as it is
	// cannot apply it twice.
	ErrNotStored = eventstore.ErrNotStored
	// ErrOutcomeUnknown: the command may or may not have been stored (its
	// append was sent, and the answer lost). Retry it with the same
	// idempotency key ([WithIdempotencyKey]): the retry reports the first
	// attempt's outcome (Result.Duplicate), or applies it now.
	ErrOutcomeUnknown = eventstore.ErrOutcomeUnknown
	// ErrUnavailable: no server, or no stream leader, could be reached.
	// Always together with ErrNotStored or ErrOutcomeUnknown.
	ErrUnavailable = eventstore.ErrUnavailable
)

// The codes of [ErrorCode] that are not [aggregate.ReasonCode]s. They are
// stable: clients may match on them.
const (
	CodeClosed           = "Closed"           // stage.ErrClosed: the Engine is closed
	CodeStoreClosed      = "StoreClosed"      // eventstore.ErrClosed
	CodeRouterClosed     = "RouterClosed"     // stage.ErrRouterClosed: a Router's subscriptions end
	CodeSlowConsumer     = "SlowConsumer"     // stage.ErrSlowConsumer: a subscriber fell a buffer behind
	CodeHistoryLost      = "HistoryLost"      // eventstore.ErrHistoryLost
	CodeCorrupt          = "Corrupt"          // eventstore.ErrCorrupt
	CodeBadSnapshot      = "BadSnapshot"      // aggregate.ErrBadSnapshot
	CodeConflict         = "Conflict"         // eventstore.ErrConflict: gave up after too many conflicts
	CodeInvalidEvents    = "InvalidEvents"    // eventstore.ErrInvalidEvents: the store refused the events
	CodeUnavailable      = "Unavailable"      // ErrUnavailable
	CodeDeadlineExceeded = "DeadlineExceeded" // context.DeadlineExceeded
	CodeCanceled         = "Canceled"         // context.Canceled
	CodeOutcomeUnknown   = "OutcomeUnknown"   // ErrOutcomeUnknown
	CodeNotStored        = "NotStored"        // ErrNotStored
	CodeInternal         = "Internal"         // any other error
)

// errorKinds lists every error kind [ErrorCode] and [HTTPStatus] know,
// most specific first: an error matching several (a deadline that left
// the outcome unknown, say) gets the first one's code and status. The
// table in docs/errors.md is this list.
var errorKinds = []struct {
	err    error
	code   string
	status int
}{
	{aggregate.ErrPermissionDenied, "PermissionDenied", http.StatusForbidden},
	{aggregate.ErrInvalidState, "InvalidState", http.StatusConflict},
	{aggregate.ErrNotParticipant, "NotParticipant", http.StatusNotFound},
	{aggregate.ErrInvalidCommand, "InvalidCommand", http.StatusBadRequest},
	{aggregate.ErrStageFull, "StageFull", http.StatusConflict},
	{aggregate.ErrCooldown, "Cooldown", http.StatusTooManyRequests},
	{aggregate.ErrKeyReused, "KeyReused", http.StatusUnprocessableEntity},
	{aggregate.ErrNoMeeting, "NoMeeting", http.StatusNotFound},
	{aggregate.ErrBackstage, "Backstage", http.StatusConflict},
	{aggregate.ErrStageEnded, "StageEnded", http.StatusConflict},
	{aggregate.ErrRequestsClosed, "RequestsClosed", http.StatusConflict},
	{ErrClosed, CodeClosed, http.StatusServiceUnavailable},
	{ErrRouterClosed, CodeRouterClosed, http.StatusServiceUnavailable},
	{ErrSlowConsumer, CodeSlowConsumer, http.StatusServiceUnavailable},
	{eventstore.ErrClosed, CodeStoreClosed, http.StatusServiceUnavailable},
	{eventstore.ErrHistoryLost, CodeHistoryLost, http.StatusInternalServerError},
	{eventstore.ErrCorrupt, CodeCorrupt, http.StatusInternalServerError},
	{aggregate.ErrBadSnapshot, CodeBadSnapshot, http.StatusInternalServerError},
	{eventstore.ErrConflict, CodeConflict, http.StatusConflict},
	{eventstore.ErrInvalidEvents, CodeInvalidEvents, http.StatusBadRequest},
	{ErrUnavailable, CodeUnavailable, http.StatusServiceUnavailable},
	{context.DeadlineExceeded, CodeDeadlineExceeded, http.StatusGatewayTimeout},
	{context.Canceled, CodeCanceled, StatusClientClosedRequest},
	{ErrOutcomeUnknown, CodeOutcomeUnknown, http.StatusGatewayTimeout},
	{ErrNotStored, CodeNotStored, http.StatusServiceUnavailable},
}

// StatusClientClosedRequest (499, not in net/http) is [HTTPStatus] of a
// cancelled context: the client went away. It is what nginx logs and
// grpc-gateway answers for a cancelled call.
const StatusClientClosedRequest = 499

// ErrorCode returns the stable, machine-readable code of err's kind: the
// [aggregate.ReasonCode] of a rejection ("PermissionDenied", "Cooldown",
// ...), or one of the Code constants of this package for the other
// kinds ("Unavailable", "OutcomeUnknown", "HistoryLost", ...); "" for nil
// and [CodeInternal] for an error of no known kind. When err matches
// several kinds the most specific wins, in the order of the table in
// docs/errors.md. Codes never change meaning; new ones may be added.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.code
		}
	}
	return CodeInternal
}

// HTTPStatus returns the HTTP status a service answers err with: 200 for
// nil, and for each kind the status of the table in docs/errors.md (403
// permission denied, 404 not a participant or no such meeting, 409
// invalid state or stage full or conflict, 429 cooldown, 422 key reused,
// 400 invalid command, 503 unavailable or closed or not stored, 504
// deadline or outcome unknown, 499 cancelled, 500 for corruption, lost
// history and anything unknown). A Join answered with aggregate.ErrStageFull has still
// recorded the waitlisting (see [Engine.Execute]); it is 409 all the same.
func HTTPStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.status
		}
	}
	return http.StatusInternalServerError
}

// Stored values of [ErrorBody]: what a failed command left in the store.
const (
	StoredNo      = "no"      // ErrNotStored: retry as is
	StoredUnknown = "unknown" // ErrOutcomeUnknown: retry with the same idempotency key
)

// ErrorBody is the JSON form of any error of the Engine, for a service to
// send as it is (see [ErrorBodyOf]):
//
//	{"code":"Unavailable","status":503,"message":"...","stored":"no"}
//	{"code":"Cooldown","status":429,"message":"...","rejection":{"code":"Cooldown",...}}
type ErrorBody struct {
	// Code is [ErrorCode] of the error.
	Code string `json:"code"`
	// Status is [HTTPStatus] of the error.
	Status int `json:"status"`
	// Message is the error's text, for people.
	Message string `json:"message"`
	// Stored says what a failure (not a rejection) left in the store:
	// [StoredNo] or [StoredUnknown]; empty for a rejection.
	Stored string `json:"stored,omitempty"`
	// Unavailable is true when no server or leader could be reached
	// ([ErrUnavailable]): retrying later may succeed.
	Unavailable bool `json:"unavailable,omitempty"`
	// Rejection is the rule that rejected the command, for a rejection.
	Rejection *aggregate.Error `json:"rejection,omitempty"`
}

// ErrorBodyOf describes err for a client. It returns the zero ErrorBody
// for nil.
func ErrorBodyOf(err error) ErrorBody {
	if err == nil {
		return ErrorBody{}
	}
	b := ErrorBody{Code: ErrorCode(err), Status: HTTPStatus(err), Message: err.Error(), Unavailable: errors.Is(err, ErrUnavailable)}
	switch {
	case errors.Is(err, ErrOutcomeUnknown):
		b.Stored = StoredUnknown
	case errors.Is(err, ErrNotStored):
		b.Stored = StoredNo
	}
	var rej *aggregate.Error
	if errors.As(err, &rej) && aggregate.ReasonCode(rej) != "" {
		b.Rejection = rej
	}
	return b
}

// resultJSON is the JSON form of a [Result].
type resultJSON struct {
	Version   uint64                `json:"version"`
	Seq       uint64                `json:"seq"`
	Duplicate bool                  `json:"duplicate"`
	Events    []events.Envelope     `json:"events"`
	Rejected  []aggregate.Rejection `json:"rejected"`
}

// MarshalJSON returns the result's stable JSON form:
//
//	{"version":4,"seq":4,"duplicate":false,"events":[...],"rejected":[...]}
//
// events are in the log's wire format (see package events; with their
// store positions, "seq"), rejected in
// [aggregate.Rejection.MarshalJSON]'s form; both are [] when empty, never
// null.
func (r Result) MarshalJSON() ([]byte, error) {
	j := resultJSON{Version: r.Version, Seq: r.Seq, Duplicate: r.Duplicate, Events: r.Events, Rejected: r.Rejected}
	if j.Events == nil {
		j.Events = []events.Envelope{}
	}
	if j.Rejected == nil {
		j.Rejected = []aggregate.Rejection{}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form [Result.MarshalJSON] writes back into r.
// The events are decoded as the log's reader decodes them. Empty lists
// are read as nil.
func (r *Result) UnmarshalJSON(data []byte) error {
	var j resultJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*r = Result{Version: j.Version, Seq: j.Seq, Duplicate: j.Duplicate}
	if len(j.Events) > 0 {
		r.Events = j.Events
	}
	if len(j.Rejected) > 0 {
		r.Rejected = j.Rejected
	}
	return nil
}
