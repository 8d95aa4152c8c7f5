#!/usr/bin/env python3
"""Figures of the capacity case of scripts/bench.sh from its run directory.

    scripts/bench_capacity.py DIR

DIR holds run-<k>.summary.json, run-<k>.state.json (the state after run k) and
run-<k>.now (the run's clock), plus data/ (the dataset). Prints one Markdown row:
gaps, exit codes, throttled, requests, rows per request, mean window asked for, and the
dataset's duplicate count (DuckDB, when the test venv has it).
"""
import datetime
import json
import os
import sys


def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def horizon(now):
    """now - 60 min + 30 s, rounded up to the 30 s grid (plan::horizon_at)."""
    t = (now - datetime.timedelta(seconds=3570)).timestamp()
    up = -(-int(t) // 30) * 30 if t == int(t) else (int(t) // 30 + 1) * 30
    return datetime.datetime.fromtimestamp(up, datetime.timezone.utc)


def main():
    d = sys.argv[1]
    runs = sorted(
        int(f[4:-13]) for f in os.listdir(d) if f.startswith("run-") and f.endswith(".summary.json")
    )
    codes, gaps, thr, sent, served, deadline = [], 0, 0, 0, 0, 0
    window_s, windows = 0.0, 0
    before = {}
    for k in runs:
        s = json.load(open(f"{d}/run-{k}.summary.json"))
        codes.append(s["exit_code"])
        gaps += s["gaps_recorded"]
        thr += s["requests_throttled"]
        sent += s["requests_sent"]
        served += s["targets_served"]
        deadline += 1 if s["deadline_reached"] else 0
        now = ts(open(f"{d}/run-{k}.now").read().strip())
        state = json.load(open(f"{d}/run-{k}.state.json"))
        for key, t in state["targets"].items():
            c = t.get("cursor")
            if c is None:
                continue
            old = before.get(key)
            if old != c:
                start = ts(old) if old else horizon(now)
                window_s += (ts(c) - start).total_seconds()
                windows += 1
            before[key] = c
    rows = dups = "?"
    try:
        import duckdb

        q = duckdb.sql(
            f"SELECT count(*), count(*) - count(DISTINCT (room_id, user_id, product_type, indicator, timestamp, stream_id)) "
            f"FROM read_parquet('{d}/data/**/*.parquet', hive_partitioning = true)"
        ).fetchall()[0]
        rows, dups = q[0], q[1]
    except ImportError:
        pass
    per_req = f"{rows / sent:,.0f}" if isinstance(rows, int) and sent else "?"
    mean = f"{window_s / windows / 60:.1f} min" if windows else "?"
    exits = ",".join(str(c) for c in codes)
    print(
        f"| capacity, {len(runs)} runs | {sent:,} requests, {served:,} targets served, {thr} throttled, "
        f"{gaps} gaps | rows per request {per_req}, mean window {mean} "
        f"| {rows:,} rows, {dups} duplicates | exit codes {exits} ({deadline} stopped at the deadline) |"
    )


if __name__ == "__main__":
    main()
