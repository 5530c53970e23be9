//! Builders for expressions, integer literals and keysets.
//!
//! The grammar leaves each expression as a flat run of prefix operators,
//! operands and infix operators; a Pratt parser ([`pratt`]) builds the tree
//! with P4_16 precedence. Every builder here also returns the depth of the
//! tree it built, so that absurdly deep expressions are cut off
//! ([`Builder::node`]) before later recursive passes see them.

use std::sync::OnceLock;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::{children, grammar_bug, Builder, Rule, MAX_EXPR_DEPTH};
use crate::ast::*;
use crate::span::Span;

/// Most prefix operators, operands and infix operators in one flat
/// expression; bounds the Pratt parser's recursion on `!!!!...x`.
const MAX_EXPR_ELEMS: usize = 1024;

/// The precedence table of `grammar/p4lite.pest`, lowest first: P4_16's as
/// p4c's parser has it, where `&`, `^` and `|` bind tighter than the
/// comparisons (unlike C), so `a & 0x0F == 0` is `(a & 0x0F) == 0`. Postfix
/// operations (`.`, `[hi:lo]`, calls) bind tighter still; the grammar
/// applies them in `postfix_expr`.
fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::op_cond, Assoc::Right))
            .op(Op::infix(Rule::op_or, Assoc::Left))
            .op(Op::infix(Rule::op_and, Assoc::Left))
            .op(Op::infix(Rule::op_eq, Assoc::Left) | Op::infix(Rule::op_ne, Assoc::Left))
            .op(Op::infix(Rule::op_lt, Assoc::Left)
                | Op::infix(Rule::op_le, Assoc::Left)
                | Op::infix(Rule::op_gt, Assoc::Left)
                | Op::infix(Rule::op_ge, Assoc::Left))
            .op(Op::infix(Rule::op_bitor, Assoc::Left))
            .op(Op::infix(Rule::op_bitxor, Assoc::Left))
            .op(Op::infix(Rule::op_bitand, Assoc::Left))
            .op(Op::infix(Rule::op_shl, Assoc::Left) | Op::infix(Rule::op_shr, Assoc::Left))
            .op(Op::infix(Rule::op_add, Assoc::Left)
                | Op::infix(Rule::op_sub, Assoc::Left)
                | Op::infix(Rule::op_sat_add, Assoc::Left)
                | Op::infix(Rule::op_sat_sub, Assoc::Left)
                | Op::infix(Rule::op_concat, Assoc::Left))
            .op(Op::infix(Rule::op_mul, Assoc::Left))
            .op(Op::prefix(Rule::op_not)
                | Op::prefix(Rule::op_bitnot)
                | Op::prefix(Rule::op_neg)
                | Op::prefix(Rule::cast))
    })
}

/// An expression and the depth of its tree.
type Deep = (Expr, u32);

impl Builder {
    /// `expr = { prefix_op* ~ postfix_expr ~ (infix_op ~ prefix_op* ~ postfix_expr)* }`
    pub(super) fn expr(&self, pair: Pair<'_, Rule>) -> Expr {
        self.expr_deep(pair).0
    }

    fn expr_deep(&self, pair: Pair<'_, Rule>) -> Deep {
        let span = self.span(&pair);
        if pair.clone().into_inner().len() > MAX_EXPR_ELEMS {
            self.error(span, format!("expression has more than {MAX_EXPR_ELEMS} operators and operands"), "too long");
            return (placeholder(span), 0);
        }
        pratt()
            .map_primary(|operand| self.postfix_expr_deep(operand))
            .map_prefix(|op, rhs| self.prefix(op, rhs))
            .map_infix(|lhs, op, rhs| self.infix(lhs, op, rhs))
            .parse(pair.into_inner())
    }

    /// A node of depth `depth`, or a placeholder with an error when that is
    /// deeper than [`MAX_EXPR_DEPTH`].
    fn node(&self, kind: ExprKind, span: Span, depth: u32) -> Deep {
        if depth <= MAX_EXPR_DEPTH {
            return (Expr { kind, span }, depth);
        }
        if !self.depth_reported.replace(true) {
            self.error(span, format!("expression nests more than {MAX_EXPR_DEPTH} deep"), "too deep");
        }
        (placeholder(span), 0)
    }

    /// `prefix_op = _{ op_not | op_bitnot | op_neg | cast }` applied to its operand.
    fn prefix(&self, op: Pair<'_, Rule>, (rhs, depth): Deep) -> Deep {
        let span = self.span(&op).to(rhs.span);
        let kind = match op.as_rule() {
            Rule::op_not => ExprKind::Unary { op: UnOp::Not, expr: Box::new(rhs) },
            Rule::op_bitnot => ExprKind::Unary { op: UnOp::BitNot, expr: Box::new(rhs) },
            Rule::op_neg => ExprKind::Unary { op: UnOp::Neg, expr: Box::new(rhs) },
            Rule::cast => {
                let [ty] = children(op).take();
                ExprKind::Cast { ty: self.type_of(ty), expr: Box::new(rhs) }
            }
            other => grammar_bug(other, "an unexpected prefix operator"),
        };
        self.node(kind, span, depth + 1)
    }

    /// `infix_op` between two operands; `op_cond = { "?" ~ expr ~ ":" }` carries
    /// the middle of `c ? a : b`.
    fn infix(&self, (lhs, ld): Deep, op: Pair<'_, Rule>, (rhs, rd): Deep) -> Deep {
        let span = lhs.span.to(rhs.span);
        let bin = match op.as_rule() {
            Rule::op_cond => {
                let [then] = children(op).take();
                let (then, td) = self.expr_deep(then);
                let kind = ExprKind::Cond { cond: Box::new(lhs), then: Box::new(then), els: Box::new(rhs) };
                return self.node(kind, span, ld.max(td).max(rd) + 1);
            }
            Rule::op_or => BinOp::Or,
            Rule::op_and => BinOp::And,
            Rule::op_bitor => BinOp::BitOr,
            Rule::op_bitxor => BinOp::BitXor,
            Rule::op_bitand => BinOp::BitAnd,
            Rule::op_eq => BinOp::Eq,
            Rule::op_ne => BinOp::Ne,
            Rule::op_lt => BinOp::Lt,
            Rule::op_le => BinOp::Le,
            Rule::op_gt => BinOp::Gt,
            Rule::op_ge => BinOp::Ge,
            Rule::op_shl => BinOp::Shl,
            Rule::op_shr => BinOp::Shr,
            Rule::op_add => BinOp::Add,
            Rule::op_sub => BinOp::Sub,
            Rule::op_sat_add => BinOp::SatAdd,
            Rule::op_sat_sub => BinOp::SatSub,
            Rule::op_concat => BinOp::Concat,
            Rule::op_mul => BinOp::Mul,
            other => grammar_bug(other, "an unexpected infix operator"),
        };
        let kind = ExprKind::Binary { op: bin, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        self.node(kind, span, ld.max(rd) + 1)
    }

    /// `postfix_expr = { primary ~ (member | slice | call)* }`, applied left to right.
    pub(super) fn postfix_expr(&self, pair: Pair<'_, Rule>) -> Expr {
        self.postfix_expr_deep(pair).0
    }

    fn postfix_expr_deep(&self, pair: Pair<'_, Rule>) -> Deep {
        let mut n = children(pair);
        let (mut base, mut depth) = self.primary(n.next());
        // Each intermediate node spans from the first element to its own
        // operator, so `routes.apply()` in `routes.apply().hit` ends at `)`.
        let start = base.span;
        for op in n.rest() {
            let span = start.to(self.span(&op));
            let (kind, inner) = match op.as_rule() {
                // member = { "." ~ member_name }
                Rule::member => {
                    let [name] = children(op).take();
                    (ExprKind::Member { base: Box::new(base), member: self.ident(name) }, depth)
                }
                // slice = { "[" ~ expr ~ ":" ~ expr ~ "]" }
                Rule::slice => {
                    let [hi, lo] = children(op).take();
                    let ((hi, hd), (lo, lod)) = (self.expr_deep(hi), self.expr_deep(lo));
                    let kind = ExprKind::Slice { base: Box::new(base), hi: Box::new(hi), lo: Box::new(lo) };
                    (kind, depth.max(hd).max(lod))
                }
                // index = { "[" ~ expr ~ "]" }
                Rule::index => {
                    let [i] = children(op).take();
                    let (i, id) = self.expr_deep(i);
                    (ExprKind::Index { base: Box::new(base), index: Box::new(i) }, depth.max(id))
                }
                // call = { type_args? ~ "(" ~ (expr ~ ("," ~ expr)*)? ~ ")" }
                Rule::call => {
                    let mut parts = children(op);
                    let type_args = parts.next_if(Rule::type_args).map(|t| self.type_args(t)).unwrap_or_default();
                    let mut args = Vec::new();
                    let mut d = depth;
                    for arg in parts.rest() {
                        let (arg, ad) = self.expr_deep(arg);
                        d = d.max(ad);
                        args.push(arg);
                    }
                    (ExprKind::Call { callee: Box::new(base), type_args, args }, d)
                }
                other => grammar_bug(other, "an unexpected postfix operation"),
            };
            (base, depth) = self.node(kind, span, inner + 1);
        }
        (base, depth)
    }

    /// `primary = _{ literal | list_expr | paren_expr | ident }`
    fn primary(&self, pair: Pair<'_, Rule>) -> Deep {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::ident => ExprKind::Name(self.ident(pair)),
            Rule::bool_lit => {
                // The keyword token is the pair's own child, kept here on purpose.
                let is_true = pair.into_inner().next().map(|k| k.as_rule()) == Some(Rule::kw_true);
                ExprKind::Bool(is_true)
            }
            Rule::list_expr => {
                let mut items = Vec::new();
                let mut depth = 0;
                for item in children(pair).rest() {
                    let (item, d) = self.expr_deep(item);
                    depth = depth.max(d);
                    items.push(item);
                }
                return self.node(ExprKind::List(items), span, depth + 1);
            }
            // paren_expr = { "(" ~ expr ~ ")" }: no node of its own, but the
            // inner expression's span grows to cover the parentheses.
            Rule::paren_expr => {
                let [inner] = children(pair).take();
                let (inner, depth) = self.expr_deep(inner);
                return (Expr { span, ..inner }, depth);
            }
            _ => self.int_lit(pair),
        };
        (Expr { kind, span }, 1)
    }

    /// The integer literal alternatives of `literal`, with their value and
    /// width. Whether a sized literal's width is valid (`0w1`) and whether
    /// its value fits (`8w256`) are the checker's questions (E0204, E0203),
    /// asked with the other checks; only a width too long to read is
    /// reported here, with the checker's code.
    fn int_lit(&self, pair: Pair<'_, Rule>) -> ExprKind {
        let span = self.span(&pair);
        let text = pair.as_str();
        let syntax = |message: String| (super::E_SYNTAX, message);
        let parsed = match pair.as_rule() {
            Rule::dec_lit => parse_digits(text, 10).map(|v| (v, None)).map_err(syntax),
            Rule::hex_lit => parse_digits(&text[2..], 16).map(|v| (v, None)).map_err(syntax),
            Rule::bin_lit => parse_digits(&text[2..], 2).map(|v| (v, None)).map_err(syntax),
            Rule::width_lit => parse_width_lit(text),
            Rule::ipv4_lit => parse_ipv4(text).map(|v| (v, Some(32))).map_err(syntax),
            Rule::mac_lit => parse_digits(&text.replace(':', ""), 16).map(|v| (v, Some(48))).map_err(syntax),
            Rule::bad_number => Err(syntax(format!("`{text}` is not a valid number"))),
            other => grammar_bug(other, "an unexpected literal"),
        };
        match parsed {
            Ok((value, width)) => ExprKind::Int { value, width },
            Err((code, message)) => {
                let (label, help) = match (code, pair.as_rule()) {
                    (super::E_SYNTAX, Rule::bad_number) => ("invalid number", SYNTAX_HELP),
                    (super::E_SYNTAX, _) => ("invalid literal", SYNTAX_HELP),
                    _ => ("invalid width", "widths are 1 to 128 bits"),
                };
                self.report(crate::diag::Diagnostic::error(code, span, message, label).with_help(help));
                ExprKind::Int { value: 0, width: None }
            }
        }
    }

    /// `keysets = _{ keyset_tuple | keyset }`: one keyset per select expression or key.
    pub(super) fn keysets(&self, pair: Pair<'_, Rule>) -> Vec<Keyset> {
        match pair.as_rule() {
            // keyset_tuple = { "(" ~ keyset ~ ("," ~ keyset)* ~ ")" ~ &":" }
            Rule::keyset_tuple => children(pair).rest().map(|k| self.keyset(k)).collect(),
            Rule::keyset => vec![self.keyset(pair)],
            other => grammar_bug(other, "an unexpected keyset"),
        }
    }

    /// `keyset = { keyset_default | expr ~ ((mask_op | range_op | prefix_len_op) ~ expr)? }`
    fn keyset(&self, pair: Pair<'_, Rule>) -> Keyset {
        let span = self.span(&pair);
        let mut n = children(pair);
        if n.next_if(Rule::keyset_default).is_some() {
            return Keyset { kind: KeysetKind::Default, span };
        }
        let value = self.expr(n.next());
        let kind = match n.rest().collect::<Vec<_>>().as_slice() {
            [] => KeysetKind::Value(value),
            [op, other] => {
                let other = self.expr(other.clone());
                match op.as_rule() {
                    Rule::mask_op => KeysetKind::Mask(value, other),
                    Rule::range_op => KeysetKind::Range(value, other),
                    Rule::prefix_len_op => KeysetKind::Prefix(value, other),
                    rule => grammar_bug(rule, "an unexpected keyset operator"),
                }
            }
            _ => grammar_bug(Rule::keyset, "an unexpected number of children"),
        };
        Keyset { kind, span }
    }
}

/// The help of a malformed number.
const SYNTAX_HELP: &str = "numbers are written `42`, `0x2a`, `0b101010`, `8w42`, `10.0.0.1` or `00:11:22:33:44:55`";

/// Stands in for an expression that was reported as an error.
fn placeholder(span: Span) -> Expr {
    Expr { kind: ExprKind::Int { value: 0, width: None }, span }
}

/// The value of `digits` (separators `_` allowed) in `radix`, or why not.
fn parse_digits(digits: &str, radix: u32) -> Result<u128, String> {
    let mut value: u128 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix).ok_or_else(|| format!("`{c}` is not a digit in base {radix}"))?;
        value = value
            .checked_mul(u128::from(radix))
            .and_then(|v| v.checked_add(u128::from(d)))
            .ok_or_else(|| format!("number `{digits}` does not fit in 128 bits"))?;
    }
    Ok(value)
}

/// `8w255`, `16w0x800`: a width and a value, or the code and message of
/// why not. The checker validates the width and whether the value fits it;
/// a width beyond `u16` cannot reach it and is an invalid width (E0204) here.
fn parse_width_lit(text: &str) -> Result<(u128, Option<u16>), (&'static str, String)> {
    let syntax = |message: String| (super::E_SYNTAX, message);
    let (width, value) = text.split_once('w').ok_or_else(|| syntax(format!("`{text}` is not a valid number")))?;
    let width =
        width.parse::<u16>().map_err(|_| ("E0204", format!("the width of `{text}` must be between 1 and 128")))?;
    let value = match value.get(..2) {
        Some("0x" | "0X") => parse_digits(&value[2..], 16),
        Some("0b" | "0B") => parse_digits(&value[2..], 2),
        _ => parse_digits(value, 10),
    };
    Ok((value.map_err(syntax)?, Some(width)))
}

/// `10.0.0.1` as a 32-bit value; each part at most 255.
fn parse_ipv4(text: &str) -> Result<u128, String> {
    let mut value: u128 = 0;
    for part in text.split('.') {
        match part.parse::<u8>() {
            Ok(octet) => value = value << 8 | u128::from(octet),
            Err(_) => return Err(format!("`{part}` in the IPv4 address `{text}` is larger than 255")),
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{errs, keyset_str, ok, sexp};
    use crate::ast::*;

    /// The value of `const bit<8> X = SRC;` as an S-expression.
    fn e(src: &str) -> String {
        let program = ok(&format!("const bit<8> X = {src};"));
        match &program.decls[0] {
            Decl::Const(c) => sexp(&c.value),
            other => panic!("{other:?}"),
        }
    }

    /// The keysets of each case of `select(a, b) { CASES }`, compactly.
    fn cases(body: &str) -> Vec<String> {
        let src = format!("parser P() {{ state s {{ transition select(a, b) {{ {body} }} }} }}");
        let Decl::Parser(p) = &ok(&src).decls[0] else { panic!() };
        let Some(Transition::Select { cases, .. }) = &p.states[0].transition else { panic!() };
        cases
            .iter()
            .map(|c| {
                let ks: Vec<String> = c.keysets.iter().map(keyset_str).collect();
                format!("{} -> {}", ks.join(" | "), c.next.name)
            })
            .collect()
    }

    #[test]
    fn binary_precedence_follows_p4() {
        assert_eq!(e("a + b << c"), "(<< (+ a b) c)");
        assert_eq!(e("a << b + c"), "(<< a (+ b c))");
        assert_eq!(e("a == b && c"), "(&& (== a b) c)");
        assert_eq!(e("a || b && c"), "(|| a (&& b c))");
        assert_eq!(e("a | b ^ c & d"), "(| a (^ b (& c d)))");
        assert_eq!(e("a & b == c"), "(== (& a b) c)");
        assert_eq!(e("a == b & c"), "(== a (& b c))");
        assert_eq!(e("a | b < c ^ d"), "(< (| a b) (^ c d))");
        assert_eq!(e("a & b << c"), "(& a (<< b c))");
        assert_eq!(e("a != b | c && d"), "(&& (!= a (| b c)) d)");
        assert_eq!(e("a < b == c >= d"), "(== (< a b) (>= c d))");
        assert_eq!(e("a >> 2 <= b"), "(<= (>> a 2) b)");
        assert_eq!(e("a * b + c * d"), "(+ (* a b) (* c d))");
        assert_eq!(e("a ++ b + c - d"), "(- (+ (++ a b) c) d)");
        assert_eq!(e("a - b - c"), "(- (- a b) c)");
        assert_eq!(e("a != b || !c"), "(|| (!= a b) (! c))");
    }

    #[test]
    fn conditional_is_right_associative_and_lowest() {
        assert_eq!(e("a ? b : c ? d : e"), "(? a b (? c d e))");
        assert_eq!(e("a ? b ? c : d : e"), "(? a (? b c d) e)");
        assert_eq!(e("a || b ? c + 1 : d"), "(? (|| a b) (+ c 1) d)");
    }

    #[test]
    fn prefix_binds_tighter_than_binary_and_looser_than_postfix() {
        assert_eq!(e("-a * b"), "(* (- a) b)");
        assert_eq!(e("~a & b"), "(& (~ a) b)");
        assert_eq!(e("!h.isValid()"), "(! h.isValid())");
        assert_eq!(e("- -a"), "(- (- a))");
        assert_eq!(e("!!a"), "(! (! a))");
    }

    #[test]
    fn casts_and_parentheses_are_told_apart() {
        assert_eq!(e("(bit<8>) x + 1"), "(+ (cast bit<8> x) 1)");
        assert_eq!(e("(bit<8>)(x + 1)"), "(cast bit<8> (+ x 1))");
        assert_eq!(e("(bit<32>) -1"), "(cast bit<32> (- 1))");
        assert_eq!(e("(bool) x"), "(cast bool x)");
        assert_eq!(e("(mac_addr_t) y"), "(cast mac_addr_t y)");
        assert_eq!(e("(mac_addr_t) 0"), "(cast mac_addr_t 0)");
        assert_eq!(e("(bit<8>)(bit<16>) x"), "(cast bit<8> (cast bit<16> x))");
        // A name in parentheses followed by an operator is a parenthesised expression.
        assert_eq!(e("(x) + 1"), "(+ x 1)");
        assert_eq!(e("(x) - 1"), "(- x 1)");
        assert_eq!(e("(x) < y"), "(< x y)");
        assert_eq!(e("(a + b) * c"), "(* (+ a b) c)");
        assert_eq!(e("(a < b)"), "(< a b)");
    }

    #[test]
    fn type_arguments_on_calls_do_not_break_comparisons() {
        assert_eq!(e("pkt.lookahead<bit<8>>()"), "pkt.lookahead<1>()");
        assert_eq!(e("csum16<bit<32>>(x)"), "csum16<1>(x)");
        assert_eq!(e("f<bit<8>, bool>(x, y)"), "f<2>(x, y)");
        assert_eq!(e("a < b"), "(< a b)");
        assert_eq!(e("a < b && c > d"), "(&& (< a b) (> c d))");
        assert_eq!(e("x < y >> 1"), "(< x (>> y 1))");
        assert_eq!(e("a<b"), "(< a b)");
    }

    #[test]
    fn postfix_chains_apply_left_to_right() {
        assert_eq!(e("routes.apply().hit"), "routes.apply().hit");
        assert_eq!(e("hdr.ipv4.ttl[7:4]"), "hdr.ipv4.ttl[7:4]");
        assert_eq!(e("f(a, b + 1)[3:0]"), "f(a, (+ b 1))[3:0]");
        assert_eq!(e("{ a, b.c, 1 }"), "{a, b.c, 1}");
        assert_eq!(e("{}"), "{}");
        // Keywords are fine after `.`.
        assert_eq!(e("t.apply().action_run"), "t.apply().action_run");
        assert_eq!(e("h.key"), "h.key");
    }

    #[test]
    fn integer_literals() {
        assert_eq!(e("42"), "42");
        assert_eq!(e("1_000"), "1000");
        assert_eq!(e("0x0800"), "2048");
        assert_eq!(e("0xFF_FF"), "65535");
        assert_eq!(e("0b1010"), "10");
        assert_eq!(e("8w255"), "8w255");
        assert_eq!(e("16w0x800"), "16w2048");
        assert_eq!(e("4w0b1010"), "4w10");
        assert_eq!(e("128w0xffffffffffffffffffffffffffffffff"), format!("128w{}", u128::MAX));
        assert_eq!(e("340282366920938463463374607431768211455"), u128::MAX.to_string());
        assert_eq!(e("true && false"), "(&& true false)");
    }

    #[test]
    fn ipv4_and_mac_literals() {
        assert_eq!(e("10.0.0.1"), "32w167772161");
        assert_eq!(e("255.255.255.255"), "32w4294967295");
        assert_eq!(e("00:11:22:33:44:55"), "48w73588229205");
        assert_eq!(e("aa:bb:cc:dd:ee:ff"), "48w187723572702975");
        assert_eq!(e("AA:BB:CC:DD:EE:FF"), "48w187723572702975");
        // Not a MAC: a conditional whose branches are numbers.
        assert_eq!(e("c ? 10:20"), "(? c 10 20)");
        assert_eq!(e("x[15:08]"), "x[15:8]");
    }

    #[test]
    fn bad_literals_are_diagnostics() {
        let over = errs("const bit<8> X = 340282366920938463463374607431768211456;");
        assert_eq!(over, ["number `340282366920938463463374607431768211456` does not fit in 128 bits"]);
        let over = errs("const bit<8> X = 0x1_0000_0000_0000_0000_0000_0000_0000_0000;");
        assert!(over[0].contains("does not fit in 128 bits"), "{over:?}");
        // Widths and values that do not fit them are the checker's (E0204, E0203).
        assert_eq!(e("8w256"), "8w256");
        assert_eq!(e("0w1"), "0w1");
        assert_eq!(e("129w1"), "129w1");
        assert_eq!(errs("const bit<8> X = 65536w1;"), ["the width of `65536w1` must be between 1 and 128"]);
        assert_eq!(errs("const bit<8> X = 300.1.1.1;"), ["`300` in the IPv4 address `300.1.1.1` is larger than 255"]);
        assert_eq!(errs("const bit<8> X = 12ab;"), ["`12ab` is not a valid number"]);
        assert_eq!(errs("const bit<8> X = 0x;"), ["`0x` is not a valid number"]);
        assert_eq!(errs("const bit<8> X = 1.2.3;"), ["`1.2.3` is not a valid number"]);
        assert_eq!(errs("const bit<8> X = 8w;"), ["`8w` is not a valid number"]);
        // Several bad literals are all reported.
        assert_eq!(errs("const bit<8> X = 0x + 12ab;").len(), 2);
        assert_eq!(errs("const bit<99999999999> X = 1;"), ["bit width `99999999999` is too large"]);
    }

    #[test]
    fn select_keysets() {
        assert_eq!(
            cases("(1, _): s1; (default, 2 &&& 3): s2; (0x0600 .. 0x06FF, x): s3; default: accept; _: reject;"),
            [
                "1 | default -> s1",
                "default | 2 &&& 3 -> s2",
                "1536 .. 1791 | x -> s3",
                "default -> accept",
                "default -> reject"
            ]
        );
        // A parenthesised value with a mask is one keyset, not a tuple.
        assert_eq!(cases("(a + 1) &&& 3: s;"), ["(+ a 1) &&& 3 -> s"]);
        assert_eq!(cases("10.0.0.1..10.0.0.9: s;"), ["32w167772161 .. 32w167772169 -> s"]);
        assert_eq!(cases("1..5: s;"), ["1 .. 5 -> s"]);
    }

    #[test]
    fn select_colons_next_to_numbers_and_macs() {
        assert_eq!(
            cases("10: accept; 10:accept; 0x0800:parse_ipv4; 0x0800 : parse_ipv4; aa:bb:cc:dd:ee:ff: s; 00:11:22:33:44:55 : t;"),
            [
                "10 -> accept",
                "10 -> accept",
                "2048 -> parse_ipv4",
                "2048 -> parse_ipv4",
                "48w187723572702975 -> s",
                "48w73588229205 -> t"
            ]
        );
    }

    #[test]
    fn prefix_lengths_belong_to_entries_only() {
        let got = errs("parser P() { state s { transition select(a) { 10.0.0.0 / 8: accept; } } }");
        assert_eq!(got, ["a prefix length (`/`) is only allowed in table entries"]);
    }

    #[test]
    fn spans_cover_exactly_the_expression() {
        let src = "const bit<8> X = (a + b)  * c  // trailing\n  ;";
        let Decl::Const(c) = &ok(src).decls[0] else { panic!() };
        assert_eq!(&src[c.value.span.lo as usize..c.value.span.hi as usize], "(a + b)  * c");
        let ExprKind::Binary { lhs, .. } = &c.value.kind else { panic!() };
        assert_eq!(&src[lhs.span.lo as usize..lhs.span.hi as usize], "(a + b)");
    }
}
