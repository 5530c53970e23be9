//! `p4lite compile FILE --emit ast|ir|dot|clif|asm`: print one stage of a program.

use std::path::PathBuf;
use std::process::ExitCode;

use p4lite_compiler::span::SourceId;
use p4lite_compiler::{emit, syntax};

use super::{load, print_stdout, report, status};

/// Which stage `--emit` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// The parsed syntax tree of the file (without the prelude), printed back
    /// as source with every nested expression parenthesised.
    Ast,
    /// The parsed syntax tree as Rust `{:#?}`, spans included.
    AstDebug,
    /// The checked IR as stable text (what the golden tests hold).
    Ir,
    /// Graphviz of the parser and control-flow graphs (`dot -Tsvg`).
    Dot,
    /// The Cranelift IR the JIT generates for the whole pipeline (before
    /// Cranelift's own optimisations).
    Clif,
    /// The machine code the JIT makes of the pipeline, disassembled.
    Asm,
}

/// Arguments of `p4lite compile`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The program to compile.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Emit::Ir)]
    pub emit: Emit,
}

/// Prints the chosen stage to stdout and diagnostics to stderr; exits 1 if
/// the program has errors (and then prints nothing on stdout).
pub fn run(args: Args) -> ExitCode {
    let Some(sources) = load(&args.file) else {
        return ExitCode::from(status::USAGE);
    };
    match args.emit {
        Emit::Ast | Emit::AstDebug => match syntax::parse(sources.text(SourceId::USER), SourceId::USER) {
            Ok(ast) => {
                let text = if args.emit == Emit::Ast { emit::ast_text(&ast) } else { format!("{ast:#?}\n") };
                print_stdout(&text);
                ExitCode::from(status::OK)
            }
            Err(diags) => {
                report(&diags, &sources);
                ExitCode::from(status::ERRORS)
            }
        },
        Emit::Ir | Emit::Dot | Emit::Clif | Emit::Asm => {
            let compiled = p4lite_compiler::compile(&sources);
            let has_errors = report(&compiled.diagnostics, &sources);
            match compiled.ir {
                Some(ir) if !has_errors => {
                    let text = match args.emit {
                        Emit::Ir => emit::ir_text(&ir),
                        Emit::Dot => emit::dot(&ir),
                        _ => match jit_text(ir, args.emit) {
                            Ok(text) => text,
                            Err(e) => {
                                eprintln!("error: {e}");
                                return ExitCode::from(status::ERRORS);
                            }
                        },
                    };
                    print_stdout(&text);
                    ExitCode::from(status::OK)
                }
                _ => ExitCode::from(status::ERRORS),
            }
        }
    }
}

/// JIT-compiles a checked program (binding its externs as `p4lite run`
/// would) and returns the Cranelift IR text or the disassembly.
fn jit_text(ir: p4lite_compiler::ir::Program, emit: Emit) -> Result<String, p4lite_runtime::switch::SwitchError> {
    use p4lite_runtime::switch::{Backend, Switch, SwitchOptions};
    let mut switch = Switch::new(ir, SwitchOptions { backend: Backend::Jit, trace: false })?;
    match emit {
        Emit::Asm => switch.disassembly().unwrap_or_else(|| Ok(String::new())),
        _ => Ok(switch.clif().unwrap_or_default().to_string()),
    }
}
