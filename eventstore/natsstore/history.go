package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// HistoryReport is what [CheckHistory] (and [New], see [Store.History])
// found comparing a stream with the high-water marks the stores recorded.
type HistoryReport struct {
	// Stream is the stream's name.
	Stream string
	// FirstSeq, LastSeq, Msgs and NumDeleted are the stream's state as
	// the check read it.
	FirstSeq, LastSeq, Msgs, NumDeleted uint64
	// MaxAge is the stream's max age (0: it keeps events forever, so its
	// first sequence must stay at its baseline).
	MaxAge time.Duration
	// Marked says whether the marks bucket ([MarksBucket]) held the
	// stream's mark; without it only a late start or a hole can be seen,
	// not a lost tail.
	Marked bool
	// MarkFirst, MarkLast and MarkDeleted are the stream's mark: the
	// first sequence and deleted count it is known to have (1 and 0
	// unless an operator accepted a loss) and the last sequence the
	// stores saw stored.
	MarkFirst, MarkLast, MarkDeleted uint64
	// StreamLoss is the damage seen in the stream's state (it starts
	// late, has holes, or ends before the mark), or nil. Only when it is
	// set are the meetings looked at one by one.
	StreamLoss *eventstore.HistoryLostError
	// Meetings are the meetings that lost history, by meeting id.
	Meetings []*eventstore.HistoryLostError
	// Scanned says whether the whole stream was read to find meetings
	// with missing versions.
	Scanned bool

	recovery map[string]string // meeting -> the recovery key its mark had
}

// Lost reports whether the check found any loss.
func (r *HistoryReport) Lost() bool { return r.StreamLoss != nil || len(r.Meetings) > 0 }

// Meeting returns the loss of meetingID, or nil.
func (r *HistoryReport) Meeting(meetingID string) *eventstore.HistoryLostError {
	for _, m := range r.Meetings {
		if m.MeetingID == meetingID {
			return m
		}
	}
	return nil
}

// CheckHistory compares the stream (of events on subjects "<prefix>.>")
// with the high-water marks in its bucket [MarksBucket], reading only:
// it creates and writes nothing, and needs no [Store] (the replay tool
// calls it on a data directory or a URL). It returns:
//
//   - an error (and no report) for bad arguments (wrapping
//     [ErrInvalidOption]), a stream that does not exist (wrapping
//     jetstream.ErrStreamNotFound), or a read that failed;
//   - otherwise a report with the stream's state and mark. Its StreamLoss
//     is set when the stream starts after its baseline first sequence
//     while its max age is 0, has more missing (deleted) messages than
//     its baseline, or ends before the last sequence the stores saw; its
//     Meetings then list each meeting that lost events: its mark points
//     past what the stream holds of it, its versions have a gap or do
//     not start at 1 (a scan of the whole stream), or its snapshot covers
//     a version the stream no longer holds. A report with Lost() false
//     means nothing that the marks recorded is missing; events stored
//     after the last mark was written (within the mark interval before a
//     crash) are not covered. Without a marks bucket (a store older than
//     the marks) Marked is false and only a late start or holes are seen.
//
// Corrupt events (that do not decode or match their hash) are not its
// business: replay's verify reports them.
func CheckHistory(ctx context.Context, js jetstream.JetStream, stream, prefix string) (*HistoryReport, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: CheckHistory: nil JetStream", ErrInvalidOption)
	}
	s, err := readerOf(js, stream, prefix)
	if err != nil {
		return nil, err
	}
	rctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := js.Stream(rctx, stream); err != nil {
		return nil, fmt.Errorf("natsstore: check history: stream %s: %w", stream, err)
	}
	marks, err := js.KeyValue(rctx, MarksBucket(stream))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		marks, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("natsstore: check history: %w", err)
	}
	snaps, err := js.KeyValue(rctx, SnapshotBucket(stream))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		snaps, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("natsstore: check history: %w", err)
	}
	return s.checkHistory(ctx, marks, snaps)
}

// checkHistory is CheckHistory on s's stream, with the marks and snapshot
// buckets (each may be nil).
func (s *Store) checkHistory(ctx context.Context, marks, snaps jetstream.KeyValue) (*HistoryReport, error) {
	r := &HistoryReport{Stream: s.cfg.stream, MarkFirst: 1, recovery: map[string]string{}}
	rctx, cancel := s.withTimeout(ctx)
	defer cancel()
	// The mark first, the stream after: the mark never passes what the
	// stream held when the mark was read, unless the stream lost it.
	if marks != nil {
		var sm streamMark
		ok, err := s.getKV(rctx, streamMarkKey, &sm)
		if err != nil {
			return nil, err
		}
		if ok {
			r.Marked = true
			r.MarkFirst, r.MarkLast, r.MarkDeleted = max(sm.First, 1), sm.Last, sm.Deleted
		}
	}
	st, err := s.js.Stream(rctx, s.cfg.stream)
	if err != nil {
		return nil, fmt.Errorf("natsstore: stream %s: %w", s.cfg.stream, err)
	}
	info := st.CachedInfo()
	state := info.State
	r.FirstSeq, r.LastSeq, r.Msgs, r.NumDeleted, r.MaxAge = state.FirstSeq, state.LastSeq, state.Msgs, uint64(state.NumDeleted), info.Config.MaxAge

	var why []string
	if r.MaxAge == 0 && r.FirstSeq > r.MarkFirst && (r.Msgs > 0 || r.LastSeq > 0) {
		why = append(why, fmt.Sprintf("the stream starts at sequence %d, not %d, though it keeps events forever and denies deletes and purges: sequences %d to %d are gone",
			r.FirstSeq, r.MarkFirst, r.MarkFirst, r.FirstSeq-1))
	}
	if r.NumDeleted > r.MarkDeleted {
		why = append(why, fmt.Sprintf("%s missing inside the stream, though it denies deletes", plural(r.NumDeleted-r.MarkDeleted, "message")))
	}
	if r.Marked && r.LastSeq < r.MarkLast {
		why = append(why, fmt.Sprintf("the stream ends at sequence %d, but sequence %d was stored: sequences %d to %d are gone",
			r.LastSeq, r.MarkLast, r.LastSeq+1, r.MarkLast))
	}
	if len(why) == 0 {
		return r, nil
	}
	r.StreamLoss = &eventstore.HistoryLostError{SeenSeq: r.MarkLast, HaveSeq: r.LastSeq, Reason: strings.Join(why, "; ")}

	found := map[string]*eventstore.HistoryLostError{}
	// Each meeting's mark against the meeting's last event now.
	mm := map[string]meetingMark{}
	if marks != nil {
		err := watchAll(ctx, marks, meetingMarkPfx+">", func(key string, v []byte) error {
			var m meetingMark
			if err := json.Unmarshal(v, &m); err != nil || m.Meeting == "" || meetingMarkKey(m.Meeting) != key {
				s.cfg.logger.WarnContext(ctx, "natsstore: unreadable meeting mark", "bucket", MarksBucket(s.cfg.stream), "key", key, "err", err)
				return nil
			}
			mm[m.Meeting] = m
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, id := range sortedKeys(mm) {
		m := mm[id]
		r.recovery[id] = m.Recovery
		_, last, ok, err := s.lastRaw(ctx, id)
		if err != nil {
			return nil, err
		}
		if lost := compareMark(m, last, ok); lost != nil {
			found[id] = lost
		}
	}
	// accepted: a loss at or before sequence seq of a meeting whose mark a
	// recovery set at or after it was accepted then.
	accepted := func(id string, seq uint64) bool {
		m, ok := mm[id]
		return ok && m.Recovery != "" && seq <= m.Seq
	}
	// The whole stream: meetings whose versions do not start at 1 or have
	// a gap.
	if r.Msgs > 0 && r.LastSeq >= r.FirstSeq {
		r.Scanned = true
		type track struct {
			version, seq uint64
			hash         events.Hash
		}
		seen := map[string]*track{}
		// The stream's last messages may be the missing ones: a read that
		// ends early ends the scan (the marks cover the tail).
		err := s.scanPatient(ctx, "", r.FirstSeq, r.LastSeq, time.Second, func(seq uint64, subject string, data []byte) (bool, error) {
			id, ok := MeetingOfSubject(s.cfg.prefix, subject)
			e, err := events.Unmarshal(data)
			if !ok || err != nil || e.MeetingID != id {
				return true, nil // corrupt: verify's business
			}
			t := seen[id]
			var gap string
			switch {
			case t == nil && e.Version != 1:
				gap = fmt.Sprintf("its first event in the stream is version %d (sequence %d): versions 1 to %d are gone", e.Version, seq, e.Version-1)
			case t != nil && e.Version > t.version+1:
				gap = fmt.Sprintf("version %d (sequence %d) follows version %d (sequence %d): versions %d to %d are gone",
					e.Version, seq, t.version, t.seq, t.version+1, e.Version-1)
			case t != nil && e.Version <= t.version:
				gap = fmt.Sprintf("version %d again at sequence %d, after version %d at sequence %d: events were lost and written again",
					e.Version, seq, t.version, t.seq)
			}
			if gap != "" && found[id] == nil && !accepted(id, seq) {
				lost := &eventstore.HistoryLostError{MeetingID: id, Reason: gap}
				if m, ok := mm[id]; ok {
					lost.SeenVersion, lost.SeenSeq, lost.SeenHash = m.Version, m.Seq, m.Hash
				}
				found[id] = lost
			}
			if t == nil {
				t = &track{}
				seen[id] = t
			}
			t.version, t.seq, t.hash = e.Version, seq, e.Hash
			return true, nil
		})
		if err != nil && !errors.Is(err, errIncomplete) {
			return nil, err
		}
		for id, lost := range found {
			if t := seen[id]; t != nil && lost.HaveSeq == 0 {
				lost.HaveVersion, lost.HaveSeq = t.version, t.seq
				if lost.SeenSeq == 0 {
					lost.SeenVersion, lost.SeenSeq, lost.SeenHash = t.version, t.seq, t.hash
				}
			}
		}
	}
	// Snapshots that cover events the stream no longer holds.
	if snaps != nil {
		err := watchAll(ctx, snaps, ">", func(key string, v []byte) error {
			id, ok := meetingOfKey(key)
			if !ok || found[id] != nil || events.ValidateID(id) != nil {
				return nil
			}
			snap, err := parseSnapshot(v)
			if err != nil || snap.Version == 0 || accepted(id, snap.Seq) {
				return nil
			}
			_, last, have, err := s.lastRaw(ctx, id)
			if err != nil {
				return err
			}
			if have && (last.Version > snap.Version || last.Version == snap.Version && last.Hash == snap.Hash) {
				return nil
			}
			lost := &eventstore.HistoryLostError{MeetingID: id, SeenVersion: snap.Version, SeenSeq: snap.Seq, SeenHash: snap.Hash,
				Reason: fmt.Sprintf("its snapshot covers version %d (sequence %d, hash %s), which the stream no longer holds", snap.Version, snap.Seq, snap.Hash)}
			if have {
				lost.HaveVersion, lost.HaveSeq = last.Version, last.Seq
			}
			found[id] = lost
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, id := range sortedKeys(found) {
		r.Meetings = append(r.Meetings, found[id])
	}
	return r, nil
}

// watchAll calls f with the key and value of each live entry of kv whose
// key matches filter.
func watchAll(ctx context.Context, kv jetstream.KeyValue, filter string, f func(key string, v []byte) error) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("natsstore: read bucket %s: %w", kv.Bucket(), err)
	}
	defer w.Stop()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("natsstore: read bucket %s: watcher stopped", kv.Bucket())
			}
			if e == nil { // the initial values are done
				return nil
			}
			if err := f(e.Key(), e.Value()); err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("natsstore: read bucket %s: %w", kv.Bucket(), ctx.Err())
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// CheckMeeting compares one meeting's high-water mark with its last event
// on the stream, reading only, as a Store does when it first reads the
// meeting: it returns the meeting's loss (the mark points past what the
// stream holds of it, or names another event at its version), nil when
// the mark is not past the stream or there is no mark, or an error (bad
// arguments wrap [ErrInvalidOption] or events.ErrInvalidID; a missing
// stream wraps jetstream.ErrStreamNotFound). A hole inside the meeting's
// history is not its business: [CheckHistory] finds those.
func CheckMeeting(ctx context.Context, js jetstream.JetStream, stream, prefix, meetingID string) (*eventstore.HistoryLostError, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: CheckMeeting: nil JetStream", ErrInvalidOption)
	}
	if err := events.ValidateID(meetingID); err != nil {
		return nil, fmt.Errorf("natsstore: check meeting: %w", err)
	}
	s, err := readerOf(js, stream, prefix)
	if err != nil {
		return nil, err
	}
	rctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if _, err := js.Stream(rctx, stream); err != nil {
		return nil, fmt.Errorf("natsstore: check meeting: stream %s: %w", stream, err)
	}
	m, marked, err := s.getMeetingMark(rctx, meetingID)
	if err != nil || !marked {
		return nil, err
	}
	_, last, found, err := s.lastRaw(rctx, meetingID)
	if err != nil {
		return nil, err
	}
	return compareMark(m, last, found), nil
}

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what + " is"
	}
	return fmt.Sprintf("%d %ss are", n, what)
}

// readerOf is a Store for reading only, without provisioning: the stream
// and prefix checked as the options check them.
func readerOf(js jetstream.JetStream, stream, prefix string) (*Store, error) {
	cfg := defaultConfig()
	for _, o := range []Option{WithStream(stream), WithSubjectPrefix(prefix)} {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	return &Store{nc: js.Conn(), js: js, cfg: cfg, heads: map[string]head{}}, nil
}
