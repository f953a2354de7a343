//! Frames of rendered videos, as PNG, and the type and size of images.
//!
//! A shot can start from a frame of another shot's video: its first frame, its last
//! frame, or the frame shown at a given time. [`extract`] gives that frame as an RGB8
//! PNG, [`image_info`] the type (sniffed from the bytes, never from a file name) and
//! size of an image given as input.
//!
//! H.264 in MP4 (what the emulator and the services render) is decoded here: `re_mp4`
//! reads the sample table, `openh264` decodes from the last key frame at or before the
//! frame asked for (never the whole video), and the YUV picture becomes RGB by the
//! colour matrix and range its SPS declares. Anything else (another codec, another
//! container, a stream openh264 refuses, or a build without the `h264` feature) goes to
//! `ffmpeg` when it is on `PATH`, with its arguments as a list (never a shell); without
//! it the error says what failed and how to install it.
//!
//! The same video always gives the same PNG bytes: one encoder, fixed settings, no
//! metadata, no threads. Everything here is synchronous and blocking (callers use
//! `spawn_blocking`).
//!
//! What this module must never do: panic on a hostile file (the MP4 reader's panics are
//! caught and reported), read the whole video into memory (only the samples decoded are
//! read), or pick a frame other than the one asked for without saying so.

use std::fmt;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use shotlist_models::catalogue::ImageFormat;

/// Which frame of a video.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FrameAt {
    First,
    Last,
    /// The frame shown at this many seconds from the start; a time at or past the
    /// video's end is an error, never clamped to the last frame.
    Seconds(f64),
}

impl fmt::Display for FrameAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameAt::First => f.write_str("the first frame"),
            FrameAt::Last => f.write_str("the last frame"),
            FrameAt::Seconds(t) => write!(f, "the frame at {t} s"),
        }
    }
}

/// One frame as an RGB8 PNG, and its size in pixels.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("png", &format_args!("{} bytes", self.png.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// An image's type, from its bytes, and its size, from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// The fix when shotlist cannot decode a video itself.
const INSTALL_FFMPEG: &str = "install ffmpeg (Debian: `apt install ffmpeg`) to extract frames \
                              from videos shotlist cannot decode itself";

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("failed to read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{seconds} s is not a time in a video: give 0 seconds or more, or `first` or `last`")]
    BadTime { seconds: f64 },
    #[error(
        "`{}` has no frame at {seconds} s: the video is {duration:.3} s long; give a time \
         below that, or `last` for its last frame",
        path.display()
    )]
    BeyondEnd {
        path: PathBuf,
        seconds: f64,
        duration: f64,
    },
    #[error("`{}` has no video track (or no frames in it): render the shot again", path.display())]
    NoVideo { path: PathBuf },
    #[error(
        "failed to extract {at} of `{}`: {why}, and `ffmpeg` is not on PATH; {INSTALL_FFMPEG}",
        path.display()
    )]
    NeedsFfmpeg {
        path: PathBuf,
        at: FrameAt,
        why: String,
    },
    #[error(
        "ffmpeg failed to extract {at} of `{}` ({status}): {stderr}; check that the file \
         plays, or render the shot again",
        path.display()
    )]
    Ffmpeg {
        path: PathBuf,
        at: FrameAt,
        status: String,
        stderr: String,
    },
    #[error(
        "ffmpeg found no frame {} in `{}`: {}",
        match at { FrameAt::Seconds(_) => "at that time", _ => "to extract" },
        path.display(),
        match at {
            FrameAt::Seconds(t) => format!("the video ends before {t} s; give an earlier time, or `last`"),
            _ => "check that the file plays, or render the shot again".to_string(),
        }
    )]
    FfmpegNoFrame { path: PathBuf, at: FrameAt },
    #[error("failed to encode the frame of `{}` as PNG: {reason}", path.display())]
    Encode { path: PathBuf, reason: String },
    #[error("not a PNG, JPEG or WebP image (it starts with `{start}`): give one of those types")]
    UnknownImage { start: String },
    #[error(
        "failed to read the {format} image's header: {reason}; the file may be cut short or damaged"
    )]
    BadImage {
        format: &'static str,
        reason: String,
    },
}

/// A frame decoded to RGB8, before PNG encoding.
struct Rgb {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

/// The frame of `video` at `at`, as an RGB8 PNG. Same file, same bytes.
pub fn extract(video: &Path, at: FrameAt) -> Result<Frame, FrameError> {
    if let FrameAt::Seconds(t) = at
        && !(t.is_finite() && t >= 0.0)
    {
        return Err(FrameError::BadTime { seconds: t });
    }
    #[cfg(feature = "h264")]
    let why = match h264::decode(video, at) {
        Ok(rgb) => return encode_png(video, &rgb),
        Err(h264::Failure::Fatal(e)) => return Err(e),
        Err(h264::Failure::Unsupported(why)) => why,
    };
    #[cfg(not(feature = "h264"))]
    let why = "this build of shotlist decodes no video itself (built without the `h264` feature)"
        .to_string();
    let rgb = ffmpeg::decode(video, at, why)?;
    encode_png(video, &rgb)
}

/// The type of an image, sniffed from its bytes, and its size, from its header (the
/// pixels are not decoded).
pub fn image_info(bytes: &[u8]) -> Result<ImageInfo, FrameError> {
    let format = ImageFormat::sniff(bytes).ok_or_else(|| FrameError::UnknownImage {
        start: bytes
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    })?;
    let codec = match format {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Webp => image::ImageFormat::WebP,
    };
    let (width, height) = image::ImageReader::with_format(Cursor::new(bytes), codec)
        .into_dimensions()
        .map_err(|e| FrameError::BadImage {
            format: format.name(),
            reason: e.to_string(),
        })?;
    if width == 0 || height == 0 {
        return Err(FrameError::BadImage {
            format: format.name(),
            reason: format!("{width}x{height} is an empty image"),
        });
    }
    Ok(ImageInfo {
        format,
        width,
        height,
    })
}

/// RGB8 PNG with fixed settings and no metadata, so equal pixels give equal bytes.
fn encode_png(video: &Path, rgb: &Rgb) -> Result<Frame, FrameError> {
    use image::ImageEncoder as _;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Default, FilterType::Adaptive)
        .write_image(
            &rgb.pixels,
            rgb.width,
            rgb.height,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| FrameError::Encode {
            path: video.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(Frame {
        png,
        width: rgb.width,
        height: rgb.height,
    })
}

/// The fallback: `ffmpeg` picks and decodes the frame.
mod ffmpeg {
    use std::ffi::{OsStr, OsString};
    use std::io::ErrorKind;
    use std::path::Path;
    use std::process::{Command, Output, Stdio};

    use super::{FrameAt, FrameError, Rgb};

    /// Runs `ffmpeg` on `video`; `why` says why shotlist did not decode it itself.
    ///
    /// The frame goes to a file in a temporary folder, not to a pipe, because for the
    /// last frame and for a time ffmpeg decodes a stretch of frames and `-update 1`
    /// keeps overwriting one image with each: only the last is ever held, at any size.
    /// A time `t` is the frame shown then, as in the H.264 path: ffmpeg's own `-ss t`
    /// gives the first frame at or after `t`, so it decodes from up to a second before
    /// `t` and stops just past it (`-t`), keeping the last frame that started by then.
    pub(super) fn decode(video: &Path, at: FrameAt, why: String) -> Result<Rgb, FrameError> {
        let folder = tempfile::tempdir().map_err(|source| FrameError::Read {
            path: std::env::temp_dir(),
            source,
        })?;
        let out = folder.path().join("frame.png");
        // `file:` so that a name with a colon is never read as a protocol.
        let mut input = OsString::from("file:");
        input.push(video.as_os_str());

        let mut command = Command::new("ffmpeg");
        command.args(["-nostdin", "-hide_banner", "-v", "error"]);
        let mut until = None;
        match at {
            FrameAt::First => {}
            FrameAt::Last => {
                command.args(["-sseof", "-1"]);
            }
            FrameAt::Seconds(t) => {
                let duration = probe_duration(video, at, &why, &input)?;
                if t >= duration {
                    return Err(FrameError::BeyondEnd {
                        path: video.to_path_buf(),
                        seconds: t,
                        duration,
                    });
                }
                let from = (t - 1.0).max(0.0);
                command.arg("-ss").arg(format!("{from:.6}"));
                // Half a millisecond of slack keeps a frame that starts exactly at `t`.
                until = Some(format!("{:.6}", t - from + 0.0005));
            }
        }
        command.arg("-i").arg(&input).args(["-map", "0:v:0"]);
        match (at, until) {
            (FrameAt::First, _) => command.args(["-frames:v", "1"]),
            (_, Some(until)) => command.arg("-t").arg(until).args(["-update", "1"]),
            (_, None) => command.args(["-update", "1"]),
        };
        command
            .args(["-pix_fmt", "rgb24", "-f", "image2", "-c:v", "png", "-y"])
            .arg(&out);
        run(&mut command, video, at, &why)?;
        let png = match std::fs::read(&out) {
            Ok(png) if !png.is_empty() => png,
            _ => {
                return Err(FrameError::FfmpegNoFrame {
                    path: video.to_path_buf(),
                    at,
                });
            }
        };
        let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .map_err(|e| FrameError::Ffmpeg {
                path: video.to_path_buf(),
                at,
                status: "wrote no readable PNG".to_string(),
                stderr: e.to_string(),
            })?
            .into_rgb8();
        Ok(Rgb {
            width: image.width(),
            height: image.height(),
            pixels: image.into_raw(),
        })
    }

    /// The video's length in seconds, from `ffprobe` (installed with ffmpeg).
    fn probe_duration(
        video: &Path,
        at: FrameAt,
        why: &str,
        input: &OsStr,
    ) -> Result<f64, FrameError> {
        let mut command = Command::new("ffprobe");
        command
            .args(["-v", "error", "-show_entries", "format=duration"])
            .args(["-of", "default=noprint_wrappers=1:nokey=1"])
            .arg(input);
        let output = run(&mut command, video, at, why)?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|d| d.is_finite() && *d > 0.0)
            .ok_or_else(|| FrameError::Ffmpeg {
                path: video.to_path_buf(),
                at,
                status: "ffprobe gave no duration".to_string(),
                stderr: text.trim().chars().take(200).collect(),
            })
    }

    /// Runs a program of ffmpeg's with no shell, no input, and its errors kept.
    fn run(
        command: &mut Command,
        video: &Path,
        at: FrameAt,
        why: &str,
    ) -> Result<Output, FrameError> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let output = match command.output() {
            Ok(output) => output,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(FrameError::NeedsFfmpeg {
                    path: video.to_path_buf(),
                    at,
                    why: why.to_string(),
                });
            }
            Err(e) => {
                return Err(FrameError::Ffmpeg {
                    path: video.to_path_buf(),
                    at,
                    status: format!("`{}` could not start", command.get_program().display()),
                    stderr: e.to_string(),
                });
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(FrameError::Ffmpeg {
                path: video.to_path_buf(),
                at,
                status: output.status.to_string(),
                stderr: stderr.trim().chars().take(2000).collect(),
            });
        }
        Ok(output)
    }
}

/// H.264 in MP4, decoded here.
#[cfg(feature = "h264")]
mod h264 {
    use std::fs::File;
    use std::io::{BufReader, Read, Seek, SeekFrom};
    use std::path::Path;

    use openh264::OpenH264API;
    use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
    use openh264::formats::YUVSource;
    use re_mp4::{Sample, StsdBoxContent, TrackKind};

    use super::{FrameAt, FrameError, Rgb};

    /// Why this module gave up: for good, or to let ffmpeg try.
    pub(super) enum Failure {
        Fatal(FrameError),
        Unsupported(String),
    }

    pub(super) fn decode(video: &Path, at: FrameAt) -> Result<Rgb, Failure> {
        let read_error = |source| {
            Failure::Fatal(FrameError::Read {
                path: video.to_path_buf(),
                source,
            })
        };
        let file = File::open(video).map_err(read_error)?;
        let size = file.metadata().map_err(read_error)?.len();
        let mut reader = BufReader::new(file);
        // A damaged file gives an error, not a panic (re_mp4 does not check its tables).
        let mp4 = crate::media::read_mp4(&mut reader, size).map_err(Failure::Unsupported)?;
        let no_video = || {
            Failure::Fatal(FrameError::NoVideo {
                path: video.to_path_buf(),
            })
        };
        // re_mp4 knows a track is video only from a codec it knows; the handler says so
        // of every codec.
        let track = mp4
            .tracks()
            .values()
            .find(|t| {
                t.kind == Some(TrackKind::Video)
                    || t.trak(&mp4).mdia.hdlr.handler_type.value == *b"vide"
            })
            .ok_or_else(no_video)?;
        let avcc = match &track.trak(&mp4).mdia.minf.stbl.stsd.contents {
            StsdBoxContent::Avc1(avc1) => &avc1.avcc.contents,
            _ => {
                let codec = track
                    .codec_string(&mp4)
                    .unwrap_or_else(|| "a codec shotlist does not know".into());
                return Err(Failure::Unsupported(format!(
                    "its video is {codec}, not H.264"
                )));
            }
        };
        let samples = &track.samples;
        if samples.is_empty() || track.timescale == 0 {
            return Err(no_video());
        }

        let target = pick(samples, at, track.timescale, track.duration).map_err(|end| {
            Failure::Fatal(FrameError::BeyondEnd {
                path: video.to_path_buf(),
                seconds: match at {
                    FrameAt::Seconds(t) => t,
                    _ => 0.0,
                },
                duration: end as f64 / track.timescale as f64,
            })
        })?;
        // Decode from the last key frame at or before the target (in decode order).
        let start = (0..=target)
            .rev()
            .find(|&i| samples[i].is_sync)
            .unwrap_or(0);
        let fed = &samples[start..=target];
        // The decoder outputs in display order: the target is preceded by every fed
        // sample shown before it.
        let wanted = fed
            .iter()
            .filter(|s| s.composition_timestamp < samples[target].composition_timestamp)
            .count();

        let sps = avcc
            .sequence_parameter_sets
            .first()
            .ok_or_else(|| Failure::Unsupported("its `avcC` box has no SPS".to_string()))?;
        let colour = Colour::of_sps(&sps.bytes);
        let length_size = usize::from(avcc.length_size_minus_one) + 1;

        let unsupported = |what: String| Failure::Unsupported(format!("openh264 {what}"));
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let mut decoder = Decoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| unsupported(format!("did not start: {e}")))?;
        let mut annex_b = Vec::new();
        for nal in avcc
            .sequence_parameter_sets
            .iter()
            .chain(&avcc.picture_parameter_sets)
        {
            annex_b.extend_from_slice(&[0, 0, 0, 1]);
            annex_b.extend_from_slice(&nal.bytes);
        }
        let mut shown = 0;
        let mut sample_bytes = Vec::new();
        for (i, sample) in fed.iter().enumerate() {
            read_sample(&mut reader, sample, &mut sample_bytes).map_err(read_error)?;
            to_annex_b(&sample_bytes, length_size, &mut annex_b)
                .map_err(|what| Failure::Unsupported(format!("sample {} {what}", start + i + 1)))?;
            let picture = decoder
                .decode(&annex_b)
                .map_err(|e| unsupported(format!("failed on sample {}: {e}", start + i + 1)))?;
            annex_b.clear();
            if let Some(yuv) = picture {
                if shown == wanted {
                    return Ok(colour.to_rgb(&yuv));
                }
                shown += 1;
            }
        }
        // Pictures the decoder still holds (reordering delay); `shown < wanted` here.
        let rest = decoder
            .flush_remaining()
            .map_err(|e| unsupported(format!("failed to flush: {e}")))?;
        match rest.get(wanted - shown) {
            Some(yuv) => Ok(colour.to_rgb(yuv)),
            None => Err(unsupported(format!(
                "gave {} pictures for {} samples",
                shown + rest.len(),
                fed.len()
            ))),
        }
    }

    /// The index (decode order) of the sample shown at `at`, or `Err(the video's end,
    /// in ticks)` when `at` is at or past it.
    fn pick(samples: &[Sample], at: FrameAt, timescale: u64, duration: u64) -> Result<usize, u64> {
        let by_display = |a: &usize, b: &usize| {
            samples[*a]
                .composition_timestamp
                .cmp(&samples[*b].composition_timestamp)
                .then(a.cmp(b))
        };
        let all = 0..samples.len();
        let last = all.clone().max_by(by_display).unwrap_or(0);
        match at {
            FrameAt::First => Ok(all.min_by(by_display).unwrap_or(0)),
            FrameAt::Last => Ok(last),
            FrameAt::Seconds(t) => {
                let end = duration.max(samples[last].composition_timestamp.max(0) as u64);
                // A millionth of a tick of slack, so 0.3 s is 27000 ticks of 90 kHz and
                // not 26999.99…
                let tick = (t * timescale as f64 + 1e-6).floor();
                if tick >= end as f64 {
                    return Err(end);
                }
                let tick = tick as i64;
                Ok(all
                    .filter(|&i| samples[i].composition_timestamp <= tick)
                    .max_by(by_display)
                    .unwrap_or(0))
            }
        }
    }

    fn read_sample(
        reader: &mut BufReader<File>,
        sample: &Sample,
        out: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        // No sample of a real video is this large; a damaged table must not make us
        // allocate gigabytes.
        const MAX_SAMPLE: u64 = 256 << 20;
        if sample.size > MAX_SAMPLE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a sample of {} bytes", sample.size),
            ));
        }
        out.resize(sample.size as usize, 0);
        reader.seek(SeekFrom::Start(sample.offset))?;
        reader.read_exact(out)
    }

    /// Appends an AVCC sample (NAL units each after a big-endian length) as Annex B
    /// (each after a start code).
    fn to_annex_b(sample: &[u8], length_size: usize, out: &mut Vec<u8>) -> Result<(), String> {
        let mut rest = sample;
        while !rest.is_empty() {
            let (len, tail) = rest
                .split_at_checked(length_size)
                .ok_or("ends inside a NAL unit's length")?;
            let len = len.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
            let (nal, tail) = tail
                .split_at_checked(len)
                .ok_or("has a NAL unit longer than itself")?;
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
            rest = tail;
        }
        Ok(())
    }

    /// How YUV becomes RGB: the matrix and range the SPS's VUI declares.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub(super) struct Colour {
        /// Kr and Kb of the matrix.
        kr: f64,
        kb: f64,
        full_range: bool,
    }

    const BT709: (f64, f64) = (0.2126, 0.0722);
    const BT601: (f64, f64) = (0.299, 0.114);

    impl Colour {
        /// From an SPS NAL unit (header byte included). Unstated or unreadable: BT.709
        /// limited range at 720 lines and more, BT.601 below, as players assume.
        pub(super) fn of_sps(sps: &[u8]) -> Colour {
            let signal = sps.get(1..).and_then(|p| video_signal(&unescape(p)));
            let height = signal.as_ref().map_or(720, |s| s.height);
            let by_height = if height >= 720 { BT709 } else { BT601 };
            let (kr, kb) = match signal.as_ref().and_then(|s| s.matrix) {
                Some(1) => BT709,
                Some(5 | 6) => BT601,
                _ => by_height,
            };
            Colour {
                kr,
                kb,
                full_range: signal.is_some_and(|s| s.full_range),
            }
        }

        fn to_rgb(self, yuv: &DecodedYUV<'_>) -> Rgb {
            let (width, height) = yuv.dimensions();
            let (ys, us, vs) = yuv.strides();
            let (y_plane, u_plane, v_plane) = (yuv.y(), yuv.u(), yuv.v());
            // Fixed point, 16 fractional bits: integer arithmetic, the same everywhere.
            const ONE: f64 = 65536.0;
            let kg = 1.0 - self.kr - self.kb;
            let (y_scale, c_scale, y_offset) = if self.full_range {
                (1.0, 1.0, 0)
            } else {
                (255.0 / 219.0, 255.0 / 224.0, 16)
            };
            let fix = |x: f64| (x * ONE).round() as i32;
            let y_mul = fix(y_scale);
            let r_v = fix(2.0 * (1.0 - self.kr) * c_scale);
            let g_u = fix(2.0 * self.kb * (1.0 - self.kb) / kg * c_scale);
            let g_v = fix(2.0 * self.kr * (1.0 - self.kr) / kg * c_scale);
            let b_u = fix(2.0 * (1.0 - self.kb) * c_scale);
            let clamp = |x: i32| ((x + (1 << 15)) >> 16).clamp(0, 255) as u8;

            let mut pixels = vec![0u8; width * height * 3];
            // Plain index loops: dev builds do not optimise iterator adapters away.
            for row in 0..height {
                let y_row = row * ys;
                let c_row = (row / 2) * us;
                let v_row = (row / 2) * vs;
                let out_row = row * width * 3;
                for col in 0..width {
                    let y = (i32::from(y_plane[y_row + col]) - y_offset) * y_mul;
                    let u = i32::from(u_plane[c_row + col / 2]) - 128;
                    let v = i32::from(v_plane[v_row + col / 2]) - 128;
                    let o = out_row + col * 3;
                    pixels[o] = clamp(y + r_v * v);
                    pixels[o + 1] = clamp(y - g_u * u - g_v * v);
                    pixels[o + 2] = clamp(y + b_u * u);
                }
            }
            Rgb {
                width: width as u32,
                height: height as u32,
                pixels,
            }
        }
    }

    /// What the SPS says of colour, and its coded height.
    #[derive(Debug)]
    struct Signal {
        height: u32,
        matrix: Option<u32>,
        full_range: bool,
    }

    /// Reads an SPS's RBSP (after the header byte) up to the VUI's video signal type.
    fn video_signal(rbsp: &[u8]) -> Option<Signal> {
        let mut r = Bits { data: rbsp, pos: 0 };
        let profile = r.bits(8)?;
        r.bits(16)?; // constraint flags, level
        r.ue()?; // seq_parameter_set_id
        if matches!(
            profile,
            100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
        ) {
            let chroma_format = r.ue()?;
            if chroma_format == 3 {
                r.bits(1)?; // separate_colour_plane_flag
            }
            r.ue()?; // bit_depth_luma_minus8
            r.ue()?; // bit_depth_chroma_minus8
            r.bits(1)?; // qpprime_y_zero_transform_bypass_flag
            if r.bits(1)? == 1 {
                for i in 0..if chroma_format == 3 { 12 } else { 8 } {
                    if r.bits(1)? == 1 {
                        r.skip_scaling_list(if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        r.ue()?; // log2_max_frame_num_minus4
        match r.ue()? {
            0 => {
                r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
            }
            1 => {
                r.bits(1)?; // delta_pic_order_always_zero_flag
                r.ue()?; // offset_for_non_ref_pic (se: same length)
                r.ue()?; // offset_for_top_to_bottom_field
                for _ in 0..r.ue()? {
                    r.ue()?; // offset_for_ref_frame
                }
            }
            _ => {}
        }
        r.ue()?; // max_num_ref_frames
        r.bits(1)?; // gaps_in_frame_num_value_allowed_flag
        r.ue()?; // pic_width_in_mbs_minus1
        let height_units = r.ue()? + 1;
        let frame_mbs_only = r.bits(1)?;
        if frame_mbs_only == 0 {
            r.bits(1)?; // mb_adaptive_frame_field_flag
        }
        let height = height_units * 16 * (2 - frame_mbs_only);
        r.bits(1)?; // direct_8x8_inference_flag
        if r.bits(1)? == 1 {
            for _ in 0..4 {
                r.ue()?; // frame cropping
            }
        }
        let unstated = Signal {
            height,
            matrix: None,
            full_range: false,
        };
        if r.bits(1)? == 0 {
            return Some(unstated); // no VUI
        }
        if r.bits(1)? == 1 && r.bits(8)? == 255 {
            r.bits(32)?; // sar_width, sar_height
        }
        if r.bits(1)? == 1 {
            r.bits(1)?; // overscan_appropriate_flag
        }
        if r.bits(1)? == 0 {
            return Some(unstated); // no video_signal_type
        }
        r.bits(3)?; // video_format
        let full_range = r.bits(1)? == 1;
        let matrix = if r.bits(1)? == 1 {
            r.bits(16)?; // colour_primaries, transfer_characteristics
            Some(r.bits(8)?)
        } else {
            None
        };
        Some(Signal {
            height,
            matrix,
            full_range,
        })
    }

    /// RBSP from a NAL payload: drops the emulation-prevention byte of each `00 00 03`.
    fn unescape(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len());
        let mut zeros = 0;
        for &b in payload {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            out.push(b);
        }
        out
    }

    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
    }

    impl Bits<'_> {
        fn bits(&mut self, n: u32) -> Option<u32> {
            let mut v = 0u32;
            for _ in 0..n {
                let byte = self.data.get(self.pos / 8)?;
                v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
                self.pos += 1;
            }
            Some(v)
        }

        /// Unsigned Exp-Golomb.
        fn ue(&mut self) -> Option<u32> {
            let mut zeros = 0;
            while self.bits(1)? == 0 {
                zeros += 1;
                if zeros > 31 {
                    return None;
                }
            }
            let rest = self.bits(zeros)?;
            Some(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
        }

        /// Signed Exp-Golomb.
        fn se(&mut self) -> Option<i64> {
            let k = i64::from(self.ue()?);
            Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
        }

        fn skip_scaling_list(&mut self, size: usize) -> Option<()> {
            let (mut last, mut next) = (8i64, 8i64);
            for _ in 0..size {
                if next != 0 {
                    next = (last + self.se()? + 256).rem_euclid(256);
                }
                if next != 0 {
                    last = next;
                }
            }
            Some(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bytes` encoded as `format` by the image crate, `width`x`height`.
    fn image_bytes(format: image::ImageFormat, width: u32, height: u32) -> Vec<u8> {
        let pixels = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, 90])
        });
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(pixels)
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn image_info_reads_type_and_size_of_each_type() {
        for (codec, format) in [
            (image::ImageFormat::Png, ImageFormat::Png),
            (image::ImageFormat::Jpeg, ImageFormat::Jpeg),
            (image::ImageFormat::WebP, ImageFormat::Webp),
        ] {
            let bytes = image_bytes(codec, 37, 21);
            assert_eq!(
                image_info(&bytes).unwrap(),
                ImageInfo {
                    format,
                    width: 37,
                    height: 21
                },
                "{format:?}"
            );
        }
    }

    #[test]
    fn image_info_refuses_what_is_no_image_and_says_what_it_takes() {
        let err = image_info(b"<html>not found</html>").unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, FrameError::UnknownImage { .. }), "{err:?}");
        assert!(
            message.contains("not a PNG, JPEG or WebP image"),
            "{message}"
        );
        assert!(message.contains("3c 68 74 6d"), "{message}");
        assert!(image_info(b"").is_err());

        // The right magic number, then garbage: the header is what fails.
        let mut png = image_bytes(image::ImageFormat::Png, 8, 8);
        png.truncate(12);
        let message = image_info(&png).unwrap_err().to_string();
        assert!(message.contains("PNG image's header"), "{message}");
    }

    #[test]
    fn bad_times_are_refused_before_any_work() {
        for t in [-1.0, f64::NAN, f64::INFINITY] {
            let err = extract(Path::new("/nonexistent.mp4"), FrameAt::Seconds(t)).unwrap_err();
            assert!(matches!(err, FrameError::BadTime { .. }), "{err:?}");
        }
    }

    #[test]
    fn a_missing_video_is_named() {
        let err = extract(Path::new("/nonexistent/shot.mp4"), FrameAt::First).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/nonexistent/shot.mp4"), "{message}");
    }

    #[cfg(feature = "h264")]
    mod mp4 {
        use std::collections::BTreeMap;
        use std::sync::Mutex;
        use std::time::Instant;

        use shotlist_emulator::video::{FRAMES_PER_SECOND, Slate, render_mp4};

        use super::*;

        fn ffmpeg_present() -> bool {
            std::process::Command::new("ffmpeg")
                .arg("-version")
                .output()
                .is_ok_and(|o| o.status.success())
        }

        fn pixels(png: &[u8]) -> image::RgbImage {
            image::load_from_memory_with_format(png, image::ImageFormat::Png)
                .unwrap()
                .into_rgb8()
        }

        /// The largest difference of any channel of any pixel, and the mean difference.
        fn difference(a: &image::RgbImage, b: &image::RgbImage) -> (u8, f64) {
            assert_eq!(a.dimensions(), b.dimensions());
            let (mut max, mut sum) = (0u8, 0u64);
            for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
                let d = x.abs_diff(*y);
                max = max.max(d);
                sum += u64::from(d);
            }
            (max, sum as f64 / a.as_raw().len() as f64)
        }

        /// The frame ffmpeg extracts, through the fallback.
        fn ffmpeg_frame(path: &Path, at: FrameAt) -> image::RgbImage {
            let rgb = ffmpeg::decode(path, at, String::new()).unwrap();
            image::RgbImage::from_raw(rgb.width, rgb.height, rgb.pixels).unwrap()
        }

        /// A placeholder MP4 in a fresh folder (the bytes are rendered once per size and
        /// duration, and shared between tests).
        fn video(width: u32, height: u32, seconds: u32) -> (tempfile::TempDir, PathBuf) {
            /// The placeholders rendered so far, by width, height and seconds.
            type Rendered = BTreeMap<(u32, u32, u32), Vec<u8>>;
            static RENDERED: Mutex<Rendered> = Mutex::new(BTreeMap::new());
            let mut rendered = RENDERED.lock().unwrap();
            let mp4 = rendered.entry((width, height, seconds)).or_insert_with(|| {
                render_mp4(&Slate {
                    prompt: "A lighthouse keeper climbs the spiral stairs at dawn",
                    model: "sora-2",
                    job_id: "video_frames_test",
                    width,
                    height,
                    seconds,
                    variant: 1,
                    variants: 1,
                    inset: None,
                })
                .unwrap()
            });
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("shot.mp4");
            std::fs::write(&path, mp4).unwrap();
            (dir, path)
        }

        /// `video` re-encoded by ffmpeg with `codec_args`, or `None` without ffmpeg.
        fn transcoded(video: &Path, name: &str, codec_args: &[&str]) -> Option<PathBuf> {
            // The test script installs ffmpeg; without it this check fails, never skips.
            assert!(
                ffmpeg_present(),
                "ffmpeg is not on PATH: run `bash scripts/test.sh`, which installs it"
            );
            let out = video.with_file_name(name);
            let status = std::process::Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-i"])
                .arg(video)
                .args(codec_args)
                .arg("-y")
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success(), "ffmpeg {codec_args:?}");
            Some(out)
        }

        #[test]
        fn first_and_last_frames_are_the_video_size_and_differ() {
            let (_dir, path) = video(854, 480, 3);
            let first = extract(&path, FrameAt::First).unwrap();
            let last = extract(&path, FrameAt::Last).unwrap();
            for frame in [&first, &last] {
                assert_eq!((frame.width, frame.height), (854, 480));
                assert_eq!(
                    image_info(&frame.png).unwrap(),
                    ImageInfo {
                        format: ImageFormat::Png,
                        width: 854,
                        height: 480
                    }
                );
                assert_eq!(pixels(&frame.png).dimensions(), (854, 480));
            }
            // The timecode and progress bar move every frame.
            assert_ne!(pixels(&first.png), pixels(&last.png));
        }

        #[test]
        fn the_same_frame_twice_is_the_same_bytes() {
            let (_dir, path) = video(480, 480, 3);
            for at in [FrameAt::First, FrameAt::Last, FrameAt::Seconds(1.5)] {
                assert_eq!(
                    extract(&path, at).unwrap(),
                    extract(&path, at).unwrap(),
                    "{at}"
                );
            }
        }

        #[test]
        fn a_time_is_the_frame_shown_then() {
            let (_dir, path) = video(480, 480, 3);
            let fps = f64::from(FRAMES_PER_SECOND);
            let at = |t: f64| pixels(&extract(&path, FrameAt::Seconds(t)).unwrap().png);
            assert_eq!(
                at(0.0),
                pixels(&extract(&path, FrameAt::First).unwrap().png)
            );
            // Within one frame's time, one frame; the next frame starts at 1/fps.
            assert_eq!(at(1.0), at(1.0 + 0.5 / fps));
            assert_ne!(at(1.0), at(1.0 + 1.0 / fps));
            // The last frame is shown until the end.
            let last = pixels(&extract(&path, FrameAt::Last).unwrap().png);
            assert_eq!(at(3.0 - 0.5 / fps), last);
            assert_ne!(at(3.0 - 1.5 / fps), last);
        }

        #[test]
        fn a_time_past_the_end_is_an_error_that_says_so() {
            let (_dir, path) = video(480, 480, 3);
            for t in [3.0, 3.5, 1000.0] {
                let err = extract(&path, FrameAt::Seconds(t)).unwrap_err();
                assert!(matches!(err, FrameError::BeyondEnd { .. }), "{t}: {err:?}");
                let message = err.to_string();
                assert!(message.contains("the video is 3.000 s long"), "{message}");
                assert!(message.contains("`last`"), "{message}");
                assert!(message.contains(&path.display().to_string()), "{message}");
            }
        }

        /// Times to compare: the ends, a frame's start, and inside a frame's time.
        fn times(seconds: f64) -> [FrameAt; 5] {
            let fps = f64::from(FRAMES_PER_SECOND);
            [
                FrameAt::First,
                FrameAt::Seconds(1.0),
                FrameAt::Seconds(2.0 + 0.5 / fps),
                FrameAt::Seconds(seconds - 1.5 / fps),
                FrameAt::Last,
            ]
        }

        #[test]
        fn frames_match_what_ffmpeg_extracts() {
            assert!(
                ffmpeg_present(),
                "ffmpeg is not on PATH: run `bash scripts/test.sh`, which installs it"
            );
            let (_dir, path) = video(854, 480, 5);
            for at in times(5.0) {
                let ours = pixels(&extract(&path, at).unwrap().png);
                // The same bitstream, the same BT.709 matrix: only rounding differs
                // (a neighbouring frame would differ by far more in its timecode).
                let (max, mean) = difference(&ours, &ffmpeg_frame(&path, at));
                assert!(max <= 6 && mean < 1.5, "{at}: max {max}, mean {mean}");
            }
            let beyond = ffmpeg::decode(&path, FrameAt::Seconds(5.0), String::new());
            assert!(
                matches!(beyond, Err(FrameError::BeyondEnd { .. })),
                "{:?}",
                beyond.err()
            );
        }

        #[test]
        fn b_frames_come_out_in_display_order() {
            // High profile with B-frames, as services encode: decoded here or by ffmpeg,
            // the frame must be the one ffmpeg shows at that time.
            let (_dir, path) = video(480, 480, 5);
            let Some(x264) = transcoded(
                &path,
                "x264.mp4",
                &[
                    "-c:v",
                    "libx264",
                    "-profile:v",
                    "high",
                    "-bf",
                    "3",
                    "-g",
                    "24",
                ],
            ) else {
                return;
            };
            for at in times(5.0) {
                let Ok(rgb) = h264::decode(&x264, at) else {
                    panic!("{at}: openh264 refused x264's High profile");
                };
                let ours = image::RgbImage::from_raw(rgb.width, rgb.height, rgb.pixels).unwrap();
                let (max, mean) = difference(&ours, &ffmpeg_frame(&x264, at));
                assert!(max <= 6 && mean < 1.5, "{at}: max {max}, mean {mean}");
            }
        }

        #[test]
        fn other_codecs_go_to_ffmpeg() {
            let (_dir, path) = video(480, 480, 3);
            let Some(mpeg4) = transcoded(&path, "mpeg4.mp4", &["-c:v", "mpeg4", "-q:v", "2"])
            else {
                return;
            };
            let frame = extract(&mpeg4, FrameAt::Last).unwrap();
            assert_eq!((frame.width, frame.height), (480, 480));
            // Lossy, but the same picture as the H.264 original's last frame.
            let original = pixels(&extract(&path, FrameAt::Last).unwrap().png);
            let (_, mean) = difference(&pixels(&frame.png), &original);
            assert!(mean < 4.0, "mean {mean}");
            assert_eq!(frame, extract(&mpeg4, FrameAt::Last).unwrap());
            let err = extract(&mpeg4, FrameAt::Seconds(3.5)).unwrap_err();
            assert!(matches!(err, FrameError::BeyondEnd { .. }), "{err:?}");
        }

        #[test]
        fn last_frame_of_an_hd_placeholder_is_quick() {
            let (_dir, path) = video(1280, 720, 8);
            let start = Instant::now();
            let frame = extract(&path, FrameAt::Last).unwrap();
            let elapsed = start.elapsed();
            eprintln!("last frame of 1280x720 x 8 s: {elapsed:?}");
            assert_eq!((frame.width, frame.height), (1280, 720));
        }
    }
}
