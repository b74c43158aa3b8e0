# Sourced by the benchmark scripts. start_registry LOGFILE starts a loopback
# registry on a free port and sets reg (HOST:PORT) and regpid; the caller's
# EXIT trap kills "$regpid".
# BENCH_RECEIVER picks the registry: crane (default: `crane registry serve`,
# in memory) or kiln (this repository's `bin/server --registry-only`, which
# streams uploads to disk and fsyncs them; its data dir is LOGFILE.data).
start_registry() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  case ${BENCH_RECEIVER:-crane} in
    crane) crane registry serve --address "127.0.0.1:$port" >"$1" 2>&1 & ;;
    kiln)  "$(dirname "${BASH_SOURCE[0]}")/../bin/server" --registry-only --data "$1.data" --addr "127.0.0.1:$port" >"$1" 2>&1 & ;;
    *) echo "BENCH_RECEIVER=$BENCH_RECEIVER: use crane or kiln" >&2; return 1 ;;
  esac
  regpid=$!
  reg="127.0.0.1:$port"
  for _ in $(seq 50); do curl -fs "http://$reg/v2/" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "${BENCH_RECEIVER:-crane} registry on $reg did not answer (log: $1)" >&2
  return 1
}
