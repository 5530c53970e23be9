//! Random programs: expression code generation against an evaluator written
//! here, from P4_16's rules, and the JIT against the interpreter.
//!
//! `tests/differential.rs` runs random packets through fixed programs; this
//! test runs random *programs*. Each one extracts a header of fields of
//! random widths (1 to 128 bits), computes a header of results with random
//! expression trees over those fields and the results before them (`+ -
//! |+| |-| *
//! & | ^ ~ -`, shifts by constants and by fields, `++`, slices, casts,
//! comparisons, `! && ||`, `?:`, `if`/`else`, local variables, assignments
//! to the input fields and slices of them), and emits both headers; its
//! parser picks a state with a random `select` over one or two fields
//! (values, masks, ranges, `_`, `default`, `reject`, no match), and its
//! control first applies a table of one or two keys (exact, lpm, ternary,
//! range) whose entries the control plane adds (BMv2's ranking: longest
//! prefix, else the smallest priority, ties to the earliest). Every
//! packet's output must be the same from both backends, and equal to what
//! [`Expr::eval`] computes from the packet: a second implementation of the
//! operators that shares nothing with the compiler, so a bug in the checker's
//! constant folding or typing, which both backends would inherit from the
//! IR, is caught too. Expressions are printed with the parentheses the
//! P4_16 precedence needs and no more (about half the time), so the
//! parser's precedence is under test as well.
//!
//! `P4LITE_RANDOM_PROGRAMS` (default 1000, about 3 s) programs of
//! `P4LITE_RANDOM_PACKETS` (default 60) packets; `P4LITE_RANDOM_SEED`
//! picks other seeds. A failure prints the program, the packet and the
//! fields that differ.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Packets forwarded, of those the ones the table hit, and packets a
/// select rejected (so the test can tell it still exercises both).
static FORWARDED: AtomicU64 = AtomicU64::new(0);
static TABLE_HITS: AtomicU64 = AtomicU64::new(0);
static REJECTED: AtomicU64 = AtomicU64::new(0);

use p4lite_compiler::rng::Rng;
use p4lite_compiler::span::Sources;
use p4lite_runtime::switch::{Backend, DropReason, OutPacket, Outcome, Switch, SwitchOptions};

/// Field widths to draw from: byte multiples, their neighbours, odd widths.
const WIDTHS: [u32; 27] =
    [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 23, 24, 31, 32, 33, 47, 48, 63, 64, 65, 96, 100, 127, 128, 6];

fn mask(w: u32) -> u128 {
    if w >= 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    }
}

/// A value of `w` bits: half the time one at an edge of the range.
fn value(r: &mut Rng, w: u32) -> u128 {
    let m = mask(w);
    match r.below(10) {
        0 => 0,
        1 => 1 & m,
        2 => m,
        3 => m - 1,
        4 => 1u128 << (w - 1),
        5 => (1u128 << (w - 1)) - 1,
        _ => ((u128::from(r.next()) << 64) | u128::from(r.next())) & m,
    }
}

/// Binary operators on two operands of one width, result of that width.
#[derive(Clone, Copy, Debug)]
enum Arith {
    Add,
    Sub,
    /// `|+|`: clamps at 2^W - 1.
    SatAdd,
    /// `|-|`: clamps at 0.
    SatSub,
    Mul,
    And,
    Or,
    Xor,
}

/// Comparisons of two operands of one width.
#[derive(Clone, Copy, Debug)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A bit-typed expression and its width.
#[derive(Clone, Debug)]
enum Expr {
    /// A field or local of the program's state, by index.
    Var(usize),
    /// A literal, printed `Ww<value>` (or without width when the other
    /// operand gives it, for an operator that allows that).
    Lit {
        w: u32,
        v: u128,
        typed: bool,
    },
    Arith(Arith, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Shl(Box<Expr>, Box<Expr>),
    Shr(Box<Expr>, Box<Expr>),
    Concat(Box<Expr>, Box<Expr>),
    Slice(Box<Expr>, u32, u32),
    Cast(u32, Box<Expr>),
    /// `(bit<1>) b`
    FromBool(Box<BoolExpr>),
    Cond(Box<BoolExpr>, Box<Expr>, Box<Expr>),
}

/// A boolean expression.
#[derive(Clone, Debug)]
enum BoolExpr {
    Cmp(Cmp, Expr, Expr),
    Not(Box<BoolExpr>),
    And(Box<BoolExpr>, Box<BoolExpr>),
    Or(Box<BoolExpr>, Box<BoolExpr>),
    Lit(bool),
    /// `(bool) e` of a `bit<1>`.
    FromBit(Expr),
}

/// What the generator and the evaluator know of the program's state: each
/// variable's name and width (its value lives in a parallel vector).
struct Vars {
    names: Vec<String>,
    widths: Vec<u32>,
    /// Indices of the variables an expression may read now.
    readable: Vec<usize>,
}

/// P4_16 binding strength of an expression's top operator (higher binds
/// tighter), for printing the parentheses it needs.
fn prec(e: &Expr) -> u8 {
    match e {
        Expr::Var(_) | Expr::Lit { .. } | Expr::Slice(..) => 100,
        Expr::Neg(_) | Expr::Not(_) | Expr::Cast(..) | Expr::FromBool(_) => 90,
        Expr::Arith(Arith::Mul, ..) => 80,
        Expr::Arith(Arith::Add | Arith::Sub | Arith::SatAdd | Arith::SatSub, ..) | Expr::Concat(..) => 70,
        Expr::Shl(..) | Expr::Shr(..) => 60,
        Expr::Arith(Arith::And, ..) => 50,
        Expr::Arith(Arith::Xor, ..) => 40,
        Expr::Arith(Arith::Or, ..) => 30,
        Expr::Cond(..) => 5,
    }
}

fn bool_prec(b: &BoolExpr) -> u8 {
    match b {
        BoolExpr::Lit(_) | BoolExpr::Not(_) | BoolExpr::FromBit(_) => 90,
        BoolExpr::Cmp(Cmp::Eq | Cmp::Ne, ..) => 15,
        BoolExpr::Cmp(..) => 20,
        BoolExpr::And(..) => 12,
        BoolExpr::Or(..) => 10,
    }
}

impl Expr {
    fn width(&self, v: &Vars) -> u32 {
        match self {
            Expr::Var(i) => v.widths[*i],
            Expr::Lit { w, .. } => *w,
            Expr::Arith(_, a, _) | Expr::Neg(a) | Expr::Not(a) | Expr::Shl(a, _) | Expr::Shr(a, _) => a.width(v),
            Expr::Concat(a, b) => a.width(v) + b.width(v),
            Expr::Slice(_, h, l) => h - l + 1,
            Expr::Cast(w, _) => *w,
            Expr::FromBool(_) => 1,
            Expr::Cond(_, a, _) => a.width(v),
        }
    }

    /// The value, by P4_16's rules for `bit<W>`: arithmetic modulo 2^W, a
    /// shift by W or more gives 0, `++` puts the left operand above.
    fn eval(&self, v: &Vars, vals: &[u128]) -> u128 {
        let w = self.width(v);
        let m = mask(w);
        match self {
            Expr::Var(i) => vals[*i],
            Expr::Lit { v: x, .. } => *x,
            Expr::Arith(op, a, b) => {
                let (a, b) = (a.eval(v, vals), b.eval(v, vals));
                (match op {
                    Arith::Add => a.wrapping_add(b),
                    Arith::Sub => a.wrapping_sub(b),
                    // P4_16 §8.6: the exact result, clamped to [0, 2^W - 1].
                    Arith::SatAdd => match a.checked_add(b) {
                        Some(s) if s <= m => s,
                        _ => m,
                    },
                    Arith::SatSub => a.saturating_sub(b),
                    Arith::Mul => a.wrapping_mul(b),
                    Arith::And => a & b,
                    Arith::Or => a | b,
                    Arith::Xor => a ^ b,
                }) & m
            }
            Expr::Neg(a) => a.eval(v, vals).wrapping_neg() & m,
            Expr::Not(a) => !a.eval(v, vals) & m,
            Expr::Shl(a, s) => {
                let (a, s) = (a.eval(v, vals), s.eval(v, vals));
                if s >= u128::from(w) {
                    0
                } else {
                    (a << s) & m
                }
            }
            Expr::Shr(a, s) => {
                let (a, s) = (a.eval(v, vals), s.eval(v, vals));
                if s >= u128::from(w) {
                    0
                } else {
                    a >> s
                }
            }
            Expr::Concat(a, b) => {
                let bw = b.width(v);
                (a.eval(v, vals) << bw) | b.eval(v, vals)
            }
            Expr::Slice(a, _, l) => (a.eval(v, vals) >> l) & m,
            Expr::Cast(_, a) => a.eval(v, vals) & m,
            Expr::FromBool(b) => u128::from(b.eval(v, vals)),
            Expr::Cond(c, a, b) => {
                if c.eval(v, vals) {
                    a.eval(v, vals)
                } else {
                    b.eval(v, vals)
                }
            }
        }
    }

    /// The expression in p4lite syntax; `min` is the binding strength its
    /// context needs (0: none). With `tight`, every operand is parenthesised.
    fn print(&self, v: &Vars, min: u8, tight: bool, out: &mut String) {
        let p = prec(self);
        let paren = tight && p < 100 || p < min;
        if paren {
            out.push('(');
        }
        let bin = |out: &mut String, a: &Expr, op: &str, b: &Expr, p: u8| {
            // Left-associative: the right operand needs a tighter binding.
            a.print(v, p, tight, out);
            write!(out, " {op} ").unwrap();
            b.print(v, p + 1, tight, out);
        };
        match self {
            Expr::Var(i) => out.push_str(&v.names[*i]),
            Expr::Lit { w, v: x, typed } => {
                if *typed {
                    write!(out, "{w}w{x}").unwrap();
                } else {
                    write!(out, "{x}").unwrap();
                }
            }
            Expr::Arith(op, a, b) => {
                let s = match op {
                    Arith::Add => "+",
                    Arith::Sub => "-",
                    Arith::SatAdd => "|+|",
                    Arith::SatSub => "|-|",
                    Arith::Mul => "*",
                    Arith::And => "&",
                    Arith::Or => "|",
                    Arith::Xor => "^",
                };
                bin(out, a, s, b, p);
            }
            Expr::Neg(a) => {
                out.push('-');
                a.print(v, 90, tight, out);
            }
            Expr::Not(a) => {
                out.push('~');
                a.print(v, 90, tight, out);
            }
            Expr::Shl(a, s) => bin(out, a, "<<", s, p),
            Expr::Shr(a, s) => bin(out, a, ">>", s, p),
            Expr::Concat(a, b) => bin(out, a, "++", b, p),
            Expr::Slice(a, h, l) => {
                a.print(v, 100, true, out);
                write!(out, "[{h}:{l}]").unwrap();
            }
            Expr::Cast(w, a) => {
                write!(out, "(bit<{w}>) ").unwrap();
                a.print(v, 90, tight, out);
            }
            Expr::FromBool(b) => {
                out.push_str("(bit<1>) ");
                b.print(v, 90, tight, out);
            }
            Expr::Cond(c, a, b) => {
                c.print(v, 6, tight, out);
                out.push_str(" ? ");
                a.print(v, 6, tight, out);
                out.push_str(" : ");
                b.print(v, 5, tight, out);
            }
        }
        if paren {
            out.push(')');
        }
    }
}

impl BoolExpr {
    fn eval(&self, v: &Vars, vals: &[u128]) -> bool {
        match self {
            BoolExpr::Cmp(op, a, b) => {
                let (a, b) = (a.eval(v, vals), b.eval(v, vals));
                match op {
                    Cmp::Eq => a == b,
                    Cmp::Ne => a != b,
                    Cmp::Lt => a < b,
                    Cmp::Le => a <= b,
                    Cmp::Gt => a > b,
                    Cmp::Ge => a >= b,
                }
            }
            BoolExpr::Not(b) => !b.eval(v, vals),
            BoolExpr::And(a, b) => a.eval(v, vals) && b.eval(v, vals),
            BoolExpr::Or(a, b) => a.eval(v, vals) || b.eval(v, vals),
            BoolExpr::Lit(b) => *b,
            BoolExpr::FromBit(e) => e.eval(v, vals) == 1,
        }
    }

    fn print(&self, v: &Vars, min: u8, tight: bool, out: &mut String) {
        let p = bool_prec(self);
        let paren = tight && p < 90 || p < min;
        if paren {
            out.push('(');
        }
        match self {
            BoolExpr::Cmp(op, a, b) => {
                let s = match op {
                    Cmp::Eq => "==",
                    Cmp::Ne => "!=",
                    Cmp::Lt => "<",
                    Cmp::Le => "<=",
                    Cmp::Gt => ">",
                    Cmp::Ge => ">=",
                };
                a.print(v, p, tight, out);
                write!(out, " {s} ").unwrap();
                b.print(v, p + 1, tight, out);
            }
            BoolExpr::Not(b) => {
                out.push('!');
                b.print(v, 90, tight, out);
            }
            BoolExpr::And(a, b) => {
                a.print(v, p, tight, out);
                out.push_str(" && ");
                b.print(v, p + 1, tight, out);
            }
            BoolExpr::Or(a, b) => {
                a.print(v, p, tight, out);
                out.push_str(" || ");
                b.print(v, p + 1, tight, out);
            }
            BoolExpr::Lit(b) => out.push_str(if *b { "true" } else { "false" }),
            BoolExpr::FromBit(e) => {
                out.push_str("(bool) ");
                e.print(v, 90, tight, out);
            }
        }
        if paren {
            out.push(')');
        }
    }
}

/// Random expressions over the readable variables.
struct Gen<'a> {
    r: &'a mut Rng,
    v: &'a Vars,
}

impl Gen<'_> {
    /// A leaf of width `w`: a variable of that width, a cast or slice of
    /// another, or a literal.
    fn leaf(&mut self, w: u32) -> Expr {
        let same: Vec<usize> = self.v.readable.iter().copied().filter(|&i| self.v.widths[i] == w).collect();
        match self.r.below(10) {
            0..=4 if !same.is_empty() => Expr::Var(self.r.pick(&same)),
            0..=5 => {
                let i = self.r.pick(&self.v.readable);
                let vw = self.v.widths[i];
                if vw > w && self.r.chance(50) {
                    let l = self.r.below(u64::from(vw - w + 1)) as u32;
                    Expr::Slice(Box::new(Expr::Var(i)), l + w - 1, l)
                } else {
                    Expr::Cast(w, Box::new(Expr::Var(i)))
                }
            }
            _ => Expr::Lit { w, v: value(self.r, w), typed: true },
        }
    }

    /// An expression of width `w`, at most `depth` operators deep.
    fn expr(&mut self, w: u32, depth: u32) -> Expr {
        if depth == 0 || self.r.chance(20) {
            return self.leaf(w);
        }
        let d = depth - 1;
        match self.r.below(14) {
            0..=4 => {
                let op = self.r.pick(&[
                    Arith::Add,
                    Arith::Sub,
                    Arith::SatAdd,
                    Arith::SatSub,
                    Arith::Mul,
                    Arith::And,
                    Arith::Or,
                    Arith::Xor,
                ]);
                let a = self.expr(w, d);
                // An untyped literal operand takes the other operand's width.
                let b = if self.r.chance(20) {
                    Expr::Lit { w, v: value(self.r, w.min(16)), typed: false }
                } else {
                    self.expr(w, d)
                };
                Expr::Arith(op, Box::new(a), Box::new(b))
            }
            5 => Expr::Neg(Box::new(self.expr(w, d))),
            6 => Expr::Not(Box::new(self.expr(w, d))),
            7 | 8 => {
                let a = self.expr(w, d);
                let s = if self.r.chance(50) {
                    // A constant amount, sometimes at or past the width.
                    let any = self.r.below(u64::from(w) + 2) as u32;
                    let n = self.r.pick(&[0, 1, w.saturating_sub(1), w, w + 1, any]);
                    Expr::Lit { w: 8, v: u128::from(n.min(255)), typed: self.r.chance(50) }
                } else {
                    let sw = self.r.pick(&[3, 5, 8, 9, 16, 32, 64, 128]);
                    self.expr(sw, d.min(1))
                };
                if self.r.chance(50) {
                    Expr::Shl(Box::new(a), Box::new(s))
                } else {
                    Expr::Shr(Box::new(a), Box::new(s))
                }
            }
            9 if w >= 2 => {
                let aw = 1 + self.r.below(u64::from(w - 1)) as u32;
                Expr::Concat(Box::new(self.expr(aw, d)), Box::new(self.expr(w - aw, d)))
            }
            10 if w < 128 => {
                let sw = w + 1 + self.r.below(u64::from(128 - w)) as u32;
                let l = self.r.below(u64::from(sw - w + 1)) as u32;
                Expr::Slice(Box::new(self.expr(sw, d)), l + w - 1, l)
            }
            11 => {
                let sw = self.r.pick(&WIDTHS);
                Expr::Cast(w, Box::new(self.expr(sw, d)))
            }
            12 if w == 1 => Expr::FromBool(Box::new(self.cond(d))),
            _ if self.r.chance(30) => {
                // The min/max idiom, `a < b ? a : b` and its kin: the same
                // operands in the compare and the branches.
                let (a, b) = (self.expr(w, d), self.expr(w, d));
                let op = self.r.pick(&[Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge]);
                let (x, y) = if self.r.chance(50) { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) };
                Expr::Cond(Box::new(BoolExpr::Cmp(op, a, b)), Box::new(x), Box::new(y))
            }
            _ => Expr::Cond(Box::new(self.cond(d)), Box::new(self.expr(w, d)), Box::new(self.expr(w, d))),
        }
    }

    /// A boolean expression at most `depth` operators deep.
    fn cond(&mut self, depth: u32) -> BoolExpr {
        let d = depth.saturating_sub(1);
        match self.r.below(10) {
            _ if depth == 0 => BoolExpr::Lit(self.r.chance(50)),
            0..=4 => {
                let w = self.r.pick(&WIDTHS);
                let op = self.r.pick(&[Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge]);
                BoolExpr::Cmp(op, self.expr(w, d), self.expr(w, d))
            }
            5 => BoolExpr::Not(Box::new(self.cond(d))),
            6 => BoolExpr::And(Box::new(self.cond(d)), Box::new(self.cond(d))),
            7 => BoolExpr::Or(Box::new(self.cond(d)), Box::new(self.cond(d))),
            8 => BoolExpr::FromBit(self.expr(1, d)),
            _ => BoolExpr::Lit(self.r.chance(50)),
        }
    }
}

/// One statement of the control's `apply` block.
enum Stmt {
    /// `target = e;` (a whole variable).
    Assign(usize, Expr),
    /// `target[h:l] = e;`
    AssignSlice(usize, u32, u32, Expr),
    If(BoolExpr, Vec<Stmt>, Vec<Stmt>),
    /// `bit<W> name = e;` (declares variable `.0`, readable from here on).
    Local(usize, Expr),
}

fn run_stmts(stmts: &[Stmt], v: &Vars, vals: &mut [u128]) {
    for s in stmts {
        match s {
            Stmt::Assign(t, e) | Stmt::Local(t, e) => vals[*t] = e.eval(v, vals),
            Stmt::AssignSlice(t, h, l, e) => {
                let m = mask(h - l + 1) << l;
                vals[*t] = (vals[*t] & !m) | ((e.eval(v, vals) << l) & m);
            }
            Stmt::If(c, a, b) => {
                if c.eval(v, vals) {
                    run_stmts(a, v, vals);
                } else {
                    run_stmts(b, v, vals);
                }
            }
        }
    }
}

fn print_stmts(stmts: &[Stmt], v: &Vars, tight: bool, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for s in stmts {
        out.push_str(&pad);
        match s {
            Stmt::Assign(t, e) => {
                write!(out, "{} = ", v.names[*t]).unwrap();
                e.print(v, 0, tight, out);
            }
            Stmt::AssignSlice(t, h, l, e) => {
                write!(out, "{}[{h}:{l}] = ", v.names[*t]).unwrap();
                e.print(v, 0, tight, out);
            }
            Stmt::Local(t, e) => {
                write!(out, "bit<{}> {} = ", v.widths[*t], v.names[*t]).unwrap();
                e.print(v, 0, tight, out);
            }
            Stmt::If(c, a, b) => {
                out.push_str("if (");
                c.print(v, 0, tight, out);
                out.push_str(") {\n");
                print_stmts(a, v, tight, indent + 4, out);
                writeln!(out, "{pad}}} else {{").unwrap();
                print_stmts(b, v, tight, indent + 4, out);
                writeln!(out, "{pad}}}").unwrap();
                continue;
            }
        }
        out.push_str(";\n");
    }
}

/// One key's part of a select case.
#[derive(Clone, Copy, Debug)]
enum Keyset {
    Value(u128),
    /// `v &&& m`
    Mask(u128, u128),
    /// `lo .. hi`, both ends included.
    Range(u128, u128),
    /// `_`
    Any,
}

impl Keyset {
    fn matches(self, key: u128) -> bool {
        match self {
            Keyset::Value(v) => key == v,
            Keyset::Mask(v, m) => key & m == v & m,
            Keyset::Range(lo, hi) => lo <= key && key <= hi,
            Keyset::Any => true,
        }
    }

    /// Whether every key `other` matches, `self` matches too (a sufficient
    /// test, not a complete one: a range covering a mask is not seen).
    fn covers(self, other: Keyset) -> bool {
        match (self, other) {
            (Keyset::Any, _) => true,
            (Keyset::Value(a), Keyset::Value(b)) => a == b,
            (Keyset::Range(lo, hi), Keyset::Value(x)) => lo <= x && x <= hi,
            (Keyset::Range(lo, hi), Keyset::Range(l, h)) => lo <= l && h <= hi,
            (Keyset::Mask(v, m), Keyset::Value(x)) => x & m == v & m,
            (Keyset::Mask(v, m), Keyset::Mask(v2, m2)) => m & !m2 == 0 && v2 & m == v & m,
            _ => false,
        }
    }

    fn print(self) -> String {
        match self {
            Keyset::Value(v) => format!("{v:#x}"),
            Keyset::Mask(v, m) => format!("{v:#x} &&& {m:#x}"),
            Keyset::Range(lo, hi) => format!("{lo:#x} .. {hi:#x}"),
            Keyset::Any => "_".into(),
        }
    }
}

/// The parser's `select` after the input header: its keys (input fields)
/// and its cases in order; a case leads to state `s<N>` (which sets
/// `meta.sel = N`) or, for `None`, to `reject`. A packet no case matches
/// is rejected too (P4_16's `error.NoMatch`).
struct Select {
    keys: Vec<usize>,
    cases: Vec<(Vec<Keyset>, Option<u8>)>,
}

impl Select {
    /// The state number the packet reaches (`None`: rejected).
    fn eval(&self, vals: &[u128]) -> Option<u8> {
        let hit = self.cases.iter().find(|(ks, _)| ks.iter().zip(&self.keys).all(|(k, &f)| k.matches(vals[f])));
        hit.and_then(|(_, to)| *to)
    }

    fn generate(r: &mut Rng, v: &Vars, inputs: usize) -> Select {
        let n_keys = 1 + r.index(2);
        let keys: Vec<usize> = (0..n_keys).map(|_| r.index(inputs)).collect();
        let mut cases = Vec::new();
        for _ in 0..1 + r.index(5) {
            let ks: Vec<Keyset> = keys
                .iter()
                .map(|&f| {
                    let w = v.widths[f];
                    match r.below(8) {
                        0..=2 => Keyset::Value(value(r, w)),
                        3 | 4 => {
                            let m = value(r, w);
                            Keyset::Mask(value(r, w) & m, m)
                        }
                        5 | 6 => {
                            let (a, b) = (value(r, w), value(r, w));
                            Keyset::Range(a.min(b), a.max(b))
                        }
                        _ => Keyset::Any,
                    }
                })
                .collect();
            let to = if r.chance(15) { None } else { Some(1 + r.below(250) as u8) };
            // A case an earlier one covers never matches (a warning,
            // W0512); some are kept, to run such dead cases too.
            let covered = |(earlier, _): &(Vec<Keyset>, Option<u8>)| {
                earlier.iter().zip(&ks).all(|(a, b): (&Keyset, &Keyset)| a.covers(*b))
            };
            if !cases.iter().any(covered) || r.chance(20) {
                cases.push((ks, to));
            }
        }
        if r.chance(70) && !cases.iter().any(|(ks, _)| ks.iter().all(|k| matches!(k, Keyset::Any))) {
            cases.push((vec![Keyset::Any; n_keys], Some(1 + r.below(250) as u8)));
        }
        Select { keys, cases }
    }

    /// The `start` state's transition and the states it leads to.
    fn print(&self, v: &Vars, out: &mut String) {
        let keys: Vec<&str> = self.keys.iter().map(|&f| v.names[f].as_str()).collect();
        writeln!(
            out,
            "    state start {{\n        pkt.extract(hdr.a);\n        transition select({}) {{",
            keys.join(", ")
        )
        .unwrap();
        let mut states = std::collections::BTreeSet::new();
        for (ks, to) in &self.cases {
            let ks: Vec<String> = ks.iter().map(|k| k.print()).collect();
            let ks = if ks.len() == 1 { ks[0].clone() } else { format!("({})", ks.join(", ")) };
            let to = match to {
                Some(n) => {
                    states.insert(*n);
                    format!("s{n}")
                }
                None => "reject".into(),
            };
            writeln!(out, "            {ks}: {to};").unwrap();
        }
        out.push_str("        }\n    }\n");
        for n in states {
            writeln!(out, "    state s{n} {{ meta.sel = {n}; transition accept; }}").unwrap();
        }
    }
}

/// A table key's match kind.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Exact,
    Lpm,
    Ternary,
    Range,
}

/// One key's part of a table entry.
#[derive(Clone, Copy, Debug, PartialEq)]
enum EntryKey {
    Exact(u128),
    /// Value (bits past the prefix clear) and prefix length.
    Lpm(u128, u32),
    /// Value (bits outside the mask clear) and mask.
    Ternary(u128, u128),
    Range(u128, u128),
}

impl EntryKey {
    fn matches(self, key: u128, w: u32) -> bool {
        match self {
            EntryKey::Exact(v) => key == v,
            EntryKey::Lpm(v, len) => key & prefix_mask(w, len) == v,
            EntryKey::Ternary(v, m) => key & m == v,
            EntryKey::Range(lo, hi) => lo <= key && key <= hi,
        }
    }

    /// In BMv2's runtime-CLI syntax.
    fn print(self) -> String {
        match self {
            EntryKey::Exact(v) => format!("{v:#x}"),
            EntryKey::Lpm(v, len) => format!("{v:#x}/{len}"),
            EntryKey::Ternary(v, m) => format!("{v:#x}&&&{m:#x}"),
            EntryKey::Range(lo, hi) => format!("{lo:#x}->{hi:#x}"),
        }
    }
}

/// The mask of a `len`-bit prefix of a `w`-bit value.
fn prefix_mask(w: u32, len: u32) -> u128 {
    if len == 0 {
        0
    } else {
        mask(w) & !(mask(w - len))
    }
}

/// The control's table `t`, applied first (on the parsed fields): keys over
/// input fields, entries added by the control plane in order; action
/// `hit_with(v)` writes `hdr.b.tv`, a miss leaves it 0.
struct Table {
    keys: Vec<(usize, Kind)>,
    entries: Vec<(Vec<EntryKey>, u16, u32)>,
}

impl Table {
    /// Whether the table ranks its entries by priority (BMv2: the smallest
    /// number wins, ties go to the earliest added), else by prefix length.
    fn ranked(&self) -> bool {
        self.keys.iter().any(|(_, k)| matches!(k, Kind::Ternary | Kind::Range))
    }

    /// The value `hdr.b.tv` gets.
    fn eval(&self, v: &Vars, vals: &[u128]) -> u16 {
        let hits = self
            .entries
            .iter()
            .filter(|(ks, _, _)| ks.iter().zip(&self.keys).all(|(k, &(f, _))| k.matches(vals[f], v.widths[f])));
        let best = if self.ranked() {
            // `min_by_key` keeps the first of equal priorities.
            hits.min_by_key(|(_, _, prio)| *prio)
        } else {
            // `max_by_key` keeps the last of equal lengths: exact and lpm
            // tables refuse duplicates, so there is at most one.
            hits.max_by_key(|(ks, _, _)| {
                ks.iter().map(|k| if let EntryKey::Lpm(_, len) = k { *len } else { 0 }).sum::<u32>()
            })
        };
        best.map_or(0, |(_, tv, _)| *tv)
    }

    fn generate(r: &mut Rng, v: &Vars, inputs: usize) -> Table {
        let n_keys = 1 + r.index(2);
        let mut keys = Vec::new();
        for _ in 0..n_keys {
            let f = r.index(inputs);
            let lpm_taken = keys.iter().any(|(_, k)| *k == Kind::Lpm);
            let kind = loop {
                let k = r.pick(&[Kind::Exact, Kind::Lpm, Kind::Ternary, Kind::Range]);
                if !(k == Kind::Lpm && lpm_taken) {
                    break k;
                }
            };
            keys.push((f, kind));
        }
        let mut t = Table { keys, entries: Vec::new() };
        for _ in 0..r.index(9) {
            let ks: Vec<EntryKey> = t
                .keys
                .iter()
                .map(|&(f, kind)| {
                    let w = v.widths[f];
                    match kind {
                        Kind::Exact => EntryKey::Exact(value(r, w)),
                        Kind::Lpm => {
                            let len = r.below(u64::from(w) + 1) as u32;
                            EntryKey::Lpm(value(r, w) & prefix_mask(w, len), len)
                        }
                        Kind::Ternary => {
                            let m = value(r, w);
                            EntryKey::Ternary(value(r, w) & m, m)
                        }
                        Kind::Range => {
                            let (a, b) = (value(r, w), value(r, w));
                            EntryKey::Range(a.min(b), a.max(b))
                        }
                    }
                })
                .collect();
            let prio = r.below(4) as u32;
            // Duplicates are refused: the same key (and, ranked, the same priority).
            let ranked = t.ranked();
            if t.entries.iter().any(|(k, _, p)| *k == ks && (!ranked || *p == prio)) {
                continue;
            }
            let tv = 1 + r.below(0xFFFE) as u16;
            t.entries.push((ks, tv, prio));
        }
        t
    }

    fn declare(&self, v: &Vars) -> String {
        let keys: Vec<String> =
            self.keys.iter().map(|(f, k)| format!("{} : {};", v.names[*f], format!("{k:?}").to_lowercase())).collect();
        format!(
            "    action hit_with(bit<16> tv) {{ hdr.b.tv = tv; }}
    table t {{
        key = {{ {} }}
        actions = {{ hit_with; NoAction; }}
        default_action = NoAction();
        size = 64;
    }}
",
            keys.join(" ")
        )
    }

    fn commands(&self) -> String {
        let mut out = String::new();
        for (ks, tv, prio) in &self.entries {
            let ks: Vec<String> = ks.iter().map(|k| k.print()).collect();
            write!(out, "table_add t hit_with {} => {tv:#x}", ks.join(" ")).unwrap();
            if self.ranked() {
                write!(out, " {prio}").unwrap();
            }
            out.push('\n');
        }
        out
    }
}

/// A generated program: its text, its variables and its statements.
struct Case {
    text: String,
    vars: Vars,
    /// Variables `0..inputs` are the input header's fields; then come the
    /// result header's fields, then the locals.
    inputs: usize,
    results: usize,
    stmts: Vec<Stmt>,
    select: Select,
    table: Table,
}

/// Widths of `n` fields whose sum is a whole number of bytes (the last
/// field pads), at most `max_bits` in all.
fn field_widths(r: &mut Rng, n: usize, max_bits: u32) -> Vec<u32> {
    let mut ws = Vec::new();
    let mut total = 0;
    for _ in 0..n {
        let w = r.pick(&WIDTHS);
        if total + w + 8 > max_bits {
            break;
        }
        ws.push(w);
        total += w;
    }
    if total % 8 != 0 || ws.is_empty() {
        ws.push(8 - total % 8);
    }
    ws
}

fn generate(r: &mut Rng) -> Case {
    let n_in = 2 + r.index(6);
    let in_w = field_widths(r, n_in, 512);
    let n_out = 2 + r.index(5);
    let out_w = field_widths(r, n_out, 512);
    let mut vars = Vars { names: Vec::new(), widths: Vec::new(), readable: Vec::new() };
    for (i, w) in in_w.iter().enumerate() {
        vars.names.push(format!("hdr.a.f{i}"));
        vars.widths.push(*w);
        vars.readable.push(i);
    }
    let inputs = in_w.len();
    for (i, w) in out_w.iter().enumerate() {
        vars.names.push(format!("hdr.b.r{i}"));
        vars.widths.push(*w);
    }
    let results = out_w.len();
    let mut stmts = Vec::new();
    // Each result is assigned in order (both branches of an `if` assign
    // it), and readable after that; locals and input rewrites come between.
    for j in 0..results {
        let t = inputs + j;
        let w = vars.widths[t];
        let depth = 1 + r.below(4) as u32;
        if r.chance(20) {
            let lw = r.pick(&WIDTHS);
            let e = Gen { r, v: &vars }.expr(lw, depth);
            let id = vars.names.len();
            vars.names.push(format!("t{id}"));
            vars.widths.push(lw);
            stmts.push(Stmt::Local(id, e));
            vars.readable.push(id);
        }
        if r.chance(15) {
            let f = r.index(inputs);
            let fw = vars.widths[f];
            if fw > 1 && r.chance(50) {
                let l = r.below(u64::from(fw)) as u32;
                let h = l + r.below(u64::from(fw - l)) as u32;
                let e = Gen { r, v: &vars }.expr(h - l + 1, depth);
                stmts.push(Stmt::AssignSlice(f, h, l, e));
            } else {
                let e = Gen { r, v: &vars }.expr(fw, depth);
                stmts.push(Stmt::Assign(f, e));
            }
        }
        let mut g = Gen { r, v: &vars };
        if g.r.chance(25) {
            let c = g.cond(depth);
            let a = g.expr(w, depth);
            let b = g.expr(w, depth);
            stmts.push(Stmt::If(c, vec![Stmt::Assign(t, a)], vec![Stmt::Assign(t, b)]));
        } else {
            let e = g.expr(w, depth);
            stmts.push(Stmt::Assign(t, e));
        }
        vars.readable.push(t);
    }

    let select = Select::generate(r, &vars, inputs);
    let table = Table::generate(r, &vars, inputs);
    let tight = r.chance(50);
    let mut text = String::new();
    let fields = |ws: &[u32], p: &str| {
        ws.iter().enumerate().map(|(i, w)| format!("bit<{w}> {p}{i};")).collect::<Vec<_>>().join(" ")
    };
    writeln!(text, "header a_t {{ {} }}", fields(&in_w, "f")).unwrap();
    writeln!(text, "header b_t {{ {} bit<8> sel; bit<16> tv; }}", fields(&out_w, "r")).unwrap();
    text.push_str(
        "struct headers_t { a_t a; b_t b; }
struct metadata_t { bit<8> sel; }

parser P(packet_in pkt, out headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {
",
    );
    select.print(&vars, &mut text);
    text.push_str(
        "}

control I(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {
",
    );
    text.push_str(&table.declare(&vars));
    text.push_str(
        "    apply {
        std.egress_spec = 1;
        hdr.b.setValid();
        t.apply();
",
    );
    print_stmts(&stmts, &vars, tight, 8, &mut text);
    text.push_str(
        "        hdr.b.sel = meta.sel;
    }
}

control E(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {
    apply { }
}

control D(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.a); pkt.emit(hdr.b); }
}

Pipeline(P(), I(), E(), D()) main;
",
    );
    Case { text, vars, inputs, results, stmts, select, table }
}

/// `fields` (width, value) packed most significant bit first, as headers
/// are on the wire.
fn pack(fields: &[(u32, u128)]) -> Vec<u8> {
    let mut bits = Vec::new();
    for &(w, v) in fields {
        for i in (0..w).rev() {
            bits.push((v >> i) & 1 == 1);
        }
    }
    bits.chunks(8).map(|c| c.iter().fold(0u8, |b, &x| b << 1 | u8::from(x))).collect()
}

fn hex(data: &[u8]) -> String {
    data.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Compiles and runs one case; panics with the program on any difference.
/// Returns whether the program has a select case an earlier one covers
/// (warning W0512: it compiles, and the case never matches).
fn check(n: u64, case: &Case, r: &mut Rng, packets: u64) -> bool {
    let fail = |what: String| -> ! { panic!("program #{n}: {what}\n--- program ---\n{}", case.text) };
    let compiled = p4lite_compiler::compile(&Sources::new(format!("random{n}.p4lite"), case.text.clone()));
    let Some(program) = compiled.ir else {
        fail(format!("does not compile: {:#?}", compiled.diagnostics));
    };
    let dead_case = compiled.diagnostics.iter().any(|d| d.code == "W0512");
    let new = |backend| {
        Switch::new(program.clone(), SwitchOptions { backend, trace: false })
            .unwrap_or_else(|e| fail(format!("switch for {backend:?}: {e}")))
    };
    let (mut jit, mut interp) = (new(Backend::Jit), new(Backend::Interp));
    let commands = case.table.commands();
    for sw in [&mut jit, &mut interp] {
        if let Err(e) = sw.apply_commands(&commands, "t.txt") {
            fail(format!("entries refused: {e:?}\n--- entries ---\n{commands}"));
        }
    }
    let v = &case.vars;
    for k in 0..packets {
        let mut vals = vec![0u128; v.names.len()];
        for (i, val) in vals.iter_mut().enumerate().take(case.inputs) {
            *val = value(r, v.widths[i]);
        }
        let mut pkt = pack(&(0..case.inputs).map(|i| (v.widths[i], vals[i])).collect::<Vec<_>>());
        let n_payload = r.index(4);
        let payload = r.bytes(n_payload);
        pkt.extend_from_slice(&payload);
        let sel = case.select.eval(&vals);
        let tv = case.table.eval(v, &vals);
        run_stmts(&case.stmts, v, &mut vals);
        let mut want = pack(&(0..case.inputs).map(|i| (v.widths[i], vals[i])).collect::<Vec<_>>());
        let results: Vec<(u32, u128)> =
            (0..case.results).map(|j| (v.widths[case.inputs + j], vals[case.inputs + j])).collect();
        let tail = [(8, u128::from(sel.unwrap_or(0))), (16, u128::from(tv))];
        want.extend(pack(&[results.as_slice(), &tail].concat()));
        want.extend_from_slice(&payload);

        let (mut out_j, mut out_i) = (Vec::<OutPacket>::new(), Vec::<OutPacket>::new());
        let oj = jit.process(0, &pkt, k, &mut out_j);
        let oi = interp.process(0, &pkt, k, &mut out_i);
        if oj != oi || out_j != out_i {
            fail(format!(
                "packet {k} {}: backends differ\n  jit:    {oj:?} {:?}\n  interp: {oi:?} {:?}",
                hex(&pkt),
                out_j.iter().map(|o| hex(&o.data)).collect::<Vec<_>>(),
                out_i.iter().map(|o| hex(&o.data)).collect::<Vec<_>>()
            ));
        }
        if sel.is_none() {
            REJECTED.fetch_add(1, Ordering::Relaxed);
            if !matches!(oj, Outcome::Dropped(DropReason::ParserReject { .. })) {
                fail(format!("packet {k} {}: should be rejected by the parser's select: {oj:?}", hex(&pkt)));
            }
            continue;
        }
        if oj != Outcome::Forwarded || out_j.len() != 1 {
            fail(format!("packet {k} {}: not forwarded once: {oj:?}", hex(&pkt)));
        }
        FORWARDED.fetch_add(1, Ordering::Relaxed);
        TABLE_HITS.fetch_add(u64::from(tv != 0), Ordering::Relaxed);
        if out_j[0].data != want {
            let inputs: Vec<String> = (0..case.inputs).map(|i| format!("{} = {:#x}", v.names[i], vals[i])).collect();
            fail(format!(
                "packet {k} {}: output differs from the evaluator's\n  got:  {}\n  want: {}\n  final values (evaluator): {}\n  results: {}",
                hex(&pkt),
                hex(&out_j[0].data),
                hex(&want),
                inputs.join(", "),
                results.iter().enumerate().map(|(j, (_, x))| format!("r{j} = {x:#x}")).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    dead_case
}

#[test]
fn random_programs_compute_what_p4_16_says() {
    let programs = env("P4LITE_RANDOM_PROGRAMS", 1000);
    let packets = env("P4LITE_RANDOM_PACKETS", 60);
    let seed = env("P4LITE_RANDOM_SEED", 0x4A17_0001);
    let started = std::time::Instant::now();
    let mut shadowed = 0;
    for n in 0..programs {
        let mut r = Rng::new(seed.wrapping_add(n.wrapping_mul(0x9E37_79B9)));
        let case = generate(&mut r);
        shadowed += u64::from(check(n, &case, &mut r, packets));
    }
    let (fwd, hits, rejected) =
        (FORWARDED.load(Ordering::Relaxed), TABLE_HITS.load(Ordering::Relaxed), REJECTED.load(Ordering::Relaxed));
    eprintln!(
        "{programs} programs x {packets} packets in {:.1?}; {shadowed} with a select case that never matches (W0512); \
         {fwd} forwarded ({hits} table hits), {rejected} rejected by a select",
        started.elapsed()
    );
    assert!(
        hits * 10 > fwd && rejected * 20 > fwd,
        "too few table hits or select rejects: the test exercises too little"
    );
    assert!(shadowed * 50 > programs, "only {shadowed} of {programs} programs have a dead select case");
}

/// The evaluator and the packer are the oracle: a few fixed values.
#[test]
fn the_oracle_follows_p4_16() {
    let v = Vars { names: vec!["x".into(), "y".into()], widths: vec![8, 4], readable: vec![0, 1] };
    let vals = [0xF0u128, 0x3];
    let x = || Box::new(Expr::Var(0));
    let y = || Box::new(Expr::Var(1));
    let lit = |w, v| Box::new(Expr::Lit { w, v, typed: true });
    assert_eq!(Expr::Arith(Arith::Add, x(), lit(8, 0x20)).eval(&v, &vals), 0x10);
    assert_eq!(Expr::Arith(Arith::Mul, x(), lit(8, 3)).eval(&v, &vals), 0xD0);
    assert_eq!(Expr::Arith(Arith::SatAdd, x(), lit(8, 0x20)).eval(&v, &vals), 0xFF);
    assert_eq!(Expr::Arith(Arith::SatAdd, x(), lit(8, 0x0F)).eval(&v, &vals), 0xFF);
    assert_eq!(Expr::Arith(Arith::SatAdd, y(), lit(4, 0x4)).eval(&v, &vals), 0x7);
    assert_eq!(Expr::Arith(Arith::SatSub, y(), lit(4, 0x4)).eval(&v, &vals), 0);
    assert_eq!(Expr::Arith(Arith::SatSub, x(), lit(8, 0xF0)).eval(&v, &vals), 0);
    assert_eq!(Expr::Arith(Arith::SatSub, x(), lit(8, 0x10)).eval(&v, &vals), 0xE0);
    assert_eq!(Expr::Neg(y()).eval(&v, &vals), 0xD);
    assert_eq!(Expr::Shl(x(), lit(8, 8)).eval(&v, &vals), 0);
    assert_eq!(Expr::Shl(x(), y()).eval(&v, &vals), 0x80);
    assert_eq!(Expr::Shr(x(), lit(8, 7)).eval(&v, &vals), 1);
    assert_eq!(Expr::Concat(y(), x()).eval(&v, &vals), 0x3F0);
    assert_eq!(Expr::Slice(x(), 5, 2).eval(&v, &vals), 0xC);
    assert_eq!(Expr::Cast(4, x()).eval(&v, &vals), 0);
    assert_eq!(pack(&[(4, 0xA), (12, 0xBCD), (1, 1), (7, 0)]), vec![0xAB, 0xCD, 0x80]);
    let mut s = String::new();
    Expr::Arith(Arith::Sub, x(), Box::new(Expr::Arith(Arith::Sub, x(), x()))).print(&v, 0, false, &mut s);
    assert_eq!(s, "x - (x - x)");
    s.clear();
    Expr::Arith(Arith::And, Box::new(Expr::Arith(Arith::Add, x(), x())), x()).print(&v, 0, false, &mut s);
    assert_eq!(s, "x + x & x");
}
