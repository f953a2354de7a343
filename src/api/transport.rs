//! Sends one logical request: pacer, credential, retries, error classification.
//!
//! Every request of every protocol goes through [`Transport::send`], so the quota, the
//! retry policy and the "is a create safe to retry" rule live in one place. This module
//! knows no paths or wire types, and must never put a URL, a key or a token in an error.
//!
//! Redirects are followed here, not by the HTTP client (whose policy strips only
//! `Authorization` and cookies, so an `api-key` header would follow a redirect to any
//! host): the credential goes only to the API's own origin (scheme, host and port), a
//! redirect never downgrades https to http off loopback, and a create is never re-sent to
//! another origin or turned into a GET.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use tokio::time::Instant;

use super::auth::Auth;
use super::error::{ApiError, ErrorBody, Result, StatusClass, classify};
use super::retry::{RetryPolicy, delay_for, server_hint};
use crate::pacer::Pacer;

/// How far the service's clock may be behind ours when looking for a job a lost create
/// may have made: a candidate is matched by its request too, so erring wide is cheap.
const CLOCK_SKEW_ALLOWANCE_SECS: i64 = 120;

/// The largest JSON answer read: a job is a few KB, a page of a job list well under 1 MB.
pub(crate) const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Why reading an answer's body failed.
pub(crate) enum ReadFailure {
    Http(reqwest::Error),
    TooLarge,
}

/// Redirects followed for one request, as browsers and curl allow about as many.
const MAX_REDIRECTS: usize = 10;

#[derive(Clone, Debug)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    /// The only origin the credential is ever sent to: the API base's.
    pub(crate) api_origin: url::Origin,
    /// Longest a JSON answer may take, whole (not a download: those go by progress).
    answer_deadline: Duration,
    pub(crate) pacer: Arc<Pacer>,
    pub(crate) auth: Auth,
    pub(crate) retry: RetryPolicy,
    rng: Arc<Mutex<fastrand::Rng>>,
}

/// One logical request (retried as a whole).
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: Url,
    /// A JSON body, already serialized: what is sent is exactly what is recorded.
    pub json: Option<&'a serde_json::Value>,
    /// Names the resource in messages: "job `task_01`".
    pub what: &'a str,
    /// A create: not retried when the request may have reached the server unanswered.
    pub create: bool,
    /// A `multipart/form-data` body instead (files: Azure's `inpaint_items`, OpenAI's
    /// `input_reference`), built anew for each attempt.
    pub multipart: Option<&'a Multipart>,
}

/// A `multipart/form-data` body: text parts, then file parts. Its bytes never reach a
/// message: `Debug` shows names and sizes only.
#[derive(Clone, Default)]
pub(crate) struct Multipart {
    pub text: Vec<(String, String)>,
    pub files: Vec<FilePart>,
}

#[derive(Clone)]
pub(crate) struct FilePart {
    /// The part's name (`files`, `input_reference`).
    pub name: String,
    pub file_name: String,
    pub mime: &'static str,
    pub bytes: std::sync::Arc<Vec<u8>>,
}

impl std::fmt::Debug for Multipart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|p| format!("{} ({}, {} bytes)", p.name, p.mime, p.bytes.len()))
            .collect();
        f.debug_struct("Multipart")
            .field(
                "text",
                &self.text.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("files", &files)
            .finish()
    }
}

impl Multipart {
    fn form(&self) -> reqwest::multipart::Form {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in &self.text {
            form = form.text(k.clone(), v.clone());
        }
        for p in &self.files {
            let part = reqwest::multipart::Part::bytes(p.bytes.as_slice().to_vec())
                .file_name(p.file_name.clone())
                .mime_str(p.mime)
                .expect("an image type is a valid MIME type");
            form = form.part(p.name.clone(), part);
        }
        form
    }

    /// What the body says, as JSON, for matching a lost create's job (files by name).
    pub fn as_json(&self) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        for (k, v) in &self.text {
            let value = v
                .parse::<serde_json::Value>()
                .ok()
                .filter(|v| v.is_number())
                .unwrap_or_else(|| serde_json::Value::from(v.as_str()));
            obj.insert(k.clone(), value);
        }
        serde_json::Value::Object(obj)
    }
}

impl Call<'_> {
    /// The body as JSON, to match a lost create's job against.
    fn request_json(&self) -> serde_json::Value {
        match (self.json, self.multipart) {
            (Some(json), _) => json.clone(),
            (None, Some(m)) => m.as_json(),
            (None, None) => serde_json::Value::Null,
        }
    }
}

/// A successful answer with its body read.
pub(crate) struct Answer {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Transport {
    pub(crate) fn new(
        http: reqwest::Client,
        api_base: &Url,
        pacer: Arc<Pacer>,
        auth: Auth,
        retry: RetryPolicy,
        answer_deadline: Duration,
    ) -> Transport {
        Transport {
            http,
            api_origin: api_base.origin(),
            answer_deadline,
            pacer,
            auth,
            retry,
            rng: Arc::new(Mutex::new(fastrand::Rng::new())),
        }
    }

    pub(crate) fn backoff(&self, attempt: u32, hint: Option<Duration>) -> Duration {
        let mut rng = self.rng.lock().expect("retry rng lock");
        delay_for(&self.retry, attempt, hint, &mut rng)
    }

    /// Sends `call` and reads the whole body, retrying transient failures. The answer is
    /// JSON: bounded in size ([`MAX_ANSWER_BYTES`]) and in time (the answer deadline, so a
    /// body trickled a byte at a time cannot hold the run forever).
    pub(crate) async fn fetch(&self, call: &Call<'_>) -> Result<Answer> {
        let mut answer = self.fetch_raw(call).await?;
        // A service that echoes the credential (in a failure reason, say) must not get it
        // into the lockfile or the output: every answer is scrubbed before it is parsed.
        let (_, sent) = self.auth.header().await?;
        answer.body = scrub_bytes(&answer.body, &sent);
        Ok(answer)
    }

    async fn fetch_raw(&self, call: &Call<'_>) -> Result<Answer> {
        self.run_attempts(
            call,
            self.retry.max_attempts,
            Some(self.answer_deadline),
            |resp| async move {
                let headers = resp.headers().clone();
                if resp
                    .content_length()
                    .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
                {
                    return Err(ReadFailure::TooLarge);
                }
                let mut body = Vec::new();
                let mut stream = resp.bytes_stream();
                while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
                    let chunk = chunk.map_err(ReadFailure::Http)?;
                    if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(ReadFailure::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(Answer { headers, body })
            },
        )
        .await
    }

    /// Sends `call` once (no retries: the caller is the retrying layer) and returns the
    /// response once its status is a success; the caller reads the body.
    pub(crate) async fn open_once(&self, call: &Call<'_>) -> Result<reqwest::Response> {
        self.run_attempts(call, 1, None, |resp| async move { Ok(resp) })
            .await
    }

    async fn run_attempts<T, F, Fut>(
        &self,
        call: &Call<'_>,
        max_attempts: u32,
        deadline: Option<Duration>,
        read: F,
    ) -> Result<T>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: Future<Output = std::result::Result<T, ReadFailure>>,
    {
        let since_unix = unix_now() - CLOCK_SKEW_ALLOWANCE_SECS;
        let body = call
            .json
            .map(|v| serde_json::to_vec(v).expect("a JSON value always serializes"));
        let mut attempt = 0;
        loop {
            let (_, value) = self.auth.header().await?;
            let failure = match self.send_following(call, body.as_deref(), deadline).await? {
                Ok(resp) if resp.status().is_success() => match read(resp).await {
                    Ok(v) => return Ok(v),
                    // A create the service said yes to: a job may exist, look before any
                    // second create.
                    Err(ReadFailure::TooLarge) if call.create => {
                        return Err(ApiError::CreateOutcomeUnknown {
                            message: format!("the answer was larger than {MAX_ANSWER_BYTES} bytes"),
                            since_unix,
                            request: call.request_json(),
                        });
                    }
                    Err(ReadFailure::TooLarge) => {
                        return Err(ApiError::Protocol {
                            message: format!(
                                "{}: the answer is larger than {MAX_ANSWER_BYTES} bytes (a job is a few KB); not read",
                                call.what
                            ),
                        });
                    }
                    // The server said yes (a create made a job) but the answer was lost.
                    Err(ReadFailure::Http(e)) if call.create => {
                        return Err(self.unknown(call, &e, since_unix));
                    }
                    Err(ReadFailure::Http(e)) => Failure {
                        status: None,
                        message: describe(&e),
                        hint: None,
                    },
                },
                Ok(resp) => {
                    let status = resp.status();
                    let hint = server_hint(resp.headers(), SystemTime::now());
                    // A failed read of an error body still leaves the status to go by.
                    // Scrubbed whole, before anything is parsed or cut from it: the code,
                    // the message, the param and the revised prompt all come from here.
                    let body = scrub_bytes(&resp.bytes().await.unwrap_or_default(), &value);
                    let parsed = ErrorBody::parse(&body);
                    let message = parsed.message.clone().unwrap_or_else(|| reason(status));
                    // Replicate's throttle says when in words ("resets in ~30s").
                    let hint = hint.or_else(|| {
                        (status == StatusCode::TOO_MANY_REQUESTS)
                            .then(|| worded_wait(&message))
                            .flatten()
                    });
                    match classify(status.as_u16()) {
                        StatusClass::Auth => {
                            return Err(ApiError::Auth {
                                status: Some(status.as_u16()),
                                credential: self.auth.describe(),
                                message,
                            });
                        }
                        StatusClass::Payment => {
                            return Err(ApiError::OutOfCredit {
                                credential: self.auth.describe(),
                                message,
                            });
                        }
                        StatusClass::NotFound => {
                            return Err(ApiError::NotFound {
                                what: call.what.to_owned(),
                                message,
                            });
                        }
                        StatusClass::Permanent => return Err(permanent(status, parsed, message)),
                        // A gateway timeout may come after the service received the create.
                        StatusClass::Transient
                            if call.create && status == StatusCode::GATEWAY_TIMEOUT =>
                        {
                            return Err(ApiError::CreateOutcomeUnknown {
                                message: format!("the gateway timed out (HTTP 504): {message}"),
                                since_unix,
                                request: call.request_json(),
                            });
                        }
                        StatusClass::Transient => Failure {
                            status: Some(status),
                            message,
                            hint,
                        },
                    }
                }
                // A request that cannot be built (a bad URL) fails the same way every time.
                Err(e) if e.is_builder() => {
                    return Err(ApiError::Config {
                        message: format!("{}: {}", call.what, describe(&e)),
                    });
                }
                // Never connected: the request cannot have reached the server.
                Err(e) if call.create && !e.is_connect() => {
                    return Err(self.unknown(call, &e, since_unix));
                }
                Err(e) => Failure {
                    status: None,
                    message: describe(&e),
                    hint: None,
                },
            };
            if attempt + 1 >= max_attempts.min(self.retry.max_attempts) {
                return Err(ApiError::Transient {
                    status: failure.status.map(|s| s.as_u16()),
                    message: failure.message,
                    retry_after: failure.hint,
                    attempts: attempt + 1,
                });
            }
            let delay = self.backoff(attempt, failure.hint);
            if failure.status == Some(StatusCode::TOO_MANY_REQUESTS) {
                // The quota is shared: everyone backs off, and our retry waits in the pacer.
                self.pacer.pause_until(Instant::now() + delay);
            } else {
                tokio::time::sleep(delay).await;
            }
            attempt += 1;
        }
    }

    /// Sends one attempt of `call`, following redirects by the rules in the module docs.
    /// `Err` only for a redirect that must not be followed; a transport failure is the
    /// inner `Err`, for the caller's retry rules.
    async fn send_following(
        &self,
        call: &Call<'_>,
        body: Option<&[u8]>,
        deadline: Option<Duration>,
    ) -> Result<reqwest::Result<reqwest::Response>> {
        let mut url = call.url.clone();
        let mut method = call.method.clone();
        let mut body = body;
        for _ in 0..=MAX_REDIRECTS {
            let to_api = url.origin() == self.api_origin;
            // The quota counts requests to the API; a media host's are not its business.
            if to_api {
                self.pacer.acquire().await;
            }
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(deadline) = deadline {
                req = req.timeout(deadline);
            }
            if to_api {
                let (name, value) = self.auth.header().await?;
                req = req.header(name, value);
            }
            if let Some(body) = body {
                req = req
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(body.to_vec());
            } else if let Some(multipart) = call.multipart.filter(|_| method == call.method) {
                req = req.multipart(multipart.form());
            }
            let resp = match req.send().await {
                Ok(resp) if resp.status().is_redirection() => resp,
                other => return Ok(other),
            };
            let status = resp.status();
            let Some(next) = redirect_target(&url, resp.headers()) else {
                // A 304 or a 3xx without a usable `Location`: the caller sees the status.
                return Ok(Ok(resp));
            };
            if !safe_scheme(&url, &next) {
                return Err(ApiError::Protocol {
                    message: format!(
                        "{}: the service redirected from https to plain http on `{}`; not followed",
                        call.what,
                        host_of(&next)
                    ),
                });
            }
            let keeps_method = matches!(status.as_u16(), 307 | 308);
            if method != Method::GET && method != Method::HEAD {
                // A create (or delete) is sent once, to the API: never to another origin,
                // never turned into a GET of something else.
                if !keeps_method || next.origin() != self.api_origin {
                    return Err(ApiError::Protocol {
                        message: format!(
                            "{}: the service answered {method} with a redirect (HTTP {}) to `{}`; not followed",
                            call.what,
                            status.as_u16(),
                            host_of(&next)
                        ),
                    });
                }
            } else if !keeps_method {
                method = Method::GET;
                body = None;
            }
            url = next;
        }
        Err(ApiError::Protocol {
            message: format!(
                "{}: more than {MAX_REDIRECTS} redirects; not followed",
                call.what
            ),
        })
    }

    fn unknown(&self, call: &Call<'_>, e: &reqwest::Error, since_unix: i64) -> ApiError {
        ApiError::CreateOutcomeUnknown {
            message: describe(e),
            since_unix,
            request: call.request_json(),
        }
    }
}

struct Failure {
    status: Option<StatusCode>,
    message: String,
    hint: Option<Duration>,
}

fn permanent(status: StatusCode, parsed: ErrorBody, message: String) -> ApiError {
    let help = parsed
        .revised_prompt
        .as_deref()
        .map(|p| format!("the service would have used this prompt: {p}"));
    ApiError::Permanent {
        status: status.as_u16(),
        code: parsed.code,
        message,
        param: parsed.param,
        revised_prompt: parsed.revised_prompt,
        help,
    }
}

fn reason(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("no message")
        .to_lowercase()
}

/// A transport failure in words, without the URL reqwest would put in its own message.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "the request timed out"
    } else if e.is_connect() {
        "could not connect to the service"
    } else if e.is_body() || e.is_decode() {
        "the connection dropped while reading the answer"
    } else {
        "the request failed"
    };
    let mut root = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        root = Some(s.to_string());
        source = s.source();
    }
    match root {
        Some(r) => format!("{kind}: {r}"),
        None => kind.to_owned(),
    }
}

#[cfg(test)]
#[test]
fn a_wait_in_words_is_read() {
    let m = "Request was throttled. Your rate limit resets in ~30s.";
    assert_eq!(worded_wait(m), Some(Duration::from_secs(30)));
    assert_eq!(worded_wait("slow down"), None);
    assert_eq!(worded_wait("in ~5 minutes"), None);
}

/// Removes the credential we sent from bytes the server sent back (some proxies echo
/// request headers in their error pages, some services in failure reasons), whole, before
/// anything is parsed or cut from them.
fn scrub_bytes(body: &[u8], sent: &HeaderValue) -> Vec<u8> {
    let sent = sent.as_bytes();
    let secret = sent
        .strip_prefix(b"Bearer ")
        .or_else(|| sent.strip_prefix(b"Key "))
        .unwrap_or(sent);
    let out = scrub_one(body, secret);
    // fal's `id:secret` keys: the secret half alone is as secret as the whole.
    match secret.iter().rposition(|&b| b == b':') {
        Some(i) if secret.len() - i > 8 => scrub_one(&out, &secret[i + 1..]),
        _ => out,
    }
}

/// Every occurrence of `secret` (4 bytes or more) in `body`, replaced by `***`.
fn scrub_one(body: &[u8], secret: &[u8]) -> Vec<u8> {
    if secret.len() < 4 {
        return body.to_vec();
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(secret) {
            out.extend_from_slice(b"***");
            i += secret.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
#[test]
fn the_secret_half_of_a_fal_key_is_scrubbed_too() {
    let sent = HeaderValue::from_static("Key key-id-1:fal-secret-0123456789");
    let body = b"bad key key-id-1:fal-secret-0123456789, secret fal-secret-0123456789";
    let out = String::from_utf8(scrub_bytes(body, &sent)).unwrap();
    assert_eq!(out, "bad key ***, secret ***");
}

/// A wait a throttled answer states in words, `... resets in ~30s.` (Replicate).
fn worded_wait(message: &str) -> Option<Duration> {
    let rest = &message[message.find("in ~")? + 4..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let secs: u64 = digits.parse().ok()?;
    rest[digits.len()..]
        .starts_with('s')
        .then(|| Duration::from_secs(secs.min(3600)))
}

/// The absolute URL a redirect points at, if it names one.
fn redirect_target(from: &Url, headers: &HeaderMap) -> Option<Url> {
    let location = headers.get(reqwest::header::LOCATION)?.to_str().ok()?;
    let next = from.join(location.trim()).ok()?;
    matches!(next.scheme(), "http" | "https").then_some(next)
}

/// https may lead to http only on loopback (the emulator, local gateways).
fn safe_scheme(from: &Url, to: &Url) -> bool {
    from.scheme() != "https" || to.scheme() == "https" || is_loopback(to)
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A URL's host (and port) for messages: never its path or query, which may be signed.
pub(crate) fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => "?".to_owned(),
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
