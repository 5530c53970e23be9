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
//! | `csum16_with_payload(data, len)` | the same over `data` and then at most `len` bytes of the payload (the call's `payload`) |
//! | `csum16_replace(csum, old, new)` | RFC 1624 eqn. 3 update of `csum` |
//! | `hash_crc32(data)`, `hash_crc16(data)` | CRC-32 (IEEE), CRC-16 (ARC) ([`crc`]) |
//! | `counter.count(index)` | one packet of `std.packet_length` bytes ([`counter`]) |
//! | `register.read(result, index)`, `.write(index, value)` | [`register`] |
//! | `conn_table.lookup_in`, `.lookup_out`, `scheduler.schedule` | IPVS over the switch's one [`Director`] ([`ipvs`]) |
//! | `conn_table.sync_receive(port, group, dport, len)` | hands the first `len` bytes of the payload to the backup sync daemon ([`Director::sync_receive`]) |
//! | `pmtu_cache.update(daddr, mtu, dev_mtu)`, `.lookup(daddr, dev_mtu)` | learnt path MTUs, by packet time ([`pmtu`]) |
//! | `truncate(length)` | the switch cuts the deparsed packet to `length` bytes ([`Externs::take_truncate`]) |

pub mod checksum;
pub mod counter;
pub mod crc;
pub mod ipvs;
pub mod pmtu;
pub mod register;

use std::ops::Range;

use p4lite_compiler::abi::{self, CounterImage, IpvsResult, Layout};
use p4lite_compiler::ir::{self, Callee, Dir, ExternArg, Program, SlotId};

use crate::ipvs::director::Director;

pub use counter::Counter;
pub use pmtu::PmtuCache;
pub use register::Register;

/// The most cells a `counter` or `register` instance may have (the checker
/// refuses more; this is the backstop for IR built by other means).
pub use p4lite_compiler::abi::MAX_CELLS;

/// Why a program's externs cannot be bound.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// No implementation of that name exists.
    #[error("extern `{name}` is not provided by the runtime")]
    Unknown { name: String },
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
    /// `csum16_with_payload`: the payload is the argument of [`Externs::call`].
    Csum16Payload,
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
    /// `conn_table.prefetch`: a hint, acted on only in a hint pass.
    Prefetch,
    /// `conn_table.related_in` (an ICMP error about a client's packet).
    RelatedIn,
    /// `conn_table.related_out` (an ICMP error about a packet to a real server).
    RelatedOut,
    /// `conn_table.related_tunnel` (an ICMP error about our tunnel packet).
    RelatedTunnel,
    /// `conn_table.sync_receive` (a datagram for the backup sync daemon).
    SyncReceive,
    /// `update` of path MTU cache `pmtu_caches[i]`.
    PmtuUpdate(usize),
    /// `lookup` of path MTU cache `pmtu_caches[i]`.
    PmtuLookup(usize),
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
    /// Indices (1-based) of the `out` entries, zeroed before each call:
    /// worked out at bind time so a call touches only these, not every entry.
    outs: Box<[usize]>,
    /// Whether the callee returns a value (in entry 0); for traces.
    returns: bool,
}

/// Entry access for [`run_ipvs`]: the argument array entry by entry, or a
/// window of it already bounds-checked as a whole.
trait Entries {
    fn get(&self, i: usize) -> u128;
    fn set(&mut self, i: usize, v: u128);
}

impl Entries for (Args, &mut [u8]) {
    #[inline(always)]
    fn get(&self, i: usize) -> u128 {
        self.0.get(self.1, i)
    }
    #[inline(always)]
    fn set(&mut self, i: usize, v: u128) {
        self.0.set(self.1, i, v)
    }
}

impl<const N: usize> Entries for [u8; N] {
    /// Entry `i` (0 past the window; with constant `i` the check folds away).
    #[inline(always)]
    fn get(&self, i: usize) -> u128 {
        match self.as_slice().get(16 * i..16 * i + 16) {
            Some(b) => {
                let mut e = [0u8; 16];
                e.copy_from_slice(b);
                u128::from_le_bytes(e)
            }
            None => 0,
        }
    }
    #[inline(always)]
    fn set(&mut self, i: usize, v: u128) {
        if let Some(b) = self.as_mut_slice().get_mut(16 * i..16 * i + 16) {
            b.copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// `conn_table.lookup_in`, `.lookup_out` or `scheduler.schedule` over the
/// argument entries `e`: reads the packet fields (the last `in` one is
/// `ip_len`, the L3 length the statistics count), runs the director, writes
/// the return code and the outs.
#[inline(always)]
fn run_ipvs<E: Entries + ?Sized>(imp: Impl, d: &mut Director, now_ns: u64, e: &mut E) {
    // Schedule's first argument is the service id; the packet follows.
    let at = usize::from(matches!(imp, Impl::Schedule));
    let p = ipvs::Packet {
        proto: e.get(at + 1) as u8,
        saddr: e.get(at + 2) as u32,
        sport: e.get(at + 3) as u16,
        daddr: e.get(at + 4) as u32,
        dport: e.get(at + 5) as u16,
        tcp_flags: e.get(at + 6) as u8,
        l3_len: u64::from(e.get(at + 7) as u16),
        now_ns,
    };
    let r = director_call(imp, d, e.get(1) as u16, &p);
    e.set(0, r.code.into());
    if matches!(imp, Impl::LookupOut) {
        e.set(at + 8, r.addr.into());
        e.set(at + 9, r.port.into());
    } else {
        e.set(at + 8, r.fwd.into());
        e.set(at + 9, r.addr.into());
        e.set(at + 10, r.port.into());
    }
}

/// `conn_table.related_in` / `related_out` / `related_tunnel` (`imp`) over
/// the argument entries `e`: protocol, two addresses and ports as
/// `lookup_in` / `lookup_out` take them, then `ip_len` and `intact` (and
/// `relay`, the quoted tunnel header's destination, protocol and UDP
/// destination port for the tunnel's; no TCP flags: an ICMP error changes no state);
/// writes the return code and the outs. ICMP errors are rare: no register
/// path.
fn run_related<E: Entries + ?Sized>(imp: Impl, d: &mut Director, now_ns: u64, e: &mut E) {
    let p = ipvs::Packet {
        proto: e.get(1) as u8,
        saddr: e.get(2) as u32,
        sport: e.get(3) as u16,
        daddr: e.get(4) as u32,
        dport: e.get(5) as u16,
        tcp_flags: 0,
        l3_len: u64::from(e.get(6) as u16),
        now_ns,
    };
    let intact = e.get(7) & 1 == 1;
    if imp == Impl::RelatedTunnel {
        let relay = e.get(8) & 1 == 1;
        let tunnel = (e.get(9) as u32, e.get(10) as u8, e.get(11) as u16);
        e.set(0, ipvs::related_tunnel(d, &p, intact, relay, tunnel).into());
    } else if imp == Impl::RelatedOut {
        let r = ipvs::related_out(d, &p, intact);
        e.set(0, r.code.into());
        e.set(8, r.vaddr.into());
        e.set(9, r.vport.into());
    } else {
        let r = ipvs::related_in(d, &p, intact);
        e.set(0, r.code.into());
        e.set(8, r.fwd.into());
        e.set(9, r.raddr.into());
        e.set(10, r.rport.into());
    }
}

/// What an IPVS method returns: its code and outs (`lookup_out` has no
/// `fwd`; its address and port are the virtual ones).
struct IpvsOuts {
    code: u8,
    fwd: u8,
    addr: u32,
    port: u16,
}

/// Runs `conn_table.lookup_in`, `.lookup_out` or `scheduler.schedule`
/// (`imp`; `service` only for the latter) on `p`: the one place both
/// argument paths ([`run_ipvs`], [`Externs::ipvs_call`]) reach the director.
#[inline(always)]
fn director_call(imp: Impl, d: &mut Director, service: u16, p: &ipvs::Packet) -> IpvsOuts {
    if matches!(imp, Impl::LookupOut) {
        let r = ipvs::lookup_out(d, p);
        return IpvsOuts { code: r.code, fwd: 0, addr: r.vaddr, port: r.vport };
    }
    let r = match imp {
        Impl::Schedule => ipvs::schedule(d, service, p),
        _ => ipvs::lookup_in(d, p),
    };
    IpvsOuts { code: r.code, fwd: r.fwd, addr: r.raddr, port: r.rport }
}

/// Where a standard-metadata slot the externs read lives in the PHV block,
/// worked out once at bind time (what `abi::read_value` recomputes per read).
#[derive(Clone, Copy, Debug)]
struct StdField {
    /// Byte offset in the block.
    off: usize,
    /// Container size in bytes: 1, 2, 4, 8 or 16.
    size: u8,
}

impl StdField {
    fn new(program: &Program, layout: &Layout, slot: SlotId) -> StdField {
        let off = layout.slot_offset.get(slot.index()).copied().unwrap_or(u32::MAX) as usize;
        let width = program.slots.get(slot.index()).map_or(128, |s| s.ty.width());
        StdField { off, size: abi::container_bytes(width) as u8 }
    }

    /// The slot's value, or 0 when outside the block (never panics).
    #[inline(always)]
    fn read(self, phv: &[u8]) -> u128 {
        let at = self.off;
        // Containers of up to 8 bytes: one 8-byte load, masked to the
        // container (little-endian), when the block has 8 bytes there.
        if self.size <= 8 {
            if let Some(b) = fixed::<8>(phv, at) {
                return u128::from(u64::from_le_bytes(b) & (u64::MAX >> (64 - 8 * u32::from(self.size))));
            }
        }
        match self.size {
            1 => phv.get(at).map_or(0, |b| u128::from(*b)),
            2 => fixed::<2>(phv, at).map_or(0, |b| u128::from(u16::from_le_bytes(b))),
            4 => fixed::<4>(phv, at).map_or(0, |b| u128::from(u32::from_le_bytes(b))),
            8 => fixed::<8>(phv, at).map_or(0, |b| u128::from(u64::from_le_bytes(b))),
            _ => fixed::<16>(phv, at).map_or(0, u128::from_le_bytes),
        }
    }
}

/// `N` bytes of `phv` at `at`, if in bounds: one fixed-size load.
#[inline(always)]
fn fixed<const N: usize>(phv: &[u8], at: usize) -> Option<[u8; N]> {
    let b = phv.get(at..at.checked_add(N)?)?;
    b.try_into().ok()
}

/// The standard-metadata slots extern implementations read, per packet.
#[derive(Clone, Copy, Debug)]
struct StdFields {
    packet_length: StdField,
}

/// The state of a program's externs: per-site bindings, counters and registers.
#[derive(Clone, Debug)]
pub struct Externs {
    sites: Vec<Option<Site>>,
    counters: Vec<Counter>,
    registers: Vec<Register>,
    pmtu_caches: Vec<PmtuCache>,
    /// Calls of a site id that was never bound (a backend bug; counted, not fatal).
    unbound_calls: u64,
    /// The IPVS director all `conn_table` and `scheduler` instances share
    /// (present when the program has one, or once `lb.conf` was loaded).
    director: Option<Box<Director>>,
    /// The length the current packet's `truncate` call asked for.
    truncate: Option<u32>,
    /// The current packet's arrival time in ns ([`Externs::packet_time`]):
    /// the IPVS externs' clock. Not read from `std.timestamp`, which a
    /// program may write: the director's time must not go back or jump
    /// because of what a program stores there.
    now_ns: u64,
    /// True while the switch runs a hint pass (`abi` module docs): hints
    /// (`conn_table.prefetch`) act only then, so a pipeline that calls
    /// them (a traced one, the interpreter) sees no difference.
    pub(crate) hinting: bool,
    /// Standard metadata offsets in `Layout::new(program)`, the layout both
    /// backends run with (a layout is a function of the program; `std_args_at`
    /// is a cheap guard against a caller passing some other one).
    std: StdFields,
    /// `Layout::new(program).extern_args` when `std` was worked out: a call
    /// with a different layout falls back to reading through that layout.
    std_args_at: u32,
}

/// What an instance's state is, by instance id.
#[derive(Clone, Copy, Debug)]
enum InstKind {
    Counter(usize),
    Register(usize),
    /// A `pmtu_cache`.
    Pmtu(usize),
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
            pmtu_caches: Vec::new(),
            unbound_calls: 0,
            director: None,
            truncate: None,
            now_ns: 0,
            hinting: false,
            std: StdFields { packet_length: StdField { off: usize::MAX, size: 16 } },
            std_args_at: u32::MAX,
        };
        let layout = Layout::new(program);
        ex.std = StdFields { packet_length: StdField::new(program, &layout, program.std.packet_length) };
        ex.std_args_at = layout.extern_args;
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
                "pmtu_cache" => {
                    let size = inst.ctor_args.first().copied().unwrap_or(0);
                    if size == 0 || size > u128::from(pmtu::MAX_ENTRIES) {
                        return Err(BindError::BadInstance {
                            name: inst.name.clone(),
                            why: format!("size {size}: a pmtu_cache holds 1 to {} entries", pmtu::MAX_ENTRIES),
                        });
                    }
                    ex.pmtu_caches.push(PmtuCache::new(&inst.name, size as usize));
                    InstKind::Pmtu(ex.pmtu_caches.len() - 1)
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

    /// `abi::IPVS_CALL`: call site `site` (a `conn_table.lookup_in`,
    /// `lookup_out` or `scheduler.schedule`) with its `in` values packed in
    /// `addrs`, `ports` and `misc` (the abi's layout): the same director
    /// calls as [`Externs::call`] makes for the site (`run_ipvs`) on the same
    /// packet fields, with the return value and outs packed into the
    /// result instead of the argument array, at the packet time the switch
    /// set ([`Externs::packet_time`]). A site of another kind (a backend
    /// bug) is counted as unbound and returns zeros, as does a program
    /// without a director.
    #[inline]
    pub fn ipvs_call(&mut self, site: u32, addrs: u64, ports: u64, misc: u64) -> IpvsResult {
        let imp = match self.sites.get(site as usize) {
            Some(Some(s)) if matches!(s.imp, Impl::LookupIn | Impl::LookupOut | Impl::Schedule | Impl::Prefetch) => {
                s.imp
            }
            _ => {
                self.unbound_calls += 1;
                return IpvsResult::default();
            }
        };
        let Some(d) = self.director.as_deref_mut() else { return IpvsResult::default() };
        if imp == Impl::Prefetch {
            if self.hinting {
                let src = ((addrs >> 32) as u32, (ports >> 16) as u16);
                ipvs::prefetch(d, misc as u8, src, (addrs as u32, ports as u16));
            }
            return IpvsResult::default();
        }
        let now_ns = self.now_ns;
        // The fields `run_ipvs` reads from the argument array, from the
        // registers (first address and port are the packet's source).
        let p = ipvs::Packet {
            proto: misc as u8,
            saddr: (addrs >> 32) as u32,
            sport: (ports >> 16) as u16,
            daddr: addrs as u32,
            dport: ports as u16,
            tcp_flags: (misc >> 8) as u8,
            l3_len: misc >> 16 & 0xffff,
            now_ns,
        };
        let r = director_call(imp, d, (misc >> 32) as u16, &p);
        IpvsResult {
            word: u64::from(r.code) | u64::from(r.fwd) << 8 | u64::from(r.port) << 16,
            addr: u64::from(r.addr),
        }
    }

    /// Per instance of `program` (by `InstanceId`): where compiled code
    /// counts a `counter`'s `count` calls itself ([`Counter::image`]), and
    /// `CounterImage::NONE` for every other instance. Valid as long as
    /// these externs exist (counter arrays are never reallocated).
    pub fn counter_images(&self, program: &Program) -> Vec<CounterImage> {
        let mut counters = self.counters.iter();
        program
            .instances
            .iter()
            .map(|inst| {
                let is_counter = program.extern_types.get(inst.ty.index()).is_some_and(|t| t.name == "counter");
                match is_counter.then(|| counters.next()).flatten() {
                    Some(c) => c.image(),
                    None => CounterImage::NONE,
                }
            })
            .collect()
    }

    /// Runs call site `site` on the argument array of `phv` (see the module docs).
    ///
    /// The return entry and every `out` entry are zeroed first, whatever the
    /// caller wrote there, so an `out` argument an implementation leaves
    /// alone reads 0 on both backends. Never panics: unknown sites and
    /// out-of-range entries are ignored (and counted in [`Externs::unbound_calls`]).
    /// `payload` is the packet's payload as it arrived: its bytes after
    /// where the parser stopped (`csum16_with_payload` sums a prefix of it).
    pub fn call(&mut self, program: &Program, layout: &Layout, phv: &mut [u8], site: u32, payload: &[u8]) {
        let Externs {
            sites,
            counters,
            registers,
            pmtu_caches,
            unbound_calls,
            director,
            truncate,
            now_ns,
            hinting,
            std,
            std_args_at,
        } = self;
        let Some(Some(s)) = sites.get(site as usize) else {
            *unbound_calls += 1;
            return;
        };
        // The offsets worked out at bind time are for `Layout::new(program)`;
        // any other layout (none exists today) is read through itself.
        let std = if *std_args_at == layout.extern_args {
            *std
        } else {
            StdFields { packet_length: StdField::new(program, layout, program.std.packet_length) }
        };
        let a = Args::new(layout);
        a.set(phv, 0, 0);
        for &i in s.outs.iter() {
            a.set(phv, i, 0);
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
            Impl::Csum16Payload => {
                // The length is the entry after the data's (a list takes one per element).
                let at = s.args.get(1).map_or(usize::MAX, |r| r.start);
                let len = usize::try_from(a.get(phv, at)).unwrap_or(usize::MAX).min(payload.len());
                let r = checksum::csum16_then_bytes(a.elems(phv, s, 0), &payload[..len]);
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
                let bytes = std.packet_length.read(phv) as u64;
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
            Impl::PmtuUpdate(c) => {
                let (daddr, mtu, dev_mtu) = (a.get(phv, 1) as u32, a.get(phv, 2) as u16, a.get(phv, 3) as u16);
                let r = pmtu_caches.get_mut(c).map_or(dev_mtu, |p| p.update(daddr, mtu, dev_mtu, *now_ns));
                a.set(phv, 0, r.into());
            }
            Impl::PmtuLookup(c) => {
                let (daddr, dev_mtu) = (a.get(phv, 1) as u32, a.get(phv, 2) as u16);
                let r = pmtu_caches.get_mut(c).map_or(dev_mtu, |p| p.lookup(daddr, dev_mtu, *now_ns));
                a.set(phv, 0, r.into());
            }
            Impl::Prefetch => {
                if let (true, Some(d)) = (*hinting, director.as_deref_mut()) {
                    let src = (a.get(phv, 2) as u32, a.get(phv, 3) as u16);
                    ipvs::prefetch(d, a.get(phv, 1) as u8, src, (a.get(phv, 4) as u32, a.get(phv, 5) as u16));
                }
            }
            Impl::RelatedIn | Impl::RelatedOut | Impl::RelatedTunnel => {
                if let Some(d) = director.as_deref_mut() {
                    run_related(s.imp, d, *now_ns, &mut (a, phv));
                }
            }
            Impl::SyncReceive => {
                let taken = director.as_deref_mut().is_some_and(|d| {
                    let len = usize::try_from(a.get(phv, 4)).unwrap_or(usize::MAX).min(payload.len());
                    let (port, group, dport) = (a.get(phv, 1) as u16, a.get(phv, 2) as u32, a.get(phv, 3) as u16);
                    d.sync_receive(port, group, dport, &payload[..len], *now_ns)
                });
                a.set(phv, 0, if taken { ipvs::IPVS_HIT } else { ipvs::IPVS_MISS }.into());
            }
            Impl::LookupIn | Impl::LookupOut | Impl::Schedule => {
                let Some(d) = director.as_deref_mut() else { return };
                let now_ns = *now_ns;
                // The usual case: the whole shape (return, [service,] six
                // packet fields and `ip_len`, outs) is in the array, so it is
                // read and written through one fixed-size window with a single
                // bounds check; otherwise entry by entry (missing entries read 0).
                let done = match s.imp {
                    Impl::LookupIn => a.window::<{ 16 * 11 }>(phv).map(|w| run_ipvs(s.imp, d, now_ns, w)),
                    Impl::LookupOut => a.window::<{ 16 * 10 }>(phv).map(|w| run_ipvs(s.imp, d, now_ns, w)),
                    _ => a.window::<{ 16 * 12 }>(phv).map(|w| run_ipvs(s.imp, d, now_ns, w)),
                };
                if done.is_none() {
                    run_ipvs(s.imp, d, now_ns, &mut (a, phv));
                }
            }
        }
    }

    /// The name of the extern call site `site` (`csum16`, `MyIngress.per_port.count`).
    pub fn site_name(&self, site: u32) -> Option<&str> {
        Some(self.sites.get(site as usize)?.as_ref()?.name.as_str())
    }

    /// Whether call site `site`'s callee returns a value (`false` for a
    /// void call and for an unbound site).
    pub fn site_returns(&self, site: u32) -> bool {
        self.sites.get(site as usize).and_then(|s| s.as_ref()).is_some_and(|s| s.returns)
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

    /// Every `pmtu_cache` instance, in instance order.
    pub fn pmtu_caches(&self) -> &[PmtuCache] {
        &self.pmtu_caches
    }

    /// A `pmtu_cache` by qualified or unique unqualified name.
    pub fn pmtu_cache(&self, name: &str) -> Option<&PmtuCache> {
        find(self.pmtu_caches.iter().map(|c| c.name.as_str()), name).map(|i| &self.pmtu_caches[i])
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
    /// runs: the IPVS externs run on it, the director's timers advance with
    /// packet time even when no IPVS extern runs, and a stale `truncate` is
    /// forgotten.
    #[inline]
    pub fn packet_time(&mut self, ts_ns: u64) {
        self.truncate = None;
        self.now_ns = ts_ns;
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
                "csum16_with_payload" => Impl::Csum16Payload,
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
                ("pmtu_cache", "update", InstKind::Pmtu(c)) => Impl::PmtuUpdate(c),
                ("pmtu_cache", "lookup", InstKind::Pmtu(c)) => Impl::PmtuLookup(c),
                ("conn_table", "lookup_in", InstKind::Ipvs) => Impl::LookupIn,
                ("conn_table", "lookup_out", InstKind::Ipvs) => Impl::LookupOut,
                ("scheduler", "schedule", InstKind::Ipvs) => Impl::Schedule,
                ("conn_table", "prefetch", InstKind::Ipvs) => Impl::Prefetch,
                ("conn_table", "related_in", InstKind::Ipvs) => Impl::RelatedIn,
                ("conn_table", "related_out", InstKind::Ipvs) => Impl::RelatedOut,
                ("conn_table", "related_tunnel", InstKind::Ipvs) => Impl::RelatedTunnel,
                ("conn_table", "sync_receive", InstKind::Ipvs) => Impl::SyncReceive,
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
    let outs = entries.iter().enumerate().filter(|(_, e)| e.dir == Dir::Out).map(|(i, _)| i + 1).collect();
    Ok(Site { imp, name, entries, args, outs, returns: sig.ret.is_some() })
}

/// Whether the arguments have the directions the implementation reads and writes.
fn check_shape(imp: Impl, args: &[ExternArg]) -> Result<(), &'static str> {
    use ExternArg::*;
    let data = |a: &ExternArg| matches!(a, In(_) | List(_));
    let ok = match imp {
        Impl::MarkToDrop => true,
        Impl::Csum16 | Impl::HashCrc32 | Impl::HashCrc16 => args.len() == 1 && data(&args[0]),
        Impl::Csum16Payload => matches!(args, [d, In(_)] if data(d)),
        Impl::Csum16Replace => args.len() == 3 && matches!(args[0], InOut(_)) && data(&args[1]) && data(&args[2]),
        Impl::Count(_) => matches!(args, [In(_)]),
        Impl::RegRead(_) => matches!(args, [Out(_), In(_)]),
        Impl::RegWrite(_) => matches!(args, [In(_), In(_)]),
        Impl::Truncate => matches!(args, [In(_)]),
        Impl::PmtuUpdate(_) => matches!(args, [In(_), In(_), In(_)]),
        Impl::PmtuLookup(_) => matches!(args, [In(_), In(_)]),
        Impl::LookupIn => ipvs_shape(args, 7, 3),
        Impl::LookupOut => ipvs_shape(args, 7, 2),
        Impl::Schedule => ipvs_shape(args, 8, 3),
        Impl::Prefetch => matches!(args, [In(_), In(_), In(_), In(_), In(_)]),
        Impl::RelatedIn => ipvs_shape(args, 7, 3),
        Impl::RelatedOut => ipvs_shape(args, 7, 2),
        Impl::RelatedTunnel => ipvs_shape(args, 11, 0),
        Impl::SyncReceive => ipvs_shape(args, 4, 0),
    };
    if ok {
        Ok(())
    } else {
        Err(match imp {
            Impl::Csum16 | Impl::HashCrc32 | Impl::HashCrc16 => "expected one `in` value, list or header",
            Impl::Csum16Replace => "expected `inout bit<16>`, then two `in` values",
            Impl::Csum16Payload => "expected one `in` value, list or header, then an `in` length",
            Impl::Count(_) => "expected one `in` index",
            Impl::RegRead(_) => "expected an `out` result and an `in` index",
            Impl::Truncate => "expected one `in` length",
            Impl::PmtuUpdate(_) => "expected 3 `in` values (address, reported MTU, device MTU)",
            Impl::PmtuLookup(_) => "expected 2 `in` values (address, device MTU)",
            Impl::LookupIn => "expected 7 `in` values, then 3 `out` slots",
            Impl::LookupOut => "expected 7 `in` values, then 2 `out` slots",
            Impl::Schedule => "expected 8 `in` values, then 3 `out` slots",
            Impl::RelatedIn => "expected 7 `in` values, then 3 `out` slots",
            Impl::RelatedOut => "expected 7 `in` values, then 2 `out` slots",
            Impl::RelatedTunnel => "expected 11 `in` values",
            Impl::SyncReceive => "expected 4 `in` values (port, group, UDP port, length)",
            Impl::Prefetch => {
                "expected 5 `in` values (protocol, source address and port, destination address and port)"
            }
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
    ///
    /// One bounds check and one 16-byte load (what `abi::read_value` does for
    /// a `bit<128>` after a width dispatch it does not inline here).
    #[inline(always)]
    fn get(self, phv: &[u8], i: usize) -> u128 {
        if i >= self.len {
            return 0;
        }
        fixed::<16>(phv, self.base + 16 * i).map_or(0, u128::from_le_bytes)
    }

    /// Sets entry `i` (ignored when outside the array or the block).
    #[inline(always)]
    fn set(self, phv: &mut [u8], i: usize, v: u128) {
        if i >= self.len {
            return;
        }
        let at = self.base + 16 * i;
        if let Some(b) = phv.get_mut(at..at + 16) {
            b.copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Entries `0..N / 16` as one array, if all are in the array and the block.
    #[inline(always)]
    fn window<const N: usize>(self, phv: &mut [u8]) -> Option<&mut [u8; N]> {
        if N / 16 > self.len {
            return None;
        }
        phv.get_mut(self.base..self.base.checked_add(N)?)?.try_into().ok()
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
        ex.call(&p, &layout, &mut phv, 0, &[]);
        assert_eq!(a.get(&phv, 1), 0, "out-of-range read gives 0");
        assert_eq!(ex.registers()[0].errors(), 1);
        // Site 1: csum16 over a header with an 8, a 12 and a 4-bit field.
        a.set(&mut phv, 0, 0xBEEF);
        a.set(&mut phv, 1, 0x12);
        a.set(&mut phv, 2, 0x345);
        a.set(&mut phv, 3, 0x6);
        ex.call(&p, &layout, &mut phv, 1, &[]);
        assert_eq!(a.get(&phv, 0), u128::from(checksum::csum16_bytes(&[0x12, 0x34, 0x56])));
        assert_eq!(ex.site_name(1), Some("csum16"));
        assert_eq!(ex.site_entries(1), 3);
        // A site id that was never bound is counted, not a panic.
        ex.call(&p, &layout, &mut phv, 77, &[]);
        assert_eq!(ex.unbound_calls(), 1);
    }

    #[test]
    fn precomputed_reads_match_the_abi() {
        let p = program(
            "conn_table(100) t; bit<8> r; bit<8> f; bit<32> ra; bit<16> rp;
             apply { r = t.lookup_in(6, 1, 2, 3, 4, 2, 40, f, ra, rp); }",
        );
        let layout = Layout::new(&p);
        let mut phv: Vec<u8> = (0..layout.phv_size).map(|i| (i * 37 + 11) as u8).collect();
        // Standard metadata read at bind-time offsets equals `abi::read_value`.
        for slot in [p.std.packet_length, p.std.timestamp, p.std.drop, p.std.egress_spec] {
            let f = StdField::new(&p, &layout, slot);
            assert_eq!(f.read(&phv), abi::read_value(&phv, layout.slot(slot), p.slot(slot).ty));
        }
        assert_eq!(StdField { off: usize::MAX, size: 4 }.read(&phv), 0, "outside the block reads 0");
        // The window sees the same entries as entry-by-entry access ...
        let a = Args::new(&layout);
        let win: [u8; 176] = *a.window::<176>(&mut phv).unwrap_or_else(|| panic!("no window"));
        for i in 0..11 {
            assert_eq!(Entries::get(&win, i), a.get(&phv, i));
        }
        // ... and exists only when the whole shape is in the array.
        assert!(Args { len: 10, ..a }.window::<176>(&mut phv).is_none());
        // Both ways of running lookup_in write the same results.
        let mut by_entry = phv.clone();
        let mut by_window = phv.clone();
        let (mut d1, mut d2) = (Director::new(100), Director::new(100));
        run_ipvs(Impl::LookupIn, &mut d1, 5, &mut (a, &mut by_entry[..]));
        let w = a.window::<176>(&mut by_window).unwrap_or_else(|| panic!("no window"));
        run_ipvs(Impl::LookupIn, &mut d2, 5, w);
        assert_eq!(by_entry, by_window);
        assert_eq!(a.get(&by_entry, 0), u128::from(ipvs::IPVS_MISS));
    }

    #[test]
    fn instances_get_state_and_limits() {
        let p = program("counter(16) c; register<bit<12>>(3) r; apply { c.count(1); r.write(0, 1); }");
        let ex = Externs::bind(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ex.counter("c").map(|c| c.len()), Some(16));
        assert_eq!(ex.counter("C.c").map(|c| c.len()), Some(16));
        assert_eq!(ex.register("r").map(|r| (r.len(), r.width())), Some((3, 12)));
        assert!(ex.counter("nope").is_none());
        // The checker refuses such a size; the runtime's backstop sees IR built otherwise.
        let mut huge = program("counter(16) c; apply { c.count(1); }");
        huge.instances.iter_mut().filter(|i| i.name == "C.c").for_each(|i| i.ctor_args[0] = 0xFFFF_FFFF);
        let err = Externs::bind(&huge).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("extern instance `C.c`: size 4294967295 is larger"), "{err}");
    }

    #[test]
    fn pmtu_cache_calls_run_at_packet_time() {
        let p = program(
            "pmtu_cache(4) pm; apply { meta.y = pm.update(meta.x, 1400, 1500); meta.y = pm.lookup(meta.x, 1500); }",
        );
        let mut ex = Externs::bind(&p).unwrap_or_else(|e| panic!("{e}"));
        let layout = Layout::new(&p);
        let mut phv = vec![0u8; layout.phv_size as usize];
        let a = Args::new(&layout);
        let call = |ex: &mut Externs, phv: &mut Vec<u8>, site: u32, args: &[u128]| {
            for (i, v) in args.iter().enumerate() {
                a.set(phv, i + 1, *v);
            }
            ex.call(&p, &layout, phv, site, &[]);
            a.get(phv, 0)
        };
        ex.packet_time(1_000);
        assert_eq!(call(&mut ex, &mut phv, 0, &[9, 1400, 1500]), 1500, "first report: the old route MTU");
        assert_eq!(call(&mut ex, &mut phv, 1, &[9, 1500]), 1400);
        assert_eq!(call(&mut ex, &mut phv, 1, &[10, 1500]), 1500);
        ex.packet_time(1_000 + pmtu::MTU_EXPIRES_NS);
        assert_eq!(call(&mut ex, &mut phv, 1, &[9, 1500]), 1500, "expired by packet time");
        assert_eq!(ex.pmtu_cache("pm").map(|c| (c.capacity(), c.stats().stored, c.stats().expired)), Some((4, 1, 1)));
        // Sizes the runtime cannot honour are refused when binding. The
        // checker refuses them too (E0607); the runtime's backstop sees IR
        // built otherwise.
        for bad in [0, 2_000_000] {
            let mut p = program("pmtu_cache(4) pm; apply { meta.y = pm.lookup(1, 1500); }");
            p.instances.iter_mut().filter(|i| i.name == "C.pm").for_each(|i| i.ctor_args[0] = bad);
            let err = Externs::bind(&p).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.starts_with(&format!("extern instance `C.pm`: size {bad}:")), "{err}");
        }
    }

    #[test]
    fn ipvs_calls_bind_to_one_director() {
        let p = program(
            "conn_table(100) t; scheduler() s; bit<8> r; bit<8> f; bit<32> ra; bit<16> rp;
             apply { r = t.lookup_in(6, 1, 2, 3, 4, 2, 40, f, ra, rp);
                     r = s.schedule(0, 6, 1, 2, 3, 4, 2, 40, f, ra, rp);
                     r = t.lookup_out(6, 1, 2, 3, 4, 2, 40, ra, rp); truncate(20); }",
        );
        let mut ex = Externs::bind(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ex.director().map(|d| d.conns.config().max_conns), Some(100));
        assert_eq!(ex.site_name(1), Some("C.s.schedule"));
        let layout = Layout::new(&p);
        let mut phv = vec![0u8; layout.phv_size as usize];
        let a = Args::new(&layout);
        // No service 0: the schedule call passes (3); truncate is recorded.
        a.set(&mut phv, 0, 0xFF);
        ex.call(&p, &layout, &mut phv, 1, &[]);
        assert_eq!(a.get(&phv, 0), 3);
        a.set(&mut phv, 1, 20);
        ex.call(&p, &layout, &mut phv, 3, &[]);
        assert_eq!(ex.take_truncate(), Some(20));
        assert_eq!(ex.take_truncate(), None);
    }
}
