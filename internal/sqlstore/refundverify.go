package sqlstore

import (
	"context"

	"github.com/topup/topup/internal/money"
)

// verifySandboxRefunds proves that the sandbox's refund log equals the
// ledger's refunds: each refund the sandbox made is one refund row (by its
// provider id), of the same amount, succeeded exactly when the sandbox's
// succeeded and failed once it failed or was canceled; and each succeeded
// refund of a top-up the sandbox charged is in the log. A refund the
// ledger still holds pending is in flight (its answer was lost, or the
// provider has not decided): the worker or the provider's event settles
// it, and it is not a problem yet. With Stripe the sandbox's tables are
// empty and nothing is checked.
func (s *core) verifySandboxRefunds(ctx context.Context, add func(id, format string, args ...any)) error {
	rows, err := s.read.QueryContext(ctx, `SELECT COALESCE(r.account_id, t.account_id, ''), sr.id, sr.amount, sr.currency, sr.status,
COALESCE(r.id, ''), COALESCE(r.amount, 0), COALESCE(r.status, '')
FROM sandbox_refunds sr LEFT JOIN refunds r ON r.provider_id = sr.id OR (sr.refund_id <> '' AND r.id = sr.refund_id AND r.provider_id IS NULL)
LEFT JOIN top_ups t ON t.id = sr.top_up_id ORDER BY sr.id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var acct, id, cur, status, refundID, refundStatus string
		var minor, amount int64
		if err := rows.Scan(&acct, &id, &minor, &cur, &status, &refundID, &amount, &refundStatus); err != nil {
			return err
		}
		if problem := sandboxRefundProblem(minor, cur, status, refundID, amount, refundStatus); problem != "" {
			add(acct, "sandbox refund %s: %s", id, problem)
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	return s.eachPair(ctx, `SELECT r.account_id, r.id FROM refunds r JOIN top_ups t ON t.id = r.top_up_id
WHERE r.status = 'succeeded' AND EXISTS (SELECT 1 FROM sandbox_charges c WHERE c.id = t.charge_id)
AND NOT EXISTS (SELECT 1 FROM sandbox_refunds sr WHERE sr.id = r.provider_id) LIMIT 1000`, func(acct, id string) {
		add(acct, "refund %s succeeded, but the sandbox that charged its top-up made no such refund", id)
	})
}

// sandboxRefundProblem compares one refund of the sandbox's log with the
// ledger's refund of its provider id ("" when the two agree).
func sandboxRefundProblem(minor int64, cur, status, refundID string, amount int64, refundStatus string) string {
	want := map[string]string{"pending": "pending", "succeeded": "succeeded", "failed": "failed", "canceled": "failed"}[status]
	switch {
	case refundID == "" && status == "succeeded":
		return "succeeded, but no refund of the ledger has its id"
	case refundID == "" || refundStatus == "pending":
		return ""
	case refundStatus != want:
		return "is " + status + ", but refund " + refundID + " is " + refundStatus
	}
	c, err := money.LookupCurrency(cur)
	if err != nil {
		return "currency " + cur + ": " + err.Error()
	}
	if a, err := money.FromMinor(minor, c); err != nil || int64(a) != amount {
		return "its amount differs from refund " + refundID + "'s"
	}
	return ""
}
