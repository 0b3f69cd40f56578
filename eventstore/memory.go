package eventstore

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/productdb/stage/events"
)

// Memory is a Store that keeps every event in process memory: the embedded
// default for tests, demos and single-process deployments that need no
// durability. It is safe for concurrent use and passes the same conformance
// suite (eventstore/storetest) as the JetStream store. The zero value is not
// usable; call [NewMemory].
type Memory struct {
	mu       sync.RWMutex
	log      [][]events.Envelope      // global order in chunks of chunkSize; event Seq s is log[(s-1)/chunkSize][(s-1)%chunkSize]
	n        uint64                   // events stored
	meetings map[string][]uint64      // meeting -> Seq of each version (index = version-1)
	changed  chan struct{}            // closed by the next append, if a subscriber made one
	mchanged map[string]chan struct{} // meeting -> closed by its next append, if a meeting subscriber made one
	snaps    map[string]Snapshot      // meeting -> latest snapshot

	// The followers of appends (FollowHeads), by a key of their own.
	followers map[uint64]func(string, uint64)
	nfollow   uint64

	// The command index: each meeting's records, and every record in the
	// order recorded, to drop those older than the retention.
	retention time.Duration
	keys      map[string]map[events.CommandKey]CommandRecord
	keyLog    []keyEntry
	newest    time.Time // the latest record's Time
}

type keyEntry struct {
	meeting string
	key     events.CommandKey
	rec     CommandRecord
}

var (
	_ Store        = (*Memory)(nil)
	_ Snapshotter  = (*Memory)(nil)
	_ CommandIndex = (*Memory)(nil)

	_ MeetingSubscriber = (*Memory)(nil)
	_ HeadFollower      = (*Memory)(nil)
)

// MemoryOption configures [NewMemory].
type MemoryOption func(*Memory)

// WithKeyRetention sets how long the store's command index keeps a
// command's idempotency key (default [DefaultKeyRetention]). A d of zero
// or less keeps the default.
func WithKeyRetention(d time.Duration) MemoryOption {
	return func(m *Memory) {
		if d > 0 {
			m.retention = d
		}
	}
}

// chunkSize is the number of events per chunk of the log: appending never
// copies stored events, so a long log costs no more to extend than a short one.
const chunkSize = 4096

// at returns the event at global position seq (1-based); m.mu must be held.
func (m *Memory) at(seq uint64) events.Envelope {
	i := seq - 1
	return m.log[i/chunkSize][i%chunkSize]
}

// NewMemory returns an empty in-memory store. Its command index
// ([CommandIndex]) keeps keys for [DefaultKeyRetention] unless an option
// says otherwise.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{meetings: map[string][]uint64{}, snaps: map[string]Snapshot{}, mchanged: map[string]chan struct{}{},
		retention: DefaultKeyRetention, keys: map[string]map[events.CommandKey]CommandRecord{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Append implements [Store.Append].
func (m *Memory) Append(ctx context.Context, meetingID string, expectedVersion uint64, evs []events.Envelope) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, NotStored(err)
	}
	if err := CheckAppend(meetingID, expectedVersion, evs); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seqs := m.meetings[meetingID]
	if uint64(len(seqs)) != expectedVersion {
		return 0, fmt.Errorf("%w: meeting %s is at version %d, expected %d", ErrConflict, meetingID, len(seqs), expectedVersion)
	}
	for _, e := range evs {
		if m.n%chunkSize == 0 {
			m.log = append(m.log, make([]events.Envelope, 0, chunkSize))
		}
		m.n++
		e.Seq = m.n
		last := len(m.log) - 1
		m.log[last] = append(m.log[last], e)
		seqs = append(seqs, e.Seq)
	}
	m.meetings[meetingID] = seqs
	for _, f := range m.followers {
		// Before Append returns: a reader told the append is done has
		// heard of it. f must not call the store.
		f(meetingID, m.n)
	}
	if m.changed != nil {
		close(m.changed)
		m.changed = nil
	}
	if ch, ok := m.mchanged[meetingID]; ok {
		close(ch)
		delete(m.mchanged, meetingID)
	}
	return m.n, nil
}

// FollowHeads implements [HeadFollower]. appended is called by Append,
// with the store locked, before Append returns: it must be quick and must
// not call the store. The reports are always current until ctx is done.
func (m *Memory) FollowHeads(ctx context.Context, appended func(meetingID string, seq uint64)) (func() bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.followers == nil {
		m.followers = map[uint64]func(string, uint64){}
	}
	m.nfollow++
	key := m.nfollow
	m.followers[key] = appended
	m.mu.Unlock()
	context.AfterFunc(ctx, func() {
		m.mu.Lock()
		delete(m.followers, key)
		m.mu.Unlock()
	})
	return func() bool { return ctx.Err() == nil }, nil
}

// Load implements [Store.Load].
func (m *Memory) Load(ctx context.Context, meetingID string, fromVersion uint64) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		if fromVersion == 0 {
			fromVersion = 1
		}
		m.mu.RLock()
		seqs := m.meetings[meetingID]
		end := uint64(len(seqs))
		m.mu.RUnlock()
		for v := fromVersion; v <= end; v++ {
			if err := ctx.Err(); err != nil {
				yield(events.Envelope{}, err)
				return
			}
			m.mu.RLock()
			e := m.at(seqs[v-1])
			m.mu.RUnlock()
			if !yield(e, nil) {
				return
			}
		}
	}
}

// ReadAll implements [Store.ReadAll].
func (m *Memory) ReadAll(ctx context.Context, from uint64) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		m.mu.RLock()
		end := m.n
		m.mu.RUnlock()
		m.each(ctx, max(from, 1), end, yield)
	}
}

// each yields log[from-1 .. end-1]; it reports false if it stopped early.
func (m *Memory) each(ctx context.Context, from, end uint64, yield func(events.Envelope, error) bool) bool {
	for s := from; s <= end; s++ {
		if err := ctx.Err(); err != nil {
			yield(events.Envelope{}, err)
			return false
		}
		m.mu.RLock()
		e := m.at(s)
		m.mu.RUnlock()
		if !yield(e, nil) {
			return false
		}
	}
	return true
}

// Subscribe implements [Store.Subscribe].
func (m *Memory) Subscribe(ctx context.Context, from uint64) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		next := max(from, 1)
		for {
			m.mu.Lock()
			end := m.n
			if m.changed == nil {
				m.changed = make(chan struct{})
			}
			changed := m.changed
			m.mu.Unlock()
			if !m.each(ctx, next, end, yield) {
				return
			}
			next = max(next, end+1)
			select {
			case <-changed:
			case <-ctx.Done():
				yield(events.Envelope{}, ctx.Err())
				return
			}
		}
	}
}

// SubscribeMeeting implements [MeetingSubscriber.SubscribeMeeting] from the
// meeting's own index: it reads none of the other meetings' events, and an
// append wakes only the subscribers of its meeting.
func (m *Memory) SubscribeMeeting(ctx context.Context, meetingID string, fromVersion uint64) iter.Seq2[events.Envelope, error] {
	return func(yield func(events.Envelope, error) bool) {
		if err := events.ValidateID(meetingID); err != nil {
			yield(events.Envelope{}, fmt.Errorf("eventstore: subscribe meeting: %w", err))
			return
		}
		next := max(fromVersion, 1)
		for {
			m.mu.Lock()
			seqs := m.meetings[meetingID]
			end := uint64(len(seqs))
			var changed chan struct{}
			if next > end {
				changed = m.mchanged[meetingID]
				if changed == nil {
					changed = make(chan struct{})
					m.mchanged[meetingID] = changed
				}
			}
			m.mu.Unlock()
			if changed != nil {
				select {
				case <-changed:
					continue
				case <-ctx.Done():
					yield(events.Envelope{}, ctx.Err())
					return
				}
			}
			for ; next <= end; next++ {
				if err := ctx.Err(); err != nil {
					yield(events.Envelope{}, err)
					return
				}
				m.mu.RLock()
				e := m.at(seqs[next-1])
				m.mu.RUnlock()
				if !yield(e, nil) {
					return
				}
			}
		}
	}
}

// SaveSnapshot implements [Snapshotter.SaveSnapshot]: it keeps a copy of
// snap unless the meeting has a snapshot of a later version.
func (m *Memory) SaveSnapshot(ctx context.Context, meetingID string, snap Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := events.ValidateID(meetingID); err != nil {
		return fmt.Errorf("eventstore: snapshot: %w", err)
	}
	snap.Data = slices.Clone(snap.Data)
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.snaps[meetingID]; !ok || old.Version <= snap.Version {
		m.snaps[meetingID] = snap
	}
	return nil
}

// LoadSnapshot implements [Snapshotter.LoadSnapshot].
func (m *Memory) LoadSnapshot(ctx context.Context, meetingID string) (Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, false, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	snap, ok := m.snaps[meetingID]
	snap.Data = slices.Clone(snap.Data)
	return snap, ok, nil
}

// RecordCommand implements [CommandIndex.RecordCommand]. Records older
// than the retention, counted back from the latest record's Time, are
// dropped as new ones come: the index holds the keys of one retention.
func (m *Memory) RecordCommand(ctx context.Context, meetingID string, k events.CommandKey, rec CommandRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := events.ValidateID(meetingID); err != nil {
		return fmt.Errorf("eventstore: record command: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rec.Time.After(m.newest) {
		m.newest = rec.Time
	}
	cut := m.newest.Add(-m.retention)
	n := 0
	for n < len(m.keyLog) && m.keyLog[n].rec.Time.Before(cut) {
		old := m.keyLog[n]
		if ks := m.keys[old.meeting]; ks[old.key] == old.rec {
			delete(ks, old.key)
			if len(ks) == 0 {
				delete(m.keys, old.meeting)
			}
		}
		n++
	}
	m.keyLog = m.keyLog[n:]
	ks := m.keys[meetingID]
	if ks == nil {
		ks = map[events.CommandKey]CommandRecord{}
		m.keys[meetingID] = ks
	}
	ks[k] = rec
	m.keyLog = append(m.keyLog, keyEntry{meeting: meetingID, key: k, rec: rec})
	return nil
}

// FindCommand implements [CommandIndex.FindCommand].
func (m *Memory) FindCommand(ctx context.Context, meetingID string, k events.CommandKey) (CommandRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return CommandRecord{}, false, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	rec, ok := m.keys[meetingID][k]
	return rec, ok, nil
}

// KeyRetention implements [CommandIndex.KeyRetention].
func (m *Memory) KeyRetention() time.Duration { return m.retention }
