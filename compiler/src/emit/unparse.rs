//! `--emit ast`: the syntax tree printed back as normalised p4lite source.
//!
//! Every nested expression is parenthesised, so the output shows exactly how
//! the parser grouped operators; comments and the original spelling of
//! literals are gone (a literal prints in decimal below 256, else in hex, with
//! its `Nw` width when it had one). Printing is a fixpoint of parsing:
//! `print(parse(print(ast)))` equals `print(ast)`, which the tests check once
//! the parser exists. `else if` prints as `else { if ... }` because that is how
//! the tree holds it.

use std::fmt::Write;

use crate::ast::*;
use crate::emit::number;

/// Indentation of one nesting level.
const IND: &str = "    ";

/// Prints a whole file.
pub(super) fn program(p: &Program) -> String {
    let mut out = String::new();
    for (i, d) in p.decls.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        decl(&mut out, d);
    }
    out
}

fn decl(out: &mut String, d: &Decl) {
    match d {
        Decl::Const(c) => {
            let _ = writeln!(out, "{};", const_decl(c));
        }
        Decl::Typedef(t) => {
            let _ = writeln!(out, "typedef {} {};", ty(&t.ty), t.name.name);
        }
        Decl::Enum(e) => {
            let members: Vec<String> = e
                .members
                .iter()
                .map(|(n, v)| match v {
                    Some(v) => format!("{} = {}", n.name, expr(v)),
                    None => n.name.clone(),
                })
                .collect();
            let t = e.ty.as_ref().map(|t| format!("{} ", ty(t))).unwrap_or_default();
            let _ = writeln!(out, "enum {t}{} {{ {} }}", e.name.name, members.join(", "));
        }
        Decl::Error(e) => {
            let names: Vec<&str> = e.names.iter().map(|n| n.name.as_str()).collect();
            let _ = writeln!(out, "error {{ {} }}", names.join(", "));
        }
        Decl::Header(s) => struct_like(out, "header", s),
        Decl::Struct(s) => struct_like(out, "struct", s),
        Decl::Extern(e) => {
            let _ = writeln!(out, "extern {}{} {{", e.name.name, type_params(&e.type_params));
            for c in &e.constructors {
                let _ = writeln!(out, "{IND}{};", method_sig(c));
            }
            for m in &e.methods {
                let _ = writeln!(out, "{IND}{};", method_sig(m));
            }
            out.push_str("}\n");
        }
        Decl::ExternFn(m) => {
            let _ = writeln!(out, "extern {};", method_sig(m));
        }
        Decl::Action(a) => action(out, 0, a),
        Decl::Parser(p) => {
            let _ = writeln!(out, "parser {}({}) {{", p.name.name, params(&p.params));
            for l in &p.locals {
                local(out, 1, l);
            }
            for s in &p.states {
                state(out, s);
            }
            out.push_str("}\n");
        }
        Decl::Control(c) => {
            let _ = writeln!(out, "control {}({}) {{", c.name.name, params(&c.params));
            for l in &c.locals {
                local(out, 1, l);
            }
            let _ = writeln!(out, "{IND}apply {}", block(1, &c.apply));
            out.push_str("}\n");
        }
        Decl::Instance(i) => {
            let _ = writeln!(out, "{};", instance(i));
        }
    }
}

fn const_decl(c: &ConstDecl) -> String {
    format!("const {} {} = {}", ty(&c.ty), c.name.name, expr(&c.value))
}

fn var_decl(v: &VarDecl) -> String {
    match &v.init {
        Some(e) => format!("{} {} = {}", ty(&v.ty), v.name.name, expr(e)),
        None => format!("{} {}", ty(&v.ty), v.name.name),
    }
}

fn instance(i: &InstanceDecl) -> String {
    format!("{}({}) {}", ty(&i.ty), exprs(&i.args), i.name.name)
}

fn struct_like(out: &mut String, word: &str, s: &StructLike) {
    let _ = writeln!(out, "{word} {} {{", s.name.name);
    for f in &s.fields {
        match &f.stack {
            Some(n) => {
                let _ = writeln!(out, "{IND}{}[{}] {};", ty(&f.ty), expr(n), f.name.name);
            }
            None => {
                let _ = writeln!(out, "{IND}{} {};", ty(&f.ty), f.name.name);
            }
        }
    }
    out.push_str("}\n");
}

/// A type as written: `bit<8>`, `bool`, `void`, `register<bit<32>>`.
fn ty(t: &TypeRef) -> String {
    match &t.kind {
        TypeRefKind::Bit(w) => format!("bit<{w}>"),
        TypeRefKind::BitOf(e) => format!("bit<({})>", expr(e)),
        TypeRefKind::Bool => "bool".to_string(),
        TypeRefKind::Void => "void".to_string(),
        TypeRefKind::Named { name, args } if args.is_empty() => name.name.clone(),
        TypeRefKind::Named { name, args } => {
            format!("{}<{}>", name.name, args.iter().map(ty).collect::<Vec<_>>().join(", "))
        }
    }
}

fn type_params(tps: &[crate::span::Ident]) -> String {
    if tps.is_empty() {
        String::new()
    } else {
        format!("<{}>", tps.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "))
    }
}

fn params(ps: &[Param]) -> String {
    ps.iter()
        .map(|p| {
            let dir = match p.dir {
                None => "",
                Some(Direction::In) => "in ",
                Some(Direction::Out) => "out ",
                Some(Direction::InOut) => "inout ",
            };
            format!("{dir}{} {}", ty(&p.ty), p.name.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `RET NAME<T>(PARAMS)`; constructors have no return type.
fn method_sig(m: &MethodSig) -> String {
    let ret = m.ret.as_ref().map_or_else(String::new, |r| format!("{} ", ty(r)));
    format!("{ret}{}{}({})", m.name.name, type_params(&m.type_params), params(&m.params))
}

fn action(out: &mut String, depth: usize, a: &ActionDecl) {
    let ind = IND.repeat(depth);
    let _ = writeln!(out, "{ind}action {}({}) {}", a.name.name, params(&a.params), block(depth, &a.body));
}

fn local(out: &mut String, depth: usize, l: &LocalDecl) {
    let ind = IND.repeat(depth);
    match l {
        LocalDecl::Var(v) => {
            let _ = writeln!(out, "{ind}{};", var_decl(v));
        }
        LocalDecl::Const(c) => {
            let _ = writeln!(out, "{ind}{};", const_decl(c));
        }
        LocalDecl::Instance(i) => {
            let _ = writeln!(out, "{ind}{};", instance(i));
        }
        LocalDecl::Action(a) => action(out, depth, a),
        LocalDecl::Table(t) => table(out, depth, t),
    }
}

fn table(out: &mut String, depth: usize, t: &TableDecl) {
    let ind = IND.repeat(depth);
    let ind1 = IND.repeat(depth + 1);
    let ind2 = IND.repeat(depth + 2);
    let _ = writeln!(out, "{ind}table {} {{", t.name.name);
    for p in &t.props {
        match p {
            TableProp::Key { elems, .. } => {
                let _ = writeln!(out, "{ind1}key = {{");
                for k in elems {
                    let _ = writeln!(out, "{ind2}{}: {};", expr(&k.expr), k.match_kind.name);
                }
                let _ = writeln!(out, "{ind1}}}");
            }
            TableProp::Actions { actions, .. } => {
                let names: Vec<String> = actions.iter().map(|a| format!("{};", a.name)).collect();
                let _ = writeln!(out, "{ind1}actions = {{ {} }}", names.join(" "));
            }
            TableProp::DefaultAction { is_const, action, args, .. } => {
                let k = if *is_const { "const " } else { "" };
                let _ = writeln!(out, "{ind1}{k}default_action = {}({});", action.name, exprs(args));
            }
            TableProp::Size { value, .. } => {
                let _ = writeln!(out, "{ind1}size = {};", expr(value));
            }
            TableProp::Entries { is_const, entries, .. } => {
                let k = if *is_const { "const " } else { "" };
                let _ = writeln!(out, "{ind1}{k}entries = {{");
                for e in entries {
                    let prio = e.priority.as_ref().map_or_else(String::new, |p| format!(" @priority({})", expr(p)));
                    let _ =
                        writeln!(out, "{ind2}{}: {}({}){prio};", keysets(&e.keysets), e.action.name, exprs(&e.args));
                }
                let _ = writeln!(out, "{ind1}}}");
            }
            TableProp::Other { name, value, .. } => {
                let _ = writeln!(out, "{ind1}{} = {};", name.name, expr(value));
            }
        }
    }
    let _ = writeln!(out, "{ind}}}");
}

fn state(out: &mut String, s: &StateDecl) {
    let _ = writeln!(out, "{IND}state {} {{", s.name.name);
    for st in &s.body {
        stmt(out, 2, st);
    }
    let ind2 = IND.repeat(2);
    match &s.transition {
        None => {}
        Some(Transition::Direct(next)) => {
            let _ = writeln!(out, "{ind2}transition {};", next.name);
        }
        Some(Transition::Select { exprs: es, cases, .. }) => {
            let _ = writeln!(out, "{ind2}transition select({}) {{", exprs(es));
            for c in cases {
                let _ = writeln!(out, "{ind2}{IND}{}: {};", keysets(&c.keysets), c.next.name);
            }
            let _ = writeln!(out, "{ind2}}}");
        }
    }
    let _ = writeln!(out, "{IND}}}");
}

/// One keyset bare, several as a tuple.
fn keysets(ks: &[Keyset]) -> String {
    let ks: Vec<String> = ks.iter().map(keyset).collect();
    if ks.len() == 1 {
        ks.concat()
    } else {
        format!("({})", ks.join(", "))
    }
}

fn keyset(k: &Keyset) -> String {
    match &k.kind {
        KeysetKind::Value(e) => expr(e),
        KeysetKind::Mask(v, m) => format!("{} &&& {}", operand(v), operand(m)),
        KeysetKind::Range(lo, hi) => format!("{} .. {}", operand(lo), operand(hi)),
        KeysetKind::Prefix(v, len) => format!("{} / {}", operand(v), operand(len)),
        KeysetKind::Default => "default".to_string(),
    }
}

/// `{ ... }` with its statements one level deeper than `depth`; the opening
/// brace is on the caller's line.
fn block(depth: usize, b: &Block) -> String {
    let mut out = String::from("{\n");
    for s in &b.stmts {
        stmt(&mut out, depth + 1, s);
    }
    out.push_str(&IND.repeat(depth));
    out.push('}');
    out
}

fn stmt(out: &mut String, depth: usize, s: &Stmt) {
    let ind = IND.repeat(depth);
    match &s.kind {
        StmtKind::Assign { lhs, rhs } => {
            let _ = writeln!(out, "{ind}{} = {};", expr(lhs), expr(rhs));
        }
        StmtKind::Call(e) => {
            let _ = writeln!(out, "{ind}{};", expr(e));
        }
        StmtKind::Var(v) => {
            let _ = writeln!(out, "{ind}{};", var_decl(v));
        }
        StmtKind::Const(c) => {
            let _ = writeln!(out, "{ind}{};", const_decl(c));
        }
        StmtKind::If { cond, then, els } => {
            let _ = write!(out, "{ind}if ({}) {}", expr(cond), block(depth, then));
            match els {
                Some(e) => {
                    let _ = writeln!(out, " else {}", block(depth, e));
                }
                None => out.push('\n'),
            }
        }
        StmtKind::Switch { expr: e, cases } => {
            let _ = writeln!(out, "{ind}switch ({}) {{", expr(e));
            for c in cases {
                let label = c.label.as_ref().map_or("default", |l| l.name.as_str());
                match &c.body {
                    Some(b) => {
                        let _ = writeln!(out, "{ind}{IND}{label}: {}", block(depth + 1, b));
                    }
                    None => {
                        let _ = writeln!(out, "{ind}{IND}{label}:");
                    }
                }
            }
            let _ = writeln!(out, "{ind}}}");
        }
        StmtKind::Block(b) => {
            let _ = writeln!(out, "{ind}{}", block(depth, b));
        }
        StmtKind::Exit => {
            let _ = writeln!(out, "{ind}exit;");
        }
        StmtKind::Return => {
            let _ = writeln!(out, "{ind}return;");
        }
    }
}

fn exprs(es: &[Expr]) -> String {
    es.iter().map(expr).collect::<Vec<_>>().join(", ")
}

/// An expression at top level (no outer parentheses).
fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int { value, width: Some(w) } => format!("{w}w{}", number(*value)),
        ExprKind::Int { value, width: None } => number(*value),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Name(n) => n.name.clone(),
        ExprKind::Member { base, member } => format!("{}.{}", operand(base), member.name),
        ExprKind::Call { callee, type_args, args } => {
            let targs = if type_args.is_empty() {
                String::new()
            } else {
                format!("<{}>", type_args.iter().map(ty).collect::<Vec<_>>().join(", "))
            };
            format!("{}{targs}({})", operand(callee), exprs(args))
        }
        ExprKind::Slice { base, hi, lo } => format!("{}[{}:{}]", operand(base), expr(hi), expr(lo)),
        ExprKind::Index { base, index } => format!("{}[{}]", operand(base), expr(index)),
        ExprKind::Unary { op, expr: a } => format!("{}{}", op.symbol(), operand(a)),
        ExprKind::Binary { op, lhs, rhs } => format!("{} {} {}", operand(lhs), op.symbol(), operand(rhs)),
        ExprKind::Cast { ty: t, expr: a } => format!("({}){}", ty(t), operand(a)),
        ExprKind::Cond { cond, then, els } => format!("{} ? {} : {}", operand(cond), operand(then), operand(els)),
        ExprKind::List(es) => format!("{{{}}}", exprs(es)),
    }
}

/// An expression nested in another: parenthesised unless it is a primary or
/// postfix form, which binds tighter than any operator.
fn operand(e: &Expr) -> String {
    match e.kind {
        ExprKind::Int { .. }
        | ExprKind::Bool(_)
        | ExprKind::Name(_)
        | ExprKind::Member { .. }
        | ExprKind::Call { .. }
        | ExprKind::Slice { .. }
        | ExprKind::Index { .. }
        | ExprKind::List(_) => expr(e),
        _ => format!("({})", expr(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{Ident, Span};

    fn sp() -> Span {
        Span::default()
    }

    fn id(n: &str) -> Ident {
        Ident::new(n, sp())
    }

    fn e(kind: ExprKind) -> Expr {
        Expr { kind, span: sp() }
    }

    fn name(n: &str) -> Expr {
        e(ExprKind::Name(id(n)))
    }

    fn member(base: Expr, m: &str) -> Expr {
        e(ExprKind::Member { base: Box::new(base), member: id(m) })
    }

    fn int(v: u128, width: Option<u16>) -> Expr {
        e(ExprKind::Int { value: v, width })
    }

    fn bin(op: BinOp, l: Expr, r: Expr) -> Expr {
        e(ExprKind::Binary { op, lhs: Box::new(l), rhs: Box::new(r) })
    }

    fn bit(w: u32) -> TypeRef {
        TypeRef { kind: TypeRefKind::Bit(w), span: sp() }
    }

    /// Every example program: printing is a fixpoint of parsing, and the
    /// printed source checks to the same IR as the original.
    #[test]
    fn example_programs_round_trip() {
        use crate::span::{SourceId, Sources};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs");
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.retain(|p| p.extension().is_some_and(|x| x == "p4lite"));
        paths.sort();
        for path in paths {
            let src = std::fs::read_to_string(&path).unwrap();
            let once = program(&crate::syntax::parse(&src, SourceId::USER).unwrap());
            let reparsed = crate::syntax::parse(&once, SourceId::USER)
                .unwrap_or_else(|d| panic!("{}: printed source does not parse: {d:?}\n{once}", path.display()));
            assert_eq!(program(&reparsed), once, "{}: not a fixpoint", path.display());
            let ir = |text: &str| crate::compile(&Sources::new("x", text)).ir.map(|ir| crate::emit::ir_text(&ir));
            assert_eq!(ir(&once), ir(&src), "{}: printed source checks differently", path.display());
        }
    }

    #[test]
    fn expressions_show_grouping() {
        // a + b * c  and  (a + b) * c
        let x = bin(BinOp::Add, name("a"), bin(BinOp::Mul, name("b"), name("c")));
        assert_eq!(expr(&x), "a + (b * c)");
        let y = bin(BinOp::Mul, bin(BinOp::Add, name("a"), name("b")), name("c"));
        assert_eq!(expr(&y), "(a + b) * c");
        let ttl = member(member(name("hdr"), "ipv4"), "ttl");
        let s =
            e(ExprKind::Slice { base: Box::new(ttl.clone()), hi: Box::new(int(7, None)), lo: Box::new(int(4, None)) });
        assert_eq!(expr(&bin(BinOp::Concat, s, int(0, Some(4)))), "hdr.ipv4.ttl[7:4] ++ 4w0");
        let cast = e(ExprKind::Cast { ty: bit(32), expr: Box::new(ttl) });
        assert_eq!(expr(&cast), "(bit<32>)hdr.ipv4.ttl");
        let apply =
            e(ExprKind::Call { callee: Box::new(member(name("routes"), "apply")), type_args: vec![], args: vec![] });
        assert_eq!(expr(&member(apply, "hit")), "routes.apply().hit");
        assert_eq!(expr(&int(0x0a00_0001, Some(32))), "32w0xa000001");
    }

    #[test]
    fn prints_declarations_and_statements() {
        let ttl = member(member(name("hdr"), "ipv4"), "ttl");
        let prog = Program {
            decls: vec![
                Decl::Const(ConstDecl { ty: bit(16), name: id("ETHERTYPE_IPV4"), value: int(0x800, None), span: sp() }),
                Decl::Header(StructLike {
                    name: id("h_t"),
                    fields: vec![FieldDecl { ty: bit(8), stack: None, name: id("ttl"), span: sp() }],
                    span: sp(),
                }),
                Decl::Control(ControlDecl {
                    name: id("C"),
                    params: vec![Param {
                        dir: Some(Direction::InOut),
                        ty: TypeRef { kind: TypeRefKind::Named { name: id("headers_t"), args: vec![] }, span: sp() },
                        name: id("hdr"),
                        span: sp(),
                    }],
                    locals: vec![],
                    apply: Block {
                        stmts: vec![Stmt {
                            kind: StmtKind::If {
                                cond: bin(BinOp::Gt, ttl.clone(), int(1, None)),
                                then: Block {
                                    stmts: vec![Stmt {
                                        kind: StmtKind::Assign {
                                            lhs: ttl.clone(),
                                            rhs: bin(BinOp::Sub, ttl, int(1, None)),
                                        },
                                        span: sp(),
                                    }],
                                    span: sp(),
                                },
                                els: Some(Block { stmts: vec![Stmt { kind: StmtKind::Exit, span: sp() }], span: sp() }),
                            },
                            span: sp(),
                        }],
                        span: sp(),
                    },
                    span: sp(),
                }),
            ],
        };
        let want = "\
const bit<16> ETHERTYPE_IPV4 = 0x800;

header h_t {
    bit<8> ttl;
}

control C(inout headers_t hdr) {
    apply {
        if (hdr.ipv4.ttl > 1) {
            hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
        } else {
            exit;
        }
    }
}
";
        assert_eq!(program(&prog), want);
    }
}
