package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

// entriesPerPage is the length of the transactions table.
const entriesPerPage = 20

type overviewPage struct {
	Balance     string
	Spendable   bool
	Auto        string // Automatic Payments in one line
	AutoOn      bool
	Card        string // the default card, "" without one
	Amount      string // the Add credit field, kept after a refusal
	AmountError string
	Key         string // the Add credit form's idempotency key
	MinCharge   string
	Chart       chart
	// Credit is paid and promotional credit and what expires soon.
	Credit creditSummary
	// Held and Available are set when holds reserve credit: available is
	// what Automatic Top-Up and spendable look at. Holds lists the active
	// ones (at most holdsShown; MoreHolds when there are more).
	Held, Available string
	Holds           []holdRow
	MoreHolds       bool
	Entries         []entryRow
	Older           string // starting_after for the next page, "" on the last
	Paged           bool   // not the first page
}

type entryRow struct {
	ID, When, WhenISO, Kind, KindClass, Description, Subject, Amount, Balance string
	Credit                                                                    bool
	// Funding is what a negative entry took, grant by grant; Grant the
	// grant a credit made.
	Funding []fundingLine
	Grant   *grantMade
}

func (c *Console) overview(w http.ResponseWriter, q *request) {
	v, err := c.overviewView(q, overviewPage{Key: ids.Secret("console-")})
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	if id := q.URL.Query().Get("top_up"); id != "" {
		if t, err := c.payments.TopUp(q.Context(), q.acct.ID, id); err == nil {
			v.Notice = c.topUpNotice(q, t)
		}
	}
	c.render(w, q.Request, "overview", v)
}

// overviewView gathers the billing overview: balance, paid and
// promotional credit and what expires soon, Add credit, the chart of the
// last 30 days and one page of transactions with what funded each.
func (c *Console) overviewView(q *request, p overviewPage) (view, error) {
	ctx, cur := q.Context(), q.acct.Currency
	p.Balance, p.Spendable, p.MinCharge = formatMoney(q.acct.Balance, cur), q.acct.Spendable(), formatMoney(cur.MinCharge, cur)
	st, _, err := c.payments.Settings(ctx, q.acct.ID)
	if err != nil {
		return view{}, err
	}
	cards, err := c.payments.Cards(ctx, q.acct.ID)
	if err != nil {
		return view{}, err
	}
	for _, card := range cards {
		if card.Default {
			p.Card = cardLabel(card)
		}
	}
	p.AutoOn = st.Enabled
	p.Auto = autoLine(st, cards, cur)
	now := c.clock.Now()
	rows, err := c.store.DailyTotals(ctx, q.acct.ID, windowStart(now))
	if err != nil {
		return view{}, err
	}
	var threshold *money.Amount
	if st.Enabled {
		threshold = st.Threshold
	}
	p.Chart = buildChart(buildHistory(rows, q.acct.Balance, q.acct.CreatedAt, now), cur, threshold)
	if p.Credit, err = c.creditOf(ctx, q.acct, now); err != nil {
		return view{}, err
	}
	if err := c.holdsOf(ctx, q.acct, now, &p); err != nil {
		return view{}, err
	}

	after := q.URL.Query().Get("starting_after")
	entries, more, err := c.ledger.Entries(ctx, q.acct.ID, ledger.Page{Limit: entriesPerPage, StartingAfter: after})
	if err != nil {
		return view{}, err
	}
	p.Paged = after != ""
	if p.Entries, err = c.entryRows(ctx, q.acct, entries); err != nil {
		return view{}, err
	}
	if more && len(entries) > 0 {
		p.Older = entries[len(entries)-1].ID
	}
	return q.view("Billing", "billing", p), nil
}

// holdsShown is how many active holds the overview lists.
const holdsShown = 10

type holdRow struct {
	ID, Short, Amount, Subject, Description, Expires, ExpiresISO string
}

// holdsOf fills the overview's held and available credit and its list of
// active holds (PRODUCT.md "Credit grants and holds"), newest first.
func (c *Console) holdsOf(ctx context.Context, acct ledger.Account, now time.Time, p *overviewPage) error {
	cur := acct.Currency
	if acct.Held > 0 {
		p.Held, p.Available = formatMoney(acct.Held, cur), formatMoney(acct.Available(), cur)
	}
	holds, more, err := c.ledger.Holds(ctx, acct.ID, ledger.HoldActive, ledger.Page{Limit: holdsShown})
	if err != nil {
		return err
	}
	p.MoreHolds = more
	for _, h := range holds {
		if h.StatusAt(now) != ledger.HoldActive {
			continue
		}
		p.Holds = append(p.Holds, holdRow{ID: h.ID, Short: shortID(h.ID), Amount: formatMoney(h.Amount, cur), Subject: h.Subject,
			Description: h.Description, Expires: formatTime(h.ExpiresAt), ExpiresISO: h.ExpiresAt.UTC().Format(time.RFC3339)})
	}
	return nil
}

// autoLine says in one line what Automatic Payments do.
func autoLine(st topup.Settings, cards []topup.Card, c money.Currency) string {
	if !st.Enabled || st.Threshold == nil || st.Target == nil {
		if st.DisabledReason != "" {
			return "Automatic Payments are off. " + disabledText(st.DisabledReason)
		}
		return "Automatic Payments are off."
	}
	card := "your default card"
	for _, cd := range cards {
		if (st.PaymentMethod == "" && cd.Default) || cd.ID == st.PaymentMethod {
			card = cardLabel(cd)
		}
	}
	return "Automatic Payments are on: when credit goes below " + formatMoney(*st.Threshold, c) + ", " + card +
		" is charged to bring it back up to " + formatMoney(*st.Target, c) + "."
}

// addCredit buys credit with the default card: a manual top-up through
// billing, as POST …/top_ups does, keyed by the form's idempotency key so
// that a double click charges once.
func (c *Console) addCredit(w http.ResponseWriter, q *request) {
	raw := strings.TrimSpace(q.PostFormValue("amount"))
	key := q.PostFormValue("idempotency_key")
	refuse := func(status int, msg string) {
		v, err := c.overviewView(q, overviewPage{Amount: raw, AmountError: msg, Key: ids.Secret("console-")})
		if err != nil {
			c.fail(w, q.Request, err)
			return
		}
		c.renderStatus(w, q.Request, status, "overview", v)
	}
	if _, err := input.IdempotencyKey("idempotency_key", &key); err != nil {
		refuse(http.StatusBadRequest, "The form has expired: reload the page and try again.")
		return
	}
	amount, err := parseMoneyField("amount", raw)
	if err != nil {
		refuse(http.StatusBadRequest, fieldMessage(apperr.As(err).Message))
		return
	}
	cards, err := c.payments.Cards(q.Context(), q.acct.ID)
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	if !hasDefault(cards) {
		refuse(http.StatusBadRequest, "Add a payment method first.")
		return
	}
	t, _, err := c.svc.ManualTopUp(q.Context(), q.acct, amount, "", key)
	if e := apperr.As(err); e != nil && e.Field != "" {
		refuse(http.StatusBadRequest, fieldMessage(e.Message))
		return
	}
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	redirect(w, q.Request, q.base()+"?top_up="+t.ID)
}

func hasDefault(cards []topup.Card) bool {
	for _, c := range cards {
		if c.Default {
			return true
		}
	}
	return false
}

// parseMoneyField reads an amount a person typed: spaces, a leading
// currency sign and thousands commas are forgiven; anything else the
// parser refuses is refused naming field. Empty is a refusal too.
func parseMoneyField(field, raw string) (money.Amount, error) {
	a, ok, err := optionalMoneyField(field, raw)
	if err == nil && !ok {
		err = apperr.Invalidf(field, "is required")
	}
	return a, err
}

// optionalMoneyField is parseMoneyField where empty means absent (ok false).
func optionalMoneyField(field, raw string) (money.Amount, bool, error) {
	s := strings.TrimSpace(raw)
	for _, sym := range []string{"$", "€", "£", "¥"} {
		s = strings.TrimSpace(strings.TrimPrefix(s, sym))
	}
	s = strings.ReplaceAll(s, ",", "")
	if s == "" {
		return 0, false, nil
	}
	a, err := money.Parse(s)
	if err != nil {
		return 0, true, apperr.Invalidf(field, "must be an amount such as 10.00")
	}
	return a, true, nil
}

// topUpNotice says what became of a top-up the customer just asked for.
func (c *Console) topUpNotice(q *request, t topup.TopUp) *notice {
	cur := q.acct.Currency
	amount := "credit"
	if t.Amount != nil {
		amount = formatMoney(*t.Amount, cur)
	}
	switch t.Status {
	case topup.Succeeded:
		return &notice{Kind: "success", Text: "Added " + amount + " to your credit."}
	case topup.Failed:
		return &notice{Kind: "error", Text: "Your payment of " + amount + " failed. " + reasonText(t.FailureCode) + " (" + t.FailureCode + ")"}
	case topup.RequiresAction:
		return &notice{Kind: "warning", Text: "Your bank asks you to confirm the payment of " + amount + ".",
			Link: c.svc.ActionURL(t), LinkText: "Complete authentication"}
	case topup.Canceled:
		return &notice{Kind: "info", Text: "The payment of " + amount + " was canceled. " + reasonText(t.FailureCode)}
	}
	return &notice{Kind: "info", Text: "Your payment of " + amount + " is processing. Reload this page in a moment to see the result.",
		Link: q.base() + "?top_up=" + t.ID, LinkText: "Reload"}
}
