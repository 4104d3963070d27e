package stripe

import (
	"bytes"
	"encoding/json"

	stripego "github.com/stripe/stripe-go/v85"
)

// The objects of a webhook event are rendered in the API version of the
// endpoint, which may not be stripe-go's. These types read only the fields
// Topup acts on, whose names and meaning are the same in every version since
// PaymentIntents exist, and ignore everything else, so that a field renamed
// or retyped elsewhere in the object cannot make an event unreadable. Each
// converts to the stripe-go type, so that a webhook's object is reduced by
// the same code as an API answer.

// ref is a reference to another object: its id, or the object itself when
// expanded. null, or anything else, reads as no id.
type ref string

// UnmarshalJSON reads an id or an expanded object's id, and never fails: a
// reference Topup cannot read is one it does not have.
func (r *ref) UnmarshalJSON(b []byte) error {
	*r = ""
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		var s string
		if json.Unmarshal(b, &s) == nil {
			*r = ref(s)
		}
	case '{':
		var o struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(b, &o) == nil {
			*r = ref(o.ID)
		}
	}
	return nil
}

// wireError is the part of a last_payment_error Topup reads.
type wireError struct {
	Code          string `json:"code"`
	DeclineCode   string `json:"decline_code"`
	Message       string `json:"message"`
	PaymentMethod ref    `json:"payment_method"`
}

// wireIntent is the part of a PaymentIntent Topup reads.
type wireIntent struct {
	ID               string            `json:"id"`
	Amount           int64             `json:"amount"`
	Currency         string            `json:"currency"`
	Status           string            `json:"status"`
	ClientSecret     string            `json:"client_secret"`
	Created          int64             `json:"created"`
	Customer         ref               `json:"customer"`
	PaymentMethod    ref               `json:"payment_method"`
	Metadata         map[string]string `json:"metadata"`
	LastPaymentError *wireError        `json:"last_payment_error"`
}

// stripe returns the PaymentIntent as chargeFromIntent reads it.
func (w wireIntent) stripe() *stripego.PaymentIntent {
	pi := &stripego.PaymentIntent{
		ID: w.ID, Amount: w.Amount, Currency: stripego.Currency(w.Currency),
		Status: stripego.PaymentIntentStatus(w.Status), ClientSecret: w.ClientSecret,
		Created: w.Created, Metadata: w.Metadata,
	}
	if w.Customer != "" {
		pi.Customer = &stripego.Customer{ID: string(w.Customer)}
	}
	if w.PaymentMethod != "" {
		pi.PaymentMethod = &stripego.PaymentMethod{ID: string(w.PaymentMethod)}
	}
	if e := w.LastPaymentError; e != nil {
		pi.LastPaymentError = &stripego.Error{
			Code: stripego.ErrorCode(e.Code), DeclineCode: stripego.DeclineCode(e.DeclineCode), Msg: e.Message,
		}
		if e.PaymentMethod != "" {
			pi.LastPaymentError.PaymentMethod = &stripego.PaymentMethod{ID: string(e.PaymentMethod)}
		}
	}
	return pi
}

// wireSession is the part of a Checkout Session Topup reads.
type wireSession struct {
	Mode        string            `json:"mode"`
	Customer    ref               `json:"customer"`
	SetupIntent ref               `json:"setup_intent"`
	Metadata    map[string]string `json:"metadata"`
}

// wireSetupIntent is the part of a SetupIntent Topup reads.
type wireSetupIntent struct {
	ID            string            `json:"id"`
	Status        string            `json:"status"`
	Customer      ref               `json:"customer"`
	PaymentMethod ref               `json:"payment_method"`
	Metadata      map[string]string `json:"metadata"`
}

// stripe returns the SetupIntent with its payment method as a bare id, which
// setupCard fetches.
func (w wireSetupIntent) stripe() *stripego.SetupIntent {
	si := &stripego.SetupIntent{ID: w.ID, Status: stripego.SetupIntentStatus(w.Status)}
	if w.PaymentMethod != "" {
		si.PaymentMethod = &stripego.PaymentMethod{ID: string(w.PaymentMethod)}
	}
	return si
}

// wirePaymentMethod is the part of a payment method Topup reads.
type wirePaymentMethod struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Card *struct {
		Brand    string `json:"brand"`
		Last4    string `json:"last4"`
		ExpMonth int64  `json:"exp_month"`
		ExpYear  int64  `json:"exp_year"`
	} `json:"card"`
}

// stripe returns the payment method as cardFromPaymentMethod reads it.
func (w wirePaymentMethod) stripe() *stripego.PaymentMethod {
	pm := &stripego.PaymentMethod{ID: w.ID, Type: stripego.PaymentMethodType(w.Type)}
	if c := w.Card; c != nil {
		pm.Card = &stripego.PaymentMethodCard{
			Brand: stripego.PaymentMethodCardBrand(c.Brand), Last4: c.Last4, ExpMonth: c.ExpMonth, ExpYear: c.ExpYear,
		}
	}
	return pm
}

// wireRefund is the part of a Refund Topup reads.
type wireRefund struct {
	ID            string            `json:"id"`
	Amount        int64             `json:"amount"`
	Currency      string            `json:"currency"`
	Status        string            `json:"status"`
	FailureReason string            `json:"failure_reason"`
	Created       int64             `json:"created"`
	Metadata      map[string]string `json:"metadata"`
	PaymentIntent ref               `json:"payment_intent"`
	Charge        ref               `json:"charge"`
}

// stripe returns the Refund as refundFromStripe reads it.
func (w wireRefund) stripe() *stripego.Refund {
	re := &stripego.Refund{
		ID: w.ID, Amount: w.Amount, Currency: stripego.Currency(w.Currency),
		Status: stripego.RefundStatus(w.Status), FailureReason: stripego.RefundFailureReason(w.FailureReason),
		Created: w.Created, Metadata: w.Metadata,
	}
	if w.PaymentIntent != "" {
		re.PaymentIntent = &stripego.PaymentIntent{ID: string(w.PaymentIntent)}
	}
	return re
}

// wireBalanceTransaction is the part of a dispute's balance transaction
// Topup reads: a withdrawal is reported as "dispute" (a negative amount),
// a reinstatement as "dispute_reversal".
type wireBalanceTransaction struct {
	Amount            int64  `json:"amount"`
	ReportingCategory string `json:"reporting_category"`
}

// wireDispute is the part of a Dispute Topup reads.
type wireDispute struct {
	ID                  string              `json:"id"`
	Amount              int64               `json:"amount"`
	Currency            string              `json:"currency"`
	Status              string              `json:"status"`
	Reason              string              `json:"reason"`
	Created             int64               `json:"created"`
	Charge              ref                 `json:"charge"`
	PaymentIntent       ref                 `json:"payment_intent"`
	BalanceTransactions balanceTransactions `json:"balance_transactions"`
}

// balanceTransactions is a dispute's list of balance transactions. It never
// fails to decode: a list Topup cannot read is one it does not have, and
// the event's type still says whether funds moved.
type balanceTransactions []wireBalanceTransaction

// UnmarshalJSON reads the list, or nothing.
func (b *balanceTransactions) UnmarshalJSON(raw []byte) error {
	var list []wireBalanceTransaction
	if json.Unmarshal(raw, &list) != nil {
		list = nil
	}
	*b = list
	return nil
}

// moved reports whether the list holds a withdrawal and a reinstatement.
func (b balanceTransactions) moved() (withdrawn, reinstated bool) {
	for _, t := range b {
		switch {
		case t.ReportingCategory == "dispute_reversal" || (t.ReportingCategory == "" && t.Amount > 0):
			reinstated = true
		case t.ReportingCategory == "dispute" || t.Amount < 0:
			withdrawn = true
		}
	}
	return withdrawn, reinstated
}
