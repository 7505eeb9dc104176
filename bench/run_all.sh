#!/usr/bin/env bash
# Run Baton's benchmarks on the production stack: gunicorn, PostgreSQL, Redis, a Celery worker and beat.
#
#   bench/run_all.sh                 # ingest, then read (loads the 10M events first if the bench DB is empty)
#   bench/run_all.sh load            # (re)load ~10M events over 1M shipments into the bench database
#   bench/run_all.sh ingest | read   # one bench
#   bench/run_all.sh sweep           # the flag sweep over 1M open shipments (reopens loaded ones)
#   BENCH_ARGS=--worker-paused bench/run_all.sh ingest   # options for the bench script (see --help)
#
# The bench has its own database and Redis db (BENCH_DATABASE_URL, BENCH_REDIS_URL) and only ever
# stops the processes it started. Figures are printed and saved under bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/baton_bench}"
export REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/10}"
export SECRET_KEY="${SECRET_KEY:-bench-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"
export DEBUG=false DJANGO_SETTINGS_MODULE=bench.settings LOG_LEVEL="${LOG_LEVEL:-WARNING}"
# Beat's jobs over every open shipment (the flag sweep, Baton's estimates and stage durations, the
# scorecards) are not what ingest and read measure: over the 1M open shipments of the loaded set
# they held both worker processes for minutes (the ingest drain stalled at 15 ev/s) and competed
# with the reads. They are pushed past the run unless set; `bench/run_all.sh sweep` measures the
# sweep. The inbound sweep (the kill phase's safety net) and the outbox sweep keep their schedule.
export BATON_FLAG_SWEEP_SECONDS="${BATON_FLAG_SWEEP_SECONDS:-86400}"
export BATON_ESTIMATE_SECONDS="${BATON_ESTIMATE_SECONDS:-86400}"
export BATON_ETA_REFRESH_SECONDS="${BATON_ETA_REFRESH_SECONDS:-86400}"
export BATON_SCORECARD_SECONDS="${BATON_SCORECARD_SECONDS:-86400}"
PORT="${BENCH_PORT:-8765}"
GUNICORN_WORKERS="${BENCH_GUNICORN_WORKERS:-4}"
GUNICORN_THREADS="${BENCH_GUNICORN_THREADS:-2}"
CELERY_CONCURRENCY="${BENCH_CELERY_CONCURRENCY:-2}"
PY=.venv/bin/python
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(ingest read)
mkdir -p var bench/results

db_name="${DATABASE_URL##*/}"
db_server="${DATABASE_URL%/*}/postgres"
if [ "$(psql "$db_server" -Atc "select 1 from pg_database where datname = '$db_name'")" != "1" ]; then
    psql "$db_server" -qc "create database \"$db_name\""
fi
$PY manage.py migrate --no-input -v0

# The read bench needs the 10M events; ingest makes its own shipments and needs none.
if [[ " ${STEPS[*]} " == *" load "* ]] || { [[ " ${STEPS[*]} " == *" read "* ]] \
    && [ "$(psql "$DATABASE_URL" -Atc 'select count(*) from tracking_shipment')" = "0" ]; }; then
    $PY bench/load_events.py | tee "bench/results/load_events-$(date +%Y%m%d-%H%M%S).txt"
fi
# The sweep bench runs in process, with no stack around it (beat would sweep at the same time).
if [[ " ${STEPS[*]} " == *" sweep "* ]]; then
    $PY bench/sweep.py ${BENCH_ARGS:-}
fi
BENCHES=()
for step in "${STEPS[@]}"; do [ "$step" = load ] || [ "$step" = sweep ] || BENCHES+=("$step"); done
[ ${#BENCHES[@]} -gt 0 ] || exit 0

pids=()
WORKER_PIDFILE="var/bench-worker-$PORT.pid"
STOP="var/bench-stop-$PORT"  # per port: two stacks may run side by side
cleanup() {
    touch "$STOP"
    # The worker runs in its own process group (setsid), under the restart loop below.
    [ -s "$WORKER_PIDFILE" ] && kill -TERM -- "-$(cat "$WORKER_PIDFILE")" 2>/dev/null || true
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -f "$STOP"
}
trap cleanup EXIT

$PY -m celery -A hub purge -f >/dev/null
.venv/bin/gunicorn hub.wsgi:application --bind "127.0.0.1:$PORT" --workers "$GUNICORN_WORKERS" \
    --worker-class gthread --threads "$GUNICORN_THREADS" --keep-alive 30 --log-level warning \
    >"var/bench-gunicorn-$PORT.log" 2>&1 &
pids+=($!)
rm -f "$STOP" "$WORKER_PIDFILE"
(
    # A supervisor, as production has (systemd Restart=always): the ingest bench kill -9s the worker.
    while [ ! -e "$STOP" ]; do
        setsid -w $PY -m celery -A hub worker -l WARNING -c "$CELERY_CONCURRENCY" --without-gossip \
            --without-mingle --pidfile "$WORKER_PIDFILE" >>"var/bench-worker-$PORT.log" 2>&1 || true
    done
) &
pids+=($!)
# Publishes what ingest stored to the worker in batches (production runs exactly one, like beat).
$PY manage.py relay >"var/bench-relay-$PORT.log" 2>&1 &
pids+=($!)
# A fresh schedule: every job waits its interval from now, rather than catching up on old runs.
rm -f "var/bench-beat-schedule-$PORT"*
$PY -m celery -A hub beat -l WARNING -s "var/bench-beat-schedule-$PORT" >"var/bench-beat-$PORT.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/api/partner/v1/uploads/template.csv" >/dev/null && break
    sleep 0.2
done
for _ in $(seq 30); do
    $PY -m celery -A hub inspect ping --timeout 1 >/dev/null 2>&1 && break
done

for bench in "${BENCHES[@]}"; do
    extra=()
    [ "$bench" = ingest ] && extra=(--worker-pidfile "$WORKER_PIDFILE" --worker-processes "$CELERY_CONCURRENCY")
    # shellcheck disable=SC2086  # BENCH_ARGS is a list of options, e.g. "--worker-paused"
    $PY "bench/$bench.py" --url "http://127.0.0.1:$PORT" "${extra[@]}" ${BENCH_ARGS:-}
done
