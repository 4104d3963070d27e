package main

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// TestSimulateCommand: `topup simulate` runs seeds, says every invariant
// held, and ends with the seeds and steps it ran per second; the same seed
// prints the same fingerprint twice.
func TestSimulateCommand(t *testing.T) {
	t.Parallel()
	simulate := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), append([]string{"simulate"}, args...), func(string) string { return "" }, &stdout, &stderr); err != nil {
			t.Fatalf("simulate %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	one := simulate("--seed", "3", "--steps", "80")
	fp := regexp.MustCompile(`ok: seed 3, every invariant held after every step \(run fingerprint ([0-9a-f]{16})\)`).FindStringSubmatch(one)
	if fp == nil {
		t.Fatalf("no ok line with a fingerprint:\n%s", one)
	}
	if !regexp.MustCompile(`1 seeds, 80 steps in \S+: [0-9.]+ seeds/s, [0-9]+ steps/s`).MatchString(one) {
		t.Fatalf("no rate line:\n%s", one)
	}
	if !regexp.MustCompile(`holds: \d+ made \(\d+ triggering a top-up\), \d+ refused 402, \d+ captured \(\d+ refused 409\), \d+ released, \d+ expired; expiry: \d+ passes, \d+ warnings, \d+ expirations; voids: \d+ \(\d+ refused 409\)`).MatchString(one) {
		t.Fatalf("no line of holds, expiry and voids:\n%s", one)
	}
	if again := simulate("--seed", "3", "--steps", "80"); !strings.Contains(again, fp[1]) {
		t.Fatalf("seed 3 ran differently the second time (fingerprint %s):\n%s", fp[1], again)
	}
	many := simulate("--seed", "10", "--seeds", "2", "--steps", "40")
	if !strings.Contains(many, "ok: seeds 10 to 11") || !strings.Contains(many, "2 seeds, 80 steps") {
		t.Fatalf("two seeds:\n%s", many)
	}
	if only := simulate("--seed", "3", "--steps", "80", "--only", "1,5,9"); !strings.Contains(only, "1 seeds, 3 steps") {
		t.Fatalf("--only ran other steps:\n%s", only)
	}
}

// TestSimulateRefusesBadFlags: flags that make no run are usage errors.
func TestSimulateRefusesBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--steps", "0"}, {"--seeds", "0"}, {"--only", "1,x"}, {"extra"}} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"simulate"}, args...), func(string) string { return "" }, &stdout, &stderr)
		if !errors.Is(err, errUsage) {
			t.Errorf("simulate %v: %v, want a usage error", args, err)
		}
	}
}
