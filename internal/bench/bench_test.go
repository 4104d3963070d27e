package bench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/topup/topup/internal/money"
)

// TestBenchCheckTopUps shows that the bench's top-up checks catch what they
// are for: two open automatic top-ups at once, a top-up charged twice and
// charges that do not add up to the credits.
func TestBenchCheckTopUps(t *testing.T) {
	t.Parallel()
	const unit = money.MicrosPerUnit
	good := func() *benchTopUps {
		return &benchTopUps{
			topUps: []benchTopUp{
				{id: "tu_1", account: "acct_a", status: "succeeded", trigger: "threshold", amount: 5 * unit, crossed: 100, created: 100, completed: 200},
				{id: "tu_2", account: "acct_a", status: "succeeded", trigger: "threshold", amount: 6 * unit, crossed: 200, created: 200, completed: 300},
				{id: "tu_3", account: "acct_b", status: "canceled", trigger: "threshold", crossed: 150, created: 150, completed: 160},
			},
			credits: map[string]money.Amount{"acct_a": 11 * unit},
			entries: map[string]money.Amount{"tu_1": 5 * unit, "tu_2": 6 * unit},
			charges: map[string][]benchCharge{
				"tu_1": {{id: "pi_1", topUp: "tu_1", status: "succeeded", amount: 5 * unit}},
				"tu_2": {{id: "pi_2", topUp: "tu_2", status: "declined", amount: 6 * unit}, {id: "pi_3", topUp: "tu_2", status: "succeeded", amount: 6 * unit}},
			},
		}
	}
	var out bytes.Buffer
	b := &bench{out: &out}
	if failed := b.checkTopUps(good()); failed != nil {
		t.Fatalf("consistent top-ups refused: %v\n%s", failed, out.String())
	}
	for name, spoil := range map[string]func(*benchTopUps){
		"two open at once": func(tu *benchTopUps) { tu.topUps[1].created = 150 },
		"charged twice": func(tu *benchTopUps) {
			tu.charges["tu_1"] = append(tu.charges["tu_1"], benchCharge{id: "pi_4", topUp: "tu_1", status: "succeeded", amount: 5 * unit})
		},
		"charged, not credited": func(tu *benchTopUps) {
			tu.charges["tu_3"] = []benchCharge{{id: "pi_5", topUp: "tu_3", status: "succeeded", amount: unit}}
		},
		"credit of another amount": func(tu *benchTopUps) { tu.entries["tu_2"], tu.credits["acct_a"] = 7*unit, 12*unit },
	} {
		tu := good()
		spoil(tu)
		out.Reset()
		if failed := b.checkTopUps(tu); failed == nil || !strings.Contains(out.String(), "BROKEN") {
			t.Errorf("%s: not caught (%v)\n%s", name, failed, out.String())
		}
	}
}
