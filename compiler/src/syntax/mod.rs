//! Parsing: source text → [`ast::Program`] with the pest grammar in `grammar/p4lite.pest`.
//!
//! pest turns the text into a tree of `Pair`s; the builder functions in the
//! submodules turn that tree into the AST, one function per grammar rule:
//! `decl.rs` for declarations, parsers, controls and tables, `stmt.rs` for
//! statements, `expr.rs` for expressions, literals and keysets. A syntax error
//! becomes one diagnostic (`error.rs`) that names what was expected in words;
//! parsing then resumes at the next top-level declaration's line, so every
//! broken declaration gets one.
//!
//! Every syntax diagnostic has code `E0001`.
//!
//! Problems the grammar accepts on purpose so they can be explained (a bad
//! number, `x += 1;`, a non-call expression statement, an over-large literal)
//! are collected as diagnostics while building; [`parse`] then returns all of
//! them instead of a half-right AST.

mod decl;
mod error;
mod expr;
mod stmt;

use std::cell::{Cell, RefCell};

use pest::iterators::Pair;
use pest::Parser as _;

use crate::ast;
use crate::diag::Diagnostic;
use crate::span::{Ident, SourceId, Span};

/// The generated parser. The grammar path is relative to the compiler crate's
/// manifest directory (pest_derive looks there first, then in `src/`).
#[derive(pest_derive::Parser)]
#[grammar = "../grammar/p4lite.pest"]
struct P4liteParser;

/// Error code of every syntax error.
pub(crate) const E_SYNTAX: &str = "E0001";

/// Deepest bracket nesting accepted. Deeper input would only exercise the
/// native stack of pest and of every later recursive pass.
const MAX_NESTING: usize = 64;

/// Deepest expression tree accepted (enforced by `Builder::node` in
/// `expr.rs`): left-nested chains like `a + b + c + ...` or `a.b.c...` are
/// built without recursion, but every later pass walks them recursively.
const MAX_EXPR_DEPTH: u32 = 256;

/// Deepest statement nesting accepted (`if ... else if ...` chains nest).
const MAX_STMT_DEPTH: u32 = 256;

/// Parses one source text. A syntax error is reported as one diagnostic that
/// says in words what was expected at the offending token, and so is the
/// first of each later declaration that has one (`syntax_errors`).
pub fn parse(text: &str, source: SourceId) -> Result<ast::Program, Vec<Diagnostic>> {
    if let Some(d) = check_nesting(text, source) {
        return Err(vec![d]);
    }
    // Collect the tokens expected at the farthest failure, for the message.
    // The switch is process-wide; nothing in p4lite turns it off again, so
    // concurrent parses (the test harness) all see it on.
    pest::set_error_detail(true);
    let mut pairs = match P4liteParser::parse(Rule::program, text) {
        Ok(pairs) => pairs,
        Err(e) => return Err(syntax_errors(&e, text, source)),
    };
    let builder = Builder::new(source);
    let program = match pairs.next() {
        Some(program) => builder.program(program),
        None => ast::Program { decls: Vec::new() },
    };
    let diags = builder.diags.into_inner();
    if diags.is_empty() {
        Ok(program)
    } else {
        Err(diags)
    }
}

/// The most syntax errors one parse reports.
const MAX_SYNTAX_ERRORS: usize = 20;

/// Top-level declaration keywords: a line that starts with one (in its
/// first column, outside comments) is where parsing resumes after a syntax
/// error.
const DECL_KEYWORDS: [&str; 8] = ["const", "typedef", "header", "struct", "extern", "action", "parser", "control"];

/// The diagnostic of the syntax error `first`, then those of later
/// declarations: after each error, parsing resumes at the next line that
/// starts a top-level declaration ([`DECL_KEYWORDS`]) with everything
/// before it blanked (so offsets stay those of `text`), and the first
/// error there is reported too, until the rest parses or
/// [`MAX_SYNTAX_ERRORS`] are found. A declaration that is not broken
/// itself is never reported: each resumption starts at a declaration.
fn syntax_errors(first: &pest::error::Error<Rule>, text: &str, source: SourceId) -> Vec<Diagnostic> {
    let mut diags = vec![error::syntax_error(first, text, source)];
    let mut after = diags[0].span.lo as usize;
    while diags.len() < MAX_SYNTAX_ERRORS {
        let Some(resume) = next_decl_line(text, after) else { break };
        // Every character before `resume` becomes as many spaces as it has
        // bytes; newlines kept, so the rest keeps its offsets.
        let blanked: String = text[..resume]
            .chars()
            .flat_map(|c| std::iter::repeat_n(if c == '\n' { '\n' } else { ' ' }, c.len_utf8()))
            .chain(text[resume..].chars())
            .collect();
        let Err(e) = P4liteParser::parse(Rule::program, &blanked) else { break };
        let d = error::syntax_error(&e, &blanked, source);
        if (d.span.lo as usize) < resume {
            break;
        }
        after = d.span.lo as usize;
        diags.push(d);
    }
    diags
}

/// The offset of the first line after the line holding `after` that starts
/// (in its first column, outside a comment) with a top-level declaration
/// keyword followed by a non-identifier character.
fn next_decl_line(text: &str, after: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut i, mut in_block) = (0usize, false);
    while i < bytes.len() {
        let rest = &bytes[i..];
        if in_block {
            in_block = !rest.starts_with(b"*/");
            i += if in_block { 1 } else { 2 };
            continue;
        }
        // A line start follows a newline (an ASCII byte), so `i` is a
        // character boundary there.
        let line_start = i == 0 || bytes[i - 1] == b'\n';
        if line_start && i > after {
            let starts_decl = DECL_KEYWORDS.iter().any(|k| {
                rest.starts_with(k.as_bytes())
                    && !rest.get(k.len()).is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_')
            });
            if starts_decl {
                return Some(i);
            }
        }
        if rest.starts_with(b"/*") {
            in_block = true;
            i += 2;
        } else if rest.starts_with(b"//") {
            // To the newline, which ends the comment and the line.
            i += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        } else {
            i += 1;
        }
    }
    None
}

/// Rejects input whose brackets nest deeper than [`MAX_NESTING`], before pest
/// recurses into it. Brackets inside comments count too; that only matters
/// for absurd comments.
fn check_nesting(text: &str, source: SourceId) -> Option<Diagnostic> {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    let span = Span::new(source, i, i + 1);
                    return Some(Diagnostic::error(
                        E_SYNTAX,
                        span,
                        format!("brackets nest more than {MAX_NESTING} deep"),
                        "too deep",
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Builds AST nodes from pest pairs. Holds the source id for spans and
/// collects the diagnostics of mistakes the grammar lets through.
struct Builder {
    source: SourceId,
    /// Problems found while building; the AST is discarded if any.
    diags: RefCell<Vec<Diagnostic>>,
    /// Current statement nesting, against [`MAX_STMT_DEPTH`].
    stmt_depth: Cell<u32>,
    /// Whether an over-deep expression or statement was reported already
    /// (once per source is enough).
    depth_reported: Cell<bool>,
}

impl Builder {
    fn new(source: SourceId) -> Builder {
        Builder { source, diags: RefCell::new(Vec::new()), stmt_depth: Cell::new(0), depth_reported: Cell::new(false) }
    }

    /// The span of a pair in this builder's source. A rule that ends with an
    /// optional or repeated part (`expr`, `if_stmt`) also covers the
    /// whitespace pest skipped before trying that part; it is cut off here.
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.source, s.start(), s.start() + without_trivia(s.as_str()))
    }

    /// The text of a pair, without trailing whitespace (see [`Builder::span`]).
    fn text<'i>(&self, pair: &Pair<'i, Rule>) -> &'i str {
        let text = pair.as_str();
        &text[..without_trivia(text)]
    }

    /// An identifier (`ident` or `member_name` pair).
    fn ident(&self, pair: Pair<'_, Rule>) -> Ident {
        Ident::new(pair.as_str(), self.span(&pair))
    }

    /// Records a syntax diagnostic at `span`.
    fn error(&self, span: Span, message: impl Into<String>, label: impl Into<String>) {
        self.diags.borrow_mut().push(Diagnostic::error(E_SYNTAX, span, message, label));
    }

    /// Records a prepared diagnostic.
    fn report(&self, diag: Diagnostic) {
        self.diags.borrow_mut().push(diag);
    }
}

/// The length of `text` without trailing whitespace and comments. A `//`
/// comment is taken to start at the first `//` of its line, which is exact
/// because `//` cannot occur outside comments.
pub(crate) fn without_trivia(text: &str) -> usize {
    let mut end = text.len();
    loop {
        let trimmed = text[..end].trim_end();
        end = trimmed.len();
        if trimmed.ends_with("*/") {
            match trimmed.rfind("/*") {
                Some(open) => end = open,
                None => return end,
            }
            continue;
        }
        let line_start = trimmed.rfind('\n').map_or(0, |i| i + 1);
        match trimmed[line_start..].find("//") {
            Some(c) => end = line_start + c,
            None => return end,
        }
    }
}

/// The children of a pair that carry information: bare keyword tokens
/// (`if`, `action`, ...) are dropped, so builders see only the parts they
/// turn into AST fields.
fn children(pair: Pair<'_, Rule>) -> Nodes<'_> {
    let parent = pair.as_rule();
    let items = pair.into_inner().filter(|p| !error::is_bare_keyword(p.as_rule())).collect::<Vec<_>>();
    Nodes { items: items.into_iter().peekable(), parent }
}

/// A cursor over a pair's meaningful children (see [`children`]).
struct Nodes<'i> {
    items: std::iter::Peekable<std::vec::IntoIter<Pair<'i, Rule>>>,
    parent: Rule,
}

impl<'i> Nodes<'i> {
    /// The next child, which the grammar guarantees to exist.
    fn next(&mut self) -> Pair<'i, Rule> {
        match self.items.next() {
            Some(p) => p,
            None => grammar_bug(self.parent, "a missing child"),
        }
    }

    /// The next child if it is a `rule`.
    fn next_if(&mut self, rule: Rule) -> Option<Pair<'i, Rule>> {
        self.items.next_if(|p| p.as_rule() == rule)
    }

    /// Exactly `N` remaining children, as an array to destructure.
    fn take<const N: usize>(self) -> [Pair<'i, Rule>; N] {
        let parent = self.parent;
        match <[Pair<'i, Rule>; N]>::try_from(self.items.collect::<Vec<_>>()) {
            Ok(array) => array,
            Err(_) => grammar_bug(parent, "a different number of children"),
        }
    }

    /// The remaining children.
    fn rest(self) -> impl Iterator<Item = Pair<'i, Rule>> {
        self.items
    }
}

/// The builders mirror the grammar; a shape they do not expect is a bug in
/// this module (no input can cause it), so it panics with the rule's name.
fn grammar_bug(rule: Rule, what: &str) -> ! {
    panic!("p4lite grammar and syntax builder disagree: {what} in rule {rule:?}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ast::*;
    use crate::rng::Rng;

    /// Parsing resumes only at a top-level keyword in a line's first
    /// column, outside comments, after the error's line; a longer name
    /// (`headers_t`), an indented keyword and non-ASCII text before it do
    /// not confuse it.
    #[test]
    fn resumption_points_are_declaration_lines() {
        let text = "header a {}\n  header b {}\n// header c {}\nheaders_t x;\n/* é\nstruct d {} */\nstruct e {}\n";
        let at = |needle: &str| text.find(needle).unwrap();
        assert_eq!(next_decl_line(text, 0), Some(at("struct e")));
        assert_eq!(next_decl_line(text, at("struct e")), None, "not the error's own line");
        assert_eq!(next_decl_line("parser p", 0), None);
        assert_eq!(next_decl_line("x\nparser p", 0), Some(2));
        assert_eq!(next_decl_line("x\nparser", 0), Some(2), "the keyword at the end");
        assert_eq!(next_decl_line("x\nparsers", 0), None);
    }

    /// Every broken declaration is reported, up to the cap.
    #[test]
    fn syntax_errors_are_reported_per_declaration_up_to_a_cap() {
        let one = "const bit<8> K = 3 +;\nstruct s { bit<8> x; }\n";
        let errs = parse(&one.repeat(3), SourceId::USER).unwrap_err();
        assert_eq!(errs.len(), 3);
        let starts: Vec<u32> = errs.iter().map(|d| d.span.lo).collect();
        let n = one.len() as u32;
        assert_eq!(starts, [20, n + 20, 2 * n + 20]);
        let errs = parse(&one.repeat(MAX_SYNTAX_ERRORS + 5), SourceId::USER).unwrap_err();
        assert_eq!(errs.len(), MAX_SYNTAX_ERRORS);
        assert!(parse(&"struct s { bit<8> x; }\n".repeat(3), SourceId::USER).is_ok());
    }

    /// The example program of the p4lite brief, verbatim.
    pub(crate) const EXAMPLE: &str = r#"
const bit<16> ETHERTYPE_IPV4 = 0x0800;
typedef bit<48> mac_addr_t;
header ethernet_t { mac_addr_t dst_addr; mac_addr_t src_addr; bit<16> ether_type; }
header ipv4_t { bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> total_len;
  bit<16> identification; bit<3> flags; bit<13> frag_offset; bit<8> ttl; bit<8> protocol;
  bit<16> hdr_checksum; bit<32> src_addr; bit<32> dst_addr; }
struct headers_t { ethernet_t ethernet; ipv4_t ipv4; }
struct metadata_t { bit<32> nhop; }

parser MyParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
                inout standard_metadata_t std) {
    state start {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            0x8100 &&& 0xEFFF: accept;      // value &&& mask
            0x0600 .. 0x06FF: reject;       // inclusive range
            default: accept;
        }
    }
    state parse_ipv4 { pkt.extract(hdr.ipv4); transition accept; }
}

control MyIngress(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {
    counter(1024) per_port;
    bit<8> tmp;
    action drop() { mark_to_drop(std); }
    action forward(mac_addr_t dmac, bit<9> port) {
        hdr.ethernet.dst_addr = dmac; std.egress_spec = port;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
    }
    table routes {
        key = { hdr.ipv4.dst_addr : lpm; }
        actions = { forward; drop; NoAction; }
        default_action = drop();
        size = 1024;
        const entries = { 10.0.0.0 / 8 : forward(00:11:22:33:44:55, 1); }
    }
    apply {
        if (hdr.ipv4.isValid() && hdr.ipv4.ttl > 1) {
            switch (routes.apply().action_run) { forward: { per_port.count((bit<32>)std.egress_spec); } default: {} }
        } else if (!routes.apply().hit) { drop(); exit; }
        hdr.ipv4.hdr_checksum = 0;
        hdr.ipv4.hdr_checksum = csum16(hdr.ipv4);
        tmp = hdr.ipv4.ttl[7:4] ++ 4w0;
    }
}

control MyDeparser(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.ethernet); pkt.emit(hdr.ipv4); }
}

Pipeline(MyParser(), MyIngress(), MyDeparser()) main;
"#;

    /// Parses or fails the test with the diagnostics.
    pub(crate) fn ok(src: &str) -> Program {
        match parse(src, SourceId::USER) {
            Ok(p) => p,
            Err(d) => panic!("parse failed: {:?}\n{src}", d.iter().map(|d| &d.message).collect::<Vec<_>>()),
        }
    }

    /// The messages of a failed parse.
    pub(crate) fn errs(src: &str) -> Vec<String> {
        match parse(src, SourceId::USER) {
            Ok(_) => panic!("parsed but should not have: {src}"),
            Err(d) => d.into_iter().map(|d| d.message).collect(),
        }
    }

    /// An expression as an S-expression: `(+ a (<< b c))`, for compact asserts.
    pub(crate) fn sexp(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Int { value, width: None } => format!("{value}"),
            ExprKind::Int { value, width: Some(w) } => format!("{w}w{value}"),
            ExprKind::Bool(b) => format!("{b}"),
            ExprKind::Name(n) => n.name.clone(),
            ExprKind::Member { base, member } => format!("{}.{}", sexp(base), member.name),
            ExprKind::Call { callee, type_args, args } => {
                let ty = if type_args.is_empty() { String::new() } else { format!("<{}>", type_args.len()) };
                let args: Vec<String> = args.iter().map(sexp).collect();
                format!("{}{ty}({})", sexp(callee), args.join(", "))
            }
            ExprKind::Slice { base, hi, lo } => format!("{}[{}:{}]", sexp(base), sexp(hi), sexp(lo)),
            ExprKind::Index { base, index } => format!("{}[{}]", sexp(base), sexp(index)),
            ExprKind::Unary { op, expr } => format!("({} {})", op.symbol(), sexp(expr)),
            ExprKind::Binary { op, lhs, rhs } => format!("({} {} {})", op.symbol(), sexp(lhs), sexp(rhs)),
            ExprKind::Cast { ty, expr } => format!("(cast {} {})", ty_str(ty), sexp(expr)),
            ExprKind::Cond { cond, then, els } => format!("(? {} {} {})", sexp(cond), sexp(then), sexp(els)),
            ExprKind::List(items) => format!("{{{}}}", items.iter().map(sexp).collect::<Vec<_>>().join(", ")),
        }
    }

    /// A type as written, compactly.
    pub(crate) fn ty_str(t: &TypeRef) -> String {
        match &t.kind {
            TypeRefKind::Bit(w) => format!("bit<{w}>"),
            TypeRefKind::BitOf(e) => format!("bit<({})>", sexp(e)),
            TypeRefKind::Bool => "bool".into(),
            TypeRefKind::Void => "void".into(),
            TypeRefKind::Named { name, args } if args.is_empty() => name.name.clone(),
            TypeRefKind::Named { name, args } => {
                format!("{}<{}>", name.name, args.iter().map(ty_str).collect::<Vec<_>>().join(", "))
            }
        }
    }

    /// The statements of the `apply` block of the only control in `src`.
    pub(crate) fn apply_of(src: &str) -> Vec<Stmt> {
        match ok(src).decls.into_iter().next() {
            Some(Decl::Control(c)) => c.apply.stmts,
            other => panic!("not a control: {other:?}"),
        }
    }

    /// The text a span covers.
    fn at(src: &str, span: Span) -> &str {
        &src[span.lo as usize..span.hi as usize]
    }

    #[test]
    fn parses_the_prelude() {
        let p = match parse(crate::PRELUDE, SourceId::PRELUDE) {
            Ok(p) => p,
            Err(d) => panic!("{d:?}"),
        };
        assert!(p.decls.iter().all(|d| !matches!(d, Decl::Parser(_) | Decl::Control(_))));
        let register = p.decls.iter().find_map(|d| match d {
            Decl::Extern(e) if e.name.name == "register" => Some(e),
            _ => None,
        });
        let Some(register) = register else { panic!("no register extern") };
        assert_eq!(register.type_params[0].name, "T");
        assert_eq!(register.constructors.len(), 1);
        assert_eq!(register.constructors[0].ret, None);
        let names: Vec<&str> = register.methods.iter().map(|m| m.name.name.as_str()).collect();
        assert_eq!(names, ["read", "write"]);
        assert_eq!(register.methods[0].params[0].dir, Some(Direction::Out));
        assert_eq!(register.span.source, SourceId::PRELUDE);
        let csum = p.decls.iter().find_map(|d| match d {
            Decl::ExternFn(f) if f.name.name == "csum16" => Some(f),
            _ => None,
        });
        let Some(csum) = csum else { panic!("no csum16") };
        assert_eq!(csum.ret.as_ref().map(ty_str), Some("bit<16>".to_string()));
        assert_eq!(csum.type_params[0].name, "D");
        assert!(at(crate::PRELUDE, csum.span).starts_with("extern bit<16> csum16"));
        assert!(p.decls.iter().any(|d| matches!(d, Decl::Action(a) if a.name.name == "NoAction")));
    }

    #[test]
    fn parses_the_example_program() {
        let p = ok(EXAMPLE);
        let kinds: Vec<&str> = p
            .decls
            .iter()
            .map(|d| match d {
                Decl::Const(_) => "const",
                Decl::Typedef(_) => "typedef",
                Decl::Error(_) => "error",
                Decl::Enum(_) => "enum",
                Decl::Header(_) => "header",
                Decl::Struct(_) => "struct",
                Decl::Extern(_) | Decl::ExternFn(_) => "extern",
                Decl::Action(_) => "action",
                Decl::Parser(_) => "parser",
                Decl::Control(_) => "control",
                Decl::Instance(_) => "instance",
            })
            .collect();
        assert_eq!(
            kinds,
            ["const", "typedef", "header", "header", "struct", "struct", "parser", "control", "control", "instance"]
        );
        let Decl::Parser(parser) = &p.decls[6] else { unreachable!() };
        assert_eq!(parser.params.len(), 4);
        assert_eq!(parser.params[1].dir, Some(Direction::Out));
        assert_eq!(parser.params[0].dir, None);
        let Some(Transition::Select { exprs, cases, .. }) = &parser.states[0].transition else { panic!() };
        assert_eq!(sexp(&exprs[0]), "hdr.ethernet.ether_type");
        let kinds: Vec<String> =
            cases.iter().map(|c| format!("{:?}->{}", keyset_str(&c.keysets[0]), c.next.name)).collect();
        assert_eq!(
            kinds,
            [
                "\"ETHERTYPE_IPV4\"->parse_ipv4",
                "\"33024 &&& 61439\"->accept",
                "\"1536 .. 1791\"->reject",
                "\"default\"->accept"
            ]
        );
        assert!(matches!(&parser.states[1].transition, Some(Transition::Direct(n)) if n.name == "accept"));

        let Decl::Control(ingress) = &p.decls[7] else { unreachable!() };
        assert_eq!(ingress.locals.len(), 5);
        let LocalDecl::Table(routes) = &ingress.locals[4] else { panic!() };
        let TableProp::Entries { is_const: true, entries, .. } = &routes.props[4] else { panic!() };
        assert_eq!(keyset_str(&entries[0].keysets[0]), "32w167772160 / 8");
        assert_eq!(entries[0].args.iter().map(sexp).collect::<Vec<_>>(), ["48w73588229205", "1"]);
        let stmts = &ingress.apply.stmts;
        let StmtKind::If { cond, then, els: Some(els) } = &stmts[0].kind else { panic!() };
        assert_eq!(sexp(cond), "(&& hdr.ipv4.isValid() (> hdr.ipv4.ttl 1))");
        let StmtKind::Switch { expr, cases } = &then.stmts[0].kind else { panic!() };
        assert_eq!(sexp(expr), "routes.apply().action_run");
        assert_eq!(cases[1].label, None);
        let Some(body) = &cases[0].body else { panic!() };
        let StmtKind::Call(count) = &body.stmts[0].kind else { panic!() };
        assert_eq!(sexp(count), "per_port.count((cast bit<32> std.egress_spec))");
        let StmtKind::If { cond, .. } = &els.stmts[0].kind else { panic!() };
        assert_eq!(sexp(cond), "(! routes.apply().hit)");
        let StmtKind::Assign { lhs, rhs } = &stmts[3].kind else { panic!() };
        assert_eq!((sexp(lhs).as_str(), sexp(rhs).as_str()), ("tmp", "(++ hdr.ipv4.ttl[7:4] 4w0)"));
        assert_eq!(at(EXAMPLE, rhs.span), "hdr.ipv4.ttl[7:4] ++ 4w0");

        let Decl::Instance(main) = &p.decls[9] else { unreachable!() };
        assert_eq!(main.name.name, "main");
        assert_eq!(main.args.iter().map(sexp).collect::<Vec<_>>(), ["MyParser()", "MyIngress()", "MyDeparser()"]);
    }

    /// A keyset, compactly.
    pub(crate) fn keyset_str(k: &Keyset) -> String {
        match &k.kind {
            KeysetKind::Value(v) => sexp(v),
            KeysetKind::Mask(v, m) => format!("{} &&& {}", sexp(v), sexp(m)),
            KeysetKind::Range(lo, hi) => format!("{} .. {}", sexp(lo), sexp(hi)),
            KeysetKind::Prefix(v, l) => format!("{} / {}", sexp(v), sexp(l)),
            KeysetKind::Default => "default".into(),
        }
    }

    #[test]
    fn parses_the_programs_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs");
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "p4lite") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if let Err(d) = parse(&text, SourceId::USER) {
                    let sources = crate::span::Sources::new(path.display().to_string(), text);
                    panic!("{}", crate::diag::render(&d, &sources, false));
                }
            }
        }
    }

    #[test]
    fn declarations_at_top_level() {
        let src = "
            const bit<16> A = 1;
            typedef bit<48> mac_t;
            header h_t { mac_t dst; bit<16> ty; }
            struct s_t { h_t h; bool flag; }
            extern thing<T, U> { thing(bit<32> n); thing(); T get<V>(in V v, out U u); void put(inout T t); }
            extern void f(in bit<8> x);
            action a(bit<8> p, in bool q) { }
            register<bit<32>>(64) r;
            counter(1024) c;
            Pipeline(P(), C(), D()) main;
        ";
        let p = ok(src);
        assert_eq!(p.decls.len(), 10);
        let Decl::Const(c) = &p.decls[0] else { panic!() };
        assert_eq!((ty_str(&c.ty).as_str(), c.name.name.as_str(), sexp(&c.value).as_str()), ("bit<16>", "A", "1"));
        assert_eq!(at(src, c.span), "const bit<16> A = 1;");
        let Decl::Typedef(t) = &p.decls[1] else { panic!() };
        assert_eq!(ty_str(&t.ty), "bit<48>");
        let Decl::Header(h) = &p.decls[2] else { panic!() };
        assert_eq!(h.fields.iter().map(|f| f.name.name.as_str()).collect::<Vec<_>>(), ["dst", "ty"]);
        assert_eq!(at(src, h.fields[0].span), "mac_t dst;");
        let Decl::Struct(s) = &p.decls[3] else { panic!() };
        assert_eq!(ty_str(&s.fields[1].ty), "bool");
        let Decl::Extern(e) = &p.decls[4] else { panic!() };
        assert_eq!(e.type_params.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["T", "U"]);
        assert_eq!(e.constructors.len(), 2);
        assert_eq!(e.methods[0].type_params[0].name, "V");
        assert_eq!(e.methods[0].params[1].dir, Some(Direction::Out));
        assert_eq!(e.methods[1].ret.as_ref().map(ty_str), Some("void".to_string()));
        assert_eq!(e.methods[1].params[0].dir, Some(Direction::InOut));
        let Decl::ExternFn(f) = &p.decls[5] else { panic!() };
        assert_eq!(f.params[0].dir, Some(Direction::In));
        let Decl::Action(a) = &p.decls[6] else { panic!() };
        assert_eq!(a.params.iter().map(|p| p.dir).collect::<Vec<_>>(), [None, Some(Direction::In)]);
        let Decl::Instance(r) = &p.decls[7] else { panic!() };
        assert_eq!((ty_str(&r.ty).as_str(), r.name.name.as_str()), ("register<bit<32>>", "r"));
        assert_eq!(r.args.iter().map(sexp).collect::<Vec<_>>(), ["64"]);
        let Decl::Instance(m) = &p.decls[9] else { panic!() };
        assert_eq!(m.args.iter().map(sexp).collect::<Vec<_>>(), ["P()", "C()", "D()"]);
    }

    #[test]
    fn parser_locals_and_states() {
        let src = "parser P(packet_in pkt, out h_t hdr) {
            bit<8> n = 0; const bit<8> K = 2; counter(4) c; register<bit<8>>(2) r;
            state start { n = pkt.lookahead<bit<8>>(); pkt.advance(32); transition select(n, hdr.x.y) {
                (1, 2): next; (_, default): accept; } }
            state next { pkt.extract(hdr.x); transition reject; }
            state dangling { }
        }";
        let Decl::Parser(p) = &ok(src).decls[0] else { panic!() };
        assert!(matches!(
            p.locals.as_slice(),
            [LocalDecl::Var(_), LocalDecl::Const(_), LocalDecl::Instance(_), LocalDecl::Instance(_)]
        ));
        assert_eq!(p.states.iter().map(|s| s.name.name.as_str()).collect::<Vec<_>>(), ["start", "next", "dangling"]);
        let Some(Transition::Select { exprs, cases, span }) = &p.states[0].transition else { panic!() };
        assert_eq!(exprs.len(), 2);
        assert_eq!(cases[0].keysets.len(), 2);
        assert!(at(src, *span).starts_with("select(n, hdr.x.y)"));
        assert_eq!(p.states[0].body.len(), 2);
        assert!(p.states[2].transition.is_none());
    }

    #[test]
    fn control_locals_and_tables() {
        let src = "control C(inout h_t hdr) {
            bit<8> tmp; const bit<8> K = 1; counter(8) c;
            action set(bit<9> port) { }
            table t {
                key = { hdr.ip.dst : lpm; hdr.ip.proto : exact; hdr.tcp.dport : ternary; }
                actions = { set; NoAction; }
                const default_action = set(1);
                size = 64;
                entries = {
                    (10.0.0.0 / 8, 6, 0x50 &&& 0xF0) : set(2) @priority(10);
                    (_, _, default) : NoAction;
                    (192.168.0.1, 17 .. 18, 80) : set(3);
                }
                implementation = foo;
                sizes = 3;
            }
            table u { default_action = NoAction; const entries = { 5 : set(1); } }
            apply { t.apply(); }
        }";
        let Decl::Control(c) = &ok(src).decls[0] else { panic!() };
        assert!(matches!(
            c.locals.as_slice(),
            [
                LocalDecl::Var(_),
                LocalDecl::Const(_),
                LocalDecl::Instance(_),
                LocalDecl::Action(_),
                LocalDecl::Table(_),
                LocalDecl::Table(_)
            ]
        ));
        let LocalDecl::Table(t) = &c.locals[4] else { panic!() };
        let [key, actions, default, size, entries, other, sizes] = t.props.as_slice() else { panic!("{t:?}") };
        let TableProp::Key { elems, .. } = key else { panic!() };
        let kinds: Vec<String> = elems.iter().map(|e| format!("{}:{}", sexp(&e.expr), e.match_kind.name)).collect();
        assert_eq!(kinds, ["hdr.ip.dst:lpm", "hdr.ip.proto:exact", "hdr.tcp.dport:ternary"]);
        let TableProp::Actions { actions, .. } = actions else { panic!() };
        assert_eq!(actions.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["set", "NoAction"]);
        let TableProp::DefaultAction { is_const: true, action, args, .. } = default else { panic!() };
        assert_eq!((action.name.as_str(), args.len()), ("set", 1));
        assert!(matches!(size, TableProp::Size { value, .. } if sexp(value) == "64"));
        let TableProp::Entries { is_const: false, entries, .. } = entries else { panic!() };
        let shown: Vec<String> = entries
            .iter()
            .map(|e| {
                let ks: Vec<String> = e.keysets.iter().map(keyset_str).collect();
                let prio = e.priority.as_ref().map(sexp).unwrap_or_default();
                format!(
                    "{} : {}({}) {prio}",
                    ks.join(", "),
                    e.action.name,
                    e.args.iter().map(sexp).collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                "32w167772160 / 8, 6, 80 &&& 240 : set(2) 10",
                "default, default, default : NoAction() ",
                "32w3232235521, 17 .. 18, 80 : set(3) "
            ]
        );
        assert!(
            matches!(other, TableProp::Other { name, value, .. } if name.name == "implementation" && sexp(value) == "foo")
        );
        assert!(matches!(sizes, TableProp::Other { name, .. } if name.name == "sizes"));
        let LocalDecl::Table(u) = &c.locals[5] else { panic!() };
        assert!(matches!(&u.props[0], TableProp::DefaultAction { is_const: false, args, .. } if args.is_empty()));
        assert!(matches!(&u.props[1], TableProp::Entries { is_const: true, .. }));
    }

    #[test]
    fn statements() {
        let src = "control C() { apply {
            bit<8> x; bit<8> y = 2; const bit<8> K = 3;
            x = y; h.f[7:4] = 4w1;
            if (x == 1) { exit; } else if (x == 2) { return; } else { { f(); } }
            if (b) { g(); }
            switch (t.apply().action_run) { a: b: { x = 1; } c: {} default: }
            pkt.emit<h_t>(h);
        } }";
        let stmts = apply_of(src);
        let kinds: Vec<&str> = stmts
            .iter()
            .map(|s| match &s.kind {
                StmtKind::Assign { .. } => "assign",
                StmtKind::Call(_) => "call",
                StmtKind::Var(_) => "var",
                StmtKind::Const(_) => "const",
                StmtKind::If { .. } => "if",
                StmtKind::Switch { .. } => "switch",
                StmtKind::Block(_) => "block",
                StmtKind::Exit => "exit",
                StmtKind::Return => "return",
            })
            .collect();
        assert_eq!(kinds, ["var", "var", "const", "assign", "assign", "if", "if", "switch", "call"]);
        let StmtKind::Var(y) = &stmts[1].kind else { panic!() };
        assert_eq!(y.init.as_ref().map(sexp), Some("2".to_string()));
        let StmtKind::Assign { lhs, .. } = &stmts[4].kind else { panic!() };
        assert_eq!(sexp(lhs), "h.f[7:4]");
        // `else if` nests an `if` inside the else block.
        let StmtKind::If { then, els: Some(els), .. } = &stmts[5].kind else { panic!() };
        assert!(matches!(then.stmts[0].kind, StmtKind::Exit));
        let StmtKind::If { then: ret, els: Some(last), .. } = &els.stmts[0].kind else { panic!() };
        assert!(matches!(ret.stmts.as_slice(), [Stmt { kind: StmtKind::Return, .. }]));
        assert_eq!(at(src, ret.span), "{ return; }");
        assert!(matches!(last.stmts[0].kind, StmtKind::Block(_)));
        let StmtKind::If { then, els: None, .. } = &stmts[6].kind else { panic!() };
        assert!(matches!(&then.stmts[0].kind, StmtKind::Call(c) if sexp(c) == "g()"));
        let StmtKind::Switch { cases, .. } = &stmts[7].kind else { panic!() };
        let shown: Vec<String> = cases
            .iter()
            .map(|c| format!("{}:{}", c.label.as_ref().map_or("default", |l| l.name.as_str()), c.body.is_some()))
            .collect();
        assert_eq!(shown, ["a:false", "b:true", "c:true", "default:false"]);
        assert_eq!(at(src, stmts[5].span), "if (x == 1) { exit; } else if (x == 2) { return; } else { { f(); } }");
        assert_eq!(at(src, els.span), "if (x == 2) { return; } else { { f(); } }");
    }

    #[test]
    fn if_branches_need_braces() {
        let got = errs("control C() { apply { if (b) g(); else x = 1; } }");
        assert_eq!(got, ["the branches of `if` and `else` need braces", "the branches of `if` and `else` need braces"]);
        let d = match parse("control C() { apply { if (b) g(); } }", SourceId::USER) {
            Err(d) => d,
            Ok(_) => panic!(),
        };
        assert_eq!(d[0].help.as_deref(), Some("write `{ g(); }`"));
    }

    #[test]
    fn table_property_names_are_checked_by_shape() {
        assert_eq!(errs("control C() { table t { key = 5; } apply {} }"), ["expected `{`, found `5`"]);
        assert_eq!(
            errs("control C() { table t { default_action = 5; } apply {} }"),
            ["expected an identifier, found `5`"]
        );
    }

    #[test]
    fn keywords_are_not_names_but_prefixes_are() {
        for bad in [
            "control C() { bit<8> if; apply {} }",
            "const bit<8> apply = 1;",
            "header state { }",
            "control C() { bit<8> _; apply {} }",
        ] {
            assert_eq!(errs(bad).len(), 1, "{bad}");
        }
        let p = ok("control C(in input_t iffy, inout inout_t constant, out outer_t actions_x) {
            bit<8> state_ = 0; bit<8> _x; bit<8> key; bit<8> actions; bit<8> size;
            apply { iffy = constant; } }");
        let Decl::Control(c) = &p.decls[0] else { panic!() };
        let shown: Vec<String> =
            c.params.iter().map(|p| format!("{:?} {} {}", p.dir, ty_str(&p.ty), p.name.name)).collect();
        assert_eq!(shown, ["Some(In) input_t iffy", "Some(InOut) inout_t constant", "Some(Out) outer_t actions_x"]);
    }

    #[test]
    fn comments_and_empty_programs() {
        assert_eq!(ok("").decls.len(), 0);
        assert_eq!(ok("; header h { };;").decls.len(), 1);
        assert_eq!(ok("// nothing\n/* at\n all */").decls.len(), 0);
        let p = ok("const /* a */ bit</* w */8> // the type\n X = /* v */ 1 ; // done");
        let Decl::Const(c) = &p.decls[0] else { panic!() };
        assert_eq!(ty_str(&c.ty), "bit<8>");
        assert_eq!(errs("/* never closed").len(), 1);
    }

    #[test]
    fn absurd_nesting_is_refused_not_crashed() {
        let deep = format!("const bit<8> X = {}1{};", "(".repeat(65), ")".repeat(65));
        assert_eq!(errs(&deep), ["brackets nest more than 64 deep"]);
        let fine = format!("const bit<8> X = {}1{};", "(".repeat(60), ")".repeat(60));
        assert_eq!(ok(&fine).decls.len(), 1);
        let chain = format!("const bit<8> X = a{};", " + a".repeat(400));
        assert_eq!(errs(&chain), ["expression nests more than 256 deep"]);
        let members = format!("const bit<8> X = a{};", ".b".repeat(2000));
        assert_eq!(errs(&members), ["expression nests more than 256 deep"]);
        let nots = format!("const bit<8> X = {}a;", "!".repeat(5000));
        assert_eq!(errs(&nots), ["expression has more than 1024 operators and operands"]);
        let ternary = format!("const bit<8> X = {}0;", "a ? 1 : ".repeat(400));
        assert_eq!(errs(&ternary), ["expression nests more than 256 deep"]);
        let elifs = format!("control C() {{ apply {{ {} {{ }} }} }}", "if (a) { } else ".repeat(300));
        assert_eq!(errs(&elifs), ["statements nest more than 256 deep"]);
    }

    /// Parses `src` and checks that any diagnostics are well formed.
    fn parse_never_panics(src: &str) {
        if let Err(diags) = parse(src, SourceId::USER) {
            assert!(!diags.is_empty());
            for d in &diags {
                assert!(d.span.hi as usize <= src.len() && d.span.lo <= d.span.hi, "{d:?} in {src:?}");
                assert!(src.is_char_boundary(d.span.lo as usize) && src.is_char_boundary(d.span.hi as usize));
                assert!(!d.message.contains("kw_") && !d.message.contains("_decl"), "{}", d.message);
            }
            let sources = crate::span::Sources::new("fuzz.p4", src);
            let _ = crate::diag::render(&diags, &sources, false);
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
        for _ in 0..300 {
            let len = rng.index(120);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            parse_never_panics(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn random_token_soup_never_panics() {
        const VOCAB: &[&str] = &[
            "control",
            "parser",
            "state",
            "table",
            "apply",
            "action",
            "key",
            "actions",
            "entries",
            "const",
            "if",
            "else",
            "switch",
            "default",
            "transition",
            "select",
            "extern",
            "header",
            "struct",
            "bit",
            "<",
            ">",
            "8",
            "(",
            ")",
            "{",
            "}",
            "[",
            "]",
            ";",
            ":",
            ",",
            ".",
            "=",
            "==",
            "&&&",
            "..",
            "/",
            "x",
            "y",
            "_",
            "0x1f",
            "8w3",
            "10.0.0.1",
            "00:11:22:33:44:55",
            "+",
            "-",
            "!",
            "?",
            "++",
            "//c\n",
            "/*c*/",
            "@priority",
            "exit",
            "in",
            "out",
            "inout",
            "void",
            "bool",
            "true",
            "\n",
        ];
        let mut rng = Rng::new(42);
        for _ in 0..300 {
            let n = rng.index(40);
            let toks: Vec<&str> = (0..n).map(|_| VOCAB[rng.index(VOCAB.len())]).collect();
            parse_never_panics(&toks.join(" "));
        }
    }

    #[test]
    fn mutated_example_never_panics() {
        let mut rng = Rng::new(7);
        let chars: Vec<char> = EXAMPLE.chars().collect();
        for _ in 0..300 {
            let mut text = chars.clone();
            for _ in 0..1 + rng.index(3) {
                let at = rng.index(text.len());
                match rng.index(3) {
                    0 => {
                        let end = (at + 1 + rng.index(8)).min(text.len());
                        text.drain(at..end);
                    }
                    1 => text.insert(at, ";:(){}<>=.x0/&"[rng.index(14)..].chars().next().unwrap_or(';')),
                    _ => {
                        let other = rng.index(text.len());
                        text.swap(at, other);
                    }
                }
            }
            parse_never_panics(&text.into_iter().collect::<String>());
        }
    }
}
