#!/usr/bin/env python3
"""Combines several `make bench` runs: bench/combine.py [--pooled] WORKDIR...

Each WORKDIR is a run's working directory (run.sh prints it on its last
line: "raw results: WORKDIR/results.txt"). Prints, per case and target,
the median and mean over every round of every run of the round's
requests/s ratio to nginx (each target against nginx measured in the same
round) and the median per-round p99 ratio; for the fixed rate (rategen),
also the p99 of all runs' requests together, one distribution per target
(rategen -merge). One run of 5 rounds decides a 2% difference by chance;
the rounds of several runs together do not. With --pooled, only the
fixed rate's distributions together (run.sh ends each run's table with
that for its own rounds)."""
import collections
import glob
import os
import statistics
import subprocess
import sys


def main(args):
    pooled_only = args[:1] == ["--pooled"]
    dirs = args[1:] if pooled_only else args
    if not dirs:
        sys.exit(__doc__)
    ratio = collections.defaultdict(list)  # (case, target) -> per-round req/s ratios
    p99 = collections.defaultdict(list)    # (case, target) -> per-round p99 ratios
    order = []
    for d in dirs:
        path = os.path.join(d, "results.txt")
        if not os.path.exists(path):
            sys.exit(f"{path}: no such file (want a run's working directory)")
        rounds = collections.defaultdict(dict)
        for n, line in enumerate(open(path), 1):
            f = line.split()
            if len(f) < 5:
                sys.exit(f"{path}:{n}: want 'round case target req/s p99 ...', got {line.strip()!r}")
            rounds[(f[0], f[1])][f[2]] = (float(f[3]), float(f[4]))
            if (f[1], f[2]) not in order:
                order.append((f[1], f[2]))
        for (_, case), m in rounds.items():
            base = m.get("nginx")
            if not base or base[0] <= 0 or base[1] <= 0:
                continue
            for t, (rps, q) in m.items():
                ratio[(case, t)].append(rps / base[0])
                p99[(case, t)].append(q / base[1])
    if not pooled_only:
        print_rounds(dirs, order, ratio, p99)
    print_pooled(dirs, order)


def print_rounds(dirs, order, ratio, p99):
    print(f"# {len(dirs)} runs combined\n")
    print("| case | target | rounds | req/s vs nginx (median of rounds) | mean | range | p99 vs nginx (median of rounds) |")
    print("|---|---|---|---|---|---|---|")
    for key in order:
        v = ratio.get(key)
        if not v:
            continue
        print(f"| {key[0]} | {key[1]} | {len(v)} | {statistics.median(v):.3f}x | {statistics.mean(v):.3f}x | "
              f"{min(v):.2f}-{max(v):.2f}x | {statistics.median(p99[key]):.2f}x |")


def print_pooled(dirs, order):
    gen = os.path.join(dirs[0], "bin", "rategen")
    targets = [t for c, t in order if c.startswith("rate-")]
    if not targets or not os.access(gen, os.X_OK):
        return
    pooled = {}
    for t in targets:
        files = [f for d in dirs for f in glob.glob(os.path.join(d, f"rategen-{t}-[0-9]*-[0-9]*.res"))]
        if not files:
            continue
        out = subprocess.run([gen, "-merge", *files], capture_output=True, text=True, check=True).stdout
        kv = dict(x.split("=", 1) for line in out.splitlines() if line.startswith("rategen ") for x in line.split()[1:])
        pooled[t] = (int(kv["sent"]), float(kv["p50_ms"]), float(kv["p99_ms"]), float(kv["p999_ms"]))
    if not pooled:
        return
    runs = f"of all {len(dirs)} runs " if len(dirs) > 1 else ""
    print(f"\nFixed rate, all rounds' requests {runs}together (one distribution per target):\n")
    print("| target | requests | p50 ms | p99 ms | p99 vs nginx | p99.9 ms |")
    print("|---|---|---|---|---|---|")
    base = pooled.get("nginx", (0, 0, 0, 0))[2]
    for t, (n, p50, q, q9) in pooled.items():
        print(f"| {t} | {n:,} | {p50:.3f} | {q:.2f} | {f'{q / base:.2f}x' if base else '-'} | {q9:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
