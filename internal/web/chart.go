package web

import (
	"math"
	"strconv"
	"strings"

	"github.com/topup/topup/internal/money"
)

// The balance chart is an SVG drawn on the server. It stretches to any
// width (preserveAspectRatio="none", strokes that do not scale), so the same
// markup serves a phone and a desktop; its labels are HTML around it, so
// they stay readable at every size, and no inline style is needed (the CSP
// forbids them).

const (
	chartW = 1000.0
	chartH = 300.0
)

// chart is the template's model of the 30-day balance chart.
type chart struct {
	Line, Area string
	Markers    []chartMarker
	Grid       []float64 // y of gridlines
	Threshold  *float64  // y of the Automatic Payments threshold, when on
	ThresholdLabel,
	Top, Mid, Bottom string // y-axis labels, top to bottom
	Start, Middle string // x-axis labels
	Summary       string
	Rows          []chartRow
	TopUps        int
}

// chartMarker is a day with top-ups.
type chartMarker struct {
	Path, Label string
}

// chartRow is one day of the chart as a table row, for screen readers and
// anyone who wants the numbers.
type chartRow struct {
	Day, DayISO, Closing, Usage, Credits string
	TopUps                               int
}

// buildChart draws h: a point for the opening balance, then one for each
// day's closing balance, with days that had top-ups marked.
func buildChart(h history, c money.Currency, threshold *money.Amount) chart {
	vals := []money.Amount{h.Opening}
	for _, d := range h.Days {
		vals = append(vals, d.Closing)
	}
	lo, hi := money.Amount(0), money.Amount(0)
	for _, v := range vals {
		lo, hi = min(lo, v), max(hi, v)
	}
	if threshold != nil {
		hi = max(hi, *threshold)
	}
	top := niceCeil(hi, c)
	bottom := money.Amount(0)
	if lo < 0 {
		bottom = -niceCeil(-lo, c)
	}
	span := float64(top - bottom)
	y := func(v money.Amount) float64 { return round1(chartH - float64(v-bottom)/span*chartH) }
	x := func(i int) float64 { return round1(float64(i) * chartW / float64(len(vals)-1)) }

	var line strings.Builder
	for i, v := range vals {
		if i == 0 {
			line.WriteString("M")
		} else {
			line.WriteString(" L")
		}
		line.WriteString(num(x(i)) + " " + num(y(v)))
	}
	out := chart{Line: line.String(), Area: line.String() + " L" + num(chartW) + " " + num(chartH) + " L0 " + num(chartH) + " Z",
		Grid: []float64{0, chartH / 2, chartH}, Top: formatMoney(top, c), Mid: formatMoney(bottom+(top-bottom)/2, c), Bottom: formatMoney(bottom, c)}
	if bottom < 0 {
		zero := y(0)
		out.Grid = append(out.Grid, zero)
	}
	if threshold != nil {
		ty := y(*threshold)
		out.Threshold, out.ThresholdLabel = &ty, formatMoney(*threshold, c)
	}
	if len(h.Days) > 0 {
		out.Start = formatDay(h.Days[0].Day)
	}
	if len(h.Days) >= 3 {
		out.Middle = formatDay(h.Days[len(h.Days)/2].Day)
	}
	low := h.Opening
	for i, d := range h.Days {
		if d.TopUps > 0 {
			out.TopUps += d.TopUps
			out.Markers = append(out.Markers, chartMarker{
				Path:  "M" + num(x(i+1)) + " " + num(y(d.Closing)) + " h0",
				Label: plural(d.TopUps, "top-up", "top-ups") + " on " + formatDay(d.Day) + ", " + formatMoney(d.TopUpIn, c) + "; closing balance " + formatMoney(d.Closing, c),
			})
		}
		low = min(low, d.Closing)
		out.Rows = append(out.Rows, chartRow{Day: formatDay(d.Day), DayISO: d.Day.Format("2006-01-02"), Closing: formatMoney(d.Closing, c),
			Usage: formatMoney(d.Usage, c), Credits: formatMoney(d.Grants+d.TopUpIn, c), TopUps: d.TopUps})
	}
	if len(h.Days) > 0 {
		out.Summary = "Balance from " + formatMoney(h.Opening, c) + " on " + out.Start + " to " + formatMoney(h.Balance, c) + " today; lowest closing balance " +
			formatMoney(low, c) + "; " + plural(out.TopUps, "top-up", "top-ups") + "."
	}
	// Newest day first in the table, as in every list of the console.
	for i, j := 0, len(out.Rows)-1; i < j; i, j = i+1, j-1 {
		out.Rows[i], out.Rows[j] = out.Rows[j], out.Rows[i]
	}
	return out
}

// niceCeil rounds a positive amount up to 1, 2 or 5 times a power of ten
// of the currency's units, so the axis reads $50.00 rather than $47.13.
func niceCeil(a money.Amount, c money.Currency) money.Amount {
	unit := money.Amount(pow10(6 - c.Minor))
	if a <= 0 {
		return 10 * money.MicrosPerUnit
	}
	step := money.Amount(money.MicrosPerUnit) / 100 // start at a cent
	step = max(step, unit)
	for {
		for _, m := range []money.Amount{1, 2, 5} {
			if m*step >= a {
				return m * step
			}
		}
		if step > math.MaxInt64/100 {
			return a
		}
		step *= 10
	}
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
