package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// formatTime writes t in the API's one time format (ledger.TimeFormat).
func formatTime(t time.Time) string { return ledger.FormatTime(t) }

// list is the shape of every list: {data, has_more}.
type list[T any] struct {
	Data    []T  `json:"data"`
	HasMore bool `json:"has_more"`
}

// page reads limit and starting_after: limit defaults to 10, at most 100.
func page(r *http.Request) (ledger.Page, error) {
	p := ledger.Page{Limit: 10, StartingAfter: r.URL.Query().Get("starting_after")}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return p, apperr.Invalidf("limit", "must be a whole number from 1 to 100")
		}
		p.Limit = n
	}
	return p, nil
}

// pageOf cuts a whole newest-first list to the page asked for, for the
// lists an account keeps few of (cards, settings changes): the same limit and
// starting_after rules as every other list.
func pageOf[T any](items []T, id func(T) string, p ledger.Page) ([]T, bool, error) {
	start := 0
	if p.StartingAfter != "" {
		i := slices.IndexFunc(items, func(t T) bool { return id(t) == p.StartingAfter })
		if i < 0 {
			return nil, false, apperr.Invalidf("starting_after", "no %s in this list", p.StartingAfter)
		}
		start = i + 1
	}
	rest := items[start:]
	if len(rest) > p.Limit {
		return rest[:p.Limit], true, nil
	}
	return rest, false, nil
}

// resultJSON is the body of a usage or credit response.
type resultJSON struct {
	EntryID   string `json:"entry_id"`
	Balance   string `json:"balance"`
	Currency  string `json:"currency"`
	Spendable bool   `json:"spendable"`
	// Reason says why spendable is false: insufficient_balance,
	// budget_exhausted or account_closed.
	Reason  string `json:"reason,omitempty"`
	TopUpID string `json:"top_up_id,omitempty"`
	// GrantID is the grant a credit made.
	GrantID   string `json:"grant_id,omitempty"`
	CreatedAt string `json:"created_at"`
}

func toResultJSON(r ledger.Result) resultJSON {
	cur, _ := money.LookupCurrency(r.Currency)
	return resultJSON{EntryID: r.EntryID, Balance: r.Balance.Format(cur), Currency: cur.Code, Spendable: r.Spendable, Reason: r.Reason,
		TopUpID: r.TopUpID, GrantID: r.GrantID, CreatedAt: formatTime(r.CreatedAt)}
}

// entryJSON is a ledger entry on the wire.
type entryJSON struct {
	ID             string `json:"id"`
	Kind           string `json:"kind"`
	Amount         string `json:"amount"`
	BalanceAfter   string `json:"balance_after"`
	Description    string `json:"description"`
	Subject        string `json:"subject,omitempty"`
	IdempotencyKey string `json:"idempotency_key"`
	TopUpID        string `json:"top_up_id,omitempty"`
	// GrantID is the grant a credit made, or the one an expiration or a
	// void took out; HoldID the hold a capture settled. Both are null
	// otherwise.
	GrantID *string `json:"grant_id"`
	HoldID  *string `json:"hold_id"`
	// Funding says which grants a negative entry took its money from;
	// null on positive entries.
	Funding   []fundingJSON `json:"funding"`
	CreatedAt string        `json:"created_at"`
}

// fundingJSON is one line of an entry's funding: grant_id null for what
// overdraft covered.
type fundingJSON struct {
	GrantID  *string `json:"grant_id"`
	Category string  `json:"category"`
	Amount   string  `json:"amount"`
}

// orNull is nil for "", for the fields the wire shows as null when absent.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toEntryJSON(e ledger.Entry, c money.Currency) entryJSON {
	out := entryJSON{ID: e.ID, Kind: string(e.Kind), Amount: e.Amount.Format(c), BalanceAfter: e.BalanceAfter.Format(c),
		Description: e.Description, Subject: e.Subject, IdempotencyKey: e.IdempotencyKey, TopUpID: e.TopUpID,
		GrantID: orNull(e.GrantID), HoldID: orNull(e.HoldID), CreatedAt: formatTime(e.CreatedAt)}
	for _, f := range e.Funding {
		out.Funding = append(out.Funding, fundingJSON{GrantID: orNull(f.GrantID), Category: string(f.Category), Amount: f.Amount.Format(c)})
	}
	return out
}

// grantJSON is a grant on the wire, as event data shows it too.
type grantJSON = ledger.GrantView

func toGrantJSON(g ledger.Grant, c money.Currency) grantJSON { return g.View(c) }

// creditJSON is what remains of an account's grants, by category.
type creditJSON struct {
	Paid        string `json:"paid"`
	Promotional string `json:"promotional"`
}

// accountJSON is an account on the wire.
type accountJSON struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Currency  string `json:"currency"`
	Balance   string `json:"balance"`
	Status    string `json:"status"`
	Spendable bool   `json:"spendable"`
	// Reason says why spendable is false: account_closed,
	// insufficient_balance or budget_exhausted.
	Reason    string `json:"reason,omitempty"`
	CreatedAt string `json:"created_at"`
	APIKey    string `json:"api_key,omitempty"`
	// Credit, Held and Available are set on GET /v1/accounts/{id}:
	// available is the balance less what holds reserve.
	Credit    *creditJSON `json:"credit,omitempty"`
	Held      string      `json:"held,omitempty"`
	Available string      `json:"available,omitempty"`
	// AutoTopUp is set on GET /v1/accounts/{id}.
	AutoTopUp *settingsJSON `json:"auto_top_up,omitempty"`
}

func toAccountJSON(a ledger.Account) accountJSON {
	return accountJSON{ID: a.ID, Email: a.Email, Currency: a.Currency.Code, Balance: a.Balance.Format(a.Currency),
		Status: string(a.Status), Spendable: a.Spendable(), Reason: a.StopReason(), CreatedAt: formatTime(a.CreatedAt)}
}
