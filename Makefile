# sifund — every target works on a fresh machine with only Python 3.11: the venv is created on demand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit lint test-dates test-postgres test-cluster test-browser chaos bench fuzz install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start NATS, the four services and the gateway on 127.0.0.1 (gateway on :8000); Ctrl-C stops everything.
run: $(STAMP)
	$(BIN)/sifund up

## The checks of the code (ruff, the import contracts of pyproject.toml), then the whole suite on SQLite and a real
## nats-server.
test: lint
	$(BIN)/python -m pytest -q

## ruff (pyproject [tool.ruff]) and the architecture as import contracts (pyproject [tool.importlinter]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo

## The unit lane: tests of pure code only (marked unit: no NATS, no app, no database), in seconds.
test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m unit

## The suite once per instant of TEST_DATES (SIFUND_TEST_CLOCK; the clock keeps running from there), to find tests and
## code that depend on the day they run; every date runs, then the failing ones are listed. Tests marked `once` (their
## platform runs `sifund up` with the real clock whatever the run) are skipped: make test has run them.
TEST_DATES ?= 2026-12-31T16:00:00+08:00 2027-01-04T09:00:00+08:00 2027-12-31T16:00:00+08:00
test-dates: $(STAMP)
	@failed=""; for instant in $(TEST_DATES); do \
		echo "== the suite with the clock at $$instant"; \
		SIFUND_TEST_CLOCK=$$instant $(BIN)/python -m pytest -q || failed="$$failed $$instant"; \
	done; \
	if [ -n "$$failed" ]; then echo "== failed with the clock at:$$failed"; exit 1; fi

## The same suite on a real PostgreSQL (installed with apt if missing, throwaway cluster on a free port), less the
## tests marked `once` (their platform is the embedded SQLite whatever the run: make test has run them).
test-postgres: $(STAMP)
	bash infra/postgres/run-tests.sh $(BIN)/python -m pytest -q

## The console in a real browser: tests/browser drives Debian's Chromium (installed with apt if missing) through
## Playwright against `sifund up` after a small month; screenshots of a failing test under var/browser-screenshots.
test-browser: $(STAMP)
	bash infra/browser/run-tests.sh $(BIN)/python -m pytest -q tests/browser

## The long profile in CI: the fault suite (tests/chaos: a month through the gateway of `sifund up` while a seeded
## schedule SIGKILLs its children), backup → wipe → restore with the oversight rebuild, a
## tiny real-path month, and an import and a tax file resumed after their service is killed mid-job, on a throwaway
## PostgreSQL (and bench.jobs_real_path at a tiny size); then backup → wipe → restore once more on SQLite. CHAOS_ROUNDS
## rounds (CI: 2), CHAOS_SEED replays.
## The NATS cluster tests (tests/cluster) are in the suite itself, so make test and make test-postgres run them.
CHAOS_ROUNDS ?= 2
test-cluster: $(STAMP)
	SIFUND_CHAOS=1 CHAOS_ROUNDS=$(CHAOS_ROUNDS) bash infra/postgres/run-tests.sh $(BIN)/python -m pytest -q -s tests/chaos \
		tests/operations/test_backup_restore_and_rebuild.py tests/bench/test_month_real_path.py \
		tests/e2e/test_jobs_survive_a_kill.py tests/bench/test_jobs_real_path.py
	SIFUND_CHAOS=1 $(BIN)/python -m pytest -q tests/operations/test_backup_restore_and_rebuild.py

## The long profile: ROUNDS rounds of the fault suite, and NATS nodes lost for NODE_LOSS_SECONDS each phase.
ROUNDS ?= 20
NODE_LOSS_SECONDS ?= 120
chaos: $(STAMP)
	SIFUND_CHAOS=1 CHAOS_ROUNDS=$(ROUNDS) SIFUND_NODE_LOSS_SECONDS=$(NODE_LOSS_SECONDS) bash infra/postgres/run-tests.sh $(BIN)/python -m pytest -q -s tests/cluster/test_node_loss.py tests/chaos

## Benchmarks on this machine; each writes bench/results/<name>.json (the 1 M-line money-in run takes ~15 min). The
## real path last: a month of BENCH_LINES contribution lines through `sifund up`'s gateway until oversight has it fully
## matched (BENCH_MONTH_ARGS: e.g. --postgres URL, --profile), cheap authenticated reads through the gateway vs
## straight to the service, and one BENCH_LINES-row enrolment import and one BENCH_LINES-line tax file as jobs.
BENCH_LINES ?= 1000000
BENCH_MONTH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m bench.backbone
	$(BIN)/python -m bench.accounts_import
	$(BIN)/python -m bench.accounts_posting
	$(BIN)/python -m bench.accounts_exchange --record after
	$(BIN)/python -m bench.benefits_payroll
	$(BIN)/python -m bench.oversight_reconciliation
	$(BIN)/python -m bench.oversight_sweep
	$(BIN)/python -m bench.oversight_apply --label after
	$(BIN)/python -m bench.money_in
	$(BIN)/python -m bench.collection_tax_batch --label after
	$(BIN)/python -m bench.event_envelopes --label after
	$(BIN)/python -m bench.gateway_reads
	$(BIN)/python -m bench.jobs_real_path --rows $(BENCH_LINES)
	$(BIN)/python -m bench.month_real_path --lines $(BENCH_LINES) $(BENCH_MONTH_ARGS)

## Schemathesis over the five OpenAPI documents, FUZZ_EXAMPLES (default 50) per operation and mode; findings in
## var/fuzz/findings.json (FUZZ_OUTPUT), exit 1 on any server error or schema violation.
FUZZ_EXAMPLES ?= 50
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m tests.fuzz.run

clean:
	rm -rf var .pytest_cache
