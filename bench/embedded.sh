#!/usr/bin/env bash
# bench/embedded.sh -- the embedded render (`stemfarm render`, no --farm)
# against the least any render of the session must do: read its source bytes,
# here from the page cache. bench/README.md explains the numbers.
#
#   bench/embedded.sh                        96 tracks x 120 s, 8 stems, median of 3
#   RUNS=5 NODES=2 bench/embedded.sh         settings come from the environment:
#
#   RUNS    3       runs of each measurement, interleaved; the median is reported
#   TRACKS  96      mono 24-bit tracks in the generated session
#   LENGTH  120     their length in seconds
#   STEMS   8       stems (TRACKS / STEMS tracks each)
#   RATE    48000   sample rate
#   NODES   (unset) --nodes for stemfarm render; unset: its default, one per core
#   SEGMENT (unset) --segment for stemfarm render (e.g. 30s); unset: its default
#   BUILD   build   the CMake build folder (configured as Release if absent)
#
# The session is generated once into bench/work/ (git-ignored) and reused.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
TRACKS=${TRACKS:-96}
LENGTH=${LENGTH:-120}
STEMS=${STEMS:-8}
RATE=${RATE:-48000}
NODES=${NODES:-}
SEGMENT=${SEGMENT:-}
BUILD=${BUILD:-build}

. bench/lib.sh
for v in RUNS TRACKS STEMS RATE; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a whole number above 0, got '${!v}'"
done
[[ $LENGTH =~ ^[0-9]+([.][0-9]+)?$ ]] || die "LENGTH must be a number of seconds, got '$LENGTH'"
[[ -z $NODES || $NODES =~ ^[1-9][0-9]*$ ]] || die "NODES must be a whole number above 0, got '$NODES'"

bench_build
bench_session "$TRACKS" "$LENGTH" "$STEMS" "$RATE"
work=bench/work
out=$work/out
sources=("$dir"/media/*.wav)

# ---- how to render ----------------------------------------------------------
render_args=(render "$session" -o "$out")
if "$stemfarm" --help 2>&1 | grep -q -- '--force'; then
  render_args+=(--force)
  force=1
else
  force=0 # no --force yet: remove the delivery folder before each run (untimed)
fi
[ -n "$NODES" ] && render_args+=(--nodes "$NODES")
[ -n "$SEGMENT" ] && render_args+=(--segment "$SEGMENT")

# ---- measure: render and read, interleaved ----------------------------------
cat "${sources[@]}" >/dev/null # warm-up: both measurements read from the page cache
rm -rf "$out"                  # no stems of another bench configuration in the count
log=$work/render.log
render_s=()
read_s=()
printf '\n%-6s %12s %12s\n' run render_s read_s
for ((i = 1; i <= RUNS; i++)); do
  [ "$force" = 1 ] || rm -rf "$out"
  t=$(now)
  rc=0
  "$stemfarm" "${render_args[@]}" >"$log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    tail -n 20 "$log" >&2
    die "render failed with exit status $rc (the end of its output is above, all of it in $log)"
  fi
  render_s+=("$(since "$t")")
  t=$(now)
  cat "${sources[@]}" >/dev/null
  read_s+=("$(since "$t")")
  printf '%-6s %12s %12s\n' "$i" "${render_s[-1]}" "${read_s[-1]}"
done

# ---- report -----------------------------------------------------------------
render_med=$(median "${render_s[@]}")
read_med=$(median "${read_s[@]}")
bytes_in=$(bytes "${sources[@]}")
mapfile -t delivered < <(find "$out" -maxdepth 1 -type f ! -name manifest.json | sort)
bytes_out=$(bytes "${delivered[@]}")

awk -v n="$TRACKS" -v s="$LENGTH" -v k="$STEMS" -v r="$RATE" -v runs="$RUNS" \
  -v nodes="${NODES:-default (one per core)}" -v segment="${SEGMENT:-default}" -v cores="$(nproc)" \
  -v wall="$render_med" -v rd="$read_med" -v bin="$bytes_in" -v bout="$bytes_out" \
  -v nfiles="${#delivered[@]}" -v session="$session" '
function row(label, value, note) { printf "  %-22s %-10s %s\n", label, value, note }
function size(b) { return b >= 1e9 ? sprintf("%.2f GB", b / 1e9) : sprintf("%.1f MB", b / 1e6) }
BEGIN {
  printf "\nstemfarm embedded render: %s\n", session
  row("machine", cores " cores", "--nodes " nodes ", --segment " segment "; median of " runs " interleaved runs")
  row("audio in", n * s " s", sprintf("track-seconds: %d tracks x %g s, %s of mono 24-bit at %d Hz", n, s, size(bin), r))
  row("stems out", k * s " s", sprintf("stem-seconds: %d stems x %g s, %d files, %s", k, s, nfiles, size(bout)))
  row("render wall time", sprintf("%.3f s", wall), "median; all stems written, read back and verified")
  row("realtime factor", sprintf("%.1fx", s / wall), "session seconds per wall second")
  row("track-seconds / s", sprintf("%.0f", n * s / wall), "tracks x seconds mixed per wall second")
  row("stem-seconds / s", sprintf("%.0f", k * s / wall), "stems x seconds delivered per wall second")
  row("read from page cache", sprintf("%.3f s", rd), sprintf("median; cat of the same sources (%.2f GB/s)", bin / rd / 1e9))
  row("render / read", sprintf("%.1fx", wall / rd), "render wall time over reading its sources")
  printf "\nbench: tracks=%d seconds=%g stems=%d rate=%d runs=%d render_s=%.3f read_s=%.3f ratio=%.1f\n", n, s, k, r, runs, wall, rd, wall / rd
}'
