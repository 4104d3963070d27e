package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var consoleLinkRE = regexp.MustCompile(`Console:\s+(http://\S+/console/login\?token=tpl_\S+)`)

// TestDemoPrintsConsoleLink: `topup demo` serves the console beside the
// API and prints a sign-in link that opens its Sign in page; every start
// prints a new one.
func TestDemoPrintsConsoleLink(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	srv := startRun(t, nil, "demo", "--addr", "127.0.0.1:0", "--db", db)
	m := consoleLinkRE.FindStringSubmatch(srv.out.String())
	if m == nil || !strings.HasPrefix(m[1], srv.url+"/console/") {
		t.Fatalf("the demo banner has no console sign-in link on %s:\n%s", srv.url, srv.out)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `id="sign-in"`) || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("the printed link answered %d (X-Frame-Options %q); want the console's Sign in page", resp.StatusCode, resp.Header.Get("X-Frame-Options"))
	}
	// The API still answers beside it, and an unknown path is still the
	// API's JSON 404.
	mustCall(t, srv.url, "GET", "/v1/openapi.json", "", "", 200, nil)
	if status, _, b := doHTTP(t, srv.url, "GET", "/nowhere", "", ""); status != 404 || !strings.Contains(string(b), `"not_found"`) {
		t.Errorf("GET /nowhere answered %d %s; want the API's JSON 404", status, b)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	again := startRun(t, nil, "demo", "--addr", "127.0.0.1:0", "--db", db)
	m2 := consoleLinkRE.FindStringSubmatch(again.out.String())
	if m2 == nil || strings.SplitN(m2[1], "token=", 2)[1] == strings.SplitN(m[1], "token=", 2)[1] {
		t.Errorf("the second start printed %v; want a new sign-in link", m2)
	}
}
