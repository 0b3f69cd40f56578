package checkpoint_test

import (
	"fmt"
	"time"

	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/events"
)

// A deployment's key signs the head of a meeting's chain; an auditor with
// the public key checks it, and an edited checkpoint fails.
func Example() {
	privPEM, pubPEM, err := checkpoint.GenerateKey() // stagereplay keygen writes these files
	if err != nil {
		panic(err)
	}
	priv, _ := checkpoint.ParsePrivateKey(privPEM)
	pub, _ := checkpoint.ParsePublicKey(pubPEM)

	head := checkpoint.Checkpoint{MeetingID: "webinar-42", Version: 167, Hash: events.Hash{0x23, 0x4a}, Time: time.Date(2026, 11, 29, 14, 50, 0, 0, time.UTC)}
	signed, err := checkpoint.Sign(priv, head)
	if err != nil {
		panic(err)
	}
	line, _ := checkpoint.Marshal(&signed) // one line of a checkpoint.File
	parsed, _ := checkpoint.Parse(line)
	fmt.Println("genuine:", parsed.Verify(pub) == nil)

	parsed.Version = 166 // a forger moves the head back
	fmt.Println("edited:", parsed.Verify(pub) == nil)
	// Output:
	// genuine: true
	// edited: false
}
