//! The IPVS spec's worked packets (`ipvs-spec.md` section 7, V22 to V25),
//! byte for byte, from `programs/lb.p4lite` run by the switch with each
//! backend on the golden cases' inputs and configurations.
//!
//! The golden pcaps hold the same bytes (their generator, `pcaps/gen.py`,
//! asserts its model reproduces the vectors), but expected files can be
//! re-blessed from the switch's own output; this test pins the spec's hex.
//!
//! * V22, VS/NAT in: the client's SYN 203.0.113.7:40000 → 198.51.100.10:80,
//!   rewritten to the real server 10.1.1.21:8080 (`pcaps/lb_nat`).
//! * V23, VS/NAT out: the real server's SYN+ACK rewritten back to the
//!   virtual address (its input has TTL 65, so the forwarded TTL is the
//!   vector's 64).
//! * V24, VS/TUN: V22's SYN in IP-in-IP from 192.0.2.1 to 192.0.2.50, the
//!   outer header exactly the vector's, the inner TTL 63 (`pcaps/lb_tun_dr`).
//! * V25, ECN encapsulation: inner TOS 0x03 (CE) gives outer 0x02; 0xB8 is
//!   copied.

use std::path::Path;

use p4lite_compiler::span::Sources;
use p4lite_runtime::ipvs::director::load_into_switch;
use p4lite_runtime::replay::{replay, Input, MemorySink, ReplayOptions};
use p4lite_runtime::switch::{Backend, Switch, SwitchOptions};

/// V22's rewritten IPv4 packet (header and TCP header).
const V22: &str = "450000281c4640003f06d86ccb0071070a0101159c401f9001020304000000005002ffffa8ee0000";
/// V23's rewritten IPv4 packet.
const V23: &str = "45000028000140004006d489c633640acb00710700509c400a0b0c0d010203055012ffff92dd0000";
/// V24's outer IPv4 header.
const V24: &str = "4500003c000040003f04b78ac0000201c0000232";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The IPv4 packets the switch sends when it replays the golden case
/// `case` (its `lb.conf` and its `in_PORT.pcap` inputs, as `p4lite run`
/// does), each cut to its total length.
fn outputs(case: &str, backend: Backend) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("programs/lb.p4lite")).expect("programs/lb.p4lite");
    let program = p4lite_compiler::compile(&Sources::new("lb.p4lite", text)).ir.expect("lb.p4lite compiles");
    let mut sw = Switch::new(program, SwitchOptions { backend, trace: false }).expect("a switch for lb.p4lite");
    let dir = root.join("pcaps").join(case);
    let conf = std::fs::read_to_string(dir.join("lb.conf")).expect("the case's lb.conf");
    load_into_switch(&mut sw, &conf, "lb.conf").expect("the case's lb.conf loads");
    let inputs: Vec<Input> = (0u16..8)
        .map(|port| (port, dir.join(format!("in_{port}.pcap"))))
        .filter(|(_, path)| path.exists())
        .map(|(port, path)| Input::file(port, &path).expect("an input capture"))
        .collect();
    assert!(!inputs.is_empty(), "{case}: no inputs");
    let mut sent = MemorySink::default();
    replay(&mut sw, inputs, &mut sent, ReplayOptions { progress: false, trace: None }).expect("the replay runs");
    sent.ports
        .into_values()
        .flatten()
        .filter(|f| f.data.len() >= 34 && f.data[12..14] == [0x08, 0x00])
        .map(|f| {
            let total = usize::from(u16::from_be_bytes([f.data[16], f.data[17]]));
            f.data[14..(14 + total).min(f.data.len())].to_vec()
        })
        .collect()
}

#[test]
fn v22_and_v23_nat_both_ways() {
    for backend in [Backend::Jit, Backend::Interp] {
        let ips: Vec<String> = outputs("lb_nat", backend).iter().map(|ip| hex(ip)).collect();
        assert!(ips.iter().any(|ip| ip == V22), "{backend:?}: no output is V22:\n{}", ips.join("\n"));
        assert!(ips.iter().any(|ip| ip == V23), "{backend:?}: no output is V23:\n{}", ips.join("\n"));
    }
}

#[test]
fn v24_tunnel_header_and_v25_ecn() {
    for backend in [Backend::Jit, Backend::Interp] {
        let ips = outputs("lb_tun_dr", backend);
        let tunnelled: Vec<&Vec<u8>> = ips.iter().filter(|ip| ip[9] == 4 && ip.len() >= 40).collect();
        let v24 = tunnelled.iter().find(|ip| hex(&ip[..20]) == V24).unwrap_or_else(|| {
            panic!("{backend:?}: no outer header is V24 among {} tunnelled packets", tunnelled.len())
        });
        // The inner packet is V22's original SYN, forwarded: TTL 64 - 1.
        let inner = &v24[20..];
        assert_eq!(&inner[12..20], &[203, 0, 113, 7, 198, 51, 100, 10], "{backend:?}: V24's inner addresses");
        assert_eq!(inner[8], 63, "{backend:?}: V24's inner TTL");
        // V25: the outer TOS of each tunnelled packet from its inner one:
        // copied, but CE (ECN 11) becomes ECT(0) (10).
        let mut seen = (false, false);
        for ip in &tunnelled {
            let (outer, inner) = (ip[1], ip[21]);
            let want = if inner & 0x03 == 0x03 { inner & !0x01 } else { inner };
            assert_eq!(outer, want, "{backend:?}: outer TOS {outer:#04x} for inner {inner:#04x}");
            seen.0 |= inner == 0x03;
            seen.1 |= inner == 0xB8;
        }
        assert!(seen.0 && seen.1, "{backend:?}: the case has no CE or no 0xB8 packet to tunnel: {seen:?}");
    }
}
