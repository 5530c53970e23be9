//! Statements of controls and actions, lowered into [`ir::Body`] graphs.
//!
//! [`Flow`] builds the graph: statements go into the current basic block;
//! `if` and `switch` end it with a terminator and open new blocks. Edges are
//! added only when a terminator is set, from its targets, so the graph's
//! edges are exactly the terminators' successors (the IR's invariant).

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::ast;
use crate::diag::{did_you_mean, Diagnostic};
use crate::ir::{self, ActionId, BasicBlock, Edge, LValue, Stmt, StmtKind, Terminator};
use crate::span::Span;

use super::expr::{LTarget, Place};
use super::{expr_text, Access, Binding, Checker, Cx, ETy, InstId, Member, TExpr};

/// A body under construction.
pub(crate) struct Flow {
    graph: DiGraph<BasicBlock, Edge>,
    entry: NodeIndex,
    /// The block statements go into; `None` after `exit`/`return`.
    cur: Option<NodeIndex>,
    /// Whether unreachable code was already reported in this body.
    warned: bool,
}

impl Flow {
    /// A body with an empty entry block.
    pub(crate) fn new() -> Flow {
        let mut graph = DiGraph::new();
        let entry = graph.add_node(BasicBlock { stmts: Vec::new(), term: Terminator::Return });
        Flow { graph, entry, cur: Some(entry), warned: false }
    }

    /// A new empty block (ending in `Return` until sealed otherwise).
    fn new_block(&mut self) -> NodeIndex {
        self.graph.add_node(BasicBlock { stmts: Vec::new(), term: Terminator::Return })
    }

    /// Appends statements to the current block.
    pub(crate) fn extend(&mut self, stmts: Vec<Stmt>) {
        let cur = match self.cur {
            Some(c) => c,
            None => {
                let n = self.new_block();
                self.cur = Some(n);
                n
            }
        };
        self.graph[cur].stmts.extend(stmts);
    }

    /// Ends the current block with `term` (adding its edges); no-op when
    /// there is no current block.
    fn seal(&mut self, term: Terminator) {
        let Some(n) = self.cur.take() else {
            return;
        };
        match &term {
            Terminator::Goto(t) => {
                self.graph.add_edge(n, *t, Edge::Goto);
            }
            Terminator::Branch { then, els, .. } => {
                self.graph.add_edge(n, *then, Edge::True);
                self.graph.add_edge(n, *els, Edge::False);
            }
            Terminator::Switch { cases, default, .. } => {
                for (a, t) in cases {
                    self.graph.add_edge(n, *t, Edge::Case(*a));
                }
                self.graph.add_edge(n, *default, Edge::Default);
            }
            Terminator::Return | Terminator::Exit => {}
        }
        self.graph[n].term = term;
    }

    /// Whether any edge leads to `n`.
    fn reached(&self, n: NodeIndex) -> bool {
        self.graph.neighbors_directed(n, petgraph::Direction::Incoming).next().is_some()
    }

    /// The finished body; the open block returns.
    pub(crate) fn finish(mut self) -> ir::Body {
        self.seal(Terminator::Return);
        ir::Body { graph: self.graph, entry: self.entry }
    }
}

/// A `switch` label, resolved.
enum Label {
    Action(ActionId),
    Default,
    Bad,
}

/// The name an assignment target goes by in messages: the last member (`ttl`).
fn target_name(e: &ast::Expr) -> String {
    match &e.kind {
        ast::ExprKind::Member { member, .. } => member.name.clone(),
        _ => expr_text(e),
    }
}

impl Checker<'_> {
    /// Lowers a `{ ... }` block in a new scope.
    pub(crate) fn block_stmts(&mut self, stmts: &[ast::Stmt], flow: &mut Flow) {
        self.push_scope();
        for s in stmts {
            self.stmt(s, flow);
        }
        self.pop_scope();
    }

    /// Lowers one statement of a control or action.
    fn stmt(&mut self, s: &ast::Stmt, flow: &mut Flow) {
        if flow.cur.is_none() {
            if !flow.warned {
                flow.warned = true;
                self.report(Diagnostic::warning(
                    "W0301",
                    s.span,
                    "unreachable statement",
                    "this never runs: an `exit` or `return` comes before it",
                ));
            }
            let n = flow.new_block();
            flow.cur = Some(n);
        }
        match &s.kind {
            ast::StmtKind::Assign { lhs, rhs } => {
                let mut cx = Cx::new();
                self.assign(lhs, rhs, s.span, &mut cx);
                flow.extend(cx.pre);
            }
            ast::StmtKind::Call(e) => {
                let mut cx = Cx::new();
                self.call_stmt(e, &mut cx);
                flow.extend(cx.pre);
            }
            ast::StmtKind::Var(v) => {
                let mut cx = Cx::new();
                self.var_stmt(v, &mut cx);
                flow.extend(cx.pre);
            }
            ast::StmtKind::Const(c) => self.const_stmt(c),
            ast::StmtKind::If { cond, then, els } => {
                let mut cx = Cx::new();
                let c = self.rvalue(cond, &mut cx);
                let c = self.expect_bool(c, "the condition of `if`");
                flow.extend(cx.pre);
                let cond = self.emit(&c);
                let then_b = flow.new_block();
                let join = flow.new_block();
                let els_b = if els.is_some() { flow.new_block() } else { join };
                flow.seal(Terminator::Branch { cond, then: then_b, els: els_b });
                flow.cur = Some(then_b);
                self.block_stmts(&then.stmts, flow);
                flow.seal(Terminator::Goto(join));
                if let Some(b) = els {
                    flow.cur = Some(els_b);
                    self.block_stmts(&b.stmts, flow);
                    flow.seal(Terminator::Goto(join));
                }
                flow.cur = flow.reached(join).then_some(join);
            }
            ast::StmtKind::Switch { expr, cases } => self.switch_stmt(expr, cases, flow),
            ast::StmtKind::Block(b) => self.block_stmts(&b.stmts, flow),
            ast::StmtKind::Exit => flow.seal(Terminator::Exit),
            ast::StmtKind::Return => flow.seal(Terminator::Return),
        }
    }

    /// A call statement (anything else as a statement is an error).
    pub(crate) fn call_stmt(&mut self, e: &ast::Expr, cx: &mut Cx) {
        if let ast::ExprKind::Call { .. } = e.kind {
            self.call(e, cx, true);
        } else {
            self.report(
                Diagnostic::error("E0306", e.span, "this expression is not a statement", "its value is unused")
                    .with_help("a statement is an assignment (`x = e;`), a call (`f(x);`) or a declaration"),
            );
        }
    }

    /// `lhs = rhs;` (scalars, or whole headers, header stacks and structs of
    /// the same type).
    pub(crate) fn assign(&mut self, lhs: &ast::Expr, rhs: &ast::Expr, span: Span, cx: &mut Cx) {
        match self.lvalue(lhs, cx) {
            LTarget::Scalar { lv, ty } => {
                let v = self.rvalue(rhs, cx);
                let v = self.coerce(v, ty, &format!("`{}`", target_name(lhs)));
                let src = self.emit(&v);
                cx.pre.push(Stmt { kind: StmtKind::Assign { dst: lv, src }, span });
            }
            LTarget::Header(dst) => match self.place(rhs, cx) {
                Place::Header { id: src, .. } => {
                    let (dt, st) = (self.headers[dst.index()].ty, self.headers[src.index()].ty);
                    if dt != st {
                        let (dn, sn) =
                            (self.header_types[dt.index()].name.clone(), self.header_types[st.index()].name.clone());
                        self.error(
                            "E0308",
                            rhs.span,
                            format!("cannot assign a header `{sn}` to a header `{dn}`"),
                            format!("this is `{sn}`"),
                        );
                        return;
                    }
                    self.copy_header(dst, src, rhs.span, span, cx);
                }
                Place::Error => {}
                Place::Value(t) if t.ty == ETy::Error => {}
                p => self.not_same_kind(lhs, rhs, p, "a header"),
            },
            LTarget::Struct(dst) => match self.place(rhs, cx) {
                Place::Struct { inst: src, .. } => {
                    let (dt, st) = (self.insts[dst.0 as usize].ty, self.insts[src.0 as usize].ty);
                    if dt != st {
                        let (dn, sn) =
                            (self.structs[dt.0 as usize].name.clone(), self.structs[st.0 as usize].name.clone());
                        self.error(
                            "E0308",
                            rhs.span,
                            format!("cannot assign a struct `{sn}` to a struct `{dn}`"),
                            format!("this is `{sn}`"),
                        );
                        return;
                    }
                    self.copy_struct(dst, src, rhs.span, span, cx);
                }
                Place::Error => {}
                Place::Value(t) if t.ty == ETy::Error => {}
                p => self.not_same_kind(lhs, rhs, p, "a struct"),
            },
            LTarget::Stack(dst) => match self.place(rhs, cx) {
                Place::Stack { stack: src, .. } => {
                    let (d, s) = (&self.stacks[dst as usize], &self.stacks[src as usize]);
                    if d.ty != s.ty || d.elems.len() != s.elems.len() {
                        let show = |c: &Self, st: &super::StackDef| {
                            format!("{}[{}]", c.header_types[st.ty.index()].name, st.elems.len())
                        };
                        let (dn, sn) = (show(self, d), show(self, s));
                        self.error(
                            "E0308",
                            rhs.span,
                            format!("cannot assign a header stack `{sn}` to a header stack `{dn}`"),
                            format!("this is `{sn}`"),
                        );
                        return;
                    }
                    self.copy_stack(dst, src, rhs.span, span, cx);
                }
                Place::Error => {}
                Place::Value(t) if t.ty == ETy::Error => {}
                p => self.not_same_kind(lhs, rhs, p, "a header stack"),
            },
            LTarget::Error => {
                // Still check the value, for its own mistakes.
                let _ = self.place(rhs, cx);
            }
        }
    }

    /// Reports assigning a non-header (non-struct) to a header (struct).
    fn not_same_kind(&mut self, lhs: &ast::Expr, rhs: &ast::Expr, p: Place, kind: &str) {
        let got = match p {
            Place::Header { .. } => "a header",
            Place::Struct { .. } => "a struct",
            Place::Stack { .. } => "a header stack",
            _ => "a single value",
        };
        self.error(
            "E0308",
            rhs.span,
            format!("`{}` is {kind}, but the value is {got}", expr_text(lhs)),
            format!("expected {kind}"),
        );
    }

    /// Field-by-field copy of a header, validity bit included.
    pub(crate) fn copy_header(&mut self, dst: ir::HeaderId, src: ir::HeaderId, rspan: Span, span: Span, cx: &mut Cx) {
        let (d, s) = (self.headers[dst.index()].clone(), self.headers[src.index()].clone());
        for (df, sf) in d.fields.iter().chain([&d.valid]).zip(s.fields.iter().chain([&s.valid])) {
            let src = self.read_slot(*sf, rspan);
            cx.pre.push(Stmt { kind: StmtKind::Assign { dst: LValue { slot: *df, slice: None }, src }, span });
        }
    }

    /// Element-by-element copy of a header stack (fields and validity) and
    /// its next index, as P4_16 assigns a stack.
    fn copy_stack(&mut self, dst: u32, src: u32, rspan: Span, span: Span, cx: &mut Cx) {
        let (d, s) = (self.stacks[dst as usize].clone(), self.stacks[src as usize].clone());
        for (a, b) in d.elems.iter().zip(&s.elems) {
            self.copy_header(*a, *b, rspan, span, cx);
        }
        let next = self.read_slot(s.next, rspan);
        cx.pre.push(Stmt { kind: StmtKind::Assign { dst: LValue { slot: d.next, slice: None }, src: next }, span });
    }

    /// Member-by-member copy of a struct.
    fn copy_struct(&mut self, dst: InstId, src: InstId, rspan: Span, span: Span, cx: &mut Cx) {
        let (d, s) = (self.insts[dst.0 as usize].clone(), self.insts[src.0 as usize].clone());
        for ((_, dm), (_, sm)) in d.members.iter().zip(&s.members) {
            match (dm, sm) {
                (Member::Slot(a), Member::Slot(b)) => {
                    let src = self.read_slot(*b, rspan);
                    cx.pre.push(Stmt { kind: StmtKind::Assign { dst: LValue { slot: *a, slice: None }, src }, span });
                }
                (Member::Header(a), Member::Header(b)) => self.copy_header(*a, *b, rspan, span, cx),
                (Member::Struct(a), Member::Struct(b)) => self.copy_struct(*a, *b, rspan, span, cx),
                (Member::Stack(a), Member::Stack(b)) => self.copy_stack(*a, *b, rspan, span, cx),
                _ => {}
            }
        }
    }

    /// `TYPE NAME [= EXPR];` in a body: a local slot, set to its initial
    /// value (zero without one) each time the declaration runs.
    pub(crate) fn var_stmt(&mut self, v: &ast::VarDecl, cx: &mut Cx) {
        let Some((slot, ty)) = self.local_var(v) else {
            if let Some(e) = &v.init {
                let _ = self.rvalue(e, cx);
            }
            self.bind(&v.name, Binding::Poisoned);
            return;
        };
        let value = match &v.init {
            Some(e) => {
                let x = self.rvalue(e, cx);
                self.coerce(x, ty, &format!("`{}`", v.name.name))
            }
            None => TExpr::konst(0, ty, v.span),
        };
        let src = self.emit(&value);
        cx.pre.push(Stmt { kind: StmtKind::Assign { dst: LValue { slot, slice: None }, src }, span: v.span });
        self.bind(&v.name, Binding::Var { slot, access: Access::ReadWrite });
    }

    /// The slot of a local variable declaration (`None` for non-scalar types).
    pub(crate) fn local_var(&mut self, v: &ast::VarDecl) -> Option<(ir::SlotId, ETy)> {
        let t = self.resolve_type(&v.ty);
        let ty = match t.scalar() {
            Some(ETy::Error) => return None,
            Some(s) => s,
            None => {
                let n = self.type_name(t);
                self.report(
                    Diagnostic::error(
                        "E0210",
                        v.ty.span,
                        format!("local variables must be bit<W> or bool, not {n}"),
                        "not a scalar type",
                    )
                    .with_help("headers and structs live in the blocks' parameters"),
                );
                return None;
            }
        };
        let irty = ty.ir()?;
        let slot = self.new_slot(self.local_name(&v.name.name), irty, ir::SlotKind::Local);
        Some((slot, ty))
    }

    /// `const TYPE NAME = EXPR;` in a body or block.
    pub(crate) fn const_stmt(&mut self, c: &ast::ConstDecl) {
        let v = self.const_decl(c);
        self.bind(&c.name, Binding::Const(v));
    }

    /// `switch (t.apply().action_run) { ... }`
    fn switch_stmt(&mut self, expr: &ast::Expr, cases: &[ast::SwitchCase], flow: &mut Flow) {
        let applied = match &expr.kind {
            ast::ExprKind::Member { base, member } if member.name == "action_run" => match &base.kind {
                ast::ExprKind::Call { callee, args, .. } => match &callee.kind {
                    ast::ExprKind::Member { base: table, member: m } if m.name == "apply" => {
                        Some((table, args, base.span))
                    }
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        let mut cx = Cx::new();
        let run = match applied {
            None => {
                self.report(
                    Diagnostic::error(
                        "E0303",
                        expr.span,
                        "`switch` can only test which action a table ran",
                        "not `t.apply().action_run`",
                    )
                    .with_help("write `switch (t.apply().action_run) { ... }`; use `if` for other tests"),
                );
                None
            }
            Some((table, args, call_span)) => match self.place(table, &mut cx) {
                Place::Table(t) => {
                    self.apply_table(t, args, call_span, &mut cx, false, true).and_then(|(_, run)| run.map(|r| (t, r)))
                }
                Place::Error => None,
                _ => {
                    self.error("E0303", table.span, format!("`{}` is not a table", expr_text(table)), "not a table");
                    None
                }
            },
        };
        flow.extend(cx.pre);
        let Some((table, run)) = run else {
            // Check the case bodies anyway, for their own mistakes.
            for c in cases {
                if let Some(b) = &c.body {
                    let mut scratch = Flow::new();
                    self.block_stmts(&b.stmts, &mut scratch);
                }
            }
            return;
        };

        let table_actions = self.table_info[table.index()].actions.clone();
        let table_name = self.tables[table.index()].name.clone();
        let join = flow.new_block();
        let mut arms: Vec<(ActionId, NodeIndex)> = Vec::new();
        let mut default = None;
        let mut pending: Vec<Label> = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut bodies = Vec::new();
        for case in cases {
            let key = case.label.as_ref().map_or("default".to_string(), |l| l.name.clone());
            if let Some(first) = seen.get(&key) {
                self.report(
                    Diagnostic::error(
                        "E0304",
                        case.label.as_ref().map_or(case.span, |l| l.span),
                        format!("`{key}` appears twice in this switch"),
                        "repeated label",
                    )
                    .with_note(*first, "first here"),
                );
                pending.push(Label::Bad);
            } else {
                seen.insert(key.clone(), case.label.as_ref().map_or(case.span, |l| l.span));
                pending.push(match &case.label {
                    None => Label::Default,
                    Some(l) => match table_actions.iter().find(|(n, _)| *n == l.name) {
                        Some((_, a)) => Label::Action(*a),
                        None => {
                            let names: Vec<&str> = table_actions.iter().map(|(n, _)| n.as_str()).collect();
                            let mut d = Diagnostic::error(
                                "E0304",
                                l.span,
                                format!("`{}` is not an action of table `{table_name}`", l.name),
                                "not one of the table's actions",
                            );
                            if let Some(s) = did_you_mean(&l.name, names.iter().copied()) {
                                d = d.with_help(format!("did you mean `{s}`?"));
                            } else {
                                d = d.with_help(format!("the table's actions are: {}", names.join(", ")));
                            }
                            self.report(d);
                            Label::Bad
                        }
                    },
                });
            }
            if let Some(b) = &case.body {
                let n = flow.new_block();
                for l in pending.drain(..) {
                    match l {
                        Label::Action(a) => arms.push((a, n)),
                        Label::Default => default = Some(n),
                        Label::Bad => {}
                    }
                }
                bodies.push((n, b));
            }
        }
        // Labels after the last body fall through to the end of the switch.
        for l in pending {
            match l {
                Label::Action(a) => arms.push((a, join)),
                Label::Default => default = Some(join),
                Label::Bad => {}
            }
        }
        flow.seal(Terminator::Switch { value: run, cases: arms, default: default.unwrap_or(join) });
        for (n, b) in bodies {
            flow.cur = Some(n);
            self.block_stmts(&b.stmts, flow);
            flow.seal(Terminator::Goto(join));
        }
        flow.cur = flow.reached(join).then_some(join);
    }
}
