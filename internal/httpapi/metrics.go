package httpapi

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/topup/topup/internal/refund"
	"github.com/topup/topup/internal/topup"
)

// Metrics are the Prometheus series Topup exports at /metrics. They live in
// a registry passed in, never the global one.
type Metrics struct {
	Registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	debits      prometheus.Counter
	groupSize   prometheus.Histogram
	groupCommit prometheus.Histogram
	groupErrors prometheus.Counter
	retries     *prometheus.CounterVec
	topUps      *prometheus.CounterVec
	toCredit    prometheus.Histogram
	disputes    *prometheus.CounterVec
	pruned      prometheus.Counter
}

// NewMetrics registers Topup's series in reg.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "topup_http_requests_total", Help: "HTTP requests by route and status class."}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "topup_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}}, []string{"route"}),
		debits: prometheus.NewCounter(prometheus.CounterOpts{Name: "topup_debits_total", Help: "Usage debits recorded (replays excluded)."}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "topup_commit_group_postings", Help: "Postings per group-commit database transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000, 20000}}),
		groupCommit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "topup_commit_group_duration_seconds", Help: "Duration of group-commit transactions.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}}),
		groupErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "topup_commit_group_errors_total", Help: "Group-commit transactions that failed and were rolled back."}),
	}
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "topup_db_transaction_retries_total",
		Help: "Database transactions run again after a transient conflict, by reason (deadlock, serialization_failure, busy, locked)."}, []string{"reason"})
	m.topUps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "topup_top_up_transitions_total", Help: "Top-up state changes by trigger and new status."}, []string{"trigger", "status"})
	m.toCredit = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "topup_crossing_to_credit_seconds", Help: "Time from the balance crossing the threshold to the top-up's credit.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}})
	m.disputes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "topup_disputes_total",
		Help: "What the provider's dispute events did, each counted once per dispute: opened, funds_withdrawn, funds_reinstated, won, lost."}, []string{"event"})
	m.pruned = prometheus.NewCounter(prometheus.CounterOpts{Name: "topup_idempotency_pruned_total",
		Help: "Usage idempotency keys deleted after TOPUP_IDEMPOTENCY_RETENTION (they no longer replay)."})
	reg.MustRegister(m.pruned, m.disputes, m.topUps, m.toCredit, m.requests, m.latency, m.debits, m.groupSize, m.groupCommit, m.groupErrors, m.retries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveCommit records one group commit; pass it as CommitterConfig.OnCommit.
func (m *Metrics) ObserveCommit(postings int, took time.Duration, err error) {
	m.groupSize.Observe(float64(postings))
	m.groupCommit.Observe(took.Seconds())
	if err != nil {
		m.groupErrors.Inc()
	}
}

// ObserveRetry counts a transaction the store ran again; pass it to
// sqlstore.DB.ObserveRetries.
func (m *Metrics) ObserveRetry(reason string) { m.retries.WithLabelValues(reason).Inc() }

// ObserveTopUp records a top-up state change; pass it as the engine's
// OnSettled.
func (m *Metrics) ObserveTopUp(s topup.Settled) {
	t := s.TopUp
	m.topUps.WithLabelValues(string(t.Trigger), string(t.Status)).Inc()
	if s.Credited && t.Trigger != topup.TriggerManual {
		m.toCredit.Observe(t.CompletedAt.Sub(t.CrossedAt).Seconds())
	}
}

// ObserveDispute counts what one dispute event did (a copy of one already
// applied counts nothing); pass it as topup.Events.OnDispute. An alert on
// topup_disputes_total{event="opened"} tells the operator of each new
// dispute.
func (m *Metrics) ObserveDispute(d refund.DisputeRecord) {
	eff := d.Effect
	if eff.Opened {
		m.disputes.WithLabelValues("opened").Inc()
	}
	if eff.Withdraw > 0 {
		m.disputes.WithLabelValues("funds_withdrawn").Inc()
	}
	if eff.Reinstate {
		m.disputes.WithLabelValues("funds_reinstated").Inc()
	}
	if eff.Closed {
		m.disputes.WithLabelValues(string(d.Status)).Inc()
	}
}

// ObservePruned counts usage idempotency keys the retention worker
// deleted; pass it as retention.Config.OnPrune.
func (m *Metrics) ObservePruned(n int) { m.pruned.Add(float64(n)) }
