//! Tables: keys and match kinds, the actions list, the default action,
//! size, and const entries.
//!
//! Entry keysets are normalised per match kind so the runtime sees one
//! shape per kind: `exact` keys give [`KeyMatch::Exact`]; `lpm` keys
//! [`KeyMatch::Prefix`] (a plain value is a full-length prefix); `ternary`
//! keys [`KeyMatch::Mask`] (a plain value has an all-ones mask); `range`
//! keys [`KeyMatch::Range`] (a plain value is the range `v .. v`). `_` is
//! the widest form of its kind (`/0`, mask 0, the whole range) and is not
//! allowed for `exact` keys.

use crate::ast;
use crate::diag::{did_you_mean, Diagnostic};
use crate::ir::{self, ActionId, KeyMatch, MatchKind};
use crate::span::{Ident, Span};

use super::expr::mask;
use super::{expr_text, Binding, Checker, Cx, ETy, GlobalKind, TableInfo};

/// The properties a table may have.
const PROPERTIES: [&str; 5] = ["key", "actions", "default_action", "size", "entries"];

/// The name of a property as written.
fn prop_name(p: &ast::TableProp) -> (&str, Span) {
    match p {
        ast::TableProp::Key { span, .. } => ("key", *span),
        ast::TableProp::Actions { span, .. } => ("actions", *span),
        ast::TableProp::DefaultAction { span, .. } => ("default_action", *span),
        ast::TableProp::Size { span, .. } => ("size", *span),
        ast::TableProp::Entries { span, .. } => ("entries", *span),
        ast::TableProp::Other { name, .. } => (name.name.as_str(), name.span),
    }
}

/// How a match kind reads.
fn kind_text(k: MatchKind) -> &'static str {
    match k {
        MatchKind::Exact => "exact",
        MatchKind::Lpm => "lpm",
        MatchKind::Ternary => "ternary",
        MatchKind::Range => "range",
    }
}

impl Checker<'_> {
    /// Lowers a table of the current control.
    pub(crate) fn lower_table(&mut self, t: &ast::TableDecl) -> ir::TableId {
        let name = self.local_name(&t.name.name);
        let mut seen: Vec<(&str, Span)> = Vec::new();
        for p in &t.props {
            let (n, span) = prop_name(p);
            if let ast::TableProp::Other { name, .. } = p {
                let mut d = Diagnostic::error(
                    "E0407",
                    name.span,
                    format!("unknown table property `{}`", name.name),
                    "unknown property",
                );
                if let Some(h) = unsupported_property(&name.name) {
                    d = d.with_help(format!("p4lite tables have no `{}` ({h})", name.name));
                } else if let Some(s) = did_you_mean(&name.name, PROPERTIES) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else {
                    d = d.with_help("tables have `key`, `actions`, `default_action`, `size` and `entries`");
                }
                self.report(d);
                continue;
            }
            if let Some((_, first)) = seen.iter().find(|(x, _)| *x == n) {
                self.report(
                    Diagnostic::error("E0407", span, format!("table property `{n}` is given twice"), "repeated")
                        .with_note(*first, "first here"),
                );
                continue;
            }
            seen.push((n, span));
        }
        let find = |n: &str| t.props.iter().find(|p| prop_name(p).0 == n);

        let mut keys = Vec::new();
        if let Some(ast::TableProp::Key { elems, .. }) = find("key") {
            for k in elems {
                if let Some(key) = self.table_key(k, keys.iter().any(|x: &ir::TableKey| x.kind == MatchKind::Lpm)) {
                    keys.push(key);
                }
            }
        }

        let mut actions: Vec<(String, ActionId)> = Vec::new();
        match find("actions") {
            Some(ast::TableProp::Actions { actions: list, .. }) => {
                let mut firsts: Vec<(String, Span)> = Vec::new();
                for id in list {
                    if let Some((_, first)) = firsts.iter().find(|(n, _)| *n == id.name) {
                        let first = *first;
                        self.duplicate(id, first);
                        continue;
                    }
                    firsts.push((id.name.clone(), id.span));
                    if let Some(a) = self.resolve_action(id) {
                        actions.push((id.name.clone(), a));
                    }
                }
            }
            _ => self.report(
                Diagnostic::error(
                    "E0407",
                    t.name.span,
                    format!("table `{}` has no `actions` property", t.name.name),
                    "no actions",
                )
                .with_help("list the actions entries may run: `actions = { forward; drop; }`"),
            ),
        }

        let no_action = match self.globals.get("NoAction").map(|g| g.kind) {
            Some(GlobalKind::Action(a)) => a,
            _ => ActionId(0),
        };
        let mut default_action = ir::ActionCall { action: no_action, args: Vec::new() };
        let mut default_const = false;
        if let Some(ast::TableProp::DefaultAction { is_const, action, args, span }) = find("default_action") {
            default_const = *is_const;
            if let Some(a) = self.resolve_action(action) {
                if !actions.iter().any(|(_, x)| *x == a) {
                    self.report(
                        Diagnostic::error(
                            "E0403",
                            action.span,
                            format!(
                                "default action `{}` is not in the `actions` of table `{}`",
                                action.name, t.name.name
                            ),
                            "not in `actions`",
                        )
                        .with_help(format!("add it: `actions = {{ ...; {}; }}`", action.name)),
                    );
                }
                let args = self.const_action_args(a, args, *span);
                default_action = ir::ActionCall { action: a, args };
            }
        }

        let mut size = 1024;
        if let Some(ast::TableProp::Size { value, .. }) = find("size") {
            if let Some(v) = self.const_int(value, "the table size") {
                match u32::try_from(v) {
                    Ok(v) => size = v,
                    Err(_) => self.error("E0203", value.span, "the table size does not fit in 32 bits", "too large"),
                }
            }
        }

        let mut entries = Vec::new();
        let mut entries_const = false;
        if let Some(ast::TableProp::Entries { is_const, entries: list, .. }) = find("entries") {
            entries_const = *is_const;
            for e in list {
                if let Some(entry) = self.entry(e, &keys, &actions, &t.name.name) {
                    entries.push(entry);
                }
            }
        }

        self.tables.push(ir::Table {
            name,
            keys,
            actions: actions.iter().map(|(_, a)| *a).collect(),
            default_action,
            default_const,
            size,
            entries,
            entries_const,
            span: t.span,
        });
        self.table_info.push(TableInfo { actions });
        ir::TableId(self.tables.len() as u32 - 1)
    }

    /// One `EXPR : MATCH_KIND;` key element.
    fn table_key(&mut self, k: &ast::KeyElem, have_lpm: bool) -> Option<ir::TableKey> {
        let mut cx = Cx::pure("table keys");
        let t = self.rvalue(&k.expr, &mut cx);
        let kind = match k.match_kind.name.as_str() {
            "exact" => Some(MatchKind::Exact),
            "lpm" => Some(MatchKind::Lpm),
            "ternary" => Some(MatchKind::Ternary),
            "range" => Some(MatchKind::Range),
            other => {
                let mut d = Diagnostic::error(
                    "E0404",
                    k.match_kind.span,
                    format!("unknown match kind `{other}`"),
                    "unknown match kind",
                );
                if let Some(s) = did_you_mean(other, ["exact", "lpm", "ternary", "range"]) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else {
                    d = d.with_help("match kinds are `exact`, `lpm`, `ternary` and `range`");
                }
                self.report(d);
                None
            }
        };
        let width = match t.ty {
            ETy::Error => return None,
            ETy::Int => {
                self.error(
                    "E0405",
                    k.expr.span,
                    "a table key must be a field or variable, not a constant",
                    "a constant",
                );
                return None;
            }
            ty => ty.width()?,
        };
        if t.const_value().is_some() {
            self.error("E0405", k.expr.span, "a table key must not be a constant", "a constant");
            return None;
        }
        let kind = kind?;
        if kind == MatchKind::Lpm && have_lpm {
            self.error("E0412", k.match_kind.span, "a table can have only one `lpm` key", "second `lpm` key");
            return None;
        }
        let expr = self.emit(&t);
        Some(ir::TableKey { expr, kind, name: expr_text(&k.expr), width })
    }

    /// An action named in a table (`E0402` when there is no such action).
    fn resolve_action(&mut self, id: &Ident) -> Option<ActionId> {
        match self.lookup_local(&id.name) {
            Some(Binding::Action(a)) => return Some(*a),
            Some(Binding::Poisoned) => return None,
            Some(_) => {
                self.error("E0402", id.span, format!("`{}` is not an action", id.name), "not an action");
                return None;
            }
            None => {}
        }
        if let Some(g) = self.globals.get(&id.name) {
            if let GlobalKind::Action(a) = g.kind {
                return Some(a);
            }
            self.error("E0402", id.span, format!("`{}` is not an action", id.name), "not an action");
            return None;
        }
        let mut names: Vec<String> = self
            .scopes
            .iter()
            .flat_map(|s| s.iter().filter(|(_, (b, _))| matches!(b, Binding::Action(_))).map(|(n, _)| n.clone()))
            .collect();
        names.extend(
            self.globals.iter().filter(|(_, g)| matches!(g.kind, GlobalKind::Action(_))).map(|(n, _)| n.clone()),
        );
        self.unknown_name("E0402", id, format!("cannot find action `{}`", id.name), &names);
        None
    }

    /// The constant arguments of an action in `default_action` or an entry.
    fn const_action_args(&mut self, a: ActionId, args: &[ast::Expr], span: Span) -> Vec<u128> {
        let info = self.action_info[a.index()].clone();
        if args.len() != info.params.len() {
            let at = match (args.first(), args.last()) {
                (Some(x), Some(y)) => x.span.to(y.span),
                _ => span,
            };
            self.report(
                Diagnostic::error(
                    "E0401",
                    at,
                    format!(
                        "action `{}` takes {} argument{} but {} given",
                        info.short,
                        info.params.len(),
                        if info.params.len() == 1 { "" } else { "s" },
                        args.len()
                    ),
                    "wrong number of arguments",
                )
                .with_note(info.name_span, "declared here"),
            );
        }
        let mut out = Vec::new();
        for ((p, ty), e) in info.params.iter().zip(args) {
            let what = format!("parameter `{p}` of `{}`", info.short);
            out.push(self.const_scalar(e, Some(ETy::of(*ty)), &what).map_or(0, |c| c.value));
        }
        out
    }

    /// One const entry.
    fn entry(
        &mut self,
        e: &ast::EntryDecl,
        keys: &[ir::TableKey],
        actions: &[(String, ActionId)],
        table: &str,
    ) -> Option<ir::ConstEntry> {
        let all_default = e.keysets.len() == 1 && e.keysets[0].kind == ast::KeysetKind::Default && keys.len() != 1;
        let mut matches = Vec::new();
        if all_default {
            let any = ast::Keyset { kind: ast::KeysetKind::Default, span: e.keysets[0].span };
            matches = keys.iter().map(|k| self.entry_keyset(&any, k).unwrap_or(KeyMatch::Any)).collect();
        } else if e.keysets.len() != keys.len() {
            let span = match (e.keysets.first(), e.keysets.last()) {
                (Some(a), Some(b)) => a.span.to(b.span),
                _ => e.span,
            };
            self.error(
                "E0406",
                span,
                format!(
                    "this entry has {} keyset{} but table `{table}` has {} key{}",
                    e.keysets.len(),
                    if e.keysets.len() == 1 { "" } else { "s" },
                    keys.len(),
                    if keys.len() == 1 { "" } else { "s" }
                ),
                format!("expected {}", keys.len()),
            );
        } else {
            for (ks, k) in e.keysets.iter().zip(keys) {
                matches.push(self.entry_keyset(ks, k).unwrap_or(KeyMatch::Any));
            }
        }

        let action = match actions.iter().find(|(n, _)| *n == e.action.name) {
            Some((_, a)) => Some(*a),
            None => {
                let resolved = self.resolve_action(&e.action);
                if resolved.is_some() {
                    self.report(
                        Diagnostic::error(
                            "E0409",
                            e.action.span,
                            format!("action `{}` is not in the `actions` of table `{table}`", e.action.name),
                            "not in `actions`",
                        )
                        .with_help(format!("add it: `actions = {{ ...; {}; }}`", e.action.name)),
                    );
                }
                None
            }
        };
        let priority = match &e.priority {
            Some(p) => match self.const_int(p, "the priority").map(u32::try_from) {
                Some(Ok(v)) => Some(v),
                Some(Err(_)) => {
                    self.error("E0203", p.span, "the priority does not fit in 32 bits", "too large");
                    None
                }
                None => None,
            },
            None => None,
        };
        let action = action?;
        let args = self.const_action_args(action, &e.args, e.span);
        Some(ir::ConstEntry { keys: matches, call: ir::ActionCall { action, args }, priority, span: e.span })
    }

    /// One keyset of an entry, for key `k`.
    fn entry_keyset(&mut self, ks: &ast::Keyset, k: &ir::TableKey) -> Option<KeyMatch> {
        let ty = ETy::of(self.exprs[k.expr.index()].ty);
        let what = format!("the key `{}`", k.name);
        let kind = kind_text(k.kind);
        match (k.kind, &ks.kind) {
            (MatchKind::Exact, ast::KeysetKind::Default) => {
                self.report(
                    Diagnostic::error(
                        "E0406",
                        ks.span,
                        format!("`_` cannot match the `exact` key `{}`", k.name),
                        "exact keys need a value",
                    )
                    .with_help("give a value, or make the key `ternary`"),
                );
                None
            }
            (MatchKind::Lpm, ast::KeysetKind::Default) => Some(KeyMatch::Prefix { value: 0, len: 0 }),
            (MatchKind::Ternary, ast::KeysetKind::Default) => Some(KeyMatch::Mask { value: 0, mask: 0 }),
            (MatchKind::Range, ast::KeysetKind::Default) => Some(KeyMatch::Range { lo: 0, hi: mask(k.width) }),
            (MatchKind::Exact, ast::KeysetKind::Value(v)) => {
                Some(KeyMatch::Exact(self.const_scalar(v, Some(ty), &what)?.value))
            }
            (MatchKind::Lpm, ast::KeysetKind::Value(v)) => {
                Some(KeyMatch::Prefix { value: self.const_scalar(v, Some(ty), &what)?.value, len: k.width })
            }
            (MatchKind::Lpm, ast::KeysetKind::Prefix(v, l)) => {
                let value = self.const_scalar(v, Some(ty), &what);
                let len = self.const_int(l, "a prefix length");
                let (value, len) = (value?.value, len?);
                if len > u128::from(k.width) {
                    self.error(
                        "E0406",
                        l.span,
                        format!("prefix length {len} is longer than the key's {} bits", k.width),
                        "prefix too long",
                    );
                    return None;
                }
                let len = len as u16;
                let keep = mask(k.width) & !mask(k.width - len);
                Some(KeyMatch::Prefix { value: value & keep, len })
            }
            (MatchKind::Ternary, ast::KeysetKind::Value(v)) => {
                Some(KeyMatch::Mask { value: self.const_scalar(v, Some(ty), &what)?.value, mask: mask(k.width) })
            }
            (MatchKind::Ternary, ast::KeysetKind::Mask(v, m)) => {
                let value = self.const_scalar(v, Some(ty), &what);
                let m = self.const_scalar(m, Some(ty), &what);
                let (value, m) = (value?.value, m?.value);
                Some(KeyMatch::Mask { value: value & m, mask: m })
            }
            (MatchKind::Range, ast::KeysetKind::Value(v)) => {
                let v = self.const_scalar(v, Some(ty), &what)?.value;
                Some(KeyMatch::Range { lo: v, hi: v })
            }
            (MatchKind::Range, ast::KeysetKind::Range(lo, hi)) => {
                let l = self.const_scalar(lo, Some(ty), &what);
                let h = self.const_scalar(hi, Some(ty), &what);
                let (l, h) = (l?.value, h?.value);
                if l > h {
                    self.error("E0406", ks.span, format!("the range {l} .. {h} is empty"), "low end above high end");
                    return None;
                }
                Some(KeyMatch::Range { lo: l, hi: h })
            }
            (_, form) => {
                let (form, help) = match form {
                    ast::KeysetKind::Mask(..) => ("a mask `&&&`", "masks need a `ternary` key"),
                    ast::KeysetKind::Range(..) => ("a range `..`", "ranges need a `range` key"),
                    ast::KeysetKind::Prefix(..) => ("a prefix `/`", "prefixes need an `lpm` key"),
                    _ => ("this keyset", ""),
                };
                let mut d = Diagnostic::error(
                    "E0406",
                    ks.span,
                    format!("the `{kind}` key `{}` cannot be matched with {form}", k.name),
                    format!("not allowed for a `{kind}` key"),
                );
                if !help.is_empty() {
                    d = d.with_help(help);
                }
                self.report(d);
                None
            }
        }
    }
}

/// Why a P4_16 (v1model) table property p4lite lacks is missing, and what to
/// do instead, for the help of an unknown property.
fn unsupported_property(name: &str) -> Option<&'static str> {
    Some(match name {
        "counters" | "meters" => "no direct counters or meters: count in the actions with a `counter`",
        "implementation" => "no action profiles or selectors",
        "support_timeout" | "idle_timeout_with_auto_delete" => "no idle timeouts",
        "psa_direct_counter" | "psa_direct_meter" | "psa_implementation" => "p4lite is not PSA",
        _ => return None,
    })
}
