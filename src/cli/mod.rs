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

    #[test]
    fn unreadable_file_is_reported() {
        assert!(load(Path::new("/nonexistent/p4lite/x.p4")).is_none());
    }
}
