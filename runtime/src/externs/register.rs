//! `register<T>(size)`: values kept across packets.

/// An array of `bit<W>` values (one `register` instance).
#[derive(Clone, Debug)]
pub struct Register {
    /// The instance's qualified name (`MyIngress.r`).
    pub name: String,
    /// The width of `T`; written values are masked to it.
    width: u16,
    values: Vec<u128>,
    /// Reads and writes with an out-of-range index.
    errors: u64,
}

impl Register {
    /// A register array of `size` zeroed cells of `width` bits.
    pub fn new(name: &str, width: u16, size: usize) -> Register {
        Register { name: name.to_string(), width: width.clamp(1, 128), values: vec![0; size], errors: 0 }
    }

    /// The value at `index`; 0 (and an error counted) when out of range.
    pub fn read(&mut self, index: u128) -> u128 {
        match usize::try_from(index).ok().and_then(|i| self.values.get(i)) {
            Some(v) => *v,
            None => {
                self.errors += 1;
                0
            }
        }
    }

    /// Stores `value` (masked to the width) at `index`; out of range is ignored and counted.
    pub fn write(&mut self, index: u128, value: u128) {
        let mask = if self.width >= 128 { u128::MAX } else { (1u128 << self.width) - 1 };
        match usize::try_from(index).ok().and_then(|i| self.values.get_mut(i)) {
            Some(v) => *v = value & mask,
            None => self.errors += 1,
        }
    }

    /// The value at `index` without counting errors (control-plane reads).
    pub fn get(&self, index: usize) -> Option<u128> {
        self.values.get(index).copied()
    }

    /// The width of the stored values.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// The number of cells.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the array has no cells.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Reads and writes with an out-of-range index.
    pub fn errors(&self) -> u64 {
        self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_write_mask_and_out_of_range() {
        let mut r = Register::new("r", 12, 8);
        r.write(3, 0xABCD);
        assert_eq!(r.read(3), 0xBCD);
        assert_eq!(r.read(8), 0);
        r.write(100, 1);
        r.write(u128::MAX, 1);
        assert_eq!(r.errors(), 3);
        assert_eq!(r.get(3), Some(0xBCD));
        let mut wide = Register::new("w", 128, 1);
        wide.write(0, u128::MAX);
        assert_eq!(wide.read(0), u128::MAX);
    }
}
