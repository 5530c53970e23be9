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

use p4lite_compiler::diag;
use p4lite_compiler::span::Sources;

/// The corpus directory.
fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("check_fail")
}

/// True when the expected files should be rewritten (`BLESS=1`).
fn blessing() -> bool {
    std::env::var("BLESS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The corpus programs, sorted by name so failures are reported in a stable order.
fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("tests/check_fail exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "p4lite"))
        .collect();
    files.sort();
    files
}

/// The message of a caught panic (the panic itself is also printed to the captured stderr).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// A short description of where `actual` first departs from `expected`.
fn first_difference(expected: &str, actual: &str) -> String {
    let (mut e, mut a) = (expected.lines(), actual.lines());
    for line in 1.. {
        match (e.next(), a.next()) {
            (None, None) => return "only trailing whitespace differs".to_string(),
            (x, y) if x == y => continue,
            (x, y) => {
                return format!(
                    "first difference at line {line}:\n  expected: {}\n  actual:   {}",
                    x.unwrap_or("<end of file>"),
                    y.unwrap_or("<end of output>")
                )
            }
        }
    }
    unreachable!("the loop returns")
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
    let files = corpus();
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
