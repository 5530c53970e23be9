//! The checked intermediate representation.
//!
//! Only `check` builds a [`Program`]; the interpreter, the JIT and the
//! emitters take it as given and never re-validate. Everything refers to
//! everything else by typed ids into the arenas of [`Program`].
//!
//! # Storage model
//! Every scalar the pipeline reads or writes is a [`Slot`]: each header
//! field, each header's validity bit, each metadata field (nested structs are
//! flattened), each standard-metadata field, each control or parser local,
//! each action parameter and each checker temporary. A slot holds a value of
//! at most 128 bits. **All slots are zero when a packet enters the pipeline**
//! (headers invalid, metadata and locals zero) so both backends are
//! deterministic.
//!
//! # Expression semantics
//! Expressions are pure (calls are statements). `bit<W>` arithmetic wraps
//! modulo 2^W, except the saturating `a |+| b` (2^W − 1 when the sum does
//! not fit) and `a |-| b` (0 when `b > a`); `a << n` and `a >> n` give 0
//! when `n >= W`; comparisons and
//! `!`, `&&`, `||` yield `bool`; `a ++ b` puts `a` in the high bits.
//! A [`ExprKind::Cast`] converts to its own `ty`: zero-extend or truncate
//! between `bit` widths, `bool` to `bit<1>` and back.
//!
//! # Control flow
//! Parser and controls are petgraph graphs. A control or action body is a
//! [`Body`]: basic blocks whose [`Terminator`] names its successors; the
//! graph's edges are exactly those successors, labelled by [`Edge`]
//! (an invariant the checker keeps, so analyses and `--emit dot` may walk
//! the edges while the backends read terminators).

use petgraph::graph::{DiGraph, NodeIndex};

pub use crate::ast::{BinOp, UnOp};
use crate::span::Span;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);
        impl $name {
            /// The index into the owning arena.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

id_type!(
    /// Index into [`Program::slots`].
    SlotId
);
id_type!(
    /// Index into [`Program::exprs`].
    ExprId
);
id_type!(
    /// Index into [`Program::header_types`].
    HeaderTypeId
);
id_type!(
    /// Index into [`Program::headers`].
    HeaderId
);
id_type!(
    /// Index into [`Program::actions`].
    ActionId
);
id_type!(
    /// Index into [`Program::tables`].
    TableId
);
id_type!(
    /// Index into [`Program::extern_types`].
    ExternTypeId
);
id_type!(
    /// Index into [`Program::extern_fns`].
    ExternFnId
);
id_type!(
    /// Index into [`Program::instances`].
    InstanceId
);
id_type!(
    /// Numbers every extern call site in the program, `0..Program::call_sites`;
    /// the runtime binds each site to its implementation once, before packets flow.
    CallSiteId
);

/// A checked, lowered p4lite program.
#[derive(Clone, Debug)]
pub struct Program {
    /// Header types, in declaration order.
    pub header_types: Vec<HeaderType>,
    /// Header instances of the headers struct, in declaration order (nested structs flattened).
    pub headers: Vec<Header>,
    /// Every scalar storage location.
    pub slots: Vec<Slot>,
    /// Every expression node.
    pub exprs: Vec<Expr>,
    /// Extern object types (prelude and user), in declaration order.
    pub extern_types: Vec<ExternType>,
    /// Extern functions (prelude and user), in declaration order.
    pub extern_fns: Vec<ExternFn>,
    /// Extern object instances (top level first, then per block).
    pub instances: Vec<Instance>,
    /// Actions of all controls.
    pub actions: Vec<Action>,
    /// Tables of all controls.
    pub tables: Vec<Table>,
    /// The number of extern call sites (ids `0..call_sites`).
    pub call_sites: u32,
    /// The names of P4_16's `error` values in declaration order (core.p4's
    /// from the prelude first); [`StmtKind::Verify`] indexes it.
    pub errors: Vec<String>,
    /// The parser.
    pub parser: Parser,
    /// The controls between parser and deparser, in pipeline order.
    pub controls: Vec<Control>,
    /// The deparser.
    pub deparser: Deparser,
    /// Where the standard metadata fields live.
    pub std: StdSlots,
}

/// The standard metadata fields the switch reads and writes
/// (`standard_metadata_t` in the prelude).
#[derive(Clone, Copy, Debug)]
pub struct StdSlots {
    /// `bit<9> ingress_port`: set when the packet starts, before the parser runs.
    pub ingress_port: SlotId,
    /// `bit<9> egress_spec`: the output port chosen by the program.
    pub egress_spec: SlotId,
    /// `bit<32> packet_length`: bytes, set when the packet starts.
    pub packet_length: SlotId,
    /// `bit<64> timestamp`: the packet's time in nanoseconds (capture time in replay).
    pub timestamp: SlotId,
    /// `bit<16> mcast_grp`: when nonzero, the packet is replicated to that group's ports.
    pub mcast_grp: SlotId,
    /// `bit<1> drop`: set by `mark_to_drop`; the packet is dropped after the controls.
    pub drop: SlotId,
}

/// A scalar type: what a slot or expression holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// `bit<W>`, 1 <= W <= 128.
    Bit(u16),
    /// `bool` (stored as 0 or 1).
    Bool,
}

impl Ty {
    /// Width in bits (`bool` is 1).
    pub fn width(self) -> u16 {
        match self {
            Ty::Bit(w) => w,
            Ty::Bool => 1,
        }
    }

    /// The mask of the low `width()` bits.
    pub fn mask(self) -> u128 {
        let w = self.width();
        if w >= 128 {
            u128::MAX
        } else {
            (1u128 << w) - 1
        }
    }
}

/// A header type: ordered fields whose widths add up to whole bytes.
#[derive(Clone, Debug)]
pub struct HeaderType {
    pub name: String,
    /// `(name, width in bits)` in wire order.
    pub fields: Vec<(String, u16)>,
    /// Sum of the field widths (a multiple of 8).
    pub bit_len: u32,
    pub span: Span,
}

/// A header instance (`hdr.ipv4`).
#[derive(Clone, Debug)]
pub struct Header {
    /// The access path, e.g. `hdr.ipv4` (with the parser's parameter name).
    pub name: String,
    pub ty: HeaderTypeId,
    /// One slot per field, in wire order.
    pub fields: Vec<SlotId>,
    /// The validity bit (`Ty::Bool`).
    pub valid: SlotId,
    /// Size on the wire in bytes.
    pub byte_len: u32,
    pub span: Span,
}

/// A scalar storage location.
#[derive(Clone, Debug)]
pub struct Slot {
    /// A readable path: `hdr.ipv4.ttl`, `meta.nhop`, `std.egress_spec`,
    /// `MyIngress.tmp`, `MyIngress.forward.port`, `$t3`.
    pub name: String,
    pub ty: Ty,
    pub kind: SlotKind,
}

/// What a slot stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// Field `field` (index into the header type's fields) of a header.
    HeaderField { header: HeaderId, field: u32 },
    /// A header's validity bit.
    HeaderValid(HeaderId),
    /// A field of the user metadata struct.
    Meta,
    /// A field of the standard metadata.
    Std,
    /// A variable declared in a parser, control or action.
    Local,
    /// Parameter `index` of an action.
    ActionParam { action: ActionId, index: u32 },
    /// A value the checker introduced (hoisted calls, `hit`, `action_run`).
    Temp,
}

/// An expression node; its operands are other ids.
#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    /// The result type.
    pub ty: Ty,
    pub span: Span,
}

/// The kinds of expressions (semantics in the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExprKind {
    /// A constant that fits `ty`.
    Const(u128),
    /// Read a slot.
    Slot(SlotId),
    /// `-a`, `~a`, `!a`
    Unary(UnOp, ExprId),
    /// Binary operators. Arithmetic and bitwise operands have the result's
    /// width; shift amounts may have any width; comparisons compare equal
    /// widths; `&&` and `||` take and give `bool`.
    Binary(BinOp, ExprId, ExprId),
    /// Bits `hi..=lo` of `base` (`ty` is `bit<hi-lo+1>`).
    Slice { base: ExprId, hi: u16, lo: u16 },
    /// Convert to `ty` (see module docs).
    Cast(ExprId),
    /// `c ? a : b`
    Cond(ExprId, ExprId, ExprId),
    /// Parser only: the next `ty.width()` bits at the cursor, without consuming
    /// them; if the packet has fewer bits left, the parser rejects.
    Lookahead,
}

/// A place an assignment writes: a slot, or bits `hi..=lo` of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LValue {
    pub slot: SlotId,
    pub slice: Option<(u16, u16)>,
}

/// A statement.
#[derive(Clone, Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

/// The kinds of statements.
#[derive(Clone, Debug)]
pub enum StmtKind {
    /// `dst = src`
    Assign { dst: LValue, src: ExprId },
    /// `h.setValid()` / `h.setInvalid()` (fields keep their values).
    SetValid { header: HeaderId, valid: bool },
    /// Parser only: `pkt.extract(h)`. Reads `byte_len` bytes at the cursor into
    /// the header's fields, sets it valid and advances; rejects if the packet is too short.
    Extract { header: HeaderId },
    /// Parser only: `pkt.extract(stack.next)` on a header stack lowered to
    /// the headers `elems` (element `i` is `elems[i]`) and the stack's
    /// next-index slot `next` (`bit<32>`, zero when the packet starts):
    /// when `next` < `elems.len()`, extracts `elems[next]` as
    /// [`StmtKind::Extract`] does and adds 1 to `next`; otherwise the
    /// parser stops with [`crate::abi::Verdict::StackOutOfBounds`]
    /// (P4_16's `error.StackOutOfBounds`).
    ExtractNext { elems: Vec<HeaderId>, next: SlotId },
    /// Parser only: `pkt.advance(bits)`: skips bits (a multiple of 8); rejects if too short.
    Advance { bits: ExprId },
    /// Parser only: `verify(cond, error.E)`: when `cond` (a `Bool`) is false
    /// the parser stops as a reject of the current state with error `E`
    /// (an index into [`Program::errors`]; P4_16 §12.7).
    Verify { cond: ExprId, error: u32 },
    /// Run an action directly, binding its parameters to `args`.
    CallAction { action: ActionId, args: Vec<ExprId> },
    /// Apply a table: look up its key, run the chosen action with the entry's
    /// parameters, and store whether an entry matched (`Bool`) and the id of the
    /// action that ran (`bit<32>`, an [`ActionId`]) when the program uses them.
    Apply { table: TableId, hit: Option<SlotId>, action_run: Option<SlotId> },
    /// Call an extern function or method; `ret` receives its result, if any.
    Extern { call: ExternCall, ret: Option<SlotId> },
}

/// One extern call site.
#[derive(Clone, Debug)]
pub struct ExternCall {
    pub site: CallSiteId,
    pub callee: Callee,
    pub args: Vec<ExternArg>,
}

/// What an extern call calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callee {
    /// An extern function.
    Function(ExternFnId),
    /// Method `method` (index into [`ExternType::methods`]) of an instance.
    Method { instance: InstanceId, method: u32 },
}

/// An argument of an extern call, by direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternArg {
    /// An `in` scalar.
    In(ExprId),
    /// An `out` scalar: the callee writes the slot.
    Out(SlotId),
    /// An `inout` scalar: the callee reads and writes the slot.
    InOut(SlotId),
    /// An `in` list or header, passed as the big-endian concatenation of its
    /// elements (whole bytes; a header passes its fields in wire order).
    List(Vec<ExprId>),
}

/// A code body (a control's `apply` or an action): basic blocks in a graph.
#[derive(Clone, Debug)]
pub struct Body {
    pub graph: DiGraph<BasicBlock, Edge>,
    pub entry: NodeIndex,
}

/// Straight-line statements and how the block ends.
#[derive(Clone, Debug)]
pub struct BasicBlock {
    pub stmts: Vec<Stmt>,
    pub term: Terminator,
}

/// How a basic block ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Terminator {
    /// Continue at another block.
    Goto(NodeIndex),
    /// Branch on a `bool` expression.
    Branch { cond: ExprId, then: NodeIndex, els: NodeIndex },
    /// Branch on the `action_run` slot of an earlier [`StmtKind::Apply`].
    Switch { value: SlotId, cases: Vec<(ActionId, NodeIndex)>, default: NodeIndex },
    /// The body ends normally (end of `apply`, `return`, end of an action).
    Return,
    /// `exit`: ends the body and the control it runs in; the next control
    /// of the pipeline (or the deparser) runs next.
    Exit,
}

/// Edge labels of a [`Body`] graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    Goto,
    True,
    False,
    Case(ActionId),
    Default,
}

/// A match on one key component (select cases and table entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyMatch {
    /// Equal to the value.
    Exact(u128),
    /// `key & mask == value & mask`.
    Mask { value: u128, mask: u128 },
    /// `lo <= key <= hi`.
    Range { lo: u128, hi: u128 },
    /// The top `len` bits equal those of `value`.
    Prefix { value: u128, len: u16 },
    /// Anything (`default`, `_`).
    Any,
}

/// The parser: states in a graph, starting at `start`.
#[derive(Clone, Debug)]
pub struct Parser {
    pub name: String,
    /// Edges run from a state to the states its select arms name (label: arm index).
    pub graph: DiGraph<ParserState, usize>,
    pub start: NodeIndex,
    pub span: Span,
}

/// One parser state.
#[derive(Clone, Debug)]
pub struct ParserState {
    pub name: String,
    /// `Extract`, `Advance`, `Assign`, `SetValid` and `Extern` only.
    pub stmts: Vec<Stmt>,
    /// The select expressions; empty for a direct transition.
    pub select: Vec<ExprId>,
    /// Tried in order; the first arm whose keys all match wins. A direct
    /// transition is one arm with no keys. No arm matching means reject.
    pub arms: Vec<SelectArm>,
    pub span: Span,
}

/// `keys: next`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectArm {
    /// One per select expression (empty for a direct transition).
    pub keys: Vec<KeyMatch>,
    pub next: Next,
    pub span: Span,
}

/// Where a parser transition goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    State(NodeIndex),
    Accept,
    Reject,
}

/// A control block between parser and deparser.
#[derive(Clone, Debug)]
pub struct Control {
    pub name: String,
    pub body: Body,
    pub span: Span,
}

/// An action.
#[derive(Clone, Debug)]
pub struct Action {
    /// Qualified: `MyIngress.forward`.
    pub name: String,
    /// One slot per parameter, in order.
    pub params: Vec<SlotId>,
    pub body: Body,
    pub span: Span,
}

/// Match kinds of table keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchKind {
    Exact,
    Lpm,
    Ternary,
    Range,
}

/// One key component of a table.
#[derive(Clone, Debug)]
pub struct TableKey {
    pub expr: ExprId,
    pub kind: MatchKind,
    /// The key as written (`hdr.ipv4.dst_addr`), for traces and the control plane.
    pub name: String,
    pub width: u16,
}

/// An action with constant arguments (default actions, const entries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionCall {
    pub action: ActionId,
    pub args: Vec<u128>,
}

/// A const entry written in the program.
#[derive(Clone, Debug)]
pub struct ConstEntry {
    pub keys: Vec<KeyMatch>,
    pub call: ActionCall,
    pub priority: Option<u32>,
    pub span: Span,
}

/// A match-action table.
#[derive(Clone, Debug)]
pub struct Table {
    /// Qualified: `MyIngress.routes`.
    pub name: String,
    pub keys: Vec<TableKey>,
    /// The actions entries may name, in declaration order.
    pub actions: Vec<ActionId>,
    /// Runs on a miss (`NoAction` from the prelude when not written).
    pub default_action: ActionCall,
    /// `const default_action`: the control plane may not change it.
    pub default_const: bool,
    /// Capacity (`size`; 1024 when not written).
    pub size: u32,
    /// Entries from the program.
    pub entries: Vec<ConstEntry>,
    /// `const entries`: the control plane may not add or delete.
    pub entries_const: bool,
    pub span: Span,
}

impl Table {
    /// Every action an apply of the table may run, each once, by id: its
    /// `actions`, its default and its program entries' (which the checker
    /// keeps within `actions`; counted all the same).
    pub fn runnable_actions(&self) -> Vec<ActionId> {
        let mut actions = self.actions.clone();
        actions.push(self.default_action.action);
        actions.extend(self.entries.iter().map(|e| e.call.action));
        actions.sort();
        actions.dedup();
        actions
    }
}

/// The deparser: headers emitted in order (only valid ones are written),
/// followed by the rest of the packet.
#[derive(Clone, Debug)]
pub struct Deparser {
    pub name: String,
    pub emits: Vec<HeaderId>,
    pub span: Span,
}

/// A parameter or return type in an extern signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigTy {
    /// `bit<W>` or `bool`.
    Scalar(Ty),
    /// A type parameter (index into the extern's, then the method's, type parameters).
    Param(String),
    /// A named struct type (e.g. `standard_metadata_t`).
    Struct(String),
}

/// Direction of an extern parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    In,
    Out,
    InOut,
}

/// One parameter of an extern signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSig {
    pub name: String,
    pub dir: Dir,
    pub ty: SigTy,
}

/// A method (or function) signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodSig {
    pub name: String,
    pub type_params: Vec<String>,
    pub params: Vec<ParamSig>,
    /// `None` for `void`.
    pub ret: Option<SigTy>,
}

/// An extern object type, as declared (`extern register<T> { ... }`).
#[derive(Clone, Debug)]
pub struct ExternType {
    pub name: String,
    pub type_params: Vec<String>,
    pub constructors: Vec<Vec<ParamSig>>,
    pub methods: Vec<MethodSig>,
    pub span: Span,
}

/// An extern function (`extern bit<16> csum16<D>(in D data);`).
#[derive(Clone, Debug)]
pub struct ExternFn {
    pub sig: MethodSig,
    pub span: Span,
}

/// An extern instance (`register<bit<32>>(1024) r;`).
#[derive(Clone, Debug)]
pub struct Instance {
    /// Qualified when declared in a block: `MyIngress.r`.
    pub name: String,
    pub ty: ExternTypeId,
    /// Concrete types for the extern's type parameters.
    pub type_args: Vec<Ty>,
    /// Constructor arguments (compile-time constants).
    pub ctor_args: Vec<u128>,
    pub span: Span,
}

impl Program {
    /// The slot `id`.
    pub fn slot(&self, id: SlotId) -> &Slot {
        &self.slots[id.index()]
    }

    /// The expression `id`.
    pub fn expr(&self, id: ExprId) -> &Expr {
        &self.exprs[id.index()]
    }

    /// The table `id`.
    pub fn table(&self, id: TableId) -> &Table {
        &self.tables[id.index()]
    }

    /// The action `id`.
    pub fn action(&self, id: ActionId) -> &Action {
        &self.actions[id.index()]
    }

    /// The header `id`.
    pub fn header(&self, id: HeaderId) -> &Header {
        &self.headers[id.index()]
    }

    /// The signature a call site calls.
    pub fn callee_sig(&self, callee: Callee) -> &MethodSig {
        match callee {
            Callee::Function(f) => &self.extern_fns[f.index()].sig,
            Callee::Method { instance, method } => {
                let ty = self.instances[instance.index()].ty;
                &self.extern_types[ty.index()].methods[method as usize]
            }
        }
    }

    /// A table by qualified name (`MyIngress.routes`) or, when unique, by its
    /// unqualified name (`routes`), as BMv2's CLI accepts.
    pub fn find_table(&self, name: &str) -> Option<TableId> {
        find_by_name(self.tables.iter().map(|t| t.name.as_str()), name).map(|i| TableId(i as u32))
    }

    /// An action by qualified or unique unqualified name.
    pub fn find_action(&self, name: &str) -> Option<ActionId> {
        find_by_name(self.actions.iter().map(|a| a.name.as_str()), name).map(|i| ActionId(i as u32))
    }
}

/// Exact match of a qualified name, else the unique entry whose last
/// dotted component equals `name`.
fn find_by_name<'a>(names: impl Iterator<Item = &'a str> + Clone, name: &str) -> Option<usize> {
    if let Some(i) = names.clone().position(|n| n == name) {
        return Some(i);
    }
    let mut found = None;
    for (i, n) in names.enumerate() {
        if n.rsplit('.').next() == Some(name) {
            if found.is_some() {
                return None;
            }
            found = Some(i);
        }
    }
    found
}
