//! The `p4lite` command: check and compile p4lite programs (later also run
//! them on pcaps, drive the control plane and benchmark the switch).
//!
//! Each subcommand lives in its own module under `cli/`; this file only
//! parses the command line. Exit status: 0 success, 1 errors in a program,
//! 2 bad usage or an unreadable file (clap's own usage errors exit 2 too).

mod cli;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    cli::Cli::parse().run()
}
