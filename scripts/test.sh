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

# Compile the numba kernels once, before the test workers start (they share the cache):
# the generated sample, and one real capture per protocol when the shared corpus is there.
warm=$(mktemp -d)
.venv/bin/python -m otsight.testing.samples "$warm" >/dev/null
captures=("$warm/sample.pcap")
corpus=../shared/corpus
for f in modbus/ICS-Security-Tools__modbus_test_data_part2.pcap dnp3/ICS-Security-Tools__dnp3.pcap \
         dnp3/zeek__dnp3_udp_select_operate.pcap enip/ICS-Security-Tools__EthernetIP-CIP.pcap \
         enip/nDPI__cip_io.pcap s7comm/ICS-Security-Tools__s7comm_clean.pcap \
         iec104/ICS-Security-Tools__TestDissectIec104.pcap bacnet/icsnpp-bacnet__bacnet_example.pcap \
         profinet/ICS-Security-Tools__ChangeIPUsingDCP.pcap \
         opcua/icsnpp-opcua-binary__open62541_client-server_minimal.pcap \
         fins/icsnpp-omron-fins__omron_test.pcap; do
    [ -f "$corpus/$f" ] && captures+=("$corpus/$f")
done
echo "compiling kernels (first run only)..." >&2
.venv/bin/otsight analyze "${captures[@]}" --json >/dev/null || true
rm -rf "$warm"

status=0
.venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@" || status=$?
if [ "$status" = 5 ]; then
    echo "no test ran: that is a failure" >&2
    exit 1
fi
exit "$status"
