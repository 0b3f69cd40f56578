package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

// MaxBatch is the most events one Append may store (one atomic batch; the
// server's default limit).
const MaxBatch = 1000

// headerRoom is the room kept in every message for the headers the store and
// the batch protocol add.
const headerRoom = 512

// maxHeads bounds the cache of meeting heads; past it the cache starts over.
const maxHeads = 1 << 16

// Store is an [eventstore.Store] on a NATS JetStream stream: one subject
// per meeting ("<prefix>.<meetingID>"), one message per event, the meeting's
// version order being its subject's message order and the global position
// (Seq) the stream sequence. It is safe for concurrent use, and several
// Stores (in one process or many) may share a stream.
type Store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	cfg    config
	maxMsg int // largest message the stream accepts, headers included

	mu    sync.Mutex
	heads map[string]head // meeting -> its last known event
	marks map[string]head // meeting -> the event its snapshot covers (snapshot.go)

	snaps jetstream.KeyValue // the snapshot bucket
	sobjs snapObjects        // the object bucket of large snapshots (snapshot_large.go)
	keys  jetstream.KeyValue // the command index bucket (index.go)

	hw     *watermarks            // the high-water marks (marks.go)
	lost   map[string]lostMeeting // meetings that lost history: appends refused; s.mu guards it
	nlost  atomic.Int32           // len(lost), read without the lock
	report *HistoryReport         // what New found; s.mu guards it
	recMu  sync.Mutex             // one recovery at a time

	group *grouper // nil without group commit

	cpMu    sync.Mutex // guards cpReady
	cpReady bool       // the checkpoint stream exists (checkpoints.go)

	closed atomic.Bool

	// degraded is set when a request found no server or no stream leader,
	// and cleared once the leader answers (outcome.go).
	degraded atomic.Bool
	probe    prober
}

// head is a meeting's last known event: its version and stream sequence.
// Once observed, the pair stays true (the stream denies deletes); it only
// grows stale, which the server's guard catches on the next append.
type head struct{ version, seq uint64 }

var _ eventstore.Store = (*Store)(nil)

// New returns a Store on the JetStream of nc. It creates the stream if it
// does not exist (see the options for its settings; by default file
// storage, one replica, no limits, DenyDelete and DenyPurge,
// AllowAtomicPublish and AllowDirect) and otherwise verifies that the
// existing stream can keep the log's guarantees, returning a
// [*StreamConfigError] if it cannot. New never changes an existing stream.
// It also creates (or opens) the KV bucket [SnapshotBucket] of the stream,
// with the stream's storage and replicas and one value per key, where
// [Store.SaveSnapshot] keeps each meeting's latest snapshot, and the KV
// bucket [KeyBucket], whose entries expire after the key retention
// ([WithKeyRetention]), where [Store.RecordCommand] keeps the command index.
//
// New then checks that the stream has lost nothing the stores saw stored:
// it keeps high-water marks in the KV bucket [MarksBucket] (see
// [WithMarkInterval] and [CheckHistory]). Meetings that lost events are
// logged at Error level and listed by [Store.History]; Append refuses
// them with an [*eventstore.HistoryLostError] until an operator accepts
// the loss ([Store.AcceptLoss]). The others work as usual.
//
// The Store does not own nc: close the connection after [Store.Close].
func New(ctx context.Context, nc *nats.Conn, opts ...Option) (*Store, error) {
	if nc == nil {
		return nil, errors.New("natsstore: New: nil connection")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsstore: %w", err)
	}
	s := &Store{nc: nc, js: js, cfg: cfg, heads: map[string]head{}}
	if err := s.provision(ctx); err != nil {
		return nil, err
	}
	if err := s.provisionSnapshots(ctx); err != nil {
		return nil, err
	}
	if err := s.provisionKeys(ctx); err != nil {
		return nil, err
	}
	if err := s.provisionMarks(ctx); err != nil {
		return nil, err
	}
	if err := s.startHistory(ctx); err != nil {
		return nil, err
	}
	if cfg.groupMin > 0 {
		s.group = newGrouper(s, cfg.groupMin)
	}
	return s, nil
}

// Close marks the store closed: later calls return eventstore.ErrClosed.
// It writes the high-water marks not yet written, and returns the error
// of that write. It does not close the connection. Close is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.group != nil {
		s.group.close()
	}
	if err := s.hw.close(); err != nil {
		return fmt.Errorf("natsstore: close: writing high-water marks: %w", err)
	}
	return nil
}

// Stream returns the name of the store's stream.
func (s *Store) Stream() string { return s.cfg.stream }

// Subject returns the subject that holds meetingID's events: the
// prefix, ".", and [SubjectToken] of the id.
func (s *Store) Subject(meetingID string) string { return s.cfg.prefix + "." + SubjectToken(meetingID) }

func (s *Store) wantConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               s.cfg.stream,
		Description:        "productdb/stage event log: one subject per meeting, one message per event",
		Subjects:           []string{s.cfg.prefix + ".>"},
		Retention:          jetstream.LimitsPolicy,
		Storage:            s.cfg.storage,
		Replicas:           s.cfg.replicas,
		MaxAge:             s.cfg.maxAge,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxMsgsPerSubject:  -1,
		Discard:            jetstream.DiscardOld,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowDirect:        true,
		AllowAtomicPublish: true,
	}
}

func (s *Store) provision(ctx context.Context) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	name := s.cfg.stream
	st, err := s.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = s.js.CreateStream(ctx, s.wantConfig())
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = s.js.Stream(ctx, name) // created meanwhile by another store
		} else if err == nil {
			s.cfg.logger.InfoContext(ctx, "natsstore: created stream", "stream", name,
				"subjects", s.cfg.prefix+".>", "replicas", s.cfg.replicas, "storage", s.cfg.storage.String())
		}
	}
	if err != nil {
		return fmt.Errorf("natsstore: stream %s: %w", name, err)
	}
	info := st.CachedInfo()
	if problems := s.checkConfig(&info.Config); len(problems) > 0 {
		return &StreamConfigError{Stream: name, Problems: problems}
	}
	s.maxMsg = int(s.nc.MaxPayload())
	if m := int(info.Config.MaxMsgSize); m > 0 && m < s.maxMsg {
		s.maxMsg = m
	}
	return nil
}

// checkConfig lists what in c would break the log's guarantees.
func (s *Store) checkConfig(c *jetstream.StreamConfig) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	all, one := s.cfg.prefix+".>", s.cfg.prefix+".*"
	if len(c.Subjects) != 1 || (c.Subjects[0] != all && c.Subjects[0] != one) {
		add("subjects %q, want exactly [%q]", c.Subjects, all)
	}
	if c.Retention != jetstream.LimitsPolicy {
		add("retention %s removes events once consumed, want limits", c.Retention)
	}
	if !c.DenyDelete {
		add("deletes allowed (deny_delete false): the audit log must be append-only")
	}
	if !c.DenyPurge {
		add("purges allowed (deny_purge false): the audit log must be append-only")
	}
	if c.AllowRollup {
		add("roll-ups allowed: a roll-up message erases a meeting's history")
	}
	if !c.AllowDirect {
		add("direct get disabled (allow_direct false): the store reads with direct get")
	}
	if !c.AllowAtomicPublish {
		add("atomic publish disabled (allow_atomic false): multi-event appends need it")
	}
	if c.Sealed {
		add("stream is sealed: it accepts no events")
	}
	if c.Mirror != nil {
		add("stream is a mirror: it accepts no events")
	}
	if c.NoAck {
		add("no_ack set: appends could not be acknowledged")
	}
	if c.SubjectTransform != nil {
		add("subject transform set: events would be stored on other subjects")
	}
	if c.PersistMode == jetstream.AsyncPersistMode {
		add("async persist mode acknowledges events before they are written")
	}
	if c.AllowMsgTTL {
		add("per-message TTLs allowed: events could expire one by one")
	}
	if c.AllowMsgCounter {
		add("message counters enabled: the stream is a counter, not a log")
	}
	if c.Discard != jetstream.DiscardNew && (c.MaxMsgs > 0 || c.MaxBytes > 0) {
		add("limits max_msgs %d / max_bytes %d with discard old drop the oldest events when reached", c.MaxMsgs, c.MaxBytes)
	}
	if c.MaxMsgsPerSubject > 0 && !(c.Discard == jetstream.DiscardNew && c.DiscardNewPerSubject) {
		add("max_msgs_per_subject %d drops a meeting's oldest events", c.MaxMsgsPerSubject)
	}
	if c.MaxAge != s.cfg.maxAge {
		add("max_age %v, want %v (events older than max_age are dropped)", c.MaxAge, s.cfg.maxAge)
	}
	if c.Replicas < s.cfg.replicas {
		add("%d replicas, want at least %d", c.Replicas, s.cfg.replicas)
	}
	if s.cfg.storage == jetstream.FileStorage && c.Storage != jetstream.FileStorage {
		add("storage %s, want file", c.Storage)
	}
	return p
}

// withTimeout bounds a request by the store's request timeout
// ([WithRequestTimeout]) when ctx has no deadline.
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.cfg.requestTimeout)
}

// withTimeout bounds a request that no Store makes by
// [DefaultRequestTimeout] when ctx has no deadline.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultRequestTimeout)
}

// Append implements [eventstore.Store.Append]: one event is one publish
// guarded by the meeting subject's expected last sequence; several events
// are one atomic batch guarded the same way on its first message. A failed
// guard (JetStream error code 10071 or 10164) returns
// eventstore.ErrConflict; an event too large for the server returns an
// error wrapping [ErrTooLarge] and eventstore.ErrInvalidEvents. Every
// error says what the append left, with errors.Is:
// eventstore.ErrNotStored (refused, or never sent) or
// eventstore.ErrOutcomeUnknown (sent, and the answer lost: a timeout, a
// lost connection), and eventstore.ErrUnavailable when no server or no
// stream leader answered (see [WithLeaderTimeout], and docs/errors.md for
// the table). Append never hands a message to a connection that is not
// connected, which would buffer it and send it later. A meeting that
// lost history (see [Store.Lost]) returns an
// [*eventstore.HistoryLostError], wrapping eventstore.ErrHistoryLost, and
// nothing is stored. In the strict mode ([WithMarkInterval] 0) an
// error may also say that the events were stored but their high-water
// mark was not written.
func (s *Store) Append(ctx context.Context, meetingID string, expectedVersion uint64, evs []events.Envelope) (_ uint64, err error) {
	sent := false // the events were handed to the connection
	defer func() { err = s.writeOutcome(err, sent) }()
	if s.closed.Load() {
		return 0, eventstore.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := eventstore.CheckAppend(meetingID, expectedVersion, evs); err != nil {
		return 0, err
	}
	if len(evs) > MaxBatch {
		return 0, fmt.Errorf("%w: %w: %d events in one append, at most %d", eventstore.ErrInvalidEvents, ErrTooLarge, len(evs), MaxBatch)
	}
	subject := s.Subject(meetingID)
	msgs := make([]*nats.Msg, len(evs))
	for i := range evs {
		e := evs[i]
		e.Seq = 0
		data, err := events.Marshal(&e)
		if err != nil {
			return 0, fmt.Errorf("%w: event %d: %w", eventstore.ErrInvalidEvents, i, err)
		}
		if len(data)+len(subject)+headerRoom > s.maxMsg {
			return 0, fmt.Errorf("%w: %w: event %d (meeting %s, version %d) is %d bytes, the stream takes at most %d",
				eventstore.ErrInvalidEvents, ErrTooLarge, i, meetingID, e.Version, len(data), s.maxMsg-len(subject)-headerRoom)
		}
		msgs[i] = &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	}

	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.usable(ctx, s.cfg.stream); err != nil {
		return 0, err
	}
	lastSeq, err := s.expectSeq(ctx, meetingID, expectedVersion)
	if err != nil {
		return 0, err
	}
	if err := s.checkLost(ctx, meetingID); err != nil {
		return 0, err
	}
	// Never hand a message to a connection that is not connected: it
	// would buffer it and send it on reconnecting, after the caller was
	// told the append failed.
	if !s.nc.IsConnected() {
		if err := s.usable(ctx, s.cfg.stream); err != nil {
			return 0, err
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	sent = true
	var seq uint64
	err = s.watched(ctx, s.cfg.stream, true, func(ctx context.Context) error {
		var err error
		if len(msgs) == 1 && s.group != nil {
			seq, err = s.group.append(ctx, &pending{msg: msgs[0], guard: lastSeq, result: make(chan groupResult, 1)})
		} else if len(msgs) == 1 {
			var ack *jetstream.PubAck
			ack, err = s.js.PublishMsg(ctx, msgs[0],
				jetstream.WithExpectStream(s.cfg.stream),
				jetstream.WithExpectLastSequencePerSubject(lastSeq))
			if err == nil {
				seq = ack.Sequence
			}
		} else {
			msgs[0].Header.Set(jetstream.ExpectedStreamHeader, s.cfg.stream)
			msgs[0].Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(lastSeq, 10))
			var ack *jetstreamext.BatchAck
			ack, err = s.publishBatch(ctx, msgs)
			if err == nil {
				seq = ack.Sequence
			}
		}
		return err
	})
	last := expectedVersion + uint64(len(evs))
	switch {
	case err == nil:
		s.setHead(meetingID, head{version: last, seq: seq})
		m := meetingMark{Meeting: meetingID, Version: last, Seq: seq, Hash: evs[len(evs)-1].Hash}
		if s.hw.interval > 0 {
			s.hw.note(m)
			return seq, nil
		}
		s.hw.note(m)
		if err := s.hw.flush(ctx); err != nil {
			s.cfg.logger.ErrorContext(ctx, "natsstore: stored, but its high-water mark was not written", "meeting", meetingID, "version", last, "seq", seq, "err", err)
			// Stored: whatever the mark write's own outcome, a retry
			// with the command's key finds the events.
			return 0, eventstore.OutcomeUnknown(fmt.Errorf("natsstore: append meeting %s version %d: stored at sequence %d, but its high-water mark was not written: %v", meetingID, last, seq, err))
		}
		return seq, nil
	case isWrongLastSequence(err):
		// The cached head is stale but still true (version v is at
		// sequence s forever): Load starts from it to catch up.
		s.cfg.logger.DebugContext(ctx, "natsstore: conflict", "meeting", meetingID, "expected", expectedVersion, "lastSeq", lastSeq)
		return 0, fmt.Errorf("%w: meeting %s is no longer at version %d", eventstore.ErrConflict, meetingID, expectedVersion)
	default:
		s.cfg.logger.WarnContext(ctx, "natsstore: append failed", "meeting", meetingID, "version", last, "err", err)
		return 0, fmt.Errorf("natsstore: append meeting %s version %d: %w", meetingID, last, err)
	}
}

// expectSeq returns the stream sequence of the meeting's event at version
// (0 for version 0): the guard of the next append. A meeting known or
// found to be at another version is a conflict.
func (s *Store) expectSeq(ctx context.Context, meetingID string, version uint64) (uint64, error) {
	if version == 0 {
		if _, ok := s.getHead(meetingID); ok {
			return 0, nil
		}
		// A meeting this store has not read: it may have lost every
		// event. One read of its mark; the stream only if it has one.
		m, marked, err := s.getMeetingMark(ctx, meetingID)
		if err != nil || !marked || m.Version == 0 {
			return 0, err
		}
		if _, _, _, err := s.lastOf(ctx, meetingID); err != nil {
			return 0, err
		}
		return 0, nil
	}
	if h, ok := s.getHead(meetingID); ok && h.version == version {
		return h.seq, nil
	}
	h, _, found, err := s.lastOf(ctx, meetingID)
	if err != nil {
		return 0, err
	}
	if !found || h.version != version {
		return 0, fmt.Errorf("%w: meeting %s is at version %d, not %d", eventstore.ErrConflict, meetingID, h.version, version)
	}
	return h.seq, nil
}

func (s *Store) getHead(meetingID string) (head, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.heads[meetingID]
	return h, ok
}

func (s *Store) setHead(meetingID string, h head) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.heads[meetingID]; ok && old.seq > h.seq {
		return // a newer head was seen meanwhile
	}
	if len(s.heads) >= maxHeads {
		clear(s.heads)
	}
	s.heads[meetingID] = h
}

// storedMsg is a message as STREAM.MSG.GET returns it.
type storedMsg struct {
	Subject string `json:"subject"`
	Seq     uint64 `json:"seq"`
	Data    []byte `json:"data,omitempty"`
}

// msgGet asks STREAM.MSG.GET for the message at Seq, or the last one on
// LastBySubject.
type msgGet struct {
	Seq           uint64 `json:"seq,omitempty"`
	LastBySubject string `json:"last_by_subj,omitempty"`
}

// leaderGet returns the message of stream that q asks for, from the
// stream's leader (not a possibly lagging replica, as a direct get might
// reach), or nil when there is none.
func (s *Store) leaderGet(ctx context.Context, stream string, q msgGet) (*storedMsg, error) {
	req, _ := json.Marshal(q)
	if err := s.usable(ctx, stream); err != nil {
		return nil, err
	}
	var resp *nats.Msg
	var err error
	for {
		err = s.watched(ctx, stream, false, func(ctx context.Context) (err error) {
			resp, err = s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
			return err
		})
		if !errors.Is(err, errAnswerLost) || ctx.Err() != nil {
			break
		}
		// A read is safe to send again.
	}
	if unreachable(err) {
		s.degraded.Store(true)
		return nil, eventstore.Unavailable(err, false)
	}
	if err != nil {
		return nil, err
	}
	var r struct {
		Error   *jetstream.APIError `json:"error,omitempty"`
		Message *storedMsg          `json:"message,omitempty"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, fmt.Errorf("bad response: %w", err)
	}
	switch {
	case r.Error != nil && r.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, nil
	case r.Error != nil && isUnavailableCode(r.Error):
		s.degraded.Store(true)
		return nil, eventstore.Unavailable(r.Error, false)
	case r.Error != nil:
		return nil, r.Error
	case r.Message == nil:
		return nil, errors.New("empty response")
	}
	return r.Message, nil
}

// lastOf fetches the meeting's last event from the stream leader, and
// records it as the meeting's head. When the store knows no head of the
// meeting yet it first reads the meeting's high-water mark, and a last
// event short of the mark (or not the event the mark names) is a loss;
// a known head past the last event is one too. A loss is recorded (Append
// refuses the meeting), not returned: reads serve what remains.
func (s *Store) lastOf(ctx context.Context, meetingID string) (head, events.Envelope, bool, error) {
	prev, cached := s.getHead(meetingID)
	var mark meetingMark
	var marked bool
	if !cached {
		var err error
		// The mark before the stream: the mark is never past what the
		// stream held when the mark was read, unless the stream lost it.
		if mark, marked, err = s.getMeetingMark(ctx, meetingID); err != nil {
			return head{}, events.Envelope{}, false, err
		}
	}
	h, e, found, err := s.lastBehind(ctx, meetingID, func(h head, e events.Envelope, found bool) bool {
		return cached && prev.seq > h.seq || marked && compareMark(mark, e, found) != nil
	})
	if err != nil {
		return head{}, events.Envelope{}, false, err
	}
	switch {
	case cached && prev.seq > h.seq:
		lost := &eventstore.HistoryLostError{MeetingID: meetingID, SeenVersion: prev.version, SeenSeq: prev.seq, HaveVersion: h.version, HaveSeq: h.seq,
			Reason: fmt.Sprintf("this store saw version %d stored at sequence %d; the stream's last event of the meeting is now at sequence %d", prev.version, prev.seq, h.seq)}
		m, _, _ := s.getMeetingMark(ctx, meetingID)
		if m.Version == prev.version {
			lost.SeenHash = m.Hash
		}
		s.noteLoss(ctx, lost, m.Recovery)
		return h, e, found, nil // the head stays: it is true history
	case marked:
		if lost := compareMark(mark, e, found); lost != nil {
			s.noteLoss(ctx, lost, mark.Recovery)
		}
	}
	if found || !cached {
		s.setHead(meetingID, h)
	}
	return h, e, found, nil
}

// behindPatience is how long lastBehind reads again a last event that is
// behind what the store saw, before it takes it for a loss.
const behindPatience = 3 * time.Second

// lastBehind is lastRaw, read again while behind says the answer is short
// of what this store saw or the meeting's mark names, for up to
// behindPatience: a stream leader elected a moment ago can answer from a
// store that has not applied the last entries yet (one message behind,
// seen in a cluster failover), and a loss must not be declared on that. A
// real loss stays behind, and is reported once the patience is spent.
func (s *Store) lastBehind(ctx context.Context, meetingID string, behind func(head, events.Envelope, bool) bool) (head, events.Envelope, bool, error) {
	deadline := time.Now().Add(behindPatience)
	wait := 20 * time.Millisecond
	for {
		h, e, found, err := s.lastRaw(ctx, meetingID)
		if err != nil || !behind(h, e, found) || time.Now().After(deadline) {
			return h, e, found, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return head{}, events.Envelope{}, false, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// lastRaw fetches the meeting's last event from the stream leader: its
// head, the event, and whether there is one.
func (s *Store) lastRaw(ctx context.Context, meetingID string) (head, events.Envelope, bool, error) {
	msg, err := s.leaderGet(ctx, s.cfg.stream, msgGet{LastBySubject: s.Subject(meetingID)})
	if err != nil {
		return head{}, events.Envelope{}, false, fmt.Errorf("natsstore: last event of meeting %s: %w", meetingID, err)
	}
	if msg == nil {
		return head{}, events.Envelope{}, false, nil
	}
	e, err := s.decode(msg.Subject, msg.Seq, msg.Data)
	if err != nil {
		return head{}, events.Envelope{}, false, err
	}
	return head{version: e.Version, seq: e.Seq}, e, true, nil
}

// decode turns a stored message into an event, or a *CorruptError naming
// its stream sequence if it is not an intact event of the meeting its
// subject names.
func (s *Store) decode(subject string, seq uint64, data []byte) (events.Envelope, error) {
	meeting, _ := MeetingOfSubject(s.cfg.prefix, subject)
	e, err := events.Unmarshal(data)
	if err != nil {
		return events.Envelope{}, &eventstore.CorruptError{Seq: seq, MeetingID: meeting, Err: fmt.Errorf("message on %s is not an event: %w", subject, err)}
	}
	e.Seq = seq
	if s.Subject(e.MeetingID) != subject {
		return events.Envelope{}, &eventstore.CorruptError{Seq: seq, MeetingID: e.MeetingID, Version: e.Version, Err: fmt.Errorf("event of meeting %q stored on subject %s", e.MeetingID, subject)}
	}
	if err := e.Verify(); err != nil {
		return events.Envelope{}, &eventstore.CorruptError{Seq: seq, MeetingID: e.MeetingID, Version: e.Version, Err: err}
	}
	return e, nil
}

// Load implements [eventstore.Store.Load]. Every event is checked: that it
// decodes, belongs to the meeting, matches its hash, and follows the
// previous one in version and hash chain; the first event that does not
// ends the iteration with a [*eventstore.CorruptError] naming its stream
// sequence. A meeting id that is not valid yields an error wrapping
// events.ErrInvalidID.
func (s *Store) Load(ctx context.Context, meetingID string, fromVersion uint64) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		if err := s.readable(ctx); err != nil {
			yield(events.Envelope{}, err)
			return
		}
		if err := events.ValidateID(meetingID); err != nil {
			yield(events.Envelope{}, fmt.Errorf("natsstore: load: %w", err))
			return
		}
		fromVersion = max(fromVersion, 1)
		prev, _ := s.getHead(meetingID)
		rctx, cancel := s.withTimeout(ctx)
		last, lastEv, found, err := s.lastOf(rctx, meetingID)
		cancel()
		if err != nil {
			yield(events.Envelope{}, err)
			return
		}
		if !found || last.version < fromVersion {
			return
		}
		if last.version == fromVersion {
			yield(lastEv, nil) // the common catch-up: one new event
			return
		}
		start := uint64(1)
		if prev.seq > 0 && prev.version+1 == fromVersion && prev.seq < last.seq {
			start = prev.seq + 1
		} else if mark, ok := s.getMark(meetingID); ok && mark.version == fromVersion && mark.seq <= last.seq {
			start = mark.seq // where a snapshot's event was found
		}
		want := fromVersion
		var prevHash events.Hash
		long := last.version-fromVersion >= orderedMin
		err = s.scanDecoded(ctx, s.Subject(meetingID), start, last.seq, long, func(seq uint64, e events.Envelope, err error) (bool, error) {
			if err != nil {
				return false, err
			}
			if e.Version < fromVersion && start == 1 {
				return true, nil
			}
			if e.Version != want {
				return false, &eventstore.CorruptError{Seq: seq, MeetingID: meetingID, Version: e.Version, Err: fmt.Errorf("version %d where version %d belongs: an event is missing or out of place", e.Version, want)}
			}
			if want > fromVersion && e.PrevHash != prevHash {
				return false, &eventstore.CorruptError{Seq: seq, MeetingID: meetingID, Version: e.Version, Err: fmt.Errorf("hash chain broken: prev %s, previous event's hash %s", e.PrevHash, prevHash)}
			}
			want, prevHash = want+1, e.Hash
			return yield(e, nil), nil
		})
		if err != nil {
			yield(events.Envelope{}, err)
		}
	}
}

// ReadAll implements [eventstore.Store.ReadAll] up to the stream's last
// sequence when the read began: with an ordered consumer and parallel
// decoding for a long read ([ReadOrdered]), with batched direct gets for a
// short one. A message that is not
// an intact event yields a [*eventstore.CorruptError] naming its stream
// sequence; the iteration goes on if the caller continues.
func (s *Store) ReadAll(ctx context.Context, from uint64) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		if err := s.readable(ctx); err != nil {
			yield(events.Envelope{}, err)
			return
		}
		rctx, cancel := s.withTimeout(ctx)
		st, err := s.js.Stream(rctx, s.cfg.stream)
		cancel()
		if err != nil {
			yield(events.Envelope{}, fmt.Errorf("natsstore: stream %s: %w", s.cfg.stream, err))
			return
		}
		state := st.CachedInfo().State
		last := state.LastSeq
		from = max(from, 1)
		if from > last {
			return
		}
		// The stream denies deletes, so its sequences have no gap after
		// the first, and each meeting's events seen in this read follow
		// one another: a gap means the server lost a message.
		next := max(from, state.FirstSeq)
		chains := map[string]head{}
		hashes := map[string]events.Hash{}
		err = s.scanDecoded(ctx, "", from, last, last-from >= orderedMin, func(seq uint64, e events.Envelope, err error) (bool, error) {
			if seq > next {
				err := &eventstore.CorruptError{Seq: next, Err: fmt.Errorf("stream %s has no message at sequences %d to %d, though it denies deletes: lost by the server", s.cfg.stream, next, seq-1)}
				if !yield(events.Envelope{}, err) {
					return false, nil
				}
			}
			next = seq + 1
			if err == nil {
				if h, ok := chains[e.MeetingID]; ok && (e.Version != h.version+1 || e.PrevHash != hashes[e.MeetingID]) {
					err = &eventstore.CorruptError{Seq: seq, MeetingID: e.MeetingID, Version: e.Version, Err: fmt.Errorf("follows version %d (sequence %d) of its meeting: an event is missing or out of place", h.version, h.seq)}
				}
				chains[e.MeetingID], hashes[e.MeetingID] = head{version: e.Version, seq: seq}, e.Hash
			}
			return yield(e, err), nil
		})
		if err != nil {
			yield(events.Envelope{}, err)
		}
	}
}

func (s *Store) readable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return nil
}

// scanPatience is how long scan waits for a lagging replica to serve
// messages the leader has.
const scanPatience = 30 * time.Second

// errIncomplete: a read found no messages before the sequence it knows exists.
var errIncomplete = errors.New("natsstore: stream messages missing from reads")

// scan calls f for the stream's messages with sequence start..end (on
// subject filter, if not empty), in order, with batched direct gets. A
// replica behind the leader may answer with less than exists: scan asks
// again until it reaches end. f returns false to stop.
func (s *Store) scan(ctx context.Context, filter string, start, end uint64, f func(seq uint64, subject string, data []byte) (bool, error)) error {
	return s.scanPatient(ctx, filter, start, end, scanPatience, f)
}

// scanPatient is scan, waiting at most patience for messages a read does
// not return.
func (s *Store) scanPatient(ctx context.Context, filter string, start, end uint64, patience time.Duration, f func(seq uint64, subject string, data []byte) (bool, error)) error {
	const batch = 256
	next := start
	var stalled time.Time // when reads began to come back empty
	for next <= end {
		if err := ctx.Err(); err != nil {
			return err
		}
		opts := []jetstreamext.GetBatchOpt{jetstreamext.GetBatchSeq(next)}
		if filter != "" {
			opts = append(opts, jetstreamext.GetBatchSubject(filter))
		}
		n := batch
		if filter == "" {
			n = int(min(end-next+1, batch))
		}
		rctx, cancel := s.withTimeout(ctx)
		msgs, err := jetstreamext.GetBatch(rctx, s.js, s.cfg.stream, n, opts...)
		if err != nil {
			cancel()
			return fmt.Errorf("natsstore: read stream %s from %d: %w", s.cfg.stream, next, err)
		}
		got := 0
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				cancel()
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("natsstore: read stream %s from %d: %w", s.cfg.stream, next, err)
			}
			if m.Sequence > end {
				cancel()
				return nil
			}
			if m.Sequence < next {
				continue
			}
			got++
			next = m.Sequence + 1
			more, err := f(m.Sequence, m.Subject, m.Data)
			if err != nil || !more {
				cancel()
				return err
			}
		}
		cancel()
		if got > 0 {
			stalled = time.Time{}
			continue
		}
		if stalled.IsZero() {
			stalled = time.Now()
		} else if time.Since(stalled) > patience {
			return fmt.Errorf("%w: stream %s has sequence %d, reads end before %d", errIncomplete, s.cfg.stream, end, next)
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return nil
}

// Subscribe implements [eventstore.Store.Subscribe] with an ordered
// consumer, which survives reconnects and server restarts (it resumes after
// the last sequence it delivered: no gap, no duplicate). A message that is
// not an intact event yields a [*eventstore.CorruptError] naming its stream
// sequence; the subscription goes on if the caller continues.
func (s *Store) Subscribe(ctx context.Context, from uint64) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		if err := s.readable(ctx); err != nil {
			yield(events.Envelope{}, err)
			return
		}
		cons, err := s.js.OrderedConsumer(ctx, s.cfg.stream, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   max(from, 1),
		})
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			yield(events.Envelope{}, fmt.Errorf("natsstore: subscribe: %w", err))
			return
		}
		it, err := cons.Messages()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			yield(events.Envelope{}, fmt.Errorf("natsstore: subscribe: %w", err))
			return
		}
		defer it.Stop()
		for {
			msg, err := it.Next(jetstream.NextContext(ctx))
			if ctx.Err() != nil {
				yield(events.Envelope{}, ctx.Err())
				return
			}
			if err != nil {
				yield(events.Envelope{}, fmt.Errorf("natsstore: subscribe: %w", err))
				return
			}
			md, err := msg.Metadata()
			if err != nil {
				yield(events.Envelope{}, fmt.Errorf("natsstore: subscribe: %w", err))
				return
			}
			if !yield(s.decode(msg.Subject(), md.Sequence.Stream, msg.Data())) {
				return
			}
		}
	}
}
