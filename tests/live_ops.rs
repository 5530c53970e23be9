//! The live switch as an operator meets it, in network namespaces each
//! test creates and deletes itself: interfaces deleted and re-created
//! under the running switch, receive offloads found on at start, an
//! egress MTU too small, an interface down at start, stopping it with SIGINT.
//!
//! ```text
//!  client ns (…-c)           director ns (…-d)             server ns (…-s)
//!  c0 10.78.1.2/24 ── veth ── d0 [port 0]  p4lite  [port 1] d1 ── veth ── s0 10.78.2.2/24
//!  10.78.2/24 via 10.78.1.1    no addresses, no IPv6     10.78.1/24 via 10.78.2.1
//!  (static neighbour: d0's MAC)                            (static neighbour: d1's MAC)
//! ```
//! The director runs `p4lite run programs/ipv4_router.p4lite --iface 0=d0
//! --iface 1=d1 --entries … --ctl …`.
//!
//! Needs root, `ip netns`, `ethtool`, `ping` and `timeout`. Without them
//! each test prints a notice and passes, except in CI (`CI=true`), where it
//! fails. Every command is bounded (`timeout`, ping counts), every loop has
//! a fixed number of rounds, and a guard kills the children and deletes the
//! namespaces, also on panic. The addresses exist only inside the
//! namespaces, which have no route out.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::lb_net::cannot_run;
use common::netns::{self, ctl, in_ns, must, offloads_off, wait_until};

const ROUTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/programs/ipv4_router.p4lite");

const C_MAC: &str = "02:00:0a:4e:01:02";
const D0_MAC: &str = "02:00:0a:4e:01:01";
const D1_MAC: &str = "02:00:0a:4e:02:01";
const S_MAC: &str = "02:00:0a:4e:02:02";
const C_IP: &str = "10.78.1.2";
const S_IP: &str = "10.78.2.2";

/// The three namespaces of the module docs.
struct Net {
    client: String,
    director: String,
    server: String,
    lab: netns::Lab,
}

impl Net {
    /// The namespaces for test `name` (`tag` as in [`Net::new`]), or none,
    /// after a notice, when live tests cannot run here (`cannot_run`).
    fn for_test(name: &str, tag: &str) -> Option<Net> {
        (!cannot_run(name, &["ping"])).then(|| Net::new(tag))
    }

    /// Creates the namespaces and both links; `tag` keeps concurrent tests apart.
    fn new(tag: &str) -> Net {
        let mut lab = netns::Lab::new(tag);
        let (client, director, server) = (lab.add_ns("c"), lab.add_ns("d"), lab.add_ns("s"));
        lab.veth((&client, "c0", C_MAC), (&director, "d0", D0_MAC));
        host(&client, "c0", "10.78.1.2/24", "10.78.1.1", D0_MAC, "10.78.2.0/24");
        lab.veth((&server, "s0", S_MAC), (&director, "d1", D1_MAC));
        host(&server, "s0", "10.78.2.2/24", "10.78.2.1", D1_MAC, "10.78.1.0/24");
        Net { client, director, server, lab }
    }

    /// Starts the router on `d0` and `d1` with the routes between the two
    /// hosts; returns (child index, control socket).
    fn start_switch(&mut self, label: &str) -> (usize, PathBuf) {
        let entries = format!(
            "table_add ipv4_lpm set_nhop 10.78.2.0/24 => {S_IP} 1\n\
             table_add ipv4_lpm set_nhop 10.78.1.0/24 => {C_IP} 0\n\
             table_add forward set_dmac {S_IP} => {S_MAC}\n\
             table_add forward set_dmac {C_IP} => {C_MAC}\n\
             table_add send_frame rewrite_mac 0 => {D0_MAC}\n\
             table_add send_frame rewrite_mac 1 => {D1_MAC}\n"
        );
        let e = self.lab.write("entries.txt", &entries).display().to_string();
        let args = [ROUTER, "--iface", "0=d0", "--iface", "1=d1", "--entries", e.as_str()];
        let director = self.director.clone();
        self.lab.start_switch(&director, &args, &[], label)
    }

    /// Pings the server from the client: `count` echoes 0.2 s apart, each
    /// waited for at most 1 s. True when any reply came back.
    fn ping(&self, count: u32) -> bool {
        let n = count.to_string();
        in_ns(&self.client, &["ping", "-n", "-q", "-c", &n, "-i", "0.2", "-W", "1", S_IP]).status.success()
    }

    /// Whether `text` appears on the stderr of `label` within 5 s.
    fn says(&self, label: &str, text: &str) -> bool {
        wait_until(50, Duration::from_millis(100), || self.lab.output_of(label, "err").contains(text))
    }
}

/// Gives `dev` in `ns` address `addr`, a permanent neighbour entry for the
/// gateway (the switch answers no ARP) and a route to the other side.
fn host(ns: &str, dev: &str, addr: &str, gw: &str, gw_mac: &str, other: &str) {
    must(in_ns(ns, &["ip", "addr", "add", addr, "dev", dev]), "address");
    must(in_ns(ns, &["ip", "neigh", "replace", gw, "lladdr", gw_mac, "dev", dev, "nud", "permanent"]), "neigh");
    must(in_ns(ns, &["ip", "route", "add", other, "via", gw, "dev", dev]), "route");
}

/// An interface deleted under the running switch (a veth pair torn down,
/// as when a container stops) is told once on stderr; the switch keeps
/// running and its control channel answering; when a veth of the same name
/// is created again (a new interface index), the port re-attaches within
/// seconds, its offloads are checked again, and traffic flows. The report
/// counts the re-attachment.
#[test]
fn a_re_created_interface_is_re_attached() {
    let Some(mut net) = Net::for_test("a_re_created_interface_is_re_attached", "r") else { return };
    let (sw, sock) = net.start_switch("switch");
    assert!(net.ping(3), "no ping reply through the switch:\n{}", net.lab.output_of("switch", "err"));

    // Tear the server's link down: deleting d1 deletes its peer s0 too.
    must(in_ns(&net.director, &["ip", "link", "del", "d1"]), "delete d1");
    assert!(net.says("switch", "port 1 (`d1`): interface deleted"), "{}", net.lab.output_of("switch", "err"));
    assert!(!net.ping(2), "a reply without the server's link");
    // Port 0 still runs: the pings arrive, and the control channel answers.
    let (code, report, _) = ctl(&sock, &["report"]);
    assert_eq!(code, 0);
    assert!(report.starts_with("Packets: "), "{report}");
    // Checks every second find it still deleted: told once.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(net.lab.output_of("switch", "err").matches("interface deleted").count(), 1);

    // Re-create it, with receive offload on (under another name, renamed
    // once set up, so the switch sees the interface only as it ends up).
    let d = net.director.clone();
    #[rustfmt::skip]
    must(netns::run(&["ip", "-n", &net.server, "link", "add", "s0", "address", S_MAC, "type", "veth",
                      "peer", "name", "d1new", "address", D1_MAC, "netns", &d]), "veth again");
    offloads_off(&net.server, "s0");
    offloads_off(&d, "d1new");
    must(in_ns(&d, &["ethtool", "-K", "d1new", "gro", "on"]), "gro on");
    must(in_ns(&d, &["ip", "link", "set", "d1new", "name", "d1"]), "rename");
    for (ns, dev) in [(&net.server, "s0"), (&d, "d1")] {
        must(in_ns(ns, &["ip", "link", "set", dev, "up"]), "up");
    }
    host(&net.server, "s0", "10.78.2.2/24", "10.78.2.1", D1_MAC, "10.78.1.0/24");
    assert!(net.says("switch", "port 1 (`d1`): interface re-created"), "{}", net.lab.output_of("switch", "err"));
    let err = net.lab.output_of("switch", "err");
    assert!(err.contains("port 1 (`d1`): receive offload on (gro)"), "{err}");
    assert!(err.contains("`ethtool -K d1 gro off`"), "{err}");
    must(in_ns(&d, &["ethtool", "-K", "d1", "gro", "off"]), "gro off");
    assert!(net.ping(3), "no ping reply after the re-creation:\n{}", net.lab.output_of("switch", "err"));
    assert!(net.says("switch", "port 1 (`d1`): receiving again"));

    assert!(net.lab.signal_and_wait(sw, "TERM", 10), "exit status:\n{}", net.lab.output_of("switch", "err"));
    let out = net.lab.output_of("switch", "out");
    assert!(out.contains("  port 1 (`d1`): interface re-created, re-attached once\n"), "{out}");
    assert!(!out.contains("not back at the end"), "{out}");
    assert_eq!(net.lab.output_of("switch", "err").matches("interface deleted").count(), 1);
}

/// Receive offload (GRO) on one of the switch's interfaces is told when
/// the switch starts, once, naming the port and the exact `ethtool`
/// command; after that command, a new start says nothing.
#[test]
fn receive_offload_on_at_start_is_told_with_the_fix() {
    let Some(mut net) = Net::for_test("receive_offload_on_at_start_is_told_with_the_fix", "g") else { return };
    let d = net.director.clone();
    must(in_ns(&d, &["ethtool", "-K", "d0", "gro", "on"]), "gro on");
    let (sw, _) = net.start_switch("on");
    let want = "p4lite: port 0 (`d0`): receive offload on (gro): ";
    assert!(net.says("on", want), "no offload warning:\n{}", net.lab.output_of("on", "err"));
    let err = net.lab.output_of("on", "err");
    let line = err.lines().find(|l| l.starts_with(want)).unwrap_or_default();
    assert!(line.ends_with("Turn it off: `ethtool -K d0 gro off`"), "{line}");
    assert_eq!(err.matches("receive offload on").count(), 1, "only d0, once:\n{err}");
    assert!(net.lab.signal_and_wait(sw, "INT", 10), "SIGINT: exit 0");
    assert!(net.lab.output_of("on", "out").contains("Live: stopped by SIGINT"));

    // The command the warning gives, run as given.
    let fix: Vec<&str> = line.rsplit('`').nth(1).unwrap_or_default().split_whitespace().collect();
    must(in_ns(&d, &fix), "the suggested command");
    let (sw, _) = net.start_switch("off");
    assert!(net.ping(2), "no ping reply through the switch");
    // An egress MTU too small for a frame: told on the first refused frame, once.
    must(in_ns(&d, &["ip", "link", "set", "d1", "mtu", "1000"]), "mtu");
    let big = in_ns(&net.client, &["ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", "-s", "1200", S_IP]);
    assert!(!big.status.success(), "a 1228-byte packet passed a 1000-byte MTU");
    let told = "p4lite: port 1 (`d1`): cannot send (a frame longer than the MTU): Message too long";
    assert!(net.says("off", told), "{}", net.lab.output_of("off", "err"));
    assert!(net.lab.signal_and_wait(sw, "TERM", 10));
    let err = net.lab.output_of("off", "err");
    assert!(!err.contains("offload"), "{err}");
    assert_eq!(err.matches("cannot send").count(), 1, "{err}");
    assert!(net.lab.output_of("off", "out").contains("port 1 (`d1`): first transmit error: Message too long"));
}

/// An interface that is down when the switch starts is no reason to
/// refuse it: the switch starts, says so once (as for a link going down
/// later), forwards nothing through it while it is down, and forwards once
/// it is up (`receiving again`); the report counts the down. An interface
/// that does not exist is still refused (exit 2), naming it.
#[test]
fn an_interface_down_at_start_is_told_and_used_once_up() {
    let Some(mut net) = Net::for_test("an_interface_down_at_start_is_told_and_used_once_up", "a") else { return };
    let d = net.director.clone();
    let missing = in_ns(&d, &[netns::BIN, "run", ROUTER, "--iface", "0=d0", "--iface", "1=nosuch0"]);
    assert_eq!(missing.status.code(), Some(2), "{}", netns::text(&missing));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("p4lite: interface `nosuch0` does not exist (interfaces here: "), "{err}");

    must(in_ns(&d, &["ip", "link", "set", "d1", "down"]), "d1 down");
    let (sw, _) = net.start_switch("down");
    let told = "p4lite: port 1 (`d1`): link down at start (interface `d1` is down); still running";
    assert!(net.says("down", told), "{}", net.lab.output_of("down", "err"));
    assert!(!net.ping(2), "a reply while d1 is down");
    must(in_ns(&d, &["ip", "link", "set", "d1", "up"]), "d1 up");
    assert!(wait_until(5, Duration::from_millis(200), || net.ping(2)), "no reply once d1 is up");
    assert!(net.says("down", "p4lite: port 1 (`d1`): receiving again"), "{}", net.lab.output_of("down", "err"));
    assert!(net.lab.signal_and_wait(sw, "TERM", 10), "exit status:\n{}", net.lab.output_of("down", "err"));
    let err = net.lab.output_of("down", "err");
    assert_eq!(err.matches("link down").count(), 1, "told once:\n{err}");
    let out = net.lab.output_of("down", "out");
    assert!(out.contains("  port 1 (`d1`): link went down once (down at start)\n"), "{out}");
    assert!(!out.contains("port 0 (`d0`): link"), "{out}");
}

/// The first number before `what` on the line of `text` that starts with
/// `start` (`Packets: 6 received, 4 sent` → `sent`: 4).
fn number_before(text: &str, start: &str, what: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.trim_start().starts_with(start))?;
    let at = line.find(what)?;
    line[..at].split_whitespace().last()?.parse().ok()
}

/// The report's "sent" counts only the frames the OS accepted: two echo
/// exchanges pass, then two echo requests longer than port 1's MTU are
/// refused; those two are port 1's transmit errors and not in "sent", so
/// received = sent + transmit errors + dropped, and port 1's row shows
/// only the two frames that left.
#[test]
fn sent_counts_only_frames_the_os_accepted() {
    let Some(mut net) = Net::for_test("sent_counts_only_frames_the_os_accepted", "t") else { return };
    let d = net.director.clone();
    let (sw, _) = net.start_switch("sent");
    assert!(net.ping(2), "no ping reply through the switch:\n{}", net.lab.output_of("sent", "err"));
    must(in_ns(&d, &["ip", "link", "set", "d1", "mtu", "1000"]), "mtu");
    let big = in_ns(&net.client, &["ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", "-s", "1200", S_IP]);
    assert!(!big.status.success(), "a 1228-byte packet passed a 1000-byte MTU");
    assert!(net.lab.signal_and_wait(sw, "TERM", 10), "exit status:\n{}", net.lab.output_of("sent", "err"));
    let out = net.lab.output_of("sent", "out");
    // The live table: `  1     d1  RX  LOST  TX-ERRORS`.
    let row = out.lines().find(|l| l.split_whitespace().take(2).eq(["1", "d1"])).unwrap_or_default();
    let errors: u64 = row.split_whitespace().last().and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
    assert_eq!(errors, 2, "{out}");
    let received = number_before(&out, "Packets:", " received").unwrap_or(0);
    let sent = number_before(&out, "Packets:", " sent").unwrap_or(0);
    let dropped = number_before(&out, "Packets:", " dropped").unwrap_or(0);
    assert_eq!(received, sent + errors + dropped, "{out}");
    assert_eq!(sent, 4, "two echo requests and two replies left:\n{out}");
    // The switch's port table: `  1     0  0  2  196` (rx packets, rx bytes, tx packets, tx bytes).
    let ports = out.split("\nPorts\n").nth(1).unwrap_or_default();
    let port1: Vec<&str> =
        ports.lines().find(|l| l.split_whitespace().next() == Some("1")).unwrap_or("").split_whitespace().collect();
    assert_eq!(port1.get(3), Some(&"2"), "port 1 sent the two small echo requests only:\n{out}");
}
