//! Hand-built IR programs for the unit tests of the tables and the control
//! plane: just the parts they read (actions with parameter slots, tables).
//! Action bodies are empty and the parser accepts at once.

use p4lite_compiler::ir::{
    self, ActionCall, ActionId, BasicBlock, Body, ConstEntry, KeyMatch, MatchKind, SelectArm, Slot, SlotId, SlotKind,
    TableId, TableKey, Terminator, Ty,
};
use p4lite_compiler::span::Span;
use petgraph::graph::DiGraph;

/// A program with no headers, only the standard-metadata slots and `NoAction`.
pub(crate) fn program() -> ir::Program {
    let mut slots = Vec::new();
    let mut std = |name: &str, w: u16| {
        slots.push(Slot { name: format!("std.{name}"), ty: Ty::Bit(w), kind: SlotKind::Std });
        SlotId(slots.len() as u32 - 1)
    };
    let std = ir::StdSlots {
        ingress_port: std("ingress_port", 9),
        egress_spec: std("egress_spec", 9),
        packet_length: std("packet_length", 32),
        timestamp: std("timestamp", 64),
        mcast_grp: std("mcast_grp", 16),
        drop: std("drop", 1),
    };
    let mut graph = DiGraph::new();
    let start = graph.add_node(ir::ParserState {
        name: "start".into(),
        stmts: vec![],
        select: vec![],
        arms: vec![SelectArm { keys: vec![], next: ir::Next::Accept, span: Span::default() }],
        span: Span::default(),
    });
    let mut p = ir::Program {
        header_types: vec![],
        headers: vec![],
        slots,
        exprs: vec![],
        extern_types: vec![],
        extern_fns: vec![],
        instances: vec![],
        actions: vec![],
        tables: vec![],
        call_sites: 0,
        errors: Vec::new(),
        parser: ir::Parser { name: "P".into(), graph, start, span: Span::default() },
        controls: vec![],
        deparser: ir::Deparser { name: "D".into(), emits: vec![], span: Span::default() },
        std,
    };
    action(&mut p, "NoAction", &[]);
    p
}

/// Adds an action with `bit<W>` parameters `(name, W)`.
pub(crate) fn action(p: &mut ir::Program, name: &str, params: &[(&str, u16)]) -> ActionId {
    let id = ActionId(p.actions.len() as u32);
    let params = params
        .iter()
        .enumerate()
        .map(|(i, &(n, w))| {
            p.slots.push(Slot {
                name: format!("{name}.{n}"),
                ty: Ty::Bit(w),
                kind: SlotKind::ActionParam { action: id, index: i as u32 },
            });
            SlotId(p.slots.len() as u32 - 1)
        })
        .collect();
    let mut graph = DiGraph::new();
    let entry = graph.add_node(BasicBlock { stmts: vec![], term: Terminator::Return });
    p.actions.push(ir::Action { name: name.into(), params, body: Body { graph, entry }, span: Span::default() });
    id
}

/// Adds a table with keys `(name, kind, width)`; default `NoAction`, size 1024, no entries.
pub(crate) fn table(p: &mut ir::Program, name: &str, keys: &[(&str, MatchKind, u16)], actions: &[ActionId]) -> TableId {
    let keys = keys
        .iter()
        .map(|&(n, kind, width)| {
            p.exprs.push(ir::Expr { kind: ir::ExprKind::Const(0), ty: Ty::Bit(width), span: Span::default() });
            TableKey { expr: ir::ExprId(p.exprs.len() as u32 - 1), kind, name: n.into(), width }
        })
        .collect();
    p.tables.push(ir::Table {
        name: name.into(),
        keys,
        actions: actions.to_vec(),
        default_action: ActionCall { action: ActionId(0), args: vec![] },
        default_const: false,
        size: 1024,
        entries: vec![],
        entries_const: false,
        span: Span::default(),
    });
    TableId(p.tables.len() as u32 - 1)
}

/// A const entry.
pub(crate) fn entry(keys: &[KeyMatch], action: ActionId, args: &[u128], priority: Option<u32>) -> ConstEntry {
    ConstEntry {
        keys: keys.to_vec(),
        call: ActionCall { action, args: args.to_vec() },
        priority,
        span: Span::default(),
    }
}

/// The program the control-plane tests use, shaped like the IPVS load
/// balancer's tables:
/// - `MyIngress.routes`: lpm on `hdr.ipv4.dst_addr`, actions forward/drop/NoAction, default drop.
/// - `MyIngress.vips`: exact (dst_addr, protocol, dst_port), action set_vip(bit<16> svc).
/// - `MyIngress.acl`: ternary src_addr + range dst_port, priority-ranked, size 4.
/// - `MyIngress.fixed`: exact key, `const entries` and `const default_action`.
/// - `MyIngress.v6`: lpm on a bit<128> IPv6 address.
/// - `MyEgress.smac`: exact on `std.egress_spec` (bit<9>), action `MyEgress.forward` (ambiguous short name).
pub(crate) fn lb_program() -> ir::Program {
    let mut p = program();
    let fwd = action(&mut p, "MyIngress.forward", &[("dmac", 48), ("port", 9)]);
    let drop = action(&mut p, "MyIngress.drop", &[]);
    let set_vip = action(&mut p, "MyIngress.set_vip", &[("svc", 16)]);
    let deny = action(&mut p, "MyIngress.deny", &[]);
    let allow = action(&mut p, "MyIngress.allow", &[]);
    let efwd = action(&mut p, "MyEgress.forward", &[("smac", 48)]);
    let no = ActionId(0);

    let routes = table(&mut p, "MyIngress.routes", &[("hdr.ipv4.dst_addr", MatchKind::Lpm, 32)], &[fwd, drop, no]);
    p.tables[routes.index()].default_action = ActionCall { action: drop, args: vec![] };
    table(
        &mut p,
        "MyIngress.vips",
        &[
            ("hdr.ipv4.dst_addr", MatchKind::Exact, 32),
            ("hdr.ipv4.protocol", MatchKind::Exact, 8),
            ("meta.dst_port", MatchKind::Exact, 16),
        ],
        &[set_vip, no],
    );
    let acl = table(
        &mut p,
        "MyIngress.acl",
        &[("hdr.ipv4.src_addr", MatchKind::Ternary, 32), ("meta.dst_port", MatchKind::Range, 16)],
        &[deny, allow, no],
    );
    p.tables[acl.index()].size = 4;
    let fixed = table(&mut p, "MyIngress.fixed", &[("hdr.ethernet.ether_type", MatchKind::Exact, 16)], &[drop, no]);
    let t = &mut p.tables[fixed.index()];
    t.entries = vec![entry(&[KeyMatch::Exact(0x86dd)], drop, &[], None)];
    t.entries_const = true;
    t.default_const = true;
    table(&mut p, "MyIngress.v6", &[("hdr.ipv6.dst_addr", MatchKind::Lpm, 128)], &[fwd, drop]);
    table(&mut p, "MyEgress.smac", &[("std.egress_spec", MatchKind::Exact, 9)], &[efwd, no]);
    p
}
