# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run test lint venv lock worker beat relay

# `PORT=8123 make run` serves there; the links the demo prints follow (hub/settings.py reads PORT).
PORT ?= 8000
export PORT

venv:
	@scripts/venv.sh

# Re-resolve requirements*.lock from pyproject.toml (add `ARGS=--upgrade` to take new releases).
lock:
	@scripts/lock.sh $(ARGS)

run: venv
	.venv/bin/python manage.py migrate --no-input
	.venv/bin/python manage.py demo
	.venv/bin/python manage.py runserver 127.0.0.1:$(PORT)

test: venv
	.venv/bin/python -m pytest

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .

worker: venv
	.venv/bin/celery -A hub worker -l INFO

beat: venv
	.venv/bin/celery -A hub beat -l INFO

relay: venv
	.venv/bin/python manage.py relay
