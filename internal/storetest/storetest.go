// Package storetest is the one conformance suite for Topup's storage: the
// same tests run against SQLite and PostgreSQL, with real databases, so the
// two can never drift apart in what a customer sees (STYLE habit 6). The
// sqlite and postgres packages call Run from their own tests, handing it a
// function that opens a fresh, empty store.
package storetest

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/sqlstore"
)

// Epoch is where the clock of every store under test stands: open must
// build its store with NewClock, so that the suite knows what created_at
// each entry must carry. It has nanoseconds on purpose: the databases keep
// microseconds, and what they return must agree with what Post answered.
var Epoch = time.Date(2026, time.March, 4, 5, 6, 7, 123456789, time.UTC)

// NewClock returns the manual clock a store under test must use.
func NewClock() *clock.Manual { return clock.NewManual(Epoch) }

// NewIDs returns the id generator a store under test should use.
func NewIDs(c clock.Clock) *ids.Generator { return ids.New(c) }

// Run runs the storage conformance suite. open must return a fresh, empty
// store built with NewClock and register its own cleanup (closing the store
// and dropping what it created).
func Run(t *testing.T, open func(t *testing.T) *sqlstore.DB) {
	t.Helper()
	setup := func(t *testing.T) *fixture {
		t.Helper()
		c := clock.NewManual(Epoch)
		return &fixture{t: t, s: open(t), ids: ids.New(c)}
	}
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, setup(t))
		})
	}
}

// suite is every section of the conformance suite, by name: accounts, the
// ledger, API keys, limits, top-ups, alerts and budgets, the outbox, the
// console and the sandbox's memory.
var suite = []struct {
	name string
	fn   func(t *testing.T, f *fixture)
}{
	{"Accounts/CreateAndRead", testAccountCreateAndRead},
	{"Accounts/ListNewestFirst", testAccountsList},
	{"Accounts/Update", testAccountUpdate},
	{"Post/CreditThenUsage", testPostCreditThenUsage},
	{"Post/ReplayAnswersTheFirstResult", testPostReplay},
	{"Post/SameKeyOtherRequestConflicts", testPostConflict},
	{"Post/KeyRepeatedInsideOneGroup", testPostKeyRepeatedInGroup},
	{"Post/ScopesAreIndependent", testPostScopes},
	{"Post/UsageKeyRetention", testUsageKeyRetention},
	{"Post/UsageKeyPruneRace", testUsageKeyPruneRace},
	{"Post/UsageKeyRowWins", testUsageKeyRowWins},
	{"Post/UnknownAccountSpoilsNothingElse", testPostUnknownAccount},
	{"Post/ClosedAccountRefuses", testPostClosedAccount},
	{"Post/BalanceOverflowRefused", testPostOverflow},
	{"Post/TotalsStayExact", testTotalsStayExact},
	{"Isolation/PoisonUnderLoad", testPoisonUnderLoad},
	{"Grants/SpendingOrder", testSpendingOrder},
	{"Grants/OverdraftPayback", testOverdraftPayback},
	{"Grants/ExpiredMetByDebit", testExpiredGrantMetByDebit},
	{"Grants/TopUpMakesPaidGrant", testTopUpMakesPaidGrant},
	{"Holds/Lifecycle", testHoldLifecycle},
	{"Holds/Expiry", testHoldExpiry},
	{"Holds/Limit", testHoldLimit},
	{"Holds/TriggerTopUp", testHoldTriggersTopUp},
	{"Holds/Concurrency", testHoldsConcurrency},
	{"Expiry/WorkerWarnsAndExpiresOnce", testExpiryWorker},
	{"Expiry/OneReplicaAtATime", testExpiryLease},
	{"Expiry/AcrossCrashesNeverTwice", testExpiryAcrossCrashes},
	{"Expiry/KilledWhileWriting", testExpiryKilledWhileWriting},
	{"Expiry/VerifyCatchesMissedExpiry", testVerifyCatchesExpiry},
	{"Grants/Void", testVoid},
	{"Entries/NewestFirstWithFields", testEntries},
	{"Entries/Immutable", testEntriesImmutable},
	{"Verify/CleanLedger", testVerifyClean},
	{"Verify/CorruptedBalance", testVerifyCorrupted},
	{"Meta/SetIfAbsent", testMeta},
	{"Concurrency/Committer", testConcurrentCommitter},
	{"Concurrency/DirectPost", testConcurrentDirectPost},
	{"Concurrency/SameKeyRace", testConcurrentSameKey},
	{"Batch/TenThousandPostings", testBigBatch},
	{"APIKeys/CreateListRevoke", testAPIKeys},
	{"APIKeys/LimitAndClosedAccount", testAPIKeyLimits},
	{"Limits/Cards", testCardLimit},
	{"Limits/BudgetsAndEndpoints", testBudgetAndEndpointLimits},
	{"Cards/RemovedStaysRemoved", testRemovedCardStaysRemoved},
	{"Closed/Writes", testClosedAccountWrites},
	{"TopUps/ManualIdempotent", testManualTopUpIdempotent},
	{"TopUps/LeaseAndClaim", testTopUpLeaseAndClaim},
	{"TopUps/Renew", testTopUpRenew},
	{"TopUps/SettleCreditsOnce", testTopUpSettleCreditsOnce},
	{"TopUps/Paging", testTopUpPaging},
	{"TopUps/OneOpenAutomatic", testOneOpenAutomaticTopUp},
	{"Refunds/OnceAndReversed", testRefunds},
	{"Refunds/MadeAtTheProvider", testProviderRefund},
	{"Refunds/SandboxLogEqualsLedger", testSandboxRefundLog},
	{"Refunds/OnTheReceipt", testReceiptRefunds},
	{"Disputes/AnyOrder", testDisputeAnyOrder},
	{"Disputes/LostAfterRefund", testDisputeLostAfterRefund},
	{"Refunds/AfterChargeOfAPage", testAfterCharge},
	{"Receipts/Numbering", testReceiptNumbering},
	{"Receipts/ConcurrentSettles", testReceiptNumbersConcurrent},
	{"Statements/MonthBoundaries", testStatementMonths},
	{"Ledger/CheckerReads", testLedgerReads},
	{"Alerts/Thresholds", testThresholds},
	{"Budgets/CRUD", testBudgetsCRUD},
	{"Budgets/Spendable", testSpendable},
	{"Budgets/RowsAndFlags", testBudgetAndAlertRows},
	{"Budgets/SpendVerified", testBudgetSpendVerified},
	{"Outbox/Endpoints", testEndpoints},
	{"Outbox/Delivery", testOutboxDelivery},
	{"Outbox/Renew", testDeliveryRenew},
	{"Console/LoginLinkSingleUse", testLoginLinkSingleUse},
	{"Console/LoginLinkExpired", testLoginLinkExpired},
	{"Console/Sessions", testConsoleSessions},
	{"Console/DailyTotals", testDailyTotals},
	{"Console/GrantReads", testConsoleGrantReads},
	{"Sandbox/ChargeRoundTrip", testSandboxChargeRoundTrip},
	{"Sandbox/SameKeyRace", testSandboxSameKeyRace},
	{"Sandbox/ForgottenKey", testSandboxForgottenKey},
	{"Sandbox/UpdateOnlyFrom", testSandboxUpdateCharge},
	{"Sandbox/ChargesForTopUp", testSandboxChargesForTopUp},
	{"Sandbox/Cards", testSandboxCards},
	{"Sandbox/Sessions", testSandboxSessions},
	{"Sandbox/RefundRoundTrip", testSandboxRefundRoundTrip},
	{"Sandbox/RefundCheckedUnderLock", testSandboxRefundRace},
	{"Sandbox/RefundSameKeyRace", testSandboxRefundSameKeyRace},
	{"Sandbox/RefundUpdateOnlyFrom", testSandboxUpdateRefund},
	{"Sandbox/Disputes", testSandboxDisputes},
	{"Sandbox/DisputeRace", testSandboxDisputeRace},
}

// fixture is one subtest's fresh store and the helpers that speak to it.
type fixture struct {
	t   *testing.T
	s   *sqlstore.DB
	ids *ids.Generator
}

func ctx(t testing.TB) context.Context { return t.Context() }

var usd = mustCurrency("usd")

func mustCurrency(code string) money.Currency {
	c, err := money.LookupCurrency(code)
	if err != nil {
		panic(err)
	}
	return c
}

// amt parses a wire amount, so the tests read in the product's units.
func amt(t testing.TB, s string) money.Amount {
	t.Helper()
	a, err := money.Parse(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return a
}

// account creates an active usd account and returns it.
func (f *fixture) account(email string) ledger.Account {
	f.t.Helper()
	return createAccount(f.t, f.s, f.ids, email)
}

func createAccount(t testing.TB, s *sqlstore.DB, g *ids.Generator, email string) ledger.Account {
	t.Helper()
	a := ledger.Account{
		ID:        g.New(ids.Account),
		Email:     email,
		Currency:  usd,
		Status:    ledger.Active,
		CreatedAt: Epoch.Truncate(time.Microsecond),
	}
	if err := s.CreateAccount(ctx(t), a, ledger.DefaultKey(a, "hash_"+a.ID, "")); err != nil {
		t.Fatalf("create account %s: %v", email, err)
	}
	return a
}

func usage(acct string, a money.Amount, key string) ledger.Posting {
	return ledger.Posting{AccountID: acct, Kind: ledger.KindUsage, Amount: -a, IdempotencyKey: key, Call: ledger.ScopeUsage}
}

func credit(acct string, a money.Amount, key string) ledger.Posting {
	return ledger.Posting{AccountID: acct, Kind: ledger.KindCredit, Amount: a, IdempotencyKey: key, Call: ledger.ScopeCredit}
}

// post applies postings in one group and fails the test if the group as a
// whole failed; each posting's own refusal stays in its result.
func (f *fixture) post(postings ...ledger.Posting) []ledger.Result {
	f.t.Helper()
	res, err := f.s.Post(ctx(f.t), postings)
	if err != nil {
		f.t.Fatalf("post: %v", err)
	}
	if len(res) != len(postings) {
		f.t.Fatalf("post %d postings: %d results", len(postings), len(res))
	}
	return res
}

// postOK posts one posting that must succeed and returns its result.
func (f *fixture) postOK(p ledger.Posting) ledger.Result {
	f.t.Helper()
	r := f.post(p)[0]
	if r.Err != nil {
		f.t.Fatalf("post %s %s: %v", p.Kind, p.IdempotencyKey, r.Err)
	}
	return r
}

func (f *fixture) balance(id string) money.Amount {
	f.t.Helper()
	a, err := f.s.Account(ctx(f.t), id)
	if err != nil {
		f.t.Fatalf("account %s: %v", id, err)
	}
	return a.Balance
}

// entryCount counts an account's ledger lines straight from the table, so
// that "nothing was written" is checked below the store's own reads.
func (f *fixture) entryCount(id string) int {
	f.t.Helper()
	return entryCount(f.t, f.s, id)
}

func entryCount(t testing.TB, s *sqlstore.DB, id string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(ctx(t), `SELECT COUNT(*) FROM entries WHERE account_id = $1`, id).Scan(&n); err != nil {
		t.Fatalf("count entries: %v", err)
	}
	return n
}

func (f *fixture) verifyClean() {
	f.t.Helper()
	v, err := f.s.Verify(ctx(f.t))
	if err != nil {
		f.t.Fatalf("verify: %v", err)
	}
	if len(v) != 0 {
		f.t.Fatalf("verify found %d violations on a ledger written only by the store: %+v", len(v), v)
	}
}

// wantCode checks that err is an *apperr.Error with code (and field, when
// given).
func wantCode(t testing.TB, err error, code apperr.Code, field string) {
	t.Helper()
	e := apperr.As(err)
	if e == nil {
		t.Fatalf("error %v: want *apperr.Error %s", err, code)
	}
	if e.Code != code {
		t.Fatalf("error code %s (%v), want %s", e.Code, err, code)
	}
	if field != "" && e.Field != field {
		t.Fatalf("error field %q (%v), want %q", e.Field, err, field)
	}
}

func accountIDs(as []ledger.Account) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func equalIDs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testAccountCreateAndRead(t *testing.T, f *fixture) {
	a := f.account("ada@example.com")
	got, err := f.s.Account(ctx(t), a.ID)
	if err != nil {
		t.Fatalf("account: %v", err)
	}
	if got.ID != a.ID || got.Email != "ada@example.com" || got.Currency != usd || got.Balance != 0 ||
		got.Status != ledger.Active || !got.CreatedAt.Equal(a.CreatedAt) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("account read back as %+v, created as %+v", got, a)
	}
	if got.Spendable() {
		t.Fatal("a new account with a zero balance is spendable")
	}
	byKey, err := f.s.AccountByKeyHash(ctx(t), "hash_"+a.ID)
	if err != nil || byKey.ID != a.ID {
		t.Fatalf("account by key hash: %+v, %v; want %s", byKey, err, a.ID)
	}
	_, err = f.s.Account(ctx(t), "acct_unknown")
	wantCode(t, err, apperr.NotFound, "")
	_, err = f.s.AccountByKeyHash(ctx(t), "hash_of_no_key")
	wantCode(t, err, apperr.NotFound, "")
	if err := f.s.Ping(ctx(t)); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func testAccountsList(t *testing.T, f *fixture) {
	var created []string
	for i := range 5 {
		created = append(created, f.account(fmt.Sprintf("u%d@example.com", i)).ID)
	}
	newest := []string{created[4], created[3], created[2], created[1], created[0]}

	list := func(p ledger.Page) ([]string, bool) {
		t.Helper()
		as, more, err := f.s.Accounts(ctx(t), p)
		if err != nil {
			t.Fatalf("accounts %+v: %v", p, err)
		}
		return accountIDs(as), more
	}
	if got, more := list(ledger.Page{Limit: 10}); !equalIDs(got, newest) || more {
		t.Fatalf("accounts limit 10: %v more=%v; want %v newest first, no more", got, more, newest)
	}
	if got, more := list(ledger.Page{Limit: 5}); !equalIDs(got, newest) || more {
		t.Fatalf("accounts limit 5 of 5: %v more=%v; want all, no more", got, more)
	}
	// Walk the list two at a time, as a client following starting_after.
	var walked []string
	after := ""
	for page := 0; ; page++ {
		got, more := list(ledger.Page{Limit: 2, StartingAfter: after})
		walked = append(walked, got...)
		if wantMore := page < 2; more != wantMore {
			t.Fatalf("page %d: has_more %v, want %v", page, more, wantMore)
		}
		if !more {
			break
		}
		after = got[len(got)-1]
	}
	if !equalIDs(walked, newest) {
		t.Fatalf("paging by 2 gave %v, want %v", walked, newest)
	}
	if got, more := list(ledger.Page{Limit: 10, StartingAfter: created[0]}); len(got) != 0 || more {
		t.Fatalf("after the oldest account: %v more=%v; want an empty page", got, more)
	}
	_, _, err := f.s.Accounts(ctx(t), ledger.Page{Limit: 10, StartingAfter: "acct_unknown"})
	wantCode(t, err, apperr.Invalid, "starting_after")
}

func testAccountUpdate(t *testing.T, f *fixture) {
	a := f.account("old@example.com")
	email := "new@example.com"
	got, err := f.s.UpdateAccount(ctx(t), a.ID, ledger.AccountUpdate{Email: &email})
	if err != nil {
		t.Fatalf("update email: %v", err)
	}
	if got.Email != email || got.Status != ledger.Active {
		t.Fatalf("after e-mail change: %+v", got)
	}
	closed := ledger.Closed
	got, err = f.s.UpdateAccount(ctx(t), a.ID, ledger.AccountUpdate{Status: &closed})
	if err != nil {
		t.Fatalf("close: %v", err)
	}
	if got.Status != ledger.Closed || got.Email != email {
		t.Fatalf("after closing: %+v; want closed with the new e-mail kept", got)
	}
	read, err := f.s.Account(ctx(t), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if read.Status != ledger.Closed || read.Email != email {
		t.Fatalf("closed account reads back as %+v", read)
	}
	byKey, err := f.s.AccountByKeyHash(ctx(t), "hash_"+a.ID)
	if err != nil || byKey.Email != email {
		t.Fatalf("by key after update: %+v, %v", byKey, err)
	}
	_, err = f.s.UpdateAccount(ctx(t), "acct_unknown", ledger.AccountUpdate{Email: &email})
	wantCode(t, err, apperr.NotFound, "")
}

func testPostCreditThenUsage(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	r := f.postOK(credit(a.ID, amt(t, "10.00"), "grant-1"))
	if r.Balance != amt(t, "10") || !r.Spendable || r.Replayed || r.EntryID == "" {
		t.Fatalf("credit 10.00: %+v; want balance 10, spendable, a new entry", r)
	}
	steps := []struct {
		amount    string
		balance   money.Amount
		spendable bool
	}{
		{"0.000125", amt(t, "9.999875"), true},
		{"9.999875", 0, false},         // exactly zero is not spendable
		{"0.5", -amt(t, "0.5"), false}, // usage is always recorded, even below zero
	}
	for i, st := range steps {
		r := f.postOK(usage(a.ID, amt(t, st.amount), "u"+strconv.Itoa(i)))
		if r.Balance != st.balance || r.Spendable != st.spendable || r.EntryID == "" {
			t.Fatalf("usage %s: %+v; want balance %s spendable %v", st.amount, r, st.balance, st.spendable)
		}
	}
	if got, want := f.balance(a.ID), -amt(t, "0.5"); got != want {
		t.Fatalf("account balance %s, want %s", got, want)
	}
	if n := f.entryCount(a.ID); n != 4 {
		t.Fatalf("%d entries, want 4", n)
	}
	f.verifyClean()
}

func testPostReplay(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	f.postOK(credit(a.ID, amt(t, "10"), "grant"))
	first := f.postOK(usage(a.ID, amt(t, "1"), "req-1"))
	f.postOK(usage(a.ID, amt(t, "2"), "req-2"))
	before := f.entryCount(a.ID)

	// "1.00" means the same as "1": a replay, not a conflict.
	again := f.postOK(usage(a.ID, amt(t, "1.00"), "req-1"))
	if !again.Replayed {
		t.Fatal("the same key and request again was not marked replayed")
	}
	if again.EntryID != first.EntryID || again.Balance != amt(t, "9") || again.Spendable != first.Spendable ||
		!again.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("replay answered %+v, want the first result %+v (balance of that time, 9)", again, first)
	}
	if n := f.entryCount(a.ID); n != before {
		t.Fatalf("replay wrote entries: %d, want %d", n, before)
	}
	if got := f.balance(a.ID); got != amt(t, "7") {
		t.Fatalf("balance after replay %s, want 7 (the replay must not debit)", got)
	}
}

func testPostConflict(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	f.postOK(credit(a.ID, amt(t, "10"), "grant"))
	f.postOK(usage(a.ID, amt(t, "1"), "req-1"))
	other := usage(a.ID, amt(t, "1"), "req-1")
	other.Description = "something else"
	for _, p := range []ledger.Posting{usage(a.ID, amt(t, "2"), "req-1"), other} {
		r := f.post(p)[0]
		wantCode(t, r.Err, apperr.IdempotencyConflict, "idempotency_key")
		if r.EntryID != "" || r.Replayed {
			t.Fatalf("a conflict carries a result: %+v", r)
		}
	}
	if got, n := f.balance(a.ID), f.entryCount(a.ID); got != amt(t, "9") || n != 2 {
		t.Fatalf("after conflicts: balance %s with %d entries, want 9 with 2", got, n)
	}
}

func testPostKeyRepeatedInGroup(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	f.postOK(credit(a.ID, amt(t, "10"), "grant"))
	res := f.post(
		usage(a.ID, amt(t, "1"), "k"),
		usage(a.ID, amt(t, "1"), "k"),
		usage(a.ID, amt(t, "3"), "k"),
		usage(a.ID, amt(t, "2"), "k2"),
	)
	if res[0].Err != nil || res[0].Replayed || res[0].Balance != amt(t, "9") {
		t.Fatalf("first of the group: %+v", res[0])
	}
	if res[1].Err != nil || !res[1].Replayed || res[1].EntryID != res[0].EntryID || res[1].Balance != amt(t, "9") {
		t.Fatalf("repeated key in the group: %+v; want a replay of %+v", res[1], res[0])
	}
	wantCode(t, res[2].Err, apperr.IdempotencyConflict, "idempotency_key")
	if res[3].Err != nil || res[3].Balance != amt(t, "7") {
		t.Fatalf("posting after the repeats: %+v; want balance 7", res[3])
	}
	if n := f.entryCount(a.ID); n != 3 {
		t.Fatalf("%d entries, want 3 (grant, k, k2)", n)
	}
}

func testPostScopes(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	b := f.account("b@example.com")
	res := f.post(
		credit(a.ID, amt(t, "5"), "same"),
		usage(a.ID, amt(t, "1"), "same"),
		credit(b.ID, amt(t, "5"), "same"),
	)
	for i, r := range res {
		if r.Err != nil || r.Replayed {
			t.Fatalf("posting %d with a key used in another scope: %+v", i, r)
		}
	}
	if res[1].Balance != amt(t, "4") || res[2].Balance != amt(t, "5") {
		t.Fatalf("balances %s and %s, want 4 and 5", res[1].Balance, res[2].Balance)
	}
	// And each scope replays its own first answer.
	if r := f.postOK(credit(a.ID, amt(t, "5"), "same")); !r.Replayed || r.EntryID != res[0].EntryID {
		t.Fatalf("credit replay: %+v", r)
	}
	if r := f.postOK(usage(a.ID, amt(t, "1"), "same")); !r.Replayed || r.EntryID != res[1].EntryID {
		t.Fatalf("usage replay: %+v", r)
	}
}

func testPostUnknownAccount(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	res := f.post(
		credit(a.ID, amt(t, "10"), "grant"),
		usage("acct_nobody", amt(t, "1"), "u1"),
		usage(a.ID, amt(t, "1"), "u1"),
	)
	if res[0].Err != nil || res[2].Err != nil {
		t.Fatalf("postings beside an unknown account failed: %v, %v", res[0].Err, res[2].Err)
	}
	wantCode(t, res[1].Err, apperr.NotFound, "")
	if res[2].Balance != amt(t, "9") || f.balance(a.ID) != amt(t, "9") {
		t.Fatalf("balance %s, want 9", res[2].Balance)
	}
	if n := entryCountAll(t, f.s); n != 2 {
		t.Fatalf("%d entries in the database, want 2", n)
	}
}

func entryCountAll(t testing.TB, s *sqlstore.DB) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(ctx(t), `SELECT COUNT(*) FROM entries`).Scan(&n); err != nil {
		t.Fatalf("count entries: %v", err)
	}
	return n
}

func testPostClosedAccount(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	f.postOK(credit(a.ID, amt(t, "10"), "grant"))
	closed := ledger.Closed
	if _, err := f.s.UpdateAccount(ctx(t), a.ID, ledger.AccountUpdate{Status: &closed}); err != nil {
		t.Fatal(err)
	}
	res := f.post(usage(a.ID, amt(t, "1"), "u1"), credit(a.ID, amt(t, "1"), "c1"))
	for _, r := range res {
		wantCode(t, r.Err, apperr.AccountClosed, "")
	}
	if got, n := f.balance(a.ID), f.entryCount(a.ID); got != amt(t, "10") || n != 1 {
		t.Fatalf("closed account moved: balance %s with %d entries", got, n)
	}
	active := ledger.Active
	if _, err := f.s.UpdateAccount(ctx(t), a.ID, ledger.AccountUpdate{Status: &active}); err != nil {
		t.Fatal(err)
	}
	if r := f.postOK(usage(a.ID, amt(t, "1"), "u1")); r.Replayed || r.Balance != amt(t, "9") {
		t.Fatalf("usage after reopening: %+v; want a fresh debit to 9", r)
	}
}

// testPostOverflow: a posting that would take an account's turnover past
// ledger.MaxTurnover (and so some stored total out of int64) is refused with
// its field, and refuses only itself.
func testPostOverflow(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	top := ledger.MaxTurnover - amt(t, "1")
	f.postOK(credit(a.ID, top, "huge"))
	res := f.post(credit(a.ID, amt(t, "2"), "two-more"), usage(a.ID, amt(t, "1"), "u1"), credit(a.ID, math.MaxInt64, "max"))
	wantCode(t, res[0].Err, apperr.Invalid, "amount")
	wantCode(t, res[2].Err, apperr.Invalid, "amount")
	if res[1].Err != nil || res[1].Balance != top-amt(t, "1") {
		t.Fatalf("usage after the refused credit: %+v", res[1])
	}
	if got, n := f.balance(a.ID), f.entryCount(a.ID); got != top-amt(t, "1") || n != 2 {
		t.Fatalf("after overflow: balance %d with %d entries, want %d with 2", got, n, top-amt(t, "1"))
	}
	// At the bound, every further change is refused, however small.
	wantCode(t, f.post(usage(a.ID, 1, "u2"))[0].Err, apperr.Invalid, "amount")
	f.verifyClean()
}

// testTotalsStayExact: an account that tries to move amounts whose sums no
// stored total could hold keeps every total readable and exact: the moves
// are refused with their field, and its later usage, its budget, its daily
// totals and verify keep working. (Before the turnover bound, the budget's
// spend overflowed: SQLite made it a float and every later usage of the
// account failed; PostgreSQL refused the whole group.)
func testTotalsStayExact(t *testing.T, f *fixture) {
	a := f.account("whale@example.com")
	kind := "unlimited"
	if _, err := f.s.CreateBudget(ctx(t), a.ID, alert.BudgetInput{Kind: &kind}); err != nil {
		t.Fatalf("create budget: %v", err)
	}
	f.postOK(credit(a.ID, amt(t, "10"), "c"))
	f.postOK(usage(a.ID, amt(t, "1"), "u"))
	big := money.Amount(math.MaxInt64 / 3)
	for i := range 4 {
		res := f.post(credit(a.ID, big, fmt.Sprintf("big-c%d", i)), usage(a.ID, big, fmt.Sprintf("big-u%d", i)))
		for _, r := range res {
			wantCode(t, r.Err, apperr.Invalid, "amount")
		}
	}
	if r := f.postOK(usage(a.ID, amt(t, "1"), "later")); r.Balance != amt(t, "8") {
		t.Fatalf("later usage: balance %s, want 8", r.Balance)
	}
	bs, _, err := f.s.Budgets(ctx(t), a.ID, ledger.Page{Limit: 10})
	if err != nil || len(bs) != 1 {
		t.Fatalf("budgets after the refusals: %v %v", bs, err)
	}
	if bs[0].Spent != amt(t, "2") {
		t.Fatalf("budget spent %s, want 2", bs[0].Spent)
	}
	days, err := f.s.DailyTotals(ctx(t), a.ID, Epoch.Add(-48*time.Hour))
	if err != nil || len(days) != 1 || days[0].Usage != amt(t, "2") {
		t.Fatalf("daily totals: %+v, %v; want one day with usage 2", days, err)
	}
	f.verifyClean()
}

func testEntries(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	other := f.account("b@example.com")
	otherRes := f.postOK(credit(other.ID, amt(t, "1"), "o"))
	grant := credit(a.ID, amt(t, "10"), "grant")
	grant.Description = "welcome credit"
	posted := []ledger.Posting{grant}
	for i := range 4 {
		p := usage(a.ID, amt(t, "0.000125"), fmt.Sprintf("req-%d", i))
		p.Description = fmt.Sprintf("call %d", i)
		p.Subject = "model-" + strconv.Itoa(i%2)
		posted = append(posted, p)
	}
	var results []ledger.Result
	for _, p := range posted {
		results = append(results, f.postOK(p))
	}

	page := func(p ledger.Page) ([]ledger.Entry, bool) {
		t.Helper()
		es, more, err := f.s.Entries(ctx(t), a.ID, p)
		if err != nil {
			t.Fatalf("entries %+v: %v", p, err)
		}
		return es, more
	}
	all, more := page(ledger.Page{Limit: 10})
	if len(all) != 5 || more {
		t.Fatalf("%d entries more=%v, want 5 and no more", len(all), more)
	}
	want := Epoch.Truncate(time.Microsecond)
	for i, e := range all {
		p, r := posted[len(posted)-1-i], results[len(posted)-1-i] // newest first
		if e.ID != r.EntryID || e.AccountID != a.ID || e.Seq != int64(5-i) || e.Kind != p.Kind || e.Amount != p.Amount ||
			e.BalanceAfter != r.Balance || e.Description != p.Description || e.Subject != p.Subject ||
			e.IdempotencyKey != p.IdempotencyKey || e.TopUpID != "" {
			t.Fatalf("entry %d = %+v; posted %+v answered %+v", i, e, p, r)
		}
		if !e.CreatedAt.Equal(want) || e.CreatedAt.Location() != time.UTC {
			t.Fatalf("entry created_at %v, want %v in UTC", e.CreatedAt, want)
		}
		if !r.CreatedAt.Equal(e.CreatedAt) {
			t.Fatalf("Post answered created_at %v but the entry lists %v", r.CreatedAt, e.CreatedAt)
		}
		// The balance_after chain: each line is the one before plus its amount.
		prev := money.Amount(0)
		if i+1 < len(all) {
			prev = all[i+1].BalanceAfter
		}
		if e.BalanceAfter != prev+e.Amount {
			t.Fatalf("entry %s: balance_after %s, but the previous line %s plus %s", e.ID, e.BalanceAfter, prev, e.Amount)
		}
	}
	if all[0].BalanceAfter != f.balance(a.ID) {
		t.Fatalf("newest balance_after %s differs from the balance %s", all[0].BalanceAfter, f.balance(a.ID))
	}

	var walked []ledger.Entry
	after := ""
	for n := 0; ; n++ {
		es, more := page(ledger.Page{Limit: 2, StartingAfter: after})
		walked = append(walked, es...)
		if wantMore := n < 2; more != wantMore {
			t.Fatalf("page %d: has_more %v, want %v", n, more, wantMore)
		}
		if !more {
			break
		}
		after = es[len(es)-1].ID
	}
	if len(walked) != len(all) {
		t.Fatalf("paging by 2 gave %d entries, want %d", len(walked), len(all))
	}
	for i := range walked {
		if walked[i].ID != all[i].ID {
			t.Fatalf("paging by 2: entry %d is %s, want %s", i, walked[i].ID, all[i].ID)
		}
	}
	_, _, err := f.s.Entries(ctx(t), a.ID, ledger.Page{Limit: 10, StartingAfter: "ent_unknown"})
	wantCode(t, err, apperr.Invalid, "starting_after")
	// Another account's entry is no cursor here either.
	_, _, err = f.s.Entries(ctx(t), a.ID, ledger.Page{Limit: 10, StartingAfter: otherRes.EntryID})
	wantCode(t, err, apperr.Invalid, "starting_after")
}

func testEntriesImmutable(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	r := f.postOK(credit(a.ID, amt(t, "10"), "grant"))
	db := f.s.DB()
	if _, err := db.ExecContext(ctx(t), `UPDATE entries SET amount = 1`); err == nil {
		t.Fatal("the database let an entry's amount be changed")
	}
	if _, err := db.ExecContext(ctx(t), `DELETE FROM entries`); err == nil {
		t.Fatal("the database let entries be deleted")
	}
	es, _, err := f.s.Entries(ctx(t), a.ID, ledger.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].ID != r.EntryID || es[0].Amount != amt(t, "10") {
		t.Fatalf("entries after the refused changes: %+v", es)
	}
	f.verifyClean()
}

func testVerifyClean(t *testing.T, f *fixture) {
	f.verifyClean() // an empty database
	a, b := f.account("a@example.com"), f.account("b@example.com")
	f.account("idle@example.com")
	f.post(credit(a.ID, amt(t, "10"), "g"), credit(b.ID, amt(t, "5"), "g"),
		usage(a.ID, amt(t, "0.000001"), "u"), usage(b.ID, amt(t, "7"), "u"))
	f.verifyClean()
}

func testVerifyCorrupted(t *testing.T, f *fixture) {
	a, b := f.account("a@example.com"), f.account("b@example.com")
	f.post(credit(a.ID, amt(t, "10"), "g"), credit(b.ID, amt(t, "10"), "g"), usage(b.ID, amt(t, "1"), "u"))
	if _, err := f.s.DB().ExecContext(ctx(t), `UPDATE accounts SET balance = balance + 1 WHERE id = $1`, b.ID); err != nil {
		t.Fatalf("corrupt balance: %v", err)
	}
	v, err := f.s.Verify(ctx(t))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(v) != 1 || v[0].AccountID != b.ID || v[0].Problem == "" {
		t.Fatalf("verify reported %+v; want exactly one problem, on %s", v, b.ID)
	}
}

func testMeta(t *testing.T, f *fixture) {
	if v, ok, err := f.s.Meta(ctx(t), "admin_key_hash"); err != nil || ok || v != "" {
		t.Fatalf("meta before any set: %q %v %v", v, ok, err)
	}
	if v, err := f.s.SetMetaIfAbsent(ctx(t), "admin_key_hash", "first"); err != nil || v != "first" {
		t.Fatalf("first set: %q %v", v, err)
	}
	if v, err := f.s.SetMetaIfAbsent(ctx(t), "admin_key_hash", "second"); err != nil || v != "first" {
		t.Fatalf("second set answered %q %v; want the first value kept", v, err)
	}
	if v, ok, err := f.s.Meta(ctx(t), "admin_key_hash"); err != nil || !ok || v != "first" {
		t.Fatalf("meta after sets: %q %v %v", v, ok, err)
	}
}

const (
	hammerGoroutines = 100
	hammerEach       = 100
)

// hammer debits one account from many goroutines at once through submit and
// checks that every debit landed exactly once.
func (f *fixture) hammer(submit func(context.Context, []ledger.Posting) ([]ledger.Result, error)) {
	t := f.t
	t.Helper()
	a := f.account("busy@example.com")
	start := amt(t, "1000")
	f.postOK(credit(a.ID, start, "grant"))
	price := amt(t, "0.000125")
	var wg sync.WaitGroup
	errs := make(chan error, hammerGoroutines)
	for g := range hammerGoroutines {
		wg.Go(func() {
			for i := range hammerEach {
				p := usage(a.ID, price, fmt.Sprintf("g%d-%d", g, i))
				res, err := submit(context.Background(), []ledger.Posting{p})
				if err == nil && res[0].Err != nil {
					err = res[0].Err
				}
				if err == nil && res[0].Replayed {
					err = fmt.Errorf("fresh key %s was replayed", p.IdempotencyKey)
				}
				if err != nil {
					errs <- fmt.Errorf("goroutine %d posting %d: %w", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := start - price*hammerGoroutines*hammerEach
	if got := f.balance(a.ID); got != want {
		t.Fatalf("balance %s after %d debits, want %s", got, hammerGoroutines*hammerEach, want)
	}
	if n := f.entryCount(a.ID); n != hammerGoroutines*hammerEach+1 {
		t.Fatalf("%d entries, want %d", n, hammerGoroutines*hammerEach+1)
	}
	f.verifyClean()
}

func testConcurrentCommitter(t *testing.T, f *fixture) {
	c := ledger.NewCommitter(f.s.Ledger, ledger.CommitterConfig{})
	c.Start()
	defer c.Stop()
	f.hammer(c.Submit)
}

func testConcurrentDirectPost(t *testing.T, f *fixture) {
	f.hammer(f.s.Post)
}

// testConcurrentSameKey sends one request many times at once, as a
// client retrying over a flaky network or several replicas would: exactly
// one debit, and every other answer is its replay.
func testConcurrentSameKey(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	f.postOK(credit(a.ID, amt(t, "10"), "grant"))
	const n = 16
	for round := range 5 {
		key := "retry-" + strconv.Itoa(round)
		results := make([]ledger.Result, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				res, err := f.s.Post(context.Background(), []ledger.Posting{usage(a.ID, amt(t, "1"), key)})
				if err == nil {
					results[i], errs[i] = res[0], res[0].Err
				} else {
					errs[i] = err
				}
			})
		}
		wg.Wait()
		fresh := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: concurrent retry %d of one request failed: %v", round, i, errs[i])
			}
			if !results[i].Replayed {
				fresh++
			}
			if results[i].EntryID != results[0].EntryID {
				t.Fatalf("round %d: answers name entries %s and %s", round, results[i].EntryID, results[0].EntryID)
			}
		}
		if fresh != 1 {
			t.Fatalf("round %d: %d of %d answers were fresh debits, want 1", round, fresh, n)
		}
	}
	if got, n := f.balance(a.ID), f.entryCount(a.ID); got != amt(t, "5") || n != 6 {
		t.Fatalf("balance %s with %d entries, want 5 with 6", got, n)
	}
}

func testBigBatch(t *testing.T, f *fixture) {
	const accounts, postings = 50, 10_000
	accts := make([]string, accounts)
	grants := make([]ledger.Posting, accounts)
	for i := range accts {
		accts[i] = f.account(fmt.Sprintf("batch%d@example.com", i)).ID
		grants[i] = credit(accts[i], amt(t, "100"), "grant")
	}
	f.post(grants...)
	batch := make([]ledger.Posting, postings)
	spent := make([]money.Amount, accounts)
	count := make([]int, accounts)
	for i := range batch {
		k := (i * 7) % accounts
		price := money.Amount(1 + i%1000) // 0.000001 to 0.001
		batch[i] = usage(accts[k], price, "ev-"+strconv.Itoa(i))
		spent[k] += price
		count[k]++
	}
	for i, r := range f.post(batch...) {
		if r.Err != nil || r.Replayed {
			t.Fatalf("event %d: %+v", i, r)
		}
	}
	for k, id := range accts {
		if got, want := f.balance(id), amt(t, "100")-spent[k]; got != want {
			t.Fatalf("account %d: balance %s, want %s", k, got, want)
		}
		if n := f.entryCount(id); n != count[k]+1 {
			t.Fatalf("account %d: %d entries, want %d", k, n, count[k]+1)
		}
	}
	f.verifyClean()
}
