package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/receipt"
	"github.com/topup/topup/internal/statement"
)

// Statements reads monthly statements (*sqlstore.Ledger): the month's
// range of entries and its balances, then the entries one at a time.
type Statements interface {
	StatementRange(ctx context.Context, accountID string, m statement.Month) (statement.Range, error)
	EachStatementEntry(ctx context.Context, r statement.Range, fn func(ledger.Entry) error) error
}

func (s *Server) getReceipt(w http.ResponseWriter, r *http.Request) {
	if err := s.WriteReceipt(w, r, r.PathValue("id"), r.PathValue("top_up_id")); err != nil {
		s.fail(w, r, err)
	}
}

func (s *Server) getStatement(w http.ResponseWriter, r *http.Request) {
	if err := s.WriteStatement(w, r, r.PathValue("id")); err != nil {
		s.fail(w, r, err)
	}
}

// WriteReceipt answers the receipt of an account's succeeded top-up: a PDF,
// or HTML when the request's Accept prefers text/html. The caller has
// checked that the caller may see the account; an error (an unknown
// account or top-up, one that has not succeeded: NotFound) is returned
// before anything is written, for the caller to answer in its own way.
// The console serves its receipts through this same method.
func (s *Server) WriteReceipt(w http.ResponseWriter, r *http.Request, accountID, topUpID string) error {
	if s.billing == nil {
		return apperr.NotFoundf("no receipts here")
	}
	rec, err := s.billing.Receipt(r.Context(), accountID, topUpID)
	if err != nil {
		return err
	}
	doc := receipt.Build(rec, s.cfg.Business)
	var body bytes.Buffer
	h := w.Header()
	if wantsHTML(r.Header.Get("Accept")) {
		if err := receipt.HTML(&body, doc); err != nil {
			return fmt.Errorf("receipt %s as HTML: %w", doc.Number, err)
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", receipt.CSP)
	} else {
		if err := receipt.PDF(&body, doc); err != nil {
			return fmt.Errorf("receipt %s as PDF: %w", doc.Number, err)
		}
		h.Set("Content-Type", "application/pdf")
		h.Set("Content-Disposition", `inline; filename="receipt-`+doc.Number+`.pdf"`)
	}
	h.Set("Vary", "Accept")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body.Bytes())
	if err != nil {
		s.log.WarnContext(r.Context(), "receipt not delivered", "top_up_id", topUpID, "err", err)
	}
	return nil
}

// wantsHTML reports whether an Accept header prefers text/html to
// application/pdf. PDF is the default: no Accept, */*, or a tie.
func wantsHTML(accept string) bool {
	html, pdf := quality(accept, "text/html"), quality(accept, "application/pdf")
	return html > 0 && html > pdf
}

// quality is the q an Accept header gives mediaType, from its most
// specific range (type/subtype, then type/*, then */*); 0 when none
// matches.
func quality(accept, mediaType string) float64 {
	major, _, _ := strings.Cut(mediaType, "/")
	best, q := -1, 0.0
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		rank := -1
		switch mt {
		case mediaType:
			rank = 2
		case major + "/*":
			rank = 1
		case "*/*":
			rank = 0
		}
		if rank <= best {
			continue
		}
		best, q = rank, 1
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1 {
				q = f
			}
		}
	}
	return q
}

// WriteStatement answers an account's statement of ?month= as ?format=
// (csv, or json by default). Its entries are written as the database
// returns them, so a month of any size streams in constant memory. Bad
// query values and an unknown account are returned as errors before
// anything is written, as is a failure before the first entry; a failure
// after the answer began cuts the connection (http.ErrAbortHandler), so
// the client sees a broken transfer, never a short statement that looks
// whole. The console serves its statements through this same method.
func (s *Server) WriteStatement(w http.ResponseWriter, r *http.Request, accountID string) error {
	q := r.URL.Query()
	m, err := statement.ParseMonth(q.Get("month"))
	if err != nil {
		return err
	}
	format, err := statement.ParseFormat(q.Get("format"))
	if err != nil {
		return err
	}
	if s.statements == nil {
		return apperr.NotFoundf("no statements here")
	}
	rg, err := s.statements.StatementRange(r.Context(), accountID, m)
	if err != nil {
		return err
	}
	out := &stream{w: w, rc: http.NewResponseController(w), filename: "statement-" + rg.AccountID + "-" + m.String()}
	if format == statement.CSV {
		out.csv(rg)
	} else {
		out.json(rg)
	}
	err = s.statements.EachStatementEntry(r.Context(), rg, out.write)
	if err == nil {
		err = out.finish()
	}
	if err != nil && !out.started {
		return fmt.Errorf("statement of %s for %s: %w", accountID, m, err)
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "statement cut short", "account_id", accountID, "month", m.String(), "rows", out.rows,
			"request_id", requestID(r), "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// stream writes a statement. The status and headers go with the first
// entry (or the end, for a month without any), so an error before then is
// still answered as an error; the body goes through a buffer.
type stream struct {
	w           http.ResponseWriter
	rc          *http.ResponseController
	buf         *bufio.Writer
	contentType string
	filename    string // without its extension
	started     bool
	rows        int
	head        func() error // what comes before the entries
	entry       func(ledger.Entry) error
	end         func() error // what comes after them
}

// start sends the status and headers, then the head.
func (o *stream) start() error {
	if o.started {
		return nil
	}
	h := o.w.Header()
	h.Set("Content-Type", o.contentType)
	h.Set("Content-Disposition", `attachment; filename="`+o.filename+`"`)
	h.Set("Cache-Control", "private, no-store")
	o.w.WriteHeader(http.StatusOK)
	o.started = true
	o.buf = bufio.NewWriterSize(o.w, 64<<10)
	return o.head()
}

// write writes one entry.
func (o *stream) write(e ledger.Entry) error {
	if err := o.start(); err != nil {
		return err
	}
	o.rows++
	if o.rows%10_000 == 0 {
		// A big statement takes longer than the server's write timeout;
		// each 10,000 rows earn another minute.
		_ = o.rc.SetWriteDeadline(time.Now().Add(time.Minute))
	}
	return o.entry(e)
}

// finish writes what follows the entries and flushes.
func (o *stream) finish() error {
	if err := o.start(); err != nil {
		return err
	}
	if err := o.end(); err != nil {
		return err
	}
	return o.buf.Flush()
}

// csv makes o a CSV statement: the header row, then a row per entry.
func (o *stream) csv(rg statement.Range) {
	o.contentType, o.filename = "text/csv; charset=utf-8", o.filename+".csv"
	var cw *statement.CSVWriter
	o.head = func() (err error) {
		cw, err = statement.NewCSVWriter(o.buf, rg.Currency)
		return err
	}
	o.entry = func(e ledger.Entry) error { return cw.Write(e) }
	o.end = func() error { return cw.Flush() }
}

// statementHead is the JSON statement's members before its entries.
type statementHead struct {
	AccountID      string `json:"account_id"`
	Month          string `json:"month"`
	Currency       string `json:"currency"`
	OpeningBalance string `json:"opening_balance"`
	ClosingBalance string `json:"closing_balance"`
}

// json makes o a JSON statement: {account_id, month, currency,
// opening_balance, closing_balance, entries: [...]}, each entry as the
// transactions list writes it.
func (o *stream) json(rg statement.Range) {
	o.contentType, o.filename = "application/json", o.filename+".json"
	o.head = func() error {
		head, err := json.Marshal(statementHead{AccountID: rg.AccountID, Month: rg.Month.String(), Currency: rg.Currency.Code,
			OpeningBalance: rg.Opening.Format(rg.Currency), ClosingBalance: rg.Closing.Format(rg.Currency)})
		if err != nil {
			return err
		}
		_, err = o.buf.Write(append(head[:len(head)-1], `,"entries":[`...))
		return err
	}
	first := true
	o.entry = func(e ledger.Entry) error {
		line, err := json.Marshal(toEntryJSON(e, rg.Currency))
		if err != nil {
			return err
		}
		if !first {
			line = append([]byte{','}, line...)
		}
		first = false
		_, err = o.buf.Write(line)
		return err
	}
	o.end = func() error {
		_, err := o.buf.WriteString("]}\n")
		return err
	}
}
