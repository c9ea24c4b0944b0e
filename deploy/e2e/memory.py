#!/usr/bin/env python3
"""Says whether each daemon's memory stayed flat during a soak (make soak).

    memory.py MEMORY_CSV [--warmup-fraction 0.2] [--max-growth 0.10] [--slack-mib 8]

Reads `seconds,daemon,rss_kib` samples. After the warm-up (the first fifth of the run, when
caches and pools fill), compares the median resident memory of the last fifth with that of
the fifth right after the warm-up: a daemon whose memory grew by more than max-growth (plus
a few MiB of slack for allocator noise) is not flat. Prints a table; exits 1 if any daemon
is not flat or has too few samples.
"""
import argparse
import csv
import statistics
import sys
from collections import defaultdict

parser = argparse.ArgumentParser()
parser.add_argument("csv")
parser.add_argument("--warmup-fraction", type=float, default=0.2)
parser.add_argument("--max-growth", type=float, default=0.10)
parser.add_argument("--slack-mib", type=float, default=8)
args = parser.parse_args()

samples = defaultdict(list)
with open(args.csv) as f:
    for row in csv.DictReader(f):
        samples[row["daemon"]].append((int(row["seconds"]), int(row["rss_kib"])))

ok = True
print(f"{'daemon':<16}{'samples':>8}{'early MiB':>11}{'late MiB':>10}{'peak MiB':>10}  verdict")
for daemon in ["collector", "hydration", "aggregator", "forwarder", "health-checker"]:
    s = sorted(samples.get(daemon, []))
    if len(s) < 10:
        print(f"{daemon:<16}{len(s):>8}{'':>11}{'':>10}{'':>10}  too few samples (was it running?)")
        ok = False
        continue
    n = len(s)
    start = int(n * args.warmup_fraction)
    window = max(1, n // 5)
    early = statistics.median(r for _, r in s[start:start + window]) / 1024
    late = statistics.median(r for _, r in s[-window:]) / 1024
    peak = max(r for _, r in s) / 1024
    flat = late <= early * (1 + args.max_growth) + args.slack_mib
    ok = ok and flat
    print(f"{daemon:<16}{n:>8}{early:>11.1f}{late:>10.1f}{peak:>10.1f}  {'flat' if flat else 'GREW'}")
sys.exit(0 if ok else 1)
