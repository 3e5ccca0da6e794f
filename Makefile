# ProtocolBanks — every command installs what it needs first (toolchain/bootstrap.sh is idempotent).
#   make demo        the end-to-end story on a local anvil chain
#   make test        the whole test suite (in-process chain, then anvil, then slither) — what CI runs
SHELL := /bin/bash
ENV := source toolchain/env.sh &&
PYTEST_FLAGS ?= -q -p no:cacheprovider

.PHONY: setup compile demo test test-unit test-anvil test-long slither gas bench lint lock clean

setup:
	@bash toolchain/bootstrap.sh

# Ape's incremental compile misses contracts that inherit a changed file, so always compile everything.
compile: setup
	@$(ENV) ape compile --force > .build-compile.log 2>&1 || (cat .build-compile.log; exit 1)
	@$(ENV) python toolchain/export_abi.py

demo: compile
	@$(ENV) ape run demo --network ethereum:local:foundry -v WARNING

test: compile
	@$(ENV) ape test tests $(PYTEST_FLAGS)
	@$(ENV) PB_ON_ANVIL=1 ape test tests $(PYTEST_FLAGS) --network ethereum:local:foundry
	@$(MAKE) --no-print-directory slither

test-unit: compile
	@$(ENV) ape test tests $(PYTEST_FLAGS)

test-anvil: compile
	@$(ENV) PB_ON_ANVIL=1 ape test tests $(PYTEST_FLAGS) --network ethereum:local:foundry

test-long: compile
	@$(ENV) PB_LONG=1 ape test tests/test_invariants.py tests/test_batch_fast_path.py $(PYTEST_FLAGS)

slither: compile
	@$(ENV) python toolchain/run_slither.py

gas: compile
	@bench/run gas

lint: setup
	@$(ENV) ruff check sdk relayer scripts tests bench toolchain examples && mypy -p protocolbanks.sdk -p protocolbanks.relayer -p protocolbanks.devtools

lock: setup
	@$(ENV) { echo "# Pinned Python toolchain (pip freeze of a working set; regenerate with 'make lock')."; \
	  pip freeze --exclude-editable | grep -v '^protocolbanks'; } > requirements.lock

clean:
	rm -rf .build contracts/.cache .build-compile.log
