//! An independent oracle for checksums: tshark (Wireshark) validates the
//! IPv4, TCP, UDP and ICMP checksums of every expected output pcap of the
//! golden cases (which `tests/golden_pcap.rs` holds both backends to).
//!
//! tshark must be installed (`apt-get install tshark`; `.ci/run` does it).
//! Without it this test FAILS rather than passing without having checked.
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

/// The lines where tshark reports a bad checksum.
fn bad_checksum_lines(dissection: &str) -> Vec<String> {
    dissection
        .lines()
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
        let bad = bad_checksum_lines(&text);
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
    assert_eq!(bad_checksum_lines(text).len(), 2);
}
