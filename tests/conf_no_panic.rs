//! Property test: a malformed control-plane file gets errors that name
//! their lines, changes nothing, and never panics (the brief: "a bad config
//! line names the line and changes nothing").
//!
//! Two kinds of file: `lb.conf` (`p4lite run --ipvs`, and the control
//! socket's loads) for `programs/lb.p4lite`, from the golden cases'
//! (`pcaps/lb_*/lb.conf`); and BMv2 runtime-CLI table entries (`--entries`,
//! the socket's commands) for each program a golden case gives an entries
//! file (`entries =` in its `case.txt`). Every case starts from a fresh
//! switch that has loaded nothing or one of those files, then loads a
//! second file on top: one of the files with one to three mutations
//! (delete, duplicate or swap words or whole lines, replace a word by one
//! from the files or by a hostile value, cut the file short), or a few
//! lines drawn at random from them. For each case:
//!
//! * the load does not panic (it runs under `catch_unwind`);
//! * when it is refused, every error is for the loaded file and names one
//!   of its lines (line 0 only for a table entry an `lb.conf` load
//!   generated, which has no line of its own), with a message;
//! * when it is refused, every table of the switch and, for `lb.conf`, the
//!   director's state (services, real servers, network, sysctls, timeouts,
//!   health checks, the connection table's settings) are as before.
//!
//! The generator is a fixed-seed xorshift, so a failure reproduces;
//! `P4LITE_FUZZ_CASES` and `P4LITE_FUZZ_SEED` run more or different cases.

use std::fs;
use std::panic::{self, AssertUnwindSafe};

mod common;

use common::{root, PanicRecorder};
use p4lite_compiler::ir::Program;
use p4lite_compiler::rng::Rng;
use p4lite_compiler::span::Sources;
use p4lite_runtime::control::CommandError;
use p4lite_runtime::ipvs::director::load_into_switch;
use p4lite_runtime::switch::{Backend, Switch, SwitchOptions};

/// Cases per run by default (a case is a few milliseconds in a release build).
const DEFAULT_CASES: u64 = 1500;

/// How many failing inputs are printed in full.
const SHOWN_FAILURES: usize = 3;

/// Words that break assumptions: empty-ish, huge, negative, out of range,
/// half an address, the wrong kind of address, non-ASCII.
const HOSTILE: &[&str] = &[
    "-",
    "--",
    ":",
    "0",
    "-1",
    "65536",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999999",
    "0x",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "10.1.1.1:",
    ":80",
    "10.1.1.1:99999",
    "10.1.1.1/33",
    "10.1.1.1/-1",
    "0.0.0.0/0",
    "[::1]:80",
    "02:00:00:00:00",
    "02:00:00:00:00:00:00",
    "zz:zz:zz:zz:zz:zz",
    "@",
    "@-1",
    "@18446744073709551615",
    "#",
    "\u{e9}\u{1F600}",
    "-s",
    "-w",
    "-p",
    "-M",
    "--set",
    "-x",
    "-y",
    "-A",
    "-a",
    "-E",
    "-e",
    "-d",
    "-D",
    "-C",
    "-L",
    "-n",
    "-c",
    "--stats",
    "--rate",
    "=>",
    "&&&",
    "->",
    "/",
    "10.0.0.0/",
    "1&&&",
    "2001:db8::1",
    "::",
    "0x1ffffffffffffffffffffffffffffffff",
    "table_add",
    "table_delete",
    "table_set_default",
    "table_reset_default",
    "table_clear",
    "mc_mgrp_create",
    "mc_node_create",
    "mc_node_associate",
];

/// One generated file: how it was made (for the report) and its text.
struct Case {
    origin: String,
    text: String,
}

/// A file as lines of words.
type Lines = Vec<Vec<String>>;

/// The files of one kind as lines of words (with their names), and every
/// word they hold.
type Prepared = (Vec<(String, Lines)>, Vec<String>);

fn split(text: &str) -> Lines {
    text.lines().map(|l| l.split_whitespace().map(str::to_string).collect()).collect()
}

fn join(lines: &Lines) -> String {
    lines.iter().map(|l| l.join(" ") + "\n").collect()
}

/// A word position in `lines` (`None` when there are no words).
fn word_at(rng: &mut Rng, lines: &Lines) -> Option<(usize, usize)> {
    let with_words: Vec<usize> = (0..lines.len()).filter(|&i| !lines[i].is_empty()).collect();
    if with_words.is_empty() {
        return None;
    }
    let l = with_words[rng.index(with_words.len())];
    Some((l, rng.index(lines[l].len())))
}

/// One of the files with one to three mutations.
fn mutant(rng: &mut Rng, files: &[(String, Lines)], vocabulary: &[String]) -> Case {
    let (name, lines) = &files[rng.index(files.len())];
    let mut lines = lines.clone();
    let mut what = Vec::new();
    for _ in 0..1 + rng.index(3) {
        if lines.is_empty() {
            break;
        }
        let l = rng.index(lines.len());
        match rng.index(8) {
            0 => {
                if let Some((l, w)) = word_at(rng, &lines) {
                    what.push(format!("delete {:?} of line {}", lines[l][w], l + 1));
                    lines[l].remove(w);
                }
            }
            1 => {
                if let Some((l, w)) = word_at(rng, &lines) {
                    what.push(format!("duplicate {:?} of line {}", lines[l][w], l + 1));
                    let t = lines[l][w].clone();
                    lines[l].insert(w, t);
                }
            }
            2 => {
                if let (Some((l1, w1)), Some((l2, w2))) = (word_at(rng, &lines), word_at(rng, &lines)) {
                    what.push(format!(
                        "swap {:?} of line {} and {:?} of line {}",
                        lines[l1][w1],
                        l1 + 1,
                        lines[l2][w2],
                        l2 + 1
                    ));
                    let t = std::mem::take(&mut lines[l1][w1]);
                    lines[l1][w1] = std::mem::replace(&mut lines[l2][w2], t);
                }
            }
            3 | 4 => {
                if let Some((l, w)) = word_at(rng, &lines) {
                    let t = if rng.chance(50) {
                        vocabulary[rng.index(vocabulary.len())].clone()
                    } else {
                        HOSTILE[rng.index(HOSTILE.len())].to_string()
                    };
                    what.push(format!("replace {:?} of line {} by {t:?}", lines[l][w], l + 1));
                    lines[l][w] = t;
                }
            }
            5 => {
                what.push(format!("delete line {}", l + 1));
                lines.remove(l);
            }
            6 => {
                what.push(format!("duplicate line {}", l + 1));
                let t = lines[l].clone();
                lines.insert(l, t);
            }
            _ => {
                let w = rng.index(lines[l].len() + 1);
                what.push(format!("cut at word {w} of line {}", l + 1));
                lines.truncate(l + 1);
                lines[l].truncate(w);
            }
        }
    }
    Case { origin: format!("{name} mutated: {}", what.join(", ")), text: join(&lines) }
}

/// One to eight lines drawn from all the files.
fn medley(rng: &mut Rng, files: &[(String, Lines)]) -> Case {
    let mut lines = Lines::new();
    for _ in 0..1 + rng.index(8) {
        let (_, f) = &files[rng.index(files.len())];
        if !f.is_empty() {
            lines.push(f[rng.index(f.len())].clone());
        }
    }
    Case { origin: "lines drawn from all files".to_string(), text: join(&lines) }
}

/// One kind of control-plane file: the program it configures, how a switch
/// loads it, and what a load can change.
struct Kind {
    program: Program,
    /// The name a case is loaded under (errors must name it).
    file: &'static str,
    load: fn(&mut Switch, &str, &str) -> Result<(), Vec<CommandError>>,
    /// The program's state a load may change, as text.
    snapshot: fn(&mut Switch, &Program) -> String,
}

/// `lb.conf`: the director's state and the tables it fills.
fn lb_conf(program: Program) -> Kind {
    fn load(sw: &mut Switch, text: &str, file: &str) -> Result<(), Vec<CommandError>> {
        load_into_switch(sw, text, file).map(drop)
    }
    fn snapshot(sw: &mut Switch, program: &Program) -> String {
        let director = match sw.externs().director() {
            Some(d) => format!("{:?}\n{:?}\n", d.lb, d.conns.config()),
            None => "no director\n".to_string(),
        };
        director + &tables(sw, program)
    }
    Kind { program, file: "fuzz.conf", load, snapshot }
}

/// BMv2 runtime-CLI entries (`entries =` of a golden case): the tables.
fn entries(program: Program) -> Kind {
    fn load(sw: &mut Switch, text: &str, file: &str) -> Result<(), Vec<CommandError>> {
        sw.apply_commands(text, file).map(drop)
    }
    Kind { program, file: "fuzz.txt", load, snapshot: tables }
}

/// Every table of `program`, dumped.
fn tables(sw: &mut Switch, program: &Program) -> String {
    let dump: String = program.tables.iter().map(|t| format!("table_dump {}\n", t.name)).collect();
    sw.apply_commands(&dump, "<snapshot>").expect("table_dump of every table").join("\n")
}

/// Loads `case` on top of `base` in a fresh switch: whether it was refused,
/// or what went wrong.
fn run(kind: &Kind, base: &str, case: &Case, panics: &PanicRecorder) -> Result<bool, String> {
    let mut sw = Switch::new(kind.program.clone(), SwitchOptions { backend: Backend::Interp, trace: false })
        .map_err(|e| format!("no switch: {e}"))?;
    (kind.load)(&mut sw, base, "base").map_err(|e| format!("base refused: {e:?}"))?;
    let before = (kind.snapshot)(&mut sw, &kind.program);
    let lines = case.text.lines().count();
    let loaded = panic::catch_unwind(AssertUnwindSafe(|| (kind.load)(&mut sw, &case.text, kind.file)))
        .map_err(|_| format!("panic: {}", panics.last()))?;
    let Err(errors) = loaded else { return Ok(false) };
    if errors.is_empty() {
        return Err("refused without an error".to_string());
    }
    for e in &errors {
        if e.file != kind.file || e.line > lines || e.message.trim().is_empty() {
            return Err(format!("error without a line of the file ({lines} lines): {e:?}"));
        }
    }
    let after = (kind.snapshot)(&mut sw, &kind.program);
    if after != before {
        return Err(format!("refused ({:?}) but the state changed", errors[0]));
    }
    Ok(true)
}

/// A number from the environment, or the default.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Compiles a program of the repository.
fn program(path: &str) -> Program {
    let text = fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    p4lite_compiler::compile(&Sources::new(path, text)).ir.unwrap_or_else(|| panic!("{path} does not compile"))
}

/// The property over `cases` files made from `files` (name, text), each
/// loaded empty or on top of one of `files` itself (where whole files
/// mostly collide with the entries already there, so line medleys do
/// better there). Panics with a report of the first failures.
fn fuzz(kinds: &[(Kind, Vec<(String, String)>)], seed: u64) {
    let cases = env_number("P4LITE_FUZZ_CASES", DEFAULT_CASES);
    let seed = env_number("P4LITE_FUZZ_SEED", seed);
    let mut rng = Rng::new(seed);
    let prepared: Vec<Prepared> = kinds
        .iter()
        .map(|(_, files)| {
            let lines: Vec<(String, Lines)> = files.iter().map(|(n, t)| (n.clone(), split(t))).collect();
            let mut vocabulary: Vec<String> = lines.iter().flat_map(|(_, l)| l.iter().flatten().cloned()).collect();
            vocabulary.sort();
            vocabulary.dedup();
            (lines, vocabulary)
        })
        .collect();

    let panics = PanicRecorder::install();
    let (mut failed, mut refused) = (0u64, 0u64);
    let mut failures: Vec<(Case, String)> = Vec::new();
    let empty = (String::from("nothing"), String::new());
    for _ in 0..cases {
        let k = rng.index(kinds.len());
        let ((kind, files), (lines, vocabulary)) = (&kinds[k], &prepared[k]);
        let base = if rng.chance(50) { &empty } else { &files[rng.index(files.len())] };
        let case = if rng.chance(20) { medley(&mut rng, lines) } else { mutant(&mut rng, lines, vocabulary) };
        match run(kind, &base.1, &case, &panics) {
            Ok(was_refused) => refused += u64::from(was_refused),
            Err(msg) => {
                failed += 1;
                if failures.len() < SHOWN_FAILURES {
                    failures.push((Case { origin: format!("on top of {}: {}", base.0, case.origin), ..case }, msg));
                }
            }
        }
    }
    drop(panics);

    if failed > 0 {
        let mut report = format!("{failed} of {cases} files were mishandled (seed {seed:#x}).\n");
        for (case, msg) in &failures {
            report.push_str(&format!("\n=== {}\n--- {msg}\n--- file:\n{}", case.origin, case.text));
        }
        panic!("{report}");
    }
    // Most mutants of a valid file should be refused; if hardly any are,
    // the test exercises nothing.
    assert!(refused * 3 >= cases, "only {refused} of {cases} mutated files were refused: the mutations miss");
}

/// The files named `name` in the golden cases' folders (`pcaps/*/`), with
/// their folder's name.
fn golden_files(name: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(root().join("pcaps"))
        .expect("pcaps/ exists")
        .filter_map(|e| e.ok().map(|e| e.path().join(name)))
        .filter_map(|p| Some((p.parent()?.file_name()?.to_string_lossy().into_owned(), fs::read_to_string(&p).ok()?)))
        .collect();
    files.sort();
    files
}

#[test]
fn bad_lb_conf_names_its_line_and_changes_nothing() {
    let files = golden_files("lb.conf");
    assert!(files.len() >= 5, "the golden cases' lb.conf files: {}", files.len());
    fuzz(&[(lb_conf(program("programs/lb.p4lite")), files)], 0x5EED_0C0F);
}

#[test]
fn bad_table_entries_name_their_line_and_change_nothing() {
    // Each golden case's entries file with the program its case.txt names.
    let mut by_program: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (case, text) in golden_files("case.txt") {
        let field = |key: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().to_string())
            })
        };
        let (Some(prog), Some(entries)) = (field("program"), field("entries")) else { continue };
        let path = root().join("pcaps").join(&case).join(&entries);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        match by_program.iter_mut().find(|(p, _)| *p == prog) {
            Some((_, files)) => files.push((case, text)),
            None => by_program.push((prog, vec![(case, text)])),
        }
    }
    assert!(by_program.len() >= 3, "programs with golden entries files: {by_program:?}");
    let kinds: Vec<(Kind, Vec<(String, String)>)> =
        by_program.into_iter().map(|(prog, files)| (entries(program(&prog)), files)).collect();
    fuzz(&kinds, 0x5EED_0E17);
}
