// Package webhook delivers the stage's events to a backend's HTTP
// endpoints, signed and at least once, in per-meeting order: how a team
// tells its media server that someone left the stage without writing an
// outbox.
//
// A [Sender] reads the event stream of package natsstore through durable
// JetStream consumers. Each event goes to every [Endpoint] whose filter
// lists its type, as a POST of its [Payload] JSON signed with the
// endpoint's secret ([SignatureHeader]; receivers check it with
// [Verify]). The event is acknowledged only once every matching endpoint
// answered 2xx; until then it is retried with exponential backoff
// (NakWithDelay), for ever: nothing is dropped, and a receiver that was
// down gets everything after it comes back.
//
// Order. The meetings are split over lanes (an FNV-1a hash of the meeting
// id, [WithLanes], 4 by default); each lane is one durable consumer with
// MaxAckPending 1 that reads the whole stream and delivers the events of
// its meetings, one at a time, acknowledging the others at once. So a
// meeting's next event is never sent before its previous one succeeded,
// even with several Sender processes bound to the same consumers (they
// share the lanes; the server hands each lane's message to one of them).
// The cost: a lane delivers one event per receiver round trip plus a
// fetch and an ack (at best lanes / RTT events a second; measured figures
// in docs/service.md), every lane reads the whole stream, and a receiver
// failing for one meeting holds back the other meetings of its lane.
// docs/service.md describes the contract.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
)

// The delivery headers besides [SignatureHeader].
const (
	// HeaderID is the event's id: the same on every attempt.
	HeaderID = "Stage-Webhook-Id"
	// HeaderEvent is the event's type.
	HeaderEvent = "Stage-Webhook-Event"
	// HeaderMeeting is the event's meeting.
	HeaderMeeting = "Stage-Webhook-Meeting"
	// HeaderAttempt is the attempt's number, 1 for the first.
	HeaderAttempt = "Stage-Webhook-Attempt"
)

// Defaults of [New].
const (
	// DefaultDurable is the consumers' durable name ([WithDurable]).
	DefaultDurable = "stage-webhooks"
	// DefaultLanes is the number of lanes ([WithLanes]).
	DefaultLanes = 4
	// DefaultTimeout bounds one HTTP attempt ([WithTimeout]).
	DefaultTimeout = 10 * time.Second
	// DefaultBackoffMin and DefaultBackoffMax bound the retry delays
	// ([WithBackoff]).
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = time.Minute
	// MinSecretLen is the shortest secret an Endpoint may have, in bytes.
	MinSecretLen = 16
)

var (
	// ErrInvalidEndpoint is wrapped by [New]'s error for an endpoint
	// without a name, with a bad URL, a short secret or an unknown event
	// type, or a name used twice.
	ErrInvalidEndpoint = errors.New("webhook: invalid endpoint")
	// ErrInvalidOption is wrapped by [New]'s error for a bad argument or
	// option.
	ErrInvalidOption = errors.New("webhook: invalid option")
	// ErrLanesChanged: the durable consumers exist with another number of
	// lanes; changing it would reorder or skip deliveries. Use a new
	// durable name (it starts per [WithDeliverAll]).
	ErrLanesChanged = errors.New("webhook: lanes differ from the existing consumers'")
	// ErrClosed is returned by [Sender.Lag] after Close.
	ErrClosed = errors.New("webhook: sender closed")
)

// Endpoint is a receiver a backend registers.
type Endpoint struct {
	// Name identifies the endpoint in logs; unique among a Sender's.
	Name string
	// URL is where deliveries are POSTed (http or https).
	URL string
	// Secret signs the deliveries (at least [MinSecretLen] bytes).
	Secret []byte
	// Events lists the event types the endpoint receives ("Kicked",
	// "StageLeft", ...); empty: every type.
	Events []events.Type
}

func (e *Endpoint) wants(t events.Type) bool {
	return len(e.Events) == 0 || slices.Contains(e.Events, t)
}

// Source names the event stream: a natsstore Store's stream and subject
// prefix (natsstore.WithStream, natsstore.WithSubjectPrefix). The zero
// Source is natsstore's defaults.
type Source struct {
	// Stream is the stream's name (default natsstore.DefaultStream).
	Stream string
	// Prefix is the events' subject prefix (default
	// natsstore.DefaultSubjectPrefix).
	Prefix string
}

// Option configures [New].
type Option func(*config) error

type config struct {
	durable         string
	lanes           int
	timeout         time.Duration
	backoffMin, max time.Duration
	client          *http.Client
	logger          *slog.Logger
	all             bool
	now             func() time.Time
}

// WithDurable sets the durable name of the consumers (default
// "stage-webhooks"; lane i is "<name>-<i>"). Senders of one name share
// the deliveries; another name delivers everything again, independently.
func WithDurable(name string) Option {
	return func(c *config) error {
		if name == "" || !validName(name) {
			return fmt.Errorf("%w: durable name %q", ErrInvalidOption, name)
		}
		c.durable = name
		return nil
	}
}

func validName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// WithLanes sets how many lanes (consumers, each delivering one event at
// a time) split the meetings (default 4, at most 256). Fixed for a
// durable name once its consumers exist.
func WithLanes(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 256 {
			return fmt.Errorf("%w: lanes %d (1 to 256)", ErrInvalidOption, n)
		}
		c.lanes = n
		return nil
	}
}

// WithTimeout bounds one HTTP attempt (default 10s).
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout %v", ErrInvalidOption, d)
		}
		c.timeout = d
		return nil
	}
}

// WithBackoff sets the retry delays: min after the first failure,
// doubling up to max (defaults 1s and 1m), with up to 20% jitter.
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) error {
		if min <= 0 || max < min {
			return fmt.Errorf("%w: backoff %v to %v", ErrInvalidOption, min, max)
		}
		c.backoffMin, c.max = min, max
		return nil
	}
}

// WithHTTPClient sets the client that POSTs (default: a new http.Client).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return fmt.Errorf("%w: nil HTTP client", ErrInvalidOption)
		}
		c.client = hc
		return nil
	}
}

// WithLogger sets the logger of failed attempts (default: none).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		c.logger = l
		return nil
	}
}

// WithDeliverAll makes consumers created by this New start at the
// stream's first event (the whole history) instead of its end. It does not
// move existing consumers, which resume where they were.
func WithDeliverAll() Option {
	return func(c *config) error { c.all = true; return nil }
}

// Sender delivers the events. Close it to stop.
type Sender struct {
	cfg       config
	src       Source
	endpoints []Endpoint
	lanes     []jetstream.Consumer
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New creates (or binds to) the durable consumers on src's stream and
// starts delivering to endpoints. With a fresh durable name delivery starts
// at the stream's end (see [WithDeliverAll]); with an existing one, where
// the consumers left off.
func New(js jetstream.JetStream, src Source, endpoints []Endpoint, opts ...Option) (*Sender, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: nil JetStream", ErrInvalidOption)
	}
	if src.Stream == "" {
		src.Stream = natsstore.DefaultStream
	}
	if src.Prefix == "" {
		src.Prefix = natsstore.DefaultSubjectPrefix
	}
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("%w: no endpoints", ErrInvalidEndpoint)
	}
	eps := make([]Endpoint, len(endpoints))
	known := events.Types()
	for i, e := range endpoints {
		if e.Name == "" || slices.ContainsFunc(eps[:i], func(o Endpoint) bool { return o.Name == e.Name }) {
			return nil, fmt.Errorf("%w: name %q empty or used twice", ErrInvalidEndpoint, e.Name)
		}
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: %s: URL %q is not an absolute http(s) URL", ErrInvalidEndpoint, e.Name, e.URL)
		}
		if len(e.Secret) < MinSecretLen {
			return nil, fmt.Errorf("%w: %s: secret shorter than %d bytes", ErrInvalidEndpoint, e.Name, MinSecretLen)
		}
		for _, t := range e.Events {
			if !slices.Contains(known, t) {
				return nil, fmt.Errorf("%w: %s: unknown event type %q", ErrInvalidEndpoint, e.Name, t)
			}
		}
		e.Secret = slices.Clone(e.Secret)
		e.Events = slices.Clone(e.Events)
		eps[i] = e
	}
	cfg := config{durable: DefaultDurable, lanes: DefaultLanes, timeout: DefaultTimeout, backoffMin: DefaultBackoffMin,
		max: DefaultBackoffMax, client: &http.Client{}, logger: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	s := &Sender{cfg: cfg, src: src, endpoints: eps}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	policy := jetstream.DeliverNewPolicy
	if cfg.all {
		policy = jetstream.DeliverAllPolicy
	}
	lanes := strconv.Itoa(cfg.lanes)
	for i := range cfg.lanes {
		name := cfg.durable + "-" + strconv.Itoa(i)
		if c, err := js.Consumer(ctx, src.Stream, name); err == nil {
			if got := c.CachedInfo().Config.Metadata["stage-webhook-lanes"]; got != lanes {
				s.cancel()
				return nil, fmt.Errorf("%w: consumer %s has %q lanes, want %s", ErrLanesChanged, name, got, lanes)
			}
			policy = c.CachedInfo().Config.DeliverPolicy // an update may not change it
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.cancel()
			return nil, fmt.Errorf("webhook: consumer %s: %w", name, err)
		}
		c, err := js.CreateOrUpdateConsumer(ctx, src.Stream, jetstream.ConsumerConfig{
			Durable:       name,
			Description:   fmt.Sprintf("productdb/stage webhooks, lane %d of %d", i, cfg.lanes),
			FilterSubject: src.Prefix + ".>",
			DeliverPolicy: policy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.timeout + 5*time.Second,
			MaxDeliver:    -1,
			MaxAckPending: 1,
			Metadata:      map[string]string{"stage-webhook-lanes": lanes},
		})
		if err != nil {
			s.cancel()
			return nil, fmt.Errorf("webhook: consumer %s: %w", name, err)
		}
		s.lanes = append(s.lanes, c)
	}
	for i, c := range s.lanes {
		s.wg.Add(1)
		go s.run(i, c)
	}
	return s, nil
}

// Close stops delivering and waits for the lanes (up to a poll, half a
// second, for a lane waiting for events). An event in flight is not
// acknowledged: it is delivered again (by this durable's next Sender).
func (s *Sender) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
	return nil
}

// Lag returns how many events the slowest lane has yet to deliver or
// acknowledge (the webhook lag).
func (s *Sender) Lag(ctx context.Context) (uint64, error) {
	if s.ctx.Err() != nil {
		return 0, ErrClosed
	}
	var most uint64
	for _, c := range s.lanes {
		info, err := c.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("webhook: lag: %w", err)
		}
		most = max(most, info.NumPending+uint64(info.NumAckPending))
	}
	return most, nil
}

// LaneOf returns the lane (0 to lanes-1) of a meeting: FNV-1a (32 bits) of
// the meeting id, modulo lanes. lanes below 1 count as one lane.
func LaneOf(meetingID string, lanes int) int {
	if lanes < 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(meetingID))
	return int(h.Sum32() % uint32(lanes))
}

// poll is how long a lane's fetch waits for an event.
const poll = 500 * time.Millisecond

// run delivers lane i's messages until Close. It fetches one message at a
// time (the consumer hands out one anyway: MaxAckPending 1).
func (s *Sender) run(lane int, c jetstream.Consumer) {
	defer s.wg.Done()
	var doneSeq uint64
	done := map[string]bool{} // endpoints that answered 2xx for doneSeq
	for s.ctx.Err() == nil {
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(poll))
		if err != nil {
			s.cfg.logger.Warn("webhook: fetch", "lane", lane, "err", err)
			s.sleep(poll)
			continue
		}
		for msg := range batch.Messages() {
			doneSeq = s.handle(lane, msg, doneSeq, done)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && s.ctx.Err() == nil {
			s.cfg.logger.Warn("webhook: fetch", "lane", lane, "err", err)
			s.sleep(poll)
		}
	}
}

func (s *Sender) sleep(d time.Duration) {
	select {
	case <-s.ctx.Done():
	case <-time.After(d):
	}
}

// handle delivers or skips one message and returns the stream sequence
// whose endpoints done records.
func (s *Sender) handle(lane int, msg jetstream.Msg, doneSeq uint64, done map[string]bool) uint64 {
	meta, err := msg.Metadata()
	if err != nil {
		s.cfg.logger.Error("webhook: message metadata", "lane", lane, "err", err)
		_ = msg.NakWithDelay(s.cfg.max)
		return doneSeq
	}
	meeting, ok := natsstore.MeetingOfSubject(s.src.Prefix, msg.Subject())
	if !ok || LaneOf(meeting, s.cfg.lanes) != lane {
		// Not an event subject, or another lane's meeting.
		if err := ack(msg); err != nil {
			s.cfg.logger.Warn("webhook: ack", "lane", lane, "err", err)
		}
		return doneSeq
	}
	if meta.Sequence.Stream != doneSeq {
		doneSeq = meta.Sequence.Stream
		clear(done)
	}
	if s.deliver(lane, msg, meta, meeting, done) {
		if err := ack(msg); err != nil {
			s.cfg.logger.Warn("webhook: ack", "lane", lane, "seq", doneSeq, "err", err)
		}
		return doneSeq
	}
	if s.ctx.Err() != nil {
		_ = msg.Nak()
		return doneSeq
	}
	_ = msg.NakWithDelay(s.backoff(meta.NumDelivered))
	return doneSeq
}

// ack acknowledges msg and waits for the server's answer, even while
// the Sender closes (a lost ack would hold the lane for the AckWait).
func ack(msg jetstream.Msg) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return msg.DoubleAck(ctx)
}

// backoff is the delay after the n-th failed delivery.
func (s *Sender) backoff(n uint64) time.Duration {
	d := s.cfg.backoffMin
	for i := uint64(1); i < n && d < s.cfg.max; i++ {
		d *= 2
	}
	d = min(d, s.cfg.max)
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

// deliver sends msg's event to every matching endpoint not yet in done
// and reports whether all have answered 2xx.
func (s *Sender) deliver(lane int, msg jetstream.Msg, meta *jetstream.MsgMetadata, meeting string, done map[string]bool) bool {
	e, err := events.Unmarshal(msg.Data())
	if err == nil && e.MeetingID != meeting {
		err = fmt.Errorf("event of meeting %q on the subject of %q", e.MeetingID, meeting)
	}
	if err != nil {
		// A damaged log: hold the lane (nothing is skipped) and say so.
		s.cfg.logger.Error("webhook: not an event", "lane", lane, "seq", meta.Sequence.Stream, "err", err)
		return false
	}
	e.Seq = meta.Sequence.Stream
	var body []byte
	all := true
	for i := range s.endpoints {
		ep := &s.endpoints[i]
		if !ep.wants(e.Type) || done[ep.Name] {
			continue
		}
		if body == nil {
			if body, err = payloadOf(&e); err != nil {
				s.cfg.logger.Error("webhook: payload", "seq", e.Seq, "err", err)
				return false
			}
		}
		_ = msg.InProgress()
		if err := s.post(ep, &e, body, meta.NumDelivered); err != nil {
			all = false
			s.cfg.logger.Warn("webhook: delivery failed", "endpoint", ep.Name, "meeting", meeting, "version", e.Version, "attempt", meta.NumDelivered, "err", err)
			continue
		}
		done[ep.Name] = true
	}
	return all
}

// post makes one attempt.
func (s *Sender) post(ep *Endpoint, e *events.Envelope, body []byte, attempt uint64) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "productdb-stage-webhook/1")
	req.Header.Set(HeaderID, e.ID.String())
	req.Header.Set(HeaderEvent, string(e.Type))
	req.Header.Set(HeaderMeeting, e.MeetingID)
	req.Header.Set(HeaderAttempt, strconv.FormatUint(attempt, 10))
	req.Header.Set(SignatureHeader, Sign(ep.Secret, s.cfg.now(), body))
	resp, err := s.cfg.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}
