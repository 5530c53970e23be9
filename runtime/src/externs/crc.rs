//! The CRCs behind `hash_crc32` and `hash_crc16`, table-driven, over the
//! big-endian concatenation of a call's elements (see [`super::checksum::for_each_byte`]).

use super::checksum::for_each_byte;

/// Builds the 256-entry table of a reflected CRC with polynomial `poly` (reflected form).
const fn reflected_table(poly: u32) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// CRC-32/ISO-HDLC (IEEE 802.3): reflected polynomial 0xEDB88320.
static CRC32_TABLE: [u32; 256] = reflected_table(0xEDB8_8320);
/// CRC-16/ARC: reflected polynomial 0xA001 (0x8005).
static CRC16_TABLE: [u32; 256] = reflected_table(0xA001);

/// Running CRC-32 (IEEE): init 0xFFFFFFFF, reflected, final xor 0xFFFFFFFF.
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Self {
        Crc32(0xFFFF_FFFF)
    }
}

impl Crc32 {
    /// Feeds one byte.
    pub fn byte(&mut self, b: u8) {
        self.0 = CRC32_TABLE[((self.0 ^ u32::from(b)) & 0xFF) as usize] ^ (self.0 >> 8);
    }

    /// The CRC of the bytes fed so far.
    pub fn value(&self) -> u32 {
        !self.0
    }
}

/// Running CRC-16/ARC: init 0, reflected, no final xor.
#[derive(Default)]
pub struct Crc16(u16);

impl Crc16 {
    /// Feeds one byte.
    pub fn byte(&mut self, b: u8) {
        let i = ((self.0 ^ u16::from(b)) & 0xFF) as usize;
        self.0 = (CRC16_TABLE[i] as u16) ^ (self.0 >> 8);
    }

    /// The CRC of the bytes fed so far.
    pub fn value(&self) -> u16 {
        self.0
    }
}

/// CRC-32 (IEEE) of the concatenation of `elems`.
pub fn crc32(elems: impl IntoIterator<Item = (u128, u16)>) -> u32 {
    let mut c = Crc32::default();
    for_each_byte(elems, |b| c.byte(b));
    c.value()
}

/// CRC-16 (ARC) of the concatenation of `elems`.
pub fn crc16(elems: impl IntoIterator<Item = (u128, u16)>) -> u16 {
    let mut c = Crc16::default();
    for_each_byte(elems, |b| c.byte(b));
    c.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &[u8]) -> impl Iterator<Item = (u128, u16)> + '_ {
        s.iter().map(|b| (u128::from(*b), 8))
    }

    #[test]
    fn check_values() {
        // The standard check input "123456789" (the CRC catalogue's `check`).
        assert_eq!(crc32(bytes(b"123456789")), 0xCBF4_3926);
        assert_eq!(crc16(bytes(b"123456789")), 0xBB3D);
        assert_eq!(crc32(bytes(b"")), 0);
        assert_eq!(crc16(bytes(b"")), 0);
    }

    #[test]
    fn elements_are_concatenated_big_endian() {
        // "1234" as one 32-bit element, as two 16-bit ones, and as bytes.
        let whole = crc32([(0x3132_3334, 32)]);
        assert_eq!(whole, crc32([(0x3132, 16), (0x3334, 16)]));
        assert_eq!(whole, crc32(bytes(b"1234")));
        assert_eq!(crc16([(0x31, 8), (0x3233_3435_3637_3839, 64)]), 0xBB3D);
    }

    #[test]
    fn five_tuple_hash_is_stable() {
        // zlib.crc32 of the 13-byte 5-tuple 10.0.0.1:1234 -> 10.0.0.2:80/TCP.
        let tuple = [(0x0a00_0001, 32), (0x0a00_0002, 32), (1234, 16), (80, 16), (6, 8)];
        let mut raw = Vec::new();
        for_each_byte(tuple, |b| raw.push(b));
        assert_eq!(raw, [10, 0, 0, 1, 10, 0, 0, 2, 0x04, 0xd2, 0, 80, 6]);
        assert_eq!(crc32(tuple), 0x280a_4fbc);
        assert_eq!(crc32(tuple), crc32(bytes(&raw)));
    }
}
