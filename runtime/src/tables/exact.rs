//! The index of tables whose keys are all `exact`: one hash map from the
//! tuple of key values to the entry handle. A lookup is one hash probe.

use super::keymap::KeyMap;

/// Key tuple → entry handle.
#[derive(Clone, Debug)]
pub(crate) struct ExactIndex {
    map: KeyMap<u32>,
}

impl ExactIndex {
    /// An empty index for keys of these widths.
    pub(crate) fn new(widths: &[u16]) -> Self {
        let masks = widths.iter().map(|&w| width_mask(w)).collect();
        ExactIndex { map: KeyMap::new(masks, widths) }
    }

    /// The entry whose key equals `keys`.
    #[inline]
    pub(crate) fn lookup(&self, keys: &[u128]) -> Option<u32> {
        self.map.get(keys).copied()
    }

    /// [`ExactIndex::lookup`] of a one-component key.
    #[inline]
    pub(crate) fn lookup_word(&self, key: u64) -> Option<u32> {
        self.map.get_word(key).copied()
    }

    /// Adds an entry; on a duplicate key returns the existing entry's handle
    /// and leaves the index unchanged.
    pub(crate) fn insert(&mut self, values: &[u128], handle: u32) -> Result<(), u32> {
        if let Some(&old) = self.map.get(values) {
            return Err(old);
        }
        self.map.insert(values, handle);
        Ok(())
    }

    /// Removes the entry stored under `values`.
    pub(crate) fn remove(&mut self, values: &[u128]) {
        self.map.remove(values);
    }
}

/// The mask of the low `w` bits.
pub(crate) fn width_mask(w: u16) -> u128 {
    if w >= 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_miss_and_duplicates() {
        // (ipv4.dst_addr, tcp.dst_port)
        let mut x = ExactIndex::new(&[32, 16]);
        let vip = 0x0a00_0064; // 10.0.0.100
        assert_eq!(x.insert(&[vip, 80], 0), Ok(()));
        assert_eq!(x.insert(&[vip, 443], 1), Ok(()));
        assert_eq!(x.lookup(&[vip, 80]), Some(0));
        assert_eq!(x.lookup(&[vip, 443]), Some(1));
        assert_eq!(x.lookup(&[vip, 22]), None);
        assert_eq!(x.lookup(&[vip + 1, 80]), None);
        assert_eq!(x.insert(&[vip, 80], 2), Err(0));
        x.remove(&[vip, 80]);
        assert_eq!(x.lookup(&[vip, 80]), None);
        assert_eq!(x.insert(&[vip, 80], 2), Ok(()));
        assert_eq!(x.lookup(&[vip, 80]), Some(2));
    }

    #[test]
    fn width_masks() {
        assert_eq!(width_mask(1), 1);
        assert_eq!(width_mask(9), 0x1ff);
        assert_eq!(width_mask(128), u128::MAX);
    }
}
