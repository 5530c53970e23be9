//! `--emit ir`: the whole program as stable, readable text.
//!
//! Layout, top to bottom: a summary comment and the pipeline; header types;
//! header instances; non-header slots grouped by kind; user-declared externs
//! and extern instances; the parser; actions; tables; controls; the deparser.
//! Header-field and action-parameter slots are not listed with the other
//! slots because the header types and action signatures already show them.

use std::fmt::Write;

use crate::emit::{block_order, match_kind, ty, Printer};
use crate::ir::{self, Next, SigTy, SlotKind};
use crate::span::SourceId;

/// Indentation of one nesting level.
const IND: &str = "    ";

/// Writes the whole program.
pub(super) fn program(p: &ir::Program) -> String {
    let pr = Printer::new(p);
    let mut out = String::new();
    summary(&mut out, p);
    header_types(&mut out, p);
    headers(&mut out, p);
    slots(&mut out, p);
    externs(&mut out, p);
    parser(&mut out, &pr);
    for a in &p.actions {
        action(&mut out, &pr, a);
    }
    for t in &p.tables {
        table(&mut out, &pr, t);
    }
    for c in &p.controls {
        out.push('\n');
        let _ = writeln!(out, "control {} {{", c.name);
        body(&mut out, &pr, &c.body);
        out.push_str("}\n");
    }
    out.push('\n');
    let _ = writeln!(out, "deparser {} {{", p.deparser.name);
    for h in &p.deparser.emits {
        let _ = writeln!(out, "{IND}emit({});", pr.header(*h));
    }
    out.push_str("}\n");
    out
}

/// A one-line census and the pipeline order.
fn summary(out: &mut String, p: &ir::Program) {
    let _ = writeln!(
        out,
        "// p4lite IR: header types {}, headers {}, slots {}, actions {}, tables {}, extern call sites {}",
        p.header_types.len(),
        p.headers.len(),
        p.slots.len(),
        p.actions.len(),
        p.tables.len(),
        p.call_sites
    );
    let mut stages = vec![p.parser.name.as_str()];
    stages.extend(p.controls.iter().map(|c| c.name.as_str()));
    stages.push(p.deparser.name.as_str());
    let _ = writeln!(out, "pipeline {};", stages.join(" -> "));
}

fn header_types(out: &mut String, p: &ir::Program) {
    for h in &p.header_types {
        out.push('\n');
        let _ = writeln!(out, "header_type {} {{  // {} bytes", h.name, h.bit_len / 8);
        for (name, w) in &h.fields {
            let _ = writeln!(out, "{IND}{name}: bit<{w}>;");
        }
        out.push_str("}\n");
    }
}

fn headers(out: &mut String, p: &ir::Program) {
    if p.headers.is_empty() {
        return;
    }
    out.push('\n');
    for h in &p.headers {
        let tname = p.header_types.get(h.ty.index()).map_or("?", |t| t.name.as_str());
        let _ = writeln!(out, "header {}: {tname};  // {} bytes", h.name, h.byte_len);
    }
}

/// Metadata, standard metadata, locals and temporaries, each group in slot order.
fn slots(out: &mut String, p: &ir::Program) {
    let groups =
        [("meta", SlotKind::Meta), ("std", SlotKind::Std), ("local", SlotKind::Local), ("temp", SlotKind::Temp)];
    for (word, kind) in groups {
        let picked: Vec<&ir::Slot> = p.slots.iter().filter(|s| s.kind == kind).collect();
        if picked.is_empty() {
            continue;
        }
        out.push('\n');
        for s in picked {
            let _ = writeln!(out, "{word} {}: {};", s.name, ty(s.ty));
        }
    }
}

/// Externs the user declared (the prelude's are the same in every program,
/// so listing them would only add noise) and every extern instance.
fn externs(out: &mut String, p: &ir::Program) {
    let mut lines = Vec::new();
    for t in p.extern_types.iter().filter(|t| t.span.source == SourceId::USER) {
        lines.push(format!("extern {}{} {{", t.name, type_params(&t.type_params)));
        for c in &t.constructors {
            lines.push(format!("{IND}{}({});", t.name, params(c)));
        }
        for m in &t.methods {
            lines.push(format!("{IND}{};", method_sig(m)));
        }
        lines.push("}".to_string());
    }
    for f in p.extern_fns.iter().filter(|f| f.span.source == SourceId::USER) {
        lines.push(format!("extern {};", method_sig(&f.sig)));
    }
    for i in &p.instances {
        let tname = p.extern_types.get(i.ty.index()).map_or("?", |t| t.name.as_str());
        let targs = if i.type_args.is_empty() {
            String::new()
        } else {
            format!("<{}>", i.type_args.iter().map(|t| ty(*t)).collect::<Vec<_>>().join(", "))
        };
        let cargs: Vec<String> = i.ctor_args.iter().map(|v| v.to_string()).collect();
        lines.push(format!("instance {tname}{targs}({}) {};", cargs.join(", "), i.name));
    }
    if !lines.is_empty() {
        out.push('\n');
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
}

fn type_params(tps: &[String]) -> String {
    if tps.is_empty() {
        String::new()
    } else {
        format!("<{}>", tps.join(", "))
    }
}

fn sig_ty(t: &SigTy) -> String {
    match t {
        SigTy::Scalar(t) => ty(*t),
        SigTy::Param(n) | SigTy::Struct(n) => n.clone(),
    }
}

fn params(ps: &[ir::ParamSig]) -> String {
    let ps: Vec<String> = ps
        .iter()
        .map(|p| {
            let dir = match p.dir {
                ir::Dir::In => "in",
                ir::Dir::Out => "out",
                ir::Dir::InOut => "inout",
            };
            format!("{dir} {} {}", sig_ty(&p.ty), p.name)
        })
        .collect();
    ps.join(", ")
}

fn method_sig(m: &ir::MethodSig) -> String {
    let ret = m.ret.as_ref().map_or_else(|| "void".to_string(), sig_ty);
    format!("{ret} {}{}({})", m.name, type_params(&m.type_params), params(&m.params))
}

/// States in graph order (the checker adds them in declaration order), each
/// with its statements and transition; the start state is marked.
fn parser(out: &mut String, pr: &Printer) {
    let parser = &pr.p.parser;
    out.push('\n');
    let start = pr.next(Next::State(parser.start));
    let _ = writeln!(out, "parser {} {{  // start: {start}", parser.name);
    for (k, node) in parser.graph.node_indices().enumerate() {
        let st = &parser.graph[node];
        if k > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{IND}state {} {{", st.name);
        for s in &st.stmts {
            let _ = writeln!(out, "{IND}{IND}{};", pr.stmt(s));
        }
        match (st.select.is_empty(), st.arms.as_slice()) {
            (true, [arm]) if arm.keys.is_empty() => {
                let _ = writeln!(out, "{IND}{IND}transition {};", pr.next(arm.next));
            }
            _ => {
                let sel: Vec<String> = st.select.iter().map(|e| pr.expr(*e)).collect();
                let widths = pr.select_widths(st);
                let _ = writeln!(out, "{IND}{IND}transition select({}) {{", sel.join(", "));
                for arm in &st.arms {
                    let _ = writeln!(out, "{IND}{IND}{IND}{} => {};", pr.keys(&arm.keys, &widths), pr.next(arm.next));
                }
                let _ = writeln!(out, "{IND}{IND}}}");
            }
        }
        let _ = writeln!(out, "{IND}}}");
    }
    out.push_str("}\n");
}

/// `action NAME(bit<48> dmac, ...) { blocks }`; parameter names lose the
/// action's prefix (their slots are `MyIngress.forward.dmac`).
fn action(out: &mut String, pr: &Printer, a: &ir::Action) {
    let prefix = format!("{}.", a.name);
    let ps: Vec<String> = a
        .params
        .iter()
        .map(|s| {
            let name = pr.slot(*s);
            let short = name.strip_prefix(&prefix).unwrap_or(&name).to_string();
            format!("{} {short}", ty(pr.slot_ty(*s)))
        })
        .collect();
    out.push('\n');
    let _ = writeln!(out, "action {}({}) {{", a.name, ps.join(", "));
    body(out, pr, &a.body);
    out.push_str("}\n");
}

fn table(out: &mut String, pr: &Printer, t: &ir::Table) {
    out.push('\n');
    let _ = writeln!(out, "table {} {{", t.name);
    if !t.keys.is_empty() {
        let _ = writeln!(out, "{IND}key = {{");
        for k in &t.keys {
            let e = pr.expr(k.expr);
            // The control plane addresses keys by name; show it when it is not the expression.
            let name = if k.name == e { String::new() } else { format!(" @name(\"{}\")", k.name) };
            let _ = writeln!(out, "{IND}{IND}{e}: {}{name};  // {} bits", match_kind(k.kind), k.width);
        }
        let _ = writeln!(out, "{IND}}}");
    }
    let acts: Vec<String> = t.actions.iter().map(|a| pr.action(*a)).collect();
    let _ =
        writeln!(out, "{IND}actions = {{ {} }}", acts.iter().map(|a| format!("{a};")).collect::<Vec<_>>().join(" "));
    let konst = if t.default_const { "const " } else { "" };
    let _ = writeln!(out, "{IND}{konst}default_action = {};", pr.action_call(&t.default_action));
    let _ = writeln!(out, "{IND}size = {};", t.size);
    if !t.entries.is_empty() || t.entries_const {
        let konst = if t.entries_const { "const " } else { "" };
        let widths: Vec<u16> = t.keys.iter().map(|k| k.width).collect();
        let _ = writeln!(out, "{IND}{konst}entries = {{");
        for e in &t.entries {
            let prio = e.priority.map_or_else(String::new, |p| format!(" @priority({p})"));
            let _ = writeln!(out, "{IND}{IND}{} => {}{prio};", pr.keys(&e.keys, &widths), pr.action_call(&e.call));
        }
        let _ = writeln!(out, "{IND}}}");
    }
    out.push_str("}\n");
}

/// Basic blocks in [`block_order`], each `bbN:` then its statements and terminator.
fn body(out: &mut String, pr: &Printer, b: &ir::Body) {
    let order = block_order(b);
    for node in &order.order {
        let block = &b.graph[*node];
        let _ = writeln!(out, "{}:", order.label(*node));
        for s in &block.stmts {
            let _ = writeln!(out, "{IND}{};", pr.stmt(s));
        }
        let _ = writeln!(out, "{IND}{}", pr.term(&block.term, &order));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::fixture;

    #[test]
    fn prints_fixture_program() {
        let text = program(&fixture::program());
        println!("{text}");
        for want in [
            "pipeline MyParser -> MyIngress -> MyDeparser;",
            "header hdr.ipv4: ipv4_t;  // 20 bytes",
            "meta meta.nhop: bit<32>;",
            "temp MyIngress.$t0: bit<32>;",
            "instance counter(1024) MyIngress.per_port;",
            "        transition select(hdr.ethernet.ether_type) {\n            0x800 => parse_ipv4;\n",
            "            _ => accept;",
            "        transition accept;",
            "action MyIngress.forward(bit<48> dmac, bit<9> port) {",
            "    hdr.ipv4.ttl = hdr.ipv4.ttl - 8w1;",
            "        hdr.ipv4.dst_addr: lpm;  // 32 bits",
            "        10.0.0.0/8 => MyIngress.forward(48w0x1122334455, 9w1);",
            "    branch hdr.ipv4.$valid && (hdr.ipv4.ttl > 8w1), bb1, bb3",
            "    apply MyIngress.routes [action_run -> MyIngress.$t0];",
            "    switch MyIngress.$t0 { MyIngress.forward => bb2, default => bb5 }",
            "    MyIngress.per_port.count((bit<32>)std.egress_spec) @site1;",
            "    emit(hdr.ethernet);",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn output_is_deterministic() {
        let p = fixture::program();
        assert_eq!(program(&p), program(&p.clone()));
    }

    #[test]
    fn dangling_ids_do_not_panic() {
        let mut p = fixture::program();
        p.deparser.emits.push(ir::HeaderId(99));
        p.tables[0].actions.push(ir::ActionId(77));
        let text = program(&p);
        assert!(text.contains("emit(?header99);"));
        assert!(text.contains("?action77;"));
    }
}
