package web

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

// symbols are the currency signs the console writes before an amount;
// other currencies get their code after it.
var symbols = map[string]string{"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$", "nzd": "NZ$",
	"hkd": "HK$", "sgd": "S$", "inr": "₹", "krw": "₩", "brl": "R$", "mxn": "MX$"}

// formatMoney writes an amount the way a person reads it: "$1,234.50",
// "−$0.000125" (a true minus sign), "12.00 CHF". Sub-minor digits are kept:
// the console never rounds what the ledger holds.
func formatMoney(a money.Amount, c money.Currency) string {
	sign := ""
	if a < 0 {
		sign, a = "−", -a
	}
	digits := a.Format(c)
	whole, frac, hasFrac := strings.Cut(digits, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	if sym, ok := symbols[c.Code]; ok {
		return sign + sym + b.String()
	}
	return sign + b.String() + " " + strings.ToUpper(c.Code)
}

// formatSigned writes a ledger amount with its sign: "+$10.00", "−$0.25".
func formatSigned(a money.Amount, c money.Currency) string {
	if a > 0 {
		return "+" + formatMoney(a, c)
	}
	return formatMoney(a, c)
}

// inputAmount writes an amount for a form field: plain digits that the
// parser takes back ("10.00").
func inputAmount(a *money.Amount, c money.Currency) string {
	if a == nil {
		return ""
	}
	return a.Format(c)
}

// formatTime writes a moment in UTC: "26 Nov 2026, 14:05 UTC".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2 Jan 2006, 15:04 UTC")
}

// formatDay writes a calendar day: "26 Nov".
func formatDay(t time.Time) string { return t.UTC().Format("2 Jan") }

// isoTime is the datetime attribute of a <time> element.
func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// brands are the names card brands are shown with.
var brands = map[string]string{"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover",
	"jcb": "JCB", "diners": "Diners Club", "unionpay": "UnionPay"}

func brandName(b string) string {
	if n, ok := brands[b]; ok {
		return n
	}
	if b == "" {
		return "Card"
	}
	return strings.ToUpper(b[:1]) + b[1:]
}

// cardLabel names a card the way its owner knows it: "Visa •••• 4242".
func cardLabel(c topup.Card) string { return brandName(c.Brand) + " •••• " + c.Last4 }

// reasons explain failure and decline codes in words; the code itself is
// shown beside them for support.
var reasons = map[string]string{
	"card_declined":                         "The card was declined.",
	"insufficient_funds":                    "The card has insufficient funds.",
	"lost_card":                             "The card was reported lost; it will not be charged again.",
	"stolen_card":                           "The card was reported stolen; it will not be charged again.",
	"expired_card":                          "The card has expired.",
	"incorrect_cvc":                         "The card's security code was wrong.",
	"processing_error":                      "The payment provider could not process the charge.",
	"authentication_required":               "The bank asked for 3-D Secure authentication.",
	"payment_intent_authentication_failure": "3-D Secure authentication failed.",
	topup.AuthenticationExpired:             "3-D Secure was not completed within 24 hours.",
	topup.NotNeeded:                         "Not needed: the balance was back above the threshold before the charge.",
	"do_not_honor":                          "The bank declined the charge.",
	"fraudulent":                            "The bank declined the charge as suspected fraud; it will not be charged again.",
}

// reasonText explains a failure code; unknown codes are shown as they are.
func reasonText(code string) string {
	if code == "" {
		return ""
	}
	if r, ok := reasons[code]; ok {
		return r
	}
	return "Declined (" + code + ")."
}

// disabledText explains why Automatic Payments were switched off.
func disabledText(reason string) string {
	switch reason {
	case topup.RepeatedDeclines:
		return "They were switched off after " + strconv.Itoa(topup.MaxFailuresInRow) + " declined charges in a row."
	case topup.CardNotRetryable:
		return "They were switched off because the card was declined in a way that must not be retried (reported lost or stolen)."
	case topup.PaymentMethodRemoved:
		return "They were switched off because the card they charged was removed."
	case topup.AccountClosed:
		return "They were switched off because the account was closed."
	case topup.Disputed:
		return "They were switched off because a payment was disputed with the bank."
	case "":
		return ""
	}
	return "They were switched off (" + reason + ")."
}

// statusLabels name top-up statuses in words.
var statusLabels = map[topup.Status]string{topup.Pending: "Pending", topup.Processing: "Processing", topup.Succeeded: "Succeeded",
	topup.Failed: "Failed", topup.RequiresAction: "Needs authentication", topup.Canceled: "Canceled"}

func statusLabel(s topup.Status) string {
	if l, ok := statusLabels[s]; ok {
		return l
	}
	return string(s)
}

// triggerLabel says what started a top-up.
func triggerLabel(t topup.Trigger) string {
	switch t {
	case topup.TriggerThreshold:
		return "Automatic"
	case topup.TriggerSettings:
		return "Automatic (on save)"
	case topup.TriggerManual:
		return "Manual"
	}
	return string(t)
}

// fieldLabels are the console's names of the settings fields.
var fieldLabels = map[string]string{"threshold": "When credit goes below", "target": "Bring credit back up to",
	"monthly_limit": "Monthly limit", "payment_method": "Pay with", "amount": "Amount"}

// fieldMessage turns a refusal's message, written for the API ("must be
// greater than threshold"), into a sentence for beside its field.
func fieldMessage(msg string) string {
	msg = consoleWords(msg)
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

// fieldRefusal is a refusal as a sentence that names its field:
// "“Bring credit back up to” must be greater than “When credit goes
// below”."
func fieldRefusal(field, msg string) string {
	label, ok := fieldLabels[field]
	if !ok {
		return fieldMessage(msg)
	}
	return "“" + label + "” " + consoleWords(msg) + "."
}

// consoleWords names the settings in a message as the console does, and
// says "whole cents" where the API says "whole minor units".
func consoleWords(msg string) string {
	msg = strings.ReplaceAll(msg, "above threshold", "above “When credit goes below”")
	msg = strings.ReplaceAll(msg, "than threshold", "than “When credit goes below”")
	msg = minorUnitsRE.ReplaceAllStringFunc(msg, func(s string) string {
		c, err := money.LookupCurrency(minorUnitsRE.FindStringSubmatch(s)[1])
		switch {
		case err != nil:
			return s
		case c.Minor == 0:
			return "a whole amount, without decimals"
		case c.Minor == 2:
			return "in whole cents (at most 2 decimals)"
		}
		return "in whole minor units (at most " + strconv.Itoa(c.Minor) + " decimals)"
	})
	return strings.ReplaceAll(msg, "money: ", "")
}

// minorUnitsRE finds the API's "a whole number of usd minor units (at most
// 2 decimals)".
var minorUnitsRE = regexp.MustCompile(`a whole number of ([a-z]{3}) minor units(?: \(at most \d+ decimals\))?`)
