package checkpoint_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
)

func testKey(t testing.TB) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	privPEM, pubPEM, err := checkpoint.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := checkpoint.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := checkpoint.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatal("the public key file does not hold the private key's public half")
	}
	return priv, pub
}

func sample() checkpoint.Checkpoint {
	return checkpoint.Checkpoint{MeetingID: "webinar-1", Version: 42, Hash: events.Hash{1, 2, 3}, Time: time.Date(2026, 12, 4, 14, 3, 7, 123456789, time.UTC)}
}

func TestSignVerify(t *testing.T) {
	priv, pub := testKey(t)
	s, err := checkpoint.Sign(priv, sample())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(pub); err != nil {
		t.Fatalf("a fresh signature: %v", err)
	}
	// Every field is covered: editing any one breaks the signature.
	edits := map[string]func(*checkpoint.Signed){
		"meeting": func(s *checkpoint.Signed) { s.MeetingID = "webinar-2" },
		"version": func(s *checkpoint.Signed) { s.Version++ },
		"hash":    func(s *checkpoint.Signed) { s.Hash[31] ^= 1 },
		"time":    func(s *checkpoint.Signed) { s.Time = s.Time.Add(time.Nanosecond) },
		"sig":     func(s *checkpoint.Signed) { s.Sig = append([]byte(nil), s.Sig...); s.Sig[0] ^= 1 },
	}
	for name, edit := range edits {
		c := s
		edit(&c)
		if err := c.Verify(pub); !errors.Is(err, checkpoint.ErrBadSignature) {
			t.Errorf("%s edited: Verify = %v, want ErrBadSignature", name, err)
		}
	}
	_, other := testKey(t)
	if err := s.Verify(other); !errors.Is(err, checkpoint.ErrBadSignature) || !strings.Contains(err.Error(), "signed with key") {
		t.Errorf("another key: Verify = %v, want ErrBadSignature naming the key", err)
	}
}

func TestSignRefuses(t *testing.T) {
	priv, _ := testKey(t)
	bad := map[string]func(*checkpoint.Checkpoint){
		"no meeting": func(c *checkpoint.Checkpoint) { c.MeetingID = "" },
		"bad id":     func(c *checkpoint.Checkpoint) { c.MeetingID = "a\x00b" },
		"version 0":  func(c *checkpoint.Checkpoint) { c.Version = 0 },
		"no hash":    func(c *checkpoint.Checkpoint) { c.Hash = events.Hash{} },
		"no time":    func(c *checkpoint.Checkpoint) { c.Time = time.Time{} },
	}
	for name, edit := range bad {
		c := sample()
		edit(&c)
		if _, err := checkpoint.Sign(priv, c); !errors.Is(err, checkpoint.ErrMalformed) {
			t.Errorf("%s: Sign = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := checkpoint.Sign(priv[:10], sample()); err == nil {
		t.Error("a short key was accepted")
	}
}

func TestMarshalParse(t *testing.T) {
	priv, pub := testKey(t)
	s, err := checkpoint.Sign(priv, sample())
	if err != nil {
		t.Fatal(err)
	}
	b, err := checkpoint.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := checkpoint.Parse(b)
	if err != nil {
		t.Fatalf("Parse(%s): %v", b, err)
	}
	if err := got.Verify(pub); err != nil {
		t.Fatalf("parsed checkpoint: %v", err)
	}
	for _, bad := range []string{
		``, `{}`, `null`, `[]`,
		strings.Replace(string(b), `"key"`, `"kee"`, 1),
		strings.TrimSuffix(string(b), "}") + `,"extra":1}`,
		string(b) + ` {}`,
		strings.Replace(string(b), `"version":42`, `"version":0`, 1),
		strings.Replace(string(b), `"version":42`, `"version":-1`, 1),
	} {
		if _, err := checkpoint.Parse([]byte(bad)); !errors.Is(err, checkpoint.ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestFile(t *testing.T) {
	priv, pub := testKey(t)
	path := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	f, err := checkpoint.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []checkpoint.Signed
	for v := uint64(1); v <= 3; v++ {
		c := sample()
		c.Version = v
		s, err := checkpoint.Sign(priv, c)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, s)
	}
	if err := f.WriteCheckpoints(t.Context(), want[:2]); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteCheckpoints(t.Context(), want[2:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteCheckpoints(t.Context(), want); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after Close = %v, want os.ErrClosed", err)
	}
	got, err := checkpoint.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("read %d checkpoints, want 3", len(got))
	}
	for i := range got {
		if got[i].Version != want[i].Version || got[i].Verify(pub) != nil {
			t.Errorf("checkpoint %d: %+v", i, got[i])
		}
	}
	// A write torn by a crash leaves a last line cut short: reported with
	// its line number, the others still read.
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, data[:len(data)-20], 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = checkpoint.ReadFile(path)
	var le *checkpoint.LineError
	if !errors.As(err, &le) || le.Line != 3 || !errors.Is(err, checkpoint.ErrMalformed) {
		t.Fatalf("torn file: err %v, want a LineError at line 3", err)
	}
	if len(got) != 2 {
		t.Errorf("torn file: %d checkpoints read, want 2", len(got))
	}
}

func TestKeys(t *testing.T) {
	privPEM, pubPEM, err := checkpoint.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.ParsePrivateKey(pubPEM); !errors.Is(err, checkpoint.ErrKey) {
		t.Errorf("a public key as private: %v", err)
	}
	if _, err := checkpoint.ParsePublicKey([]byte("not pem")); !errors.Is(err, checkpoint.ErrKey) {
		t.Errorf("garbage as public key: %v", err)
	}
	// A private key file gives its public half.
	pub, err := checkpoint.ParsePublicKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pub2, _ := checkpoint.ParsePublicKey(pubPEM)
	if !bytes.Equal(pub, pub2) {
		t.Error("the public half of the private key differs from the public key")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "k.pem"), privPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "k.pub"), pubPEM, 0o644)
	if _, err := checkpoint.LoadPrivateKey(filepath.Join(dir, "k.pem")); err != nil {
		t.Error(err)
	}
	if _, err := checkpoint.LoadPublicKey(filepath.Join(dir, "k.pub")); err != nil {
		t.Error(err)
	}
	if _, err := checkpoint.LoadPublicKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing key file was accepted")
	}
}

// FuzzParse feeds arbitrary bytes to the checkpoint parser: it must never
// panic, what it refuses wraps ErrMalformed, and what it accepts encodes
// back to bytes that parse to the same checkpoint.
//
// Run with: go test ./checkpoint -run '^$' -fuzz FuzzParse -fuzztime 1m
func FuzzParse(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(nil)
	s, err := checkpoint.Sign(priv, sample())
	if err != nil {
		f.Fatal(err)
	}
	b, _ := checkpoint.Marshal(&s)
	f.Add(b)
	for _, x := range []string{``, `{}`, `null`, `{"meeting":"m","version":1}`, string(b[:len(b)/2])} {
		f.Add([]byte(x))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := checkpoint.Parse(data)
		if err != nil {
			if !errors.Is(err, checkpoint.ErrMalformed) {
				t.Fatalf("Parse error %v does not wrap ErrMalformed", err)
			}
			return
		}
		b, err := checkpoint.Marshal(&s)
		if err != nil {
			t.Fatalf("Marshal of a parsed checkpoint: %v", err)
		}
		s2, err := checkpoint.Parse(b)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		if s2.MeetingID != s.MeetingID || s2.Version != s.Version || s2.Hash != s.Hash || !s2.Time.Equal(s.Time) || s2.Key != s.Key || !bytes.Equal(s2.Sig, s.Sig) {
			t.Fatalf("round trip changed the checkpoint: %+v -> %+v", s, s2)
		}
	})
}
