package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/topup"
)

// notificationsPerPage is the length of the notification list; attemptsShown
// how many recent delivery attempts each webhook endpoint shows.
const (
	notificationsPerPage = 20
	attemptsShown        = 5
)

// notificationsPage is what the account was told, and where it is told:
// e-mail and its webhook endpoints.
type notificationsPage struct {
	Events    []eventRow
	Older     string
	Paged     bool
	Email     string
	Endpoints []endpointRow
	CanAdd    bool // fewer endpoints than the most an account may have
	MaxAdd    int
	URL       string // the Add endpoint field, kept after a refusal
	URLErr    string
	// Created is the endpoint just added, with its secret: shown once, in
	// the answer to the form, never in a URL.
	Created *notify.Endpoint
}

// eventRow is one notification in words.
type eventRow struct {
	ID, Type, Title, Summary, When, WhenISO string
	Tone                                    string // success, error, warning, info
	Link, LinkText                          string
	Action                                  bool // the link is the thing to do: a button
	Note                                    string
}

// endpointRow is a webhook endpoint with its recent delivery attempts.
type endpointRow struct {
	ID, URL, SecretPrefix, Created, CreatedISO string
	Attempts                                   []attemptRow
	More                                       bool
}

// attemptRow is one delivery attempt: what was sent, and what came back.
type attemptRow struct {
	Event, EventID, When, WhenISO string
	Result, ResultClass           string
	Error                         string // why no answer came
	Next                          string
}

func (c *Console) notifications(w http.ResponseWriter, q *request) {
	v, err := c.notificationsView(q, notificationsPage{})
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	if q.URL.Query().Get("done") == "endpoint_deleted" {
		v.Notice = &notice{Kind: "success", Text: "Webhook endpoint deleted. Nothing more is sent to it."}
	}
	c.render(w, q.Request, "notifications", v)
}

// notificationsView gathers one page of notifications and every webhook
// endpoint with its last few attempts.
func (c *Console) notificationsView(q *request, p notificationsPage) (view, error) {
	ctx := q.Context()
	after := q.URL.Query().Get("starting_after")
	ns, more, err := c.outbox.NotificationPage(ctx, q.acct.ID, ledger.Page{Limit: notificationsPerPage, StartingAfter: after})
	if err != nil {
		return view{}, err
	}
	p.Paged, p.Email, p.MaxAdd = after != "", q.acct.Email, ledger.MaxWebhookEndpoints
	for _, n := range ns {
		p.Events = append(p.Events, c.eventWords(ctx, q, n))
	}
	if more && len(ns) > 0 {
		p.Older = ns[len(ns)-1].ID
	}
	es, _, err := c.outbox.Endpoints(ctx, q.acct.ID, ledger.Page{Limit: ledger.MaxWebhookEndpoints})
	if err != nil {
		return view{}, err
	}
	p.CanAdd = len(es) < ledger.MaxWebhookEndpoints
	for _, e := range es {
		row := endpointRow{ID: e.ID, URL: e.URL, SecretPrefix: e.Secret[:min(len(e.Secret), 12)], Created: formatTime(e.CreatedAt), CreatedISO: isoTime(e.CreatedAt)}
		as, more, err := c.outbox.DeliveryAttempts(ctx, q.acct.ID, e.ID, ledger.Page{Limit: attemptsShown})
		if err != nil {
			return view{}, err
		}
		row.More = more
		for _, a := range as {
			row.Attempts = append(row.Attempts, attemptWords(a))
		}
		p.Endpoints = append(p.Endpoints, row)
	}
	return q.view("Notifications", "notifications", p), nil
}

// eventTitles name the event types in words.
var eventTitles = map[string]string{
	alert.BalanceLow:                 "Low balance",
	topup.EventTopUpSucceeded:        "Top-up succeeded",
	topup.EventTopUpFailed:           "Top-up failed",
	topup.EventTopUpActionRequired:   "Payment to confirm",
	topup.EventTopUpRefunded:         "Top-up refunded",
	topup.EventTopUpDisputed:         "Top-up disputed",
	topup.EventAutoTopUpDisabled:     "Automatic Payments switched off",
	topup.EventAutoTopUpLimitReached: "Monthly limit reached",
	alert.BudgetThresholdReached:     "Budget alert",
	alert.BudgetExhausted:            "Budget exhausted",
	ledger.EventCreditExpiring:       "Credit expires soon",
	ledger.EventCreditExpired:        "Credit expired",
}

func eventTitle(typ string) string {
	if t, ok := eventTitles[typ]; ok {
		return t
	}
	return typ
}

// eventData is the data of any event type; each uses some of the fields.
type eventData struct {
	// balance.low
	Threshold string `json:"threshold"`
	Balance   string `json:"balance"`
	// top_up.*: the top-up
	ID          string `json:"id"`
	Status      string `json:"status"`
	Trigger     string `json:"trigger"`
	Amount      string `json:"amount"`
	FailureCode string `json:"failure_code"`
	// top_up.refunded, top_up.disputed: the top-up with its refund or
	// dispute
	Refund  afterCharge `json:"refund"`
	Dispute afterCharge `json:"dispute"`
	// auto_top_up.*
	Reason string `json:"reason"`
	Month  string `json:"month"`
	// budget.*: the budget, and the level reached
	Subject string `json:"subject"`
	Limit   string `json:"limit"`
	Spent   string `json:"spent"`
	Percent int    `json:"percent"`
	// credit.*: the grant, and what expired
	Remaining     string `json:"remaining"`
	ExpiresAt     string `json:"expires_at"`
	AmountExpired string `json:"amount_expired"`
}

// eventWords puts a notification in words: "Balance fell below $20.00
// (balance $19.50).". A payment to confirm links to its 3-D Secure page
// while it still waits.
func (c *Console) eventWords(ctx context.Context, q *request, n topup.Notification) eventRow {
	cur := q.acct.Currency
	row := eventRow{ID: n.ID, Type: n.Type, Title: eventTitle(n.Type), When: formatTime(n.CreatedAt), WhenISO: isoTime(n.CreatedAt), Tone: "info"}
	var d eventData
	if err := json.Unmarshal(n.Data, &d); err != nil {
		row.Summary = "Event " + n.Type + "."
		return row
	}
	amount := func(s string) string {
		if a, err := money.Parse(s); err == nil {
			return formatMoney(a, cur)
		}
		return s
	}
	topUp := "Top-up"
	switch topup.Trigger(d.Trigger) {
	case topup.TriggerThreshold, topup.TriggerSettings:
		topUp = "Automatic top-up"
	case topup.TriggerManual:
		topUp = "Manual top-up"
	}
	if d.Amount != "" {
		topUp += " of " + amount(d.Amount)
	}
	budget, who := "The account-wide budget", "the whole account"
	if d.Subject != "" {
		budget, who = "The budget for “"+d.Subject+"”", "this subject"
	}
	switch n.Type {
	case alert.BalanceLow:
		row.Tone = "warning"
		row.Summary = "Balance fell below " + amount(d.Threshold) + " (balance " + amount(d.Balance) + ")."
	case topup.EventTopUpSucceeded:
		row.Tone = "success"
		row.Summary = topUp + " succeeded."
	case topup.EventTopUpFailed:
		row.Tone = "error"
		if topup.Status(d.Status) == topup.Canceled {
			row.Title = "Top-up canceled"
			row.Summary = topUp + " was canceled."
		} else {
			row.Summary = topUp + " failed."
		}
		if r := reasonText(d.FailureCode); r != "" {
			row.Summary += " " + r
		}
	case topup.EventTopUpActionRequired:
		row.Tone = "warning"
		row.Summary = "Your bank asks you to confirm a payment"
		if d.Amount != "" {
			row.Summary += " of " + amount(d.Amount)
		}
		row.Summary += " (3-D Secure)."
		if t, err := c.payments.TopUp(ctx, q.acct.ID, d.ID); err == nil {
			if u := c.svc.ActionURL(t); u != "" {
				row.Link, row.LinkText, row.Action = u, "Complete authentication", true
			} else {
				row.Note = paymentDone(t.Status)
			}
		}
	case topup.EventAutoTopUpDisabled:
		row.Tone = "error"
		row.Summary = strings.Replace(disabledText(d.Reason), "They were", "Automatic Payments were", 1)
		if row.Summary == "" {
			row.Summary = "Automatic Payments were switched off."
		}
		row.Link, row.LinkText = q.base()+"/payment_methods#automatic-payments", "Payment methods"
	case topup.EventAutoTopUpLimitReached:
		row.Tone = "warning"
		month := d.Month
		if m, err := time.Parse("2006-01", d.Month); err == nil {
			month = m.Format("January 2006")
		}
		row.Summary = "Automatic Payments reached their monthly limit of " + amount(d.Limit) + " for " + month + ": no more automatic charges this month."
	case alert.BudgetThresholdReached:
		row.Tone = "warning"
		row.Title = "Budget at " + strconv.Itoa(d.Percent) + "%"
		row.Summary = budget + " reached " + strconv.Itoa(d.Percent) + "%: " + amount(d.Spent) + " of " + amount(d.Limit) + " spent."
		row.Link, row.LinkText = q.base()+"/budgets", "Budgets"
	case alert.BudgetExhausted:
		row.Tone = "error"
		row.Summary = budget + " is exhausted: " + amount(d.Spent) + " of " + amount(d.Limit) + " spent. Usage for " + who + " should be paused."
		row.Link, row.LinkText = q.base()+"/budgets", "Budgets"
	default:
		row.Tone, row.Summary = laterWords(n.Type, d, topUp, amount)
	}
	return row
}

// afterCharge is a refund or a dispute in a top_up.refunded or
// top_up.disputed event.
type afterCharge struct {
	Amount string `json:"amount"`
	Reason string `json:"reason"`
}

// afterChargeWords puts a refund or a dispute of a top-up in words, with
// its tone: "$3.00 of the manual top-up of $10.00 was refunded to your
// card.".
func afterChargeWords(typ string, d eventData, topUp string, amount func(string) string) (tone, summary string) {
	of := strings.ToLower(topUp[:1]) + topUp[1:]
	if typ == topup.EventTopUpRefunded {
		return "info", amount(d.Refund.Amount) + " of the " + of + " was refunded to your card and left the balance."
	}
	reason := ""
	if d.Dispute.Reason != "" {
		reason = " (" + strings.ReplaceAll(d.Dispute.Reason, "_", " ") + ")"
	}
	return "error", "Your bank disputes the " + of + reason + ". The disputed amount leaves the balance while the bank decides, and Automatic Payments were switched off."
}

// laterWords puts in words the events that come after a top-up or a
// grant: a refund or a dispute of a top-up, a grant's expiry.
func laterWords(typ string, d eventData, topUp string, amount func(string) string) (tone, summary string) {
	if typ == topup.EventTopUpRefunded || typ == topup.EventTopUpDisputed {
		return afterChargeWords(typ, d, topUp, amount)
	}
	return creditWords(typ, d, amount)
}

// creditWords puts a grant's expiry events in words (and any other event
// as its type), with their tone.
func creditWords(typ string, d eventData, amount func(string) string) (tone, summary string) {
	when := d.ExpiresAt
	if t, err := time.Parse(time.RFC3339Nano, d.ExpiresAt); err == nil {
		when = formatTime(t)
	}
	switch typ {
	case ledger.EventCreditExpiring:
		return "warning", amount(d.Remaining) + " of credit expires on " + when + ": what remains then leaves the balance."
	case ledger.EventCreditExpired:
		return "info", amount(d.AmountExpired) + " of credit expired on " + when + " and left the balance."
	}
	return "info", "Event " + typ + "."
}

// attemptWords says what became of one delivery attempt.
func attemptWords(a notify.Attempt) attemptRow {
	r := attemptRow{Event: eventTitle(a.Type), EventID: a.EventID, When: formatTime(a.AttemptedAt), WhenISO: isoTime(a.AttemptedAt)}
	switch {
	case a.StatusCode >= 200 && a.StatusCode < 300:
		r.Result, r.ResultClass = "Delivered ("+strconv.Itoa(a.StatusCode)+")", "succeeded"
	case a.StatusCode != 0:
		r.Result, r.ResultClass = "HTTP "+strconv.Itoa(a.StatusCode), "failed"
	default:
		r.Result, r.ResultClass = "No answer", "failed"
	}
	if a.StatusCode == 0 {
		// With a status, the error only repeats it.
		r.Error = a.Error
	}
	switch {
	case !a.NextAttemptAt.IsZero():
		r.Next = "Next try " + formatTime(a.NextAttemptAt)
	case r.ResultClass == "failed":
		r.Next = "Given up"
	}
	return r
}

// createEndpoint registers a webhook endpoint through billing, as the
// API does (the same URL checks). The answer is the page itself, showing the
// signing secret this once; a refusal is shown beside the field.
func (c *Console) createEndpoint(w http.ResponseWriter, q *request) {
	raw := strings.TrimSpace(q.PostFormValue("url"))
	e, err := c.svc.CreateEndpoint(q.Context(), q.acct.ID, raw)
	if ae := apperr.As(err); ae != nil && ae.Code == apperr.Invalid {
		msg := fieldMessage(ae.Message)
		v, verr := c.notificationsView(q, notificationsPage{URL: raw, URLErr: msg})
		if verr != nil {
			c.fail(w, q.Request, verr)
			return
		}
		v.Notice = &notice{Kind: "error", Text: "The endpoint was not added: " + lowerFirst(msg)}
		c.renderStatus(w, q.Request, http.StatusBadRequest, "notifications", v)
		return
	}
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	v, err := c.notificationsView(q, notificationsPage{Created: &e})
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	v.Notice = &notice{Kind: "success", Text: "Webhook endpoint added. Copy its signing secret now: it is shown only this once."}
	c.render(w, q.Request, "notifications", v)
}

func (c *Console) deleteEndpoint(w http.ResponseWriter, q *request) {
	if err := c.svc.DeleteEndpoint(q.Context(), q.acct.ID, q.PathValue("endpoint_id")); err != nil {
		c.fail(w, q.Request, err)
		return
	}
	redirect(w, q.Request, q.base()+"/notifications?done=endpoint_deleted#endpoints")
}

// paymentDone says how a payment that asked for confirmation ended.
func paymentDone(s topup.Status) string {
	switch s {
	case topup.Succeeded:
		return "Confirmed: the payment succeeded."
	case topup.Failed:
		return "This payment failed."
	case topup.Canceled:
		return "This payment was canceled."
	}
	return "This payment no longer waits for you: it is " + strings.ToLower(statusLabel(s)) + "."
}
