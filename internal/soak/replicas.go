package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// replicaStartWait bounds how long a replica may take to answer /healthz.
const replicaStartWait = 90 * time.Second

// fleet is the replicas: each keeps its port across restarts, so that a
// client's address for it stays valid, as behind a load balancer.
type fleet struct {
	cfg      Config
	adminKey string
	dbURL    string
	logDir   string
	replicas []*replica
}

// replica is one `topup serve` process slot.
type replica struct {
	index int
	addr  string // 127.0.0.1:port
	url   string
	log   string // its log file: every start appends to it

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

func newFleet(cfg Config, adminKey, dbURL, logDir string) *fleet {
	f := &fleet{cfg: cfg, adminKey: adminKey, dbURL: dbURL, logDir: logDir}
	for i := range cfg.Replicas {
		f.replicas = append(f.replicas, &replica{index: i, log: filepath.Join(logDir, fmt.Sprintf("replica-%d.log", i))})
	}
	return f
}

// urls are the replicas' addresses, in order.
func (f *fleet) urls() []string {
	var out []string
	for _, r := range f.replicas {
		out = append(out, r.url)
	}
	return out
}

// startAll starts every replica at once (they migrate the fresh schema
// together, under the migrations' lock) and waits until each answers.
func (f *fleet) startAll(ctx context.Context) error {
	for _, r := range f.replicas {
		port, err := freePort()
		if err != nil {
			return err
		}
		r.addr = fmt.Sprintf("127.0.0.1:%d", port)
		r.url = "http://" + r.addr
	}
	errs := make([]error, len(f.replicas))
	var wg sync.WaitGroup
	for i, r := range f.replicas {
		wg.Go(func() { errs[i] = f.start(ctx, r) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// freePort asks the kernel for a port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("soak: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start starts r's process and waits until /healthz answers 200.
func (f *fleet) start(ctx context.Context, r *replica) error {
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("soak: replica %d log: %w", r.index, err)
	}
	args := append(append([]string{}, f.cfg.Command[1:]...), "--addr", r.addr, "--db", f.dbURL)
	cmd := exec.Command(f.cfg.Command[0], args...)
	cmd.Env = append(append(os.Environ(), f.cfg.Env...),
		"TOPUP_ADMIN_KEY="+f.adminKey,
		"TOPUP_SANDBOX_LATENCY="+f.cfg.Latency.String(),
		"TOPUP_WORKER_LEASE="+f.cfg.Lease.String(),
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("soak: start replica %d: %w", r.index, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.starts++
	r.mu.Unlock()
	return r.awaitHealthy(ctx, exited)
}

// awaitHealthy polls /healthz until it answers 200, the process exits or
// replicaStartWait passes.
func (r *replica) awaitHealthy(ctx context.Context, exited chan struct{}) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(replicaStartWait)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", r.url+"/healthz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("soak: replica %d exited while starting (log: %s):\n%s", r.index, r.log, tail(r.log, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("soak: replica %d did not answer /healthz within %s (log: %s)", r.index, replicaStartWait, r.log)
		}
	}
}

// kill sends SIGKILL to r and waits until it is gone.
func (r *replica) kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// terminate sends SIGTERM to r and waits up to 30 s for a clean exit.
func (r *replica) terminate() error {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return fmt.Errorf("soak: replica %d had exited by itself (log: %s):\n%s", r.index, r.log, tail(r.log, 20))
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if st := cmd.ProcessState; st != nil && !st.Success() {
			return fmt.Errorf("soak: replica %d exited with %v after SIGTERM (log: %s)", r.index, st, r.log)
		}
		return nil
	case <-time.After(30 * time.Second):
		r.kill()
		return fmt.Errorf("soak: replica %d did not stop within 30 s of SIGTERM", r.index)
	}
}

// terminateAll stops every replica gracefully.
func (f *fleet) terminateAll() error {
	var errs []error
	for _, r := range f.replicas {
		errs = append(errs, r.terminate())
	}
	return errors.Join(errs...)
}

// stopAll kills whatever still runs (the soak is ending on an error).
func (f *fleet) stopAll() {
	for _, r := range f.replicas {
		r.mu.Lock()
		cmd, exited := r.cmd, r.exited
		r.mu.Unlock()
		if cmd == nil {
			continue
		}
		select {
		case <-exited:
		default:
			r.kill()
		}
	}
}

// countInLogs counts the replicas' log lines that hold s.
func (f *fleet) countInLogs(s string) int {
	n := 0
	for _, r := range f.replicas {
		file, err := os.Open(r.log)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			if strings.Contains(sc.Text(), s) {
				n++
			}
		}
		file.Close()
	}
	return n
}

// tail is the last n lines of a file, for an error message.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
