//! An independent oracle for checksums: tshark (Wireshark) validates the
//! IPv4, TCP, UDP and ICMP checksums of every expected output pcap of the
//! golden cases (which `tests/golden_pcap.rs` holds both backends to).
//! It also decodes their IP-in-IP frames: each must have an inner IPv4
//! header for tshark, and its inner packet must be one of the case's input
//! packets, intact but for the TTL that VS/TUN decrements (or untouched,
//! for IP-in-IP the director routes).
//!
//! tshark must be installed (`apt-get install tshark`; `.ci/run` does it).
//! Without it this test FAILS rather than passing without having checked.
//!
//! An ICMP error quoting part of a packet (as Linux does, up to 576 bytes
//! in all) holds a TCP or UDP segment that tshark checks over the bytes it
//! has, so its "bad" checksum there is not counted; the error's own IPv4
//! and ICMP checksums are.
//!
//! `lb_bad_checksum` carries a bad IPv4 checksum on purpose (an incremental
//! update keeps a wrong checksum wrong); tshark must flag exactly that case,
//! which also proves the validation is switched on.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The case whose expected output has a bad checksum by design.
const KNOWN_BAD: &str = "lb_bad_checksum";

fn expected_pcaps(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if p.is_dir() {
            expected_pcaps(&p, out);
        } else if name.starts_with("expected_") && name.ends_with(".pcap") {
            out.push(p);
        }
    }
}

/// tshark's verbose dissection of `file` with checksum validation on.
fn tshark_verbose(file: &Path) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-V"])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "tshark failed on {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The numbers of the frames of `file` that are ICMP errors (types 3, 4,
/// 11) quoting less of the packet than its IPv4 total length.
fn truncated_quote_frames(file: &Path) -> Vec<u64> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", "icmp.type == 3 || icmp.type == 4 || icmp.type == 11"])
        .args(["-T", "fields", "-e", "frame.number", "-e", "ip.len", "-e", "ip.hdr_len"])
        .output()
        .expect("tshark runs");
    let numbers = |s: &str| s.split(',').map(|v| v.parse::<u64>().ok()).collect::<Option<Vec<u64>>>();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let (frame, len, hdr_len) = (f.first()?.parse().ok()?, numbers(f.get(1)?)?, numbers(f.get(2)?)?);
            // The quote is the outer IP length less its header and the ICMP header.
            (len.len() >= 2 && !hdr_len.is_empty() && len[1] + hdr_len[0] + 8 > len[0]).then_some(frame)
        })
        .collect()
}

/// The lines where tshark reports a bad checksum, but for those inside the
/// quote (indented 8 or more) of a frame in `truncated` (see
/// truncated_quote_frames).
fn bad_checksum_lines(dissection: &str, truncated: &[u64]) -> Vec<String> {
    let mut frame = 0;
    dissection
        .lines()
        .filter(|l| {
            if let Some(n) = l.strip_prefix("Frame ").and_then(|r| r.split(':').next()).and_then(|n| n.parse().ok()) {
                frame = n;
            }
            !(truncated.contains(&frame) && l.starts_with("        "))
        })
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("checksum")
                && (l.contains("incorrect") || l.contains("status: bad") || l.contains("bad checksum"))
        })
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn expected_outputs_have_correct_checksums() {
    let available = Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        available,
        "tshark is not installed, so the checksums of the golden outputs cannot be checked. \
         Install it: `DEBIAN_FRONTEND=noninteractive apt-get install -y tshark` (.ci/run does this)."
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let mut files = Vec::new();
    expected_pcaps(&root, &mut files);
    assert!(files.len() >= 10, "expected output pcaps under {}: found {}", root.display(), files.len());
    let mut problems = Vec::new();
    let mut flagged_known_bad = false;
    let mut good = 0;
    for f in &files {
        let text = tshark_verbose(f);
        good += text.matches("[Checksum Status: Good]").count();
        let bad = bad_checksum_lines(&text, &truncated_quote_frames(f));
        let known_bad = f.components().any(|c| c.as_os_str() == KNOWN_BAD);
        if known_bad {
            flagged_known_bad |= !bad.is_empty();
        } else if !bad.is_empty() {
            problems.push(format!("{}:\n  {}", f.display(), bad.join("\n  ")));
        }
    }
    assert!(problems.is_empty(), "tshark reports bad checksums:\n{}", problems.join("\n"));
    assert!(flagged_known_bad, "tshark did not flag the deliberately bad checksum in pcaps/{KNOWN_BAD}");
    assert!(good > 0, "tshark validated no checksum at all (is validation off?)");
}

#[test]
fn bad_checksum_lines_are_recognised() {
    let text = "    Header Checksum: 0x1334 incorrect, should be 0xbac0\n\
                \x20       [Header checksum status: Bad]\n\
                \x20   Length: 0 (bogus, must be >= 8)\n\
                \x20       [Bad length value 0 < 8]\n\
                \x20   Checksum: 0x393e [correct]\n";
    assert_eq!(bad_checksum_lines(text, &[]).len(), 2);
    let quoted = "Frame 3: 590 bytes\n    Checksum: 0x1 incorrect, should be 0x2\n        Checksum: 0x3 incorrect\n";
    assert_eq!(bad_checksum_lines(quoted, &[3]).len(), 1, "the quote's line is skipped, the error's kept");
    assert_eq!(bad_checksum_lines(quoted, &[4]).len(), 2);
}

/// The frames of a capture (`p4lite`'s reader; tshark checks the same files).
fn frames(file: &Path) -> Vec<Vec<u8>> {
    p4lite_runtime::replay::read_capture(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .into_iter()
        .map(|f| f.data)
        .collect()
}

/// The IPv4 packet of an Ethernet frame, cut to its total length (without
/// Ethernet padding); `None` for anything else.
fn ipv4_packet(frame: &[u8]) -> Option<&[u8]> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[14] >> 4 != 4 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    frame.get(14..14 + total)
}

/// An IPv4 packet's payload (after its header and options).
fn ipv4_payload(ip: &[u8]) -> Option<&[u8]> {
    ip.get(usize::from(ip[0] & 0x0f) * 4..)
}

/// Whether `inner` is `original` forwarded: the same bytes but for a TTL
/// one lower and the header checksum (VS/TUN decrements the TTL of the
/// packet it encapsulates, spec 3.2).
fn forwarded(original: &[u8], inner: &[u8]) -> bool {
    original.len() == inner.len()
        && original.len() >= 20
        && original[8].checked_sub(1) == Some(inner[8])
        && original.iter().zip(inner).enumerate().all(|(i, (a, b))| a == b || i == 8 || i == 10 || i == 11)
}

#[test]
fn tun_outputs_decode_as_ipip_with_the_inner_packet_intact() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let mut outputs = Vec::new();
    expected_pcaps(&root, &mut outputs);
    let (mut ipip, mut encapsulated) = (0, 0);
    for out in &outputs {
        let inputs = case_inputs(out);
        // tshark's view: per frame, the protocols of its IPv4 layers
        // outermost first ("4,6": IP-in-IP around TCP).
        let rows = tshark_rows(out, &["ip.proto"]);
        for (n, (frame, row)) in rows.iter().enumerate() {
            let protos = &row[0];
            let outer = ipv4_packet(frame);
            let is_ipip = outer.is_some_and(|ip| ip[9] == 4);
            let layers: Vec<&str> = protos.split(',').filter(|p| !p.is_empty()).collect();
            assert_eq!(
                is_ipip,
                layers.first() == Some(&"4"),
                "{} frame {}: p4lite and tshark disagree on IP-in-IP ({protos:?})",
                out.display(),
                n + 1
            );
            if !is_ipip {
                continue;
            }
            ipip += 1;
            assert!(
                layers.len() >= 2,
                "{} frame {}: tshark decodes no inner IPv4 header ({protos:?})",
                out.display(),
                n + 1
            );
            let inner = outer.and_then(ipv4_payload).expect("an IP-in-IP payload");
            // Either the director encapsulated a client's packet (VS/TUN:
            // the original with its TTL decremented), or it routed an
            // IP-in-IP packet (its inner packet untouched).
            let from_tun = inputs.iter().filter_map(|f| ipv4_packet(f)).any(|ip| forwarded(ip, inner));
            let routed = inputs
                .iter()
                .filter_map(|f| ipv4_packet(f))
                .filter(|ip| ip[9] == 4)
                .filter_map(ipv4_payload)
                .any(|i| i == inner);
            assert!(
                from_tun || routed,
                "{} frame {}: the inner packet is no input packet, intact or forwarded",
                out.display(),
                n + 1
            );
            encapsulated += usize::from(from_tun);
        }
    }
    assert!(encapsulated >= 3, "VS/TUN outputs in the golden cases: {encapsulated} (of {ipip} IP-in-IP frames)");
}

/// Each frame of capture `out` (p4lite's reader) with tshark's `fields`
/// of it; tshark and p4lite must count the same frames.
fn tshark_rows(out: &Path, fields: &[&str]) -> Vec<(Vec<u8>, Vec<String>)> {
    tshark_rows_with(out, &[], fields)
}

/// [`tshark_rows`] with tshark preferences `prefs` (`-o` values) set.
fn tshark_rows_with(out: &Path, prefs: &[&str], fields: &[&str]) -> Vec<(Vec<u8>, Vec<String>)> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(out).args(["-T", "fields", "-E", "separator=;"]);
    for p in prefs {
        cmd.args(["-o", p]);
    }
    for f in fields {
        cmd.args(["-e", f]);
    }
    let o = cmd.output().expect("tshark runs");
    assert!(o.status.success(), "tshark failed on {}", out.display());
    let rows: Vec<Vec<String>> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| l.split(';').map(str::to_string).collect()).collect();
    let produced = frames(out);
    assert_eq!(rows.len(), produced.len(), "{}: tshark and p4lite count different frames", out.display());
    produced.into_iter().zip(rows).collect()
}

/// The frames of `out`'s case folder's input captures.
fn case_inputs(out: &Path) -> Vec<Vec<u8>> {
    let dir = out.parent().expect("a case folder");
    std::fs::read_dir(dir)
        .expect("the case folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("in_"))
                && p.extension().is_some_and(|x| x == "pcap")
        })
        .flat_map(|p| frames(&p))
        .collect()
}

/// VS/TUN over GRE (`--tun-type gre`): tshark decodes every GRE frame of
/// the expected outputs as GRE for IPv4 (protocol 0x0800) around an inner
/// IPv4 packet, finds the GRE checksum good wherever the C bit says there
/// is one, and the inner packet is an input packet forwarded (TTL - 1).
#[test]
fn gre_outputs_decode_with_good_checksums_and_the_inner_packet_intact() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let mut outputs = Vec::new();
    expected_pcaps(&root, &mut outputs);
    let (mut gre, mut checked) = (0, 0);
    for out in &outputs {
        let inputs = case_inputs(out);
        let rows = tshark_rows(out, &["ip.proto", "gre.proto", "gre.flags.checksum", "gre.checksum.status"]);
        for (n, (frame, f)) in rows.iter().enumerate() {
            let Some(outer) = ipv4_packet(frame).filter(|ip| ip[9] == 47) else { continue };
            gre += 1;
            let at = format!("{} frame {}", out.display(), n + 1);
            let row = f.join(";");
            let f: Vec<&str> = f.iter().map(String::as_str).collect();
            let layers: Vec<&str> = f[0].split(',').collect();
            assert!(layers.len() >= 2 && layers[0] == "47", "{at}: tshark decodes no IPv4 inside GRE ({row})");
            assert_eq!(f.get(1), Some(&"0x0800"), "{at}: GRE protocol ({row})");
            let csum = outer.get(20).is_some_and(|b| b & 0x80 != 0);
            assert_eq!(f.get(2) == Some(&"1"), csum, "{at}: tshark and p4lite disagree on the C bit ({row})");
            if csum {
                // 1: Wireshark's PROTO_CHECKSUM_E_GOOD.
                assert_eq!(f.get(3), Some(&"1"), "{at}: the GRE checksum is not good ({row})");
                checked += 1;
            }
            let inner = outer.get(20 + if csum { 8 } else { 4 }..).expect("a GRE payload");
            assert!(
                inputs.iter().filter_map(|f| ipv4_packet(f)).any(|ip| forwarded(ip, inner)),
                "{at}: the inner packet is no input packet forwarded"
            );
        }
    }
    assert!(gre >= 10 && checked >= 5, "GRE outputs in the golden cases: {gre}, {checked} with a checksum checked");
}

/// VS/TUN over GUE (`--tun-type gue`): tshark (which has no GUE dissector)
/// reads every UDP frame the director sends to a GUE real server's port:
/// its length is the IP payload's, its checksum is 0 (`--tun-nocsum`) or
/// good by tshark's own check over the pseudo-header, the GUE header and
/// the whole inner packet; the GUE header is version 0, data, no options,
/// protocol 4; the inner packet is an input packet forwarded (TTL - 1); a
/// flow keeps one source port, in the kernel's 32768-60999.
#[test]
fn gue_outputs_have_good_udp_checksums_and_the_inner_packet_intact() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let mut outputs = Vec::new();
    expected_pcaps(&root, &mut outputs);
    let (mut gue, mut checked) = (0, 0);
    let mut flow_ports: std::collections::HashMap<Vec<u8>, u16> = std::collections::HashMap::new();
    for out in &outputs {
        let inputs = case_inputs(out);
        let fields = ["udp.srcport", "udp.dstport", "udp.length", "udp.checksum", "udp.checksum.status"];
        let rows = tshark_rows_with(out, &["udp.check_checksum:TRUE"], &fields);
        for (n, (frame, f)) in rows.iter().enumerate() {
            // GUE as the director sends it: UDP, then 00 04 00 00.
            let Some(outer) = ipv4_packet(frame).filter(|ip| ip[9] == 17 && ip.get(28..32) == Some(&[0, 4, 0, 0]))
            else {
                continue;
            };
            gue += 1;
            let at = format!("{} frame {}", out.display(), n + 1);
            let row = f.join(";");
            let sport: u16 = f[0].parse().unwrap_or_else(|_| panic!("{at}: no UDP source port ({row})"));
            assert!((32768..61000).contains(&sport), "{at}: source port {sport} outside 32768-60999");
            assert_eq!(f[2].parse::<usize>().ok(), Some(outer.len() - 20), "{at}: UDP length ({row})");
            if f[3] == "0x0000" {
                // 3: PROTO_CHECKSUM_E_NOT_PRESENT.
                assert_eq!(f[4], "3", "{at}: no checksum ({row})");
            } else {
                // 1: Wireshark's PROTO_CHECKSUM_E_GOOD.
                assert_eq!(f[4], "1", "{at}: the UDP checksum is not good ({row})");
                checked += 1;
            }
            let inner = &outer[32..];
            assert!(
                inputs.iter().filter_map(|f| ipv4_packet(f)).any(|ip| forwarded(ip, inner)),
                "{at}: the inner packet is no input packet forwarded"
            );
            // The flow: inner addresses, protocol and (TCP, UDP) ports.
            let mut flow = inner[12..20].to_vec();
            flow.push(inner[9]);
            if matches!(inner[9], 6 | 17) {
                flow.extend_from_slice(&ipv4_payload(inner).expect("ports")[..4]);
            }
            let first = *flow_ports.entry(flow).or_insert(sport);
            assert_eq!(first, sport, "{at}: a flow's packets leave from one source port");
        }
    }
    let ports: std::collections::HashSet<u16> = flow_ports.values().copied().collect();
    assert!(gue >= 10 && checked >= 5, "GUE outputs in the golden cases: {gue}, {checked} with a checksum checked");
    assert!(ports.len() >= 4, "{} flows over {} source ports: they should spread", flow_ports.len(), ports.len());
}
