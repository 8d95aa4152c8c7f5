"""Reads an rtcq dataset the way users do and prints what each reader sees, as JSON.

Usage: read_dataset.py ROOT

DuckDB: read_parquet('ROOT/**/*.parquet', hive_partitioning=true) with app_id forced to
VARCHAR (an all-digit id would otherwise become a number). pyarrow: pyarrow.dataset with
Hive partitioning and an explicit partition schema. Timestamps are printed as
microseconds since the epoch and values as their IEEE 754 bit pattern (an unsigned
64-bit integer), so the comparison is exact.
"""

import json
import struct
import sys

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

COLUMNS = ["app_id", "date", "room_id", "user_id", "product_type", "indicator", "unit",
           "timestamp", "value", "stream_id", "interval_s"]


VALUE = COLUMNS.index("value")


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def with_bits(row):
    row[VALUE] = bits(row[VALUE])
    return row


def read_duckdb(root):
    con = duckdb.connect()
    opts = "hive_partitioning=true, hive_types={'app_id': VARCHAR}"
    src = f"read_parquet('{root}/**/*.parquet', {opts})"
    with_names = f"read_parquet('{root}/**/*.parquet', {opts}, filename=true)"
    described = con.sql(f"describe select * from {src}").fetchall()
    rows = con.sql(
        f"""select app_id, cast(date as varchar), room_id, user_id, product_type, indicator,
                   unit, epoch_us("timestamp"), value, stream_id, interval_s
            from {src}"""
    ).fetchall()
    files = con.sql(f"select distinct filename from {with_names} order by 1").fetchall()
    glob = f"{root}/**/*.parquet"
    kv = {}
    for name, key, value in con.sql(
        f"select file_name, decode(key), decode(value) from parquet_kv_metadata('{glob}') "
        "where decode(key) like 'rtcq.%'"
    ).fetchall():
        kv.setdefault(name[len(root) + 1:], {})[key] = value
    compression = con.sql(
        f"select distinct compression from parquet_metadata('{glob}')"
    ).fetchall()
    return {
        "columns": [[r[0], r[1]] for r in described],
        "rows": [with_bits(list(r)) for r in rows],
        "files": [f[0][len(root) + 1:] for f in files],
        "kv": kv,
        "compression": sorted(r[0] for r in compression),
    }


def read_pyarrow(root):
    part = ds.partitioning(
        pa.schema([("app_id", pa.string()), ("date", pa.date32())]), flavor="hive"
    )
    dataset = ds.dataset(root, format="parquet", partitioning=part)
    table = dataset.to_table()
    cols = {name: table.column(name) for name in table.column_names}
    ts = cols["timestamp"].cast(pa.int64()).to_pylist()
    date = [str(d) for d in cols["date"].to_pylist()]
    out = []
    for i in range(table.num_rows):
        row = []
        for name in COLUMNS:
            if name == "timestamp":
                row.append(ts[i])
            elif name == "value":
                row.append(bits(cols[name][i].as_py()))
            elif name == "date":
                row.append(date[i])
            else:
                row.append(cols[name][i].as_py())
        out.append(row)
    return {
        "columns": [[f.name, str(f.type)] for f in table.schema],
        "rows": out,
        "files": sorted(f[len(root) + 1:] for f in dataset.files),
    }


def main():
    root = sys.argv[1].rstrip("/")
    print(json.dumps({"duckdb": read_duckdb(root), "pyarrow": read_pyarrow(root)}))


if __name__ == "__main__":
    main()
