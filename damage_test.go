package stage_test

// The damage harness: a store written through the embedded default,
// stopped, and its data files damaged the way disks and operators damage
// them (bits flipped, a block deleted, zeroed or cut short), for the
// tests of damagetable_test.go.
//
// nats-server keeps a stream's messages in block files,
// DIR/jetstream/$G/streams/<STREAM>/msgs/<n>.blk, each a run of records:
//
//	rl     uint32 LE  record length, with bit 31 set if it has headers
//	seq    uint64 LE  stream sequence (bit 63: erased, bit 62: tombstone)
//	ts     int64  LE  time, Unix nanoseconds
//	slen   uint16 LE  subject length
//	subject
//	[hlen uint32 LE, headers]   if it has headers
//	msg               the message: here, the event's JSON
//	hash   [8]byte    highwayhash of seq, ts, subject, headers and msg

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/replay"
)

// damageStreamDir is where a server on data directory dir keeps stream's
// files.
func damageStreamDir(dir, stream string) string {
	return filepath.Join(dir, "jetstream", "$G", "streams", stream)
}

// damageBlocks returns the stream's message block files in dir (of a
// stopped server), first to last.
func damageBlocks(t testing.TB, dir, stream string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(damageStreamDir(dir, stream), "msgs", "*.blk"))
	if err != nil {
		t.Fatal(err)
	}
	index := func(p string) int {
		n, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(p), ".blk"))
		if err != nil {
			t.Fatalf("block file %s: %v", p, err)
		}
		return n
	}
	slices.SortFunc(paths, func(a, b string) int { return index(a) - index(b) })
	if len(paths) == 0 {
		t.Fatalf("no block files of stream %s in %s", stream, dir)
	}
	return paths
}

// damageRecord is one message record of a block file: where it is, its
// stream sequence and subject, and where its message (the event's JSON)
// is.
type damageRecord struct {
	Off, Len       int
	Seq            uint64
	Subject        string
	MsgOff, MsgLen int
}

// damageRecords parses a block file's records, stopping at the first one
// that does not parse.
func damageRecords(t testing.TB, path string) []damageRecord {
	t.Helper()
	b := damageRead(t, path)
	const hdrSize, hashSize = 22, 8
	le := binary.LittleEndian
	var out []damageRecord
	for off := 0; off+hdrSize <= len(b); {
		rl := le.Uint32(b[off:])
		hasHdr := rl&(1<<31) != 0
		rl &^= 1 << 31
		slen := int(le.Uint16(b[off+20:]))
		end := off + int(rl)
		if int(rl) < hdrSize+slen+hashSize || end > len(b) {
			break
		}
		r := damageRecord{Off: off, Len: int(rl), Seq: le.Uint64(b[off+4:]) &^ (3 << 62), Subject: string(b[off+hdrSize : off+hdrSize+slen])}
		r.MsgOff = off + hdrSize + slen
		if hasHdr {
			if r.MsgOff+4 > end-hashSize {
				break
			}
			r.MsgOff += 4 + int(le.Uint32(b[r.MsgOff:]))
		}
		r.MsgLen = end - hashSize - r.MsgOff
		if r.MsgLen < 0 {
			break
		}
		out = append(out, r)
		off = end
	}
	return out
}

// damageFlipBit flips bit (0-7) of the byte at off in the file at path.
func damageFlipBit(t testing.TB, path string, off int, bit uint) {
	t.Helper()
	damageEdit(t, path, func(b []byte) []byte {
		if off < 0 || off >= len(b) {
			t.Fatalf("%s: no byte at %d (%d bytes)", path, off, len(b))
		}
		b[off] ^= 1 << (bit % 8)
		return b
	})
}

// damageFlipBits flips n random bits of the file at path, each in a
// different byte, and returns their offsets, sorted. The bytes are drawn
// from spans (offset and length pairs) if any are given, else from the
// whole file.
func damageFlipBits(t testing.TB, path string, n int, rng *rand.Rand, spans ...[2]int) []int {
	t.Helper()
	var offs []int
	damageEdit(t, path, func(b []byte) []byte {
		if len(spans) == 0 {
			spans = [][2]int{{0, len(b)}}
		}
		var pool []int
		for _, s := range spans {
			for i := s[0]; i < s[0]+s[1] && i < len(b); i++ {
				pool = append(pool, i)
			}
		}
		if len(pool) < n {
			t.Fatalf("%s: %d bytes to flip bits in, want %d", path, len(pool), n)
		}
		rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
		offs = slices.Sorted(slices.Values(pool[:n]))
		for _, o := range offs {
			b[o] ^= 1 << rng.UintN(8)
		}
		return b
	})
	return offs
}

// damageDeleteLastBlock deletes the stream's last block file and returns
// its path.
func damageDeleteLastBlock(t testing.TB, dir, stream string) string {
	t.Helper()
	blks := damageBlocks(t, dir, stream)
	last := blks[len(blks)-1]
	if err := os.Remove(last); err != nil {
		t.Fatal(err)
	}
	return last
}

// damageTruncateTail cuts n bytes off the end of the stream's last block.
func damageTruncateTail(t testing.TB, dir, stream string, n int) {
	t.Helper()
	blks := damageBlocks(t, dir, stream)
	damageTruncate(t, blks[len(blks)-1], -n)
}

// damageTruncate cuts the file at path to size bytes (a negative size cuts
// that many bytes off its end).
func damageTruncate(t testing.TB, path string, size int) {
	t.Helper()
	damageEdit(t, path, func(b []byte) []byte {
		if size < 0 {
			size += len(b)
		}
		if size < 0 || size > len(b) {
			t.Fatalf("%s: cannot cut %d bytes to %d", path, len(b), size)
		}
		return b[:size]
	})
}

// damageZeroFirstByte sets the first byte of the file at path to zero.
func damageZeroFirstByte(t testing.TB, path string) {
	t.Helper()
	damageEdit(t, path, func(b []byte) []byte {
		if len(b) == 0 {
			t.Fatalf("%s is empty", path)
		}
		b[0] = 0
		return b
	})
}

// damageZero overwrites the whole file at path with zeros.
func damageZero(t testing.TB, path string) {
	t.Helper()
	damageEdit(t, path, func(b []byte) []byte {
		clear(b)
		return b
	})
}

// damageRemove deletes the file at path.
func damageRemove(t testing.TB, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// damageRead returns the contents of the file at path.
func damageRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// damageForgeHost edits a snapshot (aggregate.State.MarshalBinary) so that
// user, a participant with CanRequest access, is a host (Allowed, and
// accepting requests), and seals it again with a valid checksum: a forgery
// only a signature can tell from the real thing.
func damageForgeHost(t testing.TB, snap []byte, user string) []byte {
	t.Helper()
	str := func(s string) []byte { return append(binary.AppendUvarint(nil, uint64(len(s))), s...) }
	old := append(append(str(user), str(string(events.CanRequest))...), 0)
	i := bytes.Index(snap, old)
	if i < 0 || len(snap) < 4 {
		t.Fatalf("no CanRequest participant %s in the snapshot", user)
	}
	forged := slices.Concat(snap[:i], str(user), str(string(events.Allowed)), []byte{1}, snap[i+len(old):len(snap)-4])
	return binary.BigEndian.AppendUint32(forged, crc32.Checksum(forged, crc32.MakeTable(crc32.Castagnoli)))
}

// damageEdit rewrites the file at path with edit's result, in place.
func damageEdit(t testing.TB, path string, edit func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

// damageStore is a store written through the embedded default and then
// stopped, ready to be damaged.
type damageStore struct {
	Dir      string
	Meetings map[string]uint64 // meeting -> its version
	Events   int
}

// newDamageStore writes meetings (each seeded with eoSeed, then n
// commands: carol's requests and cancellations by turns) through an Engine
// on the embedded default in a new directory, and stops it.
func newDamageStore(t *testing.T, n int, meetings ...string) *damageStore {
	t.Helper()
	ds := &damageStore{Dir: t.TempDir(), Meetings: map[string]uint64{}}
	ds.write(t, n, meetings...)
	return ds
}

// write adds to ds's meetings (eoSeed on a new one, then n commands), on
// the embedded default started again on ds.Dir, and stops it.
func (ds *damageStore) write(t *testing.T, n int, meetings ...string) {
	t.Helper()
	ctx := context.Background()
	emb, err := natsstore.OpenEmbedded(ctx, ds.Dir)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stage.New(emb.Store)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range meetings {
		if ds.Meetings[m] == 0 {
			eoSeed(t, eng, m)
		}
		for range n { // carol requests and cancels, by turns
			var err error
			if st, _ := eng.Status(ctx, m, "carol"); st == aggregate.RequestedToJoinStage {
				_, err = eng.CancelRequestAccess(ctx, m, "carol")
			} else {
				_, err = eng.RequestAccess(ctx, m, "carol")
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		r, err := eng.Roster(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		ds.Events += int(r.Version - ds.Meetings[m])
		ds.Meetings[m] = r.Version
	}
	eng.Close()
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}
}

// damageRun is what a damaged store answers.
type damageRun struct {
	// OpenErr is the error of opening the embedded default on the damaged
	// directory, if it failed (the rest is then empty).
	OpenErr error
	// Versions are the meetings' versions as a new Engine reads them, and
	// ReadErrs the errors of those reads.
	Versions map[string]uint64
	ReadErrs map[string]error
	// AppendErrs are the errors of one more command on each meeting (nil:
	// the Engine stored it), and Appended the versions they stored.
	AppendErrs map[string]error
	Appended   map[string]uint64
}

// damageEngine opens the embedded default on ds.Dir, reads every meeting
// with a new Engine, tries one more command on each (damageProbe:
// the backend adding a user: legal on any state), and stops it.
func damageEngine(t *testing.T, ds *damageStore) damageRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := damageRun{Versions: map[string]uint64{}, ReadErrs: map[string]error{}, AppendErrs: map[string]error{}, Appended: map[string]uint64{}}
	emb, err := natsstore.OpenEmbedded(ctx, ds.Dir)
	if err != nil {
		run.OpenErr = err
		return run
	}
	defer emb.Close()
	eng, err := stage.New(emb.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for m := range ds.Meetings {
		r, err := eng.Roster(ctx, m)
		run.Versions[m], run.ReadErrs[m] = r.Version, err
		res, err := eng.Execute(ctx, m, damageProbe)
		run.AppendErrs[m] = err
		if err == nil {
			run.Appended[m] = res.Version
		}
	}
	return run
}

// damageProbe is the command damageEngine tries: the backend adds a new
// user, which the rules accept on any state, even an empty one.
var damageProbe = aggregate.Command{Action: aggregate.AddParticipant{Participant: aggregate.Participant{UserID: "probe", Permissions: eoViewer}}}

// damageVerify runs replay.Verify over the data directory as stagereplay
// does, bounded by limit: timedOut reports a verify still running then.
func damageVerify(t *testing.T, dir string, limit time.Duration) (rep *replay.Report, err error, timedOut bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	type result struct {
		rep *replay.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		src, err := replay.Open(ctx, dir)
		if err != nil {
			done <- result{nil, err}
			return
		}
		rep, err := replay.Verify(ctx, src.Events(ctx, ""))
		src.Close() // before answering: it lets the directory go
		done <- result{rep, err}
	}()
	select {
	case r := <-done:
		if errors.Is(r.err, context.DeadlineExceeded) {
			return r.rep, r.err, true
		}
		return r.rep, r.err, false
	case <-time.After(limit + 5*time.Second):
		return nil, nil, true
	}
}
