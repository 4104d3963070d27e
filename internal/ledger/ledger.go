// Package ledger holds the exact credit ledger's types and rules: accounts,
// immutable entries, postings and how a group of postings is applied. It
// imports no database and no HTTP; storage packages load state, call Apply,
// and write what it returns in one transaction.
package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/topup/topup/internal/money"
)

// Status says whether an account may still move money.
type Status string

// Account statuses. A closed account keeps its history but refuses usage,
// credits and top-ups (409 account_closed).
const (
	Active Status = "active"
	Closed Status = "closed"
)

// Account is one customer of the platform, with the balance kept in its row.
type Account struct {
	ID        string
	Email     string
	Currency  money.Currency
	Balance   money.Amount
	Status    Status
	CreatedAt time.Time
	// Held is what the account's active holds reserve (PRODUCT.md "Credit
	// grants and holds"), as the store read it: exact wherever the store
	// answers an account (Account, Accounts, the posting transaction); an
	// account read with its API key leaves it zero.
	Held money.Amount
}

// Available is the balance less what holds reserve: what spendable and
// Automatic Top-Up look at (low balance alerts watch the balance itself).
func (a Account) Available() money.Amount { return a.Balance - a.Held }

// Spendable reports whether the account alone allows more usage: usage may
// take the balance below zero, but the platform should stop an account that
// is closed or whose available credit is not above zero (StopReason says
// which).
func (a Account) Spendable() bool { return a.StopReason() == "" }

// Kind says why an entry moved the balance.
type Kind string

// Entry kinds of the public contract.
const (
	KindUsage           Kind = "usage"
	KindCredit          Kind = "credit"
	KindTopUp           Kind = "top_up"
	KindRefund          Kind = "refund"
	KindRefundReversal  Kind = "refund_reversal"
	KindDispute         Kind = "dispute"
	KindDisputeReversal Kind = "dispute_reversal"
	KindExpiration      Kind = "expiration"
	KindVoid            Kind = "void"
	KindAdjustment      Kind = "adjustment"
)

// Entry is one immutable line of an account's ledger. Seq numbers an
// account's entries 1, 2, 3… in the order they changed the balance.
type Entry struct {
	ID             string
	AccountID      string
	Seq            int64
	Kind           Kind
	Amount         money.Amount // signed: usage is negative
	BalanceAfter   money.Amount
	Description    string
	Subject        string
	IdempotencyKey string
	TopUpID        string
	// GrantID is the grant a credit made, or the grant an expiration or
	// void took out of the balance.
	GrantID string
	// HoldID is the hold a capture settled.
	HoldID string
	// Funding says which grants a negative entry took its money from, in
	// spending order (PRODUCT.md "Credit grants and holds"); nil on
	// positive entries.
	Funding   []Funding
	CreatedAt time.Time
	// Answer is, on a usage entry, what its first response said beyond
	// the entry (Answer, KeepInEntries): a replay of its key is answered
	// from the entry (ReplayOf).
	Answer string
}

// Page asks for one page of a newest-first list.
type Page struct {
	Limit         int
	StartingAfter string
}

// Scope names the idempotency scope of a call: the account and the kind of
// call, so the same key may be used for a usage event and a credit.
type Scope string

// Scopes of ledger calls. Single and batched usage share ScopeUsage.
const (
	ScopeUsage  = "usage"
	ScopeCredit = "credit"
	// ScopeCapture is a hold's capture: its keys are its own.
	ScopeCapture = "capture"
)

// ScopeOf returns the idempotency scope of call kind on account.
func ScopeOf(accountID, kind string) Scope { return Scope(accountID + "/" + kind) }

// Posting asks for one balance change. The committer groups many postings,
// from many requests, into one database transaction.
type Posting struct {
	AccountID      string
	Kind           Kind
	Amount         money.Amount // signed change to the balance
	Description    string
	Subject        string
	IdempotencyKey string
	// Call is the kind of call for the idempotency scope (ScopeUsage,
	// ScopeCredit).
	Call string
	// TopUpID is the top-up a credit comes from (Credit only): it is not
	// part of the request's meaning.
	TopUpID string
	// Terms are the grant a credit makes; the zero value is the default
	// grant (promotional, priority 10, never expires).
	Terms GrantTerms
	// HoldID makes a usage posting the capture of that hold (Call
	// ScopeCapture): Apply takes it from AccountState.Holds, refuses it
	// unless the hold is active and covers the amount, and releases the
	// rest of it.
	HoldID string
	// GrantID is the grant a void (KindVoid) takes out of the balance.
	GrantID string

	hash string // set by Prepare
}

// Prepare computes what can be computed before the posting reaches the
// committer, so that the single writer does less: the request hash.
func (p *Posting) Prepare() { p.hash = p.computeHash() }

// Scope returns the posting's idempotency scope.
func (p *Posting) Scope() Scope { return ScopeOf(p.AccountID, p.Call) }

// Hash is the meaning of the request that carried p: the same key with a
// different hash is an idempotency conflict. Amounts are hashed as micros, so
// "10" and "10.00" mean the same.
func (p *Posting) Hash() string {
	if p.hash != "" {
		return p.hash
	}
	return p.computeHash()
}

func (p *Posting) computeHash() string {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(p.Amount))
	h.Write(n[:])
	writeField(h, string(p.Kind))
	writeField(h, p.Description)
	writeField(h, p.Subject)
	if p.GrantID != "" {
		// Only a void names a grant, so every other posting hashes as
		// before.
		writeField(h, p.GrantID)
	}
	if p.Terms.given() {
		// Only terms other than the defaults are hashed, so that a key
		// first used before grants existed replays as it did.
		writeField(h, string(p.Terms.Category))
		binary.BigEndian.PutUint64(n[:], uint64(p.Terms.Priority))
		h.Write(n[:])
		binary.BigEndian.PutUint64(n[:], uint64(p.Terms.ExpiresAt.UnixMicro()))
		h.Write(n[:])
	}
	if p.HoldID != "" {
		// Only captures hash a hold, so that other keys replay as before.
		writeField(h, p.HoldID)
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

func writeField(h interface{ Write([]byte) (int, error) }, s string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

// Result is what a posting produced: the body of the first response, kept so
// that a replay answers the same, balance of that time included.
type Result struct {
	EntryID   string       `json:"entry_id"`
	Balance   money.Amount `json:"balance"`
	Currency  string       `json:"currency"`
	Spendable bool         `json:"spendable"`
	// Reason says why Spendable is false: ReasonInsufficientBalance,
	// ReasonBudgetExhausted or ReasonAccountClosed.
	Reason  string `json:"reason,omitempty"`
	TopUpID string `json:"top_up_id,omitempty"`
	// GrantID is the grant a credit made.
	GrantID   string    `json:"grant_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`

	// Available is the account's available credit right after the
	// posting, for the plan's Automatic Top-Up decision; it is not kept
	// for replays.
	Available money.Amount `json:"-"`

	// Replayed is true when the result is the stored first response.
	Replayed bool `json:"-"`
	// Err is the posting's own refusal; other postings of the group are
	// unaffected by it.
	Err error `json:"-"`
}

// Reasons a posting's result (or an account, or a subject) is not
// spendable: the operator should stop that account or subject.
const (
	ReasonInsufficientBalance = "insufficient_balance"
	ReasonBudgetExhausted     = "budget_exhausted"
)

// Store keeps accounts and their ledgers. Methods return *apperr.Error with
// NotFound for unknown ids and Invalid for a bad cursor; any other error is
// internal.
type Store interface {
	// CreateAccount inserts a new account and its first API key (see
	// DefaultKey).
	CreateAccount(ctx context.Context, a Account, key APIKey) error
	// Account returns the account with id.
	Account(ctx context.Context, id string) (Account, error)
	// AccountByKeyHash returns the account holding the API key that hashes
	// to keyHash; NotFound when none does (or the key was revoked).
	AccountByKeyHash(ctx context.Context, keyHash string) (Account, error)
	// Accounts lists accounts, newest first; the bool says whether more follow.
	Accounts(ctx context.Context, p Page) ([]Account, bool, error)
	// UpdateAccount changes the e-mail and/or status of an account.
	UpdateAccount(ctx context.Context, id string, u AccountUpdate) (Account, error)
	// Post applies postings in order, in one transaction, and returns one
	// result each. A posting's own refusal is in its Result.Err; the error
	// return means nothing was written.
	Post(ctx context.Context, postings []Posting) ([]Result, error)
	// Entries lists an account's entries, newest first.
	Entries(ctx context.Context, accountID string, p Page) ([]Entry, bool, error)
	// Grants lists an account's grants, newest first; those of status
	// only, when it is not empty.
	Grants(ctx context.Context, accountID string, status GrantStatus, p Page) ([]Grant, bool, error)
	// Grant returns one of an account's grants; NotFound when the account
	// has no such grant.
	Grant(ctx context.Context, accountID, id string) (Grant, error)
	// Credit is what remains of an account's active grants, by category.
	Credit(ctx context.Context, accountID string) (paid, promotional money.Amount, err error)
	// Verify recomputes every balance from its entries and checks every
	// invariant, returning one Violation per broken rule.
	Verify(ctx context.Context) ([]Violation, error)
	// Meta reads a setting of the installation (the admin key hash); ok is
	// false when it was never set.
	Meta(ctx context.Context, key string) (value string, ok bool, err error)
	// SetMetaIfAbsent stores value under key unless the key exists, and
	// returns what is stored afterwards.
	SetMetaIfAbsent(ctx context.Context, key, value string) (string, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
}

// AccountUpdate changes what is non-nil.
type AccountUpdate struct {
	Email  *string
	Status *Status
}

// Violation is one broken invariant found by Verify.
type Violation struct {
	AccountID string
	Problem   string
}

// Event is one notification for the outbox, written in the transaction of
// the change that caused it: its type (such as "balance.low") and its data
// as the wire shows it. ID is set by whoever plans the change, so that ids
// follow the order of the decisions; when empty the store assigns one.
type Event struct {
	ID        string
	AccountID string
	Type      string
	Data      any
}

// TimeFormat is the one wire format of times, in the API's answers and in
// event data alike: RFC 3339 in UTC with exactly six fraction digits, so
// that clients parse one shape and times sort as text.
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// FormatTime writes t in TimeFormat, in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// Day is one account's totals for one calendar day (UTC), kept up to date
// with every balance change so that the console's charts and preview never
// read the entries of a busy account.
type Day struct {
	Day            time.Time
	Usage, Credits money.Amount
	TopUps         int
	// TopUpCredits is the part of Credits that top-ups brought.
	TopUpCredits money.Amount
	Closing, Low money.Amount
	// Removed is what left the balance other than as usage: expirations
	// and voids. Credits - Usage - Removed is the day's change.
	Removed money.Amount
}
