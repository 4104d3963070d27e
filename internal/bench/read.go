package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/progress"
)

// The read phase measures what a customer's dashboard and an operator's
// books ask of a ledger, each kind in a phase of its own, with the same
// clients and Zipf choice of account as the debit phases:
//
//   - account: GET /v1/accounts/{id};
//   - page: the newest page of GET /v1/accounts/{id}/transactions;
//   - deep page: the page after the account's middle entry (starting_after),
//     as a client paging far back reads it;
//   - statement: GET /v1/accounts/{id}/statement?month=…&format=csv of one
//     of the twelve months before this one, read to its end.
//
// With --seed-entries the hottest account holds millions of entries: a
// cost that grows with the ledger shows there.
var readKinds = []string{"account", "page", "deep page", "statement"}

// readTargets are what each read request asks, per account.
type readTargets struct {
	deep   []string // per account: the id of its middle entry, "" if none
	months []string // the twelve months before this one, as "2026-11"
}

// readPhases runs one phase per kind of read.
func (b *bench) readPhases(ctx context.Context) ([]*benchPhase, error) {
	t, err := b.readTargets(ctx)
	if err != nil {
		return nil, err
	}
	var out []*benchPhase
	for i, kind := range readKinds {
		r := b.drive(ctx, "read "+kind, strconv.Itoa(b.cfg.clients), b.cfg.clients, uint64(10+i), b.readRequest(kind, t))
		r.read = true
		out = append(out, r)
		if ctx.Err() != nil {
			break
		}
	}
	return out, nil
}

// readTargets finds each account's middle entry, for the deep page.
func (b *bench) readTargets(ctx context.Context) (readTargets, error) {
	t := readTargets{deep: make([]string, b.cfg.accounts)}
	db := b.store.DB()
	for i := range t.deep {
		var last int64
		if err := db.QueryRowContext(ctx, `SELECT last_seq FROM accounts WHERE id = $1`, b.accounts[i]).Scan(&last); err != nil {
			return t, fmt.Errorf("bench: read phase: account %s: %w", b.accounts[i], err)
		}
		if last < 2 {
			continue
		}
		if err := db.QueryRowContext(ctx, `SELECT id FROM entries WHERE account_id = $1 AND seq = $2`, b.accounts[i], last/2).Scan(&t.deep[i]); err != nil {
			return t, fmt.Errorf("bench: read phase: entry %d of %s: %w", last/2, b.accounts[i], err)
		}
	}
	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for k := 1; k <= 12; k++ {
		t.months = append(t.months, month.AddDate(0, -k, 0).Format("2006-01"))
	}
	return t, nil
}

// readRequest returns the request of one kind: a GET of a Zipf-chosen
// account's resource from the client's instance, read to its end; anything
// but a 200 is an error.
func (b *bench) readRequest(kind string, t readTargets) benchRequest {
	limit := strconv.Itoa(b.cfg.pageSize)
	return func(ctx context.Context, c *benchClient) int {
		acct := c.account()
		id := b.accounts[acct]
		var path string
		switch kind {
		case "account":
			path = "/v1/accounts/" + id
		case "page":
			path = "/v1/accounts/" + id + "/transactions?limit=" + limit
		case "deep page":
			path = "/v1/accounts/" + id + "/transactions?limit=" + limit
			if t.deep[acct] != "" {
				path += "&starting_after=" + url.QueryEscape(t.deep[acct])
			}
		case "statement":
			path = "/v1/accounts/" + id + "/statement?format=csv&month=" + t.months[c.seq%len(t.months)]
			c.seq++
		}
		n, status, err := b.get(ctx, b.urls[c.id%len(b.urls)]+path)
		switch {
		case err != nil:
			c.fail("GET %s: %v", path, err)
			return 0
		case status != http.StatusOK:
			c.fail("GET %s: %d", path, status)
			return 0
		}
		c.bytes += n
		return 1
	}
}

// get reads url to its end and returns the bytes read and the status.
func (b *bench) get(ctx context.Context, url string) (int64, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", b.auth)
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return n, resp.StatusCode, err
}

// printReadTable prints the read phases' figures: requests/s, latency and
// the mean size of an answer.
func (b *bench) printReadTable(results []*benchPhase) {
	var rows []string
	for _, r := range results {
		if !r.read {
			continue
		}
		mean := int64(0)
		if r.debits > 0 {
			mean = r.bytes / r.debits
		}
		rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%s/s\t%s\t%s\t%s\t%s\t%s", r.name, r.clients, progress.Commas(r.requests), progress.Commas(int64(r.rate())),
			benchLatency(r.pct(0.50)), benchLatency(r.pct(0.99)), benchLatency(r.pct(0.999)), progress.Commas(r.errors), progress.Commas(mean)))
	}
	if len(rows) == 0 {
		return
	}
	tw := newTable(b.out)
	fmt.Fprintln(tw, "read\tclients\trequests\trequests/s\tp50\tp99\tp99.9\terrors\tbytes/answer")
	fmt.Fprintln(tw, strings.Join(rows, "\n"))
	tw.Flush()
	fmt.Fprintf(b.out, "read: pages of %d transactions; the deep page starts after each account's middle entry; a statement is one of the 12 months before this one, as CSV\n", b.cfg.pageSize)
}
