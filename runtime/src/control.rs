//! The control plane: BMv2 `simple_switch_CLI` commands, read from a text
//! file, checked against the program, then applied to the tables and the
//! multicast groups.
//!
//! # Commands
//! ```text
//! table_add TABLE ACTION KEY... => PARAM... [PRIORITY]
//! table_set_default TABLE ACTION PARAM...
//! table_reset_default TABLE
//! table_delete TABLE HANDLE
//! table_clear TABLE
//! table_dump TABLE
//! mc_mgrp_create GROUP
//! mc_node_create RID PORT...
//! mc_node_associate GROUP NODE_HANDLE
//! ```
//! One command per line; `#` starts a comment; blank lines are skipped.
//! Tables and actions are named by their qualified name (`MyIngress.routes`)
//! or, when unique, by their last component (`routes`); an action's short
//! name only needs to be unique among the table's actions.
//!
//! Keys follow the table's match kinds: exact `VALUE`, lpm `VALUE/LEN`,
//! ternary `VALUE&&&MASK`, range `LO->HI` (spaces around `/`, `&&&` and `->`
//! are allowed). Values are decimal, `0x` hex, `0b` binary, IPv4
//! (`10.0.0.1`), IPv6 (`2001:db8::1`) or MAC (`00:11:22:33:44:55`), and must
//! fit the key field's or parameter's width. As in BMv2, a priority is
//! required exactly when the table has a ternary or range key, and the
//! smallest number wins ([`crate::tables`] has the full match semantics).
//!
//! `mc_*` commands manage [`McastGroups`]; node handles are 0, 1, 2, ... in
//! creation order. Entry handles are as in [`crate::tables`]: the smallest
//! free one, shown by `table_dump`.
//!
//! # Two phases
//! [`parse_commands`] checks everything that depends only on the program
//! (names, syntax, counts, widths, const tables) and reports every error of
//! the file. [`apply_commands`] then runs the commands against a copy of
//! the state; errors that depend on the state (duplicate key, table full,
//! unknown handle or group) stop it and leave the original untouched, so a
//! file applies entirely or not at all.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use p4lite_compiler::diag::did_you_mean;
use p4lite_compiler::ir::{self, ActionId, KeyMatch, MatchKind, TableId};

use crate::tables::{self, EntryHandle, McastGroups, Tables};

/// One checked command, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The file it came from, for errors.
    pub file: Arc<str>,
    /// 1-based line number.
    pub line: usize,
    pub op: Op,
}

/// What a command does, with names resolved to ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `table_add`: keys already in the normal form of their match kinds.
    TableAdd { table: TableId, action: ActionId, keys: Vec<KeyMatch>, params: Vec<u128>, priority: Option<u32> },
    /// `table_set_default`
    TableSetDefault { table: TableId, action: ActionId, params: Vec<u128> },
    /// `table_reset_default`: back to the program's default action.
    TableResetDefault { table: TableId },
    /// `table_delete`
    TableDelete { table: TableId, handle: EntryHandle },
    /// `table_clear`
    TableClear { table: TableId },
    /// `table_dump`
    TableDump { table: TableId },
    /// `mc_mgrp_create`
    McMgrpCreate { group: u16 },
    /// `mc_node_create`
    McNodeCreate { rid: u16, ports: Vec<u16> },
    /// `mc_node_associate`
    McNodeAssociate { group: u16, node: u32 },
}

/// A control-plane error; displays as `file:line: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct CommandError {
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// Parses and checks a command file against `program`. Returns every
/// error found, in line order.
pub fn parse_commands(text: &str, file: &str, program: &ir::Program) -> Result<Vec<Command>, Vec<CommandError>> {
    let file: Arc<str> = file.into();
    let mut commands = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("");
        let toks = tokenize(line);
        if toks.is_empty() {
            continue;
        }
        match parse_line(program, &toks) {
            Ok(op) => commands.push(Command { file: file.clone(), line: i + 1, op }),
            Err(msgs) => errors.extend(msgs.into_iter().map(|message| CommandError {
                file: file.to_string(),
                line: i + 1,
                message,
            })),
        }
    }
    if errors.is_empty() {
        Ok(commands)
    } else {
        Err(errors)
    }
}

/// Applies `cmds` in order, all or nothing: on the first error the tables
/// and groups are left as they were. Returns the output lines (`table_dump`).
pub fn apply_commands(
    cmds: &[Command],
    tables: &mut Tables,
    mcast: &mut McastGroups,
) -> Result<Vec<String>, CommandError> {
    let mut t = tables.clone();
    let mut m = mcast.clone();
    let mut out = Vec::new();
    for c in cmds {
        apply_one(&c.op, &mut t, &mut m, &mut out).map_err(|message| CommandError {
            file: c.file.to_string(),
            line: c.line,
            message,
        })?;
    }
    *tables = t;
    *mcast = m;
    Ok(out)
}

fn apply_one(op: &Op, t: &mut Tables, m: &mut McastGroups, out: &mut Vec<String>) -> Result<(), String> {
    let s = |r: Result<(), tables::TableError>| r.map_err(|e| e.to_string());
    match op {
        Op::TableAdd { table, action, keys, params, priority } => {
            t.table_mut(*table).add_entry(keys, *action, params, *priority).map(|_| ()).map_err(|e| e.to_string())
        }
        Op::TableSetDefault { table, action, params } => s(t.table_mut(*table).set_default(*action, params)),
        Op::TableResetDefault { table } => s(t.table_mut(*table).reset_default()),
        Op::TableDelete { table, handle } => s(t.table_mut(*table).delete_entry(*handle)),
        Op::TableClear { table } => s(t.table_mut(*table).clear()),
        Op::TableDump { table } => {
            out.extend(t.table(*table).dump());
            Ok(())
        }
        Op::McMgrpCreate { group } => m.create_group(*group).map_err(|e| e.to_string()),
        Op::McNodeCreate { rid, ports } => {
            m.create_node(*rid, ports.clone());
            Ok(())
        }
        Op::McNodeAssociate { group, node } => m.associate(*group, *node).map_err(|e| e.to_string()),
    }
}

/// Match-key operators; a token may be split around them by spaces.
const KEY_OPS: [&str; 3] = ["&&&", "->", "/"];

/// Splits a line into words, with `=>` always its own word and
/// `10.0.0.0 / 8` glued back into `10.0.0.0/8`.
fn tokenize(line: &str) -> Vec<String> {
    let spaced = line.replace("=>", " => ");
    let mut out: Vec<String> = Vec::new();
    let mut glue_next = false;
    for t in spaced.split_whitespace() {
        let starts_with_op = KEY_OPS.iter().any(|op| t.starts_with(op));
        match out.last_mut() {
            Some(last) if (glue_next || starts_with_op) && t != "=>" && last != "=>" => last.push_str(t),
            _ => out.push(t.to_string()),
        }
        glue_next = t != "=>" && KEY_OPS.iter().any(|op| t.ends_with(op));
    }
    out
}

/// One command line, already split into words.
fn parse_line(program: &ir::Program, toks: &[String]) -> Result<Op, Vec<String>> {
    let args = &toks[1..];
    let one = |e: String| vec![e];
    match toks[0].as_str() {
        "table_add" => table_add(program, args),
        "table_set_default" => {
            let [table, action, params @ ..] = args else {
                return Err(one(usage("table_set_default TABLE ACTION PARAM...")));
            };
            let table = resolve_table(program, table).map_err(one)?;
            let t = program.table(table);
            if t.default_const {
                return Err(one(tables::TableError::ConstDefault { table: t.name.clone() }.to_string()));
            }
            let action = resolve_action(program, table, action).map_err(one)?;
            let params = parse_params(program, action, params, None)?;
            Ok(Op::TableSetDefault { table, action, params })
        }
        "table_reset_default" => {
            let [table] = args else { return Err(one(usage("table_reset_default TABLE"))) };
            let table = resolve_table(program, table).map_err(one)?;
            let t = program.table(table);
            if t.default_const {
                return Err(one(tables::TableError::ConstDefault { table: t.name.clone() }.to_string()));
            }
            Ok(Op::TableResetDefault { table })
        }
        "table_delete" => {
            let [table, handle] = args else { return Err(one(usage("table_delete TABLE HANDLE"))) };
            let table = mutable_table(program, table).map_err(one)?;
            let handle = parse_number(handle, u128::from(u32::MAX), "entry handle").map_err(one)?;
            Ok(Op::TableDelete { table, handle: EntryHandle(handle as u32) })
        }
        "table_clear" => {
            let [table] = args else { return Err(one(usage("table_clear TABLE"))) };
            Ok(Op::TableClear { table: mutable_table(program, table).map_err(one)? })
        }
        "table_dump" => {
            let [table] = args else { return Err(one(usage("table_dump TABLE"))) };
            Ok(Op::TableDump { table: resolve_table(program, table).map_err(one)? })
        }
        "mc_mgrp_create" => {
            let [group] = args else { return Err(one(usage("mc_mgrp_create GROUP"))) };
            Ok(Op::McMgrpCreate { group: parse_group(group).map_err(one)? })
        }
        "mc_node_create" => {
            let [rid, ports @ ..] = args else { return Err(one(usage("mc_node_create RID PORT..."))) };
            if ports.iter().any(|p| p.starts_with('|')) {
                return Err(one("multicast LAGs are not supported: give only ports after the RID".into()));
            }
            let mut errors = Vec::new();
            let rid = parse_number(rid, 0xffff, "replication id").map_err(|e| errors.push(e)).unwrap_or(0);
            let max_port = program.slot(program.std.egress_spec).ty.mask().min(0xffff);
            let ports = ports
                .iter()
                .filter_map(|p| parse_number(p, max_port, "port").map_err(|e| errors.push(e)).ok())
                .map(|p| p as u16)
                .collect();
            if errors.is_empty() {
                Ok(Op::McNodeCreate { rid: rid as u16, ports })
            } else {
                Err(errors)
            }
        }
        "mc_node_associate" => {
            let [group, node] = args else { return Err(one(usage("mc_node_associate GROUP NODE_HANDLE"))) };
            let group = parse_group(group);
            let node = parse_number(node, u128::from(u32::MAX), "node handle");
            match (group, node) {
                (Ok(group), Ok(node)) => Ok(Op::McNodeAssociate { group, node: node as u32 }),
                (g, n) => Err(g.err().into_iter().chain(n.err()).collect()),
            }
        }
        other => Err(one(format!(
            "unknown command `{other}` (known: table_add, table_set_default, table_reset_default, table_delete, \
             table_clear, table_dump, mc_mgrp_create, mc_node_create, mc_node_associate)"
        ))),
    }
}

fn usage(form: &str) -> String {
    format!("usage: {form}")
}

/// `table_add TABLE ACTION KEY... => PARAM... [PRIORITY]`; collects every
/// problem of the line.
fn table_add(program: &ir::Program, args: &[String]) -> Result<Op, Vec<String>> {
    const USAGE: &str = "table_add TABLE ACTION KEY... => PARAM... [PRIORITY]";
    let [table, action, rest @ ..] = args else { return Err(vec![usage(USAGE)]) };
    let table = mutable_table(program, table).map_err(|e| vec![e])?;
    let t = program.table(table);
    if t.keys.is_empty() {
        return Err(vec![tables::TableError::NoKey { table: t.name.clone() }.to_string()]);
    }
    let mut errors = Vec::new();
    let action = resolve_action(program, table, action).map_err(|e| errors.push(e)).ok();
    let Some(arrow) = rest.iter().position(|s| s == "=>") else {
        errors.push(format!("missing `=>` between the match key and the action parameters ({})", usage(USAGE)));
        return Err(errors);
    };
    let (key_toks, after) = (&rest[..arrow], &rest[arrow + 1..]);

    let mut keys = Vec::new();
    if key_toks.len() != t.keys.len() {
        let names: Vec<&str> = t.keys.iter().map(|k| k.name.as_str()).collect();
        errors.push(format!(
            "table `{}` has {} key field(s) ({}), got {}",
            t.name,
            t.keys.len(),
            names.join(", "),
            key_toks.len()
        ));
    } else {
        for (tok, key) in key_toks.iter().zip(&t.keys) {
            match parse_key(tok, key) {
                Ok(k) => keys.push(k),
                Err(e) => errors.push(e),
            }
        }
    }

    let needs_priority = t.keys.iter().any(|k| matches!(k.kind, MatchKind::Ternary | MatchKind::Range));
    let mut params = Vec::new();
    let mut priority = None;
    if let Some(action) = action {
        let n = program.action(action).params.len();
        let param_toks = if needs_priority && after.len() == n + 1 {
            match parse_number(&after[n], u128::from(u32::MAX), "priority") {
                Ok(p) => priority = Some(p as u32),
                Err(e) => errors.push(e),
            }
            &after[..n]
        } else if needs_priority && after.len() == n {
            errors.push(format!(
                "table `{}` has ternary or range keys: give a priority after the action parameters \
                 (the smallest number wins)",
                t.name
            ));
            after
        } else {
            after
        };
        match parse_params(program, action, param_toks, (!needs_priority).then_some(t)) {
            Ok(p) => params = p,
            Err(mut e) => errors.append(&mut e),
        }
    }
    match action {
        Some(action) if errors.is_empty() => Ok(Op::TableAdd { table, action, keys, params, priority }),
        _ => Err(errors),
    }
}

/// The table named `name` (qualified or unique short name).
fn resolve_table(program: &ir::Program, name: &str) -> Result<TableId, String> {
    if let Some(t) = program.find_table(name) {
        return Ok(t);
    }
    let names: Vec<&str> = program.tables.iter().map(|t| t.name.as_str()).collect();
    Err(not_found("table", name, &names))
}

/// A table the control plane may change the entries of.
fn mutable_table(program: &ir::Program, name: &str) -> Result<TableId, String> {
    let table = resolve_table(program, name)?;
    let t = program.table(table);
    if t.entries_const {
        return Err(tables::TableError::ConstEntries { table: t.name.clone() }.to_string());
    }
    Ok(table)
}

/// An action of `table`, by qualified name or a short name unique among the table's actions.
fn resolve_action(program: &ir::Program, table: TableId, name: &str) -> Result<ActionId, String> {
    let t = program.table(table);
    let own: Vec<&str> = t.actions.iter().map(|&a| program.action(a).name.as_str()).collect();
    if let Some(i) = own.iter().position(|n| *n == name) {
        return Ok(t.actions[i]);
    }
    let short: Vec<usize> = (0..own.len()).filter(|&i| own[i].rsplit('.').next() == Some(name)).collect();
    if let [i] = short[..] {
        return Ok(t.actions[i]);
    }
    let list = own.join(", ");
    if program.find_action(name).is_some() {
        return Err(format!("action `{name}` is not an action of table `{}` (its actions: {list})", t.name));
    }
    Err(format!("{} (table `{}` has: {list})", not_found("action", name, &own), t.name))
}

/// "unknown table `x`", saying when a short name is ambiguous and suggesting a near name.
fn not_found(what: &str, name: &str, names: &[&str]) -> String {
    let matches: Vec<&str> = names.iter().copied().filter(|n| n.rsplit('.').next() == Some(name)).collect();
    if matches.len() > 1 {
        return format!(
            "{what} name `{name}` is ambiguous: it could be {}; use the qualified name",
            matches.join(" or ")
        );
    }
    let shorts = names.iter().filter_map(|n| n.rsplit('.').next());
    match did_you_mean(name, names.iter().copied().chain(shorts)) {
        Some(s) => format!("unknown {what} `{name}` (did you mean `{s}`?)"),
        None => format!("unknown {what} `{name}`"),
    }
}

/// One key component in the syntax of its match kind.
fn parse_key(tok: &str, key: &ir::TableKey) -> Result<KeyMatch, String> {
    let field = format!("key field `{}`", key.name);
    let kind_error = |expected: &str, kind: &str| format!("{field} is {kind}: expected {expected}, got `{tok}`");
    let value = |s: &str| parse_fitting(s, key.width, &field);
    let m = match key.kind {
        MatchKind::Exact => {
            if KEY_OPS.iter().any(|op| tok.contains(op)) {
                return Err(kind_error("VALUE", "exact"));
            }
            KeyMatch::Exact(value(tok)?)
        }
        MatchKind::Lpm => {
            let Some((v, len)) = tok.rsplit_once('/') else { return Err(kind_error("VALUE/LEN", "lpm")) };
            let value = value(v)?;
            let len = parse_number(len, u128::from(u16::MAX), "prefix length")? as u16;
            if len > key.width {
                return Err(format!("prefix length {len} is longer than {field} (bit<{}>) in `{tok}`", key.width));
            }
            KeyMatch::Prefix { value, len }
        }
        MatchKind::Ternary => {
            let Some((v, m)) = tok.split_once("&&&") else { return Err(kind_error("VALUE&&&MASK", "ternary")) };
            KeyMatch::Mask { value: value(v)?, mask: value(m)? }
        }
        MatchKind::Range => {
            let Some((lo, hi)) = tok.split_once("->") else { return Err(kind_error("LO->HI", "range")) };
            let (lo, hi) = (value(lo)?, value(hi)?);
            if lo > hi {
                return Err(format!("empty range `{tok}` for {field}: the low bound is above the high bound"));
            }
            KeyMatch::Range { lo, hi }
        }
    };
    tables::normalize(key.kind, key.width, m).map_err(|e| format!("{field}: {e}"))
}

/// Action parameters; `no_priority_table` (a table without ternary or
/// range keys) explains one extra value.
fn parse_params(
    program: &ir::Program,
    action: ActionId,
    toks: &[String],
    no_priority_table: Option<&ir::Table>,
) -> Result<Vec<u128>, Vec<String>> {
    let a = program.action(action);
    let names = tables::ActionInfo::of(program, action).params;
    if toks.len() != names.len() {
        let list: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        let mut msg =
            format!("action `{}` takes {} parameter(s) ({}), got {}", a.name, names.len(), list.join(", "), toks.len());
        if let Some(t) = no_priority_table.filter(|_| toks.len() == names.len() + 1) {
            msg.push_str(&format!("; table `{}` has no ternary or range key, so entries take no priority", t.name));
        }
        return Err(vec![msg]);
    }
    let mut errors = Vec::new();
    let mut values = Vec::new();
    for (tok, (name, width)) in toks.iter().zip(&names) {
        match parse_fitting(tok, *width, &format!("parameter `{name}` of action `{}`", a.name)) {
            Ok(v) => values.push(v),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// A value that must fit `width` bits; `what` names the field for errors.
fn parse_fitting(tok: &str, width: u16, what: &str) -> Result<u128, String> {
    let v = parse_value(tok)?;
    if v & !ir::Ty::Bit(width).mask() != 0 {
        return Err(format!("`{tok}` does not fit {what} (bit<{width}>)"));
    }
    Ok(v)
}

/// A number no larger than `max`, for handles, ports, groups and priorities.
fn parse_number(tok: &str, max: u128, what: &str) -> Result<u128, String> {
    match parse_value(tok) {
        Ok(v) if v <= max => Ok(v),
        Ok(_) => Err(format!("{what} `{tok}` is too large (at most {max})")),
        Err(_) => Err(format!("invalid {what} `{tok}`: expected a number")),
    }
}

/// A multicast group id: 1..=65535.
fn parse_group(tok: &str) -> Result<u16, String> {
    match parse_number(tok, 0xffff, "multicast group")? {
        0 => Err("multicast group 0 is not allowed: mcast_grp 0 means no multicast".into()),
        g => Ok(g as u16),
    }
}

/// A value in any of the CLI's notations: decimal, `0x` hex, `0b` binary,
/// IPv4, IPv6 or MAC.
pub fn parse_value(tok: &str) -> Result<u128, String> {
    let bad = || {
        format!("invalid value `{tok}`: expected a decimal, 0x hex or 0b binary number, an IPv4, IPv6 or MAC address")
    };
    if tok.is_empty() {
        return Err(bad());
    }
    let radix = |digits: &str, radix: u32| {
        if digits.is_empty() {
            return Err(bad());
        }
        u128::from_str_radix(digits, radix).map_err(|e| match e.kind() {
            std::num::IntErrorKind::PosOverflow => format!("value `{tok}` is larger than 128 bits"),
            _ => bad(),
        })
    };
    if let Some(h) = tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X")) {
        return radix(h, 16);
    }
    if let Some(b) = tok.strip_prefix("0b").or_else(|| tok.strip_prefix("0B")) {
        return radix(b, 2);
    }
    if tok.contains(':') {
        let groups: Vec<&str> = tok.split(':').collect();
        let is_mac = groups.len() == 6
            && groups.iter().all(|g| (1..=2).contains(&g.len()) && g.chars().all(|c| c.is_ascii_hexdigit()));
        if is_mac {
            return groups.iter().try_fold(0u128, |acc, g| Ok((acc << 8) | radix(g, 16)?));
        }
        return tok.parse::<Ipv6Addr>().map(u128::from).map_err(|_| bad());
    }
    if tok.contains('.') {
        return tok.parse::<Ipv4Addr>().map(|a| u128::from(u32::from(a))).map_err(|_| bad());
    }
    if tok.bytes().all(|b| b.is_ascii_digit()) {
        return radix(tok, 10);
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::testutil;

    fn ip(a: u8, b: u8, c: u8, d: u8) -> u128 {
        u128::from(u32::from_be_bytes([a, b, c, d]))
    }

    /// The messages of a file that must fail to parse, as `line: message`.
    fn errors(text: &str) -> Vec<String> {
        let p = testutil::lb_program();
        match parse_commands(text, "t.txt", &p) {
            Ok(c) => panic!("expected errors, parsed {c:?}"),
            Err(es) => es.iter().map(|e| format!("{}: {}", e.line, e.message)).collect(),
        }
    }

    /// The single error message of a one-line file.
    fn error(line: &str) -> String {
        let es = errors(line);
        assert_eq!(es.len(), 1, "{es:?}");
        es[0].trim_start_matches("1: ").to_string()
    }

    /// Parses and applies `text` to fresh state.
    fn run(text: &str) -> (ir::Program, Tables, McastGroups, Result<Vec<String>, CommandError>) {
        let p = testutil::lb_program();
        let mut tables = Tables::new(&p);
        let mut mcast = McastGroups::new();
        let cmds = parse_commands(text, "cmds.txt", &p).unwrap_or_else(|e| panic!("{e:?}"));
        let r = apply_commands(&cmds, &mut tables, &mut mcast);
        (p, tables, mcast, r)
    }

    const SETUP: &str = "
# routes of the load balancer
table_add routes forward 10.0.0.0/8 => 00:11:22:33:44:55 1
table_add MyIngress.routes MyIngress.forward 10.1.0.0 / 16 => 0x001122334466 2   # spaces around /
table_set_default routes forward 0xffffffffffff 9

table_add vips set_vip 10.0.0.100 6 80 => 1
table_add acl deny 10.0.0.0&&&255.0.0.0 0->1023 => 10
table_add acl allow 10.0.0.1 &&& 0xffffffff 80 -> 80 => 1
table_add v6 drop 2001:db8::/32 =>
mc_mgrp_create 1
mc_node_create 0 1 2
mc_node_create 1 3
mc_node_associate 1 0
mc_node_associate 1 1
table_dump vips
";

    #[test]
    fn a_whole_file() {
        let (p, mut t, m, out) = run(SETUP);
        let out = out.unwrap();
        let (routes, acl, v6) =
            (p.find_table("routes").unwrap(), p.find_table("acl").unwrap(), p.find_table("v6").unwrap());
        let fwd = p.find_action("MyIngress.forward").unwrap();
        let l = t.lookup(routes, &[ip(10, 1, 2, 3)]);
        assert_eq!((l.hit, l.action, l.params), (true, fwd, &[0x0011_2233_4466, 2][..]));
        assert_eq!(t.lookup(routes, &[ip(10, 2, 2, 3)]).params, [0x0011_2233_4455, 1]);
        let l = t.lookup(routes, &[ip(11, 2, 2, 3)]);
        assert_eq!((l.hit, l.action, l.params), (false, fwd, &[0xffff_ffff_ffff, 9][..]));
        assert_eq!(t.lookup(acl, &[ip(10, 0, 0, 1), 80]).entry, Some(EntryHandle(1)));
        assert_eq!(t.lookup(acl, &[ip(10, 0, 0, 2), 80]).entry, Some(EntryHandle(0)));
        assert_eq!(t.lookup(acl, &[ip(10, 0, 0, 2), 8080]).entry, None);
        assert!(t.lookup(v6, &[0x2001_0db8_0000_0000_0000_0000_0000_0001]).hit);
        assert_eq!(m.ports(1), Some(&[1, 2, 3][..]));
        assert_eq!(
            out,
            [
                "==========",
                "TABLE ENTRIES",
                "**********",
                "Dumping entry 0x0",
                "Match key:",
                "* hdr.ipv4.dst_addr   : EXACT     0a000064",
                "* hdr.ipv4.protocol   : EXACT     06",
                "* meta.dst_port       : EXACT     0050",
                "Action entry: MyIngress.set_vip - 0001",
                "==========",
                "Dumping default entry",
                "Action entry: NoAction - ",
                "==========",
            ]
        );
    }

    #[test]
    fn apply_is_all_or_nothing() {
        let p = testutil::lb_program();
        let vips = p.find_table("vips").unwrap();
        let mut tables = Tables::new(&p);
        let mut mcast = McastGroups::new();
        let ok = parse_commands("table_add vips set_vip 10.0.0.100 6 80 => 1", "a.txt", &p).unwrap();
        apply_commands(&ok, &mut tables, &mut mcast).unwrap();
        // Line 2 adds a new entry, line 3 repeats the first key: nothing of this file may stick.
        let text = "mc_mgrp_create 5\ntable_add vips set_vip 10.0.0.100 6 443 => 2\ntable_add vips set_vip 10.0.0.100 6 80 => 3\n";
        let cmds = parse_commands(text, "b.txt", &p).unwrap();
        let err = apply_commands(&cmds, &mut tables, &mut mcast).unwrap_err();
        assert_eq!(
            err.to_string(),
            "b.txt:3: duplicate entry in table `MyIngress.vips`: entry 0 has the same match key"
        );
        assert_eq!(tables.table(vips).len(), 1);
        assert!(!tables.lookup(vips, &[ip(10, 0, 0, 100), 6, 443]).hit);
        assert_eq!(mcast.ports(5), None);
    }

    #[test]
    fn apply_time_errors() {
        let fails = |text: &str| run(text).3.unwrap_err().to_string();
        assert_eq!(fails("table_delete vips 3"), "cmds.txt:1: table `MyIngress.vips` has no entry with handle 3");
        let full = "table_add acl deny 0&&&0 1->1 => 1\ntable_add acl deny 0&&&0 2->2 => 1\n\
                    table_add acl deny 0&&&0 3->3 => 1\ntable_add acl deny 0&&&0 4->4 => 1\n\
                    table_add acl deny 0&&&0 5->5 => 1\n";
        assert_eq!(fails(full), "cmds.txt:5: table full: `MyIngress.acl` already holds 4 entries (its size)");
        assert_eq!(fails("mc_mgrp_create 1\nmc_mgrp_create 1"), "cmds.txt:2: multicast group 1 already exists");
        assert_eq!(
            fails("mc_node_associate 2 0"),
            "cmds.txt:1: multicast node 0 does not exist (node handles come from mc_node_create, from 0)"
        );
        assert_eq!(
            fails("mc_node_create 0 1\nmc_node_associate 2 0"),
            "cmds.txt:2: multicast group 2 does not exist (create it with mc_mgrp_create)"
        );
    }

    #[test]
    fn delete_then_add_and_clear() {
        let text = "table_add vips set_vip 10.0.0.1 6 80 => 1\ntable_add vips set_vip 10.0.0.2 6 80 => 2\n\
                    table_delete vips 0\ntable_add vips set_vip 10.0.0.3 6 80 => 3\ntable_delete vips 0x1\n\
                    table_add vips set_vip 10.0.0.2 6 80 => 4\ntable_reset_default routes\ntable_clear acl";
        let (p, mut t, _, r) = run(text);
        r.unwrap();
        let vips = p.find_table("vips").unwrap();
        let handle = |t: &mut Tables, a| t.lookup(vips, &[a, 6, 80]).entry.map(|h| h.0);
        assert_eq!(handle(&mut t, ip(10, 0, 0, 1)), None);
        assert_eq!(handle(&mut t, ip(10, 0, 0, 3)), Some(0));
        assert_eq!(handle(&mut t, ip(10, 0, 0, 2)), Some(1));
        assert_eq!(t.lookup(vips, &[ip(10, 0, 0, 2), 6, 80]).params, [4]);
    }

    #[test]
    fn every_error_of_a_file_is_reported() {
        let text = "table_add routes forward 10.0.0.0/8 => 1 1\n\n# lines 1 to 4 are fine:\ntable_dump routes\nfoo\n\
                    table_add vips set_vip 10.0.0.1 0x1ff 80 => 0x10000\n";
        let es = errors(text);
        assert_eq!(es.len(), 3, "{es:?}");
        assert_eq!(
            es[0],
            "5: unknown command `foo` (known: table_add, table_set_default, table_reset_default, \
                           table_delete, table_clear, table_dump, mc_mgrp_create, mc_node_create, mc_node_associate)"
        );
        assert_eq!(es[1], "6: `0x1ff` does not fit key field `hdr.ipv4.protocol` (bit<8>)");
        assert_eq!(es[2], "6: `0x10000` does not fit parameter `svc` of action `MyIngress.set_vip` (bit<16>)");
        let e = &parse_commands("foo", "cmds/lb.txt", &testutil::lb_program()).unwrap_err()[0];
        assert!(e.to_string().starts_with("cmds/lb.txt:1: unknown command `foo`"));
    }

    #[test]
    fn name_errors() {
        assert_eq!(error("table_dump routs"), "unknown table `routs` (did you mean `routes`?)");
        assert_eq!(error("table_dump nothing_like_it"), "unknown table `nothing_like_it`");
        assert_eq!(
            error("table_add routes set_vip 10.0.0.0/8 => 1"),
            "action `set_vip` is not an action of table `MyIngress.routes` (its actions: MyIngress.forward, \
             MyIngress.drop, NoAction)"
        );
        assert_eq!(
            error("table_add routes frward 10.0.0.0/8 => 1"),
            "unknown action `frward` (did you mean `forward`?) (table `MyIngress.routes` has: MyIngress.forward, \
             MyIngress.drop, NoAction)"
        );
        // `forward` is ambiguous in the program but not among smac's actions.
        let p = testutil::lb_program();
        let cmds = parse_commands("table_add smac forward 1 => 0x1", "t", &p).unwrap();
        assert!(
            matches!(cmds[0].op, Op::TableAdd { action, .. } if action == p.find_action("MyEgress.forward").unwrap())
        );
        let mut p = testutil::lb_program();
        testutil::table(&mut p, "MyEgress.routes", &[("k", MatchKind::Exact, 8)], &[]);
        let es = parse_commands("table_dump routes", "t", &p).unwrap_err();
        assert_eq!(
            es[0].message,
            "table name `routes` is ambiguous: it could be MyIngress.routes or MyEgress.routes; use the qualified name"
        );
    }

    #[test]
    fn key_errors() {
        assert_eq!(
            error("table_add routes drop 10.0.0.1 =>"),
            "key field `hdr.ipv4.dst_addr` is lpm: expected VALUE/LEN, got `10.0.0.1`"
        );
        assert_eq!(
            error("table_add vips set_vip 1/8 6 80 => 1"),
            "key field `hdr.ipv4.dst_addr` is exact: expected VALUE, got `1/8`"
        );
        assert_eq!(
            error("table_add acl deny 1 0->1 => 1"),
            "key field `hdr.ipv4.src_addr` is ternary: expected VALUE&&&MASK, got `1`"
        );
        assert_eq!(
            error("table_add acl deny 1&&&1 80 => 1"),
            "key field `meta.dst_port` is range: expected LO->HI, got `80`"
        );
        assert_eq!(
            error("table_add routes drop 10.0.0.0/33 =>"),
            "prefix length 33 is longer than key field `hdr.ipv4.dst_addr` (bit<32>) in `10.0.0.0/33`"
        );
        assert_eq!(error("table_add routes drop 10.0.0.0/x =>"), "invalid prefix length `x`: expected a number");
        assert_eq!(
            error("table_add acl deny 1&&&1 90->80 => 1"),
            "empty range `90->80` for key field `meta.dst_port`: the low bound is above the high bound"
        );
        assert_eq!(
            error("table_add vips set_vip 1 0x1ff 80 => 1"),
            "`0x1ff` does not fit key field `hdr.ipv4.protocol` (bit<8>)"
        );
        assert_eq!(
            error("table_add routes drop 2001:db8::/32 =>"),
            "`2001:db8::` does not fit key field `hdr.ipv4.dst_addr` (bit<32>)"
        );
        assert_eq!(
            error("table_add vips set_vip 1 6 => 1"),
            "table `MyIngress.vips` has 3 key field(s) (hdr.ipv4.dst_addr, hdr.ipv4.protocol, meta.dst_port), got 2"
        );
        assert_eq!(
            error("table_add vips set_vip 1 6 80 1"),
            "missing `=>` between the match key and the action parameters (usage: table_add TABLE ACTION KEY... \
             => PARAM... [PRIORITY])"
        );
        assert_eq!(
            error("table_add vips set_vip 1 6 8O => 1"),
            "invalid value `8O`: expected a decimal, 0x hex or 0b binary number, an IPv4, IPv6 or MAC address"
        );
    }

    #[test]
    fn param_and_priority_errors() {
        assert_eq!(
            error("table_add vips set_vip 1 6 80 =>"),
            "action `MyIngress.set_vip` takes 1 parameter(s) (svc), got 0"
        );
        assert_eq!(
            error("table_add vips set_vip 1 6 80 => 1 2"),
            "action `MyIngress.set_vip` takes 1 parameter(s) (svc), got 2; table `MyIngress.vips` has no ternary or \
             range key, so entries take no priority"
        );
        assert_eq!(
            error("table_add routes forward 10.0.0.0/8 => 00:11:22:33:44:55 0x200"),
            "`0x200` does not fit parameter `port` of action `MyIngress.forward` (bit<9>)"
        );
        assert_eq!(
            error("table_add acl deny 1&&&1 1->2 =>"),
            "table `MyIngress.acl` has ternary or range keys: give a priority after the action parameters (the \
             smallest number wins)"
        );
        assert_eq!(error("table_add acl deny 1&&&1 1->2 => high"), "invalid priority `high`: expected a number");
        assert_eq!(
            error("table_add acl deny 1&&&1 1->2 => 0x100000000"),
            "priority `0x100000000` is too large (at most 4294967295)"
        );
        assert_eq!(
            error("table_set_default routes forward 1"),
            "action `MyIngress.forward` takes 2 parameter(s) (dmac, port), got 1"
        );
    }

    #[test]
    fn const_table_errors() {
        let entries =
            "table `MyIngress.fixed` has const entries: the control plane cannot add, delete or clear entries";
        let default = "table `MyIngress.fixed` has a const default action: the control plane cannot change it";
        assert_eq!(error("table_add fixed drop 0x800 =>"), entries);
        assert_eq!(error("table_delete fixed 0"), entries);
        assert_eq!(error("table_clear fixed"), entries);
        assert_eq!(error("table_set_default fixed drop"), default);
        assert_eq!(error("table_reset_default fixed"), default);
        // Dumping is fine, and shows the program's entry.
        let (_, _, _, out) = run("table_dump fixed");
        assert_eq!(out.unwrap()[5], "* hdr.ethernet.ether_type: EXACT     86dd");
    }

    #[test]
    fn usage_and_multicast_errors() {
        assert_eq!(error("table_add routes"), "usage: table_add TABLE ACTION KEY... => PARAM... [PRIORITY]");
        assert_eq!(error("table_delete vips"), "usage: table_delete TABLE HANDLE");
        assert_eq!(error("table_dump vips acl"), "usage: table_dump TABLE");
        assert_eq!(error("table_set_default"), "usage: table_set_default TABLE ACTION PARAM...");
        assert_eq!(error("table_delete vips -1"), "invalid entry handle `-1`: expected a number");
        assert_eq!(error("mc_mgrp_create 0"), "multicast group 0 is not allowed: mcast_grp 0 means no multicast");
        assert_eq!(error("mc_mgrp_create 65536"), "multicast group `65536` is too large (at most 65535)");
        assert_eq!(error("mc_node_create 0 1 | 2"), "multicast LAGs are not supported: give only ports after the RID");
        assert_eq!(
            errors("mc_node_create x 512"),
            ["1: invalid replication id `x`: expected a number", "1: port `512` is too large (at most 511)"]
        );
        assert_eq!(error("mc_node_associate 1 x"), "invalid node handle `x`: expected a number");
    }

    #[test]
    fn values() {
        assert_eq!(parse_value("42"), Ok(42));
        assert_eq!(parse_value("0x0800"), Ok(0x800));
        assert_eq!(parse_value("0b101"), Ok(5));
        assert_eq!(parse_value("10.0.0.1"), Ok(0x0a00_0001));
        assert_eq!(parse_value("00:11:22:33:44:55"), Ok(0x0011_2233_4455));
        assert_eq!(parse_value("0:1:2:3:4:ff"), Ok(0x0001_0203_04ff));
        assert_eq!(parse_value("2001:db8::1"), Ok(0x2001_0db8_0000_0000_0000_0000_0000_0001));
        assert_eq!(parse_value("::ffff:10.0.0.1"), Ok(0xffff_0a00_0001));
        assert_eq!(parse_value("340282366920938463463374607431768211455"), Ok(u128::MAX));
        assert_eq!(
            parse_value("0x1ffffffffffffffffffffffffffffffff"),
            Err("value `0x1ffffffffffffffffffffffffffffffff` is larger than 128 bits".into())
        );
        for bad in ["", "0x", "1.2.3", "256.0.0.1", "00:11:22:33:44", "0xfg", "-1", "1e3", "0b2"] {
            assert!(parse_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(
            tokenize("table_add t a 10.0.0.0 / 8 1 &&& 2 3-> 4 =>5"),
            ["table_add", "t", "a", "10.0.0.0/8", "1&&&2", "3->4", "=>", "5"]
        );
        assert_eq!(tokenize("a 1=>2"), ["a", "1", "=>", "2"]);
        assert!(tokenize("   ").is_empty());
    }
}

/// The control-plane files of the pcap cases (`pcaps/*/case.txt` names a
/// program and an entries file), against the real compiled programs.
#[cfg(test)]
mod case_files {
    use std::path::Path;

    use super::*;

    #[test]
    fn every_case_entries_file_applies() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut checked = 0;
        let Ok(dirs) = std::fs::read_dir(root.join("pcaps")) else { return };
        for dir in dirs.flatten() {
            let Ok(case) = std::fs::read_to_string(dir.path().join("case.txt")) else { continue };
            let field = |name: &str| {
                case.lines()
                    .find_map(|l| l.strip_prefix(name)?.trim_start().strip_prefix('=').map(|v| v.trim().to_string()))
            };
            let (Some(program), Some(entries)) = (field("program"), field("entries")) else { continue };
            let source = std::fs::read_to_string(root.join(&program)).unwrap();
            let compiled = p4lite_compiler::compile(&p4lite_compiler::span::Sources::new(program.as_str(), source));
            let ir = compiled.ir.unwrap_or_else(|| panic!("{program} does not compile: {:?}", compiled.diagnostics));
            let file = dir.path().join(&entries);
            let text = std::fs::read_to_string(&file).unwrap();
            let name = file.display().to_string();
            let cmds = parse_commands(&text, &name, &ir)
                .unwrap_or_else(|es| panic!("{}", es.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")));
            let (mut tables, errors) = Tables::with_errors(&ir);
            assert_eq!(errors, [], "{program}: program entries");
            apply_commands(&cmds, &mut tables, &mut McastGroups::new()).unwrap_or_else(|e| panic!("{e}"));
            checked += 1;
        }
        assert!(checked > 0 || !root.join("pcaps").exists());
    }
}
