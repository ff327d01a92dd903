#!/usr/bin/env bash
# Installs what building and testing chill needs on a Debian/Ubuntu machine that has only Swift:
# the libcurl and libyaml -dev packages (the Kubernetes client's transport and YAML), openssl and curl
# (the test PKI), and, with `--python`, the official `openai` Python client and pytest (the end-to-end
# test that drives the proxy). Does nothing when everything is there already.
#
#   scripts/bootstrap.sh            # what `swift build` needs (scripts/demo.sh calls this)
#   scripts/bootstrap.sh --python   # and what `swift test` needs (scripts/test.sh calls this)
#
# Root installs directly; otherwise through `sudo -n` when it needs no password; otherwise it prints
# the one command to run and exits 1.
set -euo pipefail

want_python=false
for arg in "$@"; do
  case "$arg" in
    --python) want_python=true ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bootstrap.sh: unknown argument '$arg' (expected --python)" >&2; exit 2 ;;
  esac
done

say() { printf 'bootstrap: %s\n' "$*" >&2; }

# Debian packages, each with the file that proves it is installed.
missing=()
need() { [ -e "$2" ] || missing+=("$1"); }
need libcurl4-openssl-dev /usr/include/x86_64-linux-gnu/curl/curl.h
need libyaml-dev /usr/include/yaml.h
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# Multi-arch include paths: accept curl.h wherever the compiler would find it.
if [[ " ${missing[*]-} " == *" libcurl4-openssl-dev "* ]] \
  && echo '#include <curl/curl.h>' | cc -E -x c - >/dev/null 2>&1; then
  missing=("${missing[@]/libcurl4-openssl-dev/}")
fi
python_missing=false
if $want_python; then
  python3 -c 'import openai, pytest' >/dev/null 2>&1 || python_missing=true
fi
packages=()
for p in "${missing[@]-}"; do [ -n "$p" ] && packages+=("$p"); done
if $python_missing && ! python3 -m pip --version >/dev/null 2>&1; then packages+=(python3-pip); fi

if [ ${#packages[@]} -eq 0 ] && ! $python_missing; then exit 0; fi

if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  as_root=(none)
fi

if [ ${#packages[@]} -gt 0 ]; then
  command_line="apt-get update && apt-get install -y --no-install-recommends ${packages[*]}"
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing ${packages[*]}; this is not a Debian/Ubuntu machine: install their equivalents, then run this again"
    exit 1
  fi
  if [ "${as_root[*]-}" = none ]; then
    say "missing ${packages[*]}; run: sudo sh -c '$command_line'"
    exit 1
  fi
  say "installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if $python_missing; then
  say "installing the Python packages openai and pytest"
  pip=(python3 -m pip install -q --disable-pip-version-check)
  # A user's pip installs into ~/.local; root's pip may need --break-system-packages (PEP 668).
  [ "$(id -u)" = 0 ] || pip+=(--user)
  "${pip[@]}" openai pytest 2>/dev/null || "${pip[@]}" --break-system-packages openai pytest || {
    say "could not install openai and pytest; run: python3 -m pip install --user openai pytest"
    exit 1
  }
fi
