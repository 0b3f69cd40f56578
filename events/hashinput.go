package events

import "fmt"

// HashBody returns the bytes e's hash covers before its PrevHash: e.Hash
// is the SHA-256 of HashBody followed by the 32 bytes of PrevHash. Because
// the previous hash comes last, a link of the chain can be checked from
// SHA-256's state after the body's whole 64-byte blocks and the body's
// last bytes, without the rest of the body (see replay.Receipt).
func (e *Envelope) HashBody() ([]byte, error) {
	if e.Payload == nil {
		return nil, fmt.Errorf("%w: nil payload", ErrMalformed)
	}
	return appendHashBody(make([]byte, 0, 512), e)
}
