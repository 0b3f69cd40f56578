package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildStaged builds the binary once per test run.
func buildStaged(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "staged")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// secrets writes the HS256 secret and the backend token.
func secrets(t *testing.T) (secretFile, backendFile, backend string) {
	t.Helper()
	dir := t.TempDir()
	secretFile = filepath.Join(dir, "jwt.secret")
	backendFile = filepath.Join(dir, "backend.token")
	backend = strings.Repeat("b4ck3nd-", 5)
	if err := os.WriteFile(secretFile, []byte(strings.Repeat("s3cr3t-", 6)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backendFile, []byte(backend+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secretFile, backendFile, backend
}

// staged is a running staged process.
type staged struct {
	cmd  *exec.Cmd
	api  string // http://host:port
	done chan error
	logs *bytes.Buffer
}

// startStaged starts the binary and waits for its HTTP address line.
func startStaged(t *testing.T, bin string, args ...string) *staged {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &staged{cmd: cmd, done: make(chan error, 1), logs: &logs}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "staged: HTTP API on "); ok {
				addr <- strings.Fields(a)[0]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case s.api = <-addr:
	case err := <-s.done:
		t.Fatalf("staged exited before serving: %v\n%s", err, logs.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("staged did not print its address\n%s", logs.String())
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *staged) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("staged after SIGTERM: %v\n%s", err, s.logs.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("staged did not stop on SIGTERM\n%s", s.logs.String())
	}
}

// call makes one request and decodes a JSON answer into out.
func call(t *testing.T, method, url, token, body string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, data)
		}
	}
}

// token runs `staged token`.
func token(t *testing.T, bin, secretFile, user string) string {
	t.Helper()
	out, err := exec.Command(bin, "token", "--jwt-secret-file", secretFile, "--user", user).Output()
	if err != nil {
		t.Fatalf("staged token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestStaged_session is the README's session against the real binary on
// the embedded default: the backend adds a host and a viewer, the viewer
// requests, the host grants, the viewer joins; a forged token changes
// nothing; SIGTERM stops it cleanly, and a restart on the same data
// directory has every command.
func TestStaged_session(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the staged binary")
	}
	bin := buildStaged(t)
	secretFile, backendFile, backend := secrets(t)
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"--data-dir", data, "--http", "127.0.0.1:0", "--jwt-secret-file", secretFile, "--backend-token-file", backendFile}
	s := startStaged(t, bin, args...)
	api := s.api + "/v1/meetings/standup"
	alice, bob := token(t, bin, secretFile, "alice"), token(t, bin, secretFile, "bob")

	call(t, "GET", s.api+"/healthz", "", "", 200, nil)
	call(t, "POST", api+"/participants", backend, `{"user":"alice","permissions":{"stageAccess":"Allowed","acceptStageRequests":true}}`, 200, nil)
	call(t, "POST", api+"/participants", backend, `{"user":"bob","permissions":{"stageAccess":"CanRequest"}}`, 200, nil)
	call(t, "POST", api+"/stage/requests", bob+"x", "", 401, nil) // a forged signature
	call(t, "POST", api+"/participants", bob, `{"user":"eve","permissions":{"stageAccess":"Allowed"}}`, 403, nil)
	call(t, "POST", api+"/stage/requests", bob, "", 200, nil)
	var reqs struct {
		Requests []struct {
			User string `json:"user"`
		} `json:"requests"`
	}
	call(t, "GET", api+"/stage/requests", alice, "", 200, &reqs)
	if len(reqs.Requests) != 1 || reqs.Requests[0].User != "bob" {
		t.Fatalf("requests %+v", reqs)
	}
	call(t, "GET", api+"/stage/requests", bob, "", 403, nil) // only hosts
	call(t, "POST", api+"/stage/grant", alice, `{"users":["bob"]}`, 200, nil)
	call(t, "POST", api+"/stage/join", bob, "", 200, nil)
	var st struct {
		Status string `json:"status"`
	}
	call(t, "GET", api+"/stage/status", bob, "", 200, &st)
	if st.Status != "OnStage" {
		t.Fatalf("bob is %s", st.Status)
	}
	s.stop(t)

	s = startStaged(t, bin, args...)
	call(t, "GET", s.api+"/v1/meetings/standup/stage/status", bob, "", 200, &st)
	if st.Status != "OnStage" {
		t.Fatalf("after a restart bob is %s", st.Status)
	}
	s.stop(t)
}

// TestStaged_badFlags: a bad command line exits 2 with a reason, and a
// service with no credentials refuses to start.
func TestStaged_badFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	ctx := context.Background()
	if code := run(ctx, []string{"--no-such-flag"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown flag: exit %d", code)
	}
	errOut.Reset()
	if code := run(ctx, []string{"--data-dir", t.TempDir()}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "no credentials") {
		t.Fatalf("no credentials: exit %d, %q", code, errOut.String())
	}
	secretFile, _, _ := secrets(t)
	errOut.Reset()
	if code := run(ctx, []string{"token", "--jwt-secret-file", secretFile, "--user", "bad\x00id"}, &out, &errOut); code != 2 {
		t.Fatalf("token for a bad id: exit %d, %q", code, errOut.String())
	}
	out.Reset()
	if code := run(ctx, []string{"--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "--jwt-secret-file") {
		t.Fatalf("--help: exit %d", code)
	}
}
