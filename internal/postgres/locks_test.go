package postgres_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/pgtest"
	"github.com/topup/topup/internal/postgres"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/storetest"
)

// lockFixture is a store with accounts and the helpers the lock tests
// share.
type lockFixture struct {
	t   *testing.T
	s   *sqlstore.DB
	ids *ids.Generator
}

func newLockFixture(t *testing.T) *lockFixture {
	t.Helper()
	c := storetest.NewClock()
	g := storetest.NewIDs(c)
	return &lockFixture{t: t, s: pgtest.Open(t, c, g), ids: g}
}

// account creates an active usd account with 100.00 of credit.
func (f *lockFixture) account(email string) ledger.Account {
	f.t.Helper()
	usd, err := money.LookupCurrency("usd")
	if err != nil {
		f.t.Fatal(err)
	}
	a := ledger.Account{ID: f.ids.New(ids.Account), Email: email, Currency: usd, Status: ledger.Active,
		CreatedAt: storetest.Epoch.Truncate(time.Microsecond)}
	if err := f.s.CreateAccount(f.t.Context(), a, ledger.DefaultKey(a, "hash_"+a.ID, "")); err != nil {
		f.t.Fatalf("create account: %v", err)
	}
	if err := f.post(f.t.Context(), ledger.Posting{AccountID: a.ID, Kind: ledger.KindCredit, Amount: 100 * money.MicrosPerUnit,
		IdempotencyKey: "fund-" + a.ID, Call: ledger.ScopeCredit}); err != nil {
		f.t.Fatalf("fund account: %v", err)
	}
	return a
}

func (f *lockFixture) post(ctx context.Context, postings ...ledger.Posting) error {
	f.t.Helper()
	res, err := f.s.Post(ctx, postings)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Err != nil {
			f.t.Fatalf("post: %v", r.Err)
		}
	}
	return nil
}

func debit(acct, key string) ledger.Posting {
	return ledger.Posting{AccountID: acct, Kind: ledger.KindUsage, Amount: -money.MicrosPerUnit, IdempotencyKey: key, Call: ledger.ScopeUsage}
}

// begin opens a transaction of the test's own, outside the store, and
// returns it with its backend's pid.
func (f *lockFixture) begin() (*sql.Tx, int) {
	f.t.Helper()
	tx, err := f.s.DB().BeginTx(f.t.Context(), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = tx.Rollback() })
	var pid int
	if err := tx.QueryRowContext(f.t.Context(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		f.t.Fatal(err)
	}
	return tx, pid
}

// insertNotification inserts an event of acct in tx, as the debit path,
// a settle or the notifier's fan-out would: its foreign-key check holds
// FOR KEY SHARE on the account row until tx ends.
func (f *lockFixture) insertNotification(tx *sql.Tx, acct string) string {
	f.t.Helper()
	id := f.ids.New("evt")
	if _, err := tx.ExecContext(f.t.Context(), `INSERT INTO notifications (id, account_id, type, data, created_at) VALUES ($1, $2, 'balance.low', '{}', 0)`,
		id, acct); err != nil {
		f.t.Fatalf("insert notification: %v", err)
	}
	return id
}

// TestAccountLocksDoNotWaitForForeignKeyChecks: while another transaction
// has inserted a row that references an account (a notification, as the
// notifier's fan-out inserts deliveries) and not yet committed, every
// store path that locks the account still goes through at once. With
// FOR UPDATE each of them waited for that transaction — and when the
// inserter then needed an account the debit path held, PostgreSQL found a
// deadlock and froze both for deadlock_timeout.
func TestAccountLocksDoNotWaitForForeignKeyChecks(t *testing.T) {
	t.Parallel()
	f := newLockFixture(t)
	a, b := f.account("a@example.com"), f.account("b@example.com")
	tx, _ := f.begin()
	f.insertNotification(tx, a.ID)
	f.insertNotification(tx, b.ID)
	closed := ledger.Closed
	email := "new@example.com"
	for _, c := range []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"debit path (LockAccounts)", func(ctx context.Context) error {
			return f.post(ctx, debit(a.ID, "u1"), debit(b.ID, "u2"))
		}},
		{"new API key (RowLock)", func(ctx context.Context) error {
			k, _ := ledger.NewAPIKey(f.ids, storetest.NewClock(), a.ID, "ci")
			return f.s.CreateAPIKey(ctx, k)
		}},
		{"account update (RowLock)", func(ctx context.Context) error {
			_, err := f.s.UpdateAccount(ctx, a.ID, ledger.AccountUpdate{Email: &email})
			return err
		}},
		{"account close (RowLock)", func(ctx context.Context) error {
			_, err := f.s.UpdateAccount(ctx, b.ID, ledger.AccountUpdate{Status: &closed})
			return err
		}},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		start := time.Now()
		err := c.run(ctx)
		cancel()
		if err != nil {
			t.Errorf("%s while a foreign-key insert is open: %v after %v (it waited for the inserter)", c.name, err, time.Since(start))
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestForeignKeyInsertsDoNotWaitForAccountLocks is the other side: while a
// transaction holds an account the way the store's writers lock it, the
// notifier's fan-out, which inserts deliveries referencing the account,
// goes through at once.
func TestForeignKeyInsertsDoNotWaitForAccountLocks(t *testing.T) {
	t.Parallel()
	f := newLockFixture(t)
	a := f.account("a@example.com")
	setup, _ := f.begin()
	f.insertNotification(setup, a.ID)
	if err := setup.Commit(); err != nil {
		t.Fatal(err)
	}
	tx, _ := f.begin()
	var id string
	if err := tx.QueryRowContext(t.Context(), `SELECT id FROM accounts WHERE id = $1`+postgres.Dialect.RowLock, a.ID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	n, err := f.s.Dispatch(ctx, storetest.Epoch, time.Hour, 10)
	if err != nil || n != 1 {
		t.Errorf("fan-out while the account is locked = %d events, %v; want 1 at once", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestDeadlockIsRetriedCountedAndLogged forces a real deadlock on the
// debit path — the test's transaction holds account y and then asks for
// account x, which a debit group of x and y already holds — and proves the
// store runs the group again, logs why and counts it.
//
// PostgreSQL aborts the transaction whose deadlock check finds the cycle:
// normally the debit's, which began waiting first. On a loaded machine the
// test may ask for x more than deadlock_timeout after the debit began
// waiting, so that the debit's one check found no cycle yet and the test's
// own transaction is aborted instead; the story is then told again, on new
// accounts, up to five times.
func TestDeadlockIsRetriedCountedAndLogged(t *testing.T) {
	t.Parallel()
	f := newLockFixture(t)
	var logs syncBuffer
	var mu sync.Mutex
	retries := map[string]int{}
	f.s.ObserveRetries(slog.New(slog.NewTextHandler(&logs, nil)), func(reason string) {
		mu.Lock()
		retries[reason]++
		mu.Unlock()
	})
	for try := 1; ; try++ {
		x, y, debitAborted := f.deadlock(try)
		if !debitAborted {
			if try == 5 {
				t.Fatal("five times the test's transaction, not the debit, was chosen as the deadlock victim")
			}
			continue
		}
		mu.Lock()
		defer mu.Unlock()
		if retries["deadlock"] < 1 {
			t.Errorf("retries counted = %v, want a deadlock", retries)
		}
		if out := logs.String(); !strings.Contains(out, "transaction retried") || !strings.Contains(out, "reason=deadlock") {
			t.Errorf("log = %q, want the retry with its reason", out)
		}
		for _, acct := range []string{x.ID, y.ID} {
			if a, err := f.s.Account(t.Context(), acct); err != nil || a.Balance != 99*money.MicrosPerUnit {
				t.Errorf("account %s after the retried debit: %v, %v; want 99.00, debited once", acct, a.Balance, err)
			}
		}
		return
	}
}

// deadlock tells the story once on two new accounts and reports whether
// the debit's transaction was the one aborted (and then run again). The
// debit group commits either way.
func (f *lockFixture) deadlock(try int) (x, y ledger.Account, debitAborted bool) {
	f.t.Helper()
	x, y = f.account(fmt.Sprintf("x%d@example.com", try)), f.account(fmt.Sprintf("y%d@example.com", try))
	if x.ID > y.ID {
		x, y = y, x // the debit path locks in id order: x first
	}
	tx, pid := f.begin()
	if _, err := tx.ExecContext(f.t.Context(), `SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, y.ID); err != nil {
		f.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.post(f.t.Context(), debit(x.ID, "dx"), debit(y.ID, "dy")) }()
	f.waitBlockedBy(pid)
	// The debit holds x and waits for y; asking for x closes the cycle.
	_, err := tx.ExecContext(f.t.Context(), `SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, x.ID)
	if err == nil {
		err = tx.Commit()
	} else {
		_ = tx.Rollback()
		if !strings.Contains(err.Error(), "40P01") {
			f.t.Fatalf("the test's transaction: %v", err)
		}
	}
	if derr := <-done; derr != nil {
		f.t.Fatalf("the debit group after the deadlock: %v", derr)
	}
	return x, y, err == nil
}

// waitBlockedBy waits until a backend waits for a lock pid holds.
func (f *lockFixture) waitBlockedBy(pid int) {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := f.s.DB().QueryRowContext(f.t.Context(), `SELECT COUNT(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&n); err != nil {
			f.t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatal("the debit never waited for the test's lock")
}

// syncBuffer is a bytes.Buffer the store's goroutines may log to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTopUpsLockTheirAccountFirst: starting a top-up's attempt locks its
// account before the top-up, the order of the debit path (which creates
// top-ups under the account's lock) and of closing an account (which
// cancels them under it). While the account is held, Begin waits holding
// nothing, so the holder may still take the top-up; had Begin taken the
// top-up first, closing the account would deadlock with it.
func TestTopUpsLockTheirAccountFirst(t *testing.T) {
	t.Parallel()
	f := newLockFixture(t)
	a := f.account("a@example.com")
	topUp := f.ids.New("tu")
	if _, err := f.s.DB().ExecContext(t.Context(), `INSERT INTO top_ups (id, account_id, status, trigger, amount, next_attempt_at, crossed_at, created_at)
VALUES ($1, $2, 'pending', 'manual', 10000000, 0, 0, 0)`, topUp, a.ID); err != nil {
		t.Fatal(err)
	}
	tx, pid := f.begin()
	if _, err := tx.ExecContext(t.Context(), `SELECT 1 FROM accounts WHERE id = $1`+postgres.Dialect.RowLock, a.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := f.s.Begin(t.Context(), topUp)
		done <- err
	}()
	f.waitBlockedBy(pid)
	if _, err := tx.ExecContext(t.Context(), `SELECT 1 FROM top_ups WHERE id = $1 FOR UPDATE NOWAIT`, topUp); err != nil {
		t.Errorf("the top-up was locked while its account was waited for: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("begin the top-up: %v", err)
	}
}
