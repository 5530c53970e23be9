//! Syntax errors: pest's error turned into one [`Diagnostic`] in words.
//!
//! pest reports the farthest position it reached and (with error detail on)
//! the literal tokens it tried there. [`syntax_error`] turns that into
//! "expected `;` or an operator, found `y`": whitespace and tokens that
//! would only have continued the previous word are dropped, and families of
//! tokens are summarised by a phrase ("an expression", "a statement"), so a
//! message stays short and never shows a grammar rule's name. When pest has
//! no tokens to offer, the rules it tried are named with [`phrase`], one
//! exhaustive `match` so that a new rule cannot leak into a message.

use pest::error::{Error, ErrorVariant, InputLocation};

use super::{Rule, E_SYNTAX};
use crate::diag::Diagnostic;
use crate::span::{SourceId, Span};

/// Converts pest's error into one diagnostic at the offending token.
pub(super) fn syntax_error(e: &Error<Rule>, text: &str, source: SourceId) -> Diagnostic {
    // Where the last rule failed, and the rules that failed there.
    let rule_pos = match e.location {
        InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
    };
    let positives: &[Rule] = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => positives,
        // pest's own limits (call count, native stack), not the grammar.
        ErrorVariant::CustomError { message } => {
            let pos = rule_pos.min(text.len());
            let span = Span::new(source, pos, pos + Found::at(text, pos).len);
            return Diagnostic::error(E_SYNTAX, span, format!("the parser gave up: {message}"), "here")
                .with_help("the program is nested too deeply");
        }
    };
    // Where the farthest token failed, and the tokens tried there.
    let attempts = e.parse_attempts();
    let token_pos = attempts.as_ref().map_or(rule_pos, |a| a.max_position).min(text.len());
    let tokens: Vec<Token> = attempts
        .map(|a| a.expected_tokens().iter().filter_map(|t| Token::from_display(&t.to_string())).collect())
        .unwrap_or_default();

    let mut pos = token_pos;
    let mut expected = Expected::from_tokens(&tokens, text, pos);
    // A field's optional stack size `[N]` is never what a field name lacks.
    if expected.items.iter().any(|i| i == "an identifier") {
        expected.items.retain(|i| i != "`[`");
    }
    if expected.is_empty() {
        // Only lookahead failures there (`if` where a name must be): fall
        // back to the rules that failed and where they started.
        pos = rule_pos.min(text.len());
        for &rule in positives {
            // A field's optional stack size `[N]` is never what a field name lacks.
            if rule == Rule::stack_size && positives.len() > 1 {
                continue;
            }
            expected.push(phrase(rule));
        }
    }
    let found = Found::at(text, pos);
    if let Some(d) = unsupported(text, pos, &expected, source) {
        return d;
    }
    let message = if expected.is_empty() {
        format!("unexpected {}", found.what)
    } else {
        format!("expected {}, found {}", expected.join(), found.what)
    };
    // The last character of the token before the error (for notes, and as
    // the place to point at when the input simply ends).
    let prev_end = super::without_trivia(&text[..pos]);
    let prev = text[..prev_end].chars().next_back().map(|c| Span::new(source, prev_end - c.len_utf8(), prev_end));
    let mut diag = match (found.len, prev) {
        (0, Some(prev)) => Diagnostic::error(E_SYNTAX, prev, message, "the input ends after this"),
        _ => Diagnostic::error(E_SYNTAX, Span::new(source, pos, pos + found.len), message, "unexpected token"),
    };
    // A missing `;` is noticed only at the next line's first token; point
    // back at where it belongs too.
    if let Some(prev) = prev {
        if found.len > 0 && expected.items.iter().any(|i| i == "`;`") && text[prev_end..pos].contains('\n') {
            diag = diag.with_note(prev, "`;` missing after this?");
        }
    }
    // `bit<W>` with a named constant: P4_16 wants it in parentheses.
    if text[..prev_end].ends_with("bit<") && text[pos..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        diag = diag.with_help("a width that is not a number is a constant expression in parentheses: `bit<(W)>`");
    }
    diag
}

/// A syntax error at P4_16 syntax that p4lite does not have, said plainly:
/// a preprocessor directive, an annotation, `/`, `%`, a stack type `T[N]` outside a struct field. None for any
/// other error.
fn unsupported(text: &str, pos: usize, expected: &Expected, source: SourceId) -> Option<Diagnostic> {
    let rest = &text[pos..];
    let at = |lo: usize, hi: usize| Span::new(source, lo, hi);
    let word_end = |from: usize| {
        text[from..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(text.len(), |n| from + n)
    };
    let error = |span: Span, message: String, help: &str| {
        Some(Diagnostic::error(E_SYNTAX, span, message, "not supported").with_help(help.to_string()))
    };
    if rest.starts_with('#') {
        let end = word_end(pos + 1);
        let directive = &text[pos..end];
        let help = match directive {
            "#include" => {
                "remove it: every program sees p4lite's prelude (grammar/prelude.p4lite), which declares what \
                 core.p4 and v1model.p4 would"
            }
            "#define" => "declare a constant instead: `const bit<16> TYPE_IPV4 = 0x800;`",
            _ => "remove it: p4lite reads the program as written",
        };
        return error(at(pos, end), format!("p4lite has no preprocessor: `{directive}` is not supported"), help);
    }
    if rest.starts_with('@') {
        let end = word_end(pos + 1);
        if &text[pos..end] == "@priority" {
            return error(
                at(pos, end),
                "`@priority` is only accepted after a table entry's action".to_string(),
                "write the entry as `KEYSET : ACTION(ARGS) @priority(N);`",
            );
        }
        return error(
            at(pos, end),
            format!("p4lite has no `{}` annotation", &text[pos..end]),
            "remove it: the only annotation is `@priority(N)` after a table entry's action; the control plane \
             names tables and actions as declared, with or without their control's name (`MyIngress.drop` or `drop`)",
        );
    }
    // P4_16's `priority = N :` in front of an entry's keyset.
    let before = text[..pos].trim_end();
    if rest.starts_with('=') && before.ends_with("priority") {
        let lo = before.len() - "priority".len();
        return error(
            at(lo, pos + 1),
            "p4lite has no `priority = N:` before an entry's keyset".to_string(),
            "write the priority after the action: `KEYSET : ACTION(ARGS) @priority(N);` (the smallest number wins, \
             as in BMv2)",
        );
    }
    if rest.starts_with('%') || (rest.starts_with('/') && !rest.starts_with("//") && !rest.starts_with("/*")) {
        let op = &rest[..1];
        return error(
            at(pos, pos + 1),
            format!("p4lite has no `{op}` operator: there is no division or modulo"),
            "for a power of two, shift or mask: `x / 8` is `x >> 3`, `x % 8` is `x & 7` (or the slice `x[2:0]`)",
        );
    }
    let only = |allowed: &[&str]| !expected.is_empty() && expected.items.iter().all(|i| allowed.contains(&i.as_str()));
    if rest.starts_with('[') && only(&["`<`", "`(`", "an identifier"]) {
        let close = rest.find(']').map_or(pos + 1, |n| pos + n + 1);
        return error(
            at(pos, close),
            "p4lite has no arrays, and header stacks only as fields of a struct: `T[N]` is not supported here"
                .to_string(),
            "declare a header stack in the headers struct (`mpls_t[4] mpls;`), or the values one by one",
        );
    }
    None
}

/// The token at the error position, for "found ...".
struct Found {
    /// "`foo`", "keyword `if`", "end of input".
    what: String,
    /// Its length in bytes (0 at the end of input).
    len: usize,
}

/// Operators and punctuation longer than one character, longest first.
const MULTI_CHAR: &[&str] = &[
    "<<=", ">>=", "&&&", "//", "/*", "*/", "&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "++", "--", "..", "+=",
    "-=", "*=", "&=", "|=", "^=",
];

impl Found {
    fn at(text: &str, pos: usize) -> Found {
        let rest = &text[pos..];
        let Some(first) = rest.chars().next() else {
            return Found { what: "end of input".to_string(), len: 0 };
        };
        if first.is_ascii_alphanumeric() || first == '_' {
            let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let word = &rest[..len];
            let what = if is_keyword(word) { format!("keyword `{word}`") } else { format!("`{word}`") };
            return Found { what, len };
        }
        if let Some(op) = MULTI_CHAR.iter().find(|op| rest.starts_with(**op)) {
            return Found { what: format!("`{op}`"), len: op.len() };
        }
        let what = if first.is_control() || first.is_whitespace() {
            format!("character U+{:04X}", u32::from(first))
        } else {
            format!("`{first}`")
        };
        Found { what, len: first.len_utf8() }
    }
}

/// True for the reserved words of the grammar (`keyword` there).
fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

/// The grammar's reserved words (the `keyword` rule).
#[rustfmt::skip]
const KEYWORDS: &[&str] = &[
    "action", "apply", "bit", "bool", "const", "control", "default", "else", "entries", "exit",
    "extern", "false", "header", "if", "in", "inout", "out", "parser", "return", "select", "state",
    "struct", "switch", "table", "transition", "true", "typedef", "void",
];

/// What the parser would have accepted, as phrases ready to join.
struct Expected {
    items: Vec<String>,
}

/// A family of tokens summarised by one phrase: when `trigger` is among the
/// expected tokens, the phrase replaces every token the family `absorbs`.
struct Family {
    phrase: &'static str,
    trigger: Tok,
    absorbs: &'static [&'static [Tok]],
}

/// A token pattern: a literal, or a character range.
#[derive(Clone, Copy)]
enum Tok {
    Lit(&'static str),
    Range(char, char),
}

/// Tokens that can start an operand (see `prefix_op`, `primary`).
#[rustfmt::skip]
const OPERAND: &[Tok] = &[
    Tok::Lit("!"), Tok::Lit("~"), Tok::Lit("-"), Tok::Lit("("), Tok::Lit("{"), Tok::Lit("true"),
    Tok::Lit("false"), Tok::Lit("0x"), Tok::Lit("0X"), Tok::Lit("0b"), Tok::Lit("0B"),
    Tok::Lit("_"), Tok::Range('a', 'z'), Tok::Range('A', 'Z'), Tok::Range('0', '9'),
    Tok::Range('a', 'f'), Tok::Range('A', 'F'),
];

/// Tokens that can start a statement, besides an operand.
#[rustfmt::skip]
const STATEMENT: &[Tok] = &[
    Tok::Lit("if"), Tok::Lit("switch"), Tok::Lit("exit"), Tok::Lit("return"), Tok::Lit("const"),
    Tok::Lit("bit"), Tok::Lit("bool"), Tok::Lit("void"),
];

/// Tokens that can start a declaration or a type.
#[rustfmt::skip]
const DECLARATION: &[Tok] = &[
    Tok::Lit("const"), Tok::Lit("error"), Tok::Lit("enum"), Tok::Lit("typedef"), Tok::Lit("header"), Tok::Lit("struct"),
    Tok::Lit("extern"), Tok::Lit("action"), Tok::Lit("parser"), Tok::Lit("control"),
    Tok::Lit("table"), Tok::Lit("bit"), Tok::Lit("bool"), Tok::Lit("void"), Tok::Lit("_"),
    Tok::Range('a', 'z'), Tok::Range('A', 'Z'),
];

/// Tokens that continue an expression after an operand: infix operators,
/// postfix operations and the keyset operators.
#[rustfmt::skip]
const OPERATOR: &[Tok] = &[
    Tok::Lit("?"), Tok::Lit("||"), Tok::Lit("&&"), Tok::Lit("=="), Tok::Lit("!="), Tok::Lit("<<"),
    Tok::Lit("<="), Tok::Lit("<"), Tok::Lit(">>"), Tok::Lit(">="), Tok::Lit(">"), Tok::Lit("++"),
    Tok::Lit("+"), Tok::Lit("-"), Tok::Lit("*"), Tok::Lit("&"), Tok::Lit("^"), Tok::Lit("|"),
    Tok::Lit("|+|"), Tok::Lit("|-|"), Tok::Lit("."), Tok::Lit("["), Tok::Lit("("), Tok::Lit("&&&"),
    Tok::Lit(".."), Tok::Lit("/"),
    // Not operators of p4lite, but tried by the rule that reports them.
    Tok::Lit("<<="), Tok::Lit(">>="), Tok::Lit("+="), Tok::Lit("-="), Tok::Lit("*="),
    Tok::Lit("&="), Tok::Lit("|="), Tok::Lit("^="), Tok::Lit("--"),
];

/// Tokens that start a table property.
#[rustfmt::skip]
const TABLE_PROP: &[Tok] = &[
    Tok::Lit("key"), Tok::Lit("actions"), Tok::Lit("default_action"), Tok::Lit("size"),
    Tok::Lit("entries"), Tok::Lit("const"), Tok::Lit("_"), Tok::Range('a', 'z'),
    Tok::Range('A', 'Z'),
];

/// Tokens that start a type.
#[rustfmt::skip]
const TYPE: &[Tok] = &[
    Tok::Lit("bit"), Tok::Lit("bool"), Tok::Lit("void"), Tok::Lit("_"), Tok::Range('a', 'z'),
    Tok::Range('A', 'Z'),
];

/// The families, most specific first; each absorbs its tokens before the next looks.
const FAMILIES: &[Family] = &[
    // Top level; a stray `;` is allowed there but never worth suggesting.
    Family { phrase: "a declaration", trigger: Tok::Lit("typedef"), absorbs: &[DECLARATION, &[Tok::Lit(";")]] },
    Family { phrase: "a table property", trigger: Tok::Lit("default_action"), absorbs: &[TABLE_PROP] },
    Family { phrase: "a statement", trigger: Tok::Lit("exit"), absorbs: &[STATEMENT, OPERAND] },
    // Parser and control locals.
    Family { phrase: "a declaration", trigger: Tok::Lit("const"), absorbs: &[DECLARATION] },
    Family { phrase: "an expression", trigger: Tok::Lit("~"), absorbs: &[OPERAND] },
    Family { phrase: "an operator", trigger: Tok::Lit("||"), absorbs: &[OPERATOR] },
    Family { phrase: "a type", trigger: Tok::Lit("bool"), absorbs: &[TYPE] },
    Family { phrase: "an identifier", trigger: Tok::Range('a', 'z'), absorbs: &[IDENT] },
    Family { phrase: "a number", trigger: Tok::Range('0', '9'), absorbs: &[&[Tok::Range('0', '9')]] },
];

/// Tokens that start an identifier.
const IDENT: &[Tok] = &[Tok::Range('a', 'z'), Tok::Range('A', 'Z'), Tok::Lit("_")];

/// A token pest tried at the error position.
#[derive(Debug, PartialEq)]
enum Token {
    Lit(String),
    Range(char, char),
}

impl Token {
    /// Reads back pest's display of a token (its type is not public):
    /// a literal as is, a range as `a..z`; built-in rules (`ANY`) are dropped.
    fn from_display(shown: &str) -> Option<Token> {
        let chars: Vec<char> = shown.chars().collect();
        match chars.as_slice() {
            [a, '.', '.', b] => Some(Token::Range(*a, *b)),
            _ if shown == "BUILTIN_RULE" => None,
            _ => Some(Token::Lit(shown.to_string())),
        }
    }
}

impl Tok {
    fn matches(self, token: &Token) -> bool {
        match (self, token) {
            (Tok::Lit(s), Token::Lit(t)) => s == t,
            (Tok::Range(a, b), Token::Range(start, end)) => a == *start && b == *end,
            _ => false,
        }
    }
}

impl Expected {
    /// Summarises the tokens pest tried at `pos` of `text`.
    fn from_tokens(tokens: &[Token], text: &str, pos: usize) -> Expected {
        // Right after a word, letters and digits would only have made that
        // word longer (`1` → `12`, `8w1`); they are not what was missing.
        let after_word = text[..pos].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let mut left: Vec<&Token> = tokens
            .iter()
            .filter(|t| match t {
                // Whitespace and comments may always come next; never news.
                Token::Lit(token) if matches!(token.as_str(), " " | "\t" | "\r" | "\n" | "//" | "/*") => false,
                Token::Lit(token) => !after_word || !token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                Token::Range(..) => !after_word,
            })
            .collect();
        let mut phrases = Vec::new();
        for family in FAMILIES {
            if left.iter().any(|t| family.trigger.matches(t)) {
                let absorbed = |t: &Token| family.absorbs.iter().flat_map(|set| set.iter()).any(|a| a.matches(t));
                left.retain(|t| !absorbed(t) && !family.trigger.matches(t));
                phrases.push(family.phrase.to_string());
            }
        }
        let mut items: Vec<String> = Vec::new();
        let mut literal: Vec<&str> = left
            .iter()
            .filter_map(|t| match t {
                Token::Lit(token) => Some(token.as_str()),
                Token::Range(..) => None,
            })
            .collect();
        literal.sort_by_key(|t| (token_rank(t), *t));
        items.extend(literal.into_iter().map(|t| format!("`{t}`")));
        for p in phrases {
            if !items.contains(&p) {
                items.push(p);
            }
        }
        Expected { items }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn push(&mut self, phrase: &str) {
        if !self.items.iter().any(|i| i == phrase) {
            self.items.push(phrase.to_string());
        }
    }

    /// "a", "a or b", "a, b or c".
    fn join(&self) -> String {
        match self.items.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
        }
    }
}

/// Order of literal tokens in a message: terminators first, then the rest.
fn token_rank(token: &str) -> u8 {
    match token {
        ";" => 0,
        "," => 1,
        ":" => 2,
        ")" | "]" | "}" | ">" => 3,
        "=" => 4,
        "{" | "(" | "[" | "<" => 5,
        _ if token.chars().all(|c| c.is_ascii_alphabetic() || c == '_') => 7,
        _ => 6,
    }
}

/// True for keyword tokens that carry no information beyond their presence
/// in the rule that contains them; the builders never see them.
pub(super) fn is_bare_keyword(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_action
            | Rule::kw_actions
            | Rule::kw_apply
            | Rule::kw_bit
            | Rule::kw_bool
            | Rule::kw_const
            | Rule::kw_control
            | Rule::kw_default
            | Rule::kw_else
            | Rule::kw_entries
            | Rule::kw_exit
            | Rule::kw_extern
            | Rule::kw_false
            | Rule::kw_header
            | Rule::kw_if
            | Rule::kw_in
            | Rule::kw_inout
            | Rule::kw_key
            | Rule::kw_out
            | Rule::kw_parser
            | Rule::kw_return
            | Rule::kw_select
            | Rule::kw_state
            | Rule::kw_struct
            | Rule::kw_switch
            | Rule::kw_table
            | Rule::kw_transition
            | Rule::kw_true
            | Rule::kw_typedef
            | Rule::kw_void
            | Rule::kw_default_action
            | Rule::kw_size
    )
}

/// Every rule in words, for messages ("expected an identifier"). Exhaustive
/// on purpose: a new grammar rule does not compile until it has a phrase.
pub(super) fn phrase(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of input",
        Rule::WHITESPACE => "whitespace",
        Rule::COMMENT => "a comment",
        Rule::ident_start | Rule::ident_char => "a letter, digit or `_`",
        Rule::kw_action => "`action`",
        Rule::kw_actions => "`actions`",
        Rule::kw_apply => "`apply`",
        Rule::kw_bit => "`bit`",
        Rule::kw_bool => "`bool`",
        Rule::kw_const | Rule::const_flag => "`const`",
        Rule::kw_control => "`control`",
        Rule::kw_default => "`default`",
        Rule::kw_else => "`else`",
        Rule::kw_entries => "`entries`",
        Rule::kw_exit => "`exit`",
        Rule::kw_extern => "`extern`",
        Rule::kw_false => "`false`",
        Rule::kw_header => "`header`",
        Rule::kw_if => "`if`",
        Rule::kw_in => "`in`",
        Rule::kw_inout => "`inout`",
        Rule::kw_key => "`key`",
        Rule::kw_out => "`out`",
        Rule::kw_parser => "`parser`",
        Rule::kw_return => "`return`",
        Rule::kw_select => "`select`",
        Rule::kw_state => "`state`",
        Rule::kw_struct => "`struct`",
        Rule::kw_switch => "`switch`",
        Rule::kw_table => "`table`",
        Rule::kw_transition => "`transition`",
        Rule::kw_true => "`true`",
        Rule::kw_typedef => "`typedef`",
        Rule::kw_void => "`void`",
        Rule::kw_default_action => "`default_action`",
        Rule::kw_size => "`size`",
        Rule::keyword => "a keyword",
        Rule::ident => "an identifier",
        Rule::member_name => "a field or method name",
        Rule::hex_digit => "a hex digit",
        Rule::dec_digit => "a digit",
        Rule::mac_lit => "a MAC address",
        Rule::ipv4_lit => "an IPv4 address",
        Rule::width_lit
        | Rule::hex_lit
        | Rule::bin_lit
        | Rule::dec_lit
        | Rule::hex_body
        | Rule::bin_body
        | Rule::dec_body
        | Rule::bad_number => "a number",
        Rule::num_end => "the end of a number",
        Rule::bool_lit => "`true` or `false`",
        Rule::literal => "a literal",
        Rule::type_ref | Rule::bit_type | Rule::bool_type | Rule::void_type | Rule::named_type => "a type",
        Rule::width => "a bit width",
        Rule::type_args => "type arguments `<...>`",
        Rule::type_params => "type parameters `<T>`",
        Rule::expr | Rule::prefix_op | Rule::postfix_expr | Rule::primary | Rule::paren_expr => "an expression",
        Rule::op_not => "`!`",
        Rule::op_bitnot => "`~`",
        Rule::op_neg => "`-`",
        Rule::cast => "a cast `(type)`",
        Rule::infix_op
        | Rule::op_or
        | Rule::op_and
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_shl
        | Rule::op_le
        | Rule::op_lt
        | Rule::op_shr
        | Rule::op_ge
        | Rule::op_gt
        | Rule::op_concat
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_sat_add
        | Rule::op_sat_sub
        | Rule::op_mul
        | Rule::op_bitand
        | Rule::op_bitxor
        | Rule::op_bitor => "an operator",
        Rule::op_cond => "`? :`",
        Rule::member => "`.` and a name",
        Rule::slice => "a bit slice `[hi:lo]`",
        Rule::index => "an index `[i]`",
        Rule::call | Rule::call_args => "call arguments `(...)`",
        Rule::list_expr => "a list `{...}`",
        Rule::keysets | Rule::keyset_tuple | Rule::keyset => "a keyset",
        Rule::keyset_default => "`default` or `_`",
        Rule::mask_op => "`&&&`",
        Rule::range_op => "`..`",
        Rule::prefix_len_op => "`/`",
        Rule::block => "a block `{...}`",
        Rule::statement | Rule::branch | Rule::bad_unbraced => "a statement",
        Rule::if_stmt => "an `if` statement",
        Rule::switch_stmt => "a `switch` statement",
        Rule::switch_case => "a switch case",
        Rule::exit_stmt => "`exit;`",
        Rule::return_stmt => "`return;`",
        Rule::assign_stmt => "an assignment",
        Rule::expr_stmt => "a call",
        Rule::bad_compound_assign | Rule::compound_op | Rule::incdec_op => "an assignment",
        Rule::const_decl => "a constant declaration",
        Rule::var_decl => "a variable declaration",
        Rule::instance_decl => "an instance declaration",
        Rule::param => "a parameter",
        Rule::direction => "`in`, `out` or `inout`",
        Rule::params => "a parameter list `(...)`",
        Rule::program | Rule::decl => "a declaration",
        Rule::typedef_decl => "a `typedef`",
        Rule::error_decl => "an `error` declaration",
        Rule::word_error => "`error`",
        Rule::word_enum => "`enum`",
        Rule::enum_decl | Rule::enum_typed => "an `enum` declaration",
        Rule::enum_member => "an enum member",
        Rule::header_decl => "a header declaration",
        Rule::struct_decl => "a struct declaration",
        Rule::field => "a field",
        Rule::stack_size => "a stack size `[N]`",
        Rule::extern_decl | Rule::extern_fn => "an extern declaration",
        Rule::method_sig => "a method",
        Rule::ctor_sig => "a constructor",
        Rule::action_decl => "an action",
        Rule::parser_decl => "a parser",
        Rule::parser_local | Rule::control_local => "a declaration",
        Rule::state_decl => "a state",
        Rule::transition | Rule::direct_transition | Rule::select_transition => "a transition",
        Rule::select_case => "a select case",
        Rule::control_decl => "a control",
        Rule::table_decl => "a table",
        Rule::table_prop | Rule::other_prop => "a table property",
        Rule::key_prop => "a `key` property",
        Rule::key_elem => "a key element",
        Rule::actions_prop => "an `actions` property",
        Rule::default_action_prop => "a `default_action` property",
        Rule::size_prop => "a `size` property",
        Rule::entries_prop => "an `entries` property",
        Rule::entry => "a table entry",
        Rule::priority => "`@priority(...)`",
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;
    use crate::diag::render;
    use crate::span::Sources;

    /// The one diagnostic of a syntax error, rendered without colour.
    fn rendered(src: &str) -> String {
        let sources = Sources::new("test.p4", src);
        match parse(src, SourceId::USER) {
            Ok(_) => panic!("parsed but should not have: {src}"),
            Err(d) => {
                assert_eq!(d.len(), 1, "{d:?}");
                render(&d, &sources, false)
            }
        }
    }

    /// Rule names that must never reach a user (every rule whose name is not a plain word).
    fn assert_no_rule_names(text: &str) {
        for rule in Rule::all_rules() {
            let name = format!("{rule:?}");
            if name.contains('_') && name != "default_action" {
                assert!(!text.contains(&name), "rule name `{name}` leaked into:\n{text}");
            }
        }
    }

    #[test]
    fn missing_semicolon_points_at_both_places() {
        let text = rendered("control C() {\n  apply {\n    x = 1\n    y = 2;\n  }\n}\n");
        assert!(text.contains("expected `;` or an operator, found `y`"), "{text}");
        assert!(text.contains("[E0001]") || text.contains("E0001"), "{text}");
        assert!(text.contains("unexpected token"), "{text}");
        assert!(text.contains("`;` missing after this?"), "{text}");
        assert!(text.contains("test.p4:4:5"), "{text}");
        assert_no_rule_names(&text);
    }

    #[test]
    fn keyword_used_as_a_name() {
        let text = rendered("control C() { bit<8> table; apply {} }");
        assert!(text.contains("expected an identifier, found keyword `table`"), "{text}");
        assert_no_rule_names(&text);
    }

    #[test]
    fn unclosed_condition() {
        let text = rendered("control C() { apply { if (x == 1 { y = 2; } } }");
        assert!(text.contains("expected `)` or an operator, found `{`"), "{text}");
        assert_no_rule_names(&text);
    }

    #[test]
    fn commas_in_an_actions_list() {
        let text = rendered("control C() { table t { actions = { a, b } } apply {} }");
        assert!(text.contains("expected `;`, found `,`"), "{text}");
        assert_no_rule_names(&text);
    }

    #[test]
    fn control_without_apply() {
        let text = rendered("control C() { action a() {} }");
        assert!(text.contains("expected `apply` or a declaration, found `}`"), "{text}");
        assert_no_rule_names(&text);
    }

    #[test]
    fn select_case_without_colon() {
        let text = rendered("parser P() { state s { transition select(x) { 1 accept; } } }");
        assert!(text.contains("expected `:` or an operator, found `accept`"), "{text}");
        assert_no_rule_names(&text);
    }

    #[test]
    fn misplaced_top_level_token() {
        let text = rendered("header h { bit<8> x; }\n}\n");
        assert!(text.contains("expected a declaration, found `}`"), "{text}");
        let text = rendered("header h { bit<8> x; bit<8> }");
        assert!(text.contains("expected an identifier, found `}`"), "{text}");
        let text = rendered("const bit<8> X = 1");
        assert!(text.contains("expected `;` or an operator, found end of input"), "{text}");
        assert!(text.contains("the input ends after this"), "{text}");
    }

    #[test]
    fn statement_mistakes_explained() {
        let text = rendered("control C() { apply { x += 1; } }");
        assert!(text.contains("p4lite has no `+=` operator"), "{text}");
        assert!(text.contains("write `x = x + 1;`"), "{text}");
        let text = rendered("control C() { apply { hdr.ttl--; } }");
        assert!(text.contains("write `hdr.ttl = hdr.ttl - 1;`"), "{text}");
        let text = rendered("extern e { e(); get(); }");
        assert!(text.contains("method `get` of extern `e` has no return type"), "{text}");
    }

    #[test]
    fn messages_in_words() {
        let cases = [
            ("header h { bit<W> x; }", "expected `(` or a number, found `W`", "W"),
            ("header h { 5 x; }", "expected `}` or a type, found `5`", "5"),
            ("control C() { apply { x = a +; } }", "expected an expression, found `;`", ";"),
            ("control C() { apply { f(a b); } }", "expected `,`, `)` or an operator, found `b`", "b"),
            ("control C() { table t { key = { a : } } apply { } }", "expected an identifier, found `}`", "}"),
            ("control C() { table t { zap } apply { } }", "expected `=`, found `}`", "}"),
            ("control C() { table t { 5 } apply { } }", "expected `}` or a table property, found `5`", "5"),
            ("parser P() { state s { x = 1; } state }", "expected an identifier, found `}`", "}"),
            ("parser P() { state s { transition } }", "expected `select` or an identifier, found `}`", "}"),
            (
                "control C() { apply { switch (x) { 1: {} } } }",
                "expected `}`, `default` or an identifier, found `1`",
                "1",
            ),
            ("control C(in bit<8>) { apply {} }", "expected an identifier, found `)`", ")"),
            ("control C() { apply { if (x) { } else } }", "expected a statement, found `}`", "}"),
            ("control C() { apply { if x { } } }", "expected `(`, found `x`", "x"),
            ("@name(\"x\") header h {}", "p4lite has no `@name` annotation", "@name"),
            ("control C() { apply {} } }", "expected a declaration, found `}`", "}"),
            ("control C() { apply { x = {1, 2; } }", "expected `,`, `}` or an operator, found `;`", ";"),
            ("control C() { apply { bit<8> x = 1 } }", "expected `;` or an operator, found `}`", "}"),
            ("Pipeline(P(), C()) ;", "expected an identifier, found `;`", ";"),
            ("header h { bit<8> x = 1; }", "expected `;`, found `=`", "="),
            ("control C() { apply { x = 1; /* never closed } }", "expected `*/`, found end of input", "}"),
            ("control C() { apply { x = (bit<8> y; } }", "expected `)`, found `y`", "y"),
            ("const bit<8> X = 1 \u{1};", "expected `;` or an operator, found character U+0001", "\u{1}"),
        ];
        for (src, message, at) in cases {
            only_error(src, message, at);
        }
    }

    /// Asserts that `src` has exactly one syntax error, with `message` and a
    /// span covering exactly `at`; returns it.
    fn only_error(src: &str, message: &str, at: &str) -> Diagnostic {
        let d = match parse(src, SourceId::USER) {
            Ok(_) => panic!("parsed: {src}"),
            Err(d) => d,
        };
        assert_eq!(d.len(), 1, "{src}: {d:?}");
        assert_eq!(d[0].message, message, "{src}");
        assert_eq!(&src[d[0].span.lo as usize..d[0].span.hi as usize], at, "{src}");
        assert_eq!(d[0].code, "E0001");
        d.into_iter().next().expect("one error")
    }

    /// P4_16 syntax p4lite does not have is named as such, with what to
    /// write instead, rather than as an unexpected token.
    #[test]
    fn p4_16_syntax_p4lite_lacks_is_named() {
        let cases = [
            ("#include <core.p4>\nheader h {}", "p4lite has no preprocessor: `#include` is not supported", "#include"),
            ("#define N 4\n", "p4lite has no preprocessor: `#define` is not supported", "#define"),
            ("control C() { @name(\".d\") action d() {} apply {} }", "p4lite has no `@name` annotation", "@name"),
            (
                "control C() { table t { key = { a : exact; } actions = { b; } entries = { @priority(1) 1 : b(); } } apply {} }",
                "`@priority` is only accepted after a table entry's action",
                "@priority",
            ),
            (
                "control C() { table t { key = { a : exact; } actions = { b; } entries = { priority = 1 : 1 : b(); } } apply {} }",
                "p4lite has no `priority = N:` before an entry's keyset",
                "priority =",
            ),
            ("control C() { apply { x = y % 8; } }", "p4lite has no `%` operator: there is no division or modulo", "%"),
            ("control C() { apply { x = y / 8; } }", "p4lite has no `/` operator: there is no division or modulo", "/"),
            (
                "control C() { bit<8>[2] a; apply {} }",
                "p4lite has no arrays, and header stacks only as fields of a struct: `T[N]` is not supported here",
                "[2]",
            ),
        ];
        for (src, message, at) in cases {
            assert!(only_error(src, message, at).help.is_some(), "{src}");
        }
        // Header stacks parse (the checker types them): a field `T[N] name;` and an index `e[i]`.
        assert!(parse("struct s { route_t[4] r; }", SourceId::USER).is_ok());
        assert!(parse("control C() { apply { x = hdr.r[0].port; } }", SourceId::USER).is_ok());
        // Still an ordinary syntax error: a slice missing its low bit.
        let d = parse("control C() { apply { x = y[7:]; } }", SourceId::USER).expect_err("no low bit");
        assert_eq!(d[0].message, "expected an expression, found `]`");
    }

    #[test]
    fn every_rule_has_a_phrase_that_is_not_its_name() {
        for &rule in Rule::all_rules() {
            let phrase = phrase(rule);
            assert!(!phrase.is_empty());
            assert_ne!(phrase, format!("{rule:?}"));
        }
    }

    #[test]
    fn keyword_list_matches_the_grammar() {
        for kw in KEYWORDS {
            assert!(parse(&format!("const bit<8> {kw} = 1;"), SourceId::USER).is_err(), "{kw} is a name");
            assert!(parse(&format!("const bit<8> {kw}x = 1;"), SourceId::USER).is_ok(), "{kw}x is not a name");
        }
        for &rule in Rule::all_rules() {
            let name = format!("{rule:?}");
            if let Some(word) = name.strip_prefix("kw_") {
                assert!(is_bare_keyword(rule), "{name}");
                let table_word = matches!(word, "key" | "actions" | "default_action" | "size");
                assert!(KEYWORDS.contains(&word) != table_word, "{name}");
            }
        }
    }

    #[test]
    fn found_token_names() {
        assert_eq!(Found::at("foo bar", 4).what, "`bar`");
        assert_eq!(Found::at("if x", 0).what, "keyword `if`");
        assert_eq!(Found::at("a &&& b", 2).what, "`&&&`");
        assert_eq!(Found::at("x", 1).what, "end of input");
        assert_eq!(Found::at("\u{1}", 0).what, "character U+0001");
        assert_eq!(Found::at("é", 0).len, 2);
    }
}
