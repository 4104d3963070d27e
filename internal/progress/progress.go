// Package progress shows how far long work has come (topup verify,
// simulate, bench, soak) on a terminal, and nothing anywhere else: a pipe, a
// file or a test's buffer gets the command's report and not one byte of
// progress, so scripts that read the output are never disturbed. Commas
// formats the counts those reports print.
package progress

import (
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Bar is a progress bar, or nothing when its writer is not a terminal. A
// nil *Bar is valid and shows nothing.
type Bar struct {
	pb *progressbar.ProgressBar
}

// New returns a bar of total steps described by what, drawn on w when w is
// a terminal; otherwise it returns nil, which draws nothing.
func New(w io.Writer, total int64, what string) *Bar {
	if !IsTerminal(w) {
		return nil
	}
	return draw(w, total, what)
}

// Force returns a bar drawn on w whatever w is; tests use it to see what a
// terminal would show.
func Force(w io.Writer, total int64, what string) *Bar { return draw(w, total, what) }

func draw(w io.Writer, total int64, what string) *Bar {
	return &Bar{pb: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
	)}
}

// IsTerminal reports whether w is a terminal (a character device such as
// a tty), where drawing a bar makes sense.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Add moves the bar n steps on.
func (b *Bar) Add(n int) {
	if b != nil {
		_ = b.pb.Add(n)
	}
}

// Set moves the bar to n steps done.
func (b *Bar) Set(n int64) {
	if b != nil {
		_ = b.pb.Set64(n)
	}
}

// Describe changes what the bar says it is doing.
func (b *Bar) Describe(what string) {
	if b != nil {
		b.pb.Describe(what)
	}
}

// Finish completes the bar and clears it, so that the report that follows
// starts on a clean line.
func (b *Bar) Finish() {
	if b != nil {
		_ = b.pb.Finish()
	}
}

// Commas writes n with thousands separators: 1234567 is "1,234,567".
func Commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
