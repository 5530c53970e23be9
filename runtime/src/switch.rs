//! The software switch: one program, its tables, multicast groups and
//! extern state, and a backend (the Cranelift JIT or the reference
//! interpreter) that runs packets through it.
//!
//! # Forwarding
//! For each packet the switch copies the bytes behind enough headroom for
//! the deparser and runs the pipeline, which starts from zeroed PHV slots
//! with `std.ingress_port` (masked to its 9 bits), `std.packet_length` and
//! `std.timestamp` set (compiled code does this itself, `abi` module docs;
//! for the interpreter the switch does).
//! Then:
//! - a parser that ran out of packet drops it as [`DropReason::Truncated`],
//!   one that rejected as [`DropReason::ParserReject`], one that extracted
//!   past a header stack's end as [`DropReason::StackOutOfBounds`] (all
//!   name the state);
//! - `std.drop == 1` (set by `mark_to_drop`) drops it as [`DropReason::MarkToDrop`];
//! - `std.mcast_grp != 0` sends one copy to each port of that multicast
//!   group except the ingress port;
//! - otherwise it goes out of `std.egress_spec` (dropped as
//!   [`DropReason::UnknownPort`] only if [`Switch::set_ports`] restricted the
//!   ports and this is not one of them).
//!
//! There is no egress pipeline: each copy is the deparsed packet as is.
//! Processing a packet allocates nothing but the output `Vec`s of
//! [`Switch::process`] ([`Switch::process_in_place`] allocates nothing).

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fmt;

use p4lite_compiler::abi::{Layout, Verdict};
use p4lite_compiler::ir::{self, Program};
use p4lite_compiler::jit::{self, CompiledPipeline, JitError, JitOptions};

use crate::control;
use crate::externs::{BindError, Externs};
use crate::host::{self, ApplyPlan, Core, Field, Images, PacketBuf, PhvBlock, Runtime, Trace};
use crate::interp;
use crate::tables::{McastGroups, TableError, Tables};

/// Which engine runs the pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Native code from the Cranelift JIT.
    #[default]
    Jit,
    /// The reference interpreter.
    Interp,
}

/// How to build a [`Switch`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SwitchOptions {
    /// The engine that runs the pipeline.
    pub backend: Backend,
    /// Record BMv2-console-like trace lines per packet ([`Switch::take_trace`]).
    pub trace: bool,
}

/// Why a switch could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// A call site names an extern the runtime lacks, or calls it oddly.
    #[error(transparent)]
    Extern(#[from] BindError),
    /// The program's own table entries could not be installed.
    #[error("cannot install the program's table entries: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Entries(Vec<TableError>),
    /// Code generation failed.
    #[error(transparent)]
    Jit(#[from] JitError),
}

/// One output packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutPacket {
    /// The egress port.
    pub port: u16,
    /// The deparsed packet.
    pub data: Vec<u8>,
}

/// What happened to a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Sent out of one or more ports.
    Forwarded,
    /// Not sent anywhere.
    Dropped(DropReason),
}

/// Why a packet was dropped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// `extract`, `advance` or `lookahead` ran past the end, in this parser state.
    Truncated { state: String },
    /// The parser reached `reject` (or no select case matched) in this state.
    ParserReject { state: String },
    /// `extract` of a header stack's `next` in this state found every
    /// element taken (P4_16's `error.StackOutOfBounds`).
    StackOutOfBounds { state: String },
    /// A `verify(cond, error.E)` in this state found `cond` false: `error`
    /// is `E`.
    ParserError { state: String, error: String },
    /// The program called `mark_to_drop`.
    MarkToDrop,
    /// `egress_spec` is not one of the ports given to [`Switch::set_ports`].
    UnknownPort,
    /// `mcast_grp` names a group the control plane did not create.
    UnknownMcastGroup { group: u16 },
    /// The multicast group has no port other than the ingress port.
    EmptyMcastGroup { group: u16 },
    /// The packet is longer than the switch handles.
    TooLong { len: usize },
    /// The packet arrived on a port above [`MAX_PORT`], which
    /// `std.ingress_port` (bit<9>) cannot hold.
    PortOutOfRange { port: u16 },
    /// The compiled pipeline returned an invalid verdict or packet bounds (a JIT bug).
    Internal { what: String },
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::Truncated { state } => write!(f, "truncated in parser state '{state}'"),
            DropReason::ParserReject { state } => write!(f, "parser reject in state '{state}'"),
            DropReason::StackOutOfBounds { state } => {
                write!(f, "parser reject in state '{state}': header stack out of bounds (error.StackOutOfBounds)")
            }
            DropReason::ParserError { state, error } => {
                write!(f, "parser reject in state '{state}': verify failed (error.{error})")
            }
            DropReason::MarkToDrop => write!(f, "mark_to_drop"),
            DropReason::UnknownPort => write!(f, "egress port not in the port set"),
            DropReason::UnknownMcastGroup { group } => write!(f, "unknown multicast group {group}"),
            DropReason::EmptyMcastGroup { group } => write!(f, "multicast group {group} has no other port"),
            DropReason::TooLong { len } => write!(f, "packet of {len} bytes is too long"),
            DropReason::PortOutOfRange { port } => write!(f, "ingress port {port} is above {MAX_PORT}"),
            DropReason::Internal { what } => write!(f, "internal error: {what}"),
        }
    }
}

/// Packet and byte counts of one port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received on the port.
    pub rx_packets: u64,
    /// Bytes received, as they arrived.
    pub rx_bytes: u64,
    /// Packets sent out of the port (multicast copies included).
    pub tx_packets: u64,
    /// Bytes sent, as deparsed.
    pub tx_bytes: u64,
}

/// Per-port traffic and drops by reason. Table hits and misses are in
/// [`Switch::tables`], counters and registers in [`Switch::externs`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Traffic of each port that received or sent a packet.
    pub ports: BTreeMap<u16, PortStats>,
    /// Dropped packets by reason.
    pub drops: BTreeMap<DropReason, u64>,
}

impl Stats {
    /// Packets received on all ports.
    pub fn rx_packets(&self) -> u64 {
        self.ports.values().map(|p| p.rx_packets).sum()
    }

    /// Packets sent on all ports (a multicast packet counts once per copy).
    pub fn tx_packets(&self) -> u64 {
        self.ports.values().map(|p| p.tx_packets).sum()
    }

    /// Packets dropped, for any reason.
    pub fn dropped(&self) -> u64 {
        self.drops.values().sum()
    }
}

/// The counters behind [`Stats`], in the shapes the per-packet path updates
/// cheaply: per-port counts indexed by port number, drop counts in a short
/// list searched linearly (a program has a handful of drop reasons).
/// [`Switch::stats`] turns them into a [`Stats`] when asked.
#[derive(Clone, Debug, Default)]
struct Counts {
    /// Indexed by port; grown to the highest port seen. A port with no
    /// packet in either direction is not part of [`Stats::ports`].
    ports: Vec<PortStats>,
    /// Drops by reason, in order of first occurrence.
    drops: Vec<(DropReason, u64)>,
}

impl Counts {
    /// The counts of `port` (one bounds check when the port was seen before).
    #[inline]
    fn port(&mut self, port: u16) -> &mut PortStats {
        let i = usize::from(port);
        if i < self.ports.len() {
            return &mut self.ports[i];
        }
        self.grow(i)
    }

    /// [`Counts::port`] for a port above the highest seen: allocates only
    /// the first time a higher port shows up (out of line).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, i: usize) -> &mut PortStats {
        self.ports.resize((i + 1).max(64), PortStats::default());
        &mut self.ports[i]
    }

    fn drop(&mut self, reason: &DropReason) {
        match self.drops.iter_mut().find(|(r, _)| r == reason) {
            Some((_, n)) => *n += 1,
            None => self.drops.push((reason.clone(), 1)),
        }
    }

    fn stats(&self) -> Stats {
        let ports = self
            .ports
            .iter()
            .enumerate()
            .filter(|(_, p)| p.rx_packets != 0 || p.tx_packets != 0)
            .map(|(i, p)| (i as u16, *p))
            .collect();
        Stats { ports, drops: self.drops.iter().cloned().collect() }
    }
}

/// The standard-metadata fields the switch reads and writes around the pipeline.
#[derive(Clone, Copy, Debug)]
struct StdFields {
    ingress_port: Field,
    packet_length: Field,
    timestamp: Field,
    drop: Field,
    mcast_grp: Field,
    egress_spec: Field,
    /// The fields have the prelude's widths (`bit<9>`, `bit<32>`, `bit<64>`,
    /// `bit<1>`, `bit<16>`, `bit<9>`), so their container sizes and masks
    /// are known and the per-packet accesses skip the size dispatch.
    prelude_sizes: bool,
}

impl StdFields {
    fn new(program: &Program, layout: &Layout) -> StdFields {
        let f = |slot| Field::slot(program, layout, slot);
        let std = program.std;
        let mut fields = StdFields {
            ingress_port: f(std.ingress_port),
            packet_length: f(std.packet_length),
            timestamp: f(std.timestamp),
            drop: f(std.drop),
            mcast_grp: f(std.mcast_grp),
            egress_spec: f(std.egress_spec),
            prelude_sizes: false,
        };
        let all = [
            fields.ingress_port,
            fields.packet_length,
            fields.timestamp,
            fields.drop,
            fields.mcast_grp,
            fields.egress_spec,
        ];
        let sizes = all.map(Field::size);
        let widths = all.map(Field::width);
        fields.prelude_sizes = sizes == [2, 4, 8, 1, 2, 2] && widths == [9, 32, 64, 1, 16, 9];
        fields
    }

    /// Sets `ingress_port`, `packet_length` and `timestamp`.
    #[inline(always)]
    fn write_arrival(&self, phv: &mut [u8], port: u16, len: usize, ts_ns: u64) {
        if self.prelude_sizes {
            // The widths are known too: masks as constants (the length's
            // and timestamp's stores keep their low 32 and 64 bits).
            self.ingress_port.store_fitting::<2>(phv, u64::from(port) & 0x1FF);
            self.packet_length.store_fitting::<4>(phv, len as u64);
            self.timestamp.store_fitting::<8>(phv, ts_ns);
        } else {
            self.ingress_port.store(phv, u128::from(port));
            self.packet_length.store(phv, len as u128);
            self.timestamp.store(phv, u128::from(ts_ns));
        }
    }

    /// `drop`, `mcast_grp` and `egress_spec`, as the pipeline left them.
    #[inline(always)]
    fn read_decision(&self, phv: &[u8]) -> (bool, u16, u16) {
        if self.prelude_sizes {
            (
                self.drop.load_sized::<1>(phv) != 0,
                self.mcast_grp.load_sized::<2>(phv) as u16,
                self.egress_spec.load_sized::<2>(phv) as u16,
            )
        } else {
            (self.drop.load(phv) != 0, self.mcast_grp.load(phv) as u16, self.egress_spec.load(phv) as u16)
        }
    }
}

/// A set of ports as a bitmap over all `u16` port numbers (8 KiB).
#[derive(Clone, Debug)]
struct PortSet(Box<[u64]>);

impl PortSet {
    fn new(ports: &[u16]) -> PortSet {
        let mut bits = vec![0u64; (1 << 16) / 64].into_boxed_slice();
        for &p in ports {
            bits[usize::from(p) / 64] |= 1 << (p % 64);
        }
        PortSet(bits)
    }

    #[inline]
    fn contains(&self, port: u16) -> bool {
        self.0.get(usize::from(port) / 64).is_some_and(|w| w & (1 << (port % 64)) != 0)
    }
}

/// The result of [`Switch::process_in_place`]: views into the switch's buffers.
#[derive(Debug)]
pub struct Processed<'a> {
    /// Forwarded or dropped, and why.
    pub outcome: Outcome,
    /// The ports a copy goes out of (empty when dropped).
    pub ports: &'a [u16],
    /// The output packet (the same bytes for every port).
    pub data: &'a [u8],
}

/// The engine behind a switch.
enum Engine {
    Jit(CompiledPipeline),
    Interp,
}

/// The longest packet the switch accepts (the abi's offsets are `u32`).
pub const MAX_PACKET: usize = 1 << 20;

/// The highest port number: `std.ingress_port` and `std.egress_spec` are
/// `bit<9>` (as in v1model). The tools refuse a higher port ([`parse_port`])
/// and the switch drops a packet that arrives on one
/// ([`DropReason::PortOutOfRange`]) rather than let port 600 reach the
/// program as port 88.
pub const MAX_PORT: u16 = 511;

/// Parses a port number of the command line or a test file: a decimal
/// number in `0..=MAX_PORT`, or a message that says what is wrong.
pub fn parse_port(word: &str) -> Result<u16, String> {
    match word.parse::<u16>() {
        Ok(port) if port <= MAX_PORT => Ok(port),
        _ if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("port `{word}` is out of range (0..={MAX_PORT}: `std.ingress_port` is bit<9>)"))
        }
        _ => Err(format!("`{word}` is not a port number (0..={MAX_PORT})")),
    }
}

/// How many packets ahead of the one being processed [`Switch::hint`] is
/// called by replay and the benchmarks: far enough for the hinted memory to
/// arrive (a DRAM access is a few hundred ns, a packet ~150 ns), near enough
/// for it to still be in the caches.
pub const HINT_DISTANCE: usize = 12;

/// A software switch running one p4lite program.
pub struct Switch {
    core: Core,
    engine: Engine,
    phv: PhvBlock,
    pkt: PacketBuf,
    /// Bytes kept in front of every packet (at least `Layout::max_emit_bytes`).
    headroom: usize,
    /// Where the standard metadata lives in the PHV.
    std: StdFields,
    counts: Counts,
    /// `counts` as [`Stats`], made by [`Switch::stats`] and dropped by the next packet.
    stats: OnceCell<Stats>,
    /// The ports packets may leave by; `None` = any.
    ports: Option<PortSet>,
    /// The ports of the current packet's multicast copies (reused).
    egress: Vec<u16>,
    /// The port of the current packet when it goes out of one port (the
    /// usual case: [`Processed::ports`] is then this one port).
    unicast: u16,
    /// Packets processed so far, numbering trace lines.
    packet_no: u64,
    /// The PHV of the hint pass ([`Switch::hint`]), when the pipeline has one.
    hint_phv: Option<PhvBlock>,
    /// The tables' generation the JIT's table snapshots were last taken
    /// at ([`Switch::specialise`]); `None` before the first.
    specialised: Option<u64>,
    /// The packet number from which the tables may be snapshotted again.
    specialise_from: u64,
    /// How many times the pipeline was compiled with table snapshots.
    specialisations: u32,
    /// Whether the running code has any table snapshots baked in.
    with_snapshots: bool,
}

/// The least number of packets between two compilations with fresh table
/// snapshots ([`Switch::specialise`]): a control plane that keeps changing
/// tables costs a compilation per this many packets at most, and its
/// tables are served by their images in between.
const SPECIALISE_INTERVAL: u64 = 1 << 16;

/// The "Processing packet" trace line (out of line: the untraced
/// per-packet path keeps no formatting code or its registers).
#[cold]
#[inline(never)]
fn trace_receive(trace: &mut Trace, n: u64, port: u16, len: usize) {
    trace.emit(format!("Processing packet #{n} received on port {port} ({len} bytes)"));
}

/// Why the pipeline's `verdict` (anything but `Some(Verdict::Forward)`)
/// drops the packet in `pkt` (out of line, see [`trace_receive`]).
#[cold]
#[inline(never)]
fn not_forwarded(program: &Program, pkt: &PacketBuf, verdict: Option<Verdict>) -> DropReason {
    let state = || host::state_name(program, pkt.reject_state).to_string();
    match verdict {
        None | Some(Verdict::Forward) => DropReason::Internal { what: "bad verdict or packet bounds".into() },
        Some(Verdict::Truncated) => DropReason::Truncated { state: state() },
        Some(Verdict::Reject) if pkt.reject_error != 0 => {
            let error = program.errors.get(pkt.reject_error as usize - 1).map_or("?", String::as_str);
            DropReason::ParserError { state: state(), error: error.to_string() }
        }
        Some(Verdict::Reject) => DropReason::ParserReject { state: state() },
        Some(Verdict::StackOutOfBounds) => DropReason::StackOutOfBounds { state: state() },
    }
}

/// The "Egress port is" trace line (out of line, see [`trace_receive`]).
#[cold]
#[inline(never)]
fn trace_egress(trace: &mut Trace, egress: u16) {
    trace.emit(format!("Egress port is {egress}"));
}

/// The "Transmitting packet" trace line (out of line, see [`trace_receive`]).
#[cold]
#[inline(never)]
fn trace_transmit(trace: &mut Trace, len: usize, port: u16) {
    trace.emit(format!("Transmitting packet of size {len} out of port {port}"));
}

impl Switch {
    /// Builds a switch: lays out the PHV, installs the program's table
    /// entries, binds every extern call site and, for [`Backend::Jit`],
    /// compiles the pipeline.
    pub fn new(program: Program, options: SwitchOptions) -> Result<Switch, SwitchError> {
        let layout = Layout::new(&program);
        let externs = Externs::bind(&program)?;
        let (tables, errors) = Tables::with_errors(&program);
        if !errors.is_empty() {
            return Err(SwitchError::Entries(errors));
        }
        // Compiled code holds the images' address; they move with the
        // runtime (a boxed block), which lives as long as the switch.
        let images = Images::new(&program, &externs);
        let engine = match options.backend {
            Backend::Jit => {
                let opts = JitOptions { trace: options.trace, disasm: false };
                Engine::Jit(jit::compile(&program, &layout, host::symbols(&images), opts)?)
            }
            Backend::Interp => Engine::Interp,
        };
        let headroom = (layout.max_emit_bytes as usize).div_ceil(16) * 16;
        let phv = PhvBlock::new(layout.phv_size as usize);
        let hint_phv = match &engine {
            Engine::Jit(c) if c.hints.is_some() => Some(PhvBlock::new(layout.phv_size as usize)),
            _ => None,
        };
        let std = StdFields::new(&program, &layout);
        let plan = ApplyPlan::new(&program, &layout);
        let rt = Runtime {
            tables,
            mcast: McastGroups::new(),
            externs,
            trace: Trace { on: options.trace, lines: Vec::new() },
            scratch: Vec::new(),
            select: Vec::new(),
            plan,
            images,
        };
        Ok(Switch {
            core: Core { program, layout, rt },
            engine,
            phv,
            pkt: PacketBuf::default(),
            headroom,
            std,
            counts: Counts::default(),
            stats: OnceCell::new(),
            ports: None,
            egress: Vec::new(),
            unicast: 0,
            packet_no: 0,
            hint_phv,
            specialised: None,
            specialise_from: 0,
            specialisations: 0,
            with_snapshots: false,
        })
    }

    /// Compiles the pipeline again with snapshots of the tables as they
    /// are now (`jit::compile_specialised`; the `abi` module docs, "Table
    /// snapshots"), when the JIT runs untraced and some table has one; the
    /// old code is kept if that fails (it is never wrong, only slower).
    /// [`Switch::run`] calls it when the tables changed since the last
    /// snapshots, at most once per [`SPECIALISE_INTERVAL`] packets.
    #[cold]
    #[inline(never)]
    fn specialise(&mut self) {
        let rt = &mut self.core.rt;
        self.specialised = Some(rt.tables.generation());
        self.specialise_from = self.packet_no.saturating_add(SPECIALISE_INTERVAL);
        if rt.trace.on || !matches!(self.engine, Engine::Jit(_)) {
            return;
        }
        let snapshots = rt.images.snapshots(&rt.tables);
        let any = snapshots.iter().any(Option::is_some);
        // Nothing to bake in, and no stale snapshots baked in to drop.
        if !any && !self.with_snapshots {
            return;
        }
        let opts = JitOptions { trace: false, disasm: false };
        let symbols = host::symbols(&rt.images);
        if let Ok(c) = jit::compile_specialised(&self.core.program, &self.core.layout, symbols, opts, &snapshots) {
            self.engine = Engine::Jit(c);
            self.with_snapshots = any;
            self.specialisations += 1;
        }
    }

    /// How many times the JIT's pipeline was compiled again for the
    /// tables' snapshots ([`Switch::specialise`]; also when the last
    /// snapshots went and none came); 0 for the interpreter.
    pub fn specialisations(&self) -> u32 {
        self.specialisations
    }

    /// The program, layout and runtime (for the host module's tests).
    #[cfg(test)]
    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// The program.
    pub fn program(&self) -> &Program {
        &self.core.program
    }

    /// The PHV layout.
    pub fn layout(&self) -> &Layout {
        &self.core.layout
    }

    /// Which backend runs packets.
    pub fn backend(&self) -> Backend {
        match self.engine {
            Engine::Jit(_) => Backend::Jit,
            Engine::Interp => Backend::Interp,
        }
    }

    /// The JIT's Cranelift IR text (`None` for the interpreter).
    pub fn clif(&self) -> Option<&str> {
        match &self.engine {
            Engine::Jit(c) => Some(&c.clif),
            Engine::Interp => None,
        }
    }

    /// The machine code the JIT makes of this switch's program (compiled
    /// again, the same way, keeping Cranelift's disassembly): with the
    /// tables' current snapshots when the running pipeline was specialised
    /// for snapshots ([`Switch::specialise`]), so after a few packets it
    /// shows the code those packets ran; `None` for the interpreter.
    pub fn disassembly(&mut self) -> Option<Result<String, SwitchError>> {
        let Engine::Jit(_) = &self.engine else { return None };
        let opts = JitOptions { trace: self.core.rt.trace.on, disasm: true };
        let rt = &mut self.core.rt;
        let symbols = host::symbols(&rt.images);
        let snapshots = if self.with_snapshots { rt.images.snapshots(&rt.tables) } else { Vec::new() };
        Some(
            jit::compile_specialised(&self.core.program, &self.core.layout, symbols, opts, &snapshots)
                .map(|c| c.asm.unwrap_or_default())
                .map_err(SwitchError::from),
        )
    }

    /// Restricts the egress ports: packets for any other port are dropped as
    /// [`DropReason::UnknownPort`]. By default every port exists.
    pub fn set_ports(&mut self, ports: &[u16]) {
        self.ports = Some(PortSet::new(ports));
    }

    /// Runs BMv2 runtime-CLI commands (`table_add`, `mc_mgrp_create`,
    /// `register_write`, ...) against the tables, multicast groups, counters
    /// and registers; all or nothing. Returns what queries answered (e.g.
    /// `table_dump`), as for a file ([`control::Echo::Answers`]).
    pub fn apply_commands(&mut self, text: &str, file: &str) -> Result<Vec<String>, Vec<control::CommandError>> {
        self.run_commands(text, file, control::Echo::Answers)
    }

    /// [`Switch::apply_commands`], printing what `echo` asks for (the
    /// control socket also prints BMv2's acknowledgements).
    pub fn run_commands(
        &mut self,
        text: &str,
        file: &str,
        echo: control::Echo,
    ) -> Result<Vec<String>, Vec<control::CommandError>> {
        let cmds = control::parse_commands(text, file, &self.core.program)?;
        let rt = &mut self.core.rt;
        let target = control::Target { tables: &mut rt.tables, mcast: &mut rt.mcast, externs: &mut rt.externs };
        control::apply_commands(&cmds, target, echo).map_err(|e| vec![e])
    }

    /// Runs one packet that arrived on `port` at `ts_ns`; appends one output
    /// packet per egress port to `out`.
    pub fn process(&mut self, port: u16, data: &[u8], ts_ns: u64, out: &mut Vec<OutPacket>) -> Outcome {
        let p = self.process_in_place(port, data, ts_ns);
        for &port in p.ports {
            out.push(OutPacket { port, data: p.data.to_vec() });
        }
        let outcome = p.outcome;
        self.take_originated(out);
        outcome
    }

    /// Appends to `out` the frames the switch sends on its own, not as
    /// the outcome of a packet: the IPVS master sync daemon's messages due
    /// at the latest packet time (`crate::ipvs::sync`), each counted as
    /// sent by its port. [`Switch::process`] calls it after every packet;
    /// a caller of [`Switch::process_in_place`] calls it itself (the live
    /// driver after each batch, and after [`Switch::tick`] when idle).
    /// Nothing to do, and cheap, without a master daemon.
    pub fn take_originated(&mut self, out: &mut Vec<OutPacket>) {
        let Some(d) = self.core.rt.externs.director_mut() else { return };
        if !d.sync.master_running() {
            return;
        }
        let mut frames = Vec::new();
        d.poll_sync(&mut frames);
        for (port, data) in frames {
            let tx = self.counts.port(port);
            tx.tx_packets += 1;
            tx.tx_bytes += data.len() as u64;
            if self.core.rt.trace.on {
                self.core.rt.trace.emit(format!("Sending an IPVS sync message on port {port} ({} bytes)", data.len()));
            }
            out.push(OutPacket { port, data });
        }
    }

    /// Moves the switch's clock (the stateful externs' timers) to `ts_ns`
    /// without a packet: the live driver's idle tick, so that a partly
    /// filled sync message still leaves 2 s after its first record.
    pub fn tick(&mut self, ts_ns: u64) {
        self.core.rt.externs.packet_time(ts_ns);
    }

    /// Like [`Switch::process`], without allocating: the output is a view
    /// into the switch's packet buffer, valid until the next packet.
    pub fn process_in_place(&mut self, port: u16, data: &[u8], ts_ns: u64) -> Processed<'_> {
        self.packet_no += 1;
        if self.stats.get().is_some() {
            self.stats = OnceCell::new();
        }
        let rx = self.counts.port(port);
        rx.rx_packets += 1;
        rx.rx_bytes += data.len() as u64;
        let trace = self.core.rt.trace.on;
        if trace {
            trace_receive(&mut self.core.rt.trace, self.packet_no, port, data.len());
        }
        let result = if data.len() > MAX_PACKET {
            Err(DropReason::TooLong { len: data.len() })
        } else if port > MAX_PORT {
            Err(DropReason::PortOutOfRange { port })
        } else {
            self.run(port, data, ts_ns)
        };
        // The outcome is built here, not passed up from `run`: a forwarded
        // packet's outcome is then a constant, not a copy of a value
        // another function just stored (a store-forwarding stall).
        match result {
            Ok(Some(p)) => {
                // Unicast, the usual case: one counter update, no loop, and
                // the port slice is the one port (not a `Vec` to fill).
                let len = self.pkt.len;
                let tx = self.counts.port(p);
                tx.tx_packets += 1;
                tx.tx_bytes += len as u64;
                if trace {
                    trace_transmit(&mut self.core.rt.trace, len, p);
                }
                self.unicast = p;
                Processed {
                    outcome: Outcome::Forwarded,
                    ports: std::slice::from_ref(&self.unicast),
                    data: self.pkt.bytes(),
                }
            }
            Ok(None) => {
                let len = self.pkt.len;
                for &p in &self.egress {
                    let tx = self.counts.port(p);
                    tx.tx_packets += 1;
                    tx.tx_bytes += len as u64;
                    if trace {
                        trace_transmit(&mut self.core.rt.trace, len, p);
                    }
                }
                Processed { outcome: Outcome::Forwarded, ports: &self.egress, data: self.pkt.bytes() }
            }
            Err(reason) => {
                self.counts.drop(&reason);
                if trace {
                    self.core.rt.trace.emit(format!("Dropping packet: {reason}"));
                }
                Processed { outcome: Outcome::Dropped(reason), ports: &[], data: &[] }
            }
        }
    }

    /// Tells the stateful externs about a packet that will be processed
    /// soon: runs the program's hint pass on it (the parser with only its
    /// hint calls, such as `conn_table.prefetch`; `abi` module docs), so the
    /// memory that packet's lookups will touch is on its way into the caches
    /// while the packets before it are processed. Changes nothing a packet,
    /// a counter or a listing can observe; a no-op for the interpreter and
    /// for programs without hints. Replay calls it a few packets ahead
    /// ([`HINT_DISTANCE`]).
    pub fn hint(&mut self, data: &[u8]) {
        if let (Engine::Jit(c), Some(phv)) = (&self.engine, self.hint_phv.as_mut()) {
            if let Some(f) = c.hints {
                host::run_hint_pass(f, &mut self.core, phv.bytes_mut(), data);
            }
        }
    }

    /// Runs the pipeline and decides where the packet goes: `Some(port)`
    /// for one port, `None` for the multicast copies' ports (in `egress`).
    fn run(&mut self, port: u16, data: &[u8], ts_ns: u64) -> Result<Option<u16>, DropReason> {
        if self.specialised != Some(self.core.rt.tables.generation()) && self.packet_no >= self.specialise_from {
            self.specialise();
        }
        self.pkt.load(data, self.headroom);
        // The PHV block's bytes, sliced once for the whole packet (each
        // slicing re-checks the block's bounds).
        let phv = self.phv.bytes_mut();
        let std = &self.std;
        // IPVS timers run on packet time; a stale `truncate` is forgotten.
        self.core.rt.externs.packet_time(ts_ns);
        let verdict = match &self.engine {
            // Compiled code zeroes the slots a packet may read before writing
            // them (`Layout::zero_bytes`) and sets the arrival fields itself.
            Engine::Jit(c) => host::run_compiled(c.func, &mut self.core, phv, &mut self.pkt, port, ts_ns),
            Engine::Interp => {
                host::zero_prefix(phv, self.core.layout.zero_bytes as usize);
                std.write_arrival(phv, port, data.len(), ts_ns);
                Some(interp::run(&mut self.core, phv, &mut self.pkt))
            }
        };
        let Core { program, rt, .. } = &mut self.core;
        // One compare for the usual verdict (a `match` here is a jump table).
        if verdict != Some(Verdict::Forward) {
            return Err(not_forwarded(program, &self.pkt, verdict));
        }
        // `truncate(len)` cuts the deparsed packet (both backends call it
        // through the host; the cut happens here, after the pipeline).
        if let Some(len) = rt.externs.take_truncate() {
            self.pkt.len = self.pkt.len.min(len as usize);
            if rt.trace.on {
                rt.trace.emit(format!("Truncating packet to {} bytes", self.pkt.len));
            }
        }
        let (drop, group, egress) = std.read_decision(phv);
        if drop {
            return Err(DropReason::MarkToDrop);
        }
        if group != 0 {
            let Some(ports) = rt.mcast.ports(group) else {
                return Err(DropReason::UnknownMcastGroup { group });
            };
            self.egress.clear();
            self.egress.extend(ports.iter().copied().filter(|p| *p != port));
            if rt.trace.on {
                rt.trace.emit(format!("Multicast group {group}: replicating to ports {:?}", self.egress));
            }
            if self.egress.is_empty() {
                return Err(DropReason::EmptyMcastGroup { group });
            }
            return Ok(None);
        }
        if rt.trace.on {
            trace_egress(&mut rt.trace, egress);
        }
        if self.ports.as_ref().is_some_and(|ports| !ports.contains(egress)) {
            return Err(DropReason::UnknownPort);
        }
        Ok(Some(egress))
    }

    /// Per-port traffic and drops by reason.
    pub fn stats(&self) -> &Stats {
        self.stats.get_or_init(|| self.counts.stats())
    }

    /// Takes a copy of `bytes` bytes that the pipeline forwarded to `port`
    /// but the OS refused to send (live mode: longer than the MTU, the
    /// interface deleted) back out of the port's sent counts, so that
    /// "sent" counts only what left; the caller counts it as a transmit error.
    pub fn uncount_refused(&mut self, port: u16, bytes: usize) {
        let tx = self.counts.port(port);
        tx.tx_packets = tx.tx_packets.saturating_sub(1);
        tx.tx_bytes = tx.tx_bytes.saturating_sub(bytes as u64);
        self.stats = OnceCell::new();
    }

    /// The tables (entries, hits and misses).
    pub fn tables(&self) -> &Tables {
        &self.core.rt.tables
    }

    /// The tables, for changes outside the command language.
    pub fn tables_mut(&mut self) -> &mut Tables {
        &mut self.core.rt.tables
    }

    /// The multicast groups.
    pub fn mcast(&self) -> &McastGroups {
        &self.core.rt.mcast
    }

    /// The multicast groups, for changes outside the command language.
    pub fn mcast_mut(&mut self) -> &mut McastGroups {
        &mut self.core.rt.mcast
    }

    /// Counters and registers.
    pub fn externs(&self) -> &Externs {
        &self.core.rt.externs
    }

    /// Counters and registers, for the control plane.
    pub fn externs_mut(&mut self) -> &mut Externs {
        &mut self.core.rt.externs
    }

    /// The PHV block as the last packet left it (for comparing backends).
    pub fn phv(&self) -> &[u8] {
        self.phv.bytes()
    }

    /// Fills the slots the next packet does not zero
    /// (`phv[Layout::zero_bytes .. Layout::slot_bytes]`, those the compiler
    /// found every path writes before reading) with `byte`. A test's probe
    /// of that finding: with any `byte`, a packet must give what it gives
    /// with every slot zeroed (`byte` 0), the semantics the layout saves
    /// work on.
    pub fn fill_unzeroed_slots(&mut self, byte: u8) {
        let layout = &self.core.layout;
        let (from, to) = (layout.zero_bytes as usize, layout.slot_bytes as usize);
        if let Some(slots) = self.phv.bytes_mut().get_mut(from..to) {
            slots.fill(byte);
        }
    }

    /// The value of the slot named `name` (`hdr.ipv4.ttl`, `meta.nhop`,
    /// `std.egress_spec`) as the last packet left it. A slot that no path
    /// reads before writing it is not zeroed per packet
    /// (`Layout::zero_bytes`): if the last packet did not write it, it
    /// holds an earlier packet's value.
    pub fn slot_value(&self, name: &str) -> Option<u128> {
        let program = &self.core.program;
        let i = program.slots.iter().position(|s| s.name == name)?;
        Some(host::read_slot(program, &self.core.layout, self.phv.bytes(), ir::SlotId(i as u32)))
    }

    /// The trace lines of the packets since the last call (empty unless tracing).
    pub fn take_trace(&mut self) -> Vec<String> {
        std::mem::take(&mut self.core.rt.trace.lines)
    }

    /// The end-of-run report: traffic per port, drops by reason, table hits
    /// and misses, counters, and any extern errors, as aligned text tables.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let s = self.stats();
        out.push_str(&format!(
            "Packets: {} received, {} sent, {} dropped\n",
            s.rx_packets(),
            s.tx_packets(),
            s.dropped()
        ));
        if !s.ports.is_empty() {
            let rows = s
                .ports
                .iter()
                .map(|(p, c)| {
                    vec![
                        p.to_string(),
                        c.rx_packets.to_string(),
                        c.rx_bytes.to_string(),
                        c.tx_packets.to_string(),
                        c.tx_bytes.to_string(),
                    ]
                })
                .collect();
            out.push_str("\nPorts\n");
            out.push_str(&text_table(&["port", "rx packets", "rx bytes", "tx packets", "tx bytes"], rows));
        }
        if !s.drops.is_empty() {
            let rows = s.drops.iter().map(|(r, n)| vec![r.to_string(), n.to_string()]).collect();
            out.push_str("\nDrops\n");
            out.push_str(&text_table(&["reason", "packets"], rows));
        }
        let tables = self.tables();
        if !tables.is_empty() {
            let rows = tables
                .iter()
                .map(|(_, t)| {
                    vec![t.name().to_string(), t.len().to_string(), t.hits().to_string(), t.misses().to_string()]
                })
                .collect();
            out.push_str("\nTables\n");
            out.push_str(&text_table(&["table", "entries", "hits", "misses"], rows));
        }
        let ex = self.externs();
        if !ex.counters().is_empty() {
            let rows = ex
                .counters()
                .iter()
                .map(|c| {
                    let (packets, bytes) = c.totals();
                    vec![
                        c.name.clone(),
                        c.len().to_string(),
                        packets.to_string(),
                        bytes.to_string(),
                        c.errors().to_string(),
                    ]
                })
                .collect();
            out.push_str("\nCounters\n");
            out.push_str(&text_table(&["counter", "cells", "packets", "bytes", "index errors"], rows));
            // Each cell that counted something (lb.p4lite's drops by reason,
            // packets per port), at most REPORTED_CELLS per counter.
            let mut rows = Vec::new();
            for c in ex.counters() {
                let used: Vec<_> =
                    (0..c.len()).filter_map(|i| c.read(i).map(|v| (i, v))).filter(|&(_, v)| v != (0, 0)).collect();
                for (i, (packets, bytes)) in used.iter().take(REPORTED_CELLS) {
                    rows.push(vec![c.name.clone(), i.to_string(), packets.to_string(), bytes.to_string()]);
                }
                if used.len() > REPORTED_CELLS {
                    let more = used.len() - REPORTED_CELLS;
                    rows.push(vec![c.name.clone(), format!("({more} more)"), String::new(), String::new()]);
                }
            }
            if !rows.is_empty() {
                out.push_str("\nCounter cells (those not zero)\n");
                out.push_str(&text_table(&["counter", "index", "packets", "bytes"], rows));
            }
        }
        // Path MTU caches that were taught something (`pmtu_cache.update`).
        let rows: Vec<_> = ex
            .pmtu_caches()
            .iter()
            .filter(|c| c.stats().updates > 0)
            .map(|c| {
                let s = c.stats();
                let counts = [c.len() as u64, s.updates, s.stored, s.ignored, s.clamped, s.evicted, s.expired];
                std::iter::once(c.name.clone()).chain(counts.iter().map(|v| v.to_string())).collect()
            })
            .collect();
        if !rows.is_empty() {
            out.push_str("\nPath MTU caches\n");
            let head = ["pmtu_cache", "entries", "updates", "stored", "ignored", "clamped", "evicted", "expired"];
            out.push_str(&text_table(&head, rows));
        }
        let bad_regs: Vec<_> = ex.registers().iter().filter(|r| r.errors() > 0).collect();
        if !bad_regs.is_empty() {
            let rows = bad_regs.iter().map(|r| vec![r.name.clone(), r.errors().to_string()]).collect();
            out.push_str("\nRegister index errors\n");
            out.push_str(&text_table(&["register", "errors"], rows));
        }
        if ex.unbound_calls() > 0 {
            out.push_str(&format!("\nCalls of unbound extern call sites: {}\n", ex.unbound_calls()));
        }
        // The IPVS sync daemons, when one was started (`ipvsadm -L
        // --daemon`), and what they did.
        if let Some(d) = ex.director().filter(|d| d.lb.daemons.master.is_some() || d.lb.daemons.backup.is_some()) {
            let st = &d.sync.stats;
            let rows = [
                ("messages sent", st.sent_messages),
                ("records sent", st.sent_records),
                ("messages received", st.received_messages),
                ("ignored (another syncid)", st.ignored_messages),
                ("dropped (malformed)", st.dropped_messages),
                ("records created", st.created),
                ("of which unbound", st.unbound),
                ("records updated", st.updated),
                ("records stale", st.stale),
                ("records refused (table full)", st.refused),
                ("records skipped", st.skipped),
            ];
            let rows = rows.iter().map(|(n, v)| vec![n.to_string(), v.to_string()]).collect();
            out.push_str("\nIPVS sync daemons\n");
            out.push_str(&d.lb.daemons.list());
            out.push_str(&text_table(&["", "count"], rows));
        }
        out
    }
}

/// The most cells of one counter the report lists.
const REPORTED_CELLS: usize = 64;

/// An aligned text table: the first column left-aligned, the others right-aligned.
fn text_table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::from(" ");
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i == 0 {
                s.push_str(&format!(" {cell:<w$}"));
            } else {
                s.push_str(&format!("  {cell:>w$}"));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&mut headers.iter().copied());
    for row in &rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use p4lite_compiler::diag;
    use p4lite_compiler::span::Sources;

    /// Compiles a p4lite program (with the prelude); panics with the rendered diagnostics.
    pub(crate) fn compile(src: &str) -> Program {
        let sources = Sources::new("test.p4lite", src);
        let c = p4lite_compiler::compile(&sources);
        match c.ir {
            Some(p) => p,
            None => panic!("test program does not compile:\n{}", diag::render(&c.diagnostics, &sources, false)),
        }
    }

    /// An interpreter switch for `src`.
    pub(crate) fn interp(src: &str) -> Switch {
        interp_traced(src, false)
    }

    pub(crate) fn interp_traced(src: &str, trace: bool) -> Switch {
        match Switch::new(compile(src), SwitchOptions { backend: Backend::Interp, trace }) {
            Ok(s) => s,
            Err(e) => panic!("switch: {e}"),
        }
    }

    /// An example program of the repository.
    pub(crate) fn example(name: &str) -> String {
        let path = format!("{}/../programs/{name}.p4lite", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        crate::externs::checksum::tests::hex(s)
    }

    /// Runs one packet; returns the outcome and the output packets.
    pub(crate) fn run(sw: &mut Switch, port: u16, data: &[u8]) -> (Outcome, Vec<OutPacket>) {
        let mut out = Vec::new();
        let o = sw.process(port, data, 1_000, &mut out);
        (o, out)
    }

    /// The scapy TCP SYN (Ethernet/IPv4/TCP, 74 bytes) to 10.0.0.1.
    pub(crate) fn syn() -> Vec<u8> {
        hex(crate::externs::checksum::tests::TCP_SYN)
    }

    const ROUTER_COMMANDS: &str = "
        table_add ipv4_lpm set_nhop 10.0.0.0/8 => 10.0.0.254 2
        table_add ipv4_lpm set_nhop 10.1.0.0/16 => 10.1.0.254 3
        table_add forward set_dmac 10.0.0.254 => 00:aa:bb:cc:dd:02
        table_add send_frame rewrite_mac 2 => 00:00:00:00:00:02
    ";

    #[test]
    fn ports_are_nine_bits_on_the_command_line() {
        assert_eq!(parse_port("0"), Ok(0));
        assert_eq!(parse_port("511"), Ok(511));
        assert!(parse_port("512").unwrap_err().contains("out of range (0..=511"));
        assert!(parse_port("70000").unwrap_err().contains("out of range"));
        assert!(parse_port("x").unwrap_err().contains("not a port number"));
        assert!(parse_port("").unwrap_err().contains("not a port number"));
        assert!(parse_port("-1").unwrap_err().contains("not a port number"));
    }

    /// A packet on port 600 would reach the program as port 88 (bit<9>):
    /// the library API drops it with a counted reason instead, on both
    /// backends, and port 511 still runs the program.
    #[test]
    fn a_packet_on_a_port_above_511_is_dropped_not_masked() {
        let program = compile(&example("ipv4_router"));
        for backend in [Backend::Jit, Backend::Interp] {
            let mut sw =
                Switch::new(program.clone(), SwitchOptions { backend, trace: false }).unwrap_or_else(|e| panic!("{e}"));
            sw.apply_commands(ROUTER_COMMANDS, "router.txt").unwrap_or_else(|e| panic!("{e:?}"));
            let (o, out) = run(&mut sw, 600, &syn());
            assert_eq!(o, Outcome::Dropped(DropReason::PortOutOfRange { port: 600 }), "{backend:?}");
            assert!(out.is_empty());
            assert_eq!(sw.stats().drops.get(&DropReason::PortOutOfRange { port: 600 }), Some(&1));
            assert_eq!(sw.stats().ports[&600].rx_packets, 1, "{backend:?}: the arrival is counted");
            let (o, out) = run(&mut sw, MAX_PORT, &syn());
            assert_eq!((o, out.len()), (Outcome::Forwarded, 1), "{backend:?}: port 511");
        }
    }

    /// The JIT compiles a table's apply from a snapshot of its entries (the
    /// abi module docs, "Table snapshots") at the first packet and again
    /// only after `SPECIALISE_INTERVAL` packets; in between, a table that
    /// changed is served by its image. Every step forwards, counts and
    /// reports exactly as the interpreter does: a longer prefix added (the
    /// snapshot stale), the interval passed (compiled again), the prefix
    /// deleted (stale again).
    #[test]
    fn table_snapshots_follow_table_changes() {
        // Outcome, ports, packets, the lpm table's (hits, misses, entry hits), compilations.
        type Step = (Outcome, Vec<u16>, Vec<OutPacket>, Option<(u64, u64, Vec<u64>)>, u32);
        let program = compile(&example("ipv4_router"));
        let add = "table_add ipv4_lpm set_nhop 10.0.0.0/24 => 10.0.0.253 3
                   table_add forward set_dmac 10.0.0.253 => 00:aa:bb:cc:dd:03
                   table_add send_frame rewrite_mac 3 => 00:00:00:00:00:03";
        let mut results = Vec::new();
        for backend in [Backend::Jit, Backend::Interp] {
            let mut sw =
                Switch::new(program.clone(), SwitchOptions { backend, trace: false }).unwrap_or_else(|e| panic!("{e}"));
            sw.apply_commands(ROUTER_COMMANDS, "router.txt").unwrap_or_else(|e| panic!("{e:?}"));
            let mut seen = Vec::new();
            let mut step = |sw: &mut Switch| {
                let (o, out) = run(sw, 1, &syn());
                let lpm = sw.core().rt.tables.iter().find(|(_, t)| t.name().ends_with("ipv4_lpm")).map(|(_, t)| t);
                let counts = lpm.map(|t| {
                    (t.hits(), t.misses(), (0..3).map(|h| t.entry_hits(crate::tables::EntryHandle(h))).collect())
                });
                let ports: Vec<u16> = out.iter().map(|p| p.port).collect();
                seen.push((o, ports, out, counts, sw.specialisations()));
            };
            step(&mut sw);
            sw.apply_commands(add, "add.txt").unwrap_or_else(|e| panic!("{e:?}"));
            step(&mut sw);
            for _ in 0..SPECIALISE_INTERVAL {
                run(&mut sw, 0, &[0; 10]);
            }
            step(&mut sw);
            sw.apply_commands("table_delete ipv4_lpm 2", "delete.txt").unwrap_or_else(|e| panic!("{e:?}"));
            step(&mut sw);
            results.push(seen);
        }
        let ports: Vec<&[u16]> = results[0].iter().map(|s| s.1.as_slice()).collect();
        assert_eq!(ports, [&[2][..], &[3], &[3], &[2]]);
        let jit_compiles: Vec<u32> = results[0].iter().map(|s| s.4).collect();
        assert_eq!(jit_compiles, [1, 1, 2, 2], "compiled with snapshots at the first packet and after the interval");
        let strip = |r: &[Step]| r.iter().map(|s| (s.0.clone(), s.2.clone(), s.3.clone())).collect::<Vec<_>>();
        assert_eq!(strip(&results[0]), strip(&results[1]), "the JIT as the interpreter");
        assert_eq!(results[0][3].3, Some((4, 0, vec![2, 0, 0])), "hits, misses and entry hits");
    }

    /// Once no table is small enough for a snapshot, the JIT compiles once
    /// more without them (dropping the stale ones and their version
    /// checks), and then no more; packets go as the interpreter sends them.
    #[test]
    fn snapshots_are_dropped_when_tables_outgrow_them() {
        let program = compile(&example("ipv4_router"));
        let mut grow = String::new();
        for i in 0..p4lite_compiler::abi::SNAPSHOT_MAX_ENTRIES as u32 {
            grow += &format!("table_add ipv4_lpm set_nhop 10.9.{i}.0/24 => 10.0.0.254 2\n");
            grow += &format!("table_add forward set_dmac 10.0.9.{i} => 00:aa:bb:cc:dd:{i:02x}\n");
            grow += &format!("table_add send_frame rewrite_mac {} => 00:00:00:00:01:{i:02x}\n", 10 + i);
        }
        let mut outs = Vec::new();
        for backend in [Backend::Jit, Backend::Interp] {
            let mut sw =
                Switch::new(program.clone(), SwitchOptions { backend, trace: false }).unwrap_or_else(|e| panic!("{e}"));
            sw.apply_commands(ROUTER_COMMANDS, "router.txt").unwrap_or_else(|e| panic!("{e:?}"));
            let mut seen = vec![(run(&mut sw, 1, &syn()), sw.specialisations())];
            sw.apply_commands(&grow, "grow.txt").unwrap_or_else(|e| panic!("{e:?}"));
            for _ in 0..2 {
                for _ in 0..SPECIALISE_INTERVAL {
                    run(&mut sw, 0, &[0; 10]);
                }
                seen.push((run(&mut sw, 1, &syn()), sw.specialisations()));
            }
            outs.push(seen);
        }
        let compiles: Vec<u32> = outs[0].iter().map(|s| s.1).collect();
        assert_eq!(compiles, [1, 2, 2], "with snapshots, then without, then nothing to do");
        let packets = |o: &[((Outcome, Vec<OutPacket>), u32)]| o.iter().map(|s| s.0.clone()).collect::<Vec<_>>();
        assert_eq!(packets(&outs[0]), packets(&outs[1]), "the JIT as the interpreter");
        assert!(outs[0].iter().all(|s| s.0 .0 == Outcome::Forwarded));
    }

    /// Ethernet and IPv4 headers for the small programs below.
    const ETH_IPV4_TYPES: &str = "
        header ethernet_t { bit<48> dst; bit<48> src; bit<16> etype; }
        header ipv4_t {
            bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> total_len;
            bit<16> identification; bit<3> flags; bit<13> frag_offset;
            bit<8> ttl; bit<8> protocol; bit<16> hdr_checksum; bit<32> src; bit<32> dst;
        }
        struct headers_t { ethernet_t eth; ipv4_t ipv4; }
        control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.ipv4); } }
    ";

    /// Constant concatenations are folded by the checker; the folded values
    /// (both operands, up to 64 ++ 64 bits) reach the packet on both
    /// backends, from an assignment, a `const`, a select keyset, a const
    /// entry's key and its action argument.
    #[test]
    fn folded_concatenations_reach_the_packet_on_both_backends() {
        let src = format!(
            "{ETH_IPV4_TYPES}
            const bit<16> ID = 8w0xAB ++ 8w0x01;
            struct meta_t {{ bit<128> big; }}
            parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t std) {{
                state start {{
                    pkt.extract(hdr.eth);
                    transition select(hdr.eth.etype) {{ 8w0x08 ++ 8w0x00: parse_ipv4; default: accept; }}
                }}
                state parse_ipv4 {{ pkt.extract(hdr.ipv4); transition accept; }}
            }}
            control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t std) {{
                action fwd(bit<9> p) {{ std.egress_spec = p; }}
                table t {{
                    key = {{ hdr.ipv4.protocol : exact; }}
                    actions = {{ fwd; }}
                    const entries = {{ 4w0 ++ 4w6 : fwd(1w1 ++ 8w2); }}
                }}
                apply {{
                    hdr.ipv4.diffserv = 6w46 ++ 2w0;
                    hdr.ipv4.identification = ID;
                    meta.big = 64w0x0123456789abcdef ++ 64w0xfedcba9876543210;
                    hdr.ipv4.src = meta.big[127:96];
                    hdr.ipv4.dst = meta.big[31:0];
                    t.apply();
                    hdr.ipv4.hdr_checksum = 0;
                    hdr.ipv4.hdr_checksum = csum16(hdr.ipv4);
                }}
            }}
            Pipeline(P(), I(), D()) main;"
        );
        let program = compile(&src);
        for backend in [Backend::Jit, Backend::Interp] {
            let mut sw =
                Switch::new(program.clone(), SwitchOptions { backend, trace: false }).unwrap_or_else(|e| panic!("{e}"));
            let (o, out) = run(&mut sw, 1, &syn());
            assert_eq!((o, out.len()), (Outcome::Forwarded, 1), "{backend:?}");
            assert_eq!(out[0].port, 0x102, "{backend:?}: the entry's key and argument");
            let d = &out[0].data;
            assert_eq!(d[15], 0xb8, "{backend:?}: diffserv");
            assert_eq!(&d[18..20], &[0xab, 0x01], "{backend:?}: identification");
            assert_eq!(&d[26..30], &[0x01, 0x23, 0x45, 0x67], "{backend:?}: the high half of 64 ++ 64");
            assert_eq!(&d[30..34], &[0x76, 0x54, 0x32, 0x10], "{backend:?}: the low half of 64 ++ 64");
            assert_eq!(crate::externs::checksum::csum16_bytes(&d[14..34]), 0, "{backend:?}");
        }
    }

    /// `csum16_with_payload` sums the listed fields and then the payload
    /// after the parser's stop, limited by its length argument: a UDP
    /// checksum over the pseudo-header, the header and an odd-length payload
    /// validates, and the frame's padding (outside the UDP length) is not
    /// summed; both backends alike.
    #[test]
    fn csum16_with_payload_covers_the_payload_on_both_backends() {
        let src = r#"
            header eth_t { bit<48> dst; bit<48> src; bit<16> ty; }
            header ipv4_t { bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> total_len;
                bit<16> identification; bit<3> flags; bit<13> frag_offset; bit<8> ttl; bit<8> protocol;
                bit<16> hdr_checksum; bit<32> src_addr; bit<32> dst_addr; }
            header udp_t { bit<16> sport; bit<16> dport; bit<16> len; bit<16> csum; }
            struct hs { eth_t eth; ipv4_t ipv4; udp_t udp; }
            struct m_t { bit<16> check; }
            parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
                state start { pkt.extract(hdr.eth); pkt.extract(hdr.ipv4); pkt.extract(hdr.udp); transition accept; }
            }
            control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
                apply {
                    hdr.udp.dport = 5353;
                    hdr.udp.csum = 0;
                    hdr.udp.csum = csum16_with_payload({ hdr.ipv4.src_addr, hdr.ipv4.dst_addr, 8w0,
                                                         hdr.ipv4.protocol, hdr.udp.len, hdr.udp },
                                                       hdr.udp.len - 8);
                    // Verifying: the sum over a valid message is 0.
                    meta.check = csum16_with_payload({ hdr.ipv4.src_addr, hdr.ipv4.dst_addr, 8w0,
                                                       hdr.ipv4.protocol, hdr.udp.len, hdr.udp },
                                                     hdr.udp.len - 8);
                    std.egress_spec = 1;
                }
            }
            control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.ipv4); pkt.emit(hdr.udp); } }
            Pipeline(P(), C(), D()) main;
        "#;
        // Ethernet, IPv4 (28 + 5 bytes), UDP with 5 bytes of payload, then
        // 13 bytes of non-zero padding to the 60-byte minimum.
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 33, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 13, 0xAB, 0xCD, b'h', b'e', b'l', b'l', b'o']);
        f.resize(60, 0xEE);
        let program = compile(src);
        for backend in [Backend::Interp, Backend::Jit] {
            let mut sw =
                Switch::new(program.clone(), SwitchOptions { backend, trace: false }).unwrap_or_else(|e| panic!("{e}"));
            let (o, out) = run(&mut sw, 0, &f);
            assert_eq!(o, Outcome::Forwarded, "{backend:?}");
            let d = &out[0].data;
            assert_eq!(&d[36..38], &[0x14, 0xE9], "{backend:?}: the new port");
            // The checksum over pseudo-header + UDP header + payload, written
            // here from RFC 768: it sums to zero with the field in place.
            let mut pseudo = d[26..34].to_vec();
            pseudo.extend_from_slice(&[0, 17, 0, 13]);
            pseudo.extend_from_slice(&d[34..47]);
            assert_eq!(crate::externs::checksum::csum16_bytes(&pseudo), 0, "{backend:?}: UDP checksum");
            assert_ne!(&d[40..42], &[0, 0], "{backend:?}");
            assert_eq!(sw.slot_value("meta.check"), Some(0), "{backend:?}: a valid message sums to 0");
            assert_eq!(&d[47..], &f[47..], "{backend:?}: payload and padding untouched");
        }
    }

    /// `&`, `^` and `|` bind tighter than comparisons (P4_16, not C):
    /// `ttl & 0x0F == 0` runs as `(ttl & 0x0F) == 0` on both backends.
    #[test]
    fn bitwise_operators_bind_tighter_than_comparisons_on_both_backends() {
        let src = format!(
            "{ETH_IPV4_TYPES}
            struct meta_t {{ }}
            parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t std) {{
                state start {{ pkt.extract(hdr.eth); pkt.extract(hdr.ipv4); transition accept; }}
            }}
            control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t std) {{
                apply {{
                    std.egress_spec = 1;
                    if (hdr.ipv4.ttl & 0x0F == 0) {{ std.egress_spec = 2; }}
                    if (hdr.ipv4.ttl ^ 0x40 | 0x01 == 0x01) {{ hdr.ipv4.diffserv = 0xff; }}
                }}
            }}
            Pipeline(P(), I(), D()) main;"
        );
        let program = compile(&src);
        for backend in [Backend::Jit, Backend::Interp] {
            let mut sw =
                Switch::new(program.clone(), SwitchOptions { backend, trace: false }).unwrap_or_else(|e| panic!("{e}"));
            // (ttl, port for `(ttl & 0x0F) == 0`, diffserv for `((ttl ^ 0x40) | 1) == 1`)
            for (ttl, port, diffserv) in [(0x40, 2, 0xff), (0x41, 1, 0xff), (0x30, 2, 0), (0x0f, 1, 0)] {
                let mut pkt = syn();
                pkt[15] = 0;
                pkt[22] = ttl;
                let (_, out) = run(&mut sw, 0, &pkt);
                assert_eq!(out.len(), 1, "{backend:?}, ttl {ttl:#x}");
                assert_eq!((out[0].port, out[0].data[15]), (port, diffserv), "{backend:?}, ttl {ttl:#x}");
            }
        }
    }

    #[test]
    fn ipv4_router_forwards_decrements_ttl_and_fixes_checksum() {
        let mut sw = interp(&example("ipv4_router"));
        sw.apply_commands(ROUTER_COMMANDS, "router.txt").unwrap_or_else(|e| panic!("{e:?}"));
        let pkt = syn();
        let (o, out) = run(&mut sw, 1, &pkt);
        assert_eq!(o, Outcome::Forwarded);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].port, 2);
        let d = &out[0].data;
        assert_eq!(d.len(), pkt.len());
        assert_eq!(&d[0..6], &[0, 0xaa, 0xbb, 0xcc, 0xdd, 2]);
        assert_eq!(&d[6..12], &[0, 0, 0, 0, 0, 2]);
        assert_eq!(d[22], pkt[22] - 1, "TTL decremented");
        // The checksum validates and equals a recomputation; the payload is untouched.
        assert_eq!(crate::externs::checksum::csum16_bytes(&d[14..34]), 0);
        assert_eq!(&d[34..], &pkt[34..]);
        // 10.1.2.3 matches the /16 (port 3) but `forward` has no entry for its
        // next hop, and send_frame has no entry for port 3: dropped.
        let mut other = pkt.clone();
        other[30..34].copy_from_slice(&[10, 1, 2, 3]);
        let (o, _) = run(&mut sw, 1, &other);
        assert_eq!(o, Outcome::Dropped(DropReason::MarkToDrop));
        let t = sw.program().find_table("ipv4_lpm").unwrap();
        assert_eq!((sw.tables().table(t).hits(), sw.tables().table(t).misses()), (2, 0));
        assert_eq!(sw.stats().ports[&1].rx_packets, 2);
        assert_eq!(sw.stats().ports[&2].tx_packets, 1);
        assert_eq!(sw.stats().ports[&2].tx_bytes, 74);
        assert_eq!(sw.stats().drops[&DropReason::MarkToDrop], 1);
    }

    #[test]
    fn truncated_and_rejected_packets_name_the_state() {
        let mut sw = interp(&example("ipv4_router"));
        let pkt = syn();
        let (o, out) = run(&mut sw, 0, &pkt[..10]);
        assert_eq!(o, Outcome::Dropped(DropReason::Truncated { state: "start".into() }));
        assert!(out.is_empty());
        let (o, _) = run(&mut sw, 0, &pkt[..14 + 19]);
        assert_eq!(o, Outcome::Dropped(DropReason::Truncated { state: "parse_ipv4".into() }));
        let mut opts = pkt.clone();
        opts[14] = 0x46; // ihl 6: options, rejected by the parser
        let (o, _) = run(&mut sw, 0, &opts);
        assert_eq!(o, Outcome::Dropped(DropReason::ParserReject { state: "parse_ipv4".into() }));
        assert_eq!(sw.stats().dropped(), 3);
        let report = sw.report();
        assert!(report.contains("truncated in parser state 'parse_ipv4'"), "{report}");
        assert!(report.contains("parser reject in state 'parse_ipv4'"), "{report}");
    }

    /// `advance` by a run-time amount: whole bytes skip that many; bits that
    /// are not whole bytes reject the packet in that state (P4_16's
    /// `error.ParserInvalidArgument`), on both backends. (Before, both
    /// silently rounded down: 12 bits skipped 1 byte.)
    #[test]
    fn advance_by_bits_that_are_not_whole_bytes_rejects() {
        let src = "
            header n_t { bit<8> bits; }
            header b_t { bit<8> v; }
            struct hs { n_t n; b_t b; }
            struct ms { }
            parser P(packet_in pkt, out hs hdr, inout ms meta, inout standard_metadata_t std) {
                state start { pkt.extract(hdr.n); transition skip; }
                state skip { pkt.advance((bit<32>) hdr.n.bits); pkt.extract(hdr.b); transition accept; }
            }
            control C(inout hs hdr, inout ms meta, inout standard_metadata_t std) {
                apply { std.egress_spec = (bit<9>) hdr.b.v; }
            }
            control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.n); pkt.emit(hdr.b); } }
            Pipeline(P(), C(), D()) main;
        ";
        let program = compile(src);
        for backend in [Backend::Jit, Backend::Interp] {
            let mut sw =
                Switch::new(program.clone(), SwitchOptions { backend, trace: false }).unwrap_or_else(|e| panic!("{e}"));
            sw.set_ports(&[1, 2, 3]);
            // 16 bits: skip 0x01 0x02, then b = 3.
            let (o, out) = run(&mut sw, 1, &[16, 1, 2, 3]);
            assert_eq!(o, Outcome::Forwarded, "{backend:?}");
            assert_eq!((out[0].port, &out[0].data[..]), (3, &[16u8, 3][..]), "{backend:?}");
            for bits in [12u8, 1, 7] {
                let (o, out) = run(&mut sw, 1, &[bits, 1, 2, 3]);
                assert_eq!(
                    o,
                    Outcome::Dropped(DropReason::ParserReject { state: "skip".into() }),
                    "{backend:?} {bits}"
                );
                assert!(out.is_empty());
            }
        }
    }

    /// `verify(cond, error.E)` (P4_16 §12.7): a false condition rejects the
    /// packet in that state and the drop names the error, on both backends;
    /// a later reject in the same state is a plain reject again, and a true
    /// condition lets the state go on.
    #[test]
    fn verify_rejects_with_its_error() {
        let src = "
            error { BadVersion }
            header v_t { bit<4> version; bit<4> len; }
            header b_t { bit<8> v; }
            struct hs { v_t v; b_t b; }
            struct ms { }
            parser P(packet_in pkt, out hs hdr, inout ms meta, inout standard_metadata_t std) {
                state start {
                    pkt.extract(hdr.v);
                    verify(hdr.v.version == 4, error.BadVersion);
                    verify(hdr.v.len != 0, error.HeaderTooShort);
                    pkt.extract(hdr.b);
                    transition select(hdr.b.v) { 0: reject; default: accept; }
                }
            }
            control C(inout hs hdr, inout ms meta, inout standard_metadata_t std) {
                apply { std.egress_spec = (bit<9>) hdr.b.v; }
            }
            control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.v); pkt.emit(hdr.b); } }
            Pipeline(P(), C(), D()) main;
        ";
        let program = compile(src);
        let error = |e: &str| Outcome::Dropped(DropReason::ParserError { state: "start".into(), error: e.into() });
        for backend in [Backend::Jit, Backend::Interp] {
            let mut sw =
                Switch::new(program.clone(), SwitchOptions { backend, trace: false }).unwrap_or_else(|e| panic!("{e}"));
            sw.set_ports(&[1, 2, 3]);
            let (o, out) = run(&mut sw, 1, &[0x45, 2]);
            assert_eq!(o, Outcome::Forwarded, "{backend:?}");
            assert_eq!((out[0].port, &out[0].data[..]), (2, &[0x45u8, 2][..]), "{backend:?}");
            assert_eq!(run(&mut sw, 1, &[0x65, 2]).0, error("BadVersion"), "{backend:?}");
            assert_eq!(run(&mut sw, 1, &[0x40, 2]).0, error("HeaderTooShort"), "{backend:?}");
            assert_eq!(
                run(&mut sw, 1, &[0x45, 0]).0,
                Outcome::Dropped(DropReason::ParserReject { state: "start".into() }),
                "{backend:?}"
            );
            let report = sw.report();
            assert!(report.contains("parser reject in state 'start': verify failed (error.BadVersion)"), "{report}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut sw = interp(&example("ipv4_router"));
        sw.apply_commands(ROUTER_COMMANDS, "router.txt").unwrap_or_else(|e| panic!("{e:?}"));
        let base = syn();
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut out = Vec::new();
        for i in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 100) as usize;
            let mut pkt: Vec<u8> = (0..len).map(|j| (x >> (j % 56)) as u8 ^ j as u8).collect();
            // Half of them look like IPv4 so the deeper states run too.
            if i % 2 == 0 && len >= 34 {
                pkt[..34].copy_from_slice(&base[..34]);
                pkt[14 + (x as usize % 20)] ^= (x >> 8) as u8;
            }
            sw.process((x % 4) as u16, &pkt, i, &mut out);
        }
        assert_eq!(sw.stats().rx_packets(), 3000);
        assert_eq!(sw.stats().rx_packets(), sw.stats().tx_packets() + sw.stats().dropped());
    }

    #[test]
    fn multicast_replicates_except_ingress() {
        let src = r#"
            header h_t { bit<8> grp; bit<8> port; }
            struct hs { h_t h; }
            struct m_t { bit<1> unused; }
            parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
                state start { pkt.extract(hdr.h); transition accept; }
            }
            control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
                apply {
                    std.mcast_grp = (bit<16>)hdr.h.grp;
                    std.egress_spec = (bit<9>)hdr.h.port;
                }
            }
            control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.h); } }
            Pipeline(P(), C(), D()) main;
        "#;
        let mut sw = interp(src);
        sw.apply_commands("mc_mgrp_create 1\nmc_node_create 0 1 2 3\nmc_mgrp_create 2\nmc_node_create 0 1\nmc_node_associate 1 0\nmc_node_associate 2 1", "mc.txt")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let (o, out) = run(&mut sw, 2, &[1, 0, 0xAA]);
        assert_eq!(o, Outcome::Forwarded);
        assert_eq!(out.iter().map(|p| p.port).collect::<Vec<_>>(), vec![1, 3]);
        assert!(out.iter().all(|p| p.data == [1, 0, 0xAA]));
        assert_eq!(run(&mut sw, 1, &[2, 0]).0, Outcome::Dropped(DropReason::EmptyMcastGroup { group: 2 }));
        assert_eq!(run(&mut sw, 1, &[9, 0]).0, Outcome::Dropped(DropReason::UnknownMcastGroup { group: 9 }));
        let (o, out) = run(&mut sw, 1, &[0, 7]);
        assert_eq!((o, out[0].port, out.len()), (Outcome::Forwarded, 7, 1));
        // A group's copies after a unicast packet, and a unicast packet's
        // one port after them: each packet has only its own ports.
        let (o, out) = run(&mut sw, 2, &[1, 0, 0xBB]);
        assert_eq!((o, out.iter().map(|p| p.port).collect::<Vec<_>>()), (Outcome::Forwarded, vec![1, 3]));
        let p = sw.process_in_place(1, &[0, 5], 2_000);
        assert_eq!((p.outcome, p.ports, p.data), (Outcome::Forwarded, &[5u16][..], &[0u8, 5][..]));
        let p = sw.process_in_place(1, &[9, 0], 3_000);
        assert_eq!((p.ports, p.data), (&[][..], &[][..]), "a drop has no ports");
        sw.set_ports(&[1, 2, 3]);
        assert_eq!(run(&mut sw, 1, &[0, 7]).0, Outcome::Dropped(DropReason::UnknownPort));
        let report = sw.report();
        assert!(report.contains("unknown multicast group 9"), "{report}");
    }

    #[test]
    fn trace_lines_follow_bmv2_wording() {
        let mut sw = interp_traced(&example("ipv4_router"), true);
        sw.apply_commands(ROUTER_COMMANDS, "router.txt").unwrap_or_else(|e| panic!("{e:?}"));
        let _ = sw.take_trace();
        run(&mut sw, 1, &syn());
        let t = sw.take_trace();
        let want = [
            "Processing packet #1 received on port 1 (74 bytes)",
            "Parser state 'start'",
            "Extracting header 'hdr.ethernet'",
            "Parser state 'parse_ipv4'",
            "Extracting header 'hdr.ipv4'",
            "Control 'RouterIngress': start",
            "Applying table 'RouterIngress.ipv4_lpm'",
            "Looking up key: hdr.ipv4.dst_addr: 0x0a000001",
            "Table 'RouterIngress.ipv4_lpm': hit with handle 0",
            "Action entry is RouterIngress.set_nhop - nhop_ipv4=0x0a0000fe, port=2,",
            "Action RouterIngress.set_nhop",
            "Deparsing header 'hdr.ethernet'",
            "Egress port is 2",
            "Transmitting packet of size 74 out of port 2",
        ];
        let mut at = 0;
        for w in want {
            match t[at..].iter().position(|l| l == w) {
                Some(i) => at += i + 1,
                None => panic!("missing or out of order: {w:?}\ntrace:\n{}", t.join("\n")),
            }
        }
        assert!(t.iter().any(|l| l.starts_with("Condition \"") && l.ends_with("is false")), "{}", t.join("\n"));
        // A call that returns shows its result; a void call shows none.
        assert!(t.iter().any(|l| l.starts_with("Extern csum16(") && l.contains(") -> 0x")), "{}", t.join("\n"));
        let mut counted = interp_traced(&counting_program("counter(4) seen;"), true);
        run(&mut counted, 1, &[2]);
        let t = counted.take_trace();
        assert!(t.iter().any(|l| l == "Extern I.seen.count(0x2)"), "{}", t.join("\n"));
        // Tracing off: nothing recorded.
        let mut quiet = interp(&example("ipv4_router"));
        run(&mut quiet, 1, &syn());
        assert!(quiet.take_trace().is_empty());
    }

    #[test]
    fn unknown_and_unimplemented_externs_are_refused() {
        let base = |decl: &str, call: &str| {
            format!(
                r#"
                {decl}
                header h_t {{ bit<8> a; }}
                struct hs {{ h_t h; }}
                struct m_t {{ bit<32> x; }}
                parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {{
                    state start {{ pkt.extract(hdr.h); transition accept; }}
                }}
                control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {{
                    {call}
                }}
                control D(packet_out pkt, in hs hdr) {{ apply {{ pkt.emit(hdr.h); }} }}
                Pipeline(P(), C(), D()) main;
            "#
            )
        };
        let err =
            |src: String| match Switch::new(compile(&src), SwitchOptions { backend: Backend::Interp, trace: false }) {
                Ok(_) => panic!("expected an error"),
                Err(e) => e.to_string(),
            };
        let unknown = base("extern void frobnicate(in bit<8> x);", "apply { frobnicate(hdr.h.a); }");
        assert_eq!(err(unknown), "extern `frobnicate` is not provided by the runtime");
        let conn = base(
            "",
            "conn_table(1024) conns; bit<8> fwd; bit<32> ra; bit<16> rp; bit<8> res;
             apply { res = conns.lookup_in(6, 1, 2, 3, 4, 0, 40, fwd, ra, rp); }",
        );
        // The IPVS externs are bound to the switch's director.
        assert!(Switch::new(compile(&conn), SwitchOptions { backend: Backend::Interp, trace: false }).is_ok());
        // Declared but never called: fine.
        let unused = base("", "conn_table(1024) conns; apply { }");
        assert!(Switch::new(compile(&unused), SwitchOptions { backend: Backend::Interp, trace: false }).is_ok());
    }

    /// lb.p4lite's prefetch hints act only in the hint pass: the pipeline
    /// (JIT, traced JIT, interpreter) skips them, and short frames hint nothing.
    #[test]
    fn prefetch_hints_run_only_in_the_hint_pass() {
        let program = compile(&example("lb"));
        let hints = |sw: &Switch| sw.externs().director().map_or(u64::MAX, |d| d.conns.prefetch_hints());
        let syn = syn();
        for (backend, trace) in [(Backend::Jit, false), (Backend::Jit, true), (Backend::Interp, false)] {
            let mut sw =
                Switch::new(program.clone(), SwitchOptions { backend, trace }).unwrap_or_else(|e| panic!("{e}"));
            // The pipeline, traced or not, and the interpreter skip the hint.
            run(&mut sw, 1, &syn);
            assert_eq!(hints(&sw), 0, "{backend:?} trace {trace}: the pipeline ran a hint");
            sw.hint(&syn);
            let want = u64::from(backend == Backend::Jit);
            assert_eq!(hints(&sw), want, "{backend:?} trace {trace}: the hint pass");
            // A frame the parser rejects or cuts short before the TCP header
            // hints nothing (and reads nothing past its end).
            sw.hint(&syn[..20]);
            sw.hint(&syn[..40]);
            sw.hint(&[]);
            assert_eq!(hints(&sw), want, "{backend:?} trace {trace}: short frames");
        }
    }

    /// A client's packet hints its own connection (by its source); a real
    /// server's NAT reply, the connection of its destination, the client
    /// (`externs::ipvs::prefetch`, through the JIT's register call).
    #[test]
    fn prefetch_hints_the_client_side_of_either_direction() {
        let mut sw = Switch::new(compile(&example("lb")), SwitchOptions { backend: Backend::Jit, trace: false })
            .unwrap_or_else(|e| panic!("{e}"));
        let conf = "-A -t 198.51.100.10:80 -s rr\n-a -t 198.51.100.10:80 -r 10.1.2.1:8080 -m\n";
        crate::ipvs::director::load_into_switch(&mut sw, conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        // Ethernet / IPv4 / TCP from `src` to `dst` (address, port).
        let frame = |src: ([u8; 4], u16), dst: ([u8; 4], u16)| {
            let mut f = vec![0u8; 54];
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f[14] = 0x45;
            f[16..18].copy_from_slice(&40u16.to_be_bytes());
            f[22..24].copy_from_slice(&[64, 6]);
            f[26..30].copy_from_slice(&src.0);
            f[30..34].copy_from_slice(&dst.0);
            f[34..36].copy_from_slice(&src.1.to_be_bytes());
            f[36..38].copy_from_slice(&dst.1.to_be_bytes());
            f[46..48].copy_from_slice(&[0x50, 0x10]);
            f
        };
        let (vip, rip) = (([198, 51, 100, 10], 80), ([10, 1, 2, 1], 8080));
        let key = |(a, p): ([u8; 4], u16)| (6u8, u32::from_be_bytes(a), p);
        let last_is = |sw: &Switch, (proto, a, p): (u8, u32, u16)| {
            sw.externs().director().is_some_and(|d| d.conns.last_hint_is(proto, a, p))
        };
        // The test means something only if the keys' chains differ (the
        // table's hash seed is random): a client port whose chain is neither
        // the VIP's nor the real server's. A packet to the client hints it.
        let client = (20001..20100)
            .map(|port| ([100, 64, 0, 7], port))
            .find(|&c| {
                sw.hint(&frame(vip, c));
                last_is(&sw, key(c)) && !last_is(&sw, key(vip)) && !last_is(&sw, key(rip))
            })
            .expect("a client port with a chain of its own");
        sw.hint(&frame(client, vip));
        assert!(last_is(&sw, key(client)) && !last_is(&sw, key(vip)), "a client's packet hints its source");
        sw.hint(&frame(rip, client));
        assert!(last_is(&sw, key(client)) && !last_is(&sw, key(rip)), "a NAT reply hints its destination");
        sw.hint(&frame(client, rip));
        assert!(last_is(&sw, key(rip)), "a packet to another address hints its destination");
    }

    /// `--emit asm`: the JIT switch gives its machine code (with the
    /// table-image fast path and the host call it falls back to), the
    /// interpreter none.
    #[test]
    fn the_jit_switch_disassembles_its_pipeline() {
        let program = compile(&example("ipv4_router"));
        let options = |backend| SwitchOptions { backend, trace: false };
        let mut jit = Switch::new(program.clone(), options(Backend::Jit)).unwrap_or_else(|e| panic!("{e}"));
        let asm = match jit.disassembly() {
            Some(Ok(text)) => text,
            other => panic!("no disassembly: {other:?}"),
        };
        assert!(asm.contains("ret") && asm.contains("bswap"), "{asm}");
        // Three table applies: each an inline probe with one host call behind it.
        assert_eq!(asm.matches("call ").count(), 3, "{asm}");
        let mut int = Switch::new(program, options(Backend::Interp)).unwrap_or_else(|e| panic!("{e}"));
        assert!(int.disassembly().is_none());
    }

    /// Once the switch has compiled its pipeline for its tables'
    /// snapshots, the disassembly is of that code: a snapshot entry's
    /// action parameter (the next hop's MAC address) is an immediate in it.
    #[test]
    fn the_disassembly_shows_the_snapshots_the_switch_runs() {
        let program = compile(&example("ipv4_router"));
        let mut jit = Switch::new(program, SwitchOptions { backend: Backend::Jit, trace: false })
            .unwrap_or_else(|e| panic!("{e}"));
        jit.apply_commands(ROUTER_COMMANDS, "router.txt").unwrap_or_else(|e| panic!("{e:?}"));
        let asm = |sw: &mut Switch| match sw.disassembly() {
            Some(Ok(text)) => text,
            other => panic!("no disassembly: {other:?}"),
        };
        let mac = "0xaabbccdd02";
        assert!(!asm(&mut jit).contains(mac), "no snapshot before the first packet");
        let (o, _) = run(&mut jit, 1, &syn());
        assert_eq!(o, Outcome::Forwarded);
        assert_eq!(jit.specialisations(), 1);
        let text = asm(&mut jit);
        assert!(text.contains(mac), "{text}");
    }

    #[test]
    fn stats_follow_every_packet() {
        let mut sw = interp(&example("ipv4_router"));
        sw.apply_commands(ROUTER_COMMANDS, "router.txt").unwrap_or_else(|e| panic!("{e:?}"));
        let pkt = syn();
        run(&mut sw, 1, &pkt);
        assert_eq!((sw.stats().rx_packets(), sw.stats().tx_packets()), (1, 1));
        let first = sw.stats().clone();
        // A snapshot taken by `stats` is replaced, not reused, after more packets.
        run(&mut sw, 300, &pkt);
        run(&mut sw, 1, &pkt[..10]);
        let s = sw.stats();
        assert_ne!(s, &first);
        assert_eq!((s.rx_packets(), s.tx_packets(), s.dropped()), (3, 2, 1));
        assert_eq!(s.ports.keys().copied().collect::<Vec<_>>(), [1, 2, 300], "ports that saw traffic, in order");
        assert_eq!(s.ports[&300], PortStats { rx_packets: 1, rx_bytes: 74, tx_packets: 0, tx_bytes: 0 });
        assert_eq!(s.ports[&2], PortStats { rx_packets: 0, rx_bytes: 0, tx_packets: 2, tx_bytes: 148 });
        assert_eq!(
            s.drops.iter().map(|(r, n)| (r.to_string(), *n)).collect::<Vec<_>>(),
            [("truncated in parser state 'start'".to_string(), 1)]
        );
        let report = sw.report();
        assert!(report.starts_with("Packets: 3 received, 2 sent, 1 dropped\n"), "{report}");
    }

    /// A program that counts each packet in cell `x` (its first byte) of
    /// counter `seen` (declared in `counters`, with any others) and sends it
    /// to port 1.
    fn counting_program(counters: &str) -> String {
        format!(
            "header h_t {{ bit<8> x; }}
             struct headers_t {{ h_t h; }}
             struct metadata_t {{ }}
             parser P(packet_in pkt, out headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{
                 state start {{ pkt.extract(hdr.h); transition accept; }}
             }}
             control I(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{
                 {counters}
                 apply {{ seen.count((bit<32>) hdr.h.x); std.egress_spec = 1; }}
             }}
             control D(packet_out pkt, in headers_t hdr) {{ apply {{ pkt.emit(hdr.h); }} }}
             Pipeline(P(), I(), D()) main;"
        )
    }

    /// The report lists each counter cell that counted something, in index
    /// order, up to REPORTED_CELLS of one counter, then how many more.
    #[test]
    fn the_report_lists_counter_cells_that_counted() {
        let mut sw = interp_traced(&counting_program("counter(256) seen; counter(4) none;"), false);
        run(&mut sw, 1, &[7]);
        run(&mut sw, 1, &[7, 0]);
        run(&mut sw, 1, &[3]);
        let report = sw.report();
        let cells = report.split("Counter cells (those not zero)\n").nth(1).unwrap_or_else(|| panic!("{report}"));
        assert_eq!(
            cells,
            "  counter  index  packets  bytes\n  I.seen       3        1      1\n  I.seen       7        2      3\n"
        );
        for x in 0..=255u8 {
            run(&mut sw, 1, &[x]);
        }
        let report = sw.report();
        let cells: Vec<&str> = report.split("Counter cells (those not zero)\n").nth(1).unwrap_or("").lines().collect();
        assert_eq!(cells.len(), 1 + REPORTED_CELLS + 1, "{report}");
        assert_eq!(cells[REPORTED_CELLS + 1].split_whitespace().collect::<Vec<_>>(), ["I.seen", "(192", "more)"]);
    }

    #[test]
    fn text_table_aligns_columns() {
        let t = text_table(&["name", "n"], vec![vec!["a".into(), "1000".into()], vec!["longer".into(), "2".into()]]);
        assert_eq!(t, "  name       n\n  a       1000\n  longer     2\n");
    }
}
