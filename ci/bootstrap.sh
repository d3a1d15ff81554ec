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
# The Docker Engine for the container-chaos tests (tests/infra): Debian's package, since no
# other registry is reachable. A docker client alone (no dockerd) is not enough.
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
# Headless Chromium for the HTML report's browser tests (tests/report_html), driven by Playwright
# for Python with this executable: Debian's package, since no browser download is reachable.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "bootstrap: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
else
  echo "bootstrap: Debian packages present (shellcheck, PostgreSQL binaries, redis-server, dockerd, chromium)"
fi

# Start a Docker daemon when none answers (no systemd here), and wait for it, bounded.
if docker info >/dev/null 2>&1; then
  echo "bootstrap: Docker daemon answers"
else
  mkdir -p /var/log
  echo "bootstrap: starting dockerd in the background (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if docker info >/dev/null 2>&1; then
    echo "bootstrap: Docker daemon up"
  else
    echo "bootstrap: WARNING dockerd did not answer within 60 s; container tests will skip" >&2
    tail -n 20 /var/log/dockerd.log >&2 || true
  fi
fi

echo "bootstrap: pip install -e '.[dev]'"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e '.[dev]'

echo "bootstrap: PostgreSQL for the suite: $("$PYTHON" -m harness.services postgres-url)"
echo "bootstrap: Redis for the suite: $("$PYTHON" -m harness.services redis-url)"
