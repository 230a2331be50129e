#!/usr/bin/env bash
# bench/coordinator.sh -- what one coordinator sustains on its own: 64
# simulated nodes (bench/simnodes.c) answer every job at once with silence,
# so everything measured is the coordinator's work (leases, checks, journal,
# stitching, writing the files).
#
#   bench/coordinator.sh                 # NODES=64 LENGTH=1200 (seconds)
#   MEASURE=small bench/coordinator.sh   # only one measurement (small or big), e.g. to profile it:
#                                        # the coordinator's pid is in bench/work/*/coordinator.pid
#
# Two renders of one session (2 mono tracks -> 2 stems + the null-test
# reference, LENGTH seconds long) through `stemfarm coordinator` on loopback:
#   jobs/s   with 0.05 s segments (many small jobs: the per-job cost)
#   GB/s     with 10 s segments (few large ones: the ingest of frames to disk)
# measured from the first landed job to the last, as the client's --json
# progress events time them. Prints a table and the targets beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${NODES:-64}
MEASURE=${MEASURE:-small big}
SECONDS_LONG=${LENGTH:-1200}
BUILD=${BUILD:-build}
[ -d "$BUILD" ] || cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target stemfarm stemfarm-gen stemfarm-simnodes >/dev/null
# WORK: where the session, the state folder and the stems go (on tmpfs, e.g.
# /dev/shm/sf-coordinator, the numbers say what the coordinator sustains
# without the disk)
work=${WORK:-bench/work/coordinator-t2-s$SECONDS_LONG}
[ -f "$work/session/session.yaml" ] ||
  "$BUILD/stemfarm-gen" bench "$work/session" --tracks 2 --seconds "$SECONDS_LONG" --stems 2 >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf "$work/state" "$work/out-"*
"$BUILD/stemfarm" coordinator --bind "tcp://127.0.0.1:$port" --state "$work/state" --http off \
  --spot-check 0 > "$work/coordinator.log" 2>&1 &
coord=$!
echo "$coord" > "$work/coordinator.pid"
"$BUILD/stemfarm-simnodes" --connect "tcp://127.0.0.1:$port" --nodes "$NODES" 2> "$work/simnodes.log" &
sim=$!
trap 'kill $coord $sim 2>/dev/null || true' EXIT
sleep 1

# run SEGMENT NAME: one render; prints "jobs seconds bytes" of the landing window
run() {
  "$BUILD/stemfarm" render "$work/session/session.yaml" --farm "tcp://127.0.0.1:$port" -o "$work/out-$2" \
    --segment "$1" --json --force > "$work/events-$2.jsonl"
  python3 - "$work/events-$2.jsonl" <<'PY'
import json, sys
first = last = None
total = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "progress" and e["jobs_done"] > 0:
        if first is None:
            first = (e["elapsed_s"], e["jobs_done"])
        last = (e["elapsed_s"], e["jobs_done"])
        total = e["jobs_total"]
jobs = last[1] - first[1]
print(jobs, max(last[0] - first[0], 1e-9), total)
PY
}
jobs_per_s=- gb_per_s=- jobs_small=- jobs_big=-
if [[ " $MEASURE " == *" small "* ]]; then
  read -r jobs_small secs_small _ < <(run 0.05s small)
  jobs_per_s=$(python3 -c "print(round($jobs_small / $secs_small))")
fi
if [[ " $MEASURE " == *" big "* ]]; then
  read -r jobs_big secs_big total_big < <(run 10s big)
  # frames landed in the big run: 3 targets, stereo, float32
  bytes=$(python3 -c "print(3 * $SECONDS_LONG * 48000 * 2 * 4 * $jobs_big / $total_big)")
  gb_per_s=$(python3 -c "print(round($bytes / $secs_big / 1e9, 2))")
fi
echo "coordinator alone, $NODES simulated nodes, $(nproc) cores ($(date -u +%Y-%m-%d))"
printf '%-34s %12s %10s\n' "measure" "result" "target"
printf '%-34s %12s %10s\n' "jobs/s (0.05 s segments)" "$jobs_per_s" ">= 5000"
printf '%-34s %12s %10s\n' "ingest GB/s (10 s segments)" "$gb_per_s" ">= 1"
printf '%-34s %12s\n' "jobs in the window (small, big)" "$jobs_small, $jobs_big"
