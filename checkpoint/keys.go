package checkpoint

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// ErrKey is returned (wrapped) for a key file that does not hold the
// expected Ed25519 key.
var ErrKey = errors.New("checkpoint: bad key")

// GenerateKey returns a new Ed25519 key pair, encoded as PEM: the private key
// as PKCS #8 ("PRIVATE KEY"), the public key as PKIX ("PUBLIC KEY").
func GenerateKey() (private, public []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: generate key: %w", err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: generate key: %w", err)
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: generate key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), nil
}

// ParsePrivateKey decodes an Ed25519 private key from PEM (PKCS #8, as
// GenerateKey and `openssl genpkey -algorithm ed25519` write it). The error
// wraps [ErrKey].
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	b, err := onePEM(data, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: a %T, not an Ed25519 key", ErrKey, k)
	}
	return priv, nil
}

// ParsePublicKey decodes an Ed25519 public key from PEM (PKIX, "PUBLIC
// KEY"). A private key is accepted too: its public half is returned. The
// error wraps [ErrKey].
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	if b, _ := pem.Decode(data); b != nil && b.Type == "PRIVATE KEY" {
		priv, err := ParsePrivateKey(data)
		if err != nil {
			return nil, err
		}
		return priv.Public().(ed25519.PublicKey), nil
	}
	b, err := onePEM(data, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: a %T, not an Ed25519 key", ErrKey, k)
	}
	return pub, nil
}

func onePEM(data []byte, typ string) (*pem.Block, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%w: no PEM block (want %q)", ErrKey, typ)
	}
	if b.Type != typ {
		return nil, fmt.Errorf("%w: a PEM %q block, want %q", ErrKey, b.Type, typ)
	}
	return b, nil
}

// LoadPrivateKey reads a private key file (see [ParsePrivateKey]).
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadPublicKey reads a public key file (see [ParsePublicKey]).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	k, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
