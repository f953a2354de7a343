//! The shared render cache: renders published to object storage (S3, Azure Blob, Google
//! Cloud Storage, a local folder) and taken from it, so a colleague or a CI runner with a
//! clean checkout never pays again for a shot someone has rendered.
//!
//! Layout under the cache's URL (a bucket or container and an optional prefix):
//! - `cas/<sha256>`: every video and thumbnail, by the sha256 of its bytes, uploaded first;
//! - `ac/<hex of the input hash>`: one small JSON entry per render input hash, written
//!   last and create-only (`PutMode::Create`): the first writer wins, and no reader ever
//!   sees an entry whose blobs are not all there.
//!
//! The built-in emulator's placeholders live in a subtree of their own (`emulator/`), so
//! they are never published to, nor taken from, the cache a real provider uses.
//!
//! Trust: every blob is verified (sha256 and size) before it replaces anything; a blob
//! that does not match is a miss with a warning, never used. With a signing key
//! (`SHOTLIST_CACHE_SIGNING_KEY`) entries are signed (HMAC-SHA256) and every entry read
//! must carry a valid signature. No credential is ever part of the URL, an entry, a
//! message or the lockfile: they come from each cloud's usual environment.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::api::auth::Secret;
use crate::limits::Api;
use crate::render_inputs::RenderInputs;

/// The environment variable naming the cache (below `--cache`, above the manifest).
pub const ENV_CACHE: &str = "SHOTLIST_CACHE";
/// The environment variable holding the key entries are signed and checked with.
pub const ENV_SIGNING_KEY: &str = "SHOTLIST_CACHE_SIGNING_KEY";
/// The entry format this build writes and reads.
pub const ENTRY_FORMAT: u32 = 1;
/// An entry is a few kilobytes; anything far larger is not one of ours.
const MAX_ENTRY_BYTES: u64 = 1 << 20;
/// Lookups (and blob checks) at once.
pub const LOOKUPS_AT_ONCE: usize = 8;
/// Publishes at once.
const PUBLISHES_AT_ONCE: usize = 4;

/// Where the cache's videos may come from: a real service, or the built-in emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Realm {
    Service,
    Emulator,
}

impl Realm {
    /// The built-in emulator, and any service on this machine's loopback (a standalone
    /// `shotlist emulator`, a mock), render into the emulator's realm: what they make is
    /// never taken for a real provider's video. Every other host is a service.
    pub fn of(target: &crate::endpoint::Target) -> Realm {
        match target {
            crate::endpoint::Target::Local => Realm::Emulator,
            crate::endpoint::Target::Remote { base_url, .. } => {
                let host = url::Url::parse(base_url)
                    .ok()
                    .and_then(|u| u.host().map(|h| h.to_owned()));
                let loopback = match host {
                    Some(url::Host::Domain(d)) => {
                        d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost")
                    }
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                };
                if loopback {
                    Realm::Emulator
                } else {
                    Realm::Service
                }
            }
        }
    }
}

/// How a cache is to be used, as the command line, the environment and the manifest say.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `s3://…`, `az://…`, `gs://…` or `file:///…`.
    pub url: String,
    /// Where the URL came from (`--cache`, `SHOTLIST_CACHE`, the manifest's `cache:`).
    pub from: String,
    /// Publish nothing (`--cache-read-only`): for runs that must not be trusted to write.
    pub read_only: bool,
    /// Sign what is published and accept only entries signed with it.
    pub signing_key: Option<Secret>,
    pub realm: Realm,
}

/// Why a cache could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(String);

/// An open cache.
pub struct Cache {
    store: Arc<dyn ObjectStore>,
    /// The prefix every key is under (with `emulator/` for the emulator's realm).
    root: ObjectPath,
    /// The URL as given (it holds no credential: see [`check_url`]).
    url: String,
    realm: Realm,
    read_only: bool,
    key: Option<Secret>,
    /// Blobs found not to match their name this run: re-uploaded when published again.
    damaged: Mutex<HashSet<String>>,
    /// Publishes at once (each holds its videos in memory while it uploads them).
    publishing: tokio::sync::Semaphore,
    pub stats: Stats,
}

/// What the cache did in a run, for the summary.
#[derive(Debug, Default)]
pub struct Stats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub pulled_bytes: AtomicU64,
    pub published: AtomicU64,
    pub published_bytes: AtomicU64,
}

/// One cache entry: a render of one set of inputs, with where its files are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub format: u32,
    /// The render input hash (`sha256:…`); also the entry's name.
    pub key: String,
    pub realm: Realm,
    pub provider: Api,
    pub model: String,
    /// Host of the service that rendered it (`local` for the built-in emulator).
    pub endpoint: String,
    pub inputs: RenderInputs,
    pub jobs: Vec<EntryJob>,
    pub published_at: Timestamp,
    /// The shotlist that published it.
    pub shotlist: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryJob {
    pub id: String,
    /// As in the lockfile: 0 when one job renders every take.
    #[serde(default)]
    pub variant: u32,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    pub generations: Vec<EntryGeneration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryGeneration {
    pub id: String,
    pub variant: u32,
    pub video: Blob,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Blob>,
}

/// A file in `cas/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    /// Lowercase hex sha256 of the bytes: the blob's name.
    pub sha256: String,
    pub bytes: u64,
    /// The file's extension (`mp4`, `jpg`, `webp`).
    pub extension: String,
}

/// The stored form: the entry and, when signed, its HMAC-SHA256 over the entry's
/// canonical JSON (keys sorted, no spaces).
#[derive(Serialize, Deserialize)]
struct Stored {
    entry: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
}

/// What a lookup found.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// A valid entry whose blobs are all there (not yet downloaded).
    Hit(Box<Entry>),
    Miss(Miss),
}

/// Why a lookup found nothing usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Miss {
    /// No entry for these inputs.
    NoEntry,
    /// An entry that is not used, and why (unsigned, badly signed, not ours, damaged).
    Refused(String),
    /// The cache could not be read.
    Unreachable(String),
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::NoEntry => f.write_str("not in the cache"),
            Miss::Refused(why) => write!(f, "entry refused: {why}"),
            Miss::Unreachable(why) => write!(f, "cache not reachable: {why}"),
        }
    }
}

impl Miss {
    /// A miss that deserves a warning (not a plain absence).
    pub fn is_warning(&self) -> bool {
        !matches!(self, Miss::NoEntry)
    }
}

/// A blob fetched and verified, in a temporary file beside where it goes.
pub struct Pulled {
    temp: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

impl Drop for Pulled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.temp);
    }
}

impl Pulled {
    /// Renames the verified file into place (the caller checked `dest` is inside the board).
    pub fn persist(self, dest: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.temp, dest)?;
        // Renamed: nothing left for `Drop` to remove.
        std::mem::forget(self);
        Ok(())
    }
}

/// Checks a cache URL: one of the four schemes, and no credential in it (keys, tokens and
/// SAS signatures come from the environment; a URL is printed and may be committed).
pub fn check_url(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| {
        format!("`{url}` is not a URL ({e}): write s3://BUCKET/PREFIX, az://CONTAINER/PREFIX, gs://BUCKET/PREFIX or file:///PATH")
    })?;
    if !matches!(parsed.scheme(), "s3" | "az" | "azure" | "gs" | "file") {
        return Err(format!(
            "`{}:` is not a cache shotlist knows: write s3://BUCKET/PREFIX, az://CONTAINER/PREFIX, gs://BUCKET/PREFIX or file:///PATH",
            parsed.scheme()
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() {
        return Err(
            "a cache URL holds no credential (no user, password or query): the cloud's usual environment variables give them (AWS_*, AZURE_STORAGE_*, GOOGLE_*)".into(),
        );
    }
    if parsed.scheme() != "file" && parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "`{url}` names no bucket or container: write {}://NAME/PREFIX",
            parsed.scheme()
        ));
    }
    Ok(parsed)
}

/// A cache that does not answer costs a run a few seconds, not minutes: it is a miss.
const CONNECT_TIMEOUT: (object_store::ClientConfigKey, &str) =
    (object_store::ClientConfigKey::ConnectTimeout, "5s");

fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig::default(),
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(30),
    }
}

impl Cache {
    /// Opens the cache `settings` names, with each cloud's usual credentials from the
    /// environment. Nothing is requested yet.
    pub fn open(settings: &Settings) -> Result<Cache, OpenError> {
        let url = check_url(&settings.url).map_err(OpenError)?;
        // Our reqwest has no TLS provider of its own: the same ring one as the API clients.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let redacted = |e: object_store::Error| OpenError(redact(&e.to_string()));
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match url.scheme() {
            "file" => {
                let dir = url.to_file_path().map_err(|()| {
                    OpenError(format!(
                        "`{}` is not a local folder: write file:///ABSOLUTE/PATH",
                        settings.url
                    ))
                })?;
                std::fs::create_dir_all(&dir).map_err(|e| {
                    OpenError(format!(
                        "failed to create the cache folder `{}`: {e}",
                        dir.display()
                    ))
                })?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(redacted)?;
                (Arc::new(store), String::new())
            }
            "s3" => {
                let store = object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .with_retry(retry())
                    .with_config(
                        object_store::aws::AmazonS3ConfigKey::Client(CONNECT_TIMEOUT.0),
                        CONNECT_TIMEOUT.1,
                    )
                    .build()
                    .map_err(redacted)?;
                (Arc::new(store), url.path().to_owned())
            }
            "az" | "azure" => {
                let store = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(retry())
                    .with_config(
                        object_store::azure::AzureConfigKey::Client(CONNECT_TIMEOUT.0),
                        CONNECT_TIMEOUT.1,
                    )
                    .build()
                    .map_err(redacted)?;
                (Arc::new(store), url.path().to_owned())
            }
            "gs" => {
                let store = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(retry())
                    .with_config(
                        object_store::gcp::GoogleConfigKey::Client(CONNECT_TIMEOUT.0),
                        CONNECT_TIMEOUT.1,
                    )
                    .build()
                    .map_err(redacted)?;
                (Arc::new(store), url.path().to_owned())
            }
            other => {
                return Err(OpenError(format!(
                    "`{other}:` is not a cache shotlist knows"
                )));
            }
        };
        let mut root = ObjectPath::parse(prefix.trim_matches('/')).map_err(|e| {
            OpenError(format!(
                "`{}`: the prefix is not a valid key: {e}",
                settings.url
            ))
        })?;
        if settings.realm == Realm::Emulator {
            root = root.clone().join("emulator");
        }
        Ok(Cache {
            store,
            root,
            url: settings.url.clone(),
            realm: settings.realm,
            read_only: settings.read_only,
            key: settings.signing_key.clone(),
            damaged: Mutex::default(),
            publishing: tokio::sync::Semaphore::new(PUBLISHES_AT_ONCE),
            stats: Stats::default(),
        })
    }

    /// The cache's URL (it holds no credential).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    pub fn signed(&self) -> bool {
        self.key.is_some()
    }

    pub fn realm(&self) -> Realm {
        self.realm
    }

    fn entry_path(&self, input_hash: &str) -> ObjectPath {
        let hex = input_hash.strip_prefix("sha256:").unwrap_or(input_hash);
        self.root.clone().join("ac").join(hex)
    }

    fn blob_path(&self, sha256: &str) -> ObjectPath {
        self.root.clone().join("cas").join(sha256)
    }

    /// Looks the entry for `input_hash` up, and checks its blobs are all there with their
    /// sizes (without downloading them). Never fails: what goes wrong is a miss.
    pub async fn lookup(&self, input_hash: &str) -> Lookup {
        let entry = match self.read_entry(input_hash).await {
            Ok(entry) => entry,
            Err(miss) => return Lookup::Miss(miss),
        };
        for blob in entry.blobs() {
            if self
                .damaged
                .lock()
                .expect("damaged lock")
                .contains(&blob.sha256)
            {
                return Lookup::Miss(Miss::Refused(format!(
                    "blob {} does not match its name",
                    blob.sha256
                )));
            }
            match self.store.head(&self.blob_path(&blob.sha256)).await {
                Ok(meta) if meta.size == blob.bytes => {}
                Ok(meta) => {
                    return Lookup::Miss(Miss::Refused(format!(
                        "blob {} is {} bytes, the entry says {}",
                        blob.sha256, meta.size, blob.bytes
                    )));
                }
                Err(object_store::Error::NotFound { .. }) => {
                    return Lookup::Miss(Miss::Refused(format!("blob {} is missing", blob.sha256)));
                }
                Err(e) => return Lookup::Miss(Miss::Unreachable(redact(&e.to_string()))),
            }
        }
        Lookup::Hit(Box::new(entry))
    }

    /// Reads and checks one entry: its size, format, signature, realm and that its inputs
    /// hash to its name.
    async fn read_entry(&self, input_hash: &str) -> Result<Entry, Miss> {
        let path = self.entry_path(input_hash);
        let got = match self.store.get(&path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Err(Miss::NoEntry),
            Err(e) => return Err(Miss::Unreachable(redact(&e.to_string()))),
        };
        if got.meta.size > MAX_ENTRY_BYTES {
            return Err(Miss::Refused(format!(
                "the entry is {} bytes, far more than an entry holds",
                got.meta.size
            )));
        }
        let bytes = got
            .bytes()
            .await
            .map_err(|e| Miss::Unreachable(redact(&e.to_string())))?;
        let stored: Stored = serde_json::from_slice(&bytes)
            .map_err(|e| Miss::Refused(format!("it does not parse: {e}")))?;
        if let Some(key) = &self.key {
            let Some(signature) = &stored.signature else {
                return Err(Miss::Refused(
                    "it is not signed, and a signing key is set".into(),
                ));
            };
            let canonical = serde_json::to_vec(&stored.entry).expect("a JSON value serializes");
            if !verify(key, &canonical, signature) {
                return Err(Miss::Refused(
                    "its signature does not match (tampered, or signed with another key)".into(),
                ));
            }
        }
        let format = stored
            .entry
            .get("format")
            .and_then(serde_json::Value::as_u64);
        if format != Some(u64::from(ENTRY_FORMAT)) {
            return Err(Miss::Refused(format!(
                "format {} is not the one this shotlist reads ({ENTRY_FORMAT})",
                format.map_or_else(|| "?".into(), |f| f.to_string())
            )));
        }
        let entry: Entry = serde_json::from_value(stored.entry)
            .map_err(|e| Miss::Refused(format!("it does not parse: {e}")))?;
        if entry.key != input_hash || crate::cache_key::hash(&entry.inputs) != input_hash {
            return Err(Miss::Refused("its inputs do not hash to its name".into()));
        }
        if entry.realm != self.realm {
            return Err(Miss::Refused(match entry.realm {
                Realm::Emulator => "it holds the emulator's placeholders".into(),
                Realm::Service => {
                    "it holds a real service's videos, and this run uses the emulator".into()
                }
            }));
        }
        let plain = |b: &Blob| {
            b.sha256.len() == 64
                && b.sha256
                    .bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                && !b.extension.is_empty()
                && b.extension.len() <= 8
                && b.extension.bytes().all(|c| c.is_ascii_alphanumeric())
        };
        if !entry.blobs().all(plain) {
            return Err(Miss::Refused("it names a blob that is not a sha256".into()));
        }
        Ok(entry)
    }

    /// Downloads one blob into a temporary file in `dir`, verifying its sha256 and size on
    /// the way. A blob that does not match is remembered as damaged and never used.
    pub async fn pull(&self, blob: &Blob, dir: &Path) -> Result<Pulled, String> {
        let got = self
            .store
            .get(&self.blob_path(&blob.sha256))
            .await
            .map_err(|e| redact(&e.to_string()))?;
        let temp = dir.join(format!(
            ".shotlist-cache-{}-{}.part",
            std::process::id(),
            fastrand::u64(..)
        ));
        let mut pulled = Pulled {
            temp: temp.clone(),
            sha256: String::new(),
            bytes: 0,
        };
        let mut file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| format!("failed to create `{}`: {e}", temp.display()))?;
        let mut hasher = Sha256::new();
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| redact(&e.to_string()))?;
            pulled.bytes += chunk.len() as u64;
            if pulled.bytes > blob.bytes {
                break;
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| format!("failed to write `{}`: {e}", temp.display()))?;
        }
        file.flush()
            .await
            .and(file.sync_all().await)
            .map_err(|e| format!("failed to write `{}`: {e}", temp.display()))?;
        pulled.sha256 = crate::cache_key::hex(&hasher.finalize());
        if pulled.sha256 != blob.sha256 || pulled.bytes != blob.bytes {
            self.damaged
                .lock()
                .expect("damaged lock")
                .insert(blob.sha256.clone());
            return Err(format!(
                "blob {} does not match its name (its bytes hash to {}); not used",
                blob.sha256, pulled.sha256
            ));
        }
        self.stats
            .pulled_bytes
            .fetch_add(pulled.bytes, Ordering::Relaxed);
        Ok(pulled)
    }

    /// Publishes `entry`: every blob first (from the files `files` gives for each
    /// sha256), then the entry, create-only. `Ok(false)`: another run published these
    /// inputs first (its entry stands).
    pub async fn publish(
        &self,
        entry: &Entry,
        files: &std::collections::HashMap<String, PathBuf>,
    ) -> Result<bool, String> {
        if self.read_only {
            return Ok(false);
        }
        let _permit = self
            .publishing
            .acquire()
            .await
            .map_err(|_| "the cache is closing".to_owned())?;
        let mut sent = 0u64;
        let mut seen = HashSet::new();
        for blob in entry.blobs() {
            if !seen.insert(blob.sha256.clone()) {
                continue;
            }
            let path = self.blob_path(&blob.sha256);
            let damaged = self
                .damaged
                .lock()
                .expect("damaged lock")
                .contains(&blob.sha256);
            if !damaged {
                match self.store.head(&path).await {
                    Ok(meta) if meta.size == blob.bytes => continue,
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(redact(&e.to_string())),
                }
            }
            let file = files
                .get(&blob.sha256)
                .ok_or_else(|| format!("no file for blob {}", blob.sha256))?;
            let bytes = tokio::fs::read(file)
                .await
                .map_err(|e| format!("failed to read `{}`: {e}", file.display()))?;
            if crate::cache_key::hex(&Sha256::digest(&bytes)) != blob.sha256 {
                return Err(format!(
                    "`{}` changed since it was recorded; not published",
                    file.display()
                ));
            }
            // A blob is named by its bytes: writing it again (over a damaged one, or
            // racing another writer) can only put the same bytes there.
            self.store
                .put(&path, PutPayload::from(Bytes::from(bytes)))
                .await
                .map_err(|e| redact(&e.to_string()))?;
            sent += blob.bytes;
            self.damaged
                .lock()
                .expect("damaged lock")
                .remove(&blob.sha256);
        }
        // For the tests only: a pause between the blobs and the entry, where a `kill -9`
        // must leave no entry behind (tests/it/cache.rs).
        if let Some(ms) = std::env::var("SHOTLIST_TEST_PUBLISH_PAUSE_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        let value = serde_json::to_value(entry).expect("an entry serializes");
        let signature = self.key.as_ref().map(|key| {
            sign(
                key,
                &serde_json::to_vec(&value).expect("a JSON value serializes"),
            )
        });
        let stored = Stored {
            entry: value,
            signature,
        };
        let body = serde_json::to_vec_pretty(&stored).expect("an entry serializes");
        let put = self
            .store
            .put_opts(
                &self.entry_path(&entry.key),
                PutPayload::from(Bytes::from(body)),
                PutOptions::from(PutMode::Create),
            )
            .await;
        self.stats
            .published_bytes
            .fetch_add(sent, Ordering::Relaxed);
        match put {
            Ok(_) => {
                self.stats.published.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(redact(&e.to_string())),
        }
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("url", &self.url)
            .field("realm", &self.realm)
            .field("read_only", &self.read_only)
            .field("signed", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// Looks up every shot of `plan` the cache may stand in for, a few at a time, and marks
/// the plan (hits create no job). Returns the misses worth a warning, by shot.
pub async fn look_up_plan(cache: &Cache, plan: &mut crate::plan::Plan) -> Vec<(String, Miss)> {
    use crate::plan::CacheStatus;
    let wanted: Vec<(String, String)> = plan
        .shots
        .iter()
        .filter(|sp| sp.cache_eligible())
        .filter_map(|sp| Some((sp.id.clone(), sp.input_hash.clone()?)))
        .collect();
    let found: Vec<(String, Lookup)> = futures::stream::iter(wanted)
        .map(|(id, hash)| async move { (id, cache.lookup(&hash).await) })
        .buffer_unordered(LOOKUPS_AT_ONCE)
        .collect()
        .await;
    let mut warnings = Vec::new();
    let statuses = found
        .into_iter()
        .map(|(id, lookup)| {
            let status = match lookup {
                Lookup::Hit(entry) => CacheStatus::Hit { entry },
                Lookup::Miss(miss) => {
                    if miss.is_warning() {
                        warnings.push((id.clone(), miss.clone()));
                    }
                    CacheStatus::Miss {
                        reason: miss.to_string(),
                    }
                }
            };
            (id, status)
        })
        .collect();
    crate::plan::mark_cache(plan, &statuses);
    warnings.sort_by(|a, b| a.0.cmp(&b.0));
    warnings
}

/// What publishing a render needs: its entry, and the file holding each blob.
pub type Publishable = (Entry, std::collections::HashMap<String, PathBuf>);

impl Entry {
    /// The entry for the render the lockfile records of `shot` (`lock`), made from
    /// `inputs`, with the file of each blob; `None` when it is not one to publish: taken
    /// from a cache itself, of other inputs, of the other realm (placeholders only in the
    /// emulator's), or not whole (a take without its video).
    pub fn of_render(
        storyboard: &crate::manifest::Storyboard,
        shot: &crate::shot::Shot,
        lock: &crate::lockfile::ShotLock,
        inputs: &RenderInputs,
        realm: Realm,
        now: Timestamp,
    ) -> Option<Publishable> {
        use crate::lockfile::{FileLock, JobState};
        let input_hash = crate::cache_key::hash(inputs);
        if lock.from_cache() || lock.input_hash != input_hash {
            return None;
        }
        // A placeholder of the built-in emulator only ever in the emulator's realm (a
        // loopback service renders into it too: see `Realm::of`).
        if lock.endpoint == crate::plan::LOCAL_ENDPOINT && realm != Realm::Emulator {
            return None;
        }
        let mut files = std::collections::HashMap::new();
        let mut blob = |f: &FileLock| -> Option<Blob> {
            let path = crate::board_path::resolve_owned(&storyboard.dir, &f.path).ok()?;
            let extension = Path::new(&f.path)
                .extension()
                .and_then(|e| e.to_str())
                .filter(|e| {
                    !e.is_empty() && e.len() <= 8 && e.bytes().all(|c| c.is_ascii_alphanumeric())
                })
                .unwrap_or("bin")
                .to_owned();
            files.insert(f.sha256.clone(), path);
            Some(Blob {
                sha256: f.sha256.clone(),
                bytes: f.bytes,
                extension,
            })
        };
        let mut jobs = Vec::new();
        for job in lock.jobs.iter().filter(|j| j.status == JobState::Succeeded) {
            let mut generations = Vec::new();
            for g in &job.generations {
                let Some(video) = g.file.as_ref().and_then(&mut blob) else {
                    continue;
                };
                let thumbnail = g.thumbnail.as_ref().and_then(&mut blob);
                generations.push(EntryGeneration {
                    id: g.id.clone(),
                    variant: g.variant,
                    video,
                    thumbnail,
                });
            }
            if !generations.is_empty() {
                jobs.push(EntryJob {
                    id: job.id.clone(),
                    variant: job.variant,
                    created_at: job.created_at,
                    finished_at: job.finished_at,
                    generations,
                });
            }
        }
        let entry = Entry {
            format: ENTRY_FORMAT,
            key: input_hash,
            realm,
            provider: storyboard.api,
            model: lock.model.clone(),
            endpoint: lock.endpoint.clone(),
            inputs: inputs.clone(),
            jobs,
            published_at: now,
            shotlist: env!("CARGO_PKG_VERSION").to_owned(),
        };
        // One video per take, every take: anything else is not a whole render.
        let mut takes: Vec<u32> = entry
            .jobs
            .iter()
            .flat_map(|j| j.generations.iter().map(|g| g.variant))
            .collect();
        takes.sort_unstable();
        (takes == (1..=shot.variants).collect::<Vec<_>>()).then_some((entry, files))
    }

    /// Every blob the entry names, videos and thumbnails.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.jobs
            .iter()
            .flat_map(|j| j.generations.iter())
            .flat_map(|g| std::iter::once(&g.video).chain(g.thumbnail.as_ref()))
    }

    /// The takes it has a video for, sorted.
    pub fn takes(&self) -> Vec<u32> {
        let mut takes: Vec<u32> = self
            .jobs
            .iter()
            .flat_map(|j| j.generations.iter().map(|g| g.variant))
            .collect();
        takes.sort_unstable();
        takes.dedup();
        takes
    }
}

type HmacSha256 = Hmac<Sha256>;

fn sign(key: &Secret, message: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(key.expose().as_bytes()).expect("HMAC takes a key of any size");
    mac.update(message);
    format!(
        "hmac-sha256:{}",
        crate::cache_key::hex(&mac.finalize().into_bytes())
    )
}

/// Checks a signature in constant time.
fn verify(key: &Secret, message: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.strip_prefix("hmac-sha256:") else {
        return false;
    };
    let Some(bytes) = unhex(hex) else {
        return false;
    };
    let mut mac =
        HmacSha256::new_from_slice(key.expose().as_bytes()).expect("HMAC takes a key of any size");
    mac.update(message);
    mac.verify_slice(&bytes).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Environment variables that may hold a storage credential: their values never appear
/// in a message, whatever a library puts in its errors.
const SECRET_VARIABLES: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_TOKEN",
    "AWS_SSE_CUSTOMER_KEY_BASE64",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_FABRIC_SESSION_TOKEN",
    "AZURE_STORAGE_ENCRYPTION_KEY",
    "GOOGLE_BEARER_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    ENV_SIGNING_KEY,
];

/// A storage library's message made safe to print: the query of every URL in it (where
/// SAS signatures travel) cut, and the value of every credential variable masked.
pub fn redact(message: &str) -> String {
    let mut out: String = message
        .split_inclusive(char::is_whitespace)
        .map(|word| match (word.find("://"), word.find('?')) {
            (Some(scheme), Some(query)) if query > scheme => {
                let tail: String = word[query..]
                    .chars()
                    .filter(|c| c.is_whitespace() || matches!(c, ')' | ']' | '"' | '\''))
                    .collect();
                format!("{}?…{tail}", &word[..query])
            }
            _ => word.to_owned(),
        })
        .collect();
    for name in SECRET_VARIABLES {
        if let Ok(value) = std::env::var(name)
            && value.len() >= 4
        {
            out = out.replace(&value, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_place_and_hold_no_credential() {
        for ok in [
            "s3://bucket/prefix",
            "az://container",
            "gs://b/p/q",
            "file:///tmp/cache",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://bucket.s3.amazonaws.com",
            "s3://key:secret@bucket/p",
            "az://container/p?sv=2024&sig=abc",
            "s3:///nobucket",
            "not a url",
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(!e.contains("secret") && !e.contains("sig=abc"), "{e}");
        }
    }

    #[test]
    fn signatures_check_the_bytes_and_the_key() {
        let key = Secret::new("k1-0123456789");
        let s = sign(&key, b"entry");
        assert!(s.starts_with("hmac-sha256:"));
        assert!(verify(&key, b"entry", &s));
        assert!(!verify(&key, b"entrx", &s));
        assert!(!verify(&Secret::new("k2-0123456789"), b"entry", &s));
        assert!(!verify(&key, b"entry", "hmac-sha256:zz"));
        assert!(!verify(&key, b"entry", &s.replace("hmac-sha256:", "")));
    }

    fn inputs() -> RenderInputs {
        let sb = crate::manifest::parse(
            Path::new("/board/shotlist.yaml"),
            "version: 1\ndefaults: {size: 480x480, seconds: 5}\nshots:\n  - id: a\n    prompt: A gull over the surf.\n".into(),
        )
        .unwrap();
        RenderInputs::of(Api::AzureJobs, &sb.shots[0])
    }

    fn entry(realm: Realm, inputs: &RenderInputs) -> Entry {
        Entry {
            format: ENTRY_FORMAT,
            key: crate::cache_key::hash(inputs),
            realm,
            provider: Api::AzureJobs,
            model: inputs.model.clone(),
            endpoint: "myres.openai.azure.com".into(),
            inputs: inputs.clone(),
            jobs: Vec::new(),
            published_at: Timestamp::UNIX_EPOCH,
            shotlist: "test".into(),
        }
    }

    async fn open(dir: &Path, realm: Realm, key: Option<&str>) -> Cache {
        Cache::open(&Settings {
            url: url::Url::from_file_path(dir).unwrap().to_string(),
            from: "test".into(),
            read_only: false,
            signing_key: key.map(Secret::new),
            realm,
        })
        .unwrap()
    }

    async fn miss(cache: &Cache, key: &str) -> String {
        match cache.lookup(key).await {
            Lookup::Hit(_) => panic!("a hit"),
            Lookup::Miss(m) => m.to_string(),
        }
    }

    #[tokio::test]
    async fn entries_are_checked_before_use() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = inputs();
        let key = crate::cache_key::hash(&inputs);
        let files = std::collections::HashMap::new();
        // An entry of the emulator's realm, written where a service's would be.
        let service = open(dir.path(), Realm::Service, None).await;
        let forged = serde_json::json!({"entry": entry(Realm::Emulator, &inputs)});
        let at = dir
            .path()
            .join("ac")
            .join(key.trim_start_matches("sha256:"));
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(&at, serde_json::to_vec(&forged).unwrap()).unwrap();
        assert!(
            miss(&service, &key)
                .await
                .contains("emulator's placeholders")
        );
        // Inputs that do not hash to the name.
        let mut other = entry(Realm::Service, &inputs);
        other.inputs.prompt.push('!');
        std::fs::write(
            &at,
            serde_json::to_vec(&serde_json::json!({"entry": other})).unwrap(),
        )
        .unwrap();
        assert!(
            miss(&service, &key)
                .await
                .contains("do not hash to its name")
        );
        std::fs::remove_file(&at).unwrap();
        assert_eq!(miss(&service, &key).await, "not in the cache");
        // Published unsigned: a reader with a key refuses it; signed: only that key reads it.
        assert!(
            service
                .publish(&entry(Realm::Service, &inputs), &files)
                .await
                .unwrap()
        );
        assert!(
            !service
                .publish(&entry(Realm::Service, &inputs), &files)
                .await
                .unwrap()
        );
        let keyed = open(dir.path(), Realm::Service, Some("k-123456")).await;
        assert!(miss(&keyed, &key).await.contains("not signed"));
        assert!(matches!(service.lookup(&key).await, Lookup::Hit(_)));
        std::fs::remove_file(&at).unwrap();
        assert!(
            keyed
                .publish(&entry(Realm::Service, &inputs), &files)
                .await
                .unwrap()
        );
        assert!(matches!(keyed.lookup(&key).await, Lookup::Hit(_)));
        let other_key = open(dir.path(), Realm::Service, Some("k-654321")).await;
        assert!(
            miss(&other_key, &key)
                .await
                .contains("signature does not match")
        );
        // The emulator's realm is a folder of its own.
        let emulator = open(dir.path(), Realm::Emulator, None).await;
        assert_eq!(miss(&emulator, &key).await, "not in the cache");
    }

    #[test]
    fn loopback_services_are_the_emulators_realm() {
        use crate::endpoint::Target;
        let remote = |url: &str| Target::Remote {
            base_url: url.into(),
            host: String::new(),
            source: "test",
        };
        assert_eq!(Realm::of(&Target::Local), Realm::Emulator);
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://localhost:4000",
            "http://[::1]:9/x",
        ] {
            assert_eq!(Realm::of(&remote(url)), Realm::Emulator, "{url}");
        }
        for url in [
            "https://api.replicate.com/v1",
            "https://myres.openai.azure.com/openai/v1",
        ] {
            assert_eq!(Realm::of(&remote(url)), Realm::Service, "{url}");
        }
    }

    #[test]
    fn redaction_cuts_queries_and_masks_secrets() {
        let r = redact(
            "error sending request for url (https://acct.blob.core.windows.net/c/ac/x?sv=1&sig=SECRETSIG) at 2",
        );
        assert!(!r.contains("SECRETSIG"), "{r}");
        assert!(
            r.contains("https://acct.blob.core.windows.net/c/ac/x?…)"),
            "{r}"
        );
        assert!(r.ends_with("at 2"), "{r}");
    }
}
