package stage

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
)

// checkpointer collects the heads of the meetings the engine appended to
// and writes them, signed, every interval and on Close.
type checkpointer struct {
	e     *Engine
	mu    sync.Mutex
	heads map[string]checkpoint.Checkpoint // appended to since the last write
	stop  chan struct{}
	done  chan struct{}
}

func newCheckpointer(e *Engine) *checkpointer {
	c := &checkpointer{e: e, heads: map[string]checkpoint.Checkpoint{}, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// note records a meeting's head after an append: O(1), on the command's path.
func (c *checkpointer) note(meetingID string, version uint64, hash events.Hash) {
	c.mu.Lock()
	if old, ok := c.heads[meetingID]; !ok || old.Version < version {
		c.heads[meetingID] = checkpoint.Checkpoint{MeetingID: meetingID, Version: version, Hash: hash}
	}
	c.mu.Unlock()
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(c.e.cfg.checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.flush()
		case <-c.stop:
			return
		}
	}
}

// close stops the ticker and writes what is left.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.flush()
}

// flush signs and writes the heads collected since the last write. Heads
// that could not be written are kept for the next one.
func (c *checkpointer) flush() error {
	c.mu.Lock()
	heads := c.heads
	c.heads = map[string]checkpoint.Checkpoint{}
	c.mu.Unlock()
	if len(heads) == 0 {
		return nil
	}
	cfg := &c.e.cfg
	now := cfg.clock().UTC()
	ids := slices.Sorted(maps.Keys(heads))
	cps := make([]checkpoint.Signed, 0, len(ids))
	for _, id := range ids {
		h := heads[id]
		h.Time = now
		s, err := checkpoint.Sign(cfg.signingKey, h)
		if err != nil { // cannot happen: the key and the head were checked
			cfg.logger.Error("stage: checkpoint not signed", "meeting", id, "err", err)
			continue
		}
		cps = append(cps, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.writeTimeout)
	defer cancel()
	var errs []error
	for _, sink := range cfg.checkpointSinks {
		if err := sink.WriteCheckpoints(ctx, cps); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		cfg.logger.Warn("stage: checkpoints not written; retrying at the next interval", "meetings", len(cps), "err", err)
		c.mu.Lock()
		for id, h := range heads {
			if cur, ok := c.heads[id]; !ok || cur.Version < h.Version {
				c.heads[id] = h
			}
		}
		c.mu.Unlock()
	} else {
		cfg.logger.Debug("stage: checkpoints written", "meetings", len(cps))
	}
	return err
}
