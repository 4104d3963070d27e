package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/money"
)

// HoldStatus is where a hold is in its life.
type HoldStatus string

// Hold statuses. A hold is active until it is captured, released, or its
// expires_at has passed — whatever a worker has written yet.
const (
	HoldActive   HoldStatus = "active"
	HoldCaptured HoldStatus = "captured"
	HoldReleased HoldStatus = "released"
	HoldExpired  HoldStatus = "expired"
)

// Bounds of a hold's lifetime, in seconds (PRODUCT.md "Credit grants and
// holds").
const (
	DefaultHoldSeconds = 900
	MaxHoldSeconds     = 86_400
)

// Hold reserves credit for work whose cost is known only at its end.
type Hold struct {
	ID          string
	AccountID   string
	Amount      money.Amount
	Captured    money.Amount
	Status      HoldStatus
	Subject     string
	Description string
	// TopUpID is the automatic top-up the hold's creation triggered.
	TopUpID string
	// EntryID is the usage entry of its capture.
	EntryID   string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// StatusAt is the hold's status as a client sees it at now: an active hold
// whose expires_at has passed is expired, written or not.
func (h Hold) StatusAt(now time.Time) HoldStatus {
	if h.Status == HoldActive && !now.Before(h.ExpiresAt) {
		return HoldExpired
	}
	return h.Status
}

// Held is what the holds still active at now reserve.
func Held(holds []Hold, now time.Time) money.Amount {
	var sum money.Amount
	for _, h := range holds {
		if h.StatusAt(now) == HoldActive {
			sum += h.Amount
		}
	}
	return sum
}

// HoldLifetime reads expires_in (seconds): 1 to 86,400, 900 when left out.
func HoldLifetime(expiresIn *int64) (time.Duration, error) {
	if expiresIn == nil {
		return DefaultHoldSeconds * time.Second, nil
	}
	if *expiresIn < 1 || *expiresIn > MaxHoldSeconds {
		return 0, apperr.Invalidf("expires_in", "must be a whole number of seconds from 1 to %d", MaxHoldSeconds)
	}
	return time.Duration(*expiresIn) * time.Second, nil
}

// CanHold says whether an account whose available credit is available may
// hold amount more: creating a hold never makes available negative (402
// insufficient_balance), and an account holds at most MaxActiveHolds.
func CanHold(a Account, available, amount money.Amount, active int) error {
	if err := a.May(ActHold); err != nil {
		return err
	}
	if available < amount {
		return &apperr.Error{Code: apperr.InsufficientBalance, Field: "amount",
			Message: "the available credit (" + available.Format(a.Currency) + ") is less than the hold"}
	}
	return CheckLimit("active holds", active, MaxActiveHolds)
}

// Capture checks that amount (zero for the whole hold) may be captured from
// h at now and returns the amount: a hold that is not active answers 409
// conflict; zero or more than the hold, 400 on amount.
func (h Hold) Capture(amount money.Amount, explicit bool, now time.Time) (money.Amount, error) {
	if s := h.StatusAt(now); s != HoldActive {
		return 0, apperr.New(apperr.Conflict, "hold %s is %s: only an active hold can be captured", h.ID, s)
	}
	if !explicit {
		return h.Amount, nil
	}
	if amount <= 0 || amount > h.Amount {
		return 0, apperr.Invalidf("amount", "must be more than zero and at most the hold's amount")
	}
	return amount, nil
}

// Release checks that h may be released at now: unchanged is true for a
// hold already released (answered as it is); a captured or expired hold
// answers 409 conflict.
func (h Hold) Release(now time.Time) (unchanged bool, err error) {
	switch s := h.StatusAt(now); s {
	case HoldActive:
		return false, nil
	case HoldReleased:
		return true, nil
	default:
		return false, apperr.New(apperr.Conflict, "hold %s is %s: it cannot be released", h.ID, s)
	}
}

// HoldRequest is a request to create a hold (POST …/holds), judged by
// NewHold under the account's lock.
type HoldRequest struct {
	AccountID      string
	Amount         money.Amount
	IdempotencyKey string
	Subject        string
	Description    string
	// Lifetime is how long the hold lasts (HoldLifetime).
	Lifetime time.Duration
}

// Hash is the meaning of the request: the same key with another hash is an
// idempotency conflict.
func (r HoldRequest) Hash() string {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(r.Amount))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(r.Lifetime))
	h.Write(n[:])
	writeField(h, r.Subject)
	writeField(h, r.Description)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// NewHold decides a hold's creation on a, locked, whose active holds
// (not expired at now) number active: CanHold, then the hold, counted in
// a's Held from now on. The store then asks Automatic Top-Up with a's
// available credit, as after any change that lowers it.
func NewHold(a *AccountState, r HoldRequest, active int, now time.Time, id string) (Hold, error) {
	if err := CanHold(a.Account, a.Available(), r.Amount, active); err != nil {
		return Hold{}, err
	}
	h := Hold{ID: id, AccountID: a.ID, Amount: r.Amount, Status: HoldActive, Subject: r.Subject, Description: r.Description,
		ExpiresAt: now.Add(r.Lifetime), CreatedAt: now}
	a.Held += h.Amount
	if a.HeldUntil.IsZero() || h.ExpiresAt.Before(a.HeldUntil) {
		a.HeldUntil = h.ExpiresAt
	}
	a.HeldChanged = true
	return h, nil
}

// ReleaseHold releases h, an active hold of a (locked), at now: it no
// longer counts in a's Held. changed is false for a hold already released
// (answered as it is); a captured or expired one answers 409 conflict.
// Releasing is allowed on a closed account: it winds the account down.
func ReleaseHold(a *AccountState, h *Hold, now time.Time) (changed bool, err error) {
	unchanged, err := h.Release(now)
	if err != nil || unchanged {
		return false, err
	}
	h.Status = HoldReleased
	a.Held -= h.Amount
	a.HeldChanged = true
	return true, nil
}

// HoldStore keeps holds. Methods return *apperr.Error: NotFound for an
// unknown account or hold (or one of another account), and the refusals
// of NewHold and ReleaseHold; any other error is internal. A hold is
// answered with its status at the store's now (Hold.StatusAt). Captures go
// through Post, as usage postings with HoldID.
type HoldStore interface {
	// CreateHold creates the hold r asks for, or replays the hold its key
	// made (replayed true; the same key with another request is an
	// idempotency conflict). A hold that takes available credit below the
	// Automatic Top-Up threshold triggers a top-up in the same
	// transaction (the hold's TopUpID).
	CreateHold(ctx context.Context, r HoldRequest) (h Hold, replayed bool, err error)
	// Hold returns one of an account's holds.
	Hold(ctx context.Context, accountID, holdID string) (Hold, error)
	// Holds lists an account's holds, newest first; those of status only,
	// when it is not empty.
	Holds(ctx context.Context, accountID string, status HoldStatus, p Page) ([]Hold, bool, error)
	// ReleaseHold releases a hold (ReleaseHold's rule).
	ReleaseHold(ctx context.Context, accountID, holdID string) (Hold, error)
}
