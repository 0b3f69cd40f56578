// Package natsapi serves the stage's commands as a NATS micro service
// (github.com/nats-io/nats.go/micro): one request/reply endpoint per
// command under a subject prefix ("stage.api.<endpoint>" by default), in a
// queue group, so that several processes on a NATS cluster share the load
// and `nats micro ls/info/stats` discovers them. Callers in any language
// with a NATS client use it.
//
// A request carries its credential in the "Authorization: Bearer <token>"
// header (the actor of every command comes only from it, through an
// [auth.Authenticator]), an optional "Idempotency-Key" header (it becomes
// [stage.WithIdempotencyKey]) and a JSON body ([Request]: the meeting and
// the command's arguments). A command answers its [stage.Result] JSON; a
// read its own JSON. A failure is a micro error: the header
// Nats-Service-Error-Code holds the HTTP-like status (stage.HTTPStatus,
// 401 for a bad credential, 400 for a bad body, 403 for an endpoint the
// credential may not call), Nats-Service-Error the stable code
// (stage.ErrorCode, or one of the Code constants of this package), and
// the body the problem as [stage.ErrorBody] JSON. docs/service.md lists
// every endpoint.
package natsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/projections"
	"github.com/productdb/stage/service/auth"
)

// Defaults of [New].
const (
	// DefaultName is the micro service name ("nats micro info stage").
	DefaultName = "stage"
	// DefaultVersion is the service version reported to discovery.
	DefaultVersion = "1.0.0"
	// DefaultPrefix is the subject prefix: endpoint e is on
	// "stage.api.e".
	DefaultPrefix = "stage.api"
	// DefaultTimeout bounds the work of one request.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxBody is the largest request body accepted, in bytes.
	DefaultMaxBody = 64 << 10
	// DefaultConcurrency is how many requests one service runs at once.
	DefaultConcurrency = 64
)

// The request headers.
const (
	// HeaderAuthorization carries the credential: "Bearer <token>".
	HeaderAuthorization = "Authorization"
	// HeaderIdempotencyKey carries the command's idempotency key.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// The codes of the failures this package finds before the Engine runs;
// the Engine's own are stage.ErrorCode's.
const (
	CodeUnauthenticated = "Unauthenticated" // auth.ErrUnauthenticated, status 401
	CodeBadRequest      = "BadRequest"      // ErrBadRequest, status 400
	CodeForbidden       = "Forbidden"       // ErrForbidden, status 403
	CodeBodyTooLarge    = "BodyTooLarge"    // ErrBodyTooLarge, status 413 (httpapi's code)
)

var (
	// ErrBadRequest: the body is not a valid [Request] for the endpoint
	// (not JSON, unknown fields, a missing or extra argument).
	ErrBadRequest = errors.New("natsapi: bad request")
	// ErrForbidden: the credential may not call the endpoint (a user
	// calling a backend endpoint, the backend calling a user's).
	ErrForbidden = errors.New("natsapi: forbidden")
	// ErrBodyTooLarge: the body is larger than the service accepts.
	ErrBodyTooLarge = errors.New("natsapi: request too large")
	// ErrInvalidOption is wrapped by [New]'s error for a bad argument or
	// option.
	ErrInvalidOption = errors.New("natsapi: invalid option")
)

// Request is the JSON body of every endpoint. Meeting is always required;
// the other fields are the arguments of the endpoints that take them and
// must be absent elsewhere (docs/service.md says which).
type Request struct {
	// Meeting is the meeting id.
	Meeting string `json:"meeting"`
	// Users are the targets of grantAccess, denyAccess and kick.
	Users []string `json:"users,omitempty"`
	// User is the target of the backend's membership commands, of
	// banFromStage, liftBan, promoteCoHost, demoteCoHost and bringOnStage,
	// and (for the backend) of status.
	User string `json:"user,omitempty"`
	// Reason is the reason of denyAccess and kick.
	Reason string `json:"reason,omitempty"`
	// Permissions are addParticipant's and updatePermissions'.
	Permissions *aggregate.Permissions `json:"permissions,omitempty"`
	// Settings are configure's (the whole new settings).
	Settings *aggregate.Settings `json:"settings,omitempty"`
	// Until ends banFromStage's ban (absent: until lifted).
	Until time.Time `json:"until,omitzero"`
	// DenyPending makes closeRequests deny every pending request in the
	// same event (absent or false: pending requests stay).
	DenyPending bool `json:"denyPending,omitempty"`
	// CorrelationID is recorded in the command's events.
	CorrelationID string `json:"correlationId,omitempty"`
}

// Status is the answer of the status endpoint.
type Status struct {
	// User is whose status it is.
	User string `json:"user"`
	// Status is their stage status ("OffStage", "OnStage", ...).
	Status aggregate.Status `json:"status"`
}

// Requests is the answer of the getAccessRequests endpoint.
type Requests struct {
	// Requests is the queue, oldest first; [] when empty.
	Requests []projections.AccessRequest `json:"requests"`
}

// Option configures [New].
type Option func(*config) error

type config struct {
	name, version, prefix, queue string
	timeout                      time.Duration
	maxBody                      int
	concurrency                  int
	logger                       *slog.Logger
}

var (
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9\-_]+$`)
	versionRe = regexp.MustCompile(`^\d+\.\d+\.\d+`)
	subjectRe = regexp.MustCompile(`^[^ >*\t\r\n.]+(\.[^ >*\t\r\n.]+)*$`)
)

// WithName sets the service name and semantic version reported to
// discovery (default "stage", "1.0.0").
func WithName(name, version string) Option {
	return func(c *config) error {
		if !nameRe.MatchString(name) {
			return fmt.Errorf("%w: service name %q (letters, digits, - and _)", ErrInvalidOption, name)
		}
		if !versionRe.MatchString(version) {
			return fmt.Errorf("%w: version %q is not semantic", ErrInvalidOption, version)
		}
		c.name, c.version = name, version
		return nil
	}
}

// WithPrefix sets the subject prefix of the endpoints (default
// "stage.api"): tokens without wildcards or spaces.
func WithPrefix(prefix string) Option {
	return func(c *config) error {
		if !subjectRe.MatchString(prefix) {
			return fmt.Errorf("%w: subject prefix %q", ErrInvalidOption, prefix)
		}
		c.prefix = prefix
		return nil
	}
}

// WithQueueGroup sets the queue group the endpoints subscribe in (default
// micro's "q"): every service of one name and group shares the requests.
func WithQueueGroup(q string) Option {
	return func(c *config) error {
		if !subjectRe.MatchString(q) {
			return fmt.Errorf("%w: queue group %q", ErrInvalidOption, q)
		}
		c.queue = q
		return nil
	}
}

// WithTimeout bounds the work of one request (default [DefaultTimeout]).
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout %v", ErrInvalidOption, d)
		}
		c.timeout = d
		return nil
	}
}

// WithMaxBody sets the largest body accepted, in bytes (default
// [DefaultMaxBody]).
func WithMaxBody(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: max body %d", ErrInvalidOption, n)
		}
		c.maxBody = n
		return nil
	}
}

// WithConcurrency sets how many requests the service runs at once
// (default [DefaultConcurrency]); more wait in the subscription.
func WithConcurrency(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: concurrency %d", ErrInvalidOption, n)
		}
		c.concurrency = n
		return nil
	}
}

// WithLogger sets the logger of failures (default: none).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		c.logger = l
		return nil
	}
}

// who may call an endpoint.
type caller int

const (
	userOnly    caller = iota // a user (Identity.UserID, not Backend)
	backendOnly               // the backend (Identity.Backend)
	anyone                    // either
)

// endpoint is one command or read.
type endpoint struct {
	name string
	who  caller
	// args lists the Request fields the endpoint takes besides meeting.
	args string
	desc string
	run  func(ctx context.Context, s *server, id auth.Identity, r *Request, opts []stage.ExecOption) (any, error)
}

// Endpoints returns the names of the service's endpoints, in the order of
// docs/service.md.
func Endpoints() []string {
	out := make([]string, len(endpoints))
	for i, e := range endpoints {
		out[i] = e.name
	}
	return out
}

var endpoints = []endpoint{
	{"getAccessRequests", userOnly, "", "the request queue (hosts only)", func(ctx context.Context, s *server, id auth.Identity, r *Request, _ []stage.ExecOption) (any, error) {
		reqs, err := s.eng.GetAccessRequests(ctx, r.Meeting, id.UserID)
		if reqs == nil {
			reqs = []projections.AccessRequest{}
		}
		return Requests{Requests: reqs}, err
	}},
	{"requestAccess", userOnly, "", "ask to come on stage", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.RequestAccess(ctx, r.Meeting, id.UserID, o...)
	}},
	{"cancelRequestAccess", userOnly, "", "withdraw one's request", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.CancelRequestAccess(ctx, r.Meeting, id.UserID, o...)
	}},
	{"grantAccess", userOnly, "users", "accept requests or invite (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.GrantAccess(ctx, r.Meeting, id.UserID, r.Users, o...)
	}},
	{"denyAccess", userOnly, "users reason", "deny requests (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.DenyAccess(ctx, r.Meeting, id.UserID, r.Users, append(o, stage.WithReason(r.Reason))...)
	}},
	{"join", userOnly, "", "go on stage", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.Join(ctx, r.Meeting, id.UserID, o...)
	}},
	{"leave", userOnly, "", "leave the stage or decline an invitation", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.Leave(ctx, r.Meeting, id.UserID, o...)
	}},
	{"kick", userOnly, "users reason", "send users off stage (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.Kick(ctx, r.Meeting, id.UserID, r.Users, append(o, stage.WithReason(r.Reason))...)
	}},
	{"configure", userOnly, "settings", "set the stage policies (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.Configure(ctx, r.Meeting, id.UserID, *r.Settings, o...)
	}},
	{"banFromStage", userOnly, "user until", "ban a user from the stage (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.BanFromStage(ctx, r.Meeting, id.UserID, r.User, r.Until, o...)
	}},
	{"liftBan", userOnly, "user", "end a user's stage ban (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.LiftBan(ctx, r.Meeting, id.UserID, r.User, o...)
	}},
	{"startStage", userOnly, "", "take the stage live, from backstage or after it ended (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.StartStage(ctx, r.Meeting, id.UserID, o...)
	}},
	{"endStage", userOnly, "", "end the stage for everyone (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.EndStage(ctx, r.Meeting, id.UserID, o...)
	}},
	{"closeRequests", userOnly, "denyPending?", "close stage requests for the meeting, optionally denying the pending ones (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.CloseRequests(ctx, r.Meeting, id.UserID, r.DenyPending, o...)
	}},
	{"openRequests", userOnly, "", "open stage requests again (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.OpenRequests(ctx, r.Meeting, id.UserID, o...)
	}},
	{"promoteCoHost", userOnly, "user", "make a participant a co-host (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.PromoteCoHost(ctx, r.Meeting, id.UserID, r.User, o...)
	}},
	{"demoteCoHost", userOnly, "user", "take the co-host role from a participant (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.DemoteCoHost(ctx, r.Meeting, id.UserID, r.User, o...)
	}},
	{"declineInvitation", userOnly, "", "decline one's invitation or approved request", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.DeclineInvitation(ctx, r.Meeting, id.UserID, o...)
	}},
	{"bringOnStage", userOnly, "user", "move a user straight on stage, if the settings allow it (hosts)", func(ctx context.Context, s *server, id auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.BringOnStage(ctx, r.Meeting, id.UserID, r.User, o...)
	}},
	{"roster", anyone, "", "the stage roster", func(ctx context.Context, s *server, _ auth.Identity, r *Request, _ []stage.ExecOption) (any, error) {
		return s.eng.Roster(ctx, r.Meeting)
	}},
	{"status", anyone, "user?", "a user's stage status (a user: their own; the backend: user's)", func(ctx context.Context, s *server, id auth.Identity, r *Request, _ []stage.ExecOption) (any, error) {
		u := id.UserID
		if id.Backend {
			u = r.User
		}
		st, err := s.eng.Status(ctx, r.Meeting, u)
		return Status{User: u, Status: st}, err
	}},
	{"addParticipant", backendOnly, "user permissions", "add a user to the meeting", func(ctx context.Context, s *server, _ auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.AddParticipant(ctx, r.Meeting, aggregate.Participant{UserID: r.User, Permissions: *r.Permissions}, o...)
	}},
	{"removeParticipant", backendOnly, "user", "remove a user from the meeting", func(ctx context.Context, s *server, _ auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.RemoveParticipant(ctx, r.Meeting, r.User, o...)
	}},
	{"updatePermissions", backendOnly, "user permissions", "change a participant's permissions", func(ctx context.Context, s *server, _ auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.UpdatePermissions(ctx, r.Meeting, r.User, *r.Permissions, o...)
	}},
	{"disconnect", backendOnly, "user", "a participant's connection dropped", func(ctx context.Context, s *server, _ auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.Disconnect(ctx, r.Meeting, r.User, o...)
	}},
	{"reconnect", backendOnly, "user", "a disconnected participant is back", func(ctx context.Context, s *server, _ auth.Identity, r *Request, o []stage.ExecOption) (any, error) {
		return s.eng.Reconnect(ctx, r.Meeting, r.User, o...)
	}},
}

// server is the state the handlers share.
type server struct {
	micro.Service
	eng   *stage.Engine
	authn auth.Authenticator
	cfg   config

	sem    chan struct{}
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc

	nc    *nats.Conn
	stats map[string]*endpointStats
}

// New starts the stage service on nc: one endpoint per command and read
// of [Endpoints], on "<prefix>.<endpoint>", in the queue group. It
// returns the running micro service; Stop ends it and waits for the
// requests in flight. The Engine and connection stay the caller's.
func New(nc *nats.Conn, eng *stage.Engine, authn auth.Authenticator, opts ...Option) (micro.Service, error) {
	if nc == nil || eng == nil || authn == nil {
		return nil, fmt.Errorf("%w: nil connection, engine or authenticator", ErrInvalidOption)
	}
	cfg := config{name: DefaultName, version: DefaultVersion, prefix: DefaultPrefix, timeout: DefaultTimeout,
		maxBody: DefaultMaxBody, concurrency: DefaultConcurrency, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	s := &server{eng: eng, authn: authn, cfg: cfg, sem: make(chan struct{}, cfg.concurrency), nc: nc, stats: map[string]*endpointStats{}}
	for _, e := range endpoints {
		s.stats[e.name] = &endpointStats{}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	svc, err := micro.AddService(nc, micro.Config{
		Name:        cfg.name,
		Version:     cfg.version,
		Description: "productdb/stage: the stage's commands and reads (docs/service.md)",
		QueueGroup:  cfg.queue,
		StatsHandler: func(e *micro.Endpoint) any {
			if st, ok := s.stats[e.Name]; ok {
				return st.snapshot()
			}
			return nil
		},
		Metadata: map[string]string{"prefix": cfg.prefix},
	})
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("natsapi: add service: %w", err)
	}
	s.Service = svc
	g := svc.AddGroup(cfg.prefix)
	for i := range endpoints {
		e := &endpoints[i]
		meta := map[string]string{"caller": [...]string{"user", "backend", "user or backend"}[e.who], "description": e.desc}
		if e.args != "" {
			meta["args"] = e.args
		}
		if err := g.AddEndpoint(e.name, micro.HandlerFunc(func(r micro.Request) { s.dispatch(e, r) }), micro.WithEndpointMetadata(meta)); err != nil {
			_ = svc.Stop()
			s.cancel()
			return nil, fmt.Errorf("natsapi: add endpoint %s: %w", e.name, err)
		}
	}
	// The endpoints serve once the server has the subscriptions: a
	// request sent right after New must find them.
	if err := nc.FlushTimeout(cfg.timeout); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("natsapi: flush subscriptions: %w", err)
	}
	return s, nil
}

// Stop stops the service: no new request is taken, and the ones in flight
// finish (their context is not cancelled) before Stop returns.
func (s *server) Stop() error {
	err := s.Service.Stop()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
	s.cancel()
	return err
}

// dispatch runs a request on its own goroutine, at most concurrency at
// once (the subscription waits beyond that).
func (s *server) dispatch(e *endpoint, r micro.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.fail(r, e, fmt.Errorf("%w: service stopped", stage.ErrClosed))
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	s.sem <- struct{}{}
	go func() {
		defer func() { <-s.sem; s.wg.Done() }()
		s.handle(e, r)
	}()
}

func (s *server) handle(e *endpoint, r micro.Request) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.timeout)
	defer cancel()
	out, err := s.serve(ctx, e, r)
	if err != nil {
		s.fail(r, e, err)
		return
	}
	data, err := json.Marshal(out)
	if err != nil {
		s.fail(r, e, fmt.Errorf("natsapi: encode the answer: %w", err))
		return
	}
	s.respond(r, e, &nats.Msg{Data: data})
}

func (s *server) serve(ctx context.Context, e *endpoint, r micro.Request) (any, error) {
	id, err := s.identify(ctx, r.Headers())
	if err != nil {
		return nil, err
	}
	switch {
	case e.who == userOnly && (id.Backend || id.UserID == ""):
		return nil, fmt.Errorf("%w: %s is a user's command; the backend's credential may not call it", ErrForbidden, e.name)
	case e.who == backendOnly && !id.Backend:
		return nil, fmt.Errorf("%w: %s needs the backend's credential", ErrForbidden, e.name)
	case e.who == anyone && !id.Backend && id.UserID == "":
		return nil, fmt.Errorf("%w: the credential names no user", ErrForbidden)
	}
	req, err := s.decode(e, r.Data())
	if err != nil {
		return nil, err
	}
	if e.name == "status" && !id.Backend && req.User != "" && req.User != id.UserID {
		return nil, fmt.Errorf("%w: a user may read only their own status", ErrForbidden)
	}
	var opts []stage.ExecOption
	if k := header(r.Headers(), HeaderIdempotencyKey); k != "" {
		opts = append(opts, stage.WithIdempotencyKey(k))
	}
	if req.CorrelationID != "" {
		opts = append(opts, stage.WithCorrelationID(req.CorrelationID))
	}
	return e.run(ctx, s, id, req, opts)
}

// header returns the first value of key in h, whatever its case.
func header(h micro.Headers, key string) string {
	if v := h.Get(key); v != "" {
		return v
	}
	for k, vs := range h {
		if strings.EqualFold(k, key) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// identify authenticates the request's bearer token.
func (s *server) identify(ctx context.Context, h micro.Headers) (auth.Identity, error) {
	v := strings.TrimSpace(header(h, HeaderAuthorization))
	if v == "" {
		return auth.Identity{}, fmt.Errorf("%w: no %s header", auth.ErrUnauthenticated, HeaderAuthorization)
	}
	scheme, tok, ok := strings.Cut(v, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return auth.Identity{}, fmt.Errorf("%w: %s is not \"Bearer <token>\"", auth.ErrUnauthenticated, HeaderAuthorization)
	}
	id, err := s.authn.Authenticate(ctx, tok)
	if err != nil {
		if !errors.Is(err, auth.ErrUnauthenticated) {
			err = fmt.Errorf("%w: %w", auth.ErrUnauthenticated, err)
		}
		return auth.Identity{}, err
	}
	return id, nil
}

// decode reads and checks the body for e.
func (s *server) decode(e *endpoint, data []byte) (*Request, error) {
	if len(data) > s.cfg.maxBody {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBodyTooLarge, len(data), s.cfg.maxBody)
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrBadRequest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: body: data after the JSON object", ErrBadRequest)
	}
	if req.Meeting == "" {
		return nil, fmt.Errorf("%w: \"meeting\" is required", ErrBadRequest)
	}
	has := func(a string) bool {
		for _, f := range strings.Fields(e.args) {
			if strings.TrimSuffix(f, "?") == a {
				return true
			}
		}
		return false
	}
	present := map[string]bool{"users": req.Users != nil, "user": req.User != "", "reason": req.Reason != "",
		"permissions": req.Permissions != nil, "settings": req.Settings != nil, "until": !req.Until.IsZero(),
		"denyPending": req.DenyPending}
	for _, a := range []string{"users", "user", "reason", "permissions", "settings", "until", "denyPending"} {
		if present[a] && !has(a) {
			return nil, fmt.Errorf("%w: %s takes no %q", ErrBadRequest, e.name, a)
		}
	}
	for _, f := range strings.Fields(e.args) {
		switch f {
		case "users", "user", "permissions", "settings":
			if !present[f] {
				return nil, fmt.Errorf("%w: %s needs %q", ErrBadRequest, e.name, f)
			}
		}
	}
	return &req, nil
}

// Problem returns the status, stable code and problem body the service
// answers err with: the Engine's errors as stage.HTTPStatus,
// stage.ErrorCode and stage.ErrorBodyOf; this package's and auth's with
// their own codes.
func Problem(err error) (status int, code string, body stage.ErrorBody) {
	for _, k := range []struct {
		err    error
		code   string
		status int
	}{
		{auth.ErrUnauthenticated, CodeUnauthenticated, http.StatusUnauthorized},
		{ErrBadRequest, CodeBadRequest, http.StatusBadRequest},
		{ErrForbidden, CodeForbidden, http.StatusForbidden},
		{ErrBodyTooLarge, CodeBodyTooLarge, http.StatusRequestEntityTooLarge},
	} {
		if errors.Is(err, k.err) {
			return k.status, k.code, stage.ErrorBody{Code: k.code, Status: k.status, Message: err.Error(), Stored: stage.StoredNo}
		}
	}
	b := stage.ErrorBodyOf(err)
	return b.Status, b.Code, b
}

func (s *server) fail(r micro.Request, e *endpoint, err error) {
	status, code, body := Problem(err)
	if status >= 500 {
		s.cfg.logger.Warn("natsapi: request failed", "endpoint", e.name, "code", code, "err", err)
	}
	data, jerr := json.Marshal(body)
	if jerr != nil {
		data = nil
	}
	s.stats[e.name].failed(code)
	s.respond(r, e, &nats.Msg{Data: data, Header: nats.Header{
		micro.ErrorHeader:     []string{code},
		micro.ErrorCodeHeader: []string{strconv.Itoa(status)},
	}})
}

// respond publishes the answer on the request's reply subject through the
// connection: micro.Request's own Respond and Error may not be called
// once the handler has returned (micro reads the request's outcome then),
// and requests run on goroutines of their own. So micro's num_errors stays
// 0; the endpoint's stats data counts the failures instead.
func (s *server) respond(r micro.Request, e *endpoint, m *nats.Msg) {
	if r.Reply() == "" {
		return
	}
	m.Subject = r.Reply()
	if err := s.nc.PublishMsg(m); err != nil {
		s.cfg.logger.Warn("natsapi: respond", "endpoint", e.name, "err", err)
	}
}

// endpointStats are an endpoint's failures, in its micro stats "data":
// {"failures":3,"last_failure":"PermissionDenied"}.
type endpointStats struct {
	mu       sync.Mutex
	failures int
	last     string
}

// EndpointStats is the "data" of an endpoint's micro stats.
type EndpointStats struct {
	// Failures counts the requests answered with an error.
	Failures int `json:"failures"`
	// LastFailure is the code of the last one.
	LastFailure string `json:"last_failure,omitempty"`
}

func (st *endpointStats) failed(code string) {
	st.mu.Lock()
	st.failures++
	st.last = code
	st.mu.Unlock()
}

func (st *endpointStats) snapshot() EndpointStats {
	st.mu.Lock()
	defer st.mu.Unlock()
	return EndpointStats{Failures: st.failures, LastFailure: st.last}
}
