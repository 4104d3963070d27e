package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/topup/topup/internal/app"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/pgtest"
	"github.com/topup/topup/internal/receipt"
	"github.com/topup/topup/internal/receipt/receipttest"
	"github.com/topup/topup/internal/storetest"
)

// TestMain gives the tests that run replicas on one PostgreSQL a database
// of their own (pgtest); they skip when none answers, outside CI.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const replicaAdminKey = "tpa_receipts_test_admin"

// TestReceiptNumbersAcrossReplicas: two Topup replicas on one PostgreSQL
// take 200 manual top-ups at once, half each; the 200 succeeded top-ups
// hold the receipt numbers 1 to 200, each once, and a receipt fetched
// from the other replica is a PDF holding its number, amount and card.
func TestReceiptNumbersAcrossReplicas(t *testing.T) {
	t.Parallel()
	u := pgtest.Schema(t)
	replica := func() *app.App {
		t.Helper()
		g := ids.New(clock.System)
		store, err := app.OpenStore(t.Context(), u, clock.System, g)
		if err != nil {
			t.Fatal(err)
		}
		a, err := app.New(app.Config{Addr: "127.0.0.1:0", AdminKeyHash: ledger.HashKey(replicaAdminKey), IDs: g, NoNotifier: true,
			Settings: app.Settings{Business: receipt.Business{Name: "Replica Compute Ltd", TaxID: "GB000000001"}}}, store)
		if err != nil {
			store.Close()
			t.Fatal(err)
		}
		a.Start()
		t.Cleanup(func() { a.Shutdown() })
		return a
	}
	replicas := []*app.App{replica(), replica()}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	const n = 200
	type made struct{ account, key, topUp, amount string }
	out := make([]made, n)
	run := func(workers int, fn func(i int) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		next := make(chan int, n)
		for i := range n {
			next <- i
		}
		close(next)
		for range workers {
			wg.Go(func() {
				for i := range next {
					if err := fn(i); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	run(16, func(i int) error {
		base := replicas[i%2].URL()
		var acct struct {
			ID  string `json:"id"`
			Key string `json:"api_key"`
		}
		if err := call(hc, base, "POST", "/v1/accounts", replicaAdminKey, fmt.Sprintf(`{"email":"r%d@example.com"}`, i), 201, &acct); err != nil {
			return err
		}
		out[i] = made{account: acct.ID, key: acct.Key, amount: fmt.Sprintf("%d.%02d", 10+i, i%100)}
		return call(hc, base, "POST", "/v1/accounts/"+acct.ID+"/payment_methods", acct.Key, `{"payment_method":"pm_card_visa"}`, 201, nil)
	})
	// All at once, half through each replica.
	run(n, func(i int) error {
		var tu struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		body := fmt.Sprintf(`{"amount":%q,"idempotency_key":"receipt-%d"}`, out[i].amount, i)
		if err := call(hc, replicas[(i+1)%2].URL(), "POST", "/v1/accounts/"+out[i].account+"/top_ups", out[i].key, body, 201, &tu); err != nil {
			return err
		}
		if tu.Status != "succeeded" {
			return fmt.Errorf("top-up %d: %s; want succeeded", i, tu.Status)
		}
		out[i].topUp = tu.ID
		return nil
	})
	store := replicas[0].Store()
	storetest.WantConsecutiveReceipts(t, store, n)

	// A top-up made through replica 0 (odd i), its receipt read from
	// replica 1.
	pick := out[7]
	rec, err := store.Receipt(t.Context(), pick.account, pick.topUp)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", replicas[1].URL()+"/v1/accounts/"+pick.account+"/top_ups/"+pick.topUp+"/receipt", nil)
	req.Header.Set("Authorization", "Bearer "+pick.key)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("receipt from the other replica: %d %s %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	text := receipttest.PDFText(t, pdf)
	for _, want := range []string{receipt.Number(rec.Number), pick.amount + " USD", "Visa", "4242", "Replica Compute Ltd", "GB000000001"} {
		if !strings.Contains(text, want) {
			t.Errorf("the receipt holds no %q:\n%s", want, text)
		}
	}
}

// call sends one JSON request and decodes the answer into out (when not
// nil); an answer other than want is an error.
func call(hc *http.Client, base, method, path, key, body string, want int, out any) error {
	req, err := http.NewRequestWithContext(context.Background(), method, base+path, bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s; want %d", method, path, resp.StatusCode, raw, want)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}
