package replay_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/replay"
)

// storeDir writes evs through the embedded default into a new data
// directory, closes it, and returns the directory and its stream's last
// block file.
func storeDir(t *testing.T, evs []events.Envelope) (dir, block string) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	emb, err := natsstore.OpenEmbedded(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		e.Seq = 0
		if _, err := emb.Store.Append(ctx, e.MeetingID, e.Version-1, []events.Envelope{e}); err != nil {
			t.Fatal(err)
		}
	}
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}
	blks, err := filepath.Glob(filepath.Join(dir, "jetstream", "$G", "streams", "STAGE", "msgs", "*.blk"))
	if err != nil || len(blks) == 0 {
		t.Fatalf("no block files: %v", err)
	}
	return dir, blks[len(blks)-1]
}

// verifyWithin opens location and verifies it (one meeting, or all), and
// fails the test if that takes more than a few seconds.
func verifyWithin(t *testing.T, location, meetingID string, opts ...replay.OpenOption) *replay.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	src, err := replay.Open(ctx, location, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rep, err := replay.Verify(ctx, src.Events(ctx, meetingID))
	if err != nil {
		t.Fatalf("verify: %v (report %+v)", err, rep)
	}
	return rep
}

func onlyKinds(t *testing.T, rep *replay.Report, want ...replay.FindingKind) {
	t.Helper()
	got := rep.Kinds()
	if strings.Join(kindStrings(got), ",") != strings.Join(kindStrings(want), ",") {
		t.Fatalf("kinds %v, want %v; findings %v", got, want, rep.Findings)
	}
	if rep.OK() {
		t.Fatal("OK with findings")
	}
}

func kindStrings(ks []replay.FindingKind) []string {
	var out []string
	for _, k := range ks {
		out = append(out, string(k))
	}
	return out
}

// The server lost the stream's tail: it still reports the last sequence,
// but its message is gone. Verify must end, and say so.
func TestJetStream_truncatedTail(t *testing.T) {
	evs := webinar(t)
	dir, blk := storeDir(t, evs)
	if rep := verifyWithin(t, dir, ""); !rep.OK() || rep.Events != len(evs) {
		t.Fatalf("intact store: %+v", rep)
	}
	fi, err := os.Stat(blk)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blk, fi.Size()-10); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep := verifyWithin(t, dir, "", replay.WithIdleTimeout(time.Minute)) // must not need the idle timeout
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("verify took %v", d)
	}
	onlyKinds(t, rep, replay.Truncated)
	f := rep.Findings[0]
	last := uint64(len(evs))
	want := "stream STAGE reports last sequence 13 but its messages end at 12: the end of the log is missing"
	if len(rep.Findings) != 1 || f.Seq != last || !strings.Contains(f.Reason, want) || rep.Events != len(evs)-1 {
		t.Fatalf("report %+v, want one finding %q", rep, want)
	}
	var le *replay.LostError
	if !errors.As(f.Err, &le) || !errors.Is(f.Err, replay.ErrTruncated) || le.From != last || le.To != last || !le.End || !le.DeniesDeletes {
		t.Fatalf("error %#v", f.Err)
	}
	// One meeting's read sees that the stream's end is gone too.
	rep = verifyWithin(t, dir, "w1")
	onlyKinds(t, rep, replay.Truncated)
	if !strings.Contains(rep.Findings[0].Reason, "meeting w1 may be among them") {
		t.Errorf("meeting read: %v", rep.Findings)
	}
}

// A stream whose only block was deleted or cut to nothing reports its last
// sequence and holds no message.
func TestJetStream_lostBlock(t *testing.T) {
	for _, damage := range []string{"deleted", "one byte"} {
		t.Run(damage, func(t *testing.T) {
			dir, blk := storeDir(t, webinar(t))
			var err error
			if damage == "deleted" {
				err = os.Remove(blk)
			} else {
				err = os.Truncate(blk, 1)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{"", "w1"} {
				rep := verifyWithin(t, dir, m)
				onlyKinds(t, rep, replay.Truncated)
				if !strings.Contains(rep.Findings[0].Reason, "reports last sequence 13 but holds none of its messages") {
					t.Errorf("meeting %q: %v", m, rep.Findings)
				}
			}
		})
	}
}

// A stream whose sequences skip lost messages: each gap is a finding, and
// the version gap it leaves in a meeting follows from it.
func TestJetStream_hole(t *testing.T) {
	ctx := context.Background()
	url := startNATS(t)
	evs := webinar(t)
	publish(t, url, evs, nil)
	nc, err := nats.Connect(url, nats.UserInfo("auditor", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, "STAGE")
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{5, 6} {
		if err := st.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	auth := replay.WithNATSOptions(nats.UserInfo("auditor", "s3cret"))
	rep := verifyWithin(t, url, "", auth)
	if len(rep.Findings) == 0 || rep.Findings[0].Kind != replay.Missing || rep.Findings[0].Seq != 5 ||
		!strings.Contains(rep.Findings[0].Reason, "no message at sequences 5 to 6: deleted, purged or lost") {
		t.Fatalf("findings %v", rep.Findings)
	}
	if !errors.Is(rep.Findings[0].Err, replay.ErrMissing) {
		t.Errorf("error %v", rep.Findings[0].Err)
	}
	gs := rep.Groups()
	if len(gs) != 1 || gs[0].Index != 0 || rep.Findings[1].Kind != replay.VersionGap || *rep.Findings[1].Cause != 0 {
		t.Fatalf("groups %+v, findings %v", gs, rep.Findings)
	}
	// One meeting's read cannot see the gap in sequences, but the stream
	// counts its lost messages.
	rep = verifyWithin(t, url, "w1", auth)
	if rep.Findings[len(rep.Findings)-1].Kind != replay.Missing ||
		!strings.Contains(rep.Findings[len(rep.Findings)-1].Reason, "has lost 2 messages") {
		t.Fatalf("meeting read: %v", rep.Findings)
	}
}

func TestVerify_empty(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	if err := os.WriteFile(empty, []byte("\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	url := startNATS(t)
	publish(t, url, nil, nil) // a stream with no message
	for _, loc := range []string{empty, os.DevNull, url} {
		t.Run(filepath.Base(loc), func(t *testing.T) {
			rep := verifyWithin(t, loc, "", replay.WithNATSOptions(nats.UserInfo("auditor", "s3cret")))
			onlyKinds(t, rep, replay.Empty)
			if rep.Events != 0 || len(rep.Findings) != 1 {
				t.Fatalf("report %+v", rep)
			}
		})
	}
	// An empty data directory of the embedded default.
	dir := t.TempDir()
	emb, err := natsstore.OpenEmbedded(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	emb.Close()
	onlyKinds(t, verifyWithin(t, dir, ""), replay.Empty)
}

// A file that stops in the middle of its last event was cut.
func TestFileSource_truncated(t *testing.T) {
	evs := webinar(t)
	b, err := os.ReadFile(writeLog(t, evs))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cut.jsonl")
	if err := os.WriteFile(path, b[:len(b)-40], 0o644); err != nil {
		t.Fatal(err)
	}
	rep := verifyWithin(t, path, "")
	onlyKinds(t, rep, replay.Truncated)
	f := rep.Findings[0]
	if !strings.Contains(f.Reason, "cut.jsonl:13: replay: log truncated: the file ends in the middle of an event") ||
		!errors.Is(f.Err, replay.ErrTruncated) || !errors.Is(f.Err, events.ErrMalformed) || rep.Events != len(evs) {
		t.Fatalf("report %+v", rep)
	}
	// A last line without its newline that is a whole event is fine.
	if err := os.WriteFile(path, b[:len(b)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if rep := verifyWithin(t, path, ""); !rep.OK() || rep.Events != len(evs) {
		t.Fatalf("no final newline: %+v", rep)
	}
	// A malformed line in the middle is malformed, not a cut.
	lines := strings.SplitAfter(string(b), "\n")
	lines[3] = lines[3][:40] + "\n"
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if rep := verifyWithin(t, path, ""); rep.Findings[0].Kind != replay.Malformed {
		t.Fatalf("damaged line 4: %v", rep.Findings)
	}
}
