#!/usr/bin/env bash
# Reliability gate: run the suite with the reliability plugin, validate the JSON report against
# its schema, print the summary, and exit non-zero (saying why) when a gate fails.
#
# Settings (environment):
#   RELIABILITY_SUITE_DIR        directory pytest runs in (default: the repository root)
#   RELIABILITY_PYTEST_ARGS      pytest arguments (default: "tests -n 2 -p no:benchmark": the
#                                suite does not use pytest-benchmark, whose warning under xdist
#                                would be an error with filterwarnings = error)
#   RELIABILITY_REPORT           report path (default: <repo>/reports/reliability-validation-report.json)
#   RELIABILITY_HTML             HTML report path (default: the report's path with .html)
#   RELIABILITY_REQUIRED_CATEGORIES  categories that need a passing test
#                                (default: "chaos kill_switch idempotency"; "" for none)
#   PYTHON                       interpreter (default: python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
suite_dir="${RELIABILITY_SUITE_DIR:-$root}"
report="${RELIABILITY_REPORT:-$root/reports/reliability-validation-report.json}"
html="${RELIABILITY_HTML:-${report%.json}.html}"
required="${RELIABILITY_REQUIRED_CATEGORIES-chaos kill_switch idempotency}"
read -r -a pytest_args <<<"${RELIABILITY_PYTEST_ARGS:-tests -n 2 -p no:benchmark}"

require_args=()
for category in $required; do
  require_args+=(--reliability-require "$category")
done

echo "reliability-validation: pytest in $suite_dir, report $report"
echo "reliability-validation: required categories: ${required:-none}"
status=0
(cd "$suite_dir" && "$python" -m pytest -p reliability "${pytest_args[@]}" \
  --reliability-report "$report" "${require_args[@]}") || status=$?

if [ ! -f "$report" ]; then
  echo "reliability-validation: FAILED: pytest (exit $status) wrote no report at $report" >&2
  exit "$(( status == 0 ? 1 : status ))"
fi

if ! "$python" -m pytest_reliability report validate "$report"; then
  echo "reliability-validation: FAILED: the report does not match its schema" >&2
  exit 1
fi

# The page for people, written whatever the verdict (a failed run is when it is read most).
if "$python" -m pytest_reliability report html "$report" -o "$html"; then
  echo "reliability-validation: HTML report $html"
else
  echo "reliability-validation: FAILED: the HTML report could not be written to $html" >&2
  exit 1
fi

"$python" -m pytest_reliability report summary --format markdown "$report"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  "$python" -m pytest_reliability report summary --format markdown "$report" >>"$GITHUB_STEP_SUMMARY"
fi

if [ "$status" -ne 0 ]; then
  echo "reliability-validation: FAILED (pytest exit $status); gates:" >&2
  "$python" -m pytest_reliability report gates "$report" >&2 || true
  exit "$status"
fi
echo "reliability-validation: PASSED"
