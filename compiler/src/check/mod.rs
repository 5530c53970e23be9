//! The checker: AST → IR. The only stage that builds IR; it reports every
//! error it finds (names, types and widths, lvalues, tables, parser graph)
//! and keeps going after each one, so one run shows all of them.
//!
//! # How it works
//! 1. `decls`: the prelude's and the user's top-level declarations are
//!    entered in source order (declare before use): types and typedefs
//!    resolved, constants folded, extern signatures converted, top-level
//!    extern instances and actions (`NoAction`) lowered.
//! 2. `blocks`: the `Pipeline(...)` package names the parser, the controls
//!    and the deparser. Blocks identify their parameters by type; the
//!    headers struct (the parser's `out` parameter), the metadata struct and
//!    `standard_metadata_t` are laid out once as slots, named with the
//!    parser's parameter names (`hdr.ipv4.ttl`).
//! 3. Each block is lowered: controls and actions into [`ir::Body`] graphs
//!    (`stmt`), tables (`table`), parser states (`parser`), the
//!    deparser's emits. Expressions (`expr`) are typed, unsized literals
//!    take their context's width, constants fold; calls (`calls`) are
//!    hoisted into statements before the statement that uses their value.
//! 4. When there were no errors, [`graph::analyze`] checks the parser graph
//!    and header validity on the finished IR.
//!
//! # Diagnostic codes
//! | code | meaning |
//! | --- | --- |
//! | E0101 | unknown name |
//! | E0102 | unknown field or member |
//! | E0103 | a name defined twice |
//! | E0104 | unknown type, or a name that is not a type |
//! | E0201 | width mismatch (assignment, operator, argument, keyset) |
//! | E0202 | `bool` where `bit<W>` is needed, or the other way round |
//! | E0203 | a literal that does not fit its width, or literal arithmetic (`1 << 128`) beyond 128 bits |
//! | E0204 | invalid width (`bit<0>`, `bit<129>`, `++` wider than 128 bits) |
//! | E0205 | a header whose width is not a whole number of bytes |
//! | E0206 | a value that must be a compile-time constant is not |
//! | E0207 | slice out of range, or high bit below low bit |
//! | E0208 | an operator applied to operands of the wrong kind |
//! | E0209 | an impossible cast |
//! | E0210 | a type not allowed in this place (field, variable, parameter) |
//! | E0211 | a header, struct, table, action... used as a value |
//! | E0212 | width that cannot be inferred (unsized literal without context) |
//! | E0213 | bad header stack declaration (elements not headers, size not 1..=64, a stack as a header's field) |
//! | E0214 | header stack index out of range, or a stack operation p4lite does not take (`push_front(0)`, `hs.next` other than in `extract`, a method of `hs.last`) |
//! | E0301 | assignment to something that is not an lvalue |
//! | E0302 | statement not allowed here (e.g. `if` in a parser) |
//! | E0303 | `switch` on something other than `t.apply().action_run` |
//! | E0304 | bad `switch` label (not an action of the table, or repeated) |
//! | E0305 | call on the right of `&&`/`||` or in a `?:` branch |
//! | E0306 | expression statement that is not a call |
//! | E0308 | header or struct assignment between different types |
//! | E0401 | wrong number of action arguments |
//! | E0402 | unknown action in a table or call |
//! | E0403 | `default_action` not in the table's `actions` |
//! | E0404 | unknown match kind |
//! | E0405 | bad table key |
//! | E0406 | const entry keysets that do not fit the key |
//! | E0407 | unknown, repeated or missing table property |
//! | E0408 | action parameter with `out`/`inout` direction |
//! | E0409 | entry action not in the table's `actions` |
//! | E0411 | table applied outside a control's `apply`, `action_run` outside `switch` |
//! | E0412 | more than one `lpm` key |
//! | E0414 | a control too big once its action calls are inlined (`graph.rs`) |
//! | E0501 | state without `transition` |
//! | E0502 | transition to an unknown state |
//! | E0503 | parser without a `start` state |
//! | E0504 | select case with the wrong number of keysets |
//! | E0505 | `extract` of something that is not a header |
//! | E0506 | parser-only operation outside the parser |
//! | E0507 | state named `accept` or `reject` |
//! | E0508 | keyset kind not allowed here, or an empty range |
//! | E0509 | `advance` by a number of bits that is not a multiple of 8 |
//! | E0601 | unknown extern method |
//! | E0602 | wrong number of arguments or type arguments |
//! | E0603 | `out`/`inout` argument that is not a writable variable or field |
//! | E0604 | argument or result of the wrong kind (e.g. a header for a `bit<32>`) |
//! | E0605 | constructor argument that is not a compile-time constant |
//! | E0606 | list or header argument that is not whole bytes |
//! | E0607 | bad extern instantiation (type arguments, constructor, a `counter` or `register` of more than 4 Mi cells) |
//! | E0608 | call of something that is not callable |
//! | E0609 | extern signature or use the runtime cannot support |
//! | E0610 | call in a place that must be pure (table keys, constants) |
//! | E0701 | no `Pipeline(...)` package |
//! | E0702 | malformed `Pipeline(...)` |
//! | E0703 | block parameter of a type blocks cannot take, or disagreeing types |
//! | E0704 | deparser statement other than `pkt.emit(...)` |
//! | E0705 | `emit` of something that is not a header |
//! | E0706 | more than one `Pipeline(...)` |
//! | W0301 | unreachable statement after `exit` or `return` |
//! | W0701 | parser or control not used by the `Pipeline` (checked, not lowered) |
//!
//! `graph.rs` adds `E0414`, `E0510`, `E0511`, `W0512` and `W0601`.

use std::collections::{HashMap, HashSet};

use crate::ast;
use crate::diag::{did_you_mean, Diagnostic};
use crate::ir::{self, ActionId, ExprId, HeaderId, InstanceId, SlotId, TableId};
use crate::span::{Ident, Span};

mod blocks;
mod calls;
mod decls;
mod expr;
pub mod graph;
mod parser;
mod stack;
mod stmt;
mod table;
#[cfg(test)]
mod tests;

pub(crate) use expr::{Cx, ETy, TExpr};

/// Checks the prelude and the user's program together and lowers them to IR.
/// Returns the IR when it could be built without errors, and every diagnostic found.
pub fn check(prelude: &ast::Program, user: &ast::Program) -> (Option<ir::Program>, Vec<Diagnostic>) {
    let mut c = Checker::new();
    let program = c.run(prelude, user);
    let mut diags = std::mem::take(&mut c.diags);
    if diags.iter().any(Diagnostic::is_error) {
        return (None, diags);
    }
    match program {
        Some(p) => {
            let whole = graph::analyze(&p);
            let failed = whole.iter().any(Diagnostic::is_error);
            diags.extend(whole);
            (if failed { None } else { Some(p) }, diags)
        }
        None => (None, diags),
    }
}

/// Index into the checker's struct declarations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StructId(pub u32);

/// Index into the checker's struct instances (`hdr`, `meta`, `std`, nested structs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct InstId(pub u32);

/// A resolved type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Type {
    Bit(u16),
    Bool,
    Header(ir::HeaderTypeId),
    Struct(StructId),
    Extern(ir::ExternTypeId),
    /// A header stack `H[N]` (struct fields only).
    Stack(ir::HeaderTypeId, u32),
    /// A type that failed to resolve (already reported).
    Error,
}

impl Type {
    /// The scalar expression type, for `bit<W>` and `bool`.
    pub(crate) fn scalar(self) -> Option<ETy> {
        match self {
            Type::Bit(w) => Some(ETy::Bit(w)),
            Type::Bool => Some(ETy::Bool),
            Type::Error => Some(ETy::Error),
            _ => None,
        }
    }
}

/// A `struct` declaration.
#[derive(Clone, Debug)]
pub(crate) struct StructDef {
    pub name: String,
    pub fields: Vec<(Ident, Type)>,
}

/// A struct laid out in slots: the headers struct, the metadata, the
/// standard metadata, and structs nested in them.
#[derive(Clone, Debug)]
pub(crate) struct StructInst {
    pub ty: StructId,
    pub members: Vec<(String, Member)>,
}

/// One member of a laid-out struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Member {
    Slot(SlotId),
    Header(HeaderId),
    Struct(InstId),
    /// A header stack (index into [`Checker::stacks`]).
    Stack(u32),
    /// A field whose type did not resolve (already reported); uses stay quiet.
    Error,
}

/// A header stack laid out in the headers struct: `N` headers named
/// `hdr.mpls[0]` .. `hdr.mpls[N-1]` and a hidden next-index slot
/// `hdr.mpls.$next` (`bit<32>`), which `extract(hdr.mpls.next)` reads and
/// advances and `push_front`/`pop_front` move (P4_16's `nextIndex`).
#[derive(Clone, Debug)]
pub(crate) struct StackDef {
    /// The access path, `hdr.mpls`.
    pub name: String,
    pub ty: ir::HeaderTypeId,
    /// The elements, in index order.
    pub elems: Vec<HeaderId>,
    /// The next-index slot.
    pub next: SlotId,
}

/// A folded compile-time constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConstVal {
    pub ty: ETy,
    pub value: u128,
}

/// Whether a place may be written, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    ReadWrite,
    /// Reached through the named `in` (or directionless) block parameter.
    InParam(String),
    /// The named action parameter.
    ActionParam(String),
}

/// Which packet extern a block parameter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PacketDir {
    In,
    Out,
}

/// What a name in a block scope stands for.
#[derive(Clone, Debug)]
pub(crate) enum Binding {
    Const(ConstVal),
    Var {
        slot: SlotId,
        access: Access,
    },
    Struct {
        inst: InstId,
        access: Access,
    },
    Packet(PacketDir),
    Table(TableId),
    Action(ActionId),
    Instance(InstanceId),
    /// A declaration that failed (already reported); uses stay quiet.
    Poisoned,
}

/// What a top-level name stands for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum GlobalKind {
    Type(Type),
    Const(ConstVal),
    ExternFn(ir::ExternFnId),
    Action(ActionId),
    Instance(InstanceId),
    Parser(usize),
    Control(usize),
    Package,
}

/// An enum: its type `E` is the underlying `bit<W>` (`bit<32>` for an enum
/// without one), and `E.M` is a constant of that type.
#[derive(Clone, Debug)]
pub(crate) struct EnumDef {
    pub ty: ETy,
    pub members: Vec<(String, u128)>,
}

/// A top-level name and where it was declared.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Global {
    pub kind: GlobalKind,
    pub span: Span,
}

/// What kind of code is being checked; some statements and calls are only
/// allowed in some blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockKind {
    TopLevel,
    Parser,
    Control,
    Deparser,
}

/// The block being checked.
#[derive(Clone, Debug)]
pub(crate) struct BlockCx {
    /// Prefix of slot names: `MyIngress`, `MyIngress.forward`, or empty at top level.
    pub prefix: String,
    pub kind: BlockKind,
    /// True inside an action body.
    pub in_action: bool,
}

/// What the checker knows about an action besides its IR.
#[derive(Clone, Debug)]
pub(crate) struct ActionInfo {
    /// The name as declared (`forward`).
    pub short: String,
    /// Where that name is written.
    pub name_span: Span,
    /// Parameter names and types.
    pub params: Vec<(String, ir::Ty)>,
}

/// What the checker knows about a table besides its IR.
#[derive(Clone, Debug, Default)]
pub(crate) struct TableInfo {
    /// The actions list by the names written in it.
    pub actions: Vec<(String, ActionId)>,
}

/// Where the pipeline's shared storage lives.
#[derive(Clone, Debug, Default)]
pub(crate) struct Layout {
    pub headers_ty: Option<StructId>,
    pub headers: Option<InstId>,
    pub meta_ty: Option<StructId>,
    pub meta: Option<InstId>,
    pub std_ty: Option<StructId>,
    pub std: Option<InstId>,
}

/// The checker's state: the IR arenas being filled, the declarations seen
/// so far, the scopes of the block being checked, and the diagnostics.
pub(crate) struct Checker<'a> {
    /// Everything reported so far, in the order found.
    pub diags: Vec<Diagnostic>,
    /// The IR arenas, moved into [`ir::Program`] at the end.
    pub header_types: Vec<ir::HeaderType>,
    pub headers: Vec<ir::Header>,
    pub slots: Vec<ir::Slot>,
    pub exprs: Vec<ir::Expr>,
    pub extern_types: Vec<ir::ExternType>,
    pub extern_fns: Vec<ir::ExternFn>,
    pub instances: Vec<ir::Instance>,
    pub actions: Vec<ir::Action>,
    /// Parallel to `actions`.
    pub action_info: Vec<ActionInfo>,
    pub tables: Vec<ir::Table>,
    /// Parallel to `tables`.
    pub table_info: Vec<TableInfo>,
    /// Extern call sites numbered so far.
    pub call_sites: u32,
    /// `error` names declared so far, with where ([`ir::Program::errors`]).
    pub errors: Vec<(String, Span)>,
    /// Enums by name: the underlying type and the members' values.
    pub enums: HashMap<String, EnumDef>,
    /// Struct declarations, in order.
    pub structs: Vec<StructDef>,
    /// Header fields dropped because their types did not resolve, by header
    /// type: uses of them stay quiet.
    pub broken_fields: HashMap<ir::HeaderTypeId, Vec<String>>,
    /// Laid-out structs (`hdr`, `meta`, `std` and the structs nested in them).
    pub insts: Vec<StructInst>,
    /// Laid-out header stacks ([`Member::Stack`] indexes it).
    pub stacks: Vec<StackDef>,
    /// Top-level names declared so far.
    pub globals: HashMap<String, Global>,
    /// Every top-level name of both sources, to explain a use before the declaration.
    pub all_top: HashMap<String, Span>,
    /// Every name declared before the body of the block being checked, likewise.
    pub block_names: HashMap<String, Span>,
    /// Block scopes, innermost last.
    pub scopes: Vec<HashMap<String, (Binding, Span)>>,
    /// Slot names in use (names are unique; see [`Checker::new_slot`]).
    pub slot_names: HashSet<String>,
    /// Temporaries numbered so far.
    pub temps: u32,
    /// The block being checked.
    pub block: BlockCx,
    /// Parser and control declarations, in order; lowered once the package is known.
    pub parsers: Vec<&'a ast::ParserDecl>,
    pub controls: Vec<&'a ast::ControlDecl>,
    /// `Pipeline(...)` declarations (one is right).
    pub packages: Vec<&'a ast::InstanceDecl>,
    /// The pipeline's shared storage.
    pub layout: Layout,
    /// End of the user's program, where "missing" diagnostics point.
    pub user_end: Span,
    /// True while checking a block the pipeline does not use (its struct
    /// parameters may be of other types).
    pub checking_unused: bool,
}

impl<'a> Checker<'a> {
    fn new() -> Self {
        Checker {
            diags: Vec::new(),
            header_types: Vec::new(),
            headers: Vec::new(),
            slots: Vec::new(),
            exprs: Vec::new(),
            extern_types: Vec::new(),
            extern_fns: Vec::new(),
            instances: Vec::new(),
            actions: Vec::new(),
            action_info: Vec::new(),
            tables: Vec::new(),
            table_info: Vec::new(),
            call_sites: 0,
            errors: Vec::new(),
            enums: HashMap::new(),
            structs: Vec::new(),
            broken_fields: HashMap::new(),
            insts: Vec::new(),
            stacks: Vec::new(),
            globals: HashMap::new(),
            all_top: HashMap::new(),
            block_names: HashMap::new(),
            scopes: Vec::new(),
            slot_names: HashSet::new(),
            temps: 0,
            block: BlockCx { prefix: String::new(), kind: BlockKind::TopLevel, in_action: false },
            parsers: Vec::new(),
            controls: Vec::new(),
            packages: Vec::new(),
            layout: Layout::default(),
            user_end: Span::default(),
            checking_unused: false,
        }
    }

    /// All stages in order; `None` when the program has no parser or deparser to build IR from.
    fn run(&mut self, prelude: &'a ast::Program, user: &'a ast::Program) -> Option<ir::Program> {
        self.user_end = user.decls.last().map_or(Span::default(), |d| {
            let s = decls::decl_span(d);
            Span { lo: s.hi, ..s }
        });
        for d in prelude.decls.iter().chain(&user.decls) {
            if let Some(id) = decls::decl_name(d) {
                self.all_top.entry(id.name.clone()).or_insert(id.span);
            }
        }
        for d in prelude.decls.iter().chain(&user.decls) {
            self.declare(d);
        }
        self.pipeline()
    }

    /// Records an error.
    pub(crate) fn error(&mut self, code: &'static str, span: Span, msg: impl Into<String>, label: impl Into<String>) {
        self.diags.push(Diagnostic::error(code, span, msg, label));
    }

    /// Records a finished diagnostic.
    pub(crate) fn report(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    // ---- slots and expressions ----

    /// A new slot; the name is made unique with a `#n` suffix if needed.
    pub(crate) fn new_slot(&mut self, name: String, ty: ir::Ty, kind: ir::SlotKind) -> SlotId {
        let mut unique = name.clone();
        let mut n = 1;
        while self.slot_names.contains(&unique) {
            n += 1;
            unique = format!("{name}#{n}");
        }
        self.slot_names.insert(unique.clone());
        self.slots.push(ir::Slot { name: unique, ty, kind });
        SlotId(self.slots.len() as u32 - 1)
    }

    /// A checker temporary (`MyIngress.$t3`).
    pub(crate) fn temp(&mut self, ty: ir::Ty) -> SlotId {
        let n = self.temps;
        self.temps += 1;
        let name = if self.block.prefix.is_empty() { format!("$t{n}") } else { format!("{}.$t{n}", self.block.prefix) };
        self.new_slot(name, ty, ir::SlotKind::Temp)
    }

    /// A checker temporary named after what it holds, so that IR listings
    /// and trace lines (`Condition "!MyIngress.routes.apply().hit" is true`)
    /// read like the source; a second one of the same name gets `#2`.
    pub(crate) fn temp_named(&mut self, name: String, ty: ir::Ty) -> SlotId {
        self.temps += 1;
        self.new_slot(name, ty, ir::SlotKind::Temp)
    }

    /// The name a local called `name` gets in the current block.
    pub(crate) fn local_name(&self, name: &str) -> String {
        if self.block.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.block.prefix)
        }
    }

    /// Adds an expression node.
    pub(crate) fn push_expr(&mut self, kind: ir::ExprKind, ty: ir::Ty, span: Span) -> ExprId {
        self.exprs.push(ir::Expr { kind, ty, span });
        ExprId(self.exprs.len() as u32 - 1)
    }

    /// A read of a slot as an IR expression.
    pub(crate) fn read_slot(&mut self, slot: SlotId, span: Span) -> ExprId {
        let ty = self.slots[slot.index()].ty;
        self.push_expr(ir::ExprKind::Slot(slot), ty, span)
    }

    /// The next extern call site.
    pub(crate) fn next_site(&mut self) -> ir::CallSiteId {
        self.call_sites += 1;
        ir::CallSiteId(self.call_sites - 1)
    }

    // ---- scopes ----

    /// Enters a nested scope.
    pub(crate) fn push_scope(&mut self) {
        self.scopes.push(HashMap::new());
    }

    /// Leaves the innermost scope.
    pub(crate) fn pop_scope(&mut self) {
        self.scopes.pop();
    }

    /// Binds `name` in the innermost scope; a second binding of the same
    /// name in that scope is reported and ignored.
    pub(crate) fn bind(&mut self, name: &Ident, b: Binding) {
        if self.reserved(name) {
            return;
        }
        let Some(scope) = self.scopes.last_mut() else {
            return;
        };
        if let Some((_, first)) = scope.get(&name.name) {
            let first = *first;
            self.duplicate(name, first);
            return;
        }
        scope.insert(name.name.clone(), (b, name.span));
    }

    /// Reports a declaration of `verify`, core.p4's parser function, which
    /// calls find before any declaration (P4_16 has it declared already).
    fn reserved(&mut self, name: &Ident) -> bool {
        if name.name != "verify" {
            return false;
        }
        self.report(
            Diagnostic::error(
                "E0103",
                name.span,
                "`verify` is core.p4's function: the name is taken",
                "already declared",
            )
            .with_help("choose another name; `verify(condition, error.NAME)` rejects a packet in a parser"),
        );
        true
    }

    /// Reports `name` as defined twice.
    pub(crate) fn duplicate(&mut self, name: &Ident, first: Span) {
        let mut d = Diagnostic::error(
            "E0103",
            name.span,
            format!("`{}` is defined more than once", name.name),
            "defined again here",
        )
        .with_note(first, "first defined here");
        if first.source != name.span.source {
            d = d.with_help(format!("`{}` is already declared in the prelude; pick another name", name.name));
        }
        self.report(d);
    }

    /// Declares a top-level name (reporting a duplicate).
    pub(crate) fn declare_global(&mut self, name: &Ident, kind: GlobalKind) {
        if self.reserved(name) {
            return;
        }
        if let Some(g) = self.globals.get(&name.name) {
            let first = g.span;
            self.duplicate(name, first);
            return;
        }
        self.globals.insert(name.name.clone(), Global { kind, span: name.span });
    }

    /// The scope binding of `name`, innermost first.
    pub(crate) fn lookup_local(&self, name: &str) -> Option<&Binding> {
        self.scopes.iter().rev().find_map(|s| s.get(name).map(|(b, _)| b))
    }

    /// Every name visible here, for "did you mean" suggestions.
    pub(crate) fn visible_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.scopes.iter().flat_map(|s| s.keys().cloned()).collect();
        names.extend(self.globals.keys().cloned());
        names.sort();
        names.dedup();
        names
    }

    /// Reports an unknown name with a suggestion, or with a note when it is
    /// declared further down (declarations must come before their use).
    pub(crate) fn unknown_name(&mut self, code: &'static str, id: &Ident, msg: String, candidates: &[String]) {
        let mut d = Diagnostic::error(code, id.span, msg, "not found");
        if let Some(later) = [self.block_names.get(&id.name), self.all_top.get(&id.name)]
            .into_iter()
            .flatten()
            .copied()
            .find(|s| s.source == id.span.source && s.lo > id.span.lo)
        {
            d = d
                .with_note(later, "declared here, after its use")
                .with_help("declarations must come before their use; move this one up");
        } else if let Some(h) = v1model_hint(&id.name) {
            d = d.with_help(h);
        } else if let Some(s) = did_you_mean(&id.name, candidates.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.report(d);
    }

    /// Describes a type for messages: `bit<8>`, `bool`, `header ipv4_t`, `struct headers_t`.
    pub(crate) fn type_name(&self, t: Type) -> String {
        match t {
            Type::Bit(w) => format!("bit<{w}>"),
            Type::Bool => "bool".to_string(),
            Type::Header(h) => format!("header `{}`", self.header_types[h.index()].name),
            Type::Struct(s) => format!("struct `{}`", self.structs[s.0 as usize].name),
            Type::Extern(e) => format!("extern `{}`", self.extern_types[e.index()].name),
            Type::Stack(h, n) => format!("header stack `{}[{n}]`", self.header_types[h.index()].name),
            Type::Error => "?".to_string(),
        }
    }
}

/// The source form of an expression, compact (`hdr.ipv4.ttl`, `t.apply().hit`);
/// used for table key names and in messages.
pub(crate) fn expr_text(e: &ast::Expr) -> String {
    use ast::ExprKind as K;
    match &e.kind {
        K::Int { value, width } => match width {
            Some(w) => format!("{w}w{value}"),
            None => value.to_string(),
        },
        K::Bool(b) => b.to_string(),
        K::Name(id) => id.name.clone(),
        K::Member { base, member } => format!("{}.{}", expr_text(base), member.name),
        K::Call { callee, args, .. } => {
            format!("{}({})", expr_text(callee), args.iter().map(expr_text).collect::<Vec<_>>().join(", "))
        }
        K::Slice { base, hi, lo } => format!("{}[{}:{}]", expr_text(base), expr_text(hi), expr_text(lo)),
        K::Index { base, index } => format!("{}[{}]", expr_text(base), expr_text(index)),
        K::Unary { op, expr } => format!("{}{}", op.symbol(), expr_text(expr)),
        K::Binary { op, lhs, rhs } => format!("{} {} {}", expr_text(lhs), op.symbol(), expr_text(rhs)),
        K::Cast { expr, .. } => format!("(..){}", expr_text(expr)),
        K::Cond { cond, then, els } => format!("{} ? {} : {}", expr_text(cond), expr_text(then), expr_text(els)),
        K::List(items) => format!("{{{}}}", items.iter().map(expr_text).collect::<Vec<_>>().join(", ")),
    }
}

/// What p4lite offers instead of a name from P4_16's core.p4 or v1model.p4
/// that it does not have, for the help of an unknown name: a P4 programmer
/// reaches for these first, and "did you mean" would only guess.
pub(crate) fn v1model_hint(name: &str) -> Option<String> {
    let unsupported = |what: &str| {
        format!("p4lite does not have v1model's {what} (see \"Differences from P4_16\" in grammar/README.md)")
    };
    Some(match name {
        "V1Switch" => "p4lite's package is `Pipeline(parser, control..., deparser)`: list the blocks in order, \
                       e.g. `Pipeline(MyParser(), MyIngress(), MyEgress(), MyDeparser()) main;`"
            .to_string(),
        "update_checksum" => "p4lite has no checksum controls: compute the checksum \
             in a control with `csum16`, e.g. `hdr.ipv4.hdrChecksum = csum16({ ...every field but the checksum... });`"
            .to_string(),
        "update_checksum_with_payload" => "p4lite has no checksum controls: compute the checksum in a control with \
             `csum16_with_payload`, e.g. `hdr.udp.checksum = 0; hdr.udp.checksum = csum16_with_payload({ pseudo-header \
             fields, hdr.udp }, hdr.udp.length - 8);`"
            .to_string(),
        "verify_checksum" => "p4lite does not verify checksums: test one in a control, \
             e.g. `if (csum16(hdr.ipv4) != 0) { mark_to_drop(std); }`"
            .to_string(),
        "verify_checksum_with_payload" => "p4lite does not verify checksums: test one in a control with \
             `csum16_with_payload` (0 for a valid message), e.g. \
             `if (csum16_with_payload({ hdr.icmp }, payload_len) != 0) { mark_to_drop(std); }`"
            .to_string(),
        "hash" => "p4lite's hashes are functions: `hash_crc16({ ... })` and `hash_crc32({ ... })`; v1model's \
                   `base + h % max` for a power-of-two `max` is a slice, e.g. `(bit<32>) hash_crc16({ ... })[11:0]` for 4096"
            .to_string(),
        "HashAlgorithm" | "CounterType" | "MeterType" | "CloneType" => {
            format!("`{name}` is v1model's, for externs p4lite does not have: its externs take no such argument")
        }
        "error" => "`error.NAME` is only `verify`'s second argument: p4lite has no variables of type `error` \
                    and no `parser_error` (a packet the parser rejects is dropped)"
            .to_string(),
        "direct_counter" | "direct_meter" => unsupported("direct counters and meters; count in the action with a `counter`"),
        "meter" => unsupported("meters"),
        "random" => unsupported("`random`"),
        "clone" | "clone3" | "clone_preserving_field_list" => unsupported("cloning"),
        "resubmit" | "resubmit_preserving_field_list" | "recirculate" | "recirculate_preserving_field_list" => {
            unsupported("resubmission and recirculation")
        }
        "digest" => unsupported("digests"),
        "action_profile" | "action_selector" => unsupported("action profiles and selectors"),
        "log_msg" | "assert" | "assume" => unsupported(&format!("`{name}`; `p4lite run --trace` shows each packet's path")),
        _ => return None,
    })
}

/// What p4lite offers for a v1model `standard_metadata_t` field it does not
/// have, for the help of an unknown field.
pub(crate) fn v1model_std_field_hint(field: &str) -> Option<&'static str> {
    Some(match field {
        "egress_port" => {
            "p4lite runs every control before the packet leaves, so the port it leaves on is `egress_spec`"
        }
        "ingress_global_timestamp" | "egress_global_timestamp" => "the arrival time is `timestamp` (in nanoseconds)",
        "enq_qdepth" | "deq_qdepth" | "enq_timestamp" | "deq_timedelta" | "qid" | "priority" => {
            "p4lite's switch has no queues, so it has no queue metadata"
        }
        "instance_type" => "p4lite has no clones, resubmission or recirculation: every packet is a normal one",
        "egress_rid" => "p4lite's multicast copies carry no replication id",
        "parser_error" => "a packet the parser rejects is dropped before the controls run",
        "checksum_error" => "p4lite does not verify checksums",
        _ => return None,
    })
}
