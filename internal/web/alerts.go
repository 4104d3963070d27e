package web

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/money"
)

// alertsPage is the Low Balance Alert page: the thresholds as a form, one
// row each and a blank row to add one, and the rule in words.
type alertsPage struct {
	Balance  string
	Email    string
	Rows     []thresholdRow
	Full     bool   // five thresholds: no row to add one
	ListErr  string // a refusal of the list as a whole (too many)
	Max      int
	Min, Top string // the range of a threshold
	Gap      string // how far apart two thresholds must be
	Symbol   string
	Currency string
}

// thresholdRow is one field of the form.
type thresholdRow struct {
	N     int // 1-based: the field's id is threshold-N
	Label string
	Value string
	Err   string
	Hint  string
	// Saved is the saved amount a Remove button removes; "" for a row
	// that is not saved (the blank row, or a value typed and refused).
	Saved      string
	SavedLabel string
	New        bool
}

func (c *Console) alerts(w http.ResponseWriter, q *request) {
	v, err := c.alertsView(q, nil, nil, "")
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	switch q.URL.Query().Get("done") {
	case "alerts_saved":
		v.Notice = &notice{Kind: "success", Text: "Low balance alerts saved. " + alertsSummary(v.Page.(alertsPage))}
	case "alerts_off":
		v.Notice = &notice{Kind: "success", Text: "Low balance alerts are off: you will not be told when your balance runs low."}
	case "alert_removed":
		v.Notice = &notice{Kind: "success", Text: "Alert removed. " + alertsSummary(v.Page.(alertsPage))}
	}
	c.render(w, q.Request, "alerts", v)
}

// alertsSummary says in a sentence when the saved thresholds alert.
func alertsSummary(p alertsPage) string {
	var saved []string
	for _, r := range p.Rows {
		if r.Saved != "" {
			saved = append(saved, r.SavedLabel)
		}
	}
	switch len(saved) {
	case 0:
		return "No alert is set."
	case 1:
		return "You are told when your balance goes below " + saved[0] + "."
	}
	return "You are told when your balance goes below " + strings.Join(saved[:len(saved)-1], ", ") + " or " + saved[len(saved)-1] + "."
}

// alertsView gathers the page. raw are the values the form showed (nil:
// the saved thresholds); errs are refusals by row (0-based), listErr one
// of the whole list.
func (c *Console) alertsView(q *request, raw []string, errs map[int]string, listErr string) (view, error) {
	cur := q.acct.Currency
	saved, err := c.outbox.LowBalanceAlerts(q.Context(), q.acct.ID)
	if err != nil {
		return view{}, err
	}
	byAmount := map[money.Amount]alert.Threshold{}
	for _, t := range saved {
		byAmount[t.Amount] = t
	}
	if raw == nil {
		raw = []string{}
		for _, t := range saved {
			raw = append(raw, t.Amount.Format(cur))
		}
	}
	p := alertsPage{Balance: formatMoney(q.acct.Balance, cur), Email: q.acct.Email, ListErr: listErr, Max: alert.MaxThresholds,
		Min: formatMoney(alert.MinThreshold, cur), Top: formatMoney(alert.MaxThreshold, cur), Gap: formatMoney(alert.MinGap, cur),
		Symbol: symbols[cur.Code], Currency: strings.ToUpper(cur.Code)}
	today := c.clock.Now().UTC().Format(time.DateOnly)
	for i, r := range raw {
		row := thresholdRow{N: i + 1, Label: "Threshold " + strconv.Itoa(i+1), Value: r, Err: errs[i]}
		if a, ok, err := optionalMoneyField("threshold", r); err == nil && ok {
			if t, ok := byAmount[a]; ok {
				row.Saved, row.SavedLabel = a.Format(cur), formatMoney(a, cur)
				row.Hint = thresholdState(t, q.acct.Balance, today, cur)
			}
		}
		p.Rows = append(p.Rows, row)
	}
	p.Full = len(raw) >= alert.MaxThresholds
	if !p.Full {
		p.Rows = append(p.Rows, thresholdRow{N: len(raw) + 1, Label: "Add a threshold", New: true})
	}
	return q.view("Low balance alert", "alerts", p), nil
}

// thresholdState says what a saved threshold will do next: whether it is
// armed, or waits for the balance to come back, and when it last fired.
func thresholdState(t alert.Threshold, balance money.Amount, today string, cur money.Currency) string {
	amount := formatMoney(t.Amount, cur)
	var s string
	switch {
	case balance < t.Amount:
		s = "Your balance is below " + amount + " now: this alert is armed again once it is back at or above it."
	case t.AlertedOn == today:
		s = "Already sent today (UTC): the next alert for " + amount + " can come tomorrow."
	default:
		s = "Armed: you are told when your balance goes below " + amount + "."
	}
	if t.AlertedOn != "" && t.AlertedOn != today {
		if d, err := time.Parse(time.DateOnly, t.AlertedOn); err == nil {
			s += " Last sent on " + d.Format("2 Jan 2006") + "."
		}
	}
	return s
}

// saveAlerts saves the thresholds typed in the form (blank rows are
// ignored) through billing, as the API does: a refusal is shown beside
// its field and nothing is saved.
func (c *Console) saveAlerts(w http.ResponseWriter, q *request) {
	cur := q.acct.Currency
	var raw []string
	for _, r := range q.PostForm["threshold"] {
		if r = strings.TrimSpace(r); r != "" {
			raw = append(raw, r)
		}
	}
	amounts := make([]money.Amount, 0, len(raw))
	var err error
	for i, r := range raw {
		var a money.Amount
		if a, err = parseMoneyField("thresholds["+strconv.Itoa(i)+"]", r); err != nil {
			break
		}
		amounts = append(amounts, a)
	}
	if err == nil {
		_, err = c.svc.SetLowBalanceAlerts(q.Context(), q.acct.ID, amounts)
	}
	if e := apperr.As(err); e != nil && e.Code == apperr.Invalid {
		errs, listErr := map[int]string{}, ""
		msg := thresholdMessage(e.Message, cur)
		text := "Nothing was saved. " + msg
		switch i, ok := thresholdIndex(e.Field); {
		case ok && i < len(raw):
			errs[i] = msg
			text = "Nothing was saved: “Threshold " + strconv.Itoa(i+1) + "” " + lowerFirst(msg)
		case e.Field == "thresholds":
			listErr = "You can have at most " + strconv.Itoa(alert.MaxThresholds) + " thresholds: empty a field or remove one."
			text = "Nothing was saved. " + listErr
		default:
			listErr = msg
		}
		v, verr := c.alertsView(q, raw, errs, listErr)
		if verr != nil {
			c.fail(w, q.Request, verr)
			return
		}
		v.Notice = &notice{Kind: "error", Text: text}
		c.renderStatus(w, q.Request, http.StatusBadRequest, "alerts", v)
		return
	}
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	if len(amounts) == 0 {
		redirect(w, q.Request, q.base()+"/low_balance_alerts?done=alerts_off")
		return
	}
	redirect(w, q.Request, q.base()+"/low_balance_alerts?done=alerts_saved")
}

// removeAlert removes one saved threshold and keeps the others as saved,
// whatever the form around its button held.
func (c *Console) removeAlert(w http.ResponseWriter, q *request) {
	amount, err := parseMoneyField("amount", q.PostFormValue("amount"))
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	saved, err := c.outbox.LowBalanceAlerts(q.Context(), q.acct.ID)
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	keep := make([]money.Amount, 0, len(saved))
	for _, t := range saved {
		if t.Amount != amount {
			keep = append(keep, t.Amount)
		}
	}
	if len(keep) < len(saved) {
		if _, err := c.svc.SetLowBalanceAlerts(q.Context(), q.acct.ID, keep); err != nil {
			c.fail(w, q.Request, err)
			return
		}
	}
	redirect(w, q.Request, q.base()+"/low_balance_alerts?done=alert_removed")
}

var (
	thresholdFieldRE = regexp.MustCompile(`^thresholds\[(\d+)\]$`)
	// Refusals name other elements as "thresholds[0] (20.00)" and
	// "repeats thresholds[0]": beside a field, the amount says more.
	thresholdRefRE     = regexp.MustCompile(`thresholds\[\d+\] \(([0-9.]+)\)`)
	thresholdRepeatsRE = regexp.MustCompile(`repeats thresholds\[\d+\]`)
	plainAmountRE      = regexp.MustCompile(`\b\d+\.\d+\b`)
)

// thresholdIndex reads i from the field "thresholds[i]".
func thresholdIndex(field string) (int, bool) {
	m := thresholdFieldRE.FindStringSubmatch(field)
	if m == nil {
		return 0, false
	}
	i, err := strconv.Atoi(m[1])
	return i, err == nil
}

// thresholdMessage turns a refusal of alert.CheckThresholds into a sentence
// for beside the field: "must be at least 5.00 away from thresholds[0]
// (20.00)" becomes "Must be at least $5.00 away from $20.00.".
func thresholdMessage(msg string, cur money.Currency) string {
	msg = thresholdRepeatsRE.ReplaceAllString(msg, "is already in the list")
	msg = thresholdRefRE.ReplaceAllString(msg, "$1")
	msg = consoleWords(msg)
	msg = plainAmountRE.ReplaceAllStringFunc(msg, func(s string) string {
		if a, err := money.Parse(s); err == nil {
			return formatMoney(a, cur)
		}
		return s
	})
	return fieldMessage(msg)
}

// lowerFirst starts a sentence in the middle of another.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
