package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

type methodsPage struct {
	Cards   []cardRow
	Sandbox bool
	Auto    autoView
	Dialog  dialogView
}

type cardRow struct {
	ID, Label, Brand, Last4, Expiry string
	Default, Expired, Charged       bool // Charged: the card Automatic Payments charge
}

// autoView is the Automatic Payments section: the switch and the state in
// words.
type autoView struct {
	On       bool
	HasCards bool
	State    string // on or off, with the amounts
	Limit    string // the monthly limit and what it used this month
	Why      string // why they were switched off
	Retry    string // a decline streak and when the next try comes
	Last     string // the last top-up
	Action   *notice
}

// dialogView is the settings popup: the values shown, refusals beside their
// fields, and the preview.
type dialogView struct {
	Open                                       bool
	Threshold, Target, MonthlyLimit, Card      string
	ThresholdErr, TargetErr, LimitErr, CardErr string
	Cards                                      []cardOption
	Preview                                    previewResult
	Symbol, Currency                           string
}

type cardOption struct {
	Value, Label string
	Selected     bool
}

// done are the messages a redirect after a form asks for (?done=…): codes,
// never text from the request, are reflected.
var done = map[string]notice{
	"card_added":          {Kind: "success", Text: "Payment method added."},
	"card_removed":        {Kind: "success", Text: "Payment method removed."},
	"card_removed_auto":   {Kind: "warning", Text: "Payment method removed. Automatic Payments charged it, so they were switched off."},
	"default":             {Kind: "success", Text: "Default payment method changed."},
	"saved":               {Kind: "success", Text: "Settings saved. Automatic Payments are on."},
	"saved_charging":      {Kind: "success", Text: "Settings saved. Your balance is below the new threshold, so a top-up has started."},
	"off":                 {Kind: "success", Text: "Automatic Payments are off. Your settings are kept for when you turn them back on."},
	"setup_canceled":      {Kind: "info", Text: "No payment method was added."},
	"first_card_add_auto": {Kind: "success", Text: "Payment method added. Turn on Automatic Payments so your credit never runs out."},
}

func (c *Console) methods(w http.ResponseWriter, q *request) {
	d := dialogView{Open: q.URL.Query().Get("settings") == "open"}
	v, err := c.methodsView(q, d, true)
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	if n, ok := done[q.URL.Query().Get("done")]; ok {
		v.Notice = &n
	}
	c.render(w, q.Request, "methods", v)
}

// methodsView gathers the Payment Methods page. With fill, the dialog shows
// the saved settings; otherwise d already holds what the person typed.
func (c *Console) methodsView(q *request, d dialogView, fill bool) (view, error) {
	ctx, cur := q.Context(), q.acct.Currency
	st, mtd, err := c.payments.Settings(ctx, q.acct.ID)
	if err != nil {
		return view{}, err
	}
	cards, err := c.payments.Cards(ctx, q.acct.ID)
	if err != nil {
		return view{}, err
	}
	tus, _, err := c.payments.TopUps(ctx, q.acct.ID, ledger.Page{Limit: 100})
	if err != nil {
		return view{}, err
	}
	sandbox, _ := c.svc.Payments()
	p := methodsPage{Sandbox: sandbox}
	now := c.clock.Now()
	charged := ""
	if st.Enabled {
		charged = st.PaymentMethod
		if charged == "" {
			for _, cd := range cards {
				if cd.Default {
					charged = cd.ID
				}
			}
		}
	}
	for _, cd := range cards {
		expired := cd.ExpYear < now.Year() || (cd.ExpYear == now.Year() && cd.ExpMonth < int(now.Month()))
		p.Cards = append(p.Cards, cardRow{ID: cd.ID, Label: cardLabel(cd), Brand: brandName(cd.Brand), Last4: cd.Last4,
			Expiry: twoDigits(cd.ExpMonth) + "/" + strconv.Itoa(cd.ExpYear), Default: cd.Default, Expired: expired, Charged: cd.ID == charged})
	}
	p.Auto = c.autoState(q, st, mtd, cards, tus)
	if fill {
		d.Threshold, d.Target, d.MonthlyLimit, d.Card = inputAmount(st.Threshold, cur), inputAmount(st.Target, cur), inputAmount(st.MonthlyLimit, cur), st.PaymentMethod
	}
	d.Symbol, d.Currency = symbols[cur.Code], strings.ToUpper(cur.Code)
	d.Cards = []cardOption{{Value: "", Label: "Default card", Selected: d.Card == ""}}
	for _, cd := range cards {
		label := cardLabel(cd)
		if cd.Default {
			d.Cards[0].Label = "Default (" + label + ")"
		}
		d.Cards = append(d.Cards, cardOption{Value: cd.ID, Label: label, Selected: d.Card == cd.ID})
	}
	if in, err := settingsInput(d.Threshold, d.Target, d.MonthlyLimit, d.Card); err == nil && in.Threshold != nil && in.Target != nil {
		d.Preview = c.computePreview(ctx, q.acct, st, cards, in)
	} else {
		d.Preview = previewResult{Lines: []string{"Enter both amounts to see what they would have done over the last 30 days."}}
	}
	p.Dialog = d
	return q.view("Payment methods", "methods", p), nil
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// autoState puts Automatic Payments' state in words: on or off, why they
// were switched off, a decline streak, the last top-up, and a 3-D Secure
// request waiting for the customer.
func (c *Console) autoState(q *request, st topup.Settings, mtd money.Amount, cards []topup.Card, tus []topup.TopUp) autoView {
	cur, now := q.acct.Currency, c.clock.Now()
	a := autoView{On: st.Enabled, HasCards: len(cards) > 0}
	byID := map[string]topup.Card{}
	for _, cd := range cards {
		byID[cd.ID] = cd
	}
	switch {
	case st.Enabled && st.Threshold != nil && st.Target != nil:
		a.State = autoLine(st, cards, cur)
		if st.MonthlyLimit != nil {
			a.Limit = "Monthly limit " + formatMoney(*st.MonthlyLimit, cur) + ": " + formatMoney(mtd, cur) + " used this month."
		} else {
			a.Limit = "No monthly limit."
		}
		if st.FailureStreak > 0 {
			a.Retry = "The last automatic charge failed (" + plural(st.FailureStreak, "failure", "failures") + " in a row; " +
				strconv.Itoa(topup.MaxFailuresInRow) + " switch Automatic Payments off)."
			if st.RetryAfter.After(now) {
				a.Retry += " The next try comes after " + formatTime(st.RetryAfter) + "."
			}
		}
	case st.Threshold != nil && st.Target != nil:
		a.State = "Automatic Payments are off. Your settings (below " + formatMoney(*st.Threshold, cur) + ", back up to " +
			formatMoney(*st.Target, cur) + ") are kept for when you turn them back on."
	default:
		a.State = "Automatic Payments are off. Turn them on and your credit is topped up whenever it runs low, so your usage never stops."
	}
	if !st.Enabled {
		a.Why = disabledText(st.DisabledReason)
	}
	if len(tus) > 0 {
		t := tus[0]
		line := "Last top-up: "
		if t.Amount != nil {
			line += formatMoney(*t.Amount, cur) + ", "
		}
		line += strings.ToLower(triggerLabel(t.Trigger)) + ", " + strings.ToLower(statusLabel(t.Status))
		if !t.CompletedAt.IsZero() {
			line += " on " + formatTime(t.CompletedAt)
		} else {
			line += " since " + formatTime(t.CreatedAt)
		}
		if cd, ok := byID[t.PaymentMethod]; ok {
			line += " (" + cardLabel(cd) + ")"
		}
		line += "."
		if t.FailureCode != "" {
			line += " " + reasonText(t.FailureCode)
		}
		a.Last = line
	}
	for _, t := range tus {
		if t.Status == topup.RequiresAction {
			amount := "A payment"
			if t.Amount != nil {
				amount = "A payment of " + formatMoney(*t.Amount, cur)
			}
			text := amount + " is waiting for you to confirm it with your bank (3-D Secure)."
			if !t.ActionExpires.IsZero() {
				text += " It can be completed until " + formatTime(t.ActionExpires) + "."
			}
			a.Action = &notice{Kind: "warning", Text: text, Link: c.svc.ActionURL(t), LinkText: "Complete authentication"}
			break
		}
	}
	return a
}

// settingsInput reads the dialog's fields into a save with enabled true:
// an empty monthly limit removes the cap, an empty card means the default.
func settingsInput(threshold, target, limit, card string) (topup.Input, error) {
	on := true
	in := topup.Input{Enabled: &on, MonthlyLimitSet: true}
	var err error
	var a money.Amount
	var ok bool
	if a, ok, err = optionalMoneyField("threshold", threshold); err != nil {
		return in, err
	} else if ok {
		in.Threshold = &a
	}
	var b money.Amount
	if b, ok, err = optionalMoneyField("target", target); err != nil {
		return in, err
	} else if ok {
		in.Target = &b
	}
	var l money.Amount
	if l, ok, err = optionalMoneyField("monthly_limit", limit); err != nil {
		return in, err
	} else if ok {
		in.MonthlyLimit = &l
	}
	if card != "" {
		in.PaymentMethod = &card
	}
	return in, nil
}

// saveSettings saves the dialog (enabled true) or switches Automatic
// Payments off (enabled false), through billing, as the API does: a refusal is
// shown beside its field, in the dialog left open, and nothing is saved.
func (c *Console) saveSettings(w http.ResponseWriter, q *request) {
	actor := "account:" + q.acct.ID
	if q.PostFormValue("enabled") != "true" {
		off := false
		if _, _, err := c.svc.SaveSettings(q.Context(), q.acct.ID, actor, topup.Input{Enabled: &off}); err != nil {
			c.fail(w, q.Request, err)
			return
		}
		redirect(w, q.Request, q.base()+"/payment_methods?done=off")
		return
	}
	d := dialogView{Open: true, Threshold: q.PostFormValue("threshold"), Target: q.PostFormValue("target"),
		MonthlyLimit: q.PostFormValue("monthly_limit"), Card: q.PostFormValue("payment_method")}
	in, err := settingsInput(d.Threshold, d.Target, d.MonthlyLimit, d.Card)
	var created *topup.TopUp
	if err == nil {
		_, created, err = c.svc.SaveSettings(q.Context(), q.acct.ID, actor, in)
	}
	if e := apperr.As(err); e != nil && e.Code == apperr.Invalid {
		msg := fieldMessage(e.Message)
		switch e.Field {
		case "threshold":
			d.ThresholdErr = msg
		case "target":
			d.TargetErr = msg
		case "monthly_limit":
			d.LimitErr = msg
		default:
			d.CardErr = msg
		}
		v, verr := c.methodsView(q, d, false)
		if verr != nil {
			c.fail(w, q.Request, verr)
			return
		}
		v.Notice = &notice{Kind: "error", Text: "Nothing was saved: " + fieldRefusal(e.Field, e.Message)}
		c.renderStatus(w, q.Request, http.StatusBadRequest, "methods", v)
		return
	}
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	if created != nil {
		redirect(w, q.Request, q.base()+"/payment_methods?done=saved_charging")
		return
	}
	redirect(w, q.Request, q.base()+"/payment_methods?done=saved")
}

// setupCard sends the browser to the provider's hosted card page (Stripe
// Checkout in setup mode, or the sandbox's page), which brings it back to
// setupReturn.
func (c *Console) setupCard(w http.ResponseWriter, q *request) {
	back := c.URL() + "/accounts/" + q.acct.ID + "/payment_methods"
	u, err := c.svc.StartCardSetup(q.Context(), q.acct, back+"/return", back+"?done=setup_canceled")
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	redirect(w, q.Request, u)
}

// setupReturn records the card the hosted page saved, through billing's
// CompleteCardSetup, as the API does: the provider refuses a session of another
// customer, so a session id cannot carry a card into this account, and a
// session brings its card in once (a reload or a replayed URL adds nothing,
// and never brings back a card removed since).
func (c *Console) setupReturn(w http.ResponseWriter, q *request) {
	ctx := q.Context()
	before, err := c.payments.Cards(ctx, q.acct.ID)
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	_, err = c.svc.CompleteCardSetup(ctx, q.acct, q.URL.Query().Get("session_id"))
	if e := apperr.As(err); e != nil && (e.Code == apperr.Invalid || e.Code == apperr.Conflict || e.Code == apperr.LimitExceeded) {
		c.log.InfoContext(ctx, "console: card setup not recorded", "account_id", q.acct.ID, "err", err)
		v, verr := c.methodsView(q, dialogView{}, true)
		if verr != nil {
			c.fail(w, q.Request, verr)
			return
		}
		status, text := http.StatusBadRequest, "The payment method was not added: the card page was not completed. Try again."
		switch e.Code {
		case apperr.Conflict:
			status, text = http.StatusConflict, "This card page was already used, so nothing more was added. To add another card, choose “Add payment method” again."
		case apperr.LimitExceeded:
			status, text = http.StatusConflict, "The payment method was not added: "+e.Message+". Remove one first."
		}
		v.Notice = &notice{Kind: "error", Text: text}
		c.renderStatus(w, q.Request, status, "methods", v)
		return
	}
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	st, _, err := c.payments.Settings(ctx, q.acct.ID)
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	if len(before) == 0 && !st.Enabled {
		redirect(w, q.Request, q.base()+"/payment_methods?done=first_card_add_auto")
		return
	}
	redirect(w, q.Request, q.base()+"/payment_methods?done=card_added")
}

func (c *Console) makeDefault(w http.ResponseWriter, q *request) {
	if _, err := c.payments.SetDefaultCard(q.Context(), q.acct.ID, q.PathValue("pm")); err != nil {
		c.fail(w, q.Request, err)
		return
	}
	redirect(w, q.Request, q.base()+"/payment_methods?done=default")
}

func (c *Console) removeCard(w http.ResponseWriter, q *request) {
	disabled, err := c.svc.RemoveCard(q.Context(), q.acct.ID, q.PathValue("pm"))
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	if disabled {
		redirect(w, q.Request, q.base()+"/payment_methods?done=card_removed_auto")
		return
	}
	redirect(w, q.Request, q.base()+"/payment_methods?done=card_removed")
}

// previewResult is what the dialog shows before a save, as JSON for the
// dialog's script and as a model for the page without it.
type previewResult struct {
	Valid   bool     `json:"valid"`
	Field   string   `json:"field,omitempty"`
	Error   string   `json:"error,omitempty"`
	Lines   []string `json:"lines"`
	Charges int      `json:"charges"`
	Total   string   `json:"total,omitempty"`
	// NextBelow is when, at the recent rate of usage, the balance goes
	// below the threshold (RFC 3339), when it can be told.
	NextBelow string `json:"next_below_at,omitempty"`
}

// preview answers the dialog as the person types: would these values be
// refused, what would they have done over the last 30 days, and when does
// the balance next reach the threshold. It reads the account, its cards,
// its settings and at most 31 rows of daily totals.
func (c *Console) preview(w http.ResponseWriter, q *request) {
	qs := q.URL.Query()
	var res previewResult
	in, err := settingsInput(qs.Get("threshold"), qs.Get("target"), qs.Get("monthly_limit"), qs.Get("payment_method"))
	switch {
	case err != nil:
		e := apperr.As(err)
		res = previewResult{Field: e.Field, Error: "These values would be refused: " + fieldRefusal(e.Field, e.Message)}
	case in.Threshold == nil || in.Target == nil:
		res = previewResult{Lines: []string{"Enter both amounts to see what they would have done over the last 30 days."}}
	default:
		st, _, err := c.payments.Settings(q.Context(), q.acct.ID)
		if err != nil {
			c.failJSON(w, q, err)
			return
		}
		cards, err := c.payments.Cards(q.Context(), q.acct.ID)
		if err != nil {
			c.failJSON(w, q, err)
			return
		}
		res = c.computePreview(q.Context(), q.acct, st, cards, in)
	}
	if res.Lines == nil {
		res.Lines = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

func (c *Console) failJSON(w http.ResponseWriter, q *request, err error) {
	c.log.ErrorContext(q.Context(), "console: preview", "err", err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(`{"valid":false,"error":"The preview is not available right now.","lines":[]}`))
}

// computePreview checks in with the same rules as a save (topup.Validate)
// and, when they pass, replays the last 30 days under them and forecasts
// the next time the balance goes below the threshold.
func (c *Console) computePreview(ctx context.Context, acct ledger.Account, st topup.Settings, cards []topup.Card, in topup.Input) previewResult {
	cur := acct.Currency
	rules := topup.Rules{Currency: cur, MaxTarget: c.svc.MaxTarget(), Cards: map[string]bool{}}
	for _, cd := range cards {
		rules.Cards[cd.ID] = true
		rules.HasDefault = rules.HasDefault || cd.Default
	}
	next, err := topup.Validate(in, st, rules)
	if e := apperr.As(err); e != nil {
		return previewResult{Field: e.Field, Error: "These values would be refused: " + fieldRefusal(e.Field, e.Message)}
	}
	if err != nil {
		return previewResult{Error: "The preview is not available right now."}
	}
	now := c.clock.Now()
	rows, err := c.store.DailyTotals(ctx, acct.ID, windowStart(now))
	if err != nil {
		c.log.ErrorContext(ctx, "console: preview daily totals", "err", err)
		return previewResult{Error: "The preview is not available right now."}
	}
	h := buildHistory(rows, acct.Balance, acct.CreatedAt, now)
	T, G := *next.Threshold, *next.Target
	r := replay(h, scenario{Threshold: T, Target: G, MonthlyLimit: next.MonthlyLimit, Currency: cur})
	out := previewResult{Valid: true, Charges: r.Charges, Total: r.Total.Format(cur)}

	period := "Over the last " + plural(len(h.Days), "day", "days")
	if len(h.Days) < historyDays {
		period = "Since your account opened on " + formatDay(acct.CreatedAt)
	}
	if r.Charges == 0 && !r.Limited {
		out.Lines = append(out.Lines, period+", these settings would have made no automatic charge: your balance stayed at or above "+formatMoney(T, cur)+".")
	} else {
		out.Lines = append(out.Lines, period+", these settings would have made "+plural(r.Charges, "automatic charge", "automatic charges")+", "+
			formatMoney(r.Total, cur)+" in all.")
	}
	if r.Limited {
		out.Lines = append(out.Lines, "The monthly limit would have held charges back, and your balance would have fallen to "+formatMoney(r.Lowest, cur)+".")
	}
	if r.ActualCharges > 0 {
		out.Lines = append(out.Lines, "In that time you really had "+plural(r.ActualCharges, "top-up", "top-ups")+", "+formatMoney(r.ActualTotal, cur)+".")
	}

	b := recentBurn(h, acct.CreatedAt, now)
	out.Lines = append(out.Lines, forecast(acct, b, next, now, &out))
	line := "Each automatic charge adds about " + formatMoney(G-T, cur)
	switch every, using := b.Until(G - T); {
	case !using:
	case every < time.Hour:
		line += ", more than one an hour at this rate"
	default:
		line += ", about one every " + strings.TrimPrefix(aboutDuration(every), "about ") + " at this rate"
	}
	out.Lines = append(out.Lines, line+".")
	return out
}

// forecast says when, at the recent burn b, the account's available credit
// (what Automatic Top-Up watches: the balance less what holds reserve)
// goes below next's threshold, setting out.NextBelow when it does.
func forecast(acct ledger.Account, b burn, next topup.Settings, now time.Time, out *previewResult) string {
	cur, T, G := acct.Currency, *next.Threshold, *next.Target
	avail, yours := acct.Available(), "balance"
	if acct.Held > 0 {
		yours = "available credit (your balance less " + formatMoney(acct.Held, cur) + " held)"
	}
	switch d, using := b.Until(avail - T); {
	case avail < T:
		charge, _ := topup.Settings{Threshold: &T, Target: &G, MonthlyLimit: next.MonthlyLimit}.ChargeAmount(avail, 0, cur)
		out.NextBelow = now.Format(time.RFC3339)
		return "Your " + yours + ", " + formatMoney(avail, cur) + ", is already below " + formatMoney(T, cur) +
			": saving starts a charge of about " + formatMoney(charge, cur) + " right away."
	case !using:
		return "You have used no credit in the last " + plural(burnDays, "day", "days") + ", so no automatic charge is in sight."
	case d >= 365*24*time.Hour:
		return "At your recent usage, about " + formatMoney(nearestMinor(b.PerDay(), cur), cur) + " a day, your " + yours + " of " + formatMoney(avail, cur) +
			" will not go below " + formatMoney(T, cur) + " for more than a year."
	}
	d, _ := b.Until(avail - T)
	at := now.Add(d)
	out.NextBelow = at.Format(time.RFC3339)
	return "At your recent usage, about " + formatMoney(nearestMinor(b.PerDay(), cur), cur) + " a day, your " + yours + " of " + formatMoney(avail, cur) +
		" will go below " + formatMoney(T, cur) + " around " + formatTime(at) + " (in " + aboutDuration(d) + "). The first automatic charge comes then."
}
