package replay

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
)

// OpenConn returns a Source reading a JetStream stream over nc, a
// connection the caller already has (an embedded server's, or one with
// its own credentials): the source [Open] makes for a nats:// URL, with
// the options [WithStream], [WithSubjectPrefix], [WithProgress] and
// [WithIdleTimeout] ([WithNATSOptions] has nothing to configure). Close
// does not close nc. A nil or closed connection, or a missing stream, is
// an error wrapping [ErrSource].
func OpenConn(ctx context.Context, nc *nats.Conn, opts ...OpenOption) (Source, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: no connection", ErrSource)
	}
	if nc.IsClosed() {
		return nil, fmt.Errorf("%w: the connection is closed", ErrSource)
	}
	var c openConfig
	for _, o := range opts {
		o(&c)
	}
	return newJSSource(ctx, nc, c)
}
