# shellcheck shell=bash disable=SC2034  # sourced: it sets variables for the scripts
# bench/lib.sh -- what the bench scripts share: sourced, not run.
# Expects BUILD to be set; defines die, now, since, median, bytes,
# bench_build (sets $stemfarm and $gen) and bench_session (generates a bench
# session once into bench/work/ and sets $dir and $session).

die() { echo "bench: error: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() {
  printf '%s\n' "$@" | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
bytes() { stat -c %s "$@" | awk '{ s += $1 } END { printf "%.0f", s }'; }

# Incremental build, so a stale binary is never measured.
bench_build() {
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  local build_type
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
  case $build_type in
    Release | RelWithDebInfo) ;;
    *) echo "bench: warning: $BUILD is a '${build_type:-default}' build; expect slow numbers" >&2 ;;
  esac
  cmake --build "$BUILD" -j"$(nproc)" --target stemfarm stemfarm-gen >/dev/null || die "build failed"
  stemfarm=$BUILD/stemfarm
  gen=$BUILD/stemfarm-gen
}

# bench_session TRACKS LENGTH STEMS RATE [--fx]
bench_session() {
  local tracks=$1 length=$2 stems=$3 rate=$4 fx=${5:-}
  dir=bench/work/t$tracks-s$length-k$stems-r$rate${fx:+-fx}
  session=$dir/session.yaml
  if [ ! -f "$session" ]; then # written last by the generator: present means complete
    local need_kb free_kb
    need_kb=$(awk -v n="$tracks" -v s="$length" -v r="$rate" -v k="$stems" \
      'BEGIN { printf "%d", (n * s * r * 3 + k * s * r * 6) * 1.05 / 1024 + 1 }')
    mkdir -p bench/work
    free_kb=$(df -Pk bench/work | awk 'NR == 2 { print $4 }')
    [ "$free_kb" -ge "$need_kb" ] ||
      die "bench/work needs $((need_kb / 1024)) MB for sources and stems, $((free_kb / 1024)) MB free"
    echo "bench: generating $dir (once; later runs reuse it)"
    rm -rf "$dir"
    "$gen" bench "$dir" --tracks "$tracks" --seconds "$length" --stems "$stems" --rate "$rate" ${fx:+"$fx"}
  fi
}
