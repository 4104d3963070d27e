package client_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/topup/topup/client"
	"github.com/topup/topup/internal/app"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// server is a real Topup (SQLite, sandbox payments) serving on a free
// port, with its admin key.
type server struct {
	url      string
	adminKey string
}

// startServer runs a Topup for one test and stops it at the end.
func startServer(tb testing.TB) server {
	tb.Helper()
	srv, stop, err := launch(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return srv
}

// launch runs a Topup on a fresh SQLite file in dir; stop shuts it down.
func launch(dir string) (server, func(), error) {
	store, err := app.OpenStore(context.Background(), "sqlite:"+filepath.Join(dir, "topup.db"), clock.System, ids.New(clock.System))
	if err != nil {
		return server{}, nil, err
	}
	key := ledger.NewKey(ledger.AdminKeyPrefix)
	set := app.Settings{Payments: "sandbox", RetryBackoff: time.Hour, MaxTarget: 10_000 * money.MicrosPerUnit,
		WebhooksAllowPrivate: true, WebhookRetryBase: 50 * time.Millisecond}
	a, err := app.New(app.Config{Addr: "127.0.0.1:0", AdminKeyHash: ledger.HashKey(key), Settings: set}, store)
	if err != nil {
		store.Close()
		return server{}, nil, err
	}
	a.Start()
	return server{url: a.URL(), adminKey: key}, func() { a.Shutdown() }, nil
}

// admin is a client with the operator's key; opts add to it.
func (s server) admin(opts ...client.Option) *client.Client {
	return client.New(s.url, s.adminKey, append([]client.Option{client.WithRetries(3, 10*time.Millisecond)}, opts...)...)
}

// newAccount creates an account with credit (none when credit is empty).
func newAccount(t *testing.T, c *client.Client, credit client.Money) *client.Account {
	t.Helper()
	ctx := context.Background()
	acct, err := c.CreateAccount(ctx, client.AccountParams{Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if credit != "" {
		if _, err := c.Credit(ctx, acct.ID, client.CreditParams{Amount: credit}); err != nil {
			t.Fatal(err)
		}
	}
	return acct
}

// countingTransport counts the requests it forwards, per "METHOD path".
type countingTransport struct {
	next  http.RoundTripper
	count map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.count[r.Method+" "+r.URL.Path]++
	return c.next.RoundTrip(r)
}
