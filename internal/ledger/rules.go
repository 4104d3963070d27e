package ledger

import (
	"fmt"

	"github.com/topup/topup/internal/apperr"
)

// Action names a write by or for an account, for the closed-account rule
// (PRODUCT.md "Conventions"): the API, the console and the top-up engine
// all ask Account.May before they write, so the rule lives here only.
type Action string

// Writes that add or spend money or change an account's setup: a closed
// account refuses them with 409 account_closed.
const (
	ActUsage      Action = "record usage"
	ActCredit     Action = "receive credit"
	ActTopUp      Action = "top up"
	ActCharge     Action = "be charged" // the engine, before a first attempt
	ActSettings   Action = "change Automatic Top-Up settings"
	ActAddCard    Action = "add a payment method"
	ActSetDefault Action = "change its default payment method"
	ActBudget     Action = "add or change budgets"
	ActAlerts     Action = "change low balance alerts"
	ActEndpoint   Action = "add webhook endpoints"
	ActCreateKey  Action = "create API keys"
	ActLoginLink  Action = "get console sign-in links"
	ActHold       Action = "hold or capture credit"
)

// Writes that wind an account down: a closed account still allows them.
const (
	ActRevokeKey      Action = "revoke API keys"
	ActRemoveCard     Action = "remove payment methods"
	ActDeleteBudget   Action = "remove budgets"
	ActDeleteEndpoint Action = "remove webhook endpoints"
	ActReleaseHold    Action = "release holds"
	ActProviderEvent  Action = "apply provider events"
)

// windsDown lists the actions a closed account still allows.
var windsDown = map[Action]bool{
	ActRevokeKey: true, ActRemoveCard: true, ActDeleteBudget: true, ActDeleteEndpoint: true,
	ActReleaseHold: true, ActProviderEvent: true,
}

// May reports whether act may be done by or for the account: nil, or an
// AccountClosed refusal saying what a closed account cannot do. Stores call
// it inside the write transaction, on the row they locked, where a close
// racing the write matters (settings, top-ups, cards, budgets).
func (a Account) May(act Action) error {
	if a.Status == Active || windsDown[act] {
		return nil
	}
	return &apperr.Error{Code: apperr.AccountClosed, Message: fmt.Sprintf("account %s is closed: it cannot %s", a.ID, act)}
}

// ReasonAccountClosed is why a closed account is not spendable.
const ReasonAccountClosed = "account_closed"

// StopReason says why the operator should stop the account, judging by the
// account alone (budgets aside): closed, or available credit (the balance
// less what holds reserve) not above zero; "" when it may spend.
func (a Account) StopReason() string {
	switch {
	case a.Status != Active:
		return ReasonAccountClosed
	case a.Available() <= 0:
		return ReasonInsufficientBalance
	}
	return ""
}

// Per-account limits (PRODUCT.md "Conventions"): one more answers 409
// limit_exceeded, checked in the transaction that would add it, after the
// account's row is locked, so that two requests racing at the limit cannot
// both pass.
const (
	MaxPaymentMethods   = 20
	MaxAPIKeys          = 20
	MaxBudgets          = 100
	MaxWebhookEndpoints = 16
	MaxActiveHolds      = 1000
)

// CheckLimit refuses one more of what (e.g. "payment methods") when the
// account already has have of at most max.
func CheckLimit(what string, have, max int) error {
	if have < max {
		return nil
	}
	return apperr.New(apperr.LimitExceeded, "an account may have at most %d %s", max, what)
}
