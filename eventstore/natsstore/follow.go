package natsstore

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/eventstore"
)

var _ eventstore.HeadFollower = (*Store)(nil)

// FollowHeads implements [eventstore.HeadFollower] with one ordered
// consumer on the stream's subjects that delivers new messages' headers
// only (not their events): a follower costs the server and the client a
// small message per append, whatever the events hold, and one follower
// serves every meeting of an Engine.
//
// The reports are current while the connection is up and the consumer
// has reported no trouble. After a disconnection, a reconnection or a
// consumer error (a missed heartbeat, the consumer recreated), they are
// not current again until a message arrives with nothing pending after
// it, which says the follower has caught up with the stream: until the
// next append, a reader that asks is told to read the store.
func (s *Store) FollowHeads(ctx context.Context, appended func(meetingID string, seq uint64)) (func() bool, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	cons, err := s.js.OrderedConsumer(ctx, s.cfg.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.cfg.prefix + ".>"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		HeadersOnly:    true,
	})
	if err != nil {
		return nil, fmt.Errorf("natsstore: follow heads: %w", err)
	}
	var (
		lagging    atomic.Bool
		reconnects atomic.Uint64 // the connection's count when last caught up
	)
	reconnects.Store(s.nc.Stats().Reconnects)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		if err != nil {
			lagging.Store(true)
			return
		}
		if m, ok := MeetingOfSubject(s.cfg.prefix, msg.Subject()); ok {
			appended(m, md.Sequence.Stream)
		}
		if md.NumPending == 0 {
			reconnects.Store(s.nc.Stats().Reconnects)
			lagging.Store(false)
		}
	}, jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) {
		lagging.Store(true)
	}))
	if err != nil {
		return nil, fmt.Errorf("natsstore: follow heads: %w", err)
	}
	context.AfterFunc(ctx, cc.Stop)
	current := func() bool {
		return ctx.Err() == nil && !s.closed.Load() && !lagging.Load() &&
			s.nc.IsConnected() && s.nc.Stats().Reconnects == reconnects.Load()
	}
	return current, nil
}
