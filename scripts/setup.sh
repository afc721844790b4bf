#!/usr/bin/env bash
# Set up .venv with everything FashionFlow needs. `--dev` adds the test tools and Debian's
# chromium for the browser tests. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# torch first and pinned: an unpinned torch pulled in by another package is a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "$(grep -m1 '^torch==' requirements.txt)"
if [ "$dev" = 1 ]; then
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
  if [ ! -x /usr/bin/chromium ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
  fi
else
  .venv/bin/python -m pip install --quiet -r requirements.txt
fi
# the package itself, editable: `python -m fashionflow`, `fashionflow` and the benchmarks find it
.venv/bin/python -m pip install --quiet --no-deps -e .
echo "FashionFlow environment ready in .venv"
