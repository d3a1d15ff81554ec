#!/usr/bin/env bash
# Chaos gate: the outage drills. PostgreSQL and Redis containers are paused, killed and cut off
# the network under traffic from worker processes; each module must fail closed within its bound
# and recover, and the history of every request must show nothing duplicated and nothing lost.
# Writes the reliability report (with its chaos_drills section), validates it, and exits non-zero
# on any violation, a time over its bound, a missing Docker Engine or an exhausted time budget.
#
# Settings (environment):
#   CHAOS_REPORT      report path (default: <repo>/reports/chaos-validation-report.json)
#   CHAOS_BUDGET_S    seconds the drills may take in all (default: 600; about 2 minutes on the
#                     2-core CI machine)
#   CHAOS_DRILLS      pytest -k expression choosing drills (default: all of them)
#   PYTHON            interpreter (default: python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
report="${CHAOS_REPORT:-$root/reports/chaos-validation-report.json}"
budget="${CHAOS_BUDGET_S:-600}"
select_args=()
if [ -n "${CHAOS_DRILLS:-}" ]; then
  select_args=(-k "$CHAOS_DRILLS")
fi

if ! reason="$("$python" -m harness.chaos_drills --check-docker 2>&1)"; then
  echo "chaos-validation: FAILED: no Docker Engine for the drills: $(tail -n 1 <<<"$reason")" >&2
  exit 1
fi

echo "chaos-validation: outage drills, budget ${budget} s, report $report"
rm -f "$report"
status=0
started=$SECONDS
# SIGTERM at the budget (pytest still writes the report, marked interrupted), SIGKILL 30 s later;
# containers of a killed run are swept by the next one.
timeout --kill-after=30 "$budget" "$python" -m pytest -p reliability -p no:cacheprovider \
  harness/drills/full_drill.py "${select_args[@]}" --reliability-report "$report" || status=$?
elapsed=$((SECONDS - started))

if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "chaos-validation: FAILED: the drills overran their budget of ${budget} s" >&2
  exit 1
fi
if [ ! -f "$report" ]; then
  echo "chaos-validation: FAILED: pytest (exit $status) wrote no report at $report" >&2
  exit 1
fi
if ! "$python" -m pytest_reliability report validate "$report"; then
  echo "chaos-validation: FAILED: the report does not match its schema" >&2
  exit 1
fi

# The section itself decides too: every drill present, no violation, every time in its bound.
if ! "$python" -m harness.chaos_drills --check-report "$report"; then
  echo "chaos-validation: FAILED (pytest exit $status)" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "chaos-validation: FAILED (pytest exit $status)" >&2
  exit "$status"
fi
echo "chaos-validation: PASSED in ${elapsed} s; report $report"
