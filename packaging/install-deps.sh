#!/usr/bin/env bash
# Installs everything sleuth's build, tests, demo and benchmarks need, from
# Debian's archive. Safe to run any number of times: apt-get skips what is
# already present. Needs root (or sudo) on Debian 12.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates
  # libraries the agent, the CLI and the uploader link against
  libunwind-dev libgoogle-perftools-dev prometheus-cpp-dev
  libcurl4-openssl-dev libcxxopts-dev libtomlplusplus-dev zlib1g-dev
  nlohmann-json3-dev
  # elfutils' libdwfl headers for the DWARF unwinder (libdw.so.1 itself is
  # dlopen'ed at run time, never linked)
  libdw-dev
  # tests: GoogleTest/GMock, Google Benchmark, libprotobuf as an independent
  # pprof decoder, python3 for the loopback upload receiver
  libgtest-dev libgmock-dev libbenchmark-dev libprotobuf-dev protobuf-compiler
  python3 procps
  # independent readers of our output: `go tool pprof`
  golang-go
  # real programs the integration tests run under the agent (bash, perl,
  # xz -T2, coreutils), the tmpfs and throwaway-user tests (mount, useradd,
  # setpriv), and the independent stack tools the reports compare against
  bash perl xz-utils coreutils mount passwd util-linux elfutils linux-perf
  # fuzzing (scripts/fuzz.sh): clang with libFuzzer and its sanitizer runtimes
  clang libclang-rt-14-dev
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
