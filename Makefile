# OpenCVI: `make run` sets everything up and starts it; `make test` sets up and runs the suite.
# Both are idempotent: the slow install happens once (a stamp tracks the requirement files).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# llama-cpp-python is built from source once (pip caches the wheel); these flags skip the
# parts of llama.cpp we do not use and cut the build to ~5 minutes on 2 cores.
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DLLAMA_HTTPLIB=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF
PYTEST_ARGS ?=

.PHONY: run test setup install sysdeps-test lock bench clean-venv

run: setup
	$(PY) manage.py serve

test: setup sysdeps-test
	$(PY) -m pytest $(PYTEST_ARGS)

setup: $(STAMP)
	@echo "==> Database migrations"
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	@echo "==> Offline models and stock data"
	$(PY) manage.py setup_opencvi

install: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt
	@echo "==> Creating $(VENV) and installing pinned requirements (first run only: several minutes,"
	@echo "    most of it building llama-cpp-python; later runs skip this step)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade --progress-bar on pip==25.3 wheel setuptools
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --progress-bar on -r requirements.txt
	$(PIP) install --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

# Browser tests drive Debian's Chromium through Playwright (never a downloaded browser).
sysdeps-test:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "==> Installing Debian chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Re-resolve the lock from requirements.in (needs network to PyPI).
lock:
	$(PYTHON) -m venv /tmp/opencvi-lock && /tmp/opencvi-lock/bin/pip install -q --upgrade pip==25.3
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" /tmp/opencvi-lock/bin/pip install -r requirements.in
	/tmp/opencvi-lock/bin/pip install --no-deps -r requirements-nodeps.txt
	/tmp/opencvi-lock/bin/pip freeze | grep -vi '^mediapipe' > requirements.txt

clean-venv:
	rm -rf $(VENV)
