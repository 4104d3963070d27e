package storetest

import (
	"database/sql"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
	"github.com/topup/topup/internal/ledger"
	"github.com/topup/topup/internal/sqlstore"
)

// testAPIKeys: the account's first key is listed as default; new keys are
// found by their hash, listed newest first, and gone once revoked.
func testAPIKeys(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	other := f.account("b@example.com")
	keys, more, err := f.s.APIKeys(ctx(t), a.ID, ledger.Page{Limit: 10})
	if err != nil || more || len(keys) != 1 {
		t.Fatalf("a new account's keys = %v, %v, %v; want one", keys, more, err)
	}
	if def := keys[0]; def.Name != "default" || def.Hash != "hash_"+a.ID || !def.CreatedAt.Equal(a.CreatedAt) || !def.LastUsedAt.IsZero() {
		t.Errorf("the first key = %+v; want default, created with the account, never used", def)
	}
	c := clock.NewManual(Epoch.Add(time.Hour))
	k1, secret1 := ledger.NewAPIKey(f.ids, c, a.ID, "ci")
	c.Advance(time.Second)
	k2, _ := ledger.NewAPIKey(f.ids, c, a.ID, "déploiement")
	for _, k := range []ledger.APIKey{k1, k2} {
		if err := f.s.CreateAPIKey(ctx(t), k); err != nil {
			t.Fatalf("create key %s: %v", k.Name, err)
		}
	}
	acct, got, err := f.s.KeyByHash(ctx(t), ledger.HashKey(secret1))
	if err != nil || acct.ID != a.ID || got.ID != k1.ID || got.Prefix != secret1[:12] || got.Name != "ci" {
		t.Fatalf("KeyByHash = %v %+v %v; want account %s key %s", acct.ID, got, err, a.ID, k1.ID)
	}
	keys, _, err = f.s.APIKeys(ctx(t), a.ID, ledger.Page{Limit: 10})
	if err != nil || len(keys) != 3 || keys[0].ID != k2.ID || keys[1].ID != k1.ID || keys[2].Name != "default" {
		t.Fatalf("keys = %+v, %v; want déploiement, ci, default", keys, err)
	}
	if keys[0].Name != "déploiement" || !keys[0].CreatedAt.Equal(k2.CreatedAt) {
		t.Errorf("listed %+v; want it as created %+v", keys[0], k2)
	}
	page, more, err := f.s.APIKeys(ctx(t), a.ID, ledger.Page{Limit: 1, StartingAfter: k2.ID})
	if err != nil || !more || len(page) != 1 || page[0].ID != k1.ID {
		t.Errorf("the page after %s = %+v, %v, %v; want ci and more", k2.ID, page, more, err)
	}
	if _, _, err := f.s.APIKeys(ctx(t), other.ID, ledger.Page{Limit: 10, StartingAfter: k1.ID}); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("another account's key as cursor: %v; want invalid", err)
	}

	used := Epoch.Add(2 * time.Hour).Truncate(time.Microsecond)
	if err := f.s.TouchAPIKey(ctx(t), k1.ID, used); err != nil {
		t.Fatal(err)
	}
	if err := f.s.TouchAPIKey(ctx(t), k1.ID, used.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, got, _ := f.s.KeyByHash(ctx(t), ledger.HashKey(secret1)); !got.LastUsedAt.Equal(used) {
		t.Errorf("last used %v; want %v (an older touch never moves it back)", got.LastUsedAt, used)
	}

	if err := f.s.RevokeAPIKey(ctx(t), other.ID, k1.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("revoking through another account: %v; want not_found", err)
	}
	if err := f.s.RevokeAPIKey(ctx(t), a.ID, k1.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.s.KeyByHash(ctx(t), ledger.HashKey(secret1)); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("a revoked key is found: %v", err)
	}
	if err := f.s.RevokeAPIKey(ctx(t), a.ID, k1.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("revoking twice: %v; want not_found", err)
	}
	if _, err := f.s.AccountByKeyHash(ctx(t), "hash_"+a.ID); err != nil {
		t.Errorf("the default key stopped working when another was revoked: %v", err)
	}
}

// testAPIKeyLimits: concurrent creates stop at ledger.MaxAPIKeys; a closed
// account gets no new key but may still revoke.
func testAPIKeyLimits(t *testing.T, f *fixture) {
	a := f.account("a@example.com")
	c := clock.NewManual(Epoch)
	var wg sync.WaitGroup
	errs := make([]error, 30)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _ := ledger.NewAPIKey(f.ids, c, a.ID, strconv.Itoa(i))
			errs[i] = f.s.CreateAPIKey(ctx(t), k)
		}()
	}
	wg.Wait()
	var ok, limited int
	for _, err := range errs {
		switch apperr.CodeOf(err) {
		case apperr.LimitExceeded:
			limited++
		default:
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			ok++
		}
	}
	if ok != ledger.MaxAPIKeys-1 || limited != 30-ok {
		t.Errorf("30 concurrent creates beside the default key: %d made, %d limited; want %d made", ok, limited, ledger.MaxAPIKeys-1)
	}
	keys, _, err := f.s.APIKeys(ctx(t), a.ID, ledger.Page{Limit: 100})
	if err != nil || len(keys) != ledger.MaxAPIKeys {
		t.Fatalf("the account holds %d keys (%v); want %d", len(keys), err, ledger.MaxAPIKeys)
	}
	if err := f.s.RevokeAPIKey(ctx(t), a.ID, keys[0].ID); err != nil {
		t.Fatal(err)
	}
	k, _ := ledger.NewAPIKey(f.ids, c, a.ID, "after a revoke")
	if err := f.s.CreateAPIKey(ctx(t), k); err != nil {
		t.Errorf("a key after revoking one: %v", err)
	}

	closed := ledger.Closed
	if _, err := f.s.UpdateAccount(ctx(t), a.ID, ledger.AccountUpdate{Status: &closed}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RevokeAPIKey(ctx(t), a.ID, k.ID); err != nil {
		t.Errorf("a closed account revoking a key: %v", err)
	}
	k, _ = ledger.NewAPIKey(f.ids, c, a.ID, "closed")
	if err := f.s.CreateAPIKey(ctx(t), k); apperr.CodeOf(err) != apperr.AccountClosed {
		t.Errorf("a closed account's new key: %v; want account_closed", err)
	}
	k, _ = ledger.NewAPIKey(f.ids, c, "acct_nobody", "x")
	if err := f.s.CreateAPIKey(ctx(t), k); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("a key for an unknown account: %v; want not_found", err)
	}
}

// Before returns the migrations of files numbered below version.
func Before(files fs.FS, version int) fs.FS {
	out := fstest.MapFS{}
	names, _ := fs.Glob(files, "*.sql")
	for _, name := range names {
		num, _, _ := strings.Cut(name, "_")
		if n, err := strconv.Atoi(num); err == nil && n < version {
			body, _ := fs.ReadFile(files, name)
			out[name] = &fstest.MapFile{Data: body}
		}
	}
	return out
}

// UpgradeKeepsAccountKeys builds a database as it was before API keys were
// listed (migration 0007), with an account and its key, then opens it as the
// current code does: the key still works and is listed as "default". old is
// a connection to the empty database, files its full migration list, and
// reopen opens it with the store (migrating it).
func UpgradeKeepsAccountKeys(t *testing.T, old *sql.DB, files fs.FS, reopen func() *sqlstore.DB) {
	t.Helper()
	if err := sqlstore.Migrate(ctx(t), old, Before(files, 7)); err != nil {
		t.Fatalf("migrate to 0006: %v", err)
	}
	g := ids.New(clock.NewManual(Epoch))
	acctID := g.New(ids.Account)
	key := ledger.NewKey(ledger.AccountKeyPrefix)
	created := Epoch.Truncate(time.Microsecond)
	if _, err := old.ExecContext(ctx(t), `INSERT INTO accounts (id, email, currency, balance, last_seq, status, api_key_hash, created_at, updated_at)
VALUES ($1, 'old@example.com', 'usd', 0, 0, 'active', $2, $3, $3)`, acctID, ledger.HashKey(key), created.UnixMicro()); err != nil {
		t.Fatalf("insert an account as 0006 did: %v", err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s := reopen()
	a, k, err := s.KeyByHash(ctx(t), ledger.HashKey(key))
	if err != nil || a.ID != acctID {
		t.Fatalf("after the upgrade the account's key finds %v, %v; want account %s", a.ID, err, acctID)
	}
	keys, _, err := s.APIKeys(ctx(t), acctID, ledger.Page{Limit: 10})
	if err != nil || len(keys) != 1 {
		t.Fatalf("after the upgrade the account lists %v, %v; want its one key", keys, err)
	}
	want := ledger.DefaultKey(ledger.Account{ID: acctID, CreatedAt: created}, ledger.HashKey(key), "tpk_")
	if got := keys[0]; got.ID != want.ID || got.ID != k.ID || got.Name != "default" || got.Prefix != "tpk_" || !got.CreatedAt.Equal(created) {
		t.Errorf("the upgraded key is listed as %+v; want %+v", got, want)
	}
	// The old column no longer holds anything that could sign in.
	var hash string
	if err := s.DB().QueryRowContext(ctx(t), `SELECT api_key_hash FROM accounts WHERE id = $1`, acctID).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if hash == ledger.HashKey(key) {
		t.Error("accounts.api_key_hash still holds the key's hash after the upgrade")
	}
	// A key made after the upgrade sorts after it, and the account can
	// revoke its old key.
	nk, _ := ledger.NewAPIKey(ids.New(clock.System), clock.System, acctID, "new")
	if err := s.CreateAPIKey(ctx(t), nk); err != nil {
		t.Fatal(err)
	}
	keys, _, _ = s.APIKeys(ctx(t), acctID, ledger.Page{Limit: 10})
	if len(keys) != 2 || keys[0].ID != nk.ID {
		t.Errorf("after a new key: %+v; want it first", keys)
	}
	if err := s.RevokeAPIKey(ctx(t), acctID, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.KeyByHash(ctx(t), ledger.HashKey(key)); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("the revoked old key still finds its account: %v", err)
	}
}
