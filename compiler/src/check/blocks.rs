//! Blocks: the `Pipeline(...)` package, the shared storage layout, and the
//! lowering of controls, actions and the deparser.
//!
//! Blocks identify their parameters by type: `packet_in` (parser),
//! `packet_out` (deparser), the headers struct (the parser's `out`
//! parameter), the user's metadata struct and `standard_metadata_t`. That
//! storage is laid out once, with the parser's parameter names, so every
//! block reads and writes the same slots whatever it calls its parameters.

use petgraph::graph::{DiGraph, NodeIndex};

use crate::ast::{self, TypeRefKind};
use crate::diag::Diagnostic;
use crate::ir::{self, ActionId, SlotKind};
use crate::span::{Ident, Span};

use super::expr::Place;
use super::stmt::Flow;
use super::{
    expr_text, Access, ActionInfo, Binding, BlockCx, BlockKind, Checker, Cx, ETy, InstId, Member, PacketDir, StructId,
    StructInst, Type,
};

/// Which declared blocks play which part.
#[derive(Debug, Default)]
struct Roles {
    parser: Option<usize>,
    controls: Vec<usize>,
    deparser: Option<usize>,
    /// False when guessed from the declarations because the package is missing.
    from_package: bool,
    /// Parsers and controls the package names, wherever it names them.
    named_parsers: Vec<usize>,
    named_controls: Vec<usize>,
}

/// A block named in the package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockRef {
    Parser(usize),
    Control(usize),
}

/// Arena lengths to roll back to after checking a block the pipeline does not use.
struct Snapshot {
    headers: usize,
    slots: usize,
    exprs: usize,
    instances: usize,
    actions: usize,
    tables: usize,
    insts: usize,
    call_sites: u32,
    temps: u32,
}

/// True when the written type is named `name`.
fn is_named(t: &ast::TypeRef, name: &str) -> bool {
    matches!(&t.kind, TypeRefKind::Named { name: n, .. } if n.name == name)
}

impl<'a> Checker<'a> {
    /// Determines the blocks, lays out storage, lowers every block and
    /// assembles the program.
    pub(super) fn pipeline(&mut self) -> Option<ir::Program> {
        let roles = self.roles();
        self.layout(&roles);

        let parser = roles.parser.map(|i| self.lower_parser(self.parsers[i]));
        let controls: Vec<ir::Control> = roles.controls.iter().map(|&i| self.lower_control(self.controls[i])).collect();
        let deparser = roles.deparser.map(|i| self.lower_deparser(self.controls[i]));

        // Blocks outside the pipeline are checked for mistakes, then dropped.
        self.checking_unused = true;
        for i in 0..self.parsers.len() {
            if roles.parser != Some(i) {
                let p = self.parsers[i];
                self.unused(&p.name, roles.from_package && !roles.named_parsers.contains(&i));
                let snap = self.snapshot();
                self.lower_parser(p);
                self.restore(snap);
            }
        }
        for i in 0..self.controls.len() {
            if roles.deparser != Some(i) && !roles.controls.contains(&i) {
                let c = self.controls[i];
                self.unused(&c.name, roles.from_package && !roles.named_controls.contains(&i));
                let snap = self.snapshot();
                if self.is_deparser(i) {
                    self.lower_deparser(c);
                } else {
                    self.lower_control(c);
                }
                self.restore(snap);
            }
        }
        self.checking_unused = false;

        let Some(std) = self.std_slots() else {
            // Only a prelude without `standard_metadata_t` gets here.
            self.error(
                "E0703",
                self.user_end,
                "`standard_metadata_t` (from the prelude) is missing or incomplete",
                "no standard metadata",
            );
            return None;
        };
        let (parser, deparser) = (parser?, deparser?);
        Some(ir::Program {
            header_types: std::mem::take(&mut self.header_types),
            headers: std::mem::take(&mut self.headers),
            slots: std::mem::take(&mut self.slots),
            exprs: std::mem::take(&mut self.exprs),
            extern_types: std::mem::take(&mut self.extern_types),
            extern_fns: std::mem::take(&mut self.extern_fns),
            instances: std::mem::take(&mut self.instances),
            actions: std::mem::take(&mut self.actions),
            tables: std::mem::take(&mut self.tables),
            call_sites: self.call_sites,
            errors: self.errors.iter().map(|(n, _)| n.clone()).collect(),
            parser,
            controls,
            deparser,
            std,
        })
    }

    /// Warns about a block the package does not name.
    fn unused(&mut self, name: &Ident, from_package: bool) {
        if from_package {
            self.report(Diagnostic::warning(
                "W0701",
                name.span,
                format!("`{}` is not used by the `Pipeline`", name.name),
                "checked, but never runs",
            ));
        }
    }

    /// Records arena lengths.
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            headers: self.headers.len(),
            slots: self.slots.len(),
            exprs: self.exprs.len(),
            instances: self.instances.len(),
            actions: self.actions.len(),
            tables: self.tables.len(),
            insts: self.insts.len(),
            call_sites: self.call_sites,
            temps: self.temps,
        }
    }

    /// Drops everything added since `s`.
    fn restore(&mut self, s: Snapshot) {
        for slot in &self.slots[s.slots..] {
            self.slot_names.remove(&slot.name);
        }
        self.headers.truncate(s.headers);
        self.slots.truncate(s.slots);
        self.exprs.truncate(s.exprs);
        self.instances.truncate(s.instances);
        self.actions.truncate(s.actions);
        self.action_info.truncate(s.actions);
        self.tables.truncate(s.tables);
        self.table_info.truncate(s.tables);
        self.insts.truncate(s.insts);
        self.call_sites = s.call_sites;
        self.temps = s.temps;
    }

    /// True when control `i` takes a `packet_out` (it is a deparser).
    fn is_deparser(&self, i: usize) -> bool {
        self.controls[i].params.iter().any(|p| is_named(&p.ty, "packet_out"))
    }

    /// The blocks the package names, checked for shape: a parser, one or
    /// more controls, a deparser.
    fn roles(&mut self) -> Roles {
        let Some(&pkg) = self.packages.first() else {
            self.report(
                Diagnostic::error(
                    "E0701",
                    self.user_end,
                    "the program has no `Pipeline(...)` package",
                    "expected a `Pipeline` here",
                )
                .with_help("end the program with e.g. `Pipeline(MyParser(), MyIngress(), MyDeparser()) main;`"),
            );
            return self.guessed_roles();
        };
        let first_span = pkg.name.span;
        for k in 1..self.packages.len() {
            let extra = self.packages[k];
            self.report(
                Diagnostic::error("E0706", extra.name.span, "more than one `Pipeline`", "second package")
                    .with_note(first_span, "the first `Pipeline`"),
            );
        }
        // `None` for an argument that is no block (already reported); it keeps its position.
        let mut blocks: Vec<(Option<BlockRef>, Span)> = Vec::new();
        for a in &pkg.args {
            let (id, ok_form) = match &a.kind {
                ast::ExprKind::Call { callee, args, .. } => match &callee.kind {
                    ast::ExprKind::Name(id) => {
                        if !args.is_empty() {
                            self.error(
                                "E0702",
                                args[0].span.to(args[args.len() - 1].span),
                                "blocks take no constructor arguments",
                                "unexpected arguments",
                            );
                        }
                        (Some(id), true)
                    }
                    _ => (None, false),
                },
                ast::ExprKind::Name(id) => (Some(id), false),
                _ => (None, false),
            };
            let Some(id) = id else {
                self.error("E0702", a.span, "expected a parser or control, such as `MyIngress()`", "not a block");
                blocks.push((None, a.span));
                continue;
            };
            if !ok_form {
                self.report(
                    Diagnostic::error("E0702", a.span, "blocks are instantiated with `()`", "missing `()`")
                        .with_help(format!("write `{}()`", id.name)),
                );
            }
            let b = match self.globals.get(&id.name).map(|g| g.kind) {
                Some(super::GlobalKind::Parser(i)) => BlockRef::Parser(i),
                Some(super::GlobalKind::Control(i)) => BlockRef::Control(i),
                Some(_) => {
                    self.error("E0702", id.span, format!("`{}` is not a parser or control", id.name), "not a block");
                    blocks.push((None, a.span));
                    continue;
                }
                None => {
                    let names: Vec<String> = self
                        .globals
                        .iter()
                        .filter(|(_, g)| matches!(g.kind, super::GlobalKind::Parser(_) | super::GlobalKind::Control(_)))
                        .map(|(n, _)| n.clone())
                        .collect();
                    self.unknown_name("E0101", id, format!("cannot find parser or control `{}`", id.name), &names);
                    blocks.push((None, a.span));
                    continue;
                }
            };
            if let Some((_, first)) = blocks.iter().find(|(x, _)| *x == Some(b)) {
                self.report(
                    Diagnostic::error(
                        "E0702",
                        a.span,
                        format!("`{}` appears twice in the `Pipeline`", id.name),
                        "again",
                    )
                    .with_note(*first, "first here"),
                );
                blocks.push((None, a.span));
                continue;
            }
            blocks.push((Some(b), a.span));
        }

        let mut roles = Roles { from_package: true, ..Roles::default() };
        for (b, _) in &blocks {
            match *b {
                Some(BlockRef::Parser(i)) => roles.named_parsers.push(i),
                Some(BlockRef::Control(i)) => roles.named_controls.push(i),
                None => {}
            }
        }
        let n = blocks.len();
        for (k, (b, span)) in blocks.iter().enumerate() {
            let (first, last) = (k == 0, k + 1 == n && n > 1);
            let Some(b) = *b else { continue };
            match b {
                BlockRef::Parser(i) if first => roles.parser = Some(i),
                BlockRef::Parser(_) => {
                    self.error("E0702", *span, "only the first argument of `Pipeline` can be a parser", "a parser")
                }
                BlockRef::Control(_) if first => self.report(
                    Diagnostic::error(
                        "E0702",
                        *span,
                        "the first argument of `Pipeline` must be the parser",
                        "not a parser",
                    )
                    .with_help("write `Pipeline(MyParser(), MyIngress(), MyDeparser()) main;`"),
                ),
                BlockRef::Control(i) if last => {
                    if self.is_deparser(i) {
                        roles.deparser = Some(i);
                    } else {
                        self.report(
                            Diagnostic::error(
                                "E0702",
                                *span,
                                "the last argument of `Pipeline` must be the deparser",
                                "not a deparser",
                            )
                            .with_help("the deparser is a control with a `packet_out` parameter that emits headers"),
                        );
                    }
                }
                BlockRef::Control(i) => {
                    if self.is_deparser(i) {
                        self.error(
                            "E0702",
                            *span,
                            "the deparser must be the last argument of `Pipeline`",
                            "deparser too early",
                        );
                    } else {
                        roles.controls.push(i);
                    }
                }
            }
        }
        if n < 3 {
            self.report(
                Diagnostic::error(
                    "E0702",
                    pkg.span,
                    "`Pipeline` needs a parser, at least one control and a deparser",
                    format!("{n} block{} given", if n == 1 { "" } else { "s" }),
                )
                .with_help("write `Pipeline(MyParser(), MyIngress(), MyDeparser()) main;`"),
            );
        }
        roles
    }

    /// Roles from the declarations when there is no package: the first
    /// parser, the first control with a `packet_out`, and the other controls.
    fn guessed_roles(&self) -> Roles {
        let deparser = (0..self.controls.len()).find(|&i| self.is_deparser(i));
        Roles {
            parser: (!self.parsers.is_empty()).then_some(0),
            controls: (0..self.controls.len()).filter(|&i| Some(i) != deparser).collect(),
            deparser,
            from_package: false,
            named_parsers: Vec::new(),
            named_controls: Vec::new(),
        }
    }

    /// Whether struct `s` holds a header, itself or in a nested struct.
    fn holds_header(&self, s: StructId) -> bool {
        self.structs[s.0 as usize].fields.iter().any(|(_, t)| match *t {
            Type::Header(_) | Type::Stack(..) => true,
            Type::Struct(inner) => inner != s && self.holds_header(inner),
            _ => false,
        })
    }

    /// Finds the headers, metadata and standard metadata types and lays
    /// them out as slots named after the parser's parameters.
    fn layout(&mut self, roles: &Roles) {
        self.layout.std_ty = match self.globals.get("standard_metadata_t").map(|g| g.kind) {
            Some(super::GlobalKind::Type(Type::Struct(s))) => Some(s),
            _ => None,
        };
        let std_ty = self.layout.std_ty;
        // Parameters of the blocks in pipeline order, the parser's first.
        let parser = roles.parser.or((!self.parsers.is_empty()).then_some(0)).map(|i| self.parsers[i]);
        let mut params: Vec<&'a ast::Param> = Vec::new();
        if let Some(p) = parser {
            params.extend(&p.params);
        }
        for &i in roles.controls.iter().chain(roles.deparser.iter()) {
            params.extend(&self.controls[i].params);
        }
        let struct_of = |c: &Self, p: &ast::Param| match c.peek_type(&p.ty) {
            Some(Type::Struct(s)) if Some(s) != std_ty => Some(s),
            _ => None,
        };

        let headers_ty = match parser {
            Some(p) => {
                let mut out =
                    p.params.iter().find(|x| x.dir == Some(ast::Direction::Out)).and_then(|x| struct_of(self, x));
                // A struct of headers passed `inout` (or `in`) is the headers
                // struct with the wrong direction: say so, and take it as the
                // headers struct so the other blocks are not reported too.
                let misdirected = p
                    .params
                    .iter()
                    .filter(|x| x.dir != Some(ast::Direction::Out))
                    .find_map(|x| struct_of(self, x).filter(|&s| self.holds_header(s)).map(|s| (x, s)));
                if let (None, Some((x, s))) = (out, misdirected) {
                    let dir = match x.dir {
                        Some(ast::Direction::InOut) => "`inout`",
                        Some(ast::Direction::In) => "`in`",
                        _ => "without a direction",
                    };
                    self.report(
                        Diagnostic::error(
                            "E0703",
                            x.span,
                            format!(
                                "parameter `{}` of parser `{}` holds the headers but is {dir}: the headers struct is the parser's `out` parameter",
                                x.name.name, p.name.name
                            ),
                            "not `out`",
                        )
                        .with_help(format!("declare it `out {} {}`", self.structs[s.0 as usize].name, x.name.name)),
                    );
                    out = Some(s);
                } else if out.is_none() {
                    self.report(
                        Diagnostic::error(
                            "E0703",
                            p.name.span,
                            format!("parser `{}` has no `out` parameter of the headers struct type", p.name.name),
                            "no headers parameter",
                        )
                        .with_help("declare it like `out headers_t hdr`"),
                    );
                }
                out
            }
            None => roles.deparser.and_then(|i| self.controls[i].params.iter().find_map(|x| struct_of(self, x))),
        };
        let meta_ty = params.iter().filter_map(|x| struct_of(self, x)).find(|s| Some(*s) != headers_ty);
        let name_of = |c: &Self, ty: Option<StructId>, default: &str| {
            params
                .iter()
                .find(|x| ty.is_some() && c.peek_type(&x.ty) == ty.map(Type::Struct))
                .map_or(default.to_string(), |x| x.name.name.clone())
        };
        let (hname, mname, sname) =
            (name_of(self, headers_ty, "hdr"), name_of(self, meta_ty, "meta"), name_of(self, std_ty, "std"));

        if let Some(h) = headers_ty {
            self.check_struct_contents(h, true);
            let inst = self.instantiate(h, &hname, SlotKind::Meta);
            self.layout.headers_ty = Some(h);
            self.layout.headers = Some(inst);
        }
        if let Some(m) = meta_ty {
            self.check_struct_contents(m, false);
            let inst = self.instantiate(m, &mname, SlotKind::Meta);
            self.layout.meta_ty = Some(m);
            self.layout.meta = Some(inst);
        }
        if let Some(s) = std_ty {
            let inst = self.instantiate(s, &sname, SlotKind::Std);
            self.layout.std = Some(inst);
        }
    }

    /// The headers struct may hold only headers (and structs of them); the
    /// metadata struct only scalars (and structs of them).
    fn check_struct_contents(&mut self, s: StructId, headers: bool) {
        let def = self.structs[s.0 as usize].clone();
        for (f, t) in &def.fields {
            match (*t, headers) {
                (Type::Struct(inner), _) => self.check_struct_contents(inner, headers),
                (Type::Header(_) | Type::Stack(..), true) | (Type::Bit(_) | Type::Bool, false) | (Type::Error, _) => {}
                (other, true) => {
                    let n = self.type_name(other);
                    self.report(
                        Diagnostic::error(
                            "E0210",
                            f.span,
                            format!("the headers struct `{}` can only hold headers, but `{}` is {n}", def.name, f.name),
                            "not a header",
                        )
                        .with_help("keep other values in the metadata struct"),
                    );
                }
                (other, false) => {
                    let n = self.type_name(other);
                    self.report(
                        Diagnostic::error(
                            "E0210",
                            f.span,
                            format!("the metadata struct `{}` cannot hold {n} (field `{}`)", def.name, f.name),
                            "not a bit<W> or bool",
                        )
                        .with_help("keep headers in the headers struct"),
                    );
                }
            }
        }
    }

    /// Lays out struct `s` at `path`: header members become headers, scalar
    /// members slots of `kind`, nested structs are flattened with dotted names.
    pub(crate) fn instantiate(&mut self, s: StructId, path: &str, kind: SlotKind) -> InstId {
        let def = self.structs[s.0 as usize].clone();
        let mut members = Vec::new();
        for (f, t) in &def.fields {
            let p = format!("{path}.{}", f.name);
            let m = match *t {
                Type::Bit(w) => Member::Slot(self.new_slot(p, ir::Ty::Bit(w), kind)),
                Type::Bool => Member::Slot(self.new_slot(p, ir::Ty::Bool, kind)),
                Type::Header(h) => Member::Header(self.new_header(p, h, f.span)),
                Type::Struct(inner) => Member::Struct(self.instantiate(inner, &p, kind)),
                Type::Stack(h, n) => Member::Stack(self.new_stack(p, h, n, f.span)),
                Type::Extern(_) | Type::Error => Member::Error,
            };
            members.push((f.name.clone(), m));
        }
        self.insts.push(StructInst { ty: s, members });
        InstId(self.insts.len() as u32 - 1)
    }

    /// A header instance of type `ty` named `name`, with its slots.
    pub(crate) fn new_header(&mut self, name: String, ty: ir::HeaderTypeId, span: Span) -> ir::HeaderId {
        let id = ir::HeaderId(self.headers.len() as u32);
        let ht = self.header_types[ty.index()].clone();
        let fields = ht
            .fields
            .iter()
            .enumerate()
            .map(|(i, (f, w))| {
                self.new_slot(
                    format!("{name}.{f}"),
                    ir::Ty::Bit(*w),
                    SlotKind::HeaderField { header: id, field: i as u32 },
                )
            })
            .collect();
        let valid = self.new_slot(format!("{name}.$valid"), ir::Ty::Bool, SlotKind::HeaderValid(id));
        self.headers.push(ir::Header { name, ty, fields, valid, byte_len: ht.bit_len / 8, span });
        id
    }

    /// Where the standard metadata fields live.
    fn std_slots(&mut self) -> Option<ir::StdSlots> {
        let std = self.layout.std?;
        let get = |c: &Self, n: &str| c.member_slot(std, n);
        Some(ir::StdSlots {
            ingress_port: get(self, "ingress_port")?,
            egress_spec: get(self, "egress_spec")?,
            packet_length: get(self, "packet_length")?,
            timestamp: get(self, "timestamp")?,
            mcast_grp: get(self, "mcast_grp")?,
            drop: get(self, "drop")?,
        })
    }

    /// Binds a block's parameters by their types.
    pub(crate) fn bind_params(&mut self, params: &[ast::Param], kind: BlockKind) {
        for p in params {
            let ty = self.resolve_type(&p.ty);
            let access = match p.dir {
                Some(ast::Direction::Out | ast::Direction::InOut) => Access::ReadWrite,
                _ => Access::InParam(p.name.name.clone()),
            };
            let b = match ty {
                Type::Extern(_) if is_named(&p.ty, "packet_in") => {
                    if kind == BlockKind::Parser {
                        Binding::Packet(PacketDir::In)
                    } else {
                        self.error("E0703", p.ty.span, "only the parser takes a `packet_in`", "not allowed here");
                        Binding::Poisoned
                    }
                }
                Type::Extern(_) if is_named(&p.ty, "packet_out") => {
                    if kind == BlockKind::Deparser {
                        Binding::Packet(PacketDir::Out)
                    } else {
                        self.error("E0703", p.ty.span, "only the deparser takes a `packet_out`", "not allowed here");
                        Binding::Poisoned
                    }
                }
                Type::Struct(s) if Some(s) == self.layout.std_ty && self.layout.std.is_some() => {
                    Binding::Struct { inst: self.layout.std.unwrap_or(InstId(0)), access }
                }
                Type::Struct(s) if Some(s) == self.layout.headers_ty && self.layout.headers.is_some() => {
                    Binding::Struct { inst: self.layout.headers.unwrap_or(InstId(0)), access }
                }
                Type::Struct(s) if Some(s) == self.layout.meta_ty && self.layout.meta.is_some() => {
                    Binding::Struct { inst: self.layout.meta.unwrap_or(InstId(0)), access }
                }
                Type::Struct(s) if self.checking_unused => {
                    let inst = self.instantiate(s, &p.name.name, SlotKind::Meta);
                    Binding::Struct { inst, access }
                }
                Type::Struct(s) => {
                    let name = self.structs[s.0 as usize].name.clone();
                    let known = |c: &Self, t: Option<StructId>| {
                        t.map_or("none".to_string(), |t| format!("`{}`", c.structs[t.0 as usize].name))
                    };
                    let (h, m) = (known(self, self.layout.headers_ty), known(self, self.layout.meta_ty));
                    self.report(
                        Diagnostic::error(
                            "E0703",
                            p.ty.span,
                            format!(
                                "parameter `{}` has type `{name}`, which is neither the headers struct ({h}) nor the metadata struct ({m})",
                                p.name.name
                            ),
                            "unexpected struct type",
                        )
                        .with_help("all blocks of the pipeline must use the same headers and metadata types"),
                    );
                    // Lay it out anyway so the block's own mistakes are still found.
                    let inst = self.instantiate(s, &p.name.name, SlotKind::Meta);
                    Binding::Struct { inst, access }
                }
                Type::Error => Binding::Poisoned,
                other => {
                    let n = self.type_name(other);
                    self.report(
                        Diagnostic::error(
                            "E0703",
                            p.ty.span,
                            format!("block parameters cannot have type {n}"),
                            "not allowed here",
                        )
                        .with_help("blocks take packet_in/packet_out, the headers struct, the metadata struct and standard_metadata_t"),
                    );
                    Binding::Poisoned
                }
            };
            self.bind(&p.name, b);
        }
    }

    /// Lowers a control between the parser and the deparser.
    pub(crate) fn lower_control(&mut self, c: &ast::ControlDecl) -> ir::Control {
        self.block = BlockCx { prefix: c.name.name.clone(), kind: BlockKind::Control, in_action: false };
        self.push_scope();
        self.bind_params(&c.params, BlockKind::Control);
        self.note_block_names(&c.locals);
        let mut init = Vec::new();
        for l in &c.locals {
            self.block_local(l, &mut init);
        }
        let mut flow = Flow::new();
        flow.extend(init);
        self.block_stmts(&c.apply.stmts, &mut flow);
        self.pop_scope();
        self.block_names.clear();
        self.block = BlockCx { prefix: String::new(), kind: BlockKind::TopLevel, in_action: false };
        ir::Control { name: c.name.name.clone(), body: flow.finish(), span: c.span }
    }

    /// Records the names a block declares before its body, to explain a use
    /// that comes before the declaration.
    pub(crate) fn note_block_names(&mut self, locals: &[ast::LocalDecl]) {
        self.block_names = locals
            .iter()
            .map(|l| match l {
                ast::LocalDecl::Var(v) => &v.name,
                ast::LocalDecl::Const(c) => &c.name,
                ast::LocalDecl::Instance(i) => &i.name,
                ast::LocalDecl::Action(a) => &a.name,
                ast::LocalDecl::Table(t) => &t.name,
            })
            .map(|id| (id.name.clone(), id.span))
            .collect();
    }

    /// A declaration before a control's (or parser's) body. Variable
    /// initialisers become statements in `init`, run when the block starts.
    pub(crate) fn block_local(&mut self, l: &ast::LocalDecl, init: &mut Vec<ir::Stmt>) {
        match l {
            ast::LocalDecl::Var(v) => {
                let mut cx = Cx::new();
                match self.local_var(v) {
                    Some((slot, ty)) => {
                        if let Some(e) = &v.init {
                            let x = self.rvalue(e, &mut cx);
                            let x = self.coerce(x, ty, &format!("`{}`", v.name.name));
                            let src = self.emit(&x);
                            init.append(&mut cx.pre);
                            let dst = ir::LValue { slot, slice: None };
                            init.push(ir::Stmt { kind: ir::StmtKind::Assign { dst, src }, span: v.span });
                        }
                        self.bind(&v.name, Binding::Var { slot, access: Access::ReadWrite });
                    }
                    None => self.bind(&v.name, Binding::Poisoned),
                }
            }
            ast::LocalDecl::Const(c) => self.const_stmt(c),
            ast::LocalDecl::Instance(d) => {
                let name = self.local_name(&d.name.name);
                match self.instance_decl(d, name) {
                    Some(i) => self.bind(&d.name, Binding::Instance(i)),
                    None => self.bind(&d.name, Binding::Poisoned),
                }
            }
            ast::LocalDecl::Action(a) => {
                if self.block.kind == BlockKind::Parser {
                    self.error("E0302", a.name.span, "a parser cannot declare actions", "not allowed in a parser");
                    return;
                }
                let id = self.lower_action(a);
                self.bind(&a.name, Binding::Action(id));
            }
            ast::LocalDecl::Table(t) => {
                if self.block.kind == BlockKind::Parser {
                    self.error("E0302", t.name.span, "a parser cannot declare tables", "not allowed in a parser");
                    return;
                }
                let id = self.lower_table(t);
                self.bind(&t.name, Binding::Table(id));
            }
        }
    }

    /// Lowers an action (of the current control, or top-level). Its name is
    /// bound by the caller after lowering, so an action cannot call itself.
    pub(crate) fn lower_action(&mut self, a: &ast::ActionDecl) -> ActionId {
        let id = ActionId(self.actions.len() as u32);
        let name = self.local_name(&a.name.name);
        let empty = ir::Body { graph: DiGraph::new(), entry: NodeIndex::new(0) };
        self.actions.push(ir::Action { name: name.clone(), params: Vec::new(), body: empty, span: a.span });
        self.action_info.push(ActionInfo { short: a.name.name.clone(), name_span: a.name.span, params: Vec::new() });
        let saved = self.block.clone();
        self.block.prefix = name.clone();
        self.block.in_action = true;
        self.push_scope();
        let (mut params, mut infos) = (Vec::new(), Vec::new());
        for (k, p) in a.params.iter().enumerate() {
            if let Some(d @ (ast::Direction::Out | ast::Direction::InOut)) = p.dir {
                let d = if d == ast::Direction::Out { "out" } else { "inout" };
                self.report(
                    Diagnostic::error(
                        "E0408",
                        p.span,
                        format!("action parameter `{}` cannot be `{d}`", p.name.name),
                        "direction not supported",
                    )
                    .with_help("actions write headers and metadata directly; parameters carry values in"),
                );
            }
            let access = match p.dir {
                // Already reported; the body's writes to it need not be.
                Some(ast::Direction::Out | ast::Direction::InOut) => Access::ReadWrite,
                _ => Access::ActionParam(p.name.name.clone()),
            };
            let t = self.resolve_type(&p.ty);
            let ty = match t.scalar() {
                Some(ETy::Error) => ir::Ty::Bit(1),
                Some(s) => s.ir().unwrap_or(ir::Ty::Bit(1)),
                None => {
                    let n = self.type_name(t);
                    self.error(
                        "E0210",
                        p.ty.span,
                        format!("action parameters must be bit<W> or bool, not {n}"),
                        "not a scalar type",
                    );
                    ir::Ty::Bit(1)
                }
            };
            let slot = self.new_slot(
                format!("{name}.{}", p.name.name),
                ty,
                SlotKind::ActionParam { action: id, index: k as u32 },
            );
            self.bind(&p.name, Binding::Var { slot, access });
            params.push(slot);
            infos.push((p.name.name.clone(), ty));
        }
        self.action_info[id.index()].params = infos;
        let mut flow = Flow::new();
        self.block_stmts(&a.body.stmts, &mut flow);
        self.pop_scope();
        self.block = saved;
        let act = &mut self.actions[id.index()];
        act.params = params;
        act.body = flow.finish();
        id
    }

    /// Lowers the deparser: its body may only emit headers.
    pub(crate) fn lower_deparser(&mut self, c: &ast::ControlDecl) -> ir::Deparser {
        self.block = BlockCx { prefix: c.name.name.clone(), kind: BlockKind::Deparser, in_action: false };
        self.push_scope();
        self.bind_params(&c.params, BlockKind::Deparser);
        for l in &c.locals {
            match l {
                ast::LocalDecl::Const(k) => self.const_stmt(k),
                other => {
                    let (what, span) = match other {
                        ast::LocalDecl::Var(v) => ("variables", v.span),
                        ast::LocalDecl::Instance(i) => ("extern instances", i.span),
                        ast::LocalDecl::Action(a) => ("actions", a.name.span),
                        ast::LocalDecl::Table(t) => ("tables", t.name.span),
                        ast::LocalDecl::Const(k) => ("constants", k.span),
                    };
                    self.error(
                        "E0704",
                        span,
                        format!("the deparser cannot declare {what}; it only emits headers"),
                        "not allowed in the deparser",
                    );
                }
            }
        }
        let mut emits = Vec::new();
        self.deparser_stmts(&c.apply.stmts, &mut emits);
        self.pop_scope();
        self.block = BlockCx { prefix: String::new(), kind: BlockKind::TopLevel, in_action: false };
        ir::Deparser { name: c.name.name.clone(), emits, span: c.span }
    }

    /// The statements of the deparser: `pkt.emit(h);` (or a struct of headers).
    fn deparser_stmts(&mut self, stmts: &[ast::Stmt], emits: &mut Vec<ir::HeaderId>) {
        for s in stmts {
            match &s.kind {
                ast::StmtKind::Call(e) => self.emit_call(e, s.span, emits),
                ast::StmtKind::Block(b) => {
                    self.push_scope();
                    self.deparser_stmts(&b.stmts, emits);
                    self.pop_scope();
                }
                ast::StmtKind::Const(c) => self.const_stmt(c),
                _ => self.report(
                    Diagnostic::error("E0704", s.span, "the deparser can only emit headers", "not a `pkt.emit(...)`")
                        .with_help("the deparser's apply block holds `pkt.emit(hdr.x);` statements only"),
                ),
            }
        }
    }

    /// One `pkt.emit(h)` of the deparser.
    fn emit_call(&mut self, e: &ast::Expr, span: Span, emits: &mut Vec<ir::HeaderId>) {
        let mut cx = Cx::pure("the deparser");
        let not_emit = |c: &mut Self| {
            c.report(
                Diagnostic::error("E0704", span, "the deparser can only emit headers", "not a `pkt.emit(...)`")
                    .with_help("the deparser's apply block holds `pkt.emit(hdr.x);` statements only"),
            )
        };
        let ast::ExprKind::Call { callee, args, .. } = &e.kind else {
            return not_emit(self);
        };
        let ast::ExprKind::Member { base, member } = &callee.kind else {
            return not_emit(self);
        };
        match self.place(base, &mut cx) {
            Place::Packet(PacketDir::Out) if member.name == "emit" => {}
            Place::Packet(PacketDir::Out) => {
                let ast::ExprKind::Call { type_args, .. } = &e.kind else { return };
                self.packet_method(PacketDir::Out, member, type_args, args, e.span, &mut cx);
                return;
            }
            Place::Error => return,
            _ => return not_emit(self),
        }
        let [arg] = args.as_slice() else {
            self.error(
                "E0602",
                e.span,
                format!("`emit` takes 1 argument but {} given", args.len()),
                "wrong number of arguments",
            );
            return;
        };
        match self.place(arg, &mut cx) {
            Place::Header { id, .. } => emits.push(id),
            Place::Stack { stack, .. } => emits.extend(&self.stacks[stack as usize].elems),
            Place::Struct { inst, .. } => self.struct_headers(inst, emits),
            Place::Error => {}
            _ => self.report(
                Diagnostic::error(
                    "E0705",
                    arg.span,
                    format!("`emit` needs a header, but `{}` is not one", expr_text(arg)),
                    "not a header",
                )
                .with_help("emit the headers of the headers struct, e.g. `pkt.emit(hdr.ethernet);`"),
            ),
        }
    }

    /// Every header of a struct, in order (nested structs flattened).
    fn struct_headers(&self, inst: InstId, out: &mut Vec<ir::HeaderId>) {
        for (_, m) in &self.insts[inst.0 as usize].members {
            match *m {
                Member::Header(h) => out.push(h),
                Member::Stack(s) => out.extend(&self.stacks[s as usize].elems),
                Member::Struct(i) => self.struct_headers(i, out),
                Member::Slot(_) | Member::Error => {}
            }
        }
    }
}
