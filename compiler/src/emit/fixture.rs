//! A hand-built IR program for the emitters' tests: the example of the
//! language brief (ethernet + IPv4, a two-state parser with a select, an
//! ingress control with a branch, a table applied in a `switch`, actions, an
//! extern instance and an extern function call), lowered by hand the way the
//! checker lowers it. It lets the emitters be tested without the front end.

use petgraph::graph::{DiGraph, NodeIndex};

use crate::ast::{BinOp, UnOp};
use crate::ir::*;
use crate::span::{SourceId, Span};

/// Builds arenas one item at a time.
struct B {
    p: Program,
}

fn user() -> Span {
    Span::default()
}

fn prelude() -> Span {
    Span { source: SourceId::PRELUDE, lo: 0, hi: 0 }
}

impl B {
    fn slot(&mut self, name: &str, ty: Ty, kind: SlotKind) -> SlotId {
        self.p.slots.push(Slot { name: name.to_string(), ty, kind });
        SlotId(self.p.slots.len() as u32 - 1)
    }

    fn expr(&mut self, kind: ExprKind, ty: Ty) -> ExprId {
        self.p.exprs.push(Expr { kind, ty, span: user() });
        ExprId(self.p.exprs.len() as u32 - 1)
    }

    fn read(&mut self, s: SlotId) -> ExprId {
        let ty = self.p.slots[s.index()].ty;
        self.expr(ExprKind::Slot(s), ty)
    }

    fn konst(&mut self, v: u128, ty: Ty) -> ExprId {
        self.expr(ExprKind::Const(v), ty)
    }

    fn header_type(&mut self, name: &str, fields: &[(&str, u16)]) -> HeaderTypeId {
        let fields: Vec<(String, u16)> = fields.iter().map(|(n, w)| (n.to_string(), *w)).collect();
        let bit_len = fields.iter().map(|(_, w)| u32::from(*w)).sum();
        self.p.header_types.push(HeaderType { name: name.to_string(), fields, bit_len, span: user() });
        HeaderTypeId(self.p.header_types.len() as u32 - 1)
    }

    fn header(&mut self, name: &str, ty: HeaderTypeId) -> HeaderId {
        let id = HeaderId(self.p.headers.len() as u32);
        let ht = self.p.header_types[ty.index()].clone();
        let fields = ht
            .fields
            .iter()
            .enumerate()
            .map(|(i, (f, w))| {
                self.slot(&format!("{name}.{f}"), Ty::Bit(*w), SlotKind::HeaderField { header: id, field: i as u32 })
            })
            .collect();
        let valid = self.slot(&format!("{name}.$valid"), Ty::Bool, SlotKind::HeaderValid(id));
        self.p.headers.push(Header {
            name: name.to_string(),
            ty,
            fields,
            valid,
            byte_len: ht.bit_len / 8,
            span: user(),
        });
        id
    }

    /// The slot of field `f` of header `h`.
    fn field(&self, h: HeaderId, f: &str) -> SlotId {
        let hdr = &self.p.headers[h.index()];
        let ht = &self.p.header_types[hdr.ty.index()];
        let i = ht.fields.iter().position(|(n, _)| n == f).expect("fixture names a real field");
        hdr.fields[i]
    }

    fn site(&mut self) -> CallSiteId {
        self.p.call_sites += 1;
        CallSiteId(self.p.call_sites - 1)
    }
}

fn stmt(kind: StmtKind) -> Stmt {
    Stmt { kind, span: user() }
}

fn assign(slot: SlotId, src: ExprId) -> Stmt {
    stmt(StmtKind::Assign { dst: LValue { slot, slice: None }, src })
}

/// A body from blocks listed in graph order; terminators name blocks by their
/// position in the list, and the graph's edges are derived from them.
fn body(blocks: Vec<(Vec<Stmt>, Terminator)>) -> Body {
    let mut graph = DiGraph::new();
    for (stmts, term) in &blocks {
        graph.add_node(BasicBlock { stmts: stmts.clone(), term: term.clone() });
    }
    for (i, (_, term)) in blocks.iter().enumerate() {
        let from = NodeIndex::new(i);
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
    Body { graph, entry: NodeIndex::new(0) }
}

fn n(i: usize) -> NodeIndex {
    NodeIndex::new(i)
}

/// The example program of the language brief, lowered by hand.
pub(crate) fn program() -> Program {
    let empty_parser = Parser { name: String::new(), graph: DiGraph::new(), start: n(0), span: user() };
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
            parser: empty_parser,
            controls: Vec::new(),
            deparser: Deparser { name: String::new(), emits: Vec::new(), span: user() },
            std: StdSlots {
                ingress_port: SlotId(0),
                egress_spec: SlotId(0),
                packet_length: SlotId(0),
                timestamp: SlotId(0),
                mcast_grp: SlotId(0),
                drop: SlotId(0),
            },
        },
    };

    // Types and storage.
    let eth_t = b.header_type("ethernet_t", &[("dst_addr", 48), ("src_addr", 48), ("ether_type", 16)]);
    let ipv4_t = b.header_type(
        "ipv4_t",
        &[
            ("version", 4),
            ("ihl", 4),
            ("diffserv", 8),
            ("total_len", 16),
            ("identification", 16),
            ("flags", 3),
            ("frag_offset", 13),
            ("ttl", 8),
            ("protocol", 8),
            ("hdr_checksum", 16),
            ("src_addr", 32),
            ("dst_addr", 32),
        ],
    );
    let eth = b.header("hdr.ethernet", eth_t);
    let ipv4 = b.header("hdr.ipv4", ipv4_t);
    b.slot("meta.nhop", Ty::Bit(32), SlotKind::Meta);
    let std = StdSlots {
        ingress_port: b.slot("std.ingress_port", Ty::Bit(9), SlotKind::Std),
        egress_spec: b.slot("std.egress_spec", Ty::Bit(9), SlotKind::Std),
        packet_length: b.slot("std.packet_length", Ty::Bit(32), SlotKind::Std),
        timestamp: b.slot("std.timestamp", Ty::Bit(64), SlotKind::Std),
        mcast_grp: b.slot("std.mcast_grp", Ty::Bit(16), SlotKind::Std),
        drop: b.slot("std.drop", Ty::Bit(1), SlotKind::Std),
    };
    b.p.std = std;
    let tmp = b.slot("MyIngress.tmp", Ty::Bit(8), SlotKind::Local);
    let t0 = b.slot("MyIngress.$t0", Ty::Bit(32), SlotKind::Temp);
    let t1 = b.slot("MyIngress.$t1", Ty::Bool, SlotKind::Temp);
    let t2 = b.slot("MyIngress.$t2", Ty::Bit(16), SlotKind::Temp);

    // Externs: a prelude object type and functions, one instance.
    b.p.extern_types.push(ExternType {
        name: "counter".to_string(),
        type_params: Vec::new(),
        constructors: vec![vec![ParamSig { name: "size".into(), dir: Dir::In, ty: SigTy::Scalar(Ty::Bit(32)) }]],
        methods: vec![MethodSig {
            name: "count".into(),
            type_params: Vec::new(),
            params: vec![ParamSig { name: "index".into(), dir: Dir::In, ty: SigTy::Scalar(Ty::Bit(32)) }],
            ret: None,
        }],
        span: prelude(),
    });
    b.p.extern_fns.push(ExternFn {
        sig: MethodSig {
            name: "mark_to_drop".into(),
            type_params: Vec::new(),
            params: vec![ParamSig {
                name: "std".into(),
                dir: Dir::InOut,
                ty: SigTy::Struct("standard_metadata_t".into()),
            }],
            ret: None,
        },
        span: prelude(),
    });
    b.p.extern_fns.push(ExternFn {
        sig: MethodSig {
            name: "csum16".into(),
            type_params: vec!["D".into()],
            params: vec![ParamSig { name: "data".into(), dir: Dir::In, ty: SigTy::Param("D".into()) }],
            ret: Some(SigTy::Scalar(Ty::Bit(16))),
        },
        span: prelude(),
    });
    b.p.instances.push(Instance {
        name: "MyIngress.per_port".into(),
        ty: ExternTypeId(0),
        type_args: Vec::new(),
        ctor_args: vec![1024],
        span: user(),
    });

    // Actions: NoAction, drop, forward.
    let no_action = ActionId(0);
    b.p.actions.push(Action {
        name: "NoAction".into(),
        params: Vec::new(),
        body: body(vec![(Vec::new(), Terminator::Return)]),
        span: prelude(),
    });
    let drop = ActionId(1);
    let site = b.site();
    b.p.actions.push(Action {
        name: "MyIngress.drop".into(),
        params: Vec::new(),
        body: body(vec![(
            vec![stmt(StmtKind::Extern {
                call: ExternCall {
                    site,
                    callee: Callee::Function(ExternFnId(0)),
                    args: vec![ExternArg::InOut(std.drop)],
                },
                ret: None,
            })],
            Terminator::Return,
        )]),
        span: user(),
    });
    let forward = ActionId(2);
    let dmac = b.slot("MyIngress.forward.dmac", Ty::Bit(48), SlotKind::ActionParam { action: forward, index: 0 });
    let port = b.slot("MyIngress.forward.port", Ty::Bit(9), SlotKind::ActionParam { action: forward, index: 1 });
    let (dst, ttl) = (b.field(eth, "dst_addr"), b.field(ipv4, "ttl"));
    let (e_dmac, e_port, e_ttl) = (b.read(dmac), b.read(port), b.read(ttl));
    let one8 = b.konst(1, Ty::Bit(8));
    let dec = b.expr(ExprKind::Binary(BinOp::Sub, e_ttl, one8), Ty::Bit(8));
    b.p.actions.push(Action {
        name: "MyIngress.forward".into(),
        params: vec![dmac, port],
        body: body(vec![(
            vec![assign(dst, e_dmac), assign(std.egress_spec, e_port), assign(ttl, dec)],
            Terminator::Return,
        )]),
        span: user(),
    });

    // The table.
    let ip_dst = b.field(ipv4, "dst_addr");
    let key = b.read(ip_dst);
    b.p.tables.push(Table {
        name: "MyIngress.routes".into(),
        keys: vec![TableKey { expr: key, kind: MatchKind::Lpm, name: "hdr.ipv4.dst_addr".into(), width: 32 }],
        actions: vec![forward, drop, no_action],
        default_action: ActionCall { action: drop, args: Vec::new() },
        default_const: false,
        size: 1024,
        entries: vec![ConstEntry {
            keys: vec![KeyMatch::Prefix { value: 0x0a00_0000, len: 8 }],
            call: ActionCall { action: forward, args: vec![0x0011_2233_4455, 1] },
            priority: None,
            span: user(),
        }],
        entries_const: true,
        span: user(),
    });

    // The parser.
    let ether_type = b.field(eth, "ether_type");
    let sel = b.read(ether_type);
    let mut graph = DiGraph::new();
    let start = graph.add_node(ParserState {
        name: "start".into(),
        stmts: vec![stmt(StmtKind::Extract { header: eth })],
        select: vec![sel],
        arms: Vec::new(),
        span: user(),
    });
    let parse_ipv4 = graph.add_node(ParserState {
        name: "parse_ipv4".into(),
        stmts: vec![stmt(StmtKind::Extract { header: ipv4 })],
        select: Vec::new(),
        arms: vec![SelectArm { keys: Vec::new(), next: Next::Accept, span: user() }],
        span: user(),
    });
    graph[start].arms = vec![
        SelectArm { keys: vec![KeyMatch::Exact(0x0800)], next: Next::State(parse_ipv4), span: user() },
        SelectArm { keys: vec![KeyMatch::Mask { value: 0x8100, mask: 0xefff }], next: Next::Accept, span: user() },
        SelectArm { keys: vec![KeyMatch::Range { lo: 0x0600, hi: 0x06ff }], next: Next::Reject, span: user() },
        SelectArm { keys: vec![KeyMatch::Any], next: Next::Accept, span: user() },
    ];
    graph.add_edge(start, parse_ipv4, 0);
    b.p.parser = Parser { name: "MyParser".into(), graph, start, span: user() };

    // The ingress control:
    //   if (hdr.ipv4.isValid() && hdr.ipv4.ttl > 1) {
    //       switch (routes.apply().action_run) { forward: { per_port.count((bit<32>)std.egress_spec); } default: {} }
    //   } else if (!routes.apply().hit) { drop(); exit; }
    //   hdr.ipv4.hdr_checksum = 0;
    //   hdr.ipv4.hdr_checksum = csum16({hdr.ipv4.version, hdr.ipv4.ihl});
    //   tmp = hdr.ipv4.ttl[7:4] ++ 4w0;
    let valid = b.p.headers[ipv4.index()].valid;
    let e_valid = b.read(valid);
    let e_ttl = b.read(ttl);
    let one = b.konst(1, Ty::Bit(8));
    let gt = b.expr(ExprKind::Binary(BinOp::Gt, e_ttl, one), Ty::Bool);
    let cond = b.expr(ExprKind::Binary(BinOp::And, e_valid, gt), Ty::Bool);
    let e_spec = b.read(std.egress_spec);
    let idx = b.expr(ExprKind::Cast(e_spec), Ty::Bit(32));
    let e_hit = b.read(t1);
    let miss = b.expr(ExprKind::Unary(UnOp::Not, e_hit), Ty::Bool);
    let zero16 = b.konst(0, Ty::Bit(16));
    let (version, ihl, csum) = (b.field(ipv4, "version"), b.field(ipv4, "ihl"), b.field(ipv4, "hdr_checksum"));
    let (e_version, e_ihl, e_t2) = (b.read(version), b.read(ihl), b.read(t2));
    let e_ttl2 = b.read(ttl);
    let hi = b.expr(ExprKind::Slice { base: e_ttl2, hi: 7, lo: 4 }, Ty::Bit(4));
    let zero4 = b.konst(0, Ty::Bit(4));
    let cat = b.expr(ExprKind::Binary(BinOp::Concat, hi, zero4), Ty::Bit(8));
    let (count_site, csum_site) = (b.site(), b.site());
    // Graph order deliberately differs from print order, as a checker's may.
    let ingress = body(vec![
        /* 0 entry */ (Vec::new(), Terminator::Branch { cond, then: n(2), els: n(4) }),
        /* 1 join */
        (
            vec![
                assign(csum, zero16),
                stmt(StmtKind::Extern {
                    call: ExternCall {
                        site: csum_site,
                        callee: Callee::Function(ExternFnId(1)),
                        args: vec![ExternArg::List(vec![e_version, e_ihl])],
                    },
                    ret: Some(t2),
                }),
                assign(csum, e_t2),
                assign(tmp, cat),
            ],
            Terminator::Return,
        ),
        /* 2 then */
        (
            vec![stmt(StmtKind::Apply { table: TableId(0), hit: None, action_run: Some(t0) })],
            Terminator::Switch { value: t0, cases: vec![(forward, n(3))], default: n(1) },
        ),
        /* 3 forward case */
        (
            vec![stmt(StmtKind::Extern {
                call: ExternCall {
                    site: count_site,
                    callee: Callee::Method { instance: InstanceId(0), method: 0 },
                    args: vec![ExternArg::In(idx)],
                },
                ret: None,
            })],
            Terminator::Goto(n(1)),
        ),
        /* 4 else */
        (
            vec![stmt(StmtKind::Apply { table: TableId(0), hit: Some(t1), action_run: None })],
            Terminator::Branch { cond: miss, then: n(5), els: n(1) },
        ),
        /* 5 drop and exit */
        (vec![stmt(StmtKind::CallAction { action: drop, args: Vec::new() })], Terminator::Exit),
    ]);
    b.p.controls.push(Control { name: "MyIngress".into(), body: ingress, span: user() });
    b.p.deparser = Deparser { name: "MyDeparser".into(), emits: vec![eth, ipv4], span: user() };
    b.p
}
