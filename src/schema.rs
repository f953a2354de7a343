//! The JSON Schema of the manifest, generated from Rust types plus the limits tables.
//!
//! The types below exist to describe the format to editors (through
//! `# yaml-language-server: $schema=...`); `manifest.rs` does the real reading with
//! located diagnostics. A test keeps the two in step (same keys), another keeps the
//! committed `schemas/shotlist.schema.json` in step with this module.

use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::{Value, json};

use crate::limits::{Api, ApiLimits, SecondsRule};
use crate::manifest::MAX_ID_LEN;

/// Where the committed schema lives, relative to the repository root.
pub const SCHEMA_PATH: &str = "schemas/shotlist.schema.json";

const NOT_EXPRESSIBLE: &str = "Rules JSON Schema cannot express, which `shotlist validate` also checks: \
shot ids must be unique and no two shots may write the same file (variant N of `ID` is `ID-N.mp4`); the prompt limit counts the `style` appended to it; the per-size variant limit \
and the `sora-2-pro`-only sizes also apply when `size`, `variants` or `model` come from `defaults`; \
`prompt_file` must name a readable file; a whole number written as a decimal (`seconds: 5.0`) is refused, \
though JSON Schema's `integer` accepts it.";

/// A shotlist manifest: a storyboard of video shots to render.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields, title = "shotlist manifest")]
#[allow(dead_code)]
struct Manifest {
    /// Format version. Always 1.
    #[schemars(range(min = 1, max = 1))]
    version: u32,
    /// Which service API the shots are for; decides the limits. Default: `azure-jobs`.
    api: Option<Api>,
    /// Folder for the videos, relative to the manifest, inside its folder. Default: `renders`.
    #[schemars(regex(pattern = r"^(?!/)(?!.*(^|/)\.\.(/|$))(?!\s*$).+$"))]
    output: Option<String>,
    /// What one `render` may spend, in the models' currency (USD in the catalogue).
    budget: Option<Budget>,
    /// A shared render cache that a team and its CI read and publish renders to:
    /// `s3://BUCKET/PREFIX`, `az://CONTAINER/PREFIX`, `gs://BUCKET/PREFIX` or
    /// `file:///PATH`. No credential in it: each cloud's usual environment gives them.
    /// `render --cache` and `SHOTLIST_CACHE` win over it.
    #[schemars(regex(
        pattern = r"^((s3|az|azure|gs)://[^/?#@\s]+(/[^?#\s]*)?|file:///[^?#\s]*)$"
    ))]
    cache: Option<String>,
    /// Values for every shot that does not set its own.
    defaults: Option<Defaults>,
    /// The shots, rendered in any order; each one's `id` names its output file.
    #[schemars(length(min = 1))]
    shots: Vec<ShotEntry>,
}

/// What one `render` may spend.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Budget {
    /// The most one run may spend: it refuses before any request when its estimate is
    /// higher, and starts no job that would pass it (`render --max-cost` likewise; the
    /// lower of the two wins).
    #[schemars(range(min = 0))]
    max_per_run: f64,
}

/// Values for every shot that does not set its own.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct Defaults {
    /// Model, or the Azure deployment name. API default: `sora` (azure-jobs), `sora-2` (openai-videos).
    #[schemars(regex(pattern = r"\S"))]
    model: Option<String>,
    /// Frame size, `WIDTHxHEIGHT`.
    size: Option<String>,
    /// Duration in seconds. API default: 5 (azure-jobs), 4 (openai-videos).
    seconds: Option<u32>,
    /// How many takes of each shot. Default 1.
    #[schemars(range(min = 1))]
    variants: Option<u32>,
    /// Text appended (on a new line) to every prompt, e.g. a look shared by the whole film.
    /// A shot's own `style` replaces it; `style: ''` turns it off.
    style: Option<String>,
}

/// One shot.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct ShotEntry {
    /// Unique name of the shot; names its files (`ID.mp4`, `ID-2.mp4`, ...).
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    id: String,
    /// What the shot shows: subject, action, camera, light.
    #[schemars(regex(pattern = r"\S"))]
    prompt: Option<String>,
    /// A file holding the prompt, relative to the manifest and inside its folder
    /// (instead of `prompt`).
    #[schemars(regex(pattern = r"^(?!/)(?!.*(^|/)\.\.(/|$))(?!\s*$).+$"))]
    prompt_file: Option<String>,
    /// Frame size, `WIDTHxHEIGHT`.
    size: Option<String>,
    /// Duration in seconds.
    seconds: Option<u32>,
    /// How many takes. Default 1.
    #[schemars(range(min = 1))]
    variants: Option<u32>,
    /// Model, or the Azure deployment name.
    #[schemars(regex(pattern = r"\S"))]
    model: Option<String>,
    /// Replaces `defaults.style` for this shot; `''` for none.
    style: Option<String>,
    /// Labels to select shots with `--tag`.
    tags: Option<Vec<Tag>>,
    /// The model's own inputs (see `shotlist models`), e.g. `{seed: 42}`: numbers,
    /// booleans or strings, checked against the model's catalogue entry.
    params: Option<std::collections::BTreeMap<String, ParamValue>>,
    /// The video's first frame: an image file inside the manifest's folder, or a frame of
    /// another shot (the shot then renders after it, and again when it changes).
    image: Option<ImageInput>,
    /// The video's last frame, where the model takes one.
    last_frame: Option<ImageInput>,
    /// Images of a character, a place or a style to keep to, where the model takes them.
    references: Option<Vec<ImageInput>>,
    /// The take that goes to the edit (default 1); never re-renders anything.
    #[schemars(range(min = 1))]
    pick: Option<u32>,
}

/// An image: a file of the board (PNG, JPEG or WebP), or a frame of another shot.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(untagged)]
enum ImageInput {
    /// A path relative to the manifest, inside its folder.
    File(#[schemars(regex(pattern = r"^(?!/)(?!.*(^|/)\.\.(/|$))(?!\s*$).+$"))] String),
    Frame(FrameInput),
}

/// A frame of another shot's video.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct FrameInput {
    /// The id of the shot.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    shot: String,
    /// Which of its takes. Default 1.
    #[schemars(range(min = 1))]
    take: Option<u32>,
    /// `first`, `last` (the default) or a time in seconds.
    frame: Option<FrameAt>,
}

/// Which frame.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(untagged)]
enum FrameAt {
    Named(FrameName),
    Seconds(#[schemars(range(min = 0))] f64),
}

#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
enum FrameName {
    First,
    Last,
}

/// A model parameter's value.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(untagged)]
enum ParamValue {
    Number(f64),
    Boolean(bool),
    Text(String),
}

/// A label to select shots with.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct Tag(#[schemars(regex(pattern = r"\S"))] String);

/// The manifest's JSON Schema (draft 2020-12), with every limit of both APIs.
pub fn manifest_schema() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<Manifest>();
    let mut root = serde_json::to_value(schema).expect("schemas serialize");
    drop_null_types(&mut root);
    const { assert!(MAX_ID_LEN == 64, "update the id pattern") };
    let obj = root.as_object_mut().expect("root is an object");
    obj.insert(
        "$id".into(),
        json!("https://shotlist.dev/schemas/shotlist.schema.json"),
    );
    let description = format!(
        "{} {NOT_EXPRESSIBLE}",
        obj.get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    obj.insert("description".into(), json!(description.trim()));
    if let Some(shot) = obj
        .get_mut("$defs")
        .and_then(|d| d.get_mut("ShotEntry"))
        .and_then(Value::as_object_mut)
    {
        shot.insert(
            "oneOf".into(),
            json!([{ "required": ["prompt"] }, { "required": ["prompt_file"] }]),
        );
    }
    // `api` absent means azure-jobs, so azure-jobs is the `else` branch.
    let openai = Api::OpenaiVideos.limits();
    let azure = Api::AzureJobs.limits();
    obj.insert(
        "allOf".into(),
        json!([{
            "if": { "properties": { "api": { "const": "openai-videos" } }, "required": ["api"] },
            "then": api_rules(openai),
            "else": api_rules(azure),
        }]),
    );
    root
}

/// Optional keys are absent, never null: the reader refuses `key: ~`, so the schema must
/// too. schemars writes `Option<T>` as `[T, "null"]`; keep only `T`.
fn drop_null_types(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(options)) = map.get_mut("anyOf") {
                options.retain(|o| o.get("type").is_none_or(|t| t != "null"));
                if options.len() == 1
                    && let Value::Object(only) = options.remove(0)
                {
                    map.remove("anyOf");
                    map.extend(only);
                }
            }
            map.values_mut().for_each(drop_null_types);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_types),
        _ => {}
    }
}

/// The rules of one API, applied to `defaults` and to every shot.
fn api_rules(l: &ApiLimits) -> Value {
    let sizes: Vec<String> = l.sizes.iter().map(|r| r.size.to_string()).collect();
    let seconds = match &l.seconds {
        SecondsRule::Range { min, max } => json!({ "minimum": min, "maximum": max }),
        SecondsRule::OneOf(values) => json!({ "enum": values }),
    };
    let mut conditions = Vec::new();
    let mut by_max: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    for r in &l.sizes {
        by_max
            .entry(r.max_variants)
            .or_default()
            .push(r.size.to_string());
    }
    for (max, sizes) in &by_max {
        if *max < l.max_variants_any_size() {
            conditions.push(json!({
                "if": { "properties": { "size": { "enum": sizes } }, "required": ["size", "variants"] },
                "then": { "properties": { "variants": { "maximum": max } } },
            }));
        }
    }
    // Sizes only some catalogue models take: the others (and their dated snapshots)
    // may not ask for them. Names the catalogue does not know are not second-guessed.
    let mut by_takers: std::collections::BTreeMap<&[String], Vec<String>> = Default::default();
    for r in l.sizes.iter().filter(|r| !r.only_models.is_empty()) {
        by_takers
            .entry(&r.only_models)
            .or_default()
            .push(r.size.to_string());
    }
    let catalogue = crate::catalogue::Catalogue::builtin();
    let mut restricted: Vec<String> = Vec::new();
    for (takers, sizes) in &by_takers {
        let others: Vec<String> = catalogue
            .models_of(l.api)
            .filter(|m| !takers.contains(&m.id))
            .map(|m| regex_escape(&m.id))
            .collect();
        if others.is_empty() {
            continue;
        }
        conditions.push(json!({
            "if": {
                "properties": {
                    "size": { "enum": sizes },
                    "model": { "pattern": format!("^({})(-[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})?$", others.join("|")) },
                },
                "required": ["size", "model"],
            },
            "then": false,
        }));
        if !takers.contains(&l.default_model) {
            restricted.extend(sizes.iter().cloned());
        }
    }
    let common = |extra: Value| {
        let mut props = json!({
            "size": { "enum": sizes },
            "seconds": seconds,
            "variants": { "maximum": l.max_variants_any_size() },
        });
        if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        with_all_of(json!({ "properties": props }), &conditions)
    };
    // An API without a default size needs one in `defaults` or in every shot.
    let mut root_rules = Vec::new();
    if l.default_size.is_none() {
        root_rules.push(json!({
            "if": { "properties": { "defaults": { "required": ["size"] } }, "required": ["defaults"] },
            "else": { "properties": { "shots": { "items": { "required": ["size"] } } } },
        }));
    }
    // A shot with a pro-only size and no model gets `defaults.model`, else the API's
    // default model; when that default cannot use the size, the shot must name a model.
    if !restricted.is_empty() {
        let pro = &restricted;
        root_rules.push(json!({
            "if": { "properties": { "defaults": { "required": ["model"] } }, "required": ["defaults"] },
            "else": { "properties": { "shots": { "items": {
                "if": { "properties": { "size": { "enum": pro } }, "required": ["size"] },
                "then": { "required": ["model"] },
            } } } },
        }));
    }
    with_all_of(
        json!({
            "properties": {
                "defaults": common(json!({})),
                "shots": { "items": common(json!({ "prompt": { "maxLength": l.prompt_max_chars } })) },
            }
        }),
        &root_rules,
    )
}

/// `text` as a literal inside a regular expression.
fn regex_escape(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

/// `schema` with `allOf: subschemas`; none when there are none (`allOf: []` is not a valid schema).
fn with_all_of(mut schema: Value, subschemas: &[Value]) -> Value {
    if !subschemas.is_empty() {
        schema["allOf"] = json!(subschemas);
    }
    schema
}

/// The schema as committed: pretty JSON with a trailing newline.
pub fn manifest_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&manifest_schema()).expect("schemas serialize");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{DEFAULTS_KEYS, SHOT_KEYS, TOP_KEYS};

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    }

    fn sorted(k: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = k.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn schema_and_reader_know_the_same_keys() {
        let s = manifest_schema();
        assert_eq!(keys(&s), sorted(TOP_KEYS));
        assert_eq!(keys(&s["$defs"]["Defaults"]), sorted(DEFAULTS_KEYS));
        assert_eq!(keys(&s["$defs"]["ShotEntry"]), sorted(SHOT_KEYS));
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    }

    #[test]
    fn schema_is_valid_against_its_meta_schema() {
        let s = manifest_schema();
        if let Err(e) = jsonschema::meta::validate(&s) {
            panic!("{e} at `{}`", e.instance_path());
        }
        jsonschema::validator_for(&s).expect("the schema compiles");
    }
}
