//! A shot's images (`image:`, `last_frame:`, `references:`), each a file of the board or
//! a frame of another shot, checked against what the shot's model takes (the catalogue's
//! `images`); and the graph that frames of other shots make, checked once every shot is
//! read: unknown shots, takes and times that do not exist, sizes the model refuses, and
//! cycles, each edge located.

use std::collections::HashMap;

use super::Reader;
use crate::catalogue::{ImageInputs, ImageRole, Model};
use crate::diagnostic::{Problem, did_you_mean};
use crate::limits::{Api, Size};
use crate::shot::{FrameAt, FrameRef, ImageSource, Shot, ShotImage};
use crate::yaml::{Node, Span, Value};

/// The keys of a frame of another shot.
const FRAME_KEYS: &[&str] = &["shot", "take", "frame"];

/// The largest image file read at all, whatever a model allows (no model takes more).
const MAX_IMAGE_BYTES: u64 = 64 << 20;

/// One edge of the shot graph: shot `from` starts from `frame`, written at `span`.
pub(super) struct Edge {
    from: String,
    frame: FrameRef,
    span: Span,
    /// The video size the frame must have (the model's `match_size`), if any.
    needs_size: Option<Size>,
    model: String,
}

/// What the shot's images are read against: the model's entry, or for a model the
/// catalogue does not know (a deployment name), the API's default model's.
pub(super) struct ImageRules<'c> {
    pub model: &'c str,
    pub inputs: Option<&'c ImageInputs>,
    pub api: Api,
}

impl Reader<'_> {
    /// The shot's images, in role order, each checked on its own; frames of other shots
    /// are checked later, by [`Reader::check_graph`], once every shot is known.
    pub(super) fn images(
        &mut self,
        f: &HashMap<&'static str, &Node>,
        at_shot: &Span,
        rules: &ImageRules,
        size: Option<Size>,
    ) -> Option<Vec<(ShotImage, Span)>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (key, role) in [
            ("image", ImageRole::FirstFrame),
            ("last_frame", ImageRole::LastFrame),
            ("references", ImageRole::Reference),
        ] {
            let Some(node) = f.get(key) else { continue };
            let Some(inputs) = rules.inputs.filter(|i| i.takes(role)) else {
                self.problems.push(self.takes_none(node, rules, role));
                ok = false;
                continue;
            };
            let items: Vec<&Node> = match (&node.value, role) {
                (Value::Seq(items), ImageRole::Reference) => items.iter().collect(),
                (_, ImageRole::Reference) => {
                    self.type_error(
                        node,
                        "a list",
                        "write `references: [keyframes/hero.png, {shot: opening}]`".into(),
                    );
                    ok = false;
                    continue;
                }
                _ => vec![*node],
            };
            if let Some(max) = inputs.references.as_ref().map(|r| r.max)
                && role == ImageRole::Reference
                && items.len() > max as usize
            {
                self.problems.push(
                    Problem::new(
                        node.span.clone(),
                        format!(
                            "model `{}` takes at most {max} reference images, found {}",
                            rules.model,
                            items.len()
                        ),
                    )
                    .label("too many")
                    .help(format!("keep {max} of them")),
                );
                ok = false;
            }
            for item in items {
                match self.image(item, rules.model, inputs, size) {
                    Some(source) => out.push((ShotImage { role, source }, item.span.clone())),
                    None => ok = false,
                }
            }
        }
        if let Some(inputs) = rules.inputs {
            let required = inputs.first_frame.as_ref().is_some_and(|s| s.required);
            if required && !f.contains_key("image") {
                self.problems.push(
                    Problem::new(
                        at_shot.clone(),
                        format!("model `{}` needs `image:` (its first frame)", rules.model),
                    )
                    .help(
                        "add `image: keyframes/NAME.png` (a file beside the manifest) or `image: {shot: ID}` (the last frame of shot ID)",
                    ),
                );
                ok = false;
            }
            if inputs.references_alone
                && let Some(refs) = f.get("references")
                && (f.contains_key("image") || f.contains_key("last_frame"))
            {
                self.problems.push(
                    Problem::new(
                        refs.span.clone(),
                        format!(
                            "model `{}` takes reference images or frames, not both",
                            rules.model
                        ),
                    )
                    .label("with `image` or `last_frame`")
                    .help("keep either `references:` or the frames"),
                );
                ok = false;
            }
        }
        ok.then_some(out)
    }

    fn takes_none(&self, node: &Node, rules: &ImageRules, role: ImageRole) -> Problem {
        let others: Vec<&str> = self
            .catalogue
            .models_of(rules.api)
            .filter(|m| m.images.as_ref().is_some_and(|i| i.takes(role)))
            .map(|m| m.id.as_str())
            .collect();
        let what = match role {
            ImageRole::FirstFrame => "no image (it is text to video)",
            ImageRole::LastFrame => "no last frame",
            ImageRole::Reference => "no reference images",
        };
        Problem::new(
            node.span.clone(),
            format!("model `{}` takes {what}", rules.model),
        )
        .label(format!("`{}` not taken", role.key()))
        .help(if others.is_empty() {
            format!(
                "no model of `{}` takes one: remove `{}:`",
                rules.api,
                role.key()
            )
        } else {
            format!(
                "models of `{}` that take one: {}; or remove `{}:`",
                rules.api,
                others.join(", "),
                role.key()
            )
        })
    }

    /// One image: a path to a file of the board, or `{shot, take, frame}`.
    fn image(
        &mut self,
        node: &Node,
        model: &str,
        inputs: &ImageInputs,
        size: Option<Size>,
    ) -> Option<ImageSource> {
        match &node.value {
            Value::Str(_) => self.image_file(node, model, inputs, size),
            Value::Map(entries) => self.frame_ref(node, entries).map(ImageSource::Frame),
            _ => {
                self.type_error(
                    node,
                    "a file path or `{shot: ID, take: N, frame: first | last | SECONDS}`",
                    "write `image: keyframes/hero.png` or `image: {shot: opening, frame: last}`"
                        .into(),
                );
                None
            }
        }
    }

    fn image_file(
        &mut self,
        node: &Node,
        model: &str,
        inputs: &ImageInputs,
        size: Option<Size>,
    ) -> Option<ImageSource> {
        let path = self.non_empty_string(node, "image")?;
        let problem = |message: String, label: &str, help: String| {
            Problem::new(path.span.clone(), message)
                .label(label.to_owned())
                .help(help)
        };
        let bytes = match crate::board_path::read_inside(self.dir, &path.value, MAX_IMAGE_BYTES) {
            Ok(bytes) => bytes,
            Err(err) => {
                use crate::board_path::Refused;
                self.problems.push(match &err {
                    Refused::NotRelative(_) | Refused::Outside(_) | Refused::Symlink(_) => problem(
                        format!("image `{}` is not inside the manifest's folder", path.value),
                        "must be a relative path without `..`, and no symlink leading out",
                        "keep images below the manifest, e.g. `image: keyframes/opening.png`"
                            .into(),
                    ),
                    Refused::NotAFile(_) => problem(
                        format!("image `{}` is not a regular file", path.value),
                        "not a file",
                        "point it at a PNG, JPEG or WebP file".into(),
                    ),
                    Refused::TooLarge { max, .. } => problem(
                        format!("image `{}` is larger than {max} bytes", path.value),
                        "too large",
                        "export it smaller".into(),
                    ),
                    Refused::Io { cause, .. } => problem(
                        format!("failed to read image `{}`: {cause}", path.value),
                        "cannot read",
                        "image paths are relative to the manifest's folder".into(),
                    ),
                });
                return None;
            }
        };
        let formats: Vec<&str> = inputs.formats.iter().map(|f| f.name()).collect();
        let info = match crate::frames::image_info(&bytes) {
            Ok(info) => info,
            Err(e) => {
                self.problems.push(problem(
                    format!(
                        "image `{}` is not an image shotlist can read: {e}",
                        path.value
                    ),
                    "not an image",
                    format!("model `{model}` takes {}", formats.join(", ")),
                ));
                return None;
            }
        };
        let mut ok = true;
        if !inputs.formats.contains(&info.format) {
            self.problems.push(problem(
                format!(
                    "image `{}` is {}; model `{model}` takes {}",
                    path.value,
                    info.format.name(),
                    formats.join(", ")
                ),
                "type not taken",
                format!("convert it to {}", formats.join(" or ")),
            ));
            ok = false;
        }
        if bytes.len() as u64 > inputs.max_bytes {
            self.problems.push(problem(
                format!(
                    "image `{}` is {} bytes; model `{model}` takes at most {}",
                    path.value,
                    bytes.len(),
                    inputs.max_bytes
                ),
                "too large",
                "export it smaller (a lower resolution or a higher compression)".into(),
            ));
            ok = false;
        }
        let dims = Size::new(info.width, info.height);
        if inputs.match_size
            && let Some(size) = size
            && dims != size
        {
            self.problems.push(problem(
                format!(
                    "image is {dims}, the model needs the video's size ({size})"
                ),
                "wrong size",
                format!("export the image at {size}, or make the shot's `size: {dims}` if the model takes it"),
            ));
            ok = false;
        }
        use sha2::Digest as _;
        ok.then(|| ImageSource::File {
            path: path.value.clone(),
            sha256: crate::cache_key::hex(&sha2::Sha256::digest(&bytes)),
            format: info.format,
            width: info.width,
            height: info.height,
        })
    }

    /// `{shot: ID, take: N, frame: first | last | SECONDS}`; `take` defaults to that
    /// shot's `pick` (else 1) and `frame` to `last` (a shot usually continues where
    /// another ends).
    fn frame_ref(&mut self, node: &Node, entries: &[(Node, Node)]) -> Option<FrameRef> {
        let f = self.fields(entries, FRAME_KEYS, "frame reference");
        let shot = match f.get("shot") {
            Some(n) => self.non_empty_string(n, "shot").map(|s| s.value),
            None => {
                self.problems.push(
                    Problem::new(node.span.clone(), "frame reference has no `shot`").help(
                        "write `{shot: ID}`: the id of the shot whose frame this starts from",
                    ),
                );
                None
            }
        };
        let take = match f.get("take") {
            Some(n) => match self.uint(n, "take", "takes are numbered from 1") {
                Some(t) if t.value == 0 => {
                    self.problems.push(
                        Problem::new(n.span.clone(), "takes are numbered from 1")
                            .label("no take 0")
                            .help("write `take: 1` for the first take"),
                    );
                    None
                }
                t => t.map(|t| t.value),
            },
            // The chosen take of that shot (`pick`), filled in once every shot is read.
            None => Some(0),
        };
        let frame = match f.get("frame") {
            None => Some(FrameAt::Last),
            Some(n) => match &n.value {
                Value::Str(s) if s == "first" => Some(FrameAt::First),
                Value::Str(s) if s == "last" => Some(FrameAt::Last),
                // Times beyond a day are refused later as after the shot's end.
                Value::Int(v) if *v >= 0 => Some(FrameAt::Millis(
                    u64::try_from(*v).map_or(u64::MAX, |v| v.saturating_mul(1000)),
                )),
                Value::Float(v) if v.is_finite() && *v >= 0.0 => Some(FrameAt::Millis(
                    (v * 1000.0).round().min(u64::MAX as f64) as u64,
                )),
                _ => {
                    self.problems.push(
                        Problem::new(
                            n.span.clone(),
                            "`frame` is `first`, `last` or a time in seconds",
                        )
                        .label("not a frame")
                        .help("write `frame: last`, `frame: first` or `frame: 2.5`"),
                    );
                    None
                }
            },
        };
        Some(FrameRef {
            shot: shot?,
            take: take?,
            frame: frame?,
        })
    }

    /// Records the shot's frames of other shots, to be checked by [`Reader::check_graph`].
    pub(super) fn note_edges(
        &mut self,
        shot: &Shot,
        images: &[(ShotImage, Span)],
        entry: Option<&Model>,
    ) {
        let match_size = entry
            .and_then(|m| m.images.as_ref())
            .is_some_and(|i| i.match_size);
        for (image, span) in images {
            if let ImageSource::Frame(frame) = &image.source {
                self.edges.push(Edge {
                    from: shot.id.clone(),
                    frame: frame.clone(),
                    span: span.clone(),
                    needs_size: match_size.then_some(shot.size),
                    model: shot.model.clone(),
                });
            }
        }
    }

    /// Checks every frame of another shot against that shot, then the graph for cycles.
    pub(super) fn check_graph(&mut self, shots: &mut [Shot]) {
        // A take left out is the upstream shot's chosen one.
        let picks: HashMap<String, u32> = shots.iter().map(|s| (s.id.clone(), s.pick)).collect();
        let pick_of = |frame: &mut FrameRef| {
            if frame.take == 0 {
                frame.take = picks.get(&frame.shot).copied().unwrap_or(1);
            }
        };
        for shot in shots.iter_mut() {
            for image in &mut shot.images {
                if let ImageSource::Frame(frame) = &mut image.source {
                    pick_of(frame);
                }
            }
        }
        let mut edges = std::mem::take(&mut self.edges);
        for e in &mut edges {
            pick_of(&mut e.frame);
        }
        let shots: &[Shot] = shots;
        let by_id: HashMap<&str, &Shot> = shots.iter().map(|s| (s.id.as_str(), s)).collect();
        let mut good: Vec<&Edge> = Vec::new();
        for e in &edges {
            let Some(up) = by_id.get(e.frame.shot.as_str()) else {
                let p = Problem::new(
                    e.span.clone(),
                    format!("no shot `{}` in this manifest", e.frame.shot),
                )
                .label("unknown shot");
                self.problems.push(
                    match did_you_mean(&e.frame.shot, shots.iter().map(|s| s.id.as_str())) {
                        Some(m) => p.help(format!("did you mean `{m}`?")),
                        None => p.help("name the `id` of a shot of this manifest"),
                    },
                );
                continue;
            };
            if up.id == e.from {
                self.problems.push(
                    Problem::new(
                        e.span.clone(),
                        format!("shot `{}` starts from a frame of itself", e.from),
                    )
                    .label("itself")
                    .help("a shot can start from a frame of another shot, or from an image file"),
                );
                continue;
            }
            if e.frame.take > up.variants {
                self.problems.push(
                    Problem::new(
                        e.span.clone(),
                        format!(
                            "shot `{}` has {} take{}; there is no take {}",
                            up.id,
                            up.variants,
                            if up.variants == 1 { "" } else { "s" },
                            e.frame.take
                        ),
                    )
                    .label("no such take")
                    .help(format!("write a take from 1 to {}", up.variants)),
                );
                continue;
            }
            if let FrameAt::Millis(ms) = e.frame.frame
                && ms >= u64::from(up.seconds) * 1000
            {
                self.problems.push(
                    Problem::new(
                        e.span.clone(),
                        format!(
                            "shot `{}` is {} seconds long; there is no frame at {}",
                            up.id,
                            up.seconds,
                            e.frame.frame.label()
                        ),
                    )
                    .label("after its end")
                    .help("write a time below its length, or `frame: last`"),
                );
                continue;
            }
            if let Some(size) = e.needs_size
                && up.size != size
            {
                self.problems.push(
                    Problem::new(
                        e.span.clone(),
                        format!(
                            "a frame of `{}` is {}, the model `{}` needs the video's size ({size})",
                            up.id, up.size, e.model
                        ),
                    )
                    .label("wrong size")
                    .help(format!(
                        "give both shots the same `size`, or start from an image file of {size}"
                    )),
                );
                continue;
            }
            good.push(e);
        }
        self.cycles(&good);
    }

    /// Every cycle of the graph, once, with the place of each of its edges.
    fn cycles(&mut self, edges: &[&Edge]) {
        let mut out: HashMap<&str, Vec<&Edge>> = HashMap::new();
        for e in edges {
            out.entry(e.from.as_str()).or_default().push(e);
        }
        // Depth-first, in manifest order; 0 unseen, 1 on the path, 2 done.
        let mut state: HashMap<&str, u8> = HashMap::new();
        let mut starts: Vec<&str> = edges.iter().map(|e| e.from.as_str()).collect();
        starts.dedup();
        let mut reported: Vec<Vec<&str>> = Vec::new();
        for start in starts {
            if state.get(start).copied().unwrap_or(0) != 0 {
                continue;
            }
            // The path as (shot, index of its next edge to follow, edge that led here).
            let mut path: Vec<(&str, usize, Option<&Edge>)> = vec![(start, 0, None)];
            state.insert(start, 1);
            while let Some(&mut (node, ref mut next, _)) = path.last_mut() {
                let list = out.get(node).map(Vec::as_slice).unwrap_or(&[]);
                if *next >= list.len() {
                    state.insert(node, 2);
                    path.pop();
                    continue;
                }
                let edge = list[*next];
                *next += 1;
                let to = edge.frame.shot.as_str();
                match state.get(to).copied().unwrap_or(0) {
                    0 => {
                        state.insert(to, 1);
                        path.push((to, 0, Some(edge)));
                    }
                    1 => {
                        let at = path.iter().position(|(n, _, _)| *n == to).unwrap_or(0);
                        let mut cycle: Vec<&Edge> =
                            path[at + 1..].iter().filter_map(|(_, _, e)| *e).collect();
                        cycle.push(edge);
                        let mut members: Vec<&str> =
                            cycle.iter().map(|e| e.from.as_str()).collect();
                        members.sort_unstable();
                        if !reported.contains(&members) {
                            reported.push(members);
                            self.problems.push(cycle_problem(&cycle));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// "shot `b` waits for itself through `c`", at its first edge, with every other edge.
fn cycle_problem(cycle: &[&Edge]) -> Problem {
    let first = cycle[0];
    let through: Vec<String> = cycle[1..].iter().map(|e| format!("`{}`", e.from)).collect();
    let message = if through.is_empty() {
        format!("shot `{}` waits for itself", first.from)
    } else {
        format!(
            "shot `{}` waits for itself through {}",
            first.from,
            through.join(", ")
        )
    };
    let mut p = Problem::new(first.span.clone(), message)
        .label(format!("`{}` waits for `{}`", first.from, first.frame.shot))
        .help("a shot can start only from shots that do not start from it: break the cycle by starting one of them from an image file");
    for e in &cycle[1..] {
        p = p.related(
            e.span.clone(),
            format!("`{}` waits for `{}`", e.from, e.frame.shot),
        );
    }
    p
}
