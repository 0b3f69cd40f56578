package natsapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/events"
)

// BenchmarkCycle runs request-grant-join-leave for one user through the
// NATS service (a real client, request/reply over the embedded server)
// and through the Engine directly, in the same run.
func BenchmarkCycle(b *testing.B) {
	f := setupB(b)
	startB(b, f)
	client, err := f.srv.Connect()
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	host := aggregate.Permissions{StageAccess: events.CanRequest, AcceptStageRequests: true}
	viewer := aggregate.Permissions{StageAccess: events.CanRequest}
	for _, m := range []string{"viaNATS", "viaEngine"} {
		if _, err := f.eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "alice", Permissions: host}); err != nil {
			b.Fatal(err)
		}
		if _, err := f.eng.AddParticipant(ctx, m, aggregate.Participant{UserID: "bob", Permissions: viewer}); err != nil {
			b.Fatal(err)
		}
	}
	req := func(endpoint, user string, body string) {
		msg := nats.NewMsg("stage.api." + endpoint)
		msg.Header.Set("Authorization", "Bearer u:"+user)
		msg.Data = []byte(body)
		r, err := client.RequestMsg(msg, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if c := r.Header.Get(micro.ErrorCodeHeader); c != "" {
			b.Fatalf("%s: %s %s", endpoint, c, r.Data)
		}
		var v json.RawMessage
		if err := json.Unmarshal(r.Data, &v); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("nats", func(b *testing.B) {
		for range b.N {
			req("requestAccess", "bob", `{"meeting":"viaNATS"}`)
			req("grantAccess", "alice", `{"meeting":"viaNATS","users":["bob"]}`)
			req("join", "bob", `{"meeting":"viaNATS"}`)
			req("leave", "bob", `{"meeting":"viaNATS"}`)
		}
	})
	b.Run("engine", func(b *testing.B) {
		must := func(_ any, err error) {
			if err != nil {
				b.Fatal(err)
			}
		}
		for range b.N {
			must(f.eng.RequestAccess(ctx, "viaEngine", "bob"))
			must(f.eng.GrantAccess(ctx, "viaEngine", "alice", []string{"bob"}))
			must(f.eng.Join(ctx, "viaEngine", "bob"))
			must(f.eng.Leave(ctx, "viaEngine", "bob"))
		}
	})
}
