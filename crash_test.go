//go:build unix

package stage_test

// Crash tests: real processes killed with SIGKILL at random points, on the
// same data directory, then the log held to what the writers were told.
//
//   - TestCrash_EmbeddedWriterKilled: a child process (this test binary,
//     re-executed as TestCrashChild) writes through the embedded default
//     (natsstore.OpenEmbedded: sync before every acknowledgement) and is
//     killed and restarted, -crash.cycles times.
//   - TestCrash_ExternalServerKilled: this process writes through
//     natsstore.New to a nats-server process (built from the module's
//     nats-server dependency), which is killed and restarted on the same
//     store directory and port, -crash.cycles times.
//
// After the cycles every acknowledged command must be in the log exactly
// once, with the versions it was acknowledged with; no command is applied
// twice (a retry of one whose answer the kill swallowed answers as a
// duplicate); versions are continuous; and replay.Verify finds nothing.
//
// The default (3 cycles each) is a short CI run. The long mode:
//
//	go test -run TestCrash -crash.cycles=25 .
//
// A failure logs the seed of its random kill points; -crash.seed=N runs
// those again.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/productdb/stage"
	"github.com/productdb/stage/eventstore/natsstore"
)

var (
	crashCycles = flag.Int("crash.cycles", 3, "kill-and-restart cycles of the TestCrash tests (the long mode: 25)")
	crashSeed   = flag.Uint64("crash.seed", 0, "seed of the TestCrash kill points (0: a new one, logged)")
)

// The child's environment: the data directory (its presence makes
// TestCrashChild the writer), the first command number, the keys to retry
// (space-separated) and how many new commands per meeting to run before
// closing cleanly (0: until killed).
const (
	crashEnvDir   = "STAGE_CRASH_CHILD"
	crashEnvBase  = "STAGE_CRASH_BASE"
	crashEnvRetry = "STAGE_CRASH_RETRY"
	crashEnvLimit = "STAGE_CRASH_LIMIT"
)

// crashRetryAcked is how many acknowledged commands per meeting each
// restarted writer retries (they must answer as duplicates).
const crashRetryAcked = 2

func crashRand(t *testing.T) *rand.Rand {
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("kill points: -crash.seed=%d", seed)
	return rand.New(rand.NewPCG(seed, 11))
}

// TestCrashChild is the writer of TestCrash_EmbeddedWriterKilled, run in a
// child process; it skips when run directly. It opens the embedded default
// on the directory it is given and runs crashRun on every meeting at once,
// printing a line for each command it is about to execute ("try"), each
// acknowledged one right after Execute returns ("ack", with its versions
// and whether it was a duplicate) and each the rules rejected ("rej").
// Every line ends in " ." so that one cut by the kill is told apart.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("the writer of TestCrash_EmbeddedWriterKilled: runs only in its child process")
	}
	base, err1 := strconv.Atoi(os.Getenv(crashEnvBase))
	limit, err2 := strconv.Atoi(os.Getenv(crashEnvLimit))
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	retries := strings.Fields(os.Getenv(crashEnvRetry))
	var outMu sync.Mutex
	out := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(os.Stdout, "crash "+format+" .\n", args...) // one write: a pipe keeps it whole
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	emb, err := natsstore.OpenEmbedded(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stage.New(emb.Store)
	if err != nil {
		t.Fatal(err)
	}
	out("ready")
	var wg sync.WaitGroup
	errs := make([]error, len(crashMeetings))
	for i, m := range crashMeetings {
		rng := rand.New(rand.NewPCG(uint64(base), uint64(i)))
		wg.Go(func() {
			errs[i] = crashRun(ctx, eng, m, retries, base, limit, rng, 30*time.Second, func(key string) error {
				_, cmd, err := crashCommand(key)
				if err != nil {
					return err
				}
				out("try %s", key)
				res, err := eng.Execute(ctx, m, cmd, stage.WithIdempotencyKey(key))
				switch {
				case err == nil && len(res.Events) > 0:
					out("ack %s %d %d %v", key, res.Events[0].Version, res.Events[len(res.Events)-1].Version, res.Duplicate)
				case err == nil:
					return fmt.Errorf("%s acknowledged with no events: %+v", key, res)
				case crashDomain(err):
					out("rej %s", key)
				default:
					return fmt.Errorf("%s: %w", key, err)
				}
				return nil
			}, nil)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	eng.Close()
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}
	out("done")
}

// crashChild is one run of the writer process.
type crashChild struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	ready  chan struct{} // closed at the "ready" line
	read   chan struct{} // closed when stdout is read to its end
	done   bool          // a "done" line was read
	lines  int
}

// startCrashChild starts the writer on dir and feeds its lines to the
// ledger as they come.
func startCrashChild(t *testing.T, dir string, base, limit int, retries []string, l *crashLedger) *crashChild {
	t.Helper()
	c := &crashChild{ready: make(chan struct{}), read: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=10m")
	c.cmd.Env = append(os.Environ(),
		crashEnvDir+"="+dir,
		crashEnvBase+"="+strconv.Itoa(base),
		crashEnvLimit+"="+strconv.Itoa(limit),
		crashEnvRetry+"="+strings.Join(retries, " "))
	c.cmd.Stderr = &c.stderr
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // a test that failed half-way leaves no writer behind
		if c.cmd.ProcessState == nil {
			syscall.Kill(c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.read
			c.cmd.Wait()
		}
	})
	go func() {
		defer close(c.read)
		ready := false
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 3 || f[0] != "crash" || f[len(f)-1] != "." {
				continue // the test binary's own output, or a line the kill cut
			}
			c.lines++
			switch f = f[1 : len(f)-1]; {
			case f[0] == "ready" && !ready:
				ready = true
				close(c.ready)
			case f[0] == "done":
				c.done = true
			case f[0] == "try" && len(f) == 2:
				l.try(f[1])
			case f[0] == "rej" && len(f) == 2:
				l.rej(f[1], errors.New("rejected by the rules"))
			case f[0] == "ack" && len(f) == 5:
				first, err1 := strconv.ParseUint(f[2], 10, 64)
				last, err2 := strconv.ParseUint(f[3], 10, 64)
				if err1 != nil || err2 != nil {
					l.mu.Lock()
					l.fail("bad line %q", sc.Text())
					l.mu.Unlock()
					continue
				}
				l.ack(f[1], crashAck{first, last}, f[4] == "true")
			default:
				l.mu.Lock()
				l.fail("bad line %q", sc.Text())
				l.mu.Unlock()
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	return c
}

// kill SIGKILLs the child and waits for it.
func (c *crashChild) kill(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(c.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatal(err)
	}
	<-c.read
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("writer after SIGKILL: %v", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		// It ended before the kill: it failed.
		t.Fatalf("writer ended by itself (%v) before the kill:\n%s", err, c.stderr.String())
	}
}

// wait waits for a child that must end by itself, cleanly.
func (c *crashChild) wait(t *testing.T) {
	t.Helper()
	<-c.read
	if err := c.cmd.Wait(); err != nil || !c.done {
		t.Fatalf("writer: %v (done line: %v):\n%s", err, c.done, c.stderr.String())
	}
}

// TestCrash_EmbeddedWriterKilled SIGKILLs a writer on the embedded default
// at random points and restarts it on the same directory: a restarted
// writer first retries the commands the kill left unanswered and the last
// acknowledged ones, then goes on with new commands. A last run retries
// what is left and closes cleanly. Then the log must hold every
// acknowledged command once, and verify clean (see the file's comment).
func TestCrash_EmbeddedWriterKilled(t *testing.T) {
	if os.Getenv(crashEnvDir) != "" {
		t.Skip("in the child process")
	}
	dir := t.TempDir()
	rng := crashRand(t)
	l := newCrashLedger()
	kills := map[string]int{}
	start := time.Now()
	for cycle := range *crashCycles {
		c := startCrashChild(t, dir, cycle*1_000_000, 0, l.retries(crashRetryAcked), l)
		// A quarter of the kills land anywhere from the start (in the
		// server's recovery, the stream's provisioning ...), the others
		// while the writer runs.
		var delay time.Duration
		if rng.IntN(4) == 0 {
			delay = time.Duration(rng.Int64N(int64(time.Second)))
			kills["from the start"]++
		} else {
			select {
			case <-c.ready:
			case <-c.read:
			case <-time.After(time.Minute):
				t.Fatalf("writer not ready after a minute:\n%s", c.stderr.String())
			}
			delay = time.Duration(rng.Int64N(int64(700 * time.Millisecond)))
			kills["while writing"]++
		}
		time.Sleep(delay)
		c.kill(t)
		acked, _, pending, _ := l.counts()
		t.Logf("cycle %d: killed after %v; %d lines; %d acknowledged so far, %d unanswered", cycle, delay.Round(time.Millisecond), c.lines, acked, pending)
	}
	ackedBefore, _, _, _ := l.counts()
	c := startCrashChild(t, dir, *crashCycles*1_000_000, 10, l.retries(crashRetryAcked), l)
	c.wait(t)

	acked, rejected, pending, dups := l.counts()
	if pending != 0 {
		t.Fatalf("%d commands left unanswered after the clean run", pending)
	}
	// The clean run retried the last acknowledged commands, and answered
	// them all: each must have been a duplicate (the ledger checks that).
	if ackedBefore > 0 && dups == 0 {
		t.Errorf("no retry of the %d commands acknowledged before the clean run answered as a duplicate", ackedBefore)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	emb, err := natsstore.OpenEmbedded(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	n := l.check(t, ctx, emb.Store)
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}
	crashVerify(t, ctx, dir, n)
	t.Logf("%d cycles (%v) in %v: %d events; %d commands acknowledged, %d rejected, %d retries answered as duplicates",
		*crashCycles, kills, time.Since(start).Round(time.Millisecond), n, acked, rejected, dups)
}

// crashServer is a nats-server process with JetStream on a store
// directory and a port.
type crashServer struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
	log      bytes.Buffer
}

// crashNATSServer builds the nats-server of the module's dependency into a
// temporary directory, or skips the test if the Go toolchain cannot.
func crashNATSServer(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, serr := os.Stat(goBin); serr != nil {
			t.Skipf("no go toolchain to build nats-server with: %v", err)
		}
	}
	bin := filepath.Join(t.TempDir(), "nats-server")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot build nats-server from the module cache: %v\n%s", err, out)
	}
	return bin
}

func (s *crashServer) start(t *testing.T) {
	t.Helper()
	s.log.Reset()
	s.cmd = exec.Command(s.bin, "-js", "-sd", s.dir, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-n", "crash-test")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Ready when JetStream answers (not just the port).
	deadline := time.Now().Add(time.Minute)
	for {
		nc, err := nats.Connect(s.url(), nats.Timeout(time.Second))
		if err == nil {
			_, err = nc.Request("$JS.API.INFO", nil, time.Second)
			nc.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server not ready after a minute: %v\n%s", err, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *crashServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// kill SIGKILLs the server process and waits for it.
func (s *crashServer) kill(t *testing.T) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatal(err)
	}
	s.cmd.Wait()
	s.cmd = nil
}

// TestCrash_ExternalServerKilled writes through natsstore.New to an
// external nats-server process and SIGKILLs the server at random points,
// restarting it on the same store directory and port, after an outage
// shorter or longer than the writers' deadlines. Writers retry each
// command with its key, with a short deadline per attempt, until the rules
// answer: no call (an attempt, or a read of the state) may outlast its
// deadline by more than crashSlack, and calls in a long outage must fail. Then the log must hold every acknowledged command once, and
// verify clean (see the file's comment).
func TestCrash_ExternalServerKilled(t *testing.T) {
	if os.Getenv(crashEnvDir) != "" {
		t.Skip("in the child process")
	}
	srv := &crashServer{bin: crashNATSServer(t), dir: t.TempDir()}
	_, srv.port = jsFreeAddr(t)
	srv.start(t)
	defer func() { srv.kill(t) }()
	rng := crashRand(t)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nc, err := nats.Connect(srv.url(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	st, err := natsstore.New(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := stage.New(st, stage.WithRetry(50, time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	const attempt = time.Second // each attempt's (and read's) deadline
	l := newCrashLedger()
	var failed, hung atomic.Int64
	var slowest atomic.Int64
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make([]error, len(crashMeetings))
	for i, m := range crashMeetings {
		wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(i)))
		wg.Go(func() {
			errs[i] = crashRun(wctx, eng, m, nil, 0, 0, wrng, attempt, func(key string) error {
				_, cmd, err := crashCommand(key)
				if err != nil {
					return err
				}
				l.try(key)
				for began := time.Now(); ; {
					actx, cancel := context.WithTimeout(ctx, attempt)
					t0 := time.Now()
					res, err := eng.Execute(actx, m, cmd, stage.WithIdempotencyKey(key))
					cancel()
					if d := time.Since(t0); d > attempt+crashSlack {
						hung.Add(1)
						return fmt.Errorf("%s: an attempt took %v, past its %v deadline (%v)", key, d, attempt, err)
					} else if int64(d) > slowest.Load() {
						slowest.Store(int64(d))
					}
					switch {
					case err == nil && len(res.Events) > 0:
						l.ack(key, crashAck{res.Events[0].Version, res.Events[len(res.Events)-1].Version}, res.Duplicate)
						return nil
					case err == nil:
						return fmt.Errorf("%s acknowledged with no events: %+v", key, res)
					case crashDomain(err):
						l.rej(key, err)
						return nil
					}
					failed.Add(1)
					if time.Since(began) > time.Minute {
						return fmt.Errorf("%s not answered after a minute: %w", key, err)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}, func(error) bool { failed.Add(1); return true })
		})
	}

	start := time.Now()
	var outages []time.Duration
	for cycle := range *crashCycles {
		time.Sleep(200*time.Millisecond + time.Duration(rng.Int64N(int64(800*time.Millisecond))))
		before := failed.Load()
		down := time.Now()
		srv.kill(t)
		// Most outages are short: a request the client buffers meanwhile
		// may still be answered in time. The first, and a quarter of the
		// others, outlast the writers' deadlines: calls in them must fail.
		long := cycle == 0 || rng.IntN(4) == 0
		if long {
			time.Sleep(attempt + 500*time.Millisecond)
		} else {
			time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
		}
		failedDown := failed.Load() - before
		srv.start(t)
		outages = append(outages, time.Since(down).Round(time.Millisecond))
		if long && failedDown == 0 {
			t.Errorf("cycle %d: no call failed while the server was down for %v", cycle, outages[cycle])
		}
		acked, _, _, _ := l.counts()
		t.Logf("cycle %d: server killed and restarted (%v down); %d acknowledged so far, %d calls failed while it was down", cycle, outages[cycle], acked, failedDown)
	}
	// Run on after the last restart until every writer is acknowledged again.
	acked0, _, _, _ := l.counts()
	deadline := time.Now().Add(time.Minute)
	for acked, _, _, _ := l.counts(); acked < acked0+10*len(crashMeetings); acked, _, _, _ = l.counts() {
		if time.Now().After(deadline) {
			t.Fatalf("writers did not recover after the last restart: %d acknowledged since", acked-acked0)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopWriters()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	acked, rejected, pending, dups := l.counts()
	if pending != 0 {
		t.Fatalf("%d commands left unanswered", pending)
	}
	n := l.check(t, ctx, st)
	eng.Close()
	st.Close()
	nc.Close()
	crashVerify(t, ctx, srv.url(), n)
	t.Logf("%d server kills (outages %v) in %v: %d events; %d commands acknowledged, %d rejected, %d answered as duplicates; %d calls failed, none hung (slowest attempt %v)",
		*crashCycles, outages, time.Since(start).Round(time.Millisecond), n, acked, rejected, dups, failed.Load(), time.Duration(slowest.Load()).Round(time.Millisecond))
}
