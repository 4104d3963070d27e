package stripe

import (
	"errors"
	"fmt"
	"go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v85"

	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/payment"
)

// stripe-mock checks every request against Stripe's OpenAPI spec and answers
// with canned objects. One process serves the whole package; it is started
// by the first test that needs it and stopped by TestMain.
var stripeMock struct {
	once sync.Once
	cmd  *exec.Cmd
	base string // http://127.0.0.1:port
	err  error  // why it could not start
}

func TestMain(m *testing.M) {
	code := m.Run()
	if stripeMock.cmd != nil {
		_ = stripeMock.cmd.Process.Kill()
		_ = stripeMock.cmd.Wait()
	}
	os.Exit(code)
}

const installStripeMock = "go install github.com/stripe/stripe-mock@v0.203.0"

// stripeMockBinary finds stripe-mock on PATH or in $GOPATH/bin.
func stripeMockBinary() (string, error) {
	if path, err := exec.LookPath("stripe-mock"); err == nil {
		return path, nil
	}
	gopath := build.Default.GOPATH
	if first, _, ok := strings.Cut(gopath, string(os.PathListSeparator)); ok {
		gopath = first
	}
	path := filepath.Join(gopath, "bin", "stripe-mock")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("stripe-mock is not on PATH nor at %s", path)
	}
	return path, nil
}

// freePort asks the kernel for a loopback port nobody is using.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startStripeMock() (*exec.Cmd, string, error) {
	bin, err := stripeMockBinary()
	if err != nil {
		return nil, "", err
	}
	httpAddr, err := freePort()
	if err != nil {
		return nil, "", err
	}
	httpsAddr, err := freePort()
	if err != nil {
		return nil, "", err
	}
	// Both addresses are given: without -https-addr stripe-mock also
	// listens on every interface.
	cmd := exec.Command(bin, "-http-addr", httpAddr, "-https-addr", httpsAddr)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", httpAddr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return cmd, "http://" + httpAddr, nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, "", fmt.Errorf("stripe-mock did not answer on %s within 20 s: %s", httpAddr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mockProvider returns a Provider talking to the shared stripe-mock. Without
// stripe-mock the test is skipped, except in CI where it must run.
func mockProvider(t *testing.T) *Provider {
	t.Helper()
	stripeMock.once.Do(func() {
		stripeMock.cmd, stripeMock.base, stripeMock.err = startStripeMock()
	})
	if stripeMock.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("stripe-mock is required in CI (%s): %v", installStripeMock, stripeMock.err)
		}
		t.Skipf("stripe-mock not installed: %s (%v)", installStripeMock, stripeMock.err)
	}
	p, err := New(Config{SecretKey: "sk_test_123", WebhookSecret: "whsec_test", APIBase: stripeMock.base})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// assertAccepted fails when stripe-mock refused a request: that is a request
// Stripe would refuse too.
func assertAccepted(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("stripe-mock refused the request: %v", err)
	}
}

// TestStripeMockAcceptsEveryRequest sends each request the provider makes to
// stripe-mock, which holds them against Stripe's OpenAPI spec. stripe-mock
// answers canned objects (PaymentIntents are always requires_payment_method),
// so outcomes are proved against the fake server in charge_test.go.
func TestStripeMockAcceptsEveryRequest(t *testing.T) {
	t.Parallel()
	p := mockProvider(t)
	ctx := t.Context()

	t.Run("EnsureCustomer creates a customer", func(t *testing.T) {
		id, err := p.EnsureCustomer(ctx, "", "acc_1", "ada@example.com")
		assertAccepted(t, err)
		if !strings.HasPrefix(id, "cus_") {
			t.Errorf("customer id = %q, want cus_…", id)
		}
	})
	t.Run("EnsureCustomer keeps an existing customer", func(t *testing.T) {
		id, err := p.EnsureCustomer(ctx, "cus_existing", "acc_1", "ada@example.com")
		if err != nil || id != "cus_existing" {
			t.Errorf("EnsureCustomer = %q, %v; want cus_existing, nil", id, err)
		}
	})
	t.Run("AttachPaymentMethod saves through a confirmed off-session SetupIntent", func(t *testing.T) {
		si, err := p.client.V1SetupIntents.Create(ctx, saveCardParams("cus_123", "pm_card_visa"))
		assertAccepted(t, err)
		// stripe-mock's canned SetupIntent is requires_payment_method, so
		// the outcomes are proved against the fake server; here, that the
		// expanded card is read.
		card, err := p.setupCard(ctx, si)
		if err != nil || card.ID == "" || card.Last4 == "" || card.ExpYear == 0 {
			t.Errorf("setupCard = %+v, %v; want the expanded card", card, err)
		}
		_, err = p.AttachPaymentMethod(ctx, "cus_123", "pm_card_visa")
		if err != nil && strings.Contains(err.Error(), "invalid_request_error") {
			t.Errorf("stripe-mock refused AttachPaymentMethod's request: %v", err)
		}
	})
	t.Run("cancel an unfinished SetupIntent", func(t *testing.T) {
		_, err := p.client.V1SetupIntents.Cancel(ctx, "seti_123", nil)
		assertAccepted(t, err)
	})
	t.Run("DetachPaymentMethod", func(t *testing.T) {
		assertAccepted(t, p.DetachPaymentMethod(ctx, "pm_123"))
	})
	t.Run("SetupURL", func(t *testing.T) {
		u, err := p.SetupURL(ctx, "cus_123", "acc_1", "https://topup.test/cards/done", "https://topup.test/cards")
		assertAccepted(t, err)
		if !strings.HasPrefix(u, "https://checkout.stripe.com/") {
			t.Errorf("setup URL = %q, want a Stripe Checkout page", u)
		}
	})
	t.Run("CompleteSetup retrieves the session with its card", func(t *testing.T) {
		// stripe-mock's canned session is an open payment-mode one, so
		// CompleteSetup itself (rightly) refuses it; the request and the
		// reading of the expanded card are what can be proved here.
		s, err := p.setupSession(ctx, "cs_test_123")
		assertAccepted(t, err)
		card, err := p.setupCard(ctx, s.SetupIntent)
		if err != nil || card.ID == "" || card.Last4 == "" {
			t.Errorf("setupCard = %+v, %v; want the expanded card", card, err)
		}
		if _, err := p.CompleteSetup(ctx, "cus_1", "cs_test_123"); err == nil || errors.Is(err, payment.ErrUnknownOutcome) || strings.Contains(err.Error(), "invalid_request_error") {
			t.Errorf("CompleteSetup on an open session = %v, want a plain not-complete error", err)
		}
	})
	for _, offSession := range []bool{true, false} {
		t.Run(fmt.Sprintf("Charge off_session=%v", offSession), func(t *testing.T) {
			c, err := p.Charge(ctx, payment.ChargeRequest{
				TopUpID: "tu_1", IdempotencyKey: "key-" + fmt.Sprint(offSession), Customer: "cus_123",
				PaymentMethod: "pm_card_visa", Amount: 1000, Currency: "USD", OffSession: offSession,
				Description: "Topup credit",
			})
			assertAccepted(t, err)
			if c.ID == "" || c.Status == "" {
				t.Errorf("charge = %+v, want an id and a status", c)
			}
		})
	}
	t.Run("GetCharge", func(t *testing.T) {
		c, err := p.GetCharge(ctx, "pi_123")
		assertAccepted(t, err)
		if c.ID == "" {
			t.Errorf("charge = %+v, want an id", c)
		}
	})
	t.Run("CancelCharge", func(t *testing.T) {
		c, err := p.CancelCharge(ctx, "pi_123")
		assertAccepted(t, err)
		if c.ID == "" {
			t.Errorf("charge = %+v, want an id", c)
		}
	})
	t.Run("FindCharge lists the customer's PaymentIntents since the top-up", func(t *testing.T) {
		topUpID := ids.New(clock.System).New(ids.TopUp)
		_, ok, err := p.FindCharge(ctx, "cus_123", topUpID)
		assertAccepted(t, err)
		if ok {
			t.Error("FindCharge found a charge stripe-mock never tagged")
		}
	})
	for _, reason := range []string{"", "requested_by_customer", "duplicate", "fraudulent", "goodwill: the customer asked"} {
		t.Run(fmt.Sprintf("Refund reason=%q", reason), func(t *testing.T) {
			r, err := p.Refund(ctx, payment.RefundRequest{
				RefundID: "rf_1", IdempotencyKey: "refund-" + reason, ChargeID: "pi_123", TopUpID: "tu_1",
				Amount: 500, Currency: "USD", Reason: reason,
			})
			assertAccepted(t, err)
			if r.ID == "" || r.Status == "" {
				t.Errorf("refund = %+v, want an id and a status", r)
			}
		})
	}
	t.Run("FindRefund lists the PaymentIntent's refunds", func(t *testing.T) {
		_, ok, err := p.FindRefund(ctx, "pi_123", "rf_never")
		assertAccepted(t, err)
		if ok {
			t.Error("FindRefund found a refund stripe-mock never tagged")
		}
	})
	t.Run("a dispute's charge is read with its PaymentIntent", func(t *testing.T) {
		ev := payment.Event{ID: "evt_1", Type: "charge.dispute.created"}
		for _, ids := range [][2]string{{"pi_123", ""}, {"", "ch_123"}} {
			chargeID, _, err := p.chargeOwner(ctx, ev, ids[0], ids[1])
			assertAccepted(t, err)
			if chargeID == "" {
				t.Errorf("chargeOwner(%q, %q) found no PaymentIntent", ids[0], ids[1])
			}
		}
	})
	t.Run("a request Stripe refuses is a plain error", func(t *testing.T) {
		// Proves the harness: stripe-mock does refuse what the spec does
		// not allow, and such a refusal is not mistaken for an unknown
		// outcome worth retrying.
		params := &stripego.PaymentIntentCreateParams{Amount: stripego.Int64(1000), Currency: stripego.String("usd")}
		params.AddExtra("no_such_param", "1")
		_, err := p.client.V1PaymentIntents.Create(ctx, params)
		if err == nil {
			t.Fatal("stripe-mock accepted an unknown parameter")
		}
		err = classify("test", err)
		if errors.Is(err, payment.ErrUnknownOutcome) || !strings.Contains(err.Error(), "invalid_request_error") {
			t.Errorf("classified as %v, want a plain invalid_request_error", err)
		}
	})
}
