package httpapi

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsCountRetries: a transaction the store ran again after a
// deadlock is a series an operator can alert on, by reason.
func TestMetricsCountRetries(t *testing.T) {
	t.Parallel()
	m := NewMetrics(prometheus.NewRegistry())
	m.ObserveRetry("deadlock")
	m.ObserveRetry("deadlock")
	m.ObserveRetry("serialization_failure")
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "topup_db_transaction_retries_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "reason" {
					got[l.GetValue()] = s.GetCounter().GetValue()
				}
			}
		}
	}
	if got["deadlock"] != 2 || got["serialization_failure"] != 1 || len(got) != 2 {
		t.Errorf("topup_db_transaction_retries_total by reason = %v, want deadlock 2, serialization_failure 1", got)
	}
}

// TestMetricsCountPrunedKeys: the usage keys the retention worker deletes
// are one counter, so that an operator sees the table kept in check.
func TestMetricsCountPrunedKeys(t *testing.T) {
	t.Parallel()
	m := NewMetrics(prometheus.NewRegistry())
	m.ObservePruned(5000)
	m.ObservePruned(17)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64 = -1
	for _, f := range families {
		if f.GetName() == "topup_idempotency_pruned_total" {
			got = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got != 5017 {
		t.Errorf("topup_idempotency_pruned_total = %v, want 5017", got)
	}
}
