//! The IPVS director `programs/lb.p4lite` on one core, in memory: the
//! established-connection NAT fast path (JIT, interpreter and a hand-written
//! Rust equivalent over the same `ConnTable`) at 64K, 1M and 4M concurrent
//! connections, new connections per second (SYN → wlc over 100 real
//! servers → insert), the schedulers alone, and the connection table's bytes
//! per connection. One run measures everything:
//!
//! `cargo bench --bench lb` (results and the machine: BENCHMARKS.md).
//!
//! Setup (`lb_conf`): port 1 faces the clients (VIP 198.51.100.10, default
//! route via 192.0.2.254), port 2 the real servers' LAN 10.1.0.0/16; one
//! VS/NAT service 198.51.100.10:80, wlc, 100 real servers 10.1.2.1–100:8080
//! with weights 1–4, each with a neighbour entry.
//!
//! Replies: the real servers' answers on the same connections, in the same
//! order (real server → client, ACK|PSH, 10 bytes of payload, into port 2):
//! `conn_table.lookup_out`, the source rewritten back to the virtual address
//! and port, checksums, routed to the gateway; JIT only.
//!
//! Fast path: for each of N clients (distinct address:port) a SYN and then an
//! ACK go through the switch (so the connections are ESTABLISHED, 900 s
//! timeout); then 64-byte data frames (ACK|PSH, 10 bytes of payload, valid
//! checksums), one per connection, in a shuffled order, are replayed in a loop
//! through `Switch::process_in_place` (packet time advancing 10 ns per
//! packet), each packet's hint pass run `HINT_DISTANCE` (12) packets ahead
//! with `Switch::hint`, as replay does (the program's `conns.prefetch` in
//! its parser). Every one is forwarded to the real server: connection lookup,
//! NAT rewrite, TTL, checksums, routing, neighbour and port MACs.
//! The hand-written director does the same work per packet on a copy of
//! the JIT switch's director state (the same `ConnTable` and `Services`): copy
//! the frame, parse Ethernet/IPv4/TCP with the program's checks (the IPv4
//! header checksum and total length, the frame addressed to the ingress
//! port's MAC address, no martian address), match the
//! service, advance the director's timers, `ConnTable::lookup_in_brief` (what
//! the `conn_table.lookup_in` extern calls), count the
//! packet in the dest's statistics, route (connected /16 or default route),
//! neighbour (a 256-entry array) and port MACs, MTU and TTL checks, rewrite
//! the destination address and port, TTL − 1, incremental IPv4 and TCP
//! checksums, both MACs, cut any Ethernet padding (the frame leaves at its
//! IP length), and count per-port traffic; and it gives the
//! connection table the same prefetch hint as the switch's hint pass, for
//! the frame `HINT_DISTANCE` ahead (the client's address and port read at
//! their fixed offsets).
//!
//! New connections: 1M distinct SYNs replayed in a loop with packet time
//! advancing 100 µs per packet, so a SYN_RECV connection (60 s) has expired
//! before its client's next SYN: the table stays at about 600K connections and
//! each SYN is looked up (miss), scheduled (wlc: a scan of the 100 dests),
//! inserted, and one old connection expires. One warm-up pass first.
//!
//! Each figure is the median of several repetitions of ~0.2 s, after one
//! untimed pass over the set ([`warm_up`]) for the fast path (the JIT and
//! the hand-written director take turns, a repetition of each, so the
//! shared machine's load falls on both alike; their ratio is the median of
//! the per-repetition ratios); before timing,
//! the bench checks that every engine produces the same bytes for the same
//! packets. `LB_BENCH_QUICK=1` measures only 64K; `LB_BENCH_ONLY=prefix`
//! only the measurements whose name starts with it (`jit`, `hand-written`,
//! `interpreter`, `new conns: jit`, ...); `LB_BENCH_ROUNDS=N` runs N packets
//! per measurement untimed instead (callgrind: N = 0 and N = 100000, the
//! difference / 100000 is instructions per packet; the new-connection
//! measurement then skips its warm-up pass unless `LB_BENCH_WARM=1` is set,
//! and so sees a growing table that expires nothing). `LB_BENCH_ASM=1`
//! prints the machine code of the pipeline the fast path runs. Without `--bench`
//! (`cargo test --all-targets`) it only smoke-tests itself at 1K connections.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use p4lite_compiler::ir::Program;
use p4lite_compiler::rng::Rng;
use p4lite_compiler::span::Sources;
use p4lite_runtime::externs::ipvs::{self as ipvs_ext, Packet, IPVS_HIT};
use p4lite_runtime::ipvs::conn::{InBrief, InLookup, Tuple};
use p4lite_runtime::ipvs::director::{load_into_switch, Director};
use p4lite_runtime::ipvs::sched::{PacketInfo, SchedKind};
use p4lite_runtime::ipvs::service::FwdMethod;
use p4lite_runtime::switch::{Backend, Outcome, Switch, SwitchOptions, HINT_DISTANCE};

const REPETITIONS: usize = 7;
/// Run without `--bench` (`cargo test --all-targets`): 1K connections and
/// 1000 untimed packets per measurement, a smoke test of the bench itself.
static SMOKE: AtomicBool = AtomicBool::new(false);
const TARGET_REP_TIME: Duration = Duration::from_millis(200);
/// Bytes per stored frame (every frame is 64 bytes).
const FRAME: usize = 64;
const PAYLOAD: usize = FRAME - 54;
const VIP: u32 = 0xC633_640A; // 198.51.100.10
const VPORT: u16 = 80;
const RPORT: u16 = 8080;
const REAL_SERVERS: u32 = 100;
const PORT1_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const PORT2_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
/// Packet time of the first SYN, then of the first data packet (ns).
const T_SETUP: u64 = 1_000_000_000;
const T_DATA: u64 = 2_000_000_000;

/// `programs/lb.p4lite`, or the variant `LB_BENCH_PROGRAM` names (for
/// measuring what a change to the program costs, in the same binary).
fn program() -> Program {
    let path = std::env::var("LB_BENCH_PROGRAM")
        .unwrap_or_else(|_| format!("{}/programs/lb.p4lite", env!("CARGO_MANIFEST_DIR")));
    let text = std::fs::read_to_string(&path).expect("program readable");
    p4lite_compiler::compile(&Sources::new(path.clone(), text)).ir.unwrap_or_else(|| panic!("{path} compiles"))
}

fn rs_addr(i: u32) -> u32 {
    0x0A01_0201 + i // 10.1.2.1 ..
}

/// The director's configuration with scheduler `sched` (module docs).
fn lb_conf(sched: &str) -> String {
    let mut c = String::from(
        "port 1 name wan mac 02:00:00:00:00:01 addr 192.0.2.1/24 addr 198.51.100.10/32\n\
         port 2 name lan mac 02:00:00:00:01:01 addr 10.1.0.1/16\n\
         neigh 192.0.2.254 mac 02:00:00:00:00:fe\n\
         route default via 192.0.2.254\n",
    );
    for i in 0..REAL_SERVERS {
        c += &format!("neigh {} mac 02:00:00:00:02:{:02x}\n", Ipv4Addr::from(rs_addr(i)), i + 1);
    }
    c += &format!("-A -t 198.51.100.10:{VPORT} -s {sched}\n");
    for i in 0..REAL_SERVERS {
        c += &format!("-a -t 198.51.100.10:{VPORT} -r {}:{RPORT} -m -w {}\n", Ipv4Addr::from(rs_addr(i)), 1 + i % 4);
    }
    c
}

/// Client `i` of a set: a distinct address and port (16 ports per address).
fn client(base: u32, i: u32) -> (u32, u16) {
    (base + (i >> 4), 20000 + (i & 15) as u16 * 7)
}

/// Fast-path clients live in 100.64.0.0/10, new-connection clients in 100.128/10... (distinct).
const CLIENTS_EST: u32 = 0x6440_0000;
const CLIENTS_NEW: u32 = 0x6480_0000;

/// One's-complement sum of big-endian 16-bit words.
fn sum16(data: &[u8], mut sum: u32) -> u32 {
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Writes a 64-byte client → VIP TCP frame with valid checksums into `f`.
fn write_frame(f: &mut [u8], saddr: u32, sport: u16, flags: u8, seq: u32) {
    write_tcp(f, (PORT1_MAC, GW_MAC), (saddr, sport), (VIP, VPORT), flags, seq);
}

/// Writes a 64-byte Ethernet/IPv4/TCP frame `src` → `dst` (address, port)
/// with MACs `(dst, src)` and valid checksums into `f`.
fn write_tcp(f: &mut [u8], macs: ([u8; 6], [u8; 6]), src: (u32, u16), dst: (u32, u16), flags: u8, seq: u32) {
    let ((saddr, sport), (daddr, dport)) = (src, dst);
    f[..6].copy_from_slice(&macs.0);
    f[6..12].copy_from_slice(&macs.1);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let total = (20 + 20 + PAYLOAD) as u16;
    f[14..34].copy_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[18..20].copy_from_slice(&(seq as u16).to_be_bytes());
    f[26..30].copy_from_slice(&saddr.to_be_bytes());
    f[30..34].copy_from_slice(&daddr.to_be_bytes());
    let c = !fold(sum16(&f[14..34], 0));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let t = &mut f[34..];
    t[..4].copy_from_slice(&[(sport >> 8) as u8, sport as u8, (dport >> 8) as u8, dport as u8]);
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&(if flags & ACK != 0 { 0x1000_0001u32 } else { 0 }).to_be_bytes());
    t[12..20].copy_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    let payload_len = if flags & SYN != 0 { 0 } else { PAYLOAD };
    for (k, b) in t[20..20 + PAYLOAD].iter_mut().enumerate() {
        *b = if payload_len > 0 { b'a' + k as u8 } else { 0 };
    }
    // Pseudo header: addresses, protocol, TCP length.
    let tcp_len = (20 + PAYLOAD) as u32;
    let pseudo = sum16(&f[26..34], 6 + tcp_len);
    let c = !fold(sum16(&f[34..34 + tcp_len as usize], pseudo));
    f[50..52].copy_from_slice(&c.to_be_bytes());
}

/// A switch with `lb.conf` loaded whose table holds at least `conns` entries.
fn lb_switch(backend: Backend, conns: usize) -> Switch {
    let mut sw = Switch::new(program(), SwitchOptions { backend, trace: false }).expect("switch builds");
    load_into_switch(&mut sw, &lb_conf("wlc"), "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
    let d = sw.externs_mut().director_mut().expect("director");
    let mut cfg = d.conns.config().clone();
    if cfg.max_conns != 0 && (cfg.max_conns as usize) < conns {
        // lb.p4lite declares conn_table(1048576); the 4M run needs more.
        cfg.max_conns = conns as u32;
        d.conns.set_config(cfg);
    }
    sw
}

/// Establishes `n` connections through the switch: SYN, then ACK, per client.
fn establish(sw: &mut Switch, n: u32) {
    let mut f = [0u8; FRAME];
    for i in 0..n {
        let (a, p) = client(CLIENTS_EST, i);
        let ts = T_SETUP + u64::from(i) * 10;
        write_frame(&mut f, a, p, SYN, 1);
        assert!(matches!(sw.process_in_place(1, &f, ts).outcome, Outcome::Forwarded), "SYN {i} forwarded");
        write_frame(&mut f, a, p, ACK, 2);
        assert!(matches!(sw.process_in_place(1, &f, ts + 5).outcome, Outcome::Forwarded), "ACK {i} forwarded");
    }
    let d = sw.externs().director().expect("director");
    assert_eq!(d.conns.len(), n as usize, "every connection established");
}

/// Data frames of clients `0..n` of `base` (one each) in a shuffled order.
fn data_frames(base: u32, n: u32, flags: u8) -> Vec<u8> {
    let mut order: Vec<u32> = (0..n).collect();
    let mut r = Rng::new(0x1B5_EED ^ u64::from(n));
    if flags & SYN == 0 {
        for i in (1..order.len()).rev() {
            order.swap(i, (r.next() % (i as u64 + 1)) as usize);
        }
    }
    let mut frames = vec![0u8; n as usize * FRAME];
    for (k, &i) in order.iter().enumerate() {
        let (a, p) = client(base, i);
        write_frame(&mut frames[k * FRAME..(k + 1) * FRAME], a, p, flags, 100 + i);
    }
    frames
}

/// The real servers' replies to the client frames `frames` (the same
/// connections in the same order): real server → client, ACK|PSH with 10
/// bytes of payload, into port 2; `d` holds the connections.
fn reply_frames(d: &Director, frames: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; frames.len()];
    for (f, r) in frames.chunks(FRAME).zip(out.chunks_mut(FRAME)) {
        let (caddr, cport) = (be32(f, 26), be16(f, 34));
        let t = Tuple { proto: 6, saddr: caddr, sport: cport, daddr: VIP, dport: VPORT };
        let c = d.conns.find_in_conn(&t).expect("the client's connection");
        write_tcp(r, (PORT2_MAC, [2, 0, 0, 0, 2, 1]), (c.daddr, c.dport), (caddr, cport), ACK | PSH, be32(f, 38));
    }
    out
}

/// The hand-written director (module docs) over its own `Director`.
struct Native {
    d: Director,
    /// The virtual service's id (what `set_service` gives the program).
    service: u16,
    buf: Vec<u8>,
    /// Where the packet starts in `buf`: at least `HEADROOM`, 64-byte
    /// aligned, as the switch aligns its packets (so neither copy straddles
    /// a page or a cache line more than the other's).
    start: usize,
    /// Neighbours by the address's last byte: (address, MAC).
    neigh: [(u32, [u8; 6]); 256],
    port_mac: [[u8; 6]; 4],
    /// The director's own addresses (the ports' and the VIP): a source
    /// that is one of them is martian.
    own: [u32; 3],
    mtu: u16,
    gw: u32,
    rx: [u64; 512],
    tx: [u64; 512],
}

/// The first offset of `buf` at or after `HEADROOM` whose address is 64-byte aligned.
fn aligned_start(buf: &[u8]) -> usize {
    let at = buf.as_ptr() as usize + HEADROOM;
    HEADROOM + (64 - at % 64) % 64
}

const HEADROOM: usize = 64;

/// RFC 1624 eqn. 3 over whole 16-bit words: HC' = ~(~HC + ~m + m').
#[inline(always)]
fn csum_replace(csum: u16, old: &[u16], new: &[u16]) -> u16 {
    let mut sum = u32::from(!csum);
    for &w in old {
        sum += u32::from(!w);
    }
    for &w in new {
        sum += u32::from(w);
    }
    !fold(sum)
}

/// The RFC 1071 checksum of an options-free IPv4 header (0 when it is right).
#[inline(always)]
fn ipv4_header_csum(h: &[u8]) -> u16 {
    let sum: u32 = h[..20].chunks_exact(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    !fold(sum)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Native {
    fn new(d: Director) -> Native {
        let mut neigh = [(0u32, [0u8; 6]); 256];
        for i in 0..REAL_SERVERS {
            let a = rs_addr(i);
            neigh[(a & 0xff) as usize] = (a, [2, 0, 0, 0, 2, (i + 1) as u8]);
        }
        let gw = 0xC000_02FE; // 192.0.2.254
        neigh[0xfe] = (gw, GW_MAC);
        let service = d.lb.services.services().next().map_or(0, |s| s.id.0 as u16);
        let mut n = Native {
            d,
            service,
            start: 0,
            buf: vec![0; HEADROOM + 64 + 2048],
            neigh,
            port_mac: [[0; 6], PORT1_MAC, PORT2_MAC, [0; 6]],
            own: [0xC000_0201, VIP, 0x0A01_0001], // 192.0.2.1, the VIP, 10.1.0.1
            mtu: 1500,
            gw,
            rx: [0; 512],
            tx: [0; 512],
        };
        n.start = aligned_start(&n.buf);
        n
    }

    /// Runs one client packet; the egress port and output bytes, or `None`
    /// when it would not be NAT-forwarded (the bench sends none such).
    #[inline(never)]
    fn process(&mut self, port: u16, data: &[u8], ts: u64) -> Option<(u16, &[u8])> {
        self.rx[usize::from(port) & 511] += 1;
        let len = data.len();
        let pkt = &mut self.buf[self.start..self.start + len];
        pkt.copy_from_slice(data);
        // Timers run with every packet, as in the switch.
        self.d.advance(ts);
        if len < 54 || pkt[12..14] != [0x08, 0x00] || pkt[14] != 0x45 || be16(pkt, 20) & 0x1fff != 0 || pkt[23] != 6 {
            return None;
        }
        // The program's link-layer check: to this port's MAC address.
        if pkt[0..6] != self.port_mac[usize::from(port) & 3] {
            return None;
        }
        // The program's ip_rcv checks: the header checksum, the total length.
        let total_len = be16(pkt, 16);
        if ipv4_header_csum(&pkt[14..34]) != 0 || total_len < 20 || usize::from(total_len) + 14 > len {
            return None;
        }
        let (saddr, daddr) = (be32(pkt, 26), be32(pkt, 30));
        // The program's martian checks (Linux's routing).
        let (src_net, dst_net) = (saddr >> 24, daddr >> 24);
        if src_net >> 4 == 0xE || saddr == u32::MAX || dst_net >> 4 == 0xE || daddr == u32::MAX {
            return None;
        }
        if src_net == 0 || src_net == 127 || dst_net == 0 || dst_net == 127 || self.own.contains(&saddr) {
            return None;
        }
        let (sport, dport, flags) = (be16(pkt, 34), be16(pkt, 36), pkt[47]);
        // The one virtual service.
        if daddr != VIP || dport != VPORT {
            return None;
        }
        let p = Packet { proto: 6, saddr, sport, daddr, dport, tcp_flags: flags, l3_len: len as u64 - 14, now_ns: ts };
        let Director { lb, conns, .. } = &mut self.d;
        let t = Tuple { proto: 6, saddr, sport, daddr, dport };
        let (raddr, rport) = match conns.lookup_in_brief(&mut lb.services, &t, flags, ts) {
            InBrief::Hit(c) => {
                if let Some(dest) = c.dest {
                    lb.services.count_in(dest, p.l3_len);
                }
                if c.fwd != FwdMethod::Masq {
                    return None; // not masquerading
                }
                (c.daddr, c.dport)
            }
            InBrief::Miss(_) => {
                let r = ipvs_ext::schedule(&mut self.d, self.service, &p);
                if r.code != IPVS_HIT || r.fwd != 0 {
                    return None;
                }
                (r.raddr, r.rport)
            }
            InBrief::Drop => return None,
        };
        // Route: the LAN is connected (10.1.0.0/16, port 2), the rest goes to the gateway.
        let (egress, nhop) = if raddr >> 16 == 0x0A01 { (2u16, raddr) } else { (1, self.gw) };
        let (n_addr, dmac) = self.neigh[(nhop & 0xff) as usize];
        if n_addr != nhop || pkt[22] <= 1 || total_len > self.mtu {
            return None;
        }
        // NAT: destination address and port, checksums incrementally.
        let tcp_csum = csum_replace(
            be16(pkt, 50),
            &[(daddr >> 16) as u16, daddr as u16, dport],
            &[(raddr >> 16) as u16, raddr as u16, rport],
        );
        pkt[50..52].copy_from_slice(&tcp_csum.to_be_bytes());
        pkt[36..38].copy_from_slice(&rport.to_be_bytes());
        pkt[30..34].copy_from_slice(&raddr.to_be_bytes());
        let ttl_proto = be16(pkt, 22);
        pkt[22] -= 1;
        let ip_csum = csum_replace(
            be16(pkt, 24),
            &[(daddr >> 16) as u16, daddr as u16, ttl_proto],
            &[(raddr >> 16) as u16, raddr as u16, ttl_proto - 0x100],
        );
        pkt[24..26].copy_from_slice(&ip_csum.to_be_bytes());
        pkt[0..6].copy_from_slice(&dmac);
        pkt[6..12].copy_from_slice(&self.port_mac[usize::from(egress)]);
        self.tx[usize::from(egress)] += 1;
        // The frame leaves at its IP length: Ethernet padding is cut, as the
        // program cuts it (ip_rcv's trim).
        let out = usize::from(total_len) + 14;
        Some((egress, &self.buf[self.start..self.start + out]))
    }
}

/// Whether `LB_BENCH_ONLY` (if set) selects the measurement `name`.
fn selected(name: &str) -> bool {
    std::env::var("LB_BENCH_ONLY").map_or(true, |only| name.starts_with(&only))
}

/// One untimed pass of `n` packets through `run` before measurement `name`
/// (when it is selected and timed): the first pass after building a table
/// of millions of connections runs at times at half speed (the kernel
/// still settling the fresh memory), which would otherwise land in the
/// first repetitions.
fn warm_up(name: &str, run: &mut impl FnMut(usize), n: usize) {
    let timed = std::env::var("LB_BENCH_ROUNDS").is_err() && !SMOKE.load(Ordering::Relaxed);
    if timed && selected(name) {
        run(n);
    }
}

/// Median packets/s of `run(count)`, which processes the next `count`
/// packets of its set; prints a line and returns the median.
fn measure(name: &str, mut run: impl FnMut(usize)) -> f64 {
    if !selected(name) {
        return 0.0;
    }
    let rounds = std::env::var("LB_BENCH_ROUNDS").ok().and_then(|v| v.parse::<usize>().ok());
    if let Some(rounds) = rounds.or(SMOKE.load(Ordering::Relaxed).then_some(1000)) {
        run(rounds);
        println!("{name:<34} ran {rounds} packets untimed");
        return 0.0;
    }
    let count = calibrate(&mut run);
    let rates: Vec<f64> = (0..REPETITIONS).map(|_| rate(&mut run, count)).collect();
    report(name, &rates, count)
}

/// Packets per repetition so one takes about [`TARGET_REP_TIME`].
fn calibrate(run: &mut impl FnMut(usize)) -> usize {
    let mut count = 10_000;
    loop {
        let t = Instant::now();
        run(count);
        let e = t.elapsed();
        if e >= TARGET_REP_TIME / 4 {
            return ((count as f64) * TARGET_REP_TIME.as_secs_f64() / e.as_secs_f64()) as usize;
        }
        count *= 4;
    }
}

/// Packets per second of one repetition of `count` packets.
fn rate(run: &mut impl FnMut(usize), count: usize) -> f64 {
    let t = Instant::now();
    run(count);
    count as f64 / t.elapsed().as_secs_f64()
}

/// Prints a measurement's line and returns its median rate.
fn report(name: &str, rates: &[f64], count: usize) -> f64 {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    println!(
        "{name:<34} {:>7.2} Mpps ({:>7.1} ns/packet; min {:.2}, max {:.2} Mpps; {} packets per repetition)",
        median / 1e6,
        1e9 / median,
        sorted[0] / 1e6,
        sorted[sorted.len() - 1] / 1e6,
        count
    );
    median
}

/// [`measure`] of the JIT switch and the hand-written director taking
/// turns (a repetition of each, then the next), so the shared machine's
/// changing load falls on both alike. Returns both medians and the median
/// of the per-repetition ratios hand-written / jit (0 when either is not
/// measured; with `LB_BENCH_ONLY` or `LB_BENCH_ROUNDS` they run one after
/// the other, as [`measure`] runs them).
fn measure_pair(
    jit_name: &str,
    mut jit: impl FnMut(usize),
    hand_name: &str,
    mut hand: impl FnMut(usize),
) -> (f64, f64, f64) {
    let separate = std::env::var("LB_BENCH_ONLY").is_ok()
        || std::env::var("LB_BENCH_ROUNDS").is_ok()
        || SMOKE.load(Ordering::Relaxed);
    if separate {
        let (j, h) = (measure(jit_name, &mut jit), measure(hand_name, &mut hand));
        return (j, h, if j > 0.0 { h / j } else { 0.0 });
    }
    let (cj, ch) = (calibrate(&mut jit), calibrate(&mut hand));
    let (mut rj, mut rh) = (Vec::new(), Vec::new());
    for _ in 0..REPETITIONS {
        rj.push(rate(&mut jit, cj));
        rh.push(rate(&mut hand, ch));
    }
    let (j, h) = (report(jit_name, &rj, cj), report(hand_name, &rh, ch));
    let mut ratios: Vec<f64> = rh.iter().zip(&rj).map(|(h, j)| h / j).collect();
    ratios.sort_by(f64::total_cmp);
    (j, h, ratios[ratios.len() / 2])
}

/// Replays `frames` through `sw` from a cursor; every packet must be forwarded.
/// `i` wrapped into `0..n` for `i < 2n` (a compare, not a division: it is
/// on the measured path).
fn wrap(i: usize, n: usize) -> usize {
    if i >= n {
        i - n
    } else {
        i
    }
}

fn switch_runner<'a>(sw: &'a mut Switch, frames: &'a [u8], dt: u64, t0: u64) -> impl FnMut(usize) + 'a {
    port_runner(sw, 1, frames, dt, t0)
}

/// [`switch_runner`] with the frames arriving on `port`.
fn port_runner<'a>(sw: &'a mut Switch, port: u16, frames: &'a [u8], dt: u64, t0: u64) -> impl FnMut(usize) + 'a {
    let n = frames.len() / FRAME;
    let (mut cursor, mut ts) = (0usize, t0);
    move |count| {
        let mut forwarded = 0usize;
        for _ in 0..count {
            let f = &frames[cursor * FRAME..(cursor + 1) * FRAME];
            cursor += 1;
            if cursor == n {
                cursor = 0;
            }
            ts += dt;
            // The hint pass of the packet HINT_DISTANCE ahead, as replay does.
            let h = wrap(cursor + HINT_DISTANCE - 1, n);
            sw.hint(&frames[h * FRAME..(h + 1) * FRAME]);
            let p = sw.process_in_place(port, f, ts);
            forwarded += matches!(p.outcome, Outcome::Forwarded) as usize;
            black_box(p.data);
        }
        assert_eq!(forwarded, count, "every packet forwarded");
    }
}

fn native_runner<'a>(nat: &'a mut Native, frames: &'a [u8], dt: u64, t0: u64) -> impl FnMut(usize) + 'a {
    let n = frames.len() / FRAME;
    let (mut cursor, mut ts) = (0usize, t0);
    move |count| {
        let mut forwarded = 0usize;
        for _ in 0..count {
            let f = &frames[cursor * FRAME..(cursor + 1) * FRAME];
            cursor += 1;
            if cursor == n {
                cursor = 0;
            }
            ts += dt;
            // The same hint as the switch's hint pass, HINT_DISTANCE ahead:
            // the client's (protocol, address, port) of an Ethernet/IPv4/TCP frame.
            let h = wrap(cursor + HINT_DISTANCE - 1, n);
            let g = &frames[h * FRAME..(h + 1) * FRAME];
            let caddr = u32::from_be_bytes([g[26], g[27], g[28], g[29]]);
            nat.d.conns.prefetch(g[23], caddr, u16::from_be_bytes([g[34], g[35]]));
            forwarded += black_box(nat.process(1, f, ts)).is_some() as usize;
        }
        assert_eq!(forwarded, count, "every packet forwarded");
    }
}

/// Checks that the engines give the same output for the first `k` frames (at
/// the same packet times), then returns.
fn check_same(sws: &mut [&mut Switch], nat: &mut Native, frames: &[u8], k: usize, t0: u64) {
    for i in 0..k.min(frames.len() / FRAME) {
        let f = &frames[i * FRAME..(i + 1) * FRAME];
        let ts = t0 + i as u64;
        let want = nat.process(1, f, ts).map(|(p, d)| (p, d.to_vec())).expect("hand-written forwards");
        for sw in sws.iter_mut() {
            let backend = sw.backend();
            let p = sw.process_in_place(1, f, ts);
            assert!(matches!(p.outcome, Outcome::Forwarded), "{:?} forwards frame {i}: {:?}", backend, p.outcome);
            assert_eq!((p.ports, p.data), (&[want.0][..], &want.1[..]), "{:?} frame {i}", backend);
        }
    }
}

fn bytes_per_conn(d: &Director) -> f64 {
    d.conns.memory_bytes() as f64 / d.conns.len() as f64
}

/// The fast path at `n` connections; returns the jit and hand-written
/// Mpps, their ratio (hand / jit) and the jit's Mpps on the replies.
fn fast_path(n: u32, with_interp: bool) -> (f64, f64, f64, f64) {
    println!("\n== fast path, {n} established connections ==");
    let t = Instant::now();
    let mut jit = lb_switch(Backend::Jit, n as usize);
    establish(&mut jit, n);
    let setup = t.elapsed();
    let only = std::env::var("LB_BENCH_ONLY").unwrap_or_default();
    let with_interp = with_interp && "interpreter".starts_with(&only);
    let mut interp = with_interp.then(|| {
        let mut s = lb_switch(Backend::Interp, n as usize);
        establish(&mut s, n);
        s
    });
    let d = jit.externs().director().expect("director").clone();
    println!(
        "setup: {n} SYN + ACK through the JIT switch in {setup:.2?} ({:.2} M packets/s); table {} entries, {:.1} MiB, {:.1} bytes/conn",
        2.0 * f64::from(n) / setup.as_secs_f64() / 1e6,
        d.conns.len(),
        d.conns.memory_bytes() as f64 / (1 << 20) as f64,
        bytes_per_conn(&d)
    );
    let mut nat = Native::new(d);
    let frames = data_frames(CLIENTS_EST, n, ACK | PSH);
    {
        let mut sws: Vec<&mut Switch> = vec![&mut jit];
        if let Some(s) = interp.as_mut() {
            sws.push(s);
        }
        check_same(&mut sws, &mut nat, &frames, 65536, T_DATA);
    }
    // `LB_BENCH_ASM=1`: the machine code the measured packets run (the
    // pipeline as specialised for the tables' snapshots, and its hint pass).
    if std::env::var_os("LB_BENCH_ASM").is_some() {
        match jit.disassembly() {
            Some(Ok(asm)) => println!("{asm}"),
            other => println!("no disassembly: {other:?}"),
        }
    }
    let t0 = T_DATA + 100_000;
    let (jit_name, hand_name) = (format!("jit ({n})"), format!("hand-written ({n})"));
    let mut run_jit = switch_runner(&mut jit, &frames, 10, t0);
    let mut run_nat = native_runner(&mut nat, &frames, 10, t0);
    warm_up(&jit_name, &mut run_jit, n as usize);
    warm_up(&hand_name, &mut run_nat, n as usize);
    let (j, h, ratio) = measure_pair(&jit_name, &mut run_jit, &hand_name, &mut run_nat);
    drop((run_jit, run_nat));
    // The connection table alone, on the same connections in the same order:
    // `lookup_in` (state transition and timer re-arm) and `find_in_conn`
    // (the hash lookup only).
    let tuples: Vec<Tuple> = frames
        .chunks(FRAME)
        .map(|f| Tuple { proto: 6, saddr: be32(f, 26), sport: be16(f, 34), daddr: VIP, dport: VPORT })
        .collect();
    let (mut cursor, mut ts) = (0usize, t0 + 1_000_000_000);
    let mut next = || {
        let t = tuples[cursor];
        cursor = if cursor + 1 == tuples.len() { 0 } else { cursor + 1 };
        ts += 10;
        (t, ts)
    };
    measure(&format!("table lookup_in ({n})"), |count| {
        for _ in 0..count {
            let (t, ts) = next();
            let Director { lb, conns, .. } = &mut nat.d;
            assert!(matches!(black_box(conns.lookup_in(&mut lb.services, &t, ACK | PSH, ts)), InLookup::Hit(_)));
        }
    });
    measure(&format!("table lookup_in_brief ({n})"), |count| {
        for _ in 0..count {
            let (t, ts) = next();
            let Director { lb, conns, .. } = &mut nat.d;
            assert!(matches!(black_box(conns.lookup_in_brief(&mut lb.services, &t, ACK | PSH, ts)), InBrief::Hit(_)));
        }
    });
    measure(&format!("table find_in_conn ({n})"), |count| {
        for _ in 0..count {
            let (t, _) = next();
            assert!(black_box(nat.d.conns.find_in_conn(&t)).is_some());
        }
    });
    // The real servers' replies (NAT out: `lookup_out`, source back to the
    // virtual address and port), the same connections in the same order.
    let reply_set = reply_frames(&nat.d, &frames);
    let replies_name = format!("jit replies ({n})");
    let mut run_replies = port_runner(&mut jit, 2, &reply_set, 10, t0 + 2_000_000_000);
    warm_up(&replies_name, &mut run_replies, n as usize);
    let replies = measure(&replies_name, run_replies);
    if let Some(s) = interp.as_mut() {
        let i = measure(&format!("interpreter ({n})"), switch_runner(s, &frames, 10, t0));
        if i > 0.0 {
            println!("jit / interpreter: {:.1}x", j / i);
        }
    }
    if j > 0.0 {
        println!("hand-written / jit: {ratio:.2}x (median of per-repetition ratios)");
    }
    (j, h, ratio, replies)
}

/// New connections per second: SYNs of 1M clients replayed with packet time
/// advancing 100 µs per packet (module docs).
fn new_conns() {
    const SET: u32 = 1 << 20;
    const DT: u64 = 100_000;
    println!("\n== new connections: SYN -> lookup miss -> wlc over {REAL_SERVERS} -> insert ({SET} clients, {DT} ns apart) ==");
    let frames = data_frames(CLIENTS_NEW, SET, SYN);
    let mut jit = lb_switch(Backend::Jit, 0);
    let mut nat = {
        let mut d = Director::new(1 << 20);
        d.load(&lb_conf("wlc"), "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        Native::new(d)
    };
    // Same choices for the first SYNs (both start empty), then one warm-up
    // pass each to reach the steady state.
    check_same(&mut [&mut jit], &mut nat, &frames, 1000, T_SETUP);
    let t0 = T_SETUP + 1_000_000;
    let mut run_jit = switch_runner(&mut jit, &frames, DT, t0);
    let mut run_nat = native_runner(&mut nat, &frames, DT, t0);
    // Callgrind runs (`LB_BENCH_ROUNDS`) skip it unless `LB_BENCH_WARM` is
    // set: without it they measure a growing table that expires nothing.
    if std::env::var("LB_BENCH_ROUNDS").is_err() || std::env::var("LB_BENCH_WARM").is_ok() {
        run_jit(SET as usize);
        run_nat(SET as usize);
    }
    let (j, _, ratio) = measure_pair("new conns: jit", &mut run_jit, "new conns: hand-written", &mut run_nat);
    drop((run_jit, run_nat));
    let d = jit.externs().director().expect("director");
    let st = d.conns.stats();
    println!(
        "jit switch: {} conns in the table, {} inserted, {} expired, {} evicted, {} refused",
        d.conns.len(),
        st.inserts,
        st.expired,
        st.evicted_transient + st.evicted_established,
        st.refused
    );
    if j > 0.0 {
        println!("hand-written / jit: {ratio:.2}x (median of per-repetition ratios)");
    }
}

/// `Services::schedule` alone, per algorithm, 100 dests, no connections.
fn schedulers() {
    println!("\n== Services::schedule alone, {REAL_SERVERS} real servers, no connections ==");
    for kind in SchedKind::ALL {
        let mut d = Director::new(0);
        d.load(&lb_conf(kind.name()), "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let id = d.lb.services.services().next().expect("service").id;
        let mut i = 0u32;
        measure(&format!("schedule {}", kind.name()), |count| {
            for _ in 0..count {
                i = i.wrapping_add(1);
                let (a, p) = client(CLIENTS_NEW, i & 0xF_FFFF);
                let info = PacketInfo {
                    saddr: Ipv4Addr::from(a),
                    sport: p,
                    daddr: Ipv4Addr::from(VIP),
                    dport: VPORT,
                    proto: 6,
                };
                assert!(black_box(d.lb.services.schedule(id, &info, 1)).is_some(), "a dest");
            }
        });
    }
}

fn main() {
    // `cargo bench` passes `--bench`; without it (a test run, possibly
    // unoptimized) only a smoke test runs.
    if !std::env::args().any(|a| a == "--bench") {
        SMOKE.store(true, Ordering::Relaxed);
        fast_path(1 << 10, true);
        schedulers();
        return;
    }
    let quick = std::env::var("LB_BENCH_QUICK").is_ok();
    let only = std::env::var("LB_BENCH_ONLY").unwrap_or_default();
    // Whether a measurement group named `group` has anything `LB_BENCH_ONLY` selects.
    let wants = |group: &str| group.starts_with(&only) || only.starts_with(group);
    let t = Instant::now();
    if !(wants("jit") || wants("hand-written") || wants("interpreter") || wants("table")) {
        if wants("new conns") {
            new_conns();
        }
        if wants("schedule") {
            schedulers();
        }
        return;
    }
    let (j64, h64, r64, o64) = fast_path(1 << 16, true);
    if quick {
        return;
    }
    new_conns();
    schedulers();
    let (j1m, h1m, r1m, o1m) = fast_path(1 << 20, false);
    let (j4m, h4m, r4m, o4m) = fast_path(1 << 22, false);
    println!("\n== summary (median Mpps; hand/jit: median of per-repetition ratios) ==");
    println!("connections  jit     hand-written  hand/jit  jit vs 64K  jit replies  replies vs 64K");
    for (n, j, h, r, o) in [("64K", j64, h64, r64, o64), ("1M", j1m, h1m, r1m, o1m), ("4M", j4m, h4m, r4m, o4m)] {
        println!(
            "{n:<12} {:>6.2}  {:>6.2}        {:>5.2}x    {:>5.2}       {:>6.2}       {:>5.2}",
            j / 1e6,
            h / 1e6,
            r,
            j / j64,
            o / 1e6,
            o / o64
        );
    }
    println!("total bench time {:.1?}", t.elapsed());
}
