//! lblc — locality-based least connection (`ip_vs_lblc.c`, spec 1.8), and
//! the destination-address table with its garbage collector that lblcr
//! shares.
//!
//! Times are packet time in **milliseconds** (the clock of the connection
//! table and of [`crate::ipvs::service::Services`]): the kernel keeps
//! `lastuse`, `lastmod` and its GC timer in jiffies, so a table kept in
//! whole seconds would expire an entry up to a second early or late.

use super::{hash_32, locality_overloaded, wlc_pick, PacketInfo, SvcView};
use crate::ipvs::service::DestId;

/// `IP_VS_LBLC_TAB_BITS`.
pub const TAB_BITS: u32 = 10;
/// Number of buckets.
pub const TAB_SIZE: usize = 1 << TAB_BITS;
const TAB_MASK: usize = TAB_SIZE - 1;
/// `tbl->max_size`: above this the periodic GC starts evicting.
pub const MAX_SIZE: usize = TAB_SIZE * 16;
/// No new entry is created while the table holds this many.
pub const CREATE_CAP: usize = MAX_SIZE * 3 / 2;
/// Milliseconds per second.
const MS: u64 = 1000;
/// GC timer period (`CHECK_EXPIRE_INTERVAL`), milliseconds.
pub const CHECK_EXPIRE_INTERVAL: u64 = 60 * MS;
/// Every this many GC ticks a full expiration scan runs.
pub const COUNT_FOR_FULL_EXPIRATION: u32 = 30;
/// Idle time after which the over-size GC may evict an entry (milliseconds).
pub const ENTRY_TIMEOUT: u64 = 6 * 60 * MS;

/// One table entry: a destination address, its last use, and the
/// scheduler's value (lblc: a dest; lblcr: a dest set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<V> {
    /// Destination address (host order).
    pub addr: u32,
    /// Last time the entry was looked up or created (ms).
    pub lastuse: u64,
    /// The mapped dest or dest set.
    pub val: V,
}

/// The 1024-bucket table keyed by destination address, with the GC timer
/// state (`counter`, `rover`, next run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalityTable<V> {
    buckets: Vec<Vec<Entry<V>>>,
    entries: usize,
    counter: u32,
    rover: usize,
    next_gc: u64,
}

impl<V> LocalityTable<V> {
    /// An empty table whose GC first runs 60 s after `now` (ms).
    pub fn new(now: u64) -> LocalityTable<V> {
        LocalityTable {
            buckets: (0..TAB_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            counter: 1,
            rover: 0,
            next_gc: now + CHECK_EXPIRE_INTERVAL,
        }
    }

    /// The bucket of `addr`.
    #[inline]
    pub fn bucket_of(addr: u32) -> usize {
        hash_32(addr, TAB_BITS) as usize
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// True if the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The entry for `addr`.
    #[inline]
    pub fn get_mut(&mut self, addr: u32) -> Option<&mut Entry<V>> {
        self.buckets[Self::bucket_of(addr)].iter_mut().find(|e| e.addr == addr)
    }

    /// The entry for `addr`.
    pub fn get(&self, addr: u32) -> Option<&Entry<V>> {
        self.buckets[Self::bucket_of(addr)].iter().find(|e| e.addr == addr)
    }

    /// Removes the entry for `addr`.
    pub fn remove(&mut self, addr: u32) {
        let bucket = &mut self.buckets[Self::bucket_of(addr)];
        if let Some(i) = bucket.iter().position(|e| e.addr == addr) {
            bucket.swap_remove(i);
            self.entries -= 1;
        }
    }

    /// Adds an entry (the caller checked `addr` is absent) unless the
    /// table holds [`CREATE_CAP`] entries; returns whether it was added.
    pub fn insert(&mut self, addr: u32, val: V, now: u64) -> bool {
        if self.entries >= CREATE_CAP {
            return false;
        }
        self.buckets[Self::bucket_of(addr)].push(Entry { addr, lastuse: now, val });
        self.entries += 1;
        true
    }

    /// All entries (bucket order; order within a bucket is unspecified).
    pub fn iter(&self) -> impl Iterator<Item = &Entry<V>> {
        self.buckets.iter().flatten()
    }

    /// Moves the GC timer `by` milliseconds later ([`crate::ipvs::service::Services::start_clock`]).
    pub fn shift_timer(&mut self, by: u64) {
        self.next_gc = self.next_gc.saturating_add(by);
    }

    /// `(counter, rover, next GC time)`, for tests.
    pub fn gc_state(&self) -> (u32, usize, u64) {
        (self.counter, self.rover, self.next_gc)
    }

    /// Runs every GC tick due at or before `now` (ms), each at its own
    /// time; `expiration` is the full check's idle limit in ms.
    /// A tick of an empty table changes nothing but the counter, which then
    /// goes round 1..=[`COUNT_FOR_FULL_EXPIRATION`]; whole rounds of such
    /// ticks are skipped, so a long gap in packet time (a capture whose
    /// first packet is stamped decades after the epoch) costs at most one
    /// round of ticks, not one tick per minute of the gap.
    pub fn run_timers(&mut self, now: u64, expiration: u64) {
        let round = u64::from(COUNT_FOR_FULL_EXPIRATION) * CHECK_EXPIRE_INTERVAL;
        while self.next_gc <= now {
            if self.entries == 0 {
                self.next_gc += (now - self.next_gc) / round * round;
            }
            let t = self.next_gc;
            self.check_expire(t, expiration);
            self.next_gc = t + CHECK_EXPIRE_INTERVAL;
        }
    }

    /// One GC tick (`ip_vs_lblc_check_expire`).
    fn check_expire(&mut self, now: u64, expiration: u64) {
        if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
            self.full_check(now, expiration);
            self.counter = 1;
            return;
        }
        if self.entries <= MAX_SIZE {
            self.counter += 1;
            return;
        }
        let mut goal = ((self.entries - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2) as i64;
        let mut j = self.rover;
        for _ in 0..TAB_SIZE {
            j = (j + 1) & TAB_MASK;
            let before = self.buckets[j].len();
            self.buckets[j].retain(|e| now < e.lastuse + ENTRY_TIMEOUT);
            let removed = before - self.buckets[j].len();
            self.entries -= removed;
            goal -= removed as i64;
            if goal <= 0 {
                break;
            }
        }
        self.rover = j;
    }

    /// Deletes every entry idle for at least `expiration` ms
    /// (`ip_vs_lblc_full_check`: kept while `now` is before
    /// `lastuse + expiration`).
    fn full_check(&mut self, now: u64, expiration: u64) {
        let mut j = self.rover;
        for _ in 0..TAB_SIZE {
            j = (j + 1) & TAB_MASK;
            let before = self.buckets[j].len();
            self.buckets[j].retain(|e| now < e.lastuse + expiration);
            self.entries -= before - self.buckets[j].len();
        }
        self.rover = j;
    }
}

/// lblc state: destination address → dest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lblc {
    table: LocalityTable<DestId>,
}

impl Lblc {
    /// `init_service`: empty table, GC timer armed 60 s after `now` (ms).
    pub fn new(now: u64) -> Lblc {
        Lblc { table: LocalityTable::new(now) }
    }

    /// The table.
    pub fn table(&self) -> &LocalityTable<DestId> {
        &self.table
    }

    /// The table, to move its timer.
    pub fn table_mut(&mut self) -> &mut LocalityTable<DestId> {
        &mut self.table
    }

    /// Runs the GC ticks due at or before `now`.
    pub fn run_timers(&mut self, view: SvcView<'_>, now: u64) {
        self.table.run_timers(now, view.lblc_expiration);
    }

    /// True if an entry maps to `d`.
    pub fn holds(&self, d: DestId) -> bool {
        self.table.iter().any(|e| e.val == d)
    }

    /// Keeps a known destination address on its dest while that dest is
    /// available, has weight > 0 and is not locality-overloaded (the
    /// OVERLOAD flag is not checked on this path); otherwise picks with the
    /// wlc rule and (re)maps the address.
    #[inline]
    pub fn schedule(&mut self, view: SvcView<'_>, pkt: &PacketInfo, now: u64) -> Option<DestId> {
        let addr = u32::from(pkt.daddr);
        if let Some(en) = self.table.get_mut(addr) {
            en.lastuse = now;
            let dest = view.dest(en.val);
            if dest.available && dest.weight > 0 && !locality_overloaded(view, dest) {
                return Some(en.val);
            }
        }
        let d = wlc_pick(view)?;
        match self.table.get_mut(addr) {
            Some(en) if en.val == d => {}
            found => {
                if found.is_some() {
                    self.table.remove(addr);
                }
                // At the cap the pick is still used, just not remembered.
                self.table.insert(addr, d, now);
            }
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One call across a long gap in packet time leaves the table exactly as
    /// one call per GC tick does (whole rounds of an empty table's ticks are
    /// skipped; a full table is collected tick by tick until it is empty).
    #[test]
    fn a_long_gap_ends_as_tick_by_tick() {
        const EXPIRATION: u64 = 24 * 60 * 60 * MS;
        // (entries, ticks run before the gap, the gap in ms)
        let cases = [
            (0, 0, 10 * 86_400 * MS),
            (0, 7, (10 * 86_400 + 59) * MS + 999),
            (0, 29, 30 * 60 * MS),
            (0, 3, 30 * 60 * MS - 1),
            (3, 0, 3 * 86_400 * MS + 1),
            (MAX_SIZE as u32 + 500, 11, (2 * 86_400 + 7) * MS + 250),
        ];
        for (entries, before, gap) in cases {
            let make = || {
                let mut t = LocalityTable::<u32>::new(0);
                for a in 0..entries {
                    t.insert(a.wrapping_mul(2_654_435_761), a, u64::from(a % 600_000));
                }
                for _ in 0..before {
                    let next = t.gc_state().2;
                    t.run_timers(next, EXPIRATION);
                }
                t
            };
            let (mut fast, mut slow) = (make(), make());
            let now = fast.gc_state().2 + gap;
            fast.run_timers(now, EXPIRATION);
            while slow.gc_state().2 <= now {
                let next = slow.gc_state().2;
                slow.run_timers(next, EXPIRATION);
            }
            let case = (entries, before, gap);
            assert_eq!(fast.gc_state(), slow.gc_state(), "{case:?}");
            assert_eq!(fast.len(), slow.len(), "{case:?}");
        }
    }

    /// The full check keeps an entry used at `t` while the check runs
    /// before `t + expiration` and deletes it from then on, to the
    /// millisecond (`time_before(now, lastuse + expiration)`): an entry used
    /// 1 ms after the check's whole second is kept by a check at
    /// `t + expiration − 1 ms` and deleted by one at `t + expiration + 1 ms`.
    #[test]
    fn full_check_expires_to_the_millisecond() {
        const EXPIRATION: u64 = 600 * MS;
        let round = u64::from(COUNT_FOR_FULL_EXPIRATION) * CHECK_EXPIRE_INTERVAL;
        // The 30th tick (the first full check) runs at `round`; entries are
        // used so that it falls 1 ms before, at, and 1 ms after expiry.
        for (used, kept) in
            [(round - EXPIRATION + 1, true), (round - EXPIRATION, false), (round - EXPIRATION - 1, false)]
        {
            let mut t = LocalityTable::<u32>::new(0);
            t.insert(7, 1, used);
            t.run_timers(round - 1, EXPIRATION);
            assert_eq!(t.len(), 1, "no full check before {round} ms");
            t.run_timers(round, EXPIRATION);
            assert_eq!(t.len() == 1, kept, "entry used at {used} ms, full check at {round} ms");
        }
    }

    /// The over-size collection evicts entries idle for 6 minutes to the
    /// millisecond (`ENTRY_TIMEOUT`), not to the second.
    #[test]
    fn oversize_collection_uses_milliseconds() {
        let start = 3600 * MS;
        let mut t = LocalityTable::<u32>::new(start);
        // The first tick (60 s in) is an over-size one: MAX_SIZE + 1 fresh
        // entries, one idle for ENTRY_TIMEOUT − 1 ms and one for ENTRY_TIMEOUT.
        let tick = start + CHECK_EXPIRE_INTERVAL;
        for a in 0..=MAX_SIZE as u32 {
            t.insert(a.wrapping_mul(2_654_435_761) ^ 1, a, tick + 1);
        }
        t.insert(0xdead_beef, 0, tick + 1 - ENTRY_TIMEOUT);
        t.insert(0xfeed_f00d, 0, tick - ENTRY_TIMEOUT);
        t.run_timers(tick, 86_400 * MS);
        assert!(t.get(0xdead_beef).is_some(), "idle 6 min − 1 ms: kept");
        assert!(t.get(0xfeed_f00d).is_none(), "idle 6 min: evicted");
    }
}
