package stage

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/productdb/stage/checkpoint"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
)

// snapshotter returns the store's snapshots, unless they are off.
func (e *Engine) snapshotter() (eventstore.Snapshotter, bool) {
	if e.cfg.snapshotEvery == 0 {
		return nil, false
	}
	ss, ok := e.store.(eventstore.Snapshotter)
	return ss, ok
}

// load sets the state of a meeting that is not cached: from its snapshot,
// where the store keeps one that matches the log, else folded from its
// first event.
func (e *Engine) load(ctx context.Context, m *meeting) error {
	if ss, ok := e.snapshotter(); ok {
		if done, err := e.loadSnapshot(ctx, ss, m); done || err != nil {
			return err
		}
	}
	m.state, m.seq, m.snapVersion = aggregate.NewState(m.id), 0, 0
	if err := e.catchUp(ctx, m); err != nil {
		return err
	}
	m.noteFold(e.pastMin())
	if m.lost != nil {
		m.lost.HaveVersion, m.lost.HaveSeq = m.state.Version(), m.seq
		e.cfg.logger.ErrorContext(ctx, "stage: history lost: the meeting's snapshot covers events the log no longer holds; commands refused, reads serve what remains",
			"meeting", m.id, "snapshot", m.lost.SeenVersion, "log", m.state.Version())
	}
	return nil
}

// loadSnapshot restores the meeting from its snapshot and catches up with
// the log, in one read of the log from the snapshot's version: the event
// there must be the one the snapshot names (its version and hash), or the
// snapshot is discarded (done false). A snapshot is a cache: one that cannot
// be read is discarded too. Errors are those of the log.
func (e *Engine) loadSnapshot(ctx context.Context, ss eventstore.Snapshotter, m *meeting) (done bool, err error) {
	snap, found, err := ss.LoadSnapshot(ctx, m.id)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		e.cfg.logger.WarnContext(ctx, "stage: snapshot unreadable; folding the log", "meeting", m.id, "err", err)
		return false, nil
	}
	if !found || snap.Version == 0 {
		return false, nil
	}
	discard := func(why error) (bool, error) {
		e.cfg.logger.WarnContext(ctx, "stage: snapshot discarded; folding the log", "meeting", m.id,
			"version", snap.Version, "err", why)
		return false, nil
	}
	data, err := e.openSnapshot(m.id, &snap)
	if err != nil {
		return discard(err)
	}
	s, err := aggregate.UnmarshalState(m.id, data)
	if err != nil {
		return discard(err)
	}
	if s.Version() != snap.Version || s.LastHash() != snap.Hash {
		return discard(fmt.Errorf("the state is at version %d, hash %s, not the version %d and hash %s the snapshot names",
			s.Version(), s.LastHash(), snap.Version, snap.Hash))
	}
	var seq uint64
	matched := false
	for ev, err := range e.store.Load(ctx, m.id, snap.Version) {
		if err != nil {
			return false, err
		}
		if !matched {
			if ev.Version != snap.Version || ev.Hash != snap.Hash {
				return discard(fmt.Errorf("the log's event at version %d has hash %s, the snapshot names %s", ev.Version, ev.Hash, snap.Hash))
			}
			if err := ev.Verify(); err != nil {
				return discard(fmt.Errorf("the log's event at version %d: %w", ev.Version, err))
			}
			matched, seq = true, ev.Seq
			continue
		}
		if err := eventstore.CheckNext(&ev, s.Version(), s.LastHash()); err != nil {
			e.cfg.logger.ErrorContext(ctx, "stage: corrupt event", "meeting", m.id, "err", err)
			return false, err
		}
		aggregate.Evolve(s, &ev)
		seq = ev.Seq
	}
	if !matched {
		// The log ends before the snapshot's version: the snapshot is
		// evidence of events the log once held (with a signing key, one
		// this deployment signed), not noise.
		m.lost = &eventstore.HistoryLostError{MeetingID: m.id, SeenVersion: snap.Version, SeenSeq: snap.Seq, SeenHash: snap.Hash,
			Reason: fmt.Sprintf("the meeting's snapshot covers version %d, which the log no longer holds", snap.Version)}
		return false, nil
	}
	m.state, m.seq, m.snapVersion = s, seq, snap.Version
	m.noteFold(e.pastMin())
	e.cfg.logger.DebugContext(ctx, "stage: loaded from snapshot", "meeting", m.id, "snapshot", snap.Version, "version", s.Version())
	return true, nil
}

// noteFold records, after a load, whether it folded at least min events
// past the latest snapshot.
func (m *meeting) noteFold(min uint64) {
	m.foldedTo = 0
	if v := m.state.Version(); v >= m.snapVersion+min {
		m.foldedTo = v
	}
}

// maybeSnapshot starts writing the meeting's snapshot in the background
// when its state is at least snapshotEvery events past the latest one, or
// when this is the first write since a load that folded at least
// SnapshotPastMin events (the writer that folded them may have crashed:
// without this, every Engine that loads the meeting until one evicts,
// closes or idles it folds them again), and no write is in flight. The
// caller holds the meeting's lock.
func (e *Engine) maybeSnapshot(m *meeting) {
	n := e.cfg.snapshotEvery
	if n == 0 || m.lost != nil || m.snapping.Load() {
		return
	}
	v := m.state.Version()
	if v < m.snapVersion+n && (m.foldedTo == 0 || v <= m.foldedTo) {
		return
	}
	m.foldedTo = 0
	ss, ok := e.snapshotter()
	if !ok {
		return
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.snapshots.Add(1)
	e.mu.Unlock()
	if !m.snapping.CompareAndSwap(false, true) {
		e.snapshots.Done()
		return
	}
	go e.snapshot(ss, m)
}

// snapshot writes the meeting's snapshot in the background (see
// writeSnapshot). A failed write is logged: the next one is tried
// snapshotEvery events later.
func (e *Engine) snapshot(ss eventstore.Snapshotter, m *meeting) {
	defer e.snapshots.Done()
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.writeTimeout)
	defer cancel()
	if !e.writeSnapshot(ctx, ss, m, 0) {
		return
	}
	// Commands that ran while the write was in flight may have taken the
	// state snapshotEvery events past it (their releases skipped the
	// check): check once more, unless a command holds the meeting (its
	// release checks).
	select {
	case m.lock <- struct{}{}:
		if m.state != nil {
			e.maybeSnapshot(m)
		}
		<-m.lock
	default:
	}
}

// writeSnapshot encodes the meeting's state (taking the meeting's lock for
// that, once the command that started it has released it) and stores it,
// if the state is at least minPast events past the latest snapshot. The
// caller has set m.snapping; writeSnapshot clears it. It reports whether a
// snapshot was stored.
func (e *Engine) writeSnapshot(ctx context.Context, ss eventstore.Snapshotter, m *meeting, minPast uint64) bool {
	defer m.snapping.Store(false)
	select {
	case m.lock <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	s := m.state
	// A meeting that lost history keeps the snapshot that is the evidence.
	if s == nil || m.lost != nil || s.Version() == 0 || s.Version() < m.snapVersion+minPast || s.Version() == m.snapVersion {
		<-m.lock
		return false
	}
	snap := eventstore.Snapshot{Version: s.Version(), Hash: s.LastHash(), Seq: m.seq}
	data, err := s.MarshalBinary()
	if err == nil {
		m.snapVersion = snap.Version
		m.past.Store(0)
	}
	<-m.lock
	if err == nil {
		snap.Data = e.sealSnapshot(m.id, &snap, data)
		err = ss.SaveSnapshot(ctx, m.id, snap)
	}
	if err != nil {
		e.cfg.logger.WarnContext(ctx, "stage: snapshot not saved", "meeting", m.id, "version", snap.Version, "err", err)
		return false
	}
	e.cfg.logger.DebugContext(ctx, "stage: snapshot saved", "meeting", m.id, "version", snap.Version, "bytes", len(data))
	return true
}

// SnapshotPastMin is how many events past its latest snapshot a meeting
// must be for the engine to snapshot it when it leaves the cache, on Close
// and when it goes idle (or snapshotEvery, if that is smaller): a meeting
// of a few dozen events folds in about as long as its snapshot takes to
// read, and writing one for every short meeting that leaves the cache
// would add a write per meeting for nothing.
const SnapshotPastMin = 100

// CloseSnapshotTimeout bounds the snapshot writes of Close, in all, by
// default (see [WithBackgroundTimeouts]).
const CloseSnapshotTimeout = 10 * time.Second

// closeSnapshotWriters is how many snapshots Close writes at once.
const closeSnapshotWriters = 4

// pastMin is the number of events past its latest snapshot that makes a
// meeting worth snapshotting when it leaves the cache, goes idle or the
// engine closes.
func (e *Engine) pastMin() uint64 { return max(min(e.cfg.snapshotEvery, SnapshotPastMin), 1) }

// snapshotLeaving starts writing the snapshot of a meeting that leaves the
// cache, if it is far enough past its latest one. e.mu must be held; the
// meeting has no users.
func (e *Engine) snapshotLeaving(m *meeting) {
	if e.closed || m.past.Load() < e.pastMin() {
		return
	}
	ss, ok := e.snapshotter()
	if !ok || !m.snapping.CompareAndSwap(false, true) {
		return
	}
	e.snapshots.Add(1)
	go func() {
		defer e.snapshots.Done()
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.writeTimeout)
		defer cancel()
		e.writeSnapshot(ctx, ss, m, e.pastMin())
	}()
}

// snapshotAll writes, on Close, the snapshot of every cached meeting far
// enough past its latest one, a few at a time, within the close timeout
// (CloseSnapshotTimeout by default).
func (e *Engine) snapshotAll() {
	ss, ok := e.snapshotter()
	if !ok {
		return
	}
	min := e.pastMin()
	e.mu.Lock()
	var due []*meeting
	for _, m := range e.meetings {
		if m.past.Load() >= min {
			due = append(due, m)
		}
	}
	e.mu.Unlock()
	if len(due) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.closeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, closeSnapshotWriters)
	for _, m := range due {
		if !m.snapping.CompareAndSwap(false, true) {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			e.writeSnapshot(ctx, ss, m, min)
		}()
	}
	wg.Wait()
}

// startIdleSweep starts the idle sweep, when the engine writes snapshots
// and WithSnapshotIdle is not zero: every half idle period it snapshots
// the cached meetings that nobody has used for the idle period and that
// are far enough past their latest snapshot. It walks the cache from its
// least recently used end and stops at the first meeting used within the
// period, so a sweep costs the idle meetings it finds, not the cache. Close
// stops it.
func (e *Engine) startIdleSweep() {
	idle := e.cfg.snapshotIdle
	if _, ok := e.snapshotter(); !ok || idle <= 0 {
		return
	}
	e.ticking.Add(1)
	go func() {
		defer e.ticking.Done()
		t := time.NewTicker(max(idle/2, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-e.tickCtx.Done():
				return
			case <-t.C:
				e.sweepIdle(idle)
			}
		}
	}()
}

// sweepIdle starts the snapshots of the meetings idle for at least idle.
func (e *Engine) sweepIdle(idle time.Duration) {
	before := time.Now().Add(-idle).UnixNano()
	e.mu.Lock()
	defer e.mu.Unlock()
	for el := e.lru.Back(); el != nil; el = el.Prev() {
		m := el.Value.(*meeting)
		if m.usedAt.Load() > before {
			return
		}
		if m.users == 0 {
			e.snapshotLeaving(m)
		}
	}
}

// A signed snapshot's data is sealMagic, the signing key's id, the Ed25519
// signature, then the encoded state. The signature covers sealDomain, the
// meeting id (length first), the version and hash the snapshot names, and
// the encoded state: a signature cannot be moved to another meeting or
// version, nor the state edited.
const (
	sealMagic  = "STGSIG1\n"
	sealDomain = "productdb/stage snapshot v1\n"
	sealHeader = len(sealMagic) + len(checkpoint.KeyID{}) + ed25519.SignatureSize
)

func sealMessage(meetingID string, snap *eventstore.Snapshot, state []byte) []byte {
	b := make([]byte, 0, len(sealDomain)+2+len(meetingID)+8+len(snap.Hash)+len(state))
	b = append(b, sealDomain...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(meetingID)))
	b = append(b, meetingID...)
	b = binary.BigEndian.AppendUint64(b, snap.Version)
	b = append(b, snap.Hash[:]...)
	return append(b, state...)
}

// sealSnapshot signs an encoded state with the engine's key, if it has one.
func (e *Engine) sealSnapshot(meetingID string, snap *eventstore.Snapshot, state []byte) []byte {
	key := e.cfg.signingKey
	if key == nil {
		return state
	}
	id := checkpoint.KeyIDOf(key.Public().(ed25519.PublicKey))
	out := make([]byte, 0, sealHeader+len(state))
	out = append(out, sealMagic...)
	out = append(out, id[:]...)
	out = append(out, ed25519.Sign(key, sealMessage(meetingID, snap, state))...)
	return append(out, state...)
}

// openSnapshot returns the encoded state of a stored snapshot. With a
// signing key, the snapshot must be signed by it; without, a signature is
// stripped unchecked (there is no key to check it with).
func (e *Engine) openSnapshot(meetingID string, snap *eventstore.Snapshot) ([]byte, error) {
	data := snap.Data
	sealed := len(data) >= sealHeader && bytes.HasPrefix(data, []byte(sealMagic))
	key := e.cfg.signingKey
	if key == nil {
		if sealed {
			return data[sealHeader:], nil
		}
		return data, nil
	}
	if !sealed {
		return nil, errors.New("the snapshot is not signed, and the engine has a signing key: only a snapshot it signed is used")
	}
	pub := key.Public().(ed25519.PublicKey)
	var id checkpoint.KeyID
	copy(id[:], data[len(sealMagic):])
	if id != checkpoint.KeyIDOf(pub) {
		return nil, fmt.Errorf("the snapshot is signed with key %s, not the engine's key %s", id, checkpoint.KeyIDOf(pub))
	}
	sig := data[len(sealMagic)+len(id) : sealHeader]
	state := data[sealHeader:]
	if !ed25519.Verify(pub, sealMessage(meetingID, snap, state), sig) {
		return nil, errors.New("the snapshot's signature does not match its contents: forged or damaged")
	}
	return state, nil
}
