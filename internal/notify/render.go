package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"strings"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/topup"
)

// mailText is what a mail says: a subject, a plain text body and the same
// in HTML.
type mailText struct {
	subject, text, html string
}

// words turns an event into a subject, paragraphs and an optional link
// with its label. consoleURL is where the console is served ("" when it is
// not): a succeeded top-up's mail links to its receipt there.
func words(ev Event, consoleURL string) (subject string, paras []string, link, label string) {
	var d map[string]any
	_ = json.Unmarshal(ev.Data, &d)
	s := func(k string) string {
		v, _ := d[k].(string)
		return v
	}
	cur := strings.ToUpper(s("currency"))
	money := func(k string) string {
		if v := s(k); v != "" && cur != "" {
			return v + " " + cur
		}
		return s(k)
	}
	budgetName := "your account"
	if sub := s("subject"); sub != "" {
		budgetName = fmt.Sprintf("%q", sub)
	}
	switch ev.Type {
	case alert.BalanceLow:
		subject = "Your balance is below " + s("threshold")
		paras = []string{fmt.Sprintf("Your credit balance is now %s, below the low balance alert you set at %s.", s("balance"), s("threshold")),
			"Top up, or switch on Automatic Top-Up, to keep your service running."}
	case topup.EventTopUpSucceeded:
		subject = "Top-up of " + money("amount") + " succeeded"
		paras = []string{fmt.Sprintf("We charged %s to your card (top-up %s) and added it to your credit balance.", money("amount"), s("id"))}
		link, label = receiptLink(consoleURL, ev.AccountID, s("id"))
	case topup.EventTopUpFailed:
		subject = "A top-up failed"
		paras = []string{fmt.Sprintf("Top-up %s of %s did not go through (%s).", s("id"), money("amount"), s("failure_code")),
			"Check your payment method."}
	case topup.EventTopUpActionRequired:
		subject = "Your bank needs you to confirm a top-up"
		paras = []string{fmt.Sprintf("Your bank asks you to confirm the top-up of %s before it is charged.", money("amount")),
			"Open the link below within 24 hours to confirm it."}
		link, label = s("action_url"), "Confirm the top-up"
	case topup.EventTopUpRefunded, topup.EventTopUpDisputed:
		subject, paras = afterChargeWords(ev.Type, d, money)
		link, label = receiptLink(consoleURL, ev.AccountID, s("id"))
	case topup.EventAutoTopUpDisabled:
		subject = "Automatic Top-Up was switched off"
		paras = []string{fmt.Sprintf("Automatic Top-Up was switched off (%s).", s("reason")),
			"Check your payment method and switch it on again."}
	case topup.EventAutoTopUpLimitReached:
		subject = "Automatic Top-Up reached its monthly limit"
		paras = []string{fmt.Sprintf("Automatic Top-Up reached its monthly limit of %s for %s; no more automatic top-ups will be made this month.", s("limit"), s("month"))}
	case alert.BudgetThresholdReached:
		pct, _ := d["percent"].(float64)
		subject = fmt.Sprintf("The budget of %s is %.0f%% spent", budgetName, pct)
		paras = []string{fmt.Sprintf("%s of the %s budget of %s is spent (%.0f%%).", s("spent"), s("kind"), budgetName, pct)}
	case alert.BudgetExhausted:
		subject = "The budget of " + budgetName + " is spent"
		paras = []string{fmt.Sprintf("The %s budget of %s (limit %s) is spent: %s.", s("kind"), budgetName, s("limit"), s("spent")),
			"Usage is still recorded, but the platform is told to stop spending."}
	case ledger.EventCreditExpiring:
		subject = "Credit of " + money("remaining") + " expires soon"
		paras = []string{fmt.Sprintf("%s of your credit (grant %s) expires at %s. Use it before then: what remains is removed from your balance.",
			money("remaining"), s("id"), s("expires_at"))}
	case ledger.EventCreditExpired:
		subject = "Credit of " + money("amount_expired") + " expired"
		paras = []string{fmt.Sprintf("%s of credit (grant %s) expired at %s and was removed from your balance.", money("amount_expired"), s("id"), s("expires_at"))}
	default:
		subject = "Topup: " + ev.Type
		paras = []string{"Event " + ev.Type + "."}
	}
	return subject, paras, link, label
}

// afterChargeWords says what happened to a top-up after its charge: a
// refund (top_up.refunded) or a dispute (top_up.disputed), whose data is
// the top-up with its "refund" or "dispute".
func afterChargeWords(typ string, d map[string]any, money func(string) string) (subject string, paras []string) {
	inner := func(obj, k string) string {
		m, _ := d[obj].(map[string]any)
		v, _ := m[k].(string)
		return v
	}
	cur := ""
	if c, _ := d["currency"].(string); c != "" {
		cur = " " + strings.ToUpper(c)
	}
	id, _ := d["id"].(string)
	if typ == topup.EventTopUpRefunded {
		amount := inner("refund", "amount") + cur
		return "Refund of " + amount + " sent to your card",
			[]string{fmt.Sprintf("We refunded %s of your top-up of %s (top-up %s) to the card it was paid with. Your bank may take a few days to show it.", amount, money("amount"), id),
				"The refunded amount has left your credit balance."}
	}
	reason := inner("dispute", "reason")
	if reason == "" {
		reason = "no reason given"
	}
	return "A top-up was disputed",
		[]string{fmt.Sprintf("Your bank told us that the payment of %s for top-up %s is disputed (%s).", money("amount"), id, strings.ReplaceAll(reason, "_", " ")),
			"While the bank decides, the disputed amount leaves your credit balance, and Automatic Top-Up is switched off: switch it on again once the dispute is settled.",
			"If you did not mean to dispute this payment, tell your bank; a dispute decided in our favour gives the credit back."}
}

// receiptLink is the link of a succeeded top-up's mail: its receipt in the
// console, when there is a console.
func receiptLink(consoleURL, accountID, topUpID string) (link, label string) {
	if consoleURL == "" || accountID == "" || topUpID == "" {
		return "", ""
	}
	return ReceiptURL(consoleURL, accountID, topUpID), "View your receipt"
}

// ReceiptURL is where the console shows a top-up's receipt.
func ReceiptURL(consoleURL, accountID, topUpID string) string {
	return strings.TrimRight(consoleURL, "/") + "/accounts/" + url.PathEscape(accountID) + "/top_ups/" + url.PathEscape(topUpID) + "/receipt"
}

var htmlMail = template.Must(template.New("mail").Parse(`<!doctype html>
<html><body style="font-family: sans-serif; color: #1f2328">
<h2>{{.Subject}}</h2>
{{range .Paras}}<p>{{.}}</p>
{{end}}{{with .Link}}<p><a href="{{.}}">{{$.Label}}</a></p>
{{end}}<p style="color: #59636e; font-size: small">Event {{.ID}} · {{.Type}}</p>
</body></html>
`))

// render returns the mail of an event.
func render(ev Event, consoleURL string) mailText {
	subject, paras, link, label := words(ev, consoleURL)
	var text strings.Builder
	for _, p := range paras {
		text.WriteString(p + "\n\n")
	}
	if link != "" {
		text.WriteString(label + ": " + link + "\n\n")
	}
	fmt.Fprintf(&text, "Event %s (%s)\n", ev.ID, ev.Type)
	var html bytes.Buffer
	_ = htmlMail.Execute(&html, map[string]any{"Subject": subject, "Paras": paras, "Link": link, "Label": label, "ID": ev.ID, "Type": ev.Type})
	return mailText{subject: subject, text: text.String(), html: html.String()}
}
