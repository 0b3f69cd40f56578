package replay_test

// Fuzz targets for what the package reads from outside: JSON Lines files.
// Each target keeps a seed corpus in testdata/fuzz/<FuzzName>/ (go test runs
// it as a regular test) and is run briefly by .ci/fuzz, which finds every
// func Fuzz... in the module: a new target needs no CI change. Run one
// longer with
//
//	go test ./replay -run '^$' -fuzz '^FuzzReadJSONL$' -fuzztime 1m

import (
	"bytes"
	"errors"
	"testing"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/replay"
)

// FuzzReadJSONL: ReadJSONL never panics, and yields, in order, one entry per
// non-blank line (lines split at '\n', surrounding space trimmed): the event
// events.Unmarshal decodes from it, or a *DecodeError wrapping
// events.ErrMalformed with that line's number and, when it names one, a
// valid meeting id.
func FuzzReadJSONL(f *testing.F) {
	evs := webinar(f)
	f.Add(jsonl(f, evs[:3]))
	f.Add([]byte("\n{\"schema\":1}\nnot json\r\n\n   \n"))
	f.Add([]byte(`{"meeting":"w1","version":3}` + "\n" + `{"meeting":"bad id!"}`))
	line := jsonl(f, evs[3:4])
	f.Add(append(append([]byte(nil), line...), line[:len(line)/2]...)) // a torn last line
	f.Fuzz(func(t *testing.T, data []byte) {
		type entry struct {
			line int
			e    events.Envelope
			err  error
		}
		var want []entry
		for i, l := range bytes.Split(data, []byte("\n")) {
			l = bytes.TrimSpace(l)
			if len(l) == 0 {
				continue
			}
			e, err := events.Unmarshal(l)
			want = append(want, entry{i + 1, e, err})
		}
		i := 0
		for e, err := range replay.ReadJSONL(bytes.NewReader(data), "fuzz") {
			if i == len(want) {
				t.Fatalf("entry %d: more entries than non-blank lines (%d): %v, %v", i, len(want), e.ID, err)
			}
			w := want[i]
			i++
			if (err == nil) != (w.err == nil) {
				t.Fatalf("line %d: error %v, events.Unmarshal says %v", w.line, err, w.err)
			}
			if err != nil {
				var de *replay.DecodeError
				if !errors.As(err, &de) || !errors.Is(err, events.ErrMalformed) {
					t.Fatalf("line %d: error %v is not a DecodeError wrapping ErrMalformed", w.line, err)
				}
				if de.Line != w.line || de.Name != "fuzz" || de.Seq != 0 {
					t.Fatalf("DecodeError %+v, want line %d", de, w.line)
				}
				if de.MeetingID != "" && events.ValidateID(de.MeetingID) != nil {
					t.Fatalf("line %d names meeting %q, not a valid id", w.line, de.MeetingID)
				}
				continue
			}
			if e.Hash != w.e.Hash || e.ID != w.e.ID || e.Version != w.e.Version || e.MeetingID != w.e.MeetingID || e.Seq != w.e.Seq {
				t.Fatalf("line %d: event %+v, events.Unmarshal gives %+v", w.line, e, w.e)
			}
		}
		if i != len(want) {
			t.Fatalf("yielded %d entries for %d non-blank lines", i, len(want))
		}
	})
}
