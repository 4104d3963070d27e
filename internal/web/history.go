package web

import (
	"net/http"

	"github.com/topup/topup/internal/ledger"
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
}

// history lists every top-up, newest first: status, amount, trigger, card
// and failure reason, with a way to finish one waiting for 3-D Secure and
// the receipt of each that succeeded; and offers a month's statement.
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
	if more && len(tus) > 0 {
		p.Older = tus[len(tus)-1].ID
	}
	c.render(w, q.Request, "history", q.view("Top-up history", "history", p))
}
