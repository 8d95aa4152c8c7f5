//! A hostile stand-in: a raw-TCP HTTP/1.1 server that answers every signed request
//! with one fixed body, or with a body far larger than any real answer, for the tests
//! that a client and a run survive what the real API never sends. Unlike the emulator it
//! checks nothing and serves no data.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the fake server sends as its body.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// This text, as a 200 with `Content-Length`.
    Fixed(&'static str),
    /// `len` bytes of JSON-looking filler, announced with Content-Length or not.
    Huge {
        /// Bytes of body.
        len: usize,
        /// Whether `Content-Length` announces them.
        announce: bool,
    },
}

/// A raw-TCP HTTP/1.1 server on 127.0.0.1 answering every signed request (at most `max`)
/// with one body, closing each connection after it. A run's unsigned clock read gets a
/// bare 404 and is not counted.
pub struct FakeApi {
    port: u16,
    /// Signed requests answered so far.
    pub served: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeApi {
    /// Starts the server on a free loopback port.
    pub fn start(body: Body, max: usize) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().map_or(0, |a| a.port());
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (count, stopped) = (served.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut answered = 0;
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) || answered == max {
                    break;
                }
                let Ok(mut s) = stream else { continue };
                match read_request(&mut s) {
                    None => continue,
                    Some(false) => {
                        let _ = s.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        continue;
                    }
                    Some(true) => {}
                }
                answered += 1;
                count.fetch_add(1, Ordering::SeqCst);
                let _ = respond(&mut s, body);
            }
        });
        FakeApi {
            port,
            served,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        // Unblock `accept` if the server still waits, then join.
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request's head and body: whether it is signed; `None` on a broken
/// connection.
fn read_request(s: &mut TcpStream) -> Option<bool> {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(1 << 20)];
    s.read_exact(&mut body).ok()?;
    Some(head.contains("\r\nauthorization:"))
}

fn respond(s: &mut TcpStream, body: Body) -> std::io::Result<()> {
    match body {
        Body::Fixed(text) => write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        ),
        Body::Huge { len, announce } => {
            let mut head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    .to_string();
            if announce {
                head.push_str(&format!("Content-Length: {len}\r\n"));
            }
            head.push_str("\r\n");
            s.write_all(head.as_bytes())?;
            let chunk = vec![b' '; 1 << 20];
            let mut sent = 0;
            while sent < len {
                let n = chunk.len().min(len - sent);
                s.write_all(&chunk[..n])?;
                sent += n;
            }
            Ok(())
        }
    }
}
