use p4lite_compiler::diag::{render, Diagnostic};
use p4lite_compiler::span::{Sources, Span, SourceId};
#[test]
fn scratch() {
    let text = std::fs::read_to_string("tests/check_fail/width_mismatch_compare.p4lite").unwrap();
    let find = |s: &str| { let i = text.find(s).unwrap(); Span::new(SourceId::USER, i, i + s.len()) };
    let eq = { let i = text.find("ttl == ").unwrap() + 4; Span::new(SourceId::USER, i, i + 2) };
    let a = find("hdr.ipv4.ttl == hdr.ipv4.total_len");
    let a = Span::new(SourceId::USER, a.lo as usize, a.lo as usize + "hdr.ipv4.ttl".len());
    let b = find("hdr.ipv4.total_len)");
    let b = Span::new(SourceId::USER, b.lo as usize, b.hi as usize - 1);
    let d = Diagnostic::error("E0201", eq, "`==` operands have different widths: bit<8> and bit<16>", "bit<8> == bit<16>")
        .with_note(a, "this is bit<8>").with_note(b, "this is bit<16>")
        .with_help("cast one side so the widths agree, e.g. `(bit<8>)(...)`");
    let sources = Sources::new("check_fail/width_mismatch_compare.p4lite", text.clone());
    std::fs::write("tests/check_fail/width_mismatch_compare.stderr", render(&[d], &sources, false)).unwrap();
}
