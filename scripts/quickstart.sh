#!/usr/bin/env bash
# One command from a fresh Debian machine to a working Cinder with cinderblock as its volume
# service: RabbitMQ, cinder-api and cinder-scheduler (noauth, SQLite) and cinderblock on the file
# pool. `start` sets up and starts; `stop` stops everything it started; `status` shows it.
#   scripts/quickstart.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${CB_QUICKSTART_DIR:-/var/lib/cinderblock-quickstart}
API_PORT=${CB_API_PORT:-8776}
CONF=$STATE/cinder.conf
RUN=$STATE/run
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"   # Debian's python3 (cinder) before any pyenv one

CINDER=(cinder --os-auth-type noauth --os-user-id admin --os-project-id admin
        --os-endpoint "http://127.0.0.1:$API_PORT/v3" --os-volume-api-version 3.70)

running() { [[ -f $RUN/$1.pid ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start_bg() { # name, command...
  local name=$1; shift
  if running "$name"; then echo "quickstart: $name already running (pid $(cat "$RUN/$name.pid"))"; return; fi
  nohup "$@" >>"$STATE/logs/$name.out" 2>&1 &
  echo $! >"$RUN/$name.pid"
  echo "quickstart: started $name (pid $!)"
}

stop_one() {
  local name=$1
  running "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  local pid; pid=$(cat "$RUN/$name.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN/$name.pid"
  echo "quickstart: stopped $name"
}

write_conf() {
  [[ -f $CONF ]] && return
  cat >"$CONF" <<CONF
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:5672/
auth_strategy = noauth
my_ip = 127.0.0.1
host = $(hostname -s)
enabled_backends = file
state_path = $STATE
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = $API_PORT
osapi_volume_workers = 1
log_dir = $STATE/logs

[database]
connection = sqlite:///$STATE/cinder.sqlite

[file]
volume_driver = file
volume_backend_name = file
target_helper = tgtadm
target_ip_address = 127.0.0.1
volumes_dir = $STATE/tgt

[oslo_concurrency]
lock_path = $STATE/locks

[coordination]
backend_url = file://$STATE/coord

[oslo_messaging_notifications]
driver = noop

[cinderblock]
metrics_listen = 127.0.0.1:9648
CONF
}

case ${1:-} in
start)
  bash scripts/install-deps.sh
  [[ -d node_modules ]] || npm ci --no-audit --no-fund
  npm run build >/dev/null
  mkdir -p "$STATE"/{logs,locks,coord,tgt,run}
  write_conf
  /usr/bin/cinder-manage --config-file "$CONF" db sync >>"$STATE/logs/db-sync.out" 2>&1
  start_bg cinder-scheduler /usr/bin/cinder-scheduler --config-file "$CONF"
  start_bg cinder-api /usr/bin/cinder-api --config-file "$CONF"
  start_bg cinderblock "$ROOT/bin/cinderblock.js" serve --config-file "$CONF"
  echo "quickstart: waiting for the volume service to come up..."
  for _ in $(seq 1 90); do
    if "${CINDER[@]}" service-list 2>/dev/null | grep -E 'cinder-volume.*\| *up *\|' >/dev/null; then
      "${CINDER[@]}" service-list
      echo
      echo "Ready. Use:"
      echo "  ${CINDER[*]} create 1"
      echo "Logs: $STATE/logs   Config: $CONF   Stop: $0 stop"
      exit 0
    fi
    sleep 1
  done
  echo "quickstart: the volume service did not come up; see $STATE/logs/cinderblock.out" >&2
  exit 1
  ;;
stop)
  for s in cinderblock cinder-api cinder-scheduler; do stop_one "$s"; done
  # The tgtd cinderblock started on first export (its pid file says so). tgtd ignores SIGTERM.
  tgt_pidfile=/run/tgtd/cinderblock-0.pid
  if [[ -f $tgt_pidfile ]] && pid=$(cat "$tgt_pidfile") && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == tgtd ]]; then
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$tgt_pidfile"
    echo "quickstart: stopped tgtd (pid $pid)"
  fi
  ;;
status)
  for s in cinder-scheduler cinder-api cinderblock; do
    if running "$s"; then echo "$s: running (pid $(cat "$RUN/$s.pid"))"; else echo "$s: stopped"; fi
  done
  ;;
*)
  echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
