//! Extern implementations, bound to call sites once, when the switch is built.
//!
//! [`Externs::bind`] resolves every [`ir::ExternCall`] of the program to an
//! implementation by the extern's name (`csum16`, `counter.count`, ...) and
//! checks the call's argument shape, so that a name the runtime does not
//! provide is an error before any packet flows, never a per-packet surprise.
//! [`Externs::call`] then runs call site `site` over the flattened argument
//! array in the PHV block (layout in `p4lite_compiler::abi`): entry 0 is the
//! return value, then one entry per scalar argument and one per element of a
//! list argument. Both backends reach it: the JIT through
//! `host::p4l_extern_call`, the interpreter directly.
//!
//! | extern | behaviour |
//! | --- | --- |
//! | `mark_to_drop(std)` | sets `std.drop` to 1 |
//! | `csum16(data)` | RFC 1071 checksum of `data` ([`checksum`]) |
//! | `csum16_replace(csum, old, new)` | RFC 1624 eqn. 3 update of `csum` |
//! | `hash_crc32(data)`, `hash_crc16(data)` | CRC-32 (IEEE), CRC-16 (ARC) ([`crc`]) |
//! | `counter.count(index)` | one packet of `std.packet_length` bytes ([`counter`]) |
//! | `register.read(result, index)`, `.write(index, value)` | [`register`] |
//! | `conn_table.lookup_in`, `.lookup_out`, `scheduler.schedule` | IPVS over the switch's one [`Director`] ([`ipvs`]) |
//! | `truncate(length)` | the switch cuts the deparsed packet to `length` bytes ([`Externs::take_truncate`]) |

pub mod checksum;
pub mod counter;
pub mod crc;
pub mod ipvs;
pub mod register;

use std::ops::Range;

use p4lite_compiler::abi::{self, Layout};
use p4lite_compiler::ir::{self, Callee, Dir, ExternArg, Program, SlotId, Ty};

use crate::ipvs::director::Director;

pub use counter::Counter;
pub use register::Register;

/// The most cells a `counter` or `register` instance may have (memory is
/// allocated up front; 4 Mi cells is 64 MiB for a register of any width).
pub const MAX_CELLS: u128 = 1 << 22;

/// Why a program's externs cannot be bound.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// No implementation of that name exists.
    #[error("extern `{name}` is not provided by the runtime")]
    Unknown { name: String },
    /// Declared in the prelude, but its implementation is a later issue.
    #[error("extern `{name}` is not implemented yet")]
    NotYet { name: String },
    /// The call site's arguments do not have the shape the implementation needs.
    #[error("extern `{name}`: unexpected arguments at a call site ({why})")]
    BadCall { name: String, why: String },
    /// An instance whose constructor arguments the runtime cannot honour.
    #[error("extern instance `{name}`: {why}")]
    BadInstance { name: String, why: String },
}

/// What a call site runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    MarkToDrop,
    Csum16,
    Csum16Replace,
    HashCrc32,
    HashCrc16,
    /// `count` of counter `counters[i]`.
    Count(usize),
    /// `read` of register `registers[i]`.
    RegRead(usize),
    /// `write` of register `registers[i]`.
    RegWrite(usize),
    /// `conn_table.lookup_in`.
    LookupIn,
    /// `conn_table.lookup_out`.
    LookupOut,
    /// `scheduler.schedule`.
    Schedule,
    /// `truncate(length)`.
    Truncate,
}

/// One flattened argument entry of a call site.
#[derive(Clone, Debug)]
struct Entry {
    width: u16,
    dir: Dir,
    /// The slot an `out`/`inout` entry is copied back to.
    slot: Option<SlotId>,
}

/// A bound call site.
#[derive(Clone, Debug)]
struct Site {
    imp: Impl,
    /// `csum16`, `MyIngress.per_port.count`: for traces.
    name: String,
    /// Entries `1..` of the argument array.
    entries: Vec<Entry>,
    /// For each IR argument, its range of entry indices (1-based, like the array).
    args: Vec<Range<usize>>,
}

/// The state of a program's externs: per-site bindings, counters and registers.
#[derive(Clone, Debug)]
pub struct Externs {
    sites: Vec<Option<Site>>,
    counters: Vec<Counter>,
    registers: Vec<Register>,
    /// Calls of a site id that was never bound (a backend bug; counted, not fatal).
    unbound_calls: u64,
    /// The IPVS director all `conn_table` and `scheduler` instances share
    /// (present when the program has one, or once `lb.conf` was loaded).
    director: Option<Box<Director>>,
    /// The length the current packet's `truncate` call asked for.
    truncate: Option<u32>,
}

/// What an instance's state is, by instance id.
#[derive(Clone, Copy, Debug)]
enum InstKind {
    Counter(usize),
    Register(usize),
    /// A `conn_table` or `scheduler`: the shared director.
    Ipvs,
    Other,
}

impl Externs {
    /// Binds every extern call site of `program` and creates the instances' state.
    pub fn bind(program: &Program) -> Result<Externs, BindError> {
        let mut ex = Externs {
            sites: Vec::new(),
            counters: Vec::new(),
            registers: Vec::new(),
            unbound_calls: 0,
            director: None,
            truncate: None,
        };
        let mut kinds = Vec::with_capacity(program.instances.len());
        for inst in &program.instances {
            let ty_name = program.extern_types.get(inst.ty.index()).map(|t| t.name.as_str()).unwrap_or("");
            let kind = match ty_name {
                "counter" => {
                    let size = cells(inst)?;
                    ex.counters.push(Counter::new(&inst.name, size));
                    InstKind::Counter(ex.counters.len() - 1)
                }
                "register" => {
                    let size = cells(inst)?;
                    let Some(ty) = inst.type_args.first() else {
                        return Err(BindError::BadInstance { name: inst.name.clone(), why: "no element type".into() });
                    };
                    ex.registers.push(Register::new(&inst.name, ty.width(), size));
                    InstKind::Register(ex.registers.len() - 1)
                }
                "conn_table" | "scheduler" => {
                    let d = ex.director.get_or_insert_with(|| Box::new(Director::new(0)));
                    if ty_name == "conn_table" && d.conns.config().max_conns == 0 {
                        // The first sized `conn_table` bounds the shared table.
                        let max = u32::try_from(inst.ctor_args.first().copied().unwrap_or(0)).unwrap_or(u32::MAX);
                        **d = Director::new(max);
                    }
                    InstKind::Ipvs
                }
                _ => InstKind::Other,
            };
            kinds.push(kind);
        }
        let mut calls = Vec::new();
        abi::visit_stmts(program, |s| {
            if let ir::StmtKind::Extern { call, .. } = &s.kind {
                calls.push(call.clone());
            }
        });
        ex.sites = vec![None; program.call_sites as usize];
        for call in &calls {
            let site = bind_site(program, &kinds, call)?;
            let i = call.site.index();
            if i >= ex.sites.len() {
                ex.sites.resize(i + 1, None);
            }
            ex.sites[i] = Some(site);
        }
        Ok(ex)
    }

    /// Runs call site `site` on the argument array of `phv` (see the module docs).
    ///
    /// The return entry and every `out` entry are zeroed first, whatever the
    /// caller wrote there, so an `out` argument an implementation leaves
    /// alone reads 0 on both backends. Never panics: unknown sites and
    /// out-of-range entries are ignored (and counted in [`Externs::unbound_calls`]).
    pub fn call(&mut self, program: &Program, layout: &Layout, phv: &mut [u8], site: u32) {
        let Externs { sites, counters, registers, unbound_calls, director, truncate } = self;
        let Some(Some(s)) = sites.get(site as usize) else {
            *unbound_calls += 1;
            return;
        };
        let a = Args::new(layout);
        a.set(phv, 0, 0);
        for (i, e) in s.entries.iter().enumerate() {
            if e.dir == Dir::Out {
                a.set(phv, i + 1, 0);
            }
        }
        match s.imp {
            Impl::MarkToDrop => {
                let drop = program.std.drop;
                abi::write_value(phv, layout.slot(drop), program.slot(drop).ty, 1);
                // A call that passes `std.drop` as an argument copies the entry back.
                for (i, e) in s.entries.iter().enumerate() {
                    if e.slot == Some(drop) {
                        a.set(phv, i + 1, 1);
                    }
                }
            }
            Impl::Csum16 => {
                let r = checksum::csum16(a.elems(phv, s, 0));
                a.set(phv, 0, r.into());
            }
            Impl::Csum16Replace => {
                let csum = a.get(phv, 1) as u16;
                let r = checksum::csum16_replace(csum, a.elems(phv, s, 1), a.elems(phv, s, 2));
                a.set(phv, 1, r.into());
            }
            Impl::HashCrc32 => {
                let r = crc::crc32(a.elems(phv, s, 0));
                a.set(phv, 0, r.into());
            }
            Impl::HashCrc16 => {
                let r = crc::crc16(a.elems(phv, s, 0));
                a.set(phv, 0, r.into());
            }
            Impl::Count(c) => {
                let len_slot = program.std.packet_length;
                let bytes = abi::read_value(phv, layout.slot(len_slot), program.slot(len_slot).ty) as u64;
                if let Some(counter) = counters.get_mut(c) {
                    counter.count(a.get(phv, 1), bytes);
                }
            }
            Impl::RegRead(r) => {
                let v = registers.get_mut(r).map_or(0, |reg| reg.read(a.get(phv, 2)));
                a.set(phv, 1, v);
            }
            Impl::RegWrite(r) => {
                let (index, value) = (a.get(phv, 1), a.get(phv, 2));
                if let Some(reg) = registers.get_mut(r) {
                    reg.write(index, value);
                }
            }
            Impl::Truncate => *truncate = Some(u32::try_from(a.get(phv, 1)).unwrap_or(u32::MAX)),
            Impl::LookupIn | Impl::LookupOut | Impl::Schedule => {
                let Some(d) = director.as_deref_mut() else { return };
                let read = |slot: SlotId| abi::read_value(phv, layout.slot(slot), program.slot(slot).ty);
                let now_ns = read(program.std.timestamp) as u64;
                let l3_len = (read(program.std.packet_length) as u64).saturating_sub(ipvs::ETHERNET_HEADER);
                // Schedule's first argument is the service id; the packet follows.
                let at = usize::from(s.imp == Impl::Schedule);
                let g = |i: usize| a.get(phv, at + i);
                let p = ipvs::Packet {
                    proto: g(1) as u8,
                    saddr: g(2) as u32,
                    sport: g(3) as u16,
                    daddr: g(4) as u32,
                    dport: g(5) as u16,
                    tcp_flags: g(6) as u8,
                    l3_len,
                    now_ns,
                };
                let (code, outs) = match s.imp {
                    Impl::LookupIn => {
                        let r = ipvs::lookup_in(d, &p);
                        (r.code, [r.fwd.into(), r.raddr.into(), r.rport.into()])
                    }
                    Impl::Schedule => {
                        let r = ipvs::schedule(d, a.get(phv, 1) as u16, &p);
                        (r.code, [r.fwd.into(), r.raddr.into(), r.rport.into()])
                    }
                    _ => {
                        let r = ipvs::lookup_out(d, &p);
                        (r.code, [r.vaddr.into(), r.vport.into(), 0])
                    }
                };
                a.set(phv, 0, code.into());
                let n = if s.imp == Impl::LookupOut { 2 } else { 3 };
                for (k, v) in outs.into_iter().take(n).enumerate() {
                    a.set(phv, at + 7 + k, v);
                }
            }
        }
    }

    /// The name of the extern call site `site` (`csum16`, `MyIngress.per_port.count`).
    pub fn site_name(&self, site: u32) -> Option<&str> {
        Some(self.sites.get(site as usize)?.as_ref()?.name.as_str())
    }

    /// The number of argument entries (excluding the return entry) of call site `site`.
    pub fn site_entries(&self, site: u32) -> usize {
        self.sites.get(site as usize).and_then(|s| s.as_ref()).map_or(0, |s| s.entries.len())
    }

    /// Every counter instance, in instance order.
    pub fn counters(&self) -> &[Counter] {
        &self.counters
    }

    /// Every register instance, in instance order.
    pub fn registers(&self) -> &[Register] {
        &self.registers
    }

    /// A counter by qualified or unique unqualified name.
    pub fn counter(&self, name: &str) -> Option<&Counter> {
        find(self.counters.iter().map(|c| c.name.as_str()), name).map(|i| &self.counters[i])
    }

    /// A counter by name, for the control plane (`counter_reset`).
    pub fn counter_mut(&mut self, name: &str) -> Option<&mut Counter> {
        find(self.counters.iter().map(|c| c.name.as_str()), name).map(|i| &mut self.counters[i])
    }

    /// A register by qualified or unique unqualified name.
    pub fn register(&self, name: &str) -> Option<&Register> {
        find(self.registers.iter().map(|r| r.name.as_str()), name).map(|i| &self.registers[i])
    }

    /// A register by name, for the control plane (`register_write`).
    pub fn register_mut(&mut self, name: &str) -> Option<&mut Register> {
        find(self.registers.iter().map(|r| r.name.as_str()), name).map(|i| &mut self.registers[i])
    }

    /// Calls of a call site id that was never bound (nonzero means a backend bug).
    pub fn unbound_calls(&self) -> u64 {
        self.unbound_calls
    }

    /// The IPVS director, if the program has `conn_table`/`scheduler`
    /// instances or `lb.conf` was loaded.
    pub fn director(&self) -> Option<&Director> {
        self.director.as_deref()
    }

    /// The IPVS director, for the control plane.
    pub fn director_mut(&mut self) -> Option<&mut Director> {
        self.director.as_deref_mut()
    }

    /// The IPVS director, created (unbounded) if there is none yet.
    pub fn director_or_insert(&mut self) -> &mut Director {
        self.director.get_or_insert_with(|| Box::new(Director::new(0)))
    }

    /// The switch calls this with each packet's time before the pipeline
    /// runs: the director's timers advance with packet time even when no
    /// IPVS extern runs, and a stale `truncate` is forgotten.
    #[inline]
    pub fn packet_time(&mut self, ts_ns: u64) {
        self.truncate = None;
        if let Some(d) = self.director.as_deref_mut() {
            d.advance(ts_ns);
        }
    }

    /// The length the packet's last `truncate` call asked for, if any; the
    /// switch calls this once after the pipeline (it also resets it).
    #[inline]
    pub fn take_truncate(&mut self) -> Option<u32> {
        self.truncate.take()
    }
}

/// Exact name, else the unique one whose last dotted component is `name`.
fn find<'a>(names: impl Iterator<Item = &'a str> + Clone, name: &str) -> Option<usize> {
    if let Some(i) = names.clone().position(|n| n == name) {
        return Some(i);
    }
    let mut found = names.enumerate().filter(|(_, n)| n.rsplit('.').next() == Some(name));
    match (found.next(), found.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

/// The cell count of a counter or register instance (its first constructor argument).
fn cells(inst: &ir::Instance) -> Result<usize, BindError> {
    let size = inst.ctor_args.first().copied().unwrap_or(0);
    if size > MAX_CELLS {
        return Err(BindError::BadInstance {
            name: inst.name.clone(),
            why: format!("size {size} is larger than the runtime's limit of {MAX_CELLS} cells"),
        });
    }
    Ok(size as usize)
}

/// Resolves one call site and checks its argument shape.
fn bind_site(program: &Program, kinds: &[InstKind], call: &ir::ExternCall) -> Result<Site, BindError> {
    let sig = program.callee_sig(call.callee);
    let (imp, name, error_name) = match call.callee {
        Callee::Function(_) => {
            let imp = match sig.name.as_str() {
                "mark_to_drop" => Impl::MarkToDrop,
                "csum16" => Impl::Csum16,
                "csum16_replace" => Impl::Csum16Replace,
                "hash_crc32" => Impl::HashCrc32,
                "hash_crc16" => Impl::HashCrc16,
                "truncate" => Impl::Truncate,
                other => return Err(BindError::Unknown { name: other.to_string() }),
            };
            (imp, sig.name.clone(), sig.name.clone())
        }
        Callee::Method { instance, .. } => {
            let inst = &program.instances[instance.index()];
            let ty_name = program.extern_types.get(inst.ty.index()).map(|t| t.name.clone()).unwrap_or_default();
            let kind = kinds.get(instance.index()).copied().unwrap_or(InstKind::Other);
            let imp = match (ty_name.as_str(), sig.name.as_str(), kind) {
                ("counter", "count", InstKind::Counter(c)) => Impl::Count(c),
                ("register", "read", InstKind::Register(r)) => Impl::RegRead(r),
                ("register", "write", InstKind::Register(r)) => Impl::RegWrite(r),
                ("conn_table", "lookup_in", InstKind::Ipvs) => Impl::LookupIn,
                ("conn_table", "lookup_out", InstKind::Ipvs) => Impl::LookupOut,
                ("scheduler", "schedule", InstKind::Ipvs) => Impl::Schedule,
                (t, m, _) => return Err(BindError::Unknown { name: format!("{t}.{m}") }),
            };
            (imp, format!("{}.{}", inst.name, sig.name), format!("{ty_name}.{}", sig.name))
        }
    };
    let mut entries = Vec::new();
    let mut args = Vec::new();
    for arg in &call.args {
        let start = entries.len() + 1;
        match arg {
            ExternArg::In(e) => entries.push(Entry { width: program.expr(*e).ty.width(), dir: Dir::In, slot: None }),
            ExternArg::Out(s) => {
                entries.push(Entry { width: program.slot(*s).ty.width(), dir: Dir::Out, slot: Some(*s) })
            }
            ExternArg::InOut(s) => {
                entries.push(Entry { width: program.slot(*s).ty.width(), dir: Dir::InOut, slot: Some(*s) })
            }
            ExternArg::List(items) => {
                for e in items {
                    entries.push(Entry { width: program.expr(*e).ty.width(), dir: Dir::In, slot: None });
                }
            }
        }
        args.push(start..entries.len() + 1);
    }
    check_shape(imp, &call.args).map_err(|why| BindError::BadCall { name: error_name, why: why.to_string() })?;
    Ok(Site { imp, name, entries, args })
}

/// Whether the arguments have the directions the implementation reads and writes.
fn check_shape(imp: Impl, args: &[ExternArg]) -> Result<(), &'static str> {
    use ExternArg::*;
    let data = |a: &ExternArg| matches!(a, In(_) | List(_));
    let ok = match imp {
        Impl::MarkToDrop => true,
        Impl::Csum16 | Impl::HashCrc32 | Impl::HashCrc16 => args.len() == 1 && data(&args[0]),
        Impl::Csum16Replace => args.len() == 3 && matches!(args[0], InOut(_)) && data(&args[1]) && data(&args[2]),
        Impl::Count(_) => matches!(args, [In(_)]),
        Impl::RegRead(_) => matches!(args, [Out(_), In(_)]),
        Impl::RegWrite(_) => matches!(args, [In(_), In(_)]),
        Impl::Truncate => matches!(args, [In(_)]),
        Impl::LookupIn => ipvs_shape(args, 6, 3),
        Impl::LookupOut => ipvs_shape(args, 6, 2),
        Impl::Schedule => ipvs_shape(args, 7, 3),
    };
    if ok {
        Ok(())
    } else {
        Err(match imp {
            Impl::Csum16 | Impl::HashCrc32 | Impl::HashCrc16 => "expected one `in` value, list or header",
            Impl::Csum16Replace => "expected `inout bit<16>`, then two `in` values",
            Impl::Count(_) => "expected one `in` index",
            Impl::RegRead(_) => "expected an `out` result and an `in` index",
            Impl::Truncate => "expected one `in` length",
            Impl::LookupIn => "expected 6 `in` values, then 3 `out` slots",
            Impl::LookupOut => "expected 6 `in` values, then 2 `out` slots",
            Impl::Schedule => "expected 7 `in` values, then 3 `out` slots",
            _ => "expected an `in` index and an `in` value",
        })
    }
}

/// `ins` scalar `in` arguments followed by `outs` `out` (or `inout`) slots.
fn ipvs_shape(args: &[ExternArg], ins: usize, outs: usize) -> bool {
    args.len() == ins + outs
        && args[..ins].iter().all(|a| matches!(a, ExternArg::In(_)))
        && args[ins..].iter().all(|a| matches!(a, ExternArg::Out(_) | ExternArg::InOut(_)))
}

/// Typed access to the extern argument array of a PHV block.
#[derive(Clone, Copy)]
struct Args {
    base: usize,
    len: usize,
}

impl Args {
    fn new(layout: &Layout) -> Args {
        Args { base: layout.extern_args as usize, len: layout.extern_args_len as usize }
    }

    /// Entry `i`, or 0 when outside the array or the block.
    fn get(self, phv: &[u8], i: usize) -> u128 {
        let at = self.base + 16 * i;
        if i >= self.len || at + 16 > phv.len() {
            return 0;
        }
        abi::read_value(phv, at as u32, Ty::Bit(128))
    }

    /// Sets entry `i` (ignored when outside the array or the block).
    fn set(self, phv: &mut [u8], i: usize, v: u128) {
        let at = self.base + 16 * i;
        if i < self.len && at + 16 <= phv.len() {
            abi::write_value(phv, at as u32, Ty::Bit(128), v);
        }
    }

    /// `(value, width)` of each entry of IR argument `k` of `site`.
    fn elems<'p>(self, phv: &'p [u8], site: &'p Site, k: usize) -> impl Iterator<Item = (u128, u16)> + 'p {
        let range = site.args.get(k).cloned().unwrap_or(0..0);
        range.map(move |i| (self.get(phv, i), site.entries.get(i - 1).map_or(0, |e| e.width)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::tests::compile;

    fn program(body: &str) -> Program {
        compile(&format!(
            r#"
            header h_t {{ bit<8> a; bit<12> b; bit<4> c; }}
            struct hs {{ h_t h; }}
            struct m_t {{ bit<32> x; bit<16> y; }}
            parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {{
                state start {{ pkt.extract(hdr.h); transition accept; }}
            }}
            control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {{
                {body}
            }}
            control D(packet_out pkt, in hs hdr) {{ apply {{ pkt.emit(hdr.h); }} }}
            Pipeline(P(), C(), D()) main;
            "#
        ))
    }

    #[test]
    fn out_entries_are_zeroed_and_results_written() {
        let p = program("register<bit<32>>(4) r; apply { r.read(meta.x, 9); meta.y = csum16(hdr.h); }");
        let layout = Layout::new(&p);
        let mut ex = Externs::bind(&p).unwrap_or_else(|e| panic!("{e}"));
        let mut phv = vec![0u8; layout.phv_size as usize];
        let a = Args::new(&layout);
        // Site 0: r.read(out result, in index 9): a stale out value must not survive.
        a.set(&mut phv, 1, 0xDEAD);
        a.set(&mut phv, 2, 9);
        ex.call(&p, &layout, &mut phv, 0);
        assert_eq!(a.get(&phv, 1), 0, "out-of-range read gives 0");
        assert_eq!(ex.registers()[0].errors(), 1);
        // Site 1: csum16 over a header with an 8, a 12 and a 4-bit field.
        a.set(&mut phv, 0, 0xBEEF);
        a.set(&mut phv, 1, 0x12);
        a.set(&mut phv, 2, 0x345);
        a.set(&mut phv, 3, 0x6);
        ex.call(&p, &layout, &mut phv, 1);
        assert_eq!(a.get(&phv, 0), u128::from(checksum::csum16_bytes(&[0x12, 0x34, 0x56])));
        assert_eq!(ex.site_name(1), Some("csum16"));
        assert_eq!(ex.site_entries(1), 3);
        // A site id that was never bound is counted, not a panic.
        ex.call(&p, &layout, &mut phv, 77);
        assert_eq!(ex.unbound_calls(), 1);
    }

    #[test]
    fn instances_get_state_and_limits() {
        let p = program("counter(16) c; register<bit<12>>(3) r; apply { c.count(1); r.write(0, 1); }");
        let ex = Externs::bind(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ex.counter("c").map(|c| c.len()), Some(16));
        assert_eq!(ex.counter("C.c").map(|c| c.len()), Some(16));
        assert_eq!(ex.register("r").map(|r| (r.len(), r.width())), Some((3, 12)));
        assert!(ex.counter("nope").is_none());
        let huge = program("counter(0xFFFFFFFF) c; apply { c.count(1); }");
        let err = Externs::bind(&huge).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("extern instance `C.c`: size 4294967295 is larger"), "{err}");
    }

    #[test]
    fn ipvs_calls_bind_to_one_director() {
        let p = program(
            "conn_table(100) t; scheduler() s; bit<8> r; bit<8> f; bit<32> ra; bit<16> rp;
             apply { r = t.lookup_in(6, 1, 2, 3, 4, 2, f, ra, rp);
                     r = s.schedule(0, 6, 1, 2, 3, 4, 2, f, ra, rp);
                     r = t.lookup_out(6, 1, 2, 3, 4, 2, ra, rp); truncate(20); }",
        );
        let mut ex = Externs::bind(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ex.director().map(|d| d.conns.config().max_conns), Some(100));
        assert_eq!(ex.site_name(1), Some("C.s.schedule"));
        let layout = Layout::new(&p);
        let mut phv = vec![0u8; layout.phv_size as usize];
        let a = Args::new(&layout);
        // No service 0: the schedule call passes (3); truncate is recorded.
        a.set(&mut phv, 0, 0xFF);
        ex.call(&p, &layout, &mut phv, 1);
        assert_eq!(a.get(&phv, 0), 3);
        a.set(&mut phv, 1, 20);
        ex.call(&p, &layout, &mut phv, 3);
        assert_eq!(ex.take_truncate(), Some(20));
        assert_eq!(ex.take_truncate(), None);
    }
}
