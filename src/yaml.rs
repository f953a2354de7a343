//! YAML to a small tree of nodes that remember where they came from.
//!
//! The manifest is read in two steps: this module parses YAML into [`Node`]s carrying
//! byte spans (so every later diagnostic can point at a line and column), and
//! `manifest.rs` walks the tree, collecting every problem instead of stopping at the
//! first. Parsing is bounded: aliases and anchors are budgeted, so an alias bomb is
//! refused in milliseconds and never expanded.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::budget::Budget;
use serde_saphyr::options::AliasLimits;

/// Byte range into the source text.
pub type Span = Range<usize>;

/// A YAML value with the byte range of its source text.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

/// The shapes a YAML value can take (core schema; no custom tags).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Mapping entries in source order.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// The word a diagnostic uses for this shape ("expected a string, found a list").
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a decimal number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The value of `key`, when this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A YAML syntax error (or a refused alias bomb), with where it happened.
#[derive(Debug)]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
}

/// Limits that keep hostile input cheap: generous for real storyboards (100,000 shots
/// parse), tiny for alias expansion, which a manifest never needs much of.
pub(crate) fn options() -> serde_saphyr::Options {
    let mut budget = Budget::default();
    budget.max_events = 4_000_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_recorded_anchor_events = 20_000;
    budget.max_depth = 64;
    budget.max_nodes = 4_000_000;
    let mut alias_limits = AliasLimits::default();
    alias_limits.max_total_replayed_events = 20_000;
    alias_limits.max_replay_stack_depth = 16;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits = alias_limits;
    options.with_snippet = false;
    options.strict_booleans = true;
    options
}

/// Parses one YAML document into a [`Node`] tree. An empty document is `Null`.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    if source.trim().is_empty() {
        return Ok(Node {
            value: Value::Null,
            span: 0..0,
        });
    }
    // Repeated keys reach the reader, which reports both places in its own words.
    let mut options = options();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    match serde_saphyr::from_str_with_options::<Spanned>(source, options) {
        Ok(node) => Ok(node.0),
        Err(err) => {
            let span = error_span(&err, source);
            let message = err.without_snippet().to_string();
            Err(SyntaxError {
                message: clean_message(&message),
                span: clamp(span, source.len()),
            })
        }
    }
}

/// Where a serde-saphyr error points, as a byte range (from its span when it has byte
/// offsets, else from its line and column).
pub fn error_span(err: &serde_saphyr::Error, source: &str) -> Span {
    let Some(loc) = err.location() else {
        return 0..0;
    };
    let s = loc.span();
    if let Some(start) = s.byte_offset() {
        let start = start as usize;
        return clamp(
            start..start + s.byte_len().unwrap_or(0) as usize,
            source.len(),
        );
    }
    let start = LineIndex::new(source).offset(loc.line() as usize, loc.column() as usize);
    start..start
}

/// serde-saphyr appends " at line X column Y" to some messages; we show location ourselves.
pub fn clean_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    let cut = first.find(" at line ").map_or(first, |i| &first[..i]);
    let cut = cut.trim_end_matches(':').trim();
    let mut out = cut.to_string();
    if let Some(c) = out.get(0..1) {
        let lower = c.to_lowercase();
        out.replace_range(0..1, &lower);
    }
    out
}

fn clamp(span: Span, len: usize) -> Span {
    let start = span.start.min(len);
    start..span.end.clamp(start, len)
}

/// A node read through serde-saphyr's span wrapper.
struct Spanned(Node);

impl<'de> Deserialize<'de> for Spanned {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let inner = serde_saphyr::Spanned::<ValueOnly>::deserialize(deserializer)?;
        let span = inner.referenced.span();
        let start = span.byte_offset().unwrap_or(0) as usize;
        let len = span.byte_len().unwrap_or(0) as usize;
        Ok(Spanned(Node {
            value: inner.value.0,
            span: start..start + len,
        }))
    }
}

struct ValueOnly(Value);

impl<'de> Deserialize<'de> for ValueOnly {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor).map(ValueOnly)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Value, E> {
        Err(E::custom("binary values are not supported"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Spanned(node)) = seq.next_element()? {
            items.push(node);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(Spanned(key)) = map.next_key()? {
            let Spanned(value) = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// Maps byte offsets to 1-based line and column (columns count characters).
pub struct LineIndex<'a> {
    source: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(source: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            source,
            line_starts,
        }
    }

    /// Byte offset of a 1-based (line, column); clamped to the text.
    pub fn offset(&self, line: usize, column: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.source.len();
        };
        let rest = &self.source[start..];
        let end_of_line = rest.find('\n').unwrap_or(rest.len());
        rest[..end_of_line]
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(start + end_of_line, |(i, _)| start + i)
    }

    /// 1-based (line, column) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self
            .source
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line + 1, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_values() {
        let src = "a: 1\nb:\n  - x\n  - \"y z\"\n";
        let node = parse(src).unwrap();
        let Value::Map(entries) = node.value else {
            panic!("map")
        };
        assert_eq!(&src[entries[0].1.span.clone()], "1");
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("seq")
        };
        assert_eq!(&src[items[0].span.clone()], "x");
        assert_eq!(items[1].as_str(), Some("y z"));
        assert_eq!(&src[entries[1].0.span.clone()], "b");
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            src.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let started = std::time::Instant::now();
        let err = parse(&src).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(!err.message.is_empty());
    }

    #[test]
    fn syntax_error_has_location() {
        let src = "a: 1\nb: [unclosed\n";
        let err = parse(src).unwrap_err();
        let (line, _) = LineIndex::new(src).position(err.span.start);
        assert!(line >= 2, "{err:?}");
    }

    #[test]
    fn line_index_counts_characters() {
        let idx = LineIndex::new("ab\nçd: x\n");
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(3), (2, 1));
        assert_eq!(idx.position(8), (2, 5));
    }
}
