package ledger

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/money"
)

// Category says what kind of money a grant holds (PRODUCT.md "Credit grants
// and holds"): paid for, or given. Overdraft names what no grant covered.
type Category string

// Categories of grants and of funding lines.
const (
	Paid        Category = "paid"
	Promotional Category = "promotional"
	Overdraft   Category = "overdraft"
)

// GrantSource says what made a grant.
type GrantSource string

// Sources of grants.
const (
	SourceTopUp           GrantSource = "top_up"
	SourceCredit          GrantSource = "credit"
	SourceAdjustment      GrantSource = "adjustment"
	SourceDisputeReversal GrantSource = "dispute_reversal"
	SourceMigration       GrantSource = "migration"
)

// GrantStatus is where a grant is in its life.
type GrantStatus string

// Grant statuses: active while it may be spent; used once spent to zero;
// expired or voided once what remained left the balance.
const (
	GrantActive  GrantStatus = "active"
	GrantUsed    GrantStatus = "used"
	GrantExpired GrantStatus = "expired"
	GrantVoided  GrantStatus = "voided"
)

// Default priorities: free credit is spent first unless the operator says
// otherwise.
const (
	DefaultPromotionalPriority = 10
	DefaultPaidPriority        = 50
	MaxPriority                = 100
	// MaxGrantLifetime bounds expires_at: at most ten years ahead.
	MaxGrantLifetime = 10 * 365 * 24 * time.Hour
)

// Grant is one amount that added credit, and what remains of it.
type Grant struct {
	ID        string
	AccountID string
	Category  Category
	Source    GrantSource
	// SourceID is the top-up, the credit's entry or the dispute it came
	// from.
	SourceID  string
	Amount    money.Amount
	Remaining money.Amount
	Priority  int
	// ExpiresAt is zero for a grant that never expires.
	ExpiresAt time.Time
	Status    GrantStatus
	CreatedAt time.Time
	// PaidBack is what the grant paid of the account's overdraft when it
	// was made (Add): its remaining started at Amount - PaidBack.
	PaidBack money.Amount
}

// GrantTerms are what a credit says of the grant it makes. The zero value
// is the default grant: promotional, priority 10, never expiring. Source
// and SourceID, when empty, follow the posting (its kind; the credit's
// entry).
type GrantTerms struct {
	Category  Category
	Priority  int
	ExpiresAt time.Time
	Source    GrantSource
	SourceID  string
}

// given reports whether t differs from the default grant.
func (t GrantTerms) given() bool {
	return t.Category != "" && (t.Category != Promotional || t.Priority != DefaultPromotionalPriority || !t.ExpiresAt.IsZero())
}

// grant returns the grant that a credit of amount, recorded as entry, makes
// on these terms.
func (t GrantTerms) grant(id string, e *Entry) *Grant {
	g := &Grant{ID: id, AccountID: e.AccountID, Category: t.Category, Priority: t.Priority, ExpiresAt: t.ExpiresAt,
		Source: t.Source, SourceID: t.SourceID, Amount: e.Amount, CreatedAt: e.CreatedAt}
	if g.Category == "" {
		g.Category, g.Priority = Promotional, DefaultPromotionalPriority
	}
	if g.Source == "" {
		switch e.Kind {
		case KindAdjustment:
			g.Source = SourceAdjustment
		case KindTopUp:
			g.Source = SourceTopUp
		default:
			g.Source = SourceCredit
		}
	}
	if g.SourceID == "" {
		g.SourceID = e.ID
		if e.TopUpID != "" {
			g.SourceID = e.TopUpID
		}
	}
	return g
}

// ExpiredAt reports whether the grant may no longer be spent at now: its
// expires_at has come.
func (g *Grant) ExpiredAt(now time.Time) bool {
	return !g.ExpiresAt.IsZero() && !now.Before(g.ExpiresAt)
}

// DefaultPriority is the priority of a grant of category c when the
// operator gives none.
func DefaultPriority(c Category) int {
	if c == Paid {
		return DefaultPaidPriority
	}
	return DefaultPromotionalPriority
}

// CheckGrantTerms validates what an operator may choose of a grant: its
// category, priority (0–100) and expiry (none, or a future time at most ten
// years ahead), each refusal naming its field.
func CheckGrantTerms(c Category, priority int, expiresAt time.Time, now time.Time) error {
	switch {
	case c != Paid && c != Promotional:
		return apperr.Invalidf("category", "must be paid or promotional")
	case priority < 0 || priority > MaxPriority:
		return apperr.Invalidf("priority", "must be a whole number from 0 to %d", MaxPriority)
	case expiresAt.IsZero():
		return nil
	case !expiresAt.After(now):
		return apperr.Invalidf("expires_at", "must be in the future")
	case expiresAt.Sub(now) > MaxGrantLifetime:
		return apperr.Invalidf("expires_at", "must be at most ten years ahead")
	}
	return nil
}

// SpendsBefore compares two grants in the spending order (negative: a is
// spent before b), for checks outside the ledger.
func SpendsBefore(a, b *Grant) int { return spendsBefore(a, b) }

// spendsBefore is the spending order: lowest priority first, then the
// soonest expiry (grants that never expire last), then the oldest, then the
// id, so that the order is total.
func spendsBefore(a, b *Grant) int {
	if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
		return c
	}
	switch {
	case a.ExpiresAt.IsZero() != b.ExpiresAt.IsZero():
		if a.ExpiresAt.IsZero() {
			return 1
		}
		return -1
	case !a.ExpiresAt.Equal(b.ExpiresAt):
		return a.ExpiresAt.Compare(b.ExpiresAt)
	case !a.CreatedAt.Equal(b.CreatedAt):
		return a.CreatedAt.Compare(b.CreatedAt)
	}
	return cmp.Compare(a.ID, b.ID)
}

// Funding is one line of what a negative entry took, from a grant or (with
// an empty GrantID) from overdraft. Amount is positive.
type Funding struct {
	GrantID  string
	Category Category
	Amount   money.Amount
}

// Expiration is a grant that expired with something left: that amount
// leaves the balance as an expiration entry funded by the grant.
type Expiration struct {
	Grant  *Grant
	Amount money.Amount
}

// Wallet is an account's credit as grants: its active grants in spending
// order and the overdraft that no grant covered. The store loads it inside
// the account's lock; the plan changes it in memory; the store writes back
// the grants listed by Changed.
type Wallet struct {
	grants    []*Grant // active, in spending order
	overdraft money.Amount
	changed   map[string]*Grant
	// inactive are grants of the account that are no longer active, which
	// the store loaded because a posting names them (Remember).
	inactive map[string]*Grant
}

// NewWallet returns the wallet of an account with these active grants and
// overdraft.
func NewWallet(active []*Grant, overdraft money.Amount) *Wallet {
	w := &Wallet{grants: slices.Clone(active), overdraft: overdraft}
	slices.SortFunc(w.grants, spendsBefore)
	return w
}

// Overdraft is what usage took beyond every grant, not yet paid back.
func (w *Wallet) Overdraft() money.Amount { return w.overdraft }

// Balance is what the grants hold less the overdraft.
func (w *Wallet) Balance() money.Amount {
	paid, promo := w.Credit()
	return paid + promo - w.overdraft
}

// Credit is what remains of the active grants, by category.
func (w *Wallet) Credit() (paid, promotional money.Amount) {
	for _, g := range w.grants {
		if g.Category == Paid {
			paid += g.Remaining
		} else {
			promotional += g.Remaining
		}
	}
	return paid, promotional
}

// Grants returns the active grants in spending order.
func (w *Wallet) Grants() []*Grant { return w.grants }

// Changed returns the grants whose remaining or status changed, in no
// particular order, for the store to write back.
func (w *Wallet) Changed() []*Grant {
	out := make([]*Grant, 0, len(w.changed))
	for _, g := range w.changed {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *Grant) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (w *Wallet) touch(g *Grant) {
	if w.changed == nil {
		w.changed = map[string]*Grant{}
	}
	w.changed[g.ID] = g
}

// Add puts a new grant in the wallet. While the account is in overdraft the
// grant first pays it back: its remaining starts at its amount less the
// overdraft, at least zero (a grant left with nothing is used at once).
func (w *Wallet) Add(g *Grant) {
	payback := min(g.Amount, w.overdraft)
	w.overdraft -= payback
	g.PaidBack = payback
	g.Remaining = g.Amount - payback
	g.Status = GrantActive
	if g.Remaining == 0 {
		g.Status = GrantUsed
	}
	w.touch(g)
	if g.Status == GrantActive {
		i, _ := slices.BinarySearchFunc(w.grants, g, spendsBefore)
		w.grants = slices.Insert(w.grants, i, g)
	}
}

// Expire takes out of the wallet every grant whose expiry has come by now:
// a grant with something left becomes expired and is returned, for its
// expiration entry; one with nothing left just becomes used.
func (w *Wallet) Expire(now time.Time) []Expiration {
	var out []Expiration
	kept := w.grants[:0]
	for _, g := range w.grants {
		if !g.ExpiredAt(now) {
			kept = append(kept, g)
			continue
		}
		w.touch(g)
		if g.Remaining == 0 {
			g.Status = GrantUsed
			continue
		}
		out = append(out, Expiration{Grant: g, Amount: g.Remaining})
		g.Remaining, g.Status = 0, GrantExpired
	}
	clear(w.grants[len(kept):])
	w.grants = kept
	return out
}

// Spend takes amount (positive) from the grants in spending order and what
// they cannot cover from overdraft, and returns the funding lines in that
// order. Callers expire the wallet at now first (Debit does both), so that
// no expired grant is ever drawn on.
func (w *Wallet) Spend(amount money.Amount) ([]Funding, error) {
	if amount <= 0 {
		return nil, fmt.Errorf("ledger: spend %d: not positive", amount)
	}
	var covered money.Amount
	for _, g := range w.grants {
		covered += min(g.Remaining, amount-covered)
	}
	if left := amount - covered; left > 0 {
		if _, err := money.Add(w.overdraft, left); err != nil {
			return nil, apperr.Invalidf("amount", "the overdraft would overflow")
		}
	}
	var out []Funding
	left := amount
	used := 0
	for _, g := range w.grants {
		if left == 0 {
			break
		}
		take := min(g.Remaining, left)
		if take == 0 {
			continue
		}
		g.Remaining -= take
		left -= take
		out = append(out, Funding{GrantID: g.ID, Category: g.Category, Amount: take})
		w.touch(g)
		if g.Remaining == 0 {
			g.Status = GrantUsed
			used++
		}
	}
	if used > 0 {
		w.grants = slices.DeleteFunc(w.grants, func(g *Grant) bool { return g.Status != GrantActive })
	}
	if left > 0 {
		w.overdraft += left
		out = append(out, Funding{Category: Overdraft, Amount: left})
	}
	return out, nil
}

// Debit is what a negative entry does to the wallet at now: the grants
// whose expiry has come expire first (their expiration entries are written
// before the debit's), then amount is spent.
func (w *Wallet) Debit(amount money.Amount, now time.Time) ([]Expiration, []Funding, error) {
	exp := w.Expire(now)
	f, err := w.Spend(amount)
	return exp, f, err
}

// Void takes what remains of an active grant out of the wallet; the grant
// becomes voided and the amount is returned for the void entry (zero when
// nothing remained). A grant that is not active (one that left the wallet,
// or one the store remembered) answers 409 conflict; one the wallet never
// heard of, 404 not_found.
func (w *Wallet) Void(id string) (*Grant, money.Amount, error) {
	i := slices.IndexFunc(w.grants, func(g *Grant) bool { return g.ID == id })
	if i < 0 {
		if w.changed[id] == nil && w.inactive[id] == nil {
			return nil, 0, apperr.NotFoundf("no grant %s", id)
		}
		return nil, 0, apperr.New(apperr.Conflict, "grant %s is not active: it is used up, expired or voided", id)
	}
	g := w.grants[i]
	amount := g.Remaining
	g.Remaining, g.Status = 0, GrantVoided
	w.touch(g)
	w.grants = slices.Delete(w.grants, i, i+1)
	return g, amount, nil
}

// Active returns the active grant with id, or nil.
func (w *Wallet) Active(id string) *Grant {
	for _, g := range w.grants {
		if g.ID == id {
			return g
		}
	}
	return nil
}

// Remember tells the wallet of a grant of its account that is no longer
// active (used, expired or voided), which a posting names: Void then
// answers 409 for it, not 404.
func (w *Wallet) Remember(g *Grant) {
	if w.inactive == nil {
		w.inactive = map[string]*Grant{}
	}
	w.inactive[g.ID] = g
}

// fundingCodes are the one-letter categories of a stored funding line.
var fundingCodes = map[Category]byte{Paid: 'p', Promotional: 'g', Overdraft: 'o'}

// EncodeFunding writes funding lines compactly for an entry's row:
// "grant_id:c:amount" per line, c being p (paid), g (promotional: given) or
// o (overdraft, with "-" for the grant), joined by ";". The debit path
// stores it with the entry, in the same insert.
func EncodeFunding(lines []Funding) string {
	var b strings.Builder
	for i, f := range lines {
		if i > 0 {
			b.WriteByte(';')
		}
		id := f.GrantID
		if id == "" {
			id = "-"
		}
		b.WriteString(id)
		b.WriteByte(':')
		b.WriteByte(fundingCodes[f.Category])
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(int64(f.Amount), 10))
	}
	return b.String()
}

// DecodeFunding reads what EncodeFunding wrote.
func DecodeFunding(s string) ([]Funding, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ";")
	out := make([]Funding, 0, len(parts))
	for _, p := range parts {
		fields := strings.Split(p, ":")
		if len(fields) != 3 || len(fields[1]) != 1 {
			return nil, fmt.Errorf("ledger: funding line %q", p)
		}
		n, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("ledger: funding line %q: amount", p)
		}
		f := Funding{GrantID: fields[0], Amount: money.Amount(n)}
		switch fields[1] {
		case "p":
			f.Category = Paid
		case "g":
			f.Category = Promotional
		case "o":
			f.Category, f.GrantID = Overdraft, ""
		default:
			return nil, fmt.Errorf("ledger: funding line %q: category", p)
		}
		out = append(out, f)
	}
	return out, nil
}
