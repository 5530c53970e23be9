//! A hash map from a tuple of masked key values to a value: the building
//! block of every table index (one map for an exact table, one per prefix
//! length for an lpm table, one per mask pattern for a ternary table).
//!
//! Each map owns one mask per key component. A probe with the packet's key
//! values masks them on the fly, so lookups borrow the caller's `&[u128]`
//! and never allocate. When the key components' widths add up to at most
//! 64 bits (the common case: addresses, ports, protocol numbers), the
//! masked values are packed into one `u64` stored inline in the hash table
//! and hashed with one multiply; up to 128 bits they are packed into a
//! `u128`; wider keys are stored as a boxed slice and compared component by
//! component.
//!
//! Hashing uses FxHash (multiply, then rotate so the product's well-mixed
//! high bits pick the bucket: masked keys such as /24 prefixes have zero
//! low bits): fast on integers, not resistant to chosen collisions. Only
//! the control plane chooses the stored keys, so a sender of packets cannot
//! make the map degrade.

use std::hash::Hasher;

use hashbrown::HashTable;
use rustc_hash::FxHasher;

/// Masked key tuples → `V`.
#[derive(Clone, Debug)]
pub(crate) struct KeyMap<V> {
    /// One mask per key component, each within its component's width.
    masks: Box<[u128]>,
    /// Component widths, for packing.
    widths: Box<[u16]>,
    store: Store<V>,
}

/// Packed into a `u64` or a `u128` when the widths fit, else one value per component.
#[derive(Clone, Debug)]
enum Store<V> {
    Word(HashTable<(u64, V)>),
    Packed(HashTable<(u128, V)>),
    Wide(HashTable<(Box<[u128]>, V)>),
}

impl<V> KeyMap<V> {
    /// An empty map whose keys are `values & masks`; `masks[i]` must lie
    /// within `widths[i]` bits (callers normalise it).
    pub(crate) fn new(masks: Box<[u128]>, widths: &[u16]) -> Self {
        let total: u32 = widths.iter().map(|&w| u32::from(w)).sum();
        let store = if total <= 64 {
            Store::Word(HashTable::new())
        } else if total <= 128 {
            Store::Packed(HashTable::new())
        } else {
            Store::Wide(HashTable::new())
        };
        KeyMap { masks, widths: widths.into(), store }
    }

    /// The masks this map applies to probes.
    pub(crate) fn masks(&self) -> &[u128] {
        &self.masks
    }

    /// The number of stored keys.
    pub(crate) fn len(&self) -> usize {
        match &self.store {
            Store::Word(t) => t.len(),
            Store::Packed(t) => t.len(),
            Store::Wide(t) => t.len(),
        }
    }

    /// True when no key is stored.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value stored under `keys & masks`. `keys` has one value per
    /// component. The per-packet path: no allocation.
    #[inline]
    pub(crate) fn get(&self, keys: &[u128]) -> Option<&V> {
        match &self.store {
            Store::Word(t) => {
                let k = pack64(&self.masks, &self.widths, keys);
                t.find(hash64(k), |e| e.0 == k).map(|e| &e.1)
            }
            _ => self.get_wide(keys),
        }
    }

    /// [`KeyMap::get`] of a one-component key given as a `u64` (the usual
    /// table key: an address, a port): one mask, one multiply, one probe.
    #[inline]
    pub(crate) fn get_word(&self, key: u64) -> Option<&V> {
        match (&self.store, &self.masks[..]) {
            (Store::Word(t), &[m]) => {
                let k = key & m as u64;
                t.find(hash64(k), |e| e.0 == k).map(|e| &e.1)
            }
            _ => self.get(&[u128::from(key)]),
        }
    }

    /// [`KeyMap::get`] for keys of more than 64 bits (kept out of line so
    /// the common case stays small where it is inlined).
    #[inline(never)]
    fn get_wide(&self, keys: &[u128]) -> Option<&V> {
        match &self.store {
            Store::Word(_) => None,
            Store::Packed(t) => {
                let k = self.pack(keys);
                t.find(hash_packed(k), |e| e.0 == k).map(|e| &e.1)
            }
            Store::Wide(t) => t.find(self.hash_wide(keys), |e| self.eq_wide(&e.0, keys)).map(|e| &e.1),
        }
    }

    /// Like [`KeyMap::get`], mutably.
    pub(crate) fn get_mut(&mut self, keys: &[u128]) -> Option<&mut V> {
        match &mut self.store {
            Store::Word(t) => {
                let k = pack64(&self.masks, &self.widths, keys);
                t.find_mut(hash64(k), |e| e.0 == k).map(|e| &mut e.1)
            }
            Store::Packed(t) => {
                let k = pack(&self.masks, &self.widths, keys);
                t.find_mut(hash_packed(k), |e| e.0 == k).map(|e| &mut e.1)
            }
            Store::Wide(t) => {
                let h = hash_wide(&self.masks, keys);
                let masks = &self.masks;
                t.find_mut(h, |e| eq_wide(masks, &e.0, keys)).map(|e| &mut e.1)
            }
        }
    }

    /// Stores `v` under `keys & masks`, returning the value it replaces.
    pub(crate) fn insert(&mut self, keys: &[u128], v: V) -> Option<V> {
        if let Some(old) = self.get_mut(keys) {
            return Some(std::mem::replace(old, v));
        }
        match &mut self.store {
            Store::Word(t) => {
                let k = pack64(&self.masks, &self.widths, keys);
                t.insert_unique(hash64(k), (k, v), |e| hash64(e.0));
            }
            Store::Packed(t) => {
                let k = pack(&self.masks, &self.widths, keys);
                t.insert_unique(hash_packed(k), (k, v), |e| hash_packed(e.0));
            }
            Store::Wide(t) => {
                let stored: Box<[u128]> = keys.iter().zip(self.masks.iter()).map(|(k, m)| k & m).collect();
                // Stored values are already masked, so hashing them with
                // all-ones masks gives the same hash as a masked probe.
                t.insert_unique(hash_wide(&self.masks, &stored), (stored, v), |e| hash_stored(&e.0));
            }
        }
        None
    }

    /// Removes and returns the value stored under `keys & masks`.
    pub(crate) fn remove(&mut self, keys: &[u128]) -> Option<V> {
        match &mut self.store {
            Store::Word(t) => {
                let k = pack64(&self.masks, &self.widths, keys);
                t.find_entry(hash64(k), |e| e.0 == k).ok().map(|o| o.remove().0 .1)
            }
            Store::Packed(t) => {
                let k = pack(&self.masks, &self.widths, keys);
                t.find_entry(hash_packed(k), |e| e.0 == k).ok().map(|o| o.remove().0 .1)
            }
            Store::Wide(t) => {
                let h = hash_wide(&self.masks, keys);
                let masks = &self.masks;
                t.find_entry(h, |e| eq_wide(masks, &e.0, keys)).ok().map(|o| o.remove().0 .1)
            }
        }
    }

    /// Every stored value, in no particular order.
    pub(crate) fn values(&self) -> Box<dyn Iterator<Item = &V> + '_> {
        match &self.store {
            Store::Word(t) => Box::new(t.iter().map(|e| &e.1)),
            Store::Packed(t) => Box::new(t.iter().map(|e| &e.1)),
            Store::Wide(t) => Box::new(t.iter().map(|e| &e.1)),
        }
    }

    #[inline]
    fn pack(&self, keys: &[u128]) -> u128 {
        pack(&self.masks, &self.widths, keys)
    }

    #[inline]
    fn hash_wide(&self, keys: &[u128]) -> u64 {
        hash_wide(&self.masks, keys)
    }

    #[inline]
    fn eq_wide(&self, stored: &[u128], keys: &[u128]) -> bool {
        eq_wide(&self.masks, stored, keys)
    }
}

/// The masked components concatenated, first component in the high bits.
/// Unique per masked tuple because each masked value fits its width.
#[inline]
fn pack(masks: &[u128], widths: &[u16], keys: &[u128]) -> u128 {
    let mut acc = 0u128;
    for ((&k, &m), &w) in keys.iter().zip(masks).zip(widths) {
        acc = acc.checked_shl(u32::from(w)).unwrap_or(0) | (k & m);
    }
    acc
}

/// Like [`pack`] into a `u64`, for keys whose widths add up to at most 64
/// bits. A single component (the usual table key) is just masked.
#[inline]
fn pack64(masks: &[u128], widths: &[u16], keys: &[u128]) -> u64 {
    if let ([k], [m]) = (keys, masks) {
        return (k & m) as u64;
    }
    let mut acc = 0u64;
    for ((&k, &m), &w) in keys.iter().zip(masks).zip(widths) {
        acc = acc.checked_shl(u32::from(w)).unwrap_or(0) | (k & m) as u64;
    }
    acc
}

/// FxHash of one word: a multiply and a rotate.
#[inline]
fn hash64(k: u64) -> u64 {
    let mut h = FxHasher::default();
    h.write_u64(k);
    h.finish()
}

#[inline]
fn hash_packed(k: u128) -> u64 {
    let mut h = FxHasher::default();
    h.write_u128(k);
    h.finish()
}

#[inline]
fn hash_wide(masks: &[u128], keys: &[u128]) -> u64 {
    let mut h = FxHasher::default();
    for (&k, &m) in keys.iter().zip(masks) {
        h.write_u128(k & m);
    }
    h.finish()
}

/// The hash of already-masked stored values (rehashing on growth).
fn hash_stored(stored: &[u128]) -> u64 {
    let mut h = FxHasher::default();
    for &k in stored {
        h.write_u128(k);
    }
    h.finish()
}

#[inline]
fn eq_wide(masks: &[u128], stored: &[u128], keys: &[u128]) -> bool {
    stored.iter().zip(keys).zip(masks).all(|((&s, &k), &m)| s == k & m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_map_masks_probes() {
        // An IPv4 /24 group with an exact bit<16> port next to it.
        let mut m: KeyMap<u32> = KeyMap::new([0xffff_ff00, 0xffff].into(), &[32, 16]);
        assert!(matches!(m.store, Store::Word(_)));
        assert_eq!(m.insert(&[0x0a00_0100, 80], 7), None);
        assert_eq!(m.get(&[0x0a00_01fe, 80]), Some(&7));
        assert_eq!(m.get(&[0x0a00_02fe, 80]), None);
        assert_eq!(m.get(&[0x0a00_01fe, 81]), None);
        assert_eq!(m.insert(&[0x0a00_0101, 80], 8), Some(7), "same masked key replaces");
        assert_eq!(m.len(), 1);
        assert_eq!(m.remove(&[0x0a00_0100, 80]), Some(8));
        assert!(m.is_empty());
    }

    #[test]
    fn packing_does_not_mix_components() {
        // (1, 0) and (0, 0x100) would collide if the 8-bit second component
        // were not masked to its width before packing.
        let mut m: KeyMap<u32> = KeyMap::new([0xff, 0xff].into(), &[8, 8]);
        m.insert(&[1, 0], 1);
        assert_eq!(m.get(&[0, 0x100]), None);
        assert_eq!(m.get(&[1, 0]), Some(&1));
    }

    #[test]
    fn wide_map_full_128_bit_components() {
        let ones = u128::MAX;
        let mut m: KeyMap<u32> = KeyMap::new([ones, 0xffff].into(), &[128, 16]);
        assert!(matches!(m.store, Store::Wide(_)));
        let addr = 0x2001_0db8_0000_0000_0000_0000_0000_0001u128;
        for i in 0..100u128 {
            m.insert(&[addr + i, 443], i as u32);
        }
        assert_eq!(m.get(&[addr + 42, 443]), Some(&42));
        assert_eq!(m.get(&[addr + 42, 80]), None);
        assert_eq!(m.remove(&[addr + 42, 443]), Some(42));
        assert_eq!(m.get(&[addr + 42, 443]), None);
        assert_eq!(m.len(), 99);
        assert_eq!(m.values().count(), 99);
    }

    #[test]
    fn u128_packing_between_64_and_128_bits() {
        // Widths decide the store, not masks: an IPv6 /64 group next to a
        // 16-bit port is 128 + 16 bits, stored wide.
        let hi = u128::MAX << 64;
        let mut m: KeyMap<u32> = KeyMap::new([hi, 0xffff].into(), &[128, 16]);
        assert!(matches!(m.store, Store::Wide(_)));
        let mut m2: KeyMap<u32> = KeyMap::new([0xffff_ffff_ffff, 0xffff].into(), &[48, 16]);
        assert!(matches!(m2.store, Store::Word(_)), "48 + 16 bits fit a u64");
        m2.insert(&[0x0011_2233_4455, 7], 1);
        assert_eq!(m2.get(&[0x0011_2233_4455, 7]), Some(&1));
        assert_eq!(m2.get(&[0x0011_2233_4455, 8]), None);
        assert_eq!(m2.get(&[0x0011_2233_4456, 7]), None);
        let mut m3: KeyMap<u32> = KeyMap::new([0xffff_ffff_ffff, 0xffff_ffff].into(), &[48, 32]);
        assert!(matches!(m3.store, Store::Packed(_)), "80 bits");
        m3.insert(&[0x0011_2233_4455, 0x0a00_0001], 2);
        assert_eq!(m3.get(&[0x0011_2233_4455, 0x0a00_0001]), Some(&2));
        m.insert(&[0x2001_0db8 << 96, 443], 3);
        assert_eq!(m.get(&[(0x2001_0db8 << 96) | 5, 443]), Some(&3));
    }

    #[test]
    fn word_map_full_64_bit_component_and_many_keys() {
        // One 64-bit component, and enough /24-style keys (zero low bits)
        // that a hash using only the product's low bits would pile them up.
        let mut m: KeyMap<u32> = KeyMap::new([u128::from(u64::MAX)].into(), &[64]);
        assert!(matches!(m.store, Store::Word(_)));
        m.insert(&[u128::from(u64::MAX)], 1);
        assert_eq!(m.get(&[u128::from(u64::MAX)]), Some(&1));
        let mut p: KeyMap<u32> = KeyMap::new([0xffff_ff00].into(), &[32]);
        for i in 0..4096u32 {
            p.insert(&[u128::from(i << 8)], i);
        }
        for i in 0..4096u32 {
            assert_eq!(p.get(&[u128::from((i << 8) | 0x7f)]), Some(&i));
        }
        assert_eq!(p.len(), 4096);
    }

    #[test]
    fn single_128_bit_component_packs() {
        let mut m: KeyMap<u32> = KeyMap::new([u128::MAX].into(), &[128]);
        assert!(matches!(m.store, Store::Packed(_)));
        m.insert(&[u128::MAX], 1);
        assert_eq!(m.get(&[u128::MAX]), Some(&1));
        assert_eq!(m.get(&[0]), None);
    }
}
