# The test command of the README and of .ci/run: go vet, staticcheck, the
# tests, and a few seconds of each fuzz target.
#
# The race detector runs on the packages whose concurrency is ours to get
# wrong: the group committer (internal/ledger), the HTTP layer
# (internal/httpapi) and the top-up engine (internal/topup). Everything else
# runs without it: the pure-Go SQLite is many times slower under -race.
# The soak (cmd/topup TestSoak: three topup serve processes under kills) runs
# last and alone: its replicas hold up to 48 of PostgreSQL's 100 connections,
# which the other packages' PostgreSQL tests would otherwise compete for.
RACE_PKGS = ./internal/ledger/ ./internal/httpapi/ ./internal/topup/

STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test
test: vet
	go test -race -count=1 $(RACE_PKGS)
	go test -count=1 -skip '^TestSoak$$' $$(go list ./... | grep -v -e '/internal/ledger$$' -e '/internal/httpapi$$' -e '/internal/topup$$')
	go test -count=1 -run '^TestSoak$$' ./cmd/topup
	$(MAKE) --no-print-directory ts-if-present
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(CI_FUZZTIME)

# gofmt (every file formatted), go vet, and staticcheck when it is
# installed (.ci/run installs it; with CI=true a missing staticcheck fails
# the run).
.PHONY: vet
vet:
	@unformatted="$$(gofmt -l cmd internal client)"; if [ -n "$$unformatted" ]; then echo "gofmt -l found unformatted files:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then echo staticcheck ./...; staticcheck ./...; \
	elif [ "$$CI" = true ]; then echo "staticcheck is missing: go install $(STATICCHECK)"; exit 1; \
	else echo "skipping staticcheck (not installed): go install $(STATICCHECK)"; fi

# How much make test fuzzes each target: a count of executions, not a
# duration. Go 1.26's fuzz coordinator can fail a target with a bare
# "context deadline exceeded" when a duration-based -fuzztime ends while a
# worker is mid-call (go.dev/issue/75804, fixed in Go 1.27); a count has no
# deadline to race. 30,000 executions take 2-4 s per target here.
CI_FUZZTIME ?= 30000x

# Each fuzz target for FUZZTIME (a duration, or a count such as 30000x),
# one at a time (they share two cores with
# everything else). The targets live in packages whose test binaries link no
# database driver, so their instrumented builds are quick. New inputs that
# widen coverage stay in the Go build cache; a failing one is written to the
# package's testdata/fuzz/FuzzX/ and fails the run.
FUZZTIME ?= 5s
FUZZ_TARGETS = \
	./internal/money/:FuzzParse \
	./internal/money/:FuzzFormatRoundTrip \
	./internal/input/:FuzzDecodeRequests \
	./internal/input/:FuzzCheckJSON \
	./internal/input/:FuzzQuery \
	./internal/stripe/:FuzzParseWebhook \
	./internal/notify/fuzz/:FuzzSignature \
	./internal/notify/fuzz/:FuzzVerifySignature

.PHONY: fuzz
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# The TypeScript check: types generated from internal/httpapi/openapi.json
# with the pinned openapi-typescript, and the README's flow as a typed
# client (clients/typescript/src/flow.ts) checked with tsc --strict. npm ci
# installs the lockfile's versions (from npm's cache when it has them), and
# only when the lockfile changed since the last install.
TS_DIR = clients/typescript

.PHONY: ts
ts:
	@cd $(TS_DIR) && if [ ! node_modules/.package-lock.json -nt package-lock.json ]; then npm ci --no-audit --no-fund --prefer-offline; fi
	cd $(TS_DIR) && npm run --silent generate && npm run --silent check

# make test runs the TypeScript check when Node is installed; with CI=true a
# missing node or npm fails the run.
.PHONY: ts-if-present
ts-if-present:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory ts; \
	elif [ "$$CI" = true ]; then echo "node and npm are missing: the TypeScript check (make ts) needs Node 20"; exit 1; \
	else echo "skipping the TypeScript check (node/npm not installed): make ts"; fi
