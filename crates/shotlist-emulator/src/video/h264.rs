//! The slate as H.264 in MP4: openh264 encodes, muxide writes a fast-start MP4.
//!
//! Frames are kept as YUV 4:2:0 planes padded to whole 16x16 macroblocks; between
//! frames only the rectangles the slate redrew are converted again, and the encoder
//! (fixed QP, no rate control) codes the unchanged macroblocks as skips. The exact
//! frame size is then written into the SPS as cropping, which openh264 cannot do for
//! frames under 16 pixels, so every even size from 2x2 up decodes to exactly its size.

use muxide::api::{MuxerBuilder, VideoCodec};
use openh264::encoder::{
    Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType, VuiConfig,
};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};

use super::draw::{Canvas, Rect};
use super::layout::{FPS, SlateRenderer};
use super::{Slate, VideoError};

/// Largest frame openh264 encodes: 3840 on the long side, 2160 on the short one.
const MAX_LONG_SIDE: u32 = 3840;
const MAX_SHORT_SIDE: u32 = 2160;

/// A key frame every this many seconds, so players and editors can seek without
/// decoding from the start; the slate is mostly static, so they cost little.
const KEYFRAME_SECONDS: u32 = 2;

pub(crate) fn render(slate: &Slate<'_>) -> Result<Vec<u8>, VideoError> {
    let (width, height) = (slate.width, slate.height);
    if width % 2 != 0 || height % 2 != 0 {
        return Err(VideoError::Invalid(format!(
            "{width}x{height}: an H.264 4:2:0 video needs an even width and height"
        )));
    }
    if width.max(height) > MAX_LONG_SIDE || width.min(height) > MAX_SHORT_SIDE {
        return Err(VideoError::Invalid(format!(
            "{width}x{height}: larger than the H.264 encoder's \
             {MAX_LONG_SIDE}x{MAX_SHORT_SIDE}"
        )));
    }

    let mut renderer = SlateRenderer::new(slate);
    let mut planes = Planes::new(width.div_ceil(16) * 16, height.div_ceil(16) * 16);
    planes.convert(
        renderer.canvas(),
        Rect::new(0, 0, i64::from(width), i64::from(height)),
    );

    let config = EncoderConfig::new()
        .profile(Profile::Baseline)
        // Fixed QP (openh264's default 26): no rate control, so no dropped frames and
        // no quality drift; static macroblocks cost next to nothing either way.
        .rate_control_mode(RateControlMode::Off)
        .skip_frames(false)
        .max_frame_rate(FrameRate::from_hz(FPS as f32))
        .usage_type(UsageType::CameraVideoRealTime)
        .complexity(Complexity::Low)
        .scene_change_detect(false)
        .adaptive_quantization(false)
        .background_detection(true)
        .intra_frame_period(IntraFramePeriod::from_num_frames(KEYFRAME_SECONDS * FPS))
        // One thread: output must not depend on scheduling, and callers may encode
        // several videos at once.
        .num_threads(1)
        .vui(VuiConfig::bt709());
    let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
        .map_err(|e| VideoError::Encode(format!("openh264 setup: {e}")))?;
    let mut muxer = MuxerBuilder::new(Vec::new())
        .video(VideoCodec::H264, width, height, f64::from(FPS))
        .with_fast_start(true)
        .build()
        .map_err(|e| VideoError::Encode(format!("mp4 setup: {e}")))?;

    let frames = renderer.total_frames();
    let mut annex_b = Vec::new();
    for index in 0..frames {
        if index > 0 {
            for rect in renderer.set_frame(index) {
                planes.convert(renderer.canvas(), rect);
            }
        }
        let millis = u64::from(index) * 1000 / u64::from(FPS);
        let stream = encoder
            .encode_at(&planes, Timestamp::from_millis(millis))
            .map_err(|e| VideoError::Encode(format!("frame {index}: {e}")))?;
        let keyframe = stream.frame_type() == FrameType::IDR;
        annex_b.clear();
        stream.write_vec(&mut annex_b);
        if annex_b.is_empty() {
            // A skipped frame would shorten the video; with rate control off openh264
            // has no reason to skip, so this is a bug, not a user error.
            return Err(VideoError::Encode(format!(
                "frame {index}: the encoder produced no data"
            )));
        }
        let sample = crop_sps(&annex_b, width, height)?;
        // index / FPS is exact in muxide's 90 kHz timescale for FPS dividing 90000.
        let pts = f64::from(index) / f64::from(FPS);
        muxer
            .write_video(pts, &sample, keyframe)
            .map_err(|e| VideoError::Encode(format!("mp4 frame {index}: {e}")))?;
    }
    muxer
        .finish_in_place()
        .map_err(|e| VideoError::Encode(format!("mp4 finish: {e}")))?;
    Ok(muxer.into_writer())
}

/// I420 planes of the padded (macroblock-aligned) picture.
struct Planes {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl Planes {
    /// Black; the padding outside the canvas stays black and is cropped away.
    fn new(width: u32, height: u32) -> Planes {
        let (w, h) = (width as usize, height as usize);
        Planes {
            width: w,
            height: h,
            y: vec![16; w * h],
            u: vec![128; w * h / 4],
            v: vec![128; w * h / 4],
        }
    }

    /// Converts `rect` of `canvas` (widened to even bounds, since one chroma sample
    /// covers 2x2 pixels) to BT.709 limited-range YUV, as the SPS's VUI declares.
    /// The canvas has even dimensions and is no larger than the planes.
    fn convert(&mut self, canvas: &Canvas, rect: Rect) {
        if rect.is_empty() {
            return;
        }
        let even = Rect::new(
            rect.x & !1,
            rect.y & !1,
            rect.w + (rect.x & 1) + 1,
            rect.h + (rect.y & 1) + 1,
        );
        let Some((x0, y0, x1, y1)) = even.clip(canvas.width, canvas.height) else {
            return;
        };
        let (x1, y1) = (x1 & !1, y1 & !1);
        let src = &canvas.pixels;
        let stride = canvas.width as usize * 3;
        let (yw, cw) = (self.width, self.width / 2);
        // Plain index loops: this runs for every frame, and dev builds do not
        // optimise iterator adapters away.
        for cy in y0 / 2..y1 / 2 {
            for cx in x0 / 2..x1 / 2 {
                let (mut rs, mut gs, mut bs) = (0i32, 0i32, 0i32);
                for dy in 0..2 {
                    let y = cy * 2 + dy;
                    for dx in 0..2 {
                        let x = cx * 2 + dx;
                        let i = y * stride + x * 3;
                        let r = i32::from(src[i]);
                        let g = i32::from(src[i + 1]);
                        let b = i32::from(src[i + 2]);
                        // BT.709 in 8-bit fixed point: 16 + 219 * (0.2126 R + 0.7152 G +
                        // 0.0722 B) / 255, which stays within 16..=235.
                        self.y[y * yw + x] = (((47 * r + 157 * g + 16 * b + 128) >> 8) + 16) as u8;
                        rs += r;
                        gs += g;
                        bs += b;
                    }
                }
                let (r, g, b) = ((rs + 2) / 4, (gs + 2) / 4, (bs + 2) / 4);
                let cb = ((-26 * r - 87 * g + 113 * b + 128) >> 8) + 128;
                let cr = ((112 * r - 102 * g - 10 * b + 128) >> 8) + 128;
                self.u[cy * cw + cx] = cb.clamp(16, 240) as u8;
                self.v[cy * cw + cx] = cr.clamp(16, 240) as u8;
            }
        }
    }
}

impl YUVSource for Planes {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.u
    }

    fn v(&self) -> &[u8] {
        &self.v
    }
}

/// Copies an Annex B access unit, rewriting every SPS so that its cropping window is
/// exactly `width`x`height` from the top-left of the macroblock-aligned picture.
fn crop_sps(annex_b: &[u8], width: u32, height: u32) -> Result<Vec<u8>, VideoError> {
    let mut out = Vec::with_capacity(annex_b.len() + 16);
    for nal in nal_units(annex_b) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        if nal.first().map(|b| b & 0x1f) == Some(7) {
            out.extend_from_slice(&rewrite_sps(nal, width, height)?);
        } else {
            out.extend_from_slice(nal);
        }
    }
    Ok(out)
}

/// The NAL units of an Annex B stream, without start codes.
fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &(_, begin)) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&(code, _)| code);
        // A four-byte start code's leading zero belongs to no NAL unit.
        while end > begin && data[end - 1] == 0 {
            end -= 1;
        }
        if end > begin {
            nals.push(&data[begin..end]);
        }
    }
    nals
}

fn sps_error(what: &str) -> VideoError {
    VideoError::Encode(format!("unexpected SPS from the encoder: {what}"))
}

/// Rewrites one SPS NAL unit (header byte included) with new frame cropping. Bits are
/// copied as they are up to `frame_cropping_flag`, the cropping is written anew, and
/// the rest (VUI) is copied up to the RBSP stop bit.
fn rewrite_sps(nal: &[u8], width: u32, height: u32) -> Result<Vec<u8>, VideoError> {
    let rbsp = unescape(nal.get(1..).ok_or_else(|| sps_error("empty"))?);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, reserved bits, level_idc
    r.ue()?; // seq_parameter_set_id
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma_format_idc = r.ue()?;
        if chroma_format_idc != 1 {
            return Err(sps_error("not 4:2:0"));
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bits(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.bits(1)? == 1 {
            return Err(sps_error("scaling matrices"));
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bits(1)?; // delta_pic_order_always_zero_flag
            r.ue()?; // offset_for_non_ref_pic (se, same length as ue)
            r.ue()?; // offset_for_top_to_bottom_field
            for _ in 0..r.ue()? {
                r.ue()?; // offset_for_ref_frame[i]
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bits(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_units = r.ue()? + 1;
    if r.bits(1)? != 1 {
        return Err(sps_error("interlaced"));
    }
    r.bits(1)?; // direct_8x8_inference_flag
    let crop_at = r.pos;
    if r.bits(1)? == 1 {
        for _ in 0..4 {
            r.ue()?;
        }
    }
    let rest_at = r.pos;
    let stop = rbsp_stop_bit(&rbsp).ok_or_else(|| sps_error("no stop bit"))?;
    if stop < rest_at {
        return Err(sps_error("truncated"));
    }

    let (coded_w, coded_h) = (width_mbs * 16, height_units * 16);
    if coded_w < width || coded_h < height || coded_w - width >= 16 || coded_h - height >= 16 {
        return Err(sps_error("coded size does not match the frame"));
    }
    let mut w = BitWriter::default();
    for i in 0..crop_at {
        w.bit(bit_at(&rbsp, i));
    }
    // Offsets count 2-pixel units in 4:2:0 progressive video (CropUnitX/Y = 2).
    let (right, bottom) = ((coded_w - width) / 2, (coded_h - height) / 2);
    let crop = right > 0 || bottom > 0;
    w.bit(u8::from(crop));
    if crop {
        for offset in [0, right, 0, bottom] {
            w.ue(offset);
        }
    }
    for i in rest_at..stop {
        w.bit(bit_at(&rbsp, i));
    }
    w.bit(1);
    let mut out = vec![nal[0]];
    out.extend_from_slice(&escape(&w.finish()));
    Ok(out)
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

/// NAL payload from RBSP: inserts `03` wherever two zeros meet a byte of 3 or less.
fn escape(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + 4);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn bit_at(data: &[u8], i: usize) -> u8 {
    (data[i / 8] >> (7 - i % 8)) & 1
}

/// Position of the last set bit (the `rbsp_stop_one_bit`).
fn rbsp_stop_bit(data: &[u8]) -> Option<usize> {
    let last = data.iter().rposition(|&b| b != 0)?;
    Some(last * 8 + 7 - data[last].trailing_zeros() as usize)
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, pos: 0 }
    }

    fn bits(&mut self, n: u32) -> Result<u32, VideoError> {
        let mut v = 0u32;
        for _ in 0..n {
            if self.pos >= self.data.len() * 8 {
                return Err(sps_error("truncated"));
            }
            v = (v << 1) | u32::from(bit_at(self.data, self.pos));
            self.pos += 1;
        }
        Ok(v)
    }

    /// Unsigned Exp-Golomb.
    fn ue(&mut self) -> Result<u32, VideoError> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(sps_error("bad Exp-Golomb code"));
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn bit(&mut self, b: u8) {
        if self.used.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if b != 0
            && let Some(last) = self.bytes.last_mut()
        {
            *last |= 0x80 >> (self.used % 8);
        }
        self.used += 1;
    }

    fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64 - x.leading_zeros();
        for _ in 1..len {
            self.bit(0);
        }
        for i in (0..len).rev() {
            self.bit(((x >> i) & 1) as u8);
        }
    }

    /// The bytes written, the last one padded with zero bits.
    fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_round_trips() {
        let mut w = BitWriter::default();
        for v in [0, 1, 2, 3, 7, 8, 255, 1000] {
            w.ue(v);
        }
        w.bit(1);
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        for v in [0, 1, 2, 3, 7, 8, 255, 1000] {
            assert_eq!(r.ue().unwrap(), v);
        }
    }

    #[test]
    fn emulation_prevention_round_trips() {
        let rbsp = [0, 0, 1, 0, 0, 0, 5, 0, 0, 3];
        let escaped = escape(&rbsp);
        assert_eq!(escaped, [0, 0, 3, 1, 0, 0, 3, 0, 5, 0, 0, 3, 3]);
        assert_eq!(unescape(&escaped), rbsp);
    }

    #[test]
    fn nal_units_split_on_start_codes() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4,
        ];
        let nals = nal_units(&stream);
        assert_eq!(nals, [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4]]);
    }
}
