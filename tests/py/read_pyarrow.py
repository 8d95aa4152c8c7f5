"""Reads an rtcq dataset with pyarrow, from local disk or S3, and prints it as JSON.

Usage: read_pyarrow.py ROOT            a local directory
       read_pyarrow.py s3://BUCKET/PREFIX ENDPOINT   an S3 endpoint such as http://127.0.0.1:9000

S3 is read with pyarrow.fs.S3FileSystem(endpoint_override=..., scheme=...) and the
credentials and region of the AWS_* environment. Hive partitioning with an explicit
partition schema (app_id string, date date32). Timestamps are printed as microseconds
since the epoch and values as their IEEE 754 bit pattern, so the comparison is exact;
rows are sorted, files are relative to ROOT.
"""

import json
import os
import struct
import sys
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

COLUMNS = ["app_id", "date", "room_id", "user_id", "product_type", "indicator", "unit",
           "timestamp", "value", "stream_id", "interval_s"]


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def open_root(argv):
    root = argv[1].rstrip("/")
    if not root.startswith("s3://"):
        return None, root
    endpoint = urlparse(argv[2])
    fs = pafs.S3FileSystem(
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme,
    )
    return fs, root[len("s3://"):]


def main():
    fs, root = open_root(sys.argv)
    part = ds.partitioning(
        pa.schema([("app_id", pa.string()), ("date", pa.date32())]), flavor="hive"
    )
    dataset = ds.dataset(root, format="parquet", partitioning=part, filesystem=fs)
    table = dataset.to_table()
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    cols["timestamp"] = table.column("timestamp").cast(pa.int64()).to_pylist()
    rows = []
    for i in range(table.num_rows):
        row = []
        for name in COLUMNS:
            v = cols[name][i]
            if name == "value":
                v = bits(v)
            elif name == "date":
                v = str(v)
            row.append(v)
        rows.append(row)
    rows.sort(key=lambda r: json.dumps(r))
    print(json.dumps({
        "columns": [[f.name, str(f.type)] for f in table.schema],
        "rows": rows,
        "files": sorted(f[len(root) + 1:] for f in dataset.files),
    }))


if __name__ == "__main__":
    main()
