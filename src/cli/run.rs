//! `p4lite run PROG --entries FILE --in [PORT=]IN.pcap --out [PORT=]OUT.pcap`:
//! replay captures through the switch and write what comes out.
//!
//! Several ports: `--in 0=a.pcap --in 1=b.pcap --out 0=x.pcap --out 1=y.pcap`;
//! a plain `--in FILE` is port 0. Packets sent to a port without `--out`
//! are counted and discarded, and the report says how many.
//!
//! The load balancer: `--ipvs lb.conf` loads the director's configuration
//! (ipvsadm command lines plus `port`/`neigh`/`route`/`sysctl`/`overhead`
//! lines; see `p4lite_runtime::ipvs::admin`) into the switch's IPVS state
//! and fills the program's director tables from it
//! (`p4lite_runtime::ipvs::director`), all or nothing, before `--entries`
//! is applied. After the replay the ipvsadm listing `-Ln` is printed, or
//! the listings given with `--ipvs-list` (repeatable: `--ipvs-list "-Ln
//! --stats"`, `--ipvs-list "-Ln --rate"`, `--ipvs-list -Lnc`), at the time
//! of the last packet. Its `check` lines (health checks) are checked and
//! then ignored, with a note: they act in live mode only.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use p4lite_runtime::ipvs::director;
use p4lite_runtime::replay::{self, Input, PcapFiles, ReplayOptions};
use p4lite_runtime::switch::{Backend, Switch, SwitchOptions};

use super::{entry_diagnostics, load, print_stdout, report, status};

/// Which backend runs the pipeline.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendArg {
    /// Native code compiled with Cranelift.
    Jit,
    /// The reference interpreter.
    Interp,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::Jit => Backend::Jit,
            BackendArg::Interp => Backend::Interp,
        }
    }
}

/// A capture file bound to a port: `PORT=FILE`, or `FILE` for port 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortFile {
    pub port: u16,
    pub path: PathBuf,
}

/// Parses `PORT=FILE` or `FILE` (port 0). A prefix before `=` that is not a
/// port number is part of the file name.
pub fn parse_port_file(s: &str) -> Result<PortFile, String> {
    if let Some((port, path)) = s.split_once('=') {
        if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) {
            let port = p4lite_runtime::switch::parse_port(port)?;
            if path.is_empty() {
                return Err(format!("`{s}`: no file after `=`"));
            }
            return Ok(PortFile { port, path: PathBuf::from(path) });
        }
    }
    if s.is_empty() {
        return Err("empty file name".into());
    }
    Ok(PortFile { port: 0, path: PathBuf::from(s) })
}

/// For a file that does not exist and whose name has a `=`: the note that
/// `PORT=FILE` wants a port number (`--in x=a.pcap` reads a file named
/// `x=a.pcap`); otherwise nothing.
fn missing_port_hint(path: &Path) -> &'static str {
    if path.to_string_lossy().contains('=') && !path.exists() {
        " (a port goes before `=` as a number: --in 1=FILE)"
    } else {
        ""
    }
}

/// Arguments of `p4lite run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The program to run.
    #[arg(value_name = "PROG")]
    pub program: PathBuf,
    /// Control-plane commands in BMv2 runtime-CLI syntax (`table_add ...`),
    /// applied before the first packet.
    #[arg(long, value_name = "FILE")]
    pub entries: Option<PathBuf>,
    /// An input capture (pcap or pcapng): `PORT=FILE`, or `FILE` for port 0.
    /// Repeat for more ports; packets are merged by timestamp.
    #[arg(long = "in", value_name = "[PORT=]FILE", required_unless_present = "ifaces", value_parser = parse_port_file)]
    pub inputs: Vec<PortFile>,
    /// Where the packets sent to a port go (a pcap file): `PORT=FILE`, or
    /// `FILE` for port 0. Packets to ports without one are discarded.
    #[arg(long = "out", value_name = "[PORT=]FILE", value_parser = parse_port_file)]
    pub outputs: Vec<PortFile>,
    /// The backend that runs the pipeline.
    #[arg(long, value_enum, default_value_t = BackendArg::Jit)]
    pub backend: BackendArg,
    /// Print what the pipeline does with each packet.
    #[arg(long)]
    pub trace: bool,
    /// Run on a network interface instead of captures: `PORT=IFACE`.
    /// Repeat for more ports; runs until SIGINT or SIGTERM (needs root).
    #[arg(long = "iface", value_name = "PORT=IFACE", conflicts_with_all = ["inputs", "outputs"])]
    pub ifaces: Vec<p4lite_runtime::live::PortSpec>,
    /// With `--iface`: serve the control channel on this Unix socket
    /// (`p4lite ctl SOCKET table_add ...`).
    #[arg(long, value_name = "SOCKET", requires = "ifaces")]
    pub ctl: Option<PathBuf>,
    /// The load balancer's configuration (`lb.conf`: ipvsadm command lines
    /// and the director's `port`, `neigh`, `route`, `sysctl` lines), loaded
    /// before `--entries`; it fills the program's director tables.
    #[arg(long, value_name = "FILE")]
    pub ipvs: Option<PathBuf>,
    /// An ipvsadm listing to print after the replay, e.g. "-Ln --stats",
    /// "-Ln --rate" or "-Lnc" (repeatable; default with `--ipvs`: "-Ln").
    #[arg(long = "ipvs-list", value_name = "ARGS", allow_hyphen_values = true)]
    pub ipvs_list: Vec<String>,
}

/// Why a switch could not be built; the caller exits with `.0`.
pub struct Failed(pub u8);

/// Compiles `program` and creates a switch for it, printing diagnostics
/// (exit 1) or why the file could not be read (exit 2).
pub fn build_switch(program: &Path, backend: Backend, trace: bool) -> Result<Switch, Failed> {
    let sources = load(program).ok_or(Failed(status::USAGE))?;
    let compiled = p4lite_compiler::compile(&sources);
    let mut diags = compiled.diagnostics;
    if let Some(program) = &compiled.ir {
        diags.extend(entry_diagnostics(program));
    }
    let has_errors = report(&diags, &sources);
    let ir = match compiled.ir {
        Some(ir) if !has_errors => ir,
        _ => return Err(Failed(status::ERRORS)),
    };
    Switch::new(ir, SwitchOptions { backend, trace }).map_err(|e| {
        eprintln!("p4lite: {}: {e}", program.display());
        Failed(status::ERRORS)
    })
}

/// Reads an entries file and applies it, all or nothing. Prints
/// `file:line: message` for each bad line, or what the commands printed.
pub fn apply_entries(switch: &mut Switch, path: &Path) -> Result<Vec<String>, Failed> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("p4lite: cannot read {}: {e}", path.display());
        Failed(status::USAGE)
    })?;
    switch.apply_commands(&text, &path.display().to_string()).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!("p4lite: {} in {}; no entries were applied", count_errors(errors.len()), path.display());
        Failed(status::ERRORS)
    })
}

/// "1 error", "2 errors".
fn count_errors(n: usize) -> String {
    format!("{n} error{}", if n == 1 { "" } else { "s" })
}

/// Loads `lb.conf` into the switch (all or nothing). Prints `file:line:
/// message` for each bad line, or what the file's listing commands printed.
pub fn load_ipvs(switch: &mut Switch, path: &Path) -> Result<Vec<String>, Failed> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("p4lite: cannot read {}: {e}", path.display());
        Failed(status::USAGE)
    })?;
    director::load_into_switch(switch, &text, &path.display().to_string()).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!("p4lite: {} in {}; nothing was applied", count_errors(errors.len()), path.display());
        Failed(status::ERRORS)
    })
}

/// The `--ipvs-list` listings as one text (the default `-Ln` when none was
/// asked for), or `None` without `--ipvs` and `--ipvs-list`.
fn ipvs_listing(switch: &Switch, args: &Args) -> Result<Option<String>, Failed> {
    if args.ipvs.is_none() && args.ipvs_list.is_empty() {
        return Ok(None);
    }
    let Some(d) = switch.externs().director() else { return Ok(None) };
    let requests = if args.ipvs_list.is_empty() { vec!["-Ln".to_string()] } else { args.ipvs_list.clone() };
    let mut text = String::new();
    for r in &requests {
        let lines = d.list(r).map_err(|errors| {
            for e in &errors {
                eprintln!("p4lite: --ipvs-list \"{r}\": {}", e.message);
            }
            Failed(status::USAGE)
        })?;
        for l in lines {
            text.push_str(&l);
            text.push('\n');
        }
    }
    Ok(Some(text))
}

/// Replays the inputs and prints the replay summary and the switch's report.
/// Exits 0, 1 for errors in the program or entries, 2 for unreadable files.
pub fn run(args: Args) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::from(status::OK),
        Err(Failed(code)) => ExitCode::from(code),
    }
}

fn run_inner(args: Args) -> Result<(), Failed> {
    let mut seen = std::collections::BTreeMap::new();
    for o in &args.outputs {
        if let Some(prev) = seen.insert(o.port, &o.path) {
            eprintln!("p4lite: two --out files for port {}: {} and {}", o.port, prev.display(), o.path.display());
            return Err(Failed(status::USAGE));
        }
    }
    let mut switch = build_switch(&args.program, args.backend.into(), args.trace)?;
    if let Some(conf) = &args.ipvs {
        let lines = load_ipvs(&mut switch, conf)?;
        if !lines.is_empty() {
            print_stdout(&(lines.join("\n") + "\n"));
        }
        let checks = switch.externs().director().map_or(0, |d| d.lb.checks.len());
        if checks > 0 && args.ifaces.is_empty() {
            eprintln!(
                "p4lite: {}: {checks} check lines: check lines apply in live mode only (--iface); ignored in this replay",
                conf.display()
            );
        }
    }
    // A bad listing request fails before the replay, not after it.
    for r in &args.ipvs_list {
        if let Err(errors) = p4lite_runtime::ipvs::director::parse_listing(r) {
            for e in &errors {
                eprintln!("p4lite: --ipvs-list \"{r}\": {}", e.message);
            }
            return Err(Failed(status::USAGE));
        }
    }
    if let Some(entries) = &args.entries {
        let lines = apply_entries(&mut switch, entries)?;
        if !lines.is_empty() {
            print_stdout(&(lines.join("\n") + "\n"));
        }
    }
    if !args.ifaces.is_empty() {
        let listings = match (&args.ipvs, args.ipvs_list.is_empty()) {
            (None, true) => Vec::new(),
            (Some(_), true) => vec!["-Ln".to_string()],
            (_, false) => args.ipvs_list.clone(),
        };
        return match super::ctl::run_live(&mut switch, &args.ifaces, args.ctl.as_deref(), args.trace, &listings) {
            code if code == ExitCode::SUCCESS => Ok(()),
            _ => Err(Failed(status::USAGE)),
        };
    }
    let mut inputs = Vec::new();
    for i in &args.inputs {
        inputs.push(Input::file(i.port, &i.path).map_err(|e| {
            eprintln!("p4lite: {e}{}", missing_port_hint(&i.path));
            Failed(status::USAGE)
        })?);
    }
    let outputs: Vec<(u16, PathBuf)> = args.outputs.iter().map(|o| (o.port, o.path.clone())).collect();
    let mut files = PcapFiles::create(&outputs).map_err(|e| {
        eprintln!("p4lite: {e}");
        Failed(status::USAGE)
    })?;
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    // Progress and trace would interleave on a terminal: trace wins.
    let options = ReplayOptions {
        progress: !args.trace && std::io::stderr().is_terminal(),
        trace: if args.trace { Some(&mut lock as &mut dyn Write) } else { None },
    };
    let replayed = replay::replay(&mut switch, inputs, &mut files, options);
    drop(lock);
    // Whatever happened, keep the packets written so far.
    let finished = files.finish();
    let result = match replayed {
        Ok(r) => r,
        Err(replay::ReplayError::Trace(_)) => return Ok(()), // stdout closed: nobody is listening
        Err(replay::ReplayError::Capture(e)) => {
            eprintln!("p4lite: {e}");
            return Err(Failed(status::USAGE));
        }
    };
    if let Err(e) = finished {
        eprintln!("p4lite: {e}");
        return Err(Failed(status::USAGE));
    }
    let names = args.outputs.iter().map(|o| (o.port, o.path.display().to_string())).collect();
    let mut text = result.summary(&names);
    text.push('\n');
    text.push_str(&switch.report());
    if !text.ends_with('\n') {
        text.push('\n');
    }
    if let Some(listing) = ipvs_listing(&switch, &args)? {
        text.push('\n');
        text.push_str(&listing);
    }
    print_stdout(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_file_forms() {
        assert_eq!(parse_port_file("in.pcap"), Ok(PortFile { port: 0, path: "in.pcap".into() }));
        assert_eq!(parse_port_file("3=b.pcap"), Ok(PortFile { port: 3, path: "b.pcap".into() }));
        assert_eq!(parse_port_file("x=b.pcap"), Ok(PortFile { port: 0, path: "x=b.pcap".into() }));
        assert!(parse_port_file("70000=b.pcap").is_err());
        assert_eq!(parse_port_file("511=b.pcap"), Ok(PortFile { port: 511, path: "b.pcap".into() }));
        let e = parse_port_file("600=b.pcap").unwrap_err();
        assert!(e.contains("port `600` is out of range (0..=511"), "{e}");
        assert!(parse_port_file("1=").is_err());
    }

    #[test]
    fn a_missing_file_with_an_equals_sign_hints_at_the_port() {
        assert!(missing_port_hint(Path::new("/nonexistent/x=a.pcap")).contains("--in 1=FILE"));
        assert_eq!(missing_port_hint(Path::new("/nonexistent/a.pcap")), "");
    }
}
