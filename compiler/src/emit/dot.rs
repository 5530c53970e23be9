//! `--emit dot`: one Graphviz `digraph` with a cluster for the parser's state
//! graph, one per action and control (their basic blocks), and one for the
//! deparser.
//!
//! Block nodes list their statements; edges come from the petgraph edges of
//! each body (labelled true/false/action/default), while the text form reads
//! terminators, so a checker bug that lets the two disagree shows up as a
//! difference between `--emit ir` and `--emit dot`. Node ids are derived from
//! arena indices and block numbers, so the output is deterministic.

use std::fmt::Write;

use petgraph::visit::EdgeRef;

use crate::emit::{block_order, Printer};
use crate::ir::{self, Edge, Next, Terminator};

/// Writes the whole program as one digraph.
pub(super) fn program(p: &ir::Program) -> String {
    let pr = Printer::new(p);
    let mut out = String::new();
    out.push_str("digraph p4lite {\n");
    out.push_str("    graph [fontname=\"monospace\", labeljust=l];\n");
    out.push_str("    node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    out.push_str("    edge [fontname=\"monospace\", fontsize=9];\n");
    parser(&mut out, &pr);
    for (i, a) in p.actions.iter().enumerate() {
        body(&mut out, &pr, &format!("action_{i}"), &format!("action {}", a.name), &a.body);
    }
    for (i, c) in p.controls.iter().enumerate() {
        body(&mut out, &pr, &format!("control_{i}"), &format!("control {}", c.name), &c.body);
    }
    deparser(&mut out, &pr);
    out.push_str("}\n");
    out
}

/// Escapes text for a quoted DOT string: `"` and `\` get a backslash.
/// Braces and angle brackets need no escape in a quoted label of a
/// non-record shape (the only kind used here), and escaping them would print
/// the backslash.
fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A quoted label of left-justified lines (each ends in `\l`), for nodes.
fn label(lines: &[String]) -> String {
    let body: String = lines.iter().map(|l| format!("{}\\l", escape(l))).collect();
    format!("\"{body}\"")
}

/// A quoted one-line centred label (cluster titles, edge labels).
fn short(text: &str) -> String {
    format!("\"{}\"", escape(text))
}

/// A quoted centred label of several lines.
fn centred(lines: &[String]) -> String {
    let body: Vec<String> = lines.iter().map(|l| escape(l)).collect();
    format!("\"{}\"", body.join("\\n"))
}

/// The parser cluster: one node per state (its name, statements and select
/// expressions), `accept` and `reject`, an entry arrow to the start state and
/// one edge per destination labelled with the keys of the arms that go there. A select without a
/// catch-all arm gets a dashed `no match` edge to `reject`.
fn parser(out: &mut String, pr: &Printer) {
    let parser = &pr.p.parser;
    let _ = writeln!(out, "    subgraph cluster_parser {{");
    let _ = writeln!(out, "        label={};", short(&format!("parser {}", parser.name)));
    let _ = writeln!(out, "        parser_entry [shape=point];");
    let _ = writeln!(out, "        parser_accept [label=\"accept\", shape=doublecircle];");
    let _ = writeln!(out, "        parser_reject [label=\"reject\", shape=octagon];");
    for node in parser.graph.node_indices() {
        let st = &parser.graph[node];
        let mut lines = vec![format!("state {}", st.name)];
        lines.extend(st.stmts.iter().map(|s| pr.stmt(s)));
        if !st.select.is_empty() {
            let sel: Vec<String> = st.select.iter().map(|e| pr.expr(*e)).collect();
            lines.push(format!("select({})", sel.join(", ")));
        }
        let _ = writeln!(out, "        parser_s{} [label={}];", node.index(), label(&lines));
    }
    let _ = writeln!(out, "        parser_entry -> parser_s{};", parser.start.index());
    for node in parser.graph.node_indices() {
        let st = &parser.graph[node];
        let widths = pr.select_widths(st);
        // Arms to the same place share one edge, its label one line per arm
        // in arm order (`3`, `4`, `11` -> parse_icmp_ipv4).
        let mut edges: Vec<(String, Vec<String>)> = Vec::new();
        for arm in &st.arms {
            let to = next_id(arm.next);
            let keys = if arm.keys.is_empty() { Vec::new() } else { vec![pr.keys(&arm.keys, &widths)] };
            match edges.iter_mut().find(|(t, _)| *t == to) {
                Some((_, labels)) => labels.extend(keys),
                None => edges.push((to, keys)),
            }
        }
        for (to, labels) in edges {
            if labels.is_empty() {
                let _ = writeln!(out, "        parser_s{} -> {to};", node.index());
            } else {
                let _ = writeln!(out, "        parser_s{} -> {to} [label={}];", node.index(), centred(&labels));
            }
        }
        let catch_all = st.arms.iter().any(|a| a.keys.iter().all(|k| *k == ir::KeyMatch::Any));
        if !catch_all {
            let _ =
                writeln!(out, "        parser_s{} -> parser_reject [label=\"no match\", style=dashed];", node.index());
        }
    }
    let _ = writeln!(out, "    }}");
}

/// The node id a parser transition goes to.
fn next_id(n: Next) -> String {
    match n {
        Next::State(s) => format!("parser_s{}", s.index()),
        Next::Accept => "parser_accept".to_string(),
        Next::Reject => "parser_reject".to_string(),
    }
}

/// One cluster for a body: a node per block (`bbN`, its statements and how
/// it ends; a `goto` is left to the edge) and its graph edges.
fn body(out: &mut String, pr: &Printer, id: &str, title: &str, b: &ir::Body) {
    let order = block_order(b);
    let _ = writeln!(out, "    subgraph cluster_{id} {{");
    let _ = writeln!(out, "        label={};", short(title));
    for node in &order.order {
        let block = &b.graph[*node];
        let mut lines = vec![format!("{}:", order.label(*node))];
        lines.extend(block.stmts.iter().map(|s| pr.stmt(s)));
        match &block.term {
            Terminator::Goto(_) => {}
            Terminator::Branch { cond, .. } => lines.push(format!("branch {}", pr.expr(*cond))),
            Terminator::Switch { value, .. } => lines.push(format!("switch {}", pr.slot(*value))),
            Terminator::Return => lines.push("return".to_string()),
            Terminator::Exit => lines.push("exit".to_string()),
        }
        let shape = match block.term {
            Terminator::Return | Terminator::Exit => ", peripheries=2",
            _ => "",
        };
        let _ = writeln!(out, "        {id}_bb{} [label={}{shape}];", order.number(*node), label(&lines));
    }
    for node in &order.order {
        let mut edges: Vec<(usize, String)> = b
            .graph
            .edges(*node)
            .map(|e| {
                let text = match e.weight() {
                    Edge::Goto => String::new(),
                    Edge::True => "true".to_string(),
                    Edge::False => "false".to_string(),
                    Edge::Case(a) => pr.action(*a),
                    Edge::Default => "default".to_string(),
                };
                (order.number(e.target()), text)
            })
            .collect();
        // petgraph lists a node's edges newest first; sort for a stable order.
        edges.sort();
        for (to, text) in edges {
            let from = order.number(*node);
            if text.is_empty() {
                let _ = writeln!(out, "        {id}_bb{from} -> {id}_bb{to};");
            } else {
                let _ = writeln!(out, "        {id}_bb{from} -> {id}_bb{to} [label={}];", short(&text));
            }
        }
    }
    let _ = writeln!(out, "    }}");
}

/// The deparser: one node listing the emits in order.
fn deparser(out: &mut String, pr: &Printer) {
    let d = &pr.p.deparser;
    let lines: Vec<String> = d.emits.iter().map(|h| format!("emit({})", pr.header(*h))).collect();
    let _ = writeln!(out, "    subgraph cluster_deparser {{");
    let _ = writeln!(out, "        label={};", short(&format!("deparser {}", d.name)));
    let _ = writeln!(out, "        deparser_emits [label={}];", label(&lines));
    let _ = writeln!(out, "    }}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::fixture;

    #[test]
    fn labels_escape_quotes_and_backslashes() {
        assert_eq!(label(&["a \"b\" {c} <d>".to_string()]), r#""a \"b\" {c} <d>\l""#);
        assert_eq!(label(&["x\\y".to_string(), "z".to_string()]), r#""x\\y\lz\l""#);
        assert_eq!(short("true"), "\"true\"");
    }

    #[test]
    fn fixture_graph_has_clusters_and_edges() {
        let text = program(&fixture::program());
        for want in [
            "subgraph cluster_parser {",
            "parser_s0 -> parser_s1 [label=\"0x800\"];",
            "parser_s0 -> parser_reject [label=\"0x600..0x6ff\"];",
            "parser_s1 -> parser_accept;",
            "parser_s0 -> parser_accept [label=\"0x8100 &&& 0xefff\\n_\"];",
            "subgraph cluster_control_0 {",
            "control_0_bb0 -> control_0_bb1 [label=\"true\"];",
            "control_0_bb0 -> control_0_bb3 [label=\"false\"];",
            "control_0_bb1 -> control_0_bb2 [label=\"MyIngress.forward\"];",
            "control_0_bb1 -> control_0_bb5 [label=\"default\"];",
            "control_0_bb2 -> control_0_bb5;",
            "subgraph cluster_action_2 {",
            "deparser_emits [label=\"emit(hdr.ethernet)\\lemit(hdr.ipv4)\\l\"];",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // The catch-all arm means no implicit reject edge from start; parse_ipv4's
        // direct transition is a catch-all too.
        assert!(!text.contains("no match"), "{text}");
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    /// Runs Graphviz on the output when it is installed (skipped otherwise).
    #[test]
    fn graphviz_accepts_output() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let Ok(mut child) = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        else {
            eprintln!("graphviz not installed; skipping");
            return;
        };
        let text = program(&fixture::program());
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.is_empty(), "dot failed: {stderr}\n{text}");
        let svg = String::from_utf8_lossy(&out.stdout);
        // Braces and `>` survive as text (escaped by the SVG writer, not by us).
        assert!(svg.contains("switch MyIngress.$t0"), "{svg}");
        assert!(svg.contains("csum16({hdr.ipv4.version, hdr.ipv4.ihl})"), "{svg}");
        assert!(svg.contains("hit &#45;&gt; MyIngress.$t1") || svg.contains("hit -&gt; MyIngress.$t1"), "{svg}");
    }
}
