//! The abstract syntax tree: what `syntax::parse` produces and `check` consumes.
//!
//! The tree mirrors the source closely (P4_16 in spirit) and holds no
//! resolved names or types; a [`Span`] sits on every node. `--emit ast`
//! prints it with `{:#?}`.

use crate::span::{Ident, Span};

/// A whole source file: its top-level declarations in source order.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// Top-level declarations, in source order.
    pub decls: Vec<Decl>,
}

/// A top-level declaration.
#[derive(Clone, Debug, PartialEq)]
pub enum Decl {
    /// `const bit<16> ETHERTYPE_IPV4 = 0x0800;`
    Const(ConstDecl),
    /// `typedef bit<48> mac_addr_t;`
    Typedef(TypedefDecl),
    /// `error { IPv4BadVersion, IPv4OptionsNotSupported }`
    Error(ErrorDecl),
    /// `enum bit<16> EtherType { IPV4 = 0x0800, ARP = 0x0806 }`
    Enum(EnumDecl),
    /// `header ipv4_t { bit<4> version; ... }`
    Header(StructLike),
    /// `struct metadata_t { bit<32> nhop; }`
    Struct(StructLike),
    /// `extern register<T> { register(bit<32> size); void read(out T r, in bit<32> i); }`
    Extern(ExternDecl),
    /// `extern void mark_to_drop(inout standard_metadata_t std);`
    ExternFn(MethodSig),
    /// A top-level action (the prelude's `action NoAction() {}`), usable by every control.
    Action(ActionDecl),
    /// `parser MyParser(packet_in pkt, out headers_t hdr, ...) { state start { ... } }`
    Parser(ParserDecl),
    /// `control MyIngress(inout headers_t hdr, ...) { ... apply { ... } }`
    Control(ControlDecl),
    /// `counter(1024) c;` or the package: `Pipeline(MyParser(), MyIngress(), MyDeparser()) main;`
    Instance(InstanceDecl),
}

/// `enum [TYPE] NAME { MEMBER [= VALUE], ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct EnumDecl {
    /// The underlying type of a serializable enum.
    pub ty: Option<TypeRef>,
    pub name: Ident,
    pub members: Vec<(Ident, Option<Expr>)>,
    pub span: Span,
}

/// `error { NAME, ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorDecl {
    pub names: Vec<Ident>,
    pub span: Span,
}

/// `const TYPE NAME = EXPR;`
#[derive(Clone, Debug, PartialEq)]
pub struct ConstDecl {
    pub ty: TypeRef,
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

/// `typedef TYPE NAME;`
#[derive(Clone, Debug, PartialEq)]
pub struct TypedefDecl {
    pub ty: TypeRef,
    pub name: Ident,
    pub span: Span,
}

/// A `header` or `struct` declaration: a name and ordered fields.
#[derive(Clone, Debug, PartialEq)]
pub struct StructLike {
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

/// One field of a header or struct: `TYPE NAME;`, or a header stack
/// `TYPE[SIZE] NAME;` (structs only; the checker says so elsewhere).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDecl {
    pub ty: TypeRef,
    /// `SIZE` of a header stack `TYPE[SIZE] NAME;`.
    pub stack: Option<Expr>,
    pub name: Ident,
    pub span: Span,
}

/// A type as written.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeRef {
    pub kind: TypeRefKind,
    pub span: Span,
}

/// The kinds of written types.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeRefKind {
    /// `bit<W>`; the width as written (the checker enforces 1..=128).
    Bit(u32),
    /// `bit<(EXPR)>`: the width as a parenthesized compile-time constant
    /// (P4_16's form for a width that is not a literal, e.g. `bit<(W + 1)>`).
    BitOf(Box<Expr>),
    /// `bool`
    Bool,
    /// `void` (extern return types only)
    Void,
    /// A named type, possibly with type arguments: `ipv4_t`, `register<bit<32>>`, `T`.
    Named { name: Ident, args: Vec<TypeRef> },
}

/// `extern NAME<T, ...> { constructors and methods }`
#[derive(Clone, Debug, PartialEq)]
pub struct ExternDecl {
    pub name: Ident,
    pub type_params: Vec<Ident>,
    /// Constructor signatures (methods named like the extern, without a return type).
    pub constructors: Vec<MethodSig>,
    /// Method signatures.
    pub methods: Vec<MethodSig>,
    pub span: Span,
}

/// A method, constructor or extern function signature:
/// `RET NAME<T...>(DIR TYPE NAME, ...);`. Constructors have `ret: None`.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodSig {
    pub ret: Option<TypeRef>,
    pub name: Ident,
    pub type_params: Vec<Ident>,
    pub params: Vec<Param>,
    pub span: Span,
}

/// Parameter direction, as in P4_16. No direction means `in` for values
/// (and for action parameters: "from the control plane").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
    InOut,
}

/// `[DIR] TYPE NAME`
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub dir: Option<Direction>,
    pub ty: TypeRef,
    pub name: Ident,
    pub span: Span,
}

/// `TYPE(ARGS) NAME;` — an extern instance or the top-level package.
/// For the package the arguments are block instantiations (`MyParser()`),
/// i.e. `Call` expressions with no arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceDecl {
    pub ty: TypeRef,
    pub args: Vec<Expr>,
    pub name: Ident,
    pub span: Span,
}

/// `parser NAME(PARAMS) { LOCALS STATES }`
#[derive(Clone, Debug, PartialEq)]
pub struct ParserDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    /// Local variables, constants and extern instances declared before the states.
    pub locals: Vec<LocalDecl>,
    pub states: Vec<StateDecl>,
    pub span: Span,
}

/// `state NAME { STATEMENTS transition ...; }`
#[derive(Clone, Debug, PartialEq)]
pub struct StateDecl {
    pub name: Ident,
    pub body: Vec<Stmt>,
    /// `None` when the state has no `transition` (the checker reports it).
    pub transition: Option<Transition>,
    pub span: Span,
}

/// The end of a parser state.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// `transition NAME;` (NAME may be `accept` or `reject`).
    Direct(Ident),
    /// `transition select(E1, E2) { CASES }`
    Select { exprs: Vec<Expr>, cases: Vec<SelectCase>, span: Span },
}

/// `KEYSETS: NEXT;` — one keyset per select expression (a tuple `(a, b)` when several).
#[derive(Clone, Debug, PartialEq)]
pub struct SelectCase {
    pub keysets: Vec<Keyset>,
    pub next: Ident,
    pub span: Span,
}

/// A keyset in a `select` case or a const table entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Keyset {
    pub kind: KeysetKind,
    pub span: Span,
}

/// The kinds of keysets.
#[derive(Clone, Debug, PartialEq)]
pub enum KeysetKind {
    /// A value: matches when equal.
    Value(Expr),
    /// `value &&& mask`
    Mask(Expr, Expr),
    /// `lo .. hi` (inclusive)
    Range(Expr, Expr),
    /// `value / prefix_len` (lpm keys of const entries only)
    Prefix(Expr, Expr),
    /// `default` or `_`: matches anything.
    Default,
}

/// `control NAME(PARAMS) { LOCALS apply { ... } }`
#[derive(Clone, Debug, PartialEq)]
pub struct ControlDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    /// Actions, tables, variables, constants and extern instances, in source order.
    pub locals: Vec<LocalDecl>,
    pub apply: Block,
    pub span: Span,
}

/// Something declared inside a parser or control, before its body.
#[derive(Clone, Debug, PartialEq)]
pub enum LocalDecl {
    Var(VarDecl),
    Const(ConstDecl),
    Instance(InstanceDecl),
    Action(ActionDecl),
    Table(TableDecl),
}

/// `TYPE NAME [= EXPR];`
#[derive(Clone, Debug, PartialEq)]
pub struct VarDecl {
    pub ty: TypeRef,
    pub name: Ident,
    pub init: Option<Expr>,
    pub span: Span,
}

/// `action NAME(PARAMS) { BODY }` — directionless parameters come from table entries.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: Block,
    pub span: Span,
}

/// `table NAME { PROPERTIES }`
#[derive(Clone, Debug, PartialEq)]
pub struct TableDecl {
    pub name: Ident,
    pub props: Vec<TableProp>,
    pub span: Span,
}

/// One table property.
#[derive(Clone, Debug, PartialEq)]
pub enum TableProp {
    /// `key = { EXPR : MATCH_KIND; ... }`
    Key { elems: Vec<KeyElem>, span: Span },
    /// `actions = { NAME; ... }`
    Actions { actions: Vec<Ident>, span: Span },
    /// `[const] default_action = NAME(ARGS);`
    DefaultAction { is_const: bool, action: Ident, args: Vec<Expr>, span: Span },
    /// `size = EXPR;`
    Size { value: Expr, span: Span },
    /// `[const] entries = { ENTRY ... }`
    Entries { is_const: bool, entries: Vec<EntryDecl>, span: Span },
    /// Any other `NAME = EXPR;` (the checker reports it as unknown).
    Other { name: Ident, value: Expr, span: Span },
}

/// `EXPR : MATCH_KIND;` (optionally `@name("x")` is not supported).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyElem {
    pub expr: Expr,
    pub match_kind: Ident,
    pub span: Span,
}

/// A const entry: `KEYSETS : ACTION(ARGS) [@priority(N)];` — keysets as in `select`,
/// plus `value / prefix_len` for lpm keys. Several keys are written as a tuple `(k1, k2)`.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryDecl {
    pub keysets: Vec<Keyset>,
    pub action: Ident,
    pub args: Vec<Expr>,
    pub priority: Option<Expr>,
    pub span: Span,
}

/// `{ STATEMENTS }`
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

/// The kinds of statements.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `LVALUE = EXPR;`
    Assign { lhs: Expr, rhs: Expr },
    /// `EXPR;`: a call (`t.apply();`, `pkt.extract(hdr.x);`, `drop();`, `c.count(0);`);
    /// the checker reports any other expression (E0306).
    Call(Expr),
    /// `TYPE NAME [= EXPR];` inside a block.
    Var(VarDecl),
    /// `const TYPE NAME = EXPR;` inside a block.
    Const(ConstDecl),
    /// `if (COND) BLOCK [else BLOCK-or-if]`
    If { cond: Expr, then: Block, els: Option<Block> },
    /// `switch (t.apply().action_run) { a: { ... } b: c: { ... } default: { ... } }`
    Switch { expr: Expr, cases: Vec<SwitchCase> },
    /// A nested `{ ... }`.
    Block(Block),
    /// `exit;`
    Exit,
    /// `return;`
    Return,
}

/// `LABEL: [BLOCK]` — a label without a block falls through to the next case's block.
#[derive(Clone, Debug, PartialEq)]
pub struct SwitchCase {
    /// An action name, or `None` for `default`.
    pub label: Option<Ident>,
    pub body: Option<Block>,
    pub span: Span,
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// The kinds of expressions.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal: `42`, `0x0800`, `0b101`, `8w255`, `16w0x800`.
    /// `width` is set by the `Nw` prefix; IPv4 (`10.0.0.1`) and MAC
    /// (`00:11:22:33:44:55`) literals get widths 32 and 48.
    Int { value: u128, width: Option<u16> },
    /// `true` / `false`
    Bool(bool),
    /// A name: a variable, parameter, constant, table, action, instance, state...
    Name(Ident),
    /// `BASE.MEMBER`: fields (`hdr.ipv4.ttl`), `t.apply().hit`, `pkt.extract`.
    Member { base: Box<Expr>, member: Ident },
    /// `CALLEE<TYPE_ARGS>(ARGS)`: `pkt.extract(hdr.x)`, `pkt.lookahead<bit<8>>()`, `drop()`.
    Call { callee: Box<Expr>, type_args: Vec<TypeRef>, args: Vec<Expr> },
    /// `EXPR[HI:LO]` (HI and LO are compile-time integers)
    Slice { base: Box<Expr>, hi: Box<Expr>, lo: Box<Expr> },
    /// `STACK[INDEX]`: an element of a header stack (`hdr.mpls[0]`).
    Index { base: Box<Expr>, index: Box<Expr> },
    /// Prefix operators.
    Unary { op: UnOp, expr: Box<Expr> },
    /// Infix operators (see the precedence table in `grammar/README.md`).
    Binary { op: BinOp, lhs: Box<Expr>, rhs: Box<Expr> },
    /// `(TYPE) EXPR`
    Cast { ty: TypeRef, expr: Box<Expr> },
    /// `COND ? A : B`
    Cond { cond: Box<Expr>, then: Box<Expr>, els: Box<Expr> },
    /// `{ A, B, C }` — a list, passed to extern parameters like `csum16`'s data.
    List(Vec<Expr>),
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    /// `-x` (two's complement, wrapping)
    Neg,
    /// `~x`
    BitNot,
    /// `!b`
    Not,
}

/// Infix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Mul,
    Add,
    Sub,
    /// `|+|`: the sum, or 2^W − 1 when it does not fit (P4_16 §8.6).
    SatAdd,
    /// `|-|`: the difference, or 0 when it would be negative.
    SatSub,
    Shl,
    Shr,
    BitAnd,
    BitXor,
    BitOr,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    /// The operator as written in source.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Mul => "*",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::SatAdd => "|+|",
            BinOp::SatSub => "|-|",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::BitAnd => "&",
            BinOp::BitXor => "^",
            BinOp::BitOr => "|",
            BinOp::Concat => "++",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

impl UnOp {
    /// The operator as written in source.
    pub fn symbol(self) -> &'static str {
        match self {
            UnOp::Neg => "-",
            UnOp::BitNot => "~",
            UnOp::Not => "!",
        }
    }
}
