//! Checks that need the whole lowered program: properties of the parser
//! graph and of header validity. They run on IR because the graph exists
//! only after lowering; spans on IR nodes point back at the source.
//!
//! - `E0510` unreachable parser state (no path from `start`);
//! - `E0511` a parser loop that can repeat without extracting anything;
//! - `W0512` (a warning, as p4c's "unreachable case") a `select` case that
//!   can never match because an earlier case covers it (duplicate values,
//!   or after `default`); it stays in the program and never matches;
//! - `W0601` reading a field of a header that no path makes valid
//!   (never extracted by a reachable state, never `setValid()`);
//! - `E0414` a control whose code, with every action call and every
//!   action a table apply may run inlined, is more than
//!   [`MAX_INLINED_STATEMENTS`] statements: an action that calls another
//!   twice doubles at each level, and every later stage (the analysis
//!   behind the PHV layout, the JIT, which inlines each call, and the
//!   interpreter's per-packet work) would take time exponential in the
//!   nesting.

use petgraph::algo::tarjan_scc;
use petgraph::graph::NodeIndex;
use petgraph::visit::{Bfs, EdgeRef};

use crate::diag::Diagnostic;
use crate::ir::{self, ExprKind, KeyMatch, Program, SlotKind, StmtKind};

/// Runs every whole-program check and returns its diagnostics.
pub fn analyze(program: &Program) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let reachable = reachable_states(&program.parser);
    unreachable_states(&program.parser, &reachable, &mut diags);
    loops_without_extract(&program.parser, &program.exprs, &reachable, &mut diags);
    shadowed_select_arms(&program.parser, &mut diags);
    never_valid_reads(program, &reachable, &mut diags);
    inline_expansion(program, &mut diags);
    diags
}

/// The most statements a control may have once every action call and
/// every action a table apply may run is inlined (`E0414`). lb.p4lite,
/// the largest bundled program, has 1114. The JIT's time grows faster
/// than the size: a control of 40959 took 2.5 s to compile, one of 163839
/// took 32 s (`p4lite compile --emit asm`, session 20).
pub const MAX_INLINED_STATEMENTS: u64 = 50_000;

/// Each control's size with every action call and every action a table
/// apply may run inlined: one per block and per statement (saturating).
pub fn inlined_sizes(program: &Program) -> Vec<u64> {
    let mut sizes = Expansion::new(program);
    program.controls.iter().map(|c| sizes.body(&c.body)).collect()
}

/// Reports each control whose inlined size ([`inlined_sizes`]) is over
/// [`MAX_INLINED_STATEMENTS`], at the call or apply in its own code that
/// contributes the most.
fn inline_expansion(program: &Program, diags: &mut Vec<Diagnostic>) {
    let mut sizes = Expansion::new(program);
    for control in &program.controls {
        let total = sizes.body(&control.body);
        if total <= MAX_INLINED_STATEMENTS {
            continue;
        }
        let biggest = control
            .body
            .graph
            .node_weights()
            .flat_map(|b| &b.stmts)
            .map(|st| (sizes.stmt(st), st.span))
            .max_by_key(|&(n, _)| n);
        let at = biggest.map_or(control.span, |(_, span)| span);
        let this = biggest.map_or(total, |(n, _)| n);
        diags.push(
            Diagnostic::error(
                "E0414",
                at,
                format!(
                    "control `{}` is {} statements with its action calls inlined, more than the {MAX_INLINED_STATEMENTS} allowed",
                    control.name,
                    shown(total)
                ),
                format!("this statement alone is {} once inlined", shown(this)),
            )
            .with_help(
                "every action call is inlined where it is made, so an action that calls another twice \
                 doubles with each level of nesting: call it fewer times, or move the shared work into \
                 one action called once",
            ),
        );
    }
}

/// A count (a saturated one as "at least" it).
fn shown(n: u64) -> String {
    if n == u64::MAX {
        "at least 18446744073709551615".to_string()
    } else {
        n.to_string()
    }
}

/// Inlined sizes of actions, memoised (actions call only actions declared
/// before them, so each is sized once; a call into an action being sized,
/// which the checker never lets through, counts as one statement).
struct Expansion<'p> {
    program: &'p Program,
    /// Per action: `None` not yet sized, `Some(None)` being sized.
    memo: Vec<Option<Option<u64>>>,
}

impl<'p> Expansion<'p> {
    fn new(program: &'p Program) -> Expansion<'p> {
        Expansion { program, memo: vec![None; program.actions.len()] }
    }

    /// One per block and per statement, plus what each statement inlines
    /// (saturating).
    fn body(&mut self, body: &ir::Body) -> u64 {
        let mut n = 0u64;
        for block in body.graph.node_weights() {
            n = n.saturating_add(1);
            for st in &block.stmts {
                n = n.saturating_add(self.stmt(st));
            }
        }
        n
    }

    /// A statement with the actions it runs inlined.
    fn stmt(&mut self, st: &ir::Stmt) -> u64 {
        match &st.kind {
            StmtKind::CallAction { action, .. } => self.action(*action).saturating_add(1),
            StmtKind::Apply { table, .. } => {
                let actions = self.program.table(*table).runnable_actions();
                actions.into_iter().fold(1u64, |n, a| n.saturating_add(self.action(a)))
            }
            _ => 1,
        }
    }

    fn action(&mut self, a: ir::ActionId) -> u64 {
        match self.memo.get(a.index()).copied() {
            Some(Some(Some(n))) => n,
            Some(Some(None)) | None => 1,
            Some(None) => {
                self.memo[a.index()] = Some(None);
                let n = self.body(&self.program.action(a).body);
                self.memo[a.index()] = Some(Some(n));
                n
            }
        }
    }
}

/// States reachable from `start`, indexed by node.
fn reachable_states(parser: &ir::Parser) -> Vec<bool> {
    let mut seen = vec![false; parser.graph.node_count()];
    let mut bfs = Bfs::new(&parser.graph, parser.start);
    while let Some(n) = bfs.next(&parser.graph) {
        seen[n.index()] = true;
    }
    seen
}

fn unreachable_states(parser: &ir::Parser, reachable: &[bool], diags: &mut Vec<Diagnostic>) {
    for n in parser.graph.node_indices() {
        if !reachable[n.index()] {
            let st = &parser.graph[n];
            diags.push(
                Diagnostic::error(
                    "E0510",
                    st.span,
                    format!("parser state `{}` is unreachable", st.name),
                    "no transition leads here from `start`",
                )
                .with_help("remove the state or add a transition to it"),
            );
        }
    }
}

/// True when a state consumes packet bytes on every pass (an `extract`,
/// or an `advance` by a nonzero constant).
fn consumes(state: &ir::ParserState, exprs: &[ir::Expr]) -> bool {
    state.stmts.iter().any(|s| match &s.kind {
        StmtKind::Extract { .. } | StmtKind::ExtractNext { .. } => true,
        StmtKind::Advance { bits } => !matches!(exprs[bits.index()].kind, ExprKind::Const(0)),
        _ => false,
    })
}

/// A cycle of reachable states none of which consumes input could spin
/// forever on one packet. Find strongly connected components of the
/// subgraph of non-consuming states; any component with a cycle is an error.
fn loops_without_extract(parser: &ir::Parser, exprs: &[ir::Expr], reachable: &[bool], diags: &mut Vec<Diagnostic>) {
    let g = parser
        .graph
        .filter_map(|n, st| (reachable[n.index()] && !consumes(st, exprs)).then_some(n), |_, arm| Some(*arm));
    for scc in tarjan_scc(&g) {
        let cyclic = scc.len() > 1 || scc.iter().any(|&n| g.edges(n).any(|e| e.target() == n));
        if !cyclic {
            continue;
        }
        let mut names: Vec<(NodeIndex, &str)> = scc
            .iter()
            .map(|&n| {
                let orig = g[n];
                (orig, parser.graph[orig].name.as_str())
            })
            .collect();
        names.sort();
        let first = names[0].0;
        let list = names.iter().map(|(_, s)| format!("`{s}`")).collect::<Vec<_>>().join(" → ");
        let mut d = Diagnostic::error(
            "E0511",
            parser.graph[first].span,
            format!("parser loop without extraction: {list}"),
            "this state can be re-entered without consuming any packet bytes",
        )
        .with_help("extract a header (or advance) in at least one state of the loop");
        for (n, _) in names.iter().skip(1) {
            d = d.with_note(parser.graph[*n].span, "part of the loop");
        }
        diags.push(d);
    }
}

/// True when `earlier` matches every key that `later` matches (for one select component).
fn covers(earlier: &KeyMatch, later: &KeyMatch) -> bool {
    match (earlier, later) {
        (KeyMatch::Any, _) => true,
        (_, KeyMatch::Any) => false,
        (KeyMatch::Exact(a), KeyMatch::Exact(b)) => a == b,
        (KeyMatch::Mask { value, mask }, KeyMatch::Exact(b)) => b & mask == value & mask,
        (KeyMatch::Mask { value: v1, mask: m1 }, KeyMatch::Mask { value: v2, mask: m2 }) => {
            // Every key matching (v2, m2) matches (v1, m1) when m1's bits are fixed by m2 to the same values.
            m1 & !m2 == 0 && (v1 & m1) == (v2 & m1)
        }
        (KeyMatch::Range { lo, hi }, KeyMatch::Exact(b)) => lo <= b && b <= hi,
        (KeyMatch::Range { lo: l1, hi: h1 }, KeyMatch::Range { lo: l2, hi: h2 }) => l1 <= l2 && h2 <= h1,
        (KeyMatch::Exact(a), KeyMatch::Range { lo, hi }) => lo == hi && a == lo,
        _ => false,
    }
}

/// Reports select arms that an earlier arm of the same state shadows entirely.
fn shadowed_select_arms(parser: &ir::Parser, diags: &mut Vec<Diagnostic>) {
    for n in parser.graph.node_indices() {
        let st = &parser.graph[n];
        if st.select.is_empty() {
            continue;
        }
        for (i, later) in st.arms.iter().enumerate() {
            let shadow = st.arms[..i].iter().find(|earlier| {
                earlier.keys.len() == later.keys.len()
                    && earlier.keys.iter().zip(&later.keys).all(|(e, l)| covers(e, l))
            });
            if let Some(earlier) = shadow {
                let what = if earlier.keys.iter().all(|k| *k == KeyMatch::Any) {
                    "it comes after `default`"
                } else {
                    "an earlier case already matches every value it matches"
                };
                diags.push(
                    Diagnostic::warning(
                        "W0512",
                        later.span,
                        format!("unreachable `select` case in state `{}`", st.name),
                        format!("this case can never match: {what}"),
                    )
                    .with_note(earlier.span, "covered by this case")
                    .with_help("remove it, or move it before the case that covers it"),
                );
            }
        }
    }
}

/// Headers that some path can make valid: extracted in a reachable parser
/// state (every element of a stack whose `next` is extracted), or `setValid()` anywhere, or written by a whole-header copy
/// (which the checker lowers to an assignment of the validity bit).
fn maybe_valid_headers(program: &Program, reachable: &[bool]) -> Vec<bool> {
    let mut valid = vec![false; program.headers.len()];
    let mut mark = |s: &ir::Stmt| match &s.kind {
        StmtKind::Extract { header } => valid[header.index()] = true,
        StmtKind::ExtractNext { elems, .. } => elems.iter().for_each(|h| valid[h.index()] = true),
        StmtKind::SetValid { header, valid: true } => valid[header.index()] = true,
        StmtKind::Assign { dst, .. } => {
            if let SlotKind::HeaderValid(h) = program.slot(dst.slot).kind {
                valid[h.index()] = true;
            }
        }
        _ => {}
    };
    for n in program.parser.graph.node_indices() {
        if reachable[n.index()] {
            program.parser.graph[n].stmts.iter().for_each(&mut mark);
        }
    }
    let bodies = program.controls.iter().map(|c| &c.body).chain(program.actions.iter().map(|a| &a.body));
    for body in bodies {
        for block in body.graph.node_weights() {
            block.stmts.iter().for_each(&mut mark);
        }
    }
    valid
}

/// Warns once per header whose fields are read though nothing makes it valid.
fn never_valid_reads(program: &Program, reachable: &[bool], diags: &mut Vec<Diagnostic>) {
    let valid = maybe_valid_headers(program, reachable);
    let mut warned = vec![false; program.headers.len()];
    for e in &program.exprs {
        let ExprKind::Slot(slot) = e.kind else { continue };
        let SlotKind::HeaderField { header, .. } = program.slot(slot).kind else { continue };
        if valid[header.index()] || warned[header.index()] {
            continue;
        }
        warned[header.index()] = true;
        let name = &program.header(header).name;
        diags.push(
            Diagnostic::warning(
                "W0601",
                e.span,
                format!("`{name}` is read but no path makes it valid"),
                "this always reads 0",
            )
            .with_help(format!("extract `{name}` in the parser or call `{name}.setValid()` before reading it")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Sources;

    /// A router-shaped program whose parser never extracts `hdr.ipv4` unless
    /// `extract_ipv4` is set; the control reads `hdr.ipv4.ttl` either way.
    fn program(extract_ipv4: bool) -> String {
        let parse_ipv4 = if extract_ipv4 { "pkt.extract(hdr.ipv4);" } else { "" };
        format!(
            r#"
header ethernet_t {{ bit<48> dst; bit<48> src; bit<16> ether_type; }}
header ipv4_t {{ bit<8> ver_ihl; bit<8> ttl; bit<16> rest; }}
struct headers_t {{ ethernet_t ethernet; ipv4_t ipv4; }}
struct meta_t {{ bit<8> x; }}
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t std) {{
    state start {{
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {{ 0x0800: parse_ipv4; default: accept; }}
    }}
    state parse_ipv4 {{ {parse_ipv4} transition accept; }}
}}
control C(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t std) {{
    apply {{ meta.x = hdr.ipv4.ttl; }}
}}
control D(packet_out pkt, in headers_t hdr) {{ apply {{ pkt.emit(hdr.ethernet); pkt.emit(hdr.ipv4); }} }}
Pipeline(P(), C(), D()) main;
"#
        )
    }

    fn codes(src: &str) -> Vec<&'static str> {
        crate::compile(&Sources::new("t.p4lite", src)).diagnostics.iter().map(|d| d.code).collect()
    }

    #[test]
    fn warns_when_a_read_header_is_never_valid() {
        assert_eq!(codes(&program(false)), vec!["W0601"]);
        assert_eq!(codes(&program(true)), Vec::<&str>::new());
    }

    #[test]
    fn set_valid_counts_as_making_a_header_valid() {
        let src = program(false).replace("apply { meta.x", "apply { hdr.ipv4.setValid(); meta.x");
        assert_eq!(codes(&src), Vec::<&str>::new());
    }

    /// A case an earlier one covers is a warning (p4c: "unreachable case"),
    /// not an error: the program compiles, the case stays and never matches.
    #[test]
    fn a_covered_select_case_is_a_warning() {
        let dup = program(true).replace("0x0800: parse_ipv4; default", "0x0800: parse_ipv4; 0x0800: accept; default");
        let after_default = program(true).replace("default: accept;", "default: accept; 0x86dd: accept;");
        for src in [dup, after_default] {
            let c = crate::compile(&Sources::new("t.p4lite", src.as_str()));
            assert_eq!(c.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(), vec!["W0512"], "{src}");
            assert_eq!(c.diagnostics[0].severity, crate::diag::Severity::Warning);
            let ir = c.ir.expect("compiles");
            assert_eq!(ir.parser.graph[ir.parser.start].arms.len(), 3, "the dead case is kept");
        }
    }

    #[test]
    fn masks_and_ranges_cover_what_they_should() {
        assert!(covers(&KeyMatch::Any, &KeyMatch::Exact(5)));
        assert!(!covers(&KeyMatch::Exact(5), &KeyMatch::Any));
        assert!(covers(&KeyMatch::Exact(0x800), &KeyMatch::Exact(0x800)));
        assert!(covers(&KeyMatch::Mask { value: 0x8100, mask: 0xEFFF }, &KeyMatch::Exact(0x9100)));
        assert!(!covers(&KeyMatch::Mask { value: 0x8100, mask: 0xEFFF }, &KeyMatch::Exact(0x8101)));
        assert!(covers(&KeyMatch::Range { lo: 1, hi: 10 }, &KeyMatch::Range { lo: 2, hi: 10 }));
        assert!(!covers(&KeyMatch::Range { lo: 1, hi: 10 }, &KeyMatch::Range { lo: 0, hi: 10 }));
        assert!(covers(&KeyMatch::Mask { value: 0x10, mask: 0xF0 }, &KeyMatch::Mask { value: 0x12, mask: 0xFF }));
        assert!(!covers(&KeyMatch::Mask { value: 0x12, mask: 0xFF }, &KeyMatch::Mask { value: 0x10, mask: 0xF0 }));
    }
}
