package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/topup/topup/client"
)

// The operations of the mixed load, as the report names them.
const (
	opUsage    = "usage"
	opBatch    = "batch"
	opHold     = "hold"
	opCapture  = "capture"
	opRelease  = "release"
	opSettings = "settings"
	opTopUp    = "top-up"
	opCard     = "card removal"
	opRefund   = "refund"
)

var opOrder = []string{opUsage, opBatch, opHold, opCapture, opRelease, opSettings, opTopUp, opRefund, opCard}

// opStats counts one operation's requests: sent; acknowledged (a 2xx);
// refused (a 4xx the product answers on purpose, such as a hold beyond
// the available credit); unknown (no answer from any replica however
// often sent again); failovers (attempts sent again, to another replica,
// after a lost answer).
type opStats struct {
	sent, acked, refused, unknown, failovers atomic.Int64

	mu    sync.Mutex
	codes map[string]int // refusals by status and code ("402 insufficient_balance")
}

func (st *opStats) refusedWith(err error) {
	st.refused.Add(1)
	code := "?"
	if e := client.AsError(err); e != nil {
		code = fmt.Sprintf("%d %s", e.Status, e.Code)
		if e.Field != "" {
			code += " " + e.Field
		}
		if e.DeclineCode != "" {
			code += " " + e.DeclineCode
		}
	}
	st.mu.Lock()
	if st.codes == nil {
		st.codes = map[string]int{}
	}
	st.codes[code]++
	st.mu.Unlock()
}

// ackedDebit is an acknowledged debit: the account and the entry the
// answer named.
type ackedDebit struct {
	account, entry string
}

// record is everything the load was told: which debits were sent and which
// acknowledged (by idempotency key), which manual top-ups were made.
type record struct {
	mu     sync.Mutex
	sent   map[string]bool       // every debit key sent (usage, batch event, capture)
	acked  map[string]ackedDebit // the acknowledged ones
	manual map[string]string     // acknowledged manual top-up → its account
	refund map[string]string     // acknowledged refund → its top-up
	single []time.Duration       // single debits' latency, failovers included
	ops    map[string]*opStats
	events atomic.Int64 // debit events acknowledged (a batch counts its events)
}

func newRecord() *record {
	r := &record{sent: map[string]bool{}, acked: map[string]ackedDebit{}, manual: map[string]string{}, refund: map[string]string{},
		ops: map[string]*opStats{}}
	for _, op := range opOrder {
		r.ops[op] = &opStats{}
	}
	return r
}

func (r *record) sentDebit(keys ...string) {
	r.mu.Lock()
	for _, k := range keys {
		r.sent[k] = true
	}
	r.mu.Unlock()
}

func (r *record) ackDebit(key, account, entry string) {
	r.mu.Lock()
	r.acked[key] = ackedDebit{account: account, entry: entry}
	r.mu.Unlock()
	r.events.Add(1)
}

func (r *record) ackTopUp(id, account string) {
	r.mu.Lock()
	r.manual[id] = account
	r.mu.Unlock()
}

func (r *record) ackRefund(id, topUp string) {
	r.mu.Lock()
	r.refund[id] = topUp
	r.mu.Unlock()
}

func (r *record) latency(d time.Duration) {
	r.mu.Lock()
	r.single = append(r.single, d)
	r.mu.Unlock()
}

// outcome is how a request ended after any failovers.
type outcome int

const (
	acked   outcome = iota // a 2xx
	refused                // a 4xx: the product's answer
	unknown                // no replica answered
)

// caller sends each request to a random replica and, when the answer is
// lost (a killed replica, a 5xx, a request still in progress), sends it
// again with the same idempotency key to another, as a load balancer and a
// careful client would.
type caller struct {
	clients []*client.Client // one per replica, none retrying by itself
	// attempts bounds the sends of one request; pause is the first wait
	// between two, doubling up to a second.
	attempts int
	pause    time.Duration
}

func newCaller(urls []string, adminKey string, conns int) *caller {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns, IdleConnTimeout: 30 * time.Second}}
	c := &caller{attempts: 40, pause: 50 * time.Millisecond}
	for _, u := range urls {
		c.clients = append(c.clients, client.New(u, adminKey, client.WithHTTPClient(hc), client.WithRetries(0, 0)))
	}
	return c
}

// lost reports whether err leaves the request's outcome unknown, so that
// sending it again (with its key) is right.
func lost(err error) bool {
	e := client.AsError(err)
	return e == nil || e.Status >= 500 || e.Code == client.CodeRequestInProgress || e.Code == client.CodeRateLimited
}

// do runs send against one replica after another until it answers, and
// counts the outcome in st. notFoundDone treats a 404 after a lost answer
// as done (a DELETE that had happened).
func (c *caller) do(ctx context.Context, rng *rand.Rand, st *opStats, notFoundDone bool, send func(*client.Client) error) (outcome, error) {
	st.sent.Add(1)
	i := rng.IntN(len(c.clients))
	wait := c.pause
	var err error
	for attempt := 0; attempt < c.attempts; attempt++ {
		if attempt > 0 {
			st.failovers.Add(1)
			select {
			case <-ctx.Done():
				st.unknown.Add(1)
				return unknown, errors.Join(err, ctx.Err())
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
		}
		err = send(c.clients[(i+attempt)%len(c.clients)])
		switch {
		case err == nil:
			st.acked.Add(1)
			return acked, nil
		case attempt > 0 && notFoundDone && errors.Is(err, client.ErrNotFound):
			st.acked.Add(1)
			return acked, nil
		case !lost(err):
			st.refusedWith(err)
			return refused, err
		}
	}
	st.unknown.Add(1)
	return unknown, err
}
