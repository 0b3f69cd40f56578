package natsstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/checkpoint"
)

var _ checkpoint.Sink = (*Store)(nil)

// CheckpointStream returns the name of the stream that holds the signed
// checkpoints of the events of stream (see [Store.WriteCheckpoints]): the
// stream's name, with each character a stream name may not hold replaced by
// '_', and "_CHECKPOINTS". Its subjects are "<name>.<meeting key>".
func CheckpointStream(stream string) string { return bucketName(stream, "_CHECKPOINTS") }

// provisionCheckpoints creates the checkpoint stream, or opens it, once.
func (s *Store) provisionCheckpoints(ctx context.Context) error {
	s.cpMu.Lock()
	defer s.cpMu.Unlock()
	if s.cpReady {
		return nil
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	name := CheckpointStream(s.cfg.stream)
	cfg := jetstream.StreamConfig{
		Name:        name,
		Description: "productdb/stage signed checkpoints of the meetings of stream " + s.cfg.stream,
		Subjects:    []string{name + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     s.cfg.storage,
		Replicas:    s.cfg.replicas,
		Discard:     jetstream.DiscardOld,
		DenyDelete:  true,
		DenyPurge:   true,
	}
	_, err := s.js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		_, err = s.js.Stream(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("natsstore: checkpoint stream %s: %w", name, err)
	}
	s.cpReady = true
	return nil
}

// WriteCheckpoints implements checkpoint.Sink: each checkpoint is one
// message of the stream [CheckpointStream], on the subject of its meeting,
// acknowledged (stored) before WriteCheckpoints returns nil. The stream is
// created on first use, with the event stream's storage and replicas, and
// denies deletes and purges. Checkpoints kept beside the log prove the log
// against an edit that re-hashes it; they are lost with it when the disk
// loses both: keep a checkpoint.File elsewhere too for that.
func (s *Store) WriteCheckpoints(ctx context.Context, cps []checkpoint.Signed) error {
	if err := s.readable(ctx); err != nil {
		return err
	}
	if len(cps) == 0 {
		return nil
	}
	if err := s.provisionCheckpoints(ctx); err != nil {
		return err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	name := CheckpointStream(s.cfg.stream)
	futures := make([]jetstream.PubAckFuture, 0, len(cps))
	for i := range cps {
		data, err := checkpoint.Marshal(&cps[i])
		if err != nil {
			return fmt.Errorf("natsstore: checkpoint of meeting %s: %w", cps[i].MeetingID, err)
		}
		f, err := s.js.PublishAsync(name+"."+meetingKey(cps[i].MeetingID), data, jetstream.WithExpectStream(name))
		if err != nil {
			return fmt.Errorf("natsstore: checkpoint of meeting %s: %w", cps[i].MeetingID, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("natsstore: checkpoint of meeting %s: %w", cps[i].MeetingID, err)
		case <-ctx.Done():
			return fmt.Errorf("natsstore: checkpoints: %w", ctx.Err())
		}
	}
	return nil
}

// Checkpoints yields the checkpoints of the store's stream, in the order
// they were written (see [ReadCheckpoints]).
func (s *Store) Checkpoints(ctx context.Context) iter.Seq2[checkpoint.Signed, error] {
	if err := s.readable(ctx); err != nil {
		return func(yield func(checkpoint.Signed, error) bool) { yield(checkpoint.Signed{}, err) }
	}
	return ReadCheckpoints(ctx, s.js, s.cfg.stream)
}

// checkpointIdle bounds the wait for the next checkpoint message of a read.
const checkpointIdle = 10 * time.Second

// ReadCheckpoints yields the signed checkpoints kept in the JetStream of js
// for the event stream named stream (the stream [CheckpointStream]), in the
// order they were written, up to the last one stored when the read began;
// nothing if there is no such stream. A message that is not a checkpoint is
// yielded as an error wrapping checkpoint.ErrMalformed, and the read goes
// on if the caller keeps ranging. Signatures are not checked here.
func ReadCheckpoints(ctx context.Context, js jetstream.JetStream, stream string) iter.Seq2[checkpoint.Signed, error] {
	return func(yield func(checkpoint.Signed, error) bool) {
		name := CheckpointStream(stream)
		fail := func(err error) { yield(checkpoint.Signed{}, fmt.Errorf("natsstore: checkpoints %s: %w", name, err)) }
		ictx, cancel := withTimeout(ctx)
		st, err := js.Stream(ictx, name)
		cancel()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return
		}
		if err != nil {
			fail(err)
			return
		}
		last := st.CachedInfo().State.LastSeq
		if st.CachedInfo().State.Msgs == 0 {
			return
		}
		cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
		if err != nil {
			fail(err)
			return
		}
		msgs, err := cons.Messages()
		if err != nil {
			fail(err)
			return
		}
		defer msgs.Stop()
		for {
			nctx, cancel := context.WithTimeout(ctx, checkpointIdle)
			msg, err := msgs.Next(jetstream.NextContext(nctx))
			cancel()
			if ctx.Err() != nil {
				yield(checkpoint.Signed{}, ctx.Err())
				return
			}
			if err != nil {
				fail(fmt.Errorf("reading toward sequence %d: %w", last, err))
				return
			}
			md, err := msg.Metadata()
			if err != nil {
				fail(err)
				return
			}
			c, err := checkpoint.Parse(msg.Data())
			if err != nil {
				err = fmt.Errorf("natsstore: checkpoints %s sequence %d: %w", name, md.Sequence.Stream, err)
			}
			if !yield(c, err) {
				return
			}
			if md.Sequence.Stream >= last || md.NumPending == 0 {
				return
			}
		}
	}
}
