//! Internet checksums: RFC 1071 (`csum16`) and the RFC 1624 incremental
//! update (`csum16_replace`), over the big-endian concatenation of
//! `(value, width)` elements, the way a call site passes a header or a list.

/// Packs `(value, width)` elements, most significant bit first, into bytes.
///
/// The elements of a header or list argument are whole bytes in total (the
/// checker enforces it); if they are not, the last byte is padded with zero
/// bits on the right.
#[derive(Default)]
pub struct BitPacker {
    /// Pending bits, right-aligned; fewer than 8 of them.
    acc: u16,
    /// How many bits `acc` holds.
    nbits: u32,
}

impl BitPacker {
    /// Appends the low `width` bits of `value`, calling `out` for each completed byte.
    pub fn push(&mut self, value: u128, width: u16, out: &mut impl FnMut(u8)) {
        let mut rem = u32::from(width.min(128));
        // Fast path: byte-aligned element of whole bytes.
        if self.nbits == 0 && rem % 8 == 0 {
            while rem > 0 {
                rem -= 8;
                out((value >> rem) as u8);
            }
            return;
        }
        while rem > 0 {
            let take = (8 - self.nbits).min(rem);
            let chunk = ((value >> (rem - take)) as u16) & ((1u16 << take) - 1);
            self.acc = (self.acc << take) | chunk;
            self.nbits += take;
            rem -= take;
            if self.nbits == 8 {
                out(self.acc as u8);
                self.acc = 0;
                self.nbits = 0;
            }
        }
    }

    /// Emits a final partial byte, padded with zero bits, if any bits are pending.
    pub fn finish(&mut self, out: &mut impl FnMut(u8)) {
        if self.nbits > 0 {
            out((self.acc << (8 - self.nbits)) as u8);
            self.acc = 0;
            self.nbits = 0;
        }
    }
}

/// Calls `f` on each byte of the big-endian concatenation of `elems`.
pub fn for_each_byte(elems: impl IntoIterator<Item = (u128, u16)>, mut f: impl FnMut(u8)) {
    let mut p = BitPacker::default();
    for (v, w) in elems {
        p.push(v, w, &mut f);
    }
    p.finish(&mut f);
}

/// Accumulates the ones' complement sum of a byte stream taken as 16-bit
/// big-endian words (an odd final byte is padded with a zero byte, RFC 1071).
#[derive(Default)]
pub struct OnesSum {
    /// Unfolded sum; folded on read. A u64 cannot overflow for any packet.
    sum: u64,
    /// The high byte of a word whose low byte has not arrived yet.
    high: Option<u8>,
}

impl OnesSum {
    /// Adds one byte of the stream.
    pub fn byte(&mut self, b: u8) {
        match self.high.take() {
            Some(h) => self.sum += u64::from(u16::from_be_bytes([h, b])),
            None => self.high = Some(b),
        }
    }

    /// Adds one whole 16-bit word (only valid at a word boundary).
    pub fn word(&mut self, w: u16) {
        self.sum += u64::from(w);
    }

    /// The folded 16-bit ones' complement sum (end-around carry).
    pub fn fold(&self) -> u16 {
        let mut s = self.sum;
        if let Some(h) = self.high {
            s += u64::from(h) << 8;
        }
        while s > 0xFFFF {
            s = (s & 0xFFFF) + (s >> 16);
        }
        s as u16
    }
}

/// RFC 1071 Internet checksum of the concatenation of `elems`: the ones'
/// complement of the ones' complement sum of its 16-bit words.
pub fn csum16(elems: impl IntoIterator<Item = (u128, u16)>) -> u16 {
    csum16_then_bytes(elems, &[])
}

/// RFC 1071 Internet checksum of the concatenation of `elems` followed by
/// `bytes` (a message's headers, then its payload): the byte stream is one,
/// so an odd number of header bytes pairs the last with the payload's first.
pub fn csum16_then_bytes(elems: impl IntoIterator<Item = (u128, u16)>, bytes: &[u8]) -> u16 {
    let mut sum = OnesSum::default();
    for_each_byte(elems, |b| sum.byte(b));
    bytes.iter().for_each(|b| sum.byte(*b));
    !sum.fold()
}

/// RFC 1071 Internet checksum of a byte slice.
pub fn csum16_bytes(bytes: &[u8]) -> u16 {
    let mut sum = OnesSum::default();
    bytes.iter().for_each(|b| sum.byte(*b));
    !sum.fold()
}

/// RFC 1624 eqn. 3 incremental update: `HC' = ~(~HC + ~m + m')`, with `m`
/// and `m'` running over the 16-bit words of the old and new values (each
/// the big-endian concatenation of its elements).
///
/// Using ones' complement addition throughout (never subtraction, which is
/// eqn. 2's 0x0000/0xFFFF bug) the result equals a full recomputation for
/// every header whose checksum was itself computed (i.e. is not 0xFFFF).
pub fn csum16_replace(
    csum: u16,
    old: impl IntoIterator<Item = (u128, u16)>,
    new: impl IntoIterator<Item = (u128, u16)>,
) -> u16 {
    let mut sum = OnesSum::default();
    sum.word(!csum);
    // ~m summed word by word: complement each completed old word.
    let mut old_words = OnesSum::default();
    for_each_byte(old, |b| match old_words.high.take() {
        Some(h) => old_words.word(!u16::from_be_bytes([h, b])),
        None => old_words.high = Some(b),
    });
    if let Some(h) = old_words.high.take() {
        old_words.word(!u16::from_be_bytes([h, 0]));
    }
    sum.sum += old_words.sum;
    for_each_byte(new, |b| sum.byte(b));
    !sum.fold()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use p4lite_compiler::rng::Rng;

    /// The IPv4 header of the Wikipedia "IPv4 header checksum" example
    /// (172.16.10.99 → 172.16.10.12, TCP), checksum 0xb1e6.
    const IPV4_B1E6: [u8; 20] = [
        0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0xb1, 0xe6, 0xac, 0x10, 0x0a, 0x63, 0xac, 0x10,
        0x0a, 0x0c,
    ];

    /// A TCP SYN built and checksummed by scapy (`Ether/IP/TCP` with MSS,
    /// SACK-permitted, timestamp, NOP and window-scale options):
    /// IPv4 checksum 0x52c3, TCP checksum 0x99dd.
    pub(crate) const TCP_SYN: &str = "00112233445566778899aabb08004500003c1c464000400652c3c0a8010a0a0000019c4000501234567800000000a002faf099dd0000020405b40402080a0001e2400000000001030307";

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0)).collect()
    }

    /// The TCP checksum of an IPv4/TCP segment, computed over the pseudo-header.
    fn tcp_csum(ip: &[u8], tcp: &[u8]) -> u16 {
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(tcp);
        csum16_bytes(&pseudo)
    }

    #[test]
    fn rfc1071_known_ipv4_header() {
        let mut h = IPV4_B1E6;
        assert_eq!(csum16_bytes(&h), 0, "a valid header sums to 0xFFFF");
        h[10] = 0;
        h[11] = 0;
        assert_eq!(csum16_bytes(&h), 0xb1e6);
    }

    #[test]
    fn csum16_of_header_fields_by_width() {
        // The same header as IPv4 field elements of their wire widths
        // (4-bit version/ihl, 3-bit flags, 13-bit fragment offset).
        let fields: [(u128, u16); 12] = [
            (4, 4),
            (5, 4),
            (0, 8),
            (0x3c, 16),
            (0x1c46, 16),
            (2, 3),
            (0, 13),
            (0x40, 8),
            (6, 8),
            (0, 16),
            (0xac100a63, 32),
            (0xac100a0c, 32),
        ];
        assert_eq!(csum16(fields), 0xb1e6);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(csum16_bytes(&[0x12, 0x34, 0x56]), !(0x1234u16 + 0x5600));
        assert_eq!(csum16([(0x123456, 24)]), !(0x1234u16 + 0x5600));
    }

    #[test]
    fn scapy_tcp_syn_checksums() {
        let p = hex(TCP_SYN);
        let (ip, tcp) = (&p[14..34], &p[34..]);
        assert_eq!(csum16_bytes(ip), 0);
        assert_eq!(tcp_csum(ip, tcp), 0);
        let mut ip0 = ip.to_vec();
        ip0[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(csum16_bytes(&ip0), 0x52c3);
        let mut tcp0 = tcp.to_vec();
        tcp0[16..18].copy_from_slice(&[0, 0]);
        assert_eq!(tcp_csum(ip, &tcp0), 0x99dd);
    }

    #[test]
    fn replace_matches_full_recompute_on_random_rewrites() {
        let p = hex(TCP_SYN);
        let mut ip = p[14..34].to_vec();
        let mut tcp = p[34..].to_vec();
        let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
        for round in 0..5000 {
            // Rewrite the IPv4 destination (32 bits: two words, in both
            // checksums), a TCP port (16 bits) or the TTL/protocol word.
            let which = rng.next() % 3;
            let (ip_csum, tcp_csum_old) =
                (u16::from_be_bytes([ip[10], ip[11]]), u16::from_be_bytes([tcp[16], tcp[17]]));
            match which {
                0 => {
                    let old = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
                    // Every few rounds use extreme values to hit the 0x0000/0xFFFF corners.
                    let new = match round % 7 {
                        0 => 0,
                        1 => 0xFFFF_FFFF,
                        _ => rng.next() as u32,
                    };
                    ip[16..20].copy_from_slice(&new.to_be_bytes());
                    let ip_new = csum16_replace(ip_csum, [(old.into(), 32)], [(new.into(), 32)]);
                    let tcp_new = csum16_replace(tcp_csum_old, [(old.into(), 32)], [(new.into(), 32)]);
                    ip[10..12].copy_from_slice(&ip_new.to_be_bytes());
                    tcp[16..18].copy_from_slice(&tcp_new.to_be_bytes());
                }
                1 => {
                    let old = u16::from_be_bytes([tcp[2], tcp[3]]);
                    let new = if round % 5 == 0 { 0xFFFF } else { rng.next() as u16 };
                    tcp[2..4].copy_from_slice(&new.to_be_bytes());
                    let tcp_new = csum16_replace(tcp_csum_old, [(old.into(), 16)], [(new.into(), 16)]);
                    tcp[16..18].copy_from_slice(&tcp_new.to_be_bytes());
                }
                _ => {
                    // TTL and protocol as two 8-bit elements of one word.
                    let (old_ttl, proto) = (ip[8], ip[9]);
                    let new_ttl = rng.next() as u8;
                    ip[8] = new_ttl;
                    let ip_new = csum16_replace(
                        ip_csum,
                        [(old_ttl.into(), 8), (proto.into(), 8)],
                        [(new_ttl.into(), 8), (proto.into(), 8)],
                    );
                    ip[10..12].copy_from_slice(&ip_new.to_be_bytes());
                }
            }
            // Full recomputation with the checksum field zeroed.
            let mut ip0 = ip.clone();
            ip0[10..12].copy_from_slice(&[0, 0]);
            assert_eq!(u16::from_be_bytes([ip[10], ip[11]]), csum16_bytes(&ip0), "round {round}: IPv4");
            let mut tcp0 = tcp.clone();
            tcp0[16..18].copy_from_slice(&[0, 0]);
            assert_eq!(u16::from_be_bytes([tcp[16], tcp[17]]), tcp_csum(&ip, &tcp0), "round {round}: TCP");
        }
    }

    #[test]
    fn replace_handles_the_zero_checksum_corner() {
        // Choose a destination address whose header checksum is 0x0000 (the
        // ones' sum of the other words plus the address is 0xFFFF), reach it
        // incrementally, then go back from a checksum of 0x0000.
        let p = hex(TCP_SYN);
        let ip = p[14..34].to_vec();
        let (old_csum, old_dst) = (0x52c3u16, u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]));
        let mut rest = ip.clone();
        rest[10..12].copy_from_slice(&[0, 0]);
        rest[16..20].copy_from_slice(&[0x0a, 0x00, 0, 0]);
        let partial = !csum16_bytes(&rest); // folded ones' sum with the low dst word 0
        let low = 0xFFFF - partial;
        let new_dst = 0x0a00_0000 | u32::from(if low == 0 { 0xFFFF } else { low });
        let mut full = ip.clone();
        full[10..12].copy_from_slice(&[0, 0]);
        full[16..20].copy_from_slice(&new_dst.to_be_bytes());
        assert_eq!(csum16_bytes(&full), 0x0000, "the chosen address zeroes the checksum");
        let inc = csum16_replace(old_csum, [(old_dst.into(), 32)], [(new_dst.into(), 32)]);
        assert_eq!(inc, 0x0000);
        let back = csum16_replace(inc, [(new_dst.into(), 32)], [(old_dst.into(), 32)]);
        assert_eq!(back, old_csum);
    }

    #[test]
    fn packer_handles_unaligned_elements() {
        let mut out = Vec::new();
        for_each_byte([(0b101, 3), (0x1FFF, 13), (0xABCD, 16)], |b| out.push(b));
        assert_eq!(out, vec![0b1011_1111, 0xFF, 0xAB, 0xCD]);
        out.clear();
        for_each_byte([(u128::MAX, 128)], |b| out.push(b));
        assert_eq!(out, vec![0xFF; 16]);
        out.clear();
        for_each_byte([(1, 1)], |b| out.push(b));
        assert_eq!(out, vec![0x80]);
    }
}
