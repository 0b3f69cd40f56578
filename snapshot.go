package stage

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/productdb/stage/checkpoint"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
)

// snapshotTimeout bounds one snapshot write.
const snapshotTimeout = 30 * time.Second

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
	e.cfg.logger.DebugContext(ctx, "stage: loaded from snapshot", "meeting", m.id, "snapshot", snap.Version, "version", s.Version())
	return true, nil
}

// maybeSnapshot starts writing the meeting's snapshot in the background
// when its state is at least snapshotEvery events past the latest one and
// no write is in flight. The caller holds the meeting's lock.
func (e *Engine) maybeSnapshot(m *meeting) {
	n := e.cfg.snapshotEvery
	if n == 0 || m.state.Version() < m.snapVersion+n || m.snapping.Load() {
		return
	}
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
	m.snapping.Store(true)
	go e.snapshot(ss, m)
}

// snapshot encodes the meeting's state (taking the meeting's lock for
// that, once the command that started it has released it) and stores it.
// A failed write is logged: the next one is tried snapshotEvery events
// later.
func (e *Engine) snapshot(ss eventstore.Snapshotter, m *meeting) {
	defer e.snapshots.Done()
	ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
	defer cancel()
	select {
	case m.lock <- struct{}{}:
	case <-ctx.Done():
		m.snapping.Store(false)
		return
	}
	s := m.state
	snap := eventstore.Snapshot{Version: s.Version(), Hash: s.LastHash(), Seq: m.seq}
	data, err := s.MarshalBinary()
	if err == nil {
		m.snapVersion = snap.Version
	}
	<-m.lock
	if err == nil {
		snap.Data = e.sealSnapshot(m.id, &snap, data)
		err = ss.SaveSnapshot(ctx, m.id, snap)
	}
	m.snapping.Store(false)
	if err != nil {
		e.cfg.logger.WarnContext(ctx, "stage: snapshot not saved", "meeting", m.id, "version", snap.Version, "err", err)
		return
	}
	e.cfg.logger.DebugContext(ctx, "stage: snapshot saved", "meeting", m.id, "version", snap.Version, "bytes", len(data))
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
