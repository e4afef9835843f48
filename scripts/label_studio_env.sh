#!/usr/bin/env bash
# A local, offline Label Studio 1.23 for the human round trip's integration test (issue #17).
#
#   scripts/label_studio_env.sh build    its own virtual environment (about 1 GB: Django & co.,
#                                        kept apart from the harness's, whose pins differ)
#   scripts/label_studio_env.sh start    serve on 127.0.0.1:$LS_PORT until `stop`; waits until
#                                        it answers (first start ~65 s of migrations, then ~8 s)
#   scripts/label_studio_env.sh stop
#   scripts/label_studio_env.sh env      the variables a client needs (eval "$(... env)")
#
# Everything lives in $LS_HOME (default .label-studio/ in the repository): the venv, HOME, the
# SQLite data. Nothing is written outside it, and nothing is fetched at run time
# (LATEST_VERSION_CHECK=false, COLLECT_ANALYTICS=false). LS_VENV points at another venv that
# already holds label-studio (e.g. LS_VENV=/work/ls-venv), LS_PORT picks the port (8089).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LS_HOME="${LS_HOME:-$ROOT/.label-studio}"
LS_VENV="${LS_VENV:-$LS_HOME/venv}"
LS_PORT="${LS_PORT:-8089}"
LS_USER="${LS_USER:-harness@example.com}"
LS_PASSWORD="${LS_PASSWORD:-harness-test-only}"
# a fixed token for a server that only ever listens on 127.0.0.1 with test data
LS_TOKEN="${LS_TOKEN:-0123456789abcdef0123456789abcdef01234567}"
PYTHON="${PYTHON:-python3}"

build() {
  if [ -x "$LS_VENV/bin/label-studio" ]; then
    echo "label-studio is in $LS_VENV"
    return
  fi
  mkdir -p "$LS_HOME"
  "$PYTHON" -m venv "$LS_VENV"
  "$LS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    'label-studio>=1.23,<1.24'
  echo "label-studio installed in $LS_VENV"
}

url() { echo "http://127.0.0.1:$LS_PORT"; }

up() {
  "$PYTHON" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
    "$(url)/health" 2>/dev/null
}

start() {
  [ -x "$LS_VENV/bin/label-studio" ] || { echo "no label-studio in $LS_VENV: run $0 build" >&2; exit 1; }
  if up; then echo "already serving at $(url)"; return; fi
  mkdir -p "$LS_HOME/home" "$LS_HOME/data"
  HOME="$LS_HOME/home" LABEL_STUDIO_BASE_DATA_DIR="$LS_HOME/data" \
    LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false \
    nohup "$LS_VENV/bin/label-studio" start --no-browser --internal-host 127.0.0.1 \
      -p "$LS_PORT" --username "$LS_USER" --password "$LS_PASSWORD" --user-token "$LS_TOKEN" \
      --enable-legacy-api-token --agree-fix-sqlite >"$LS_HOME/server.log" 2>&1 &
  echo $! >"$LS_HOME/server.pid"
  local t0=$SECONDS
  until up; do
    if ! kill -0 "$(cat "$LS_HOME/server.pid")" 2>/dev/null; then
      echo "label-studio exited; see $LS_HOME/server.log" >&2; tail -20 "$LS_HOME/server.log" >&2
      exit 1
    fi
    if (( SECONDS - t0 > ${LS_START_TIMEOUT:-300} )); then
      echo "label-studio did not answer within ${LS_START_TIMEOUT:-300} s" >&2; exit 1
    fi
    sleep 1
  done
  echo "serving at $(url) after $(( SECONDS - t0 )) s (pid $(cat "$LS_HOME/server.pid"))"
}

stop() {
  local pidfile="$LS_HOME/server.pid"
  [ -f "$pidfile" ] || { echo "not started by this script"; return; }
  local pid; pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  rm -f "$pidfile"
  echo "stopped"
}

env_vars() {
  echo "export LABEL_STUDIO_URL=$(url) LABEL_STUDIO_API_KEY=$LS_TOKEN"
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  env) env_vars ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
esac
