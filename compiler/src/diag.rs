//! Diagnostics: one type for every error and warning the front end reports,
//! rendered in one place ([`render`]) through miette.
//!
//! Stages collect diagnostics into a `Vec<Diagnostic>` and keep going, so a
//! program with three unrelated mistakes gets three diagnostics in one run.

use std::fmt;

use crate::span::{Sources, Span};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A secondary labelled span ("first defined here").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One error or warning, with a primary span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable code, e.g. `E0201`; the list is in `grammar/README.md`.
    pub code: &'static str,
    /// One line saying what is wrong.
    pub message: String,
    /// Where, and a short label for that place.
    pub span: Span,
    pub label: String,
    /// Further places that explain the error.
    pub notes: Vec<Label>,
    /// A hint on how to fix it ("did you mean `ipv4`?").
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `span` with a message and a label for the span.
    pub fn error(code: &'static str, span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            label: label.into(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// A warning at `span`.
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, span, message, label) }
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary label.
    pub fn with_note(mut self, span: Span, message: impl Into<String>) -> Self {
        self.notes.push(Label { span, message: message.into() });
        self
    }

    /// True for errors (not warnings).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `n` bits, as a message says it: "1 bit", "7 bits".
pub fn bits(n: impl Into<u64>) -> String {
    let n = n.into();
    format!("{n} bit{}", if n == 1 { "" } else { "s" })
}

/// Sorts diagnostics into source order (errors before warnings at one place).
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| (d.span.source, d.span.lo, std::cmp::Reverse(d.severity), d.span.hi));
}

/// The closest of `candidates` to `name`, if close enough to suggest
/// ("did you mean ...?"): Levenshtein distance at most a third of the length.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Edit distance between two strings.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A diagnostic paired with its source, in the shape miette renders.
struct Rendered<'a> {
    diag: &'a Diagnostic,
    src: miette::NamedSource<String>,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diag.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.src)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let d = self.diag;
        let primary = miette::LabeledSpan::new_primary_with_span(Some(d.label.clone()), to_miette(d.span));
        // Notes in another source (the prelude) cannot be drawn next to this one.
        let notes = d
            .notes
            .iter()
            .filter(move |n| n.span.source == d.span.source)
            .map(|n| miette::LabeledSpan::new_with_span(Some(n.message.clone()), to_miette(n.span)));
        Some(Box::new(std::iter::once(primary).chain(notes)))
    }
}

fn to_miette(span: Span) -> miette::SourceSpan {
    (span.lo as usize, span.len()).into()
}

/// Renders diagnostics as miette reports, one after another; each shows
/// `[file:line:col]`, the source line and the labelled span. `color`
/// selects ANSI colours; tests render without.
pub fn render(diags: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let theme = if color { miette::GraphicalTheme::unicode() } else { miette::GraphicalTheme::unicode_nocolor() };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for d in diags {
        let src = miette::NamedSource::new(sources.name(d.span.source), sources.text(d.span.source).to_string());
        let r = Rendered { diag: d, src };
        if handler.render_report(&mut out, &r).is_err() {
            out.push_str(&format!("{}: {}\n", d.code, d.message));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("ipv5", ["ipv4", "ethernet", "tcp"]), Some("ipv4"));
        assert_eq!(did_you_mean("xyz", ["ipv4", "ethernet"]), None);
    }

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
    }
}
