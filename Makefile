# Commands for a newcomer on a fresh machine:
#   make demo   - the main job on an embedded LocalStack: provision, run the worker, upload files, show what happened
#   make demo-video - the video pipeline: a video -> frames -> faces -> one report, on the same LocalStack
#   make test   - lint, type-check and the whole test suite (unit + integration on a real LocalStack)
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: install demo demo-video test lint unit integration bench localstack-up services-up localstack-down docker-up tools-up clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

localstack-up: install
	$(VENV)/bin/watcher local up

# LocalStack and DynamoDB Local (the shared idempotency store's tests; needs Java 17)
services-up: install
	$(VENV)/bin/watcher local up --dynamodb

localstack-down: install
	$(VENV)/bin/watcher local down

# The container handler's tests need a Docker engine: install docker.io and start dockerd if needed.
docker-up:
	./scripts/ensure-docker.sh

# promtool and Prometheus, systemd-analyze, debootstrap, Java: installed when missing.
tools-up:
	./scripts/ensure-tools.sh

demo: localstack-up
	$(PY) scripts/demo.py

# The video pipeline (examples/video-pipeline): video -> frames -> faces -> report. Jobs run in Docker images built
# from Debian packages (first time: minutes) when an engine answers, else on the host; RUNTIME=docker|process chooses.
demo-video: localstack-up
	$(PY) examples/video-pipeline/video_demo.py $(if $(RUNTIME),--runtime $(RUNTIME))

lint: install
	$(VENV)/bin/ruff check watcher tests benchmarks scripts
	$(VENV)/bin/ruff format --check watcher tests benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

unit: install
	$(PY) -m pytest -m "not integration" -q

integration: docker-up tools-up services-up
	$(PY) -m pytest -m integration -q

test: lint docker-up tools-up services-up
	$(PY) -m pytest -q

bench: localstack-up docker-up
	$(PY) benchmarks/throughput.py --repeat 5 --messages 10000
	$(PY) benchmarks/workflow_calls.py --messages 3000 --repeat 5
	$(PY) benchmarks/container_overhead.py
	$(PY) benchmarks/backfill.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
