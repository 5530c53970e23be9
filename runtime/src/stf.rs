//! p4c's STF ("simple test framework") files: packets to send, packets to
//! expect, and table entries, in one text file.
//!
//! ```text
//! # comment (anywhere on a line)
//! add ipv4_lpm hdr.ipv4.dst_addr:0x0a000000/8 set_nhop(nhop_ipv4:0x0a000001, port:1)
//! add acl 10 hdr.ipv4.src_addr:0x0a01**** deny()     # ternary, priority 10
//! setdefault ipv4_lpm drop()
//! packet 0 00112233 4455 ...                          # port, then hex (spaces allowed)
//! expect 1 0011**33 4455 ... $                        # * matches any nibble; $ = exact length
//! expect 2                                            # any number of packets on port 2
//! ```
//!
//! Semantics follow p4c's `bmv2stf.py`:
//! - Lines run in order: an `add` affects the packets after it.
//! - `add TABLE [PRIORITY] KEY:VALUE... ACTION(PARAM:VALUE, ...)`: keys by
//!   name (the key as written in the table, or its last dotted component),
//!   in any order; a key left out matches anything (ternary `0&&&0`, lpm
//!   `/0`, exact `0`). Values are decimal, `0x` hex or `0b` binary; in hex a
//!   `*` nibble is a wildcard (ternary: mask 0; lpm: the prefix ends at the
//!   first `*`); `V/LEN`, `V&&&MASK` and `LO->HI` are BMv2's own forms;
//!   dotted IPv4 and colon MAC addresses work too. An STF priority is
//!   *larger wins*, as in P4Runtime; it is handed to the control plane as
//!   `10000 - PRIORITY` because BMv2 (and p4lite) take the smallest number
//!   as the strongest, the translation p4c makes. A ternary/range entry
//!   without a priority gets the weakest, 0.
//! - `setdefault TABLE ACTION(PARAM:VALUE, ...)` sets the default action.
//! - `expect PORT HEX`: the next packet out of PORT must match: `*` is any
//!   nibble; the packet may be longer than the pattern unless it ends in
//!   `$`. `expect PORT` alone: any number of packets on PORT is fine.
//! - Every port is checked at the end: the packets out of it must match its
//!   expectations one for one, in order; a port with no `expect` must get
//!   no packets.
//! - `wait` is accepted and does nothing (the switch is synchronous); any
//!   other line is handed to the control plane as a BMv2 runtime-CLI
//!   command (`mc_mgrp_create 1`, `table_add ...`).
//!
//! Packet `k` (from 0) is sent at time `k` milliseconds, so time-dependent
//! externs see time advance.

use std::collections::BTreeMap;
use std::fmt;

use p4lite_compiler::ir::{self, MatchKind};

use crate::replay::{decode, Frame};
use crate::switch::{OutPacket, Switch};

/// An error in an STF file, shown as `file:line: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StfError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for StfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for StfError {}

/// An expected packet: one entry per nibble, `None` for a `*` wildcard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    pub nibbles: Vec<Option<u8>>,
    /// Ended in `$`: the packet must be exactly this long.
    pub exact_len: bool,
}

impl Pattern {
    /// Whether `data` matches: same nibbles where not wildcards, and no
    /// shorter (nor longer, with `$`).
    pub fn matches(&self, data: &[u8]) -> bool {
        let len = self.nibbles.len().div_ceil(2);
        if data.len() < len || (self.exact_len && data.len() != len) {
            return false;
        }
        self.nibbles.iter().enumerate().all(|(i, n)| n.is_none_or(|n| nibble(data, i) == n))
    }

    /// The pattern with its wildcards (and, without `$`, its missing tail)
    /// filled in from `actual`: the bytes to compare field by field.
    pub fn filled_from(&self, actual: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; self.nibbles.len().div_ceil(2)];
        for (i, n) in self.nibbles.iter().enumerate() {
            let v = n.unwrap_or_else(|| if i / 2 < actual.len() { nibble(actual, i) } else { 0 });
            bytes[i / 2] |= if i.is_multiple_of(2) { v << 4 } else { v };
        }
        if !self.exact_len && actual.len() > bytes.len() {
            bytes.extend_from_slice(&actual[bytes.len()..]);
        }
        bytes
    }
}

/// Nibble `i` (high nibble first) of `data`.
fn nibble(data: &[u8], i: usize) -> u8 {
    let b = data[i / 2];
    if i.is_multiple_of(2) {
        b >> 4
    } else {
        b & 0x0f
    }
}

/// One line of an STF file that does something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send `data` into `port`.
    Packet { port: u16, data: Vec<u8> },
    /// The next packet out of `port` must match (`None`: any number of packets).
    Expect { port: u16, pattern: Option<Pattern> },
    /// A control-plane command, as BMv2 runtime-CLI text.
    Command(String),
}

/// A parsed STF file.
#[derive(Clone, Debug)]
pub struct Stf {
    /// The file name, for messages.
    pub file: String,
    /// `(line number, step)` in file order.
    pub steps: Vec<(usize, Step)>,
}

/// Parses an STF file, translating `add` and `setdefault` for `program`'s
/// tables. Every error in the file is reported, not only the first.
pub fn parse(text: &str, file: &str, program: &ir::Program) -> Result<Stf, Vec<StfError>> {
    let mut steps = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let (word, rest) = split_word(content);
        let step = match word {
            "packet" => parse_packet(rest),
            "expect" => parse_expect(rest),
            "add" => translate_add(rest, program).map(Step::Command),
            "setdefault" => translate_setdefault(rest, program).map(Step::Command),
            "wait" => continue,
            _ => Ok(Step::Command(content.to_string())),
        };
        match step {
            Ok(s) => steps.push((line, s)),
            Err(message) => errors.push(StfError { file: file.to_string(), line, message }),
        }
    }
    if errors.is_empty() {
        Ok(Stf { file: file.to_string(), steps })
    } else {
        Err(errors)
    }
}

/// The first whitespace-separated word and the rest, trimmed.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

fn parse_port(word: &str) -> Result<u16, String> {
    crate::switch::parse_port(word)
}

fn parse_packet(rest: &str) -> Result<Step, String> {
    let (port, hex) = split_word(rest);
    let port = parse_port(port)?;
    let nibbles = parse_hex(hex, false)?;
    if nibbles.is_empty() {
        return Err("`packet` needs the packet's bytes in hex".into());
    }
    if nibbles.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({}): a packet is whole bytes", nibbles.len()));
    }
    let data = nibbles.chunks(2).map(|c| (c[0].unwrap_or(0) << 4) | c[1].unwrap_or(0)).collect();
    Ok(Step::Packet { port, data })
}

fn parse_expect(rest: &str) -> Result<Step, String> {
    let (port, hex) = split_word(rest);
    let port = parse_port(port)?;
    let compact: String = hex.split_whitespace().collect();
    if compact.is_empty() {
        return Ok(Step::Expect { port, pattern: None });
    }
    let (body, exact_len) = match compact.strip_suffix('$') {
        Some(b) => (b, true),
        None => (compact.as_str(), false),
    };
    let nibbles = parse_hex(body, true)?;
    Ok(Step::Expect { port, pattern: Some(Pattern { nibbles, exact_len }) })
}

/// Hex digits (whitespace ignored) as nibbles; `*` is a wildcard when allowed.
fn parse_hex(s: &str, wildcards: bool) -> Result<Vec<Option<u8>>, String> {
    let mut out = Vec::new();
    for c in s.chars().filter(|c| !c.is_whitespace()) {
        match c {
            '*' if wildcards => out.push(None),
            _ => match c.to_digit(16) {
                Some(d) => out.push(Some(d as u8)),
                None => return Err(format!("`{c}` is not a hex digit")),
            },
        }
    }
    Ok(out)
}

/// A table by exact qualified name or unique suffix, as p4c's STF runner finds them.
fn find_table(program: &ir::Program, name: &str) -> Result<ir::TableId, String> {
    program.find_table(name).ok_or_else(|| {
        let names: Vec<&str> = program.tables.iter().map(|t| t.name.as_str()).collect();
        format!("no table `{name}` (tables: {})", names.join(", "))
    })
}

/// An action of `table` by qualified name or unique last component.
fn find_action(program: &ir::Program, table: &ir::Table, name: &str) -> Result<ir::ActionId, String> {
    let of_table: Vec<ir::ActionId> = table.actions.clone();
    if let Some(a) = of_table.iter().find(|a| program.action(**a).name == name) {
        return Ok(*a);
    }
    let matching: Vec<ir::ActionId> =
        of_table.iter().copied().filter(|a| program.action(*a).name.rsplit('.').next() == Some(name)).collect();
    match matching.as_slice() {
        [a] => Ok(*a),
        _ => {
            let names: Vec<&str> = of_table.iter().map(|a| program.action(*a).name.as_str()).collect();
            Err(format!("table `{}` has no action `{name}` (actions: {})", table.name, names.join(", ")))
        }
    }
}

/// `ACTION(PARAM:VALUE, ...)` as the action's full name and its parameter
/// values in declaration order, formatted for the BMv2 CLI.
fn translate_call(program: &ir::Program, table: &ir::Table, call: &str) -> Result<(String, Vec<String>), String> {
    let call = call.trim();
    let (name, args) = match call.find('(') {
        Some(open) => {
            let close = call.rfind(')').filter(|c| *c > open).ok_or("missing `)` after the action's arguments")?;
            if !call[close + 1..].trim().is_empty() && !call[close + 1..].trim().starts_with('=') {
                return Err(format!("unexpected `{}` after the action", call[close + 1..].trim()));
            }
            (call[..open].trim(), &call[open + 1..close])
        }
        None => (call, ""),
    };
    let action = program.action(find_action(program, table, name)?);
    let params: Vec<(&str, u16)> = action
        .params
        .iter()
        .map(|s| {
            let slot = program.slot(*s);
            (slot.name.rsplit('.').next().unwrap_or(&slot.name), slot.ty.width())
        })
        .collect();
    let mut values: Vec<Option<String>> = vec![None; params.len()];
    for arg in args.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let (k, v) = arg.split_once(':').ok_or_else(|| format!("action argument `{arg}` is not NAME:VALUE"))?;
        let (k, v) = (k.trim(), v.trim());
        let i = params.iter().position(|(n, _)| *n == k).ok_or_else(|| {
            let names: Vec<&str> = params.iter().map(|(n, _)| *n).collect();
            format!("action `{}` has no parameter `{k}` (parameters: {})", action.name, names.join(", "))
        })?;
        let value = parse_number(v, params[i].1)?;
        values[i] = Some(format!("0x{value:x}"));
    }
    let mut out = Vec::new();
    for ((pname, _), v) in params.iter().zip(values) {
        out.push(v.ok_or_else(|| format!("action `{}` needs a value for `{pname}`", action.name))?);
    }
    Ok((action.name.clone(), out))
}

/// `add TABLE [PRIORITY] KEY:VALUE... ACTION(ARGS)` as a BMv2 `table_add`.
fn translate_add(rest: &str, program: &ir::Program) -> Result<String, String> {
    let (table_name, mut rest) = split_word(rest);
    if table_name.is_empty() {
        return Err("`add` needs a table".into());
    }
    let tid = find_table(program, table_name)?;
    let table = program.table(tid);
    let mut priority = None;
    let (first, after) = split_word(rest);
    if !first.is_empty() && first.chars().all(|c| c.is_ascii_digit()) {
        priority = Some(first.parse::<u32>().map_err(|_| format!("priority `{first}` is too large"))?);
        rest = after;
    }
    // Keys are the words before the one holding `(` (the action); the `()`
    // of a key named `hdr.h.isValid()` is not the action's.
    let open = rest.match_indices('(').map(|(i, _)| i).find(|&i| !rest[..i].ends_with("isValid"));
    let (key_part, call) = match open {
        Some(open) => {
            let start = rest[..open].rfind(char::is_whitespace).map_or(0, |i| i + 1);
            (&rest[..start], &rest[start..])
        }
        None => {
            // An action without parentheses is the last word.
            let start = rest.rfind(char::is_whitespace).map_or(0, |i| i + 1);
            (&rest[..start], &rest[start..])
        }
    };
    if call.trim().is_empty() {
        return Err("`add` needs an action, e.g. `drop()`".into());
    }
    let mut keys: Vec<Option<String>> = vec![None; table.keys.len()];
    for word in key_part.split_whitespace() {
        // A MAC value contains colons too: split at the first colon whose
        // left side names a key.
        let (k, v) = split_key(table, word)
            .or_else(|| word.split_once(':'))
            .ok_or_else(|| format!("table key `{word}` is not NAME:VALUE"))?;
        let i = key_index(table, k)?;
        keys[i] = Some(translate_key(&table.keys[i], v)?);
    }
    let keys: Vec<String> = keys
        .into_iter()
        .zip(&table.keys)
        .map(|(v, k)| {
            v.unwrap_or_else(|| match k.kind {
                MatchKind::Exact => "0".to_string(),
                MatchKind::Lpm => "0/0".to_string(),
                MatchKind::Ternary => "0&&&0".to_string(),
                MatchKind::Range => format!("0->0x{:x}", mask(k.width)),
            })
        })
        .collect();
    let (action, params) = translate_call(program, table, call)?;
    let mut cmd = format!("table_add {} {} {} => {}", table.name, action, keys.join(" "), params.join(" "));
    let needs_priority = table.keys.iter().any(|k| matches!(k.kind, MatchKind::Ternary | MatchKind::Range));
    if needs_priority {
        let p = priority.unwrap_or(0);
        if p > 10000 {
            return Err(format!("priority {p} is above 10000, the largest STF priority p4lite takes"));
        }
        cmd.push_str(&format!(" {}", 10000 - p));
    }
    Ok(cmd.trim_end().to_string())
}

/// Splits `NAME:VALUE` where VALUE may contain colons (a MAC address):
/// the longest prefix before a colon that names a key.
fn split_key<'a>(table: &ir::Table, word: &'a str) -> Option<(&'a str, &'a str)> {
    word.match_indices(':').map(|(i, _)| (&word[..i], &word[i + 1..])).find(|(k, _)| key_index(table, k).is_ok())
}

/// The key component named `name` (as written, or its last dotted part).
/// p4c's STF name of a validity key, `hdr.h.$valid$`, is `hdr.h.isValid()`.
fn key_index(table: &ir::Table, name: &str) -> Result<usize, String> {
    let valid;
    let name = match name.strip_suffix(".$valid$") {
        Some(h) => {
            valid = format!("{h}.isValid()");
            valid.as_str()
        }
        None => name,
    };
    if let Some(i) = table.keys.iter().position(|k| k.name == name) {
        return Ok(i);
    }
    let suffix: Vec<usize> =
        table.keys.iter().enumerate().filter(|(_, k)| k.name.ends_with(&format!(".{name}"))).map(|(i, _)| i).collect();
    match suffix.as_slice() {
        [i] => Ok(*i),
        _ => {
            let names: Vec<&str> = table.keys.iter().map(|k| k.name.as_str()).collect();
            Err(format!("table `{}` has no key `{name}` (keys: {})", table.name, names.join(", ")))
        }
    }
}

fn mask(width: u16) -> u128 {
    if width >= 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    }
}

/// One key value in STF notation as BMv2 CLI text for the key's match kind.
fn translate_key(key: &ir::TableKey, v: &str) -> Result<String, String> {
    let w = key.width;
    if let Some((lo, hi)) = v.split_once("->") {
        return Ok(format!("0x{:x}->0x{:x}", parse_number(lo, w)?, parse_number(hi, w)?));
    }
    if let Some((val, m)) = v.split_once("&&&") {
        return Ok(format!("0x{:x}&&&0x{:x}", parse_number(val, w)?, parse_number(m, w)?));
    }
    if let Some((val, len)) = v.split_once('/') {
        let len: u16 = len.trim().parse().map_err(|_| format!("prefix length `{len}` is not a number"))?;
        if len > w {
            return Err(format!("prefix length {len} is longer than the key's {w} bits"));
        }
        return Ok(format!("0x{:x}/{len}", parse_number(val, w)?));
    }
    let (value, care) = parse_masked(v, w)?;
    match key.kind {
        MatchKind::Exact | MatchKind::Range if care != mask(w) => {
            Err(format!("`*` wildcards need a ternary or lpm key; `{}` is {:?}", key.name, key.kind))
        }
        MatchKind::Exact => Ok(format!("0x{value:x}")),
        MatchKind::Range => Ok(format!("0x{value:x}->0x{value:x}")),
        MatchKind::Ternary => Ok(format!("0x{value:x}&&&0x{care:x}")),
        MatchKind::Lpm => {
            // The prefix is the leading cared-for bits; p4c counts the
            // digits written, which is the same for hex written in full.
            let len = (care << (128 - u32::from(w))).leading_ones() as u16;
            if care != mask(w) & !mask(w).checked_shr(u32::from(len)).unwrap_or(0) {
                return Err(format!("`*` in an lpm key must only end the value: `{v}`"));
            }
            Ok(format!("0x{value:x}/{len}"))
        }
    }
}

/// A number for a `width`-bit field: decimal, `0x` hex or `0b` binary
/// (no wildcards), dotted IPv4 or colon-separated MAC.
pub fn parse_number(s: &str, width: u16) -> Result<u128, String> {
    let (value, care) = parse_masked(s, width)?;
    if care != mask(width) {
        return Err(format!("`*` wildcards are not allowed in `{s}`"));
    }
    Ok(value)
}

/// A number that may have `*` wildcard digits (hex nibbles, binary bits):
/// `(value with wildcards as 0, mask of the digits that are not wildcards)`.
fn parse_masked(s: &str, width: u16) -> Result<(u128, u128), String> {
    let s = s.trim();
    let full = mask(width);
    let fits = |v: u128| -> Result<u128, String> {
        if v & !full != 0 {
            Err(format!("`{s}` does not fit in {width} bits"))
        } else {
            Ok(v)
        }
    };
    if s.split('.').count() == 4 && s.split('.').all(|p| p.parse::<u8>().is_ok()) {
        let v = s.split('.').fold(0u128, |acc, p| (acc << 8) | u128::from(p.parse::<u8>().unwrap_or(0)));
        return Ok((fits(v)?, full));
    }
    if s.split(':').count() == 6 && s.split(':').all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok()) {
        let v = s.split(':').fold(0u128, |acc, p| (acc << 8) | u128::from(u8::from_str_radix(p, 16).unwrap_or(0)));
        return Ok((fits(v)?, full));
    }
    let (digits, bits): (&str, u32) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 4)
    } else if let Some(b) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (b, 1)
    } else {
        let v: u128 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
        return Ok((fits(v)?, full));
    };
    let digits: Vec<char> = digits.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() {
        return Err(format!("`{s}` has no digits"));
    }
    let (mut value, mut care) = (0u128, 0u128);
    for c in &digits {
        let (d, m) = match c {
            '*' => (0, 0),
            _ => match c.to_digit(1 << bits) {
                Some(d) => (u128::from(d), (1u128 << bits) - 1),
                None => return Err(format!("`{c}` is not a digit of `{s}`")),
            },
        };
        if value >> (128 - bits) != 0 || care >> (128 - bits) != 0 {
            return Err(format!("`{s}` does not fit in {width} bits"));
        }
        value = (value << bits) | d;
        care = (care << bits) | m;
    }
    // Digits beyond those written are the high bits: cared for (zero).
    let written = digits.len() as u32 * bits;
    if written < 128 {
        care |= !0u128 << written;
    }
    Ok((fits(value)?, care & full))
}

/// `setdefault TABLE ACTION(ARGS)` as a BMv2 `table_set_default`.
fn translate_setdefault(rest: &str, program: &ir::Program) -> Result<String, String> {
    let (table_name, call) = split_word(rest);
    if table_name.is_empty() || call.is_empty() {
        return Err("`setdefault` needs a table and an action".into());
    }
    let table = program.table(find_table(program, table_name)?);
    let (action, params) = translate_call(program, table, call)?;
    Ok(format!("table_set_default {} {} {}", table.name, action, params.join(" ")).trim_end().to_string())
}

/// What running an STF file found.
#[derive(Debug, Default)]
pub struct StfOutcome {
    /// Packets sent.
    pub packets: u64,
    /// Each thing that went wrong, as a paragraph; empty when the test passed.
    pub failures: Vec<String>,
    /// The packets that came out, per port.
    pub received: BTreeMap<u16, Vec<Frame>>,
}

impl StfOutcome {
    /// True when every expectation held and every command applied.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs the steps of `stf` in order on `switch` and checks the expectations.
pub fn run(stf: &Stf, switch: &mut Switch) -> StfOutcome {
    let mut outcome = StfOutcome::default();
    // Per port: the expected patterns with their line numbers.
    let mut expected: BTreeMap<u16, Vec<(usize, Pattern)>> = BTreeMap::new();
    let mut any: Vec<u16> = Vec::new();
    let mut out: Vec<OutPacket> = Vec::new();
    for (line, step) in &stf.steps {
        match step {
            Step::Packet { port, data } => {
                out.clear();
                let ts = outcome.packets * 1_000_000;
                switch.process(*port, data, ts, &mut out);
                outcome.packets += 1;
                for p in &out {
                    outcome.received.entry(p.port).or_default().push(Frame { ts_ns: ts, data: p.data.clone() });
                }
            }
            Step::Expect { port, pattern: Some(p) } => expected.entry(*port).or_default().push((*line, p.clone())),
            Step::Expect { port, pattern: None } => any.push(*port),
            Step::Command(text) => {
                // Blank lines in front make the control plane's own
                // `file:line:` messages point at this line of the STF file.
                let padded = format!("{}{}\n", "\n".repeat(line - 1), text);
                if let Err(errors) = switch.apply_commands(&padded, &stf.file) {
                    for e in errors {
                        outcome.failures.push(format!("{e}\n  (from: {text})"));
                    }
                }
            }
        }
    }
    let mut ports: Vec<u16> = expected.keys().chain(outcome.received.keys()).copied().collect();
    ports.sort_unstable();
    ports.dedup();
    for port in ports {
        if any.contains(&port) {
            continue;
        }
        let exp = expected.get(&port).map_or(&[][..], Vec::as_slice);
        let got = outcome.received.get(&port).map_or(&[][..], Vec::as_slice);
        if let Some(failure) = compare_port(&stf.file, port, exp, got) {
            outcome.failures.push(failure);
        }
    }
    outcome
}

/// The first problem with one port's packets, described for a person.
fn compare_port(file: &str, port: u16, expected: &[(usize, Pattern)], got: &[Frame]) -> Option<String> {
    for (i, (line, pattern)) in expected.iter().enumerate() {
        let Some(frame) = got.get(i) else {
            return Some(format!(
                "port {port}: expected {} packets, got {}; the first missing one is expected at {file}:{line}",
                expected.len(),
                got.len()
            ));
        };
        if !pattern.matches(&frame.data) {
            let want = pattern.filled_from(&frame.data);
            let mut s = format!(
                "port {port}: packet {} differs from the expectation at {file}:{line} ({} bytes expected{}, {} received)\n",
                i + 1,
                pattern.nibbles.len().div_ceil(2),
                if pattern.exact_len { " exactly" } else { " at least" },
                frame.data.len()
            );
            s.push_str(&decode::diff(&want, &frame.data).unwrap_or_else(|| "  (lengths differ)\n".into()));
            return Some(s);
        }
    }
    if got.len() > expected.len() {
        let extra = &got[expected.len()];
        let mut s = format!(
            "port {port}: expected {} packets, got {}; the first unexpected one (packet {}):\n",
            expected.len(),
            got.len(),
            expected.len() + 1
        );
        for f in decode::decode(&extra.data) {
            s.push_str(&format!("  {:24}  {}\n", f.name, f.value));
        }
        return Some(s);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_with_wildcards_and_end_marker() {
        let Step::Expect { pattern: Some(p), .. } = parse_expect("1 0a0B ** 0c").unwrap() else { panic!() };
        assert!(p.matches(&[0x0a, 0x0b, 0xff, 0x0c]));
        assert!(p.matches(&[0x0a, 0x0b, 0x00, 0x0c, 0x99]), "longer is fine without $");
        assert!(!p.matches(&[0x0a, 0x0b, 0x00]), "shorter is not");
        assert!(!p.matches(&[0x0a, 0x0c, 0x00, 0x0c]));
        let Step::Expect { pattern: Some(p), .. } = parse_expect("1 0a0b $").unwrap() else { panic!() };
        assert!(p.matches(&[0x0a, 0x0b]));
        assert!(!p.matches(&[0x0a, 0x0b, 0]));
        assert_eq!(parse_expect("3").unwrap(), Step::Expect { port: 3, pattern: None });
        assert!(parse_expect("1 0g").is_err());
    }

    #[test]
    fn filled_pattern_takes_wildcards_and_tail_from_actual() {
        let Step::Expect { pattern: Some(p), .. } = parse_expect("0 0a*b").unwrap() else { panic!() };
        assert_eq!(p.filled_from(&[0x0a, 0x7b, 0x01]), vec![0x0a, 0x7b, 0x01]);
        assert_eq!(p.filled_from(&[0x0a, 0x7c]), vec![0x0a, 0x7b]);
    }

    #[test]
    fn packets_are_whole_bytes() {
        assert_eq!(parse_packet("2 00 11 22").unwrap(), Step::Packet { port: 2, data: vec![0, 0x11, 0x22] });
        assert!(parse_packet("2 001").is_err());
        assert!(parse_packet("2 0*").is_err());
        assert!(parse_packet("x 00").is_err());
    }

    #[test]
    fn numbers_and_wildcards() {
        assert_eq!(parse_number("0x0a000001", 32), Ok(0x0a000001));
        assert_eq!(parse_number("10.0.0.1", 32), Ok(0x0a000001));
        assert_eq!(parse_number("00:11:22:33:44:55", 48), Ok(0x001122334455));
        assert_eq!(parse_number("0b101", 3), Ok(5));
        assert_eq!(parse_number("511", 9), Ok(511));
        assert!(parse_number("512", 9).is_err());
        assert!(parse_number("0x1ff", 8).is_err());
        assert_eq!(parse_masked("0x0a**", 16), Ok((0x0a00, 0xff00)));
        // Fewer digits than the key: the missing high digits are zeros to match.
        assert_eq!(parse_masked("0x*1", 16), Ok((0x01, 0xff0f)));
    }

    /// The router example, compiled.
    fn router() -> ir::Program {
        let sources = p4lite_compiler::span::Sources::new(
            "ipv4_router.p4lite",
            include_str!("../../programs/ipv4_router.p4lite"),
        );
        p4lite_compiler::compile(&sources).ir.expect("the router example compiles")
    }

    #[test]
    fn add_and_setdefault_become_bmv2_commands() {
        let text = "# routes\n\
            add ipv4_lpm hdr.ipv4.dst_addr:0x0a01**** set_nhop(port:2, nhop_ipv4:10.1.0.1) = 5\n\
            add forward nhop_ipv4:10.1.0.1 RouterIngress.set_dmac(dmac:00:00:00:00:02:01)\n\
            setdefault ipv4_lpm drop()\n\
            mc_mgrp_create 1\n\
            wait\n";
        let stf = parse(text, "t.stf", &router()).unwrap();
        let cmds: Vec<(usize, &Step)> = stf.steps.iter().map(|(l, s)| (*l, s)).collect();
        assert_eq!(
            cmds,
            [
                (
                    2,
                    &Step::Command(
                        "table_add RouterIngress.ipv4_lpm RouterIngress.set_nhop 0xa010000/16 => 0xa010001 0x2".into()
                    )
                ),
                (3, &Step::Command("table_add RouterIngress.forward RouterIngress.set_dmac 0xa010001 => 0x201".into())),
                (4, &Step::Command("table_set_default RouterIngress.ipv4_lpm RouterIngress.drop".into())),
                (5, &Step::Command("mc_mgrp_create 1".into())),
            ]
        );
    }

    /// A validity key is named as p4lite lists it (`hdr.v.isValid()`, whose
    /// `()` is not the action's) or as p4c's STF writes it (`hdr.v.$valid$`).
    #[test]
    fn validity_keys_take_both_names() {
        let src = "
            header v_t { bit<8> x; }
            struct hs { v_t v; }
            struct ms { }
            parser P(packet_in pkt, out hs hdr, inout ms meta, inout standard_metadata_t std) {
                state start { pkt.extract(hdr.v); transition accept; }
            }
            control C(inout hs hdr, inout ms meta, inout standard_metadata_t std) {
                action fwd(bit<9> port) { std.egress_spec = port; }
                table t { key = { std.ingress_port : exact; hdr.v.isValid() : exact; } actions = { fwd; } }
                apply { t.apply(); }
            }
            control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.v); } }
            Pipeline(P(), C(), D()) main;
        ";
        let sources = p4lite_compiler::span::Sources::new("v.p4lite", src);
        let program = p4lite_compiler::compile(&sources).ir.expect("compiles");
        let text = "add t std.ingress_port:1 hdr.v.isValid():1 fwd(port:2)\n\
                    add t std.ingress_port:3 hdr.v.$valid$:0 fwd(port:4)\n";
        let stf = parse(text, "v.stf", &program).unwrap_or_else(|e| panic!("{e:?}"));
        let cmds: Vec<&Step> = stf.steps.iter().map(|(_, s)| s).collect();
        assert_eq!(
            cmds,
            [
                &Step::Command("table_add C.t C.fwd 0x1 0x1 => 0x2".into()),
                &Step::Command("table_add C.t C.fwd 0x3 0x0 => 0x4".into()),
            ]
        );
    }

    #[test]
    fn every_bad_line_is_reported_with_its_line() {
        let text = "add nosuch x()\n\
            add ipv4_lpm dst_addr:0x0a000000/8 set_nhop(port:1)\n\
            add ipv4_lpm bogus:1 drop()\n\
            packet 0 0\n\
            add forward nhop_ipv4:0x1ffffffff set_dmac(dmac:1)\n\
            setdefault forward nosuch()\n";
        let errors = parse(text, "t.stf", &router()).unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 6, "{shown:#?}");
        for (i, e) in shown.iter().enumerate() {
            assert!(e.starts_with(&format!("t.stf:{}: ", i + 1)), "{e}");
        }
        assert!(shown[1].contains("needs a value for `nhop_ipv4`"), "{}", shown[1]);
        assert!(shown[2].contains("no key `bogus`"), "{}", shown[2]);
        assert!(shown[4].contains("does not fit in 32 bits"), "{}", shown[4]);
    }

    fn key(kind: MatchKind, width: u16) -> ir::TableKey {
        ir::TableKey { expr: ir::ExprId(0), kind, name: "hdr.ipv4.dst_addr".into(), width }
    }

    #[test]
    fn keys_translate_per_match_kind() {
        assert_eq!(translate_key(&key(MatchKind::Lpm, 32), "0x0a01****").unwrap(), "0xa010000/16");
        assert_eq!(translate_key(&key(MatchKind::Lpm, 32), "0x0a000000/8").unwrap(), "0xa000000/8");
        assert_eq!(translate_key(&key(MatchKind::Lpm, 32), "0x0a000001").unwrap(), "0xa000001/32");
        assert!(translate_key(&key(MatchKind::Lpm, 32), "0x0a**0001").is_err());
        assert_eq!(translate_key(&key(MatchKind::Ternary, 16), "0x**01").unwrap(), "0x1&&&0xff");
        assert_eq!(translate_key(&key(MatchKind::Ternary, 16), "0x1&&&0xf").unwrap(), "0x1&&&0xf");
        assert_eq!(translate_key(&key(MatchKind::Exact, 9), "3").unwrap(), "0x3");
        assert!(translate_key(&key(MatchKind::Exact, 9), "0x*").is_err());
        assert_eq!(translate_key(&key(MatchKind::Range, 16), "10->20").unwrap(), "0xa->0x14");
    }
}
