//! The index of tables with `ternary` or `range` keys (and tables with more
//! than one `lpm` key): entries ranked by priority, grouped by mask pattern
//! ("tuple space search").
//!
//! Every entry has a mask per key component: all ones for exact, the prefix
//! mask for lpm, its mask for ternary, and zero for range (range bounds are
//! checked separately). Entries with the same mask tuple form a group; a
//! group is a hash map from the masked key tuple to a bucket of entries
//! sorted by rank. A lookup probes the groups in order of their best rank
//! and stops as soon as the next group's best entry cannot beat the match
//! found so far. In a bucket the first entry whose range components contain
//! the key wins, so a table of range keys only is one group, one bucket,
//! scanned in priority order.
//!
//! Cost: one hash probe per mask pattern that could still win, plus the
//! range checks. Tables with a few mask patterns (the usual case) stay fast
//! however many entries they hold.

use super::keymap::KeyMap;

/// The order of entries: priority (smaller wins), then insertion sequence
/// (earlier wins). Unique per entry because sequences are.
pub(crate) type Rank = (u32, u64);

/// Mask pattern → (masked key tuple → entries by rank).
#[derive(Clone, Debug)]
pub(crate) struct TernaryIndex {
    widths: Box<[u16]>,
    /// Sorted by each group's best rank.
    groups: Vec<Group>,
}

#[derive(Clone, Debug)]
struct Group {
    /// The smallest rank in the group.
    best: Rank,
    map: KeyMap<Vec<(Rank, u32)>>,
}

impl TernaryIndex {
    /// An empty index for keys of these widths.
    pub(crate) fn new(widths: &[u16]) -> Self {
        TernaryIndex { widths: widths.into(), groups: Vec::new() }
    }

    /// The best-ranked entry whose masked values equal `keys`' and for
    /// which `ranges_match(handle)` holds (the caller checks range
    /// components there; `|_| true` without range keys).
    #[inline]
    pub(crate) fn lookup(&self, keys: &[u128], ranges_match: impl Fn(u32) -> bool) -> Option<u32> {
        let mut best: Option<(Rank, u32)> = None;
        for g in &self.groups {
            if let Some((br, _)) = best {
                if g.best >= br {
                    break;
                }
            }
            let Some(bucket) = g.map.get(keys) else { continue };
            for &(r, h) in bucket {
                if best.is_some_and(|(br, _)| r >= br) {
                    break;
                }
                if ranges_match(h) {
                    best = Some((r, h));
                    break;
                }
            }
        }
        best.map(|(_, h)| h)
    }

    /// The entries stored with exactly this mask tuple and these masked
    /// values, best first (for duplicate checks).
    pub(crate) fn bucket(&self, masks: &[u128], values: &[u128]) -> &[(Rank, u32)] {
        self.groups
            .iter()
            .find(|g| g.map.masks() == masks)
            .and_then(|g| g.map.get(values))
            .map_or(&[], |b| b.as_slice())
    }

    /// Adds an entry. `masks` within the key widths; zero for range components.
    pub(crate) fn insert(&mut self, masks: &[u128], values: &[u128], rank: Rank, handle: u32) {
        let gi = match self.groups.iter().position(|g| g.map.masks() == masks) {
            Some(i) => i,
            None => {
                self.groups.push(Group { best: rank, map: KeyMap::new(masks.into(), &self.widths) });
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[gi];
        match g.map.get_mut(values) {
            Some(bucket) => {
                let pos = bucket.partition_point(|&(r, _)| r < rank);
                bucket.insert(pos, (rank, handle));
            }
            None => {
                g.map.insert(values, vec![(rank, handle)]);
            }
        }
        g.best = g.best.min(rank);
        self.sort_groups();
    }

    /// Removes entry `handle`, stored with these masks and values.
    pub(crate) fn remove(&mut self, masks: &[u128], values: &[u128], handle: u32) {
        let Some(gi) = self.groups.iter().position(|g| g.map.masks() == masks) else { return };
        let g = &mut self.groups[gi];
        let emptied = match g.map.get_mut(values) {
            Some(bucket) => {
                bucket.retain(|&(_, h)| h != handle);
                bucket.is_empty()
            }
            None => false,
        };
        if emptied {
            g.map.remove(values);
        }
        if g.map.is_empty() {
            self.groups.remove(gi);
        } else {
            g.best = g.map.values().filter_map(|b| b.first().map(|&(r, _)| r)).min().unwrap_or(g.best);
            self.sort_groups();
        }
    }

    /// The number of mask patterns in use.
    #[cfg(test)]
    pub(crate) fn groups(&self) -> usize {
        self.groups.len()
    }

    fn sort_groups(&mut self) {
        self.groups.sort_by_key(|g| g.best);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FF: u128 = 0xff;

    #[test]
    fn smallest_priority_wins_across_masks() {
        // One bit<8> ternary key.
        let mut x = TernaryIndex::new(&[8]);
        x.insert(&[0xf0], &[0x10], (10, 0), 0); // 0x1? prio 10
        x.insert(&[FF], &[0x12], (20, 1), 1); // 0x12 prio 20
        x.insert(&[0], &[0], (5, 2), 2); // wildcard prio 5
        assert_eq!(x.groups(), 3);
        // The wildcard has the best priority: it wins everywhere.
        assert_eq!(x.lookup(&[0x12], |_| true), Some(2));
        x.remove(&[0], &[0], 2);
        assert_eq!(x.lookup(&[0x12], |_| true), Some(0), "prio 10 beats the exact prio 20");
        assert_eq!(x.lookup(&[0x13], |_| true), Some(0));
        assert_eq!(x.lookup(&[0x23], |_| true), None);
        x.remove(&[0xf0], &[0x10], 0);
        assert_eq!(x.lookup(&[0x12], |_| true), Some(1));
        assert_eq!(x.lookup(&[0x13], |_| true), None);
    }

    #[test]
    fn ties_go_to_the_earliest_inserted() {
        let mut x = TernaryIndex::new(&[8]);
        x.insert(&[0xf0], &[0x10], (1, 5), 5);
        x.insert(&[0x0f], &[0x02], (1, 3), 3);
        x.insert(&[0xf0], &[0x10], (1, 4), 4);
        assert_eq!(x.lookup(&[0x12], |_| true), Some(3));
        assert_eq!(x.lookup(&[0x13], |_| true), Some(4));
        assert_eq!(x.bucket(&[0xf0], &[0x10]), &[((1, 4), 4), ((1, 5), 5)]);
    }

    #[test]
    fn range_checks_run_in_rank_order() {
        // One range component: mask 0, bounds checked by the caller.
        let ranges = [(0u128, 1023u128), (80, 80), (1024, 65535)];
        let mut x = TernaryIndex::new(&[16]);
        x.insert(&[0], &[0], (2, 0), 0);
        x.insert(&[0], &[0], (1, 1), 1);
        x.insert(&[0], &[0], (3, 2), 2);
        let check = |k: u128| move |h: u32| ranges[h as usize].0 <= k && k <= ranges[h as usize].1;
        assert_eq!(x.lookup(&[80], check(80)), Some(1));
        assert_eq!(x.lookup(&[81], check(81)), Some(0));
        assert_eq!(x.lookup(&[8080], check(8080)), Some(2));
    }

    #[test]
    fn early_stop_does_not_skip_better_groups() {
        // Groups are ordered by their best rank, not by when they were made.
        let mut x = TernaryIndex::new(&[8, 8]);
        x.insert(&[FF, 0], &[1, 0], (50, 0), 0);
        x.insert(&[0, FF], &[0, 2], (7, 1), 1);
        x.insert(&[FF, FF], &[1, 2], (9, 2), 2);
        assert_eq!(x.lookup(&[1, 2], |_| true), Some(1));
        assert_eq!(x.lookup(&[1, 3], |_| true), Some(0));
    }
}
