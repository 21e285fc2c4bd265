#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang into build/fuzz and runs
# each for a bounded time, seeded from tests/fixtures/:
#   scripts/fuzz.sh [seconds per target, default 30] [target...]
# New inputs that raise coverage go to build/fuzz/corpus/<target>/ (kept
# between runs); a crash leaves build/fuzz/artifacts/<target>/crash-* and
# makes the exit status non-zero. Needs clang and libclang-rt-14-dev
# (packaging/install-deps.sh installs both). BUILD_DIR overrides build/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
build="${BUILD_DIR:-build/fuzz}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config_fuzz proc_parsers_fuzz cgroup_parsers_fuzz sidecar_fuzz)
fi

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DSLEUTH_FUZZ=ON -DSLEUTH_BUILD_TESTS=OFF -DSLEUTH_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
ninja -C "$build" "${targets[@]}"

# The seeds of each target: real and malformed inputs the unit tests use.
seeds() {
  case "$1" in
    config_fuzz) echo tests/fixtures/config ;;
    proc_parsers_fuzz)
      echo tests/fixtures/collectors/stat tests/fixtures/collectors/status \
        tests/fixtures/collectors/statm tests/fixtures/collectors/smaps_rollup \
        tests/fixtures/collectors/meminfo ;;
    cgroup_parsers_fuzz)
      echo tests/fixtures/collectors/cgroup tests/fixtures/collectors/cgroupfs \
        tests/fixtures/collectors/mountinfo tests/fixtures/collectors/cpulist ;;
    sidecar_fuzz) echo tests/fixtures/uploader tests/fixtures/dumps ;;
  esac
}

failed=()
for target in "${targets[@]}"; do
  corpus="$build/corpus/$target"
  artifacts="$build/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  dirs=()
  for dir in $(seeds "$target"); do
    if [ -d "$dir" ]; then dirs+=("$dir"); fi
  done
  # The config loader refuses files over 1 MiB before parsing (a unit test
  # shows it); small inputs keep its fuzzer fast.
  max_len=65536
  if [ "$target" = config_fuzz ]; then max_len=4096; fi
  echo "=== $target: ${seconds}s, seeds: ${dirs[*]:-none}"
  # -rss_limit_mb: a parser that needs more than this for one input is a
  # finding too. -timeout: one input taking over 10s is a hang.
  if ! "$build/fuzz/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -max_len="$max_len" -artifact_prefix="$artifacts/" -print_final_stats=1 \
      "$corpus" "${dirs[@]}" 2>"$build/$target.log"; then
    failed+=("$target")
    tail -n 40 "$build/$target.log"
  fi
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ +DONE" \
    "$build/$target.log" || true
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build/artifacts/)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash"
