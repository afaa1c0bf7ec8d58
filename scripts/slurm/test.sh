#!/usr/bin/env bash
# npm run test:slurm: the Slurm workflow of this folder against a real Slurm, on this machine.
#
# Installs slurm-wlm and munge when missing (apt-get, as root), starts its own munged, slurmctld
# and slurmd for localhost from a generated config in a temporary folder (own socket and ports,
# no cgroups: proctrack/linuxproc, task/none), and submits a quick suite of three tiny runs of
# five epochs with submit.sh. Mid-run, one task is requeued (scontrol requeue: SIGTERM) and one
# gets SIGINT in its batch shell alone (what --signal=B:INT@120 sends before the time limit: the
# task requeues itself). Once the record job has run, it checks that every run finished exactly
# once, each epoch written once, the stopped runs resumed from a saved epoch, and the recorded
# tables (in the temporary folder: never results/ or docs/results.md) hold every run once.
# The daemons and jobs it started are stopped on every exit; on failure their logs are printed and
# the temporary folder is kept (DCF_SLURM_TEST_KEEP=1 keeps it on success too).
set -euo pipefail
cd "$(dirname "$0")/../.."

SUITE_ARGS=(--suite lab --quick --epochs 5 --only lab-dynamic-s0,lab-static-s0,frozen-eval)
TIMEOUT_S=${DCF_SLURM_TEST_TIMEOUT:-600}
say() { echo "test:slurm: $*" >&2; }
fail() {
  say "FAILED: $*"
  exit 1
}

[ "$(id -u)" -eq 0 ] || fail "needs root: slurmd runs as root (CI runs as root); nothing was started"

# ---- Slurm and munge ---------------------------------------------------------------------------
missing=''
for c in slurmctld slurmd sbatch scontrol munged; do command -v "$c" >/dev/null || missing+=" $c"; done
if [ -n "$missing" ]; then
  say "installing slurm-wlm and munge (apt-get): missing$missing"
  # Keep apt from starting the packages' own daemons on the system-wide config: this test starts its own.
  guard=''
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
  fi
  installed=0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends slurm-wlm munge && installed=1
  [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
  [ "$installed" = 1 ] || fail 'apt-get could not install slurm-wlm and munge'
fi

# ---- a one-node cluster in a temporary folder ---------------------------------------------------
TMP=$(mktemp -d /tmp/dcf-slurm-test.XXXXXX)
chmod 755 "$TMP" # munged wants its socket's folders searchable by all
mkdir -p "$TMP/munge" "$TMP/slurm/state" "$TMP/slurm/spool" "$TMP/logs"
export SLURM_CONF=$TMP/slurm/slurm.conf
STARTED=()

stop_pidfile() { # stops the daemon of pid file $1: TERM, then KILL after 10 s
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ] && [ ${#STARTED[@]} -gt 0 ]; then
    say "failed (exit $rc); the jobs and the daemons' logs follow"
    squeue -a -t all -o '%i %T %r %M' 2>&1
    for f in "$TMP"/logs/* "$TMP"/slurm/slurmctld.log "$TMP"/slurm/slurmd.log "$TMP"/munge/munged.log; do
      [ -f "$f" ] && { echo "==== $f (last 60 lines)"; tail -n 60 "$f"; }
    done
  fi
  if [[ " ${STARTED[*]-} " == *" slurmctld "* ]]; then
    scancel --full --quiet --user="$(id -un)" 2>/dev/null
    for _ in $(seq 1 50); do [ -z "$(squeue -h -t running,completing 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  for d in slurmd slurmctld; do [[ " ${STARTED[*]-} " == *" $d "* ]] && stop_pidfile "$TMP/slurm/$d.pid"; done
  [[ " ${STARTED[*]-} " == *" munged "* ]] && stop_pidfile "$TMP/munge/munged.pid"
  # A job's process that outlived its slurmstepd (none expected): its command line names $TMP.
  for f in /proc/[0-9]*/cmdline; do
    grep -qaF -- "$TMP/results" "$f" 2>/dev/null && kill -9 "${f//[^0-9]/}" 2>/dev/null
  done
  if [ "$rc" -eq 0 ] && [ -z "${DCF_SLURM_TEST_KEEP-}" ]; then rm -rf "$TMP"; else say "kept $TMP for a look"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "cluster in $TMP"
if command -v mungekey >/dev/null; then
  mungekey --create --keyfile="$TMP/munge/munge.key"
else
  dd if=/dev/urandom of="$TMP/munge/munge.key" bs=1024 count=1 status=none
fi
chmod 600 "$TMP/munge/munge.key"
munged --socket="$TMP/munge/munge.sock" --key-file="$TMP/munge/munge.key" --pid-file="$TMP/munge/munged.pid" \
  --log-file="$TMP/munge/munged.log" --seed-file="$TMP/munge/munged.seed"
STARTED+=(munged)

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
host=$(uname -n)
host=${host%%.*} # slurmd finds its node by the short host name
cat >"$SLURM_CONF" <<EOF
ClusterName=dcftest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket=$TMP/munge/munge.sock,cred_expire=10
StateSaveLocation=$TMP/slurm/state
SlurmdSpoolDir=$TMP/slurm/spool
SlurmctldPidFile=$TMP/slurm/slurmctld.pid
SlurmdPidFile=$TMP/slurm/slurmd.pid
SlurmctldLogFile=$TMP/slurm/slurmctld.log
SlurmdLogFile=$TMP/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
JobRequeue=1
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF"
STARTED+=(slurmctld)
slurmd -f "$SLURM_CONF"
STARTED+=(slurmd)
for _ in $(seq 1 150); do [ "$(sinfo -h -o %t 2>/dev/null)" = idle ] && break; sleep 0.2; done
[ "$(sinfo -h -o %t)" = idle ] || fail "the node did not come up idle: $(sinfo 2>&1)"
say "slurmctld and slurmd up ($(sinfo -h -o '%D node, %c CPUs'))"

# ---- the suite, as a user submits it ------------------------------------------------------------
. scripts/slurm/lib.sh
RESULTS=$TMP/results
RECORD_DIR=$TMP/recorded
repo_state() { # what the test must not change: the repository's results/ and docs/results.md
  git status --porcelain -- results docs/results.md
  find results/recorded docs/results.md -type f -exec sha1sum {} + | sort
}
before=$(repo_state)
# The runs in --list's order, which --index follows (its first column, from the third line to a blank one).
mapfile -t NAMES < <("${EXPERIMENTS_CMD[@]}" "${SUITE_ARGS[@]}" --results-dir "$RESULTS" --list |
  awk 'NR > 2 && NF == 0 { exit } NR > 2 { print $1 }')
[ "${#NAMES[@]}" -ge 3 ] || fail "expected three or more experiments, --list printed: ${NAMES[*]-}"
mapfile -t IDS < <(scripts/slurm/submit.sh "${SUITE_ARGS[@]}" --parallel 2 --cpus 1 --logs "$TMP/logs" \
  --results-dir "$RESULTS" --record-dir "$RECORD_DIR" --note 'npm run test:slurm')
ARRAY=${IDS[0]}
RECORD=${IDS[1]}
say "array job $ARRAY (${NAMES[*]}), record job $RECORD"

state() { scontrol show job "$1" -o 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1 | cut -d= -f2; }
deadline=$((SECONDS + TIMEOUT_S))
# Once its first epoch is saved: task 0 is requeued (SIGTERM to all its processes), task 1's batch
# shell alone gets SIGINT, as from --signal=B:INT@120 before a time limit.
declare -A SENT=()
while [ ${#SENT[@]} -lt 2 ]; do
  [ $SECONDS -lt $deadline ] || fail 'timed out waiting for the first epochs'
  for task in 0 1; do
    [ -z "${SENT[$task]-}" ] && [ -f "$RESULTS/runs/${NAMES[$task]}/metrics/epochs-e0001-s001.parquet" ] || continue
    [ "$(state "${ARRAY}_$task")" = RUNNING ] ||
      fail "task $task (${NAMES[$task]}) is no longer running after its first epoch: too fast to stop mid-run?"
    if [ "$task" = 0 ]; then
      scontrol requeue "${ARRAY}_$task"
      say "requeued task 0 (${NAMES[0]}) after its first epoch"
    else
      scancel --batch --signal=INT "${ARRAY}_$task"
      say "sent SIGINT to task 1's batch shell (${NAMES[1]}) after its first epoch"
    fi
    SENT[$task]=1
  done
  sleep 0.2
done

while :; do
  s=$(state "$RECORD")
  case "$s" in
    COMPLETED) break ;;
    PENDING | RUNNING | CONFIGURING | COMPLETING | REQUEUED) ;;
    *) fail "the record job ended $s" ;;
  esac
  [ $SECONDS -lt $deadline ] || fail "timed out after ${TIMEOUT_S} s waiting for the record job (state $s)"
  sleep 1
done
say "record job done after ${SECONDS} s"

# ---- checks -------------------------------------------------------------------------------------
for task in "${!NAMES[@]}"; do
  s=$(state "${ARRAY}_$task")
  [ "$s" = COMPLETED ] || fail "task $task ended $s"
done
logs_of() { cat "$TMP/logs/dcf-run-${ARRAY}_$1.out"; }
logs_of 0 | grep -q "^run ${NAMES[0]} interrupted (SIGTERM)" || fail "task 0's log has no SIGTERM interruption"
logs_of 1 | grep -q "^run ${NAMES[1]} interrupted (SIGINT)" || fail "task 1's log has no SIGINT interruption"
logs_of 1 | grep -q '^stopped before the time limit: requeueing task 1' || fail 'task 1 did not requeue itself'
for task in "${!NAMES[@]}"; do
  n=$(cat "$TMP"/logs/dcf-run-* | grep -c "^run ${NAMES[$task]}: trained epochs" || true)
  [ "$n" -eq 1 ] || fail "${NAMES[$task]} finished $n times, not once"
done
node --import tsx scripts/slurm/check-test.ts "$RESULTS" "$RECORD_DIR" lab "${NAMES[@]:0:2}" -- "${NAMES[@]}" ||
  fail 'the runs or the recorded tables are not as they should be'
[ "$(repo_state)" = "$before" ] || fail "the repository's results/ or docs/results.md changed"
say "passed: ${#NAMES[@]} runs, two stopped mid-run and resumed, each finished once and recorded (${SECONDS} s)"
