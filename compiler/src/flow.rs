//! Which slots a packet may read before writing them.
//!
//! A packet starts with every slot reading 0: headers invalid, metadata
//! zero (the `abi` module docs). Most slots never need the zero: a
//! header's fields are written by `extract` before anything reads them,
//! temporaries and action parameters just before their use, most metadata
//! by the action that a table runs before the code that reads it. Zeroing
//! only the slots that some path may read first gives every packet the
//! same values for less work per packet; [`crate::abi::Layout`] puts those
//! slots at the front of the block so the zeroing is one run of stores.
//!
//! [`read_before_write`] is a forward "definitely written" analysis over
//! the whole pipeline, in the order the backends run it: the arrival
//! fields, the parser graph to `accept` (a rejected packet is dropped and
//! nothing reads its slots), each control in turn, the deparser, and last
//! the host's reads of the decision fields (`drop`, `mcast_grp`,
//! `egress_spec`). At a join, a slot is written only if it is on every
//! incoming path. A read of a slot not definitely written marks the slot.
//! The rules, each one sound (a doubt marks the slot):
//! - an expression reads every slot it names (`&&`, `||` and `?:` are
//!   taken to read all their operands);
//! - `x = e` reads `e` and writes `x`; an assignment to a slice reads the
//!   slot too (the bits outside the slice are kept) and writes nothing new;
//! - `extract(h)` writes `h`'s fields and validity bit; `extract(stack.next)`
//!   reads and writes the index and writes no element for certain;
//! - a table apply reads its keys, writes its `hit` and `action_run`
//!   temporaries, then runs one of its actions (any of them): what follows
//!   has what every action writes; an action's parameters are written when
//!   it starts;
//! - an extern call reads its `in`, `inout` and list arguments, then writes
//!   its `out` and `inout` arguments and its return slot (the runtime
//!   zeroes `out` entries, so an extern that leaves one alone writes 0);
//! - `exit` (also from inside an action) ends the control, so the next
//!   control starts from what every `return` and `exit` path wrote;
//! - along with the written slots, the analysis knows for each header
//!   whether "valid implies every field written" holds on every path: it
//!   holds at the start (no header is valid), after `extract` and
//!   `setInvalid()`, and after a write of the validity bit (`setValid()`,
//!   a header assignment) or of a field only when every field is written
//!   by then;
//! - the deparser's `emit(h)` reads `h`'s validity bit, and its fields
//!   unless that implication holds (then an invalid `h` is not written
//!   and a valid one's fields are). Where it holds, a branch whose outcome
//!   implies `h.isValid()` (`h.isValid()` true, `!h.isValid()` false,
//!   through `&&` and `||`) has `h`'s fields written on that side.
//!
//! Validity bits are always marked: they are what "headers start invalid"
//! means, and the layout keeps them together for the deparser.

use std::collections::BTreeSet;

use petgraph::graph::NodeIndex;

use crate::ir::{
    BinOp, Body, ExprId, ExprKind, ExternArg, HeaderId, Next, Program, SlotId, SlotKind, Stmt, StmtKind, Terminator,
    UnOp,
};

/// For each slot (indexed by `SlotId`), whether some path through the
/// pipeline may read it before writing it: the slots a packet must start
/// with zeroed (module docs).
pub fn read_before_write(program: &Program) -> Vec<bool> {
    analyze(program).marked
}

/// For each slot (indexed by `SlotId`), whether nothing but `extract`
/// writes it: no assignment (a slice of it, a header copy, a stack's
/// `push_front`/`pop_front`), no extern `out`/`inout` argument or result,
/// in any parser state, control or action, whether or not it runs. A
/// header field so marked holds, whenever its header was extracted, the
/// bytes it was extracted from: the JIT's deparser leaves those bytes
/// alone when the header goes back where it came from.
pub fn written_only_by_extract(program: &Program) -> Vec<bool> {
    let mut only = vec![true; program.slots.len()];
    let mut written = |s: SlotId| {
        if let Some(o) = only.get_mut(s.index()) {
            *o = false;
        }
    };
    let parser = program.parser.graph.node_weights().flat_map(|st| &st.stmts);
    let bodies = program.controls.iter().map(|c| &c.body).chain(program.actions.iter().map(|a| &a.body));
    let blocks = bodies.flat_map(|b| b.graph.node_weights()).flat_map(|b| &b.stmts);
    for stmt in parser.chain(blocks) {
        match &stmt.kind {
            StmtKind::Assign { dst, .. } => written(dst.slot),
            StmtKind::SetValid { header, .. } => written(program.header(*header).valid),
            StmtKind::CallAction { action, .. } => program.action(*action).params.iter().for_each(|&p| written(p)),
            StmtKind::Apply { hit, action_run, .. } => {
                [hit, action_run].into_iter().flatten().for_each(|&s| written(s))
            }
            StmtKind::Extern { call, ret } => {
                for arg in &call.args {
                    if let ExternArg::Out(s) | ExternArg::InOut(s) = arg {
                        written(*s);
                    }
                }
                if let Some(s) = ret {
                    written(*s);
                }
            }
            StmtKind::Extract { .. }
            | StmtKind::ExtractNext { .. }
            | StmtKind::Advance { .. }
            | StmtKind::Verify { .. } => {}
        }
    }
    only
}

/// Runs the analysis (module docs).
fn analyze(program: &Program) -> Analysis<'_> {
    let mut a = Analysis { program, marked: vec![false; program.slots.len()], visits: 0 };
    let std = program.std;
    let mut set = Set::empty(a.bits());
    for s in [std.ingress_port, std.packet_length, std.timestamp] {
        set.add(s.index());
    }
    for h in 0..program.headers.len() {
        set.add(a.implies(HeaderId(h as u32)));
    }
    if let Some(accepted) = a.parser(set) {
        let mut at = accepted;
        for control in &program.controls {
            let (normal, exit) = a.body(&control.body, at);
            at = Set::meet(normal, exit).unwrap_or_else(|| Set::full(a.bits()));
        }
        for &h in &program.deparser.emits {
            let header = program.header(h);
            a.read(&at, header.valid);
            if !at.has(a.implies(h)) {
                for &f in &header.fields {
                    a.read(&at, f);
                }
            }
        }
        for s in [std.drop, std.mcast_grp, std.egress_spec] {
            a.read(&at, s);
        }
    }
    for h in &program.headers {
        if let Some(m) = a.marked.get_mut(h.valid.index()) {
            *m = true;
        }
    }
    a
}

/// A set of slots (one bit each, by `SlotId`), followed by one bit per
/// header: "valid implies every field written" (module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Set(Vec<u64>);

impl Set {
    fn empty(bits: usize) -> Set {
        Set(vec![0; bits.div_ceil(64)])
    }

    /// Every bit: what follows a control that no path leaves (nothing
    /// after it runs).
    fn full(bits: usize) -> Set {
        Set(vec![u64::MAX; bits.div_ceil(64)])
    }

    fn add(&mut self, bit: usize) {
        if let Some(w) = self.0.get_mut(bit / 64) {
            *w |= 1 << (bit % 64);
        }
    }

    fn remove(&mut self, bit: usize) {
        if let Some(w) = self.0.get_mut(bit / 64) {
            *w &= !(1 << (bit % 64));
        }
    }

    fn has(&self, bit: usize) -> bool {
        self.0.get(bit / 64).is_some_and(|w| w & (1 << (bit % 64)) != 0)
    }

    /// Keeps only the slots `other` has too.
    fn intersect(&mut self, other: &Set) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }

    /// The slots on both paths, where either may be missing (no path).
    fn meet(a: Option<Set>, b: Option<Set>) -> Option<Set> {
        match (a, b) {
            (Some(mut a), Some(b)) => {
                a.intersect(&b);
                Some(a)
            }
            (a, b) => a.or(b),
        }
    }
}

/// The analysis's state: the slots marked so far.
struct Analysis<'p> {
    program: &'p Program,
    marked: Vec<bool>,
    /// Blocks and states looked at (each once in a graph without cycles).
    visits: usize,
}

impl Analysis<'_> {
    /// The bits of a [`Set`]: the slots, then one per header.
    fn bits(&self) -> usize {
        self.program.slots.len() + self.program.headers.len()
    }

    /// The bit of "`h` valid implies its fields written".
    fn implies(&self, h: HeaderId) -> usize {
        self.program.slots.len() + h.index()
    }

    /// Whether every field of `h` is in `set`.
    fn fields_written(&self, set: &Set, h: HeaderId) -> bool {
        self.program.header(h).fields.iter().all(|f| set.has(f.index()))
    }

    /// A write of the whole slot `s`, and what it does to its header's
    /// implication: a write of the validity bit keeps it only when every
    /// field is written, a write of the last unwritten field restores it.
    fn write(&self, set: &mut Set, s: SlotId) {
        set.add(s.index());
        match self.program.slots.get(s.index()).map(|slot| slot.kind) {
            Some(SlotKind::HeaderValid(h)) => {
                if self.fields_written(set, h) {
                    set.add(self.implies(h));
                } else {
                    set.remove(self.implies(h));
                }
            }
            Some(SlotKind::HeaderField { header, .. }) if self.fields_written(set, header) => {
                set.add(self.implies(header));
            }
            _ => {}
        }
    }

    /// A read of `s` where the slots in `written` are definitely written.
    fn read(&mut self, written: &Set, s: SlotId) {
        if !written.has(s.index()) {
            if let Some(m) = self.marked.get_mut(s.index()) {
                *m = true;
            }
        }
    }

    /// Reads every slot expression `e` names.
    fn expr(&mut self, written: &Set, e: ExprId) {
        let Some(expr) = self.program.exprs.get(e.index()) else { return };
        match expr.kind {
            ExprKind::Const(_) | ExprKind::Lookahead => {}
            ExprKind::Slot(s) => self.read(written, s),
            ExprKind::Unary(_, a) | ExprKind::Slice { base: a, .. } | ExprKind::Cast(a) => self.expr(written, a),
            ExprKind::Binary(_, a, b) => {
                self.expr(written, a);
                self.expr(written, b);
            }
            ExprKind::Cond(c, a, b) => {
                self.expr(written, c);
                self.expr(written, a);
                self.expr(written, b);
            }
        }
    }

    /// The parser from `start` with `entry` written; the slots written on
    /// every path to `accept`, or `None` when no path accepts.
    fn parser(&mut self, entry: Set) -> Option<Set> {
        let graph = &self.program.parser.graph;
        let mut at: Vec<Option<Set>> = vec![None; graph.node_count()];
        at[self.program.parser.start.index()] = Some(entry);
        let mut accepted = None;
        let mut work = Work::new(graph.node_count(), self.program.parser.start, |n| {
            let arms = graph.node_weight(n).map_or(&[][..], |st| &st.arms[..]);
            arms.iter().filter_map(|a| if let Next::State(m) = a.next { Some(m) } else { None }).collect()
        });
        while let Some(n) = work.pop() {
            self.visits += 1;
            let (Some(mut set), Some(state)) = (at[n.index()].clone(), graph.node_weight(n)) else { continue };
            for stmt in &state.stmts {
                // Parser statements never exit; an action call cannot be here.
                let _ = self.stmt(stmt, &mut set);
            }
            for &e in &state.select {
                self.expr(&set, e);
            }
            for arm in &state.arms {
                match arm.next {
                    Next::State(m) => {
                        if join(&mut at[m.index()], &set) {
                            work.push(m);
                        }
                    }
                    Next::Accept => accepted = Set::meet(accepted, Some(set.clone())),
                    Next::Reject => {}
                }
            }
        }
        accepted
    }

    /// A body from its entry with `entry` written: the slots written at
    /// every `return` (or end) and at every `exit`, each `None` when no
    /// path gets there.
    fn body(&mut self, body: &Body, entry: Set) -> (Option<Set>, Option<Set>) {
        let mut at: Vec<Option<Set>> = vec![None; body.graph.node_count()];
        let (mut normal, mut exit) = (None, None);
        if body.graph.node_weight(body.entry).is_none() {
            return (Some(entry), None);
        }
        at[body.entry.index()] = Some(entry);
        let mut work = Work::new(body.graph.node_count(), body.entry, |n| {
            body.graph.node_weight(n).map_or_else(Vec::new, |b| successors(&b.term))
        });
        while let Some(n) = work.pop() {
            self.visits += 1;
            let (Some(mut set), Some(block)) = (at[n.index()].clone(), body.graph.node_weight(n)) else { continue };
            let mut exited = false;
            for stmt in &block.stmts {
                let (cont, ex) = self.stmt(stmt, &mut set);
                exit = Set::meet(exit, ex);
                if !cont {
                    exited = true;
                    break;
                }
            }
            if exited {
                continue;
            }
            let mut next = |m: NodeIndex, set: &Set, work: &mut Work| {
                if body.graph.node_weight(m).is_none() {
                    // A missing block ends the body (as the interpreter does).
                    normal = Set::meet(normal.take(), Some(set.clone()));
                } else if join(&mut at[m.index()], set) {
                    work.push(m);
                }
            };
            match &block.term {
                Terminator::Goto(m) => next(*m, &set, &mut work),
                Terminator::Branch { cond, then, els } => {
                    self.expr(&set, *cond);
                    let (mut yes, mut no) = (set.clone(), set);
                    self.valid_when(*cond, true, &mut yes);
                    self.valid_when(*cond, false, &mut no);
                    next(*then, &yes, &mut work);
                    next(*els, &no, &mut work);
                }
                Terminator::Switch { value, cases, default } => {
                    self.read(&set, *value);
                    for (_, m) in cases {
                        next(*m, &set, &mut work);
                    }
                    next(*default, &set, &mut work);
                }
                Terminator::Return => normal = Set::meet(normal, Some(set)),
                Terminator::Exit => exit = Set::meet(exit, Some(set)),
            }
        }
        (normal, exit)
    }

    /// Where a branch on `cond` went `taken` (true or false): adds the
    /// fields of every header whose `isValid()` that outcome implies
    /// (through `!`, a true `&&` and a false `||`) and whose validity
    /// implies its fields are written.
    fn valid_when(&self, cond: ExprId, taken: bool, set: &mut Set) {
        let Some(e) = self.program.exprs.get(cond.index()) else { return };
        match e.kind {
            ExprKind::Slot(s) if taken => {
                if let SlotKind::HeaderValid(h) = self.program.slot(s).kind {
                    if set.has(self.implies(h)) {
                        for &f in &self.program.header(h).fields {
                            set.add(f.index());
                        }
                    }
                }
            }
            ExprKind::Unary(UnOp::Not, a) => self.valid_when(a, !taken, set),
            ExprKind::Binary(BinOp::And, a, b) if taken => {
                self.valid_when(a, true, set);
                self.valid_when(b, true, set);
            }
            ExprKind::Binary(BinOp::Or, a, b) if !taken => {
                self.valid_when(a, false, set);
                self.valid_when(b, false, set);
            }
            _ => {}
        }
    }

    /// One statement on `set`. Returns whether control goes on to the next
    /// statement, and the slots written where it exits the control (an
    /// `exit` inside an action it runs).
    fn stmt(&mut self, stmt: &Stmt, set: &mut Set) -> (bool, Option<Set>) {
        let program = self.program;
        match &stmt.kind {
            StmtKind::Assign { dst, src } => {
                self.expr(set, *src);
                if dst.slice.is_some() {
                    self.read(set, dst.slot);
                } else {
                    self.write(set, dst.slot);
                }
            }
            StmtKind::SetValid { header, valid } => {
                self.write(set, program.header(*header).valid);
                if !valid {
                    set.add(self.implies(*header));
                }
            }
            StmtKind::Extract { header } => {
                let h = program.header(*header);
                for &f in &h.fields {
                    self.write(set, f);
                }
                self.write(set, h.valid);
            }
            StmtKind::ExtractNext { next, .. } => {
                // The element it fills gets every field and its validity
                // bit, so each element's implication is kept.
                self.read(set, *next);
                self.write(set, *next);
            }
            StmtKind::Advance { bits } => self.expr(set, *bits),
            StmtKind::Verify { cond, .. } => self.expr(set, *cond),
            StmtKind::CallAction { action, args } => {
                for &e in args {
                    self.expr(set, e);
                }
                let a = program.action(*action);
                for &p in &a.params {
                    self.write(set, p);
                }
                let (normal, exit) = self.body(&a.body, set.clone());
                return after(normal, exit, set);
            }
            StmtKind::Apply { table, hit, action_run } => {
                let t = program.table(*table);
                for k in &t.keys {
                    self.expr(set, k.expr);
                }
                for s in [hit, action_run].into_iter().flatten() {
                    self.write(set, *s);
                }
                let (mut normal, mut exit) = (None, None);
                for id in t.runnable_actions() {
                    let a = program.action(id);
                    let mut start = set.clone();
                    for &p in &a.params {
                        self.write(&mut start, p);
                    }
                    let (n, x) = self.body(&a.body, start);
                    normal = Set::meet(normal, n);
                    exit = Set::meet(exit, x);
                }
                return after(normal, exit, set);
            }
            StmtKind::Extern { call, ret } => {
                for arg in &call.args {
                    match arg {
                        ExternArg::In(e) => self.expr(set, *e),
                        ExternArg::List(es) => es.iter().for_each(|e| self.expr(set, *e)),
                        ExternArg::InOut(s) => self.read(set, *s),
                        ExternArg::Out(_) => {}
                    }
                }
                for arg in &call.args {
                    if let ExternArg::Out(s) | ExternArg::InOut(s) = arg {
                        self.write(set, *s);
                    }
                }
                if let Some(s) = ret {
                    self.write(set, *s);
                }
            }
        }
        (true, None)
    }
}

/// After running an action: `set` becomes what its normal returns wrote;
/// control goes on only if some path returns normally. Passes the action's
/// `exit` set along.
fn after(normal: Option<Set>, exit: Option<Set>, set: &mut Set) -> (bool, Option<Set>) {
    match normal {
        Some(n) => {
            *set = n;
            (true, exit)
        }
        None => (false, exit),
    }
}

/// The blocks a terminator may go to.
fn successors(term: &Terminator) -> Vec<NodeIndex> {
    match term {
        Terminator::Goto(m) => vec![*m],
        Terminator::Branch { then, els, .. } => vec![*then, *els],
        Terminator::Switch { cases, default, .. } => cases.iter().map(|(_, m)| *m).chain([*default]).collect(),
        Terminator::Return | Terminator::Exit => Vec::new(),
    }
}

/// The nodes still to look at, handed out first in reverse postorder from
/// the entry: in a graph without cycles each node then comes once, after
/// every predecessor. (A plain stack can take a join before its other
/// predecessor and then redo everything below it: twice per if/else, so
/// exponential in a chain of them.)
struct Work {
    /// Each node's place in reverse postorder (`usize::MAX`: unreachable).
    rank: Vec<usize>,
    pending: BTreeSet<(usize, NodeIndex)>,
}

impl Work {
    /// The worklist of a graph of `nodes` nodes, holding `entry`.
    fn new(nodes: usize, entry: NodeIndex, succ: impl Fn(NodeIndex) -> Vec<NodeIndex>) -> Work {
        let mut rank = vec![usize::MAX; nodes];
        let mut seen = vec![false; nodes];
        let mut post = Vec::with_capacity(nodes);
        // Depth first, without recursion: (node, its successors, the next to visit).
        let mut stack = Vec::new();
        if entry.index() < nodes {
            seen[entry.index()] = true;
            stack.push((entry, succ(entry), 0));
        }
        while let Some((n, next, i)) = stack.last_mut() {
            match next.get(*i).copied() {
                Some(m) => {
                    *i += 1;
                    if m.index() < nodes && !seen[m.index()] {
                        seen[m.index()] = true;
                        let s = succ(m);
                        stack.push((m, s, 0));
                    }
                }
                None => {
                    post.push(*n);
                    stack.pop();
                }
            }
        }
        for (r, n) in post.iter().rev().enumerate() {
            rank[n.index()] = r;
        }
        let mut w = Work { rank, pending: BTreeSet::new() };
        w.push(entry);
        w
    }

    fn push(&mut self, n: NodeIndex) {
        let r = self.rank.get(n.index()).copied().unwrap_or(usize::MAX);
        self.pending.insert((r, n));
    }

    /// The pending node first in reverse postorder.
    fn pop(&mut self) -> Option<NodeIndex> {
        self.pending.pop_first().map(|(_, n)| n)
    }
}

/// Joins `set` into a block's incoming set; true when it changed (or was
/// first reached), so the block must be looked at again.
fn join(at: &mut Option<Set>, set: &Set) -> bool {
    match at {
        None => {
            *at = Some(set.clone());
            true
        }
        Some(old) => {
            let before = old.clone();
            old.intersect(set);
            *old != before
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Sources;

    /// A program with an Ethernet header, an IPv4 header extracted only for
    /// ether type 0x0800, metadata `x`, `y`, `z` and a header `extra` that
    /// no state extracts; `body` is the control's `apply` block, `actions`
    /// its declarations, `emits` the deparser's.
    fn program(actions: &str, body: &str, emits: &str) -> Program {
        let src = format!(
            r#"
header ethernet_t {{ bit<48> dst; bit<48> src; bit<16> ether_type; }}
header ipv4_t {{ bit<8> ver_ihl; bit<8> ttl; bit<16> rest; }}
header extra_t {{ bit<16> a; bit<16> b; }}
struct headers_t {{ ethernet_t ethernet; ipv4_t ipv4; extra_t extra; }}
struct meta_t {{ bit<8> x; bit<8> y; bit<16> z; }}
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t std) {{
    state start {{
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {{ 0x0800: parse_ipv4; default: accept; }}
    }}
    state parse_ipv4 {{ pkt.extract(hdr.ipv4); transition accept; }}
}}
control C(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t std) {{
    {actions}
    apply {{ {body} }}
}}
control D(packet_out pkt, in headers_t hdr) {{ apply {{ {emits} }} }}
Pipeline(P(), C(), D()) main;
"#
        );
        let c = crate::compile(&Sources::new("t.p4lite", src.as_str()));
        c.ir.unwrap_or_else(|| panic!("{:?}\n{src}", c.diagnostics))
    }

    /// The marked slots other than validity bits, by name.
    fn marked(p: &Program) -> Vec<&str> {
        let m = read_before_write(p);
        let names = p.slots.iter().zip(&m).filter(|(s, &m)| m && !matches!(s.kind, SlotKind::HeaderValid(_)));
        names.map(|(s, _)| s.name.as_str()).collect()
    }

    const EMIT: &str = "pkt.emit(hdr.ethernet); pkt.emit(hdr.ipv4);";
    /// What every program here marks: the decision fields nothing writes.
    const DECISION: [&str; 3] = ["std.egress_spec", "std.mcast_grp", "std.drop"];

    fn with_decision<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = extra.to_vec();
        v.extend(DECISION);
        v
    }

    #[test]
    fn extracted_fields_and_written_metadata_need_no_zeroing() {
        let p = program("", "meta.x = hdr.ethernet.dst[7:0]; meta.y = meta.x;", EMIT);
        assert_eq!(marked(&p), with_decision(&[]));
        // Every validity bit is zeroed, whatever reads it.
        let m = read_before_write(&p);
        assert!(p.headers.iter().all(|h| m[h.valid.index()]));
        // Written on every path before the host reads it.
        let p = program("", "std.egress_spec = 1; std.mcast_grp = 0; std.drop = 0;", EMIT);
        assert_eq!(marked(&p), Vec::<&str>::new());
    }

    #[test]
    fn a_read_is_marked_unless_every_path_wrote_the_slot() {
        let both = "if (hdr.ethernet.src == 1) { meta.x = 1; } else { meta.x = 2; } meta.y = meta.x;";
        assert_eq!(marked(&program("", both, EMIT)), with_decision(&[]));
        let one = "if (hdr.ethernet.src == 1) { meta.x = 1; } meta.y = meta.x;";
        assert_eq!(marked(&program("", one, EMIT)), with_decision(&["meta.x"]));
        // A slice assignment keeps the other bits: it reads the slot.
        let slice = "meta.z[3:0] = 1; meta.x = meta.z[7:0];";
        assert_eq!(marked(&program("", slice, EMIT)), with_decision(&["meta.z"]));
    }

    #[test]
    fn a_header_the_parser_may_skip_is_zeroed_unless_the_read_is_guarded() {
        let bare = "meta.x = hdr.ipv4.ttl;";
        assert_eq!(marked(&program("", bare, EMIT)), with_decision(&["hdr.ipv4.ttl"]));
        let guarded = "if (hdr.ipv4.isValid() && meta.x == 0) { meta.y = hdr.ipv4.ttl; }";
        assert_eq!(marked(&program("", &format!("meta.x = 0; {guarded}"), EMIT)), with_decision(&[]));
        let exits = "if (!hdr.ipv4.isValid()) { exit; } meta.x = hdr.ipv4.ttl;";
        assert_eq!(marked(&program("", exits, EMIT)), with_decision(&[]));
        let either = "if (!hdr.ipv4.isValid() || hdr.ethernet.src == 0) { exit; } meta.x = hdr.ipv4.ttl;";
        assert_eq!(marked(&program("", either, EMIT)), with_decision(&[]));
        // The wrong side of the guard.
        let wrong = "if (hdr.ipv4.isValid()) { exit; } meta.x = hdr.ipv4.ttl;";
        assert_eq!(marked(&program("", wrong, EMIT)), with_decision(&["hdr.ipv4.ttl"]));
    }

    #[test]
    fn set_valid_headers_are_zeroed_unless_every_field_is_written() {
        let emits = "pkt.emit(hdr.ethernet); pkt.emit(hdr.extra);";
        let some = "hdr.extra.setValid(); hdr.extra.a = 1;";
        assert_eq!(marked(&program("", some, emits)), with_decision(&["hdr.extra.b"]));
        let all = "hdr.extra.setValid(); hdr.extra.a = 1; hdr.extra.b = 2;";
        assert_eq!(marked(&program("", all, emits)), with_decision(&[]));
        // Written on one path only: the deparser may emit unwritten fields.
        let one_path = "hdr.extra.setValid(); if (hdr.ethernet.src == 0) { hdr.extra.a = 1; hdr.extra.b = 2; }";
        assert_eq!(marked(&program("", one_path, emits)), with_decision(&["hdr.extra.a", "hdr.extra.b"]));
        // Emitted but never made valid: its fields are never read.
        assert_eq!(marked(&program("", "", emits)), with_decision(&[]));
    }

    #[test]
    fn a_table_apply_writes_what_every_action_writes() {
        let actions = "action a(bit<8> v) { meta.x = v; meta.y = 1; }
                       action b() { meta.x = 2; }
                       table t { key = { hdr.ethernet.dst: exact; } actions = { a; b; } default_action = b(); }";
        let body = "t.apply(); meta.z = (bit<16>) (meta.x + meta.y);";
        assert_eq!(marked(&program(actions, body, EMIT)), with_decision(&["meta.y"]));
        let body = "if (t.apply().hit) { meta.z = (bit<16>) meta.x; }";
        assert_eq!(marked(&program(actions, body, EMIT)), with_decision(&[]));
    }

    /// A chain of if/else, each writing a slot on one side only, is looked
    /// at block by block once (a stack worklist redid the rest of the chain
    /// after every join: 2^40 here).
    #[test]
    fn a_long_chain_of_branches_is_analysed_in_one_pass() {
        let fields: String = (0..40).map(|i| format!("bit<8> f{i}; ")).collect();
        let body: String = (0..40).map(|i| format!("if (hdr.ethernet.src == {i}) {{ meta.f{i} = 1; }} ")).collect();
        let src = format!(
            r#"
header ethernet_t {{ bit<48> dst; bit<48> src; bit<16> ether_type; }}
struct headers_t {{ ethernet_t ethernet; }}
struct meta_t {{ {fields} }}
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t std) {{
    state start {{ pkt.extract(hdr.ethernet); transition accept; }}
}}
control C(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t std) {{
    apply {{ {body} std.egress_spec = (bit<9>) meta.f39; }}
}}
control D(packet_out pkt, in headers_t hdr) {{ apply {{ pkt.emit(hdr.ethernet); }} }}
Pipeline(P(), C(), D()) main;
"#
        );
        let p = crate::compile(&Sources::new("t.p4lite", src.as_str())).ir.expect("compiles");
        let a = analyze(&p);
        let blocks: usize = p.controls.iter().map(|c| c.body.graph.node_count()).sum();
        assert!(a.visits <= blocks + p.parser.graph.node_count(), "{} visits of {blocks} blocks", a.visits);
        assert_eq!(marked(&p), ["meta.f39", "std.mcast_grp", "std.drop"]);
    }

    #[test]
    fn exit_in_an_action_ends_the_control_with_what_that_path_wrote() {
        let actions = "action stop() { meta.y = 1; exit; }";
        let body =
            "meta.x = 0; if (hdr.ethernet.src == 0) { stop(); } meta.x = meta.y; std.egress_spec = (bit<9>) meta.x;";
        // After the control, egress_spec is unwritten on the exit path.
        let p = program(actions, body, EMIT);
        assert_eq!(marked(&p), ["meta.y", "std.egress_spec", "std.mcast_grp", "std.drop"]);
    }
}
