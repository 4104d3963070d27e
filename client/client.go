// Package client is a Go client for Topup's HTTP API v1: every route typed,
// money as decimal strings, idempotency keys made for the caller, safe
// retries of the calls that move money, errors carrying the API's stable
// codes, iterators over every list and a verifier for Topup's webhooks.
//
// It imports nothing of Topup's own, so that an operator's program can
// depend on it alone:
//
//	c := client.New("https://billing.example.com", os.Getenv("TOPUP_ADMIN_KEY"))
//	res, err := c.RecordUsage(ctx, accountID, client.UsageParams{Amount: "0.000125"})
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one Topup server with one API key (the operator's admin key
// or an account's key). It is safe for concurrent use.
type Client struct {
	base    string
	auth    string
	http    *http.Client
	retries int
	backoff time.Duration
}

// Option changes how a Client is built.
type Option func(*Client)

// WithHTTPClient sends requests through h instead of a client of its own
// (a transport with more idle connections, a proxy, a test's RoundTripper).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithRetries sets how many times a retryable call is sent again after the
// first attempt (default 3) and the first wait between attempts (default
// 200ms, doubling, with jitter). Zero retries sends every call once.
func WithRetries(n int, backoff time.Duration) Option {
	return func(c *Client) { c.retries, c.backoff = n, backoff }
}

// New returns a client of the server at baseURL ("http://127.0.0.1:8080")
// that authenticates with apiKey.
func New(baseURL, apiKey string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), auth: "Bearer " + apiKey,
		http: &http.Client{Timeout: time.Minute}, retries: 3, backoff: 200 * time.Millisecond}
	for _, o := range opts {
		o(c)
	}
	return c
}

// NewIdempotencyKey returns a fresh key of 128 random bits, as the client
// makes for each call that moves money when the caller gives none. Keep it
// to retry a call yourself: the same key replays, never charges twice.
func NewIdempotencyKey() string {
	var b [16]byte
	rand.Read(b[:])
	return fmt.Sprintf("ik_%x", b)
}

// call is one API request: what to send, where, and whether sending it
// again is safe.
type call struct {
	method string
	path   string
	query  url.Values
	body   any
	// retry: the request is idempotent (a read, a replacement, or a call
	// that carries an idempotency key), so it may be sent again after an
	// unknown outcome.
	retry bool
	// accept is the Accept header (application/json when empty).
	accept string
}

// response is what a successful call answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

// Replayed reports whether the server answered from an earlier call with the
// same idempotency key (the Idempotent-Replayed header).
func (r *response) replayed() bool { return r.header.Get("Idempotent-Replayed") == "true" }

// do sends a call, retrying it when that is safe, and decodes a 2xx answer
// into out (when out is not nil); any other answer is an *Error.
func (c *Client) do(ctx context.Context, cl call, out any) (*response, error) {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return nil, fmt.Errorf("topup: encode %s %s: %w", cl.method, cl.path, err)
		}
	}
	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, cl.method, u, cl.accept, body)
		if err == nil && resp.status < 300 {
			return resp, decodeInto(cl, resp, out)
		}
		if err == nil {
			err = errorOf(resp)
		}
		if !cl.retry || attempt >= c.retries || !retryable(err) || ctx.Err() != nil {
			return resp, err
		}
		if werr := c.wait(ctx, attempt); werr != nil {
			return resp, errors.Join(err, werr)
		}
	}
}

// decodeInto reads a 2xx answer into out (nil: the answer is not read).
func decodeInto(cl call, resp *response, out any) error {
	if out == nil || len(resp.body) == 0 {
		return nil
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("topup: read %s %s: %w", cl.method, cl.path, err)
	}
	return nil
}

// send makes one attempt; a transport error comes back as an error, any
// answer as a response.
func (c *Client) send(ctx context.Context, method, u, accept string, body []byte) (*response, error) {
	resp, err := c.open(ctx, method, u, accept, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &transportError{err: fmt.Errorf("read the answer of %s %s: %w", method, u, err)}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// open sends one attempt and returns the answer unread: the caller reads
// and closes its body.
func (c *Client) open(ctx context.Context, method, u, accept string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("topup: %s %s: %w", method, u, err)
	}
	req.Header.Set("Authorization", c.auth)
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &transportError{err: err}
	}
	return resp, nil
}

// stream sends a GET, retrying it like any read, and returns the body of a
// 2xx answer unread, for the caller to read as it comes and close; any
// other answer is an *Error.
func (c *Client) stream(ctx context.Context, path string, query url.Values, accept string) (io.ReadCloser, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	for attempt := 0; ; attempt++ {
		resp, err := c.open(ctx, "GET", u, accept, nil)
		if err == nil && resp.StatusCode < 300 {
			return resp.Body, nil
		}
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr != nil {
				err = &transportError{err: fmt.Errorf("read the answer of GET %s: %w", u, rerr)}
			} else {
				err = errorOf(&response{status: resp.StatusCode, header: resp.Header, body: b})
			}
		}
		if attempt >= c.retries || !retryable(err) || ctx.Err() != nil {
			return nil, err
		}
		if werr := c.wait(ctx, attempt); werr != nil {
			return nil, errors.Join(err, werr)
		}
	}
}

// transportError is a request whose outcome is unknown: no answer came.
type transportError struct{ err error }

func (e *transportError) Error() string { return "topup: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// retryable says whether a failed attempt may have an outcome the server
// has not told: no answer, a server error, or the same key still being
// processed. A 4xx refusal is final and is never sent again.
func retryable(err error) bool {
	var te *transportError
	if errors.As(err, &te) {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Code == CodeRequestInProgress
	}
	return false
}

// wait sleeps before the next attempt: the backoff doubled per attempt,
// with up to half of it again at random so that many clients spread out.
func (c *Client) wait(ctx context.Context, attempt int) error {
	d := c.backoff << attempt
	if d > 0 {
		if j, err := rand.Int(rand.Reader, big.NewInt(int64(d/2)+1)); err == nil {
			d += time.Duration(j.Int64())
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pathf builds a path from a pattern and its segments, each escaped.
func pathf(format string, segs ...string) string {
	args := make([]any, len(segs))
	for i, s := range segs {
		args[i] = url.PathEscape(s)
	}
	return fmt.Sprintf(format, args...)
}

// ListParams pages through a list: at most Limit items (default 10, at most
// 100) after the item StartingAfter (an id from the previous page).
type ListParams struct {
	Limit         int
	StartingAfter string
}

func (p ListParams) values() url.Values {
	v := url.Values{}
	if p.Limit > 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.StartingAfter != "" {
		v.Set("starting_after", p.StartingAfter)
	}
	return v
}
