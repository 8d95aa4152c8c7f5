//! Logs on stderr: human-readable text, or one JSON object per line when asked
//! (`--log-format json` or `RTCQ_LOG_FORMAT=json`; `auto` picks JSON when stderr is
//! not a terminal); filtered by `RUST_LOG`.
//!
//! In JSON every field of the spans around an event (the run's `pipeline` and `run_id`)
//! is a top-level key of its line, next to `timestamp`, `level`, `message`, the event's
//! own fields and `target`, so a log store selects one run's lines with one key and no
//! knowledge of the span layout. In text the span prefix (`run{pipeline=… run_id=…}:`)
//! carries them. Text lines are written around the progress bar, never through it.

use std::fmt;
use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::obs::progress::Progress;

static JSON: AtomicBool = AtomicBool::new(false);

/// The shape of the logs on stderr (`--log-format`).
///
/// The values' docs stay out of `--help` (`help = None`): the option's own help already
/// describes them, and per-value help would switch every page to the long layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text on a terminal, JSON otherwise.
    #[value(help = None)]
    Auto,
    /// Human-readable lines.
    #[value(help = None)]
    Text,
    /// One JSON object per line, for log collectors.
    #[value(help = None)]
    Json,
}

/// Whether `format` means JSON lines here: asked for, or stderr is not a terminal.
pub fn wants_json(format: LogFormat) -> bool {
    match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !io::stderr().is_terminal(),
    }
}

/// Whether logs are JSON lines (so nothing else may be printed on stderr).
pub(crate) fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Installs the global subscriber. Text lines hide `progress`'s bar while they print.
pub fn init(format: LogFormat, progress: &Progress) {
    // object_store logs each of its own retries at info: one line per attempt against an
    // unreachable store. Its failures reach the user through rtcq's errors.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,object_store=warn"));
    let json = wants_json(format);
    JSON.store(json, Ordering::Relaxed);
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(SpanFieldsLayer)
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLines)
                    .with_writer(io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(io::stderr().is_terminal())
                    .with_writer(progress.log_writer()),
            )
            .try_init()
    };
    if let Err(e) = result {
        eprintln!("warning: logs not set up: {e}");
    }
}

/// A span's fields as JSON values, kept in the span's extensions.
struct SpanFields(Map<String, Value>);

/// Records every span's fields so [`JsonLines`] can put them on each line.
struct SpanFieldsLayer;

impl<S> Layer<S> for SpanFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(SpanFields(fields)) = ext.get_mut::<SpanFields>() {
            values.record(&mut JsonVisitor(fields));
        }
    }
}

/// Collects fields as JSON values: numbers and booleans stay typed.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let v = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().to_string(), v);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_string(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}").into());
    }
}

/// One JSON object per event: `timestamp`, `level`, `message`, then the fields of the
/// enclosing spans (outermost first), the event's fields, and `target`.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>() {
                    fields.extend(f.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        event.record(&mut JsonVisitor(&mut fields));
        let message = fields.remove("message").unwrap_or(Value::Null);
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Utc::now()
                .to_rfc3339_opts(SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("message".into(), message);
        // serde_json's Map keeps keys sorted: write the three leading keys first by
        // hand, then the rest.
        let head = [
            ("timestamp", &line["timestamp"]),
            ("level", &line["level"]),
            ("message", &line["message"]),
        ];
        let mut out = String::from("{");
        for (i, (k, v)) in head.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_pair(&mut out, k, v);
        }
        for (k, v) in &fields {
            if matches!(k.as_str(), "timestamp" | "level" | "target") {
                continue;
            }
            out.push(',');
            push_pair(&mut out, k, v);
        }
        out.push(',');
        push_pair(&mut out, "target", &Value::from(meta.target()));
        out.push('}');
        writeln!(writer, "{out}")
    }
}

fn push_pair(out: &mut String, key: &str, value: &Value) {
    out.push_str(&Value::from(key).to_string());
    out.push(':');
    out.push_str(&value.to_string());
}
