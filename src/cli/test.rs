//! `p4lite test [DIR...]`: the golden runner. Runs every case folder under
//! the given directories (default `pcaps`) and compares what comes out with
//! the expectations checked in next to it.
//!
//! A case folder holds a `case.txt` (format in `pcaps/README.md`):
//!
//! ```text
//! # what the case tests
//! program = programs/ipv4_router.p4lite   # relative to the repository root
//! entries = entries.txt                   # optional, relative to the case folder
//! ipvs = lb.conf                          # optional: IPVS director configuration (like `run --ipvs`)
//! input 1 = in_1.pcap                     # ingress port 1; one line per input
//! stf = router.stf                        # instead of inputs: an STF test
//! ```
//!
//! A pcap case expects `expected_<PORT>.pcap` for every port that gets
//! packets (a port without one must get none) and, when present,
//! `expected_report.txt`, the switch's end-of-run report (drops by reason,
//! table hits and misses; for a case with `ipvs =`, followed by the IPVS
//! connection table's counters, which say why the director dropped or
//! evicted what it did). `BLESS=1` rewrites these from the actual run.
//! An STF case carries its expectations in the STF file, which is never
//! rewritten.
//!
//! The repository root is the nearest folder above the case that holds a
//! `Cargo.toml` (the current directory if none does).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use p4lite_runtime::ipvs::director;
use p4lite_runtime::replay::{self, decode, Frame, Input, MemorySink, ReplayOptions};
use p4lite_runtime::stf;
use p4lite_runtime::switch::{Backend, Switch};

use super::run::{build_switch, BackendArg};
use super::{print_stdout, status};

/// Arguments of `p4lite test`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Case folders, or folders holding case folders (searched recursively).
    #[arg(value_name = "DIR", default_value = "pcaps")]
    pub dirs: Vec<PathBuf>,
    /// The backend that runs the pipelines.
    #[arg(long, value_enum, default_value_t = BackendArg::Jit)]
    pub backend: BackendArg,
    /// Run only the cases whose folder name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
}

/// Name of the file that makes a folder a case.
const CASE_FILE: &str = "case.txt";
/// Name of the expected report.
const REPORT_FILE: &str = "expected_report.txt";

/// Runs the cases; exits 0 when all pass, 1 when any fails, 2 when there
/// are no cases or a folder cannot be read.
pub fn run(args: Args) -> ExitCode {
    let mut cases = Vec::new();
    for dir in &args.dirs {
        if let Err(e) = find_cases(dir, &mut cases) {
            eprintln!("p4lite: {}: {e}", dir.display());
            return ExitCode::from(status::USAGE);
        }
    }
    if let Some(f) = &args.filter {
        cases.retain(|c| c.file_name().is_some_and(|n| n.to_string_lossy().contains(f.as_str())));
    }
    if cases.is_empty() {
        eprintln!("p4lite: no test cases (folders with a {CASE_FILE}) found");
        return ExitCode::from(status::USAGE);
    }
    let bless = std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0");
    let backend: Backend = args.backend.into();
    let backend_name = format!("{:?}", args.backend).to_lowercase();
    let (mut passed, mut failed) = (0, Vec::new());
    for case in &cases {
        let name = case.display().to_string();
        let result = run_case(case, backend, bless);
        match result {
            Ok(note) => {
                passed += 1;
                print_stdout(&format!("test {name} ({backend_name}) ... ok{note}\n"));
            }
            Err(why) => {
                print_stdout(&format!("test {name} ({backend_name}) ... FAILED\n"));
                failed.push((name, why));
            }
        }
    }
    let mut text = String::new();
    if !failed.is_empty() {
        text.push_str("\nfailures:\n");
        for (name, why) in &failed {
            let _ = writeln!(text, "\n---- {name} ----\n{}", why.trim_end());
        }
        text.push('\n');
    }
    let _ = writeln!(text, "{} passed, {} failed", passed, failed.len());
    print_stdout(&text);
    ExitCode::from(if failed.is_empty() { status::OK } else { status::ERRORS })
}

/// Collects case folders under `dir` (or `dir` itself), sorted by path.
fn find_cases(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.join(CASE_FILE).is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let mut subdirs: Vec<PathBuf> =
        std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    subdirs.sort();
    for d in subdirs {
        find_cases(&d, out)?;
    }
    Ok(())
}

/// A parsed `case.txt`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Case {
    program: Option<String>,
    entries: Option<String>,
    /// `lb.conf`, loaded before `entries` like `p4lite run --ipvs`.
    ipvs: Option<String>,
    inputs: Vec<(u16, String)>,
    stf: Option<String>,
}

/// Parses `case.txt`: `key = value` lines, `input PORT = FILE`, `#` comments.
fn parse_case(text: &str) -> Result<Case, String> {
    let mut case = Case::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |m: String| format!("{CASE_FILE}:{}: {m}", i + 1);
        let (key, value) =
            line.split_once('=').ok_or_else(|| err(format!("expected `key = value`, found `{line}`")))?;
        let (key, value) = (key.trim(), value.trim().to_string());
        if value.is_empty() {
            return Err(err(format!("`{key}` has no value")));
        }
        let mut words = key.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("program"), None, None) => case.program = Some(value),
            (Some("entries"), None, None) => case.entries = Some(value),
            (Some("ipvs"), None, None) => case.ipvs = Some(value),
            (Some("stf"), None, None) => case.stf = Some(value),
            (Some("description"), None, None) => {}
            (Some("input"), Some(port), None) => {
                let port = p4lite_runtime::switch::parse_port(port).map_err(err)?;
                case.inputs.push((port, value));
            }
            _ => return Err(err(format!("unknown setting `{key}`"))),
        }
    }
    if case.program.is_none() {
        return Err(format!("{CASE_FILE}: no `program = ...`"));
    }
    if case.stf.is_some() != case.inputs.is_empty() {
        return Err(format!("{CASE_FILE}: a case has either `input PORT = FILE` lines or one `stf = FILE`"));
    }
    Ok(case)
}

/// The repository root for `dir`: the nearest ancestor with a `Cargo.toml`.
fn repo_root(dir: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    abs.ancestors().find(|a| a.join("Cargo.toml").is_file()).map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Runs one case; `Ok` with a note (e.g. " (blessed)") or `Err` with why it failed.
fn run_case(dir: &Path, backend: Backend, bless: bool) -> Result<String, String> {
    let text = std::fs::read_to_string(dir.join(CASE_FILE)).map_err(|e| format!("cannot read {CASE_FILE}: {e}"))?;
    let case = parse_case(&text)?;
    let program = repo_root(dir).join(case.program.as_deref().unwrap_or_default());
    // build_switch prints compile errors itself; the case just fails.
    let mut switch = build_switch(&program, backend, false)
        .map_err(|_| format!("{} does not compile or cannot be read (see above)", program.display()))?;
    if let Some(conf) = &case.ipvs {
        let path = dir.join(conf);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if let Err(errors) = director::load_into_switch(&mut switch, &text, &path.display().to_string()) {
            return Err(errors.iter().map(|e| format!("{e}\n")).collect());
        }
    }
    if let Some(entries) = &case.entries {
        let path = dir.join(entries);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if let Err(errors) = switch.apply_commands(&text, &path.display().to_string()) {
            return Err(errors.iter().map(|e| format!("{e}\n")).collect());
        }
    }
    match &case.stf {
        Some(file) => run_stf(&mut switch, &dir.join(file)),
        None => run_pcaps(&mut switch, dir, &case, bless),
    }
}

fn run_stf(switch: &mut Switch, path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let parsed = stf::parse(&text, &path.display().to_string(), switch.program())
        .map_err(|errors| errors.iter().map(|e| format!("{e}\n")).collect::<String>())?;
    let outcome = stf::run(&parsed, switch);
    if outcome.passed() {
        Ok(String::new())
    } else {
        Err(outcome.failures.join("\n"))
    }
}

/// The IPVS connection table's counters (`ConnStats`) for the report of a
/// case with `ipvs =`: creations, expiries, and what a full table did.
fn conn_report(switch: &Switch) -> String {
    let Some(d) = switch.externs().director() else {
        return String::new();
    };
    let st = d.conns.stats();
    let rows = [
        ("conns created", st.inserts),
        ("templates created", st.templates),
        ("expired", st.expired),
        ("template expiries postponed", st.postponed),
        ("reused (port reuse)", st.reused),
        ("evicted transient (table full)", st.evicted_transient),
        ("evicted established (table full)", st.evicted_established),
        ("evicted templates (table full)", st.evicted_templates),
        ("refused (table full)", st.refused),
    ];
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = format!("\nIPVS connection table (at most {}; 0: unbounded)\n", d.conns.config().max_conns);
    for (name, n) in rows {
        let _ = writeln!(out, "  {name:<width$}  {n}");
    }
    out
}

fn run_pcaps(switch: &mut Switch, dir: &Path, case: &Case, bless: bool) -> Result<String, String> {
    let mut inputs = Vec::new();
    for (port, file) in &case.inputs {
        inputs.push(Input::file(*port, &dir.join(file)).map_err(|e| e.to_string())?);
    }
    let mut sink = MemorySink::default();
    replay::replay(switch, inputs, &mut sink, ReplayOptions::default()).map_err(|e| e.to_string())?;
    let mut report = switch.report();
    if case.ipvs.is_some() {
        report.push_str(&conn_report(switch));
    }
    let expected = expected_files(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    if bless {
        let mut removed = 0;
        for (port, path) in &expected {
            if !sink.ports.contains_key(port) {
                std::fs::remove_file(path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
                removed += 1;
            }
        }
        // Files whose content already matches are left alone, so blessing
        // changes only what changed (and keeps files pcaps/gen.py wrote).
        let mut changed = removed;
        for (port, frames) in &sink.ports {
            let path = dir.join(format!("expected_{port}.pcap"));
            if replay::read_capture(&path).ok().as_ref() != Some(frames) {
                replay::write_pcap(&path, frames).map_err(|e| e.to_string())?;
                changed += 1;
            }
        }
        let path = dir.join(REPORT_FILE);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(report.as_str()) {
            std::fs::write(&path, &report).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            changed += 1;
        }
        return Ok(if changed == 0 { String::new() } else { format!(" (blessed: {changed} files written)") });
    }
    let mut failures = String::new();
    let mut ports: Vec<u16> = expected.keys().chain(sink.ports.keys()).copied().collect();
    ports.sort_unstable();
    ports.dedup();
    for port in ports {
        let want = match expected.get(&port) {
            Some(path) => replay::read_capture(path).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        let got = sink.ports.get(&port).map_or(&[][..], Vec::as_slice);
        if let Some(f) = compare_frames(port, &want, got) {
            failures.push_str(&f);
        }
    }
    let report_path = dir.join(REPORT_FILE);
    if report_path.is_file() {
        let want = std::fs::read_to_string(&report_path).map_err(|e| format!("{}: {e}", report_path.display()))?;
        if let Some(f) = compare_text(&want, &report) {
            let _ = write!(failures, "the report differs from {REPORT_FILE}:\n{f}");
        }
    }
    if failures.is_empty() {
        Ok(String::new())
    } else {
        failures.push_str("(run with BLESS=1 to accept the new output)\n");
        Err(failures)
    }
}

/// `expected_<PORT>.pcap` files of a case, by port.
fn expected_files(dir: &Path) -> std::io::Result<BTreeMap<u16, PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if let Some(port) = name.strip_prefix("expected_").and_then(|r| r.strip_suffix(".pcap")) {
            if let Ok(port) = port.parse::<u16>() {
                out.insert(port, path);
            }
        }
    }
    Ok(out)
}

/// The first difference between the expected and actual packets of a port:
/// counts, then the first differing packet decoded field by field.
fn compare_frames(port: u16, want: &[Frame], got: &[Frame]) -> Option<String> {
    let mut s = String::new();
    if want.len() != got.len() {
        let _ = writeln!(s, "port {port}: expected {} packets, got {}", want.len(), got.len());
    }
    let first = want.iter().zip(got).position(|(w, g)| w != g);
    match first {
        Some(i) => {
            let (w, g) = (&want[i], &got[i]);
            let _ = writeln!(s, "port {port}: packet {} of {} differs:", i + 1, want.len());
            if w.ts_ns != g.ts_ns {
                let _ = writeln!(s, "! time  expected {}  actual {}", w.ts_ns, g.ts_ns);
            }
            if let Some(d) = decode::diff(&w.data, &g.data) {
                s.push_str(&d);
            }
        }
        None if want.len() != got.len() => {
            // Equal as far as both go: show the first extra or missing one.
            let (which, extra) =
                if got.len() > want.len() { ("unexpected", &got[want.len()]) } else { ("missing", &want[got.len()]) };
            let _ = writeln!(s, "port {port}: first {which} packet (packet {}):", want.len().min(got.len()) + 1);
            for f in decode::decode(&extra.data) {
                let _ = writeln!(s, "  {:24}  {}", f.name, f.value);
            }
        }
        None => return None,
    }
    Some(s)
}

/// A line diff of two texts (first differing line with context), or `None`.
fn compare_text(want: &str, got: &str) -> Option<String> {
    if want == got {
        return None;
    }
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let at = w.iter().zip(&g).position(|(a, b)| a != b).unwrap_or(w.len().min(g.len()));
    let mut s = String::new();
    let _ = writeln!(s, "  first difference at line {}:", at + 1);
    for l in w.iter().skip(at).take(5) {
        let _ = writeln!(s, "  - {l}");
    }
    for l in g.iter().skip(at).take(5) {
        let _ = writeln!(s, "  + {l}");
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_file_forms() {
        let c = parse_case(
            "# router\nprogram = programs/ipv4_router.p4lite\nentries = e.txt # the routes\n\
             input 1 = in_1.pcap\ninput 2 = ../x.pcapng\n",
        )
        .unwrap();
        assert_eq!(c.program.as_deref(), Some("programs/ipv4_router.p4lite"));
        assert_eq!(c.entries.as_deref(), Some("e.txt"));
        assert_eq!(c.inputs, vec![(1, "in_1.pcap".to_string()), (2, "../x.pcapng".to_string())]);
        assert!(parse_case("program = p\nstf = a.stf\n").is_ok());
        assert!(parse_case("program = p\n").is_err(), "neither inputs nor stf");
        assert!(parse_case("program = p\nstf = a\ninput 1 = b\n").is_err(), "both");
        assert!(parse_case("input 1 = b\n").is_err(), "no program");
        assert!(parse_case("program = p\ninput x = b\n").unwrap_err().contains("case.txt:2:"));
        assert!(parse_case("program = p\nfrobnicate = 1\n").is_err());
    }

    #[test]
    fn frame_comparison_names_the_field() {
        let mut a = vec![0u8; 14];
        a[12] = 0x08;
        let mut b = a.clone();
        b[0] = 1;
        let f = |d: &Vec<u8>| Frame { ts_ns: 5, data: d.clone() };
        assert!(compare_frames(1, &[f(&a)], &[f(&a)]).is_none());
        let text = compare_frames(1, &[f(&a)], &[f(&b)]).unwrap();
        assert!(text.contains("packet 1 of 1 differs") && text.contains("! eth.dst"), "{text}");
        let text = compare_frames(2, &[], &[f(&a)]).unwrap();
        assert!(text.contains("expected 0 packets, got 1") && text.contains("first unexpected"), "{text}");
    }

    #[test]
    fn text_comparison_shows_first_difference() {
        assert!(compare_text("a\nb\n", "a\nb\n").is_none());
        let d = compare_text("a\nb\n", "a\nc\n").unwrap();
        assert!(d.contains("line 2") && d.contains("- b") && d.contains("+ c"));
    }
}
