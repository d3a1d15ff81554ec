#!/usr/bin/env bash
# Production gate: run the project's gates in order (lint, types, reliability, audit), write
# reports/production-validation-report.json, stop at the first failing gate and say why.
#
# Settings (environment):
#   PRODUCTION_GATES        gates to run, in this order (default: "lint types reliability audit")
#   PRODUCTION_REPORT       report path (default: <repo>/reports/production-validation-report.json)
#   PYTHON                  interpreter (default: python3)
# The reliability gate is ci/reliability-validation.sh and takes its settings too.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
report="${PRODUCTION_REPORT:-$root/reports/production-validation-report.json}"
selected="${PRODUCTION_GATES:-lint types reliability audit}"
started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
results="$scratch/gates.tsv"
: >"$results"

gate_lint() { ruff check . && ruff format --check .; }
gate_types() { mypy; }
gate_reliability() { bash "$root/ci/reliability-validation.sh"; }
gate_backup() { bash "$root/ci/backup-validation.sh"; }
gate_audit() {
  # A scratch SQLite audit log, written through the real API, then verified by the CLI.
  local url="sqlite:///$scratch/audit.db"
  "$python" - "$url" <<'PY'
import sys
from pytest_reliability.audit import AuditLog
from pytest_reliability.db import create_schema, make_engine
from pytest_reliability.tenancy import tenant_scope
engine = make_engine(sys.argv[1])
create_schema(engine)
log = AuditLog(engine)
with tenant_scope("production-gate"):
    for n in range(3):
        log.append("gate.check", actor="ci", target=f"check-{n}", outcome="ok")
engine.dispose()
PY
  "$python" -m pytest_reliability audit verify --database-url "$url"
}

write_report() {
  "$python" - "$report" "$started" "$results" <<'PY'
import datetime, json, sys
from pathlib import Path
from pytest_reliability.report import write_report
path, started, results = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
gates = []
for line in results.read_text(encoding="utf-8").splitlines():
    name, status, seconds, reason = line.split("\t", 3)
    gates.append({"name": name, "status": status, "duration_s": float(seconds),
                  "reason": reason or None})
failed = next((g["name"] for g in gates if g["status"] == "failed"), None)
finished = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
write_report(path, {"schema_version": "1.0", "status": "failed" if failed else "passed",
                    "started_at": started, "finished_at": finished, "failed_gate": failed,
                    "gates": gates}, schema="production-validation-report.schema.json")
PY
}

for gate in $selected; do
  case "$gate" in
    lint | types | reliability | audit) ;;
    *)
      echo "production-validation: unknown gate '$gate' (known: lint types reliability audit)" >&2
      exit 2
      ;;
  esac
done

for gate in lint types reliability audit; do
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
