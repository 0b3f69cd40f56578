package webhook_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/productdb/stage/service/webhook"
)

// A receiver checks the signature over the raw body before it trusts the
// payload, answers 2xx only once it has handled the event (a non-2xx
// answer, or none, gets it again), and drops an id it has seen.
func ExampleVerify() {
	secret := []byte("the endpoint's secret, 16+ bytes")
	seen := map[string]bool{}
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, 5*time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		if !seen[p.ID] {
			seen[p.ID] = true
			for _, u := range p.MediaStop {
				fmt.Printf("stop the media of %s in %s (%s)\n", u, p.Meeting, p.Type)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})

	// What a Sender posts, twice (a retry).
	srv := httptest.NewServer(receiver)
	defer srv.Close()
	body := []byte(`{"id":"0193b0c0-0000-7000-8000-000000000001","type":"Kicked","meeting":"m1","version":9,"seq":42,"event":{},"media_stop":["bob"]}`)
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(string(body)))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(secret, time.Now(), body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// A forged one.
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(string(body)))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte("someone else's secret!"), time.Now(), body))
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// stop the media of bob in m1 (Kicked)
	// 204
	// 204
	// 401
}
