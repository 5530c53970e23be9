//! Differential test: the Cranelift JIT against the reference interpreter.
//!
//! For every program in `programs/` and `tests/differential_programs/`
//! (`coverage.p4lite` uses the IR constructs the shipped programs do not),
//! two switches (one per backend) get the
//! same control-plane commands and the same packets: well-formed
//! Ethernet/ARP/IPv4/IP-in-IP/TCP/UDP/ICMP packets built here with field
//! values drawn to hit the installed entries, the same packets with random
//! byte flips, truncations and extensions, and pure random bytes. Every
//! packet must give identical outcomes (verdict and drop reason), output
//! ports and bytes, and identical PHV blocks (but for the extern argument
//! array, scratch space); at the end the counter reports
//! (ports, drops, table hits, counters) must be equal. A slice of the packets
//! also runs on traced switches and must give identical trace lines.
//!
//! Both backends zero only the slots the compiler found a packet may read
//! before writing (`flow` module); before each packet the others are
//! filled with a stale byte, and a third switch (the interpreter with every
//! slot zeroed, the semantics) must give the same outcome, bytes, zeroed
//! slots and reports: a slot the analysis missed would leak the byte.
//!
//! A second test runs the same comparison on mutants of those programs
//! (literals, operators, some words and statements changed at random;
//! `jit_matches_interpreter_on_mutants`),
//! programs neither backend was written against.
//!
//! The packet count is `P4LITE_DIFF_PACKETS` (default 100 000 in total,
//! shared by the programs); the PRNG is a fixed-seed xorshift, so a failure
//! reproduces exactly (`P4LITE_DIFF_SEED` picks other seeds, for long runs
//! that should cover new ground). On a mismatch the test prints the program, the packet
//! number and the packet in hex.

use std::fmt::Write as _;
use std::path::Path;

use p4lite_compiler::ir::Program;
use p4lite_compiler::rng::Rng;
use p4lite_compiler::span::Sources;
use p4lite_runtime::switch::{Backend, OutPacket, Switch, SwitchOptions};
use p4lite_runtime::tables::Tables;

/// Total packets over all programs unless `P4LITE_DIFF_PACKETS` says otherwise.
const DEFAULT_PACKETS: usize = 100_000;
/// Of each program's packets, how many also run with tracing on.
const TRACED_PACKETS: usize = 1_500;

/// Control-plane commands per program (BMv2 runtime-CLI syntax).
fn commands(name: &str) -> &'static str {
    match name {
        "l2_switch" => {
            "mc_mgrp_create 1
             mc_node_create 0 1 2 3 4
             mc_node_associate 1 0
             table_add smac known 00:00:00:00:00:01 =>
             table_add smac known 00:00:00:00:00:02 =>
             table_add smac known 00:00:00:00:00:03 =>
             table_add dmac forward 00:00:00:00:00:01 => 1
             table_add dmac forward 00:00:00:00:00:02 => 2
             table_add dmac forward 00:00:00:00:00:03 => 3
             table_add dmac drop 00:00:00:00:00:66 =>"
        }
        "ipv4_router" => {
            "table_add ipv4_lpm set_nhop 10.0.0.0/8 => 10.0.0.1 1
             table_add ipv4_lpm set_nhop 10.1.0.0/16 => 10.1.0.1 2
             table_add ipv4_lpm set_nhop 10.1.2.0/24 => 10.1.2.1 3
             table_add ipv4_lpm set_nhop 10.1.2.128/25 => 10.1.2.129 4
             table_add ipv4_lpm set_nhop 192.168.0.0/16 => 192.168.0.1 4
             table_add ipv4_lpm set_nhop 0.0.0.0/0 => 172.16.0.1 1
             table_add ipv4_lpm drop 10.9.0.0/16 =>
             table_add forward set_dmac 10.0.0.1 => 00:aa:00:00:00:01
             table_add forward set_dmac 10.1.0.1 => 00:aa:00:00:00:02
             table_add forward set_dmac 10.1.2.1 => 00:aa:00:00:00:03
             table_add forward set_dmac 192.168.0.1 => 00:aa:00:00:00:04
             table_add forward drop 10.1.2.129 =>
             table_add send_frame rewrite_mac 1 => 00:00:00:00:01:01
             table_add send_frame rewrite_mac 2 => 00:00:00:00:01:02
             table_add send_frame rewrite_mac 3 => 00:00:00:00:01:03"
        }
        "acl" => {
            "table_add acl deny 0&&&0 10.0.0.5&&&0xffffffff 6&&&0xff 0&&&0 80&&&0xffff => 5
             table_add acl permit 10.1.0.0&&&255.255.0.0 0&&&0 0&&&0 0&&&0 0&&&0 => 0
             table_add acl deny 192.168.0.0&&&255.255.0.0 0&&&0 17&&&0xff 0&&&0 0&&&0 => 40"
        }
        // lb's tables are the director's: filled from LB_CONF (`lb_conf`).
        "lb" => "",
        "coverage" => {
            "table_add l2 rewrite 00:00:00:00:00:01 => 00:00:00:00:0a:01 1
             table_add l2 rewrite 00:00:00:00:00:02 => 00:00:00:00:0a:02 2
             table_add l2 drop 00:00:00:00:00:66 =>
             table_add l2 bail ff:ff:ff:ff:ff:ff =>
             table_add classify tag_it 10.0.0.0&&&255.0.0.0 0->1023 => 0xabcdef 10
             table_add classify drop 10.9.0.0&&&255.255.0.0 0->65535 => 5
             table_add classify tag_it 0&&&0 53->53 => 0x000035 20
             table_add v6 set_port 2001:db8::/32 => 3
             table_add v6 set_port 2001:db8:1::/48 => 4
             table_add v6 set_port ::/0 => 1"
        }
        _ => "",
    }
}

/// The IPVS director configuration per program (`lb.conf` syntax), loaded
/// like `p4lite run --ipvs`: lb.p4lite's tables and IPVS state come from it.
/// VS/NAT, DR and TUN on the TCP and UDP services of 172.16.0.1, a service
/// without real servers, and a small MTU on port 3 (fragmentation needed).
fn lb_conf(name: &str) -> Option<&'static str> {
    (name == "lb").then_some(
        "port 1 mac 00:00:00:00:01:01 addr 10.0.0.254/24
         port 2 mac 00:00:00:00:01:02 addr 10.1.0.254/16
         port 3 mac 00:00:00:00:01:03 addr 172.16.0.1/32 mtu 600
         neigh 10.0.0.1 mac 00:aa:00:00:00:01
         neigh 10.0.0.5 mac 00:aa:00:00:00:05
         neigh 10.1.0.7 mac 00:aa:00:00:00:07
         neigh 10.1.2.3 mac 00:aa:00:00:00:03
         neigh 10.1.2.200 mac 00:aa:00:00:00:c8
         route default via 10.0.0.1
         -A -t 172.16.0.1:80 -s rr
         -a -t 172.16.0.1:80 -r 10.1.0.7:8080 -m
         -a -t 172.16.0.1:80 -r 10.1.2.3 -g
         -a -t 172.16.0.1:80 -r 10.0.0.5 -i
         -A -u 172.16.0.1:53 -s wrr
         -a -u 172.16.0.1:53 -r 10.0.0.5 -i -w 2
         -a -u 172.16.0.1:53 -r 10.1.2.200:5353 -m
         -A -t 172.16.0.1:443 -s wlc",
    )
}

// ------------------------------------------------------------ packet builder

/// Addresses that hit, miss and straddle the installed prefixes.
fn ipv4_addr(r: &mut Rng) -> [u8; 4] {
    let base: [u8; 4] = r.pick(&[
        [10, 0, 0, 1],
        [10, 0, 0, 5],
        [10, 0, 0, 10],
        [10, 1, 0, 7],
        [10, 1, 2, 3],
        [10, 1, 2, 200],
        [10, 9, 1, 1],
        [192, 168, 4, 4],
        [172, 16, 0, 1],
        [10, 0, 0, 2],
        [10, 0, 0, 3],
    ]);
    if r.chance(20) {
        let mut a = base;
        a[3] = r.next() as u8;
        if r.chance(30) {
            a[2] = r.next() as u8;
        }
        a
    } else if r.chance(10) {
        (r.next() as u32).to_be_bytes()
    } else {
        base
    }
}

fn mac(r: &mut Rng) -> [u8; 6] {
    match r.below(6) {
        0 => [0xff; 6],
        1 => [0, 0, 0, 0, 0, 0x66],
        2 => {
            let mut m = [0u8; 6];
            m[0] = r.next() as u8;
            m[5] = r.next() as u8;
            m
        }
        _ => [0, 0, 0, 0, 0, 1 + r.below(4) as u8],
    }
}

fn port(r: &mut Rng) -> [u8; 2] {
    let p: u16 = if r.chance(60) { r.pick(&[22, 23, 53, 80, 443, 8080]) } else { r.next() as u16 };
    p.to_be_bytes()
}

/// Internet checksum of `data`.
fn csum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 header (20 bytes, or what the drawn ihl says) for `proto` and `payload_len`.
fn ipv4_header(r: &mut Rng, proto: u8, payload_len: usize) -> Vec<u8> {
    let ihl: u8 = if r.chance(90) { 5 } else { r.pick(&[0, 3, 4, 6, 15]) };
    let version: u8 = if r.chance(95) { 4 } else { r.pick(&[0, 6, 15]) };
    let opts = if ihl > 5 { (usize::from(ihl) - 5) * 4 } else { 0 };
    let total = 20 + opts + payload_len;
    let mut h = vec![(version << 4) | ihl, r.next() as u8];
    h.extend((total as u16).to_be_bytes());
    h.extend((r.next() as u16).to_be_bytes());
    let frag: u16 = if r.chance(90) { 0x4000 } else { r.next() as u16 };
    h.extend(frag.to_be_bytes());
    h.push(r.pick(&[0, 1, 2, 64, 255]));
    h.push(proto);
    h.extend([0, 0]);
    h.extend(ipv4_addr(r));
    h.extend(ipv4_addr(r));
    h.extend(r.bytes(opts));
    if r.chance(90) {
        let c = csum(&h[..20]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }
    h
}

/// An L4 header and payload for `proto`.
fn l4(r: &mut Rng, proto: u8, depth: u32) -> Vec<u8> {
    let mut p = Vec::new();
    match proto {
        6 => {
            p.extend(port(r));
            p.extend(port(r));
            p.extend(r.bytes(8));
            p.push(0x50);
            let any = r.next() as u8;
            p.push(r.pick(&[0x02, 0x10, 0x12, 0x11, 0x04, any]));
            p.extend(r.bytes(6));
        }
        17 => {
            p.extend(port(r));
            p.extend(port(r));
            p.extend(r.bytes(4));
        }
        1 => {
            let any = r.next() as u8;
            let ty: u8 = r.pick(&[0, 3, 4, 8, 11, any]);
            p.extend([ty, r.next() as u8, 0, 0]);
            p.extend(r.bytes(4));
            if matches!(ty, 3 | 4 | 11) && depth == 0 {
                let quoted_proto = r.pick(&[6, 17, 1]);
                let inner = l4(r, quoted_proto, depth + 1);
                let keep = if r.chance(80) { 8 } else { r.below(12) as usize };
                let inner = inner[..keep.min(inner.len())].to_vec();
                p.extend(ipv4_header(r, quoted_proto, inner.len()));
                p.extend(inner);
            }
        }
        4 if depth == 0 => {
            let inner_proto = r.pick(&[6, 17, 1]);
            let inner = l4(r, inner_proto, depth + 1);
            p.extend(ipv4_header(r, inner_proto, inner.len()));
            p.extend(inner);
        }
        _ => {}
    }
    let payload = r.below(24) as usize;
    p.extend(r.bytes(payload));
    p
}

/// An IPv6 address near the installed prefixes.
fn ipv6_addr(r: &mut Rng) -> [u8; 16] {
    let mut a = [0u8; 16];
    match r.below(4) {
        0 => a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]),
        1 => a[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01]),
        2 => a.copy_from_slice(&r.bytes(16)),
        _ => {}
    }
    a[15] = r.next() as u8;
    a
}

/// An IPv6 header (and UDP or junk after it).
fn ipv6(r: &mut Rng) -> Vec<u8> {
    let next: u8 = r.pick(&[17, 17, 6, 59]);
    let payload = if next == 17 {
        l4(r, 17, 1)
    } else {
        let n = r.below(16) as usize;
        r.bytes(n)
    };
    let mut h = vec![0x60 | r.below(16) as u8, r.next() as u8, r.next() as u8, r.next() as u8];
    h.extend((payload.len() as u16).to_be_bytes());
    h.push(next);
    h.push(r.pick(&[0, 1, 3, 64, 127, 200, 255]));
    h.extend(ipv6_addr(r));
    h.extend(ipv6_addr(r));
    h.extend(payload);
    h
}

/// What follows an Ethernet header of `ether_type`.
fn l3(r: &mut Rng, ether_type: u16, depth: u32) -> Vec<u8> {
    let mut f = Vec::new();
    match ether_type {
        0x0800 => {
            let proto: u8 = r.pick(&[6, 6, 17, 17, 1, 4, 47]);
            let payload = l4(r, proto, 0);
            f.extend(ipv4_header(r, proto, payload.len()));
            f.extend(payload);
        }
        0x86dd => f.extend(ipv6(r)),
        0x8100 if depth == 0 => {
            let inner: u16 = r.pick(&[0x0800, 0x8847, 0x86dd]);
            let vid: u16 = if r.chance(30) { 0 } else { r.next() as u16 & 0x0fff };
            f.extend(((r.below(16) as u16) << 12 | vid).to_be_bytes());
            f.extend(inner.to_be_bytes());
            f.extend(l3(r, inner, depth + 1));
        }
        0x8847 => {
            let labels = 1 + r.below(5);
            for i in 0..labels {
                let label = r.below(1 << 20) as u32;
                let bos = u32::from(i + 1 == labels);
                let ttl = r.pick(&[0u32, 1, 2, 64, 255]);
                f.extend((label << 12 | (r.below(8) as u32) << 9 | bos << 8 | ttl).to_be_bytes());
            }
            let inner: u16 = r.pick(&[0x0800, 0x86dd, 0x1234]);
            f.extend(l3(r, inner, depth + 1));
        }
        _ => {
            let n = r.below(64) as usize;
            f.extend(r.bytes(n));
        }
    }
    f
}

/// A well-formed (mostly) Ethernet frame.
fn frame(r: &mut Rng) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(mac(r));
    f.extend(mac(r));
    let ether_type: u16 = match r.below(40) {
        0..=23 => 0x0800,
        24..=27 => 0x0806,
        28..=29 => 0x86dd,
        30..=31 => 0x8100,
        32..=33 => 0x8847,
        34..=35 => 0x9000 | r.below(0x200) as u16,
        36 | 37 => 0x88b4 | r.below(2) as u16,
        _ => r.next() as u16,
    };
    f.extend(ether_type.to_be_bytes());
    match ether_type {
        0x0806 => {
            f.extend([0, 1, 8, 0, 6, 4, 0, r.pick(&[1, 2])]);
            f.extend(mac(r));
            f.extend(ipv4_addr(r));
            f.extend(mac(r));
            f.extend(ipv4_addr(r));
        }
        _ => f.extend(l3(r, ether_type, 0)),
    }
    f
}

/// A test packet: a frame, perhaps mutated, or random bytes.
fn packet(r: &mut Rng) -> Vec<u8> {
    let mut p = frame(r);
    match r.below(100) {
        0..=44 => {}
        45..=64 => {
            for _ in 0..1 + r.below(3) {
                let i = r.below(p.len() as u64) as usize;
                p[i] ^= 1 << r.below(8);
            }
        }
        65..=74 => {
            let i = r.below(p.len() as u64) as usize;
            p[i] = r.next() as u8;
        }
        75..=86 => {
            let n = r.below(p.len() as u64 + 1) as usize;
            p.truncate(n);
        }
        87..=92 => {
            let n = 1 + r.below(40) as usize;
            p.extend(r.bytes(n));
        }
        _ => {
            let n = r.below(100) as usize;
            p = r.bytes(n);
        }
    }
    p
}

// -------------------------------------------------------------------- driver

fn load(path: &Path) -> Program {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let compiled = p4lite_compiler::compile(&Sources::new(path.display().to_string(), text));
    match compiled.ir {
        Some(ir) => ir,
        None => panic!("{}: does not compile: {:?}", path.display(), compiled.diagnostics),
    }
}

fn switch(program: &Program, backend: Backend, trace: bool, name: &str) -> Switch {
    configured(program, backend, trace, name).unwrap_or_else(|e| panic!("{e}"))
}

/// A switch for `program` on `backend` with the control-plane commands (and
/// the load balancer's configuration) of the program `name`; the error
/// says what refused it: the JIT (a compiler bug for any checked program),
/// `lb.conf` or the commands (which a mutant's changed tables may refuse).
fn configured(program: &Program, backend: Backend, trace: bool, name: &str) -> Result<Switch, Refusal> {
    let mut s = Switch::new(program.clone(), SwitchOptions { backend, trace })
        .map_err(|e| Refusal::Compiler(format!("{name}: switch for {backend:?}: {e}")))?;
    if let Some(conf) = lb_conf(name) {
        if let Err(errs) = p4lite_runtime::ipvs::director::load_into_switch(&mut s, conf, "lb.conf") {
            let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            return Err(Refusal::Config(format!("{name}: lb.conf rejected:\n{}", msgs.join("\n"))));
        }
    }
    if let Err(errs) = s.apply_commands(commands(name), &format!("{name}.commands")) {
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        return Err(Refusal::Config(format!("{name}: commands rejected:\n{}", msgs.join("\n"))));
    }
    Ok(s)
}

/// Why [`configured`] gave no switch.
#[derive(Debug)]
enum Refusal {
    /// `Switch::new` failed: the JIT (or the interpreter's setup) refused a
    /// program the checker accepted.
    Compiler(String),
    /// The program's configuration or commands did not load.
    Config(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Compiler(m) | Refusal::Config(m) => f.write_str(m),
        }
    }
}

/// The PHV block's slots, without the table key buffers and the extern
/// argument array behind them: scratch space the JIT leaves alone when it
/// passes a table's key to the host in a register (`abi::TABLE_LOOKUP`)
/// or computes an intrinsic (`csum16`, `mark_to_drop`...) inline instead
/// of calling the host. `Layout::new` places every slot before them.
fn without_args(s: &Switch) -> Vec<u8> {
    let l = s.layout();
    let scratch = l.table_keys.iter().flatten().copied().chain([l.extern_args]).min().unwrap_or(l.extern_args);
    let phv = s.phv();
    phv[..(scratch as usize).min(phv.len())].to_vec()
}

/// Output packets as (port, hex bytes), for a failure message.
fn shown(out: &[OutPacket]) -> Vec<(u16, String)> {
    out.iter().map(|o| (o.port, hex(&o.data))).collect()
}

fn hex(data: &[u8]) -> String {
    data.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Runs `count` packets through both backends of one program; half way,
/// each table's entry 0 is deleted where it exists (counted in `deleted`).
fn differ(path: &Path, count: usize, seed: u64, deleted: &mut usize) -> usize {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_string();
    let program = load(path);
    differ_program(&name, &program, count, seed, deleted)
}

/// [`differ`] for a program already compiled, configured as the program
/// `name` is.
fn differ_program(name: &str, program: &Program, count: usize, seed: u64, deleted: &mut usize) -> usize {
    let name = name.to_string();
    let mut jit = switch(program, Backend::Jit, false, &name);
    let mut interp = switch(program, Backend::Interp, false, &name);
    let mut jit_t = switch(program, Backend::Jit, true, &name);
    let mut interp_t = switch(program, Backend::Interp, true, &name);
    // Every slot zeroed before each packet: the semantics the other two
    // must keep while they zero only what the compiler found a packet may
    // read before writing (`flow` module); they start from stale bytes.
    let mut zeroed = switch(program, Backend::Interp, false, &name);
    let mut r = Rng::new(seed);
    let (mut out_j, mut out_i, mut out_z) = (Vec::<OutPacket>::new(), Vec::new(), Vec::new());
    let mut forwarded = 0;
    for n in 0..count {
        if n == count / 2 {
            // Half way, every table loses its first entry: the JIT's
            // lookups compiled from snapshots of the tables (abi module
            // docs) then fall back to the tables' images, as they must.
            // A table without a handle 0 refuses it, on every switch alike.
            for t in &program.tables {
                let cmd = format!("table_delete {} 0", t.name);
                let done: Vec<bool> = [&mut jit, &mut interp, &mut jit_t, &mut interp_t, &mut zeroed]
                    .into_iter()
                    .map(|sw| sw.apply_commands(&cmd, "midway.commands").is_ok())
                    .collect();
                assert!(done.iter().all(|&d| d == done[0]), "{name}: `{cmd}` differs between the switches");
                *deleted += usize::from(done[0]);
            }
        }
        let pkt = packet(&mut r);
        let in_port = r.pick(&[0u16, 1, 1, 2, 2, 3, 4, 5, 511]);
        let ts = 1_000 * n as u64;
        out_j.clear();
        out_i.clear();
        out_z.clear();
        let stale = (n as u8).wrapping_mul(151) | 1;
        jit.fill_unzeroed_slots(stale);
        interp.fill_unzeroed_slots(stale);
        zeroed.fill_unzeroed_slots(0);
        let oj = jit.process(in_port, &pkt, ts, &mut out_j);
        let oi = interp.process(in_port, &pkt, ts, &mut out_i);
        let same_phv = without_args(&jit) == without_args(&interp);
        if oj != oi || out_j != out_i || !same_phv {
            panic!(
                "{name}: packet #{n} on port {in_port} differs\n  in:     {}\n  jit:    {oj:?} {:?}\n  interp: {oi:?} {:?}\n  same PHV: {same_phv}",
                hex(&pkt),
                shown(&out_j),
                shown(&out_i),
            );
        }
        let oz = zeroed.process(in_port, &pkt, ts, &mut out_z);
        let zero_bytes = interp.layout().zero_bytes as usize;
        let same_zeroed = interp.phv()[..zero_bytes] == zeroed.phv()[..zero_bytes];
        if oz != oi || out_z != out_i || !same_zeroed {
            panic!(
                "{name}: packet #{n} on port {in_port} depends on slots it does not zero\n  in:      {}\n  stale:   {oi:?} {:?}\n  zeroed:  {oz:?} {:?}\n  same zeroed slots: {same_zeroed}",
                hex(&pkt),
                shown(&out_i),
                shown(&out_z),
            );
        }
        forwarded += usize::from(!out_j.is_empty());
        if n < TRACED_PACKETS {
            jit_t.process(in_port, &pkt, ts, &mut Vec::new());
            interp_t.process(in_port, &pkt, ts, &mut Vec::new());
            let (tj, ti) = (jit_t.take_trace(), interp_t.take_trace());
            assert_eq!(tj, ti, "{name}: packet #{n} traces differ (in: {})", hex(&pkt));
        }
    }
    assert_eq!(jit.report(), interp.report(), "{name}: end-of-run reports differ");
    assert_eq!(jit.stats(), interp.stats(), "{name}: stats differ");
    assert_eq!(zeroed.report(), interp.report(), "{name}: reports differ from the all-zeroed run");
    assert_eq!(jit_t.report(), interp_t.report(), "{name}: traced reports differ");
    eprintln!("{name}: {count} packets, {forwarded} forwarded, identical\n{}", jit.report());
    forwarded
}

/// The shipped programs and the coverage programs, sorted by path.
fn programs() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<_> = [root.join("programs"), root.join("tests/differential_programs")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap_or_else(|e| panic!("{}: {e}", d.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("p4lite"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no programs in {}", root.display());
    paths
}

#[test]
fn jit_matches_interpreter_on_every_program() {
    let total: usize =
        std::env::var("P4LITE_DIFF_PACKETS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_PACKETS);
    let seed: u64 = std::env::var("P4LITE_DIFF_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5EED_0000);
    let paths = programs();
    let per_program = total.div_ceil(paths.len());
    let started = std::time::Instant::now();
    let mut deleted = 0;
    for (i, path) in paths.iter().enumerate() {
        let forwarded = differ(path, per_program, seed.wrapping_add(i as u64), &mut deleted);
        assert!(forwarded > 0, "{}: no packet was forwarded; the test exercises nothing", path.display());
    }
    eprintln!("{} packets in {:.1?}", per_program * paths.len(), started.elapsed());
    assert!(deleted > 0, "no table lost an entry half way: the tables' fallback from snapshots went untested");
}

// ------------------------------------------------------------------ mutants

/// Classes of binary operators a mutant swaps within: an operator is
/// replaced by another of its class, so the mutant usually still checks.
const OPERATOR_CLASSES: &[&[&str]] = &[
    &["+", "-", "|+|", "|-|"],
    &["&", "|", "^"],
    &["==", "!="],
    &["<", "<=", ">", ">="],
    &["<<", ">>"],
    &["&&", "||"],
];

/// Words a mutant swaps within their class.
const WORD_CLASSES: &[&[&str]] = &[&["true", "false"], &["setValid", "setInvalid"], &["exact", "ternary", "lpm"]];

/// The "class" of a statement a mutant deletes: its line becomes empty.
const DELETED: &[&str] = &[""];

/// Where a mutant may change `text`: the byte ranges of its integer
/// literals (not type widths such as the `16` of `bit<16>`), of its
/// operators written with spaces around them, of the words of
/// [`WORD_CLASSES`] and of its lines that end a statement (`;`), outside
/// comments.
fn mutation_sites(text: &str) -> Vec<(std::ops::Range<usize>, Option<&'static [&'static str]>)> {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut sites = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            i += b[i..].iter().position(|&c| c == b'\n').unwrap_or(b.len() - i);
        } else if b[i..].starts_with(b"/*") {
            i += b[i..].windows(2).position(|w| w == b"*/").map_or(b.len() - i, |p| p + 2);
        } else if word(b[i]) {
            let end = i + b[i..].iter().position(|&c| !word(c)).unwrap_or(b.len() - i);
            if b[i].is_ascii_digit() && (i == 0 || b[i - 1] != b'<') {
                sites.push((i..end, None));
            } else if let Some(class) = WORD_CLASSES.iter().find(|c| c.contains(&&text[i..end])) {
                sites.push((i..end, Some(*class)));
            }
            i = end;
        } else if b[i] == b';' && b.get(i + 1) == Some(&b'\n') {
            let start = text[..i].rfind('\n').map_or(0, |p| p + 1);
            let line = &text[start..i];
            if !line.contains("//") && !line.contains("/*") {
                sites.push((start..i + 1, Some(DELETED)));
            }
            i += 1;
        } else if b[i] == b' ' {
            let start = i + 1;
            let end = start + b[start..].iter().position(|&c| c == b' ' || c == b'\n').unwrap_or(b.len() - start);
            let token = &text[start..end];
            if end < b.len() && b[end] == b' ' {
                if let Some(class) = OPERATOR_CLASSES.iter().find(|c| c.contains(&token)) {
                    sites.push((start..end, Some(*class)));
                }
            }
            i = start;
        } else {
            i += 1;
        }
    }
    sites
}

/// Another integer literal in place of `old` (keeping a `W w` width
/// prefix such as `8w`): 0, 1, a neighbour, or a random value of 8, 16 or
/// 32 bits, in decimal or hexadecimal.
fn other_number(old: &str, r: &mut Rng) -> String {
    let (prefix, digits) = match old.find(['w', 's']) {
        Some(p) if old[..p].bytes().all(|c| c.is_ascii_digit()) => (&old[..=p], &old[p + 1..]),
        _ => ("", old),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
        u64::from_str_radix(&hex.replace('_', ""), 16).unwrap_or(0)
    } else {
        digits.replace('_', "").parse::<u64>().unwrap_or(0)
    };
    let new = match r.below(7) {
        0 => 0,
        1 => 1,
        2 => value + 1,
        3 => value.saturating_sub(1),
        4 => r.below(256),
        5 => r.below(65536),
        _ => r.below(1 << 32),
    };
    if r.chance(50) {
        format!("{prefix}{new}")
    } else {
        format!("{prefix}0x{new:x}")
    }
}

/// `text` with one to three of its literals, operators, words or
/// statements changed, and a description of each change (line and
/// before → after).
fn mutant(text: &str, r: &mut Rng) -> (String, Vec<String>) {
    let sites = mutation_sites(text);
    let mut chosen: Vec<usize> = (0..1 + r.index(3)).map(|_| r.index(sites.len())).collect();
    chosen.sort_unstable();
    chosen.dedup();
    let mut out = text.to_string();
    let mut what = Vec::new();
    // Back to front, so the earlier ranges stay where they were; a site
    // overlapping one already changed (a number in a deleted line) is left.
    let mut changed_from = text.len();
    for &k in chosen.iter().rev() {
        let (range, class) = &sites[k];
        if range.end > changed_from {
            continue;
        }
        changed_from = range.start;
        let old = &text[range.clone()];
        // A few draws find a change (a class has at least two operators;
        // a literal has seven kinds of replacement).
        let new = (0..16)
            .map(|_| match class {
                Some(class) => r.pick(class).to_string(),
                None => other_number(old, r),
            })
            .find(|new| new != old)
            .unwrap_or_else(|| old.to_string());
        let line = text[..range.start].matches('\n').count() + 1;
        what.push(format!("line {line}: `{old}` -> `{new}`"));
        out.replace_range(range.clone(), &new);
    }
    (out, what)
}

/// The JIT against the interpreter on programs neither was written for:
/// each shipped and coverage program with one to three of its literals,
/// operators, `true`/`false`, `setValid`/`setInvalid`, match kinds or
/// statements changed (random mutants; those the checker refuses, or
/// whose tables no longer take the program's commands, are skipped). A
/// mutant the checker accepts but the JIT refuses is a failure too.
/// `P4LITE_MUTANTS` (default 40) mutants per program of
/// `P4LITE_MUTANT_PACKETS` (default 2000) packets; `P4LITE_DIFF_SEED` as
/// above.
#[test]
fn jit_matches_interpreter_on_mutants() {
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let per_program = env("P4LITE_MUTANTS", 40) as usize;
    let packets = env("P4LITE_MUTANT_PACKETS", 2000) as usize;
    let mut r = Rng::new(env("P4LITE_DIFF_SEED", 0x5EED_0000) ^ 0x4D55_7A4E);
    let paths = programs();
    let (mut run, mut refused, mut unconfigured, mut deleted) = (0, 0, 0, 0);
    for path in &paths {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_string();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut kept = 0;
        for attempt in 0..per_program * 25 {
            if kept == per_program {
                break;
            }
            let (source, what) = mutant(&text, &mut r);
            // Refused as `p4lite check` refuses programs: by the checker,
            // or for const entries the tables would not take.
            let compiled = p4lite_compiler::compile(&Sources::new(format!("{name} mutant"), source));
            let Some(program) = compiled.ir.filter(|p| Tables::refused_entries(p).is_empty()) else {
                refused += 1;
                continue;
            };
            let configs = [Backend::Jit, Backend::Interp].map(|b| configured(&program, b, false, &name).map(|_| ()));
            match configs {
                [Ok(()), Ok(())] => {}
                [Err(Refusal::Config(_)), Err(Refusal::Config(_))] => {
                    unconfigured += 1;
                    continue;
                }
                [j, i] => {
                    panic!("{name} mutant ({}): checked, but not run alike: jit {j:?}, interp {i:?}", what.join("; "))
                }
            }
            eprintln!("{name} mutant {attempt}: {}", what.join("; "));
            differ_program(&name, &program, packets, r.next(), &mut deleted);
            kept += 1;
        }
        assert!(kept * 2 >= per_program, "{name}: only {kept} of {per_program} mutants checked and loaded");
        run += kept;
    }
    eprintln!("{run} mutants run, {refused} refused by the checker, {unconfigured} refused their commands");
}
