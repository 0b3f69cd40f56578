package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/productdb/stage"
	"github.com/productdb/stage/events"
	"github.com/productdb/stage/eventstore/natsstore"
	"github.com/productdb/stage/service/auth"
	"github.com/productdb/stage/service/httpapi"
	"github.com/productdb/stage/service/natsapi"
	"github.com/productdb/stage/service/webhook"
)

// serveCmd runs the service.
type serveCmd struct {
	DataDir   string `name:"data-dir" default:"stage-data" help:"Data directory of the embedded default (ignored with --nats-url)."`
	NATSURL   string `name:"nats-url" help:"An external nats-server or cluster (comma-separated URLs) instead of the embedded default."`
	NATSCreds string `name:"nats-creds" help:"NATS credentials file for --nats-url." type:"existingfile"`
	Stream    string `name:"stream" default:"${stream}" help:"JetStream stream of the event log."`
	Replicas  int    `name:"replicas" default:"1" help:"Replicas of the stream when staged creates it (a cluster: 3)."`

	HTTP          string        `name:"http" default:"127.0.0.1:8080" help:"Address of the HTTP API; empty: no HTTP API."`
	NATSService   bool          `name:"nats-service" default:"true" negatable:"" help:"Serve the commands as a NATS micro service (stage.api.*)."`
	WebhooksFile  string        `name:"webhooks" help:"JSON file of webhook endpoints: [{\"name\",\"url\",\"secret_file\",\"events\":[\"Kicked\",...]}]." type:"existingfile"`
	CachedReads   bool          `name:"cached-reads" default:"true" negatable:"" help:"Serve reads from the cache while no other writer appended (stage.WithCachedReads)."`
	ShutdownAfter time.Duration `name:"shutdown-timeout" default:"15s" help:"How long a graceful shutdown may take."`

	JWTSecretFile    string   `name:"jwt-secret-file" help:"HS256 secret (at least 32 bytes) that user JWTs are signed with." type:"existingfile"`
	JWTPublicKeys    []string `name:"jwt-public-key" help:"[KID=]FILE: an Ed25519 or RSA public key (PEM) that user JWTs are signed with; repeatable." sep:"none"`
	JWTIssuer        string   `name:"jwt-issuer" help:"Required \"iss\" of user JWTs."`
	JWTAudience      string   `name:"jwt-audience" help:"Required \"aud\" of user JWTs."`
	BackendTokenFile string   `name:"backend-token-file" help:"The backend's static bearer token (at least 32 bytes), for the membership commands." type:"existingfile"`

	LogLevel slog.Level `name:"log-level" default:"info" help:"debug, info, warn or error."`
	OTLP     string     `name:"otlp-endpoint" help:"Export metrics and traces with OTLP over HTTP to this endpoint (host:port); off by default."`
}

// Run runs the service until ctx ends (SIGTERM, SIGINT).
func (c *serveCmd) Run(ctx context.Context, env *env) error {
	log := env.logger(c.LogLevel)
	authn, err := c.authenticator()
	if err != nil {
		return err
	}
	if c.HTTP == "" && !c.NATSService && c.WebhooksFile == "" {
		return usagef("nothing to serve: no --http, --no-nats-service and no --webhooks")
	}
	endpoints, err := c.webhooks()
	if err != nil {
		return err
	}

	// The store, and what it runs on.
	sopts := []natsstore.Option{natsstore.WithStream(c.Stream), natsstore.WithReplicas(c.Replicas), natsstore.WithLogger(log)}
	var (
		store  *natsstore.Store
		nc     *nats.Conn
		closer interface{ Close() error }
	)
	if c.NATSURL != "" {
		var nopts []nats.Option
		nopts = append(nopts, nats.Name("staged"), nats.MaxReconnects(-1))
		if c.NATSCreds != "" {
			nopts = append(nopts, nats.UserCredentials(c.NATSCreds))
		}
		conn, err := natsstore.Connect(ctx, c.NATSURL, nopts, sopts...)
		if err != nil {
			return err
		}
		store, nc, closer = conn.Store, conn.Conn, conn
	} else {
		emb, err := natsstore.OpenEmbedded(ctx, c.DataDir, sopts...)
		if err != nil {
			return err
		}
		store, nc, closer = emb.Store, emb.Conn, emb
	}
	eopts := []stage.Option{stage.CloseWith(closer), stage.WithLogger(log)}
	if c.CachedReads {
		eopts = append(eopts, stage.WithCachedReads())
	}
	tel, err := startTelemetry(ctx, c.OTLP)
	if err != nil {
		closer.Close()
		return err
	}
	defer tel.shutdown(log)
	if tel.on() {
		eopts = append(eopts, stage.WithTelemetry(tel.meters, tel.tracers))
	}
	eng, err := stage.New(store, eopts...)
	if err != nil {
		closer.Close()
		return err
	}
	defer func() {
		if err := eng.Close(); err != nil {
			log.Error("staged: closing the engine and the store", "err", err)
		}
	}()

	// The faces.
	var svc micro.Service
	if c.NATSService {
		if svc, err = natsapi.New(nc, eng, authn, natsapi.WithLogger(log)); err != nil {
			return err
		}
		defer svc.Stop()
		log.Info("staged: NATS service", "name", svc.Info().Name, "subjects", "stage.api.*")
	}
	if len(endpoints) > 0 {
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		sender, err := webhook.New(js, webhook.Source{Stream: store.Stream()}, endpoints, webhook.WithLogger(log))
		if err != nil {
			return err
		}
		defer sender.Close()
		if tel.on() {
			if _, err := sender.RegisterMetrics(tel.meters.Meter(meterScope)); err != nil {
				return err
			}
		}
		log.Info("staged: webhooks", "endpoints", len(endpoints))
	}
	if c.HTTP == "" {
		log.Info("staged: running", "store", c.storeName())
		<-ctx.Done()
		log.Info("staged: shutting down")
		return nil
	}
	h, err := httpapi.New(eng, authn, httpapi.WithLogger(log))
	if err != nil {
		return err
	}
	if tel.on() {
		if _, err := h.RegisterMetrics(tel.meters.Meter(meterScope)); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", c.HTTP)
	if err != nil {
		return fmt.Errorf("HTTP: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// The address line is what scripts wait for (port 0 picks one).
	fmt.Fprintf(env.stdout, "staged: HTTP API on http://%s (store: %s)\n", ln.Addr(), c.storeName())
	select {
	case err := <-served:
		return fmt.Errorf("HTTP: %w", err)
	case <-ctx.Done():
	}
	log.Info("staged: shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.ShutdownAfter)
	defer cancel()
	// The event streams first: http.Server.Shutdown waits for them.
	if err := h.Shutdown(sctx); err != nil {
		log.Warn("staged: ending the event streams", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("staged: HTTP shutdown", "err", err)
	}
	return nil
}

func (c *serveCmd) storeName() string {
	if c.NATSURL != "" {
		return c.NATSURL + " stream " + c.Stream
	}
	return "embedded " + c.DataDir
}

// authenticator builds the JWT authenticator from the flags.
func (c *serveCmd) authenticator() (*auth.JWT, error) {
	var opts []auth.JWTOption
	if c.JWTSecretFile != "" {
		secret, err := readSecret(c.JWTSecretFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, auth.WithHMAC("", secret))
	}
	for _, spec := range c.JWTPublicKeys {
		kid, file, ok := strings.Cut(spec, "=")
		if !ok {
			kid, file = "", spec
		}
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, usagef("--jwt-public-key: %v", err)
		}
		opts = append(opts, auth.WithPublicKeyPEM(kid, pem))
	}
	if c.JWTIssuer != "" {
		opts = append(opts, auth.WithIssuer(c.JWTIssuer))
	}
	if c.JWTAudience != "" {
		opts = append(opts, auth.WithAudience(c.JWTAudience))
	}
	if c.BackendTokenFile != "" {
		tok, err := readSecret(c.BackendTokenFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, auth.WithBackendToken(string(tok)))
	}
	if len(opts) == 0 {
		return nil, usagef("no credentials configured: give --jwt-secret-file or --jwt-public-key, and --backend-token-file")
	}
	a, err := auth.NewJWT(opts...)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return a, nil
}

// readSecret reads a secret file, without a trailing newline.
func readSecret(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return []byte(strings.TrimRight(string(b), "\r\n")), nil
}

// webhookFile is one endpoint of the --webhooks file.
type webhookFile struct {
	Name       string   `json:"name"`
	URL        string   `json:"url"`
	SecretFile string   `json:"secret_file"`
	Events     []string `json:"events"`
}

// webhooks reads the --webhooks file.
func (c *serveCmd) webhooks() ([]webhook.Endpoint, error) {
	if c.WebhooksFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(c.WebhooksFile)
	if err != nil {
		return nil, usagef("--webhooks: %v", err)
	}
	var specs []webhookFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&specs); err != nil {
		return nil, usagef("--webhooks %s: %v", c.WebhooksFile, err)
	}
	if len(specs) == 0 {
		return nil, usagef("--webhooks %s: no endpoints", c.WebhooksFile)
	}
	var out []webhook.Endpoint
	for _, s := range specs {
		secret, err := readSecret(s.SecretFile)
		if err != nil {
			return nil, usagef("--webhooks %s: endpoint %q: %v", c.WebhooksFile, s.Name, err)
		}
		ep := webhook.Endpoint{Name: s.Name, URL: s.URL, Secret: secret}
		for _, t := range s.Events {
			ep.Events = append(ep.Events, events.Type(t))
		}
		out = append(out, ep)
	}
	return out, nil
}
