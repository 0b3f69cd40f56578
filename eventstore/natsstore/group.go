package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// MaxGroup is the most single-event appends one group commit carries.
const MaxGroup = 256

// A group commit stores the single-event appends of many meetings that are
// waiting at the same moment as one atomic batch, each message keeping its
// own meeting's guard (Nats-Expected-Last-Subject-Sequence). On a server
// that syncs before it acknowledges, that is one disk sync for the whole
// group instead of one per event. When the batch fails on a guard, each
// append is retried alone, so a conflict on one meeting fails only that
// meeting's append.
//
// One goroutine commits: while a batch is in flight, new appends queue up
// and form the next batch. While fewer than the group's minimum appends are
// waiting or in flight, each is published alone, concurrently, as without
// group commit; past it, the waiting ones go as one batch.
type grouper struct {
	s        *Store
	min      int
	queue    chan *pending
	stop     chan struct{}
	finished chan struct{} // closed when run has returned
	inflight atomic.Int64  // lone publishes not yet answered
	settled  chan struct{} // a lone publish was answered (a hint, may drop)
}

// pending is one single-event append waiting for a group commit.
type pending struct {
	msg    *nats.Msg
	guard  uint64           // the subject's expected last sequence
	result chan groupResult // buffered: the committer never waits on it
}

type groupResult struct {
	seq uint64
	err error
}

func newGrouper(s *Store, min int) *grouper {
	g := &grouper{s: s, min: min, queue: make(chan *pending, 4*MaxGroup),
		stop: make(chan struct{}), finished: make(chan struct{}), settled: make(chan struct{}, 1)}
	go g.run()
	return g
}

// close stops the committer after the batch in flight; queued appends fail.
func (g *grouper) close() {
	close(g.stop)
	<-g.finished
}

// append queues p and waits for its result.
func (g *grouper) append(ctx context.Context, p *pending) (uint64, error) {
	select {
	case g.queue <- p:
	case <-g.stop:
		return 0, errClosedStore
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case r := <-p.result:
		return r.seq, r.err
	case <-g.finished:
		select {
		case r := <-p.result:
			return r.seq, r.err
		default:
			return 0, errClosedStore // queued after the committer's last drain
		}
	case <-ctx.Done():
		// Ambiguous: the group may still commit it.
		return 0, ctx.Err()
	}
}

var errClosedStore = errors.New("natsstore: store closed while an append was queued")

func (g *grouper) run() {
	defer close(g.finished)
	var carry []*pending // appends held back because their subject was already in the batch
	for {
		var first *pending
		if len(carry) > 0 {
			first, carry = carry[0], carry[1:]
		} else {
			select {
			case first = <-g.queue:
			case <-g.stop:
				for _, p := range carry {
					p.result <- groupResult{err: errClosedStore}
				}
				g.drain()
				return
			}
		}
		batch := []*pending{first}
		seen := map[string]bool{first.msg.Subject: true}
		take := func(p *pending) {
			if seen[p.msg.Subject] {
				carry = append(carry, p)
				return
			}
			seen[p.msg.Subject] = true
			batch = append(batch, p)
		}
		for len(carry) > 0 && len(batch) < MaxGroup && !seen[carry[0].msg.Subject] {
			p := carry[0]
			carry = carry[1:]
			take(p)
		}
	fill:
		for len(batch) < MaxGroup {
			select {
			case p := <-g.queue:
				take(p)
			default:
				break fill
			}
		}
		// Light load (fewer than min appends waiting or in flight): a lone
		// guarded publish each is faster than a batch.
		if int(g.inflight.Load())+len(batch) < g.min {
			for _, p := range batch {
				g.lone(p)
			}
			continue
		}
		// Under load: gather until min are waiting, or until no lone
		// publish is left whose caller could add to the group.
	gather:
		for len(batch) < g.min && g.inflight.Load() > 0 {
			select {
			case p := <-g.queue:
				take(p)
			case <-g.settled:
			case <-g.stop:
				break gather
			}
		}
		if len(batch) == 1 {
			g.lone(batch[0])
			continue
		}
		g.commit(batch)
	}
}

// drain fails every queued append after Close.
func (g *grouper) drain() {
	for {
		select {
		case p := <-g.queue:
			p.result <- groupResult{err: errClosedStore}
		default:
			return
		}
	}
}

// lone publishes p alone, in its own goroutine, counted in inflight until
// it is answered.
func (g *grouper) lone(p *pending) {
	g.inflight.Add(1)
	go func() {
		g.single(p)
		g.inflight.Add(-1)
		select {
		case g.settled <- struct{}{}:
		default:
		}
	}()
}

// single publishes one append alone, with its guard.
func (g *grouper) single(p *pending) {
	ctx, cancel := context.WithTimeout(context.Background(), g.s.cfg.requestTimeout)
	defer cancel()
	ack, err := g.s.js.PublishMsg(ctx, p.msg,
		jetstream.WithExpectStream(g.s.cfg.stream),
		jetstream.WithExpectLastSequencePerSubject(p.guard))
	if err != nil {
		p.result <- groupResult{err: err}
		return
	}
	p.result <- groupResult{seq: ack.Sequence}
}

// commit stores batch as one atomic batch. The server stores an atomic
// batch contiguously, so message i is at the ack's sequence minus the
// messages after it.
func (g *grouper) commit(batch []*pending) {
	msgs := make([]*nats.Msg, len(batch))
	for i, p := range batch {
		// The batch protocol sets its own headers on the message: give it a
		// copy, so that a fallback publish sends the original.
		m := &nats.Msg{Subject: p.msg.Subject, Data: p.msg.Data, Header: nats.Header{}}
		m.Header.Set(jetstream.ExpectedStreamHeader, g.s.cfg.stream)
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(p.guard, 10))
		msgs[i] = m
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.s.cfg.requestTimeout)
	defer cancel()
	ack, err := g.s.publishBatch(ctx, msgs)
	if err == nil {
		for i, p := range batch {
			p.result <- groupResult{seq: ack.Sequence - uint64(len(batch)-1-i)}
		}
		return
	}
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		// A timeout or a lost connection: the batch may or may not be
		// stored. Every append in it is ambiguous, as a lone publish would be.
		for _, p := range batch {
			p.result <- groupResult{err: fmt.Errorf("group commit of %d events: %w", len(batch), err)}
		}
		return
	}
	// The server refused the whole batch (a guard failed, most likely):
	// nothing of it is stored. Retry each alone for its own answer.
	g.s.cfg.logger.Debug("natsstore: group commit refused; publishing one by one", "events", len(batch), "err", err)
	var wg sync.WaitGroup
	for _, p := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.single(p)
		}()
	}
	wg.Wait()
}

// publishBatch publishes msgs as one atomic batch. A batch whose first
// message finds no responder (a stream leader being elected, a server
// restarting) was not stored at all: it is tried again, as the jetstream
// package does for a lone publish, a few times a quarter second apart.
func (s *Store) publishBatch(ctx context.Context, msgs []*nats.Msg) (*jetstreamext.BatchAck, error) {
	const attempts, wait = 4, 250 * time.Millisecond
	for i := 1; ; i++ {
		ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs)
		if !errors.Is(err, nats.ErrNoResponders) || i == attempts {
			return ack, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}
