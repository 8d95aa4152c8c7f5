//! Volcengine request signing (`HMAC-SHA256`, close to AWS SigV4 but not the same; see
//! `docs/api.md`, "Signing"). The client signs with it and the
//! emulator verifies with it, so both sides share one canonical form.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm the API speaks.
pub const ALGORITHM: &str = "HMAC-SHA256";
/// Format of the `X-Date` header.
pub const X_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret so that it never prints.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The value, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An access key pair, optionally temporary (STS) with a session token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (not secret: it names the key).
    pub access_key: String,
    /// Keys the signature; never sent.
    pub secret_key: Secret,
    /// For temporary (STS) credentials: sent, and signed, as `X-Security-Token`.
    pub session_token: Option<Secret>,
}

/// Credentials missing from the environment or unusable. Names the variable, never its
/// value.
#[derive(Debug, thiserror::Error)]
pub enum MissingCredential {
    #[error(
        "{0} is not set: export VOLC_ACCESSKEY and VOLC_SECRETKEY (and VOLC_SESSION_TOKEN for temporary credentials)"
    )]
    /// The variable is unset or empty.
    Unset(&'static str),
    #[error(
        "{0} holds a character that is not printable ASCII (a stray newline or quote?): export the value exactly as issued"
    )]
    /// The value has a character a header cannot carry.
    Unprintable(&'static str),
}

/// Whether `s` can be sent in a header as is: printable ASCII, no spaces.
fn is_header_token(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

impl Credentials {
    /// A key pair exactly as issued, with the session token of temporary credentials.
    pub fn new(access_key: &str, secret_key: &str, session_token: Option<&str>) -> Self {
        Credentials {
            access_key: access_key.to_string(),
            secret_key: Secret::new(secret_key),
            session_token: session_token.map(Secret::new),
        }
    }

    /// Reads `VOLC_ACCESSKEY`, `VOLC_SECRETKEY` and optional `VOLC_SESSION_TOKEN`.
    pub fn from_env() -> Result<Self, MissingCredential> {
        let optional = |name: &'static str| match std::env::var(name) {
            Ok(v) if v.is_empty() => Ok(None),
            Ok(v) if is_header_token(&v) => Ok(Some(v)),
            Ok(_) | Err(std::env::VarError::NotUnicode(_)) => {
                Err(MissingCredential::Unprintable(name))
            }
            Err(std::env::VarError::NotPresent) => Ok(None),
        };
        let required = |name: &'static str| optional(name)?.ok_or(MissingCredential::Unset(name));
        let ak = required("VOLC_ACCESSKEY")?;
        let sk = required("VOLC_SECRETKEY")?;
        let token = optional("VOLC_SESSION_TOKEN")?;
        Ok(Credentials::new(&ak, &sk, token.as_deref()))
    }
}

/// What is signed: one HTTP request.
#[derive(Debug, Clone)]
pub struct RequestToSign<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// Host header value; `:80`/`:443` are dropped when signing.
    pub host: &'a str,
    /// URL path, `/` for the API.
    pub path: &'a str,
    /// Query pairs, unencoded.
    pub query: &'a [(&'a str, &'a str)],
    /// The `Content-Type` header sent; it is signed, so it must match.
    pub content_type: &'a str,
    /// The exact body bytes sent.
    pub body: &'a [u8],
    /// Signing region, e.g. `cn-north-1`: part of the credential scope.
    pub region: &'a str,
    /// Service in the credential scope (`rtc` for this API).
    pub service: &'a str,
    /// Signing time, sent as `X-Date`; the server refuses it beyond 15 minutes of skew.
    pub time: DateTime<Utc>,
}

/// The headers a signed request carries, and the query string to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    /// Exactly the canonical query: send this string.
    pub query: String,
    /// The `X-Date` header: the signing time.
    pub x_date: String,
    /// The `X-Content-Sha256` header: hex SHA-256 of the body.
    pub x_content_sha256: String,
    /// The `Authorization` header: credential scope, signed headers and signature.
    pub authorization: String,
    /// The `X-Security-Token` header, for temporary credentials only.
    pub security_token: Option<String>,
}

impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("query", &self.query)
            .field("x_date", &self.x_date)
            .field("authorization", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Percent-encodes leaving only `A-Z a-z 0-9 - _ . ~` (space is `%20`).
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical query string: encoded pairs sorted by key (then value), joined by `&`.
pub fn canonical_query(pairs: &[(&str, &str)]) -> String {
    let mut enc: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    enc.sort();
    enc.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The host value as signed: without a default port.
pub fn signing_host(host: &str) -> &str {
    host.strip_suffix(":80")
        .or_else(|| host.strip_suffix(":443"))
        .unwrap_or(host)
}

/// The canonical request from already-lowercased, sorted `(name, value)` headers.
pub fn canonical_request(
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &[(String, String)],
    body_hash: &str,
) -> String {
    let mut canon_headers = String::new();
    for (name, value) in headers {
        canon_headers.push_str(name);
        canon_headers.push(':');
        canon_headers.push_str(value.trim());
        canon_headers.push('\n');
    }
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "{method}\n{path}\n{canonical_query}\n{canon_headers}\n{}\n{body_hash}",
        names.join(";")
    )
}

/// The credential scope `{shortdate}/{region}/{service}/request`.
pub fn scope(short_date: &str, region: &str, service: &str) -> String {
    format!("{short_date}/{region}/{service}/request")
}

/// The hex signature of a canonical request.
pub fn signature(
    secret_key: &str,
    x_date: &str,
    region: &str,
    service: &str,
    canonical_request: &str,
) -> String {
    let short_date = x_date.get(..8).unwrap_or(x_date);
    let string_to_sign = format!(
        "{ALGORITHM}\n{x_date}\n{}\n{}",
        scope(short_date, region, service),
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac(secret_key.as_bytes(), short_date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

/// Signs one request.
pub fn sign(creds: &Credentials, req: &RequestToSign<'_>) -> Signed {
    let x_date = req.time.format(X_DATE_FORMAT).to_string();
    let body_hash = sha256_hex(req.body);
    let query = canonical_query(req.query);
    let mut headers = vec![
        ("content-type".to_string(), req.content_type.to_string()),
        ("host".to_string(), signing_host(req.host).to_string()),
        ("x-content-sha256".to_string(), body_hash.clone()),
        ("x-date".to_string(), x_date.clone()),
    ];
    if let Some(token) = &creds.session_token {
        headers.push(("x-security-token".to_string(), token.expose().to_string()));
    }
    let canonical = canonical_request(req.method, req.path, &query, &headers, &body_hash);
    let sig = signature(
        creds.secret_key.expose(),
        &x_date,
        req.region,
        req.service,
        &canonical,
    );
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={sig}",
        creds.access_key,
        scope(x_date.get(..8).unwrap_or(&x_date), req.region, req.service),
        names.join(";")
    );
    Signed {
        query,
        x_date,
        x_content_sha256: body_hash,
        authorization,
        security_token: creds.session_token.as_ref().map(|t| t.expose().to_string()),
    }
}

/// The parts of an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    /// The access key id.
    pub access_key: String,
    /// The scope's date, `YYYYMMDD`.
    pub short_date: String,
    /// The scope's region.
    pub region: String,
    /// The scope's service.
    pub service: String,
    /// The header names the signature covers, lowercase.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

/// Parses `HMAC-SHA256 Credential=AK/date/region/service/request, SignedHeaders=a;b, Signature=hex`.
/// `None` when it is not of that form.
pub fn parse_authorization(value: &str) -> Option<AuthorizationHeader> {
    let rest = value.strip_prefix(ALGORITHM)?.trim_start();
    let mut credential = None;
    let mut signed = None;
    let mut sig = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => return None,
        }
    }
    let mut cred = credential?.split('/');
    let access_key = cred.next()?.to_string();
    let short_date = cred.next()?.to_string();
    let region = cred.next()?.to_string();
    let service = cred.next()?.to_string();
    if cred.next()? != "request" || cred.next().is_some() {
        return None;
    }
    Some(AuthorizationHeader {
        access_key,
        short_date,
        region,
        service,
        signed_headers: signed?.split(';').map(str::to_string).collect(),
        signature: sig?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const AK: &str = "AKLTMjI2ODVlYzI3ZGY1NGU4ZjhjYWRjMTlmNTM5OTZkYzE";
    const SK: &str = "TnpCak5XWXpZV1U0WkRaaE5ERmxaR0ZpTmpjeVkyUXlZek0wTWpJMU1qWQ==";

    #[test]
    fn vector_a_iam_list_users() {
        let creds = Credentials::new(AK, SK, None);
        let query = [
            ("Action", "ListUsers"),
            ("Version", "2018-01-01"),
            ("Limit", "10"),
            ("Offset", "0"),
        ];
        let req = RequestToSign {
            method: "GET",
            host: "iam.volcengineapi.com",
            path: "/",
            query: &query,
            content_type: "application/x-www-form-urlencoded; charset=utf-8",
            body: b"",
            region: "cn-north-1",
            service: "iam",
            time: Utc.with_ymd_and_hms(2020, 12, 30, 8, 18, 5).unwrap(),
        };
        let signed = sign(&creds, &req);
        assert_eq!(
            signed.query,
            "Action=ListUsers&Limit=10&Offset=0&Version=2018-01-01"
        );
        let headers = vec![
            ("content-type".to_string(), req.content_type.to_string()),
            ("host".to_string(), req.host.to_string()),
            ("x-content-sha256".to_string(), sha256_hex(b"")),
            ("x-date".to_string(), "20201230T081805Z".to_string()),
        ];
        let canon = canonical_request("GET", "/", &signed.query, &headers, &sha256_hex(b""));
        assert_eq!(
            sha256_hex(canon.as_bytes()),
            "3a4d4dee07c3308a52da01bc12d7a83c3705bfa543f51648f46de880bb2a7447"
        );
        assert_eq!(
            signed.authorization,
            "HMAC-SHA256 Credential=AKLTMjI2ODVlYzI3ZGY1NGU4ZjhjYWRjMTlmNTM5OTZkYzE/20201230/cn-north-1/iam/request, SignedHeaders=content-type;host;x-content-sha256;x-date, Signature=28eeabbbd726b87002e0fe58ad8c1c768e619b06e2646f35b6ad7ed029a6d8a7"
        );
    }

    const BODY_B: &str = r#"{"AppId":"661e0000000000000543cf","StartTime":"2024-05-01T11:00:00Z","EndTime":"2024-05-01T11:30:00Z","Indicator":["join_room_success_rate","stall_rate"],"ProductType":"native"}"#;

    fn vector_b(token: Option<&str>) -> Signed {
        let creds = Credentials::new(AK, SK, token);
        let query = [("Action", "ListRealTimeQuality"), ("Version", "2023-11-01")];
        sign(
            &creds,
            &RequestToSign {
                method: "POST",
                host: "rtc.volcengineapi.com",
                path: "/",
                query: &query,
                content_type: "application/json",
                body: BODY_B.as_bytes(),
                region: "cn-north-1",
                service: "rtc",
                time: Utc.with_ymd_and_hms(2024, 5, 1, 11, 31, 0).unwrap(),
            },
        )
    }

    #[test]
    fn vector_b_rtc_without_token() {
        let signed = vector_b(None);
        assert_eq!(
            signed.x_content_sha256,
            "7c8ae48d8f16a0fce9bfaac1f149cc14f603f504720b2a92e5311888f2792d01"
        );
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("host".to_string(), "rtc.volcengineapi.com".to_string()),
            (
                "x-content-sha256".to_string(),
                signed.x_content_sha256.clone(),
            ),
            ("x-date".to_string(), "20240501T113100Z".to_string()),
        ];
        let canon = canonical_request(
            "POST",
            "/",
            &signed.query,
            &headers,
            &signed.x_content_sha256,
        );
        assert_eq!(
            sha256_hex(canon.as_bytes()),
            "a0d5113ccca16e65e4db40f2b95de413f213cacb2ef1c4d7ea02caf9fbc4564f"
        );
        assert_eq!(
            signed.authorization,
            format!(
                "HMAC-SHA256 Credential={AK}/20240501/cn-north-1/rtc/request, SignedHeaders=content-type;host;x-content-sha256;x-date, Signature=d31ae7b09860a5904f93666509d574b2bfc5ebb7d3ed12a10d8867ba4007b575"
            )
        );
        assert_eq!(signed.security_token, None);
    }

    #[test]
    fn vector_b_rtc_with_session_token() {
        let signed = vector_b(Some("STS-TOKEN-EXAMPLE"));
        assert_eq!(
            signed.authorization,
            format!(
                "HMAC-SHA256 Credential={AK}/20240501/cn-north-1/rtc/request, SignedHeaders=content-type;host;x-content-sha256;x-date;x-security-token, Signature=05bee71268ea179bf019170b0791a8bbd3be26397b330d88871723564174a394"
            )
        );
        assert_eq!(signed.security_token.as_deref(), Some("STS-TOKEN-EXAMPLE"));
    }

    #[test]
    fn default_ports_are_not_signed_and_query_is_encoded() {
        assert_eq!(
            signing_host("rtc.volcengineapi.com:443"),
            "rtc.volcengineapi.com"
        );
        assert_eq!(signing_host("127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(
            canonical_query(&[("b", "x y+z"), ("a", "é/")]),
            "a=%C3%A9%2F&b=x%20y%2Bz"
        );
    }

    #[test]
    fn authorization_parses_back() {
        let signed = vector_b(Some("STS-TOKEN-EXAMPLE"));
        let parsed = parse_authorization(&signed.authorization).unwrap();
        assert_eq!(parsed.access_key, AK);
        assert_eq!(parsed.short_date, "20240501");
        assert_eq!(parsed.region, "cn-north-1");
        assert_eq!(parsed.service, "rtc");
        assert_eq!(
            parsed.signed_headers,
            [
                "content-type",
                "host",
                "x-content-sha256",
                "x-date",
                "x-security-token"
            ]
        );
        assert_eq!(
            parsed.signature,
            "05bee71268ea179bf019170b0791a8bbd3be26397b330d88871723564174a394"
        );
        assert_eq!(parse_authorization("Bearer x"), None);
        assert_eq!(
            parse_authorization("HMAC-SHA256 Credential=a/b/c, SignedHeaders=x, Signature=y"),
            None
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let creds = Credentials::new(AK, "SUPERSECRET", Some("TOKENSECRET"));
        let dbg = format!("{creds:?}");
        assert!(
            !dbg.contains("SUPERSECRET") && !dbg.contains("TOKENSECRET"),
            "{dbg}"
        );
        let signed = vector_b(Some("TOKENSECRET"));
        let dbg = format!("{signed:?}");
        assert!(
            !dbg.contains("Signature=") && !dbg.contains("TOKENSECRET"),
            "{dbg}"
        );
    }
}
