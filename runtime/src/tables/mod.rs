//! Table state: the entries of every match-action table, the indexes that
//! find the matching entry for a packet's key, default actions, counters,
//! and the multicast groups the control plane configures.
//!
//! # Match semantics
//! A table's key is a tuple of components, each with a match kind and a
//! width. An entry gives one [`KeyMatch`] per component; the control plane's
//! and the program's entries are normalised per kind when added:
//!
//! | kind | stored as | matches key `k` when |
//! | --- | --- | --- |
//! | `exact` | `Exact(v)` | `k == v` |
//! | `lpm` | `Prefix { value, len }` (bits below the prefix cleared) | the top `len` bits of `k` equal `value`'s |
//! | `ternary` | `Mask { value, mask }` (`value & !mask` cleared) | `k & mask == value` |
//! | `range` | `Range { lo, hi }` | `lo <= k <= hi` |
//!
//! Values must fit the component's width (they are never truncated);
//! value bits outside an lpm prefix or a ternary mask are cleared silently,
//! as BMv2 does.
//!
//! Which entry wins when several match depends on the table's most general
//! match kind:
//! - **exact only**: at most one entry can match (equal keys are duplicates).
//!   Index: one hash map (`exact`); a lookup is one probe.
//! - **one lpm key, the others exact**: the longest prefix wins; two entries
//!   with the same prefix length and values are duplicates. Index: one hash
//!   map per prefix length, probed longest first (`lpm`).
//! - **any ternary or range key**: every entry has a priority (the control
//!   plane must give one; the program's entries use their `@priority` or,
//!   without one, their position in the source, so the first written wins).
//!   The numerically smallest priority wins; among equal priorities the
//!   earliest inserted entry wins (BMv2's convention). Entries with the same
//!   key and the same priority are duplicates. Index: tuple space search,
//!   groups by mask pattern probed in priority order (`ternary`).
//! - **more than one lpm key** (the checker rejects this; handled anyway):
//!   ranked like a ternary table with the number of bits left unmatched by
//!   the prefixes as the priority, so longer prefixes win.
//! - **no key**: every lookup misses and runs the default action.
//!
//! A miss runs the default action with its parameters. Every lookup counts
//! a hit or a miss for the table, and a hit for the entry that matched.
//!
//! # Handles and capacity
//! An entry's [`EntryHandle`] is a small integer that stays the same while
//! the entry exists. As in BMv2, a new entry gets the smallest free handle,
//! so the handle of a deleted entry is given to the next one added;
//! `table_clear` frees all of them. The program's own entries are added
//! first, in source order, so they get handles `0..n`. A table holds at most
//! `size` entries; adding past that fails with [`TableError::Full`]. The
//! program's entries are always installed, even beyond `size` (the checker
//! owns that check).
//!
//! # Performance contract
//! [`Tables::lookup`] is on the per-packet path: it never allocates, hashes
//! with FxHash over borrowed key values (or walks a trie for IPv4-style
//! lpm keys), and touches the index, one cache line of the matching entry
//! ([`Entry`] keeps its action and up to two parameters in its first 64
//! bytes) and the table's counters (one array of cells: table hits and
//! misses, then per-entry hits). Control-plane operations may allocate
//! freely.
//!
//! # Images for compiled code
//! `TableState::image` describes a table to compiled code (the abi's
//! `TableImage`): its exact or trie index as it is, or for other keys that
//! pack into 64 bits an index of mask groups built from the entries, plus
//! result rows and the counters. The switch rebuilds the images whenever
//! [`Tables::generation`] changes, which every mutable access but lookups
//! does.

mod exact;
mod keymap;
mod lpm;
mod ternary;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use p4lite_compiler::abi::{self, ExactSlot, MaskGroup, SnapshotEntry, TableImage, TableSnapshot};
use p4lite_compiler::ir::{self, ActionCall, ActionId, KeyMatch, MatchKind, TableId};

use exact::{width_mask, ExactIndex};
use lpm::{prefix_len, prefix_mask, LpmIndex};
use ternary::TernaryIndex;

/// The handle of a table entry (BMv2-style): returned when the entry is
/// added, used to delete it, shown by `table_dump` and in traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryHandle(pub u32);

impl fmt::Display for EntryHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The result of a table lookup: what the pipeline runs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup<'a> {
    /// An entry matched.
    pub hit: bool,
    /// The entry's action, or the default action on a miss.
    pub action: ActionId,
    /// The action's parameter values.
    pub params: &'a [u128],
    /// The entry that matched.
    pub entry: Option<EntryHandle>,
}

/// One key component of a table, as the control plane sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    /// The key as written in the program (`hdr.ipv4.dst_addr`).
    pub name: String,
    pub kind: MatchKind,
    pub width: u16,
}

/// An action's name and parameters, for checks and dumps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionInfo {
    /// Qualified name (`MyIngress.forward`).
    pub name: String,
    /// `(name, width)` per parameter, in order.
    pub params: Vec<(String, u16)>,
}

impl ActionInfo {
    /// Name and parameter widths of every action of `program`, by [`ActionId`].
    pub fn all(program: &ir::Program) -> Vec<ActionInfo> {
        (0..program.actions.len()).map(|i| ActionInfo::of(program, ActionId(i as u32))).collect()
    }

    /// Name and parameter widths of one action.
    pub fn of(program: &ir::Program, action: ActionId) -> ActionInfo {
        let a = program.action(action);
        let params = a
            .params
            .iter()
            .map(|&s| {
                let slot = program.slot(s);
                // `MyIngress.forward.port` (the checker may add `#2` to make slot names unique).
                let short = slot.name.rsplit('.').next().unwrap_or(&slot.name);
                let short = short.split('#').next().unwrap_or(short);
                (short.to_string(), slot.ty.width())
            })
            .collect();
        ActionInfo { name: a.name.clone(), params }
    }
}

/// An installed entry.
///
/// Laid out so that a hit touches one cache line: the fields a lookup
/// reads (the `Option` niche in `priority`, the action and a copy of up to
/// `INLINE_PARAMS` parameters) are in the first 64 bytes, and entries
/// are 64-byte aligned. Its hit counter is in the table's `counts`
/// ([`TableState::entry_hits`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Entry {
    /// The first [`INLINE_PARAMS`] parameters, zero-padded (what lookups return).
    inline: [u128; INLINE_PARAMS],
    /// The action a hit runs.
    pub action: ActionId,
    /// The number of parameters.
    n_params: u32,
    /// The control plane's (or the program's) priority, in tables that rank by priority.
    pub priority: Option<u32>,
    /// Insertion order, the tie-breaker among equal priorities.
    seq: u64,
    /// One normalised match per key component (see the module docs).
    pub keys: Box<[KeyMatch]>,
    /// The action's parameter values (all of them; lookups read the inline copy when it holds them).
    pub params: Box<[u128]>,
}

/// Actions with at most this many parameters return them from the entry's first cache line.
const INLINE_PARAMS: usize = 2;

impl Entry {
    fn new(keys: Box<[KeyMatch]>, action: ActionId, params: &[u128], priority: Option<u32>, seq: u64) -> Entry {
        let mut inline = [0; INLINE_PARAMS];
        if params.len() <= INLINE_PARAMS {
            inline[..params.len()].copy_from_slice(params);
        }
        Entry { inline, action, n_params: params.len() as u32, priority, seq, keys, params: params.into() }
    }

    /// The parameters, from the inline copy when they fit it.
    #[inline(always)]
    fn hot_params(&self) -> &[u128] {
        match self.inline.get(..self.n_params as usize) {
            Some(p) => p,
            None => &self.params,
        }
    }
}

/// How a table orders entries that match the same key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranking {
    /// Exact tables (no overlap) and single-lpm tables (longest prefix).
    Structural,
    /// Ternary/range tables: every entry has a priority, smallest wins.
    Priority,
    /// Several lpm keys: fewer unmatched prefix bits win.
    PrefixBits,
}

/// Why a table operation failed. Displays as a complete sentence for the
/// control plane's error messages.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("table full: `{table}` already holds {size} entries (its size)")]
    Full { table: String, size: u32 },
    #[error("duplicate entry in table `{table}`: entry {handle} has the same match key")]
    Duplicate { table: String, handle: EntryHandle },
    #[error("table `{table}` has no entry with handle {handle}")]
    NoEntry { table: String, handle: EntryHandle },
    #[error("table `{table}` has const entries: the control plane cannot add, modify, delete or clear entries")]
    ConstEntries { table: String },
    #[error("table `{table}` has a const default action: the control plane cannot change it")]
    ConstDefault { table: String },
    #[error("table `{table}` has no key: it only runs its default action (set it with table_set_default)")]
    NoKey { table: String },
    #[error("table `{table}` has {expected} key field(s), got {got}")]
    KeyCount { table: String, expected: usize, got: usize },
    #[error("key field `{key}` of table `{table}`: {message}")]
    BadKey { table: String, key: String, message: String },
    #[error("action `{action}` is not an action of table `{table}`")]
    ActionNotAllowed { table: String, action: String },
    #[error("action `{action}` takes {expected} parameter(s), got {got}")]
    ParamCount { action: String, expected: usize, got: usize },
    #[error("value {value:#x} does not fit parameter `{param}` (bit<{width}>) of action `{action}`")]
    ParamTooWide { action: String, param: String, width: u16, value: u128 },
    #[error("table `{table}` has ternary or range keys: entries need a priority")]
    PriorityRequired { table: String },
    #[error("table `{table}` has no ternary or range key: entries take no priority")]
    PriorityNotAllowed { table: String },
}

/// A const entry of the program that its table refuses
/// ([`Tables::refused_entries`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedEntry {
    /// The table's index in the program's tables.
    pub table: usize,
    /// The entry's index in the table's const entries (in source order; a
    /// [`TableError::Duplicate`]'s handle is the first entry's index).
    pub entry: usize,
    /// Why.
    pub error: TableError,
}

/// The index a table uses, chosen by its most general match kind.
///
/// `repr(u8)`: an explicit tag byte, so the per-packet "is it lpm, is it
/// exact" tests are a byte compare each instead of decoding a niche
/// stored inside one variant's fields.
#[derive(Clone, Debug)]
#[repr(u8)]
enum Index {
    Keyless,
    Exact(ExactIndex),
    Lpm(LpmIndex),
    Ternary(TernaryIndex),
}

/// The runtime state of one table: entries, index, default action, counters.
#[derive(Clone, Debug)]
pub struct TableState {
    name: String,
    keys: Box<[KeySpec]>,
    /// The actions entries may use.
    actions: Box<[ActionId]>,
    /// Every action of the program, by id (shared by all tables).
    action_info: Arc<[ActionInfo]>,
    default_action: ActionId,
    default_params: Box<[u128]>,
    /// The program's default action, for `table_reset_default`.
    initial_default: ActionCall,
    default_const: bool,
    entries_const: bool,
    size: u32,
    ranking: Ranking,
    /// Indices of range components (checked after the ternary index's probe).
    range_keys: Box<[usize]>,
    index: Index,
    /// Indexed by handle; `None` for free handles.
    entries: Vec<Option<Entry>>,
    /// Free handles below `entries.len()`.
    free: BTreeSet<u32>,
    live: usize,
    next_seq: u64,
    /// `[0]` hits, `[1]` misses, `[2 + h]` the hits of entry `h`: the
    /// layout of the abi's `TableImage::counts`, which compiled code
    /// increments through a raw pointer (hence cells: the runtime only ever
    /// reads and writes them through shared references).
    counts: Vec<Cell<u64>>,
}

impl TableState {
    /// An empty table (no entries; the program's default action).
    pub fn new(table: &ir::Table, action_info: Arc<[ActionInfo]>) -> TableState {
        let keys: Box<[KeySpec]> =
            table.keys.iter().map(|k| KeySpec { name: k.name.clone(), kind: k.kind, width: k.width }).collect();
        let count = |kind| keys.iter().filter(|k| k.kind == kind).count();
        let ranking = if count(MatchKind::Ternary) + count(MatchKind::Range) > 0 {
            Ranking::Priority
        } else if count(MatchKind::Lpm) > 1 {
            Ranking::PrefixBits
        } else {
            Ranking::Structural
        };
        let range_keys = keys.iter().enumerate().filter(|(_, k)| k.kind == MatchKind::Range).map(|(i, _)| i).collect();
        let mut t = TableState {
            name: table.name.clone(),
            keys,
            actions: table.actions.clone().into(),
            action_info,
            default_action: table.default_action.action,
            default_params: table.default_action.args.clone().into(),
            initial_default: table.default_action.clone(),
            default_const: table.default_const,
            entries_const: table.entries_const,
            size: table.size,
            ranking,
            range_keys,
            index: Index::Keyless,
            entries: Vec::new(),
            free: BTreeSet::new(),
            live: 0,
            next_seq: 0,
            counts: vec![Cell::new(0), Cell::new(0)],
        };
        t.index = t.empty_index();
        t
    }

    fn empty_index(&self) -> Index {
        let widths: Vec<u16> = self.keys.iter().map(|k| k.width).collect();
        if self.keys.is_empty() {
            return Index::Keyless;
        }
        match self.ranking {
            Ranking::Priority | Ranking::PrefixBits => Index::Ternary(TernaryIndex::new(&widths)),
            Ranking::Structural => match self.keys.iter().position(|k| k.kind == MatchKind::Lpm) {
                Some(lpm) => Index::Lpm(LpmIndex::new(lpm, &widths)),
                None => Index::Exact(ExactIndex::new(&widths)),
            },
        }
    }

    /// Looks up `keys` (one value per key component, in key order), counts
    /// the hit or miss, and returns the action to run. Never allocates.
    ///
    /// Always inlined: returned through memory, the [`Lookup`] costs more
    /// than the lookup itself once its fields are read back.
    #[inline(always)]
    pub fn lookup(&mut self, keys: &[u128]) -> Lookup<'_> {
        // Exact and lpm lookups are inlined here, the others are calls.
        // Two tests and a default, not a four-way `match`: that compiles to
        // a jump table, whose indirect branch mispredicts when consecutive
        // lookups go to tables of different kinds.
        let found = if let Index::Lpm(x) = &self.index {
            x.lookup(keys)
        } else if let Index::Exact(x) = &self.index {
            x.lookup(keys)
        } else {
            self.lookup_other(keys)
        };
        self.counted(found)
    }

    /// [`TableState::lookup`] of a key of one component, passed as a `u64`
    /// (`abi::TABLE_LOOKUP`'s tables): the same result and counts, without
    /// going through a slice of `u128`s for exact and IPv4-style lpm
    /// indexes.
    #[inline(always)]
    pub fn lookup_word(&mut self, key: u64) -> Lookup<'_> {
        let found = if let Index::Lpm(x) = &self.index {
            x.lookup_word(key)
        } else if let Index::Exact(x) = &self.index {
            x.lookup_word(key)
        } else {
            self.lookup_other(&[u128::from(key)])
        };
        self.counted(found)
    }

    /// The result of a lookup that found entry `found` (or none), counted
    /// as a hit or a miss.
    #[inline(always)]
    fn counted(&mut self, found: Option<u32>) -> Lookup<'_> {
        if let Some(h) = found {
            if let (Some(Some(e)), Some(n)) = (self.entries.get(h as usize), self.counts.get(2 + h as usize)) {
                bump(&self.counts[0]);
                bump(n);
                return Lookup { hit: true, action: e.action, params: e.hot_params(), entry: Some(EntryHandle(h)) };
            }
        }
        bump(&self.counts[1]);
        Lookup { hit: false, action: self.default_action, params: &self.default_params, entry: None }
    }

    /// [`TableState::lookup`] in ternary/range and keyless tables.
    #[inline(never)]
    fn lookup_other(&self, keys: &[u128]) -> Option<u32> {
        match &self.index {
            Index::Ternary(x) => {
                let (entries, ranges) = (&self.entries, &self.range_keys);
                x.lookup(keys, |h| ranges_match(entries, ranges, h, keys))
            }
            Index::Keyless => None,
            Index::Exact(x) => x.lookup(keys),
            Index::Lpm(x) => x.lookup(keys),
        }
    }

    /// Adds an entry from the control plane: checks it against the table
    /// (const entries, key count and kinds, widths, action, parameters,
    /// priority, capacity, duplicates) and returns its handle.
    pub fn add_entry(
        &mut self,
        keys: &[KeyMatch],
        action: ActionId,
        params: &[u128],
        priority: Option<u32>,
    ) -> Result<EntryHandle, TableError> {
        if self.entries_const {
            return Err(TableError::ConstEntries { table: self.name.clone() });
        }
        if self.live >= self.size as usize {
            return Err(TableError::Full { table: self.name.clone(), size: self.size });
        }
        self.insert(keys, action, params, priority)
    }

    /// Adds an entry without the const and capacity checks (the program's entries).
    fn insert(
        &mut self,
        keys: &[KeyMatch],
        action: ActionId,
        params: &[u128],
        priority: Option<u32>,
    ) -> Result<EntryHandle, TableError> {
        if self.keys.is_empty() {
            return Err(TableError::NoKey { table: self.name.clone() });
        }
        if keys.len() != self.keys.len() {
            return Err(TableError::KeyCount { table: self.name.clone(), expected: self.keys.len(), got: keys.len() });
        }
        let keys = keys
            .iter()
            .zip(self.keys.iter())
            .map(|(&m, k)| {
                normalize(k.kind, k.width, m).map_err(|message| TableError::BadKey {
                    table: self.name.clone(),
                    key: k.name.clone(),
                    message,
                })
            })
            .collect::<Result<Box<[KeyMatch]>, _>>()?;
        if !self.actions.contains(&action) {
            return Err(TableError::ActionNotAllowed { table: self.name.clone(), action: self.action_name(action) });
        }
        self.check_params(action, params)?;
        match (self.ranking, priority) {
            (Ranking::Priority, None) => return Err(TableError::PriorityRequired { table: self.name.clone() }),
            (Ranking::Structural | Ranking::PrefixBits, Some(_)) => {
                return Err(TableError::PriorityNotAllowed { table: self.name.clone() })
            }
            _ => {}
        }

        let handle = self.free.first().copied().unwrap_or(self.entries.len() as u32);
        let seq = self.next_seq;
        let values: Vec<u128> = keys.iter().map(|&m| match_value(m)).collect();
        match &mut self.index {
            Index::Keyless => return Err(TableError::NoKey { table: self.name.clone() }),
            Index::Exact(x) => x.insert(&values, handle),
            Index::Lpm(x) => x.insert(&values, lpm_len(&keys), handle),
            Index::Ternary(x) => {
                let masks = self.keys.iter().zip(keys.iter()).map(|(k, &m)| match_mask(m, k.width)).collect::<Vec<_>>();
                let rank = match priority {
                    Some(p) => (p, seq),
                    None => (unmatched_prefix_bits(&self.keys, &keys), seq),
                };
                let dup = x.bucket(&masks, &values).iter().find(|&&((p, _), h)| {
                    p == rank.0 && self.entries.get(h as usize).and_then(Option::as_ref).is_some_and(|e| e.keys == keys)
                });
                match dup {
                    Some(&(_, h)) => Err(h),
                    None => {
                        x.insert(&masks, &values, rank, handle);
                        Ok(())
                    }
                }
            }
        }
        .map_err(|h| TableError::Duplicate { table: self.name.clone(), handle: EntryHandle(h) })?;

        let entry = Entry::new(keys, action, params, priority, seq);
        self.counts.resize_with(2 + self.entries.len().max(handle as usize + 1), || Cell::new(0));
        self.counts[2 + handle as usize].set(0);
        if handle as usize == self.entries.len() {
            self.entries.push(Some(entry));
        } else {
            self.free.remove(&handle);
            self.entries[handle as usize] = Some(entry);
        }
        self.next_seq += 1;
        self.live += 1;
        Ok(EntryHandle(handle))
    }

    /// Changes the action and parameters of entry `handle` (BMv2's
    /// `table_modify`): its match key, priority, place among equal
    /// priorities, handle and hit counter stay as they are (BMv2 keeps an
    /// entry's direct counters on modify too; only adding resets them).
    pub fn modify_entry(&mut self, handle: EntryHandle, action: ActionId, params: &[u128]) -> Result<(), TableError> {
        if self.entries_const {
            return Err(TableError::ConstEntries { table: self.name.clone() });
        }
        if !self.actions.contains(&action) {
            return Err(TableError::ActionNotAllowed { table: self.name.clone(), action: self.action_name(action) });
        }
        self.check_params(action, params)?;
        let Some(Some(old)) = self.entries.get(handle.0 as usize) else {
            return Err(TableError::NoEntry { table: self.name.clone(), handle });
        };
        let entry = Entry::new(old.keys.clone(), action, params, old.priority, old.seq);
        self.entries[handle.0 as usize] = Some(entry);
        Ok(())
    }

    /// Deletes entry `handle`; its handle becomes free.
    pub fn delete_entry(&mut self, handle: EntryHandle) -> Result<(), TableError> {
        if self.entries_const {
            return Err(TableError::ConstEntries { table: self.name.clone() });
        }
        let Some(entry) = self.entries.get_mut(handle.0 as usize).and_then(Option::take) else {
            return Err(TableError::NoEntry { table: self.name.clone(), handle });
        };
        let values: Vec<u128> = entry.keys.iter().map(|&m| match_value(m)).collect();
        match &mut self.index {
            Index::Keyless => {}
            Index::Exact(x) => x.remove(&values),
            Index::Lpm(x) => x.remove(&values, lpm_len(&entry.keys)),
            Index::Ternary(x) => {
                let masks: Vec<u128> =
                    self.keys.iter().zip(entry.keys.iter()).map(|(k, &m)| match_mask(m, k.width)).collect();
                x.remove(&masks, &values, handle.0);
            }
        }
        self.free.insert(handle.0);
        self.live -= 1;
        Ok(())
    }

    /// Deletes every entry; handles start again from 0.
    pub fn clear(&mut self) -> Result<(), TableError> {
        if self.entries_const {
            return Err(TableError::ConstEntries { table: self.name.clone() });
        }
        self.entries.clear();
        self.counts.truncate(2);
        self.free.clear();
        self.live = 0;
        self.index = self.empty_index();
        Ok(())
    }

    /// Sets the action (and parameters) run on a miss.
    pub fn set_default(&mut self, action: ActionId, params: &[u128]) -> Result<(), TableError> {
        if self.default_const {
            return Err(TableError::ConstDefault { table: self.name.clone() });
        }
        if !self.actions.contains(&action) {
            return Err(TableError::ActionNotAllowed { table: self.name.clone(), action: self.action_name(action) });
        }
        self.check_params(action, params)?;
        self.default_action = action;
        self.default_params = params.into();
        Ok(())
    }

    /// Restores the program's default action.
    pub fn reset_default(&mut self) -> Result<(), TableError> {
        if self.default_const {
            return Err(TableError::ConstDefault { table: self.name.clone() });
        }
        self.default_action = self.initial_default.action;
        self.default_params = self.initial_default.args.clone().into();
        Ok(())
    }

    fn check_params(&self, action: ActionId, params: &[u128]) -> Result<(), TableError> {
        let Some(info) = self.action_info.get(action.index()) else {
            return Err(TableError::ActionNotAllowed { table: self.name.clone(), action: format!("#{}", action.0) });
        };
        if info.params.len() != params.len() {
            return Err(TableError::ParamCount {
                action: info.name.clone(),
                expected: info.params.len(),
                got: params.len(),
            });
        }
        for ((name, width), &v) in info.params.iter().zip(params) {
            if v & !width_mask(*width) != 0 {
                return Err(TableError::ParamTooWide {
                    action: info.name.clone(),
                    param: name.clone(),
                    width: *width,
                    value: v,
                });
            }
        }
        Ok(())
    }

    fn action_name(&self, a: ActionId) -> String {
        self.action_info.get(a.index()).map_or_else(|| format!("#{}", a.0), |i| i.name.clone())
    }

    /// Qualified name (`MyIngress.routes`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key components.
    pub fn keys(&self) -> &[KeySpec] {
        &self.keys
    }

    /// The actions entries may use.
    pub fn actions(&self) -> &[ActionId] {
        &self.actions
    }

    /// How entries that match the same key are ordered.
    pub fn ranking(&self) -> Ranking {
        self.ranking
    }

    /// Capacity (`size`).
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Number of entries installed.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no entry is installed.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Lookups that matched an entry.
    pub fn hits(&self) -> u64 {
        self.counts[0].get()
    }

    /// Lookups that ran the default action.
    pub fn misses(&self) -> u64 {
        self.counts[1].get()
    }

    /// Packets that matched entry `handle` since it was added (0 for a free handle).
    pub fn entry_hits(&self, handle: EntryHandle) -> u64 {
        match self.entry(handle) {
            Some(_) => self.counts.get(2 + handle.0 as usize).map_or(0, Cell::get),
            None => 0,
        }
    }

    /// Zeroes the table's and its entries' counters.
    pub fn reset_counters(&mut self) {
        self.counts.iter().for_each(|c| c.set(0));
    }

    /// The action run on a miss, with its parameters.
    pub fn default_action(&self) -> (ActionId, &[u128]) {
        (self.default_action, &self.default_params)
    }

    /// `const entries`: the control plane may not add or delete.
    pub fn entries_const(&self) -> bool {
        self.entries_const
    }

    /// `const default_action`: the control plane may not change it.
    pub fn default_const(&self) -> bool {
        self.default_const
    }

    /// The entry with this handle.
    pub fn entry(&self, handle: EntryHandle) -> Option<&Entry> {
        self.entries.get(handle.0 as usize).and_then(Option::as_ref)
    }

    /// Installed entries by handle.
    pub fn entries(&self) -> impl Iterator<Item = (EntryHandle, &Entry)> {
        self.entries.iter().enumerate().filter_map(|(h, e)| e.as_ref().map(|e| (EntryHandle(h as u32), e)))
    }

    /// The entries and the default entry in BMv2's `table_dump` format:
    /// key values and action data in hex, padded to their byte width.
    pub fn dump(&self) -> Vec<String> {
        let mut out = vec!["==========".to_string(), "TABLE ENTRIES".to_string()];
        for (h, _) in self.entries() {
            out.push("**********".to_string());
            out.extend(self.dump_entry(h).unwrap_or_default());
        }
        out.push("==========".to_string());
        out.push("Dumping default entry".to_string());
        out.push(self.action_line(self.default_action, &self.default_params));
        out.push("==========".to_string());
        out
    }

    /// One entry in BMv2's `table_dump_entry` format (`Dumping entry 0x2`,
    /// its match key, priority and action); `None` for a free handle.
    pub fn dump_entry(&self, handle: EntryHandle) -> Option<Vec<String>> {
        let e = self.entry(handle)?;
        let name_w = self.keys.iter().map(|k| k.name.len()).max().unwrap_or(0).max(20);
        let mut out = vec![format!("Dumping entry {:#x}", handle.0), "Match key:".to_string()];
        for (k, &m) in self.keys.iter().zip(e.keys.iter()) {
            let kind = match k.kind {
                MatchKind::Exact => "EXACT",
                MatchKind::Lpm => "LPM",
                MatchKind::Ternary => "TERNARY",
                MatchKind::Range => "RANGE",
            };
            out.push(format!("* {:name_w$}: {kind:10}{}", k.name, format_match(m, k.width)));
        }
        if let Some(p) = e.priority {
            out.push(format!("Priority: {p}"));
        }
        out.push(self.action_line(e.action, &e.params));
        Some(out)
    }

    /// `Action entry: NAME - p1, p2` (BMv2's wording).
    fn action_line(&self, action: ActionId, params: &[u128]) -> String {
        let (name, data) = self.action_text(action, params);
        format!("Action entry: {name} - {}", data.join(", "))
    }

    /// An action's name and its parameters in hex, each zero-padded to
    /// its byte width, as BMv2's dumps show action data.
    pub fn action_text(&self, action: ActionId, params: &[u128]) -> (String, Vec<String>) {
        let (name, widths): (String, Vec<u16>) = match self.action_info.get(action.index()) {
            Some(i) => (i.name.clone(), i.params.iter().map(|p| p.1).collect()),
            None => (format!("#{}", action.0), vec![128; params.len()]),
        };
        (name, params.iter().zip(widths).map(|(&v, w)| hex(v, w)).collect())
    }
}

/// Adds one to a counter.
#[inline(always)]
fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// Memory behind one table's image that is not the table's own: result
/// rows and, for `abi::IMAGE_GROUPS`, the groups and their slots.
#[derive(Default)]
pub(crate) struct ImageStore {
    rows: Vec<u128>,
    groups: Vec<MaskGroup>,
    slots: Vec<ExactSlot>,
}

impl TableState {
    /// This table's image for compiled code (the abi module docs): its
    /// index, counters and result rows, the rows (room for `params`
    /// parameter values each, `abi::image_params`) and any group index
    /// written to `store`. [`TableImage::NONE`] when the table's key has no
    /// image kind (`abi::image_kind_of`) or its index cannot give one.
    /// Valid until the table next changes ([`Tables::generation`]); the
    /// pointers are into this table and `store`.
    pub(crate) fn image(&self, params: usize, store: &mut ImageStore) -> TableImage {
        let keys: Vec<(MatchKind, u16)> = self.keys.iter().map(|k| (k.kind, k.width)).collect();
        let null = std::ptr::null();
        let (kind, index, shift, mask, chunks, lpm) = match (abi::image_kind_of(&keys), &self.index) {
            (Some(abi::IMAGE_EXACT), Index::Exact(x)) => match x.image() {
                Some((slots, shift, mask)) => (abi::IMAGE_EXACT, slots.as_ptr().cast::<u8>(), shift, mask, null, None),
                None => return TableImage::NONE,
            },
            (Some(abi::IMAGE_LPM), Index::Lpm(x)) => match x.image() {
                Some(t) => (
                    abi::IMAGE_LPM,
                    t.root.as_ptr().cast::<u8>(),
                    0,
                    0,
                    t.chunks.as_ptr().cast::<u32>(),
                    Some(t.levels),
                ),
                None => return TableImage::NONE,
            },
            (Some(abi::IMAGE_GROUPS), _) => {
                self.group_index(store);
                (abi::IMAGE_GROUPS, store.groups.as_ptr().cast::<u8>(), 0, store.groups.len() as u64, null, None)
            }
            _ => return TableImage::NONE,
        };
        let stride = 1 + params;
        let rows = &mut store.rows;
        rows.clear();
        rows.resize(stride * (1 + self.entries.len()), 0);
        let mut row = |r: usize, word: u32, values: &[u128]| {
            let row = &mut rows[r * stride..(r + 1) * stride];
            row[0] = u128::from(word);
            for (slot, &v) in row[1..].iter_mut().zip(values) {
                *slot = v;
            }
        };
        row(0, self.default_action.0, &self.default_params);
        for (h, e) in self.entries.iter().enumerate() {
            match e {
                Some(e) => row(1 + h, e.action.0 | abi::HIT_BIT, &e.params),
                None => row(1 + h, !abi::HIT_BIT, &[]),
            }
        }
        // Cells are transparent over `u64`; compiled code adds to them
        // between the runtime's own shared-reference accesses.
        let counts = self.counts.as_ptr().cast::<u64>().cast_mut();
        let rows = store.rows.as_ptr().cast::<u8>();
        TableImage { kind, shift, mask, index, chunks, rows, counts, lpm: lpm.unwrap_or_default(), version: 0 }
    }

    /// The `abi::IMAGE_GROUPS` index of this table's entries into `store`:
    /// the entries ranked in the order the table's lookup picks a winner
    /// in, grouped by packed mask, each group a slot index from masked key
    /// to its best entry.
    fn group_index(&self, store: &mut ImageStore) {
        // mask → (masked key → (rank, handle)) of the best entry with it.
        let mut groups: BTreeMap<u64, BTreeMap<u64, (u32, u32)>> = BTreeMap::new();
        for (rank, (mask, value, h)) in self.ranked_matches().into_iter().enumerate() {
            groups.entry(mask).or_default().entry(value).or_insert((rank as u32, h));
        }
        let mut order: Vec<(u32, u64)> =
            groups.iter().map(|(&m, g)| (g.values().map(|&(r, _)| r).min().unwrap_or(u32::MAX), m)).collect();
        order.sort_unstable();
        store.slots.clear();
        let mut bounds = Vec::with_capacity(order.len());
        for &(_, m) in &order {
            let g = &groups[&m];
            let n = (2 * g.len()).next_power_of_two().max(8);
            let start = store.slots.len();
            store.slots.resize(start + n, ExactSlot { key: 0, handle: abi::EXACT_EMPTY, _pad: 0 });
            let shift = 64 - n.trailing_zeros();
            for (&key, &(rank, h)) in g {
                let mut i = (key.wrapping_mul(abi::EXACT_HASH_K) >> shift) as usize;
                while store.slots[start + (i & (n - 1))].handle != abi::EXACT_EMPTY {
                    i += 1;
                }
                store.slots[start + (i & (n - 1))] = ExactSlot { key, handle: h, _pad: rank };
            }
            bounds.push((start, n, shift));
        }
        // Pointers only once every slot is in place (no more reallocation).
        store.groups.clear();
        for (&(best, mask), &(start, n, shift)) in order.iter().zip(&bounds) {
            let slots = store.slots[start..].as_ptr();
            store.groups.push(MaskGroup { mask, best, shift, slot_mask: n as u64 - 1, slots });
        }
    }
}

impl TableState {
    /// Every entry as `(mask, value, handle)` with the key components
    /// packed as for `abi::TABLE_LOOKUP` (`value` masked), in the order the
    /// table's lookup ranks them: the first entry whose `key & mask ==
    /// value` is the one a lookup of `key` finds (for keys without range
    /// components, which is what images and snapshots serve).
    fn ranked_matches(&self) -> Vec<(u64, u64, u32)> {
        let widths: Vec<u32> = self.keys.iter().map(|k| u32::from(k.width.max(1))).collect();
        let pack = |parts: &mut dyn Iterator<Item = u128>| {
            widths.iter().zip(parts).fold(0u64, |acc, (&w, v)| {
                acc.checked_shl(w).unwrap_or(0) | (v as u64 & (u64::MAX >> (64 - w.min(64))))
            })
        };
        let total: u32 = self.keys.iter().map(|k| u32::from(k.width)).sum();
        // (rank, handle): the winner among matches is the smallest rank.
        let mut ranked: Vec<((u64, u64), u32)> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(h, e)| e.as_ref().map(|e| (h as u32, e)))
            .map(|(h, e)| {
                let first = match self.ranking {
                    Ranking::Priority => u64::from(e.priority.unwrap_or(0)),
                    Ranking::PrefixBits => u64::from(unmatched_prefix_bits(&self.keys, &e.keys)),
                    // Longest prefix first; exact entries never overlap.
                    Ranking::Structural => u64::from(total.saturating_sub(u32::from(lpm_len(&e.keys)))),
                };
                ((first, e.seq), h)
            })
            .collect();
        ranked.sort_unstable();
        ranked
            .into_iter()
            .filter_map(|(_, h)| {
                let e = self.entries.get(h as usize)?.as_ref()?;
                let mask = pack(&mut self.keys.iter().zip(e.keys.iter()).map(|(k, &m)| match_mask(m, k.width)));
                let value = pack(&mut e.keys.iter().map(|&m| match_value(m))) & mask;
                Some((mask, value, h))
            })
            .collect()
    }

    /// A snapshot of this table for compiled code (the abi module docs,
    /// "Table snapshots"), as its image `image` shows it, when that image
    /// is one (not `TableImage::NONE`) and the table has at most
    /// `abi::SNAPSHOT_MAX_ENTRIES` entries; `None` otherwise.
    pub(crate) fn snapshot(&self, image: &TableImage) -> Option<TableSnapshot> {
        if image.kind == abi::IMAGE_NONE || image.version == 0 || self.live > abi::SNAPSHOT_MAX_ENTRIES {
            return None;
        }
        let entries = self
            .ranked_matches()
            .into_iter()
            .filter_map(|(mask, value, handle)| {
                let e = self.entries.get(handle as usize)?.as_ref()?;
                Some(SnapshotEntry { mask, value, handle, action: e.action, params: e.params.to_vec() })
            })
            .collect();
        Some(TableSnapshot {
            version: image.version,
            entries,
            miss: (self.default_action, self.default_params.to_vec()),
        })
    }
}

/// True when every range component of entry `h` contains its key value.
#[inline]
fn ranges_match(entries: &[Option<Entry>], ranges: &[usize], h: u32, keys: &[u128]) -> bool {
    if ranges.is_empty() {
        return true;
    }
    let Some(Some(e)) = entries.get(h as usize) else { return false };
    ranges.iter().all(|&i| match (e.keys.get(i), keys.get(i)) {
        (Some(&KeyMatch::Range { lo, hi }), Some(&k)) => lo <= k && k <= hi,
        _ => false,
    })
}

/// Converts a match to the normal form of `kind` (module docs), or says why it cannot be.
pub fn normalize(kind: MatchKind, width: u16, m: KeyMatch) -> Result<KeyMatch, String> {
    let wm = width_mask(width);
    let fits = |v: u128| {
        if v & !wm == 0 {
            Ok(v)
        } else {
            Err(format!("value {v:#x} does not fit bit<{width}>"))
        }
    };
    let len_ok = |len: u16| {
        if len <= width {
            Ok(len)
        } else {
            Err(format!("prefix length {len} exceeds the key width {width}"))
        }
    };
    use KeyMatch::*;
    Ok(match (kind, m) {
        (MatchKind::Exact, Exact(v)) => Exact(fits(v)?),
        (MatchKind::Exact, Mask { value, mask }) if mask & wm == wm => Exact(fits(value)?),
        (MatchKind::Exact, Prefix { value, len }) if len == width => Exact(fits(value)?),
        (MatchKind::Exact, Range { lo, hi }) if lo == hi => Exact(fits(lo)?),
        (MatchKind::Exact, other) => return Err(format!("an exact key needs one value, not {}", describe(other))),

        (MatchKind::Lpm, Exact(v)) => Prefix { value: fits(v)?, len: width },
        (MatchKind::Lpm, Prefix { value, len }) => {
            let len = len_ok(len)?;
            Prefix { value: fits(value)? & prefix_mask(len, width), len }
        }
        (MatchKind::Lpm, Mask { value, mask }) => match prefix_len(fits(mask)?, width) {
            Some(len) => Prefix { value: fits(value)? & mask, len },
            None => return Err(format!("mask {mask:#x} is not a prefix mask")),
        },
        (MatchKind::Lpm, Any) => Prefix { value: 0, len: 0 },
        (MatchKind::Lpm, other) => return Err(format!("an lpm key needs VALUE/LEN, not {}", describe(other))),

        (MatchKind::Ternary, Exact(v)) => Mask { value: fits(v)?, mask: wm },
        (MatchKind::Ternary, Mask { value, mask }) => Mask { value: fits(value)? & fits(mask)?, mask },
        (MatchKind::Ternary, Prefix { value, len }) => {
            let pm = prefix_mask(len_ok(len)?, width);
            Mask { value: fits(value)? & pm, mask: pm }
        }
        (MatchKind::Ternary, Any) => Mask { value: 0, mask: 0 },
        (MatchKind::Ternary, Range { lo, hi }) if lo == hi => Mask { value: fits(lo)?, mask: wm },
        (MatchKind::Ternary, Range { lo: 0, hi }) if hi == wm => Mask { value: 0, mask: 0 },
        (MatchKind::Ternary, other) => {
            return Err(format!("a ternary key needs VALUE&&&MASK, not {}", describe(other)))
        }

        (MatchKind::Range, Exact(v)) => Range { lo: fits(v)?, hi: v },
        (MatchKind::Range, Range { lo, hi }) => {
            if fits(lo)? > fits(hi)? {
                return Err(format!("empty range {lo:#x}->{hi:#x} (low bound above high bound)"));
            }
            Range { lo, hi }
        }
        (MatchKind::Range, Any) => Range { lo: 0, hi: wm },
        (MatchKind::Range, Mask { value, mask }) if mask & wm == wm => Range { lo: fits(value)?, hi: value },
        (MatchKind::Range, Mask { mask: 0, .. }) => Range { lo: 0, hi: wm },
        (MatchKind::Range, Prefix { value, len }) => {
            let pm = prefix_mask(len_ok(len)?, width);
            let lo = fits(value)? & pm;
            Range { lo, hi: lo | (wm & !pm) }
        }
        (MatchKind::Range, other) => return Err(format!("a range key needs LO->HI, not {}", describe(other))),
    })
}

/// A match in words, for errors.
fn describe(m: KeyMatch) -> String {
    match m {
        KeyMatch::Exact(v) => format!("the value {v:#x}"),
        KeyMatch::Mask { value, mask } => format!("the mask {value:#x}&&&{mask:#x}"),
        KeyMatch::Range { lo, hi } => format!("the range {lo:#x}->{hi:#x}"),
        KeyMatch::Prefix { value, len } => format!("the prefix {value:#x}/{len}"),
        KeyMatch::Any => "a wildcard".to_string(),
    }
}

/// The value a normalised match stores in the index (0 for ranges).
fn match_value(m: KeyMatch) -> u128 {
    match m {
        KeyMatch::Exact(v) | KeyMatch::Prefix { value: v, .. } | KeyMatch::Mask { value: v, .. } => v,
        KeyMatch::Range { .. } | KeyMatch::Any => 0,
    }
}

/// The mask a normalised match stands for in a ternary index (0 for ranges).
fn match_mask(m: KeyMatch, width: u16) -> u128 {
    match m {
        KeyMatch::Exact(_) => width_mask(width),
        KeyMatch::Prefix { len, .. } => prefix_mask(len, width),
        KeyMatch::Mask { mask, .. } => mask,
        KeyMatch::Range { .. } | KeyMatch::Any => 0,
    }
}

/// The prefix length of the (single) lpm component.
fn lpm_len(keys: &[KeyMatch]) -> u16 {
    keys.iter()
        .find_map(|m| match m {
            KeyMatch::Prefix { len, .. } => Some(*len),
            _ => None,
        })
        .unwrap_or(0)
}

/// The rank of an entry in a several-lpm table: bits its prefixes leave open.
fn unmatched_prefix_bits(specs: &[KeySpec], keys: &[KeyMatch]) -> u32 {
    specs
        .iter()
        .zip(keys)
        .map(|(k, m)| match m {
            KeyMatch::Prefix { len, .. } => u32::from(k.width - len),
            _ => 0,
        })
        .sum()
}

/// `v` in hex, zero-padded to the byte width of `width` bits (BMv2's `hexstr`).
fn hex(v: u128, width: u16) -> String {
    let digits = usize::from(width.div_ceil(8)) * 2;
    format!("{v:0digits$x}")
}

/// A match as `table_dump` prints it.
fn format_match(m: KeyMatch, width: u16) -> String {
    match m {
        KeyMatch::Exact(v) => hex(v, width),
        KeyMatch::Prefix { value, len } => format!("{}/{len}", hex(value, width)),
        KeyMatch::Mask { value, mask } => format!("{} &&& {}", hex(value, width), hex(mask, width)),
        KeyMatch::Range { lo, hi } => format!("{} -> {}", hex(lo, width), hex(hi, width)),
        KeyMatch::Any => "*".to_string(),
    }
}

/// The state of every table of a program, indexed by [`TableId`].
#[derive(Debug)]
pub struct Tables {
    tables: Vec<TableState>,
    /// Changes whenever a table may have changed ([`Tables::generation`]).
    generation: u64,
    /// Per table: the generation it last may have changed at ([`Tables::version`]).
    versions: Vec<u64>,
}

/// The source of [`Tables::generation`] values: unique in the process, so
/// a replaced or cloned `Tables` never repeats its predecessor's.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    GENERATIONS.fetch_add(1, Ordering::Relaxed)
}

impl Clone for Tables {
    fn clone(&self) -> Tables {
        // A copy's tables live elsewhere: new values for all of them.
        let g = next_generation();
        Tables { tables: self.tables.clone(), generation: g, versions: vec![g; self.tables.len()] }
    }
}

impl Tables {
    /// Tables with the program's entries and default actions installed.
    /// Entries the checker should have rejected are skipped (see [`Tables::with_errors`]).
    pub fn new(program: &ir::Program) -> Tables {
        Tables::with_errors(program).0
    }

    /// Like [`Tables::new`], also returning why any program entry could not be installed.
    pub fn with_errors(program: &ir::Program) -> (Tables, Vec<TableError>) {
        let (tables, refused) = Tables::build(program);
        (tables, refused.into_iter().map(|r| r.error).collect())
    }

    /// The program's const entries that its tables refuse, exactly as
    /// [`Tables::with_errors`] refuses them (the same key twice, entries on a
    /// table without a key, ...), each with where it is, so that `p4lite
    /// check` can point at it.
    pub fn refused_entries(program: &ir::Program) -> Vec<RefusedEntry> {
        Tables::build(program).1
    }

    fn build(program: &ir::Program) -> (Tables, Vec<RefusedEntry>) {
        let info: Arc<[ActionInfo]> = ActionInfo::all(program).into();
        let mut refused = Vec::new();
        let tables = program
            .tables
            .iter()
            .enumerate()
            .map(|(table, t)| {
                let mut state = TableState::new(t, info.clone());
                for (entry, e) in t.entries.iter().enumerate() {
                    let priority = match state.ranking {
                        Ranking::Priority => Some(e.priority.unwrap_or(entry as u32)),
                        _ => None,
                    };
                    if let Err(error) = state.insert(&e.keys, e.call.action, &e.call.args, priority) {
                        refused.push(RefusedEntry { table, entry, error });
                    }
                }
                state
            })
            .collect();
        let g = next_generation();
        let versions = vec![g; program.tables.len()];
        (Tables { tables, generation: g, versions }, refused)
    }

    /// Looks up `keys` in `table` (see [`TableState::lookup`]). `table` must
    /// be an id of the program these tables were built from.
    #[inline(always)]
    pub fn lookup(&mut self, table: TableId, keys: &[u128]) -> Lookup<'_> {
        self.tables[table.index()].lookup(keys)
    }

    /// The state of `table`.
    pub fn table(&self, table: TableId) -> &TableState {
        &self.tables[table.index()]
    }

    /// The state of `table`, for control-plane changes.
    pub fn table_mut(&mut self, table: TableId) -> &mut TableState {
        self.changing(table);
        &mut self.tables[table.index()]
    }

    /// The state of `table`, `None` for an id these tables do not have
    /// (for callers that must not panic), for control-plane changes.
    #[inline]
    pub fn get_mut(&mut self, table: TableId) -> Option<&mut TableState> {
        self.changing(table);
        self.tables.get_mut(table.index())
    }

    /// Records that `table` may change now (a new generation and version).
    fn changing(&mut self, table: TableId) {
        self.generation = next_generation();
        if let Some(v) = self.versions.get_mut(table.index()) {
            *v = self.generation;
        }
    }

    /// The state of `table` for a lookup (which changes only counters),
    /// `None` for an id these tables do not have (host functions).
    #[inline(always)]
    pub(crate) fn for_lookup(&mut self, table: TableId) -> Option<&mut TableState> {
        self.tables.get_mut(table.index())
    }

    /// A value that changes whenever a table may have changed (every
    /// mutable access but lookups), unique among all `Tables`: compiled
    /// code's table images are rebuilt when it is not the one they were
    /// built at.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Like [`Tables::generation`], for one table: changes whenever that
    /// table may have changed (0 for an id these tables do not have).
    pub fn version(&self, table: TableId) -> u64 {
        self.versions.get(table.index()).copied().unwrap_or(0)
    }

    /// Every table, by id.
    pub fn iter(&self) -> impl Iterator<Item = (TableId, &TableState)> {
        self.tables.iter().enumerate().map(|(i, t)| (TableId(i as u32), t))
    }

    /// The number of tables.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// True for a program without tables.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// Multicast groups, configured by BMv2's `mc_*` commands and simplified:
/// a group is the list of egress ports of the nodes associated with it
/// (in association order, each port once). A node's replication id is
/// recorded but not used: there is no egress pipeline to read it. A node
/// belongs to at most one group. Group 0 does not exist (`mcast_grp == 0`
/// means "no multicast"). As in BMv2, a new node gets the smallest free
/// handle, so a destroyed node's handle is given to the next one created.
#[derive(Clone, Debug, Default)]
pub struct McastGroups {
    groups: BTreeMap<u16, McastGroup>,
    /// Indexed by handle; `None` for a destroyed node.
    nodes: Vec<Option<McastNode>>,
}

/// One multicast group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct McastGroup {
    /// Associated node handles, in association order.
    pub nodes: Vec<u32>,
    /// The ports a packet is replicated to.
    pub ports: Vec<u16>,
}

/// One multicast node (BMv2's L1 node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McastNode {
    /// Replication id.
    pub rid: u16,
    pub ports: Vec<u16>,
    /// The group it is associated with.
    pub group: Option<u16>,
}

/// Why a multicast operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum McastError {
    #[error("multicast group 0 cannot be created: mcast_grp 0 means no multicast")]
    GroupZero,
    #[error("multicast group {0} already exists")]
    GroupExists(u16),
    #[error("multicast group {0} does not exist (create it with mc_mgrp_create)")]
    NoGroup(u16),
    #[error("multicast node {0} does not exist (node handles come from mc_node_create, from 0)")]
    NoNode(u32),
    #[error("multicast node {node} is already associated with group {group}")]
    NodeAssociated { node: u32, group: u16 },
    #[error("multicast node {node} is not associated with group {group}")]
    NotAssociated { node: u32, group: u16 },
}

impl McastGroups {
    /// No groups, no nodes.
    pub fn new() -> McastGroups {
        McastGroups::default()
    }

    /// Creates an empty group.
    pub fn create_group(&mut self, group: u16) -> Result<(), McastError> {
        if group == 0 {
            return Err(McastError::GroupZero);
        }
        if self.groups.contains_key(&group) {
            return Err(McastError::GroupExists(group));
        }
        self.groups.insert(group, McastGroup::default());
        Ok(())
    }

    /// Destroys a group; its nodes stay, no longer associated with any group.
    pub fn destroy_group(&mut self, group: u16) -> Result<(), McastError> {
        let g = self.groups.remove(&group).ok_or(McastError::NoGroup(group))?;
        for n in g.nodes {
            if let Some(Some(node)) = self.nodes.get_mut(n as usize) {
                node.group = None;
            }
        }
        Ok(())
    }

    /// Creates a node and returns its handle: the smallest free one (0, 1, 2, ...).
    pub fn create_node(&mut self, rid: u16, ports: Vec<u16>) -> u32 {
        let node = Some(McastNode { rid, ports, group: None });
        match self.nodes.iter().position(Option::is_none) {
            Some(free) => {
                self.nodes[free] = node;
                free as u32
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() as u32 - 1
            }
        }
    }

    /// Replaces a node's ports (BMv2's `mc_node_update`); its group, if
    /// any, replicates to the new ports from now on.
    pub fn update_node(&mut self, node: u32, ports: Vec<u16>) -> Result<(), McastError> {
        let n = self.node_mut(node)?;
        n.ports = ports;
        if let Some(g) = n.group {
            self.recompute(g);
        }
        Ok(())
    }

    /// Destroys a node, removing it from its group first.
    pub fn destroy_node(&mut self, node: u32) -> Result<(), McastError> {
        if let Some(g) = self.node_mut(node)?.group {
            self.dissociate(g, node)?;
        }
        self.nodes[node as usize] = None;
        while matches!(self.nodes.last(), Some(None)) {
            self.nodes.pop();
        }
        Ok(())
    }

    /// Adds a node's ports to a group.
    pub fn associate(&mut self, group: u16, node: u32) -> Result<(), McastError> {
        let n = self.nodes.get_mut(node as usize).and_then(Option::as_mut).ok_or(McastError::NoNode(node))?;
        let g = self.groups.get_mut(&group).ok_or(McastError::NoGroup(group))?;
        if let Some(group) = n.group {
            return Err(McastError::NodeAssociated { node, group });
        }
        n.group = Some(group);
        g.nodes.push(node);
        for &p in &n.ports {
            if !g.ports.contains(&p) {
                g.ports.push(p);
            }
        }
        Ok(())
    }

    /// Removes a node from a group (BMv2's `mc_node_dissociate`); the node stays.
    pub fn dissociate(&mut self, group: u16, node: u32) -> Result<(), McastError> {
        if !self.groups.contains_key(&group) {
            return Err(McastError::NoGroup(group));
        }
        let n = self.node_mut(node)?;
        if n.group != Some(group) {
            return Err(McastError::NotAssociated { node, group });
        }
        n.group = None;
        if let Some(g) = self.groups.get_mut(&group) {
            g.nodes.retain(|&h| h != node);
        }
        self.recompute(group);
        Ok(())
    }

    /// The node with this handle, for a change.
    fn node_mut(&mut self, node: u32) -> Result<&mut McastNode, McastError> {
        self.nodes.get_mut(node as usize).and_then(Option::as_mut).ok_or(McastError::NoNode(node))
    }

    /// Rebuilds `group`'s port list from its nodes, in association order.
    fn recompute(&mut self, group: u16) {
        let Some(g) = self.groups.get_mut(&group) else { return };
        g.ports.clear();
        for &h in &g.nodes {
            let Some(Some(n)) = self.nodes.get(h as usize) else { continue };
            for &p in &n.ports {
                if !g.ports.contains(&p) {
                    g.ports.push(p);
                }
            }
        }
    }

    /// The ports of `group`; `None` when it does not exist.
    #[inline]
    pub fn ports(&self, group: u16) -> Option<&[u16]> {
        self.groups.get(&group).map(|g| g.ports.as_slice())
    }

    /// Every group, by id.
    pub fn groups(&self) -> impl Iterator<Item = (u16, &McastGroup)> {
        self.groups.iter().map(|(&id, g)| (id, g))
    }

    /// The node with this handle (`None` if it does not exist).
    pub fn node(&self, node: u32) -> Option<&McastNode> {
        self.nodes.get(node as usize).and_then(Option::as_ref)
    }
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests {
    use super::testutil::{self, action, entry, table};
    use super::*;
    use KeyMatch::{Exact, Mask, Prefix, Range};

    fn ip(a: u8, b: u8, c: u8, d: u8) -> u128 {
        u128::from(u32::from_be_bytes([a, b, c, d]))
    }

    /// (hit, action, params, handle) of a lookup, owned.
    fn look(t: &mut Tables, id: TableId, keys: &[u128]) -> (bool, ActionId, Vec<u128>, Option<u32>) {
        let l = t.lookup(id, keys);
        (l.hit, l.action, l.params.to_vec(), l.entry.map(|h| h.0))
    }

    #[test]
    fn exact_hit_miss_and_counters() {
        let p = testutil::lb_program();
        let vips = p.find_table("vips").unwrap();
        let set_vip = p.find_action("set_vip").unwrap();
        let mut t = Tables::new(&p);
        let tcp = 6;
        let h = t.table_mut(vips).add_entry(&[Exact(ip(10, 0, 0, 100)), Exact(tcp), Exact(80)], set_vip, &[1], None);
        assert_eq!(h, Ok(EntryHandle(0)));
        t.table_mut(vips).add_entry(&[Exact(ip(10, 0, 0, 100)), Exact(tcp), Exact(443)], set_vip, &[2], None).unwrap();
        assert_eq!(look(&mut t, vips, &[ip(10, 0, 0, 100), tcp, 443]), (true, set_vip, vec![2], Some(1)));
        assert_eq!(look(&mut t, vips, &[ip(10, 0, 0, 100), tcp, 80]), (true, set_vip, vec![1], Some(0)));
        assert_eq!(look(&mut t, vips, &[ip(10, 0, 0, 100), tcp, 80]).3, Some(0));
        // UDP to the same address and port is another key.
        assert_eq!(look(&mut t, vips, &[ip(10, 0, 0, 100), 17, 80]), (false, ActionId(0), vec![], None));
        let s = t.table(vips);
        assert_eq!((s.hits(), s.misses()), (3, 1));
        assert_eq!(s.entry_hits(EntryHandle(0)), 2);
        assert_eq!(s.entry_hits(EntryHandle(1)), 1);
        t.table_mut(vips).reset_counters();
        assert_eq!((t.table(vips).hits(), t.table(vips).entry_hits(EntryHandle(0))), (0, 0));
    }

    /// `lookup_word` (one `u64` key) gives what `lookup` gives, and counts the same,
    /// on an lpm table with a trie, an exact table and a table with a
    /// key kind that has neither (a one-key ternary table).
    #[test]
    fn word_lookups_match_slice_lookups() {
        let mut p = testutil::lb_program();
        let deny = p.find_action("deny").unwrap();
        let one_acl =
            testutil::table(&mut p, "MyIngress.src_acl", &[("hdr.ipv4.src_addr", MatchKind::Ternary, 32)], &[deny]);
        let routes = p.find_table("routes").unwrap();
        let smac = p.find_table("smac").unwrap();
        let fwd = p.find_action("MyIngress.forward").unwrap();
        let efwd = p.find_action("MyEgress.forward").unwrap();
        let mut t = Tables::new(&p);
        let rt = t.table_mut(routes);
        rt.add_entry(&[Prefix { value: ip(10, 1, 2, 0), len: 24 }], fwd, &[7, 3], None).unwrap();
        rt.add_entry(&[Prefix { value: ip(10, 0, 0, 0), len: 8 }], fwd, &[8, 2], None).unwrap();
        t.table_mut(smac).add_entry(&[Exact(5)], efwd, &[0x0200_0000_0005], None).unwrap();
        t.table_mut(one_acl)
            .add_entry(&[Mask { value: ip(192, 168, 0, 0), mask: 0xffff_0000 }], deny, &[], Some(1))
            .unwrap();
        let mut words = t.clone();
        let cases = [
            (routes, ip(10, 1, 2, 9)),
            (routes, ip(10, 9, 9, 9)),
            (routes, ip(11, 0, 0, 1)),
            (smac, 5),
            (smac, 6),
            (one_acl, ip(192, 168, 3, 4)),
            (one_acl, ip(192, 169, 3, 4)),
        ];
        for (id, key) in cases {
            let a = look(&mut t, id, &[key]);
            let l = words.table_mut(id).lookup_word(key as u64);
            assert_eq!(a, (l.hit, l.action, l.params.to_vec(), l.entry.map(|h| h.0)), "{id:?} {key:#x}");
        }
        for id in [routes, smac, one_acl] {
            assert_eq!((t.table(id).hits(), t.table(id).misses()), (words.table(id).hits(), words.table(id).misses()));
        }
    }

    #[test]
    fn lpm_longest_prefix_wins() {
        let p = testutil::lb_program();
        let routes = p.find_table("routes").unwrap();
        let fwd = p.find_action("MyIngress.forward").unwrap();
        let drop = p.find_action("drop").unwrap();
        let mut t = Tables::new(&p);
        let mac = 0x0011_2233_4455;
        let rt = t.table_mut(routes);
        // Added shortest last, so insertion order cannot be what decides.
        rt.add_entry(&[Prefix { value: ip(10, 1, 2, 3), len: 32 }], fwd, &[mac, 4], None).unwrap();
        rt.add_entry(&[Prefix { value: ip(10, 1, 2, 0), len: 24 }], fwd, &[mac, 3], None).unwrap();
        rt.add_entry(&[Prefix { value: ip(10, 0, 0, 0), len: 8 }], fwd, &[mac, 2], None).unwrap();
        rt.add_entry(&[Prefix { value: 0, len: 0 }], fwd, &[mac, 1], None).unwrap();
        let port = |t: &mut Tables, a| look(t, routes, &[a]).2[1];
        assert_eq!(port(&mut t, ip(10, 1, 2, 3)), 4);
        assert_eq!(port(&mut t, ip(10, 1, 2, 200)), 3);
        assert_eq!(port(&mut t, ip(10, 200, 0, 1)), 2);
        assert_eq!(port(&mut t, ip(11, 0, 0, 1)), 1);
        // Without the default route, other addresses miss and run `drop`.
        t.table_mut(routes).delete_entry(EntryHandle(3)).unwrap();
        assert_eq!(look(&mut t, routes, &[ip(11, 0, 0, 1)]), (false, drop, vec![], None));
        // Host bits below the prefix are cleared when the entry is added.
        let e = t.table(routes).entry(EntryHandle(1)).unwrap();
        assert_eq!(e.keys[0], Prefix { value: ip(10, 1, 2, 0), len: 24 });
    }

    #[test]
    fn ternary_priority_and_ties() {
        let p = testutil::lb_program();
        let acl = p.find_table("acl").unwrap();
        let (deny, allow) = (p.find_action("deny").unwrap(), p.find_action("allow").unwrap());
        let mut t = Tables::new(&p);
        let any_port = Range { lo: 0, hi: 0xffff };
        let net8 = Mask { value: ip(10, 0, 0, 0), mask: 0xff00_0000 };
        let host = Mask { value: ip(10, 0, 0, 1), mask: 0xffff_ffff };
        let a = t.table_mut(acl);
        assert_eq!(a.add_entry(&[net8, any_port], deny, &[], Some(10)), Ok(EntryHandle(0)));
        assert_eq!(a.add_entry(&[host, any_port], allow, &[], Some(20)), Ok(EntryHandle(1)));
        // The /8 has the smaller priority number: it wins even for the host.
        assert_eq!(look(&mut t, acl, &[ip(10, 0, 0, 1), 80]).1, deny);
        t.table_mut(acl).add_entry(&[host, any_port], allow, &[], Some(5)).unwrap();
        assert_eq!(look(&mut t, acl, &[ip(10, 0, 0, 1), 80]), (true, allow, vec![], Some(2)));
        assert_eq!(look(&mut t, acl, &[ip(10, 0, 0, 2), 80]).1, deny);
        // A tie (priority 5 again, other mask): the earlier entry (2) wins.
        t.table_mut(acl).add_entry(&[net8, any_port], deny, &[], Some(5)).unwrap();
        assert_eq!(look(&mut t, acl, &[ip(10, 0, 0, 1), 80]).3, Some(2));
        // Deleting 2 and adding it again makes it the later of the tie.
        t.table_mut(acl).delete_entry(EntryHandle(2)).unwrap();
        assert_eq!(t.table_mut(acl).add_entry(&[host, any_port], allow, &[], Some(5)), Ok(EntryHandle(2)));
        assert_eq!(look(&mut t, acl, &[ip(10, 0, 0, 1), 80]).3, Some(3));
    }

    #[test]
    fn range_matching() {
        let p = testutil::lb_program();
        let acl = p.find_table("acl").unwrap();
        let (deny, allow) = (p.find_action("deny").unwrap(), p.find_action("allow").unwrap());
        let mut t = Tables::new(&p);
        let anyone = Mask { value: 0, mask: 0 };
        let a = t.table_mut(acl);
        a.add_entry(&[anyone, Range { lo: 1024, hi: 0xffff }], allow, &[], Some(3)).unwrap();
        a.add_entry(&[anyone, Range { lo: 0, hi: 1023 }], deny, &[], Some(2)).unwrap();
        a.add_entry(&[anyone, Range { lo: 80, hi: 80 }], allow, &[], Some(1)).unwrap();
        assert_eq!(look(&mut t, acl, &[ip(1, 2, 3, 4), 80]).3, Some(2));
        assert_eq!(look(&mut t, acl, &[ip(1, 2, 3, 4), 79]).3, Some(1));
        assert_eq!(look(&mut t, acl, &[ip(1, 2, 3, 4), 1023]).3, Some(1));
        assert_eq!(look(&mut t, acl, &[ip(1, 2, 3, 4), 1024]).3, Some(0));
        assert_eq!(look(&mut t, acl, &[ip(1, 2, 3, 4), 0xffff]).3, Some(0));
        // Same key, same priority: a duplicate; another priority is a new entry.
        let dup = t.table_mut(acl).add_entry(&[anyone, Range { lo: 80, hi: 80 }], deny, &[], Some(1));
        assert_eq!(dup, Err(TableError::Duplicate { table: "MyIngress.acl".into(), handle: EntryHandle(2) }));
        assert!(t.table_mut(acl).add_entry(&[anyone, Range { lo: 80, hi: 80 }], deny, &[], Some(9)).is_ok());
    }

    #[test]
    fn capacity_and_handle_reuse() {
        let p = testutil::lb_program();
        let acl = p.find_table("acl").unwrap();
        let deny = p.find_action("deny").unwrap();
        let mut t = Tables::new(&p);
        let a = t.table_mut(acl);
        for port in 0..4u128 {
            let h = a.add_entry(&[Mask { value: 0, mask: 0 }, Range { lo: port, hi: port }], deny, &[], Some(1));
            assert_eq!(h, Ok(EntryHandle(port as u32)));
        }
        let full = a.add_entry(&[Mask { value: 0, mask: 0 }, Range { lo: 9, hi: 9 }], deny, &[], Some(1));
        assert_eq!(full, Err(TableError::Full { table: "MyIngress.acl".into(), size: 4 }));
        assert_eq!(full.unwrap_err().to_string(), "table full: `MyIngress.acl` already holds 4 entries (its size)");
        a.delete_entry(EntryHandle(1)).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(
            a.delete_entry(EntryHandle(1)),
            Err(TableError::NoEntry { table: "MyIngress.acl".into(), handle: EntryHandle(1) })
        );
        // The freed handle is reused; the entry it named no longer matches.
        assert_eq!(
            a.add_entry(&[Mask { value: 0, mask: 0 }, Range { lo: 9, hi: 9 }], deny, &[], Some(1)),
            Ok(EntryHandle(1))
        );
        assert!(!look(&mut t, acl, &[0, 1]).0);
        assert_eq!(look(&mut t, acl, &[0, 9]).3, Some(1));
        t.table_mut(acl).clear().unwrap();
        assert!(t.table(acl).is_empty());
        assert!(!look(&mut t, acl, &[0, 9]).0);
        let h = t.table_mut(acl).add_entry(&[Mask { value: 0, mask: 0 }, Range { lo: 9, hi: 9 }], deny, &[], Some(1));
        assert_eq!(h, Ok(EntryHandle(0)));
    }

    #[test]
    fn default_action_changes_and_const_tables() {
        let p = testutil::lb_program();
        let routes = p.find_table("routes").unwrap();
        let fixed = p.find_table("fixed").unwrap();
        let fwd = p.find_action("MyIngress.forward").unwrap();
        let drop = p.find_action("drop").unwrap();
        let set_vip = p.find_action("set_vip").unwrap();
        let mut t = Tables::new(&p);
        t.table_mut(routes).set_default(fwd, &[0xaabb_ccdd_eeff, 7]).unwrap();
        assert_eq!(look(&mut t, routes, &[ip(1, 1, 1, 1)]), (false, fwd, vec![0xaabb_ccdd_eeff, 7], None));
        assert_eq!(
            t.table_mut(routes).set_default(set_vip, &[1]),
            Err(TableError::ActionNotAllowed { table: "MyIngress.routes".into(), action: "MyIngress.set_vip".into() })
        );
        assert_eq!(
            t.table_mut(routes).set_default(fwd, &[0, 512]).unwrap_err().to_string(),
            "value 0x200 does not fit parameter `port` (bit<9>) of action `MyIngress.forward`"
        );
        t.table_mut(routes).reset_default().unwrap();
        assert_eq!(t.table(routes).default_action(), (drop, &[][..]));

        // The const table has its program entry and refuses every change.
        assert_eq!(look(&mut t, fixed, &[0x86dd]), (true, drop, vec![], Some(0)));
        let name = || "MyIngress.fixed".to_string();
        let f = t.table_mut(fixed);
        assert_eq!(f.add_entry(&[Exact(0x0800)], drop, &[], None), Err(TableError::ConstEntries { table: name() }));
        assert_eq!(f.delete_entry(EntryHandle(0)), Err(TableError::ConstEntries { table: name() }));
        assert_eq!(f.clear(), Err(TableError::ConstEntries { table: name() }));
        assert_eq!(f.set_default(drop, &[]), Err(TableError::ConstDefault { table: name() }));
        assert_eq!(f.reset_default(), Err(TableError::ConstDefault { table: name() }));
    }

    #[test]
    fn entry_checks() {
        let p = testutil::lb_program();
        let routes = p.find_table("routes").unwrap();
        let acl = p.find_table("acl").unwrap();
        let fwd = p.find_action("MyIngress.forward").unwrap();
        let deny = p.find_action("deny").unwrap();
        let mut t = Tables::new(&p);
        let r = t.table_mut(routes);
        let msg = |r: Result<EntryHandle, TableError>| r.unwrap_err().to_string();
        assert_eq!(
            msg(r.add_entry(&[Prefix { value: 0, len: 33 }], fwd, &[0, 1], None)),
            "key field `hdr.ipv4.dst_addr` of table `MyIngress.routes`: prefix length 33 exceeds the key width 32"
        );
        assert_eq!(
            msg(r.add_entry(&[Exact(1 << 32)], fwd, &[0, 1], None)),
            "key field `hdr.ipv4.dst_addr` of table `MyIngress.routes`: value 0x100000000 does not fit bit<32>"
        );
        assert_eq!(
            msg(r.add_entry(&[Mask { value: 0, mask: 0xff00_ff00 }], fwd, &[0, 1], None)),
            "key field `hdr.ipv4.dst_addr` of table `MyIngress.routes`: mask 0xff00ff00 is not a prefix mask"
        );
        assert_eq!(msg(r.add_entry(&[], fwd, &[0, 1], None)), "table `MyIngress.routes` has 1 key field(s), got 0");
        assert_eq!(
            msg(r.add_entry(&[Exact(1)], fwd, &[0], None)),
            "action `MyIngress.forward` takes 2 parameter(s), got 1"
        );
        assert_eq!(
            msg(r.add_entry(&[Exact(1)], fwd, &[0, 1], Some(1))),
            "table `MyIngress.routes` has no ternary or range key: entries take no priority"
        );
        r.add_entry(&[Prefix { value: ip(10, 0, 0, 0), len: 8 }], fwd, &[0, 1], None).unwrap();
        assert_eq!(
            msg(r.add_entry(&[Prefix { value: ip(10, 9, 9, 9), len: 8 }], fwd, &[0, 2], None)),
            "duplicate entry in table `MyIngress.routes`: entry 0 has the same match key"
        );
        let a = t.table_mut(acl);
        assert_eq!(
            msg(a.add_entry(&[KeyMatch::Any, KeyMatch::Any], deny, &[], None)),
            "table `MyIngress.acl` has ternary or range keys: entries need a priority"
        );
        assert_eq!(
            msg(a.add_entry(&[KeyMatch::Any, Range { lo: 5, hi: 4 }], deny, &[], Some(1))),
            "key field `meta.dst_port` of table `MyIngress.acl`: empty range 0x5->0x4 (low bound above high bound)"
        );
    }

    #[test]
    fn normal_forms() {
        use MatchKind as K;
        assert_eq!(normalize(K::Exact, 16, Mask { value: 0x800, mask: 0xffff }), Ok(Exact(0x800)));
        assert!(normalize(K::Exact, 16, Mask { value: 0x800, mask: 0xff00 }).is_err());
        assert_eq!(normalize(K::Lpm, 32, Exact(7)), Ok(Prefix { value: 7, len: 32 }));
        assert_eq!(normalize(K::Lpm, 32, KeyMatch::Any), Ok(Prefix { value: 0, len: 0 }));
        assert_eq!(
            normalize(K::Lpm, 32, Mask { value: ip(10, 1, 2, 3), mask: 0xffff_0000 }),
            Ok(Prefix { value: ip(10, 1, 0, 0), len: 16 })
        );
        assert_eq!(normalize(K::Ternary, 8, Mask { value: 0x1f, mask: 0xf0 }), Ok(Mask { value: 0x10, mask: 0xf0 }));
        assert_eq!(normalize(K::Ternary, 8, Exact(3)), Ok(Mask { value: 3, mask: 0xff }));
        assert_eq!(normalize(K::Ternary, 8, Prefix { value: 0xab, len: 4 }), Ok(Mask { value: 0xa0, mask: 0xf0 }));
        assert_eq!(normalize(K::Range, 8, KeyMatch::Any), Ok(Range { lo: 0, hi: 0xff }));
        assert_eq!(normalize(K::Range, 8, Prefix { value: 0xa0, len: 4 }), Ok(Range { lo: 0xa0, hi: 0xaf }));
        assert_eq!(normalize(K::Range, 8, Exact(9)), Ok(Range { lo: 9, hi: 9 }));
        assert_eq!(
            normalize(K::Ternary, 8, Range { lo: 1, hi: 2 }),
            Err("a ternary key needs VALUE&&&MASK, not the range 0x1->0x2".into())
        );
    }

    #[test]
    fn program_entries_installed_in_source_order() {
        let mut p = testutil::program();
        let a = action(&mut p, "C.a", &[("x", 8)]);
        let t = table(&mut p, "C.t", &[("k", MatchKind::Ternary, 8)], &[a]);
        // Without @priority an entry's priority is its index, so the first
        // written wins; an explicit @priority 0 beats all but the first.
        p.tables[t.index()].entries = vec![
            entry(&[Mask { value: 0x10, mask: 0xf0 }], a, &[1], None),
            entry(&[KeyMatch::Any], a, &[2], None),
            entry(&[Exact(0x12)], a, &[3], None),
            entry(&[Exact(0x23)], a, &[4], Some(0)),
            entry(&[Exact(0x1ff)], a, &[5], None), // too wide: reported, skipped
        ];
        let (mut tables, errors) = Tables::with_errors(&p);
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["key field `k` of table `C.t`: value 0x1ff does not fit bit<8>"]
        );
        assert_eq!(look(&mut tables, t, &[0x12]).2, [1]);
        assert_eq!(look(&mut tables, t, &[0x22]).2, [2]);
        assert_eq!(look(&mut tables, t, &[0x23]).2, [4]);
        let prios: Vec<_> = tables.table(t).entries().map(|(h, e)| (h.0, e.priority)).collect();
        assert_eq!(prios, [(0, Some(0)), (1, Some(1)), (2, Some(2)), (3, Some(0))]);
    }

    #[test]
    fn several_lpm_keys_rank_by_prefix_bits() {
        let mut p = testutil::program();
        let a = action(&mut p, "C.a", &[]);
        let t = table(&mut p, "C.t", &[("src", MatchKind::Lpm, 8), ("dst", MatchKind::Lpm, 8)], &[a]);
        let mut tables = Tables::new(&p);
        let s = tables.table_mut(t);
        assert_eq!(s.ranking(), Ranking::PrefixBits);
        s.add_entry(&[Prefix { value: 0x10, len: 4 }, Prefix { value: 0, len: 0 }], a, &[], None).unwrap();
        s.add_entry(&[Prefix { value: 0x10, len: 4 }, Prefix { value: 0x20, len: 4 }], a, &[], None).unwrap();
        assert_eq!(look(&mut tables, t, &[0x11, 0x21]).3, Some(1));
        assert_eq!(look(&mut tables, t, &[0x11, 0x31]).3, Some(0));
    }

    #[test]
    fn keyless_table_always_misses() {
        let mut p = testutil::program();
        let a = action(&mut p, "C.a", &[]);
        let t = table(&mut p, "C.t", &[], &[a]);
        let mut tables = Tables::new(&p);
        assert_eq!(look(&mut tables, t, &[]), (false, ActionId(0), vec![], None));
        assert_eq!(tables.table_mut(t).add_entry(&[], a, &[], None), Err(TableError::NoKey { table: "C.t".into() }));
        tables.table_mut(t).set_default(a, &[]).unwrap();
        assert_eq!(look(&mut tables, t, &[]).1, a);
        assert_eq!(tables.table(t).misses(), 2);
    }

    #[test]
    fn entries_keep_hot_fields_in_one_cache_line() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(align_of::<Entry>(), 64);
        for end in [
            offset_of!(Entry, inline) + size_of::<[u128; INLINE_PARAMS]>(),
            offset_of!(Entry, action) + 4,
            offset_of!(Entry, n_params) + 4,
            offset_of!(Entry, priority) + size_of::<Option<u32>>(),
        ] {
            assert!(end <= 64, "a hot field ends at byte {end}");
        }
        // `Option<Entry>` uses a niche (the priority's tag), no separate discriminant.
        assert_eq!(size_of::<Option<Entry>>(), size_of::<Entry>());

        // Actions with more parameters than the inline copy holds return them all.
        let mut p = testutil::program();
        let a = action(&mut p, "C.a", &[("x", 8), ("y", 16), ("z", 48)]);
        let b = action(&mut p, "C.b", &[("x", 8)]);
        let t = table(&mut p, "C.t", &[("k", MatchKind::Exact, 8)], &[a, b]);
        let mut tables = Tables::new(&p);
        tables.table_mut(t).add_entry(&[Exact(1)], a, &[1, 2, 3], None).unwrap();
        tables.table_mut(t).add_entry(&[Exact(2)], b, &[9], None).unwrap();
        assert_eq!(look(&mut tables, t, &[1]), (true, a, vec![1, 2, 3], Some(0)));
        assert_eq!(look(&mut tables, t, &[2]), (true, b, vec![9], Some(1)));
        assert_eq!(tables.table(t).entry(EntryHandle(0)).map(|e| &e.params[..]), Some(&[1, 2, 3][..]));
        assert_eq!(tables.table(t).entry_hits(EntryHandle(0)), 1);
    }

    #[test]
    fn wide_exact_keys() {
        // 128 + 128 + 16 bits: stored unpacked.
        let mut p = testutil::program();
        let a = action(&mut p, "C.a", &[("x", 128)]);
        let t = table(
            &mut p,
            "C.t",
            &[("src", MatchKind::Exact, 128), ("dst", MatchKind::Exact, 128), ("port", MatchKind::Exact, 16)],
            &[a],
        );
        let mut tables = Tables::new(&p);
        let v6 = 0x2001_0db8u128 << 96;
        tables.table_mut(t).add_entry(&[Exact(v6 | 1), Exact(v6 | 2), Exact(443)], a, &[u128::MAX], None).unwrap();
        assert_eq!(look(&mut tables, t, &[v6 | 1, v6 | 2, 443]).2, [u128::MAX]);
        assert!(!look(&mut tables, t, &[v6 | 2, v6 | 1, 443]).0);
    }

    #[test]
    fn dump_matches_bmv2_layout() {
        let p = testutil::lb_program();
        let routes = p.find_table("routes").unwrap();
        let acl = p.find_table("acl").unwrap();
        let fwd = p.find_action("MyIngress.forward").unwrap();
        let deny = p.find_action("deny").unwrap();
        let mut t = Tables::new(&p);
        t.table_mut(routes)
            .add_entry(&[Prefix { value: ip(10, 0, 1, 0), len: 24 }], fwd, &[0x0000_0000_0101, 1], None)
            .unwrap();
        assert_eq!(
            t.table(routes).dump(),
            [
                "==========",
                "TABLE ENTRIES",
                "**********",
                "Dumping entry 0x0",
                "Match key:",
                "* hdr.ipv4.dst_addr   : LPM       0a000100/24",
                "Action entry: MyIngress.forward - 000000000101, 0001",
                "==========",
                "Dumping default entry",
                "Action entry: MyIngress.drop - ",
                "==========",
            ]
        );
        t.table_mut(acl)
            .add_entry(
                &[Mask { value: ip(10, 0, 0, 0), mask: 0xff00_0000 }, Range { lo: 80, hi: 443 }],
                deny,
                &[],
                Some(7),
            )
            .unwrap();
        let dump = t.table(acl).dump();
        assert_eq!(
            dump[4..9],
            [
                "Match key:",
                "* hdr.ipv4.src_addr   : TERNARY   0a000000 &&& ff000000",
                "* meta.dst_port       : RANGE     0050 -> 01bb",
                "Priority: 7",
                "Action entry: MyIngress.deny - ",
            ]
        );
    }

    #[test]
    fn multicast_groups() {
        let mut m = McastGroups::new();
        assert_eq!(m.create_group(0), Err(McastError::GroupZero));
        m.create_group(1).unwrap();
        assert_eq!(m.create_group(1), Err(McastError::GroupExists(1)));
        let n0 = m.create_node(0, vec![1, 2]);
        let n1 = m.create_node(1, vec![2, 3]);
        assert_eq!((n0, n1), (0, 1));
        m.associate(1, n0).unwrap();
        m.associate(1, n1).unwrap();
        assert_eq!(m.ports(1), Some(&[1, 2, 3][..]));
        assert_eq!(m.ports(2), None);
        assert_eq!(m.associate(2, n0), Err(McastError::NoGroup(2)));
        assert_eq!(m.associate(1, 7), Err(McastError::NoNode(7)));
        assert_eq!(m.associate(1, n0), Err(McastError::NodeAssociated { node: 0, group: 1 }));
    }
}
