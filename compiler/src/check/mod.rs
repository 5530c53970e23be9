//! The checker: AST → IR. The only stage that builds IR; it reports every
//! error it finds (names, types and widths, lvalues, tables, parser graph).

use crate::ast;
use crate::diag::Diagnostic;
use crate::ir;

/// Checks the prelude and the user's program together and lowers them to IR.
/// Returns the IR when it could be built and every diagnostic found.
pub fn check(prelude: &ast::Program, user: &ast::Program) -> (Option<ir::Program>, Vec<Diagnostic>) {
    let _ = (prelude, user);
    todo!("check::check")
}
