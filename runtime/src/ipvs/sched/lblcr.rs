//! lblcr — locality-based least connection with replication
//! (`ip_vs_lblcr.c`, spec 1.9).

use super::lblc::LocalityTable;
use super::{locality_overloaded, weighted_less, wlc_pick, PacketInfo, SvcView};
use crate::ipvs::service::DestId;

/// The dest set of one destination address: members newest first, and the
/// time of the last insertion or removal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestSet {
    /// Members, newest-inserted first.
    pub members: Vec<DestId>,
    /// Last modification time (ms).
    pub lastmod: u64,
}

impl DestSet {
    /// Inserts `d` at the front unless it is a member.
    fn insert(&mut self, d: DestId, now: u64) {
        if !self.members.contains(&d) {
            self.members.insert(0, d);
            self.lastmod = now;
        }
    }

    /// Removes `d`.
    fn erase(&mut self, d: DestId, now: u64) {
        if let Some(i) = self.members.iter().position(|&m| m == d) {
            self.members.remove(i);
            self.lastmod = now;
        }
    }

    /// `ip_vs_dest_set_min`: the weighted least loaded available,
    /// non-OVERLOAD member with weight > 0.
    fn min(&self, view: SvcView<'_>) -> Option<DestId> {
        let mode = view.overhead;
        let mut it = self.members.iter().copied();
        let (mut least, mut lw, mut loh) = loop {
            let d = it.next()?;
            let dest = view.dest(d);
            if !dest.overload && dest.weight > 0 && dest.available {
                break (d, dest.weight, dest.overhead(mode));
            }
        };
        for d in it {
            let dest = view.dest(d);
            if dest.overload {
                continue;
            }
            let doh = dest.overhead(mode);
            if weighted_less(loh, lw, doh, dest.weight) && dest.available {
                least = d;
                lw = dest.weight;
                loh = doh;
            }
        }
        Some(least)
    }

    /// `ip_vs_dest_set_max`: the weighted most loaded member with weight
    /// > 0 (flags and availability ignored).
    fn max(&self, view: SvcView<'_>) -> Option<DestId> {
        let mode = view.overhead;
        let mut it = self.members.iter().copied();
        let (mut most, mut mw, mut moh) = loop {
            let d = it.next()?;
            let dest = view.dest(d);
            if dest.weight > 0 {
                break (d, dest.weight, dest.overhead(mode));
            }
        };
        for d in it {
            let dest = view.dest(d);
            let doh = dest.overhead(mode);
            // moh/mw < doh/dw ⇔ moh*dw < doh*mw
            if dest.weight > 0 && weighted_less(doh, dest.weight, moh, mw) {
                most = d;
                mw = dest.weight;
                moh = doh;
            }
        }
        Some(most)
    }
}

/// lblcr state: destination address → dest set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lblcr {
    table: LocalityTable<DestSet>,
}

impl Lblcr {
    /// `init_service`: empty table, GC timer armed 60 s after `now` (ms).
    pub fn new(now: u64) -> Lblcr {
        Lblcr { table: LocalityTable::new(now) }
    }

    /// The table.
    pub fn table(&self) -> &LocalityTable<DestSet> {
        &self.table
    }

    /// The table, to move its timer.
    pub fn table_mut(&mut self) -> &mut LocalityTable<DestSet> {
        &mut self.table
    }

    /// Runs the GC ticks due at or before `now`.
    pub fn run_timers(&mut self, view: SvcView<'_>, now: u64) {
        self.table.run_timers(now, view.lblcr_expiration);
    }

    /// True if some set contains `d`.
    pub fn holds(&self, d: DestId) -> bool {
        self.table.iter().any(|e| e.val.members.contains(&d))
    }

    /// Spec 1.9 `schedule` at packet time `now` (ms).
    #[inline]
    pub fn schedule(&mut self, view: SvcView<'_>, pkt: &PacketInfo, now: u64) -> Option<DestId> {
        let addr = u32::from(pkt.daddr);
        if let Some(en) = self.table.get_mut(addr) {
            en.lastuse = now;
            let set = &mut en.val;
            let dest = set.min(view);
            // Replication trimming: at most one removal per call.
            if set.members.len() > 1 && now > set.lastmod + view.lblcr_expiration {
                if let Some(m) = set.max(view) {
                    set.erase(m, now);
                }
            }
            if let Some(d) = dest {
                if !locality_overloaded(view, view.dest(d)) {
                    return Some(d);
                }
            }
            let d = wlc_pick(view)?;
            set.insert(d, now);
            return Some(d);
        }
        let d = wlc_pick(view)?;
        self.table.insert(addr, DestSet { members: vec![d], lastmod: now }, now);
        Some(d)
    }
}
