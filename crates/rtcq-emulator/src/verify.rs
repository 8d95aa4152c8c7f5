//! Checks a request the way the API gateway does: the route (`POST /` with
//! `Action=ListRealTimeQuality` or `Action=ListQuality`, `GET /` with
//! `Action=ListRoomInfo`, all at `Version=2023-11-01`), then the `HMAC-SHA256` signature
//! (see `docs/api.md`, "Signing"), recomputed with the same
//! [`volc_rtc::sign`] helpers the client signs with.
//!
//! Order of the checks, first failure wins:
//! 1. `Authorization` present and well formed, `X-Date` present, every header named in
//!    `SignedHeaders` present: else `MissingRequestInfo`.
//! 2. The access key is the configured one: else `InvalidAccessKey`.
//! 3. `X-Date` parses and is within 900 s of the real clock: else `InvalidTimestamp`.
//! 4. With a session token configured, `X-Security-Token` is sent (else
//!    `MissingRequestInfo`), equal to it (else `InvalidAccessKey`) and signed; without one,
//!    no token may be sent (`InvalidAccessKey`).
//! 5. Scope (date of `X-Date`, a documented region, service `rtc`), `X-Content-Sha256`
//!    equal to the body's hash, and the signature over the canonical request rebuilt from
//!    the received method, path, raw query pairs, signed header values and body bytes:
//!    else `SignatureDoesNotMatch`.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Method};

use super::error::ApiError;
use volc_rtc::offline::OFFLINE_ACTION;
use volc_rtc::room_info::ROOM_INFO_ACTION;
use volc_rtc::sign::{
    AuthorizationHeader, X_DATE_FORMAT, canonical_query, canonical_request, parse_authorization,
    sha256_hex, signature, signing_host,
};
use volc_rtc::{ACTION, SERVICE, VERSION};

/// How far `X-Date` may be from the real clock (the signature's default validity).
pub(crate) const MAX_SKEW: TimeDelta = TimeDelta::seconds(900);

/// Regions the RTC docs list; a signature scoped to another region is rejected.
pub(crate) const REGIONS: [&str; 3] = ["cn-north-1", "ap-singapore-1", "us-east-1"];

/// The credential the emulator accepts.
#[derive(Clone, Copy)]
pub(crate) struct Keys<'a> {
    pub(crate) access_key: &'a str,
    pub(crate) secret_key: &'a str,
    pub(crate) session_token: Option<&'a str>,
}

/// Which action a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `ListRealTimeQuality`: `POST /`, the request in the JSON body.
    Quality,
    /// `ListRoomInfo`: `GET /`, the request in the query, here decoded.
    RoomInfo(Vec<(String, String)>),
    /// `ListQuality`: `POST /`, the request in the JSON body, as `ListRealTimeQuality`.
    Offline,
}

/// `POST /` for `ListRealTimeQuality` and `ListQuality` or `GET /` for `ListRoomInfo`, at
/// the one version this emulator serves; anything else is `InvalidActionOrVersion`
/// (HTTP 404).
pub(crate) fn check_route(
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
) -> Result<Route, ApiError> {
    let pairs = parse_query(raw_query.unwrap_or(""));
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let action = get("Action");
    let version = get("Version");
    let (route, served_by) = match (action, version) {
        (Some(ACTION), Some(VERSION)) => (Route::Quality, Method::POST),
        (Some(ROOM_INFO_ACTION), Some(VERSION)) => (Route::RoomInfo(pairs.clone()), Method::GET),
        (Some(OFFLINE_ACTION), Some(VERSION)) => (Route::Offline, Method::POST),
        _ => {
            return Err(ApiError::invalid_action_or_version(format!(
                "Could not find operation {} for version {}",
                action.unwrap_or(""),
                version.unwrap_or("")
            )));
        }
    };
    if path != "/" || *method != served_by {
        return Err(ApiError::invalid_action_or_version(format!(
            "{} is served at {served_by} /, not {method} {path}",
            action.unwrap_or("")
        )));
    }
    Ok(route)
}

/// Verifies the signature of a request whose body was `body`, at real time `real_now`.
/// Returns the access key on success.
pub(crate) fn verify(
    parts: &Parts,
    body: &[u8],
    keys: Keys<'_>,
    real_now: DateTime<Utc>,
) -> Result<String, ApiError> {
    let headers = &parts.headers;
    let (auth, x_date) = read_authorization(headers)?;
    let signed = signed_header_values(headers, &auth)?;
    if auth.access_key != keys.access_key {
        return Err(ApiError::invalid_access_key(format!(
            "The access key {:?} does not exist",
            auth.access_key
        )));
    }
    check_timestamp(&x_date, real_now)?;
    check_security_token(
        keys.session_token,
        header(headers, "x-security-token").as_deref(),
        &signed,
    )?;
    check_scope(&auth, &x_date)?;

    let body_hash = sha256_hex(body);
    if let Some(sent) = header(headers, "x-content-sha256")
        && sent != body_hash
    {
        return Err(ApiError::signature_does_not_match(
            "X-Content-Sha256 is not the SHA-256 of the body received",
        ));
    }
    let want = expected_signature(parts, &signed, &body_hash, keys.secret_key, &x_date, &auth);
    if !constant_time_eq(want.as_bytes(), auth.signature.as_bytes()) {
        return Err(ApiError::signature_does_not_match(
            "The request signature we calculated does not match the signature you provided. Check your Secret Access Key and signing method.",
        ));
    }
    Ok(auth.access_key)
}

/// Nothing else can be checked without these two headers, so their absence is reported first.
fn read_authorization(headers: &HeaderMap) -> Result<(AuthorizationHeader, String), ApiError> {
    let authorization = header(headers, "authorization")
        .ok_or_else(|| ApiError::missing_request_info("The Authorization header is missing"))?;
    let auth = parse_authorization(&authorization).ok_or_else(|| {
        ApiError::missing_request_info(
            "The Authorization header is not of the form HMAC-SHA256 Credential=AK/date/region/service/request, SignedHeaders=..., Signature=...",
        )
    })?;
    let x_date = header(headers, "x-date")
        .ok_or_else(|| ApiError::missing_request_info("The X-Date header is missing"))?;
    Ok((auth, x_date))
}

/// The canonical request must hash the header values exactly as the client signed them.
fn signed_header_values(
    headers: &HeaderMap,
    auth: &AuthorizationHeader,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut signed = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let name = name.to_ascii_lowercase();
        let value = header(headers, &name).ok_or_else(|| {
            ApiError::missing_request_info(format!(
                "The header {name:?} is listed in SignedHeaders but not sent"
            ))
        })?;
        let value = if name == "host" {
            signing_host(&value).to_string()
        } else {
            value
        };
        signed.push((name, value));
    }
    Ok(signed)
}

/// A signature is valid only within [`MAX_SKEW`] of its `X-Date`, which bounds replays.
fn check_timestamp(x_date: &str, real_now: DateTime<Utc>) -> Result<(), ApiError> {
    let when = NaiveDateTime::parse_from_str(x_date, X_DATE_FORMAT)
        .map_err(|_| {
            ApiError::invalid_timestamp(format!(
                "X-Date {x_date:?} is not of the form YYYYMMDDTHHMMSSZ"
            ))
        })?
        .and_utc();
    let skew = (real_now - when).abs();
    if skew > MAX_SKEW {
        return Err(ApiError::invalid_timestamp(format!(
            "X-Date {x_date} is {} s from the server time {}: the signature is expired or from the future (at most {} s allowed)",
            skew.num_seconds(),
            real_now.format(X_DATE_FORMAT),
            MAX_SKEW.num_seconds()
        )));
    }
    Ok(())
}

/// Temporary keys need their own signed token and permanent keys none, each with its own code.
fn check_security_token(
    configured: Option<&str>,
    sent: Option<&str>,
    signed: &[(String, String)],
) -> Result<(), ApiError> {
    match (configured, sent) {
        (Some(_), None) => Err(ApiError::missing_request_info(
            "The X-Security-Token header is missing: the access key is temporary",
        )),
        (Some(want), Some(got)) if want != got => Err(ApiError::invalid_access_key(
            "The X-Security-Token does not belong to the access key",
        )),
        (Some(_), Some(_)) => {
            if !signed.iter().any(|(n, _)| n == "x-security-token") {
                return Err(ApiError::signature_does_not_match(
                    "X-Security-Token must be listed in SignedHeaders",
                ));
            }
            Ok(())
        }
        (None, Some(_)) => Err(ApiError::invalid_access_key(
            "An X-Security-Token was sent with a permanent access key",
        )),
        (None, None) => Ok(()),
    }
}

/// A wrong date, service or region gets a clearer message than a bare signature mismatch.
fn check_scope(auth: &AuthorizationHeader, x_date: &str) -> Result<(), ApiError> {
    let short_date = x_date.get(..8).unwrap_or("");
    if auth.short_date != short_date {
        return Err(ApiError::signature_does_not_match(format!(
            "The credential scope date {} is not the date of X-Date {x_date}",
            auth.short_date
        )));
    }
    if auth.service != SERVICE {
        return Err(ApiError::signature_does_not_match(format!(
            "The credential scope names service {:?}; this is {SERVICE:?}",
            auth.service
        )));
    }
    if !REGIONS.contains(&auth.region.as_str()) {
        return Err(ApiError::signature_does_not_match(format!(
            "The credential scope names region {:?}; use one of {}",
            auth.region,
            REGIONS.join(", ")
        )));
    }
    Ok(())
}

/// Signs what was received, not what was expected, so tampering anywhere changes the result.
fn expected_signature(
    parts: &Parts,
    signed: &[(String, String)],
    body_hash: &str,
    secret_key: &str,
    x_date: &str,
    auth: &AuthorizationHeader,
) -> String {
    let pairs = parse_query(parts.uri.query().unwrap_or(""));
    let pair_refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let canonical = canonical_request(
        parts.method.as_str(),
        parts.uri.path(),
        &canonical_query(&pair_refs),
        signed,
        body_hash,
    );
    signature(secret_key, x_date, &auth.region, &auth.service, &canonical)
}

/// All values of a header joined by `,`, bytes that are not UTF-8 replaced; `None`
/// when absent.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let joined: Vec<String> = values
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    Some(joined.join(","))
}

/// Splits a raw query string into percent-decoded `(key, value)` pairs. `+` stays `+`
/// (the signing scheme never encodes a space as `+`); a malformed escape is kept as is.
pub(crate) fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use hyper::Request;
    use volc_rtc::sign::{Credentials, RequestToSign, sign};

    const AK: &str = "AKLTtest";
    const SK: &str = "test-secret";
    const BODY: &[u8] = br#"{"AppId":"a","StartTime":"2024-05-01T11:00:00Z","EndTime":"2024-05-01T11:30:00Z","Indicator":["stall_rate"]}"#;
    const HOST: &str = "127.0.0.1:8080";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 11, 31, 0).unwrap()
    }

    struct Req {
        signed_at: DateTime<Utc>,
        token: Option<&'static str>,
        secret: &'static str,
        access_key: &'static str,
        region: &'static str,
    }

    impl Default for Req {
        fn default() -> Self {
            Req {
                signed_at: now(),
                token: None,
                secret: SK,
                access_key: AK,
                region: "cn-north-1",
            }
        }
    }

    /// A signed request builder: returns parts the test can still tamper with.
    fn signed(r: Req) -> hyper::http::request::Builder {
        let creds = Credentials::new(r.access_key, r.secret, r.token);
        let query = [("Action", ACTION), ("Version", VERSION)];
        let s = sign(
            &creds,
            &RequestToSign {
                method: "POST",
                host: HOST,
                path: "/",
                query: &query,
                content_type: "application/json",
                body: BODY,
                region: r.region,
                service: "rtc",
                time: r.signed_at,
            },
        );
        let mut b = Request::builder()
            .method("POST")
            .uri(format!("/?{}", s.query))
            .header("host", HOST)
            .header("content-type", "application/json")
            .header("x-date", &s.x_date)
            .header("x-content-sha256", &s.x_content_sha256)
            .header("authorization", &s.authorization);
        if let Some(t) = &s.security_token {
            b = b.header("x-security-token", t);
        }
        b
    }

    fn check(
        b: hyper::http::request::Builder,
        body: &[u8],
        token: Option<&str>,
    ) -> Result<String, ApiError> {
        let (parts, ()) = b.body(()).unwrap().into_parts();
        verify(
            &parts,
            body,
            Keys {
                access_key: AK,
                secret_key: SK,
                session_token: token,
            },
            now(),
        )
    }

    fn code(r: Result<String, ApiError>) -> (u16, String, Option<i64>) {
        let e = r.unwrap_err();
        (e.status.as_u16(), e.code, e.code_n)
    }

    fn remove(b: hyper::http::request::Builder, name: &str) -> hyper::http::request::Builder {
        let (mut parts, ()) = b.body(()).unwrap().into_parts();
        parts.headers.remove(name);
        let mut nb = Request::builder().method(parts.method).uri(parts.uri);
        for (k, v) in &parts.headers {
            nb = nb.header(k, v);
        }
        nb
    }

    fn replace(
        b: hyper::http::request::Builder,
        name: &str,
        value: &str,
    ) -> hyper::http::request::Builder {
        remove(b, name).header(name, value)
    }

    #[test]
    fn a_good_request_passes() {
        assert_eq!(check(signed(Req::default()), BODY, None).unwrap(), AK);
        let with_token = signed(Req {
            token: Some("tok"),
            ..Req::default()
        });
        assert_eq!(check(with_token, BODY, Some("tok")).unwrap(), AK);
        // Unsigned extra headers are fine, and so is a default port on Host.
        let extra = signed(Req::default())
            .header("user-agent", "x")
            .header("accept", "*/*");
        assert!(check(extra, BODY, None).is_ok());
        // Clock skew just inside the limit.
        let skewed = signed(Req {
            signed_at: now() - TimeDelta::seconds(900),
            ..Req::default()
        });
        assert!(check(skewed, BODY, None).is_ok());
    }

    #[test]
    fn missing_parts_are_missing_request_info() {
        let want = (400, "MissingRequestInfo".to_string(), Some(100004));
        for name in ["authorization", "x-date", "content-type", "host"] {
            assert_eq!(
                code(check(remove(signed(Req::default()), name), BODY, None)),
                want,
                "{name}"
            );
        }
        let garbled = replace(
            signed(Req::default()),
            "authorization",
            "HMAC-SHA256 Credential=x",
        );
        assert_eq!(code(check(garbled, BODY, None)), want);
        let bearer = replace(signed(Req::default()), "authorization", "Bearer abc");
        assert_eq!(code(check(bearer, BODY, None)), want);
        let no_token = signed(Req::default());
        assert_eq!(code(check(no_token, BODY, Some("tok"))), want);
    }

    #[test]
    fn unknown_key_is_invalid_access_key() {
        let want = (401, "InvalidAccessKey".to_string(), Some(100009));
        let other = signed(Req {
            access_key: "AKLTother",
            ..Req::default()
        });
        assert_eq!(code(check(other, BODY, None)), want);
        let wrong_token = signed(Req {
            token: Some("other"),
            ..Req::default()
        });
        assert_eq!(code(check(wrong_token, BODY, Some("tok"))), want);
        let unexpected_token = signed(Req {
            token: Some("tok"),
            ..Req::default()
        });
        assert_eq!(code(check(unexpected_token, BODY, None)), want);
    }

    #[test]
    fn skewed_or_bad_date_is_invalid_timestamp() {
        let want = (403, "InvalidTimestamp".to_string(), Some(100006));
        for secs in [901, -901, 86_400] {
            let r = signed(Req {
                signed_at: now() - TimeDelta::seconds(secs),
                ..Req::default()
            });
            assert_eq!(code(check(r, BODY, None)), want, "{secs}");
        }
        let bad = replace(signed(Req::default()), "x-date", "2024-05-01T11:31:00Z");
        assert_eq!(code(check(bad, BODY, None)), want);
    }

    #[test]
    fn tampering_is_signature_does_not_match() {
        let want = (401, "SignatureDoesNotMatch".to_string(), Some(100010));
        // wrong secret
        let r = signed(Req {
            secret: "nope",
            ..Req::default()
        });
        assert_eq!(code(check(r, BODY, None)), want);
        // body changed after signing (hash header kept)
        let mut other = BODY.to_vec();
        other[9] = b'b';
        assert_eq!(code(check(signed(Req::default()), &other, None)), want);
        // body changed and hash header recomputed: signature no longer matches
        let r = replace(
            signed(Req::default()),
            "x-content-sha256",
            &sha256_hex(&other),
        );
        assert_eq!(code(check(r, &other, None)), want);
        // signed header value changed
        let r = replace(signed(Req::default()), "content-type", "text/plain");
        assert_eq!(code(check(r, BODY, None)), want);
        let r = replace(signed(Req::default()), "host", "127.0.0.1:9090");
        assert_eq!(code(check(r, BODY, None)), want);
        // X-Date moved by a second, still within the skew
        let r = replace(signed(Req::default()), "x-date", "20240501T113101Z");
        assert_eq!(code(check(r, BODY, None)), want);
        // query changed
        let (mut parts, ()) = signed(Req::default()).body(()).unwrap().into_parts();
        parts.uri = format!("/?Action={ACTION}&Version={VERSION}&Extra=1")
            .parse()
            .unwrap();
        let r = verify(
            &parts,
            BODY,
            Keys {
                access_key: AK,
                secret_key: SK,
                session_token: None,
            },
            now(),
        );
        assert_eq!(code(r), want);
        // undocumented region
        let r = signed(Req {
            region: "eu-west-9",
            ..Req::default()
        });
        assert_eq!(code(check(r, BODY, None)), want);
    }

    #[test]
    fn token_must_be_signed() {
        // Signed without a token, token header added afterwards.
        let r = signed(Req::default()).header("x-security-token", "tok");
        assert_eq!(
            code(check(r, BODY, Some("tok"))),
            (401, "SignatureDoesNotMatch".to_string(), Some(100010))
        );
    }

    #[test]
    fn route_is_post_slash_with_action_and_version() {
        assert!(
            check_route(
                &Method::POST,
                "/",
                Some("Action=ListRealTimeQuality&Version=2023-11-01")
            )
            .is_ok()
        );
        assert!(
            check_route(
                &Method::POST,
                "/",
                Some("Version=2023-11-01&Action=ListRealTimeQuality")
            )
            .is_ok()
        );
        for (m, p, q) in [
            (
                Method::POST,
                "/",
                Some("Action=ListRealTimeQuality&Version=2020-01-01"),
            ),
            (
                Method::POST,
                "/",
                Some("Action=ListRooms&Version=2023-11-01"),
            ),
            (Method::POST, "/", None),
            (
                Method::GET,
                "/",
                Some("Action=ListRealTimeQuality&Version=2023-11-01"),
            ),
            (
                Method::POST,
                "/x",
                Some("Action=ListRealTimeQuality&Version=2023-11-01"),
            ),
            (
                Method::POST,
                "/",
                Some("Action=ListRoomInfo&Version=2023-11-01"),
            ),
        ] {
            let e = check_route(&m, p, q).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code.as_str(), e.code_n),
                (404, "InvalidActionOrVersion", Some(100008)),
                "{m} {p} {q:?}"
            );
        }
    }

    #[test]
    fn list_room_info_is_a_get_with_its_query_decoded() {
        assert_eq!(
            check_route(
                &Method::GET,
                "/",
                Some("Action=ListRoomInfo&Version=2023-11-01&AppId=a&StartTime=2026-11-25T11%3A00%3A00%2B08%3A00")
            )
            .unwrap(),
            Route::RoomInfo(vec![
                ("Action".into(), "ListRoomInfo".into()),
                ("Version".into(), "2023-11-01".into()),
                ("AppId".into(), "a".into()),
                ("StartTime".into(), "2026-11-25T11:00:00+08:00".into()),
            ])
        );
        let e = check_route(
            &Method::POST,
            "/",
            Some("Action=ListRoomInfo&Version=2023-11-01"),
        )
        .unwrap_err();
        assert_eq!(e.message, "ListRoomInfo is served at GET /, not POST /");
    }

    #[test]
    fn list_quality_is_a_post_at_the_same_version() {
        assert_eq!(
            check_route(
                &Method::POST,
                "/",
                Some("Action=ListQuality&Version=2023-11-01")
            )
            .unwrap(),
            Route::Offline
        );
        let e = check_route(
            &Method::GET,
            "/",
            Some("Action=ListQuality&Version=2023-11-01"),
        )
        .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code.as_str(), e.code_n),
            (404, "InvalidActionOrVersion", Some(100008))
        );
        assert_eq!(e.message, "ListQuality is served at POST /, not GET /");
        for (p, q) in [
            ("/", "Action=ListQuality&Version=2020-01-01"),
            ("/x", "Action=ListQuality&Version=2023-11-01"),
            ("/", "Action=listquality&Version=2023-11-01"),
        ] {
            let e = check_route(&Method::POST, p, Some(q)).unwrap_err();
            assert_eq!(e.code, "InvalidActionOrVersion", "{p} {q}");
        }
    }

    #[test]
    fn query_decoding() {
        assert_eq!(
            parse_query("a=%C3%A9%2F&b=x%20y+z&c&%zz=1"),
            [
                ("a".to_string(), "é/".to_string()),
                ("b".to_string(), "x y+z".to_string()),
                ("c".to_string(), String::new()),
                ("%zz".to_string(), "1".to_string()),
            ]
        );
    }
}
