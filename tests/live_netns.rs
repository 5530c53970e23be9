//! Live mode end to end, in network namespaces this test creates and
//! deletes itself:
//!
//! ```text
//!  client ns (…-c)           director ns (…-d)             server ns (…-s)
//!  c0 10.77.1.2/24 ── veth ── d0 [port 0]  p4lite  [port 1] d1 ── veth ── s0 10.77.2.2/24
//!  10.77.2/24 via 10.77.1.1    no addresses, no IPv6     10.77.1/24 via 10.77.2.1
//!  (static neighbour: d0's MAC)                            (static neighbour: d1's MAC)
//! ```
//! The director runs `p4lite run programs/ipv4_router.p4lite --iface 0=d0
//! --iface 1=d1 --entries … --ctl …`. The client pings the server and fetches
//! a page from a Python HTTP server in the server namespace; then the
//! test deletes the route with `p4lite ctl`, checks that traffic stops,
//! re-adds it, checks that it resumes, and stops the switch with SIGTERM.
//!
//! Needs root, `ip netns`, `ethtool`, `ping`, `curl`, `python3`, `ss` and
//! `timeout`. Without them it prints a notice and passes, except in CI
//! (`CI=true`), where it fails. Every command is bounded (`timeout`, ping
//! counts, curl `--max-time`); every loop has a fixed number of rounds. A
//! guard kills the children and deletes the namespaces, also on panic.
//! Nothing is sent outside the namespaces: the addresses exist only there,
//! and the namespaces have no route out.
//!
//! The benchmark (`cargo test --release --test live_netns -- --ignored
//! --nocapture`) measures packets per second through p4lite and through the
//! kernel's own forwarding in the same namespaces (BENCHMARKS.md).

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Output;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::netns::{self, cpu_seconds, ctl, delete_stale_namespaces, in_ns, must, run, text};

const ROUTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/programs/ipv4_router.p4lite");

const C_MAC: &str = "02:00:0a:4d:01:02";
const D0_MAC: &str = "02:00:0a:4d:01:01";
const D1_MAC: &str = "02:00:0a:4d:02:01";
const S_MAC: &str = "02:00:0a:4d:02:02";
const C_IP: &str = "10.77.1.2";
const S_IP: &str = "10.77.2.2";

/// The route the test deletes and re-adds (handle 0: the first entry).
const ROUTE_TO_SERVER: &str = "table_add ipv4_lpm set_nhop 10.77.2.0/24 => 10.77.2.2 1";

/// The tools this test calls besides `ip`, `ethtool` and `timeout`.
const TOOLS: &[&str] = &["ping", "curl", "python3", "ss"];

/// Why the test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    netns::missing_prerequisite(TOOLS)
}

/// Skips (printing why) or, in CI, fails.
fn skip(why: &str) {
    netns::skip("live_netns", why)
}

/// The three namespaces of the module docs in a [`netns::Lab`], which
/// kills the processes and deletes the namespaces and the scratch
/// directory when dropped (also while unwinding from a panic).
struct Lab {
    client: String,
    director: String,
    server: String,
    lab: netns::Lab,
}

impl std::ops::Deref for Lab {
    type Target = netns::Lab;
    fn deref(&self) -> &netns::Lab {
        &self.lab
    }
}

impl std::ops::DerefMut for Lab {
    fn deref_mut(&mut self) -> &mut netns::Lab {
        &mut self.lab
    }
}

impl Lab {
    /// Creates the namespaces and links (see the module docs); `tag` keeps
    /// concurrent tests of this binary apart.
    fn new(tag: &str) -> Lab {
        let mut lab = netns::Lab::new(tag);
        let (c, d, s) = (lab.add_ns("c"), lab.add_ns("d"), lab.add_ns("s"));
        // The veths are created inside the namespaces: the root namespace
        // never sees them; offloads off (the switch forwards what it reads).
        lab.veth((&c, "c0", C_MAC), (&d, "d0", D0_MAC));
        lab.veth((&s, "s0", S_MAC), (&d, "d1", D1_MAC));
        #[rustfmt::skip]
        let hosts = [(&c, "c0", "10.77.1.2/24", "10.77.1.1", D0_MAC, "10.77.2.0/24"),
                     (&s, "s0", "10.77.2.2/24", "10.77.2.1", D1_MAC, "10.77.1.0/24")];
        for (ns, dev, addr, gw, gw_mac, other) in hosts {
            must(in_ns(ns, &["ip", "addr", "add", addr, "dev", dev]), "address");
            // The director answers no ARP (it runs only the IPv4 router):
            // the gateway's MAC is configured statically.
            must(in_ns(ns, &["ip", "neigh", "replace", gw, "lladdr", gw_mac, "dev", dev, "nud", "permanent"]), "neigh");
            // Only the other host's subnet is routed, and no default route:
            // anything else (a DNS lookup, say) fails inside the namespace.
            must(in_ns(ns, &["ip", "route", "add", other, "via", gw, "dev", dev]), "route");
        }
        Lab { client: c, director: d, server: s, lab }
    }

    /// Writes the router's entries file and returns its path.
    fn entries(&self) -> PathBuf {
        let text = format!(
            "{ROUTE_TO_SERVER}\n\
             table_add ipv4_lpm set_nhop 10.77.1.0/24 => {C_IP} 0\n\
             table_add forward set_dmac {S_IP} => {S_MAC}\n\
             table_add forward set_dmac {C_IP} => {C_MAC}\n\
             table_add send_frame rewrite_mac 0 => {D0_MAC}\n\
             table_add send_frame rewrite_mac 1 => {D1_MAC}\n"
        );
        self.write("entries.txt", &text)
    }

    /// Starts the switch in the director namespace and waits (bounded) for
    /// its control socket.
    fn start_switch(&mut self, env: &[(&str, &str)]) -> (usize, PathBuf) {
        let e = self.entries().display().to_string();
        #[rustfmt::skip]
        let args = [ROUTER, "--iface", "0=d0", "--iface", "1=d1", "--entries", e.as_str()];
        let director = self.director.clone();
        self.lab.start_switch(&director, &args, env, "switch")
    }

    /// Waits (bounded) for child `ix` to exit after SIGTERM; returns whether it exited 0.
    fn terminate(&mut self, ix: usize) -> bool {
        self.signal_and_wait(ix, "TERM", 10)
    }
}

/// Pings the server from the client: `count` echoes 0.2 s apart, each
/// waited for at most 1 s. True when any reply came back.
fn ping(lab: &Lab, count: u32) -> bool {
    let n = count.to_string();
    in_ns(&lab.client, &["ping", "-n", "-q", "-c", &n, "-i", "0.2", "-W", "1", S_IP]).status.success()
}

/// Fetches the test page from the server's HTTP server through the switch.
fn fetch(lab: &Lab) -> Output {
    let url = format!("http://{S_IP}:8080/hello.txt");
    in_ns(&lab.client, &["curl", "-sS", "--noproxy", "*", "--max-time", "5", &url])
}

#[test]
fn router_on_veths_with_live_control() {
    let started = Instant::now();
    if let Some(why) = missing_prerequisite() {
        return skip(&why);
    }
    delete_stale_namespaces();
    let phase = |what: &str| eprintln!("live_netns: {:5.1} s {what}", started.elapsed().as_secs_f64());
    let mut lab = Lab::new("t");
    phase("namespaces ready");
    let (sw, sock) = lab.start_switch(&[]);
    phase("switch listening");

    // Ping through the switch.
    assert!(ping(&lab, 3), "no ping reply through the switch:\n{}", lab.output_of("switch", "err"));

    phase("ping through the switch");
    // HTTP through the switch, from a server bound to the server's address only.
    let www = lab.dir.join("www");
    must(run(&["mkdir", "-p", &www.display().to_string()]), "mkdir www");
    let page = format!("hello from p4lite test {}\n", std::process::id());
    fs::write(www.join("hello.txt"), &page).unwrap_or_else(|e| panic!("cannot write the page: {e}"));
    let server = lab.server.clone();
    let w = www.display().to_string();
    lab.spawn(&server, &["python3", "-c", HTTP_SERVER, S_IP, &w], &[], "http");
    let listening = (0..100).any(|_| {
        let o = in_ns(&lab.server, &["ss", "-Hltn", "sport = :8080"]);
        !o.stdout.is_empty() || {
            sleep(Duration::from_millis(100));
            false
        }
    });
    assert!(listening, "the HTTP server did not start:\n{}", lab.output_of("http", "err"));
    let got = fetch(&lab);
    assert!(got.status.success(), "HTTP through the switch failed:\n{}", text(&got));
    assert_eq!(String::from_utf8_lossy(&got.stdout), page);

    phase("HTTP through the switch");
    // Control channel: a refused command changes nothing.
    let (code, before, _) = ctl(&sock, &["table_dump", "ipv4_lpm"]);
    assert_eq!(code, 0);
    assert!(before.contains("Dumping entry 0x0") && before.contains("Dumping entry 0x1"), "{before}");
    let (code, _, err) = ctl(&sock, &["table_add", "ipv4_lpm", "bogus", "10.77.3.0/24", "=>", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bogus"), "{err}");
    let (_, after, _) = ctl(&sock, &["table_dump", "ipv4_lpm"]);
    assert_eq!(after, before);
    let (code, _, err) = ctl(&sock, &["counter_read", "per_port", "0"]);
    assert_eq!((code, err.trim()), (1, "the program has no counters"));

    phase("control commands");
    // Delete the route: traffic stops.
    let (code, _, err) = ctl(&sock, &["table_delete", "ipv4_lpm", "0"]);
    assert_eq!(code, 0, "{err}");
    assert!(!ping(&lab, 2), "ping still answered without a route");
    let (_, report, _) = ctl(&sock, &["report"]);
    assert!(report.contains("mark_to_drop"), "{report}");

    phase("route deleted, traffic stopped");
    // Re-add it: traffic resumes.
    let words: Vec<&str> = ROUTE_TO_SERVER.split_whitespace().collect();
    let (code, out, err) = ctl(&sock, &words);
    let added = "Adding entry to lpm match table RouterIngress.ipv4_lpm\nEntry has been added with handle 0";
    assert_eq!((code, out.trim()), (0, added), "{err}");
    assert!(ping(&lab, 3), "no ping reply after re-adding the route");
    let got = fetch(&lab);
    assert!(got.status.success(), "HTTP after re-adding the route failed:\n{}", text(&got));

    phase("route re-added, traffic resumed");
    // SIGTERM: exit 0 with the report.
    assert!(lab.terminate(sw), "the switch did not exit 0:\n{}", lab.output_of("switch", "err"));
    let out = lab.output_of("switch", "out");
    assert!(out.contains("Live: stopped by SIGTERM"), "{out}");
    assert!(out.contains("Packets: ") && out.contains("RouterIngress.ipv4_lpm"), "{out}");
    assert!(!sock.exists(), "the control socket was not removed");
    eprintln!("{out}");
    // Had the switch read its own transmissions back, every forwarded frame
    // would come in again on its egress port and loop until its TTL ran out
    // (63 more times): the test's few dozen packets would be thousands.
    let received: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Packets: ")?.split_whitespace().next()?.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(received < 400, "{received} packets received: frames are read back?\n{out}");
    // Offloads are off on both hosts: no offload notice.
    let err = lab.output_of("switch", "err");
    assert!(!err.contains("offloaded frames"), "{err}");
    phase("switch stopped by SIGTERM, report printed");
    drop(lab);
    phase("namespaces deleted; passed");
}

/// A client whose veth leaves checksums and segmentation to offloads (the
/// veth default) sends frames the switch cannot forward intact: p4lite
/// says so once on stderr, naming the port and the `ethtool` fix, instead
/// of forwarding broken frames silently.
#[test]
fn offloaded_frames_bring_a_notice() {
    if let Some(why) = missing_prerequisite() {
        return skip(&why);
    }
    delete_stale_namespaces();
    let mut lab = Lab::new("o");
    let client = lab.client.clone();
    must(in_ns(&client, &["ethtool", "-K", "c0", "tx", "on", "tso", "on", "gso", "on"]), "ethtool on");
    let (sw, _sock) = lab.start_switch(&[]);
    // Two connection attempts (TCP SYNs with checksums left to the NIC);
    // nothing listens, and the server drops them for their checksums.
    for _ in 0..2 {
        let _ = in_ns(&client, &["curl", "-sS", "--noproxy", "*", "--max-time", "1", &format!("http://{S_IP}:8080/")]);
        if lab.output_of("switch", "err").contains("offloaded frames") {
            break;
        }
    }
    let told = netns::wait_until(20, Duration::from_millis(100), || {
        lab.output_of("switch", "err").contains("receiving offloaded frames")
    });
    let err = lab.output_of("switch", "err");
    assert!(told, "no offload notice:\n{err}");
    assert!(err.contains("p4lite: port 0 (`d0`): receiving offloaded frames"), "{err}");
    assert!(err.contains("`ethtool -K d0 gro off lro off rx-gro-hw off`"), "{err}");
    assert_eq!(err.matches("offloaded frames").count(), 1, "told once:\n{err}");
    assert!(lab.terminate(sw), "the switch did not exit 0:\n{err}");
}

/// A static file server on `ARGV[1]:8080` serving directory `ARGV[2]`.
/// Not `python3 -m http.server`: its `HTTPServer` looks up its own name
/// (`socket.getfqdn`), a DNS query that must not leave the namespace and
/// that delays the start until the resolver times out.
const HTTP_SERVER: &str = r#"
import functools, http.server, socketserver, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer((sys.argv[1], 8080), handler).serve_forever()
"#;

/// Sends UDP frames from the client's c0 for `secs` seconds to 10.77.2.99
/// (routed to the server's link, where the server's kernel, not a router,
/// drops them silently) as fast as one Python thread can; prints the count.
const SENDER: &str = r#"
import socket, struct, sys, time
iface, dmac, smac, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 46, 0, 0, 64, 17, 0, socket.inet_aton('10.77.1.2'), socket.inet_aton('10.77.2.99'))
hdr = hdr[:10] + struct.pack('!H', csum(hdr)) + hdr[12:]
frame = bytes.fromhex(dmac.replace(':', '')) + bytes.fromhex(smac.replace(':', '')) + b'\x08\x00' + hdr + struct.pack('!HHHH', 9, 9, 26, 0) + bytes(18)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
n, end = 0, time.monotonic() + secs
while time.monotonic() < end:
    for _ in range(256):
        try: s.send(frame)
        except OSError: pass
    n += 256
print(n)
"#;

/// Frames received on the server's s0 so far.
fn server_rx(lab: &Lab) -> u64 {
    let o = in_ns(&lab.server, &["cat", "/sys/class/net/s0/statistics/rx_packets"]);
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0)
}

/// Sends for `secs` and returns (frames sent, frames that reached s0).
fn blast(lab: &Lab, secs: u32) -> (u64, u64) {
    let before = server_rx(lab);
    let o = in_ns(&lab.client, &["python3", "-c", SENDER, "c0", D0_MAC, C_MAC, &secs.to_string()]);
    let sent = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0);
    sleep(Duration::from_millis(500)); // let the queues drain
    (sent, server_rx(lab) - before)
}

#[test]
#[ignore = "benchmark: cargo test --release --test live_netns -- --ignored --nocapture"]
fn bench_live_veth() {
    if let Some(why) = missing_prerequisite() {
        return skip(&why);
    }
    delete_stale_namespaces();
    let secs = 5;
    let f = f64::from(secs);
    let mut lab = Lab::new("b");
    println!("{secs} s of 60-byte UDP frames from one Python AF_PACKET sender in the client namespace");

    // The sender alone: the director's kernel drops every frame (no addresses).
    let (sent, _) = blast(&lab, secs);
    println!("sender alone (nothing forwards): sent {:.0}/s", sent as f64 / f);

    for io in ["direct", "pnet"] {
        let (sw, _sock) = lab.start_switch(&[("P4LITE_LIVE_IO", io)]);
        assert!(ping(&lab, 2), "no ping reply through the switch");
        let (sent, got) = blast(&lab, secs);
        assert!(lab.terminate(sw));
        let report = lab.output_of("switch", "out");
        let cpu = cpu_seconds(&report);
        println!(
            "p4lite JIT, {io} I/O: sent {:.0}/s, delivered {:.0}/s ({:.1}%), {:.2} µs CPU per forwarded frame",
            sent as f64 / f,
            got as f64 / f,
            100.0 * got as f64 / sent.max(1) as f64,
            cpu * 1e6 / got.max(1) as f64
        );
        println!("{}", report.lines().take(4).collect::<Vec<_>>().join("\n"));
    }

    // The kernel's forwarding between the same namespaces.
    let d = lab.director.clone();
    must(in_ns(&d, &["ip", "addr", "add", "10.77.1.1/24", "dev", "d0"]), "addr d0");
    must(in_ns(&d, &["ip", "addr", "add", "10.77.2.1/24", "dev", "d1"]), "addr d1");
    must(
        in_ns(&d, &["ip", "neigh", "replace", "10.77.2.99", "lladdr", S_MAC, "dev", "d1", "nud", "permanent"]),
        "neigh",
    );
    must(in_ns(&d, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]), "ip_forward");
    let (sent, got) = blast(&lab, secs);
    println!(
        "kernel forwarding: sent {:.0}/s, delivered {:.0}/s ({:.1}%)",
        sent as f64 / f,
        got as f64 / f,
        100.0 * got as f64 / sent.max(1) as f64
    );
}
