//! Still images of the slate: JPEG and lossless WebP of the first frame, and a WebP
//! sprite sheet of frames across the duration.

use super::draw::{Canvas, downscale, downscale_into};
use super::layout::SlateRenderer;
use super::{Slate, VideoError};

/// JPEG quality: high enough that the slate's small text stays crisp.
const JPEG_QUALITY: u8 = 90;

/// Sprite sheet: this many frames, evenly spaced from the first, in rows of
/// [`SHEET_COLUMNS`], each scaled so its longer side is at most [`TILE_LONG_SIDE`].
const SHEET_FRAMES: u32 = 10;
const SHEET_COLUMNS: u32 = 5;
const TILE_LONG_SIDE: u32 = 256;

pub(crate) fn jpeg(slate: &Slate<'_>) -> Result<Vec<u8>, VideoError> {
    let renderer = SlateRenderer::new(slate);
    encode_jpeg(renderer.canvas())
}

pub(crate) fn webp(slate: &Slate<'_>) -> Result<Vec<u8>, VideoError> {
    let renderer = SlateRenderer::new(slate);
    encode_webp(renderer.canvas())
}

pub(crate) fn spritesheet(slate: &Slate<'_>) -> Result<Vec<u8>, VideoError> {
    let mut renderer = SlateRenderer::new(slate);
    let (tile_w, tile_h) = tile_size(slate.width, slate.height);
    let tiles = SHEET_FRAMES.min(renderer.total_frames());
    let columns = SHEET_COLUMNS.min(tiles);
    let rows = tiles.div_ceil(columns);
    let mut sheet = Canvas::new(tile_w * columns, tile_h * rows, [0, 0, 0]);
    let total = renderer.total_frames();
    // Frames differ only in their moving parts: scale the whole frame once, then
    // only the tile pixels those parts cover.
    let mut tile = downscale(renderer.canvas(), tile_w, tile_h);
    for k in 0..tiles {
        // Evenly spaced start times: frame k * total / tiles (0 for the first tile).
        let frame = (u64::from(k) * u64::from(total) / u64::from(tiles)) as u32;
        renderer.set_frame(frame);
        for part in renderer.moving_parts() {
            downscale_into(renderer.canvas(), &mut tile, part);
        }
        let (x0, y0) = (
            (k % columns * tile_w) as usize,
            (k / columns * tile_h) as usize,
        );
        let row_bytes = tile_w as usize * 3;
        let sheet_stride = sheet.width as usize * 3;
        for y in 0..tile_h as usize {
            let src = &tile.pixels[y * row_bytes..(y + 1) * row_bytes];
            let at = (y0 + y) * sheet_stride + x0 * 3;
            sheet.pixels[at..at + row_bytes].copy_from_slice(src);
        }
    }
    encode_webp(&sheet)
}

/// A tile's size: the frame scaled down (never up) so its longer side fits
/// [`TILE_LONG_SIDE`], at least 1x1.
fn tile_size(width: u32, height: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= TILE_LONG_SIDE {
        return (width, height);
    }
    let scale = |side: u32| {
        ((u64::from(side) * u64::from(TILE_LONG_SIDE) + u64::from(long) / 2) / u64::from(long))
            .max(1) as u32
    };
    (scale(width), scale(height))
}

fn encode_jpeg(canvas: &Canvas) -> Result<Vec<u8>, VideoError> {
    let (Ok(w), Ok(h)) = (u16::try_from(canvas.width), u16::try_from(canvas.height)) else {
        return Err(VideoError::Invalid(format!(
            "{}x{}: too large for a JPEG",
            canvas.width, canvas.height
        )));
    };
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY);
    encoder
        .encode(&canvas.pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| VideoError::Encode(format!("jpeg: {e}")))?;
    Ok(out)
}

fn encode_webp(canvas: &Canvas) -> Result<Vec<u8>, VideoError> {
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(
            &canvas.pixels,
            canvas.width,
            canvas.height,
            image_webp::ColorType::Rgb8,
        )
        .map_err(|e| VideoError::Encode(format!("webp: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_keep_the_aspect_ratio() {
        assert_eq!(tile_size(1920, 1080), (256, 144));
        assert_eq!(tile_size(1080, 1920), (144, 256));
        assert_eq!(tile_size(854, 480), (256, 144));
        assert_eq!(tile_size(2, 2), (2, 2));
        assert_eq!(tile_size(4000, 2), (256, 1));
    }
}
