package natsstore

// This file says what a failed append left in the stream (not stored, or
// unknown; unavailable when no server or leader answers), and keeps the
// store from waiting out a timeout while the stream has no leader.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/eventstore"
)

// Timeouts of [New].
const (
	// DefaultRequestTimeout bounds a request to the server whose context
	// has no deadline (see [WithRequestTimeout]).
	DefaultRequestTimeout = 10 * time.Second
	// DefaultLeaderTimeout is how long the store waits for an answer before
	// it asks whether the stream has a leader at all (see
	// [WithLeaderTimeout]).
	DefaultLeaderTimeout = 2 * time.Second
)

// WithRequestTimeout sets the bound of a request to the server (an
// append, a read, a snapshot, a key record, a high-water mark write) made
// with a context that has no deadline, and of the writes the store makes
// on its own (group commits, mark flushes): default
// [DefaultRequestTimeout], 10 s. A context with a deadline is bounded by
// that deadline alone. d is 100ms to 10 minutes.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 100*time.Millisecond || d > 10*time.Minute {
			return badOption("request timeout %v, want 100ms to 10m", d)
		}
		c.requestTimeout = d
		return nil
	}
}

// WithLeaderTimeout sets how soon a store that waits for an append's
// acknowledgement, or for a read of a meeting's head, asks whether the
// stream has a leader: after d without an answer it asks the stream for
// its info, and if that gets no answer within d either (or an answer
// without a leader), it stops waiting and returns an error wrapping
// eventstore.ErrUnavailable (and ErrOutcomeUnknown for an append that was
// sent); so does a connection that was lost and made again while the
// request waited (its answer is lost; a read is sent again). From then on, until a leader answers again, every append and
// head read first asks (within d) and fails at once with
// eventstore.ErrUnavailable and ErrNotStored while there is none. So a
// stream whose leader was lost fails within about 2*d, not after the
// request timeout. d also bounds how long an append or head read waits
// for a connection that is not connected (reconnecting) to connect again
// before it fails with eventstore.ErrUnavailable and ErrNotStored: the
// store never hands a message to a disconnected connection, which would
// buffer it and send it after the caller was told it failed. Default [DefaultLeaderTimeout], 2 s; 0 turns the check
// off (requests then wait for their context or [WithRequestTimeout]). d
// is 0 or 10ms to one minute; a value below the server's slowest
// acknowledgement (a disk sync under load) only costs an extra request.
func WithLeaderTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || (d > 0 && d < 10*time.Millisecond) || d > time.Minute {
			return badOption("leader timeout %v, want 0 (off) or 10ms to 1m", d)
		}
		c.leaderTimeout = d
		return nil
	}
}

// errNoLeader: the stream did not answer a question for its leader.
var errNoLeader = errors.New("natsstore: the stream has no leader that answers")

// errDisconnected: the connection is not connected to a server (it may be
// reconnecting). The store refuses to publish then: nats.go would buffer
// the message and send it once reconnected, long after the caller was
// told anything.
var errDisconnected = errors.New("natsstore: not connected to a server")

// isUnavailableCode reports whether err is a JetStream API error saying
// that the stream or the cluster cannot serve now (no leader, no quorum,
// offline, not ready). The server answered: nothing was stored.
func isUnavailableCode(err error) bool {
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode {
	case 10008, // JSClusterNotAvailErr: JetStream system temporarily unavailable
		10009, // JSClusterNotLeaderErr
		10118, // JSStreamOfflineErr
		10194, // JSStreamOfflineReasonErrF
		10163: // JSStreamExpectedLastSeqPerSubjectNotReady
		return true
	}
	return api.Code == 503
}

// unreachable reports whether err says that no server or leader could be
// reached, and nothing was sent to a stream that could store it.
func unreachable(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, errDisconnected) || isUnavailableCode(err)
}

// writeOutcome marks an error of Append with what it left in the stream:
// sent says whether the events were handed to the connection. It also
// notes that the stream may have no leader, for the next requests.
func (s *Store) writeOutcome(err error, sent bool) error {
	if err == nil {
		return nil
	}
	var api *jetstream.APIError
	switch {
	case errors.Is(err, eventstore.ErrUnavailable):
		s.degraded.Store(true)
		return eventstore.Unavailable(err, sent)
	case unreachable(err):
		s.degraded.Store(true)
		return eventstore.Unavailable(err, false)
	case errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining):
		return eventstore.Unavailable(err, sent)
	case errors.As(err, &api), errors.Is(err, errClosedStore):
		// The server answered that it did not store it, or it never left
		// the group commit's queue.
		return eventstore.NotStored(err)
	case sent && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)):
		s.degraded.Store(true)
	}
	return eventstore.WriteOutcome(err, sent)
}

// usable fails, with an error wrapping eventstore.ErrUnavailable and
// ErrNotStored, when the connection is not connected and does not
// reconnect within the leader timeout (or ctx), or while the stream is
// known to have lost its leader and a quick question finds no new one.
// Requests that need the stream leader call it first.
func (s *Store) usable(ctx context.Context, stream string) error {
	if !s.nc.IsConnected() && !s.reconnected(ctx) {
		s.degraded.Store(true)
		return eventstore.Unavailable(fmt.Errorf("%w (connection %s)", errDisconnected, s.nc.Status()), false)
	}
	if s.cfg.leaderTimeout > 0 && s.degraded.Load() {
		if _, err := s.probeLeader(stream); err != nil {
			return eventstore.Unavailable(err, false)
		}
	}
	return nil
}

// reconnected waits for the connection to be connected again, at most the
// leader timeout and while ctx lasts, and reports whether it is.
func (s *Store) reconnected(ctx context.Context) bool {
	if s.nc.IsClosed() || s.cfg.leaderTimeout <= 0 {
		return false
	}
	deadline := time.Now().Add(s.cfg.leaderTimeout)
	for !s.nc.IsConnected() {
		if time.Now().After(deadline) || ctx.Err() != nil || s.nc.IsClosed() {
			return false
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return true
}

// errAnswerLost is wrapped by errReconnected and errLeaderChanged: a
// request's answer (or the request) was lost. A read is sent again.
var errAnswerLost = errors.New("natsstore: the answer was lost")

// errReconnected: the connection was lost and made again while a request
// waited for its answer, which was lost with it (or the request was).
var errReconnected = fmt.Errorf("%w: the connection to the server was lost and made again while waiting", errAnswerLost)

// errLeaderChanged: the stream has a leader elected after the request was
// sent, which the old one may have taken down with it.
var errLeaderChanged = fmt.Errorf("%w: the stream's leader changed while waiting", errAnswerLost)

// watched runs f, a request to the leader of stream, with a context that
// is cancelled when f has had no answer within the leader timeout and
// the connection was lost and made again meanwhile, or the stream shows
// no leader with a quorum, or a leader elected since f began (the answer
// is lost, or the request was); it checks again
// every leader timeout. It then returns that finding (wrapping
// eventstore.ErrUnavailable, and ErrOutcomeUnknown for a write: sent),
// not f's cancellation.
func (s *Store) watched(ctx context.Context, stream string, sent bool, f func(context.Context) error) error {
	if s.cfg.leaderTimeout <= 0 {
		return f(ctx)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	reconnects := s.nc.Stats().Reconnects
	began := time.Now()
	go func() {
		t := time.NewTicker(s.cfg.leaderTimeout)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-wctx.Done():
				return
			case <-t.C:
			}
			if s.nc.Stats().Reconnects != reconnects {
				cancel(errReconnected)
				return
			}
			since, err := s.probeLeader(stream)
			if err != nil {
				cancel(err)
				return
			}
			if since.After(began) {
				cancel(errLeaderChanged)
				return
			}
		}
	}()
	err := f(wctx)
	close(stop)
	if err != nil && ctx.Err() == nil {
		if cause := context.Cause(wctx); errors.Is(cause, errNoLeader) || errors.Is(cause, errAnswerLost) {
			return eventstore.Unavailable(fmt.Errorf("%w (gave up waiting: %v)", cause, err), sent)
		}
	}
	if err == nil {
		s.degraded.Store(false)
	}
	return err
}

// probeCall is one question for the stream's leader, shared by the callers
// that ask while it is in flight.
type probeCall struct {
	done  chan struct{}
	since time.Time // when the leader was elected
	err   error
}

type prober struct {
	mu  sync.Mutex
	cur map[string]*probeCall // by stream
}

// probeLeader asks stream for its info, within the leader timeout,
// whatever the callers' contexts: when its leader was elected if it
// answers with a quorum of replicas (zero for a stream of one replica),
// else an error wrapping errNoLeader. It records the finding for
// [Store.usable].
func (s *Store) probeLeader(stream string) (time.Time, error) {
	s.probe.mu.Lock()
	c := s.probe.cur[stream]
	if c == nil {
		c = &probeCall{done: make(chan struct{})}
		if s.probe.cur == nil {
			s.probe.cur = map[string]*probeCall{}
		}
		s.probe.cur[stream] = c
		go func() {
			c.since, c.err = s.askLeader(stream)
			s.degraded.Store(c.err != nil)
			s.probe.mu.Lock()
			delete(s.probe.cur, stream)
			s.probe.mu.Unlock()
			close(c.done)
		}()
	}
	s.probe.mu.Unlock()
	<-c.done
	return c.since, c.err
}

// peerStale is how long a replica the stream leader has not heard from
// counts as gone when the probe judges the leader's quorum: three missed
// heartbeats of the server's Raft (one a second).
const peerStale = 3 * time.Second

// askLeader asks stream for its info. A leader answers; on a replicated
// stream it must also have heard from a majority of the replicas
// recently: a leader that lost its quorum still answers for a while, but
// cannot store anything.
func (s *Store) askLeader(stream string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.leaderTimeout)
	defer cancel()
	resp, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.INFO."+stream, nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: stream %s info: %w", errNoLeader, stream, err)
	}
	var r struct {
		Error   *jetstream.APIError `json:"error,omitempty"`
		Cluster *struct {
			Leader      string    `json:"leader,omitempty"`
			LeaderSince time.Time `json:"leader_since,omitzero"`
			Replicas    []struct {
				Name    string        `json:"name"`
				Current bool          `json:"current"`
				Offline bool          `json:"offline,omitempty"`
				Active  time.Duration `json:"active"`
			} `json:"replicas,omitempty"`
		} `json:"cluster,omitempty"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return time.Time{}, fmt.Errorf("%w: stream %s info: bad response: %w", errNoLeader, stream, err)
	}
	if r.Error != nil {
		return time.Time{}, fmt.Errorf("%w: stream %s info: %w", errNoLeader, stream, r.Error)
	}
	if r.Cluster == nil {
		return time.Time{}, nil
	}
	if r.Cluster.Leader == "" {
		return time.Time{}, fmt.Errorf("%w: stream %s info names no leader", errNoLeader, stream)
	}
	alive := 1 // the leader
	for _, p := range r.Cluster.Replicas {
		if !p.Offline && p.Active < peerStale {
			alive++
		}
	}
	if n := len(r.Cluster.Replicas) + 1; alive <= n/2 {
		return time.Time{}, fmt.Errorf("%w: stream %s: leader %s hears from %d of %d replicas, no quorum", errNoLeader, stream, r.Cluster.Leader, alive, n)
	}
	return r.Cluster.LeaderSince, nil
}
