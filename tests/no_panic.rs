//! Property test: no input makes the front end panic.
//!
//! Malformed programs must come back as diagnostics (the front end's
//! contract, `common.md`: "no panics on bad input"). The inputs are
//!
//! * random byte strings (read as UTF-8 with replacement characters),
//! * random "token soup" drawn from the tokens of the example programs,
//!   which gets further into the parser than random bytes do, and
//! * the example programs with a few token-level mutations each: delete,
//!   duplicate, swap or replace tokens, or cut the program short. Most
//!   mutants still parse, so they exercise the checker too.
//!
//! Each input goes through `p4lite_compiler::compile` and the diagnostics
//! through `diag::render` (a span outside its source would panic there)
//! under `catch_unwind`. The generator is a fixed-seed xorshift, so a
//! failure reproduces; `P4LITE_FUZZ_CASES` and `P4LITE_FUZZ_SEED` run more
//! or different cases (e.g. `P4LITE_FUZZ_CASES=100000 cargo test --release
//! --test no_panic`).

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

mod common;

use common::PanicRecorder;
use p4lite_compiler::diag;
use p4lite_compiler::rng::Rng;
use p4lite_compiler::span::Sources;

/// Cases per run by default. A case costs about 10 ms of CPU in a debug
/// build (mostly parsing and checking the prelude again), so this takes
/// about 10 s, or 20 s on a busy machine.
const DEFAULT_CASES: u64 = 1000;

/// How many failing inputs are printed in full.
const SHOWN_FAILURES: usize = 3;

/// Splits a program into tokens, each keeping the whitespace after it, so
/// that joining the tokens gives back the program. Words (identifiers and
/// numbers) are one token; every other character is a token of its own, so
/// mutations also split operators (`&&&`), literals (`10.0.0.1`) and comments.
fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            match out.last_mut() {
                Some(t) => t.push(c),
                None => out.push(c.to_string()),
            }
            continue;
        }
        let mut tok = c.to_string();
        if c.is_alphanumeric() || c == '_' {
            while let Some(&d) = chars.peek() {
                if !(d.is_alphanumeric() || d == '_') {
                    break;
                }
                tok.push(d);
                chars.next();
            }
        }
        out.push(tok);
    }
    out
}

/// One generated input: how it was made (for the report) and its text.
struct Case {
    origin: String,
    text: String,
}

/// Random bytes, up to 200 of them.
fn random_bytes(rng: &mut Rng) -> Case {
    let len = rng.index(201);
    let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    Case { origin: "random bytes".to_string(), text: String::from_utf8_lossy(&bytes).into_owned() }
}

/// Up to 60 tokens drawn at random from the example programs' tokens.
fn token_soup(rng: &mut Rng, vocabulary: &[String]) -> Case {
    let len = rng.index(61);
    let text = (0..len).map(|_| vocabulary[rng.index(vocabulary.len())].as_str()).collect::<Vec<_>>().join(" ");
    Case { origin: "token soup".to_string(), text }
}

/// An example program with one to three token-level mutations.
fn mutant(rng: &mut Rng, programs: &[(String, Vec<String>)], vocabulary: &[String]) -> Case {
    let (name, toks) = &programs[rng.index(programs.len())];
    let mut toks = toks.clone();
    let mut what = Vec::new();
    for _ in 0..1 + rng.index(3) {
        if toks.is_empty() {
            break;
        }
        let i = rng.index(toks.len());
        match rng.index(5) {
            0 => {
                what.push(format!("delete #{i} {:?}", toks[i].trim_end()));
                toks.remove(i);
            }
            1 => {
                what.push(format!("duplicate #{i} {:?}", toks[i].trim_end()));
                let t = toks[i].clone();
                toks.insert(i, t);
            }
            2 => {
                let j = rng.index(toks.len());
                what.push(format!("swap #{i} #{j}"));
                toks.swap(i, j);
            }
            3 => {
                let t = vocabulary[rng.index(vocabulary.len())].clone();
                what.push(format!("replace #{i} {:?} by {t:?}", toks[i].trim_end()));
                toks[i] = format!("{t} ");
            }
            _ => {
                what.push(format!("truncate at #{i}"));
                toks.truncate(i);
            }
        }
    }
    Case { origin: format!("{name} mutated: {}", what.join(", ")), text: toks.concat() }
}

/// Runs the front end and the renderer on one input; `Err` holds the panic.
fn run(case: &Case, panics: &PanicRecorder) -> Result<(), String> {
    let sources = Sources::new("fuzz.p4lite", case.text.clone());
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let compiled = p4lite_compiler::compile(&sources);
        diag::render(&compiled.diagnostics, &sources, false);
    }));
    outcome.map_err(|_| panics.last())
}

/// A number from the environment, or the default.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn front_end_never_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs");
    let mut programs: Vec<(String, Vec<String>)> = fs::read_dir(&dir)
        .expect("programs/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "p4lite"))
        .filter_map(|p| {
            let text = fs::read_to_string(&p).ok()?;
            Some((p.file_name()?.to_string_lossy().into_owned(), tokens(&text)))
        })
        .collect();
    programs.sort();
    assert!(!programs.is_empty(), "no programs found in programs/");
    let mut vocabulary: Vec<String> =
        programs.iter().flat_map(|(_, t)| t.iter().map(|s| s.trim_end().to_string())).collect();
    vocabulary.sort();
    vocabulary.dedup();
    vocabulary.retain(|t| !t.is_empty());

    let cases = env_number("P4LITE_FUZZ_CASES", DEFAULT_CASES);
    let seed = env_number("P4LITE_FUZZ_SEED", 0x5EED_0004_11FE);
    let mut rng = Rng::new(seed);

    let panics = PanicRecorder::install();
    let mut failures: Vec<(Case, String)> = Vec::new();
    let mut failed = 0u64;
    for _ in 0..cases {
        let case = match rng.index(10) {
            0 => random_bytes(&mut rng),
            1 | 2 => token_soup(&mut rng, &vocabulary),
            _ => mutant(&mut rng, &programs, &vocabulary),
        };
        if let Err(msg) = run(&case, &panics) {
            failed += 1;
            if failures.len() < SHOWN_FAILURES {
                failures.push((case, msg));
            }
        }
    }
    drop(panics);

    if failed > 0 {
        let mut report = format!("{failed} of {cases} inputs made the front end panic (seed {seed:#x}).\n");
        for (case, msg) in &failures {
            report.push_str(&format!(
                "\n=== {}\n--- panic: {msg}\n--- input ({} bytes):\n{}\n--- as a Rust string: {:?}\n",
                case.origin,
                case.text.len(),
                case.text,
                case.text
            ));
        }
        panic!("{report}");
    }
}

#[test]
fn tokens_join_back_to_the_text() {
    let text = "const bit<16> X = 0x0800; // hi\n  state s { }";
    let toks = tokens(text);
    assert_eq!(toks.concat(), text);
    assert_eq!(toks[0], "const ");
    assert_eq!(toks[1], "bit");
    assert_eq!(toks[2], "<");
}
