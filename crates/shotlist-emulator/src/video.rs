//! Placeholder videos: a slate showing the prompt, size, duration, variant and a running
//! timecode, encoded as browser-playable H.264 MP4, plus the stills the APIs serve
//! beside a video (JPEG and WebP thumbnails, a WebP sprite sheet).
//!
//! The emulator serves these in place of generated video, so a storyboard can be cut
//! together before any real job runs. Each frame says plainly that it is a placeholder
//! (a "PLACEHOLDER — shotlist emulator" band), shows the prompt word-wrapped (cut with
//! an ellipsis when it does not fit), the size, duration, frame rate, model,
//! "variant i/n" and job id, and a timecode (`HH:MM:SS:FF`), frame counter and
//! progress bar with one tick per second that move every frame, so timing can be
//! judged in an edit.
//!
//! The video is 12 fps ([`FRAMES_PER_SECOND`]): enough to read every frame's timecode,
//! half the work of 24. It is H.264 constrained baseline, 4:2:0, BT.709, fixed QP, a
//! key frame every 2 s, `moov` before `mdat`, exactly `width`x`height` (even sizes
//! from 2x2 to 3840x2160; cropping in the SPS handles sizes that are not multiples
//! of 16) and exactly `seconds` long.
//!
//! What this module must never do: panic on any size or duration (bad ones are a
//! [`VideoError`]), depend on the clock, randomness or thread timing (the same slate
//! always gives the same bytes, so the emulator's content is cacheable and tests can
//! compare it), or do anything but compute (no files, no network).
//!
//! Built without the `h264` cargo feature (H.264 is patent-encumbered in places),
//! [`render_mp4`] returns the JPEG slate instead of an MP4, and the emulator serves
//! that still in place of the video.

mod draw;
#[cfg(feature = "h264")]
mod h264;
mod layout;
mod stills;

/// Frame rate of the placeholder video.
pub const FRAMES_PER_SECOND: u32 = layout::FPS;

/// Largest width or height rendered: bounds memory (a 4096x4096 canvas is 48 MiB).
const MAX_DIMENSION: u32 = 4096;
/// Longest video rendered, far above what either API allows, against runaway work.
const MAX_SECONDS: u32 = 120;

/// What a placeholder video shows.
#[derive(Clone, Debug)]
pub struct Slate<'a> {
    pub prompt: &'a str,
    pub model: &'a str,
    pub job_id: &'a str,
    pub width: u32,
    pub height: u32,
    pub seconds: u32,
    /// 1-based variant number, of `variants`.
    pub variant: u32,
    pub variants: u32,
    /// The image the job started from, drawn as an inset, so that a person looking at
    /// the placeholder sees which image a shot was given.
    pub inset: Option<&'a Inset>,
}

/// An input image, decoded: RGB8, row by row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inset {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    /// What it is ("first frame").
    pub label: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("failed to encode the placeholder video: {0}")]
    Encode(String),
    /// The slate asks for something that cannot be rendered (a zero or odd size, a
    /// zero duration, ...).
    #[error("cannot render this placeholder: {0}")]
    Invalid(String),
}

/// Renders the slate as an MP4 (H.264, `moov` before `mdat`) of exactly
/// `width`x`height` and `seconds` long. Width and height must be even.
///
/// Without the `h264` feature this returns [`render_thumbnail_jpeg`]'s JPEG instead.
pub fn render_mp4(slate: &Slate<'_>) -> Result<Vec<u8>, VideoError> {
    validate(slate)?;
    #[cfg(feature = "h264")]
    {
        h264::render(slate)
    }
    #[cfg(not(feature = "h264"))]
    {
        stills::jpeg(slate)
    }
}

/// A JPEG still of the slate's first frame (Azure `content/thumbnail`, `image/jpg`).
pub fn render_thumbnail_jpeg(slate: &Slate<'_>) -> Result<Vec<u8>, VideoError> {
    validate(slate)?;
    stills::jpeg(slate)
}

/// A WebP still (`variant=thumbnail`) of the slate's first frame, lossless, at the
/// video's size.
pub fn render_thumbnail_webp(slate: &Slate<'_>) -> Result<Vec<u8>, VideoError> {
    validate(slate)?;
    stills::webp(slate)
}

/// A WebP sprite sheet (`variant=spritesheet`): a grid of frames across the duration.
/// Ten frames at evenly spaced times (fewer for very short videos), five per row, each
/// scaled down to at most 256 pixels on its longer side.
pub fn render_spritesheet_webp(slate: &Slate<'_>) -> Result<Vec<u8>, VideoError> {
    validate(slate)?;
    stills::spritesheet(slate)
}

fn validate(slate: &Slate<'_>) -> Result<(), VideoError> {
    let (w, h) = (slate.width, slate.height);
    if w == 0 || h == 0 {
        return Err(VideoError::Invalid(format!("{w}x{h}: empty frame")));
    }
    if w > MAX_DIMENSION || h > MAX_DIMENSION {
        return Err(VideoError::Invalid(format!(
            "{w}x{h}: larger than {MAX_DIMENSION} pixels on a side"
        )));
    }
    if slate.seconds == 0 || slate.seconds > MAX_SECONDS {
        return Err(VideoError::Invalid(format!(
            "{} s: the duration must be 1 to {MAX_SECONDS} seconds",
            slate.seconds
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slate(width: u32, height: u32, seconds: u32) -> Slate<'static> {
        Slate {
            prompt: "A paper boat drifts down a rain-soaked street at dusk, neon signs \
                     reflected in the puddles; slow dolly in, shallow depth of field.",
            model: "sora",
            job_id: "task_01JABCDEF",
            width,
            height,
            seconds,
            variant: 2,
            variants: 2,
            inset: None,
        }
    }

    #[test]
    fn rejects_empty_frames_and_durations() {
        for s in [slate(0, 480, 5), slate(480, 0, 5), slate(480, 480, 0)] {
            assert!(matches!(render_mp4(&s), Err(VideoError::Invalid(_))));
            assert!(matches!(
                render_thumbnail_jpeg(&s),
                Err(VideoError::Invalid(_))
            ));
            assert!(matches!(
                render_thumbnail_webp(&s),
                Err(VideoError::Invalid(_))
            ));
            assert!(matches!(
                render_spritesheet_webp(&s),
                Err(VideoError::Invalid(_))
            ));
        }
        assert!(render_thumbnail_jpeg(&slate(5000, 480, 5)).is_err());
        assert!(render_thumbnail_jpeg(&slate(480, 480, 1000)).is_err());
    }

    #[test]
    fn tiny_and_odd_sizes_do_not_panic() {
        for (w, h) in [(1, 1), (2, 2), (3, 5), (2, 4000), (17, 3)] {
            let s = slate(w, h, 1);
            assert_eq!(jpeg_size(&render_thumbnail_jpeg(&s).unwrap()), (w, h));
            assert_eq!(webp_size(&render_thumbnail_webp(&s).unwrap()), (w, h));
            render_spritesheet_webp(&s).unwrap();
            let _ = render_mp4(&s);
        }
    }

    #[test]
    fn long_prompts_are_cut_not_fatal() {
        let prompt = "word ".repeat(1000);
        let s = Slate {
            prompt: &prompt,
            ..slate(480, 480, 1)
        };
        render_thumbnail_jpeg(&s).unwrap();
    }

    /// `(width, height)` from a baseline JPEG's SOF0 segment.
    fn jpeg_size(data: &[u8]) -> (u32, u32) {
        assert_eq!(&data[..2], &[0xFF, 0xD8], "SOI");
        let mut i = 2;
        while i + 4 <= data.len() {
            assert_eq!(data[i], 0xFF, "marker at {i}");
            let marker = data[i + 1];
            let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
            if marker == 0xC0 {
                let h = u16::from_be_bytes([data[i + 5], data[i + 6]]);
                let w = u16::from_be_bytes([data[i + 7], data[i + 8]]);
                return (u32::from(w), u32::from(h));
            }
            i += 2 + len;
        }
        panic!("no SOF0");
    }

    /// `(width, height)` from a lossless (`VP8L`) WebP.
    fn webp_size(data: &[u8]) -> (u32, u32) {
        assert_eq!(&data[..4], b"RIFF");
        let riff_len = u32::from_le_bytes(data[4..8].try_into().unwrap()) as usize;
        assert_eq!(riff_len + 8, data.len());
        assert_eq!(&data[8..12], b"WEBP");
        assert_eq!(&data[12..16], b"VP8L");
        assert_eq!(data[20], 0x2F, "VP8L signature");
        let bits = u32::from_le_bytes(data[21..25].try_into().unwrap());
        ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    }

    #[test]
    fn jpeg_thumbnail_is_the_video_size() {
        let data = render_thumbnail_jpeg(&slate(854, 480, 4)).unwrap();
        assert_eq!(jpeg_size(&data), (854, 480));
    }

    #[test]
    fn webp_thumbnail_is_the_video_size() {
        let data = render_thumbnail_webp(&slate(480, 854, 4)).unwrap();
        assert_eq!(webp_size(&data), (480, 854));
    }

    #[test]
    fn spritesheet_is_a_grid_of_tiles() {
        let data = render_spritesheet_webp(&slate(1920, 1080, 8)).unwrap();
        assert_eq!(webp_size(&data), (5 * 256, 2 * 144));
        let data = render_spritesheet_webp(&slate(1080, 1920, 1)).unwrap();
        assert_eq!(webp_size(&data), (5 * 144, 2 * 256));
    }

    #[test]
    fn stills_are_deterministic() {
        let s = slate(720, 1280, 6);
        assert_eq!(
            render_thumbnail_jpeg(&s).unwrap(),
            render_thumbnail_jpeg(&s).unwrap()
        );
        assert_eq!(
            render_spritesheet_webp(&s).unwrap(),
            render_spritesheet_webp(&s).unwrap()
        );
    }

    #[cfg(not(feature = "h264"))]
    #[test]
    fn without_h264_the_mp4_is_the_jpeg_slate() {
        let s = slate(1280, 720, 5);
        assert_eq!(render_mp4(&s).unwrap(), render_thumbnail_jpeg(&s).unwrap());
    }

    #[cfg(feature = "h264")]
    mod mp4 {
        use super::*;

        /// One box: its type and where its payload (after the header) lies.
        #[derive(Clone, Copy, Debug)]
        struct Mp4Box {
            kind: [u8; 4],
            start: usize,
            end: usize,
        }

        /// The boxes laid end to end in `data[start..end]`.
        fn children(data: &[u8], start: usize, end: usize) -> Vec<Mp4Box> {
            let mut out = Vec::new();
            let mut i = start;
            while i + 8 <= end {
                let size = u32::from_be_bytes(data[i..i + 4].try_into().unwrap()) as u64;
                let kind: [u8; 4] = data[i + 4..i + 8].try_into().unwrap();
                let (header, size) = match size {
                    1 => (
                        16,
                        u64::from_be_bytes(data[i + 8..i + 16].try_into().unwrap()),
                    ),
                    0 => (8, (end - i) as u64),
                    n => (8, n),
                };
                let box_end = i + size as usize;
                assert!(box_end <= end && size >= header, "box {kind:?} overruns");
                out.push(Mp4Box {
                    kind,
                    start: i + header as usize,
                    end: box_end,
                });
                i = box_end;
            }
            assert_eq!(i, end, "trailing bytes");
            out
        }

        /// The first box along `path` below `parent`.
        fn find(data: &[u8], parent: Mp4Box, path: &[&[u8; 4]]) -> Mp4Box {
            let mut current = parent;
            for kind in path {
                current = *children(data, current.start, current.end)
                    .iter()
                    .find(|b| &b.kind == *kind)
                    .unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(*kind)));
            }
            current
        }

        fn u32_at(data: &[u8], i: usize) -> u32 {
            u32::from_be_bytes(data[i..i + 4].try_into().unwrap())
        }

        fn u64_at(data: &[u8], i: usize) -> u64 {
            u64::from_be_bytes(data[i..i + 8].try_into().unwrap())
        }

        /// `(timescale, duration)` of an `mvhd` or `mdhd` payload.
        fn timing(data: &[u8], b: Mp4Box) -> (u64, u64) {
            if data[b.start] == 1 {
                (
                    u64::from(u32_at(data, b.start + 20)),
                    u64_at(data, b.start + 24),
                )
            } else {
                (
                    u64::from(u32_at(data, b.start + 12)),
                    u64::from(u32_at(data, b.start + 16)),
                )
            }
        }

        struct Facts {
            tkhd_size: (u32, u32),
            avc1_size: (u32, u32),
            movie_seconds: f64,
            media_seconds: f64,
            sps: Vec<u8>,
        }

        fn inspect(data: &[u8]) -> Facts {
            let top = children(data, 0, data.len());
            let kinds: Vec<&[u8; 4]> = top.iter().map(|b| &b.kind).collect();
            assert_eq!(kinds[0], b"ftyp", "{kinds:?}");
            let moov = top.iter().position(|b| &b.kind == b"moov").expect("moov");
            let mdat = top.iter().position(|b| &b.kind == b"mdat").expect("mdat");
            assert!(moov < mdat, "moov must come before mdat: {kinds:?}");

            let moov = top[moov];
            let (scale, duration) = timing(data, find(data, moov, &[b"mvhd"]));
            let movie_seconds = duration as f64 / scale as f64;
            let trak = find(data, moov, &[b"trak"]);
            let tkhd = find(data, trak, &[b"tkhd"]);
            let size_at = tkhd.start + if data[tkhd.start] == 1 { 88 } else { 76 };
            let tkhd_size = (u32_at(data, size_at) >> 16, u32_at(data, size_at + 4) >> 16);
            let mdia = find(data, trak, &[b"mdia"]);
            let (scale, duration) = timing(data, find(data, mdia, &[b"mdhd"]));
            let media_seconds = duration as f64 / scale as f64;
            let stsd = find(data, mdia, &[b"minf", b"stbl", b"stsd"]);
            // stsd: version/flags and entry count, then the sample entries.
            let entries = Mp4Box {
                kind: *b"stsd",
                start: stsd.start + 8,
                end: stsd.end,
            };
            let avc1 = find(data, entries, &[b"avc1"]);
            let avc1_size = (
                u32::from(u16::from_be_bytes([
                    data[avc1.start + 24],
                    data[avc1.start + 25],
                ])),
                u32::from(u16::from_be_bytes([
                    data[avc1.start + 26],
                    data[avc1.start + 27],
                ])),
            );
            // avc1: 78 bytes of visual sample entry, then avcC.
            let avc1_body = Mp4Box {
                kind: *b"avc1",
                start: avc1.start + 78,
                end: avc1.end,
            };
            let avcc = find(data, avc1_body, &[b"avcC"]);
            let sps_len = usize::from(u16::from_be_bytes([
                data[avcc.start + 6],
                data[avcc.start + 7],
            ]));
            let sps = data[avcc.start + 8..avcc.start + 8 + sps_len].to_vec();
            Facts {
                tkhd_size,
                avc1_size,
                movie_seconds,
                media_seconds,
                sps,
            }
        }

        const SIZES: [(u32, u32); 11] = [
            (480, 480),
            (480, 854),
            (854, 480),
            (720, 720),
            (720, 1280),
            (1280, 720),
            (1080, 1080),
            (1080, 1920),
            (1920, 1080),
            (1024, 1792),
            (1792, 1024),
        ];

        #[test]
        fn every_api_size_is_exact() {
            let frame = 1.0 / f64::from(FRAMES_PER_SECOND);
            for (w, h) in SIZES {
                let data = render_mp4(&slate(w, h, 1)).unwrap();
                let facts = inspect(&data);
                assert_eq!(facts.tkhd_size, (w, h), "tkhd {w}x{h}");
                assert_eq!(facts.avc1_size, (w, h), "avc1 {w}x{h}");
                assert!((facts.movie_seconds - 1.0).abs() < frame, "mvhd {w}x{h}");
                assert!((facts.media_seconds - 1.0).abs() < frame, "mdhd {w}x{h}");
                // Constrained baseline: profile 66 with constraint_set1.
                assert_eq!(facts.sps[1], 66);
                assert_ne!(facts.sps[2] & 0x40, 0);
            }
        }

        #[test]
        fn duration_matches_seconds() {
            let frame = 1.0 / f64::from(FRAMES_PER_SECOND);
            for seconds in [1, 4, 7, 20] {
                let facts = inspect(&render_mp4(&slate(480, 480, seconds)).unwrap());
                let s = f64::from(seconds);
                assert!(
                    (facts.movie_seconds - s).abs() < frame,
                    "{}",
                    facts.movie_seconds
                );
                assert!(
                    (facts.media_seconds - s).abs() < frame,
                    "{}",
                    facts.media_seconds
                );
            }
        }

        #[test]
        fn mp4_is_deterministic() {
            let s = slate(854, 480, 2);
            assert_eq!(render_mp4(&s).unwrap(), render_mp4(&s).unwrap());
        }

        #[test]
        fn odd_sizes_are_refused_not_botched() {
            assert!(matches!(
                render_mp4(&slate(853, 480, 1)),
                Err(VideoError::Invalid(_))
            ));
        }

        /// Decodes the stream's samples with openh264 and returns the decoded size of
        /// every frame, so the cropping written into the SPS is checked end to end.
        fn decoded_sizes(data: &[u8]) -> Vec<(usize, usize)> {
            use openh264::decoder::Decoder;
            use openh264::formats::YUVSource;
            let facts = inspect(data);
            let top = children(data, 0, data.len());
            let mdat = top.iter().find(|b| &b.kind == b"mdat").unwrap();
            // Samples are length-prefixed NAL units; turn them back into Annex B.
            let mut annex_b = vec![0, 0, 0, 1];
            annex_b.extend_from_slice(&facts.sps);
            let avcc_pps = pps_of(data);
            annex_b.extend_from_slice(&[0, 0, 0, 1]);
            annex_b.extend_from_slice(&avcc_pps);
            let mut i = mdat.start;
            while i + 4 <= mdat.end {
                let len = u32_at(data, i) as usize;
                annex_b.extend_from_slice(&[0, 0, 0, 1]);
                annex_b.extend_from_slice(&data[i + 4..i + 4 + len]);
                i += 4 + len;
            }
            let mut decoder = Decoder::new().unwrap();
            let mut sizes = Vec::new();
            for nal in openh264::nal_units(&annex_b) {
                if let Ok(Some(frame)) = decoder.decode(nal) {
                    sizes.push(frame.dimensions());
                }
            }
            if let Ok(rest) = decoder.flush_remaining() {
                sizes.extend(rest.iter().map(|f| f.dimensions()));
            }
            sizes
        }

        fn pps_of(data: &[u8]) -> Vec<u8> {
            let sps_len = inspect(data).sps.len();
            // avcC: 6 header bytes, 2 length bytes and the SPS, a count, then the PPS.
            let i = data.windows(4).position(|w| w == b"avcC").expect("avcC") + 4;
            let at = i + 8 + sps_len + 1;
            let len = usize::from(u16::from_be_bytes([data[at], data[at + 1]]));
            data[at + 2..at + 2 + len].to_vec()
        }

        #[test]
        fn decodes_to_the_exact_size() {
            for (w, h) in [(854, 480), (1080, 1080), (2, 2), (18, 34), (16, 16)] {
                let data = render_mp4(&slate(w, h, 1)).unwrap();
                let sizes = decoded_sizes(&data);
                assert_eq!(
                    sizes.len(),
                    FRAMES_PER_SECOND as usize,
                    "{w}x{h}: decoded frames"
                );
                assert!(
                    sizes.iter().all(|&s| s == (w as usize, h as usize)),
                    "{w}x{h}: {sizes:?}"
                );
            }
        }
    }
}
