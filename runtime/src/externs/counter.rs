//! `counter(size)`: packet and byte counters, indexed by the program.

/// An array of packet and byte counters (one `counter` instance).
#[derive(Clone, Debug)]
pub struct Counter {
    /// The instance's qualified name (`MyIngress.per_port`).
    pub name: String,
    packets: Vec<u64>,
    bytes: Vec<u64>,
    /// `count` calls whose index was out of range (counted, never a panic).
    errors: u64,
}

impl Counter {
    /// A counter array of `size` zeroed cells.
    pub fn new(name: &str, size: usize) -> Counter {
        Counter { name: name.to_string(), packets: vec![0; size], bytes: vec![0; size], errors: 0 }
    }

    /// Counts one packet of `bytes` bytes at `index`; an out-of-range index
    /// is recorded as an error.
    pub fn count(&mut self, index: u128, bytes: u64) {
        match usize::try_from(index).ok().filter(|i| *i < self.packets.len()) {
            Some(i) => {
                self.packets[i] += 1;
                self.bytes[i] += bytes;
            }
            None => self.errors += 1,
        }
    }

    /// `(packets, bytes)` at `index`, if in range.
    pub fn read(&self, index: usize) -> Option<(u64, u64)> {
        Some((*self.packets.get(index)?, *self.bytes.get(index)?))
    }

    /// Zeroes every cell (the control plane's `counter_reset`).
    pub fn reset(&mut self) {
        self.packets.fill(0);
        self.bytes.fill(0);
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
        (self.packets.iter().sum(), self.bytes.iter().sum())
    }

    /// `count` calls with an out-of-range index.
    pub fn errors(&self) -> u64 {
        self.errors
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
        c.reset();
        assert_eq!(c.totals(), (0, 0));
    }
}
