package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/debit"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

// Post applies postings in order in one transaction: it reads the accounts
// they touch (locked on PostgreSQL, in id order so that concurrent groups
// cannot deadlock) and then the idempotency rows of their keys, lets
// ledger.Apply decide, and writes entries, idempotency rows and balances
// with multi-row statements, one account row update per touched account.
func (s *Ledger) Post(ctx context.Context, postings []ledger.Posting) ([]ledger.Result, error) {
	var results []ledger.Result
	err := s.inGroupTx(ctx, func(tx *sql.Tx) error {
		var err error
		results, err = s.postTx(ctx, tx, postings)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("post %d postings: %w", len(postings), err)
	}
	return results, nil
}

// postTx loads what the group's plan needs, lets debit plan it, and writes
// the plan: a group of plain debits costs the statements below and no
// more; budgets are read only for accounts that have them, and top-up
// state only for accounts that went below their threshold.
func (s *core) postTx(ctx context.Context, tx *sql.Tx, postings []ledger.Posting) ([]ledger.Result, error) {
	// Lock the accounts before reading the keys: a key's row is written only
	// under its account's lock, so once the lock is held the read sees every
	// earlier request with that key. Read first, and two concurrent requests
	// with one key (a retry, another replica) would both miss it, and the
	// second would fail on the primary key instead of replaying.
	state, err := s.lockAccounts(ctx, tx, postings)
	if err != nil {
		return nil, err
	}
	if state.Stored, err = s.loadIdempotency(ctx, tx, state.Accounts, postings); err != nil {
		return nil, err
	}
	// The database keeps microseconds; the answer must carry the same
	// created_at as the entry listed later.
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	if err := s.prepareHolds(ctx, tx, state.Accounts, postings, now); err != nil {
		return nil, err
	}
	if err := s.completeGrants(ctx, tx, state.Accounts, postings, now); err != nil {
		return nil, err
	}
	plan := debit.New(now, s.ids.New, state, postings)
	budgets, err := s.spendBudgets(ctx, tx, plan.Spend, now)
	if err != nil {
		return nil, err
	}
	plan.Observe(budgets)
	for _, id := range plan.Due() {
		if err := s.loadTrigger(ctx, tx, plan, *state.Accounts[id], now); err != nil {
			return nil, err
		}
	}
	if err := s.writePlan(ctx, tx, plan, now); err != nil {
		return nil, err
	}
	return plan.Results, nil
}

// loadTrigger loads what deciding on an automatic top-up for acct needs
// (its settings, then, only when it is due by them, its top-up state) and
// lets the plan decide.
func (s *core) loadTrigger(ctx context.Context, tx *sql.Tx, plan *debit.Plan, acct ledger.AccountState, now time.Time) error {
	st, _, err := s.settingsTx(ctx, tx, acct.ID)
	if err != nil || !st.Due(acct.Available(), false, now) {
		return err
	}
	ts, err := s.triggerState(ctx, tx, acct.ID, st, now)
	if err != nil {
		return err
	}
	plan.Trigger(acct.ID, st, ts)
	return nil
}

// writePlan writes a group's plan: fired thresholds, events, top-ups,
// entries, idempotency rows, balances and daily totals.
func (s *core) writePlan(ctx context.Context, tx *sql.Tx, plan *debit.Plan, now time.Time) error {
	for _, a := range plan.Alerted {
		// Rare: only when a threshold fired.
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET low_balance_alerts = $1 WHERE id = $2`, encodeThresholds(a.Thresholds), a.AccountID); err != nil {
			return fmt.Errorf("record low balance alert: %w", err)
		}
	}
	if err := s.writeEvents(ctx, tx, plan.Events, now); err != nil {
		return err
	}
	for id, month := range plan.LimitNotified {
		if _, err := tx.ExecContext(ctx, `UPDATE auto_top_up SET limit_notified = $1 WHERE account_id = $2`, month, id); err != nil {
			return err
		}
	}
	for i := range plan.TopUps {
		if err := s.insertTopUp(ctx, tx, &plan.TopUps[i], 0); err != nil {
			return err
		}
	}
	if err := s.writeHolds(ctx, tx, plan.Holds, plan.State().Accounts, now); err != nil {
		return err
	}
	return s.writeLedger(ctx, tx, plan.Grants, plan.State().Accounts, plan.Entries, plan.Records, now)
}

// lockAccounts reads and locks the group's accounts with their Automatic
// Top-Up threshold, their low balance alerts and whether they have
// budgets (watched holds only the accounts that have either).
func (s *core) lockAccounts(ctx context.Context, tx *sql.Tx, postings []ledger.Posting) (debit.State, error) {
	idSet := make(map[string]struct{}, 8)
	for i := range postings {
		idSet[postings[i].AccountID] = struct{}{}
	}
	idList := make([]string, 0, len(idSet))
	for id := range idSet {
		idList = append(idList, id)
	}
	slices.Sort(idList)
	l := locked{accounts: make(map[string]*ledger.AccountState, len(idList)), autos: map[string]*topup.Settings{},
		grants: make(map[string][]*ledger.Grant, len(idList))}
	if err := s.bulk.LockAccounts(ctx, tx, idList, l.scan); err != nil {
		return debit.State{}, fmt.Errorf("lock accounts: %w", err)
	}
	err := s.bulk.LoadGrants(ctx, tx, idList, func(rows *sql.Rows) error {
		g, err := scanGrant(rows)
		if err == nil {
			l.grants[g.AccountID] = append(l.grants[g.AccountID], g)
		}
		return err
	})
	if err != nil {
		return debit.State{}, fmt.Errorf("load grants: %w", err)
	}
	for id, a := range l.accounts {
		a.Wallet = ledger.NewWallet(l.grants[id], a.Overdraft)
	}
	return debit.State{Accounts: l.accounts, Watched: l.watched, Auto: l.autos}, nil
}

// locked gathers the rows LockAccounts answers into a plan's state.
type locked struct {
	accounts map[string]*ledger.AccountState
	autos    map[string]*topup.Settings
	watched  map[string]debit.Watch
	grants   map[string][]*ledger.Grant
}

func (l *locked) scan(rows *sql.Rows) error {
	var wallet sql.NullString
	var st ledger.AccountState
	var cur, status string
	var created int64
	var enabled sql.NullBool
	var auto topup.Settings
	var alerts string
	var hasBudgets bool
	var heldUntil int64
	if err := rows.Scan(&st.ID, &st.Email, &cur, &st.Balance, &status, &created, &st.LastSeq, &st.Turnover, &st.Overdraft,
		&enabled, nullAmount{&auto.Threshold}, timeScanner{&auto.RetryAfter}, &alerts, &hasBudgets, &st.Held, &heldUntil, &wallet); err != nil {
		return err
	}
	st.HeldUntil = heldUntilOf(heldUntil)
	if wallet.String != "" {
		grants, err := decodeWallet(st.ID, wallet.String)
		if err != nil {
			return err
		}
		l.grants[st.ID] = grants
	}
	if alerts != "" || hasBudgets {
		ts, err := decodeThresholds(alerts)
		if err != nil {
			return fmt.Errorf("account %s: %w", st.ID, err)
		}
		if l.watched == nil {
			l.watched = map[string]debit.Watch{}
		}
		l.watched[st.ID] = debit.Watch{Thresholds: ts, Budgets: hasBudgets}
	}
	if enabled.Bool {
		auto.Enabled = true
		l.autos[st.ID] = &auto
	}
	c, err := money.LookupCurrency(cur)
	if err != nil {
		return err
	}
	st.Currency, st.Status, st.CreatedAt = c, ledger.Status(status), fromMicros(created)
	l.accounts[st.ID] = &st
	return nil
}

// writeLedger writes what a ledger transaction changed, in one Bulk.Write:
// the grants it made and those whose remaining or status changed, its
// entries and idempotency records, the touched accounts' balances and the
// daily totals its entries add to.
func (s *core) writeLedger(ctx context.Context, tx *sql.Tx, made []*ledger.Grant, accounts map[string]*ledger.AccountState,
	entries []ledger.Entry, recs []ledger.IdemRecord, now time.Time) error {
	recs, err := ledger.KeepInEntries(entries, recs)
	if err != nil {
		return err
	}
	w := Writes{NewGrants: made, ChangedGrants: changedGrants(made, accounts), Entries: entries, Records: recs,
		Daily: dailyRows(entries), Now: micros(now)}
	for _, a := range accounts {
		if a.Touched {
			w.Balances = append(w.Balances, a)
		}
	}
	if err := s.bulk.Write(ctx, tx, w); err != nil {
		return fmt.Errorf("write %d entries: %w", len(entries), err)
	}
	return nil
}

// EncodeResult stores a posting's first response compactly (it is written
// for every debit): entry|balance|currency|spendable|top_up|created_at,
// followed by |reason when there is one or a grant follows, and |grant_id
// for a credit (rows written before reasons or grants existed have six or
// seven fields and still decode).
func EncodeResult(r ledger.Result) string {
	b := make([]byte, 0, 96)
	b = append(b, r.EntryID...)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(r.Balance), 10)
	b = append(b, '|')
	b = append(b, r.Currency...)
	b = append(b, '|')
	b = strconv.AppendBool(b, r.Spendable)
	b = append(b, '|')
	b = append(b, r.TopUpID...)
	b = append(b, '|')
	b = strconv.AppendInt(b, micros(r.CreatedAt), 10)
	if r.Reason != "" || r.GrantID != "" {
		b = append(b, '|')
		b = append(b, r.Reason...)
	}
	if r.GrantID != "" {
		b = append(b, '|')
		b = append(b, r.GrantID...)
	}
	return string(b)
}

func decodeResult(s string) (ledger.Result, error) {
	f := strings.Split(s, "|")
	if len(f) < 6 || len(f) > 8 {
		return ledger.Result{}, fmt.Errorf("stored result %q has %d fields", s, len(f))
	}
	bal, err1 := strconv.ParseInt(f[1], 10, 64)
	sp, err2 := strconv.ParseBool(f[3])
	at, err3 := strconv.ParseInt(f[5], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return ledger.Result{}, fmt.Errorf("stored result %q: %w", s, err)
	}
	r := ledger.Result{EntryID: f[0], Balance: money.Amount(bal), Currency: f[2], Spendable: sp, TopUpID: f[4], CreatedAt: fromMicros(at)}
	if len(f) == 8 {
		r.GrantID = f[7]
	}
	if len(f) >= 7 {
		r.Reason = f[6]
	} else if !sp {
		// A first response stored before reasons existed: the balance was
		// the only reason.
		r.Reason = ledger.ReasonInsufficientBalance
	}
	return r, nil
}
