//! Text forms of the compiler's stages: the stable `--emit ir` listing that
//! golden tests compare, Graphviz `--emit dot` of the parser and control
//! graphs, and `--emit ast`, the syntax tree printed back as source.
//!
//! Both forms are deterministic: they follow the arenas' order and number
//! basic blocks by a walk from the entry block (`block_order`), never by
//! hash-map order or raw `NodeIndex`, and they print no spans. Expressions
//! and statements are printed by one `Printer` so the two forms agree.

mod dot;
mod text;
mod unparse;

#[cfg(test)]
mod fixture;

use petgraph::graph::NodeIndex;

use crate::ir::{
    self, Callee, ExprId, ExprKind, ExternArg, KeyMatch, LValue, MatchKind, Next, SlotId, SlotKind, StmtKind,
    Terminator, Ty,
};

/// The stable text form of a program's IR.
pub fn ir_text(program: &ir::Program) -> String {
    text::program(program)
}

/// The syntax tree as normalised p4lite source with every nested expression
/// parenthesised (`--emit ast`); see the `unparse` module for what is kept.
pub fn ast_text(program: &crate::ast::Program) -> String {
    unparse::program(program)
}

/// Graphviz of the parser state graph and of each control's flow.
pub fn dot(program: &ir::Program) -> String {
    dot::program(program)
}

/// The blocks of a body in print order, and each block's number in it.
///
/// The order is a reverse postorder of a depth-first walk from the entry that
/// visits successors in terminator order (then before else, cases before
/// default), so an acyclic body prints topologically: a branch's arms come
/// before the block where they join. Blocks the walk cannot reach follow in
/// graph order, so nothing the checker built is hidden.
pub(crate) struct BlockOrder {
    /// Blocks in print order.
    pub order: Vec<NodeIndex>,
    /// `number[node.index()]` is the block's position in `order`.
    number: Vec<usize>,
}

impl BlockOrder {
    /// The printed number of a block (`bbN`); a dangling index gets a number
    /// past the end rather than a panic, so a broken IR still prints.
    pub fn number(&self, node: NodeIndex) -> usize {
        self.number.get(node.index()).copied().unwrap_or(usize::MAX)
    }

    /// `bbN` for a block.
    pub fn label(&self, node: NodeIndex) -> String {
        match self.number.get(node.index()) {
            Some(n) => format!("bb{n}"),
            None => format!("bb?{}", node.index()),
        }
    }
}

/// Orders the blocks of `body` (see [`BlockOrder`]).
pub(crate) fn block_order(body: &ir::Body) -> BlockOrder {
    let n = body.graph.node_count();
    let mut visited = vec![false; n];
    let mut postorder = Vec::with_capacity(n);
    // Iterative DFS: each stack entry is a block and how many of its
    // successors (taken in reverse terminator order) were already pushed.
    let walk = |root: NodeIndex, visited: &mut Vec<bool>, postorder: &mut Vec<NodeIndex>| {
        if root.index() >= n || visited[root.index()] {
            return;
        }
        visited[root.index()] = true;
        let mut stack = vec![(root, successors_rev(&body.graph[root].term), 0usize)];
        while let Some((node, succs, next)) = stack.last_mut() {
            if let Some(&s) = succs.get(*next) {
                *next += 1;
                if s.index() < n && !visited[s.index()] {
                    visited[s.index()] = true;
                    let ss = successors_rev(&body.graph[s].term);
                    stack.push((s, ss, 0));
                }
            } else {
                postorder.push(*node);
                stack.pop();
            }
        }
    };
    walk(body.entry, &mut visited, &mut postorder);
    let mut order: Vec<NodeIndex> = postorder.into_iter().rev().collect();
    // Unreachable blocks, each with whatever it alone reaches, in graph order.
    for i in 0..n {
        if !visited[i] {
            let mut rest = Vec::new();
            walk(NodeIndex::new(i), &mut visited, &mut rest);
            order.extend(rest.into_iter().rev());
        }
    }
    let mut number = vec![usize::MAX; n];
    for (k, b) in order.iter().enumerate() {
        number[b.index()] = k;
    }
    BlockOrder { order, number }
}

/// Successors of a terminator, last first: pushing them onto the DFS in this
/// order makes the first successor finish last, hence come first in the
/// reverse postorder.
fn successors_rev(term: &Terminator) -> Vec<NodeIndex> {
    let mut s = successors(term);
    s.reverse();
    s
}

/// Successors of a terminator in the order it names them.
pub(crate) fn successors(term: &Terminator) -> Vec<NodeIndex> {
    match term {
        Terminator::Goto(t) => vec![*t],
        Terminator::Branch { then, els, .. } => vec![*then, *els],
        Terminator::Switch { cases, default, .. } => {
            cases.iter().map(|(_, b)| *b).chain(std::iter::once(*default)).collect()
        }
        Terminator::Return | Terminator::Exit => Vec::new(),
    }
}

/// Prints IR pieces as readable p4lite-like text. Every lookup is checked so
/// that a malformed program (a dangling id) prints a `?` marker instead of
/// panicking: the emitters are debugging tools and must show broken IR too.
pub(crate) struct Printer<'a> {
    pub p: &'a ir::Program,
}

impl<'a> Printer<'a> {
    /// A printer for `p`.
    pub fn new(p: &'a ir::Program) -> Self {
        Printer { p }
    }

    /// The name of a slot.
    pub fn slot(&self, id: SlotId) -> String {
        match self.p.slots.get(id.index()) {
            Some(s) => s.name.clone(),
            None => format!("?slot{}", id.0),
        }
    }

    /// The type of a slot (`bit<1>` when the id dangles).
    pub fn slot_ty(&self, id: SlotId) -> Ty {
        self.p.slots.get(id.index()).map_or(Ty::Bit(1), |s| s.ty)
    }

    /// The name of a header.
    pub fn header(&self, id: ir::HeaderId) -> String {
        match self.p.headers.get(id.index()) {
            Some(h) => h.name.clone(),
            None => format!("?header{}", id.0),
        }
    }

    /// The name of an action.
    pub fn action(&self, id: ir::ActionId) -> String {
        match self.p.actions.get(id.index()) {
            Some(a) => a.name.clone(),
            None => format!("?action{}", id.0),
        }
    }

    /// The name of a table.
    pub fn table(&self, id: ir::TableId) -> String {
        match self.p.tables.get(id.index()) {
            Some(t) => t.name.clone(),
            None => format!("?table{}", id.0),
        }
    }

    /// An expression at top level (no outer parentheses).
    pub fn expr(&self, id: ExprId) -> String {
        let Some(e) = self.p.exprs.get(id.index()) else {
            return format!("?expr{}", id.0);
        };
        match e.kind {
            ExprKind::Const(v) => const_value(v, e.ty),
            ExprKind::Slot(s) => self.slot(s),
            ExprKind::Unary(op, a) => format!("{}{}", op.symbol(), self.operand(a)),
            ExprKind::Binary(op, a, b) => format!("{} {} {}", self.operand(a), op.symbol(), self.operand(b)),
            ExprKind::Slice { base, hi, lo } => format!("{}[{hi}:{lo}]", self.operand(base)),
            ExprKind::Cast(a) => format!("({}){}", ty(e.ty), self.operand(a)),
            ExprKind::Cond(c, a, b) => format!("{} ? {} : {}", self.operand(c), self.operand(a), self.operand(b)),
            ExprKind::Lookahead => format!("lookahead<{}>()", ty(e.ty)),
        }
    }

    /// An expression nested in another: parenthesised unless atomic.
    fn operand(&self, id: ExprId) -> String {
        let atomic = match self.p.exprs.get(id.index()).map(|e| e.kind) {
            Some(ExprKind::Const(_) | ExprKind::Slot(_) | ExprKind::Slice { .. } | ExprKind::Lookahead) | None => true,
            Some(_) => false,
        };
        if atomic {
            self.expr(id)
        } else {
            format!("({})", self.expr(id))
        }
    }

    /// An assignment target.
    pub fn lvalue(&self, lv: &LValue) -> String {
        match lv.slice {
            Some((hi, lo)) => format!("{}[{hi}:{lo}]", self.slot(lv.slot)),
            None => self.slot(lv.slot),
        }
    }

    /// A statement, without the trailing `;`.
    pub fn stmt(&self, s: &ir::Stmt) -> String {
        match &s.kind {
            StmtKind::Assign { dst, src } => format!("{} = {}", self.lvalue(dst), self.expr(*src)),
            StmtKind::SetValid { header, valid } => {
                format!("{}.{}()", self.header(*header), if *valid { "setValid" } else { "setInvalid" })
            }
            StmtKind::Extract { header } => format!("extract({})", self.header(*header)),
            StmtKind::ExtractNext { elems, next } => {
                let elems: Vec<String> = elems.iter().map(|h| self.header(*h)).collect();
                format!("extract_next({}; {})", elems.join(", "), self.slot(*next))
            }
            StmtKind::Advance { bits } => format!("advance({})", self.expr(*bits)),
            StmtKind::Verify { cond, error } => format!(
                "verify({}, error.{})",
                self.expr(*cond),
                self.p.errors.get(*error as usize).map_or("?", String::as_str)
            ),
            StmtKind::CallAction { action, args } => {
                let args: Vec<String> = args.iter().map(|a| self.expr(*a)).collect();
                format!("call {}({})", self.action(*action), args.join(", "))
            }
            StmtKind::Apply { table, hit, action_run } => {
                let mut outs = Vec::new();
                if let Some(h) = hit {
                    outs.push(format!("hit -> {}", self.slot(*h)));
                }
                if let Some(a) = action_run {
                    outs.push(format!("action_run -> {}", self.slot(*a)));
                }
                if outs.is_empty() {
                    format!("apply {}", self.table(*table))
                } else {
                    format!("apply {} [{}]", self.table(*table), outs.join(", "))
                }
            }
            StmtKind::Extern { call, ret } => {
                let call = self.extern_call(call);
                match ret {
                    Some(r) => format!("{} = {call}", self.slot(*r)),
                    None => call,
                }
            }
        }
    }

    /// `callee(args) @siteN`
    fn extern_call(&self, call: &ir::ExternCall) -> String {
        let callee = match call.callee {
            Callee::Function(f) => match self.p.extern_fns.get(f.index()) {
                Some(f) => f.sig.name.clone(),
                None => format!("?extern_fn{}", f.0),
            },
            Callee::Method { instance, method } => {
                let inst = self.p.instances.get(instance.index());
                let m = inst
                    .and_then(|i| self.p.extern_types.get(i.ty.index()))
                    .and_then(|t| t.methods.get(method as usize))
                    .map_or_else(|| format!("?method{method}"), |m| m.name.clone());
                let i = inst.map_or_else(|| format!("?instance{}", instance.0), |i| i.name.clone());
                format!("{i}.{m}")
            }
        };
        let args: Vec<String> = call
            .args
            .iter()
            .map(|a| match a {
                ExternArg::In(e) => self.expr(*e),
                ExternArg::Out(s) => format!("out {}", self.slot(*s)),
                ExternArg::InOut(s) => format!("inout {}", self.slot(*s)),
                ExternArg::List(es) => match self.whole_header(es) {
                    Some(h) => format!("{{{h}.*}}"),
                    None => {
                        let es: Vec<String> = es.iter().map(|e| self.expr(*e)).collect();
                        format!("{{{}}}", es.join(", "))
                    }
                },
            })
            .collect();
        format!("{callee}({}) @site{}", args.join(", "), call.site.0)
    }

    /// The header whose fields `es` reads, all of them in wire order (how a
    /// header passed to an extern is lowered); such a list prints as
    /// `{hdr.ipv4.*}` instead of a dozen field names. Anything else, even a
    /// permutation, prints in full.
    fn whole_header(&self, es: &[ExprId]) -> Option<String> {
        let first = self.p.exprs.get(es.first()?.index())?;
        let ExprKind::Slot(s) = first.kind else { return None };
        let SlotKind::HeaderField { header, .. } = self.p.slots.get(s.index())?.kind else { return None };
        let h = self.p.headers.get(header.index())?;
        let same = h.fields.len() == es.len()
            && h.fields
                .iter()
                .zip(es)
                .all(|(f, e)| self.p.exprs.get(e.index()).is_some_and(|e| e.kind == ExprKind::Slot(*f)));
        same.then(|| h.name.clone())
    }

    /// A terminator, with successors named by `blocks`.
    pub fn term(&self, t: &Terminator, blocks: &BlockOrder) -> String {
        match t {
            Terminator::Goto(b) => format!("goto {}", blocks.label(*b)),
            Terminator::Branch { cond, then, els } => {
                format!("branch {}, {}, {}", self.expr(*cond), blocks.label(*then), blocks.label(*els))
            }
            Terminator::Switch { value, cases, default } => {
                let mut arms: Vec<String> =
                    cases.iter().map(|(a, b)| format!("{} => {}", self.action(*a), blocks.label(*b))).collect();
                arms.push(format!("default => {}", blocks.label(*default)));
                format!("switch {} {{ {} }}", self.slot(*value), arms.join(", "))
            }
            Terminator::Return => "return".to_string(),
            Terminator::Exit => "exit".to_string(),
        }
    }

    /// Where a parser transition goes.
    pub fn next(&self, n: Next) -> String {
        match n {
            Next::Accept => "accept".to_string(),
            Next::Reject => "reject".to_string(),
            Next::State(s) => match self.p.parser.graph.node_weight(s) {
                Some(st) => st.name.clone(),
                None => format!("?state{}", s.index()),
            },
        }
    }

    /// The keys of a select arm or table entry: one key bare, several as a tuple.
    /// `widths` gives each key's width (for choosing dotted-quad prefixes).
    pub fn keys(&self, keys: &[KeyMatch], widths: &[u16]) -> String {
        let ks: Vec<String> =
            keys.iter().enumerate().map(|(i, k)| key_match(*k, widths.get(i).copied().unwrap_or(0))).collect();
        match ks.len() {
            1 => ks.into_iter().next().unwrap_or_default(),
            _ => format!("({})", ks.join(", ")),
        }
    }

    /// The widths of a parser state's select expressions.
    pub fn select_widths(&self, st: &ir::ParserState) -> Vec<u16> {
        st.select.iter().map(|e| self.p.exprs.get(e.index()).map_or(0, |e| e.ty.width())).collect()
    }

    /// `action(args)` with constant arguments typed by the action's parameters.
    pub fn action_call(&self, call: &ir::ActionCall) -> String {
        let params = self.p.actions.get(call.action.index()).map(|a| a.params.as_slice()).unwrap_or(&[]);
        let args: Vec<String> = call
            .args
            .iter()
            .enumerate()
            .map(|(i, v)| match params.get(i) {
                Some(s) => const_value(*v, self.slot_ty(*s)),
                None => number(*v),
            })
            .collect();
        format!("{}({})", self.action(call.action), args.join(", "))
    }
}

/// A type as written: `bit<8>`, `bool`.
pub(crate) fn ty(t: Ty) -> String {
    match t {
        Ty::Bit(w) => format!("bit<{w}>"),
        Ty::Bool => "bool".to_string(),
    }
}

/// A constant of type `t`: `true`, `8w255`, `16w0x800`.
pub(crate) fn const_value(v: u128, t: Ty) -> String {
    match t {
        Ty::Bool => (if v != 0 { "true" } else { "false" }).to_string(),
        Ty::Bit(w) => format!("{w}w{}", number(v)),
    }
}

/// A number without width: decimal below 256 (counts, small fields), hex above
/// (ethertypes, addresses, masks), so the same value always prints the same way.
pub(crate) fn number(v: u128) -> String {
    if v < 256 {
        v.to_string()
    } else {
        format!("0x{v:x}")
    }
}

/// One key match; a 32-bit prefix prints as a dotted quad (`10.0.0.0/8`).
pub(crate) fn key_match(k: KeyMatch, width: u16) -> String {
    match k {
        KeyMatch::Exact(v) => number(v),
        KeyMatch::Mask { value, mask } => format!("{} &&& {}", number(value), number(mask)),
        KeyMatch::Range { lo, hi } => format!("{}..{}", number(lo), number(hi)),
        KeyMatch::Prefix { value, len } if width == 32 => {
            let b = (value as u32).to_be_bytes();
            format!("{}.{}.{}.{}/{len}", b[0], b[1], b[2], b[3])
        }
        KeyMatch::Prefix { value, len } => format!("{}/{len}", number(value)),
        KeyMatch::Any => "_".to_string(),
    }
}

/// The keyword of a match kind.
pub(crate) fn match_kind(k: MatchKind) -> &'static str {
    match k {
        MatchKind::Exact => "exact",
        MatchKind::Lpm => "lpm",
        MatchKind::Ternary => "ternary",
        MatchKind::Range => "range",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_number_topologically_then_before_else() {
        let p = fixture::program();
        let body = &p.controls[0].body;
        let order = block_order(body);
        assert_eq!(order.order.len(), body.graph.node_count());
        assert_eq!(order.number(body.entry), 0);
        // Every edge goes forward in the numbering: the ingress body is acyclic.
        for e in body.graph.edge_indices() {
            let (a, b) = body.graph.edge_endpoints(e).unwrap();
            assert!(order.number(a) < order.number(b), "edge bb{} -> bb{}", order.number(a), order.number(b));
        }
        // The entry branches to then (bb1) before else.
        match &body.graph[body.entry].term {
            Terminator::Branch { then, .. } => assert_eq!(order.number(*then), 1),
            t => panic!("fixture entry should branch, got {t:?}"),
        }
    }

    #[test]
    fn unreachable_blocks_still_print() {
        let mut p = fixture::program();
        let body = &mut p.controls[0].body;
        let lonely = body.graph.add_node(ir::BasicBlock { stmts: Vec::new(), term: Terminator::Exit });
        let order = block_order(body);
        assert_eq!(order.number(lonely), order.order.len() - 1);
    }

    #[test]
    fn whole_header_lists_print_compactly() {
        let mut p = fixture::program();
        let ipv4 = p.headers[1].clone();
        let all: Vec<ExprId> = ipv4
            .fields
            .iter()
            .map(|f| {
                p.exprs.push(ir::Expr {
                    kind: ExprKind::Slot(*f),
                    ty: p.slots[f.index()].ty,
                    span: Default::default(),
                });
                ExprId(p.exprs.len() as u32 - 1)
            })
            .collect();
        let call = |args: Vec<ExprId>| ir::ExternCall {
            site: ir::CallSiteId(0),
            callee: Callee::Function(ir::ExternFnId(1)),
            args: vec![ExternArg::List(args)],
        };
        let pr = Printer::new(&p);
        assert_eq!(pr.extern_call(&call(all.clone())), "csum16({hdr.ipv4.*}) @site0");
        // Any other list, here the fields but one, prints in full.
        let partial = pr.extern_call(&call(all[1..].to_vec()));
        assert!(partial.starts_with("csum16({hdr.ipv4.ihl, hdr.ipv4.diffserv,"), "{partial}");
    }

    #[test]
    fn constants_print_with_widths() {
        assert_eq!(const_value(255, Ty::Bit(8)), "8w255");
        assert_eq!(const_value(0x800, Ty::Bit(16)), "16w0x800");
        assert_eq!(const_value(1, Ty::Bool), "true");
        assert_eq!(key_match(KeyMatch::Prefix { value: 0x0a00_0000, len: 8 }, 32), "10.0.0.0/8");
        assert_eq!(key_match(KeyMatch::Mask { value: 0x8100, mask: 0xefff }, 16), "0x8100 &&& 0xefff");
    }

    #[test]
    fn nested_expressions_are_parenthesised() {
        let p = fixture::program();
        let pr = Printer::new(&p);
        let text: Vec<String> = (0..p.exprs.len()).map(|i| pr.expr(ExprId(i as u32))).collect();
        assert!(text.contains(&"hdr.ipv4.$valid && (hdr.ipv4.ttl > 8w1)".to_string()), "{text:#?}");
        assert!(text.contains(&"hdr.ipv4.ttl[7:4] ++ 4w0".to_string()), "{text:#?}");
        assert!(text.contains(&"(bit<32>)std.egress_spec".to_string()), "{text:#?}");
    }
}
