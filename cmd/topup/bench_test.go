package main

import (
	"bytes"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestBenchSmoke runs a tiny `topup bench` end to end, so that the command
// cannot rot unnoticed: every phase runs, none has an error, and the ledger
// it leaves verifies clean with each balance matching the debits answered.
func TestBenchSmoke(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"bench", "--duration", "300ms", "--accounts", "20", "--clients", "4",
		"--batch-size", "100", "--batch-clients", "2"}, func(string) string { return "" }, &stdout, &stderr)
	out := stdout.String()
	t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr.String())
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	for _, phase := range []string{"trivial ", "single ", "batch "} {
		if !strings.Contains(out, "\n"+phase) {
			t.Errorf("no %q row in the table", strings.TrimSpace(phase))
		}
	}
	for _, want := range []string{"ratio-to-trivial", "rate ", "peak RSS: ", "verify: clean", "balances: each of 20 accounts"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestBenchFlags shows that a bad command line is refused before anything
// starts.
func TestBenchFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--phases", "trivial,bogus"},
		{"--accounts", "0"},
		{"--batch-size", "10001"},
		{"--duration", "0s"},
		{"--amount", "0"},
		{"--amount", "-0.05"},
		{"--amount", "5c"},
		{"--sandbox-latency", "200ms"},
		{"--auto-top-up", "--sandbox-latency", "-1s"},
		{"--grants", "11"},
		{"--grants", "-1"},
		{"--grants", "3", "--baseline-grants", "11"},
		{"--seed-entries", "-1"},
		{"--seed-entries", "1000", "--alerts-budgets"},
		{"--seed-entries", "1000", "--baseline-grants", "1"},
		{"--phases", "read", "--page-size", "101"},
		{"--phases", "read", "--page-size", "-1"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"bench"}, args...), func(string) string { return "" }, &stdout, &stderr)
		if !errors.Is(err, errUsage) {
			t.Errorf("bench %v: got %v, want a usage error", args, err)
		}
	}
}

// TestBenchAlertsBudgets runs the bench with every account watched: the
// watch runs on every debit and the ledger, with its budget spends, still
// verifies clean.
func TestBenchAlertsBudgets(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"bench", "--duration", "300ms", "--accounts", "20", "--clients", "4", "--phases", "single,batch",
		"--batch-size", "100", "--batch-clients", "2", "--alerts-budgets"}, func(string) string { return "" }, &stdout, &stderr)
	out := stdout.String()
	t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr.String())
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	for _, want := range []string{"alerts and budgets on", "verify: clean", "balances: each of 20 accounts"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestBenchGrants runs the bench with three grants per account beside a
// baseline set with one: debits are funded from them, both sets' phases are
// reported with their ratio, and the ledger with its grants verifies clean.
func TestBenchGrants(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"bench", "--duration", "300ms", "--accounts", "20", "--clients", "4", "--phases", "single,batch",
		"--batch-size", "100", "--batch-clients", "2", "--grants", "3", "--baseline-grants", "1"}, func(string) string { return "" }, &stdout, &stderr)
	out := stdout.String()
	t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr.String())
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	for _, want := range []string{"with 3 grants each, and as many with 1 grants each", "single/3g", "single/1g", "batch/3g", "batch/1g",
		"grants: rate with 3 grants / with 1 (≥ 0.90): single ", "; batch ", "verify: clean", "balances: each of 40 accounts"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestBenchAutoTopUp runs the bench with Automatic Top-Up on every account
// and a usage amount that crosses the threshold every 5 debits (so that even
// a loaded machine's few single debits in 300 ms cross it): top-ups
// succeed during the load, the report shows them and the time from crossing
// to credit, and the ledger, the top-ups and the sandbox's charges agree.
func TestBenchAutoTopUp(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"bench", "--duration", "300ms", "--accounts", "20", "--clients", "4", "--phases", "single,batch",
		"--batch-size", "100", "--batch-clients", "2", "--auto-top-up", "--amount", "1.00", "--sandbox-latency", "5ms"},
		func(string) string { return "" }, &stdout, &stderr)
	out := stdout.String()
	t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr.String())
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	for _, want := range []string{"Automatic Top-Up on (", "sandbox latency 5ms", "usage amount 1.00",
		"settled: no automatic top-up open", "crossing→credit (succeeded threshold top-ups", "crossed during single: p50 ", "crossed during batch: ",
		"top-ups: never two open automatic top-ups", "verify: clean", "balances: each of 20 accounts"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	m := regexp.MustCompile(`automatic top-ups: [\d,]+ \(([\d,]+) succeeded`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no automatic top-ups line")
	}
	if n, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", "")); n == 0 {
		t.Error("no automatic top-up succeeded")
	}
	if !regexp.MustCompile(`crossing→credit \(.*\): p50 \S+, p99 \S+, max \S+ \(n=[1-9]`).MatchString(out) {
		t.Error("no crossing→credit percentiles")
	}
}
