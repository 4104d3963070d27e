package client_test

import (
	"testing"

	"github.com/topup/topup/client"
)

// TestMoney: amounts are read as the API reads them and converted to and
// from micros exactly.
func TestMoney(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"0", "10", "10.5", "0.000125", "1000000.00"} {
		if _, err := client.ParseMoney(s); err != nil {
			t.Errorf("ParseMoney(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "-1", "01", "1e3", "1.", ".5", "1.0000001", " 1", "1,5"} {
		if _, err := client.ParseMoney(s); err == nil {
			t.Errorf("ParseMoney(%q) accepted", s)
		}
	}
	for _, c := range []struct {
		m      client.Money
		micros int64
		back   client.Money
	}{
		{"10.5", 10_500_000, "10.50"}, {"0.000125", 125, "0.000125"}, {"-3.5", -3_500_000, "-3.50"}, {"7", 7_000_000, "7.00"},
	} {
		n, err := c.m.Micros()
		if err != nil || n != c.micros || client.MoneyFromMicros(n) != c.back {
			t.Errorf("%q: %d micros (%v), back %q; want %d and %q", c.m, n, err, client.MoneyFromMicros(n), c.micros, c.back)
		}
	}
	if client.Money("10").Cmp("10.00") != 0 || client.Money("9.99").Cmp("10") != -1 {
		t.Error("Cmp does not compare by value")
	}
}
