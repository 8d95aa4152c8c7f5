//! Injected failures, for tests of retries, repairs and crash safety.
//!
//! Every request that passed the signature check and the throttle gets an index `n`
//! (1, 2, …, in the order they were admitted). Whether request `n` gets a fault, and
//! which one, is a pure function of the seed and `n` ([`Faults::pick`]), so a test that
//! sends its requests one at a time sees the same faults on every run. Each request gets
//! at most one fault: the kinds are tried in [`FaultKind::ALL`] order with their rates
//! added up (a sum above 1 starves the later kinds).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One kind of injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// HTTP 429 `FlowLimitExceeded`, followed by [`Faults::throttle_burst`] - 1 more.
    Throttle,
    /// HTTP 500 `InternalError` (CodeN 100014).
    InternalError,
    /// HTTP 502 `FailToConnect` (CodeN 100015).
    FailToConnect,
    /// HTTP 503 `ServiceUnavailableTemp`.
    Unavailable,
    /// HTTP 504 `InternalServiceTimeout` (CodeN 100016).
    GatewayTimeout,
    /// HTTP 200 whose `ResponseMetadata` carries `InternalError`.
    ErrorIn200,
    /// A correct answer after an extra [`Faults::latency`].
    Latency,
    /// Sleeps [`Faults::timeout`] (longer than the client waits), then answers.
    Timeout,
    /// Reads the request, then closes the connection without answering.
    Drop,
    /// HTTP 200 with the correct body cut in half.
    Truncate,
    /// HTTP 200 with a body that is not JSON.
    Malformed,
}

impl FaultKind {
    /// Every kind, in the order `Faults::pick` tries them.
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Throttle,
        FaultKind::InternalError,
        FaultKind::FailToConnect,
        FaultKind::Unavailable,
        FaultKind::GatewayTimeout,
        FaultKind::ErrorIn200,
        FaultKind::Latency,
        FaultKind::Timeout,
        FaultKind::Drop,
        FaultKind::Truncate,
        FaultKind::Malformed,
    ];

    /// The name used on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FaultKind::Throttle => "throttle",
            FaultKind::InternalError => "internal-error",
            FaultKind::FailToConnect => "fail-to-connect",
            FaultKind::Unavailable => "unavailable",
            FaultKind::GatewayTimeout => "gateway-timeout",
            FaultKind::ErrorIn200 => "error-in-200",
            FaultKind::Latency => "latency",
            FaultKind::Timeout => "timeout",
            FaultKind::Drop => "drop",
            FaultKind::Truncate => "truncate",
            FaultKind::Malformed => "malformed",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                format!("{s:?} is not a fault kind: use one of {}", names.join(", "))
            })
    }
}

/// Fail every request for one app and room (any product type or user), the first
/// `requests` times: for repair tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailRoom {
    /// The app whose room fails.
    pub app_id: String,
    /// The failing room; requests for the whole app are not affected.
    pub room_id: String,
    /// How many of the room's requests fail; the ones after succeed.
    pub requests: u64,
}

/// What every `ListQuality` request gets, for tests of recovery when the offline data
/// cannot be had or cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineFault {
    /// This fault, as [`Faults::room_info`] gives `ListRoomInfo` (a throttle fault starts
    /// no burst, so `ListRealTimeQuality` is not refused with it).
    Kind(FaultKind),
    /// HTTP 403 `AccessDenied` (CodeN 100013): a key whose policy lacks `rtc:ListQuality`,
    /// which no retry cures.
    Denied,
    /// A correct answer with, in each series, two points a reader must not trust: one 5
    /// minutes before the 5-minute bucket of `StartTime` (outside the window asked) and one
    /// 150 s after the first bucket's start (off the grid), both of value 1.0.
    Stray,
}

/// Failures the emulator can inject, off by default. Applied to requests that passed
/// the signature check and the throttle. `ListQuality` requests get only
/// [`Faults::offline`] and are not counted as admitted, so they never shift which
/// `ListRealTimeQuality` requests the other faults hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Every n-th admitted request answers HTTP 500 `InternalError` (CodeN 100014).
    pub internal_error_every: Option<u64>,
    /// Per kind, the fraction of admitted requests (0 to 1) that get it.
    pub rates: Vec<(FaultKind, f64)>,
    /// Seeds the per-request choice.
    pub seed: u64,
    /// How many consecutive requests a `throttle` fault refuses (at least 1).
    pub throttle_burst: u64,
    /// Extra delay of a `latency` fault.
    pub latency: Duration,
    /// How long a `timeout` fault sleeps before answering.
    pub timeout: Duration,
    /// Answer HTTP 500 `InternalError` to one app and room, a number of times.
    pub fail_room: Option<FailRoom>,
    /// Every `ListRoomInfo` request gets this fault (room discovery failing).
    pub room_info: Option<FaultKind>,
    /// Every `ListQuality` request gets this fault (recovery failing, or fed bad points).
    pub offline: Option<OfflineFault>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            internal_error_every: None,
            rates: Vec::new(),
            seed: 0,
            throttle_burst: 1,
            latency: Duration::from_secs(1),
            timeout: Duration::from_secs(120),
            fail_room: None,
            room_info: None,
            offline: None,
        }
    }
}

impl Faults {
    /// `kind` at `rate` on every request (0 to 1), the other settings unchanged.
    pub fn with(mut self, kind: FaultKind, rate: f64) -> Self {
        self.rates.retain(|(k, _)| *k != kind);
        self.rates.push((kind, rate));
        self
    }

    /// Whether any random fault is configured.
    pub(crate) fn any_rate(&self) -> bool {
        self.rates.iter().any(|(_, r)| *r > 0.0)
    }

    /// The fault for the `n`-th admitted request, if any.
    pub(crate) fn pick(&self, n: u64) -> Option<FaultKind> {
        if !self.any_rate() {
            return None;
        }
        let u = unit(mix(self.seed, n));
        let mut cumulative = 0.0;
        for kind in FaultKind::ALL {
            let rate: f64 = self
                .rates
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, r)| r.clamp(0.0, 1.0))
                .sum();
            if rate <= 0.0 {
                continue;
            }
            cumulative += rate;
            if u < cumulative {
                return Some(kind);
            }
        }
        None
    }
}

/// SplitMix64 of the seed and the index: well spread, no dependency.
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed
        .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)`.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses `KIND=RATE` (rate 0 to 1, or a percentage such as `25%`).
pub(crate) fn parse_fault(s: &str) -> Result<(FaultKind, f64), String> {
    let (kind, rate) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KIND=RATE (e.g. internal-error=0.2 or drop=50%)"))?;
    let kind: FaultKind = kind.trim().parse()?;
    let rate = rate.trim();
    let value = match rate.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => rate.parse::<f64>(),
    };
    match value {
        Ok(v) if v.is_finite() && (0.0..=1.0).contains(&v) => Ok((kind, v)),
        _ => Err(format!(
            "{rate:?} is not a rate: give a fraction from 0 to 1 (0.25) or a percentage (25%)"
        )),
    }
}

/// Parses `APP:ROOM:N` (the app id may not contain `:`; the room id may).
pub(crate) fn parse_fail_room(s: &str) -> Result<FailRoom, String> {
    let bad = || format!("{s:?} is not APP:ROOM:N (e.g. app-a:room-1:3)");
    let (app, rest) = s.split_once(':').ok_or_else(bad)?;
    let (room, n) = rest.rsplit_once(':').ok_or_else(bad)?;
    let requests = n.trim().parse::<u64>().map_err(|_| bad())?;
    if app.is_empty() || room.is_empty() {
        return Err(bad());
    }
    Ok(FailRoom {
        app_id: app.to_string(),
        room_id: room.to_string(),
        requests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_are_deterministic_and_follow_the_rates() {
        let f = Faults {
            seed: 7,
            ..Faults::default()
        }
        .with(FaultKind::Drop, 0.25)
        .with(FaultKind::InternalError, 0.25);
        let a: Vec<_> = (1..=4000).map(|n| f.pick(n)).collect();
        let b: Vec<_> = (1..=4000).map(|n| f.pick(n)).collect();
        assert_eq!(a, b);
        let count = |k| a.iter().filter(|p| **p == Some(k)).count();
        assert!((800..1200).contains(&count(FaultKind::Drop)));
        assert!((800..1200).contains(&count(FaultKind::InternalError)));
        let other = Faults {
            seed: 8,
            ..f.clone()
        };
        assert_ne!(a, (1..=4000).map(|n| other.pick(n)).collect::<Vec<_>>());
        let all = Faults::default().with(FaultKind::Timeout, 1.0);
        assert!((1..100).all(|n| all.pick(n) == Some(FaultKind::Timeout)));
        assert!((1..100).all(|n| Faults::default().pick(n).is_none()));
    }

    #[test]
    fn parsing() {
        assert_eq!(parse_fault("drop=0.5"), Ok((FaultKind::Drop, 0.5)));
        assert_eq!(
            parse_fault("error-in-200=25%"),
            Ok((FaultKind::ErrorIn200, 0.25))
        );
        for bad in ["drop", "drop=2", "drop=-1", "nope=0.1", "drop=x"] {
            assert!(parse_fault(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_fail_room("app-a:room:1:3"),
            Ok(FailRoom {
                app_id: "app-a".into(),
                room_id: "room:1".into(),
                requests: 3
            })
        );
        for bad in ["app", "app:room", ":room:1", "app::1", "app:room:x"] {
            assert!(parse_fail_room(bad).is_err(), "{bad}");
        }
    }
}
