#!/usr/bin/env bash
# bench/effects.sh -- the cost of effects: one session rendered with effects
# off and with them on (high-pass, two EQ bands and a compressor on every
# track; every other track sends to a reverb bus; the routing is the same in
# both), measured in the same run, interleaved. bench/README.md explains it.
#
#   bench/effects.sh                 200 tracks x 60 s, 8 stems, median of 3
#   RUNS=5 LENGTH=120 bench/effects.sh
#
#   RUNS 3, TRACKS 200, LENGTH 60, STEMS 8, RATE 48000, NODES (default), BUILD build
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
TRACKS=${TRACKS:-200}
LENGTH=${LENGTH:-60}
STEMS=${STEMS:-8}
RATE=${RATE:-48000}
NODES=${NODES:-}
BUILD=${BUILD:-build}
. bench/lib.sh
for v in RUNS TRACKS STEMS RATE; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a whole number above 0, got '${!v}'"
done
[[ $LENGTH =~ ^[0-9]+([.][0-9]+)?$ ]] || die "LENGTH must be a number of seconds, got '$LENGTH'"

bench_build
bench_session "$TRACKS" "$LENGTH" "$STEMS" "$RATE" --fx
# shellcheck disable=SC2034  # read through ${!which}
plain=$session
fx=$dir/session-fx.yaml
out=bench/work/out-fx
common=(--force)
[ -n "$NODES" ] && common+=(--nodes "$NODES")

cat "$dir"/media/*.wav >/dev/null # both renders read from the page cache
plain_s=()
fx_s=()
printf '\n%-6s %12s %12s\n' run plain_s fx_s
for ((i = 1; i <= RUNS; i++)); do
  for which in plain fx; do
    t=$(now)
    "$stemfarm" render "${!which}" -o "$out-$which" "${common[@]}" >"$out-$which.log" 2>&1 ||
      die "the $which render failed: see $out-$which.log"
    if [ "$which" = plain ]; then plain_s+=("$(since "$t")"); else fx_s+=("$(since "$t")"); fi
  done
  printf '%-6s %12s %12s\n' "$i" "${plain_s[-1]}" "${fx_s[-1]}"
done

plain_med=$(median "${plain_s[@]}")
fx_med=$(median "${fx_s[@]}")
awk -v n="$TRACKS" -v s="$LENGTH" -v k="$STEMS" -v runs="$RUNS" -v cores="$(nproc)" \
  -v plain="$plain_med" -v fx="$fx_med" -v session="$fx" '
function row(label, value, note) { printf "  %-24s %-10s %s\n", label, value, note }
BEGIN {
  printf "\nstemfarm effects bench: %s\n", session
  row("session", n " tracks", sprintf("%g s, %d stems; hp + 2 EQ + compressor per track, half send to a reverb", s, k))
  row("effects off", sprintf("%.3f s", plain), sprintf("median of %d; %.1fx realtime, %.1fx per core", runs, s / plain, s / plain / cores))
  row("effects on", sprintf("%.3f s", fx), sprintf("median of %d; %.1fx realtime, %.1fx per core", runs, s / fx, s / fx / cores))
  row("effects on / off", sprintf("%.2fx", fx / plain), "wall time ratio, same run")
  printf "\nbench: tracks=%d seconds=%g stems=%d runs=%d plain_s=%.3f fx_s=%.3f ratio=%.2f\n", n, s, k, runs, plain, fx, fx / plain
}'
