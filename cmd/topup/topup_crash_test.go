package main

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCrashKilledServeFinishesInFlightTopUpOnce kills a real `topup serve`
// with SIGKILL while the sandbox is charging an automatic top-up (the
// charge is recorded, the answer not yet back) and restarts it on the same
// database: the restarted process finishes that top-up with the same key,
// so the customer is charged once and credited once, the balance is the
// target, and verify is clean.
func TestCrashKilledServeFinishesInFlightTopUpOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildTopup(t, dir)
	db := "sqlite:" + filepath.Join(dir, "topup.db")
	// The killed process's claim on the top-up keeps the restarted one
	// away until it runs out: TOPUP_WORKER_LEASE keeps that wait short.
	const lease = "TOPUP_WORKER_LEASE=4s"

	first := startProcessEnv(t, bin, []string{"TOPUP_SANDBOX_LATENCY=3s", lease}, "serve", "--addr", "127.0.0.1:0", "--db", db)
	var acct struct{ ID string }
	mustCall(t, first.url, "POST", "/v1/accounts", testAdminKey, `{"email":"crash-topup@example.com"}`, 201, &acct)
	path := "/v1/accounts/" + acct.ID
	mustCall(t, first.url, "POST", path+"/payment_methods", testAdminKey, `{"payment_method":"pm_card_visa"}`, 201, nil)
	mustCall(t, first.url, "POST", path+"/credits", testAdminKey, `{"amount":"10","idempotency_key":"grant"}`, 201, nil)
	mustCall(t, first.url, "PUT", path+"/auto_top_up", testAdminKey, `{"enabled":true,"threshold":"5","target":"20"}`, 200, nil)
	var usage struct {
		Balance string `json:"balance"`
		TopUpID string `json:"top_up_id"`
	}
	mustCall(t, first.url, "POST", path+"/usage", testAdminKey, `{"amount":"6","idempotency_key":"u1"}`, 201, &usage)
	if usage.TopUpID == "" || usage.Balance != "4.00" {
		t.Fatalf("usage across the threshold answered %+v; want balance 4.00 and a top_up_id", usage)
	}
	id := usage.TopUpID

	// The sandbox records the charge before its 3 s latency: kill the
	// process once the charge exists and the top-up is still waiting for
	// the answer.
	waitFor(t, 5*time.Second, "the sandbox charge for "+id, func() bool { return len(sandboxChargesFor(t, first.url, id)) > 0 })
	if tu := readTopUp(t, first.url, acct.ID, id); tu.Status != "processing" || tu.Amount != "16.00" {
		t.Fatalf("top-up before the kill = %+v; want processing, amount 16.00", tu)
	}
	first.kill(t)

	second := startProcessEnv(t, bin, []string{lease}, "serve", "--addr", "127.0.0.1:0", "--db", db)
	start := time.Now()
	waitFor(t, 15*time.Second, "top-up "+id+" to succeed after the restart", func() bool {
		tu := readTopUp(t, second.url, acct.ID, id)
		if tu.Status != "processing" && tu.Status != "succeeded" {
			t.Fatalf("top-up after the restart is %+v; want processing until succeeded", tu)
		}
		return tu.Status == "succeeded"
	})
	t.Logf("the restarted process finished the top-up %v after it started", time.Since(start).Round(time.Millisecond))

	if charges := sandboxChargesFor(t, second.url, id); len(charges) != 1 || charges[0].Amount != "16.00" || charges[0].Status != "succeeded" {
		t.Errorf("sandbox charges for top-up %s = %+v; want exactly one of 16.00, succeeded", id, charges)
	}
	if all := sandboxChargesFor(t, second.url, ""); len(all) != 1 {
		t.Errorf("the sandbox made %d charges in all, want 1: %+v", len(all), all)
	}
	var credits []topUpEntry
	for _, e := range topUpLedger(t, second.url, acct.ID) {
		if e.Kind == "top_up" {
			credits = append(credits, e)
		}
	}
	if len(credits) != 1 || credits[0].TopUpID != id || credits[0].Amount != "16.00" || credits[0].IdempotencyKey != "topup-"+id {
		t.Errorf("top_up ledger entries = %+v; want one of 16.00 for %s", credits, id)
	}
	if got := readBalance(t, second.url, testAdminKey, acct.ID); got != mustParse(t, "20.00") {
		t.Errorf("balance after the restart = %s, want 20.00 (the target)", got)
	}
	if tus := listTopUps(t, second.url, acct.ID); len(tus) != 1 {
		t.Errorf("%d top-ups, want 1: %+v", len(tus), tus)
	}

	second.terminate(t)
	out, err := exec.Command(bin, "verify", "--db", db).CombinedOutput()
	if err != nil {
		t.Fatalf("topup verify after the crash: %v\n%s", err, out)
	}
}

// startProcessEnv is startProcess with extra environment variables.
func startProcessEnv(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(append(os.Environ(), "TOPUP_ADMIN_KEY="+testAdminKey), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("topup %s output:\n%s", strings.Join(args, " "), p.out)
		}
	})
	p.url = waitListening(t, p.out, p.exited, p.out.String)
	waitHealthy(t, p.url)
	return p
}

// waitFor polls done until it holds, failing after within.
func waitFor(t *testing.T, within time.Duration, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sandboxCharge is a line of GET /v1/sandbox/charges.
type sandboxCharge struct {
	ID             string `json:"id"`
	IdempotencyKey string `json:"idempotency_key"`
	Amount         string `json:"amount"`
	Status         string `json:"status"`
	CreatedAt      string `json:"created_at"`
}

// sandboxChargesFor lists the sandbox charges made under a top-up's key,
// or every charge when topUpID is "".
func sandboxChargesFor(t *testing.T, base, topUpID string) []sandboxCharge {
	t.Helper()
	var page struct {
		Data    []sandboxCharge `json:"data"`
		HasMore bool            `json:"has_more"`
	}
	mustCall(t, base, "GET", "/v1/sandbox/charges?limit=100", testAdminKey, "", 200, &page)
	if page.HasMore {
		t.Fatal("more than 100 sandbox charges")
	}
	var out []sandboxCharge
	for _, c := range page.Data {
		if topUpID == "" || c.IdempotencyKey == "topup-"+topUpID {
			out = append(out, c)
		}
	}
	return out
}

// topUpBody is a top-up as the API shows it.
type topUpBody struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Amount  string `json:"amount"`
	Trigger string `json:"trigger"`
}

func readTopUp(t *testing.T, base, acct, id string) topUpBody {
	t.Helper()
	var tu topUpBody
	mustCall(t, base, "GET", "/v1/accounts/"+acct+"/top_ups/"+id, testAdminKey, "", 200, &tu)
	return tu
}

func listTopUps(t *testing.T, base, acct string) []topUpBody {
	t.Helper()
	var page struct{ Data []topUpBody }
	mustCall(t, base, "GET", "/v1/accounts/"+acct+"/top_ups?limit=100", testAdminKey, "", 200, &page)
	return page.Data
}

// topUpEntry is a ledger entry with the top-up it credits.
type topUpEntry struct {
	entryBody
	TopUpID string `json:"top_up_id"`
}

// topUpLedger reads an account's ledger (it holds a handful of entries).
func topUpLedger(t *testing.T, base, acct string) []topUpEntry {
	t.Helper()
	var page struct {
		Data    []topUpEntry `json:"data"`
		HasMore bool         `json:"has_more"`
	}
	mustCall(t, base, "GET", "/v1/accounts/"+acct+"/transactions?"+url.Values{"limit": {"100"}}.Encode(), testAdminKey, "", 200, &page)
	if page.HasMore {
		t.Fatal("more than 100 ledger entries")
	}
	return page.Data
}
