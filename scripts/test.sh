#!/usr/bin/env bash
# The whole test suite: the default build's tests, then the same tests under
# ASan+UBSan. Installs what is missing first. Exit status is non-zero on any
# failure. (TSan: `scripts/test.sh tsan`.)
set -euo pipefail
cd "$(dirname "$0")/.."
presets=("$@")
if [ ${#presets[@]} -eq 0 ]; then presets=(default asan); fi
for preset in "${presets[@]}"; do
  echo "=== build: $preset"
  bash scripts/build.sh "$preset"
  echo "=== test: $preset"
  ctest --preset "$preset"
done
