package web

import (
	"net/http"
	"strings"

	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/topup"
)

// topUpsPerPage is the length of the top-up history table.
const topUpsPerPage = 20

type historyPage struct {
	Rows  []topUpRow
	Older string
	Paged bool
	// Month is the statement form's month: this one (UTC), YYYY-MM.
	Month string
	// Documents says whether receipts and statements are served.
	Documents bool
}

type topUpRow struct {
	ID, When, WhenISO, Status, StatusClass, Amount, Trigger, Card, Reason, Code, ActionURL string
	// Receipt is the receipt's page, for a top-up that succeeded.
	Receipt string
	// Later says what happened after the charge: each refund and dispute
	// with its state, newest first.
	Later []laterLine
}

// laterLine is one refund or dispute of a top-up, in words.
type laterLine struct {
	Text, Class string
}

// history lists every top-up, newest first: status, amount, trigger, card
// and failure reason, with a way to finish one waiting for 3-D Secure, the
// receipt of each that succeeded and its refunds and disputes with their
// state; and offers a month's statement. The operator refunds through the
// API only.
func (c *Console) history(w http.ResponseWriter, q *request) {
	ctx, cur := q.Context(), q.acct.Currency
	after := q.URL.Query().Get("starting_after")
	tus, more, err := c.payments.TopUps(ctx, q.acct.ID, ledger.Page{Limit: topUpsPerPage, StartingAfter: after})
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	cards, err := c.payments.Cards(ctx, q.acct.ID)
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	byID := map[string]topup.Card{}
	for _, cd := range cards {
		byID[cd.ID] = cd
	}
	p := historyPage{Paged: after != "", Month: c.clock.Now().UTC().Format("2006-01"), Documents: c.docs != nil}
	for _, t := range tus {
		row := topUpRow{ID: t.ID, When: formatTime(t.CreatedAt), WhenISO: isoTime(t.CreatedAt), Status: statusLabel(t.Status),
			StatusClass: string(t.Status), Trigger: triggerLabel(t.Trigger), Reason: reasonText(t.FailureCode), Code: t.FailureCode,
			ActionURL: c.svc.ActionURL(t), Amount: "—"}
		if t.Amount != nil {
			row.Amount = formatMoney(*t.Amount, cur)
		}
		if t.Status == topup.Succeeded && p.Documents {
			row.Receipt = q.base() + "/top_ups/" + t.ID + "/receipt"
		}
		switch cd, ok := byID[t.PaymentMethod]; {
		case ok:
			row.Card = cardLabel(cd)
		case t.PaymentMethod != "":
			row.Card = "Removed card"
		default:
			row.Card = "—"
		}
		p.Rows = append(p.Rows, row)
	}
	if err := c.addLater(q, tus, p.Rows); err != nil {
		c.fail(w, q.Request, err)
		return
	}
	if more && len(tus) > 0 {
		p.Older = tus[len(tus)-1].ID
	}
	c.render(w, q.Request, "history", q.view("Top-up history", "history", p))
}

// addLater adds to each row of a page of top-ups its refunds and disputes,
// read for the whole page at once.
func (c *Console) addLater(q *request, tus []topup.TopUp, rows []topUpRow) error {
	if c.after == nil {
		return nil
	}
	var ids []string
	for _, t := range tus {
		if t.Status == topup.Succeeded {
			ids = append(ids, t.ID)
		}
	}
	refunds, disputes, err := c.after.AfterCharge(q.Context(), q.acct.ID, ids)
	if err != nil {
		return err
	}
	cur := q.acct.Currency
	for i := range rows {
		for _, d := range disputes[rows[i].ID] {
			rows[i].Later = append(rows[i].Later, disputeLine(d, cur))
		}
		for _, r := range refunds[rows[i].ID] {
			rows[i].Later = append(rows[i].Later, refundLine(r, cur))
		}
	}
	return nil
}

// refundLine says a refund's amount and state: "Refund of $3.00 ·
// succeeded".
func refundLine(r refund.Refund, cur money.Currency) laterLine {
	return laterLine{Text: "Refund of " + formatMoney(r.Amount, cur) + " · " + string(r.Status), Class: "refund-" + string(r.Status)}
}

// disputeLine says a dispute's amount, reason and state, and what it
// withdrew: "Disputed $10.00 (fraudulent) · open, $10.00 withdrawn".
func disputeLine(d refund.DisputeRecord, cur money.Currency) laterLine {
	text := "Disputed " + formatMoney(d.Amount, cur)
	if d.Reason != "" {
		text += " (" + strings.ReplaceAll(d.Reason, "_", " ") + ")"
	}
	text += " · " + string(d.Status)
	switch {
	case d.Reinstated && d.Withdrawn > 0:
		text += ", " + formatMoney(d.Withdrawn, cur) + " given back"
	case d.Withdrawn > 0:
		text += ", " + formatMoney(d.Withdrawn, cur) + " withdrawn"
	}
	return laterLine{Text: text, Class: "dispute-" + string(d.Status)}
}
