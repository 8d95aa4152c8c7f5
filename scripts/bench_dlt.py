#!/usr/bin/env python3
"""The benchmark peer: the same catch-up as rtcq, as a small dlt pipeline.

One request per room target (five indicators) over [horizon, settled end), signed with
the official SDK's SignerV4, sent by a pool of threads; the answers are flattened into
one row per point (the same columns rtcq writes) and dlt writes Parquet to local disk
(filesystem destination). Run by scripts/bench.sh from .bench-venv (dlt[parquet],
volcengine); prints nothing useful itself, writes --result JSON {rows, seconds}.
"""
import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import dlt
import requests
from dlt.destinations import filesystem
from volcengine.auth.SignerV4 import SignerV4
from volcengine.base.Request import Request
from volcengine.Credentials import Credentials

AK = "AKLTdemo0000000000000000000000"
SK = "demo-secret-do-not-use"
INDICATORS = [
    "join_room_success_rate",
    "stall_rate",
    "first_frame_send_success_rate",
    "first_frame_recv_success_rate",
    "network_trans_delay",
]


def window(now):
    """rtcq's first-run window: from the horizon (60 min back, 30 s margin, on the 30 s
    grid) to the end of the newest settled 5-minute slot."""
    start = now - timedelta(minutes=60) + timedelta(seconds=30)
    s = int(start.timestamp())
    start = datetime.fromtimestamp(-(-s // 30) * 30, timezone.utc)
    e = int((now - timedelta(minutes=1)).timestamp())
    end = datetime.fromtimestamp(e - e % 300, timezone.utc)
    return start, end


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--now", required=True)
    p.add_argument("--targets", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--result", required=True)
    p.add_argument("--threads", type=int, default=16)
    a = p.parse_args()
    now = datetime.fromisoformat(a.now.replace("Z", "+00:00"))
    start, end = window(now)
    fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    host = a.endpoint.split("://", 1)[1].rstrip("/")
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=a.threads)
    session.mount("http://", adapter)

    t_start = time.monotonic()

    def fetch(room):
        # As rtcq does: the horizon moves with the clock while requests queue, so the
        # start is re-cut at send time (the API rejects a start beyond 60 minutes).
        moved, _ = window(now + timedelta(seconds=time.monotonic() - t_start))
        body = json.dumps({
            "AppId": "bench-app", "StartTime": fmt(max(start, moved)), "EndTime": fmt(end),
            "Indicator": INDICATORS, "RoomId": room,
        })
        req = Request()
        req.set_method("POST")
        req.set_host(host)
        req.set_path("/")
        req.set_query({"Action": "ListRealTimeQuality", "Version": "2023-11-01"})
        req.set_headers({"Content-Type": "application/json", "Host": host})
        req.set_body(body)
        SignerV4.sign(req, Credentials(AK, SK, "rtc", "cn-north-1"))
        r = session.post(f"{a.endpoint}/", params=req.query, data=body, headers=req.headers,
                         timeout=60)
        r.raise_for_status()
        res = r.json()["Result"]
        rows = []
        for series in res.get("Indicators") or []:
            for pt in series.get("Data") or []:
                if pt.get("Value") is None:
                    continue
                rows.append({
                    "app_id": "bench-app",
                    "room_id": room,
                    "product_type": None,
                    "indicator": series["Name"],
                    "unit": series.get("Unit", ""),
                    "timestamp": datetime.fromisoformat(pt["TimeStamp"]).astimezone(timezone.utc),
                    "value": float(pt["Value"]),
                    "stream_id": pt.get("StreamId"),
                })
        return rows

    rooms = [f"room-{i:05d}" for i in range(a.targets)]
    counted = [0]

    @dlt.resource(name="quality", write_disposition="append",
                  columns={"product_type": {"data_type": "text", "nullable": True}})
    def quality():
        # Submit a few batches ahead only: Executor.map would submit every request at
        # once and keep every answer that dlt has not taken yet.
        chunk = a.threads * 4
        with ThreadPoolExecutor(a.threads) as pool:
            pending = [pool.submit(fetch, r) for r in rooms[:chunk]]
            nxt = chunk
            while pending:
                rows = pending.pop(0).result()
                if nxt < len(rooms):
                    pending.append(pool.submit(fetch, rooms[nxt]))
                    nxt += 1
                counted[0] += len(rows)
                yield rows

    t0 = time.monotonic()
    pipeline = dlt.pipeline(
        pipeline_name="rtcq_peer",
        destination=filesystem(bucket_url=f"file://{a.out}"),
        dataset_name="rtc",
    )
    pipeline.run(quality(), loader_file_format="parquet")
    seconds = time.monotonic() - t0
    with open(a.result, "w") as f:
        json.dump({"rows": counted[0], "seconds": seconds}, f)


if __name__ == "__main__":
    main()
