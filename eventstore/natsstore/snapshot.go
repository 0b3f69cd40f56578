package natsstore

import (
	"context"
	"encoding/base64"
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
	ctx, cancel := withTimeout(ctx)
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

// snapshotKey is the bucket key of a meeting: its id where the id is a
// valid key, else "x." and the id in unpadded URL-safe base64 (meeting ids
// never contain '.', so the two forms cannot collide).
func snapshotKey(meetingID string) string {
	for i := 0; i < len(meetingID); i++ {
		c := meetingID[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '=' || c == '/') {
			return "x." + base64.RawURLEncoding.EncodeToString([]byte(meetingID))
		}
	}
	return meetingID
}

// snapshotFormat is the first byte of a stored snapshot: a format number.
const snapshotFormat = 1

// SaveSnapshot implements [eventstore.Snapshotter.SaveSnapshot]: the
// snapshot replaces the meeting's key in the bucket [SnapshotBucket]. A
// snapshot larger than the server accepts returns an error wrapping
// [ErrTooLarge].
func (s *Store) SaveSnapshot(ctx context.Context, meetingID string, snap eventstore.Snapshot) error {
	if err := s.readable(ctx); err != nil {
		return err
	}
	if err := events.ValidateID(meetingID); err != nil {
		return fmt.Errorf("natsstore: snapshot: %w", err)
	}
	v := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(snap.Hash)+len(snap.Data))
	v = append(v, snapshotFormat)
	v = binary.AppendUvarint(v, snap.Version)
	v = binary.AppendUvarint(v, snap.Seq)
	v = append(v, snap.Hash[:]...)
	v = append(v, snap.Data...)
	if len(v)+headerRoom+len(SnapshotBucket(s.cfg.stream))+len(snapshotKey(meetingID)) > s.maxMsg {
		return fmt.Errorf("%w: snapshot of meeting %s (version %d) is %d bytes, the server takes at most %d",
			ErrTooLarge, meetingID, snap.Version, len(v), s.maxMsg)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if _, err := s.snaps.Put(ctx, snapshotKey(meetingID), v); err != nil {
		return fmt.Errorf("natsstore: save snapshot of meeting %s: %w", meetingID, err)
	}
	return nil
}

// LoadSnapshot implements [eventstore.Snapshotter.LoadSnapshot]. When the
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
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	entry, err := s.snaps.Get(ctx, snapshotKey(meetingID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return eventstore.Snapshot{}, false, nil
	}
	if err != nil {
		return eventstore.Snapshot{}, false, fmt.Errorf("natsstore: load snapshot of meeting %s: %w", meetingID, err)
	}
	snap, err := parseSnapshot(entry.Value())
	if err != nil {
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

func parseSnapshot(v []byte) (eventstore.Snapshot, error) {
	var snap eventstore.Snapshot
	if len(v) == 0 || v[0] != snapshotFormat {
		return snap, errors.New("unknown snapshot format")
	}
	v = v[1:]
	var n int
	if snap.Version, n = binary.Uvarint(v); n <= 0 {
		return snap, errors.New("bad version")
	}
	v = v[n:]
	if snap.Seq, n = binary.Uvarint(v); n <= 0 {
		return snap, errors.New("bad sequence")
	}
	v = v[n:]
	if len(v) < len(snap.Hash) {
		return snap, errors.New("truncated")
	}
	copy(snap.Hash[:], v)
	snap.Data = v[len(snap.Hash):]
	return snap, nil
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
