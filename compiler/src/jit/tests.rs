//! Tests of the JIT on hand-built IR programs (the front end is tested on its
//! own; these pin the code generator to the `ir`/`abi` semantics with
//! expected bytes and slot values). They live in their own file because they
//! need an IR builder and a mock host.

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};

use super::{compile, CompiledPipeline, JitOptions};
use crate::abi::{self, HostSymbols, Layout, PacketCtx, Verdict};
use crate::ast::{BinOp, UnOp};
use crate::ir::*;
use crate::rng::Rng;
use crate::span::Span;

// ------------------------------------------------------------------ builder

/// Builds a program one item at a time (the checker's job, by hand).
struct B {
    p: Program,
}

impl B {
    fn new() -> B {
        let zero = SlotId(0);
        let mut b = B {
            p: Program {
                header_types: Vec::new(),
                headers: Vec::new(),
                slots: Vec::new(),
                exprs: Vec::new(),
                extern_types: Vec::new(),
                extern_fns: Vec::new(),
                instances: Vec::new(),
                actions: Vec::new(),
                tables: Vec::new(),
                call_sites: 0,
                errors: Vec::new(),
                parser: Parser { name: "P".into(), graph: DiGraph::new(), start: NodeIndex::new(0), span: sp() },
                controls: Vec::new(),
                deparser: Deparser { name: "D".into(), emits: Vec::new(), span: sp() },
                std: StdSlots {
                    ingress_port: zero,
                    egress_spec: zero,
                    packet_length: zero,
                    timestamp: zero,
                    mcast_grp: zero,
                    drop: zero,
                },
            },
        };
        b.p.std = StdSlots {
            ingress_port: b.slot("std.ingress_port", Ty::Bit(9)),
            egress_spec: b.slot("std.egress_spec", Ty::Bit(9)),
            packet_length: b.slot("std.packet_length", Ty::Bit(32)),
            timestamp: b.slot("std.timestamp", Ty::Bit(64)),
            mcast_grp: b.slot("std.mcast_grp", Ty::Bit(16)),
            drop: b.slot("std.drop", Ty::Bit(1)),
        };
        b.p.actions.push(Action {
            name: "NoAction".into(),
            params: Vec::new(),
            body: body(vec![(vec![], Terminator::Return)]),
            span: sp(),
        });
        b
    }

    fn slot(&mut self, name: &str, ty: Ty) -> SlotId {
        self.p.slots.push(Slot { name: name.into(), ty, kind: SlotKind::Meta });
        SlotId(self.p.slots.len() as u32 - 1)
    }

    fn expr(&mut self, kind: ExprKind, ty: Ty) -> ExprId {
        self.p.exprs.push(Expr { kind, ty, span: sp() });
        ExprId(self.p.exprs.len() as u32 - 1)
    }

    fn k(&mut self, v: u128, w: u16) -> ExprId {
        self.expr(ExprKind::Const(v), Ty::Bit(w))
    }

    fn read(&mut self, s: SlotId) -> ExprId {
        let ty = self.p.slots[s.index()].ty;
        self.expr(ExprKind::Slot(s), ty)
    }

    fn bin(&mut self, op: BinOp, a: ExprId, b: ExprId) -> ExprId {
        let (ta, tb) = (self.p.exprs[a.index()].ty, self.p.exprs[b.index()].ty);
        let ty = match op {
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::And | BinOp::Or => Ty::Bool,
            BinOp::Concat => Ty::Bit(ta.width() + tb.width()),
            _ => ta,
        };
        self.expr(ExprKind::Binary(op, a, b), ty)
    }

    fn header(&mut self, name: &str, fields: &[(&str, u16)]) -> HeaderId {
        let id = HeaderId(self.p.headers.len() as u32);
        let ty = HeaderTypeId(self.p.header_types.len() as u32);
        let fields: Vec<(String, u16)> = fields.iter().map(|(n, w)| (n.to_string(), *w)).collect();
        let bit_len: u32 = fields.iter().map(|(_, w)| u32::from(*w)).sum();
        assert_eq!(bit_len % 8, 0, "test header must be whole bytes");
        let slots = fields
            .iter()
            .enumerate()
            .map(|(i, (f, w))| {
                self.p.slots.push(Slot {
                    name: format!("{name}.{f}"),
                    ty: Ty::Bit(*w),
                    kind: SlotKind::HeaderField { header: id, field: i as u32 },
                });
                SlotId(self.p.slots.len() as u32 - 1)
            })
            .collect();
        self.p.slots.push(Slot { name: format!("{name}.$valid"), ty: Ty::Bool, kind: SlotKind::HeaderValid(id) });
        let valid = SlotId(self.p.slots.len() as u32 - 1);
        self.p.header_types.push(HeaderType { name: format!("{name}_t"), fields, bit_len, span: sp() });
        self.p.headers.push(Header { name: name.into(), ty, fields: slots, valid, byte_len: bit_len / 8, span: sp() });
        id
    }

    /// Declares the prelude extern function `name` (signature left empty:
    /// the JIT and the runtime know prelude functions by name).
    fn prelude_fn(&mut self, name: &str) -> ExternFnId {
        let span = Span { source: crate::span::SourceId::PRELUDE, lo: 0, hi: 0 };
        let sig = MethodSig { name: name.into(), type_params: vec![], params: vec![], ret: None };
        self.p.extern_fns.push(ExternFn { sig, span });
        ExternFnId(self.p.extern_fns.len() as u32 - 1)
    }

    fn field(&self, h: HeaderId, f: &str) -> SlotId {
        let hdr = &self.p.headers[h.index()];
        let i = self.p.header_types[hdr.ty.index()].fields.iter().position(|(n, _)| n == f).unwrap();
        hdr.fields[i]
    }

    fn action(
        &mut self,
        name: &str,
        params: &[(&str, u16)],
        blocks: Vec<(Vec<Stmt>, Terminator)>,
    ) -> (ActionId, Vec<SlotId>) {
        let id = ActionId(self.p.actions.len() as u32);
        let params: Vec<SlotId> = params
            .iter()
            .enumerate()
            .map(|(i, (n, w))| {
                self.p.slots.push(Slot {
                    name: format!("{name}.{n}"),
                    ty: Ty::Bit(*w),
                    kind: SlotKind::ActionParam { action: id, index: i as u32 },
                });
                SlotId(self.p.slots.len() as u32 - 1)
            })
            .collect();
        self.p.actions.push(Action { name: name.into(), params: params.clone(), body: body(blocks), span: sp() });
        (id, params)
    }

    /// A one-state parser extracting `hs` in order, then accept.
    fn simple_parser(&mut self, hs: &[HeaderId]) {
        let mut graph = DiGraph::new();
        let start = graph.add_node(ParserState {
            name: "start".into(),
            stmts: hs.iter().map(|&h| st(StmtKind::Extract { header: h })).collect(),
            select: Vec::new(),
            arms: vec![arm(vec![], Next::Accept)],
            span: sp(),
        });
        self.p.parser = Parser { name: "P".into(), graph, start, span: sp() };
    }

    fn control(&mut self, blocks: Vec<(Vec<Stmt>, Terminator)>) {
        let name = format!("C{}", self.p.controls.len());
        self.p.controls.push(Control { name, body: body(blocks), span: sp() });
    }
}

fn sp() -> Span {
    Span::default()
}

fn st(kind: StmtKind) -> Stmt {
    Stmt { kind, span: sp() }
}

/// `ret = f({ list })`, call site `site`: a prelude function of one list
/// argument (`csum16`).
fn list_call(f: ExternFnId, site: u32, list: Vec<ExprId>, ret: SlotId) -> Stmt {
    st(StmtKind::Extern {
        call: ExternCall { site: CallSiteId(site), callee: Callee::Function(f), args: vec![ExternArg::List(list)] },
        ret: Some(ret),
    })
}

fn assign(slot: SlotId, src: ExprId) -> Stmt {
    st(StmtKind::Assign { dst: LValue { slot, slice: None }, src })
}

fn arm(keys: Vec<KeyMatch>, next: Next) -> SelectArm {
    SelectArm { keys, next, span: sp() }
}

fn n(i: usize) -> NodeIndex {
    NodeIndex::new(i)
}

/// A body from blocks in graph order; edges derived from the terminators.
fn body(blocks: Vec<(Vec<Stmt>, Terminator)>) -> Body {
    let mut graph = DiGraph::new();
    for (stmts, term) in &blocks {
        graph.add_node(BasicBlock { stmts: stmts.clone(), term: term.clone() });
    }
    for (i, (_, term)) in blocks.iter().enumerate() {
        let from = n(i);
        match term {
            Terminator::Goto(t) => {
                graph.add_edge(from, *t, Edge::Goto);
            }
            Terminator::Branch { then, els, .. } => {
                graph.add_edge(from, *then, Edge::True);
                graph.add_edge(from, *els, Edge::False);
            }
            Terminator::Switch { cases, default, .. } => {
                for (a, t) in cases {
                    graph.add_edge(from, *t, Edge::Case(*a));
                }
                graph.add_edge(from, *default, Edge::Default);
            }
            Terminator::Return | Terminator::Exit => {}
        }
    }
    Body { graph, entry: n(0) }
}

// --------------------------------------------------------------- mock host

/// A mock TABLE_APPLY answer: the result word, and (offset, type, value)
/// triples written into the PHV first (the action's parameters).
type MockAnswer = (u32, Vec<(u32, Ty, u128)>);

/// What the mock host functions do; `ctx.user` points at it.
#[derive(Default)]
struct Mock {
    /// Table id → its answer.
    tables: HashMap<u32, MockAnswer>,
    /// Keys seen by TABLE_APPLY (table, first key's raw u64 at its offset).
    seen_keys: Vec<(u32, u128)>,
    /// Extern call sites seen, with the argument array at call time.
    externs: Vec<(u32, Vec<u128>)>,
    /// Values the mock extern writes into the argument array (index → value).
    extern_writes: Vec<(usize, u128)>,
    trace: Vec<(u32, u32, u32)>,
    layout: Option<Layout>,
    key_width: u16,
    /// The parameter values `mock_lookup` last pointed the pipeline at.
    lookup_params: Vec<u128>,
}

fn mock(ctx: *mut PacketCtx) -> (&'static mut Mock, &'static mut [u8]) {
    // SAFETY (test only): `user` points at the `Mock` owned by `run`, the PHV
    // at its buffer of `phv_size` bytes; both outlive the pipeline call.
    unsafe {
        let ctx = &mut *ctx;
        let m = &mut *(ctx.user as *mut Mock);
        let size = m.layout.as_ref().unwrap().phv_size as usize;
        (m, std::slice::from_raw_parts_mut(ctx.phv, size))
    }
}

unsafe extern "C" fn mock_apply(ctx: *mut PacketCtx, table: u32) -> u32 {
    let (m, phv) = mock(ctx);
    let layout = m.layout.as_ref().unwrap();
    if let Some(&off) = layout.table_keys[table as usize].first() {
        m.seen_keys.push((table, abi::read_value(phv, off, Ty::Bit(m.key_width))));
    }
    let (ret, writes) = m.tables.get(&table).cloned().unwrap_or((0, Vec::new()));
    for (off, ty, v) in writes {
        abi::write_value(phv, off, ty, v);
    }
    ret
}

/// `abi::TABLE_LOOKUP`: the key comes in a register; the parameters are
/// the mock answer's written values in order (the tests list them so),
/// zero-padded.
unsafe extern "C" fn mock_lookup(ctx: *mut PacketCtx, table: u32, key: u64) -> abi::LookupResult {
    let (m, _) = mock(ctx);
    m.seen_keys.push((table, u128::from(key)));
    let (ret, writes) = m.tables.get(&table).cloned().unwrap_or((0, Vec::new()));
    m.lookup_params = writes.iter().map(|w| w.2).chain([0; 8]).collect();
    abi::LookupResult { action: u64::from(ret), params: m.lookup_params.as_ptr() }
}

unsafe extern "C" fn mock_extern(ctx: *mut PacketCtx, site: u32) {
    let (m, phv) = mock(ctx);
    let layout = m.layout.as_ref().unwrap();
    let args: Vec<u128> =
        (0..layout.extern_args_len).map(|i| abi::read_value(phv, layout.extern_args + 16 * i, Ty::Bit(128))).collect();
    m.externs.push((site, args));
    for &(i, v) in &m.extern_writes.clone() {
        abi::write_value(phv, layout.extern_args + 16 * i as u32, Ty::Bit(128), v);
    }
}

unsafe extern "C" fn mock_trace(ctx: *mut PacketCtx, event: u32, a: u32, b: u32) {
    let (m, _) = mock(ctx);
    m.trace.push((event, a, b));
}

fn host() -> HostSymbols {
    HostSymbols {
        table_apply: mock_apply,
        table_lookup: mock_lookup,
        extern_call: mock_extern,
        trace: mock_trace,
        table_images: std::ptr::null(),
        counter_images: std::ptr::null(),
        ipvs_call: None,
    }
}

/// The result of running one packet.
struct Run {
    verdict: Verdict,
    out: Vec<u8>,
    phv: Vec<u8>,
    reject_state: u32,
    cursor: u32,
}

impl Run {
    fn slot(&self, layout: &Layout, p: &Program, s: SlotId) -> u128 {
        abi::read_value(&self.phv, layout.slot(s), p.slot(s).ty)
    }
}

fn jit(p: &Program, trace: bool) -> (CompiledPipeline, Layout) {
    let layout = Layout::new(p);
    let c = compile(p, &layout, host(), JitOptions { trace, disasm: false }).unwrap_or_else(|e| panic!("{e}"));
    (c, layout)
}

fn run(c: &CompiledPipeline, layout: &Layout, pkt: &[u8], m: &mut Mock) -> Run {
    run_fn(c.func, layout, pkt, m)
}

/// [`run`] with another entry point of the same signature (the hint pass).
fn run_fn(f: crate::abi::PipelineFn, layout: &Layout, pkt: &[u8], m: &mut Mock) -> Run {
    run_from(f, layout, pkt, m, Arrival { phv_fill: 0, port: 0, timestamp: 0 })
}

/// What a packet starts from: the PHV block's bytes before the call, and the
/// context's arrival fields.
#[derive(Clone, Copy)]
struct Arrival {
    phv_fill: u8,
    port: u32,
    timestamp: u64,
}

/// [`run_fn`] from a PHV block filled with `a.phv_fill` (not zeroed), with
/// `a`'s arrival fields in the context.
fn run_from(f: crate::abi::PipelineFn, layout: &Layout, pkt: &[u8], m: &mut Mock, a: Arrival) -> Run {
    m.layout = Some(layout.clone());
    let mut phv = vec![u128::from_ne_bytes([a.phv_fill; 16]); layout.phv_size as usize / 16];
    let headroom = layout.max_emit_bytes as usize + 8;
    let mut buf = vec![0xEEu8; headroom + pkt.len() + 8];
    buf[headroom..headroom + pkt.len()].copy_from_slice(pkt);
    let mut ctx = PacketCtx {
        phv: phv.as_mut_ptr() as *mut u8,
        buf: buf.as_mut_ptr(),
        head: headroom as u32,
        len: pkt.len() as u32,
        cap: buf.len() as u32,
        cursor: 0,
        reject_state: 0,
        reject_error: 0,
        port: a.port,
        timestamp: a.timestamp,
        user: m as *mut Mock as *mut std::ffi::c_void,
    };
    // SAFETY (test only): ctx points at live buffers of the sizes the layout asks for.
    let v = unsafe { f(&mut ctx) };
    let verdict = Verdict::from_u32(v).expect("pipeline returns a verdict");
    let out = buf[ctx.head as usize..(ctx.head + ctx.len) as usize].to_vec();
    let phv = phv.iter().flat_map(|w| w.to_le_bytes()).collect();
    Run { verdict, out, phv, reject_state: ctx.reject_state, cursor: ctx.cursor }
}

/// Bits `[off, off + w)` of `bytes`, big-endian (the reference for extract).
fn bits_be(bytes: &[u8], off: u32, w: u16) -> u128 {
    (0..u32::from(w)).fold(0u128, |acc, i| {
        let bit = off + i;
        (acc << 1) | u128::from((bytes[(bit / 8) as usize] >> (7 - bit % 8)) & 1)
    })
}

// -------------------------------------------------------------------- tests

/// The example of the brief, small: one header with 4/4/8/3/13/48-bit fields,
/// a select with exact, mask, range and default arms, a control with a
/// branch and assignments, and a deparser.
fn small_program() -> (Program, HeaderId, HeaderId) {
    let (b, h, t) = small_program_builder();
    (b.p, h, t)
}

/// [`small_program`] still open for more slots.
fn small_program_builder() -> (B, HeaderId, HeaderId) {
    let mut b = B::new();
    let h = b.header("hdr.h", &[("ver", 4), ("ihl", 4), ("ttl", 8), ("flags", 3), ("frag", 13), ("mac", 48)]);
    let t = b.header("hdr.t", &[("x", 16)]);
    let ver = b.field(h, "ver");
    let sel = b.read(ver);
    let mut graph = DiGraph::new();
    let start = graph.add_node(ParserState {
        name: "start".into(),
        stmts: vec![st(StmtKind::Extract { header: h })],
        select: vec![sel],
        arms: Vec::new(),
        span: sp(),
    });
    let tail = graph.add_node(ParserState {
        name: "tail".into(),
        stmts: vec![st(StmtKind::Extract { header: t })],
        select: Vec::new(),
        arms: vec![arm(vec![], Next::Accept)],
        span: sp(),
    });
    graph[start].arms = vec![
        arm(vec![KeyMatch::Exact(4)], Next::Accept),
        arm(vec![KeyMatch::Mask { value: 0x6, mask: 0xE }], Next::Reject), // 6, 7
        arm(vec![KeyMatch::Range { lo: 8, hi: 9 }], Next::State(tail)),
        arm(vec![KeyMatch::Prefix { value: 0xC, len: 2 }], Next::State(tail)), // 12..15
        arm(vec![KeyMatch::Any], Next::Accept),
    ];
    graph.add_edge(start, tail, 2);
    b.p.parser = Parser { name: "P".into(), graph, start, span: sp() };

    // if (h.ttl > 1) { h.ttl = h.ttl - 1; h.frag = h.frag + 1; h.mac = h.mac ^ 0xFF; } else { std.drop = 1; }
    let ttl = b.field(h, "ttl");
    let frag = b.field(h, "frag");
    let mac = b.field(h, "mac");
    let (e_ttl, one8) = (b.read(ttl), b.k(1, 8));
    let cond = b.bin(BinOp::Gt, e_ttl, one8);
    let e_ttl2 = b.read(ttl);
    let dec = b.bin(BinOp::Sub, e_ttl2, one8);
    let (e_frag, one13) = (b.read(frag), b.k(1, 13));
    let inc = b.bin(BinOp::Add, e_frag, one13);
    let (e_mac, ff) = (b.read(mac), b.k(0xFF, 48));
    let x = b.bin(BinOp::BitXor, e_mac, ff);
    let one1 = b.k(1, 1);
    let drop = b.p.std.drop;
    b.control(vec![
        (vec![], Terminator::Branch { cond, then: n(1), els: n(2) }),
        (vec![assign(ttl, dec), assign(frag, inc), assign(mac, x)], Terminator::Goto(n(3))),
        (vec![assign(drop, one1)], Terminator::Goto(n(3))),
        (vec![], Terminator::Return),
    ]);
    b.p.deparser.emits = vec![h, t];
    (b, h, t)
}

#[test]
fn parses_branches_assigns_and_deparses() {
    let (p, _, _) = small_program();
    let (c, layout) = jit(&p, false);
    // ver 4, ihl 5, ttl 64, flags 0b010, frag 0x1FFF, mac 00:11:22:33:44:55, payload.
    let pkt = [0x45, 64, 0x5F, 0xFF, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0xAA, 0xBB];
    let r = run(&c, &layout, &pkt, &mut Mock::default());
    assert_eq!(r.verdict, Verdict::Forward);
    // ttl 63; frag wraps to 0 (13 bits) keeping flags; mac ^ 0xFF.
    assert_eq!(r.out, [0x45, 63, 0x40, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0xAA, 0xAA, 0xBB]);
    assert_eq!(r.cursor, 10);

    let pkt = [0x45, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    let r = run(&c, &layout, &pkt, &mut Mock::default());
    assert_eq!(r.verdict, Verdict::Forward);
    assert_eq!(r.out, pkt, "else branch leaves the header alone");
    assert_eq!(r.slot(&layout, &p, p.std.drop), 1);
}

/// The pipeline starts each packet itself (`abi` module docs): whatever the
/// PHV block held before (here every byte 0xFF, as if a packet had left
/// every header valid), the slots a packet may read before writing start
/// at zero, so a header the parser does not extract is not emitted and the
/// decision fields the host reads are 0, and the arrival fields are the
/// context's, masked to their widths. A slot nothing reads before writing
/// is left alone: `hdr.t.x`, read only by the deparser, and only when
/// `hdr.t` is valid, which only its extract makes it.
#[test]
fn pipeline_starts_from_zeroed_slots_and_the_arrival_fields() {
    let (p, h, t) = small_program();
    let (c, layout) = jit(&p, false);
    let pkt = [0x45, 64, 0x5F, 0xFF, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0xAA, 0xBB];
    let a = Arrival { phv_fill: 0xFF, port: 0x3F5, timestamp: 0x0123_4567_89AB_CDEF };
    let r = run_from(c.func, &layout, &pkt, &mut Mock::default(), a);
    assert_eq!(r.verdict, Verdict::Forward);
    assert_eq!(r.out, [0x45, 63, 0x40, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0xAA, 0xAA, 0xBB], "hdr.t not emitted");
    let std = p.std;
    assert_eq!(r.slot(&layout, &p, std.ingress_port), 0x1F5, "bit<9>");
    assert_eq!(r.slot(&layout, &p, std.packet_length), pkt.len() as u128);
    assert_eq!(r.slot(&layout, &p, std.timestamp), 0x0123_4567_89AB_CDEF);
    for s in [std.drop, std.egress_spec, std.mcast_grp, p.header(t).valid] {
        assert_eq!(r.slot(&layout, &p, s), 0, "{}", p.slot(s).name);
    }
    assert_eq!(r.slot(&layout, &p, p.header(h).valid), 1);
    assert_eq!(r.slot(&layout, &p, p.header(t).fields[0]), 0xFFFF, "hdr.t.x is not zeroed");
    assert!(layout.zero_bytes < layout.slot_bytes);
}

/// A PHV of more slot bytes than the pipeline zeroes with a straight run
/// of stores is zeroed by its loop, to the last slot.
#[test]
fn a_large_phv_is_zeroed_too() {
    let (mut b, _, _) = small_program_builder();
    let wide: Vec<SlotId> = (0..100).map(|i| b.slot(&format!("m.w{i}"), Ty::Bit(128))).collect();
    // `w = w` for each: read before any write, so they are zeroed.
    for &w in &wide {
        let e = b.read(w);
        b.p.controls[0].body.graph[n(0)].stmts.push(assign(w, e));
    }
    let p = b.p;
    let (c, layout) = jit(&p, false);
    assert!(layout.zero_bytes > super::translator::UNROLLED_ZEROING, "{}", layout.zero_bytes);
    let pkt = [0x45, 64, 0x5F, 0xFF, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
    let a = Arrival { phv_fill: 0xFF, port: 7, timestamp: 99 };
    let r = run_from(c.func, &layout, &pkt, &mut Mock::default(), a);
    assert_eq!(r.verdict, Verdict::Forward);
    for s in wide {
        assert_eq!(r.slot(&layout, &p, s), 0, "{}", p.slot(s).name);
    }
    let last = layout.zero_bytes as usize;
    assert!(r.phv[..last].iter().filter(|&&x| x == 0xFF).count() < 16, "slot bytes left unzeroed");
    assert_eq!((r.slot(&layout, &p, p.std.ingress_port), r.slot(&layout, &p, p.std.timestamp)), (7, 99));
}

#[test]
fn select_arms_in_order_and_parser_verdicts() {
    let (p, _, t) = small_program();
    let (c, layout) = jit(&p, false);
    let hdr = |ver: u8| [ver << 4, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56];
    for ver in 6..=7 {
        let r = run(&c, &layout, &hdr(ver), &mut Mock::default());
        assert_eq!((r.verdict, r.reject_state), (Verdict::Reject, 0), "ver {ver}: mask arm rejects");
    }
    for ver in [8, 9, 12, 15] {
        let r = run(&c, &layout, &hdr(ver), &mut Mock::default());
        assert_eq!(r.verdict, Verdict::Forward, "ver {ver}");
        assert_eq!(r.slot(&layout, &p, p.header(t).fields[0]), 0x1234);
        assert_eq!(r.out.len(), 13);
        assert_eq!(r.out[1], 8);
    }
    // Range arm, but too short for the tail header: truncated in state 1.
    let r = run(&c, &layout, &hdr(8)[..11], &mut Mock::default());
    assert_eq!((r.verdict, r.reject_state), (Verdict::Truncated, 1));
    // Too short for the first header.
    let r = run(&c, &layout, &[0x45, 1, 2], &mut Mock::default());
    assert_eq!((r.verdict, r.reject_state), (Verdict::Truncated, 0));
    // Default arm.
    let r = run(&c, &layout, &hdr(10), &mut Mock::default());
    assert_eq!(r.verdict, Verdict::Forward);
}

/// A program with one header of random field widths (1 to 128 bits at
/// every alignment; `short`: at most three fields of at most 8 bits, so
/// headers of 1 to 3 bytes), padded to whole bytes, extracted by the
/// parser and emitted by the deparser. Also its widths and its bit length.
fn random_header(rng: &mut Rng, short: bool) -> (B, HeaderId, Vec<u16>, u32) {
    let mut widths = Vec::new();
    let mut total = 0u32;
    for _ in 0..1 + rng.below(if short { 3 } else { 8 }) {
        let w = if short {
            1 + rng.below(8)
        } else {
            match rng.below(4) {
                0 => 1 + rng.below(8),
                1 => 1 + rng.below(64),
                2 => [48, 64, 128, 96, 13, 3, 16, 32][rng.below(8) as usize],
                _ => 1 + rng.below(128),
            }
        } as u16;
        widths.push(w);
        total += u32::from(w);
    }
    if !total.is_multiple_of(8) {
        widths.push((8 - total % 8) as u16);
        total += 8 - total % 8;
    }
    let (mut b, h) = extracted_header(&widths);
    b.p.deparser.emits = vec![h];
    (b, h, widths, total)
}

/// A program with one header `hdr.h` of fields `f0`, `f1`, ... of `widths`
/// bits, extracted by the parser (nothing emitted).
fn extracted_header(widths: &[u16]) -> (B, HeaderId) {
    let names: Vec<String> = (0..widths.len()).map(|i| format!("f{i}")).collect();
    let fields: Vec<(&str, u16)> = names.iter().map(|s| s.as_str()).zip(widths.iter().copied()).collect();
    let mut b = B::new();
    let h = b.header("hdr.h", &fields);
    b.simple_parser(&[h]);
    (b, h)
}

/// Random header layouts (widths 1..=128 at every alignment): extract must
/// put exactly the reference bits in each slot, and emit must rebuild the bytes.
#[test]
fn extract_and_emit_round_trip_any_layout() {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    for case in 0..60 {
        let (b, h, widths, total) = random_header(&mut rng, false);
        let p = b.p;
        let (c, layout) = jit(&p, false);
        for _ in 0..5 {
            let len = (total / 8) as usize + rng.below(4) as usize;
            let pkt: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let r = run(&c, &layout, &pkt, &mut Mock::default());
            assert_eq!(r.verdict, Verdict::Forward);
            let mut off = 0;
            for (i, &w) in widths.iter().enumerate() {
                let got = r.slot(&layout, &p, p.header(h).fields[i]);
                assert_eq!(got, bits_be(&pkt, off, w), "case {case} field {i} (width {w} at bit {off}) of {widths:?}");
                off += u32::from(w);
            }
            assert_eq!(r.out, pkt, "case {case}: {widths:?}");
        }
    }
}

/// Writes `w` bits of `v` at bit `off` of `bytes`, big-endian (the reference for field writes).
fn put_bits_be(bytes: &mut [u8], off: u32, w: u16, v: u128) {
    for i in 0..u32::from(w) {
        let bit = off + i;
        let one = (v >> (u32::from(w) - 1 - i)) & 1 == 1;
        let (byte, m) = ((bit / 8) as usize, 0x80u8 >> (bit % 8));
        bytes[byte] = if one { bytes[byte] | m } else { bytes[byte] & !m };
    }
}

/// Field writes at every width and alignment, in headers of 1 to 3 bytes
/// too, change exactly their bits of the emitted header; a field written
/// and then read back in the same control (`f = f ^ k`) sees the write.
/// The emitted header is the reference's bytes.
#[test]
fn field_writes_land_at_any_layout() {
    let mut rng = Rng::new(0x05EE_D0FF_1E1D);
    for case in 0..80 {
        let (mut b, h, widths, total) = random_header(&mut rng, case % 4 == 0);
        let offs: Vec<u32> = widths.iter().scan(0u32, |o, &w| Some(std::mem::replace(o, *o + u32::from(w)))).collect();
        let mask = |w: u16| if w >= 128 { u128::MAX } else { (1u128 << w) - 1 };
        // Constants into some fields, then one field xored with a constant.
        let mut stmts = Vec::new();
        let mut writes: Vec<(usize, Option<u128>, u128)> = Vec::new();
        for (i, &w) in widths.iter().enumerate() {
            if rng.below(3) != 0 {
                let v = (u128::from(rng.next()) << 64 | u128::from(rng.next())) & mask(w);
                let f = b.p.header(h).fields[i];
                let k = b.k(v, w);
                stmts.push(assign(f, k));
                writes.push((i, Some(v), 0));
            }
        }
        let j = rng.below(widths.len() as u64) as usize;
        let x = (u128::from(rng.next()) << 64 | u128::from(rng.next())) & mask(widths[j]);
        let f = b.p.header(h).fields[j];
        let (read, k) = (b.read(f), b.k(x, widths[j]));
        let xored = b.bin(BinOp::BitXor, read, k);
        stmts.push(assign(f, xored));
        writes.push((j, None, x));
        b.control(vec![(stmts, Terminator::Return)]);
        let p = b.p;
        let (c, layout) = jit(&p, false);
        for _ in 0..3 {
            let len = (total / 8) as usize + rng.below(4) as usize;
            let pkt: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let mut want = pkt.clone();
            for &(i, v, x) in &writes {
                let v = v.unwrap_or_else(|| bits_be(&want, offs[i], widths[i]) ^ x);
                put_bits_be(&mut want, offs[i], widths[i], v);
            }
            let r = run(&c, &layout, &pkt, &mut Mock::default());
            assert_eq!(r.verdict, Verdict::Forward);
            assert_eq!(r.out, want, "case {case}: widths {widths:?}, writes {writes:?}");
        }
    }
}

#[test]
fn deparser_skips_invalid_and_prepends_new_headers() {
    let mut b = B::new();
    let a = b.header("hdr.a", &[("x", 16)]);
    let e = b.header("hdr.encap", &[("y", 24)]);
    b.simple_parser(&[a]);
    let y = b.field(e, "y");
    let k = b.k(0xABCDEF, 24);
    // encap.setValid(); encap.y = 0xABCDEF; a.setInvalid();
    b.control(vec![(
        vec![
            st(StmtKind::SetValid { header: e, valid: true }),
            assign(y, k),
            st(StmtKind::SetValid { header: a, valid: false }),
        ],
        Terminator::Return,
    )]);
    b.p.deparser.emits = vec![e, a];
    let (c, layout) = jit(&b.p, false);
    let r = run(&c, &layout, &[1, 2, 3, 4], &mut Mock::default());
    assert_eq!(r.out, [0xAB, 0xCD, 0xEF, 3, 4]);
}

/// A header whose other fields only `extract` writes (`hdr.h`: `a`, `b`,
/// `c`) has only the bytes of the written field (`d`) stored when it goes
/// back where it came from; when it moves (`hdr.t` after it removed, so it
/// ends where the parser stopped, 4 bytes further on), it is written
/// whole, the unwritten fields' bytes too.
#[test]
fn a_header_back_in_place_and_one_that_moved() {
    let mut b = B::new();
    let h = b.header("hdr.h", &[("a", 8), ("b", 32), ("c", 16), ("d", 8)]);
    let t = b.header("hdr.t", &[("x", 32)]);
    b.simple_parser(&[h, t]);
    let (a, d) = (b.field(h, "a"), b.field(h, "d"));
    let (ra, ff) = (b.read(a), b.k(0xFF, 8));
    let cond = b.bin(BinOp::Eq, ra, ff);
    let (rd, one) = (b.read(d), b.k(1, 8));
    let inc = b.bin(BinOp::Add, rd, one);
    // d = d + 1; if (a == 0xFF) { t.setInvalid(); }
    b.control(vec![
        (vec![assign(d, inc)], Terminator::Branch { cond, then: n(1), els: n(2) }),
        (vec![st(StmtKind::SetValid { header: t, valid: false })], Terminator::Goto(n(2))),
        (vec![], Terminator::Return),
    ]);
    b.p.deparser.emits = vec![h, t];
    let (c, layout) = jit(&b.p, false);
    let pkt = [0x01, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x07, 0xA1, 0xA2, 0xA3, 0xA4, 0xEE];
    let r = run(&c, &layout, &pkt, &mut Mock::default());
    assert_eq!(r.out, [0x01, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x08, 0xA1, 0xA2, 0xA3, 0xA4, 0xEE]);
    let mut moved = pkt;
    moved[0] = 0xFF;
    let r = run(&c, &layout, &moved, &mut Mock::default());
    assert_eq!(r.out, [0xFF, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x08, 0xEE], "hdr.h moved by 4 bytes, written whole");
    assert_eq!(
        super::translator::in_place_ranges(&b.p)[h.index()],
        Some(vec![std::ops::Range { start: 7, end: 8 }]),
        "only d's byte in place"
    );
    assert_eq!(super::translator::in_place_ranges(&b.p)[t.index()], Some(vec![]), "hdr.t in place: nothing to write");
}

/// The elements of a run of same-type headers whose validity bytes are
/// adjacent (a header stack: `Layout::new` puts validity bytes first) are
/// skipped with one test when none is valid, and otherwise each is emitted
/// or not on its own: any one element valid, the last included, is found.
#[test]
fn deparser_runs_of_validity_bytes() {
    let mut b = B::new();
    let first = b.header("hdr.s[0]", &[("w", 8)]);
    let ty = b.p.headers[first.index()].ty;
    let mut elems = vec![first];
    for i in 1..5u32 {
        let id = HeaderId(b.p.headers.len() as u32);
        b.p.slots.push(Slot {
            name: format!("hdr.s[{i}].w"),
            ty: Ty::Bit(8),
            kind: SlotKind::HeaderField { header: id, field: 0 },
        });
        let w = SlotId(b.p.slots.len() as u32 - 1);
        b.p.slots.push(Slot { name: format!("hdr.s[{i}].$valid"), ty: Ty::Bool, kind: SlotKind::HeaderValid(id) });
        let valid = SlotId(b.p.slots.len() as u32 - 1);
        b.p.headers.push(Header { name: format!("hdr.s[{i}]"), ty, fields: vec![w], valid, byte_len: 1, span: sp() });
        elems.push(id);
    }
    b.simple_parser(&elems);
    b.p.deparser.emits = elems.clone();
    let layout = Layout::new(&b.p);
    let offsets: Vec<u32> = elems.iter().map(|h| layout.slot(b.p.headers[h.index()].valid)).collect();
    assert_eq!(offsets, (offsets[0]..offsets[0] + 5).collect::<Vec<_>>(), "adjacent validity bytes");
    // Each case keeps the elements in `keep` valid (the parser made all five valid).
    for keep in [vec![], vec![4], vec![0], vec![2], vec![1, 3], vec![0, 1, 2, 3, 4]] {
        let mut c = b.p.clone();
        let stmts = (0..5)
            .filter(|i| !keep.contains(i))
            .map(|i| st(StmtKind::SetValid { header: elems[i], valid: false }))
            .collect();
        c.controls.clear();
        c.controls.push(Control { name: "C".into(), body: body(vec![(stmts, Terminator::Return)]), span: sp() });
        let (jc, layout) = jit(&c, false);
        let r = run(&jc, &layout, &[10, 11, 12, 13, 14, 99], &mut Mock::default());
        let mut want: Vec<u8> = keep.iter().map(|&i| 10 + i as u8).collect();
        want.push(99);
        assert_eq!(r.out, want, "valid: {keep:?}");
    }
}

/// Headers a parser reaches at depth 3 or more, never extracts, or
/// extracts as stack elements count as rarely valid; those at depths 0-2
/// do not (`rarely_valid`, which groups the deparser's validity tests).
#[test]
fn rarely_valid_headers_by_parser_depth() {
    let mut b = B::new();
    let hs: Vec<HeaderId> = (0..6).map(|i| b.header(&format!("hdr.h{i}"), &[("x", 8)])).collect();
    // start(h0) -> s1(h1) -> s2(h2) -> s3(h3, h2 again); h4 a stack
    // element; h5 never extracted. h2 counts at its shallowest state.
    let mut graph = DiGraph::new();
    let states: Vec<NodeIndex> = (0..4)
        .map(|i| {
            graph.add_node(ParserState {
                name: format!("s{i}"),
                stmts: vec![st(StmtKind::Extract { header: hs[i] })],
                select: Vec::new(),
                arms: vec![arm(vec![], Next::Accept)],
                span: sp(),
            })
        })
        .collect();
    let next = b.p.slots.len();
    b.p.slots.push(Slot { name: "hdr.st.$next".into(), ty: Ty::Bit(8), kind: SlotKind::Temp });
    graph[states[2]].stmts.push(st(StmtKind::ExtractNext { elems: vec![hs[4]], next: SlotId(next as u32) }));
    graph[states[3]].stmts.push(st(StmtKind::Extract { header: hs[2] }));
    for (from, to) in [(0, 1), (1, 2), (2, 3)] {
        graph[states[from]].arms.insert(0, arm(vec![], Next::State(states[to])));
        graph.add_edge(states[from], states[to], 0);
    }
    b.p.parser = Parser { name: "P".into(), graph, start: states[0], span: sp() };
    assert_eq!(super::translator::rarely_valid(&b.p), [false, false, false, true, true, true]);
}

/// Consecutive emits of rarely valid headers of different types whose
/// validity bytes are adjacent are skipped with one test when none is
/// valid; any one of them valid (the first, the middle, the last, or
/// several) is still emitted, in order.
#[test]
fn deparser_groups_rarely_valid_headers() {
    // hdr.a, parsed; hdr.r1..r4 (1, 2, 3 and 1 bytes), never parsed.
    let make = || {
        let mut b = B::new();
        let a = b.header("hdr.a", &[("x", 8)]);
        let rare: Vec<HeaderId> =
            [8u16, 16, 24, 8].iter().enumerate().map(|(i, &w)| b.header(&format!("hdr.r{i}"), &[("x", w)])).collect();
        b.simple_parser(&[a]);
        b.p.deparser.emits = std::iter::once(a).chain(rare.iter().copied()).collect();
        (b, rare)
    };
    let (b, rare) = make();
    let layout = Layout::new(&b.p);
    let offsets: Vec<u32> = rare.iter().map(|h| layout.slot(b.p.headers[h.index()].valid)).collect();
    assert_eq!(offsets, (offsets[0]..offsets[0] + 4).collect::<Vec<_>>(), "adjacent validity bytes");
    let bytes: [&[u8]; 4] = [&[0x11], &[0x22, 0x23], &[0x31, 0x32, 0x33], &[0x44]];
    for keep in [vec![], vec![0], vec![1], vec![2], vec![3], vec![0, 3], vec![1, 2], vec![0, 1, 2, 3]] {
        let (mut c, rare) = make();
        let mut stmts = Vec::new();
        for &i in &keep {
            let h: HeaderId = rare[i];
            stmts.push(st(StmtKind::SetValid { header: h, valid: true }));
            let v = bytes[i].iter().fold(0u128, |v, &x| v << 8 | u128::from(x));
            let (x, k) = (c.field(h, "x"), c.k(v, 8 * bytes[i].len() as u16));
            stmts.push(assign(x, k));
        }
        c.control(vec![(stmts, Terminator::Return)]);
        let (jc, layout) = jit(&c.p, false);
        let r = run(&jc, &layout, &[7, 99], &mut Mock::default());
        let mut want = vec![7u8];
        for &i in &keep {
            want.extend_from_slice(bytes[i]);
        }
        want.push(99);
        assert_eq!(r.out, want, "valid: {keep:?}");
    }
}

/// Expression semantics: wrapping at odd widths, shifts past the width,
/// slices, concatenation, casts, negation, 128-bit arithmetic, `?:`.
#[test]
fn expressions_follow_ir_semantics() {
    let mut b = B::new();
    b.simple_parser(&[]);
    let mut stmts = Vec::new();
    let mut expect = Vec::new();
    let mut check = |b: &mut B, e: ExprId, want: u128| {
        let ty = b.p.exprs[e.index()].ty;
        let s = b.slot(&format!("meta.r{}", expect.len()), ty);
        stmts.push(assign(s, e));
        expect.push((s, want));
    };
    let (x, y) = (b.k(0xFFF, 12), b.k(2, 12));
    let e = b.bin(BinOp::Add, x, y);
    check(&mut b, e, 1);
    let e = b.bin(BinOp::Mul, x, y);
    check(&mut b, e, 0xFFE);
    let (s3, s12, s200) = (b.k(3, 8), b.k(12, 8), b.k(200, 8));
    let e = b.bin(BinOp::Shl, x, s3);
    check(&mut b, e, 0xFF8);
    let e = b.bin(BinOp::Shl, x, s12);
    check(&mut b, e, 0);
    let e = b.bin(BinOp::Shr, x, s12);
    check(&mut b, e, 0);
    let e = b.bin(BinOp::Shr, x, s3);
    check(&mut b, e, 0x1FF);
    let big = b.k(1 << 100, 128);
    let e = b.bin(BinOp::Shl, big, s3);
    check(&mut b, e, 1 << 103);
    let e = b.bin(BinOp::Shl, big, s200);
    check(&mut b, e, 0);
    let wide_amt = b.k(1 << 70, 128);
    let e = b.bin(BinOp::Shr, x, wide_amt);
    check(&mut b, e, 0);
    let e = b.expr(ExprKind::Unary(UnOp::Neg, y), Ty::Bit(12));
    check(&mut b, e, 0xFFE);
    let e = b.expr(ExprKind::Unary(UnOp::BitNot, y), Ty::Bit(12));
    check(&mut b, e, 0xFFD);
    let t = b.expr(ExprKind::Unary(UnOp::Not, e), Ty::Bool);
    let _ = t; // `!` takes bool: build a real one below.
    let lt = b.bin(BinOp::Lt, y, x);
    let not = b.expr(ExprKind::Unary(UnOp::Not, lt), Ty::Bool);
    check(&mut b, not, 0);
    let e = b.expr(ExprKind::Slice { base: x, hi: 7, lo: 4 }, Ty::Bit(4));
    check(&mut b, e, 0xF);
    let e = b.bin(BinOp::Concat, y, e);
    check(&mut b, e, 0x2F);
    let m = b.k(0x0011_2233_4455, 48);
    let e = b.bin(BinOp::Concat, m, m);
    check(&mut b, e, 0x0011_2233_4455_0011_2233_4455);
    let e = b.expr(ExprKind::Slice { base: e, hi: 71, lo: 40 }, Ty::Bit(32));
    check(&mut b, e, 0x3344_5500);
    let e = b.expr(ExprKind::Cast(m), Ty::Bit(16));
    check(&mut b, e, 0x4455);
    let e = b.expr(ExprKind::Cast(y), Ty::Bit(128));
    check(&mut b, e, 2);
    let e = b.expr(ExprKind::Cast(lt), Ty::Bit(1));
    check(&mut b, e, 1);
    let (u, v) = (b.k(u128::MAX, 128), b.k(3, 128));
    let e = b.bin(BinOp::Add, u, v);
    check(&mut b, e, 2);
    let e = b.bin(BinOp::Mul, u, v);
    check(&mut b, e, u128::MAX - 2);
    let e = b.bin(BinOp::Gt, u, v);
    check(&mut b, e, 1);
    let c = b.expr(ExprKind::Cond(lt, m, m), Ty::Bit(48));
    check(&mut b, c, 0x0011_2233_4455);
    let f = b.bin(BinOp::Gt, y, x);
    let (p1, p2) = (b.k(1, 48), b.k(2, 48));
    let c = b.expr(ExprKind::Cond(f, p1, p2), Ty::Bit(48));
    check(&mut b, c, 2);
    let e = b.bin(BinOp::Or, f, lt);
    check(&mut b, e, 1);
    let e = b.bin(BinOp::And, f, lt);
    check(&mut b, e, 0);
    let e = b.bin(BinOp::Le, x, x);
    check(&mut b, e, 1);
    let e = b.bin(BinOp::Ne, x, x);
    check(&mut b, e, 0);
    // Slice assignment: r[11:4] = 0xAB on 0x00F.
    let s = b.slot("meta.sliced", Ty::Bit(12));
    let (init, ab) = (b.k(0x00F, 12), b.k(0xAB, 8));
    stmts.push(assign(s, init));
    stmts.push(st(StmtKind::Assign { dst: LValue { slot: s, slice: Some((11, 4)) }, src: ab }));
    expect.push((s, 0xABF));
    b.control(vec![(stmts, Terminator::Return)]);
    let (c, layout) = jit(&b.p, false);
    let r = run(&c, &layout, &[], &mut Mock::default());
    for (i, (s, want)) in expect.iter().enumerate() {
        assert_eq!(r.slot(&layout, &b.p, *s), *want, "check {i} ({})", b.p.slot(*s).name);
    }
}

/// Table apply: keys in the key buffer, hit/action_run temps, dispatch to the
/// returned action whose parameters the host wrote; switch on action_run;
/// `exit` in an action ends the control but not the pipeline.
#[test]
fn table_apply_dispatches_and_exit_ends_the_control() {
    let mut b = B::new();
    let h = b.header("hdr.h", &[("dst", 32), ("ttl", 8)]);
    b.simple_parser(&[h]);
    let (dst, ttl) = (b.field(h, "dst"), b.field(h, "ttl"));
    let spec = b.p.std.egress_spec;
    let (set_port, params) = b.action("C.set_port", &[("port", 9)], vec![]);
    let e_port = b.read(params[0]);
    b.p.actions[set_port.index()].body = body(vec![(vec![assign(spec, e_port)], Terminator::Return)]);
    let k1 = b.k(1, 8);
    let (bail, _) = b.action("C.bail", &[], vec![(vec![assign(ttl, k1)], Terminator::Exit)]);
    let key = b.read(dst);
    b.p.tables.push(Table {
        name: "C.t".into(),
        keys: vec![TableKey { expr: key, kind: MatchKind::Lpm, name: "hdr.h.dst".into(), width: 32 }],
        actions: vec![set_port, bail],
        default_action: ActionCall { action: ActionId(0), args: vec![] },
        default_const: false,
        size: 16,
        entries: vec![],
        entries_const: false,
        span: sp(),
    });
    let hit = b.slot("$hit", Ty::Bool);
    let run_slot = b.slot("$run", Ty::Bit(32));
    let marker = b.slot("meta.after", Ty::Bit(8));
    let k7 = b.k(7, 8);
    let k9 = b.k(9, 8);
    b.control(vec![
        (
            vec![st(StmtKind::Apply { table: TableId(0), hit: Some(hit), action_run: Some(run_slot) })],
            Terminator::Switch { value: run_slot, cases: vec![(set_port, n(1))], default: n(2) },
        ),
        (vec![assign(marker, k7)], Terminator::Return),
        (vec![], Terminator::Return),
    ]);
    // A second control runs even after `exit` in the first.
    let t2 = b.slot("meta.second", Ty::Bit(8));
    b.control(vec![(vec![assign(t2, k9)], Terminator::Return)]);
    b.p.deparser.emits = vec![h];
    let p = b.p;
    let (c, layout) = jit(&p, false);
    let port_off = layout.slot(params[0]);
    let pkt = [10, 0, 0, 1, 64];

    let mut m = Mock { key_width: 32, ..Mock::default() };
    m.tables.insert(0, (set_port.0 | abi::HIT_BIT, vec![(port_off, Ty::Bit(9), 5)]));
    let r = run(&c, &layout, &pkt, &mut m);
    assert_eq!(m.seen_keys, [(0, 0x0A00_0001)]);
    assert_eq!(r.slot(&layout, &p, spec), 5);
    assert_eq!(r.slot(&layout, &p, hit), 1);
    assert_eq!(r.slot(&layout, &p, run_slot), u128::from(set_port.0));
    assert_eq!(r.slot(&layout, &p, marker), 7);
    assert_eq!(r.slot(&layout, &p, t2), 9);

    let mut m = Mock { key_width: 32, ..Mock::default() };
    m.tables.insert(0, (bail.0 | abi::HIT_BIT, vec![]));
    let r = run(&c, &layout, &pkt, &mut m);
    assert_eq!(r.slot(&layout, &p, marker), 0, "exit skipped the rest of the control");
    assert_eq!(r.slot(&layout, &p, t2), 9, "the next control still ran");
    assert_eq!(r.out, [10, 0, 0, 1, 1]);

    let mut m = Mock { key_width: 32, ..Mock::default() };
    m.tables.insert(0, (0, vec![]));
    let r = run(&c, &layout, &pkt, &mut m);
    assert_eq!((r.slot(&layout, &p, hit), r.slot(&layout, &p, run_slot)), (0, 0), "miss runs NoAction");
}

/// A table whose key components fit 64 bits together is looked up through
/// `abi::TABLE_LOOKUP` with the components packed (the first in the high
/// bits) and `PACKED_KEY` set; the parameters come from the returned
/// pointer, masked to their slots.
#[test]
fn packed_table_keys_go_to_the_lookup_host_function() {
    let mut b = B::new();
    let h = b.header("hdr.h", &[("a", 8), ("b", 16)]);
    b.simple_parser(&[h]);
    let (fa, fb) = (b.field(h, "a"), b.field(h, "b"));
    let spec = b.p.std.egress_spec;
    let (set_port, params) = b.action("C.set_port", &[("port", 9)], vec![]);
    let e_port = b.read(params[0]);
    b.p.actions[set_port.index()].body = body(vec![(vec![assign(spec, e_port)], Terminator::Return)]);
    let (ka, kb) = (b.read(fa), b.read(fb));
    b.p.tables.push(Table {
        name: "C.t".into(),
        keys: vec![
            TableKey { expr: ka, kind: MatchKind::Exact, name: "hdr.h.a".into(), width: 8 },
            TableKey { expr: kb, kind: MatchKind::Exact, name: "hdr.h.b".into(), width: 16 },
        ],
        actions: vec![set_port],
        default_action: ActionCall { action: ActionId(0), args: vec![] },
        default_const: false,
        size: 16,
        entries: vec![],
        entries_const: false,
        span: sp(),
    });
    b.control(vec![(vec![st(StmtKind::Apply { table: TableId(0), hit: None, action_run: None })], Terminator::Return)]);
    b.p.deparser.emits = vec![h];
    let p = b.p;
    assert!(abi::uses_table_lookup(&p.tables[0]));
    let (c, layout) = jit(&p, false);
    let mut m = Mock::default();
    // 0x3FF does not fit bit<9>: the slot keeps 0x1FF.
    m.tables.insert(abi::PACKED_KEY, (set_port.0 | abi::HIT_BIT, vec![(0, Ty::Bit(9), 0x3FF)]));
    let r = run(&c, &layout, &[0xAB, 0x12, 0x34], &mut m);
    assert_eq!(m.seen_keys, [(abi::PACKED_KEY, 0xAB_1234)]);
    assert_eq!(r.slot(&layout, &p, spec), 0x1FF);
    assert_eq!(r.out, [0xAB, 0x12, 0x34]);
}

/// Extern calls: flattened arguments (scalars, list elements, inout), return
/// value and out/inout copy-back masked to the slot width.
#[test]
fn extern_call_flattens_and_copies_back() {
    let mut b = B::new();
    let h = b.header("hdr.h", &[("a", 4), ("b", 12), ("c", 16)]);
    b.simple_parser(&[h]);
    let (fa, fb, fc) = (b.field(h, "a"), b.field(h, "b"), b.field(h, "c"));
    let (ea, eb) = (b.read(fa), b.read(fb));
    let k = b.k(0x1234_5678_9ABC_DEF0_1122_3344_5566_7788, 128);
    let ret = b.slot("$ret", Ty::Bit(16));
    let out = b.slot("meta.out", Ty::Bit(8));
    b.p.call_sites = 1;
    b.control(vec![(
        vec![st(StmtKind::Extern {
            call: ExternCall {
                site: CallSiteId(0),
                callee: Callee::Function(ExternFnId(0)),
                args: vec![ExternArg::List(vec![ea, eb]), ExternArg::InOut(fc), ExternArg::In(k), ExternArg::Out(out)],
            },
            ret: Some(ret),
        })],
        Terminator::Return,
    )]);
    b.p.deparser.emits = vec![h];
    let p = b.p;
    let (c, layout) = jit(&p, false);
    assert_eq!(layout.extern_args_len, 6);
    let mut m = Mock { extern_writes: vec![(0, 0x1_BEEF), (3, 0xCAFE), (5, 0x1FF)], ..Mock::default() };
    let r = run(&c, &layout, &[0xA1, 0x23, 0x45, 0x67], &mut m);
    assert_eq!(m.externs.len(), 1);
    let (site, args) = &m.externs[0];
    assert_eq!(*site, 0);
    assert_eq!(args[1..], [0xA, 0x123, 0x4567, 0x1234_5678_9ABC_DEF0_1122_3344_5566_7788, 0]);
    assert_eq!(args[0], 0, "the return entry is cleared before the call");
    assert_eq!(r.slot(&layout, &p, ret), 0xBEEF);
    assert_eq!(r.slot(&layout, &p, fc), 0xCAFE);
    assert_eq!(r.slot(&layout, &p, out), 0xFF);
    assert_eq!(r.out, [0xA1, 0x23, 0xCA, 0xFE]);
}

/// `lookahead` peeks without consuming; `advance` skips; both bounds-checked.
#[test]
fn lookahead_and_advance() {
    let mut b = B::new();
    let h = b.header("hdr.h", &[("x", 8)]);
    let peek = b.slot("meta.peek", Ty::Bit(12));
    let la = b.expr(ExprKind::Lookahead, Ty::Bit(12));
    let skip = b.k(16, 32);
    let mut graph = DiGraph::new();
    let start = graph.add_node(ParserState {
        name: "start".into(),
        stmts: vec![assign(peek, la), st(StmtKind::Advance { bits: skip }), st(StmtKind::Extract { header: h })],
        select: Vec::new(),
        arms: vec![arm(vec![], Next::Accept)],
        span: sp(),
    });
    b.p.parser = Parser { name: "P".into(), graph, start, span: sp() };
    b.p.deparser.emits = vec![h];
    let p = b.p;
    let (c, layout) = jit(&p, false);
    let r = run(&c, &layout, &[0xAB, 0xCD, 0xEF, 0x01], &mut Mock::default());
    assert_eq!(r.verdict, Verdict::Forward);
    assert_eq!(r.slot(&layout, &p, peek), 0xABC);
    assert_eq!(r.slot(&layout, &p, p.header(h).fields[0]), 0xEF);
    // The advanced-over bytes are replaced by the emitted headers (none before h).
    assert_eq!(r.out, [0xEF, 0x01]);
    assert_eq!(run(&c, &layout, &[0xAB, 0xCD, 0xEF], &mut Mock::default()).out, [0xEF]);
    assert_eq!(run(&c, &layout, &[0xAB, 0xCD], &mut Mock::default()).verdict, Verdict::Truncated);
    assert_eq!(run(&c, &layout, &[0xAB], &mut Mock::default()).verdict, Verdict::Truncated);
}

#[test]
fn trace_events_only_when_asked() {
    let (p, h, _) = small_program();
    let pkt = [0x45, 64, 0x5F, 0xFF, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
    let (c, layout) = jit(&p, true);
    let mut m = Mock::default();
    run(&c, &layout, &pkt, &mut m);
    use abi::TraceEvent as E;
    let cond = match &p.controls[0].body.graph[n(0)].term {
        Terminator::Branch { cond, .. } => cond.0,
        _ => unreachable!(),
    };
    assert_eq!(
        m.trace,
        [
            (E::State as u32, 0, 0),
            (E::Extract as u32, h.0, 0),
            (E::Control as u32, 0, 0),
            (E::Branch as u32, cond, 1),
            (E::Emit as u32, h.0, 0),
        ]
    );
    let (quiet, layout) = jit(&p, false);
    let mut m = Mock::default();
    run(&quiet, &layout, &pkt, &mut m);
    assert!(m.trace.is_empty());
    // Imports: fn0 table apply, fn1 table lookup, fn2 extern call, fn3 trace.
    assert!(c.clif.contains("fn3"), "the traced function imports the trace hook");
    assert!(!quiet.clif.contains("fn3"), "no trace import without tracing");
}

/// A parser loop that consumes nothing stops after `MAX_PARSER_STEPS` visits
/// with a reject of the looping state, like the interpreter.
#[test]
fn parser_loops_are_bounded() {
    let mut b = B::new();
    let h = b.header("hdr.h", &[("x", 8)]);
    let la = b.expr(ExprKind::Lookahead, Ty::Bit(8));
    let mut graph = DiGraph::new();
    let start = graph.add_node(ParserState {
        name: "start".into(),
        stmts: vec![],
        select: vec![],
        arms: vec![arm(vec![], Next::State(n(1)))],
        span: sp(),
    });
    let spin = graph.add_node(ParserState {
        name: "spin".into(),
        stmts: vec![],
        select: vec![la],
        arms: vec![arm(vec![KeyMatch::Exact(0)], Next::State(n(1))), arm(vec![KeyMatch::Any], Next::State(n(2)))],
        span: sp(),
    });
    let done = graph.add_node(ParserState {
        name: "done".into(),
        stmts: vec![st(StmtKind::Extract { header: h })],
        select: vec![],
        arms: vec![arm(vec![], Next::Accept)],
        span: sp(),
    });
    graph.add_edge(start, spin, 0);
    graph.add_edge(spin, spin, 0);
    graph.add_edge(spin, done, 1);
    b.p.parser = Parser { name: "P".into(), graph, start, span: sp() };
    b.p.deparser.emits = vec![h];
    let (c, layout) = jit(&b.p, false);
    let r = run(&c, &layout, &[0], &mut Mock::default());
    assert_eq!((r.verdict, r.reject_state), (Verdict::Reject, 1));
    let r = run(&c, &layout, &[7], &mut Mock::default());
    assert_eq!((r.verdict, r.out), (Verdict::Forward, vec![7]));
    let r = run(&c, &layout, &[], &mut Mock::default());
    assert_eq!((r.verdict, r.reject_state), (Verdict::Truncated, 1));
}

/// `&&`, `||` and `?:` do not evaluate an operand they do not need, which
/// is visible when that operand's lookahead would run past the end.
#[test]
fn short_circuit_skips_lookahead() {
    let mut b = B::new();
    let la = b.expr(ExprKind::Lookahead, Ty::Bit(8));
    let (zero, one8) = (b.k(0, 1), b.k(1, 8));
    let f = b.expr(ExprKind::Cast(zero), Ty::Bool);
    let t = b.expr(ExprKind::Unary(UnOp::Not, f), Ty::Bool);
    let eq = b.bin(BinOp::Eq, la, one8);
    let and = b.bin(BinOp::And, f, eq);
    let or = b.bin(BinOp::Or, t, eq);
    let cond = b.expr(ExprKind::Cond(f, la, one8), Ty::Bit(8));
    let (s_and, s_or, s_cond) = (b.slot("m.and", Ty::Bool), b.slot("m.or", Ty::Bool), b.slot("m.c", Ty::Bit(8)));
    let mut graph = DiGraph::new();
    let start = graph.add_node(ParserState {
        name: "start".into(),
        stmts: vec![assign(s_and, and), assign(s_or, or), assign(s_cond, cond)],
        select: vec![],
        arms: vec![arm(vec![], Next::Accept)],
        span: sp(),
    });
    b.p.parser = Parser { name: "P".into(), graph, start, span: sp() };
    let p = b.p;
    let (c, layout) = jit(&p, false);
    let r = run(&c, &layout, &[], &mut Mock::default());
    assert_eq!(r.verdict, Verdict::Forward);
    assert_eq!([s_and, s_or, s_cond].map(|s| r.slot(&layout, &p, s)), [0, 1, 1]);
}

/// Hint calls (lb.p4lite's `conns.prefetch` in its TCP and UDP states) are
/// left out of the untraced pipeline; the hint pass runs the parser with the
/// hints and no other extern call, and leaves the packet alone.
#[test]
fn hint_calls_only_in_the_hint_pass() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../programs/lb.p4lite");
    let sources = crate::span::Sources::new(path.to_string(), std::fs::read_to_string(path).unwrap());
    let p = crate::compile(&sources).ir.expect("lb.p4lite compiles");
    let mut hint_sites = Vec::new();
    abi::visit_stmts(&p, |s| {
        if let StmtKind::Extern { call, .. } = &s.kind {
            if abi::is_hint(&p, call) {
                hint_sites.push(call.site.0);
            }
        }
    });
    assert_eq!(hint_sites.len(), 2, "lb.p4lite hints in parse_tcp and parse_udp");
    // Ethernet, IPv4 10.0.0.2 -> 10.0.0.1 protocol 6, TCP 1234 -> 80 SYN.
    let mut frame = vec![0u8; 54];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame[14] = 0x45;
    frame[16..18].copy_from_slice(&40u16.to_be_bytes());
    frame[22] = 64;
    frame[23] = 6;
    frame[26..30].copy_from_slice(&[10, 0, 0, 2]);
    frame[30..34].copy_from_slice(&[10, 0, 0, 1]);
    frame[34..36].copy_from_slice(&1234u16.to_be_bytes());
    frame[36..38].copy_from_slice(&80u16.to_be_bytes());
    frame[46] = 0x50;
    frame[47] = 0x02;
    for trace in [false, true] {
        let (c, layout) = jit(&p, trace);
        let mut m = Mock::default();
        run(&c, &layout, &frame, &mut m);
        let hinted = m.externs.iter().filter(|(site, _)| hint_sites.contains(site)).count();
        // Untraced pipelines leave hints out; traced ones call them (the
        // runtime ignores them outside the hint pass) so traces match the
        // interpreter's.
        assert_eq!(hinted, usize::from(trace), "trace {trace}: hint calls in the pipeline");
        assert!(m.externs.len() > hinted, "trace {trace}: the pipeline's other extern calls are made");
        let hints = c.hints.expect("a hint pass");
        let mut m = Mock::default();
        let r = run_fn(hints, &layout, &frame, &mut m);
        assert_eq!(r.verdict, Verdict::Forward);
        assert_eq!(m.externs.len(), 1, "trace {trace}: the hint pass calls only the hint");
        let (site, args) = &m.externs[0];
        assert!(hint_sites.contains(site));
        assert_eq!(args[1..6], [6, 0x0A00_0002, 1234, 0x0A00_0001, 80]);
        assert_eq!(r.out, frame, "the hint pass leaves the packet alone");
        // Its slots live in registers: from a PHV of stale bytes it hints
        // the same key and leaves the slots' bytes as they were.
        let mut m = Mock::default();
        let stale = Arrival { phv_fill: 0xA5, port: 0, timestamp: 0 };
        let r = run_from(hints, &layout, &frame, &mut m, stale);
        assert_eq!(m.externs.len(), 1);
        assert_eq!(m.externs[0].1[1..6], [6, 0x0A00_0002, 1234, 0x0A00_0001, 80]);
        let slots = &r.phv[..layout.slot_bytes as usize];
        assert!(slots.iter().all(|&b| b == 0xA5), "trace {trace}: the hint pass wrote a slot");
        // A frame cut inside the TCP header stops before the hint.
        let mut m = Mock::default();
        let r = run_fn(hints, &layout, &frame[..40], &mut m);
        assert_eq!((r.verdict, m.externs.len()), (Verdict::Truncated, 0));
    }
}

/// Every program in `programs/` goes through the front end and compiles with
/// the verifier on (semantics are the differential test's job).
#[test]
fn shipped_programs_compile() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../programs");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("p4lite") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let sources = crate::span::Sources::new(path.display().to_string(), text);
        let Some(p) = crate::compile(&sources).ir else {
            // The front end is still being written; a program it rejects is its test's business.
            eprintln!("{}: front end rejects it, skipped", path.display());
            continue;
        };
        for trace in [false, true] {
            let layout = Layout::new(&p);
            compile(&p, &layout, host(), JitOptions { trace, disasm: false })
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        seen += 1;
    }
    eprintln!("{seen} programs compiled");
}

/// Reference RFC 1071 checksum over the zero-padded bit-string of `(value, width)` elements.
fn csum_ref(elems: &[(u128, u16)]) -> u16 {
    let mut bits: Vec<u8> = Vec::new();
    for &(v, w) in elems {
        bits.extend((0..w).rev().map(|i| ((v >> i) & 1) as u8));
    }
    while !bits.len().is_multiple_of(16) {
        bits.push(0);
    }
    let mut sum: u64 = bits.chunks(16).map(|c| c.iter().fold(0u64, |a, b| (a << 1) | u64::from(*b))).sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// RFC 1624 eqn. 3 over the 16-bit words of `old` and `new` (`width` bits
/// each, zero-padded on the right to whole words): the reference for
/// `csum16_replace`.
fn csum_replace_ref(hc: u16, old: u128, new: u128, width: u32) -> u16 {
    let padded = width.next_multiple_of(16);
    let words = |v: u128| -> Vec<u64> {
        let v = v << (padded - width);
        (0..padded / 16).rev().map(|k| ((v >> (16 * k)) & 0xFFFF) as u64).collect()
    };
    let mut sum = u64::from(!hc);
    sum += words(old).iter().map(|w| !w & 0xFFFF).sum::<u64>();
    sum += words(new).iter().sum::<u64>();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// `csum16_replace` computed inline equals RFC 1624 over 16-bit words for
/// old and new values 8 to 64 bits wide (whole 32-bit units, which the JIT
/// sums, units holding one 16-bit word, partial words), random and edge
/// values (old = new, all zeros, all ones, a sum of zero).
#[test]
fn csum16_replace_matches_rfc1624_at_any_width() {
    let mut rng = crate::rng::Rng::new(0xC5_0016);
    for width in [8u16, 16, 24, 32, 40, 48, 56, 64] {
        let mut b = B::new();
        let csum16_replace = b.prelude_fn("csum16_replace");
        let h = b.header("hdr.h", &[("hc", 16), ("old", width), ("new", width)]);
        b.simple_parser(&[h]);
        let f = b.p.header(h).fields.clone();
        let (old, new) = (b.read(f[1]), b.read(f[2]));
        let c = b.slot("m.c", Ty::Bit(16));
        let hc = b.read(f[0]);
        let call = ExternCall {
            site: CallSiteId(0),
            callee: Callee::Function(csum16_replace),
            args: vec![ExternArg::InOut(c), ExternArg::In(old), ExternArg::In(new)],
        };
        b.p.call_sites = 1;
        b.control(vec![(vec![assign(c, hc), st(StmtKind::Extern { call, ret: None })], Terminator::Return)]);
        b.p.deparser.emits = vec![h];
        let p = b.p;
        let (cpl, layout) = jit(&p, false);
        let w = u32::from(width);
        let mask = (1u128 << w) - 1;
        let mut cases: Vec<(u16, u128, u128)> =
            vec![(0, 0, 0), (0xFFFF, 0, 0), (0, mask, mask), (0xFFFF, mask, 0), (0x1234, 0, mask), (0, 1, 1)];
        for _ in 0..3000 {
            let (o, n) = (u128::from(rng.next()) & mask, u128::from(rng.next()) & mask);
            cases.push((rng.next() as u16, o, if rng.next().is_multiple_of(4) { o } else { n }));
        }
        for (hc, o, n) in cases {
            let bytes = 2 + 2 * (w as usize / 8);
            let mut pkt = vec![0u8; bytes];
            pkt[..2].copy_from_slice(&hc.to_be_bytes());
            let both = (o << w) | n;
            for (i, byte) in pkt[2..].iter_mut().rev().enumerate() {
                *byte = (both >> (8 * i)) as u8;
            }
            let r = run(&cpl, &layout, &pkt, &mut Mock::default());
            let want = csum_replace_ref(hc, o, n, w);
            assert_eq!(r.slot(&layout, &p, c), u128::from(want), "width {w}: hc {hc:#06x}, old {o:#x}, new {n:#x}");
        }
    }
}

/// `csum16`, `csum16_replace` and `mark_to_drop` from the prelude are
/// computed inline (no host call) with the runtime's semantics; the same
/// calls with tracing on go to the host.
#[test]
fn prelude_intrinsics_compute_inline() {
    let mut b = B::new();
    let prelude = Span { source: crate::span::SourceId::PRELUDE, lo: 0, hi: 0 };
    let sig = |name: &str| MethodSig { name: name.into(), type_params: vec![], params: vec![], ret: None };
    for name in ["mark_to_drop", "csum16", "csum16_replace"] {
        b.p.extern_fns.push(ExternFn { sig: sig(name), span: prelude });
    }
    let fields = [
        ("version", 4),
        ("ihl", 4),
        ("diffserv", 8),
        ("total_len", 16),
        ("id", 16),
        ("flags", 3),
        ("frag", 13),
        ("ttl", 8),
        ("proto", 8),
        ("csum", 16),
        ("src", 32),
        ("dst", 32),
    ];
    let h = b.header("hdr.ipv4", &fields);
    b.simple_parser(&[h]);
    let slots = b.p.header(h).fields.clone();
    let reads: Vec<ExprId> = slots.iter().map(|&s| b.read(s)).collect();
    let (r1, r2, c) = (b.slot("m.r1", Ty::Bit(16)), b.slot("m.r2", Ty::Bit(16)), b.slot("m.c", Ty::Bit(16)));
    let odd = b.k(0xABCDEF, 24);
    let (old, new) = (b.k(0x4006, 16), b.k(0x3f06, 16));
    let k = b.k(0xb1e6, 16);
    let call = |site: u32, f: u32, args: Vec<ExternArg>, ret: Option<SlotId>| {
        st(StmtKind::Extern {
            call: ExternCall { site: CallSiteId(site), callee: Callee::Function(ExternFnId(f)), args },
            ret,
        })
    };
    b.p.call_sites = 4;
    let drop = b.p.std.drop;
    b.control(vec![(
        vec![
            call(0, 1, vec![ExternArg::List(reads)], Some(slots[9])),
            call(1, 1, vec![ExternArg::In(odd)], Some(r1)),
            assign(c, k),
            call(2, 2, vec![ExternArg::InOut(c), ExternArg::In(old), ExternArg::In(new)], None),
            call(3, 0, vec![ExternArg::InOut(drop), ExternArg::Out(r2)], None),
        ],
        Terminator::Return,
    )]);
    b.p.deparser.emits = vec![h];
    let p = b.p;
    // The Wikipedia example header with its checksum zeroed: csum16 gives 0xb1e6.
    let pkt = [
        0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0, 0, 0xac, 0x10, 0x0a, 0x63, 0xac, 0x10, 0x0a,
        0x0c,
    ];
    let (cpl, layout) = jit(&p, false);
    let mut m = Mock::default();
    let r = run(&cpl, &layout, &pkt, &mut m);
    assert!(m.externs.is_empty(), "no host call for intrinsics");
    assert_eq!(r.slot(&layout, &p, slots[9]), 0xb1e6);
    assert_eq!(&r.out[10..12], &[0xb1, 0xe6]);
    assert_eq!(r.slot(&layout, &p, r1), u128::from(csum_ref(&[(0xABCDEF, 24)])));
    // TTL 64 → 63 in the word ttl++proto: the update equals a recomputation.
    let mut hdr = pkt;
    hdr[8] = 0x3f;
    hdr[10..12].copy_from_slice(&0xb1e6u16.to_be_bytes());
    let want = {
        hdr[10] = 0;
        hdr[11] = 0;
        csum_ref(&hdr.iter().map(|&x| (u128::from(x), 8)).collect::<Vec<_>>())
    };
    assert_eq!(r.slot(&layout, &p, c), u128::from(want));
    assert_eq!(r.slot(&layout, &p, drop), 1);
    assert_eq!(r.slot(&layout, &p, r2), 0, "out arguments read back as 0");

    let (traced, layout) = jit(&p, true);
    let mut m = Mock::default();
    run(&traced, &layout, &pkt, &mut m);
    assert_eq!(m.externs.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [0, 1, 2, 3], "with tracing the host runs them");
}

/// `csum16` of every field of an extracted header, in order, equals the
/// reference over the fields' values at header lengths of 1 to 40 bytes (a
/// partial last 32-bit unit of 1, 2 or 3 bytes included); the same list
/// without its last field too, and the fields concatenated in pairs and
/// triples (`a ++ b ++ c`, which the inline checksum takes apart).
#[test]
fn whole_header_csum16_matches_reference() {
    let mut rng = Rng::new(0xC5C5_0DD5_EED5_0001);
    for case in 0..60 {
        let bytes = 1 + (case % 40) as u32;
        let mut widths = Vec::new();
        let mut left = bytes * 8;
        while left > 0 {
            let w = (1 + rng.below(64) as u32).min(left);
            widths.push(w as u16);
            left -= w;
        }
        let (mut b, h) = extracted_header(&widths);
        let csum16 = b.prelude_fn("csum16");
        let slots = b.p.header(h).fields.clone();
        let whole: Vec<ExprId> = slots.iter().map(|&f| b.read(f)).collect();
        let part = whole[..whole.len() - 1].to_vec();
        // Pairs of fields (each at most 64 bits) as one `++` each, every
        // other one behind the first field too when that fits 128 bits.
        let triple = |i: usize, pair: &[u16]| i % 2 == 1 && widths[0] + pair.iter().sum::<u16>() <= 128;
        let mut joined = Vec::new();
        for (i, group) in whole.chunks(2).enumerate() {
            let mut items = group.to_vec();
            if triple(i, &widths[2 * i..(2 * i + 2).min(widths.len())]) {
                items.insert(0, b.read(slots[0]));
            }
            let first = items[0];
            joined.push(items[1..].iter().fold(first, |acc, &x| b.bin(BinOp::Concat, acc, x)));
        }
        let (r_whole, r_part) = (b.slot("m.whole", Ty::Bit(16)), b.slot("m.part", Ty::Bit(16)));
        let r_joined = b.slot("m.joined", Ty::Bit(16));
        b.p.call_sites = 3;
        let calls = vec![
            list_call(csum16, 0, whole, r_whole),
            list_call(csum16, 1, part, r_part),
            list_call(csum16, 2, joined, r_joined),
        ];
        b.control(vec![(calls, Terminator::Return)]);
        let p = b.p;
        let (c, layout) = jit(&p, false);
        let pkt: Vec<u8> = (0..bytes).map(|_| rng.next() as u8).collect();
        let out = run(&c, &layout, &pkt, &mut Mock::default());
        let mut off = 0;
        let elems: Vec<(u128, u16)> = widths
            .iter()
            .map(|&w| {
                let v = bits_be(&pkt, off, w);
                off += u32::from(w);
                (v, w)
            })
            .collect();
        let ctx = format!("case {case}: {bytes} bytes, widths {widths:?}");
        assert_eq!(out.slot(&layout, &p, r_whole), u128::from(csum_ref(&elems)), "{ctx}");
        assert_eq!(out.slot(&layout, &p, r_part), u128::from(csum_ref(&elems[..elems.len() - 1])), "{ctx}");
        let mut joined = Vec::new();
        for (i, pair) in elems.chunks(2).enumerate() {
            if triple(i, &widths[2 * i..(2 * i + 2).min(widths.len())]) {
                joined.push(elems[0]);
            }
            joined.extend_from_slice(pair);
        }
        assert_eq!(out.slot(&layout, &p, r_joined), u128::from(csum_ref(&joined)), "{ctx}");
    }
}

/// Random element lists: the inline checksum equals the reference.
#[test]
fn inline_csum16_matches_reference_on_random_lists() {
    let mut rng = Rng::new(0xC5C5_1234_5678_9ABC);
    for case in 0..40 {
        let mut b = B::new();
        let csum16 = b.prelude_fn("csum16");
        b.simple_parser(&[]);
        let n = 1 + rng.below(9) as usize;
        let mut elems = Vec::new();
        let mut exprs = Vec::new();
        for _ in 0..n {
            let w = 1 + rng.below(128) as u16;
            let v = (u128::from(rng.next()) << 64 | u128::from(rng.next())) & Ty::Bit(w).mask();
            elems.push((v, w));
            exprs.push(b.k(v, w));
        }
        let r = b.slot("m.r", Ty::Bit(16));
        b.p.call_sites = 1;
        b.control(vec![(vec![list_call(csum16, 0, exprs, r)], Terminator::Return)]);
        let p = b.p;
        let (c, layout) = jit(&p, false);
        let out = run(&c, &layout, &[], &mut Mock::default());
        assert_eq!(out.slot(&layout, &p, r), u128::from(csum_ref(&elems)), "case {case}: {elems:x?}");
    }
}
