//! The contract between compiled pipelines and the runtime: the one file
//! both sides read. The compiler does not depend on the runtime; the runtime
//! hands the JIT a table of host symbols named here.
//!
//! # Memory
//! A packet is processed in a [`PacketCtx`]. Its `phv` points at a
//! block of [`Layout::phv_size`] bytes holding every IR slot at
//! [`Layout::slot_offset`], each as a native little-endian integer in the
//! smallest container of 1, 2, 4, 8 or 16 bytes that fits its width, aligned
//! to that size. Values are always kept masked to their width. The same block
//! holds, at offsets also in the layout, one key buffer per table and an
//! argument array for extern calls.
//!
//! The packet bytes are `buf[head .. head + len]`; `buf` has `cap` bytes and
//! the runtime guarantees `head >= Layout::max_emit_bytes` so the deparser can
//! prepend headers (an IPIP encapsulation adds 20 bytes) without allocating.
//!
//! # The pipeline function
//! `extern "C" fn(ctx: *mut PacketCtx) -> u32` runs parser, controls and
//! deparser and returns a [`Verdict`]. It starts the packet itself: it
//! zeroes the slots a packet may read before writing them
//! (`phv[..Layout::zero_bytes]`, whatever the block held; the other slots
//! keep an earlier packet's values, which nothing reads before writing)
//! and sets the standard metadata's `ingress_port`, `packet_length` and
//! `timestamp` from `ctx.port`, `ctx.len` and `ctx.timestamp` (masked to
//! their widths), as the interpreter's caller does before it runs. Key
//! buffers and the argument array are not zeroed (scratch). On
//! [`Verdict::Forward`] the output packet is `buf[head .. head + len]`
//! (head and len updated by the deparser) and the egress decision is in
//! the standard-metadata slots.
//!
//! # Host functions
//! - [`TABLE_APPLY`]: `fn(ctx, table: u32) -> u32` — looks up the key the
//!   pipeline wrote at `Layout::table_keys[table]`, writes the chosen entry's
//!   action parameters into the action's parameter slots, and returns
//!   `action_id | HIT_BIT` on a hit or the default action's id on a miss.
//!   The compiled code then runs that action.
//! - [`TABLE_LOOKUP`]: `fn(ctx, table: u32, key: u64) -> LookupResult` —
//!   the same lookup for tables whose key components add up to at most 64
//!   bits ([`uses_table_lookup`]), with the key in a register instead of
//!   the key buffers: the components concatenated, the first in the
//!   highest bits, each masked to its width (the usual single component is
//!   just its value); `table` has [`PACKED_KEY`] set when there are
//!   several. Counts the hit or miss and traces exactly like
//!   [`TABLE_APPLY`], but writes nothing: it returns (in two registers,
//!   [`LookupResult`]) `action_id | HIT_BIT` (or the default's id) and a
//!   pointer to the chosen action's parameter values, one native-endian
//!   `u128` each, masked to the parameter's width, in parameter order. The
//!   compiled code reads each parameter's low container bytes (hosts are
//!   little-endian: x86-64, aarch64) straight into the action's parameter
//!   slots, before any other host call (the pointer is only valid until
//!   then: it points into the runtime's table entries). Its key buffers
//!   are then not written: key buffers are scratch, like the argument
//!   array (only the slots must be equal between backends).
//! - [`EXTERN_CALL`]: `fn(ctx, site: u32)` — calls the extern bound to call
//!   site `site`. Before the call the pipeline writes the flattened argument
//!   values to the argument array (`Layout::extern_args`, `u128` each):
//!   entry 0 is the return value (written by the callee), then one entry per
//!   scalar argument and one per element of a `List` argument, in order.
//!   `Out`/`InOut` entries are copied back to their slots after the call.
//!   The runtime zeroes the return entry and every `Out` entry before the
//!   callee runs, so what the pipeline writes there does not matter and an
//!   `out` argument the callee leaves alone becomes 0.
//! - [`TRACE`]: `fn(ctx, event: u32, a: u32, b: u32)` — called only by
//!   pipelines compiled with tracing on; see [`TraceEvent`].
//! - [`IPVS_CALL`]: `fn(ctx, site: u32, addrs: u64, ports: u64, misc: u64)
//!   -> IpvsResult` — the prelude's `conn_table.lookup_in`,
//!   `conn_table.lookup_out` and `scheduler.schedule` ([`ipvs_call`]) with
//!   their `in` values in registers instead of the argument array, for
//!   untraced pipelines: `addrs` = first address << 32 | second address,
//!   `ports` = first port << 16 | second port, `misc` = protocol | tcp_flags
//!   << 8 | ip_len << 16 | service << 32 (0 for the lookups), in the order
//!   the methods take them. The result ([`IpvsResult`]) carries the return
//!   value and the outs: `word` = return | fwd << 8 | port << 16, `addr` the
//!   address (`raddr` of the lookup and schedule, `vaddr` of `lookup_out`,
//!   whose port out is `vport` and which has no `fwd`). The same state
//!   changes as through [`EXTERN_CALL`]; the argument array is not written.
//!   The hint `conn_table.prefetch(proto, saddr, sport, daddr, dport)` goes
//!   the same way (`addrs` = saddr << 32 | daddr, `ports` = sport << 16 |
//!   dport, `misc` = proto; the result means nothing).
//!
//! # The hint pass: prefetch hints
//! A program may call *hint* methods ([`is_hint`]: the prelude's
//! `conn_table.prefetch`) in its parser states. They promise nothing and
//! change no state a packet can observe: the pipeline function skips them
//! (a traced one calls them, and the runtime ignores such calls). When the
//! parser has any, the JIT also compiles a *hint pass* of the same
//! signature that runs only the parser, on a PHV of its own, executing only
//! the hints (through [`EXTERN_CALL`]), and returns the parser's verdict; it
//! writes neither the packet nor `head`/`len`. Its slots live in registers
//! (a slot read before any write reads 0); of its PHV it uses only the
//! extern argument array. The runtime runs it on a
//! packet some packets before that packet's pipeline run, so the memory its
//! lookups will touch is on its way into the caches while the packets
//! before it are processed.
//!
//! # Table images: lookups without a host call
//! [`HostSymbols::table_images`] may point at one [`TableImage`] per table
//! (indexed by table id), at an address that stays fixed while the
//! compiled code exists; the runtime rewrites their contents between
//! packets whenever a table changes. An untraced pipeline looks up a table
//! with [`image_kind`] `Some(kind)` itself when the image's `kind` field
//! equals `kind` at that moment, and otherwise calls [`TABLE_LOOKUP`] as
//! usual (so a runtime may always answer [`IMAGE_NONE`]). The image path
//! must give exactly [`TABLE_LOOKUP`]'s result and counts:
//! - [`IMAGE_EXACT`] (one `exact` key of at most 64 bits): `index` holds
//!   `mask + 1` (a power of two) [`ExactSlot`]s; probing starts at slot
//!   `(key * EXACT_HASH_K) >> shift` and walks forward (`& mask`) until a
//!   slot holds `key` (a hit on its `handle`) or is empty (`handle ==
//!   EXACT_EMPTY`: a miss). At least one slot is always empty.
//! - [`IMAGE_LPM`] (one `lpm` key of at most 32 bits): a multibit trie of
//!   at most three levels. `cell = root[key >> lpm.shifts[0]]`; while
//!   `cell & LPM_CHUNK` is set (at most twice), `cell = chunks[(cell &
//!   !LPM_CHUNK) * 256 + ((key >> lpm.shifts[l]) & lpm.masks[l])]` for
//!   levels `l = 1, 2`. Then `0` is a miss and anything else a hit on
//!   handle `cell - 1`.
//! - [`IMAGE_GROUPS`] (any other [`uses_table_lookup`] table without
//!   `range` keys; the key packed as for [`TABLE_LOOKUP`]): `index` holds
//!   `mask` [`MaskGroup`]s, ordered by `best`. Each entry has a rank, its
//!   position in the order the table picks the winner by (priority, then
//!   age; longest prefix; ...), and entries with the same packed mask form
//!   a group: an [`ExactSlot`] index (as for [`IMAGE_EXACT`], with the
//!   group's `shift` and `slot_mask`) from `key & mask` to the best entry
//!   with that masked key, its rank in the slot's `_pad`. The winner is the
//!   best-ranked hit over the groups; a group whose `best` is not better
//!   than the best hit so far ends the search (so do all after it).
//! - Results: `rows` holds rows of `16 * (1 + image_params(..))` bytes:
//!   row 0 is the miss (default action), row `1 + h` the entry of handle
//!   `h`. A row's first `u32` is the action word [`TABLE_LOOKUP`] returns
//!   (`action | HIT_BIT` for entries), followed at byte 16 by the
//!   parameters in [`TABLE_LOOKUP`]'s format (one `u128` each).
//! - Counts: `counts` points at `u64`s: `[0]` the table's hits, `[1]` its
//!   misses, `[2 + h]` entry `h`'s hits. A hit adds one to `[0]` and to
//!   `[2 + h]`, a miss one to `[1]`.
//! - `version`: the table version ([`TableSnapshot::version`]) the image
//!   was built from; 0 for [`TableImage::NONE`]. It changes whenever the
//!   table's entries, default action or counters' memory may have changed.
//!
//! # Table snapshots: lookups compiled from a table's entries
//! A runtime may also give `jit::compile_specialised` a [`TableSnapshot`]
//! of a table with an image, taken from the table as it is at that moment
//! and as its image of `version` shows it. The compiled apply then first
//! compares the image's `version` with the snapshot's: equal, it matches
//! the key against the snapshot's entries in their order (the first
//! `key & mask == value` wins, else the miss) and runs the winner's action
//! with its parameters as constants, counting exactly as the image path
//! does (through the image's `counts`); different, it looks up the image
//! as above. So a snapshot never has to be right for long: a table that
//! changes is served by its image until the runtime compiles again.

use crate::ir::{self, Program, SlotId, StmtKind, Ty};

/// Symbol name of the table-apply host function.
pub const TABLE_APPLY: &str = "p4l_table_apply";
/// Symbol name of the table-lookup host function (the key in a register).
pub const TABLE_LOOKUP: &str = "p4l_table_lookup";
/// Symbol name of the extern-call host function.
pub const EXTERN_CALL: &str = "p4l_extern_call";
/// Symbol name of the trace host function.
pub const TRACE: &str = "p4l_trace";
/// Symbol name of the IPVS host function (arguments in registers).
pub const IPVS_CALL: &str = "p4l_ipvs_call";

/// Set in [`TABLE_APPLY`]'s result when an entry matched.
pub const HIT_BIT: u32 = 1 << 31;

/// The most entries a [`TableSnapshot`] may hold: a compiled apply tests
/// them one after another, so a longer table is better served by its index.
pub const SNAPSHOT_MAX_ENTRIES: usize = 8;

/// A table's contents when the pipeline was compiled (module docs, "Table
/// snapshots"): what its image of version `version` gives for every key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSnapshot {
    /// [`TableImage::version`] of the image this is a snapshot of (nonzero).
    pub version: u64,
    /// The entries in the order the lookup ranks them (the first match
    /// wins); at most [`SNAPSHOT_MAX_ENTRIES`].
    pub entries: Vec<SnapshotEntry>,
    /// The default action and its parameters (what a miss runs).
    pub miss: (ir::ActionId, Vec<u128>),
}

/// One entry of a [`TableSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// The key bits the entry matches, packed as for [`TABLE_LOOKUP`].
    pub mask: u64,
    /// The key the entry matches (`key & mask == value`; `value & !mask == 0`).
    pub value: u64,
    /// The entry handle (its hit count is `counts[2 + handle]`).
    pub handle: u32,
    /// The action a hit runs, and its parameter values.
    pub action: ir::ActionId,
    pub params: Vec<u128>,
}

/// The most parser states one packet may visit; the transition out of the
/// state visited last is a [`Verdict::Reject`] of that state, so a parser
/// loop that consumes nothing cannot hang either backend.
pub const MAX_PARSER_STEPS: u32 = 1 << 16;

/// The most cells a `counter` or `register` instance may have: the runtime
/// allocates them up front (4 Mi cells is 64 MiB for a register of any
/// width), and the checker refuses larger sizes (E0607) at the argument.
pub const MAX_CELLS: u128 = 1 << 22;

/// The most entries a `pmtu_cache` instance may hold (at least one): the
/// runtime bounds its table by it, and the checker refuses other sizes
/// (E0607) at the argument.
pub const MAX_PMTU_ENTRIES: u64 = 1 << 20;

/// The table-apply host function.
pub type TableApplyFn = unsafe extern "C" fn(ctx: *mut PacketCtx, table: u32) -> u32;
/// What [`TABLE_LOOKUP`] returns: two machine words, which the C calling
/// conventions of x86-64 (System V) and aarch64 return in two registers
/// (`rax:rdx`, `x0:x1`), the way Cranelift returns a two-`i64` result.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LookupResult {
    /// `action_id | HIT_BIT` on a hit, the default action's id on a miss
    /// (`!HIT_BIT`, no action, for a table id the program does not have).
    pub action: u64,
    /// The action's parameter values (`u128` each, at least as many as the
    /// action has parameters); valid until the next host call.
    pub params: *const u128,
}

/// The table-lookup host function (the key in a register).
pub type TableLookupFn = unsafe extern "C" fn(ctx: *mut PacketCtx, table: u32, key: u64) -> LookupResult;
/// The extern-call host function.
pub type ExternCallFn = unsafe extern "C" fn(ctx: *mut PacketCtx, site: u32);
/// What [`IPVS_CALL`] returns (two registers, like [`LookupResult`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpvsResult {
    /// Return value | fwd << 8 | port << 16.
    pub word: u64,
    /// The address out.
    pub addr: u64,
}
/// The IPVS host function.
pub type IpvsCallFn =
    unsafe extern "C" fn(ctx: *mut PacketCtx, site: u32, addrs: u64, ports: u64, misc: u64) -> IpvsResult;
/// The trace host function.
pub type TraceFn = unsafe extern "C" fn(ctx: *mut PacketCtx, event: u32, a: u32, b: u32);
/// A compiled pipeline.
pub type PipelineFn = unsafe extern "C" fn(ctx: *mut PacketCtx) -> u32;

/// Host function addresses the runtime gives the JIT, by symbol name.
#[derive(Clone, Copy, Debug)]
pub struct HostSymbols {
    pub table_apply: TableApplyFn,
    pub table_lookup: TableLookupFn,
    pub extern_call: ExternCallFn,
    pub trace: TraceFn,
    /// [`IPVS_CALL`], or `None` when IPVS calls go through [`EXTERN_CALL`].
    pub ipvs_call: Option<IpvsCallFn>,
    /// One [`TableImage`] per table of the program, or null for none
    /// (every lookup then calls the host); see the module docs.
    pub table_images: *const TableImage,
    /// One [`CounterImage`] per extern instance of the program (by
    /// `InstanceId`), or null for none (every `count` then calls the host).
    pub counter_images: *const CounterImage,
}

/// [`TableImage::kind`]: no image; compiled code calls [`TABLE_LOOKUP`].
pub const IMAGE_NONE: u32 = 0;
/// [`TableImage::kind`]: a one-key exact index of [`ExactSlot`]s.
pub const IMAGE_EXACT: u32 = 1;
/// [`TableImage::kind`]: a one-key lpm trie.
pub const IMAGE_LPM: u32 = 2;
/// [`TableImage::kind`]: groups of entries by packed mask.
pub const IMAGE_GROUPS: u32 = 3;
/// The multiplier of the exact image's home slot (2^64 / golden ratio, odd).
pub const EXACT_HASH_K: u64 = 0x9E37_79B9_7F4A_7C15;
/// [`ExactSlot::handle`] of an empty slot.
pub const EXACT_EMPTY: u32 = u32::MAX;
/// Marks an lpm trie cell that points at a chunk of the next level.
pub const LPM_CHUNK: u32 = 1 << 31;

/// What compiled code reads to look a table up itself (module docs).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TableImage {
    /// [`IMAGE_NONE`], [`IMAGE_EXACT`] or [`IMAGE_LPM`].
    pub kind: u32,
    /// Exact: the home slot's shift (64 − log2 of the slot count).
    pub shift: u32,
    /// Exact: the slot count − 1. Groups: the number of groups.
    pub mask: u64,
    /// Exact: the [`ExactSlot`]s. Lpm: the root cells (`u32` each).
    /// Groups: the [`MaskGroup`]s.
    pub index: *const u8,
    /// Lpm: the chunk cells, 256 `u32`s per chunk.
    pub chunks: *const u32,
    /// Result rows: the miss, then one per entry handle.
    pub rows: *const u8,
    /// Counters: hits, misses, then one per entry handle.
    pub counts: *mut u64,
    /// Lpm: per level, the key's shift and the cell index mask.
    pub lpm: LpmLevels,
    /// The table version this image was built from (0: none; module docs).
    pub version: u64,
}

/// The levels of an [`IMAGE_LPM`] trie.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LpmLevels {
    pub shifts: [u32; 3],
    pub masks: [u32; 3],
}

impl TableImage {
    /// An image compiled code does not use ([`IMAGE_NONE`]).
    pub const NONE: TableImage = TableImage {
        kind: IMAGE_NONE,
        shift: 0,
        mask: 0,
        index: std::ptr::null(),
        chunks: std::ptr::null(),
        rows: std::ptr::null(),
        counts: std::ptr::null_mut(),
        lpm: LpmLevels { shifts: [0; 3], masks: [0; 3] },
        version: 0,
    };
}

/// One slot of an [`IMAGE_EXACT`] index.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExactSlot {
    /// The key (masked to the key's width).
    pub key: u64,
    /// The entry handle, [`EXACT_EMPTY`] for an empty slot.
    pub handle: u32,
    /// Padding (16-byte slots).
    pub _pad: u32,
}

/// One group of an [`IMAGE_GROUPS`] image: the entries whose packed mask is `mask`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MaskGroup {
    /// The packed mask of the group's entries.
    pub mask: u64,
    /// The best (smallest) rank in the group.
    pub best: u32,
    /// The home slot's shift (64 − log2 of the slot count).
    pub shift: u32,
    /// The slot count − 1.
    pub slot_mask: u64,
    /// The slots: masked key → best entry with it (rank in `_pad`).
    pub slots: *const ExactSlot,
}

/// Byte offsets of [`MaskGroup`] fields, for the code generator.
pub mod group_offset {
    use super::MaskGroup;
    pub const MASK: i32 = std::mem::offset_of!(MaskGroup, mask) as i32;
    pub const BEST: i32 = std::mem::offset_of!(MaskGroup, best) as i32;
    pub const SHIFT: i32 = std::mem::offset_of!(MaskGroup, shift) as i32;
    pub const SLOT_MASK: i32 = std::mem::offset_of!(MaskGroup, slot_mask) as i32;
    pub const SLOTS: i32 = std::mem::offset_of!(MaskGroup, slots) as i32;
    pub const SIZE: i64 = std::mem::size_of::<MaskGroup>() as i64;
}

/// A `counter` instance's cells, for compiled code that counts itself
/// ([`HostSymbols::counter_images`]): `count(index)` adds one to
/// `packets[index]` and `std.packet_length` to `bytes[index]` when
/// `index < size`, else one to `*errors`. A null `packets` means "call the
/// host" ([`EXTERN_CALL`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CounterImage {
    pub packets: *mut u64,
    pub bytes: *mut u64,
    pub size: u64,
    pub errors: *mut u64,
}

impl CounterImage {
    /// No image: compiled code calls the host.
    pub const NONE: CounterImage = CounterImage {
        packets: std::ptr::null_mut(),
        bytes: std::ptr::null_mut(),
        size: 0,
        errors: std::ptr::null_mut(),
    };
}

/// Byte offsets of [`CounterImage`] fields, for the code generator.
pub mod counter_offset {
    use super::CounterImage;
    pub const PACKETS: i32 = std::mem::offset_of!(CounterImage, packets) as i32;
    pub const BYTES: i32 = std::mem::offset_of!(CounterImage, bytes) as i32;
    pub const SIZE: i32 = std::mem::offset_of!(CounterImage, size) as i32;
    pub const ERRORS: i32 = std::mem::offset_of!(CounterImage, errors) as i32;
    pub const STRIDE: u64 = std::mem::size_of::<CounterImage>() as u64;
}

/// The counter instance a call site counts into, when the call is the
/// prelude's `counter.count(in index)`: compiled code may then count
/// itself through [`HostSymbols::counter_images`].
pub fn counter_count(program: &Program, call: &ir::ExternCall) -> Option<ir::InstanceId> {
    let ir::Callee::Method { instance, method } = call.callee else { return None };
    let inst = program.instances.get(instance.index())?;
    let ty = program.extern_types.get(inst.ty.index())?;
    let sig = ty.methods.get(method as usize)?;
    let prelude = ty.span.source == crate::span::SourceId::PRELUDE;
    let one_in = matches!(call.args.as_slice(), [ir::ExternArg::In(_)]);
    (prelude && ty.name == "counter" && sig.name == "count" && one_in).then_some(instance)
}

/// Which of the prelude's IPVS methods a call site calls, for [`IPVS_CALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpvsMethod {
    LookupIn,
    LookupOut,
    Schedule,
    /// `conn_table.prefetch`, a hint (only the hint pass calls it).
    Prefetch,
}

/// The IPVS method a call site calls, when it is the prelude's
/// `conn_table.lookup_in`/`lookup_out` or `scheduler.schedule` with the
/// prelude's arguments (7, 7 or 8 `in` values, then 3, 2 or 3 `out` slots).
pub fn ipvs_call(program: &Program, call: &ir::ExternCall) -> Option<IpvsMethod> {
    let ir::Callee::Method { instance, method } = call.callee else { return None };
    let inst = program.instances.get(instance.index())?;
    let ty = program.extern_types.get(inst.ty.index())?;
    let sig = ty.methods.get(method as usize)?;
    if ty.span.source != crate::span::SourceId::PRELUDE {
        return None;
    }
    let (m, ins, outs) = match (ty.name.as_str(), sig.name.as_str()) {
        ("conn_table", "lookup_in") => (IpvsMethod::LookupIn, 7, 3),
        ("conn_table", "lookup_out") => (IpvsMethod::LookupOut, 7, 2),
        ("scheduler", "schedule") => (IpvsMethod::Schedule, 8, 3),
        ("conn_table", "prefetch") => (IpvsMethod::Prefetch, 5, 0),
        _ => return None,
    };
    let args = &call.args;
    let shape = args.len() == ins + outs
        && args[..ins].iter().all(|a| matches!(a, ir::ExternArg::In(_)))
        && args[ins..].iter().all(|a| matches!(a, ir::ExternArg::Out(_)));
    shape.then_some(m)
}

/// Whether a call site calls a hint method (module docs, "The hint pass"):
/// the prelude's `conn_table.prefetch` (its five `in` values are the only
/// shape the checker lets through).
pub fn is_hint(program: &Program, call: &ir::ExternCall) -> bool {
    ipvs_call(program, call) == Some(IpvsMethod::Prefetch)
}

/// Whether the parser calls any hint method, i.e. whether a hint pass is
/// worth compiling.
pub fn parser_has_hints(program: &Program) -> bool {
    program
        .parser
        .graph
        .node_weights()
        .any(|st| st.stmts.iter().any(|s| matches!(&s.kind, StmtKind::Extern { call, .. } if is_hint(program, call))))
}

/// Byte offsets of [`TableImage`] fields, for the code generator.
pub mod image_offset {
    use super::TableImage;
    pub const KIND: i32 = std::mem::offset_of!(TableImage, kind) as i32;
    pub const SHIFT: i32 = std::mem::offset_of!(TableImage, shift) as i32;
    pub const MASK: i32 = std::mem::offset_of!(TableImage, mask) as i32;
    pub const INDEX: i32 = std::mem::offset_of!(TableImage, index) as i32;
    pub const CHUNKS: i32 = std::mem::offset_of!(TableImage, chunks) as i32;
    pub const ROWS: i32 = std::mem::offset_of!(TableImage, rows) as i32;
    pub const COUNTS: i32 = std::mem::offset_of!(TableImage, counts) as i32;
    pub const LPM_SHIFTS: i32 = std::mem::offset_of!(TableImage, lpm) as i32;
    pub const LPM_MASKS: i32 = LPM_SHIFTS + 12;
    pub const VERSION: i32 = std::mem::offset_of!(TableImage, version) as i32;
}

/// The image kind compiled code checks for `table` ([`IMAGE_EXACT`] for
/// one exact key of at most 64 bits, [`IMAGE_LPM`] for one lpm key of at
/// most 32 bits, [`IMAGE_GROUPS`] for other keys that pack into 64 bits
/// without a `range` component), `None` when it always calls the host.
pub fn image_kind(table: &ir::Table) -> Option<u32> {
    let keys: Vec<(ir::MatchKind, u16)> = table.keys.iter().map(|k| (k.kind, k.width)).collect();
    image_kind_of(&keys)
}

/// [`image_kind`] of a key given as (match kind, width) per component (the
/// runtime's view of a table).
pub fn image_kind_of(keys: &[(ir::MatchKind, u16)]) -> Option<u32> {
    let packs = packs_in_a_word(keys.iter().map(|&(_, w)| w));
    match keys {
        [(ir::MatchKind::Exact, w)] if (1..=64).contains(w) => Some(IMAGE_EXACT),
        [(ir::MatchKind::Lpm, w)] if (1..=32).contains(w) => Some(IMAGE_LPM),
        _ if packs && keys.iter().all(|&(k, _)| k != ir::MatchKind::Range) => Some(IMAGE_GROUPS),
        _ => None,
    }
}

/// The parameter values a result row of `table` has room for: the most
/// parameters of any action the table can run (entries' or default).
pub fn image_params(program: &Program, table: &ir::Table) -> usize {
    table
        .actions
        .iter()
        .chain(std::iter::once(&table.default_action.action))
        .filter_map(|a| program.actions.get(a.index()))
        .map(|a| a.params.len())
        .max()
        .unwrap_or(0)
}

/// The per-packet state shared by compiled code, the interpreter and host functions.
#[repr(C)]
#[derive(Debug)]
pub struct PacketCtx {
    /// Slot storage, key buffers and the extern argument array ([`Layout`]).
    pub phv: *mut u8,
    /// The packet buffer.
    pub buf: *mut u8,
    /// Offset of the packet's first byte in `buf`.
    pub head: u32,
    /// Packet length in bytes.
    pub len: u32,
    /// Capacity of `buf` in bytes.
    pub cap: u32,
    /// Parser cursor: bytes consumed, counted from `head`. The deparser
    /// replaces `buf[head .. head + cursor]` with the emitted headers.
    pub cursor: u32,
    /// When the verdict is a reject: the index of the parser state that rejected.
    pub reject_state: u32,
    /// When a `verify` rejected: its error's index in `Program::errors`
    /// plus one; 0 for any other verdict (the runtime zeroes it per packet).
    pub reject_error: u32,
    /// The port the packet arrived on (the pipeline's `ingress_port`).
    pub port: u32,
    /// The packet's arrival time in ns (the pipeline's `timestamp`).
    pub timestamp: u64,
    /// The runtime's own state (tables, externs, trace sink); opaque to compiled code.
    pub user: *mut std::ffi::c_void,
}

/// Byte offsets of [`PacketCtx`] fields, for the code generator.
pub mod ctx_offset {
    pub const PHV: i32 = std::mem::offset_of!(super::PacketCtx, phv) as i32;
    pub const BUF: i32 = std::mem::offset_of!(super::PacketCtx, buf) as i32;
    pub const HEAD: i32 = std::mem::offset_of!(super::PacketCtx, head) as i32;
    pub const LEN: i32 = std::mem::offset_of!(super::PacketCtx, len) as i32;
    pub const CAP: i32 = std::mem::offset_of!(super::PacketCtx, cap) as i32;
    pub const CURSOR: i32 = std::mem::offset_of!(super::PacketCtx, cursor) as i32;
    pub const REJECT_STATE: i32 = std::mem::offset_of!(super::PacketCtx, reject_state) as i32;
    pub const REJECT_ERROR: i32 = std::mem::offset_of!(super::PacketCtx, reject_error) as i32;
    pub const PORT: i32 = std::mem::offset_of!(super::PacketCtx, port) as i32;
    pub const TIMESTAMP: i32 = std::mem::offset_of!(super::PacketCtx, timestamp) as i32;
}

/// What the pipeline decided.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Parsed, processed and deparsed; the runtime reads `drop`, `egress_spec`
    /// and `mcast_grp` from the standard metadata.
    Forward = 0,
    /// `extract`, `advance` or `lookahead` ran past the end of the packet.
    Truncated = 1,
    /// The parser reached `reject`, or no `select` case matched.
    Reject = 2,
    /// `extract` of a header stack's `next` when every element was already
    /// extracted (P4_16's `error.StackOutOfBounds`).
    StackOutOfBounds = 3,
}

impl Verdict {
    /// The verdict for a pipeline's return value.
    pub fn from_u32(v: u32) -> Option<Verdict> {
        match v {
            0 => Some(Verdict::Forward),
            1 => Some(Verdict::Truncated),
            2 => Some(Verdict::Reject),
            3 => Some(Verdict::StackOutOfBounds),
            _ => None,
        }
    }
}

/// Events a tracing pipeline reports through [`TRACE`] (`a`, `b` per event).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// Entered parser state `a` (node index).
    State = 0,
    /// Extracted header `a` (HeaderId).
    Extract = 1,
    /// Control `a` (index into `Program::controls`) starts.
    Control = 2,
    /// Ran action `a` (ActionId) directly (table applies are traced by the host).
    Action = 3,
    /// A branch on the expression `a` (ExprId) went to `b` (1 true, 0 false).
    Branch = 4,
    /// The deparser emitted header `a`.
    Emit = 5,
}

/// Where everything lives in the PHV block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Offset of each slot, indexed by `SlotId`.
    pub slot_offset: Vec<u32>,
    /// For each table, the offset of each key component (stored like a slot of the key's width).
    pub table_keys: Vec<Vec<u32>>,
    /// Offset of the extern argument array (16-byte aligned, `u128` entries).
    pub extern_args: u32,
    /// Number of `u128` entries in the argument array (1 + the most flattened arguments of any call).
    pub extern_args_len: u32,
    /// Total size of the PHV block in bytes (a multiple of 16).
    pub phv_size: u32,
    /// The bytes from the block's start that hold slots (every slot ends
    /// at or before it; table keys and the argument array come after),
    /// rounded up to a multiple of 16 (at most `phv_size`).
    pub slot_bytes: u32,
    /// The bytes from the block's start that the pipeline zeroes when a
    /// packet starts (a multiple of 16, at most `slot_bytes`): they hold
    /// every slot some path may read before writing it
    /// ([`crate::flow::read_before_write`]), validity bits included. The
    /// slots after them are always written before they are read, so the
    /// stale values they hold from an earlier packet are never seen.
    pub zero_bytes: u32,
    /// The most bytes the deparser can emit (all emitted headers valid);
    /// the runtime keeps at least this much headroom in front of every packet.
    pub max_emit_bytes: u32,
}

/// The container size in bytes (1, 2, 4, 8 or 16) of a value of `width` bits.
pub fn container_bytes(width: u16) -> u32 {
    match width {
        0..=8 => 1,
        9..=16 => 2,
        17..=32 => 4,
        33..=64 => 8,
        _ => 16,
    }
}

/// The number of argument entries a call site passes (excluding the return entry).
pub fn flattened_args(call: &ir::ExternCall) -> u32 {
    call.args
        .iter()
        .map(|a| match a {
            ir::ExternArg::List(items) => items.len() as u32,
            _ => 1,
        })
        .sum()
}

impl Layout {
    /// Lays out a program's PHV block: the headers' validity bits first, one
    /// byte each in header order (so the deparser can test a run of them,
    /// such as a header stack's, with one load), then the other slots that
    /// a packet may read before writing them, in id order (with the
    /// validity bits, the zeroed prefix, `zero_bytes`), then the remaining
    /// slots in id order, then table keys, then the extern argument array.
    pub fn new(program: &Program) -> Layout {
        let mut next = 0u32;
        // The next offset aligned to `bytes`, reserving `bytes` there.
        let place = |next: &mut u32, bytes: u32| {
            let at = next.div_ceil(bytes) * bytes;
            *next = at + bytes;
            at
        };
        let mut slot_offset = vec![u32::MAX; program.slots.len()];
        for h in &program.headers {
            if let Some(o) = slot_offset.get_mut(h.valid.index()) {
                *o = place(&mut next, container_bytes(program.slot(h.valid).ty.width()));
            }
        }
        let zeroed = crate::flow::read_before_write(program);
        for (first, (o, s)) in slot_offset.iter_mut().zip(&program.slots).enumerate() {
            if *o == u32::MAX && zeroed[first] {
                *o = place(&mut next, container_bytes(s.ty.width()));
            }
        }
        let zero_bytes = next.div_ceil(16) * 16;
        for (o, s) in slot_offset.iter_mut().zip(&program.slots) {
            if *o == u32::MAX {
                *o = place(&mut next, container_bytes(s.ty.width()));
            }
        }
        let slot_bytes = next.div_ceil(16) * 16;
        next = slot_bytes;
        let table_keys = program
            .tables
            .iter()
            .map(|t| t.keys.iter().map(|k| place(&mut next, container_bytes(k.width))).collect())
            .collect();
        let mut most_args = 0;
        visit_stmts(program, |s| {
            if let StmtKind::Extern { call, .. } = &s.kind {
                most_args = most_args.max(flattened_args(call));
            }
        });
        let extern_args_len = 1 + most_args;
        let extern_args = place(&mut next, 16);
        next = extern_args + 16 * extern_args_len;
        let phv_size = next.div_ceil(16) * 16;
        let max_emit_bytes = program.deparser.emits.iter().map(|h| program.header(*h).byte_len).sum();
        Layout {
            slot_offset,
            table_keys,
            extern_args,
            extern_args_len,
            phv_size,
            slot_bytes,
            zero_bytes,
            max_emit_bytes,
        }
    }

    /// The offset of a slot.
    pub fn slot(&self, id: SlotId) -> u32 {
        self.slot_offset[id.index()]
    }
}

/// Set in [`TABLE_LOOKUP`]'s `table` argument when the key packs several
/// components (the host then splits it by the key's widths).
pub const PACKED_KEY: u32 = 1 << 31;

/// The most key components a [`TABLE_LOOKUP`] key packs.
pub const MAX_LOOKUP_KEYS: usize = 8;

/// Whether compiled code applies `table` through [`TABLE_LOOKUP`] (1 to
/// [`MAX_LOOKUP_KEYS`] key components whose widths, each counted as at
/// least 1, add up to at most 64 bits) rather than [`TABLE_APPLY`].
pub fn uses_table_lookup(table: &ir::Table) -> bool {
    packs_in_a_word(table.keys.iter().map(|k| k.width))
}

/// Whether 1 to [`MAX_LOOKUP_KEYS`] key components of these widths, each
/// counted as at least 1 bit, add up to at most 64 bits.
fn packs_in_a_word(widths: impl ExactSizeIterator<Item = u16>) -> bool {
    let n = widths.len();
    let bits: u32 = widths.map(|w| u32::from(w.max(1))).sum();
    (1..=MAX_LOOKUP_KEYS).contains(&n) && bits <= 64
}

/// Reads a value of type `ty` stored at `offset` of a PHV block.
#[inline]
pub fn read_value(phv: &[u8], offset: u32, ty: Ty) -> u128 {
    let at = offset as usize;
    // One fixed-size copy per container size: a variable-length
    // `copy_from_slice` compiles to a `memmove` call, which dominated the
    // host functions' time in the router benchmark.
    match container_bytes(ty.width()) {
        1 => u128::from(phv[at]),
        2 => u128::from(u16::from_le_bytes(fixed(phv, at))),
        4 => u128::from(u32::from_le_bytes(fixed(phv, at))),
        8 => u128::from(u64::from_le_bytes(fixed(phv, at))),
        _ => u128::from_le_bytes(fixed(phv, at)),
    }
}

/// `N` bytes of `phv` at `at` (panics out of bounds, like slice indexing).
#[inline(always)]
fn fixed<const N: usize>(phv: &[u8], at: usize) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&phv[at..at + N]);
    b
}

/// Writes `value` (masked to `ty`) at `offset` of a PHV block.
#[inline]
pub fn write_value(phv: &mut [u8], offset: u32, ty: Ty, value: u128) {
    let at = offset as usize;
    let v = value & ty.mask();
    // Fixed-size copies, as in `read_value`.
    match container_bytes(ty.width()) {
        1 => phv[at] = v as u8,
        2 => phv[at..at + 2].copy_from_slice(&(v as u16).to_le_bytes()),
        4 => phv[at..at + 4].copy_from_slice(&(v as u32).to_le_bytes()),
        8 => phv[at..at + 8].copy_from_slice(&(v as u64).to_le_bytes()),
        _ => phv[at..at + 16].copy_from_slice(&v.to_le_bytes()),
    }
}

/// Calls `f` on every statement of the program: parser states, controls and actions.
pub fn visit_stmts(program: &Program, mut f: impl FnMut(&ir::Stmt)) {
    for st in program.parser.graph.node_weights() {
        st.stmts.iter().for_each(&mut f);
    }
    let bodies = program.controls.iter().map(|c| &c.body).chain(program.actions.iter().map(|a| &a.body));
    for body in bodies {
        for block in body.graph.node_weights() {
            block.stmts.iter().for_each(&mut f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_fit_widths() {
        assert_eq!(container_bytes(1), 1);
        assert_eq!(container_bytes(9), 2);
        assert_eq!(container_bytes(32), 4);
        assert_eq!(container_bytes(48), 8);
        assert_eq!(container_bytes(128), 16);
    }

    #[test]
    fn values_round_trip_masked() {
        let mut phv = vec![0u8; 32];
        write_value(&mut phv, 8, Ty::Bit(12), 0xFFFF);
        assert_eq!(read_value(&phv, 8, Ty::Bit(12)), 0xFFF);
        write_value(&mut phv, 16, Ty::Bit(128), u128::MAX);
        assert_eq!(read_value(&phv, 16, Ty::Bit(128)), u128::MAX);
    }
}
