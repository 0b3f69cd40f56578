package natsstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore/natsstore"
)

// The embedded default: a nats-server in this process, storing events in a
// directory. Opening the directory again brings every event back.
func ExampleOpenEmbedded() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "stage")
	defer os.RemoveAll(dir)

	emb, err := natsstore.OpenEmbedded(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	eng, _ := stage.New(emb.Store)
	eng.AddParticipant(ctx, "webinar-1", aggregate.Participant{UserID: "alice",
		Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}})
	eng.Join(ctx, "webinar-1", "alice")
	eng.Close()
	emb.Close()

	// Later, or after a crash: the same directory.
	emb, err = natsstore.OpenEmbedded(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	defer emb.Close()
	eng, _ = stage.New(emb.Store)
	st, _ := eng.Status(ctx, "webinar-1", "alice")
	r, _ := eng.Roster(ctx, "webinar-1")
	fmt.Println(st, r.Version)
	// Output: OnStage 2
}

// An external server or cluster: connect with nats.go's own options
// (credentials, TLS, several URLs) and hand the connection to New.
func ExampleNew() {
	ctx := context.Background()
	nc, err := nats.Connect("tls://nats-1.example.com:4222,tls://nats-2.example.com:4222,tls://nats-3.example.com:4222",
		nats.UserCredentials("/etc/stage/stage.creds"),
		nats.RootCAs("/etc/stage/ca.pem"),
		nats.ClientCert("/etc/stage/client-cert.pem", "/etc/stage/client-key.pem"),
		nats.MaxReconnects(-1),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	store, err := natsstore.New(ctx, nc, natsstore.WithReplicas(3))
	if err != nil {
		log.Fatal(err) // e.g. a *natsstore.StreamConfigError
	}
	defer store.Close()
	eng, err := stage.New(store)
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
}
