package storetest

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/sqlstore"
	"github.com/topup/topup/internal/statement"
	"github.com/topup/topup/internal/topup"
)

// testReceiptNumbering: each top-up that succeeds takes the next receipt
// number, once however often its success is told; one that fails or is
// still open takes none and has no receipt; the receipt keeps the card
// after the card is removed, and only its own account sees it.
func testReceiptNumbering(t *testing.T, f *fixture) {
	a, b := f.account("receipts@example.com"), f.account("other@example.com")
	f.cards(a.ID, b.ID)
	first := f.settled(a.ID, "12.34", "k1")
	if _, err := f.s.Settle(ctx(t), first.ID, topup.Outcome{Status: topup.Succeeded, ChargeID: "ch_k1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	failed := f.manual(a.ID, "5.00", "k2")
	if _, _, err := f.s.Begin(ctx(t), failed.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Settle(ctx(t), failed.ID, topup.Outcome{Status: topup.Failed, FailureCode: "card_declined"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	open := f.manual(a.ID, "6.00", "k3")
	second := f.settled(b.ID, "7.00", "k1")

	f.wantReceipt(a, first, 1, "12.34")
	f.wantReceipt(b, second, 2, "7.00") // the failed and the open top-up took none
	f.wantNoReceipt(a.ID, failed.ID, open.ID, "tu_nobody")
	f.wantNoReceipt(b.ID, first.ID) // another account's
	if _, err := f.s.RemoveCard(ctx(t), a.ID, "pm_"+a.ID); err != nil {
		t.Fatal(err)
	}
	f.wantReceipt(a, first, 1, "12.34") // the removed card is kept
	nums, err := f.s.ReceiptNumbers(ctx(t))
	if err != nil || len(nums) != 2 || nums[1] != first.ID || nums[2] != second.ID {
		t.Errorf("receipt numbers %v, %v; want 1: %s, 2: %s", nums, err, first.ID, second.ID)
	}
	f.verifyClean()
}

// wantReceipt checks the receipt of an account's top-up: its number, the
// amount, the e-mail, the card (visa 4242) and the payment time.
func (f *fixture) wantReceipt(a ledger.Account, tu topup.TopUp, number int64, amount string) {
	t := f.t
	t.Helper()
	rec, err := f.s.Receipt(ctx(t), a.ID, tu.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Number != number || rec.Amount != amt(t, amount) || rec.Currency.Code != "usd" || rec.Email != a.Email ||
		rec.CardBrand != "visa" || rec.CardLast4 != "4242" || rec.PaidAt.IsZero() || rec.AccountID != a.ID || rec.TopUpID != tu.ID {
		t.Errorf("receipt %+v; want number %d, %s usd, %s, visa 4242 and the payment time", rec, number, amount, a.Email)
	}
}

// wantNoReceipt checks that none of the top-ups has a receipt the account
// may see.
func (f *fixture) wantNoReceipt(acct string, topUps ...string) {
	f.t.Helper()
	for _, id := range topUps {
		if _, err := f.s.Receipt(ctx(f.t), acct, id); apperr.CodeOf(err) != apperr.NotFound {
			f.t.Errorf("the receipt of top-up %s for %s: %v; want not_found", id, acct, err)
		}
	}
}

// testReceiptNumbersConcurrent: top-ups of many accounts settled at once
// take distinct, consecutive numbers from 1.
func testReceiptNumbersConcurrent(t *testing.T, f *fixture) {
	const n = 24
	var tus []topup.TopUp
	for i := range n {
		a := f.account(fmt.Sprintf("c%d@example.com", i))
		f.cards(a.ID)
		tu := f.manual(a.ID, "10.00", "k")
		if _, _, err := f.s.Begin(ctx(t), tu.ID); err != nil {
			t.Fatal(err)
		}
		tus = append(tus, tu)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, tu := range tus {
		wg.Go(func() {
			_, errs[i] = f.s.Settle(ctx(t), tu.ID, topup.Outcome{Status: topup.Succeeded, ChargeID: "ch_" + tu.ID}, time.Minute)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	WantConsecutiveReceipts(t, f.s, n)
}

// WantConsecutiveReceipts checks that the store's succeeded top-ups hold
// the receipt numbers 1 through n, each once.
func WantConsecutiveReceipts(t testing.TB, s *sqlstore.DB, n int) {
	t.Helper()
	nums, err := s.ReceiptNumbers(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := int64(1); i <= int64(n); i++ {
		id, ok := nums[i]
		if !ok || seen[id] {
			t.Fatalf("receipt number %d: top-up %q (seen before: %v); want 1..%d each on its own top-up, got %d numbers", i, id, seen[id], n, len(nums))
		}
		seen[id] = true
	}
	if len(nums) != n {
		t.Errorf("%d receipt numbers; want %d", len(nums), n)
	}
	if succeeded, err := s.CountTopUps(ctx(t), topup.Succeeded); err != nil || succeeded != n {
		t.Errorf("%d succeeded top-ups (%v); want %d, each with its number", succeeded, err, n)
	}
}

// testStatementMonths: a month's statement holds the entries written in
// it (an entry at midnight on the 1st belongs to the new month), oldest
// first; its opening balance is the balance before it, its closing the
// balance after it, opening + entries = closing; months without entries
// carry the balance over, and consecutive months chain.
func testStatementMonths(t *testing.T, f *fixture) {
	c, ok := f.s.Clock().(*clock.Manual)
	if !ok {
		t.Fatalf("the store's clock is %T; the suite needs the manual clock of NewClock", f.s.Clock())
	}
	a := f.account("statements@example.com")
	at := func(s string) { c.Set(mustTime(t, s)) }
	at("2026-03-31T23:59:59.999999Z")
	f.postOK(credit(a.ID, amt(t, "100.00"), "c1"))
	f.postOK(usage(a.ID, amt(t, "10.00"), "u1"))
	at("2026-04-01T00:00:00Z")
	f.postOK(usage(a.ID, amt(t, "5.00"), "u2"))
	at("2026-04-30T12:00:00Z")
	f.postOK(usage(a.ID, amt(t, "1.25"), "u3"))
	at("2026-06-02T08:00:00Z")
	f.postOK(credit(a.ID, amt(t, "3.00"), "c2"))

	for _, w := range []monthWant{
		{"2026-02", "0.00", "0.00", nil},
		{"2026-03", "0.00", "90.00", []string{"100.00", "-10.00"}},
		{"2026-04", "90.00", "83.75", []string{"-5.00", "-1.25"}},
		{"2026-05", "83.75", "83.75", nil},
		{"2026-06", "83.75", "86.75", []string{"3.00"}},
		{"2026-07", "86.75", "86.75", nil},
	} {
		f.wantStatement(a.ID, w)
	}
	m, _ := statement.ParseMonth("2026-03")
	if _, err := f.s.StatementRange(ctx(t), "acct_nobody", m); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("an unknown account's statement: %v; want not_found", err)
	}
	r, err := f.s.StatementRange(ctx(t), a.ID, m)
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	calls := 0
	if err := f.s.EachStatementEntry(ctx(t), r, func(ledger.Entry) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("a callback's error: %v after %d calls; want it returned after the first", err, calls)
	}
}

// monthWant is what a month's statement must say.
type monthWant struct {
	month            string
	opening, closing string
	amounts          []string
}

// wantStatement checks an account's statement of one month: its balances,
// its entries' amounts oldest first, each inside the month, and opening +
// entries = closing.
func (f *fixture) wantStatement(acct string, w monthWant) {
	t := f.t
	t.Helper()
	m, err := statement.ParseMonth(w.month)
	if err != nil {
		t.Fatal(err)
	}
	r, entries := f.statement(acct, m)
	var got []string
	sum := r.Opening
	for i, e := range entries {
		got = append(got, e.Amount.Format(usd))
		sum += e.Amount
		if e.CreatedAt.Before(m.Start()) || !e.CreatedAt.Before(m.End()) || (i > 0 && e.Seq <= entries[i-1].Seq) {
			t.Errorf("%s: entry %d (seq %d) at %s: outside the month or out of order", w.month, i, e.Seq, e.CreatedAt)
		}
	}
	if r.Opening.Format(usd) != w.opening || r.Closing.Format(usd) != w.closing || !slices.Equal(got, w.amounts) || sum != r.Closing {
		t.Errorf("%s: opening %s, entries %v, closing %s (opening + entries = %s); want %s, %v, %s",
			w.month, r.Opening.Format(usd), got, r.Closing.Format(usd), sum.Format(usd), w.opening, w.amounts, w.closing)
	}
	if r.Currency.Code != "usd" || r.Entries() != int64(len(entries)) {
		t.Errorf("%s: currency %q, %d entries counted, %d streamed", w.month, r.Currency.Code, r.Entries(), len(entries))
	}
}

// statement reads an account's statement of m, its entries collected.
func (f *fixture) statement(acct string, m statement.Month) (statement.Range, []ledger.Entry) {
	f.t.Helper()
	r, err := f.s.StatementRange(ctx(f.t), acct, m)
	if err != nil {
		f.t.Fatalf("statement of %s: %v", m, err)
	}
	var entries []ledger.Entry
	if err := f.s.EachStatementEntry(ctx(f.t), r, func(e ledger.Entry) error { entries = append(entries, e); return nil }); err != nil {
		f.t.Fatalf("entries of %s: %v", m, err)
	}
	return r, entries
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ReceiptMigrationNumbers builds a database before migration 0016 with
// succeeded top-ups (two completed at the same instant), a failed one and
// a card since removed, then opens it as the current code does: the
// succeeded top-ups are numbered in the order they completed (ties by
// id), keep the cards still on file, and the next success takes the next
// number.
func ReceiptMigrationNumbers(t *testing.T, old *sql.DB, files fs.FS, reopen func() *sqlstore.DB) {
	t.Helper()
	if err := sqlstore.Migrate(ctx(t), old, Before(files, 16)); err != nil {
		t.Fatalf("migrate to 0015: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO accounts (id, email, currency, balance, last_seq, turnover, api_key_hash, created_at, updated_at) VALUES ('acct_1', 'a@example.com', 'usd', 0, 0, 0, 'h1', 0, 0)`,
		`INSERT INTO payment_methods (id, account_id, brand, last4, exp_month, exp_year, is_default, created_at) VALUES ('pm_1', 'acct_1', 'mastercard', '4444', 12, 2034, TRUE, 0)`,
		`INSERT INTO top_ups (id, account_id, status, trigger, amount, payment_method, next_attempt_at, crossed_at, created_at, completed_at) VALUES ('tu_a', 'acct_1', 'succeeded', 'manual', 1000000, 'pm_1', 0, 0, 0, 300)`,
		`INSERT INTO top_ups (id, account_id, status, trigger, amount, payment_method, next_attempt_at, crossed_at, created_at, completed_at) VALUES ('tu_c', 'acct_1', 'succeeded', 'manual', 1000000, 'pm_gone', 0, 0, 0, 100)`,
		`INSERT INTO top_ups (id, account_id, status, trigger, amount, payment_method, next_attempt_at, crossed_at, created_at, completed_at) VALUES ('tu_b', 'acct_1', 'succeeded', 'manual', 1000000, 'pm_gone', 0, 0, 0, 100)`,
		`INSERT INTO top_ups (id, account_id, status, trigger, amount, payment_method, failure_code, next_attempt_at, crossed_at, created_at, completed_at) VALUES ('tu_d', 'acct_1', 'failed', 'manual', 1000000, 'pm_1', 'card_declined', 0, 0, 0, 50)`,
	} {
		if _, err := old.ExecContext(ctx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s := reopen()
	nums, err := s.ReceiptNumbers(ctx(t))
	if err != nil || len(nums) != 3 || nums[1] != "tu_b" || nums[2] != "tu_c" || nums[3] != "tu_a" {
		t.Fatalf("receipt numbers after 0016: %v, %v; want 1 tu_b, 2 tu_c, 3 tu_a (completion order, ties by id) and none for the failed one", nums, err)
	}
	if rec, err := s.Receipt(ctx(t), "acct_1", "tu_a"); err != nil || rec.CardBrand != "mastercard" || rec.CardLast4 != "4444" {
		t.Errorf("tu_a's receipt %+v, %v; want the card on file, mastercard 4444", rec, err)
	}
	if rec, err := s.Receipt(ctx(t), "acct_1", "tu_b"); err != nil || rec.CardBrand != "" || rec.Amount != money.Amount(1_000_000) {
		t.Errorf("tu_b's receipt %+v, %v; want no card (it was removed before 0016) and 1.00", rec, err)
	}
	f := &fixture{t: t, s: s}
	tu := f.manual("acct_1", "2.00", "after")
	if _, _, err := s.Begin(ctx(t), tu.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Settle(ctx(t), tu.ID, topup.Outcome{Status: topup.Succeeded, ChargeID: "ch_after"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.Receipt(ctx(t), "acct_1", tu.ID); err != nil || rec.Number != 4 {
		t.Errorf("the first receipt after the upgrade %+v, %v; want number 4", rec, err)
	}
}
