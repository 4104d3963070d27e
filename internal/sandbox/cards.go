package sandbox

// testCard is one of Stripe's test payment methods and what the sandbox
// does with it. The tokens, numbers and decline codes are Stripe's own
// (https://docs.stripe.com/testing), so the same calls behave alike in the
// sandbox and in Stripe test mode.
type testCard struct {
	token string
	brand string
	last4 string
	// decline is the decline code of every charge, "" when charges pass.
	decline string
	// authenticate makes every charge wait for 3-D Secure.
	authenticate bool
	// label says on the hosted setup page what the card does.
	label string
}

// Decline codes the sandbox gives.
const (
	// codeAuthenticationRequired is what an off-session charge on a card that
	// needs 3-D Secure is declined with, as Stripe does; the charge is left
	// requires_action so that the customer can authenticate it on-session.
	codeAuthenticationRequired = "authentication_required"
	// codeAuthenticationFailure is Stripe's code for a failed 3-D Secure
	// challenge.
	codeAuthenticationFailure = "payment_intent_authentication_failure"
)

var testCards = []testCard{
	{token: "pm_card_visa", brand: "visa", last4: "4242", label: "Visa 4242: charges succeed"},
	{token: "pm_card_mastercard", brand: "mastercard", last4: "4444", label: "Mastercard 4444: charges succeed"},
	{token: "pm_card_amex", brand: "amex", last4: "8431", label: "American Express 8431: charges succeed"},
	{token: "pm_card_authenticationRequired", brand: "visa", last4: "3184", authenticate: true,
		label: "Visa 3184: every charge needs 3-D Secure"},
	{token: "pm_card_chargeDeclined", brand: "visa", last4: "0002", decline: "card_declined",
		label: "Visa 0002: charges declined (card_declined)"},
	{token: "pm_card_chargeDeclinedInsufficientFunds", brand: "visa", last4: "9995", decline: "insufficient_funds",
		label: "Visa 9995: charges declined (insufficient_funds)"},
	{token: "pm_card_chargeDeclinedLostCard", brand: "visa", last4: "9987", decline: "lost_card",
		label: "Visa 9987: charges declined (lost_card, never retried)"},
	{token: "pm_card_chargeDeclinedStolenCard", brand: "visa", last4: "9979", decline: "stolen_card",
		label: "Visa 9979: charges declined (stolen_card, never retried)"},
	{token: "pm_card_chargeCustomerFail", brand: "visa", last4: "0341", decline: "card_declined",
		label: "Visa 0341: attaches, then every charge is declined"}, {token: tokenPendingRefund, brand: "visa", last4: "7726",
		label: "Visa 7726: charges succeed, refunds stay pending"},
	{token: tokenRefundFail, brand: "visa", last4: "5126",
		label: "Visa 5126: charges succeed, refunds succeed and then fail"},
}

func lookupTestCard(token string) (testCard, bool) {
	for _, c := range testCards {
		if c.token == token {
			return c, true
		}
	}
	return testCard{}, false
}

// CardOption is a test card a person can pick on the sandbox's hosted setup
// page.
type CardOption struct {
	// Token is the value to hand to ChooseCard (pm_card_visa…).
	Token string
	Brand string
	Last4 string
	// Label says what charges on the card do, for the page.
	Label string
}

// CardOptions lists the test cards of the hosted setup page, the ones that
// succeed first.
func CardOptions() []CardOption {
	out := make([]CardOption, len(testCards))
	for i, c := range testCards {
		out[i] = CardOption{Token: c.token, Brand: c.brand, Last4: c.last4, Label: c.label}
	}
	return out
}
