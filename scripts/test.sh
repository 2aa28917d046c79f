#!/usr/bin/env bash
# Set up the development environment from scratch (if needed) and run the whole test suite.
# Installs: a virtual environment in .venv with otsight and its dev dependencies, and the
# Debian packages the tests compare against (tshark), when they are missing and we are root.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e '.[dev]'

if ! command -v tshark >/dev/null 2>&1 || ! command -v capinfos >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing tshark (Debian) for the differential tests" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark >/dev/null
    else
        echo "tshark is missing: the tshark comparison tests will be skipped (apt-get install tshark)" >&2
    fi
fi

# Compile the numba kernels once, before the test workers start (they share the cache).
warm=$(mktemp -d)
.venv/bin/python -m otsight.testing.samples "$warm" >/dev/null
.venv/bin/otsight analyze "$warm/sample.pcap" --json >/dev/null
rm -rf "$warm"

status=0
.venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@" || status=$?
if [ "$status" = 5 ]; then
    echo "no test ran: that is a failure" >&2
    exit 1
fi
exit "$status"
