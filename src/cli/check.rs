//! `p4lite check FILE...`: compile each program and report its diagnostics,
//! including its const entries that the switch's tables would refuse.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{entry_diagnostics, load, report, status};

/// Arguments of `p4lite check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Programs to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Checks every file, even after one fails, so one run reports everything.
/// Exits 2 if a file could not be read, else 1 if any program has errors.
pub fn run(args: Args) -> ExitCode {
    let mut worst = status::OK;
    for path in &args.files {
        let Some(sources) = load(path) else {
            worst = worst.max(status::USAGE);
            continue;
        };
        let compiled = p4lite_compiler::compile(&sources);
        let mut diags = compiled.diagnostics;
        if let Some(program) = &compiled.ir {
            diags.extend(entry_diagnostics(program));
        }
        if report(&diags, &sources) {
            worst = worst.max(status::ERRORS);
        }
    }
    ExitCode::from(worst)
}
