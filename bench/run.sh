#!/usr/bin/env bash
# Compares wrk against vllm-sim directly, through chill-server (model awake, process backend) and
# through nginx (proxy_pass, keep-alive upstream) in front of the same vllm-sim. See bench/README.md.
#
#   bench/run.sh                       # 64 connections, 2 threads, 10 s per case, 3 interleaved rounds
#   DURATION=5s CONNECTIONS=32 ROUNDS=5 bench/run.sh
#   CASES="chat-1c" SKIP_BUILD=1 bench/run.sh   # one case; reuse .build/release
#   CASES="" ROWS="sse wake" bench/run.sh        # only the 1,000-stream SSE row and the wake row
#   GROWTH_REQUESTS=1000000 bench/run.sh         # also the RSS-growth row (~1-2 min more)
#
# All traffic stays on 127.0.0.1; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."


log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

# --- tools --------------------------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v python3 >/dev/null || { echo "bench/run.sh needs python3 (free ports, JSON)" >&2; exit 1; }

# --- build ----------------------------------------------------------------------------------------
if [ -z "${SKIP_BUILD:-}" ]; then
  log "building release binaries"
  swift build -c release --product chill-server >&2
  swift build -c release --product vllm-sim >&2
fi
BIN=$(swift build -c release --show-bin-path)
[ -x "$BIN/chill-server" ] && [ -x "$BIN/vllm-sim" ] || { echo "missing $BIN/chill-server or $BIN/vllm-sim" >&2; exit 1; }

exec python3 bench/bench.py "$BIN" "$NGINX"
