//! What the integration tests share: a board in a temporary folder (`Project`), the
//! emulator with a key, the binary's output, and checks every render test makes (no key
//! anywhere, every output matching the lockfile).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::Digest;
use shotlist::emulator::{Emulator, EmulatorConfig, FaultSpec, Stats};
use shotlist::lockfile::Lockfile;

/// The key the emulator requires; no output, log or file may contain it.
pub const KEY: &str = "sk-test-Zq8vX2mK7pL4nR9tW3yB";
/// Emulated minutes are 0.2 s: jobs take 0.2 to 1 s.
pub const SCALE: f64 = 300.0;

pub fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some(KEY.into()),
        time_scale: SCALE,
        faults: FaultSpec::none(),
        ..EmulatorConfig::default()
    }
}

pub async fn emulator(cfg: EmulatorConfig) -> Emulator {
    Emulator::start(cfg).await.expect("the emulator starts")
}

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(manifest: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shotlist.yaml"), manifest).unwrap();
        Project { dir }
    }

    pub fn example() -> Project {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/storyboard.yaml"),
        )
        .unwrap();
        Project::new(&text)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn command(&self, emu: &Emulator, extra: &[&str]) -> Command {
        self.command_at(&emu.base_url(), extra)
    }

    pub fn command_at(&self, endpoint: &str, extra: &[&str]) -> Command {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        self.command_scaled(endpoint, SCALE, &extra)
    }

    /// `render` against `endpoint` on a clock `scale` times faster than real time.
    pub fn command_scaled(&self, endpoint: &str, scale: f64, extra: &[String]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shotlist"));
        cmd.current_dir(self.dir.path())
            .arg("render")
            .args(["--endpoint", endpoint, "--time-scale", &scale.to_string()])
            .args(extra)
            .env("AZURE_OPENAI_API_KEY", KEY)
            .env("FAL_KEY", KEY)
            .env("REPLICATE_API_TOKEN", KEY)
            .env("OPENROUTER_API_KEY", KEY)
            .env_remove("AZURE_OPENAI_ENDPOINT")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("AZURE_OPENAI_AD_TOKEN")
            .env_remove("SHOTLIST_ENDPOINT")
            .env_remove("REPLICATE_BASE_URL")
            .env_remove("OPENROUTER_BASE_URL")
            .env_remove("FAL_KEY_ID")
            .env_remove("FAL_KEY_SECRET")
            .env("NO_COLOR", "1")
            .env("CI", "1");
        cmd
    }

    /// Runs `shotlist render` to the end, off the async runtime the emulator uses.
    pub async fn render(&self, emu: &Emulator, extra: &[&str]) -> Output {
        let mut cmd = self.command(emu, extra);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert_no_key(&out);
        out
    }

    pub fn lock(&self) -> Lockfile {
        Lockfile::read(&self.path("shotlist.lock")).expect("the lockfile parses")
    }

    /// Every recorded file is on disk with the recorded size and sha256.
    pub fn assert_outputs_match_lock(&self) {
        for (id, shot) in &self.lock().shots {
            for (_, g) in shot.generations() {
                let f = g
                    .file
                    .as_ref()
                    .unwrap_or_else(|| panic!("{id}: no file recorded"));
                let bytes =
                    std::fs::read(self.path(&f.path)).unwrap_or_else(|e| panic!("{}: {e}", f.path));
                assert_eq!(bytes.len() as u64, f.bytes, "{}", f.path);
                assert_eq!(
                    shotlist::cache_key::hex(&sha2::Sha256::digest(&bytes)),
                    f.sha256,
                    "{}",
                    f.path
                );
            }
        }
    }

    /// No file the run wrote contains the key.
    pub fn assert_no_key_in_files(&self) {
        for entry in walk(self.dir.path()) {
            let bytes = std::fs::read(&entry).unwrap();
            assert!(
                !contains(&bytes, KEY.as_bytes()),
                "the API key leaked into {}",
                entry.display()
            );
        }
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub fn assert_no_key(out: &Output) {
    assert!(
        !contains(&out.stdout, KEY.as_bytes()),
        "the API key leaked to stdout"
    );
    assert!(
        !contains(&out.stderr, KEY.as_bytes()),
        "the API key leaked to stderr"
    );
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stats(emu: &Emulator) -> Stats {
    emu.stats()
}

pub fn manifest(shots: usize, seconds: u32, extra: &str) -> String {
    let mut m =
        format!("version: 1\ndefaults:\n  size: 480x480\n  seconds: {seconds}\n{extra}shots:\n");
    for i in 0..shots {
        m.push_str(&format!(
            "  - id: s{i:02}\n    prompt: Shot {i}, a lantern swinging in the wind.\n"
        ));
    }
    m
}

pub fn reqwest_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Copies a folder tree (fixtures into a temporary folder, so no test writes into the
/// repository).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A free TCP port on loopback, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process a test started (Redis, an object store, a gateway): killed and
/// reaped when the test drops it, whichever way the test ends.
pub struct Process(pub std::process::Child);

impl std::ops::Deref for Process {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Process {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
