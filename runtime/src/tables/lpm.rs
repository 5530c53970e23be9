//! The index of tables with one `lpm` key (and any number of `exact` keys).
//!
//! The index of record is one hash map per prefix length in use, keyed by
//! the key tuple with the lpm component masked to that length. It decides
//! duplicates and, on deletion, which shorter prefix takes over. A lookup
//! through it probes the maps from the longest prefix down and stops at the
//! first hit: one hash probe per distinct prefix length present.
//!
//! A table whose only key is an lpm key of at most 32 bits (IPv4 routes,
//! the usual case) is also indexed by a multibit trie ([`Trie`]): 16 bits,
//! then 8, then 8, each cell holding either the entry that covers it or a
//! pointer to the next level. Its lookup is at most three array reads, no
//! hashing, whatever the prefix lengths; the per-length maps are only
//! probed by control-plane operations.

use p4lite_compiler::abi::{self, LpmLevels};

use super::exact::width_mask;
use super::keymap::KeyMap;

/// What [`LpmIndex::image`] gives compiled code to walk.
pub(crate) struct TrieImage<'a> {
    pub root: &'a [u32],
    pub chunks: &'a [[u32; 256]],
    pub levels: LpmLevels,
}

/// Prefix length → (masked key tuple → entry handle).
#[derive(Clone, Debug)]
pub(crate) struct LpmIndex {
    /// Which key component is the lpm one.
    lpm: usize,
    widths: Box<[u16]>,
    /// Only lengths with entries, longest first.
    groups: Vec<LpmGroup>,
    /// The lookup index of single-key tables of at most 32 bits.
    trie: Option<Box<Trie>>,
}

#[derive(Clone, Debug)]
struct LpmGroup {
    len: u16,
    map: KeyMap<u32>,
}

impl LpmIndex {
    /// An empty index; component `lpm` of `widths` is the lpm key.
    pub(crate) fn new(lpm: usize, widths: &[u16]) -> Self {
        let trie = match widths {
            [w] if *w <= Trie::MAX_WIDTH => Some(Box::new(Trie::new(*w))),
            _ => None,
        };
        LpmIndex { lpm, widths: widths.into(), groups: Vec::new(), trie }
    }

    /// The entry with the longest prefix matching `keys` (whose other
    /// components equal the entry's exact values).
    #[inline]
    pub(crate) fn lookup(&self, keys: &[u128]) -> Option<u32> {
        match &self.trie {
            Some(t) => t.lookup(keys.first().copied().unwrap_or(0)),
            None => self.lookup_maps(keys),
        }
    }

    /// [`LpmIndex::lookup`] of a one-component key.
    #[inline]
    pub(crate) fn lookup_word(&self, key: u64) -> Option<u32> {
        match &self.trie {
            Some(t) => t.lookup(u128::from(key)),
            None => self.lookup_maps(&[u128::from(key)]),
        }
    }

    /// The trie compiled code can walk (abi `IMAGE_LPM`): root cells,
    /// chunk cells (256 per chunk) and the per-level shifts and masks;
    /// `None` without a trie.
    pub(crate) fn image(&self) -> Option<TrieImage<'_>> {
        let t = self.trie.as_deref()?;
        Some(TrieImage { root: &t.root, chunks: &t.chunks, levels: LpmLevels { shifts: t.shifts, masks: t.masks } })
    }

    /// [`LpmIndex::lookup`] through the per-length maps.
    #[inline(never)]
    fn lookup_maps(&self, keys: &[u128]) -> Option<u32> {
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
        if let Some(t) = &mut self.trie {
            let value = values.first().copied().unwrap_or(0) & prefix_mask(len, t.width);
            if !t.insert(value, len, handle) {
                // A handle the trie cannot encode (more than 2^31 entries):
                // the maps alone answer from now on.
                self.trie = None;
            }
        }
        Ok(())
    }

    /// Removes the entry stored under `values` with prefix length `len`.
    pub(crate) fn remove(&mut self, values: &[u128], len: u16) {
        if let Ok(pos) = self.groups.binary_search_by(|g| len.cmp(&g.len)) {
            if self.groups[pos].map.remove(values).is_none() {
                return;
            }
            if self.groups[pos].map.is_empty() {
                self.groups.remove(pos);
            }
            if self.trie.is_some() {
                // The longest remaining shorter prefix covering the removed
                // one takes over the addresses only the removed one covered.
                let heir = self.groups.iter().filter(|g| g.len < len).find_map(|g| Some((*g.map.get(values)?, g.len)));
                if let Some(t) = &mut self.trie {
                    let value = values.first().copied().unwrap_or(0) & prefix_mask(len, t.width);
                    t.remove(value, len, heir);
                }
            }
        }
    }

    /// The prefix lengths in use, longest first (for tests and stats).
    #[cfg(test)]
    pub(crate) fn lengths(&self) -> impl Iterator<Item = u16> + '_ {
        self.groups.iter().map(|g| g.len)
    }
}

/// A multibit trie over keys of at most 32 bits: a root level indexed by
/// the key's top `min(width, 16)` bits, then levels of up to 8 bits.
///
/// Each cell is `0` (no entry covers it), `handle + 1` (the longest prefix
/// covering the cell's addresses, "prefix expansion"), or [`Trie::CHUNK`]
/// `| i` (chunk `i` of the next level refines it). Beside the cells, the
/// prefix length of each leaf cell is kept for updates only, so lookups
/// touch nothing but cells:
/// - inserting `P/len` sets every cell of `P`'s range whose length is at
///   most `len` (pushing into chunks below it); a prefix longer than a
///   level's bits descends, splitting a leaf cell into a chunk filled with
///   that leaf;
/// - removing `P/len` gives every cell of `P`'s range whose length is
///   exactly `len` (they can only be `P`'s) to the longest shorter prefix
///   covering `P`, which the caller finds in the per-length maps.
///
/// Chunks are not merged back when their prefixes go; a cleared table
/// starts a new trie.
#[derive(Clone, Debug)]
pub(crate) struct Trie {
    width: u16,
    /// Bits consumed by each level (the root first); at most 3 levels.
    strides: [u8; 3],
    depth: usize,
    /// For lookups: the key's width mask, and per level the shift and
    /// mask that give a key's cell index at that level.
    key_mask: u32,
    shifts: [u32; 3],
    masks: [u32; 3],
    root: Box<[u32]>,
    root_lens: Box<[u8]>,
    /// Next-level cells, 256 per chunk (a last level narrower than 8 bits uses the first ones).
    chunks: Vec<[u32; 256]>,
    chunk_lens: Vec<[u8; 256]>,
}

/// Where a cell is: the root or a chunk.
#[derive(Clone, Copy)]
enum Node {
    Root,
    Chunk(usize),
}

impl Trie {
    /// The widest key the trie indexes.
    pub(crate) const MAX_WIDTH: u16 = 32;
    /// Marks a cell that points at a chunk.
    const CHUNK: u32 = abi::LPM_CHUNK;

    /// An empty trie for keys of `width` bits (1..=32).
    fn new(width: u16) -> Trie {
        let width = width.clamp(1, Self::MAX_WIDTH);
        let root_bits = width.min(16) as u8;
        let mut strides = [root_bits, 0, 0];
        let mut depth = 1;
        let mut rest = width - u16::from(root_bits);
        while rest > 0 {
            let s = rest.min(8);
            strides[depth] = s as u8;
            depth += 1;
            rest -= s;
        }
        let cells = 1usize << root_bits;
        let (mut shifts, mut masks) = ([0u32; 3], [0u32; 3]);
        let mut consumed = 0u32;
        for level in 0..depth {
            let stride = u32::from(strides[level]);
            consumed += stride;
            shifts[level] = u32::from(width) - consumed;
            masks[level] = (1u32 << stride) - 1;
        }
        Trie {
            width,
            strides,
            depth,
            key_mask: width_mask(width) as u32,
            shifts,
            masks,
            root: vec![0; cells].into_boxed_slice(),
            root_lens: vec![0; cells].into_boxed_slice(),
            chunks: Vec::new(),
            chunk_lens: Vec::new(),
        }
    }

    /// The handle of the longest prefix containing `key` (bits above the width are ignored).
    #[inline(always)]
    fn lookup(&self, key: u128) -> Option<u32> {
        // Unrolled for the at most three levels; a chunk pointer can only
        // appear above the last level.
        let k = key as u32 & self.key_mask;
        let cell = self.root.get((k >> self.shifts[0]) as usize).copied().unwrap_or(0);
        if cell & Self::CHUNK == 0 {
            return cell.checked_sub(1);
        }
        let cell = self.chunk_cell(cell, (k >> self.shifts[1]) & self.masks[1]);
        if cell & Self::CHUNK == 0 {
            return cell.checked_sub(1);
        }
        let cell = self.chunk_cell(cell, (k >> self.shifts[2]) & self.masks[2]);
        if cell & Self::CHUNK == 0 {
            return cell.checked_sub(1);
        }
        None
    }

    /// Cell `index` (below 256) of the chunk `pointer` points at.
    #[inline(always)]
    fn chunk_cell(&self, pointer: u32, index: u32) -> u32 {
        self.chunks.get((pointer & !Self::CHUNK) as usize).map_or(0, |c| c[usize::from(index as u8)])
    }

    /// Inserts `value/len` (`value` already masked to the prefix) as entry
    /// `handle`. False when the handle does not fit a cell.
    fn insert(&mut self, value: u128, len: u16, handle: u32) -> bool {
        let Some(leaf) = handle.checked_add(1).filter(|l| l & Self::CHUNK == 0) else {
            return false;
        };
        let len = len.min(self.width);
        let k = value as u32;
        let (node, first, count, len8) = self.range(k, len, true);
        for i in first..first + count {
            self.raise(node, i, leaf, len8);
        }
        true
    }

    /// Removes `value/len`; the cells it owned go to `heir` (entry, length) or become empty.
    fn remove(&mut self, value: u128, len: u16, heir: Option<(u32, u16)>) {
        let len = len.min(self.width);
        let (leaf, heir_len) = match heir {
            Some((h, l)) => (h + 1, l.min(self.width) as u8),
            None => (0, 0),
        };
        let (node, first, count, len8) = self.range(value as u32, len, false);
        for i in first..first + count {
            self.lower(node, i, len8, leaf, heir_len);
        }
    }

    /// The node and the cells of it that prefix `k/len` spans: descends
    /// through levels the prefix is longer than, splitting leaf cells into
    /// chunks when `split` (insertion) and stopping at a leaf otherwise
    /// (removal: nothing below it to change). Returns `(node, first, count, len)`.
    fn range(&mut self, k: u32, len: u16, split: bool) -> (Node, usize, usize, u8) {
        let len8 = len as u8;
        let mut node = Node::Root;
        let mut consumed: u16 = 0;
        for level in 0..self.depth {
            let stride = u16::from(self.strides[level]);
            let shift = self.width - consumed - stride;
            let index = ((k >> shift) & ((1u32 << stride) - 1)) as usize;
            if len <= consumed + stride {
                let count = 1usize << (consumed + stride - len);
                let first = index & !(count - 1);
                return (node, first, count, len8);
            }
            let cell = self.cell(node, index);
            let next = if cell & Self::CHUNK != 0 {
                (cell & !Self::CHUNK) as usize
            } else if split {
                let l = self.len_at(node, index);
                self.chunks.push([cell; 256]);
                self.chunk_lens.push([l; 256]);
                let c = self.chunks.len() - 1;
                self.set(node, index, Self::CHUNK | c as u32, l);
                c
            } else {
                return (node, 0, 0, len8);
            };
            node = Node::Chunk(next);
            consumed += stride;
        }
        (node, 0, 0, len8)
    }

    /// Gives cell `i` of `node` (and the cells below it) to `leaf` where their prefixes are at most `len` long.
    fn raise(&mut self, node: Node, i: usize, leaf: u32, len: u8) {
        let cell = self.cell(node, i);
        if cell & Self::CHUNK != 0 {
            let c = (cell & !Self::CHUNK) as usize;
            for j in 0..256 {
                self.raise(Node::Chunk(c), j, leaf, len);
            }
        } else if self.len_at(node, i) <= len {
            self.set(node, i, leaf, len);
        }
    }

    /// Gives cell `i` of `node` (and the cells below it) to `leaf`/`heir_len` where their prefix is exactly `len` long.
    fn lower(&mut self, node: Node, i: usize, len: u8, leaf: u32, heir_len: u8) {
        let cell = self.cell(node, i);
        if cell & Self::CHUNK != 0 {
            let c = (cell & !Self::CHUNK) as usize;
            for j in 0..256 {
                self.lower(Node::Chunk(c), j, len, leaf, heir_len);
            }
        } else if cell != 0 && self.len_at(node, i) == len {
            self.set(node, i, leaf, heir_len);
        }
    }

    fn cell(&self, node: Node, i: usize) -> u32 {
        match node {
            Node::Root => self.root[i],
            Node::Chunk(c) => self.chunks[c][i],
        }
    }

    fn len_at(&self, node: Node, i: usize) -> u8 {
        match node {
            Node::Root => self.root_lens[i],
            Node::Chunk(c) => self.chunk_lens[c][i],
        }
    }

    fn set(&mut self, node: Node, i: usize, cell: u32, len: u8) {
        match node {
            Node::Root => {
                self.root[i] = cell;
                self.root_lens[i] = len;
            }
            Node::Chunk(c) => {
                self.chunks[c][i] = cell;
                self.chunk_lens[c][i] = len;
            }
        }
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

    /// xorshift64: fixed pseudo-random data for the trie tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// The longest matching prefix by brute force over `(value, len, handle)`.
    fn reference(routes: &[(u128, u16, u32)], width: u16, key: u128) -> Option<u32> {
        routes
            .iter()
            .filter(|&&(v, len, _)| key & prefix_mask(len, width) == v)
            .max_by_key(|&&(_, len, _)| len)
            .map(|&(_, _, h)| h)
    }

    #[test]
    fn trie_agrees_with_brute_force_through_inserts_and_deletes() {
        for width in [32u16, 24, 20, 17, 16, 9, 1] {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(width));
            let mut x = LpmIndex::new(0, &[width]);
            assert!(x.trie.is_some(), "width {width} uses the trie");
            let mut routes: Vec<(u128, u16, u32)> = Vec::new();
            // Addresses clustered in a few regions so prefixes nest and overlap.
            let bases = [0u128, width_mask(width), width_mask(width) / 3, 0x0a00_0000 & width_mask(width)];
            let addr = |rng: &mut Rng| {
                let r = rng.next();
                let base = bases[(r % 4) as usize];
                (base ^ u128::from(r >> 8) & u128::from(0x3_ffffu32)) & width_mask(width)
            };
            let mut next_handle = 0u32;
            // Lookups answered by a prefix of 1..width-1 bits (the test must nest prefixes).
            let mut nested = 0;
            for step in 0..600 {
                let r = rng.next();
                if r.is_multiple_of(3) && !routes.is_empty() {
                    let (v, len, _) = routes.swap_remove((r >> 8) as usize % routes.len());
                    x.remove(&[v], len);
                } else {
                    let len = match r % 7 {
                        0 => 0,
                        1 => width,
                        _ => ((r >> 16) % (u64::from(width) + 1)) as u16,
                    };
                    let v = addr(&mut rng) & prefix_mask(len, width);
                    let dup = routes.iter().find(|&&(rv, rl, _)| rv == v && rl == len).map(|r| r.2);
                    assert_eq!(x.insert(&[v], len, next_handle).err(), dup, "width {width} step {step}");
                    if dup.is_none() {
                        routes.push((v, len, next_handle));
                        next_handle += 1;
                    }
                }
                for _ in 0..20 {
                    let key = addr(&mut rng);
                    let want = reference(&routes, width, key);
                    assert_eq!(x.lookup(&[key]), want, "width {width} step {step} key {key:#x}");
                    assert_eq!(x.lookup_maps(&[key]), want, "maps, width {width} step {step} key {key:#x}");
                    let len = want.and_then(|h| routes.iter().find(|r| r.2 == h)).map_or(0, |r| r.1);
                    nested += usize::from(len > 0 && len < width);
                }
            }
            assert!(width == 1 || nested > 1000, "width {width}: only {nested} nested hits");
        }
    }

    #[test]
    fn trie_ignores_bits_above_the_width_and_shapes_levels() {
        let mut x = LpmIndex::new(0, &[9]);
        x.insert(&[0x100], 1, 0).unwrap();
        assert_eq!(x.lookup(&[0x1ff]), Some(0));
        assert_eq!(x.lookup(&[0xff]), None);
        assert_eq!(x.lookup(&[0x2ff]), None, "bit 9 is outside the key");
        let t = Trie::new(32);
        assert_eq!((t.strides, t.depth, t.root.len()), ([16, 8, 8], 3, 65536));
        let t = Trie::new(20);
        assert_eq!((t.strides, t.depth), ([16, 4, 0], 2));
        // Wider than 32 bits, or with exact keys beside: the maps only.
        assert!(LpmIndex::new(0, &[48]).trie.is_none());
        assert!(LpmIndex::new(1, &[8, 32]).trie.is_none());
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
