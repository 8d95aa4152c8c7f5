#!/usr/bin/env python3
"""Instructions per row by part of a run, from `callgrind_annotate --inclusive=yes`.

    scripts/profile_summary.py ROWS ANNOTATE_OUTPUT

Prints one Markdown table row for scripts/bench.sh (CASES=profile). Run by hand, not in CI.
"""
import re
import sys


def main():
    rows, path = int(sys.argv[1]), sys.argv[2]
    text = open(path).read()

    def ir(name):
        m = re.search(r"^\s*([\d,]+) \([ \d.]+%\)\s+\S*?" + re.escape(name) + r" \[", text, re.M)
        return int(m.group(1).replace(",", "")) if m else 0

    m = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", text)
    total = int(m.group(1).replace(",", "")) if m else 0
    parquet = ir("rtcq::sink::encode::SlotEncoder::flush")
    parts = [
        ("Parquet writer", parquet),
        ("JSON decode", ir("rtcq::api::client::decode_response_with")),
        ("merge and Arrow builders", ir("rtcq::run::buffer::RowStore::merge") - parquet),
        ("signing", ir("rtcq::auth::sign")),
        ("spill", ir("rtcq::run::Runner::spill")),
    ]
    rest = total - sum(v for _, v in parts)
    cells = "; ".join(f"{name} {v / rows:,.0f}" for name, v in parts + [("the rest", rest)])
    print(f"| profile, callgrind | {total / rows:,.0f} instructions per row ({rows:,} rows) | {cells} | | |")


if __name__ == "__main__":
    main()
