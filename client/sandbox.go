package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ChooseSandboxCard does what a person does on the sandbox's hosted card
// page (POST /sandbox/setup/{session}): picks a test card. setupURL is
// SetupPaymentMethod's URL; the answer is the return URL, which records
// the card when opened (CompleteSetup does the same by session id).
func (c *Client) ChooseSandboxCard(ctx context.Context, setupURL, card string) (string, error) {
	return c.postForm(ctx, setupURL, url.Values{"card": {card}})
}

// AnswerSandboxChallenge does what the customer does on a requires_action
// top-up's action_url in the sandbox (POST /pay/{top_up_id}): passes the
// simulated 3-D Secure challenge (ok) or fails it. Read the top-up
// afterwards for its outcome.
func (c *Client) AnswerSandboxChallenge(ctx context.Context, actionURL string, ok bool) error {
	result := "fail"
	if ok {
		result = "ok"
	}
	form := url.Values{"result": {result}}
	if u, err := url.Parse(actionURL); err == nil {
		// The page's token rides in its query; the form carries it too,
		// as the page's own form does.
		form.Set("token", u.Query().Get("token"))
	}
	_, err := c.postForm(ctx, actionURL, form)
	return err
}

// postForm posts a browser form to one of the server's pages and returns
// where it redirects to. The pages are public: no key is sent.
func (c *Client) postForm(ctx context.Context, page string, form url.Values) (string, error) {
	if !strings.HasPrefix(page, "http://") && !strings.HasPrefix(page, "https://") {
		page = c.base + page
	}
	req, err := http.NewRequestWithContext(ctx, "POST", page, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	noRedirect := *c.http
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Do(req)
	if err != nil {
		return "", &transportError{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		return "", errorOf(&response{status: resp.StatusCode, header: resp.Header, body: b})
	}
	if resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("topup: POST %s answered %d, not a redirect", page, resp.StatusCode)
	}
	return resp.Header.Get("Location"), nil
}
