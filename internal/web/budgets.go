package web

import (
	"math/bits"
	"net/http"
	"strings"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
)

// budgetsPerPage is how many budgets the page lists at once.
const budgetsPerPage = 50

// budgetsPage is the Budgets page: the account-wide budget, the budgets of
// subjects, and the form that makes a new one.
type budgetsPage struct {
	Wide     *budgetCard
	Subjects []budgetCard
	Older    string
	Paged    bool
	New      budgetForm
	Symbol   string
	Currency string
}

// budgetCard is one budget: what it counts, how much of it is spent, and
// the form that changes its limit.
type budgetCard struct {
	ID, Subject, Kind, KindClass string
	Limit, Spent                 string // Limit is "" for an unlimited budget
	Percent                      int    // of the limit spent, floored; may pass 100
	Bar                          int    // the bar's width, 0 to 100
	Level                        string // ok, half, high, exhausted: the bar's colour
	Period                       string // when it counts from, or resets
	Status                       string
	Exhausted, Unlimited         bool
	LimitValue, LimitErr         string // the change form: typed value and refusal
	// Base, CSRF and Symbol are the page's, for the card's forms.
	Base, CSRF, Symbol string
}

// budgetForm is the New budget form: the values typed and the refusals
// beside them.
type budgetForm struct {
	Subject, Kind, Limit          string
	SubjectErr, KindErr, LimitErr string
	Kinds                         []kindOption
}

type kindOption struct {
	Value, Label, Hint string
	Checked            bool
}

// kinds are the budget kinds as the form offers them.
var kinds = []kindOption{
	{Value: string(alert.Monthly), Label: "Monthly", Hint: "Resets on the 1st of each month, 00:00 UTC."},
	{Value: string(alert.OneTime), Label: "One-time", Hint: "Counts from now, never resets."},
	{Value: string(alert.Unlimited), Label: "Unlimited", Hint: "No limit: tracks what is spent."},
}

var budgetKinds = map[alert.Kind]string{alert.Monthly: "Monthly", alert.OneTime: "One-time", alert.Unlimited: "Unlimited"}

func (c *Console) budgets(w http.ResponseWriter, q *request) {
	v, err := c.budgetsView(q, budgetForm{Kind: string(alert.Monthly)}, "", "", "")
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	switch q.URL.Query().Get("done") {
	case "created":
		v.Notice = &notice{Kind: "success", Text: "Budget created."}
	case "changed":
		v.Notice = &notice{Kind: "success", Text: "Limit changed. What was already spent still counts."}
	case "deleted":
		v.Notice = &notice{Kind: "success", Text: "Budget deleted."}
	}
	c.render(w, q.Request, "budgets", v)
}

// budgetsView gathers the page; editID, editValue and editErr keep a
// refused limit change beside its budget.
func (c *Console) budgetsView(q *request, f budgetForm, editID, editValue, editErr string) (view, error) {
	cur := q.acct.Currency
	after := q.URL.Query().Get("starting_after")
	bs, more, err := c.outbox.Budgets(q.Context(), q.acct.ID, ledger.Page{Limit: budgetsPerPage, StartingAfter: after})
	if err != nil {
		return view{}, err
	}
	p := budgetsPage{Paged: after != "", Symbol: symbols[cur.Code], Currency: strings.ToUpper(cur.Code)}
	for i := range bs {
		card := budgetView(&bs[i], cur)
		card.Base, card.CSRF, card.Symbol = q.base(), q.sess.CSRF, p.Symbol
		if card.ID == editID {
			card.LimitValue, card.LimitErr = editValue, editErr
		}
		if card.Subject == "" {
			p.Wide = &card
		} else {
			p.Subjects = append(p.Subjects, card)
		}
	}
	if more && len(bs) > 0 {
		p.Older = bs[len(bs)-1].ID
	}
	for _, k := range kinds {
		k.Checked = k.Value == f.Kind
		f.Kinds = append(f.Kinds, k)
	}
	p.New = f
	return q.view("Budgets", "budgets", p), nil
}

// budgetView puts a budget in words and a bar.
func budgetView(b *alert.Budget, cur money.Currency) budgetCard {
	card := budgetCard{ID: b.ID, Subject: b.Subject, Kind: budgetKinds[b.Kind], KindClass: string(b.Kind), Spent: formatMoney(b.Spent, cur),
		Exhausted: b.Exhausted(), Unlimited: b.Limit == nil, Level: "ok"}
	who := "this subject"
	if b.Subject == "" {
		who = "the whole account"
	}
	switch b.Kind {
	case alert.Monthly:
		card.Period = "Resets on " + alert.MonthStart(b.PeriodStart).AddDate(0, 1, 0).Format("2 Jan 2006") + ", 00:00 UTC."
	case alert.OneTime:
		card.Period = "Counts usage since " + formatTime(b.PeriodStart) + "."
	default:
		card.Period = "Tracks usage since " + formatTime(b.PeriodStart) + "."
	}
	if b.Limit == nil {
		card.Status = "No limit: this budget only tracks what " + who + " spends."
		return card
	}
	limit := *b.Limit
	card.Limit, card.LimitValue = formatMoney(limit, cur), limit.Format(cur)
	card.Percent = percentOf(b.Spent, limit)
	card.Bar = min(card.Percent, 100)
	left := formatMoney(max(limit-b.Spent, 0), cur) + " left."
	switch reached := b.Reached(); {
	case card.Exhausted:
		card.Level, card.Status = "exhausted", "Exhausted: usage for "+who+" should be paused."
	case reached&alert.Level80 != 0:
		card.Level, card.Status = "high", "80% reached: "+left
	case reached&alert.Level50 != 0:
		card.Level, card.Status = "half", "Half spent: "+left
	default:
		card.Status = "On track: " + left
	}
	return card
}

// percentOf is spent as a whole percentage of limit, floored (49.99 %
// shows 49, never a level not yet reached), without overflow.
func percentOf(spent, limit money.Amount) int {
	switch {
	case limit <= 0 || spent <= 0:
		return 0
	case spent/limit >= 10:
		return 1000
	}
	// spent*100 < 1000*limit: the quotient fits, and Div64 cannot panic.
	hi, lo := bits.Mul64(uint64(spent), 100)
	p, _ := bits.Div64(hi, lo, uint64(limit))
	return int(p)
}

// createBudget creates a budget through billing, as the API does: a
// refusal, or a second budget of the same subject (409), is shown beside
// its field and nothing is saved.
func (c *Console) createBudget(w http.ResponseWriter, q *request) {
	f := budgetForm{Subject: strings.TrimSpace(q.PostFormValue("subject")), Kind: q.PostFormValue("kind"), Limit: q.PostFormValue("limit")}
	var in alert.BudgetInput
	if f.Subject != "" {
		in.Subject = &f.Subject
	}
	if f.Kind != "" {
		in.Kind = &f.Kind
	}
	a, ok, err := optionalMoneyField("limit", f.Limit)
	if ok && err == nil {
		in.Limit = &a
	}
	var b alert.Budget
	if err == nil {
		b, err = c.svc.CreateBudget(q.Context(), q.acct.ID, in)
	}
	e := apperr.As(err)
	if e != nil && (e.Code == apperr.Invalid || e.Code == apperr.Conflict) {
		status, field, msg := http.StatusBadRequest, e.Field, fieldMessage(e.Message)
		if e.Code == apperr.Conflict {
			status, field = http.StatusConflict, "subject"
			if f.Subject == "" {
				msg = "The account already has an account-wide budget: change its limit, or delete it first."
			} else {
				msg = "There is already a budget for “" + f.Subject + "”: change its limit, or delete it first."
			}
		}
		label := "Subject"
		switch field {
		case "kind":
			f.KindErr, label = msg, "Kind"
		case "limit":
			f.LimitErr, label = msg, "Limit"
		default:
			f.SubjectErr = msg
		}
		v, verr := c.budgetsView(q, f, "", "", "")
		if verr != nil {
			c.fail(w, q.Request, verr)
			return
		}
		v.Notice = &notice{Kind: "error", Text: "No budget was created: “" + label + "” " + lowerFirst(msg)}
		c.renderStatus(w, q.Request, status, "budgets", v)
		return
	}
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	redirect(w, q.Request, q.base()+"/budgets?done=created#budget-"+b.ID)
}

// changeBudget changes a budget's limit (the API's PUT); what was spent
// stays, so a limit below it exhausts the budget at once.
func (c *Console) changeBudget(w http.ResponseWriter, q *request) {
	id, raw := q.PathValue("budget_id"), q.PostFormValue("limit")
	var in alert.BudgetInput
	a, ok, err := optionalMoneyField("limit", raw)
	if ok && err == nil {
		in.Limit = &a
	}
	if err == nil {
		_, err = c.svc.UpdateBudget(q.Context(), q.acct.ID, id, in)
	}
	if e := apperr.As(err); e != nil && e.Code == apperr.Invalid {
		msg := fieldMessage(e.Message)
		v, verr := c.budgetsView(q, budgetForm{Kind: string(alert.Monthly)}, id, raw, msg)
		if verr != nil {
			c.fail(w, q.Request, verr)
			return
		}
		v.Notice = &notice{Kind: "error", Text: "The limit was not changed: " + lowerFirst(msg)}
		c.renderStatus(w, q.Request, http.StatusBadRequest, "budgets", v)
		return
	}
	if err != nil {
		c.fail(w, q.Request, err)
		return
	}
	redirect(w, q.Request, q.base()+"/budgets?done=changed#budget-"+id)
}

func (c *Console) deleteBudget(w http.ResponseWriter, q *request) {
	if err := c.svc.DeleteBudget(q.Context(), q.acct.ID, q.PathValue("budget_id")); err != nil {
		c.fail(w, q.Request, err)
		return
	}
	redirect(w, q.Request, q.base()+"/budgets?done=deleted")
}
