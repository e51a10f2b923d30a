#!/usr/bin/env bash
# Install everything the tests need (Python packages, Debian's Chromium for the browser test), then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"  # llama-cpp-python builds from source
python -m pip install -q -r requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null
  else
    echo "warning: chromium is not installed; browser tests will be skipped (apt-get install chromium chromium-driver)" >&2
  fi
fi
python -m pytest -q "$@"
