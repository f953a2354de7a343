//! Real object stores on loopback for the shared cache's tests: Azurite (npm) for Azure
//! Blob, moto's server (PyPI) for S3, and a local folder. `scripts/test.sh` installs
//! the servers and says where they are (`SHOTLIST_TEST_AZURITE`, `SHOTLIST_TEST_MOTO`);
//! each test starts its own on a free port, so tests never share a bucket. The test
//! reads and writes the store through `object_store` (to look at and tamper with what
//! shotlist published), and hands shotlist the environment a user would set.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::support::{Process, free_port};

/// Where the tests' renders go in the cache: every emulator here is on loopback, so its
/// placeholders are in the emulator's realm (never a real provider's).
pub const REALM: &str = "emulator/";
/// A credential no output, lockfile or cache object may contain.
pub const STORE_SECRET: &str = "s3cr3t-Pw9Lq2Zx7Vb4Nm8Kd1";
/// Azurite's well-known account and key (public, documented by Microsoft).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Folder,
    S3,
    Azure,
}

pub struct Store {
    /// What shotlist is given: `--cache URL`.
    pub url: String,
    /// The environment a user would set for it.
    env: Vec<(String, String)>,
    /// The store as the test sees it, at the cache's prefix.
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    _server: Option<Process>,
    _dir: tempfile::TempDir,
}

fn tool(var: &str, default: &str, install: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.into());
    let found = Command::new(&path)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        found.is_ok(),
        "`{path}` is needed by this test and is missing: {install} (bash scripts/test.sh does it, and sets {var})"
    );
    path
}

/// Waits until `url` answers at all (any status): the server is up.
async fn wait_up(url: &str, child: &mut Child, log: &std::path::Path) {
    let client = super::support::reqwest_client();
    let started = Instant::now();
    loop {
        if client.get(url).send().await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{url}: the server exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{url} did not come up: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Store {
    pub async fn start(kind: Kind) -> Store {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let prefix = ObjectPath::from("team/lighthouse");
        match kind {
            Kind::Folder => {
                let root = dir.path().join("cache");
                std::fs::create_dir_all(&root).unwrap();
                let store = object_store::local::LocalFileSystem::new_with_prefix(&root).unwrap();
                Store {
                    url: url::Url::from_file_path(&root).unwrap().to_string(),
                    env: Vec::new(),
                    store: Arc::new(store),
                    prefix: ObjectPath::from(""),
                    _server: None,
                    _dir: dir,
                }
            }
            Kind::S3 => {
                let moto = tool(
                    "SHOTLIST_TEST_MOTO",
                    "moto_server",
                    "pip install 'moto[server]'",
                );
                let port = free_port();
                let log = dir.path().join("moto.log");
                let child = Command::new(moto)
                    .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log).unwrap())
                    .spawn()
                    .expect("moto's server starts");
                let mut server = Process(child);
                let endpoint = format!("http://127.0.0.1:{port}");
                wait_up(&endpoint, &mut server, &log).await;
                // moto takes an unsigned request to make a bucket.
                let made = super::support::reqwest_client()
                    .put(format!("{endpoint}/renders"))
                    .send()
                    .await
                    .unwrap();
                assert!(made.status().is_success(), "bucket: {}", made.status());
                let store = object_store::aws::AmazonS3Builder::new()
                    .with_endpoint(&endpoint)
                    .with_allow_http(true)
                    .with_region("us-east-1")
                    .with_bucket_name("renders")
                    .with_access_key_id("AKIDTEST")
                    .with_secret_access_key(STORE_SECRET)
                    .build()
                    .unwrap();
                Store {
                    url: format!("s3://renders/{prefix}"),
                    env: vec![
                        ("AWS_ENDPOINT_URL".into(), endpoint),
                        ("AWS_ALLOW_HTTP".into(), "true".into()),
                        ("AWS_REGION".into(), "us-east-1".into()),
                        ("AWS_ACCESS_KEY_ID".into(), "AKIDTEST".into()),
                        ("AWS_SECRET_ACCESS_KEY".into(), STORE_SECRET.into()),
                    ],
                    store: Arc::new(store),
                    prefix,
                    _server: Some(server),
                    _dir: dir,
                }
            }
            Kind::Azure => {
                let azurite = tool(
                    "SHOTLIST_TEST_AZURITE",
                    "azurite-blob",
                    "npm install azurite",
                );
                let port = free_port();
                let log = dir.path().join("azurite.log");
                let child = Command::new(azurite)
                    .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                    .args(["--inMemoryPersistence", "--silent", "--skipApiVersionCheck"])
                    .arg("--disableTelemetry")
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log).unwrap())
                    .spawn()
                    .expect("Azurite starts");
                let mut server = Process(child);
                let endpoint = format!("http://127.0.0.1:{port}");
                wait_up(&endpoint, &mut server, &log).await;
                create_container(&endpoint, "renders").await;
                let store = object_store::azure::MicrosoftAzureBuilder::new()
                    .with_account(AZURITE_ACCOUNT)
                    .with_access_key(AZURITE_KEY)
                    .with_endpoint(format!("{endpoint}/{AZURITE_ACCOUNT}"))
                    .with_allow_http(true)
                    .with_container_name("renders")
                    .build()
                    .unwrap();
                Store {
                    url: format!("az://renders/{prefix}"),
                    env: vec![
                        ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
                        ("AZURITE_BLOB_STORAGE_URL".into(), endpoint),
                    ],
                    store: Arc::new(store),
                    prefix,
                    _server: Some(server),
                    _dir: dir,
                }
            }
        }
    }

    /// Gives `cmd` this store's environment (and none of the machine's own cloud settings).
    pub fn apply(&self, cmd: &mut Command) {
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("AZURE_STORAGE") || k.starts_with("AZURITE") {
                cmd.env_remove(k);
            }
        }
        cmd.env_remove("SHOTLIST_CACHE")
            .env_remove("SHOTLIST_CACHE_SIGNING_KEY");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
    }

    fn at(&self, key: &str) -> ObjectPath {
        let mut path = self.prefix.clone();
        for part in key.split('/') {
            path = path.join(part);
        }
        path
    }

    /// Every key under the cache's prefix (relative to it), sorted.
    pub async fn keys(&self) -> Vec<String> {
        use futures::TryStreamExt;
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let mut keys: Vec<String> = self
            .store
            .list(prefix)
            .map_ok(|m| {
                let full = m.location.to_string();
                full.strip_prefix(&format!("{}/", self.prefix))
                    .unwrap_or(&full)
                    .to_owned()
            })
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }

    pub async fn get(&self, key: &str) -> Vec<u8> {
        self.store
            .get(&self.at(key))
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"))
            .bytes()
            .await
            .unwrap()
            .to_vec()
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) {
        self.store
            .put(&self.at(key), PutPayload::from(bytes))
            .await
            .unwrap();
    }

    /// The entries (`emulator/ac/…`) and blobs (`emulator/cas/…`) of the tests' realm.
    pub async fn entries(&self) -> Vec<String> {
        self.keys()
            .await
            .into_iter()
            .filter(|k| k.starts_with(&format!("{REALM}ac/")))
            .collect()
    }

    pub async fn blobs(&self) -> Vec<String> {
        self.keys()
            .await
            .into_iter()
            .filter(|k| k.starts_with(&format!("{REALM}cas/")))
            .collect()
    }

    /// Every entry names only blobs that are there, each with the bytes its name says.
    pub async fn assert_consistent(&self) {
        use sha2::Digest;
        for key in self.entries().await {
            let stored: serde_json::Value = serde_json::from_slice(&self.get(&key).await).unwrap();
            let jobs = stored["entry"]["jobs"].as_array().unwrap();
            for g in jobs
                .iter()
                .flat_map(|j| j["generations"].as_array().unwrap())
            {
                for blob in [&g["video"], &g["thumbnail"]] {
                    let Some(sha) = blob["sha256"].as_str() else {
                        continue;
                    };
                    let bytes = self.get(&format!("{REALM}cas/{sha}")).await;
                    assert_eq!(
                        shotlist::cache_key::hex(&sha2::Sha256::digest(&bytes)),
                        sha,
                        "{key}: blob {sha} does not match its name"
                    );
                    assert_eq!(bytes.len() as u64, blob["bytes"].as_u64().unwrap());
                }
            }
        }
    }
}

/// Makes a container in Azurite (object_store makes none): Shared Key signed by hand.
async fn create_container(endpoint: &str, name: &str) {
    use base64::Engine;
    use hmac::Mac;
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let version = "2021-08-06";
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let made = super::support::reqwest_client()
        .put(format!(
            "{endpoint}/{AZURITE_ACCOUNT}/{name}?restype=container"
        ))
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header(
            "Authorization",
            format!("SharedKey {AZURITE_ACCOUNT}:{signature}"),
        )
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    let status = made.status();
    assert!(
        status.is_success(),
        "container: {status}: {}",
        made.text().await.unwrap_or_default()
    );
}
