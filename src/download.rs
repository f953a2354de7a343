//! Streams a response body onto disk: all of it, verified, atomically, or not at all.
//!
//! The body goes chunk by chunk into a temporary file beside the final path (same
//! filesystem, so the last step is a rename), hashed with SHA-256 on the way; a body shorter
//! than its `content-length` or a dropped connection is a transient error, the temporary
//! file is removed and the final file is left as it was. Memory stays flat whatever the size.
//!
//! This module must never choose a file name from server data (the caller passes the final
//! path), never leave a partial file under the final name, and never retry by itself (the
//! client does, with the run's pacer and policy).

use std::path::Path;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::api::error::{ApiError, Result};

/// A file now complete at its final path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// Lowercase hex SHA-256 of the bytes written.
    pub sha256: String,
    pub bytes: u64,
    /// As the server labelled it (`video/mp4`, `image/jpeg`, `image/webp`).
    pub content_type: Option<String>,
}

/// Large enough that the blocking file writes behind tokio's `File` are few.
const WRITE_BUFFER: usize = 256 * 1024;

/// What a download must be: a kind of file, at most so many bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    pub kind: FileKind,
    pub max_bytes: u64,
}

/// The kinds of file shotlist saves, told apart by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// An MP4 (`ftyp` box) or WebM video; without the `h264` feature the emulator serves a
    /// JPEG still in its place, which is then taken too.
    Video,
    /// A JPEG, WebP or PNG image.
    Image,
}

impl FileKind {
    /// The hard cap on a file of this kind: far above any real video (a 20 s 1080p take
    /// is tens of MB), far below a full disk.
    pub fn default_max_bytes(self) -> u64 {
        match self {
            FileKind::Video => 2 << 30,
            FileKind::Image => 32 << 20,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FileKind::Video => "a video (MP4)",
            FileKind::Image => "an image (JPEG, WebP or PNG)",
        }
    }

    /// Whether `head` (the first bytes) starts a file of this kind.
    pub fn matches(self, head: &[u8]) -> bool {
        let mp4 = head.len() >= 8 && &head[4..8] == b"ftyp";
        let webm = head.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]);
        let jpeg = head.starts_with(&[0xff, 0xd8, 0xff]);
        let webp = head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP";
        let png = head.starts_with(b"\x89PNG\r\n\x1a\n");
        match self {
            FileKind::Video => mp4 || webm || (!cfg!(feature = "h264") && jpeg),
            FileKind::Image => jpeg || webp || png,
        }
    }
}

/// A download slower than this on average, after [`MIN_RATE_AFTER`], is given up.
const MIN_BYTES_PER_SEC: f64 = 8.0 * 1024.0;
const MIN_RATE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Bytes looked at to tell the kind of a file.
const HEAD_BYTES: usize = 16;

/// Writes `resp`'s body to `final_path`, replacing any file there only once the whole body
/// arrived, is the kind of file expected, within its size cap, and reached the disk.
pub async fn stream_to_file(
    resp: reqwest::Response,
    final_path: &Path,
    expect: Expect,
) -> Result<Downloaded> {
    let io = |source| ApiError::Io {
        path: final_path.to_owned(),
        source,
    };
    let dir = match final_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let expected = resp.content_length();
    let too_large = |bytes: u64| ApiError::Protocol {
        message: format!(
            "the service sent {bytes} bytes or more for `{}`, over the cap of {} bytes for {}; nothing was saved",
            final_path.display(),
            expect.max_bytes,
            expect.kind.name()
        ),
    };
    if let Some(declared) = expected.filter(|n| *n > expect.max_bytes) {
        return Err(too_large(declared));
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    // Removed on drop, so every early return below cleans up after itself.
    let temp = crate::atomic_write::temp_builder(".part")
        .tempfile_in(dir)
        .map_err(io)?;
    let file = temp.as_file().try_clone().map_err(io)?;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file));
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(HEAD_BYTES);
    let mut body = resp.bytes_stream();
    let started = tokio::time::Instant::now();
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| truncated(written, expected, Some(crate::api::transport::describe(&e))))?;
        written += chunk.len() as u64;
        // By progress, not by a deadline: a large video may take long, but a body that
        // trickles (each byte resetting the read timeout) is given up and retried.
        let elapsed = started.elapsed();
        if elapsed > MIN_RATE_AFTER && (written as f64) < MIN_BYTES_PER_SEC * elapsed.as_secs_f64()
        {
            return Err(ApiError::Transient {
                status: None,
                message: format!(
                    "the download is too slow ({written} bytes in {} s); given up to try again",
                    elapsed.as_secs()
                ),
                retry_after: None,
                attempts: 1,
            });
        }
        if written > expect.max_bytes {
            return Err(too_large(written));
        }
        if head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(io)?;
    }
    if let Some(expected) = expected
        && written != expected
    {
        return Err(truncated(written, Some(expected), None));
    }
    if !expect.kind.matches(&head) {
        let shown: String = String::from_utf8_lossy(&head)
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '.'
                }
            })
            .collect();
        return Err(ApiError::Protocol {
            message: format!(
                "the service sent something that is not {} for `{}` (it starts `{shown}`); the file there was left as it was",
                expect.kind.name(),
                final_path.display()
            ),
        });
    }
    out.flush().await.map_err(io)?;
    let file = out.into_inner();
    file.sync_all().await.map_err(io)?;
    drop(file);

    let final_owned = final_path.to_owned();
    tokio::task::spawn_blocking(move || {
        temp.persist(&final_owned).map_err(|e| e.error)?;
        if let Some(dir) = final_owned.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::atomic_write::sync_dir(dir);
        }
        Ok::<_, std::io::Error>(())
    })
    .await
    .map_err(|e| io(std::io::Error::other(e)))?
    .map_err(io)?;

    Ok(Downloaded {
        sha256: crate::cache_key::hex(&hasher.finalize()),
        bytes: written,
        content_type,
    })
}

fn truncated(written: u64, expected: Option<u64>, cause: Option<String>) -> ApiError {
    let of = expected.map(|e| format!(" of {e}")).unwrap_or_default();
    let cause = cause.map(|c| format!(" ({c})")).unwrap_or_default();
    ApiError::Transient {
        status: None,
        message: format!("the download stopped after {written}{of} bytes{cause}"),
        retry_after: None,
        attempts: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: Vec<u8>, declared: Option<u64>) -> reqwest::Response {
        let mut b = http::Response::builder().status(200);
        if let Some(n) = declared {
            b = b.header("content-length", n);
        }
        reqwest::Response::from(b.body(body).unwrap())
    }

    const MP4: &[u8] = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00";

    #[tokio::test]
    async fn a_body_over_its_cap_is_stopped_declared_or_not_and_nothing_is_saved() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.mp4");
        std::fs::write(&out, b"good").unwrap();
        let expect = Expect {
            kind: FileKind::Video,
            max_bytes: 1024,
        };
        let big = [MP4.to_vec(), vec![0u8; 4096]].concat();
        for declared in [None, Some(big.len() as u64)] {
            let err = stream_to_file(response(big.clone(), declared), &out, expect)
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("over the cap of 1024 bytes"),
                "{err}"
            );
            assert_eq!(std::fs::read(&out).unwrap(), b"good");
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
        let small = [MP4.to_vec(), vec![0u8; 100]].concat();
        let d = stream_to_file(response(small.clone(), None), &out, expect)
            .await
            .unwrap();
        assert_eq!(d.bytes, small.len() as u64);
        assert_eq!(std::fs::read(&out).unwrap(), small);
    }

    /// A body trickled a byte every 2 s (each byte resets a read timeout) is given up by
    /// its progress, on a paused clock: 60 s in, far under 8 KiB a second.
    #[tokio::test(start_paused = true)]
    async fn a_trickled_body_is_given_up_by_its_progress() {
        let bytes: Vec<u8> = [MP4, &[0u8; 200]].concat();
        let stream = futures::stream::iter(bytes).then(|b| async move {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            Ok::<_, std::io::Error>(vec![b])
        });
        let resp = reqwest::Response::from(
            http::Response::builder()
                .status(200)
                .body(reqwest::Body::wrap_stream(stream))
                .unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        let expect = Expect {
            kind: FileKind::Video,
            max_bytes: 1 << 20,
        };
        let err = stream_to_file(resp, &dir.path().join("a.mp4"), expect)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("too slow"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn kinds_are_told_by_their_first_bytes() {
        assert!(FileKind::Video.matches(MP4));
        assert!(!FileKind::Video.matches(b"<!DOCTYPE html><html>"));
        assert!(FileKind::Image.matches(b"\xff\xd8\xff\xe0"));
        assert!(FileKind::Image.matches(b"RIFF\x00\x00\x00\x00WEBPVP8 "));
        assert!(FileKind::Image.matches(b"\x89PNG\r\n\x1a\n"));
        assert!(!FileKind::Image.matches(MP4));
    }
}
