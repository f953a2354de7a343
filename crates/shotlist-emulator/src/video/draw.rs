//! An RGB canvas with just enough drawing for a slate: clipped rectangles and scaled
//! 8x8 bitmap text.
//!
//! Every drawing call clips to the canvas, so a layout computed for a frame too small
//! to hold it (2x2, say) draws less, never out of bounds.

use font8x8::UnicodeFonts;
use font8x8::legacy::{BASIC_LEGACY, LATIN_LEGACY};

/// An sRGB colour.
pub(crate) type Rgb = [u8; 3];

/// Side of one font8x8 glyph, in font pixels.
pub(crate) const GLYPH: u32 = 8;

/// Stands in for text cut short. font8x8 has no U+2026, so the glyph is drawn here.
pub(crate) const ELLIPSIS: char = '\u{2026}';

/// A rectangle in canvas pixels; may extend past the canvas (drawing clips it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rect {
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
}

impl Rect {
    pub(crate) const fn new(x: i64, y: i64, w: i64, h: i64) -> Rect {
        Rect { x, y, w, h }
    }

    pub(crate) fn is_empty(self) -> bool {
        self.w <= 0 || self.h <= 0
    }

    /// The overlap of two rectangles (possibly empty).
    pub(crate) fn intersect(self, other: Rect) -> Rect {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = self
            .x
            .saturating_add(self.w)
            .min(other.x.saturating_add(other.w));
        let y1 = self
            .y
            .saturating_add(self.h)
            .min(other.y.saturating_add(other.h));
        Rect::new(
            x0,
            y0,
            x1.saturating_sub(x0).max(0),
            y1.saturating_sub(y0).max(0),
        )
    }

    /// The smallest rectangle holding both (an empty one adds nothing).
    pub(crate) fn union(self, other: Rect) -> Rect {
        if self.is_empty() {
            return other;
        }
        if other.is_empty() {
            return self;
        }
        let x0 = self.x.min(other.x);
        let y0 = self.y.min(other.y);
        let x1 = self
            .x
            .saturating_add(self.w)
            .max(other.x.saturating_add(other.w));
        let y1 = self
            .y
            .saturating_add(self.h)
            .max(other.y.saturating_add(other.h));
        Rect::new(x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0))
    }

    /// The part inside a `width`x`height` canvas, as `(x0, y0, x1, y1)` with exclusive
    /// ends, or `None` when nothing of it is visible.
    pub(crate) fn clip(self, width: u32, height: u32) -> Option<(usize, usize, usize, usize)> {
        let x0 = self.x.clamp(0, i64::from(width));
        let y0 = self.y.clamp(0, i64::from(height));
        let x1 = self.x.saturating_add(self.w).clamp(0, i64::from(width));
        let y1 = self.y.saturating_add(self.h).clamp(0, i64::from(height));
        if x0 >= x1 || y0 >= y1 {
            return None;
        }
        // In range of usize: all four are clamped to 0..=u32::MAX.
        Some((x0 as usize, y0 as usize, x1 as usize, y1 as usize))
    }
}

/// Packed RGB8 pixels, row-major, no padding.
#[derive(Clone)]
pub(crate) struct Canvas {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Canvas {
    pub(crate) fn new(width: u32, height: u32, fill: Rgb) -> Canvas {
        let len = width as usize * height as usize;
        Canvas {
            width,
            height,
            pixels: fill.repeat(len),
        }
    }

    #[cfg(test)]
    pub(crate) fn pixel(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.width as usize + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Copies RGB pixels into row `y` from column `x`, clipped to the canvas.
    pub(crate) fn blit_row(&mut self, x: i64, y: i64, rgb: &[u8]) {
        if y < 0 || y >= i64::from(self.height) {
            return;
        }
        let width = i64::from(self.width);
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            let cx = x + i as i64;
            if (0..width).contains(&cx) {
                let at = ((y * width + cx) * 3) as usize;
                self.pixels[at..at + 3].copy_from_slice(px);
            }
        }
    }

    pub(crate) fn fill(&mut self, rect: Rect, color: Rgb) {
        let Some((x0, y0, x1, y1)) = rect.clip(self.width, self.height) else {
            return;
        };
        // Paint the first row, then copy it: whole-row copies stay fast even in
        // unoptimised (dev) builds, where per-pixel loops are slow.
        let stride = self.width as usize * 3;
        let first = y0 * stride + x0 * 3;
        let row_len = (x1 - x0) * 3;
        for px in self.pixels[first..first + row_len].chunks_exact_mut(3) {
            px.copy_from_slice(&color);
        }
        for y in y0 + 1..y1 {
            self.pixels
                .copy_within(first..first + row_len, y * stride + x0 * 3);
        }
    }

    /// Draws `text` with its top-left corner at `(x, y)`, each font pixel `scale`
    /// canvas pixels square. Only set pixels are painted (the background shows
    /// through), so callers clear the area first when text changes.
    pub(crate) fn text(&mut self, x: i64, y: i64, scale: u32, text: &str, color: Rgb) {
        let advance = i64::from(GLYPH * scale);
        let s = i64::from(scale);
        for (i, c) in text.chars().enumerate() {
            let gx = x + advance * i as i64;
            if gx >= i64::from(self.width) {
                break;
            }
            let bitmap = glyph(c);
            for (row, bits) in bitmap.iter().enumerate() {
                if *bits == 0 {
                    continue;
                }
                // Runs of set bits become one rectangle each: fewer, longer row fills.
                let mut col = 0;
                while col < 8 {
                    if bits & (1 << col) == 0 {
                        col += 1;
                        continue;
                    }
                    let start = col;
                    while col < 8 && bits & (1 << col) != 0 {
                        col += 1;
                    }
                    let rect = Rect::new(gx + start * s, y + row as i64 * s, (col - start) * s, s);
                    self.fill(rect, color);
                }
            }
        }
    }
}

impl Canvas {
    /// Redraws `new` over `old` (drawn earlier at the same place and scale), touching
    /// only the character cells that differ: each is cleared to `background` and
    /// redrawn. Returns the area changed (empty when nothing did).
    #[allow(clippy::too_many_arguments)] // the same arguments `text` takes, plus two
    pub(crate) fn text_update(
        &mut self,
        x: i64,
        y: i64,
        scale: u32,
        old: &str,
        new: &str,
        color: Rgb,
        background: Rgb,
    ) -> Rect {
        let advance = i64::from(GLYPH * scale);
        let mut old_chars = old.chars();
        let mut new_chars = new.chars();
        let mut changed = Rect::new(x, y, 0, 0);
        let mut i = 0i64;
        loop {
            let (a, b) = (old_chars.next(), new_chars.next());
            if a.is_none() && b.is_none() {
                break;
            }
            if a != b {
                let cell = Rect::new(x + i * advance, y, advance, advance);
                self.fill(cell, background);
                if let Some(c) = b {
                    let mut buf = [0u8; 4];
                    self.text(cell.x, y, scale, c.encode_utf8(&mut buf), color);
                }
                changed = changed.union(cell);
            }
            i += 1;
        }
        changed
    }
}

/// Width in canvas pixels of `chars` characters at `scale`.
pub(crate) fn text_width(chars: usize, scale: u32) -> i64 {
    chars as i64 * i64::from(GLYPH * scale)
}

/// The 8x8 bitmap of `c` (bit 0 is the leftmost pixel). Characters the font lacks
/// become a similar ASCII shape, then `?`, so a prompt in any script still renders.
pub(crate) fn glyph(c: char) -> [u8; 8] {
    let code = c as u32;
    if code < 0x80 {
        return BASIC_LEGACY[code as usize];
    }
    if (0xA0..=0xFF).contains(&code) {
        return LATIN_LEGACY[(code - 0xA0) as usize];
    }
    match c {
        // Em and en dash, minus, horizontal bar: one line at mid height.
        '\u{2012}'..='\u{2015}' | '\u{2212}' => [0, 0, 0, 0x7F, 0, 0, 0, 0],
        // Three dots at the baseline.
        ELLIPSIS => [0, 0, 0, 0, 0, 0xDB, 0xDB, 0],
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{2032}' => BASIC_LEGACY[usize::from(b'\'')],
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2033}' => BASIC_LEGACY[usize::from(b'"')],
        '\u{2022}' => LATIN_LEGACY[0xB7 - 0xA0],
        _ => font8x8::GREEK_FONTS
            .get(c)
            .or_else(|| font8x8::BOX_FONTS.get(c))
            .or_else(|| font8x8::BLOCK_FONTS.get(c))
            .or_else(|| font8x8::MISC_FONTS.get(c))
            .unwrap_or(BASIC_LEGACY[usize::from(b'?')]),
    }
}

/// Area-averaging downscale of `src` to `width`x`height` (each no larger than the
/// source's): every output pixel is the mean of the source pixels it covers.
pub(crate) fn downscale(src: &Canvas, width: u32, height: u32) -> Canvas {
    let mut out = Canvas::new(width, height, [0, 0, 0]);
    let all = Rect::new(0, 0, i64::from(src.width), i64::from(src.height));
    downscale_into(src, &mut out, all);
    out
}

/// Recomputes the pixels of `dst`, a downscale of `src`, whose source area touches
/// `region` (in `src` pixels): after `src` changes inside `region`, `dst` matches
/// a fresh [`downscale`] again.
pub(crate) fn downscale_into(src: &Canvas, dst: &mut Canvas, region: Rect) {
    let Some((rx0, ry0, rx1, ry1)) = region.clip(src.width, src.height) else {
        return;
    };
    let (sw, sh) = (src.width as usize, src.height as usize);
    let (dw, dh) = (dst.width as usize, dst.height as usize);
    if dw == 0 || dh == 0 {
        return;
    }
    // Output pixel t covers source [t * s / d, (t + 1) * s / d): these ranges of t
    // cover the region, with at most a pixel to spare on each side.
    let tx0 = (rx0 * dw / sw).saturating_sub(1);
    let tx1 = (rx1 * dw).div_ceil(sw).saturating_add(1).min(dw);
    let ty0 = (ry0 * dh / sh).saturating_sub(1);
    let ty1 = (ry1 * dh).div_ceil(sh).saturating_add(1).min(dh);
    for ty in ty0..ty1 {
        let y0 = ty * sh / dh;
        let y1 = ((ty + 1) * sh / dh).max(y0 + 1);
        for tx in tx0..tx1 {
            let x0 = tx * sw / dw;
            let x1 = ((tx + 1) * sw / dw).max(x0 + 1);
            // Plain index loops: iterator adapters are slow in dev builds.
            let (mut r, mut g, mut b) = (0u64, 0u64, 0u64);
            let px = &src.pixels;
            for y in y0..y1 {
                let mut i = (y * sw + x0) * 3;
                let end = (y * sw + x1) * 3;
                while i < end {
                    r += u64::from(px[i]);
                    g += u64::from(px[i + 1]);
                    b += u64::from(px[i + 2]);
                    i += 3;
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u64;
            let i = (ty * dw + tx) * 3;
            // Rounded means; at most 255, so the casts are exact.
            dst.pixels[i] = ((r + n / 2) / n) as u8;
            dst.pixels[i + 1] = ((g + n / 2) / n) as u8;
            dst.pixels[i + 2] = ((b + n / 2) / n) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawing_clips_to_the_canvas() {
        let mut c = Canvas::new(2, 2, [0, 0, 0]);
        c.fill(Rect::new(-5, -5, 100, 100), [1, 2, 3]);
        c.text(-3, 1, 7, "Hello, world", [9, 9, 9]);
        c.fill(Rect::new(i64::MAX - 1, i64::MIN, i64::MAX, 3), [1, 1, 1]);
        assert_eq!(c.pixels.len(), 12);
    }

    #[test]
    fn unknown_characters_still_draw_something() {
        assert_eq!(glyph('\u{4E2D}'), glyph('?'));
        assert_ne!(glyph('\u{2014}'), [0; 8]);
        assert_ne!(glyph(ELLIPSIS), [0; 8]);
        assert_ne!(glyph('\u{e9}'), glyph('?'));
    }

    #[test]
    fn text_update_touches_only_changed_cells() {
        let mut c = Canvas::new(64, 8, [0, 0, 0]);
        c.text(0, 0, 1, "00:01", [255, 255, 255]);
        let changed = c.text_update(0, 0, 1, "00:01", "00:02", [255, 255, 255], [0, 0, 0]);
        assert_eq!(changed, Rect::new(32, 0, 8, 8));
        let mut fresh = Canvas::new(64, 8, [0, 0, 0]);
        fresh.text(0, 0, 1, "00:02", [255, 255, 255]);
        assert_eq!(c.pixels, fresh.pixels);
        let changed = c.text_update(0, 0, 1, "00:02", "00:02", [255, 255, 255], [0, 0, 0]);
        assert!(changed.is_empty());
    }

    #[test]
    fn partial_downscale_matches_a_full_one() {
        let mut src = Canvas::new(37, 23, [10, 20, 30]);
        let mut small = downscale(&src, 11, 7);
        let region = Rect::new(13, 5, 9, 4);
        src.fill(region, [200, 100, 50]);
        downscale_into(&src, &mut small, region);
        assert_eq!(small.pixels, downscale(&src, 11, 7).pixels);
    }

    #[test]
    fn downscale_averages() {
        let mut c = Canvas::new(4, 2, [0, 0, 0]);
        c.fill(Rect::new(0, 0, 2, 2), [255, 255, 255]);
        let d = downscale(&c, 2, 1);
        assert_eq!(d.pixels, vec![255, 255, 255, 0, 0, 0]);
    }
}
