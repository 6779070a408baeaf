# Shell functions the benchmark scripts share; sourced, with $B set to the directory of the
# release binaries.

# wait_for FILE TEXT [SECS]: waits up to SECS (10) s for TEXT to appear in FILE.
wait_for() { for _ in $(seq $(( ${3:-10} * 10 ))); do grep -q "$2" "$1" && return; sleep 0.1; done; }

# start_spindle LOG ARGS...: starts `$B/spindle serve ARGS...` (or `$SPINDLE serve ...` where
# SPINDLE names a binary) in the background, its output in LOG, sets SERVER to its pid and
# returns once it is ready (or after 10 s).
start_spindle() {
  local log=$1; shift
  "${SPINDLE:-$B/spindle}" serve "$@" > "$log" 2>&1 &
  SERVER=$!
  wait_for "$log" "spindle ready"
}
