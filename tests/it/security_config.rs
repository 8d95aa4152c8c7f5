//! The config loader never panics and every rejection names the file, a key and a reason
//! (property tests over generated TOML and mutations of a valid file); plain `http://`
//! is refused unless the host is loopback or `allow_http = true`, in the file and with
//! `--endpoint`; TLS verification is never switched off.

use std::path::Path;

use crate::kit::toml_str;
use proptest::prelude::*;
use rtcq::config::{self, ConfigError};

const FILE: &str = "pipelines/p.toml";

const VALID: &str = r#"name = "demo"

[api]
endpoint = "https://rtc.volcengineapi.com"
region = "cn-north-1"
requests_per_second = 2.0
allow_http = false

[sink]
url = "./data"
slot = "5m"

[[targets]]
app_id = "demo-app"
indicators = ["join_room_success_rate", "stall_rate"]
product_types = ["native", "web"]
rooms = ["room-1", "room-2"]
users = ["u1", "u2"]

[[targets]]
app_id = "app-ü"
indicators = ["network_trans_delay"]
"#;

fn parse(text: &str) -> Result<config::Pipeline, ConfigError> {
    config::parse(Path::new(FILE), text)
}

/// Every rejection: the file, a non-empty key, a non-empty reason, and the message
/// `file: key: reason`.
fn check(text: &str) -> Result<(), TestCaseError> {
    if let Err(e) = parse(text) {
        prop_assert_eq!(e.file.as_path(), Path::new(FILE));
        let key = e.key.clone().unwrap_or_default();
        prop_assert!(!key.trim().is_empty(), "no key in {:?} for {:?}", e, text);
        prop_assert!(!e.reason.trim().is_empty(), "no reason in {:?}", e);
        prop_assert_eq!(e.to_string(), format!("{FILE}: {key}: {}", e.reason));
    }
    Ok(())
}

// ---- generated TOML ----

const KEYS: [&str; 20] = [
    "name",
    "api",
    "sink",
    "targets",
    "endpoint",
    "region",
    "requests_per_second",
    "allow_http",
    "url",
    "slot",
    "app_id",
    "indicators",
    "product_types",
    "rooms",
    "users",
    "stall_rate",
    "native",
    "",
    "a.b",
    "ü ñ",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(KEYS.to_vec()).prop_map(str::to_string),
        "[a-z_]{1,12}",
        "\\PC{0,8}",
    ]
}

fn render_key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_string()
    } else {
        toml_str(k)
    }
}

/// A TOML value as text.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        prop_oneof![
            any::<f64>().prop_map(|f| format!("{f:?}")),
            Just("nan".to_string()),
            Just("-inf".to_string()),
            Just("1e400".to_string()),
        ],
        "\\PC{0,20}".prop_map(|s| toml_str(&s)),
        proptest::sample::select(vec![
            "\"5m\"",
            "\"30s\"",
            "\"7m\"",
            "\"http://example.com\"",
            "\"http://127.0.0.1:1\"",
            "\"https://\"",
            "\"s3://b\"",
            "\"native\"",
            "\"stall_rate\"",
            "\"\"",
            "1979-05-27T07:32:00Z",
        ])
        .prop_map(str::to_string),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec((key(), inner), 0..3).prop_map(|kv| {
                let mut seen = std::collections::HashSet::new();
                let body: Vec<String> = kv
                    .into_iter()
                    .filter(|(k, _)| seen.insert(k.clone()))
                    .map(|(k, v)| format!("{} = {v}", render_key(&k)))
                    .collect();
                format!("{{ {} }}", body.join(", "))
            }),
        ]
    })
}

fn entries() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((key(), value()), 0..5)
}

/// A document: top-level entries, then tables and arrays of tables with entries.
fn document() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        Just("[api]".to_string()),
        Just("[sink]".to_string()),
        Just("[[targets]]".to_string()),
        key().prop_map(|k| format!("[{}]", render_key(&k))),
        key().prop_map(|k| format!("[[{}]]", render_key(&k))),
    ];
    (
        entries(),
        proptest::collection::vec((header, entries()), 0..5),
    )
        .prop_map(|(top, tables)| {
            let mut out = String::new();
            let put = |entries: Vec<(String, String)>, out: &mut String| {
                for (k, v) in entries {
                    out.push_str(&format!("{} = {v}\n", render_key(&k)));
                }
            };
            put(top, &mut out);
            for (h, e) in tables {
                out.push_str(&h);
                out.push('\n');
                put(e, &mut out);
            }
            out
        })
}

// ---- mutations of the valid file ----

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Insert(usize, String),
    DeleteLine(usize),
    DuplicateLine(usize),
    ReplaceValue(usize, String),
    SwapChars(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let n = VALID.chars().count();
    let lines = VALID.lines().count();
    prop_oneof![
        (0..n).prop_map(Mutation::Truncate),
        (0..n, "\\PC{1,6}|[\\[\\]=\"'\\\\\n#{},.]{1,3}").prop_map(|(i, s)| Mutation::Insert(i, s)),
        (0..lines).prop_map(Mutation::DeleteLine),
        (0..lines).prop_map(Mutation::DuplicateLine),
        (0..lines, value()).prop_map(|(i, v)| Mutation::ReplaceValue(i, v)),
        (0..n, 0..n).prop_map(|(a, b)| Mutation::SwapChars(a, b)),
    ]
}

/// Applies `m`; positions are taken modulo the current length, since earlier mutations
/// change it.
fn apply(text: &str, m: &Mutation) -> String {
    let chars: Vec<char> = text.chars().collect();
    let lines: Vec<&str> = text.lines().collect();
    let at = |i: usize| i % (chars.len() + 1);
    let line = |i: usize| i % lines.len().max(1);
    match m {
        Mutation::Truncate(i) => chars[..at(*i)].iter().collect(),
        Mutation::Insert(i, s) => {
            let mut c = chars.clone();
            let i = at(*i);
            for (k, ch) in s.chars().enumerate() {
                c.insert(i + k, ch);
            }
            c.into_iter().collect()
        }
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            let mut l = lines.clone();
            l.remove(line(*i));
            l.join("\n")
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let mut l = lines.clone();
            l.insert(line(*i), lines[line(*i)]);
            l.join("\n")
        }
        Mutation::ReplaceValue(i, v) => lines
            .iter()
            .enumerate()
            .map(|(k, l)| match l.split_once('=') {
                Some((key, _)) if k == line(*i) => format!("{key}= {v}"),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Mutation::SwapChars(a, b) if !chars.is_empty() => {
            let mut c = chars.clone();
            c.swap(a % chars.len(), b % chars.len());
            c.into_iter().collect()
        }
        _ => text.to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn generated_toml_is_accepted_or_refused_with_file_key_and_reason(text in document()) {
        check(&text)?;
    }

    #[test]
    fn mutated_valid_files_are_accepted_or_refused_with_file_key_and_reason(
        ms in proptest::collection::vec(mutation(), 1..4)
    ) {
        let mut text = VALID.to_string();
        for m in &ms {
            text = apply(&text, m);
        }
        check(&text)?;
    }

    #[test]
    fn arbitrary_text_is_refused_with_file_key_and_reason(text in "\\PC{0,200}|(?s:.{0,80})") {
        check(&text)?;
    }
}

#[test]
fn the_valid_file_parses() {
    let p = parse(VALID).unwrap();
    assert_eq!(p.targets.len(), 2 * 2 * 2 + 1);
}

#[test]
fn syntax_errors_name_the_full_key_and_where_it_is() {
    let cases = [
        (
            "[sink]\nurl = \"x\"\n",
            "pipelines/p.toml: name: missing field `name`",
        ),
        (
            "name = \"a\"\n[sink]\n",
            "pipelines/p.toml: sink.url (line 2, column 1): missing field `url`",
        ),
        (
            "name = \"a\"\n[sink]\nurl = \"x\"\n[[targets]]\napp_id = \"a\"\nindicators = [\"stall_rate\"]\n[[targets]]\napp_id = \"b\"\n",
            "pipelines/p.toml: targets[1].indicators (line 7, column 1): missing field `indicators`",
        ),
        (
            "name = \"a\"\n[sink]\nurl = 3\n",
            "pipelines/p.toml: sink.url (line 3, column 7): invalid type: integer `3`, expected a string",
        ),
        (
            "name = \"a\"\n= 3\n",
            "pipelines/p.toml: line 2, column 1: unquoted keys cannot be empty",
        ),
        (
            "name = \"a\"\nname = \"b\"\n",
            "pipelines/p.toml: name (line 2, column 1): duplicate key",
        ),
        (
            "name = 'é\u{0}'",
            "pipelines/p.toml: name: invalid literal string",
        ),
    ];
    for (text, want) in cases {
        let got = parse(text).unwrap_err().to_string();
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
}

// ---- transport ----

fn with_endpoint(endpoint: &str, allow_http: Option<bool>) -> String {
    let allow = allow_http
        .map(|b| format!("allow_http = {b}\n"))
        .unwrap_or_default();
    VALID
        .replace(
            "endpoint = \"https://rtc.volcengineapi.com\"\n",
            &format!("endpoint = \"{endpoint}\"\n"),
        )
        .replace("allow_http = false\n", &allow)
}

const PLAIN: &str = "is plain http to a host that is not loopback: use https, or set api.allow_http = true if you really mean it";

#[test]
fn plain_http_only_to_loopback_or_when_allowed() {
    for ok in [
        "https://rtc.volcengineapi.com",
        "https://example.com:8443/base",
        "http://localhost",
        "http://LOCALHOST:8080/",
        "http://127.0.0.1:8080",
        "http://127.0.0.2",
        "http://127.255.255.254:1",
        "http://[::1]:8080",
        "http://[::1]",
    ] {
        let p = parse(&with_endpoint(ok, None)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(p.api.endpoint, ok);
    }
    let refused = [
        ("http://example.com", format!("\"http://example.com\" {PLAIN}")),
        ("http://10.0.0.1:8080", format!("\"http://10.0.0.1:8080\" {PLAIN}")),
        ("http://[::2]:8080", format!("\"http://[::2]:8080\" {PLAIN}")),
        ("http://localhost.example.com", format!("\"http://localhost.example.com\" {PLAIN}")),
        ("http://127.0.0.1.nip.io", format!("\"http://127.0.0.1.nip.io\" {PLAIN}")),
        (
            "http://localhost:80@example.com",
            "\"http://localhost:80@example.com\" has a user name or password before '@': rtcq signs requests itself, so write only https://host[:port]".to_string(),
        ),
        (
            "http://[::1]@example.com",
            "\"http://[::1]@example.com\" has a user name or password before '@': rtcq signs requests itself, so write only https://host[:port]".to_string(),
        ),
        (
            "ftp://127.0.0.1",
            "\"ftp://127.0.0.1\" must start with https://".to_string(),
        ),
        (
            "rtc.volcengineapi.com",
            "\"rtc.volcengineapi.com\" is not a URL: write it like https://rtc.volcengineapi.com".to_string(),
        ),
        ("https://", "\"https://\" has no host".to_string()),
    ];
    for (endpoint, reason) in &refused {
        let got = parse(&with_endpoint(endpoint, None))
            .unwrap_err()
            .to_string();
        assert_eq!(
            got,
            format!("{FILE}: api.endpoint (line 4, column 12): {reason}")
        );
    }
    // allow_http = true lets plain http reach any host, and nothing else.
    let p = parse(&with_endpoint("http://example.com", Some(true))).unwrap();
    assert_eq!(p.api.endpoint, "http://example.com");
    let got = parse(&with_endpoint(
        "http://localhost:80@example.com",
        Some(true),
    ))
    .unwrap_err()
    .to_string();
    assert!(got.contains("has a user name or password"), "{got}");

    // --endpoint goes through the same checks, named as the flag.
    let mut p = parse(VALID).unwrap();
    for ok in ["http://localhost", "http://[::1]:8080", "http://127.0.0.2"] {
        p.override_endpoint(ok).unwrap();
        assert_eq!(p.api.endpoint, ok);
    }
    for (endpoint, reason) in &refused {
        let got = p.override_endpoint(endpoint).unwrap_err().to_string();
        assert_eq!(got, format!("{FILE}: --endpoint: {reason}"));
    }
    let mut allowed = parse(&with_endpoint("https://x.example", Some(true))).unwrap();
    allowed.override_endpoint("http://example.com").unwrap();
}

#[test]
fn the_binary_refuses_a_plain_http_endpoint_override_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::kit::write_pipeline(
        dir.path(),
        "p",
        "http://127.0.0.1:9",
        2.0,
        "[[targets]]\napp_id = \"a\"\nindicators = [\"stall_rate\"]\n",
    );
    let out = crate::kit::rtcq(&[
        "run",
        "--config",
        &cfg.display().to_string(),
        "--endpoint",
        "http://example.com",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let want = format!(
        "{}: --endpoint: \"http://example.com\" {PLAIN}",
        cfg.display()
    );
    // Logs are JSON lines when stderr is not a terminal: compare the message itself.
    let said = out.stderr.lines().any(|l| {
        serde_json::from_str::<serde_json::Value>(l)
            .ok()
            .and_then(|v| v["message"].as_str().map(|m| m == want))
            .unwrap_or(false)
    });
    assert!(said, "{}", out.stderr);
}

/// A guard against a future change: nothing in `src/` switches TLS verification off.
#[test]
fn no_source_file_switches_tls_verification_off() {
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files += 1;
                let text = std::fs::read_to_string(&p).unwrap();
                for bad in [
                    "danger_accept_invalid_certs",
                    "danger_accept_invalid_hostnames",
                    "with_allow_invalid_certificates(true)",
                    "dangerous()",
                    "NoCertificateVerification",
                ] {
                    assert!(!text.contains(bad), "{} uses {bad}", p.display());
                }
            }
        }
    }
    assert!(files > 20);
}
