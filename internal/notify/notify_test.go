package notify_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/notify"
	"github.com/topup/topup/internal/topup/topuptest"
	"github.com/topup/topup/internal/workertest"
)

// TestMain makes the PostgreSQL database the tests share (a schema each):
// every delivery test runs on SQLite and on PostgreSQL.
func TestMain(m *testing.M) { os.Exit(topuptest.Main(m)) }

// mailbox is a real SMTP server on loopback (go-smtp), offering STARTTLS
// and AUTH PLAIN, that keeps what it receives.
type mailbox struct {
	mu   sync.Mutex
	msgs []receivedMail
}

type receivedMail struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

type smtpSession struct {
	box  *mailbox
	conn *smtp.Conn
	cur  receivedMail
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "mailer" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		s.cur.user = user
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.cur.data = b
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, s.cur)
	s.box.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        { s.cur = receivedMail{user: s.cur.user} }
func (s *smtpSession) Logout() error { return nil }

func (b *mailbox) received() []receivedMail {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]receivedMail(nil), b.msgs...)
}

// startSMTP serves a mailbox on a loopback port with a certificate the
// returned pool trusts, and returns TOPUP_SMTP_URL for it.
func startSMTP(t *testing.T) (string, *x509.CertPool, *mailbox) {
	t.Helper()
	// Borrow httptest's certificate for 127.0.0.1.
	certSrv := httptest.NewUnstartedServer(nil)
	certSrv.StartTLS()
	cert, roots := certSrv.TLS.Certificates[0], x509.NewCertPool()
	roots.AddCert(certSrv.Certificate())
	certSrv.Close()

	box := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &smtpSession{box: box, conn: c}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "smtp://mailer:s3cret@" + ln.Addr().String() + "?from=billing@topup.example", roots, box
}

// receiver is a webhook endpoint: it verifies every signature with
// notify.VerifySignature, answers 500 to the first failures attempts of
// each event and 200 after, and counts what it saw.
type receiver struct {
	t        *testing.T
	srv      *httptest.Server
	now      func() time.Time
	mu       sync.Mutex
	secret   string
	failures int
	hits     map[string]int // attempts per event id
	acked    map[string]int // 200s per event id
	bad      []string
}

func newReceiver(t *testing.T, now func() time.Time, failures int) *receiver {
	r := &receiver{t: t, now: now, failures: failures, hits: map[string]int{}, acked: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	// Each delivery must verify in both schemes, keyed with the same
	// secret: Topup-Signature, and Standard Webhooks through the official
	// library (the test clock may be far from the wall clock, so the
	// library's own tolerance check is replaced by checking that the
	// timestamp is this attempt's).
	var bad []string
	if err := notify.VerifySignature(r.secret, req.Header.Get(notify.SignatureHeader), body, 5*time.Minute, r.now()); err != nil {
		bad = append(bad, err.Error())
	}
	wh, err := standardwebhooks.NewWebhook(r.secret)
	if err == nil {
		err = wh.VerifyIgnoringTimestamp(body, req.Header)
	}
	if ts := req.Header.Get("webhook-timestamp"); err == nil && ts != strconv.FormatInt(r.now().Unix(), 10) {
		err = fmt.Errorf("webhook-timestamp %s, want this attempt's %d", ts, r.now().Unix())
	}
	if err != nil {
		bad = append(bad, "standard webhooks: "+err.Error())
	}
	if len(bad) > 0 {
		r.bad = append(r.bad, bad...)
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	var ev struct {
		ID, Type, AccountID string
		CreatedAt           string `json:"created_at"`
		Data                map[string]any
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.Type == "" || ev.CreatedAt == "" || ev.Data == nil ||
		req.Header.Get("webhook-id") != ev.ID {
		r.bad = append(r.bad, "malformed event: "+string(body))
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	r.hits[ev.ID]++
	if r.hits[ev.ID] <= r.failures {
		http.Error(w, "try later", http.StatusInternalServerError)
		return
	}
	r.acked[ev.ID]++
	w.WriteHeader(http.StatusOK)
}

func (r *receiver) snapshot() (hits, acked map[string]int, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, a := map[string]int{}, map[string]int{}
	for k, v := range r.hits {
		h[k] = v
	}
	for k, v := range r.acked {
		a[k] = v
	}
	return h, a, append([]string(nil), r.bad...)
}

func worker(t *testing.T, e *topuptest.Env, cfg notify.Config) *notify.Worker {
	t.Helper()
	cfg.Clock = e.Clock
	cfg.Logger = topuptest.Logger(t, slog.LevelInfo)
	w, err := notify.New(e.Store.Outbox, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func runOnce(t *testing.T, w *notify.Worker) notify.Pass {
	t.Helper()
	p, err := w.RunOnce(t.Context())
	if err != nil {
		t.Fatalf("run once: %v", err)
	}
	return p
}

// causeEvents makes three events on acct: balance.low, and a budget
// crossing 50 % and 80 % with one debit.
func causeEvents(t *testing.T, e *topuptest.Env, acct string) []string {
	t.Helper()
	e.Credit(acct, "30")
	if _, err := e.Store.SetLowBalanceAlerts(t.Context(), acct, []money.Amount{topuptest.Amt("20")}); err != nil {
		t.Fatal(err)
	}
	kind := "monthly"
	if _, err := e.Store.CreateBudget(t.Context(), acct, alert.BudgetInput{Kind: &kind, Limit: topuptest.AmtP("20")}); err != nil {
		t.Fatal(err)
	}
	e.Use(acct, "9") // 45 % of the budget
	e.Use(acct, "8") // 85 %, and a balance of 13.00: below 20
	ns, _, err := e.Store.NotificationPage(t.Context(), acct, ledger.Page{Limit: 100})
	if err != nil || len(ns) != 3 {
		t.Fatalf("notifications: %d, %v; want 3", len(ns), err)
	}
	var ids []string
	for _, n := range ns {
		ids = append(ids, n.ID)
	}
	return ids
}

func TestMailAndSignedWebhooksWithRetries(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		smtpURL, roots, box := startSMTP(t)
		rcv := newReceiver(t, e.Now, 2)
		a := e.Account()
		ep, err := e.Store.CreateEndpoint(t.Context(), a.ID, rcv.srv.URL+"/topup")
		if err != nil {
			t.Fatal(err)
		}
		rcv.secret = ep.Secret
		events := causeEvents(t, e, a.ID)
		w := worker(t, e, notify.Config{SMTPURL: smtpURL, SMTPTLS: &tls.Config{RootCAs: roots}, RetryBase: time.Second, AllowPrivate: true})

		// First pass: every event fanned out to e-mail and the endpoint;
		// the mails go, the endpoint answers 500.
		if p := runOnce(t, w); p.Dispatched != 3 || p.Attempted != 6 || p.Delivered != 3 {
			t.Fatalf("first pass %+v; want 3 events, 6 attempts, 3 mails delivered", p)
		}
		mails := box.received()
		if len(mails) != 3 {
			t.Fatalf("%d mails, want 3", len(mails))
		}
		for _, m := range mails {
			checkMail(t, m, a.Email, events)
		}
		// Not due yet: nothing is sent.
		if p := runOnce(t, w); p.Attempted != 0 {
			t.Fatalf("a pass before the retry was due attempted %d", p.Attempted)
		}
		e.Clock.Advance(time.Second) // the first retry: 500 again
		if p := runOnce(t, w); p.Attempted != 3 || p.Delivered != 0 {
			t.Fatalf("first retry %+v", p)
		}
		e.Clock.Advance(time.Second) // the second retry waits 2s
		if p := runOnce(t, w); p.Attempted != 0 {
			t.Fatalf("the back-off did not double: %+v", p)
		}
		e.Clock.Advance(time.Second)
		if p := runOnce(t, w); p.Attempted != 3 || p.Delivered != 3 {
			t.Fatalf("second retry %+v; want 3 delivered", p)
		}
		e.Clock.Advance(time.Hour)
		if p := runOnce(t, w); p.Attempted != 0 {
			t.Fatalf("a pass after every delivery attempted %d", p.Attempted)
		}
		hits, acked, bad := rcv.snapshot()
		if len(bad) != 0 {
			t.Fatalf("the receiver refused signatures or bodies: %v", bad)
		}
		for _, id := range events {
			if hits[id] != 3 || acked[id] != 1 {
				t.Errorf("event %s: %d attempts and %d acknowledged, want 3 and 1", id, hits[id], acked[id])
			}
		}
		if len(box.received()) != 3 {
			t.Fatalf("mails were sent again: %d", len(box.received()))
		}

		// Every attempt is listed, newest first.
		atts, _, err := e.Store.DeliveryAttempts(t.Context(), a.ID, ep.ID, ledger.Page{Limit: 100})
		if err != nil || len(atts) != 9 {
			t.Fatalf("%d attempts listed (%v), want 9", len(atts), err)
		}
		if last := atts[0]; last.StatusCode != 200 || last.Error != "" || !last.NextAttemptAt.IsZero() {
			t.Errorf("the newest attempt %+v, want 200 and no next attempt", last)
		}
		if first := atts[8]; first.StatusCode != 500 || first.Error == "" || !first.NextAttemptAt.Equal(first.AttemptedAt.Add(time.Second)) {
			t.Errorf("the oldest attempt %+v, want 500 retried a second later", first)
		}

		// A restart: the running worker delivers a new event through a
		// 500 and a 200 across two worker processes, and a third sends
		// nothing more.
		rcv.mu.Lock()
		rcv.failures = 1
		for id := range rcv.hits {
			rcv.hits[id] = 99 // events already acknowledged would now get 200 at once
		}
		rcv.mu.Unlock()
		e.Use(a.ID, "3") // 20.00 of 20.00: budget.exhausted
		passes := make(chan notify.Pass, 100)
		start := func() *notify.Worker {
			w := worker(t, e, notify.Config{SMTPURL: smtpURL, SMTPTLS: &tls.Config{RootCAs: roots}, RetryBase: time.Second, AllowPrivate: true,
				PollInterval: 10 * time.Millisecond, ReclaimOnStart: true, OnPass: func(p notify.Pass, err error) {
					if err != nil {
						t.Errorf("pass: %v", err)
					}
					passes <- p
				}})
			w.Start()
			return w
		}
		w2 := start()
		waitPass(t, passes, func(p notify.Pass) bool { return p.Attempted == 2 })
		w2.Stop()
		e.Clock.Advance(time.Second)
		w3 := start()
		waitPass(t, passes, func(p notify.Pass) bool { return p.Delivered == 1 })
		w3.Stop()
		e.Clock.Advance(72 * time.Hour)
		w4 := start()
		waitPass(t, passes, func(p notify.Pass) bool { return true })
		waitPass(t, passes, func(p notify.Pass) bool { return true })
		w4.Stop()
		hits, acked, _ = rcv.snapshot()
		twice := 0
		for id, n := range hits {
			// The old events were not sent again; the new one was sent
			// twice: the 500, then the 200.
			switch n {
			case 2:
				twice++
			case 99:
			default:
				t.Errorf("event %s reached the endpoint %d times, want 2 for the new event and none more for the old", id, n)
			}
		}
		if twice != 1 {
			t.Errorf("%d events were sent exactly twice, want the new one", twice)
		}
		for id, n := range acked {
			if n != 1 {
				t.Errorf("event %s acknowledged %d times", id, n)
			}
		}
		if len(acked) != 4 {
			t.Errorf("%d events acknowledged, want 4", len(acked))
		}
		if len(box.received()) != 4 {
			t.Errorf("%d mails, want 4", len(box.received()))
		}
	})
}

// waitPass waits for a pass of the running worker that ok accepts.
func waitPass(t *testing.T, passes <-chan notify.Pass, ok func(notify.Pass) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-passes:
			if ok(p) {
				return
			}
		case <-deadline:
			t.Fatal("no such pass of the worker within 10s")
		}
	}
}

// checkMail checks a received mail: over TLS, authenticated, to the
// account's address, plain text and HTML parts, about one of the events.
func checkMail(t *testing.T, m receivedMail, to string, events []string) {
	t.Helper()
	if !m.tls || m.user != "mailer" || m.from != "billing@topup.example" || len(m.to) != 1 || m.to[0] != to {
		t.Fatalf("mail tls=%v user=%q from=%q to=%v; want STARTTLS, AUTH as mailer, to %s", m.tls, m.user, m.from, m.to, to)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.data))
	if err != nil {
		t.Fatalf("mail: %v", err)
	}
	if got := msg.Header.Get("To"); got != "<"+to+">" {
		t.Errorf("To: %q", got)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(msg.Header.Get("Message-Id"), "<"), "@topup>")
	found := false
	for _, e := range events {
		found = found || e == id
	}
	if !found || msg.Header.Get("Subject") == "" {
		t.Errorf("Message-ID %q, Subject %q: want an event's id and a subject", msg.Header.Get("Message-Id"), msg.Header.Get("Subject"))
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v)", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p) // quoted-printable is decoded by NextPart
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		if !strings.Contains(string(body), id) {
			t.Errorf("the %s part does not name the event %s", ct, id)
		}
	}
	if strings.Join(types, ",") != "text/plain,text/html" {
		t.Errorf("parts %v, want text/plain and text/html", types)
	}
}

func TestGiveUpThreeDaysAfterTheEvent(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		rcv := newReceiver(t, e.Now, 1<<30)
		a := e.Account()
		ep, err := e.Store.CreateEndpoint(t.Context(), a.ID, rcv.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		rcv.secret = ep.Secret
		causeEvents(t, e, a.ID)
		// No TOPUP_SMTP_URL: mail is only recorded, and counts as delivered.
		w := worker(t, e, notify.Config{RetryBase: time.Hour, AllowPrivate: true})
		if p := runOnce(t, w); p.Delivered != 3 || p.Attempted != 6 {
			t.Fatalf("first pass %+v; want the 3 mails recorded", p)
		}
		failed := 0
		for i := 0; i < 20 && failed < 3; i++ {
			e.Clock.Advance(time.Duration(1<<i) * time.Hour)
			failed += runOnce(t, w).Failed
		}
		if failed != 3 {
			t.Fatalf("%d deliveries given up, want 3", failed)
		}
		atts, _, err := e.Store.DeliveryAttempts(t.Context(), a.ID, ep.ID, ledger.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		// 1h, 2h, … 32h later: 63 hours; the next wait would pass 72.
		if len(atts) != 3*7 || !atts[0].NextAttemptAt.IsZero() {
			t.Fatalf("%d attempts, the last %+v; want 7 per event, the last without a next", len(atts), atts[0])
		}
		for _, at := range atts {
			if at.AttemptedAt.After(topuptest.Epoch.Add(72 * time.Hour)) {
				t.Fatalf("attempt at %s, after the 3 days", at.AttemptedAt)
			}
		}
		e.Clock.Advance(30 * 24 * time.Hour)
		if p := runOnce(t, w); p.Attempted != 0 {
			t.Fatalf("a given-up delivery was attempted again: %+v", p)
		}
	})
}

func TestPrivateAddressRefusedAtDelivery(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		// The endpoint was stored (as if its name resolved to a public
		// address then); at delivery the dialer sees 127.0.0.1 and refuses.
		rcv := newReceiver(t, e.Now, 0)
		a := e.Account()
		ep, err := e.Store.CreateEndpoint(t.Context(), a.ID, rcv.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		causeEvents(t, e, a.ID)
		w := worker(t, e, notify.Config{RetryBase: time.Second})
		runOnce(t, w)
		if hits, _, _ := rcv.snapshot(); len(hits) != 0 {
			t.Fatalf("the loopback endpoint was reached: %v", hits)
		}
		atts, _, err := e.Store.DeliveryAttempts(t.Context(), a.ID, ep.ID, ledger.Page{Limit: 10})
		if err != nil || len(atts) != 3 || !strings.Contains(atts[0].Error, "not public") || atts[0].StatusCode != 0 {
			t.Fatalf("attempts %+v (%v); want 3 refused as not public", atts, err)
		}
	})
}

// TestEndpointGetsOnlyLaterEvents: an endpoint receives only the events
// created after it was registered, even when the worker fans them out
// later: the events that waited in the outbox when it was registered go
// to the endpoints that were there before them.
func TestEndpointGetsOnlyLaterEvents(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		early, late := newReceiver(t, e.Now, 0), newReceiver(t, e.Now, 0)
		a := e.Account()
		register := func(r *receiver) {
			ep, err := e.Store.CreateEndpoint(t.Context(), a.ID, r.srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			r.secret = ep.Secret
		}
		register(early)
		before := causeEvents(t, e, a.ID)
		e.Clock.Advance(time.Second)
		register(late)
		e.Clock.Advance(time.Second)
		e.Use(a.ID, "3") // 20.00 of the budget's 20.00: budget.exhausted
		ns, _, err := e.Store.NotificationPage(t.Context(), a.ID, ledger.Page{Limit: 100})
		if err != nil || len(ns) != 4 {
			t.Fatalf("notifications: %d, %v; want 4", len(ns), err)
		}
		after := ns[0].ID // newest first

		// The worker runs only now, after both registrations.
		w := worker(t, e, notify.Config{AllowPrivate: true})
		if p := runOnce(t, w); p.Dispatched != 4 || p.Attempted != 4+4+1 {
			t.Fatalf("pass %+v; want 4 events: 4 mails, 4 posts to the early endpoint, 1 to the late one", p)
		}
		hits, _, bad := early.snapshot()
		if len(bad) != 0 || len(hits) != 4 || hits[after] != 1 {
			t.Errorf("the early endpoint got %v (refused %v); want all 4 events once", hits, bad)
		}
		hits, _, bad = late.snapshot()
		if len(bad) != 0 || len(hits) != 1 || hits[after] != 1 {
			t.Errorf("the late endpoint got %v (refused %v); want only %s, created after it was registered", hits, bad, after)
		}
		for _, id := range before {
			if hits[id] != 0 {
				t.Errorf("the late endpoint got %s, created before it was registered", id)
			}
		}
	})
}

// TestRotateSecretAndResend: after rotate_secret, deliveries are signed with
// the new secret and the old one for 24 hours (a receiver still on the old
// one keeps verifying, in both signature schemes), then with the new one
// only; resend sends an event again with the same webhook-id.
func TestRotateSecretAndResend(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		r := newReceiver(t, e.Now, 0)
		a := e.Account()
		ep, err := e.Store.CreateEndpoint(t.Context(), a.ID, r.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(ep.Secret, "whsec_"))
		if !strings.HasPrefix(ep.Secret, "whsec_") || err != nil || len(key) != 32 {
			t.Fatalf("secret %q is not whsec_ + padded standard base64 of 32 bytes (%v)", ep.Secret, err)
		}
		old := ep.Secret
		r.secret = old
		events := causeEvents(t, e, a.ID)
		w := worker(t, e, notify.Config{AllowPrivate: true})
		runOnce(t, w)
		rotated, err := e.Store.RotateEndpointSecret(t.Context(), a.ID, ep.ID)
		if err != nil || rotated.Secret == old || !strings.HasPrefix(rotated.Secret, "whsec_") {
			t.Fatalf("rotate: %+v %v", rotated, err)
		}
		resend := func() {
			t.Helper()
			if err := e.Store.ResendEvent(t.Context(), a.ID, ep.ID, events[0], 72*time.Hour); err != nil {
				t.Fatal(err)
			}
			runOnce(t, w)
		}
		// Within the overlap a receiver on either secret verifies.
		for _, secret := range []string{old, rotated.Secret} {
			r.mu.Lock()
			r.secret = secret
			r.mu.Unlock()
			e.Clock.Advance(time.Hour)
			resend()
		}
		hits, acked, bad := r.snapshot()
		if len(bad) != 0 || hits[events[0]] != 3 || acked[events[0]] != 3 {
			t.Fatalf("during the overlap: hits %v acked %v refused %v; want the event 3 times, verified each time", hits, acked, bad)
		}
		// After 24 hours only the new secret signs.
		e.Clock.Advance(24 * time.Hour)
		resend()
		r.mu.Lock()
		r.secret = old
		r.mu.Unlock()
		resend()
		hits, _, bad = r.snapshot()
		if hits[events[0]] != 4 || len(bad) != 2 {
			t.Fatalf("after the overlap: hits %v refused %v; want the new secret verified and the old refused by both schemes", hits, bad)
		}
		if err := e.Store.ResendEvent(t.Context(), a.ID, ep.ID, "evt_unknown", time.Hour); apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("resend of an unknown event: %v", err)
		}
	})
}

// TestWorkerStopIsIdempotent: Stop may be called twice, and without Start,
// and returns each time: a shutdown stops every worker whatever ran.
func TestWorkerStopIsIdempotent(t *testing.T) {
	t.Parallel()
	topuptest.Run(t, func(t *testing.T, e *topuptest.Env) {
		never := worker(t, e, notify.Config{})
		workertest.StopReturns(t, "Stop without Start", never.Stop)
		workertest.StopReturns(t, "a second Stop without Start", never.Stop)

		passes := make(chan notify.Pass, 100)
		w := worker(t, e, notify.Config{PollInterval: 10 * time.Millisecond, OnPass: func(p notify.Pass, err error) {
			if err != nil {
				t.Errorf("pass: %v", err)
			}
			select {
			case passes <- p:
			default:
			}
		}})
		w.Start()
		waitPass(t, passes, func(notify.Pass) bool { return true })
		workertest.StopReturns(t, "Stop", w.Stop)
		workertest.StopReturns(t, "a second Stop", w.Stop)
	})
}
