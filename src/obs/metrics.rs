//! The run summary as Prometheus metrics (text exposition format 0.0.4): written to a
//! file for node-exporter's textfile collector (`--metrics-file`, temp file in the same
//! directory, then rename) or pushed to a Pushgateway (`--pushgateway`, HTTP PUT to
//! `URL/metrics/job/rtcq/pipeline/<name>`, which replaces that group).
//!
//! Each figure is the last run's, a gauge: what that run did, not a process-lifetime
//! counter (a batch job has no lifetime to count over), so no name ends in `_total`.
//! Per-target figures are summed up per app, so the series stay bounded.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::obs::summary::Summary;
use crate::obs::summary::{DiscoveryReport, RecoveryReport};

/// Renders `summary` in the text exposition format, HELP and TYPE lines included.
pub(crate) fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let p = [("pipeline", summary.pipeline.as_str())];
    for f in FIGURES {
        family(&mut out, f.name, f.help);
        sample(&mut out, f.name, &p, (f.value)(summary));
    }
    if let Some(d) = &summary.discovery {
        for f in DISCOVERY {
            family(&mut out, f.name, f.help);
            sample(&mut out, f.name, &p, (f.value)(d));
        }
    }
    if let Some(r) = &summary.recovery {
        for f in RECOVERY {
            family(&mut out, f.name, f.help);
            sample(&mut out, f.name, &p, (f.value)(r));
        }
    }
    app_figures(&mut out, summary);
    out
}

/// The recovery gauges, written unless `[recovery] enabled = false`.
const RECOVERY: &[Figure<RecoveryReport>] = &[
    Figure {
        name: "rtcq_recovery_requests",
        help: "ListQuality requests sent by the last run to recover gaps and load history, retries included.",
        value: |r| r.recovery_requests as f64,
    },
    Figure {
        name: "rtcq_recovery_throttled",
        help: "ListQuality answers of the last run that said it was too fast.",
        value: |r| r.recovery_throttled as f64,
    },
    Figure {
        name: "rtcq_gaps_recovered",
        help: "Gap ranges the last run recovered from ListQuality at 5-minute granularity.",
        value: |r| r.gaps_recovered as f64,
    },
    Figure {
        name: "rtcq_points_recovered",
        help: "5-minute points the last run wrote from ListQuality.",
        value: |r| r.points_recovered as f64,
    },
    Figure {
        name: "rtcq_recovery_failed",
        help: "ListQuality requests of the last run that failed for good; their gaps stay owed.",
        value: |r| r.recovery_failed as f64,
    },
    Figure {
        name: "rtcq_gaps_owed",
        help: "Gap ranges the offline API has that the last run left for a later run.",
        value: |r| r.gaps_owed as f64,
    },
    Figure {
        name: "rtcq_history_requests",
        help: "ListQuality requests the last run sent for history ([recovery] history), retries not counted.",
        value: |r| r.history_requests as f64,
    },
    Figure {
        name: "rtcq_history_recovered",
        help: "History ranges the last run loaded from ListQuality at 5-minute granularity.",
        value: |r| r.history_recovered as f64,
    },
    Figure {
        name: "rtcq_history_points",
        help: "5-minute history points the last run wrote.",
        value: |r| r.history_points as f64,
    },
    Figure {
        name: "rtcq_history_owed",
        help: "History requests still owed after the last run, due now or later.",
        value: |r| r.history_owed as f64,
    },
];

/// The room discovery gauges, written only for pipelines with `rooms = "active"`.
const DISCOVERY: &[Figure<DiscoveryReport>] = &[
    Figure {
        name: "rtcq_room_info_requests",
        help: "ListRoomInfo requests sent by the last run, retries included.",
        value: |d| d.room_info_requests as f64,
    },
    Figure {
        name: "rtcq_calls_found",
        help: "Calls the last run's room discovery listed and follows.",
        value: |d| d.calls_found as f64,
    },
    Figure {
        name: "rtcq_calls_dropped",
        help: "Calls listed without a room id or with unreadable times, dropped.",
        value: |d| d.calls_dropped as f64,
    },
    Figure {
        name: "rtcq_rooms_active",
        help: "Discovered rooms that were targets of the last run.",
        value: |d| d.rooms_active as f64,
    },
    Figure {
        name: "rtcq_rooms_retired",
        help: "Discovered rooms the last run retired: their last call ended and was fetched.",
        value: |d| d.rooms_retired as f64,
    },
    Figure {
        name: "rtcq_room_targets_waiting",
        help: "Discovered room targets the last run left with owed slots for a later run.",
        value: |d| d.room_targets_waiting as f64,
    },
];

/// One run-wide gauge: its name, its HELP text and how to read it off a summary.
struct Figure<T = Summary> {
    name: &'static str,
    help: &'static str,
    value: fn(&T) -> f64,
}

/// The run-wide gauges, one sample each, labelled by pipeline, in output order. A
/// table keeps names, help and order in one place; [`render`] writes it top to bottom.
const FIGURES: &[Figure] = &[
    Figure {
        name: "rtcq_rows_written",
        help: "Rows written by the last run.",
        value: |s| s.rows_written as f64,
    },
    Figure {
        name: "rtcq_files_written",
        help: "Slot files written by the last run.",
        value: |s| s.files_written as f64,
    },
    Figure {
        name: "rtcq_requests_planned",
        help: "Requests the last run planned.",
        value: |s| s.requests_planned as f64,
    },
    Figure {
        name: "rtcq_requests_sent",
        help: "API requests sent by the last run, retries included.",
        value: |s| s.requests_sent as f64,
    },
    Figure {
        name: "rtcq_requests_retried",
        help: "API requests the last run retried.",
        value: |s| s.requests_retried as f64,
    },
    Figure {
        name: "rtcq_requests_throttled",
        help: "API answers of the last run that said it was too fast.",
        value: |s| s.requests_throttled as f64,
    },
    Figure {
        name: "rtcq_requests_failed",
        help: "API requests of the last run that failed after retries.",
        value: |s| s.requests_failed as f64,
    },
    Figure {
        name: "rtcq_slots_pending",
        help: "Slots left pending after the last run, fetched by the next.",
        value: |s| s.slots_pending as f64,
    },
    Figure {
        name: "rtcq_gaps_recorded",
        help: "Lost ranges the last run recorded in the gap ledger.",
        value: |s| s.gaps_recorded as f64,
    },
    Figure {
        name: "rtcq_targets",
        help: "Targets in the pipeline.",
        value: |s| s.targets as f64,
    },
    Figure {
        name: "rtcq_capacity_targets",
        help: "Targets the pipeline's rate, schedule and run time serve without loss.",
        value: |s| s.capacity as f64,
    },
    Figure {
        name: "rtcq_over_capacity",
        help: "1 when the pipeline has more targets than its capacity: data is lost every hour.",
        value: |s| if s.over_capacity { 1.0 } else { 0.0 },
    },
    Figure {
        name: "rtcq_targets_deferred",
        help: "Targets the last run left for the next one (its deadline came first).",
        value: |s| s.targets_deferred as f64,
    },
    Figure {
        name: "rtcq_api_clock_offset_seconds",
        help: "How far the API's clock (its answers' Date) is ahead of the job's; negative: behind.",
        value: |s| s.api_clock_offset_seconds.unwrap_or(0.0),
    },
    Figure {
        name: "rtcq_targets_at_risk",
        help: "Targets whose owed data leaves the API's horizon before the next runs reach it.",
        value: |s| s.targets_at_risk as f64,
    },
    Figure {
        name: "rtcq_max_lag_seconds",
        help: "Age of the oldest data owed by any target (0 when none owes anything).",
        value: |s| s.max_lag_seconds.unwrap_or(0) as f64,
    },
    Figure {
        name: "rtcq_last_run_exit_code",
        help: "Exit code of the last run (0 done, 3 incomplete, 4 busy; see the README).",
        value: |s| u8::from(s.exit_code) as f64,
    },
    Figure {
        name: "rtcq_last_run_timestamp_seconds",
        help: "When the last run finished, in seconds since the Unix epoch.",
        value: |s| s.finished_at.timestamp_micros() as f64 / 1e6,
    },
    Figure {
        name: "rtcq_run_duration_seconds",
        help: "How long the last run took.",
        value: Summary::duration_seconds,
    },
];

/// Per-app figures: how far the app's most-behind target is, how many targets and rooms
/// it has and how many wait. One series per app (bounded), not per target: discovered
/// rooms come and go and would make short-lived series without end.
fn app_figures(out: &mut String, summary: &Summary) {
    #[derive(Default)]
    struct App<'a> {
        max_lag: Option<i64>,
        targets: u64,
        waiting: u64,
        rooms: std::collections::BTreeSet<&'a str>,
    }
    let mut apps: std::collections::BTreeMap<&str, App<'_>> = Default::default();
    for l in &summary.lag {
        let a = apps.entry(l.app_id.as_str()).or_default();
        a.targets += 1;
        if l.pending_slots > 0 {
            a.waiting += 1;
        }
        if let Some(room) = &l.room_id {
            a.rooms.insert(room);
        }
        if let Some(s) = l.lag_seconds {
            a.max_lag = Some(a.max_lag.map_or(s, |m| m.max(s)));
        }
    }
    if apps.is_empty() {
        return;
    }
    type Figure = fn(&App<'_>) -> Option<f64>;
    let families: [(&str, &str, Figure); 4] = [
        (
            "rtcq_app_max_lag_seconds",
            "How far the app's most-behind target is behind the last run's now.",
            |a| a.max_lag.map(|s| s as f64),
        ),
        (
            "rtcq_app_targets",
            "The app's targets: listed, and discovered rooms followed.",
            |a| Some(a.targets as f64),
        ),
        (
            "rtcq_app_rooms",
            "Rooms of the app with a target (listed or discovered).",
            |a| Some(a.rooms.len() as f64),
        ),
        (
            "rtcq_app_targets_waiting",
            "The app's targets with slots still pending after the last run.",
            |a| Some(a.waiting as f64),
        ),
    ];
    for (name, help, value) in families {
        family(out, name, help);
        for (app, a) in &apps {
            if let Some(v) = value(a) {
                let labels = [("pipeline", summary.pipeline.as_str()), ("app_id", *app)];
                sample(out, name, &labels, v);
            }
        }
    }
}

fn family(out: &mut String, name: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(value));
}

/// A label value escaped per the text format: backslash, double quote, line feed.
pub(crate) fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Writes `text` to `path` the way the textfile collector needs: a temporary file in
/// the same directory (a `.`-name the collector ignores), then a rename over `path`.
pub(crate) fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "metrics".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The Pushgateway URL of a pipeline's group: `URL/metrics/job/rtcq/pipeline/<name>`.
pub(crate) fn push_url(base: &str, pipeline: &str) -> String {
    let mut name = String::new();
    for b in pipeline.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            name.push(b as char);
        } else {
            let _ = write!(name, "%{b:02X}");
        }
    }
    format!(
        "{}/metrics/job/rtcq/pipeline/{name}",
        base.trim_end_matches('/')
    )
}

/// Why a push failed, with no URL credentials in it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PushError {
    #[error("--pushgateway {0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("cannot reach the Pushgateway at {host}: {source}")]
    Send {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the Pushgateway at {host} answered {status}: {body}")]
    Status {
        host: String,
        status: u16,
        body: String,
    },
}

/// PUTs `text` as the pipeline's group on the Pushgateway at `base`.
pub(crate) async fn push(base: &str, pipeline: &str, text: &str) -> Result<(), PushError> {
    let url = reqwest::Url::parse(&push_url(base, pipeline))
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| PushError::BadUrl(redact(base)))?;
    // Only host and port in messages: the URL may hold basic-auth credentials.
    let host = format!(
        "{}{}",
        url.host_str().unwrap_or("?"),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| PushError::Send {
            host: host.clone(),
            source: e.without_url(),
        })?;
    let resp = client
        .put(url)
        .header("content-type", "text/plain; version=0.0.4")
        .body(text.to_string())
        .send()
        .await
        .map_err(|e| PushError::Send {
            host: host.clone(),
            source: e.without_url(),
        })?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(PushError::Status {
            host,
            status: status.as_u16(),
            body: body.chars().take(300).collect(),
        });
    }
    Ok(())
}

/// `url` without anything between `://` and `@`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://…@{}", &url[..s], &url[a + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::obs::summary::Exit;
    use crate::obs::summary::TargetLag;
    use chrono::{DateTime, Utc};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn renders_every_figure_with_help_type_and_escaped_labels() {
        let mut s = Summary::stopped("demo", "r1", &Clock::system(), 2);
        s.errors.push("x".into());
        s.exit_code = Exit::Incomplete;
        (s.started_at, s.now) = (at("2026-11-25T12:00:10Z"), at("2026-11-25T12:00:10Z"));
        s.finished_at = at("2026-11-25T12:00:12.5Z");
        s.rows_written = 1200;
        s.requests_sent = 3;
        s.lag = vec![
            TargetLag {
                target: "app=a\"b product=native".into(),
                app_id: "a\"b".into(),
                product_type: "native".into(),
                room_id: Some("r\\1\nx".into()),
                user_id: None,
                cursor: None,
                lag_seconds: Some(310),
                pending_slots: 0,
            },
            TargetLag {
                target: "never".into(),
                app_id: "a".into(),
                product_type: "web".into(),
                room_id: None,
                user_id: None,
                cursor: None,
                lag_seconds: None,
                pending_slots: 0,
            },
        ];
        let text = render(&s);
        for line in [
            "# HELP rtcq_rows_written Rows written by the last run.",
            "# TYPE rtcq_rows_written gauge",
            "rtcq_rows_written{pipeline=\"demo\"} 1200",
            "rtcq_requests_sent{pipeline=\"demo\"} 3",
            "rtcq_last_run_exit_code{pipeline=\"demo\"} 3",
            "rtcq_last_run_timestamp_seconds{pipeline=\"demo\"} 1795608012.5",
            "rtcq_run_duration_seconds{pipeline=\"demo\"} 2.5",
            "rtcq_app_max_lag_seconds{pipeline=\"demo\",app_id=\"a\\\"b\"} 310",
            "rtcq_app_targets{pipeline=\"demo\",app_id=\"a\\\"b\"} 1",
            "rtcq_app_rooms{pipeline=\"demo\",app_id=\"a\\\"b\"} 1",
            "rtcq_app_targets_waiting{pipeline=\"demo\",app_id=\"a\"} 0",
            "rtcq_app_targets{pipeline=\"demo\",app_id=\"a\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n---\n{text}");
        }
        // An app whose targets never ran has no lag sample; no series per target.
        assert_eq!(text.matches("rtcq_app_max_lag_seconds{").count(), 1);
        assert!(!text.contains("rtcq_target_lag_seconds"), "{text}");
        assert!(
            !text.contains("_total"),
            "gauges are not named as counters: {text}"
        );
        // Without recovery (`enabled = false`) no recovery gauge is written.
        assert!(!text.contains("rtcq_gaps_owed"), "{text}");
        // Every sample's family has HELP and TYPE.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} gauge\n")), "{name}");
        }
    }

    #[test]
    fn recovery_figures_are_gauges_of_the_last_run() {
        let mut s = Summary::stopped("demo", "r1", &Clock::system(), 2);
        s.errors.push("x".into());
        s.recovery = Some(RecoveryReport {
            recovery_requests: 4,
            recovery_throttled: 1,
            gaps_recovered: 3,
            points_recovered: 150,
            recovery_failed: 1,
            gaps_owed: 2,
            history_requests: 3,
            history_recovered: 2,
            history_points: 5_000,
            history_owed: 4,
        });
        let text = render(&s);
        for line in [
            "# TYPE rtcq_recovery_requests gauge",
            "rtcq_recovery_requests{pipeline=\"demo\"} 4",
            "rtcq_recovery_throttled{pipeline=\"demo\"} 1",
            "rtcq_gaps_recovered{pipeline=\"demo\"} 3",
            "rtcq_points_recovered{pipeline=\"demo\"} 150",
            "rtcq_recovery_failed{pipeline=\"demo\"} 1",
            "# HELP rtcq_gaps_owed Gap ranges the offline API has that the last run left for a later run.",
            "rtcq_gaps_owed{pipeline=\"demo\"} 2",
            "rtcq_history_requests{pipeline=\"demo\"} 3",
            "rtcq_history_recovered{pipeline=\"demo\"} 2",
            "rtcq_history_points{pipeline=\"demo\"} 5000",
            "rtcq_history_owed{pipeline=\"demo\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n---\n{text}");
        }
    }

    #[test]
    fn push_url_and_redaction() {
        assert_eq!(
            push_url("http://pg:9091/", "demo"),
            "http://pg:9091/metrics/job/rtcq/pipeline/demo"
        );
        assert_eq!(
            push_url("http://pg:9091", "a b/c"),
            "http://pg:9091/metrics/job/rtcq/pipeline/a%20b%2Fc"
        );
        assert_eq!(redact("https://u:secret@pg:9091"), "https://…@pg:9091");
    }

    #[test]
    fn file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rtcq_demo.prom");
        write_file(&p, "a 1\n").unwrap();
        write_file(&p, "b 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("rtcq_demo.prom")]);
    }
}
