#!/usr/bin/env bash
# Submits a suite to Slurm: one array task per experiment (run.sbatch), then the record step
# (record.sbatch) once every task has succeeded. Run it on a login node from a set-up checkout on
# storage the compute nodes share; see docs/cluster.md.
set -euo pipefail
usage() {
  cat <<'USAGE'
usage: scripts/slurm/submit.sh [--suite S] [--parallel K] [--cpus C] [--logs DIR]
                               [experiments options…] [--record-dir DIR] [--note TEXT] [--commit SHA]

  --suite S          the suite (default lab, as npm run experiments); its --count sets --array=0-(count−1)
  --parallel K       at most K tasks at a time (--array=…%K; default 8)
  --cpus C           CPUs per task (--cpus-per-task; default 2)
  --logs DIR         the jobs' output files (default results/slurm-logs)
  --record-dir, --note, --commit   go to the record step's --record alone
  anything else      goes to every npm run experiments call (--quick, --epochs, --only, --results-dir …)

Other sbatch settings through sbatch's environment: SBATCH_PARTITION, SBATCH_TIMELIMIT,
SBATCH_ACCOUNT, … Prints the array job's id and the record job's id, one per line.
USAGE
}
cd "$(dirname "$0")/../.."
parallel=8
cpus=2
logs=results/slurm-logs
suite_args=()
record_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --parallel | --cpus | --logs | --record-dir | --note | --commit)
      [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; usage >&2; exit 2; }
      case "$1" in
        --parallel) parallel=$2 ;;
        --cpus) cpus=$2 ;;
        --logs) logs=$2 ;;
        *) record_args+=("$1" "$2") ;;
      esac
      shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) suite_args+=("$1"); shift ;;
  esac
done
for n in "$parallel" "$cpus"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "error: --parallel and --cpus need a whole number ≥ 1; got '$n'" >&2; exit 2; }
done
. scripts/slurm/lib.sh

# The count as the runner sees it (which also checks the options: a bad one stops here, unsubmitted).
count=$("${EXPERIMENTS_CMD[@]}" "${suite_args[@]}" --count)
[ "$count" -gt 0 ] || { echo "error: the selection has no experiments" >&2; exit 2; }
mkdir -p "$logs"
array=$(sbatch --parsable --chdir="$PWD" --array="0-$((count - 1))%$parallel" --cpus-per-task="$cpus" \
  --output="$logs/%x-%A_%a.out" scripts/slurm/run.sbatch "${suite_args[@]}")
array=${array%%;*}
record=$(sbatch --parsable --chdir="$PWD" --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  --cpus-per-task="$cpus" --output="$logs/%x-%j.out" \
  scripts/slurm/record.sbatch "${suite_args[@]}" -- "${record_args[@]}")
record=${record%%;*}
echo "submitted $count task(s) as array job $array (at most $parallel at a time, $cpus CPU(s) each)," \
  "then record job $record; logs in $logs/" >&2
echo "$array"
echo "$record"
