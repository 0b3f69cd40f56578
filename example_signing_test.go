package stage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/productdb/stage"
	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/checkpoint"
	"github.com/productdb/stage/eventstore"
	"github.com/productdb/stage/replay"
)

// An Engine with the deployment's signing key signs its snapshots and
// writes a signed checkpoint of every meeting it changed, here to a file
// on Close; an auditor with the public key then proves the log.
func ExampleWithCheckpoints() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "stage-example-")
	defer os.RemoveAll(dir)
	privPEM, pubPEM, _ := checkpoint.GenerateKey() // or: stagereplay keygen key.pem key.pub
	priv, _ := checkpoint.ParsePrivateKey(privPEM)

	cpFile, err := checkpoint.OpenFile(filepath.Join(dir, "checkpoints.jsonl"))
	if err != nil {
		panic(err)
	}
	defer cpFile.Close()
	store := eventstore.NewMemory()
	eng, err := stage.New(store, stage.WithSigningKey(priv), stage.WithCheckpoints(time.Minute, cpFile))
	if err != nil {
		panic(err)
	}
	host := aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}
	eng.AddParticipant(ctx, "webinar-1", aggregate.Participant{UserID: "alice", Permissions: host})
	eng.Join(ctx, "webinar-1", "alice")
	if err := eng.Close(); err != nil { // writes the last checkpoints
		panic(err)
	}

	// The auditor's side.
	pub, _ := checkpoint.ParsePublicKey(pubPEM)
	cps, _ := checkpoint.ReadFile(filepath.Join(dir, "checkpoints.jsonl"))
	rep, _ := replay.Verify(ctx, store.ReadAll(ctx, 1), replay.WithCheckpoints(pub, cps))
	proven, unproven := rep.Proof.ProvenEvents()
	fmt.Println("ok:", rep.OK(), "proven:", proven, "not proven:", unproven)
	fmt.Println("key:", rep.Proof.Key == checkpoint.KeyIDOf(pub))
	// Output:
	// ok: true proven: 2 not proven: 0
	// key: true
}
