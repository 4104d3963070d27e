package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/topup/topup/internal/money"
)

// TestCrashKilledServeKeepsEveryAcknowledgedDebit kills a real `topup
// serve` process with SIGKILL in the middle of a load and restarts it on the
// same database: every acknowledged debit is there exactly once, none twice,
// the balance is the credit minus the debits, resending every key records
// nothing new for a key already recorded, and verify is clean.
func TestCrashKilledServeKeepsEveryAcknowledgedDebit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildTopup(t, dir)
	db := "sqlite:" + filepath.Join(dir, "c.db")

	first := startProcess(t, bin, "serve", "--addr", "127.0.0.1:0", "--db", db)
	var acct struct{ ID string }
	mustCall(t, first.url, "POST", "/v1/accounts", testAdminKey, `{"email":"crash@example.com"}`, 201, &acct)
	const credit = money.Amount(1_000_000_000) // 1,000.00
	const debit = money.Amount(10_000)         // 0.01 per usage event
	mustCall(t, first.url, "POST", "/v1/accounts/"+acct.ID+"/credits", testAdminKey, `{"amount":"1000","idempotency_key":"crash-credit"}`, 201, nil)

	// Load: 16 clients post usage under unique keys until the process dies.
	load := &usageLoad{url: first.url, account: acct.ID, client: newLoadClient(), acked: map[string]string{}, enough: 1000, reached: make(chan struct{})}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load.send(t, c, stop)
		}()
	}
	// The load runs until a good number of debits were acknowledged (at
	// most 10 s on a slow machine) before the kill, so that the kill lands
	// with many more in flight.
	select {
	case <-load.reached:
	case <-time.After(10 * time.Second):
	}
	first.kill(t)
	close(stop)
	wg.Wait()
	if len(load.acked) == 0 {
		t.Fatalf("no debit was acknowledged before the kill; %d attempted", len(load.attempted))
	}
	t.Logf("before SIGKILL: %d usage requests sent, %d acknowledged", len(load.attempted), len(load.acked))

	second := startProcess(t, bin, "serve", "--addr", "127.0.0.1:0", "--db", db)
	attempted := map[string]bool{}
	for _, k := range load.attempted {
		attempted[k] = true
	}
	recorded := usageByKey(t, second.url, acct.ID)
	for key, entryIDs := range recorded {
		switch {
		case len(entryIDs) > 1:
			t.Errorf("key %s recorded %d times: %v", key, len(entryIDs), entryIDs)
		case !attempted[key]:
			t.Errorf("key %s recorded but never sent", key)
		}
	}
	for key, entryID := range load.acked {
		if ids := recorded[key]; len(ids) != 1 || ids[0] != entryID {
			t.Errorf("acknowledged key %s (entry %s) is in the ledger as %v; want exactly once", key, entryID, ids)
		}
	}
	if got, want := readBalance(t, second.url, testAdminKey, acct.ID), credit-money.Amount(len(recorded))*debit; got != want {
		t.Errorf("balance after restart = %s; want %s (1000.00 - %d × 0.01)", got, want, len(recorded))
	}
	t.Logf("after restart: %d debits recorded (%d acknowledged, %d sent)", len(recorded), len(load.acked), len(load.attempted))

	// Resending every key: an acknowledged or recorded one replays its first
	// answer, an unrecorded one is recorded now; none is recorded twice.
	resend := &usageLoad{url: second.url, account: acct.ID, client: newLoadClient()}
	resend.replayAll(t, load.attempted, func(key string, status int, replayed bool, entryID string) {
		was := recorded[key]
		switch {
		case len(was) == 1 && (status != 200 || !replayed || entryID != was[0]):
			t.Errorf("resending recorded key %s answered %d (replayed %t) entry %s; want 200, replayed, entry %s", key, status, replayed, entryID, was[0])
		case len(was) == 0 && status != 201:
			t.Errorf("resending unrecorded key %s answered %d; want 201", key, status)
		}
	})
	after := usageByKey(t, second.url, acct.ID)
	for _, key := range load.attempted {
		if n := len(after[key]); n != 1 {
			t.Errorf("after resending, key %s is recorded %d times; want 1", key, n)
		}
	}
	if len(after) != len(load.attempted) {
		t.Errorf("after resending, %d keys are recorded; want the %d sent", len(after), len(load.attempted))
	}
	if got, want := readBalance(t, second.url, testAdminKey, acct.ID), credit-money.Amount(len(load.attempted))*debit; got != want {
		t.Errorf("balance after resending = %s; want %s", got, want)
	}

	second.terminate(t)
	out, err := exec.Command(bin, "verify", "--db", db).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "every balance equals the sum of its entries") {
		t.Fatalf("topup verify after the crash: %v\n%s", err, out)
	}
}

// buildTopup builds the command into dir, as an operator would run it.
func buildTopup(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "topup")
	// go test puts its own go first on PATH.
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a running topup binary; exited is closed once it is gone,
// and err is then what Wait returned.
type process struct {
	cmd    *exec.Cmd
	url    string
	out    *syncBuffer
	exited chan struct{}
	err    error
}

// startProcess starts the binary with the test admin key and returns once
// /healthz answers 200; the test's cleanup kills it if it still runs.
func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "TOPUP_ADMIN_KEY="+testAdminKey)
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
	})
	p.url = waitListening(t, p.out, p.exited, p.out.String)
	waitHealthy(t, p.url)
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// terminate sends SIGTERM and expects a clean exit.
func (p *process) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("topup serve after SIGTERM: %v\n%s", p.err, p.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("topup serve did not stop within 30 s of SIGTERM")
	}
}

func newLoadClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
}

// usageLoad posts usage events of 0.01 and records what was sent and what
// was acknowledged (key → entry id).
type usageLoad struct {
	url, account string
	client       *http.Client

	// reached is closed once enough debits were acknowledged.
	enough  int
	reached chan struct{}

	mu        sync.Mutex
	attempted []string
	acked     map[string]string
}

// send is one client of the load: it sends until stop or until the server
// stops answering.
func (l *usageLoad) send(t *testing.T, c int, stop <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		key := fmt.Sprintf("load-%02d-%06d", c, n)
		l.mu.Lock()
		l.attempted = append(l.attempted, key)
		l.mu.Unlock()
		status, _, entryID, err := l.post(key)
		if err != nil {
			return // killed: this key's fate is unknown to the client
		}
		if status != 201 && status != 200 {
			t.Errorf("usage %s answered %d during the load", key, status)
			return
		}
		l.mu.Lock()
		l.acked[key] = entryID
		if len(l.acked) == l.enough {
			close(l.reached)
		}
		l.mu.Unlock()
	}
}

// post sends one usage event.
func (l *usageLoad) post(key string) (status int, replayed bool, entryID string, err error) {
	body := fmt.Sprintf(`{"amount":"0.01","idempotency_key":%q,"description":"load"}`, key)
	req, err := http.NewRequest("POST", l.url+"/v1/accounts/"+l.account+"/usage", strings.NewReader(body))
	if err != nil {
		return 0, false, "", err
	}
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, false, "", err
	}
	defer resp.Body.Close()
	var res postResult
	if resp.StatusCode == 200 || resp.StatusCode == 201 {
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			return 0, false, "", err
		}
	}
	return resp.StatusCode, resp.Header.Get("Idempotent-Replayed") == "true", res.EntryID, nil
}

// replayAll sends every key again with 16 clients and reports each answer.
func (l *usageLoad) replayAll(t *testing.T, keys []string, check func(key string, status int, replayed bool, entryID string)) {
	t.Helper()
	next := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range next {
				status, replayed, entryID, err := l.post(key)
				if err != nil {
					t.Errorf("resend %s: %v", key, err)
					continue
				}
				mu.Lock()
				check(key, status, replayed, entryID)
				mu.Unlock()
			}
		}()
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
}

// usageByKey reads the whole ledger and returns the usage entries' ids by
// idempotency key.
func usageByKey(t *testing.T, base, accountID string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, e := range allEntries(t, base, testAdminKey, accountID) {
		if e.Kind == "usage" {
			out[e.IdempotencyKey] = append(out[e.IdempotencyKey], e.ID)
		}
	}
	return out
}
