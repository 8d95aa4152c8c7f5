//! `rtcq-emulator`: serve the emulator until SIGINT or SIGTERM.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;

use super::faults::{FailRoom, FaultKind, parse_fail_room, parse_fault};
use super::offline;
use super::{DEMO_ACCESS_KEY, DEMO_SECRET_KEY, EmulatorConfig, Faults, serve_forever};

/// Arguments of `rtcq-emulator`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port (printed on the first line).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,
    /// Start the data clock at this RFC 3339 instant (it then advances in real time).
    /// Signatures are still checked against the real clock.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    pub(crate) now: Option<DateTime<Utc>>,
    /// Refuse a `ListRealTimeQuality` window whose EndTime is after the data clock's now
    /// (InvalidParameter.OutofTimeRange), as a strict API would; by default such a
    /// window is answered with what is settled.
    #[arg(long)]
    pub(crate) refuse_future_end: bool,
    /// The account's apps (repeatable): any other AppId is refused with
    /// InvalidParameter.NotExistAppId. By default every app exists.
    #[arg(long = "app", value_name = "APP_ID")]
    pub(crate) apps: Vec<String>,
    /// Requests per second per access key; 0 for unlimited.
    #[arg(long, value_name = "RATE", default_value_t = 2.0, value_parser = parse_rate)]
    pub(crate) rate_limit: f64,
    /// `ListRoomInfo` requests per second per access key; 0 for unlimited.
    #[arg(long, value_name = "RATE", default_value_t = 10.0, value_parser = parse_rate)]
    pub(crate) room_info_rate_limit: f64,
    /// `ListQuality` requests per second per access key; 0 for unlimited.
    #[arg(long, value_name = "RATE", default_value_t = offline::REQUESTS_PER_SECOND, value_parser = parse_rate)]
    pub(crate) offline_rate_limit: f64,
    /// Added latency before every answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub(crate) latency_ms: u64,
    /// Inject a fault into this fraction of admitted requests (repeatable): KIND is
    /// throttle (429 FlowLimitExceeded), internal-error (500, 100014), fail-to-connect
    /// (502, 100015), unavailable (503 ServiceUnavailableTemp), gateway-timeout (504,
    /// 100016), error-in-200 (InternalError inside a 200), latency (answer after
    /// --fault-latency-ms), timeout (answer after --fault-timeout-ms), drop (close the
    /// connection without answering), truncate (200 with the body cut in half) or
    /// malformed (200 with a non-JSON body); RATE is 0 to 1 or a percentage.
    #[arg(long = "fault", value_name = "KIND=RATE", value_parser = parse_fault)]
    pub(crate) faults: Vec<(FaultKind, f64)>,
    /// Seed of the per-request fault choice: the same seed gives the same faults to the
    /// same request numbers.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) fault_seed: u64,
    /// Consecutive requests a throttle fault refuses.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) fault_burst: u64,
    /// Extra delay of a latency fault, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub(crate) fault_latency_ms: u64,
    /// How long a timeout fault waits before answering, in milliseconds (make it longer
    /// than the client's request timeout).
    #[arg(long, value_name = "MS", default_value_t = 120_000)]
    pub(crate) fault_timeout_ms: u64,
    /// Answer HTTP 500 InternalError to the first N requests for one app and room.
    #[arg(long, value_name = "APP:ROOM:N", value_parser = parse_fail_room)]
    pub(crate) fail_room: Option<FailRoom>,
}

impl EmulatorArgs {
    /// The faults these arguments ask for.
    pub(crate) fn faults(&self) -> Faults {
        let mut f = Faults {
            seed: self.fault_seed,
            throttle_burst: self.fault_burst,
            latency: Duration::from_millis(self.fault_latency_ms),
            timeout: Duration::from_millis(self.fault_timeout_ms),
            fail_room: self.fail_room.clone(),
            ..Faults::default()
        };
        for (kind, rate) in &self.faults {
            f = f.with(*kind, *rate);
        }
        f
    }
}

fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2024-05-01T12:00:00Z: {e}"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate: give requests per second, e.g. 2 (0 for unlimited)"
        )),
    }
}

/// Reads the credentials from `VOLC_ACCESSKEY`, `VOLC_SECRETKEY` and
/// `VOLC_SESSION_TOKEN` (the demo pair when both keys are unset), binds, prints
/// `listening on http://<addr>` as the first line of stdout, and serves until SIGINT or
/// SIGTERM.
pub async fn run_cli(args: EmulatorArgs) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (access_key, secret_key) = match (env("VOLC_ACCESSKEY"), env("VOLC_SECRETKEY")) {
        (Some(ak), Some(sk)) => (ak, sk),
        (None, None) => (DEMO_ACCESS_KEY.to_string(), DEMO_SECRET_KEY.to_string()),
        (Some(_), None) => anyhow::bail!(
            "VOLC_ACCESSKEY is set but VOLC_SECRETKEY is not: set both, or neither for the demo pair"
        ),
        (None, Some(_)) => anyhow::bail!(
            "VOLC_SECRETKEY is set but VOLC_ACCESSKEY is not: set both, or neither for the demo pair"
        ),
    };
    let cfg = EmulatorConfig {
        access_key,
        secret_key,
        session_token: env("VOLC_SESSION_TOKEN"),
        now: args.now,
        requests_per_second: (args.rate_limit > 0.0).then_some(args.rate_limit),
        room_info_requests_per_second: (args.room_info_rate_limit > 0.0)
            .then_some(args.room_info_rate_limit),
        offline_requests_per_second: (args.offline_rate_limit > 0.0)
            .then_some(args.offline_rate_limit),
        latency: Duration::from_millis(args.latency_ms),
        faults: args.faults(),
        refuse_future_end: args.refuse_future_end,
        apps: (!args.apps.is_empty()).then(|| args.apps.clone()),
    };
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}").context("cannot write to stdout")?;
        out.flush().context("cannot write to stdout")?;
    }
    tracing::info!(
        access_key = %cfg.access_key,
        session_token = cfg.session_token.is_some(),
        now = %cfg.now.map_or("the real clock".to_string(), crate::rules::rfc),
        rate_limit = %cfg.requests_per_second.map_or("none".to_string(), |r| r.to_string()),
        latency_ms = args.latency_ms,
        faults = ?cfg.faults.rates,
        fault_seed = cfg.faults.seed,
        fail_room = ?cfg.faults.fail_room,
        "emulator ready"
    );
    let stats = serve_forever(listener, cfg, shutdown_signal())
        .await
        .context("emulator failed")?;
    tracing::info!(
        requests = stats.requests,
        throttled = stats.throttled,
        by_status = ?stats.by_status,
        "emulator stopped"
    );
    Ok(())
}

/// Completes on SIGINT or (on Unix) SIGTERM. A signal that cannot be registered is
/// simply never awaited.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Top {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn defaults_and_parsing() {
        let a = Top::try_parse_from(["x"]).unwrap().args;
        assert_eq!(a.listen, "127.0.0.1:8080");
        assert_eq!(a.now, None);
        assert_eq!(a.rate_limit, 2.0);
        assert_eq!(a.offline_rate_limit, 2.0);
        assert_eq!(a.latency_ms, 0);
        let a = Top::try_parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--now",
            "2024-05-01T20:00:00+08:00",
            "--rate-limit",
            "0",
            "--latency-ms",
            "25",
            "--offline-rate-limit",
            "0",
        ])
        .unwrap()
        .args;
        assert_eq!(a.offline_rate_limit, 0.0);
        assert_eq!(a.now.unwrap().to_rfc3339(), "2024-05-01T12:00:00+00:00");
        assert_eq!((a.rate_limit, a.latency_ms), (0.0, 25));
        assert!(Top::try_parse_from(["x", "--rate-limit", "-1"]).is_err());
        assert!(Top::try_parse_from(["x", "--offline-rate-limit", "-1"]).is_err());
        assert!(Top::try_parse_from(["x", "--now", "yesterday"]).is_err());
        assert!(a.faults.is_empty());
    }

    #[test]
    fn fault_flags() {
        let a = Top::try_parse_from([
            "x",
            "--fault",
            "drop=0.1",
            "--fault",
            "throttle=50%",
            "--fault-seed",
            "42",
            "--fault-burst",
            "3",
            "--fault-timeout-ms",
            "2000",
            "--fail-room",
            "app-a:room-1:2",
        ])
        .unwrap()
        .args;
        let f = a.faults();
        assert_eq!(
            f.rates,
            vec![(FaultKind::Drop, 0.1), (FaultKind::Throttle, 0.5)]
        );
        assert_eq!((f.seed, f.throttle_burst), (42, 3));
        assert_eq!(f.timeout, Duration::from_secs(2));
        assert_eq!(f.fail_room.unwrap().requests, 2);
        assert!(Top::try_parse_from(["x", "--fault", "drop=1.5"]).is_err());
        assert!(Top::try_parse_from(["x", "--fault-burst", "0"]).is_err());
    }
}
