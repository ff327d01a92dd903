#!/usr/bin/env bash
# What CI can check of the chill-server image without a Docker engine:
#  1. every path the Dockerfile COPYs from the build context exists in this (clean) clone;
#  2. the static release binary links only libraries the runtime image installs (libc, libstdc++,
#     libgcc, libcurl4, libyaml-0-2);
#  3. it starts as uid/gid 65532 (the Deployment's runAsUser) from a read-only directory with a
#     read-only working directory, and answers /health.
#   scripts/check-image.sh            # builds `swift build -c release --static-swift-stdlib --product chill-server`
#   SKIP_BUILD=1 scripts/check-image.sh
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-image: $*" >&2; exit 1; }

# 1. COPY sources (not --from= stages) exist.
python3 - <<'PY' || exit 1
import glob, re, sys
missing = []
for line in open("Dockerfile"):
    m = re.match(r"\s*COPY\s+(.*)", line)
    if not m or "--from=" in line:
        continue
    parts = [p for p in m.group(1).split() if not p.startswith("--")]
    for source in parts[:-1]:
        if not glob.glob(source):
            missing.append(source)
if missing:
    sys.exit(f"check-image: the Dockerfile copies {', '.join(missing)}, which a clean clone does not have")
print("check-image: every path the Dockerfile copies exists")
PY

# 2. Libraries.
if [ -z "${SKIP_BUILD:-}" ]; then
  swift build -c release --static-swift-stdlib --product chill-server 2>&1 | tail -n 1
fi
BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)/chill-server"
[ -x "$BIN" ] || fail "no $BIN"
allowed='^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libutil\.so\.1|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libcurl\.so\.4|libyaml-0\.so\.2)$'
needed=$(readelf -d "$BIN" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
extra=$(echo "$needed" | grep -Ev "$allowed" || true)
[ -z "$extra" ] || fail "chill-server needs $(echo $extra) — not in the runtime image (Dockerfile installs libcurl4 libyaml-0-2)"
size=$(stat -c %s "$BIN")
stripped=$(mktemp)
strip -o "$stripped" "$BIN" && size_stripped=$(stat -c %s "$stripped") && rm -f "$stripped"
echo "check-image: links only $(echo $needed); $((size / 1000000)) MB, $((size_stripped / 1000000)) MB stripped"

# 3. Non-root from a read-only directory.
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
install -m 0555 "$BIN" "$dir/chill-server"
chmod 0555 "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [ "$(id -u)" = 0 ]; then
  run=(setpriv --reuid 65532 --regid 65532 --clear-groups)
else
  echo "check-image: not root: running as $(id -u) instead of 65532" >&2
  run=()
fi
(cd "$dir" && exec "${run[@]}" env -i HOME=/nonexistent PATH=/usr/bin:/bin ./chill-server --backend process \
  --command "sleep 3600" --target-port 1 --host 127.0.0.1 --port "$port" --log-file /dev/null) >"/tmp/check-image.$$.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if body=$(curl -fsS "http://127.0.0.1:$port/health" 2>/dev/null); then
    echo "check-image: /health answered as uid $( [ ${#run[@]} -gt 0 ] && echo 65532 || id -u ) from a read-only directory: $body"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    rm -f "/tmp/check-image.$$.log"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
cat "/tmp/check-image.$$.log" >&2
fail "chill-server did not answer /health"
