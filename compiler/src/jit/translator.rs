//! IR → Cranelift IR for one whole pipeline function.
//!
//! [`FunctionTranslator`] has one method per IR construct (cranelift-jit-demo
//! style). The generated function is
//! `fn(ctx: *mut PacketCtx) -> u32`:
//!
//! - **Parser**: one Cranelift block per reachable state; the cursor is an SSA
//!   variable (`i64`). Every `extract`/`advance`/`lookahead` compares
//!   `cursor + bytes` against the packet length *before* any load and leaves
//!   through the shared `truncated` block; `reject` and an unmatched `select`
//!   leave through the `reject` block. Both record the state in
//!   `ctx.reject_state`. Select arms are compare chains tried in order.
//! - **Controls**: every basic block of a body becomes a Cranelift block.
//!   Actions are **inlined** at each call site (direct calls and each action
//!   a table may run): the bodies are small, inlining lets Cranelift keep
//!   parameters and fields in registers across the action (store-to-load
//!   forwarding through the PHV alias region), and `exit` inside an action
//!   simply jumps to the enclosing control's end, which a separate function
//!   would have to report through a return flag.
//! - **Deparser**: sums the lengths of the valid emitted headers, moves the
//!   packet head back so the headers end where the parser stopped, writes each
//!   valid header big-endian and stores the new `head`/`len`. A header with
//!   at least [`MIN_IN_PLACE_BYTES`] bytes that only `extract` writes
//!   (`flow::written_only_by_extract`) and that goes back to the very bytes
//!   it was extracted from (the extract records their address) has only its
//!   other bytes written: the rest are still the packet's.
//!
//! Slots are read and written in the PHV, each slot in an alias region of
//! its own; packet bytes, `PacketCtx` fields and the key/argument buffers are
//! three more regions. Slots never overlap, so Cranelift's alias analysis
//! forwards every store to later loads of the same slot and drops redundant
//! loads across unrelated stores; host calls observe and clobber everything.
//!
//! Untraced pipelines avoid host calls where the runtime lets them (the
//! `abi` module docs): table lookups probe the runtime's table images,
//! `counter.count` adds to the counter's cells, and the IPVS externs pass
//! their arguments in registers (`abi::IPVS_CALL`). Traced pipelines call
//! the host for all of these, so the trace shows every lookup and call.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, AliasRegionData, Block, BlockArg, FuncRef, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::{FunctionBuilder, Switch, Variable};
use petgraph::graph::NodeIndex;
use std::collections::HashMap;

use super::wire::{self, container, iconst, mask, resize, FieldValue};
use super::JitError;
use crate::abi::{ctx_offset, Layout, TableImage, TableSnapshot, TraceEvent, Verdict, HIT_BIT, MAX_PARSER_STEPS};
use crate::ir::{self, BinOp, ExprId, ExprKind, KeyMatch, Next, SlotId, StmtKind, Terminator, Ty, UnOp};

/// The deepest chain of actions calling actions that gets inlined; the
/// checker rejects recursion, so this only stops a malformed IR from looping.
const MAX_INLINE_DEPTH: u32 = 32;

/// The most slot bytes the pipeline zeroes with a straight run of 16-byte
/// stores (lb.p4lite has 592); more are zeroed in a loop, so a program with
/// a huge PHV does not get a huge prologue.
pub(super) const UNROLLED_ZEROING: u32 = 1024;

/// Tables that can run at most this many actions dispatch on the returned
/// action with a compare chain rather than a jump table.
const SMALL_DISPATCH: usize = 4;
/// The fewest bytes of a header that only `extract` writes for the
/// deparser to test whether the header is back where it was extracted and
/// then skip them (the test costs about what writing a few bytes does).
const MIN_IN_PLACE_BYTES: u32 = 4;

/// The deparser tests a run of at least this many adjacent validity bytes
/// at once before testing each (`translate_deparser`).
const MIN_VALIDITY_RUN: usize = 3;

/// The deparser tests a group of rarely valid headers with adjacent
/// validity bytes at once when it has at least this many
/// ([`FunctionTranslator::validity_groups`]): one load and branch instead
/// of one per header when none is valid, the usual case; the extra test
/// falls on the rare packets that have one.
const MIN_RARE_GROUP: usize = 2;

/// Alias-region user ids: slot `s` is region `FIRST_SLOT_REGION + s` (ids
/// below it are the fixed regions of [`Regions`]).
pub(super) const FIRST_SLOT_REGION: u32 = 16;

/// Host functions imported into the pipeline function.
#[derive(Clone, Copy)]
pub(super) struct HostRefs {
    pub table_apply: FuncRef,
    /// `abi::TABLE_LOOKUP`, for tables whose key packs into 64 bits.
    pub table_lookup: FuncRef,
    pub extern_call: FuncRef,
    /// Present only when compiling with tracing on.
    pub trace: Option<FuncRef>,
    /// `abi::IPVS_CALL`, when the runtime has it and tracing is off.
    pub ipvs_call: Option<FuncRef>,
    /// The address of the runtime's `abi::TableImage` array, when compiled
    /// code looks tables up itself (never with tracing on: the host traces).
    pub table_images: Option<u64>,
    /// The address of the runtime's `abi::CounterImage` array, when
    /// compiled code counts `counter.count` itself (never with tracing on).
    pub counter_images: Option<u64>,
}

/// Memory flags of the disjoint memory regions the pipeline touches (each
/// slot is a region of its own, created on first use: [`FunctionTranslator::slot_mem`]).
#[derive(Clone, Copy)]
pub(super) struct Regions {
    /// `PacketCtx` fields.
    pub ctx: MemFlagsData,
    /// The table key buffers and the extern argument array of the PHV block.
    pub scratch: MemFlagsData,
    /// Packet bytes.
    pub packet: MemFlagsData,
    /// The parameter values `abi::TABLE_LOOKUP` points at (runtime memory).
    pub params: MemFlagsData,
    /// Table images, their indexes and counters (runtime memory).
    pub images: MemFlagsData,
}

/// Which function is being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// The pipeline: parser, controls, deparser; hint calls skipped (when
    /// untraced; a traced pipeline keeps them, so its trace shows them as
    /// the interpreter's does, and the runtime ignores them outside a
    /// hint pass).
    Pipeline,
    /// The hint pass (`abi` module docs): the parser only, with only its
    /// hint calls.
    Hints,
}

/// Where a body's `return` and `exit` jump.
#[derive(Clone, Copy)]
struct BodyExits {
    /// After the body: the next control, or the action's call site.
    ret: Block,
    /// After the enclosing control (`exit`).
    exit: Block,
}

/// The terminator of the body block whose last statement is being
/// translated, for a table apply from a snapshot to end each of its paths
/// with ([`FunctionTranslator::apply_snapshot`]).
#[derive(Clone, Copy)]
struct Tail<'t> {
    term: &'t Terminator,
    blocks: &'t HashMap<NodeIndex, Block>,
}

/// Translates one program into the body of the pipeline function.
pub(super) struct FunctionTranslator<'a, 'f> {
    b: FunctionBuilder<'f>,
    program: &'a ir::Program,
    layout: &'a Layout,
    host: HostRefs,
    mem: Regions,
    /// The `*mut PacketCtx` parameter.
    ctx: Value,
    /// `ctx.phv`, loaded once (host functions never move it).
    phv: Value,
    /// `buf + head`: the packet's first byte, as the parser sees it.
    pkt: Value,
    /// `ctx.len` as `i64`.
    len: Value,
    /// Bytes consumed by the parser (`i64`).
    cursor: Variable,
    /// States visited so far (`i32`), counted only when the parser has a
    /// cycle (an acyclic parser cannot reach [`MAX_PARSER_STEPS`]).
    steps: Option<Variable>,
    /// One block per parser state (created for the reachable ones).
    states: HashMap<NodeIndex, Block>,
    /// The state being translated (for `ctx.reject_state`); `None` outside the parser.
    state: Option<u32>,
    /// Parser exits; take the rejecting state's index as their parameter.
    truncated: Block,
    reject: Block,
    /// `extract` of a full header stack's `next` (created on first use).
    stack_oob: Option<Block>,
    /// The parser's `accept`.
    accept: Block,
    /// Actions being inlined, innermost last (recursion guard).
    inlining: Vec<ir::ActionId>,
    /// Memory flags per slot, each with its own alias region, so Cranelift's
    /// alias analysis forwards a slot's stores to its loads across stores to
    /// other slots (slots never overlap); host calls still clobber them all.
    slot_mem: Vec<Option<MemFlagsData>>,
    mode: Mode,
    /// Hint pass only: the slots the parser reads (selects, statements,
    /// hint arguments), by slot index; `extract` stores no other field
    /// (nothing after the parser runs in the hint pass).
    parser_reads: Option<Vec<bool>>,
    /// Per table (by id), the runtime's snapshot of its entries, if any
    /// (`abi` module docs, "Table snapshots"; [`Self::apply_snapshot`]).
    snapshots: &'a [Option<TableSnapshot>],
    /// Hint pass only: each slot as an SSA variable (declared at first
    /// use) instead of PHV memory. Nothing but the parser itself reads a
    /// slot there, and no host call of the hint pass writes one, so its
    /// slots need no memory: they stay in registers, and a slot read
    /// before any write reads 0, as the pipeline's zeroed PHV gives.
    hint_vars: Option<HashMap<SlotId, Variable>>,
    /// Pipeline only, per header (by index): the byte ranges the deparser
    /// writes when the header goes back to the bytes it was extracted
    /// from, when it has at least [`MIN_IN_PLACE_BYTES`] bytes that only
    /// `extract` writes ([`in_place_ranges`]).
    in_place: Vec<Option<Vec<std::ops::Range<u32>>>>,
    /// Per header with [`Self::in_place`] ranges: the address its last
    /// `extract` read it from (0, no address, where it was not extracted).
    extract_at: Vec<Option<Variable>>,
}

impl<'a, 'f> FunctionTranslator<'a, 'f> {
    /// Sets up the entry block: loads the context fields and jumps nowhere yet.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        mut b: FunctionBuilder<'f>,
        program: &'a ir::Program,
        layout: &'a Layout,
        host: HostRefs,
        mem: Regions,
        ptr: Type,
        mode: Mode,
        snapshots: &'a [Option<TableSnapshot>],
    ) -> Self {
        debug_assert_eq!(ptr, types::I64, "table images and host pointers are 64-bit");
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let ctx = b.block_params(entry)[0];
        let phv = b.ins().load(ptr, mem.ctx, ctx, ctx_offset::PHV);
        let buf = b.ins().load(ptr, mem.ctx, ctx, ctx_offset::BUF);
        let head = b.ins().load(types::I32, mem.ctx, ctx, ctx_offset::HEAD);
        let head = b.ins().uextend(types::I64, head);
        let len = b.ins().load(types::I32, mem.ctx, ctx, ctx_offset::LEN);
        let len = b.ins().uextend(types::I64, len);
        let pkt = b.ins().iadd(buf, head);
        let cursor = b.declare_var(types::I64);
        let zero = b.ins().iconst(types::I64, 0);
        b.def_var(cursor, zero);
        let truncated = b.create_block();
        b.append_block_param(truncated, types::I32);
        b.set_cold_block(truncated);
        let reject = b.create_block();
        b.append_block_param(reject, types::I32);
        b.set_cold_block(reject);
        let accept = b.create_block();
        FunctionTranslator {
            b,
            program,
            layout,
            host,
            mem,
            ctx,
            phv,
            pkt,
            len,
            cursor,
            steps: None,
            states: HashMap::new(),
            state: None,
            truncated,
            reject,
            stack_oob: None,
            accept,
            inlining: Vec::new(),
            slot_mem: vec![None; program.slots.len()],
            mode,
            parser_reads: (mode == Mode::Hints).then(|| parser_reads(program)),
            snapshots,
            hint_vars: (mode == Mode::Hints).then(HashMap::new),
            in_place: if mode == Mode::Pipeline { in_place_ranges(program) } else { Vec::new() },
            extract_at: vec![None; program.headers.len()],
        }
    }

    /// Translates parser, controls and deparser, then finalizes the function.
    pub(super) fn translate_program(
        mut self,
        config: cranelift_codegen::isa::TargetFrontendConfig,
    ) -> Result<(), JitError> {
        self.start_packet();
        // Leaves the builder in the `accept` block.
        self.translate_parser()?;
        for (index, control) in self.program.controls.iter().enumerate() {
            let next = self.b.create_block();
            self.trace_const(TraceEvent::Control, index as u32, 0);
            self.translate_body(&control.body, BodyExits { ret: next, exit: next })?;
            self.b.switch_to_block(next);
        }
        self.translate_deparser();
        let forward = self.b.ins().iconst(types::I32, Verdict::Forward as i64);
        self.b.ins().return_(&[forward]);
        self.b.seal_all_blocks();
        self.b.finalize(config);
        Ok(())
    }

    /// The packet's start (`abi` module docs): zeroes the slots a packet
    /// may read before writing them (`Layout::zero_bytes`) with 16-byte
    /// stores (a straight run of them up to [`UNROLLED_ZEROING`] bytes, a
    /// loop beyond), then sets `ingress_port`, `packet_length` and
    /// `timestamp` from the context. The zeroing stores carry no slot's
    /// alias region: nothing is stored before them for alias analysis to
    /// forward across them, and every slot access after them is a real load
    /// or store.
    fn start_packet(&mut self) {
        let zero = self.b.ins().iconst(types::I64, 0);
        let zeros = self.b.ins().splat(types::I64X2, zero);
        let flags = MemFlagsData::new().with_notrap().with_aligned();
        let bytes = self.layout.zero_bytes;
        if bytes <= UNROLLED_ZEROING {
            for off in (0..bytes).step_by(16) {
                self.b.ins().store(flags, zeros, self.phv, off as i32);
            }
        } else {
            // `zero_bytes` is a nonzero multiple of 16 here.
            let (body, done) = (self.b.create_block(), self.b.create_block());
            self.b.append_block_param(body, types::I64);
            self.b.ins().jump(body, &[BlockArg::Value(self.phv)]);
            self.b.switch_to_block(body);
            let at = self.b.block_params(body)[0];
            self.b.ins().store(flags, zeros, at, 0);
            let next = self.b.ins().iadd_imm_s(at, 16);
            let end = self.b.ins().iadd_imm_s(self.phv, i64::from(bytes));
            let more = self.b.ins().icmp(IntCC::UnsignedLessThan, next, end);
            self.b.ins().brif(more, body, &[BlockArg::Value(next)], done, &[]);
            self.b.switch_to_block(done);
        }
        let port = self.b.ins().load(types::I32, self.mem.ctx, self.ctx, ctx_offset::PORT);
        let timestamp = self.b.ins().load(types::I64, self.mem.ctx, self.ctx, ctx_offset::TIMESTAMP);
        let std = self.program.std;
        for (slot, v) in [(std.ingress_port, port), (std.packet_length, self.len), (std.timestamp, timestamp)] {
            let ty = self.slot_ty(slot);
            let from = Ty::Bit(self.b.func.dfg.value_type(v).bits() as u16);
            let v = self.coerce(v, from, ty);
            self.store_slot(slot, v);
        }
    }

    /// The hint pass: the parser (running only its hint calls), then the
    /// parser's verdict; no controls, no deparser.
    pub(super) fn translate_hint_pass(
        mut self,
        config: cranelift_codegen::isa::TargetFrontendConfig,
    ) -> Result<(), JitError> {
        self.translate_parser()?;
        let forward = self.b.ins().iconst(types::I32, Verdict::Forward as i64);
        self.b.ins().return_(&[forward]);
        self.b.seal_all_blocks();
        self.b.finalize(config);
        Ok(())
    }

    // ---------------------------------------------------------------- parser

    /// The parser: reachable states as blocks, then the shared exits.
    fn translate_parser(&mut self) -> Result<(), JitError> {
        let parser = &self.program.parser;
        // Reachable states in discovery order, so block order follows the packet.
        let mut order = vec![parser.start];
        let mut i = 0;
        while i < order.len() {
            let st = parser.graph.node_weight(order[i]).ok_or_else(|| bad("parser state out of range"))?;
            for arm in &st.arms {
                if let Next::State(n) = arm.next {
                    if !order.contains(&n) {
                        order.push(n);
                    }
                }
            }
            i += 1;
        }
        for &n in &order {
            let block = self.b.create_block();
            self.states.insert(n, block);
        }
        if has_cycle(parser, &order) {
            let steps = self.b.declare_var(types::I32);
            let one = self.b.ins().iconst(types::I32, 1);
            self.b.def_var(steps, one);
            self.steps = Some(steps);
        }
        let first = self.states[&parser.start];
        self.b.ins().jump(first, &[]);
        for &n in &order {
            self.translate_state(n)?;
        }
        self.state = None;
        self.translate_parser_exit(self.truncated, Verdict::Truncated);
        self.translate_parser_exit(self.reject, Verdict::Reject);
        if let Some(oob) = self.stack_oob {
            self.translate_parser_exit(oob, Verdict::StackOutOfBounds);
        }
        // `accept`: publish the cursor for the deparser.
        self.b.switch_to_block(self.accept);
        let cur = self.b.use_var(self.cursor);
        let cur = self.b.ins().ireduce(types::I32, cur);
        self.b.ins().store(self.mem.ctx, cur, self.ctx, ctx_offset::CURSOR);
        Ok(())
    }

    /// `truncated` / `reject`: record the state and the cursor, return the verdict.
    fn translate_parser_exit(&mut self, block: Block, verdict: Verdict) {
        self.b.switch_to_block(block);
        let state = self.b.block_params(block)[0];
        self.b.ins().store(self.mem.ctx, state, self.ctx, ctx_offset::REJECT_STATE);
        let cur = self.b.use_var(self.cursor);
        let cur = self.b.ins().ireduce(types::I32, cur);
        self.b.ins().store(self.mem.ctx, cur, self.ctx, ctx_offset::CURSOR);
        let v = self.b.ins().iconst(types::I32, verdict as i64);
        self.b.ins().return_(&[v]);
    }

    /// One parser state: trace, statements, then the select as a compare chain.
    fn translate_state(&mut self, node: NodeIndex) -> Result<(), JitError> {
        let st = &self.program.parser.graph[node];
        self.b.switch_to_block(self.states[&node]);
        self.state = Some(node.index() as u32);
        self.trace_const(TraceEvent::State, node.index() as u32, 0);
        for stmt in &st.stmts {
            self.translate_stmt(stmt, None, None)?;
        }
        let keys = st
            .select
            .iter()
            .map(|&e| Ok((self.eval(e)?, self.program.expr(e).ty)))
            .collect::<Result<Vec<_>, JitError>>()?;
        // Transitions to states that must count the visit, filled after the chain.
        let mut counted: Vec<(Block, Block)> = Vec::new();
        let mut matched_all = false;
        for arm in &st.arms {
            let cond = self.translate_select_arm(&keys, &arm.keys)?;
            let (mut target, args) = self.next_target(arm.next)?;
            if let (Next::State(_), Some(_)) = (arm.next, self.steps) {
                let via = self.b.create_block();
                counted.push((via, target));
                target = via;
            }
            match cond {
                None => {
                    // An arm matching anything: the remaining arms are dead.
                    self.b.ins().jump(target, &args);
                    matched_all = true;
                    break;
                }
                Some(c) => {
                    let next = self.b.create_block();
                    self.b.ins().brif(c, target, &args, next, &[]);
                    self.b.switch_to_block(next);
                }
            }
        }
        if !matched_all {
            // No arm matched.
            let (target, args) = self.next_target(Next::Reject)?;
            self.b.ins().jump(target, &args);
        }
        for (via, target) in counted {
            self.translate_counted_transition(via, target);
        }
        Ok(())
    }

    /// A transition in a cyclic parser: the visit that would exceed
    /// [`MAX_PARSER_STEPS`] rejects in the current state instead.
    fn translate_counted_transition(&mut self, via: Block, target: Block) {
        let Some(steps) = self.steps else { return };
        self.b.switch_to_block(via);
        let n = self.b.use_var(steps);
        let limit = self.b.ins().iconst(types::I32, i64::from(MAX_PARSER_STEPS));
        let over = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, n, limit);
        let go = self.b.create_block();
        let state = self.state_value();
        self.b.ins().brif(over, self.reject, &[BlockArg::Value(state)], go, &[]);
        self.b.switch_to_block(go);
        let next = self.b.ins().iadd_imm_u(n, 1);
        self.b.def_var(steps, next);
        self.b.ins().jump(target, &[]);
    }

    /// The block (and its arguments) a transition goes to.
    fn next_target(&mut self, next: Next) -> Result<(Block, Vec<BlockArg>), JitError> {
        Ok(match next {
            Next::Accept => (self.accept, Vec::new()),
            Next::Reject => (self.reject, vec![BlockArg::Value(self.state_value())]),
            Next::State(n) => {
                let block = *self.states.get(&n).ok_or_else(|| bad("transition to an unknown parser state"))?;
                (block, Vec::new())
            }
        })
    }

    /// Whether all keys of a select arm match (`None`: the arm matches anything).
    fn translate_select_arm(&mut self, keys: &[(Value, Ty)], arm: &[KeyMatch]) -> Result<Option<Value>, JitError> {
        if arm.len() != keys.len() && !arm.is_empty() {
            return Err(bad("select arm has a different number of keys than the select"));
        }
        let mut all: Option<Value> = None;
        for (&(v, ty), m) in keys.iter().zip(arm) {
            if let Some(c) = self.translate_key_match(v, ty, m) {
                all = Some(match all {
                    Some(a) => self.b.ins().band(a, c),
                    None => c,
                });
            }
        }
        Ok(all)
    }

    /// One key against one match (`None`: always matches).
    fn translate_key_match(&mut self, v: Value, ty: Ty, m: &KeyMatch) -> Option<Value> {
        let t = container(ty.width());
        let m_ = ty.mask();
        Some(match *m {
            KeyMatch::Any => return None,
            // Constants with bits above the key's width can never match a
            // (masked) key; the checker does not produce them, but the
            // interpreter compares in u128 and so must we.
            KeyMatch::Exact(c) if c & !m_ != 0 => self.b.ins().iconst(types::I8, 0),
            KeyMatch::Exact(c) => {
                let c = iconst(&mut self.b, t, c);
                self.b.ins().icmp(IntCC::Equal, v, c)
            }
            KeyMatch::Mask { value, mask: mk } if value & mk & !m_ != 0 => self.b.ins().iconst(types::I8, 0),
            KeyMatch::Mask { value, mask: mk } => {
                let mk = mk & m_;
                let mv = iconst(&mut self.b, t, mk);
                let masked = self.b.ins().band(v, mv);
                let c = iconst(&mut self.b, t, value & mk);
                self.b.ins().icmp(IntCC::Equal, masked, c)
            }
            KeyMatch::Range { lo, .. } if lo & !m_ != 0 => self.b.ins().iconst(types::I8, 0),
            KeyMatch::Range { lo, hi } => {
                let lo = iconst(&mut self.b, t, lo);
                let hi = iconst(&mut self.b, t, hi.min(m_));
                let ge = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, v, lo);
                let le = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, v, hi);
                self.b.ins().band(ge, le)
            }
            KeyMatch::Prefix { value, len } => {
                let w = ty.width();
                if len == 0 {
                    return None;
                }
                let len = len.min(w);
                let mk = m_ & !(m_ >> len);
                let mv = iconst(&mut self.b, t, mk);
                let masked = self.b.ins().band(v, mv);
                let c = iconst(&mut self.b, t, value & mk);
                self.b.ins().icmp(IntCC::Equal, masked, c)
            }
        })
    }

    /// The current state index as an `i32` (for the exits' parameter).
    fn state_value(&mut self) -> Value {
        let s = self.state.unwrap_or(u32::MAX);
        self.b.ins().iconst(types::I32, i64::from(s))
    }

    /// Continues only if `bytes` (an `i64`) more bytes are available after the
    /// cursor; otherwise leaves through `truncated`. Returns `cursor + bytes`.
    fn bounds_check(&mut self, bytes: Value) -> Result<Value, JitError> {
        if self.state.is_none() {
            return Err(bad("packet access outside the parser"));
        }
        let cur = self.b.use_var(self.cursor);
        let end = self.b.ins().iadd(cur, bytes);
        let ok = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, end, self.len);
        let cont = self.b.create_block();
        let state = self.state_value();
        self.b.ins().brif(ok, cont, &[], self.truncated, &[BlockArg::Value(state)]);
        self.b.switch_to_block(cont);
        Ok(end)
    }

    /// `pkt.extract(h)`: bounds check, split the bytes into the field slots, set valid, advance.
    fn translate_extract(&mut self, header: ir::HeaderId) -> Result<(), JitError> {
        let h = self.program.headers.get(header.index()).ok_or_else(|| bad("extract of an unknown header"))?;
        let n = self.b.ins().iconst(types::I64, i64::from(h.byte_len));
        let cur = self.b.use_var(self.cursor);
        let end = self.bounds_check(n)?;
        let base = self.b.ins().iadd(self.pkt, cur);
        for (slot, bit_off, width) in wire_fields(self.program, h) {
            let read = self.parser_reads.as_ref().is_none_or(|r| r.get(slot.index()).copied().unwrap_or(true));
            if read {
                let v = wire::load_be(&mut self.b, self.mem.packet, base, h.byte_len, bit_off, width);
                self.store_slot(slot, v);
            }
        }
        let one = self.b.ins().iconst(types::I8, 1);
        self.store_slot(h.valid, one);
        if let Some(var) = self.extract_var(header) {
            self.b.def_var(var, base);
        }
        self.b.def_var(self.cursor, end);
        self.trace_const(TraceEvent::Extract, header.0, 0);
        Ok(())
    }

    /// `pkt.extract(stack.next)`: a compare chain on the next-index slot,
    /// one [`Self::translate_extract`] per element (then `next = i + 1`),
    /// and the `StackOutOfBounds` exit when every element is taken.
    fn translate_extract_next(&mut self, elems: &[ir::HeaderId], next: SlotId) -> Result<(), JitError> {
        if self.state.is_none() {
            return Err(bad("stack extract outside the parser"));
        }
        let oob = match self.stack_oob {
            Some(b) => b,
            None => {
                let b = self.b.create_block();
                self.b.append_block_param(b, types::I32);
                self.b.set_cold_block(b);
                self.stack_oob = Some(b);
                b
            }
        };
        let index = self.load_slot(next);
        let t = self.b.func.dfg.value_type(index);
        let done = self.b.create_block();
        for (i, &h) in elems.iter().enumerate() {
            let this = self.b.create_block();
            let other = self.b.create_block();
            let is = self.b.ins().icmp_imm_u(IntCC::Equal, index, i as i64);
            self.b.ins().brif(is, this, &[], other, &[]);
            self.b.switch_to_block(this);
            self.translate_extract(h)?;
            let after = self.b.ins().iconst(t, i as i64 + 1);
            self.store_slot(next, after);
            self.b.ins().jump(done, &[]);
            self.b.switch_to_block(other);
        }
        let state = self.state_value();
        self.b.ins().jump(oob, &[BlockArg::Value(state)]);
        self.b.switch_to_block(done);
        Ok(())
    }

    /// `verify(cond, error.E)`: when `cond` is false, `E`'s index + 1 goes
    /// to `ctx.reject_error` and the parser rejects in the current state.
    fn translate_verify(&mut self, cond: ExprId, error: u32) -> Result<(), JitError> {
        if self.state.is_none() {
            return Err(bad("verify outside the parser"));
        }
        let c = self.eval(cond)?;
        let c = resize(&mut self.b, c, types::I8);
        let (ok, fail) = (self.b.create_block(), self.b.create_block());
        self.b.set_cold_block(fail);
        self.b.ins().brif(c, ok, &[], fail, &[]);
        self.b.switch_to_block(fail);
        let code = self.b.ins().iconst(types::I32, i64::from(error) + 1);
        self.b.ins().store(self.mem.ctx, code, self.ctx, ctx_offset::REJECT_ERROR);
        let state = self.state_value();
        self.b.ins().jump(self.reject, &[BlockArg::Value(state)]);
        self.b.switch_to_block(ok);
        Ok(())
    }

    /// `pkt.advance(bits)`: skip `bits / 8` bytes after a bounds check; bits
    /// that are not whole bytes reject the packet (P4_16's
    /// `error.ParserInvalidArgument`; a constant one is a checker error).
    fn translate_advance(&mut self, bits: ExprId) -> Result<(), JitError> {
        let v = self.eval(bits)?;
        if !matches!(self.program.expr(bits).kind, ir::ExprKind::Const(_)) {
            let low =
                if self.b.func.dfg.value_type(v) == types::I128 { self.b.ins().ireduce(types::I64, v) } else { v };
            let low = resize(&mut self.b, low, types::I64);
            let partial = self.b.ins().band_imm_u(low, 7);
            let whole = self.b.create_block();
            let state = self.state_value();
            self.b.ins().brif(partial, self.reject, &[BlockArg::Value(state)], whole, &[]);
            self.b.switch_to_block(whole);
        }
        // The checker types `bits` as bit<32>; a wider value is clamped so it
        // cannot wrap around the 64-bit cursor arithmetic.
        let v = if self.b.func.dfg.value_type(v) == types::I128 {
            let (lo, hi) = self.b.ins().isplit(v);
            let big = self.b.ins().icmp_imm_u(IntCC::NotEqual, hi, 0);
            let max = self.b.ins().iconst(types::I64, i64::from(u32::MAX));
            let lo = self.b.ins().umin(lo, max);
            self.b.ins().select(big, max, lo)
        } else {
            let v = resize(&mut self.b, v, types::I64);
            let max = self.b.ins().iconst(types::I64, 1i64 << 40);
            self.b.ins().umin(v, max)
        };
        let bytes = wire::shr_c(&mut self.b, v, 3);
        let end = self.bounds_check(bytes)?;
        self.b.def_var(self.cursor, end);
        Ok(())
    }

    /// `pkt.lookahead<T>()`: the next `width` bits, without consuming them.
    fn translate_lookahead(&mut self, width: u16) -> Result<Value, JitError> {
        let bytes = u32::from(width).div_ceil(8);
        let n = self.b.ins().iconst(types::I64, i64::from(bytes));
        let cur = self.b.use_var(self.cursor);
        self.bounds_check(n)?;
        let base = self.b.ins().iadd(self.pkt, cur);
        Ok(wire::load_be(&mut self.b, self.mem.packet, base, bytes, 0, width))
    }

    // -------------------------------------------------------------- controls

    /// A control or action body: its reachable blocks, entered from the current block.
    fn translate_body(&mut self, body: &ir::Body, exits: BodyExits) -> Result<(), JitError> {
        let mut blocks: HashMap<NodeIndex, Block> = HashMap::new();
        let mut order = vec![body.entry];
        let mut i = 0;
        while i < order.len() {
            let bb = body.graph.node_weight(order[i]).ok_or_else(|| bad("body block out of range"))?;
            let succ: Vec<NodeIndex> = match &bb.term {
                Terminator::Goto(n) => vec![*n],
                Terminator::Branch { then, els, .. } => vec![*then, *els],
                Terminator::Switch { cases, default, .. } => {
                    cases.iter().map(|(_, n)| *n).chain(std::iter::once(*default)).collect()
                }
                Terminator::Return | Terminator::Exit => Vec::new(),
            };
            for n in succ {
                if body.graph.node_weight(n).is_none() {
                    return Err(bad("terminator names a block out of range"));
                }
                if !order.contains(&n) {
                    order.push(n);
                }
            }
            i += 1;
        }
        for &n in &order {
            blocks.insert(n, self.b.create_block());
        }
        self.b.ins().jump(blocks[&body.entry], &[]);
        for &n in &order {
            self.b.switch_to_block(blocks[&n]);
            let bb = &body.graph[n];
            for (i, stmt) in bb.stmts.iter().enumerate() {
                let tail = (i + 1 == bb.stmts.len()).then_some(Tail { term: &bb.term, blocks: &blocks });
                self.translate_stmt(stmt, Some(exits), tail)?;
            }
            self.translate_terminator(&bb.term, &blocks, exits)?;
        }
        Ok(())
    }

    /// How a basic block ends.
    fn translate_terminator(
        &mut self,
        term: &Terminator,
        blocks: &HashMap<NodeIndex, Block>,
        exits: BodyExits,
    ) -> Result<(), JitError> {
        match term {
            Terminator::Goto(n) => {
                self.b.ins().jump(blocks[n], &[]);
            }
            Terminator::Branch { cond, then, els } => {
                let c = self.eval(*cond)?;
                if self.host.trace.is_some() {
                    let taken = resize(&mut self.b, c, types::I32);
                    let a = self.b.ins().iconst(types::I32, i64::from(cond.0));
                    self.trace(TraceEvent::Branch, a, taken);
                }
                self.b.ins().brif(c, blocks[then], &[], blocks[els], &[]);
            }
            Terminator::Switch { value, cases, default } => {
                let v = self.load_slot(*value);
                let v = resize(&mut self.b, v, types::I64);
                let mut switch = Switch::new();
                let mut seen = std::collections::HashSet::new();
                for (action, n) in cases {
                    // The first case for an action wins, like the interpreter's in-order scan.
                    if seen.insert(action.0) {
                        switch.set_entry(u128::from(action.0), blocks[n]);
                    }
                }
                switch.emit(&mut self.b, v, blocks[default]);
            }
            Terminator::Return => {
                self.b.ins().jump(exits.ret, &[]);
            }
            Terminator::Exit => {
                self.b.ins().jump(exits.exit, &[]);
            }
        }
        Ok(())
    }

    /// One statement; `exits` is `None` in the parser; `tail` is the
    /// block's terminator when `stmt` is the block's last statement (which
    /// then still leaves the builder where the terminator goes).
    fn translate_stmt(
        &mut self,
        stmt: &ir::Stmt,
        exits: Option<BodyExits>,
        tail: Option<Tail>,
    ) -> Result<(), JitError> {
        match &stmt.kind {
            StmtKind::Assign { dst, src } => self.translate_assign(dst, *src),
            StmtKind::SetValid { header, valid } => {
                let h = self.program.headers.get(header.index()).ok_or_else(|| bad("setValid of an unknown header"))?;
                let v = self.b.ins().iconst(types::I8, i64::from(*valid));
                self.store_slot(h.valid, v);
                Ok(())
            }
            StmtKind::Extract { header } => self.translate_extract(*header),
            StmtKind::ExtractNext { elems, next } => self.translate_extract_next(elems, *next),
            StmtKind::Advance { bits } => self.translate_advance(*bits),
            StmtKind::Verify { cond, error } => self.translate_verify(*cond, *error),
            StmtKind::CallAction { action, args } => {
                let exits = exits.ok_or_else(|| bad("action call in the parser"))?;
                self.translate_call_action(*action, args, exits)
            }
            StmtKind::Apply { table, hit, action_run } => {
                let exits = exits.ok_or_else(|| bad("table apply in the parser"))?;
                self.translate_apply(*table, *hit, *action_run, exits, tail)
            }
            StmtKind::Extern { call, ret } => self.translate_extern(call, *ret),
        }
    }

    /// `dst = src` or `dst[hi:lo] = src`.
    fn translate_assign(&mut self, dst: &ir::LValue, src: ExprId) -> Result<(), JitError> {
        let v = self.eval(src)?;
        let src_ty = self.program.expr(src).ty;
        let slot_ty = self.slot_ty(dst.slot);
        match dst.slice {
            None => {
                let v = self.coerce(v, src_ty, slot_ty);
                self.store_slot(dst.slot, v);
            }
            Some((hi, lo)) => {
                if hi < lo || hi >= slot_ty.width() {
                    return Err(bad("slice assignment out of the slot's width"));
                }
                let t = container(slot_ty.width());
                let w = hi - lo + 1;
                let field = (Ty::Bit(w).mask()) << lo;
                let old = self.load_slot(dst.slot);
                let keep = iconst(&mut self.b, t, !field & slot_ty.mask());
                let old = self.b.ins().band(old, keep);
                let new = self.coerce(v, src_ty, Ty::Bit(w));
                let new = resize(&mut self.b, new, t);
                let new = wire::shl_c(&mut self.b, new, u32::from(lo));
                let merged = self.b.ins().bor(old, new);
                self.store_slot(dst.slot, merged);
            }
        }
        Ok(())
    }

    /// A direct action call: evaluate all arguments, bind them, run the body inline.
    fn translate_call_action(
        &mut self,
        action: ir::ActionId,
        args: &[ExprId],
        exits: BodyExits,
    ) -> Result<(), JitError> {
        let a = self.program.actions.get(action.index()).ok_or_else(|| bad("call of an unknown action"))?;
        if a.params.len() != args.len() {
            return Err(bad("action called with the wrong number of arguments"));
        }
        let mut values = Vec::with_capacity(args.len());
        for &e in args {
            values.push((self.eval(e)?, self.program.expr(e).ty));
        }
        for (&param, (v, ty)) in a.params.iter().zip(values) {
            let v = self.coerce(v, ty, self.slot_ty(param));
            self.store_slot(param, v);
        }
        self.trace_const(TraceEvent::Action, action.0, 0);
        self.translate_action(action, exits.exit)
    }

    /// An action's body inlined at the current point; continues after it.
    fn translate_action(&mut self, action: ir::ActionId, control_exit: Block) -> Result<(), JitError> {
        if self.inlining.len() as u32 >= MAX_INLINE_DEPTH || self.inlining.contains(&action) {
            return Err(bad("actions call each other recursively"));
        }
        let a = self.program.actions.get(action.index()).ok_or_else(|| bad("unknown action"))?;
        let cont = self.b.create_block();
        self.inlining.push(action);
        self.translate_body(&a.body, BodyExits { ret: cont, exit: control_exit })?;
        self.inlining.pop();
        self.b.switch_to_block(cont);
        Ok(())
    }

    /// `t.apply()`: evaluate the key, look it up, record hit/action_run,
    /// run the action. A table whose key components fit 64 bits together
    /// (`abi::uses_table_lookup`) is looked up with the packed key in a
    /// register: in its table image by the generated code when it has an
    /// image kind and the runtime gave images ([`Self::lookup_via_image`]),
    /// else through `abi::TABLE_LOOKUP`; either way the chosen action's
    /// parameters are read from the row or entry the result points at.
    /// Other tables go through the key buffers and `abi::TABLE_APPLY`,
    /// which writes the parameters to their slots itself.
    fn translate_apply(
        &mut self,
        table: ir::TableId,
        hit: Option<SlotId>,
        action_run: Option<SlotId>,
        exits: BodyExits,
        tail: Option<Tail>,
    ) -> Result<(), JitError> {
        let t = self.program.tables.get(table.index()).ok_or_else(|| bad("apply of an unknown table"))?;
        let offsets =
            self.layout.table_keys.get(table.index()).ok_or_else(|| bad("layout has no key buffer for a table"))?;
        if offsets.len() != t.keys.len() {
            return Err(bad("layout key buffer does not match the table's keys"));
        }
        // All key expressions first, then the stores: a key never sees a half-written buffer.
        // A packed key widens each component to 64 bits: one that needs
        // no truncation is read as wide as its load can make it.
        let packed_key = crate::abi::uses_table_lookup(t);
        let mut values = Vec::with_capacity(t.keys.len());
        for k in &t.keys {
            let (from, to) = (self.program.expr(k.expr).ty, Ty::Bit(k.width.max(1)));
            if packed_key && from.width() <= to.width() {
                values.push(self.eval_wide(k.expr)?);
            } else {
                let v = self.eval(k.expr)?;
                values.push(self.coerce(v, from, to));
            }
        }
        let (r, params, joined) = if packed_key {
            let packed = if t.keys.len() > 1 { crate::abi::PACKED_KEY } else { 0 };
            let id = self.b.ins().iconst(types::I32, i64::from(table.0 | packed));
            // The components concatenated, the first in the highest bits.
            let mut key = self.b.ins().iconst(types::I64, 0);
            for (v, k) in values.iter().zip(&t.keys) {
                let v = resize(&mut self.b, *v, types::I64);
                let shifted = wire::shl_c(&mut self.b, key, u32::from(k.width.max(1)));
                key = self.b.ins().bor(shifted, v);
            }
            let image = self.host.table_images.zip(crate::abi::image_kind(t));
            let snapshot = self.snapshots.get(table.index()).and_then(Option::as_ref);
            let mut joined = None;
            if let (Some((images, _)), Some(snap)) = (image, snapshot) {
                // The snapshot while the table is as it was; its image otherwise.
                let (inline, generic, join) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
                let img = self.b.ins().iconst(types::I64, image_address(images, table) as i64);
                let version = self.b.ins().load(types::I64, self.mem.images, img, crate::abi::image_offset::VERSION);
                let same = self.b.ins().icmp_imm_u(IntCC::Equal, version, snap.version as i64);
                self.b.ins().brif(same, inline, &[], generic, &[]);
                self.b.switch_to_block(inline);
                // Bits above the packed key's width are 0: a mask of them all tests nothing.
                let bits: u32 = t.keys.iter().map(|k| u32::from(k.width.max(1))).sum();
                let full = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
                self.apply_snapshot(snap, img, key, full, hit, action_run, exits, join, tail)?;
                self.b.switch_to_block(generic);
                joined = Some(join);
            }
            let (r, params) = match image {
                Some((images, kind)) => self.lookup_via_image(table, t, images, kind, id, key),
                None => {
                    let call = self.b.ins().call(self.host.table_lookup, &[self.ctx, id, key]);
                    (self.b.inst_results(call)[0], self.b.inst_results(call)[1])
                }
            };
            (self.b.ins().ireduce(types::I32, r), Some(params), joined)
        } else {
            for (v, &off) in values.into_iter().zip(offsets) {
                self.b.ins().store(self.mem.scratch, v, self.phv, off as i32);
            }
            let id = self.b.ins().iconst(types::I32, i64::from(table.0));
            let call = self.b.ins().call(self.host.table_apply, &[self.ctx, id]);
            (self.b.inst_results(call)[0], None, None)
        };
        if let Some(slot) = hit {
            let h = wire::shr_c(&mut self.b, r, 31);
            let t = container(self.slot_ty(slot).width());
            let h = resize(&mut self.b, h, t);
            self.store_slot(slot, h);
        }
        let low = iconst(&mut self.b, types::I32, u128::from(!HIT_BIT));
        let act = self.b.ins().band(r, low);
        if let Some(slot) = action_run {
            let ty = self.slot_ty(slot);
            let v = self.coerce(act, Ty::Bit(32), ty);
            self.store_slot(slot, v);
        }
        // Dispatch over every action the table can run (entries' and default).
        let mut candidates: Vec<ir::ActionId> = Vec::with_capacity(t.actions.len() + 1);
        for &a in t.actions.iter().chain(std::iter::once(&t.default_action.action)) {
            if !candidates.contains(&a) {
                candidates.push(a);
            }
        }
        let done = self.b.create_block();
        let arms: Vec<(ir::ActionId, Block)> = candidates.iter().map(|&a| (a, self.b.create_block())).collect();
        // An id the table does not list runs nothing (the host never returns one).
        if arms.len() <= SMALL_DISPATCH {
            // A compare chain: Cranelift's `Switch` makes a jump table of
            // consecutive ids, whose indirect branch predicts worse than a
            // few conditional ones when consecutive applies differ.
            for &(a, block) in &arms {
                let is = self.b.ins().icmp_imm_u(IntCC::Equal, act, i64::from(a.0));
                let next = self.b.create_block();
                self.b.ins().brif(is, block, &[], next, &[]);
                self.b.switch_to_block(next);
            }
            self.b.ins().jump(done, &[]);
        } else {
            let mut switch = Switch::new();
            for &(a, block) in &arms {
                switch.set_entry(u128::from(a.0), block);
            }
            switch.emit(&mut self.b, act, done);
        }
        for (a, block) in arms {
            self.b.switch_to_block(block);
            if let Some(ptr) = params {
                self.bind_entry_params(a, ptr)?;
            }
            self.translate_action(a, exits.exit)?;
            self.b.ins().jump(done, &[]);
        }
        self.b.switch_to_block(done);
        if let Some(join) = joined {
            self.b.ins().jump(join, &[]);
            self.b.switch_to_block(join);
        }
        Ok(())
    }

    /// A table apply from the table's snapshot `snap` (`abi` module docs,
    /// "Table snapshots"), for the packed `key` (no bits outside `full`),
    /// the table's image at `img`: the entries tested in order, the first match's action run
    /// with its parameters as constants, else the miss's; `hit` and
    /// `action_run` set and the image's counters counted as
    /// [`Self::lookup_via_image`] does. Every path ends jumping to `join`,
    /// or, when the apply is its block's last statement, with that block's
    /// `tail` terminator: there `hit` and `action_run` are constants the
    /// path has just stored, which Cranelift forwards to the terminator's
    /// loads of them and folds its branch on (an `if (t.apply().hit)`
    /// jumps straight to its side), where after `join` it would reload
    /// and test them.
    #[allow(clippy::too_many_arguments)]
    fn apply_snapshot(
        &mut self,
        snap: &TableSnapshot,
        img: Value,
        key: Value,
        full: u64,
        hit: Option<SlotId>,
        action_run: Option<SlotId>,
        exits: BodyExits,
        join: Block,
        tail: Option<Tail>,
    ) -> Result<(), JitError> {
        use crate::abi::image_offset as off;
        let counts = self.b.ins().load(types::I64, self.mem.images, img, off::COUNTS);
        for e in &snap.entries {
            let (arm, next) = (self.b.create_block(), self.b.create_block());
            let masked = if e.mask & full == full { key } else { self.b.ins().band_imm_u(key, e.mask as i64) };
            let is = self.b.ins().icmp_imm_u(IntCC::Equal, masked, e.value as i64);
            self.b.ins().brif(is, arm, &[], next, &[]);
            self.b.switch_to_block(arm);
            self.bump(counts, 0);
            self.bump(counts, 16 + 8 * e.handle as i32);
            self.run_snapshot_action(true, e.action, &e.params, hit, action_run, exits)?;
            self.end_snapshot_path(join, tail, exits)?;
            self.b.switch_to_block(next);
        }
        self.bump(counts, 8);
        let (action, params) = &snap.miss;
        self.run_snapshot_action(false, *action, params, hit, action_run, exits)?;
        self.end_snapshot_path(join, tail, exits)
    }

    /// Ends a path of [`Self::apply_snapshot`]: with the block's terminator
    /// when there is a `tail`, else by jumping to `join`.
    fn end_snapshot_path(&mut self, join: Block, tail: Option<Tail>, exits: BodyExits) -> Result<(), JitError> {
        match tail {
            Some(t) => self.translate_terminator(t.term, t.blocks, exits),
            None => {
                self.b.ins().jump(join, &[]);
                Ok(())
            }
        }
    }

    /// Sets `hit` and `action_run` as a lookup result of `action` would,
    /// stores `params` (constants, masked to each parameter's width) in the
    /// action's parameter slots and runs it ([`Self::apply_snapshot`]).
    fn run_snapshot_action(
        &mut self,
        is_hit: bool,
        action: ir::ActionId,
        params: &[u128],
        hit: Option<SlotId>,
        action_run: Option<SlotId>,
        exits: BodyExits,
    ) -> Result<(), JitError> {
        if let Some(slot) = hit {
            let t = container(self.slot_ty(slot).width());
            let v = iconst(&mut self.b, t, u128::from(is_hit));
            self.store_slot(slot, v);
        }
        if let Some(slot) = action_run {
            let t = container(self.slot_ty(slot).width());
            let v = iconst(&mut self.b, t, u128::from(action.0));
            self.store_slot(slot, v);
        }
        let a = self.program.actions.get(action.index()).ok_or_else(|| bad("snapshot of an unknown action"))?;
        for (i, &param) in a.params.iter().enumerate() {
            let ty = self.slot_ty(param);
            let v = iconst(&mut self.b, container(ty.width()), params.get(i).copied().unwrap_or(0) & ty.mask());
            self.store_slot(param, v);
        }
        self.translate_action(action, exits.exit)
    }

    /// `abi::TABLE_LOOKUP`'s result for `key` in `table`, computed from the
    /// table's image when its kind is `kind` (exact probe or lpm trie walk,
    /// counting like the host; `abi` module docs) and by calling the host
    /// otherwise. Returns the action word (`i64`) and the parameter pointer.
    fn lookup_via_image(
        &mut self,
        table: ir::TableId,
        t: &ir::Table,
        images: u64,
        kind: u32,
        id: Value,
        key: Value,
    ) -> (Value, Value) {
        use crate::abi::{image_offset as off, LPM_CHUNK};
        let i64t = types::I64;
        let mem = self.mem.images;
        let row_bytes = 16 * (1 + crate::abi::image_params(self.program, t)) as i64;
        let img = self.b.ins().iconst(i64t, image_address(images, table) as i64);

        let (fast, slow, join, hit, miss) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.append_block_param(join, i64t);
        self.b.append_block_param(join, i64t);
        self.b.append_block_param(hit, types::I32);
        self.b.set_cold_block(slow);
        let k = self.b.ins().load(types::I32, mem, img, off::KIND);
        let is = self.b.ins().icmp_imm_u(IntCC::Equal, k, i64::from(kind));
        self.b.ins().brif(is, fast, &[], slow, &[]);

        self.b.switch_to_block(slow);
        let call = self.b.ins().call(self.host.table_lookup, &[self.ctx, id, key]);
        let (r, p) = (self.b.inst_results(call)[0], self.b.inst_results(call)[1]);
        self.b.ins().jump(join, &[BlockArg::Value(r), BlockArg::Value(p)]);

        self.b.switch_to_block(fast);
        if kind == crate::abi::IMAGE_GROUPS {
            self.probe_groups(img, key, hit, miss);
        } else if kind == crate::abi::IMAGE_EXACT {
            let slot_mask = self.b.ins().load(i64t, mem, img, off::MASK);
            let shift = self.b.ins().load(types::I32, mem, img, off::SHIFT);
            let slots = self.b.ins().load(i64t, mem, img, off::INDEX);
            let (handle, _) = self.probe_slots(slots, slot_mask, shift, key, miss);
            self.b.ins().jump(hit, &[BlockArg::Value(handle)]);
        } else {
            // At most three levels; a chunk pointer below the last is a miss.
            let leaf = self.b.create_block();
            self.b.append_block_param(leaf, types::I32);
            let root = self.b.ins().load(i64t, mem, img, off::INDEX);
            let chunks = self.b.ins().load(i64t, mem, img, off::CHUNKS);
            let s0 = self.b.ins().load(types::I32, mem, img, off::LPM_SHIFTS);
            let s0 = self.b.ins().uextend(i64t, s0);
            let top = self.b.ins().ushr(key, s0);
            let byte = self.b.ins().ishl_imm_u(top, 2);
            let addr = self.b.ins().iadd(root, byte);
            let mut cell = self.b.ins().load(types::I32, mem, addr, 0);
            for level in 1..3i32 {
                let down = self.b.create_block();
                let more = self.b.ins().band_imm_u(cell, i64::from(LPM_CHUNK));
                self.b.ins().brif(more, down, &[], leaf, &[BlockArg::Value(cell)]);
                self.b.switch_to_block(down);
                let sh = self.b.ins().load(types::I32, mem, img, off::LPM_SHIFTS + 4 * level);
                let sh = self.b.ins().uextend(i64t, sh);
                let m = self.b.ins().load(types::I32, mem, img, off::LPM_MASKS + 4 * level);
                let m = self.b.ins().uextend(i64t, m);
                let part = self.b.ins().ushr(key, sh);
                let part = self.b.ins().band(part, m);
                let chunk = self.b.ins().band_imm_u(cell, i64::from(!LPM_CHUNK));
                let chunk = self.b.ins().uextend(i64t, chunk);
                let base = self.b.ins().ishl_imm_u(chunk, 8);
                let index = self.b.ins().iadd(base, part);
                let byte = self.b.ins().ishl_imm_u(index, 2);
                let addr = self.b.ins().iadd(chunks, byte);
                cell = self.b.ins().load(types::I32, mem, addr, 0);
            }
            let more = self.b.ins().band_imm_u(cell, i64::from(LPM_CHUNK));
            self.b.ins().brif(more, miss, &[], leaf, &[BlockArg::Value(cell)]);
            self.b.switch_to_block(leaf);
            let cell = self.b.block_params(leaf)[0];
            let handle = self.b.ins().iadd_imm_s(cell, -1);
            self.b.ins().brif(cell, hit, &[BlockArg::Value(handle)], miss, &[]);
        }

        // hit(h): counts[0] and counts[2 + h] up by one; row 1 + h.
        self.b.switch_to_block(hit);
        let h = self.b.block_params(hit)[0];
        let h = self.b.ins().uextend(i64t, h);
        let counts = self.b.ins().load(i64t, mem, img, off::COUNTS);
        let rows = self.b.ins().load(i64t, mem, img, off::ROWS);
        self.bump(counts, 0);
        let at = self.b.ins().ishl_imm_u(h, 3);
        let entry_count = self.b.ins().iadd(counts, at);
        self.bump(entry_count, 16);
        let at = self.b.ins().imul_imm_u(h, row_bytes);
        let row = self.b.ins().iadd(rows, at);
        let row = self.b.ins().iadd_imm_u(row, row_bytes);
        let r = self.b.ins().load(types::I32, self.mem.params, row, 0);
        let r = self.b.ins().uextend(i64t, r);
        let p = self.b.ins().iadd_imm_u(row, 16);
        self.b.ins().jump(join, &[BlockArg::Value(r), BlockArg::Value(p)]);

        // miss: counts[1] up by one; row 0.
        self.b.switch_to_block(miss);
        let counts = self.b.ins().load(i64t, mem, img, off::COUNTS);
        let rows = self.b.ins().load(i64t, mem, img, off::ROWS);
        self.bump(counts, 8);
        let r = self.b.ins().load(types::I32, self.mem.params, rows, 0);
        let r = self.b.ins().uextend(i64t, r);
        let p = self.b.ins().iadd_imm_u(rows, 16);
        self.b.ins().jump(join, &[BlockArg::Value(r), BlockArg::Value(p)]);

        self.b.switch_to_block(join);
        (self.b.block_params(join)[0], self.b.block_params(join)[1])
    }

    /// A linear probe of `slot_mask + 1` `abi::ExactSlot`s at `slots` for
    /// `key`, from its home slot `(key * EXACT_HASH_K) >> shift` (`shift`
    /// an `i32`) onwards: jumps to `empty` at an empty slot, else leaves the
    /// builder in a block where the slot holding `key` was found and returns
    /// its handle (`i32`) and address.
    fn probe_slots(
        &mut self,
        slots: Value,
        slot_mask: Value,
        shift: Value,
        key: Value,
        empty: Block,
    ) -> (Value, Value) {
        use crate::abi::{EXACT_EMPTY, EXACT_HASH_K};
        let (i64t, mem) = (types::I64, self.mem.images);
        let (probe, check, found) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        self.b.append_block_param(probe, i64t);
        let shift = self.b.ins().uextend(i64t, shift);
        let hk = self.b.ins().imul_imm_u(key, EXACT_HASH_K as i64);
        let home = self.b.ins().ushr(hk, shift);
        self.b.ins().jump(probe, &[BlockArg::Value(home)]);
        // probe(i): slot i & mask; empty → `empty`, same key → found, else i + 1.
        self.b.switch_to_block(probe);
        let i = self.b.block_params(probe)[0];
        let j = self.b.ins().band(i, slot_mask);
        let byte = self.b.ins().ishl_imm_u(j, 4);
        let slot = self.b.ins().iadd(slots, byte);
        let handle = self.b.ins().load(types::I32, mem, slot, 8);
        let is_empty = self.b.ins().icmp_imm_u(IntCC::Equal, handle, i64::from(EXACT_EMPTY));
        self.b.ins().brif(is_empty, empty, &[], check, &[]);
        self.b.switch_to_block(check);
        let stored = self.b.ins().load(i64t, mem, slot, 0);
        let same = self.b.ins().icmp(IntCC::Equal, stored, key);
        let next = self.b.ins().iadd_imm_u(i, 1);
        self.b.ins().brif(same, found, &[], probe, &[BlockArg::Value(next)]);
        self.b.switch_to_block(found);
        (handle, slot)
    }

    /// The search of an `abi::IMAGE_GROUPS` image at `img` for the packed
    /// `key` (the `abi` module docs): the groups in order, each probed for
    /// `key & mask`, keeping the best-ranked hit, until a group cannot beat
    /// it; then to `hit` (with the handle) or to `miss`.
    fn probe_groups(&mut self, img: Value, key: Value, hit: Block, miss: Block) {
        use crate::abi::{group_offset as grp, image_offset as off, EXACT_EMPTY};
        let (i64t, i32t) = (types::I64, types::I32);
        let mem = self.mem.images;
        let none = i64::from(EXACT_EMPTY);
        let (g, found, rank) = (self.b.declare_var(i64t), self.b.declare_var(i32t), self.b.declare_var(i32t));
        let groups = self.b.ins().load(i64t, mem, img, off::INDEX);
        let count = self.b.ins().load(i64t, mem, img, off::MASK);
        let zero = self.b.ins().iconst(i64t, 0);
        self.b.def_var(g, zero);
        let nothing = self.b.ins().iconst(i32t, none);
        self.b.def_var(found, nothing);
        self.b.def_var(rank, nothing);
        let (next_group, group, search, skip, done) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.ins().jump(next_group, &[]);

        // next_group: the end of the groups, or one that cannot win, ends it.
        self.b.switch_to_block(next_group);
        let gi = self.b.use_var(g);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, gi, count);
        self.b.ins().brif(more, group, &[], done, &[]);
        self.b.switch_to_block(group);
        let at_g = self.b.ins().imul_imm_u(gi, grp::SIZE);
        let gp = self.b.ins().iadd(groups, at_g);
        let best = self.b.ins().load(i32t, mem, gp, grp::BEST);
        let r = self.b.use_var(rank);
        let can_win = self.b.ins().icmp(IntCC::UnsignedLessThan, best, r);
        self.b.ins().brif(can_win, search, &[], done, &[]);

        // search: this group's slots for `key & mask`; a hit outranking the
        // best so far replaces it; either way on to the next group.
        self.b.switch_to_block(search);
        let m = self.b.ins().load(i64t, mem, gp, grp::MASK);
        let masked = self.b.ins().band(key, m);
        let shift = self.b.ins().load(i32t, mem, gp, grp::SHIFT);
        let slot_mask = self.b.ins().load(i64t, mem, gp, grp::SLOT_MASK);
        let slots = self.b.ins().load(i64t, mem, gp, grp::SLOTS);
        let (handle, slot) = self.probe_slots(slots, slot_mask, shift, masked, skip);
        let its = self.b.ins().load(i32t, mem, slot, 12);
        let r = self.b.use_var(rank);
        let f = self.b.use_var(found);
        let wins = self.b.ins().icmp(IntCC::UnsignedLessThan, its, r);
        let r = self.b.ins().select(wins, its, r);
        let f = self.b.ins().select(wins, handle, f);
        self.b.def_var(rank, r);
        self.b.def_var(found, f);
        self.b.ins().jump(skip, &[]);

        // skip: the next group.
        self.b.switch_to_block(skip);
        let gi = self.b.use_var(g);
        let gnext = self.b.ins().iadd_imm_u(gi, 1);
        self.b.def_var(g, gnext);
        self.b.ins().jump(next_group, &[]);

        // done: the best hit, or a miss.
        self.b.switch_to_block(done);
        let f = self.b.use_var(found);
        let missed = self.b.ins().icmp_imm_u(IntCC::Equal, f, none);
        self.b.ins().brif(missed, miss, &[], hit, &[BlockArg::Value(f)]);
    }

    /// Adds one to the `u64` counter at `base + offset` (table images).
    fn bump(&mut self, base: Value, offset: i32) {
        let n = self.b.ins().load(types::I64, self.mem.images, base, offset);
        let n = self.b.ins().iadd_imm_u(n, 1);
        self.b.ins().store(self.mem.images, n, base, offset);
    }

    /// Copies the parameters `abi::TABLE_LOOKUP` returned (`u128` each at
    /// `ptr`) into action `a`'s parameter slots: the low container bytes of
    /// each value, masked to the slot's width (values are stored masked;
    /// the mask keeps a slot within its width whatever the runtime holds).
    fn bind_entry_params(&mut self, a: ir::ActionId, ptr: Value) -> Result<(), JitError> {
        let action = self.program.actions.get(a.index()).ok_or_else(|| bad("unknown action"))?;
        for (i, &param) in action.params.iter().enumerate() {
            let w = self.slot_ty(param).width();
            let v = self.b.ins().load(container(w), self.mem.params, ptr, 16 * i as i32);
            let v = mask(&mut self.b, v, w);
            self.store_slot(param, v);
        }
        Ok(())
    }

    /// An extern call: flatten the arguments into the argument array, call the
    /// host, copy `out`/`inout` entries and the return value back. Pure
    /// prelude functions with fixed semantics ([`Intrinsic`]) are computed
    /// inline instead when tracing is off (the host traces the calls it runs).
    fn translate_extern(&mut self, call: &ir::ExternCall, ret: Option<SlotId>) -> Result<(), JitError> {
        let hint = crate::abi::is_hint(self.program, call);
        match self.mode {
            Mode::Pipeline if hint && self.host.trace.is_none() => return Ok(()),
            Mode::Hints if !hint => return Ok(()),
            _ => {}
        }
        let base = self.layout.extern_args;
        let capacity = self.layout.extern_args_len;
        if 1 + crate::abi::flattened_args(call) > capacity {
            return Err(bad("extern call has more arguments than the layout's argument array"));
        }
        let entry = |i: u32| (base + 16 * i) as i32;
        let intrinsic = if self.host.trace.is_none() { Intrinsic::of(self.program, call) } else { None };
        // A checksum only sees its data arguments' bit-strings, computed
        // inline (no argument array): a concatenation's operands can be
        // separate fields of it, each read as wide as it loads
        // ([`Self::eval_wide`]), instead of one value assembled first.
        let split_concat = matches!(intrinsic, Some(Intrinsic::Csum16 | Intrinsic::Csum16Replace))
            && crate::abi::counter_count(self.program, call).is_none()
            && crate::abi::ipvs_call(self.program, call).is_none();
        // Evaluate every argument before writing any entry.
        let mut entries: Vec<ArgEntry> = Vec::new();
        for (arg_index, arg) in call.args.iter().enumerate() {
            match arg {
                ir::ExternArg::In(e) => {
                    let parts = if split_concat { self.concat_operands(*e) } else { vec![*e] };
                    for e in parts {
                        let width = self.program.expr(e).ty.width();
                        let value = self.eval_wide(e)?;
                        entries.push(ArgEntry { arg: arg_index, value, width, slot: None, out: false });
                    }
                }
                ir::ExternArg::Out(s) | ir::ExternArg::InOut(s) => {
                    // An `out` argument's entry starts at 0 whatever the
                    // slot holds (the runtime zeroes it before the call):
                    // its slot is not read.
                    let out = matches!(arg, ir::ExternArg::Out(_));
                    let value = if out { iconst(&mut self.b, types::I64, 0) } else { self.load_slot_wide(*s) };
                    entries.push(ArgEntry {
                        arg: arg_index,
                        value,
                        width: self.slot_ty(*s).width(),
                        slot: Some(*s),
                        out,
                    });
                }
                ir::ExternArg::List(items) => {
                    for &item in items {
                        let parts = if split_concat { self.concat_operands(item) } else { vec![item] };
                        for e in parts {
                            let width = self.program.expr(e).ty.width();
                            let value = self.eval_wide(e)?;
                            entries.push(ArgEntry { arg: arg_index, value, width, slot: None, out: false });
                        }
                    }
                }
            }
        }
        // `counter.count` counts in the counter's image when it has one,
        // and otherwise goes on to the host call below.
        let counted = match (self.host.counter_images, crate::abi::counter_count(self.program, call), &entries[..]) {
            (Some(images), Some(instance), [index]) => Some(self.count_inline(images, instance, index.value)),
            _ => None,
        };
        if let (Some(f), Some(m), None) = (self.host.ipvs_call, crate::abi::ipvs_call(self.program, call), counted) {
            if self.translate_ipvs_call(f, m, call.site, &entries, ret) {
                return Ok(());
            }
        }
        if let Some(k) = intrinsic {
            let results = self.translate_intrinsic(k, &entries);
            for (e, v) in entries.iter().zip(&results[1..]) {
                if let Some(slot) = e.slot {
                    self.copy_back_value(*v, slot);
                }
            }
            if let Some(slot) = ret {
                self.copy_back_value(results[0], slot);
            }
            return Ok(());
        }
        for (i, e) in entries.iter().enumerate() {
            self.store_u128(e.value, entry(1 + i as u32));
        }
        // The return entry starts at 0: a callee that writes none yields 0, not stale data.
        let zero = iconst(&mut self.b, types::I64, 0);
        self.store_u128(zero, entry(0));
        let site = self.b.ins().iconst(types::I32, i64::from(call.site.0));
        self.b.ins().call(self.host.extern_call, &[self.ctx, site]);
        for (i, e) in entries.iter().enumerate() {
            if let Some(slot) = e.slot {
                self.copy_back(entry(1 + i as u32), slot);
            }
        }
        if let Some(slot) = ret {
            self.copy_back(entry(0), slot);
        }
        if let Some(done) = counted {
            self.b.ins().jump(done, &[]);
            self.b.switch_to_block(done);
        }
        Ok(())
    }

    /// An IPVS method through `abi::IPVS_CALL`: the `in` values packed into
    /// three registers, the return value and the outs taken from the two
    /// result registers (the `abi` module docs). False, with nothing
    /// emitted, when the arguments are not the method's (the caller then
    /// goes through the argument array).
    fn translate_ipvs_call(
        &mut self,
        f: FuncRef,
        m: crate::abi::IpvsMethod,
        site: ir::CallSiteId,
        entries: &[ArgEntry],
        ret: Option<SlotId>,
    ) -> bool {
        let i64t = types::I64;
        let ins: Vec<Value> = entries.iter().filter(|e| !e.out).map(|e| e.value).collect();
        if m == crate::abi::IpvsMethod::Prefetch {
            let &[proto, a1, p1, a2, p2] = &ins[..] else { return false };
            let [proto, a1, p1, a2, p2] = [proto, a1, p1, a2, p2].map(|v| resize(&mut self.b, v, i64t));
            let a1 = wire::shl_c(&mut self.b, a1, 32);
            let addrs = self.b.ins().bor(a1, a2);
            let p1 = wire::shl_c(&mut self.b, p1, 16);
            let ports = self.b.ins().bor(p1, p2);
            let site = self.b.ins().iconst(types::I32, i64::from(site.0));
            self.b.ins().call(f, &[self.ctx, site, addrs, ports, proto]);
            return true;
        }
        let (service, packet) = match (m, &ins[..]) {
            (crate::abi::IpvsMethod::Schedule, [s, rest @ ..]) => (Some(*s), rest),
            _ => (None, &ins[..]),
        };
        // proto, first address, first port, second address, second port, flags, ip_len.
        let &[proto, a1, p1, a2, p2, flags, len] = packet else { return false };
        let [proto, a1, p1, a2, p2, flags, len] =
            [proto, a1, p1, a2, p2, flags, len].map(|v| resize(&mut self.b, v, i64t));
        let service = service.map(|v| resize(&mut self.b, v, i64t));
        let pack = |b: &mut FunctionBuilder, hi: Value, lo: Value, shift: u32| {
            let hi = wire::shl_c(b, hi, shift);
            b.ins().bor(hi, lo)
        };
        let addrs = pack(&mut self.b, a1, a2, 32);
        let ports = pack(&mut self.b, p1, p2, 16);
        let mut misc = pack(&mut self.b, flags, proto, 8);
        let len = wire::shl_c(&mut self.b, len, 16);
        misc = self.b.ins().bor(misc, len);
        if let Some(s) = service {
            let s = wire::shl_c(&mut self.b, s, 32);
            misc = self.b.ins().bor(misc, s);
        }
        let site = self.b.ins().iconst(types::I32, i64::from(site.0));
        let call = self.b.ins().call(f, &[self.ctx, site, addrs, ports, misc]);
        let (word, addr) = (self.b.inst_results(call)[0], self.b.inst_results(call)[1]);
        if let Some(slot) = ret {
            self.copy_back_value(word, slot);
        }
        let fwd = wire::shr_c(&mut self.b, word, 8);
        let port = wire::shr_c(&mut self.b, word, 16);
        let outs: Vec<SlotId> = entries.iter().filter(|e| e.out).filter_map(|e| e.slot).collect();
        let values = match m {
            crate::abi::IpvsMethod::LookupOut => vec![addr, port],
            _ => vec![fwd, addr, port],
        };
        for (slot, v) in outs.into_iter().zip(values) {
            self.copy_back_value(v, slot);
        }
        true
    }

    /// `counter.count(index)` of `instance` through its image at `images`
    /// (`abi::CounterImage`): counts and jumps to the returned block; the
    /// builder is left in the block that calls the host instead (an
    /// instance without an image), which must end by jumping there too.
    fn count_inline(&mut self, images: u64, instance: ir::InstanceId, index: Value) -> Block {
        use crate::abi::counter_offset as off;
        let i64t = types::I64;
        let mem = self.mem.images;
        let at = images.wrapping_add(off::STRIDE * u64::from(instance.0));
        let img = self.b.ins().iconst(i64t, at as i64);
        let (fast, slow, count, error, done) = (
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
            self.b.create_block(),
        );
        self.b.set_cold_block(slow);
        self.b.set_cold_block(error);
        let packets = self.b.ins().load(i64t, mem, img, off::PACKETS);
        self.b.ins().brif(packets, fast, &[], slow, &[]);

        self.b.switch_to_block(fast);
        let size = self.b.ins().load(i64t, mem, img, off::SIZE);
        let ty = self.b.func.dfg.value_type(index);
        let (inside, i) = if ty == types::I128 {
            let wide = self.b.ins().uextend(types::I128, size);
            (self.b.ins().icmp(IntCC::UnsignedLessThan, index, wide), self.b.ins().ireduce(i64t, index))
        } else {
            let i = resize(&mut self.b, index, i64t);
            (self.b.ins().icmp(IntCC::UnsignedLessThan, i, size), i)
        };
        self.b.ins().brif(inside, count, &[], error, &[]);

        self.b.switch_to_block(count);
        let cell = self.b.ins().ishl_imm_u(i, 3);
        let p = self.b.ins().iadd(packets, cell);
        self.bump(p, 0);
        let bytes = self.b.ins().load(i64t, mem, img, off::BYTES);
        let b = self.b.ins().iadd(bytes, cell);
        let len = self.load_slot(self.program.std.packet_length);
        let len = resize(&mut self.b, len, i64t);
        let n = self.b.ins().load(i64t, mem, b, 0);
        let n = self.b.ins().iadd(n, len);
        self.b.ins().store(mem, n, b, 0);
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(error);
        let errors = self.b.ins().load(i64t, mem, img, off::ERRORS);
        self.bump(errors, 0);
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(slow);
        done
    }

    /// Computes an intrinsic's argument array after the call, in registers:
    /// entry 0 (the return value) then one value per flattened argument,
    /// exactly as the runtime's implementation leaves the array (it zeroes
    /// the return entry and `out` entries before running).
    fn translate_intrinsic(&mut self, k: Intrinsic, entries: &[ArgEntry]) -> Vec<Value> {
        let zero = iconst(&mut self.b, types::I64, 0);
        let mut results: Vec<Value> =
            std::iter::once(zero).chain(entries.iter().map(|e| if e.out { zero } else { e.value })).collect();
        // The bit-string of argument `arg` (its scalar or its list elements).
        let fields = |arg: usize| -> Vec<FieldValue> {
            let mut bit_off = 0;
            entries
                .iter()
                .filter(|e| e.arg == arg)
                .map(|e| {
                    let f = FieldValue { bit_off, width: e.width, value: e.value };
                    bit_off += u32::from(e.width);
                    f
                })
                .collect()
        };
        match k {
            Intrinsic::MarkToDrop => {
                let drop = self.program.std.drop;
                let one = self.b.ins().iconst(types::I8, 1);
                self.store_slot(drop, one);
                // An argument entry that is `std.drop` itself reads back as 1.
                for (i, e) in entries.iter().enumerate() {
                    if e.slot == Some(drop) {
                        results[1 + i] = one;
                    }
                }
            }
            Intrinsic::Csum16 => {
                let words = wire::words32(&mut self.b, &fields(0));
                let sum = self.sum(&words);
                let folded = wire::fold16(&mut self.b, sum);
                results[0] = self.b.ins().bnot(folded);
                results[0] = mask(&mut self.b, results[0], 16);
            }
            Intrinsic::Csum16Replace => {
                // HC' = ~(~HC + ~m + m') (RFC 1624 eqn. 3), summed over 32-bit
                // units ([`wire::words32`]) rather than 16-bit words: each unit
                // of m is complemented in the bits its 16-bit words cover
                // (the low half of a unit holding one word stays 0), so the
                // sum is 0 exactly when the words' sum is, and equal to it
                // modulo 2^16 - 1: the same fold.
                let hc = resize(&mut self.b, entries[0].value, types::I64);
                let mut terms = vec![self.not16(hc)];
                let old = fields(1);
                let word_bits = old.last().map_or(0, |f| f.bit_off + u32::from(f.width)).next_multiple_of(16);
                for (k, u) in wire::words32(&mut self.b, &old).into_iter().enumerate() {
                    let covered = if (k as u32 + 1) * 32 <= word_bits { 0xFFFF_FFFF } else { 0xFFFF_0000 };
                    let n = self.b.ins().bnot(u);
                    terms.push(self.b.ins().band_imm_u(n, covered));
                }
                terms.extend(wire::words32(&mut self.b, &fields(2)));
                let sum = self.sum(&terms);
                let folded = wire::fold16(&mut self.b, sum);
                let r = self.not16(folded);
                results[1] = r;
            }
        }
        results
    }

    /// `!x & 0xFFFF` of an `i64` holding 16 bits.
    fn not16(&mut self, x: Value) -> Value {
        let n = self.b.ins().bnot(x);
        self.b.ins().band_imm_u(n, 0xFFFF)
    }

    /// The sum of `i64` values (0 for none).
    fn sum(&mut self, xs: &[Value]) -> Value {
        let mut acc = self.b.ins().iconst(types::I64, 0);
        for &x in xs {
            acc = self.b.ins().iadd(acc, x);
        }
        acc
    }

    /// Writes an argument entry's value (any width) into a slot, masked to the slot.
    fn copy_back_value(&mut self, v: Value, slot: SlotId) {
        let ty = self.slot_ty(slot);
        let v = resize(&mut self.b, v, container(ty.width()));
        let v = mask(&mut self.b, v, ty.width());
        self.store_slot(slot, v);
    }

    /// Stores `v` zero-extended as a little-endian `u128` at PHV offset `off`.
    fn store_u128(&mut self, v: Value, off: i32) {
        let v = if self.b.func.dfg.value_type(v) == types::I128 { v } else { resize(&mut self.b, v, types::I64) };
        self.b.ins().store(self.mem.scratch, v, self.phv, off);
        if self.b.func.dfg.value_type(v) != types::I128 {
            let zero = self.b.ins().iconst(types::I64, 0);
            self.b.ins().store(self.mem.scratch, zero, self.phv, off + 8);
        }
    }

    /// Reads an argument entry back into a slot, masked to the slot's width.
    fn copy_back(&mut self, off: i32, slot: SlotId) {
        let ty = self.slot_ty(slot);
        let v = self.b.ins().load(container(ty.width()), self.mem.scratch, self.phv, off);
        let v = mask(&mut self.b, v, ty.width());
        self.store_slot(slot, v);
    }

    // -------------------------------------------------------------- deparser

    /// Writes the valid emitted headers in front of the unparsed rest of the
    /// packet: back to front from where the parser stopped, so each header's
    /// place is known when it is written and no pass first sums the valid
    /// headers' lengths. (Traced pipelines then report the emits in order.)
    fn translate_deparser(&mut self) {
        let d = &self.program.deparser;
        let cur = self.b.ins().load(types::I32, self.mem.ctx, self.ctx, ctx_offset::CURSOR);
        let cur = self.b.ins().uextend(types::I64, cur);
        let head = self.b.ins().load(types::I32, self.mem.ctx, self.ctx, ctx_offset::HEAD);
        let head = self.b.ins().uextend(types::I64, head);
        // `ctx.buf` loaded again here: the entry block's copy lives through
        // the whole function, so it sits in a stack slot by now, and each
        // header store would reload it from there.
        let buf = self.b.ins().load(types::I64, self.mem.ctx, self.ctx, ctx_offset::BUF);
        // The first byte the deparser does not write (the payload's).
        let end = self.b.ins().iadd(head, cur);
        // The runtime keeps head >= max_emit_bytes, so `at` cannot go below 0.
        let mut at = end;
        for group in self.validity_groups(&d.emits).into_iter().rev() {
            // A group of runs of rarely valid headers is skipped with one
            // test when none of them is valid; otherwise each run is tested.
            let outer = (group.len() > 1).then(|| {
                let offsets = group.iter().flatten().map(|&h| self.layout.slot(self.program.header(h).valid));
                let first = offsets.min().unwrap_or(0);
                let len = group.iter().map(Vec::len).sum::<usize>() as u32;
                self.skip_unless_any_valid(first, len, at)
            });
            for run in group.iter().rev() {
                at = self.emit_run(run, at, buf);
            }
            if let Some(after) = outer {
                self.b.ins().jump(after, &[BlockArg::Value(at)]);
                self.b.switch_to_block(after);
                at = self.b.block_params(after)[0];
            }
        }
        let emitted = self.b.ins().isub(end, at);
        let new_len = self.b.ins().isub(self.len, cur);
        let new_len = self.b.ins().iadd(new_len, emitted);
        let store32 = |b: &mut FunctionBuilder, v: Value, mem, ctx, offset| {
            let v = b.ins().ireduce(types::I32, v);
            b.ins().store(mem, v, ctx, offset);
        };
        store32(&mut self.b, at, self.mem.ctx, self.ctx, ctx_offset::HEAD);
        store32(&mut self.b, new_len, self.mem.ctx, self.ctx, ctx_offset::LEN);
        // The cursor now covers exactly the emitted headers.
        store32(&mut self.b, emitted, self.mem.ctx, self.ctx, ctx_offset::CURSOR);
        if self.host.trace.is_some() {
            for &h in &d.emits {
                let valid = self.load_slot(self.program.header(h).valid);
                let (yes, next) = (self.b.create_block(), self.b.create_block());
                self.b.ins().brif(valid, yes, &[], next, &[]);
                self.b.switch_to_block(yes);
                self.trace_const(TraceEvent::Emit, h.0, 0);
                self.b.ins().jump(next, &[]);
                self.b.switch_to_block(next);
            }
        }
    }

    /// Emits the valid headers of one run of [`Self::validity_runs`] in
    /// front of `at` (the packet offset the next header ends at), back to
    /// front; returns where the first one written starts (`at` when none
    /// is valid). A run of at least [`MIN_VALIDITY_RUN`] headers (a header
    /// stack's elements, their validity bytes adjacent: `Layout::new`) is
    /// skipped with one test when none of them is valid, the usual case
    /// for optional headers.
    fn emit_run(&mut self, run: &[ir::HeaderId], mut at: Value, buf: Value) -> Value {
        let skip = (run.len() >= MIN_VALIDITY_RUN).then(|| {
            let first = self.layout.slot(self.program.header(run[0]).valid);
            self.skip_unless_any_valid(first, run.len() as u32, at)
        });
        for &h in run.iter().rev() {
            let hdr = self.program.header(h);
            let valid = self.load_slot(hdr.valid);
            let write = self.b.create_block();
            let next = self.b.create_block();
            self.b.append_block_param(next, types::I64);
            self.b.ins().brif(valid, write, &[], next, &[BlockArg::Value(at)]);
            self.b.switch_to_block(write);
            let start = self.b.ins().iadd_imm_s(at, -i64::from(hdr.byte_len));
            let out = self.b.ins().iadd(buf, start);
            self.emit_in_place_or_whole(h, out);
            self.b.ins().jump(next, &[BlockArg::Value(start)]);
            self.b.switch_to_block(next);
            at = self.b.block_params(next)[0];
        }
        if let Some(after) = skip {
            self.b.ins().jump(after, &[BlockArg::Value(at)]);
            self.b.switch_to_block(after);
            at = self.b.block_params(after)[0];
        }
        at
    }

    /// Tests the `len` validity bytes from PHV offset `offset` at once:
    /// none set jumps to the returned block (taking `at` as its `i64`
    /// parameter), which the caller switches to after testing each header;
    /// the builder is left where at least one is set.
    fn skip_unless_any_valid(&mut self, offset: u32, len: u32, at: Value) -> Block {
        let any = self.any_byte_set(offset, len);
        let (test_each, after) = (self.b.create_block(), self.b.create_block());
        self.b.append_block_param(after, types::I64);
        self.b.ins().brif(any, test_each, &[], after, &[BlockArg::Value(at)]);
        self.b.switch_to_block(test_each);
        after
    }

    /// The deparser's emits cut into runs ([`Self::validity_runs`]) and
    /// the runs into groups, in emit order: consecutive runs of rarely
    /// valid headers ([`rarely_valid`]) whose validity bytes together are
    /// adjacent, at least [`MIN_RARE_GROUP`] headers in all, form one
    /// group (an ICMP error's quoted headers, say, which the fast path
    /// then skips with one test instead of one per header); any other run
    /// is a group of its own.
    fn validity_groups(&self, emits: &[ir::HeaderId]) -> Vec<Vec<Vec<ir::HeaderId>>> {
        let rare = rarely_valid(self.program);
        let is_rare = |h: &ir::HeaderId| rare.get(h.index()).copied().unwrap_or(false);
        let span = |run: &[ir::HeaderId]| {
            let offs = run.iter().map(|&h| self.layout.slot(self.program.header(h).valid));
            (offs.clone().min().unwrap_or(0), offs.max().unwrap_or(0))
        };
        // Groups so far: their runs, whether all rare, their validity bytes' first and last offset.
        type Group = (Vec<Vec<ir::HeaderId>>, bool, (u32, u32));
        let mut groups: Vec<Group> = Vec::new();
        for run in self.validity_runs(emits) {
            let rare_run = run.iter().all(is_rare);
            let (lo, hi) = span(&run);
            match groups.last_mut() {
                Some((group, true, (glo, ghi))) if rare_run && (lo == *ghi + 1 || hi + 1 == *glo) => {
                    (*glo, *ghi) = ((*glo).min(lo), (*ghi).max(hi));
                    group.push(run);
                }
                _ => groups.push((vec![run], rare_run, (lo, hi))),
            }
        }
        let mut out = Vec::new();
        for (group, _, _) in groups {
            if group.len() > 1 && group.iter().map(Vec::len).sum::<usize>() < MIN_RARE_GROUP {
                out.extend(group.into_iter().map(|run| vec![run]));
            } else {
                out.push(group);
            }
        }
        out
    }

    /// The deparser's emits cut into runs, in emit order: consecutive
    /// headers of one type whose validity bytes follow each other in the
    /// PHV (a header stack's elements; a run of headers of several types
    /// would mix headers that are usually valid with ones that usually are
    /// not, and its test would seldom skip anything).
    fn validity_runs(&self, emits: &[ir::HeaderId]) -> Vec<Vec<ir::HeaderId>> {
        let mut runs: Vec<Vec<ir::HeaderId>> = Vec::new();
        let mut last: Option<(u32, ir::HeaderTypeId)> = None;
        for &h in emits {
            let hdr = self.program.header(h);
            let off = self.layout.slot(hdr.valid);
            match runs.last_mut() {
                Some(run) if last.is_some_and(|(o, ty)| o + 1 == off && ty == hdr.ty) => run.push(h),
                _ => runs.push(vec![h]),
            }
            last = Some((off, hdr.ty));
        }
        runs
    }

    /// Whether any of the `len` (at least 2) PHV bytes from `offset` is not
    /// zero: two loads that overlap as needed, or'ed. The loads may span
    /// several slots, so they carry no slot's alias region.
    fn any_byte_set(&mut self, offset: u32, len: u32) -> Value {
        let t = match len {
            0..=3 => types::I16,
            4..=7 => types::I32,
            _ => types::I64,
        };
        let mem = MemFlagsData::new().with_notrap();
        let mut any = None;
        let mut at = offset;
        let end = offset + len;
        while at < end {
            let from = at.min(end - t.bytes());
            let v = self.b.ins().load(t, mem, self.phv, from as i32);
            any = Some(match any {
                Some(a) => self.b.ins().bor(a, v),
                None => v,
            });
            at = from + t.bytes();
        }
        let any = any.unwrap_or_else(|| self.b.ins().iconst(t, 0));
        self.b.ins().icmp_imm_u(IntCC::NotEqual, any, 0)
    }

    /// The variable [`Self::extract_at`] of `h` (declared at first use), if
    /// the deparser may write `h` in place.
    fn extract_var(&mut self, h: ir::HeaderId) -> Option<Variable> {
        self.in_place.get(h.index())?.as_ref()?;
        if let Some(v) = self.extract_at[h.index()] {
            return Some(v);
        }
        let v = self.b.declare_var(types::I64);
        self.extract_at[h.index()] = Some(v);
        Some(v)
    }

    /// `pkt.emit(h)` of a valid header at `out`: when `out` is where `h`
    /// was last extracted from, only the bytes of its [`Self::in_place`]
    /// ranges (the others are the packet's own, which nothing has written
    /// since: the deparser writes back to front, so everything it wrote so
    /// far lies after `h`); otherwise, or without such ranges, every byte.
    fn emit_in_place_or_whole(&mut self, h: ir::HeaderId, out: Value) {
        let Some(var) = self.extract_var(h) else {
            self.translate_emit(h, out);
            return;
        };
        let ranges = self.in_place[h.index()].clone().unwrap_or_default();
        let from = self.b.use_var(var);
        let same = self.b.ins().icmp(IntCC::Equal, out, from);
        let (in_place, whole, done) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        self.b.ins().brif(same, in_place, &[], whole, &[]);
        self.b.switch_to_block(in_place);
        self.emit_bytes(h, out, &ranges);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(whole);
        self.translate_emit(h, out);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
    }

    /// `pkt.emit(h)` of a header known to be valid, at `out`.
    fn translate_emit(&mut self, header: ir::HeaderId, out: Value) {
        let len = self.program.header(header).byte_len;
        self.emit_bytes(header, out, &[std::ops::Range { start: 0, end: len }]);
    }

    /// Writes bytes `ranges` of header `h` at `out` (its first byte),
    /// big-endian, from the fields with a bit in them.
    fn emit_bytes(&mut self, h: ir::HeaderId, out: Value, ranges: &[std::ops::Range<u32>]) {
        let mut fields = Vec::new();
        for (slot, bit_off, width) in wire_fields(self.program, self.program.header(h)) {
            let (lo, hi) = (bit_off, bit_off + u32::from(width));
            if ranges.iter().any(|r| lo < r.end * 8 && hi > r.start * 8) {
                let value = self.load_slot_wide(slot);
                fields.push(FieldValue { bit_off, width, value });
            }
        }
        for r in ranges {
            wire::store_be_range(&mut self.b, self.mem.packet, out, r.clone(), &fields);
        }
    }

    // ----------------------------------------------------------- expressions

    /// An expression's value in the container of its type, masked to its width.
    fn eval(&mut self, id: ExprId) -> Result<Value, JitError> {
        let e = self.program.exprs.get(id.index()).ok_or_else(|| bad("expression id out of range"))?;
        let ty = e.ty;
        let t = container(ty.width());
        Ok(match e.kind {
            ExprKind::Const(c) => iconst(&mut self.b, t, c & ty.mask()),
            ExprKind::Slot(s) => {
                let v = self.load_slot(s);
                self.coerce(v, self.slot_ty(s), ty)
            }
            ExprKind::Unary(op, a) => self.translate_unary(op, a, ty)?,
            ExprKind::Binary(op @ (BinOp::And | BinOp::Or), a, b) if self.has_lookahead(b) => {
                self.translate_short_circuit(op, a, b)?
            }
            ExprKind::Binary(op, a, b) => self.translate_binary(op, a, b, ty)?,
            ExprKind::Slice { base, lo, .. } => {
                let v = self.eval(base)?;
                let v = wire::shr_c(&mut self.b, v, u32::from(lo));
                let v = resize(&mut self.b, v, t);
                mask(&mut self.b, v, ty.width())
            }
            ExprKind::Cast(a) => {
                let v = self.eval(a)?;
                self.coerce(v, self.program.expr(a).ty, ty)
            }
            // A 128-bit `?:` branches too: Cranelift rewrites `a < b ? a : b`
            // as a select into `umin` (and kin), which x64 cannot lower for i128.
            ExprKind::Cond(c, a, b)
                if self.has_lookahead(a) || self.has_lookahead(b) || container(ty.width()) == types::I128 =>
            {
                self.translate_lazy_cond(c, a, b, ty)?
            }
            ExprKind::Cond(c, a, b) => {
                let (ta, tb) = (self.program.expr(a).ty, self.program.expr(b).ty);
                let c = self.eval(c)?;
                let a = self.eval(a)?;
                let a = self.coerce(a, ta, ty);
                let b = self.eval(b)?;
                let b = self.coerce(b, tb, ty);
                self.b.ins().select(c, a, b)
            }
            ExprKind::Lookahead => self.translate_lookahead(ty.width())?,
        })
    }

    /// Whether evaluating `e` may read the packet (and so truncate): only then
    /// does the order and laziness of `&&`, `||` and `?:` matter, since
    /// expressions are otherwise pure.
    fn has_lookahead(&self, e: ExprId) -> bool {
        let Some(x) = self.program.exprs.get(e.index()) else { return false };
        match x.kind {
            ExprKind::Lookahead => true,
            ExprKind::Const(_) | ExprKind::Slot(_) => false,
            ExprKind::Unary(_, a) | ExprKind::Cast(a) | ExprKind::Slice { base: a, .. } => self.has_lookahead(a),
            ExprKind::Binary(_, a, b) => self.has_lookahead(a) || self.has_lookahead(b),
            ExprKind::Cond(c, a, b) => self.has_lookahead(c) || self.has_lookahead(a) || self.has_lookahead(b),
        }
    }

    /// `a && b` / `a || b` evaluating `b` only when needed (it contains a lookahead).
    fn translate_short_circuit(&mut self, op: BinOp, a: ExprId, b: ExprId) -> Result<Value, JitError> {
        let va = self.eval(a)?;
        let va = resize(&mut self.b, va, types::I8);
        let rhs = self.b.create_block();
        let join = self.b.create_block();
        let result = self.b.append_block_param(join, types::I8);
        if op == BinOp::And {
            self.b.ins().brif(va, rhs, &[], join, &[BlockArg::Value(va)]);
        } else {
            self.b.ins().brif(va, join, &[BlockArg::Value(va)], rhs, &[]);
        }
        self.b.switch_to_block(rhs);
        let vb = self.eval(b)?;
        let vb = resize(&mut self.b, vb, types::I8);
        self.b.ins().jump(join, &[BlockArg::Value(vb)]);
        self.b.switch_to_block(join);
        Ok(result)
    }

    /// `c ? a : b` evaluating only the chosen operand (one contains a
    /// lookahead, or the value is 128 bits wide).
    fn translate_lazy_cond(&mut self, c: ExprId, a: ExprId, b: ExprId, ty: Ty) -> Result<Value, JitError> {
        let vc = self.eval(c)?;
        let (then, els, join) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        let result = self.b.append_block_param(join, container(ty.width()));
        self.b.ins().brif(vc, then, &[], els, &[]);
        for (block, e) in [(then, a), (els, b)] {
            self.b.switch_to_block(block);
            let v = self.eval(e)?;
            let v = self.coerce(v, self.program.expr(e).ty, ty);
            self.b.ins().jump(join, &[BlockArg::Value(v)]);
        }
        self.b.switch_to_block(join);
        Ok(result)
    }

    /// `-a`, `~a`, `!a`.
    fn translate_unary(&mut self, op: UnOp, a: ExprId, ty: Ty) -> Result<Value, JitError> {
        let v = self.eval(a)?;
        let v = self.coerce(v, self.program.expr(a).ty, ty);
        Ok(match op {
            UnOp::Neg => {
                let n = self.b.ins().ineg(v);
                mask(&mut self.b, n, ty.width())
            }
            UnOp::BitNot => {
                let n = self.b.ins().bnot(v);
                mask(&mut self.b, n, ty.width())
            }
            UnOp::Not => {
                let one = self.b.ins().iconst(types::I8, 1);
                let v = resize(&mut self.b, v, types::I8);
                self.b.ins().bxor(v, one)
            }
        })
    }

    /// Binary operators (semantics in the `ir` module docs).
    fn translate_binary(&mut self, op: BinOp, a: ExprId, b: ExprId, ty: Ty) -> Result<Value, JitError> {
        let (ta, tb) = (self.program.expr(a).ty, self.program.expr(b).ty);
        let va = self.eval(a)?;
        let vb = self.eval(b)?;
        let w = ty.width();
        Ok(match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor => {
                // Operands have the result's width (checker); coerce defends the container.
                let x = self.coerce(va, ta, ty);
                let y = self.coerce(vb, tb, ty);
                let r = match op {
                    BinOp::Add => self.b.ins().iadd(x, y),
                    BinOp::Sub => self.b.ins().isub(x, y),
                    BinOp::Mul => self.b.ins().imul(x, y),
                    BinOp::BitAnd => self.b.ins().band(x, y),
                    BinOp::BitOr => self.b.ins().bor(x, y),
                    _ => self.b.ins().bxor(x, y),
                };
                mask(&mut self.b, r, w)
            }
            BinOp::SatAdd | BinOp::SatSub => {
                let x = self.coerce(va, ta, ty);
                let y = self.coerce(vb, tb, ty);
                let t = container(w);
                // Branch-free and without `select`: Cranelift rewrites a
                // select on a compare into `umin`, which x64 lacks for i128.
                if op == BinOp::SatSub {
                    // 0 when the right side is larger: the difference ANDed
                    // with `under - 1` (0 when under, all ones otherwise).
                    let d = self.b.ins().isub(x, y);
                    let under = self.b.ins().icmp(IntCC::UnsignedLessThan, x, y);
                    let under = resize(&mut self.b, under, t);
                    let keep = self.b.ins().iadd_imm_s(under, -1);
                    self.b.ins().band(d, keep)
                } else {
                    // 2^W - 1 when the sum passes it: the sum ORed with all
                    // ones when it overflowed, then masked to W bits.
                    // Operands are below 2^W, so the sum has at most one bit
                    // above W (bit W: `s >> W` is the overflow) unless W fills
                    // the container; then the sum wraps to below an operand.
                    let s = self.b.ins().iadd(x, y);
                    let over = if u32::from(w) == t.bits() {
                        let o = self.b.ins().icmp(IntCC::UnsignedLessThan, s, x);
                        resize(&mut self.b, o, t)
                    } else {
                        wire::shr_c(&mut self.b, s, u32::from(w))
                    };
                    let all = self.b.ins().ineg(over);
                    let r = self.b.ins().bor(s, all);
                    mask(&mut self.b, r, w)
                }
            }
            BinOp::Shl | BinOp::Shr => {
                let x = self.coerce(va, ta, ty);
                // Shifts by >= W give 0; Cranelift would reduce the amount modulo
                // the container, so the guard is explicit.
                let limit = iconst(&mut self.b, container(tb.width()), u128::from(w));
                let big = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, vb, limit);
                let amt = resize(&mut self.b, vb, types::I32);
                let r = if op == BinOp::Shl { self.b.ins().ishl(x, amt) } else { self.b.ins().ushr(x, amt) };
                let r = mask(&mut self.b, r, w);
                let zero = iconst(&mut self.b, container(w), 0);
                self.b.ins().select(big, zero, r)
            }
            BinOp::Concat => {
                let t = container(w);
                let hi = resize(&mut self.b, va, t);
                let hi = wire::shl_c(&mut self.b, hi, u32::from(tb.width()));
                let lo = resize(&mut self.b, vb, t);
                self.b.ins().bor(hi, lo)
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                // Equal widths (checker); widen the narrower container if not.
                let wide = if container(ta.width()).bits() >= container(tb.width()).bits() { ta } else { tb };
                let x = self.coerce(va, ta, Ty::Bit(wide.width()));
                let y = self.coerce(vb, tb, Ty::Bit(wide.width()));
                let cc = match op {
                    BinOp::Eq => IntCC::Equal,
                    BinOp::Ne => IntCC::NotEqual,
                    BinOp::Lt => IntCC::UnsignedLessThan,
                    BinOp::Le => IntCC::UnsignedLessThanOrEqual,
                    BinOp::Gt => IntCC::UnsignedGreaterThan,
                    _ => IntCC::UnsignedGreaterThanOrEqual,
                };
                self.b.ins().icmp(cc, x, y)
            }
            BinOp::And | BinOp::Or => {
                let x = resize(&mut self.b, va, types::I8);
                let y = resize(&mut self.b, vb, types::I8);
                if op == BinOp::And {
                    self.b.ins().band(x, y)
                } else {
                    self.b.ins().bor(x, y)
                }
            }
        })
    }

    /// Converts a value of type `from` to type `to`: zero-extend or truncate
    /// and mask (`bool` is `bit<1>`).
    fn coerce(&mut self, v: Value, from: Ty, to: Ty) -> Value {
        let v = resize(&mut self.b, v, container(to.width()));
        if to.width() < from.width() {
            mask(&mut self.b, v, to.width())
        } else {
            v
        }
    }

    // ---------------------------------------------------------------- slots

    /// The type of a slot.
    fn slot_ty(&self, s: SlotId) -> Ty {
        // Invariant (checker): every SlotId in the IR indexes `Program::slots`.
        self.program.slot(s).ty
    }

    /// The memory flags of a slot's accesses (its own alias region).
    fn slot_mem(&mut self, s: SlotId) -> MemFlagsData {
        // Invariant (checker): every SlotId in the IR indexes `Program::slots`.
        if let Some(m) = self.slot_mem[s.index()] {
            return m;
        }
        let region = self.b.func.dfg.alias_regions.insert(AliasRegionData {
            user_id: FIRST_SLOT_REGION + s.0,
            description: self.program.slot(s).name.clone().into(),
        });
        let m = MemFlagsData::new().with_notrap().with_alias_region(Some(region));
        self.slot_mem[s.index()] = Some(m);
        m
    }

    /// An expression's value for a use that widens it to 64 bits anyway
    /// (a packed table key, an extern argument): a read of a whole slot of
    /// at most 64 bits is loaded zero-extended to `i64` by the load itself
    /// ([`Self::load_slot_wide`]), where [`Self::eval`]'s narrow load and
    /// a later `uextend` would be two instructions (Cranelift keeps the
    /// extension of a load it cannot merge with it); anything else is
    /// [`Self::eval`]'s value. Either way the value is masked to the
    /// expression's width, in a container at least as wide as its own.
    fn eval_wide(&mut self, id: ExprId) -> Result<Value, JitError> {
        let e = self.program.exprs.get(id.index()).ok_or_else(|| bad("expression id out of range"))?;
        match e.kind {
            ExprKind::Slot(s) if self.slot_ty(s).width() == e.ty.width() && e.ty.width() <= 64 => {
                Ok(self.load_slot_wide(s))
            }
            _ => self.eval(id),
        }
    }

    /// The operands of a tree of `++` at `e`, left to right (`e` itself
    /// when it is no concatenation, or one whose width is not its
    /// operands' sum, which the checker never makes): the same
    /// bit-string, in pieces.
    fn concat_operands(&self, e: ExprId) -> Vec<ExprId> {
        let w = |x: ExprId| u32::from(self.program.expr(x).ty.width());
        match self.program.exprs.get(e.index()).map(|x| x.kind) {
            Some(ExprKind::Binary(BinOp::Concat, a, b)) if w(a) + w(b) == w(e) => {
                let mut parts = self.concat_operands(a);
                parts.extend(self.concat_operands(b));
                parts
            }
            _ => vec![e],
        }
    }

    /// Loads a slot from the PHV (the hint pass: reads its variable).
    fn load_slot(&mut self, s: SlotId) -> Value {
        if let Some(var) = self.hint_var(s) {
            return self.b.use_var(var);
        }
        let t = container(self.slot_ty(s).width());
        // Invariant (Layout::new): one offset per slot.
        let off = self.layout.slot(s) as i32;
        let mem = self.slot_mem(s);
        self.b.ins().load(t, mem, self.phv, off)
    }

    /// A slot's value zero-extended to `i64` by the load itself (slots of
    /// more than 64 bits in their `i128` container), for assembling
    /// header bytes: a narrow load and a separate extension would be two
    /// instructions.
    fn load_slot_wide(&mut self, s: SlotId) -> Value {
        if let Some(var) = self.hint_var(s) {
            let v = self.b.use_var(var);
            let narrow = self.b.func.dfg.value_type(v).bits() < 64;
            return if narrow { self.b.ins().uextend(types::I64, v) } else { v };
        }
        let off = self.layout.slot(s) as i32;
        let mem = self.slot_mem(s);
        match container(self.slot_ty(s).width()) {
            types::I8 => self.b.ins().uload8(types::I64, mem, self.phv, off),
            types::I16 => self.b.ins().uload16(types::I64, mem, self.phv, off),
            types::I32 => self.b.ins().uload32(mem, self.phv, off),
            t => self.b.ins().load(t, mem, self.phv, off),
        }
    }

    /// Stores a value (already in the slot's container, masked) into a slot.
    fn store_slot(&mut self, s: SlotId, v: Value) {
        let t = container(self.slot_ty(s).width());
        let v = resize(&mut self.b, v, t);
        if let Some(var) = self.hint_var(s) {
            self.b.def_var(var, v);
            return;
        }
        let off = self.layout.slot(s) as i32;
        let mem = self.slot_mem(s);
        self.b.ins().store(mem, v, self.phv, off);
    }

    /// The hint pass's variable for slot `s` (declared with the slot's
    /// container type at first use); `None` in the pipeline.
    fn hint_var(&mut self, s: SlotId) -> Option<Variable> {
        self.hint_vars.as_ref()?;
        let t = container(self.slot_ty(s).width());
        let vars = self.hint_vars.as_mut()?;
        Some(*vars.entry(s).or_insert_with(|| self.b.declare_var(t)))
    }

    // ---------------------------------------------------------------- trace

    /// A trace call with constant arguments (nothing when tracing is off).
    fn trace_const(&mut self, ev: TraceEvent, a: u32, b: u32) {
        if self.host.trace.is_some() {
            let a = self.b.ins().iconst(types::I32, i64::from(a));
            let b = self.b.ins().iconst(types::I32, i64::from(b));
            self.trace(ev, a, b);
        }
    }

    /// A trace call (nothing when tracing is off).
    fn trace(&mut self, ev: TraceEvent, a: Value, b: Value) {
        if let Some(f) = self.host.trace {
            let e = self.b.ins().iconst(types::I32, ev as i64);
            self.b.ins().call(f, &[self.ctx, e, a, b]);
        }
    }
}

/// One flattened extern argument: its value (masked to its width, in its
/// container or, read straight from a slot, zero-extended to `i64`:
/// [`FunctionTranslator::eval_wide`]), its width, which written argument
/// it belongs to and the slot an `out`/`inout` argument copies back to.
struct ArgEntry {
    arg: usize,
    value: Value,
    width: u16,
    slot: Option<SlotId>,
    /// An `out` argument (the callee sees 0).
    out: bool,
}

/// Prelude functions whose meaning is fixed by the prelude and the runtime
/// (`runtime/src/externs/`), pure apart from their documented writes, which
/// the JIT computes inline rather than through [`crate::abi::EXTERN_CALL`].
/// The differential test holds them to the runtime's implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Intrinsic {
    /// `mark_to_drop(std)`: `std.drop = 1`.
    MarkToDrop,
    /// `csum16(data)`: RFC 1071 checksum of the data's bit-string.
    Csum16,
    /// `csum16_replace(csum, old, new)`: RFC 1624 eqn. 3 update of `csum`.
    Csum16Replace,
}

impl Intrinsic {
    /// The intrinsic a call site calls, if the call has the shape the
    /// runtime accepts (anything else goes to the host, which reports it).
    fn of(program: &ir::Program, call: &ir::ExternCall) -> Option<Intrinsic> {
        use ir::ExternArg::{In, InOut, List};
        let ir::Callee::Function(f) = call.callee else { return None };
        let decl = program.extern_fns.get(f.index())?;
        if decl.span.source != crate::span::SourceId::PRELUDE {
            return None;
        }
        let data = |a: &ir::ExternArg| matches!(a, In(_) | List(_));
        match (decl.sig.name.as_str(), call.args.as_slice()) {
            ("mark_to_drop", _) => Some(Intrinsic::MarkToDrop),
            ("csum16", [d]) if data(d) => Some(Intrinsic::Csum16),
            ("csum16_replace", [InOut(_), old, new]) if data(old) && data(new) => Some(Intrinsic::Csum16Replace),
            _ => None,
        }
    }
}

/// The address of `table`'s `abi::TableImage` in the array at `images`.
fn image_address(images: u64, table: ir::TableId) -> u64 {
    images.wrapping_add(std::mem::size_of::<TableImage>() as u64 * u64::from(table.0))
}

/// The slots the parser's states read, by slot index: in select keys, in
/// statements' expressions (hint arguments included) and, conservatively,
/// every slot an assignment writes (a slice assignment reads its slot).
fn parser_reads(program: &ir::Program) -> Vec<bool> {
    let mut read = vec![false; program.slots.len()];
    let mut todo: Vec<ExprId> = Vec::new();
    for st in program.parser.graph.node_weights() {
        todo.extend(st.select.iter().copied());
        for stmt in &st.stmts {
            match &stmt.kind {
                StmtKind::Assign { dst, src } => {
                    if let Some(r) = read.get_mut(dst.slot.index()) {
                        *r = true;
                    }
                    todo.push(*src);
                }
                StmtKind::Advance { bits } => todo.push(*bits),
                StmtKind::Verify { cond, .. } => todo.push(*cond),
                StmtKind::ExtractNext { next, .. } => {
                    if let Some(r) = read.get_mut(next.index()) {
                        *r = true;
                    }
                }
                StmtKind::Extern { call, .. } => {
                    for arg in &call.args {
                        match arg {
                            ir::ExternArg::In(e) => todo.push(*e),
                            ir::ExternArg::List(items) => todo.extend(items.iter().copied()),
                            ir::ExternArg::Out(s) | ir::ExternArg::InOut(s) => {
                                if let Some(r) = read.get_mut(s.index()) {
                                    *r = true;
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    while let Some(e) = todo.pop() {
        match program.expr(e).kind {
            ExprKind::Slot(s) => {
                if let Some(r) = read.get_mut(s.index()) {
                    *r = true;
                }
            }
            ExprKind::Unary(_, a) | ExprKind::Cast(a) | ExprKind::Slice { base: a, .. } => todo.push(a),
            ExprKind::Binary(_, a, b) => todo.extend([a, b]),
            ExprKind::Cond(c, a, b) => todo.extend([c, a, b]),
            ExprKind::Const(_) | ExprKind::Lookahead => {}
        }
    }
    read
}

/// The depth (transitions from the parser's start) from which a state's
/// headers count as rarely valid ([`rarely_valid`]): start, network and
/// transport layers are states 0, 1 and 2 of a plain Ethernet parser;
/// deeper ones parse what an ICMP error quotes or a tunnel carries.
const RARE_STATE_DEPTH: usize = 3;

/// A header's fields in wire order: each one's slot, its first bit (from
/// the header's most significant bit) and its width.
fn wire_fields(program: &ir::Program, hdr: &ir::Header) -> Vec<(SlotId, u32, u16)> {
    let ht = &program.header_types[hdr.ty.index()];
    let mut bit_off = 0u32;
    hdr.fields
        .iter()
        .zip(&ht.fields)
        .map(|(&slot, &(_, width))| {
            let at = bit_off;
            bit_off += u32::from(width);
            (slot, at, width)
        })
        .collect()
}

/// Per header (by index), the byte ranges the deparser writes when the
/// header goes back to the bytes it was extracted from: the runs of bytes
/// with a bit of a field that something other than `extract` writes
/// (`flow::written_only_by_extract`). `None` for a header no parser state
/// extracts, or with fewer than [`MIN_IN_PLACE_BYTES`] bytes to skip.
pub(super) fn in_place_ranges(program: &ir::Program) -> Vec<Option<Vec<std::ops::Range<u32>>>> {
    let only = crate::flow::written_only_by_extract(program);
    let mut extracted = vec![false; program.headers.len()];
    for stmt in program.parser.graph.node_weights().flat_map(|st| &st.stmts) {
        let heads = match &stmt.kind {
            StmtKind::Extract { header } => std::slice::from_ref(header),
            StmtKind::ExtractNext { elems, .. } => &elems[..],
            _ => &[],
        };
        for h in heads {
            if let Some(e) = extracted.get_mut(h.index()) {
                *e = true;
            }
        }
    }
    program
        .headers
        .iter()
        .enumerate()
        .map(|(i, hdr)| {
            if !extracted[i] {
                return None;
            }
            // Per byte: whether a field something else writes has a bit in it.
            let mut written = vec![false; hdr.byte_len as usize];
            for (slot, bit_off, width) in wire_fields(program, hdr) {
                let end = bit_off + u32::from(width);
                if !only.get(slot.index()).copied().unwrap_or(false) {
                    for byte in bit_off / 8..end.div_ceil(8) {
                        if let Some(w) = written.get_mut(byte as usize) {
                            *w = true;
                        }
                    }
                }
            }
            let skipped = written.iter().filter(|w| !**w).count() as u32;
            if skipped < MIN_IN_PLACE_BYTES {
                return None;
            }
            let mut ranges: Vec<std::ops::Range<u32>> = Vec::new();
            for (byte, _) in written.iter().enumerate().filter(|(_, w)| **w) {
                let byte = byte as u32;
                match ranges.last_mut() {
                    Some(r) if r.end == byte => r.end = byte + 1,
                    _ => ranges.push(byte..byte + 1),
                }
            }
            Some(ranges)
        })
        .collect()
}

/// Per header (by index), whether the deparser should expect it invalid:
/// a header stack's element (`extract(s.next)`), a header no reachable
/// parser state extracts (made valid by the controls, if at all), or one
/// extracted only in states at least [`RARE_STATE_DEPTH`] transitions from
/// the start. Only a guess, for grouping validity tests
/// ([`FunctionTranslator::validity_groups`]): a wrong one costs a test.
pub(super) fn rarely_valid(program: &ir::Program) -> Vec<bool> {
    let parser = &program.parser;
    let mut depth: Vec<Option<usize>> = vec![None; program.headers.len()];
    let mut stacked = vec![false; program.headers.len()];
    let mut seen: HashMap<NodeIndex, usize> = HashMap::from([(parser.start, 0)]);
    let mut queue = std::collections::VecDeque::from([parser.start]);
    while let Some(n) = queue.pop_front() {
        let d = seen[&n];
        let Some(st) = parser.graph.node_weight(n) else { continue };
        for stmt in &st.stmts {
            match &stmt.kind {
                StmtKind::Extract { header } => {
                    if let Some(x) = depth.get_mut(header.index()) {
                        *x = Some(x.map_or(d, |x| x.min(d)));
                    }
                }
                StmtKind::ExtractNext { elems, .. } => {
                    for h in elems {
                        if let Some(x) = stacked.get_mut(h.index()) {
                            *x = true;
                        }
                    }
                }
                _ => {}
            }
        }
        for arm in &st.arms {
            if let Next::State(m) = arm.next {
                if let std::collections::hash_map::Entry::Vacant(e) = seen.entry(m) {
                    e.insert(d + 1);
                    queue.push_back(m);
                }
            }
        }
    }
    depth.iter().zip(&stacked).map(|(d, &s)| s || d.is_none_or(|d| d >= RARE_STATE_DEPTH)).collect()
}

/// Whether the reachable part of the parser has a cycle (depth-first search
/// over the select arms' targets).
fn has_cycle(parser: &ir::Parser, reachable: &[NodeIndex]) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark: HashMap<NodeIndex, Mark> = reachable.iter().map(|&n| (n, Mark::New)).collect();
    // Iterative DFS: (node, next arm to look at).
    let mut stack = vec![(parser.start, 0usize)];
    mark.insert(parser.start, Mark::Open);
    while let Some(&mut (node, ref mut i)) = stack.last_mut() {
        let arms = &parser.graph[node].arms;
        if *i == arms.len() {
            mark.insert(node, Mark::Done);
            stack.pop();
            continue;
        }
        let next = arms[*i].next;
        *i += 1;
        if let Next::State(n) = next {
            match mark.get(&n).copied().unwrap_or(Mark::Done) {
                Mark::Open => return true,
                Mark::New => {
                    mark.insert(n, Mark::Open);
                    stack.push((n, 0));
                }
                Mark::Done => {}
            }
        }
    }
    false
}

/// An internal error: the IR broke an invariant the checker guarantees.
fn bad(what: &str) -> JitError {
    JitError(format!("malformed IR: {what}"))
}
