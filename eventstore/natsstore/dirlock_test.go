//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly || illumos

package natsstore_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/eventstore/storetest"
)

// wantLocked checks that err refuses dir because of the process pid.
func wantLocked(t *testing.T, err error, dir string, pid int) {
	t.Helper()
	if !errors.Is(err, natsstore.ErrDirLocked) {
		t.Fatalf("second opener got %v, want ErrDirLocked", err)
	}
	var le *natsstore.DirLockedError
	if !errors.As(err, &le) {
		t.Fatalf("%v is no *DirLockedError", err)
	}
	if le.Dir != dir {
		t.Errorf("DirLockedError.Dir %q, want %q", le.Dir, dir)
	}
	if want := "pid " + strconv.Itoa(pid) + " "; !strings.HasPrefix(le.Holder, want) {
		t.Errorf("DirLockedError.Holder %q does not name %q", le.Holder, want)
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, le.Holder) || !strings.Contains(msg, "nats://") {
		t.Errorf("message %q does not name the directory, the holder and the way in", msg)
	}
}

// TestStartServer_DirLocked: a second server on a held directory in the
// same process is refused, leaves the first working, and the directory
// opens again, with its data, once the first has shut down.
func TestStartServer_DirLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by StartServer
	first, err := natsstore.StartServer(dir, natsstore.WithLazySync())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Shutdown()
	c := storetest.NewChain("held")
	st := newStore(t, connect(t, first))
	if _, err := st.Append(ctx(t), "held", 0, c.Next(1)); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a refusal changes nothing, not even the holder's record
		second, err := natsstore.StartServer(dir, natsstore.WithLazySync())
		if err == nil {
			second.Shutdown()
			t.Fatal("second StartServer on a held directory succeeded")
		}
		wantLocked(t, err, dir, os.Getpid())
	}
	t.Logf("refused: %v", func() error { _, err := natsstore.StartServer(dir); return err }())
	// The holder goes on.
	if _, err := st.Append(ctx(t), "held", 1, c.Next(1)); err != nil {
		t.Fatalf("Append on the holder after the refusal: %v", err)
	}
	st.Close()
	first.Shutdown()
	first.Shutdown() // twice is harmless

	again, err := natsstore.StartServer(dir, natsstore.WithLazySync())
	if err != nil {
		t.Fatalf("StartServer after the holder shut down: %v", err)
	}
	defer again.Shutdown()
	got, err := storetest.Collect(newStore(t, connect(t, again)).Load(ctx(t), "held", 0))
	if err != nil || len(got) != 2 {
		t.Fatalf("after reopening: %d events, %v; want 2", len(got), err)
	}
	b, err := os.ReadFile(filepath.Join(dir, natsstore.LockFileName))
	if err != nil || !strings.HasPrefix(string(b), fmt.Sprintf("pid %d (", os.Getpid())) {
		t.Errorf("lock file holds %q (%v), want this process's record", b, err)
	}
}

// TestOpenEmbedded_DirLocked: the same through OpenEmbedded, whose Close
// lets the directory go.
func TestOpenEmbedded_DirLocked(t *testing.T) {
	dir := t.TempDir()
	emb := openEmbedded(t, dir)
	c := storetest.NewChain("e")
	if _, err := emb.Store.Append(ctx(t), "e", 0, c.Next(1)); err != nil {
		t.Fatal(err)
	}
	second, err := natsstore.OpenEmbedded(ctx(t), dir)
	if err == nil {
		second.Close()
		emb.Close()
		t.Fatal("second OpenEmbedded on a held directory succeeded")
	}
	wantLocked(t, err, dir, os.Getpid())
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}
	emb = openEmbedded(t, dir)
	defer emb.Close()
	got, err := storetest.Collect(emb.Store.Load(ctx(t), "e", 0))
	if err != nil || len(got) != 1 {
		t.Fatalf("after reopening: %d events, %v; want 1", len(got), err)
	}
}

// TestDirLocked_holderRecord: a lock file that names nobody (a holder in
// the middle of writing it) gives an error that says so; one that holds
// control characters gives a holder without them.
func TestDirLocked_holderRecord(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsstore.StartServer(dir, natsstore.WithLazySync())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	for _, c := range []struct{ record, holder string }{
		{"", ""},
		{"\n\n", ""},
		{"pid 7 \x1b[2J(x)\r\nsecond line\n", "pid 7 [2J(x)"},
	} {
		if err := os.WriteFile(filepath.Join(dir, natsstore.LockFileName), []byte(c.record), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = natsstore.StartServer(dir)
		var le *natsstore.DirLockedError
		if !errors.As(err, &le) || le.Holder != c.holder {
			t.Fatalf("record %q: got %v, want a DirLockedError with holder %q", c.record, err, c.holder)
		}
		if c.holder == "" && !strings.Contains(err.Error(), "in use by an unknown holder;") {
			t.Errorf("record %q: message %q does not say the holder is unknown", c.record, err)
		}
	}
}

// The child process of TestStartServer_DirLockedAcrossProcesses: with
// dirLockChild set to "try DIR" it starts a server on DIR and exits 0 if
// that worked, 3 if DIR was held, printing the error; with "hold DIR" it
// starts one, prints "holding" and waits to be killed.
const dirLockChild = "NATSSTORE_DIRLOCK_CHILD"

func TestDirLockChild(t *testing.T) {
	mode, dir, ok := strings.Cut(os.Getenv(dirLockChild), " ")
	if !ok {
		t.Skip("only run as the child of TestStartServer_DirLockedAcrossProcesses")
	}
	srv, err := natsstore.StartServer(dir, natsstore.WithLazySync())
	if err != nil {
		fmt.Println(err)
		if errors.Is(err, natsstore.ErrDirLocked) {
			os.Exit(3)
		}
		os.Exit(1)
	}
	if mode == "hold" {
		fmt.Println("holding")
		time.Sleep(5 * time.Minute)
	}
	srv.Shutdown()
	fmt.Println("opened")
	os.Exit(0)
}

func dirLockChildCmd(mode, dir string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestDirLockChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), dirLockChild+"="+mode+" "+dir)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestStartServer_DirLockedAcrossProcesses: another process is refused a
// directory this one holds; and a directory held by a process that is
// killed (no Shutdown) opens again at once, because the kernel drops the
// lock of a dead process.
func TestStartServer_DirLockedAcrossProcesses(t *testing.T) {
	if os.Getenv(dirLockChild) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()

	// This process holds dir: the child is refused, and names us.
	srv, err := natsstore.StartServer(dir, natsstore.WithLazySync())
	if err != nil {
		t.Fatal(err)
	}
	out, err := dirLockChildCmd("try", dir).Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		srv.Shutdown()
		t.Fatalf("child on a held directory: %v, output %q; want exit 3", err, out)
	}
	if want := fmt.Sprintf("in use by pid %d (", os.Getpid()); !strings.Contains(string(out), want) {
		t.Errorf("child said %q, want it to name %q", out, want)
	}
	srv.Shutdown()

	// Now the child opens it, when nobody holds it.
	if out, err := dirLockChildCmd("try", dir).Output(); err != nil || !strings.Contains(string(out), "opened") {
		t.Fatalf("child on a free directory: %v, output %q", err, out)
	}

	// A child holds dir: we are refused, naming it; killed, it lets go.
	cmd := dirLockChildCmd("hold", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "holding\n" {
		t.Fatalf("holding child said %q, %v", line, err)
	}
	_, err = natsstore.StartServer(dir)
	wantLocked(t, err, dir, cmd.Process.Pid)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no Shutdown, no cleanup
		t.Fatal(err)
	}
	cmd.Wait()
	srv, err = natsstore.StartServer(dir, natsstore.WithLazySync())
	if err != nil {
		t.Fatalf("StartServer after the holder was killed: %v", err)
	}
	srv.Shutdown()
}
