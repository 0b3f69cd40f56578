package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
)

// damagedDir is a data directory whose meetings a and b had 5 events each
// (b's last is the stream's last) and whose stream's tail was then cut by
// 10 bytes on disk: b lost version 5.
func damagedDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	emb, err := natsstore.OpenEmbedded(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := storetest.NewChain("a"), storetest.NewChain("b")
	for range 5 {
		for _, c := range []*storetest.Chain{a, b} {
			v := c.Version
			if _, err := emb.Store.Append(ctx, c.MeetingID, v, c.Next(1)); err != nil {
				t.Fatal(err)
			}
		}
	}
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
	return dir
}

func TestRecover(t *testing.T) {
	dir := damagedDir(t)
	expect := func(args []string, code int, outHas ...string) string {
		t.Helper()
		got, out, errs := stagereplay(t, args...)
		if got != code {
			t.Fatalf("%v: exit %d, want %d\nstdout %s\nstderr %s", args, got, code, out, errs)
		}
		for _, s := range outHas {
			if !strings.Contains(out+errs, s) {
				t.Errorf("%v: output lacks %q:\nstdout %s\nstderr %s", args, s, out, errs)
			}
		}
		return out
	}
	// Dry runs: what is lost, nothing recorded.
	expect([]string{"recover", dir}, exitOK, "stream: LOST: 1 message is missing inside the stream",
		"meeting b: LOST: had version 5 (sequence 10", "holds version 4 (sequence 8)", "dry run: nothing recorded")
	expect([]string{"recover", dir, "--meeting", "b"}, exitOK, "meeting b: LOST", "versions 5 to 5 are gone", "dry run")
	expect([]string{"recover", dir, "-m", "a"}, exitOK, "meeting a: nothing lost")
	expect([]string{"recover", dir, "--list"}, exitOK, "no recovery records")

	// Bad calls record nothing.
	expect([]string{"recover", dir, "-m", "b", "--yes"}, exitError, "--yes needs --operator and --reason")
	expect([]string{"recover", dir, "--list", "--yes"}, exitError, "--list takes no")
	expect([]string{"recover", "testdata/webinar.jsonl", "--list"}, exitError, "not a data directory")
	expect([]string{"recover", dir, "-m", "a", "--yes", "--operator", "alice", "--reason", "r"}, exitError, "no lost history to accept")
	expect([]string{"recover", dir, "--list"}, exitOK, "no recovery records")

	// Accepted on the record.
	expect([]string{"recover", dir, "-m", "b", "--yes", "--operator", "alice", "--reason", "disk replaced"}, exitOK,
		"alice accepted the loss of meeting b (disk replaced)", "meeting b resumes at version 4 (sequence 8)", "its mark is now")
	out := expect([]string{"recover", dir, "--list"}, exitOK, "alice", "disk replaced", "v5@10", "v4@8")
	if strings.Count(out, "\n") != 2 {
		t.Errorf("want one record:\n%s", out)
	}
	expect([]string{"recover", dir}, exitOK, "nothing lost")
	expect([]string{"recover", dir, "-m", "b", "--yes", "--operator", "alice", "--reason", "again"}, exitError, "no lost history to accept")

	// The same over a URL.
	srv, err := natsstore.StartServer(dir, natsstore.WithListen("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	expect([]string{"recover", srv.ClientURL(), "--list"}, exitOK, "alice", "disk replaced")
	expect([]string{"recover", srv.ClientURL(), "-m", "b"}, exitOK, "meeting b: nothing lost")
}
