//! The index of tables whose keys are all `exact`: one hash map from the
//! tuple of key values to the entry handle. A lookup is one hash probe.
//!
//! A table with one key component of at most 64 bits (a port, an address,
//! a next-hop id) also keeps a [`WordIndex`]: the same keys in a flat
//! linear-probing array, which the per-packet `u64` lookup
//! ([`ExactIndex::lookup_word`]) probes with a multiply, a shift and
//! usually one compare, instead of the general map's SIMD group probe.
//! The map stays the reference (duplicates, slices of keys); both change
//! together in [`ExactIndex::insert`] and [`ExactIndex::remove`].

use p4lite_compiler::abi::{self, ExactSlot};

use super::keymap::KeyMap;

/// Key tuple → entry handle.
#[derive(Clone, Debug)]
pub(crate) struct ExactIndex {
    map: KeyMap<u32>,
    /// The mask of the only component, when there is one of at most 64 bits.
    word_mask: Option<u64>,
    /// The same keys as `map` when `word_mask` is set (else empty).
    word: WordIndex,
}

impl ExactIndex {
    /// An empty index for keys of these widths.
    pub(crate) fn new(widths: &[u16]) -> Self {
        let masks = widths.iter().map(|&w| width_mask(w)).collect();
        let word_mask = match widths {
            &[w] if w <= 64 => Some(width_mask(w) as u64),
            _ => None,
        };
        ExactIndex { map: KeyMap::new(masks, widths), word_mask, word: WordIndex::new() }
    }

    /// The entry whose key equals `keys`.
    #[inline]
    pub(crate) fn lookup(&self, keys: &[u128]) -> Option<u32> {
        match (self.word_mask, keys) {
            // `(k & m) as u64`: the map masks the same way.
            (Some(m), &[k]) => self.word.get(k as u64 & m),
            _ => self.map.get(keys).copied(),
        }
    }

    /// [`ExactIndex::lookup`] of a one-component key.
    #[inline]
    pub(crate) fn lookup_word(&self, key: u64) -> Option<u32> {
        match self.word_mask {
            Some(m) => self.word.get(key & m),
            None => self.map.get_word(key).copied(),
        }
    }

    /// Adds an entry; on a duplicate key returns the existing entry's handle
    /// and leaves the index unchanged.
    pub(crate) fn insert(&mut self, values: &[u128], handle: u32) -> Result<(), u32> {
        if let Some(&old) = self.map.get(values) {
            return Err(old);
        }
        self.map.insert(values, handle);
        if let (Some(m), [v]) = (self.word_mask, values) {
            if handle == Slot::EMPTY {
                // Not storable there: the map alone answers from now on.
                self.word_mask = None;
            } else {
                self.word.insert(*v as u64 & m, handle);
            }
        }
        Ok(())
    }

    /// The one-word index compiled code can probe (abi `IMAGE_EXACT`): the
    /// slots, the home shift and the slot mask; `None` when this index has
    /// none (several components, wider than 64 bits, or disabled).
    pub(crate) fn image(&self) -> Option<(&[ExactSlot], u32, u64)> {
        self.word_mask.map(|_| (&self.word.slots[..], self.word.shift, self.word.slots.len() as u64 - 1))
    }

    /// Removes the entry stored under `values`.
    pub(crate) fn remove(&mut self, values: &[u128]) {
        if self.map.remove(values).is_some() {
            if let (Some(m), [v]) = (self.word_mask, values) {
                self.word.remove(*v as u64 & m);
            }
        }
    }
}

/// `u64` key → entry handle, in one array with linear probing: a key's
/// home slot is the top bits of `key * K` (Fibonacci hashing, which
/// spreads keys with zero low bits such as /24 prefixes), and a probe
/// walks forward to the key or to an empty slot. At most half the slots
/// are used, so probes are short. Removal shifts later keys of the same
/// run back (no tombstones), so a lookup never walks past a stale slot.
#[derive(Clone, Debug)]
pub(crate) struct WordIndex {
    /// `slots.len()` is a power of two (at least [`WordIndex::MIN_SLOTS`]).
    slots: Box<[Slot]>,
    /// `64 - log2(slots.len())`: the home slot is `key * K >> shift`.
    shift: u32,
    /// Keys stored.
    len: usize,
}

/// One slot of a [`WordIndex`]: empty when `handle` is [`Slot::EMPTY`].
/// The abi's [`ExactSlot`], so compiled code probes the same array
/// ([`ExactIndex::image`]).
type Slot = ExactSlot;

/// The empty slot and its handle.
trait Free {
    const EMPTY: u32;
    const FREE: Self;
}

impl Free for ExactSlot {
    const EMPTY: u32 = abi::EXACT_EMPTY;
    const FREE: ExactSlot = ExactSlot { key: 0, handle: abi::EXACT_EMPTY, _pad: 0 };
}

impl WordIndex {
    const MIN_SLOTS: usize = 8;
    /// 2^64 / golden ratio, odd (the abi's, as compiled code hashes alike).
    const K: u64 = abi::EXACT_HASH_K;

    fn new() -> WordIndex {
        WordIndex::with_slots(WordIndex::MIN_SLOTS)
    }

    fn with_slots(n: usize) -> WordIndex {
        WordIndex { slots: vec![Slot::FREE; n].into_boxed_slice(), shift: 64 - n.trailing_zeros(), len: 0 }
    }

    #[inline(always)]
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(Self::K) >> self.shift) as usize
    }

    /// The handle stored under `key`.
    #[inline(always)]
    fn get(&self, key: u64) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        // Ends: at most half the slots are used, so an empty one comes.
        loop {
            let s = self.slots.get(i & mask)?;
            if s.handle == Slot::EMPTY {
                return None;
            }
            if s.key == key {
                return Some(s.handle);
            }
            i += 1;
        }
    }

    /// Stores `handle` under `key` (not stored yet: the map checked).
    /// `handle` is not [`Slot::EMPTY`] (the caller checks).
    fn insert(&mut self, key: u64, handle: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key) & mask;
        while self.slots[i].handle != Slot::EMPTY {
            if self.slots[i].key == key {
                self.slots[i].handle = handle;
                return;
            }
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot { key, handle, _pad: 0 };
        self.len += 1;
    }

    /// Twice the slots, every key placed again.
    fn grow(&mut self) {
        let old = std::mem::replace(self, WordIndex::with_slots(self.slots.len() * 2));
        for s in old.slots.iter().filter(|s| s.handle != Slot::EMPTY) {
            self.insert(s.key, s.handle);
        }
    }

    /// Removes `key`, moving later keys of its run back into the gap
    /// when their home slot allows it (backward-shift deletion).
    fn remove(&mut self, key: u64) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key) & mask;
        loop {
            if self.slots[i].handle == Slot::EMPTY {
                return;
            }
            if self.slots[i].key == key {
                break;
            }
            i = (i + 1) & mask;
        }
        let mut gap = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s.handle == Slot::EMPTY {
                break;
            }
            // The key at `j` may move to `gap` unless its home lies
            // cyclically in (gap, j]: then the gap is before its home.
            let home = self.home(s.key) & mask;
            let stays = if gap <= j { gap < home && home <= j } else { gap < home || home <= j };
            if !stays {
                self.slots[gap] = s;
                gap = j;
            }
        }
        self.slots[gap] = Slot::FREE;
        self.len -= 1;
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
    fn word_index_agrees_with_the_map_through_inserts_and_removes() {
        // Keys that collide in the home slot (multiples of a large power of
        // two) next to spread ones, removed in an order that exercises the
        // backward shift across the array's end.
        let mut x = ExactIndex::new(&[32]);
        let mut keys: Vec<u128> = (0..300u128).map(|i| (i * 0x0100_0000) & 0xffff_ffff).collect();
        keys.extend((0..300u128).map(|i| 0x0a00_0000 + i * 7));
        keys.sort();
        keys.dedup();
        let mut rng = 0x1234_5678_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut present = std::collections::HashMap::new();
        for round in 0..4000u32 {
            let k = keys[(next() % keys.len() as u64) as usize];
            if next() % 3 == 0 {
                x.remove(&[k]);
                present.remove(&k);
            } else if x.insert(&[k], round).is_ok() {
                present.insert(k, round);
            }
            if round % 97 == 0 {
                for &k in &keys {
                    assert_eq!(x.lookup_word(k as u64), present.get(&k).copied(), "key {k:#x}");
                    assert_eq!(x.lookup(&[k]), present.get(&k).copied());
                }
            }
        }
        assert_eq!(x.word.len, present.len());
        // Bits above the key's width are masked off, as in the map.
        let mut p = ExactIndex::new(&[9]);
        assert_eq!(p.insert(&[3], 1), Ok(()));
        assert_eq!(p.lookup_word(0x203), Some(1));
        assert_eq!(p.lookup(&[0x203]), Some(1));
        // Keys of two components use the map only.
        let y = ExactIndex::new(&[32, 16]);
        assert!(y.word_mask.is_none());
    }

    #[test]
    fn width_masks() {
        assert_eq!(width_mask(1), 1);
        assert_eq!(width_mask(9), 0x1ff);
        assert_eq!(width_mask(128), u128::MAX);
    }
}
