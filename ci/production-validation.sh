#!/usr/bin/env bash
# Production gate: run the project's gates in order (lint, types, reliability, backup, chaos,
# audit), write reports/production-validation-report.json, stop at the first failing gate and say
# why.
#
# Settings (environment):
#   PRODUCTION_GATES        gates to run, in this order
#                           (default: "lint types reliability backup chaos audit")
#   PRODUCTION_REPORT       report path (default: <repo>/reports/production-validation-report.json)
#   PYTHON                  interpreter (default: python3)
# The reliability gate is ci/reliability-validation.sh and takes its settings too; the backup gate
# is ci/backup-validation.sh (its own result in reports/backup-gate.json); the chaos gate is
# ci/chaos-validation.sh (the outage drills, on Docker; report reports/chaos-validation-report.json).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
report="${PRODUCTION_REPORT:-$root/reports/production-validation-report.json}"
selected="${PRODUCTION_GATES:-lint types reliability backup chaos audit}"
started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
results="$scratch/gates.tsv"
: >"$results"

gate_lint() { ruff check . && ruff format --check .; }
gate_types() { mypy; }
gate_reliability() { bash "$root/ci/reliability-validation.sh"; }
gate_backup() { bash "$root/ci/backup-validation.sh"; }
gate_chaos() { bash "$root/ci/chaos-validation.sh"; }
gate_audit() {
  # A scratch SQLite audit log, written through the real API, then verified by the CLI.
  local url="sqlite:///$scratch/audit.db"
  "$python" -m pytest_reliability production audit-smoke --database-url "$url"
  "$python" -m pytest_reliability audit verify --database-url "$url"
}

write_report() {
  "$python" -m pytest_reliability production report \
    --results "$results" --started "$started" --output "$report"
}

for gate in $selected; do
  case "$gate" in
    lint | types | reliability | backup | chaos | audit) ;;
    *)
      echo "production-validation: unknown gate '$gate' (known: lint types reliability backup chaos audit)" >&2
      exit 2
      ;;
  esac
done

for gate in lint types reliability backup chaos audit; do
  case " $selected " in
    *" $gate "*) ;;
    *) continue ;;
  esac
  echo "== production-validation: gate $gate =="
  start=$SECONDS
  if "gate_$gate" >"$scratch/$gate.log" 2>&1; then
    printf '%s\tpassed\t%s\t\n' "$gate" "$((SECONDS - start))" >>"$results"
    echo "production-validation: gate $gate PASSED"
  else
    code=$?
    reason="$(tail -n 5 "$scratch/$gate.log" | tr '\t\n' '  ')"
    printf '%s\tfailed\t%s\texit %s: %s\n' "$gate" "$((SECONDS - start))" "$code" "$reason" >>"$results"
    cat "$scratch/$gate.log" >&2
    write_report
    echo "production-validation: FAILED at gate $gate (exit $code): $reason" >&2
    exit 1
  fi
done
write_report
echo "production-validation: PASSED ($selected); report $report"
