# Moor's two entry points are `make demo` and `make test`; both set up everything they need first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
DEBIAN_PACKAGES := git openssh-server openssh-client gnupg ca-certificates chromium

.PHONY: setup system-packages venv tools lint unit test demo demo-down clean

setup: system-packages venv tools

system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

tools:
	@bash devcluster/build.sh

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

unit: venv tools
	$(BIN)/pytest tests/unit -q

test: setup lint
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=25

demo: setup
	@bash demo/run.sh

demo-down: venv
	$(BIN)/moor cluster down --dir .demo/cluster

clean:
	rm -rf $(VENV) .demo .mypy_cache .ruff_cache .pytest_cache
