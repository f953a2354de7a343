//! Facts of a rendered video file: how long it is, its frame rate, its size, whether
//! it has sound. The contact sheet shows them and the edit is built from them
//! (`export.rs`): an edit must use a video's real length, not the length the manifest
//! asked for (a service may deliver 5.04 s for 5).
//!
//! MP4 (what every service here delivers) is read with `re_mp4`: only the `moov` tables,
//! never the media. Anything else goes to `ffprobe` (installed with ffmpeg) when it is
//! on `PATH`, with its arguments as a list (never a shell).
//!
//! What this module must never do: panic on a hostile file (the MP4 reader's panics are
//! caught and kept quiet by `read_mp4`, which `frames.rs` shares), or read the media
//! data of a video.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use re_mp4::{Mp4, TrackKind};

/// What a video file holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VideoInfo {
    /// Length of the video track, in seconds.
    pub seconds: f64,
    /// Frames in the video track.
    pub frames: u64,
    /// Frames per second (frames over seconds; 0 for an empty track).
    pub fps: f64,
    pub width: u32,
    pub height: u32,
    /// It has an audio track.
    pub has_audio: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("failed to read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` has no video track (or no frames in it): render the shot again", path.display())]
    NoVideo { path: PathBuf },
    #[error(
        "failed to read `{}`: {why}, and `ffprobe` is not on PATH; install ffmpeg \
         (Debian: `apt install ffmpeg`) to read videos shotlist cannot read itself",
        path.display()
    )]
    NeedsFfprobe { path: PathBuf, why: String },
    #[error("ffprobe failed to read `{}`: {message}; check that the file plays", path.display())]
    Ffprobe { path: PathBuf, message: String },
}

/// The facts of `video`.
pub fn probe(video: &Path) -> Result<VideoInfo, MediaError> {
    match probe_mp4(video) {
        Ok(info) => Ok(info),
        Err(Mp4Failure::Fatal(e)) => Err(e),
        Err(Mp4Failure::NotMp4(why)) => ffprobe(video, why),
    }
}

/// Reads an MP4's tables with `re_mp4`, which indexes them without checking them: a
/// damaged file is an error saying why, never a panic, nor a panic's message on stderr.
pub(crate) fn read_mp4<R: Read + Seek>(reader: &mut R, size: u64) -> Result<Mp4, String> {
    match quietly(|| Mp4::read(reader, size)) {
        Some(Ok(mp4)) => Ok(mp4),
        Some(Err(e)) => Err(format!("not an MP4 ({e})")),
        None => Err("its MP4 tables are inconsistent".to_string()),
    }
}

thread_local! {
    /// Set while this thread runs code whose panics are caught and reported as errors.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, catching a panic (`None`); the panic hook keeps that panic's message to
/// itself, and prints every other panic as before.
fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.ok()
}

enum Mp4Failure {
    Fatal(MediaError),
    NotMp4(String),
}

fn probe_mp4(video: &Path) -> Result<VideoInfo, Mp4Failure> {
    let read_error = |source| {
        Mp4Failure::Fatal(MediaError::Read {
            path: video.to_path_buf(),
            source,
        })
    };
    let file = File::open(video).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    let mut reader = BufReader::new(file);
    let mp4 = read_mp4(&mut reader, size).map_err(Mp4Failure::NotMp4)?;
    let handler = |t: &re_mp4::Track| t.trak(&mp4).mdia.hdlr.handler_type.value;
    let track = mp4
        .tracks()
        .values()
        .find(|t| t.kind == Some(TrackKind::Video) || handler(t) == *b"vide")
        .ok_or_else(|| {
            Mp4Failure::Fatal(MediaError::NoVideo {
                path: video.to_path_buf(),
            })
        })?;
    if track.samples.is_empty() || track.timescale == 0 {
        return Err(Mp4Failure::Fatal(MediaError::NoVideo {
            path: video.to_path_buf(),
        }));
    }
    // The track's own duration; where a muxer left it 0, the end of its last sample.
    let units = match track.duration {
        0 => track
            .samples
            .iter()
            .map(|s| s.composition_timestamp.max(s.decode_timestamp).max(0) as u64 + s.duration)
            .max()
            .unwrap_or(0),
        d => d,
    };
    let seconds = units as f64 / track.timescale as f64;
    let frames = track.samples.len() as u64;
    let has_audio = mp4
        .tracks()
        .values()
        .any(|t| t.kind == Some(TrackKind::Audio) || handler(t) == *b"soun");
    Ok(VideoInfo {
        seconds,
        frames,
        fps: if seconds > 0.0 {
            frames as f64 / seconds
        } else {
            0.0
        },
        width: u32::from(track.width),
        height: u32::from(track.height),
        has_audio,
    })
}

/// The fallback for what is not MP4: ffprobe's JSON.
fn ffprobe(video: &Path, why: String) -> Result<VideoInfo, MediaError> {
    let mut input = std::ffi::OsString::from("file:");
    input.push(video.as_os_str());
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-of", "json"])
        .args([
            "-show_entries",
            "stream=codec_type,width,height,avg_frame_rate,nb_read_packets,duration:format=duration",
        ])
        .arg(&input)
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MediaError::NeedsFfprobe {
                path: video.to_path_buf(),
                why,
            });
        }
        Err(source) => {
            return Err(MediaError::Read {
                path: video.to_path_buf(),
                source,
            });
        }
    };
    let failed = |message: String| MediaError::Ffprobe {
        path: video.to_path_buf(),
        message,
    };
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| failed(format!("unreadable output ({e})")))?;
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let number =
        |v: &serde_json::Value| -> Option<f64> { v.as_f64().or_else(|| v.as_str()?.parse().ok()) };
    let video_stream = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .ok_or_else(|| MediaError::NoVideo {
            path: video.to_path_buf(),
        })?;
    let seconds = number(&video_stream["duration"])
        .or_else(|| number(&json["format"]["duration"]))
        .unwrap_or(0.0);
    let fps = video_stream["avg_frame_rate"]
        .as_str()
        .and_then(|r| {
            let (n, d) = r.split_once('/')?;
            let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
            (d > 0.0).then(|| n / d)
        })
        .unwrap_or(0.0);
    let frames = number(&video_stream["nb_read_packets"])
        .map(|f| f as u64)
        .unwrap_or_else(|| (seconds * fps).round() as u64);
    Ok(VideoInfo {
        seconds,
        frames,
        fps,
        width: number(&video_stream["width"]).unwrap_or(0.0) as u32,
        height: number(&video_stream["height"]).unwrap_or(0.0) as u32,
        has_audio: streams.iter().any(|s| s["codec_type"] == "audio"),
    })
}

#[cfg(all(test, feature = "h264"))]
mod tests {
    use super::*;

    fn placeholder(seconds: u32, width: u32, height: u32) -> tempfile::NamedTempFile {
        let slate = shotlist_emulator::video::Slate {
            prompt: "a lighthouse",
            model: "sora-2",
            job_id: "job",
            width,
            height,
            seconds,
            variant: 1,
            variants: 1,
            inset: None,
        };
        let bytes = shotlist_emulator::video::render_mp4(&slate).unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        file
    }

    #[test]
    fn reads_the_length_rate_and_size_of_an_mp4() {
        let file = placeholder(3, 320, 180);
        let info = probe(file.path()).unwrap();
        assert!((info.seconds - 3.0).abs() < 1e-6, "{info:?}");
        assert_eq!(
            info.frames,
            3 * u64::from(shotlist_emulator::video::FRAMES_PER_SECOND)
        );
        assert!((info.fps - f64::from(shotlist_emulator::video::FRAMES_PER_SECOND)).abs() < 1e-6);
        assert_eq!((info.width, info.height), (320, 180));
        assert!(!info.has_audio);
    }

    /// Copies of a good MP4 with one byte of its `moov` tables set to 0xff, each.
    fn damaged_copies(good: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
        let moov = good
            .windows(4)
            .position(|w| w == b"moov")
            .expect("a moov box");
        (moov..good.len()).map(move |at| {
            let mut bad = good.to_vec();
            bad[at] = 0xff;
            bad
        })
    }

    #[test]
    fn tables_that_make_the_mp4_reader_panic_are_an_error() {
        let good = std::fs::read(placeholder(1, 64, 36).path()).unwrap();
        let read = |bad: &Vec<u8>| {
            let size = bad.len() as u64;
            quietly(|| Mp4::read(&mut std::io::Cursor::new(bad), size))
        };
        assert!(read(&good).is_some_and(|r| r.is_ok()));
        // The damages that make re_mp4 itself panic (caught by `quietly`).
        let panicking: Vec<Vec<u8>> = damaged_copies(&good)
            .filter(|bad| read(bad).is_none())
            .collect();
        assert!(!panicking.is_empty(), "no damage made re_mp4 panic");
        for bad in &panicking {
            let size = bad.len() as u64;
            let err = read_mp4(&mut std::io::Cursor::new(bad), size).err();
            assert_eq!(err.as_deref(), Some("its MP4 tables are inconsistent"));
        }
        // Outside `quietly`, the panic hook speaks again.
        assert!(!QUIET.with(Cell::get));
    }

    #[test]
    fn a_file_that_is_no_video_is_an_error_not_a_panic() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"\0\0\0\x18ftypisom garbage that is no mp4").unwrap();
        assert!(probe(file.path()).is_err());
    }
}
