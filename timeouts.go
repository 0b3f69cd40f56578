package stage

import (
	"errors"
	"time"
)

// DefaultBackgroundWriteTimeout bounds one write the Engine makes on its
// own, outside any caller's call: a snapshot of a meeting leaving the
// cache or going idle, a batch of checkpoints (see
// [WithBackgroundTimeouts]).
const DefaultBackgroundWriteTimeout = 30 * time.Second

// WithBackgroundTimeouts bounds the writes the Engine makes on its own:
// write bounds each background snapshot and checkpoint write (default
// [DefaultBackgroundWriteTimeout], 30 s), onClose the snapshot writes of
// [Engine.Close] in all (default [CloseSnapshotTimeout], 10 s). Both are
// 1ms to one hour. A caller's command is bounded by its own context only
// (and by the store's timeouts for a context without a deadline, e.g.
// natsstore.WithRequestTimeout): see docs/errors.md.
func WithBackgroundTimeouts(write, onClose time.Duration) Option {
	return func(c *config) error {
		if write < time.Millisecond || write > time.Hour || onClose < time.Millisecond || onClose > time.Hour {
			return errors.New("stage: WithBackgroundTimeouts: timeouts must be 1ms to 1h")
		}
		c.writeTimeout, c.closeTimeout = write, onClose
		return nil
	}
}
