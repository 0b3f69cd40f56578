package stage

import (
	"context"
	"fmt"
	"testing"

	"github.com/productdb/stage/aggregate"
	"github.com/productdb/stage/eventstore"
)

func TestEngine_cacheBound(t *testing.T) {
	ctx := context.Background()
	eng, err := New(eventstore.NewMemory(), WithCacheSize(2))
	if err != nil {
		t.Fatal(err)
	}
	host := aggregate.Participant{UserID: "h", Permissions: aggregate.Permissions{StageAccess: aggregate.Allowed, AcceptStageRequests: true}}
	for round := range 3 {
		for i := range 5 {
			m := fmt.Sprintf("m%d", i)
			if round == 0 {
				if _, err := eng.AddParticipant(ctx, m, host); err != nil {
					t.Fatal(err)
				}
			}
			// Alternate request and leave: each only succeeds if the
			// reloaded state knows what happened before eviction.
			if round%2 == 0 {
				_, err = eng.RequestAccess(ctx, m, "h")
			} else {
				_, err = eng.Leave(ctx, m, "h")
			}
			if err != nil {
				t.Fatalf("round %d meeting %s: %v", round, m, err)
			}
			if n := len(eng.meetings); n > 2 || eng.lru.Len() != n {
				t.Fatalf("cache holds %d meetings (lru %d), bound 2", n, eng.lru.Len())
			}
		}
	}
	st, err := eng.Status(ctx, "m0", "h")
	if err != nil || st != aggregate.AcceptedToJoinStage {
		t.Fatalf("m0 h: %v %v, want AcceptedToJoinStage", st, err)
	}
}
