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
	"encoding/binary"
	"testing"

	"github.com/productdb/stage/eventstore"
)

// encodeSnapshot is SaveSnapshot's encoding of a bucket value.
func encodeSnapshot(s eventstore.Snapshot) []byte {
	v := []byte{snapshotFormat}
	v = binary.AppendUvarint(v, s.Version)
	v = binary.AppendUvarint(v, s.Seq)
	v = append(v, s.Hash[:]...)
	return append(v, s.Data...)
}

// FuzzParseSnapshot: parseSnapshot never panics; what it accepts is the
// format byte, two varints, a hash and the rest as the state, and encodes
// back to a value that parses to the same snapshot (to the same bytes, when
// the varints were minimal).
func FuzzParseSnapshot(f *testing.F) {
	var h [32]byte
	for i := range h {
		h[i] = byte(i)
	}
	f.Add(encodeSnapshot(eventstore.Snapshot{Version: 57, Seq: 1207, Hash: h, Data: []byte("state")}))
	f.Add(encodeSnapshot(eventstore.Snapshot{}))
	f.Add(encodeSnapshot(eventstore.Snapshot{Version: 1<<64 - 1, Seq: 1 << 63, Hash: h}))
	f.Add([]byte{snapshotFormat, 0x80, 0x00, 0x01})                                           // a non-minimal varint, truncated
	f.Add([]byte{snapshotFormat, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}) // overflow
	f.Add([]byte{2, 1, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		s, err := parseSnapshot(v)
		if err != nil {
			return
		}
		if len(v) == 0 || v[0] != snapshotFormat {
			t.Fatalf("accepted format %v", v[:min(1, len(v))])
		}
		if !bytes.HasSuffix(v, s.Data) || !bytes.HasSuffix(v, append(s.Hash[:len(s.Hash):len(s.Hash)], s.Data...)) {
			t.Fatalf("the state is not the value's tail after the hash")
		}
		enc := encodeSnapshot(s)
		again, err := parseSnapshot(enc)
		if err != nil || again.Version != s.Version || again.Seq != s.Seq || again.Hash != s.Hash || !bytes.Equal(again.Data, s.Data) {
			t.Fatalf("%+v re-encodes to %x, which parses to %+v, %v", s, enc, again, err)
		}
		minimal := 1+len(binary.AppendUvarint(nil, s.Version))+len(binary.AppendUvarint(nil, s.Seq))+len(s.Hash)+len(s.Data) == len(v)
		if minimal && !bytes.Equal(enc, v) {
			t.Fatalf("%x parses to %+v, which encodes to %x", v, s, enc)
		}
	})
}
