//! docs/querying.md's query guide works: every DuckDB and Spark snippet runs against a dataset
//! runs wrote, including an all-digit app id, recovered 5-minute points and a file of
//! schema version 1, and Spark (pyspark in local mode on the machine's Java) sees every
//! column with the right type and the same rows as DuckDB.

use std::process::Command;

use crate::kit::*;

/// A dataset of both granularities: a run, a 3-hour outage, and a run 9 hours later
/// that recovers the gaps at 5 minutes; one slot file rewritten as schema version 1 (no
/// `interval_s`), as an older rtcq wrote it. Returns the rows a reader should see.
async fn dataset(dir: &std::path::Path) -> Vec<Key> {
    let times = [
        t0(),
        t0() + chrono::TimeDelta::hours(3),
        t0() + chrono::TimeDelta::hours(12),
    ];
    let targets = format!(
        "[recovery]\nrequests_per_second = 50.0\n{MIXED_TARGETS}\n[[targets]]\napp_id = \"007\"\nindicators = [\"stall_rate\", \"join_room_success_rate\"]\n[[targets]]\napp_id = \"demo-app\"\nindicators = [\"stall_rate\"]\nproduct_types = [\"native\", \"web\"]\n"
    );
    let mut cfg = None;
    for now in times {
        let emu = emulator_with(rtcq_emulator::EmulatorConfig {
            now: Some(now),
            requests_per_second: None,
            offline_requests_per_second: None,
            ..Default::default()
        })
        .await;
        let path = cfg.get_or_insert_with(|| {
            let sink = dir.join("demo-data").display().to_string();
            write_pipeline_to(dir, "guide", &emu.url(), 50.0, &sink, &targets)
        });
        let out = rtcq_async(run_args(path, now, &["--endpoint", &emu.url()])).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let pipeline = load(&cfg.unwrap());
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let mut expected = expected_first_run(&pipeline, times[0]);
    for t in pipeline.targets.iter() {
        let (gap, fetched) = ("2026-11-25T14:01:00Z", "2026-11-25T14:59:00Z");
        expected.extend(expected_for(t, at(gap), at(fetched), times[1]));
        let (horizon, settled) = ("2026-11-25T23:01:00Z", "2026-11-25T23:59:00Z");
        expected.extend(expected_for(t, at(horizon), at(settled), times[2]));
        expected.extend(expected_recovered(
            t,
            at("2026-11-25T11:59:00Z"),
            at(gap),
            times[2],
        ));
    }
    expected.sort();
    assert_exact(&read_dataset(&dir.join("demo-data")), &expected);
    let old = dir.join("demo-data/app_id=app-b/date=2026-11-25/guide-1130.parquet");
    let out = Command::new(python())
        .arg("-c")
        .arg(
            "import sys, pyarrow.parquet as pq\n\
             t = pq.read_table(sys.argv[1]).drop_columns(['interval_s'])\n\
             meta = dict(t.schema.metadata or {})\n\
             meta[b'rtcq.schema_version'] = b'1'\n\
             pq.write_table(t.replace_schema_metadata(meta), sys.argv[1])\n",
        )
        .arg(&old)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    expected
}

/// One row of the guide's 30-day daily chart: app, product type, day, the mean in
/// ten-thousandths, seconds covered and 5-minute points.
type Daily = (String, String, String, i64, u64, u64);

/// The daily chart worked out from the rows `expected`, in the snippet's order: each
/// app-level `video_stall_rate` series by UTC day (the `date` partition) over the 30
/// days up to 2026-11-25, its mean weighted by `interval_s` and rounded to 4 decimals,
/// half away from zero. Values have two decimals, so the mean is summed exactly in
/// hundredths; none lies on a rounding boundary, where DuckDB's floating-point sum
/// could round either way.
fn daily_chart(expected: &[Key]) -> Vec<Daily> {
    let last = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let mut days: std::collections::BTreeMap<(String, String, String), (i128, i128, u64)> =
        Default::default();
    for k in expected {
        if k.4 != "video_stall_rate" || k.1.is_some() {
            continue;
        }
        let day = chrono::DateTime::from_timestamp_micros(k.5)
            .unwrap()
            .date_naive();
        if day <= last - chrono::TimeDelta::days(30) || day > last {
            continue;
        }
        let value = f64::from_bits(k.6);
        let cents = (value * 100.0).round();
        assert_eq!(cents / 100.0, value, "two decimals: {k:?}");
        let d = days
            .entry((k.0.clone(), k.3.clone(), day.to_string()))
            .or_default();
        d.0 += cents as i128 * i128::from(k.8);
        d.1 += i128::from(k.8);
        d.2 += u64::from(k.8 == 300);
    }
    days.into_iter()
        .map(
            |((app, product_type, day), (weighted_cents, seconds, five))| {
                // The mean in ten-thousandths: weighted_cents × 100 / seconds, rounded.
                let num = weighted_cents * 100;
                assert_ne!(
                    2 * (num % seconds),
                    seconds,
                    "{app} {product_type} {day} on a boundary"
                );
                let mean = (2 * num + seconds) / (2 * seconds);
                (app, product_type, day, mean as i64, seconds as u64, five)
            },
        )
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_guide_snippet_runs_and_spark_agrees_with_duckdb() {
    needs!(Python, Java);
    let dir = tempfile::tempdir().unwrap();
    let expected = dataset(dir.path()).await;
    let fine = expected.iter().filter(|k| k.8 == 30).count() as u64;
    let recovered = expected.iter().filter(|k| k.8 == 300).count() as u64;
    assert!(fine > 0 && recovered > 0);
    let seconds = 30 * fine + 300 * recovered;

    let guide = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/querying.md");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/query_guide.py");
    let py = python();
    let cwd = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&py)
            .arg(script)
            .arg(guide)
            .current_dir(cwd)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env("TZ", "UTC")
            .env("PYSPARK_PYTHON", &py)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();

    let reference = &seen["reference"];
    assert_eq!(reference["rows"], expected.len());
    assert_eq!(reference["seconds"], seconds);
    assert_eq!(
        reference["app_ids"],
        serde_json::json!(["007", "app-a", "app-b", "demo-app"])
    );
    assert_eq!(reference["dates"], serde_json::json!(["2026-11-25"]));

    let duck = seen["duckdb"].as_array().unwrap();
    assert!(duck.len() >= 2, "{seen}");
    for (i, d) in duck.iter().enumerate() {
        assert!(d["rows"].as_u64().unwrap() > 0, "DuckDB snippet {i}: {d}");
    }
    let column_sum = |d: &serde_json::Value, i: usize| -> u64 {
        d["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[i].as_u64().unwrap())
            .sum()
    };
    // The first snippet covers every app, "007" as a string.
    assert_eq!(duck[0]["app_ids"], reference["app_ids"]);
    // The first snippet keeps the levels and product types apart.
    assert_eq!(
        duck[0]["levels"],
        serde_json::json!(["app", "room", "user"])
    );
    assert_eq!(
        duck[0]["product_types"],
        serde_json::json!(["native", "web"])
    );
    // The view snippet: demo-app's app-level native series only, each point once.
    assert_eq!(duck[1]["app_ids"], serde_json::json!(["demo-app"]));
    let want: u64 = expected
        .iter()
        .filter(|k| k.0 == "demo-app" && k.1.is_none() && k.3 == "native")
        .count() as u64;
    assert_eq!(duck[1]["columns"][3], "points");
    assert_eq!(column_sum(&duck[1], 3), want);
    // `WHERE interval_s = 30`: every real-time point, the version 1 file's included, and
    // no recovered one.
    assert_eq!(duck[2]["columns"][2], "points");
    assert_eq!(column_sum(&duck[2], 2), fine);
    // Weighted by `interval_s`: the seconds covered are those of both granularities.
    assert_eq!(duck[3]["columns"][4], "seconds_covered");
    assert_eq!(column_sum(&duck[3], 4), seconds);
    // The 30-day daily chart: per app-level series and day, video_stall_rate's mean
    // weighted by `interval_s`, exactly as worked out from the rows expected.
    assert_eq!(
        duck[4]["columns"],
        serde_json::json!([
            "app_id",
            "product_type",
            "day",
            "video_stall_rate",
            "seconds_covered",
            "points_5min"
        ])
    );
    let daily = daily_chart(&expected);
    assert!(
        daily.iter().any(|d| d.5 > 0),
        "recovered 5-minute rows are in the chart"
    );
    let seen_daily: Vec<Daily> = duck[4]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mean = r[3].as_f64().unwrap() * 1e4;
            assert!(
                (mean - mean.round()).abs() < 1e-6,
                "rounded to 4 decimals: {r}"
            );
            (
                r[0].as_str().unwrap().to_string(),
                r[1].as_str().unwrap().to_string(),
                r[2].as_str().unwrap().to_string(),
                mean.round() as i64,
                r[4].as_u64().unwrap(),
                r[5].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen_daily, daily);

    let spark = seen["spark"].as_array().unwrap();
    assert!(!spark.is_empty(), "{seen}");
    for s in spark {
        let types = s["types"].as_object().unwrap();
        let want = [
            ("room_id", "string"),
            ("user_id", "string"),
            ("product_type", "string"),
            ("indicator", "string"),
            ("unit", "string"),
            ("timestamp", "timestamp"),
            ("value", "double"),
            ("stream_id", "string"),
            ("interval_s", "int"),
            ("app_id", "string"),
            ("date", "date"),
        ];
        assert_eq!(types.len(), want.len(), "{s}");
        for (name, ty) in want {
            assert_eq!(types[name], ty, "{name}: {s}");
        }
        assert_eq!(s["session_time_zone"], "UTC");
        assert_eq!(s["rows"], reference["rows"]);
        assert_eq!(s["seconds"], seconds, "NULL interval_s read as 30");
        assert_eq!(s["min_ts_us"], reference["min_ts_us"]);
        assert_eq!(s["max_ts_us"], reference["max_ts_us"]);
        assert_eq!(s["app_ids"], reference["app_ids"]);
        assert_eq!(s["dates"], reference["dates"]);
    }
    // The instants are the generator's, in UTC.
    let min = expected.iter().map(|k| k.5).min().unwrap();
    assert_eq!(reference["min_ts_us"], min);
}
