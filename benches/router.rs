//! Packets per second of `programs/ipv4_router.p4lite` on one core: the JIT,
//! the reference interpreter and a hand-written Rust router doing the same
//! work, in one run; then the time to JIT-compile every program.
//!
//! Run: `cargo bench --bench router` (results and the machine: BENCHMARKS.md).
//!
//! The workload is 1024 Ethernet/IPv4/UDP frames (64-byte frames, varied
//! addresses, TTL 64, valid checksums) replayed in a loop, with 301 LPM
//! routes (/8, /16, /24 and a default route), 16 next hops and 8 ports.
//! Both backends run through `Switch::process_in_place` (packet copy into the
//! switch's buffer, PHV reset, pipeline, egress decision, port counters).
//! The hand-written router does the same: copies the frame, parses
//! Ethernet and IPv4 with the program's checks, looks up the same three
//! tables in the same `Tables` (so lookups cost the same), decrements the
//! TTL, recomputes the header checksum, rewrites both MACs, and counts
//! per-port traffic.
//!
//! The JIT looks the three tables up in the generated code itself, through
//! the table images the switch keeps (`abi` module docs); the hand-written
//! router calls `Tables::lookup`, which reads the same index arrays.
//!
//! Each measurement is the median of several repetitions; every repetition
//! replays the packet set enough times to run for about 0.2 s, and the
//! engines take turns (a repetition of each, then the next), so the shared
//! machine's changing load falls on all of them alike. The ratios are the
//! medians of the per-repetition ratios (the ratio of the medians is shown
//! beside them).
//!
//! `ROUTER_BENCH_ONLY=jit|hand-written|interpreter` measures one of
//! them; with `ROUTER_BENCH_ROUNDS=N` it runs exactly N rounds untimed, so
//! two runs under callgrind (N = 0 and N = 20) give instructions per packet,
//! which the shared machine's load does not change.

use std::hint::black_box;
use std::time::{Duration, Instant};

use p4lite_compiler::abi::Layout;
use p4lite_compiler::ir::{Program, TableId};
use p4lite_compiler::jit::{self, JitOptions};
use p4lite_compiler::rng::Rng;
use p4lite_compiler::span::Sources;
use p4lite_runtime::switch::{Backend, Switch, SwitchOptions};
use p4lite_runtime::tables::Tables;

const PACKETS: usize = 1024;
const REPETITIONS: usize = 9;
const TARGET_REP_TIME: Duration = Duration::from_millis(200);

fn load(name: &str) -> Program {
    let path = format!("{}/programs/{name}.p4lite", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("program readable");
    p4lite_compiler::compile(&Sources::new(path.clone(), text)).ir.unwrap_or_else(|| panic!("{path} compiles"))
}

/// The route set: 256 /24s in 10.0.0.0/16, 40 /16s in 10.1.0.0-10.40.0.0,
/// 4 /8s and a default route; next hops 10.255.0.{1..16} on ports 1..8.
fn commands() -> String {
    let mut c = String::new();
    let nhop = |i: u32| (format!("10.255.0.{}", 1 + i % 16), 1 + i % 8);
    for i in 0..256u32 {
        let (nh, port) = nhop(i);
        c += &format!("table_add ipv4_lpm set_nhop 10.0.{i}.0/24 => {nh} {port}\n");
    }
    for i in 1..=40u32 {
        let (nh, port) = nhop(i * 7);
        c += &format!("table_add ipv4_lpm set_nhop 10.{i}.0.0/16 => {nh} {port}\n");
    }
    for (i, net) in [10u32, 172, 192, 100].into_iter().enumerate() {
        let (nh, port) = nhop(i as u32 * 3);
        c += &format!("table_add ipv4_lpm set_nhop {net}.0.0.0/8 => {nh} {port}\n");
    }
    c += "table_add ipv4_lpm set_nhop 0.0.0.0/0 => 10.255.0.1 1\n";
    for i in 1..=16u32 {
        c += &format!("table_add forward set_dmac 10.255.0.{i} => 00:aa:bb:cc:dd:{i:02x}\n");
    }
    for p in 1..=8u32 {
        c += &format!("table_add send_frame rewrite_mac {p} => 00:00:00:00:01:{p:02x}\n");
    }
    c
}

/// 64-byte Ethernet/IPv4/UDP frames to addresses that hit every route length.
fn packets() -> Vec<(u16, Vec<u8>)> {
    let mut r = Rng::new(0xB0A7_5EED);
    (0..PACKETS)
        .map(|_| {
            let x = r.next();
            let dst: [u8; 4] = match x % 10 {
                0..=6 => [10, 0, (x >> 8) as u8, (x >> 16) as u8],
                7 => [10, 1 + (x >> 8) as u8 % 40, (x >> 16) as u8, (x >> 24) as u8],
                8 => [172, (x >> 8) as u8, (x >> 16) as u8, 1],
                _ => [8, 8, (x >> 16) as u8, 8],
            };
            let mut f = vec![0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00];
            let mut ip = vec![0x45, 0, 0, 50, 0, 1, 0x40, 0, 64, 17, 0, 0, 192, 168, 0, 1];
            ip.extend(dst);
            let c = csum(&ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend(ip);
            f.extend([0x30, 0x39, 0x00, 0x35, 0x00, 30, 0, 0]);
            f.resize(64, 0xAB);
            (1 + (x >> 40) as u16 % 8, f)
        })
        .collect()
}

/// Internet checksum (RFC 1071) over whole 16-bit words.
fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn switch(program: &Program, backend: Backend) -> Switch {
    let mut s = Switch::new(program.clone(), SwitchOptions { backend, trace: false }).expect("switch builds");
    s.apply_commands(&commands(), "bench").expect("commands apply");
    s
}

/// The hand-written router: the program's semantics in plain Rust over the
/// same `Tables`.
struct Native {
    tables: Tables,
    ids: [TableId; 3],
    /// set_nhop, set_dmac, rewrite_mac (action ids).
    actions: [u32; 3],
    buf: Vec<u8>,
    /// Where the packet starts in `buf`: at least `HEADROOM`, 64-byte
    /// aligned, as the switch aligns its packets (so neither copy straddles
    /// a page or a cache line more than the other's).
    start: usize,
    rx: [u64; 512],
    tx: [u64; 512],
}

/// The first offset of `buf` at or after `HEADROOM` whose address is 64-byte aligned.
fn aligned_start(buf: &[u8]) -> usize {
    let at = buf.as_ptr() as usize + HEADROOM;
    HEADROOM + (64 - at % 64) % 64
}

const HEADROOM: usize = 48;

impl Native {
    fn new(program: &Program, s: &Switch) -> Native {
        let t = |n| program.find_table(n).expect("table exists");
        let a = |n| program.find_action(n).expect("action exists").0;
        let mut n = Native {
            tables: s.tables().clone(),
            ids: [t("ipv4_lpm"), t("forward"), t("send_frame")],
            actions: [a("set_nhop"), a("set_dmac"), a("rewrite_mac")],
            start: 0,
            buf: vec![0; HEADROOM + 64 + 2048],
            rx: [0; 512],
            tx: [0; 512],
        };
        n.start = aligned_start(&n.buf);
        n
    }

    /// Returns the egress port, or `None` when the packet is dropped.
    #[inline(never)]
    fn process(&mut self, port: u16, data: &[u8]) -> Option<(u16, &[u8])> {
        self.rx[usize::from(port) & 511] += 1;
        let len = data.len();
        let pkt = &mut self.buf[self.start..self.start + len];
        pkt.copy_from_slice(data);
        if len < 14 {
            return None; // truncated in 'start'
        }
        let is_ipv4 = pkt[12..14] == [0x08, 0x00];
        if is_ipv4 {
            if len < 34 {
                return None; // truncated in 'parse_ipv4'
            }
            if pkt[14] != 0x45 {
                return None; // parser reject
            }
        }
        if !is_ipv4 || pkt[22] <= 1 {
            return None; // drop(); exit;
        }
        let mut drop = false;
        let mut egress = 0u16;
        let dst = u32::from_be_bytes([pkt[30], pkt[31], pkt[32], pkt[33]]);
        let l = self.tables.lookup(self.ids[0], &[u128::from(dst)]);
        if l.hit {
            let mut nhop = 0u128;
            if l.action.0 == self.actions[0] {
                nhop = l.params[0];
                egress = l.params[1] as u16;
                pkt[22] -= 1;
            } else {
                drop = true;
            }
            let f = self.tables.lookup(self.ids[1], &[nhop]);
            if f.action.0 == self.actions[1] {
                pkt[0..6].copy_from_slice(&(f.params[0] as u64).to_be_bytes()[2..]);
            } else {
                drop = true;
            }
            pkt[24] = 0;
            pkt[25] = 0;
            let c = csum(&pkt[14..34]);
            pkt[24..26].copy_from_slice(&c.to_be_bytes());
        } else {
            drop = true;
        }
        let s = self.tables.lookup(self.ids[2], &[u128::from(egress)]);
        if s.action.0 == self.actions[2] {
            pkt[6..12].copy_from_slice(&(s.params[0] as u64).to_be_bytes()[2..]);
        } else {
            drop = true;
        }
        if drop {
            return None;
        }
        self.tx[usize::from(egress) & 511] += 1;
        Some((egress, &self.buf[self.start..self.start + len]))
    }
}

/// One engine to measure: its name and a function that processes the whole
/// packet set `rounds` times.
type Run<'a> = (&'static str, &'a mut dyn FnMut(usize));

/// Packets/s of each run, per repetition. The runs take turns (one
/// repetition of each, then the next round), so a change in the shared
/// machine's load falls on all of them alike rather than on whichever
/// happened to run then; each repetition lasts about [`TARGET_REP_TIME`].
fn measure(runs: &mut [Run<'_>]) -> Vec<Vec<f64>> {
    // Calibrate: rounds so one repetition takes about TARGET_REP_TIME.
    let rounds: Vec<usize> = runs
        .iter_mut()
        .map(|(_, run)| {
            let t = Instant::now();
            run(1);
            let one = t.elapsed().max(Duration::from_micros(1));
            ((TARGET_REP_TIME.as_secs_f64() / one.as_secs_f64()) as usize).max(1)
        })
        .collect();
    let mut rates = vec![Vec::new(); runs.len()];
    for _ in 0..REPETITIONS {
        for (i, (_, run)) in runs.iter_mut().enumerate() {
            let t = Instant::now();
            run(rounds[i]);
            rates[i].push((rounds[i] * PACKETS) as f64 / t.elapsed().as_secs_f64());
        }
    }
    for (i, (name, _)) in runs.iter().enumerate() {
        let median = median(&rates[i]);
        let (lo, hi) = rates[i].iter().fold((f64::MAX, 0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        println!(
            "{name:<12} {:>8.2} Mpps  ({:>6.1} ns/packet; min {:.2}, max {:.2} Mpps; {} x {} packets per repetition)",
            median / 1e6,
            1e9 / median,
            lo / 1e6,
            hi / 1e6,
            rounds[i],
            PACKETS
        );
    }
    rates
}

/// The median of some values.
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `a / b` per repetition (the two ran back to back), and their median.
fn paired_ratio(a: &[f64], b: &[f64]) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    median(&ratios)
}

fn main() {
    let program = load("ipv4_router");
    let pkts = packets();
    let mut jit = switch(&program, Backend::Jit);
    let mut interp = switch(&program, Backend::Interp);
    let mut native = Native::new(&program, &jit);

    // The three must agree on every packet before their speed means anything.
    let mut forwarded = 0;
    for (port, data) in &pkts {
        let a = jit.process_in_place(*port, data, 0);
        let (ap, ad) = (a.ports.to_vec(), a.data.to_vec());
        let b = interp.process_in_place(*port, data, 0);
        assert_eq!((&ap, &ad), (&b.ports.to_vec(), &b.data.to_vec()), "JIT and interpreter differ");
        match native.process(*port, data) {
            Some((p, d)) => {
                assert_eq!((vec![p], d.to_vec()), (ap.clone(), ad.clone()), "hand-written router differs");
                forwarded += 1;
            }
            None => {
                assert!(ap.is_empty(), "hand-written router drops a forwarded packet");
            }
        }
    }
    println!("ipv4_router: {PACKETS} packets, {forwarded} forwarded, {} routes", program_routes(&jit));

    // `ROUTER_BENCH_ONLY=jit` (or `interpreter`, `hand-written`) measures one, for profiling.
    let only = std::env::var("ROUTER_BENCH_ONLY").ok();
    if let Some(which) = only.as_deref() {
        let mut run = |rounds: usize| {
            for _ in 0..rounds {
                for (port, data) in &pkts {
                    let n = match which {
                        "interpreter" => interp.process_in_place(*port, data, 0).data.len(),
                        "hand-written" => native.process(*port, data).map_or(0, |(_, d)| d.len()),
                        _ => jit.process_in_place(*port, data, 0).data.len(),
                    };
                    black_box(n);
                }
            }
        };
        // `ROUTER_BENCH_ROUNDS=N`: exactly N rounds, untimed, for instruction
        // counts (callgrind), which do not depend on the load.
        match std::env::var("ROUTER_BENCH_ROUNDS").ok().and_then(|r| r.parse::<usize>().ok()) {
            Some(rounds) => run(rounds),
            None => {
                measure(&mut [(which_name(which), &mut run)]);
            }
        }
        return;
    }
    let mut run_jit = |rounds: usize| {
        for _ in 0..rounds {
            for (port, data) in &pkts {
                black_box(jit.process_in_place(*port, data, 0).data.len());
            }
        }
    };
    let mut run_native = |rounds: usize| {
        for _ in 0..rounds {
            for (port, data) in &pkts {
                black_box(native.process(*port, data).map(|(_, d)| d.len()));
            }
        }
    };
    let mut run_interp = |rounds: usize| {
        for _ in 0..rounds {
            for (port, data) in &pkts {
                black_box(interp.process_in_place(*port, data, 0).data.len());
            }
        }
    };
    let rates =
        measure(&mut [("jit", &mut run_jit), ("hand-written", &mut run_native), ("interpreter", &mut run_interp)]);
    let (jit_r, native_r, interp_r) = (&rates[0], &rates[1], &rates[2]);
    println!(
        "jit / interpreter:  {:.1}x  (median of per-repetition ratios; ratio of medians {:.1}x)",
        paired_ratio(jit_r, interp_r),
        median(jit_r) / median(interp_r)
    );
    println!(
        "hand-written / jit: {:.2}x  (median of per-repetition ratios; ratio of medians {:.2}x)",
        paired_ratio(native_r, jit_r),
        median(native_r) / median(jit_r)
    );

    println!("\nJIT compile time (median of {REPETITIONS}):");
    let dir = format!("{}/programs", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("programs/")
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_string))
        .collect();
    names.sort();
    for name in names {
        let p = load(&name);
        let layout = Layout::new(&p);
        let host = host_stubs();
        let mut times: Vec<Duration> = (0..REPETITIONS)
            .map(|_| {
                let t = Instant::now();
                let c = jit::compile(&p, &layout, host, JitOptions::default()).expect("compiles");
                let d = t.elapsed();
                black_box(c.func);
                d
            })
            .collect();
        times.sort();
        println!("  {name:<12} {:>8.2?}", times[times.len() / 2]);
    }
}

/// The `'static` name of a `ROUTER_BENCH_ONLY` value.
fn which_name(which: &str) -> &'static str {
    match which {
        "interpreter" => "interpreter",
        "hand-written" => "hand-written",
        _ => "jit",
    }
}

fn program_routes(s: &Switch) -> usize {
    s.tables().table(s.program().find_table("ipv4_lpm").expect("table")).len()
}

/// Host functions for compile-time measurements (never called).
fn host_stubs() -> p4lite_compiler::abi::HostSymbols {
    use p4lite_compiler::abi::PacketCtx;
    unsafe extern "C" fn apply(_: *mut PacketCtx, _: u32) -> u32 {
        0
    }
    unsafe extern "C" fn lookup(_: *mut PacketCtx, _: u32, _: u64) -> p4lite_compiler::abi::LookupResult {
        p4lite_compiler::abi::LookupResult { action: 0, params: std::ptr::null() }
    }
    unsafe extern "C" fn call(_: *mut PacketCtx, _: u32) {}
    unsafe extern "C" fn trace(_: *mut PacketCtx, _: u32, _: u32, _: u32) {}
    p4lite_compiler::abi::HostSymbols {
        table_apply: apply,
        table_lookup: lookup,
        extern_call: call,
        trace,
        table_images: std::ptr::null(),
        counter_images: std::ptr::null(),
        ipvs_call: None,
    }
}
