package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/topup/topup/internal/app"
	"github.com/topup/topup/internal/clock"
	"github.com/topup/topup/internal/ids"
)

// newApp builds a Topup on a fresh SQLite file, not yet started.
func newApp(t *testing.T, cfg app.Config) *app.App {
	t.Helper()
	store, err := app.OpenStore(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "topup.db"), clock.System, ids.New(clock.System))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = "127.0.0.1:0"
	a, err := app.New(cfg, store)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	return a
}

// TestAppServesAndShutsDownOnce: a started App answers /healthz and the
// console beside the API; Shutdown stops it, and a second Shutdown returns
// what the first did.
func TestAppServesAndShutsDownOnce(t *testing.T) {
	t.Parallel()
	a := newApp(t, app.Config{})
	a.Start()
	for _, path := range []string{"/healthz", "/console/"} {
		resp, err := http.Get(a.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			t.Errorf("GET %s answered %d", path, resp.StatusCode)
		}
	}
	if err := a.Shutdown(); err != nil {
		t.Fatalf("shut down: %v", err)
	}
	if err := a.Shutdown(); err != nil {
		t.Fatalf("a second shut down: %v", err)
	}
	if _, err := http.Get(a.URL() + "/healthz"); err == nil {
		t.Error("the server still answers after Shutdown")
	}
}

// TestAppShutdownWithoutStart: an App built and never started (the demo
// when minting its sign-in link fails) shuts down: its workers were never
// started, its listener and store are closed.
func TestAppShutdownWithoutStart(t *testing.T) {
	t.Parallel()
	a := newApp(t, app.Config{NoNotifier: true})
	if err := a.Shutdown(); err != nil {
		t.Fatalf("shut down: %v", err)
	}
	if err := a.Store().Ping(context.Background()); err == nil {
		t.Error("the store still answers after Shutdown")
	}
	if _, err := http.Get(a.URL() + "/healthz"); err == nil {
		t.Error("the listener still accepts after Shutdown")
	}
}
