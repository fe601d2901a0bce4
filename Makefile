# OpenCVI: `make run` sets everything up and starts it; `make test` sets up and runs the suite.
# Both are idempotent: the slow install happens once (a stamp tracks the requirement files).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# llama-cpp-python is built from source once (pip caches the wheel); these flags skip the
# parts of llama.cpp we do not use and cut the build to ~5 minutes on 2 cores. GGML_NATIVE=OFF
# builds for any x86-64-v3 CPU (AVX2, FMA, F16C): a wheel built with -march=native is reused from
# pip's cache on whatever CPU the next machine has, and ggml's AMX kernels (compiled in natively
# on CPUs that have AMX) crashed every prompt on such a machine.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_HTTPLIB=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF
# what the installed binding (in the venv) and pip's cached wheel (on the machine) were built with
LLAMA_BUILT := $(VENV)/.llama-cmake-args
LLAMA_WHEEL_ARGS := $(HOME)/.cache/opencvi/llama-wheel-cmake-args
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

.PHONY: run test setup install llama-binding sysdeps-test lock bench clean-venv

run: setup
	$(PY) manage.py serve

test: setup sysdeps-test
	$(PY) -m pytest $(PYTEST_ARGS)

setup: $(STAMP) llama-binding $(LLAMA_SERVER)
	@echo "==> Database migrations"
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	@echo "==> Offline models and stock data"
	$(PY) manage.py setup_opencvi

install: $(STAMP) llama-binding $(LLAMA_SERVER)

# A venv whose binding was built with other flags (an older checkout) rebuilds it once.
llama-binding: $(STAMP)
	@if [ "$$(cat $(LLAMA_BUILT) 2>/dev/null)" != "$(LLAMA_CMAKE_ARGS)" ]; then \
	  echo "==> Rebuilding llama-cpp-python with this checkout's flags (once: ~5 minutes)"; \
	  $(PIP) cache remove 'llama_cpp_python*' >/dev/null 2>&1 || true; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --progress-bar on --force-reinstall --no-deps \
	    llama_cpp_python==$(LLAMA_VERSION) && echo "$(LLAMA_CMAKE_ARGS)" > $(LLAMA_BUILT) && \
	  mkdir -p $$(dirname $(LLAMA_WHEEL_ARGS)) && echo "$(LLAMA_CMAKE_ARGS)" > $(LLAMA_WHEEL_ARGS); fi

$(STAMP): requirements.txt requirements-nodeps.txt
	@echo "==> Creating $(VENV) and installing pinned requirements (first run only: several minutes,"
	@echo "    most of it building llama-cpp-python; later runs skip this step)"
	test -x $(PY) || { $(PYTHON) -m venv $(VENV) && touch $(VENV)/.new; }
	$(PIP) install --upgrade --progress-bar on pip==25.3 wheel setuptools
	@# a llama-cpp-python wheel that pip cached from a build with other flags must not be reused
	@if [ "$$(cat $(LLAMA_WHEEL_ARGS) 2>/dev/null)" != "$(LLAMA_CMAKE_ARGS)" ]; then \
	  $(PIP) cache remove 'llama_cpp_python*' >/dev/null 2>&1 || true; \
	  mkdir -p $$(dirname $(LLAMA_WHEEL_ARGS)) && echo "$(LLAMA_CMAKE_ARGS)" > $(LLAMA_WHEEL_ARGS); fi
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --progress-bar on -r requirements.txt
	$(PIP) install --no-deps -r requirements-nodeps.txt
	@# a new venv got its binding built with these flags just now (an old one: see llama-binding)
	if [ -f $(VENV)/.new ]; then echo "$(LLAMA_CMAKE_ARGS)" > $(LLAMA_BUILT) && rm $(VENV)/.new; fi
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
	/tmp/opencvi-lock/bin/pip freeze | grep -vi '^mediapipe\|^pipecat\|^pyrnnoise' > requirements.txt

clean-venv:
	rm -rf $(VENV)
