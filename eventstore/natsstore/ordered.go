package natsstore

// The ordered reader: one ordered consumer streams a stream's messages (all
// of them, or one subject's), a pool of workers decodes and checks them,
// and the caller gets them back in stream order. It serves the reads that
// cover many messages: ReadAll, Load of a long meeting, and the replay
// tool's JetStream source.

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
)

// ErrInvalidRead is wrapped by the error [ReadOrdered] yields for a read it
// cannot start: no JetStream, no stream name, or a range that ends before it
// begins.
var ErrInvalidRead = errors.New("natsstore: invalid ordered read")

// ErrReadIdle is wrapped by the error [ReadOrdered] yields when no message
// comes within the read's idle timeout although the read has not reached
// its end: the rest of the range is missing (or the server is too slow).
var ErrReadIdle = errors.New("natsstore: ordered read: no message within the idle timeout")

// DefaultReadIdle is how long an ordered read waits for its next message by
// default.
const DefaultReadIdle = 30 * time.Second

// OrderedRead describes a read of a stream with an ordered consumer.
type OrderedRead struct {
	// Stream is the stream to read (required).
	Stream string
	// Filter is the subject to read ("" reads every subject).
	Filter string
	// From is the first stream sequence to read (0 or 1: the first).
	From uint64
	// To is the last stream sequence to read (required, at least From):
	// the read ends with the last message at or before To, or as soon as
	// the server says no message on Filter follows.
	To uint64
	// Idle bounds the wait for each message (default [DefaultReadIdle]);
	// past it the read ends with an error wrapping [ErrReadIdle].
	Idle time.Duration
	// Workers is how many goroutines decode (default GOMAXPROCS).
	Workers int
	// Decode turns a message into an event; it is called from several
	// goroutines at once. Its error is given with the message (the read
	// goes on). Nil decodes with events.Unmarshal and checks the event's
	// own hash (Envelope.Verify), and sets Seq.
	Decode func(seq uint64, subject string, data []byte) (events.Envelope, error)
}

// OrderedMsg is one message of an ordered read.
type OrderedMsg struct {
	// Seq is the message's stream sequence, Subject its subject.
	Seq     uint64
	Subject string
	// Pending is how many messages on the read's filter followed this
	// one in the stream when the server delivered it.
	Pending uint64
	// Event is the decoded event, or Err why the message is not one.
	Event events.Envelope
	Err   error
}

// orderedBatch is a run of consecutive messages, decoded by one worker.
type orderedBatch struct {
	msgs []OrderedMsg
	data [][]byte
	err  error // the read's end, after msgs
	done chan struct{}
}

// orderedBatchSize is how many messages a worker decodes at a time.
const orderedBatchSize = 256

// decodeChecked is the default Decode of an ordered read.
func decodeChecked(seq uint64, _ string, data []byte) (events.Envelope, error) {
	e, err := events.Unmarshal(data)
	if err != nil {
		return events.Envelope{}, err
	}
	e.Seq = seq
	if err := e.Verify(); err != nil {
		return events.Envelope{}, err
	}
	return e, nil
}

// ReadOrdered reads r's range of a stream with an ordered consumer: one
// goroutine receives the messages (in large pulls, not one request each),
// r.Workers goroutines decode them, and the sequence yields them in stream
// order with their decoding's outcome. It ends after the last message at or
// before r.To, when the server says nothing more on r.Filter follows, or
// with an error: a context's, one wrapping [ErrInvalidRead] or
// [ErrReadIdle], or the consumer's. The consumer is deleted when the read
// ends. Messages missing from the stream are skipped: callers that must
// see every sequence compare OrderedMsg.Seq with the one they expect.
func ReadOrdered(ctx context.Context, js jetstream.JetStream, r OrderedRead) iter.Seq2[OrderedMsg, error] {
	return func(yield func(OrderedMsg, error) bool) {
		from := max(r.From, 1)
		switch {
		case js == nil:
			yield(OrderedMsg{}, fmt.Errorf("%w: no JetStream", ErrInvalidRead))
			return
		case r.Stream == "":
			yield(OrderedMsg{}, fmt.Errorf("%w: no stream", ErrInvalidRead))
			return
		case r.To < from:
			yield(OrderedMsg{}, fmt.Errorf("%w: sequences %d to %d", ErrInvalidRead, from, r.To))
			return
		}
		if err := ctx.Err(); err != nil {
			yield(OrderedMsg{}, err)
			return
		}
		idle := r.Idle
		if idle <= 0 {
			idle = DefaultReadIdle
		}
		workers := r.Workers
		if workers <= 0 {
			workers = runtime.GOMAXPROCS(0)
		}
		decode := r.Decode
		if decode == nil {
			decode = decodeChecked
		}
		cfg := jetstream.OrderedConsumerConfig{
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       from,
			InactiveThreshold: time.Minute,
		}
		if r.Filter != "" {
			cfg.FilterSubjects = []string{r.Filter}
		}
		cctx, cancel := withTimeout(ctx)
		cons, err := js.OrderedConsumer(cctx, r.Stream, cfg)
		cancel()
		if err != nil {
			yield(OrderedMsg{}, fmt.Errorf("natsstore: read stream %s: %w", r.Stream, err))
			return
		}
		defer func() {
			// Free the server of it now rather than at its inactivity
			// threshold; the read is over whatever this answers.
			if info := cons.CachedInfo(); info != nil {
				dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = js.DeleteConsumer(dctx, r.Stream, info.Name)
				cancel()
			}
		}()
		if cons.CachedInfo().NumPending == 0 {
			return
		}
		ctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() {
			stop()
			wg.Wait()
		}()
		jobs := make(chan *orderedBatch, 2*workers)
		order := make(chan *orderedBatch, 4*workers)
		rc := &receiver{r: r, idle: idle, last: from - 1, jobs: jobs, order: order,
			free: make(chan *orderedBatch, 8*workers), ended: make(chan struct{})}
		rc.b = rc.newBatch()
		cc, err := cons.Consume(func(msg jetstream.Msg) { rc.take(ctx, msg) }, jetstream.PullMaxMessages(4*orderedBatchSize),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { rc.note(err) }))
		if err != nil {
			yield(OrderedMsg{}, fmt.Errorf("natsstore: read stream %s: %w", r.Stream, err))
			return
		}
		wg.Add(1 + workers)
		go func() {
			defer wg.Done()
			defer close(order)
			defer close(jobs)
			rc.watch(ctx, cc)
		}()
		for range workers {
			go func() {
				defer wg.Done()
				for b := range jobs {
					for i := range b.msgs {
						m := &b.msgs[i]
						m.Event, m.Err = decode(m.Seq, m.Subject, b.data[i])
						b.data[i] = nil
					}
					close(b.done)
				}
			}()
		}
		for b := range order {
			select {
			case <-b.done:
			case <-ctx.Done():
			}
			if err := ctx.Err(); err != nil {
				yield(OrderedMsg{}, err)
				return
			}
			for i := range b.msgs {
				if !yield(b.msgs[i], nil) {
					return
				}
			}
			if b.err != nil {
				yield(OrderedMsg{}, b.err)
				return
			}
			clear(b.msgs)
			b.msgs, b.data, b.done = b.msgs[:0], b.data[:0], nil
			select {
			case rc.free <- b:
			default:
			}
		}
		if err := ctx.Err(); err != nil {
			yield(OrderedMsg{}, err) // the read stopped before its end
		}
	}
}

// receiver takes the read's messages from the consumer's handler, in
// batches, and hands each batch to the decoders (jobs) and to the caller
// (order), in that order of sending so that the caller finds them in
// stream order. Its watch ends the read at the range's end, when the
// caller stops, or when no message came within the idle timeout.
type receiver struct {
	r           OrderedRead
	idle        time.Duration
	jobs, order chan<- *orderedBatch
	free        chan *orderedBatch

	mu       sync.Mutex // held by the handler while it works: watch waits on it
	b        *orderedBatch
	last     uint64 // the last sequence received
	count    uint64 // messages received
	finished bool
	lastErr  error // the consumer's last error, for the idle report
	ended    chan struct{}
}

func (rc *receiver) newBatch() *orderedBatch {
	select {
	case b := <-rc.free:
		b.done = make(chan struct{})
		return b
	default:
		return &orderedBatch{msgs: make([]OrderedMsg, 0, orderedBatchSize),
			data: make([][]byte, 0, orderedBatchSize), done: make(chan struct{})}
	}
}

// send hands the current batch on; false when the caller stopped.
func (rc *receiver) send(ctx context.Context) bool {
	for _, ch := range []chan<- *orderedBatch{rc.order, rc.jobs} {
		select {
		case ch <- rc.b:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// finish sends the last batch, ending with err (nil at the range's end).
// rc.mu is held.
func (rc *receiver) finish(ctx context.Context, err error) {
	if rc.finished {
		return
	}
	rc.finished = true
	rc.b.err = err
	rc.send(ctx)
	close(rc.ended)
}

// note records an error the consumer reports (it recovers from most by
// itself: a missed heartbeat, a gap, a reconnect).
func (rc *receiver) note(err error) {
	rc.mu.Lock()
	rc.lastErr = err
	rc.mu.Unlock()
}

// take is the consumer's handler: one message, in stream order.
func (rc *receiver) take(ctx context.Context, msg jetstream.Msg) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.finished {
		return
	}
	md, err := msg.Metadata()
	if err != nil {
		rc.finish(ctx, fmt.Errorf("natsstore: read stream %s after sequence %d: %w", rc.r.Stream, rc.last, err))
		return
	}
	seq := md.Sequence.Stream
	if seq > rc.r.To {
		rc.finish(ctx, nil)
		return
	}
	rc.last = seq
	rc.count++
	rc.b.msgs = append(rc.b.msgs, OrderedMsg{Seq: seq, Subject: msg.Subject(), Pending: md.NumPending})
	rc.b.data = append(rc.b.data, msg.Data())
	if seq == rc.r.To || md.NumPending == 0 {
		rc.finish(ctx, nil)
		return
	}
	if len(rc.b.msgs) == orderedBatchSize {
		if !rc.send(ctx) {
			rc.finished = true
			close(rc.ended)
			return
		}
		rc.b = rc.newBatch()
	}
}

// watch waits for the read to end (its range read, the caller gone, or no
// message within the idle timeout), then stops the consumer.
func (rc *receiver) watch(ctx context.Context, cc jetstream.ConsumeContext) {
	defer func() {
		cc.Stop()
		select {
		case <-cc.Closed():
		case <-time.After(5 * time.Second):
		}
	}()
	tick := time.NewTicker(min(rc.idle/4, time.Second))
	defer tick.Stop()
	seen, since := uint64(0), time.Now()
	for {
		select {
		case <-rc.ended:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !rc.mu.TryLock() {
			since = time.Now() // the handler is working (or waits for the caller)
			continue
		}
		switch {
		case rc.finished:
		case rc.count != seen:
			seen, since = rc.count, time.Now()
		case time.Since(since) >= rc.idle:
			err := fmt.Errorf("%w: stream %s: nothing after sequence %d within %v, the read ends at %d", ErrReadIdle, rc.r.Stream, rc.last, rc.idle, rc.r.To)
			if rc.lastErr != nil {
				err = fmt.Errorf("%w (the consumer: %v)", err, rc.lastErr)
			}
			rc.finish(ctx, err)
		}
		rc.mu.Unlock()
	}
}

// orderedMin is the fewest messages a read must cover for the store to read
// them with an ordered consumer (and decode them in parallel) rather than
// with batched direct gets: below it, creating the consumer costs more than
// it saves.
const orderedMin = 2048

// scanDecoded calls f, in stream order, for each message start..end (on
// subject filter, if not empty) decoded with s.decode. With long set (the
// caller expects at least orderedMin messages) it reads with [ReadOrdered],
// decoding on every core; otherwise with batched direct gets. f returns
// false to stop.
func (s *Store) scanDecoded(ctx context.Context, filter string, start, end uint64, long bool,
	f func(seq uint64, e events.Envelope, err error) (bool, error)) error {
	if !long {
		return s.scan(ctx, filter, start, end, func(seq uint64, subject string, data []byte) (bool, error) {
			e, err := s.decode(subject, seq, data)
			return f(seq, e, err)
		})
	}
	r := OrderedRead{Stream: s.cfg.stream, Filter: filter, From: start, To: end, Idle: scanPatience,
		Decode: func(seq uint64, subject string, data []byte) (events.Envelope, error) {
			return s.decode(subject, seq, data)
		}}
	read := start - 1
	for m, err := range ReadOrdered(ctx, s.js, r) {
		if err != nil {
			if errors.Is(err, ErrReadIdle) {
				return fmt.Errorf("%w: %w", errIncomplete, err)
			}
			return err
		}
		read = m.Seq
		more, err := f(m.Seq, m.Event, m.Err)
		if err != nil || !more {
			return err
		}
	}
	if read < end {
		// The consumer saw nothing more where the stream's leader has
		// messages up to end (a replica behind it): read the rest as a
		// short read does, which waits for them.
		return s.scanDecoded(ctx, filter, read+1, end, false, f)
	}
	return nil
}
