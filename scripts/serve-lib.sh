# Sourced by scripts/api-fuzz and scripts/load-test, not run. start_service BINARY NAME
# starts `BINARY serve` with --jobs 2 on a free loopback port and a fresh bearer token, and
# waits until it listens; it sets token, log (its stderr), pid and addr, and an EXIT trap
# stops it and removes the log. stop_service sends SIGTERM, waits, and sets status to the
# service's exit status.

start_service() {
  local bin=$1 name=$2
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  log=$(mktemp)
  trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
  PHISCRUB_TOKEN=$token "$bin" serve --listen 127.0.0.1:0 --jobs 2 2>"$log" &
  pid=$!
  addr=
  for _ in $(seq 1 300); do
    addr=$(grep -o 'address=[0-9.:]*' "$log" | head -1 | cut -d= -f2) || true
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "$name: the service did not start" >&2; exit 1; }
}

stop_service() {
  kill -TERM "$pid"
  status=0
  wait "$pid" || status=$?
  trap 'rm -f "$log"' EXIT
}
