package web_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
)

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// TestConsoleInChromium drives the console the way a customer does, in
// real headless Chromium against a real Topup with its engine running:
// sign in through a link, add a sandbox card through the hosted page,
// switch Automatic Payments on, see a refusal beside its field (nothing
// saved), save valid values, watch usage posted through the API become a
// top-up in the history and on the chart, and complete a 3-D Secure
// request; then save a low balance alert after a refusal, create a budget,
// read the notifications with a webhook endpoint's failed delivery, and
// add an endpoint. It writes a screenshot of every page at 1280×800 and
// 390×844 to the folder screenshots/ at the repository root
// (TOPUP_SCREENSHOTS moves it).
func TestConsoleInChromium(t *testing.T) {
	needChromium(t)
	clk := &shiftClock{}
	e := newEnv(t, envOptions{clock: clk, engine: true, allowPrivate: true})
	a, balance := seedMonth(e, clk)
	shots := screenshotDir(t)
	// A webhook receiver that answers 500, and the notification worker run
	// by hand, so the Notifications page shows a failed delivery.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer receiver.Close()
	e.mustAPI("POST", "/v1/accounts/"+a.ID+"/webhook_endpoints", adminKey, `{"url":"`+receiver.URL+`/topup"}`, 201, nil)
	notifier, err := notify.New(e.store.Outbox, notify.Config{AllowPrivate: true, Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := startChromium(t, ctx, shots)
	base := e.url + "/console/accounts/" + a.ID

	t.Run("sign in through a link", func(t *testing.T) {
		b.t, e.t = t, t
		link, _ := e.loginLink(a)
		b.do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("sign-in")))
		b.shoot("01-sign-in")
		b.do(chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("balance")))
		if got, want := b.text("#balance"), "$"+balance.Format(usd); got != want {
			t.Errorf("balance shown = %q; want %s", got, want)
		}
		if body := b.text("#transactions"); !strings.Contains(body, "<b>not bold</b> image generation") {
			t.Errorf("the transactions do not show the HTML description as text:\n%s", body)
		}
		if n := b.eval(`document.querySelectorAll('#chart tbody tr').length`); n != float64(30) {
			t.Errorf("the chart's table has %v days; want 30", n)
		}
		b.shoot("02-overview")
		first := b.text("#transactions tbody tr")
		b.do(chromedp.Click(chromedp.CSS(`#transactions a[rel="next"]`)), chromedp.WaitVisible(chromedp.CSS(`#transactions a[href$="#transactions"]`)))
		if older := b.text("#transactions tbody tr"); older == first || !strings.Contains(b.location(), "starting_after=ent_") {
			t.Errorf("Older transactions shows %q at %s; want the next page", older, b.location())
		}
	})

	t.Run("add a sandbox card through the hosted page", func(t *testing.T) {
		b.t, e.t = t, t
		b.do(chromedp.Navigate(base+"/payment_methods"), chromedp.WaitVisible(chromedp.ID("add-card")))
		b.shoot("03-payment-methods-empty")
		b.do(chromedp.Click(chromedp.ID("add-card")), chromedp.WaitVisible(chromedp.CSS(`button[value="pm_card_visa"]`)))
		if loc := b.location(); !strings.Contains(loc, "/sandbox/setup/") {
			t.Fatalf("Add payment method went to %s; want the sandbox's hosted page", loc)
		}
		b.shoot("04-hosted-card-page")
		b.do(chromedp.Click(chromedp.CSS(`button[value="pm_card_visa"]`)), chromedp.WaitVisible(chromedp.CSS(".card-row")))
		if loc := b.location(); !strings.HasPrefix(loc, base+"/payment_methods") {
			t.Errorf("the hosted page came back to %s; want the console's Payment Methods", loc)
		}
		if got := b.text(".card-row"); !strings.Contains(got, "Visa •••• 4242") || !strings.Contains(got, "Default") {
			t.Errorf("card row = %q; want Visa •••• 4242, Default", got)
		}
	})

	t.Run("switch Automatic Payments on and see a refusal beside its field", func(t *testing.T) {
		b.t, e.t = t, t
		b.do(chromedp.Click(chromedp.ID("auto-switch")), chromedp.WaitVisible(chromedp.ID("threshold")))
		if open := b.eval(`document.getElementById('auto-dialog').matches(':modal')`); open != true {
			t.Errorf("the switch did not open the settings as a modal dialog")
		}
		if got := b.attr("#auto-switch", "aria-checked"); got != "true" {
			t.Errorf("switch aria-checked = %q while the dialog is open; want true", got)
		}
		b.typeInto("threshold", "20")
		b.typeInto("target", "10")
		b.waitText("#preview", "would be refused")
		b.shootViewport("05-dialog-refused-preview")
		b.do(chromedp.Click(chromedp.ID("save-settings")), chromedp.WaitVisible(chromedp.ID("target-error")))
		if got := b.text("#target-error"); !strings.Contains(got, "greater than “When credit goes below”") {
			t.Errorf("the refusal beside Bring credit back up to = %q", got)
		}
		if got := b.attr("#target", "aria-invalid"); got != "true" {
			t.Errorf("target aria-invalid = %q; want true", got)
		}
		if open := b.eval(`document.getElementById('auto-dialog').open`); open != true {
			t.Errorf("the dialog closed after a refusal; want it open with the error")
		}
		b.shootViewport("06-dialog-refused")
		var st struct {
			Enabled   bool
			Threshold *string
		}
		e.mustAPI("GET", "/v1/accounts/"+a.ID+"/auto_top_up", adminKey, "", 200, &st)
		if st.Enabled || st.Threshold != nil {
			t.Errorf("after the refusal the settings are %+v; want nothing saved", st)
		}
	})

	t.Run("save valid settings", func(t *testing.T) {
		b.t, e.t = t, t
		b.typeInto("threshold", "15")
		b.typeInto("target", "25")
		b.waitText("#preview", "Each automatic charge adds about $10.00")
		if got := b.text("#preview"); !strings.Contains(got, "these settings would have made") || !strings.Contains(got, "will go below $15.00 around") {
			t.Errorf("the preview reads %q; want what the last 30 days would have cost and when the balance next goes below", got)
		}
		b.shootViewport("07-dialog-preview")
		b.do(chromedp.Click(chromedp.ID("save-settings")), chromedp.WaitVisible(chromedp.CSS(".notice-success")))
		if got := b.text("#auto-summary"); !strings.Contains(got, "Automatic Payments are on: when credit goes below $15.00") {
			t.Errorf("state in words = %q", got)
		}
		if got := b.attr("#auto-switch", "aria-checked"); got != "true" {
			t.Errorf("switch aria-checked after saving = %q; want true", got)
		}
		b.shoot("08-payment-methods-on")
	})

	t.Run("usage through the API makes a top-up in the history and on the chart", func(t *testing.T) {
		b.t, e.t = t, t
		e.usage(a, "4.00", "big-1", "batch inference job")
		tu := e.waitTopUp(a, "succeeded")
		b.do(chromedp.Navigate(base+"/top_ups"), chromedp.WaitVisible(chromedp.ID(tu)))
		row := b.text("#" + tu)
		charged := 25_000_000 - (balance - 4_000_000) // target - balance, whole cents here
		for _, want := range []string{"Succeeded", "$" + charged.Format(usd), "Automatic", "Visa •••• 4242"} {
			if !strings.Contains(row, want) {
				t.Errorf("history row = %q; want %q in it", row, want)
			}
		}
		b.shoot("09-top-up-history")
		b.do(chromedp.Navigate(base), chromedp.WaitVisible(chromedp.ID("chart")))
		if n := b.eval(`document.querySelectorAll('#chart path.marker').length`); n != float64(1) {
			t.Errorf("chart top-up markers = %v; want 1", n)
		}
		if got := b.text("#balance"); got != "$25.00" {
			t.Errorf("balance after the top-up = %q; want $25.00", got)
		}
		b.shoot("10-overview-after-top-up")
	})

	t.Run("complete a 3-D Secure request", func(t *testing.T) {
		b.t, e.t = t, t
		b.do(chromedp.Navigate(base+"/payment_methods"), chromedp.WaitVisible(chromedp.ID("add-card")),
			chromedp.Click(chromedp.ID("add-card")), chromedp.WaitVisible(chromedp.CSS(`button[value="pm_card_authenticationRequired"]`)),
			chromedp.Click(chromedp.CSS(`button[value="pm_card_authenticationRequired"]`)), chromedp.WaitVisible(chromedp.CSS(".card-row + .card-row")))
		b.do(chromedp.Click(chromedp.CSS(`.card-row form[action$="/default"] button`)))
		b.waitText(".notice", "Default payment method changed")
		e.usage(a, "12.00", "big-2", "fine-tuning run")
		e.waitTopUp(a, "requires_action")
		b.do(chromedp.Navigate(base+"/payment_methods"), chromedp.WaitVisible(chromedp.ID("auto-action")))
		if got := b.text("#auto-action"); !strings.Contains(got, "waiting for you to confirm it with your bank") {
			t.Errorf("the open 3-D Secure request reads %q", got)
		}
		b.shoot("11-payment-methods-3ds-waiting")
		b.do(chromedp.Click(chromedp.CSS("#auto-action a")), chromedp.WaitVisible(chromedp.ID("complete")))
		b.shoot("12-3ds-challenge")
		b.do(chromedp.Click(chromedp.ID("complete")), chromedp.WaitVisible(chromedp.ID("pay-result")))
		if got := b.text("#pay-result"); !strings.Contains(got, "Payment confirmed") {
			t.Errorf("after authenticating the page says %q", got)
		}
		b.shoot("13-3ds-done")
		e.waitTopUp(a, "succeeded")
		b.do(chromedp.Navigate(base+"/top_ups"), chromedp.WaitVisible(chromedp.ID("top-ups")))
		if got := b.text("#top-ups tbody tr"); !strings.Contains(got, "Succeeded") || !strings.Contains(got, "Visa •••• 3184") {
			t.Errorf("newest top-up row = %q; want the 3-D Secure one succeeded on Visa •••• 3184", got)
		}
	})

	t.Run("a declined Add credit shows the decline reason", func(t *testing.T) {
		b.t, e.t = t, t
		var card struct{ ID string }
		e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods", adminKey, `{"payment_method":"pm_card_chargeDeclinedInsufficientFunds"}`, 201, &card)
		e.mustAPI("POST", "/v1/accounts/"+a.ID+"/payment_methods/"+card.ID+"/default", adminKey, "", 200, nil)
		b.do(chromedp.Navigate(base), chromedp.WaitVisible(chromedp.ID("amount")))
		b.typeInto("amount", "40")
		b.do(chromedp.Click(chromedp.CSS(`#add-credit button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS(".notice-error")))
		if got := b.text(".notice-error"); !strings.Contains(got, "insufficient funds") {
			t.Errorf("the notice after a decline reads %q; want the reason", got)
		}
		b.shoot("15-add-credit-declined")
		b.do(chromedp.Navigate(base+"/top_ups"), chromedp.WaitVisible(chromedp.ID("top-ups")))
		if got := b.text("#top-ups tbody tr"); !strings.Contains(got, "Failed") || !strings.Contains(got, "Manual") || !strings.Contains(got, "insufficient funds") {
			t.Errorf("newest top-up row = %q; want the manual one failed with its reason", got)
		}
		b.shoot("16-top-up-history")
	})

	t.Run("low balance alert, budgets and notifications", func(t *testing.T) {
		b.t, e.t = t, t
		// A threshold too close to another is refused beside its field;
		// then one alone is saved.
		b.do(chromedp.Navigate(base+"/low_balance_alerts"), chromedp.WaitVisible(chromedp.ID("threshold-1")))
		b.typeInto("threshold-1", "20")
		b.do(chromedp.Click(chromedp.ID("save-alerts")), chromedp.WaitVisible(chromedp.ID("threshold-2")))
		b.typeInto("threshold-2", "17.50")
		b.do(chromedp.Click(chromedp.ID("save-alerts")), chromedp.WaitVisible(chromedp.ID("threshold-2-error")))
		if got := b.text("#threshold-2-error"); got != "Must be at least $5.00 away from $20.00." {
			t.Errorf("the refusal beside Threshold 2 = %q", got)
		}
		b.shoot("18-low-balance-alert-refused")
		b.typeInto("threshold-2", "")
		b.do(chromedp.Click(chromedp.ID("save-alerts")))
		b.waitText(".notice", "You are told when your balance goes below $20.00.")
		b.shoot("19-low-balance-alert")

		// A budget made in the page, two more through the API; usage with
		// subjects fills them.
		b.do(chromedp.Navigate(base+"/budgets"), chromedp.WaitVisible(chromedp.ID("subject")))
		b.typeInto("subject", "key_live_4f2a")
		b.typeInto("limit", "10")
		b.do(chromedp.Click(chromedp.ID("create-budget")))
		b.waitText(".notice", "Budget created.")
		e.mustAPI("POST", "/v1/accounts/"+a.ID+"/budgets", adminKey, `{"kind":"monthly","limit":"100.00"}`, 201, nil)
		e.mustAPI("POST", "/v1/accounts/"+a.ID+"/budgets", adminKey, `{"subject":"team-research","kind":"one_time","limit":"2.00"}`, 201, nil)
		e.usageOf(a, "6.00", "key-1", "key_live_4f2a")
		e.usageOf(a, "2.50", "research-1", "team-research")
		b.do(chromedp.Navigate(base+"/budgets"), chromedp.WaitVisible(chromedp.ID("subjects")))
		if got := b.text("#subjects"); !strings.Contains(got, "Half spent: $4.00 left.") || !strings.Contains(got, "Exhausted: usage for this subject should be paused.") {
			t.Errorf("the subjects' budgets read %q", got)
		}
		b.shoot("20-budgets")

		// The notifications, and a webhook endpoint's delivery that failed.
		if _, err := notifier.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		b.do(chromedp.Navigate(base+"/notifications"), chromedp.WaitVisible(chromedp.ID("notifications")))
		for _, want := range []string{"Balance fell below $20.00 (balance $19.00).", "The budget for “key_live_4f2a” reached 50%", "HTTP 500"} {
			if got := b.text("main"); !strings.Contains(got, want) {
				t.Errorf("the notifications page does not say %q", want)
			}
		}
		b.shoot("21-notifications")
		b.typeInto("url", "https://93.184.215.14/hooks/topup")
		b.do(chromedp.Click(chromedp.ID("add-endpoint")), chromedp.WaitVisible(chromedp.ID("secret")))
		if got := b.attr("#secret", "value"); !strings.HasPrefix(got, "whsec_") {
			t.Errorf("the new endpoint's secret reads %q", got)
		}
		b.shoot("22-webhook-endpoint-added")

		// Remove, a button of its own small form inside the alerts form.
		b.do(chromedp.Navigate(base+"/low_balance_alerts"), chromedp.WaitVisible(chromedp.CSS(`button[form="remove-alert"]`)),
			chromedp.Click(chromedp.CSS(`button[form="remove-alert"]`)))
		b.waitText(".notice", "Alert removed. No alert is set.")
		if got := e.thresholds(a); len(got) != 0 {
			t.Errorf("thresholds after Remove = %v; want none", got)
		}
	})

	t.Run("sign out", func(t *testing.T) {
		b.t, e.t = t, t
		b.do(chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS(".who button")), chromedp.Click(chromedp.CSS(".who button")),
			chromedp.WaitVisible(chromedp.ID("out-h")))
		b.shoot("17-signed-out")
	})
}

var usd, _ = money.LookupCurrency("usd")

// seedMonth makes the account the browser signs into: a month of metered
// usage dated in the past (two grants, two calls a day), then three calls
// today, one of them described in HTML. It returns the account and its
// balance, which stays above the threshold the test saves (15.00).
func seedMonth(e *env, clk *shiftClock) (account, money.Amount) {
	e.t.Helper()
	day := 24 * time.Hour
	clk.set(29*day + time.Hour)
	a := e.account("ada@example.com", "30.00")
	balance := money.Amount(30_000_000)
	for i := range 29 {
		clk.set(time.Duration(29-i)*day - 3*time.Hour)
		if i == 15 {
			e.mustAPI("POST", "/v1/accounts/"+a.ID+"/credits", adminKey, `{"amount":"30.00","idempotency_key":"promo","description":"promotional credit"}`, 201, nil)
			balance += 30_000_000
		}
		chat := money.Amount(850_000 + 150_000*(i%4))
		e.usage(a, chat.Format(usd), fmt.Sprintf("chat-%d", i), fmt.Sprintf("chat completion · %d tokens", 9_000+1_300*(i%5)))
		clk.set(time.Duration(29-i)*day - 7*time.Hour)
		e.usage(a, "0.35", fmt.Sprintf("emb-%d", i), "embeddings · 40,000 tokens")
		balance -= chat + 350_000
	}
	clk.set(0)
	for i, d := range []string{"chat completion · 12,480 tokens", "embeddings · 40,000 tokens", `<b>not bold</b> image generation`} {
		amount := []money.Amount{750_000, 40_000, 400_000}[i]
		e.usage(a, amount.Format(usd), fmt.Sprintf("today-%d", i), d)
		balance -= amount
	}
	return a, balance
}

// needChromium skips a browser test where Chromium is missing, except in
// CI, where the browser tests are required.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %s is missing: the browser tests are required in CI (.ci/run installs chromium)", chromiumPath)
		}
		t.Skipf("skipping the browser tests: %s is missing (apt-get install chromium)", chromiumPath)
	}
}

// startChromium starts headless Chromium at 1280×800 for the life of ctx
// and the test, and returns its one tab, writing screenshots to dir.
func startChromium(t *testing.T, ctx context.Context, dir string) *chrome {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("hide-scrollbars", true))
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &chrome{t: t, ctx: bctx, dir: dir}
}

// chrome is the one browser tab the subtests share.
type chrome struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func (c *chrome) do(steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		c.t.Fatalf("browser: %v (at %s)", err, c.location())
	}
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	return run(c, chromedp.Text(chromedp.CSS(sel)))
}

func (c *chrome) attr(sel, name string) string {
	c.t.Helper()
	r := run(c, chromedp.AttributeValue(chromedp.CSS(sel), name))
	return r.Value
}

func (c *chrome) eval(js string) any {
	c.t.Helper()
	return run(c, chromedp.Evaluate[any](js))
}

func (c *chrome) location() string {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

func run[T any](c *chrome, a chromedp.Action[T]) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		c.t.Fatalf("browser: %v (at %s)", err, c.location())
	}
	return v
}

// typeInto replaces a field's value by typing, as a person does, so the
// page hears every keystroke.
func (c *chrome) typeInto(id, value string) {
	c.t.Helper()
	c.do(chromedp.Clear(chromedp.ID(id)), chromedp.SendKeys(chromedp.ID(id), value))
}

// waitText waits until sel's text contains want.
func (c *chrome) waitText(sel, want string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The page may be navigating: a node gone between the query and
		// the read is tried again.
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s reads %q; want %q in it", sel, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shoot writes the page at desktop and phone sizes.
func (c *chrome) shoot(name string) {
	c.t.Helper()
	for _, s := range []struct {
		suffix string
		w, h   int64
		mobile bool
	}{{"desktop", 1280, 800, false}, {"mobile", 390, 844, true}} {
		emulate := chromedp.EmulateViewport(s.w, s.h)
		if s.mobile {
			emulate = chromedp.EmulateViewport(s.w, s.h, chromedp.EmulateMobile)
		}
		c.do(emulate)
		png := run(c, chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(c.dir, name+"-"+s.suffix+".png"), png, 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
	c.do(chromedp.EmulateViewport(1280, 800))
}

// shootViewport writes what the screen shows at desktop and phone sizes:
// for a modal dialog, which a full-page capture would cut loose from its
// backdrop.
func (c *chrome) shootViewport(name string) {
	c.t.Helper()
	for _, s := range []struct {
		suffix string
		w, h   int64
		mobile bool
	}{{"desktop", 1280, 800, false}, {"mobile", 390, 844, true}} {
		emulate := chromedp.EmulateViewport(s.w, s.h)
		if s.mobile {
			emulate = chromedp.EmulateViewport(s.w, s.h, chromedp.EmulateMobile)
		}
		c.do(emulate)
		png := run(c, chromedp.CaptureScreenshot())
		if err := os.WriteFile(filepath.Join(c.dir, name+"-"+s.suffix+".png"), png, 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
	c.do(chromedp.EmulateViewport(1280, 800))
}

// screenshotDir is screenshots/ at the repository root, or
// TOPUP_SCREENSHOTS.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TOPUP_SCREENSHOTS")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(d, "screenshots")
				break
			}
			if filepath.Dir(d) == d {
				dir = filepath.Join(wd, "screenshots")
				break
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// waitTopUp waits until the account's newest top-up has status, and
// returns its id; it looks again after each pass of the engine.
func (e *env) waitTopUp(a account, status string) string {
	e.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		var l struct {
			Data []struct{ ID, Status string } `json:"data"`
		}
		e.mustAPI("GET", "/v1/accounts/"+a.ID+"/top_ups", adminKey, "", 200, &l)
		if len(l.Data) > 0 && l.Data[0].Status == status {
			return l.Data[0].ID
		}
		select {
		case <-e.passes:
		case <-deadline:
			e.t.Fatalf("no top-up became %s: %+v", status, l.Data)
		}
	}
}
