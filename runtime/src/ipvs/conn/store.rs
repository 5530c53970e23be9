//! Storage of the connection table: an arena of fixed-size entries, one
//! chained hash index and the timeout queues that drive expiry.
//!
//! # Layout and memory
//! Every connection and template is one 48-byte [`Entry`] in an arena,
//! named by its `u32` index; freed slots are kept on a free list threaded
//! through `hnext`. The arena is a [`sys::MappedVec`]: address space for
//! every index a `u32` can name is reserved up front and the arena grows
//! by writing further into it, so it never copies or moves, and it holds
//! only the pages it has written: slack below one 4 KiB page, and below
//! 1/8 once it is big enough to ask for transparent huge pages (from
//! 16 MiB: about 350K entries). The index asks for huge pages once it
//! spans one. With 4 KiB pages, every lookup at millions of conns would be
//! a TLB miss as well as a cache miss. Expiry prefetches the entries it
//! will reach next ([`Store::prefetch_after`]); the switch's hint pass, the
//! entries a packet a few packets ahead will look up ([`Store::prefetch_key`]).
//!
//! **One hash index for both lookup keys.** Like the kernel (spec 2.1), every
//! entry is hashed once, by `(protocol, client address, client port)`; that
//! triple is the common prefix of the inbound key (… vaddr, vport) and of
//! the NAT reply key (… daddr, dport), so both lookups probe the same chain
//! and compare the rest of their key. The index is a power-of-two array of
//! chain heads (`u32`), doubled when the entries outnumber the heads, or
//! 7/8 of them from [`BIG_INDEX`] heads on, plus the `hnext` field of each
//! entry: 4–8 bytes per entry (up to 9.2 in a big table). A lookup walks
//! 1 + load/2 entries on average, and in a table far bigger than the
//! caches every step is a cache miss: big tables keep shorter chains. The
//! bucket comes from a seeded mixing hash ([`bucket`]).
//!
//! **Timeout queues instead of a timer wheel.** An entry's deadline is
//! always "time of the last re-arm + its timeout", and there are only a few
//! distinct timeouts (one per TCP state, UDP, each persistence timeout, the
//! 60 s template postponement). Entries re-armed with the same timeout are
//! appended to the same intrusive FIFO queue, which is therefore sorted by
//! deadline *and* by last activity: expiry pops queue heads, eviction looks
//! at queue heads, both in O(number of queues). The queue also records the
//! timeout, so the entry does not store it. Queues are split by eviction
//! class (transient, established, template) so that an eviction candidate of
//! a class is always at the head of one of its class's queues.
//!
//! Measured: `size_of::<Entry>() == 48`; at one million entries 56.6 bytes
//! per connection (arena 48.2, index 8.4), at most 61.7 at the awkward
//! sizes (see the `memory_per_conn_*` tests in the parent module).
//!
//! # Time
//! Deadlines are `u32` milliseconds relative to a base that the table moves
//! forward (rebase) once the relative clock passes 2^30 ms (12.4 days);
//! timeouts are capped at [`MAX_TIMEOUT_S`] so a deadline always fits.

use crate::live::sys::{self, MappedVec};

/// "No entry" in every `u32` link.
pub(super) const NIL: u32 = u32::MAX;

/// Longest timeout (seconds) a deadline can hold: 3·10⁶ s (34.7 days),
/// above ipvsadm's 31-day persistence maximum. Longer values are clamped.
pub const MAX_TIMEOUT_S: u32 = 3_000_000;

/// The relative clock is rebased when it reaches this many milliseconds.
pub(super) const REBASE_AT_MS: u64 = 1 << 30;

/// Arrays at least this big (bytes, one huge page) are allocated with
/// [`with_huge_pages`].
const HUGE_PAGE_BYTES: usize = 2 << 20;

/// Smallest number of hash chain heads.
const MIN_BUCKETS: usize = 256;

/// From this many heads on, the index doubles at 7/8 load, not at 1.
const BIG_INDEX: usize = 1 << 17;

/// Kernel flag bits (`IP_VS_CONN_F_*`) kept in `Entry::flags`, plus one
/// private bit for free arena slots.
pub mod flag {
    /// Forwarding method mask (MASQ 0, LOCALNODE 1, TUNNEL 2, DROUTE 3, BYPASS 4).
    pub const FWD_MASK: u16 = 0x0007;
    /// VS/NAT.
    pub const MASQ: u16 = 0x0000;
    /// IP-in-IP tunnel.
    pub const TUNNEL: u16 = 0x0002;
    /// Direct routing.
    pub const DROUTE: u16 = 0x0003;
    /// The entry is linked in the hash index (cleared while it awaits expiry).
    pub const HASHED: u16 = 0x0040;
    /// No server → client packet seen yet (non-NAT conns start with it).
    pub const NOOUTPUT: u16 = 0x0080;
    /// Counted in the dest's `inactconns` (all conns start with it).
    pub const INACTIVE: u16 = 0x0100;
    /// A persistence template.
    pub const TEMPLATE: u16 = 0x1000;
    /// One-packet scheduling (`-o`): never stored.
    pub const ONE_PACKET: u16 = 0x2000;
    /// Private: the arena slot is free.
    pub const FREE: u16 = 0x8000;
}

/// One connection or template. 48 bytes, `u32`-aligned.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub(super) struct Entry {
    /// Client address (templates: the client's network, address & netmask).
    pub caddr: u32,
    /// Virtual address (fwmark templates: the fwmark).
    pub vaddr: u32,
    /// Real server address.
    pub daddr: u32,
    /// Deadline, ms relative to the table's base.
    pub expires: u32,
    /// Normal conn: index of its controlling template or [`NIL`].
    /// Template: number of conns it controls (`n_control`).
    pub link: u32,
    /// `DestId` of the bound dest, or [`NIL`].
    pub dest: u32,
    /// Next entry in the hash chain (free list when the slot is free).
    pub hnext: u32,
    /// Previous entry in the timeout queue.
    pub qprev: u32,
    /// Next entry in the timeout queue.
    pub qnext: u32,
    /// Client port (templates: 0).
    pub cport: u16,
    /// Virtual port (templates: service port or 0; 0xFFFF when invalidated).
    pub vport: u16,
    /// Real server port.
    pub dport: u16,
    /// `IP_VS_CONN_F_*` bits, see [`flag`].
    pub flags: u16,
    /// IP protocol number (templates of fwmark services: 0).
    pub proto: u8,
    /// TCP state number; UDP: 0; templates: 0 NONE / 1 ASSURED.
    pub state: u8,
    /// Index of the timeout queue the entry is in.
    pub queue: u16,
}

/// Eviction class of a timeout queue; also the tie-break rank at expiry
/// (conns due at the same millisecond as a template expire first, so a
/// template whose last conn dies at its own deadline is freed, not postponed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Class {
    /// TCP conns not in ESTABLISHED, UDP and other conns: evicted first.
    Transient = 0,
    /// TCP conns in ESTABLISHED: evicted last (if the policy allows).
    Established = 1,
    /// Persistence templates: never evicted directly.
    Template = 2,
}

/// A FIFO of entries that share one timeout, sorted by deadline.
#[derive(Clone, Copy, Debug)]
pub(super) struct Queue {
    pub timeout_s: u32,
    pub class: Class,
    pub head: u32,
    pub tail: u32,
    pub len: u32,
}

/// Arena + hash index + timeout queues; the policy lives in the parent.
#[derive(Clone, Debug)]
pub(super) struct Store {
    pub entries: MappedVec<Entry>,
    free_head: u32,
    /// Live entries (including ones awaiting expiry).
    pub len: u32,
    heads: Vec<u32>,
    mask: usize,
    /// The hash seed ([`bucket`]).
    seed: u64,
    pub queues: Vec<Queue>,
    /// A lower bound of the earliest deadline of all queues.
    pub next_due: u32,
    /// The chain heads of the last [`HINT_RING`] prefetch hints, oldest
    /// at `hint_at` ([`Store::prefetch_key`]).
    hint_ring: [u32; HINT_RING],
    hint_at: usize,
    /// Prefetch hints taken.
    pub hints: u64,
}

/// How many hints after its own a hint's second stage runs, and after that
/// its third ([`Store::prefetch_key`]).
const HINT_STAGE: usize = 4;
/// Buckets remembered for the later stages.
const HINT_RING: usize = 2 * HINT_STAGE;

/// An empty `Vec` with room for `n` elements, backed by transparent huge
/// pages when it spans at least one ([`sys::advise_huge_pages`], asked
/// before anything is written). Every lookup reads a random chain head; at
/// millions of conns the index spans several MiB, and with 4 KiB pages
/// each read is a TLB miss too. Used for the index, which is allocated
/// anew at each doubling anyway.
fn with_huge_pages<T>(n: usize) -> Vec<T> {
    let v = Vec::with_capacity(n);
    if n * std::mem::size_of::<T>() >= HUGE_PAGE_BYTES {
        sys::advise_huge_pages(&v);
    }
    v
}

/// The hash chain bucket of `(proto, addr, port)` for a table of `mask + 1`
/// heads whose hash seed is `seed`: the key, xored with the seed, mixed by
/// two multiply-xorshift rounds, so that structured keys (consecutive
/// client addresses, ports a fixed step apart) spread like random ones. (A
/// single multiply, as FxHash does, left half the heads empty for such keys
/// at 64K and 1M entries.) The seed is random per table, as the kernel's
/// `ip_vs_conn_rnd` (spec 2.1), so clients cannot pick keys that share a chain.
#[inline]
fn bucket(proto: u8, addr: u32, port: u16, seed: u64, mask: usize) -> usize {
    let key = (u64::from(addr) << 32) | (u64::from(port) << 8) | u64::from(proto);
    let mut x = (key ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 32;
    x = x.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    x ^= x >> 32;
    (x as usize) & mask
}

/// A random hash seed for a new table.
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::hash::RandomState::new().hash_one(0x5eed_u64)
}

impl Store {
    pub fn new() -> Store {
        Store {
            // Every index but NIL.
            entries: MappedVec::with_room(NIL as usize),
            free_head: NIL,
            len: 0,
            heads: vec![NIL; MIN_BUCKETS],
            mask: MIN_BUCKETS - 1,
            seed: random_seed(),
            queues: Vec::new(),
            next_due: u32::MAX,
            hint_ring: [0; HINT_RING],
            hint_at: 0,
            hints: 0,
        }
    }

    /// Bytes held by the arena (the pages it has written), the index and
    /// the queue table (capacities).
    pub fn memory_bytes(&self) -> usize {
        self.entries.resident_bytes()
            + self.heads.capacity() * std::mem::size_of::<u32>()
            + self.queues.capacity() * std::mem::size_of::<Queue>()
    }

    // ---- arena -----------------------------------------------------------

    /// A free slot holding `e`; the caller links it into the index and a queue.
    pub fn alloc(&mut self, e: Entry) -> u32 {
        self.len += 1;
        if self.free_head != NIL {
            let i = self.free_head;
            self.free_head = self.entries[i as usize].hnext;
            self.entries[i as usize] = e;
            return i;
        }
        // Written in place: the arena never moves (module docs).
        self.entries.push(e);
        (self.entries.len() - 1) as u32
    }

    /// Returns slot `i` (already unlinked from index and queue) to the free list.
    pub fn free(&mut self, i: u32) {
        let e = &mut self.entries[i as usize];
        *e = Entry { flags: flag::FREE, hnext: self.free_head, ..Entry::default() };
        self.free_head = i;
        self.len -= 1;
    }

    /// True if slot `i` holds a live entry.
    #[inline]
    pub fn is_live(&self, i: u32) -> bool {
        self.entries.get(i as usize).is_some_and(|e| e.flags & flag::FREE == 0)
    }

    // ---- hash index --------------------------------------------------------

    /// Head of the chain for `(proto, addr, port)`.
    #[inline]
    pub fn chain(&self, proto: u8, addr: u32, port: u16) -> u32 {
        self.heads[bucket(proto, addr, port, self.seed, self.mask)]
    }

    /// Links entry `i` at the head of its chain (newest first, as the kernel's
    /// `hlist_add_head`), growing the index first if it is full.
    pub fn hash(&mut self, i: u32) {
        if self.len as usize > self.grow_at() {
            self.grow_index();
        }
        let e = &self.entries[i as usize];
        let b = bucket(e.proto, e.caddr, e.cport, self.seed, self.mask);
        let e = &mut self.entries[i as usize];
        e.hnext = self.heads[b];
        e.flags |= flag::HASHED;
        self.heads[b] = i;
    }

    /// Unlinks entry `i` from its chain (if it is linked).
    pub fn unhash(&mut self, i: u32) {
        let e = self.entries[i as usize];
        if e.flags & flag::HASHED == 0 {
            return;
        }
        let b = bucket(e.proto, e.caddr, e.cport, self.seed, self.mask);
        if self.heads[b] == i {
            self.heads[b] = e.hnext;
        } else {
            let mut p = self.heads[b];
            while p != NIL {
                let next = self.entries[p as usize].hnext;
                if next == i {
                    self.entries[p as usize].hnext = e.hnext;
                    break;
                }
                p = next;
            }
        }
        let e = &mut self.entries[i as usize];
        e.hnext = NIL;
        e.flags &= !flag::HASHED;
    }

    /// How many entries the index takes before it doubles (module docs).
    fn grow_at(&self) -> usize {
        let n = self.heads.len();
        if n < BIG_INDEX {
            n
        } else {
            n / 8 * 7
        }
    }

    /// Doubles the number of chain heads, keeping each chain's order.
    fn grow_index(&mut self) {
        let new_len = self.heads.len() * 2;
        let new_mask = new_len - 1;
        let mut heads = with_huge_pages(new_len);
        heads.resize(new_len, NIL);
        let old = std::mem::replace(&mut self.heads, heads);
        self.mask = new_mask;
        let mut stack = Vec::new();
        for head in old {
            let mut p = head;
            while p != NIL {
                stack.push(p);
                p = self.entries[p as usize].hnext;
            }
            // Re-insert back to front at the new heads: order is preserved.
            while let Some(i) = stack.pop() {
                let e = &self.entries[i as usize];
                let b = bucket(e.proto, e.caddr, e.cport, self.seed, new_mask);
                self.entries[i as usize].hnext = self.heads[b];
                self.heads[b] = i;
            }
        }
    }

    // ---- timeout queues ----------------------------------------------------

    /// The queue for `(timeout_s, class)`, created (or an empty one reused)
    /// if needed. With 65 535 non-empty queues, falls back to the class's
    /// queue with the largest timeout not above `timeout_s` (or the smallest
    /// one), which keeps every queue sorted at the price of an earlier expiry.
    pub fn queue_for(&mut self, timeout_s: u32, class: Class) -> u16 {
        if let Some(q) = self.queues.iter().position(|q| q.timeout_s == timeout_s && q.class == class) {
            return q as u16;
        }
        let fresh = Queue { timeout_s, class, head: NIL, tail: NIL, len: 0 };
        if let Some(q) = self.queues.iter().position(|q| q.len == 0) {
            self.queues[q] = fresh;
            return q as u16;
        }
        if self.queues.len() < usize::from(u16::MAX) {
            self.queues.push(fresh);
            return (self.queues.len() - 1) as u16;
        }
        let same_class = || self.queues.iter().enumerate().filter(|(_, q)| q.class == class);
        same_class()
            .filter(|(_, q)| q.timeout_s <= timeout_s)
            .max_by_key(|(_, q)| q.timeout_s)
            .or_else(|| same_class().min_by_key(|(_, q)| q.timeout_s))
            .map_or(0, |(i, _)| i as u16)
    }

    /// Appends entry `i` to queue `q` with deadline `expires`.
    #[inline]
    pub fn push(&mut self, i: u32, q: u16, expires: u32) {
        let tail = self.queues[q as usize].tail;
        {
            let e = &mut self.entries[i as usize];
            e.expires = expires;
            e.queue = q;
            e.qprev = tail;
            e.qnext = NIL;
        }
        if tail == NIL {
            self.queues[q as usize].head = i;
        } else {
            self.entries[tail as usize].qnext = i;
        }
        let queue = &mut self.queues[q as usize];
        queue.tail = i;
        queue.len += 1;
        self.next_due = self.next_due.min(expires);
    }

    /// Removes entry `i` from its queue.
    #[inline(always)]
    pub fn unqueue(&mut self, i: u32) {
        let e = self.entries[i as usize];
        let q = e.queue as usize;
        if e.qprev == NIL {
            self.queues[q].head = e.qnext;
        } else {
            self.entries[e.qprev as usize].qnext = e.qnext;
        }
        if e.qnext == NIL {
            self.queues[q].tail = e.qprev;
        } else {
            self.entries[e.qnext as usize].qprev = e.qprev;
        }
        self.queues[q].len -= 1;
        let e = &mut self.entries[i as usize];
        e.qprev = NIL;
        e.qnext = NIL;
    }

    /// Warms the caches for the next two expiries after entry `i`'s (`i` is
    /// about to leave the head of its queue). Expiry walks a queue in order,
    /// and in a big table the entries it reaches next, their chain heads and
    /// the chain entries before them (unhash walks the chain from its head)
    /// are in memory no cache holds: at 600K conns a fifth of a new
    /// connection's time went to unhash's misses alone (BENCHMARKS.md).
    /// A pipeline of prefetches, each stage using what the stage before
    /// fetched one expiry earlier: for the next entry (warmed two expiries
    /// ago, its chain head one ago) the first entry of its chain; for the
    /// entry after it (warmed one ago) its chain head and the entry after it.
    #[inline]
    pub fn prefetch_after(&self, i: u32) {
        let next = self.entries[i as usize].qnext;
        let Some(n) = self.entries.get(next as usize) else { return };
        let first = self.heads[bucket(n.proto, n.caddr, n.cport, self.seed, self.mask)];
        if first != next {
            if let Some(f) = self.entries.get(first as usize) {
                sys::prefetch(f);
            }
        }
        let Some(a) = self.entries.get(n.qnext as usize) else { return };
        sys::prefetch(&self.heads[bucket(a.proto, a.caddr, a.cport, self.seed, self.mask)]);
        if let Some(after) = self.entries.get(a.qnext as usize) {
            sys::prefetch(after);
        }
    }

    /// A prefetch hint for a lookup of `(proto, addr, port)` to come (the
    /// hint pass, `abi` module docs), in three stages so none waits on
    /// memory: now, the key's chain head; [`HINT_STAGE`] hints later (the
    /// head has arrived by then), the first entry of the chain; as many
    /// again later, the second (chains hold about one entry per head at a
    /// full index, so a lookup often walks past the first). Reads only; a
    /// stale ring slot (the index grew meanwhile) only warms the wrong line.
    #[inline]
    pub fn prefetch_key(&mut self, proto: u8, addr: u32, port: u16) {
        self.hints += 1;
        let b = bucket(proto, addr, port, self.seed, self.mask);
        sys::prefetch(&self.heads[b]);
        let mid = self.hint_ring[(self.hint_at + HINT_STAGE) % HINT_RING];
        let old = std::mem::replace(&mut self.hint_ring[self.hint_at], b as u32);
        self.hint_at = (self.hint_at + 1) % HINT_RING;
        if let Some(e) = self.chain_first(mid) {
            sys::prefetch(e);
        }
        if let Some(e) = self.chain_first(old).and_then(|e| self.entries.get(e.hnext as usize)) {
            sys::prefetch(e);
        }
    }

    /// Whether the last [`Store::prefetch_key`] hinted the chain of
    /// `(proto, addr, port)` (for tests of who hints what).
    pub fn last_hint_is(&self, proto: u8, addr: u32, port: u16) -> bool {
        let last = self.hint_ring[(self.hint_at + HINT_RING - 1) % HINT_RING];
        self.hints > 0 && last as usize == bucket(proto, addr, port, self.seed, self.mask)
    }

    /// The first entry of chain `b`, if `b` is a bucket and its chain is not empty.
    fn chain_first(&self, b: u32) -> Option<&Entry> {
        self.heads.get(b as usize).and_then(|&h| self.entries.get(h as usize))
    }

    /// Re-arms entry `i`: new deadline `expires` in queue `q`. An entry that
    /// already is the tail of `q` only gets its deadline updated (a burst of
    /// packets of one flow touches no other entry).
    #[inline(always)]
    pub fn rearm(&mut self, i: u32, q: u16, expires: u32) {
        let (old_q, prev, next) = {
            let e = &self.entries[i as usize];
            (e.queue, e.qprev, e.qnext)
        };
        self.next_due = self.next_due.min(expires);
        // Every live entry is in its queue, so "no next" means "the tail".
        if old_q == q && next == NIL {
            self.entries[i as usize].expires = expires;
            return;
        }
        // `unqueue` then `push`, with the entry's links read once.
        let oq = usize::from(old_q);
        if prev == NIL {
            self.queues[oq].head = next;
        } else {
            self.entries[prev as usize].qnext = next;
        }
        if next == NIL {
            self.queues[oq].tail = prev;
        } else {
            self.entries[next as usize].qprev = prev;
        }
        self.queues[oq].len -= 1;
        let queue = &mut self.queues[q as usize];
        let tail = queue.tail;
        queue.tail = i;
        queue.len += 1;
        if tail == NIL {
            queue.head = i;
        } else {
            self.entries[tail as usize].qnext = i;
        }
        let e = &mut self.entries[i as usize];
        e.expires = expires;
        e.queue = q;
        e.qprev = tail;
        e.qnext = NIL;
    }

    /// The entry due first, with its deadline, if it is due at or before
    /// `now` (relative ms). Ties: the lower class (conns before templates).
    /// Also tightens `next_due` when nothing is due.
    pub fn earliest_due(&mut self, now: u64) -> Option<u32> {
        if u64::from(self.next_due) > now {
            return None;
        }
        let mut best: Option<(u32, Class, u32)> = None;
        for q in &self.queues {
            if q.head == NIL {
                continue;
            }
            let exp = self.entries[q.head as usize].expires;
            if best.is_none_or(|(b, c, _)| (exp, q.class) < (b, c)) {
                best = Some((exp, q.class, q.head));
            }
        }
        match best {
            Some((exp, _, i)) if u64::from(exp) <= now => Some(i),
            Some((exp, _, _)) => {
                self.next_due = exp;
                None
            }
            None => {
                self.next_due = u32::MAX;
                None
            }
        }
    }

    /// The least recently re-armed entry among the heads of `class`'s
    /// queues (last activity = deadline − queue timeout).
    pub fn oldest_of(&self, class: Class) -> Option<u32> {
        self.queues
            .iter()
            .filter(|q| q.class == class && q.head != NIL)
            .map(|q| {
                let armed = i64::from(self.entries[q.head as usize].expires) - i64::from(q.timeout_s) * 1000;
                (armed, q.head)
            })
            .min()
            .map(|(_, i)| i)
    }

    /// Moves every deadline `delta` ms earlier (all are later than `delta`).
    pub fn rebase(&mut self, delta: u32) {
        for e in self.entries.iter_mut() {
            if e.flags & flag::FREE == 0 {
                e.expires = e.expires.saturating_sub(delta);
            }
        }
        if self.next_due != u32::MAX {
            self.next_due = self.next_due.saturating_sub(delta);
        }
    }

    /// Drops everything (the arena's pages go back to the kernel, the
    /// index keeps its size).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.free_head = NIL;
        self.len = 0;
        self.heads.iter_mut().for_each(|h| *h = NIL);
        self.queues.clear();
        self.next_due = u32::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(caddr: u32, cport: u16) -> Entry {
        Entry { caddr, cport, proto: 6, link: NIL, dest: NIL, hnext: NIL, qprev: NIL, qnext: NIL, ..Entry::default() }
    }

    /// Structured keys (consecutive addresses, 16 ports 7 apart each, as
    /// the lb bench's clients) spread over the heads like random keys: about
    /// 1 - 1/e of them in use at one entry per head (FxHash's one multiply
    /// used half), whatever the seed; and tables get different seeds.
    #[test]
    fn structured_keys_spread_over_the_chains() {
        for _ in 0..3 {
            let mut s = Store::new();
            let n = 1u32 << 16;
            for k in 0..n {
                let i = s.alloc(entry(0x6440_0000 + (k >> 4), 20000 + (k & 15) as u16 * 7));
                s.hash(i);
            }
            assert_eq!(s.heads.len(), n as usize);
            let used = s.heads.iter().filter(|&&h| h != NIL).count() as f64 / f64::from(n);
            assert!((0.62..0.645).contains(&used), "{used:.3} of the heads in use (seed {:#x})", s.seed);
        }
        assert_ne!(Store::new().seed, Store::new().seed);
    }

    #[test]
    fn entry_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 48);
        assert_eq!(std::mem::align_of::<Entry>(), 4);
    }

    #[test]
    fn chains_survive_index_growth_in_order() {
        let mut s = Store::new();
        // Two entries with the same key: the newer must stay first.
        let a = s.alloc(entry(7, 7));
        s.hash(a);
        let b = s.alloc(entry(7, 7));
        s.hash(b);
        for k in 0..2000u32 {
            let i = s.alloc(entry(0x0a00_0000 + k, (k % 50000) as u16 + 1));
            s.hash(i);
        }
        assert!(s.heads.len() >= 2048);
        let mut p = s.chain(6, 7, 7);
        let mut seen = Vec::new();
        while p != NIL {
            if s.entries[p as usize].caddr == 7 {
                seen.push(p);
            }
            p = s.entries[p as usize].hnext;
        }
        assert_eq!(seen, vec![b, a]);
        // Every entry is reachable from its own chain, and unhash works.
        for k in 0..2000u32 {
            let (addr, port) = (0x0a00_0000 + k, (k % 50000) as u16 + 1);
            let mut p = s.chain(6, addr, port);
            while p != NIL && s.entries[p as usize].caddr != addr {
                p = s.entries[p as usize].hnext;
            }
            assert_ne!(p, NIL);
            s.unhash(p);
            assert_eq!(s.entries[p as usize].flags & flag::HASHED, 0);
        }
    }

    #[test]
    fn queues_pop_in_deadline_order_and_reuse_slots() {
        let mut s = Store::new();
        let q10 = s.queue_for(10, Class::Transient);
        let a = s.alloc(entry(1, 1));
        s.push(a, q10, 10_000);
        // Only an empty queue may be recycled for another timeout or class.
        let q60 = s.queue_for(60, Class::Template);
        assert_ne!(q60, q10);
        assert_eq!(s.queue_for(10, Class::Transient), q10);
        let b = s.alloc(entry(2, 2));
        let c = s.alloc(entry(3, 3));
        s.push(b, q60, 10_000);
        s.push(c, q10, 12_000);
        // Same deadline: the conn (transient) before the template.
        assert_eq!(s.earliest_due(10_000), Some(a));
        s.unqueue(a);
        assert_eq!(s.earliest_due(10_000), Some(b));
        s.unqueue(b);
        assert_eq!(s.earliest_due(11_999), None);
        assert_eq!(s.next_due, 12_000);
        // Re-arming the tail in place.
        s.rearm(c, q10, 15_000);
        assert_eq!(s.queues[q10 as usize].len, 1);
        assert_eq!(s.earliest_due(15_000), Some(c));
        s.unqueue(c);
        s.free(c);
        assert_eq!(s.alloc(entry(4, 4)), c);
        // Empty queues are recycled for new timeouts.
        let q = s.queue_for(77, Class::Transient);
        assert!(q == q10 || q == q60);
    }

    #[test]
    fn oldest_of_uses_last_activity_across_queues() {
        let mut s = Store::new();
        let q120 = s.queue_for(120, Class::Transient);
        let a = s.alloc(entry(1, 1));
        s.push(a, q120, 1_000 + 120_000); // armed at 1 s
        let q10 = s.queue_for(10, Class::Transient);
        let b = s.alloc(entry(2, 2));
        s.push(b, q10, 2_000 + 10_000); // armed at 2 s, due much earlier
        assert_ne!(q10, q120);
        assert_eq!(s.oldest_of(Class::Transient), Some(a));
        assert_eq!(s.oldest_of(Class::Established), None);
    }
}
