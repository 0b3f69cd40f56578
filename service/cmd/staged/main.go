// Command staged runs the stage as a service: the HTTP API with each
// user's server-sent events (service/httpapi), the NATS micro service
// (service/natsapi) and the signed webhooks (service/webhook), over the
// embedded default (an in-process nats-server with JetStream in a data
// directory: no other setup) or an external server or cluster by URL.
//
//	go run ./service/cmd/staged --data-dir ./stage-data --jwt-secret-file secret.key --backend-token-file backend.token
//
// Every flag has an environment variable (STAGED_...). Callers prove who
// they are with a bearer token: a JWT signed with one of the configured
// keys (the user is its "sub"), or the backend's static token for the
// membership commands. `staged token` mints a development JWT with the
// HS256 secret.
//
// SIGTERM or SIGINT shuts down gracefully: the event streams end, the HTTP
// server drains, the NATS service stops, the webhook sender stops (what
// it has not delivered is delivered by the next process: its consumer is
// durable), and the Engine closes the store, the connection and the
// embedded server. /healthz answers while it runs.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/productdb/stage/eventstore/natsstore"
)

// cli is the command line; each flag also reads an environment variable.
type cli struct {
	Serve serveCmd `cmd:"" default:"withargs" help:"Run the service (the default)."`
	Token tokenCmd `cmd:"" help:"Print a development JWT for a user, signed with the HS256 secret."`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args and runs the command; it returns the exit status: 0, 1
// when the service failed, 2 for a bad command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c cli
	exit := -1
	parser, err := kong.New(&c,
		kong.Name("staged"),
		kong.Description("The stage as a service: HTTP API and server-sent events, NATS micro service, signed webhooks."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code }),
		kong.DefaultEnvars("STAGED"),
		kong.Vars{"stream": natsstore.DefaultStream},
	)
	if err != nil {
		fmt.Fprintln(stderr, "staged:", err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 { // --help
		return exit
	}
	if err != nil {
		fmt.Fprintln(stderr, "staged:", err)
		return 2
	}
	env := &env{stdout: stdout, stderr: stderr}
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(env); err != nil {
		var usage *usageError
		if errors.As(err, &usage) {
			fmt.Fprintln(stderr, "staged:", err)
			return 2
		}
		fmt.Fprintln(stderr, "staged:", err)
		return 1
	}
	return 0
}

// env is what the commands write to.
type env struct {
	stdout, stderr io.Writer
}

func (e *env) logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

// usageError is a bad combination of flags (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }
