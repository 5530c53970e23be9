//! `counter(size)`: packet and byte counters, indexed by the program.
//!
//! The cells are [`Cell`]s: compiled code counts into them itself, through
//! the pointers of [`Counter::image`] (the abi's `CounterImage`), between
//! the runtime's own accesses, which only ever go through shared references
//! to the cells. The arrays are never reallocated, so those pointers stay
//! valid as long as the counter exists.

use std::cell::Cell;

use p4lite_compiler::abi::CounterImage;

/// An array of packet and byte counters (one `counter` instance).
#[derive(Clone, Debug)]
pub struct Counter {
    /// The instance's qualified name (`MyIngress.per_port`).
    pub name: String,
    packets: Box<[Cell<u64>]>,
    bytes: Box<[Cell<u64>]>,
    /// `count` calls whose index was out of range (counted, never a panic).
    errors: Box<Cell<u64>>,
}

impl Counter {
    /// A counter array of `size` zeroed cells.
    pub fn new(name: &str, size: usize) -> Counter {
        let cells = || (0..size).map(|_| Cell::new(0)).collect();
        Counter { name: name.to_string(), packets: cells(), bytes: cells(), errors: Box::new(Cell::new(0)) }
    }

    /// Counts one packet of `bytes` bytes at `index`; an out-of-range index
    /// is recorded as an error.
    pub fn count(&mut self, index: u128, bytes: u64) {
        match usize::try_from(index).ok().filter(|i| *i < self.packets.len()) {
            Some(i) => {
                self.packets[i].set(self.packets[i].get() + 1);
                self.bytes[i].set(self.bytes[i].get() + bytes);
            }
            None => self.errors.set(self.errors.get() + 1),
        }
    }

    /// Where compiled code counts (`abi::CounterImage`).
    pub fn image(&self) -> CounterImage {
        CounterImage {
            packets: self.packets.as_ptr().cast::<u64>().cast_mut(),
            bytes: self.bytes.as_ptr().cast::<u64>().cast_mut(),
            size: self.packets.len() as u64,
            errors: self.errors.as_ptr(),
        }
    }

    /// `(packets, bytes)` at `index`, if in range.
    pub fn read(&self, index: usize) -> Option<(u64, u64)> {
        Some((self.packets.get(index)?.get(), self.bytes.get(index)?.get()))
    }

    /// Sets the cell at `index` (the control plane's `counter_write`);
    /// false when out of range.
    pub fn write(&mut self, index: usize, packets: u64, bytes: u64) -> bool {
        match (self.packets.get(index), self.bytes.get(index)) {
            (Some(p), Some(b)) => {
                p.set(packets);
                b.set(bytes);
                true
            }
            _ => false,
        }
    }

    /// Zeroes every cell (the control plane's `counter_reset`).
    pub fn reset(&mut self) {
        self.packets.iter().chain(self.bytes.iter()).for_each(|c| c.set(0));
    }

    /// The number of cells.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether the array has no cells.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Total `(packets, bytes)` over all cells.
    pub fn totals(&self) -> (u64, u64) {
        (self.packets.iter().map(Cell::get).sum(), self.bytes.iter().map(Cell::get).sum())
    }

    /// `count` calls with an out-of-range index.
    pub fn errors(&self) -> u64 {
        self.errors.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_packets_and_bytes_and_out_of_range_errors() {
        let mut c = Counter::new("MyIngress.per_port", 4);
        c.count(1, 60);
        c.count(1, 1514);
        c.count(3, 42);
        c.count(4, 100);
        c.count(u128::MAX, 100);
        assert_eq!(c.read(1), Some((2, 1574)));
        assert_eq!(c.read(3), Some((1, 42)));
        assert_eq!(c.read(0), Some((0, 0)));
        assert_eq!(c.read(4), None);
        assert_eq!(c.errors(), 2);
        assert_eq!(c.totals(), (3, 1616));
        assert!(c.write(2, 7, 700) && !c.write(4, 1, 1));
        assert_eq!(c.read(2), Some((7, 700)));
        c.reset();
        assert_eq!(c.totals(), (0, 0));
    }
}
