package natsstore

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

var _ eventstore.MeetingSubscriber = (*Store)(nil)

// consumerCleanup bounds the deletion of a meeting subscription's consumer
// when the subscription ends.
const consumerCleanup = 5 * time.Second

// SubscribeMeeting implements [eventstore.MeetingSubscriber.SubscribeMeeting]
// with an ordered consumer filtered on the meeting's subject: the server
// hands it the meeting's messages only, and the client reads, decodes and
// checks no other meeting's event. It starts right after the meeting's last
// event the store knows (the head an Append or a Load just recorded, so a
// caller that loaded up to fromVersion-1 costs no extra read); otherwise it
// reads the stored events from fromVersion with [Store.Load] and starts the
// consumer after the last one. A meeting with no events yet is followed from
// its first event, found by the server's subject index, never by reading
// the stream.
//
// The ordered consumer survives reconnects and server restarts, resuming
// after the last sequence it delivered. Every event is checked as Load
// checks it: that it decodes, belongs to the meeting, matches its hash, and
// follows the previous one in version and hash chain; the first that does
// not ends the iteration with a [*eventstore.CorruptError]. The consumer is
// deleted when the iteration ends.
func (s *Store) SubscribeMeeting(ctx context.Context, meetingID string, fromVersion uint64) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		if err := s.readable(ctx); err != nil {
			yield(events.Envelope{}, err)
			return
		}
		if err := events.ValidateID(meetingID); err != nil {
			yield(events.Envelope{}, fmt.Errorf("natsstore: subscribe meeting: %w", err))
			return
		}
		fromVersion = max(fromVersion, 1)
		c := chainCheck{meeting: meetingID}
		if h, ok := s.getHead(meetingID); ok && h.version+1 == fromVersion {
			// The caller is where the store is (it just loaded or
			// appended): follow from there.
			c.version, c.start = h.version, h.seq+1
			c.hashKnown = h.version == 0
		} else {
			n := 0
			for e, err := range s.Load(ctx, meetingID, fromVersion) {
				if err != nil {
					yield(events.Envelope{}, err)
					return
				}
				n++
				c.version, c.hash, c.hashKnown, c.start = e.Version, e.Hash, true, e.Seq+1
				if !yield(e, nil) {
					return
				}
			}
			if n == 0 {
				// Nothing from fromVersion on: follow from the head Load
				// found (it records it), or from the meeting's first event.
				if h, ok := s.getHead(meetingID); ok && h.version < fromVersion {
					c.version, c.start, c.hashKnown = h.version, h.seq+1, h.version == 0
				} else {
					c.version, c.start, c.hashKnown = 0, 1, true
				}
			}
		}
		s.follow(ctx, &c, fromVersion, yield)
	}
}

// chainCheck is where a meeting subscription stands: the version and hash
// of the last event it checked, and the stream sequence to read from next.
type chainCheck struct {
	meeting   string
	version   uint64
	hash      events.Hash
	hashKnown bool // hash is the last event's (or the zero hash before version 1)
	start     uint64
}

// next checks e as the event after the last one checked.
func (c *chainCheck) next(e *events.Envelope) error {
	if e.Version != c.version+1 {
		return &eventstore.CorruptError{Seq: e.Seq, MeetingID: c.meeting, Version: e.Version,
			Err: fmt.Errorf("version %d where version %d belongs: an event is missing or out of place", e.Version, c.version+1)}
	}
	if c.hashKnown && e.PrevHash != c.hash {
		return &eventstore.CorruptError{Seq: e.Seq, MeetingID: c.meeting, Version: e.Version,
			Err: fmt.Errorf("hash chain broken: prev %s, previous event's hash %s", e.PrevHash, c.hash)}
	}
	c.version, c.hash, c.hashKnown = e.Version, e.Hash, true
	return nil
}

// follow yields the meeting's events from stream sequence c.start on, as
// they are stored, those with a version below fromVersion checked but not
// yielded.
func (s *Store) follow(ctx context.Context, c *chainCheck, fromVersion uint64, yield func(events.Envelope, error) bool) {
	fail := func(err error) {
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case s.closed.Load():
			err = fmt.Errorf("%w (%v)", eventstore.ErrClosed, err)
		}
		yield(events.Envelope{}, fmt.Errorf("natsstore: subscribe meeting %s: %w", c.meeting, err))
	}
	cons, err := s.js.OrderedConsumer(ctx, s.cfg.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.Subject(c.meeting)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    c.start,
	})
	if err != nil {
		fail(err)
		return
	}
	it, err := cons.Messages()
	if err != nil {
		fail(err)
		return
	}
	// ctx ending stops the iterator at once: while the ordered consumer
	// is being recreated (a leader change), Next waits for nats.go's
	// retries, which only Stop cancels.
	unhook := context.AfterFunc(ctx, it.Stop)
	defer func() {
		unhook()
		it.Stop()
		// An ordered consumer outlives its subscription by its inactive
		// threshold (five minutes): with many watchers coming and going,
		// delete it now.
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.Background(), consumerCleanup)
			defer cancel()
			_ = s.js.DeleteConsumer(dctx, s.cfg.stream, info.Name)
		}
	}()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if ctx.Err() != nil {
			yield(events.Envelope{}, ctx.Err())
			return
		}
		if err != nil {
			fail(err)
			return
		}
		md, err := msg.Metadata()
		if err != nil {
			fail(err)
			return
		}
		e, err := s.decode(msg.Subject(), md.Sequence.Stream, msg.Data())
		if err == nil {
			err = c.next(&e)
		}
		if err != nil {
			yield(events.Envelope{}, err)
			return
		}
		s.setHead(c.meeting, head{version: e.Version, seq: e.Seq})
		if e.Version < fromVersion {
			continue
		}
		if !yield(e, nil) {
			return
		}
	}
}
