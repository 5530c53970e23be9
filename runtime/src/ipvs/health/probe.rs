//! The probes: TCP connect, HTTP GET, a command. Each blocks its thread
//! for at most its time limit and returns an [`Outcome`]; none panics.
//!
//! - [`tcp`]: connect within the timeout, then close. Up when connected.
//! - [`http`]: connect, send an HTTP/1.0 GET with a `Host` header, read the
//!   status line (and, when text is expected, the body up to
//!   [`MAX_BODY`] bytes); connect and exchange together must fit the
//!   timeout. Up when the status is in the range and the body has the text.
//! - [`misc`]: `sh -c COMMAND` in its own process group, stdin/stdout/stderr
//!   on /dev/null; the whole group is killed at the timeout (or when
//!   cancelled). Exit 0 is up; with `dynamic`, exit 2..=255 is up with
//!   weight exit − 2; any other exit, a signal or the timeout is down.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::config::HttpCheck;
use super::state::Outcome;
use crate::live::sys;

/// The most of an HTTP response read when looking for `expect`'s text.
pub const MAX_BODY: usize = 64 * 1024;
/// How often a running command is polled.
const MISC_POLL: Duration = Duration::from_millis(10);

/// An OS error's text without the `(os error N)` suffix.
fn describe(e: &io::Error, timeout: Duration) -> String {
    if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) {
        return format!("timed out after {}", secs(timeout));
    }
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// `1.5 s`, `5 s`.
pub fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

fn connect(addr: SocketAddrV4, bind: Option<Ipv4Addr>, timeout: Duration) -> io::Result<TcpStream> {
    match bind {
        None => TcpStream::connect_timeout(&addr.into(), timeout),
        Some(local) => sys::connect_from(local, addr, timeout),
    }
}

/// TCP_CHECK: connect to `addr` (from `bind`) within `timeout`, then close.
pub fn tcp(addr: SocketAddrV4, bind: Option<Ipv4Addr>, timeout: Duration) -> Outcome {
    match connect(addr, bind, timeout) {
        Ok(_) => Outcome::up("connected"),
        Err(e) => Outcome::down(format!("connect: {}", describe(&e, timeout))),
    }
}

/// HTTP_GET: see the module docs. `host` is the `Host` header.
pub fn http(addr: SocketAddrV4, bind: Option<Ipv4Addr>, timeout: Duration, check: &HttpCheck, host: &str) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut s = match connect(addr, bind, timeout) {
        Ok(s) => s,
        Err(e) => return Outcome::down(format!("HTTP connect: {}", describe(&e, timeout))),
    };
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        // A zero timeout means "none" to std; keep a tiny one instead.
        d.max(Duration::from_millis(1))
    };
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: p4lite-health\r\nConnection: close\r\n\r\n",
        check.path
    );
    if let Err(e) = s.set_write_timeout(Some(left())).and_then(|()| s.write_all(request.as_bytes())) {
        return Outcome::down(format!("HTTP send: {}", describe(&e, timeout)));
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let want_body = check.expect.as_deref().map(str::as_bytes);
    loop {
        if Instant::now() >= deadline {
            return Outcome::down(format!("HTTP read: timed out after {}", secs(timeout)));
        }
        if let Err(e) = s.set_read_timeout(Some(left())) {
            return Outcome::down(format!("HTTP read: {}", describe(&e, timeout)));
        }
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Outcome::down(format!("HTTP read: {}", describe(&e, timeout))),
        };
        buf.extend_from_slice(&chunk[..n]);
        let done = n == 0 || buf.len() >= MAX_BODY;
        let enough = match want_body {
            None => buf.windows(2).any(|w| w == b"\r\n") || buf.contains(&b'\n'),
            Some(text) => body(&buf).is_some_and(|b| contains(b, text)),
        };
        if done || enough {
            break;
        }
    }
    let Some(code) = status_code(&buf) else {
        let first = String::from_utf8_lossy(buf.split(|&b| b == b'\n').next().unwrap_or(&[]));
        let first: String = first.trim_end().chars().take(60).collect();
        return Outcome::down(if buf.is_empty() {
            "HTTP: connection closed without a response".to_string()
        } else {
            format!("HTTP: bad status line `{first}`")
        });
    };
    if !(check.status.0..=check.status.1).contains(&code) {
        return Outcome::down(format!("HTTP {code}"));
    }
    if let Some(text) = &check.expect {
        if !body(&buf).is_some_and(|b| contains(b, text.as_bytes())) {
            return Outcome::down(format!("HTTP {code} without \"{text}\" in the first {} bytes", buf.len()));
        }
    }
    Outcome::up(format!("HTTP {code}"))
}

/// The status code of `HTTP/1.x NNN ...`.
fn status_code(resp: &[u8]) -> Option<u16> {
    let line = resp.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = words.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

/// The body: what follows the blank line after the headers.
fn body(resp: &[u8]) -> Option<&[u8]> {
    if let Some(i) = resp.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some(&resp[i + 4..]);
    }
    resp.windows(2).position(|w| w == b"\n\n").map(|i| &resp[i + 2..])
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// MISC_CHECK: see the module docs. `cancel` set: the command is killed
/// and the outcome is a failure.
pub fn misc(command: &str, timeout: Duration, dynamic: bool, cancel: &AtomicBool) -> Outcome {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::down(format!("misc: cannot run sh: {}", describe(&e, timeout))),
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                sys::kill_group(child.id());
                let _ = child.wait();
                return Outcome::down(format!("misc: {}", describe(&e, timeout)));
            }
        }
        let now = Instant::now();
        if now >= deadline || cancel.load(Ordering::Relaxed) {
            sys::kill_group(child.id());
            let _ = child.kill();
            let _ = child.wait();
            return Outcome::down(if now >= deadline {
                format!("misc timed out after {}", secs(timeout))
            } else {
                "misc cancelled".to_string()
            });
        }
        thread::sleep(MISC_POLL.min(deadline - now));
    };
    match status.code() {
        Some(0) => Outcome::up("misc exit 0"),
        Some(code @ 2..=255) if dynamic => {
            let weight = code as u32 - 2;
            Outcome { ok: true, detail: format!("misc exit {code}: weight {weight}"), weight: Some(weight) }
        }
        Some(code) => Outcome::down(format!("misc exit {code}")),
        None => Outcome::down(format!("misc killed by signal {}", status.signal().unwrap_or(0))),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn local(l: &TcpListener) -> SocketAddrV4 {
        match l.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            other => panic!("not IPv4: {other}"),
        }
    }

    /// A port nobody listens on (bound then released).
    fn closed_port() -> SocketAddrV4 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        local(&l)
    }

    #[test]
    fn tcp_connects_and_reports_refusals() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(tcp(local(&l), None, SECOND), Outcome::up("connected"));
        assert_eq!(tcp(local(&l), Some(Ipv4Addr::LOCALHOST), SECOND), Outcome::up("connected"));
        let closed = closed_port();
        assert_eq!(tcp(closed, None, SECOND), Outcome::down("connect: Connection refused"));
        assert_eq!(tcp(closed, Some(Ipv4Addr::LOCALHOST), SECOND), Outcome::down("connect: Connection refused"));
        // A source address this host does not have.
        let o = tcp(local(&l), Some(Ipv4Addr::new(192, 0, 2, 1)), SECOND);
        assert_eq!(o, Outcome::down("connect: Cannot assign requested address"));
    }

    /// Serves `count` connections with `response`, reading the request first.
    fn server(response: &'static str, count: usize) -> (SocketAddrV4, thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = local(&l);
        let t = thread::spawn(move || {
            let mut requests = Vec::new();
            for _ in 0..count {
                let (mut s, _) = l.accept().unwrap();
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.ends_with(b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                requests.push(String::from_utf8_lossy(&req).into_owned());
                let _ = s.write_all(response.as_bytes());
            }
            requests
        });
        (addr, t)
    }

    fn check(expect: Option<&str>) -> HttpCheck {
        HttpCheck { path: "/health".into(), status: (200, 299), expect: expect.map(String::from), virtualhost: None }
    }

    #[test]
    fn http_status_and_body() {
        let ok = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nserver s1 is fine\n";
        let (addr, t) = server(ok, 3);
        assert_eq!(http(addr, None, SECOND, &check(None), "www.example.com"), Outcome::up("HTTP 200"));
        assert_eq!(http(addr, None, SECOND, &check(Some("is fine")), "h"), Outcome::up("HTTP 200"));
        let o = http(addr, None, SECOND, &check(Some("is broken")), "h");
        assert!(!o.ok && o.detail.starts_with("HTTP 200 without \"is broken\""), "{o:?}");
        let requests = t.join().unwrap();
        assert_eq!(
            requests[0],
            "GET /health HTTP/1.0\r\nHost: www.example.com\r\nUser-Agent: p4lite-health\r\nConnection: close\r\n\r\n"
        );
        let (addr, t) = server("HTTP/1.1 500 Internal Server Error\r\n\r\n", 2);
        assert_eq!(http(addr, None, SECOND, &check(None), "h"), Outcome::down("HTTP 500"));
        let any = HttpCheck { status: (500, 599), ..check(None) };
        assert_eq!(http(addr, None, SECOND, &any, "h"), Outcome::up("HTTP 500"));
        t.join().unwrap();
        let (addr, t) = server("garbage\r\n", 1);
        assert_eq!(http(addr, None, SECOND, &check(None), "h"), Outcome::down("HTTP: bad status line `garbage`"));
        t.join().unwrap();
        assert_eq!(
            http(closed_port(), None, SECOND, &check(None), "h"),
            Outcome::down("HTTP connect: Connection refused")
        );
    }

    #[test]
    fn http_times_out_on_a_silent_server() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let started = Instant::now();
        // Accepted by the kernel, never answered.
        let o = http(local(&l), None, Duration::from_millis(200), &check(None), "h");
        assert_eq!(o, Outcome::down("HTTP read: timed out after 0.2 s"));
        assert!(started.elapsed() < SECOND, "{:?}", started.elapsed());
    }

    #[test]
    fn misc_exit_codes_dynamic_and_timeout() {
        let no = AtomicBool::new(false);
        assert_eq!(misc("exit 0", SECOND * 5, false, &no), Outcome::up("misc exit 0"));
        assert_eq!(misc("exit 1", SECOND * 5, false, &no), Outcome::down("misc exit 1"));
        assert_eq!(misc("exit 3", SECOND * 5, false, &no), Outcome::down("misc exit 3"));
        assert_eq!(
            misc("exit 3", SECOND * 5, true, &no),
            Outcome { ok: true, detail: "misc exit 3: weight 1".into(), weight: Some(1) }
        );
        assert_eq!(misc("exit 1", SECOND * 5, true, &no), Outcome::down("misc exit 1"));
        assert_eq!(misc("kill -9 $$", SECOND * 5, false, &no), Outcome::down("misc killed by signal 9"));
        // The shell and its child are killed at the timeout.
        let started = Instant::now();
        let o = misc("sleep 5; exit 0", Duration::from_millis(200), false, &no);
        assert_eq!(o, Outcome::down("misc timed out after 0.2 s"));
        assert!(started.elapsed() < SECOND, "{:?}", started.elapsed());
        assert_eq!(misc("sleep 5", SECOND, false, &AtomicBool::new(true)), Outcome::down("misc cancelled"));
    }
}
