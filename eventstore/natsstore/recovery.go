package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// ErrNothingLost is returned (wrapped) by [Store.AcceptLoss] for a meeting
// (or stream) that has lost nothing: there is no loss to accept.
var ErrNothingLost = errors.New("natsstore: no lost history to accept")

// ErrInvalidRecovery is returned (wrapped) by [Store.AcceptLoss] for a bad
// argument: a bad meeting id, or no operator or reason.
var ErrInvalidRecovery = errors.New("natsstore: invalid recovery")

// maxRecoveryText bounds an operator's name and reason.
const maxRecoveryText = 4096

// Recovery is the record of a loss an operator accepted: who, why, when,
// and what was lost. [Store.AcceptLoss] writes it to the bucket
// [MarksBucket] under its own key ("r." and the time in nanoseconds),
// never overwritten; [Store.Recoveries] and [ReadRecoveries] list them.
type Recovery struct {
	// Key is the record's key in the marks bucket.
	Key string `json:"key"`
	// Stream is the stream's name.
	Stream string `json:"stream"`
	// MeetingID is the meeting whose loss was accepted, or "" for a loss
	// of the stream that named no meeting.
	MeetingID string `json:"meeting,omitempty"`
	// Operator and Reason are as the operator gave them.
	Operator string `json:"operator"`
	Reason   string `json:"reason"`
	// Time is when the loss was accepted.
	Time time.Time `json:"time"`
	// SeenVersion, SeenSeq and SeenHash are the high-water mark before:
	// the last event the stores saw stored (for the stream: SeenSeq only).
	SeenVersion uint64      `json:"seen_version,omitempty"`
	SeenSeq     uint64      `json:"seen_seq"`
	SeenHash    events.Hash `json:"seen_hash"`
	// HaveVersion and HaveSeq are what remained, where the mark now is.
	HaveVersion uint64 `json:"have_version,omitempty"`
	HaveSeq     uint64 `json:"have_seq"`
	// Lost says what was missing (the loss's reason).
	Lost string `json:"lost"`
	// Stream's state when the loss was accepted, and whether its mark was
	// set to it (the last loss of a damaged stream accepted).
	StreamFirst   uint64 `json:"stream_first"`
	StreamLast    uint64 `json:"stream_last"`
	StreamDeleted uint64 `json:"stream_deleted"`
	StreamRebased bool   `json:"stream_rebased"`
}

// startHistory runs the check of New: it records the losses found, logs
// them, and raises the stream's mark to the stream's last sequence.
func (s *Store) startHistory(ctx context.Context) error {
	r, err := s.checkHistory(ctx, s.hw.kv, s.snaps)
	if err != nil {
		return fmt.Errorf("natsstore: checking the stream's history: %w", err)
	}
	s.mu.Lock()
	s.report = r
	s.mu.Unlock()
	if r.StreamLoss != nil {
		s.cfg.logger.ErrorContext(ctx, "natsstore: the stream lost history", "stream", s.cfg.stream,
			"first", r.FirstSeq, "last", r.LastSeq, "deleted", r.NumDeleted, "mark_last", r.MarkLast, "meetings", len(r.Meetings),
			"reason", r.StreamLoss.Reason)
	}
	for _, l := range r.Meetings {
		s.noteLoss(ctx, l, r.recovery[l.MeetingID])
	}
	if !r.Marked || r.LastSeq > r.MarkLast {
		rctx, cancel := s.withTimeout(ctx)
		defer cancel()
		if err := s.hw.raiseStream(rctx, r.LastSeq); err != nil {
			return fmt.Errorf("natsstore: writing the stream's high-water mark: %w", err)
		}
	}
	return nil
}

// History returns what New found comparing the stream with its high-water
// marks (see [CheckHistory]), less the losses accepted since through this
// Store. It reports no meeting found lost later, at run time.
func (s *Store) History() HistoryReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := *s.report
	r.Meetings = slices.Clone(r.Meetings)
	r.recovery = nil
	return r
}

// Lost returns the meetings this Store knows to have lost history (found
// by New or since), whose appends it refuses, by meeting id.
func (s *Store) Lost() []*eventstore.HistoryLostError {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*eventstore.HistoryLostError, 0, len(s.lost))
	for _, id := range sortedKeys(s.lost) {
		out = append(out, s.lost[id].err)
	}
	return out
}

func checkText(what, v string) error {
	switch {
	case strings.TrimSpace(v) == "":
		return fmt.Errorf("%w: no %s", ErrInvalidRecovery, what)
	case len(v) > maxRecoveryText:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidRecovery, what, maxRecoveryText)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: %s is not UTF-8", ErrInvalidRecovery, what)
	}
	return nil
}

// AcceptLoss is the operator's way out of a loss: it accepts that
// meetingID lost the history the store reports (an
// [*eventstore.HistoryLostError]), on the record. In order, it writes a
// [Recovery] (operator, reason, time, the mark before and what remains)
// under its own key in the bucket [MarksBucket], never overwritten; logs
// it; lowers the meeting's mark to the meeting's last event now (so
// appends resume on what remains) and drops the meeting's snapshot, which
// may cover lost events. When that was the last lost meeting of a stream
// found damaged, the stream's mark is set to the stream's state too.
// meetingID "" accepts a loss of the stream that names no meeting (only
// once every lost meeting is accepted).
//
// The lost events are not brought back: Load serves what remains, and a
// meeting with a hole inside its history still fails at the hole. Errors:
// [ErrInvalidRecovery] for bad arguments, [ErrNothingLost] when there is
// no loss to accept, else the bucket's or stream's error (if the record
// was written but the mark not, call again: a second record is written).
func (s *Store) AcceptLoss(ctx context.Context, meetingID, operator, reason string) (Recovery, error) {
	if err := s.readable(ctx); err != nil {
		return Recovery{}, err
	}
	if meetingID != "" {
		if err := events.ValidateID(meetingID); err != nil {
			return Recovery{}, fmt.Errorf("%w: %w", ErrInvalidRecovery, err)
		}
	}
	if err := checkText("operator", operator); err != nil {
		return Recovery{}, err
	}
	if err := checkText("reason", reason); err != nil {
		return Recovery{}, err
	}
	s.recMu.Lock()
	defer s.recMu.Unlock()
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.hw.flush(ctx); err != nil {
		return Recovery{}, fmt.Errorf("natsstore: accept loss: %w", err)
	}
	if meetingID == "" {
		return s.acceptStreamLoss(ctx, operator, reason)
	}

	mark, marked, err := s.getMeetingMark(ctx, meetingID)
	if err != nil {
		return Recovery{}, err
	}
	h, last, found, err := s.lastRaw(ctx, meetingID)
	if err != nil {
		return Recovery{}, err
	}
	var lost *eventstore.HistoryLostError
	if marked {
		lost = compareMark(mark, last, found)
	}
	s.mu.Lock()
	known, isKnown := s.lost[meetingID]
	others := len(s.lost)
	if isKnown {
		others--
	}
	streamLoss := s.report.StreamLoss != nil
	s.mu.Unlock()
	if lost == nil && isKnown {
		l := *known.err
		l.HaveVersion, l.HaveSeq = h.version, h.seq
		lost = &l
	}
	if lost == nil {
		return Recovery{}, fmt.Errorf("%w: meeting %s is at version %d (sequence %d), its mark at version %d", ErrNothingLost, meetingID, h.version, h.seq, mark.Version)
	}
	rec := Recovery{Stream: s.cfg.stream, MeetingID: meetingID, Operator: operator, Reason: reason,
		SeenVersion: lost.SeenVersion, SeenSeq: lost.SeenSeq, SeenHash: lost.SeenHash,
		HaveVersion: h.version, HaveSeq: h.seq, Lost: lost.Reason}
	rebase := others == 0 && streamLoss
	if err := s.fillStream(ctx, &rec, rebase); err != nil {
		return Recovery{}, err
	}
	if err := s.writeRecovery(ctx, &rec); err != nil {
		return Recovery{}, err
	}
	lowered := meetingMark{Meeting: meetingID, Version: h.version, Seq: h.seq, Recovery: rec.Key}
	if found {
		lowered.Hash = last.Hash
	}
	if err := s.hw.put(ctx, meetingMarkKey(meetingID), lowered); err != nil {
		return rec, fmt.Errorf("natsstore: accept loss: recorded as %s, but the meeting's mark was not lowered: %w", rec.Key, err)
	}
	if err := s.deleteSnapshot(ctx, meetingID); err != nil {
		s.cfg.logger.WarnContext(ctx, "natsstore: accept loss: the meeting's snapshot was not dropped; the engine checks it against the log", "meeting", meetingID, "err", err)
	}
	s.mu.Lock()
	delete(s.lost, meetingID)
	s.nlost.Store(int32(len(s.lost)))
	s.heads[meetingID] = h
	if i := slices.IndexFunc(s.report.Meetings, func(l *eventstore.HistoryLostError) bool { return l.MeetingID == meetingID }); i >= 0 {
		s.report.Meetings = slices.Delete(slices.Clone(s.report.Meetings), i, i+1)
	}
	s.mu.Unlock()
	if rebase {
		if err := s.rebaseStream(ctx, &rec); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// acceptStreamLoss accepts a loss of the stream that names no meeting.
func (s *Store) acceptStreamLoss(ctx context.Context, operator, reason string) (Recovery, error) {
	if lost := s.Lost(); len(lost) > 0 {
		ids := make([]string, len(lost))
		for i, l := range lost {
			ids[i] = l.MeetingID
		}
		return Recovery{}, fmt.Errorf("%w: accept the loss of each meeting first: %s", ErrInvalidRecovery, strings.Join(ids, ", "))
	}
	r, err := s.checkHistory(ctx, s.hw.kv, s.snaps)
	if err != nil {
		return Recovery{}, err
	}
	if len(r.Meetings) > 0 {
		for _, l := range r.Meetings {
			s.noteLoss(ctx, l, r.recovery[l.MeetingID])
		}
		return Recovery{}, fmt.Errorf("%w: %d meetings lost history: accept the loss of each first", ErrInvalidRecovery, len(r.Meetings))
	}
	if r.StreamLoss == nil {
		return Recovery{}, fmt.Errorf("%w: stream %s", ErrNothingLost, s.cfg.stream)
	}
	rec := Recovery{Stream: s.cfg.stream, Operator: operator, Reason: reason,
		SeenSeq: r.StreamLoss.SeenSeq, HaveSeq: r.StreamLoss.HaveSeq, Lost: r.StreamLoss.Reason}
	if err := s.fillStream(ctx, &rec, true); err != nil {
		return Recovery{}, err
	}
	if err := s.writeRecovery(ctx, &rec); err != nil {
		return Recovery{}, err
	}
	return rec, s.rebaseStream(ctx, &rec)
}

// fillStream sets the record's stream state.
func (s *Store) fillStream(ctx context.Context, rec *Recovery, rebase bool) error {
	st, err := s.js.Stream(ctx, s.cfg.stream)
	if err != nil {
		return fmt.Errorf("natsstore: stream %s: %w", s.cfg.stream, err)
	}
	state := st.CachedInfo().State
	rec.StreamFirst, rec.StreamLast, rec.StreamDeleted, rec.StreamRebased = state.FirstSeq, state.LastSeq, uint64(state.NumDeleted), rebase
	return nil
}

// rebaseStream sets the stream's mark to the state the record names.
func (s *Store) rebaseStream(ctx context.Context, rec *Recovery) error {
	sm := streamMark{First: max(rec.StreamFirst, 1), Last: rec.StreamLast, Deleted: rec.StreamDeleted}
	if err := s.hw.put(ctx, streamMarkKey, sm); err != nil {
		return fmt.Errorf("natsstore: accept loss: recorded as %s, but the stream's mark was not set: %w", rec.Key, err)
	}
	s.mu.Lock()
	s.report.StreamLoss = nil
	s.report.MarkFirst, s.report.MarkLast, s.report.MarkDeleted = sm.First, sm.Last, sm.Deleted
	s.mu.Unlock()
	return nil
}

// writeRecovery stores rec under a new key, never overwriting one, and
// logs it.
func (s *Store) writeRecovery(ctx context.Context, rec *Recovery) error {
	now := time.Now().UTC()
	for i := range maxTries {
		rec.Time = now.Add(time.Duration(i))
		rec.Key = fmt.Sprintf("%s%020d", recoveryPfx, rec.Time.UnixNano())
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		_, err = s.hw.kv.Create(ctx, rec.Key, data)
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return fmt.Errorf("natsstore: accept loss: writing the recovery record: %w", err)
		}
		s.cfg.logger.WarnContext(ctx, "natsstore: history loss accepted", "stream", s.cfg.stream, "meeting", rec.MeetingID,
			"operator", rec.Operator, "reason", rec.Reason, "record", rec.Key, "seen_version", rec.SeenVersion, "seen_seq", rec.SeenSeq,
			"have_version", rec.HaveVersion, "have_seq", rec.HaveSeq, "lost", rec.Lost, "stream_rebased", rec.StreamRebased)
		return nil
	}
	return fmt.Errorf("natsstore: accept loss: no free record key after %d tries", maxTries)
}

// Recoveries lists the recovery records of the store's stream, oldest
// first (see [ReadRecoveries]).
func (s *Store) Recoveries(ctx context.Context) ([]Recovery, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	return readRecoveries(ctx, s.hw.kv)
}

// ReadRecoveries lists the recovery records ([Recovery]) of stream, oldest
// first, reading only: none when the stream has no marks bucket. A record
// that does not decode is an error wrapping eventstore.ErrCorrupt.
func ReadRecoveries(ctx context.Context, js jetstream.JetStream, stream string) ([]Recovery, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: ReadRecoveries: nil JetStream", ErrInvalidOption)
	}
	var cfg config
	if err := WithStream(stream)(&cfg); err != nil {
		return nil, err
	}
	rctx, cancel := withTimeout(ctx)
	defer cancel()
	kv, err := js.KeyValue(rctx, MarksBucket(stream))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("natsstore: recoveries of stream %s: %w", stream, err)
	}
	return readRecoveries(ctx, kv)
}

func readRecoveries(ctx context.Context, kv jetstream.KeyValue) ([]Recovery, error) {
	var out []Recovery
	err := watchAll(ctx, kv, recoveryPfx+">", func(key string, v []byte) error {
		var r Recovery
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("%w: recovery record %s of bucket %s: %w", eventstore.ErrCorrupt, key, kv.Bucket(), err)
		}
		r.Key = key
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Recovery) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
