// Package debit plans a group of postings whole, in memory: ledger.Apply's
// entries, idempotency rows and balances; the budget spend to record; the
// low balance alerts and budget levels the changes cross (alert.Watch),
// with the results a budget stops; the automatic top-ups they make due
// (topup.Decide); and the events of all of these. It imports no database
// and no HTTP. The store loads what the plan needs, locked, in the group's
// transaction — in steps, where a decision needs what the step before found
// (the budgets the spend touches, the top-up state of accounts that went
// below their threshold) — and writes the plan.
package debit

import (
	"slices"
	"strings"
	"time"

	"github.com/topup/topup/internal/alert"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/money"
	"github.com/topup/topup/internal/topup"
)

// Watch is what an account's row says of its watch: its low balance
// alerts and whether it has budgets. An account with neither costs the
// debit path nothing more.
type Watch struct {
	Thresholds []alert.Threshold
	Budgets    bool
}

// State is what the store loaded for a group, in its transaction: the
// accounts the postings touch, the idempotency rows of their keys, the
// watch of the accounts that have one, and the Automatic Top-Up settings
// (enabled, threshold and back-off at least) of the accounts that have it
// on.
type State struct {
	Accounts map[string]*ledger.AccountState
	Stored   map[ledger.IdemKey]ledger.Stored
	Watched  map[string]Watch
	Auto     map[string]*topup.Settings
}

// BudgetKey names a budget: an account and a subject ("" for the budget
// that covers all the account's usage).
type BudgetKey struct{ AccountID, Subject string }

// Spend is the group's usage that counts toward one budget.
type Spend struct {
	BudgetKey
	Amount money.Amount
}

// Alerted is an account whose low balance alerts fired: its thresholds to
// write back, with the day each fired.
type Alerted struct {
	AccountID  string
	Thresholds []alert.Threshold
}

// Plan is what a group of postings writes, beyond ledger.Plan's entries,
// idempotency rows and results (and the balances changed in
// State.Accounts).
type Plan struct {
	ledger.Plan
	// Spend is the usage to add to budgets, in one order (account, then
	// subject) so that concurrent groups lock alike. Every changed account
	// with budgets has its account-wide key, so that a credit too sees it.
	Spend []Spend
	// Alerted lists, in id order, the accounts whose thresholds fired.
	Alerted []Alerted
	// Events go to the outbox, in order, with ids already given.
	Events []ledger.Event
	// TopUps are the automatic top-ups to create.
	TopUps []topup.TopUp
	// LimitNotified maps an account to the month whose monthly limit its
	// customer is now told of.
	LimitNotified map[string]string

	now      time.Time
	newID    func(string) string
	state    State
	postings []ledger.Posting
	spend    map[BudgetKey]money.Amount
}

// New applies postings to the loaded state (ledger.Apply) and finds the
// budget spend to record. newID gives every id of the plan, in the order of
// its decisions.
func New(now time.Time, newID func(string) string, st State, postings []ledger.Posting) *Plan {
	p := &Plan{Plan: ledger.Apply(now, newID, st.Accounts, st.Stored, postings), now: now, newID: newID, state: st, postings: postings}
	p.tellExpired()
	if len(st.Watched) == 0 || len(p.Entries) == 0 {
		return p
	}
	p.spend = map[BudgetKey]money.Amount{}
	add := func(k BudgetKey, amount money.Amount) {
		if _, ok := p.spend[k]; !ok {
			p.Spend = append(p.Spend, Spend{BudgetKey: k})
		}
		p.spend[k] += amount
	}
	for id, w := range st.Watched {
		if a := st.Accounts[id]; a != nil && a.Touched && w.Budgets {
			add(BudgetKey{id, ""}, 0)
		}
	}
	for i := range p.Entries {
		e := &p.Entries[i]
		if !st.Watched[e.AccountID].Budgets || e.Kind != ledger.KindUsage {
			continue
		}
		add(BudgetKey{e.AccountID, ""}, -e.Amount)
		if e.Subject != "" {
			add(BudgetKey{e.AccountID, e.Subject}, -e.Amount)
		}
	}
	slices.SortFunc(p.Spend, func(a, b Spend) int {
		if c := strings.Compare(a.AccountID, b.AccountID); c != 0 {
			return c
		}
		return strings.Compare(a.Subject, b.Subject)
	})
	for i := range p.Spend {
		p.Spend[i].Amount = p.spend[p.Spend[i].BudgetKey]
	}
	return p
}

// tellExpired plans a credit.expired event for each grant the group
// expired with something left, in the order of their entries.
func (p *Plan) tellExpired() {
	for _, x := range p.Expired {
		p.Events = append(p.Events, x.Event(p.newID("evt"), p.state.Accounts[x.Grant.AccountID].Currency))
	}
}

// Observe applies low balance alerts and budgets to the group's entries,
// in order: each balance change is observed with the balance before and
// after it, so a crossing is found exactly where it happened (an
// expiration's too), and usage with a subject counts toward that
// subject's budget and the account-wide one. budgets are those Spend touched, as they are after it
// (the store adds the spend, rolling a monthly budget whose month is over,
// and reads them back in one statement). Results (and the stored first
// responses) of usage that a budget stops say spendable: false,
// budget_exhausted.
func (p *Plan) Observe(budgets []alert.Budget) {
	watches := p.watches(budgets)
	if len(watches) == 0 {
		return
	}
	p.EachEntry(func(e *ledger.Entry, res *ledger.Result, rec *ledger.IdemRecord) {
		w := watches[e.AccountID]
		if w == nil {
			return
		}
		ns, stop := w.Observe(p.now, e.Kind, e.Subject, e.BalanceAfter-e.Amount, e.BalanceAfter)
		for _, n := range ns {
			p.Events = append(p.Events, ledger.Event{ID: p.newID("evt"), AccountID: e.AccountID, Type: n.Type, Data: n.Data})
		}
		if stop != nil && res != nil && res.Spendable {
			res.Spendable, res.Reason = false, ledger.ReasonBudgetExhausted
			rec.Result.Spendable, rec.Result.Reason = false, ledger.ReasonBudgetExhausted
		}
	})
	for id, w := range watches {
		if len(w.ChangedThresholds) > 0 {
			p.Alerted = append(p.Alerted, Alerted{AccountID: id, Thresholds: w.Thresholds})
		}
	}
	slices.SortFunc(p.Alerted, func(a, b Alerted) int { return strings.Compare(a.AccountID, b.AccountID) })
}

// watches returns the watch of every account the group changed that has
// thresholds or budgets.
func (p *Plan) watches(budgets []alert.Budget) map[string]*alert.Watch {
	watches := map[string]*alert.Watch{}
	watch := func(id string) *alert.Watch {
		w := watches[id]
		if w == nil {
			w = &alert.Watch{Currency: p.state.Accounts[id].Currency}
			watches[id] = w
		}
		return w
	}
	if len(p.Entries) > 0 {
		for id, row := range p.state.Watched {
			if a := p.state.Accounts[id]; a != nil && a.Touched && len(row.Thresholds) > 0 {
				watch(id).Thresholds = row.Thresholds
			}
		}
	}
	for _, b := range budgets {
		// Observe replays the group's usage from where it began.
		b.Spent -= p.spend[BudgetKey{b.AccountID, b.Subject}]
		w := watch(b.AccountID)
		if w.Budgets == nil {
			w.Budgets = map[string]*alert.Budget{}
		}
		w.Budgets[b.Subject] = &b
	}
	return watches
}

// Due lists, in id order (so that a seeded simulation replays exactly),
// the accounts the group changed that Automatic Top-Up may now concern:
// on, active, available credit below the threshold and past any back-off. The store loads
// their full settings and topup.TriggerState and calls Trigger for each.
func (p *Plan) Due() []string {
	var ids []string
	for id, auto := range p.state.Auto {
		acct := p.state.Accounts[id]
		if acct != nil && acct.Touched && acct.Status == ledger.Active && auto.Due(acct.Available(), false, p.now) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Trigger decides on an automatic top-up for account id (topup.Decide),
// from its settings and what the store loaded. A top-up created is named
// in the first result (and stored first response) of the group that took
// the available credit below the threshold.
func (p *Plan) Trigger(id string, st topup.Settings, ts topup.TriggerState) {
	acct := p.state.Accounts[id]
	d := topup.Decide(acct.Account, st, ts, topup.TriggerThreshold, p.now, p.newID)
	p.Events = append(p.Events, d.Events...)
	if d.LimitNotified != "" {
		if p.LimitNotified == nil {
			p.LimitNotified = map[string]string{}
		}
		p.LimitNotified[id] = d.LimitNotified
	}
	if d.TopUp == nil {
		return
	}
	p.TopUps = append(p.TopUps, *d.TopUp)
	for i := range p.postings {
		r := &p.Results[i]
		if p.postings[i].AccountID == id && r.Err == nil && !r.Replayed && r.Available < *st.Threshold {
			r.TopUpID = d.TopUp.ID
			for k := range p.Records {
				if p.Records[k].Result.EntryID == r.EntryID {
					p.Records[k].Result.TopUpID = d.TopUp.ID
				}
			}
			return
		}
	}
}

// State returns the state the plan was made from, with the balances it
// changed (the accounts marked Touched).
func (p *Plan) State() State { return p.state }
