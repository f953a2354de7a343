//! The contact sheet: one static HTML page to review a storyboard by looking at it.
//!
//! Every shot in manifest order, its takes side by side (a still and a playable
//! `<video>`), its prompt, model and provider, size, seconds, tags, status (fresh; stale
//! with the reason `plan` gives; failed with the service's words; never rendered), job
//! ids, cost, and the take `pick:` sends to the edit. Filters by tag and by status run in
//! the page itself (no server), and their state is kept in the address's `#fragment`
//! (`index.html#status=stale&tag=night`) so a filtered view can be bookmarked or sent.
//!
//! The page is self-contained: styles and script inline, no font or asset from anywhere,
//! and links to the renders relative to the page, so the folder can be zipped, served
//! or opened from disk. Stills come from the service's thumbnail when one was saved,
//! else from the video's first frame (`frames.rs`), written once per video content under
//! `OUTPUT/posters/`.
//!
//! What this module must never do: put a manifest's or a server's text in the page
//! unescaped (a prompt is text, never markup), link outside what the lockfile records,
//! or write the page other than atomically.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::board_path;
use crate::lockfile::{FileLock, JobState, Lockfile, ShotLock};
use crate::manifest::Storyboard;
use crate::plan::{Action, Plan, Reason, ShotPlan};

/// The page's file name in the output folder when no other is given.
pub const DEFAULT_FILE: &str = "index.html";
/// Folder under the output folder for stills taken from videos.
pub const POSTERS_DIR: &str = "posters";

/// Where a shot stands, for the page and its filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Fresh,
    Stale,
    Failed,
    New,
}

impl Status {
    /// The filter's value (`data-status`).
    pub fn key(self) -> &'static str {
        match self {
            Status::Fresh => "fresh",
            Status::Stale => "stale",
            Status::Failed => "failed",
            Status::New => "new",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Fresh => "fresh",
            Status::Stale => "stale",
            Status::Failed => "failed",
            Status::New => "never rendered",
        }
    }

    fn of(plan: &ShotPlan) -> Status {
        match (&plan.action, &plan.reason) {
            (Action::Fresh, _) => Status::Fresh,
            (_, Reason::New) => Status::New,
            (_, Reason::JobFailed { .. }) => Status::Failed,
            _ => Status::Stale,
        }
    }
}

/// What the page shows of one shot.
#[derive(Clone, Debug)]
pub struct SheetShot {
    pub id: String,
    pub status: Status,
    /// Why it is not fresh, as `plan` says it.
    pub reason: String,
    pub prompt: String,
    pub model: String,
    /// The API and the host it was (or will be) rendered on.
    pub provider: String,
    pub size: String,
    pub seconds: u32,
    pub tags: Vec<String>,
    pub jobs: Vec<String>,
    /// What the recorded jobs were estimated to cost, when known.
    pub spent: Option<String>,
    /// What rendering it now would cost (stale and new shots), when known.
    pub to_render: Option<String>,
    pub pick: u32,
    pub takes: Vec<Take>,
}

/// One take of a shot.
#[derive(Clone, Debug)]
pub struct Take {
    pub number: u32,
    pub picked: bool,
    /// Link to the video, relative to the page; `None`: not on disk.
    pub video: Option<String>,
    /// Link to its still, relative to the page.
    pub still: Option<String>,
    /// Length, size and frame rate, as the file says.
    pub facts: Option<String>,
    /// The generation id at the service.
    pub generation: Option<String>,
}

/// The page's content.
#[derive(Clone, Debug)]
pub struct Sheet {
    pub title: String,
    pub shots: Vec<SheetShot>,
}

/// What writing the page did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub shots: usize,
    pub takes: usize,
    /// Stills taken from videos in this run.
    pub posters_made: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("failed to write the contact sheet `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refused to write stills into the output folder: {0}")]
    Refused(#[from] board_path::Refused),
}

/// Builds the page for `plan` (which must plan every shot) and writes it to `page`
/// atomically, taking the stills it lacks from the videos first.
pub fn write(
    storyboard: &Storyboard,
    lock: &Lockfile,
    plan: &Plan,
    page: &Path,
) -> Result<Written, SheetError> {
    // As the user would write it: `renders/index.html`, not `./renders/index.html`.
    let given = page.strip_prefix(".").unwrap_or(page).to_path_buf();
    let page = std::path::absolute(page).map_err(|source| SheetError::Write {
        path: page.to_path_buf(),
        source,
    })?;
    let page_dir = page.parent().unwrap_or(Path::new("/")).to_path_buf();
    std::fs::create_dir_all(&page_dir).map_err(|source| SheetError::Write {
        path: page.clone(),
        source,
    })?;
    let posters = Posters::make(storyboard, lock, plan)?;
    let sheet = build(storyboard, lock, plan, &page_dir, &posters.files);
    let html = render_html(&sheet);
    crate::atomic_write::write_if_changed(&page, html.as_bytes()).map_err(|source| {
        SheetError::Write {
            path: page.clone(),
            source,
        }
    })?;
    Ok(Written {
        path: given,
        shots: sheet.shots.len(),
        takes: sheet.shots.iter().map(|s| s.takes.len()).sum(),
        posters_made: posters.made,
    })
}

/// Plans every shot for `endpoint` (as `plan` does) and writes the page for it.
pub fn write_for(
    storyboard: &Storyboard,
    lock: &Lockfile,
    endpoint: &str,
    page: &Path,
) -> Result<Written, SheetError> {
    let options = crate::plan::Options {
        endpoint: endpoint.to_owned(),
        ..Default::default()
    };
    let plan = crate::plan::plan(storyboard, lock, &options);
    write(storyboard, lock, &plan, page)
}

/// The generation that holds take `take` of a shot, with its job id.
fn generation_of(entry: &ShotLock, take: u32) -> Option<(&str, &crate::lockfile::GenerationLock)> {
    entry
        .jobs
        .iter()
        .filter(|j| j.status == JobState::Succeeded)
        .flat_map(|j| j.generations.iter().map(move |g| (j.id.as_str(), g)))
        .rfind(|(_, g)| g.variant == take && g.file.is_some())
}

fn on_disk(dir: &Path, file: &FileLock) -> Option<PathBuf> {
    if !board_path::is_plain_relative(&file.path) {
        return None;
    }
    let path = dir.join(&file.path);
    path.is_file().then_some(path)
}

/// Stills taken from videos that have no thumbnail: `(shot, take)` → file.
struct Posters {
    files: BTreeMap<(String, u32), PathBuf>,
    made: usize,
}

impl Posters {
    /// One PNG per video content (`SHOT-takeN-<sha256 prefix>.png`): kept while the
    /// video is unchanged; stills of videos no longer recorded are removed.
    fn make(storyboard: &Storyboard, lock: &Lockfile, plan: &Plan) -> Result<Posters, SheetError> {
        let mut files = BTreeMap::new();
        let mut made = 0;
        let out_rel = board_path::rel_string(&storyboard.output);
        let rel = |name: &str| {
            if out_rel.is_empty() {
                format!("{POSTERS_DIR}/{name}")
            } else {
                format!("{out_rel}/{POSTERS_DIR}/{name}")
            }
        };
        let mut wanted: HashSet<String> = HashSet::new();
        for sp in &plan.shots {
            let Some(entry) = lock.shots.get(&sp.id) else {
                continue;
            };
            for take in 1..=sp.shot.variants {
                let Some((_, g)) = generation_of(entry, take) else {
                    continue;
                };
                let Some(video) = g.file.as_ref() else {
                    continue;
                };
                let has_thumbnail = g
                    .thumbnail
                    .as_ref()
                    .is_some_and(|t| on_disk(&storyboard.dir, t).is_some());
                let Some(video_path) = on_disk(&storyboard.dir, video) else {
                    continue;
                };
                if has_thumbnail {
                    continue;
                }
                let prefix: String = video.sha256.chars().take(12).collect();
                let name = format!("{}-take{take}-{prefix}.png", sp.id);
                let path = board_path::resolve_owned(&storyboard.dir, &rel(&name))?;
                wanted.insert(name);
                if !path.is_file() {
                    // A video shotlist cannot decode gets no still: the page shows the
                    // player alone.
                    let Ok(frame) =
                        crate::frames::extract(&video_path, crate::frames::FrameAt::First)
                    else {
                        continue;
                    };
                    let parent = path.parent().expect("a poster has a folder");
                    std::fs::create_dir_all(parent).map_err(|source| SheetError::Write {
                        path: path.clone(),
                        source,
                    })?;
                    crate::atomic_write::write(&path, &frame.png).map_err(|source| {
                        SheetError::Write {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    made += 1;
                }
                files.insert((sp.id.clone(), take), path);
            }
        }
        // Only when every shot was planned is it known which stills are still wanted;
        // only this board's stills are removed (another board may share the folder).
        if plan.shots.len() == storyboard.shots.len() {
            let ids: HashSet<&str> = storyboard.shots.iter().map(|s| s.id.as_str()).collect();
            let dir = storyboard.output_dir().join(POSTERS_DIR);
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let ours = poster_shot(&name).is_some_and(|id| ids.contains(id));
                    if ours && !wanted.contains(&name) {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
        Ok(Posters { files, made })
    }
}

/// The shot id of a still's name, `SHOT-takeN-<12 hex>.png` (read from the right, so
/// an id may itself hold `-take`).
fn poster_shot(name: &str) -> Option<&str> {
    let rest = name.strip_suffix(".png")?;
    let (rest, hash) = rest.rsplit_once('-')?;
    if hash.len() != 12 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (id, take) = rest.rsplit_once("-take")?;
    (!id.is_empty() && !take.is_empty() && take.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// The page's content, links relative to `page_dir`.
pub fn build(
    storyboard: &Storyboard,
    lock: &Lockfile,
    plan: &Plan,
    page_dir: &Path,
    posters: &BTreeMap<(String, u32), PathBuf>,
) -> Sheet {
    let title = storyboard
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "storyboard".into());
    let board_dir = std::path::absolute(&storyboard.dir).unwrap_or_else(|_| storyboard.dir.clone());
    let link = |path: &Path| relative_href(page_dir, &board_dir.join(path));
    let mut shots = Vec::new();
    for sp in &plan.shots {
        let shot = &sp.shot;
        let entry = lock.shots.get(&sp.id);
        let status = Status::of(sp);
        let mut takes = Vec::new();
        for number in 1..=shot.variants {
            let found = entry.and_then(|e| generation_of(e, number));
            let video = found
                .and_then(|(_, g)| g.file.as_ref())
                .and_then(|f| on_disk(&storyboard.dir, f));
            let still = found
                .and_then(|(_, g)| g.thumbnail.as_ref())
                .filter(|_| video.is_some())
                .and_then(|t| on_disk(&storyboard.dir, t))
                .or_else(|| posters.get(&(sp.id.clone(), number)).cloned());
            let facts = video
                .as_deref()
                .and_then(|v| crate::media::probe(v).ok())
                .map(|i| {
                    format!(
                        "{:.1} s · {}x{} · {} fps",
                        i.seconds,
                        i.width,
                        i.height,
                        format_fps(i.fps)
                    )
                });
            takes.push(Take {
                number,
                picked: number == shot.pick,
                video: video.as_deref().map(&link),
                still: still.as_deref().map(&link),
                facts,
                generation: found.filter(|_| video.is_some()).map(|(_, g)| g.id.clone()),
            });
        }
        let currency = plan.totals.currency.as_deref().unwrap_or("USD");
        let spent = entry.and_then(|e| {
            let costs: Vec<&crate::cost::Money> = e
                .jobs
                .iter()
                .filter_map(|j| j.estimated_cost.as_ref())
                .collect();
            let first = costs.first()?;
            (costs.len() == e.jobs.len() && costs.iter().all(|c| c.currency == first.currency))
                .then(|| {
                    crate::cost::Money::new(costs.iter().map(|c| c.amount).sum(), &first.currency)
                        .to_string()
                })
        });
        let to_render = match (sp.jobs_to_create, sp.estimated_cost) {
            (0, _) => None,
            (_, Some(c)) => Some(crate::cost::Money::new(c, currency).to_string()),
            (_, None) => Some("price unknown".to_owned()),
        };
        let endpoint = entry
            .map(|e| e.endpoint.clone())
            .unwrap_or_else(|| plan.endpoint.clone());
        shots.push(SheetShot {
            id: sp.id.clone(),
            status,
            reason: if status == Status::Fresh {
                String::new()
            } else {
                sp.reason.to_string()
            },
            prompt: shot.prompt.clone(),
            model: shot.model.clone(),
            provider: format!("{} ({endpoint})", storyboard.api),
            size: shot.size.to_string(),
            seconds: shot.seconds,
            tags: shot.tags.clone(),
            jobs: entry
                .map(|e| e.jobs.iter().map(|j| j.id.clone()).collect())
                .unwrap_or_default(),
            spent,
            to_render,
            pick: shot.pick,
            takes,
        });
    }
    Sheet { title, shots }
}

fn format_fps(fps: f64) -> String {
    if (fps - fps.round()).abs() < 0.01 {
        format!("{}", fps.round() as i64)
    } else {
        format!("{fps:.2}")
    }
}

/// A link from a page in `from_dir` to `to` (both absolute): `..` where needed, each
/// name percent-encoded, `/` between.
pub fn relative_href(from_dir: &Path, to: &Path) -> String {
    let normal = |p: &Path| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in p.components() {
            match c {
                Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
                Component::ParentDir => {
                    out.pop();
                }
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => out.clear(),
            }
        }
        out
    };
    let from = normal(from_dir);
    let to = normal(to);
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> =
        std::iter::repeat_n("..".to_string(), from.len() - common).collect();
    parts.extend(to[common..].iter().map(|p| percent_encode(p)));
    parts.join("/")
}

/// Percent-encodes a path segment (everything but unreserved characters).
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Escapes text for HTML content and for quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = include_str!("sheet/sheet.css");
const SCRIPT: &str = include_str!("sheet/sheet.js");

/// The whole page.
pub fn render_html(sheet: &Sheet) -> String {
    let mut h = String::new();
    let title = escape(&sheet.title);
    let mut counts: BTreeMap<Status, usize> = BTreeMap::new();
    let mut tags: BTreeSet<&str> = BTreeSet::new();
    for s in &sheet.shots {
        *counts.entry(s.status).or_default() += 1;
        tags.extend(s.tags.iter().map(String::as_str));
    }
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"shotlist {version}\">\n\
         <title>{title}: contact sheet</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <header class=\"top\">\n<h1>{title}</h1>\n<p class=\"summary\">",
        version = env!("CARGO_PKG_VERSION"),
    );
    let parts: Vec<String> = [Status::Fresh, Status::Stale, Status::Failed, Status::New]
        .iter()
        .filter_map(|st| counts.get(st).map(|n| format!("{n} {}", st.label())))
        .collect();
    let _ = writeln!(
        h,
        "{} shot{}: {}</p>",
        sheet.shots.len(),
        if sheet.shots.len() == 1 { "" } else { "s" },
        escape(&parts.join(", "))
    );
    // The filters appear only where the script runs: without it every shot shows.
    h.push_str("<form class=\"filters\" id=\"filters\" hidden>\n<label>Status <select id=\"f-status\">\n<option value=\"\">all</option>\n");
    for st in [Status::Fresh, Status::Stale, Status::Failed, Status::New] {
        let n = counts.get(&st).copied().unwrap_or(0);
        let _ = writeln!(
            h,
            "<option value=\"{}\">{} ({n})</option>",
            st.key(),
            st.label()
        );
    }
    h.push_str(
        "</select></label>\n<label>Tag <select id=\"f-tag\">\n<option value=\"\">all</option>\n",
    );
    for tag in &tags {
        let t = escape(tag);
        let _ = writeln!(h, "<option value=\"{t}\">{t}</option>");
    }
    h.push_str("</select></label>\n<output id=\"count\"></output>\n</form>\n</header>\n<main>\n");
    for s in &sheet.shots {
        shot_html(&mut h, s);
    }
    let _ = write!(
        h,
        "</main>\n<footer>Written by shotlist {}. Stale and never-rendered shots render with \
         <code>shotlist render</code>; choose the take for the edit with <code>pick:</code>.</footer>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    h
}

fn shot_html(h: &mut String, s: &SheetShot) {
    let id = escape(&s.id);
    let tags = escape(&s.tags.join(" "));
    let _ = write!(
        h,
        "<section class=\"shot\" id=\"shot-{id}\" data-status=\"{}\" data-tags=\"{tags}\">\n\
         <header><h2>{id}</h2> <span class=\"badge {}\">{}</span></header>\n",
        s.status.key(),
        s.status.key(),
        s.status.label()
    );
    if !s.reason.is_empty() {
        let _ = writeln!(h, "<p class=\"reason\">{}</p>", escape(&s.reason));
    }
    h.push_str("<div class=\"takes\">\n");
    for t in &s.takes {
        let picked = if t.picked { " picked" } else { "" };
        let _ = write!(h, "<figure class=\"take{picked}\">");
        match &t.video {
            Some(video) => {
                let poster = t
                    .still
                    .as_ref()
                    .map(|p| format!(" poster=\"{}\"", escape(p)))
                    .unwrap_or_default();
                let preload = if t.still.is_some() {
                    "none"
                } else {
                    "metadata"
                };
                let _ = write!(
                    h,
                    "<video controls playsinline preload=\"{preload}\"{poster} src=\"{}\"></video>",
                    escape(video)
                );
            }
            None => h.push_str("<div class=\"empty\">not rendered</div>"),
        }
        let _ = write!(h, "<figcaption>take {}", t.number);
        if t.picked {
            h.push_str(" <strong class=\"chosen\">✓ chosen</strong>");
        }
        if let Some(f) = &t.facts {
            let _ = write!(h, "<br><span class=\"facts\">{}</span>", escape(f));
        }
        if let Some(video) = &t.video {
            let _ = write!(h, " · <a href=\"{}\">file</a>", escape(video));
        }
        h.push_str("</figcaption></figure>\n");
    }
    h.push_str("</div>\n");
    let _ = writeln!(h, "<p class=\"prompt\">{}</p>", escape(&s.prompt));
    h.push_str("<dl>\n");
    let mut fact = |name: &str, value: String| {
        let _ = writeln!(h, "<dt>{name}</dt><dd>{value}</dd>");
    };
    fact(
        "model",
        format!("{} on {}", escape(&s.model), escape(&s.provider)),
    );
    fact("size", escape(&s.size));
    fact("seconds", s.seconds.to_string());
    fact("chosen take", format!("{} of {}", s.pick, s.takes.len()));
    if !s.tags.is_empty() {
        fact(
            "tags",
            s.tags
                .iter()
                .map(|t| format!("<span class=\"tag\">{}</span>", escape(t)))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    if !s.jobs.is_empty() {
        fact(
            "jobs",
            s.jobs
                .iter()
                .map(|j| format!("<code>{}</code>", escape(j)))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    let generations: Vec<String> = s
        .takes
        .iter()
        .filter_map(|t| t.generation.as_ref())
        .map(|g| format!("<code>{}</code>", escape(g)))
        .collect();
    if !generations.is_empty() {
        fact("generations", generations.join(" "));
    }
    match (&s.spent, &s.to_render) {
        (Some(spent), Some(next)) => fact(
            "cost",
            format!(
                "~{} spent; ~{} to render again",
                escape(spent),
                escape(next)
            ),
        ),
        (Some(spent), None) => fact("cost", format!("~{}", escape(spent))),
        (None, Some(next)) if next == "price unknown" => fact("cost", "price unknown".into()),
        (None, Some(next)) => fact("cost", format!("~{} to render", escape(next))),
        (None, None) => {}
    }
    h.push_str("</dl>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_still_is_known_by_its_shot_from_the_right() {
        assert_eq!(poster_shot("ship-take1-0123456789ab.png"), Some("ship"));
        assert_eq!(
            poster_shot("a-take1-take2-0123456789ab.png"),
            Some("a-take1")
        );
        assert_eq!(poster_shot("ship-take1.png"), None);
        assert_eq!(poster_shot("ship-takeX-0123456789ab.png"), None);
        assert_eq!(poster_shot("notes.txt"), None);
    }

    #[test]
    fn links_are_relative_to_the_page_and_encoded() {
        assert_eq!(
            relative_href(Path::new("/b/renders"), Path::new("/b/renders/ship.mp4")),
            "ship.mp4"
        );
        assert_eq!(
            relative_href(Path::new("/b/site"), Path::new("/b/renders/a b#1.mp4")),
            "../renders/a%20b%231.mp4"
        );
        assert_eq!(
            relative_href(Path::new("/b"), Path::new("/b/./renders/../renders/x.mp4")),
            "renders/x.mp4"
        );
    }

    fn sheet_with(prompt: &str, tag: &str) -> Sheet {
        Sheet {
            title: "<b>board</b>.yaml".into(),
            shots: vec![SheetShot {
                id: "ship".into(),
                status: Status::Stale,
                reason: "changed: prompt".into(),
                prompt: prompt.into(),
                model: "sora-2".into(),
                provider: "openai-videos (local)".into(),
                size: "1280x720".into(),
                seconds: 4,
                tags: vec![tag.into()],
                jobs: vec!["video_1".into()],
                spent: Some("$0.40".into()),
                to_render: Some("$0.40".into()),
                pick: 2,
                takes: vec![
                    Take {
                        number: 1,
                        picked: false,
                        video: Some("ship.mp4".into()),
                        still: Some("ship.webp".into()),
                        facts: None,
                        generation: Some("video_1".into()),
                    },
                    Take {
                        number: 2,
                        picked: true,
                        video: None,
                        still: None,
                        facts: None,
                        generation: None,
                    },
                ],
            }],
        }
    }

    #[test]
    fn text_from_the_manifest_is_never_markup() {
        let html = render_html(&sheet_with(
            "</p><script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
        ));
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("<title>&lt;b&gt;board&lt;/b&gt;.yaml: contact sheet</title>"));
        // One script element: the page's own.
        assert_eq!(html.matches("<script>").count(), 1);
    }

    #[test]
    fn the_page_marks_the_chosen_take_and_needs_nothing_from_outside() {
        let html = render_html(&sheet_with("a ship at dawn", "exterior"));
        assert!(html.contains("data-status=\"stale\" data-tags=\"exterior\""));
        assert!(html.contains("<figure class=\"take picked\"><div class=\"empty\">not rendered"));
        assert!(html.contains("poster=\"ship.webp\" src=\"ship.mp4\""));
        assert!(html.contains("<option value=\"exterior\">exterior</option>"));
        assert!(html.contains("~$0.40 spent; ~$0.40 to render again"));
        for external in ["http://", "https://", "//fonts", "@import", "url("] {
            assert!(
                !html.contains(external),
                "the page must not load `{external}`"
            );
        }
    }
}
