"""The one table of `make bench`: every phase's figures (.run/bench-<phase>.json), each
next to the same-run ceiling it is bounded by, as a ratio, with its target. Writes the
whole as .run/bench.json.

    python3 deploy/bench/table.py SECONDS_TAKEN
"""
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone


def load(name):
    try:
        with open(f".run/bench-{name}.json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def command(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def postgres_version():
    import glob
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return command(bins[-1], "--version") if bins else ""


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem_kib = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return {"cores": os.cpu_count(), "cpu": model, "memoryGiB": round(mem_kib / 1024 / 1024, 1),
            "kernel": platform.release(), "postgres": postgres_version(),
            "redis": command("redis-server", "--version").split(" sha=")[0],
            "swift": (command("swift", "--version").splitlines() or [""])[0],
            "commit": command("git", "rev-parse", "--short", "HEAD")}


rows = []  # (section, name, value, ceiling, ratio, target, met)


def row(section, name, value, ceiling=None, ratio=None, target=None, met=None):
    rows.append({"section": section, "name": name, "value": value, "ceiling": ceiling, "ratio": ratio,
                 "target": target, "met": met})


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else None
    c, h, a, f, p = load("collector"), load("hydration"), load("aggregator"), load("forwarder"), load("pipeline")
    hydrated_x2 = h["ceilings"]["copyHydratedRows"]["binary2RowsPerSecond"] if h else None

    if c:
        raw = c["ceilings"]["copyRawBatches"]
        row("ceilings", "PostgreSQL COPY of raw batches, binary, 2 streams (events/s)", raw["binary2EventsPerSecond"])
        row("ceilings", "PostgreSQL COPY of raw batches, text, 1 stream (events/s)", raw["text1EventsPerSecond"])
        r = c["ceilings"]["redis"]
        row("ceilings", f"Redis LPUSH / RPOP, {r['bytes']:,} B raw batch message (ops/s)", f"{r['lpushPerSecond']:,} / {r['rpopPerSecond']:,}")
        row("ceilings", "nginx, one worker, 204 to the same requests (requests/s)", c["ceilings"]["nginxRequestsPerSecond"])
    if h:
        copy = h["ceilings"]["copyHydratedRows"]
        row("ceilings", "PostgreSQL COPY of hydrated rows, binary, 2 streams (rows/s)", copy["binary2RowsPerSecond"])
        row("ceilings", "PostgreSQL COPY of hydrated rows, binary, 1 stream (rows/s)", copy["binary1RowsPerSecond"])
        row("ceilings", "PostgreSQL COPY of hydrated rows, text, 1 stream (rows/s)", copy["text1RowsPerSecond"])
        r = h["ceilings"]["redisAggregate"]
        row("ceilings", f"Redis LPUSH / RPOP, {r['bytes']:,} B aggregate message (ops/s)", f"{r['lpushPerSecond']:,} / {r['rpopPerSecond']:,}")
    if c:
        ceiling = c["ceilings"]["copyRawBatches"]["binary2EventsPerSecond"]
        ratio = c["eventsPerSecond"] / ceiling
        row("collector alone", "acknowledged events/s (20 per request)", round(c["eventsPerSecond"]), ceiling, ratio, ">= 40 %", ratio >= 0.40)
        nginx = c["ceilings"]["nginxRequestsPerSecond"]
        row("collector alone", "acknowledged requests/s", round(c["requestsPerSecond"]), nginx,
            c["requestsPerSecond"] / nginx if nginx else None)
        row("collector alone", "latency p50 / p99 (ms)", f"{c['latencyMs']['p50']} / {c['latencyMs']['p99']}")
    if h:
        ratio = h["hydrationEventsPerSecond"] / hydrated_x2
        row("workers alone", "hydration events/s (best run)", h["hydrationEventsPerSecond"], hydrated_x2, ratio)
        pairs = h["pairedRuns"]
        median = sorted(pairs, key=lambda p: p["ratio"])[len(pairs) // 2]
        row("workers alone", f"hydration over its own run's COPY, median of {len(pairs)} pairs (issue 5)",
            median["eventsPerSecond"], median["copyRowsPerSecond"], median["ratio"], ">= 30 %", median["ratio"] >= 0.30)
    if a:
        r = a["aggregatorOverHydration"]
        row("workers alone", "aggregator events/s (same events as hydration)", a["aggregatorEventsPerSecond"],
            a["hydrationEventsPerSecond"], r, ">= 1 x hydration", r >= 1)
        for name, q in a.get("queries", {}).items():
            row("workers alone", f"Stats API {name}, {a['largeSiteEvents']:,}-event site, p50 / p99 (ms)",
                f"{q['p50Ms']} / {q['p99Ms']}", None, None, "p99 < 50 ms", q["p99Ms"] < 50)
    if f:
        for sink, s in f.get("sinks", {}).items():
            # Issue 7's target is the webhook path at least as fast as hydration in the same run.
            target = (">= 1 x hydration", s["overHydration"] >= 1) if sink == "webhook" else (None, None)
            row("workers alone", f"forwarder events/s, {sink} sink", s["eventsPerSecond"], f["hydrationEventsPerSecond"],
                s["overHydration"], *target)
    if p:
        good = p["maxSustainedEventsPerSecond"]
        ratio = good / hydrated_x2 if hydrated_x2 else None
        row("end to end", "highest sustained events/s (5 daemons, 1 webhook sink)", good, hydrated_x2, ratio, ">= 20 %",
            ratio >= 0.20 if ratio is not None else None)
        agg, dlv = p["receiptToAggregated"], p["receiptToDelivered"]
        row("end to end", f"receipt -> aggregated p50 / p99 at {p['latencyRate']:,} events/s (ms)", f"{agg['p50Ms']} / {agg['p99Ms']}",
            None, None, "p99 < 2000 ms", agg["p99Ms"] is not None and agg["p99Ms"] < 2000)
        row("end to end", f"receipt -> delivered p50 / p99 at {p['latencyRate']:,} events/s (ms)", f"{dlv['p50Ms']} / {dlv['p99Ms']}")
        for daemon, kib in p["peakMemoryKiB"].items():
            row("end to end", f"peak memory, {daemon} (MiB)", round(kib / 1024, 1), None, None, "flat in make soak")
        cpu = p.get("cpuMicrosecondsPerEvent", {})
        if cpu:
            row("end to end", f"CPU per event at {p['latencyRate']:,} events/s (µs), total", round(sum(cpu.values())))
            for part, us in sorted(cpu.items(), key=lambda kv: -kv[1]):
                row("end to end", f"  of which {part}", round(us))

    info = machine()
    print()
    print(f"make bench — {info['cores']} cores ({info['cpu']}), {info['memoryGiB']} GiB, {info['postgres']}, {info['redis']}, commit {info['commit']}")
    section = None
    for r in rows:
        if r["section"] != section:
            section = r["section"]
            print()
            print(f"{section:<70}{'value':>14}{'ceiling':>12}{'ratio':>8}  target")
        value = f"{r['value']:,}" if isinstance(r["value"], (int, float)) else str(r["value"])
        ceiling = f"{r['ceiling']:,}" if isinstance(r["ceiling"], (int, float)) else ""
        ratio = f"{r['ratio']:.1%}" if isinstance(r["ratio"], float) else ""
        target = "" if r["target"] is None else r["target"] + ("" if r["met"] is None else ("  met" if r["met"] else "  NOT MET"))
        print(f"  {r['name']:<68}{value:>14}{ceiling:>12}{ratio:>8}  {target}")
    missing = [n for n, v in (("collector", c), ("hydration", h), ("aggregator", a), ("forwarder", f), ("pipeline", p)) if not v]
    if missing:
        print(f"\nmissing phases (no .run/bench-<phase>.json): {', '.join(missing)}")
    result = {"measuredAt": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": info,
              "seconds": seconds, "rows": rows,
              "phases": {"collector": c, "hydration": h, "aggregator": a, "forwarder": f, "pipeline": p}}
    with open(".run/bench.json", "w") as out:
        json.dump(result, out, indent=2)
    print(f"\n(written to .run/bench.json{'' if seconds is None else f'; make bench took {seconds / 60:.1f} minutes'})")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
