//! IPVS connection synchronisation end to end (spec section 5): a master
//! director running `lb.p4lite` sends its connections, tshark's own IPVS
//! sync dissector reads the messages (and checks their IPv4 and UDP
//! checksums), and a backup director running `lb.p4lite` takes them in
//! through its pipeline and forwards the clients' next packets to the real
//! servers the master chose, without scheduling them again.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use p4lite_compiler::span::Sources;
use p4lite_runtime::ipvs::director::load_into_switch;
use p4lite_runtime::replay::{replay, write_pcap, Frame, Input, MemorySink, ReplayOptions};
use p4lite_runtime::switch::{Backend, Outcome, Switch, SwitchOptions};

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const T0: u64 = 1_700_000_000 * SEC;
const VIP: [u8; 4] = [198, 51, 100, 10];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const WAN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// TCP clients of the master: 203.0.113.1 ..= 203.0.113.20, port 40000.
const CLIENTS: u8 = 20;
/// `drops` counter cells of lb.p4lite.
const DROP_FOR_DIRECTOR: u64 = 2;
const DROP_SYNC: u64 = 15;

/// The director's network and services; `daemon` is the `--start-daemon`
/// line, `lan` the LAN port's MAC and address (master and backup differ).
/// The backup lists its real servers the other way round, so that its rr
/// would pick differently from the master's.
fn conf(daemon: &str, lan: (&str, &str), reversed: bool) -> String {
    let mut rs = ["-a -t 198.51.100.10:80 -r 10.1.1.21:8080 -m", "-a -t 198.51.100.10:80 -r 10.1.1.22:8080 -m"];
    if reversed {
        rs.reverse();
    }
    format!(
        "port 1 name wan mac 02:00:00:00:00:01 addr 192.0.2.1/24 addr 198.51.100.10/32\n\
         port 2 name lan mac {} addr {}/24\n\
         neigh 192.0.2.254 mac 02:00:00:00:00:fe\n\
         neigh 10.1.1.21 mac 02:00:00:00:01:21\n\
         neigh 10.1.1.22 mac 02:00:00:00:01:22\n\
         route default via 192.0.2.254\n\
         -A -t 198.51.100.10:80 -s rr\n{}\n{}\n\
         -A -u 198.51.100.10:53 -s rr -p 60\n\
         -a -u 198.51.100.10:53 -r 10.1.1.21 -m\n\
         {daemon}\n",
        lan.0, lan.1, rs[0], rs[1]
    )
}

fn switch(backend: Backend, conf: &str) -> Switch {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("programs/lb.p4lite")).expect("programs/lb.p4lite");
    let program = p4lite_compiler::compile(&Sources::new("lb.p4lite", text)).ir.expect("lb.p4lite compiles");
    let mut sw = Switch::new(program, SwitchOptions { backend, trace: false }).expect("a switch");
    load_into_switch(&mut sw, conf, "lb.conf").expect("lb.conf loads");
    sw
}

/// RFC 1071 checksum of `bytes`.
fn csum(bytes: &[u8]) -> u16 {
    let mut s: u32 = bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet/IPv4 frame from the gateway to the director carrying
/// `l4` (protocol `proto`), with both checksums right.
fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, mut l4: Vec<u8>, csum_at: usize) -> Vec<u8> {
    let mut pseudo = [src, dst].concat();
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(&l4);
    let c = csum(&pseudo);
    l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    [&WAN_MAC[..], &GW_MAC[..], &[8, 0], &ip, &l4].concat()
}

fn tcp(client: u8, flags: u8) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[12] = 0x50;
    t[13] = flags;
    t[14..16].copy_from_slice(&65535u16.to_be_bytes());
    frame([203, 0, 113, client], VIP, 6, t, 16)
}

fn udp(client: u8) -> Vec<u8> {
    let mut u = vec![0u8; 12];
    u[0..2].copy_from_slice(&5353u16.to_be_bytes());
    u[2..4].copy_from_slice(&53u16.to_be_bytes());
    u[4..6].copy_from_slice(&12u16.to_be_bytes());
    frame([203, 0, 113, client], VIP, 17, u, 6)
}

/// The master's input on port 1: each TCP client's SYN, ACK and three data
/// packets (ESTABLISHED at the 2nd, sent at the 3rd), three datagrams of a
/// persistent UDP client (its template offered with each, its conn sent
/// at the 3rd), then 3 s later one more SYN, after which the last, partly
/// filled message is due.
fn master_input() -> Vec<Frame> {
    let mut f = Vec::new();
    let mut t = T0;
    let mut push = |data: Vec<u8>, at: &mut u64| {
        f.push(Frame { ts_ns: *at, data });
        *at += MS;
    };
    for round in 0..5u8 {
        for c in 1..=CLIENTS {
            let flags = match round {
                0 => 0x02,
                1 => 0x10,
                _ => 0x18,
            };
            push(tcp(c, flags), &mut t);
        }
    }
    for _ in 0..3 {
        push(udp(100), &mut t);
    }
    t += 3 * SEC;
    push(tcp(99, 0x02), &mut t);
    f
}

/// The IPv4 packet of an Ethernet frame.
fn ip_of(f: &[u8]) -> &[u8] {
    &f[14..]
}

/// Whether frame `f` is a sync message: UDP to 224.0.0.81:8848.
fn is_sync(f: &[u8]) -> bool {
    f.len() > 42 && f[23] == 17 && f[30..34] == [224, 0, 0, 81] && f[36..38] == 8848u16.to_be_bytes()
}

/// Runs the master over `master_input()`: (its output frames on the LAN
/// port, the sync messages among them, the switch).
fn run_master(backend: Backend) -> (Vec<Frame>, Vec<Frame>, Switch) {
    let daemon = "--start-daemon master --mcast-interface lan --syncid 7 --sync-maxlen 400";
    let mut sw = switch(backend, &conf(daemon, ("02:00:00:00:01:01", "10.1.1.1"), false));
    let mut sink = MemorySink::default();
    let input = Input::frames(1, master_input());
    replay(&mut sw, vec![input], &mut sink, ReplayOptions { progress: false, trace: None }).expect("replay");
    let lan = sink.ports.remove(&2).unwrap_or_default();
    let sync = lan.iter().filter(|f| is_sync(&f.data)).cloned().collect();
    (lan, sync, sw)
}

#[test]
fn the_master_packs_its_connections_into_messages_as_the_kernel_does() {
    let (_, sync, sw) = run_master(Backend::Jit);
    // 20 TCP conns + the UDP conn + 3 template offers = 24 records of 36
    // bytes; 400-byte messages hold 10 (8 + 10 * 36 = 368): 10, 10, 4.
    let counts: Vec<u8> = sync.iter().map(|f| ip_of(&f.data)[28 + 4]).collect();
    assert_eq!(counts, vec![10, 10, 4], "records per message");
    for f in &sync {
        let ip = ip_of(&f.data);
        let msg = &ip[28..];
        assert_eq!(&f.data[0..6], &[0x01, 0x00, 0x5e, 0, 0, 81], "the group's multicast MAC");
        assert_eq!(&f.data[6..12], &[2, 0, 0, 0, 1, 1], "from the LAN port's MAC");
        assert_eq!(&ip[12..16], &[10, 1, 1, 1], "from the LAN port's address");
        assert_eq!((ip[8], ip[6] & 0x40), (1, 0), "TTL 1, DF clear");
        assert_eq!((msg[0], msg[1], msg[5]), (0, 7, 1), "v1 header, syncid 7");
        assert_eq!(usize::from(u16::from_be_bytes([msg[2], msg[3]])), msg.len(), "size field");
        assert!(msg.len() <= 400);
    }
    // The full ones leave with the packet that filled them; the last one
    // 2 s after its first record, i.e. with the late SYN.
    let last_input = master_input().last().unwrap().ts_ns;
    assert!(sync[0].ts_ns < T0 + SEC && sync[1].ts_ns < T0 + SEC, "full messages at once");
    assert_eq!(sync[2].ts_ns, last_input, "the partly filled one after 2 s");
    let d = sw.externs().director().unwrap();
    assert_eq!((d.sync.stats.sent_messages, d.sync.stats.sent_records), (3, 24));
    let report = sw.report();
    let section = report.split("\nIPVS sync daemons\n").nth(1).expect("the report's sync section");
    assert!(section.starts_with("master sync daemon (mcast=lan, syncid=7,"), "{section}");
    let row =
        |name: &str| section.lines().find(|l| l.trim_start().starts_with(name)).map(|l| l.split_whitespace().last());
    assert_eq!((row("messages sent"), row("records sent")), (Some(Some("3")), Some(Some("24"))), "{section}");
    assert_eq!(
        d.list("-L --daemon").unwrap(),
        vec!["master sync daemon (mcast=lan, syncid=7, maxlen=400, group=224.0.0.81, port=8848, ttl=1)"]
    );
}

/// tshark (its IP, UDP and IPVS-sync dissectors) reads the master's
/// messages: checksums good, every record's addresses, ports and state.
#[test]
fn tshark_reads_the_sync_messages() {
    let (_, sync, _) = run_master(Backend::Jit);
    let dir = std::env::temp_dir().join(format!("p4lite-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("sync.pcap");
    write_pcap(&pcap, &sync).expect("the capture is written");
    let o = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"])
        .args(["-T", "fields", "-E", "separator=;", "-E", "aggregator=,"])
        .args(["-e", "ip.checksum.status", "-e", "udp.checksum.status", "-e", "ipvs.syncid"])
        .args(["-e", "ipvs.conncount", "-e", "ipvs.caddr", "-e", "ipvs.vaddr", "-e", "ipvs.daddr"])
        .args(["-e", "ipvs.cport", "-e", "ipvs.state", "-e", "ipvs.proto"])
        .output()
        .expect("tshark runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(o.status.success(), "tshark: {}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(';').collect()).collect();
    assert_eq!(rows.len(), 3, "{text}");
    let mut tcp_clients = Vec::new();
    for r in &rows {
        // 1: Wireshark's PROTO_CHECKSUM_E_GOOD.
        assert_eq!((r[0], r[1], r[2]), ("1", "1", "7"), "checksums good, syncid 7: {r:?}");
        let n: usize = r[3].parse().unwrap();
        let col = |i: usize| r[i].split(',').collect::<Vec<&str>>();
        let (caddr, vaddr, daddr, cport, state, proto) = (col(4), col(5), col(6), col(7), col(8), col(9));
        assert_eq!([caddr.len(), vaddr.len(), daddr.len(), state.len(), proto.len()], [n; 5], "{r:?}");
        for i in 0..n {
            assert_eq!(vaddr[i], "198.51.100.10");
            if proto[i] == "0x06" {
                // ESTABLISHED (1), client port 40000, a real server.
                assert_eq!((state[i], cport[i]), ("0x0001", "40000"), "{r:?}");
                assert!(["10.1.1.21", "10.1.1.22"].contains(&daddr[i]), "{r:?}");
                tcp_clients.push(caddr[i].to_string());
            } else {
                assert_eq!((proto[i], caddr[i], daddr[i]), ("0x11", "203.0.113.100", "10.1.1.21"), "{r:?}");
            }
        }
    }
    tcp_clients.sort();
    let mut want: Vec<String> = (1..=CLIENTS).map(|c| format!("203.0.113.{c}")).collect();
    want.sort();
    assert_eq!(tcp_clients, want, "every TCP conn once");
}

/// The `drops` counter's packets at `cell`.
fn drops(sw: &Switch, cell: u64) -> u64 {
    sw.externs().counter("drops").and_then(|c| c.read(cell as usize)).map_or(0, |(packets, _)| packets)
}

/// Where the switch sends a client's packet: the IPv4 destination of its
/// output, if forwarded.
fn forward(sw: &mut Switch, data: &[u8], ts: u64) -> Option<Ipv4Addr> {
    let mut out = Vec::new();
    match sw.process(1, data, ts, &mut out) {
        Outcome::Forwarded => out.first().map(|o| Ipv4Addr::new(o.data[30], o.data[31], o.data[32], o.data[33])),
        _ => None,
    }
}

#[test]
fn a_backup_takes_the_connections_and_forwards_them_as_the_master_did() {
    for backend in [Backend::Jit, Backend::Interp] {
        let (lan, sync, _) = run_master(backend);
        // Where the master sent each client: its conns' real servers.
        let master_rs: Vec<(u8, Ipv4Addr)> = lan
            .iter()
            .filter(|f| !is_sync(&f.data) && f.data[23] == 6 && f.data[47] == 0x02)
            .map(|f| {
                let ip = ip_of(&f.data);
                (ip[15], Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]))
            })
            .collect();
        assert_eq!(master_rs.len(), usize::from(CLIENTS) + 1, "{backend:?}: every SYN forwarded");

        let daemon = "--start-daemon backup --mcast-interface lan --syncid 7";
        let mut b = switch(backend, &conf(daemon, ("02:00:00:00:01:02", "10.1.1.2"), true));
        let now = T0 + 10 * SEC;
        for (i, f) in sync.iter().enumerate() {
            let mut out = Vec::new();
            let outcome = b.process(2, &f.data, now + i as u64 * MS, &mut out);
            assert!(matches!(outcome, Outcome::Dropped(_)) && out.is_empty(), "{backend:?}: delivered, not forwarded");
        }
        assert_eq!(drops(&b, DROP_SYNC), 3, "{backend:?}");
        let d = b.externs().director().unwrap();
        let st = d.sync.stats;
        assert_eq!((st.received_messages, st.created, st.updated, st.unbound), (3, 22, 2, 0), "{backend:?}: {st:?}");
        let lnc = d.list("-Lnc").unwrap();
        let established = lnc.iter().filter(|l| l.contains("ESTABLISHED")).count();
        assert_eq!(established, usize::from(CLIENTS), "{backend:?}:\n{}", lnc.join("\n"));
        // The UDP conn and its template (60 s, no reply seen: NONE).
        assert!(lnc.iter().any(|l| l.starts_with("UDP 05:00  UDP ")), "{backend:?}: the UDP conn");
        assert!(
            lnc.iter().any(|l| l.starts_with("UDP 01:00  NONE        203.0.113.100:0 ")),
            "{backend:?}: the template"
        );
        // The backup's accounting: the real servers' ActiveConn columns.
        let ln = d.list("-Ln").unwrap().join("\n");
        let active: u32 = ln
            .lines()
            .filter(|l| l.contains("-> 10.1.1.2"))
            .filter_map(|l| l.split_whitespace().nth(4)?.parse::<u32>().ok())
            .sum();
        assert_eq!(active, u32::from(CLIENTS), "{backend:?}:\n{ln}");

        // The clients' next packets go where the master sent them (the
        // backup's own rr, its list reversed, would pick the other one).
        for &(c, rs) in master_rs.iter().filter(|(c, _)| *c <= CLIENTS) {
            assert_eq!(forward(&mut b, &tcp(c, 0x18), now + SEC), Some(rs), "{backend:?}: client {c}");
        }
    }
}

#[test]
fn a_backup_ignores_another_syncid_and_a_bad_checksum() {
    let (_, sync, _) = run_master(Backend::Jit);
    let daemon = "--start-daemon backup --mcast-interface lan --syncid 8";
    let mut b = switch(Backend::Jit, &conf(daemon, ("02:00:00:00:01:02", "10.1.1.2"), false));
    for f in &sync {
        b.process(2, &f.data, T0, &mut Vec::new());
    }
    let st = b.externs().director().unwrap().sync.stats;
    assert_eq!((st.received_messages, st.ignored_messages, st.created), (3, 3, 0));
    assert_eq!(drops(&b, DROP_SYNC), 3);
    // One bit of the payload flipped: the UDP checksum fails and the host
    // stack (absent) would drop it; the daemon never sees it.
    let daemon = "--start-daemon backup --mcast-interface lan";
    let mut b = switch(Backend::Jit, &conf(daemon, ("02:00:00:00:01:02", "10.1.1.2"), false));
    let mut bad = sync[0].data.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    b.process(2, &bad, T0, &mut Vec::new());
    assert_eq!((drops(&b, DROP_SYNC), drops(&b, DROP_FOR_DIRECTOR)), (0, 1));
    assert_eq!(b.externs().director().unwrap().sync.stats.received_messages, 0);
    // On another port than the daemon's: not for it either.
    b.process(1, &sync[0].data, T0, &mut Vec::new());
    assert_eq!((drops(&b, DROP_SYNC), drops(&b, DROP_FOR_DIRECTOR)), (0, 2));
}

#[test]
fn daemons_start_stop_and_refuse_as_ipvsadm_says() {
    let base = conf("", ("02:00:00:00:01:01", "10.1.1.1"), false);
    let mut sw = switch(Backend::Interp, &base);
    let err = |sw: &mut Switch, line: &str| -> String {
        match load_into_switch(sw, line, "ctl") {
            Ok(_) => panic!("`{line}` was applied"),
            Err(e) => e.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "),
        }
    };
    assert_eq!(err(&mut sw, "--stop-daemon master"), "No daemon is running");
    assert!(err(&mut sw, "--start-daemon master --mcast-interface eth9").starts_with("No such device"));
    assert!(err(&mut sw, "--start-daemon master --mcast-interface lan --sync-maxlen 1473").contains("MTU 1500"));
    load_into_switch(&mut sw, "--start-daemon master --mcast-interface lan", "ctl").expect("starts");
    load_into_switch(&mut sw, "--start-daemon backup --mcast-interface wan --sync-maxlen 100", "ctl").expect("starts");
    assert_eq!(err(&mut sw, "--start-daemon master --mcast-interface wan"), "Daemon has already run");
    let d = sw.externs().director().unwrap();
    assert_eq!(
        d.list("-L --daemon").unwrap(),
        vec![
            "master sync daemon (mcast=lan, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)",
            "backup sync daemon (mcast=wan, syncid=0, maxlen=1024, group=224.0.0.81, port=8848, ttl=1)",
        ]
    );
    // A network without the master's port is refused, with its line.
    let e = err(&mut sw, "port 1 name wan mac 02:00:00:00:00:01 addr 192.0.2.1/24");
    assert!(e.contains("master sync daemon's interface `lan'"), "{e}");
    load_into_switch(&mut sw, "--stop-daemon master", "ctl").expect("stops");
    assert_eq!(sw.externs().director().unwrap().list("-L --daemon").unwrap().len(), 1);
}
