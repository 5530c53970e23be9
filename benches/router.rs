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
//! `jit-lean` is the same compiled pipeline behind a minimal host (same
//! `Tables`, no switch bookkeeping): the code generator's own speed.
//!
//! Each measurement is the median of several repetitions; every repetition
//! replays the packet set enough times to run for about 0.2 s.
//!
//! `ROUTER_BENCH_ONLY=jit|jit-lean|hand-written|interpreter` measures one of
//! them; with `ROUTER_BENCH_ROUNDS=N` it runs exactly N rounds untimed, so
//! two runs under callgrind (N = 0 and N = 20) give instructions per packet,
//! which the shared machine's load does not change.

use std::hint::black_box;
use std::time::{Duration, Instant};

use p4lite_compiler::abi::{self, HostSymbols, Layout, LookupResult, PacketCtx, Verdict, HIT_BIT};
use p4lite_compiler::ir::{Program, TableId, Ty};
use p4lite_compiler::jit::{self, JitOptions};
use p4lite_compiler::rng::Rng;
use p4lite_compiler::span::Sources;
use p4lite_runtime::switch::{Backend, Switch, SwitchOptions};
use p4lite_runtime::tables::Tables;

const PACKETS: usize = 1024;
const REPETITIONS: usize = 7;
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
    rx: [u64; 512],
    tx: [u64; 512],
}

const HEADROOM: usize = 48;

impl Native {
    fn new(program: &Program, s: &Switch) -> Native {
        let t = |n| program.find_table(n).expect("table exists");
        let a = |n| program.find_action(n).expect("action exists").0;
        Native {
            tables: s.tables().clone(),
            ids: [t("ipv4_lpm"), t("forward"), t("send_frame")],
            actions: [a("set_nhop"), a("set_dmac"), a("rewrite_mac")],
            buf: vec![0; HEADROOM + 2048],
            rx: [0; 512],
            tx: [0; 512],
        }
    }

    /// Returns the egress port, or `None` when the packet is dropped.
    #[inline(never)]
    fn process(&mut self, port: u16, data: &[u8]) -> Option<(u16, &[u8])> {
        self.rx[usize::from(port) & 511] += 1;
        let len = data.len();
        let pkt = &mut self.buf[HEADROOM..HEADROOM + len];
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
        Some((egress, &self.buf[HEADROOM..HEADROOM + len]))
    }
}

/// The compiled pipeline behind a minimal host: the same tables, a packet
/// buffer with headroom and a PHV block, but none of the switch's
/// bookkeeping (per-port statistics, drop reasons, multicast, tracing). It
/// measures what the generated code and the host-call boundary cost by
/// themselves.
struct Lean {
    code: jit::CompiledPipeline,
    host: LeanHost,
    phv: Vec<u128>,
    buf: Vec<u8>,
    headroom: usize,
    std: [(u32, Ty); 5],
}

/// What `PacketCtx::user` points at for [`Lean`]'s host functions.
struct LeanHost {
    tables: Tables,
    phv_size: usize,
    /// Per table: where its (single) key is.
    keys: Vec<Slot>,
    /// Per action: where each parameter goes.
    params: Vec<Vec<Slot>>,
}

/// A PHV slot: byte offset, container size and width mask, worked out once.
#[derive(Clone, Copy)]
struct Slot {
    off: usize,
    size: u32,
    mask: u128,
}

impl Slot {
    fn new(off: u32, ty: Ty) -> Slot {
        Slot { off: off as usize, size: abi::container_bytes(ty.width()), mask: ty.mask() }
    }

    /// Exact-size reads and writes (a wider access would miss store-to-load forwarding).
    #[inline(always)]
    fn load(self, phv: &[u8]) -> u128 {
        let b = &phv[self.off..self.off + 16];
        match self.size {
            1 => u128::from(b[0]),
            2 => u128::from(u16::from_le_bytes([b[0], b[1]])),
            4 => u128::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            8 => u128::from(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
            _ => u128::from_le_bytes(b.try_into().expect("16 bytes")),
        }
    }

    #[inline(always)]
    fn store(self, phv: &mut [u8], v: u128) {
        let b = &mut phv[self.off..self.off + 16];
        let v = v & self.mask;
        match self.size {
            1 => b[0] = v as u8,
            2 => b[..2].copy_from_slice(&(v as u16).to_le_bytes()),
            4 => b[..4].copy_from_slice(&(v as u32).to_le_bytes()),
            8 => b[..8].copy_from_slice(&(v as u64).to_le_bytes()),
            _ => b.copy_from_slice(&v.to_le_bytes()),
        }
    }
}

unsafe extern "C" fn lean_apply(ctx: *mut PacketCtx, table: u32) -> u32 {
    // SAFETY: `Lean::process` points `user` at its `LeanHost` and `phv` at a
    // block of `phv_size` bytes, both alive during the call.
    let (host, phv) = unsafe {
        let ctx = &*ctx;
        let host = &mut *(ctx.user as *mut LeanHost);
        let phv = std::slice::from_raw_parts_mut(ctx.phv, host.phv_size);
        (host, phv)
    };
    let key = host.keys[table as usize].load(phv);
    let l = host.tables.lookup(TableId(table), &[key]);
    for (slot, &v) in host.params[l.action.index()].iter().zip(l.params) {
        slot.store(phv, v);
    }
    l.action.0 | if l.hit { HIT_BIT } else { 0 }
}

unsafe extern "C" fn lean_lookup(ctx: *mut PacketCtx, table: u32, key: u64) -> LookupResult {
    // SAFETY: `Lean::process` points `user` at its `LeanHost`, alive during the call.
    let host = unsafe { &mut *((*ctx).user as *mut LeanHost) };
    let l = host.tables.lookup(TableId(table), &[u128::from(key)]);
    LookupResult { action: u64::from(l.action.0 | if l.hit { HIT_BIT } else { 0 }), params: l.params.as_ptr() }
}

unsafe extern "C" fn lean_extern(_: *mut PacketCtx, _: u32) {
    // The router's extern calls (csum16, mark_to_drop) are JIT intrinsics.
    eprintln!("the lean host has no externs");
    std::process::abort();
}

unsafe extern "C" fn lean_trace(_: *mut PacketCtx, _: u32, _: u32, _: u32) {}

impl Lean {
    fn new(program: &Program, s: &Switch) -> Lean {
        let layout = Layout::new(program);
        let host_fns = HostSymbols {
            table_apply: lean_apply,
            table_lookup: lean_lookup,
            extern_call: lean_extern,
            trace: lean_trace,
        };
        let code = jit::compile(program, &layout, host_fns, JitOptions::default()).expect("compiles");
        // Every slot and key buffer has at least 16 bytes of PHV after it
        // (the extern argument array comes last), which `Slot` relies on.
        let keys = program
            .tables
            .iter()
            .enumerate()
            .map(|(i, t)| match (&t.keys[..], &layout.table_keys[i][..]) {
                ([k], [off]) => Slot::new(*off, Ty::Bit(k.width)),
                _ => panic!("the lean host handles tables with one key"),
            })
            .collect();
        let params = program
            .actions
            .iter()
            .map(|a| a.params.iter().map(|&p| Slot::new(layout.slot(p), program.slot(p).ty)).collect())
            .collect();
        let st = program.std;
        let slot = |id| (layout.slot(id), program.slot(id).ty);
        let headroom = (layout.max_emit_bytes as usize).div_ceil(16) * 16;
        Lean {
            code,
            host: LeanHost { tables: s.tables().clone(), phv_size: layout.phv_size as usize, keys, params },
            phv: vec![0; layout.phv_size as usize / 16],
            buf: vec![0; headroom + 2048],
            headroom,
            std: [
                slot(st.ingress_port),
                slot(st.packet_length),
                slot(st.timestamp),
                slot(st.drop),
                slot(st.egress_spec),
            ],
        }
    }

    /// Runs one packet; the egress port and the output bytes, or `None` when dropped.
    #[inline(never)]
    fn process(&mut self, port: u16, data: &[u8]) -> Option<(u16, &[u8])> {
        self.buf[self.headroom..self.headroom + data.len()].copy_from_slice(data);
        self.phv.fill(0);
        // SAFETY: the PHV block is `phv_size` bytes of u128s (16-aligned).
        let phv = unsafe { std::slice::from_raw_parts_mut(self.phv.as_mut_ptr().cast::<u8>(), self.host.phv_size) };
        let [port_slot, len_slot, ts_slot, drop_slot, egress_slot] = self.std;
        abi::write_value(phv, port_slot.0, port_slot.1, u128::from(port));
        abi::write_value(phv, len_slot.0, len_slot.1, data.len() as u128);
        abi::write_value(phv, ts_slot.0, ts_slot.1, 0);
        let mut ctx = PacketCtx {
            phv: phv.as_mut_ptr(),
            buf: self.buf.as_mut_ptr(),
            head: self.headroom as u32,
            len: data.len() as u32,
            cap: self.buf.len() as u32,
            cursor: 0,
            reject_state: 0,
            _pad: 0,
            user: (&mut self.host as *mut LeanHost).cast(),
        };
        // SAFETY: ctx points at live buffers of the sizes the layout asks for,
        // with `max_emit_bytes` of headroom; `user` is the host state.
        let verdict = unsafe { (self.code.func)(&mut ctx) };
        if Verdict::from_u32(verdict) != Some(Verdict::Forward) || abi::read_value(phv, drop_slot.0, drop_slot.1) != 0 {
            return None;
        }
        let egress = abi::read_value(phv, egress_slot.0, egress_slot.1) as u16;
        Some((egress, &self.buf[ctx.head as usize..(ctx.head + ctx.len) as usize]))
    }
}

/// Median packets/s of `run` (which processes the whole set `rounds` times).
fn measure(name: &str, mut run: impl FnMut(usize)) -> f64 {
    // Calibrate: rounds so one repetition takes about TARGET_REP_TIME.
    let t = Instant::now();
    run(1);
    let one = t.elapsed().max(Duration::from_micros(1));
    let rounds = ((TARGET_REP_TIME.as_secs_f64() / one.as_secs_f64()) as usize).max(1);
    let mut rates: Vec<f64> = (0..REPETITIONS)
        .map(|_| {
            let t = Instant::now();
            run(rounds);
            (rounds * PACKETS) as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(|a, b| a.total_cmp(b));
    let median = rates[rates.len() / 2];
    println!(
        "{name:<12} {:>8.2} Mpps  ({:>6.1} ns/packet; min {:.2}, max {:.2} Mpps; {} x {} packets per repetition)",
        median / 1e6,
        1e9 / median,
        rates[0] / 1e6,
        rates[rates.len() - 1] / 1e6,
        rounds,
        PACKETS
    );
    median
}

fn main() {
    let program = load("ipv4_router");
    let pkts = packets();
    let mut jit = switch(&program, Backend::Jit);
    let mut interp = switch(&program, Backend::Interp);
    let mut native = Native::new(&program, &jit);
    let mut lean = Lean::new(&program, &jit);

    // The three must agree on every packet before their speed means anything.
    let mut forwarded = 0;
    for (port, data) in &pkts {
        let a = jit.process_in_place(*port, data, 0);
        let (ap, ad) = (a.ports.to_vec(), a.data.to_vec());
        let b = interp.process_in_place(*port, data, 0);
        assert_eq!((&ap, &ad), (&b.ports.to_vec(), &b.data.to_vec()), "JIT and interpreter differ");
        let lean_out = lean.process(*port, data).map(|(p, d)| (vec![p], d.to_vec()));
        match native.process(*port, data) {
            Some((p, d)) => {
                assert_eq!((vec![p], d.to_vec()), (ap.clone(), ad.clone()), "hand-written router differs");
                assert_eq!(lean_out, Some((ap, ad)), "lean-host JIT differs");
                forwarded += 1;
            }
            None => {
                assert!(ap.is_empty(), "hand-written router drops a forwarded packet");
                assert!(lean_out.is_none(), "lean-host JIT forwards a dropped packet");
            }
        }
    }
    println!("ipv4_router: {PACKETS} packets, {forwarded} forwarded, {} routes", program_routes(&jit));

    // `ROUTER_BENCH_ONLY=jit` (or `jit-lean`, `interpreter`, `hand-written`) measures one, for profiling.
    let only = std::env::var("ROUTER_BENCH_ONLY").ok();
    if let Some(which) = only.as_deref() {
        let mut run = |rounds: usize| {
            for _ in 0..rounds {
                for (port, data) in &pkts {
                    let n = match which {
                        "interpreter" => interp.process_in_place(*port, data, 0).data.len(),
                        "hand-written" => native.process(*port, data).map_or(0, |(_, d)| d.len()),
                        "jit-lean" => lean.process(*port, data).map_or(0, |(_, d)| d.len()),
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
                measure(which, &mut run);
            }
        }
        return;
    }
    let jit_pps = measure("jit", |rounds| {
        for _ in 0..rounds {
            for (port, data) in &pkts {
                black_box(jit.process_in_place(*port, data, 0).data.len());
            }
        }
    });
    let lean_pps = measure("jit-lean", |rounds| {
        for _ in 0..rounds {
            for (port, data) in &pkts {
                black_box(lean.process(*port, data).map(|(_, d)| d.len()));
            }
        }
    });
    let native_pps = measure("hand-written", |rounds| {
        for _ in 0..rounds {
            for (port, data) in &pkts {
                black_box(native.process(*port, data).map(|(_, d)| d.len()));
            }
        }
    });
    let interp_pps = measure("interpreter", |rounds| {
        for _ in 0..rounds {
            for (port, data) in &pkts {
                black_box(interp.process_in_place(*port, data, 0).data.len());
            }
        }
    });
    println!("jit / interpreter:  {:.1}x", jit_pps / interp_pps);
    println!("hand-written / jit: {:.2}x", native_pps / jit_pps);
    println!("hand-written / jit-lean: {:.2}x", native_pps / lean_pps);

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
    p4lite_compiler::abi::HostSymbols { table_apply: apply, table_lookup: lookup, extern_call: call, trace }
}
