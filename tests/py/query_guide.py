"""Runs every query snippet of docs/querying.md's query guide against a dataset and prints what
they saw, as JSON (the last line of stdout).

Usage: query_guide.py docs/querying.md   (run from the directory that holds `data/`)

Fenced blocks tagged ```sql duckdb run in a fresh DuckDB connection each (all their
statements; the last one's rows are kept). Blocks tagged ```python spark run with
exec() in one local Spark session; each must leave a DataFrame named `df`, whose
schema, row count and timestamps are printed next to DuckDB's view of the same data.
"""

import json
import re
import sys

import duckdb

# Files of schema version 1 have no interval_s: read by name.
FULL = ("read_parquet('demo-data/**/*.parquet', hive_partitioning = true, "
        "hive_types = {'app_id': VARCHAR, 'date': DATE}, union_by_name = true)")


def blocks(readme, tag):
    return re.findall(r"^```" + re.escape(tag) + r"\n(.*?)^```", readme, re.S | re.M)


def main():
    with open(sys.argv[1]) as f:
        readme = f.read()
    out = {"duckdb": [], "spark": []}
    for sql in blocks(readme, "sql duckdb"):
        con = duckdb.connect()
        cur = con.execute(sql)
        rows = cur.fetchall()
        columns = [d[0] for d in cur.description]

        def distinct(name):
            if name not in columns:
                return None
            i = columns.index(name)
            return sorted({str(r[i]) for r in rows})

        out["duckdb"].append({
            "columns": columns,
            "rows": len(rows),
            "app_ids": sorted({str(r[0]) for r in rows}) if rows else [],
            "levels": distinct("level"),
            "product_types": distinct("product_type"),
            # The rows themselves when few, for exact checks.
            "values": json.loads(json.dumps(rows, default=str)) if len(rows) <= 2000 else None,
        })
    con = duckdb.connect()
    out["reference"] = {
        "rows": con.execute(f"select count(*) from {FULL}").fetchone()[0],
        "seconds": con.execute(
            f"select sum(coalesce(interval_s, 30)) from {FULL}"
        ).fetchone()[0],
        "min_ts_us": con.execute(f'select epoch_us(min("timestamp")) from {FULL}').fetchone()[0],
        "max_ts_us": con.execute(f'select epoch_us(max("timestamp")) from {FULL}').fetchone()[0],
        "app_ids": sorted(r[0] for r in con.execute(f"select distinct app_id from {FULL}").fetchall()),
        "dates": sorted(str(r[0]) for r in con.execute(f"select distinct date from {FULL}").fetchall()),
    }

    spark_blocks = blocks(readme, "python spark")
    if spark_blocks:
        from pyspark.sql import SparkSession, functions as F

        # A small local session the snippets' getOrCreate() picks up.
        session = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.driver.host", "127.0.0.1")
            # A short-lived test JVM: skip the optimising JIT, it only costs here.
            .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        for code in spark_blocks:
            ns = {}
            exec(compile(code, "docs/querying.md (python spark)", "exec"), ns)
            df = ns["df"]
            # One job for every figure.
            agg = df.agg(
                F.count(F.lit(1)).alias("n"),
                F.sum("interval_s").alias("seconds"),
                F.min(F.unix_micros("timestamp")).alias("min_ts"),
                F.max(F.unix_micros("timestamp")).alias("max_ts"),
                F.collect_set("app_id").alias("app_ids"),
                F.collect_set(F.col("date").cast("string")).alias("dates"),
            ).collect()[0]
            out["spark"].append({
                "types": {f.name: f.dataType.simpleString() for f in df.schema.fields},
                "rows": agg["n"],
                "seconds": agg["seconds"],
                "min_ts_us": agg["min_ts"],
                "max_ts_us": agg["max_ts"],
                "app_ids": sorted(agg["app_ids"]),
                "dates": sorted(agg["dates"]),
                "session_time_zone": session.conf.get("spark.sql.session.timeZone"),
            })
        session.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
