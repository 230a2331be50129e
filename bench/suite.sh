#!/usr/bin/env bash
# bench/suite.sh -- stemfarm against what users would script instead (sox,
# ecasound, ffmpeg, a plain C mixer), against the machine's physical limits,
# across nodes and a farm, plus the coordinator alone and memory over session
# length: one table with the targets beside the numbers. bench/README.md
# explains every row.
#
#   bench/suite.sh                   the full run (about 30 minutes on 2 cores)
#   bench/suite.sh --quick           RUNS=1, short sessions: to try it out
#   bench/suite.sh --install-peers   apt-get install sox ecasound ffmpeg, then exit
#   SESSIONS="a b" RUNS=5 bench/suite.sh
#
#   SESSIONS   "a b c d long"  which parts run:
#              a     96 mono tracks x 120 s, gain + pan, 8 stems
#              b     the same with high-pass + peaking EQ + compressor per track
#              c     256 tracks x 180 s, b's chain plus sends to two reverbs
#                    (pre-roll overhead, a farm render, memory)
#              d     a real-material session from configs/, when there is one
#              long  memory of a session of 3 hours (short sources as clips)
#   RUNS       3     interleaved repetitions of a and b (medians reported)
#   SCALE_RUNS 1     repetitions of the scaling renders (--nodes 1, the farm)
#   COORD      1     0 skips bench/coordinator.sh
#   BUILD      build the CMake build folder (configured as Release if absent)
#
# Sessions are generated once into bench/work/ (git-ignored) and reused; the
# farm listens on 127.0.0.1 only, and everything started here is stopped on
# exit.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
quick=0
install=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --install-peers) install=1 ;;
    -h | --help) usage && exit 0 ;;
    *) echo "bench: error: unknown argument '$arg' (see bench/suite.sh --help)" >&2 && exit 2 ;;
  esac
done

BUILD=${BUILD:-build}
# shellcheck source=bench/lib.sh disable=SC1091  # shellcheck -x follows it
. bench/lib.sh

peers=(sox ecasound ffmpeg)

install_peers() {
  local missing=() p sudo=()
  for p in "${peers[@]}"; do
    command -v "$p" >/dev/null || missing+=("$p")
  done
  if [ ${#missing[@]} = 0 ]; then
    echo "bench: sox, ecasound and ffmpeg are installed"
    return 0
  fi
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  echo "bench: installing ${missing[*]} with apt-get"
  # an old package list can name versions the mirror no longer has
  "${sudo[@]}" apt-get install -y "${missing[@]}" ||
    { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y "${missing[@]}"; }
}
if [ "$install" = 1 ]; then
  install_peers
  exit
fi

# ---- settings -----------------------------------------------------------------
if [ "$quick" = 1 ]; then
  RUNS=${RUNS:-1}
  AB_TRACKS=96 AB_SECONDS=15 C_TRACKS=64 C_SECONDS=20
  LONG_TRACKS=4 LONG_STEMS=2 LONG_SOURCE=60 LONG_SECONDS=1800 COORD_LENGTH=${COORD_LENGTH:-60}
else
  RUNS=${RUNS:-3}
  AB_TRACKS=96 AB_SECONDS=120 C_TRACKS=256 C_SECONDS=180
  # 3 hours of 4 tracks: the shape stays small so that the render fits the
  # time budget; only its length is under test
  LONG_TRACKS=4 LONG_STEMS=2 LONG_SOURCE=600 LONG_SECONDS=10800 COORD_LENGTH=${COORD_LENGTH:-300}
fi
SESSIONS=${SESSIONS:-a b c d long}
SCALE_RUNS=${SCALE_RUNS:-1}
# the long session's segment: with the default (10 s) its 3 hours are 3240
# jobs, and each job's fixed cost alone takes minutes; both of its renders
# use the same segment, so the comparison of lengths holds (empty: default)
LONG_SEGMENT=${LONG_SEGMENT-60s}
COORD=${COORD:-1}
STEMS=8
RATE=48000
for v in RUNS SCALE_RUNS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a whole number above 0, got '${!v}'"
done
for s in $SESSIONS; do
  case $s in a | b | c | d | long) ;; *) die "SESSIONS: unknown session '$s' (a b c d long)" ;; esac
done
want() { [[ " $SESSIONS " == *" $1 "* ]]; }

work=bench/work
out=$work/suite-out
logs=$work/suite-logs
rm -rf "$logs"
mkdir -p "$out" "$logs"
cores=$(nproc)
say() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*"; }
suite_t0=$(now)

# ---- processes we start: stopped on exit ---------------------------------------
started=()
cleanup() {
  local p
  for p in "${started[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${started[@]}"; do
    wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build and generate --------------------------------------------------------
say "building stemfarm and the bench tools in $BUILD"
bench_build
cmake --build "$BUILD" -j"$cores" --target stemfarm-node stemfarm-plainmix stemfarm-compare stemfarm-triad \
  >/dev/null || die "build of the bench tools failed"
node_bin=$BUILD/stemfarm-node
plainmix=$BUILD/stemfarm-plainmix
compare=$BUILD/stemfarm-compare

# gen_dir NAME TRACKS SECONDS STEMS [generator options]: generates once, sets $gdir
gen_dir() {
  local name=$1 tracks=$2 seconds=$3 stems=$4
  shift 4
  gdir=$work/suite-$name-t$tracks-s$seconds-k$stems
  # written last by the generator: present means complete, with every variant asked for
  if [ ! -f "$gdir/session.yaml" ] || [ "$(cat "$gdir/options" 2>/dev/null)" != "$*" ]; then
    local need_mb free_mb
    need_mb=$(awk -v n="$tracks" -v s="$seconds" 'BEGIN { printf "%d", n * s * 48000 * 3 * 1.05 / 1e6 + 1 }')
    free_mb=$(df -Pm "$work" | awk 'NR == 2 { print $4 }')
    [ "$free_mb" -ge "$need_mb" ] || die "bench/work needs $need_mb MB for $gdir, $free_mb MB free"
    say "generating $gdir (once; later runs reuse it)"
    rm -rf "$gdir"
    "$gen" bench "$gdir" --tracks "$tracks" --seconds "$seconds" --stems "$stems" "$@" >/dev/null
    printf '%s\n' "$*" >"$gdir/options"
  fi
}

# ---- what a peer is given: the session's stems as lists ------------------------
# lists DIR ID: from DIR/session.yaml, $out/lists/ID/ gets `plain` (the
# plain mixer's list), names (stem names, one a line) and K.tracks per stem
# K (source, linear gain L, R, and both in percent for ecasound). The pan law
# is stemfarm's: L = cos(q pi/2), R = sin(q pi/2), q = (pan + 1)/2, times
# 10^(gain_db/20); printed with 17 digits, so the coefficients are stemfarm's
# doubles.
lists() {
  local d=$1 l=$out/lists/$2
  rm -rf "$l" && mkdir -p "$l"
  awk -v media="$d/media" -v l="$l" '
    match($0, /^  - \{name: S[0-9]+ T[0-9]+, source: [^,]+, gain_db: [-+0-9.]+, pan: [-+0-9.]+/) {
      split(substr($0, RSTART, RLENGTH), f, /, /)
      stem = f[1]; sub(/.*name: S/, "", stem); sub(/ .*/, "", stem)
      src = f[2]; sub(/source: /, "", src)
      g = f[3]; sub(/gain_db: /, "", g)
      p = f[4]; sub(/pan: /, "", p)
      if (!(stem in k)) { k[stem] = ++n; printf "Stem %s\n", stem > (l "/names"); printf "stem Stem %s\n", stem > (l "/plain") }
      a = 10 ^ (g / 20); q = (1 + p) / 2; pi = atan2(0, -1)
      gl = a * cos(q * pi / 2); gr = a * sin(q * pi / 2)
      printf "%s/%s %.17g %.17g %.12f %.12f\n", media, src, gl, gr, 100 * gl, 100 * gr > (l "/" k[stem] ".tracks")
      printf "track %s/%s %s %s\n", media, src, g, p > (l "/plain")
    }' "$d/session.yaml"
  [ -s "$l/names" ] || die "no tracks found in $d/session.yaml"
}

# The chains, as each tool spells stemfarm's (configs/generate.c,
# k_bench_strip): highpass 80 Hz q 0.707, peak 2500 Hz +2 dB q 1 (both RBJ
# cookbook in all three), compressor threshold -24 dB, ratio 3, attack 10 ms,
# release 120 ms. Only the EQ is the same processing everywhere: sox's
# compand, ecasound's -ec and ffmpeg's acompressor are other compressor
# designs, and ecasound has no peaking EQ built in.
sox_eq="highpass 80 0.707q equalizer 2500 1q 2"
sox_comp="compand 0.01,0.12 -90,-90,-24,-24,0,-16"
# shellcheck disable=SC2054  # ecasound's commas
eca_strip=(-efh:80 -ec:3,0.063)
ff_eq="highpass=f=80:t=q:w=0.707,equalizer=f=2500:t=q:w=1:g=2,"
ff_comp="acompressor=threshold=0.0630957:ratio=3:attack=10:release=120:detection=peak:knee=1,"
pm_eq=(--hp 80:0.707 --peak 2500:2:1)
pm_comp=(--comp -24:3:10:120)

# sox_stem LIST K CHAIN DIR: one stem, one sox process (plus one per track
# for a chain: sox applies effects after its inputs are combined)
sox_stem() {
  local ins=() l="" r="" i=0 p gl gr name
  name=$(sed -n "$2p" "$1/names")
  while read -r p gl gr _; do
    i=$((i + 1))
    case $3 in
      none) ins+=("$p") ;;
      eq) ins+=("|sox -D $p -p $sox_eq") ;;
      strip) ins+=("|sox -D $p -p $sox_eq $sox_comp") ;;
    esac
    l+="${l:+,}${i}v$gl"
    r+="${r:+,}${i}v$gr"
  done <"$1/$2.tracks"
  sox -D -M "${ins[@]}" -b 24 "$4/$name.wav" remix "$l" "$r"
}

# eca_stem LIST K CHAIN DIR: one stem, one ecasound process, a chain per
# track: mono copied to two channels, each amplified by its pan-law gain
eca_stem() {
  # shellcheck disable=SC2054  # ecasound's commas
  local args=(-q -z:mixmode,sum) i=0 p gl gr name
  name=$(sed -n "$2p" "$1/names")
  while read -r p _ _ gl gr; do
    i=$((i + 1))
    args+=(-a:"$i" -i:"$p")
    [ "$3" = strip ] && args+=("${eca_strip[@]}")
    # shellcheck disable=SC2054
    args+=(-chcopy:1,2 -eac:"$gl",1 -eac:"$gr",2)
  done <"$1/$2.tracks"
  ecasound "${args[@]}" -a:all -f:s24_le,2,"$RATE" -o:"$4/$name.wav"
}

# ff_part LIST I N CHAIN DIR: stems I+1, I+1+N, ... in one ffmpeg process,
# one filter graph: per track chain + pan, per stem amix without normalising
ff_part() {
  local ins=() maps=() fc="" chain="" n_in=0 k=0 m mix p gl gr name
  case $4 in eq) chain=$ff_eq ;; strip) chain=$ff_eq$ff_comp ;; esac
  while read -r name; do
    k=$((k + 1))
    (((k - 1) % $3 == $2)) || continue
    mix=""
    m=0
    while read -r p gl gr _; do
      ins+=(-i "$p")
      fc+="[$n_in:a]${chain}pan=stereo|c0=$gl*c0|c1=$gr*c0[t$n_in];"
      mix+="[t$n_in]"
      n_in=$((n_in + 1))
      m=$((m + 1))
    done <"$1/$k.tracks"
    fc+="${mix}amix=inputs=$m:normalize=0[s$k];"
    maps+=(-map "[s$k]" -c:a pcm_s24le "$5/$name.wav")
  done <"$1/names"
  ffmpeg -nostdin -hide_banner -loglevel error -y "${ins[@]}" -filter_complex "${fc%;}" "${maps[@]}"
}

# pm_part LIST I N CHAIN DIR
pm_part() {
  local flags=()
  case $4 in eq) flags=("${pm_eq[@]}") ;; strip) flags=("${pm_eq[@]}" "${pm_comp[@]}") ;; esac
  "$plainmix" "$1/plain" -o "$5" --part "$2/$3" "${flags[@]}"
}

# each_stem P FN LIST CHAIN DIR: FN for every stem, P at a time (in a
# subshell, so that `jobs` sees only these)
each_stem() (
  local p=$1 fn=$2 list=$3 k n rc=0
  n=$(wc -l <"$list/names")
  for ((k = 1; k <= n; k++)); do
    while [ "$(jobs -rp | wc -l)" -ge "$p" ]; do wait -n || rc=1; done
    "$fn" "$list" "$k" "$4" "$5" &
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || rc=1; done
  return $rc
)

# parts P FN LIST CHAIN DIR: FN's parts 0..P-1 of P, in parallel
parts() {
  local p=$1 fn=$2 i rc=0 pids=()
  for ((i = 0; i < p; i++)); do
    "$fn" "$3" "$i" "$p" "$4" "$5" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  return $rc
}

# read_sources P FILES...: cat of the files to /dev/null, P cats in parallel
read_sources() {
  local p=$1 i pids=()
  shift
  for ((i = 0; i < p; i++)); do
    local part=()
    local j
    for ((j = i; j < $#; j += p)); do part+=("${@:j+1:1}"); done
    cat "${part[@]}" >/dev/null &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
}

# ---- measuring -----------------------------------------------------------------
declare -A times=() failed=() checks=() rows_of=() label=() secs=()

# timed KEY CMD...: runs CMD (output to its log), appends its wall time to
# times[KEY], or marks KEY failed
timed() {
  local key=$1 t dt rc=0
  shift
  t=$(now)
  "$@" >>"$logs/$key.log" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then
    dt=$(since "$t")
    times[$key]+="$dt "
    printf '%s %s\n' "$key" "$dt" >>"$logs/times.txt" # kept if a later step fails
  else
    failed[$key]="failed (exit $rc, see $logs/$key.log)"
  fi
}

med() { # KEY: the median of its times, empty if none
  [ -n "${times[$1]:-}" ] || return 0
  # shellcheck disable=SC2086  # a list of numbers
  median ${times[$1]}
}

# The stemfarm stem of a delivery folder that matches NAME ("Stem 01").
sf_stem() { find "$1" -maxdepth 1 -name "*_$2.wav" | head -n 1; }

# check KEY LIST SFDIR PEERDIR LIMIT_DB: the worst stem of PEERDIR against
# stemfarm's; sets checks[KEY] to "match D dB" or "MISMATCH D dB"
check() {
  local key=$1 list=$2 sfdir=$3 peerdir=$4 limit=$5 name worst=-inf d line
  while read -r name; do
    [ -f "$peerdir/$name.wav" ] || {
      checks[$key]="MISMATCH: no '$name'"
      return
    }
    line=$("$compare" "$(sf_stem "$sfdir" "$name")" "$peerdir/$name.wav") || {
      checks[$key]="MISMATCH: unreadable"
      return
    }
    d=${line#max_diff_db=}
    d=${d%% *}
    worst=$(awk -v a="$worst" -v b="$d" 'BEGIN { print (a == "-inf" ? b : b == "-inf" ? a : (b + 0 > a + 0 ? b : a)) }')
  done <"$list/names"
  if [ "$worst" != -inf ] && awk -v w="$worst" -v l="$limit" 'BEGIN { exit !(w + 0 > l + 0) }'; then
    checks[$key]="MISMATCH $worst dB"
  else
    if [ "$worst" = -inf ]; then checks[$key]="match (identical)"; else checks[$key]="match $worst dB"; fi
  fi
}

# ---- the farm ------------------------------------------------------------------
farm_pids=()
# farm_start NAME NODES THREADS: a coordinator on 127.0.0.1 and NODES nodes
farm_start() {
  local name=$1 n=$2 threads=$3 i dir=$work/suite-farm-$1
  rm -rf "$dir" && mkdir -p "$dir"
  farm_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  farm=tcp://127.0.0.1:$farm_port
  "$stemfarm" coordinator --bind "$farm" --state "$dir/state" --http off --spot-check 0 >"$dir/coordinator.log" 2>&1 &
  farm_pids=($!)
  started+=($!)
  for i in $(seq 50); do
    "$stemfarm" status --farm "$farm" >/dev/null 2>&1 && break
    sleep 0.1
  done
  for ((i = 1; i <= n; i++)); do
    # a long --timeout: the coordinator answers nobody while it delivers the
    # stems of a long session, and a node that gives up loses its peak RSS
    "$node_bin" --connect "$farm" --threads "$threads" --name "bench-n$i" --timeout 1800 \
      >"$dir/node$i.log" 2>&1 &
    farm_pids+=($!)
    started+=($!)
  done
  for i in $(seq 100); do
    [ "$("$stemfarm" status --farm "$farm" --json 2>/dev/null | grep -o '"state":"ready"' | wc -l)" -ge "$n" ] && return 0
    sleep 0.1
  done
  die "the farm's $n nodes did not register (see $dir)"
}
farm_stop() {
  local p
  for p in "${farm_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${farm_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  farm_pids=()
}
hwm_mb() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "exited"; }

# ---- physical limits -----------------------------------------------------------
say "memory bandwidth: STREAM triad, 1 and 2 threads, 3 arrays of 256 MB"
triad_out=$("$BUILD/stemfarm-triad" 256)
triad1=$(awk '/threads=1 / { sub(/.*=/, ""); print }' <<<"$triad_out")
triad2=$(awk '/threads=2 / { sub(/.*=/, ""); print }' <<<"$triad_out")
triad2=${triad2:-$triad1}

# ---- sessions a and b: stemfarm, the peers, the limits ---------------------------
installed=()
for p in "${peers[@]}"; do
  if command -v "$p" >/dev/null; then installed+=("$p"); else say "$p: not installed (bench/suite.sh --install-peers)"; fi
done
has() { [[ " ${installed[*]} " == *" $1 "* ]]; }

# the tools of a row: KEY SUFFIX -> label; which rows exist per session
peer_rows() {
  local rows=()
  has sox && rows+=(sox1 sox2)
  has ecasound && rows+=(eca1 eca2)
  has ffmpeg && rows+=(ff1 ff2)
  rows+=(pm1 pm2)
  printf '%s\n' "${rows[@]}"
}
label[sf]="stemfarm render (embedded)"
label[n1]="stemfarm --nodes 1 --threads 1"
label[n2]="stemfarm --nodes 2 --threads 1"
label[farm]="stemfarm --farm, 2 nodes x 1 thread"
label[sox1]="sox, 1 process at a time"
label[sox2]="sox, 2 processes"
label[eca1]="ecasound, 1 process at a time"
label[eca2]="ecasound, 2 processes"
label[ff1]="ffmpeg filter_complex, 1 process"
label[ff2]="ffmpeg filter_complex, 2 processes"
label[pm1]="plain C mixer, 1 process"
label[pm2]="plain C mixer, 2 processes"
label[rd1]="page-cache read, 1 thread"
label[rd2]="page-cache read, 2 threads"

# run_peer S ROW CHAIN LIST DIR
run_peer() {
  local s=$1 row=$2
  mkdir -p "$5"
  case $row in
    sox1) timed "$s-$row" each_stem 1 sox_stem "$4" "$3" "$5" ;;
    sox2) timed "$s-$row" each_stem 2 sox_stem "$4" "$3" "$5" ;;
    eca1) timed "$s-$row" each_stem 1 eca_stem "$4" "$3" "$5" ;;
    eca2) timed "$s-$row" each_stem 2 eca_stem "$4" "$3" "$5" ;;
    ff1) timed "$s-$row" parts 1 ff_part "$4" "$3" "$5" ;;
    ff2) timed "$s-$row" parts 2 ff_part "$4" "$3" "$5" ;;
    pm1) timed "$s-$row" parts 1 pm_part "$4" "$3" "$5" ;;
    pm2) timed "$s-$row" parts 2 pm_part "$4" "$3" "$5" ;;
  esac
}

ab_dir=""
if want a || want b; then
  gen_dir ab "$AB_TRACKS" "$AB_SECONDS" "$STEMS" --strip
  ab_dir=$gdir
  lists "$ab_dir" ab
  ab_sources=("$ab_dir"/media/*.wav)
  ab_bytes=$(bytes "${ab_sources[@]}")
  mapfile -t ab_peers < <(peer_rows)
  cat "${ab_sources[@]}" >/dev/null # every measurement reads from the page cache
fi

for s in a b; do
  want "$s" || continue
  if [ "$s" = a ]; then yaml=$ab_dir/session.yaml chain=none; else yaml=$ab_dir/session-strip.yaml chain=strip; fi
  secs[$s]=$AB_SECONDS
  rm -rf "${out:?}/$s" # stems of another size would be compared
  rows_of[$s]="sf n1 n2 farm ${ab_peers[*]} rd1 rd2"
  for ((i = 1; i <= RUNS; i++)); do
    say "session ($s), run $i of $RUNS: stemfarm, ${ab_peers[*]}, reads"
    timed "$s-sf" "$stemfarm" render "$yaml" -o "$out/$s/sf" --force
    for row in "${ab_peers[@]}"; do
      run_peer "$s" "$row" "$chain" "$out/lists/ab" "$out/$s/$row"
    done
    timed "$s-rd1" read_sources 1 "${ab_sources[@]}"
    timed "$s-rd2" read_sources 2 "${ab_sources[@]}"
    line=""
    for row in sf "${ab_peers[@]}" rd1 rd2; do
      last=${times[$s-$row]:-}
      last=${last% }
      if [ -n "${failed[$s-$row]:-}" ]; then line+=" $row failed"; else line+=" $row ${last##* }"; fi
    done
    say "  seconds:$line"
  done
  say "session ($s): comparing every stem with stemfarm's"
  for row in "${ab_peers[@]}"; do
    [ -n "${failed[$s-$row]:-}" ] && continue
    # the plain mixer does stemfarm's arithmetic, compressor included
    if [ "$s" = a ] || [[ $row == pm* ]]; then
      check "$s-$row" "$out/lists/ab" "$out/$s/sf" "$out/$s/$row" "$([[ $row == pm* ]] && echo -100 || echo -80)"
    fi
  done
done

# (b)'s peers are checked on the part of the chain that is the same
# processing, the EQ, with a small session of the same generator (the full
# one would add minutes of renders that only repeat what these show)
if want b; then
  say "session (b): checking the peers' EQ on a 24-track, 20 s session without the compressor"
  gen_dir check 24 20 4 --strip
  lists "$gdir" check
  cl=$out/lists/check
  rm -rf "${out:?}/check"
  "$stemfarm" render "$gdir/session-eq.yaml" -o "$out/check/sf" --force >"$logs/check-sf.log" 2>&1 ||
    die "stemfarm failed on $gdir/session-eq.yaml (see $logs/check-sf.log)"
  for row in "${ab_peers[@]}"; do
    # the 2-process rows run the commands of the 1-process ones; the plain
    # mixer was checked above on (b) itself, compressor included
    case $row in sox2 | eca1 | eca2 | ff2 | pm1 | pm2) continue ;; esac
    run_peer check "$row" eq "$cl" "$out/check/$row"
    if [ -n "${failed[check-$row]:-}" ]; then
      checks[b-$row]=${failed[check-$row]}
      continue
    fi
    check "check-$row" "$cl" "$out/check/sf" "$out/check/$row" "$([[ $row == pm* ]] && echo -100 || echo -80)"
    case $row in
      sox1) checks[b-sox1]="EQ ${checks[check-sox1]}" checks[b-sox2]="EQ ${checks[check-sox1]}" ;;
      ff1) checks[b-ff1]="EQ ${checks[check-ff1]}" checks[b-ff2]="EQ ${checks[check-ff1]}" ;;
    esac
  done
  for row in eca1 eca2; do
    has ecasound && checks[b-$row]="not compared: no peaking EQ"
  done
fi

# ---- scaling: one node, two nodes, a farm of two -------------------------------
for s in a b; do
  want "$s" || continue
  if [ "$s" = a ]; then yaml=$ab_dir/session.yaml; else yaml=$ab_dir/session-strip.yaml; fi
  # one thread per node, so that a node is a core and the ratio is the
  # scaling (--nodes 1 alone would take every core)
  say "session ($s): scaling, $SCALE_RUNS run(s): --nodes 1, --nodes 2 (1 thread each), a farm of 2 nodes"
  farm_start "$s" 2 1
  for ((i = 1; i <= SCALE_RUNS; i++)); do
    timed "$s-n1" "$stemfarm" render "$yaml" -o "$out/$s/n1" --force --nodes 1 --threads 1
    timed "$s-n2" "$stemfarm" render "$yaml" -o "$out/$s/n2" --force --nodes 2 --threads 1
    timed "$s-farm" "$stemfarm" render "$yaml" --farm "$farm" -o "$out/$s/farm" --force
  done
  farm_stop
done

# ---- session c: pre-roll overhead, a farm render, memory --------------------------
declare -A rss=()
# farm_rss KEY YAML SECONDS [render options]: a render through a fresh
# coordinator and one node of all cores, separate processes; their peak RSS
# (VmHWM) once the coordinator has delivered
farm_rss() {
  local key=$1 yaml=$2 i
  rss[$key-secs]=$3
  shift 3
  rm -rf "${out:?}/$key"
  farm_start "$key" 1 "$cores"
  timed "$key-farm" "$stemfarm" render "$yaml" --farm "$farm" -o "$out/$key/farm" --force "$@"
  if [ -n "${failed[$key-farm]:-}" ]; then
    # the client gives up on a coordinator that is silent for 60 s, which it
    # is while it writes and verifies hours of stems; it still delivers
    failed[$key-farm]="client gave up (coordinator silent while delivering; $logs/$key-farm.log)"
    for i in $(seq 1800); do
      [ -f "$out/$key/farm/manifest.json" ] && break
      kill -0 "${farm_pids[0]}" 2>/dev/null || break
      sleep 1
    done
  fi
  rss[$key-coord]=$(hwm_mb "${farm_pids[0]}")
  rss[$key-node]=$(hwm_mb "${farm_pids[1]}")
  farm_stop
}

if want c; then
  gen_dir c "$C_TRACKS" "$C_SECONDS" "$STEMS" --verbs
  c_yaml=$gdir/session-verbs.yaml
  say "session (c): stemfarm plan (pre-roll at the default segment)"
  "$stemfarm" plan "$c_yaml" --json >"$logs/c-plan.json" 2>"$logs/c-plan.log" || die "stemfarm plan failed on $c_yaml"
  # plan's own figure counts the null-test reference with the pre-roll; the
  # pre-roll alone is what is rendered beyond the delivered stems and the
  # reference, over those two (the reference is a check, not pre-roll)
  read -r plan_out plan_rendered plan_pct preroll_pct segment_s < <(python3 - "$logs/c-plan.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
ref = sum(1 for t in p["targets"] if not t["delivered"]) * p["frames"]
base = p["output_frames"] + ref
r = p["sample_rate"]
print("%.3f %.3f %.1f %.1f %.3f" % (p["output_frames"] / r, p["rendered_frames"] / r,
      100.0 * (p["rendered_frames"] - p["output_frames"]) / p["output_frames"],
      100.0 * (p["rendered_frames"] - base) / base, p["segment_frames"] / r))
PY
  )
  cat "${gdir}"/media/*.wav >/dev/null
  say "session (c): a farm render (coordinator + 1 node of $cores threads) for its time and memory"
  farm_rss c "$c_yaml" "$C_SECONDS"
  secs[c]=$C_SECONDS
fi

if want long; then
  gen_dir long "$LONG_TRACKS" "$LONG_SOURCE" "$LONG_STEMS" --repeat-to "$LONG_SECONDS"
  cat "${gdir}"/media/*.wav >/dev/null
  say "long session: memory of a farm render of ${LONG_SOURCE} s, then of $LONG_SECONDS s (the same sources as clips)"
  seg=()
  [ -n "$LONG_SEGMENT" ] && seg=(--segment "$LONG_SEGMENT")
  farm_rss short "$gdir/session.yaml" "$LONG_SOURCE" "${seg[@]}"
  farm_rss long "$gdir/session-long.yaml" "$LONG_SECONDS" "${seg[@]}"
fi

d_session=""
if want d; then
  # a session over recorded material: any session file in configs/ but the
  # generated example (whose media stemfarm-gen synthesises)
  d_session=$(find configs -name '*.yaml' ! -path 'configs/example/*' ! -name 'node.example.yaml' \
    -exec grep -l '^tracks:' {} + 2>/dev/null | head -n 1 || true)
  if [ -n "$d_session" ]; then
    say "session (d): $d_session, stemfarm only ($RUNS runs)"
    for ((i = 1; i <= RUNS; i++)); do timed d-sf "$stemfarm" render "$d_session" -o "$out/d/sf" --force; done
    secs[d]=$(python3 - "$out/d/sf/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
f = m["files"][0] if "files" in m else None
print(round(f["frames"] / f["rate"], 3) if f else 0)
PY
    )
  fi
fi

# ---- the coordinator alone -------------------------------------------------------
coord_jobs="" coord_gbs=""
if [ "$COORD" = 1 ]; then
  say "coordinator alone: bench/coordinator.sh (LENGTH=$COORD_LENGTH)"
  if BUILD=$BUILD LENGTH=$COORD_LENGTH bench/coordinator.sh >"$logs/coordinator.log" 2>&1; then
    coord_jobs=$(awk '/^jobs\/s/ { print $(NF - 2) }' "$logs/coordinator.log")
    coord_gbs=$(awk '/^ingest GB\/s/ { print $(NF - 2) }' "$logs/coordinator.log")
  else
    say "bench/coordinator.sh failed (see $logs/coordinator.log)"
  fi
fi

# ---- the table -------------------------------------------------------------------
kv=() # the machine-readable line
met=0
total=0
# target NAME OK DESCRIPTION VALUE: one target line
target() {
  local verdict
  total=$((total + 1))
  case $2 in
    1) verdict="met" met=$((met + 1)) ;;
    0) verdict="NOT MET" ;;
    *) verdict="n/a" total=$((total - 1)) ;;
  esac
  printf '  %-62s %-18s %s\n' "$3" "$4" "$verdict"
  kv+=("target_$1=${verdict// /_}")
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }' && echo 1 || echo 0; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.2f", a / b }'; }

echo
echo "stemfarm bench suite: $(date -u +%Y-%m-%dT%H:%MZ), $cores cores, $BUILD, median of $RUNS interleaved runs"
printf 'memory bandwidth (triad): %s GB/s with 1 thread, %s GB/s with 2\n' "$triad1" "$triad2"
kv+=("cores=$cores" "runs=$RUNS" "triad1_gbs=$triad1" "triad2_gbs=$triad2")

for s in a b; do
  want "$s" || continue
  sec=${secs[$s]}
  sfm=$(med "$s-sf")
  if [ "$s" = a ]; then
    title="(a) $AB_TRACKS mono 24-bit tracks x $AB_SECONDS s at $RATE Hz, gain + pan, $STEMS stereo stems"
  else
    title="(b) (a)'s tracks with high-pass + peaking EQ + compressor each, the same routing"
  fi
  echo
  echo "$title"
  printf '  %-36s %9s %11s %12s  %s\n' tool "wall s" "x realtime" "/ stemfarm" "stems vs stemfarm's"
  for row in ${rows_of[$s]}; do
    m=$(med "$s-$row")
    [ -n "$m${failed[$s-$row]:-}" ] || continue
    if [ -n "${failed[$s-$row]:-}" ]; then
      printf '  %-36s %s\n' "${label[$row]}" "${failed[$s-$row]}"
      continue
    fi
    case $row in rd*) r="" ;; *) r=$(ratio "$m" "$sfm") ;; esac
    case $row in
      sf) c="(reference)" ;;
      n1 | n2 | farm) c="scaling: median of $SCALE_RUNS" ;;
      rd1 | rd2) c="$(awk -v b="$ab_bytes" -v t="$m" 'BEGIN { printf "%.2f GB/s", b / t / 1e9 }')" ;;
      *) c=${checks[$s-$row]:-"compressor differs by design; not compared"} ;;
    esac
    printf '  %-36s %9.3f %10.1fx %11s%s  %s\n' "${label[$row]}" "$m" "$(awk -v s="$sec" -v t="$m" 'BEGIN { print s / t }')" \
      "${r:+${r}x}" "" "$c"
    kv+=("${s}_${row}_s=$m")
  done
  for p in "${peers[@]}"; do has "$p" || printf '  %-36s not installed\n' "$p"; done
done

for s in c d; do
  want "$s" || continue
  if [ "$s" = c ]; then
    echo
    echo "(c) $C_TRACKS tracks x $C_SECONDS s, (b)'s chain plus sends to two reverb buses, $STEMS stems"
    m=$(med c-farm)
    if [ -n "$m" ]; then
      printf '  %-36s %9.3f %10.1fx  %s\n' "stemfarm --farm, 1 node x $cores threads" "$m" \
        "$(awk -v s="${secs[c]}" -v t="$m" 'BEGIN { print s / t }')" "(the memory render below; no peer has its reverb)"
      kv+=("c_farm_s=$m")
    else
      printf '  %-36s %s\n' "stemfarm --farm" "${failed[c-farm]:-no result}"
    fi
    printf '  %-36s %s\n' "stemfarm plan" \
      "work: $plan_out audio-seconds delivered, $plan_rendered rendered (pre-roll and null-test reference: +$plan_pct%)"
    printf '  %-36s %s %%  (segment %s s; the null-test reference not counted)\n' "pre-roll overhead" "$preroll_pct" "$segment_s"
  elif [ -n "$d_session" ]; then
    echo
    echo "(d) $d_session"
    m=$(med d-sf)
    printf '  %-36s %9s %10sx\n' "stemfarm render (embedded)" "$m" "$(awk -v s="${secs[d]}" -v t="$m" 'BEGIN { if (t > 0) printf "%.1f", s / t }')"
    kv+=("d_sf_s=$m")
  else
    echo
    echo "(d) skipped: configs/ has no session over recorded material, only the example that stemfarm-gen synthesises"
  fi
done

if [ -n "${rss[c-node]:-}${rss[long-node]:-}" ]; then
  echo
  echo "memory: peak RSS of the farm's processes (coordinator, one node of $cores threads)${LONG_SEGMENT:+; the $LONG_SOURCE s and ${LONG_SECONDS} s renders with --segment $LONG_SEGMENT}"
  printf '  %-36s %12s %12s %12s\n' session "length s" "node MB" "coordinator MB"
  for k in c short long; do
    [ -n "${rss[$k-node]:-}" ] || continue
    case $k in
      c) n="(c) $C_TRACKS tracks" ;;
      short) n="$LONG_TRACKS tracks, one clip each" ;;
      long) n="$LONG_TRACKS tracks, clips to $((LONG_SECONDS / 3600)) h $(((LONG_SECONDS % 3600) / 60)) min" ;;
    esac
    printf '  %-36s %12s %12s %12s  %s\n' "$n" "${rss[$k-secs]}" "${rss[$k-node]}" "${rss[$k-coord]}" \
      "$(m=$(med "$k-farm"); [ -n "$m" ] && echo "render $m s" || echo "${failed[$k-farm]:-}")"
    kv+=("rss_${k}_node_mb=${rss[$k-node]}" "rss_${k}_coord_mb=${rss[$k-coord]}" "rss_${k}_s=${rss[$k-secs]}")
  done
fi

if [ "$COORD" = 1 ]; then
  echo
  echo "coordinator alone (bench/coordinator.sh, 64 simulated nodes, LENGTH=$COORD_LENGTH): ${coord_jobs:-?} jobs/s, ${coord_gbs:-?} GB/s"
  kv+=("coord_jobs_per_s=${coord_jobs:-}" "coord_gbs=${coord_gbs:-}")
fi

echo
echo "targets"
# fastest PEERS...: the smallest median among the rows given, and its row
fastest() {
  local best="" row m who=""
  for row in "$@"; do
    m=$(med "$row")
    [ -n "$m" ] || continue
    if [ -z "$best" ] || awk -v a="$m" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$m who=$row; fi
  done
  echo "$best ${who#*-}"
}
for s in a b; do
  want "$s" || continue
  sfm=$(med "$s-sf")
  peer2=()
  for row in sox2 eca2 ff2; do [[ " ${rows_of[$s]} " == *" $row "* ]] && peer2+=("$s-$row"); done
  # in (b) ecasound leaves out the peaking EQ: less work than the others, so not the bar
  if [ "$s" = b ]; then
    keep=()
    for row in "${peer2[@]}"; do [ "$row" = b-eca2 ] || keep+=("$row"); done
    peer2=("${keep[@]}")
  fi
  read -r fp fwho < <(fastest "${peer2[@]}")
  need=4
  [ "$s" = b ] && need=10
  r=$(ratio "$fp" "$sfm")
  if [ -n "$fp" ]; then
    target "${s}_vs_peer" "$(ge "$r" "$need")" "($s) stemfarm >= ${need}x faster than the fastest peer, 2 processes" \
      "${r}x (${label[$fwho]%%,*})"
  else
    target "${s}_vs_peer" - "($s) stemfarm >= ${need}x faster than the fastest peer, 2 processes" "no peer"
  fi
  need=2
  [ "$s" = b ] && need=3
  r=$(ratio "$(med "$s-pm2")" "$sfm")
  target "${s}_vs_plain" "$(ge "$r" "$need")" "($s) stemfarm >= ${need}x faster than the plain C mixer, 2 processes" "${r}x"
  if [ "$s" = a ]; then
    r=$(ratio "$sfm" "$(med a-rd2)")
    target a_vs_read "$(awk -v r="$r" 'BEGIN { print (r != "" && r + 0 <= 3) ? 1 : 0 }')" \
      "(a) stemfarm within 3x of the 2-thread page-cache read" "${r}x the read"
    kv+=("a_render_over_read=$r")
  fi
  r=$(ratio "$(med "$s-n1")" "$(med "$s-n2")")
  target "${s}_nodes" "$(ge "$r" 1.8)" "($s) 2 nodes >= 1.8x one node (embedded)" "${r}x"
  kv+=("${s}_nodes2_over_1=$r")
  r=$(ratio "$(med "$s-n1")" "$(med "$s-farm")")
  printf '  %-62s %-18s %s\n' "($s) farm of 2 nodes (coordinator + 2 stemfarm-node) vs one node" "${r}x" "(for the record)"
  kv+=("${s}_farm2_over_1=$r")
done
if [ "$COORD" = 1 ]; then
  target coord_jobs "$(ge "$coord_jobs" 5000)" "coordinator >= 5000 jobs/s" "${coord_jobs:-?} jobs/s"
  target coord_gbs "$(ge "$coord_gbs" 1)" "coordinator >= 1 GB/s" "${coord_gbs:-?} GB/s"
fi
if want c; then
  target c_preroll "$(awk -v p="$preroll_pct" 'BEGIN { print (p != "" && p + 0 <= 10) ? 1 : 0 }')" \
    "(c) pre-roll overhead <= 10 % at the default segment" "$preroll_pct %"
  kv+=("c_preroll_pct=$preroll_pct")
fi
echo
echo "suite wall time: $(since "$suite_t0") s; logs in $logs, stems in $out"
echo
echo "bench: targets_met=$met/$total ${kv[*]}"
