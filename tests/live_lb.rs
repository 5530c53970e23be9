//! The IPVS director (`programs/lb.p4lite`) live, end to end, with real
//! clients and real servers in network namespaces each test creates and
//! deletes itself (issue 5, "End-to-end tests").
//!
//! VS/NAT and VS/TUN (tests `nat_rr`, `nat_wrr`, `tun_rr`, `nat_live_control`)
//! run on the two-armed network of [`common::lb_net`] (`Net::two_armed`:
//! client ─ p4lite ─ bridge of real servers; s4 only in `nat_live_control`),
//! VS/DR (test `dr_rr`) on its one-segment network (`Net::one_segment`);
//! the diagrams and addresses are in that module's docs. The servers run
//! a small Python HTTP server answering `GET /` with a 3200-byte body
//! naming the server; the client runs `curl`, one new connection per
//! request.
//!
//! Needs root, `ip netns`, `ethtool`, `curl`, `python3`, `tcpdump`, `tshark`
//! and `timeout`. Without them each test prints a notice and passes, except
//! in CI (`CI=true`), where it fails. Every command is bounded (`timeout`,
//! curl `--max-time`, fixed round counts); the namespaces, processes and
//! scratch files are removed when a test ends, also when it fails. The
//! addresses exist only inside the namespaces, which have no route out.
//!
//! The benchmark `bench_live_lb_veth` (`cargo test --release --test
//! live_lb bench_live_lb_veth -- --ignored --nocapture`; needs `python3` and
//! `bridge`) measures packets per second through the director and through
//! the kernel's own forwarding in the same namespaces (BENCHMARKS.md).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use common::lb_net::{
    body, cannot_run, dest_column, dests, fetch_all, nat_conf, tally, Net, C_IP, C_MAC, D0_IP, D0_MAC, D1_IP, D1_MAC,
    DR_VIP, VIP,
};
use common::netns::{cpu_seconds, in_ns, must, run, stdout, text, wait_until, Lab};

/// The tools these tests call besides `ip`, `ethtool` and `timeout`.
const TOOLS: &[&str] = &["curl", "python3", "tcpdump", "tshark"];

/// Shared body of the two NAT scheduler tests: 30 connections, then the
/// expected count per server both from the responses and from `--stats`.
fn nat_test(tag: &str, name: &'static str, sched: &str, weights: &[(usize, u32)], expect: &[usize]) {
    if cannot_run(name, TOOLS) {
        return;
    }
    let mut net = Net::two_armed(tag, name, 3);
    net.phase("namespaces ready");
    let conf = nat_conf(&net, sched, weights);
    net.start_director(&conf, &["0=d0", "1=d1"]);
    net.start_http(&[0, 1, 2], None, 8080, "0");
    net.phase("director and servers up");

    let names = fetch_all(&net, &format!("http://{VIP}/"), 30);
    net.phase("30 requests done");
    let got = tally(&names);
    let want: BTreeMap<String, usize> = (0..3).map(|i| (net.servers[i].name.clone(), expect[i])).collect();
    assert_eq!(got, want, "responses per server ({sched}), in order: {names:?}");

    // The servers' own logs agree: each request reached exactly one server.
    for (i, s) in net.servers.iter().enumerate() {
        let served = net.lab.output_of(&format!("http-{}", s.name), "err").matches("\"GET / ").count();
        assert_eq!(served, expect[i], "requests logged by {}", s.name);
    }
    let (conns, listing) = net.conns();
    let want: BTreeMap<String, u64> =
        (0..3).map(|i| (format!("{}:8080", net.servers[i].ip), expect[i] as u64)).collect();
    assert_eq!(conns, want, "Conns of -Ln --stats:\n{listing}");
    // NAT: both directions pass the director, and it counts them per real
    // server: at least SYN, ACK, GET and FIN in, SYN-ACK and three data
    // segments (a 3.3 KB response) out, per connection.
    let (in_pkts, out_pkts, out_bytes) = (dest_column(&listing, 2), dest_column(&listing, 3), dest_column(&listing, 5));
    for (dest, &n) in &conns {
        assert!(in_pkts[dest] >= 4 * n && out_pkts[dest] >= 4 * n, "packets of {dest}:\n{listing}");
        assert!(out_bytes[dest] >= 3200 * n, "every body passed the director:\n{listing}");
    }
    eprintln!("{listing}");
    net.phase("passed");
}

/// VS/NAT, rr over three servers: 30 curls to the VIP get 30 complete
/// responses, 10 from each server (also in the servers' logs and in the
/// Conns of `-Ln --stats`, whose packet and byte counters show both
/// directions passing the director).
#[test]
fn nat_rr() {
    nat_test("nr", "live_lb::nat_rr", "rr", &[(0, 1), (1, 1), (2, 1)], &[10, 10, 10]);
}

/// VS/NAT, wrr with weights 3:2:1: 30 connections split 15/10/5 (the
/// start-up pass of spec 1.5 included), checked as in [`nat_rr`].
#[test]
fn nat_wrr() {
    nat_test("nw", "live_lb::nat_wrr", "wrr", &[(0, 3), (1, 2), (2, 1)], &[15, 10, 5]);
}

/// Starts tcpdump in `ns` on `dev` writing `LABEL.pcap` (capture `filter`),
/// and waits until it listens. Returns its child index.
fn start_capture(lab: &mut Lab, ns: &str, dev: &str, filter: &str, label: &str) -> usize {
    let file = lab.path(&format!("{label}.pcap")).display().to_string();
    #[rustfmt::skip]
    let ix = lab.spawn(ns, &["timeout", "60", "tcpdump", "-n", "-U", "--immediate-mode", "-i", dev, "-w", &file, filter], &[], label);
    let up = wait_until(100, Duration::from_millis(50), || lab.output_of(label, "err").contains("listening on"));
    assert!(up, "tcpdump {label} did not start:\n{}", lab.output_of(label, "err"));
    ix
}

/// Stops a capture started with [`start_capture`] (SIGINT after a short
/// grace for frames in flight) and returns the pcap's path.
fn stop_capture(lab: &mut Lab, ix: usize, label: &str) -> PathBuf {
    sleep(Duration::from_millis(200));
    // `timeout` forwards the signal to tcpdump, which flushes and exits.
    let _ = lab.signal_and_wait(ix, "INT", 10);
    lab.path(&format!("{label}.pcap"))
}

/// `tshark -r pcap -Y filter -T fields -e …` (checksums verified): one
/// `Vec` of fields per packet; repeated fields (outer and inner IPv4) are
/// comma-separated.
fn tshark_fields(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let p = pcap.display().to_string();
    #[rustfmt::skip]
    let mut argv = vec!["tshark", "-n", "-r", p.as_str(), "-o", "ip.check_checksum:TRUE",
                        "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                        "-Y", filter, "-T", "fields", "-E", "separator=;"];
    for f in fields {
        argv.extend(["-e", f]);
    }
    let o = must(run(&argv), "tshark");
    stdout(&o).lines().map(|l| l.split(';').map(str::to_string).collect()).collect()
}

/// VS/DR, rr over three servers on the client's segment: 30 complete
/// responses, 10 per server; tcpdump on the director's port sees every
/// client packet to the VIP come in and leave to a server's MAC with the
/// VIP unchanged, and not one packet from the VIP; at the client every
/// reply comes from a server's MAC (10 connections each), none from the
/// director's.
#[test]
fn dr_rr() {
    let name = "live_lb::dr_rr";
    if cannot_run(name, TOOLS) {
        return;
    }
    let mut net = Net::one_segment("dr", name);
    net.phase("namespaces ready");
    let mut conf = format!(
        "port 0 name d0 mac {D0_MAC} addr {D0_IP}/24 addr {DR_VIP}/32\n{}-A -t {DR_VIP}:80 -s rr\n",
        net.neigh_lines()
    );
    for s in &net.servers {
        conf += &format!("-a -t {DR_VIP}:80 -r {}:80 -g\n", s.ip);
    }
    net.start_director(&conf, &["0=d0"]);
    net.start_http(&[0, 1, 2], Some("0.0.0.0"), 80, "0");
    let d = net.director.clone();
    let c = net.client.clone();
    let cap_d = start_capture(&mut net.lab, &d, "d0", "ip", "cap-d0");
    let cap_c = start_capture(&mut net.lab, &c, "c0", "ip", "cap-c0");
    net.phase("director, servers and captures up");

    let names = fetch_all(&net, &format!("http://{DR_VIP}/"), 30);
    net.phase("30 requests done");
    let want: BTreeMap<String, usize> = net.servers.iter().map(|s| (s.name.clone(), 10)).collect();
    assert_eq!(tally(&names), want, "responses per server (rr), in order: {names:?}");
    let (conns, listing) = net.conns();
    let want: BTreeMap<String, u64> = net.servers.iter().map(|s| (format!("{}:80", s.ip), 10)).collect();
    assert_eq!(conns, want, "Conns of -Ln --stats:\n{listing}");

    let pd = stop_capture(&mut net.lab, cap_d, "cap-d0");
    let pc = stop_capture(&mut net.lab, cap_c, "cap-c0");
    // On the director's port: the client's packets to the VIP come in
    // (from the client's MAC) and go out again to the servers' MACs, the
    // IP destination still the VIP; no packet from the VIP ever passes.
    let at_d = tshark_fields(&pd, "tcp", &["eth.src", "eth.dst", "ip.src", "ip.dst"]);
    let from_vip: Vec<_> = at_d.iter().filter(|f| f[2] == DR_VIP).collect();
    let some = |v: &[&Vec<String>]| format!("{} packets, e.g. {:?}", v.len(), &v[..v.len().min(3)]);
    assert!(from_vip.is_empty(), "replies passed the director's port: {}", some(&from_vip));
    let server_macs: Vec<&str> = net.servers.iter().map(|s| s.mac.as_str()).collect();
    let to_servers = at_d.iter().filter(|f| f[0] == D0_MAC && server_macs.contains(&f[1].as_str())).count();
    let from_client = at_d.iter().filter(|f| f[0] == C_MAC && f[1] == D0_MAC).count();
    assert!(from_client >= 30 * 4 && to_servers == from_client, "{from_client} in, {to_servers} out to servers");
    let odd: Vec<_> = at_d.iter().filter(|f| f[2] != C_IP || f[3] != DR_VIP).collect();
    assert!(odd.is_empty(), "unexpected packets at d0: {}", some(&odd));
    // At the client: every reply comes from the VIP, straight from a real
    // server's MAC; each server answered 10 connections (distinct client
    // ports: a retransmitted SYN-ACK counts once).
    let at_c = tshark_fields(
        &pc,
        &format!("tcp && ip.src == {DR_VIP}"),
        &["eth.src", "tcp.flags.syn", "tcp.flags.ack", "tcp.dstport"],
    );
    let syn_acks: BTreeSet<(String, String)> =
        at_c.iter().filter(|f| f[1] == "1" && f[2] == "1").map(|f| (f[0].clone(), f[3].clone())).collect();
    let by_mac = tally(syn_acks.iter().map(|(mac, _)| mac));
    let want: BTreeMap<String, usize> = server_macs.iter().map(|m| (m.to_string(), 10)).collect();
    assert_eq!(by_mac, want, "connections answered at the client, by source MAC");
    let odd: Vec<_> = at_c.iter().filter(|f| !server_macs.contains(&f[0].as_str())).collect();
    assert!(odd.is_empty(), "replies not from a server's MAC: {}", some(&odd));
    net.phase("passed");
}

/// Sends `tcp` TCP SYNs (non-blocking connects from as many sockets) to
/// `ARGV[1]:80` and `udp` datagrams (`p4lite-N`, each from its own socket)
/// to `ARGV[1]:5353`; closes the sockets after 0.5 s (before the first
/// SYN retransmission).
const PROBES: &str = r#"
import socket, sys, time
vip, tcp, udp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(tcp):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex((vip, 80))
    socks.append(s)
    time.sleep(0.01)
for i in range(udp):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b'p4lite-%d' % i, (vip, 5353))
    socks.append(s)
    time.sleep(0.01)
time.sleep(0.5)
for s in socks:
    s.close()
print('sent')
"#;

/// The VS/TUN tests' director: rr services TCP VIP:80 and UDP VIP:5353,
/// each with every server as a VS/TUN real server with its `-a` options
/// `opts[i]` (tunnel type, port, checksum), started with tcpdump capturing
/// IPv4 at each server; the captures (index, label), in server order.
fn start_tunnel_director(net: &mut Net, opts: &[String]) -> Vec<(usize, String)> {
    let mut conf = format!(
        "port 0 name d0 mac {D0_MAC} addr {D0_IP}/24 addr {VIP}/32\n\
         port 1 name d1 mac {D1_MAC} addr {D1_IP}/24\n{}\
         -A -t {VIP}:80 -s rr\n-A -u {VIP}:5353 -s rr\n",
        net.neigh_lines()
    );
    for (s, opts) in net.servers.iter().zip(opts) {
        conf += &format!("-a -t {VIP}:80 -r {} -i{opts}\n-a -u {VIP}:5353 -r {} -i{opts}\n", s.ip, s.ip);
    }
    net.start_director(&conf, &["0=d0", "1=d1"]);
    let mut caps = Vec::new();
    for i in 0..net.servers.len() {
        let (label, ns) = (format!("cap-{}", net.servers[i].name), net.servers[i].ns.clone());
        caps.push((start_capture(&mut net.lab, &ns, "s0", "ip", &label), label));
    }
    caps
}

/// VS/TUN, rr: the kernel has no ipip or gre module, so the servers cannot
/// decapsulate; tcpdump at each server shows that every frame from the
/// director is a tunnel packet from 10.78.1.1 to that server around the
/// client's intact packet to the VIP (TTL 63 inside and out, valid IPv4,
/// TCP and UDP checksums, the UDP payload), 4 of the 12 SYNs and 2 of the
/// 6 datagrams per server; `-Ln --stats` agrees. The first server is
/// reached over IP-in-IP, the second over GRE with a checksum (tshark
/// finds it good), the third over GRE without (`--tun-type gre`).
#[test]
fn tun_rr() {
    let name = "live_lb::tun_rr";
    if cannot_run(name, TOOLS) {
        return;
    }
    let mut net = Net::two_armed("tu", name, 3);
    net.phase("namespaces ready");
    // Each server's tunnel: its -a options, tshark's outer protocol and GRE C bit.
    let tunnels = [("", "4", ""), (" --tun-type gre --tun-csum", "47", "1"), (" --tun-type gre", "47", "0")];
    let caps = start_tunnel_director(&mut net, &tunnels.map(|t| t.0.to_string()));
    net.phase("director and captures up");
    let (tcp, udp) = (12, 6);
    let o = in_ns(&net.client, &["python3", "-c", PROBES, VIP, &tcp.to_string(), &udp.to_string()]);
    assert!(stdout(&o).contains("sent"), "probes: {}", text(&o));
    net.phase("probes sent");

    let mut per_server = Vec::new();
    for (i, (ix, label)) in caps.into_iter().enumerate() {
        let pcap = stop_capture(&mut net.lab, ix, &label);
        let s = &net.servers[i];
        // Every unicast IPv4 frame not sent by a server (they send ICMP
        // errors about the IPIP packets they cannot take) is the
        // director's (the only multicast is br0's IGMP reports)…
        let not_servers = net.servers.iter().map(|x| format!("eth.src != {}", x.mac)).collect::<Vec<_>>().join(" && ");
        #[rustfmt::skip]
        let pkts = tshark_fields(&pcap, &format!("ip && !(ip.dst == 224.0.0.0/4) && {not_servers}"),
                                 &["ip.proto", "ip.src", "ip.dst", "ip.checksum.status", "ip.ttl",
                                   "tcp.flags.syn", "tcp.checksum.status", "udp.checksum.status", "udp.payload", "eth.dst",
                                   "tcp.srcport", "udp.srcport", "eth.src", "gre.flags.checksum", "gre.checksum.status"]);
        // Connections by the client's source port (a retransmitted SYN counts once).
        let (mut syns, mut dgrams) = (BTreeSet::new(), BTreeSet::new());
        for f in &pkts {
            // …is IP-in-IP from the director's LAN address to the server,
            // around the client's packet to the VIP, both headers' checksums good.
            let ctx = format!("packet at {}: {f:?}", s.name);
            assert_eq!(f[12], D1_MAC, "a frame not from the director, {ctx}");
            // Until a server has sent a frame, the bridge floods the
            // frames to it to every port: each capture also holds some
            // for the other servers. The destination MAC says whose it is.
            let Some(to) = net.servers.iter().position(|x| x.mac == f[9]) else {
                panic!("not to a server's MAC: {ctx}")
            };
            let (_, outer, csum) = tunnels[to];
            let to = &net.servers[to];
            let udp = f[5].is_empty();
            assert_eq!(f[0], format!("{outer},{}", if udp { 17 } else { 6 }), "outer/inner protocols, {ctx}");
            // GRE's C bit, and its checksum good (1) where there is one.
            assert_eq!(f[13], csum, "GRE checksum flag, {ctx}");
            assert_eq!(f[14], if csum == "1" { "1" } else { "" }, "GRE checksum status, {ctx}");
            assert_eq!(f[1], format!("{D1_IP},{C_IP}"), "outer/inner sources, {ctx}");
            assert_eq!(f[2], format!("{},{VIP}", to.ip), "outer/inner destinations, {ctx}");
            assert_eq!(f[3], "1,1", "IPv4 checksums (outer, inner), {ctx}");
            // The outer TTL is the inner one after the decrement (spec 3.2).
            assert_eq!(f[4], "63,63", "outer/inner TTLs, {ctx}");
            if to.name != s.name {
                continue;
            }
            if udp {
                assert_eq!(f[7], "1", "inner UDP checksum, {ctx}");
                // "p4lite-" in hex: the payload arrived intact.
                assert!(f[8].starts_with("70346c6974652d") && f[8].len() == 2 * 8, "UDP payload, {ctx}");
                dgrams.insert(f[11].clone());
            } else {
                assert_eq!((f[5].as_str(), f[6].as_str()), ("1", "1"), "inner SYN with a good checksum, {ctx}");
                syns.insert(f[10].clone());
            }
        }
        per_server.push((s.name.clone(), syns.len(), dgrams.len()));
    }
    // rr: 12 connections and 6 datagrams (each its own UDP connection) over three servers.
    let want: Vec<(String, usize, usize)> = net.servers.iter().map(|s| (s.name.clone(), 4, 2)).collect();
    assert_eq!(per_server, want, "(server, SYNs, datagrams) captured");
    let (conns, listing) = net.conns();
    let want: BTreeMap<String, u64> =
        net.servers.iter().flat_map(|s| [(format!("{}:80", s.ip), 4), (format!("{}:5353", s.ip), 2)]).collect();
    assert_eq!(conns, want, "Conns of -Ln --stats:\n{listing}");
    net.phase("passed");
}

/// VS/TUN over GUE, rr over two servers: `--tun-type gue --tun-port 6080`
/// (no UDP checksum) and `--tun-port 5555 --tun-remcsum` (a full one: the
/// offload option is for locally sent packets). The kernel here has no
/// `fou` module, so the servers cannot decapsulate; tcpdump at each server
/// shows that every frame from the director to it is UDP from 10.78.1.1 to
/// its port, TTL 63, tshark finding the outer IPv4 checksum good and the
/// UDP checksum absent or good; behind the 4-byte GUE header (version 0,
/// protocol 4) is the client's packet to the VIP, TTL 63, whose IPv4, TCP
/// and UDP checksums tshark finds good in a capture of the inner packets
/// alone; 2 of the 4 SYNs and 1 of the 2 datagrams per server, each
/// connection from one UDP source port in 32768-60999.
#[test]
fn tun_gue() {
    let name = "live_lb::tun_gue";
    if cannot_run(name, TOOLS) {
        return;
    }
    let mut net = Net::two_armed("tg", name, 2);
    net.phase("namespaces ready");
    // Each server's GUE port and whether its UDP header has a checksum.
    let tunnels = [(6080, "--tun-nocsum", false), (5555, "--tun-remcsum", true)];
    let caps = start_tunnel_director(
        &mut net,
        &tunnels.map(|(port, opt, _)| format!(" --tun-type gue --tun-port {port} {opt}")),
    );
    net.phase("director and captures up");
    let o = in_ns(&net.client, &["python3", "-c", PROBES, VIP, "4", "2"]);
    assert!(stdout(&o).contains("sent"), "probes: {}", text(&o));
    net.phase("probes sent");

    let mut per_server = Vec::new();
    for (i, (ix, label)) in caps.into_iter().enumerate() {
        let pcap = stop_capture(&mut net.lab, ix, &label);
        let s = &net.servers[i];
        let (port, _, csum) = tunnels[i];
        #[rustfmt::skip]
        let pkts = tshark_fields(&pcap, &format!("eth.src == {D1_MAC} && eth.dst == {} && !(ip.dst == 224.0.0.0/4)", s.mac),
                                 &["ip.proto", "ip.src", "ip.dst", "ip.checksum.status", "ip.ttl", "udp.srcport",
                                   "udp.dstport", "udp.length", "udp.checksum.status", "udp.payload", "ip.len"]);
        assert!(!pkts.is_empty(), "no GUE packet captured at {}", s.name);
        let mut inner_packets = Vec::new();
        let mut flow_ports: BTreeMap<Vec<u8>, String> = BTreeMap::new();
        for f in &pkts {
            let ctx = format!("packet at {}: {f:?}", s.name);
            assert_eq!(f[0], "17", "outer protocol, {ctx}");
            assert_eq!((f[1].as_str(), f[2].as_str()), (D1_IP, s.ip.as_str()), "outer addresses, {ctx}");
            assert_eq!((f[3].as_str(), f[4].as_str()), ("1", "63"), "outer IPv4 checksum and TTL, {ctx}");
            let sport: u32 = f[5].parse().unwrap_or_else(|_| panic!("UDP source port, {ctx}"));
            assert!((32768..61000).contains(&sport), "UDP source port in the local port range, {ctx}");
            assert_eq!(f[6], port.to_string(), "UDP destination port: the --tun-port, {ctx}");
            let ip_len: usize = f[10].parse().expect("ip.len");
            assert_eq!(f[7], (ip_len - 20).to_string(), "UDP length, {ctx}");
            // 1: good; 3: not present (a checksum of 0).
            assert_eq!(f[8], if csum { "1" } else { "3" }, "UDP checksum status, {ctx}");
            let payload: Vec<u8> = (0..f[9].len() / 2)
                .map(|i| u8::from_str_radix(&f[9][2 * i..2 * i + 2], 16).expect("hex payload"))
                .collect();
            assert_eq!(payload.get(..4), Some(&[0u8, 4, 0, 0][..]), "GUE header: version 0, data, protocol 4, {ctx}");
            let inner = payload[4..].to_vec();
            assert!(inner.len() >= 28, "an inner packet, {ctx}");
            // One source port per connection (client port, protocol).
            let flow = [&inner[9..10], &inner[20..22]].concat();
            let first = flow_ports.entry(flow).or_insert_with(|| f[5].clone());
            assert_eq!(*first, f[5], "a connection's packets share one UDP source port, {ctx}");
            inner_packets.push(inner);
        }
        // tshark on the inner packets alone (a raw-IPv4 capture).
        let inner_pcap = net.lab.path(&format!("inner-{}.pcap", s.name));
        write_raw_ipv4_pcap(&inner_pcap, &inner_packets);
        let inner = tshark_fields(
            &inner_pcap,
            "ip",
            &[
                "ip.src",
                "ip.dst",
                "ip.ttl",
                "ip.checksum.status",
                "tcp.flags.syn",
                "tcp.checksum.status",
                "udp.checksum.status",
                "udp.payload",
            ],
        );
        assert_eq!(inner.len(), inner_packets.len(), "tshark reads every inner packet at {}", s.name);
        for f in &inner {
            let ctx = format!("inner packet at {}: {f:?}", s.name);
            assert_eq!((f[0].as_str(), f[1].as_str(), f[2].as_str(), f[3].as_str()), (C_IP, VIP, "63", "1"), "{ctx}");
            if f[4].is_empty() {
                assert_eq!(f[6], "1", "inner UDP checksum, {ctx}");
                // "p4lite-" in hex: the payload arrived intact.
                assert!(f[7].starts_with("70346c6974652d"), "UDP payload, {ctx}");
            } else {
                assert_eq!((f[4].as_str(), f[5].as_str()), ("1", "1"), "inner SYN with a good checksum, {ctx}");
            }
        }
        // Connections by protocol and client port: a retransmitted SYN counts once.
        let count = |proto: u8| flow_ports.keys().filter(|k| k[0] == proto).count();
        per_server.push((s.name.clone(), count(6), count(17)));
    }
    // rr: 4 connections and 2 datagrams over two servers.
    let want: Vec<(String, usize, usize)> = net.servers.iter().map(|s| (s.name.clone(), 2, 1)).collect();
    assert_eq!(per_server, want, "(server, TCP connections, UDP datagrams) captured");
    let (conns, listing) = net.conns();
    let want: BTreeMap<String, u64> =
        net.servers.iter().flat_map(|s| [(format!("{}:80", s.ip), 2), (format!("{}:5353", s.ip), 1)]).collect();
    assert_eq!(conns, want, "Conns of -Ln --stats:\n{listing}");
    net.phase("passed");
}

/// Writes `packets` (IPv4 packets, no link layer) as a pcap of link type
/// 101 (LINKTYPE_RAW), for tshark to read.
fn write_raw_ipv4_pcap(path: &Path, packets: &[Vec<u8>]) {
    let mut out = Vec::new();
    for w in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 101] {
        // magic; version 2.4 (major 2, minor 4: two little-endian u16s); zone; sigfigs; snaplen; link type
        out.extend_from_slice(&w.to_le_bytes());
    }
    for p in packets {
        let len = p.len() as u32;
        for w in [0u32, 0, len, len] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(p);
    }
    std::fs::write(path, out).expect("inner pcap written");
}

/// Connection synchronisation through real interfaces: the director runs
/// the master sync daemon on its LAN port; four HTTP connections through it
/// leave IPVS sync messages on the LAN, which tcpdump at a real server
/// captures and tshark decodes (its IPVS sync dissector; IPv4 and UDP
/// checksums good): each connection's record with the client, the VIP and
/// the real server rr chose. Nothing arrives after the last request, so
/// the last message can only leave on the switch's idle tick, 2 s after
/// its first record (as the kernel's sync thread flushes it).
#[test]
fn nat_sync_master() {
    let name = "live_lb::nat_sync_master";
    if cannot_run(name, TOOLS) {
        return;
    }
    let mut net = Net::two_armed("sy", name, 2);
    net.phase("namespaces ready");
    let conf = nat_conf(&net, "rr", &[(0, 1), (1, 1)]) + "--start-daemon master --mcast-interface d1 --syncid 3\n";
    net.start_director(&conf, &["0=d0", "1=d1"]);
    net.start_http(&[0, 1], None, 8080, "0");
    let ns = net.servers[0].ns.clone();
    let cap = start_capture(&mut net.lab, &ns, "s0", "udp port 8848", "cap-sync");
    net.phase("director, servers and capture up");
    let names = fetch_all(&net, &format!("http://{VIP}/"), 4);
    assert_eq!(names.len(), 4);
    let finished = std::time::Instant::now();
    // The last records wait for the 2-second flush, driven by the idle tick.
    sleep(Duration::from_millis(3500));
    let pcap = stop_capture(&mut net.lab, cap, "cap-sync");
    net.phase("capture stopped");
    #[rustfmt::skip]
    let rows = tshark_fields(&pcap, "ipvs", &["ip.src", "ip.dst", "ip.checksum.status", "udp.checksum.status",
                                              "ipvs.syncid", "ipvs.caddr", "ipvs.vaddr", "ipvs.daddr", "ipvs.cport"]);
    assert!(!rows.is_empty(), "no sync message captured");
    let mut conns = BTreeMap::new();
    for f in &rows {
        assert_eq!((f[0].as_str(), f[1].as_str()), (D1_IP, "224.0.0.81"), "from the LAN port to the group: {f:?}");
        assert_eq!((f[2].as_str(), f[3].as_str(), f[4].as_str()), ("1", "1", "3"), "checksums good, syncid 3: {f:?}");
        let list = |i: usize| f[i].split(',').map(str::to_string).collect::<Vec<String>>();
        let (caddr, vaddr, daddr, cport) = (list(5), list(6), list(7), list(8));
        for i in 0..caddr.len() {
            assert_eq!((caddr[i].as_str(), vaddr[i].as_str()), (C_IP, VIP), "{f:?}");
            assert!(net.servers.iter().any(|s| s.ip == daddr[i]), "{f:?}");
            conns.insert(cport[i].clone(), daddr[i].clone());
        }
    }
    assert_eq!(conns.len(), 4, "every connection's record: {conns:?}");
    let per_server: BTreeMap<&String, usize> = conns.values().fold(BTreeMap::new(), |mut m, d| {
        *m.entry(d).or_default() += 1;
        m
    });
    assert_eq!(per_server.values().copied().collect::<Vec<usize>>(), vec![2, 2], "rr: {conns:?}");
    let listing = net.ctl(&["-L", "--daemon"]);
    assert!(
        listing.contains("master sync daemon (mcast=d1, syncid=3, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"),
        "{listing}"
    );
    eprintln!("{} sync frames; the last wait after the requests: {:?}", rows.len(), finished.elapsed());
    net.phase("passed");
}

/// The client's loop for the live-control test: in directory `$1`, `$2`
/// sequential GETs of `$3`, `$4` seconds apart, the bodies in `body.INDEX`;
/// one line per request as it completes: `INDEX EXIT_CODE HTTP_CODE SIZE
/// LOCAL_PORT FIRST_WORD`.
const CLIENT_LOOP: &str = r#"
cd "$1" || exit 1
n=$2; url=$3; pause=$4; i=0
while [ $i -lt $n ]; do
  out=$(curl -sS --noproxy '*' --connect-timeout 2 --max-time 3 -o body.$i -w '%{http_code} %{size_download} %{local_port}' "$url" 2>/dev/null)
  rc=$?
  echo "$i $rc $out $(head -c 2 body.$i 2>/dev/null)"
  i=$((i+1))
  sleep $pause
done
echo done
"#;

/// Live control: while the client loops (60 sequential curls), `p4lite
/// ctl -a` adds s4 and `-d` deletes s1, each while a connection is open
/// (the servers pause 0.1 s mid-response); the listings change, every
/// request gets its complete response (including the one in flight to s1),
/// no request started before the add goes to s4 nor after the delete to
/// s1, and rr shares the requests evenly among the servers of each phase.
#[test]
fn nat_live_control() {
    let name = "live_lb::nat_live_control";
    if cannot_run(name, TOOLS) {
        return;
    }
    let mut net = Net::two_armed("lc", name, 4);
    net.phase("namespaces ready");
    // s4 is known to the director's network (its neigh line) but not in the service yet.
    let conf = nat_conf(&net, "rr", &[(0, 1), (1, 1), (2, 1)]);
    net.start_director(&conf, &["0=d0", "1=d1"]);
    // Each response takes 0.1 s: the commands land while a connection is open.
    net.start_http(&[0, 1, 2, 3], None, 8080, "0.1");
    net.phase("director and servers up");

    let (s1, s4) = (format!("{}:8080", net.servers[0].ip), format!("{}:8080", net.servers[3].ip));
    let before = dests(&net.ctl(&["-Ln"]));
    assert_eq!(before.keys().cloned().collect::<Vec<_>>(), ["10.78.1.11:8080", "10.78.1.12:8080", "10.78.1.13:8080"]);

    let total = 60;
    let c = net.client.clone();
    let dir = net.lab.dir.display().to_string();
    let url = format!("http://{VIP}/");
    let script = net.lab.write("loop.sh", CLIENT_LOOP).display().to_string();
    let n = total.to_string();
    let looper = net.lab.spawn(&c, &["sh", &script, &dir, &n, &url, "0.02"], &[], "loop");
    let lines = |net: &Net| net.lab.output_of("loop", "out").lines().filter(|l| *l != "done").count();
    let wait_for = |net: &Net, n: usize| wait_until(1000, Duration::from_millis(20), || lines(net) >= n);

    // Requests each server has logged so far (it logs before it answers).
    let served = |net: &Net, i: usize| {
        net.lab.output_of(&format!("http-{}", net.servers[i].name), "err").matches("\"GET / ").count()
    };
    let served_all = |net: &Net| (0..4).map(|i| served(net, i)).sum::<usize>();
    let stalled = |net: &Net| format!("the client loop stalled:\n{}", net.lab.output_of("loop", "out"));

    // Add s4 while a request is in flight: one has reached its server (which
    // is pausing mid-response) and not completed.
    assert!(wait_for(&net, 15), "{}", stalled(&net));
    let seen = served_all(&net);
    assert!(wait_until(1000, Duration::from_millis(5), || served_all(&net) > seen), "{}", stalled(&net));
    let add_from = lines(&net);
    net.ctl(&["-a", "-t", &format!("{VIP}:80"), "-r", &s4, "-m", "-w", "1"]);
    let add_to = lines(&net);
    let after_add = dests(&net.ctl(&["-Ln"]));
    assert_eq!(after_add.keys().collect::<Vec<_>>(), [&s1, "10.78.1.12:8080", "10.78.1.13:8080", &s4]);
    net.phase("s4 added");

    // Delete s1 while a request to s1 is in flight (rr reaches it within four).
    assert!(wait_for(&net, 35), "{}", stalled(&net));
    let seen = served(&net, 0);
    assert!(wait_until(1000, Duration::from_millis(5), || served(&net, 0) > seen), "{}", stalled(&net));
    let del_from = lines(&net);
    net.ctl(&["-d", "-t", &format!("{VIP}:80"), "-r", &s1]);
    let del_to = lines(&net);
    let after_del = dests(&net.ctl(&["-Ln"]));
    assert_eq!(after_del.keys().collect::<Vec<_>>(), ["10.78.1.12:8080", "10.78.1.13:8080", &s4]);
    // The connections outlive their deleted real server.
    let conns = net.ctl(&["-Lnc"]);
    assert!(conns.lines().any(|l| l.ends_with(&format!(" {s1}"))), "no connection to s1 left:\n{conns}");
    net.phase("s1 deleted");

    assert!(net.lab.wait_exit(looper, 30), "the client loop failed:\n{}", net.lab.output_of("loop", "err"));
    net.phase("client loop done");
    let out = net.lab.output_of("loop", "out");
    // Every request gets its complete response, also the one in flight to
    // s1 when it was deleted: IPVS then drops only the client's packets of
    // that connection (spec 2.8, expire_nodest_conn = 0), and the rest of
    // the response needs none of them (the server does not wait for ACKs).
    let names: Vec<String> = out
        .lines()
        .filter(|l| *l != "done")
        .enumerate()
        .map(|(i, l)| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                [n, "0", "200", "3200", _, name]
                    if *n == i.to_string()
                        && std::fs::read_to_string(net.lab.path(&format!("body.{i}"))).ok() == Some(body(name)) =>
                {
                    name.to_string()
                }
                _ => panic!("request {i} failed: {l}\n{out}\nswitch:\n{}", net.lab.output_of("switch", "err")),
            }
        })
        .collect();
    assert_eq!(names.len(), total, "{out}");
    net.phase(&format!(
        "s4 added while request {add_from}..={add_to} ran, s1 deleted while {del_from}..={del_to} ran (to {})",
        names[del_from]
    ));
    assert_eq!(names[del_from], "s1", "the request in flight at the deletion:\n{out}");
    // Request `i` started before a command when i < FROM, after it when
    // i > TO (the one in flight while the command ran may go either way).
    for (i, n) in names.iter().enumerate() {
        assert!(!(i < add_from && n == "s4"), "request {i} went to s4 before it was added:\n{out}");
        assert!(!(i > del_to && n == "s1"), "request {i} went to s1 after it was deleted:\n{out}");
    }
    // With rr, the four servers share the requests between the two commands,
    // and s2, s3, s4 those after the deletion, evenly (±1).
    let between = tally(&names[add_to + 1..del_from]);
    assert_eq!(between.len(), 4, "requests {}..{del_from} by server: {between:?}", add_to + 1);
    assert!(between.values().max().unwrap_or(&0) - between.values().min().unwrap_or(&0) <= 1, "{between:?}");
    let after = tally(&names[del_to + 1..]);
    assert_eq!(after.keys().cloned().collect::<Vec<_>>(), ["s2", "s3", "s4"], "{after:?}");
    assert!(after.values().max().unwrap_or(&0) - after.values().min().unwrap_or(&0) <= 1, "{after:?}");
    net.phase("passed");
}

/// Flows (client source ports 1024…) of the benchmark's traffic.
const BENCH_FLOWS: u32 = 1024;
/// The benchmark's UDP service port on the VIP.
const BENCH_VPORT: &str = "5353";
/// The real servers' port of that service, where [`SINK`] listens.
const BENCH_RPORT: u16 = 9000;

/// Sends 60-byte Ethernet/IPv4/UDP frames on `IFACE` (an `AF_PACKET`
/// socket) as fast as one Python thread can, for `SECS` seconds, cycling
/// through `FLOWS` flows from `SRC` ports 1024… to `DST:DPORT` (valid IPv4
/// and UDP checksums); prints the count.
/// `ARGV = IFACE DMAC SMAC SRC DST DPORT FLOWS SECS`.
const LB_SENDER: &str = r#"
import socket, struct, sys, time
iface, dmac, smac, src, dst = sys.argv[1:6]
dport, flows, secs = int(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8])
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
sa, da = socket.inet_aton(src), socket.inet_aton(dst)
eth = bytes.fromhex(dmac.replace(':', '')) + bytes.fromhex(smac.replace(':', '')) + b'\x08\x00'
frames = []
for i in range(flows):
    udp = struct.pack('!HHHH', 1024 + i, dport, 26, 0) + bytes(18)
    c = csum(sa + da + struct.pack('!BBH', 0, 17, 26) + udp) or 0xffff
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 46, 0, 0, 64, 17, 0, sa, da)
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    frames.append(eth + ip + udp[:6] + struct.pack('!H', c) + udp[8:])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
n, end = 0, time.monotonic() + secs
while time.monotonic() < end:
    for f in frames:
        try: s.send(f)
        except OSError: pass
    n += len(frames)
print(n)
"#;

/// A real server's sink for the benchmark: a UDP socket on `ADDR:PORT`
/// that is never read (a small receive buffer; once full, the kernel drops
/// silently: no ICMP goes back). Same arguments as the HTTP server.
const SINK: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind((sys.argv[1], int(sys.argv[2])))
print('ready', flush=True)
time.sleep(600)
"#;

/// Sends [`LB_SENDER`]'s frames from the client's `c0` to `dst:dport` for
/// `secs` seconds; returns (frames sent, frames that reached each server's
/// `s0` meanwhile, after 0.5 s for the queues to drain).
fn lb_blast(net: &Net, dst: &str, dport: &str, secs: f64) -> (u64, Vec<u64>) {
    let before = net.server_rx();
    let (flows, secs) = (BENCH_FLOWS.to_string(), secs.to_string());
    #[rustfmt::skip]
    let o = in_ns(&net.client, &["python3", "-c", LB_SENDER, "c0", D0_MAC, C_MAC, C_IP, dst, dport, &flows, &secs]);
    let sent = stdout(&o).trim().parse().unwrap_or(0);
    assert!(sent > 0, "the sender failed: {}", text(&o));
    sleep(Duration::from_millis(500));
    let got = net.server_rx().iter().zip(&before).map(|(a, b)| a - b).collect();
    (sent, got)
}

/// The machine's load averages (`/proc/loadavg`'s first three fields).
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Packets per second through the director (issue 5, "Performance"):
/// one Python `AF_PACKET` sender in the client namespace sends 60-byte UDP
/// frames from 1024 client ports to a VS/NAT UDP service (rr over three
/// real servers) for 5 s, after a 0.5 s warm-up that creates the 1024
/// connections: everything timed is the established-connection path
/// (lookup, DNAT, checksums, routing). Delivered: the rise of the servers'
/// `s0` `rx_packets`. Compared in the same run with the sender alone and
/// with the kernel's own forwarding (addresses and `ip_forward` on `d0`/`d1`,
/// the same frames addressed to s1): plain forwarding, not IPVS, which
/// this kernel lacks (`CONFIG_IP_VS` is not set).
#[test]
#[ignore = "benchmark: cargo test --release --test live_lb bench_live_lb_veth -- --ignored --nocapture"]
fn bench_live_lb_veth() {
    let name = "live_lb::bench_live_lb_veth";
    if cannot_run(name, &["python3", "bridge"]) {
        return;
    }
    let (secs, warm) = (5.0, 0.5);
    let mut net = Net::two_armed("bl", name, 3);
    net.pin_server_macs();
    net.start_servers(SINK, &[0, 1, 2], None, BENCH_RPORT, "0");
    net.phase("namespaces and sinks ready");
    println!(
        "{secs} s of 60-byte UDP frames, {BENCH_FLOWS} flows, from one Python AF_PACKET sender in the client \
         namespace; load average {}",
        load_average()
    );
    let per_s = |n: u64| n as f64 / secs;
    let ips: Vec<String> = net.servers.iter().map(|s| s.ip.clone()).collect();

    // The sender alone: the director's kernel drops every frame (no addresses).
    let (sent, _) = lb_blast(&net, VIP, BENCH_VPORT, secs);
    println!("sender alone (nothing forwards): sent {:.0}/s", per_s(sent));

    let mut conf = format!(
        "port 0 name d0 mac {D0_MAC} addr {D0_IP}/24 addr {VIP}/32\n\
         port 1 name d1 mac {D1_MAC} addr {D1_IP}/24\n{}\
         -A -u {VIP}:{BENCH_VPORT} -s rr\n",
        net.neigh_lines()
    );
    for ip in &ips {
        conf += &format!("-a -u {VIP}:{BENCH_VPORT} -r {ip}:{BENCH_RPORT} -m -w 1\n");
    }
    let mut p4lite_direct = 0;
    for io in ["direct", "pnet"] {
        let sw = net.start_director_env(&conf, &["0=d0", "1=d1"], &[("P4LITE_LIVE_IO", io)]);
        // Warm-up: the first packet of each flow creates its connection.
        let (_, warm_got) = lb_blast(&net, VIP, BENCH_VPORT, warm);
        assert!(warm_got.iter().all(|&n| n > 0), "warm-up frames per server: {warm_got:?}");
        let (sent, got) = lb_blast(&net, VIP, BENCH_VPORT, secs);
        let listing = net.ctl(&["-Ln", "--stats"]);
        assert!(net.lab.signal_and_wait(sw, "TERM", 10), "the director did not exit 0");
        // Every flow is one connection, made in the warm-up: the timed
        // frames all took the established-connection path.
        let conns: u64 = dest_column(&listing, 1).values().sum();
        assert_eq!(conns, u64::from(BENCH_FLOWS), "connections:\n{listing}");
        let total: u64 = got.iter().sum();
        if io == "direct" {
            p4lite_direct = total;
        }
        let report = net.lab.output_of("switch", "out");
        // The switch's CPU time covers the warm-up too: so do the frames.
        let cpu = cpu_seconds(&report);
        let all = total + warm_got.iter().sum::<u64>();
        println!(
            "p4lite lb.p4lite VS/NAT, {io} I/O: sent {:.0}/s, delivered {:.0}/s ({:.1}%; per server {:?}), \
             {:.2} µs CPU per delivered frame",
            per_s(sent),
            per_s(total),
            100.0 * total as f64 / sent.max(1) as f64,
            got.iter().map(|&n| format!("{:.0}/s", per_s(n))).collect::<Vec<_>>(),
            cpu * 1e6 / all.max(1) as f64
        );
        println!("{}", report.lines().take(4).collect::<Vec<_>>().join("\n"));
        println!("{}", listing.trim_end());
    }

    // The kernel's forwarding between the same namespaces, to s1.
    let d = net.director.clone();
    must(in_ns(&d, &["ip", "addr", "add", &format!("{D0_IP}/24"), "dev", "d0"]), "addr d0");
    must(in_ns(&d, &["ip", "addr", "add", &format!("{D1_IP}/24"), "dev", "d1"]), "addr d1");
    let s1_mac = net.servers[0].mac.clone();
    #[rustfmt::skip]
    must(in_ns(&d, &["ip", "neigh", "replace", &ips[0], "lladdr", &s1_mac, "dev", "d1", "nud", "permanent"]), "neigh");
    must(in_ns(&d, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]), "ip_forward");
    let (sent, got) = lb_blast(&net, &ips[0], &BENCH_RPORT.to_string(), secs);
    let total: u64 = got.iter().sum();
    println!(
        "kernel forwarding (to s1): sent {:.0}/s, delivered {:.0}/s ({:.1}%; per server {:?})",
        per_s(sent),
        per_s(total),
        100.0 * total as f64 / sent.max(1) as f64,
        got.iter().map(|&n| format!("{:.0}/s", per_s(n))).collect::<Vec<_>>()
    );
    println!(
        "ratio p4lite (direct I/O) / kernel forwarding: {:.2}; load average {}",
        p4lite_direct as f64 / total.max(1) as f64,
        load_average()
    );
    net.phase("done");
}
