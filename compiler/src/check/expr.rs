//! Expressions: names and members to places, typing, widths of unsized
//! literals, constant folding, and emission into the IR expression arena.
//!
//! Expressions are first built as [`TExpr`] trees. An unsized literal has
//! type [`ETy::Int`] until its context gives it a width ([`Checker::coerce`]
//! pushes the width down through literal arithmetic, so `x + (1 - 2)` on a
//! `bit<8>` folds to `x + 255`). Every constructor folds when its operands
//! are constants. Only then is the tree emitted into [`ir::Program::exprs`].

use crate::ast::{self, BinOp, UnOp};
use crate::diag::{did_you_mean, Diagnostic};
use crate::ir::{self, HeaderId, LValue, SlotId};
use crate::span::{Ident, Span};

use super::calls::CallOut;
use super::{expr_text, Access, Binding, Checker, ConstVal, GlobalKind, InstId, Member, PacketDir, Type};

/// The type of a checker expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ETy {
    Bit(u16),
    Bool,
    /// An unsized integer literal, or arithmetic on such literals.
    Int,
    /// A poisoned expression whose error was already reported; it unifies
    /// with anything so one mistake gives one diagnostic.
    Error,
}

impl ETy {
    /// How the type reads in a message.
    pub(crate) fn text(self) -> String {
        match self {
            ETy::Bit(w) => format!("bit<{w}>"),
            ETy::Bool => "bool".to_string(),
            ETy::Int => "an integer of unknown width".to_string(),
            ETy::Error => "?".to_string(),
        }
    }

    /// The checker type of an IR type.
    pub(crate) fn of(ty: ir::Ty) -> ETy {
        match ty {
            ir::Ty::Bit(w) => ETy::Bit(w),
            ir::Ty::Bool => ETy::Bool,
        }
    }

    /// The IR type, for sized types.
    pub(crate) fn ir(self) -> Option<ir::Ty> {
        match self {
            ETy::Bit(w) => Some(ir::Ty::Bit(w)),
            ETy::Bool => Some(ir::Ty::Bool),
            _ => None,
        }
    }

    /// Width in bits of a sized type.
    pub(crate) fn width(self) -> Option<u16> {
        self.ir().map(ir::Ty::width)
    }
}

/// The mask of the low `w` bits.
pub(crate) fn mask(w: u16) -> u128 {
    if w >= 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    }
}

/// How a constant reads in a message (hex for large values).
pub(crate) fn value_text(v: u128) -> String {
    if v < 65536 {
        v.to_string()
    } else {
        format!("{v:#x}")
    }
}

/// A typed expression before emission.
#[derive(Clone, Debug)]
pub(crate) struct TExpr {
    pub kind: TKind,
    pub ty: ETy,
    pub span: Span,
}

/// The kinds of [`TExpr`]; they mirror [`ir::ExprKind`].
#[derive(Clone, Debug)]
pub(crate) enum TKind {
    Const(u128),
    Slot(SlotId),
    Lookahead,
    Unary(UnOp, Box<TExpr>),
    Binary(BinOp, Box<TExpr>, Box<TExpr>),
    Slice(Box<TExpr>, u16, u16),
    Cast(Box<TExpr>),
    Cond(Box<TExpr>, Box<TExpr>, Box<TExpr>),
    /// Poisoned (see [`ETy::Error`]).
    Error,
}

impl TExpr {
    /// A constant.
    pub(crate) fn konst(value: u128, ty: ETy, span: Span) -> TExpr {
        TExpr { kind: TKind::Const(value), ty, span }
    }

    /// A poisoned expression.
    pub(crate) fn error(span: Span) -> TExpr {
        TExpr { kind: TKind::Error, ty: ETy::Error, span }
    }

    /// The value, when the expression is a folded constant.
    pub(crate) fn const_value(&self) -> Option<u128> {
        match self.kind {
            TKind::Const(v) => Some(v),
            _ => None,
        }
    }
}

/// The expression context of one statement.
#[derive(Debug, Default)]
pub(crate) struct Cx {
    /// Statements hoisted out of the expression (extern calls, table applies),
    /// to run before the statement that uses their results.
    pub pre: Vec<ir::Stmt>,
    /// Set while checking an operand that runs only sometimes (right of
    /// `&&`/`||`, branches of `?:`): the operator's span and symbol.
    pub conditional: Option<(Span, &'static str)>,
    /// Set where calls are not allowed at all, naming the place ("table keys").
    pub pure: Option<&'static str>,
}

impl Cx {
    /// A context for an ordinary statement.
    pub(crate) fn new() -> Cx {
        Cx::default()
    }

    /// A context where calls are not allowed.
    pub(crate) fn pure(what: &'static str) -> Cx {
        Cx { pure: Some(what), ..Cx::default() }
    }
}

/// What a name or member path denotes.
#[derive(Clone, Debug)]
pub(crate) enum Place {
    Slot {
        slot: SlotId,
        access: Access,
    },
    Const(ConstVal),
    Header {
        id: HeaderId,
        access: Access,
    },
    Struct {
        inst: InstId,
        access: Access,
    },
    /// A header stack (index into `Checker::stacks`).
    Stack {
        stack: u32,
        access: Access,
    },
    /// `stack.next` (parser only; only `extract` takes it).
    StackNext {
        stack: u32,
        access: Access,
    },
    /// `stack.last` (parser only; read-only).
    StackLast {
        stack: u32,
    },
    Packet(PacketDir),
    Table(ir::TableId),
    Action(ir::ActionId),
    Instance(ir::InstanceId),
    ExternFn(ir::ExternFnId),
    /// A computed value (`t.apply().hit`).
    Value(TExpr),
    /// Something that is no value at all: a type, a parser, a control.
    NotValue(&'static str),
    /// Already reported.
    Error,
}

/// What an assignment (or `out` argument) writes.
#[derive(Clone, Debug)]
pub(crate) enum LTarget {
    Scalar {
        lv: LValue,
        ty: ETy,
    },
    Header(HeaderId),
    Struct(InstId),
    /// A whole header stack (index into `Checker::stacks`).
    Stack(u32),
    Error,
}

/// Folds a unary operator on a constant of type `ty`.
fn fold_unary(op: UnOp, v: u128, ty: ETy) -> Option<u128> {
    match (op, ty) {
        (UnOp::Not, ETy::Bool) => Some(v ^ 1),
        (UnOp::Neg, ETy::Bit(w)) => Some(0u128.wrapping_sub(v) & mask(w)),
        (UnOp::BitNot, ETy::Bit(w)) => Some(!v & mask(w)),
        // An unsized literal has no width to wrap in; wait for the context.
        (UnOp::Neg, ETy::Int) if v == 0 => Some(0),
        _ => None,
    }
}

/// Folds a binary operator on constants; `ta` and `tb` are the operand types.
/// The result is masked to the result's width: the left operand's for
/// arithmetic, both operands' together for `++`.
fn fold_binary(op: BinOp, a: u128, b: u128, ta: ETy, tb: ETy) -> Option<u128> {
    use BinOp::*;
    let cmp = |c: bool| Some(u128::from(c));
    match op {
        Eq => return cmp(a == b),
        Ne => return cmp(a != b),
        Lt => return cmp(a < b),
        Le => return cmp(a <= b),
        Gt => return cmp(a > b),
        Ge => return cmp(a >= b),
        And => return cmp(a != 0 && b != 0),
        Or => return cmp(a != 0 || b != 0),
        _ => {}
    }
    if op == Concat {
        // `a ++ b` is bit<wa + wb> (the checker keeps that within 128 bits).
        let (wa, wb) = (ta.width()?, tb.width()?);
        return if wb >= 128 { Some(b) } else { Some(((a << wb) | b) & mask(wa + wb)) };
    }
    match ta {
        ETy::Bit(w) => {
            let m = mask(w);
            let v = match op {
                Add => a.wrapping_add(b),
                Sub => a.wrapping_sub(b),
                SatAdd => a.checked_add(b).filter(|s| *s <= m).unwrap_or(m),
                SatSub => a.saturating_sub(b),
                Mul => a.wrapping_mul(b),
                BitAnd => a & b,
                BitOr => a | b,
                BitXor => a ^ b,
                Shl => {
                    if b >= u128::from(w) {
                        0
                    } else {
                        a << b
                    }
                }
                Shr => {
                    if b >= u128::from(w) {
                        0
                    } else {
                        a >> b
                    }
                }
                _ => return None,
            };
            Some(v & m)
        }
        // Literal arithmetic is exact; anything negative or too large waits
        // for a width.
        ETy::Int => match op {
            Add => a.checked_add(b),
            Sub => a.checked_sub(b),
            Mul => a.checked_mul(b),
            BitAnd => Some(a & b),
            BitOr => Some(a | b),
            BitXor => Some(a ^ b),
            Shl => {
                if b < 128 && a.leading_zeros() as u128 >= b {
                    Some(a << b)
                } else {
                    None
                }
            }
            Shr => Some(if b >= 128 { 0 } else { a >> b }),
            _ => None,
        },
        _ => None,
    }
}

/// Whether exact literal arithmetic `a op b` on an unsized left side gives
/// a value of more than 128 bits, which no width can hold (a negative
/// difference is not: it wraps once its context gives it a width).
fn exceeds_128_bits(op: BinOp, a: u128, b: u128) -> bool {
    match op {
        BinOp::Add => a.checked_add(b).is_none(),
        BinOp::Mul => a.checked_mul(b).is_none(),
        BinOp::Shl => a != 0 && (b >= 128 || u128::from(a.leading_zeros()) < b),
        _ => false,
    }
}

/// A unary node of already checked operands, folded when constant.
pub(crate) fn mk_unary(op: UnOp, x: TExpr, span: Span) -> TExpr {
    let ty = if op == UnOp::Not { ETy::Bool } else { x.ty };
    if let Some(v) = x.const_value().and_then(|v| fold_unary(op, v, x.ty)) {
        return TExpr::konst(v, ty, span);
    }
    TExpr { kind: TKind::Unary(op, Box::new(x)), ty, span }
}

/// A binary node of already checked operands with result type `ty`, folded when constant.
pub(crate) fn mk_binary(op: BinOp, a: TExpr, b: TExpr, ty: ETy, span: Span) -> TExpr {
    if let (Some(x), Some(y)) = (a.const_value(), b.const_value()) {
        if let Some(v) = fold_binary(op, x, y, a.ty, b.ty) {
            return TExpr::konst(v, ty, span);
        }
    }
    TExpr { kind: TKind::Binary(op, Box::new(a), Box::new(b)), ty, span }
}

/// A cast node to `ty`, folded when constant.
fn mk_cast(x: TExpr, ty: ETy, span: Span) -> TExpr {
    if let (Some(v), Some(w)) = (x.const_value(), ty.width()) {
        return TExpr::konst(v & mask(w), ty, span);
    }
    TExpr { kind: TKind::Cast(Box::new(x)), ty, span }
}

impl Checker<'_> {
    /// Types a scalar expression. Calls in it are lowered into `cx.pre`.
    pub(crate) fn rvalue(&mut self, e: &ast::Expr, cx: &mut Cx) -> TExpr {
        use ast::ExprKind as K;
        match &e.kind {
            K::Int { value, width } => {
                let lit = TExpr::konst(*value, ETy::Int, e.span);
                match width {
                    None => lit,
                    Some(w) if (1..=128).contains(w) => self.push_width(lit, *w),
                    Some(w) => {
                        self.error("E0204", e.span, format!("bit<{w}> is not a valid width"), "widths are 1 to 128");
                        TExpr::error(e.span)
                    }
                }
            }
            K::Bool(b) => TExpr::konst(u128::from(*b), ETy::Bool, e.span),
            K::Name(_) | K::Member { .. } | K::Index { .. } => {
                let p = self.place(e, cx);
                self.place_value(p, e)
            }
            K::Call { .. } => match self.call(e, cx, false) {
                CallOut::Value(t) => t,
                CallOut::Void => {
                    self.error("E0604", e.span, format!("`{}` returns no value", expr_text(e)), "used as a value here");
                    TExpr::error(e.span)
                }
                CallOut::Error => TExpr::error(e.span),
            },
            K::Slice { base, hi, lo } => {
                let b = self.rvalue(base, cx);
                self.slice(b, hi, lo, e.span)
            }
            K::Unary { op, expr } => {
                let x = self.rvalue(expr, cx);
                self.unary(*op, x, e.span)
            }
            K::Binary { op: op @ (BinOp::Eq | BinOp::Ne), lhs, rhs }
                if matches!(lhs.kind, K::Name(_) | K::Member { .. } | K::Index { .. }) =>
            {
                let a = match self.place(lhs, cx) {
                    Place::Header { id, .. } => return self.header_equality(*op, id, rhs, e.span, cx),
                    p => self.place_value(p, lhs),
                };
                let b = self.rvalue(rhs, cx);
                self.binary(*op, a, b, e.span)
            }
            K::Binary { op, lhs, rhs } => {
                let a = self.rvalue(lhs, cx);
                let b = if matches!(op, BinOp::And | BinOp::Or) {
                    let saved = cx.conditional;
                    cx.conditional = saved.or(Some((e.span, op.symbol())));
                    let b = self.rvalue(rhs, cx);
                    cx.conditional = saved;
                    b
                } else {
                    self.rvalue(rhs, cx)
                };
                self.binary(*op, a, b, e.span)
            }
            K::Cast { ty, expr } => {
                let t = self.resolve_type(ty);
                let x = self.rvalue(expr, cx);
                self.cast(t, ty.span, x, e.span)
            }
            K::Cond { cond, then, els } => {
                let c = self.rvalue(cond, cx);
                let c = self.expect_bool(c, "the condition of `?:`");
                let saved = cx.conditional;
                cx.conditional = saved.or(Some((e.span, "?:")));
                let a = self.rvalue(then, cx);
                let b = self.rvalue(els, cx);
                cx.conditional = saved;
                match self.unify("?:", a, b, e.span) {
                    Some((a, b)) => {
                        let ty = if a.ty == ETy::Error { b.ty } else { a.ty };
                        if let (Some(v), Some(x), Some(y)) = (c.const_value(), a.const_value(), b.const_value()) {
                            return TExpr::konst(if v != 0 { x } else { y }, ty, e.span);
                        }
                        TExpr { kind: TKind::Cond(Box::new(c), Box::new(a), Box::new(b)), ty, span: e.span }
                    }
                    None => TExpr::error(e.span),
                }
            }
            K::List(_) => {
                self.report(
                    Diagnostic::error("E0211", e.span, "a list is not a value here", "list used as a value")
                        .with_help("lists `{a, b}` can only be passed to extern parameters such as `csum16`'s"),
                );
                TExpr::error(e.span)
            }
        }
    }

    /// Resolves a name or member path (or computes any other expression).
    pub(crate) fn place(&mut self, e: &ast::Expr, cx: &mut Cx) -> Place {
        use ast::ExprKind as K;
        match &e.kind {
            K::Name(id) => self.lookup_name(id),
            K::Member { base, member } => {
                if let K::Call { callee, args, .. } = &base.kind {
                    if let K::Member { base: table, member: m } = &callee.kind {
                        if m.name == "apply" {
                            return self.apply_member(table, args, member, base.span, cx);
                        }
                    }
                }
                if let Some(t) = self.lookahead_field(base, member, cx) {
                    return Place::Value(t);
                }
                if let K::Name(b) = &base.kind {
                    if let Some(p) = self.enum_member(b, member) {
                        return p;
                    }
                }
                let b = self.place(base, cx);
                self.member(b, base, member)
            }
            K::Index { base, index } => {
                let b = self.place(base, cx);
                self.index_place(b, base, index, cx)
            }
            _ => Place::Value(self.rvalue(e, cx)),
        }
    }

    /// `pkt.lookahead<H>().f` for a header type `H` (P4_16's way to peek
    /// at a field before extracting): a look at all of `H`'s bits, so a
    /// packet shorter than `H` rejects as in P4, sliced to `f`. None when
    /// `call` is not a lookahead of a header type (the caller goes on as
    /// for any member). `H` may be at most 128 bits, the widest lookahead.
    fn lookahead_field(&mut self, call: &ast::Expr, member: &Ident, cx: &mut Cx) -> Option<TExpr> {
        use ast::ExprKind as K;
        let K::Call { callee, type_args, args } = &call.kind else { return None };
        let K::Member { member: m, .. } = &callee.kind else { return None };
        let [t] = type_args.as_slice() else { return None };
        let ast::TypeRefKind::Named { name, args: targs } = &t.kind else { return None };
        if m.name != "lookahead" || !targs.is_empty() {
            return None;
        }
        let Some(GlobalKind::Type(Type::Header(h))) = self.globals.get(&name.name).map(|g| g.kind) else {
            return None;
        };
        let ht = &self.header_types[h.index()];
        let (hname, total) = (ht.name.clone(), ht.bit_len);
        let Some(i) = ht.fields.iter().position(|(n, _)| *n == member.name) else {
            let names: Vec<String> = ht.fields.iter().map(|(n, _)| n.clone()).collect();
            self.unknown_member(member, format!("header `{hname}` has no field `{}`", member.name), &names, None);
            return Some(TExpr::error(call.span));
        };
        let above: u32 = ht.fields[..i].iter().map(|(_, w)| u32::from(*w)).sum();
        let width = ht.fields[i].1;
        if total > 128 {
            self.report(
                Diagnostic::error(
                    "E0609",
                    t.span,
                    format!("`lookahead` of header `{hname}` ({total} bits) is not supported: p4lite looks ahead at most 128 bits"),
                    "wider than 128 bits",
                )
                .with_help(format!(
                    "look ahead at the bits up to the field instead: `lookahead<bit<{}>>()[{}:0]` is `{}` (without requiring all of `{hname}`)",
                    above + u32::from(width),
                    width - 1,
                    member.name
                )),
            );
            return Some(TExpr::error(call.span));
        }
        // The same call with `bit<total>` for `H`: every check of `lookahead` applies.
        let bits = ast::TypeRef { kind: ast::TypeRefKind::Bit(total), span: t.span };
        let peek = ast::Expr {
            kind: K::Call { callee: callee.clone(), type_args: vec![bits], args: args.clone() },
            span: call.span,
        };
        let whole = self.rvalue(&peek, cx);
        if whole.ty == ETy::Error {
            return Some(whole);
        }
        let lo = total - above - u32::from(width);
        let (hi, lo) = ((lo + u32::from(width) - 1) as u16, lo as u16);
        Some(TExpr {
            kind: TKind::Slice(Box::new(whole), hi, lo),
            ty: ETy::Bit(width),
            span: call.span.to(member.span),
        })
    }

    /// `h1 == h2` (or `!=`) for header `h1` (P4_16 8.17): equal when both
    /// are invalid, or both are valid with every field equal.
    fn header_equality(&mut self, op: BinOp, a: HeaderId, rhs: &ast::Expr, span: Span, cx: &mut Cx) -> TExpr {
        let b = match self.place(rhs, cx) {
            Place::Header { id, .. } => id,
            Place::Error => return TExpr::error(span),
            Place::Value(t) if t.ty == ETy::Error => return TExpr::error(span),
            _ => {
                let help = format!("compare it with another header of type `{}`", self.header_type_name(a));
                self.report(
                    Diagnostic::error(
                        "E0208",
                        rhs.span,
                        format!("`{}` compares a header with something that is not a header", op.symbol()),
                        "not a header",
                    )
                    .with_help(help),
                );
                return TExpr::error(span);
            }
        };
        let (ha, hb) = (&self.headers[a.index()], &self.headers[b.index()]);
        if ha.ty != hb.ty {
            let (an, bn) = (self.header_type_name(a), self.header_type_name(b));
            self.error(
                "E0308",
                rhs.span,
                format!("cannot compare a header `{an}` with a header `{bn}`"),
                format!("this is `{bn}`"),
            );
            return TExpr::error(span);
        }
        let slot = |slot: SlotId, ty: ETy| TExpr { kind: TKind::Slot(slot), ty, span };
        let (va, vb) = (slot(ha.valid, ETy::Bool), slot(hb.valid, ETy::Bool));
        let fields: Vec<(SlotId, SlotId)> = ha.fields.iter().copied().zip(hb.fields.iter().copied()).collect();
        let both = |op: BinOp, x: TExpr, y: TExpr| mk_binary(op, x, y, ETy::Bool, span);
        let mut same = both(BinOp::And, va.clone(), vb.clone());
        for (fa, fb) in fields {
            let ty = ETy::of(self.slots[fa.index()].ty);
            same = both(BinOp::And, same, both(BinOp::Eq, slot(fa, ty), slot(fb, ty)));
        }
        let neither = mk_unary(UnOp::Not, both(BinOp::Or, va, vb), span);
        let equal = both(BinOp::Or, neither, same);
        match op {
            BinOp::Ne => mk_unary(UnOp::Not, equal, span),
            _ => equal,
        }
    }

    /// The name of header `h`'s type.
    fn header_type_name(&self, h: HeaderId) -> String {
        self.header_types[self.headers[h.index()].ty.index()].name.clone()
    }

    /// `E.M` for an enum `E` that no local name hides: the member's constant
    /// (an unknown member is reported). `None` when `E` is not an enum.
    fn enum_member(&mut self, e: &Ident, member: &Ident) -> Option<Place> {
        if self.lookup_local(&e.name).is_some() {
            return None;
        }
        let def = self.enums.get(&e.name)?;
        if let Some((_, v)) = def.members.iter().find(|(n, _)| *n == member.name) {
            return Some(Place::Const(ConstVal { ty: def.ty, value: *v }));
        }
        let names: Vec<String> = def.members.iter().map(|(n, _)| n.clone()).collect();
        self.unknown_member(member, format!("enum `{}` has no member `{}`", e.name, member.name), &names, None);
        Some(Place::Error)
    }

    /// What a plain name denotes: block scopes first, then top-level names.
    pub(crate) fn lookup_name(&mut self, id: &Ident) -> Place {
        if let Some(b) = self.lookup_local(&id.name) {
            return match b.clone() {
                Binding::Const(c) => Place::Const(c),
                Binding::Var { slot, access } => Place::Slot { slot, access },
                Binding::Struct { inst, access } => Place::Struct { inst, access },
                Binding::Packet(d) => Place::Packet(d),
                Binding::Table(t) => Place::Table(t),
                Binding::Action(a) => Place::Action(a),
                Binding::Instance(i) => Place::Instance(i),
                Binding::Poisoned => Place::Error,
            };
        }
        if let Some(g) = self.globals.get(&id.name) {
            return match g.kind {
                GlobalKind::Const(c) => Place::Const(c),
                GlobalKind::ExternFn(f) => Place::ExternFn(f),
                GlobalKind::Action(a) => Place::Action(a),
                GlobalKind::Instance(i) => Place::Instance(i),
                GlobalKind::Type(_) => Place::NotValue("type"),
                GlobalKind::Parser(_) => Place::NotValue("parser"),
                GlobalKind::Control(_) => Place::NotValue("control"),
                GlobalKind::Package => Place::NotValue("package"),
            };
        }
        let names = self.visible_names();
        self.unknown_name("E0101", id, format!("cannot find `{}` in this scope", id.name), &names);
        Place::Error
    }

    /// `base.member` for a resolved base.
    fn member(&mut self, b: Place, base: &ast::Expr, member: &Ident) -> Place {
        match b {
            Place::Struct { inst, access } => {
                let si = &self.insts[inst.0 as usize];
                if let Some((_, m)) = si.members.iter().find(|(n, _)| *n == member.name) {
                    return match *m {
                        Member::Slot(slot) => Place::Slot { slot, access },
                        Member::Header(id) => Place::Header { id, access },
                        Member::Struct(inst) => Place::Struct { inst, access },
                        Member::Stack(stack) => Place::Stack { stack, access },
                        Member::Error => Place::Error,
                    };
                }
                let names: Vec<String> = si.members.iter().map(|(n, _)| n.clone()).collect();
                let ty = self.structs[si.ty.0 as usize].name.clone();
                let help = (ty == "standard_metadata_t")
                    .then(|| super::v1model_std_field_hint(&member.name))
                    .flatten()
                    .map(|h| format!("p4lite's `standard_metadata_t` has no `{}`: {h}", member.name));
                self.unknown_member(member, format!("struct `{ty}` has no field `{}`", member.name), &names, help);
                Place::Error
            }
            Place::Header { id, access } => {
                let h = &self.headers[id.index()];
                let ht = &self.header_types[h.ty.index()];
                if let Some(i) = ht.fields.iter().position(|(n, _)| *n == member.name) {
                    return Place::Slot { slot: h.fields[i], access };
                }
                if self.broken_fields.get(&h.ty).is_some_and(|b| b.contains(&member.name)) {
                    return Place::Error;
                }
                let mut names: Vec<String> = ht.fields.iter().map(|(n, _)| n.clone()).collect();
                let ty = ht.name.clone();
                let help = ["isValid", "setValid", "setInvalid"].contains(&member.name.as_str()).then(|| {
                    format!("`{}` is a method; call it: `{}.{}()`", member.name, expr_text(base), member.name)
                });
                names.extend(["isValid", "setValid", "setInvalid"].map(String::from));
                self.unknown_member(member, format!("header `{ty}` has no field `{}`", member.name), &names, help);
                Place::Error
            }
            Place::Error => Place::Error,
            Place::Stack { stack, access } => self.stack_member(stack, access, member),
            Place::StackLast { stack } => self.last_member(stack, member),
            Place::StackNext { stack, .. } => {
                self.next_misuse(stack, base.span.to(member.span));
                Place::Error
            }
            Place::Table(_) => {
                let help = format!("apply the table first: `{}.apply().{}`", expr_text(base), member.name);
                self.unknown_member(member, format!("a table has no field `{}`", member.name), &[], Some(help));
                Place::Error
            }
            _ => {
                let msg = format!("`{}` has no field `{}`", expr_text(base), member.name);
                self.unknown_member(member, msg, &[], None);
                Place::Error
            }
        }
    }

    /// Reports an unknown member with a suggestion from `names`.
    pub(crate) fn unknown_member(&mut self, member: &Ident, msg: String, names: &[String], help: Option<String>) {
        let mut d = Diagnostic::error("E0102", member.span, msg, "unknown field");
        if let Some(h) = help {
            d = d.with_help(h);
        } else if let Some(s) = did_you_mean(&member.name, names.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.report(d);
    }

    /// The value of a place, or an error when the place is not a scalar.
    pub(crate) fn place_value(&mut self, p: Place, e: &ast::Expr) -> TExpr {
        let text = expr_text(e);
        let (what, help) = match p {
            Place::Slot { slot, .. } => {
                let ty = ETy::of(self.slots[slot.index()].ty);
                return TExpr { kind: TKind::Slot(slot), ty, span: e.span };
            }
            Place::Const(c) => return TExpr::konst(c.value, c.ty, e.span),
            Place::Value(t) => return TExpr { span: e.span, ..t },
            Place::Error => return TExpr::error(e.span),
            Place::Header { .. } => {
                ("a header", Some(format!("to test whether it is present, use `{text}.isValid()`")))
            }
            Place::Struct { .. } => ("a struct", None),
            Place::Stack { .. } => ("a header stack", Some(format!("take one element: `{text}[0]`"))),
            Place::StackLast { .. } => {
                ("a header", Some(format!("read one of its fields, or test it: `{text}.isValid()`")))
            }
            Place::StackNext { stack, .. } => {
                self.next_misuse(stack, e.span);
                return TExpr::error(e.span);
            }
            Place::Table(_) => ("a table", Some(format!("apply it: `{text}.apply().hit`"))),
            Place::Action(_) => ("an action", None),
            Place::Instance(_) => ("an extern instance", None),
            Place::ExternFn(_) => ("an extern function", Some(format!("call it: `{text}(...)`"))),
            Place::Packet(_) => ("the packet", None),
            Place::NotValue(kind) => (kind, None),
        };
        let what = match what {
            "type" => "a type",
            "parser" => "a parser",
            "control" => "a control",
            "package" => "the package",
            w => w,
        };
        let mut d = Diagnostic::error(
            "E0211",
            e.span,
            format!("`{text}` is {what}, not a value"),
            format!("{what}, not a value"),
        );
        if let Some(h) = help {
            d = d.with_help(h);
        }
        self.report(d);
        TExpr::error(e.span)
    }

    /// Types `op x`.
    fn unary(&mut self, op: UnOp, x: TExpr, span: Span) -> TExpr {
        match (op, x.ty) {
            (_, ETy::Error) => TExpr::error(span),
            (UnOp::Not, ETy::Bool) | (UnOp::Neg | UnOp::BitNot, ETy::Bit(_) | ETy::Int) => mk_unary(op, x, span),
            (UnOp::Not, t) => {
                self.report(
                    Diagnostic::error(
                        "E0202",
                        x.span,
                        format!("`!` needs a bool operand, but this is {}", t.text()),
                        format!("this is {}", t.text()),
                    )
                    .with_help("compare instead, e.g. `x == 0`; `~` inverts bits"),
                );
                TExpr::error(span)
            }
            (_, t) => {
                self.report(
                    Diagnostic::error(
                        "E0208",
                        x.span,
                        format!("`{}` needs a bit<W> operand, but this is {}", op.symbol(), t.text()),
                        format!("this is {}", t.text()),
                    )
                    .with_help("use `!` to negate a bool"),
                );
                TExpr::error(span)
            }
        }
    }

    /// Types `a op b`.
    fn binary(&mut self, op: BinOp, a: TExpr, b: TExpr, span: Span) -> TExpr {
        use BinOp::*;
        if a.ty == ETy::Error || b.ty == ETy::Error {
            return TExpr::error(span);
        }
        let sym = op.symbol();
        let unsized_operands = a.ty == ETy::Int && (b.ty == ETy::Int || matches!(op, Shl | Shr));
        if let (true, Some(x), Some(y)) = (unsized_operands, a.const_value(), b.const_value()) {
            if exceeds_128_bits(op, x, y) {
                self.report(
                    Diagnostic::error(
                        "E0203",
                        span,
                        format!("`{}` {sym} `{}` does not fit in 128 bits", value_text(x), value_text(y)),
                        "more than 128 bits",
                    )
                    .with_help("integer arithmetic on literals is exact, and values are at most 128 bits wide"),
                );
                return TExpr::error(span);
            }
        }
        match op {
            And | Or => {
                let mut ok = true;
                for (side, x) in [("left", &a), ("right", &b)] {
                    if x.ty != ETy::Bool {
                        ok = false;
                        self.report(
                            Diagnostic::error(
                                "E0202",
                                x.span,
                                format!("`{sym}` needs bool operands, but the {side} side is {}", x.ty.text()),
                                format!("this is {}", x.ty.text()),
                            )
                            .with_help("compare to get a bool, e.g. `x != 0`"),
                        );
                    }
                }
                if !ok {
                    return TExpr::error(span);
                }
                mk_binary(op, a, b, ETy::Bool, span)
            }
            Eq | Ne => match self.unify(sym, a, b, span) {
                Some((a, b)) => {
                    let (a, b) = self.size_compared(a, b);
                    mk_binary(op, a, b, ETy::Bool, span)
                }
                None => TExpr::error(span),
            },
            Lt | Le | Gt | Ge | Add | Sub | SatAdd | SatSub | Mul | BitAnd | BitOr | BitXor => {
                if !self.bit_operands(sym, &[&a, &b]) {
                    return TExpr::error(span);
                }
                match self.unify(sym, a, b, span) {
                    Some((a, b)) => {
                        if matches!(op, Lt | Le | Gt | Ge) {
                            let (a, b) = self.size_compared(a, b);
                            return mk_binary(op, a, b, ETy::Bool, span);
                        }
                        let ty = a.ty;
                        if matches!(op, SatAdd | SatSub) && ty == ETy::Int {
                            // P4_16 saturates at a width; literals have none.
                            self.report(
                                Diagnostic::error(
                                    "E0212",
                                    span,
                                    format!("`{sym}` needs an operand of known width"),
                                    "both sides are integer literals",
                                )
                                .with_help(format!(
                                    "saturating arithmetic is defined on bit<W>: give a side a width, e.g. `8w200 {sym} 100`"
                                )),
                            );
                            return TExpr::error(span);
                        }
                        mk_binary(op, a, b, ty, span)
                    }
                    None => TExpr::error(span),
                }
            }
            Shl | Shr => {
                if !self.bit_operands(sym, &[&a, &b]) {
                    return TExpr::error(span);
                }
                if a.ty == ETy::Int && b.const_value().is_none() {
                    // How many bits shift out depends on a width the literal lacks.
                    self.report(
                        Diagnostic::error(
                            "E0212",
                            a.span,
                            format!("`{sym}` by a variable amount needs a left side of known width"),
                            "this literal has no width",
                        )
                        .with_help(format!(
                            "write the literal with a width, e.g. `32w{}`",
                            a.const_value().map_or("1".to_string(), value_text)
                        )),
                    );
                    return TExpr::error(span);
                }
                let ty = a.ty;
                mk_binary(op, a, b, ty, span)
            }
            Concat => {
                if !self.bit_operands(sym, &[&a, &b]) {
                    return TExpr::error(span);
                }
                let mut ok = true;
                for x in [&a, &b] {
                    if x.ty == ETy::Int {
                        ok = false;
                        self.report(
                            Diagnostic::error(
                                "E0212",
                                x.span,
                                "`++` needs operands of known width",
                                "this literal has no width",
                            )
                            .with_help(format!(
                                "write the literal with a width, e.g. `8w{}`",
                                x.const_value().map_or("0".to_string(), value_text)
                            )),
                        );
                    }
                }
                let (Some(wa), Some(wb)) = (a.ty.width(), b.ty.width()) else {
                    return TExpr::error(span);
                };
                if !ok {
                    return TExpr::error(span);
                }
                let w = u32::from(wa) + u32::from(wb);
                if w > 128 {
                    self.error("E0204", span, format!("`++` would make bit<{w}>, wider than 128 bits"), "too wide");
                    return TExpr::error(span);
                }
                mk_binary(op, a, b, ETy::Bit(w as u16), span)
            }
        }
    }

    /// Compared operands that are both unsized but not folded (e.g. `-1`,
    /// `c ? 1 : 2`) get a width here, as no context will give them one.
    fn size_compared(&mut self, a: TExpr, b: TExpr) -> (TExpr, TExpr) {
        if a.ty == ETy::Int && (a.const_value().is_none() || b.const_value().is_none()) {
            let a = self.push_width(a, 128);
            let b = self.push_width(b, 128);
            return (a, b);
        }
        (a, b)
    }

    /// Reports operands of `sym` that are `bool`; true when all are bit-typed.
    fn bit_operands(&mut self, sym: &str, xs: &[&TExpr]) -> bool {
        let mut ok = true;
        for x in xs {
            if x.ty == ETy::Bool {
                ok = false;
                self.report(
                    Diagnostic::error(
                        "E0208",
                        x.span,
                        format!("`{sym}` needs bit<W> operands, but this is bool"),
                        "this is bool",
                    )
                    .with_help("convert with a cast: `(bit<1>)b`"),
                );
            }
        }
        ok
    }

    /// Makes the operands of `sym` the same type: an unsized literal takes
    /// the other side's width; differing widths or bool against bit are errors.
    pub(crate) fn unify(&mut self, sym: &str, a: TExpr, b: TExpr, span: Span) -> Option<(TExpr, TExpr)> {
        match (a.ty, b.ty) {
            (x, y) if x == y => Some((a, b)),
            (ETy::Error, _) | (_, ETy::Error) => Some((a, b)),
            (ETy::Int, ETy::Bit(w)) => Some((self.push_width(a, w), b)),
            (ETy::Bit(w), ETy::Int) => {
                let b = self.push_width(b, w);
                Some((a, b))
            }
            (x, y) => {
                let (code, msg, help) = match (x, y) {
                    (ETy::Bit(_), ETy::Bit(_)) => (
                        "E0201",
                        format!("`{sym}` operands have different widths: {} and {}", x.text(), y.text()),
                        format!("cast one side so the widths agree, e.g. `({})(...)`", x.text()),
                    ),
                    _ => (
                        "E0202",
                        format!("`{sym}` operands have different types: {} and {}", x.text(), y.text()),
                        "a bool and a bit<W> cannot be mixed; compare the bit<W> side, e.g. `x != 0`".to_string(),
                    ),
                };
                let label = format!("{} {sym} {}", x.text(), y.text());
                self.report(Diagnostic::error(code, span, msg, label).with_help(help));
                None
            }
        }
    }

    /// Types `(to) x`.
    fn cast(&mut self, to: Type, ty_span: Span, x: TExpr, span: Span) -> TExpr {
        let Some(to) = to.scalar() else {
            let t = self.type_name(to);
            self.error("E0209", ty_span, format!("cannot cast to {t}"), "only bit<W> and bool casts exist");
            return TExpr::error(span);
        };
        match (x.ty, to) {
            (ETy::Error, _) | (_, ETy::Error) => TExpr::error(span),
            (a, b) if a == b => TExpr { span, ..x },
            (ETy::Int, ETy::Bit(w)) => match x.const_value() {
                Some(v) => TExpr::konst(v & mask(w), to, span),
                None => {
                    let x = self.push_width(x, w);
                    TExpr { span, ..x }
                }
            },
            (ETy::Int, ETy::Bool) if matches!(x.const_value(), Some(0 | 1)) => {
                TExpr::konst(x.const_value().unwrap_or(0), ETy::Bool, span)
            }
            (ETy::Bit(_), ETy::Bit(_)) | (ETy::Bool, ETy::Bit(1)) | (ETy::Bit(1), ETy::Bool) => mk_cast(x, to, span),
            (from, _) => {
                let help = match from {
                    ETy::Int => "only the literals 0 and 1 convert to bool".to_string(),
                    ETy::Bool => format!("a bool converts to bit<1>; widen that: `({})(bit<1>)b`", to.text()),
                    _ => "compare instead: `x != 0`".to_string(),
                };
                self.report(
                    Diagnostic::error(
                        "E0209",
                        span,
                        format!("cannot cast {} to {}", from.text(), to.text()),
                        "impossible cast",
                    )
                    .with_help(help),
                );
                TExpr::error(span)
            }
        }
    }

    /// The bounds of `[hi:lo]` on a value of `width` bits, checked.
    pub(crate) fn slice_bounds(&mut self, hi: &ast::Expr, lo: &ast::Expr, width: u16) -> Option<(u16, u16)> {
        let h = self.const_int(hi, "a slice bound");
        let l = self.const_int(lo, "a slice bound");
        let (h, l) = (h?, l?);
        if h >= u128::from(width) {
            self.report(
                Diagnostic::error(
                    "E0207",
                    hi.span,
                    format!("slice [{}:{}] is out of range for bit<{width}>", h, l),
                    format!("bit {h} does not exist"),
                )
                .with_help(format!("the bits of a bit<{width}> are {} (most significant) down to 0", width - 1)),
            );
            return None;
        }
        if l > h {
            self.report(
                Diagnostic::error(
                    "E0207",
                    lo.span,
                    format!("slice [{h}:{l}] has its low bit above its high bit"),
                    "low bit above high bit",
                )
                .with_help(format!("write the high bit first: [{l}:{h}]")),
            );
            return None;
        }
        Some((h as u16, l as u16))
    }

    /// Types `b[hi:lo]`.
    fn slice(&mut self, b: TExpr, hi: &ast::Expr, lo: &ast::Expr, span: Span) -> TExpr {
        let w = match b.ty {
            ETy::Bit(w) => w,
            ETy::Error => return TExpr::error(span),
            ETy::Int => {
                self.report(
                    Diagnostic::error("E0212", b.span, "cannot slice an integer of unknown width", "no width")
                        .with_help("write the literal with a width, e.g. `8w5`"),
                );
                return TExpr::error(span);
            }
            ETy::Bool => {
                self.error("E0208", b.span, "cannot slice a bool", "this is bool");
                return TExpr::error(span);
            }
        };
        let Some((h, l)) = self.slice_bounds(hi, lo, w) else {
            return TExpr::error(span);
        };
        let ty = ETy::Bit(h - l + 1);
        if let Some(v) = b.const_value() {
            return TExpr::konst((v >> l) & mask(h - l + 1), ty, span);
        }
        TExpr { kind: TKind::Slice(Box::new(b), h, l), ty, span }
    }

    /// Reports anything that is not `bool` where a condition is needed.
    pub(crate) fn expect_bool(&mut self, t: TExpr, what: &str) -> TExpr {
        if matches!(t.ty, ETy::Bool | ETy::Error) {
            return t;
        }
        let help = match t.ty {
            ETy::Int => "write `true` or `false`".to_string(),
            _ => "compare to get a bool, e.g. `x != 0`".to_string(),
        };
        self.report(
            Diagnostic::error(
                "E0202",
                t.span,
                format!("{what} must be bool, but it is {}", t.ty.text()),
                format!("this is {}", t.ty.text()),
            )
            .with_help(help),
        );
        TExpr::error(t.span)
    }

    /// Gives `t` the type `want` (an unsized literal takes the width);
    /// reports a mismatch as "`{what}` is {want} but the value is {got}".
    pub(crate) fn coerce(&mut self, t: TExpr, want: ETy, what: &str) -> TExpr {
        match (t.ty, want) {
            (got, w) if got == w => t,
            (ETy::Error, _) | (_, ETy::Error) => TExpr { ty: want, ..t },
            (ETy::Int, ETy::Bit(w)) => self.push_width(t, w),
            (got, w) => {
                let (code, help) = match (got, w) {
                    (ETy::Bit(_), ETy::Bit(_)) => ("E0201", format!("convert with a cast: `({})(...)`", w.text())),
                    (_, ETy::Bool) => ("E0202", "compare to get a bool, e.g. `x != 0`".to_string()),
                    _ => ("E0202", format!("convert with a cast: `({})(...)`", w.text())),
                };
                self.report(
                    Diagnostic::error(
                        code,
                        t.span,
                        format!("{what} is {} but the value is {}", w.text(), got.text()),
                        format!("this is {}", got.text()),
                    )
                    .with_help(help),
                );
                TExpr { kind: TKind::Error, ty: want, span: t.span }
            }
        }
    }

    /// Gives an unsized expression the width `w`, checking that literals fit.
    pub(crate) fn push_width(&mut self, t: TExpr, w: u16) -> TExpr {
        if t.ty != ETy::Int {
            return t;
        }
        let ty = ETy::Bit(w);
        match t.kind {
            TKind::Const(v) => {
                if v > mask(w) {
                    let bits = 128 - v.leading_zeros();
                    self.report(
                        Diagnostic::error(
                            "E0203",
                            t.span,
                            format!("`{}` does not fit in bit<{w}>", value_text(v)),
                            format!("this needs {bits} bits"),
                        )
                        .with_help(format!("bit<{w}> holds 0 to {}", value_text(mask(w)))),
                    );
                    return TExpr { kind: TKind::Error, ty, span: t.span };
                }
                TExpr::konst(v, ty, t.span)
            }
            TKind::Unary(op, x) => {
                let x = self.push_width(*x, w);
                mk_unary(op, x, t.span)
            }
            TKind::Binary(op, a, b) => {
                let a = self.push_width(*a, w);
                let b = if matches!(op, BinOp::Shl | BinOp::Shr) { *b } else { self.push_width(*b, w) };
                mk_binary(op, a, b, ty, t.span)
            }
            TKind::Cond(c, a, b) => {
                let a = self.push_width(*a, w);
                let b = self.push_width(*b, w);
                TExpr { kind: TKind::Cond(c, Box::new(a), Box::new(b)), ty, span: t.span }
            }
            kind => TExpr { kind, ty, span: t.span },
        }
    }

    /// A compile-time integer (slice bounds, sizes, priorities, prefix lengths).
    pub(crate) fn const_int(&mut self, e: &ast::Expr, what: &'static str) -> Option<u128> {
        let mut cx = Cx::pure(what);
        let t = self.rvalue(e, &mut cx);
        match (t.kind, t.ty) {
            (TKind::Error, _) | (_, ETy::Error) => None,
            (TKind::Const(v), ETy::Int | ETy::Bit(_)) => Some(v),
            (_, ETy::Bool) => {
                self.error("E0202", e.span, format!("{what} must be an integer, not bool"), "this is bool");
                None
            }
            _ => {
                self.error("E0206", e.span, format!("{what} must be a compile-time constant"), "not a constant");
                None
            }
        }
    }

    /// A compile-time constant of type `want` (`None` means any scalar);
    /// `what` names the target for mismatch messages.
    pub(crate) fn const_scalar(&mut self, e: &ast::Expr, want: Option<ETy>, what: &str) -> Option<ConstVal> {
        let mut cx = Cx::pure("constants");
        let t = self.rvalue(e, &mut cx);
        let t = match want {
            Some(w) => self.coerce(t, w, what),
            None => t,
        };
        match t.kind {
            TKind::Error => None,
            TKind::Const(v) => Some(ConstVal { ty: t.ty, value: v }),
            _ => {
                self.error("E0206", e.span, format!("{what} must be a compile-time constant"), "not a constant");
                None
            }
        }
    }

    /// The lvalue an assignment or `out` argument writes.
    pub(crate) fn lvalue(&mut self, e: &ast::Expr, cx: &mut Cx) -> LTarget {
        use ast::ExprKind as K;
        let text = expr_text(e);
        match &e.kind {
            K::Name(_) | K::Member { .. } | K::Index { .. } => {
                let p = self.place(e, cx);
                let (kind, help): (&str, Option<String>) = match p {
                    Place::Slot { slot, access } => {
                        if !self.writable(&access, e) {
                            return LTarget::Error;
                        }
                        let ty = ETy::of(self.slots[slot.index()].ty);
                        return LTarget::Scalar { lv: LValue { slot, slice: None }, ty };
                    }
                    Place::Header { id, access } => {
                        if !self.writable(&access, e) {
                            return LTarget::Error;
                        }
                        return LTarget::Header(id);
                    }
                    Place::Struct { inst, access } => {
                        if !self.writable(&access, e) {
                            return LTarget::Error;
                        }
                        return LTarget::Struct(inst);
                    }
                    Place::Error => return LTarget::Error,
                    Place::Const(_) => ("a constant", Some("declare a variable instead of a `const`".to_string())),
                    Place::Stack { stack, access } => {
                        if !self.writable(&access, e) {
                            return LTarget::Error;
                        }
                        return LTarget::Stack(stack);
                    }
                    Place::StackLast { .. } => ("`last`, which can only be read", None),
                    Place::StackNext { stack, .. } => {
                        self.next_misuse(stack, e.span);
                        return LTarget::Error;
                    }
                    Place::Value(_) => ("a computed value", None),
                    Place::Table(_) => ("a table", None),
                    Place::Action(_) => ("an action", None),
                    Place::Instance(_) => ("an extern instance", None),
                    Place::ExternFn(_) => ("an extern function", None),
                    Place::Packet(_) => ("the packet", None),
                    Place::NotValue(k) => (k, None),
                };
                let mut d = Diagnostic::error("E0301", e.span, format!("cannot assign to `{text}`"), kind.to_string());
                if let Some(h) = help {
                    d = d.with_help(h);
                }
                self.report(d);
                LTarget::Error
            }
            K::Slice { base, hi, lo } => match self.lvalue(base, cx) {
                LTarget::Scalar { lv, ty: ETy::Bit(w) } => {
                    let Some((h, l)) = self.slice_bounds(hi, lo, w) else {
                        return LTarget::Error;
                    };
                    let off = lv.slice.map_or(0, |(_, lo)| lo);
                    LTarget::Scalar {
                        lv: LValue { slot: lv.slot, slice: Some((off + h, off + l)) },
                        ty: ETy::Bit(h - l + 1),
                    }
                }
                LTarget::Error => LTarget::Error,
                _ => {
                    self.error("E0208", base.span, "only bit<W> values can be sliced", "not a bit<W>");
                    LTarget::Error
                }
            },
            K::Int { .. } | K::Bool(_) => {
                self.error("E0301", e.span, "cannot assign to a literal", "a literal");
                LTarget::Error
            }
            _ => {
                self.error("E0301", e.span, format!("cannot assign to `{text}`"), "not a variable or field");
                LTarget::Error
            }
        }
    }

    /// Reports a write through a read-only path; true when writable.
    pub(crate) fn writable(&mut self, access: &Access, e: &ast::Expr) -> bool {
        let text = expr_text(e);
        match access {
            Access::ReadWrite => true,
            Access::InParam(p) => {
                self.report(
                    Diagnostic::error(
                        "E0301",
                        e.span,
                        format!("cannot assign to `{text}`: `{p}` is an `in` parameter"),
                        "read-only",
                    )
                    .with_help(format!("declare `{p}` as `inout` to modify it")),
                );
                false
            }
            Access::ActionParam(p) => {
                self.report(
                    Diagnostic::error("E0301", e.span, format!("cannot assign to action parameter `{p}`"), "read-only")
                        .with_help("copy it into a local variable first"),
                );
                false
            }
        }
    }

    /// Emits a checked expression into the IR arena.
    pub(crate) fn emit(&mut self, t: &TExpr) -> ir::ExprId {
        if t.ty == ETy::Int && t.const_value().is_none() {
            // Literal arithmetic no context sized (rare): give it 32 bits.
            let sized = self.push_width(t.clone(), 32);
            return self.emit(&sized);
        }
        let ty = match t.ty {
            ETy::Bit(w) => ir::Ty::Bit(w),
            ETy::Bool => ir::Ty::Bool,
            ETy::Int => ir::Ty::Bit((128 - t.const_value().unwrap_or(0).leading_zeros()).max(1) as u16),
            ETy::Error => ir::Ty::Bit(1),
        };
        let kind = match &t.kind {
            TKind::Const(v) => ir::ExprKind::Const(v & ty.mask()),
            TKind::Slot(s) => ir::ExprKind::Slot(*s),
            TKind::Lookahead => ir::ExprKind::Lookahead,
            TKind::Unary(op, x) => ir::ExprKind::Unary(*op, self.emit(x)),
            TKind::Binary(op, a, b) => {
                let a = self.emit(a);
                let b = self.emit(b);
                ir::ExprKind::Binary(*op, a, b)
            }
            TKind::Slice(b, hi, lo) => ir::ExprKind::Slice { base: self.emit(b), hi: *hi, lo: *lo },
            TKind::Cast(x) => ir::ExprKind::Cast(self.emit(x)),
            TKind::Cond(c, a, b) => {
                let c = self.emit(c);
                let a = self.emit(a);
                let b = self.emit(b);
                ir::ExprKind::Cond(c, a, b)
            }
            TKind::Error => ir::ExprKind::Const(0),
        };
        self.push_expr(kind, ty, t.span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Folds `a op b` on two sized constants.
    fn fold(op: BinOp, (a, wa): (u128, u16), (b, wb): (u128, u16)) -> Option<u128> {
        fold_binary(op, a, b, ETy::Bit(wa), ETy::Bit(wb))
    }

    #[test]
    fn concatenation_keeps_both_operands() {
        use BinOp::Concat;
        assert_eq!(fold(Concat, (46, 6), (0, 2)), Some(0xb8));
        assert_eq!(fold(Concat, (0xAB, 8), (0x01, 8)), Some(0xAB01));
        assert_eq!(fold(Concat, (0xAB, 8), (0x1, 4)), Some(0xAB1));
        assert_eq!(fold(Concat, (1, 1), (2, 8)), Some(0x102));
        let (hi, lo) = (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        assert_eq!(fold(Concat, (hi, 64), (lo, 64)), Some(hi << 64 | lo));
        assert_eq!(fold(Concat, (1, 1), (u128::MAX >> 1, 127)), Some(u128::MAX));
        assert_eq!(fold(Concat, (0x7f, 7), (u128::MAX >> 7, 121)), Some(u128::MAX));
    }

    #[test]
    fn arithmetic_wraps_at_the_operand_width() {
        use BinOp::*;
        assert_eq!(fold(Add, (0xff, 8), (1, 8)), Some(0));
        assert_eq!(fold(Sub, (0, 8), (1, 8)), Some(0xff));
        assert_eq!(fold(Mul, (0x10, 8), (0x10, 8)), Some(0));
        assert_eq!(fold(Shl, (0x81, 8), (1, 8)), Some(0x02));
        assert_eq!(fold(Shl, (1, 8), (8, 8)), Some(0));
        assert_eq!(fold(Shr, (0x80, 8), (7, 8)), Some(1));
        assert_eq!(fold(Add, (u128::MAX, 128), (1, 128)), Some(0));
        assert_eq!(fold(Sub, (0, 128), (1, 128)), Some(u128::MAX));
        assert_eq!(fold(Mul, (1 << 64, 128), (1 << 64, 128)), Some(0));
        assert_eq!(fold(Shl, (1, 128), (127, 128)), Some(1 << 127));
        assert_eq!(fold(Shl, (1, 128), (128, 128)), Some(0));
        assert_eq!(fold(BitXor, (u128::MAX, 128), (1, 128)), Some(u128::MAX - 1));
        assert_eq!(fold_unary(UnOp::Neg, 1, ETy::Bit(128)), Some(u128::MAX));
        assert_eq!(fold_unary(UnOp::BitNot, 0, ETy::Bit(4)), Some(0xf));
    }
}
