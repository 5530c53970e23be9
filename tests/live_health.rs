//! Health checks of the live IPVS director, end to end (issue 5, "End-to-end
//! tests": "Health: stop one real server's process mid-test; within the
//! configured checks it reaches weight 0, new connections go to the others,
//! and no connection to the other servers breaks. Start it again; it gets
//! its weight back."; and weights that follow the real servers' load).
//!
//! The network is the two-armed NAT network of [`common::lb_net`] with three
//! real servers, plus one kernel address for the director namespace,
//! [`PROBE_IP`] on its bridge `br0`: the health probes connect from the
//! director namespace's own kernel stack, and p4lite's ports (d0, d1) must
//! stay address-free. `arp_ignore=1` in the director namespace: the kernel
//! answers ARP for the probe address on br0 only, never on p4lite's d1.
//!
//! - `tcp_check_inhibits_and_restores` (rr, a `tcp` check) and
//!   `http_check_inhibits_and_restores` (wrr 3:2:1, an `http` check): kill
//!   s2's server process; within the configured checks s2's weight is 0
//!   (not before the retry, not after the bound), the DOWN line is logged
//!   with its reason, `health` shows it DOWN, 30 new connections all
//!   succeed and none reaches s2; connections held open to s1 and s3 across
//!   the whole test exchange data before, while and after s2 is down and
//!   end with their complete response. Restart s2: it gets its weight back
//!   within the bound, logged UP, and new connections reach it again.
//! - `misc_dynamic_weights_follow_load`: a `misc ... dynamic` check reads
//!   each server's weight from a file; rewriting the files moves the
//!   weights in `-Ln`, and new connections follow them; a file saying the
//!   server cannot be measured takes it DOWN, a new value brings it back.
//!
//! Needs root, `ip netns`, `ethtool`, `curl`, `python3` and `timeout`;
//! without them each test prints a notice and passes, except in CI
//! (`CI=true`), where it fails. Every wait is bounded; the namespaces,
//! processes and scratch files are removed when a test ends, also when it
//! fails.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::lb_net::{cannot_run, dest_column, dests, fetch_all, nat_conf, tally, Net, VIP};
use common::netns::{in_ns, must, wait_until};

/// The tools these tests call besides `ip`, `ethtool` and `timeout`.
const TOOLS: &[&str] = &["curl", "python3"];

/// The director namespace's kernel address on `br0`, the probes' source.
const PROBE_IP: &str = "10.78.1.2";

/// The check timings of the inhibit tests (seconds): `connect_timeout`,
/// `delay_loop`, `retry`, `delay_before_retry`.
const CONNECT_TIMEOUT: f64 = 0.5;
const DELAY_LOOP: f64 = 0.5;
const RETRY: u32 = 1;
const DELAY_BEFORE_RETRY: f64 = 0.3;

/// Time allowed on top of what the check timings permit (seconds): the
/// monitor's 0.1 s tick, the weight request waiting for the switch
/// thread, the 50 ms polling of `-Ln`, and a loaded 2-core machine.
const SLACK: f64 = 2.5;

/// The longest a stopped server may keep its weight: up to one
/// `delay_loop` until its next check, then `retry + 1` failed checks (each
/// at most `connect_timeout`) with `delay_before_retry` between them.
fn down_bound() -> f64 {
    DELAY_LOOP + f64::from(RETRY + 1) * CONNECT_TIMEOUT + f64::from(RETRY) * DELAY_BEFORE_RETRY
}

/// The shortest: the first failed check at once, `delay_before_retry`
/// between the `retry + 1` failures.
fn down_floor() -> f64 {
    f64::from(RETRY) * DELAY_BEFORE_RETRY
}

/// The longest a restarted server may stay at weight 0: one `delay_loop`
/// until its next check, which succeeds.
fn up_bound() -> f64 {
    DELAY_LOOP + CONNECT_TIMEOUT
}

/// The real servers' HTTP server for these tests: like
/// [`common::lb_net::HTTP_SERVER`] (`ARGV = ADDR PORT NAME DELAY`, `GET /`
/// answers the server's 3200-byte body, prints `ready` once it listens)
/// but threaded, so a held connection does not block the health probes,
/// and with `GET /hold`: a connection kept open by the client. It answers
/// the headers and `NAME hold`, then echoes each line the client sends
/// as `NAME echo LINE` until the line `end`, and ends with the body.
const HEALTH_SERVER: &str = r#"
import http.server, socketserver, sys
addr, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = ''.join('%s %04d\n' % (name, i) for i in range(400)).encode()
class H(http.server.BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        if self.path != '/hold':
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.end_headers()
        self.wfile.write(('%s hold\n' % name).encode())
        while True:
            line = self.rfile.readline()
            if not line or line == b'end\n':
                break
            self.wfile.write(('%s echo ' % name).encode() + line)
        self.wfile.write(body)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
srv = S((addr, port), H)
print('ready', flush=True)
srv.serve_forever()
"#;

/// The client of a held connection: `ARGV = VIP DIR TAG`. Connects to
/// `VIP:80`, asks `GET /hold`, prints `holding NAME`; then, polling DIR
/// (at most 60 s): for each file `TAG-ping-K` (K = 1, 2, …) sends `ping K`
/// and prints `pong K ok` if the echo is right; on `TAG-end` sends `end`,
/// reads the rest and prints `intact NAME` if it is exactly NAME's body.
const HOLD_CLIENT: &str = r#"
import os, socket, sys, time
vip, d, tag = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.create_connection((vip, 80), timeout=5)
s.settimeout(20)
s.sendall(b'GET /hold HTTP/1.0\r\n\r\n')
f = s.makefile('rb')
status = f.readline()
if b' 200 ' not in status:
    sys.exit('status %r' % status)
while f.readline() not in (b'\r\n', b''):
    pass
name = f.readline().decode().split()[0]
print('holding', name, flush=True)
k = 0
deadline = time.time() + 60
while time.time() < deadline:
    if os.path.exists(os.path.join(d, '%s-ping-%d' % (tag, k + 1))):
        k += 1
        s.sendall(b'ping %d\n' % k)
        line = f.readline()
        ok = line == ('%s echo ping %d\n' % (name, k)).encode()
        print('pong', k, 'ok' if ok else 'bad %r' % line, flush=True)
    elif os.path.exists(os.path.join(d, tag + '-end')):
        s.sendall(b'end\n')
        rest = f.read()
        want = ''.join('%s %04d\n' % (name, i) for i in range(400)).encode()
        print('intact' if rest == want else 'broken (%d bytes)' % len(rest), name, flush=True)
        sys.exit(0)
    else:
        time.sleep(0.02)
print('gave up', flush=True)
"#;

/// A connection held open by [`HOLD_CLIENT`].
struct Held {
    /// Its label (output in `LABEL.out`, control files `LABEL-…`).
    label: String,
    /// Its child index in the lab.
    child: usize,
    /// The server it reached.
    server: String,
    /// Pings answered so far.
    pings: usize,
}

/// Opens a held connection `label` to the VIP; returns once it is open.
fn hold(net: &mut Net, label: &str) -> Held {
    let (c, dir) = (net.client.clone(), net.lab.dir.display().to_string());
    let child = net.lab.spawn(&c, &["python3", "-c", HOLD_CLIENT, VIP, &dir, label], &[], label);
    let mut server = String::new();
    let open = wait_until(200, Duration::from_millis(25), || {
        let out = net.lab.output_of(label, "out");
        let Some(line) = out.lines().find(|l| l.starts_with("holding ")) else { return false };
        server = line["holding ".len()..].to_string();
        true
    });
    assert!(open, "held connection {label} did not open:\n{}", net.lab.output_of(label, "err"));
    Held { label: label.to_string(), child, server, pings: 0 }
}

/// One exchange on a held connection: the echo must come back.
fn ping(net: &Net, h: &mut Held) {
    h.pings += 1;
    net.lab.write(&format!("{}-ping-{}", h.label, h.pings), "");
    let want = format!("pong {} ok", h.pings);
    let answered = wait_until(250, Duration::from_millis(20), || {
        net.lab.output_of(&h.label, "out").lines().any(|l| l.starts_with(&format!("pong {} ", h.pings)))
    });
    let out = net.lab.output_of(&h.label, "out");
    assert!(
        answered && out.lines().any(|l| l == want),
        "ping {} on the connection to {} failed:\n{out}{}",
        h.pings,
        h.server,
        net.lab.output_of(&h.label, "err")
    );
}

/// Ends a held connection: it must end with the server's complete body.
fn release(net: &mut Net, h: &Held) {
    net.lab.write(&format!("{}-end", h.label), "");
    let ok = net.lab.wait_exit(h.child, 10);
    let out = net.lab.output_of(&h.label, "out");
    let err = net.lab.output_of(&h.label, "err");
    assert!(ok, "the connection to {} failed:\n{out}{err}", h.server);
    assert!(
        out.lines().any(|l| l == format!("intact {}", h.server)),
        "the connection to {} broke:\n{out}{err}",
        h.server
    );
}

/// The servers of a `health` listing: `ADDR:PORT` → (state, weight).
fn health_rows(listing: &str) -> BTreeMap<String, (String, u64)> {
    listing
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "->").then_some(())?;
            let (dest, state) = (w.next()?.to_string(), w.next()?.to_string());
            (w.next()? == "weight").then_some(())?;
            Some((dest, (state, w.next()?.parse().ok()?)))
        })
        .collect()
}

/// The director's `health …` lines on stderr so far.
fn health_log(net: &Net) -> Vec<String> {
    net.lab.output_of("switch", "err").lines().filter(|l| l.starts_with("health ")).map(str::to_string).collect()
}

/// Waits (50 ms polls, at most `limit` seconds) until `-Ln` shows the real
/// servers with `want`'s weights; returns the time it took.
fn wait_weights(net: &Net, want: &BTreeMap<String, u64>, limit: f64) -> f64 {
    let start = Instant::now();
    let mut last = String::new();
    let tries = (limit / 0.05).ceil() as u32 + 1;
    let reached = wait_until(tries, Duration::from_millis(50), || {
        last = net.ctl(&["-Ln"]);
        dests(&last) == *want && start.elapsed().as_secs_f64() <= limit
    });
    let took = start.elapsed().as_secs_f64();
    assert!(
        reached,
        "weights {want:?} not reached in {limit:.1} s ({took:.1} s):\n{last}\nhealth:\n{}\nswitch:\n{}",
        net.ctl(&["health"]),
        net.lab.output_of("switch", "err")
    );
    took
}

/// Waits (at most 3 s) for a health log line ending with `tail`; asserts
/// its `health YYYY-MM-DDTHH:MM:SS.mmmZ: ` prefix.
fn wait_log(net: &Net, tail: &str) -> String {
    let mut found = None;
    wait_until(60, Duration::from_millis(50), || {
        found = health_log(net).into_iter().find(|l| l.ends_with(tail));
        found.is_some()
    });
    let Some(line) = found else { panic!("no health line ending with {tail:?}:\n{}", health_log(net).join("\n")) };
    let stamp = line.strip_prefix("health ").and_then(|r| r.split_once(": ")).map_or("", |(s, _)| s);
    let shape: String = stamp.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect();
    assert_eq!(shape, "0000-00-00T00:00:00.000Z", "the time of {line:?}");
    line
}

/// Builds the network with the probe address and starts [`HEALTH_SERVER`]
/// on every server (before the director, so the first checks succeed) and
/// the director with `conf`. Returns the servers' child indices.
fn start(net: &mut Net, conf: &str) -> Vec<usize> {
    let d = net.director.clone();
    must(in_ns(&d, &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"]), "arp_ignore");
    must(in_ns(&d, &["ip", "addr", "add", &format!("{PROBE_IP}/24"), "dev", "br0"]), "probe address");
    let children = net.start_servers(HEALTH_SERVER, &[0, 1, 2], None, 8080, "0");
    net.start_director(conf, &["0=d0", "1=d1"]);
    children
}

/// Waits (at most 5 s) until `health` lists the three servers UP, each
/// checked at least once; returns the listing.
fn wait_all_up(net: &Net) -> String {
    let mut last = String::new();
    let up = wait_until(100, Duration::from_millis(50), || {
        last = net.ctl(&["health"]);
        let rows = health_rows(&last);
        rows.len() == 3 && rows.values().all(|(s, _)| s == "UP") && !last.contains("not checked yet")
    });
    assert!(up, "the servers are not all UP and checked:\n{last}\nswitch:\n{}", net.lab.output_of("switch", "err"));
    last
}

/// The shared body of the inhibit tests (module docs): `sched` over the
/// three servers with `weights`, checked by `check` (the `check` line's
/// kind and options before the timings); `why` holds the reasons the DOWN
/// and the UP log lines give.
fn inhibit_test(tag: &str, name: &'static str, sched: &str, weights: [u32; 3], check: &str, why: (&str, &str)) {
    if cannot_run(name, TOOLS) {
        return;
    }
    let mut net = Net::two_armed(tag, name, 3);
    let mut conf = nat_conf(&net, sched, &[(0, weights[0]), (1, weights[1]), (2, weights[2])]);
    conf += &format!(
        "check -t {VIP}:80 {check} connect_timeout {CONNECT_TIMEOUT} delay_loop {DELAY_LOOP} \
         retry {RETRY} delay_before_retry {DELAY_BEFORE_RETRY}\n"
    );
    let children = start(&mut net, &conf);
    let addr: Vec<String> = net.servers.iter().map(|s| format!("{}:8080", s.ip)).collect();
    let configured: BTreeMap<String, u64> = (0..3).map(|i| (addr[i].clone(), u64::from(weights[i]))).collect();
    let url = format!("http://{VIP}/");
    net.phase("director and servers up");

    // Phase 1: all UP at their configured weights.
    let listing = wait_all_up(&net);
    let rows = health_rows(&listing);
    for (i, a) in addr.iter().enumerate() {
        assert_eq!(rows[a], ("UP".to_string(), u64::from(weights[i])), "health:\n{listing}");
    }
    assert_eq!(dests(&net.ctl(&["-Ln"])), configured, "weights before the test");
    // Connections held open to s1 and s3 for the whole test (the scheduler
    // decides where each goes: open some until both are held, at most six,
    // within which rr and wrr 3:2:1 reach every server; the others end at
    // once, complete).
    let (mut held, mut opened) = (Vec::<Held>::new(), Vec::new());
    for k in 0..6 {
        let h = hold(&mut net, &format!("hold{k}"));
        opened.push(h.server.clone());
        if h.server != "s2" && !held.iter().any(|x| x.server == h.server) {
            held.push(h);
        } else {
            release(&mut net, &h);
        }
        if held.len() == 2 {
            break;
        }
    }
    assert_eq!(held.len(), 2, "six connections did not reach both s1 and s3: {opened:?}");
    for h in &mut held {
        ping(&net, h);
    }
    let names = fetch_all(&net, &url, 6);
    assert_eq!(tally(&names).len(), 3, "six connections before the failure reach all three servers: {names:?}");
    assert!(health_log(&net).is_empty(), "health changes before the failure:\n{}", health_log(&net).join("\n"));
    net.phase(&format!("phase 1: all UP; held connections went to {opened:?}, kept the ones to s1 and s3"));

    // Phase 2: s2's server process dies.
    let s2_conns = dest_column(&net.ctl(&["-Ln", "--stats"]), 1)[&addr[1]];
    let killed = Instant::now();
    net.lab.signal_and_wait(children[1], "KILL", 5);
    let mut inhibited = configured.clone();
    inhibited.insert(addr[1].clone(), 0);
    let limit = down_bound() + SLACK;
    wait_weights(&net, &inhibited, limit);
    let took = killed.elapsed().as_secs_f64();
    net.phase(&format!("phase 2: s2 at weight 0 {took:.2} s after the kill (bound {:.1} + {SLACK} s)", down_bound()));
    assert!(took >= down_floor(), "s2 went DOWN after {took:.2} s, before its retry ({} s)", down_floor());
    let down = format!(
        ": TCP {VIP}:80 -> {} DOWN after {} failed checks ({}); weight {} -> 0",
        addr[1],
        RETRY + 1,
        why.0,
        weights[1]
    );
    wait_log(&net, &down);
    let listing = net.ctl(&["health"]);
    let rows = health_rows(&listing);
    assert_eq!(rows[&addr[1]], ("DOWN".to_string(), 0), "health:\n{listing}");
    assert!(listing.contains(&format!("weight 0 (restores {})", weights[1])), "health:\n{listing}");
    assert!(listing.starts_with("Health checks: 1 check lines, 3 servers checked, 1 DOWN"), "health:\n{listing}");
    for i in [0, 2] {
        assert_eq!(rows[&addr[i]], ("UP".to_string(), u64::from(weights[i])), "health:\n{listing}");
    }
    for h in &mut held {
        ping(&net, h);
    }
    let names = fetch_all(&net, &url, 30);
    let got = tally(&names);
    assert!(!got.contains_key("s2") && got.len() == 2, "30 connections while s2 is DOWN: {got:?}");
    let (conns, stats) = net.conns();
    assert_eq!(conns[&addr[1]], s2_conns, "the director sent s2 new connections while DOWN:\n{stats}");
    net.phase(&format!("phase 2: 30 connections while s2 is DOWN: {got:?}"));

    // Phase 3: s2's server is back.
    let restarted = Instant::now();
    net.start_servers(HEALTH_SERVER, &[1], None, 8080, "0");
    let limit = up_bound() + SLACK;
    wait_weights(&net, &configured, limit);
    let took = restarted.elapsed().as_secs_f64();
    net.phase(&format!("phase 3: s2 back at weight {} {took:.2} s after the restart", weights[1]));
    let up = format!(": TCP {VIP}:80 -> {} UP ({}); weight 0 -> {}", addr[1], why.1, weights[1]);
    wait_log(&net, &up);
    let listing = wait_all_up(&net);
    assert!(listing.starts_with("Health checks: 1 check lines, 3 servers checked, 0 DOWN"), "health:\n{listing}");
    let names = fetch_all(&net, &url, 12);
    assert!(names.iter().any(|n| n == "s2"), "12 connections after s2 came back: {names:?}");
    for h in &mut held {
        ping(&net, h);
    }
    for h in &held {
        release(&mut net, h);
    }
    // s2 went DOWN and UP once; s1 and s3 never changed.
    let log = health_log(&net);
    assert_eq!(log.len(), 2, "health log:\n{}", log.join("\n"));
    assert!(log[0].ends_with(&down) && log[1].ends_with(&up), "health log:\n{}", log.join("\n"));
    net.phase("passed");
}

/// rr over s1, s2, s3 (weights 1, 5, 1: rr only tells 0 from not 0, the
/// 5 shows which weight comes back) with a `tcp` check.
#[test]
fn tcp_check_inhibits_and_restores() {
    #[rustfmt::skip]
    inhibit_test("ht", "live_health::tcp_check_inhibits_and_restores", "rr", [1, 5, 1], "tcp",
                 ("connect: Connection refused", "connected"));
}

/// wrr 3:2:1 with an `http` check (`GET /`, status 200).
#[test]
fn http_check_inhibits_and_restores() {
    #[rustfmt::skip]
    inhibit_test("hh", "live_health::http_check_inhibits_and_restores", "wrr", [3, 2, 1], "http path / status 200",
                 ("HTTP connect: Connection refused", "HTTP 200"));
}

/// A `misc ... dynamic` check reading each server's weight from a file
/// `w-RIP` (exit weight + 2, keepalived's `misc_dynamic`): the weights in
/// `-Ln` follow the files, new connections follow the weights, `-1` (exit
/// 1: the load cannot be measured) takes the server DOWN and a new value
/// brings it back at that weight.
#[test]
fn misc_dynamic_weights_follow_load() {
    let name = "live_health::misc_dynamic_weights_follow_load";
    if cannot_run(name, TOOLS) {
        return;
    }
    let mut net = Net::two_armed("hm", name, 3);
    let dir = net.lab.dir.display().to_string();
    // Each file replaced whole (rename), so no check reads a half-written one.
    let set = |net: &Net, values: [i32; 3]| {
        for (s, v) in net.servers.iter().zip(values) {
            let new = net.lab.write(&format!("w-{}.new", s.ip), &format!("{v}\n"));
            if let Err(e) = std::fs::rename(&new, net.lab.path(&format!("w-{}", s.ip))) {
                panic!("cannot replace the weight file of {}: {e}", s.name);
            }
        }
    };
    set(&net, [3, 2, 1]);
    let mut conf = nat_conf(&net, "wrr", &[(0, 1), (1, 1), (2, 1)]);
    conf += &format!("check -t {VIP}:80 misc \"exit $(( $(cat {dir}/w-%RIP) + 2 ))\" dynamic delay_loop 0.5\n");
    start(&mut net, &conf);
    let addr: Vec<String> = net.servers.iter().map(|s| format!("{}:8080", s.ip)).collect();
    let weights = |w: [u64; 3]| -> BTreeMap<String, u64> { (0..3).map(|i| (addr[i].clone(), w[i])).collect() };
    net.phase("director and servers up");

    // The first checks replace the configured weights 1, 1, 1.
    wait_weights(&net, &weights([3, 2, 1]), 3.0);
    wait_log(&net, &format!(": TCP {VIP}:80 -> {} new weight (misc exit 5: weight 3); weight 1 -> 3", addr[0]));
    net.phase("weights 3, 2, 1 from the files");

    // s2's load drops, s3 is saturated: new connections follow.
    set(&net, [1, 4, 0]);
    wait_weights(&net, &weights([1, 4, 0]), 3.0);
    wait_log(&net, &format!(": TCP {VIP}:80 -> {} new weight (misc exit 6: weight 4); weight 2 -> 4", addr[1]));
    wait_log(&net, &format!(": TCP {VIP}:80 -> {} new weight (misc exit 2: weight 0); weight 1 -> 0", addr[2]));
    let names = fetch_all(&net, &format!("http://{VIP}/"), 10);
    let got = tally(&names);
    let count = |n: &str| got.get(n).copied().unwrap_or(0);
    assert!(count("s3") == 0 && count("s2") > count("s1"), "10 connections at weights 1, 4, 0: {names:?}");
    net.phase(&format!("weights 1, 4, 0: {got:?}"));

    // s1 cannot be measured: DOWN (weight 0); then measured again.
    set(&net, [-1, 4, 0]);
    wait_weights(&net, &weights([0, 4, 0]), 3.0);
    wait_log(&net, &format!(": TCP {VIP}:80 -> {} DOWN after 1 failed checks (misc exit 1); weight 1 -> 0", addr[0]));
    let rows = health_rows(&net.ctl(&["health"]));
    assert_eq!(rows[&addr[0]].0, "DOWN");
    set(&net, [6, 4, 0]);
    wait_weights(&net, &weights([6, 4, 0]), 3.0);
    wait_log(&net, &format!(": TCP {VIP}:80 -> {} UP (misc exit 8: weight 6); weight 0 -> 6", addr[0]));
    let names = fetch_all(&net, &format!("http://{VIP}/"), 10);
    assert!(names.iter().any(|n| n == "s1") && !names.iter().any(|n| n == "s3"), "at weights 6, 4, 0: {names:?}");
    net.phase("passed");
}
