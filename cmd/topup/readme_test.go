package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// tourVars are the variables the README's tour uses without setting them:
// each is read from the answer of the first curl line whose command
// matches (the account's id, the new API key's id), or from the first
// item of a list answer (the sandbox's newest charge).
var tourVars = []struct {
	name string
	line *regexp.Regexp
	list bool
}{
	{"ID", regexp.MustCompile(`-d .*\$T/v1/accounts$`), false},
	{"KEY_ID", regexp.MustCompile(`-d .*/api_keys$`), false},
	{"CHARGE_ID", regexp.MustCompile(`\$T/v1/sandbox/charges$`), true},
	{"TOP_UP_ID", regexp.MustCompile(`-d .*/top_ups$`), false},
	{"HOLD", regexp.MustCompile(`-d .*/holds$`), false},
}

// readmeTour returns the shell lines of README.md's "API tour" section:
// the export and every curl, as a reader would paste them.
func readmeTour(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## API tour\n")
	if !ok {
		t.Fatal(`README.md has no "## API tour" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var lines []string
	for _, l := range strings.Split(section, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "export ") || strings.HasPrefix(l, "curl ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestREADMEAPITour runs every curl line of README.md's API tour, with the
// machine's bash and curl, against a real `topup serve`, and wants each to
// answer 2xx: the README cannot drift from the API.
func TestREADMEAPITour(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the tour needs %s: %v", tool, err)
		}
	}
	const admin = "tpk_admin_readme_tour_0123456789abcdef"
	// TOPUP_WEBHOOKS_ALLOW_PRIVATE: the tour's endpoint is example.com,
	// which a machine without DNS (CI's sandbox) cannot resolve; allowing
	// private endpoints skips that lookup, nothing else of the tour.
	srv := startRun(t, testEnv{"TOPUP_ADMIN_KEY": admin, "TOPUP_WEBHOOKS_ALLOW_PRIVATE": "true"}, "serve", "--addr", "127.0.0.1:0", "--db", tempDB(t))
	lines := readmeTour(t)
	if len(lines) < 20 || !strings.HasPrefix(lines[0], "export T=") {
		t.Fatalf("the tour has %d lines and starts %q; want the export and at least 19 curls", len(lines), lines[0])
	}
	env := append(os.Environ(), "ADMIN_KEY="+admin)
	// The export sets T for the reader's own server; the test's
	// server is elsewhere, so T is set again after it.
	prelude := "set -eu; " + lines[0] + "; T=" + srv.url + "; "
	body := filepath.Join(t.TempDir(), "body")
	for _, line := range lines[1:] {
		cmd := exec.Command("bash", "-c", prelude+line+` -o "$BODY" -w '%{http_code}'`)
		cmd.Env = append(env, "BODY="+body)
		out, err := cmd.CombinedOutput()
		answer, _ := os.ReadFile(body)
		status := strings.TrimSpace(string(out))
		if err != nil || !strings.HasPrefix(status, "2") {
			t.Errorf("%s\nanswered %s (%v): %s", line, status, err, answer)
			continue
		}
		for _, v := range tourVars {
			if v.line.MatchString(line) && !strings.Contains(strings.Join(env, "\n"), "\n"+v.name+"=") {
				var got struct {
					ID   string
					Data []struct{ ID string }
				}
				err := json.Unmarshal(answer, &got)
				if v.list && len(got.Data) > 0 {
					got.ID = got.Data[0].ID
				}
				if err != nil || got.ID == "" {
					t.Fatalf("%s\nanswered no id: %s", line, answer)
				}
				env = append(env, v.name+"="+got.ID)
			}
		}
	}
}
