//! Top-level declarations: types (headers, structs, typedefs), constants,
//! extern types and functions, extern instances, top-level actions, and
//! the names of parsers, controls and the package. Declarations are
//! entered in source order, prelude first: a name is usable after its
//! declaration, which also rules out recursive types.

use crate::abi::{MAX_CELLS, MAX_PMTU_ENTRIES};
use crate::ast::{self, TypeRefKind};
use crate::diag::Diagnostic;
use crate::ir::{self, Dir, SigTy};
use crate::span::{Ident, SourceId, Span};

use super::expr::{value_text, TKind};
use super::{Checker, ConstVal, Cx, ETy, GlobalKind, StructDef, StructId, Type};

/// The name a top-level declaration declares.
pub(super) fn decl_name(d: &ast::Decl) -> Option<&Ident> {
    Some(match d {
        ast::Decl::Error(_) => return None,
        ast::Decl::Enum(e) => &e.name,
        ast::Decl::Const(c) => &c.name,
        ast::Decl::Typedef(t) => &t.name,
        ast::Decl::Header(h) | ast::Decl::Struct(h) => &h.name,
        ast::Decl::Extern(e) => &e.name,
        ast::Decl::ExternFn(f) => &f.name,
        ast::Decl::Action(a) => &a.name,
        ast::Decl::Parser(p) => &p.name,
        ast::Decl::Control(c) => &c.name,
        ast::Decl::Instance(i) => &i.name,
    })
}

/// The span of a top-level declaration.
pub(super) fn decl_span(d: &ast::Decl) -> Span {
    match d {
        ast::Decl::Const(c) => c.span,
        ast::Decl::Typedef(t) => t.span,
        ast::Decl::Error(e) => e.span,
        ast::Decl::Enum(e) => e.span,
        ast::Decl::Header(h) | ast::Decl::Struct(h) => h.span,
        ast::Decl::Extern(e) => e.span,
        ast::Decl::ExternFn(f) => f.span,
        ast::Decl::Action(a) => a.span,
        ast::Decl::Parser(p) => p.span,
        ast::Decl::Control(c) => c.span,
        ast::Decl::Instance(i) => i.span,
    }
}

/// The directions of extern parameters (no direction means `in`).
fn dir(d: Option<ast::Direction>) -> Dir {
    match d {
        None | Some(ast::Direction::In) => Dir::In,
        Some(ast::Direction::Out) => Dir::Out,
        Some(ast::Direction::InOut) => Dir::InOut,
    }
}

impl<'a> Checker<'a> {
    /// Enters one top-level declaration.
    pub(super) fn declare(&mut self, d: &'a ast::Decl) {
        match d {
            ast::Decl::Const(c) => {
                let v = self.const_decl(c);
                self.declare_global(&c.name, GlobalKind::Const(v));
            }
            ast::Decl::Typedef(t) => {
                let ty = self.resolve_type(&t.ty);
                self.declare_global(&t.name, GlobalKind::Type(ty));
            }
            ast::Decl::Error(e) => self.error_decl(e),
            ast::Decl::Enum(e) => self.enum_decl(e),
            ast::Decl::Header(h) => self.header_decl(h),
            ast::Decl::Struct(s) => self.struct_decl(s),
            ast::Decl::Extern(e) => self.extern_decl(e),
            ast::Decl::ExternFn(f) => {
                let sig = self.sig(f, &[]);
                self.extern_fns.push(ir::ExternFn { sig, span: f.span });
                let id = ir::ExternFnId(self.extern_fns.len() as u32 - 1);
                self.declare_global(&f.name, GlobalKind::ExternFn(id));
            }
            ast::Decl::Action(a) => {
                let id = self.lower_action(a);
                self.declare_global(&a.name, GlobalKind::Action(id));
            }
            ast::Decl::Parser(p) => {
                self.parsers.push(p);
                self.declare_global(&p.name, GlobalKind::Parser(self.parsers.len() - 1));
            }
            ast::Decl::Control(c) => {
                self.controls.push(c);
                self.declare_global(&c.name, GlobalKind::Control(self.controls.len() - 1));
            }
            ast::Decl::Instance(i) => {
                if matches!(&i.ty.kind, TypeRefKind::Named { name, .. } if name.name == "Pipeline") {
                    self.packages.push(i);
                    self.declare_global(&i.name, GlobalKind::Package);
                } else if let Some(id) = self.instance_decl(i, i.name.name.clone()) {
                    self.declare_global(&i.name, GlobalKind::Instance(id));
                }
            }
        }
    }

    /// `error { A, B }`: adds names to the `error` type (a name declared
    /// twice is E0103, as in P4_16, where the declarations merge).
    fn error_decl(&mut self, e: &ast::ErrorDecl) {
        for n in &e.names {
            if let Some(&(_, first)) = self.errors.iter().find(|(name, _)| *name == n.name) {
                self.duplicate(n, first);
                continue;
            }
            self.errors.push((n.name.clone(), n.span));
        }
    }

    /// `enum bit<W> E { A = 1, ... }`, P4_16's serializable enum (every
    /// member has a value that fits `W`), or `enum E { A, B }` (members
    /// numbered from 0 as `bit<32>`). p4lite treats `E` as its underlying
    /// type, like a `typedef`, and `E.A` as a constant of it.
    fn enum_decl(&mut self, e: &ast::EnumDecl) {
        let width = match &e.ty {
            Some(t) => match self.resolve_type(t) {
                Type::Bit(w) => w,
                Type::Error => return,
                _ => {
                    self.error("E0210", t.span, "an enum's underlying type must be `bit<W>`", "not bit<W>");
                    return;
                }
            },
            None => 32,
        };
        let ty = ETy::Bit(width);
        let mut members: Vec<(String, u128)> = Vec::new();
        let mut spans: Vec<Span> = Vec::new();
        for (i, (name, value)) in e.members.iter().enumerate() {
            if let Some(k) = members.iter().position(|(n, _)| *n == name.name) {
                self.duplicate(name, spans[k]);
                continue;
            }
            let v = match (value, e.ty.is_some()) {
                (Some(v), true) => match self.const_scalar(v, Some(ty), "an enum member's value") {
                    Some(c) => c.value,
                    None => continue,
                },
                (None, true) => {
                    self.report(
                        Diagnostic::error(
                            "E0206",
                            name.span,
                            format!(
                                "`{}.{}` needs a value: `{}` has an underlying type",
                                e.name.name, name.name, e.name.name
                            ),
                            "no value",
                        )
                        .with_help(format!("give every member a value, e.g. `{} = {i}`", name.name)),
                    );
                    continue;
                }
                (Some(v), false) => {
                    self.report(
                        Diagnostic::error(
                            "E0210",
                            v.span,
                            format!(
                                "`{}.{}` has a value, but `{}` has no underlying type",
                                e.name.name, name.name, e.name.name
                            ),
                            "value of an enum without a type",
                        )
                        .with_help(format!(
                            "give the enum a type for its values: `enum bit<8> {} {{ ... }}`",
                            e.name.name
                        )),
                    );
                    continue;
                }
                (None, false) => i as u128,
            };
            members.push((name.name.clone(), v));
            spans.push(name.span);
        }
        self.enums.insert(e.name.name.clone(), super::EnumDef { ty, members });
        self.declare_global(&e.name, GlobalKind::Type(Type::Bit(width)));
    }

    /// Resolves a written type; reports unknown names and invalid widths.
    pub(crate) fn resolve_type(&mut self, t: &ast::TypeRef) -> Type {
        match &t.kind {
            TypeRefKind::Bit(w) => {
                if *w == 0 || *w > 128 {
                    self.report(
                        Diagnostic::error("E0204", t.span, format!("bit<{w}> is not a valid width"), "invalid width")
                            .with_help("widths are 1 to 128 bits"),
                    );
                    Type::Error
                } else {
                    Type::Bit(*w as u16)
                }
            }
            TypeRefKind::BitOf(e) => {
                // A width is a compile-time constant; its own type does not matter.
                let Some(v) = self.const_scalar(e, None, "the width of `bit<(...)>`") else {
                    return Type::Error;
                };
                if v.value == 0 || v.value > 128 {
                    self.report(
                        Diagnostic::error(
                            "E0204",
                            e.span,
                            format!("bit<{}> is not a valid width", v.value),
                            "invalid width",
                        )
                        .with_help("widths are 1 to 128 bits"),
                    );
                    Type::Error
                } else {
                    Type::Bit(v.value as u16)
                }
            }
            TypeRefKind::Bool => Type::Bool,
            TypeRefKind::Void => {
                self.error("E0210", t.span, "`void` is only allowed as the result of an extern", "not allowed here");
                Type::Error
            }
            TypeRefKind::Named { name, args } => match self.globals.get(&name.name).map(|g| g.kind) {
                Some(GlobalKind::Type(ty)) => {
                    if !args.is_empty() && !matches!(ty, Type::Extern(_)) {
                        self.error(
                            "E0602",
                            args[0].span,
                            format!("type `{}` takes no type arguments", name.name),
                            "unexpected type argument",
                        );
                    }
                    ty
                }
                Some(_) => {
                    self.error("E0104", name.span, format!("`{}` is not a type", name.name), "not a type");
                    Type::Error
                }
                None => {
                    let mut names: Vec<String> = self
                        .globals
                        .iter()
                        .filter(|(_, g)| matches!(g.kind, GlobalKind::Type(_)))
                        .map(|(n, _)| n.clone())
                        .collect();
                    names.extend(["bit".to_string(), "bool".to_string()]);
                    self.unknown_name("E0104", name, format!("cannot find type `{}`", name.name), &names);
                    Type::Error
                }
            },
        }
    }

    /// The type a written type names, without reporting anything (for
    /// looking at block parameters before they are checked).
    pub(crate) fn peek_type(&self, t: &ast::TypeRef) -> Option<Type> {
        match &t.kind {
            TypeRefKind::Named { name, .. } => match self.globals.get(&name.name)?.kind {
                GlobalKind::Type(ty) => Some(ty),
                _ => None,
            },
            _ => None,
        }
    }

    /// Reports a field name used twice in one declaration; true when new.
    fn new_field(&mut self, seen: &mut Vec<(String, Span)>, name: &Ident) -> bool {
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name.name) {
            let first = *first;
            self.duplicate(name, first);
            return false;
        }
        seen.push((name.name.clone(), name.span));
        true
    }

    /// `header NAME { bit<W> f; ... }`
    fn header_decl(&mut self, h: &ast::StructLike) {
        let mut fields = Vec::new();
        let mut seen = Vec::new();
        let mut broken = false;
        let mut dropped = Vec::new();
        for f in &h.fields {
            let ty = self.resolve_type(&f.ty);
            if !self.new_field(&mut seen, &f.name) {
                continue;
            }
            if let Some(n) = &f.stack {
                self.report(
                    Diagnostic::error(
                        "E0213",
                        n.span,
                        format!("header field `{}` cannot be a header stack", f.name.name),
                        "a stack size",
                    )
                    .with_help("declare header stacks in the headers struct, e.g. `mpls_t[4] mpls;`"),
                );
                broken = true;
                dropped.push(f.name.name.clone());
                continue;
            }
            match ty {
                Type::Bit(w) => fields.push((f.name.name.clone(), w)),
                Type::Error => {
                    broken = true;
                    dropped.push(f.name.name.clone());
                }
                other => {
                    let n = self.type_name(other);
                    self.report(
                        Diagnostic::error(
                            "E0210",
                            f.ty.span,
                            format!("header fields must be bit<W>, but `{}` is {n}", f.name.name),
                            "not a bit<W>",
                        )
                        .with_help("nest headers in the headers struct instead"),
                    );
                    broken = true;
                    dropped.push(f.name.name.clone());
                }
            }
        }
        let bit_len: u32 = fields.iter().map(|(_, w)| u32::from(*w)).sum();
        if !broken && !bit_len.is_multiple_of(8) {
            let pad = 8 - bit_len % 8;
            let bits = crate::diag::bits;
            self.report(
                Diagnostic::error(
                    "E0205",
                    h.name.span,
                    format!("header `{}` is {} long, not a whole number of bytes", h.name.name, bits(bit_len)),
                    bits(bit_len),
                )
                .with_help(format!("add {} of padding (e.g. `bit<{pad}> pad;`) or fix a field's width", bits(pad))),
            );
        }
        self.header_types.push(ir::HeaderType { name: h.name.name.clone(), fields, bit_len, span: h.span });
        let id = ir::HeaderTypeId(self.header_types.len() as u32 - 1);
        if !dropped.is_empty() {
            self.broken_fields.insert(id, dropped);
        }
        self.declare_global(&h.name, GlobalKind::Type(Type::Header(id)));
    }

    /// `struct NAME { TYPE f; ... }`
    fn struct_decl(&mut self, s: &ast::StructLike) {
        let mut fields = Vec::new();
        let mut seen = Vec::new();
        for f in &s.fields {
            let ty = self.resolve_type(&f.ty);
            if !self.new_field(&mut seen, &f.name) {
                continue;
            }
            if let Type::Extern(_) = ty {
                let n = self.type_name(ty);
                self.error("E0210", f.ty.span, format!("struct fields cannot be {n}"), "not allowed in a struct");
                fields.push((f.name.clone(), Type::Error));
                continue;
            }
            let ty = match &f.stack {
                Some(n) => self.stack_type(ty, f, n),
                None => ty,
            };
            fields.push((f.name.clone(), ty));
        }
        self.structs.push(StructDef { name: s.name.name.clone(), fields });
        let id = StructId(self.structs.len() as u32 - 1);
        self.declare_global(&s.name, GlobalKind::Type(Type::Struct(id)));
    }

    /// The value of `const TYPE NAME = EXPR;` (zero after an error, so uses
    /// of the name do not cascade).
    pub(crate) fn const_decl(&mut self, c: &ast::ConstDecl) -> ConstVal {
        let ty = self.resolve_type(&c.ty);
        let Some(want) = ty.scalar() else {
            let n = self.type_name(ty);
            self.error("E0210", c.ty.span, format!("constants must be bit<W> or bool, not {n}"), "not a scalar type");
            return ConstVal { ty: ETy::Error, value: 0 };
        };
        let v = self.const_scalar(&c.value, Some(want), &format!("constant `{}`", c.name.name));
        v.unwrap_or(ConstVal { ty: want, value: 0 })
    }

    /// `extern NAME<T> { constructors; methods; }`
    fn extern_decl(&mut self, e: &ast::ExternDecl) {
        let tps: Vec<String> = e.type_params.iter().map(|t| t.name.clone()).collect();
        let constructors = e.constructors.iter().map(|c| self.sig(c, &tps).params).collect();
        let mut methods: Vec<ir::MethodSig> = Vec::new();
        for (k, m) in e.methods.iter().enumerate() {
            let sig = self.sig(m, &tps);
            let clash = e.methods[..k].iter().find(|p| p.name.name == m.name.name && p.params.len() == m.params.len());
            if let Some(first) = clash {
                self.duplicate(&m.name, first.name.span);
                continue;
            }
            methods.push(sig);
        }
        self.extern_types.push(ir::ExternType {
            name: e.name.name.clone(),
            type_params: tps,
            constructors,
            methods,
            span: e.span,
        });
        let id = ir::ExternTypeId(self.extern_types.len() as u32 - 1);
        self.declare_global(&e.name, GlobalKind::Type(Type::Extern(id)));
    }

    /// An extern method or function signature; `outer` are the extern's type parameters.
    fn sig(&mut self, m: &ast::MethodSig, outer: &[String]) -> ir::MethodSig {
        let mut tps: Vec<String> = m.type_params.iter().map(|t| t.name.clone()).collect();
        let own = tps.clone();
        tps.extend(outer.iter().cloned());
        let params = m
            .params
            .iter()
            .map(|p| ir::ParamSig { name: p.name.name.clone(), dir: dir(p.dir), ty: self.sig_ty(&p.ty, &tps) })
            .collect();
        let ret = match &m.ret {
            None => None,
            Some(t) if t.kind == TypeRefKind::Void => None,
            Some(t) => Some(self.sig_ty(t, &tps)),
        };
        ir::MethodSig { name: m.name.name.clone(), type_params: own, params, ret }
    }

    /// A parameter or result type of an extern signature.
    fn sig_ty(&mut self, t: &ast::TypeRef, tps: &[String]) -> SigTy {
        if let TypeRefKind::Named { name, args } = &t.kind {
            if args.is_empty() && tps.contains(&name.name) {
                return SigTy::Param(name.name.clone());
            }
        }
        match self.resolve_type(t) {
            Type::Bit(w) => SigTy::Scalar(ir::Ty::Bit(w)),
            Type::Bool => SigTy::Scalar(ir::Ty::Bool),
            Type::Struct(s) => SigTy::Struct(self.structs[s.0 as usize].name.clone()),
            Type::Error => SigTy::Scalar(ir::Ty::Bit(1)),
            other => {
                let n = self.type_name(other);
                self.report(
                    Diagnostic::error("E0609", t.span, format!("extern signatures cannot use {n}"), "unsupported")
                        .with_help("use a type parameter, e.g. `void f<H>(in H data);`"),
                );
                SigTy::Scalar(ir::Ty::Bit(1))
            }
        }
    }

    /// `TYPE<ARGS>(CTOR ARGS) NAME;` for an extern object, named `name` in the IR.
    pub(crate) fn instance_decl(&mut self, d: &ast::InstanceDecl, name: String) -> Option<ir::InstanceId> {
        let TypeRefKind::Named { name: tname, args: targs } = &d.ty.kind else {
            self.error("E0607", d.ty.span, "only extern objects can be instantiated", "not an extern type");
            return None;
        };
        let ty = match self.resolve_type(&d.ty) {
            Type::Extern(id) => id,
            Type::Error => return None,
            other => {
                let n = self.type_name(other);
                self.error(
                    "E0607",
                    tname.span,
                    format!("only extern objects can be instantiated, and {n} is not one"),
                    "not an extern type",
                );
                return None;
            }
        };
        let et = self.extern_types[ty.index()].clone();
        if matches!(et.name.as_str(), "packet_in" | "packet_out") && et.span.source == SourceId::PRELUDE {
            self.error(
                "E0607",
                tname.span,
                format!("`{}` is provided by the pipeline as a block parameter; it cannot be instantiated", et.name),
                "cannot be instantiated",
            );
            return None;
        }
        let mut type_args = Vec::new();
        if targs.len() != et.type_params.len() {
            let mut d2 = Diagnostic::error(
                "E0607",
                d.ty.span,
                format!(
                    "`{}` takes {} type argument{} but {} given",
                    et.name,
                    et.type_params.len(),
                    if et.type_params.len() == 1 { "" } else { "s" },
                    targs.len()
                ),
                "wrong number of type arguments",
            );
            if et.type_params.len() == 1 {
                d2 = d2.with_help(format!("e.g. `{}<bit<32>>(...) {};`", et.name, d.name.name));
            }
            self.report(d2);
            return None;
        }
        for t in targs {
            match self.resolve_type(t).scalar() {
                Some(ETy::Error) => return None,
                Some(s) => type_args.push(s.ir().unwrap_or(ir::Ty::Bit(1))),
                None => {
                    self.error(
                        "E0607",
                        t.span,
                        "type arguments of extern objects must be bit<W> or bool",
                        "not a scalar type",
                    );
                    return None;
                }
            }
        }
        let ctor = et.constructors.iter().find(|c| c.len() == d.args.len());
        let ctor = match ctor {
            Some(c) => c.clone(),
            None if et.constructors.is_empty() && d.args.is_empty() => Vec::new(),
            None => {
                let arities: Vec<String> = et.constructors.iter().map(|c| c.len().to_string()).collect();
                let mut d2 = Diagnostic::error(
                    "E0607",
                    d.name.span,
                    format!("no constructor of `{}` takes {} arguments", et.name, d.args.len()),
                    "no matching constructor",
                );
                if !arities.is_empty() {
                    d2 = d2.with_help(format!("its constructors take {} arguments", arities.join(" or ")));
                }
                self.report(d2);
                return None;
            }
        };
        let mut ctor_args = Vec::new();
        for (p, a) in ctor.iter().zip(&d.args) {
            let want = match &p.ty {
                SigTy::Scalar(t) => ETy::of(*t),
                SigTy::Param(n) => match et.type_params.iter().position(|x| x == n) {
                    Some(k) => ETy::of(type_args[k]),
                    None => ETy::Error,
                },
                SigTy::Struct(_) => {
                    self.error("E0609", a.span, "struct constructor arguments are not supported", "unsupported");
                    continue;
                }
            };
            let mut cx = Cx::pure("constructor arguments");
            let t = self.rvalue(a, &mut cx);
            let t = self.coerce(t, want, &format!("argument `{}` of `{}`", p.name, et.name));
            let cells = ctor_args.is_empty() && is_cell_array(&et);
            match t.kind {
                TKind::Const(v) if cells && v > MAX_CELLS => {
                    self.report(
                        Diagnostic::error(
                            "E0607",
                            a.span,
                            format!("`{}` of {} cells is larger than the limit", et.name, value_text(v)),
                            "too many cells",
                        )
                        .with_help(format!(
                            "a `{}` has at most {} (4 Mi) cells",
                            et.name,
                            value_text(MAX_CELLS)
                        )),
                    );
                    ctor_args.push(0);
                }
                TKind::Const(v)
                    if ctor_args.is_empty()
                        && is_pmtu_cache(&et)
                        && !(1..=u128::from(MAX_PMTU_ENTRIES)).contains(&v) =>
                {
                    self.report(
                        Diagnostic::error(
                            "E0607",
                            a.span,
                            format!("`pmtu_cache` of {} entries", value_text(v)),
                            "not a size the runtime takes",
                        )
                        .with_help(format!(
                            "a `pmtu_cache` holds 1 to {} (1 Mi) entries",
                            value_text(u128::from(MAX_PMTU_ENTRIES))
                        )),
                    );
                    ctor_args.push(0);
                }
                TKind::Const(v) => ctor_args.push(v),
                TKind::Error => ctor_args.push(0),
                _ => {
                    self.report(
                        Diagnostic::error(
                            "E0605",
                            a.span,
                            "constructor arguments must be compile-time constants",
                            "not a constant",
                        )
                        .with_help("use a literal or a `const`"),
                    );
                    ctor_args.push(0);
                }
            }
        }
        self.instances.push(ir::Instance { name, ty, type_args, ctor_args, span: d.span });
        Some(ir::InstanceId(self.instances.len() as u32 - 1))
    }
}

/// Whether instances of `et` are the prelude's `pmtu_cache`, whose first
/// constructor argument is its size (1 to [`MAX_PMTU_ENTRIES`]).
fn is_pmtu_cache(et: &ir::ExternType) -> bool {
    et.name == "pmtu_cache" && et.span.source == SourceId::PRELUDE
}

/// Whether instances of `et` are the prelude's `counter` or `register`,
/// whose first constructor argument is a cell count (at most [`MAX_CELLS`]).
fn is_cell_array(et: &ir::ExternType) -> bool {
    matches!(et.name.as_str(), "counter" | "register") && et.span.source == SourceId::PRELUDE
}
