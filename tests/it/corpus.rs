//! The manifest corpus under `schemas/examples/`: every file is judged by the committed
//! JSON Schema and by `shotlist::manifest::parse`, and the two must agree.
//!
//! Each invalid file breaks one rule and says so in its header:
//!
//! ```yaml
//! # breaks: <the rule>
//! # expect: <part of the message shotlist prints>
//! # at: LINE:COLUMN
//! # schema-cannot-express: <why>   (optional)
//! ```
//!
//! A file with `schema-cannot-express` breaks a rule the schema's description lists as
//! beyond JSON Schema: the schema must accept it and shotlist must reject it, so the list of
//! inexpressible rules is tested rather than skipped.

use std::path::{Path, PathBuf};

use serde_json::Value;
use shotlist::manifest::{self, LoadError};

/// Invalid files the corpus must hold at least.
const MIN_INVALID: usize = 30;

const REQUIRED_INVALID: &[&str] = &[
    "unsupported-size",
    "seconds-over-20",
    "seconds-zero",
    "variants-1080p-over-1",
    "variants-720p-over-2",
    "variants-480-over-4",
    "prompt-empty",
    "prompt-over-4000",
    "unknown-top-key",
    "unknown-shot-key",
    "wrong-type-seconds-string",
    "seconds-float",
    "id-with-slash",
    "id-dotdot",
    "id-empty",
    "id-too-long",
    "missing-version",
    "version-2",
    "missing-shots",
    "shots-empty",
    "shot-missing-id",
    "shot-missing-prompt",
    "prompt-and-prompt-file",
    "unknown-api",
    "output-absolute",
    "output-parent",
    "azure-missing-size",
    "openai-seconds-5",
    "openai-size-azure-only",
    "openai-pro-size-with-sora-2",
    "openai-prompt-over-32000",
    "defaults-unknown-key",
    "null-value",
    "tags-not-list",
    "duplicate-ids",
    "malformed-yaml",
    "alias-bomb",
];

const REQUIRED_VALID: &[&str] = &[
    "minimal",
    "seconds-1",
    "seconds-20",
    "prompt-4000-azure",
    "prompt-32000-openai",
    "variants-4-at-480x854",
    "variants-2-at-1280x720",
    "variants-1-at-1920x1080",
    "azure-every-size",
    "openai-every-size",
    "openai-sora-2-pro",
    "defaults-style-tags",
    "prompt-file",
];

/// Rules the schema's description says JSON Schema cannot express, each of which must be
/// exercised by at least one `schema-cannot-express` file.
const INEXPRESSIBLE: &[&str] = &[
    "duplicate-ids",
    "prompt-file-missing",
    "prompt-with-style-over-4000",
    "variants-from-defaults",
    "size-from-defaults",
    "openai-pro-size-from-defaults",
    "openai-model-from-defaults",
    "seconds-whole-decimal",
];

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The `.yaml` files of `schemas/examples/<kind>/`, sorted; panics when there are none.
fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = repo(&format!("schemas/examples/{kind}"));
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus folder {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable folder entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "corpus folder {} has no .yaml files",
        dir.display()
    );
    files
}

fn stem(path: &Path) -> &str {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("utf-8 name")
}

/// What an invalid file's header promises.
#[derive(Debug, Default)]
struct Header {
    breaks: Option<String>,
    expect: Option<String>,
    at: Option<(usize, usize)>,
    cannot_express: Option<String>,
}

fn header(text: &str) -> Header {
    let mut h = Header::default();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        let line = line.trim_start_matches('#').trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match key {
            "breaks" => h.breaks = Some(value),
            "expect" => h.expect = Some(value),
            "schema-cannot-express" => h.cannot_express = Some(value),
            "at" => {
                let (l, c) = value.split_once(':').expect("`# at: LINE:COLUMN`");
                h.at = Some((
                    l.trim().parse().expect("line number"),
                    c.trim().parse().expect("column number"),
                ));
            }
            _ => {}
        }
    }
    h
}

/// The committed schema's verdict: `Err` with the reasons when the file is invalid, which
/// includes YAML that cannot be read into JSON at all.
fn schema_verdict(validator: &jsonschema::Validator, text: &str) -> Result<(), Vec<String>> {
    let instance: Value = serde_saphyr::from_str(text)
        .map_err(|e| vec![format!("YAML not readable as JSON: {e}")])?;
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{e} (at `{}`)", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// One diagnostic as `(line, column, message)`.
type Found = (usize, usize, String);

/// shotlist's verdict, through the library.
fn shotlist_verdict(path: &Path, text: &str) -> Result<usize, Vec<Found>> {
    match manifest::parse(path, text.to_string()) {
        Ok(sb) => Ok(sb.shots.len()),
        Err(LoadError::Invalid(d)) => Err(d
            .to_json()
            .into_iter()
            .map(|p| (p.line, p.column, p.message))
            .collect()),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo(shotlist::schema::SCHEMA_PATH))
        .expect("the schema is committed");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

#[test]
fn valid_manifests_pass_both_the_schema_and_shotlist() {
    let validator = validator();
    let files = corpus("valid");
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let schema = schema_verdict(&validator, &text);
        let reader = shotlist_verdict(path, &text);
        if schema.is_err() || reader.is_err() {
            failures.push(format!(
                "{}: schema {schema:?}, shotlist {reader:?}",
                stem(path)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "valid files refused:\n{}",
        failures.join("\n")
    );
    let names: Vec<&str> = files.iter().map(|p| stem(p)).collect();
    for name in REQUIRED_VALID {
        assert!(names.contains(name), "valid/{name}.yaml is missing");
    }
}

#[test]
fn invalid_manifests_fail_both_at_the_promised_place() {
    let validator = validator();
    let files = corpus("invalid");
    assert!(
        files.len() >= MIN_INVALID,
        "only {} invalid files, want at least {MIN_INVALID}",
        files.len()
    );
    let mut failures = Vec::new();
    let mut inexpressible = Vec::new();
    for path in &files {
        let name = stem(path);
        let text = std::fs::read_to_string(path).unwrap();
        let h = header(&text);
        let (Some(_), Some(expect), Some((line, column))) = (&h.breaks, &h.expect, h.at) else {
            failures.push(format!(
                "{name}: header needs `# breaks:`, `# expect:` and `# at:` lines, found {h:?}"
            ));
            continue;
        };
        let schema = schema_verdict(&validator, &text);
        match (&h.cannot_express, &schema) {
            (None, Ok(())) => failures.push(format!("{name}: the schema accepts it")),
            (Some(why), Err(errors)) => failures.push(format!(
                "{name}: marked `schema-cannot-express: {why}` but the schema refuses it: {errors:?}"
            )),
            (Some(_), Ok(())) => inexpressible.push(name),
            (None, Err(_)) => {}
        }
        match shotlist_verdict(path, &text) {
            Ok(n) => failures.push(format!("{name}: shotlist accepts it ({n} shots)")),
            Err(found) => {
                if !found
                    .iter()
                    .any(|(l, c, m)| (*l, *c) == (line, column) && m.contains(expect.as_str()))
                {
                    failures.push(format!(
                        "{name}: no `{expect}` at {line}:{column}; shotlist said {found:?}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid files disagree:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    let names: Vec<&str> = files.iter().map(|p| stem(p)).collect();
    for name in REQUIRED_INVALID {
        assert!(names.contains(name), "invalid/{name}.yaml is missing");
    }
    for name in INEXPRESSIBLE {
        assert!(
            inexpressible.contains(name),
            "invalid/{name}.yaml must exist and carry `# schema-cannot-express:`"
        );
    }
}

#[test]
fn the_schema_names_what_it_cannot_express() {
    let text = std::fs::read_to_string(repo(shotlist::schema::SCHEMA_PATH)).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let description = schema["description"].as_str().unwrap_or_default();
    for words in [
        "ids must be unique",
        "counts the `style`",
        "come from `defaults`",
        "`prompt_file` must name a readable file",
        "written as a decimal",
    ] {
        assert!(
            description.contains(words),
            "schema description lost `{words}`: {description}"
        );
    }
}
