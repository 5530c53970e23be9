//! Command-line interface: the clap definitions and what the subcommands share
//! (reading a program, printing diagnostics, exit statuses).
//!
//! A new subcommand is a module here with an `Args` struct (clap `Args`
//! derive) and a `run(Args) -> ExitCode`, plus one variant in [`Command`].

mod check;
mod compile;
mod ctl;
mod run;
mod test;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use p4lite_compiler::diag::{self, Diagnostic};
use p4lite_compiler::span::Sources;

/// P4-style packet pipeline compiler and software switch.
#[derive(clap::Parser, Debug)]
#[command(name = "p4lite", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Check programs and report every error and warning.
    Check(check::Args),
    /// Compile a program and print one stage of it (AST, IR or Graphviz).
    Compile(compile::Args),
    /// Replay pcap/pcapng captures through a program and write what comes out,
    /// or run it on network interfaces (`--iface`).
    Run(run::Args),
    /// Send control commands to a running switch (`p4lite run --ctl SOCKET`).
    Ctl(ctl::Args),
    /// Run the golden test cases (pcap and STF) and compare with expectations.
    Test(test::Args),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Check(args) => check::run(args),
            Command::Compile(args) => compile::run(args),
            Command::Run(args) => run::run(args),
            Command::Ctl(args) => ctl::run(args),
            Command::Test(args) => test::run(args),
        }
    }
}

/// Exit statuses shared by all subcommands.
pub mod status {
    /// Everything went well (warnings allowed).
    pub const OK: u8 = 0;
    /// A program has errors.
    pub const ERRORS: u8 = 1;
    /// Bad usage or an unreadable input file (clap uses 2 for usage errors too).
    pub const USAGE: u8 = 2;
}

/// Reads a program file into [`Sources`] named by the path as given, or
/// prints why it cannot and returns `None` (the caller exits with
/// [`status::USAGE`]).
pub fn load(path: &Path) -> Option<Sources> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(Sources::new(path.display().to_string(), text)),
        Err(e) => {
            eprintln!("p4lite: cannot read {}: {e}", path.display());
            None
        }
    }
}

/// Whether diagnostics on stderr get colours: only on a terminal, and never
/// when `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
pub fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints diagnostics to stderr; returns true when any is an error.
pub fn report(diags: &[Diagnostic], sources: &Sources) -> bool {
    if !diags.is_empty() {
        let text = diag::render(diags, sources, stderr_color());
        let mut err = std::io::stderr().lock();
        // Nothing useful can be done if stderr is gone.
        let _ = err.write_all(text.as_bytes());
    }
    diags.iter().any(Diagnostic::is_error)
}

/// The diagnostics of the program's const entries that its tables would
/// refuse when the switch installs them (the runtime's own check, so the
/// two cannot disagree): E0413 at the entry, with a note at the first of
/// two entries with the same key.
pub fn entry_diagnostics(program: &p4lite_compiler::ir::Program) -> Vec<Diagnostic> {
    use p4lite_runtime::tables::{TableError, Tables};
    Tables::refused_entries(program)
        .into_iter()
        .filter_map(|r| {
            let entries = &program.tables.get(r.table)?.entries;
            let span = entries.get(r.entry)?.span;
            let d = match &r.error {
                TableError::Duplicate { table, handle } => {
                    let d = Diagnostic::error(
                        "E0413",
                        span,
                        format!("this const entry of `{table}` has the same match key as an earlier one"),
                        "same key",
                    );
                    match entries.get(handle.0 as usize) {
                        Some(first) => d.with_note(first.span, "the earlier entry"),
                        None => d,
                    }
                }
                TableError::NoKey { table } => Diagnostic::error(
                    "E0413",
                    span,
                    format!("table `{table}` has no key, so no entry can match"),
                    "an entry of a table without a key",
                )
                .with_help("give the table a key, or use `default_action`"),
                other => Diagnostic::error("E0413", span, other.to_string(), "refused by the table"),
            };
            Some(d)
        })
        .collect()
}

/// Writes `text` to stdout. A closed pipe (`p4lite compile x | head`) is not
/// an error worth a panic, so write errors are ignored.
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_subcommands() {
        let cli = Cli::try_parse_from(["p4lite", "check", "a.p4", "b.p4"]).unwrap();
        assert!(matches!(cli.command, Command::Check(ref a) if a.files.len() == 2));
        let cli = Cli::try_parse_from(["p4lite", "compile", "a.p4", "--emit", "dot"]).unwrap();
        assert!(matches!(cli.command, Command::Compile(ref a) if a.emit == compile::Emit::Dot));
        let cli = Cli::try_parse_from(["p4lite", "compile", "a.p4"]).unwrap();
        assert!(matches!(cli.command, Command::Compile(ref a) if a.emit == compile::Emit::Ir));
    }

    #[test]
    fn usage_errors_exit_2() {
        for argv in
            [&["p4lite", "check"][..], &["p4lite", "compile", "a.p4", "--emit", "elf"], &["p4lite", "frobnicate"]]
        {
            let e = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(e.exit_code(), i32::from(status::USAGE), "{argv:?}");
        }
    }

    /// Const entries the switch's tables would refuse are diagnostics of
    /// `check` (and `run`), at the entry: the same key twice in an exact
    /// table (noting the first), entries on a table without a key. A ternary
    /// table's same keys are not duplicates: source order ranks them.
    #[test]
    fn refused_const_entries_are_diagnostics_at_the_entry() {
        let program = |table: &str| {
            let src = format!(
                "header h_t {{ bit<8> a; }}
                struct hs {{ h_t h; }}
                struct ms {{ }}
                parser P(packet_in pkt, out hs hdr, inout ms meta, inout standard_metadata_t std) {{
                    state start {{ pkt.extract(hdr.h); transition accept; }}
                }}
                control I(inout hs hdr, inout ms meta, inout standard_metadata_t std) {{
                    action fwd(bit<9> p) {{ std.egress_spec = p; }}
                    {table}
                    apply {{ t.apply(); }}
                }}
                control D(packet_out pkt, in hs hdr) {{ apply {{ pkt.emit(hdr.h); }} }}
                Pipeline(P(), I(), D()) main;"
            );
            let sources = Sources::new("t.p4lite", src.clone());
            let compiled = p4lite_compiler::compile(&sources);
            assert!(compiled.diagnostics.is_empty(), "{table}");
            (src, compiled.ir.expect("compiles"))
        };
        let (src, p) = program("table t { key = { hdr.h.a : exact; } actions = { fwd; } const entries = { 1 : fwd(1); 2 : fwd(2); 1 : fwd(3); } }");
        let d = entry_diagnostics(&p);
        assert_eq!(d.len(), 1, "{d:?}");
        let text = diag::render(&d, &Sources::new("t.p4lite", src.clone()), false);
        assert!(text.contains("E0413") && text.contains("same match key"), "{text}");
        let third = src.find("1 : fwd(3)").expect("third entry");
        assert_eq!(d[0].span.lo as usize, third, "at the repeated entry");
        let (_, p) = program("table t { actions = { fwd; } const entries = { _ : fwd(1); } }");
        let d = entry_diagnostics(&p);
        assert_eq!(d.len(), 1);
        assert!(d[0].message.contains("has no key"), "{:?}", d[0].message);
        let (_, p) = program("table t { key = { hdr.h.a : ternary; } actions = { fwd; } const entries = { 1 &&& 0xff : fwd(1); 1 &&& 0xff : fwd(2); } }");
        assert!(entry_diagnostics(&p).is_empty());
        let (_, p) = program(
            "table t { key = { hdr.h.a : exact; } actions = { fwd; } const entries = { 1 : fwd(1); 2 : fwd(2); } }",
        );
        assert!(entry_diagnostics(&p).is_empty());
    }

    #[test]
    fn unreadable_file_is_reported() {
        assert!(load(Path::new("/nonexistent/p4lite/x.p4")).is_none());
    }
}
