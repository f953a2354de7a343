//! The hand-off to an editor: the chosen take of every shot, in manifest order, as an
//! OpenTimelineIO timeline or as one joined MP4.
//!
//! The chosen take is the shot's `pick:` (default 1). A take is taken from what is on
//! disk as the lockfile records it; a shot whose take is not on disk is *missing*: the
//! export is refused with the ids of such shots, unless missing shots are allowed, and
//! then a slate of the shot's length stands in (in the MP4) or a clip with a missing
//! media reference (in the timeline), so the edit keeps its timing. A take on disk whose
//! shot has changed since (`plan` would render it again) is still exported, and named
//! as stale (`stale`), so an editor never cuts an old take unawares.
//!
//! Timeline times are the videos' real lengths and frame rates (`media.rs`), never what
//! the manifest asked for. The MP4 is made by `ffmpeg` (needed for this command only):
//! every take scaled into one size without stretching (letterboxed or pillarboxed), at
//! one frame rate, with its sound where it has some and silence elsewhere, written to a
//! temporary file beside the target and renamed into place when complete.
//!
//! What this module must never do: run ffmpeg through a shell (arguments are a list),
//! leave a half-written file where the target was, or silently drop a shot.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::limits::Size;
use crate::lockfile::Lockfile;
use crate::manifest::Storyboard;
use crate::media::VideoInfo;

/// The chosen take of one shot.
#[derive(Clone, Debug)]
pub struct Clip {
    pub shot: String,
    pub take: u32,
    pub prompt: String,
    pub model: String,
    pub size: Size,
    pub seconds: u32,
    pub source: Source,
}

#[derive(Clone, Debug)]
pub enum Source {
    /// On disk.
    Video {
        path: PathBuf,
        sha256: String,
        info: VideoInfo,
    },
    /// Not rendered (or not on disk): `why` says which.
    Missing { why: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{}", missing_message(.0))]
    Missing(Vec<(String, String)>),
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    #[error(
        "`ffmpeg` is not on PATH: `shotlist export --mp4` joins the takes with it; install \
         ffmpeg (Debian: `apt install ffmpeg`, macOS: `brew install ffmpeg`), or export a \
         timeline with `--otio` instead"
    )]
    NeedsFfmpeg,
    #[error("ffmpeg failed to join the takes ({status}): {stderr}")]
    Ffmpeg { status: String, stderr: String },
    #[error("failed to write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("nothing to export: the manifest has no shots")]
    Empty,
    #[error("failed to make the slate of `{shot}`: {message}")]
    Slate { shot: String, message: String },
}

fn missing_message(missing: &[(String, String)]) -> String {
    let mut out = format!(
        "{} shot{} not rendered: ",
        missing.len(),
        if missing.len() == 1 { " is" } else { "s are" }
    );
    out.push_str(
        &missing
            .iter()
            .map(|(id, why)| format!("`{id}` ({why})"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    out
}

/// The chosen take of every shot, in manifest order.
pub fn picked(storyboard: &Storyboard, lock: &Lockfile) -> Result<Vec<Clip>, ExportError> {
    let mut clips = Vec::new();
    for shot in &storyboard.shots {
        let take = shot.pick;
        let file = lock.shots.get(&shot.id).and_then(|e| e.video_of(take));
        let source = match file {
            None if lock.shots.contains_key(&shot.id) => Source::Missing {
                why: format!("take {take} has no video"),
            },
            None => Source::Missing {
                why: "never rendered".into(),
            },
            Some(f) if !crate::board_path::is_plain_relative(&f.path) => Source::Missing {
                why: format!("`{}` is not a path inside the board", f.path),
            },
            Some(f) => {
                let path = storyboard.dir.join(&f.path);
                if path.is_file() {
                    let info = crate::media::probe(&path)?;
                    Source::Video {
                        path,
                        sha256: f.sha256.clone(),
                        info,
                    }
                } else {
                    Source::Missing {
                        why: format!("`{}` is missing", f.path),
                    }
                }
            }
        };
        clips.push(Clip {
            shot: shot.id.clone(),
            take,
            prompt: shot.prompt.clone(),
            model: shot.model.clone(),
            size: shot.size,
            seconds: shot.seconds,
            source,
        });
    }
    if clips.is_empty() {
        return Err(ExportError::Empty);
    }
    Ok(clips)
}

/// The clips exported from takes the plan would render again (changed inputs, a
/// modified file, a placeholder for a real service), with why: `(shot, reason)`.
pub fn stale(clips: &[Clip], plan: &crate::plan::Plan) -> Vec<(String, String)> {
    let planned: std::collections::HashMap<&str, &crate::plan::ShotPlan> =
        plan.shots.iter().map(|s| (s.id.as_str(), s)).collect();
    clips
        .iter()
        .filter(|c| matches!(c.source, Source::Video { .. }))
        .filter_map(|c| {
            let planned = planned.get(c.shot.as_str())?;
            (planned.action != crate::plan::Action::Fresh)
                .then(|| (c.shot.clone(), planned.reason.to_string()))
        })
        .collect()
}

/// Refuses missing shots unless they are allowed.
pub fn check_missing(clips: &[Clip], allow_missing: bool) -> Result<(), ExportError> {
    let missing: Vec<(String, String)> = clips
        .iter()
        .filter_map(|c| match &c.source {
            Source::Missing { why } => Some((c.shot.clone(), why.clone())),
            Source::Video { .. } => None,
        })
        .collect();
    if missing.is_empty() || allow_missing {
        Ok(())
    } else {
        Err(ExportError::Missing(missing))
    }
}

/// The rate a missing shot's clip is timed in.
const MISSING_RATE: f64 = 24.0;

fn rational(value: f64, rate: f64) -> Value {
    json!({"OTIO_SCHEMA": "RationalTime.1", "rate": rate, "value": value})
}

fn range(frames: f64, rate: f64) -> Value {
    json!({
        "OTIO_SCHEMA": "TimeRange.1",
        "start_time": rational(0.0, rate),
        "duration": rational(frames, rate),
    })
}

/// The OpenTimelineIO timeline (JSON, `.otio`) of `clips`, media linked relative to
/// `otio_dir`, the folder the timeline file is in.
pub fn otio(name: &str, clips: &[Clip], otio_dir: &Path) -> Value {
    let otio_dir = std::path::absolute(otio_dir).unwrap_or_else(|_| otio_dir.to_path_buf());
    let children: Vec<Value> = clips
        .iter()
        .map(|c| {
            let (reference, source_range) = match &c.source {
                Source::Video { path, sha256, info } => {
                    let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                    // A rate an editor can work in: whole frames per second where the
                    // file is (12, 24, 30), else the file's own.
                    let rate = if (info.fps - info.fps.round()).abs() < 0.01 {
                        info.fps.round()
                    } else {
                        info.fps
                    };
                    let frames = info.frames as f64;
                    let available = range(frames, rate);
                    (
                        json!({
                            "OTIO_SCHEMA": "ExternalReference.1",
                            "name": c.shot,
                            "target_url": crate::sheet::relative_href(&otio_dir, &path),
                            "available_range": available,
                            "available_image_bounds": null,
                            "metadata": {"shotlist": {
                                "sha256": sha256,
                                "width": info.width,
                                "height": info.height,
                                "has_audio": info.has_audio,
                            }},
                        }),
                        range(frames, rate),
                    )
                }
                Source::Missing { why } => (
                    json!({
                        "OTIO_SCHEMA": "MissingReference.1",
                        "name": c.shot,
                        "available_range": null,
                        "available_image_bounds": null,
                        "metadata": {"shotlist": {"missing": why}},
                    }),
                    range(f64::from(c.seconds) * MISSING_RATE, MISSING_RATE),
                ),
            };
            json!({
                "OTIO_SCHEMA": "Clip.2",
                "name": c.shot,
                "source_range": source_range,
                "effects": [],
                "markers": [],
                "enabled": true,
                "media_references": {"DEFAULT_MEDIA": reference},
                "active_media_reference_key": "DEFAULT_MEDIA",
                "metadata": {"shotlist": {
                    "shot": c.shot,
                    "take": c.take,
                    "model": c.model,
                    "prompt": c.prompt,
                }},
            })
        })
        .collect();
    json!({
        "OTIO_SCHEMA": "Timeline.1",
        "name": name,
        "global_start_time": null,
        "metadata": {"shotlist": {"version": env!("CARGO_PKG_VERSION")}},
        "tracks": {
            "OTIO_SCHEMA": "Stack.1",
            "name": "tracks",
            "source_range": null,
            "effects": [],
            "markers": [],
            "enabled": true,
            "metadata": {},
            "children": [{
                "OTIO_SCHEMA": "Track.1",
                "name": "Video 1",
                "kind": "Video",
                "source_range": null,
                "effects": [],
                "markers": [],
                "enabled": true,
                "metadata": {},
                "children": children,
            }],
        },
    })
}

/// Writes the timeline to `file` atomically.
pub fn write_otio(name: &str, clips: &[Clip], file: &Path) -> Result<(), ExportError> {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut text = serde_json::to_string_pretty(&otio(name, clips, dir)).expect("JSON");
    text.push('\n');
    crate::atomic_write::write(file, text.as_bytes()).map_err(|source| ExportError::Write {
        path: file.to_path_buf(),
        source,
    })
}

/// The size and frame rate of the joined video.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Format {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// What most of the takes are (ties: the first in manifest order); missing shots count
/// by the size the manifest asks. Odd sizes are rounded up to even (H.264 4:2:0).
pub fn common_format(clips: &[Clip]) -> Format {
    fn most<T: PartialEq + Copy>(items: &[T]) -> Option<T> {
        let mut best: Option<(T, usize)> = None;
        for &x in items {
            let n = items.iter().filter(|&&y| y == x).count();
            if best.is_none_or(|(_, m)| n > m) {
                best = Some((x, n));
            }
        }
        best.map(|(x, _)| x)
    }
    let sizes: Vec<(u32, u32)> = clips
        .iter()
        .map(|c| match &c.source {
            Source::Video { info, .. } => (info.width, info.height),
            Source::Missing { .. } => (c.size.width, c.size.height),
        })
        .collect();
    let rates: Vec<u32> = clips
        .iter()
        .filter_map(|c| match &c.source {
            Source::Video { info, .. } => Some(info.fps.round().max(1.0) as u32),
            Source::Missing { .. } => None,
        })
        .collect();
    let (width, height) = most(&sizes).unwrap_or((1280, 720));
    Format {
        width: width.max(2).next_multiple_of(2),
        height: height.max(2).next_multiple_of(2),
        fps: most(&rates).unwrap_or(24),
    }
}

/// What joining made.
#[derive(Clone, Debug, PartialEq)]
pub struct Joined {
    pub seconds: f64,
    pub format: Format,
    pub clips: usize,
    pub slates: usize,
}

/// Joins `clips` into one MP4 at `file` with ffmpeg.
pub fn write_mp4(clips: &[Clip], format: Format, file: &Path) -> Result<Joined, ExportError> {
    match Command::new("ffmpeg").arg("-version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err(ExportError::NeedsFfmpeg),
    }
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let write_error = |source| ExportError::Write {
        path: file.to_path_buf(),
        source,
    };
    let slates = tempfile::tempdir().map_err(write_error)?;
    let Format { width, height, fps } = format;
    let any_audio = clips
        .iter()
        .any(|c| matches!(&c.source, Source::Video { info, .. } if info.has_audio));

    let mut command = Command::new("ffmpeg");
    command.args(["-nostdin", "-hide_banner", "-v", "error", "-y"]);
    let mut graph = String::new();
    let mut total = 0.0;
    let mut slate_count = 0;
    for (i, c) in clips.iter().enumerate() {
        // Each piece lasts a whole number of output frames: the joined length is the sum.
        let (seconds, audio) = match &c.source {
            Source::Video { path, info, .. } => {
                let mut input = std::ffi::OsString::from("file:");
                input.push(path.as_os_str());
                command.arg("-i").arg(input);
                (info.seconds, info.has_audio)
            }
            Source::Missing { .. } => {
                slate_count += 1;
                slate_input(&mut command, c, format, slates.path())?;
                (f64::from(c.seconds), false)
            }
        };
        let frames = (seconds * f64::from(fps)).round().max(1.0);
        let d = frames / f64::from(fps);
        total += d;
        use std::fmt::Write as _;
        let _ = write!(
            graph,
            "[{i}:v:0]scale={width}:{height}:force_original_aspect_ratio=decrease,\
             pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps={fps},\
             format=yuv420p,trim=end_frame={frames},setpts=PTS-STARTPTS[v{i}];"
        );
        if any_audio {
            if audio {
                let _ = write!(
                    graph,
                    "[{i}:a:0]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,\
                     apad,atrim=duration={d:.6},asetpts=PTS-STARTPTS[a{i}];"
                );
            } else {
                let _ = write!(
                    graph,
                    "anullsrc=r=48000:cl=stereo,atrim=duration={d:.6},asetpts=PTS-STARTPTS[a{i}];"
                );
            }
        }
    }
    for i in 0..clips.len() {
        graph.push_str(&format!("[v{i}]"));
        if any_audio {
            graph.push_str(&format!("[a{i}]"));
        }
    }
    let outputs = if any_audio { "[v][a]" } else { "[v]" };
    graph.push_str(&format!(
        "concat=n={}:v=1:a={}{outputs}",
        clips.len(),
        u8::from(any_audio)
    ));
    command
        .arg("-filter_complex")
        .arg(&graph)
        .args(["-map", "[v]"]);
    if any_audio {
        command.args(["-map", "[a]", "-c:a", "aac", "-b:a", "160k"]);
    }
    command.args([
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "20",
        "-pix_fmt",
        "yuv420p",
        "-r",
        &fps.to_string(),
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
    ]);
    let tmp = crate::atomic_write::temp_builder(".mp4")
        .tempfile_in(dir)
        .map_err(write_error)?;
    command.arg(tmp.path());
    let output = command.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ExportError::NeedsFfmpeg
        } else {
            write_error(e)
        }
    })?;
    if !output.status.success() {
        return Err(ExportError::Ffmpeg {
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    tmp.as_file().sync_all().map_err(write_error)?;
    tmp.persist(file).map_err(|e| write_error(e.error))?;
    crate::atomic_write::sync_dir(dir);
    Ok(Joined {
        seconds: total,
        format,
        clips: clips.len(),
        slates: slate_count,
    })
}

/// The stand-in for a shot not rendered: the emulator's slate (prompt, size, length)
/// where this build has H.264, else a plain dark frame from ffmpeg.
fn slate_input(
    command: &mut Command,
    clip: &Clip,
    format: Format,
    dir: &Path,
) -> Result<(), ExportError> {
    #[cfg(feature = "h264")]
    {
        let prompt = format!("NOT RENDERED: {}", clip.prompt);
        let job = format!("shot {} (take {})", clip.shot, clip.take);
        let slate = shotlist_emulator::video::Slate {
            prompt: &prompt,
            model: &clip.model,
            job_id: &job,
            width: format.width,
            height: format.height,
            seconds: clip.seconds.max(1),
            variant: clip.take,
            variants: clip.take,
            inset: None,
        };
        let bytes =
            shotlist_emulator::video::render_mp4(&slate).map_err(|e| ExportError::Slate {
                shot: clip.shot.clone(),
                message: e.to_string(),
            })?;
        let path = dir.join(format!("slate-{}.mp4", clip.shot));
        std::fs::write(&path, bytes).map_err(|source| ExportError::Write {
            path: path.clone(),
            source,
        })?;
        let mut input = std::ffi::OsString::from("file:");
        input.push(path.as_os_str());
        command.arg("-i").arg(input);
    }
    #[cfg(not(feature = "h264"))]
    {
        let _ = dir;
        command
            .args(["-f", "lavfi", "-t"])
            .arg(clip.seconds.max(1).to_string())
            .arg("-i")
            .arg(format!(
                "color=c=0x303030:s={}x{}:r={}",
                format.width, format.height, format.fps
            ));
    }
    Ok(())
}
