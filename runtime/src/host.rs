//! Runtime services shared by both backends, and the only raw-pointer code
//! of the runtime.
//!
//! A packet is processed against a `Core` (the program, its PHV
//! `Layout` and the mutable `Runtime`: tables, multicast groups, extern
//! state, trace sink), a PHV block (`PhvBlock`) and a packet buffer
//! (`PacketBuf`). The services a pipeline needs are safe methods of
//! `Runtime` over a PHV byte slice:
//! - `Runtime::table_apply`: read the key the pipeline wrote to the table's
//!   key buffer, look it up, write the action's parameters, trace, return the
//!   action (| `HIT_BIT`);
//! - `Runtime::table_lookup`: the same for a key packed into a `u64`
//!   (compiled code passes it in a register), returning where the
//!   parameters are instead of writing them;
//! - `Runtime::extern_call`: run the extern bound to a call site over the
//!   argument array;
//! - `Trace::event`: format a `TraceEvent`.
//!
//! The interpreter calls them directly. Compiled code calls the
//! `extern "C"` shims `p4l_table_apply`, `p4l_table_lookup`,
//! `p4l_extern_call` and `p4l_trace`, which turn the `PacketCtx` pointers
//! into a `&mut Core` and a PHV slice once and then call the same methods
//! (`p4l_table_lookup` needs no PHV slice); `run_compiled`
//! builds that context and calls the pipeline. So both backends share one
//! implementation of everything but the pipeline itself, and every
//! `unsafe` block of the runtime is in this file.

use std::cell::Cell;
use std::ffi::c_void;

use p4lite_compiler::abi::{
    self, CounterImage, HostSymbols, IpvsResult, Layout, LookupResult, PacketCtx, PipelineFn, TableImage,
    TableSnapshot, TraceEvent, Verdict, HIT_BIT,
};
use p4lite_compiler::ir::{self, ExprId, ExprKind, Program, SlotKind, TableId, Ty, UnOp};

use crate::externs::Externs;
use crate::tables::{ImageStore, McastGroups, Tables};

/// Everything packet processing touches besides the packet and the PHV:
/// what `PacketCtx::user` points at while compiled code runs.
pub(crate) struct Core {
    /// The program being run.
    pub program: Program,
    /// Its PHV layout (the JIT was compiled against the same one).
    pub layout: Layout,
    /// Everything the pipeline changes besides packet and PHV.
    pub rt: Runtime,
}

/// The mutable state of the switch that pipelines reach through host services.
pub(crate) struct Runtime {
    /// Table entries, defaults, hit and miss counts.
    pub tables: Tables,
    /// Multicast groups (read by the switch after the pipeline).
    pub mcast: McastGroups,
    /// Extern bindings and state (counters, registers).
    pub externs: Externs,
    /// The trace sink.
    pub trace: Trace,
    /// Scratch for keys of more than one component; reused, so lookups never allocate.
    pub scratch: Vec<u128>,
    /// Scratch for the interpreter's select values.
    pub select: Vec<u128>,
    /// Where each table's key and each action's parameters live in the PHV.
    pub plan: ApplyPlan,
    /// What compiled code reads to look tables up itself.
    pub images: Images,
}

/// The table images compiled code reads (the abi module docs): one
/// [`TableImage`] per table in a block whose address compiled code holds
/// ([`Images::as_ptr`]), each rebuilt from its table whenever that table
/// may have changed ([`Tables::version`]; checked when the tables'
/// generation changed, by [`Images::refresh`] before every compiled run).
///
/// The block is never reallocated while the `Images` exists; its cells are
/// only written through shared references, so the pointer compiled code
/// reads through stays valid. Each image points into its table (index,
/// counters) and into its `ImageStore` here, which change only in `refresh`.
pub(crate) struct Images {
    block: Box<[Cell<TableImage>]>,
    /// One per extern instance: where compiled code counts `counter.count`
    /// (made once: counter arrays never move while the externs exist).
    counters: Box<[CounterImage]>,
    /// Per table: its result rows and group index.
    stores: Vec<ImageStore>,
    /// Per table: the parameter values a row has room for (`abi::image_params`).
    params: Vec<usize>,
    /// The tables' generation the images were built at.
    built: Option<u64>,
    /// Per table: its version its image was built at (0: never).
    versions: Vec<u64>,
}

impl Images {
    /// Images for `program`'s tables, all [`TableImage::NONE`] until
    /// refreshed, and for the counters of `externs` (bound to `program`),
    /// which must live as long as the images are used.
    pub fn new(program: &Program, externs: &Externs) -> Images {
        let n = program.tables.len();
        let mut counters = externs.counter_images(program);
        if counters.is_empty() {
            counters.push(CounterImage::NONE);
        }
        Images {
            block: (0..n.max(1)).map(|_| Cell::new(TableImage::NONE)).collect(),
            counters: counters.into_boxed_slice(),
            stores: (0..n).map(|_| ImageStore::default()).collect(),
            params: program.tables.iter().map(|t| abi::image_params(program, t)).collect(),
            built: None,
            versions: vec![0; n],
        }
    }

    /// Where the block is, for `abi::HostSymbols::table_images`.
    pub fn as_ptr(&self) -> *const TableImage {
        self.block.as_ptr().cast::<TableImage>()
    }

    /// Snapshots of the tables as their images show them now (refreshed
    /// from `tables` first), one per table, `None` where a table has none
    /// (`TableState::snapshot`): what `jit::compile_specialised` takes.
    pub fn snapshots(&mut self, tables: &Tables) -> Vec<Option<TableSnapshot>> {
        self.refresh(tables);
        tables.iter().zip(self.block.iter()).map(|((_, t), cell)| t.snapshot(&cell.get())).collect()
    }

    /// Where the counter images are, for `abi::HostSymbols::counter_images`.
    pub fn counters_ptr(&self) -> *const CounterImage {
        self.counters.as_ptr()
    }

    /// Rebuilds the images of the tables that changed since they were built.
    #[inline(always)]
    pub fn refresh(&mut self, tables: &Tables) {
        if self.built != Some(tables.generation()) {
            self.rebuild(tables);
        }
    }

    #[cold]
    #[inline(never)]
    fn rebuild(&mut self, tables: &Tables) {
        for (i, (id, t)) in tables.iter().enumerate() {
            let (Some(cell), Some(store), Some(&params), Some(built)) =
                (self.block.get(i), self.stores.get_mut(i), self.params.get(i), self.versions.get_mut(i))
            else {
                continue;
            };
            let version = tables.version(id);
            if *built != version {
                let mut image = t.image(params, store);
                if image.kind != abi::IMAGE_NONE {
                    image.version = version;
                }
                cell.set(image);
                *built = version;
            }
        }
        self.built = Some(tables.generation());
    }
}

/// Where a value lives in the PHV block: what [`abi::read_value`] and
/// [`abi::write_value`] work out from a slot's type, worked out once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    /// Byte offset in the block.
    off: u32,
    /// Container size in bytes: 1, 2, 4, 8 or 16.
    size: u8,
    /// Width in bits (1..=128), for masking written values.
    width: u8,
    /// `64 - width` for containers of up to 8 bytes: `u64::MAX >> shift` is the width's mask.
    /// (Fields stay 8 bytes, so copying one is one register move.)
    shift: u8,
}

impl Field {
    /// A field outside every block: reads as 0, writes go nowhere.
    const NOWHERE: Field = Field { off: u32::MAX, size: 1, width: 1, shift: 63 };

    /// The field of slot `slot` (or [`Field::NOWHERE`] if the layout does not place it in the block).
    pub fn slot(program: &Program, layout: &Layout, slot: ir::SlotId) -> Field {
        let off = layout.slot_offset.get(slot.index());
        let ty = program.slots.get(slot.index()).map(|s| s.ty);
        match (off, ty) {
            (Some(&off), Some(ty)) => Field::new(off, ty.width(), layout.phv_size).unwrap_or(Field::NOWHERE),
            _ => Field::NOWHERE,
        }
    }

    /// The field of a value of `width` bits at `off`, if it lies within a block of `phv_size` bytes.
    fn new(off: u32, width: u16, phv_size: u32) -> Option<Field> {
        let size = abi::container_bytes(width);
        let width = width.clamp(1, 128);
        let shift = (64 - width.min(64)) as u8;
        (off.checked_add(size)? <= phv_size).then_some(Field { off, size: size as u8, width: width as u8, shift })
    }

    /// Reads the value (containers hold values masked to their width).
    ///
    /// The layout puts the extern argument array (at least 16 bytes) after
    /// every slot and key buffer, so 16 bytes from any field's offset are
    /// in the block: one bounds check, then a load of exactly the
    /// container's size (a wider load of bytes the pipeline has just
    /// stored would miss store-to-load forwarding).
    #[inline(always)]
    pub fn load(self, phv: &[u8]) -> u128 {
        let at = self.off as usize;
        let Some(w) = phv.get(at..at + 16).and_then(|w| <&[u8; 16]>::try_from(w).ok()) else {
            return self.load_near_end(phv);
        };
        // Range tests, not a `match`: a match on the size compiles to a
        // jump table, whose indirect branch mispredicts when consecutive
        // table applies use different sizes; conditional branches predict.
        if self.size >= 8 {
            if self.size >= 16 {
                u128::from_le_bytes(*w)
            } else {
                u128::from(u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
            }
        } else if self.size >= 4 {
            u128::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        } else if self.size >= 2 {
            u128::from(u16::from_le_bytes([w[0], w[1]]))
        } else {
            u128::from(w[0])
        }
    }

    /// [`Field::load`] for a field less than 16 bytes from the block's end (not in layouts `Layout::new` makes).
    #[cold]
    fn load_near_end(self, phv: &[u8]) -> u128 {
        let at = self.off as usize;
        match phv.get(at..at + usize::from(self.size)) {
            Some(b) => b.iter().rev().fold(0u128, |acc, &x| acc << 8 | u128::from(x)),
            None => 0,
        }
    }

    /// Writes `v` masked to the width (exactly the container's bytes).
    #[inline(always)]
    pub fn store(self, phv: &mut [u8], v: u128) {
        let at = self.off as usize;
        let Some(w) = phv.get_mut(at..at + 16).and_then(|w| <&mut [u8; 16]>::try_from(w).ok()) else {
            return self.store_near_end(phv, v);
        };
        // Containers of up to 8 bytes hold widths of up to 64 bits: mask in 64 bits.
        let small = (v as u64) & (u64::MAX >> self.shift);
        // Range tests, as in `load`.
        if self.size >= 8 {
            if self.size >= 16 {
                *w = (v & (u128::MAX >> (128 - u32::from(self.width)))).to_le_bytes();
            } else {
                w[..8].copy_from_slice(&small.to_le_bytes());
            }
        } else if self.size >= 4 {
            w[..4].copy_from_slice(&(small as u32).to_le_bytes());
        } else if self.size >= 2 {
            w[..2].copy_from_slice(&(small as u16).to_le_bytes());
        } else {
            w[0] = small as u8;
        }
    }

    /// The container size in bytes.
    pub fn size(self) -> u8 {
        self.size
    }

    /// [`Field::load`] of a field whose container is known to be `N` (at most 8) bytes.
    #[inline(always)]
    pub fn load_sized<const N: usize>(self, phv: &[u8]) -> u64 {
        let at = self.off as usize;
        match phv.get(at..at + N) {
            Some(b) => {
                let mut w = [0u8; 8];
                w[..N].copy_from_slice(b);
                u64::from_le_bytes(w)
            }
            None => 0,
        }
    }

    /// The width in bits.
    pub fn width(self) -> u8 {
        self.width
    }

    /// [`Field::store`] of a field whose container is known to be `N` (at
    /// most 8) bytes, with a value the caller knows fits the field's width
    /// (no masking; the low `N` bytes are stored).
    #[inline(always)]
    pub fn store_fitting<const N: usize>(self, phv: &mut [u8], v: u64) {
        let at = self.off as usize;
        if let Some(b) = phv.get_mut(at..at + N) {
            b.copy_from_slice(&v.to_le_bytes()[..N]);
        }
    }

    /// [`Field::load_sized`] with the size taken from the field (tests).
    #[cfg(test)]
    fn load_sized_dyn(self, phv: &[u8]) -> u64 {
        match self.size {
            1 => self.load_sized::<1>(phv),
            2 => self.load_sized::<2>(phv),
            4 => self.load_sized::<4>(phv),
            _ => self.load_sized::<8>(phv),
        }
    }

    /// [`Field::store`] for a field less than 16 bytes from the block's end.
    #[cold]
    fn store_near_end(self, phv: &mut [u8], v: u128) {
        let at = self.off as usize;
        let v = v & (u128::MAX >> (128 - u32::from(self.width)));
        if let Some(b) = phv.get_mut(at..at + usize::from(self.size)) {
            b.copy_from_slice(&v.to_le_bytes()[..b.len()]);
        }
    }
}

/// Per table and per action, the PHV fields `table_apply` reads and
/// writes: computed once when the switch is built, so applying a table is
/// index arithmetic, not walks through the program's vectors. The usual
/// shapes (one key field; up to [`INLINE_FIELDS`] parameters) are stored
/// inline and handled without loops.
#[derive(Clone, Debug, Default)]
pub(crate) struct ApplyPlan {
    /// Per table: where its key is.
    tables: Vec<KeyPlan>,
    /// Per action: where its parameters go; `None` when the layout does
    /// not fit the program (then applying a table that picks it is a no-op).
    actions: Vec<Option<ParamPlan>>,
    /// Fields of the plans that do not fit inline.
    spilled: Vec<Field>,
    /// Per table: how [`Runtime::table_lookup`] splits a packed key.
    words: Vec<WordKey>,
    /// As many zero parameter values as the action with the most
    /// parameters has (at least one): what [`Runtime::table_lookup`] points
    /// compiled code at when a lookup returns too few values (it cannot).
    zeros: Box<[u128]>,
}

/// Where a table's key components are.
#[derive(Clone, Copy, Debug)]
enum KeyPlan {
    /// One component (most tables).
    One(Field),
    /// Several, in `ApplyPlan::spilled[start..end]`.
    Many { start: u32, end: u32 },
    /// The layout does not fit the program: applying the table is a no-op.
    Broken,
}

/// The component widths of a key packed into a `u64` for
/// [`abi::TABLE_LOOKUP`] (`abi::uses_table_lookup` tables; `n == 0` for
/// the others).
#[derive(Clone, Copy, Debug, Default)]
struct WordKey {
    n: u8,
    /// Widths (each at least 1), first component first.
    widths: [u8; abi::MAX_LOOKUP_KEYS],
}

impl WordKey {
    fn new(table: &ir::Table) -> WordKey {
        let mut k = WordKey::default();
        if abi::uses_table_lookup(table) {
            k.n = table.keys.len() as u8;
            for (w, key) in k.widths.iter_mut().zip(&table.keys) {
                *w = key.width.clamp(1, 64) as u8;
            }
        }
        k
    }

    /// The components of `key` into `out` (the last component is in the lowest bits).
    #[inline]
    fn unpack<'a>(&self, mut key: u64, out: &'a mut [u128; abi::MAX_LOOKUP_KEYS]) -> &'a [u128] {
        let n = usize::from(self.n).min(abi::MAX_LOOKUP_KEYS);
        for i in (0..n).rev() {
            let w = u32::from(self.widths[i]);
            out[i] = u128::from(key & (u64::MAX >> (64 - w)));
            key = key.checked_shr(w).unwrap_or(0);
        }
        &out[..n]
    }
}

/// Parameters stored inline.
const INLINE_FIELDS: usize = 2;

/// Where an action's parameters go: the first [`INLINE_FIELDS`] inline,
/// the rest in `ApplyPlan::spilled[start..end]`.
#[derive(Clone, Copy, Debug)]
struct ParamPlan {
    len: u32,
    inline: [Field; INLINE_FIELDS],
    start: u32,
    end: u32,
}

impl ApplyPlan {
    /// The plan for `program` laid out by `layout`.
    pub fn new(program: &Program, layout: &Layout) -> ApplyPlan {
        let mut plan = ApplyPlan::default();
        let phv_size = layout.phv_size;
        for (i, t) in program.tables.iter().enumerate() {
            let offsets = layout.table_keys.get(i).map_or(&[][..], Vec::as_slice);
            let fields: Option<Vec<Field>> = (offsets.len() == t.keys.len())
                .then(|| t.keys.iter().zip(offsets).map(|(k, &off)| Field::new(off, k.width, phv_size)).collect())
                .flatten();
            let key = match fields.as_deref() {
                None => KeyPlan::Broken,
                Some(&[f]) => KeyPlan::One(f),
                Some(fields) => {
                    let (start, end) = plan.spill(fields);
                    KeyPlan::Many { start, end }
                }
            };
            plan.tables.push(key);
            plan.words.push(WordKey::new(t));
        }
        for a in &program.actions {
            let fields: Option<Vec<Field>> = a
                .params
                .iter()
                .map(|&p| {
                    let off = *layout.slot_offset.get(p.index())?;
                    Field::new(off, program.slots.get(p.index())?.ty.width(), phv_size)
                })
                .collect();
            let params = fields.map(|fields| {
                let mut inline = [Field::NOWHERE; INLINE_FIELDS];
                let n = fields.len().min(INLINE_FIELDS);
                inline[..n].copy_from_slice(&fields[..n]);
                let (start, end) = plan.spill(&fields[n..]);
                ParamPlan { len: fields.len() as u32, inline, start, end }
            });
            plan.actions.push(params);
        }
        let most = program.actions.iter().map(|a| a.params.len()).max().unwrap_or(0);
        plan.zeros = vec![0; most.max(1)].into_boxed_slice();
        plan
    }

    /// What [`Runtime::table_lookup`] returns when it has no action to run.
    fn no_action(&self) -> LookupResult {
        LookupResult { action: u64::from(!HIT_BIT), params: self.zeros.as_ptr() }
    }

    fn spill(&mut self, fields: &[Field]) -> (u32, u32) {
        let start = self.spilled.len() as u32;
        self.spilled.extend_from_slice(fields);
        (start, self.spilled.len() as u32)
    }

    fn spilled(&self, start: u32, end: u32) -> &[Field] {
        self.spilled.get(start as usize..end as usize).unwrap_or(&[])
    }
}

impl ParamPlan {
    /// Writes `params` (the chosen action's values) to their slots.
    #[inline(always)]
    fn store(&self, plan: &ApplyPlan, phv: &mut [u8], params: &[u128]) {
        // Unrolled for the inline fields: no loop for the usual one or two.
        if self.len >= 1 {
            if let Some(&v) = params.first() {
                self.inline[0].store(phv, v);
            }
            if self.len >= 2 {
                if let Some(&v) = params.get(1) {
                    self.inline[1].store(phv, v);
                }
                if self.len > 2 {
                    let rest = params.get(INLINE_FIELDS..).unwrap_or(&[]);
                    for (f, &v) in plan.spilled(self.start, self.end).iter().zip(rest) {
                        f.store(phv, v);
                    }
                }
            }
        }
    }
}

impl Runtime {
    /// Applies table `table`: reads its key from the key buffer in `phv`
    /// (`Layout::table_keys`), looks it up, writes the chosen action's
    /// parameters into the action's parameter slots and returns the action
    /// id, with [`HIT_BIT`] set when an entry matched. Does not run the action.
    ///
    /// A table id the program does not have (a backend bug) returns
    /// `!HIT_BIT`, an action id no program has, so nothing runs.
    ///
    /// Where keys and parameters live comes from [`Runtime::plan`], built
    /// from the program and its layout with the switch; `program` is only
    /// read here for trace lines, the layout not at all (the parameter stays
    /// so both backends call the same signature).
    #[inline(always)]
    pub fn table_apply(&mut self, program: &Program, _layout: &Layout, phv: &mut [u8], table: u32) -> u32 {
        let Runtime { tables, trace, scratch, plan, .. } = self;
        let (Some(key), Some(state)) = (plan.tables.get(table as usize), tables.for_lookup(TableId(table))) else {
            return !HIT_BIT;
        };
        let one: [u128; 1];
        let keys: &[u128] = match *key {
            KeyPlan::One(f) => {
                one = [f.load(phv)];
                &one
            }
            KeyPlan::Many { start, end } => {
                scratch.clear();
                scratch.extend(plan.spilled(start, end).iter().map(|f| f.load(phv)));
                scratch
            }
            KeyPlan::Broken => return !HIT_BIT,
        };
        if trace.on {
            trace_lookup(trace, program, table, keys);
        }
        let found = state.lookup(keys);
        let Some(Some(params)) = plan.actions.get(found.action.index()) else {
            return !HIT_BIT;
        };
        params.store(plan, phv, found.params);
        let result = found.action.0 | if found.hit { HIT_BIT } else { 0 };
        if trace.on {
            trace_result(trace, program, table, found.entry.filter(|_| found.hit), found.action, found.params);
        }
        result
    }

    /// [`abi::TABLE_LOOKUP`]: looks up `key` in table `table` (its key
    /// components packed into 64 bits, `abi::uses_table_lookup`; with
    /// [`abi::PACKED_KEY`] set in `table` when there are several), counts
    /// and traces exactly like [`Runtime::table_apply`], and returns the
    /// action (| [`HIT_BIT`]) and where its parameter values are, for
    /// compiled code to read into the parameter slots itself. Writes no PHV.
    ///
    /// The pointer is into the table's entry (or default parameters) and
    /// is read before the next host call, while nothing can change the
    /// table; it always has at least as many values as the action has
    /// parameters (otherwise it points at zeros).
    #[inline(always)]
    pub fn table_lookup(&mut self, program: &Program, table: u32, key: u64) -> LookupResult {
        if table & abi::PACKED_KEY != 0 || self.trace.on {
            return self.table_lookup_general(program, table & !abi::PACKED_KEY, key);
        }
        // The untraced one-component lookup: nothing but the table, its
        // entry and the parameter plan is live, so the host call stays short.
        let Runtime { tables, plan, .. } = self;
        let Some(state) = tables.for_lookup(TableId(table)) else {
            return plan.no_action();
        };
        let found = state.lookup_word(key);
        let Some(Some(params)) = plan.actions.get(found.action.index()) else {
            return plan.no_action();
        };
        let values =
            if found.params.len() >= params.len as usize { found.params.as_ptr() } else { plan.zeros.as_ptr() };
        LookupResult { action: u64::from(found.action.0 | if found.hit { HIT_BIT } else { 0 }), params: values }
    }

    /// [`Runtime::table_lookup`] of a key of several components (unpacked
    /// into an array of their own) or with tracing on: out of line, so the
    /// usual untraced one-component lookups neither test the table's widths
    /// nor zero that array nor keep the trace state at hand.
    #[inline(never)]
    fn table_lookup_general(&mut self, program: &Program, table: u32, key: u64) -> LookupResult {
        let Runtime { tables, trace, plan, .. } = self;
        let (Some(state), Some(word)) = (tables.for_lookup(TableId(table)), plan.words.get(table as usize)) else {
            return plan.no_action();
        };
        if word.n == 0 {
            // Not a table compiled code looks up this way (a backend bug).
            return plan.no_action();
        }
        let mut parts = [0u128; abi::MAX_LOOKUP_KEYS];
        let keys = word.unpack(key, &mut parts);
        if trace.on {
            trace_lookup(trace, program, table, keys);
        }
        let found = state.lookup(keys);
        lookup_result(plan, trace, program, table, found)
    }

    /// Calls the extern bound to call site `site` over the argument array in
    /// `phv`, with the packet's `payload` (see [`Externs::call`]).
    pub fn extern_call(&mut self, program: &Program, layout: &Layout, phv: &mut [u8], site: u32, payload: &[u8]) {
        self.externs.call(program, layout, phv, site, payload);
        if self.trace.on {
            trace_extern(&mut self.trace, &self.externs, layout, phv, site);
        }
    }
}

/// What [`Runtime::table_lookup`] returns for `found` (and its trace lines).
#[inline(always)]
fn lookup_result(
    plan: &ApplyPlan,
    trace: &mut Trace,
    program: &Program,
    table: u32,
    found: crate::tables::Lookup<'_>,
) -> LookupResult {
    let Some(Some(params)) = plan.actions.get(found.action.index()) else {
        return plan.no_action();
    };
    let values = if found.params.len() >= params.len as usize { found.params.as_ptr() } else { plan.zeros.as_ptr() };
    let action = found.action.0 | if found.hit { HIT_BIT } else { 0 };
    if trace.on {
        trace_result(trace, program, table, found.entry.filter(|_| found.hit), found.action, found.params);
    }
    LookupResult { action: u64::from(action), params: values }
}

/// `Extern name(args) -> result`, or `Extern name(args)` for a void
/// callee (tracing only; out of line so the
/// untraced extern call stays a few instructions around `Externs::call`).
#[cold]
#[inline(never)]
fn trace_extern(trace: &mut Trace, externs: &Externs, layout: &Layout, phv: &[u8], site: u32) {
    let name = externs.site_name(site).unwrap_or("?");
    let entries = externs.site_entries(site).min(layout.extern_args_len.saturating_sub(1) as usize);
    let arg = |i: usize| {
        let at = layout.extern_args as usize + 16 * i;
        if at + 16 <= phv.len() {
            abi::read_value(phv, at as u32, Ty::Bit(128))
        } else {
            0
        }
    };
    let args: Vec<String> = (1..=entries).map(|i| format!("{:#x}", arg(i))).collect();
    let args = args.join(", ");
    if externs.site_returns(site) {
        trace.emit(format!("Extern {name}({args}) -> {:#x}", arg(0)));
    } else {
        trace.emit(format!("Extern {name}({args})"));
    }
}

/// `Applying table ...` and `Looking up key: ...` (tracing only).
#[cold]
#[inline(never)]
fn trace_lookup(trace: &mut Trace, program: &Program, table: u32, keys: &[u128]) {
    let Some(t) = program.tables.get(table as usize) else { return };
    trace.emit(format!("Applying table '{}'", t.name));
    let keys: Vec<String> = t.keys.iter().zip(keys).map(|(k, v)| format!("{}: {}", k.name, hex(*v, k.width))).collect();
    trace.emit(format!("Looking up key: {}", keys.join(", ")));
}

/// The hit or miss and the action entry of a table apply (tracing only).
#[cold]
#[inline(never)]
fn trace_result(
    trace: &mut Trace,
    program: &Program,
    table: u32,
    hit: Option<crate::tables::EntryHandle>,
    action: ir::ActionId,
    params: &[u128],
) {
    let (Some(t), Some(action)) = (program.tables.get(table as usize), program.actions.get(action.index())) else {
        return;
    };
    match hit {
        Some(h) => trace.emit(format!("Table '{}': hit with handle {h}", t.name)),
        None => trace.emit(format!("Table '{}': miss", t.name)),
    }
    let params: String = action
        .params
        .iter()
        .zip(params)
        .map(|(s, v)| {
            let slot = program.slot(*s);
            let short = slot.name.rsplit('.').next().unwrap_or(&slot.name);
            format!("{short}={}, ", value(*v, slot.ty.width()))
        })
        .collect();
    trace.emit(format!("Action entry is {} - {}", action.name, params.trim_end()));
    trace.emit(format!("Action {}", action.name));
}

/// The per-packet trace (BMv2-console-like lines). When `on` is false no
/// caller formats anything: every emitting site checks `on` first.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    /// Whether to record anything.
    pub on: bool,
    /// Lines since the last `Switch::take_trace`.
    pub lines: Vec<String>,
}

impl Trace {
    /// Appends a line.
    pub fn emit(&mut self, line: String) {
        self.lines.push(line);
    }

    /// Formats a [`TraceEvent`] (raw `event`, `a`, `b` as compiled code passes them).
    /// Unknown events and ids are shown, not dropped, so a backend bug is visible.
    pub fn event(&mut self, program: &Program, event: u32, a: u32, b: u32) {
        const STATE: u32 = TraceEvent::State as u32;
        const EXTRACT: u32 = TraceEvent::Extract as u32;
        const CONTROL: u32 = TraceEvent::Control as u32;
        const ACTION: u32 = TraceEvent::Action as u32;
        const BRANCH: u32 = TraceEvent::Branch as u32;
        const EMIT: u32 = TraceEvent::Emit as u32;
        let header = |h: u32| program.headers.get(h as usize).map_or("?", |h| h.name.as_str());
        let line = match event {
            STATE => {
                format!("Parser state '{}'", state_name(program, a))
            }
            EXTRACT => format!("Extracting header '{}'", header(a)),
            CONTROL => {
                format!("Control '{}': start", program.controls.get(a as usize).map_or("?", |c| c.name.as_str()))
            }
            ACTION => format!("Action {}", program.actions.get(a as usize).map_or("?", |x| x.name.as_str())),
            BRANCH => format!("Condition \"{}\" is {}", expr_text(program, ExprId(a)), b != 0),
            EMIT => format!("Deparsing header '{}'", header(a)),
            _ => format!("Unknown trace event {event} ({a}, {b})"),
        };
        self.emit(line);
    }
}

/// The name of parser state `index` (a node index), `?` when there is none.
pub(crate) fn state_name(program: &Program, index: u32) -> &str {
    // `raw_nodes` is indexed like `NodeIndex`, without naming petgraph here.
    program.parser.graph.raw_nodes().get(index as usize).map_or("?", |n| n.weight.name.as_str())
}

/// A key value in hex, zero-padded to its width (`0x0a000001`).
pub(crate) fn hex(v: u128, width: u16) -> String {
    format!("{:#0w$x}", v, w = 2 + usize::from(width).div_ceil(4))
}

/// A value as traces show parameters and constants: decimal up to 16 bits
/// (ports, small numbers), padded hex for wider values (addresses).
pub(crate) fn value(v: u128, width: u16) -> String {
    if width <= 16 {
        v.to_string()
    } else {
        hex(v, width)
    }
}

/// A readable rendering of an expression, for `Condition "..." is true` lines.
pub(crate) fn expr_text(program: &Program, e: ExprId) -> String {
    let mut s = String::new();
    write_expr(program, e, 0, &mut s);
    s
}

fn write_expr(program: &Program, e: ExprId, depth: u32, out: &mut String) {
    let Some(x) = program.exprs.get(e.index()) else {
        out.push('?');
        return;
    };
    if depth > 32 {
        out.push_str("...");
        return;
    }
    match x.kind {
        ExprKind::Const(v) => out.push_str(&value(v, x.ty.width())),
        ExprKind::Slot(s) => match program.slots.get(s.index()) {
            Some(slot) => match slot.kind {
                SlotKind::HeaderValid(h) => {
                    let name = program.headers.get(h.index()).map_or("?", |h| h.name.as_str());
                    out.push_str(&format!("{name}.isValid()"));
                }
                _ => out.push_str(&slot.name),
            },
            None => out.push('?'),
        },
        ExprKind::Unary(op, a) => {
            out.push_str(match op {
                UnOp::Neg => "-",
                UnOp::BitNot => "~",
                UnOp::Not => "!",
            });
            write_operand(program, a, depth, out);
        }
        ExprKind::Binary(op, a, b) => {
            write_operand(program, a, depth, out);
            out.push_str(&format!(" {} ", op.symbol()));
            write_operand(program, b, depth, out);
        }
        ExprKind::Slice { base, hi, lo } => {
            write_operand(program, base, depth, out);
            out.push_str(&format!("[{hi}:{lo}]"));
        }
        ExprKind::Cast(a) => {
            out.push_str(&match x.ty {
                Ty::Bool => "(bool)".to_string(),
                Ty::Bit(w) => format!("(bit<{w}>)"),
            });
            write_operand(program, a, depth, out);
        }
        ExprKind::Cond(c, a, b) => {
            write_operand(program, c, depth, out);
            out.push_str(" ? ");
            write_operand(program, a, depth, out);
            out.push_str(" : ");
            write_operand(program, b, depth, out);
        }
        ExprKind::Lookahead => out.push_str(&format!("lookahead<bit<{}>>()", x.ty.width())),
    }
}

/// An operand, parenthesised when it is itself an operator expression.
fn write_operand(program: &Program, e: ExprId, depth: u32, out: &mut String) {
    let compound =
        matches!(program.exprs.get(e.index()).map(|x| x.kind), Some(ExprKind::Binary(..) | ExprKind::Cond(..)));
    if compound {
        out.push('(');
    }
    write_expr(program, e, depth + 1, out);
    if compound {
        out.push(')');
    }
}

/// A zeroable PHV block, 16-byte aligned as [`abi`] requires (slots are
/// aligned to their container size relative to the block's start), made
/// safely by over-allocating and starting at the first aligned byte.
pub(crate) struct PhvBlock {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl PhvBlock {
    /// A zeroed block of `len` bytes.
    pub fn new(len: usize) -> PhvBlock {
        let raw = vec![0u8; len + 16];
        // `align_offset` on a byte pointer is always < 16 for a power-of-two
        // alignment; the clamp only guards the documented "may fail" case.
        let start = raw.as_ptr().align_offset(16).min(16);
        PhvBlock { raw, start, len }
    }

    /// The block's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    /// The block's bytes, writable (sliced without bounds checks: the
    /// switch slices its block once per packet).
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        debug_assert!(self.start + self.len <= self.raw.len());
        // SAFETY: `new` made `raw` `len + 16` bytes long with `start <= 16`,
        // and no field changes afterwards, so
        // `start..start + len` lies within `raw`; the slice borrows `self`
        // mutably, as `&mut raw[..]` would.
        unsafe { std::slice::from_raw_parts_mut(self.raw.as_mut_ptr().add(self.start), self.len) }
    }
}

/// Zeroes the first `n` bytes of a PHV block's bytes (all of them if `n`
/// is larger): with `Layout::zero_bytes`, every slot a packet may read
/// before writing it reads 0 (headers invalid, metadata zero).
#[inline]
pub(crate) fn zero_prefix(phv: &mut [u8], n: usize) {
    let n = n.min(phv.len());
    phv[..n].fill(0);
}

/// The packet being processed: `buf[head .. head + len]`, with at least
/// the deparser's worth of headroom in front (see [`PacketBuf::load`]).
/// `buf.len()` is the capacity the compiled code sees as `PacketCtx::cap`.
#[derive(Debug, Default)]
pub(crate) struct PacketBuf {
    /// Headroom, packet, and possibly slack after it.
    pub buf: Vec<u8>,
    /// Offset of the packet's first byte.
    pub head: usize,
    /// Packet length in bytes.
    pub len: usize,
    /// Parser cursor, in bytes from `head`.
    pub cursor: usize,
    /// The parser state (node index) that rejected or ran out of packet.
    pub reject_state: u32,
    /// When a `verify` rejected: its error's index in `Program::errors` + 1, else 0.
    pub reject_error: u32,
}

/// Where [`PacketBuf::load`] puts a packet's first byte: a multiple of this
/// many bytes from address 0.
const ALIGN: usize = 64;

impl PacketBuf {
    /// Copies `data` in behind at least `headroom` bytes, at the first
    /// offset whose address is 64-byte aligned, growing the buffer only
    /// when it is too small (so steady-state processing does not allocate).
    ///
    /// The alignment keeps a small packet inside one page and its copy's
    /// wide stores inside cache lines: with the packet 16 bytes before a
    /// page boundary (where an arbitrary heap address put it in about one
    /// run in eight), the router benchmark ran at 13 instead of 21 Mpps,
    /// the copy and the pipeline's loads split across the two pages.
    pub fn load(&mut self, data: &[u8], headroom: usize) {
        let need = headroom + ALIGN + data.len();
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        let at = self.buf.as_ptr() as usize + headroom;
        let head = headroom + (ALIGN - at % ALIGN) % ALIGN;
        self.buf[head..head + data.len()].copy_from_slice(data);
        self.head = head;
        self.len = data.len();
        self.cursor = 0;
        self.reject_state = 0;
        self.reject_error = 0;
    }

    /// The packet's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(self.head..self.head + self.len).unwrap_or(&[])
    }
}

/// The host functions and the table images, for `jit::compile`.
pub(crate) fn symbols(images: &Images) -> HostSymbols {
    HostSymbols {
        table_apply: p4l_table_apply,
        table_lookup: p4l_table_lookup,
        extern_call: p4l_extern_call,
        trace: p4l_trace,
        ipvs_call: Some(p4l_ipvs_call),
        table_images: images.as_ptr(),
        counter_images: images.counters_ptr(),
    }
}

/// Runs a compiled pipeline on the packet in `pkt`, arrived on `port` at
/// `ts_ns`, with PHV `phv` (a [`PhvBlock`]'s bytes, sliced once per packet
/// by the caller; the pipeline zeroes its slots and sets the arrival fields
/// itself, `abi` module docs), and copies the packet bounds and reject
/// state back. Returns `None` if the PHV is too short or not 16-byte
/// aligned, or if the pipeline returned an unknown verdict or packet bounds
/// outside the buffer (a code generation bug, reported as a drop rather
/// than trusted).
pub(crate) fn run_compiled(
    func: PipelineFn,
    core: &mut Core,
    phv: &mut [u8],
    pkt: &mut PacketBuf,
    port: u16,
    ts_ns: u64,
) -> Option<Verdict> {
    let cap = u32::try_from(pkt.buf.len()).ok()?;
    let aligned = phv.as_ptr().align_offset(16) == 0;
    if !aligned || phv.len() < core.layout.phv_size as usize || pkt.head + pkt.len > pkt.buf.len() {
        return None;
    }
    // Both at most `cap`, which fits in 32 bits.
    let (head, len) = (pkt.head as u32, pkt.len as u32);
    // Compiled code reads the images as the tables are now.
    core.rt.images.refresh(&core.rt.tables);
    let mut ctx = PacketCtx {
        phv: phv.as_mut_ptr(),
        buf: pkt.buf.as_mut_ptr(),
        head,
        len,
        cap,
        cursor: 0,
        reject_state: 0,
        reject_error: 0,
        port: u32::from(port),
        timestamp: ts_ns,
        user: (core as *mut Core).cast::<c_void>(),
    };
    // SAFETY: `func` comes from `jit::compile` of `core.program` with
    // `core.layout` and `symbols(&core.rt.images)`, and the compiled code
    // follows the abi contract: it accesses `phv[..layout.phv_size]` (checked
    // above to be in bounds) and `buf[..cap]` (`cap` is the buffer's length),
    // passes `&mut ctx` unchanged to the host functions, which reach `core`
    // through `user`, and reads the table and counter images: the images
    // were refreshed just above from the tables as they are now, so every
    // pointer in them is into live table memory (index arrays, result rows)
    // that nothing changes until the next refresh, and the counters it adds
    // to are `Cell`s the runtime only touches through shared references.
    // Code compiled from table snapshots (`Switch::specialise`) adds to
    // `counts[2 + h]` for the snapshot's handles only while the image's
    // version is the snapshot's, i.e. while the table is exactly as it was
    // (`TableState::snapshot`), so those counters exist.
    // `core`, `phv` and `pkt.buf` are exclusively borrowed for this call and
    // not touched through their references until it returns, so the pointers
    // derived from them are the only live accesses meanwhile.
    let raw = unsafe { func(&mut ctx) };
    let (head, len) = (ctx.head as usize, ctx.len as usize);
    if head + len > pkt.buf.len() {
        return None;
    }
    pkt.head = head;
    pkt.len = len;
    pkt.cursor = ctx.cursor as usize;
    pkt.reject_state = ctx.reject_state;
    pkt.reject_error = ctx.reject_error;
    Verdict::from_u32(raw)
}

/// Runs the hint pass `func` (the `abi` module docs: the compiled parser
/// with only its hint calls) over the frame `data` itself, on `phv` (a
/// block of its own, not the pipeline's: its contents do not matter), with
/// the externs' hints switched on for the call. Nothing it computes is
/// kept, its trace included (tracing is off for the call: the pass runs on
/// packets ahead of the one whose trace is being written); a frame the
/// runtime would refuse is skipped.
pub(crate) fn run_hint_pass(func: PipelineFn, core: &mut Core, phv: &mut [u8], data: &[u8]) {
    let aligned = phv.as_ptr().align_offset(16) == 0;
    let Ok(len) = u32::try_from(data.len()) else { return };
    if !aligned || phv.len() < core.layout.phv_size as usize {
        return;
    }
    let mut ctx = PacketCtx {
        phv: phv.as_mut_ptr(),
        // Never written through: the hint pass has no deparser and the
        // parser only reads the packet (abi module docs).
        buf: data.as_ptr().cast_mut(),
        head: 0,
        len,
        cap: len,
        cursor: 0,
        reject_state: 0,
        reject_error: 0,
        port: 0,
        timestamp: 0,
        user: (core as *mut Core).cast::<c_void>(),
    };
    core.rt.externs.hinting = true;
    let traced = std::mem::replace(&mut core.rt.trace.on, false);
    // SAFETY: `func` is the hint pass `jit::compile` made of `core.program`
    // with `core.layout`; by the abi contract it reads `phv[..phv_size]`
    // (checked above), reads only `buf[head..head + len]`, which is `data`,
    // after checking each read against `len` (and never writes it), and
    // reaches `core` only through the host functions, which get `ctx`
    // unchanged. `core` and `phv` are exclusively borrowed for the call and
    // not touched through their references until it returns; `data` is
    // borrowed for the call and nothing writes it.
    let _verdict = unsafe { func(&mut ctx) };
    core.rt.trace.on = traced;
    core.rt.externs.hinting = false;
}

/// Splits a context built by [`run_compiled`] into the core and the PHV.
///
/// # Safety
/// `ctx` must point at the live `PacketCtx` of a [`run_compiled`] call that
/// has not returned yet, and the caller must not hold another reference to
/// its `Core` or PHV (host functions are not reentrant: compiled code calls
/// them one at a time and they never call back into compiled code).
unsafe fn parts<'a>(ctx: *mut PacketCtx) -> (&'a mut Core, &'a mut [u8]) {
    // SAFETY: per this function's contract `ctx` is valid; `user` was set
    // from a `&mut Core` that stays exclusively borrowed by `run_compiled`
    // for the whole call, and `phv` points at a block of at least
    // `layout.phv_size` bytes borrowed the same way. The `Core` does not
    // contain the PHV block, so the two references do not overlap.
    unsafe {
        let ctx = &*ctx;
        let core = &mut *ctx.user.cast::<Core>();
        let phv = std::slice::from_raw_parts_mut(ctx.phv, core.layout.phv_size as usize);
        (core, phv)
    }
}

/// The packet's payload in a context built by [`run_compiled`] (or
/// [`run_hint_pass`]): its bytes from the parser's cursor to its end, as
/// the packet arrived (the deparser has not run while host functions are
/// called). Empty if the context's bounds are inconsistent.
///
/// # Safety
/// As for [`parts`]; `buf` points at `cap` readable bytes that nothing
/// writes while the returned slice is in use (host functions do not write
/// the packet).
unsafe fn payload_of<'a>(ctx: *mut PacketCtx) -> &'a [u8] {
    // SAFETY: per this function's contract `ctx` is valid and `buf` holds
    // `cap` bytes; the range is checked to lie within them.
    unsafe {
        let c = &*ctx;
        let (head, len, cap) = (c.head as usize, c.len as usize, c.cap as usize);
        let start = head + (c.cursor as usize).min(len);
        if head + len > cap {
            return &[];
        }
        std::slice::from_raw_parts(c.buf.add(start), head + len - start)
    }
}

/// The core of a context built by [`run_compiled`] (for host functions
/// that do not touch the PHV).
///
/// # Safety
/// As for [`parts`].
#[inline(always)]
unsafe fn core_of<'a>(ctx: *mut PacketCtx) -> &'a mut Core {
    // SAFETY: per this function's contract `ctx` is valid and `user` was set
    // from a `&mut Core` that `run_compiled` borrows exclusively for the call.
    unsafe { &mut *(*ctx).user.cast::<Core>() }
}

/// `p4l_table_apply` (see [`abi::TABLE_APPLY`] and [`Runtime::table_apply`]).
///
/// # Safety
/// Only for compiled pipelines run by [`run_compiled`], with their `ctx`.
pub(crate) unsafe extern "C" fn p4l_table_apply(ctx: *mut PacketCtx, table: u32) -> u32 {
    // SAFETY: compiled code passes the `ctx` that `run_compiled` gave it (see `parts`).
    let (core, phv) = unsafe { parts(ctx) };
    core.rt.table_apply(&core.program, &core.layout, phv, table)
}

/// `p4l_table_lookup` (see [`abi::TABLE_LOOKUP`] and [`Runtime::table_lookup`]).
///
/// # Safety
/// Only for compiled pipelines run by [`run_compiled`], with their `ctx`.
pub(crate) unsafe extern "C" fn p4l_table_lookup(ctx: *mut PacketCtx, table: u32, key: u64) -> LookupResult {
    // SAFETY: as in `p4l_table_apply`; the PHV is not touched.
    let core = unsafe { core_of(ctx) };
    core.rt.table_lookup(&core.program, table, key)
}

/// `p4l_extern_call` (see [`abi::EXTERN_CALL`] and [`Runtime::extern_call`]).
///
/// # Safety
/// Only for compiled pipelines run by [`run_compiled`], with their `ctx`.
pub(crate) unsafe extern "C" fn p4l_extern_call(ctx: *mut PacketCtx, site: u32) {
    // SAFETY: as in `p4l_table_apply`; for the payload, as in `payload_of`.
    let (core, phv) = unsafe { parts(ctx) };
    let payload = unsafe { payload_of(ctx) };
    core.rt.extern_call(&core.program, &core.layout, phv, site, payload);
}

/// `p4l_ipvs_call` (see [`abi::IPVS_CALL`] and [`Externs::ipvs_call`]).
///
/// # Safety
/// Only for compiled pipelines run by [`run_compiled`], with their `ctx`.
pub(crate) unsafe extern "C" fn p4l_ipvs_call(
    ctx: *mut PacketCtx,
    site: u32,
    addrs: u64,
    ports: u64,
    misc: u64,
) -> IpvsResult {
    // SAFETY: as in `p4l_table_lookup`; the PHV is not touched.
    let core = unsafe { core_of(ctx) };
    core.rt.externs.ipvs_call(site, addrs, ports, misc)
}

/// `p4l_trace` (see [`abi::TRACE`] and [`Trace::event`]).
///
/// # Safety
/// Only for compiled pipelines run by [`run_compiled`], with their `ctx`.
pub(crate) unsafe extern "C" fn p4l_trace(ctx: *mut PacketCtx, event: u32, a: u32, b: u32) {
    // SAFETY: as in `p4l_table_apply`.
    let (core, _phv) = unsafe { parts(ctx) };
    if core.rt.trace.on {
        core.rt.trace.event(&core.program, event, a, b);
    }
}

/// Used by `interp` and `switch`: reads a slot of the PHV.
pub(crate) fn read_slot(program: &Program, layout: &Layout, phv: &[u8], slot: ir::SlotId) -> u128 {
    abi::read_value(phv, layout.slot(slot), program.slot(slot).ty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::tests::{compile, example, syn};
    use crate::switch::{Backend, Outcome, Switch, SwitchOptions};
    use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
    use std::cell::Cell;

    thread_local! {
        /// Allocations made by this thread (tests run on their own threads).
        static ALLOCS: Cell<u64> = const { Cell::new(0) };
    }

    /// The system allocator, counting allocations per thread.
    struct Counting;

    // SAFETY: forwards every call unchanged to `System`; the counter is a
    // const-initialised thread-local without a destructor, so touching it
    // never allocates or re-enters the allocator.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
            let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
            let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    fn allocations() -> u64 {
        ALLOCS.with(|c| c.get())
    }

    #[test]
    fn steady_state_processing_does_not_allocate() {
        let commands = "table_add ipv4_lpm set_nhop 10.0.0.0/8 => 10.0.0.254 2\n\
                        table_add forward set_dmac 10.0.0.254 => 00:aa:bb:cc:dd:02\n\
                        table_add send_frame rewrite_mac 2 => 00:00:00:00:00:02";
        for backend in [Backend::Jit, Backend::Interp] {
            let program = compile(&example("ipv4_router"));
            let mut sw = match Switch::new(program, SwitchOptions { backend, trace: false }) {
                Ok(s) => s,
                Err(e) => panic!("{backend:?}: {e}"),
            };
            sw.apply_commands(commands, "c.txt").unwrap_or_else(|e| panic!("{e:?}"));
            let pkt = syn();
            // Warm up: the first packets size the buffers and stats maps.
            for _ in 0..3 {
                sw.process_in_place(1, &pkt, 0);
            }
            let before = allocations();
            for i in 0..1000 {
                let p = sw.process_in_place(1, &pkt, i);
                assert_eq!((p.outcome, p.ports), (Outcome::Forwarded, &[2u16][..]));
            }
            assert_eq!(allocations() - before, 0, "{backend:?}: allocations on the fast path");
        }
    }

    #[test]
    fn fields_touch_exactly_their_container() {
        let mut phv = vec![0xEEu8; 48];
        // (width, offset): every container size, and fields near the block's
        // end, where the 16-byte window does not fit.
        for (width, off) in [(1u16, 0u32), (9, 2), (32, 4), (48, 8), (100, 16), (16, 44), (32, 44), (8, 47)] {
            let f = Field::new(off, width, 48).unwrap_or_else(|| panic!("bit<{width}> at {off}"));
            let size = usize::from(f.size());
            let before = phv.clone();
            f.store(&mut phv, u128::MAX);
            let mask = u128::MAX >> (128 - u32::from(width));
            assert_eq!(f.load(&phv), mask, "bit<{width}> at {off}: masked to its width");
            let at = off as usize;
            assert_eq!(phv[..at], before[..at], "bit<{width}> at {off}: bytes before untouched");
            assert_eq!(phv[at + size..], before[at + size..], "bit<{width}> at {off}: bytes after untouched");
            f.store(&mut phv, 0x1234_5678_9abc_def0_1122_3344_5566_7788);
            assert_eq!(f.load(&phv), 0x1234_5678_9abc_def0_1122_3344_5566_7788 & mask);
            if size <= 8 {
                assert_eq!(u128::from(f.load_sized_dyn(&phv)), f.load(&phv));
            }
        }
        // Out of the block: no field; and a field nowhere reads 0 and writes nothing.
        assert_eq!(Field::new(46, 32, 48), None);
        let before = phv.clone();
        Field::NOWHERE.store(&mut phv, 1);
        assert_eq!((Field::NOWHERE.load(&phv), &phv), (0, &before));
    }

    /// A program with a two-key table and an action of three parameters
    /// (beyond the plans' inline fields), on both backends.
    #[test]
    fn apply_plans_cover_many_keys_and_parameters() {
        let src = r#"
            header h_t { bit<8> a; bit<16> b; bit<8> x; bit<16> y; bit<48> z; }
            struct hs { h_t h; }
            struct m_t { bit<1> unused; }
            parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
                state start { pkt.extract(hdr.h); transition accept; }
            }
            control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
                action set3(bit<8> x, bit<16> y, bit<48> z) { hdr.h.x = x; hdr.h.y = y; hdr.h.z = z; std.egress_spec = 3; }
                action set1(bit<8> x) { hdr.h.x = x; std.egress_spec = 1; }
                table t {
                    key = { hdr.h.a : exact; hdr.h.b : exact; }
                    actions = { set3; set1; }
                    default_action = set1(0xEE);
                    const entries = {
                        (1, 0x0203) : set3(0x11, 0x2233, 0x445566778899);
                        (1, 0x0204) : set1(0x22);
                    }
                }
                apply { t.apply(); }
            }
            control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.h); } }
            Pipeline(P(), C(), D()) main;
        "#;
        for backend in [Backend::Jit, Backend::Interp] {
            let mut sw = match Switch::new(compile(src), SwitchOptions { backend, trace: false }) {
                Ok(s) => s,
                Err(e) => panic!("{backend:?}: {e}"),
            };
            let pkt = [1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            let p = sw.process_in_place(0, &pkt, 0);
            assert_eq!(
                (p.ports, p.data),
                (&[3u16][..], &[1, 2, 3, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99][..]),
                "{backend:?}"
            );
            let p = sw.process_in_place(0, &[1, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0);
            assert_eq!((p.ports, p.data[3]), (&[1u16][..], 0x22), "{backend:?}");
            let p = sw.process_in_place(0, &[2, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0);
            assert_eq!((p.ports, p.data[3]), (&[1u16][..], 0xEE), "{backend:?}: miss runs the default");
        }
    }

    /// Two untraced switches of `program`: the JIT's and the interpreter's.
    fn jit_and_interp(program: &Program) -> (Switch, Switch) {
        let new = |backend| match Switch::new(program.clone(), SwitchOptions { backend, trace: false }) {
            Ok(s) => s,
            Err(e) => panic!("{backend:?}: {e}"),
        };
        (new(Backend::Jit), new(Backend::Interp))
    }

    /// Every table's and entry's hit and miss counts are the same in both switches.
    fn assert_same_counts(jit: &Switch, int: &Switch, after: &str) {
        for (id, t) in jit.tables().iter() {
            let u = int.tables().table(id);
            assert_eq!((t.hits(), t.misses()), (u.hits(), u.misses()), "{} after `{after}`", t.name());
            for (h, _) in t.entries() {
                assert_eq!(t.entry_hits(h), u.entry_hits(h), "{} entry {h} after `{after}`", t.name());
            }
        }
    }

    /// Compiled code looks exact and lpm tables up in their images; the
    /// images follow every control-plane change between packets (adds that
    /// grow the exact index past several resizes, deletes that shift its
    /// runs back, routes of every length added and removed, new defaults,
    /// clears), and the JIT gives the interpreter's outputs and counts —
    /// the table's and each entry's — after each change.
    #[test]
    fn table_images_follow_control_plane_changes() {
        use p4lite_compiler::rng::Rng;
        let program = compile(&example("ipv4_router"));
        let (mut jit, mut int) = jit_and_interp(&program);
        assert!(!jit.core().rt.images.as_ptr().is_null());
        let mut r = Rng::new(0x1A6E5);
        let frame = |dst: [u8; 4]| {
            let mut f = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x08, 0x00];
            f.extend([0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 17, 0, 0, 192, 168, 0, 1]);
            f.extend(dst);
            f.extend([0x30, 0x39, 0, 53, 0, 8, 0, 0]);
            f
        };
        let mut image_hits = 0u64;
        for round in 0..400u32 {
            let x = r.next();
            let nhop = |i: u64| format!("10.255.{}.{}", (i >> 8) % 4, i % 256);
            let cmd = match x % 9 {
                0..=2 => {
                    format!("table_add forward set_dmac {} => 00:aa:00:00:00:{:02x}", nhop(x >> 8), (x >> 20) % 256)
                }
                3 => format!("table_delete forward {}", (x >> 8) % 64),
                4 | 5 => {
                    let len = (x >> 8) % 33;
                    let net = (x >> 16) as u32 & !(u32::MAX.checked_shr(len as u32).unwrap_or(0));
                    let net = std::net::Ipv4Addr::from(net);
                    format!("table_add ipv4_lpm set_nhop {net}/{len} => {} {}", nhop(x >> 40), 1 + (x >> 50) % 4)
                }
                6 => format!("table_delete ipv4_lpm {}", (x >> 8) % 64),
                7 => format!(
                    "table_add send_frame rewrite_mac {} => 00:00:00:00:01:{:02x}",
                    1 + (x >> 8) % 4,
                    round % 256
                ),
                _ if round % 97 == 0 => "table_clear forward".to_string(),
                _ => "table_set_default ipv4_lpm set_nhop 10.255.0.1 3".to_string(),
            };
            let a = jit.apply_commands(&cmd, "test").map_err(|e| format!("{e:?}"));
            let b = int.apply_commands(&cmd, "test").map_err(|e| format!("{e:?}"));
            assert_eq!(a, b, "{cmd}");
            for _ in 0..8 {
                let y = r.next();
                let dst = (y as u32).to_be_bytes();
                let f = frame(dst);
                let (mut oa, mut ob) = (Vec::new(), Vec::new());
                let ra = jit.process(1, &f, 0, &mut oa);
                let rb = int.process(1, &f, 0, &mut ob);
                assert_eq!((ra, oa), (rb, ob), "round {round}, after `{cmd}`, to {dst:?}");
            }
            assert_same_counts(&jit, &int, &cmd);
            image_hits = jit.tables().iter().map(|(_, t)| t.hits()).sum();
        }
        // The images were used, and the exact index grew past its first size.
        let images = jit.core().rt.images.block.iter().map(|c| c.get().kind).collect::<Vec<_>>();
        assert_eq!(images, [abi::IMAGE_LPM, abi::IMAGE_EXACT, abi::IMAGE_EXACT]);
        assert!(image_hits > 1000, "{image_hits}");
        let forward = program.find_table("forward").map(|t| jit.tables().table(t).len());
        assert!(forward > Some(16), "{forward:?}");
    }

    /// Tables of several keys that pack into 64 bits are looked up in
    /// grouped images (`abi::IMAGE_GROUPS`): a ternary table ranked by
    /// priority (ties to the older entry), a two-key lpm table (longest
    /// prefix) and a two-key exact table, through random adds and deletes
    /// with overlapping masks; the JIT gives the interpreter's outputs and
    /// counts after each change.
    #[test]
    fn grouped_images_rank_like_the_tables() {
        use p4lite_compiler::rng::Rng;
        let src = r#"
            header h_t { bit<8> a; bit<16> b; bit<8> c; bit<8> d; bit<8> e; bit<8> f; }
            struct hs { h_t h; }
            struct m_t { bit<1> unused; }
            parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
                state start { pkt.extract(hdr.h); transition accept; }
            }
            control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
                action set(bit<8> v, bit<9> port) { hdr.h.d = v; std.egress_spec = port; }
                action mark(bit<8> v) { hdr.h.e = v; }
                action tag(bit<8> v) { hdr.h.f = v; }
                table t { key = { hdr.h.a : exact; hdr.h.b : ternary; } actions = { set; NoAction; } }
                table l { key = { hdr.h.a : exact; hdr.h.b : lpm; } actions = { mark; NoAction; } }
                table x { key = { hdr.h.a : exact; hdr.h.c : exact; } actions = { tag; NoAction; } }
                apply { t.apply(); l.apply(); x.apply(); }
            }
            control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.h); } }
            Pipeline(P(), C(), D()) main;
        "#;
        let program = compile(src);
        let (mut jit, mut int) = jit_and_interp(&program);
        let mut r = Rng::new(0x6A0B5);
        for round in 0..600u32 {
            let x = r.next();
            let (a, b, c) = ((x >> 8) % 3, (x >> 16) as u16 & 0x0f0f, (x >> 32) % 5);
            let cmd = match x % 8 {
                0..=2 => {
                    let m = [0xffff_u16, 0xff00, 0x0f0f, 0x00ff, 0][(x >> 40) as usize % 5];
                    let p = (x >> 48) % 6;
                    format!("table_add t set {a} {:#x}&&&{m:#x} => {} {} {p}", b & m, round % 256, 1 + (x >> 56) % 4)
                }
                3 => format!("table_delete t {}", (x >> 8) % 40),
                4 => format!("table_add l mark {a} {b:#x}/{} => {}", (x >> 40) % 17, round % 256),
                5 => format!("table_delete l {}", (x >> 8) % 20),
                6 => format!("table_add x tag {a} {c} => {}", round % 256),
                _ => format!("table_delete x {}", (x >> 8) % 8),
            };
            let ra = jit.apply_commands(&cmd, "test").map_err(|e| format!("{e:?}"));
            let rb = int.apply_commands(&cmd, "test").map_err(|e| format!("{e:?}"));
            assert_eq!(ra, rb, "{cmd}");
            for _ in 0..6 {
                let y = r.next();
                let pkt = [(y % 3) as u8, (y >> 8) as u8 & 0x0f, (y >> 16) as u8 & 0x0f, (y >> 24) as u8 % 5, 0, 0, 0];
                let (mut oa, mut ob) = (Vec::new(), Vec::new());
                let ra = jit.process(1, &pkt, 0, &mut oa);
                let rb = int.process(1, &pkt, 0, &mut ob);
                assert_eq!((ra, oa), (rb, ob), "round {round}, after `{cmd}`, packet {pkt:x?}");
            }
            assert_same_counts(&jit, &int, &cmd);
        }
        let kinds = jit.core().rt.images.block.iter().map(|c| c.get().kind).collect::<Vec<_>>();
        assert_eq!(kinds, [abi::IMAGE_GROUPS; 3]);
        let hits: Vec<u64> = jit.tables().iter().map(|(_, t)| t.hits()).collect();
        assert!(hits.iter().all(|&h| h > 100), "{hits:?}");
    }

    /// Compiled code counts `counter.count` in the counter's cells itself:
    /// per cell the same packets and bytes as the interpreter, and the same
    /// out-of-range errors.
    #[test]
    fn counters_count_inline_like_the_host() {
        use p4lite_compiler::rng::Rng;
        let src = r#"
            header h_t { bit<8> a; bit<32> w; }
            struct hs { h_t h; }
            struct m_t { bit<1> unused; }
            parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
                state start { pkt.extract(hdr.h); transition accept; }
            }
            control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
                counter(8) small;
                counter(300) wide;
                apply { small.count((bit<32>) hdr.h.a); wide.count(hdr.h.w); std.egress_spec = 1; }
            }
            control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.h); } }
            Pipeline(P(), C(), D()) main;
        "#;
        let program = compile(src);
        let (mut jit, mut int) = jit_and_interp(&program);
        assert!(jit.core().rt.images.counters.iter().all(|c| !c.packets.is_null()));
        let mut r = Rng::new(0xC0C0);
        for n in 0..2000usize {
            let x = r.next();
            let mut pkt = vec![(x % 11) as u8];
            let w = if x & 0x100 != 0 { (x >> 16) as u32 % 310 } else { (x >> 32) as u32 };
            pkt.extend(w.to_be_bytes());
            pkt.resize(5 + (x >> 40) as usize % 50, 0);
            let (mut oa, mut ob) = (Vec::new(), Vec::new());
            assert_eq!(jit.process(1, &pkt, 0, &mut oa), int.process(1, &pkt, 0, &mut ob), "packet {n}");
        }
        for (a, b) in jit.externs().counters().iter().zip(int.externs().counters()) {
            assert_eq!(a.errors(), b.errors(), "{}", a.name);
            assert!(a.errors() > 0 && a.totals().0 > 0, "{}: both paths taken", a.name);
            for i in 0..a.len() {
                assert_eq!(a.read(i), b.read(i), "{} cell {i}", a.name);
            }
        }
    }

    /// A packed lookup key splits back into its components, the first from
    /// the highest bits (`abi::TABLE_LOOKUP`), for the lb program's
    /// `ipvs_services` shape (8 + 32 + 16 bits) and a full 64-bit key.
    #[test]
    fn packed_keys_unpack_by_width() {
        let mut k = WordKey { n: 3, ..WordKey::default() };
        k.widths[..3].copy_from_slice(&[8, 32, 16]);
        let mut out = [0u128; abi::MAX_LOOKUP_KEYS];
        let key = (6u64 << 48) | (0xC633_640A << 16) | 80;
        assert_eq!(k.unpack(key, &mut out), &[6, 0xC633_640A, 80]);
        let mut one = WordKey { n: 1, ..WordKey::default() };
        one.widths[0] = 64;
        assert_eq!(one.unpack(u64::MAX, &mut out), &[u128::from(u64::MAX)]);
        let program = compile(&example("lb"));
        let services = program.find_table("ipvs_services").unwrap_or_else(|| panic!("ipvs_services"));
        let w = WordKey::new(program.table(services));
        assert_eq!((w.n, &w.widths[..3]), (3, &[8u8, 32, 16][..]));
    }

    #[test]
    fn phv_block_is_aligned_and_zeroable() {
        let mut b = PhvBlock::new(48);
        assert_eq!(b.bytes().as_ptr() as usize % 16, 0);
        assert_eq!(b.bytes().len(), 48);
        b.bytes_mut().fill(7);
        zero_prefix(b.bytes_mut(), 20);
        assert!(b.bytes()[..20].iter().all(|x| *x == 0) && b.bytes()[20..].iter().all(|x| *x == 7));
        zero_prefix(b.bytes_mut(), 100);
        assert!(b.bytes().iter().all(|x| *x == 0));
    }

    #[test]
    fn slots_come_before_key_buffers_and_extern_arguments() {
        for name in ["ipv4_router", "lb", "acl", "l2_switch"] {
            let program = compile(&example(name));
            let layout = Layout::new(&program);
            let end = layout.slot_bytes as usize;
            assert!(end > 0 && end.is_multiple_of(16) && end <= layout.phv_size as usize, "{name}");
            let slot_ends = program.slots.iter().zip(&layout.slot_offset);
            assert!(slot_ends.map(|(s, &off)| off + abi::container_bytes(s.ty.width())).all(|e| e as usize <= end));
            let keys = layout.table_keys.iter().flatten().copied();
            assert!(keys.chain([layout.extern_args]).all(|off| off as usize >= end), "{name}");
        }
    }

    #[test]
    fn packet_buffer_keeps_headroom_and_grows_only_when_needed() {
        let mut p = PacketBuf::default();
        let aligned = |p: &PacketBuf| (p.buf.as_ptr() as usize + p.head).is_multiple_of(ALIGN);
        p.load(&[1, 2, 3], 64);
        assert_eq!((p.len, p.bytes()), (3, &[1u8, 2, 3][..]));
        assert!((64..64 + ALIGN).contains(&p.head) && aligned(&p), "head {}", p.head);
        let cap = p.buf.len();
        p.load(&[9], 64);
        assert_eq!((p.buf.len(), p.bytes()), (cap, &[9u8][..]));
        p.load(&[5; 100], 48);
        assert_eq!(p.bytes().len(), 100);
        assert!(p.head >= 48 && aligned(&p), "head {}", p.head);
    }

    #[test]
    fn expressions_render_for_traces() {
        let program = compile(&example("ipv4_router"));
        let texts: Vec<String> = program
            .controls
            .iter()
            .flat_map(|c| c.body.graph.node_weights())
            .filter_map(|b| match b.term {
                ir::Terminator::Branch { cond, .. } => Some(expr_text(&program, cond)),
                _ => None,
            })
            .collect();
        assert!(texts.contains(&"!hdr.ipv4.isValid() || (hdr.ipv4.ttl <= 1)".to_string()), "{texts:?}");
        assert_eq!(hex(0x0a000001, 32), "0x0a000001");
        assert_eq!(hex(2, 9), "0x002");
        assert_eq!(value(2, 9), "2");
        assert_eq!(value(2, 48), "0x000000000002");
    }
}
