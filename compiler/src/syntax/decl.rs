//! Builders for declarations: the program, types, headers and structs,
//! externs, actions, parsers with their states, controls and tables.

use pest::iterators::Pair;

use super::{children, grammar_bug, Builder, Rule};
use crate::ast::*;

impl Builder {
    /// `program = { SOI ~ decl* ~ EOI }`
    pub(super) fn program(&self, pair: Pair<'_, Rule>) -> Program {
        let decls = pair.into_inner().filter(|p| p.as_rule() != Rule::EOI).map(|p| self.decl(p)).collect();
        Program { decls }
    }

    /// One top-level declaration (the silent `decl` rule's alternatives).
    fn decl(&self, pair: Pair<'_, Rule>) -> Decl {
        match pair.as_rule() {
            Rule::const_decl => Decl::Const(self.const_decl(pair)),
            Rule::typedef_decl => Decl::Typedef(self.typedef_decl(pair)),
            Rule::enum_decl => Decl::Enum(self.enum_decl(pair)),
            Rule::error_decl => {
                let span = self.span(&pair);
                // The first child is the word `error`.
                Decl::Error(ErrorDecl { names: children(pair).rest().skip(1).map(|n| self.ident(n)).collect(), span })
            }
            Rule::header_decl => Decl::Header(self.struct_like(pair)),
            Rule::struct_decl => Decl::Struct(self.struct_like(pair)),
            Rule::extern_decl => Decl::Extern(self.extern_decl(pair)),
            Rule::extern_fn => Decl::ExternFn(self.extern_fn(pair)),
            Rule::action_decl => Decl::Action(self.action_decl(pair)),
            Rule::parser_decl => Decl::Parser(self.parser_decl(pair)),
            Rule::control_decl => Decl::Control(self.control_decl(pair)),
            Rule::instance_decl => Decl::Instance(self.instance_decl(pair)),
            other => grammar_bug(other, "an unexpected declaration"),
        }
    }

    /// `const_decl = { kw_const ~ type_ref ~ ident ~ "=" ~ expr ~ ";" }`
    pub(super) fn const_decl(&self, pair: Pair<'_, Rule>) -> ConstDecl {
        let span = self.span(&pair);
        let [ty, name, value] = children(pair).take();
        ConstDecl { ty: self.type_ref(ty), name: self.ident(name), value: self.expr(value), span }
    }

    /// `var_decl = { type_ref ~ ident ~ ("=" ~ expr)? ~ ";" }`
    pub(super) fn var_decl(&self, pair: Pair<'_, Rule>) -> VarDecl {
        let span = self.span(&pair);
        let mut n = children(pair);
        let ty = self.type_ref(n.next());
        let name = self.ident(n.next());
        let init = n.next_if(Rule::expr).map(|e| self.expr(e));
        VarDecl { ty, name, init, span }
    }

    /// `typedef_decl = { kw_typedef ~ type_ref ~ ident ~ ";" }`
    fn typedef_decl(&self, pair: Pair<'_, Rule>) -> TypedefDecl {
        let span = self.span(&pair);
        let [ty, name] = children(pair).take();
        TypedefDecl { ty: self.type_ref(ty), name: self.ident(name), span }
    }

    /// `enum_decl = { "enum" ~ (enum_typed | ident) ~ "{" ~ enum_member,... ~ "}" }`
    fn enum_decl(&self, pair: Pair<'_, Rule>) -> EnumDecl {
        let span = self.span(&pair);
        let mut n = children(pair);
        n.next(); // the word `enum`
        let head = n.next();
        let (ty, name) = if head.as_rule() == Rule::enum_typed {
            let [ty, name] = children(head).take();
            (Some(self.type_ref(ty)), self.ident(name))
        } else {
            (None, self.ident(head))
        };
        let members = n
            .rest()
            .map(|m| {
                let mut parts = children(m);
                let name = self.ident(parts.next());
                let value = parts.rest().next().map(|v| self.expr(v));
                (name, value)
            })
            .collect();
        EnumDecl { ty, name, members, span }
    }

    /// `header_decl` / `struct_decl = { kw ~ ident ~ "{" ~ field* ~ "}" }`
    fn struct_like(&self, pair: Pair<'_, Rule>) -> StructLike {
        let span = self.span(&pair);
        let mut n = children(pair);
        let name = self.ident(n.next());
        let fields = n.rest().map(|f| self.field(f)).collect();
        StructLike { name, fields, span }
    }

    /// `field = { type_ref ~ stack_size? ~ ident ~ ";" }`
    fn field(&self, pair: Pair<'_, Rule>) -> FieldDecl {
        let span = self.span(&pair);
        let mut n = children(pair);
        let ty = self.type_ref(n.next());
        // stack_size = { "[" ~ expr ~ "]" }
        let stack = n.next_if(Rule::stack_size).map(|s| {
            let [e] = children(s).take();
            self.expr(e)
        });
        let name = self.ident(n.next());
        FieldDecl { ty, stack, name, span }
    }

    /// `type_ref = { bit_type | bool_type | void_type | named_type }`
    pub(super) fn type_ref(&self, pair: Pair<'_, Rule>) -> TypeRef {
        let [inner] = children(pair).take();
        self.type_of(inner)
    }

    /// One of `type_ref`'s alternatives (casts use them directly).
    pub(super) fn type_of(&self, pair: Pair<'_, Rule>) -> TypeRef {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::bit_type => {
                let [width] = children(pair).take();
                if width.as_rule() == Rule::expr {
                    TypeRefKind::BitOf(Box::new(self.expr(width)))
                } else {
                    TypeRefKind::Bit(self.width(width))
                }
            }
            Rule::bool_type => TypeRefKind::Bool,
            Rule::void_type => TypeRefKind::Void,
            Rule::named_type => {
                let mut n = children(pair);
                let name = self.ident(n.next());
                let args = n.next_if(Rule::type_args).map(|a| self.type_args(a)).unwrap_or_default();
                TypeRefKind::Named { name, args }
            }
            other => grammar_bug(other, "an unexpected type"),
        };
        TypeRef { kind, span }
    }

    /// `width = @{ dec_digit+ }`: the W of `bit<W>`; the checker enforces 1..=128.
    fn width(&self, pair: Pair<'_, Rule>) -> u32 {
        match pair.as_str().parse::<u32>() {
            Ok(w) => w,
            Err(_) => {
                self.error(self.span(&pair), format!("bit width `{}` is too large", pair.as_str()), "at most 128");
                0
            }
        }
    }

    /// `type_args = { "<" ~ type_ref ~ ("," ~ type_ref)* ~ ">" }`
    pub(super) fn type_args(&self, pair: Pair<'_, Rule>) -> Vec<TypeRef> {
        children(pair).rest().map(|t| self.type_ref(t)).collect()
    }

    /// `type_params = { "<" ~ ident ~ ("," ~ ident)* ~ ">" }`
    fn type_params(&self, pair: Pair<'_, Rule>) -> Vec<crate::span::Ident> {
        children(pair).rest().map(|i| self.ident(i)).collect()
    }

    /// `extern_decl = { kw_extern ~ ident ~ type_params? ~ "{" ~ (method_sig | ctor_sig)* ~ "}" }`
    ///
    /// A method without a return type is a constructor only when named like
    /// the extern; anything else most likely lacks its return type.
    fn extern_decl(&self, pair: Pair<'_, Rule>) -> ExternDecl {
        let span = self.span(&pair);
        let mut n = children(pair);
        let name = self.ident(n.next());
        let type_params = n.next_if(Rule::type_params).map(|p| self.type_params(p)).unwrap_or_default();
        let (mut constructors, mut methods) = (Vec::new(), Vec::new());
        for member in n.rest() {
            match member.as_rule() {
                Rule::method_sig => methods.push(self.method_sig(member)),
                Rule::ctor_sig => {
                    let ctor = self.ctor_sig(member);
                    if ctor.name.name != name.name {
                        self.error(
                            ctor.name.span,
                            format!("method `{}` of extern `{}` has no return type", ctor.name.name, name.name),
                            "return type missing",
                        );
                    }
                    constructors.push(ctor);
                }
                other => grammar_bug(other, "an unexpected extern member"),
            }
        }
        ExternDecl { name, type_params, constructors, methods, span }
    }

    /// `method_sig = { type_ref ~ ident ~ type_params? ~ params ~ ";" }`
    fn method_sig(&self, pair: Pair<'_, Rule>) -> MethodSig {
        let span = self.span(&pair);
        let mut n = children(pair);
        let ret = Some(self.type_ref(n.next()));
        let name = self.ident(n.next());
        let type_params = n.next_if(Rule::type_params).map(|p| self.type_params(p)).unwrap_or_default();
        let params = self.params(n.next());
        MethodSig { ret, name, type_params, params, span }
    }

    /// `ctor_sig = { ident ~ params ~ ";" }`
    fn ctor_sig(&self, pair: Pair<'_, Rule>) -> MethodSig {
        let span = self.span(&pair);
        let [name, params] = children(pair).take();
        MethodSig { ret: None, name: self.ident(name), type_params: Vec::new(), params: self.params(params), span }
    }

    /// `extern_fn = { kw_extern ~ method_sig }`; the span includes `extern`.
    fn extern_fn(&self, pair: Pair<'_, Rule>) -> MethodSig {
        let span = self.span(&pair);
        let [sig] = children(pair).take();
        MethodSig { span, ..self.method_sig(sig) }
    }

    /// `params = { "(" ~ (param ~ ("," ~ param)*)? ~ ")" }`
    fn params(&self, pair: Pair<'_, Rule>) -> Vec<Param> {
        children(pair).rest().map(|p| self.param(p)).collect()
    }

    /// `param = { direction? ~ type_ref ~ ident }`
    fn param(&self, pair: Pair<'_, Rule>) -> Param {
        let span = self.span(&pair);
        let mut n = children(pair);
        let dir = n.next_if(Rule::direction).map(|d| self.direction(d));
        let ty = self.type_ref(n.next());
        let name = self.ident(n.next());
        Param { dir, ty, name, span }
    }

    /// `direction = { kw_inout | kw_in | kw_out }`
    fn direction(&self, pair: Pair<'_, Rule>) -> Direction {
        // The keyword tokens are the pair's own children, kept here on purpose.
        match pair.into_inner().next().map(|k| k.as_rule()) {
            Some(Rule::kw_in) => Direction::In,
            Some(Rule::kw_out) => Direction::Out,
            Some(Rule::kw_inout) => Direction::InOut,
            _ => grammar_bug(Rule::direction, "an unexpected direction"),
        }
    }

    /// `instance_decl = { type_ref ~ "(" ~ (expr ~ ("," ~ expr)*)? ~ ")" ~ ident ~ ";" }`
    pub(super) fn instance_decl(&self, pair: Pair<'_, Rule>) -> InstanceDecl {
        let span = self.span(&pair);
        let mut n = children(pair);
        let ty = self.type_ref(n.next());
        let mut args = Vec::new();
        while let Some(arg) = n.next_if(Rule::expr) {
            args.push(self.expr(arg));
        }
        let name = self.ident(n.next());
        InstanceDecl { ty, args, name, span }
    }

    /// `action_decl = { kw_action ~ ident ~ params ~ block }`
    pub(super) fn action_decl(&self, pair: Pair<'_, Rule>) -> ActionDecl {
        let span = self.span(&pair);
        let [name, params, body] = children(pair).take();
        ActionDecl { name: self.ident(name), params: self.params(params), body: self.block(body), span }
    }

    /// `parser_decl = { kw_parser ~ ident ~ params ~ "{" ~ parser_local* ~ state_decl* ~ "}" }`
    fn parser_decl(&self, pair: Pair<'_, Rule>) -> ParserDecl {
        let span = self.span(&pair);
        let mut n = children(pair);
        let name = self.ident(n.next());
        let params = self.params(n.next());
        let (mut locals, mut states) = (Vec::new(), Vec::new());
        for item in n.rest() {
            match item.as_rule() {
                Rule::state_decl => states.push(self.state_decl(item)),
                _ => locals.push(self.local_decl(item)),
            }
        }
        ParserDecl { name, params, locals, states, span }
    }

    /// `state_decl = { kw_state ~ ident ~ "{" ~ statement* ~ transition? ~ "}" }`
    fn state_decl(&self, pair: Pair<'_, Rule>) -> StateDecl {
        let span = self.span(&pair);
        let mut n = children(pair);
        let name = self.ident(n.next());
        let (mut body, mut transition) = (Vec::new(), None);
        for item in n.rest() {
            match item.as_rule() {
                Rule::direct_transition => {
                    let [next] = children(item).take();
                    transition = Some(Transition::Direct(self.ident(next)));
                }
                Rule::select_transition => transition = Some(self.select_transition(item)),
                _ => body.push(self.statement(item)),
            }
        }
        StateDecl { name, body, transition, span }
    }

    /// `select_transition = { kw_select ~ "(" ~ expr ~ ("," ~ expr)* ~ ")" ~ "{" ~ select_case* ~ "}" }`
    fn select_transition(&self, pair: Pair<'_, Rule>) -> Transition {
        let span = self.span(&pair);
        let (mut exprs, mut cases) = (Vec::new(), Vec::new());
        for item in children(pair).rest() {
            match item.as_rule() {
                Rule::expr => exprs.push(self.expr(item)),
                _ => cases.push(self.select_case(item)),
            }
        }
        Transition::Select { exprs, cases, span }
    }

    /// `select_case = { keysets ~ ":" ~ ident ~ ";" }`
    fn select_case(&self, pair: Pair<'_, Rule>) -> SelectCase {
        let span = self.span(&pair);
        let [keysets, next] = children(pair).take();
        let keysets = self.keysets(keysets);
        // A prefix length only means something against an lpm table key.
        for k in &keysets {
            if let KeysetKind::Prefix(..) = k.kind {
                self.error(k.span, "a prefix length (`/`) is only allowed in table entries", "not allowed in `select`");
            }
        }
        SelectCase { keysets, next: self.ident(next), span }
    }

    /// `control_decl = { kw_control ~ ident ~ params ~ "{" ~ control_local* ~ kw_apply ~ block ~ "}" }`
    fn control_decl(&self, pair: Pair<'_, Rule>) -> ControlDecl {
        let span = self.span(&pair);
        let mut n = children(pair);
        let name = self.ident(n.next());
        let params = self.params(n.next());
        let mut locals = Vec::new();
        let mut apply = None;
        for item in n.rest() {
            match item.as_rule() {
                Rule::block => apply = Some(self.block(item)),
                _ => locals.push(self.local_decl(item)),
            }
        }
        let apply = match apply {
            Some(apply) => apply,
            None => grammar_bug(Rule::control_decl, "no apply block"),
        };
        ControlDecl { name, params, locals, apply, span }
    }

    /// A parser or control local (the silent `parser_local` / `control_local` rules).
    fn local_decl(&self, pair: Pair<'_, Rule>) -> LocalDecl {
        match pair.as_rule() {
            Rule::var_decl => LocalDecl::Var(self.var_decl(pair)),
            Rule::const_decl => LocalDecl::Const(self.const_decl(pair)),
            Rule::instance_decl => LocalDecl::Instance(self.instance_decl(pair)),
            Rule::action_decl => LocalDecl::Action(self.action_decl(pair)),
            Rule::table_decl => LocalDecl::Table(self.table_decl(pair)),
            other => grammar_bug(other, "an unexpected local declaration"),
        }
    }

    /// `table_decl = { kw_table ~ ident ~ "{" ~ table_prop* ~ "}" }`
    fn table_decl(&self, pair: Pair<'_, Rule>) -> TableDecl {
        let span = self.span(&pair);
        let mut n = children(pair);
        let name = self.ident(n.next());
        let props = n.rest().map(|p| self.table_prop(p)).collect();
        TableDecl { name, props, span }
    }

    /// One table property (the silent `table_prop` rule's alternatives).
    fn table_prop(&self, pair: Pair<'_, Rule>) -> TableProp {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut n = children(pair);
        match rule {
            Rule::key_prop => TableProp::Key { elems: n.rest().map(|e| self.key_elem(e)).collect(), span },
            Rule::actions_prop => TableProp::Actions { actions: n.rest().map(|a| self.ident(a)).collect(), span },
            Rule::default_action_prop => {
                let is_const = n.next_if(Rule::const_flag).is_some();
                let action = self.ident(n.next());
                let args = n.next_if(Rule::call_args).map(|a| self.call_args(a)).unwrap_or_default();
                TableProp::DefaultAction { is_const, action, args, span }
            }
            Rule::size_prop => {
                let [value] = n.take();
                TableProp::Size { value: self.expr(value), span }
            }
            Rule::entries_prop => {
                let is_const = n.next_if(Rule::const_flag).is_some();
                let entries = n.rest().map(|e| self.entry(e)).collect();
                TableProp::Entries { is_const, entries, span }
            }
            Rule::other_prop => {
                let [name, value] = n.take();
                TableProp::Other { name: self.ident(name), value: self.expr(value), span }
            }
            other => grammar_bug(other, "an unexpected table property"),
        }
    }

    /// `key_elem = { expr ~ ":" ~ ident ~ ";" }`
    fn key_elem(&self, pair: Pair<'_, Rule>) -> KeyElem {
        let span = self.span(&pair);
        let [expr, match_kind] = children(pair).take();
        KeyElem { expr: self.expr(expr), match_kind: self.ident(match_kind), span }
    }

    /// `entry = { keysets ~ ":" ~ ident ~ call_args? ~ priority? ~ ";" }`
    fn entry(&self, pair: Pair<'_, Rule>) -> EntryDecl {
        let span = self.span(&pair);
        let mut n = children(pair);
        let keysets = self.keysets(n.next());
        let action = self.ident(n.next());
        let args = n.next_if(Rule::call_args).map(|a| self.call_args(a)).unwrap_or_default();
        let priority = n.next_if(Rule::priority).map(|p| {
            let [value] = children(p).take();
            self.expr(value)
        });
        EntryDecl { keysets, action, args, priority, span }
    }

    /// `call_args = { "(" ~ (expr ~ ("," ~ expr)*)? ~ ")" }`
    fn call_args(&self, pair: Pair<'_, Rule>) -> Vec<Expr> {
        children(pair).rest().map(|e| self.expr(e)).collect()
    }
}
