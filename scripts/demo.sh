#!/usr/bin/env bash
# The local demo: chill-server in front of vllm-sim (a stand-in for `vllm serve`, ~3 s of "loading"),
# no cluster and no GPU needed. Shows /v1/models answered without waking the model, a cold request
# that wakes it, a warm one, a streamed answer, the stats, and the scale-down after 5 s idle.
#
#   scripts/demo.sh                         # ports 18080 (chill-server) and 18000 (vllm-sim)
#   CHILL_PORT=9080 SIM_PORT=9000 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh   # libcurl/libyaml -dev packages, when missing

CHILL_PORT=${CHILL_PORT:-18080}
SIM_PORT=${SIM_PORT:-18000}
IDLE=${IDLE:-5s}
MODEL=demo-model
URL="http://127.0.0.1:$CHILL_PORT"

bold=$'\033[1m'; dim=$'\033[2m'; reset=$'\033[0m'
[ -t 1 ] || { bold=""; dim=""; reset=""; }
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$reset"; }
show() { printf '%s$ %s%s\n' "$dim" "$*" "$reset"; }
now_ms() { date +%s%3N; }
elapsed() { local ms=$(( $(now_ms) - $1 )); printf '%d.%02d' $((ms / 1000)) $(((ms % 1000) / 10)); }
state() { curl -fsS "$URL/proxy/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }

step "Building chill-server and vllm-sim"
build() {
  local log
  log=$(mktemp)
  if swift build --product "$1" >"$log" 2>&1; then
    tail -n 1 "$log"
    rm -f "$log"
  else
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
}
build chill-server
build vllm-sim
BIN=$(swift build --show-bin-path)

for port in "$CHILL_PORT" "$SIM_PORT"; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "port $port is in use: set CHILL_PORT / SIM_PORT" >&2
    exit 1
  fi
done

WORK=$(mktemp -d /tmp/chill-demo.XXXXXX)
CHILL_PID=""
cleanup() {
  if [ -n "$CHILL_PID" ] && kill -0 "$CHILL_PID" 2>/dev/null; then
    kill -TERM "$CHILL_PID"  # chill-server stops vllm-sim on its way out
    for _ in $(seq 1 100); do kill -0 "$CHILL_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CHILL_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

step "Starting chill-server on :$CHILL_PORT in front of vllm-sim on :$SIM_PORT (idle timeout $IDLE)"
COMMAND="$BIN/vllm-sim --port $SIM_PORT --served-model-name $MODEL --startup-seconds 3 --tokens-per-second 20"
show "chill-server --backend process --command \"vllm-sim --port $SIM_PORT --startup-seconds 3 …\" --target-port $SIM_PORT --port $CHILL_PORT --idle-timeout $IDLE"
"$BIN/chill-server" --backend process --command "$COMMAND" --host 127.0.0.1 --port "$CHILL_PORT" \
  --target-port "$SIM_PORT" --served-model-name "$MODEL" --idle-timeout "$IDLE" --log-level warning \
  --log-file "$WORK/vllm.log" >"$WORK/chill.log" 2>&1 &
CHILL_PID=$!
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$URL/health" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "$URL/health" || { echo "chill-server did not start:" >&2; cat "$WORK/chill.log" >&2; exit 1; }
echo "model state: $(state)   (no vllm process yet: nothing holds the GPU)"

CHAT='{"model":"'$MODEL'","messages":[{"role":"user","content":"Hi!"}],"max_tokens":8}'
STREAM='{"model":"'$MODEL'","messages":[{"role":"user","content":"Hi!"}],"max_tokens":12,"stream":true}'
content() { python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])'; }

step "GET /v1/models while scaled down: answered by chill-server, the model stays asleep"
show "curl $URL/v1/models"
curl -fsS "$URL/v1/models"; echo
echo "model state: $(state)"

step "A cold request: held while the model wakes (~3 s of loading), then answered"
show "curl $URL/v1/chat/completions -d '$CHAT'"
start=$(now_ms)
answer=$(curl -fsS "$URL/v1/chat/completions" -H 'content-type: application/json' -d "$CHAT")
printf 'answer: %s\n' "$(content <<<"$answer")"
echo "took $(elapsed "$start") s (the wake)"
echo "model state: $(state)"

step "A warm request: straight through"
start=$(now_ms)
answer=$(curl -fsS "$URL/v1/chat/completions" -H 'content-type: application/json' -d "$CHAT")
printf 'answer: %s\n' "$(content <<<"$answer")"
echo "took $(elapsed "$start") s (8 tokens at 20 tokens/s, no wake)"

step "A streamed answer (server-sent events, relayed as they are produced)"
show "curl -N $URL/v1/chat/completions -d '$STREAM'"
# Each event as it arrives, shortened to its delta (the raw lines are `data: {…"delta":{"content":"…"}…}`).
python3 -u - "$URL/v1/chat/completions" "$STREAM" <<'PY'
import json, subprocess, sys, time
# curl is started from here so the times below are the events' real arrival times.
start = time.monotonic()
curl = subprocess.Popen(["curl", "-fsSN", sys.argv[1], "-H", "content-type: application/json", "-d", sys.argv[2]],
                        stdout=subprocess.PIPE, text=True)
for line in curl.stdout:
    line = line.strip()
    if not line.startswith("data: "):
        continue
    payload = line[6:]
    if payload == "[DONE]":
        print(f"{time.monotonic() - start:5.2f}s  data: [DONE]")
        continue
    choice = (json.loads(payload).get("choices") or [{}])[0]
    shown = {k: v for k, v in choice.items() if k in ("delta", "finish_reason") and v}
    print(f"{time.monotonic() - start:5.2f}s  data: {json.dumps(shown)}")
sys.exit(curl.wait())
PY

step "GET /proxy/stats"
curl -fsS "$URL/proxy/stats" | python3 -m json.tool

step "Idle for $IDLE: chill-server scales the model to zero"
printf 'waiting'
for _ in $(seq 1 300); do
  s=$(state)
  [ "$s" = ScaledDown ] && break
  printf '.'; sleep 0.1
done
echo
echo "model state: $(state)"
if curl -s -o /dev/null "http://127.0.0.1:$SIM_PORT/health"; then
  echo "vllm-sim still answers on :$SIM_PORT"
else
  echo "vllm-sim has exited (port $SIM_PORT closed): the GPU would be free"
fi
curl -fsS "$URL/proxy/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); w=s["wakes"]; print("wakes: %d, last wake %.2f s, scaled down for %.1f s so far" % (w["count"], w.get("lastSeconds", 0), s["scaledDownSeconds"]))'

step "Done: the next request would wake it again. Stopping."
