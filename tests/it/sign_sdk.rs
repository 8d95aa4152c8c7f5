//! The Rust signer against the official Volcengine Python SDK's `SignerV4`: the same
//! requests signed by both give the same `Authorization`, byte for byte: POSTs of
//! `ListRealTimeQuality` and GETs of `ListRoomInfo` (query only, empty body).

use crate::kit::needs;
use std::io::Write;
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use volc_rtc::sign::{Credentials, RequestToSign, X_DATE_FORMAT, sign};

struct Case {
    method: &'static str,
    host: &'static str,
    query: Vec<(&'static str, &'static str)>,
    body: String,
    token: Option<&'static str>,
    region: &'static str,
    time: &'static str,
}

const AK: &str = "AKLTMjI2ODVlYzI3ZGY1NGU4ZjhjYWRjMTlmNTM5OTZkYzE";
const SK: &str = "TnpCak5XWXpZV1U0WkRaaE5ERmxaR0ZpTmpjeVkyUXlZek0wTWpJMU1qWQ==";

fn cases() -> Vec<Case> {
    let rtc = vec![("Action", "ListRealTimeQuality"), ("Version", "2023-11-01")];
    let body = |room: &str, users: &[&str]| {
        serde_json::to_string(&rtcq::api::QualityRequest {
            app_id: "661e0000000000000543cf".into(),
            start_time: "2024-05-01T11:00:00Z".into(),
            end_time: "2024-05-01T11:30:00Z".into(),
            indicator: vec!["join_room_success_rate".into(), "stall_rate".into()],
            room_id: Some(room.into()),
            user_id: users.iter().map(|u| u.to_string()).collect(),
            product_type: Some("web".into()),
        })
        .unwrap()
    };
    let room_info = |start: &'static str, page: &'static str| {
        vec![
            ("Action", "ListRoomInfo"),
            ("Version", "2023-11-01"),
            ("AppId", "661e0000000000000543cf"),
            ("StartTime", start),
            ("EndTime", "2024-05-02T11:00:00+08:00"),
            ("PageNum", page),
            ("PageSize", "100"),
        ]
    };
    vec![
        Case {
            method: "GET",
            host: "rtc.volcengineapi.com",
            query: room_info("2024-05-01T11:00:00Z", "1"),
            body: String::new(),
            token: None,
            region: "cn-north-1",
            time: "2024-05-01T11:31:00Z",
        },
        Case {
            method: "GET",
            host: "127.0.0.1:8080",
            query: room_info("2024-05-01T11:00:00.500+08:00", "12"),
            body: String::new(),
            token: Some("STS-TOKEN-EXAMPLE"),
            region: "cn-north-1",
            time: "2024-05-01T11:31:00Z",
        },
        Case {
            method: "POST",
            host: "rtc.volcengineapi.com",
            query: rtc.clone(),
            body: body("room-1", &[]),
            token: None,
            region: "cn-north-1",
            time: "2024-05-01T11:31:00Z",
        },
        Case {
            method: "POST",
            host: "rtc.volcengineapi.com",
            query: rtc.clone(),
            body: body("room-1", &["u1"]),
            token: Some("STS-TOKEN-EXAMPLE"),
            region: "cn-north-1",
            time: "2024-05-01T11:31:00Z",
        },
        Case {
            method: "POST",
            host: "127.0.0.1:8080",
            query: rtc.clone(),
            body: body("房间 ü/1", &["用户 a+b"]),
            token: None,
            region: "ap-singapore-1",
            time: "2025-12-31T23:59:59Z",
        },
        Case {
            method: "POST",
            host: "rtc.volcengineapi.com:443",
            query: rtc.clone(),
            body: String::new(),
            token: None,
            region: "us-east-1",
            time: "2026-11-25T12:00:00Z",
        },
        Case {
            method: "POST",
            host: "rtc.volcengineapi.com",
            query: vec![
                ("Version", "2023-11-01"),
                ("Action", "ListRealTimeQuality"),
                ("Extra", "a b~c*"),
            ],
            body: "{}".into(),
            token: Some("tok/with+chars="),
            region: "cn-north-1",
            time: "2026-11-25T12:00:00Z",
        },
    ]
}

/// What the client sends: JSON for a POST, the Go SDK's form type for a GET.
fn content_type(c: &Case) -> &'static str {
    match c.method {
        "GET" => "application/x-www-form-urlencoded; charset=utf-8",
        _ => "application/json",
    }
}

#[test]
fn rust_and_official_python_signers_agree() {
    needs!(Python);
    let cases = cases();
    let input: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            let time: DateTime<Utc> = c.time.parse().unwrap();
            serde_json::json!({
                "ak": AK, "sk": SK, "token": c.token, "region": c.region, "service": "rtc",
                "method": c.method, "host": c.host, "path": "/",
                "query": c.query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
                "content_type": content_type(c), "body": c.body,
                "x_date": time.format(X_DATE_FORMAT).to_string(),
            })
        })
        .collect();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/sign_sdk.py");
    let mut child = Command::new(crate::kit::python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), cases.len());
    for (c, want) in cases.iter().zip(theirs) {
        let creds = Credentials::new(AK, SK, c.token);
        let ours = sign(
            &creds,
            &RequestToSign {
                method: c.method,
                host: c.host,
                path: "/",
                query: &c.query,
                content_type: content_type(c),
                body: c.body.as_bytes(),
                region: c.region,
                service: "rtc",
                time: c.time.parse().unwrap(),
            },
        );
        assert_eq!(ours.authorization, want, "host {} body {}", c.host, c.body);
    }
}
