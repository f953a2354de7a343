//! Serving file bytes: `content-length`, `last-modified`, `accept-ranges`, single byte
//! ranges (`Range: bytes=N-` and `bytes=N-M`, 206), HEAD, and bodies cut short on purpose
//! (the `drop` and `truncate` faults).
//!
//! Bytes are streamed in chunks and counted in the stats as they are produced. This
//! module never renders files (`assets.rs`) and never decides faults (`faults.rs`).

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::stats::StatsRecorder;

const CHUNK: usize = 64 * 1024;
/// How long a cut-short body waits before failing, so the bytes before the cut go out.
const FLUSH_BEFORE_DROP: std::time::Duration = std::time::Duration::from_millis(50);

/// A body that yields at most `keep` bytes of `body`, then fails, which makes the server
/// close the connection mid-response (the announced `content-length` is not reached).
pub fn cut_short(body: Body, keep: u64) -> Body {
    let stream = futures::stream::unfold(
        (body.into_data_stream(), keep, false),
        |(mut inner, left, done)| async move {
            if done {
                return None;
            }
            if left == 0 {
                // Let what was sent reach the client first, as on a real dropped connection.
                tokio::time::sleep(FLUSH_BEFORE_DROP).await;
                let err = io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "connection dropped by the emulator's `--faults`",
                );
                return Some((Err(err), (inner, 0, true)));
            }
            match inner.next().await {
                Some(Ok(mut chunk)) => {
                    chunk.truncate(left.min(chunk.len() as u64) as usize);
                    let left = left - chunk.len() as u64;
                    Some((Ok(chunk), (inner, left, false)))
                }
                Some(Err(e)) => Some((Err(io::Error::other(e)), (inner, 0, true))),
                None => None,
            }
        },
    );
    Body::from_stream(stream)
}

/// The requested byte range `start..=end` of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    Whole,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

/// Parses a single `bytes=N-` / `bytes=N-M` / `bytes=-N` range; anything else is ignored
/// (served whole), as RFC 9110 allows.
fn parse_range(value: Option<&HeaderValue>, len: u64) -> RangeRequest {
    let Some(spec) = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return RangeRequest::Whole;
    };
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let num = |s: &str| s.trim().parse::<u64>().ok();
    let (start, end) = match (first.trim().is_empty(), last.trim().is_empty()) {
        (false, true) => match num(first) {
            Some(start) => (start, len.saturating_sub(1)),
            None => return RangeRequest::Whole,
        },
        (false, false) => match (num(first), num(last)) {
            (Some(start), Some(end)) if start <= end => (start, end.min(len.saturating_sub(1))),
            _ => return RangeRequest::Whole,
        },
        (true, false) => match num(last) {
            Some(0) => return RangeRequest::Unsatisfiable,
            Some(suffix) => (len.saturating_sub(suffix), len.saturating_sub(1)),
            None => return RangeRequest::Whole,
        },
        (true, true) => return RangeRequest::Whole,
    };
    if start >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part { start, end }
}

/// How to answer one content request.
pub struct Serve<'a> {
    pub bytes: Bytes,
    pub content_type: &'static str,
    pub last_modified: SystemTime,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// Cut the body short on purpose (the `truncate` fault).
    pub truncate: bool,
    pub stats: &'a Arc<StatsRecorder>,
}

impl Serve<'_> {
    pub fn response(self) -> Response {
        let len = self.bytes.len() as u64;
        let (status, start, slice) = match parse_range(self.headers.get(header::RANGE), len) {
            RangeRequest::Whole => (StatusCode::OK, 0, self.bytes.clone()),
            RangeRequest::Part { start, end } => (
                StatusCode::PARTIAL_CONTENT,
                start,
                self.bytes.slice(start as usize..=end as usize),
            ),
            RangeRequest::Unsatisfiable => {
                let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                response.headers_mut().insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{len}")),
                );
                response
                    .headers_mut()
                    .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                return response;
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(slice.len() as u64),
        );
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        headers.insert(
            header::LAST_MODIFIED,
            header_value(&httpdate::fmt_http_date(self.last_modified)),
        );
        if status == StatusCode::PARTIAL_CONTENT {
            let end = start + slice.len() as u64 - 1;
            headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{end}/{len}")),
            );
        }
        if self.method == Method::HEAD {
            return (status, headers).into_response();
        }
        self.stats.content_download();
        let keep = if self.truncate {
            slice.len() as u64 / 2
        } else {
            slice.len() as u64
        };
        let stats = self.stats.clone();
        let chunks: Vec<Bytes> = (0..slice.len())
            .step_by(CHUNK)
            .map(|at| slice.slice(at..(at + CHUNK).min(slice.len())))
            .collect();
        let stream = futures::stream::iter(chunks).map(move |chunk| {
            stats.bytes(chunk.len());
            Ok::<_, io::Error>(chunk)
        });
        let mut body = Body::from_stream(stream);
        if self.truncate {
            body = cut_short(body, keep);
        }
        (status, headers, body).into_response()
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &'static str, len: u64) -> RangeRequest {
        parse_range(Some(&HeaderValue::from_static(v)), len)
    }

    #[test]
    fn parses_single_ranges() {
        assert_eq!(
            range("bytes=10-", 100),
            RangeRequest::Part { start: 10, end: 99 }
        );
        assert_eq!(
            range("bytes=10-19", 100),
            RangeRequest::Part { start: 10, end: 19 }
        );
        assert_eq!(
            range("bytes=90-200", 100),
            RangeRequest::Part { start: 90, end: 99 }
        );
        assert_eq!(
            range("bytes=-10", 100),
            RangeRequest::Part { start: 90, end: 99 }
        );
        assert_eq!(range("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(range("bytes=0-1,5-6", 100), RangeRequest::Whole);
        assert_eq!(range("items=1-2", 100), RangeRequest::Whole);
        assert_eq!(parse_range(None, 100), RangeRequest::Whole);
    }
}
