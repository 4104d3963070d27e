// Package sim is the deterministic simulation of Topup's money path.
//
// One seed decides everything. Generate turns it into a schedule of steps;
// each step is one call of a step function of the real system or one move
// of the world around it:
//
//   - usage: single postings and batches (several accounts, one or two hot
//     ones) queued in a simulated committer and committed as groups, one
//     store.Post per group, answered only after the commit; the metering
//     client re-sends what was never answered, replays what was, and now
//     and then re-sends a key with another amount;
//   - operator credits (grants: promotional or paid, of any priority, often
//     expiring minutes to days ahead, so that debits meet expired grants),
//     settings saves (on, off, thresholds, monthly_limit
//     set, kept or removed, a named card, invalid ones), cards attached
//     (directly, or through the hosted page and a webhook), removed (often
//     the card in use; sometimes detached at the provider first, Topup
//     hearing of it by webhook), made the default;
//   - manual top-ups (store.CreateManual, then Engine.Attempt, as the API
//     does; a replayed key charges nothing);
//   - holds (holds.go), as the API makes them: the body judged by
//     input.Hold, then CreateHold — of a random amount (often what an
//     account can afford, often more: 402 insufficient_balance is an
//     answer, not a failure), living seconds to a day; a key sent again
//     (a replay) or with another amount (a conflict); captures as the API
//     makes them (the hold read, input.Capture's usage posting with HoldID
//     submitted to the committer: the whole hold, a part, more than it),
//     also sent again; releases (ReleaseHold), of active holds mostly, of
//     captured, released or expired ones too (409 conflict is an answer);
//   - expiry passes (expiry.go): the expiry worker's RunOnce — its lease,
//     the credit.expiring warnings due, its sweeps submitted to the
//     simulated committer, sharing a group with what is queued — and,
//     half the time, the clock moved first to the worker's tick just after
//     the soonest expires_at ahead;
//   - voids of a random grant of the account (active mostly; used, expired
//     or voided ones answer 409), input.Void's posting submitted to the
//     committer; a void answered before, sent again (it replays) or the
//     same grant voided again under a new key;
//   - refunds (refunds.go), as POST …/top_ups/{id}/refunds makes them, of
//     a top-up Topup credited — the whole refundable amount, a part, more
//     than was paid (400), or a request sent again (a replay) —
//     CreateRefund, then the refund worker's Attempt (never Request, whose
//     wait is a timer); the process may die between storing the refund and
//     calling the provider, and after the provider answered; refund worker
//     passes (refund.Worker.RunOnce) take up what a dead process left once
//     its lease ran out, and retry unknown outcomes with the same key;
//   - disputes at the provider (the sandbox's Dispute and CloseDispute) of
//     a credited top-up's charge: opened (funds withdrawn at once), closed
//     won (funds reinstated) or lost;
//   - engine steps: Engine.RunOnce, Engine.Sweep — never Start, timers or
//     goroutines; Engine.Resume when a process starts;
//   - provider webhooks delivered through topup.ApplyEvent, any queued one
//     (out of order, hours late), some more than once, some before the
//     answer to the charge request they are about; the sandbox's refund.*
//     and charge.dispute.* events (its Config.Events) join the same queue,
//     under the sandbox's own event ids;
//   - the customer answering 3-D Secure (on Topup's action page, or with
//     Stripe.js), failing it, ignoring it, or answering a stale page;
//   - the clock (clock.Manual) moving seconds, minutes, hours, past the
//     24 hours after which the provider forgets idempotency keys and 3-D
//     Secure expires, and to month boundaries (runs often start in the last
//     hour of a month or of the year);
//   - a crash between steps;
//   - a quiet period, in which faults stop and every top-up must be
//     decided and every refund final; it ends with an expiry pass.
//
// The client of holds, captures and voids (holds.go) remembers what it
// sent and what it was answered, across crashes; what a crash left
// unanswered (a hold made, a capture committed, a release) it reads back
// from the store before the invariants lean on it. A credit re-sent after
// its grant's expires_at is refused by the API (revalidate), as
// input.Credit judges it again.
//
// The payment provider is the sandbox (internal/sandbox), in a SQLite
// database of its own: Stripe's test cards (success, card_declined,
// insufficient_funds, lost_card, stolen_card, 3-D Secure, a card whose
// every charge is declined), every charge kept under its idempotency key,
// a key replayed for 24 hours and then forgotten, charges found by the
// top-up id in their metadata. Its fault hook is provider.go: random
// declines and slow ("processing") charges decided later, and faults
// decided by the step's random source — a 503 before anything is charged,
// a request that lands after the caller gave up, an answer lost after
// charging; for refunds a 503, a refund the bank fails at once (pending,
// then failed by event), an answer lost after refunding — and the
// webhooks Stripe sends. Its memory is Stripe's and
// survives every crash of Topup; it is the ground truth the invariants
// compare the ledger with.
//
// Crashes: besides crash steps, every call a step makes has crash points
// before and after it (hooks.go wraps the store the engine, the webhook
// handler, the holds handlers and the expiry worker use — the worker also
// between finding due accounts and sweeping them; the group commit, which
// captures, voids and sweeps go through, has its own; the provider has its
// own: before a request leaves, after the provider charged and before the
// answer). A crash panics out of the real code, the step ends there, and
// the process is thrown away — its store connections, committer queue
// (whose callers never get answers; the expiry worker's sweeps die with
// it), engine, expiry worker (the next one waits out its lease) and id
// generator — and a new one is started on the same database
// with a new seeded id generator, as after SIGKILL; on SQLite it reclaims
// every claim at once (ReclaimOnStart), on PostgreSQL it waits out the
// lease. Each call is a transaction, so a crash inside one is a crash just
// before it.
//
// Determinism: the schedule, every step's choices (its own seed), the
// provider, the clock and the ids (ids.NewSeeded) come from the seed; the
// database runs one call at a time; the simulation iterates no map where
// order matters. A run's Fingerprint hashes everything it did and saw, and
// a seed gives the same fingerprint every time.
//
// After every step the invariants (check.go) are checked; the first broken
// one stops the run. Shrink looks for a shorter list of steps that breaks
// the same invariant; Report prints the command that replays the seed and
// the shrunk schedule with what each step did.
package sim
