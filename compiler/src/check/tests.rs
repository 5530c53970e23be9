//! Checker tests: each diagnostic on a small program (code, message and the
//! exact text its span covers), lowering shapes, and the example programs.

use petgraph::visit::EdgeRef;

use crate::diag::{self, Diagnostic, Severity};
use crate::ir::{self, Edge, ExprKind, ExternArg, KeyMatch, Next, SlotKind, StmtKind, Terminator};
use crate::span::{SourceId, Sources};
use crate::syntax;

/// Checks `src` with the prelude; panics on syntax errors (the tests are about the checker).
fn run(src: &str) -> (Option<ir::Program>, Vec<Diagnostic>) {
    let prelude = syntax::parse(crate::PRELUDE, SourceId::PRELUDE).expect("the prelude parses");
    let user = match syntax::parse(src, SourceId::USER) {
        Ok(u) => u,
        Err(d) => panic!("syntax error in test program:\n{}\n{src}", show(src, &d)),
    };
    let (ir, mut d) = super::check(&prelude, &user);
    diag::sort(&mut d);
    (ir, d)
}

/// Renders diagnostics without colour, for failure messages.
fn show(src: &str, d: &[Diagnostic]) -> String {
    diag::render(d, &Sources::new("test", src), false)
}

/// The text a diagnostic's span covers.
fn snippet<'s>(src: &'s str, d: &Diagnostic) -> &'s str {
    assert_eq!(d.span.source, SourceId::USER, "diagnostic points into the prelude: {d:?}");
    &src[d.span.lo as usize..d.span.hi as usize]
}

/// The program's IR, which must check without any diagnostic.
fn ok(src: &str) -> ir::Program {
    let (ir, d) = run(src);
    assert!(d.is_empty(), "unexpected diagnostics:\n{}", show(src, &d));
    ir.expect("IR for a clean program")
}

/// Asserts exactly one diagnostic with `code`, a message containing `msg`
/// and a span covering exactly `at`; returns it.
fn one(src: &str, code: &str, msg: &str, at: &str) -> Diagnostic {
    let (ir, d) = run(src);
    assert_eq!(d.len(), 1, "expected one diagnostic, got:\n{}", show(src, &d));
    let d = d.into_iter().next().expect("one diagnostic");
    assert_eq!(d.code, code, "{}", show(src, std::slice::from_ref(&d)));
    assert!(d.message.contains(msg), "message {:?} lacks {msg:?}", d.message);
    assert_eq!(snippet(src, &d), at, "span of {:?}", d.message);
    if d.severity == Severity::Error {
        assert!(ir.is_none(), "IR returned despite an error");
    }
    d
}

/// Header and struct declarations shared by the test programs.
const TYPES: &str = "
const bit<16> ETH_IPV4 = 0x0800;
typedef bit<48> mac_t;
header ethernet_t { mac_t dst_addr; mac_t src_addr; bit<16> ether_type; }
header ipv4_t { bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> total_len;
  bit<16> identification; bit<3> flags; bit<13> frag_offset; bit<8> ttl; bit<8> protocol;
  bit<16> hdr_checksum; bit<32> src_addr; bit<32> dst_addr; }
struct headers_t { ethernet_t ethernet; ipv4_t ipv4; ipv4_t inner; }
struct metadata_t { bit<32> nhop; bit<8> small; bool flag; }
";

/// A whole program with `locals` and `apply` in the one control and
/// `start` statements in the parser's start state.
fn prog(start: &str, locals: &str, apply: &str) -> String {
    format!(
        "{TYPES}
parser P(packet_in pkt, out headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{
    state start {{
        pkt.extract(hdr.ethernet);
        {start}
        transition select(hdr.ethernet.ether_type) {{ ETH_IPV4: parse_ipv4; default: accept; }}
    }}
    state parse_ipv4 {{ pkt.extract(hdr.ipv4); transition accept; }}
}}
control C(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{
    {locals}
    apply {{
        {apply}
    }}
}}
control D(packet_out pkt, in headers_t hdr) {{ apply {{ pkt.emit(hdr.ethernet); pkt.emit(hdr.ipv4); }} }}
Pipeline(P(), C(), D()) main;
"
    )
}

/// A program with only control code.
fn ctl(locals: &str, apply: &str) -> String {
    prog("", locals, apply)
}

/// A routing table and its actions, for table and switch tests.
const ROUTES: &str = "
    action drop() { mark_to_drop(std); }
    action forward(mac_t dmac, bit<9> port) { hdr.ethernet.dst_addr = dmac; std.egress_spec = port; }
    table routes {
        key = { hdr.ipv4.dst_addr : lpm; }
        actions = { forward; drop; }
        default_action = drop();
    }
";

/// Every body's graph edges are exactly its terminators' targets.
fn assert_edges_match(body: &ir::Body) {
    for n in body.graph.node_indices() {
        let mut want: Vec<(usize, Edge)> = match &body.graph[n].term {
            Terminator::Goto(t) => vec![(t.index(), Edge::Goto)],
            Terminator::Branch { then, els, .. } => vec![(then.index(), Edge::True), (els.index(), Edge::False)],
            Terminator::Switch { cases, default, .. } => cases
                .iter()
                .map(|(a, t)| (t.index(), Edge::Case(*a)))
                .chain([(default.index(), Edge::Default)])
                .collect(),
            Terminator::Return | Terminator::Exit => vec![],
        };
        let mut got: Vec<(usize, Edge)> = body.graph.edges(n).map(|e| (e.target().index(), *e.weight())).collect();
        let key = |x: &(usize, Edge)| format!("{x:?}");
        want.sort_by_key(key);
        got.sort_by_key(key);
        assert_eq!(want, got, "edges of {n:?}");
    }
}

/// All statements of a body, in block order.
fn stmts(body: &ir::Body) -> Vec<&ir::Stmt> {
    body.graph.node_weights().flat_map(|b| &b.stmts).collect()
}

/// The slot named `name`.
fn slot(p: &ir::Program, name: &str) -> ir::SlotId {
    let i = p.slots.iter().position(|s| s.name == name).unwrap_or_else(|| panic!("no slot {name}"));
    ir::SlotId(i as u32)
}

// ---- the example programs ----

#[test]
fn example_programs_check_cleanly() {
    for name in ["l2_switch", "ipv4_router", "acl", "lb"] {
        let path = format!("{}/../programs/{name}.p4lite", env!("CARGO_MANIFEST_DIR"));
        let src = std::fs::read_to_string(&path).expect("example program exists");
        let p = ok(&src);
        for body in p.controls.iter().map(|c| &c.body).chain(p.actions.iter().map(|a| &a.body)) {
            assert_edges_match(body);
        }
        let sites: Vec<u32> = p
            .controls
            .iter()
            .map(|c| &c.body)
            .chain(p.actions.iter().map(|a| &a.body))
            .flat_map(stmts)
            .chain(p.parser.graph.node_weights().flat_map(|s| &s.stmts))
            .filter_map(|s| match &s.kind {
                StmtKind::Extern { call, .. } => Some(call.site.0),
                _ => None,
            })
            .collect();
        let mut sorted = sites.clone();
        sorted.sort();
        assert_eq!(sorted, (0..p.call_sites).collect::<Vec<_>>(), "{name}: call sites numbered 0..n once each");
    }
}

// ---- lowering shapes ----

#[test]
fn if_else_lowers_to_a_branch_with_both_edges() {
    let p = ok(&ctl("", "if (hdr.ipv4.ttl > 1) { meta.small = 1; } else { meta.small = 2; }"));
    let body = &p.controls[0].body;
    assert_edges_match(body);
    let Terminator::Branch { cond, then, els } = body.graph[body.entry].term else {
        panic!("entry ends in {:?}", body.graph[body.entry].term)
    };
    assert_eq!(p.expr(cond).ty, ir::Ty::Bool);
    assert_ne!(then, els);
    for b in [then, els] {
        assert!(matches!(body.graph[b].term, Terminator::Goto(_)));
        assert_eq!(body.graph[b].stmts.len(), 1);
    }
}

#[test]
fn switch_lowers_to_a_switch_on_the_action_run_temp() {
    let apply =
        "switch (routes.apply().action_run) { forward: drop: { meta.small = 1; } default: { meta.small = 2; } }";
    let p = ok(&ctl(ROUTES, apply));
    let body = &p.controls[0].body;
    assert_edges_match(body);
    let entry = &body.graph[body.entry];
    let StmtKind::Apply { table, hit: None, action_run: Some(run) } = entry.stmts[0].kind else {
        panic!("{:?}", entry.stmts)
    };
    assert_eq!(p.table(table).name, "C.routes");
    assert_eq!(p.slot(run).kind, SlotKind::Temp);
    let Terminator::Switch { value, cases, default } = &entry.term else { panic!("{:?}", entry.term) };
    assert_eq!(*value, run);
    // `forward:` has no block, so it shares `drop`'s.
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0].1, cases[1].1);
    assert_eq!(p.action(cases[0].0).name, "C.forward");
    assert_ne!(*default, cases[0].1);
}

#[test]
fn calls_with_results_are_hoisted_before_the_statement() {
    let p = ok(&ctl("", "hdr.ipv4.hdr_checksum = csum16(hdr.ipv4) + 1;"));
    let s = stmts(&p.controls[0].body);
    let StmtKind::Extern { call, ret: Some(t) } = &s[0].kind else { panic!("{s:?}") };
    assert_eq!(call.site, ir::CallSiteId(0));
    assert_eq!(p.call_sites, 1);
    assert!(matches!(&call.args[..], [ExternArg::List(items)] if items.len() == 12));
    let StmtKind::Assign { src, .. } = &s[1].kind else { panic!("{s:?}") };
    let ExprKind::Binary(ir::BinOp::Add, a, _) = p.expr(*src).kind else { panic!() };
    assert_eq!(p.expr(a).kind, ExprKind::Slot(*t));
}

#[test]
fn hit_and_miss_read_the_apply_temp() {
    let p = ok(&ctl(ROUTES, "if (routes.apply().miss) { meta.small = 1; }"));
    let body = &p.controls[0].body;
    let entry = &body.graph[body.entry];
    let StmtKind::Apply { hit: Some(h), action_run: None, .. } = entry.stmts[0].kind else { panic!() };
    let Terminator::Branch { cond, .. } = entry.term else { panic!() };
    let ExprKind::Unary(ir::UnOp::Not, x) = p.expr(cond).kind else { panic!() };
    assert_eq!(p.expr(x).kind, ExprKind::Slot(h));
}

#[test]
fn header_copy_assigns_each_field_and_the_valid_bit() {
    let p = ok(&ctl("", "hdr.inner = hdr.ipv4;"));
    let s = stmts(&p.controls[0].body);
    assert_eq!(s.len(), 13);
    let StmtKind::Assign { dst, src } = &s[12].kind else { panic!() };
    assert_eq!(dst.slot, slot(&p, "hdr.inner.$valid"));
    assert_eq!(p.expr(*src).kind, ExprKind::Slot(slot(&p, "hdr.ipv4.$valid")));
}

#[test]
fn struct_copy_assigns_each_member() {
    let src = ctl("", "meta = meta;");
    let p = ok(&src);
    assert_eq!(stmts(&p.controls[0].body).len(), 3);
}

#[test]
fn unsized_literals_take_the_context_width_and_constants_fold() {
    let p = ok(&ctl("const bit<8> A = 2;", "std.egress_spec = 3; meta.small = A * 3 + 1; meta.small = 1 - 2;"));
    let s = stmts(&p.controls[0].body);
    let consts: Vec<(u128, ir::Ty)> = s
        .iter()
        .map(|st| match &st.kind {
            StmtKind::Assign { src, .. } => match p.expr(*src).kind {
                ExprKind::Const(v) => (v, p.expr(*src).ty),
                k => panic!("not folded: {k:?}"),
            },
            k => panic!("{k:?}"),
        })
        .collect();
    assert_eq!(consts, vec![(3, ir::Ty::Bit(9)), (7, ir::Ty::Bit(8)), (255, ir::Ty::Bit(8))]);
}

/// The values the first control assigns, each of which must be a folded
/// constant; stops at the first statement that is not an assignment.
fn assigned_consts(p: &ir::Program) -> Vec<u128> {
    stmts(&p.controls[0].body)
        .iter()
        .map_while(|st| match &st.kind {
            StmtKind::Assign { src, .. } => match p.expr(*src).kind {
                ExprKind::Const(v) => Some(v),
                k => panic!("not folded: {k:?}"),
            },
            _ => None,
        })
        .collect()
}

#[test]
fn enums_are_their_underlying_type_and_members_are_constants() {
    let src = format!(
        "enum bit<16> EtherType {{ IPV4 = 0x0800, ARP = 0x0806, }}\nenum Color {{ Red, Green, Blue }}\n{}",
        prog(
            "",
            "EtherType last = EtherType.ARP;",
            "meta.nhop = (bit<32>) EtherType.IPV4; meta.nhop = Color.Blue; \
             hdr.ethernet.ether_type = EtherType.ARP;"
        )
        .replace("ETH_IPV4: parse_ipv4", "EtherType.IPV4: parse_ipv4")
    );
    let p = ok(&src);
    assert_eq!(assigned_consts(&p)[..4], [0x0806, 0x0800, 2, 0x0806]);
    let start = &p.parser.graph[p.parser.start];
    assert_eq!(start.arms[0].keys, [KeyMatch::Exact(0x0800)]);
    // A type that is its underlying bit<W>: the local is a bit<16> slot.
    assert_eq!(p.slot(slot(&p, "C.last")).ty, ir::Ty::Bit(16));

    let wrap = |decl: &str, apply: &str| format!("{decl}\n{}", ctl("", apply));
    let d = one(&wrap("enum bit<8> E { A = 1 }", "meta.small = E.B;"), "E0102", "enum `E` has no member `B`", "B");
    assert_eq!(d.help.as_deref(), Some("did you mean `A`?"));
    one(&wrap("enum bit<8> E { A = 1, B }", ""), "E0206", "`E.B` needs a value", "B");
    one(&wrap("enum E { A = 1 }", ""), "E0210", "`E.A` has a value, but `E` has no underlying type", "1");
    one(&wrap("enum bit<8> E { A = 1, A = 2 }", ""), "E0103", "`A` is defined more than once", "A");
    one(&wrap("enum bool E { A = true }", ""), "E0210", "an enum's underlying type must be `bit<W>`", "bool");
    one(&wrap("enum bit<4> E { A = 16 }", ""), "E0203", "16", "16");
}

#[test]
fn verify_lowers_with_its_error_and_errors_are_declared() {
    let src = format!(
        "error {{ BadEthernet, Unused, }}\n{}",
        prog("verify(hdr.ethernet.ether_type != 0, error.BadEthernet); verify(true, error.NoMatch);", "", "")
    );
    let p = ok(&src);
    // core.p4's seven from the prelude, then the program's.
    assert_eq!(p.errors[..3], ["NoError", "PacketTooShort", "NoMatch"]);
    assert_eq!(p.errors[7..], ["BadEthernet", "Unused"]);
    let start = &p.parser.graph[p.parser.start];
    let verifies: Vec<u32> = start
        .stmts
        .iter()
        .filter_map(|s| match s.kind {
            StmtKind::Verify { cond, error } => {
                assert_eq!(p.expr(cond).ty, ir::Ty::Bool);
                Some(error)
            }
            _ => None,
        })
        .collect();
    assert_eq!(verifies, [7, 2]);
    assert!(
        crate::emit::ir_text(&p).contains("verify(hdr.ethernet.ether_type != 16w0, error.BadEthernet)"),
        "{}",
        crate::emit::ir_text(&p)
    );

    // Only in the parser, two arguments, a bool, a declared `error.NAME`.
    one(&ctl("", "verify(true, error.NoMatch);"), "E0506", "`verify` is only allowed in the parser", "verify");
    one(&prog("verify(true);", "", ""), "E0602", "`verify` takes 2 arguments, but 1 were given", "verify(true)");
    one(
        &prog("verify(hdr.ethernet.ether_type, error.NoMatch);", "", ""),
        "E0202",
        "`verify`'s condition must be bool",
        "hdr.ethernet.ether_type",
    );
    let d = one(&prog("verify(true, error.NoMach);", "", ""), "E0102", "there is no `error.NoMach`", "NoMach");
    assert_eq!(d.help.as_deref(), Some("did you mean `NoMatch`?"));
    one(&prog("verify(true, 3);", "", ""), "E0604", "`verify`'s second argument must be an error", "3");
    let d = one(
        &format!("error {{ NoMatch }}\n{}", ctl("", "")),
        "E0103",
        "`NoMatch` is defined more than once",
        "NoMatch",
    );
    assert_eq!(d.notes.len(), 1);
    // The name is core.p4's: declaring it is E0103, at any level.
    one(&ctl("action verify() {}", ""), "E0103", "`verify` is core.p4's function", "verify");
    one(&format!("const bit<8> verify = 1;\n{}", ctl("", "")), "E0103", "the name is taken", "verify");
    // `error` values exist only as verify's argument.
    let d = one(&ctl("", "meta.small = error.NoMatch;"), "E0101", "`error`", "error");
    assert!(d.help.as_deref().is_some_and(|h| h.contains("only `verify`'s second argument")), "{d:?}");
}

#[test]
fn saturating_arithmetic_folds_at_the_width_and_binds_like_plus() {
    let apply = "meta.small = A |+| 100; meta.small = A |-| 201; meta.small = A |+| 55; \
                 meta.small = 8w5 |-| 3 + 1; meta.small = 8w1 + 2 |-| 5; meta.small = 8w2 * 3 |-| 5;";
    let p = ok(&ctl("const bit<8> A = 200;", apply));
    // Left to right at the level of `+` and `-`, below `*`.
    assert_eq!(assigned_consts(&p), [255, 0, 255, 3, 0, 1]);
    let p = ok(&ctl("", "meta.small = meta.small |+| 1; meta.nhop = 7 |-| meta.nhop;"));
    let s = stmts(&p.controls[0].body);
    let ops: Vec<(ir::BinOp, ir::Ty)> = s
        .iter()
        .map(|st| match &st.kind {
            StmtKind::Assign { src, .. } => match p.expr(*src).kind {
                ExprKind::Binary(op, a, b) => {
                    assert_eq!((p.expr(a).ty, p.expr(b).ty), (p.expr(*src).ty, p.expr(*src).ty));
                    (op, p.expr(*src).ty)
                }
                ref k => panic!("{k:?}"),
            },
            k => panic!("{k:?}"),
        })
        .collect();
    assert_eq!(ops, [(ir::BinOp::SatAdd, ir::Ty::Bit(8)), (ir::BinOp::SatSub, ir::Ty::Bit(32))]);
    // Two literals have no width to saturate at (P4_16 defines it on bit<W>).
    let d = one(&ctl("", "meta.small = 1 |+| 2;"), "E0212", "`|+|` needs an operand of known width", "1 |+| 2");
    assert!(d.help.as_deref().is_some_and(|h| h.contains("8w200 |+| 100")), "{d:?}");
    one(&ctl("", "meta.small = 3 |-| 2;"), "E0212", "`|-|` needs an operand of known width", "3 |-| 2");
}

#[test]
fn constant_concatenations_fold_to_both_operands_everywhere() {
    let locals = "
        const bit<16> K = 8w0xAB ++ 8w0xCD;
        action fwd(bit<9> p) { std.egress_spec = p; }
        table t {
            key = { hdr.ipv4.identification : exact; }
            actions = { fwd; }
            default_action = fwd(1w1 ++ 8w3);
            const entries = { 8w0x12 ++ 8w0x34 : fwd(1w1 ++ 8w2); }
        }";
    let apply = "hdr.ipv4.diffserv = 6w46 ++ 2w0; hdr.ipv4.identification = K; t.apply();";
    let p = ok(&prog("", locals, apply).replace("ETH_IPV4: parse_ipv4", "8w0x08 ++ 8w0x00: parse_ipv4"));
    assert_eq!(assigned_consts(&p)[..2], [0xb8, 0xabcd]);
    let t = &p.tables[0];
    assert_eq!(t.entries[0].keys, [KeyMatch::Exact(0x1234)]);
    assert_eq!(t.entries[0].call.args, [0x102]);
    assert_eq!(t.default_action.args, [0x103]);
    assert_eq!(p.parser.graph[p.parser.start].arms[0].keys, [KeyMatch::Exact(0x0800)]);
}

#[test]
fn mark_to_drop_sets_the_drop_bit() {
    let p = ok(&ctl("", "mark_to_drop(std);"));
    let s = stmts(&p.controls[0].body);
    let StmtKind::Assign { dst, src } = &s[0].kind else { panic!("{s:?}") };
    assert_eq!(dst.slot, p.std.drop);
    assert_eq!(p.expr(*src).kind, ExprKind::Const(1));
    assert_eq!(p.call_sites, 0);
}

#[test]
fn extern_arguments_by_direction() {
    let p = ok(&ctl("register<bit<32>>(64) r; bit<32> v;", "r.read(v, 3); r.write(0, v + 1);"));
    assert_eq!(p.instances[0].name, "C.r");
    assert_eq!(p.instances[0].type_args, vec![ir::Ty::Bit(32)]);
    assert_eq!(p.instances[0].ctor_args, vec![64]);
    let s = stmts(&p.controls[0].body);
    let StmtKind::Extern { call, ret: None } = &s[0].kind else { panic!("{s:?}") };
    assert_eq!(call.args[0], ExternArg::Out(slot(&p, "C.v")));
    let ExternArg::In(i) = call.args[1] else { panic!() };
    assert_eq!(p.expr(i).ty, ir::Ty::Bit(32));
    assert_eq!(p.callee_sig(call.callee).name, "read");
}

#[test]
fn actions_bind_parameters_and_direct_calls_pass_all_arguments() {
    let p = ok(&ctl(ROUTES, "forward(00:11:22:33:44:55, 2);"));
    let fwd = p.find_action("forward").expect("forward");
    assert_eq!(p.action(fwd).name, "C.forward");
    let params: Vec<&str> = p.action(fwd).params.iter().map(|s| p.slot(*s).name.as_str()).collect();
    assert_eq!(params, ["C.forward.dmac", "C.forward.port"]);
    assert_eq!(p.slot(p.action(fwd).params[1]).kind, SlotKind::ActionParam { action: fwd, index: 1 });
    let s = stmts(&p.controls[0].body);
    let StmtKind::CallAction { action, args } = &s[0].kind else { panic!("{s:?}") };
    assert_eq!(*action, fwd);
    let tys: Vec<ir::Ty> = args.iter().map(|a| p.expr(*a).ty).collect();
    assert_eq!(tys, [ir::Ty::Bit(48), ir::Ty::Bit(9)]);
    let t = &p.tables[0];
    assert_eq!(t.default_action.action, p.find_action("drop").expect("drop"));
    assert_eq!(t.size, 1024);
}

#[test]
fn tables_default_to_no_action_and_normalise_entries() {
    let locals = "
        action a(bit<8> x) {}
        table t {
            key = { hdr.ipv4.dst_addr : lpm; hdr.ipv4.protocol : ternary; hdr.ipv4.ttl : range; hdr.ipv4.ihl : exact; }
            actions = { a; }
            size = 64;
            const entries = {
                (10.0.0.0 / 8, 6 &&& 0xff, 1 .. 5, 5) : a(1) @priority(3);
                (10.0.0.1, 17, 7, 5) : a(2);
                (_, _, _, 4) : a(3);
            }
        }";
    let p = ok(&ctl(locals, "t.apply();"));
    let t = &p.tables[0];
    assert_eq!(p.action(t.default_action.action).name, "NoAction");
    assert_eq!(t.size, 64);
    assert!(t.entries_const);
    assert_eq!(
        t.entries[0].keys,
        [
            KeyMatch::Prefix { value: 0x0a00_0000, len: 8 },
            KeyMatch::Mask { value: 6, mask: 0xff },
            KeyMatch::Range { lo: 1, hi: 5 },
            KeyMatch::Exact(5)
        ]
    );
    assert_eq!(t.entries[0].priority, Some(3));
    assert_eq!(
        t.entries[1].keys,
        [
            KeyMatch::Prefix { value: 0x0a00_0001, len: 32 },
            KeyMatch::Mask { value: 17, mask: 0xff },
            KeyMatch::Range { lo: 7, hi: 7 },
            KeyMatch::Exact(5)
        ]
    );
    assert_eq!(
        t.entries[2].keys,
        [
            KeyMatch::Prefix { value: 0, len: 0 },
            KeyMatch::Mask { value: 0, mask: 0 },
            KeyMatch::Range { lo: 0, hi: 255 },
            KeyMatch::Exact(4)
        ]
    );
    assert_eq!(t.entries[1].call.args, [2]);
}

#[test]
fn parser_states_select_arms_and_direct_transitions() {
    let src = prog("", "", "");
    let p = ok(&src);
    let g = &p.parser.graph;
    let start = &g[p.parser.start];
    assert_eq!(start.name, "start");
    assert_eq!(start.select.len(), 1);
    assert_eq!(start.arms.len(), 2);
    assert_eq!(start.arms[0].keys, [KeyMatch::Exact(0x0800)]);
    assert_eq!(start.arms[1].keys, [KeyMatch::Any]);
    assert_eq!(start.arms[1].next, Next::Accept);
    let Next::State(n) = start.arms[0].next else { panic!() };
    assert_eq!(g[n].name, "parse_ipv4");
    assert_eq!(g[n].arms.len(), 1);
    assert!(g[n].arms[0].keys.is_empty());
    assert!(g[n].select.is_empty());
    assert_eq!(g.edges(p.parser.start).count(), 1);
    assert_eq!(p.deparser.emits.len(), 2);
}

#[test]
fn slots_are_named_after_the_parsers_parameters() {
    let src = format!(
        "{TYPES}
struct inner_t {{ bit<8> a; }}
struct meta2_t {{ inner_t i; bit<8> b; }}
parser P(packet_in p, out headers_t h, inout meta2_t m, inout standard_metadata_t s) {{
    bit<8> count = 3;
    state start {{ p.extract(h.ethernet); transition accept; }}
}}
control C(inout standard_metadata_t sm, inout meta2_t md, inout headers_t hd) {{
    apply {{ hd.ipv4.ttl = md.i.a; sm.egress_spec = 1; }}
}}
control D(in headers_t hh, packet_out o) {{ apply {{ o.emit(hh); }} }}
Pipeline(P(), C(), D()) main;
"
    );
    let p = ok(&src);
    for name in ["h.ipv4.ttl", "h.ethernet.$valid", "m.i.a", "m.b", "s.egress_spec", "P.count"] {
        slot(&p, name);
    }
    assert_eq!(p.headers.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["h.ethernet", "h.ipv4", "h.inner"]);
    // `o.emit(hh)` emits every header of the struct in order.
    assert_eq!(p.deparser.emits.len(), 3);
    // The parser-level initialiser runs in `start`.
    let start = &p.parser.graph[p.parser.start];
    assert!(matches!(start.stmts[0].kind, StmtKind::Assign { .. }));
    assert!(matches!(start.stmts[1].kind, StmtKind::Extract { .. }));
}

#[test]
fn parser_lookahead_advance_and_lists() {
    let src = prog(
        "bit<8> b = pkt.lookahead<bit<8>>(); pkt.advance(16); meta.small = b;",
        "",
        "meta.nhop = hash_crc32({hdr.ipv4.src_addr, hdr.ipv4.protocol, 8w0, meta.small});",
    );
    let p = ok(&src);
    let start = &p.parser.graph[p.parser.start];
    let StmtKind::Assign { src: la, .. } = &start.stmts[1].kind else { panic!("{:?}", start.stmts) };
    assert_eq!(p.expr(*la).kind, ExprKind::Lookahead);
    assert_eq!(p.expr(*la).ty, ir::Ty::Bit(8));
    assert!(matches!(start.stmts[2].kind, StmtKind::Advance { .. }));
    let s = stmts(&p.controls[0].body);
    let StmtKind::Extern { call, .. } = &s[0].kind else { panic!() };
    assert!(matches!(&call.args[..], [ExternArg::List(x)] if x.len() == 4));
}

/// `pkt.lookahead<H>().f` looks at all of `H` (so a packet shorter than `H`
/// rejects, as in P4_16) and takes `f`'s bits; a header wider than the
/// widest lookahead and an unknown field each get one diagnostic.
#[test]
fn lookahead_of_a_header_field() {
    let p = ok(&prog("meta.small = (bit<8>) pkt.lookahead<ethernet_t>().ether_type;", "", ""));
    let start = &p.parser.graph[p.parser.start];
    let StmtKind::Assign { src, .. } = &start.stmts[1].kind else { panic!("{:?}", start.stmts) };
    let ExprKind::Cast(field) = &p.expr(*src).kind else { panic!("{:?}", p.expr(*src)) };
    let ExprKind::Slice { base, hi: 15, lo: 0 } = p.expr(*field).kind else { panic!("{:?}", p.expr(*field)) };
    assert_eq!(p.expr(base).kind, ExprKind::Lookahead);
    assert_eq!(p.expr(base).ty, ir::Ty::Bit(112));
    let src = prog("meta.small = pkt.lookahead<ipv4_t>().ttl;", "", "");
    let d = one(&src, "E0609", "ipv4_t` (160 bits) is not supported", "ipv4_t");
    assert!(d.help.as_deref().is_some_and(|h| h.contains("lookahead<bit<72>>()[7:0]")), "{:?}", d.help);
    one(
        &prog("meta.small = pkt.lookahead<ethernet_t>().ttl;", "", ""),
        "E0102",
        "header `ethernet_t` has no field `ttl`",
        "ttl",
    );
}

/// `h1 == h2` on headers of one type is P4_16's: both invalid, or both
/// valid with equal fields; `!=` is its negation. Other operands are errors.
#[test]
fn headers_compare_with_eq_and_ne() {
    let p = ok(&ctl(
        "",
        "hdr.inner.setValid(); meta.flag = hdr.ipv4 == hdr.inner; if (hdr.ipv4 != hdr.inner) { meta.small = 1; }",
    ));
    let s = stmts(&p.controls[0].body);
    let StmtKind::Assign { src, .. } = &s[1].kind else { panic!("{s:?}") };
    let text = crate::emit::Printer::new(&p).expr(*src);
    assert!(text.starts_with("(!(hdr.ipv4.$valid || hdr.inner.$valid)) || ("), "{text}");
    assert!(
        text.contains("(hdr.ipv4.$valid && hdr.inner.$valid) && (hdr.ipv4.version == hdr.inner.version)"),
        "{text}"
    );
    assert!(text.ends_with("&& (hdr.ipv4.dst_addr == hdr.inner.dst_addr))"), "{text}");
    assert_eq!(text.matches(" == ").count(), 12, "one comparison per field: {text}");
    one(
        &ctl("", "meta.flag = hdr.ipv4 == hdr.ethernet;"),
        "E0308",
        "cannot compare a header `ipv4_t` with a header `ethernet_t`",
        "hdr.ethernet",
    );
    one(
        &ctl("", "meta.flag = hdr.ipv4 != 1;"),
        "E0208",
        "`!=` compares a header with something that is not a header",
        "1",
    );
}

/// A parser whose headers struct is `inout` gets one error at that
/// parameter (not one per block for a "metadata struct" holding headers).
#[test]
fn parser_headers_parameter_must_be_out() {
    let src = prog("", "", "").replace("packet_in pkt, out headers_t hdr", "packet_in pkt, inout headers_t hdr");
    let d = one(&src, "E0703", "parameter `hdr` of parser `P` holds the headers but is `inout`", "inout headers_t hdr");
    assert_eq!(d.help.as_deref(), Some("declare it `out headers_t hdr`"));
}

#[test]
fn exit_and_return_end_blocks() {
    let p = ok(&ctl("action a() { if (meta.flag) { return; } meta.small = 1; }", "a(); exit;"));
    let body = &p.controls[0].body;
    assert_eq!(body.graph[body.entry].term, Terminator::Exit);
    let a = &p.actions[p.find_action("a").expect("a").index()];
    assert_edges_match(&a.body);
    assert!(a.body.graph.node_weights().any(|b| b.term == Terminator::Return && b.stmts.is_empty()));
}

#[test]
fn local_variables_are_reset_each_time_they_are_declared() {
    let p = ok(&ctl("", "bit<8> x; x = x + 1; { bit<8> x = 5; meta.small = x; }"));
    let names: Vec<&str> = p.slots.iter().filter(|s| s.kind == SlotKind::Local).map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["C.x", "C.x#2"]);
    let s = stmts(&p.controls[0].body);
    assert!(matches!(&s[0].kind, StmtKind::Assign { src, .. } if p.expr(*src).kind == ExprKind::Const(0)));
}

// ---- diagnostics: names ----

#[test]
fn unknown_name_suggests_a_close_one() {
    let d = one(&ctl("bit<8> count;", "cont = 1;"), "E0101", "cannot find `cont` in this scope", "cont");
    assert_eq!(d.help.as_deref(), Some("did you mean `count`?"));
}

/// A name from v1model that p4lite lacks gets what to write instead, not a
/// guess at a similar name.
#[test]
fn v1model_names_say_what_p4lite_has_instead() {
    let d = one(
        &ctl("", "update_checksum(true, { hdr.ipv4.ttl }, hdr.ipv4.hdr_checksum);"),
        "E0101",
        "`update_checksum`",
        "update_checksum",
    );
    assert!(d.help.as_deref().is_some_and(|h| h.contains("csum16")), "{:?}", d.help);
    let d = one(&ctl("bit<32> h;", "hash(h, 0, 0, { hdr.ipv4.ttl }, 4);"), "E0101", "`hash`", "hash");
    assert!(d.help.as_deref().is_some_and(|h| h.contains("hash_crc16")), "{:?}", d.help);
    let d = one(&ctl("", "std.egress_spec = std.egress_port;"), "E0102", "has no field `egress_port`", "egress_port");
    assert!(d.help.as_deref().is_some_and(|h| h.contains("`egress_spec`")), "{:?}", d.help);
    let d = one(&ctl("", "if (std.enq_qdepth == 0) { }"), "E0102", "has no field `enq_qdepth`", "enq_qdepth");
    assert!(d.help.as_deref().is_some_and(|h| h.contains("no queues")), "{:?}", d.help);
    let src =
        ctl("action a() {} table t { key = { hdr.ipv4.ttl : exact; } actions = { a; } counters = 1; }", "t.apply();");
    let d = one(&src, "E0407", "unknown table property `counters`", "counters");
    assert!(d.help.as_deref().is_some_and(|h| h.contains("no direct counters")), "{:?}", d.help);
}

#[test]
fn unknown_field_suggests_a_close_one() {
    let d = one(&ctl("", "hdr.ipv5.ttl = 1;"), "E0102", "struct `headers_t` has no field `ipv5`", "ipv5");
    assert_eq!(d.help.as_deref(), Some("did you mean `ipv4`?"));
    let d = one(&ctl("", "hdr.ipv4.tll = 1;"), "E0102", "header `ipv4_t` has no field `tll`", "tll");
    assert_eq!(d.help.as_deref(), Some("did you mean `ttl`?"));
}

#[test]
fn duplicate_definition_points_at_the_first() {
    let src = ctl("bit<8> x; bit<16> x;", "");
    let d = one(&src, "E0103", "`x` is defined more than once", "x");
    assert_eq!(d.notes.len(), 1);
    assert_eq!(d.notes[0].message, "first defined here");
    assert!(d.notes[0].span.lo < d.span.lo);
}

#[test]
fn unknown_type() {
    let d = one(&ctl("mac_tt x;", ""), "E0104", "cannot find type `mac_tt`", "mac_tt");
    assert_eq!(d.help.as_deref(), Some("did you mean `mac_t`?"));
}

#[test]
fn use_before_declaration_says_so() {
    let src = format!("const bit<8> A = B;\nconst bit<8> B = 1;\n{}", ctl("", ""));
    let d = one(&src, "E0101", "cannot find `B`", "B");
    assert!(d.help.as_deref().unwrap_or("").contains("before their use"));
}

#[test]
fn use_before_declaration_in_a_control_says_so() {
    let locals = "table t { key = { meta.small : exact; } actions = { late; } } action late() {}";
    let d = one(&ctl(locals, "t.apply();"), "E0402", "cannot find action `late`", "late");
    assert_eq!(d.notes[0].message, "declared here, after its use");
}

#[test]
fn unsized_operands_without_context() {
    one(
        &ctl("", "meta.nhop = 1 << meta.small;"),
        "E0212",
        "`<<` by a variable amount needs a left side of known width",
        "1",
    );
    let p = ok(&ctl("", "meta.flag = (meta.flag ? 1 : 2) == 2;"));
    let s = stmts(&p.controls[0].body);
    let StmtKind::Assign { src, .. } = &s[0].kind else { panic!() };
    let ExprKind::Binary(ir::BinOp::Eq, a, b) = p.expr(*src).kind else { panic!() };
    assert_eq!(p.expr(a).ty, p.expr(b).ty);
}

// ---- diagnostics: types and widths ----

#[test]
fn width_mismatch_in_assignment_names_both_widths() {
    let d = one(
        &ctl("", "hdr.ipv4.ttl = hdr.ipv4.total_len;"),
        "E0201",
        "`ttl` is bit<8> but the value is bit<16>",
        "hdr.ipv4.total_len",
    );
    assert!(d.help.as_deref().unwrap_or("").contains("(bit<8>)"));
}

#[test]
fn width_mismatch_in_comparison_and_arithmetic() {
    one(
        &ctl("", "if (hdr.ipv4.ttl == hdr.ipv4.total_len) {}"),
        "E0201",
        "`==` operands have different widths: bit<8> and bit<16>",
        "hdr.ipv4.ttl == hdr.ipv4.total_len",
    );
    one(
        &ctl("", "meta.small = meta.small + hdr.ipv4.total_len;"),
        "E0201",
        "`+` operands have different widths",
        "meta.small + hdr.ipv4.total_len",
    );
}

#[test]
fn width_mismatch_in_arguments() {
    one(
        &ctl("register<bit<32>>(64) r;", "r.write(0, meta.small);"),
        "E0201",
        "argument `value` of `r.write` is bit<32> but the value is bit<8>",
        "meta.small",
    );
    one(
        &ctl(ROUTES, "forward(1, meta.nhop);"),
        "E0201",
        "parameter `port` of `forward` is bit<9> but the value is bit<32>",
        "meta.nhop",
    );
}

#[test]
fn bool_and_bit_do_not_mix() {
    one(
        &ctl("", "if (hdr.ipv4.ttl) {}"),
        "E0202",
        "the condition of `if` must be bool, but it is bit<8>",
        "hdr.ipv4.ttl",
    );
    one(&ctl("", "meta.small = meta.flag;"), "E0202", "`small` is bit<8> but the value is bool", "meta.flag");
    one(
        &ctl("", "if (meta.flag && meta.small) {}"),
        "E0202",
        "`&&` needs bool operands, but the right side is bit<8>",
        "meta.small",
    );
}

#[test]
fn literal_that_does_not_fit() {
    let d = one(&ctl("", "hdr.ipv4.ttl = 300;"), "E0203", "`300` does not fit in bit<8>", "300");
    assert_eq!(d.help.as_deref(), Some("bit<8> holds 0 to 255"));
    one(&ctl("", "if (hdr.ipv4.ttl == 256) {}"), "E0203", "`256` does not fit in bit<8>", "256");
    let d = one(&ctl("", "hdr.ipv4.ttl = 8w256;"), "E0203", "`256` does not fit in bit<8>", "8w256");
    assert_eq!(d.help.as_deref(), Some("bit<8> holds 0 to 255"));
    one(&ctl("", "meta.small = 4w16 ++ 4w0;"), "E0203", "`16` does not fit in bit<4>", "4w16");
}

#[test]
fn unsized_arithmetic_beyond_128_bits_is_an_error() {
    let ctl = |apply: &str| prog("", "", apply).replace("bit<8> small;", "bit<8> small; bit<128> big;");
    one(&ctl("meta.big = 1 << 128;"), "E0203", "`1` << `128` does not fit in 128 bits", "1 << 128");
    one(&ctl("meta.big = 3 << 127;"), "E0203", "does not fit in 128 bits", "3 << 127");
    let max = u128::MAX;
    one(&ctl(&format!("meta.big = {max} + 1;")), "E0203", "does not fit in 128 bits", &format!("{max} + 1"));
    one(
        &ctl(&format!("meta.big = 2 * {};", 1u128 << 127)),
        "E0203",
        "does not fit in 128 bits",
        &format!("2 * {}", 1u128 << 127),
    );
    // In a narrower context the value is the same error, not a wrapped zero.
    one(&ctl("meta.small = 1 << 200;"), "E0203", "does not fit in 128 bits", "1 << 200");
    // Up to 128 bits is fine, and so is a sized left side (it wraps).
    let p =
        ok(&ctl(&format!("meta.big = 1 << 127; meta.big = {max} + 0; meta.big = 0 << 200; meta.small = 8w1 << 200;")));
    assert_eq!(assigned_consts(&p), [1 << 127, max, 0, 0]);
}

#[test]
fn counters_and_registers_have_at_most_4_mi_cells() {
    let d = one(&ctl("counter(0x400001) c;", ""), "E0607", "larger than the limit", "0x400001");
    assert_eq!(d.help.as_deref(), Some("a `counter` has at most 0x400000 (4 Mi) cells"));
    one(&ctl("register<bit<8>>(4194305) r;", ""), "E0607", "`register` of 0x400001 cells", "4194305");
    let p = ok(&ctl("counter(0x400000) c; register<bit<8>>(4194304) r;", ""));
    assert_eq!(p.instances.iter().map(|i| i.ctor_args[0]).collect::<Vec<_>>(), [1 << 22, 1 << 22]);
}

/// A `pmtu_cache` holds 1 to 1 Mi entries (`abi::MAX_PMTU_ENTRIES`): other
/// sizes are refused at the argument, not left for the runtime to refuse
/// without a span when the switch is built.
#[test]
fn pmtu_caches_hold_1_to_1_mi_entries() {
    let d = one(&ctl("pmtu_cache(0) p;", ""), "E0607", "`pmtu_cache` of 0 entries", "0");
    assert_eq!(d.help.as_deref(), Some("a `pmtu_cache` holds 1 to 0x100000 (1 Mi) entries"));
    one(&ctl("pmtu_cache(2042414375) p;", ""), "E0607", "`pmtu_cache` of 0x79bcc527 entries", "2042414375");
    let p = ok(&ctl("pmtu_cache(1) a; pmtu_cache(0x100000) b;", ""));
    assert_eq!(p.instances.iter().map(|i| i.ctor_args[0]).collect::<Vec<_>>(), [1, 1 << 20]);
}

#[test]
fn sized_literals_with_invalid_widths() {
    one(&ctl("", "hdr.ipv4.ttl = 0w0;"), "E0204", "bit<0> is not a valid width", "0w0");
    one(&ctl("", "hdr.ipv4.ttl = 129w1;"), "E0204", "bit<129> is not a valid width", "129w1");
}

#[test]
fn an_expression_statement_must_be_a_call() {
    let d = one(&ctl("", "hdr.ipv4.ttl;"), "E0306", "this expression is not a statement", "hdr.ipv4.ttl");
    assert!(d.help.as_deref().unwrap_or("").contains("a call (`f(x);`)"), "{d:?}");
    one(&ctl("", "hdr.ipv4.ttl == 1;"), "E0306", "this expression is not a statement", "hdr.ipv4.ttl == 1");
    // With the other checks: both mistakes of one control are reported.
    let (_, d) = run(&ctl("", "hdr.ipv4.ttl; meta.small = 8w256;"));
    let codes: Vec<&str> = d.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["E0306", "E0203"], "{}", show("", &d));
}

#[test]
fn invalid_widths() {
    one(&ctl("bit<0> x;", ""), "E0204", "bit<0> is not a valid width", "bit<0>");
    one(&ctl("bit<129> x;", ""), "E0204", "bit<129> is not a valid width", "bit<129>");
    one(
        &ctl("", "meta.nhop = (bit<100>)meta.nhop ++ meta.nhop;"),
        "E0204",
        "wider than 128 bits",
        "(bit<100>)meta.nhop ++ meta.nhop",
    );
}

#[test]
fn header_width_must_be_whole_bytes() {
    let src = format!("header odd_t {{ bit<4> a; bit<8> b; }}\n{}", ctl("", ""));
    let d = one(&src, "E0205", "header `odd_t` is 12 bits long, not a whole number of bytes", "odd_t");
    assert!(d.help.as_deref().unwrap_or("").contains("4 bits of padding"));
}

#[test]
fn constants_must_be_constant() {
    one(
        &ctl("const bit<8> K = meta.small;", ""),
        "E0206",
        "constant `K` must be a compile-time constant",
        "meta.small",
    );
}

#[test]
fn slice_bounds() {
    one(&ctl("", "meta.small = hdr.ipv4.ttl[8:1] ++ 1w0;"), "E0207", "slice [8:1] is out of range for bit<8>", "8");
    one(&ctl("", "meta.small[3:4] = 0;"), "E0207", "slice [3:4] has its low bit above its high bit", "4");
}

#[test]
fn operators_on_wrong_kinds() {
    one(&ctl("", "if (meta.flag < 1) {}"), "E0208", "`<` needs bit<W> operands, but this is bool", "meta.flag");
    one(&ctl("", "meta.flag = ~meta.flag;"), "E0208", "`~` needs a bit<W> operand, but this is bool", "meta.flag");
}

#[test]
fn impossible_casts() {
    one(&ctl("", "meta.small = (bit<8>)meta.flag;"), "E0209", "cannot cast bool to bit<8>", "(bit<8>)meta.flag");
    one(&ctl("", "meta.flag = (bool)meta.small;"), "E0209", "cannot cast bit<8> to bool", "(bool)meta.small");
}

#[test]
fn types_not_allowed_in_place() {
    one(&ctl("ipv4_t h;", ""), "E0210", "local variables must be bit<W> or bool, not header `ipv4_t`", "ipv4_t");
    let src = format!("header h_t {{ bool b; bit<7> c; }}\n{}", ctl("", ""));
    one(&src, "E0210", "header fields must be bit<W>", "bool");
}

#[test]
fn headers_and_tables_are_not_values() {
    let d = one(&ctl("", "meta.small = hdr.ipv4;"), "E0211", "`hdr.ipv4` is a header, not a value", "hdr.ipv4");
    assert!(d.help.as_deref().unwrap_or("").contains("isValid"));
    one(&ctl(ROUTES, "meta.flag = routes;"), "E0211", "`routes` is a table, not a value", "routes");
}

#[test]
fn unknown_widths() {
    one(&ctl("", "meta.small = 4 ++ 4w0;"), "E0212", "`++` needs operands of known width", "4");
    one(&ctl("", "meta.small = (bit<8>)csum16(5);"), "E0212", "cannot infer the type `D`", "5");
}

// ---- diagnostics: statements and lvalues ----

#[test]
fn assignments_to_non_lvalues() {
    one(&ctl("", "ETH_IPV4 = 1;"), "E0301", "cannot assign to `ETH_IPV4`", "ETH_IPV4");
    one(&ctl("action a(bit<8> v) { v = 1; }", ""), "E0301", "cannot assign to action parameter `v`", "v");
    one(&ctl("", "1 = meta.small;"), "E0301", "cannot assign to a literal", "1");
    one(&ctl("", "meta.small + 1 = 2;"), "E0301", "cannot assign to `meta.small + 1`", "meta.small + 1");
    let (_, d) = run(&ctl(ROUTES, "routes.apply().hit = true;"));
    assert_eq!(
        d.iter().map(|d| (d.code, d.message.as_str())).collect::<Vec<_>>(),
        [("E0301", "cannot assign to `routes.apply().hit`")]
    );
    let src = format!(
        "{TYPES}
parser P(packet_in pkt, out headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{
    state start {{ transition accept; }}
}}
control C(in headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{
    apply {{ hdr.ipv4.ttl = 1; }}
}}
control D(packet_out pkt, in headers_t hdr) {{ apply {{ pkt.emit(hdr.ipv4); }} }}
Pipeline(P(), C(), D()) main;
"
    );
    one(&src, "E0301", "cannot assign to `hdr.ipv4.ttl`: `hdr` is an `in` parameter", "hdr.ipv4.ttl");
}

#[test]
fn statements_not_allowed_in_a_parser() {
    one(&prog("if (hdr.ethernet.ether_type == 1) { }", "", ""), "E0302", "`if` is not allowed in a parser", "if");
    one(&prog("exit;", "", ""), "E0302", "`exit` is not allowed in a parser", "exit;");
}

#[test]
fn switch_only_on_action_run() {
    one(
        &ctl("", "switch (meta.small) { default: {} }"),
        "E0303",
        "`switch` can only test which action a table ran",
        "meta.small",
    );
}

#[test]
fn switch_labels_must_be_actions_of_the_table() {
    let d = one(
        &ctl(ROUTES, "switch (routes.apply().action_run) { forwrd: {} default: {} }"),
        "E0304",
        "`forwrd` is not an action of table `C.routes`",
        "forwrd",
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `forward`?"));
    one(
        &ctl(ROUTES, "switch (routes.apply().action_run) { drop: {} drop: {} }"),
        "E0304",
        "`drop` appears twice in this switch",
        "drop",
    );
}

#[test]
fn calls_that_would_run_conditionally_are_rejected() {
    let src = ctl(ROUTES, "if (meta.flag && routes.apply().hit) {}");
    let (_, d) = run(&src);
    assert_eq!(d.len(), 1, "{}", show(&src, &d));
    assert_eq!(d[0].code, "E0305");
    assert!(d[0].message.contains("applying a table on the right of `&&`"));
    // The span is the call (the syntax stage may still include the trailing `.hit`).
    assert!(snippet(&src, &d[0]).starts_with("routes.apply()"));
    assert_eq!(&src[d[0].notes[0].span.lo as usize..d[0].notes[0].span.hi as usize], "meta.flag && routes.apply().hit");
    one(
        &ctl("", "meta.small = meta.flag ? (bit<8>)hash_crc16(hdr.ipv4) : 0;"),
        "E0305",
        "calling `hash_crc16` in a branch of `?:`",
        "hash_crc16(hdr.ipv4)",
    );
}

#[test]
fn header_assignment_between_types() {
    one(
        &ctl("", "hdr.ipv4 = hdr.ethernet;"),
        "E0308",
        "cannot assign a header `ethernet_t` to a header `ipv4_t`",
        "hdr.ethernet",
    );
}

// ---- diagnostics: tables and actions ----

#[test]
fn wrong_number_of_action_arguments() {
    let d = one(&ctl(ROUTES, "forward(1);"), "E0401", "action `forward` takes 2 arguments but 1 was given", "1");
    assert_eq!(d.notes[0].message, "declared here");
    let locals = ROUTES.replace("default_action = drop();", "default_action = forward(1);");
    one(&ctl(&locals, ""), "E0401", "action `forward` takes 2 arguments but 1 given", "1");
}

#[test]
fn table_actions_must_be_declared() {
    let locals = ROUTES.replace("actions = { forward; drop; }", "actions = { forwrd; drop; }");
    let d = one(&ctl(&locals, ""), "E0402", "cannot find action `forwrd`", "forwrd");
    assert_eq!(d.help.as_deref(), Some("did you mean `forward`?"));
}

#[test]
fn default_action_must_be_listed() {
    let locals = ROUTES.replace("default_action = drop();", "default_action = NoAction();");
    one(&ctl(&locals, ""), "E0403", "default action `NoAction` is not in the `actions` of table `routes`", "NoAction");
}

#[test]
fn unknown_match_kind() {
    let locals = ROUTES.replace(": lpm;", ": lpn;");
    let d = one(&ctl(&locals, ""), "E0404", "unknown match kind `lpn`", "lpn");
    assert_eq!(d.help.as_deref(), Some("did you mean `lpm`?"));
}

#[test]
fn table_keys_on_missing_fields_and_constants() {
    let locals = ROUTES.replace("hdr.ipv4.dst_addr : lpm", "hdr.ipv4.dst_adr : lpm");
    let d = one(&ctl(&locals, ""), "E0102", "header `ipv4_t` has no field `dst_adr`", "dst_adr");
    assert_eq!(d.help.as_deref(), Some("did you mean `dst_addr`?"));
    let locals = ROUTES.replace("hdr.ipv4.dst_addr : lpm", "ETH_IPV4 : exact");
    one(&ctl(&locals, ""), "E0405", "a table key must not be a constant", "ETH_IPV4");
}

#[test]
fn entry_keysets_must_fit_the_keys() {
    let with = |entries: &str| {
        ctl(&ROUTES.replace("default_action = drop();", &format!("const entries = {{ {entries} }}")), "")
    };
    one(&with("(1, 2) : drop();"), "E0406", "this entry has 2 keysets but table `routes` has 1 key", "1, 2");
    one(
        &with("1 .. 2 : drop();"),
        "E0406",
        "the `lpm` key `hdr.ipv4.dst_addr` cannot be matched with a range",
        "1 .. 2",
    );
    one(&with("10.0.0.0 / 33 : drop();"), "E0406", "prefix length 33 is longer than the key's 32 bits", "33");
    one(&with("10.0.0.0 / 8 : forward(1);"), "E0401", "takes 2 arguments", "1");
}

#[test]
fn unknown_and_repeated_table_properties() {
    let locals = ROUTES.replace("default_action = drop();", "sise = 5;");
    let d = one(&ctl(&locals, ""), "E0407", "unknown table property `sise`", "sise");
    assert_eq!(d.help.as_deref(), Some("did you mean `size`?"));
    let locals = ROUTES.replace("default_action = drop();", "size = 5; size = 6;");
    one(&ctl(&locals, ""), "E0407", "table property `size` is given twice", "size = 6;");
}

#[test]
fn action_parameters_have_no_direction() {
    one(&ctl("action a(out bit<8> x) { x = 1; }", ""), "E0408", "action parameter `x` cannot be `out`", "out bit<8> x");
}

#[test]
fn entry_action_must_be_listed() {
    let locals = ROUTES.replace("default_action = drop();", "const entries = { 10.0.0.0/8 : NoAction(); }");
    one(&ctl(&locals, ""), "E0409", "action `NoAction` is not in the `actions` of table `routes`", "NoAction");
}

#[test]
fn tables_are_applied_only_in_apply_blocks() {
    let locals = format!("{ROUTES} action again() {{ routes.apply(); }}");
    one(&ctl(&locals, ""), "E0411", "tables cannot be applied in an action", "routes.apply()");
    one(
        &ctl(ROUTES, "meta.nhop = (bit<32>)routes.apply().action_run;"),
        "E0411",
        "`action_run` can only be used in a `switch`",
        "action_run",
    );
}

#[test]
fn only_one_lpm_key() {
    let locals = ROUTES.replace("hdr.ipv4.dst_addr : lpm;", "hdr.ipv4.dst_addr : lpm; hdr.ipv4.src_addr : lpm;");
    one(&ctl(&locals, ""), "E0412", "only one `lpm` key", "lpm");
}

// ---- diagnostics: parser ----

/// A program whose parser has the given states.
fn states(body: &str) -> String {
    format!(
        "{TYPES}
parser P(packet_in pkt, out headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{ {body} }}
control C(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{ apply {{ }} }}
control D(packet_out pkt, in headers_t hdr) {{ apply {{ pkt.emit(hdr.ethernet); }} }}
Pipeline(P(), C(), D()) main;
"
    )
}

#[test]
fn state_without_transition() {
    let d = one(
        &states("state start { pkt.extract(hdr.ethernet); }"),
        "E0501",
        "state `start` has no `transition`",
        "start",
    );
    assert!(d.help.is_some());
}

#[test]
fn unknown_state_in_transition() {
    let src = states("state start { pkt.extract(hdr.ethernet); transition parse_ipv; } state parse_ipv4 { pkt.extract(hdr.ipv4); transition accept; }");
    let d = one(&src, "E0502", "parser `P` has no state `parse_ipv`", "parse_ipv");
    assert_eq!(d.help.as_deref(), Some("did you mean `parse_ipv4`?"));
}

#[test]
fn parser_needs_a_start_state() {
    one(&states("state begin { transition accept; }"), "E0503", "parser `P` has no `start` state", "P");
}

#[test]
fn select_case_arity_and_width() {
    let src = states(
        "state start { pkt.extract(hdr.ethernet); transition select(hdr.ethernet.ether_type) { (1, 2): accept; default: reject; } }",
    );
    one(&src, "E0504", "this case has 2 keysets but `select` has 1 expression", "1, 2");
    let src = states(
        "state start { pkt.extract(hdr.ethernet); transition select(hdr.ethernet.ether_type) { 0x10000: accept; default: reject; } }",
    );
    one(&src, "E0203", "`0x10000` does not fit in bit<16>", "0x10000");
    let src = states(
        "state start { pkt.extract(hdr.ethernet); transition select(hdr.ethernet.ether_type) { 8w1: accept; default: reject; } }",
    );
    one(&src, "E0201", "the select expression is bit<16> but the value is bit<8>", "8w1");
}

#[test]
fn extract_needs_a_header() {
    one(&prog("pkt.extract(hdr);", "", ""), "E0505", "`extract` needs a header, but `hdr` is a struct", "hdr");
    one(
        &prog("pkt.extract(meta.small);", "", ""),
        "E0505",
        "`extract` needs a header, but `meta.small` is a single value",
        "meta.small",
    );
}

#[test]
fn parser_operations_outside_the_parser() {
    let src = format!(
        "{TYPES}
parser P(packet_in pkt, out headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{
    state start {{ transition accept; }}
}}
control C(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t std, packet_in pkt) {{
    apply {{ pkt.extract(hdr.ipv4); }}
}}
control D(packet_out pkt, in headers_t hdr) {{ apply {{ pkt.emit(hdr.ipv4); }} }}
Pipeline(P(), C(), D()) main;
"
    );
    one(&src, "E0703", "only the parser takes a `packet_in`", "packet_in");
}

#[test]
fn packet_methods_of_the_other_block() {
    let src = ctl("", "").replace("pkt.emit(hdr.ipv4);", "pkt.extract(hdr.ipv4);");
    one(&src, "E0506", "`extract` is only allowed in the parser", "extract");
    one(&prog("pkt.emit(hdr.ipv4);", "", ""), "E0704", "`emit` is only allowed in the deparser", "emit");
}

#[test]
fn accept_and_reject_are_reserved() {
    one(
        &states("state start { transition accept; } state accept { transition reject; }"),
        "E0507",
        "`accept` is a built-in state",
        "accept",
    );
}

#[test]
fn keyset_kinds_in_select() {
    let src = states(
        "state start { pkt.extract(hdr.ethernet); transition select(hdr.ethernet.ether_type) { 5 .. 1: accept; default: reject; } }",
    );
    one(&src, "E0508", "the range 5 .. 1 is empty", "5 .. 1");
}

#[test]
fn advance_whole_bytes() {
    one(&prog("pkt.advance(12);", "", ""), "E0509", "12 is not a multiple of 8", "12");
}

// ---- diagnostics: externs and calls ----

#[test]
fn unknown_extern_method() {
    let d = one(
        &ctl("register<bit<32>>(64) r;", "r.wrte(0, 1);"),
        "E0601",
        "`r` (extern `register`) has no method `wrte`",
        "wrte",
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `write`?"));
    let d = one(&ctl("", "hdr.ipv4.setvalid();"), "E0601", "a header has no method `setvalid`", "setvalid");
    assert_eq!(d.help.as_deref(), Some("did you mean `setValid`?"));
}

#[test]
fn wrong_number_of_extern_arguments() {
    one(&ctl("counter(4) c;", "c.count(1, 2);"), "E0602", "`c.count` takes 1 argument but 2 were given", "1, 2");
}

#[test]
fn out_arguments_need_lvalues() {
    one(
        &ctl("register<bit<32>>(64) r;", "r.read(meta.nhop + 1, 0);"),
        "E0603",
        "argument `result` of `r.read` is `out`, so it must be a variable or field",
        "meta.nhop + 1",
    );
    one(&ctl("register<bit<32>>(64) r;", "r.read(ETH_IPV4, 0);"), "E0603", "is `out`", "ETH_IPV4");
}

#[test]
fn arguments_of_the_wrong_kind() {
    one(
        &ctl("register<bit<32>>(64) r;", "r.write(0, hdr.ipv4);"),
        "E0604",
        "argument `value` of `r.write` is bit<32>, but a header, struct or list was given",
        "hdr.ipv4",
    );
    one(&ctl("", "mark_to_drop(meta);"), "E0604", "`mark_to_drop` takes the standard metadata", "meta");
    one(&ctl("", "meta.small = mark_to_drop(std);"), "E0604", "returns no value", "mark_to_drop(std)");
}

#[test]
fn constructor_arguments_are_constants() {
    one(
        &ctl("counter((bit<32>)meta.small) c;", ""),
        "E0605",
        "constructor arguments must be compile-time constants",
        "(bit<32>)meta.small",
    );
}

#[test]
fn lists_are_whole_bytes() {
    let d = one(
        &ctl("", "hdr.ipv4.hdr_checksum = csum16({hdr.ipv4.version, hdr.ipv4.ttl});"),
        "E0606",
        "`csum16` takes whole bytes, but this is 12 bits",
        "{hdr.ipv4.version, hdr.ipv4.ttl}",
    );
    assert!(d.help.as_deref().unwrap_or("").contains("4w0"));
}

#[test]
fn extern_instantiation() {
    let d = one(&ctl("register(64) r;", ""), "E0607", "`register` takes 1 type argument but 0 given", "register");
    assert!(d.help.as_deref().unwrap_or("").contains("register<bit<32>>"));
    one(&ctl("counter(1, 2) c;", ""), "E0607", "no constructor of `counter` takes 2 arguments", "c");
}

#[test]
fn not_callable() {
    one(&ctl("bit<8> x;", "x();"), "E0608", "`x` is not a function or action", "x");
}

#[test]
fn unsupported_extern_signatures() {
    let src = format!("{TYPES}\nextern void take(in ipv4_t h);\n{}", ctl("", "").replace(TYPES, ""));
    one(&src, "E0609", "extern signatures cannot use header `ipv4_t`", "ipv4_t");
}

#[test]
fn calls_in_table_keys() {
    let locals = ROUTES.replace("hdr.ipv4.dst_addr : lpm", "hash_crc32(hdr.ipv4) : exact");
    one(&ctl(&locals, ""), "E0610", "calling `hash_crc32` is not allowed in table keys", "hash_crc32(hdr.ipv4)");
}

#[test]
fn user_externs_are_checked_against_their_declaration() {
    let src = format!(
        "extern bit<32> random32();\nextern meter {{ meter(bit<32> size, bit<32> rate, bit<32> burst); bool take(in bit<32> index); }}\n{}",
        ctl("meter(16, 1000, 10) m;", "if (m.take(3)) { meta.nhop = random32(); }")
    );
    let p = ok(&src);
    assert_eq!(p.call_sites, 2);
    assert_eq!(p.instances[0].ctor_args, [16, 1000, 10]);
}

// ---- diagnostics: pipeline ----

#[test]
fn pipeline_is_required() {
    let src = ctl("", "").replace("Pipeline(P(), C(), D()) main;", "");
    one(&src, "E0701", "the program has no `Pipeline(...)` package", "");
}

#[test]
fn pipeline_shape() {
    let src = ctl("", "").replace("Pipeline(P(), C(), D())", "Pipeline(C(), P(), D())");
    let (_, d) = run(&src);
    assert!(d.iter().all(|d| d.code == "E0702"), "{}", show(&src, &d));
    assert_eq!(snippet(&src, &d[0]), "C()");
    let src = ctl("", "").replace("Pipeline(P(), C(), D())", "Pipeline(P(), D())");
    let (_, d) = run(&src);
    assert_eq!(d.iter().map(|d| d.code).collect::<Vec<_>>(), ["W0701", "E0702"], "{}", show(&src, &d));
    assert!(d[1].message.contains("`Pipeline` needs a parser, at least one control and a deparser"));
    assert_eq!(snippet(&src, &d[1]), "Pipeline(P(), D()) main;");
    let src = ctl("", "").replace("Pipeline(P(), C(), D())", "Pipeline(P(), C(), Q())");
    let (_, d) = run(&src);
    assert_eq!(d.iter().map(|d| d.code).collect::<Vec<_>>(), ["W0701", "E0101"], "{}", show(&src, &d));
    assert_eq!(snippet(&src, &d[1]), "Q");
}

#[test]
fn block_parameters_by_type() {
    let src = ctl("", "").replace("control C(inout headers_t hdr,", "control C(inout bit<8> x, inout headers_t hdr,");
    one(&src, "E0703", "block parameters cannot have type bit<8>", "bit<8>");
}

#[test]
fn deparser_only_emits_headers() {
    let src = ctl("", "").replace("pkt.emit(hdr.ethernet);", "hdr.ethernet.setInvalid();");
    one(&src, "E0704", "the deparser can only emit headers", "hdr.ethernet.setInvalid();");
    let src = ctl("", "").replace("pkt.emit(hdr.ethernet);", "pkt.emit(hdr.ethernet.ether_type);");
    one(&src, "E0705", "`emit` needs a header, but `hdr.ethernet.ether_type` is not one", "hdr.ethernet.ether_type");
}

#[test]
fn only_one_pipeline() {
    let src = ctl("", "").replace("main;", "main; Pipeline(P(), C(), D()) other;");
    one(&src, "E0706", "more than one `Pipeline`", "other");
}

#[test]
fn warnings_for_unreachable_code_and_unused_blocks() {
    let (ir, d) = run(&ctl("", "exit; meta.small = 1;"));
    assert!(ir.is_some());
    assert_eq!(d.iter().map(|d| d.code).collect::<Vec<_>>(), ["W0301"]);
    let src = ctl("", "")
        .replace("Pipeline", "control Unused(inout headers_t hdr) { apply { hdr.ipv4.ttl = 1; } }\nPipeline");
    let d = one(&src, "W0701", "`Unused` is not used by the `Pipeline`", "Unused");
    assert_eq!(d.severity, Severity::Warning);
    // Mistakes in an unused block are still reported.
    let src = ctl("", "")
        .replace("Pipeline", "control Unused(inout headers_t hdr) { apply { hdr.ipv4.ttl = 300; } }\nPipeline");
    let (_, d) = run(&src);
    assert_eq!(d.iter().map(|d| d.code).collect::<Vec<_>>(), ["W0701", "E0203"]);
}

// ---- many mistakes ----

#[test]
fn three_unrelated_mistakes_give_three_diagnostics() {
    let src = prog("pkt.extract(hdr.ipv5);", "bit<8> x;", "x = 300; hdr.ipv4.ttl = meta.nhop;");
    let (ir, d) = run(&src);
    assert!(ir.is_none());
    assert_eq!(d.iter().map(|d| d.code).collect::<Vec<_>>(), ["E0102", "E0203", "E0201"], "{}", show(&src, &d));
}

#[test]
fn an_error_in_a_declaration_does_not_cascade() {
    let src = ctl("bit<0> x; const bit<8> K = meta.small;", "x = 1; meta.small = K + 1; meta.small = x;");
    let (_, d) = run(&src);
    assert_eq!(d.iter().map(|d| d.code).collect::<Vec<_>>(), ["E0204", "E0206"], "{}", show(&src, &d));
}

/// A program with an MPLS label stack of four, parsed by a loop on `.next`;
/// `APPLY` is the control's body, `STATE` more statements of the loop state.
fn stack_prog(state: &str, apply: &str) -> String {
    format!(
        "
header ethernet_t {{ bit<48> dst; bit<48> src; bit<16> ether_type; }}
header mpls_t {{ bit<20> label; bit<3> tc; bit<1> bos; bit<8> ttl; }}
struct headers_t {{ ethernet_t ethernet; mpls_t[4] mpls; }}
struct metadata_t {{ bit<32> n; }}
parser P(packet_in pkt, out headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{
    state start {{
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {{ 0x8847: labels; default: accept; }}
    }}
    state labels {{
        pkt.extract(hdr.mpls.next);
        {state}
        transition select(hdr.mpls.last.bos) {{ 0: labels; 1: accept; }}
    }}
}}
control C(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {{
    apply {{ {apply} }}
}}
control D(packet_out pkt, in headers_t hdr) {{ apply {{ pkt.emit(hdr.ethernet); pkt.emit(hdr.mpls); }} }}
Pipeline(P(), C(), D()) main;
"
    )
}

#[test]
fn header_stacks_lower_to_headers_a_next_index_and_extract_next() {
    let p = ok(&stack_prog("meta.n = hdr.mpls.lastIndex;", "meta.n = hdr.mpls.size; hdr.mpls.push_front(1);"));
    let names: Vec<&str> = p.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["hdr.ethernet", "hdr.mpls[0]", "hdr.mpls[1]", "hdr.mpls[2]", "hdr.mpls[3]"]);
    let next = p.slots.iter().position(|s| s.name == "hdr.mpls.$next").expect("the next-index slot");
    let labels = p.parser.graph.node_weights().find(|s| s.name == "labels").expect("state labels");
    match &labels.stmts[0].kind {
        StmtKind::ExtractNext { elems, next: n } => {
            assert_eq!(elems.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
            assert_eq!(n.index(), next);
        }
        other => panic!("not an extract of .next: {other:?}"),
    }
    // The deparser emits every element, in index order.
    assert_eq!(p.deparser.emits.iter().map(|h| h.0).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    // `size` is the constant 4; push_front(1) copies 3 headers (5 slots each),
    // invalidates element 0 and moves the next index.
    let body = &p.controls[0].body.graph[p.controls[0].body.entry].stmts;
    let StmtKind::Assign { src, .. } = &body[0].kind else { panic!("{:?}", body[0]) };
    assert_eq!(p.expr(*src).kind, ExprKind::Const(4));
    assert_eq!(body.len(), 1 + 15 + 1 + 1, "{body:?}");
    assert!(matches!(body[16].kind, StmtKind::SetValid { header: ir::HeaderId(1), valid: false }));
    assert!(matches!(&body[17].kind, StmtKind::Assign { dst, .. } if dst.slot.index() == next));
}

/// `a = b` of two stacks of one header type and size copies every element
/// (fields and validity) and the next index, as P4_16 assigns stacks;
/// another type or size is an error at the value.
#[test]
fn header_stacks_assign_whole() {
    let two = |apply: &str| {
        stack_prog("", apply).replace("mpls_t[4] mpls;", "mpls_t[4] mpls; mpls_t[4] copy; mpls_t[3] short;")
    };
    let p = ok(&two("hdr.copy = hdr.mpls;"));
    let body = &p.controls[0].body.graph[p.controls[0].body.entry].stmts;
    assert_eq!(body.len(), 4 * 5 + 1, "four elements of four fields and a validity bit, then the next index");
    let slot_name = |s: &ir::Stmt| match &s.kind {
        StmtKind::Assign { dst, .. } => p.slots[dst.slot.index()].name.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(slot_name(&body[0]), "hdr.copy[0].label");
    assert_eq!(slot_name(&body[4]), "hdr.copy[0].$valid");
    assert_eq!(slot_name(&body[19]), "hdr.copy[3].$valid");
    assert_eq!(slot_name(&body[20]), "hdr.copy.$next");
    one(
        &two("hdr.short = hdr.mpls;"),
        "E0308",
        "cannot assign a header stack `mpls_t[4]` to a header stack `mpls_t[3]`",
        "hdr.mpls",
    );
    one(
        &two("hdr.copy = hdr.ethernet;"),
        "E0308",
        "`hdr.copy` is a header stack, but the value is a header",
        "hdr.ethernet",
    );
}

#[test]
fn header_stack_misuse_is_reported() {
    one(
        &stack_prog("", "meta.n = (bit<32>) hdr.mpls.last.ttl;"),
        "E0506",
        "`hdr.mpls.last` is only allowed in the parser",
        "last",
    );
    one(&stack_prog("", "meta.n = hdr.mpls.nextIndex;"), "E0506", "only allowed in the parser", "nextIndex");
    one(&stack_prog("", "hdr.ethernet[0].dst = 1;"), "E0208", "`hdr.ethernet` is not a header stack", "hdr.ethernet");
    one(
        &stack_prog("meta.n = (bit<32>) hdr.mpls.next.ttl;", ""),
        "E0214",
        "only as `pkt.extract(hdr.mpls.next)`",
        "hdr.mpls.next.ttl",
    );
    one(
        &stack_prog("", "hdr.mpls.pop_front(meta.n);"),
        "E0206",
        "the count of `pop_front` must be a compile-time constant",
        "meta.n",
    );
    one(
        &stack_prog("", "hdr.mpls.last_label = 1;"),
        "E0102",
        "header stack `hdr.mpls` has no member `last_label`",
        "last_label",
    );
    let d = one(&stack_prog("", "hdr.mpls.label = 1;"), "E0102", "has no member `label`", "label");
    assert_eq!(d.help.as_deref(), Some("`label` is a field of each element; pick one: `hdr.mpls[0].label`"));
}

#[test]
fn payload_checksum_only_in_controls() {
    // The payload is where the parser stops: unknown while it runs.
    let src = prog("meta.nhop[15:0] = csum16_with_payload(hdr.ethernet, 8);", "", "");
    one(&src, "E0506", "`csum16_with_payload` is only allowed in controls", "csum16_with_payload");
    // In a control it checks like any extern function.
    let (ir, d) = run(&ctl("", "hdr.ipv4.hdr_checksum = csum16_with_payload({ hdr.ipv4.src_addr }, 8);"));
    assert!(d.is_empty() && ir.is_some(), "{d:?}");
}

#[test]
fn widths_may_be_parenthesized_constants() {
    // P4_16's `bit<(expression)>`: a compile-time constant width.
    let src = format!(
        "const bit<32> W = 12;\ntypedef bit<(W + 4)> w16_t;\n{}",
        ctl("w16_t a; bit<(W)> b; bit<(2 * W)> c;", "a = 1; b = (bit<(W)>) a; c = b ++ b;")
    );
    let (ir, d) = run(&src);
    assert!(d.is_empty(), "{}", show(&src, &d));
    let ir = ir.expect("compiles");
    let width = |name: &str| ir.slots.iter().find(|s| s.name.ends_with(name)).map(|s| s.ty.width());
    assert_eq!((width(".a"), width(".b"), width(".c")), (Some(16), Some(12), Some(24)));
    // Not a constant, zero, too wide: errors with the expression's span.
    one(&ctl("bit<(meta.small)> x;", ""), "E0206", "must be a compile-time constant", "meta.small");
    one(
        &ctl("bit<(W - 12)> x;", "").replace("struct metadata_t", "const bit<32> W = 12;\nstruct metadata_t"),
        "E0204",
        "bit<0> is not a valid width",
        "W - 12",
    );
    one(&ctl("bit<(129)> x;", ""), "E0204", "bit<129> is not a valid width", "129");
    // A bare name is a syntax error that says how to write it.
    let d = syntax::parse("const bit<8> W = 4;\nheader h { bit<W> x; }", SourceId::USER).expect_err("a syntax error");
    assert!(d[0].help.as_deref().is_some_and(|h| h.contains("`bit<(W)>`")), "{d:?}");
}

/// `n` actions, each calling the one before it twice; the control calls the last.
fn doubling_actions(n: usize) -> String {
    let mut locals = String::from("action a0() { meta.nhop = meta.nhop + 1; }\n");
    for i in 1..=n {
        locals.push_str(&format!("action a{i}() {{ a{}(); a{}(); }}\n", i - 1, i - 1));
    }
    ctl(&locals, &format!("a{n}();"))
}

#[test]
fn action_calls_that_expand_past_the_limit_are_an_error_at_once() {
    // 2^24 copies of a0: every later stage would take minutes (the JIT
    // took 99 s on 24 levels before this check); the check is instant.
    let t = std::time::Instant::now();
    let d = one(&doubling_actions(24), "E0414", "statements with its action calls inlined", "a24()");
    assert!(d.label.contains("83886078"), "{}", d.label);
    // Far past u64: the count saturates, nothing overflows.
    let d = one(&doubling_actions(70), "E0414", "at least 18446744073709551615", "a70()");
    assert!(d.help.as_deref().is_some_and(|h| h.contains("doubles")), "{d:?}");
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "took {:?}", t.elapsed());
    // Ten levels (a few thousand statements) are fine, and the size is exact:
    // a0 is its block and one statement; each a_i its block, two calls, and
    // two copies of a_{i-1}.
    let p = ok(&doubling_actions(10));
    let mut a = 2u64;
    for _ in 1..=10 {
        a = 1 + 2 * (1 + a);
    }
    let control = super::graph::inlined_sizes(&p)[0];
    assert_eq!(control, 1 + (1 + a), "the control: its block, the call and a10");
}

#[test]
fn the_example_programs_are_far_below_the_inlining_limit() {
    for name in ["l2_switch", "ipv4_router", "acl", "lb"] {
        let path = format!("{}/../programs/{name}.p4lite", env!("CARGO_MANIFEST_DIR"));
        let p = ok(&std::fs::read_to_string(&path).expect("example program exists"));
        let sizes = super::graph::inlined_sizes(&p);
        eprintln!("{name}: {sizes:?}");
        assert!(sizes.iter().all(|&n| n < super::graph::MAX_INLINED_STATEMENTS / 10), "{name}: {sizes:?}");
    }
}
