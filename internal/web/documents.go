package web

import (
	"net/http"

	"github.com/topup/topup/internal/apperr"
)

// receipt answers a succeeded top-up's receipt through the API's own
// code: HTML as a browser's Accept asks, or the PDF with ?format=pdf (a
// link cannot set Accept).
func (c *Console) receipt(w http.ResponseWriter, q *request) {
	if c.docs == nil {
		c.fail(w, q.Request, apperr.NotFoundf("no receipts here"))
		return
	}
	r := q.Request
	if q.URL.Query().Get("format") == "pdf" {
		r = r.Clone(r.Context())
		r.Header.Set("Accept", "application/pdf")
	}
	if err := c.docs.WriteReceipt(w, r, q.acct.ID, q.PathValue("top_up_id")); err != nil {
		c.fail(w, q.Request, err)
	}
}

// statement answers a month's statement as a CSV or JSON download, through
// the API's own code.
func (c *Console) statement(w http.ResponseWriter, q *request) {
	if c.docs == nil {
		c.fail(w, q.Request, apperr.NotFoundf("no statements here"))
		return
	}
	if err := c.docs.WriteStatement(w, q.Request, q.acct.ID); err != nil {
		c.fail(w, q.Request, err)
	}
}
