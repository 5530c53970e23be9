//! `check` lines of `lb.conf`: which real servers are checked, how, and how often.
//!
//! ```text
//! check -t|-u VIP:PORT [-r RIP[:PORT]] tcp  [connect_port N] [bindto IP] [TIMING...]
//! check -t|-u VIP:PORT [-r RIP[:PORT]] http [path /P] [status N|N-M] [expect TEXT]
//!                                          [virtualhost HOST] [connect_port N] [bindto IP] [TIMING...]
//! check -t|-u VIP:PORT [-r RIP[:PORT]] misc "COMMAND WITH ARGS" [misc_timeout S] [dynamic] [TIMING...]
//!
//! TIMING: [connect_timeout S] (tcp, http) [delay_loop S] [retry N] [delay_before_retry S]
//! ```
//!
//! Words are separated by blanks; a word may be quoted with `"..."` or
//! `'...'` (inside double quotes a backslash escapes the next character),
//! and `#` outside quotes starts a comment. Seconds may have a fraction
//! (`delay_loop 0.5`).
//!
//! | option | default (keepalived's) |
//! | --- | --- |
//! | `connect_port` | the real server's port |
//! | `connect_timeout` | 5 s (tcp: the connect; http: the whole exchange) |
//! | `delay_loop` | 60 s |
//! | `retry` | 1 (misc: 0) |
//! | `delay_before_retry` | 3 s for http, 1 s otherwise |
//! | `path` | `/` |
//! | `status` | 200-299 |
//! | `virtualhost` | `RIP:PORT` (the address connected to) |
//! | `misc_timeout` | `delay_loop` |
//!
//! Without `-r` the check applies to every real server of the service,
//! including the ones added later; with `-r` to that one only (a missing
//! port is the service's, as in ipvsadm). The service (and with `-r` the
//! real server) must exist once the file is applied.
//!
//! In a misc command `%RIP`, `%RPORT`, `%VIP` and `%VPORT` are replaced by
//! the real server's and the virtual service's address and port before the
//! command runs (with `sh -c`).

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::ipvs::admin::parse::{inet_aton, service_port};
use crate::ipvs::service::{Protocol, ServiceKey};

/// keepalived's `connect_timeout` default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// keepalived's `delay_loop` default.
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// keepalived's `retry` default (TCP_CHECK, HTTP_GET).
pub const DEFAULT_RETRY: u32 = 1;
/// keepalived's `retry` default for MISC_CHECK.
pub const DEFAULT_MISC_RETRY: u32 = 0;
/// keepalived's `delay_before_retry` default for HTTP_GET.
pub const DEFAULT_HTTP_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(3);
/// keepalived's `delay_before_retry` default for the other checkers.
pub const DEFAULT_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);
/// The largest number of seconds an option takes (a day).
const MAX_SECONDS: f64 = 86_400.0;
/// The largest `retry`.
const MAX_RETRY: u32 = 1000;

/// One checked `check` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    /// The virtual service.
    pub service: ServiceKey,
    /// `-r`: only this real server (address, port); `None`: every one.
    pub dest: Option<(Ipv4Addr, u16)>,
    /// What the probe does.
    pub kind: CheckKind,
    /// Where the probe connects (tcp, http); `None`: the real server's port.
    pub connect_port: Option<u16>,
    /// The source address of the probe's connection (tcp, http).
    pub bindto: Option<Ipv4Addr>,
    /// The probe's time limit (tcp, http; misc has its own).
    pub connect_timeout: Duration,
    /// Time between two checks once a result is reported.
    pub delay_loop: Duration,
    /// Failures tolerated before one is reported: a checker goes DOWN
    /// after `retry + 1` consecutive failures.
    pub retry: u32,
    /// Time before the next check after a failure that is not reported yet.
    pub delay_before_retry: Duration,
}

/// The probe of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// TCP connect, then close.
    Tcp,
    /// HTTP/1.0 GET.
    Http(HttpCheck),
    /// A command's exit status.
    Misc(MiscCheck),
}

/// What an `http` check asks and expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCheck {
    /// The request path (starts with `/`).
    pub path: String,
    /// The accepted status codes, inclusive.
    pub status: (u16, u16),
    /// Text the body must contain.
    pub expect: Option<String>,
    /// The `Host` header; `None`: `RIP:PORT`.
    pub virtualhost: Option<String>,
}

/// What a `misc` check runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiscCheck {
    /// The command for `sh -c`, before `%RIP`... substitution.
    pub command: String,
    /// How long it may run before it is killed (a failure).
    pub timeout: Duration,
    /// keepalived's `misc_dynamic`: exit 2..=255 means up with weight exit − 2.
    pub dynamic: bool,
}

impl CheckKind {
    /// `tcp`, `http` or `misc`.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http(_) => "http",
            CheckKind::Misc(_) => "misc",
        }
    }
}

impl CheckSpec {
    /// True if this check applies to real server `addr:port` of `service`.
    pub fn applies_to(&self, service: &ServiceKey, addr: Ipv4Addr, port: u16) -> bool {
        self.service == *service && self.dest.is_none_or(|d| d == (addr, port))
    }

    /// A short description for listings: `tcp :8000`, `http :80/health`,
    /// `misc "check-load %RIP"`.
    pub fn label(&self, rport: u16) -> String {
        let port = self.connect_port.unwrap_or(rport);
        match &self.kind {
            CheckKind::Tcp => format!("tcp :{port}"),
            CheckKind::Http(h) => format!("http :{port}{}", h.path),
            CheckKind::Misc(m) => format!("misc \"{}\"{}", m.command, if m.dynamic { " dynamic" } else { "" }),
        }
    }
}

impl fmt::Display for CheckSpec {
    /// The line as it could be written in `lb.conf` (all options explicit).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sw = if self.service.proto == Protocol::Udp { "-u" } else { "-t" };
        write!(f, "check {sw} {}:{}", self.service.addr, self.service.port)?;
        if let Some((a, p)) = self.dest {
            write!(f, " -r {a}:{p}")?;
        }
        write!(f, " {}", self.kind.name())?;
        match &self.kind {
            CheckKind::Tcp => {}
            CheckKind::Http(h) => {
                write!(f, " path {} status {}-{}", h.path, h.status.0, h.status.1)?;
                if let Some(e) = &h.expect {
                    write!(f, " expect {e:?}")?;
                }
                if let Some(v) = &h.virtualhost {
                    write!(f, " virtualhost {v}")?;
                }
            }
            CheckKind::Misc(m) => {
                write!(f, " {:?} misc_timeout {}", m.command, m.timeout.as_secs_f64())?;
                if m.dynamic {
                    f.write_str(" dynamic")?;
                }
            }
        }
        if !matches!(self.kind, CheckKind::Misc(_)) {
            if let Some(p) = self.connect_port {
                write!(f, " connect_port {p}")?;
            }
            if let Some(b) = self.bindto {
                write!(f, " bindto {b}")?;
            }
            write!(f, " connect_timeout {}", self.connect_timeout.as_secs_f64())?;
        }
        write!(
            f,
            " delay_loop {} retry {} delay_before_retry {}",
            self.delay_loop.as_secs_f64(),
            self.retry,
            self.delay_before_retry.as_secs_f64()
        )
    }
}

/// Splits a line into words: blanks separate, quotes group, `#` outside
/// quotes ends the line (module docs).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => return Ok(words),
            _ => {}
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '#' {
                break;
            }
            chars.next();
            match c {
                '"' | '\'' => loop {
                    match chars.next() {
                        None => return Err(format!("unterminated {c} quote")),
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(e) => word.push(e),
                            None => return Err("unterminated \" quote".to_string()),
                        },
                        Some(other) => word.push(other),
                    }
                },
                _ => word.push(c),
            }
        }
        words.push(word);
    }
}

/// Parses one `check` line (the whole raw line, `check` first).
pub fn parse_check_line(line: &str) -> Result<CheckSpec, String> {
    let words = split_words(line).map_err(|e| format!("check: {e}"))?;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    parse_check_words(&words)
}

/// Parses the words of a `check` line (`words[0]` is `check`).
pub fn parse_check_words(words: &[&str]) -> Result<CheckSpec, String> {
    const USAGE: &str = "usage: check -t|-u VIP:PORT [-r RIP[:PORT]] tcp|http|misc [OPTIONS]";
    let mut rest = match words.split_first() {
        Some((&"check", rest)) => rest,
        _ => return Err(USAGE.to_string()),
    };
    let proto = match rest.first() {
        Some(&"-t") => Protocol::Tcp,
        Some(&"-u") => Protocol::Udp,
        _ => return Err(format!("check: expected -t or -u VIP:PORT first ({USAGE})")),
    };
    let Some(vip) = rest.get(1) else { return Err(format!("check: -t/-u needs VIP:PORT ({USAGE})")) };
    let (addr, port) = host_port(vip, proto, None)?;
    let service = ServiceKey { proto, addr, port };
    rest = &rest[2..];
    let mut dest = None;
    if rest.first() == Some(&"-r") {
        let Some(rip) = rest.get(1) else { return Err("check: -r needs RIP[:PORT]".to_string()) };
        dest = Some(host_port(rip, proto, Some(port))?);
        rest = &rest[2..];
    }
    let Some((&kind_word, mut opts)) = rest.split_first() else {
        return Err(format!("check: missing the check kind: tcp, http or misc ({USAGE})"));
    };
    let mut kind = match kind_word {
        "tcp" => CheckKind::Tcp,
        "http" => CheckKind::Http(HttpCheck { path: "/".into(), status: (200, 299), expect: None, virtualhost: None }),
        "misc" => {
            let Some((cmd, more)) = opts.split_first() else {
                return Err("check: misc needs a command (quote it: misc \"COMMAND ARGS\")".to_string());
            };
            if cmd.trim().is_empty() {
                return Err("check: misc: the command is empty".to_string());
            }
            opts = more;
            CheckKind::Misc(MiscCheck { command: cmd.to_string(), timeout: Duration::ZERO, dynamic: false })
        }
        other => return Err(format!("check: unknown check kind `{other}' (expected tcp, http or misc)")),
    };
    let misc = matches!(kind, CheckKind::Misc(_));
    let mut spec = CheckSpec {
        service,
        dest,
        kind: CheckKind::Tcp,
        connect_port: None,
        bindto: None,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        delay_loop: DEFAULT_DELAY_LOOP,
        retry: if misc { DEFAULT_MISC_RETRY } else { DEFAULT_RETRY },
        delay_before_retry: if matches!(kind, CheckKind::Http(_)) {
            DEFAULT_HTTP_DELAY_BEFORE_RETRY
        } else {
            DEFAULT_DELAY_BEFORE_RETRY
        },
    };
    let mut misc_timeout = None;
    let mut seen: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        let key = opts[i];
        let allowed: &[&str] = match &kind {
            CheckKind::Tcp => {
                &["connect_port", "bindto", "connect_timeout", "delay_loop", "retry", "delay_before_retry"]
            }
            CheckKind::Http(_) => &[
                "path",
                "status",
                "expect",
                "virtualhost",
                "connect_port",
                "bindto",
                "connect_timeout",
                "delay_loop",
                "retry",
                "delay_before_retry",
            ],
            CheckKind::Misc(_) => &["misc_timeout", "dynamic", "delay_loop", "retry", "delay_before_retry"],
        };
        if !allowed.contains(&key) {
            return Err(format!(
                "check: unknown option `{key}' for a {} check (expected {})",
                kind.name(),
                allowed.join(", ")
            ));
        }
        if seen.contains(&key) {
            return Err(format!("check: `{key}' given twice"));
        }
        seen.push(key);
        if key == "dynamic" {
            if let CheckKind::Misc(m) = &mut kind {
                m.dynamic = true;
            }
            i += 1;
            continue;
        }
        let Some(&value) = opts.get(i + 1) else { return Err(format!("check: `{key}' needs a value")) };
        i += 2;
        match key {
            "connect_port" => spec.connect_port = Some(port_number(value, key)?),
            "bindto" => {
                spec.bindto =
                    Some(value.parse::<Ipv4Addr>().map_err(|_| {
                        format!("check: bindto: bad address `{value}' (expected an IPv4 address A.B.C.D)")
                    })?)
            }
            "connect_timeout" => spec.connect_timeout = seconds(value, key, false)?,
            "delay_loop" => spec.delay_loop = seconds(value, key, false)?,
            "delay_before_retry" => spec.delay_before_retry = seconds(value, key, true)?,
            "misc_timeout" => misc_timeout = Some(seconds(value, key, false)?),
            "retry" => {
                spec.retry = value.parse::<u32>().ok().filter(|&n| n <= MAX_RETRY).ok_or_else(|| {
                    format!("check: retry: bad value `{value}' (expected a number of retries 0..{MAX_RETRY})")
                })?
            }
            _ => {
                let CheckKind::Http(h) = &mut kind else { unreachable!("only http has other options") };
                match key {
                    "path" => {
                        if !value.starts_with('/') || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                            return Err(format!("check: path: bad path `{value}' (expected /PATH without blanks)"));
                        }
                        h.path = value.to_string();
                    }
                    "status" => h.status = status_range(value)?,
                    "expect" => {
                        if value.is_empty() {
                            return Err("check: expect: the text is empty".to_string());
                        }
                        h.expect = Some(value.to_string());
                    }
                    _ => {
                        if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                            return Err(format!("check: virtualhost: bad host `{value}'"));
                        }
                        h.virtualhost = Some(value.to_string());
                    }
                }
            }
        }
    }
    if let CheckKind::Misc(m) = &mut kind {
        m.timeout = misc_timeout.unwrap_or(spec.delay_loop);
    }
    spec.kind = kind;
    Ok(spec)
}

/// `ADDR:PORT` (or `ADDR` when `default_port` is given), as ipvsadm reads
/// addresses (`inet_aton`) and ports (numbers or service names).
fn host_port(s: &str, proto: Protocol, default_port: Option<u16>) -> Result<(Ipv4Addr, u16), String> {
    let (a, p) = match s.rsplit_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr = inet_aton(a).ok_or_else(|| format!("check: bad address `{a}' (expected an IPv4 address)"))?;
    let port = match (p, default_port) {
        (Some(p), _) => match p.parse::<u16>() {
            Ok(n) => n,
            Err(_) => service_port(p, proto).ok_or_else(|| format!("check: bad port `{p}' in `{s}'"))?,
        },
        (None, Some(d)) => d,
        (None, None) => return Err(format!("check: `{s}' needs a port (VIP:PORT)")),
    };
    Ok((addr, port))
}

fn port_number(s: &str, key: &str) -> Result<u16, String> {
    s.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| format!("check: {key}: bad port `{s}' (expected 1..65535)"))
}

/// Seconds with an optional fraction, at most a day; 0 only if `zero_ok`.
fn seconds(s: &str, key: &str, zero_ok: bool) -> Result<Duration, String> {
    let bad = || {
        let low = if zero_ok { "0" } else { "above 0" };
        format!("check: {key}: bad value `{s}' (expected seconds, {low} up to {MAX_SECONDS}, e.g. 0.5)")
    };
    let v: f64 = s.parse().map_err(|_| bad())?;
    if !v.is_finite() || !(0.0..=MAX_SECONDS).contains(&v) || (v == 0.0 && !zero_ok) {
        return Err(bad());
    }
    let d = Duration::from_secs_f64(v);
    // Below a millisecond a check would spin; keep that out.
    if !zero_ok && d < Duration::from_millis(1) {
        return Err(bad());
    }
    Ok(d)
}

/// `N` or `N-M`, HTTP status codes 100..=599.
fn status_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("check: status: bad value `{s}' (expected a code or a range of codes 100..599, e.g. 200-299)");
    let code = |t: &str| t.parse::<u16>().ok().filter(|c| (100..=599).contains(c)).ok_or_else(bad);
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (code(a)?, code(b)?),
        None => {
            let c = code(s)?;
            (c, c)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(port: u16) -> ServiceKey {
        ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(10, 77, 0, 100), port }
    }

    #[test]
    fn words_quotes_and_comments() {
        assert_eq!(split_words(r#"a "b c" 'd "e"' f\g # x"#).unwrap(), ["a", "b c", r#"d "e""#, r"f\g"]);
        assert_eq!(split_words(r#"x "say \"hi\" # not a comment""#).unwrap(), ["x", r#"say "hi" # not a comment"#]);
        assert_eq!(split_words("a#b").unwrap(), ["a"]);
        assert_eq!(split_words(r#"a "" b"#).unwrap(), ["a", "", "b"]);
        assert_eq!(split_words(r#"a "b"#).unwrap_err(), "unterminated \" quote");
    }

    #[test]
    fn tcp_defaults() {
        let c = parse_check_line("check -t 10.77.0.100:80 tcp").unwrap();
        assert_eq!(c.service, svc(80));
        assert_eq!(c.dest, None);
        assert_eq!(c.kind, CheckKind::Tcp);
        assert_eq!(
            (c.connect_timeout, c.delay_loop, c.retry, c.delay_before_retry),
            (Duration::from_secs(5), Duration::from_secs(60), 1, Duration::from_secs(1))
        );
        assert_eq!(
            c.to_string(),
            "check -t 10.77.0.100:80 tcp connect_timeout 5 delay_loop 60 retry 1 delay_before_retry 1"
        );
    }

    #[test]
    fn every_option() {
        let c = parse_check_line(
            "check -t 10.77.0.100:http -r 10.77.2.11:8000 tcp connect_port 8001 connect_timeout 0.25 \
             delay_loop 0.5 retry 3 delay_before_retry 0 bindto 10.77.2.1",
        )
        .unwrap();
        assert_eq!(c.dest, Some((Ipv4Addr::new(10, 77, 2, 11), 8000)));
        assert_eq!(c.connect_port, Some(8001));
        assert_eq!(c.bindto, Some(Ipv4Addr::new(10, 77, 2, 1)));
        assert_eq!(c.connect_timeout, Duration::from_millis(250));
        assert_eq!(c.delay_loop, Duration::from_millis(500));
        assert_eq!((c.retry, c.delay_before_retry), (3, Duration::ZERO));
        // -r without a port: the service's.
        let c = parse_check_line("check -u 10.77.0.100:53 -r 10.77.2.11 tcp").unwrap();
        assert_eq!((c.service.proto, c.dest), (Protocol::Udp, Some((Ipv4Addr::new(10, 77, 2, 11), 53))));

        let h = parse_check_line(
            "check -t 10.77.0.100:80 http path /health status 200 expect \"all good\" virtualhost www.example.com",
        )
        .unwrap();
        assert_eq!(h.delay_before_retry, Duration::from_secs(3));
        assert_eq!(
            h.kind,
            CheckKind::Http(HttpCheck {
                path: "/health".into(),
                status: (200, 200),
                expect: Some("all good".into()),
                virtualhost: Some("www.example.com".into()),
            })
        );
        assert_eq!(h.label(8000), "http :8000/health");

        let m =
            parse_check_line(r#"check -t 10.77.0.100:80 misc "load-weight %RIP %RPORT" dynamic delay_loop 2"#).unwrap();
        assert_eq!(m.retry, 0);
        assert_eq!(
            m.kind,
            CheckKind::Misc(MiscCheck {
                command: "load-weight %RIP %RPORT".into(),
                timeout: Duration::from_secs(2),
                dynamic: true
            })
        );
        let m = parse_check_line("check -t 10.77.0.100:80 misc true misc_timeout 1.5 # comment").unwrap();
        assert!(
            matches!(m.kind, CheckKind::Misc(MiscCheck { timeout, dynamic: false, .. }) if timeout == Duration::from_millis(1500))
        );
        // The canonical form parses back to the same check.
        for c in [h, m] {
            assert_eq!(parse_check_line(&c.to_string()).unwrap(), c);
        }
    }

    #[test]
    fn errors() {
        let e = |s: &str| parse_check_line(s).unwrap_err();
        assert_eq!(e("check tcp"), "check: expected -t or -u VIP:PORT first (usage: check -t|-u VIP:PORT [-r RIP[:PORT]] tcp|http|misc [OPTIONS])");
        assert_eq!(e("check -t 10.77.0.100 tcp"), "check: `10.77.0.100' needs a port (VIP:PORT)");
        assert_eq!(e("check -t 10.77.0.300:80 tcp"), "check: bad address `10.77.0.300' (expected an IPv4 address)");
        assert_eq!(e("check -t 10.77.0.100:80"), "check: missing the check kind: tcp, http or misc (usage: check -t|-u VIP:PORT [-r RIP[:PORT]] tcp|http|misc [OPTIONS])");
        assert_eq!(e("check -t 10.77.0.100:80 ping"), "check: unknown check kind `ping' (expected tcp, http or misc)");
        assert_eq!(
            e("check -t 10.77.0.100:80 tcp path /"),
            "check: unknown option `path' for a tcp check (expected connect_port, bindto, connect_timeout, delay_loop, retry, delay_before_retry)"
        );
        assert_eq!(e("check -t 10.77.0.100:80 tcp retry"), "check: `retry' needs a value");
        assert_eq!(e("check -t 10.77.0.100:80 tcp retry 1 retry 2"), "check: `retry' given twice");
        assert_eq!(
            e("check -t 10.77.0.100:80 tcp retry -1"),
            "check: retry: bad value `-1' (expected a number of retries 0..1000)"
        );
        assert_eq!(
            e("check -t 10.77.0.100:80 tcp delay_loop 0"),
            "check: delay_loop: bad value `0' (expected seconds, above 0 up to 86400, e.g. 0.5)"
        );
        assert!(e("check -t 10.77.0.100:80 tcp connect_timeout nan").starts_with("check: connect_timeout: bad value"));
        assert_eq!(
            e("check -t 10.77.0.100:80 tcp connect_port 0"),
            "check: connect_port: bad port `0' (expected 1..65535)"
        );
        assert!(e("check -t 10.77.0.100:80 http status 600").starts_with("check: status: bad value `600'"));
        assert!(e("check -t 10.77.0.100:80 http status 299-200").starts_with("check: status: bad value"));
        assert_eq!(
            e("check -t 10.77.0.100:80 http path health"),
            "check: path: bad path `health' (expected /PATH without blanks)"
        );
        assert_eq!(e("check -t 10.77.0.100:80 misc"), "check: misc needs a command (quote it: misc \"COMMAND ARGS\")");
        assert_eq!(e("check -t 10.77.0.100:80 misc \"exit 0"), "check: unterminated \" quote");
        assert!(e("check -t 10.77.0.100:80 misc true connect_timeout 1")
            .starts_with("check: unknown option `connect_timeout' for a misc check"));
        assert_eq!(
            e("check -t 10.77.0.100:80 tcp bindto eth0"),
            "check: bindto: bad address `eth0' (expected an IPv4 address A.B.C.D)"
        );
    }
}
