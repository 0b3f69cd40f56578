package natsstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// SnapshotObjectBucket returns the name of the JetStream object store
// bucket that holds the snapshots of the meetings of stream too large for
// one message, even compressed: [SnapshotBucket] and "_OBJ". The store
// creates it on the first such snapshot.
func SnapshotObjectBucket(stream string) string { return bucketName(stream, "_SNAPSHOTS_OBJ") }

// How a stored snapshot's state is kept (format 2, after the header):
// the state itself, compressed with zstd, in the value; or in an object of
// [SnapshotObjectBucket] that the value names, with its length and SHA-256.
const (
	bodyRaw    = 0 // the state, as is
	bodyZstd   = 1 // uvarint raw length, the state compressed with zstd
	bodyObject = 2 // uvarint raw length, uvarint stored length, SHA-256 of the stored bytes, codec byte, object name
)

// compressMin is the smallest state worth compressing: below it the
// frame's overhead eats the gain.
const compressMin = 512

// maxSnapshotRaw bounds the decompressed size a stored snapshot may claim,
// so that a damaged length cannot make the reader allocate without limit.
const maxSnapshotRaw = 1 << 30

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

// codecs returns the package's zstd encoder and decoder, made once; both
// are safe for concurrent EncodeAll and DecodeAll.
func codecs() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(2),
			zstd.WithLowerEncoderMem(true))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxSnapshotRaw),
			zstd.WithDecoderLowmem(true))
	})
	return zstdEnc, zstdDec, zstdErr
}

// compressState returns the bytes to store for a state and their codec:
// zstd when the state is large enough and shrinks, else the state itself.
func compressState(data []byte) ([]byte, byte, error) {
	if len(data) < compressMin {
		return data, bodyRaw, nil
	}
	enc, _, err := codecs()
	if err != nil {
		return nil, 0, err
	}
	z := enc.EncodeAll(data, make([]byte, 0, len(data)/4))
	if len(z) >= len(data) {
		return data, bodyRaw, nil
	}
	return z, bodyZstd, nil
}

// decompressState returns the state of stored bytes of codec, which must be
// raw bytes long.
func decompressState(stored []byte, codec byte, raw uint64) ([]byte, error) {
	switch codec {
	case bodyRaw:
		if uint64(len(stored)) != raw {
			return nil, fmt.Errorf("state of %d bytes, the snapshot names %d", len(stored), raw)
		}
		return stored, nil
	case bodyZstd:
		if raw > maxSnapshotRaw {
			return nil, fmt.Errorf("state of %d bytes claimed, at most %d", raw, maxSnapshotRaw)
		}
		_, dec, err := codecs()
		if err != nil {
			return nil, err
		}
		out, err := dec.DecodeAll(stored, make([]byte, 0, raw))
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		if uint64(len(out)) != raw {
			return nil, fmt.Errorf("state of %d bytes decompressed, the snapshot names %d", len(out), raw)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown codec %d", codec)
}

// snapObjects is the store's handle on [SnapshotObjectBucket], opened (or
// created) on first use.
type snapObjects struct {
	mu  sync.Mutex
	obs jetstream.ObjectStore
}

// objects returns the object bucket of large snapshots; with create, it
// creates it if it does not exist.
func (s *Store) objects(ctx context.Context, create bool) (jetstream.ObjectStore, error) {
	s.sobjs.mu.Lock()
	defer s.sobjs.mu.Unlock()
	if s.sobjs.obs != nil {
		return s.sobjs.obs, nil
	}
	name := SnapshotObjectBucket(s.cfg.stream)
	obs, err := s.js.ObjectStore(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) && create {
		obs, err = s.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      name,
			Description: "productdb/stage snapshots too large for one message, of the meetings of stream " + s.cfg.stream + ": a cache, checked against the log",
			Storage:     s.cfg.storage,
			Replicas:    s.cfg.replicas,
			Compression: false, // the snapshots are compressed already
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			obs, err = s.js.ObjectStore(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natsstore: snapshot object bucket %s: %w", name, err)
	}
	s.sobjs.obs = obs
	return obs, nil
}

// objectRef is where a large snapshot's state is: an object, its length and
// digest as stored, its codec, and the length of the state.
type objectRef struct {
	name   string
	raw    uint64
	stored uint64
	digest [sha256.Size]byte
	codec  byte
}

func (r *objectRef) append(b []byte) []byte {
	b = append(b, bodyObject)
	b = binary.AppendUvarint(b, r.raw)
	b = binary.AppendUvarint(b, r.stored)
	b = append(b, r.digest[:]...)
	b = append(b, r.codec)
	return append(b, r.name...)
}

func parseObjectRef(b []byte) (objectRef, error) {
	var r objectRef
	var n int
	if r.raw, n = binary.Uvarint(b); n <= 0 {
		return r, errors.New("bad state length")
	}
	b = b[n:]
	if r.stored, n = binary.Uvarint(b); n <= 0 {
		return r, errors.New("bad stored length")
	}
	b = b[n:]
	if len(b) < sha256.Size+2 {
		return r, errors.New("truncated object reference")
	}
	copy(r.digest[:], b)
	r.codec = b[sha256.Size]
	r.name = string(b[sha256.Size+1:])
	return r, nil
}

// putObject stores a large snapshot's bytes as a new object of its own
// (never replacing another snapshot's), in chunks of the largest message
// the server takes, and returns its reference.
func (s *Store) putObject(ctx context.Context, key string, version uint64, stored []byte, codec byte, raw int) (objectRef, error) {
	obs, err := s.objects(ctx, true)
	if err != nil {
		return objectRef{}, err
	}
	ref := objectRef{name: key + "/" + strconv.FormatUint(version, 10) + "/" + nuid.Next(), raw: uint64(raw),
		stored: uint64(len(stored)), digest: sha256.Sum256(stored), codec: codec}
	chunk := uint32(max(s.maxMsg-headerRoom, 64<<10))
	_, err = obs.Put(ctx, jetstream.ObjectMeta{Name: ref.name, Opts: &jetstream.ObjectMetaOptions{ChunkSize: chunk}}, bytes.NewReader(stored))
	if err != nil {
		return objectRef{}, fmt.Errorf("natsstore: save snapshot object %s: %w", ref.name, err)
	}
	return ref, nil
}

// getObject reads a large snapshot's state and checks it against its
// reference: a chunk missing, damaged or of another snapshot fails. The
// chunks are read with batched direct gets on their subject, not with a
// consumer: a snapshot whose chunks a writer purged meanwhile fails at
// once instead of waiting for chunks that will never come.
func (s *Store) getObject(ctx context.Context, ref objectRef) ([]byte, error) {
	if ref.stored > maxSnapshotRaw {
		return nil, fmt.Errorf("object of %d bytes claimed, at most %d", ref.stored, maxSnapshotRaw)
	}
	obs, err := s.objects(ctx, false)
	if err != nil {
		return nil, err
	}
	info, err := obs.GetInfo(ctx, ref.name)
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", ref.name, err)
	}
	if info.NUID == "" || info.Size != ref.stored {
		return nil, fmt.Errorf("object %s: %d bytes, the snapshot names %d", ref.name, info.Size, ref.stored)
	}
	bucket := SnapshotObjectBucket(s.cfg.stream)
	subject := "$O." + bucket + ".C." + info.NUID
	stored := make([]byte, 0, ref.stored)
	next, got := uint64(1), 0
	for got < int(info.Chunks) {
		msgs, err := jetstreamext.GetBatch(ctx, s.js, "OBJ_"+bucket, int(info.Chunks)-got,
			jetstreamext.GetBatchSeq(next), jetstreamext.GetBatchSubject(subject))
		if err != nil {
			return nil, fmt.Errorf("object %s: %w", ref.name, err)
		}
		n := 0
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("object %s: %w", ref.name, err)
			}
			if m.Sequence < next {
				continue
			}
			if uint64(len(stored)+len(m.Data)) > ref.stored {
				return nil, fmt.Errorf("object %s: chunks past the %d bytes the snapshot names", ref.name, ref.stored)
			}
			stored = append(stored, m.Data...)
			next = m.Sequence + 1
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("object %s: %d of its %d chunks missing", ref.name, int(info.Chunks)-got, info.Chunks)
		}
		got += n
	}
	if uint64(len(stored)) != ref.stored || sha256.Sum256(stored) != ref.digest {
		return nil, fmt.Errorf("object %s: %d bytes that do not match the %d bytes and digest the snapshot names", ref.name, len(stored), ref.stored)
	}
	return decompressState(stored, ref.codec, ref.raw)
}

// deleteObject drops a snapshot's object that no snapshot names any more.
func (s *Store) deleteObject(ctx context.Context, name string) {
	obs, err := s.objects(ctx, false)
	if err == nil {
		err = obs.Delete(ctx, name)
	}
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		s.cfg.logger.WarnContext(ctx, "natsstore: old snapshot object not deleted", "object", name, "err", err)
	}
}
