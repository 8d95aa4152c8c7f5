//! The `rtcq-emulator` binary as the demo and the benchmarks start it: the first line of
//! stdout names the address, and it answers there until it is stopped.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

#[test]
fn prints_its_address_first_and_answers_there() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtcq-emulator"))
        .args(["--listen", "127.0.0.1:0", "--now", "2026-11-25T12:00:10Z"])
        .env_remove("VOLC_ACCESSKEY")
        .env_remove("VOLC_SECRETKEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_string();
    // An unsigned request: the gateway's refusal, as the real API gives it.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "POST /?Action=ListRealTimeQuality&Version=2023-11-01 HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(reply.contains("MissingRequestInfo"), "{reply}");
    assert!(reply.to_ascii_lowercase().contains("\r\ndate: "), "{reply}");
}

#[test]
fn help_names_the_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_rtcq-emulator"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for option in ["--listen", "--now", "--rate-limit", "--fault", "--app"] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}
