//! The HTTP/1.1 server: one hyper connection task per accepted socket, one shared
//! `Inner` holding the config, the data clock, the throttle and the counters.
//!
//! A request goes through, in order: the route ([`verify::check_route`]), the body
//! (read up to [`MAX_BODY`]), the signature ([`verify::verify`]), the action's per-key
//! throttle ([`SlidingWindow`]), injected faults ([`super::faults`]), the body
//! ([`validate::validate`]), the per-room fault and finally [`data::generate`].
//! `ListRoomInfo` and `ListQuality` take their own fault after the throttle and are
//! answered by [`room_info`] and [`offline`]; the random faults and the per-room fault
//! never touch `ListQuality`, so adding offline requests to a test does not move the
//! faults its real-time requests get. The configured latency is slept before every
//! answer; faults that change how the answer is delivered (delay, dropped connection,
//! cut or garbage body) apply after it.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, DATE, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::error::ApiError;
use super::faults::{FaultKind, OfflineFault};
use super::offline::{self, OfflineResult};
use super::room_info;
use super::throttle::SlidingWindow;
use super::verify::Route;
use super::{EmulatorConfig, data, validate, verify};
use crate::rules::DataClock;
use crate::rules::REGION;
use volc_rtc::offline::OFFLINE_ACTION;
use volc_rtc::room_info::{ROOM_INFO_ACTION, RoomInfoPage};
use volc_rtc::{ACTION, QualityResult, ResponseMetadata, SERVICE, VERSION};

/// Largest body accepted; larger ones get HTTP 413 `InvalidParameter`.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// How long a client may take to send the request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`RunningEmulator::shutdown`] waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered or being answered.
    pub requests: u64,
    /// Unsigned requests: a client reading the API's clock from the answer's `Date`.
    /// Refused like any unsigned request (before the throttle), and counted apart from
    /// `requests` and `by_status`, as no action ran.
    pub clock_reads: u64,
    /// Requests refused by the throttle (HTTP 429).
    pub throttled: u64,
    /// Answers sent, by HTTP status.
    pub(crate) by_status: BTreeMap<u16, u64>,
    /// Requests that got an injected fault.
    pub faults: u64,
    /// `ListRealTimeQuality` answers without a single point: a request for a room
    /// outside its calls, or for time whose points are all missing.
    pub empty_answers: u64,
    /// `ListRoomInfo` requests answered.
    pub room_info_answers: u64,
    /// `ListQuality` requests answered (with data or not), so a test can tell recovery
    /// asked for the offline data.
    pub offline_answers: u64,
}

impl Stats {
    /// Answers sent with `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

struct Inner {
    cfg: EmulatorConfig,
    clock: DataClock,
    throttle: Option<Mutex<SlidingWindow>>,
    /// `ListRoomInfo`'s own limit.
    room_info_throttle: Option<Mutex<SlidingWindow>>,
    /// `ListQuality`'s own limit.
    offline_throttle: Option<Mutex<SlidingWindow>>,
    requests: AtomicU64,
    clock_reads: AtomicU64,
    throttled: AtomicU64,
    admitted: AtomicU64,
    faults: AtomicU64,
    empty_answers: AtomicU64,
    room_info_answers: AtomicU64,
    offline_answers: AtomicU64,
    /// Throttle faults still owed by the current burst.
    burst_left: AtomicU64,
    /// Requests seen for [`super::Faults::fail_room`].
    fail_room_seen: AtomicU64,
    by_status: Mutex<BTreeMap<u16, u64>>,
    id_salt: u64,
}

impl Inner {
    fn stats(&self) -> Stats {
        Stats {
            requests: self.requests.load(Ordering::Relaxed),
            clock_reads: self.clock_reads.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            by_status: self
                .by_status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            faults: self.faults.load(Ordering::Relaxed),
            empty_answers: self.empty_answers.load(Ordering::Relaxed),
            room_info_answers: self.room_info_answers.load(Ordering::Relaxed),
            offline_answers: self.offline_answers.load(Ordering::Relaxed),
        }
    }

    /// Counts an answer in the stats tests read.
    fn count(&self, answer: &Answer) {
        match answer {
            Answer::Quality(r) if r.indicators.iter().all(|s| s.data.is_empty()) => {
                self.empty_answers.fetch_add(1, Ordering::Relaxed);
            }
            Answer::RoomInfo(_) => {
                self.room_info_answers.fetch_add(1, Ordering::Relaxed);
            }
            Answer::Offline(_) => {
                self.offline_answers.fetch_add(1, Ordering::Relaxed);
            }
            Answer::Quality(_) => {}
        }
    }
}

/// A running emulator. Dropping it stops accepting connections; [`Self::shutdown`]
/// also waits for the requests in flight.
pub struct RunningEmulator {
    addr: SocketAddr,
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningEmulator {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the endpoint to give a client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Requests refused by the throttle so far.
    pub fn throttled(&self) -> u64 {
        self.inner.throttled.load(Ordering::Relaxed)
    }

    /// All counters.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Stops accepting, lets requests in flight finish (at most a few seconds) and
    /// returns the final counters.
    pub async fn shutdown(mut self) -> Stats {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.inner.stats()
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts serving on `listener` in the background.
pub async fn spawn(
    listener: TcpListener,
    cfg: EmulatorConfig,
) -> Result<RunningEmulator, std::io::Error> {
    let addr = listener.local_addr()?;
    let clock = DataClock::at(cfg.now);
    let window = |rate: Option<f64>| {
        rate.filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Mutex::new(SlidingWindow::new(r)))
    };
    let throttle = window(cfg.requests_per_second);
    let room_info_throttle = window(cfg.room_info_requests_per_second);
    let offline_throttle = window(cfg.offline_requests_per_second);
    let started = Utc::now();
    let id_salt = (started.timestamp_subsec_nanos() as u64 ^ u64::from(addr.port())) & 0xFF_FFFF;
    let inner = Arc::new(Inner {
        cfg,
        clock,
        throttle,
        room_info_throttle,
        offline_throttle,
        requests: AtomicU64::new(0),
        clock_reads: AtomicU64::new(0),
        throttled: AtomicU64::new(0),
        admitted: AtomicU64::new(0),
        faults: AtomicU64::new(0),
        empty_answers: AtomicU64::new(0),
        room_info_answers: AtomicU64::new(0),
        offline_answers: AtomicU64::new(0),
        burst_left: AtomicU64::new(0),
        fail_room_seen: AtomicU64::new(0),
        by_status: Mutex::new(BTreeMap::new()),
        id_salt,
    });
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, inner.clone(), stop_rx));
    tracing::info!(%addr, "emulator listening");
    Ok(RunningEmulator {
        addr,
        inner,
        stop,
        task: Some(task),
    })
}

/// Serves on `listener` until `shutdown` completes, then drains and returns the counters.
pub async fn serve_forever(
    listener: TcpListener,
    cfg: EmulatorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<Stats, std::io::Error> {
    let running = spawn(listener, cfg).await?;
    shutdown.await;
    Ok(running.shutdown().await)
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    conns.spawn(serve_connection(stream, inner.clone(), stop.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "emulator accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
}

async fn serve_connection(stream: TcpStream, inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let service = service_fn(move |req| handle(inner.clone(), req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "emulator connection ended");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// How an answer is delivered, as an injected fault decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Delivery {
    #[default]
    Normal,
    /// Sleep this long more before answering.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
    /// Send the first half of the body.
    Truncate,
    /// Send a body that is not JSON.
    Malformed,
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug)]
struct ConnectionDropped;

impl std::fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected fault: connection dropped without an answer")
    }
}

impl std::error::Error for ConnectionDropped {}

/// A body no JSON parser accepts, as a misbehaving proxy might send with a 200.
const MALFORMED_BODY: &[u8] = b"<html><body>upstream sent garbage\x00{\"ResponseMetadata\":";

async fn handle(
    inner: Arc<Inner>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ConnectionDropped> {
    let clock_read = !req.headers().contains_key(hyper::header::AUTHORIZATION);
    let seq = if clock_read {
        inner.clock_reads.fetch_add(1, Ordering::Relaxed)
    } else {
        inner.requests.fetch_add(1, Ordering::Relaxed)
    };
    let request_id = format!(
        "{}{:06X}{:012X}",
        Utc::now().format("%Y%m%d%H%M%S"),
        inner.id_salt,
        // Clock reads number apart, so no two answers share an id.
        if clock_read {
            seq | 0xC000_0000_0000
        } else {
            seq
        }
    );
    let mut delivery = Delivery::Normal;
    let outcome = process(&inner, req, &mut delivery).await;
    let mut metadata = ResponseMetadata {
        request_id: Some(request_id),
        action: Some(ACTION.to_string()),
        version: Some(VERSION.to_string()),
        service: Some(SERVICE.to_string()),
        region: Some(REGION.to_string()),
        error: None,
    };
    let (status, result) = match &outcome {
        Ok(answer) => {
            metadata.action = Some(answer.action().to_string());
            inner.count(answer);
            (StatusCode::OK, Some(answer))
        }
        Err(e) => {
            tracing::debug!(error = %e, "emulator rejected a request");
            metadata.error = Some(e.body());
            (e.status, None)
        }
    };
    let mut body = serde_json::to_vec(&Reply { metadata, result }).unwrap_or_else(|_| {
        br#"{"ResponseMetadata":{"Error":{"Code":"InternalError","Message":"encoding failed"}}}"#
            .to_vec()
    });
    if !inner.cfg.latency.is_zero() {
        tokio::time::sleep(inner.cfg.latency).await;
    }
    match delivery {
        Delivery::Normal => {}
        Delivery::Delay(d) => tokio::time::sleep(d).await,
        Delivery::Drop => return Err(ConnectionDropped),
        Delivery::Truncate => body.truncate(body.len() / 2),
        Delivery::Malformed => body = MALFORMED_BODY.to_vec(),
    }
    if !clock_read {
        *inner
            .by_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(status.as_u16())
            .or_default() += 1;
    }
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // On the data clock, as a real API's answers carry its own: hyper would add one on
    // the system clock, which a client measuring the API's clock would take for it.
    if let Ok(date) = HeaderValue::from_str(&http_date(inner.clock.now())) {
        resp.headers_mut().insert(DATE, date);
    }
    Ok(resp)
}

/// An HTTP `Date` (RFC 9110's IMF-fixdate): whole seconds, GMT.
fn http_date(at: chrono::DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// What an admitted request is answered with: the `Result` member of the response.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Answer {
    Quality(QualityResult),
    RoomInfo(RoomInfoPage),
    Offline(OfflineResult),
}

impl Answer {
    /// The action answered, echoed in `ResponseMetadata`.
    fn action(&self) -> &'static str {
        match self {
            Answer::Quality(_) => ACTION,
            Answer::RoomInfo(_) => ROOM_INFO_ACTION,
            Answer::Offline(_) => OFFLINE_ACTION,
        }
    }
}

/// The response document, serialized straight from the typed answer.
#[derive(serde::Serialize)]
struct Reply<'a> {
    #[serde(rename = "ResponseMetadata")]
    metadata: ResponseMetadata,
    #[serde(rename = "Result", skip_serializing_if = "Option::is_none")]
    result: Option<&'a Answer>,
}

async fn process(
    inner: &Inner,
    req: Request<Incoming>,
    delivery: &mut Delivery,
) -> Result<Answer, ApiError> {
    let (parts, body) = req.into_parts();
    let route = verify::check_route(&parts.method, parts.uri.path(), parts.uri.query())?;
    let body = read_body(&parts.headers, body).await?;

    let cfg = &inner.cfg;
    let access_key = verify::verify(
        &parts,
        &body,
        verify::Keys {
            access_key: &cfg.access_key,
            secret_key: &cfg.secret_key,
            session_token: cfg.session_token.as_deref(),
        },
        Utc::now(),
    )?;
    let throttle = match route {
        Route::Quality => &inner.throttle,
        Route::RoomInfo(_) => &inner.room_info_throttle,
        Route::Offline => &inner.offline_throttle,
    };
    check_throttle(inner, throttle, &access_key)?;
    let now = inner.clock.now();
    match &route {
        // Random faults are `ListRealTimeQuality`'s and `ListRoomInfo`'s; `ListQuality`
        // has its own.
        Route::Offline => answer_offline(inner, &body, now, delivery),
        Route::RoomInfo(pairs) => {
            admitted_fault(inner, delivery)?;
            if let Some(kind) = inner.cfg.faults.room_info
                && let Some(e) = apply_fault(inner, kind, false, delivery)
            {
                return Err(e);
            }
            let page = room_info::answer(pairs, now)?;
            let app = pairs.iter().find(|(k, _)| k == "AppId").map(|(_, v)| v);
            check_app(inner, app.map_or("", |a| a.as_str()))?;
            Ok(Answer::RoomInfo(page))
        }
        Route::Quality => {
            admitted_fault(inner, delivery)?;
            answer_quality(inner, &body, now)
        }
    }
}

/// A `ListRealTimeQuality` answer: the body checked, the per-room fault, the data.
fn answer_quality(
    inner: &Inner,
    body: &[u8],
    now: chrono::DateTime<Utc>,
) -> Result<Answer, ApiError> {
    let v = validate::validate(body, now, inner.cfg.refuse_future_end)?;
    check_app(inner, &v.app_id)?;
    fail_room(inner, &v)?;
    Ok(Answer::Quality(data::generate(
        &v.app_id,
        v.product_type,
        v.room_id.as_deref(),
        &v.users,
        &v.indicators,
        v.start,
        v.end,
        now,
    )))
}

/// Refuses an app the account does not have, when the config lists its apps.
fn check_app(inner: &Inner, app_id: &str) -> Result<(), ApiError> {
    match &inner.cfg.apps {
        Some(apps) if !apps.iter().any(|a| a == app_id) => Err(ApiError::invalid_parameter(
            Some("NotExistAppId"),
            format!("AppId {app_id} does not exist in this account"),
        )),
        _ => Ok(()),
    }
}

/// `ListQuality`: its own fault ([`super::Faults::offline`]), the body, the answer.
fn answer_offline(
    inner: &Inner,
    body: &[u8],
    now: chrono::DateTime<Utc>,
    delivery: &mut Delivery,
) -> Result<Answer, ApiError> {
    let fault = inner.cfg.faults.offline;
    match fault {
        None | Some(OfflineFault::Stray) => {}
        // Every request gets it, so it starts no burst (which would refuse
        // `ListRealTimeQuality` requests too).
        Some(OfflineFault::Kind(kind)) => {
            if let Some(e) = apply_fault(inner, kind, true, delivery) {
                return Err(e);
            }
        }
        Some(OfflineFault::Denied) => {
            inner.faults.fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::access_denied(format!(
                "User is not authorized to perform: rtc:{OFFLINE_ACTION}"
            )));
        }
    }
    let v = validate::validate_offline(body, now)?;
    check_app(inner, &v.request.app_id)?;
    let mut result = offline::answer(&v, now);
    if fault == Some(OfflineFault::Stray) {
        inner.faults.fetch_add(1, Ordering::Relaxed);
        offline::add_strays(&mut result, &v);
    }
    Ok(Answer::Offline(result))
}

/// An oversized body is refused the same way whether its size was declared or discovered.
fn body_too_large() -> ApiError {
    let mut e = ApiError::invalid_parameter(
        None,
        format!("The request body is larger than {MAX_BODY} bytes"),
    );
    e.status = StatusCode::PAYLOAD_TOO_LARGE;
    e
}

/// The signature covers the body, so it must be read whole, but never more than [`MAX_BODY`].
async fn read_body(headers: &HeaderMap, body: Incoming) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(body_too_large());
    }
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(body_too_large()),
        Err(e) => Err(ApiError::invalid_parameter(
            Some("Unmarshal"),
            format!("The request body could not be read: {e}"),
        )),
    }
}

/// The API limits each access key, so only a verified key may use up its own allowance.
fn check_throttle(
    inner: &Inner,
    throttle: &Option<Mutex<SlidingWindow>>,
    access_key: &str,
) -> Result<(), ApiError> {
    let Some(throttle) = throttle else {
        return Ok(());
    };
    let (admitted, rate) = {
        let mut window = throttle.lock().unwrap_or_else(|e| e.into_inner());
        (window.admit(access_key, Instant::now()), window.rate())
    };
    if !admitted {
        inner.throttled.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::flow_limit_exceeded(format!(
            "Request rate exceeded for access key {access_key}: at most {rate} requests per second"
        )));
    }
    Ok(())
}

/// Faults are counted over admitted requests only, so throttled ones do not shift them.
fn admitted_fault(inner: &Inner, delivery: &mut Delivery) -> Result<(), ApiError> {
    let n = inner.admitted.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(every) = inner.cfg.faults.internal_error_every
        && every > 0
        && n.is_multiple_of(every)
    {
        return Err(ApiError::internal_error("Injected fault: internal error"));
    }
    match inject(inner, n, delivery) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The per-room fault needs the validated body to know which app and room were asked for.
fn fail_room(inner: &Inner, v: &validate::ValidRequest) -> Result<(), ApiError> {
    if let Some(fr) = &inner.cfg.faults.fail_room
        && v.app_id == fr.app_id
        && v.room_id.as_deref() == Some(fr.room_id.as_str())
        && inner.fail_room_seen.fetch_add(1, Ordering::Relaxed) < fr.requests
    {
        inner.faults.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::internal_error(format!(
            "Injected fault: room {} of app {} is failing",
            fr.room_id, fr.app_id
        )));
    }
    Ok(())
}

/// Applies the random fault of the `n`-th admitted request: an error to answer with, or
/// a change to how the answer is delivered.
fn inject(inner: &Inner, n: u64, delivery: &mut Delivery) -> Option<ApiError> {
    let faults = &inner.cfg.faults;
    let in_burst = inner
        .burst_left
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    let kind = if in_burst {
        FaultKind::Throttle
    } else {
        faults.pick(n)?
    };
    tracing::debug!(request = n, fault = %kind, "emulator injects a fault");
    apply_fault(inner, kind, in_burst, delivery)
}

/// Gives the answer fault `kind`: an error to answer with, or a change to how the
/// answer is delivered (`None`).
fn apply_fault(
    inner: &Inner,
    kind: FaultKind,
    in_burst: bool,
    delivery: &mut Delivery,
) -> Option<ApiError> {
    let faults = &inner.cfg.faults;
    inner.faults.fetch_add(1, Ordering::Relaxed);
    let msg = |what: &str| format!("Injected fault: {what}");
    let err = match kind {
        FaultKind::Throttle => {
            if !in_burst {
                inner
                    .burst_left
                    .store(faults.throttle_burst.saturating_sub(1), Ordering::Relaxed);
            }
            ApiError::flow_limit_exceeded(msg("flow limit exceeded"))
        }
        FaultKind::InternalError => ApiError::internal_error(msg("internal error")),
        FaultKind::FailToConnect => ApiError::fail_to_connect(msg("fail to connect")),
        FaultKind::Unavailable => ApiError::service_unavailable(msg("service unavailable")),
        FaultKind::GatewayTimeout => {
            ApiError::internal_service_timeout(msg("internal service timeout"))
        }
        FaultKind::ErrorIn200 => {
            let mut e = ApiError::internal_error(msg("internal error in a 200 answer"));
            e.status = StatusCode::OK;
            e
        }
        FaultKind::Latency => {
            *delivery = Delivery::Delay(faults.latency);
            return None;
        }
        FaultKind::Timeout => {
            *delivery = Delivery::Delay(faults.timeout);
            return None;
        }
        FaultKind::Drop => {
            *delivery = Delivery::Drop;
            return None;
        }
        FaultKind::Truncate => {
            *delivery = Delivery::Truncate;
            return None;
        }
        FaultKind::Malformed => {
            *delivery = Delivery::Malformed;
            return None;
        }
    };
    Some(err)
}
