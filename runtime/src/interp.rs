//! The reference interpreter: runs a checked [`ir::Program`] on one packet.
//!
//! It is the oracle the JIT is tested against, so it is written to be
//! obviously right rather than fast, and independently of the JIT: it walks
//! the IR directly, evaluating expressions recursively in `u128` masked to
//! each expression's width exactly as the [`ir`] module docs define.
//!
//! It keeps every slot in the same PHV block the compiled code uses
//! (`abi::Layout`, `abi::read_value`/`write_value`), and reaches tables and
//! externs through the same `Runtime` services the JIT's host functions
//! call, so table lookups, extern state and traces are shared code.
//!
//! Semantics fixed here (and expected of the JIT):
//! - The parser starts at `start`; each state runs its statements, then
//!   evaluates its select expressions once and takes the first arm whose keys
//!   all match; no arm matching is a reject. `extract`, `advance` and
//!   `lookahead` past the end of the packet stop with [`Verdict::Truncated`],
//!   `reject` (or no matching arm) with [`Verdict::Reject`]; both record the
//!   state's node index in `reject_state`. `advance(n)` skips `n / 8` bytes.
//!   `extract(stack.next)` with every element taken stops with
//!   [`Verdict::StackOutOfBounds`] (recording the state likewise).
//! - A parser visits at most [`MAX_PARSER_STEPS`] states: a transition to
//!   another state out of the last one rejects in that state, so a loop that
//!   does not consume (e.g. `advance(0)`) cannot hang (the abi's rule).
//! - `&&`, `||` and `?:` evaluate only the operands they need (it matters
//!   only for a `lookahead` that would run past the end).
//! - A table apply writes its `hit` and `action_run` temporaries right after
//!   the lookup, before the action runs.
//! - An extern call writes its flattened arguments to the argument array
//!   (`out` entries get the slot's current value; the runtime zeroes them),
//!   calls the runtime, then copies `out`/`inout` entries back in argument
//!   order and finally the return entry to `ret`.
//! - `exit` ends the current control, also from inside an action; the next
//!   control (or the deparser) runs next.
//! - The deparser writes the valid emitted headers, in order, immediately in
//!   front of the unparsed payload (`buf[head + cursor ..]`), into the
//!   headroom when the packet grew, and sets `head`, `len` and `cursor`
//!   (to the emitted length).
//!
//! Nothing here can panic or read outside the packet on any packet bytes:
//! every packet access is bounds-checked against `len` and the buffer.

use p4lite_compiler::abi::{self, Layout, Verdict};
use p4lite_compiler::ir::{
    self, BinOp, Body, ExprId, ExprKind, ExternArg, KeyMatch, LValue, Next, Program, SlotId, Stmt, StmtKind,
    Terminator, Ty, UnOp,
};

use crate::host::{Core, PacketBuf, Runtime};
use p4lite_compiler::abi::{TraceEvent, HIT_BIT, MAX_PARSER_STEPS};

/// Why evaluation stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// A packet access ran past the end of the packet.
    Truncated,
    /// A parser operation got an argument it cannot take (P4_16's
    /// `error.ParserInvalidArgument`): `advance` by bits that are not whole
    /// bytes. The packet is rejected.
    InvalidArgument,
    /// `extract` of a header stack's `next` when every element was already
    /// extracted (P4_16's `error.StackOutOfBounds`).
    StackOutOfBounds,
    /// A `verify` whose condition was false (its error is in
    /// `PacketBuf::reject_error`). The packet is rejected.
    Verify,
}

impl Fault {
    /// The verdict of a packet whose parser stopped with this fault.
    fn verdict(self) -> Verdict {
        match self {
            Fault::Truncated => Verdict::Truncated,
            Fault::InvalidArgument | Fault::Verify => Verdict::Reject,
            Fault::StackOutOfBounds => Verdict::StackOutOfBounds,
        }
    }
}

/// How a statement or body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Go on with the next statement.
    Continue,
    /// `exit`: leave the current control.
    Exit,
}

/// Runs the whole pipeline (parser, controls, deparser) on the packet in
/// `pkt`, with `phv` zeroed and the standard metadata set by the caller.
/// `phv` must be a block of at least `core.layout.phv_size` bytes and `pkt`
/// must have at least `core.layout.max_emit_bytes` of headroom.
pub(crate) fn run(core: &mut Core, phv: &mut [u8], pkt: &mut PacketBuf) -> Verdict {
    let Core { program, layout, rt } = core;
    let select = std::mem::take(&mut rt.select);
    let mut it = Interp { program, layout, rt, phv, pkt, select };
    let verdict = it.pipeline();
    it.rt.select = std::mem::take(&mut it.select);
    verdict
}

/// One packet's interpretation.
struct Interp<'a> {
    program: &'a Program,
    layout: &'a Layout,
    rt: &'a mut Runtime,
    phv: &'a mut [u8],
    pkt: &'a mut PacketBuf,
    /// Select values of the current parser state (reused storage).
    select: Vec<u128>,
}

impl Interp<'_> {
    fn pipeline(&mut self) -> Verdict {
        if let Some(v) = self.parser() {
            return v;
        }
        let program = self.program;
        for (i, control) in program.controls.iter().enumerate() {
            if self.rt.trace.on {
                self.rt.trace.event(self.program, TraceEvent::Control as u32, i as u32, 0);
            }
            // `exit` ends this control only; a fault cannot happen outside
            // the parser (lookahead is parser-only) but would end the pipeline.
            if let Err(fault) = self.body(&control.body) {
                return fault.verdict();
            }
        }
        self.deparser()
    }

    // ---- the parser ----

    /// Walks the parser graph; `Some(verdict)` when the packet is not accepted.
    fn parser(&mut self) -> Option<Verdict> {
        let program = self.program;
        let graph = &program.parser.graph;
        let mut node = program.parser.start;
        for _ in 0..MAX_PARSER_STEPS {
            self.pkt.reject_state = node.index() as u32;
            let Some(state) = graph.node_weight(node) else {
                return Some(Verdict::Reject);
            };
            if self.rt.trace.on {
                self.rt.trace.event(self.program, TraceEvent::State as u32, node.index() as u32, 0);
            }
            for stmt in &state.stmts {
                if let Err(fault) = self.stmt(stmt) {
                    return Some(fault.verdict());
                }
            }
            self.select.clear();
            for e in &state.select {
                match self.eval(*e) {
                    Ok(v) => self.select.push(v),
                    Err(fault) => return Some(fault.verdict()),
                }
            }
            let next = state.arms.iter().find(|arm| self.arm_matches(&state.select, &arm.keys)).map(|arm| arm.next);
            match next {
                Some(Next::State(n)) => node = n,
                Some(Next::Accept) => return None,
                Some(Next::Reject) | None => return Some(Verdict::Reject),
            }
        }
        Some(Verdict::Reject)
    }

    /// Whether every key of a select arm matches the current select values.
    fn arm_matches(&self, exprs: &[ExprId], keys: &[KeyMatch]) -> bool {
        keys.iter().enumerate().all(|(i, k)| {
            let width = exprs.get(i).map_or(128, |e| self.program.expr(*e).ty.width());
            key_matches(*k, self.select.get(i).copied().unwrap_or(0), width)
        })
    }

    // ---- control bodies ----

    /// Runs a body from its entry until `Return` or `Exit`.
    fn body(&mut self, body: &Body) -> Result<Flow, Fault> {
        let mut node = body.entry;
        loop {
            // A block the graph does not have cannot come from the checker; end the body.
            let Some(block) = body.graph.node_weight(node) else {
                return Ok(Flow::Continue);
            };
            for stmt in &block.stmts {
                if self.stmt(stmt)? == Flow::Exit {
                    return Ok(Flow::Exit);
                }
            }
            node = match &block.term {
                Terminator::Goto(n) => *n,
                Terminator::Branch { cond, then, els } => {
                    let taken = self.eval(*cond)? != 0;
                    if self.rt.trace.on {
                        self.rt.trace.event(self.program, TraceEvent::Branch as u32, cond.0, taken as u32);
                    }
                    if taken {
                        *then
                    } else {
                        *els
                    }
                }
                Terminator::Switch { value, cases, default } => {
                    let v = self.read(*value);
                    cases.iter().find(|(a, _)| u128::from(a.0) == v).map_or(*default, |(_, n)| *n)
                }
                Terminator::Return => return Ok(Flow::Continue),
                Terminator::Exit => return Ok(Flow::Exit),
            };
        }
    }

    /// Runs one statement.
    fn stmt(&mut self, stmt: &Stmt) -> Result<Flow, Fault> {
        match &stmt.kind {
            StmtKind::Assign { dst, src } => {
                let v = self.eval(*src)?;
                self.assign(*dst, v);
            }
            StmtKind::SetValid { header, valid } => {
                let slot = self.program.header(*header).valid;
                self.write(slot, u128::from(*valid));
            }
            StmtKind::Extract { header } => self.extract(*header)?,
            StmtKind::ExtractNext { elems, next } => {
                let i = self.read(*next);
                let h = usize::try_from(i).ok().and_then(|i| elems.get(i)).ok_or(Fault::StackOutOfBounds)?;
                self.extract(*h)?;
                self.write(*next, i + 1);
            }
            StmtKind::Verify { cond, error } => {
                if self.eval(*cond)? == 0 {
                    self.pkt.reject_error = error + 1;
                    return Err(Fault::Verify);
                }
            }
            StmtKind::Advance { bits } => {
                let bits = self.eval(*bits)?;
                if bits % 8 != 0 {
                    return Err(Fault::InvalidArgument);
                }
                let bytes = bits / 8;
                let end = (self.pkt.cursor as u128).saturating_add(bytes);
                if end > self.pkt.len as u128 {
                    return Err(Fault::Truncated);
                }
                self.pkt.cursor = end as usize;
            }
            StmtKind::CallAction { action, args } => {
                let program = self.program;
                let a = program.action(*action);
                // Binding each parameter as soon as its argument is evaluated
                // is the same as evaluating all first: an argument cannot
                // read the callee's own parameters (actions do not recurse).
                for (slot, e) in a.params.iter().zip(args) {
                    let v = self.eval(*e)?;
                    self.write(*slot, v);
                }
                if self.rt.trace.on {
                    self.rt.trace.event(self.program, TraceEvent::Action as u32, action.0, 0);
                }
                return self.body(&a.body);
            }
            StmtKind::Apply { table, hit, action_run } => {
                let (program, layout) = (self.program, self.layout);
                let t = program.table(*table);
                let offsets = layout.table_keys.get(table.index()).map_or(&[][..], |o| o.as_slice());
                for (k, off) in t.keys.iter().zip(offsets) {
                    let v = self.eval(k.expr)?;
                    abi::write_value(self.phv, *off, Ty::Bit(k.width), v);
                }
                let r = self.rt.table_apply(self.program, self.layout, self.phv, table.0);
                let action = r & !HIT_BIT;
                if let Some(s) = hit {
                    self.write(*s, u128::from(r & HIT_BIT != 0));
                }
                if let Some(s) = action_run {
                    self.write(*s, u128::from(action));
                }
                if let Some(a) = program.actions.get(action as usize) {
                    return self.body(&a.body);
                }
            }
            StmtKind::Extern { call, ret } => self.extern_call(call, *ret)?,
        }
        Ok(Flow::Continue)
    }

    /// Writes `v` to a slot or a slice of it.
    fn assign(&mut self, dst: LValue, v: u128) {
        match dst.slice {
            None => self.write(dst.slot, v),
            Some((hi, lo)) => {
                let width = hi.saturating_sub(lo) + 1;
                let field = Ty::Bit(width).mask().checked_shl(u32::from(lo)).unwrap_or(0);
                let old = self.read(dst.slot);
                let new = (old & !field) | (v.checked_shl(u32::from(lo)).unwrap_or(0) & field);
                self.write(dst.slot, new);
            }
        }
    }

    /// `pkt.extract(h)`: reads the header's bytes at the cursor into its fields.
    fn extract(&mut self, header: ir::HeaderId) -> Result<(), Fault> {
        let program = self.program;
        let h = program.header(header);
        let n = h.byte_len as usize;
        if self.pkt.cursor + n > self.pkt.len {
            return Err(Fault::Truncated);
        }
        let start = self.pkt.head + self.pkt.cursor;
        let bytes = self.pkt.buf.get(start..start + n).ok_or(Fault::Truncated)?;
        let fields = &program.header_types[h.ty.index()].fields;
        let mut off = 0usize;
        for ((_, width), slot) in fields.iter().zip(&h.fields) {
            let v = read_bits(bytes, off, *width);
            abi::write_value(self.phv, self.layout.slot(*slot), program.slot(*slot).ty, v);
            off += usize::from(*width);
        }
        self.write(h.valid, 1);
        self.pkt.cursor += n;
        if self.rt.trace.on {
            self.rt.trace.event(self.program, TraceEvent::Extract as u32, header.0, 0);
        }
        Ok(())
    }

    /// An extern call: flatten, call the runtime, copy back.
    fn extern_call(&mut self, call: &ir::ExternCall, ret: Option<SlotId>) -> Result<(), Fault> {
        self.set_arg(0, 0);
        let mut i = 1;
        for arg in &call.args {
            match arg {
                ExternArg::In(e) => {
                    let v = self.eval(*e)?;
                    self.set_arg(i, v);
                    i += 1;
                }
                ExternArg::Out(s) | ExternArg::InOut(s) => {
                    self.set_arg(i, self.read(*s));
                    i += 1;
                }
                ExternArg::List(items) => {
                    for e in items {
                        let v = self.eval(*e)?;
                        self.set_arg(i, v);
                        i += 1;
                    }
                }
            }
        }
        // The payload as it arrived: the deparser has not run yet.
        let (head, len) = (self.pkt.head, self.pkt.len);
        let payload = self.pkt.buf.get(head + self.pkt.cursor.min(len)..head + len).unwrap_or(&[]);
        self.rt.extern_call(self.program, self.layout, self.phv, call.site.0, payload);
        let mut i = 1;
        for arg in &call.args {
            match arg {
                ExternArg::Out(s) | ExternArg::InOut(s) => {
                    let v = self.arg(i);
                    self.write(*s, v);
                    i += 1;
                }
                ExternArg::In(_) => i += 1,
                ExternArg::List(items) => i += items.len(),
            }
        }
        if let Some(s) = ret {
            let v = self.arg(0);
            self.write(s, v);
        }
        Ok(())
    }

    /// Entry `i` of the extern argument array (0 outside it).
    fn arg(&self, i: usize) -> u128 {
        if i >= self.layout.extern_args_len as usize {
            return 0;
        }
        abi::read_value(self.phv, self.layout.extern_args + 16 * i as u32, Ty::Bit(128))
    }

    /// Sets entry `i` of the extern argument array (ignored outside it).
    fn set_arg(&mut self, i: usize, v: u128) {
        if i < self.layout.extern_args_len as usize {
            abi::write_value(self.phv, self.layout.extern_args + 16 * i as u32, Ty::Bit(128), v);
        }
    }

    // ---- the deparser ----

    /// Writes the valid emitted headers in front of the payload.
    fn deparser(&mut self) -> Verdict {
        let program = self.program;
        let valid = |it: &Self, h: ir::HeaderId| it.read(program.header(h).valid) != 0;
        let total: usize = program
            .deparser
            .emits
            .iter()
            .filter(|h| valid(self, **h))
            .map(|h| program.header(*h).byte_len as usize)
            .sum();
        let payload = self.pkt.head + self.pkt.cursor.min(self.pkt.len);
        // The switch keeps `max_emit_bytes` of headroom, so this cannot fail;
        // a caller that broke that contract gets a reject, not a panic.
        let Some(mut at) = payload.checked_sub(total) else {
            return Verdict::Reject;
        };
        let new_head = at;
        for &h in &program.deparser.emits {
            if !valid(self, h) {
                continue;
            }
            let hdr = program.header(h);
            let n = hdr.byte_len as usize;
            let fields = &program.header_types[hdr.ty.index()].fields;
            let Some(dst) = self.pkt.buf.get_mut(at..at + n) else {
                return Verdict::Reject;
            };
            let mut off = 0usize;
            for ((_, width), slot) in fields.iter().zip(&hdr.fields) {
                let v = abi::read_value(self.phv, self.layout.slot(*slot), program.slot(*slot).ty);
                write_bits(dst, off, *width, v);
                off += usize::from(*width);
            }
            at += n;
            if self.rt.trace.on {
                self.rt.trace.event(program, TraceEvent::Emit as u32, h.0, 0);
            }
        }
        self.pkt.len = self.pkt.len - self.pkt.cursor.min(self.pkt.len) + total;
        self.pkt.head = new_head;
        self.pkt.cursor = total;
        Verdict::Forward
    }

    // ---- expressions ----

    fn read(&self, slot: SlotId) -> u128 {
        abi::read_value(self.phv, self.layout.slot(slot), self.program.slot(slot).ty)
    }

    fn write(&mut self, slot: SlotId, v: u128) {
        abi::write_value(self.phv, self.layout.slot(slot), self.program.slot(slot).ty, v);
    }

    /// Evaluates an expression to its value, masked to its type.
    fn eval(&self, e: ExprId) -> Result<u128, Fault> {
        let x = self.program.expr(e);
        let mask = x.ty.mask();
        let v = match x.kind {
            ExprKind::Const(v) => v,
            ExprKind::Slot(s) => self.read(s),
            ExprKind::Unary(op, a) => {
                let a = self.eval(a)?;
                match op {
                    UnOp::Neg => a.wrapping_neg(),
                    UnOp::BitNot => !a,
                    UnOp::Not => u128::from(a == 0),
                }
            }
            ExprKind::Binary(BinOp::And, a, b) => u128::from(self.eval(a)? != 0 && self.eval(b)? != 0),
            ExprKind::Binary(BinOp::Or, a, b) => u128::from(self.eval(a)? != 0 || self.eval(b)? != 0),
            ExprKind::Binary(op, a, b) => {
                let (va, vb) = (self.eval(a)?, self.eval(b)?);
                binary(op, va, vb, x.ty.width(), self.program.expr(b).ty.width())
            }
            ExprKind::Slice { base, hi, lo } => {
                let v = self.eval(base)?;
                v.checked_shr(u32::from(lo)).unwrap_or(0) & Ty::Bit(hi.saturating_sub(lo) + 1).mask()
            }
            // Zero-extend or truncate between widths; bool <-> bit<1> keeps the bit.
            ExprKind::Cast(a) => self.eval(a)?,
            ExprKind::Cond(c, a, b) => {
                if self.eval(c)? != 0 {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            ExprKind::Lookahead => self.lookahead(x.ty.width())?,
        };
        Ok(v & mask)
    }

    /// The next `width` bits at the cursor, without consuming them.
    fn lookahead(&self, width: u16) -> Result<u128, Fault> {
        let n = usize::from(width).div_ceil(8);
        if self.pkt.cursor + n > self.pkt.len {
            return Err(Fault::Truncated);
        }
        let start = self.pkt.head + self.pkt.cursor;
        let bytes = self.pkt.buf.get(start..start + n).ok_or(Fault::Truncated)?;
        Ok(read_bits(bytes, 0, width))
    }
}

/// A binary operator on values already masked to their widths; `width` is
/// the result's (for arithmetic, the operands'), `right` the right operand's.
/// The caller masks the result.
fn binary(op: BinOp, a: u128, b: u128, width: u16, right: u16) -> u128 {
    match op {
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::SatAdd => a.checked_add(b).filter(|s| *s <= Ty::Bit(width).mask()).unwrap_or(Ty::Bit(width).mask()),
        BinOp::SatSub => a.saturating_sub(b),
        BinOp::Shl if b >= u128::from(width) => 0,
        BinOp::Shl => a << b,
        BinOp::Shr if b >= u128::from(width) => 0,
        BinOp::Shr => a >> b,
        BinOp::BitAnd => a & b,
        BinOp::BitXor => a ^ b,
        BinOp::BitOr => a | b,
        BinOp::Concat => a.checked_shl(u32::from(right)).unwrap_or(0) | b,
        BinOp::Eq => u128::from(a == b),
        BinOp::Ne => u128::from(a != b),
        BinOp::Lt => u128::from(a < b),
        BinOp::Le => u128::from(a <= b),
        BinOp::Gt => u128::from(a > b),
        BinOp::Ge => u128::from(a >= b),
        BinOp::And => u128::from(a != 0 && b != 0),
        BinOp::Or => u128::from(a != 0 || b != 0),
    }
}

/// Whether `key` (of `width` bits) matches a select keyset (see [`KeyMatch`]).
pub(crate) fn key_matches(k: KeyMatch, key: u128, width: u16) -> bool {
    match k {
        KeyMatch::Exact(v) => key == v,
        KeyMatch::Mask { value, mask } => key & mask == value & mask,
        KeyMatch::Range { lo, hi } => lo <= key && key <= hi,
        KeyMatch::Prefix { value, len } => {
            let full = Ty::Bit(width).mask();
            let top = full ^ full.checked_shr(u32::from(len.min(width))).unwrap_or(0);
            key & top == value & top
        }
        KeyMatch::Any => true,
    }
}

/// Reads `width` bits starting `off` bits into `bytes`, most significant bit
/// first (network order). Bits past the end of `bytes` read as 0.
pub(crate) fn read_bits(bytes: &[u8], off: usize, width: u16) -> u128 {
    let mut v: u128 = 0;
    let mut bit = off;
    let mut rem = usize::from(width.min(128));
    while rem > 0 {
        let in_byte = bit % 8;
        let take = (8 - in_byte).min(rem);
        let byte = bytes.get(bit / 8).copied().unwrap_or(0);
        let chunk = (byte >> (8 - in_byte - take)) & (((1u16 << take) - 1) as u8);
        v = (v << take) | u128::from(chunk);
        bit += take;
        rem -= take;
    }
    v
}

/// Writes the low `width` bits of `v` starting `off` bits into `bytes`, most
/// significant bit first, leaving the other bits alone. Bits past the end are dropped.
pub(crate) fn write_bits(bytes: &mut [u8], off: usize, width: u16, v: u128) {
    let mut bit = off;
    let mut rem = usize::from(width.min(128));
    while rem > 0 {
        let in_byte = bit % 8;
        let take = (8 - in_byte).min(rem);
        let shift = 8 - in_byte - take;
        let mask = (((1u16 << take) - 1) as u8) << shift;
        let chunk = ((v >> (rem - take)) as u8) & (((1u16 << take) - 1) as u8);
        if let Some(b) = bytes.get_mut(bit / 8) {
            *b = (*b & !mask) | (chunk << shift);
        }
        bit += take;
        rem -= take;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::tests::{compile, example, interp, run, syn};
    use crate::switch::{DropReason, Outcome};

    #[test]
    fn bits_read_and_write_big_endian_at_any_offset() {
        let b = [0b1010_1100, 0x5A, 0xFF, 0x01];
        assert_eq!(read_bits(&b, 0, 4), 0b1010);
        assert_eq!(read_bits(&b, 4, 4), 0b1100);
        assert_eq!(read_bits(&b, 1, 3), 0b010);
        assert_eq!(read_bits(&b, 3, 13), 0b0_1100_0101_1010);
        assert_eq!(read_bits(&b, 0, 32), 0xAC5A_FF01);
        assert_eq!(read_bits(&b, 28, 8), 0x10, "bits past the end read as 0");
        let mut out = [0u8; 4];
        write_bits(&mut out, 0, 4, 0b1010);
        write_bits(&mut out, 4, 4, 0b1100);
        write_bits(&mut out, 8, 3, 0b010);
        write_bits(&mut out, 11, 13, 0x1AFF);
        write_bits(&mut out, 24, 8, 0x01);
        assert_eq!(out, [0xAC, 0x5A, 0xFF, 0x01]);
        let wide: Vec<u8> = (0..17).collect();
        let v = read_bits(&wide, 4, 128);
        let mut back = vec![0u8; 17];
        write_bits(&mut back, 4, 128, v);
        assert_eq!(&back[1..16], &wide[1..16]);
        assert_eq!(back[0] & 0x0F, wide[0] & 0x0F);
        assert_eq!(back[16] & 0xF0, wide[16] & 0xF0);
    }

    #[test]
    fn key_matches_follow_ir_semantics() {
        assert!(key_matches(KeyMatch::Exact(5), 5, 8));
        assert!(key_matches(KeyMatch::Mask { value: 0x8100, mask: 0xEFFF }, 0x9100, 16));
        assert!(!key_matches(KeyMatch::Mask { value: 0x8100, mask: 0xEFFF }, 0x8101, 16));
        assert!(key_matches(KeyMatch::Range { lo: 0x600, hi: 0x6FF }, 0x6FF, 16));
        assert!(!key_matches(KeyMatch::Range { lo: 0x600, hi: 0x6FF }, 0x700, 16));
        assert!(key_matches(KeyMatch::Prefix { value: 0x0A00_0000, len: 8 }, 0x0AFF_0001, 32));
        assert!(!key_matches(KeyMatch::Prefix { value: 0x0A00_0000, len: 8 }, 0x0B00_0000, 32));
        assert!(key_matches(KeyMatch::Prefix { value: 0, len: 0 }, 0xFFFF_FFFF, 32));
        assert!(key_matches(KeyMatch::Prefix { value: u128::MAX, len: 128 }, u128::MAX, 128));
        assert!(key_matches(KeyMatch::Any, 12345, 16));
    }

    /// A program whose ingress computes one expression per metadata field
    /// from the three bytes of header `h`.
    const EXPRS: &str = r#"
        header h_t { bit<8> x; bit<8> y; bit<8> n; }
        struct hs { h_t h; }
        struct m_t {
            bit<8> shl_big; bit<8> shl; bit<8> shr_big; bit<8> shl_var; bit<8> shr_var;
            bit<8> add; bit<8> sub; bit<8> neg; bit<8> mul; bit<8> not;
            bit<16> cat; bit<4> slice; bit<4> trunc; bit<32> ext; bit<8> cond;
            bool both; bool either; bit<1> b2bit; bit<16> w; bit<128> wide; bit<128> wide_shl;
            bool lt; bool ge;
        }
        parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
            state start { pkt.extract(hdr.h); transition accept; }
        }
        control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
            apply {
                meta.shl_big = hdr.h.x << 8;
                meta.shl = hdr.h.x << 3;
                meta.shr_big = hdr.h.x >> 9;
                meta.shl_var = hdr.h.x << hdr.h.n;
                meta.shr_var = hdr.h.x >> hdr.h.n;
                meta.add = hdr.h.x + 200;
                meta.sub = 3 - hdr.h.x;
                meta.neg = -hdr.h.x;
                meta.mul = hdr.h.x * hdr.h.y;
                meta.not = ~hdr.h.x;
                meta.cat = hdr.h.x ++ hdr.h.y;
                meta.slice = hdr.h.y[6:3];
                meta.trunc = (bit<4>)hdr.h.y;
                meta.ext = (bit<32>)hdr.h.y;
                meta.cond = hdr.h.x > hdr.h.y ? hdr.h.x : hdr.h.y;
                meta.both = hdr.h.x == 100 && hdr.h.y != 0;
                meta.either = hdr.h.x == 1 || hdr.h.y == 0xF5;
                meta.b2bit = (bit<1>)(hdr.h.x != 0);
                meta.w = 0xFFFF;
                meta.w[11:4] = hdr.h.x;
                meta.wide = ((bit<128>)hdr.h.x << 120) | 1;
                meta.wide_shl = meta.wide << 127;
                meta.lt = hdr.h.y < hdr.h.x;
                meta.ge = hdr.h.n >= 9;
            }
        }
        control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.h); } }
        Pipeline(P(), C(), D()) main;
    "#;

    #[test]
    fn expressions_wrap_shift_slice_cast_and_concat_per_ir_docs() {
        let mut sw = interp(EXPRS);
        let (o, out) = run(&mut sw, 0, &[100, 0xF5, 9]);
        assert_eq!(o, Outcome::Forwarded);
        assert_eq!(out[0].data, [100, 0xF5, 9]);
        let v = |n: &str| sw.slot_value(&format!("meta.{n}")).unwrap_or_else(|| panic!("no slot meta.{n}"));
        let x: u128 = 100;
        assert_eq!(v("shl_big"), 0, "shift by >= width is 0");
        assert_eq!(v("shl"), (x << 3) & 0xFF);
        assert_eq!(v("shr_big"), 0);
        assert_eq!(v("shl_var"), 0, "variable shift of 9 >= 8");
        assert_eq!(v("shr_var"), 0);
        assert_eq!(v("add"), (100 + 200) % 256);
        assert_eq!(v("sub"), 3u128.wrapping_sub(100) & 0xFF);
        assert_eq!(v("neg"), 256 - 100);
        assert_eq!(v("mul"), (100 * 0xF5) % 256);
        assert_eq!(v("not"), !100u8 as u128);
        assert_eq!(v("cat"), 0x64F5);
        assert_eq!(v("slice"), (0xF5 >> 3) & 0xF);
        assert_eq!(v("trunc"), 0x5);
        assert_eq!(v("ext"), 0xF5);
        assert_eq!(v("cond"), 0xF5);
        assert_eq!(v("both"), 1);
        assert_eq!(v("either"), 1);
        assert_eq!(v("b2bit"), 1);
        assert_eq!(v("w"), 0xF64F, "slice assignment keeps the other bits");
        assert_eq!(v("wide"), (100u128 << 120) | 1);
        assert_eq!(v("wide_shl"), 1u128 << 127);
        assert_eq!(v("lt"), 0);
        assert_eq!(v("ge"), 1);
        // Small shift amounts.
        run(&mut sw, 0, &[0x81, 0, 1]);
        assert_eq!(sw.slot_value("meta.shl_var"), Some(0x02));
        assert_eq!(sw.slot_value("meta.shr_var"), Some(0x40));
    }

    /// Odd-width fields (1, 7, 12, 12, 3, 5, 128, 4, 4 bits): extracted,
    /// one changed, the rest re-emitted bit for bit.
    const ODD: &str = r#"
        header odd_t { bit<1> a; bit<7> b; bit<12> c; bit<12> d; bit<3> e; bit<5> f; bit<128> big; bit<4> g; bit<4> h; }
        struct hs { odd_t o; }
        struct m_t { bit<8> unused; }
        parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
            state start { pkt.extract(hdr.o); transition accept; }
        }
        control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
            apply { hdr.o.d = hdr.o.d + 1; }
        }
        control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.o); } }
        Pipeline(P(), C(), D()) main;
    "#;

    #[test]
    fn odd_width_fields_extract_and_emit() {
        let mut sw = interp(ODD);
        let mut pkt: Vec<u8> = (0..22u8).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
        pkt.extend_from_slice(b"payload");
        let (o, out) = run(&mut sw, 0, &pkt);
        assert_eq!(o, Outcome::Forwarded);
        let v = |n: &str| sw.slot_value(&format!("hdr.o.{n}")).unwrap_or(u128::MAX);
        assert_eq!(v("a"), read_bits(&pkt, 0, 1));
        assert_eq!(v("b"), u128::from(pkt[0] & 0x7F));
        assert_eq!(v("c"), (u128::from(pkt[1]) << 4) | u128::from(pkt[2] >> 4));
        let d = (u128::from(pkt[2] & 0xF) << 8) | u128::from(pkt[3]);
        assert_eq!(v("d"), (d + 1) & 0xFFF);
        assert_eq!(v("e"), u128::from(pkt[4] >> 5));
        assert_eq!(v("f"), u128::from(pkt[4] & 0x1F));
        assert_eq!(v("big"), u128::from_be_bytes(pkt[5..21].try_into().unwrap()));
        assert_eq!(v("g"), u128::from(pkt[21] >> 4));
        assert_eq!(v("h"), u128::from(pkt[21] & 0xF));
        assert_eq!(v("$valid"), 1);
        let mut want = pkt.clone();
        write_bits(&mut want, 20, 12, (d + 1) & 0xFFF);
        assert_eq!(out[0].data, want);
        // One byte short of the header: truncated, nothing extracted.
        let (o, _) = run(&mut sw, 0, &pkt[..21]);
        assert_eq!(o, Outcome::Dropped(DropReason::Truncated { state: "start".into() }));
    }

    const SELECT: &str = r#"
        header eth_t { bit<48> dst; bit<48> src; bit<16> ty; }
        header b_t { bit<8> v; }
        struct hs { eth_t eth; b_t b; }
        struct m_t { bit<8> which; }
        parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
            state start {
                pkt.extract(hdr.eth);
                transition select(hdr.eth.ty) {
                    0x0800: ipv4;
                    0x8100 &&& 0xEFFF: vlan;
                    0x0600 .. 0x06FF: reject;
                    0x0700 .. 0x07FF: peek;
                    default: accept;
                }
            }
            state ipv4 { meta.which = 1; transition accept; }
            state vlan { meta.which = 2; transition accept; }
            state peek {
                transition select(pkt.lookahead<bit<8>>(), hdr.eth.ty[3:0]) {
                    (0xAA, _): skip;
                    (_, 0xF): two;
                }
            }
            state skip { pkt.advance(16); pkt.extract(hdr.b); transition accept; }
            state two { meta.which = 3; transition accept; }
        }
        // The control reads meta.which, so a packet whose parser does not
        // set it reads 0 (a slot nothing reads is not zeroed per packet).
        control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
            apply { if (meta.which == 9) { mark_to_drop(std); } }
        }
        control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.b); } }
        Pipeline(P(), C(), D()) main;
    "#;

    fn frame(ty: u16, rest: &[u8]) -> Vec<u8> {
        let mut p = vec![0x11; 12];
        p.extend_from_slice(&ty.to_be_bytes());
        p.extend_from_slice(rest);
        p
    }

    #[test]
    fn select_masks_ranges_lookahead_and_advance() {
        let mut sw = interp(SELECT);
        let which = |sw: &mut crate::switch::Switch, ty: u16, rest: &[u8]| {
            let (o, out) = run(sw, 0, &frame(ty, rest));
            (o, sw.slot_value("meta.which").unwrap_or(99), out)
        };
        assert_eq!(which(&mut sw, 0x0800, &[]).1, 1);
        assert_eq!(which(&mut sw, 0x8100, &[]).1, 2);
        assert_eq!(which(&mut sw, 0x9100, &[]).1, 2, "0x9100 & 0xEFFF == 0x8100");
        assert_eq!(which(&mut sw, 0x8101, &[]).1, 0, "default");
        let (o, _, _) = which(&mut sw, 0x0650, &[]);
        assert_eq!(o, Outcome::Dropped(DropReason::ParserReject { state: "start".into() }));
        // Lookahead 0xAA: advance 2 bytes, extract b; the skipped bytes are
        // dropped by the deparser (the cursor is past them).
        let (o, _, out) = which(&mut sw, 0x0700, &[0xAA, 0xBB, 0xCC, 0xDD]);
        assert_eq!(o, Outcome::Forwarded);
        assert_eq!(out[0].data, frame(0x0700, &[0xCC, 0xDD]), "eth, b = 0xCC, then the payload 0xDD");
        assert_eq!(sw.slot_value("hdr.b.v"), Some(0xCC));
        // Lookahead past the end: truncated in `peek`.
        let (o, _, _) = which(&mut sw, 0x0700, &[]);
        assert_eq!(o, Outcome::Dropped(DropReason::Truncated { state: "peek".into() }));
        // Advance past the end: truncated in `skip`.
        let (o, _, _) = which(&mut sw, 0x0700, &[0xAA]);
        assert_eq!(o, Outcome::Dropped(DropReason::Truncated { state: "skip".into() }));
        assert_eq!(which(&mut sw, 0x070F, &[0x01]).1, 3);
        // No arm matches: reject.
        let (o, _, _) = which(&mut sw, 0x0701, &[0x01]);
        assert_eq!(o, Outcome::Dropped(DropReason::ParserReject { state: "peek".into() }));
    }

    /// Encapsulates IPv4 in IPv4 (grow by 20 bytes into the headroom) or
    /// strips the Ethernet header (shrink), chosen by the TTL.
    const GROW_SHRINK: &str = r#"
        header eth_t { bit<48> dst; bit<48> src; bit<16> ty; }
        header ipv4_t { bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> total_len;
            bit<16> identification; bit<3> flags; bit<13> frag_offset; bit<8> ttl; bit<8> protocol;
            bit<16> hdr_checksum; bit<32> src_addr; bit<32> dst_addr; }
        struct hs { eth_t eth; ipv4_t outer; ipv4_t ipv4; }
        struct m_t { bit<8> unused; }
        parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
            state start { pkt.extract(hdr.eth); pkt.extract(hdr.ipv4); transition accept; }
        }
        control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
            apply {
                if (hdr.ipv4.ttl == 64) {
                    hdr.outer.setValid();
                    hdr.outer.version = 4;
                    hdr.outer.ihl = 5;
                    hdr.outer.total_len = hdr.ipv4.total_len + 20;
                    hdr.outer.ttl = 64;
                    hdr.outer.protocol = 4;
                    hdr.outer.src_addr = 0xC0000201;
                    hdr.outer.dst_addr = 0xC0000202;
                    hdr.outer.hdr_checksum = csum16(hdr.outer);
                } else {
                    hdr.eth.setInvalid();
                }
            }
        }
        control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.outer); pkt.emit(hdr.ipv4); } }
        Pipeline(P(), C(), D()) main;
    "#;

    #[test]
    fn deparser_grows_into_headroom_and_shrinks() {
        let mut sw = interp(GROW_SHRINK);
        assert_eq!(sw.layout().max_emit_bytes, 54);
        let pkt = syn();
        let (o, out) = run(&mut sw, 0, &pkt);
        assert_eq!(o, Outcome::Forwarded);
        let d = &out[0].data;
        assert_eq!(d.len(), pkt.len() + 20);
        assert_eq!(&d[..14], &pkt[..14]);
        let outer = &d[14..34];
        assert_eq!(outer[0], 0x45);
        assert_eq!(u16::from_be_bytes([outer[2], outer[3]]), 60 + 20);
        assert_eq!(outer[9], 4);
        assert_eq!(&outer[12..20], &[192, 0, 2, 1, 192, 0, 2, 2]);
        assert_eq!(crate::externs::checksum::csum16_bytes(outer), 0, "outer checksum valid");
        assert_eq!(&d[34..], &pkt[14..], "inner packet unchanged");
        // Shrink: TTL 63 strips Ethernet.
        let mut p63 = pkt.clone();
        p63[22] = 63;
        let (_, out) = run(&mut sw, 0, &p63);
        assert_eq!(out[0].data, &p63[14..]);
        // The buffer is reused: an encapsulation after a shrink is still right.
        let (_, out) = run(&mut sw, 0, &pkt);
        assert_eq!(out[0].data.len(), pkt.len() + 20);
        assert_eq!(&out[0].data[34..], &pkt[14..]);
    }

    #[test]
    fn checksum_of_known_header_is_b1e6() {
        // Recompute the checksum of the classic example header (zeroed in
        // the input): the output must carry 0xb1e6.
        let src =
            GROW_SHRINK.replace("if (hdr.ipv4.ttl == 64) {", "hdr.ipv4.hdr_checksum = csum16(hdr.ipv4); if (false) {");
        let src = src.replace("hdr.eth.setInvalid();", "");
        let mut sw = interp(&src);
        let mut pkt = vec![0u8; 14];
        pkt[12..14].copy_from_slice(&[0x08, 0x00]);
        pkt.extend_from_slice(&[
            0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xac, 0x10, 0x0a, 0x63, 0xac, 0x10,
            0x0a, 0x0c,
        ]);
        let (_, out) = run(&mut sw, 0, &pkt);
        assert_eq!(&out[0].data[24..26], &[0xb1, 0xe6]);
    }

    /// Actions with parameters from a table, `exit` inside an action, a
    /// `switch` on action_run, counters and registers across packets.
    const CONTROL: &str = r#"
        header h_t { bit<8> key; bit<8> a; bit<8> b; bit<32> reg; }
        struct hs { h_t h; }
        struct m_t { bit<8> after; }
        parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
            state start { pkt.extract(hdr.h); transition accept; }
        }
        control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
            counter(4) hits;
            register<bit<32>>(8) last;
            action set(bit<8> v, bit<9> port) { hdr.h.a = v; std.egress_spec = port; }
            action stop(bit<8> v) { hdr.h.a = v; exit; }
            table t {
                key = { hdr.h.key : exact; }
                actions = { set; stop; NoAction; }
                default_action = NoAction();
                const entries = { 1 : set(0x11, 5); 2 : stop(0x22); }
            }
            apply {
                switch (t.apply().action_run) {
                    set: { hdr.h.b = 1; }
                    stop: { hdr.h.b = 2; }
                    default: { hdr.h.b = 3; }
                }
                hits.count((bit<32>)hdr.h.key);
                bit<32> old;
                last.read(old, (bit<32>)hdr.h.key);
                last.write((bit<32>)hdr.h.key, hdr.h.reg);
                hdr.h.reg = old;
                meta.after = 1;
            }
        }
        control C2(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
            apply { meta.after = meta.after + 10; }
        }
        control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.h); } }
        Pipeline(P(), C(), C2(), D()) main;
    "#;

    #[test]
    fn tables_actions_exit_counters_and_registers() {
        let mut sw = interp(CONTROL);
        let (o, out) = run(&mut sw, 0, &[1, 0, 0, 0, 0, 0, 7]);
        assert_eq!(o, Outcome::Forwarded);
        assert_eq!((out[0].port, &out[0].data[..]), (5, &[1, 0x11, 1, 0, 0, 0, 0][..]));
        assert_eq!(sw.slot_value("meta.after"), Some(11));
        // `exit` in the action ends control C (no switch case, no counter,
        // no register), but C2 still runs.
        let (_, out) = run(&mut sw, 0, &[2, 0, 0, 0, 0, 0, 9]);
        assert_eq!(&out[0].data[..], &[2, 0x22, 0, 0, 0, 0, 9]);
        assert_eq!(sw.slot_value("meta.after"), Some(10));
        // Miss: default branch; the register returns the previous packet's value.
        let (_, out) = run(&mut sw, 0, &[3, 0, 0, 0, 0, 0, 4]);
        assert_eq!(&out[0].data[..3], &[3, 0, 3]);
        let (_, out) = run(&mut sw, 0, &[1, 0, 0, 0, 0, 0, 8]);
        assert_eq!(&out[0].data[3..], &[0, 0, 0, 7], "register read before write");
        // Index 9: out of range for both counter (4) and register (8).
        let (o, out) = run(&mut sw, 0, &[9, 0, 0, 0, 0, 0, 1]);
        assert_eq!(o, Outcome::Forwarded);
        assert_eq!(&out[0].data[3..], &[0, 0, 0, 0], "out-of-range register read gives 0");
        let c = sw.externs().counter("hits").expect("counter");
        assert_eq!(c.read(1), Some((2, 14)));
        assert_eq!(c.read(2), Some((0, 0)), "the exiting packet was not counted");
        assert_eq!(c.read(3), Some((1, 7)));
        assert_eq!(c.errors(), 1);
        let r = sw.externs().register("last").expect("register");
        assert_eq!(r.get(1), Some(8));
        assert_eq!(r.errors(), 2);
        let t = sw.program().find_table("t").unwrap();
        assert_eq!((sw.tables().table(t).hits(), sw.tables().table(t).misses()), (3, 2));
        let report = sw.report();
        assert!(report.contains("C.hits"), "{report}");
    }

    #[test]
    fn csum16_replace_in_a_program_matches_recompute() {
        // Rewrite the destination address and update both checksums
        // incrementally, as a NAT would.
        let src = r#"
            header eth_t { bit<48> dst; bit<48> src; bit<16> ty; }
            header ipv4_t { bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> total_len;
                bit<16> identification; bit<3> flags; bit<13> frag_offset; bit<8> ttl; bit<8> protocol;
                bit<16> hdr_checksum; bit<32> src_addr; bit<32> dst_addr; }
            header tcp_t { bit<16> sport; bit<16> dport; bit<32> seq; bit<32> ack; bit<4> off; bit<4> res;
                bit<8> flags; bit<16> window; bit<16> csum; bit<16> urg; }
            struct hs { eth_t eth; ipv4_t ipv4; tcp_t tcp; }
            struct m_t { bit<32> old; }
            parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
                state start { pkt.extract(hdr.eth); pkt.extract(hdr.ipv4); pkt.extract(hdr.tcp); transition accept; }
            }
            control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
                apply {
                    meta.old = hdr.ipv4.dst_addr;
                    hdr.ipv4.dst_addr = 0xC0A8FFFE;
                    csum16_replace(hdr.ipv4.hdr_checksum, meta.old, hdr.ipv4.dst_addr);
                    csum16_replace(hdr.tcp.csum, meta.old, hdr.ipv4.dst_addr);
                }
            }
            control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.ipv4); pkt.emit(hdr.tcp); } }
            Pipeline(P(), C(), D()) main;
        "#;
        let mut sw = interp(src);
        let (_, out) = run(&mut sw, 0, &syn());
        let d = &out[0].data;
        assert_eq!(&d[30..34], &[192, 168, 255, 254]);
        assert_eq!(crate::externs::checksum::csum16_bytes(&d[14..34]), 0, "IPv4 checksum");
        let mut pseudo = d[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 6, 0, (d.len() - 34) as u8]);
        pseudo.extend_from_slice(&d[34..]);
        assert_eq!(crate::externs::checksum::csum16_bytes(&pseudo), 0, "TCP checksum");
    }

    #[test]
    fn hashes_in_a_program() {
        let src = r#"
            header h_t { bit<32> a; bit<32> b; bit<16> c; bit<16> d; bit<8> e; }
            struct hs { h_t h; }
            struct m_t { bit<32> crc32; bit<16> crc16; }
            parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
                state start { pkt.extract(hdr.h); transition accept; }
            }
            control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
                apply {
                    meta.crc32 = hash_crc32({hdr.h.a, hdr.h.b, hdr.h.c, hdr.h.d, hdr.h.e});
                    meta.crc16 = hash_crc16(hdr.h);
                }
            }
            control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.h); } }
            Pipeline(P(), C(), D()) main;
        "#;
        let mut sw = interp(src);
        let tuple = [10, 0, 0, 1, 10, 0, 0, 2, 0x04, 0xd2, 0, 80, 6];
        run(&mut sw, 0, &tuple);
        // zlib.crc32 of the same 13 bytes.
        assert_eq!(sw.slot_value("meta.crc32"), Some(0x280a_4fbc));
        let bytes = tuple.iter().map(|b| (u128::from(*b), 8));
        assert_eq!(sw.slot_value("meta.crc16"), Some(crate::externs::crc::crc16(bytes).into()));
    }

    #[test]
    fn example_programs_run_on_random_packets_without_panicking() {
        for name in ["l2_switch", "ipv4_router", "acl", "lb"] {
            let program = compile(&example(name));
            let opts = crate::switch::SwitchOptions { backend: crate::switch::Backend::Interp, trace: true };
            let mut sw = crate::switch::Switch::new(program, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
            let base = syn();
            let mut out = Vec::new();
            let mut x: u64 = 0xDEAD_BEEF_1234_5678;
            for i in 0..500u64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut pkt = base.clone();
                pkt.truncate((x % 80) as usize);
                if let Some(b) = pkt.get_mut((x >> 8) as usize % 80) {
                    *b ^= (x >> 16) as u8;
                }
                sw.process((x % 3) as u16, &pkt, i, &mut out);
                let _ = sw.take_trace();
            }
            assert_eq!(sw.stats().rx_packets(), 500, "{name}");
        }
    }

    /// A parser loop, made to consume nothing by [`spin`] (the checker
    /// rejects such loops in source): bounded by `MAX_PARSER_STEPS`.
    const SPIN: &str = r#"
        header b_t { bit<8> v; }
        struct hs { b_t b; }
        struct m_t { bit<32> n; }
        parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
            state start { pkt.extract(hdr.b); transition spin; }
            state spin {
                meta.n = meta.n + 1;
                pkt.extract(hdr.b);
                transition select(meta.n, hdr.b.v) {
                    (100, 1): accept;
                    (_, _): spin;
                }
            }
        }
        control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) { apply { } }
        control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.b); } }
        Pipeline(P(), C(), D()) main;
    "#;

    /// [`SPIN`] without the `extract` in its loop.
    fn spin() -> Program {
        let mut p = compile(SPIN);
        for st in p.parser.graph.node_weights_mut() {
            if st.name == "spin" {
                st.stmts.retain(|s| !matches!(s.kind, StmtKind::Extract { .. }));
            }
        }
        p
    }

    #[test]
    fn parser_loops_are_bounded() {
        let opts = crate::switch::SwitchOptions { backend: crate::switch::Backend::Interp, trace: false };
        let mut sw = crate::switch::Switch::new(spin(), opts).unwrap_or_else(|e| panic!("{e}"));
        let (o, _) = run(&mut sw, 0, &[1]);
        assert_eq!(o, Outcome::Forwarded);
        assert_eq!(sw.slot_value("meta.n"), Some(100));
        let (o, _) = run(&mut sw, 0, &[2]);
        assert_eq!(o, Outcome::Dropped(DropReason::ParserReject { state: "spin".into() }));
        // `start` is the first of the MAX_PARSER_STEPS states visited.
        assert_eq!(sw.slot_value("meta.n"), Some(u128::from(MAX_PARSER_STEPS) - 1));
    }

    /// The JIT backend through the switch's host functions gives the same
    /// outcome, output, PHV, trace and counters as the interpreter on the
    /// programs above and the examples, for mutated and truncated packets.
    /// (The full differential suite is `tests/differential.rs`; this one
    /// covers the runtime's side: `run_compiled` and the `p4l_*` shims.)
    #[test]
    fn jit_backend_agrees_with_interpreter() {
        use crate::switch::{Backend, Switch, SwitchOptions};
        let seeds: Vec<(&str, String, Vec<Vec<u8>>)> = vec![
            ("exprs", EXPRS.to_string(), vec![vec![100, 0xF5, 9], vec![0x81, 0, 1], vec![0, 0, 0]]),
            ("odd", ODD.to_string(), vec![(0..30u8).map(|i| i.wrapping_mul(37) ^ 0xA5).collect()]),
            (
                "select",
                SELECT.to_string(),
                vec![frame(0x0800, &[]), frame(0x9100, &[1]), frame(0x0700, &[0xAA, 1, 2, 3]), frame(0x070F, &[1])],
            ),
            ("grow", GROW_SHRINK.to_string(), vec![syn()]),
            ("spin", String::new(), vec![vec![1], vec![2]]),
            (
                "control",
                CONTROL.to_string(),
                vec![vec![1, 0, 0, 0, 0, 0, 7], vec![2, 0, 0, 0, 0, 0, 9], vec![3, 1, 2, 3, 4, 5, 6]],
            ),
            ("ipv4_router", example("ipv4_router"), vec![syn()]),
            ("l2_switch", example("l2_switch"), vec![syn()]),
            ("acl", example("acl"), vec![syn()]),
            ("lb", example("lb"), vec![syn()]),
        ];
        for (name, src, packets) in seeds {
            let program = if name == "spin" { spin() } else { compile(&src) };
            let build = |backend| Switch::new(program.clone(), SwitchOptions { backend, trace: true });
            let (mut jit, mut int) = match (build(Backend::Jit), build(Backend::Interp)) {
                (Ok(j), Ok(i)) => (j, i),
                (j, i) => panic!("{name}: jit {:?} interp {:?}", j.err(), i.err()),
            };
            let mut x: u64 = 0x0123_4567_89AB_CDEF;
            for (k, seed) in packets.iter().enumerate() {
                // A spinning packet visits 65536 states: a few are enough.
                let rounds = if name == "spin" { 2 } else { 200 };
                for round in 0..rounds {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let mut pkt = seed.clone();
                    if round > 0 {
                        if !pkt.is_empty() {
                            let at = (x >> 3) as usize % pkt.len();
                            pkt[at] ^= (x >> 24) as u8;
                        }
                        if round % 4 == 0 {
                            pkt.truncate((x >> 40) as usize % (seed.len() + 1));
                        }
                    }
                    let port = (x % 4) as u16;
                    let (a, b) = (run(&mut jit, port, &pkt), run(&mut int, port, &pkt));
                    let ctx = format!("{name}, seed {k}, round {round}, packet {pkt:02x?}");
                    assert_eq!(a, b, "{ctx}");
                    // The slots; key buffers are scratch (the JIT passes
                    // single keys to the host in registers).
                    let slots = jit.layout().slot_bytes as usize;
                    assert_eq!(jit.phv()[..slots], int.phv()[..slots], "{ctx}: PHV");
                    assert_eq!(jit.take_trace(), int.take_trace(), "{ctx}: trace");
                }
            }
            assert_eq!(jit.stats(), int.stats(), "{name}");
            assert_eq!(jit.report(), int.report(), "{name}");
        }
    }
}
