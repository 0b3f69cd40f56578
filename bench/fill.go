package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// filler publishes asynchronously with a bounded number of publishes in
// flight: when window acknowledgements are outstanding it waits for the
// oldest before it publishes again, and a publish the client refuses
// because too many are outstanding (jetstream.ErrTooManyStalledMsgs, when
// the client's own limit is below the window or a busy machine delays the
// acknowledgements past the stall wait) is retried after waiting for the
// oldest, not failed. Every acknowledgement is checked.
type filler struct {
	js     jetstream.JetStream
	window int
	ring   []jetstream.PubAckFuture
	head   int // the oldest outstanding future in ring
	n      int // outstanding
	stalls int // publishes refused and retried
	opts   []jetstream.PublishOpt
}

func newFiller(js jetstream.JetStream, window int) *filler {
	window = max(window, 1)
	return &filler{js: js, window: window, ring: make([]jetstream.PubAckFuture, window)}
}

// ackWait bounds the wait for one acknowledgement.
const ackWait = 2 * time.Minute

// waitOldest waits for the oldest outstanding publish and checks its ack.
func (f *filler) waitOldest(ctx context.Context) error {
	fut := f.ring[f.head]
	f.ring[f.head] = nil
	f.head = (f.head + 1) % f.window
	f.n--
	t := time.NewTimer(ackWait)
	defer t.Stop()
	select {
	case <-fut.Ok():
		return nil
	case err := <-fut.Err():
		return fmt.Errorf("publish to %s: %w", fut.Msg().Subject, err)
	case <-t.C:
		return fmt.Errorf("publish to %s: not acknowledged within %v", fut.Msg().Subject, ackWait)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// publish sends data to subject, waiting while the window is full.
func (f *filler) publish(ctx context.Context, subject string, data []byte) error {
	for {
		if f.n == f.window {
			if err := f.waitOldest(ctx); err != nil {
				return err
			}
		}
		fut, err := f.js.PublishAsync(subject, data, f.opts...)
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			f.stalls++
			if f.n == 0 {
				// Nothing of ours to wait for: let the client drain.
				select {
				case <-f.js.PublishAsyncComplete():
				case <-time.After(10 * time.Millisecond):
				case <-ctx.Done():
					return ctx.Err()
				}
			} else if err := f.waitOldest(ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("publish to %s: %w", subject, err)
		}
		f.ring[(f.head+f.n)%f.window] = fut
		f.n++
		return nil
	}
}

// flush waits for every outstanding publish and checks its ack.
func (f *filler) flush(ctx context.Context) error {
	for f.n > 0 {
		if err := f.waitOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}
