# The test command of the README and of .ci/run.
#
# The race detector runs on the packages whose concurrency is ours to get
# wrong: the group committer (internal/ledger), the HTTP layer
# (internal/httpapi) and the top-up engine (internal/topup). Everything else
# runs without it: the pure-Go SQLite is many times slower under -race.
RACE_PKGS = ./internal/ledger/ ./internal/httpapi/ ./internal/topup/

.PHONY: test
test:
	go vet ./...
	go test -race -count=1 $(RACE_PKGS)
	go test -count=1 $$(go list ./... | grep -v -e '/internal/ledger$$' -e '/internal/httpapi$$' -e '/internal/topup$$')
