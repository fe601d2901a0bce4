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
# The box's LLM service: llama.cpp's own server (continuous batching, a cached slot per live
# call), built once from the llama.cpp source vendored in llama-cpp-python's sdist (same
# version as the binding) and cached outside the checkout, so a fresh clone reuses it.
LLAMA_VERSION := $(shell sed -n 's/^llama_cpp_python==//p' requirements.txt)
LLAMA_SERVER_CACHE ?= $(HOME)/.cache/opencvi/llama-server/$(LLAMA_VERSION)
LLAMA_SERVER := $(VENV)/bin/llama-server
LLAMA_SERVER_CMAKE_ARGS := -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF \
  -DGGML_CCACHE=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF

.PHONY: run test setup install sysdeps-test lock bench clean-venv

run: setup
	$(PY) manage.py serve

test: setup sysdeps-test
	$(PY) -m pytest $(PYTEST_ARGS)

setup: $(STAMP) $(LLAMA_SERVER)
	@echo "==> Database migrations"
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	@echo "==> Offline models and stock data"
	$(PY) manage.py setup_opencvi

install: $(STAMP) $(LLAMA_SERVER)

$(STAMP): requirements.txt requirements-nodeps.txt
	@echo "==> Creating $(VENV) and installing pinned requirements (first run only: several minutes,"
	@echo "    most of it building llama-cpp-python; later runs skip this step)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade --progress-bar on pip==25.3 wheel setuptools
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --progress-bar on -r requirements.txt
	$(PIP) install --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

$(LLAMA_SERVER): $(STAMP)
	@if [ ! -x "$(LLAMA_SERVER_CACHE)/llama-server" ]; then \
	  echo "==> Building llama.cpp's server $(LLAMA_VERSION) (first run only: ~8 minutes on 2 cores)"; \
	  set -e; tmp=$$(mktemp -d); \
	  $(PIP) download --quiet --no-binary :all: --no-deps llama_cpp_python==$(LLAMA_VERSION) -d $$tmp; \
	  tar xzf $$tmp/llama_cpp_python-$(LLAMA_VERSION).tar.gz -C $$tmp; \
	  cmake=$$(command -v cmake || { $(PIP) install --quiet cmake && echo $(VENV)/bin/cmake; }); \
	  $$cmake -S $$tmp/llama_cpp_python-$(LLAMA_VERSION)/vendor/llama.cpp -B $$tmp/build $(LLAMA_SERVER_CMAKE_ARGS) >/dev/null; \
	  $$cmake --build $$tmp/build --target llama-server -j$$(nproc) >/dev/null; \
	  mkdir -p "$(LLAMA_SERVER_CACHE)"; cp $$tmp/build/bin/llama-server "$(LLAMA_SERVER_CACHE)/llama-server.tmp"; \
	  mv "$(LLAMA_SERVER_CACHE)/llama-server.tmp" "$(LLAMA_SERVER_CACHE)/llama-server"; rm -rf $$tmp; \
	fi
	cp "$(LLAMA_SERVER_CACHE)/llama-server" $(LLAMA_SERVER)

# Browser tests drive Debian's Chromium through Playwright (never a downloaded browser); the
# scale-out test runs Debian's nginx in front of two web processes.
sysdeps-test:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  { command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1 || missing="$$missing nginx-light"; \
	  if [ -n "$$missing" ]; then \
	    echo "==> Installing Debian packages for the tests:$$missing"; \
	    if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	  fi

# Re-resolve the lock from requirements.in (needs network to PyPI).
lock:
	$(PYTHON) -m venv /tmp/opencvi-lock && /tmp/opencvi-lock/bin/pip install -q --upgrade pip==25.3
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" /tmp/opencvi-lock/bin/pip install -r requirements.in
	/tmp/opencvi-lock/bin/pip install --no-deps -r requirements-nodeps.txt
	/tmp/opencvi-lock/bin/pip freeze | grep -vi '^mediapipe\|^pipecat' > requirements.txt

clean-venv:
	rm -rf $(VENV)
