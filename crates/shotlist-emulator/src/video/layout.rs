//! The slate's look: where the label, prompt, facts, timecode and progress bar go, and
//! how one frame differs from the next.
//!
//! Everything is sized from the frame's shorter side, so a 480x480 and a 1920x1080
//! slate look alike. Only two regions change between frames (the timecode and the
//! progress bar); [`SlateRenderer::set_frame`] redraws just those and says where, so
//! the video encoder converts and compares only what moved.

use super::draw::{Canvas, ELLIPSIS, GLYPH, Rect, Rgb, text_width};
use super::{Inset, Slate};

/// Frames per second of the placeholder video. 12 is enough for a timecode and a
/// sweeping bar to be read frame by frame, and half the encoding work of 24.
pub(crate) const FPS: u32 = 12;

const BACKGROUND: Rgb = [22, 24, 30];
const TEXT: Rgb = [236, 236, 236];
const DIM: Rgb = [150, 154, 166];
const TRACK: Rgb = [60, 64, 76];
const PLAYHEAD: Rgb = [255, 255, 255];
const ON_ACCENT: Rgb = [16, 16, 16];
/// One accent per variant (cycled), so variants of a shot are told apart at a glance.
const ACCENTS: [Rgb; 4] = [
    [255, 181, 46],
    [72, 187, 255],
    [240, 98, 146],
    [120, 220, 110],
];

/// The label, on one line when it fits, else on two.
const LABEL_TOP: &str = "PLACEHOLDER \u{2014}";
const LABEL_BOTTOM: &str = "shotlist emulator";

/// Frames in a video of `seconds` at [`FPS`].
pub(crate) fn frame_count(seconds: u32) -> u32 {
    seconds.saturating_mul(FPS)
}

/// Draws a slate's frames onto one canvas, keeping the static parts between frames.
pub(crate) struct SlateRenderer {
    canvas: Canvas,
    /// Font pixel size in canvas pixels for body text; everything else is a multiple.
    unit: i64,
    accent: Rgb,
    total_frames: u32,
    seconds: u32,
    /// Where the timecode and frame counter go.
    clock: Rect,
    /// Track, fill, second ticks and playhead.
    bar: Rect,
    track: Rect,
    /// What is on the canvas now, so the next frame redraws only the difference.
    timecode: String,
    counter: String,
    done: i64,
}

impl SlateRenderer {
    /// Lays out and draws frame 0.
    pub(crate) fn new(slate: &Slate<'_>) -> SlateRenderer {
        let (w, h) = (i64::from(slate.width), i64::from(slate.height));
        let unit = (slate.width.min(slate.height) / 240).max(1);
        let u = i64::from(unit);
        let margin = 12 * u;
        let line = 10 * u;
        let accent = ACCENTS[(slate.variant.wrapping_sub(1) % ACCENTS.len() as u32) as usize];
        let mut canvas = Canvas::new(slate.width, slate.height, BACKGROUND);

        // Bottom up: progress bar, clock, facts; the prompt gets what is left.
        let bar_h = 10 * u;
        let bar = Rect::new(
            margin - u,
            h - margin - bar_h,
            w - 2 * margin + 2 * u,
            bar_h,
        );
        let track = Rect::new(margin, bar.y + 3 * u, w - 2 * margin, 4 * u);
        let clock_h = 16 * u + u + line;
        let clock = Rect::new(
            margin,
            bar.y - margin / 2 - clock_h,
            w - 2 * margin,
            clock_h,
        );
        let facts_y = clock.y - margin / 2 - 3 * line;

        // Label band across the top, in the variant's accent.
        let text_chars = chars_fitting(w - 2 * margin, unit);
        let one_line = format!("{LABEL_TOP} {LABEL_BOTTOM}");
        let label: Vec<String> = if one_line.chars().count() <= text_chars {
            vec![one_line]
        } else {
            vec![LABEL_TOP.to_owned(), LABEL_BOTTOM.to_owned()]
        };
        let band_h = 8 * u + label.len() as i64 * line - 2 * u;
        canvas.fill(Rect::new(0, 0, w, band_h), accent);
        for (i, text) in label.iter().enumerate() {
            let y = 4 * u + i as i64 * line;
            canvas.text(margin, y, unit, &truncate(text, text_chars), ON_ACCENT);
        }
        let variant = format!("variant {}/{}", slate.variant, slate.variants);
        if label[0].chars().count() + 2 + variant.len() <= text_chars {
            let x = w - margin - text_width(variant.len(), unit);
            canvas.text(x, 4 * u, unit, &variant, ON_ACCENT);
        }

        // The prompt, word-wrapped into the space between the band and the facts: as
        // large as up to twice the body text when it fits whole, else body size and
        // cut with an ellipsis.
        let prompt_y = band_h + margin;
        let prompt_h = facts_y - margin / 2 - prompt_y;
        let mut prompt = None;
        for scale in (unit..=2 * unit).rev() {
            let line = 10 * i64::from(scale);
            let max_lines = (prompt_h / line).max(0) as usize;
            let chars = chars_fitting(w - 2 * margin, scale);
            let (lines, cut) = wrap(slate.prompt, chars, max_lines);
            if !cut || scale == unit {
                prompt = Some((scale, lines));
                break;
            }
        }
        if let Some((scale, lines)) = prompt {
            let line = 10 * i64::from(scale);
            for (i, text) in lines.iter().enumerate() {
                canvas.text(margin, prompt_y + i as i64 * line, scale, text, TEXT);
            }
        }

        let facts = [
            format!(
                "{}x{} \u{b7} {} s \u{b7} {} fps",
                slate.width, slate.height, slate.seconds, FPS
            ),
            format!("{} \u{b7} {variant}", slate.model),
            format!("job {}", slate.job_id),
        ];
        for (i, fact) in facts.iter().enumerate() {
            let y = facts_y + i as i64 * line;
            canvas.text(margin, y, unit, &truncate(fact, text_chars), DIM);
        }
        if let Some(inset) = slate.inset {
            draw_inset(&mut canvas, inset, w, band_h + margin, margin, u, accent);
        }

        let mut renderer = SlateRenderer {
            canvas,
            unit: u,
            accent,
            total_frames: frame_count(slate.seconds).max(1),
            seconds: slate.seconds,
            clock,
            bar,
            track,
            timecode: String::new(),
            counter: String::new(),
            done: 0,
        };
        renderer.draw_bar(bar);
        renderer.set_frame(0);
        renderer
    }

    pub(crate) fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    pub(crate) fn total_frames(&self) -> u32 {
        self.total_frames
    }

    /// The areas that differ between frames: whatever [`set_frame`](Self::set_frame)
    /// changes lies inside these.
    pub(crate) fn moving_parts(&self) -> [Rect; 2] {
        [self.clock, self.bar]
    }

    /// Redraws what shows time for frame `index` (0-based) and returns the rectangles
    /// that changed (some may be empty). Only changed timecode and counter characters
    /// and the stretch of bar the playhead crossed are redrawn: the less the canvas
    /// changes, the less the encoder and colour conversion have to look at.
    ///
    /// The playhead sits at `index / total` of the bar, that is at the frame's start
    /// time, so it crosses a second tick exactly when the timecode reaches that second.
    pub(crate) fn set_frame(&mut self, index: u32) -> [Rect; 3] {
        let u = self.unit;
        let unit = u as u32;
        let index = index.min(self.total_frames - 1);

        let secs = index / FPS;
        let timecode = format!(
            "{:02}:{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            index % FPS
        );
        let timecode = truncate(&timecode, chars_fitting(self.clock.w, 2 * unit));
        let (x, y) = (self.clock.x, self.clock.y);
        let tc_rect =
            self.canvas
                .text_update(x, y, 2 * unit, &self.timecode, &timecode, TEXT, BACKGROUND);
        self.timecode = timecode;

        let counter = format!("frame {}/{}", index + 1, self.total_frames);
        let counter = truncate(&counter, chars_fitting(self.clock.w, unit));
        let y = self.clock.y + 17 * u;
        let counter_rect =
            self.canvas
                .text_update(x, y, unit, &self.counter, &counter, DIM, BACKGROUND);
        self.counter = counter;

        let done = self.track.w.max(0) * i64::from(index) / i64::from(self.total_frames);
        let (from, to) = (self.done.min(done), self.done.max(done));
        self.done = done;
        // The fill's end and the playhead (2 units wide, centred on it) moved from one
        // position to the other: redraw that stretch only.
        let bar_rect = if from == to {
            Rect::new(0, 0, 0, 0)
        } else {
            Rect::new(
                self.track.x + from - u,
                self.bar.y,
                to - from + 2 * u,
                self.bar.h,
            )
            .intersect(self.bar)
        };
        self.draw_bar(bar_rect);

        [tc_rect, counter_rect, bar_rect]
    }

    /// Draws the part of the progress bar inside `clip`, for the current `done`.
    fn draw_bar(&mut self, clip: Rect) {
        if clip.is_empty() {
            return;
        }
        let u = self.unit;
        let track = self.track;
        self.canvas.fill(self.bar.intersect(clip), BACKGROUND);
        self.canvas.fill(track.intersect(clip), TRACK);
        let fill = Rect::new(track.x, track.y, self.done, track.h);
        self.canvas.fill(fill.intersect(clip), self.accent);
        // One tick per second below the track, for judging timing by eye.
        let seconds = i64::from(self.seconds.max(1));
        for k in 0..=seconds {
            let x = track.x + track.w.max(0) * k / seconds;
            let tick = Rect::new(x - u / 2, track.y + track.h + u, u, 2 * u);
            self.canvas.fill(tick.intersect(clip), DIM);
        }
        let head = Rect::new(
            track.x + self.done - u,
            self.bar.y,
            2 * u,
            self.bar.h - 3 * u,
        );
        self.canvas.fill(head.intersect(clip), PLAYHEAD);
    }
}

/// How many characters at `scale` fit in `width` canvas pixels.
/// The input image in the top right corner, a quarter of the frame wide, in a frame of
/// the accent, its label under it. Scaled by nearest neighbour: a placeholder, not art.
fn draw_inset(
    canvas: &mut Canvas,
    inset: &Inset,
    w: i64,
    top: i64,
    margin: i64,
    u: i64,
    accent: Rgb,
) {
    if inset.width == 0 || inset.height == 0 {
        return;
    }
    // A quarter of the width, and at most half the height (a tall image gets narrower).
    let max_h = (i64::from(canvas.height) / 2).max(4);
    let mut bw = (w / 4).max(8);
    let mut bh = (bw * i64::from(inset.height) / i64::from(inset.width)).max(4);
    if bh > max_h {
        bw = (max_h * i64::from(inset.width) / i64::from(inset.height)).max(1);
        bh = max_h;
    }
    let (x0, y0) = (w - margin - bw, top);
    canvas.fill(
        Rect::new(x0 - 2 * u, y0 - 2 * u, bw + 4 * u, bh + 4 * u),
        accent,
    );
    let mut row = Vec::with_capacity(bw as usize * 3);
    for dy in 0..bh {
        let sy = (dy * i64::from(inset.height) / bh) as usize;
        row.clear();
        for dx in 0..bw {
            let sx = (dx * i64::from(inset.width) / bw) as usize;
            let i = (sy * inset.width as usize + sx) * 3;
            row.extend_from_slice(&inset.rgb[i..i + 3]);
        }
        canvas.blit_row(x0, y0 + dy, &row);
    }
    // The label on a strip of the frame's colour, over whatever the prompt drew there.
    canvas.fill(
        Rect::new(x0 - 2 * u, y0 + bh + 2 * u, bw + 4 * u, 10 * u),
        accent,
    );
    canvas.text(x0, y0 + bh + 3 * u, u as u32, &inset.label, ON_ACCENT);
}

fn chars_fitting(width: i64, scale: u32) -> usize {
    (width.max(0) / i64::from(GLYPH * scale)) as usize
}

/// `text` cut to `max` characters, its last one an ellipsis when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.truncate(out.trim_end().len());
    out.push(ELLIPSIS);
    out
}

/// Greedy word wrap into at most `max_lines` lines of at most `max_chars` characters.
/// Whitespace runs (newlines included) become one space and control characters are
/// dropped; a word longer than a line is split. When the text does not fit, the last
/// line ends with an ellipsis and the flag returned is true.
pub(crate) fn wrap(text: &str, max_chars: usize, max_lines: usize) -> (Vec<String>, bool) {
    if max_chars == 0 || max_lines == 0 {
        let empty = text.chars().all(|c| c.is_whitespace() || c.is_control());
        return (Vec::new(), !empty);
    }
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    let mut overflow = false;
    'words: for word in text.split_whitespace() {
        let word: Vec<char> = word.chars().filter(|c| !c.is_control()).collect();
        let mut rest = &word[..];
        while !rest.is_empty() {
            let gap = usize::from(current_len > 0);
            if current_len + gap + rest.len() <= max_chars {
                if gap == 1 {
                    current.push(' ');
                }
                current.extend(rest);
                current_len += gap + rest.len();
                break;
            }
            if current_len > 0 && rest.len() <= max_chars {
                // The word fits on a line of its own: start one.
                lines.push(std::mem::take(&mut current));
                current_len = 0;
            } else {
                // Longer than a whole line: fill this line and carry on with the rest.
                let room = max_chars - current_len - gap;
                if room == 0 {
                    lines.push(std::mem::take(&mut current));
                    current_len = 0;
                } else {
                    if gap == 1 {
                        current.push(' ');
                    }
                    current.extend(&rest[..room]);
                    rest = &rest[room..];
                    lines.push(std::mem::take(&mut current));
                    current_len = 0;
                }
            }
            if lines.len() >= max_lines {
                overflow = true;
                break 'words;
            }
        }
    }
    if !overflow && current_len > 0 {
        lines.push(current);
    }
    if overflow {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            let mut cut: String = last.chars().take(max_chars.saturating_sub(1)).collect();
            cut.truncate(cut.trim_end().len());
            cut.push(ELLIPSIS);
            *last = cut;
        }
    }
    (lines, overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_words() {
        let (lines, cut) = wrap("a quiet harbour at dawn", 10, 5);
        assert_eq!(lines, ["a quiet", "harbour at", "dawn"]);
        assert!(!cut);
    }

    #[test]
    fn wrap_splits_long_words_and_collapses_whitespace() {
        let (lines, _) = wrap("abcdefghijkl\n\n  xy", 5, 5);
        assert_eq!(lines, ["abcde", "fghij", "kl xy"]);
    }

    #[test]
    fn wrap_ends_with_an_ellipsis_when_cut() {
        let (lines, cut) = wrap("one two three four five six", 9, 2);
        assert!(cut);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].ends_with(ELLIPSIS), "{lines:?}");
        assert!(lines.iter().all(|l| l.chars().count() <= 9));
    }

    #[test]
    fn wrap_of_nothing_is_empty() {
        assert_eq!(wrap("   ", 10, 3), (vec![], false));
        assert_eq!(wrap("text", 0, 3), (vec![], true));
        assert_eq!(wrap("text", 3, 0), (vec![], true));
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab\u{2026}");
        assert_eq!(truncate("abcd", 0), "");
    }

    #[test]
    fn the_input_image_shows_as_an_inset_in_the_top_right() {
        let red = Inset {
            width: 16,
            height: 9,
            rgb: [250, 10, 10].repeat(16 * 9),
            label: "first frame".into(),
        };
        let mut slate = Slate {
            prompt: "a red kite over a grey sea",
            model: "sora",
            job_id: "task_1",
            width: 640,
            height: 360,
            seconds: 2,
            variant: 1,
            variants: 1,
            inset: Some(&red),
        };
        let with = SlateRenderer::new(&slate).canvas().clone();
        slate.inset = None;
        let without = SlateRenderer::new(&slate).canvas().clone();
        // A quarter of the width, below the band, at the right margin: the image's red.
        let (x, y) = (640 - 12 - 160 / 2, 40 + 45);
        assert_eq!(with.pixel(x, y), [250, 10, 10]);
        assert_ne!(without.pixel(x, y), [250, 10, 10]);
        let reds = (0..360)
            .flat_map(|y| (0..640).map(move |x| (x, y)))
            .filter(|&(x, y)| with.pixel(x, y) == [250, 10, 10])
            .count();
        // 160x90 of it (nearest neighbour keeps every pixel the image's colour).
        assert_eq!(reds, 160 * 90, "{reds}");
    }

    #[test]
    fn only_the_clock_and_bar_change() {
        let slate = Slate {
            prompt: "a red kite over a grey sea",
            model: "sora",
            job_id: "task_1",
            width: 480,
            height: 480,
            seconds: 2,
            variant: 1,
            variants: 2,
            inset: None,
        };
        let mut r = SlateRenderer::new(&slate);
        r.set_frame(6);
        let first = r.canvas().clone();
        let dirty = r.set_frame(7);
        let mut changed_outside = 0;
        for y in 0..480usize {
            for x in 0..480usize {
                let inside = dirty.iter().any(|d| {
                    (d.x..d.x + d.w).contains(&(x as i64)) && (d.y..d.y + d.h).contains(&(y as i64))
                });
                if !inside && first.pixel(x, y) != r.canvas().pixel(x, y) {
                    changed_outside += 1;
                }
            }
        }
        assert_eq!(changed_outside, 0);
        assert_ne!(first.pixels, r.canvas().pixels);
        // Drawn step by step or in one go, a frame looks the same.
        let mut direct = SlateRenderer::new(&slate);
        direct.set_frame(7);
        assert!(direct.canvas().pixels == r.canvas().pixels);
        for d in dirty.into_iter().filter(|d| !d.is_empty()) {
            assert!(
                r.moving_parts().iter().any(|p| p.intersect(d) == d),
                "{d:?}"
            );
        }
    }
}
