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

/// Writes `resp`'s body to `final_path`, replacing any file there only once the whole body
/// arrived and reached the disk.
pub async fn stream_to_file(resp: reqwest::Response, final_path: &Path) -> Result<Downloaded> {
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
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| truncated(written, expected, Some(crate::api::transport::describe(&e))))?;
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(io)?;
        written += chunk.len() as u64;
    }
    if let Some(expected) = expected
        && written != expected
    {
        return Err(truncated(written, Some(expected), None));
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
