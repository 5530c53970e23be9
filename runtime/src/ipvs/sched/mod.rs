//! The IPVS schedulers (spec 1.4–1.12): rr, wrr, lc, wlc, lblc, lblcr, dh, sh.
//!
//! A [`Scheduler`] is the per-service state of one algorithm. The service
//! model ([`super::service::Services`]) calls its hooks exactly where the
//! kernel does:
//!
//! | hook | rr | wrr | lc | wlc | lblc | lblcr | dh | sh |
//! | --- | --- | --- | --- | --- | --- | --- | --- | --- |
//! | `init_service` | cursor = head | reset | – | – | new table, GC timer | new table, GC timer | assign | assign |
//! | `add_dest` | – | `dest_changed` | – | – | – | – | assign | assign |
//! | `del_dest` | cursor moves back if it was the dest | `dest_changed` | – | – | – | – | assign | assign |
//! | `upd_dest` | – | `dest_changed` | – | – | – | – | **none** | assign |
//!
//! (rr additionally shifts its stored cursor *index* on add/delete; that is
//! bookkeeping of our representation, not a semantic hook.)
//!
//! Every hook gets a [`SvcView`]: the service's dests in kernel list order,
//! the dest arena and the global settings. `schedule` never allocates and is
//! O(dests) for rr/wrr (lblc/lblcr/dh/sh: one hash probe plus, where the spec
//! says so, one pass over the dests). The least-loaded search of lc, wlc,
//! lblc and lblcr reads the service's [`PackedDests`] instead (when the view
//! has one, as the service model's always does): 16 bytes per dest in list
//! order plus a tournament tree whose root is the kernel's pick, so a pick
//! costs O(log dests) per dest changed since the last pick, not a walk.
//!
//! [`reference`] holds a second, naive implementation used only by tests.

pub mod dh;
pub mod lblc;
pub mod lblcr;
pub mod lc;
#[cfg(test)]
mod reference;
pub mod rr;
pub mod sh;
pub mod wlc;
pub mod wrr;

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::service::{Dest, DestArena, DestId, IpvsConfig, Overhead, SVC_F_SH_FALLBACK, SVC_F_SH_PORT};

/// The scheduler algorithms this model implements (`ipvsadm -s NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchedKind {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection (ipvsadm's default).
    Wlc,
    /// Locality-based least connection.
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
}

impl SchedKind {
    /// All kinds, in the order above.
    pub const ALL: [SchedKind; 8] = [
        SchedKind::Rr,
        SchedKind::Wrr,
        SchedKind::Lc,
        SchedKind::Wlc,
        SchedKind::Lblc,
        SchedKind::Lblcr,
        SchedKind::Dh,
        SchedKind::Sh,
    ];

    /// The kernel/ipvsadm name.
    pub fn name(self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Wlc => "wlc",
            SchedKind::Lblc => "lblc",
            SchedKind::Lblcr => "lblcr",
            SchedKind::Dh => "dh",
            SchedKind::Sh => "sh",
        }
    }
}

impl fmt::Display for SchedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scheduler name that is not one of the eight modelled ones (the kernel
/// has more: sed, nq, fo, ovf, mh, twos).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownScheduler(pub String);

impl fmt::Display for UnknownScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scheduler not found: {}", self.0)
    }
}

impl std::error::Error for UnknownScheduler {}

impl FromStr for SchedKind {
    type Err = UnknownScheduler;
    fn from_str(s: &str) -> Result<SchedKind, UnknownScheduler> {
        SchedKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownScheduler(s.to_string()))
    }
}

/// What schedulers may look at in the packet that creates a connection.
/// For an ICMP error scheduled "inversely" the caller swaps the roles, so
/// `saddr:sport` is always the client side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// Client address (sh hashes it).
    pub saddr: Ipv4Addr,
    /// Client port (sh with sh-port).
    pub sport: u16,
    /// Destination address (lblc/lblcr/dh hash it).
    pub daddr: Ipv4Addr,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number (sh-port applies to TCP, UDP and SCTP only).
    pub proto: u8,
}

/// A service as schedulers see it: dests in kernel list order plus the
/// arena to read them (also trashed dests referenced by lblc/lblcr tables).
#[derive(Clone, Copy)]
pub struct SvcView<'a> {
    /// The service's dests, newest first.
    pub order: &'a [DestId],
    /// Every dest object.
    pub dests: &'a DestArena,
    /// Overhead formula.
    pub overhead: Overhead,
    /// Service scheduler flags.
    pub sched_flags: u32,
    /// lblc entry expiration (milliseconds, from the sysctl's seconds).
    pub lblc_expiration: u64,
    /// lblcr entry and set expiration (milliseconds).
    pub lblcr_expiration: u64,
    /// The service's [`PackedDests`] (same order as `order`), if the
    /// caller keeps one; without it lc/wlc/lblc/lblcr read the dests.
    pub packed: Option<&'a PackedDests>,
}

impl<'a> SvcView<'a> {
    /// A view of one service.
    pub fn new(order: &'a [DestId], dests: &'a DestArena, config: &IpvsConfig, sched_flags: u32) -> SvcView<'a> {
        SvcView {
            order,
            dests,
            overhead: config.overhead,
            sched_flags,
            lblc_expiration: config.lblc_expiration.saturating_mul(1000),
            lblcr_expiration: config.lblcr_expiration.saturating_mul(1000),
            packed: None,
        }
    }

    /// The same view with the service's packed dests (kept in sync by the
    /// service model; must list exactly `order`).
    #[inline]
    pub fn with_packed(self, packed: &'a PackedDests) -> SvcView<'a> {
        SvcView { packed: Some(packed), ..self }
    }

    /// The dest `d`.
    #[inline]
    pub fn dest(&self, d: DestId) -> &'a Dest {
        self.dests.get(d)
    }

    /// The dests in list order, with their ids.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = (DestId, &'a Dest)> + 'a {
        let dests = self.dests;
        self.order.iter().map(move |&d| (d, dests.get(d)))
    }

    /// The sh-fallback flag.
    pub fn sh_fallback(&self) -> bool {
        self.sched_flags & SVC_F_SH_FALLBACK != 0
    }

    /// The sh-port flag.
    pub fn sh_port(&self) -> bool {
        self.sched_flags & SVC_F_SH_PORT != 0
    }
}

/// `hash_32(v, bits)` of `include/linux/hash.h` (generic version):
/// the top `bits` bits of `v * GOLDEN_RATIO_32` mod 2^32.
#[inline]
pub fn hash_32(v: u32, bits: u32) -> u32 {
    v.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// `a * wb > b * wa` without overflow: "dest b (overhead `b`, weight `wb`)
/// is less loaded than a (overhead `a`, weight `wa`)". The kernel uses s64
/// products of int overheads; u128 gives the same answer whenever the
/// kernel's does not overflow.
#[inline]
pub(crate) fn weighted_less(a: u64, wa: u32, b: u64, wb: u32) -> bool {
    u128::from(a) * u128::from(wb) > u128::from(b) * u128::from(wa)
}

/// The kernel's least-loaded walk: the first dest (list order) that is not
/// OVERLOAD and has `weight(dest) > 0` is the candidate; each later
/// non-OVERLOAD dest replaces it when strictly lighter per weight (a dest
/// with `weight(dest) == 0` never is). The replacement is done branch-free:
/// near-equal loads make it unpredictable, and mispredictions used to
/// dominate this loop, the wlc hot path (all dests per new connection).
#[inline(always)]
fn least_loaded(view: SvcView<'_>, weight: impl Fn(&Dest) -> u32) -> Option<DestId> {
    let mode = view.overhead;
    let mut it = view.iter();
    let (mut least, mut lw, mut loh) = loop {
        let (d, dest) = it.next()?;
        if !dest.overload && weight(dest) > 0 {
            break (d, weight(dest), dest.overhead(mode));
        }
    };
    for (d, dest) in it {
        let (doh, dw) = (dest.overhead(mode), weight(dest));
        let better = !dest.overload & weighted_less(loh, lw, doh, dw);
        least = if better { d } else { least };
        lw = if better { dw } else { lw };
        loh = if better { doh } else { loh };
    }
    Some(least)
}

/// One dest as the least-loaded search (lc, wlc, lblc, lblcr) reads it.
/// The service model keeps one per dest of a service, in an array in
/// kernel list order that it updates on every add, edit, delete, overhead
/// formula change and connection count change (`Services` in
/// `super::service`), so the search reads 16 contiguous bytes per dest
/// instead of following a `DestId` into the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packed {
    /// The dest's overhead (spec 1.2) under the configured formula.
    pub oh: u64,
    /// The weight the search uses: 0 for an OVERLOAD dest (which the
    /// search must skip; a weight-0 dest is never picked either, so the
    /// two are the same to it), else the dest's weight.
    pub w: u32,
    /// The dest.
    pub id: DestId,
}

impl Packed {
    /// The entry of dest `id` under overhead formula `mode`.
    #[inline]
    pub fn of(id: DestId, dest: &Dest, mode: Overhead) -> Packed {
        Packed { oh: dest.overhead(mode), w: if dest.overload { 0 } else { dest.weight }, id }
    }
}

/// [`least_loaded`] over a packed array: the same walk and the same
/// comparison (`loh * w(dest) > doh * w(least)`), with an OVERLOAD dest
/// reading as weight 0. Such a dest is skipped exactly as the kernel skips
/// it: it cannot be the first candidate (weight 0), and later it never
/// replaces the candidate (`loh * 0 > doh * lw` is false). Products are
/// computed in 64 bits, exact while every overhead is below 2^32 (weights
/// are `u32`); the OR of the overheads tells, and otherwise the walk is
/// redone with 128-bit products.
#[inline(always)]
fn packed_least(p: &[Packed], weight: impl Fn(u32) -> u32 + Copy) -> Option<DestId> {
    let first = p.iter().position(|e| weight(e.w) != 0)?;
    let (mut li, mut lw, mut loh) = (first, u64::from(weight(p[first].w)), p[first].oh);
    let mut all = loh;
    for (k, e) in p.iter().enumerate().skip(first + 1) {
        let (doh, dw) = (e.oh, u64::from(weight(e.w)));
        all |= doh;
        let better = loh.wrapping_mul(dw) > doh.wrapping_mul(lw);
        li = if better { k } else { li };
        lw = if better { dw } else { lw };
        loh = if better { doh } else { loh };
    }
    if all >> 32 == 0 {
        return Some(p[li].id);
    }
    // Some overhead needs more than 32 bits: 128-bit products.
    let (mut li, mut lw, mut loh) = (first, weight(p[first].w), p[first].oh);
    for (k, e) in p.iter().enumerate().skip(first + 1) {
        let dw = weight(e.w);
        if weighted_less(loh, lw, e.oh, dw) {
            (li, lw, loh) = (k, dw, e.oh);
        }
    }
    Some(p[li].id)
}

/// Which least-loaded rule a service's [`PackedDests`] keeps its
/// tournament tree for (the bound scheduler's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LeastRule {
    /// The scheduler does no least-loaded search: no tree.
    #[default]
    None,
    /// lc: weights read as 0 or 1.
    Lc,
    /// wlc, lblc, lblcr: weights as they are.
    Wlc,
}

impl LeastRule {
    /// The rule scheduler `kind` uses.
    pub fn of(kind: SchedKind) -> LeastRule {
        match kind {
            SchedKind::Lc => LeastRule::Lc,
            SchedKind::Wlc | SchedKind::Lblc | SchedKind::Lblcr => LeastRule::Wlc,
            SchedKind::Rr | SchedKind::Wrr | SchedKind::Dh | SchedKind::Sh => LeastRule::None,
        }
    }

    /// The weight the rule compares with (0: never chosen).
    #[inline(always)]
    fn weight(self, w: u32) -> u32 {
        match self {
            LeastRule::Lc => u32::from(w > 0),
            LeastRule::Wlc | LeastRule::None => w,
        }
    }
}

/// A tree node with no eligible dest below it. Overhead 1, weight 0 makes
/// the kernel's comparison itself rank it last: `1 * w(b) > oh(b) * 0`
/// holds for every eligible `b`, and nothing beats it from the other side
/// (`oh(a) * 0 > 1 * w(a)` never holds).
const INELIGIBLE: Packed = Packed { oh: 1, w: 0, id: DestId(u32::MAX) };

/// A service's dests as the least-loaded search reads them: the
/// [`Packed`] entries in kernel list order, plus a tournament tree over
/// them for the bound scheduler's rule, so a pick is one read and a change
/// of one dest costs O(log n) comparisons instead of every pick costing a
/// walk over all dests. Changed entries are only noted; the tree is
/// brought up to date by [`PackedDests::flush`] before the next pick (a
/// new connection changes its dest twice, bound then activated).
///
/// Why the tree gives exactly the kernel's pick: the kernel's walk keeps
/// the first eligible dest (weight > 0 under the rule, not OVERLOAD) and
/// replaces it by a later one only when `loh * w(d) > doh * w(least)`
/// (exact here: 128-bit products when 64 bits could overflow), i.e. when
/// the later one's `overhead / weight` is strictly smaller. That walk
/// returns the minimum of the eligible dests under the total order "ratio,
/// then list position". A minimum under a total order can be computed in
/// any grouping; each tree node holds the minimum of its range of leaves
/// (ties to the left, i.e. the earlier list position), so the root is the
/// walk's answer.
#[derive(Clone, Debug, Default)]
pub struct PackedDests {
    leaves: Vec<Packed>,
    /// Node 1 is the root, node `cap + k` is leaf k; node `j` is stored
    /// at `tree[j / 2][j % 2]`, so a node's two children are one element
    /// (one bounds check per level). Each holds its range's minimum with
    /// the weight as the rule reads it (lc: 0 or 1), or [`INELIGIBLE`].
    tree: Vec<[Packed; 2]>,
    cap: usize,
    rule: LeastRule,
    /// Leaves changed since the last flush, and a flag per leaf.
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
}

impl PackedDests {
    /// Rebuilds from the entries in list order, with a tree for `rule`.
    pub fn rebuild(&mut self, leaves: impl Iterator<Item = Packed>, rule: LeastRule) {
        self.leaves.clear();
        self.leaves.extend(leaves);
        self.rule = rule;
        self.tree.clear();
        self.dirty.clear();
        self.is_dirty.clear();
        self.is_dirty.resize(self.leaves.len(), false);
        if rule == LeastRule::None {
            self.cap = 0;
            return;
        }
        self.cap = self.leaves.len().next_power_of_two();
        self.tree.resize(self.cap.max(1), [INELIGIBLE; 2]);
        for k in 0..self.leaves.len() {
            let j = self.cap + k;
            self.tree[j / 2][j % 2] = self.node(k);
        }
        for i in (1..self.cap).rev() {
            let [l, r] = self.tree[i];
            self.tree[i / 2][i % 2] = min_node(l, r);
        }
    }

    /// The entries, in list order.
    pub fn leaves(&self) -> &[Packed] {
        &self.leaves
    }

    /// The rule the tree is kept for.
    pub fn rule(&self) -> LeastRule {
        self.rule
    }

    /// Replaces entry `k`; the tree above it is updated at the next flush.
    #[inline]
    pub fn set(&mut self, k: usize, p: Packed) {
        let Some(e) = self.leaves.get_mut(k) else { return };
        if *e == p {
            // Unchanged (e.g. a template count moved): the tree stays right.
            return;
        }
        *e = p;
        if self.rule != LeastRule::None && !self.is_dirty[k] {
            self.is_dirty[k] = true;
            self.dirty.push(k as u32);
        }
    }

    /// Brings the tree up to date with the entries changed since the last
    /// flush: for each, its leaf node, then its ancestors until one comes
    /// out unchanged (nothing above it can change because of this leaf;
    /// another changed leaf's own walk covers its path). Any order of the
    /// walks gives the rebuilt tree.
    #[inline]
    pub fn flush(&mut self) {
        while let Some(k) = self.dirty.pop() {
            self.is_dirty[k as usize] = false;
            let mut i = self.cap + k as usize;
            let leaf = self.node(k as usize);
            let tree = &mut self.tree[..];
            tree[i / 2][i % 2] = leaf;
            while i > 1 {
                i /= 2;
                let [l, r] = tree[i];
                let m = min_node(l, r);
                let node = &mut tree[i / 2][i % 2];
                if m == *node {
                    break;
                }
                *node = m;
            }
        }
    }

    /// The pick of `rule` (spec 1.6/1.7): the tree's root when it is kept
    /// for `rule` (and flushed), else a walk over the entries.
    #[inline]
    pub fn pick(&self, rule: LeastRule) -> Option<DestId> {
        if self.rule == rule && rule != LeastRule::None && self.dirty.is_empty() {
            let root = self.tree.first()?.get(1)?;
            return (root.w != 0).then_some(root.id);
        }
        packed_least(&self.leaves, |w| rule.weight(w))
    }

    /// True if the tree, once flushed, is what a rebuild gives (tests).
    #[cfg(test)]
    pub(crate) fn consistent(&self) -> bool {
        let mut flushed = self.clone();
        flushed.flush();
        let mut fresh = PackedDests::default();
        fresh.rebuild(self.leaves.iter().copied(), self.rule);
        fresh.tree == flushed.tree && flushed.is_dirty.iter().all(|&d| !d)
    }

    /// Leaf `k` as a tree node: its entry with the rule's weight, or
    /// [`INELIGIBLE`].
    #[inline(always)]
    fn node(&self, k: usize) -> Packed {
        let p = self.leaves[k];
        match self.rule.weight(p.w) {
            0 => INELIGIBLE,
            w => Packed { w, ..p },
        }
    }
}

/// The smaller of tree nodes `a` (left) and `b` (right): `b` only if
/// strictly less loaded per weight (the kernel's comparison). 64-bit
/// products when both overheads fit 32 bits (exact: weights are `u32`),
/// else 128-bit ones.
#[inline(always)]
fn min_node(a: Packed, b: Packed) -> Packed {
    let less = if (a.oh | b.oh) >> 32 == 0 {
        a.oh * u64::from(b.w) > b.oh * u64::from(a.w)
    } else {
        weighted_less(a.oh, a.w, b.oh, b.w)
    };
    if less {
        b
    } else {
        a
    }
}

/// The wlc rule (spec 1.7), shared by wlc, lblc and lblcr: the first
/// non-OVERLOAD dest with weight > 0 is the candidate; a later
/// non-OVERLOAD dest replaces it when strictly less loaded per weight
/// (a weight-0 dest never does).
#[inline]
pub(crate) fn wlc_pick(view: SvcView<'_>) -> Option<DestId> {
    match view.packed {
        Some(p) => p.pick(LeastRule::Wlc),
        None => least_loaded(view, |d| d.weight),
    }
}

/// The lc rule (spec 1.6): smallest overhead among non-OVERLOAD dests with
/// weight > 0, earliest on ties (weights otherwise ignored).
#[inline]
pub(crate) fn lc_pick(view: SvcView<'_>) -> Option<DestId> {
    match view.packed {
        Some(p) => p.pick(LeastRule::Lc),
        None => least_loaded(view, |d| u32::from(d.weight > 0)),
    }
}

/// The lblc/lblcr "locality overloaded" test (spec 1.8): the dest has more
/// active conns than its weight while some dest of the service is below
/// half its weight.
#[inline]
pub(crate) fn locality_overloaded(view: SvcView<'_>, dest: &Dest) -> bool {
    dest.activeconns > dest.weight && view.iter().any(|(_, d)| u64::from(d.activeconns) * 2 < u64::from(d.weight))
}

/// The per-service state of the bound scheduler.
#[derive(Clone, Debug)]
pub enum Scheduler {
    /// Round robin.
    Rr(rr::Rr),
    /// Weighted round robin.
    Wrr(wrr::Wrr),
    /// Least connection (stateless).
    Lc,
    /// Weighted least connection (stateless).
    Wlc,
    /// Locality-based least connection.
    Lblc(Box<lblc::Lblc>),
    /// Locality-based least connection with replication.
    Lblcr(Box<lblcr::Lblcr>),
    /// Destination hashing.
    Dh(Box<dh::Dh>),
    /// Source hashing.
    Sh(Box<sh::Sh>),
}

impl Scheduler {
    /// `init_service`: binds a scheduler of `kind` to a service whose dests
    /// are `view.order` (possibly non-empty, e.g. `ipvsadm -E -s`), at
    /// `now` (ms).
    pub fn init_service(kind: SchedKind, view: SvcView<'_>, now: u64) -> Scheduler {
        match kind {
            SchedKind::Rr => Scheduler::Rr(rr::Rr::new()),
            SchedKind::Wrr => Scheduler::Wrr(wrr::Wrr::new(view)),
            SchedKind::Lc => Scheduler::Lc,
            SchedKind::Wlc => Scheduler::Wlc,
            SchedKind::Lblc => Scheduler::Lblc(Box::new(lblc::Lblc::new(now))),
            SchedKind::Lblcr => Scheduler::Lblcr(Box::new(lblcr::Lblcr::new(now))),
            SchedKind::Dh => Scheduler::Dh(Box::new(dh::Dh::new(view))),
            SchedKind::Sh => Scheduler::Sh(Box::new(sh::Sh::new(view))),
        }
    }

    /// Which algorithm this is.
    pub fn kind(&self) -> SchedKind {
        match self {
            Scheduler::Rr(_) => SchedKind::Rr,
            Scheduler::Wrr(_) => SchedKind::Wrr,
            Scheduler::Lc => SchedKind::Lc,
            Scheduler::Wlc => SchedKind::Wlc,
            Scheduler::Lblc(_) => SchedKind::Lblc,
            Scheduler::Lblcr(_) => SchedKind::Lblcr,
            Scheduler::Dh(_) => SchedKind::Dh,
            Scheduler::Sh(_) => SchedKind::Sh,
        }
    }

    /// `add_dest`: `d` was just linked at the front of `view.order`.
    pub fn add_dest(&mut self, view: SvcView<'_>, d: DestId) {
        let _ = d;
        match self {
            Scheduler::Rr(s) => s.dest_inserted_front(),
            Scheduler::Wrr(s) => s.dest_changed(view),
            Scheduler::Dh(s) => s.assign(view),
            Scheduler::Sh(s) => s.assign(view),
            Scheduler::Lc | Scheduler::Wlc | Scheduler::Lblc(_) | Scheduler::Lblcr(_) => {}
        }
    }

    /// `del_dest`: `d` was just unlinked from position `pos` of the list
    /// (`view.order` no longer contains it).
    pub fn del_dest(&mut self, view: SvcView<'_>, d: DestId, pos: usize) {
        let _ = d;
        match self {
            Scheduler::Rr(s) => s.dest_removed(pos),
            Scheduler::Wrr(s) => s.dest_changed(view),
            Scheduler::Dh(s) => s.assign(view),
            Scheduler::Sh(s) => s.assign(view),
            Scheduler::Lc | Scheduler::Wlc | Scheduler::Lblc(_) | Scheduler::Lblcr(_) => {}
        }
    }

    /// `upd_dest`: the weight, method or thresholds of `d` were edited.
    /// dh has no such hook: its table keeps the old assignment.
    pub fn upd_dest(&mut self, view: SvcView<'_>, d: DestId) {
        let _ = d;
        match self {
            Scheduler::Wrr(s) => s.dest_changed(view),
            Scheduler::Sh(s) => s.assign(view),
            Scheduler::Rr(_)
            | Scheduler::Lc
            | Scheduler::Wlc
            | Scheduler::Lblc(_)
            | Scheduler::Lblcr(_)
            | Scheduler::Dh(_) => {}
        }
    }

    /// Picks the dest for a new connection at packet time `now` (ms);
    /// `None` = no dest available.
    #[inline]
    pub fn schedule(&mut self, view: SvcView<'_>, pkt: &PacketInfo, now: u64) -> Option<DestId> {
        match self {
            Scheduler::Rr(s) => s.schedule(view),
            Scheduler::Wrr(s) => s.schedule(view),
            Scheduler::Lc => lc::schedule(view),
            Scheduler::Wlc => wlc::schedule(view),
            Scheduler::Lblc(s) => s.schedule(view, pkt, now),
            Scheduler::Lblcr(s) => s.schedule(view, pkt, now),
            Scheduler::Dh(s) => s.schedule(view, pkt),
            Scheduler::Sh(s) => s.schedule(view, pkt),
        }
    }

    /// When the next periodic timer (lblc/lblcr GC) is due (ms), if any.
    pub fn next_timer(&self) -> Option<u64> {
        match self {
            Scheduler::Lblc(s) => Some(s.table().gc_state().2),
            Scheduler::Lblcr(s) => Some(s.table().gc_state().2),
            _ => None,
        }
    }

    /// Moves the scheduler's timers `by` milliseconds later.
    pub fn shift_timers(&mut self, by: u64) {
        match self {
            Scheduler::Lblc(s) => s.table_mut().shift_timer(by),
            Scheduler::Lblcr(s) => s.table_mut().shift_timer(by),
            _ => {}
        }
    }

    /// True when the scheduler's timers hold nothing another timer could
    /// see or change (no lblc/lblcr table entries): they only move their
    /// own clock and counter.
    pub fn is_idle(&self) -> bool {
        match self {
            Scheduler::Lblc(s) => s.table().is_empty(),
            Scheduler::Lblcr(s) => s.table().is_empty(),
            _ => true,
        }
    }

    /// Runs the periodic timers due at or before `now` (ms; lblc/lblcr GC).
    pub fn run_timers(&mut self, view: SvcView<'_>, now: u64) {
        match self {
            Scheduler::Lblc(s) => s.run_timers(view, now),
            Scheduler::Lblcr(s) => s.run_timers(view, now),
            _ => {}
        }
    }

    /// True if the scheduler's tables reference `d` (which keeps a trashed
    /// dest alive, as the kernel's dest refcount does).
    pub fn holds(&self, d: DestId) -> bool {
        match self {
            Scheduler::Lblc(s) => s.holds(d),
            Scheduler::Lblcr(s) => s.holds(d),
            // rr/wrr cursors and dh/sh tables only point at listed dests.
            _ => false,
        }
    }
}

/// Test vectors V1–V17 of spec section 7 (V18/V19 are in `service.rs`).
#[cfg(test)]
mod vectors {
    use super::*;
    use crate::ipvs::service::{
        DestConfig, IpvsConfig, Protocol, ServiceConfig, ServiceId, Services, SVC_F_SH_FALLBACK, SVC_F_SH_PORT,
    };

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

    /// Dest `name` ('A'..) lives at 10.1.1.(1 + index).
    fn addr(name: char) -> Ipv4Addr {
        Ipv4Addr::new(10, 1, 1, 1 + (name as u8 - b'A'))
    }

    fn name(s: &Services, d: DestId) -> char {
        (b'A' + (s.dest(d).addr.octets()[3] - 1)) as char
    }

    /// A service of `kind` whose dests are added one by one in `added` order.
    fn added(kind: SchedKind, config: IpvsConfig, added: &[(char, u32)]) -> (Services, ServiceId) {
        let mut s = Services::new(config);
        let id = s.add_service(&ServiceConfig::new(Protocol::Tcp, VIP, 80, kind)).unwrap();
        for &(n, w) in added {
            s.add_dest(id, &DestConfig::new(addr(n), 80, w)).unwrap();
        }
        (s, id)
    }

    /// A service whose kernel list order is `list` (added in reverse).
    fn listed(kind: SchedKind, list: &[(char, u32)]) -> (Services, ServiceId) {
        let rev: Vec<_> = list.iter().rev().copied().collect();
        added(kind, IpvsConfig::default(), &rev)
    }

    /// Like `listed`, but the scheduler is bound with the dests present
    /// (`ipvsadm -E -s kind` after the dests were added under wlc).
    fn bound(kind: SchedKind, list: &[(char, u32)]) -> (Services, ServiceId) {
        let (mut s, id) = listed(SchedKind::Wlc, list);
        s.edit_service(&ServiceConfig::new(Protocol::Tcp, VIP, 80, kind)).unwrap();
        (s, id)
    }

    fn pkt(saddr: Ipv4Addr, sport: u16, daddr: Ipv4Addr) -> PacketInfo {
        PacketInfo { saddr, sport, daddr, dport: 80, proto: 6 }
    }

    /// `n` picks as a string of names ('-' = none); no connections made.
    fn picks(s: &mut Services, id: ServiceId, n: usize) -> String {
        let p = pkt(Ipv4Addr::new(203, 0, 113, 7), 40000, VIP);
        (0..n).map(|_| s.schedule(id, &p, 0).map_or('-', |d| name(s, d))).collect()
    }

    /// `n` new connections that each become active right after scheduling
    /// (TCP SYN → SYN_RECV).
    fn conns(s: &mut Services, id: ServiceId, n: usize) -> String {
        let p = pkt(Ipv4Addr::new(203, 0, 113, 7), 40000, VIP);
        (0..n)
            .map(|_| match s.schedule(id, &p, 0) {
                Some(d) => {
                    s.conn_bound(d);
                    s.conn_activated(d);
                    name(s, d)
                }
                None => '-',
            })
            .collect()
    }

    #[test]
    fn v01_rr_list_order() {
        let (mut s, id) = added(SchedKind::Rr, IpvsConfig::default(), &[('A', 1), ('B', 1), ('C', 1)]);
        assert_eq!(picks(&mut s, id, 6), "CBACBA");
    }

    #[test]
    fn v02_rr_skips_weight_zero() {
        let (mut s, id) = listed(SchedKind::Rr, &[('A', 1), ('B', 0), ('C', 1)]);
        assert_eq!(picks(&mut s, id, 5), "ACACA");
    }

    #[test]
    fn v03_rr_delete_cursor_dest() {
        let (mut s, id) = listed(SchedKind::Rr, &[('A', 1), ('B', 1), ('C', 1)]);
        assert_eq!(picks(&mut s, id, 2), "AB");
        s.delete_dest(id, addr('B'), 80).unwrap();
        assert_eq!(picks(&mut s, id, 3), "CAC");
    }

    #[test]
    fn v04_wrr_bound_with_dests() {
        let (mut s, id) = bound(SchedKind::Wrr, &[('A', 4), ('B', 3), ('C', 2)]);
        assert_eq!(picks(&mut s, id, 27), "AABABCABC".repeat(3));
    }

    #[test]
    fn v05_wrr_startup_quirk() {
        let (mut s, id) = added(SchedKind::Wrr, IpvsConfig::default(), &[('C', 2), ('B', 3), ('A', 4)]);
        assert_eq!(picks(&mut s, id, 12), "ABCAABABCABC");
    }

    #[test]
    fn v06_wrr_gcd() {
        let (mut s, id) = bound(SchedKind::Wrr, &[('A', 4), ('B', 2)]);
        let Scheduler::Wrr(w) = s.service(id).unwrap().sched_state() else { panic!("not wrr") };
        assert_eq!(w.state(), (None, 3, 3, 2));
        assert_eq!(picks(&mut s, id, 6), "AABAAB");
    }

    #[test]
    fn v07_wrr_heavy_dest() {
        let (mut s, id) = bound(SchedKind::Wrr, &[('A', 5), ('B', 1), ('C', 1)]);
        assert_eq!(picks(&mut s, id, 21), "AAAAABC".repeat(3));
    }

    #[test]
    fn v08_wrr_weight_edit() {
        let (mut s, id) = bound(SchedKind::Wrr, &[('A', 4), ('B', 3), ('C', 2)]);
        assert_eq!(picks(&mut s, id, 4), "AABA");
        s.edit_dest(id, &DestConfig::new(addr('B'), 80, 6)).unwrap();
        let Scheduler::Wrr(w) = s.service(id).unwrap().sched_state() else { panic!("not wrr") };
        assert_eq!(w.state(), (None, 3, 5, 2));
        assert_eq!(picks(&mut s, id, 10), "ABABCBABAB");
    }

    #[test]
    fn v09_wlc_overhead_modes() {
        for (mode, expect) in [(Overhead::Classic, 'A'), (Overhead::Current, 'B')] {
            let config = IpvsConfig { overhead: mode, ..IpvsConfig::default() };
            let (mut s, id) = added(SchedKind::Wlc, config, &[('B', 1), ('A', 1)]);
            let a = s.find_dest(id, addr('A'), 80).unwrap();
            let b = s.find_dest(id, addr('B'), 80).unwrap();
            s.dest_mut(a).activeconns = 1;
            s.dest_mut(b).inactconns = 256;
            assert_eq!(picks(&mut s, id, 1), expect.to_string(), "{mode:?}");
        }
    }

    #[test]
    fn v10_lc_idle() {
        let (mut s, id) = listed(SchedKind::Lc, &[('A', 1), ('B', 1), ('C', 1)]);
        assert_eq!(conns(&mut s, id, 6), "ABCABC");
    }

    #[test]
    fn v11_wlc_two_dests() {
        let (mut s, id) = listed(SchedKind::Wlc, &[('A', 3), ('B', 1)]);
        assert_eq!(conns(&mut s, id, 8), "ABAAABAA");
    }

    #[test]
    fn v12_wlc_three_dests() {
        let (mut s, id) = listed(SchedKind::Wlc, &[('A', 1), ('B', 2), ('C', 3)]);
        assert_eq!(conns(&mut s, id, 12), "ABCCBCABCCBC");
    }

    #[test]
    fn v13_hash_values() {
        let ip = |s: &str| u32::from(s.parse::<Ipv4Addr>().unwrap());
        for (a, b8, b10) in [("10.0.0.1", 39, 159), ("192.168.1.100", 89, 357), ("172.16.5.4", 138, 552)] {
            assert_eq!(hash_32(ip(a), 8), b8, "{a}");
            assert_eq!(hash_32(ip(a), 10), b10, "{a}");
            assert_eq!(lblc::LocalityTable::<DestId>::bucket_of(ip(a)), b10 as usize);
        }
        // Through the scheduler's own hash functions.
        let arena = Default::default();
        let config = IpvsConfig::default();
        let plain = SvcView::new(&[], &arena, &config, 0);
        let port = SvcView::new(&[], &arena, &config, SVC_F_SH_PORT);
        let p = pkt(Ipv4Addr::new(10, 0, 0, 1), 40000, VIP);
        assert_eq!(sh::Sh::hash(plain, &p), 39);
        assert_eq!(sh::Sh::hash(port, &p), 203);
        // sh-port only applies to TCP, UDP and SCTP.
        assert_eq!(sh::Sh::hash(port, &PacketInfo { proto: 1, ..p }), 39);
        assert_eq!(sh::Sh::hash(port, &PacketInfo { proto: 17, ..p }), 203);
    }

    #[test]
    fn v14_sh_fallback_quirk() {
        let list = [('A', 1), ('B', 1), ('C', 1)];
        let client = pkt(Ipv4Addr::new(10, 0, 0, 1), 1234, VIP);
        for (flags, after) in [(0, None), (SVC_F_SH_FALLBACK, Some('B'))] {
            let (mut s, id) = listed(SchedKind::Wlc, &list);
            let cfg = ServiceConfig { sched_flags: flags, ..ServiceConfig::new(Protocol::Tcp, VIP, 80, SchedKind::Sh) };
            s.edit_service(&cfg).unwrap();
            let Scheduler::Sh(sh) = s.service(id).unwrap().sched_state() else { panic!("not sh") };
            let sh = sh.clone();
            let layout: String = sh.buckets().iter().map(|b| name(&s, b.unwrap())).collect();
            assert_eq!(layout, "ABC".repeat(86)[..256]);
            assert_eq!(s.schedule(id, &client, 0).map(|d| name(&s, d)), Some('A'));
            s.edit_dest(id, &DestConfig::new(addr('A'), 80, 0)).unwrap();
            let Scheduler::Sh(sh2) = s.service(id).unwrap().sched_state() else { panic!("not sh") };
            assert_eq!(sh2.buckets(), sh.buckets(), "weight 0 keeps the layout");
            // Probe order 39, 78, 79: 78 = A (weight 0), 79 = B.
            assert_eq!(s.schedule(id, &client, 0).map(|d| name(&s, d)), after, "flags {flags:#x}");
        }
    }

    #[test]
    fn v15_sh_weighted_layout() {
        let (s, id) = listed(SchedKind::Sh, &[('A', 2), ('B', 1)]);
        let Scheduler::Sh(sh) = s.service(id).unwrap().sched_state() else { panic!("not sh") };
        let layout: String = sh.buckets().iter().map(|b| name(&s, b.unwrap())).collect();
        assert_eq!(layout, "AAB".repeat(86)[..256]);
        assert_eq!(layout.matches('A').count(), 171);
        assert_eq!(layout.matches('B').count(), 85);
    }

    #[test]
    fn v16_dh_bucket() {
        let (mut s, id) = listed(SchedKind::Dh, &[('A', 1), ('B', 1), ('C', 1)]);
        let p = pkt(Ipv4Addr::new(203, 0, 113, 7), 1, Ipv4Addr::new(192, 168, 1, 100));
        assert_eq!(s.schedule(id, &p, 0).map(|d| name(&s, d)), Some('C'));
    }

    /// The packed walk (what `Services::schedule` uses) and the walk over
    /// the dests agree on random states: ties, weight 0, OVERLOAD, both
    /// formulas, overheads past 32 bits.
    #[test]
    fn packed_walk_matches_dest_walk() {
        let mut r = 0x5EED_u64;
        let mut next = |n: u64| {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r % n
        };
        for round in 0..3000 {
            let n = 1 + next(12) as usize;
            let list: Vec<(char, u32)> = (0..n).map(|k| ((b'A' + k as u8) as char, 0)).collect();
            let (mut s, id) = listed(SchedKind::Wlc, &list);
            let small = round % 4 != 0;
            for &d in s.service(id).unwrap().dests().to_vec().iter() {
                let dest = s.dest_mut(d);
                dest.weight = [0, 1, 1, 2, 3, 4, 100, i32::MAX as u32][next(8) as usize];
                let big = if small { 3 } else { 0x0200_0000 };
                dest.activeconns = [0, 1, 2, big][next(4) as usize];
                dest.inactconns = [0, 1, 255, 256, 257, 514, if small { 7 } else { u32::MAX }][next(7) as usize];
                dest.overload = next(6) == 0;
            }
            let mode = if next(2) == 0 { Overhead::Current } else { Overhead::Classic };
            s.set_config(IpvsConfig { overhead: mode, ..s.config() });
            let p = pkt(Ipv4Addr::new(203, 0, 113, 7), 40000, VIP);
            for kind in [SchedKind::Wlc, SchedKind::Lc] {
                s.edit_service(&ServiceConfig::new(Protocol::Tcp, VIP, 80, kind)).unwrap();
                let fast = s.schedule(id, &p, 0);
                let config = s.config();
                let view = SvcView::new(s.service(id).unwrap().dests(), s.dest_arena(), &config, 0);
                let slow = if kind == SchedKind::Lc { lc::schedule(view) } else { wlc::schedule(view) };
                assert_eq!(fast, slow, "round {round} {kind} {mode:?}");
            }
        }
    }

    #[test]
    fn v17_lblc_half_load_rule() {
        let (mut s, id) = listed(SchedKind::Lblc, &[('A', 1), ('B', 4)]);
        let a = s.find_dest(id, addr('A'), 80).unwrap();
        let b = s.find_dest(id, addr('B'), 80).unwrap();
        let p = pkt(Ipv4Addr::new(203, 0, 113, 7), 1, Ipv4Addr::new(8, 8, 8, 8));
        let pick = |s: &mut Services| s.schedule(id, &p, 0).map(|d| name(s, d));
        assert_eq!(pick(&mut s), Some('A'));
        s.dest_mut(a).activeconns = 2;
        s.dest_mut(b).activeconns = 2;
        assert_eq!(pick(&mut s), Some('A'), "no dest below half its weight");
        s.dest_mut(b).activeconns = 1;
        assert_eq!(pick(&mut s), Some('B'), "A locality-overloaded, remapped");
        assert_eq!(pick(&mut s), Some('B'));
        let Scheduler::Lblc(l) = s.service(id).unwrap().sched_state() else { panic!("not lblc") };
        assert_eq!(l.table().len(), 1);
        assert_eq!(l.table().get(u32::from(Ipv4Addr::new(8, 8, 8, 8))).map(|e| e.val), Some(b));
    }
}
