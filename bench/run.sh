#!/usr/bin/env bash
# Compares wrk against vllm-sim directly, through chill-server (model awake, process backend) and
# through nginx (proxy_pass, keep-alive upstream) in front of the same vllm-sim. See bench/README.md.
#
#   bench/run.sh                       # 64 connections, 2 threads, 10 s per case
#   DURATION=5s CONNECTIONS=32 bench/run.sh
#   SKIP_BUILD=1 bench/run.sh          # reuse .build/release
#
# All traffic stays on 127.0.0.1; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
STREAM_TOKENS=${STREAM_TOKENS:-16}
MODEL=bench

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

# --- processes --------------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/chill-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() {  # url, what
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "timed out waiting for $2 ($1)" >&2; exit 1
}

SIM_PORT=$(free_port); CHILL_PORT=$(free_port); NGINX_PORT=$(free_port)

log "chill-server :$CHILL_PORT (process backend) → vllm-sim :$SIM_PORT"
"$BIN/chill-server" --backend process --host 127.0.0.1 --port "$CHILL_PORT" --target-port "$SIM_PORT" \
  --served-model-name "$MODEL" --idle-timeout 1h --log-level warning --log-file "$WORK/backend.log" \
  --command "$BIN/vllm-sim --port $SIM_PORT --served-model-name $MODEL --tokens-per-second 0 --max-tokens-default 1 --quiet" \
  >"$WORK/chill.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$CHILL_PORT/health" chill-server
# Wake the model (the request is held until vllm-sim serves), then check it is Ready.
curl -fsS -o /dev/null --max-time 30 "http://127.0.0.1:$CHILL_PORT/v1/chat/completions" \
  -H 'content-type: application/json' -d "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
state=$(curl -fsS "http://127.0.0.1:$CHILL_PORT/proxy/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
[ "$state" = Ready ] || { echo "chill-server is $state, not Ready" >&2; cat "$WORK/chill.log" >&2; exit 1; }

log "nginx :$NGINX_PORT → vllm-sim :$SIM_PORT (keepalive upstream)"
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  upstream vllm { server 127.0.0.1:$SIM_PORT; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://vllm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx/logs/stderr.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$NGINX_PORT/health" nginx

# --- wrk --------------------------------------------------------------------------------------------
cat >"$WORK/chat.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"$MODEL","messages":[{"role":"user","content":"hi"}]}'
EOF
cat >"$WORK/stream.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"$MODEL","messages":[{"role":"user","content":"hi"}],"max_tokens":$STREAM_TOKENS,"stream":true}'
EOF

# Prints: req/s p50_ms p99_ms errors
measure() {  # port script threads connections
  wrk -t"$3" -c"$4" -d"$WARMUP" -s "$2" "http://127.0.0.1:$1/v1/chat/completions" >/dev/null
  wrk -t"$3" -c"$4" -d"$DURATION" --latency -s "$2" "http://127.0.0.1:$1/v1/chat/completions" >"$WORK/wrk.out"
  python3 - "$WORK/wrk.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(value):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
errors = 0
for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
    m = re.search(pattern, text)
    if m: errors += sum(int(g) for g in m.groups())
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {errors}")
PY
}

# chat and stream under load; chat-1c: one connection, i.e. the latency a lone client sees.
CASES="chat stream chat-1c"
declare -A RESULT
for case in $CASES; do
  script=$WORK/${case%-1c}.lua threads=$THREADS connections=$CONNECTIONS
  [ "$case" = chat-1c ] && threads=1 connections=1
  for target in direct chill nginx; do
    case $target in direct) port=$SIM_PORT ;; chill) port=$CHILL_PORT ;; nginx) port=$NGINX_PORT ;; esac
    log "wrk $case → $target ($connections connections, $threads threads, $DURATION)"
    RESULT[$case.$target]=$(measure "$port" "$script" "$threads" "$connections")
  done
done

# The model must still be awake (the benchmark is of the warm path).
state=$(curl -fsS "http://127.0.0.1:$CHILL_PORT/proxy/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["state"], s["wakes"]["count"])')

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (chat-1c: -t1 -c1), POST /v1/chat/completions, vllm-sim --tokens-per-second 0, $(nproc) cores"
echo "chat: 1 token, non-streaming; stream: $STREAM_TOKENS tokens as SSE. chill-server after the run (state, wakes): $state"
echo
printf '| %-9s | %-22s | %10s | %9s | %9s | %6s |\n' case target "req/s" "p50 ms" "p99 ms" errors
printf '|%s|%s|%s|%s|%s|%s|\n' "-----------" "------------------------" "------------" "-----------" "-----------" "--------"
for case in $CASES; do
  for target in direct chill nginx; do
    read -r rps p50 p99 errors <<<"${RESULT[$case.$target]}"
    label=$target
    case $target in direct) label="vllm-sim direct" ;; chill) label="chill-server" ;; nginx) label="nginx proxy_pass" ;; esac
    printf '| %-9s | %-22s | %10s | %9s | %9s | %6s |\n' "$case" "$label" "$rps" "$p50" "$p99" "$errors"
  done
done
echo
for case in $CASES; do
  read -r _ d50 _ _ <<<"${RESULT[$case.direct]}"
  read -r _ c50 _ _ <<<"${RESULT[$case.chill]}"
  read -r _ n50 _ _ <<<"${RESULT[$case.nginx]}"
  python3 -c 'import sys; d, c, n = map(float, sys.argv[2:]); print(f"{sys.argv[1]}: added p50 = chill-server {c - d:+.3f} ms, nginx {n - d:+.3f} ms")' "$case" "$d50" "$c50" "$n50"
done
