package auth_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/productdb/stage/service/auth"
)

// A JWT authenticator with one HS256 secret and an issuer check: a token
// signed by the issuer names its user; an expired one is refused.
func ExampleNewJWT() {
	secret := []byte("a shared secret of at least 32 bytes!")
	a, err := auth.NewJWT(
		auth.WithHMAC("", secret),
		auth.WithIssuer("https://login.example"),
	)
	if err != nil {
		panic(err)
	}

	// What the login service hands the client.
	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice",
		"iss": "https://login.example",
		"exp": time.Now().Add(15 * time.Minute).Unix(),
	}).SignedString(secret)

	id, err := a.Authenticate(context.Background(), token)
	fmt.Println(id.UserID, err)

	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice",
		"iss": "https://login.example",
		"exp": time.Now().Add(-time.Hour).Unix(),
	}).SignedString(secret)
	_, err = a.Authenticate(context.Background(), expired)
	fmt.Println(errors.Is(err, auth.ErrUnauthenticated), errors.Is(err, auth.ErrTokenExpired))
	// Output:
	// alice <nil>
	// true true
}
