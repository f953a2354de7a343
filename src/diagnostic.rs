//! Located problems in a user's file, rendered for people (miette) or machines (JSON).
//!
//! A [`Problem`] is a byte span plus a message and a `help:` line; [`Diagnostics`] holds
//! every problem found in one file together with its text, attached once, late. This
//! module never decides what is wrong, only how it is shown.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

use crate::yaml::{LineIndex, Span};

/// One thing wrong with a file, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Lowercase fragment that reads after "failed to ...": e.g. "unsupported size `1x1`".
    pub message: String,
    pub span: Span,
    /// Short text shown under the offending value.
    pub label: String,
    /// What to do about it.
    pub help: Option<String>,
    /// Other places that matter (the first of two duplicate ids).
    pub related: Vec<(Span, String)>,
}

impl Problem {
    pub fn new(span: Span, message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            span,
            label: "here".into(),
            help: None,
            related: Vec::new(),
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Problem {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, span: Span, label: impl Into<String>) -> Problem {
        self.related.push((span, label.into()));
        self
    }
}

/// Every problem found in one file.
#[derive(Debug)]
pub struct Diagnostics {
    pub path: PathBuf,
    pub source: Arc<String>,
    pub problems: Vec<Problem>,
}

/// One problem as a miette diagnostic, with the file's text attached.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ProblemReport {
    message: String,
    source_code: NamedSource<Arc<String>>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
}

impl Diagnostic for ProblemReport {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source_code)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
}

/// A problem in the shape editors and CI read (`--format json`).
#[derive(Debug, Serialize)]
pub struct JsonProblem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub severity: &'static str,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostics {
    pub fn new(path: &Path, source: Arc<String>, problems: Vec<Problem>) -> Diagnostics {
        Diagnostics {
            path: path.to_path_buf(),
            source,
            problems,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems as miette diagnostics, in source order.
    pub fn reports(&self) -> Vec<ProblemReport> {
        let name = self.path.display().to_string();
        self.sorted()
            .map(|p| {
                let mut labels = vec![LabeledSpan::new_primary_with_span(
                    Some(p.label.clone()),
                    p.span.clone(),
                )];
                labels.extend(p.related.iter().map(|(span, label)| {
                    LabeledSpan::new_with_span(Some(label.clone()), span.clone())
                }));
                ProblemReport {
                    message: p.message.clone(),
                    source_code: NamedSource::new(name.clone(), Arc::clone(&self.source))
                        .with_language("yaml"),
                    labels,
                    help: p.help.clone(),
                }
            })
            .collect()
    }

    /// Human rendering: each problem with its snippet; plain (no colour) when `color` is false.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        for report in self.reports() {
            let mut one = String::new();
            if handler.render_report(&mut one, &report).is_err() {
                one = format!("error: {report}\n");
            }
            out.push_str(&one);
            out.push('\n');
        }
        out
    }

    pub fn to_json(&self) -> Vec<JsonProblem> {
        let index = LineIndex::new(&self.source);
        let file = self.path.display().to_string();
        self.sorted()
            .map(|p| {
                let (line, column) = index.position(p.span.start);
                let (end_line, end_column) = index.position(p.span.end);
                JsonProblem {
                    file: file.clone(),
                    line,
                    column,
                    end_line,
                    end_column,
                    severity: "error",
                    message: p.message.clone(),
                    help: p.help.clone(),
                }
            })
            .collect()
    }

    fn sorted(&self) -> impl Iterator<Item = &Problem> {
        let mut v: Vec<&Problem> = self.problems.iter().collect();
        v.sort_by_key(|p| (p.span.start, p.span.end));
        v.into_iter()
    }
}

/// Whether to colour output: a terminal, and `NO_COLOR` unset.
pub fn use_color(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// "did you mean `x`?" for a misspelt key or value: the closest candidate within two edits.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(&input.to_lowercase(), c), c))
        .filter(|&(d, c)| d <= 2.min(c.len() / 2).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["prompt", "seconds", "size", "variants"];
        assert_eq!(did_you_mean("promt", keys), Some("prompt"));
        assert_eq!(did_you_mean("second", keys), Some("seconds"));
        assert_eq!(did_you_mean("Variants", keys), Some("variants"));
        assert_eq!(did_you_mean("colour", keys), None);
    }

    #[test]
    fn json_has_line_and_column() {
        let src = Arc::new("a: 1\nsize: 1x1\n".to_string());
        let d = Diagnostics::new(
            Path::new("m.yaml"),
            src,
            vec![Problem::new(11..14, "bad").help("fix it")],
        );
        let j = d.to_json();
        assert_eq!((j[0].line, j[0].column, j[0].end_column), (2, 7, 10));
        let text = d.render(false);
        assert!(text.contains("m.yaml:2:7"), "{text}");
        assert!(text.contains("fix it"), "{text}");
    }
}
