//! The p4lite compiler: pest grammar → spanned AST → checker → IR, and the
//! Cranelift JIT that turns IR into native code.
//!
//! Stages are functions with typed hand-offs:
//! `syntax::parse(&str) -> ast::Program`, `check::check(&ast::Program) -> ir::Program`.
//! Each collects every [`diag::Diagnostic`] it can find instead of stopping at the first.

pub mod abi;
pub mod ast;
pub mod check;
pub mod diag;
pub mod emit;
pub mod flow;
pub mod ir;
pub mod jit;
pub mod rng;
pub mod span;
pub mod syntax;

/// The prelude every program sees: standard metadata, packet_in/out, and the externs.
pub const PRELUDE: &str = include_str!("../../grammar/prelude.p4lite");

use diag::Diagnostic;
use span::Sources;

/// The result of front-end compilation: the IR (when there were no errors)
/// and every diagnostic, warnings included, in source order.
pub struct Compiled {
    pub ir: Option<ir::Program>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses and checks the user's program in `sources` (with the prelude).
pub fn compile(sources: &Sources) -> Compiled {
    let mut diagnostics = Vec::new();
    let prelude = syntax::parse(sources.text(span::SourceId::PRELUDE), span::SourceId::PRELUDE);
    let user = syntax::parse(sources.text(span::SourceId::USER), span::SourceId::USER);
    let (prelude, user) = match (prelude, user) {
        (Ok(p), Ok(u)) => (p, u),
        (p, u) => {
            for r in [p, u] {
                if let Err(mut d) = r {
                    diagnostics.append(&mut d);
                }
            }
            diag::sort(&mut diagnostics);
            return Compiled { ir: None, diagnostics };
        }
    };
    let (ir, mut d) = check::check(&prelude, &user);
    diagnostics.append(&mut d);
    diag::sort(&mut diagnostics);
    let ir = if diagnostics.iter().any(Diagnostic::is_error) { None } else { ir };
    Compiled { ir, diagnostics }
}
