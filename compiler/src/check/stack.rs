//! Header stacks (P4_16 §8.18): `mpls_t[4] mpls;` in the headers struct.
//!
//! A stack of `N` is lowered to `N` ordinary headers (`hdr.mpls[0]` ..
//! `hdr.mpls[N-1]`) and a hidden next-index slot (`hdr.mpls.$next`,
//! `bit<32>`, P4_16's `nextIndex`), so the backends see headers and slots
//! they already know, plus one statement, [`ir::StmtKind::ExtractNext`]:
//! - `hdr.mpls[i]` with a compile-time `i` is header `i` (E0214 when out of
//!   range; a non-constant index is refused, E0206);
//! - `pkt.extract(hdr.mpls.next)` is `ExtractNext` (a full stack rejects the
//!   packet with `StackOutOfBounds` at run time);
//! - `hdr.mpls.last.f` and `.last.isValid()` select element `$next - 1`
//!   with a `?:` chain on `$next`; before any extract (`$next` 0) they read
//!   element 0 (P4_16 rejects with `error.StackOutOfBounds` there; p4lite
//!   keeps expressions pure, and element 0 is then invalid and reads as
//!   its zeroed fields);
//! - `.lastIndex` is `$next - 1` (wrapping: 0xFFFF_FFFF before any
//!   extract), `.nextIndex` is `$next`, `.size` the constant `N`;
//! - `.next`, `.last`, `.nextIndex` and `.lastIndex` are parser-only, as in
//!   P4_16 (E0506);
//! - `push_front(n)` / `pop_front(n)` (compile-time `n` >= 1) become header
//!   copies, `setInvalid`s and an update of `$next`, in P4_16's order;
//! - `pkt.emit(hdr.mpls)` emits the elements in index order (each if valid).

use crate::ast;
use crate::diag::Diagnostic;
use crate::ir::{self, BinOp, LValue, SlotKind, Stmt, StmtKind};
use crate::span::{Ident, Span};

use super::calls::CallOut;
use super::expr::{mk_binary, Place, TKind};
use super::{Access, Checker, ConstVal, ETy, StackDef, TExpr, Type};

/// The most elements a header stack may have.
pub(crate) const MAX_STACK: u32 = 64;

/// The members a header stack has, for "did you mean".
const STACK_MEMBERS: [&str; 7] = ["next", "last", "size", "nextIndex", "lastIndex", "push_front", "pop_front"];

impl Checker<'_> {
    /// The type of a struct field `ELEM[N] name;`: a stack of headers `ELEM`
    /// with a compile-time size of 1 to [`MAX_STACK`].
    pub(crate) fn stack_type(&mut self, elem: Type, f: &ast::FieldDecl, n: &ast::Expr) -> Type {
        let what = format!("the size of header stack `{}`", f.name.name);
        let Some(size) = self.const_scalar(n, Some(ETy::Bit(32)), &what) else {
            return Type::Error;
        };
        match elem {
            Type::Header(h) if size.value >= 1 && size.value <= u128::from(MAX_STACK) => {
                Type::Stack(h, size.value as u32)
            }
            Type::Header(_) => {
                self.report(
                    Diagnostic::error(
                        "E0213",
                        n.span,
                        format!("header stack `{}` has {} elements", f.name.name, size.value),
                        format!("not 1 to {MAX_STACK}"),
                    )
                    .with_help(format!("p4lite's header stacks hold 1 to {MAX_STACK} headers")),
                );
                Type::Error
            }
            Type::Error => Type::Error,
            other => {
                let t = self.type_name(other);
                self.report(
                    Diagnostic::error(
                        "E0213",
                        f.ty.span,
                        format!("the elements of header stack `{}` must be headers, but this is {t}", f.name.name),
                        "not a header type",
                    )
                    .with_help("a header stack is `HEADER_TYPE[N] name;`, e.g. `mpls_t[4] mpls;`"),
                );
                Type::Error
            }
        }
    }

    /// Lays out a stack of `n` headers of type `ty` at `path`; returns its index in `stacks`.
    pub(crate) fn new_stack(&mut self, path: String, ty: ir::HeaderTypeId, n: u32, span: Span) -> u32 {
        let elems = (0..n).map(|i| self.new_header(format!("{path}[{i}]"), ty, span)).collect();
        let next = self.new_slot(format!("{path}.$next"), ir::Ty::Bit(32), SlotKind::Meta);
        self.stacks.push(StackDef { name: path, ty, elems, next });
        self.stacks.len() as u32 - 1
    }

    /// `base[index]` for a resolved base: an element of a header stack.
    pub(crate) fn index_place(&mut self, b: Place, base: &ast::Expr, index: &ast::Expr, cx: &mut Cx) -> Place {
        let (stack, access) = match b {
            Place::Stack { stack, access } => (stack, access),
            Place::Error => {
                let _ = self.rvalue(index, cx);
                return Place::Error;
            }
            Place::Value(t) if t.ty == ETy::Error => return Place::Error,
            _ => {
                let text = super::expr_text(base);
                self.report(
                    Diagnostic::error(
                        "E0208",
                        base.span,
                        format!("`{text}` is not a header stack, so it cannot be indexed"),
                        "not a header stack",
                    )
                    .with_help(format!("to take bits of a value, slice it: `{text}[hi:lo]`")),
                );
                return Place::Error;
            }
        };
        let i = self.rvalue(index, cx);
        let def = &self.stacks[stack as usize];
        let (name, size) = (def.name.clone(), def.elems.len());
        match (i.ty, i.const_value()) {
            (ETy::Error, _) => Place::Error,
            (ETy::Bool, _) => {
                self.error("E0202", index.span, "a header stack index must be a number, not a bool", "a bool");
                Place::Error
            }
            (_, Some(v)) if v < size as u128 => {
                Place::Header { id: self.stacks[stack as usize].elems[v as usize], access }
            }
            (_, Some(v)) => {
                self.report(
                    Diagnostic::error(
                        "E0214",
                        index.span,
                        format!("index {v} is out of range for header stack `{name}` of size {size}"),
                        format!("valid indexes are 0 to {}", size - 1),
                    )
                    .with_help(format!("`{name}` is declared with {size} elements; index it with 0 to {}", size - 1)),
                );
                Place::Error
            }
            (_, None) => {
                self.report(
                    Diagnostic::error(
                        "E0206",
                        index.span,
                        format!("the index of header stack `{name}` must be a compile-time constant"),
                        "not a constant",
                    )
                    .with_help(format!(
                        "p4lite supports constant indexes only (`{name}[0]`); in the parser, `{name}.next` and \
                         `{name}.last` follow the stack's next index"
                    )),
                );
                Place::Error
            }
        }
    }

    /// Reports a parser-only stack member elsewhere; true in the parser.
    fn stack_parser_only(&mut self, name: &str, member: &Ident) -> bool {
        if self.block.kind == super::BlockKind::Parser {
            return true;
        }
        self.report(
            Diagnostic::error(
                "E0506",
                member.span,
                format!("`{name}.{}` is only allowed in the parser", member.name),
                "not in a parser",
            )
            .with_help(format!(
                "P4_16 allows `next`, `last`, `nextIndex` and `lastIndex` of a header stack only in parsers; \
                 index it with a constant here, e.g. `{name}[0]`"
            )),
        );
        false
    }

    /// `stack.member` for a header stack.
    pub(crate) fn stack_member(&mut self, stack: u32, access: Access, member: &Ident) -> Place {
        let def = self.stacks[stack as usize].clone();
        let next = TExpr { kind: TKind::Slot(def.next), ty: ETy::Bit(32), span: member.span };
        match member.name.as_str() {
            "size" => Place::Const(ConstVal { ty: ETy::Bit(32), value: def.elems.len() as u128 }),
            "next" if self.stack_parser_only(&def.name, member) => Place::StackNext { stack, access },
            "last" if self.stack_parser_only(&def.name, member) => Place::StackLast { stack },
            "nextIndex" if self.stack_parser_only(&def.name, member) => Place::Value(next),
            "lastIndex" if self.stack_parser_only(&def.name, member) => {
                let one = TExpr::konst(1, ETy::Bit(32), member.span);
                Place::Value(mk_binary(BinOp::Sub, next, one, ETy::Bit(32), member.span))
            }
            "next" | "last" | "nextIndex" | "lastIndex" => Place::Error,
            "push_front" | "pop_front" => {
                let help = format!("`{}` is a method; call it: `{}.{}(1)`", member.name, def.name, member.name);
                self.unknown_member(
                    member,
                    format!("header stack `{}` has no field `{}`", def.name, member.name),
                    &[],
                    Some(help),
                );
                Place::Error
            }
            _ => {
                let names: Vec<String> = STACK_MEMBERS.iter().map(|s| s.to_string()).collect();
                let help = self.header_types[def.ty.index()].fields.iter().any(|(f, _)| *f == member.name).then(|| {
                    format!("`{}` is a field of each element; pick one: `{}[0].{}`", member.name, def.name, member.name)
                });
                self.unknown_member(
                    member,
                    format!("header stack `{}` has no member `{}`", def.name, member.name),
                    &names,
                    help,
                );
                Place::Error
            }
        }
    }

    /// `stack.last`'s value of `pick(element)`: a `?:` chain on the next
    /// index (element 0 when nothing was extracted; see the module docs).
    fn last_select(&mut self, stack: u32, pick: impl Fn(&ir::Header) -> ir::SlotId, ty: ETy, span: Span) -> TExpr {
        let def = self.stacks[stack as usize].clone();
        let slot = |s: ir::SlotId| TExpr { kind: TKind::Slot(s), ty, span };
        let mut e = slot(pick(&self.headers[def.elems[0].index()]));
        for (i, h) in def.elems.iter().enumerate().skip(1) {
            let next = TExpr { kind: TKind::Slot(def.next), ty: ETy::Bit(32), span };
            let at = TExpr::konst(i as u128 + 1, ETy::Bit(32), span);
            let cond = mk_binary(BinOp::Eq, next, at, ETy::Bool, span);
            let this = slot(pick(&self.headers[h.index()]));
            e = TExpr { kind: TKind::Cond(Box::new(cond), Box::new(this), Box::new(e)), ty, span };
        }
        e
    }

    /// `stack.last.FIELD`: a read of that field of the last extracted element.
    pub(crate) fn last_member(&mut self, stack: u32, member: &Ident) -> Place {
        let def = &self.stacks[stack as usize];
        let (name, ht) = (def.name.clone(), def.ty);
        let fields = &self.header_types[ht.index()].fields;
        let Some(i) = fields.iter().position(|(n, _)| *n == member.name) else {
            if self.broken_fields.get(&ht).is_some_and(|b| b.contains(&member.name)) {
                return Place::Error;
            }
            let names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
            let ty = self.header_types[ht.index()].name.clone();
            let help = (member.name == "isValid").then(|| format!("call it: `{name}.last.isValid()`"));
            self.unknown_member(member, format!("header `{ty}` has no field `{}`", member.name), &names, help);
            return Place::Error;
        };
        let ty = ETy::Bit(fields[i].1);
        Place::Value(self.last_select(stack, |h| h.fields[i], ty, member.span))
    }

    /// `stack.last.isValid()` (the only method of `last`: it is not an l-value).
    pub(crate) fn last_method(&mut self, stack: u32, member: &Ident, args: &[ast::Expr], span: Span) -> CallOut {
        let name = self.stacks[stack as usize].name.clone();
        if member.name != "isValid" || !args.is_empty() {
            self.report(
                Diagnostic::error(
                    "E0214",
                    member.span,
                    format!("`{name}.last` can only be read: its fields and `isValid()`"),
                    "not allowed on `last`",
                )
                .with_help(format!("to change an element, index it with a constant: `{name}[0].{}()`", member.name)),
            );
            return CallOut::Error;
        }
        CallOut::Value(self.last_select(stack, |h| h.valid, ETy::Bool, span))
    }

    /// Reports a use of `stack.next` other than `pkt.extract(stack.next)`.
    pub(crate) fn next_misuse(&mut self, stack: u32, span: Span) {
        let name = self.stacks[stack as usize].name.clone();
        self.report(
            Diagnostic::error(
                "E0214",
                span,
                format!("p4lite supports `{name}.next` only as `pkt.extract({name}.next)`"),
                "not an extract",
            )
            .with_help(format!("read the element just extracted with `{name}.last`")),
        );
    }

    /// `stack.push_front(n)` / `stack.pop_front(n)`, lowered in P4_16's
    /// order (§8.18) to header copies, `setInvalid`s and the next index's update.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn stack_method(
        &mut self,
        stack: u32,
        access: Access,
        base: &ast::Expr,
        member: &Ident,
        args: &[ast::Expr],
        span: Span,
        cx: &mut Cx,
    ) -> CallOut {
        let def = self.stacks[stack as usize].clone();
        let m = member.name.as_str();
        if !matches!(m, "push_front" | "pop_front") {
            let mut d = Diagnostic::error(
                "E0601",
                member.span,
                format!("header stack `{}` has no method `{m}`", def.name),
                "unknown method",
            );
            d = match crate::diag::did_you_mean(m, ["push_front", "pop_front"]) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help(format!(
                    "header stacks have `push_front(n)` and `pop_front(n)`; an element's methods need an index: `{}[0].{m}()`",
                    def.name
                )),
            };
            self.report(d);
            return CallOut::Error;
        }
        let [arg] = args else {
            self.error(
                "E0602",
                span,
                format!("`{m}` takes 1 argument (how many elements to shift) but {} given", args.len()),
                "wrong number of arguments",
            );
            return CallOut::Error;
        };
        let Some(count) = self.const_scalar(arg, Some(ETy::Bit(32)), &format!("the count of `{m}`")) else {
            return CallOut::Error;
        };
        if count.value == 0 {
            self.error("E0214", arg.span, format!("`{m}(0)` shifts nothing"), "must be at least 1");
            return CallOut::Error;
        }
        if !self.writable(&access, base) {
            return CallOut::Error;
        }
        let size = def.elems.len();
        let n = count.value.min(size as u128) as usize;
        let invalid = |h: ir::HeaderId| Stmt { kind: StmtKind::SetValid { header: h, valid: false }, span };
        let next = TExpr { kind: TKind::Slot(def.next), ty: ETy::Bit(32), span };
        let k = |v: u128| TExpr::konst(v, ETy::Bit(32), span);
        let cond = |c: TExpr, a: TExpr, b: TExpr| TExpr {
            kind: TKind::Cond(Box::new(c), Box::new(a), Box::new(b)),
            ty: ETy::Bit(32),
            span,
        };
        let new_next = if m == "push_front" {
            // for i in size-1 down to 0: hs[i] = i >= n ? hs[i-n] : invalid
            for i in (0..size).rev() {
                if i >= n {
                    self.copy_header(def.elems[i], def.elems[i - n], span, span, cx);
                } else {
                    cx.pre.push(invalid(def.elems[i]));
                }
            }
            // nextIndex = min(nextIndex + count, size)
            if n >= size {
                k(size as u128)
            } else {
                let over = mk_binary(BinOp::Gt, next.clone(), k((size - n) as u128), ETy::Bool, span);
                cond(over, k(size as u128), mk_binary(BinOp::Add, next, k(n as u128), ETy::Bit(32), span))
            }
        } else {
            // for i in 0..size: hs[i] = i + n < size ? hs[i+n] : invalid
            for i in 0..size {
                if i + n < size {
                    self.copy_header(def.elems[i], def.elems[i + n], span, span, cx);
                } else {
                    cx.pre.push(invalid(def.elems[i]));
                }
            }
            // nextIndex = nextIndex >= count ? nextIndex - count : 0
            let c = k(count.value.min(u128::from(u32::MAX)));
            let enough = mk_binary(BinOp::Ge, next.clone(), c.clone(), ETy::Bool, span);
            cond(enough, mk_binary(BinOp::Sub, next, c, ETy::Bit(32), span), k(0))
        };
        let src = self.emit(&new_next);
        cx.pre.push(Stmt { kind: StmtKind::Assign { dst: LValue { slot: def.next, slice: None }, src }, span });
        CallOut::Void
    }
}

use super::expr::Cx;
