//! Checking a model's own input (fal, Replicate) against its catalogue entry: the prompt
//! and its length, the size and length asked for through the model's fields
//! (`resolution`, `aspect_ratio`, `mode`, `duration`, ...), and the model's params (type,
//! range, values, required ones).
//!
//! Every problem is reported, not only the first, as both services do; each API words
//! them its own way (`fal.rs`: a pydantic `detail` list, `replicate.rs`: `invalid_fields`).
//! No size, length or field name is written here: they all come from the [`Model`].

use serde_json::{Map, Value};
use shotlist_models::catalogue::{ImageInputs, ImageRole, Model, ParamKind};
use shotlist_models::limits::Size;

/// What a valid input asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInput {
    pub prompt: String,
    pub size: Size,
    pub seconds: u32,
    /// The images in the model's own image fields, checked.
    pub images: Vec<super::images::InputImage>,
}

/// Why one field of an input is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    Missing,
    /// Not a JSON value of this type: `string`, `integer`, `number` or `boolean`.
    WrongType(&'static str),
    TooShort,
    TooLong,
    /// A value of the right type that the model does not take.
    NotAllowed,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InputProblem {
    /// The input field's name (`prompt`, `duration`, ...).
    pub field: String,
    pub kind: ProblemKind,
    pub message: String,
}

fn problem(field: &str, kind: ProblemKind, message: String) -> InputProblem {
    InputProblem {
        field: field.to_owned(),
        kind,
        message,
    }
}

fn type_name(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Integer => "integer",
        ParamKind::Number => "number",
        ParamKind::Boolean => "boolean",
        ParamKind::String => "string",
    }
}

fn has_type(kind: ParamKind, value: &Value) -> bool {
    match (kind, value) {
        (ParamKind::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (ParamKind::Number, Value::Number(_)) => true,
        (ParamKind::Boolean, Value::Bool(_)) => true,
        (ParamKind::String, Value::String(_)) => true,
        _ => false,
    }
}

/// Checks `input` against `model`'s entry.
pub fn check(model: &Model, input: &Map<String, Value>) -> Result<ModelInput, Vec<InputProblem>> {
    let mut problems = Vec::new();
    let prompt = check_prompt(model, input.get("prompt"), &mut problems);
    let asked = check_size_and_length(model, input, &mut problems);
    for param in &model.params {
        match input.get(&param.name) {
            None | Some(Value::Null) if param.required => problems.push(problem(
                &param.name,
                ProblemKind::Missing,
                format!("`{}` is required by `{}`", param.name, model.provider_model),
            )),
            None | Some(Value::Null) => {}
            Some(value) => {
                if let Err(message) = param.check(value) {
                    let kind = if has_type(param.kind, value) {
                        ProblemKind::NotAllowed
                    } else {
                        ProblemKind::WrongType(type_name(param.kind))
                    };
                    problems.push(problem(&param.name, kind, message));
                }
            }
        }
    }
    let images = match &model.images {
        Some(rules) => check_images(model, rules, input, asked.map(|a| a.0), &mut problems),
        None => Vec::new(),
    };
    match (prompt, asked) {
        (Some(prompt), Some((size, seconds))) if problems.is_empty() => Ok(ModelInput {
            prompt,
            size,
            seconds,
            images,
        }),
        _ => Err(problems),
    }
}

/// The images in the model's own fields: data URIs, each checked by the model's rules.
fn check_images(
    model: &Model,
    rules: &ImageInputs,
    input: &Map<String, Value>,
    size: Option<Size>,
    problems: &mut Vec<InputProblem>,
) -> Vec<super::images::InputImage> {
    let mut out = Vec::new();
    let mut frames = false;
    let mut references = false;
    for role in [
        ImageRole::FirstFrame,
        ImageRole::LastFrame,
        ImageRole::Reference,
    ] {
        let Some(field) = rules.field(role) else {
            continue;
        };
        let required =
            role == ImageRole::FirstFrame && rules.first_frame.as_ref().is_some_and(|s| s.required);
        let values: Vec<&Value> = match (input.get(field), role) {
            (None | Some(Value::Null), _) => {
                if required {
                    problems.push(problem(
                        field,
                        ProblemKind::Missing,
                        format!("`{field}` is required by `{}`", model.provider_model),
                    ));
                }
                continue;
            }
            (Some(Value::Array(items)), ImageRole::Reference) => items.iter().collect(),
            (Some(_), ImageRole::Reference) => {
                problems.push(problem(
                    field,
                    ProblemKind::WrongType("array"),
                    format!("`{field}` is a list of images"),
                ));
                continue;
            }
            (Some(v), _) => vec![v],
        };
        if role == ImageRole::Reference {
            let max = rules.references.as_ref().map_or(0, |r| r.max) as usize;
            if values.len() > max {
                problems.push(problem(
                    field,
                    ProblemKind::TooLong,
                    format!("`{field}` takes at most {max} images, got {}", values.len()),
                ));
                continue;
            }
            references = true;
        } else {
            frames = true;
        }
        for value in values {
            let Value::String(uri) = value else {
                problems.push(problem(
                    field,
                    ProblemKind::WrongType("string"),
                    format!("`{field}` is a data URI or a URL"),
                ));
                continue;
            };
            match super::images::data_uri_bytes(uri)
                .and_then(|bytes| super::images::check(role, &bytes, rules, size))
            {
                Ok(image) => out.push(image),
                Err(message) => problems.push(problem(
                    field,
                    ProblemKind::NotAllowed,
                    format!("`{field}`: {message}"),
                )),
            }
        }
    }
    if rules.references_alone && frames && references {
        problems.push(problem(
            rules
                .field(ImageRole::Reference)
                .unwrap_or("reference_images"),
            ProblemKind::NotAllowed,
            format!(
                "`{}` takes reference images or frames, not both",
                model.provider_model
            ),
        ));
    }
    out
}

fn check_prompt(
    model: &Model,
    prompt: Option<&Value>,
    problems: &mut Vec<InputProblem>,
) -> Option<String> {
    let limits = model.prompt_chars;
    let prompt = match prompt {
        None | Some(Value::Null) => {
            problems.push(problem(
                "prompt",
                ProblemKind::Missing,
                "`prompt` is required".into(),
            ));
            return None;
        }
        Some(Value::String(s)) => s,
        Some(_) => {
            problems.push(problem(
                "prompt",
                ProblemKind::WrongType("string"),
                "`prompt` is a string".into(),
            ));
            return None;
        }
    };
    let chars = prompt.chars().count();
    if chars < limits.min {
        problems.push(problem(
            "prompt",
            ProblemKind::TooShort,
            format!(
                "`prompt` has {chars} characters; it needs at least {}",
                limits.min
            ),
        ));
        return None;
    }
    if chars > limits.max {
        problems.push(problem(
            "prompt",
            ProblemKind::TooLong,
            format!(
                "`prompt` has {chars} characters; `{}` takes at most {}",
                model.provider_model, limits.max
            ),
        ));
        return None;
    }
    Some(prompt.clone())
}

/// The size and length the model's fields ask for, if it takes them.
fn check_size_and_length(
    model: &Model,
    input: &Map<String, Value>,
    problems: &mut Vec<InputProblem>,
) -> Option<(Size, u32)> {
    let (size, seconds) = match model.read_wire_fields(input) {
        Ok(asked) => asked,
        Err(message) => {
            problems.push(size_or_length_problem(model, input, message));
            return None;
        }
    };
    let rule = model.seconds.rule().ok()?;
    let longest_here = model.size_entry(size).and_then(|e| e.max_seconds);
    let field = model
        .seconds_field
        .as_ref()
        .map_or("duration", |f| f.name.as_str());
    if !rule.allows(seconds) {
        problems.push(problem(
            field,
            ProblemKind::NotAllowed,
            format!(
                "`{field}` asks for {seconds} seconds; `{}` takes {}",
                model.provider_model,
                rule.describe()
            ),
        ));
        return None;
    }
    if let Some(max) = longest_here.filter(|max| seconds > *max) {
        problems.push(problem(
            field,
            ProblemKind::NotAllowed,
            format!(
                "`{field}` asks for {seconds} seconds; at this size `{}` takes at most {max}",
                model.provider_model
            ),
        ));
        return None;
    }
    Some((size, seconds))
}

/// The field at fault when no size matches or the length does not read: the first size
/// field whose value no size takes, else the length field, else the first size field sent.
fn size_or_length_problem(
    model: &Model,
    input: &Map<String, Value>,
    message: String,
) -> InputProblem {
    let mut keys: Vec<&String> = model.sizes.iter().flat_map(|e| e.fields.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in &keys {
        let Some(value) = input.get(*key) else {
            continue;
        };
        let allowed: Vec<&str> = {
            let mut v: Vec<&str> = model
                .sizes
                .iter()
                .filter_map(|e| e.fields.get(*key).map(String::as_str))
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        match value {
            Value::String(s) if allowed.contains(&s.as_str()) => {}
            Value::String(s) => {
                return problem(
                    key,
                    ProblemKind::NotAllowed,
                    format!(
                        "`{key}` is `{s}`; `{}` takes {}",
                        model.provider_model,
                        allowed.join(", ")
                    ),
                );
            }
            _ => {
                return problem(
                    key,
                    ProblemKind::WrongType("string"),
                    format!("`{key}` is a string, one of {}", allowed.join(", ")),
                );
            }
        }
    }
    if let Some(field) = &model.seconds_field
        && input.contains_key(&field.name)
        && model.read_wire_fields(&without(input, &field.name)).is_ok()
    {
        let kind = match (field.format, &input[&field.name]) {
            (shotlist_models::catalogue::FieldFormat::Integer, Value::Number(_))
            | (shotlist_models::catalogue::FieldFormat::String, Value::String(_)) => {
                ProblemKind::NotAllowed
            }
            (shotlist_models::catalogue::FieldFormat::Integer, _) => {
                ProblemKind::WrongType("integer")
            }
            (shotlist_models::catalogue::FieldFormat::String, _) => {
                ProblemKind::WrongType("string")
            }
        };
        let example = field.encode(model.default_seconds);
        return problem(
            &field.name,
            kind,
            format!(
                "`{}` is written like {example} and is {}",
                field.name,
                model
                    .seconds
                    .rule()
                    .map(|r| r.describe())
                    .unwrap_or_default()
            ),
        );
    }
    let field = keys
        .iter()
        .find(|k| input.contains_key(k.as_str()))
        .or(keys.first())
        .map_or("size", |k| k.as_str());
    problem(field, ProblemKind::NotAllowed, message)
}

fn without(input: &Map<String, Value>, name: &str) -> Map<String, Value> {
    let mut copy = input.clone();
    copy.remove(name);
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shotlist_models::catalogue::Catalogue;
    use shotlist_models::limits::Api;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn reads_the_size_and_length_of_every_model_and_names_each_bad_field() {
        let c = Catalogue::builtin();
        for m in c
            .models
            .iter()
            .filter(|m| c.provider(m.provider).model_fields)
        {
            let size = m.default_size.unwrap_or(m.sizes[0].size);
            let mut input = m.wire_fields(size, m.default_seconds);
            input.insert("prompt".into(), json!("a lighthouse"));
            for p in m.params.iter().filter(|p| p.required) {
                input.insert(p.name.clone(), json!("https://example.com/a.png"));
            }
            // A required first frame: a data URI of a PNG of the video's size.
            if let Some(field) = m
                .images
                .as_ref()
                .filter(|i| i.first_frame.as_ref().is_some_and(|s| s.required))
                .and_then(|i| i.field(shotlist_models::catalogue::ImageRole::FirstFrame))
            {
                use base64::Engine as _;
                let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
                png.extend(size.width.to_be_bytes());
                png.extend(size.height.to_be_bytes());
                png.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
                let uri = format!(
                    "data:image/png;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(&png)
                );
                input.insert(field.to_owned(), json!(uri));
            }
            let asked = check(m, &input).unwrap_or_else(|e| panic!("{}: {e:?}", m.id));
            assert_eq!((asked.size, asked.seconds), (size, m.default_seconds));
        }
        let veo = c.find(Api::Fal, "fal-ai/veo3.1").unwrap();
        let problems = check(
            veo,
            &object(json!({
                "prompt": "x".repeat(veo.prompt_chars.max + 1),
                "resolution": "9000p",
                "seed": "one",
            })),
        )
        .unwrap_err();
        let fields: Vec<(&str, ProblemKind)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.kind))
            .collect();
        assert_eq!(
            fields,
            [
                ("prompt", ProblemKind::TooLong),
                ("resolution", ProblemKind::NotAllowed),
                ("seed", ProblemKind::WrongType("integer")),
            ]
        );
        let length = check(veo, &object(json!({"prompt": "p", "duration": "5s"}))).unwrap_err();
        assert_eq!(length[0].field, "duration");
        assert_eq!(length[0].kind, ProblemKind::NotAllowed);
        let i2v = c.find(Api::Fal, "fal-ai/veo3.1/image-to-video").unwrap();
        let missing = check(i2v, &object(json!({}))).unwrap_err();
        assert_eq!(
            missing.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(),
            ["prompt", "image_url"]
        );
    }
}
