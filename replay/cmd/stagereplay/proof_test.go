package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyProof runs the demo (which signs checkpoints), then verifies its
// log, an export of it, and a copy cut short, with and without the key.
func TestVerifyProof(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	if code, out, errs := stagereplay(t, "demo", "--dir", dir, "--steps", "30", "-q"); code != exitOK {
		t.Fatalf("demo: exit %d: %s\n%s", code, errs, out)
	}
	pub := filepath.Join(dir, "signing-key.pub")
	code, out, errs := stagereplay(t, "verify", dir, "--public-key", pub)
	if code != exitOK || !strings.Contains(out, "proven: ") || strings.Contains(out, "not proven") {
		t.Fatalf("verify of the demo with its key: exit %d: %s%s", code, out, errs)
	}
	code, out, _ = stagereplay(t, "verify", dir)
	if code != exitOK || !strings.Contains(out, "not proven: no --public-key") {
		t.Fatalf("verify without a key: exit %d: %s", code, out)
	}

	export := filepath.Join(t.TempDir(), "log.jsonl")
	if code, _, errs := stagereplay(t, "export", dir, "-o", export); code != exitOK {
		t.Fatal(errs)
	}
	cps := filepath.Join(dir, "checkpoints.jsonl")
	if code, out, errs := stagereplay(t, "verify", export, "--public-key", pub, "--checkpoints", cps); code != exitOK || strings.Contains(out, "not proven") {
		t.Fatalf("verify of the export with the checkpoint file: exit %d: %s%s", code, out, errs)
	}
	// The tail cut: the hash chain of what is left is intact, so only the
	// checkpoint can tell.
	data, _ := os.ReadFile(export)
	lines := strings.SplitAfter(string(data), "\n")
	cut := filepath.Join(t.TempDir(), "cut.jsonl")
	os.WriteFile(cut, []byte(strings.Join(lines[:len(lines)-4], "")), 0o644)
	if code, out, _ := stagereplay(t, "verify", cut); code != exitOK {
		t.Fatalf("a cut tail without a key: exit %d (the chain of what is left is intact): %s", code, out)
	}
	code, out, _ = stagereplay(t, "verify", cut, "--public-key", pub, "--checkpoints", cps)
	if code != exitFindings || !strings.Contains(out, "checkpoint") || !strings.Contains(out, "lost or cut") {
		t.Fatalf("a cut tail with the key: exit %d: %s", code, out)
	}
	// Import holds an export to the same proof: the cut copy is refused with
	// the key, imported without it.
	to := filepath.Join(t.TempDir(), "imported")
	code, out, errs = stagereplay(t, "import", cut, "--to", to, "--public-key", pub, "--checkpoints", cps)
	if code != exitError || !strings.Contains(out+errs, "checkpoint") {
		t.Fatalf("import of a cut copy with the key: exit %d: %s%s", code, out, errs)
	}
	if code, out, errs := stagereplay(t, "import", cut, "--to", to, "--dry-run"); code != exitOK {
		t.Fatalf("import of a cut copy without a key (dry run): exit %d: %s%s", code, out, errs)
	}
	if code, out, errs := stagereplay(t, "import", export, "--to", to, "--public-key", pub, "--checkpoints", cps); code != exitOK {
		t.Fatalf("import of the whole export with the key: exit %d: %s%s", code, out, errs)
	}
	// Another key proves nothing, and says so.
	other := filepath.Join(t.TempDir(), "other")
	if code, _, errs := stagereplay(t, "keygen", other+".pem", other+".pub"); code != exitOK {
		t.Fatal(errs)
	}
	code, out, _ = stagereplay(t, "verify", export, "--public-key", other+".pub", "--checkpoints", cps)
	if code != exitFindings || !strings.Contains(out, "signature") {
		t.Fatalf("verify with another key: exit %d: %s", code, out)
	}
	// keygen never overwrites; --checkpoints needs a key.
	if code, _, _ := stagereplay(t, "keygen", other+".pem", other+"2.pub"); code != exitError {
		t.Errorf("keygen over an existing key: exit %d", code)
	}
	if code, _, _ := stagereplay(t, "verify", export, "--checkpoints", cps); code != exitError {
		t.Errorf("--checkpoints without --public-key: exit %d", code)
	}
}
