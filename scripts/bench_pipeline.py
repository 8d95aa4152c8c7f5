#!/usr/bin/env python3
"""Writes a benchmark pipeline file: N room-level targets of one app.

    scripts/bench_pipeline.py --targets 600 --indicators 1 --rps 2 --sink DIR > p.toml

Each target is one room, so a first run (from the horizon) sends one request per target.
Used by scripts/bench.sh; run by hand, not in CI.
"""
import argparse

# The five indicators the API serves; each comes back as two series.
INDICATORS = [
    "join_room_success_rate",
    "stall_rate",
    "first_frame_send_success_rate",
    "first_frame_recv_success_rate",
    "network_trans_delay",
]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", type=int, required=True)
    p.add_argument("--indicators", type=int, default=5, choices=range(1, 6))
    p.add_argument("--rps", type=float, default=2.0)
    p.add_argument("--sink", required=True)
    p.add_argument("--name", default="bench")
    p.add_argument("--app", default="bench-app")
    a = p.parse_args()
    rooms = ",\n  ".join(f'"room-{i:05d}"' for i in range(a.targets))
    inds = ", ".join(f'"{x}"' for x in INDICATORS[: a.indicators])
    print(f'''name = "{a.name}"

[api]
endpoint = "http://127.0.0.1:1"
region = "cn-north-1"
requests_per_second = {a.rps}

[sink]
url = "{a.sink}"
slot = "5m"

[[targets]]
app_id = "{a.app}"
indicators = [{inds}]
rooms = [
  {rooms}
]''')


if __name__ == "__main__":
    main()
