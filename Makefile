# The two commands of the README: `make serve` and `make test`.
# Both create a virtual environment in .venv on first use, so a fresh machine
# needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: serve test faults lint bench bench-reduced bench-durability bench-instructions bench-profile bench-memory bench-security bench-cluster compare container-test screenshots clean

$(BIN)/xmlchat: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,metrics,plots,speed,chat,cluster]'
	touch $@

serve: $(BIN)/xmlchat
	$(BIN)/xmlchat serve

test: $(BIN)/xmlchat
	$(BIN)/ruff check xmlchat tests examples benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q -m "not faults"

# Issue 11's fault suite (tests/faults): kills, restarts and stalled readers, every
# message counted; slow rows included (2 to 4 minutes on a shared 2-core machine). CI runs it after `make test`.
# Every row passes strictly: any acknowledged message lost, or shown twice, fails it.
faults: $(BIN)/xmlchat
	$(BIN)/pytest -q -m faults tests/faults

# Long (tens of minutes at full size); needs Debian's prosody and ejabberd for the comparison.
# Every target and scenario, 3 repeats; ends by rewriting docs/performance.md and its JSON
# (35-45 minutes on a quiet 2-CPU machine, as fast as it is that day; no measurement starts after 55). The reduced run (one
# repeat, 5,000 idle sessions at most, about 15 minutes) is `make bench-reduced`.
bench: $(BIN)/xmlchat
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.run --max-minutes 55 --doc docs/performance.md

bench-reduced: $(BIN)/xmlchat
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.run --repeat 1 --set idle_large=5000 \
		--scenarios pingpong,messages,fanout,login_churn,idle --doc docs/performance.md

# What durable acknowledgements cost (docs/delivery.md): xmlchat with delivery.durable on and
# off, over XMPP and native, in one run; messages per server CPU-second (a few minutes).
bench-durability: $(BIN)/xmlchat
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.run --quick --scenarios messages --repeat 3 --set pairs=50 --set duration=8 \
		--servers xmlchat,xmlchat-memory,xmlchat:native,xmlchat-memory:native,prosody-smacks:xmpp-sm,xmlchat:xmpp-sm \
		--messages-only '' --memory 0

# Instructions per message on the native hot path, under valgrind (repeatable on a busy machine).
bench-instructions: $(BIN)/xmlchat
	$(BIN)/python -m benchmarks.instructions
	PROTOCOL=xmpp $(BIN)/python -m benchmarks.instructions

# Where the time goes per message (docs/performance.md): pyinstrument flame graphs of the
# bench-instructions scenario, native and XMPP, into docs/performance/ (a minute).
bench-profile: $(BIN)/xmlchat
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.profile docs/performance
	PROTOCOL=xmpp $(BIN)/python -m benchmarks.profile docs/performance

# KiB of server memory per idle plaintext and TLS session and per pending TLS handshake,
# (a minute or two; docs/performance.md).
bench-memory: $(BIN)/xmlchat
	$(BIN)/python -m benchmarks.session_memory

# The figures of docs/security.md (a minute or two): memory per pending (TLS handshake,
# pre-auth) connection, connect latency per listen backlog, SCRAM timing by outcome.
bench-security: $(BIN)/xmlchat
	$(BIN)/python -m benchmarks.pending
	$(BIN)/python -m benchmarks.scram_timing

# Two nodes against one (issue 17): messages/s and cross-node latency, then one room with
# occupants on both nodes; needs PostgreSQL and NATS.
bench-cluster: $(BIN)/xmlchat
	$(BIN)/python -m benchmarks.cluster
	$(BIN)/python -m benchmarks.cluster --rooms

# Regenerates the measured numbers, plots and transcripts that docs/protocols.md shows.
compare: $(BIN)/xmlchat
	$(BIN)/xmlchat compare --out docs/compare --json docs/compare/results.json --doc docs/protocols.md

# The README's container flow on a real Docker engine (build, up, healthy, accounts,
# a message each way, restart, data kept); needs root or the docker group. Not in `make test`.
container-test: $(BIN)/xmlchat
	$(BIN)/python container/check.py

# The web chat page at desktop and phone width, into docs/web (needs Debian's chromium).
screenshots: $(BIN)/xmlchat
	XMLCHAT_SCREENSHOTS=docs/web $(BIN)/pytest -q tests/e2e/test_web_page.py -k screenshots

clean:
	rm -rf $(VENV) build *.egg-info
