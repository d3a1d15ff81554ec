#!/usr/bin/env bash
# Backup gate: back up a throwaway database filled like production (audit events, idempotency
# records, kill switches), validate the backup, restore it into a throwaway cluster (drill), and
# write the gate's JSON result. Exit 0 when all three pass, 1 otherwise.
#
# Settings (environment):
#   BACKUP_GATE_REPORT   result path (default: <repo>/reports/backup-gate.json)
#   PYTHON               interpreter (default: python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
out="${BACKUP_GATE_REPORT:-$root/reports/backup-gate.json}"
scratch="$(mktemp -d)"
url=""
cleanup() {
  if [ -n "$url" ]; then "$python" -m harness.backup_drill drop-db "$url" || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

cli() { "$python" -m pytest_reliability backup "$@"; }

status=failed
url="$("$python" -m harness.backup_drill create-db)"
"$python" -m harness.backup_drill populate "$url" >"$scratch/populated.json"
if cli create --database-url "$url" --directory "$scratch/backups" --reason "ci backup gate" \
  --actor ci >"$scratch/create.txt"; then
  archive="$(cli list --database-url "$url" --directory "$scratch/backups" --actor ci |
    awk 'NR == 1 { print $3 }')"
  if cli validate --json "$scratch/backups/$archive" >"$scratch/validation.json" &&
    cli drill --json "$scratch/backups/$archive" >"$scratch/drill.json"; then
    status=passed
  fi
fi
"$python" -m harness.backup_drill report "$out" "$status" \
  "$scratch/populated.json" "$scratch/validation.json" "$scratch/drill.json"
echo "backup-validation: $status; result $out"
[ "$status" = passed ]
