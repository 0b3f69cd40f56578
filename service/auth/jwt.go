package auth

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/productdb/stage/events"
)

// The reasons a JWT is refused. Each wraps [ErrUnauthenticated], so
// errors.Is(err, ErrUnauthenticated) holds for all of them; the finer
// sentinel says why (for logs and metrics; HTTP answers 401 to all). No
// reason ever carries key material.
var (
	// ErrMalformedToken: the token is empty, too long, or not a JWT
	// (three base64url parts with a JSON header and payload).
	ErrMalformedToken = fmt.Errorf("%w: malformed token", ErrUnauthenticated)
	// ErrUnknownKey: the token's "kid" header names no configured key, or
	// its "alg" is not the algorithm of that key (an HS256 token is never
	// checked against an RSA or Ed25519 public key, "none" never passes).
	ErrUnknownKey = fmt.Errorf("%w: unknown key or algorithm", ErrUnauthenticated)
	// ErrInvalidSignature: the signature does not verify with the key.
	ErrInvalidSignature = fmt.Errorf("%w: invalid signature", ErrUnauthenticated)
	// ErrTokenExpired: "exp" is missing, or passed (beyond the leeway).
	ErrTokenExpired = fmt.Errorf("%w: token expired or without exp", ErrUnauthenticated)
	// ErrTokenNotYetValid: "nbf" or "iat" is in the future (beyond the
	// leeway).
	ErrTokenNotYetValid = fmt.Errorf("%w: token not yet valid", ErrUnauthenticated)
	// ErrInvalidClaims: "iss" or "aud" is not the expected one, or "sub"
	// is missing or not a valid user id ([events.ValidateID]).
	ErrInvalidClaims = fmt.Errorf("%w: invalid claims", ErrUnauthenticated)
)

// ErrInvalidConfig is returned by [NewJWT] (and the PEM helpers) for a bad
// option: a short HMAC secret, a small RSA key, a duplicate kid, no key at
// all, a leeway out of range, an unparsable PEM block.
var ErrInvalidConfig = errors.New("auth: invalid configuration")

// Limits of [NewJWT]'s options and of the tokens it reads.
const (
	// MinHMACSecret is the shortest HS256 secret accepted, in bytes (the
	// size of the SHA-256 output, RFC 7518 section 3.2).
	MinHMACSecret = 32
	// MinRSABits is the smallest RSA modulus accepted, in bits.
	MinRSABits = 2048
	// MaxLeeway is the largest clock leeway [WithLeeway] accepts.
	MaxLeeway = 5 * time.Minute
	// DefaultLeeway is the clock leeway when [WithLeeway] is not given.
	DefaultLeeway = 30 * time.Second
	// MaxTokenLen is the longest token read, in bytes; a longer one is
	// [ErrMalformedToken] without being decoded.
	MaxTokenLen = 8 << 10
	// MinBackendToken is the shortest static backend token
	// [WithBackendToken] accepts, in bytes.
	MinBackendToken = 32
)

// The algorithms a JWT may be signed with ("alg" header).
const (
	AlgHS256 = "HS256" // HMAC SHA-256 with a shared secret
	AlgEdDSA = "EdDSA" // Ed25519
	AlgRS256 = "RS256" // RSASSA-PKCS1-v1_5 SHA-256
)

// JWT is an [Authenticator] for signed JSON Web Tokens (RFC 7519): the
// token's "sub" is the user id. Built by [NewJWT]; safe for concurrent use.
//
// A token proves an identity when all of these hold:
//   - its "kid" header names a configured key (a token without "kid" uses the
//     key configured with the empty kid), and its "alg" is that key's
//     algorithm: HS256, EdDSA or RS256, never "none";
//   - the signature verifies with that key;
//   - "exp" is present and not passed; "nbf" and "iat", when present, are not
//     in the future (each with the leeway, [DefaultLeeway] unless
//     [WithLeeway]);
//   - "iss" and "aud" match [WithIssuer] and [WithAudience] when set;
//   - "sub" passes [events.ValidateID].
//
// The backend's credential is a separate static token ([WithBackendToken]),
// compared in constant time, which yields Identity{Backend: true}; no JWT
// ever yields the backend identity.
type JWT struct {
	keys   map[string]verificationKey
	parser *jwt.Parser
	// issuer and audience are checked here rather than by jwt-go, whose
	// joined errors would not say which required claim is missing.
	issuer   string
	audience string
	backend  [sha256.Size]byte // SHA-256 of the backend token
	hasBack  bool
}

var _ Authenticator = (*JWT)(nil)

type verificationKey struct {
	alg string
	key any // []byte, ed25519.PublicKey or *rsa.PublicKey
}

type jwtConfig struct {
	keys     map[string]verificationKey
	issuer   string
	audience string
	leeway   time.Duration
	now      func() time.Time
	backend  string
}

// JWTOption configures [NewJWT]. Options validate their input: NewJWT
// returns the first error, wrapping [ErrInvalidConfig].
type JWTOption func(*jwtConfig) error

func (c *jwtConfig) addKey(kid string, k verificationKey) error {
	if _, dup := c.keys[kid]; dup {
		return fmt.Errorf("%w: kid %q configured twice", ErrInvalidConfig, kid)
	}
	if len(kid) > 256 {
		return fmt.Errorf("%w: kid longer than 256 bytes", ErrInvalidConfig)
	}
	c.keys[kid] = k
	return nil
}

// WithHMAC adds an HS256 shared secret (at least [MinHMACSecret] bytes) for
// tokens whose "kid" is kid (the empty kid: tokens without "kid"). The
// secret is copied.
func WithHMAC(kid string, secret []byte) JWTOption {
	return func(c *jwtConfig) error {
		if len(secret) < MinHMACSecret {
			return fmt.Errorf("%w: HMAC secret of %d bytes, want at least %d", ErrInvalidConfig, len(secret), MinHMACSecret)
		}
		return c.addKey(kid, verificationKey{alg: AlgHS256, key: append([]byte(nil), secret...)})
	}
}

// WithEd25519 adds an Ed25519 public key (alg EdDSA) for tokens whose "kid"
// is kid.
func WithEd25519(kid string, pub ed25519.PublicKey) JWTOption {
	return func(c *jwtConfig) error {
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key of %d bytes, want %d", ErrInvalidConfig, len(pub), ed25519.PublicKeySize)
		}
		return c.addKey(kid, verificationKey{alg: AlgEdDSA, key: append(ed25519.PublicKey(nil), pub...)})
	}
}

// WithRSA adds an RSA public key (alg RS256, at least [MinRSABits]) for
// tokens whose "kid" is kid.
func WithRSA(kid string, pub *rsa.PublicKey) JWTOption {
	return func(c *jwtConfig) error {
		if pub == nil || pub.N == nil {
			return fmt.Errorf("%w: nil RSA public key", ErrInvalidConfig)
		}
		if pub.N.BitLen() < MinRSABits {
			return fmt.Errorf("%w: RSA key of %d bits, want at least %d", ErrInvalidConfig, pub.N.BitLen(), MinRSABits)
		}
		return c.addKey(kid, verificationKey{alg: AlgRS256, key: pub})
	}
}

// WithPublicKeyPEM adds the public key in a PEM block ("PUBLIC KEY", PKIX;
// or "RSA PUBLIC KEY", PKCS #1) for tokens whose "kid" is kid: an Ed25519
// key verifies EdDSA tokens, an RSA key RS256 tokens. See [ParsePublicKeyPEM].
func WithPublicKeyPEM(kid string, pemBytes []byte) JWTOption {
	return func(c *jwtConfig) error {
		pub, err := ParsePublicKeyPEM(pemBytes)
		if err != nil {
			return err
		}
		switch k := pub.(type) {
		case ed25519.PublicKey:
			return WithEd25519(kid, k)(c)
		case *rsa.PublicKey:
			return WithRSA(kid, k)(c)
		}
		return fmt.Errorf("%w: unsupported public key type %T", ErrInvalidConfig, pub)
	}
}

// ParsePublicKeyPEM reads the first PEM block of pemBytes: a "PUBLIC KEY"
// (PKIX) holding an Ed25519 or RSA key, or an "RSA PUBLIC KEY" (PKCS #1).
// It returns an ed25519.PublicKey or a *rsa.PublicKey, or an error wrapping
// [ErrInvalidConfig] (no block, another block type such as a private key,
// another key type).
func ParsePublicKeyPEM(pemBytes []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrInvalidConfig)
	}
	switch block.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PKIX public key does not parse", ErrInvalidConfig)
		}
		switch k := pub.(type) {
		case ed25519.PublicKey, *rsa.PublicKey:
			return k, nil
		}
		return nil, fmt.Errorf("%w: PKIX public key of type %T, want Ed25519 or RSA", ErrInvalidConfig, pub)
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PKCS #1 public key does not parse", ErrInvalidConfig)
		}
		return pub, nil
	}
	// Never echo the block: a private key pasted by mistake stays out of
	// the error.
	return nil, fmt.Errorf("%w: PEM block %q, want PUBLIC KEY or RSA PUBLIC KEY", ErrInvalidConfig, block.Type)
}

// WithIssuer requires the "iss" claim to be iss.
func WithIssuer(iss string) JWTOption {
	return func(c *jwtConfig) error {
		if iss == "" {
			return fmt.Errorf("%w: empty issuer", ErrInvalidConfig)
		}
		c.issuer = iss
		return nil
	}
}

// WithAudience requires the "aud" claim to contain aud.
func WithAudience(aud string) JWTOption {
	return func(c *jwtConfig) error {
		if aud == "" {
			return fmt.Errorf("%w: empty audience", ErrInvalidConfig)
		}
		c.audience = aud
		return nil
	}
}

// WithLeeway sets the clock skew tolerated on "exp", "nbf" and "iat":
// between 0 and [MaxLeeway]; [DefaultLeeway] when not given.
func WithLeeway(d time.Duration) JWTOption {
	return func(c *jwtConfig) error {
		if d < 0 || d > MaxLeeway {
			return fmt.Errorf("%w: leeway %v, want 0 to %v", ErrInvalidConfig, d, MaxLeeway)
		}
		c.leeway = d
		return nil
	}
}

// WithClock sets the clock the time claims are checked against (tests);
// time.Now when not given.
func WithClock(now func() time.Time) JWTOption {
	return func(c *jwtConfig) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidConfig)
		}
		c.now = now
		return nil
	}
}

// WithBackendToken sets the backend's static credential ([MinBackendToken]
// to [MaxTokenLen] bytes; generate it randomly): a bearer token equal to
// it authenticates as Identity{Backend: true}. The comparison takes the
// same time whatever the presented token.
func WithBackendToken(token string) JWTOption {
	return func(c *jwtConfig) error {
		if len(token) < MinBackendToken || len(token) > MaxTokenLen {
			return fmt.Errorf("%w: backend token of %d bytes, want %d to %d", ErrInvalidConfig, len(token), MinBackendToken, MaxTokenLen)
		}
		c.backend = token
		return nil
	}
}

// NewJWT returns a JWT authenticator with at least one key ([WithHMAC],
// [WithEd25519], [WithRSA], [WithPublicKeyPEM]) or a backend token. An
// invalid option is an error wrapping [ErrInvalidConfig].
func NewJWT(opts ...JWTOption) (*JWT, error) {
	c := &jwtConfig{keys: map[string]verificationKey{}, leeway: DefaultLeeway, now: time.Now}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidConfig)
		}
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if len(c.keys) == 0 && c.backend == "" {
		return nil, fmt.Errorf("%w: no key and no backend token", ErrInvalidConfig)
	}
	algs := map[string]bool{}
	for _, k := range c.keys {
		algs[k.alg] = true
	}
	methods := make([]string, 0, len(algs))
	for _, a := range []string{AlgHS256, AlgEdDSA, AlgRS256} {
		if algs[a] {
			methods = append(methods, a)
		}
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(c.leeway),
		jwt.WithTimeFunc(c.now),
		jwt.WithStrictDecoding(),
	}
	j := &JWT{keys: c.keys, parser: jwt.NewParser(popts...), issuer: c.issuer, audience: c.audience}
	if c.backend != "" {
		j.backend = sha256.Sum256([]byte(c.backend))
		j.hasBack = true
	}
	return j, nil
}

// Authenticate returns the identity token proves: the backend for the
// static backend token, else the user named by a valid JWT's "sub". Every
// error wraps [ErrUnauthenticated] and one of the finer reasons
// ([ErrMalformedToken], [ErrUnknownKey], [ErrInvalidSignature],
// [ErrTokenExpired], [ErrTokenNotYetValid], [ErrInvalidClaims]). ctx is
// not used: verification does no I/O.
func (j *JWT) Authenticate(_ context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, fmt.Errorf("%w: empty", ErrMalformedToken)
	}
	if len(token) > MaxTokenLen {
		return Identity{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformedToken, MaxTokenLen)
	}
	if j.hasBack {
		// Hashing first makes the comparison independent of the length
		// of either token.
		h := sha256.Sum256([]byte(token))
		if hmac.Equal(h[:], j.backend[:]) {
			return Identity{Backend: true}, nil
		}
	}
	if len(j.keys) == 0 {
		return Identity{}, fmt.Errorf("%w: not the backend token, and no JWT key configured", ErrUnknownKey)
	}
	var claims jwt.RegisteredClaims
	_, err := j.parser.ParseWithClaims(token, &claims, j.keyFor)
	if err != nil {
		return Identity{}, classify(err)
	}
	if j.issuer != "" && claims.Issuer != j.issuer {
		return Identity{}, fmt.Errorf("%w: wrong or missing iss", ErrInvalidClaims)
	}
	if j.audience != "" && !slices.Contains(claims.Audience, j.audience) {
		return Identity{}, fmt.Errorf("%w: wrong or missing aud", ErrInvalidClaims)
	}
	if claims.Subject == "" {
		return Identity{}, fmt.Errorf("%w: no sub", ErrInvalidClaims)
	}
	if err := events.ValidateID(claims.Subject); err != nil {
		return Identity{}, fmt.Errorf("%w: sub is not a valid user id", ErrInvalidClaims)
	}
	return Identity{UserID: claims.Subject}, nil
}

// errKey is the keyfunc's refusal, found again by classify.
var errKey = errors.New("no key for the token's kid and alg")

// keyFor is the jwt keyfunc: the key named by the token's kid, only if the
// token's alg is that key's algorithm.
func (j *JWT) keyFor(t *jwt.Token) (any, error) {
	kid := ""
	if v, ok := t.Header["kid"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, errKey
		}
		kid = s
	}
	k, ok := j.keys[kid]
	if !ok || t.Method == nil || t.Method.Alg() != k.alg {
		return nil, errKey
	}
	return k.key, nil
}

// classify maps a jwt-go error to one of this package's reasons. Only the
// reason's text is kept: jwt-go's messages name claims, never keys, but the
// mapping keeps the error's shape under our control.
func classify(err error) error {
	switch {
	case errors.Is(err, errKey), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrUnknownKey
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrMalformedToken
	case errors.Is(err, jwt.ErrSignatureInvalid), errors.Is(err, jwt.ErrEd25519Verification),
		errors.Is(err, rsa.ErrVerification), errors.Is(err, jwt.ErrInvalidKey):
		return ErrInvalidSignature
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// Without a verification error inside: the parser's own check of
		// the allowed algorithms refused the alg.
		return ErrUnknownKey
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// exp is the only required claim.
		return ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrTokenNotYetValid
	}
	// A claim of the wrong JSON type (a string "exp"), and anything new in
	// jwt-go: refused as malformed.
	return fmt.Errorf("%w: unreadable claims", ErrMalformedToken)
}
