//! `pmtu_cache(size)`: path MTUs an ICMP "fragmentation needed" taught the
//! program, by destination address, as Linux's FIB nexthop exceptions hold
//! them (net/ipv4/route.c: `__ip_rt_update_pmtu`, `update_or_create_fnhe`,
//! `ipv4_mtu`).
//!
//! The rules, in the kernel's order:
//! - a report only lowers the path MTU: one above the current path MTU (the
//!   remembered one, else the device's) changes nothing;
//! - a report under `ip_rt_min_pmtu` (552) stores min(current, 552) and
//!   *locks* the entry: later reports leave it alone until it expires;
//! - every stored report expires `ip_rt_mtu_expires` (600 s) later, by
//!   packet time; at exactly that time the path MTU is the device's again;
//! - a report equal to the remembered MTU only re-arms the 600 s when less
//!   than half of them is left.
//!
//! What IPVS reports to the client for a tunnel ("fragmentation needed"
//! about its IP-in-IP packet, `ip_vs_in_icmp`) is `dst_mtu` of the route
//! the real server's last tunnel packet used (`dest->dest_dst`), read just
//! after the update. That route follows an exception only once a tunnel
//! packet was routed after the exception was made (a new exception marks
//! the cached route stale; the next packet's lookup binds the new one, and
//! updates of a bound exception reach the route in place). So the entry
//! keeps `bound`: set by [`PmtuCache::lookup`] (the tunnel path), cleared
//! when an entry is made anew; [`PmtuCache::update`] returns the path MTU
//! a bound entry gives after the update, else the device's MTU: the first
//! "fragmentation needed" is relayed with the *old* route MTU.
//!
//! Bounded: `size` entries. When full, a new entry replaces the one updated
//! longest ago (Linux evicts the oldest exception of a hash bucket; here
//! the whole table is one bucket); each eviction is counted.

use std::collections::{BTreeMap, HashMap};

/// `ip_rt_min_pmtu`: a lower report is stored as this (locked).
pub const MIN_PMTU: u16 = 552;
/// `ip_rt_mtu_expires`: how long a report is remembered, in ns.
pub const MTU_EXPIRES_NS: u64 = 600_000_000_000;
/// The most entries one instance may hold (the checker refuses more).
pub const MAX_ENTRIES: u64 = p4lite_compiler::abi::MAX_PMTU_ENTRIES;

/// One remembered path MTU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The path MTU.
    pub mtu: u16,
    /// Packet time (ns) from which it no longer applies.
    pub expires_ns: u64,
    /// Stored from a report under [`MIN_PMTU`]: later reports are ignored.
    pub locked: bool,
    /// A lookup (a tunnel packet) has seen it since it was made.
    pub bound: bool,
    /// Its key in the eviction order.
    order: (u64, u64),
}

/// What an instance counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PmtuStats {
    /// `update` calls.
    pub updates: u64,
    /// Updates that stored a path MTU (a new entry, a lower one, a re-arm).
    pub stored: u64,
    /// Updates that changed nothing (not lower, locked, or equal and fresh).
    pub ignored: u64,
    /// Stored reports under [`MIN_PMTU`] (clamped and locked).
    pub clamped: u64,
    /// Entries dropped to make room for a new one.
    pub evicted: u64,
    /// Entries found expired (and dropped).
    pub expired: u64,
}

/// A `pmtu_cache` instance.
#[derive(Clone, Debug)]
pub struct PmtuCache {
    /// The instance's qualified name (`LbIngress.pmtus`).
    pub name: String,
    capacity: usize,
    entries: HashMap<u32, Entry>,
    /// (time of the last store, sequence) -> address: the eviction order.
    order: BTreeMap<(u64, u64), u32>,
    seq: u64,
    stats: PmtuStats,
}

impl PmtuCache {
    /// An empty cache of at most `capacity` entries.
    pub fn new(name: &str, capacity: usize) -> PmtuCache {
        PmtuCache {
            name: name.to_string(),
            capacity,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
            stats: PmtuStats::default(),
        }
    }

    /// The entry for `daddr` if it has not expired at `now_ns`; an expired
    /// one is dropped and counted.
    fn live(&mut self, daddr: u32, now_ns: u64) -> Option<Entry> {
        let e = *self.entries.get(&daddr)?;
        if now_ns < e.expires_ns {
            return Some(e);
        }
        self.remove(daddr);
        self.stats.expired += 1;
        None
    }

    /// Drops the entry of `daddr`.
    fn remove(&mut self, daddr: u32) {
        if let Some(e) = self.entries.remove(&daddr) {
            self.order.remove(&e.order);
        }
    }

    /// A report of `mtu` for `daddr` at `now_ns`, the device MTU of the
    /// route there being `dev_mtu` (`__ip_rt_update_pmtu`; module docs).
    /// Returns the MTU IPVS relays: the path MTU after the update when the
    /// entry was bound before it, else `dev_mtu`.
    pub fn update(&mut self, daddr: u32, mtu: u16, dev_mtu: u16, now_ns: u64) -> u16 {
        self.stats.updates += 1;
        let cur = self.live(daddr, now_ns);
        let old = cur.map_or(dev_mtu, |e| e.mtu.min(dev_mtu));
        let store = match cur {
            Some(e) if e.locked => None,
            _ if old < mtu => None,
            _ => {
                let (mtu, lock) = if mtu < MIN_PMTU { (old.min(MIN_PMTU), true) } else { (mtu, false) };
                let fresh = |e: Entry| now_ns < e.expires_ns.saturating_sub(MTU_EXPIRES_NS / 2);
                match cur {
                    Some(e) if e.mtu == mtu && !lock && fresh(e) => None,
                    _ => Some((mtu, lock)),
                }
            }
        };
        match store {
            None => self.stats.ignored += 1,
            Some((mtu, locked)) => {
                self.stats.stored += 1;
                if locked {
                    self.stats.clamped += 1;
                }
                self.store(daddr, mtu, locked, cur.is_some_and(|e| e.bound), now_ns);
            }
        }
        match self.entries.get(&daddr) {
            Some(e) if e.bound => e.mtu.min(dev_mtu),
            _ => dev_mtu,
        }
    }

    /// Stores `mtu` for `daddr` (a new entry when `daddr` has none, evicting
    /// the one stored longest ago when full; nothing when the capacity is 0).
    fn store(&mut self, daddr: u32, mtu: u16, locked: bool, bound: bool, now_ns: u64) {
        if self.capacity == 0 {
            return;
        }
        self.remove(daddr);
        if self.entries.len() >= self.capacity {
            if let Some((_, victim)) = self.order.pop_first() {
                self.entries.remove(&victim);
                self.stats.evicted += 1;
            }
        }
        self.seq += 1;
        let order = (now_ns, self.seq);
        let expires_ns = now_ns.saturating_add(MTU_EXPIRES_NS);
        self.entries.insert(daddr, Entry { mtu, expires_ns, locked, bound, order });
        self.order.insert(order, daddr);
    }

    /// The path MTU to `daddr` at `now_ns` for a packet routed there over a
    /// device of MTU `dev_mtu`: min(`dev_mtu`, the remembered MTU while it
    /// has not expired). The entry is bound from then on (module docs).
    pub fn lookup(&mut self, daddr: u32, dev_mtu: u16, now_ns: u64) -> u16 {
        if self.entries.is_empty() {
            return dev_mtu;
        }
        match self.live(daddr, now_ns) {
            Some(e) => {
                if let Some(e) = self.entries.get_mut(&daddr) {
                    e.bound = true;
                }
                e.mtu.min(dev_mtu)
            }
            None => dev_mtu,
        }
    }

    /// The entry of `daddr`, expired or not (control plane, tests).
    pub fn get(&self, daddr: u32) -> Option<Entry> {
        self.entries.get(&daddr).copied()
    }

    /// The number of entries held (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most entries it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// What it counted.
    pub fn stats(&self) -> PmtuStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const RS: u32 = 0xC000_0232;

    #[test]
    fn lowers_only_and_first_relay_reports_the_old_route_mtu() {
        let mut c = PmtuCache::new("p", 16);
        assert_eq!(c.lookup(RS, 1500, 0), 1500, "nothing learnt");
        // First report: stored, but IPVS's cached route is the old one.
        assert_eq!(c.update(RS, 1400, 1500, S), 1500);
        assert_eq!(c.get(RS).map(|e| (e.mtu, e.bound, e.locked)), Some((1400, false, false)));
        // A second one before any tunnel packet: still the old route.
        assert_eq!(c.update(RS, 1300, 1500, 2 * S), 1500);
        // A tunnel packet binds the route to the exception ...
        assert_eq!(c.lookup(RS, 1500, 3 * S), 1300);
        // ... so later reports are relayed with the new path MTU.
        assert_eq!(c.update(RS, 1200, 1500, 4 * S), 1200);
        // Higher: ignored, the current path MTU reported.
        assert_eq!(c.update(RS, 1450, 1500, 5 * S), 1200);
        assert_eq!(c.get(RS).map(|e| e.mtu), Some(1200));
        // The device MTU bounds what a lookup gives.
        assert_eq!(c.lookup(RS, 1000, 6 * S), 1000);
        assert_eq!(c.lookup(RS + 1, 1500, 6 * S), 1500, "another address");
        let st = c.stats();
        assert_eq!((st.updates, st.stored, st.ignored), (4, 3, 1));
    }

    #[test]
    fn clamps_to_552_and_locks() {
        let mut c = PmtuCache::new("p", 16);
        c.update(RS, 80, 1500, 0);
        assert_eq!(c.get(RS).map(|e| (e.mtu, e.locked)), Some((552, true)));
        assert_eq!(c.lookup(RS, 1500, S), 552);
        // Locked: a later (even lower, even valid) report changes nothing.
        assert_eq!(c.update(RS, 560, 1500, 2 * S), 552);
        assert_eq!(c.get(RS).map(|e| e.expires_ns), Some(MTU_EXPIRES_NS), "not re-armed");
        // A zero MTU (old routers) clamps the same way; a device under 552 wins.
        let mut d = PmtuCache::new("d", 16);
        d.update(RS, 0, 500, 0);
        assert_eq!(d.get(RS).map(|e| (e.mtu, e.locked)), Some((500, true)));
        assert_eq!(c.stats().clamped, 1);
        assert_eq!(c.stats().ignored, 1);
    }

    #[test]
    fn expires_at_exactly_600_s_of_packet_time() {
        let mut c = PmtuCache::new("p", 16);
        let t0 = 7 * S;
        c.update(RS, 1400, 1500, t0);
        assert_eq!(c.lookup(RS, 1500, t0 + MTU_EXPIRES_NS - 1), 1400);
        assert_eq!(c.lookup(RS, 1500, t0 + MTU_EXPIRES_NS), 1500);
        assert!(c.get(RS).is_none(), "dropped once found expired");
        assert_eq!(c.stats().expired, 1);
        // An expired bound entry: the next report makes a new, unbound one.
        c.update(RS, 1400, 1500, 0);
        c.lookup(RS, 1500, 1);
        assert_eq!(c.update(RS, 1300, 1500, MTU_EXPIRES_NS + 5), 1500);
        assert_eq!(c.get(RS).map(|e| (e.mtu, e.bound)), Some((1300, false)));
    }

    #[test]
    fn equal_report_rearms_only_in_the_second_half() {
        let mut c = PmtuCache::new("p", 16);
        c.update(RS, 1400, 1500, 0);
        c.update(RS, 1400, 1500, 300 * S - 1);
        assert_eq!(c.get(RS).map(|e| e.expires_ns), Some(MTU_EXPIRES_NS), "fresh: ignored");
        c.update(RS, 1400, 1500, 300 * S);
        assert_eq!(c.get(RS).map(|e| e.expires_ns), Some(900 * S), "re-armed");
        assert_eq!(c.stats().ignored, 1);
    }

    #[test]
    fn a_full_table_evicts_the_entry_stored_longest_ago() {
        let mut c = PmtuCache::new("p", 2);
        c.update(1, 1400, 1500, 0);
        c.update(2, 1400, 1500, S);
        c.update(1, 1300, 1500, 2 * S); // 1 is now the newer
        c.update(3, 1400, 1500, 3 * S); // evicts 2
        assert!(c.get(2).is_none());
        assert_eq!(c.get(1).map(|e| e.mtu), Some(1300));
        assert_eq!(c.get(3).map(|e| e.mtu), Some(1400));
        assert_eq!((c.len(), c.stats().evicted), (2, 1));
        // Capacity 0 remembers nothing.
        let mut z = PmtuCache::new("z", 0);
        assert_eq!(z.update(1, 1400, 1500, 0), 1500);
        assert_eq!(z.lookup(1, 1500, 1), 1500);
        assert!(z.is_empty());
    }
}
