package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReceipt runs the demo (which signs checkpoints), makes receipts of a
// kick and a denial from its data directory and from an export, checks
// them offline with and without the key, and refuses edited ones.
func TestReceipt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	if code, out, errs := stagereplay(t, "demo", "--dir", dir, "--steps", "30", "-q"); code != exitOK {
		t.Fatalf("demo: exit %d: %s\n%s", code, errs, out)
	}
	pub := filepath.Join(dir, "signing-key.pub")
	tmp := t.TempDir()
	// sofia (a speaker) is kicked in the opening and moved by nothing
	// later: her receipt links many events.
	bob := filepath.Join(tmp, "sofia.json")
	code, out, errs := stagereplay(t, "receipt", dir, "--user", "sofia", "--public-key", pub, "-o", bob)
	if code != exitOK || !strings.Contains(errs, "anchored by the checkpoint") {
		t.Fatalf("receipt for sofia: exit %d: %s%s", code, out, errs)
	}
	code, out, errs = stagereplay(t, "receipt", "verify", bob, "--public-key", pub)
	if code != exitOK || !strings.HasPrefix(out, "VALID: ") || !strings.Contains(out, "Kicked") || !strings.Contains(out, "anchored: the head is the one key") {
		t.Fatalf("receipt verify with the key: exit %d: %s%s", code, out, errs)
	}
	code, out, _ = stagereplay(t, "receipt", "verify", bob)
	if code != exitOK || !strings.Contains(out, "unchecked without --public-key") {
		t.Fatalf("receipt verify without the key: exit %d: %s", code, out)
	}
	code, out, _ = stagereplay(t, "receipt", "verify", bob, "--json", "--public-key", pub)
	var verdict struct {
		OK       bool   `json:"ok"`
		Version  uint64 `json:"Version"`
		Anchored bool   `json:"Anchored"`
	}
	if err := json.Unmarshal([]byte(out), &verdict); code != exitOK || err != nil || !verdict.OK || !verdict.Anchored || verdict.Version == 0 {
		t.Fatalf("receipt verify --json: exit %d, %v: %s", code, err, out)
	}

	// From an export and the checkpoint file, for a denial.
	export := filepath.Join(tmp, "log.jsonl")
	if code, _, errs := stagereplay(t, "export", dir, "-o", export); code != exitOK {
		t.Fatal(errs)
	}
	carol := filepath.Join(tmp, "carol.json")
	code, out, errs = stagereplay(t, "receipt", export, "-u", "carol", "--public-key", pub, "--checkpoints", filepath.Join(dir, "checkpoints.jsonl"), "-o", carol)
	if code != exitOK || !strings.Contains(errs, "anchored by the checkpoint") {
		t.Fatalf("receipt for carol from the export: exit %d: %s%s", code, out, errs)
	}
	if code, out, _ := stagereplay(t, "receipt", "verify", carol, "--public-key", pub); code != exitOK || !strings.Contains(out, "AccessDenied") {
		t.Fatalf("carol's receipt: exit %d: %s", code, out)
	}
	// Without a key: made, but anchored by nothing, and refused with a key.
	plain := filepath.Join(tmp, "plain.json")
	if code, _, errs := stagereplay(t, "receipt", export, "-u", "carol", "-o", plain); code != exitOK || !strings.Contains(errs, "anchored by nothing") {
		t.Fatalf("receipt without a key: exit %d: %s", code, errs)
	}
	if code, out, _ := stagereplay(t, "receipt", "verify", plain, "--public-key", pub); code != exitFindings || !strings.HasPrefix(out, "INVALID: ") {
		t.Fatalf("an unanchored receipt with the key: exit %d: %s", code, out)
	}

	// Edited receipts: exit 1, INVALID.
	data, _ := os.ReadFile(bob)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	var links []json.RawMessage
	json.Unmarshal(m["links"], &links)
	if len(links) < 3 {
		t.Fatalf("sofia's receipt has %d links; the test wants at least 3", len(links))
	}
	dropped := map[string]json.RawMessage{}
	for k, v := range m {
		dropped[k] = v
	}
	dropped["links"], _ = json.Marshal(append(links[:1:1], links[2:]...))
	droppedData, _ := json.Marshal(dropped)
	for name, edited := range map[string]string{
		"event edited":   strings.Replace(string(data), `"bob"`, `"bobby"`, 1),
		"link removed":   string(droppedData),
		"not a receipt":  `{"hello": 1}`,
		"truncated file": string(data[:len(data)/2]),
	} {
		path := filepath.Join(tmp, "edited.json")
		os.WriteFile(path, []byte(edited), 0o644)
		code, out, _ := stagereplay(t, "receipt", "verify", path, "--public-key", pub)
		if code != exitFindings || !strings.HasPrefix(out, "INVALID: ") {
			t.Errorf("%s: exit %d: %s", name, code, out)
		}
	}

	// Errors: no event named, a user never kicked or denied, no such file.
	for _, args := range [][]string{
		{"receipt", dir},
		{"receipt", dir, "--user", "nobody"},
		{"receipt", dir, "--user", "bob", "--version", "1"},
		{"receipt", "verify", filepath.Join(tmp, "missing.json")},
	} {
		if code, _, _ := stagereplay(t, args...); code != exitError {
			t.Errorf("%v: exit %d, want %d", args, code, exitError)
		}
	}
}
