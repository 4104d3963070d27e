package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/retention"
)

// SetUsageKeyRetention sets how long a usage key is remembered
// (TOPUP_IDEMPOTENCY_RETENTION; zero, the default, is
// retention.DefaultRetention): a usage entry older than that no longer
// answers its key, which may then debit again. It is set once, when the
// store is wired.
func (d *DB) SetUsageKeyRetention(r time.Duration) { d.core.usageKeyRetention = r }

// loadIdempotency reads what the keys of postings answered before: the
// idempotency rows of their keys, and the usage entries that keep theirs
// (ledger.KeptInEntry). accounts are the postings' accounts, locked: a
// usage entry's replay answers in its account's currency.
func (s *core) loadIdempotency(ctx context.Context, tx *sql.Tx, accounts map[string]*ledger.AccountState,
	postings []ledger.Posting) (map[ledger.IdemKey]ledger.Stored, error) {
	keys := make([]ledger.IdemKey, 0, len(postings))
	var usage []ledger.IdemKey
	seen := make(map[ledger.IdemKey]struct{}, len(postings))
	for i := range postings {
		if postings[i].IsSweep() {
			continue // a sweep has no key
		}
		k := ledger.IdemKey{Scope: postings[i].Scope(), Key: postings[i].IdempotencyKey}
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = struct{}{}
		keys = append(keys, k)
		if k.KeptInEntry() {
			usage = append(usage, k)
		}
	}
	found := storedKeys{out: make(map[ledger.IdemKey]ledger.Stored, len(keys)), accounts: accounts,
		since: s.clock.Now().Add(-s.retention()).Truncate(time.Microsecond)}
	if err := s.bulk.LookupIdempotency(ctx, tx, keys, usage, found.scan); err != nil {
		return nil, fmt.Errorf("read idempotency keys: %w", err)
	}
	return found.out, nil
}

// retention is how long a usage key is remembered.
func (s *core) retention() time.Duration {
	if s.usageKeyRetention == 0 {
		return retention.DefaultRetention
	}
	return s.usageKeyRetention
}

// storedKeys gathers what LookupIdempotency answers into what each key
// answered first. A key's idempotency row wins over entries (it was
// written before migration 0022, and its entry, which kept no answer then,
// would say less); of a key's entries the newest wins, and only if it is
// no older than since (in microseconds, as the database keeps times and
// the retention worker compares them): a usage key is remembered for the
// retention, and used again after that it makes a new entry with the same
// key.
type storedKeys struct {
	out      map[ledger.IdemKey]ledger.Stored
	accounts map[string]*ledger.AccountState
	since    time.Time
	// seqs are the sequence numbers of the entries in out (a key absent
	// here with a value in out has its row).
	seqs map[ledger.IdemKey]int64
}

func (f *storedKeys) scan(rows *sql.Rows) error {
	var k ledger.IdemKey
	var scope string
	var hash, result, id, desc, subject, answer sql.NullString
	var seq, amount, after, created sql.NullInt64
	if err := rows.Scan(&scope, &k.Key, &hash, &result, &id, &seq, &amount, &after, &desc, &subject, &created, &answer); err != nil {
		return err
	}
	k.Scope = ledger.Scope(scope)
	if hash.Valid {
		r, err := decodeResult(result.String)
		if err != nil {
			return fmt.Errorf("idempotency %s %s: %w", scope, k.Key, err)
		}
		f.out[k] = ledger.Stored{Hash: hash.String, Result: r}
		delete(f.seqs, k)
		return nil
	}
	e := ledger.Entry{ID: id.String, AccountID: k.Scope.Account(), Seq: seq.Int64, Kind: ledger.KindUsage, Amount: money.Amount(amount.Int64),
		BalanceAfter: money.Amount(after.Int64), Description: desc.String, Subject: subject.String, IdempotencyKey: k.Key,
		CreatedAt: fromMicros(created.Int64), Answer: answer.String}
	if e.CreatedAt.Before(f.since) {
		return nil // forgotten: older than the retention
	}
	if _, ok := f.out[k]; ok {
		if prev, isEntry := f.seqs[k]; !isEntry || prev > e.Seq {
			return nil // the key's row, or a newer entry
		}
	}
	acct := f.accounts[e.AccountID]
	if acct == nil {
		return fmt.Errorf("usage entry %s of account %s, which the group did not load", e.ID, e.AccountID)
	}
	st, err := ledger.ReplayOf(&e, acct.Currency.Code, e.Answer)
	if err != nil {
		return err
	}
	f.out[k] = st
	if f.seqs == nil {
		f.seqs = map[ledger.IdemKey]int64{}
	}
	f.seqs[k] = e.Seq
	return nil
}
