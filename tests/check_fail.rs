//! The must-fail corpus: every `tests/check_fail/NAME.p4lite` holds a small
//! program with one mistake (or, where its name says so, several), and
//! `NAME.stderr` holds the diagnostics the front end must report for it,
//! rendered without colour exactly as `p4lite check` prints them.
//!
//! The test asserts that each program gets at least one error and that the
//! rendered diagnostics equal the `.stderr` file. `BLESS=1 cargo test --test
//! check_fail` rewrites the `.stderr` files from the current output; review
//! the diff in git before keeping it (a blessed file must show the intended
//! error with a sensible span and message).

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

mod common;

use common::{blessing, first_difference, p4lite_files, panic_message, root};
use p4lite_compiler::diag;
use p4lite_compiler::span::Sources;

/// The corpus directory.
fn corpus_dir() -> PathBuf {
    root().join("tests").join("check_fail")
}

/// Compiles one corpus program and compares its diagnostics with the
/// expected file (or rewrites it when blessing). Returns the problems found.
fn check_one(path: &Path, bless: bool) -> Vec<String> {
    let file = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    // The display name appears in the rendered output, so keep it independent of the checkout path.
    let name = format!("check_fail/{file}");
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{name}: cannot read: {e}")],
    };
    let sources = Sources::new(name.clone(), text);
    let compiled = match panic::catch_unwind(AssertUnwindSafe(|| p4lite_compiler::compile(&sources))) {
        Ok(c) => c,
        Err(p) => return vec![format!("{name}: the front end panicked: {}", panic_message(&*p))],
    };
    let mut problems = Vec::new();
    if !compiled.diagnostics.iter().any(diag::Diagnostic::is_error) {
        problems.push(format!("{name}: no error reported"));
    }
    let rendered = diag::render(&compiled.diagnostics, &sources, false);
    let expected_path = path.with_extension("stderr");
    if bless {
        if let Err(e) = fs::write(&expected_path, &rendered) {
            problems.push(format!("{name}: cannot write {}: {e}", expected_path.display()));
        }
        return problems;
    }
    match fs::read_to_string(&expected_path) {
        Ok(expected) if expected == rendered => {}
        Ok(expected) => problems.push(format!(
            "{name}: diagnostics differ from {file}.stderr ({})\n--- actual output ---\n{rendered}",
            first_difference(&expected, &rendered),
            file = file.trim_end_matches(".p4lite"),
        )),
        Err(_) => problems.push(format!(
            "{name}: no expected file {} (run with BLESS=1)\n--- actual output ---\n{rendered}",
            expected_path.display()
        )),
    }
    problems
}

#[test]
fn every_mistake_is_reported_as_expected() {
    let files = p4lite_files("tests/check_fail");
    assert!(files.len() >= 35, "the corpus should hold at least 35 programs, found {}", files.len());
    let bless = blessing();
    let problems: Vec<String> = files.iter().flat_map(|f| check_one(f, bless)).collect();
    assert!(problems.is_empty(), "{} problem(s):\n\n{}", problems.len(), problems.join("\n\n"));
}

#[test]
fn every_expected_file_has_a_program() {
    let dir = corpus_dir();
    let orphans: Vec<String> = fs::read_dir(&dir)
        .expect("tests/check_fail exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "stderr"))
        .filter(|p| !p.with_extension("p4lite").exists())
        .map(|p| p.display().to_string())
        .collect();
    assert!(orphans.is_empty(), "expected files without a program: {orphans:?}");
}
