package sandbox_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/payment"
	"github.com/topup/topup/internal/sandbox"
	"github.com/topup/topup/internal/sqlite"
	"github.com/topup/topup/internal/sqlstore"
)

var epoch = time.Date(2026, time.March, 4, 5, 6, 7, 0, time.UTC)

const baseURL = "http://127.0.0.1:8080"

// fixture is one test's sandbox on a fresh SQLite database.
type fixture struct {
	t     *testing.T
	p     *sandbox.Provider
	store *sqlstore.DB
	clock *clock.Manual
	ids   *ids.Generator
}

func setup(t *testing.T, cfg sandbox.Config) *fixture {
	t.Helper()
	c := clock.NewManual(epoch)
	g := ids.New(c)
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "topup.db"), c, g)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	cfg.Clock, cfg.IDs, cfg.BaseURL = c, g, baseURL
	return &fixture{t: t, p: sandbox.New(s.Sandbox, cfg), store: s, clock: c, ids: g}
}

// card attaches token to customer.
func (f *fixture) card(customer, token string) payment.Card {
	f.t.Helper()
	c, err := f.p.AttachPaymentMethod(f.t.Context(), customer, token)
	if err != nil {
		f.t.Fatalf("attach %s: %v", token, err)
	}
	return c
}

func (f *fixture) charge(req payment.ChargeRequest) payment.Charge {
	f.t.Helper()
	c, err := f.p.Charge(f.t.Context(), req)
	if err != nil {
		f.t.Fatalf("charge %+v: %v", req, err)
	}
	return c
}

// logged returns the sandbox's whole charge log.
func (f *fixture) logged() []sandbox.Charge {
	f.t.Helper()
	cs, _, err := f.p.Charges(f.t.Context(), 100, "")
	if err != nil {
		f.t.Fatalf("list charges: %v", err)
	}
	return cs
}

func request(customer, card, key string) payment.ChargeRequest {
	return payment.ChargeRequest{
		TopUpID: "tu_" + key, IdempotencyKey: key, Customer: customer, PaymentMethod: card,
		Amount: 2500, Currency: "usd", OffSession: true,
	}
}

func TestTestCards(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		token       string
		brand       string
		last4       string
		offSession  bool
		status      payment.ChargeStatus
		declineCode string
	}{
		{"pm_card_visa", "visa", "4242", true, payment.Succeeded, ""},
		{"pm_card_mastercard", "mastercard", "4444", true, payment.Succeeded, ""},
		{"pm_card_amex", "amex", "8431", false, payment.Succeeded, ""},
		{"pm_card_chargeDeclined", "visa", "0002", true, payment.Declined, "card_declined"},
		{"pm_card_chargeDeclinedInsufficientFunds", "visa", "9995", true, payment.Declined, "insufficient_funds"},
		{"pm_card_chargeDeclinedLostCard", "visa", "9987", true, payment.Declined, "lost_card"},
		{"pm_card_chargeDeclinedStolenCard", "visa", "9979", true, payment.Declined, "stolen_card"},
		{"pm_card_chargeCustomerFail", "visa", "0341", true, payment.Declined, "card_declined"},
		{"pm_card_authenticationRequired", "visa", "3184", true, payment.RequiresAction, "authentication_required"},
		{"pm_card_authenticationRequired", "visa", "3184", false, payment.RequiresAction, ""},
	} {
		session := "on-session"
		if tc.offSession {
			session = "off-session"
		}
		// Subtest names stay unique: a repeated name gets a "#01" suffix,
		// which sqlite.Open's file: URI would read as a fragment.
		t.Run(tc.token+"/"+session, func(t *testing.T) {
			t.Parallel()
			f := setup(t, sandbox.Config{})
			cus, _ := f.p.EnsureCustomer(t.Context(), "", "acct_1", "a@example.com")
			card := f.card(cus, tc.token)
			if !strings.HasPrefix(card.ID, "pm_") || card.ID == tc.token || card.Brand != tc.brand || card.Last4 != tc.last4 ||
				card.ExpMonth != 12 || card.ExpYear != epoch.Year()+3 {
				t.Fatalf("card = %+v, want a new pm_ id, %s %s, 12/%d", card, tc.brand, tc.last4, epoch.Year()+3)
			}
			req := request(cus, card.ID, "k1")
			req.OffSession = tc.offSession
			c := f.charge(req)
			if c.Status != tc.status || c.DeclineCode != tc.declineCode {
				t.Fatalf("charge = %s (%q), want %s (%q)", c.Status, c.DeclineCode, tc.status, tc.declineCode)
			}
			if !strings.HasPrefix(c.ID, "pi_") || c.TopUpID != "tu_k1" || c.Amount != 2500 || c.Currency != "usd" || !c.Created.Equal(epoch) {
				t.Fatalf("charge = %+v", c)
			}
			if wantSecret := tc.status == payment.RequiresAction; wantSecret != strings.HasPrefix(c.ClientSecret, c.ID+"_secret_") {
				t.Fatalf("client secret %q on a %s charge", c.ClientSecret, c.Status)
			}
			got, err := f.p.GetCharge(t.Context(), c.ID)
			if err != nil || got != c {
				t.Fatalf("GetCharge = %+v, %v; want %+v", got, err, c)
			}
		})
	}
}

func TestAttach(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	ctx := t.Context()
	a, b := f.card("cus_1", "pm_card_visa"), f.card("cus_1", "pm_card_visa")
	if a.ID == b.ID {
		t.Fatalf("attaching pm_card_visa twice gave one id %s", a.ID)
	}
	if again := f.card("cus_1", a.ID); again != a {
		t.Fatalf("re-attaching %s to its customer = %+v", a.ID, again)
	}
	for name, try := range map[string][2]string{
		"unknown token":         {"cus_1", "pm_card_nope"},
		"another customer's":    {"cus_2", a.ID},
		"unknown payment id":    {"cus_1", "pm_01unknown"},
		"test token misspelled": {"cus_1", "pm_card_Visa"},
	} {
		if _, err := f.p.AttachPaymentMethod(ctx, try[0], try[1]); !errors.Is(err, payment.ErrCardRefused) {
			t.Errorf("%s: attach %s = %v, want ErrCardRefused", name, try[1], err)
		}
	}
	if _, err := f.p.AttachPaymentMethod(ctx, "", "pm_card_visa"); err == nil || errors.Is(err, payment.ErrCardRefused) {
		t.Errorf("attach without customer = %v, want a plain error", err)
	}
}

func TestEnsureCustomer(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	if got, err := f.p.EnsureCustomer(t.Context(), "cus_kept", "acct_1", ""); got != "cus_kept" || err != nil {
		t.Fatalf("EnsureCustomer(cus_kept) = %q, %v", got, err)
	}
	a, _ := f.p.EnsureCustomer(t.Context(), "", "acct_1", "")
	b, _ := f.p.EnsureCustomer(t.Context(), "", "acct_2", "")
	if !strings.HasPrefix(a, "cus_") || a == b {
		t.Fatalf("new customers %q and %q", a, b)
	}
}

func TestDetach(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	ctx := t.Context()
	card := f.card("cus_1", "pm_card_visa")
	if err := f.p.DetachPaymentMethod(ctx, card.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.p.DetachPaymentMethod(ctx, card.ID); err != nil {
		t.Fatalf("detaching again = %v, want success (a retried removal finishes)", err)
	}
	if err := f.p.DetachPaymentMethod(ctx, "pm_unknown"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("detach unknown = %v, want ErrNotFound", err)
	}
	_, err := f.p.Charge(ctx, request("cus_1", card.ID, "k1"))
	if err == nil || errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("charging a detached card = %v, want a plain error", err)
	}
	if _, err := f.p.AttachPaymentMethod(ctx, "cus_1", card.ID); !errors.Is(err, payment.ErrCardRefused) {
		t.Fatalf("re-attaching a detached card = %v, want ErrCardRefused", err)
	}
	if n := len(f.logged()); n != 0 {
		t.Fatalf("%d charges logged, want none", n)
	}
}

func TestChargeRefusesBadRequests(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	card := f.card("cus_1", "pm_card_visa")
	for name, edit := range map[string]func(*payment.ChargeRequest){
		"unknown card":     func(r *payment.ChargeRequest) { r.PaymentMethod = "pm_card_visa" },
		"other customer":   func(r *payment.ChargeRequest) { r.Customer = "cus_2" },
		"no key":           func(r *payment.ChargeRequest) { r.IdempotencyKey = "" },
		"zero amount":      func(r *payment.ChargeRequest) { r.Amount = 0 },
		"no currency":      func(r *payment.ChargeRequest) { r.Currency = "" },
		"no paymentmethod": func(r *payment.ChargeRequest) { r.PaymentMethod = "" },
	} {
		req := request("cus_1", card.ID, "k-"+name)
		edit(&req)
		if _, err := f.p.Charge(t.Context(), req); err == nil || errors.Is(err, payment.ErrUnknownOutcome) {
			t.Errorf("%s: charge = %v, want a plain error", name, err)
		}
	}
	if n := len(f.logged()); n != 0 {
		t.Fatalf("%d charges logged, want none", n)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	ctx := t.Context()
	card := f.card("cus_1", "pm_card_visa")
	first := f.charge(request("cus_1", card.ID, "k1"))
	f.clock.Advance(time.Hour)
	again := f.charge(request("cus_1", card.ID, "k1"))
	if again != first {
		t.Fatalf("replay = %+v, want %+v", again, first)
	}
	if n := len(f.logged()); n != 1 {
		t.Fatalf("%d charges logged after a replay, want 1", n)
	}

	other := request("cus_1", card.ID, "k1")
	other.Amount = 9900
	if _, err := f.p.Charge(ctx, other); err == nil || errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("same key, other amount = %v, want a plain error", err)
	}

	// Stripe forgets a key after 24 hours: the same key then charges again,
	// and only FindCharge can tell that the top-up was paid already.
	f.clock.Advance(24 * time.Hour)
	late := f.charge(request("cus_1", card.ID, "k1"))
	if late.ID == first.ID {
		t.Fatalf("a key older than 24 hours replayed charge %s", first.ID)
	}
	if n := len(f.logged()); n != 2 {
		t.Fatalf("%d charges logged, want 2", n)
	}
	found, ok, err := f.p.FindCharge(ctx, "cus_1", "tu_k1")
	if err != nil || !ok || found.ID != late.ID {
		t.Fatalf("FindCharge = %+v, %v, %v; want the newest, %s", found, ok, err, late.ID)
	}
}

func TestKeyKeptForever(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{KeyTTL: -1})
	card := f.card("cus_1", "pm_card_visa")
	first := f.charge(request("cus_1", card.ID, "k1"))
	f.clock.Advance(30 * 24 * time.Hour)
	if again := f.charge(request("cus_1", card.ID, "k1")); again.ID != first.ID {
		t.Fatalf("with KeyTTL < 0 a month-old key made charge %s", again.ID)
	}
}

// A caller that stops waiting does not know whether it paid, but the
// charge happened, and a retry under the same key tells its outcome.
func TestLatencyTimeoutStillCharges(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{Latency: time.Minute})
	card := f.card("cus_1", "pm_card_chargeDeclinedInsufficientFunds")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := f.p.Charge(ctx, request("cus_1", card.ID, "k1"))
	if !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("charge past its deadline = %v, want ErrUnknownOutcome", err)
	}
	log := f.logged()
	if len(log) != 1 || log[0].IdempotencyKey != "k1" || log[0].Status != payment.Declined {
		t.Fatalf("log = %+v, want the declined charge", log)
	}

	// The process restarts without latency and retries.
	p := sandbox.New(f.store.Sandbox, sandbox.Config{Clock: f.clock, IDs: f.ids})
	got, err := p.Charge(t.Context(), request("cus_1", card.ID, "k1"))
	if err != nil || got.ID != log[0].ID || got.Status != payment.Declined || got.DeclineCode != "insufficient_funds" {
		t.Fatalf("retry = %+v, %v; want charge %s declined insufficient_funds", got, err, log[0].ID)
	}
	if n := len(f.logged()); n != 1 {
		t.Fatalf("%d charges logged, want 1", n)
	}

	done, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if _, err := f.p.Charge(done, request("cus_1", card.ID, "k2")); !errors.Is(err, payment.ErrUnknownOutcome) {
		t.Fatalf("charge on an ended context = %v, want ErrUnknownOutcome", err)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{Latency: 50 * time.Millisecond})
	card := f.card("cus_1", "pm_card_visa")
	start := time.Now()
	if c := f.charge(request("cus_1", card.ID, "k1")); c.Status != payment.Succeeded {
		t.Fatalf("charge = %+v", c)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("charge took %v, want at least the 50ms latency", took)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	ctx := t.Context()
	card := f.card("cus_1", "pm_card_authenticationRequired")

	pass := f.charge(request("cus_1", card.ID, "k1"))
	got, err := f.p.Authenticate(ctx, pass.ID, true)
	if err != nil || got.Status != payment.Succeeded || got.DeclineCode != "" || got.ClientSecret != "" || got.ID != pass.ID {
		t.Fatalf("authenticate ok = %+v, %v; want succeeded", got, err)
	}
	if again, err := f.p.Authenticate(ctx, pass.ID, false); err != nil || again != got {
		t.Fatalf("answering twice = %+v, %v; want it unchanged", again, err)
	}
	if read, _ := f.p.GetCharge(ctx, pass.ID); read != got {
		t.Fatalf("GetCharge = %+v, want %+v", read, got)
	}
	if replay := f.charge(request("cus_1", card.ID, "k1")); replay != got {
		t.Fatalf("replay after authentication = %+v, want %+v", replay, got)
	}

	fail := f.charge(request("cus_1", card.ID, "k2"))
	got, err = f.p.Authenticate(ctx, fail.ID, false)
	if err != nil || got.Status != payment.Declined || got.DeclineCode != "payment_intent_authentication_failure" {
		t.Fatalf("authenticate failed = %+v, %v; want declined payment_intent_authentication_failure", got, err)
	}

	if _, err := f.p.Authenticate(ctx, "pi_unknown", true); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("authenticate unknown = %v, want ErrNotFound", err)
	}
}

// TestCancelCharge: a canceled 3-D Secure charge can no longer be paid by
// a late answer; a paid charge is not canceled.
func TestCancelCharge(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	ctx := t.Context()
	card := f.card("cus_1", "pm_card_authenticationRequired")

	waiting := f.charge(request("cus_1", card.ID, "k1"))
	got, err := f.p.CancelCharge(ctx, waiting.ID)
	if err != nil || got.Status != payment.Declined || got.DeclineCode != "canceled" {
		t.Fatalf("cancel a waiting charge = %+v, %v; want declined canceled", got, err)
	}
	if late, err := f.p.Authenticate(ctx, waiting.ID, true); err != nil || late.Status != payment.Declined {
		t.Fatalf("authenticating after cancel = %+v, %v; want it still declined", late, err)
	}

	paid := f.charge(request("cus_1", card.ID, "k2"))
	if _, err := f.p.Authenticate(ctx, paid.ID, true); err != nil {
		t.Fatal(err)
	}
	if got, err := f.p.CancelCharge(ctx, paid.ID); err != nil || got.Status != payment.Succeeded {
		t.Fatalf("cancel a paid charge = %+v, %v; want it succeeded", got, err)
	}
	if _, err := f.p.CancelCharge(ctx, "pi_unknown"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("cancel unknown = %v, want ErrNotFound", err)
	}
}

func TestAuthenticateSecret(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	ctx := t.Context()
	card := f.card("cus_1", "pm_card_authenticationRequired")
	c := f.charge(request("cus_1", card.ID, "k1"))
	for _, wrong := range []string{"", c.ID, c.ID + "_secret_x", strings.TrimSuffix(c.ClientSecret, c.ClientSecret[len(c.ClientSecret)-1:]) + "!"} {
		if _, err := f.p.AuthenticateSecret(ctx, wrong, true); !errors.Is(err, payment.ErrNotFound) {
			t.Errorf("secret %q = %v, want ErrNotFound", wrong, err)
		}
	}
	got, err := f.p.AuthenticateSecret(ctx, c.ClientSecret, true)
	if err != nil || got.Status != payment.Succeeded {
		t.Fatalf("authenticate with the secret = %+v, %v", got, err)
	}
}

func TestFindCharge(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	ctx := t.Context()
	if _, ok, err := f.p.FindCharge(ctx, "cus_1", "tu_k1"); ok || err != nil {
		t.Fatalf("FindCharge before any charge = %v, %v", ok, err)
	}
	card := f.card("cus_1", "pm_card_visa")
	c := f.charge(request("cus_1", card.ID, "k1"))
	f.charge(request("cus_1", card.ID, "k2"))
	for _, customer := range []string{"cus_1", ""} {
		got, ok, err := f.p.FindCharge(ctx, customer, "tu_k1")
		if err != nil || !ok || got != c {
			t.Fatalf("FindCharge(%q) = %+v, %v, %v; want %+v", customer, got, ok, err, c)
		}
	}
	if _, ok, _ := f.p.FindCharge(ctx, "cus_2", "tu_k1"); ok {
		t.Fatal("FindCharge found another customer's charge")
	}
}

func TestChargesLog(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	ctx := t.Context()
	card := f.card("cus_1", "pm_card_visa")
	var made []string
	for _, k := range []string{"k1", "k2", "k3"} {
		made = append(made, f.charge(request("cus_1", card.ID, k)).ID)
	}
	page, more, err := f.p.Charges(ctx, 2, "")
	if err != nil || !more || len(page) != 2 || page[0].ID != made[2] || page[1].ID != made[1] {
		t.Fatalf("first page = %+v, %v, %v; want %v newest first", page, more, err, made[1:])
	}
	if page[0].IdempotencyKey != "k3" || page[0].Amount != 2500 || page[0].Status != payment.Succeeded || !page[0].CreatedAt.Equal(epoch) {
		t.Fatalf("logged charge = %+v", page[0])
	}
	page, more, err = f.p.Charges(ctx, 2, page[1].ID)
	if err != nil || more || len(page) != 1 || page[0].ID != made[0] {
		t.Fatalf("second page = %+v, %v, %v", page, more, err)
	}
	if _, _, err := f.p.Charges(ctx, 2, "pi_unknown"); apperr.As(err) == nil || apperr.As(err).Field != "starting_after" {
		t.Fatalf("unknown starting_after = %v, want invalid starting_after", err)
	}
}

func TestHostedSetup(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	ctx := t.Context()
	page, err := f.p.SetupURL(ctx, "cus_1", "acct_1", "https://app.example/cards?from=setup", "https://app.example/cards")
	if err != nil {
		t.Fatal(err)
	}
	id, ok := strings.CutPrefix(page, baseURL+"/sandbox/setup/")
	if !ok || !strings.HasPrefix(id, "cs_") {
		t.Fatalf("setup URL = %q", page)
	}
	s, err := f.p.Session(ctx, id)
	if err != nil || s.Customer != "cus_1" || s.AccountID != "acct_1" || s.CancelURL != "https://app.example/cards" || s.Completed() {
		t.Fatalf("session = %+v, %v", s, err)
	}
	if _, err := f.p.CompleteSetup(ctx, "cus_1", id); !errors.Is(err, sandbox.ErrSetupIncomplete) {
		t.Fatalf("CompleteSetup before a card was picked = %v", err)
	}
	if _, err := f.p.ChooseCard(ctx, id, "pm_card_bogus"); !errors.Is(err, payment.ErrCardRefused) {
		t.Fatalf("ChooseCard(bogus) = %v, want ErrCardRefused", err)
	}

	redirect, err := f.p.ChooseCard(ctx, id, "pm_card_mastercard")
	if want := "https://app.example/cards?from=setup&session_id=" + id; err != nil || redirect != want {
		t.Fatalf("ChooseCard = %q, %v; want %q", redirect, err, want)
	}
	if _, err := f.p.CompleteSetup(ctx, "cus_other", id); err == nil {
		t.Fatal("CompleteSetup gave another customer's session card")
	}
	card, err := f.p.CompleteSetup(ctx, "cus_1", id)
	if err != nil || card.Brand != "mastercard" || card.Last4 != "4444" || !strings.HasPrefix(card.ID, "pm_") {
		t.Fatalf("CompleteSetup = %+v, %v", card, err)
	}
	// Submitting the page again attaches nothing more.
	if again, err := f.p.ChooseCard(ctx, id, "pm_card_visa"); err != nil || again != redirect {
		t.Fatalf("second ChooseCard = %q, %v", again, err)
	}
	if again, _ := f.p.CompleteSetup(ctx, "cus_1", id); again != card {
		t.Fatalf("CompleteSetup after a second submission = %+v, want %+v", again, card)
	}
	if c := f.charge(request("cus_1", card.ID, "k1")); c.Status != payment.Succeeded {
		t.Fatalf("charging the card saved on the page = %+v", c)
	}

	if _, err := f.p.Session(ctx, "cs_unknown"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("unknown session = %v", err)
	}
	if _, err := f.p.CompleteSetup(ctx, "cus_1", "cs_unknown"); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("CompleteSetup(unknown) = %v", err)
	}
}

func TestSetupRedirects(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	ctx := t.Context()
	for _, tc := range []struct{ success, want string }{
		{"https://app.example/done", "https://app.example/done?session_id=ID"},
		{"https://app.example/done?a=1", "https://app.example/done?a=1&session_id=ID"},
		{"https://app.example/done#cards", "https://app.example/done?session_id=ID#cards"},
		{"https://app.example/done?s={CHECKOUT_SESSION_ID}", "https://app.example/done?s=ID"},
	} {
		page, err := f.p.SetupURL(ctx, "cus_1", "acct_1", tc.success, "")
		if err != nil {
			t.Fatal(err)
		}
		id := page[strings.LastIndex(page, "/")+1:]
		got, err := f.p.ChooseCard(ctx, id, "pm_card_visa")
		if want := strings.ReplaceAll(tc.want, "ID", id); err != nil || got != want {
			t.Errorf("success URL %q: redirect = %q, %v; want %q", tc.success, got, err, want)
		}
	}
}

func TestSetupSessionExpires(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	page, err := f.p.SetupURL(t.Context(), "cus_1", "acct_1", "https://app.example/done", "")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(sandbox.SessionTTL)
	if _, err := f.p.ChooseCard(t.Context(), page[strings.LastIndex(page, "/")+1:], "pm_card_visa"); !errors.Is(err, sandbox.ErrSessionExpired) {
		t.Fatalf("ChooseCard on an expired session = %v", err)
	}
}

func TestCardOptions(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	opts := sandbox.CardOptions()
	if len(opts) < 9 || opts[0].Token != "pm_card_visa" {
		t.Fatalf("card options = %+v", opts)
	}
	for _, o := range opts {
		if o.Label == "" {
			t.Errorf("option %s has no label", o.Token)
		}
		if c := f.card("cus_1", o.Token); c.Last4 != o.Last4 || c.Brand != o.Brand {
			t.Errorf("option %+v attaches as %+v", o, c)
		}
	}
}

// The same seed and clock give the same ids and client secrets, so a
// simulation replays exactly.
func TestDeterministic(t *testing.T) {
	t.Parallel()
	run := func() []string {
		c := clock.NewManual(epoch)
		g := ids.NewSeeded(c, 42)
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "topup.db"), c, g)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		p := sandbox.New(s.Sandbox, sandbox.Config{Clock: c, IDs: g})
		cus, _ := p.EnsureCustomer(t.Context(), "", "acct_1", "")
		card, err := p.AttachPaymentMethod(t.Context(), cus, "pm_card_authenticationRequired")
		if err != nil {
			t.Fatal(err)
		}
		ch, err := p.Charge(t.Context(), request(cus, card.ID, "k1"))
		if err != nil {
			t.Fatal(err)
		}
		return []string{cus, card.ID, ch.ID, ch.ClientSecret}
	}
	a, b := run(), run()
	if strings.Join(a, " ") != strings.Join(b, " ") {
		t.Fatalf("two seeded runs differ:\n%v\n%v", a, b)
	}
}

// The hosted setup pages and 3-D Secure client secrets that a URL carries
// are secrets: minted in one millisecond, two share nothing that would let
// one be guessed from the other (ids minted so share their first
// characters), and each holds at least 128 random bits.
func TestURLSecretsAreRandom(t *testing.T) {
	t.Parallel()
	f := setup(t, sandbox.Config{})
	ctx := t.Context()
	var sessions []string
	for range 2 {
		page, err := f.p.SetupURL(ctx, "cus_1", "acct_1", "https://app.example/cards", "")
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, strings.TrimPrefix(page, baseURL+"/sandbox/setup/"))
	}
	cus, _ := f.p.EnsureCustomer(ctx, "", "acct_1", "")
	card := f.card(cus, "pm_card_authenticationRequired")
	var secrets []string
	for _, key := range []string{"k1", "k2"} {
		c := f.charge(request(cus, card.ID, key))
		_, random, _ := strings.Cut(c.ClientSecret, "_secret_")
		secrets = append(secrets, random)
	}
	for _, tc := range []struct {
		what, prefix string
		got          []string
	}{
		{"setup session", "cs_", sessions},
		{"client secret", "", secrets},
	} {
		a, b := strings.TrimPrefix(tc.got[0], tc.prefix), strings.TrimPrefix(tc.got[1], tc.prefix)
		if len(a) < 8 || len(b) < 8 || a[:8] == b[:8] {
			t.Errorf("two %ss minted in one millisecond begin alike: %s, %s", tc.what, tc.got[0], tc.got[1])
		}
		for _, s := range tc.got {
			if raw, ok := ids.DecodeSecret(tc.prefix, s); !ok || len(raw) < 16 {
				t.Errorf("%s %q holds %d random bytes; want at least 16", tc.what, s, len(raw))
			}
		}
	}
}
