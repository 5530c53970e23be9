//! A small packet dissector for test reports: Ethernet (with 802.1Q), ARP,
//! IPv4 (IP-in-IP too), TCP, UDP and ICMP (with the packet an ICMP error
//! quotes), decoded into named fields so a golden mismatch can say
//! "`ip.ttl`: expected 63, got 64" instead of printing two hex dumps.
//!
//! Field names follow Wireshark's display-filter names (`eth.dst`, `ip.ttl`,
//! `tcp.flags`, ...). A header that appears a second time in one packet (the
//! inner header of IP-in-IP, the IPv4 header an ICMP error quotes) gets a
//! numbered prefix: `ip#2.ttl`. Checksums are shown with their verdict,
//! `0x1c46 [correct]` or `0x1c47 [incorrect, should be 0x1c46]`.
//!
//! The dissector never panics: every read is bounds-checked, and a header
//! cut short shows up as a `<layer>.truncated` field saying how many bytes
//! were there.

use std::collections::HashMap;
use std::fmt::Write as _;

/// One decoded field: `ip.ttl` = `64`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Wireshark-style name, with `#N` on the layer for repeated headers.
    pub name: String,
    /// The value as shown to a person (full length; see [`diff`] for display).
    pub value: String,
}

/// Decodes an Ethernet frame into its fields, outermost first.
pub fn decode(frame: &[u8]) -> Vec<Field> {
    let mut d = Dissector { fields: Vec::new(), seen: HashMap::new() };
    d.ethernet(frame);
    d.fields
}

/// Field-by-field comparison of two frames, as a table of the fields of
/// both frames with a `!` in front of each field that differs. Returns
/// `None` when the frames are byte-for-byte equal.
pub fn diff(expected: &[u8], actual: &[u8]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let exp = decode(expected);
    let act = decode(actual);
    // Fields in the order they appear in either packet: the expected
    // packet's order, then fields only the actual packet has.
    let mut names: Vec<&str> = exp.iter().map(|f| f.name.as_str()).collect();
    for f in &act {
        if !names.contains(&f.name.as_str()) {
            names.push(&f.name);
        }
    }
    let lookup = |fields: &'_ [Field], name: &str| -> Option<String> {
        fields.iter().find(|f| f.name == name).map(|f| f.value.clone())
    };
    let width = names.iter().map(|n| n.len()).max().unwrap_or(5).max(5);
    let col = exp.iter().map(|f| shorten(&f.value).len()).max().unwrap_or(8).max(8);
    let mut out = String::new();
    let _ = writeln!(out, "  {:width$}  {:col$}  actual", "field", "expected");
    for name in names {
        let e = lookup(&exp, name);
        let a = lookup(&act, name);
        let mark = if e == a { ' ' } else { '!' };
        let show = |v: &Option<String>| v.as_deref().map_or_else(|| "(absent)".to_string(), shorten);
        let _ = writeln!(out, "{mark} {name:width$}  {:col$}  {}", show(&e), show(&a));
    }
    // The first differing byte, with the bytes from there on both sides: a
    // long field (the payload's hex) is shown cut, and the cut part may be
    // where the two differ; or the difference hides past what the fields show.
    let at = expected.iter().zip(actual).position(|(e, a)| e != a).unwrap_or(expected.len().min(actual.len()));
    let bytes = |b: &[u8]| -> String {
        let shown: Vec<String> = b.iter().skip(at).take(16).map(|x| format!("{x:02x}")).collect();
        if shown.is_empty() {
            "(ends)".to_string()
        } else {
            shown.join(" ")
        }
    };
    let _ = writeln!(out, "  first differing byte at offset {at}:");
    let _ = writeln!(out, "    expected  {}", bytes(expected));
    let _ = writeln!(out, "    actual    {}", bytes(actual));
    Some(out)
}

/// Long values (payload hex) cut to a readable length.
fn shorten(v: &str) -> String {
    const MAX: usize = 48;
    if v.len() <= MAX {
        v.to_string()
    } else {
        let mut cut = MAX - 3;
        while !v.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &v[..cut])
    }
}

/// Bytes as lowercase hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A MAC address as `00:11:22:33:44:55`.
fn mac(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

/// An IPv4 address as dotted quad.
fn ipv4(b: &[u8]) -> String {
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The Internet checksum (RFC 1071) of `data` added to `initial`, folded
/// and complemented. Over a header whose checksum field is right it is 0.
pub fn internet_checksum(initial: u32, data: &[u8]) -> u16 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// `0x1c46 [correct]` or `0x1c47 [incorrect, should be 0x1c46]`, given the
/// stored value and the checksum computed with the field zeroed.
fn checksum_verdict(stored: u16, computed: u16) -> String {
    if stored == computed {
        format!("0x{stored:04x} [correct]")
    } else {
        format!("0x{stored:04x} [incorrect, should be 0x{computed:04x}]")
    }
}

/// TCP flag bits, most significant first, as Wireshark names them.
const TCP_FLAGS: [(u8, &str); 8] = [
    (0x80, "CWR"),
    (0x40, "ECE"),
    (0x20, "URG"),
    (0x10, "ACK"),
    (0x08, "PSH"),
    (0x04, "RST"),
    (0x02, "SYN"),
    (0x01, "FIN"),
];

struct Dissector {
    fields: Vec<Field>,
    /// How many times each layer was seen, for `ip#2` prefixes.
    seen: HashMap<&'static str, u32>,
}

impl Dissector {
    /// The prefix for the next occurrence of `layer` (`ip`, then `ip#2`, ...).
    fn layer(&mut self, layer: &'static str) -> String {
        let n = self.seen.entry(layer).or_insert(0);
        *n += 1;
        if *n == 1 {
            layer.to_string()
        } else {
            format!("{layer}#{n}")
        }
    }

    fn push(&mut self, prefix: &str, name: &str, value: impl Into<String>) {
        self.fields.push(Field { name: format!("{prefix}.{name}"), value: value.into() });
    }

    /// Records that `layer` needed `need` bytes but only `have` were there.
    fn truncated(&mut self, prefix: &str, have: usize, need: usize) {
        self.push(prefix, "truncated", format!("{have} of {need} bytes"));
    }

    fn payload(&mut self, prefix: &str, data: &[u8]) {
        if !data.is_empty() {
            self.push(prefix, "payload", format!("{} bytes {}", data.len(), hex(data)));
        }
    }

    fn ethernet(&mut self, b: &[u8]) {
        let p = self.layer("eth");
        self.push(&p, "len", b.len().to_string());
        if b.len() < 14 {
            self.truncated(&p, b.len(), 14);
            self.payload(&p, b);
            return;
        }
        self.push(&p, "dst", mac(&b[0..6]));
        self.push(&p, "src", mac(&b[6..12]));
        let mut ether_type = be16(b, 12);
        let mut at = 14;
        // 802.1Q tags, possibly stacked (QinQ uses 0x88a8 outside).
        while matches!(ether_type, 0x8100 | 0x88a8) {
            let v = self.layer("vlan");
            if b.len() < at + 4 {
                self.truncated(&v, b.len() - at, 4);
                self.payload(&v, &b[at..]);
                return;
            }
            self.push(&v, "id", (be16(b, at) & 0x0fff).to_string());
            self.push(&v, "priority", (b[at] >> 5).to_string());
            ether_type = be16(b, at + 2);
            at += 4;
        }
        self.push(&p, "type", format!("0x{ether_type:04x}"));
        let rest = &b[at..];
        match ether_type {
            0x0800 => self.ipv4(rest),
            0x0806 => self.arp(rest),
            _ => self.payload(&p, rest),
        }
    }

    fn arp(&mut self, b: &[u8]) {
        let p = self.layer("arp");
        if b.len() < 28 {
            self.truncated(&p, b.len(), 28);
            self.payload(&p, b);
            return;
        }
        self.push(&p, "hw.type", be16(b, 0).to_string());
        self.push(&p, "proto.type", format!("0x{:04x}", be16(b, 2)));
        self.push(&p, "opcode", be16(b, 6).to_string());
        self.push(&p, "src.hw_mac", mac(&b[8..14]));
        self.push(&p, "src.proto_ipv4", ipv4(&b[14..18]));
        self.push(&p, "dst.hw_mac", mac(&b[18..24]));
        self.push(&p, "dst.proto_ipv4", ipv4(&b[24..28]));
        self.payload(&p, &b[28..]);
    }

    fn ipv4(&mut self, b: &[u8]) {
        let p = self.layer("ip");
        if b.len() < 20 {
            self.truncated(&p, b.len(), 20);
            self.payload(&p, b);
            return;
        }
        let ihl = usize::from(b[0] & 0x0f);
        self.push(&p, "version", (b[0] >> 4).to_string());
        self.push(&p, "hdr_len", format!("{} ({} bytes)", ihl, ihl * 4));
        self.push(&p, "dsfield", format!("0x{:02x}", b[1]));
        let total = usize::from(be16(b, 2));
        self.push(&p, "len", total.to_string());
        self.push(&p, "id", format!("0x{:04x}", be16(b, 4)));
        self.push(&p, "flags", format!("0x{:x}", b[6] >> 5));
        self.push(&p, "frag_offset", (be16(b, 6) & 0x1fff).to_string());
        self.push(&p, "ttl", b[8].to_string());
        let proto = b[9];
        self.push(&p, "proto", proto.to_string());
        let stored = be16(b, 10);
        let hlen = ihl * 4;
        if ihl < 5 {
            self.push(&p, "checksum", format!("0x{stored:04x}"));
            self.push(&p, "src", ipv4(&b[12..16]));
            self.push(&p, "dst", ipv4(&b[16..20]));
            self.push(&p, "malformed", format!("header length {hlen} < 20"));
            self.payload(&p, &b[20..]);
            return;
        }
        if b.len() < hlen {
            self.push(&p, "checksum", format!("0x{stored:04x}"));
            self.push(&p, "src", ipv4(&b[12..16]));
            self.push(&p, "dst", ipv4(&b[16..20]));
            self.truncated(&p, b.len(), hlen);
            self.payload(&p, &b[20..]);
            return;
        }
        let mut header = b[..hlen].to_vec();
        header[10] = 0;
        header[11] = 0;
        self.push(&p, "checksum", checksum_verdict(stored, internet_checksum(0, &header)));
        self.push(&p, "src", ipv4(&b[12..16]));
        self.push(&p, "dst", ipv4(&b[16..20]));
        if hlen > 20 {
            self.push(&p, "options", hex(&b[20..hlen]));
        }
        // The payload ends at total_len; bytes after it are Ethernet padding.
        let end = if total < hlen {
            self.push(&p, "malformed", format!("total length {total} < header length {hlen}"));
            b.len()
        } else if total > b.len() {
            self.push(&p, "malformed", format!("total length {total} > {} bytes present", b.len()));
            b.len()
        } else {
            total
        };
        let body = &b[hlen..end];
        let frag_offset = be16(b, 6) & 0x1fff;
        let pseudo = PseudoHeader { src: [b[12], b[13], b[14], b[15]], dst: [b[16], b[17], b[18], b[19]], proto };
        if frag_offset != 0 {
            self.payload(&p, body);
        } else {
            match proto {
                1 => self.icmp(body),
                4 => self.ipv4(body),
                6 => self.tcp(body, &pseudo, total <= b.len()),
                17 => self.udp(body, &pseudo, total <= b.len()),
                _ => self.payload(&p, body),
            }
        }
        if end < b.len() {
            // Behind the outer header this is Ethernet padding; behind an
            // inner one, bytes the outer header counts but the inner does not.
            let (layer, name) = if p == "ip" { ("eth", "padding") } else { (p.as_str(), "trailing") };
            self.push(layer, name, format!("{} bytes", b.len() - end));
        }
    }

    fn tcp(&mut self, b: &[u8], pseudo: &PseudoHeader, complete: bool) {
        let p = self.layer("tcp");
        if b.len() < 20 {
            self.truncated(&p, b.len(), 20);
            self.payload(&p, b);
            return;
        }
        self.push(&p, "srcport", be16(b, 0).to_string());
        self.push(&p, "dstport", be16(b, 2).to_string());
        self.push(&p, "seq", be32(b, 4).to_string());
        self.push(&p, "ack", be32(b, 8).to_string());
        let off = usize::from(b[12] >> 4) * 4;
        self.push(&p, "hdr_len", off.to_string());
        let names: Vec<&str> = TCP_FLAGS.iter().filter(|(bit, _)| b[13] & bit != 0).map(|(_, n)| *n).collect();
        self.push(&p, "flags", format!("0x{:02x} [{}]", b[13], names.join(",")));
        self.push(&p, "window_size", be16(b, 14).to_string());
        let stored = be16(b, 16);
        if complete {
            self.push(&p, "checksum", checksum_verdict(stored, pseudo.checksum(b, 16)));
        } else {
            self.push(&p, "checksum", format!("0x{stored:04x}"));
        }
        self.push(&p, "urgent_pointer", be16(b, 18).to_string());
        if off < 20 || off > b.len() {
            self.push(&p, "malformed", format!("header length {off} with {} bytes present", b.len()));
            self.payload(&p, &b[20..]);
            return;
        }
        if off > 20 {
            self.push(&p, "options", hex(&b[20..off]));
        }
        self.payload(&p, &b[off..]);
    }

    fn udp(&mut self, b: &[u8], pseudo: &PseudoHeader, complete: bool) {
        let p = self.layer("udp");
        if b.len() < 8 {
            self.truncated(&p, b.len(), 8);
            self.payload(&p, b);
            return;
        }
        self.push(&p, "srcport", be16(b, 0).to_string());
        self.push(&p, "dstport", be16(b, 2).to_string());
        self.push(&p, "length", be16(b, 4).to_string());
        let stored = be16(b, 6);
        if stored == 0 {
            self.push(&p, "checksum", "0x0000 [none]");
        } else if complete {
            let mut computed = pseudo.checksum(b, 6);
            // A computed 0 is sent as 0xffff (RFC 768).
            if computed == 0 {
                computed = 0xffff;
            }
            self.push(&p, "checksum", checksum_verdict(stored, computed));
        } else {
            self.push(&p, "checksum", format!("0x{stored:04x}"));
        }
        self.payload(&p, &b[8..]);
    }

    fn icmp(&mut self, b: &[u8]) {
        let p = self.layer("icmp");
        if b.len() < 8 {
            self.truncated(&p, b.len(), 8);
            self.payload(&p, b);
            return;
        }
        let ty = b[0];
        self.push(&p, "type", ty.to_string());
        self.push(&p, "code", b[1].to_string());
        let mut msg = b.to_vec();
        msg[2] = 0;
        msg[3] = 0;
        self.push(&p, "checksum", checksum_verdict(be16(b, 2), internet_checksum(0, &msg)));
        self.push(&p, "rest", format!("0x{:08x}", be32(b, 4)));
        match ty {
            // Destination unreachable, source quench, time exceeded,
            // parameter problem: they quote the offending packet.
            3 | 4 | 11 | 12 => self.quoted_ipv4(&b[8..]),
            _ => self.payload(&p, &b[8..]),
        }
    }

    /// The IPv4 header and the first L4 bytes an ICMP error quotes; the
    /// quote is short by design, so no checksum verdict on its L4 part.
    fn quoted_ipv4(&mut self, b: &[u8]) {
        let p = self.layer("ip");
        if b.len() < 20 {
            self.truncated(&p, b.len(), 20);
            self.payload(&p, b);
            return;
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        self.push(&p, "version", (b[0] >> 4).to_string());
        self.push(&p, "hdr_len", (ihl / 4).to_string());
        self.push(&p, "len", be16(b, 2).to_string());
        self.push(&p, "ttl", b[8].to_string());
        self.push(&p, "proto", b[9].to_string());
        self.push(&p, "checksum", format!("0x{:04x}", be16(b, 10)));
        self.push(&p, "src", ipv4(&b[12..16]));
        self.push(&p, "dst", ipv4(&b[16..20]));
        let rest = if ihl >= 20 && ihl <= b.len() { &b[ihl..] } else { &b[20..] };
        if matches!(b[9], 6 | 17) && rest.len() >= 4 {
            let l4 = self.layer(if b[9] == 6 { "tcp" } else { "udp" });
            self.push(&l4, "srcport", be16(rest, 0).to_string());
            self.push(&l4, "dstport", be16(rest, 2).to_string());
            self.payload(&l4, &rest[4..]);
        } else {
            self.payload(&p, rest);
        }
    }
}

/// What TCP and UDP checksums cover besides their own bytes.
struct PseudoHeader {
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
}

impl PseudoHeader {
    /// The checksum of `segment` (checksum field at `field` taken as zero).
    fn checksum(&self, segment: &[u8], field: usize) -> u16 {
        let mut initial = 0u32;
        for pair in [&self.src[0..2], &self.src[2..4], &self.dst[0..2], &self.dst[2..4]] {
            initial += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
        initial += u32::from(self.proto);
        initial += segment.len() as u32;
        let mut data = segment.to_vec();
        data[field] = 0;
        data[field + 1] = 0;
        internet_checksum(initial, &data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ICMP echo request, 10.0.1.1 -> 10.0.2.2, TTL 64, checksums right.
    const PING: [u8; 42] = [
        0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x08, 0x00, // eth
        0x45, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0x63, 0xde, 0x0a, 0x00, 0x01, 0x01, 0x0a, 0x00,
        0x02, 0x02, // ipv4
        0x08, 0x00, 0xf7, 0xff, 0x00, 0x00, 0x00, 0x00, // icmp echo request
    ];

    fn value<'a>(fields: &'a [Field], name: &str) -> &'a str {
        fields.iter().find(|f| f.name == name).map(|f| f.value.as_str()).unwrap_or("(absent)")
    }

    #[test]
    fn decodes_an_echo_request() {
        let f = decode(&PING);
        assert_eq!(value(&f, "eth.type"), "0x0800");
        assert_eq!(value(&f, "ip.ttl"), "64");
        assert_eq!(value(&f, "ip.src"), "10.0.1.1");
        assert_eq!(value(&f, "ip.checksum"), "0x63de [correct]");
        assert_eq!(value(&f, "icmp.type"), "8");
        assert_eq!(value(&f, "icmp.checksum"), "0xf7ff [correct]");
    }

    #[test]
    fn flags_a_bad_checksum() {
        let mut p = PING;
        p[22] = 63; // TTL decremented without fixing the checksum
        let f = decode(&p);
        assert_eq!(value(&f, "ip.checksum"), "0x63de [incorrect, should be 0x64de]");
    }

    #[test]
    fn truncated_and_malformed_headers_do_not_panic() {
        for len in 0..PING.len() {
            let f = decode(&PING[..len]);
            assert!(!f.is_empty());
        }
        assert_eq!(value(&decode(&PING[..20]), "ip.truncated"), "6 of 20 bytes");
        let mut short_ihl = PING;
        short_ihl[14] = 0x44;
        assert_eq!(value(&decode(&short_ihl), "ip.malformed"), "header length 16 < 20");
        let mut long = PING;
        long[17] = 0x40; // total length 64 with 28 bytes present
        assert_eq!(value(&decode(&long), "ip.malformed"), "total length 64 > 28 bytes present");
    }

    #[test]
    fn diff_marks_the_differing_fields() {
        let mut p = PING;
        p[22] = 63;
        let text = diff(&PING, &p).unwrap();
        let marked: Vec<&str> = text.lines().filter(|l| l.starts_with('!')).collect();
        assert_eq!(marked.len(), 2, "{text}");
        assert!(marked[0].contains("ip.ttl") && marked[0].contains("64") && marked[0].contains("63"));
        assert!(marked[1].contains("ip.checksum"));
        assert!(diff(&PING, &PING).is_none());
    }

    /// A difference deep in a long payload, which the field table shows cut
    /// (the same prefix on both sides), is located by its byte offset.
    #[test]
    fn diff_locates_a_difference_past_the_shown_payload() {
        let mut long = PING.to_vec();
        long.extend([0xAA; 100]);
        let mut other = long.clone();
        let at = long.len() - 3;
        other[at] = 0xBB;
        let text = diff(&long, &other).unwrap();
        assert!(text.contains(&format!("first differing byte at offset {at}:")), "{text}");
        assert!(text.contains("expected  aa aa aa\n") && text.contains("actual    bb aa aa\n"), "{text}");
        let shorter = &long[..at];
        assert!(diff(&long, shorter).unwrap().contains("actual    (ends)"));
    }

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 section 3: the sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(0, &data), !0xddf2);
    }
}
