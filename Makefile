# The two commands of the README. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: run test bench screenshots clean

run: $(VENV)/.installed
	$(VENV)/bin/trials run $(ARGS)

test: $(VENV)/.installed-test
	$(PY) -m pytest $(PYTEST_ARGS)

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[local]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e '.[local,test,dask,sweep]'
	bash scripts/install-browser.sh
	touch $@

bench: $(VENV)/.installed-test
	$(PY) benchmarks/llm_overhead.py
	$(PY) benchmarks/runner_scaling.py --steps 10
	$(PY) benchmarks/calibration.py --sims 4000 --compare-sims 400
	$(PY) benchmarks/estimate_accuracy.py
	$(PY) benchmarks/fault_injection.py
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/dask_check.py
	$(PY) benchmarks/scale.py
	$(PY) benchmarks/near_duplicates.py --n 2000 20000

screenshots: $(VENV)/.installed-test   # README's report screenshots under docs/
	$(PY) scripts/screenshots.py

clean:
	rm -rf $(VENV) .cache runs multirun
