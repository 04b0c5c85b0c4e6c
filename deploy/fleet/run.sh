#!/usr/bin/env bash
# Three Skill Engine replicas behind haproxy on one machine, sharing one compiled cache and one namespace
# configuration: the topology tests/deploy/test_fleet.py checks, for trying it out.
#
#   deploy/fleet/run.sh                     # engines from the current directory's config.toml / env
#   NAMESPACES__DEV__DIRECTORY=skills deploy/fleet/run.sh
#   curl -X POST localhost:8080/v1/skills/test-beta/hello/message-stream -d '"x"' -H 'content-type: application/json'
#
# Rolling restart of replica N (what the test does, what Kubernetes does with endpoints + preStop):
#   echo "set server engines/engineN state drain" | socat - UNIX:$FLEET_DIR/haproxy.sock
#   kill -TERM <pid of engine N>; start it again; echo "set server engines/engineN state ready" | socat ...
# Stop everything with Ctrl-C.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
engine="${SKILL_ENGINE:-skill-engine}"
export FLEET_DIR="${FLEET_DIR:-$(mktemp -d -t skill-engine-fleet.XXXXXX)}"
export FLEET_FRONTEND="${FLEET_FRONTEND:-127.0.0.1:8080}"
export FLEET_ADMIN_SOCKET="$FLEET_DIR/haproxy.sock"
export WASMTIME_CACHE_DIR="${WASMTIME_CACHE_DIR:-$FLEET_DIR/compiled}"   # the shared (RWX) cache
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for i in 1 2 3; do
  port=$((18080 + i)); metrics=$((19000 + i))
  export "FLEET_ENGINE$i=127.0.0.1:$port"
  KERNEL_ADDRESS="127.0.0.1:$port" METRICS_ADDRESS="127.0.0.1:$metrics" SHUTDOWN_GRACE="${SHUTDOWN_GRACE:-30s}" \
    "$engine" serve > "$FLEET_DIR/engine$i.log" 2>&1 &
  pids+=($!)
  echo "engine$i: http://127.0.0.1:$port (metrics :$metrics, log $FLEET_DIR/engine$i.log, pid $!)"
  [ "$i" = 1 ] && sleep "${FLEET_FIRST_START:-5}"   # the first precompiles into the shared cache
done
haproxy -db -f "$here/haproxy.cfg" > "$FLEET_DIR/haproxy.log" 2>&1 &
pids+=($!)
echo "haproxy: http://$FLEET_FRONTEND (runtime API $FLEET_ADMIN_SOCKET)"
wait
