package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/topup/topup/internal/apperr"
	"github.com/topup/topup/internal/input"
	"github.com/topup/topup/internal/ledger"
)

// apiKeyJSON is a key on the wire; Key is set only in the answer that made
// it.
type apiKeyJSON struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Prefix     string  `json:"prefix"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
}

func toAPIKeyJSON(k ledger.APIKey) apiKeyJSON {
	out := apiKeyJSON{ID: k.ID, Name: k.Name, Prefix: k.Prefix, CreatedAt: formatTime(k.CreatedAt)}
	if !k.LastUsedAt.IsZero() {
		t := formatTime(k.LastUsedAt)
		out.LastUsedAt = &t
	}
	return out
}

// createdKeyJSON is the one answer that shows a key.
type createdKeyJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Prefix    string `json:"prefix"`
	Key       string `json:"key"`
	CreatedAt string `json:"created_at"`
}

func (s *Server) keyStore(w http.ResponseWriter, r *http.Request) bool {
	if s.keys == nil {
		s.fail(w, r, apperr.NotFoundf("API keys are not kept here"))
		return false
	}
	return true
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name *string `json:"name"`
	}
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	name, err := input.Text("name", req.Name, input.MaxName)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.keyStore(w, r) {
		return
	}
	k, key := ledger.NewAPIKey(s.ids, s.clock, r.PathValue("id"), name)
	if err := s.keys.CreateAPIKey(r.Context(), k); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, createdKeyJSON{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Key: key, CreatedAt: formatTime(k.CreatedAt)})
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.keyStore(w, r) {
		return
	}
	acct, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	keys, more, err := s.keys.APIKeys(r.Context(), acct.ID, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := list[apiKeyJSON]{Data: make([]apiKeyJSON, 0, len(keys)), HasMore: more}
	for _, k := range keys {
		out.Data = append(out.Data, toAPIKeyJSON(k))
	}
	writeJSON(w, http.StatusOK, out)
}

// revokeAPIKey deletes a key: the next request with it, on any replica,
// answers 401, since every request reads its key from the database. A
// closed account may still revoke.
func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	if !s.keyStore(w, r) {
		return
	}
	id := r.PathValue("key_id")
	if err := s.keys.RevokeAPIKey(r.Context(), r.PathValue("id"), id); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "deleted": true})
}

// lastUsedEvery is how often a key's last_used_at is written at most:
// authenticating reads the key anyway, but writing on every request would
// turn each read into a write.
const lastUsedEvery = time.Minute

// lastUsed remembers when this process last wrote each key's last_used_at,
// so that concurrent requests of one key write it once.
type lastUsed struct {
	mu      sync.Mutex
	written map[string]time.Time
}

func newLastUsed() *lastUsed { return &lastUsed{written: make(map[string]time.Time)} }

// due reports whether key id's last_used_at should be written at now, and
// if so claims the write.
func (l *lastUsed) due(id string, stored, now time.Time) bool {
	if now.Sub(stored) < lastUsedEvery {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.written[id]) < lastUsedEvery {
		return false
	}
	if len(l.written) >= 10_000 {
		// Entries older than a minute decide nothing any more.
		for k, t := range l.written {
			if now.Sub(t) >= lastUsedEvery {
				delete(l.written, k)
			}
		}
	}
	l.written[id] = now
	return true
}

// touchKey records that k was used, at most once a minute per key; a
// failure to record it does not fail the request.
func (s *Server) touchKey(ctx context.Context, k ledger.APIKey) {
	now := s.clock.Now()
	if s.keys == nil || !s.lastUsed.due(k.ID, k.LastUsedAt, now) {
		return
	}
	if err := s.keys.TouchAPIKey(ctx, k.ID, now); err != nil {
		s.log.WarnContext(ctx, "record key use", "key_id", k.ID, "err", err)
	}
}
