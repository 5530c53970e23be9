//! Text forms of the IR: the stable `--emit ir` listing that golden tests
//! compare, and Graphviz `--emit dot` of the parser and control graphs.

use crate::ir;

/// The stable text form of a program's IR.
pub fn ir_text(program: &ir::Program) -> String {
    let _ = program;
    todo!("emit::ir_text")
}

/// Graphviz of the parser state graph and of each control's flow.
pub fn dot(program: &ir::Program) -> String {
    let _ = program;
    todo!("emit::dot")
}
