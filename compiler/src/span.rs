//! Source positions.
//!
//! Every syntax node carries a [`Span`]; the IR keeps them so the runtime's
//! trace and the checker's diagnostics can point back at the program text.
//! Line and column numbers are computed only when a diagnostic is rendered.

/// Which source text a span points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SourceId(pub u16);

impl SourceId {
    /// The user's program (the file given on the command line).
    pub const USER: SourceId = SourceId(0);
    /// The built-in prelude (`grammar/prelude.p4lite`): externs and standard metadata.
    pub const PRELUDE: SourceId = SourceId(1);
}

/// A byte range `lo..hi` in one source text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    /// The text this span points into.
    pub source: SourceId,
    /// Byte offset of the first character.
    pub lo: u32,
    /// Byte offset one past the last character.
    pub hi: u32,
}

impl Span {
    /// A span over `lo..hi` of `source`.
    pub fn new(source: SourceId, lo: usize, hi: usize) -> Span {
        Span { source, lo: lo as u32, hi: hi as u32 }
    }

    /// The smallest span covering both `self` and `other` (same source assumed).
    pub fn to(self, other: Span) -> Span {
        Span { source: self.source, lo: self.lo.min(other.lo), hi: self.hi.max(other.hi) }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        (self.hi - self.lo) as usize
    }

    /// True when the span covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.hi == self.lo
    }
}

/// A name as written in the source, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

impl Ident {
    /// An identifier with the given name and span.
    pub fn new(name: impl Into<String>, span: Span) -> Ident {
        Ident { name: name.into(), span }
    }
}

/// The source texts of one compilation: the user's file and the prelude.
#[derive(Clone, Debug)]
pub struct Sources {
    /// `(display name, text)` indexed by [`SourceId`].
    pub files: Vec<(String, String)>,
}

impl Sources {
    /// Sources holding the user's program under `name`, and the prelude.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Sources {
        Sources { files: vec![(name.into(), text.into()), ("<prelude>".to_string(), crate::PRELUDE.to_string())] }
    }

    /// The display name of a source.
    pub fn name(&self, id: SourceId) -> &str {
        &self.files[id.0 as usize].0
    }

    /// The text of a source.
    pub fn text(&self, id: SourceId) -> &str {
        &self.files[id.0 as usize].1
    }

    /// The text a span covers.
    pub fn snippet(&self, span: Span) -> &str {
        &self.text(span.source)[span.lo as usize..span.hi as usize]
    }

    /// 1-based line and column of a span's start.
    pub fn line_col(&self, span: Span) -> (usize, usize) {
        let text = self.text(span.source);
        let lo = (span.lo as usize).min(text.len());
        let before = &text[..lo];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(lo, |nl| lo - nl - 1) + 1;
        (line, col)
    }
}
