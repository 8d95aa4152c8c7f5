//! The emulator over real HTTP on loopback: signed requests from `volc_rtc::sign`,
//! answers compared with what `rtcq_emulator::generate` says they must be.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use rtcq_emulator::{
    DEMO_ACCESS_KEY, DEMO_SECRET_KEY, EmulatorConfig, FaultKind, Faults, OfflineFault,
    RunningEmulator, generate, spawn,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use volc_rtc::sign::{Credentials, RequestToSign, sign};
use volc_rtc::{Envelope, ProductType, QualityResult};

fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 10).unwrap()
}

async fn start(cfg: EmulatorConfig) -> RunningEmulator {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn(listener, cfg).await.unwrap()
}

fn unlimited() -> EmulatorConfig {
    EmulatorConfig {
        now: Some(fixed_now()),
        requests_per_second: None,
        ..EmulatorConfig::default()
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn demo() -> Credentials {
    Credentials::new(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, None)
}

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn good_body() -> Value {
    json!({
        "AppId": "661e0000000000000543cf",
        "StartTime": "2024-05-01T19:00:30+08:00",
        "EndTime": "2024-05-01T11:50:00Z",
        "Indicator": ["join_room_success_rate", "stall_rate", "network_trans_delay"],
        "RoomId": "room-7",
        "UserId": ["alice"],
        "ProductType": "web"
    })
}

/// What to change after signing.
#[derive(Default)]
struct Tamper {
    send_body: Option<Vec<u8>>,
    drop_header: Option<&'static str>,
    set_header: Option<(&'static str, String)>,
    query: Option<String>,
    method: Option<reqwest::Method>,
}

struct Answer {
    status: u16,
    content_type: String,
    json: Value,
}

impl Answer {
    fn error(&self) -> (u16, String, Option<i64>) {
        let e = &self.json["ResponseMetadata"]["Error"];
        (
            self.status,
            e["Code"].as_str().unwrap_or("").to_string(),
            e["CodeN"].as_i64(),
        )
    }
}

async fn call(
    client: &reqwest::Client,
    emu: &RunningEmulator,
    creds: &Credentials,
    signed_body: &[u8],
    signed_at: DateTime<Utc>,
    tamper: Tamper,
) -> Answer {
    let action = "ListRealTimeQuality";
    call_as(action, client, emu, creds, signed_body, signed_at, tamper).await
}

/// [`call`] for any action `POST`ed with a JSON body.
async fn call_as(
    action: &str,
    client: &reqwest::Client,
    emu: &RunningEmulator,
    creds: &Credentials,
    signed_body: &[u8],
    signed_at: DateTime<Utc>,
    tamper: Tamper,
) -> Answer {
    let host = emu.addr().to_string();
    let query = [("Action", action), ("Version", "2023-11-01")];
    let s = sign(
        creds,
        &RequestToSign {
            method: "POST",
            host: &host,
            path: "/",
            query: &query,
            content_type: "application/json",
            body: signed_body,
            region: "cn-north-1",
            service: "rtc",
            time: signed_at,
        },
    );
    let q = tamper.query.unwrap_or(s.query);
    let url = format!("http://{host}/?{q}");
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-date", s.x_date),
        ("x-content-sha256", s.x_content_sha256),
        ("authorization", s.authorization),
    ];
    if let Some(t) = s.security_token {
        headers.push(("x-security-token", t));
    }
    headers.retain(|(n, _)| Some(*n) != tamper.drop_header);
    if let Some((n, v)) = tamper.set_header {
        headers.retain(|(h, _)| *h != n);
        headers.push((n, v));
    }
    let mut req = client.request(tamper.method.unwrap_or(reqwest::Method::POST), url);
    for (n, v) in headers {
        req = req.header(n, v);
    }
    let resp = req
        .body(tamper.send_body.unwrap_or_else(|| signed_body.to_vec()))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = resp.bytes().await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap();
    Answer {
        status,
        content_type,
        json,
    }
}

async fn call_ok(client: &reqwest::Client, emu: &RunningEmulator, b: &[u8]) -> Answer {
    call(client, emu, &demo(), b, Utc::now(), Tamper::default()).await
}

fn expected(now: DateTime<Utc>) -> QualityResult {
    generate(
        "661e0000000000000543cf",
        ProductType::Web,
        Some("room-7"),
        &["alice".to_string()],
        &[
            "join_room_success_rate".to_string(),
            "stall_rate".to_string(),
            "network_trans_delay".to_string(),
        ],
        Utc.with_ymd_and_hms(2024, 5, 1, 11, 0, 30).unwrap(),
        Utc.with_ymd_and_hms(2024, 5, 1, 11, 50, 0).unwrap(),
        now,
    )
}

#[tokio::test]
async fn a_valid_request_returns_exactly_the_generated_data() {
    let emu = start(unlimited()).await;
    let c = client();
    let a = call_ok(&c, &emu, &body(&good_body())).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.content_type, "application/json");
    let env: Envelope = serde_json::from_value(a.json.clone()).unwrap();
    assert_eq!(env.result, Some(expected(fixed_now())));
    let md = &env.metadata;
    assert_eq!(md.action.as_deref(), Some("ListRealTimeQuality"));
    assert_eq!(md.version.as_deref(), Some("2023-11-01"));
    assert_eq!(md.service.as_deref(), Some("rtc"));
    assert_eq!(md.region.as_deref(), Some("cn-north-1"));
    assert_eq!(md.error, None);
    // The wire form: real names, `+08:00` timestamps, echoed room and users.
    let r = &a.json["Result"];
    assert_eq!(r["RoomId"], "room-7");
    assert_eq!(r["UserId"], json!(["alice"]));
    let names: Vec<&str> = r["Indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "5s_join_room_success_rate",
            "10s_join_room_success_rate",
            "audio_stall_rate",
            "video_stall_rate",
            "audio_network_trans_delay",
            "video_network_trans_delay"
        ]
    );
    assert_eq!(
        r["Indicators"][0]["Data"][0]["TimeStamp"],
        "2024-05-01T19:00:30+08:00"
    );
    assert_eq!(r["Indicators"][0]["Unit"], "%");

    // Request ids are unique.
    let b = call_ok(&c, &emu, &body(&good_body())).await;
    assert_eq!(b.status, 200);
    assert_ne!(
        a.json["ResponseMetadata"]["RequestId"],
        b.json["ResponseMetadata"]["RequestId"]
    );
    let stats = emu.shutdown().await;
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.status(200), 2);
    assert_eq!(stats.throttled, 0);
}

#[tokio::test]
async fn signature_errors_have_the_gateway_codes() {
    let emu = start(unlimited()).await;
    let c = client();
    let b = body(&good_body());
    let now = Utc::now();
    type Case = (
        &'static str,
        Credentials,
        DateTime<Utc>,
        Tamper,
        (u16, &'static str, i64),
    );
    let cases: Vec<Case> = vec![
        (
            "no Authorization",
            demo(),
            now,
            Tamper {
                drop_header: Some("authorization"),
                ..Tamper::default()
            },
            (400, "MissingRequestInfo", 100004),
        ),
        (
            "no X-Date",
            demo(),
            now,
            Tamper {
                drop_header: Some("x-date"),
                ..Tamper::default()
            },
            (400, "MissingRequestInfo", 100004),
        ),
        (
            "garbled Authorization",
            demo(),
            now,
            Tamper {
                set_header: Some(("authorization", "HMAC-SHA256 nonsense".into())),
                ..Tamper::default()
            },
            (400, "MissingRequestInfo", 100004),
        ),
        (
            "unknown access key",
            Credentials::new("AKLTsomeoneelse", DEMO_SECRET_KEY, None),
            now,
            Tamper::default(),
            (401, "InvalidAccessKey", 100009),
        ),
        (
            "signed 16 minutes ago",
            demo(),
            now - TimeDelta::minutes(16),
            Tamper::default(),
            (403, "InvalidTimestamp", 100006),
        ),
        (
            "signed 16 minutes ahead",
            demo(),
            now + TimeDelta::minutes(16),
            Tamper::default(),
            (403, "InvalidTimestamp", 100006),
        ),
        (
            "wrong secret",
            Credentials::new(DEMO_ACCESS_KEY, "not-the-secret", None),
            now,
            Tamper::default(),
            (401, "SignatureDoesNotMatch", 100010),
        ),
        (
            "body tampered after signing",
            demo(),
            now,
            Tamper {
                send_body: Some(body(&json!({
                    "AppId": "someone-elses-app",
                    "StartTime": "2024-05-01T19:00:30+08:00",
                    "EndTime": "2024-05-01T11:50:00Z",
                    "Indicator": ["stall_rate"]
                }))),
                ..Tamper::default()
            },
            (401, "SignatureDoesNotMatch", 100010),
        ),
        (
            "query changed after signing",
            demo(),
            now,
            Tamper {
                query: Some("Action=ListRealTimeQuality&Version=2023-11-01&X=1".into()),
                ..Tamper::default()
            },
            (401, "SignatureDoesNotMatch", 100010),
        ),
        (
            "wrong version",
            demo(),
            now,
            Tamper {
                query: Some("Action=ListRealTimeQuality&Version=2020-01-01".into()),
                ..Tamper::default()
            },
            (404, "InvalidActionOrVersion", 100008),
        ),
        (
            "GET",
            demo(),
            now,
            Tamper {
                method: Some(reqwest::Method::GET),
                ..Tamper::default()
            },
            (404, "InvalidActionOrVersion", 100008),
        ),
    ];
    for (what, creds, at, tamper, (status, code, code_n)) in cases {
        let a = call(&c, &emu, &creds, &b, at, tamper).await;
        assert_eq!(
            a.error(),
            (status, code.to_string(), Some(code_n)),
            "{what}: {}",
            a.json
        );
        assert!(a.json.get("Result").is_none(), "{what}");
        assert!(
            a.json["ResponseMetadata"]["RequestId"].is_string(),
            "{what}"
        );
    }
    assert_eq!(emu.stats().status(200), 0);
}

#[tokio::test]
async fn session_tokens_are_required_when_configured() {
    let emu = start(EmulatorConfig {
        session_token: Some("STS-TOKEN".into()),
        ..unlimited()
    })
    .await;
    let c = client();
    let b = body(&good_body());
    let with = Credentials::new(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, Some("STS-TOKEN"));
    let a = call(&c, &emu, &with, &b, Utc::now(), Tamper::default()).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let a = call(&c, &emu, &demo(), &b, Utc::now(), Tamper::default()).await;
    assert_eq!(
        a.error(),
        (400, "MissingRequestInfo".to_string(), Some(100004))
    );
    let wrong = Credentials::new(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, Some("OTHER"));
    let a = call(&c, &emu, &wrong, &b, Utc::now(), Tamper::default()).await;
    assert_eq!(
        a.error(),
        (401, "InvalidAccessKey".to_string(), Some(100009))
    );
}

#[tokio::test]
async fn five_at_once_with_two_per_second_throttles_three() {
    let emu = start(EmulatorConfig {
        now: Some(fixed_now()),
        requests_per_second: Some(2.0),
        ..EmulatorConfig::default()
    })
    .await;
    let c = client();
    let b = body(&good_body());
    let started = Instant::now();
    let answers = futures::future::join_all((0..5).map(|_| call_ok(&c, &emu, &b))).await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the burst took {:?}, too slow to test a one-second window",
        started.elapsed()
    );
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let throttled: Vec<_> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!((ok, throttled.len()), (2, 3));
    for a in throttled {
        assert_eq!(a.error().1, "FlowLimitExceeded");
        assert!(a.json.get("Result").is_none());
    }
    assert_eq!(emu.throttled(), 3);
    assert_eq!(emu.requests(), 5);
    // After a second, the window is free again.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(call_ok(&c, &emu, &b).await.status, 200);
    let stats = emu.shutdown().await;
    assert_eq!((stats.status(200), stats.status(429)), (3, 3));
}

#[tokio::test]
async fn invalid_parameters_have_the_service_codes() {
    let emu = start(unlimited()).await;
    let c = client();
    let mut g = good_body();
    let edit = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = good_body();
        f(v.as_object_mut().unwrap());
        body(&v)
    };
    g["AppId"] = json!(7);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "InvalidParameter.Unmarshal"),
        (body(&g), "InvalidParameter.Unmarshal"),
        (
            edit(&|o| {
                o.remove("AppId");
            }),
            "InvalidParameter",
        ),
        (
            edit(&|o| {
                o.insert("Indicator".into(), json!(["stall_rate", "mos"]));
            }),
            "InvalidParameter",
        ),
        (
            edit(&|o| {
                o.insert("ProductType".into(), json!("android"));
            }),
            "InvalidParameter",
        ),
        (
            edit(&|o| {
                o.remove("RoomId");
            }),
            "InvalidParameter",
        ),
        (
            edit(&|o| {
                o.insert(
                    "UserId".into(),
                    json!((0..21).map(|i| i.to_string()).collect::<Vec<_>>()),
                );
            }),
            "InvalidParameter",
        ),
        (
            edit(&|o| {
                o.insert("EndTime".into(), json!("2024-05-01T11:00:30Z"));
            }),
            "InvalidParameter.StartTimeAfterEndTime",
        ),
        (
            edit(&|o| {
                o.insert("StartTime".into(), json!("2024-05-01T10:00:00Z"));
                o.insert("EndTime".into(), json!("2024-05-01T10:30:00Z"));
            }),
            "InvalidParameter.OutofTimeRange",
        ),
        (
            edit(&|o| {
                o.insert("EndTime".into(), json!("2024-05-01T12:01:00Z"));
            }),
            "InvalidParameter.OutofTimeRange",
        ),
    ];
    for (b, code) in cases {
        let a = call_ok(&c, &emu, &b).await;
        assert_eq!(
            a.error(),
            (400, code.to_string(), None),
            "{}: {}",
            String::from_utf8_lossy(&b),
            a.json
        );
    }
    let named = call_ok(
        &c,
        &emu,
        &edit(&|o| {
            o.insert("Indicator".into(), json!(["mos"]));
        }),
    )
    .await;
    let msg = named.json["ResponseMetadata"]["Error"]["Message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("\"mos\""), "{msg}");
}

#[tokio::test]
async fn a_huge_body_is_refused_with_413() {
    let emu = start(unlimited()).await;
    let c = client();
    let huge = vec![b' '; 2 * 1024 * 1024];
    let a = call_ok(&c, &emu, &huge).await;
    assert_eq!(a.error(), (413, "InvalidParameter".to_string(), None));
    // Chunked, so no Content-Length to refuse early: the read itself stops at the cap.
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    let head = b"POST /?Action=ListRealTimeQuality&Version=2023-11-01 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    s.write_all(head).await.unwrap();
    let chunk = vec![b'x'; 256 * 1024];
    for _ in 0..6 {
        let sent = async {
            s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            s.write_all(&chunk).await?;
            s.write_all(b"\r\n").await
        };
        if sent.await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut out = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(
        out[..n].starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&out[..n])
    );
}

#[tokio::test]
async fn garbage_never_brings_it_down() {
    let emu = start(unlimited()).await;
    let inputs: [&[u8]; 4] = [
        b"POST /?Action=ListRealTimeQuality&Version=2023-11-01 HTTP/1.1\r\nHost: x\r\nAuthorization: \xff\xfe\x80\r\nX-Date: \xc3\x28\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /?Action=ListRealTimeQuality&Version=2023-11-01&%ff%fe=%zz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n\xff\xfe\xfd",
        b"\x00\x01\x02 not http at all\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    ];
    for input in inputs {
        let mut s = TcpStream::connect(emu.addr()).await.unwrap();
        s.write_all(input).await.unwrap();
        let _ = s.shutdown().await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    }
    // Still serving.
    let a = call_ok(&client(), &emu, &body(&good_body())).await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn latency_is_added_before_answering() {
    let emu = start(EmulatorConfig {
        latency: Duration::from_millis(300),
        ..unlimited()
    })
    .await;
    let c = client();
    let started = Instant::now();
    let a = call_ok(&c, &emu, &body(&good_body())).await;
    assert_eq!(a.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// A `ListQuality` body: 5-minute buckets of 11:15 to 12:00 in Beijing, the last one
/// (ending 8 hours before [`fixed_now`]) the newest served; 11:12 is inside a bucket
/// that starts before `StartTime`, so that bucket is left out.
fn offline_body() -> Value {
    json!({
        "AppId": "661e0000000000000543cf",
        "StartTime": "2024-05-01T11:12:00+08:00",
        "EndTime": "2024-05-01T04:30:00Z",
        "Indicator": ["stall_rate"],
        "RoomId": "room-7",
        "UserId": ["alice"],
        "ProductType": "web",
        "AggregateGranularity": "5min"
    })
}

async fn offline_ok(c: &reqwest::Client, emu: &RunningEmulator) -> Answer {
    let b = body(&offline_body());
    let at = Utc::now();
    call_as("ListQuality", c, emu, &demo(), &b, at, Tamper::default()).await
}

/// The points of the 5-minute buckets starting at 03:15 to 03:55 UTC, worked out from the
/// 30 s data: per series, `(TimeStamp, Value)`.
fn expected_offline() -> Vec<(String, Vec<(String, f64)>)> {
    let mut out: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    for i in 0..9 {
        let b = Utc.with_ymd_and_hms(2024, 5, 1, 3, 15, 0).unwrap() + TimeDelta::minutes(5 * i);
        let r = generate(
            "661e0000000000000543cf",
            ProductType::Web,
            Some("room-7"),
            &["alice".to_string()],
            &["stall_rate".to_string()],
            b,
            b + TimeDelta::minutes(5),
            fixed_now(),
        );
        for (k, s) in r.indicators.iter().enumerate() {
            if out.len() <= k {
                out.push((s.name.clone(), Vec::new()));
            }
            let values: Vec<f64> = s.data.iter().map(|p| p.value.unwrap()).collect();
            if values.is_empty() {
                continue;
            }
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let stamp = (b + TimeDelta::hours(8)).format("%Y-%m-%dT%H:%M:%S+08:00");
            out[k]
                .1
                .push((stamp.to_string(), (mean * 100.0).round() / 100.0));
        }
    }
    out
}

fn offline_points(result: &Value) -> Vec<(String, Vec<(String, f64)>)> {
    result["Indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let points = s["Data"].as_array().unwrap().iter().map(|p| {
                assert_eq!(
                    p.as_object().unwrap().len(),
                    2,
                    "only TimeStamp and Value: {p}"
                );
                (
                    p["TimeStamp"].as_str().unwrap().to_string(),
                    p["Value"].as_f64().unwrap(),
                )
            });
            (s["Name"].as_str().unwrap().to_string(), points.collect())
        })
        .collect()
}

#[tokio::test]
async fn list_quality_answers_five_minute_means_without_the_echo() {
    let emu = start(unlimited()).await;
    let c = client();
    let a = offline_ok(&c, &emu).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let md = &a.json["ResponseMetadata"];
    assert_eq!(md["Action"], "ListQuality");
    assert_eq!(md["Version"], "2023-11-01");
    assert!(md.get("Error").is_none());
    let r = &a.json["Result"];
    assert_eq!(r["AggregateGranularity"], "5min");
    assert!(
        r.get("RoomId").is_none() && r.get("UserId").is_none(),
        "{r}"
    );
    let want = expected_offline();
    assert_eq!(offline_points(r), want);
    let stamps: Vec<&str> = want[0].1.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(stamps.first(), Some(&"2024-05-01T11:15:00+08:00"));
    assert_eq!(stamps.last(), Some(&"2024-05-01T11:55:00+08:00"));
    // The real-time reader takes the answer, the granularity ignored.
    let env: Envelope = serde_json::from_value(a.json.clone()).unwrap();
    let result: QualityResult = env.result.unwrap();
    assert_eq!(result.indicators.len(), 2);
    let stats = emu.shutdown().await;
    assert_eq!((stats.offline_answers, stats.status(200)), (1, 1));
}

#[tokio::test]
async fn list_quality_has_its_own_two_per_second() {
    let emu = start(EmulatorConfig {
        now: Some(fixed_now()),
        requests_per_second: Some(2.0),
        ..EmulatorConfig::default()
    })
    .await;
    let c = client();
    let rt = body(&good_body());
    let started = Instant::now();
    let offline = futures::future::join_all((0..4).map(|_| offline_ok(&c, &emu)));
    let real_time = futures::future::join_all((0..2).map(|_| call_ok(&c, &emu, &rt)));
    let (offline, real_time) = tokio::join!(offline, real_time);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the burst took {:?}, too slow to test a one-second window",
        started.elapsed()
    );
    let statuses = |answers: &[Answer]| {
        let mut s: Vec<u16> = answers.iter().map(|a| a.status).collect();
        s.sort_unstable();
        s
    };
    assert_eq!(statuses(&offline), [200, 200, 429, 429]);
    assert_eq!(statuses(&real_time), [200, 200]);
    for a in offline.iter().filter(|a| a.status == 429) {
        assert_eq!(a.error().1, "FlowLimitExceeded");
    }
    let stats = emu.shutdown().await;
    assert_eq!((stats.offline_answers, stats.throttled), (2, 2));
}

#[tokio::test]
async fn list_quality_faults_deny_or_add_stray_points() {
    let with_fault = |fault| EmulatorConfig {
        faults: Faults {
            offline: Some(fault),
            ..Faults::default()
        },
        ..unlimited()
    };
    let c = client();
    let emu = start(with_fault(OfflineFault::Denied)).await;
    let a = offline_ok(&c, &emu).await;
    assert_eq!(a.error(), (403, "AccessDenied".to_string(), Some(100013)));
    assert_eq!(
        a.json["ResponseMetadata"]["Error"]["Message"],
        "User is not authorized to perform: rtc:ListQuality"
    );
    assert!(a.json.get("Result").is_none());
    // The other actions are not denied.
    assert_eq!(call_ok(&c, &emu, &body(&good_body())).await.status, 200);
    let stats = emu.shutdown().await;
    assert_eq!((stats.offline_answers, stats.faults), (0, 1));

    let emu = start(with_fault(OfflineFault::Stray)).await;
    let a = offline_ok(&c, &emu).await;
    assert_eq!(a.status, 200, "{}", a.json);
    for ((name, got), (want_name, want)) in offline_points(&a.json["Result"])
        .into_iter()
        .zip(expected_offline())
    {
        assert_eq!(name, want_name);
        let mut with_strays = want.clone();
        with_strays.insert(0, ("2024-05-01T11:05:00+08:00".to_string(), 1.0));
        with_strays.insert(2, ("2024-05-01T11:17:30+08:00".to_string(), 1.0));
        assert_eq!(got, with_strays, "{name}");
    }
}

#[tokio::test]
async fn list_quality_and_list_real_time_quality_keep_their_own_faults() {
    let c = client();
    let rt = body(&good_body());
    // Every real-time request fails at random; the offline ones are not touched.
    let emu = start(EmulatorConfig {
        faults: Faults::default().with(FaultKind::InternalError, 1.0),
        ..unlimited()
    })
    .await;
    assert_eq!(offline_ok(&c, &emu).await.status, 200);
    assert_eq!(call_ok(&c, &emu, &rt).await.error().1, "InternalError");
    // An offline throttle fault starts no burst that would refuse real-time requests.
    let emu = start(EmulatorConfig {
        faults: Faults {
            offline: Some(OfflineFault::Kind(FaultKind::Throttle)),
            throttle_burst: 3,
            ..Faults::default()
        },
        ..unlimited()
    })
    .await;
    assert_eq!(offline_ok(&c, &emu).await.error().0, 429);
    assert_eq!(call_ok(&c, &emu, &rt).await.status, 200);
    assert_eq!(offline_ok(&c, &emu).await.error().0, 429);
}
