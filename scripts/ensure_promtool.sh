#!/usr/bin/env bash
# test/integration/metrics.test.ts validates the replica's Prometheus text with promtool (Debian's
# prometheus package). Installed here, before the tests, when missing and when this runs as root
# (CI, the project's machines); otherwise the test checks the format with its own strict reading.
set -uo pipefail
command -v promtool >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; } || echo "promtool unavailable: the metrics test checks the format itself"
else
  echo "promtool not installed: the metrics test checks the format itself"
fi
exit 0
