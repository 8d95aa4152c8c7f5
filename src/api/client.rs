//! The signed HTTP client for `ListRealTimeQuality` and `ListQuality` (POST, JSON body)
//! and `ListRoomInfo` (GET, query only): one call, one attempt. Pacing and retries live
//! in `limit` and the run.

use std::time::Duration;

use chrono::Utc;
use reqwest::header::HeaderValue;
use reqwest::{Method, Url};

use super::error::{ApiError, Unreachable};
use super::offline::{OFFLINE_ACTION, OfflineRequest};
use super::room_info::{ROOM_INFO_ACTION, RoomInfoEnvelope, RoomInfoPage, RoomInfoQuery};
use volc_rtc::realtime::{
    ACTION, Envelope, EnvelopeRef, QualityRequest, QualityResult, QualityResultRef, SERVICE,
    VERSION,
};
use volc_rtc::sign::{self as auth, Credentials, RequestToSign};

/// The `Content-Type` a GET is signed and sent with, as the official Go SDK does.
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Largest response body accepted. A 60-minute answer for five indicators is about
/// 150 KiB; anything near this cap is not a real answer.
pub(crate) const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Connection and per-request timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// The defaults, with the request timeout `request_ms` when given (`--request-timeout-ms`);
    /// connecting never takes longer than the request may.
    pub(crate) fn with_request_ms(request_ms: Option<u64>) -> Self {
        let mut t = Timeouts::default();
        if let Some(ms) = request_ms {
            t.request = Duration::from_millis(ms);
            t.connect = t.connect.min(t.request);
        }
        t
    }
}

/// The endpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint does not parse as a URL or has no host.
    #[error("endpoint {endpoint:?} is not a usable URL: {reason}")]
    Endpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was refused.
        reason: String,
    },
    /// The HTTP client could not be set up, e.g. its TLS backend.
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// A client bound to one endpoint, region and key pair.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: Url,
    host: String,
    path: String,
    region: String,
    creds: Credentials,
    /// Told every answer's `Date`, when set.
    api_clock: Option<std::sync::Arc<crate::clock::ApiClock>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url.as_str())
            .field("region", &self.region)
            .field("access_key", &self.creds.access_key)
            .finish_non_exhaustive()
    }
}

/// Installs the process's TLS crypto provider (ring). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    /// A client for `endpoint` (a base URL such as `https://rtc.volcengineapi.com`),
    /// signing for `region`. Checks the URL only: nothing is sent until the first call.
    pub fn new(
        endpoint: &str,
        region: &str,
        creds: Credentials,
        timeouts: Timeouts,
    ) -> Result<Self, ClientError> {
        install_crypto_provider();
        let bad = |reason: &str| ClientError::Endpoint {
            endpoint: endpoint.to_string(),
            reason: reason.to_string(),
        };
        let url = Url::parse(endpoint).map_err(|e| bad(&e.to_string()))?;
        let host_name = url.host_str().ok_or_else(|| bad("it has no host"))?;
        let host = match url.port() {
            Some(p) => format!("{host_name}:{p}"),
            None => host_name.to_string(),
        };
        let path = if url.path().is_empty() {
            "/".to_string()
        } else {
            url.path().to_string()
        };
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .user_agent(concat!("rtcq/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(Client {
            http,
            url,
            host,
            path,
            region: region.to_string(),
            creds,
            api_clock: None,
        })
    }

    /// This client, telling `api_clock` the `Date` of every answer it gets.
    pub(crate) fn with_api_clock(
        mut self,
        api_clock: std::sync::Arc<crate::clock::ApiClock>,
    ) -> Self {
        self.api_clock = Some(api_clock);
        self
    }

    /// Reads the API's clock before the first real request: an unsigned
    /// `ListRealTimeQuality` is refused by the gateway before the action runs, so it
    /// spends no rate and needs no permission, and its answer carries the API's `Date`.
    /// Only an answer that is an API document counts: a `Date` from something else on
    /// the way (a proxy's or a web server's own page) may be on another clock. Getting
    /// no answer at all is the error.
    pub(crate) async fn read_clock(&self) -> Result<(), ApiError> {
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("Action", ACTION)
            .append_pair("Version", VERSION);
        let mut resp = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let date = resp.headers().get(reqwest::header::DATE).cloned();
        // An error document is small: a longer body is not one, and is not read on.
        let mut bytes = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > CLOCK_READ_BYTES {
                break;
            }
        }
        let from_the_api = bytes.len() <= CLOCK_READ_BYTES
            && serde_json::from_slice::<serde_json::Value>(&bytes)
                .is_ok_and(|v| v.get("ResponseMetadata").is_some());
        match (&self.api_clock, from_the_api) {
            (Some(clock), true) => clock.observe(date.as_ref().and_then(|d| d.to_str().ok())),
            (Some(_), false) => {
                tracing::debug!("the clock read was not answered by the API: its Date is not used")
            }
            (None, _) => {}
        }
        Ok(())
    }

    /// Tells the API clock, when there is one, the `Date` of `resp`.
    fn observe_date(&self, resp: &reqwest::Response) {
        if let Some(clock) = &self.api_clock {
            let date = resp.headers().get(reqwest::header::DATE);
            clock.observe(date.and_then(|d| d.to_str().ok()));
        }
    }

    /// The error for a request that got no answer at all, naming the host and the kind.
    fn unreachable(&self, e: &reqwest::Error) -> ApiError {
        let detail = describe_reqwest(e);
        ApiError::Unreachable {
            host: self.host.clone(),
            kind: Unreachable::of(e, &detail),
            detail,
        }
    }

    /// Sends one signed request and returns its `Result`. The body is serialised once
    /// and those exact bytes are signed and sent.
    pub(crate) async fn list_real_time_quality(
        &self,
        req: &QualityRequest,
    ) -> Result<QualityResult, ApiError> {
        let (status, bytes) = self.send_quality(req).await?;
        decode_response(status, &bytes)
    }

    /// [`Self::list_real_time_quality`], giving the `Result` to `f` borrowed from the
    /// body (no allocation per point) and returning what `f` makes of it.
    pub(crate) async fn list_real_time_quality_with<T>(
        &self,
        req: &QualityRequest,
        f: impl FnOnce(QualityResultRef<'_>) -> T,
    ) -> Result<T, ApiError> {
        let (status, bytes) = self.send_quality(req).await?;
        decode_response_with(status, &bytes, f)
    }

    /// One `ListQuality` request (offline data), its `Result` given to `f` borrowed from
    /// the body, as [`Self::list_real_time_quality_with`].
    pub(crate) async fn list_quality_with<T>(
        &self,
        req: &OfflineRequest,
        f: impl FnOnce(QualityResultRef<'_>) -> T,
    ) -> Result<T, ApiError> {
        let body =
            serde_json::to_vec(req).map_err(|e| ApiError::Decode(format!("request body: {e}")))?;
        let query = [("Action", OFFLINE_ACTION), ("Version", VERSION)];
        let (status, bytes) = self
            .send(Method::POST, &query, "application/json", body)
            .await?;
        decode_response_with(status, &bytes, f)
    }

    /// One page of `ListRoomInfo`: the calls of an app created in a window.
    pub(crate) async fn list_room_info(
        &self,
        query: &RoomInfoQuery,
    ) -> Result<RoomInfoPage, ApiError> {
        let params = query.params();
        let mut pairs = vec![("Action", ROOM_INFO_ACTION), ("Version", VERSION)];
        pairs.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
        let (status, bytes) = self.send(Method::GET, &pairs, FORM, Vec::new()).await?;
        let env: RoomInfoEnvelope =
            serde_json::from_slice(&bytes).map_err(|e| unparsable(status, e, &bytes))?;
        check(status, env.metadata, &bytes)?;
        env.result.ok_or_else(|| ApiError::Decode(NEITHER.into()))
    }

    /// Sends one `ListRealTimeQuality` request: the status and the body. The body is
    /// serialised once and those exact bytes are signed and sent.
    async fn send_quality(&self, req: &QualityRequest) -> Result<(u16, Vec<u8>), ApiError> {
        let body =
            serde_json::to_vec(req).map_err(|e| ApiError::Decode(format!("request body: {e}")))?;
        let query = [("Action", ACTION), ("Version", VERSION)];
        self.send(Method::POST, &query, "application/json", body)
            .await
    }

    /// Sends one signed request with query `pairs` (unencoded): the status and the body.
    async fn send(
        &self,
        method: Method,
        pairs: &[(&str, &str)],
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), ApiError> {
        let signed = auth::sign(
            &self.creds,
            &RequestToSign {
                method: method.as_str(),
                host: &self.host,
                path: &self.path,
                query: pairs,
                content_type,
                body: &body,
                region: &self.region,
                service: SERVICE,
                // Signatures use the system clock: the server checks them against its own.
                time: Utc::now(),
            },
        );
        let mut url = self.url.clone();
        url.set_query(Some(&signed.query));
        let mut builder = self
            .http
            .request(method, url)
            .header("Content-Type", content_type)
            .header("X-Date", &signed.x_date)
            .header("X-Content-Sha256", &signed.x_content_sha256)
            .header(
                "Authorization",
                sensitive("Authorization", &signed.authorization)?,
            );
        if let Some(token) = &signed.security_token {
            builder = builder.header("X-Security-Token", sensitive("X-Security-Token", token)?);
        }
        let mut resp = builder
            .body(body)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        self.observe_date(&resp);
        // Refuse early when the server announces a body over the cap; without a length the
        // loop below stops at the cap.
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(ApiError::TooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        // Sized from the announced length (already capped), so the body is not copied
        // again each time the buffer grows.
        let mut bytes = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ApiError::Transport(describe_reqwest(&e)))?
        {
            if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ApiError::TooLarge {
                    limit: MAX_BODY_BYTES,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, bytes))
    }
}

/// The longest answer to a clock read taken as the API's error document.
const CLOCK_READ_BYTES: usize = 64 * 1024;

/// A header value marked sensitive, so that `Debug` of the request and any HTTP-level
/// tracing show `Sensitive` instead of it.
fn sensitive(name: &'static str, value: &str) -> Result<HeaderValue, ApiError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| ApiError::Header(name))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Longest API error code, message or request id kept from a response: enough for any
/// real message, and a hostile server cannot fill logs and the summary with megabytes.
pub(crate) const MAX_ERROR_TEXT: usize = 500;

/// `s` without control characters (no forged log lines or terminal escapes), cut to
/// [`MAX_ERROR_TEXT`] characters with `…` when longer.
fn clean_text(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_TEXT)
        .collect();
    if s.chars()
        .filter(|c| !c.is_control())
        .nth(MAX_ERROR_TEXT)
        .is_some()
    {
        out.push('…');
    }
    out
}

/// The error in a parsed document's metadata or status, if any.
fn check(status: u16, metadata: volc_rtc::ResponseMetadata, body: &[u8]) -> Result<(), ApiError> {
    if let Some(err) = metadata.error {
        return Err(ApiError::Api {
            status,
            code: if err.code.is_empty() {
                "Unknown".to_string()
            } else {
                clean_text(&err.code)
            },
            message: clean_text(&err.message),
            request_id: metadata.request_id.as_deref().map(clean_text),
        });
    }
    if !(200..300).contains(&status) {
        return Err(ApiError::Http {
            status,
            snippet: snippet(body),
        });
    }
    Ok(())
}

/// The error of a body that is not the JSON document expected.
fn unparsable(status: u16, e: serde_json::Error, body: &[u8]) -> ApiError {
    if (200..300).contains(&status) {
        ApiError::Decode(format!(
            "{} (body starts {:?})",
            clean_text(&e.to_string()),
            snippet(body)
        ))
    } else {
        ApiError::Http {
            status,
            snippet: snippet(body),
        }
    }
}

const NEITHER: &str = "the response has neither Result nor Error";

/// Reads an answer (its status and body, at most `MAX_BODY_BYTES`) into borrowed
/// types, handing the result to `f`; the error document wins over any status.
pub fn decode_response_with<T>(
    status: u16,
    body: &[u8],
    f: impl FnOnce(QualityResultRef<'_>) -> T,
) -> Result<T, ApiError> {
    // Checking UTF-8 once for the whole body is faster than string by string; a body
    // that is not UTF-8 goes the byte way, for the same error.
    let env: EnvelopeRef<'_> = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
    .map_err(|e| unparsable(status, e, body))?;
    check(status, env.metadata, body)?;
    env.result
        .map(f)
        .ok_or_else(|| ApiError::Decode(NEITHER.into()))
}

/// Turns a status and body into the result or the error it carries. `Error` is checked
/// whatever the status: a 200 may carry one.
pub(crate) fn decode_response(status: u16, body: &[u8]) -> Result<QualityResult, ApiError> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| unparsable(status, e, body))?;
    check(status, env.metadata, body)?;
    env.result.ok_or_else(|| ApiError::Decode(NEITHER.into()))
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.chars().filter(|c| !c.is_control()).collect()
}

/// reqwest's message plus its source chain, without the URL (which carries no secret, but
/// is noise in every line).
impl Unreachable {
    /// The kind of `e`, read from its error chain (`detail`, lower-cased below).
    fn of(e: &reqwest::Error, detail: &str) -> Unreachable {
        let d = detail.to_ascii_lowercase();
        if e.is_timeout() || d.contains("timed out") {
            Unreachable::Timeout
        } else if d.contains("dns error") || d.contains("failed to lookup address") {
            Unreachable::Dns
        } else if d.contains("connection refused") {
            Unreachable::Refused
        } else if d.contains("certificate") || d.contains("tls") || d.contains("handshake") {
            Unreachable::Tls
        } else {
            Unreachable::Other
        }
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    if e.is_timeout() {
        parts.push("timed out".to_string());
    } else if e.is_connect() {
        parts.push("cannot connect".to_string());
    }
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        parts.push(e.without_url_ref().to_string());
    }
    parts.join(": ")
}

trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let s = self.to_string();
        match s.find(" for url (") {
            Some(i) => s[..i].to_string(),
            None => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AnswerPoint;

    /// A client of the emulator at `url` with the demo pair (or `secret`).
    fn emulator_client(url: &str, secret: &str) -> Client {
        let creds = Credentials::new(rtcq_emulator::DEMO_ACCESS_KEY, secret, None);
        Client::new(url, "cn-north-1", creds, Timeouts::default()).unwrap()
    }

    #[tokio::test]
    async fn a_clock_read_takes_the_date_of_an_api_answer_and_ignores_anything_else() {
        use std::sync::Arc;

        use crate::clock::{ApiClock, Clock};
        // The emulator's data clock an hour behind this host: its answer is the API's.
        let then = Utc::now() - chrono::TimeDelta::hours(1);
        let emu = rtcq_emulator::spawn(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            rtcq_emulator::EmulatorConfig {
                now: Some(then),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let api = Arc::new(ApiClock::new(Clock::at(None)));
        let client = emulator_client(&emu.url(), "unused").with_api_clock(api.clone());
        client.read_clock().await.unwrap();
        let off = api.measured() + chrono::TimeDelta::hours(1);
        assert!(
            off.abs() < chrono::TimeDelta::seconds(2),
            "{:?}",
            api.measured()
        );
        let stats = emu.stats();
        assert_eq!((stats.clock_reads, stats.requests), (1, 0));

        // A server that is not the API (a proxy's page, a web server's 404) has its own
        // Date: it is not taken.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 404 Not Found\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
            );
        });
        let api = Arc::new(ApiClock::new(Clock::at(None)));
        let client = emulator_client(&url, "unused").with_api_clock(api.clone());
        client.read_clock().await.unwrap();
        server.join().unwrap();
        assert!(!api.was_measured());
        assert_eq!(api.measured(), chrono::TimeDelta::zero());
    }

    #[tokio::test]
    async fn list_room_info_pages_through_the_calls_of_the_emulator() {
        let now: chrono::DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        let emu = rtcq_emulator::spawn(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            rtcq_emulator::EmulatorConfig {
                now: Some(now),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let client = emulator_client(&emu.url(), rtcq_emulator::DEMO_SECRET_KEY);
        let from = "2026-11-25T06:00:00+08:00"; // 22:00 the day before, UTC
        let mut got = Vec::new();
        for page_num in 1.. {
            let page = client
                .list_room_info(&RoomInfoQuery {
                    app_id: "app".into(),
                    start_time: from.into(),
                    end_time: "2026-11-25T20:00:00+08:00".into(),
                    page_num,
                    page_size: 100,
                })
                .await
                .unwrap();
            got.extend(
                page.room_list
                    .iter()
                    .map(|c| (c.room_id.clone(), c.call_id.clone())),
            );
            if !page.has_more {
                break;
            }
        }
        let want: Vec<(String, String)> = rtcq_emulator::created_in(
            "app",
            "2026-11-24T22:00:00Z".parse().unwrap(),
            now - rtcq_emulator::LIST_DELAY,
        )
        .into_iter()
        .map(|c| (c.room_id, c.call_id))
        .collect();
        assert!(
            want.len() > 200,
            "{} calls: three pages or more",
            want.len()
        );
        assert_eq!(got, want);

        let wrong = emulator_client(&emu.url(), "not-the-secret");
        let e = wrong
            .list_room_info(&RoomInfoQuery {
                app_id: "app".into(),
                start_time: from.into(),
                end_time: "2026-11-25T20:00:00+08:00".into(),
                page_num: 1,
                page_size: 100,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("SignatureDoesNotMatch"));
    }

    #[test]
    fn error_inside_a_200_is_an_error() {
        let body = br#"{"ResponseMetadata":{"RequestId":"r","Error":{"Code":"InternalError","Message":"boom"}}}"#;
        let e = decode_response(200, body).unwrap_err();
        assert_eq!(e.code(), Some("InternalError"));
        assert!(e.is_retryable());
    }

    #[test]
    fn missing_and_unknown_fields_are_tolerated() {
        let body = br#"{"ResponseMetadata":{},"Result":{"Extra":1,"Indicators":[{"Name":"x","Data":[{"TimeStamp":"2024-05-01T19:00:00+08:00","Value":1.5,"New":true},{}]}]}}"#;
        let r = decode_response(200, body).unwrap();
        assert_eq!(r.indicators[0].name, "x");
        assert_eq!(r.indicators[0].unit, "");
        assert_eq!(r.indicators[0].data.len(), 2);
        assert_eq!(r.indicators[0].data[1].value, None);
    }

    #[test]
    fn borrowed_decoding_agrees_with_owned() {
        let body = br#"{"ResponseMetadata":{},"Result":{"UserId":["u\"1"],"Indicators":[{"Name":"x","Unit":"%","overview":{"a":[1]},"Data":[{"TimeStamp":"2024-05-01T19:00:00+08:00","Value":1.5,"StreamId":"s"},{}]}]}}"#;
        let owned = decode_response(200, body).unwrap();
        let got = decode_response_with(200, body, |r| {
            let s = &r.indicators[0];
            (
                r.user_id.as_ref().unwrap()[0].to_string(),
                s.name.to_string(),
                s.data[0].ts_us,
                s.data[0].stream_id.as_deref().map(str::to_string),
                s.data[1].value,
            )
        })
        .unwrap();
        assert_eq!(got.0, owned.user_id.as_ref().unwrap()[0]);
        assert_eq!(got.1, owned.indicators[0].name);
        assert_eq!(
            got.2,
            volc_rtc::time::parse_timestamp_us(&owned.indicators[0].data[0].time_stamp)
        );
        assert_eq!(got.3, owned.indicators[0].data[0].stream_id);
        assert_eq!(got.4, None);
        let err = br#"{"ResponseMetadata":{"Error":{"Code":"InternalError"}}}"#;
        assert_eq!(
            decode_response_with(500, err, |_| ()).unwrap_err().code(),
            Some("InternalError")
        );
        assert!(matches!(
            decode_response_with(200, b"{}", |_| ()),
            Err(ApiError::Decode(_))
        ));
    }

    /// Points read straight from the body equal the owned reading, point by point, and
    /// both refuse the same broken points.
    #[test]
    fn parsed_points_agree_with_owned_points() {
        let points = [
            r#"{"TimeStamp":"2024-05-01T19:00:00+08:00","Value":1.5}"#,
            r#"{"Value":2,"TimeStamp":"2024-05-01T11:00:30Z","StreamId":"s"}"#,
            r#"{"TimeStamp":"2024-05-01T11:01:00Z","Value":3,"StreamId":"a\"b\u00e9"}"#,
            r#"{"TimeStamp":"2024-05-01T11:01:00Z","Value":3,"StreamId":null}"#,
            r#"{"TimeStamp":"2024-05-01T11:01:00.5Z","Value":"4"}"#,
            r#"{"TimeStamp":5,"Value":[1],"New":{"x":[1,2]}}"#,
            r#"{"TimeStamp":"2024-05-01T11:01:60Z","Value":null}"#,
            r#"{"TimeStamp":"2024-05-01T11:0\u0031:00Z","Value":1e2}"#,
            r#"{}"#,
        ];
        let body = |data: &str| {
            format!(
                r#"{{"ResponseMetadata":{{}},"Result":{{"Indicators":[{{"Name":"x","Data":[{data}]}}]}}}}"#
            )
        };
        let all = body(&points.join(","));
        let owned = decode_response(200, all.as_bytes()).unwrap();
        let want: Vec<AnswerPoint> = owned.indicators[0]
            .data
            .iter()
            .map(|p| AnswerPoint::new(&p.time_stamp, p.value, p.stream_id.as_deref()))
            .collect();
        let got = decode_response_with(200, all.as_bytes(), |r| {
            r.indicators.into_iter().next().unwrap().data
        })
        .unwrap();
        assert_eq!(got, want);
        assert_eq!(got[2].stream_id.as_deref(), Some("a\"b\u{e9}"));
        assert_eq!(got[7].ts_us, got[2].ts_us);
        assert!(got[7].ts_us.is_some());
        for bad in [
            r#"{"TimeStamp":"2024-05-01T11:01:00Z","StreamId":5}"#,
            r#"{"Value":1,"Value":2}"#,
            r#"{"TimeStamp":"a","TimeStamp":"b"}"#,
            r#""not a point""#,
        ] {
            let b = body(bad);
            assert!(decode_response(200, b.as_bytes()).is_err(), "{bad}");
            assert!(
                matches!(
                    decode_response_with(200, b.as_bytes(), |_| ()),
                    Err(ApiError::Decode(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn non_json_bodies() {
        assert!(matches!(
            decode_response(502, b"<html>bad gateway</html>"),
            Err(ApiError::Http { status: 502, .. })
        ));
        assert!(matches!(
            decode_response(200, br#"{"ResponseMetadata":{"#),
            Err(ApiError::Decode(_))
        ));
        assert!(matches!(
            decode_response(200, b"{}"),
            Err(ApiError::Decode(_))
        ));
    }
}
