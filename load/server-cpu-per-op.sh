#!/usr/bin/env bash
# Server CPU per committed op under the steady scenario, on a port of your choosing
# (load/run.ts starts its servers on 4100, which another run on the box may hold).
# Starts the built server of the current directory on a fresh database, runs
# `npm run load -- --url …` against it, and divides the server's CPU over the whole
# run (from /proc: setup, warm-up and window alike) by the ops in the op log.
#   load/server-cpu-per-op.sh [port] [extra load args…]      e.g. load/server-cpu-per-op.sh 4731 --duration 15
#   SERVER_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" load/server-cpu-per-op.sh 4731
set -euo pipefail
port=${1:-4731}; shift || true
pg=${LOAD_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=tasksync_cpuop_$(date +%s)_$$
psql "$pg" -qc "create database $db"
node scripts/ensure-build.mjs >/dev/null
DATABASE_URL="${pg%/*}/$db" REDIS_URL=${LOAD_REDIS_URL:-redis://127.0.0.1:6379} REDIS_PREFIX="tasksync-cpuop:$db:" \
  NODE_ENV=production PORT=$port JWT_SECRET=load-test-secret-load-test-secret-0123456789 ACCESS_TOKEN_TTL_S=3600 \
  LOG_LEVEL=warn AUTH_RATE_LIMIT_PER_MIN=10000 WS_MAX_SOCKETS=100000 node ${SERVER_ARGS:-} dist/src/server.js &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; psql "$pg" -qc "drop database if exists $db with (force)"' EXIT
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.2; done
ticks() { awk '{print $14 + $15}' /proc/$server/stat; }
t0=$(ticks)
npm run load -- --url "http://127.0.0.1:$port" --tasks 100 --sockets-per-task 10 --duration 15 --workers 3 "$@" 2>&1 \
  | grep -E "committed ops/s|fan-out latency|gaps|convergence"
t1=$(ticks)
ops=$(psql "${pg%/*}/$db" -Atc "select count(*) from task_ops")
echo "server CPU $(( (t1 - t0) * 10 )) ms for $ops ops in the op log: $(echo "scale=3; ($t1 - $t0) * 10 / $ops" | bc) ms per op; load average $(cut -d' ' -f1 /proc/loadavg)"
