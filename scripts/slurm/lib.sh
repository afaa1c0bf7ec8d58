# Sourced by the scripts of scripts/slurm/, from the repository root.

# `npm run experiments` as package.json states it, to run without npm in between: npm does not
# pass SIGINT or SIGTERM on to the command.
read -r -a EXPERIMENTS_CMD <<<"$(node -p 'require("./package.json").scripts.experiments')"

# run_experiments ARGS…: "${EXPERIMENTS_CMD[@]}" ARGS… in the background, so that this shell, the
# one Slurm signals (--signal=B:INT@120 signals the batch shell alone), can forward INT and TERM
# to it: the run in progress stops at its next step and keeps its saved epochs. Sets STOPPED_BY
# (INT, TERM or empty) and returns the command's exit status (130 / 143 when stopped).
run_experiments() {
  STOPPED_BY=''
  "${EXPERIMENTS_CMD[@]}" "$@" &
  DCF_CHILD=$!
  trap 'STOPPED_BY=INT; kill -INT "$DCF_CHILD" 2>/dev/null' INT
  trap 'STOPPED_BY=TERM; kill -TERM "$DCF_CHILD" 2>/dev/null' TERM
  local rc=0
  wait "$DCF_CHILD" || rc=$?
  # A trapped signal ends `wait` early: wait on while the run finishes its step and exits.
  while [ -n "$STOPPED_BY" ] && kill -0 "$DCF_CHILD" 2>/dev/null; do
    rc=0
    wait "$DCF_CHILD" || rc=$?
  done
  trap - INT TERM
  return "$rc"
}
