//! [`MappedVec`]: a growable array in an anonymous mapping of its own, for
//! the connection table's arena.
//!
//! A `Vec` that grows by `realloc` either moves (a copy of everything, a
//! pause of tens of milliseconds at hundreds of MiB) or, when glibc can
//! `mremap` it, cannot be backed by transparent huge pages: advice covers
//! whole pages inside the allocation, glibc's chunk header page stays
//! unadvised, the mapping splits in two and `mremap` of a split mapping
//! fails, so glibc copies. At millions of connections every lookup reads a
//! random 48-byte entry; with 4 KiB pages that is also a TLB miss (the
//! arena of 4M connections spans 51,200 small pages, or 100 huge ones).
//!
//! So the arena reserves address space for everything it could ever hold
//! up front (`MAP_NORESERVE`: no memory is committed, untouched pages cost
//! nothing) and grows by writing further into it: no copy, no move, entries
//! never change address. Once it spans [`HUGE_FROM`] bytes it asks for
//! transparent huge pages for the whole reservation and collapses the part
//! already written (`MADV_COLLAPSE`, Linux 6.1; best effort); below that,
//! small tables stay in 4 KiB pages so their slack stays small. Where the
//! reservation cannot be had (a `ulimit -v`, strict overcommit) a smaller
//! one is taken and moved by `mremap` when full, which never copies either.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Bytes of a transparent huge page (x86-64 and the usual Arm setup).
const HUGE_PAGE: usize = 2 << 20;
/// Bytes of a base page.
const PAGE: usize = 4096;
/// Size at which the array asks for huge pages: from here on, the slack of
/// a partly written last huge page is at most 1/8 of the array.
pub const HUGE_FROM: usize = 8 * HUGE_PAGE;
/// `MADV_COLLAPSE` (Linux 6.1, `uapi/asm-generic/mman-common.h`); not in
/// the `libc` crate.
const MADV_COLLAPSE: libc::c_int = 25;

/// A growable array of `Copy` values in an anonymous mapping reserved for
/// up to `room` of them (module docs). Dereferences to the slice of the
/// values pushed so far, like a `Vec`.
pub struct MappedVec<T: Copy> {
    /// The mapping as `mmap` returned it, and its length in bytes.
    map: NonNull<u8>,
    map_len: usize,
    /// First element: the first huge-page boundary in the mapping (when
    /// the reservation was made; after an `mremap` move, wherever it fell).
    data: NonNull<T>,
    /// Elements pushed.
    len: usize,
    /// Elements the mapping has room for after `data`.
    room: usize,
    /// Most elements ever pushed since the last [`MappedVec::clear`]: the
    /// pages up to there have been written, so they are resident.
    touched: usize,
    /// Huge pages were asked for.
    huge: bool,
}

// SAFETY: a `MappedVec` owns its mapping outright (no other pointer to it
// exists outside `&`/`&mut` borrows of the `MappedVec`), exactly as a
// `Vec<T>` owns its buffer, so it can move between and be shared by
// threads whenever `T` can.
unsafe impl<T: Copy + Send> Send for MappedVec<T> {}
// SAFETY: as for `Send`: shared access only hands out `&[T]`.
unsafe impl<T: Copy + Sync> Sync for MappedVec<T> {}

impl<T: Copy> MappedVec<T> {
    /// An empty array with address space for `room` elements (less where the
    /// system refuses that much: it then grows by moving its mapping).
    /// Panics only if not even a small mapping can be had, as a `Vec` aborts
    /// when memory runs out.
    pub fn with_room(room: usize) -> MappedVec<T> {
        let size = size_of::<T>().max(1);
        let mut want = room.max(1);
        loop {
            let bytes = want.checked_mul(size).and_then(|b| b.checked_add(HUGE_PAGE));
            if let Some((map, map_len)) = bytes.and_then(map_anonymous) {
                // The first huge-page boundary: whole huge pages from `data` on.
                let start = map.as_ptr() as usize;
                let skip = start.next_multiple_of(HUGE_PAGE) - start;
                // SAFETY: `skip < HUGE_PAGE`, and the mapping is `want * size +
                // HUGE_PAGE` bytes long, so `data` is inside it; `mmap`
                // returns page-aligned memory, so `data` (a huge-page
                // boundary) is aligned for any `T`.
                let data = unsafe { NonNull::new_unchecked(map.as_ptr().add(skip).cast::<T>()) };
                let room = (map_len - skip) / size;
                return MappedVec { map, map_len, data, len: 0, room, touched: 0, huge: false };
            }
            assert!(want > 1, "no address space for a {size}-byte mapping");
            want /= 2;
        }
    }

    /// Elements the mapping has room for without moving.
    pub fn room(&self) -> usize {
        self.room
    }

    /// True if the array has asked the kernel for transparent huge pages.
    pub fn huge_pages(&self) -> bool {
        self.huge
    }

    /// Appends `v`. Never copies the elements already there.
    #[inline]
    pub fn push(&mut self, v: T) {
        if self.len == self.room {
            self.grow();
        }
        // SAFETY: `len < room`, so the slot is inside the mapping (and
        // aligned: `data` is, and slots are `size_of::<T>()` apart).
        unsafe { self.data.as_ptr().add(self.len).write(v) };
        self.len += 1;
        if self.len > self.touched {
            self.touched = self.len;
            if !self.huge && self.touched * size_of::<T>() >= HUGE_FROM {
                self.advise_huge();
            }
        }
    }

    /// Forgets every element and gives the written pages back to the
    /// kernel (the reservation stays).
    pub fn clear(&mut self) {
        let bytes = (self.touched * size_of::<T>()).next_multiple_of(PAGE);
        // SAFETY: `[data, data + bytes)` lies in the mapping (`touched <=
        // room`; `data` and the mapping's end are page-aligned) and no
        // reference into it outlives `&mut self`. MADV_DONTNEED on private
        // anonymous memory makes the pages read back as zeros; nothing
        // reads them before writing again (`len` is 0).
        unsafe { libc::madvise(self.data.as_ptr().cast(), bytes, libc::MADV_DONTNEED) };
        self.len = 0;
        self.touched = 0;
    }

    /// Bytes of memory the array holds: the pages written so far (whole
    /// huge pages once they were asked for), not the address space.
    pub fn resident_bytes(&self) -> usize {
        let page = if self.huge { HUGE_PAGE } else { PAGE };
        (self.touched * size_of::<T>()).next_multiple_of(page)
    }

    /// Asks for huge pages over the whole reservation and collapses the
    /// part already written into them (both best effort: without THP the
    /// array works the same on small pages).
    fn advise_huge(&mut self) {
        self.huge = true;
        let room_bytes = (self.room * size_of::<T>()) & !(PAGE - 1);
        let written = (self.touched * size_of::<T>()) & !(HUGE_PAGE - 1);
        // SAFETY: both ranges start at `data` (page-aligned) and lie in the
        // mapping; the advice changes how the kernel backs the memory, never
        // what it holds (a collapse copies the pages' contents).
        unsafe {
            libc::madvise(self.data.as_ptr().cast(), room_bytes, libc::MADV_HUGEPAGE);
            libc::madvise(self.data.as_ptr().cast(), written, MADV_COLLAPSE);
        }
    }

    /// Doubles the room by moving the mapping (`mremap`: page tables move,
    /// contents are not copied). Only when the first reservation was cut.
    #[cold]
    fn grow(&mut self) {
        let new_len = self.map_len.checked_mul(2).expect("mapping size overflows");
        let skip = self.data.as_ptr() as usize - self.map.as_ptr() as usize;
        // SAFETY: `map`/`map_len` is our mapping, whole; MREMAP_MAYMOVE
        // returns a mapping holding the same contents at the same offsets.
        // No reference into the old one outlives `&mut self`.
        let p = unsafe { libc::mremap(self.map.as_ptr().cast(), self.map_len, new_len, libc::MREMAP_MAYMOVE) };
        assert!(p != libc::MAP_FAILED, "cannot grow a {}-byte mapping", self.map_len);
        // SAFETY: `p` is not null (MAP_FAILED was excluded); `skip` is
        // inside the new, longer mapping and keeps `data`'s alignment
        // (`p` is page-aligned and `skip` a multiple of the page size).
        unsafe {
            self.map = NonNull::new_unchecked(p.cast::<u8>());
            self.data = NonNull::new_unchecked(p.cast::<u8>().add(skip).cast::<T>());
        }
        self.map_len = new_len;
        self.room = (new_len - skip) / size_of::<T>().max(1);
        if self.huge {
            self.huge = false;
            self.advise_huge();
        }
    }
}

/// A private anonymous read-write mapping of `bytes` with no memory
/// committed (`MAP_NORESERVE`), or `None` if the system refuses it.
fn map_anonymous(bytes: usize) -> Option<(NonNull<u8>, usize)> {
    let bytes = bytes.next_multiple_of(PAGE);
    // SAFETY: a fresh anonymous mapping the kernel places; no existing
    // memory is affected. The result is checked before use.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    NonNull::new(p.cast::<u8>()).map(|p| (p, bytes))
}

impl<T: Copy> Drop for MappedVec<T> {
    fn drop(&mut self) {
        // SAFETY: `map`/`map_len` is our mapping, whole, and nothing
        // borrows from it any more.
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.map_len) };
    }
}

impl<T: Copy> Deref for MappedVec<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` slots were written by `push`, lie in the
        // mapping and are aligned; the borrow of `self` keeps them alive
        // and unchanged.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for MappedVec<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) }
    }
}

impl<T: Copy> Clone for MappedVec<T> {
    /// A copy with as much room, on huge pages if `self` is (asked for
    /// before the copy writes, so the copy is born on them).
    fn clone(&self) -> MappedVec<T> {
        let mut c = MappedVec::with_room(self.room);
        if self.huge {
            c.advise_huge();
        }
        for &v in self.iter() {
            c.push(v);
        }
        c
    }
}

impl<T: Copy + fmt::Debug> fmt::Debug for MappedVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values pushed read back; growing past a small reservation moves the
    /// mapping and keeps every value; clearing empties it for reuse.
    #[test]
    fn pushes_read_back_across_moves_and_clears() {
        let mut v: MappedVec<u64> = MappedVec::with_room(10);
        let room = v.room();
        assert!(room >= 10);
        let n = 5 * room + 3; // at least two moves
        for i in 0..n as u64 {
            v.push(i * 3);
        }
        assert!(v.room() >= n);
        assert_eq!(v.len(), n);
        assert!(v.iter().enumerate().all(|(i, &x)| x == 3 * i as u64));
        v[7] = 1;
        assert_eq!(v.get(7), Some(&1));
        assert_eq!(v.get(n), None);
        let c = v.clone();
        assert_eq!(&c[..], &v[..]);
        v.clear();
        assert!(v.is_empty());
        assert_eq!(v.resident_bytes(), 0);
        v.push(9);
        assert_eq!(&v[..], &[9]);
        assert_eq!(c.len(), n, "the clone is independent");
    }

    /// Below [`HUGE_FROM`] the array is on small pages and holds its written
    /// pages only; past it, it asks for huge pages (the kernel marks the
    /// mapping `hg` where THP is available) and its contents are intact.
    #[test]
    fn asks_for_huge_pages_past_the_threshold() {
        let mut v: MappedVec<[u64; 6]> = MappedVec::with_room(u32::MAX as usize);
        let per_page = PAGE / 48;
        for i in 0..per_page + 1 {
            v.push([i as u64; 6]);
        }
        assert!(!v.huge_pages());
        assert_eq!(v.resident_bytes(), 2 * PAGE);
        let n = HUGE_FROM / 48 + 1;
        for i in per_page + 1..n {
            v.push([i as u64; 6]);
        }
        assert!(v.huge_pages());
        assert_eq!(v.resident_bytes(), HUGE_FROM + HUGE_PAGE);
        assert!(v.iter().enumerate().all(|(i, e)| *e == [i as u64; 6]));
        let c = v.clone();
        assert!(c.huge_pages());
        assert_eq!(&c[..], &v[..]);
        if let Some(flags) = super::super::tests::vm_flags_at(v.as_ptr() as usize + HUGE_PAGE) {
            let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
            if !thp.contains("[never]") && !thp.is_empty() {
                assert!(flags.split_whitespace().any(|f| f == "hg"), "no hg in VmFlags:{flags}");
            }
        }
    }
}
