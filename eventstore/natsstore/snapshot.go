package natsstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

var _ eventstore.Snapshotter = (*Store)(nil)

// SnapshotBucket returns the name of the KV bucket that holds the
// snapshots of the events of stream: the stream's name, with each
// character a bucket name may not hold replaced by '_', and "_SNAPSHOTS".
func SnapshotBucket(stream string) string { return bucketName(stream, "_SNAPSHOTS") }

// bucketName is the name of a KV bucket of stream: the stream's name, with
// each character a bucket name may not hold replaced by '_', and suffix.
func bucketName(stream, suffix string) string {
	b := []byte(stream)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b) + suffix
}

// provisionSnapshots creates the snapshot bucket, or opens it if it exists.
func (s *Store) provisionSnapshots(ctx context.Context) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	name := SnapshotBucket(s.cfg.stream)
	kv, err := s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      name,
		Description: "productdb/stage snapshots of the meetings of stream " + s.cfg.stream + ": a cache, checked against the log",
		History:     1,
		Storage:     s.cfg.storage,
		Replicas:    s.cfg.replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = s.js.KeyValue(ctx, name) // made by another store, maybe with other settings: it is only a cache
	}
	if err != nil {
		return fmt.Errorf("natsstore: snapshot bucket %s: %w", name, err)
	}
	s.snaps = kv
	return nil
}

// The first byte of a stored snapshot is its format: 1, the state
// follows the header as is (written by earlier versions, still read); 2,
// a body kind follows the header (see bodyRaw, bodyZstd, bodyObject).
const (
	snapshotFormat1 = 1
	snapshotFormat  = 2
)

// saveAttempts bounds the compare-and-set loop of SaveSnapshot against
// concurrent writers of the same meeting's snapshot.
const saveAttempts = 8

// SaveSnapshot implements [eventstore.Snapshotter.SaveSnapshot]: the
// snapshot replaces the meeting's key in the bucket [SnapshotBucket]. A
// state of more than a few hundred bytes is compressed (zstd); one still
// too large for one message is stored as an object of its own in the
// object store bucket [SnapshotObjectBucket] (in chunks of the largest
// message the server takes), which the key then names with its length and
// SHA-256. The key is written last, with a compare-and-set on its
// revision, and the object of the snapshot it replaced is then deleted: a
// reader sees one whole snapshot or none, never parts of two.
func (s *Store) SaveSnapshot(ctx context.Context, meetingID string, snap eventstore.Snapshot) error {
	if err := s.readable(ctx); err != nil {
		return err
	}
	if err := events.ValidateID(meetingID); err != nil {
		return fmt.Errorf("natsstore: snapshot: %w", err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	key := meetingKey(meetingID)
	stored, codec, err := compressState(snap.Data)
	if err != nil {
		return fmt.Errorf("natsstore: snapshot of meeting %s: %w", meetingID, err)
	}
	v := make([]byte, 0, 2+3*binary.MaxVarintLen64+len(snap.Hash)+len(stored))
	v = append(v, snapshotFormat)
	v = binary.AppendUvarint(v, snap.Version)
	v = binary.AppendUvarint(v, snap.Seq)
	v = append(v, snap.Hash[:]...)
	var obj string
	if 2+binary.MaxVarintLen64+len(v)+len(stored)+headerRoom+len(SnapshotBucket(s.cfg.stream))+len(key) > s.maxMsg {
		ref, err := s.putObject(ctx, key, snap.Version, stored, codec, len(snap.Data))
		if err != nil {
			return err
		}
		obj = ref.name
		v = ref.append(v)
	} else {
		v = append(v, codec)
		if codec != bodyRaw {
			v = binary.AppendUvarint(v, uint64(len(snap.Data)))
		}
		v = append(v, stored...)
	}
	for range saveAttempts {
		prev, rev, err := s.currentObject(ctx, key)
		if err != nil {
			break
		}
		if rev == 0 {
			_, err = s.snaps.Create(ctx, key, v)
		} else {
			_, err = s.snaps.Update(ctx, key, v, rev)
		}
		if err == nil {
			if prev != "" && prev != obj {
				s.deleteObject(ctx, prev)
			}
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil && !isWrongLastSequence(err) {
			if obj != "" {
				s.deleteObject(ctx, obj)
			}
			return fmt.Errorf("natsstore: save snapshot of meeting %s: %w", meetingID, err)
		}
		// Another writer replaced the key since we read it: read it again.
	}
	if obj != "" {
		s.deleteObject(context.WithoutCancel(ctx), obj)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("natsstore: save snapshot of meeting %s: %w", meetingID, err)
	}
	return fmt.Errorf("natsstore: save snapshot of meeting %s: %d concurrent writers in a row replaced it first", meetingID, saveAttempts)
}

// currentObject returns the object the meeting's stored snapshot names (""
// for none) and the key's revision (0 when it has no value).
func (s *Store) currentObject(ctx context.Context, key string) (string, uint64, error) {
	entry, err := s.snaps.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	if st, err := parseStored(entry.Value()); err == nil && st.kind == bodyObject {
		if ref, err := parseObjectRef(st.body); err == nil {
			return ref.name, entry.Revision(), nil
		}
	}
	return "", entry.Revision(), nil
}

// deleteSnapshot drops the meeting's snapshot and its object, if any.
func (s *Store) deleteSnapshot(ctx context.Context, meetingID string) error {
	key := meetingKey(meetingID)
	obj, _, err := s.currentObject(ctx, key)
	if err != nil {
		return err
	}
	if err := s.snaps.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	if obj != "" {
		s.deleteObject(ctx, obj)
	}
	return nil
}

// LoadSnapshot implements [eventstore.Snapshotter.LoadSnapshot]: it
// returns the whole state, read from the key or from the object it names
// and checked against the length and SHA-256 the key records; a damaged or
// partial one returns an error (the engine then folds the log). When the
// stream's message at the snapshot's Seq is the meeting's event at its
// Version with its Hash, the store remembers that position, so that a Load
// from that version starts there instead of at the meeting's first event.
func (s *Store) LoadSnapshot(ctx context.Context, meetingID string) (eventstore.Snapshot, bool, error) {
	if err := s.readable(ctx); err != nil {
		return eventstore.Snapshot{}, false, err
	}
	if err := events.ValidateID(meetingID); err != nil {
		return eventstore.Snapshot{}, false, fmt.Errorf("natsstore: snapshot: %w", err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var snap eventstore.Snapshot
	for attempt := 0; ; attempt++ {
		entry, err := s.snaps.Get(ctx, meetingKey(meetingID))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return eventstore.Snapshot{}, false, nil
		}
		if err != nil {
			return eventstore.Snapshot{}, false, fmt.Errorf("natsstore: load snapshot of meeting %s: %w", meetingID, err)
		}
		st, err := parseStored(entry.Value())
		if err == nil {
			snap = st.Snapshot
			snap.Data, err = s.stateOf(ctx, st)
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return eventstore.Snapshot{}, false, ctx.Err()
		}
		if st.kind == bodyObject && attempt == 0 {
			// A writer may have replaced the snapshot and deleted its
			// object while we read it: read the key once more.
			continue
		}
		return eventstore.Snapshot{}, false, fmt.Errorf("natsstore: snapshot of meeting %s: %w", meetingID, err)
	}
	if snap.Seq > 0 {
		e, err := s.eventAt(ctx, snap.Seq)
		switch {
		case err == nil && e.MeetingID == meetingID && e.Version == snap.Version && e.Hash == snap.Hash:
			s.setMark(meetingID, head{version: e.Version, seq: e.Seq})
		case ctx.Err() != nil:
			return eventstore.Snapshot{}, false, ctx.Err()
		default:
			s.cfg.logger.DebugContext(ctx, "natsstore: snapshot names a position that does not hold its event", "meeting", meetingID,
				"version", snap.Version, "seq", snap.Seq, "err", err)
		}
	}
	return snap, true, nil
}

// storedSnapshot is a parsed value of the snapshot bucket: the header, and
// the body of its kind.
type storedSnapshot struct {
	eventstore.Snapshot // Data unset
	kind                byte
	body                []byte
}

// stateOf returns the state a stored snapshot holds or names.
func (s *Store) stateOf(ctx context.Context, st storedSnapshot) ([]byte, error) {
	switch st.kind {
	case bodyRaw:
		return st.body, nil
	case bodyZstd:
		raw, n := binary.Uvarint(st.body)
		if n <= 0 {
			return nil, errors.New("bad state length")
		}
		return decompressState(st.body[n:], bodyZstd, raw)
	case bodyObject:
		ref, err := parseObjectRef(st.body)
		if err != nil {
			return nil, err
		}
		return s.getObject(ctx, ref)
	}
	return nil, fmt.Errorf("unknown body kind %d", st.kind)
}

// parseSnapshot returns the version, sequence and hash a stored snapshot
// covers (its Data is not read).
func parseSnapshot(v []byte) (eventstore.Snapshot, error) {
	st, err := parseStored(v)
	return st.Snapshot, err
}

func parseStored(v []byte) (storedSnapshot, error) {
	var st storedSnapshot
	if len(v) == 0 || v[0] != snapshotFormat && v[0] != snapshotFormat1 {
		return st, errors.New("unknown snapshot format")
	}
	format := v[0]
	v = v[1:]
	var n int
	if st.Version, n = binary.Uvarint(v); n <= 0 {
		return st, errors.New("bad version")
	}
	v = v[n:]
	if st.Seq, n = binary.Uvarint(v); n <= 0 {
		return st, errors.New("bad sequence")
	}
	v = v[n:]
	if len(v) < len(st.Hash) {
		return st, errors.New("truncated")
	}
	copy(st.Hash[:], v)
	v = v[len(st.Hash):]
	if format == snapshotFormat1 {
		st.kind, st.body = bodyRaw, v
		return st, nil
	}
	if len(v) == 0 {
		return st, errors.New("truncated")
	}
	st.kind, st.body = v[0], v[1:]
	return st, nil
}

// eventAt fetches the stream's message at seq from the stream leader and
// decodes it as an event.
func (s *Store) eventAt(ctx context.Context, seq uint64) (events.Envelope, error) {
	msg, err := s.leaderGet(ctx, s.cfg.stream, msgGet{Seq: seq})
	if err != nil {
		return events.Envelope{}, err
	}
	if msg == nil || !strings.HasPrefix(msg.Subject, s.cfg.prefix+".") {
		return events.Envelope{}, errors.New("not an event")
	}
	return s.decode(msg.Subject, msg.Seq, msg.Data)
}

// setMark records a meeting's event position that a snapshot names and the
// stream confirmed: a Load from that version starts there.
func (s *Store) setMark(meetingID string, h head) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marks == nil || len(s.marks) >= maxHeads {
		s.marks = map[string]head{}
	}
	s.marks[meetingID] = h
}

func (s *Store) getMark(meetingID string) (head, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.marks[meetingID]
	return h, ok
}
