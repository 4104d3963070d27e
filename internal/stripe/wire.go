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
