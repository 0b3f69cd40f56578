// Package auth says who is calling the stage service: an [Authenticator]
// turns a credential (a bearer token) into an [Identity]. The service
// packages (HTTP, NATS) take the actor of every command from the Identity,
// never from a request's body.
package auth

import (
	"context"
	"errors"
)

// Identity is a verified caller.
type Identity struct {
	// UserID is the user the credential names (a JWT's "sub"): the actor
	// of the user's and hosts' commands. Empty for the backend.
	UserID string
	// Backend is true for the backend's own credential, which may issue
	// the membership commands (add and remove participants, permissions,
	// disconnect, reconnect) and nothing else.
	Backend bool
}

// Authenticator verifies a credential.
type Authenticator interface {
	// Authenticate returns the identity a token proves, or an error
	// wrapping ErrUnauthenticated (a missing, malformed, expired or
	// badly signed token).
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// ErrUnauthenticated: the credential is missing or does not prove an
// identity. HTTP answers 401.
var ErrUnauthenticated = errors.New("auth: unauthenticated")

// Func adapts a function to an Authenticator.
type Func func(ctx context.Context, token string) (Identity, error)

// Authenticate calls f.
func (f Func) Authenticate(ctx context.Context, token string) (Identity, error) { return f(ctx, token) }
