//! Calls: actions, extern functions and methods, the packet's methods,
//! header validity, and table application.
//!
//! Every call lowers to statements pushed onto [`Cx::pre`]; a call with a
//! result stores it in a fresh temporary that the expression then reads.
//! Because that moves the call before the statement, a call whose running
//! depends on an operator (right of `&&`/`||`, a `?:` branch) is rejected
//! rather than hoisted: hoisting would run it every time.

use std::collections::HashMap;

use crate::ast::{self, UnOp};
use crate::diag::{did_you_mean, Diagnostic};
use crate::ir::{self, Dir, ExternArg, SigTy, SlotId, Stmt, StmtKind};
use crate::span::{Ident, SourceId, Span};

use super::expr::{mk_unary, Place, TKind};
use super::{expr_text, Access, Checker, Cx, ETy, InstId, Member, PacketDir, TExpr, Type};

/// What lowering a call produced.
#[derive(Debug)]
pub(crate) enum CallOut {
    /// The call has a result, read by this expression.
    Value(TExpr),
    /// The call has no result.
    Void,
    /// Already reported.
    Error,
}

/// What a type parameter was bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bound {
    /// A scalar type.
    Scalar(ETy),
    /// A header, struct or list of this many bits.
    Bits(u32),
}

/// An evaluated extern argument, before it is matched with its parameter.
enum ArgVal {
    Scalar(TExpr),
    List { items: Vec<TExpr>, bits: u32, span: Span },
    Slot { slot: SlotId, ty: ETy, span: Span },
    Error,
}

/// What a parameter wants once type parameters are bound.
enum Want {
    Scalar(ETy),
    Bits(u32),
    Unbound(String),
    Struct(String),
}

/// The span covering a call's arguments (or the call when there are none).
fn args_span(args: &[ast::Expr], call: Span) -> Span {
    match (args.first(), args.last()) {
        (Some(a), Some(b)) => a.span.to(b.span),
        _ => call,
    }
}

/// "1 argument", "2 arguments".
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

impl Checker<'_> {
    /// Lowers the call expression `e`. `as_stmt` is true for a call
    /// statement (its result, if any, is ignored).
    pub(crate) fn call(&mut self, e: &ast::Expr, cx: &mut Cx, as_stmt: bool) -> CallOut {
        use ast::ExprKind as K;
        let K::Call { callee, type_args, args } = &e.kind else {
            self.error("E0306", e.span, "expected a call", "not a call");
            return CallOut::Error;
        };
        match &callee.kind {
            K::Name(id) if id.name == "verify" => self.verify_call(id, args, e.span, cx),
            K::Name(id) => match self.lookup_name(id) {
                Place::Action(a) => self.call_action(a, id, type_args, args, e.span, cx, as_stmt),
                Place::ExternFn(f) => self.call_extern_fn(f, id, type_args, args, e.span, cx),
                Place::Error => CallOut::Error,
                _ => {
                    self.error(
                        "E0608",
                        callee.span,
                        format!("`{}` is not a function or action", id.name),
                        "not callable",
                    );
                    CallOut::Error
                }
            },
            K::Member { base, member } => {
                let b = self.place(base, cx);
                match b {
                    Place::Packet(d) => self.packet_method(d, member, type_args, args, e.span, cx),
                    Place::Header { id, access } => self.header_method(id, access, base, member, args, e.span, cx),
                    Place::Stack { stack, access } => self.stack_method(stack, access, base, member, args, e.span, cx),
                    Place::StackLast { stack } => self.last_method(stack, member, args, e.span),
                    Place::StackNext { stack, .. } => {
                        self.next_misuse(stack, base.span);
                        CallOut::Error
                    }
                    Place::Table(t) => {
                        if member.name != "apply" {
                            self.report(
                                Diagnostic::error(
                                    "E0601",
                                    member.span,
                                    format!("a table has no method `{}`", member.name),
                                    "unknown method",
                                )
                                .with_help("tables have one method: `apply()`"),
                            );
                            return CallOut::Error;
                        }
                        if !as_stmt {
                            let t = expr_text(base);
                            self.report(
                                Diagnostic::error(
                                    "E0211",
                                    e.span,
                                    format!("`{t}.apply()` is not a value"),
                                    "not a value",
                                )
                                .with_help(format!(
                                    "use `{t}.apply().hit`, `{t}.apply().miss`, or `switch ({t}.apply().action_run)`"
                                )),
                            );
                            return CallOut::Error;
                        }
                        self.apply_table(t, args, e.span, cx, false, false);
                        CallOut::Void
                    }
                    Place::Instance(i) => self.instance_method(i, base, member, type_args, args, e.span, cx),
                    Place::Error => CallOut::Error,
                    _ => {
                        self.error(
                            "E0601",
                            member.span,
                            format!("`{}` has no method `{}`", expr_text(base), member.name),
                            "unknown method",
                        );
                        CallOut::Error
                    }
                }
            }
            _ => {
                self.error("E0608", callee.span, "this expression cannot be called", "not callable");
                CallOut::Error
            }
        }
    }

    /// Reports a call (or apply) where calls may not go; true when allowed.
    pub(crate) fn call_allowed(&mut self, cx: &Cx, span: Span, what: &str) -> bool {
        if let Some(place) = cx.pure {
            self.error("E0610", span, format!("{what} is not allowed in {place}"), "not allowed here");
            return false;
        }
        if let Some((op_span, sym)) = cx.conditional {
            let (msg, label) = if sym == "?:" {
                (format!("{what} in a branch of `?:`"), "runs only when this branch is taken")
            } else {
                (format!("{what} on the right of `{sym}`"), "runs only when the left side does not decide")
            };
            self.report(
                Diagnostic::error("E0305", span, msg, label)
                    .with_note(op_span, "this decides whether it runs")
                    .with_help("call it in a statement of its own before this one and use the result"),
            );
            return false;
        }
        true
    }

    /// `a(args)` for an action `a`: binds its parameters.
    #[allow(clippy::too_many_arguments)]
    fn call_action(
        &mut self,
        a: ir::ActionId,
        id: &Ident,
        type_args: &[ast::TypeRef],
        args: &[ast::Expr],
        span: Span,
        cx: &mut Cx,
        as_stmt: bool,
    ) -> CallOut {
        if !type_args.is_empty() {
            self.error("E0602", type_args[0].span, "actions take no type arguments", "unexpected type argument");
        }
        if !as_stmt {
            self.error("E0604", span, format!("action `{}` returns no value", id.name), "used as a value");
            return CallOut::Error;
        }
        if self.block.kind == super::BlockKind::Parser {
            self.error("E0302", span, "actions cannot be called in a parser", "not allowed in a parser");
            return CallOut::Error;
        }
        let info = self.action_info[a.index()].clone();
        if args.len() != info.params.len() {
            self.report(
                Diagnostic::error(
                    "E0401",
                    args_span(args, span),
                    format!(
                        "action `{}` takes {} but {} given",
                        info.short,
                        plural(info.params.len(), "argument"),
                        if args.len() == 1 { "1 was".to_string() } else { format!("{} were", args.len()) }
                    ),
                    "wrong number of arguments",
                )
                .with_note(info.name_span, "declared here"),
            );
        }
        let mut out = Vec::new();
        for ((pname, pty), arg) in info.params.iter().zip(args) {
            let t = self.rvalue(arg, cx);
            let t = self.coerce(t, ETy::of(*pty), &format!("parameter `{pname}` of `{}`", info.short));
            out.push(self.emit(&t));
        }
        cx.pre.push(Stmt { kind: StmtKind::CallAction { action: a, args: out }, span });
        CallOut::Void
    }

    /// `f(args)` for an extern function.
    fn call_extern_fn(
        &mut self,
        f: ir::ExternFnId,
        id: &Ident,
        type_args: &[ast::TypeRef],
        args: &[ast::Expr],
        span: Span,
        cx: &mut Cx,
    ) -> CallOut {
        let def = &self.extern_fns[f.index()];
        if def.sig.name == "mark_to_drop" && def.span.source == SourceId::PRELUDE {
            return self.mark_to_drop(args, span, cx);
        }
        if def.sig.name == "csum16_with_payload"
            && def.span.source == SourceId::PRELUDE
            && self.block.kind == super::BlockKind::Parser
        {
            self.report(
                Diagnostic::error(
                    "E0506",
                    id.span,
                    "`csum16_with_payload` is only allowed in controls",
                    "not in a control",
                )
                .with_help(
                    "the payload starts where the parser stops, so it is known only once the parser is done: \
                     compute or verify the checksum in the ingress control",
                ),
            );
            return CallOut::Error;
        }
        let sig = def.sig.clone();
        self.extern_call(ir::Callee::Function(f), &sig, HashMap::new(), &id.name, type_args, args, span, cx)
    }

    /// `mark_to_drop(std)` is `std.drop = 1`.
    fn mark_to_drop(&mut self, args: &[ast::Expr], span: Span, cx: &mut Cx) -> CallOut {
        if args.len() != 1 {
            self.error(
                "E0602",
                args_span(args, span),
                format!("`mark_to_drop` takes 1 argument but {} given", args.len()),
                "wrong number of arguments",
            );
            return CallOut::Error;
        }
        let drop = self.layout.std.and_then(|s| self.member_slot(s, "drop"));
        match self.place(&args[0], cx) {
            Place::Struct { inst, access } if Some(inst) == self.layout.std => {
                if !self.writable(&access, &args[0]) {
                    return CallOut::Error;
                }
                let Some(drop) = drop else {
                    return CallOut::Error;
                };
                let one = self.push_expr(ir::ExprKind::Const(1), ir::Ty::Bit(1), span);
                let dst = ir::LValue { slot: drop, slice: None };
                cx.pre.push(Stmt { kind: StmtKind::Assign { dst, src: one }, span });
                CallOut::Void
            }
            Place::Error => CallOut::Error,
            _ => {
                self.error(
                    "E0604",
                    args[0].span,
                    "`mark_to_drop` takes the standard metadata (`standard_metadata_t`)",
                    "not the standard metadata",
                );
                CallOut::Error
            }
        }
    }

    /// The slot of scalar member `name` of a laid-out struct.
    pub(crate) fn member_slot(&self, inst: InstId, name: &str) -> Option<SlotId> {
        self.insts[inst.0 as usize].members.iter().find_map(|(n, m)| match m {
            Member::Slot(s) if n == name => Some(*s),
            _ => None,
        })
    }

    /// `inst.method(args)` on an extern instance.
    #[allow(clippy::too_many_arguments)]
    fn instance_method(
        &mut self,
        i: ir::InstanceId,
        base: &ast::Expr,
        member: &Ident,
        type_args: &[ast::TypeRef],
        args: &[ast::Expr],
        span: Span,
        cx: &mut Cx,
    ) -> CallOut {
        let inst = &self.instances[i.index()];
        let et = &self.extern_types[inst.ty.index()];
        let found: Vec<usize> =
            et.methods.iter().enumerate().filter(|(_, m)| m.name == member.name).map(|(k, _)| k).collect();
        let Some(&first) = found.first() else {
            let names: Vec<&str> = et.methods.iter().map(|m| m.name.as_str()).collect();
            let mut d = Diagnostic::error(
                "E0601",
                member.span,
                format!("`{}` (extern `{}`) has no method `{}`", expr_text(base), et.name, member.name),
                "unknown method",
            );
            if let Some(s) = did_you_mean(&member.name, names.iter().copied()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            } else if !names.is_empty() {
                d = d.with_help(format!("its methods are: {}", names.join(", ")));
            }
            self.report(d);
            return CallOut::Error;
        };
        let method = found.iter().copied().find(|&k| et.methods[k].params.len() == args.len()).unwrap_or(first);
        let sig = et.methods[method].clone();
        let bound: HashMap<String, Bound> =
            et.type_params.iter().zip(&inst.type_args).map(|(p, t)| (p.clone(), Bound::Scalar(ETy::of(*t)))).collect();
        let callee = ir::Callee::Method { instance: i, method: method as u32 };
        let name = format!("{}.{}", expr_text(base), member.name);
        self.extern_call(callee, &sig, bound, &name, type_args, args, span, cx)
    }

    /// The common path of extern function and method calls: binds type
    /// parameters, checks and converts the arguments, emits the call.
    #[allow(clippy::too_many_arguments)]
    fn extern_call(
        &mut self,
        callee: ir::Callee,
        sig: &ir::MethodSig,
        mut bound: HashMap<String, Bound>,
        fname: &str,
        type_args: &[ast::TypeRef],
        args: &[ast::Expr],
        span: Span,
        cx: &mut Cx,
    ) -> CallOut {
        if args.len() != sig.params.len() {
            self.error(
                "E0602",
                args_span(args, span),
                format!(
                    "`{fname}` takes {} but {} given",
                    plural(sig.params.len(), "argument"),
                    if args.len() == 1 { "1 was".to_string() } else { format!("{} were", args.len()) }
                ),
                "wrong number of arguments",
            );
            return CallOut::Error;
        }
        if !type_args.is_empty() {
            if type_args.len() != sig.type_params.len() {
                self.error(
                    "E0602",
                    type_args[0].span,
                    format!(
                        "`{fname}` takes {} but {} given",
                        plural(sig.type_params.len(), "type argument"),
                        type_args.len()
                    ),
                    "wrong number of type arguments",
                );
                return CallOut::Error;
            }
            for (p, t) in sig.type_params.iter().zip(type_args) {
                let ty = self.resolve_type(t);
                let b = match ty {
                    Type::Header(h) => Bound::Bits(self.header_types[h.index()].bit_len),
                    Type::Error => return CallOut::Error,
                    other => match other.scalar() {
                        Some(s) => Bound::Scalar(s),
                        None => {
                            let n = self.type_name(other);
                            self.error("E0609", t.span, format!("{n} cannot be a type argument here"), "unsupported");
                            return CallOut::Error;
                        }
                    },
                };
                bound.insert(p.clone(), b);
            }
        }

        let vals: Vec<ArgVal> = sig
            .params
            .iter()
            .zip(args)
            .map(|(p, a)| if p.dir == Dir::In { self.in_arg(a, cx) } else { self.out_arg(a, p, fname, cx) })
            .collect();

        // Type parameters not given explicitly take the first sized argument's type.
        for (p, v) in sig.params.iter().zip(&vals) {
            if let SigTy::Param(n) = &p.ty {
                if bound.contains_key(n) {
                    continue;
                }
                let b = match v {
                    ArgVal::Scalar(t) if matches!(t.ty, ETy::Bit(_) | ETy::Bool) => Some(Bound::Scalar(t.ty)),
                    ArgVal::Slot { ty, .. } => Some(Bound::Scalar(*ty)),
                    ArgVal::List { bits, .. } => Some(Bound::Bits(*bits)),
                    _ => None,
                };
                if let Some(b) = b {
                    bound.insert(n.clone(), b);
                }
            }
        }

        let mut ok = true;
        let mut out = Vec::new();
        for ((p, v), a) in sig.params.iter().zip(vals).zip(args) {
            let what = format!("argument `{}` of `{fname}`", p.name);
            let want = match &p.ty {
                SigTy::Scalar(t) => Want::Scalar(ETy::of(*t)),
                SigTy::Param(n) => match bound.get(n) {
                    Some(Bound::Scalar(t)) => Want::Scalar(*t),
                    Some(Bound::Bits(b)) => Want::Bits(*b),
                    None => Want::Unbound(n.clone()),
                },
                SigTy::Struct(s) => Want::Struct(s.clone()),
            };
            let arg = match (want, v) {
                (_, ArgVal::Error) => None,
                (Want::Struct(s), _) => {
                    self.error(
                        "E0609",
                        a.span,
                        format!("{what} has struct type `{s}`, which extern calls cannot pass"),
                        "unsupported",
                    );
                    None
                }
                (Want::Scalar(t), ArgVal::Scalar(te)) => {
                    let te = self.coerce(te, t, &what);
                    Some(ExternArg::In(self.emit(&te)))
                }
                (Want::Scalar(t), ArgVal::Slot { slot, ty, span }) => {
                    if ty != t {
                        self.report(
                            Diagnostic::error(
                                if matches!((t, ty), (ETy::Bit(_), ETy::Bit(_))) { "E0201" } else { "E0202" },
                                span,
                                format!("{what} is {} but `{}` is {}", t.text(), expr_text(a), ty.text()),
                                format!("this is {}", ty.text()),
                            )
                            .with_help(format!("pass a {} variable and copy it afterwards", t.text())),
                        );
                        None
                    } else if p.dir == Dir::Out {
                        Some(ExternArg::Out(slot))
                    } else {
                        Some(ExternArg::InOut(slot))
                    }
                }
                (Want::Bits(b), ArgVal::List { items, bits, span }) => {
                    if bits != b {
                        self.error(
                            "E0201",
                            span,
                            format!(
                                "{what} is {}, but the other arguments of its type are {}",
                                crate::diag::bits(bits),
                                crate::diag::bits(b)
                            ),
                            format!("this is {}", crate::diag::bits(bits)),
                        );
                        None
                    } else {
                        Some(ExternArg::List(items.iter().map(|t| self.emit(t)).collect()))
                    }
                }
                (Want::Unbound(_), ArgVal::List { items, .. }) => {
                    Some(ExternArg::List(items.iter().map(|t| self.emit(t)).collect()))
                }
                (Want::Scalar(t), ArgVal::List { span, .. }) => {
                    self.error(
                        "E0604",
                        span,
                        format!("{what} is {}, but a header, struct or list was given", t.text()),
                        format!("expected {}", t.text()),
                    );
                    None
                }
                (Want::Bits(b), ArgVal::Scalar(te)) => {
                    self.error(
                        "E0604",
                        te.span,
                        format!("{what} must be a header or list of {b} bits like the other arguments of its type"),
                        "a single value",
                    );
                    None
                }
                (Want::Bits(_), ArgVal::Slot { span, .. }) => {
                    self.error(
                        "E0609",
                        span,
                        format!("{what}: only `in` parameters can take a header or list"),
                        "unsupported",
                    );
                    None
                }
                (Want::Unbound(n), ArgVal::Scalar(te)) => {
                    if te.ty != ETy::Error {
                        self.report(
                            Diagnostic::error(
                                "E0212",
                                te.span,
                                format!("cannot infer the type `{n}` of {what} from an integer of unknown width"),
                                "no width",
                            )
                            .with_help(format!(
                                "write the literal with a width, e.g. `16w{}`",
                                te.const_value().map_or("0".to_string(), super::expr::value_text)
                            )),
                        );
                    }
                    None
                }
                (Want::Unbound(_), ArgVal::Slot { .. }) => None,
            };
            match arg {
                Some(ExternArg::List(items)) => {
                    let bits: u32 = items.iter().map(|x| u32::from(self.exprs[x.index()].ty.width())).sum();
                    if !bits.is_multiple_of(8) {
                        let padded = bits.div_ceil(8) * 8;
                        self.report(
                            Diagnostic::error(
                                "E0606",
                                a.span,
                                format!("`{fname}` takes whole bytes, but this is {}", crate::diag::bits(bits)),
                                crate::diag::bits(bits),
                            )
                            .with_help(format!("pad it to {padded} bits, e.g. add `{}w0` to the list", padded - bits)),
                        );
                        ok = false;
                    }
                    out.push(ExternArg::List(items));
                }
                Some(x) => out.push(x),
                None => ok = false,
            }
        }

        let ret = match &sig.ret {
            None => None,
            Some(SigTy::Scalar(t)) => Some(*t),
            Some(SigTy::Param(n)) => match bound.get(n) {
                Some(Bound::Scalar(t)) => t.ir(),
                Some(Bound::Bits(_)) => {
                    self.error("E0609", span, format!("`{fname}` would return a header or list"), "unsupported");
                    return CallOut::Error;
                }
                None => {
                    self.report(
                        Diagnostic::error(
                            "E0212",
                            span,
                            format!("cannot infer the result type `{n}` of `{fname}`"),
                            "result type unknown",
                        )
                        .with_help(format!("give it: `{fname}<bit<8>>(...)`")),
                    );
                    return CallOut::Error;
                }
            },
            Some(SigTy::Struct(s)) => {
                self.error(
                    "E0609",
                    span,
                    format!("`{fname}` returns struct `{s}`, which is not supported"),
                    "unsupported",
                );
                return CallOut::Error;
            }
        };
        if !self.call_allowed(cx, span, &format!("calling `{fname}`")) || !ok {
            return CallOut::Error;
        }
        let site = self.next_site();
        let ret_slot = ret.map(|t| self.temp(t));
        let call = ir::ExternCall { site, callee, args: out };
        cx.pre.push(Stmt { kind: StmtKind::Extern { call, ret: ret_slot }, span });
        match (ret_slot, ret) {
            (Some(s), Some(t)) => CallOut::Value(TExpr { kind: TKind::Slot(s), ty: ETy::of(t), span }),
            _ => CallOut::Void,
        }
    }

    /// Evaluates an `in` argument: a list, header or struct becomes the list
    /// of its scalars; anything else a scalar.
    fn in_arg(&mut self, a: &ast::Expr, cx: &mut Cx) -> ArgVal {
        use ast::ExprKind as K;
        match &a.kind {
            K::List(_) => self.list_arg(a, cx),
            K::Name(_) | K::Member { .. } | K::Index { .. } => {
                let p = self.place(a, cx);
                match p {
                    Place::Header { .. } | Place::Struct { .. } => {
                        let mut items = Vec::new();
                        self.flatten_place(&p, a.span, &mut items);
                        let bits = items.iter().filter_map(|t| t.ty.width()).map(u32::from).sum();
                        ArgVal::List { items, bits, span: a.span }
                    }
                    Place::Error => ArgVal::Error,
                    p => ArgVal::Scalar(self.place_value(p, a)),
                }
            }
            _ => ArgVal::Scalar(self.rvalue(a, cx)),
        }
    }

    /// A `{a, b}` argument, flattened.
    fn list_arg(&mut self, a: &ast::Expr, cx: &mut Cx) -> ArgVal {
        let mut items = Vec::new();
        if !self.flatten_expr(a, cx, &mut items) {
            return ArgVal::Error;
        }
        let bits = items.iter().filter_map(|t| t.ty.width()).map(u32::from).sum();
        ArgVal::List { items, bits, span: a.span }
    }

    /// Appends the scalars of a list element; false after an error.
    fn flatten_expr(&mut self, e: &ast::Expr, cx: &mut Cx, out: &mut Vec<TExpr>) -> bool {
        use ast::ExprKind as K;
        match &e.kind {
            K::List(items) => {
                let mut ok = true;
                for it in items {
                    ok &= self.flatten_expr(it, cx, out);
                }
                ok
            }
            K::Name(_) | K::Member { .. } | K::Index { .. } => {
                let p = self.place(e, cx);
                match p {
                    Place::Header { .. } | Place::Struct { .. } => {
                        self.flatten_place(&p, e.span, out);
                        true
                    }
                    Place::Error => false,
                    p => {
                        let t = self.place_value(p, e);
                        self.list_scalar(t, out)
                    }
                }
            }
            _ => {
                let t = self.rvalue(e, cx);
                self.list_scalar(t, out)
            }
        }
    }

    /// Appends one scalar list element, which must have a width.
    fn list_scalar(&mut self, t: TExpr, out: &mut Vec<TExpr>) -> bool {
        match t.ty {
            ETy::Error => false,
            ETy::Int => {
                self.report(
                    Diagnostic::error("E0212", t.span, "list elements need a known width", "no width").with_help(
                        format!(
                            "write the literal with a width, e.g. `8w{}`",
                            t.const_value().map_or("0".to_string(), super::expr::value_text)
                        ),
                    ),
                );
                false
            }
            _ => {
                out.push(t);
                true
            }
        }
    }

    /// Reads of every scalar of a header (its fields in wire order) or a
    /// struct (its members in order, headers by their fields).
    pub(crate) fn flatten_place(&mut self, p: &Place, span: Span, out: &mut Vec<TExpr>) {
        match p {
            Place::Header { id, .. } => {
                for &s in &self.headers[id.index()].fields {
                    out.push(TExpr { kind: TKind::Slot(s), ty: ETy::of(self.slots[s.index()].ty), span });
                }
            }
            Place::Struct { inst, access } => {
                let members = self.insts[inst.0 as usize].members.clone();
                for (_, m) in members {
                    let p = match m {
                        Member::Slot(s) => {
                            out.push(TExpr { kind: TKind::Slot(s), ty: ETy::of(self.slots[s.index()].ty), span });
                            continue;
                        }
                        Member::Header(id) => Place::Header { id, access: access.clone() },
                        Member::Struct(inst) => Place::Struct { inst, access: access.clone() },
                        Member::Stack(s) => {
                            for id in self.stacks[s as usize].elems.clone() {
                                self.flatten_place(&Place::Header { id, access: access.clone() }, span, out);
                            }
                            continue;
                        }
                        Member::Error => continue,
                    };
                    self.flatten_place(&p, span, out);
                }
            }
            _ => {}
        }
    }

    /// Evaluates an `out`/`inout` argument: a writable scalar variable or field.
    fn out_arg(&mut self, a: &ast::Expr, p: &ir::ParamSig, fname: &str, cx: &mut Cx) -> ArgVal {
        use ast::ExprKind as K;
        let dir = if p.dir == Dir::Out { "out" } else { "inout" };
        if matches!(a.kind, K::Name(_) | K::Member { .. } | K::Index { .. }) {
            match self.place(a, cx) {
                Place::Slot { slot, access } => {
                    if !self.writable(&access, a) {
                        return ArgVal::Error;
                    }
                    let ty = ETy::of(self.slots[slot.index()].ty);
                    return ArgVal::Slot { slot, ty, span: a.span };
                }
                Place::Error => return ArgVal::Error,
                Place::Header { .. } | Place::Struct { .. } => {
                    self.error(
                        "E0604",
                        a.span,
                        format!(
                            "argument `{}` of `{fname}` is `{dir}` and takes a single value, not a header or struct",
                            p.name
                        ),
                        "a header or struct",
                    );
                    return ArgVal::Error;
                }
                _ => {}
            }
        }
        self.report(
            Diagnostic::error(
                "E0603",
                a.span,
                format!("argument `{}` of `{fname}` is `{dir}`, so it must be a variable or field", p.name),
                "not a variable or field",
            )
            .with_help("pass a local variable and use its value after the call"),
        );
        ArgVal::Error
    }

    /// `verify(cond, error.E)`, core.p4's parser-only function: a
    /// [`StmtKind::Verify`] (the packet is rejected with `E` when `cond` is
    /// false). The error must be a constant `error.NAME` of a declared name:
    /// p4lite has no variables of type `error`.
    fn verify_call(&mut self, callee: &Ident, args: &[ast::Expr], span: Span, cx: &mut Cx) -> CallOut {
        if !self.parser_only("`verify`", callee.span) {
            return CallOut::Error;
        }
        let [cond, err] = args else {
            self.report(
                Diagnostic::error(
                    "E0602",
                    span,
                    format!("`verify` takes 2 arguments, but {} were given", args.len()),
                    "wrong number of arguments",
                )
                .with_help("write `verify(CONDITION, error.NAME);`"),
            );
            return CallOut::Error;
        };
        let c = self.rvalue(cond, cx);
        let c = self.expect_bool(c, "`verify`'s condition");
        let error = match &err.kind {
            ast::ExprKind::Member { base, member } if matches!(&base.kind, ast::ExprKind::Name(b) if b.name == "error") => {
                match self.errors.iter().position(|(n, _)| *n == member.name) {
                    Some(i) => Some(i as u32),
                    None => {
                        let names: Vec<String> = self.errors.iter().map(|(n, _)| n.clone()).collect();
                        self.unknown_member(member, format!("there is no `error.{}`", member.name), &names, None);
                        None
                    }
                }
            }
            _ => {
                self.report(
                    Diagnostic::error(
                        "E0604",
                        err.span,
                        format!(
                            "`verify`'s second argument must be an error, such as `error.NoMatch`, not `{}`",
                            expr_text(err)
                        ),
                        "not `error.NAME`",
                    )
                    .with_help("declare your own with `error { MyError }` at top level"),
                );
                None
            }
        };
        let (Some(error), false) = (error, c.ty == ETy::Error) else {
            return CallOut::Error;
        };
        let cond = self.emit(&c);
        cx.pre.push(Stmt { kind: StmtKind::Verify { cond, error }, span });
        CallOut::Void
    }

    /// Reports a parser-only operation elsewhere; true in the parser.
    fn parser_only(&mut self, what: &str, span: Span) -> bool {
        if self.block.kind == super::BlockKind::Parser {
            return true;
        }
        self.error("E0506", span, format!("{what} is only allowed in the parser"), "not in a parser");
        false
    }

    /// `pkt.extract(h)`, `pkt.lookahead<T>()`, `pkt.advance(n)`, `pkt.emit(h)`.
    pub(crate) fn packet_method(
        &mut self,
        dir: PacketDir,
        member: &Ident,
        type_args: &[ast::TypeRef],
        args: &[ast::Expr],
        span: Span,
        cx: &mut Cx,
    ) -> CallOut {
        let m = member.name.as_str();
        let arity = |c: &mut Self, n: usize| {
            if args.len() != n {
                c.error(
                    "E0602",
                    args_span(args, span),
                    format!("`{m}` takes {} but {} given", plural(n, "argument"), args.len()),
                    "wrong number of arguments",
                );
                false
            } else {
                true
            }
        };
        match (dir, m) {
            (PacketDir::In, "extract") => {
                if !self.parser_only("`extract`", span) || !arity(self, 1) {
                    return CallOut::Error;
                }
                match self.place(&args[0], cx) {
                    Place::Header { id, access } => {
                        if !self.writable(&access, &args[0]) {
                            return CallOut::Error;
                        }
                        cx.pre.push(Stmt { kind: StmtKind::Extract { header: id }, span });
                        CallOut::Void
                    }
                    Place::StackNext { stack, access } => {
                        if !self.writable(&access, &args[0]) {
                            return CallOut::Error;
                        }
                        let def = &self.stacks[stack as usize];
                        let (elems, next) = (def.elems.clone(), def.next);
                        cx.pre.push(Stmt { kind: StmtKind::ExtractNext { elems, next }, span });
                        CallOut::Void
                    }
                    Place::Stack { stack, .. } => {
                        let name = self.stacks[stack as usize].name.clone();
                        self.report(
                            Diagnostic::error(
                                "E0505",
                                args[0].span,
                                format!("`extract` needs a header, but `{name}` is a header stack"),
                                "a header stack",
                            )
                            .with_help(format!(
                                "extract its next element: `pkt.extract({name}.next)`, or one element: `pkt.extract({name}[0])`"
                            )),
                        );
                        CallOut::Error
                    }
                    Place::Error => CallOut::Error,
                    p => {
                        let kind = match p {
                            Place::Struct { .. } => "a struct",
                            Place::Slot { .. } | Place::Value(_) | Place::Const(_) => "a single value",
                            _ => "not a header",
                        };
                        self.report(
                            Diagnostic::error(
                                "E0505",
                                args[0].span,
                                format!("`extract` needs a header, but `{}` is {kind}", expr_text(&args[0])),
                                "not a header",
                            )
                            .with_help("extract one header of the headers struct, e.g. `pkt.extract(hdr.ethernet)`"),
                        );
                        CallOut::Error
                    }
                }
            }
            (PacketDir::In, "lookahead") => {
                if !self.parser_only("`lookahead`", span) || !arity(self, 0) {
                    return CallOut::Error;
                }
                let [t] = type_args else {
                    self.report(
                        Diagnostic::error(
                            "E0602",
                            span,
                            "`lookahead` needs one type argument",
                            "type argument missing",
                        )
                        .with_help("say how many bits to look at: `pkt.lookahead<bit<8>>()`"),
                    );
                    return CallOut::Error;
                };
                let ty = self.resolve_type(t);
                match ty.scalar() {
                    Some(ETy::Error) => CallOut::Error,
                    Some(s) => CallOut::Value(TExpr { kind: TKind::Lookahead, ty: s, span }),
                    None => {
                        let n = self.type_name(ty);
                        let help = match ty {
                            Type::Header(h) => format!(
                                "look ahead at one of its fields, `pkt.lookahead<{}>().FIELD`, or at bits: `pkt.lookahead<bit<8>>()`",
                                self.header_types[h.index()].name
                            ),
                            _ => "look ahead at bits instead: `pkt.lookahead<bit<8>>()`".to_string(),
                        };
                        self.report(
                            Diagnostic::error(
                                "E0609",
                                t.span,
                                format!("`lookahead` of {n} is not supported"),
                                "unsupported",
                            )
                            .with_help(help),
                        );
                        CallOut::Error
                    }
                }
            }
            (PacketDir::In, "advance") => {
                if !self.parser_only("`advance`", span) || !arity(self, 1) {
                    return CallOut::Error;
                }
                let t = self.rvalue(&args[0], cx);
                let t = self.coerce(t, ETy::Bit(32), "argument `bits` of `advance`");
                if let Some(v) = t.const_value() {
                    if v % 8 != 0 {
                        self.error(
                            "E0509",
                            args[0].span,
                            format!("`advance` skips whole bytes, but {v} is not a multiple of 8"),
                            "not a multiple of 8",
                        );
                        return CallOut::Error;
                    }
                }
                let bits = self.emit(&t);
                cx.pre.push(Stmt { kind: StmtKind::Advance { bits }, span });
                CallOut::Void
            }
            (PacketDir::Out, "emit") => {
                self.error("E0704", span, "`emit` is only allowed as a statement of the deparser", "not allowed here");
                CallOut::Error
            }
            (PacketDir::Out, "extract" | "lookahead" | "advance") => {
                self.report(
                    Diagnostic::error(
                        "E0506",
                        member.span,
                        format!("`{m}` is only allowed in the parser"),
                        "not in a parser",
                    )
                    .with_help("the deparser's `packet_out` can only `emit`"),
                );
                CallOut::Error
            }
            (PacketDir::In, "emit") => {
                self.report(
                    Diagnostic::error(
                        "E0704",
                        member.span,
                        "`emit` is only allowed in the deparser",
                        "not in the deparser",
                    )
                    .with_help("the parser's `packet_in` can `extract`, `lookahead` and `advance`"),
                );
                CallOut::Error
            }
            _ => {
                let (ty, names): (&str, &[&str]) = match dir {
                    PacketDir::In => ("packet_in", &["extract", "lookahead", "advance"]),
                    PacketDir::Out => ("packet_out", &["emit"]),
                };
                let mut d =
                    Diagnostic::error("E0601", member.span, format!("`{ty}` has no method `{m}`"), "unknown method");
                if let Some(s) = did_you_mean(m, names.iter().copied()) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.report(d);
                CallOut::Error
            }
        }
    }

    /// `h.isValid()`, `h.setValid()`, `h.setInvalid()`.
    #[allow(clippy::too_many_arguments)]
    fn header_method(
        &mut self,
        id: ir::HeaderId,
        access: Access,
        base: &ast::Expr,
        member: &Ident,
        args: &[ast::Expr],
        span: Span,
        cx: &mut Cx,
    ) -> CallOut {
        let m = member.name.as_str();
        if matches!(m, "isValid" | "setValid" | "setInvalid") && !args.is_empty() {
            self.error(
                "E0602",
                args_span(args, span),
                format!("`{m}` takes no arguments but {} given", args.len()),
                "unexpected arguments",
            );
            return CallOut::Error;
        }
        match m {
            "isValid" => {
                let valid = self.headers[id.index()].valid;
                CallOut::Value(TExpr { kind: TKind::Slot(valid), ty: ETy::Bool, span })
            }
            "setValid" | "setInvalid" => {
                if !self.writable(&access, base) {
                    return CallOut::Error;
                }
                cx.pre.push(Stmt { kind: StmtKind::SetValid { header: id, valid: m == "setValid" }, span });
                CallOut::Void
            }
            _ => {
                let mut d =
                    Diagnostic::error("E0601", member.span, format!("a header has no method `{m}`"), "unknown method");
                if let Some(s) = did_you_mean(m, ["isValid", "setValid", "setInvalid"]) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else {
                    d = d.with_help("headers have `isValid()`, `setValid()` and `setInvalid()`");
                }
                self.report(d);
                CallOut::Error
            }
        }
    }

    /// Emits `Apply` for table `t`, with a `hit` and/or `action_run` temp
    /// when the program reads them. `None` after an error.
    pub(crate) fn apply_table(
        &mut self,
        t: ir::TableId,
        args: &[ast::Expr],
        span: Span,
        cx: &mut Cx,
        want_hit: bool,
        want_run: bool,
    ) -> Option<(Option<SlotId>, Option<SlotId>)> {
        if !args.is_empty() {
            self.error("E0602", args_span(args, span), "`apply` takes no arguments", "unexpected arguments");
        }
        if self.block.kind != super::BlockKind::Control || self.block.in_action {
            let place = if self.block.in_action { "an action" } else { "a parser" };
            self.report(
                Diagnostic::error("E0411", span, format!("tables cannot be applied in {place}"), "applied here")
                    .with_help("apply tables in the `apply` block of a control"),
            );
            return None;
        }
        if !self.call_allowed(cx, span, "applying a table") {
            return None;
        }
        let table = self.tables.get(t.index()).map_or_else(|| "?".to_string(), |x| x.name.clone());
        let hit = want_hit.then(|| self.temp_named(format!("{table}.apply().hit"), ir::Ty::Bool));
        let run = want_run.then(|| self.temp_named(format!("{table}.apply().action_run"), ir::Ty::Bit(32)));
        cx.pre.push(Stmt { kind: StmtKind::Apply { table: t, hit, action_run: run }, span });
        Some((hit, run))
    }

    /// `t.apply().hit`, `t.apply().miss` (and the misuse `t.apply().action_run`).
    pub(crate) fn apply_member(
        &mut self,
        table: &ast::Expr,
        args: &[ast::Expr],
        member: &Ident,
        call_span: Span,
        cx: &mut Cx,
    ) -> Place {
        let t = match self.place(table, cx) {
            Place::Table(t) => t,
            Place::Error => return Place::Error,
            _ => {
                self.error(
                    "E0601",
                    table.span,
                    format!("`{}` is not a table; only tables have `apply()`", expr_text(table)),
                    "not a table",
                );
                return Place::Error;
            }
        };
        let span = call_span.to(member.span);
        match member.name.as_str() {
            m @ ("hit" | "miss") => {
                let Some((Some(hit), _)) = self.apply_table(t, args, call_span, cx, true, false) else {
                    return Place::Error;
                };
                let read = TExpr { kind: TKind::Slot(hit), ty: ETy::Bool, span };
                Place::Value(if m == "miss" { mk_unary(UnOp::Not, read, span) } else { read })
            }
            "action_run" => {
                let t = expr_text(table);
                self.report(
                    Diagnostic::error(
                        "E0411",
                        member.span,
                        "`action_run` can only be used in a `switch`",
                        "outside a switch",
                    )
                    .with_help(format!("write `switch ({t}.apply().action_run) {{ ... }}`")),
                );
                Place::Error
            }
            m => {
                let mut d = Diagnostic::error(
                    "E0102",
                    member.span,
                    format!("the result of `apply()` has no member `{m}`"),
                    "unknown member",
                );
                if let Some(s) = did_you_mean(m, ["hit", "miss", "action_run"]) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else {
                    d = d.with_help("`apply()` results have `hit`, `miss` and `action_run`");
                }
                self.report(d);
                Place::Error
            }
        }
    }
}
