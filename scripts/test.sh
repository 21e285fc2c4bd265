#!/usr/bin/env bash
# The whole test suite: the default build's tests, then the same tests under
# ASan+UBSan, then each libFuzzer target for 20 s (scripts/fuzz.sh).
# Installs what is missing first. Exit status is non-zero on any failure.
# (One preset only: `scripts/test.sh tsan`, `scripts/test.sh default`.)
set -euo pipefail
cd "$(dirname "$0")/.."
presets=("$@")
fuzz=no
if [ ${#presets[@]} -eq 0 ]; then presets=(default asan); fuzz=yes; fi
for preset in "${presets[@]}"; do
  echo "=== build: $preset"
  bash scripts/build.sh "$preset"
  echo "=== test: $preset"
  ctest --preset "$preset"
done
if [ "$fuzz" = yes ]; then
  echo "=== fuzz: 20 s per target"
  bash scripts/fuzz.sh 20
fi
