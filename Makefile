# Fresh machine:  make demo  (set up, then the main job on built-in demo data)
#                 make test  (set up, then the whole test suite)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO := demo

.PHONY: setup test demo bench clean-demo

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null || ! ldconfig -p | grep -q libsndfile; then \
	  echo "installing Debian packages espeak-ng sox libsndfile1"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq espeak-ng sox libsndfile1; fi
	@test -x $(PY) || PYENV_VERSION=3.12.1 python3.12 -m venv $(VENV) 2>/dev/null || python3.12 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -m pip install -q -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -c "import superb, torch, torchaudio, zarr, h5py, transformers" 
	touch $@

test: setup
	$(PY) -m pytest -q -n auto --dist loadfile --no-loadscope-reorder

demo: setup
	$(PY) -m superb.testing.demo $(DEMO)

bench: setup
	for b in extract fit dtw loader lstm separation_scoring; do $(PY) benchmarks/$$b.py || exit 1; done

clean-demo:
	rm -rf $(DEMO)
