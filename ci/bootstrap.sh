#!/usr/bin/env bash
# Install everything this repository needs on a fresh machine; safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"

need_apt=()
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "bootstrap: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
else
  echo "bootstrap: Debian packages present (shellcheck, PostgreSQL binaries, redis-server)"
fi

echo "bootstrap: pip install -e '.[dev]'"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e '.[dev]'

echo "bootstrap: PostgreSQL for the suite: $("$PYTHON" -m harness.services postgres-url)"
echo "bootstrap: Redis for the suite: $("$PYTHON" -m harness.services redis-url)"
