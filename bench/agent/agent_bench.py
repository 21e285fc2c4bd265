#!/usr/bin/env python3
"""Benchmarks of the preloaded agent. Prints figures; asserts nothing.

  python3 bench/agent/agent_bench.py [--build build/default] [--quick]

Figures (see BENCHMARKS.md):
  idle_cpu_ratio     host CPU time with the agent idle at interval=1s over
                     without it, same fixed work (goal <= 1.005)
  profile_slowdown   throughput of a CPU-bound host while a 100 Hz CPU
                     profile runs: sleuth vs gperftools' own CPUPROFILE
  dump_pause         longest stall a host thread sees during a thread dump,
                     at 100 and 1,000 threads
  agent_rss          resident memory the agent adds to an idle host (VmRSS),
                     and its private part (Private_Clean + Private_Dirty of
                     smaps_rollup), the goal being < 4 MiB private
  startup            CPU and wall time that start-up and exit add to
                     /bin/true: bare, with gperftools' libprofiler preloaded
                     (the peer's own preload cost), and with libsleuth.so
                     (goal: at most +1 ms CPU and +2 ms wall)
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def base_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SLEUTH_") and k not in ("LD_PRELOAD", "CPUPROFILE")}
    return env


def agent_env(lib, dump_dir, **extra):
    env = base_env()
    env.update({
        "LD_PRELOAD": lib,
        "SLEUTH_AGENT_DUMP_DIR": dump_dir,
        "SLEUTH_AGENT_LOG_LEVEL": "warn",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def child_cpu(argv, env):
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execve(argv[0], argv, env)
    _, status, ru = os.wait4(pid, 0)
    if status != 0:
        sys.exit(f"{argv} exited with {status}")
    return ru.ru_utime + ru.ru_stime


def idle_ratio(host, lib, reps, batches):
    tmp = tempfile.mkdtemp(prefix="sleuth-bench-")
    # Rules on but never firing: the agent samples and evaluates every second.
    env_with = agent_env(lib, tmp, SLEUTH_AGENT_INTERVAL="1s", SLEUTH_CPU_MIN="99",
                         SLEUTH_MEMORY_MIN="99", SLEUTH_THREADS_MIN="100000",
                         SLEUTH_HEAP_MIN="99")
    without, with_agent = [], []
    for _ in range(reps):  # interleaved, so drift hits both alike
        without.append(child_cpu([host, "fixed", str(batches)], base_env()))
        with_agent.append(child_cpu([host, "fixed", str(batches)], env_with))
    a, b = statistics.median(without), statistics.median(with_agent)
    return a, b, b / a


def throughput(argv, env):
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("batches"):
            return int(line.split()[1])
    sys.exit(f"no throughput from {argv}: {out}")


def profile_slowdown(host, lib, seconds, reps):
    ms = str(seconds * 1000)
    tmp = tempfile.mkdtemp(prefix="sleuth-bench-")
    sleuth_env = agent_env(lib, tmp, SLEUTH_AGENT_INTERVAL="100ms", SLEUTH_AGENT_HISTORY="1",
                           SLEUTH_CPU_MIN="1", SLEUTH_CPU_ABS="10", SLEUTH_CPU_DIFF="0",
                           SLEUTH_CPU_PROFILE_HZ="100",
                           SLEUTH_CPU_PROFILE_DURATION=f"{seconds + 5}s",
                           SLEUTH_MEMORY_ENABLE="false", SLEUTH_THREADS_ENABLE="false",
                           SLEUTH_HEAP_ENABLE="false")
    gperf_env = base_env()
    gperf_env.update({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libprofiler.so.0",
                      "CPUPROFILE": os.path.join(tmp, "gperf.prof"),
                      "CPUPROFILE_FREQUENCY": "100"})
    results = {"none": [], "sleuth": [], "gperftools": []}
    for _ in range(reps):
        results["none"].append(throughput([host, "work", ms], base_env()))
        results["sleuth"].append(throughput([host, "work", ms], sleuth_env))
        results["gperftools"].append(throughput([host, "work", ms], gperf_env))
    return {k: statistics.median(v) for k, v in results.items()}


def dump_pause(host, lib, threads, dumps, by_signal=False):
    """Longest stall of a spinning host thread while thread dumps run: by the
    ptrace walker (the default), or by the signal-driven fallback."""
    tmp = tempfile.mkdtemp(prefix="sleuth-bench-")
    extra = {"SLEUTH_STACKWALK": "/nonexistent/sleuth-stackwalk"} if by_signal else {}
    env = agent_env(lib, tmp, SLEUTH_CPU_ENABLE="false", SLEUTH_MEMORY_ENABLE="false",
                    SLEUTH_THREADS_ENABLE="false", SLEUTH_HEAP_ENABLE="false",
                    SLEUTH_AGENT_MAX_DUMPS="1000", **extra)
    out = subprocess.run([host, "pause", str(threads), str(dumps)], env=env,
                         capture_output=True, text=True, check=True).stdout
    parts = out.split()
    return float(parts[2]), float(parts[4])


def rss_kib(argv, env, at_seconds):
    """(VmRSS, private resident) of the process at `at_seconds`, in KiB."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(at_seconds)
    rss = private = 0
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{proc.pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                private += int(line.split()[1])
    proc.wait()
    return rss, private


def run_cost(argv, env):
    """(CPU seconds, wall seconds) of one run of argv."""
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execve(argv[0], argv, env)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{argv} exited with {status}")
    return ru.ru_utime + ru.ru_stime, wall


def startup_cost(lib, runs):
    tmp = tempfile.mkdtemp(prefix="sleuth-bench-")
    profiler_env = base_env()
    profiler_env["LD_PRELOAD"] = "/usr/lib/x86_64-linux-gnu/libprofiler.so.0"
    cases = {"bare": base_env(), "libprofiler": profiler_env,
             "sleuth": agent_env(lib, tmp, SLEUTH_AGENT_INTERVAL="1s")}
    samples = {k: ([], []) for k in cases}
    for _ in range(runs):  # interleaved, so drift hits all alike
        for name, env in cases.items():
            cpu, wall = run_cost(["/bin/true"], env)
            samples[name][0].append(cpu)
            samples[name][1].append(wall)
    return {k: (statistics.mean(c) * 1e3, statistics.median(w) * 1e3) for k, (c, w) in samples.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "default"))
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--idle-batches", type=int, default=25000,
                    help="work per idle-ratio run (25000 is about 9 s of one core here): long "
                         "enough that the agent's one-off start-up cost does not dominate")
    ap.add_argument("--only", choices=["idle", "profile", "pause", "rss", "startup"],
                    help="one figure")
    args = ap.parse_args()
    host = os.path.join(args.build, "bench", "agent", "bench_host")
    lib = os.path.join(args.build, "agent", "libsleuth.so")
    reps = 3 if args.quick else 7

    want = lambda name: args.only in (None, name)
    if want("idle"):
      a, b, ratio = idle_ratio(host, lib, reps, args.idle_batches)
      print(f"idle_cpu_ratio: {ratio:.4f}  (host CPU {a:.3f}s without, {b:.3f}s with the agent "
          f"at interval=1s; median of {reps})")

    if want("profile"):
      t = profile_slowdown(host, lib, 4 if args.quick else 8, 3 if args.quick else 5)
      print(f"profile_throughput: none {t['none']:.0f}, sleuth 100Hz {t['sleuth']:.0f} "
          f"({t['sleuth'] / t['none']:.4f}), gperftools CPUPROFILE 100Hz {t['gperftools']:.0f} "
          f"({t['gperftools'] / t['none']:.4f}) batches")

    if want("pause"):
      for n in (100, 1000):
        for by_signal in (False, True):
          med, worst = dump_pause(host, lib, n, 5 if args.quick else 15, by_signal)
          how = "signal fallback" if by_signal else "ptrace walker"
          print(f"dump_pause_{n}_threads ({how}): median {med:.2f} ms, max {worst:.2f} ms")

    if want("rss"):
      tmp = tempfile.mkdtemp(prefix="sleuth-bench-")
      bare, bare_private = rss_kib([host, "idle", "4000"], base_env(), 3)
      with_agent, with_private = rss_kib(
          [host, "idle", "4000"], agent_env(lib, tmp, SLEUTH_AGENT_INTERVAL="1s"), 3)
      print(f"agent_rss: +{(with_agent - bare) / 1024:.1f} MiB (host {bare / 1024:.1f} MiB without, "
          f"{with_agent / 1024:.1f} MiB with); private +{(with_private - bare_private) / 1024:.1f} "
          f"MiB ({bare_private / 1024:.1f} -> {with_private / 1024:.1f} MiB)")

    if want("startup"):
      runs = 100 if args.quick else 400
      cost = startup_cost(lib, runs)
      b_cpu, b_wall = cost["bare"]
      for name in ("bare", "libprofiler", "sleuth"):
        cpu, wall = cost[name]
        print(f"startup_{name}: /bin/true CPU {cpu:.2f} ms (+{cpu - b_cpu:.2f}), wall median "
              f"{wall:.2f} ms (+{wall - b_wall:.2f}); {runs} runs")


if __name__ == "__main__":
    main()
