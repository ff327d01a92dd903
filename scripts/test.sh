#!/usr/bin/env bash
# The tests, on a machine with only Swift: installs what is missing (scripts/bootstrap.sh --python),
# then runs `swift test` (Swift Testing: unit, end-to-end against vllm-sim and the in-repo test API
# server, the openai-client test, and a short bounded fuzz run). Arguments go to `swift test`:
#   scripts/test.sh --filter ProxyEndToEndTests
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --python
exec swift test "$@"
