package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/productdb/stage/checkpoint"
)

type keygenCmd struct {
	Private string `arg:"" help:"File to write the private key to (PEM, PKCS #8, mode 0600): give it to the engine (stage.WithSigningKey), keep it from the data." type:"path"`
	Public  string `arg:"" help:"File to write the public key to (PEM): give it to auditors (verify --public-key)." type:"path"`
}

func (c *keygenCmd) Run(_ context.Context, e *env) error {
	if c.Private == c.Public {
		return errors.New("the private and public key files must differ")
	}
	for _, p := range []string{c.Private, c.Public} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists: keygen never overwrites a key", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	priv, pub, err := checkpoint.GenerateKey()
	if err != nil {
		return err
	}
	if err := writeNew(c.Private, priv, 0o600); err != nil {
		return err
	}
	if err := writeNew(c.Public, pub, 0o644); err != nil {
		os.Remove(c.Private)
		return err
	}
	k, err := checkpoint.ParsePublicKey(pub)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote the Ed25519 key %s: private %s, public %s\n", checkpoint.KeyIDOf(k), c.Private, c.Public)
	return nil
}

// writeNew creates path (which must not exist) with data, synced.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
