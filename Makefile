# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run test lint venv worker beat relay

venv:
	@scripts/venv.sh

run: venv
	.venv/bin/python manage.py migrate --no-input
	.venv/bin/python manage.py demo
	.venv/bin/python manage.py runserver 127.0.0.1:8000

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
