package natsstore

// Fuzz target for what the store reads from its snapshot bucket: the value
// of a meeting's key, which anyone with write access to the bucket (or a
// damaged disk) may have changed. The seed corpus is in
// testdata/fuzz/FuzzParseSnapshot/ (go test runs it as a regular test);
// .ci/fuzz runs the target briefly, as it runs every func Fuzz... in the
// module. Run it longer with
//
//	go test ./eventstore/natsstore -run '^$' -fuzz '^FuzzParseSnapshot$' -fuzztime 1m

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/productdb/stage/eventstore"
)

// encodeSnapshot is the encoding of a bucket value of format 1 (as
// earlier versions wrote it), or of format 2 with an inline body of kind.
func encodeSnapshot(s eventstore.Snapshot) []byte { return encodeStored(s, snapshotFormat1, 0, nil) }

func encodeStored(s eventstore.Snapshot, format, kind byte, body []byte) []byte {
	v := []byte{format}
	v = binary.AppendUvarint(v, s.Version)
	v = binary.AppendUvarint(v, s.Seq)
	v = append(v, s.Hash[:]...)
	if format == snapshotFormat1 {
		return append(v, s.Data...)
	}
	v = append(v, kind)
	return append(v, body...)
}

// FuzzParseSnapshot: parseStored never panics; what it accepts is a known
// format byte, two varints, a hash and the rest as the body (after a kind
// byte in format 2), and encodes back to a value that parses to the same
// snapshot (to the same bytes, when the varints were minimal). Reading the
// state of a body kept in the value (raw or zstd) never panics either, and
// an object reference parses without panicking.
func FuzzParseSnapshot(f *testing.F) {
	var h [32]byte
	for i := range h {
		h[i] = byte(i)
	}
	f.Add(encodeSnapshot(eventstore.Snapshot{Version: 57, Seq: 1207, Hash: h, Data: []byte("state")}))
	f.Add(encodeSnapshot(eventstore.Snapshot{}))
	f.Add(encodeSnapshot(eventstore.Snapshot{Version: 1<<64 - 1, Seq: 1 << 63, Hash: h}))
	f.Add([]byte{snapshotFormat1, 0x80, 0x00, 0x01})                                           // a non-minimal varint, truncated
	f.Add([]byte{snapshotFormat1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}) // overflow
	f.Add([]byte{3, 1, 1})
	f.Add([]byte{})
	state := bytes.Repeat([]byte("participant allowed "), 100)
	z, codec, err := compressState(state)
	if err != nil || codec != bodyZstd {
		f.Fatalf("compressState: codec %d, %v", codec, err)
	}
	snap := eventstore.Snapshot{Version: 9, Seq: 31, Hash: h}
	f.Add(encodeStored(snap, snapshotFormat, bodyRaw, []byte("state")))
	f.Add(encodeStored(snap, snapshotFormat, bodyZstd, append(binary.AppendUvarint(nil, uint64(len(state))), z...)))
	f.Add(encodeStored(snap, snapshotFormat, bodyZstd, append(binary.AppendUvarint(nil, 1<<40), z...)))
	ref := objectRef{name: "m/9/abc", raw: 5000, stored: 300, digest: h, codec: bodyZstd}
	f.Add(append(encodeStored(snap, snapshotFormat, 0, nil)[:len(encodeStored(snap, snapshotFormat, 0, nil))-1], ref.append(nil)...))
	f.Fuzz(func(t *testing.T, v []byte) {
		st, err := parseStored(v)
		if err != nil {
			return
		}
		if len(v) == 0 || v[0] != snapshotFormat && v[0] != snapshotFormat1 {
			t.Fatalf("accepted format %v", v[:min(1, len(v))])
		}
		if !bytes.HasSuffix(v, st.body) || v[0] == snapshotFormat1 && !bytes.HasSuffix(v, append(st.Hash[:len(st.Hash):len(st.Hash)], st.body...)) {
			t.Fatalf("the body is not the value's tail after the hash")
		}
		s := st.Snapshot
		s.Data = st.body
		enc := encodeStored(s, v[0], st.kind, st.body)
		again, err := parseStored(enc)
		if err != nil || again.Version != st.Version || again.Seq != st.Seq || again.Hash != st.Hash || again.kind != st.kind || !bytes.Equal(again.body, st.body) {
			t.Fatalf("%+v re-encodes to %x, which parses to %+v, %v", st, enc, again, err)
		}
		extra := 0
		if v[0] == snapshotFormat {
			extra = 1
		}
		minimal := 1+len(binary.AppendUvarint(nil, st.Version))+len(binary.AppendUvarint(nil, st.Seq))+len(st.Hash)+extra+len(st.body) == len(v)
		if minimal && !bytes.Equal(enc, v) {
			t.Fatalf("%x parses to %+v, which encodes to %x", v, st, enc)
		}
		if st.kind == bodyObject {
			_, _ = parseObjectRef(st.body)
			return
		}
		_, _ = (*Store)(nil).stateOf(context.Background(), st)
	})
}
