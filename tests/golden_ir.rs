//! Golden IR: every example program in `programs/` must check without a
//! single error or warning, and its IR text (`p4lite_compiler::emit::ir_text`,
//! what `--emit ir` prints) must equal `tests/golden/NAME.ir`.
//!
//! `BLESS=1 cargo test --test golden_ir` rewrites the golden files from the
//! current output; review the diff in git before keeping it.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

mod common;

use common::{blessing, first_difference, p4lite_files, panic_message, root};
use p4lite_compiler::diag;
use p4lite_compiler::emit;
use p4lite_compiler::span::Sources;

/// Checks one program and compares (or blesses) its IR text. Returns the problems found.
fn check_program(path: &Path, bless: bool) -> Vec<String> {
    let stem = path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let name = format!("programs/{stem}.p4lite");
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{name}: cannot read: {e}")],
    };
    let sources = Sources::new(name.clone(), text);
    let compiled = match panic::catch_unwind(AssertUnwindSafe(|| p4lite_compiler::compile(&sources))) {
        Ok(c) => c,
        Err(p) => return vec![format!("{name}: the front end panicked: {}", panic_message(&*p))],
    };
    if !compiled.diagnostics.is_empty() {
        return vec![format!(
            "{name}: expected no diagnostics, got {}:\n{}",
            compiled.diagnostics.len(),
            diag::render(&compiled.diagnostics, &sources, false)
        )];
    }
    let Some(ir) = compiled.ir else {
        return vec![format!("{name}: no IR although there were no diagnostics")];
    };
    let text = match panic::catch_unwind(AssertUnwindSafe(|| emit::ir_text(&ir))) {
        Ok(t) => t,
        Err(p) => return vec![format!("{name}: emit::ir_text panicked: {}", panic_message(&*p))],
    };
    let golden = root().join("tests").join("golden").join(format!("{stem}.ir"));
    if bless {
        let written = fs::create_dir_all(golden.parent().unwrap_or(root())).and_then(|()| fs::write(&golden, &text));
        return match written {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!("{name}: cannot write {}: {e}", golden.display())],
        };
    }
    match fs::read_to_string(&golden) {
        Ok(expected) if expected == text => Vec::new(),
        Ok(expected) => vec![format!(
            "{name}: IR differs from tests/golden/{stem}.ir ({}); rerun with BLESS=1 and review the diff",
            first_difference(&expected, &text)
        )],
        Err(_) => vec![format!("{name}: no golden file tests/golden/{stem}.ir (run with BLESS=1)")],
    }
}

#[test]
fn example_programs_match_their_golden_ir() {
    let files = p4lite_files("programs");
    assert!(!files.is_empty(), "no programs found in programs/");
    let bless = blessing();
    let problems: Vec<String> = files.iter().flat_map(|f| check_program(f, bless)).collect();
    assert!(problems.is_empty(), "{} problem(s):\n\n{}", problems.len(), problems.join("\n\n"));
}

#[test]
fn every_golden_file_has_a_program() {
    let dir = root().join("tests").join("golden");
    let Ok(entries) = fs::read_dir(&dir) else { return };
    let orphans: Vec<String> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ir"))
        .filter(|p| {
            let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            !root().join("programs").join(format!("{stem}.p4lite")).exists()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(orphans.is_empty(), "golden files without a program: {orphans:?}");
}
