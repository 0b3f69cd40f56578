package stage_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/eventstore/natsstore"
)

// TestEngine_LostHistory: the server of the embedded default lost the
// tail of its stream on disk (the last event, of meeting "hit"). The
// Engine refuses commands on that meeting with the store's
// HistoryLostError, at once (not retried as a conflict), and serves the
// other meeting; after the operator accepts the loss, commands resume.
func TestEngine_LostHistory(t *testing.T) {
	dir := t.TempDir()
	emb, err := natsstore.OpenEmbedded(jsCtx(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stage.New(emb.Store, stage.WithClock(jsUTC))
	if err != nil {
		t.Fatal(err)
	}
	jsSeed(t, eng, []string{"safe", "hit"}) // hit's events last
	eng.Close()
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}

	blks, _ := filepath.Glob(filepath.Join(dir, "jetstream", "$G", "streams", natsstore.DefaultStream, "msgs", "*.blk"))
	if len(blks) == 0 {
		t.Fatal("no block files")
	}
	last := blks[len(blks)-1]
	fi, err := os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(last, fi.Size()-10); err != nil {
		t.Fatal(err)
	}

	emb, err = natsstore.OpenEmbedded(jsCtx(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	eng, err = stage.New(emb.Store, stage.WithClock(jsUTC))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	n := len(jsUsers)
	zed := aggregate.Participant{UserID: "zed", Permissions: jsPreset("ann")}
	_, err = eng.AddParticipant(jsCtx(t), "hit", zed)
	var hl *eventstore.HistoryLostError
	if !errors.Is(err, eventstore.ErrHistoryLost) || !errors.As(err, &hl) {
		t.Fatalf("Execute on the meeting that lost its last event: %v, want ErrHistoryLost", err)
	}
	if hl.MeetingID != "hit" || hl.SeenVersion != uint64(n) || hl.HaveVersion != uint64(n-1) || strings.Contains(err.Error(), "gave up") {
		t.Errorf("error %v (%+v)", err, hl)
	}
	// What remains is served read-only.
	r, err := eng.Roster(jsCtx(t), "hit")
	if err != nil || r.Version != uint64(n-1) {
		t.Errorf("Roster of hit: version %d, %v; want %d", r.Version, err, n-1)
	}
	if _, err := eng.AddParticipant(jsCtx(t), "safe", zed); err != nil {
		t.Fatalf("Execute on the other meeting: %v", err)
	}

	if _, err := emb.Store.AcceptLoss(jsCtx(t), "hit", "ops", "disk damaged; last event gone"); err != nil {
		t.Fatal(err)
	}
	res, err := eng.AddParticipant(jsCtx(t), "hit", zed)
	if err != nil || res.Version != uint64(n) {
		t.Fatalf("Execute after the loss was accepted: version %d, %v", res.Version, err)
	}
}
