package natsstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore"
)

var _ eventstore.CommandIndex = (*Store)(nil)

// KeyBucket returns the name of the KV bucket that holds the command index
// of stream (see [eventstore.CommandIndex]): the stream's name as in
// [SnapshotBucket], and "_KEYS".
func KeyBucket(stream string) string { return bucketName(stream, "_KEYS") }

// provisionKeys creates the command index bucket, whose entries expire
// after the key retention, or opens it if it exists. An existing bucket
// with another retention is an error: several stores on one stream must
// agree on how long a retry is recognised.
func (s *Store) provisionKeys(ctx context.Context) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	name := KeyBucket(s.cfg.stream)
	kv, err := s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      name,
		Description: "productdb/stage command index of stream " + s.cfg.stream + ": where each caller-keyed command was to be stored",
		History:     1,
		TTL:         s.cfg.keyRetention,
		Storage:     s.cfg.storage,
		Replicas:    s.cfg.replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = s.js.KeyValue(ctx, name)
		if err == nil {
			var st jetstream.KeyValueStatus
			if st, err = kv.Status(ctx); err == nil && st.TTL() != s.cfg.keyRetention {
				return fmt.Errorf("%w: command index bucket %s keeps keys for %v, this store is configured for %v (WithKeyRetention)",
					ErrInvalidOption, name, st.TTL(), s.cfg.keyRetention)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("natsstore: command index bucket %s: %w", name, err)
	}
	s.keys = kv
	return nil
}

// indexKey is the bucket key of a command key in a meeting: hex of the
// first 16 bytes of the SHA-256 of both (any meeting id is then a valid
// bucket key; the record's value names its meeting, and is checked).
func indexKey(meetingID string, k events.CommandKey) string {
	h := sha256.New()
	h.Write([]byte(meetingID))
	h.Write([]byte{0})
	h.Write(k[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// indexFormat is the first byte of a stored record: a format number.
const indexFormat = 1

// RecordCommand implements [eventstore.CommandIndex.RecordCommand]: a put
// to the bucket [KeyBucket], acknowledged once stored as the stream's
// events are (synced before the acknowledgement on the embedded default).
func (s *Store) RecordCommand(ctx context.Context, meetingID string, k events.CommandKey, rec eventstore.CommandRecord) error {
	if err := s.readable(ctx); err != nil {
		return err
	}
	if err := events.ValidateID(meetingID); err != nil {
		return fmt.Errorf("natsstore: record command: %w", err)
	}
	v := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(meetingID))
	v = append(v, indexFormat)
	v = binary.AppendUvarint(v, rec.Version)
	v = binary.AppendVarint(v, rec.Time.UnixNano())
	v = append(v, meetingID...)
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.usable(ctx, "KV_"+KeyBucket(s.cfg.stream)); err != nil { // not buffered while disconnected (outcome.go)
		return fmt.Errorf("natsstore: record command %s of meeting %s: %w", k, meetingID, err)
	}
	if err := s.watched(ctx, "KV_"+KeyBucket(s.cfg.stream), true, func(ctx context.Context) error { _, err := s.keys.Put(ctx, indexKey(meetingID, k), v); return err }); err != nil {
		return fmt.Errorf("natsstore: record command %s of meeting %s: %w", k, meetingID, err)
	}
	return nil
}

// FindCommand implements [eventstore.CommandIndex.FindCommand]. It reads
// from the bucket's stream leader, as the store reads a meeting's head: a
// direct get may reach a replica that has not yet stored a record just
// written (or, on a new bucket, find no responder at all). A record
// that does not decode, or names another meeting, is reported as an error
// wrapping eventstore.ErrCorrupt: the index is not trusted blindly.
func (s *Store) FindCommand(ctx context.Context, meetingID string, k events.CommandKey) (eventstore.CommandRecord, bool, error) {
	if err := s.readable(ctx); err != nil {
		return eventstore.CommandRecord{}, false, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	key := indexKey(meetingID, k)
	msg, err := s.leaderGet(ctx, "KV_"+KeyBucket(s.cfg.stream), msgGet{LastBySubject: "$KV." + KeyBucket(s.cfg.stream) + "." + key})
	if err != nil {
		return eventstore.CommandRecord{}, false, fmt.Errorf("natsstore: find command %s of meeting %s: %w", k, meetingID, err)
	}
	if msg == nil {
		return eventstore.CommandRecord{}, false, nil
	}
	v := msg.Data
	bad := func(why string) error {
		return fmt.Errorf("%w: command index %s, key %s: %s", eventstore.ErrCorrupt, KeyBucket(s.cfg.stream), key, why)
	}
	if len(v) < 1 || v[0] != indexFormat {
		return eventstore.CommandRecord{}, false, bad("unknown format")
	}
	v = v[1:]
	version, n := binary.Uvarint(v)
	if n <= 0 {
		return eventstore.CommandRecord{}, false, bad("bad version")
	}
	v = v[n:]
	nanos, n := binary.Varint(v)
	if n <= 0 {
		return eventstore.CommandRecord{}, false, bad("bad time")
	}
	if string(v[n:]) != meetingID {
		return eventstore.CommandRecord{}, false, bad(fmt.Sprintf("record of meeting %q, not %q", v[n:], meetingID))
	}
	return eventstore.CommandRecord{Version: version, Time: time.Unix(0, nanos).UTC()}, true, nil
}

// KeyRetention implements [eventstore.CommandIndex.KeyRetention].
func (s *Store) KeyRetention() time.Duration { return s.cfg.keyRetention }
