//! Builders for statements and blocks.

use pest::iterators::Pair;

use super::{children, grammar_bug, Builder, Rule, MAX_STMT_DEPTH};
use crate::ast::*;

impl Builder {
    /// `block = { "{" ~ statement* ~ "}" }`
    pub(super) fn block(&self, pair: Pair<'_, Rule>) -> Block {
        let span = self.span(&pair);
        let stmts = children(pair).rest().map(|s| self.statement(s)).collect();
        Block { stmts, span }
    }

    /// One statement (the silent `statement` rule's alternatives).
    pub(super) fn statement(&self, pair: Pair<'_, Rule>) -> Stmt {
        let span = self.span(&pair);
        // `if ... else if ...` chains nest without brackets; bound them here.
        let depth = self.stmt_depth.get() + 1;
        if depth > MAX_STMT_DEPTH {
            if !self.depth_reported.replace(true) {
                self.error(span, format!("statements nest more than {MAX_STMT_DEPTH} deep"), "too deep");
            }
            return Stmt { kind: StmtKind::Block(Block { stmts: Vec::new(), span }), span };
        }
        self.stmt_depth.set(depth);
        let kind = match pair.as_rule() {
            Rule::block => StmtKind::Block(self.block(pair)),
            Rule::if_stmt => self.if_stmt(pair),
            Rule::switch_stmt => self.switch_stmt(pair),
            Rule::exit_stmt => StmtKind::Exit,
            Rule::return_stmt => StmtKind::Return,
            Rule::const_decl => StmtKind::Const(self.const_decl(pair)),
            Rule::var_decl => StmtKind::Var(self.var_decl(pair)),
            Rule::assign_stmt => self.assign_stmt(pair),
            Rule::bad_compound_assign => self.bad_compound_assign(pair),
            Rule::expr_stmt => self.expr_stmt(pair),
            other => grammar_bug(other, "an unexpected statement"),
        };
        self.stmt_depth.set(depth - 1);
        Stmt { kind, span }
    }

    /// `if_stmt = { kw_if ~ "(" ~ expr ~ ")" ~ branch ~ (kw_else ~ (if_stmt | branch))? }`
    fn if_stmt(&self, pair: Pair<'_, Rule>) -> StmtKind {
        let mut n = children(pair);
        let cond = self.expr(n.next());
        let then = self.branch(n.next());
        let els = n.rest().next().map(|e| self.branch(e));
        StmtKind::If { cond, then, els }
    }

    /// `branch = _{ block | bad_unbraced }`, or the `if_stmt` of an `else if`,
    /// which becomes the only statement of the else block.
    fn branch(&self, pair: Pair<'_, Rule>) -> Block {
        match pair.as_rule() {
            Rule::block => self.block(pair),
            Rule::if_stmt => {
                let stmt = self.statement(pair);
                Block { span: stmt.span, stmts: vec![stmt] }
            }
            Rule::bad_unbraced => {
                let [inner] = children(pair).take();
                let text = self.text(&inner).to_string();
                let stmt = self.statement(inner);
                self.report(
                    crate::diag::Diagnostic::error(
                        super::E_SYNTAX,
                        stmt.span,
                        "the branches of `if` and `else` need braces",
                        "not in a block",
                    )
                    .with_help(format!("write `{{ {text} }}`")),
                );
                Block { span: stmt.span, stmts: vec![stmt] }
            }
            other => grammar_bug(other, "an unexpected branch"),
        }
    }

    /// `switch_stmt = { kw_switch ~ "(" ~ expr ~ ")" ~ "{" ~ switch_case* ~ "}" }`
    fn switch_stmt(&self, pair: Pair<'_, Rule>) -> StmtKind {
        let mut n = children(pair);
        let expr = self.expr(n.next());
        let cases = n.rest().map(|c| self.switch_case(c)).collect();
        StmtKind::Switch { expr, cases }
    }

    /// `switch_case = { (kw_default | ident) ~ ":" ~ block? }`; `default` leaves no child.
    fn switch_case(&self, pair: Pair<'_, Rule>) -> SwitchCase {
        let span = self.span(&pair);
        let mut n = children(pair);
        let label = n.next_if(Rule::ident).map(|l| self.ident(l));
        let body = n.next_if(Rule::block).map(|b| self.block(b));
        SwitchCase { label, body, span }
    }

    /// `assign_stmt = { expr ~ "=" ~ expr ~ ";" }`
    fn assign_stmt(&self, pair: Pair<'_, Rule>) -> StmtKind {
        let [lhs, rhs] = children(pair).take();
        StmtKind::Assign { lhs: self.expr(lhs), rhs: self.expr(rhs) }
    }

    /// `expr_stmt = { expr ~ ";" }`. Only calls are statements; the checker
    /// reports any other expression (E0306), along with the other checks.
    fn expr_stmt(&self, pair: Pair<'_, Rule>) -> StmtKind {
        let [expr] = children(pair).take();
        StmtKind::Call(self.expr(expr))
    }

    /// `bad_compound_assign = { postfix_expr ~ (compound_op ~ expr | incdec_op) ~ ";" }`:
    /// always an error that spells out the assignment to write instead.
    fn bad_compound_assign(&self, pair: Pair<'_, Rule>) -> StmtKind {
        let mut n = children(pair);
        let lhs = n.next();
        let op = n.next();
        let target = self.text(&lhs).to_string();
        let lhs = self.postfix_expr(lhs);
        let (written, instead) = match op.as_rule() {
            Rule::incdec_op => {
                let sign = &op.as_str()[..1];
                (op.as_str().to_string(), format!("{target} = {target} {sign} 1;"))
            }
            _ => {
                let binop = op.as_str().trim_end_matches('=');
                let rhs = n.rest().next().map(|r| self.text(&r).to_string()).unwrap_or_default();
                (op.as_str().to_string(), format!("{target} = {target} {binop} {rhs};"))
            }
        };
        let span = self.span(&op);
        self.report(
            crate::diag::Diagnostic::error(
                super::E_SYNTAX,
                span,
                format!("p4lite has no `{written}` operator"),
                "not supported",
            )
            .with_help(format!("write `{instead}`")),
        );
        StmtKind::Assign { rhs: lhs.clone(), lhs }
    }
}
