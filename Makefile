# The two commands of the README. Both work on a fresh machine with python3.11 and make.
PYTHON ?= python3.11
VENV   ?= .venv
PIP     = $(VENV)/bin/pip
PY      = $(VENV)/bin/python

.PHONY: demo test install install-test services clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(VENV)/bin/activate
	$(PIP) install --quiet -e .

install-test: $(VENV)/bin/activate
	$(PIP) install --quiet -e '.[test]'

# PostgreSQL and Redis are part of the machine; start them if they are down (tests never skip them).
services:
	@pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
	@pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL did not start" >&2; exit 1; }
	@command -v redis-server >/dev/null || { apt-get update -q && apt-get install -y -q redis-server; }
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes
	@for i in $$(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0; sleep 1; done; echo "Redis did not start" >&2; exit 1

## README command 1: the embedded demo (SQLite event store, seeded demo store).
demo: install
	$(VENV)/bin/trafi demo

## README command 2: install what the tests need and run them all (slow ones included).
test: install-test services
	$(PY) -m pytest -n 2 -p no:cacheprovider

clean:
	rm -rf $(VENV) trafi-data .pytest_cache
