// Package httpapi serves the stage engine over HTTP: the client SDK's
// methods for the authenticated user (getAccessRequests, requestAccess,
// cancelRequestAccess, grantAccess, denyAccess, join, leave, kick), the
// stage roster, the user's status, the policy commands, the stage
// controls (start and end the stage, close and open requests, promote and
// demote co-hosts, decline an invitation, bring a user on stage), the backend's
// membership commands, and each user's live notifications as server-sent
// events. Mount the [Handler] in any http.Server; docs/http.md lists every
// route, and the OpenAPI description is served at GET /v1/openapi.json.
//
// The actor of every command comes from the [auth.Identity] the
// [auth.Authenticator] returns for the request's bearer token, never from
// its body. Errors are RFC 9457 problem details ([Problem]) with the
// engine's stable codes (docs/errors.md).
package httpapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/service/auth"
)

// DefaultMaxBodyBytes is the default limit on a request body (64 KiB); a
// larger body gets 413.
const DefaultMaxBodyBytes = 64 << 10

// DefaultStreamWriteTimeout is the default bound on one write to an
// event stream: a client that stops reading for that long is dropped.
const DefaultStreamWriteTimeout = 10 * time.Second

// DefaultHeartbeat is the default interval between two heartbeat comment
// lines on an idle event stream.
const DefaultHeartbeat = 15 * time.Second

// Errors of [New].
var (
	// ErrNilEngine: New was given a nil engine.
	ErrNilEngine = errors.New("httpapi: nil engine")
	// ErrNilAuthenticator: New was given a nil authenticator.
	ErrNilAuthenticator = errors.New("httpapi: nil authenticator")
	// ErrInvalidOption: an option's value is out of range.
	ErrInvalidOption = errors.New("httpapi: invalid option")
)

// Option configures a [Handler].
type Option func(*config) error

type config struct {
	maxBody      int64
	heartbeat    time.Duration
	buffer       int
	logger       *slog.Logger
	writeTimeout time.Duration
}

// WithMaxBodyBytes limits request bodies to n bytes (n > 0; default
// [DefaultMaxBodyBytes]).
func WithMaxBodyBytes(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: max body bytes %d is not positive", ErrInvalidOption, n)
		}
		c.maxBody = n
		return nil
	}
}

// WithHeartbeat sets the interval between heartbeats on an idle event
// stream (d > 0; default [DefaultHeartbeat]).
func WithHeartbeat(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: heartbeat %v is not positive", ErrInvalidOption, d)
		}
		c.heartbeat = d
		return nil
	}
}

// WithStreamWriteTimeout bounds each write to an event stream (d > 0;
// default [DefaultStreamWriteTimeout]): a client that does not take a
// notification, heartbeat or the final event within d is disconnected.
func WithStreamWriteTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: stream write timeout %v is not positive", ErrInvalidOption, d)
		}
		c.writeTimeout = d
		return nil
	}
}

// WithSubscriberBuffer sets each event stream's buffer in notifications
// (n > 0; default [stage.DefaultSubscriberBuffer]): a stream that falls a
// whole buffer behind is ended, and its client resumes with Last-Event-ID.
func WithSubscriberBuffer(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: subscriber buffer %d is not positive", ErrInvalidOption, n)
		}
		c.buffer = n
		return nil
	}
}

// WithLogger sets the logger for what cannot be answered to a client (a
// router that failed, say); default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		c.logger = l
		return nil
	}
}

// Handler serves the stage API. It is safe for concurrent use. Call
// [Handler.Shutdown] (or Close) before, or from, http.Server.Shutdown: an
// open event stream otherwise keeps its connection busy, and the server's
// Shutdown waits for it (srv.RegisterOnShutdown(func() { h.Close() })
// does it).
type Handler struct {
	eng   *stage.Engine
	authn auth.Authenticator
	cfg   config
	mux   *http.ServeMux
	// patterns are the registered routes, "METHOD /path", for the OpenAPI check.
	patterns []string

	hub hub
	// beforeWrite, set by tests only, runs before a stream writes a notification.
	beforeWrite func()
}

//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the OpenAPI 3 description of the routes (the bytes
// served at GET /v1/openapi.json).
func OpenAPI() []byte { return bytes.Clone(openapiJSON) }

// New returns a Handler serving eng, with authn verifying every request's
// bearer token (except GET /healthz and GET /v1/openapi.json). It returns
// [ErrNilEngine], [ErrNilAuthenticator], or an option's error wrapping
// [ErrInvalidOption].
func New(eng *stage.Engine, authn auth.Authenticator, opts ...Option) (*Handler, error) {
	if eng == nil {
		return nil, ErrNilEngine
	}
	if authn == nil {
		return nil, ErrNilAuthenticator
	}
	cfg := config{maxBody: DefaultMaxBodyBytes, heartbeat: DefaultHeartbeat, buffer: stage.DefaultSubscriberBuffer, logger: slog.Default(),
		writeTimeout: DefaultStreamWriteTimeout}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	h := &Handler{eng: eng, authn: authn, cfg: cfg, mux: http.NewServeMux()}
	h.hub.init()
	h.routes()
	return h, nil
}

// Routes returns the registered route patterns, "METHOD /path" with
// {wildcards}, in registration order.
func (h *Handler) Routes() []string { return append([]string(nil), h.patterns...) }

// who may call a route.
type caller int

const (
	anyone  caller = iota // no credential
	user                  // a user's credential (not the backend's)
	backend               // the backend's credential
	either                // any valid credential
)

func (h *Handler) handle(pattern string, who caller, fn func(w http.ResponseWriter, r *http.Request, id auth.Identity)) {
	h.patterns = append(h.patterns, pattern)
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		var id auth.Identity
		if who != anyone {
			var ok bool
			if id, ok = h.authenticate(w, r); !ok {
				return
			}
			switch {
			case who == user && (id.Backend || id.UserID == ""):
				writeProblem(w, r, newProblem(http.StatusForbidden, CodeForbidden, "this route takes a user's credential"))
				return
			case who == backend && !id.Backend:
				writeProblem(w, r, newProblem(http.StatusForbidden, CodeForbidden, "this route takes the backend's credential"))
				return
			}
		}
		if h.hub.isClosed() && who != anyone {
			writeProblem(w, r, ProblemOf(stage.ErrClosed))
			return
		}
		fn(w, r, id)
	})
}

func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (auth.Identity, bool) {
	const prefix = "bearer "
	v := r.Header.Get("Authorization")
	if len(v) <= len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		writeProblem(w, r, newProblem(http.StatusUnauthorized, CodeUnauthenticated, "missing bearer credential"))
		return auth.Identity{}, false
	}
	id, err := h.authn.Authenticate(r.Context(), strings.TrimSpace(v[len(prefix):]))
	if err == nil && !id.Backend && id.UserID == "" {
		err = fmt.Errorf("%w: identity names no user", auth.ErrUnauthenticated)
	}
	if err != nil {
		if errors.Is(err, auth.ErrUnauthenticated) {
			writeProblem(w, r, newProblem(http.StatusUnauthorized, CodeUnauthenticated, err.Error()))
		} else {
			writeProblem(w, r, ProblemOf(err))
		}
		return auth.Identity{}, false
	}
	return id, true
}

// ServeHTTP serves the API; an unknown route gets a 404 problem (405, with
// Allow, for a known path with another method).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if nf, pattern := h.mux.Handler(r); pattern == "" {
		cw := &captureWriter{header: http.Header{}}
		nf.ServeHTTP(cw, r)
		if cw.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", cw.header.Get("Allow"))
			writeProblem(w, r, newProblem(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path))
			return
		}
		if cw.status == http.StatusMovedPermanently || cw.status == http.StatusTemporaryRedirect || cw.status == http.StatusPermanentRedirect {
			h.mux.ServeHTTP(w, r) // path cleaning: let the mux redirect
			return
		}
		writeProblem(w, r, newProblem(http.StatusNotFound, CodeNotFound, "no route "+r.Method+" "+r.URL.Path))
		return
	}
	h.mux.ServeHTTP(w, r)
}

// captureWriter records what the mux's own not-found or 405 handler writes.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}
func (c *captureWriter) WriteHeader(s int) {
	if c.status == 0 {
		c.status = s
	}
}

// Request bodies.

// UsersBody is the body of grant, deny and kick: the target users, and
// for deny and kick an optional reason.
type UsersBody struct {
	Users  []string `json:"users"`
	Reason string   `json:"reason,omitempty"`
}

// BanBody is the optional body of a ban: until when (RFC 3339; absent:
// until lifted).
type BanBody struct {
	Until time.Time `json:"until,omitzero"`
}

// CloseRequestsBody is the optional body of close requests: whether to
// deny every pending request in the same event (absent or false: pending
// requests stay).
type CloseRequestsBody struct {
	DenyPending bool `json:"denyPending,omitempty"`
}

// ParticipantBody is the body of add participant.
type ParticipantBody struct {
	User        string                `json:"user"`
	Permissions aggregate.Permissions `json:"permissions"`
}

// StatusBody is the answer of GET .../stage/status.
type StatusBody struct {
	Meeting string           `json:"meeting"`
	User    string           `json:"user"`
	Status  aggregate.Status `json:"status"`
}

// RequestsBody is the answer of GET .../stage/requests.
type RequestsBody struct {
	Meeting string `json:"meeting"`
	// Requests is the queue, oldest first ([] when empty).
	Requests []projections.AccessRequest `json:"requests"`
}

const meetingPath = "/v1/meetings/{meeting}"

func (h *Handler) routes() {
	h.handle("GET /healthz", anyone, func(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
		if h.hub.isClosed() {
			writeProblem(w, r, ProblemOf(stage.ErrClosed))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	h.handle("GET /v1/openapi.json", anyone, func(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapiJSON)
	})

	// The user's and hosts' commands and reads.
	h.handle("GET "+meetingPath+"/stage", either, func(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
		ro, err := h.eng.Roster(r.Context(), r.PathValue("meeting"))
		answer(w, r, ro, err)
	})
	h.handle("GET "+meetingPath+"/stage/status", user, func(w http.ResponseWriter, r *http.Request, id auth.Identity) {
		m := r.PathValue("meeting")
		st, err := h.eng.Status(r.Context(), m, id.UserID)
		answer(w, r, StatusBody{Meeting: m, User: id.UserID, Status: st}, err)
	})
	h.handle("GET "+meetingPath+"/stage/requests", user, func(w http.ResponseWriter, r *http.Request, id auth.Identity) {
		m := r.PathValue("meeting")
		reqs, err := h.eng.GetAccessRequests(r.Context(), m, id.UserID)
		if reqs == nil {
			reqs = reqs[:0:0]
		}
		answer(w, r, RequestsBody{Meeting: m, Requests: reqs}, err)
	})
	h.command("POST "+meetingPath+"/stage/requests", user, nil, func(ctx context.Context, m string, id auth.Identity, _ *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.RequestAccess(ctx, m, id.UserID, o...)
	})
	h.command("DELETE "+meetingPath+"/stage/requests", user, nil, func(ctx context.Context, m string, id auth.Identity, _ *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.CancelRequestAccess(ctx, m, id.UserID, o...)
	})
	h.command("POST "+meetingPath+"/stage/grant", user, newUsers, func(ctx context.Context, m string, id auth.Identity, _ *http.Request, b any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.GrantAccess(ctx, m, id.UserID, b.(*UsersBody).Users, o...)
	})
	h.command("POST "+meetingPath+"/stage/deny", user, newUsers, func(ctx context.Context, m string, id auth.Identity, _ *http.Request, b any, o []stage.ExecOption) (stage.Result, error) {
		ub := b.(*UsersBody)
		return h.eng.DenyAccess(ctx, m, id.UserID, ub.Users, withReason(o, ub.Reason)...)
	})
	h.command("POST "+meetingPath+"/stage/join", user, nil, func(ctx context.Context, m string, id auth.Identity, _ *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.Join(ctx, m, id.UserID, o...)
	})
	h.command("POST "+meetingPath+"/stage/leave", user, nil, func(ctx context.Context, m string, id auth.Identity, _ *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.Leave(ctx, m, id.UserID, o...)
	})
	h.command("POST "+meetingPath+"/stage/kick", user, newUsers, func(ctx context.Context, m string, id auth.Identity, _ *http.Request, b any, o []stage.ExecOption) (stage.Result, error) {
		ub := b.(*UsersBody)
		return h.eng.Kick(ctx, m, id.UserID, ub.Users, withReason(o, ub.Reason)...)
	})

	// The policy commands (hosts).
	h.command("PUT "+meetingPath+"/stage/settings", user, func() any { return new(aggregate.Settings) }, func(ctx context.Context, m string, id auth.Identity, _ *http.Request, b any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.Configure(ctx, m, id.UserID, *b.(*aggregate.Settings), o...)
	})
	h.command("PUT "+meetingPath+"/stage/bans/{user}", user, optional(func() any { return new(BanBody) }), func(ctx context.Context, m string, id auth.Identity, r *http.Request, b any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.BanFromStage(ctx, m, id.UserID, r.PathValue("user"), b.(*BanBody).Until, o...)
	})
	h.command("DELETE "+meetingPath+"/stage/bans/{user}", user, nil, func(ctx context.Context, m string, id auth.Identity, r *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.LiftBan(ctx, m, id.UserID, r.PathValue("user"), o...)
	})

	// The stage controls (docs/stage-controls.md): hosts, except decline,
	// which is the invitee's own.
	h.command("POST "+meetingPath+"/stage/start", user, nil, func(ctx context.Context, m string, id auth.Identity, _ *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.StartStage(ctx, m, id.UserID, o...)
	})
	h.command("POST "+meetingPath+"/stage/end", user, nil, func(ctx context.Context, m string, id auth.Identity, _ *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.EndStage(ctx, m, id.UserID, o...)
	})
	h.command("POST "+meetingPath+"/stage/requests/close", user, optional(func() any { return new(CloseRequestsBody) }), func(ctx context.Context, m string, id auth.Identity, _ *http.Request, b any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.CloseRequests(ctx, m, id.UserID, b.(*CloseRequestsBody).DenyPending, o...)
	})
	h.command("POST "+meetingPath+"/stage/requests/open", user, nil, func(ctx context.Context, m string, id auth.Identity, _ *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.OpenRequests(ctx, m, id.UserID, o...)
	})
	h.command("PUT "+meetingPath+"/stage/cohosts/{user}", user, nil, func(ctx context.Context, m string, id auth.Identity, r *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.PromoteCoHost(ctx, m, id.UserID, r.PathValue("user"), o...)
	})
	h.command("DELETE "+meetingPath+"/stage/cohosts/{user}", user, nil, func(ctx context.Context, m string, id auth.Identity, r *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.DemoteCoHost(ctx, m, id.UserID, r.PathValue("user"), o...)
	})
	h.command("POST "+meetingPath+"/stage/decline", user, nil, func(ctx context.Context, m string, id auth.Identity, _ *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.DeclineInvitation(ctx, m, id.UserID, o...)
	})
	h.command("POST "+meetingPath+"/stage/bring/{user}", user, nil, func(ctx context.Context, m string, id auth.Identity, r *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.BringOnStage(ctx, m, id.UserID, r.PathValue("user"), o...)
	})

	// The backend's membership commands.
	h.command("POST "+meetingPath+"/participants", backend, func() any { return new(ParticipantBody) }, func(ctx context.Context, m string, _ auth.Identity, _ *http.Request, b any, o []stage.ExecOption) (stage.Result, error) {
		pb := b.(*ParticipantBody)
		return h.eng.AddParticipant(ctx, m, aggregate.Participant{UserID: pb.User, Permissions: pb.Permissions}, o...)
	})
	h.command("DELETE "+meetingPath+"/participants/{user}", backend, nil, func(ctx context.Context, m string, _ auth.Identity, r *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.RemoveParticipant(ctx, m, r.PathValue("user"), o...)
	})
	h.command("PUT "+meetingPath+"/participants/{user}/permissions", backend, func() any { return new(aggregate.Permissions) }, func(ctx context.Context, m string, _ auth.Identity, r *http.Request, b any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.UpdatePermissions(ctx, m, r.PathValue("user"), *b.(*aggregate.Permissions), o...)
	})
	h.command("POST "+meetingPath+"/participants/{user}/disconnect", backend, nil, func(ctx context.Context, m string, _ auth.Identity, r *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.Disconnect(ctx, m, r.PathValue("user"), o...)
	})
	h.command("POST "+meetingPath+"/participants/{user}/reconnect", backend, nil, func(ctx context.Context, m string, _ auth.Identity, r *http.Request, _ any, o []stage.ExecOption) (stage.Result, error) {
		return h.eng.Reconnect(ctx, m, r.PathValue("user"), o...)
	})

	// The user's live notifications.
	h.handle("GET "+meetingPath+"/events", user, h.serveEvents)
}

func newUsers() any { return new(UsersBody) }

// optionalBody marks a body constructor whose body may be empty.
type optionalBody func() any

func optional(f func() any) optionalBody { return optionalBody(f) }

func withReason(o []stage.ExecOption, reason string) []stage.ExecOption {
	if reason == "" {
		return o
	}
	return append(o, stage.WithReason(reason))
}

type commandFunc func(ctx context.Context, meeting string, id auth.Identity, r *http.Request, body any, opts []stage.ExecOption) (stage.Result, error)

// command registers a command route. body is nil for a command that takes
// none (an empty body or {}), a constructor for a required body, or an
// optionalBody.
func (h *Handler) command(pattern string, who caller, body any, fn commandFunc) {
	h.handle(pattern, who, func(w http.ResponseWriter, r *http.Request, id auth.Identity) {
		var b any
		var ok bool
		switch nb := body.(type) {
		case nil:
			ok = h.decode(w, r, &struct{}{}, true)
		case func() any:
			b = nb()
			ok = h.decode(w, r, b, false)
		case optionalBody:
			b = nb()
			ok = h.decode(w, r, b, true)
		}
		if !ok {
			return
		}
		var opts []stage.ExecOption
		if key := r.Header.Get("Idempotency-Key"); key != "" {
			opts = append(opts, stage.WithIdempotencyKey(key))
		}
		res, err := fn(r.Context(), r.PathValue("meeting"), id, r, b, opts)
		if err != nil {
			p := ProblemOf(err)
			p.Rejected = res.Rejected
			writeProblem(w, r, p)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// decode reads r's body as one JSON value into v, refusing unknown fields
// and trailing data; an empty body is accepted when emptyOK. It answers the
// problem itself and returns false on failure.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeProblem(w, r, newProblem(http.StatusRequestEntityTooLarge, CodeBodyTooLarge,
				fmt.Sprintf("request body over %d bytes", tooLarge.Limit)))
			return false
		}
		writeProblem(w, r, newProblem(http.StatusBadRequest, CodeBadRequest, "reading the body: "+err.Error()))
		return false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if emptyOK {
			return true
		}
		writeProblem(w, r, newProblem(http.StatusBadRequest, CodeBadRequest, "the route takes a JSON body"))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeProblem(w, r, newProblem(http.StatusBadRequest, CodeBadRequest, "bad JSON body: "+err.Error()))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeProblem(w, r, newProblem(http.StatusBadRequest, CodeBadRequest, "bad JSON body: data after the JSON value"))
		return false
	}
	return true
}

// answer writes v, or err's problem.
func answer(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		writeProblem(w, r, ProblemOf(err))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	var err error
	if m, ok := v.(json.Marshaler); ok {
		b, err = m.MarshalJSON() // stage.Result writes compact JSON itself: skip json.Marshal's second pass
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		writeProblem(w, nil, ProblemOf(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Shutdown ends every event stream (each gets a final "error" event with
// the Closed problem, so that its client resumes elsewhere with
// Last-Event-ID), closes the routers, and waits for the stream handlers to
// return or ctx to end (then it returns ctx's error). Later requests get
// 503 Closed. It does not close the engine.
func (h *Handler) Shutdown(ctx context.Context) error { return h.hub.shutdown(ctx) }

// Close is Shutdown without a deadline.
func (h *Handler) Close() error { return h.Shutdown(context.Background()) }

// Streams returns how many event streams are open.
func (h *Handler) Streams() int { return h.hub.streams() }
