//! The index of tables with one `lpm` key (and any number of `exact` keys):
//! one hash map per prefix length in use, keyed by the key tuple with the
//! lpm component masked to that length. A lookup probes the maps from the
//! longest prefix down and stops at the first hit, so its cost is one hash
//! probe per distinct prefix length present (at most width + 1).

use super::exact::width_mask;
use super::keymap::KeyMap;

/// Prefix length → (masked key tuple → entry handle).
#[derive(Clone, Debug)]
pub(crate) struct LpmIndex {
    /// Which key component is the lpm one.
    lpm: usize,
    widths: Box<[u16]>,
    /// Only lengths with entries, longest first.
    groups: Vec<LpmGroup>,
}

#[derive(Clone, Debug)]
struct LpmGroup {
    len: u16,
    map: KeyMap<u32>,
}

impl LpmIndex {
    /// An empty index; component `lpm` of `widths` is the lpm key.
    pub(crate) fn new(lpm: usize, widths: &[u16]) -> Self {
        LpmIndex { lpm, widths: widths.into(), groups: Vec::new() }
    }

    /// The entry with the longest prefix matching `keys` (whose other
    /// components equal the entry's exact values).
    #[inline]
    pub(crate) fn lookup(&self, keys: &[u128]) -> Option<u32> {
        self.groups.iter().find_map(|g| g.map.get(keys).copied())
    }

    /// Adds an entry whose lpm component has prefix length `len`; on a
    /// duplicate (same length, same masked values) returns the existing
    /// entry's handle and leaves the index unchanged.
    pub(crate) fn insert(&mut self, values: &[u128], len: u16, handle: u32) -> Result<(), u32> {
        let pos = match self.groups.binary_search_by(|g| len.cmp(&g.len)) {
            Ok(pos) => pos,
            Err(pos) => {
                let masks = self
                    .widths
                    .iter()
                    .enumerate()
                    .map(|(i, &w)| if i == self.lpm { prefix_mask(len, w) } else { width_mask(w) })
                    .collect();
                self.groups.insert(pos, LpmGroup { len, map: KeyMap::new(masks, &self.widths) });
                pos
            }
        };
        let map = &mut self.groups[pos].map;
        if let Some(&old) = map.get(values) {
            return Err(old);
        }
        map.insert(values, handle);
        Ok(())
    }

    /// Removes the entry stored under `values` with prefix length `len`.
    pub(crate) fn remove(&mut self, values: &[u128], len: u16) {
        if let Ok(pos) = self.groups.binary_search_by(|g| len.cmp(&g.len)) {
            self.groups[pos].map.remove(values);
            if self.groups[pos].map.is_empty() {
                self.groups.remove(pos);
            }
        }
    }

    /// The prefix lengths in use, longest first (for tests and stats).
    #[cfg(test)]
    pub(crate) fn lengths(&self) -> impl Iterator<Item = u16> + '_ {
        self.groups.iter().map(|g| g.len)
    }
}

/// The mask of the top `len` bits of a `width`-bit value.
pub(crate) fn prefix_mask(len: u16, width: u16) -> u128 {
    let wm = width_mask(width);
    wm & !wm.checked_shr(u32::from(len)).unwrap_or(0)
}

/// `Some(len)` when `mask` (within `width`) is a prefix mask.
pub(crate) fn prefix_len(mask: u128, width: u16) -> Option<u16> {
    let len = mask.count_ones() as u16;
    (len <= width && prefix_mask(len, width) == mask).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(a: u8, b: u8, c: u8, d: u8) -> u128 {
        u128::from(u32::from_be_bytes([a, b, c, d]))
    }

    #[test]
    fn longest_prefix_wins() {
        let mut x = LpmIndex::new(0, &[32]);
        x.insert(&[0], 0, 0).unwrap(); // default route
        x.insert(&[ip(10, 0, 0, 0)], 8, 1).unwrap();
        x.insert(&[ip(10, 1, 2, 0)], 24, 2).unwrap();
        x.insert(&[ip(10, 1, 2, 3)], 32, 3).unwrap();
        assert_eq!(x.lengths().collect::<Vec<_>>(), [32, 24, 8, 0]);
        assert_eq!(x.lookup(&[ip(10, 1, 2, 3)]), Some(3));
        assert_eq!(x.lookup(&[ip(10, 1, 2, 4)]), Some(2));
        assert_eq!(x.lookup(&[ip(10, 9, 9, 9)]), Some(1));
        assert_eq!(x.lookup(&[ip(192, 168, 0, 1)]), Some(0));
        // Removing the /24 uncovers the /8; an emptied length disappears.
        x.remove(&[ip(10, 1, 2, 0)], 24);
        assert_eq!(x.lookup(&[ip(10, 1, 2, 4)]), Some(1));
        assert_eq!(x.lengths().collect::<Vec<_>>(), [32, 8, 0]);
        x.remove(&[0], 0);
        assert_eq!(x.lookup(&[ip(192, 168, 0, 1)]), None);
    }

    #[test]
    fn duplicates_are_per_length() {
        let mut x = LpmIndex::new(0, &[32]);
        x.insert(&[ip(10, 0, 0, 0)], 8, 0).unwrap();
        assert_eq!(x.insert(&[ip(10, 0, 0, 0)], 8, 1), Err(0));
        assert_eq!(x.insert(&[ip(10, 0, 0, 0)], 16, 1), Ok(()));
    }

    #[test]
    fn lpm_with_exact_component() {
        // (vrf: exact bit<8>, dst: lpm bit<32>)
        let mut x = LpmIndex::new(1, &[8, 32]);
        x.insert(&[1, ip(10, 0, 0, 0)], 8, 0).unwrap();
        x.insert(&[2, ip(10, 1, 0, 0)], 16, 1).unwrap();
        assert_eq!(x.lookup(&[1, ip(10, 1, 0, 1)]), Some(0), "vrf 1 has no /16");
        assert_eq!(x.lookup(&[2, ip(10, 1, 0, 1)]), Some(1));
        assert_eq!(x.lookup(&[2, ip(10, 2, 0, 1)]), None, "vrf 2 has no /8");
    }

    #[test]
    fn ipv6_prefixes() {
        let mut x = LpmIndex::new(0, &[128]);
        let net = 0x2001_0db8u128 << 96;
        x.insert(&[net], 32, 0).unwrap();
        x.insert(&[net | 1], 128, 1).unwrap();
        assert_eq!(x.lookup(&[net | 1]), Some(1));
        assert_eq!(x.lookup(&[net | 2]), Some(0));
        assert_eq!(x.lookup(&[1]), None);
    }

    #[test]
    fn prefix_masks() {
        assert_eq!(prefix_mask(0, 32), 0);
        assert_eq!(prefix_mask(8, 32), 0xff00_0000);
        assert_eq!(prefix_mask(32, 32), 0xffff_ffff);
        assert_eq!(prefix_mask(128, 128), u128::MAX);
        assert_eq!(prefix_mask(1, 128), 1 << 127);
        assert_eq!(prefix_len(0xffff_0000, 32), Some(16));
        assert_eq!(prefix_len(0, 32), Some(0));
        assert_eq!(prefix_len(0x00ff_0000, 32), None);
    }
}
