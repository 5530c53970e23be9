//! The control plane: BMv2 `simple_switch_CLI` commands, read from a text
//! file or one at a time from the control socket ([`crate::ctl`]), checked
//! against the program, then applied to the tables, the multicast groups
//! and the counter and register arrays. Files and the socket share this one
//! implementation.
//!
//! # Commands
//! ```text
//! table_add TABLE ACTION KEY... => PARAM... [PRIORITY]
//! table_modify TABLE ACTION HANDLE [=>] PARAM...
//! table_delete TABLE HANDLE
//! table_set_default TABLE ACTION PARAM...
//! table_reset_default TABLE
//! table_clear TABLE
//! table_num_entries TABLE
//! table_dump TABLE
//! table_dump_entry TABLE HANDLE
//! table_info TABLE
//! table_show_actions TABLE
//! show_tables
//! show_actions
//! mc_mgrp_create GROUP
//! mc_mgrp_destroy GROUP
//! mc_node_create RID PORT...
//! mc_node_update NODE_HANDLE PORT...
//! mc_node_associate GROUP NODE_HANDLE
//! mc_node_dissociate GROUP NODE_HANDLE
//! mc_node_destroy NODE_HANDLE
//! mc_dump
//! counter_read COUNTER INDEX
//! counter_write COUNTER INDEX PACKETS BYTES
//! counter_reset COUNTER
//! register_read REGISTER [INDEX]
//! register_write REGISTER INDEX VALUE
//! register_reset REGISTER
//! ```
//! One command per line; `#` starts a comment; blank lines are skipped.
//! Tables, actions, counters and registers are named by their qualified
//! name (`MyIngress.routes`) or, when unique, by their last component
//! (`routes`); an action's short name only needs to be unique among the
//! table's actions.
//!
//! Keys follow the table's match kinds: exact `VALUE`, lpm `VALUE/LEN`,
//! ternary `VALUE&&&MASK`, range `LO->HI` (spaces around `/`, `&&&` and `->`
//! are allowed). Values are decimal, `0x` hex, `0b` binary, IPv4
//! (`10.0.0.1`), IPv6 (`2001:db8::1`) or MAC (`00:11:22:33:44:55`), and must
//! fit the key field's or parameter's width. As in BMv2, a priority is
//! required exactly when the table has a ternary or range key, and the
//! smallest number wins ([`crate::tables`] has the full match semantics).
//!
//! `table_modify` changes an entry's action and parameters and keeps the
//! rest, as BMv2 does: its handle, match key, priority and hit counter.
//! `mc_*` commands manage [`McastGroups`]; node handles, like entry handles
//! ([`crate::tables`]), are the smallest free ones, shown by `mc_dump` and
//! `table_dump`. There are no LAGs, meters or action profiles.
//!
//! # Output
//! Commands that answer something (`table_dump`, `table_num_entries`,
//! `counter_read`, `register_read`, `mc_dump`, `show_tables`, ...) print
//! BMv2's text. With [`Echo::Bmv2`] (the control socket) the others also
//! print BMv2's acknowledgements (`Entry has been added with handle 2`,
//! `Modifying entry 2 for lpm match table MyIngress.routes`, `Creating
//! multicast group 1`, ...); a file ([`Echo::Answers`]) prints only the
//! answers, so a long entries file stays quiet.
//!
//! # Two phases
//! [`parse_commands`] checks everything that depends only on the program
//! (names, syntax, counts, widths, indexes, const tables) and reports every
//! error of the file. [`apply_commands`] then runs the commands against a
//! copy of the tables and groups (the counter and register cells a command
//! changes are saved first and put back on failure); errors that depend on
//! the state (duplicate key, table full, unknown handle or group) stop it
//! and leave everything as it was, so a file applies entirely or not at
//! all.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use p4lite_compiler::diag::did_you_mean;
use p4lite_compiler::ir::{self, ActionId, KeyMatch, MatchKind, TableId};

use crate::externs::Externs;
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
    /// `table_modify`: a new action and parameters for an entry.
    TableModify { table: TableId, action: ActionId, handle: EntryHandle, params: Vec<u128> },
    /// `table_set_default`
    TableSetDefault { table: TableId, action: ActionId, params: Vec<u128> },
    /// `table_reset_default`: back to the program's default action.
    TableResetDefault { table: TableId },
    /// `table_delete`
    TableDelete { table: TableId, handle: EntryHandle },
    /// `table_clear`
    TableClear { table: TableId },
    /// `table_num_entries`
    TableNumEntries { table: TableId },
    /// `table_dump`
    TableDump { table: TableId },
    /// `table_dump_entry`
    TableDumpEntry { table: TableId, handle: EntryHandle },
    /// `table_info`, `table_show_actions`, `show_tables`, `show_actions`:
    /// the program's description, worked out when parsing.
    Describe { lines: Vec<String> },
    /// `mc_mgrp_create`
    McMgrpCreate { group: u16 },
    /// `mc_mgrp_destroy`
    McMgrpDestroy { group: u16 },
    /// `mc_node_create`
    McNodeCreate { rid: u16, ports: Vec<u16> },
    /// `mc_node_update`
    McNodeUpdate { node: u32, ports: Vec<u16> },
    /// `mc_node_associate`
    McNodeAssociate { group: u16, node: u32 },
    /// `mc_node_dissociate`
    McNodeDissociate { group: u16, node: u32 },
    /// `mc_node_destroy`
    McNodeDestroy { node: u32 },
    /// `mc_dump`
    McDump,
    /// `counter_read`: `counter` is the qualified name, `shown` the name as written.
    CounterRead { counter: String, shown: String, index: usize },
    /// `counter_write`
    CounterWrite { counter: String, shown: String, index: usize, packets: u64, bytes: u64 },
    /// `counter_reset`
    CounterReset { counter: String },
    /// `register_read`: one cell, or every cell without an index.
    RegisterRead { register: String, shown: String, index: Option<usize> },
    /// `register_write`
    RegisterWrite { register: String, index: usize, value: u128 },
    /// `register_reset`
    RegisterReset { register: String },
}

/// What [`apply_commands`] prints besides the answers of queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// Only what queries answer (`table_dump`, `counter_read`, ...): files.
    Answers,
    /// Also BMv2's acknowledgement of each change (`Entry has been added
    /// with handle 0`): the control socket, where one runs one command.
    Bmv2,
}

/// The state commands change: the switch's tables, multicast groups and
/// extern instances (counters, registers).
pub struct Target<'a> {
    pub tables: &'a mut Tables,
    pub mcast: &'a mut McastGroups,
    pub externs: &'a mut Externs,
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

/// Every command name, with its usage, in the order `help` lists them.
pub const COMMANDS: [(&str, &str); 27] = [
    ("table_add", "table_add TABLE ACTION KEY... => PARAM... [PRIORITY]"),
    ("table_modify", "table_modify TABLE ACTION HANDLE [=>] PARAM..."),
    ("table_delete", "table_delete TABLE HANDLE"),
    ("table_set_default", "table_set_default TABLE ACTION PARAM..."),
    ("table_reset_default", "table_reset_default TABLE"),
    ("table_clear", "table_clear TABLE"),
    ("table_num_entries", "table_num_entries TABLE"),
    ("table_dump", "table_dump TABLE"),
    ("table_dump_entry", "table_dump_entry TABLE HANDLE"),
    ("table_info", "table_info TABLE"),
    ("table_show_actions", "table_show_actions TABLE"),
    ("show_tables", "show_tables"),
    ("show_actions", "show_actions"),
    ("mc_mgrp_create", "mc_mgrp_create GROUP"),
    ("mc_mgrp_destroy", "mc_mgrp_destroy GROUP"),
    ("mc_node_create", "mc_node_create RID PORT..."),
    ("mc_node_update", "mc_node_update NODE_HANDLE PORT..."),
    ("mc_node_associate", "mc_node_associate GROUP NODE_HANDLE"),
    ("mc_node_dissociate", "mc_node_dissociate GROUP NODE_HANDLE"),
    ("mc_node_destroy", "mc_node_destroy NODE_HANDLE"),
    ("mc_dump", "mc_dump"),
    ("counter_read", "counter_read COUNTER INDEX"),
    ("counter_write", "counter_write COUNTER INDEX PACKETS BYTES"),
    ("counter_reset", "counter_reset COUNTER"),
    ("register_read", "register_read REGISTER [INDEX]"),
    ("register_write", "register_write REGISTER INDEX VALUE"),
    ("register_reset", "register_reset REGISTER"),
];

/// True when `word` is one of this module's commands.
pub fn is_command(word: &str) -> bool {
    COMMANDS.iter().any(|c| c.0 == word)
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

/// Saved counter and register cells, to put back when a batch fails.
#[derive(Default)]
struct Saved {
    counters: BTreeMap<String, Vec<(u64, u64)>>,
    registers: BTreeMap<String, Vec<u128>>,
}

impl Saved {
    /// Saves counter `name`'s cells unless already saved.
    fn counter(&mut self, externs: &Externs, name: &str) {
        if let (false, Some(c)) = (self.counters.contains_key(name), externs.counter(name)) {
            let cells = (0..c.len()).filter_map(|i| c.read(i)).collect();
            self.counters.insert(name.to_string(), cells);
        }
    }

    /// Saves register `name`'s cells unless already saved.
    fn register(&mut self, externs: &Externs, name: &str) {
        if let (false, Some(r)) = (self.registers.contains_key(name), externs.register(name)) {
            let cells = (0..r.len()).filter_map(|i| r.get(i)).collect();
            self.registers.insert(name.to_string(), cells);
        }
    }

    /// Puts every saved cell back (in place: compiled code holds pointers to the counters' cells).
    fn restore(self, externs: &mut Externs) {
        for (name, cells) in self.counters {
            if let Some(c) = externs.counter_mut(&name) {
                for (i, (p, b)) in cells.into_iter().enumerate() {
                    c.write(i, p, b);
                }
            }
        }
        for (name, cells) in self.registers {
            if let Some(r) = externs.register_mut(&name) {
                for (i, v) in cells.into_iter().enumerate() {
                    r.write(i as u128, v);
                }
            }
        }
    }
}

/// Applies `cmds` in order, all or nothing: on the first error the tables,
/// groups, counters and registers are left as they were. Returns the
/// output lines ([`Echo`] says which).
pub fn apply_commands(cmds: &[Command], target: Target<'_>, echo: Echo) -> Result<Vec<String>, CommandError> {
    let mut t = target.tables.clone();
    let mut m = target.mcast.clone();
    let mut saved = Saved::default();
    let mut out = Output { lines: Vec::new(), echo };
    for c in cmds {
        let step = match &c.op {
            Op::CounterRead { .. } | Op::RegisterRead { .. } => apply_extern(&c.op, target.externs, &mut out),
            Op::CounterWrite { counter, .. } | Op::CounterReset { counter } => {
                saved.counter(target.externs, counter);
                apply_extern(&c.op, target.externs, &mut out)
            }
            Op::RegisterWrite { register, .. } | Op::RegisterReset { register } => {
                saved.register(target.externs, register);
                apply_extern(&c.op, target.externs, &mut out)
            }
            op => apply_one(op, &mut t, &mut m, &mut out),
        };
        if let Err(message) = step {
            saved.restore(target.externs);
            return Err(CommandError { file: c.file.to_string(), line: c.line, message });
        }
    }
    *target.tables = t;
    *target.mcast = m;
    Ok(out.lines)
}

/// Where a batch's output goes.
struct Output {
    lines: Vec<String>,
    echo: Echo,
}

impl Output {
    /// A query's answer: always printed.
    fn answer(&mut self, line: String) {
        self.lines.push(line);
    }

    /// BMv2's acknowledgement of a change: printed with [`Echo::Bmv2`].
    fn ack(&mut self, line: String) {
        if self.echo == Echo::Bmv2 {
            self.lines.push(line);
        }
    }
}

/// BMv2's name for a table's match type: its most general key's kind.
fn match_type(t: &tables::TableState) -> &'static str {
    let has = |kind| t.keys().iter().any(|k| k.kind == kind);
    if has(MatchKind::Range) {
        "range"
    } else if has(MatchKind::Ternary) {
        "ternary"
    } else if has(MatchKind::Lpm) {
        "lpm"
    } else {
        "exact"
    }
}

/// Runs one table or multicast command against the copies `t` and `m`.
fn apply_one(op: &Op, t: &mut Tables, m: &mut McastGroups, out: &mut Output) -> Result<(), String> {
    let s = |r: Result<(), tables::TableError>| r.map_err(|e| e.to_string());
    let mc = |r: Result<(), tables::McastError>| r.map_err(|e| e.to_string());
    match op {
        Op::TableAdd { table, action, keys, params, priority } => {
            let state = t.table_mut(*table);
            out.ack(format!("Adding entry to {} match table {}", match_type(state), state.name()));
            let h = state.add_entry(keys, *action, params, *priority).map_err(|e| e.to_string())?;
            out.ack(format!("Entry has been added with handle {h}"));
            Ok(())
        }
        Op::TableModify { table, action, handle, params } => {
            let state = t.table_mut(*table);
            out.ack(format!("Modifying entry {handle} for {} match table {}", match_type(state), state.name()));
            s(state.modify_entry(*handle, *action, params))
        }
        Op::TableSetDefault { table, action, params } => {
            let state = t.table_mut(*table);
            s(state.set_default(*action, params))?;
            let (name, data) = action_data(state, *action, params);
            out.ack(format!("Setting default action of {}", state.name()));
            out.ack(format!("{:20} {name}", "action:"));
            out.ack(format!("{:20} {data}", "runtime data:"));
            Ok(())
        }
        Op::TableResetDefault { table } => s(t.table_mut(*table).reset_default()),
        Op::TableDelete { table, handle } => {
            let state = t.table_mut(*table);
            out.ack(format!("Deleting entry {handle} from {}", state.name()));
            s(state.delete_entry(*handle))
        }
        Op::TableClear { table } => s(t.table_mut(*table).clear()),
        Op::TableNumEntries { table } => {
            out.answer(t.table(*table).len().to_string());
            Ok(())
        }
        Op::TableDump { table } => {
            t.table(*table).dump().into_iter().for_each(|l| out.answer(l));
            Ok(())
        }
        Op::TableDumpEntry { table, handle } => {
            let state = t.table(*table);
            let lines = state
                .dump_entry(*handle)
                .ok_or_else(|| tables::TableError::NoEntry { table: state.name().to_string(), handle: *handle })
                .map_err(|e| e.to_string())?;
            lines.into_iter().for_each(|l| out.answer(l));
            Ok(())
        }
        Op::Describe { lines } => {
            lines.iter().for_each(|l| out.answer(l.clone()));
            Ok(())
        }
        Op::McMgrpCreate { group } => {
            out.ack(format!("Creating multicast group {group}"));
            mc(m.create_group(*group))
        }
        Op::McMgrpDestroy { group } => {
            out.ack(format!("Destroying multicast group {group}"));
            mc(m.destroy_group(*group))
        }
        Op::McNodeCreate { rid, ports } => {
            out.ack(format!("Creating node with rid {rid} and with port map {}", port_map(ports)));
            let h = m.create_node(*rid, ports.clone());
            out.ack(format!("node was created with handle {h}"));
            Ok(())
        }
        Op::McNodeUpdate { node, ports } => {
            out.ack(format!("Updating node {node} with port map {}", port_map(ports)));
            mc(m.update_node(*node, ports.clone()))
        }
        Op::McNodeAssociate { group, node } => {
            out.ack(format!("Associating node {node} to multicast group {group}"));
            mc(m.associate(*group, *node))
        }
        Op::McNodeDissociate { group, node } => {
            out.ack(format!("Dissociating node {node} from multicast group {group}"));
            mc(m.dissociate(*group, *node))
        }
        Op::McNodeDestroy { node } => {
            out.ack(format!("Destroying node {node}"));
            mc(m.destroy_node(*node))
        }
        Op::McDump => {
            mc_dump(m).into_iter().for_each(|l| out.answer(l));
            Ok(())
        }
        Op::CounterRead { .. }
        | Op::CounterWrite { .. }
        | Op::CounterReset { .. }
        | Op::RegisterRead { .. }
        | Op::RegisterWrite { .. }
        | Op::RegisterReset { .. } => Err("internal error: an extern command reached the table code".into()),
    }
}

/// Runs one counter or register command on the switch's instances (the
/// caller has saved the cells it changes).
fn apply_extern(op: &Op, ex: &mut Externs, out: &mut Output) -> Result<(), String> {
    let gone = |kind: &str, name: &str| format!("{kind} `{name}` is not bound in this switch");
    let range = |i: usize, len: usize| format!("index {i} is out of range (the array has {len} cells)");
    match op {
        Op::CounterRead { counter, shown, index } => {
            let c = ex.counter(counter).ok_or_else(|| gone("counter", counter))?;
            let (packets, bytes) = c.read(*index).ok_or_else(|| range(*index, c.len()))?;
            out.answer(format!("{shown}[{index}]= ({bytes} bytes, {packets} packets)"));
        }
        Op::CounterWrite { counter, shown, index, packets, bytes } => {
            let c = ex.counter_mut(counter).ok_or_else(|| gone("counter", counter))?;
            if !c.write(*index, *packets, *bytes) {
                return Err(range(*index, c.len()));
            }
            out.answer(format!("{shown}[{index}] has been updated"));
        }
        Op::CounterReset { counter } => ex.counter_mut(counter).ok_or_else(|| gone("counter", counter))?.reset(),
        Op::RegisterRead { register, shown, index } => {
            let r = ex.register(register).ok_or_else(|| gone("register", register))?;
            match index {
                Some(i) => {
                    let v = r.get(*i).ok_or_else(|| range(*i, r.len()))?;
                    out.answer(format!("{shown}[{i}]= {v}"));
                }
                None => {
                    let all: Vec<String> = (0..r.len()).filter_map(|i| r.get(i)).map(|v| v.to_string()).collect();
                    out.answer(format!("{shown}= {}", all.join(", ")));
                }
            }
        }
        Op::RegisterWrite { register, index, value } => {
            let r = ex.register_mut(register).ok_or_else(|| gone("register", register))?;
            if *index >= r.len() {
                return Err(range(*index, r.len()));
            }
            r.write(*index as u128, *value);
        }
        Op::RegisterReset { register } => {
            let r = ex.register_mut(register).ok_or_else(|| gone("register", register))?;
            (0..r.len()).for_each(|i| r.write(i as u128, 0));
        }
        _ => return Err("internal error: a table command reached the extern code".into()),
    }
    Ok(())
}

/// An action's name and its parameters as BMv2's `runtime data:` line
/// shows them (each value's bytes as `00:0a`, values separated by tabs).
fn action_data(t: &tables::TableState, action: ActionId, params: &[u128]) -> (String, String) {
    let (name, values) = t.action_text(action, params);
    let bytes: Vec<String> = values
        .iter()
        .map(|hex| {
            hex.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(":")
        })
        .collect();
    (name, bytes.join("\t"))
}

/// BMv2's port map string: one character per port up to the highest,
/// `1` for a member, the lowest port last (`1 2` is `110`).
fn port_map(ports: &[u16]) -> String {
    let top = ports.iter().copied().max().map_or(0, |p| usize::from(p) + 1);
    (0..top).rev().map(|p| if ports.contains(&(p as u16)) { '1' } else { '0' }).collect()
}

/// `mc_dump`'s listing, in BMv2's format.
fn mc_dump(m: &McastGroups) -> Vec<String> {
    let mut out = vec!["==========".to_string(), "MC ENTRIES".to_string()];
    for (id, g) in m.groups() {
        out.push("**********".to_string());
        out.push(format!("mgrp({id})"));
        for &h in &g.nodes {
            let Some(n) = m.node(h) else { continue };
            let ports: Vec<String> = n.ports.iter().map(u16::to_string).collect();
            out.push(format!("  -> (L1h={h}, rid={}) -> (ports=[{}], lags=[])", n.rid, ports.join(", ")));
        }
    }
    out.extend(["==========", "LAGS", "None for this PRE type", "=========="].map(String::from));
    out
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

/// The usage line of command `name`.
fn usage_of(name: &str) -> String {
    usage(COMMANDS.iter().find(|c| c.0 == name).map_or(name, |c| c.1))
}

/// One command line, already split into words.
fn parse_line(program: &ir::Program, toks: &[String]) -> Result<Op, Vec<String>> {
    let args = &toks[1..];
    let cmd = toks[0].as_str();
    let one = |e: String| vec![e];
    let wrong = || vec![usage_of(cmd)];
    let handle = |tok: &str| parse_number(tok, u128::from(u32::MAX), "entry handle").map(|h| EntryHandle(h as u32));
    let node = |tok: &str| parse_number(tok, u128::from(u32::MAX), "node handle").map(|h| h as u32);
    match cmd {
        "table_add" => table_add(program, args),
        "table_modify" => table_modify(program, args),
        "table_set_default" => {
            let [table, action, params @ ..] = args else { return Err(wrong()) };
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
            let [table] = args else { return Err(wrong()) };
            let table = resolve_table(program, table).map_err(one)?;
            let t = program.table(table);
            if t.default_const {
                return Err(one(tables::TableError::ConstDefault { table: t.name.clone() }.to_string()));
            }
            Ok(Op::TableResetDefault { table })
        }
        "table_delete" => {
            let [table, h] = args else { return Err(wrong()) };
            let table = mutable_table(program, table).map_err(one)?;
            Ok(Op::TableDelete { table, handle: handle(h).map_err(one)? })
        }
        "table_clear" => {
            let [table] = args else { return Err(wrong()) };
            Ok(Op::TableClear { table: mutable_table(program, table).map_err(one)? })
        }
        "table_num_entries" | "table_dump" | "table_info" | "table_show_actions" => {
            let [table] = args else { return Err(wrong()) };
            let table = resolve_table(program, table).map_err(one)?;
            Ok(match cmd {
                "table_num_entries" => Op::TableNumEntries { table },
                "table_dump" => Op::TableDump { table },
                "table_info" => {
                    let mut lines = vec![table_str(program, table), "*".repeat(80)];
                    lines.extend(table_actions(program, table));
                    Op::Describe { lines }
                }
                _ => Op::Describe { lines: table_actions(program, table) },
            })
        }
        "table_dump_entry" => {
            let [table, h] = args else { return Err(wrong()) };
            let table = resolve_table(program, table).map_err(one)?;
            Ok(Op::TableDumpEntry { table, handle: handle(h).map_err(one)? })
        }
        "show_tables" | "show_actions" | "mc_dump" if !args.is_empty() => Err(wrong()),
        "show_tables" => {
            let mut names: Vec<(String, TableId)> =
                (0..program.tables.len()).map(|i| (program.tables[i].name.clone(), TableId(i as u32))).collect();
            names.sort();
            Ok(Op::Describe { lines: names.into_iter().map(|(_, t)| table_str(program, t)).collect() })
        }
        "show_actions" => {
            let mut lines: Vec<String> =
                (0..program.actions.len()).map(|i| action_str(program, ActionId(i as u32))).collect();
            lines.sort();
            Ok(Op::Describe { lines })
        }
        "mc_dump" => Ok(Op::McDump),
        "mc_mgrp_create" | "mc_mgrp_destroy" => {
            let [group] = args else { return Err(wrong()) };
            let group = parse_group(group).map_err(one)?;
            Ok(if cmd == "mc_mgrp_create" { Op::McMgrpCreate { group } } else { Op::McMgrpDestroy { group } })
        }
        "mc_node_create" | "mc_node_update" => {
            let [first, ports @ ..] = args else { return Err(wrong()) };
            if ports.iter().any(|p| p.starts_with('|')) {
                return Err(one("multicast LAGs are not supported: give only ports after the RID".into()));
            }
            let mut errors = Vec::new();
            let first = if cmd == "mc_node_create" {
                parse_number(first, 0xffff, "replication id")
            } else {
                node(first).map(u128::from)
            };
            let first = first.map_err(|e| errors.push(e)).unwrap_or(0);
            let ports = parse_ports(program, ports, &mut errors);
            match errors.is_empty() {
                true if cmd == "mc_node_create" => Ok(Op::McNodeCreate { rid: first as u16, ports }),
                true => Ok(Op::McNodeUpdate { node: first as u32, ports }),
                false => Err(errors),
            }
        }
        "mc_node_associate" | "mc_node_dissociate" => {
            let [group, n] = args else { return Err(wrong()) };
            match (parse_group(group), node(n)) {
                (Ok(group), Ok(node)) if cmd == "mc_node_associate" => Ok(Op::McNodeAssociate { group, node }),
                (Ok(group), Ok(node)) => Ok(Op::McNodeDissociate { group, node }),
                (g, n) => Err(g.err().into_iter().chain(n.err()).collect()),
            }
        }
        "mc_node_destroy" => {
            let [n] = args else { return Err(wrong()) };
            Ok(Op::McNodeDestroy { node: node(n).map_err(one)? })
        }
        "counter_read" | "counter_write" | "counter_reset" => counter_op(program, cmd, args),
        "register_read" | "register_write" | "register_reset" => register_op(program, cmd, args),
        other => {
            let msg = match did_you_mean(other, COMMANDS.iter().map(|c| c.0)) {
                Some(s) => format!("unknown command `{other}` (did you mean `{s}`?)"),
                None => {
                    let known: Vec<&str> = COMMANDS.iter().map(|c| c.0).collect();
                    format!("unknown command `{other}` (known: {})", known.join(", "))
                }
            };
            Err(one(msg))
        }
    }
}

/// Egress ports of a multicast node, each below the width of `egress_spec`.
fn parse_ports(program: &ir::Program, ports: &[String], errors: &mut Vec<String>) -> Vec<u16> {
    let max_port = program.slot(program.std.egress_spec).ty.mask().min(0xffff);
    let mut out: Vec<u16> = Vec::new();
    for p in ports {
        match parse_number(p, max_port, "port") {
            Ok(p) if out.contains(&(p as u16)) => errors.push(format!("port {p} is given twice")),
            Ok(p) => out.push(p as u16),
            Err(e) => errors.push(e),
        }
    }
    out
}

/// BMv2's `show_tables` line of a table: `NAME [implementation=None, mk=KEY(KIND, WIDTH),...]`.
fn table_str(program: &ir::Program, table: TableId) -> String {
    let t = program.table(table);
    let keys: Vec<String> = t
        .keys
        .iter()
        .map(|k| {
            let kind = match k.kind {
                MatchKind::Exact => "exact",
                MatchKind::Lpm => "lpm",
                MatchKind::Ternary => "ternary",
                MatchKind::Range => "range",
            };
            format!("{}({kind}, {})", k.name, k.width)
        })
        .collect();
    format!("{:30} [implementation=None, mk={}]", t.name, keys.join(",\t"))
}

/// BMv2's `show_actions` line of an action: `NAME [PARAM(WIDTH),...]`.
fn action_str(program: &ir::Program, action: ActionId) -> String {
    let info = tables::ActionInfo::of(program, action);
    let params: Vec<String> = info.params.iter().map(|(n, w)| format!("{n}({w})")).collect();
    format!("{:30} [{}]", info.name, params.join(",\t"))
}

/// A table's actions as `table_show_actions` lists them (sorted by name).
fn table_actions(program: &ir::Program, table: TableId) -> Vec<String> {
    let mut lines: Vec<String> = program.table(table).actions.iter().map(|&a| action_str(program, a)).collect();
    lines.sort();
    lines.dedup();
    lines
}

/// A `counter` or `register` instance by qualified or unique short name:
/// its qualified name and the instance.
fn resolve_instance<'p>(program: &'p ir::Program, kind: &str, name: &str) -> Result<&'p ir::Instance, String> {
    let all: Vec<&ir::Instance> = program
        .instances
        .iter()
        .filter(|i| program.extern_types.get(i.ty.index()).is_some_and(|t| t.name == kind))
        .collect();
    if let Some(i) = all.iter().find(|i| i.name == name) {
        return Ok(i);
    }
    let short: Vec<&&ir::Instance> = all.iter().filter(|i| i.name.rsplit('.').next() == Some(name)).collect();
    match short[..] {
        [one] => Ok(one),
        [] if all.is_empty() => Err(format!("the program has no {kind}s")),
        [] => {
            let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
            let mut msg = format!("no {kind} named `{name}`");
            let shorts = names.iter().filter_map(|n| n.rsplit('.').next());
            if let Some(s) = did_you_mean(name, names.iter().copied().chain(shorts)) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            msg.push_str(&format!(" ({kind}s: {})", names.join(", ")));
            Err(msg)
        }
        _ => {
            let names: Vec<&str> = short.iter().map(|i| i.name.as_str()).collect();
            Err(format!("`{name}` is ambiguous: {}; give the qualified name", names.join(", ")))
        }
    }
}

/// A cell index of `inst` (its size is its first constructor argument).
fn parse_cell(inst: &ir::Instance, tok: &str) -> Result<usize, String> {
    let size = inst.ctor_args.first().copied().unwrap_or(0);
    match parse_value(tok) {
        Ok(i) if i < size => Ok(i as usize),
        Ok(i) => Err(format!(
            "index {i} is out of range: `{}` has {size} cells (0 to {})",
            inst.name,
            size.saturating_sub(1)
        )),
        Err(_) => Err(format!("invalid index `{tok}`: expected a number")),
    }
}

/// `counter_read`, `counter_write`, `counter_reset`.
fn counter_op(program: &ir::Program, cmd: &str, args: &[String]) -> Result<Op, Vec<String>> {
    let one = |e: String| vec![e];
    let (name, rest) = args.split_first().ok_or_else(|| vec![usage_of(cmd)])?;
    let inst = resolve_instance(program, "counter", name).map_err(one)?;
    let counter = inst.name.clone();
    let shown = name.clone();
    let count = |tok: &str, what: &str| parse_number(tok, u128::from(u64::MAX), what).map(|v| v as u64);
    match (cmd, rest) {
        ("counter_read", [index]) => {
            Ok(Op::CounterRead { counter, shown, index: parse_cell(inst, index).map_err(one)? })
        }
        ("counter_write", [index, packets, bytes]) => {
            let (i, p, b) = (parse_cell(inst, index), count(packets, "packet count"), count(bytes, "byte count"));
            match (i, p, b) {
                (Ok(index), Ok(packets), Ok(bytes)) => Ok(Op::CounterWrite { counter, shown, index, packets, bytes }),
                (i, p, b) => Err(i.err().into_iter().chain(p.err()).chain(b.err()).collect()),
            }
        }
        ("counter_reset", []) => Ok(Op::CounterReset { counter }),
        _ => Err(vec![usage_of(cmd)]),
    }
}

/// `register_read`, `register_write`, `register_reset`.
fn register_op(program: &ir::Program, cmd: &str, args: &[String]) -> Result<Op, Vec<String>> {
    let one = |e: String| vec![e];
    let (name, rest) = args.split_first().ok_or_else(|| vec![usage_of(cmd)])?;
    let inst = resolve_instance(program, "register", name).map_err(one)?;
    let register = inst.name.clone();
    match (cmd, rest) {
        ("register_read", []) => Ok(Op::RegisterRead { register, shown: name.clone(), index: None }),
        ("register_read", [index]) => {
            Ok(Op::RegisterRead { register, shown: name.clone(), index: Some(parse_cell(inst, index).map_err(one)?) })
        }
        ("register_write", [index, value]) => {
            let width = inst.type_args.first().map_or(128, |t| t.width()).clamp(1, 128);
            let index = parse_cell(inst, index);
            let value = parse_fitting(value, width, &format!("register `{register}`"));
            match (index, value) {
                (Ok(index), Ok(value)) => Ok(Op::RegisterWrite { register, index, value }),
                (i, v) => Err(i.err().into_iter().chain(v.err()).collect()),
            }
        }
        ("register_reset", []) => Ok(Op::RegisterReset { register }),
        _ => Err(vec![usage_of(cmd)]),
    }
}

fn usage(form: &str) -> String {
    format!("usage: {form}")
}

/// `table_modify TABLE ACTION HANDLE [=>] PARAM...` (BMv2 accepts the
/// `=>` too); collects every problem of the line.
fn table_modify(program: &ir::Program, args: &[String]) -> Result<Op, Vec<String>> {
    let [table, action, handle, rest @ ..] = args else { return Err(vec![usage_of("table_modify")]) };
    let table = mutable_table(program, table).map_err(|e| vec![e])?;
    let t = program.table(table);
    if t.keys.is_empty() {
        return Err(vec![format!(
            "table `{}` has no key, so no entries to modify (change its default action with table_set_default)",
            t.name
        )]);
    }
    let mut errors = Vec::new();
    let action = resolve_action(program, table, action).map_err(|e| errors.push(e)).ok();
    let handle = parse_number(handle, u128::from(u32::MAX), "entry handle")
        .map(|h| EntryHandle(h as u32))
        .map_err(|e| errors.push(e))
        .ok();
    let params = match rest {
        [arrow, params @ ..] if arrow == "=>" => params,
        params => params,
    };
    let params = match action {
        Some(a) => parse_params(program, a, params, None).map_err(|mut e| errors.append(&mut e)).ok(),
        None => None,
    };
    match (action, handle, params) {
        (Some(action), Some(handle), Some(params)) if errors.is_empty() => {
            Ok(Op::TableModify { table, action, handle, params })
        }
        _ => Err(errors),
    }
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

    /// The state of a test, as a [`Target`].
    fn target<'a>(tables: &'a mut Tables, mcast: &'a mut McastGroups, externs: &'a mut Externs) -> Target<'a> {
        Target { tables, mcast, externs }
    }

    /// Parses and applies `text` to fresh state.
    fn run(text: &str) -> (ir::Program, Tables, McastGroups, Result<Vec<String>, CommandError>) {
        let p = testutil::lb_program();
        let mut tables = Tables::new(&p);
        let mut mcast = McastGroups::new();
        let cmds = parse_commands(text, "cmds.txt", &p).unwrap_or_else(|e| panic!("{e:?}"));
        let mut externs = Externs::bind(&p).unwrap();
        let r = apply_commands(&cmds, target(&mut tables, &mut mcast, &mut externs), Echo::Answers);
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
        let mut ex = Externs::bind(&p).unwrap();
        apply_commands(&ok, target(&mut tables, &mut mcast, &mut ex), Echo::Answers).unwrap();
        // Line 2 adds a new entry, line 3 repeats the first key: nothing of this file may stick.
        let text = "mc_mgrp_create 5\ntable_add vips set_vip 10.0.0.100 6 443 => 2\ntable_add vips set_vip 10.0.0.100 6 80 => 3\n";
        let cmds = parse_commands(text, "b.txt", &p).unwrap();
        let err = apply_commands(&cmds, target(&mut tables, &mut mcast, &mut ex), Echo::Answers).unwrap_err();
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
        assert!(
            es[0].starts_with("5: unknown command `foo` (known: table_add, table_modify, table_delete, "),
            "{es:?}"
        );
        assert!(es[0].ends_with(", register_write, register_reset)"), "{es:?}");
        assert_eq!(error("table_modfy routes 0 drop"), "unknown command `table_modfy` (did you mean `table_modify`?)");
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
            "table `MyIngress.fixed` has const entries: the control plane cannot add, modify, delete or clear entries";
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

/// The commands beyond adding and deleting: `table_modify`, the queries,
/// the multicast changes, counters and registers, and what each prints.
#[cfg(test)]
mod more_commands {
    use super::*;
    use crate::live::mem::tests::{frame_to, router_ir};
    use crate::switch::{Backend, Switch, SwitchOptions};
    use crate::tables::testutil;

    fn ip(a: u8, b: u8, c: u8, d: u8) -> u128 {
        u128::from(u32::from_be_bytes([a, b, c, d]))
    }

    /// Fresh lb-style state (no externs) with `text` applied, echoing like the socket.
    fn run(text: &str) -> (ir::Program, Tables, McastGroups, Result<Vec<String>, CommandError>) {
        let p = testutil::lb_program();
        let (mut tables, mut mcast, mut externs) = (Tables::new(&p), McastGroups::new(), Externs::bind(&p).unwrap());
        let cmds = parse_commands(text, "c.txt", &p).unwrap_or_else(|e| panic!("{e:?}"));
        let target = Target { tables: &mut tables, mcast: &mut mcast, externs: &mut externs };
        let r = apply_commands(&cmds, target, Echo::Bmv2);
        (p, tables, mcast, r)
    }

    /// The one parse error of `line`.
    fn error(line: &str) -> String {
        let es = parse_commands(line, "c.txt", &testutil::lb_program()).unwrap_err();
        assert_eq!(es.len(), 1, "{es:?}");
        es[0].message.clone()
    }

    #[test]
    fn modify_keeps_handle_key_priority_and_hits() {
        let (p, mut t, _, r) = run("table_add routes forward 10.0.0.0/8 => 00:00:00:00:00:01 1\n\
                                    table_add acl deny 10.0.0.0&&&255.0.0.0 0->1023 => 7\n\
                                    table_add acl allow 0&&&0 0->65535 => 9");
        r.unwrap();
        let (routes, acl) = (p.find_table("routes").unwrap(), p.find_table("acl").unwrap());
        assert!(t.lookup(routes, &[ip(10, 1, 1, 1)]).hit);
        assert!(t.lookup(routes, &[ip(10, 1, 1, 2)]).hit);
        assert_eq!(t.table(routes).entry_hits(EntryHandle(0)), 2);
        let mut m = McastGroups::new();
        let mut ex = Externs::bind(&p).unwrap();
        let text = "table_modify routes forward 0 => 00:00:00:00:00:02 2\ntable_modify acl allow 0\n";
        let cmds = parse_commands(text, "m.txt", &p).unwrap();
        let out = apply_commands(&cmds, Target { tables: &mut t, mcast: &mut m, externs: &mut ex }, Echo::Bmv2);
        assert_eq!(
            out.unwrap(),
            [
                "Modifying entry 0 for lpm match table MyIngress.routes",
                "Modifying entry 0 for range match table MyIngress.acl"
            ]
        );
        let fwd = p.find_action("MyIngress.forward").unwrap();
        let l = t.lookup(routes, &[ip(10, 9, 9, 9)]);
        assert_eq!((l.hit, l.action, l.params, l.entry), (true, fwd, &[2, 2][..], Some(EntryHandle(0))));
        // BMv2 keeps an entry's counters on modify.
        assert_eq!(t.table(routes).entry_hits(EntryHandle(0)), 3);
        // The acl entry kept its key and priority 7, so it still beats priority 9.
        let allow = p.find_action("MyIngress.allow").unwrap();
        let l = t.lookup(acl, &[ip(10, 0, 0, 1), 80]);
        assert_eq!((l.action, l.entry), (allow, Some(EntryHandle(0))));
        let dump = t.table(acl).dump_entry(EntryHandle(0)).unwrap();
        assert_eq!(
            dump[2..],
            [
                "* hdr.ipv4.src_addr   : TERNARY   0a000000 &&& ff000000",
                "* meta.dst_port       : RANGE     0000 -> 03ff",
                "Priority: 7",
                "Action entry: MyIngress.allow - "
            ]
        );
    }

    #[test]
    fn modify_refusals() {
        let entries =
            "table `MyIngress.fixed` has const entries: the control plane cannot add, modify, delete or clear entries";
        assert_eq!(error("table_modify fixed drop 0"), entries);
        assert_eq!(error("table_modify routes"), "usage: table_modify TABLE ACTION HANDLE [=>] PARAM...");
        assert_eq!(error("table_modify routes drop x"), "invalid entry handle `x`: expected a number");
        assert_eq!(
            error("table_modify routes forward 0 => 1"),
            "action `MyIngress.forward` takes 2 parameter(s) (dmac, port), got 1"
        );
        assert_eq!(
            error("table_modify routes set_vip 0 1"),
            "action `set_vip` is not an action of table `MyIngress.routes` (its actions: MyIngress.forward, MyIngress.drop, NoAction)"
        );
        // A bad handle is found when applying: nothing of the file is applied.
        let (p, t, _, r) =
            run("table_add routes drop 10.0.0.0/8 =>\ntable_modify routes drop 0\ntable_modify routes drop 3");
        assert_eq!(r.unwrap_err().to_string(), "c.txt:3: table `MyIngress.routes` has no entry with handle 3");
        assert!(t.table(p.find_table("routes").unwrap()).is_empty());
    }

    #[test]
    fn queries_answer_in_bmv2_words() {
        let text = "table_add vips set_vip 10.0.0.1 6 80 => 1\ntable_add vips set_vip 10.0.0.2 6 80 => 2\n\
                    table_num_entries vips\ntable_dump_entry vips 1\ntable_info routes\ntable_show_actions vips";
        let out = run(text).3.unwrap();
        assert_eq!(
            out,
            [
                "Adding entry to exact match table MyIngress.vips",
                "Entry has been added with handle 0",
                "Adding entry to exact match table MyIngress.vips",
                "Entry has been added with handle 1",
                "2",
                "Dumping entry 0x1",
                "Match key:",
                "* hdr.ipv4.dst_addr   : EXACT     0a000002",
                "* hdr.ipv4.protocol   : EXACT     06",
                "* meta.dst_port       : EXACT     0050",
                "Action entry: MyIngress.set_vip - 0002",
                "MyIngress.routes               [implementation=None, mk=hdr.ipv4.dst_addr(lpm, 32)]",
                &"*".repeat(80),
                "MyIngress.drop                 []",
                "MyIngress.forward              [dmac(48),\tport(9)]",
                "NoAction                       []",
                "MyIngress.set_vip              [svc(16)]",
                "NoAction                       []",
            ]
        );
        let r = run("table_dump_entry vips 5").3.unwrap_err();
        assert_eq!(r.message, "table `MyIngress.vips` has no entry with handle 5");
        let tables = run("show_tables").3.unwrap();
        assert_eq!(tables.len(), testutil::lb_program().tables.len());
        assert!(tables.windows(2).all(|w| w[0] <= w[1]), "sorted: {tables:?}");
        assert_eq!(error("show_tables x"), "usage: show_tables");
    }

    #[test]
    fn set_default_and_delete_acknowledge_like_bmv2() {
        let out =
            run("table_set_default routes forward 00:11:22:33:44:55 0x102\ntable_add routes drop 10.0.0.0/8 =>\n\
                       table_delete routes 0")
            .3
            .unwrap();
        assert_eq!(
            out,
            [
                "Setting default action of MyIngress.routes",
                "action:              MyIngress.forward",
                "runtime data:        00:11:22:33:44:55\t01:02",
                "Adding entry to lpm match table MyIngress.routes",
                "Entry has been added with handle 0",
                "Deleting entry 0 from MyIngress.routes",
            ]
        );
        // From a file only the answers are printed.
        let p = testutil::lb_program();
        let (mut t, mut m, mut ex) = (Tables::new(&p), McastGroups::new(), Externs::bind(&p).unwrap());
        let cmds = parse_commands("table_add routes drop 10.0.0.0/8 =>\ntable_num_entries routes", "f", &p).unwrap();
        let out = apply_commands(&cmds, Target { tables: &mut t, mcast: &mut m, externs: &mut ex }, Echo::Answers);
        assert_eq!(out.unwrap(), ["1"]);
    }

    #[test]
    fn multicast_groups_and_nodes_change_and_go() {
        let text = "mc_mgrp_create 1\nmc_node_create 0 1 2\nmc_node_create 5 3\nmc_node_associate 1 0\n\
                    mc_node_associate 1 1\nmc_node_update 0 4\nmc_node_dissociate 1 1\nmc_dump";
        let (_, _, m, out) = run(text);
        assert_eq!(m.ports(1), Some(&[4][..]));
        assert_eq!(
            out.unwrap(),
            [
                "Creating multicast group 1",
                "Creating node with rid 0 and with port map 110",
                "node was created with handle 0",
                "Creating node with rid 5 and with port map 1000",
                "node was created with handle 1",
                "Associating node 0 to multicast group 1",
                "Associating node 1 to multicast group 1",
                "Updating node 0 with port map 10000",
                "Dissociating node 1 from multicast group 1",
                "==========",
                "MC ENTRIES",
                "**********",
                "mgrp(1)",
                "  -> (L1h=0, rid=0) -> (ports=[4], lags=[])",
                "==========",
                "LAGS",
                "None for this PRE type",
                "==========",
            ]
        );
        // Destroying a node takes it out of its group and frees its handle.
        let (_, _, m, out) = run("mc_mgrp_create 2\nmc_node_create 0 1\nmc_node_create 0 2\nmc_node_associate 2 0\n\
                                  mc_node_associate 2 1\nmc_node_destroy 0\nmc_node_create 9 7");
        assert_eq!(out.unwrap().last().unwrap(), "node was created with handle 0");
        assert_eq!(m.ports(2), Some(&[2][..]));
        assert_eq!(m.node(0).map(|n| n.rid), Some(9));
        // Destroying a group frees its nodes for another group.
        let (_, _, m, out) = run("mc_mgrp_create 2\nmc_node_create 0 1\nmc_node_associate 2 0\nmc_mgrp_destroy 2\n\
                                  mc_mgrp_create 3\nmc_node_associate 3 0");
        out.unwrap();
        assert_eq!((m.ports(2), m.ports(3)), (None, Some(&[1][..])));
        let fails = |text: &str| run(text).3.unwrap_err().to_string();
        assert_eq!(
            fails("mc_mgrp_destroy 4"),
            "c.txt:1: multicast group 4 does not exist (create it with mc_mgrp_create)"
        );
        assert_eq!(
            fails("mc_mgrp_create 1\nmc_node_create 0 1\nmc_node_dissociate 1 0"),
            "c.txt:3: multicast node 0 is not associated with group 1"
        );
        assert_eq!(
            fails("mc_node_destroy 0"),
            "c.txt:1: multicast node 0 does not exist (node handles come from mc_node_create, from 0)"
        );
        assert_eq!(
            fails("mc_node_update 2 1"),
            "c.txt:1: multicast node 2 does not exist (node handles come from mc_node_create, from 0)"
        );
        assert_eq!(error("mc_node_update 0 1 1"), "port 1 is given twice");
        assert_eq!(error("mc_node_destroy"), "usage: mc_node_destroy NODE_HANDLE");
    }

    /// The router of the live tests (a `counter(4) per_port` and a
    /// `register<bit<32>>(4) last_len`), on `backend`.
    fn router(backend: Backend) -> Switch {
        Switch::new(router_ir(), SwitchOptions { backend, trace: false }).unwrap()
    }

    #[test]
    fn counters_and_registers_from_a_file() {
        let mut sw = router(Backend::Interp);
        let out = sw
            .apply_commands(
                "register_write last_len 2 0xabc\nregister_read last_len 2\nregister_read I.last_len\n\
                 counter_write per_port 3 5 500\ncounter_read per_port 3\ncounter_reset per_port\ncounter_read per_port 3\n\
                 register_reset last_len\nregister_read last_len",
                "x.txt",
            )
            .unwrap();
        assert_eq!(
            out,
            [
                "last_len[2]= 2748",
                "I.last_len= 0, 0, 2748, 0",
                "per_port[3] has been updated",
                "per_port[3]= (500 bytes, 5 packets)",
                "per_port[3]= (0 bytes, 0 packets)",
                "last_len= 0, 0, 0, 0",
            ]
        );
        let es = sw.apply_commands(
            "register_write last_len 4 1\nregister_write last_len 0 0x100000000\ncounter_read nope 0",
            "y.txt",
        );
        let es: Vec<String> = es.unwrap_err().iter().map(ToString::to_string).collect();
        assert_eq!(
            es,
            [
                "y.txt:1: index 4 is out of range: `I.last_len` has 4 cells (0 to 3)",
                "y.txt:2: `0x100000000` does not fit register `I.last_len` (bit<32>)",
                "y.txt:3: no counter named `nope` (counters: I.per_port)",
            ]
        );
    }

    #[test]
    fn a_failing_batch_puts_counters_and_registers_back() {
        let mut sw = router(Backend::Interp);
        sw.apply_commands("register_write last_len 1 7\ncounter_write per_port 0 1 60", "a.txt").unwrap();
        let bad = "register_write last_len 1 9\nregister_reset last_len\ncounter_reset per_port\ntable_delete routes 0";
        let e = sw.apply_commands(bad, "b.txt").unwrap_err();
        assert_eq!(e[0].to_string(), "b.txt:4: table `I.routes` has no entry with handle 0");
        assert_eq!(sw.externs().register("I.last_len").unwrap().get(1), Some(7));
        assert_eq!(sw.externs().counter("I.per_port").unwrap().read(0), Some((1, 60)));
    }

    /// One packet to `dst` through `sw`: the ports it leaves on.
    fn forward(sw: &mut Switch, dst: u32) -> Vec<u16> {
        let mut out = Vec::new();
        sw.process(0, &frame_to(dst), 1, &mut out);
        out.iter().map(|p| p.port).collect()
    }

    /// `table_modify` reaches the compiled code's table image: the same
    /// entry (same handle, its hits kept) now forwards elsewhere.
    #[test]
    fn table_modify_changes_forwarding_through_the_jit() {
        for backend in [Backend::Jit, Backend::Interp] {
            let mut sw = router(backend);
            sw.apply_commands("table_add routes fwd 10.0.0.0/8 => 1\ntable_add routes fwd 10.1.0.0/16 => 3", "r.txt")
                .unwrap();
            assert_eq!(forward(&mut sw, 0x0a02_0304), [1], "{backend:?}");
            assert_eq!(forward(&mut sw, 0x0a02_0305), [1], "{backend:?}");
            let out = sw.run_commands("table_modify routes fwd 0 2", "ctl", Echo::Bmv2).unwrap();
            assert_eq!(out, ["Modifying entry 0 for lpm match table I.routes"]);
            assert_eq!(forward(&mut sw, 0x0a02_0304), [2], "{backend:?}");
            assert_eq!(forward(&mut sw, 0x0a01_0001), [3], "{backend:?}: the other entry is untouched");
            let routes = sw.program().find_table("routes").unwrap();
            let t = sw.tables().table(routes);
            assert_eq!((t.len(), t.entry_hits(EntryHandle(0)), t.entry_hits(EntryHandle(1))), (2, 3, 1), "{backend:?}");
            sw.apply_commands("table_modify routes drop 0", "r.txt").unwrap();
            assert_eq!(forward(&mut sw, 0x0a02_0304), Vec::<u16>::new(), "{backend:?}");
            assert_eq!(sw.tables().table(routes).entry_hits(EntryHandle(0)), 4, "{backend:?}");
        }
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
            let (mut mcast, mut externs) = (McastGroups::new(), Externs::bind(&ir).unwrap());
            let target = Target { tables: &mut tables, mcast: &mut mcast, externs: &mut externs };
            apply_commands(&cmds, target, Echo::Answers).unwrap_or_else(|e| panic!("{e}"));
            checked += 1;
        }
        assert!(checked > 0 || !root.join("pcaps").exists());
    }
}
