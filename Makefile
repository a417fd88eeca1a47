# Set-up and checks for councilflow. `make demo` and `make test` work on a fresh machine
# (Python 3.11, pip, make); both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench postgres browser system clean messages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP) system
	$(BIN)/councilflow demo

# Debian's graphviz lays out the workflow diagrams (definitions show --format svg|png, the paper page);
# pango (with HarfBuzz's subsetter) is what WeasyPrint renders the Prüfbericht's PDF with.
system:
	@(command -v dot && test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf && \
		ldconfig -p | grep -q libpangoft2-1.0.so.0 && ldconfig -p | grep -q libharfbuzz-subset.so.0) >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q graphviz fonts-dejavu-core \
			libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0)

postgres:
	@bash scripts/ensure-postgres

# The browser tests drive Debian's chromium through Playwright; no browser is downloaded by a test tool.
browser:
	@test -x /usr/bin/chromium || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

# Extract the messages of the code into the German catalogs (workflow/locale/de/LC_MESSAGES/*.po) and list
# what is left to translate.
messages: $(STAMP)
	$(BIN)/python -m workflow.catalogs

lint: $(STAMP)
	$(BIN)/ruff check workflow notifier tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) postgres system browser lint typecheck
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_outbox.py
	$(BIN)/python bench/bench_mail.py
	$(BIN)/python bench/bench_audit.py
	$(BIN)/python bench/bench_import.py
	$(BIN)/python bench/bench_web.py
	$(BIN)/python bench/bench_oparl.py
	$(BIN)/python bench/bench_scale.py
	$(BIN)/python bench/bench_simulate.py
	$(BIN)/python bench/bench_validate.py
	$(BIN)/python bench/bench_report.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache councilflow-demo.db*
