//! The parser: states lowered into a graph of [`ir::ParserState`]s, with
//! `select` cases as arms of constant keysets.

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::ast;
use crate::diag::{did_you_mean, Diagnostic};
use crate::ir::{self, KeyMatch, Next, SelectArm};
use crate::span::{Ident, Span};

use super::{BlockCx, BlockKind, Checker, Cx, ETy};

/// A span covering the first `n` bytes of `s` (a statement's keyword).
fn keyword(s: Span, n: u32) -> Span {
    Span { hi: (s.lo + n).min(s.hi), ..s }
}

impl Checker<'_> {
    /// Lowers a parser declaration.
    pub(crate) fn lower_parser(&mut self, p: &ast::ParserDecl) -> ir::Parser {
        self.block = BlockCx { prefix: p.name.name.clone(), kind: BlockKind::Parser, in_action: false };
        self.push_scope();
        self.bind_params(&p.params, BlockKind::Parser);
        self.note_block_names(&p.locals);
        let mut init = Vec::new();
        for l in &p.locals {
            self.block_local(l, &mut init);
        }

        let mut graph: DiGraph<ir::ParserState, usize> = DiGraph::new();
        let mut index: HashMap<String, NodeIndex> = HashMap::new();
        let mut nodes: Vec<(NodeIndex, &ast::StateDecl)> = Vec::new();
        for st in &p.states {
            let name = st.name.name.as_str();
            if name == "accept" || name == "reject" {
                self.report(
                    Diagnostic::error(
                        "E0507",
                        st.name.span,
                        format!("`{name}` is a built-in state and cannot be declared"),
                        "reserved state name",
                    )
                    .with_help(format!("rename this state; `transition {name};` already ends parsing")),
                );
                continue;
            }
            if let Some(&n) = index.get(name) {
                let first: Span = graph[n].span;
                self.duplicate(&st.name, first);
                continue;
            }
            let n = graph.add_node(ir::ParserState {
                name: name.to_string(),
                stmts: Vec::new(),
                select: Vec::new(),
                arms: Vec::new(),
                span: st.name.span,
            });
            index.insert(name.to_string(), n);
            nodes.push((n, st));
        }
        let start = match index.get("start") {
            Some(&n) => n,
            None => {
                self.report(
                    Diagnostic::error(
                        "E0503",
                        p.name.span,
                        format!("parser `{}` has no `start` state", p.name.name),
                        "no `start` state",
                    )
                    .with_help("parsing begins in `state start { ... }`; add one"),
                );
                NodeIndex::new(0)
            }
        };

        for (n, st) in nodes {
            let mut stmts = if n == start { init.clone() } else { Vec::new() };
            self.push_scope();
            for s in &st.body {
                self.parser_stmt(s, &mut stmts);
            }
            let (select, arms) = match &st.transition {
                None => {
                    self.report(
                        Diagnostic::error(
                            "E0501",
                            st.name.span,
                            format!("state `{}` has no `transition`", st.name.name),
                            "this state never transitions",
                        )
                        .with_help("end it with `transition accept;`, `transition reject;` or a `transition select`"),
                    );
                    (Vec::new(), Vec::new())
                }
                Some(ast::Transition::Direct(id)) => {
                    let next = self.next_state(id, &index, &p.name.name);
                    (Vec::new(), vec![SelectArm { keys: Vec::new(), next, span: id.span }])
                }
                Some(ast::Transition::Select { exprs, cases, .. }) => {
                    self.select(exprs, cases, &index, &p.name.name, &mut stmts)
                }
            };
            self.pop_scope();
            for (k, arm) in arms.iter().enumerate() {
                if let Next::State(t) = arm.next {
                    graph.add_edge(n, t, k);
                }
            }
            let state = &mut graph[n];
            state.stmts = stmts;
            state.select = select;
            state.arms = arms;
        }
        self.pop_scope();
        self.block_names.clear();
        self.block = BlockCx { prefix: String::new(), kind: BlockKind::TopLevel, in_action: false };
        ir::Parser { name: p.name.name.clone(), graph, start, span: p.span }
    }

    /// One statement of a parser state.
    fn parser_stmt(&mut self, s: &ast::Stmt, out: &mut Vec<ir::Stmt>) {
        let mut cx = Cx::new();
        let not_here = |c: &mut Self, span: Span, what: &str, help: &str| {
            c.report(
                Diagnostic::error(
                    "E0302",
                    span,
                    format!("{what} is not allowed in a parser"),
                    "not allowed in a parser",
                )
                .with_help(help.to_string()),
            );
        };
        match &s.kind {
            ast::StmtKind::Assign { lhs, rhs } => self.assign(lhs, rhs, s.span, &mut cx),
            ast::StmtKind::Call(e) => self.call_stmt(e, &mut cx),
            ast::StmtKind::Var(v) => self.var_stmt(v, &mut cx),
            ast::StmtKind::Const(c) => self.const_stmt(c),
            ast::StmtKind::Block(b) => {
                self.push_scope();
                for s in &b.stmts {
                    self.parser_stmt(s, out);
                }
                self.pop_scope();
            }
            ast::StmtKind::If { .. } => {
                not_here(self, keyword(s.span, 2), "`if`", "branch with `transition select(...)` instead")
            }
            ast::StmtKind::Switch { .. } => {
                not_here(self, keyword(s.span, 6), "`switch`", "branch with `transition select(...)` instead")
            }
            ast::StmtKind::Exit => not_here(self, s.span, "`exit`", "stop parsing with `transition reject;`"),
            ast::StmtKind::Return => not_here(self, s.span, "`return`", "end the state with `transition accept;`"),
        }
        out.append(&mut cx.pre);
    }

    /// The target of a transition.
    fn next_state(&mut self, id: &Ident, index: &HashMap<String, NodeIndex>, parser: &str) -> Next {
        match id.name.as_str() {
            "accept" => Next::Accept,
            "reject" => Next::Reject,
            name => match index.get(name) {
                Some(&n) => Next::State(n),
                None => {
                    let mut names: Vec<&str> = index.keys().map(String::as_str).collect();
                    names.extend(["accept", "reject"]);
                    let mut d = Diagnostic::error(
                        "E0502",
                        id.span,
                        format!("parser `{parser}` has no state `{name}`"),
                        "unknown state",
                    );
                    if let Some(s) = did_you_mean(name, names.iter().copied()) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.report(d);
                    Next::Reject
                }
            },
        }
    }

    /// `transition select(E...) { cases }`: the select expressions and arms.
    fn select(
        &mut self,
        exprs: &[ast::Expr],
        cases: &[ast::SelectCase],
        index: &HashMap<String, NodeIndex>,
        parser: &str,
        stmts: &mut Vec<ir::Stmt>,
    ) -> (Vec<ir::ExprId>, Vec<SelectArm>) {
        let mut cx = Cx::new();
        let mut tys = Vec::new();
        let mut ids = Vec::new();
        for e in exprs {
            let t = self.rvalue(e, &mut cx);
            let t = if t.ty == ETy::Int {
                self.report(
                    Diagnostic::error("E0212", e.span, "`select` on an integer of unknown width", "no width")
                        .with_help("select on a field or variable"),
                );
                super::TExpr::error(e.span)
            } else {
                t
            };
            tys.push(t.ty);
            ids.push(self.emit(&t));
        }
        stmts.append(&mut cx.pre);

        let mut arms = Vec::new();
        for case in cases {
            let next = self.next_state(&case.next, index, parser);
            let all_default = case.keysets.len() == 1 && case.keysets[0].kind == ast::KeysetKind::Default;
            let keys = if all_default {
                vec![KeyMatch::Any; tys.len()]
            } else if case.keysets.len() != tys.len() {
                let span = match (case.keysets.first(), case.keysets.last()) {
                    (Some(a), Some(b)) => a.span.to(b.span),
                    _ => case.span,
                };
                self.error(
                    "E0504",
                    span,
                    format!(
                        "this case has {} keyset{} but `select` has {} expression{}",
                        case.keysets.len(),
                        if case.keysets.len() == 1 { "" } else { "s" },
                        tys.len(),
                        if tys.len() == 1 { "" } else { "s" }
                    ),
                    format!("expected {}", tys.len()),
                );
                continue;
            } else {
                let mut keys = Vec::new();
                for (ks, ty) in case.keysets.iter().zip(&tys) {
                    keys.push(self.select_keyset(ks, *ty).unwrap_or(KeyMatch::Any));
                }
                keys
            };
            arms.push(SelectArm { keys, next, span: case.span });
        }
        (ids, arms)
    }

    /// One keyset of a select case, matched against an expression of type `ty`.
    fn select_keyset(&mut self, ks: &ast::Keyset, ty: ETy) -> Option<KeyMatch> {
        let what = "the select expression";
        match &ks.kind {
            ast::KeysetKind::Default => Some(KeyMatch::Any),
            ast::KeysetKind::Value(v) => Some(KeyMatch::Exact(self.const_scalar(v, Some(ty), what)?.value)),
            ast::KeysetKind::Mask(v, m) => {
                let value = self.const_scalar(v, Some(ty), what);
                let mask = self.const_scalar(m, Some(ty), what);
                let (value, mask) = (value?.value, mask?.value);
                Some(KeyMatch::Mask { value: value & mask, mask })
            }
            ast::KeysetKind::Range(lo, hi) => {
                let l = self.const_scalar(lo, Some(ty), what);
                let h = self.const_scalar(hi, Some(ty), what);
                let (l, h) = (l?.value, h?.value);
                if l > h {
                    self.error("E0508", ks.span, format!("the range {l} .. {h} is empty"), "low end above high end");
                    return None;
                }
                Some(KeyMatch::Range { lo: l, hi: h })
            }
            ast::KeysetKind::Prefix(..) => {
                self.report(
                    Diagnostic::error(
                        "E0508",
                        ks.span,
                        "`/` prefixes are only allowed in table entries",
                        "not allowed in `select`",
                    )
                    .with_help("match several values with a mask: `value &&& mask`"),
                );
                None
            }
        }
    }
}
