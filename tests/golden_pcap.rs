//! Runs every golden case under `pcaps/` (pcap and STF) through the real
//! `p4lite test` command, with BOTH backends.
//!
//! `BLESS=1 cargo test --test golden_pcap` rewrites the expected outputs
//! from the JIT's run; the interpreter then has to agree with them.

use std::path::Path;
use std::process::Command;

/// Runs `p4lite test pcaps --backend BACKEND`; returns (success, output).
fn p4lite_test(backend: &str, bless: bool) -> (bool, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_p4lite"));
    cmd.args(["test", "pcaps", "--backend", backend]).current_dir(root).env("NO_COLOR", "1");
    if !bless {
        cmd.env_remove("BLESS");
    }
    let out = cmd.output().expect("p4lite runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The case folders (those with a `case.txt`), so a runner that silently
/// skipped cases would be noticed.
fn case_count() -> usize {
    fn walk(dir: &Path) -> usize {
        if dir.join("case.txt").is_file() {
            return 1;
        }
        std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).map(|p| walk(&p)).sum())
            .unwrap_or(0)
    }
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps"))
}

#[test]
fn golden_cases_pass_on_both_backends() {
    let cases = case_count();
    assert!(cases >= 10, "expected the golden cases under pcaps/, found {cases}");
    // The JIT first: under BLESS=1 it rewrites the expectations that the
    // interpreter is then held to (the two never write at the same time).
    let bless = std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0");
    let mut failures = Vec::new();
    for (backend, may_bless) in [("jit", bless), ("interp", false)] {
        let (ok, text) = p4lite_test(backend, may_bless);
        let summary = format!("{cases} passed, 0 failed");
        if !ok || !text.contains(&summary) {
            failures.push(format!("=== p4lite test pcaps --backend {backend} (wanted `{summary}`):\n{text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
