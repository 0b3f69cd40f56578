package natsstore

// This file keeps the high-water marks: what the store has seen stored,
// recorded outside the stream, so that a stream that shrinks or starts
// late (a server that lost data on disk and dropped it on recovery) is
// noticed instead of served and appended to as if nothing happened.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// DefaultMarkInterval is how often, at most, a Store writes its high-water
// marks after appends (see [WithMarkInterval]): the window of acknowledged
// events a crash can lose unnoticed by the marks, against one mark write
// per busy meeting per interval.
const DefaultMarkInterval = time.Second

// MarksBucket returns the name of the KV bucket that holds the high-water
// marks and recovery records of stream: the stream's name as in
// [SnapshotBucket], and "_MARKS".
func MarksBucket(stream string) string { return bucketName(stream, "_MARKS") }

// Keys of the marks bucket.
const (
	streamMarkKey  = "stream"
	meetingMarkPfx = "m."
	recoveryPfx    = "r."
)

// meetingMarkKey is the marks bucket key of a meeting: "m." and its
// snapshot key.
func meetingMarkKey(meetingID string) string { return meetingMarkPfx + meetingKey(meetingID) }

// streamMark is the stream's high-water mark: the last sequence the stores
// have seen, and the baseline of its first sequence and deleted count
// (1 and 0 unless an operator accepted a loss).
type streamMark struct {
	First   uint64 `json:"first"`
	Last    uint64 `json:"last"`
	Deleted uint64 `json:"deleted"`
}

// meetingMark is a meeting's high-water mark: its last event a store saw
// stored, and the key of the last recovery that set it, if any.
type meetingMark struct {
	Meeting  string      `json:"meeting"`
	Version  uint64      `json:"version"`
	Seq      uint64      `json:"seq"`
	Hash     events.Hash `json:"hash"`
	Recovery string      `json:"recovery,omitempty"`
}

// provisionMarks creates the marks bucket (no TTL, one value per key, the
// stream's storage and replicas), or opens it if it exists.
func (s *Store) provisionMarks(ctx context.Context) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	name := MarksBucket(s.cfg.stream)
	kv, err := s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      name,
		Description: "productdb/stage high-water marks and recovery records of stream " + s.cfg.stream + ": what the stores saw stored",
		History:     1,
		Storage:     s.cfg.storage,
		Replicas:    s.cfg.replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = s.js.KeyValue(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("natsstore: marks bucket %s: %w", name, err)
	}
	s.hw = &watermarks{s: s, kv: kv, interval: s.cfg.markInterval, dirty: map[string]meetingMark{},
		revs: map[string]stored{}, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	return nil
}

// getKV reads key of the marks bucket from its stream's leader (a direct
// get may reach a replica that lags), into v. It reports false, with no
// error, for a key that has no value.
func (s *Store) getKV(ctx context.Context, key string, v any) (bool, error) {
	bucket := MarksBucket(s.cfg.stream)
	msg, err := s.leaderGet(ctx, "KV_"+bucket, msgGet{LastBySubject: "$KV." + bucket + "." + key})
	if err != nil {
		return false, fmt.Errorf("natsstore: marks bucket %s, key %s: %w", bucket, key, err)
	}
	if msg == nil || len(msg.Data) == 0 { // none, or deleted
		return false, nil
	}
	if err := json.Unmarshal(msg.Data, v); err != nil {
		return false, fmt.Errorf("%w: marks bucket %s, key %s: %w", eventstore.ErrCorrupt, bucket, key, err)
	}
	return true, nil
}

func (s *Store) getMeetingMark(ctx context.Context, meetingID string) (meetingMark, bool, error) {
	var m meetingMark
	ok, err := s.getKV(ctx, meetingMarkKey(meetingID), &m)
	if ok && m.Meeting != meetingID {
		return m, false, fmt.Errorf("%w: marks bucket %s: the mark of meeting %q names meeting %q", eventstore.ErrCorrupt, MarksBucket(s.cfg.stream), meetingID, m.Meeting)
	}
	return m, ok, err
}

// compareMark says what the meeting lost, if anything, given its mark and
// its last event on the stream now (found false: it has none).
func compareMark(m meetingMark, last events.Envelope, found bool) *eventstore.HistoryLostError {
	if m.Version == 0 {
		return nil
	}
	lost := &eventstore.HistoryLostError{MeetingID: m.Meeting, SeenVersion: m.Version, SeenSeq: m.Seq, SeenHash: m.Hash}
	if found {
		lost.HaveVersion, lost.HaveSeq = last.Version, last.Seq
	}
	switch {
	case !found:
		lost.Reason = fmt.Sprintf("the meeting has no events left: versions 1 to %d are gone", m.Version)
	case last.Version < m.Version:
		lost.Reason = fmt.Sprintf("versions %d to %d are gone", last.Version+1, m.Version)
	case last.Version == m.Version && (last.Hash != m.Hash || last.Seq != m.Seq):
		lost.Reason = fmt.Sprintf("version %d is not the event recorded (hash %s at sequence %d): the stream holds hash %s at sequence %d",
			m.Version, m.Hash, m.Seq, last.Hash, last.Seq)
	case last.Version > m.Version && last.Seq <= m.Seq:
		lost.Reason = fmt.Sprintf("version %d was recorded at sequence %d, yet the later version %d is at sequence %d: events were lost and written again",
			m.Version, m.Seq, last.Version, last.Seq)
	default:
		return nil
	}
	return lost
}

// noteLoss remembers that the meeting lost history (Append refuses it from
// now on) and logs it, once.
func (s *Store) noteLoss(ctx context.Context, lost *eventstore.HistoryLostError, recovery string) {
	s.mu.Lock()
	if s.lost == nil {
		s.lost = map[string]lostMeeting{}
	}
	_, known := s.lost[lost.MeetingID]
	s.lost[lost.MeetingID] = lostMeeting{err: lost, recovery: recovery}
	s.nlost.Store(int32(len(s.lost)))
	s.mu.Unlock()
	if !known {
		s.cfg.logger.ErrorContext(ctx, "natsstore: history lost; appends to the meeting are refused until an operator accepts the loss",
			"stream", s.cfg.stream, "meeting", lost.MeetingID, "seen_version", lost.SeenVersion, "seen_seq", lost.SeenSeq,
			"have_version", lost.HaveVersion, "have_seq", lost.HaveSeq, "reason", lost.Reason)
	}
}

// lostMeeting is a meeting known to have lost history, and the recovery
// key its mark had when the loss was found.
type lostMeeting struct {
	err      *eventstore.HistoryLostError
	recovery string
}

// checkLost returns the loss of a meeting that Append must refuse, or nil.
// A loss found earlier is looked at again (one read of the mark) in case
// an operator has accepted it since, through another Store.
func (s *Store) checkLost(ctx context.Context, meetingID string) error {
	if s.nlost.Load() == 0 {
		return nil
	}
	s.mu.Lock()
	l, ok := s.lost[meetingID]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	m, found, err := s.getMeetingMark(ctx, meetingID)
	if err != nil || !found || m.Recovery == l.recovery {
		return l.err
	}
	// A recovery since: the loss is accepted if the mark now agrees
	// with the stream.
	prev, _ := s.getHead(meetingID)
	h, last, ok, err := s.lastRaw(ctx, meetingID)
	if err != nil {
		return err
	}
	if lost := compareMark(m, last, ok); lost != nil || prev.seq > h.seq {
		return l.err
	}
	s.mu.Lock()
	delete(s.lost, meetingID)
	s.nlost.Store(int32(len(s.lost)))
	s.mu.Unlock()
	s.setHead(meetingID, h)
	return nil
}

// watermarks writes the store's high-water marks to the marks bucket:
// after appends, the marks of the meetings appended to and then the
// stream's, coalesced, at most every interval (or before Append returns,
// with interval 0).
type watermarks struct {
	s        *Store
	kv       jetstream.KeyValue
	interval time.Duration

	mu      sync.Mutex
	dirty   map[string]meetingMark // meeting -> its last event stored, not yet written
	last    uint64                 // the highest stream sequence stored, not yet written
	revs    map[string]stored      // key -> its value and revision when this store last wrote or read it
	started bool

	wmu  sync.Mutex // one writer at a time
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// note records an append's last event; in the background mode it wakes the
// flusher. It is the only work the marks add to an append.
func (w *watermarks) note(m meetingMark) {
	w.mu.Lock()
	if old, ok := w.dirty[m.Meeting]; !ok || old.Seq < m.Seq {
		w.dirty[m.Meeting] = m
	}
	w.last = max(w.last, m.Seq)
	if !w.started && w.interval > 0 {
		w.started = true
		go w.run()
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run flushes after appends, at most every interval, until close.
func (w *watermarks) run() {
	defer close(w.done)
	for {
		select {
		case <-w.kick:
		case <-w.stop:
			return
		}
		w.flushLogged()
		t := time.NewTimer(w.interval)
		select {
		case <-t.C:
		case <-w.stop:
			t.Stop()
			return
		}
	}
}

func (w *watermarks) flushLogged() {
	ctx, cancel := context.WithTimeout(context.Background(), w.s.cfg.requestTimeout)
	defer cancel()
	if err := w.flush(ctx); err != nil {
		w.s.cfg.logger.WarnContext(ctx, "natsstore: writing high-water marks failed; retried after the next append or on Close",
			"stream", w.s.cfg.stream, "err", err)
	}
}

// close stops the flusher and writes what is left.
func (w *watermarks) close() error {
	w.mu.Lock()
	started := w.started
	w.started = true // no flusher starts from now on
	w.mu.Unlock()
	close(w.stop)
	if started && w.interval > 0 {
		<-w.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.s.cfg.requestTimeout)
	defer cancel()
	return w.flush(ctx)
}

// flush writes the dirty meetings' marks, then the stream's. What fails
// stays dirty, for the next flush.
func (w *watermarks) flush(ctx context.Context) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	dirty, last := w.dirty, w.last
	if len(dirty) == 0 && last == 0 {
		w.mu.Unlock()
		return nil
	}
	w.dirty, w.last = map[string]meetingMark{}, 0
	w.mu.Unlock()
	var errs []error
	failed := map[string]meetingMark{}
	for id, m := range dirty {
		if err := w.raiseMeeting(ctx, m); err != nil {
			errs = append(errs, err)
			failed[id] = m
		}
	}
	if len(failed) == 0 { // the stream's mark only once its meetings' are written
		if err := w.raiseStream(ctx, last); err != nil {
			errs = append(errs, err)
		} else {
			last = 0
		}
	}
	if len(failed) > 0 || last > 0 {
		w.mu.Lock()
		for id, m := range failed {
			if old, ok := w.dirty[id]; !ok || old.Seq < m.Seq {
				w.dirty[id] = m
			}
		}
		w.last = max(w.last, last)
		w.mu.Unlock()
	}
	return errors.Join(errs...)
}

// maxTries bounds the compare-and-set rounds of one mark write: each lost
// round means another store wrote the key meanwhile.
const maxTries = 8

// raise writes key's value from next unless the bucket holds one that
// higher says is at least as high, with a compare-and-set on the key's
// revision, so that marks never go down (stores on one stream may write
// one key concurrently).
func raise[T any](ctx context.Context, w *watermarks, key string, next T, higher func(cur, next T) T) error {
	for try := 0; try < maxTries; try++ {
		w.mu.Lock()
		c, known := w.revs[key]
		w.mu.Unlock()
		if !known {
			e, err := w.kv.Get(ctx, key)
			switch {
			case noLeaderYet(err) && try < maxTries-1:
				if werr := sleepCtx(ctx, time.Duration(try+1)*25*time.Millisecond); werr != nil {
					return fmt.Errorf("natsstore: mark %s: %w", key, err)
				}
				continue
			case errors.Is(err, jetstream.ErrKeyNotFound):
			case err != nil:
				return fmt.Errorf("natsstore: mark %s: %w", key, err)
			default:
				c = stored{rev: e.Revision(), val: e.Value()}
			}
		}
		val := next
		if len(c.val) > 0 {
			var cur T
			if err := json.Unmarshal(c.val, &cur); err != nil {
				return fmt.Errorf("%w: mark %s: %w", eventstore.ErrCorrupt, key, err)
			}
			val = higher(cur, next)
		}
		data, err := json.Marshal(val)
		if err != nil {
			return err
		}
		if c.rev > 0 && string(data) == string(c.val) {
			return nil // as high already
		}
		var rev uint64
		if c.rev == 0 {
			rev, err = w.kv.Create(ctx, key, data)
		} else {
			rev, err = w.kv.Update(ctx, key, data, c.rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSequence(err) {
			w.mu.Lock()
			delete(w.revs, key) // another store wrote it: read it again
			w.mu.Unlock()
			continue
		}
		if noLeaderYet(err) && try < maxTries-1 {
			// A bucket just created on a cluster elects its leader: wait.
			if werr := sleepCtx(ctx, time.Duration(try+1)*25*time.Millisecond); werr != nil {
				return fmt.Errorf("natsstore: mark %s: %w", key, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("natsstore: mark %s: %w", key, err)
		}
		w.setRev(key, stored{rev: rev, val: data})
		return nil
	}
	return fmt.Errorf("natsstore: mark %s: still contended after %d tries", key, maxTries)
}

// stored is a key's value as this store last wrote or read it, and its
// revision.
type stored struct {
	rev uint64
	val []byte
}

func (w *watermarks) setRev(key string, c stored) {
	w.mu.Lock()
	if len(w.revs) >= maxHeads {
		clear(w.revs)
	}
	w.revs[key] = c
	w.mu.Unlock()
}

func (w *watermarks) raiseMeeting(ctx context.Context, m meetingMark) error {
	return raise(ctx, w, meetingMarkKey(m.Meeting), m, func(cur, next meetingMark) meetingMark {
		if cur.Version >= next.Version {
			return cur
		}
		next.Recovery = cur.Recovery
		return next
	})
}

func (w *watermarks) raiseStream(ctx context.Context, last uint64) error {
	return raise(ctx, w, streamMarkKey, streamMark{First: 1, Last: last}, func(cur, next streamMark) streamMark {
		cur.Last = max(cur.Last, next.Last)
		return cur
	})
}

// put writes key's value whatever the bucket holds (a recovery lowering a
// mark).
func (w *watermarks) put(ctx context.Context, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	rev, err := w.kv.Put(ctx, key, data)
	if err != nil {
		return fmt.Errorf("natsstore: mark %s: %w", key, err)
	}
	w.setRev(key, stored{rev: rev, val: data})
	return nil
}

// noLeaderYet reports an error of a request that no server answered: a
// stream (a bucket) on a cluster with no leader yet.
func noLeaderYet(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// sleepCtx waits d, or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
