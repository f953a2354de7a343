//! The manifest: what a storyboard author writes, read into validated [`Shot`]s.
//!
//! Reading never stops at the first problem: every problem is collected with its span
//! (see `diagnostic.rs`) so one `shotlist validate` run shows them all. Limits come from
//! `limits.rs`; this module holds no size, duration or count of its own. It never touches
//! the network or the output folder.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::catalogue::{BoardModels, Catalogue, Model};
use crate::diagnostic::{Diagnostics, Problem, did_you_mean};
use crate::limits::{Api, ApiLimits, Size};
use crate::shot::{Params, Shot};
use crate::yaml::{self, Node, Span, Value};

/// The file `shotlist` reads when no manifest is named.
pub const DEFAULT_FILE: &str = "shotlist.yaml";
/// The manifest format version this build reads and writes.
pub const FORMAT_VERSION: i64 = 1;
/// Output folder when the manifest names none.
pub const DEFAULT_OUTPUT: &str = "renders";

pub(crate) const TOP_KEYS: &[&str] = &[
    "version", "api", "output", "budget", "cache", "defaults", "shots",
];
pub(crate) const DEFAULTS_KEYS: &[&str] = &["model", "size", "seconds", "variants", "style"];
pub(crate) const SHOT_KEYS: &[&str] = &[
    "id",
    "prompt",
    "prompt_file",
    "size",
    "seconds",
    "variants",
    "model",
    "style",
    "tags",
    "params",
    "image",
    "last_frame",
    "references",
    "pick",
];
/// Longest shot id: ids become file names, and file systems cap names at 255 bytes.
pub const MAX_ID_LEN: usize = 64;

/// A validated manifest: the shots with every default applied.
#[derive(Clone, Debug)]
pub struct Storyboard {
    /// The manifest file.
    pub path: PathBuf,
    /// The folder holding the manifest; relative paths are relative to it.
    pub dir: PathBuf,
    pub api: Api,
    /// Output folder, relative to `dir`, never absolute and never with `..`.
    pub output: PathBuf,
    /// `budget.max_per_run`: the most one run may spend (the models' currency).
    pub max_cost_per_run: Option<f64>,
    /// `cache:`: the shared render cache's URL (`--cache` and `SHOTLIST_CACHE` win).
    pub cache: Option<String>,
    pub shots: Vec<Shot>,
    /// The shipped catalogue with the board's own models (`shotlist.models.yaml`).
    pub catalogue: Arc<Catalogue>,
}

impl Storyboard {
    /// The shots in an order where every shot comes after the shots whose frames it
    /// starts from (manifest order otherwise); validation refused cycles.
    pub fn render_order(&self) -> Vec<&Shot> {
        let index: HashMap<&str, usize> = self
            .shots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let mut placed = vec![false; self.shots.len()];
        let mut out = Vec::with_capacity(self.shots.len());
        fn visit<'s>(
            i: usize,
            shots: &'s [Shot],
            index: &HashMap<&str, usize>,
            placed: &mut [bool],
            out: &mut Vec<&'s Shot>,
        ) {
            if placed[i] {
                return;
            }
            placed[i] = true;
            for up in shots[i].upstream() {
                if let Some(&j) = index.get(up) {
                    visit(j, shots, index, placed, out);
                }
            }
            out.push(&shots[i]);
        }
        for i in 0..self.shots.len() {
            visit(i, &self.shots, &index, &mut placed, &mut out);
        }
        out
    }

    pub fn shot(&self, id: &str) -> Option<&Shot> {
        self.shots.iter().find(|s| s.id == id)
    }

    pub fn limits(&self) -> &'static ApiLimits {
        self.api.limits()
    }

    /// The lockfile beside the manifest: same stem, `.lock`.
    pub fn lockfile_path(&self) -> PathBuf {
        lockfile_path_for(&self.path)
    }

    pub fn output_dir(&self) -> PathBuf {
        self.dir.join(&self.output)
    }
}

/// What the top level of a manifest reads into: api, output, budget, cache, shots.
type TopLevel = (Api, PathBuf, Option<f64>, Option<String>, Vec<Shot>);

/// A board's own models, beside its manifest.
pub const MODELS_FILE: &str = "shotlist.models.yaml";

/// `shotlist.yaml` → `shotlist.lock`.
pub fn lockfile_path_for(manifest: &Path) -> PathBuf {
    manifest.with_extension("lock")
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    #[error("failed to read `{}`", path.display())]
    #[diagnostic(help(
        "check the path; with no argument shotlist reads `shotlist.yaml` in the current folder"
    ))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` has {} problem{}", .0.path.display(), .0.problems.len(), if .0.problems.len() == 1 { "" } else { "s" })]
    Invalid(Diagnostics),
}

/// Reads the board's own models (`shotlist.models.yaml` in `dir`), if it has any, into
/// the catalogue; every problem is reported at its line and column in that file.
pub fn board_catalogue(dir: &Path) -> Result<Arc<Catalogue>, LoadError> {
    let builtin = Catalogue::builtin();
    let path = dir.join(MODELS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Arc::new(builtin.clone()));
        }
        Err(source) => return Err(LoadError::Read { path, source }),
    };
    let invalid = |text: String, problems: Vec<Problem>| {
        LoadError::Invalid(Diagnostics::new(&path, Arc::new(text), problems))
    };
    let board: BoardModels = match serde_saphyr::from_str_with_options(&text, yaml::options()) {
        Ok(b) => b,
        Err(e) => {
            let span = yaml::error_span(&e, &text);
            let message = yaml::clean_message(&e.without_snippet().to_string());
            let problem = Problem::new(span, format!("invalid models file: {message}"))
                .label("here")
                .help("each model is an entry like those of `shotlist models --json`");
            return Err(invalid(text, vec![problem]));
        }
    };
    let tree = yaml::parse(&text).ok();
    let mut problems = Vec::new();
    if board.version != crate::catalogue::VERSION {
        let span = tree
            .as_ref()
            .and_then(|t| t.get("version"))
            .map_or(0..0, |n| n.span.clone());
        problems.push(
            Problem::new(
                span,
                format!("unsupported models file `version: {}`", board.version),
            )
            .help(format!("write `version: {}`", crate::catalogue::VERSION)),
        );
    }
    let own = Catalogue {
        version: crate::catalogue::VERSION,
        providers: builtin.providers.clone(),
        models: board.models.clone(),
    };
    for (i, m) in board.models.iter().enumerate() {
        for p in own.model_problems(i, m, false) {
            let item = tree
                .as_ref()
                .and_then(|t| t.get("models"))
                .and_then(|n| match &n.value {
                    Value::Seq(items) => items.get(i),
                    _ => None,
                });
            let span = item
                .and_then(|n| p.field.and_then(|f| n.get(f)).or(Some(n)))
                .map_or(0..0, |n| n.span.clone());
            problems.push(
                Problem::new(span, format!("model `{}`: {}", m.id, p.message))
                    .help("see `shotlist models` for the shape of a model entry"),
            );
        }
    }
    if !problems.is_empty() {
        return Err(invalid(text, problems));
    }
    Ok(Arc::new(builtin.with_models(&board.models)))
}

/// Reads and validates a manifest file.
pub fn load(path: &Path) -> Result<Storyboard, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = utf8_text(path, bytes)?;
    parse(path, text)
}

/// The manifest as text: UTF-8 (a BOM is allowed), else a located problem: the first
/// bad byte's line and column, or plainly that UTF-16 and UTF-32 are not read.
fn utf8_text(path: &Path, bytes: Vec<u8>) -> Result<String, LoadError> {
    let invalid = |text: String, span: Span, message: String, help: &str| {
        let problem = Problem::new(span, message)
            .label("here")
            .help(help.to_owned());
        LoadError::Invalid(Diagnostics::new(path, Arc::new(text), vec![problem]))
    };
    let wide = [
        (&[0x00, 0x00, 0xfe, 0xff][..], "UTF-32"),
        (&[0xff, 0xfe, 0x00, 0x00][..], "UTF-32"),
        (&[0xfe, 0xff][..], "UTF-16"),
        (&[0xff, 0xfe][..], "UTF-16"),
    ];
    if let Some((_, name)) = wide.iter().find(|(bom, _)| bytes.starts_with(bom)) {
        return Err(invalid(
            String::new(),
            0..0,
            format!("the manifest is {name}; shotlist reads UTF-8 only"),
            "save the file as UTF-8 (most editors: \"Save with encoding\")",
        ));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text
            .strip_prefix('\u{feff}')
            .map(str::to_owned)
            .unwrap_or(text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let byte = e.as_bytes()[at];
            Err(invalid(
                text,
                at..at,
                format!(
                    "the manifest is not UTF-8: byte 0x{byte:02x} cannot start a character here"
                ),
                "save the file as UTF-8; shotlist reads no other encoding",
            ))
        }
    }
}

/// Validates manifest text that was read from `path` (used for relative paths and messages).
pub fn parse(path: &Path, text: String) -> Result<Storyboard, LoadError> {
    let source = Arc::new(text);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let catalogue = board_catalogue(&dir)?;
    let mut reader = Reader {
        problems: Vec::new(),
        dir: &dir,
        catalogue: &catalogue,
        edges: Vec::new(),
    };
    let result = match yaml::parse(&source) {
        Ok(root) => reader.manifest(&root),
        Err(err) => {
            reader.problems.push(
                Problem::new(err.span, format!("failed to parse YAML: {}", err.message))
                    .label("here")
                    .help("fix the YAML syntax; anchors and aliases are limited to keep hostile files cheap"),
            );
            None
        }
    };
    match result {
        Some((api, output, budget, cache, shots)) if reader.problems.is_empty() => Ok(Storyboard {
            path: path.to_path_buf(),
            dir,
            api,
            output,
            max_cost_per_run: budget,
            cache,
            shots,
            catalogue: Arc::clone(&catalogue),
        }),
        _ => Err(LoadError::Invalid(Diagnostics::new(
            path,
            source,
            reader.problems,
        ))),
    }
}

/// A value as written, with where it was written.
#[derive(Clone, Debug)]
struct At<T> {
    value: T,
    span: Span,
}

#[derive(Default)]
struct Defaults {
    model: Option<At<String>>,
    size: Option<At<Size>>,
    seconds: Option<At<u32>>,
    variants: Option<At<u32>>,
    style: Option<At<String>>,
}

struct Reader<'a> {
    problems: Vec<Problem>,
    dir: &'a Path,
    catalogue: &'a Catalogue,
    /// Frames of other shots, checked once every shot is read.
    edges: Vec<images::Edge>,
}

mod images;

impl Reader<'_> {
    fn manifest(&mut self, root: &Node) -> Option<TopLevel> {
        let Value::Map(entries) = &root.value else {
            self.problems.push(
                Problem::new(
                    root.span.clone(),
                    format!(
                        "expected the manifest to be a mapping, found {}",
                        root.value.kind()
                    ),
                )
                .help(
                    "start with `version: 1` and a `shots:` list; see `examples/storyboard.yaml`",
                ),
            );
            return None;
        };
        let fields = self.fields(entries, TOP_KEYS, "top level");

        match fields.get("version") {
            None => self.problems.push(
                Problem::new(root.span.start..root.span.start, "missing `version`")
                    .help("add `version: 1` as the first line of the manifest"),
            ),
            Some(node) => match node.value {
                Value::Int(FORMAT_VERSION) => {}
                Value::Int(v) if v > FORMAT_VERSION => self.problems.push(
                    Problem::new(
                        node.span.clone(),
                        format!("manifest version {v} is newer than this shotlist reads"),
                    )
                    .label("newer format")
                    .help(format!(
                        "this shotlist reads version {FORMAT_VERSION}; upgrade shotlist"
                    )),
                ),
                _ => self.problems.push(
                    Problem::new(node.span.clone(), "unsupported manifest `version`")
                        .label("not 1")
                        .help(format!("write `version: {FORMAT_VERSION}`")),
                ),
            },
        }

        let api = match fields.get("api") {
            None => Some(Api::AzureJobs),
            Some(node) => self.string(node).and_then(|s| match Api::parse(&s.value) {
                Some(api) => Some(api),
                None => {
                    let names = Api::ALL.map(Api::as_str);
                    let mut p = Problem::new(s.span.clone(), format!("unknown api `{}`", s.value))
                        .label("unknown api");
                    p = match did_you_mean(&s.value, names) {
                        Some(m) => {
                            p.help(format!("did you mean `{m}`? allowed: {}", names.join(", ")))
                        }
                        None => p.help(format!("allowed: {}", names.join(", "))),
                    };
                    self.problems.push(p);
                    None
                }
            }),
        };

        let output = match fields.get("output") {
            None => Some(PathBuf::from(DEFAULT_OUTPUT)),
            Some(node) => self.string(node).and_then(|s| self.output_dir(s)),
        };

        // Limits depend on the api; with an unknown api, check against the default one
        // so other problems are still reported.
        let limits = &ApiLimits::from_catalogue(self.catalogue, api.unwrap_or(Api::AzureJobs));
        let defaults = match fields.get("defaults") {
            None => Defaults::default(),
            Some(node) => self.defaults(node, limits),
        };

        let shots = match fields.get("shots") {
            None => {
                self.problems.push(
                    Problem::new(root.span.start..root.span.start, "missing `shots`")
                        .help("add a `shots:` list; each shot needs an `id` and a `prompt`"),
                );
                Vec::new()
            }
            Some(node) => self.shots(node, limits, &defaults),
        };
        let budget = match fields.get("budget") {
            None => Some(None),
            Some(node) => self.budget(node).map(Some),
        };
        let cache = match fields.get("cache") {
            None => Some(None),
            Some(node) => self.string(node).and_then(|url| {
                match crate::cache::check_url(&url.value) {
                    Ok(_) => Some(Some(url.value)),
                    Err(message) => {
                        self.problems.push(
                            Problem::new(url.span.clone(), message)
                                .label("not a cache URL")
                                .help("write `cache: s3://BUCKET/PREFIX` (or az://, gs://, file:///); credentials come from the environment"),
                        );
                        None
                    }
                }
            }),
        };
        Some((api?, output?, budget?, cache?, shots))
    }

    /// A provider that takes no model the catalogue does not know (fal, Replicate,
    /// OpenRouter: size and length are each model's own fields) refuses other names.
    fn known_model(&mut self, api: Api, model: &At<String>) {
        if self.catalogue.provider(api).any_model_name
            || self.catalogue.find(api, &model.value).is_some()
        {
            return;
        }
        let ids: Vec<&str> = self
            .catalogue
            .models_of(api)
            .map(|m| m.id.as_str())
            .collect();
        let help = match did_you_mean(&model.value, ids.iter().copied()) {
            Some(m) => format!(
                "did you mean `{m}`? Or add `{}` to `{MODELS_FILE}` with its sizes' `fields` and its `seconds_field`",
                model.value
            ),
            None => format!(
                "`{api}` models: {} (`shotlist models --api {api}`); or add `{}` to `{MODELS_FILE}` with its sizes' `fields` and its `seconds_field`",
                ids.join(", "),
                model.value
            ),
        };
        self.problems.push(
            Problem::new(
                model.span.clone(),
                format!("`{api}` has no model `{}` in the catalogue", model.value),
            )
            .label("unknown model")
            .help(help),
        );
    }

    /// `budget: {max_per_run: AMOUNT}`: the most one run may spend, in the models'
    /// currency.
    fn budget(&mut self, node: &Node) -> Option<f64> {
        let Value::Map(entries) = &node.value else {
            self.type_error(
                node,
                "a mapping",
                "write `budget: {max_per_run: 20}`".into(),
            );
            return None;
        };
        let f = self.fields(entries, &["max_per_run"], "budget");
        let Some(n) = f.get("max_per_run") else {
            self.problems.push(
                Problem::new(node.span.clone(), "`budget` has no `max_per_run`")
                    .help("write `budget: {max_per_run: 20}` (the most one run may spend)"),
            );
            return None;
        };
        let amount = match n.value {
            Value::Int(i) => i as f64,
            Value::Float(x) => x,
            _ => {
                self.type_error(
                    n,
                    "an amount",
                    "write an amount such as `20` or `7.5`".into(),
                );
                return None;
            }
        };
        if !(amount.is_finite() && amount >= 0.0) {
            self.problems.push(
                Problem::new(
                    n.span.clone(),
                    format!("`max_per_run` must be 0 or more, found {amount}"),
                )
                .label("not an amount")
                .help("write the most one run may spend, e.g. `20`"),
            );
            return None;
        }
        Some(amount)
    }

    /// Looks up known keys in a mapping; reports unknown and repeated keys.
    fn fields<'n>(
        &mut self,
        entries: &'n [(Node, Node)],
        known: &[&'static str],
        place: &str,
    ) -> HashMap<&'static str, &'n Node> {
        let mut found: HashMap<&'static str, &'n Node> = HashMap::new();
        let mut key_spans: HashMap<&'static str, Span> = HashMap::new();
        for (key, value) in entries {
            let Some(name) = key.as_str() else {
                self.problems.push(
                    Problem::new(
                        key.span.clone(),
                        format!("expected a key name, found {}", key.value.kind()),
                    )
                    .help(format!("keys allowed at the {place}: {}", known.join(", "))),
                );
                continue;
            };
            match known.iter().find(|k| **k == name) {
                Some(k) => {
                    if let Some(first) = key_spans.get(k) {
                        self.problems.push(
                            Problem::new(key.span.clone(), format!("`{name}` is given twice"))
                                .label("second time")
                                .related(first.clone(), "first time")
                                .help("keep one of them"),
                        );
                    } else {
                        key_spans.insert(k, key.span.clone());
                        found.insert(k, value);
                    }
                }
                None => {
                    let p = Problem::new(
                        key.span.clone(),
                        format!("unknown key `{name}` at the {place}"),
                    )
                    .label("unknown key");
                    let p = match did_you_mean(name, known.iter().copied()) {
                        Some(m) => p.help(format!("did you mean `{m}`?")),
                        None => p.help(format!("allowed keys: {}", known.join(", "))),
                    };
                    self.problems.push(p);
                }
            }
        }
        found
    }

    fn type_error(&mut self, node: &Node, expected: &str, help: String) {
        self.problems.push(
            Problem::new(
                node.span.clone(),
                format!("expected {expected}, found {}", node.value.kind()),
            )
            .label(format!("not {expected}"))
            .help(help),
        );
    }

    fn string(&mut self, node: &Node) -> Option<At<String>> {
        match &node.value {
            Value::Str(s) => Some(At {
                value: s.clone(),
                span: node.span.clone(),
            }),
            _ => {
                self.type_error(
                    node,
                    "a string",
                    "quote the value if it looks like a number or a boolean".into(),
                );
                None
            }
        }
    }

    fn non_empty_string(&mut self, node: &Node, what: &str) -> Option<At<String>> {
        let s = self.string(node)?;
        if s.value.trim().is_empty() {
            self.problems.push(
                Problem::new(s.span, format!("`{what}` is empty"))
                    .label("empty")
                    .help(format!("give `{what}` a value or remove it")),
            );
            return None;
        }
        Some(s)
    }

    fn uint(&mut self, node: &Node, what: &str, help: &str) -> Option<At<u32>> {
        match node.value {
            Value::Int(v) => match u32::try_from(v) {
                Ok(v) => Some(At {
                    value: v,
                    span: node.span.clone(),
                }),
                Err(_) => {
                    self.problems.push(
                        Problem::new(node.span.clone(), format!("`{what}` is out of range: {v}"))
                            .label("out of range")
                            .help(help.to_string()),
                    );
                    None
                }
            },
            Value::Float(f) => {
                self.problems.push(
                    Problem::new(
                        node.span.clone(),
                        format!("`{what}` must be a whole number, found {f:?}"),
                    )
                    .label("not a whole number")
                    .help(help.to_string()),
                );
                None
            }
            _ => {
                self.type_error(node, "an integer", help.to_string());
                None
            }
        }
    }

    fn output_dir(&mut self, s: At<String>) -> Option<PathBuf> {
        let path = PathBuf::from(&s.value);
        if s.value.trim().is_empty() || !stays_inside(&s.value) {
            self.problems.push(
                Problem::new(
                    s.span,
                    format!(
                        "output folder `{}` is not inside the manifest's folder",
                        s.value
                    ),
                )
                .label("must be a relative path without `..`")
                .help("use a folder below the manifest, e.g. `output: renders`"),
            );
            return None;
        }
        Some(path)
    }

    fn size(&mut self, node: &Node, limits: &ApiLimits) -> Option<At<Size>> {
        let s = self.string(node)?;
        let help = format!("sizes allowed by `{}`: {}", limits.api, limits.sizes_list());
        match Size::parse(&s.value) {
            Some(size) if limits.size_rule(size).is_some() => Some(At {
                value: size,
                span: s.span,
            }),
            Some(size) => {
                self.problems.push(
                    Problem::new(
                        s.span,
                        format!("unsupported size `{size}` for `{}`", limits.api),
                    )
                    .label("unsupported size")
                    .help(help),
                );
                None
            }
            None => {
                self.problems.push(
                    Problem::new(s.span, format!("malformed size `{}`", s.value))
                        .label("not WIDTHxHEIGHT")
                        .help(format!("write WIDTHxHEIGHT; {help}")),
                );
                None
            }
        }
    }

    fn seconds(&mut self, node: &Node, limits: &ApiLimits) -> Option<At<u32>> {
        let help = format!(
            "`{}` allows {} seconds",
            limits.api,
            limits.seconds.describe()
        );
        let s = self.uint(node, "seconds", &help)?;
        if !limits.seconds.allows(s.value) {
            self.problems.push(
                Problem::new(
                    s.span,
                    format!("{} seconds is out of range for `{}`", s.value, limits.api),
                )
                .label("out of range")
                .help(help),
            );
            return None;
        }
        Some(s)
    }

    fn variants(&mut self, node: &Node, limits: &ApiLimits) -> Option<At<u32>> {
        let max = limits.max_variants_any_size();
        let help = format!(
            "`{}` allows 1 to {max} variants (fewer at large sizes)",
            limits.api
        );
        let v = self.uint(node, "variants", &help)?;
        if v.value == 0 || v.value > max {
            self.problems.push(
                Problem::new(v.span, format!("{} variants is out of range", v.value))
                    .label("out of range")
                    .help(help),
            );
            return None;
        }
        Some(v)
    }

    fn defaults(&mut self, node: &Node, limits: &ApiLimits) -> Defaults {
        let Value::Map(entries) = &node.value else {
            self.type_error(
                node,
                "a mapping",
                format!("`defaults` holds any of: {}", DEFAULTS_KEYS.join(", ")),
            );
            return Defaults::default();
        };
        let f = self.fields(entries, DEFAULTS_KEYS, "`defaults`");
        let d = Defaults {
            model: f
                .get("model")
                .and_then(|n| self.non_empty_string(n, "model")),
            size: f.get("size").and_then(|n| self.size(n, limits)),
            seconds: f.get("seconds").and_then(|n| self.seconds(n, limits)),
            variants: f.get("variants").and_then(|n| self.variants(n, limits)),
            style: f.get("style").and_then(|n| self.string(n)),
        };
        if let (Some(size), Some(variants)) = (&d.size, &d.variants) {
            self.variants_for_size(size, variants, "too many", limits);
        }
        if let (Some(size), Some(model)) = (&d.size, &d.model) {
            self.model_for_size(size, model, limits);
        }
        // What every shot inherits is checked once, here, against the model it goes with.
        let model = d.model.clone().unwrap_or(At {
            value: limits.default_model.clone(),
            span: 0..0,
        });
        if d.model.is_some() {
            self.known_model(limits.api, &model);
        }
        if let Some(entry) = self.catalogue.find(limits.api, &model.value) {
            let own = ApiLimits::for_model(self.catalogue, entry);
            self.model_limits(
                &own,
                limits,
                &model,
                d.size.as_ref(),
                d.seconds.as_ref(),
                d.variants.as_ref(),
            );
        }
        d
    }

    fn shots(&mut self, node: &Node, limits: &ApiLimits, defaults: &Defaults) -> Vec<Shot> {
        let Value::Seq(items) = &node.value else {
            self.type_error(
                node,
                "a list",
                "write `shots:` followed by items starting with `- id: ...`".into(),
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.problems.push(
                Problem::new(node.span.clone(), "`shots` is empty")
                    .label("no shots")
                    .help("add at least one shot with an `id` and a `prompt`"),
            );
        }
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut shots = Vec::with_capacity(items.len());
        for item in items {
            if let Some(shot) = self.shot(item, limits, defaults, &mut seen) {
                shots.push(shot);
            }
        }
        self.file_name_clashes(&shots, &seen);
        self.check_graph(&mut shots);
        shots
    }

    /// Two shots must never write the same file: `a` with two variants writes `a-2.mp4`,
    /// which is also the first file of a shot with id `a-2`.
    fn file_name_clashes(&mut self, shots: &[Shot], spans: &HashMap<String, Span>) {
        let mut owners: HashMap<String, (&str, u32)> = HashMap::new();
        for shot in shots {
            for variant in 1..=shot.variants {
                let name = shot.video_file_name(variant);
                match owners.get(&name) {
                    Some(&(other, other_variant)) if other != shot.id => {
                        let (first, second) = (spans[other].clone(), spans[&shot.id].clone());
                        self.problems.push(
                            Problem::new(second, format!("shots `{other}` and `{}` would both write `{name}`", shot.id))
                                .label(format!("variant {variant} writes `{name}`"))
                                .related(first, format!("variant {other_variant} writes `{name}`"))
                                .help("rename one of the shots; variant N of shot `ID` is saved as `ID-N.mp4`"),
                        );
                    }
                    _ => {
                        owners.insert(name, (&shot.id, variant));
                    }
                }
            }
        }
    }

    fn shot(
        &mut self,
        node: &Node,
        limits: &ApiLimits,
        defaults: &Defaults,
        seen: &mut HashMap<String, Span>,
    ) -> Option<Shot> {
        let Value::Map(entries) = &node.value else {
            self.type_error(
                node,
                "a mapping",
                "each shot is a mapping with at least `id` and `prompt`".into(),
            );
            return None;
        };
        let at_shot = node.span.start..node.span.start;
        let f = self.fields(entries, SHOT_KEYS, "shot");

        let id = match f.get("id") {
            None => {
                self.problems
                    .push(Problem::new(at_shot.clone(), "shot has no `id`").help(
                        "add `id: NAME` (letters, digits, `-` and `_`); it names the output file",
                    ));
                None
            }
            Some(n) => self.id(n, seen),
        };

        let prompt = match (f.get("prompt"), f.get("prompt_file")) {
            (Some(_), Some(pf)) => {
                self.problems.push(
                    Problem::new(pf.span.clone(), "shot has both `prompt` and `prompt_file`")
                        .label("second prompt")
                        .help("keep one of them"),
                );
                None
            }
            (Some(p), None) => self.string(p),
            (None, Some(pf)) => self.prompt_file(pf),
            (None, None) => {
                self.problems.push(
                    Problem::new(at_shot.clone(), "shot has no `prompt`")
                        .help("add `prompt: ...` describing the shot, or `prompt_file: PATH`"),
                );
                None
            }
        };

        let model = match f.get("model") {
            Some(n) => self.non_empty_string(n, "model"),
            None => Some(defaults.model.clone().unwrap_or(At {
                value: limits.default_model.to_string(),
                span: at_shot.clone(),
            })),
        };
        // A model the catalogue knows brings its own limits and defaults; other names
        // (deployments, a gateway's names) are held to the API's.
        if let (Some(_), Some(m)) = (f.get("model"), &model) {
            self.known_model(limits.api, m);
        }
        let entry = model
            .as_ref()
            .and_then(|m| self.catalogue.find(limits.api, &m.value));
        let own = entry.map(|entry| ApiLimits::for_model(self.catalogue, entry));
        let own_limits = own.as_ref().unwrap_or(limits);
        let size = match f.get("size") {
            Some(n) => self.size(n, limits),
            None => match (&defaults.size, own_limits.default_size) {
                (Some(d), _) => Some(d.clone()),
                (None, Some(size)) => Some(At {
                    value: size,
                    span: at_shot.clone(),
                }),
                (None, None) => {
                    self.problems
                        .push(
                            Problem::new(at_shot.clone(), "shot has no `size`").help(format!(
                                "add `size:` to the shot or to `defaults`; allowed: {}",
                                limits.sizes_list()
                            )),
                        );
                    None
                }
            },
        };
        let seconds = match f.get("seconds") {
            Some(n) => self.seconds(n, limits),
            None => Some(defaults.seconds.clone().unwrap_or(At {
                value: own_limits.default_seconds,
                span: at_shot.clone(),
            })),
        };
        let variants = match f.get("variants") {
            Some(n) => self.variants(n, limits),
            None => Some(defaults.variants.clone().unwrap_or(At {
                value: own_limits.default_variants,
                span: at_shot.clone(),
            })),
        };
        let style = match f.get("style") {
            Some(n) => self.string(n),
            None => defaults.style.clone(),
        };
        let tags = match f.get("tags") {
            Some(n) => self.tags(n),
            None => Some(Vec::new()),
        };
        let params = match (f.get("params"), &model) {
            (Some(n), Some(model)) => self.params(n, model, entry),
            _ => Some(Params::new()),
        };
        if let (Some(params), Some(entry)) = (&params, entry) {
            for p in entry
                .params
                .iter()
                .filter(|p| p.required && !params.contains_key(&p.name))
            {
                let span = f.get("params").map_or(at_shot.clone(), |n| n.span.clone());
                self.problems.push(
                    Problem::new(
                        span,
                        format!("model `{}` needs the parameter `{}`", entry.id, p.name),
                    )
                    .label("missing parameter")
                    .help(format!(
                        "add `params: {{{}: ...}}`{}",
                        p.name,
                        p.description
                            .as_deref()
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    )),
                );
            }
        }

        // Rules across fields, checked only when each field is itself fine, and not again
        // for a pair that both come from `defaults` (reported there once).
        let inherited = |key: &str, d: bool| !f.contains_key(key) && d;
        let size_inherited = inherited("size", defaults.size.is_some());
        if let (Some(size), Some(variants)) = (&size, &variants)
            && !(size_inherited && inherited("variants", defaults.variants.is_some()))
        {
            let label = if f.contains_key("variants") {
                "too many"
            } else {
                "from `defaults`"
            };
            self.variants_for_size(size, variants, label, limits);
        }
        if let (Some(size), Some(model)) = (&size, &model)
            && !(size_inherited && inherited("model", defaults.model.is_some()))
        {
            self.model_for_size(size, model, limits);
        }
        if let (Some(own), Some(model)) = (&own, &model) {
            // Checked in `defaults` when both the value and the model are inherited.
            let from_defaults = |key: &str, d: bool| inherited(key, d) && !f.contains_key("model");
            self.model_limits(
                own,
                limits,
                model,
                size.as_ref()
                    .filter(|_| !from_defaults("size", defaults.size.is_some())),
                seconds
                    .as_ref()
                    .filter(|_| !from_defaults("seconds", defaults.seconds.is_some())),
                variants
                    .as_ref()
                    .filter(|_| !from_defaults("variants", defaults.variants.is_some())),
            );
        }

        let rules = images::ImageRules {
            model: model.as_ref().map_or("", |m| m.value.as_str()),
            inputs: entry
                .unwrap_or_else(|| self.catalogue.default_model(limits.api))
                .images
                .as_ref(),
            api: limits.api,
        };
        let images = self.images(&f, &at_shot, &rules, size.as_ref().map(|s| s.value));

        let prompt = prompt.and_then(|p| self.final_prompt(p, style.as_ref(), own_limits))?;
        let mut shot = Shot::new(
            id?,
            prompt,
            model?.value,
            size?.value,
            seconds?.value,
            variants?.value,
            tags?,
        );
        shot.params = params?;
        if let Some(n) = f.get("pick") {
            let takes = shot.variants;
            match self.uint(n, "pick", "`pick` is the number of a take, from 1") {
                Some(p) if (1..=takes).contains(&p.value) => shot.pick = p.value,
                Some(p) => self.problems.push(
                    Problem::new(
                        p.span,
                        format!(
                            "`pick: {}`, but the shot has {takes} take{}",
                            p.value,
                            if takes == 1 { "" } else { "s" }
                        ),
                    )
                    .label("no such take")
                    .help(format!("pick a take from 1 to {takes}")),
                ),
                None => {}
            }
        }
        let images = images?;
        shot.images = images.iter().map(|(i, _)| i.clone()).collect();
        self.note_edges(&shot, &images, entry);
        Some(shot)
    }

    fn variants_for_size(
        &mut self,
        size: &At<Size>,
        variants: &At<u32>,
        label: &str,
        limits: &ApiLimits,
    ) {
        let rule = limits
            .size_rule(size.value)
            .expect("size was checked against the table");
        if variants.value <= rule.max_variants {
            return;
        }
        let max = rule.max_variants;
        let mut p = Problem::new(
            variants.span.clone(),
            format!("{} variants is too many at {}", variants.value, size.value),
        )
        .label(label)
        .help(format!(
            "`{}` allows at most {max} variant{} at {}; lower `variants` or pick a smaller size",
            limits.api,
            if max == 1 { "" } else { "s" },
            size.value
        ));
        if size.span != variants.span && !size.span.is_empty() {
            p = p.related(size.span.clone(), "size");
        }
        self.problems.push(p);
    }

    /// A catalogue model's own limits, for what the API's check let through: a size other
    /// models of the API take, a duration or a number of takes this model does not.
    fn model_limits(
        &mut self,
        own: &ApiLimits,
        api: &ApiLimits,
        model: &At<String>,
        size: Option<&At<Size>>,
        seconds: Option<&At<u32>>,
        variants: Option<&At<u32>>,
    ) {
        let name = &model.value;
        let related = |p: Problem| {
            if model.span.is_empty() {
                p
            } else {
                p.related(model.span.clone(), "model")
            }
        };
        let mut size_ok = true;
        if let Some(size) = size
            && own.size_rule(size.value).is_none()
            && !api
                .size_rule(size.value)
                .is_some_and(|r| api.model_excluded(name, r))
        {
            size_ok = false;
            self.problems.push(related(
                Problem::new(
                    size.span.clone(),
                    format!("model `{name}` takes no size {}", size.value),
                )
                .label("not this model's size")
                .help(format!("sizes of `{name}`: {}", own.sizes_list())),
            ));
        }
        if let Some(seconds) = seconds
            && !own.seconds.allows(seconds.value)
            && api.seconds.allows(seconds.value)
        {
            self.problems.push(related(
                Problem::new(
                    seconds.span.clone(),
                    format!("{} seconds is out of range for `{name}`", seconds.value),
                )
                .label("out of range")
                .help(format!(
                    "`{name}` allows {} seconds",
                    own.seconds.describe()
                )),
            ));
        }
        if let (Some(size), Some(seconds)) = (size, seconds)
            && size_ok
            && let Some(max) = own.size_rule(size.value).and_then(|r| r.max_seconds)
            && seconds.value > max
            && own.seconds.allows(seconds.value)
        {
            self.problems.push(related(
                Problem::new(
                    seconds.span.clone(),
                    format!("`{name}` renders at most {max} seconds at {}", size.value),
                )
                .label("too long for this size")
                .help(format!("ask for {max} seconds or fewer, or another size")),
            ));
        }
        if let (Some(size), Some(variants)) = (size, variants)
            && size_ok
            && let Some(rule) = own.size_rule(size.value)
            && variants.value > rule.max_variants
            && api
                .size_rule(size.value)
                .is_some_and(|r| variants.value <= r.max_variants)
        {
            self.problems.push(related(
                Problem::new(
                    variants.span.clone(),
                    format!(
                        "{} variants is too many for `{name}` at {}",
                        variants.value, size.value
                    ),
                )
                .label("too many")
                .help(format!(
                    "`{name}` allows at most {} at {}",
                    rule.max_variants, size.value
                )),
            ));
        }
    }

    fn model_for_size(&mut self, size: &At<Size>, model: &At<String>, limits: &ApiLimits) {
        let rule = limits
            .size_rule(size.value)
            .expect("size was checked against the table");
        if limits.model_excluded(&model.value, rule) {
            let models = rule.only_models.join("` or `");
            let mut p = Problem::new(
                size.span.clone(),
                format!("size {} needs model `{models}`", size.value),
            )
            .label("size of other models")
            .help(format!(
                "use `model: {}` or a size allowed for `{}`",
                rule.only_models[0], model.value
            ));
            if !model.span.is_empty() {
                p = p.related(model.span.clone(), "model");
            }
            self.problems.push(p);
        }
    }

    fn id(&mut self, node: &Node, seen: &mut HashMap<String, Span>) -> Option<String> {
        let id = self.string(node)?;
        let valid = !id.value.is_empty()
            && id.value.len() <= MAX_ID_LEN
            && id
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        // Names Windows reserves for devices: `CON.mp4` cannot be a file there.
        const RESERVED: &[&str] = &[
            "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7",
            "com8", "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
        ];
        if valid && RESERVED.contains(&id.value.to_ascii_lowercase().as_str()) {
            self.problems.push(
                Problem::new(id.span.clone(), format!("shot id `{}` is a reserved file name on Windows", id.value))
                    .label("reserved name")
                    .help("pick another id: CON, PRN, AUX, NUL, COM1-9 and LPT1-9 cannot name files on Windows"),
            );
            return None;
        }
        if !valid {
            self.problems.push(
                Problem::new(id.span.clone(), format!("unsafe shot id `{}`", id.value))
                    .label("not a safe file name")
                    .help(format!("use 1 to {MAX_ID_LEN} letters, digits, `-` and `_`; the id names the output file")),
            );
            return None;
        }
        if let Some(first) = seen.get(&id.value) {
            self.problems.push(
                Problem::new(id.span.clone(), format!("duplicate shot id `{}`", id.value))
                    .label("used again here")
                    .related(first.clone(), "first used here")
                    .help("give every shot its own id"),
            );
            return None;
        }
        seen.insert(id.value.clone(), id.span);
        Some(id.value)
    }

    fn prompt_file(&mut self, node: &Node) -> Option<At<String>> {
        let p = self.non_empty_string(node, "prompt_file")?;
        // Only files inside the manifest's folder, by their real path: a shared manifest
        // must not be able to send, say, `~/.ssh/id_rsa` (or a symlink to it) to a video
        // service as a prompt, nor hang validation on a FIFO or `/dev/zero`.
        let max = crate::limits::Api::max_prompt_file_bytes();
        match crate::board_path::read_text_inside(self.dir, &p.value, max) {
            Ok(text) => Some(At {
                value: text.trim_end().to_string(),
                span: p.span,
            }),
            Err(err) => {
                use crate::board_path::Refused;
                let (message, label, help) = match &err {
                    Refused::NotRelative(_) | Refused::Outside(_) | Refused::Symlink(_) => (
                        format!("prompt file `{}` is not inside the manifest's folder", p.value),
                        "must be a relative path without `..`, and no symlink leading out",
                        "keep prompt files below the manifest, e.g. `prompt_file: prompts/opening.txt`".to_owned(),
                    ),
                    Refused::NotAFile(_) => (
                        format!("prompt file `{}` is not a regular file", p.value),
                        "not a file",
                        "point `prompt_file` at a text file".to_owned(),
                    ),
                    Refused::TooLarge { max, .. } => (
                        format!("prompt file `{}` is larger than {max} bytes", p.value),
                        "too large",
                        "no model takes a prompt this long; shorten the file".to_owned(),
                    ),
                    Refused::Io { cause, .. } => (
                        format!("failed to read prompt file `{}`: {cause}", p.value),
                        "cannot read",
                        "prompt_file is relative to the manifest's folder".to_owned(),
                    ),
                };
                self.problems
                    .push(Problem::new(p.span, message).label(label).help(help));
                None
            }
        }
    }

    /// A shot's `params:`: each one a parameter of the model's catalogue entry, of its type
    /// and range. A model the catalogue does not know cannot have its inputs checked.
    fn params(&mut self, node: &Node, model: &At<String>, entry: Option<&Model>) -> Option<Params> {
        let Value::Map(items) = &node.value else {
            self.type_error(node, "a mapping", "write `params: {seed: 42}`".into());
            return None;
        };
        let Some(entry) = entry else {
            let mut p = Problem::new(
                node.span.clone(),
                format!(
                    "model `{}` is not in the catalogue, so its `params` cannot be checked",
                    model.value
                ),
            )
            .label("unknown model")
            .help(format!(
                "add `{}` with its `params` to `{MODELS_FILE}`, or remove `params`",
                model.value
            ));
            if !model.span.is_empty() {
                p = p.related(model.span.clone(), "model");
            }
            self.problems.push(p);
            return None;
        };
        let mut out = Params::new();
        let mut ok = true;
        for (key, value) in items {
            let Some(name) = key.as_str() else {
                self.type_error(
                    key,
                    "a parameter name",
                    "parameter names are strings".into(),
                );
                ok = false;
                continue;
            };
            let Some(param) = entry.params.iter().find(|p| p.name == name) else {
                let known = entry.params.iter().map(|p| p.name.as_str());
                let help = match did_you_mean(name, known) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None if entry.params.is_empty() => {
                        format!("`{}` takes no parameters", entry.id)
                    }
                    None => format!(
                        "`{}` takes: {}",
                        entry.id,
                        entry
                            .params
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.problems.push(
                    Problem::new(
                        key.span.clone(),
                        format!("model `{}` takes no parameter `{name}`", entry.id),
                    )
                    .label("unknown parameter")
                    .help(help),
                );
                ok = false;
                continue;
            };
            let json = match &value.value {
                Value::Int(i) => serde_json::json!(i),
                Value::Float(f) => serde_json::json!(f),
                Value::Bool(b) => serde_json::json!(b),
                Value::Str(s) => serde_json::json!(s),
                other => {
                    self.problems.push(
                        Problem::new(
                            value.span.clone(),
                            format!("parameter `{name}` is {}", other.kind()),
                        )
                        .label("not a value")
                        .help("a parameter is a number, `true`/`false` or a string"),
                    );
                    ok = false;
                    continue;
                }
            };
            if let Err(message) = param.check(&json) {
                self.problems.push(
                    Problem::new(
                        value.span.clone(),
                        format!("invalid parameter for `{}`: {message}", entry.id),
                    )
                    .label("out of range")
                    .help(
                        param
                            .description
                            .clone()
                            .unwrap_or_else(|| "see `shotlist models`".into()),
                    ),
                );
                ok = false;
                continue;
            }
            out.insert(name.to_owned(), json);
        }
        ok.then_some(out)
    }

    fn tags(&mut self, node: &Node) -> Option<Vec<String>> {
        let Value::Seq(items) = &node.value else {
            self.type_error(node, "a list", "write `tags: [day, exterior]`".into());
            return None;
        };
        let mut out = Vec::new();
        for item in items {
            let t = self.non_empty_string(item, "tag")?;
            out.push(t.value);
        }
        Some(out)
    }

    fn final_prompt(
        &mut self,
        prompt: At<String>,
        style: Option<&At<String>>,
        limits: &ApiLimits,
    ) -> Option<String> {
        let text = compose_prompt(&prompt.value, style.map(|s| s.value.as_str()));
        let chars = text.chars().count();
        if prompt.value.trim().is_empty() {
            self.problems.push(
                Problem::new(prompt.span, "prompt is empty")
                    .label("empty")
                    .help("describe the shot: subject, action, camera, light"),
            );
            return None;
        }
        if chars > limits.prompt_max_chars {
            let with_style = if style.is_some_and(|s| !s.value.trim().is_empty()) {
                " (with `style`)"
            } else {
                ""
            };
            self.problems.push(
                Problem::new(
                    prompt.span,
                    format!(
                        "prompt is {chars} characters{with_style}, over the limit of {}",
                        limits.prompt_max_chars
                    ),
                )
                .label("too long")
                .help(format!(
                    "`{}` accepts at most {} characters; shorten the prompt or the style",
                    limits.api, limits.prompt_max_chars
                )),
            );
            return None;
        }
        Some(text)
    }
}

/// Whether a relative path stays below the folder it is relative to: not absolute, no `..`.
fn stays_inside(path: &str) -> bool {
    !Path::new(path).components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    })
}

/// The prompt sent to the service: the shot's prompt, then the style on a new line.
/// Leading and trailing whitespace is trimmed so reformatting YAML never changes a hash.
pub fn compose_prompt(prompt: &str, style: Option<&str>) -> String {
    let prompt = prompt.trim();
    match style.map(str::trim) {
        Some(style) if !style.is_empty() => format!("{prompt}\n{style}"),
        _ => prompt.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(src: &str) -> Vec<Problem> {
        match parse(Path::new("t.yaml"), src.to_string()) {
            Ok(_) => Vec::new(),
            Err(LoadError::Invalid(d)) => d.problems,
            Err(e) => panic!("{e}"),
        }
    }

    fn at<'a>(src: &'a str, p: &Problem) -> &'a str {
        &src[p.span.clone()]
    }

    #[test]
    fn defaults_apply() {
        let src = "version: 1\ndefaults:\n  size: 480x480\n  seconds: 8\n  style: Pencil sketch.\nshots:\n  - id: a\n    prompt: A cat.\n  - id: b\n    prompt: A dog.\n    seconds: 3\n    style: ''\n";
        let sb = parse(Path::new("dir/m.yaml"), src.into()).unwrap();
        assert_eq!(sb.api, Api::AzureJobs);
        assert_eq!(sb.output, PathBuf::from("renders"));
        assert_eq!(sb.dir, PathBuf::from("dir"));
        let a = &sb.shots[0];
        assert_eq!(
            (a.size, a.seconds, a.variants, a.model.as_str()),
            (Size::new(480, 480), 8, 1, "sora")
        );
        assert_eq!(a.prompt, "A cat.\nPencil sketch.");
        assert_eq!(sb.shots[1].seconds, 3);
        assert_eq!(sb.shots[1].prompt, "A dog.");
    }

    /// A board in a folder, with an image file of `w`x`h` (PNG) at `keyframes/k.png`.
    fn board_with_image(src: &str, w: u32, h: u32) -> (tempfile::TempDir, Vec<Problem>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("keyframes")).unwrap();
        let mut png = Vec::new();
        image::RgbImage::from_pixel(w, h, image::Rgb([200, 40, 40]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        std::fs::write(dir.path().join("keyframes/k.png"), png).unwrap();
        let path = dir.path().join("shotlist.yaml");
        let ps = match parse(&path, src.to_string()) {
            Ok(_) => Vec::new(),
            Err(LoadError::Invalid(d)) => d.problems,
            Err(e) => panic!("{e}"),
        };
        (dir, ps)
    }

    #[test]
    fn image_files_are_checked_against_the_models_rules_at_their_value() {
        // `/v1/videos` needs the video's size; a wrong one is named with both sizes.
        let src = "version: 1\napi: openai-videos\nshots:\n  - id: a\n    prompt: x\n    size: 1280x720\n    image: keyframes/k.png\n";
        let (_d, ps) = board_with_image(src, 640, 480);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(
            ps[0].message,
            "image is 640x480, the model needs the video's size (1280x720)"
        );
        assert_eq!(at(src, &ps[0]), "keyframes/k.png");
        let (_d, ps) = board_with_image(src, 1280, 720);
        assert!(ps.is_empty(), "{ps:?}");
        // Azure fits any size; a file outside the board or missing is refused, located.
        let src = "version: 1\nshots:\n  - id: a\n    prompt: x\n    size: 480x480\n    image: keyframes/k.png\n  - id: b\n    prompt: y\n    size: 480x480\n    image: ../k.png\n  - id: c\n    prompt: z\n    size: 480x480\n    image: keyframes/none.png\n";
        let (_d, ps) = board_with_image(src, 640, 480);
        assert_eq!(ps.len(), 2, "{ps:?}");
        assert!(
            ps[0].message.contains("not inside the manifest's folder"),
            "{ps:?}"
        );
        assert_eq!(at(src, &ps[0]), "../k.png");
        assert!(
            ps[1]
                .message
                .contains("failed to read image `keyframes/none.png`"),
            "{ps:?}"
        );
    }

    #[test]
    fn image_file_hash_is_a_render_input_and_frames_are_edges() {
        let src = "version: 1\nshots:\n  - id: a\n    prompt: x\n    size: 480x480\n    image: keyframes/k.png\n  - id: b\n    prompt: y\n    size: 480x480\n    image: {shot: a, take: 1, frame: 1.5}\n";
        let (dir, ps) = board_with_image(src, 64, 64);
        assert!(ps.is_empty(), "{ps:?}");
        let sb = parse(&dir.path().join("shotlist.yaml"), src.to_string()).unwrap();
        let a = crate::render_inputs::RenderInputs::of(Api::AzureJobs, &sb.shots[0]);
        assert_eq!(a.images.len(), 1);
        // Another image of the same path: another hash.
        let (dir2, _) = board_with_image(src, 65, 64);
        let sb2 = parse(&dir2.path().join("shotlist.yaml"), src.to_string()).unwrap();
        let a2 = crate::render_inputs::RenderInputs::of(Api::AzureJobs, &sb2.shots[0]);
        assert_ne!(a.hash(), a2.hash());
        assert_eq!(a2.changes_from(&a), ["images"]);
        assert_eq!(sb.shots[1].upstream(), ["a"]);
        assert_eq!(
            sb.render_order()
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        // A frame of a shot's video is identified by that video: another video, another
        // hash, and the change is named after the shot.
        let b = |video: &str| {
            crate::render_inputs::RenderInputs::resolve(Api::AzureJobs, &sb.shots[1], |_| {
                Some(video.to_owned())
            })
            .unwrap()
        };
        assert_ne!(b("aa").hash(), b("bb").hash());
        assert_eq!(b("bb").changes_from(&b("aa")), ["upstream `a` changed"]);
        assert_eq!(b("aa").images[0].frame.as_deref(), Some("1.5"));
        // Out of range takes and times are refused at the reference.
        let bad = "version: 1\nshots:\n  - id: a\n    prompt: x\n    size: 480x480\n    seconds: 4\n  - id: b\n    prompt: y\n    size: 480x480\n    image: {shot: a, take: 2}\n  - id: c\n    prompt: z\n    size: 480x480\n    image: {shot: a, frame: 4}\n  - id: d\n    prompt: w\n    size: 480x480\n    image: {shot: d}\n";
        let ps = problems(bad);
        let msgs: Vec<&str> = ps.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "shot `a` has 1 take; there is no take 2",
                "shot `a` is 4 seconds long; there is no frame at 4",
                "shot `d` starts from a frame of itself",
            ]
        );
        assert_eq!(ps[0].span.start, bad.find("{shot: a, take: 2}").unwrap());
    }

    #[test]
    fn a_frame_without_a_take_is_of_the_upstream_shots_pick() {
        let src = "version: 1\nshots:\n  - id: b\n    prompt: y\n    size: 480x480\n    image: {shot: a}\n  - id: a\n    prompt: x\n    size: 480x480\n    variants: 2\n    pick: 2\n";
        let sb = parse(Path::new("t.yaml"), src.to_string()).unwrap();
        let crate::shot::ImageSource::Frame(f) = &sb.shots[0].images[0].source else {
            panic!("a frame")
        };
        assert_eq!((f.shot.as_str(), f.take), ("a", 2));
        assert_eq!(sb.shots[1].pick, 2);
        // `pick` is not a render input.
        let unpicked = src.replace("    pick: 2\n", "");
        let sb2 = parse(Path::new("t.yaml"), unpicked).unwrap();
        assert_eq!(
            crate::cache_key::input_hash(Api::AzureJobs, &sb.shots[1]),
            crate::cache_key::input_hash(Api::AzureJobs, &sb2.shots[1])
        );
        let ps = problems(&src.replace("pick: 2", "pick: 3"));
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(ps[0].message, "`pick: 3`, but the shot has 2 takes");
    }

    #[test]
    fn every_problem_is_reported_at_its_value() {
        let src = "version: 1\nshots:\n  - id: a\n    prompt: x\n    size: 1x1\n    seconds: 99\n  - id: a\n    promt: y\n    size: 480x480\n";
        let ps = problems(src);
        let msgs: Vec<_> = ps
            .iter()
            .map(|p| (p.message.as_str(), at(src, p)))
            .collect();
        assert!(
            msgs.contains(&("unsupported size `1x1` for `azure-jobs`", "1x1")),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&("99 seconds is out of range for `azure-jobs`", "99")),
            "{msgs:?}"
        );
        assert!(msgs.contains(&("duplicate shot id `a`", "a")), "{msgs:?}");
        assert!(
            msgs.contains(&("unknown key `promt` at the shot", "promt")),
            "{msgs:?}"
        );
        let dup = ps
            .iter()
            .find(|p| p.message.starts_with("duplicate"))
            .unwrap();
        assert_eq!(dup.span.start, src.rfind("id: a").unwrap() + 4);
        assert_eq!(dup.related[0].0.start, src.find("id: a").unwrap() + 4);
        let unknown = ps.iter().find(|p| p.message.contains("promt")).unwrap();
        assert_eq!(unknown.help.as_deref(), Some("did you mean `prompt`?"));
    }

    #[test]
    fn variants_limit_depends_on_size_even_from_defaults() {
        let src = "version: 1\ndefaults:\n  variants: 2\nshots:\n  - id: a\n    prompt: x\n    size: 1920x1080\n  - id: b\n    prompt: x\n    size: 720x720\n";
        let ps = problems(src);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(ps[0].message, "2 variants is too many at 1920x1080");
        assert_eq!(at(src, &ps[0]), "2");
    }

    #[test]
    fn shots_never_share_an_output_file() {
        let src = "version: 1\ndefaults:\n  size: 480x480\nshots:\n  - id: a\n    prompt: x\n    variants: 2\n  - id: a-2\n    prompt: y\n";
        let ps = problems(src);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(
            ps[0].message,
            "shots `a` and `a-2` would both write `a-2.mp4`"
        );
        assert_eq!(at(src, &ps[0]), "a-2");
    }

    #[test]
    fn a_manifest_that_is_not_utf8_is_located_and_utf16_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shotlist.yaml");
        std::fs::write(
            &path,
            b"version: 1\nshots:\n  - id: a\n    prompt: caf\xe9 at dusk\n",
        )
        .unwrap();
        let Err(LoadError::Invalid(d)) = load(&path) else {
            panic!("accepted")
        };
        let json = d.to_json();
        assert_eq!((json[0].line, json[0].column), (4, 16), "{json:?}");
        assert!(json[0].message.contains("0xe9"), "{json:?}");
        std::fs::write(&path, b"\xff\xfev\x00e\x00").unwrap();
        let Err(LoadError::Invalid(d)) = load(&path) else {
            panic!("accepted")
        };
        assert!(d.problems[0].message.contains("UTF-16"), "{:?}", d.problems);
        std::fs::write(
            &path,
            "\u{feff}version: 1\nshots:\n  - id: a\n    prompt: x\n    size: 480x480\n",
        )
        .unwrap();
        assert!(load(&path).is_ok(), "a UTF-8 BOM is fine");
    }

    #[test]
    fn windows_reserved_names_are_refused_as_ids() {
        for id in ["CON", "nul", "Com1", "lpt9"] {
            let src =
                format!("version: 1\nshots:\n  - id: {id}\n    prompt: x\n    size: 480x480\n");
            let ps = problems(&src);
            assert!(
                ps.iter().any(|p| p.message.contains("reserved file name")),
                "{id}: {ps:?}"
            );
        }
        assert!(
            problems("version: 1\nshots:\n  - id: console\n    prompt: x\n    size: 480x480\n")
                .is_empty()
        );
    }

    #[test]
    fn unsafe_ids_are_refused() {
        for id in ["'..'", "'a/b'", "/etc/passwd", "''", "'a b'", "'.'"] {
            let src =
                format!("version: 1\nshots:\n  - id: {id}\n    prompt: x\n    size: 480x480\n");
            let ps = problems(&src);
            assert!(
                ps.iter().any(|p| p.message.starts_with("unsafe shot id")),
                "{id}: {ps:?}"
            );
        }
    }

    #[test]
    fn output_cannot_escape() {
        for out in ["../x", "/tmp/x", "a/../../b"] {
            let src = format!(
                "version: 1\noutput: {out}\nshots:\n  - id: a\n    prompt: x\n    size: 480x480\n"
            );
            assert!(
                problems(&src)
                    .iter()
                    .any(|p| p.message.contains("not inside")),
                "{out}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_prompt_file_symlinked_out_of_the_board_is_refused_unread() {
        let board = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "the private key").unwrap();
        std::fs::create_dir(board.path().join("prompts")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            board.path().join("prompts/p.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), board.path().join("linked")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", board.path().join("zero.txt")).unwrap();
        let src = "version: 1\nshots:\n  - id: a\n    prompt_file: prompts/p.txt\n    size: 480x480\n  - id: b\n    prompt_file: linked/secret.txt\n    size: 480x480\n  - id: c\n    prompt_file: zero.txt\n    size: 480x480\n";
        let path = board.path().join("shotlist.yaml");
        let ps = match parse(&path, src.into()) {
            Err(LoadError::Invalid(d)) => d.problems,
            other => panic!("accepted: {:?}", other.map(|sb| sb.shots)),
        };
        let at_values: Vec<_> = ps.iter().map(|p| at(src, p)).collect();
        assert_eq!(
            at_values,
            ["prompts/p.txt", "linked/secret.txt", "zero.txt"],
            "{ps:?}"
        );
        assert!(
            ps.iter().all(|p| p.message.contains("not inside")),
            "{ps:?}"
        );
    }

    #[test]
    fn marketplace_models_check_their_own_lengths_sizes_and_required_inputs() {
        let src = "version: 1\napi: replicate\nshots:\n  - id: a\n    model: hailuo-2.3\n    prompt: x\n    size: 1920x1080\n    seconds: 10\n  - id: b\n    model: hailuo-2.3\n    prompt: x\n    size: 1366x768\n    seconds: 10\n";
        let ps = problems(src);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(at(src, &ps[0]), "10");
        assert!(
            ps[0].message.contains("at most 6 seconds at 1920x1080"),
            "{ps:?}"
        );
        let src = "version: 1\napi: fal\nshots:\n  - id: a\n    model: veo-3.1-image-to-video\n    prompt: x\n    size: 1280x720\n    params: {seed: 1}\n  - id: b\n    model: veo-3.1-image-to-video\n    prompt: x\n    size: 1280x720\n    image: {shot: a}\n    last_frame: {shot: a, frame: first}\n";
        let ps = problems(src);
        assert_eq!(ps.len(), 2, "{ps:?}");
        assert!(
            ps[0]
                .message
                .contains("model `veo-3.1-image-to-video` needs `image:`"),
            "{ps:?}"
        );
        assert_eq!(ps[0].span.start, src.find("id: a").unwrap(), "at the shot");
        assert_eq!(
            ps[1].message,
            "model `veo-3.1-image-to-video` takes no last frame"
        );
        assert_eq!(ps[1].span.start, src.find("{shot: a, frame").unwrap());
    }

    #[test]
    fn a_length_another_model_of_the_api_takes_is_judged_by_the_shots_model() {
        let src = "version: 1\napi: openrouter\nshots:\n  - id: a\n    model: kwaivgi/kling-v3.0-pro\n    prompt: x\n    seconds: 5\n  - id: b\n    prompt: x\n    seconds: 5\n";
        let ps = problems(src);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(
            ps[0].message,
            "5 seconds is out of range for `google/veo-3.1-lite`"
        );
    }

    #[test]
    fn a_marketplace_refuses_a_model_it_cannot_size_and_takes_a_pinned_version() {
        let src = "version: 1\napi: fal\nshots:\n  - id: a\n    model: fal-ai/some-new-model\n    prompt: x\n    size: 1280x720\n";
        let ps = problems(src);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(at(src, &ps[0]), "fal-ai/some-new-model");
        assert!(
            ps[0]
                .help
                .as_deref()
                .unwrap_or("")
                .contains("shotlist.models.yaml"),
            "{ps:?}"
        );
        let src = "version: 1\napi: replicate\nshots:\n  - id: a\n    model: google/veo-3.1:ed5b1767\n    prompt: x\n    size: 1280x720\n    seconds: 6\n";
        let sb = parse(Path::new("shotlist.yaml"), src.into()).unwrap();
        let entry = sb
            .catalogue
            .find(Api::Replicate, &sb.shots[0].model)
            .unwrap();
        let req = crate::render_inputs::RenderInputs::of(Api::Replicate, &sb.shots[0])
            .job_request(false, Some(entry));
        assert_eq!(req.model, "google/veo-3.1:ed5b1767");
        assert_eq!(req.fields["duration"], 6);
        assert_eq!(req.fields["resolution"], "720p");
    }

    #[test]
    fn openai_limits_apply() {
        let src = "version: 1\napi: openai-videos\nshots:\n  - id: a\n    prompt: x\n    seconds: 5\n  - id: b\n    prompt: x\n    size: 1792x1024\n";
        let ps = problems(src);
        assert_eq!(ps.len(), 2, "{ps:?}");
        assert!(ps[0].help.as_deref().unwrap().contains("4, 8 or 12"));
        assert!(ps[1].message.contains("needs model `sora-2-pro`"));
    }

    #[test]
    fn whole_decimals_are_shown_as_written() {
        let ps = problems(
            "version: 1\nshots:\n  - id: a\n    prompt: x\n    size: 480x480\n    seconds: 5.0\n",
        );
        assert_eq!(ps[0].message, "`seconds` must be a whole number, found 5.0");
    }

    #[test]
    fn newer_version_is_refused_clearly() {
        let ps = problems("version: 2\nshots:\n  - id: a\n    prompt: x\n    size: 480x480\n");
        assert!(ps[0].message.contains("newer than this shotlist reads"));
    }
}
