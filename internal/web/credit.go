package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// The account's credit as grants (PRODUCT.md "Credit grants and holds"):
// what remains of paid and promotional credit and what expires soon, on
// the overview; what funded each transaction; and the Credit page, which
// lists the grants as GET …/grants does.

const (
	// expiringWindow is how far ahead the overview looks for credit that
	// expires.
	expiringWindow = 30 * 24 * time.Hour
	// expiringShown is how many expiring grants the overview lists; the
	// Credit page has the rest.
	expiringShown = 5
	// grantsPerPage is the length of the Credit page's table.
	grantsPerPage = 20
)

// creditSummary is the account's credit by category, for the overview and
// the Credit page.
type creditSummary struct {
	Paid, Promotional string
	// Overdraft is what usage took beyond every grant ("" when none):
	// the next grant pays it back first.
	Overdraft string
	// Expiring are the active grants that expire within expiringWindow,
	// soonest first; MoreExpiring says there are more than those shown.
	Expiring     []expiringRow
	MoreExpiring bool
}

type expiringRow struct {
	ID, Short, Amount, Category, When, WhenISO string
}

// creditOf reads what remains of the account's credit by category, and
// the grants that expire before now + expiringWindow (one more than shown,
// to know whether there are more).
func (c *Console) creditOf(ctx context.Context, acct ledger.Account, now time.Time) (creditSummary, error) {
	cur := acct.Currency
	paid, promo, err := c.ledger.Credit(ctx, acct.ID)
	if err != nil {
		return creditSummary{}, err
	}
	s := creditSummary{Paid: formatMoney(paid, cur), Promotional: formatMoney(promo, cur)}
	// A new grant pays overdraft back first, so there is overdraft only
	// once every grant is spent: the balance is then below zero, and it
	// is the overdraft.
	if acct.Balance < 0 {
		s.Overdraft = formatMoney(acct.Balance, cur)
	}
	soon, err := c.ledger.GrantsExpiringBefore(ctx, acct.ID, now.Add(expiringWindow), expiringShown+1)
	if err != nil {
		return creditSummary{}, err
	}
	if len(soon) > expiringShown {
		soon, s.MoreExpiring = soon[:expiringShown], true
	}
	for _, g := range soon {
		s.Expiring = append(s.Expiring, expiringRow{ID: g.ID, Short: shortID(g.ID), Amount: formatMoney(g.Remaining, cur),
			Category: string(g.Category), When: formatTime(g.ExpiresAt), WhenISO: isoTime(g.ExpiresAt)})
	}
	return s, nil
}

// fundingLine is one line of what a transaction took: a grant (its short
// id, the full one in a title) or overdraft, and the amount.
type fundingLine struct {
	Short, Full, Category, Amount string
}

// grantMade is the grant a credit made, with its terms.
type grantMade struct {
	Short, Full, Category string
	// Expires is when it expires, "" for never.
	Expires, ExpiresISO string
}

var kindLabels = map[ledger.Kind]string{ledger.KindUsage: "Usage", ledger.KindCredit: "Credit", ledger.KindTopUp: "Top-up",
	ledger.KindRefund: "Refund", ledger.KindRefundReversal: "Refund reversed", ledger.KindDispute: "Dispute",
	ledger.KindDisputeReversal: "Dispute won", ledger.KindExpiration: "Expired credit", ledger.KindVoid: "Voided credit",
	ledger.KindAdjustment: "Adjustment"}

// kindLabel names an entry's kind in words; an unknown kind as it is.
func kindLabel(k ledger.Kind) string {
	if l, ok := kindLabels[k]; ok {
		return l
	}
	return string(k)
}

// entryRows makes the transactions table: each entry with what funded it
// (negative entries) or the grant it made (credits), those grants read in
// one query.
func (c *Console) entryRows(ctx context.Context, acct ledger.Account, entries []ledger.Entry) ([]entryRow, error) {
	cur := acct.Currency
	var made []string
	for _, e := range entries {
		if e.Amount > 0 && e.GrantID != "" {
			made = append(made, e.GrantID)
		}
	}
	grants, err := c.ledger.GrantsByID(ctx, acct.ID, made)
	if err != nil {
		return nil, err
	}
	rows := make([]entryRow, 0, len(entries))
	for _, e := range entries {
		desc := e.Description
		if desc == "" {
			desc = kindLabel(e.Kind)
		}
		row := entryRow{ID: e.ID, When: formatTime(e.CreatedAt), WhenISO: isoTime(e.CreatedAt), Kind: kindLabel(e.Kind),
			KindClass: strings.ReplaceAll(string(e.Kind), "_", "-"), Description: desc, Subject: e.Subject,
			Amount: formatSigned(e.Amount, cur), Balance: formatMoney(e.BalanceAfter, cur), Credit: e.Amount > 0}
		for _, f := range e.Funding {
			row.Funding = append(row.Funding, fundingLine{Short: shortID(f.GrantID), Full: f.GrantID, Category: string(f.Category),
				Amount: formatMoney(f.Amount, cur)})
		}
		if g, ok := grants[e.GrantID]; ok && e.Amount > 0 {
			row.Grant = &grantMade{Short: shortID(g.ID), Full: g.ID, Category: string(g.Category)}
			if !g.ExpiresAt.IsZero() {
				row.Grant.Expires, row.Grant.ExpiresISO = formatTime(g.ExpiresAt), isoTime(g.ExpiresAt)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// shortID writes an id for reading, not copying: its prefix and its last
// six characters ("grt_…7k2m9q"); the page keeps the whole id in a title.
func shortID(id string) string {
	const tail = 6
	prefix, rest, ok := strings.Cut(id, "_")
	if !ok || len(rest) <= tail+1 {
		return id
	}
	return prefix + "_…" + rest[len(rest)-tail:]
}

type creditPage struct {
	creditSummary
	Status  string // the filter, "" for every grant
	Filters []grantFilter
	Rows    []grantRow
	Older   string
	Paged   bool
}

type grantFilter struct {
	Label, Query string
	Current      bool
}

type grantRow struct {
	ID, Short, Category, Source, SourceID, SourceShort, Amount, Remaining, Expires, ExpiresISO, Status, StatusClass, Added, AddedISO string
	Priority                                                                                                                         int
}

var grantSources = map[ledger.GrantSource]string{ledger.SourceTopUp: "Top-up", ledger.SourceCredit: "Credit",
	ledger.SourceAdjustment: "Adjustment", ledger.SourceDisputeReversal: "Dispute won", ledger.SourceMigration: "Balance before grants"}

var grantStatuses = []ledger.GrantStatus{ledger.GrantActive, ledger.GrantUsed, ledger.GrantExpired, ledger.GrantVoided}

// credit is the Credit page: paid and promotional credit, what expires
// soon, and the grants, newest first, of one status or all, as GET
// …/grants lists them.
func (c *Console) credit(w http.ResponseWriter, q *request) {
	ctx, cur := q.Context(), q.acct.Currency
	status := ledger.GrantStatus(q.URL.Query().Get("status"))
	if status != "" && !containsStatus(status) {
		c.fail(w, q.Request, apperr.Invalidf("status", "must be active, used, expired or voided"))
		return
	}
	sum, err := c.creditOf(ctx, q.acct, c.clock.Now())
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	after := q.URL.Query().Get("starting_after")
	grants, more, err := c.ledger.Grants(ctx, q.acct.ID, status, ledger.Page{Limit: grantsPerPage, StartingAfter: after})
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	p := creditPage{creditSummary: sum, Status: string(status), Paged: after != ""}
	p.Filters = append(p.Filters, grantFilter{Label: "All", Current: status == ""})
	for _, s := range grantStatuses {
		p.Filters = append(p.Filters, grantFilter{Label: grantStatusLabel(s), Query: "?status=" + string(s), Current: s == status})
	}
	for _, g := range grants {
		p.Rows = append(p.Rows, grantRowOf(g, cur))
	}
	if more && len(grants) > 0 {
		p.Older = grants[len(grants)-1].ID
	}
	c.render(w, q.Request, "credit", q.view("Credit", "credit", p))
}

func containsStatus(s ledger.GrantStatus) bool {
	for _, x := range grantStatuses {
		if x == s {
			return true
		}
	}
	return false
}

func grantStatusLabel(s ledger.GrantStatus) string {
	return strings.ToUpper(string(s[:1])) + string(s[1:])
}

func grantRowOf(g ledger.Grant, cur money.Currency) grantRow {
	r := grantRow{ID: g.ID, Short: shortID(g.ID), Category: string(g.Category), Source: grantSources[g.Source], SourceID: g.SourceID,
		SourceShort: shortID(g.SourceID), Amount: formatMoney(g.Amount, cur), Remaining: formatMoney(g.Remaining, cur),
		Priority: g.Priority, Status: grantStatusLabel(g.Status), StatusClass: string(g.Status), Added: formatTime(g.CreatedAt),
		AddedISO: isoTime(g.CreatedAt)}
	if r.Source == "" {
		r.Source = string(g.Source)
	}
	if !g.ExpiresAt.IsZero() {
		r.Expires, r.ExpiresISO = formatTime(g.ExpiresAt), isoTime(g.ExpiresAt)
	}
	return r
}
