package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/productdb/stage/service/auth"
)

// FuzzJWT feeds arbitrary tokens to an authenticator with an HS256 secret
// (no kid), an Ed25519 key (kid "e") and the backend token. It must never
// panic, every refusal wraps ErrUnauthenticated, and a token it accepts is
// the backend token or carries a signature that verifies independently of
// jwt-go with one of those keys. The seed corpus (testdata/fuzz/FuzzJWT) has
// valid tokens at the fixed clock `now`, and alg none / confusion attempts.
func FuzzJWT(f *testing.F) {
	a, err := auth.NewJWT(
		auth.WithHMAC("", hmacSecret),
		auth.WithEd25519("e", edPub),
		auth.WithBackendToken(backendTok),
		auth.WithClock(func() time.Time { return now }),
	)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := a.Authenticate(context.Background(), token)
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("error %v does not wrap ErrUnauthenticated", err)
			}
			if id != (auth.Identity{}) {
				t.Fatalf("identity %+v with an error", id)
			}
			return
		}
		if id.Backend {
			if token != backendTok || id.UserID != "" {
				t.Fatalf("backend identity %+v from %q", id, token)
			}
			return
		}
		if id.UserID == "" {
			t.Fatalf("empty identity from %q", token)
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %q: not three parts", token)
		}
		hdr, err1 := base64.RawURLEncoding.DecodeString(parts[0])
		sig, err2 := base64.RawURLEncoding.DecodeString(parts[2])
		var h map[string]any // as jwt-go reads it
		if err1 != nil || err2 != nil || json.Unmarshal(hdr, &h) != nil {
			t.Fatalf("accepted %q: header or signature does not decode", token)
		}
		alg, _ := h["alg"].(string)
		kid, hasKid := h["kid"]
		in := parts[0] + "." + parts[1]
		switch {
		case alg == auth.AlgHS256 && !hasKid:
			if !hmac.Equal(sig, hs256(hmacSecret)(in)) {
				t.Fatalf("accepted %q without a valid HS256 signature", token)
			}
		case alg == auth.AlgEdDSA && kid == "e":
			if !ed25519.Verify(edPub, []byte(in), sig) {
				t.Fatalf("accepted %q without a valid EdDSA signature", token)
			}
		default:
			t.Fatalf("accepted %q with alg %q", token, alg)
		}
	})
}
