package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/productdb/stage/service/auth"
)

// now is the fixed clock of these tests.
var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

var (
	hmacSecret = []byte("0123456789abcdef0123456789abcdef") // 32 bytes
	otherHMAC  = []byte("fedcba9876543210fedcba9876543210")
	edPriv     = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	edPub      = edPriv.Public().(ed25519.PublicKey)
	otherEd    = ed25519.NewKeyFromSeed([]byte("another seed of 32 bytes........"))
	backendTok = "backend-token-0123456789abcdef-0123456789"
)

var rsaKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var ks [2]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ks[i] = k
	}
	return ks
})

// pemOf encodes a public key as a PKIX "PUBLIC KEY" PEM block.
func pemOf(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// newAuth is the authenticator most tests use: one key of each algorithm
// (HS256 as kid "h" and as the default key), RSA from a PEM block, the
// backend token, issuer and audience checks.
func newAuth(t testing.TB, opts ...auth.JWTOption) *auth.JWT {
	t.Helper()
	base := []auth.JWTOption{
		auth.WithHMAC("", hmacSecret),
		auth.WithHMAC("h", hmacSecret),
		auth.WithEd25519("e", edPub),
		auth.WithPublicKeyPEM("r", pemOf(t, &rsaKeys()[0].PublicKey)),
		auth.WithBackendToken(backendTok),
		auth.WithClock(func() time.Time { return now }),
		auth.WithLeeway(10 * time.Second),
	}
	j, err := auth.NewJWT(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// claims are valid claims for user alice at now.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub": "alice",
		"exp": now.Add(time.Hour).Unix(),
		"iat": now.Add(-time.Minute).Unix(),
		"nbf": now.Add(-time.Minute).Unix(),
		"iss": "https://issuer.example",
		"aud": []string{"stage", "other"},
	}
}

// sign signs c with method and key, with header kid unless kid is "".
func sign(t testing.TB, m jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// with returns claims() changed by f.
func with(f func(jwt.MapClaims)) jwt.MapClaims {
	c := claims()
	f(c)
	return c
}

// rawToken assembles a token from a header and payload (JSON) and a
// signature computed by sig over "header.payload".
func rawToken(header, payload string, sig func(signingInput string) []byte) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	return in + "." + enc.EncodeToString(sig(in))
}

func hs256(secret []byte) func(string) []byte {
	return func(in string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return m.Sum(nil)
	}
}

func TestJWT_Authenticate(t *testing.T) {
	ctx := context.Background()
	rsa0, rsa1 := rsaKeys()[0], rsaKeys()[1]
	// The RSA public key as an HMAC secret: the classic alg confusion.
	rsaPEM := pemOf(t, &rsa0.PublicKey)
	payload, _ := json.Marshal(claims())

	for _, tc := range []struct {
		name  string
		token string
		opts  []auth.JWTOption
		want  auth.Identity
		err   error // nil: authenticates as want
	}{
		{name: "HS256 with kid", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, claims()), want: auth.Identity{UserID: "alice"}},
		{name: "HS256 without kid", token: sign(t, jwt.SigningMethodHS256, "", hmacSecret, claims()), want: auth.Identity{UserID: "alice"}},
		{name: "EdDSA", token: sign(t, jwt.SigningMethodEdDSA, "e", edPriv, claims()), want: auth.Identity{UserID: "alice"}},
		{name: "RS256", token: sign(t, jwt.SigningMethodRS256, "r", rsa0, claims()), want: auth.Identity{UserID: "alice"}},
		{name: "unicode sub", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { c["sub"] = "zoë" })), want: auth.Identity{UserID: "zoë"}},
		{name: "only exp and sub", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, jwt.MapClaims{"sub": "bob", "exp": now.Add(time.Minute).Unix()}), want: auth.Identity{UserID: "bob"}},
		{name: "expired within leeway", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-5 * time.Second).Unix() })), want: auth.Identity{UserID: "alice"}},
		{name: "iss and aud checked", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, claims()),
			opts: []auth.JWTOption{auth.WithIssuer("https://issuer.example"), auth.WithAudience("stage")}, want: auth.Identity{UserID: "alice"}},
		{name: "backend token", token: backendTok, want: auth.Identity{Backend: true}},

		{name: "empty", token: "", err: auth.ErrMalformedToken},
		{name: "garbage", token: "not a token", err: auth.ErrMalformedToken},
		{name: "too long", token: strings.Repeat("a", auth.MaxTokenLen+1), err: auth.ErrMalformedToken},
		{name: "backend token prefix", token: backendTok[:len(backendTok)-1], err: auth.ErrMalformedToken},
		{name: "expired", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-11 * time.Second).Unix() })), err: auth.ErrTokenExpired},
		{name: "no exp", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { delete(c, "exp") })), err: auth.ErrTokenExpired},
		{name: "not yet valid", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), err: auth.ErrTokenNotYetValid},
		{name: "issued in the future", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() })), err: auth.ErrTokenNotYetValid},
		{name: "wrong HMAC secret", token: sign(t, jwt.SigningMethodHS256, "h", otherHMAC, claims()), err: auth.ErrInvalidSignature},
		{name: "wrong Ed25519 key", token: sign(t, jwt.SigningMethodEdDSA, "e", otherEd, claims()), err: auth.ErrInvalidSignature},
		{name: "wrong RSA key", token: sign(t, jwt.SigningMethodRS256, "r", rsa1, claims()), err: auth.ErrInvalidSignature},
		{name: "wrong alg for kid", token: sign(t, jwt.SigningMethodRS256, "e", rsa0, claims()), err: auth.ErrUnknownKey},
		{name: "alg not allowed (RS512)", token: sign(t, jwt.SigningMethodRS512, "r", rsa0, claims()), err: auth.ErrUnknownKey},
		{name: "alg confusion: HS256 with the RSA public key as secret", token: sign(t, jwt.SigningMethodHS256, "r", rsaPEM, claims()), err: auth.ErrUnknownKey},
		{name: "alg confusion: HS256 with the Ed25519 key as secret", token: sign(t, jwt.SigningMethodHS256, "e", []byte(edPub), claims()), err: auth.ErrUnknownKey},
		{name: "alg none", token: sign(t, jwt.SigningMethodNone, "", jwt.UnsafeAllowNoneSignatureType, claims()), err: auth.ErrUnknownKey},
		{name: "alg none with kid", token: sign(t, jwt.SigningMethodNone, "h", jwt.UnsafeAllowNoneSignatureType, claims()), err: auth.ErrUnknownKey},
		{name: "alg none by hand, empty signature", token: rawToken(`{"alg":"none"}`, string(payload), func(string) []byte { return nil }), err: auth.ErrUnknownKey},
		{name: "kid not a string", token: rawToken(`{"alg":"HS256","kid":7}`, string(payload), hs256(hmacSecret)), err: auth.ErrUnknownKey},
		{name: "unknown kid", token: sign(t, jwt.SigningMethodHS256, "nope", hmacSecret, claims()), err: auth.ErrUnknownKey},
		{name: "tampered payload", token: tamper(sign(t, jwt.SigningMethodHS256, "h", hmacSecret, claims())), err: auth.ErrInvalidSignature},
		{name: "tampered payload EdDSA", token: tamper(sign(t, jwt.SigningMethodEdDSA, "e", edPriv, claims())), err: auth.ErrInvalidSignature},
		{name: "missing sub", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { delete(c, "sub") })), err: auth.ErrInvalidClaims},
		{name: "bad sub (control character)", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { c["sub"] = "al\nice" })), err: auth.ErrInvalidClaims},
		{name: "bad sub (too long)", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { c["sub"] = strings.Repeat("x", 1000) })), err: auth.ErrInvalidClaims},
		{name: "sub not a string", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { c["sub"] = 42 })), err: auth.ErrMalformedToken},
		{name: "exp not a number", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { c["exp"] = "tomorrow" })), err: auth.ErrMalformedToken},
		{name: "wrong issuer", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })),
			opts: []auth.JWTOption{auth.WithIssuer("https://issuer.example")}, err: auth.ErrInvalidClaims},
		{name: "missing issuer", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { delete(c, "iss") })),
			opts: []auth.JWTOption{auth.WithIssuer("https://issuer.example")}, err: auth.ErrInvalidClaims},
		{name: "wrong audience", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, claims()),
			opts: []auth.JWTOption{auth.WithAudience("billing")}, err: auth.ErrInvalidClaims},
		{name: "missing audience", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { delete(c, "aud") })),
			opts: []auth.JWTOption{auth.WithAudience("stage")}, err: auth.ErrInvalidClaims},
		{name: "a JWT claiming the backend role is only a user", token: sign(t, jwt.SigningMethodHS256, "h", hmacSecret, with(func(c jwt.MapClaims) { c["stage_role"] = "backend" })),
			want: auth.Identity{UserID: "alice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newAuth(t, tc.opts...).Authenticate(ctx, tc.token)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if got != tc.want {
					t.Fatalf("identity %+v, want %+v", got, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.err) || !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("err %v, want %v (wrapping ErrUnauthenticated)", err, tc.err)
			}
			if got != (auth.Identity{}) {
				t.Fatalf("identity %+v with an error", got)
			}
			// No reason ever carries key material.
			for _, secret := range []string{string(hmacSecret), backendTok, "MII", base64.RawURLEncoding.EncodeToString(edPub)} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q leaks key material", err)
				}
			}
		})
	}
}

// tamper changes the payload of a signed token: "alice" becomes "admin".
func tamper(token string) string {
	parts := strings.Split(token, ".")
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		panic(err)
	}
	p = []byte(strings.Replace(string(p), `"alice"`, `"admin"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

func TestJWT_onlyBackend(t *testing.T) {
	j, err := auth.NewJWT(auth.WithBackendToken(backendTok))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := j.Authenticate(context.Background(), backendTok); err != nil || !id.Backend {
		t.Fatalf("backend token: %+v %v", id, err)
	}
	tok := sign(t, jwt.SigningMethodHS256, "", hmacSecret, claims())
	if _, err := j.Authenticate(context.Background(), tok); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("a JWT without keys: %v, want ErrUnknownKey", err)
	}
}

func TestNewJWT_invalid(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(edPriv)
	if err != nil {
		t.Fatal(err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv})
	for _, tc := range []struct {
		name string
		opts []auth.JWTOption
	}{
		{"nothing", nil},
		{"nil option", []auth.JWTOption{nil}},
		{"short HMAC secret", []auth.JWTOption{auth.WithHMAC("", []byte("short"))}},
		{"duplicate kid", []auth.JWTOption{auth.WithHMAC("k", hmacSecret), auth.WithEd25519("k", edPub)}},
		{"bad Ed25519 key", []auth.JWTOption{auth.WithEd25519("e", edPub[:5])}},
		{"nil RSA key", []auth.JWTOption{auth.WithRSA("r", nil)}},
		{"small RSA key", []auth.JWTOption{auth.WithRSA("r", &small.PublicKey)}},
		{"PEM garbage", []auth.JWTOption{auth.WithPublicKeyPEM("p", []byte("not pem"))}},
		{"PEM private key", []auth.JWTOption{auth.WithPublicKeyPEM("p", privPEM)}},
		{"negative leeway", []auth.JWTOption{auth.WithHMAC("", hmacSecret), auth.WithLeeway(-time.Second)}},
		{"huge leeway", []auth.JWTOption{auth.WithHMAC("", hmacSecret), auth.WithLeeway(time.Hour)}},
		{"nil clock", []auth.JWTOption{auth.WithHMAC("", hmacSecret), auth.WithClock(nil)}},
		{"empty issuer", []auth.JWTOption{auth.WithHMAC("", hmacSecret), auth.WithIssuer("")}},
		{"empty audience", []auth.JWTOption{auth.WithHMAC("", hmacSecret), auth.WithAudience("")}},
		{"short backend token", []auth.JWTOption{auth.WithBackendToken("short")}},
		{"long backend token", []auth.JWTOption{auth.WithBackendToken(strings.Repeat("b", auth.MaxTokenLen+1))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := auth.NewJWT(tc.opts...)
			if !errors.Is(err, auth.ErrInvalidConfig) || j != nil {
				t.Fatalf("NewJWT: %v, %v; want ErrInvalidConfig", j, err)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----") || strings.Contains(err.Error(), string(hmacSecret)) {
				t.Fatalf("error %q leaks key material", err)
			}
		})
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	rsaPub := &rsaKeys()[0].PublicKey
	got, err := auth.ParsePublicKeyPEM(pemOf(t, edPub))
	if err != nil || !edPub.Equal(got) {
		t.Fatalf("Ed25519 PKIX: %v %v", got, err)
	}
	got, err = auth.ParsePublicKeyPEM(pemOf(t, rsaPub))
	if err != nil || !rsaPub.Equal(got) {
		t.Fatalf("RSA PKIX: %v", err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rsaPub)})
	got, err = auth.ParsePublicKeyPEM(pkcs1)
	if err != nil || !rsaPub.Equal(got) {
		t.Fatalf("RSA PKCS #1: %v", err)
	}
	// PKCS #1 keys load as options too, and verify RS256 tokens.
	j, err := auth.NewJWT(auth.WithPublicKeyPEM("", pkcs1), auth.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := j.Authenticate(context.Background(), sign(t, jwt.SigningMethodRS256, "", rsaKeys()[0], claims())); err != nil || id.UserID != "alice" {
		t.Fatalf("RS256 through a PKCS #1 PEM: %+v %v", id, err)
	}
	for _, bad := range [][]byte{nil, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: []byte{1, 2, 3}}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})} {
		if _, err := auth.ParsePublicKeyPEM(bad); !errors.Is(err, auth.ErrInvalidConfig) {
			t.Fatalf("ParsePublicKeyPEM(%q): %v, want ErrInvalidConfig", bad, err)
		}
	}
}

// The real clock: a token valid now passes without WithClock.
func TestJWT_realClock(t *testing.T) {
	j, err := auth.NewJWT(auth.WithHMAC("", hmacSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, "", hmacSecret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Minute).Unix()})
	if id, err := j.Authenticate(context.Background(), tok); err != nil || id.UserID != "alice" {
		t.Fatalf("%+v %v", id, err)
	}
	old := sign(t, jwt.SigningMethodHS256, "", hmacSecret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Minute).Unix()})
	if _, err := j.Authenticate(context.Background(), old); !errors.Is(err, auth.ErrTokenExpired) {
		t.Fatalf("expired a minute ago: %v", err)
	}
}
