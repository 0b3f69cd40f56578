package main

import (
	"context"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/productdb/stage/events"
)

// tokenCmd mints a development JWT: what an identity provider issues in
// production. It signs with the same HS256 secret file the service reads.
type tokenCmd struct {
	JWTSecretFile string        `name:"jwt-secret-file" required:"" help:"HS256 secret the service verifies user JWTs with." type:"existingfile"`
	User          string        `name:"user" required:"" help:"The user id (the token's \"sub\")."`
	TTL           time.Duration `name:"ttl" default:"1h" help:"How long the token is valid."`
	JWTIssuer     string        `name:"jwt-issuer" help:"\"iss\" of the token."`
	JWTAudience   string        `name:"jwt-audience" help:"\"aud\" of the token."`
}

// Run prints the token.
func (c *tokenCmd) Run(_ context.Context, env *env) error {
	if err := events.ValidateID(c.User); err != nil {
		return usagef("--user: %v", err)
	}
	if c.TTL <= 0 {
		return usagef("--ttl must be positive")
	}
	secret, err := readSecret(c.JWTSecretFile)
	if err != nil {
		return err
	}
	now := time.Now()
	claims := jwt.RegisteredClaims{Subject: c.User, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(c.TTL)), Issuer: c.JWTIssuer}
	if c.JWTAudience != "" {
		claims.Audience = jwt.ClaimStrings{c.JWTAudience}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, tok)
	return nil
}
