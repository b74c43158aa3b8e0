# Sourced by the benchmark scripts. start_registry LOGFILE starts crane's
# in-memory registry on a free loopback port and sets reg (HOST:PORT) and
# regpid; the caller's EXIT trap kills "$regpid".
start_registry() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  crane registry serve --address "127.0.0.1:$port" >"$1" 2>&1 &
  regpid=$!
  reg="127.0.0.1:$port"
  for _ in $(seq 50); do curl -fs "http://$reg/v2/" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "crane registry on $reg did not answer (log: $1)" >&2
  return 1
}
