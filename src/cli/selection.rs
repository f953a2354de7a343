//! What `plan` and `render` act on: the manifest, which shots, and for which endpoint.
//! Both commands load and plan through here, so they can never disagree.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::endpoint::{self, Target};
use crate::lockfile::Lockfile;
use crate::manifest::{self, Storyboard};
use crate::plan::{self, Plan};

/// Arguments shared by `plan` and `render`.
#[derive(Debug, clap::Args)]
pub struct Selection {
    /// The manifest.
    #[arg(default_value = manifest::DEFAULT_FILE)]
    pub manifest: PathBuf,
    /// Only these shots (all when none are given).
    pub shots: Vec<String>,
    /// Only shots with this tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Re-render the named shots (all when none are named), fresh or not.
    #[arg(long)]
    pub force: bool,
    /// Only the named shots, not the stale shots whose frames they start from: such a
    /// frame is taken from the video on disk, and a shot whose upstream video is missing
    /// is refused.
    #[arg(long)]
    pub no_deps: bool,
    /// Hash every recorded output instead of trusting size and modification time.
    #[arg(long)]
    pub verify: bool,
    /// Service URL (else the API's own variable: AZURE_OPENAI_ENDPOINT, OPENAI_BASE_URL,
    /// REPLICATE_BASE_URL; else fal's or Replicate's public API when its credential is
    /// set; else the built-in emulator).
    #[arg(long, env = "SHOTLIST_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Use the built-in emulator (placeholder videos, no account).
    #[arg(long, conflicts_with = "endpoint")]
    pub local: bool,
    /// A shared render cache: s3://BUCKET/PREFIX, az://CONTAINER/PREFIX,
    /// gs://BUCKET/PREFIX or file:///PATH (else `cache:` in the manifest). Credentials
    /// come from each cloud's usual environment; entries are signed and checked with
    /// SHOTLIST_CACHE_SIGNING_KEY when it is set.
    #[arg(long, value_name = "URL", env = crate::cache::ENV_CACHE, hide_env_values = true)]
    pub cache: Option<String>,
    /// Neither look up nor publish to a shared cache, whatever the manifest says.
    #[arg(long)]
    pub no_cache: bool,
}

/// A loaded manifest and lockfile, the chosen target, and the plan for them.
pub struct Planned {
    pub storyboard: Storyboard,
    pub lock: Lockfile,
    pub target: Target,
    pub plan: Plan,
}

impl Selection {
    /// Loads and plans. `Err(code)`: the manifest's problems were printed; exit with it.
    pub fn plan(&self) -> miette::Result<Result<Planned, ExitCode>> {
        match self.load()? {
            Ok(storyboard) => self.plan_for(storyboard).map(Ok),
            Err(code) => Ok(Err(code)),
        }
    }

    /// Loads the manifest and checks the named shots exist.
    pub fn load(&self) -> miette::Result<Result<Storyboard, ExitCode>> {
        let storyboard = match manifest::load(&self.manifest) {
            Ok(sb) => sb,
            Err(err) => return Ok(Err(super::report_load_error(err))),
        };
        super::check_selection(&storyboard, &self.shots)?;
        Ok(Ok(storyboard))
    }

    /// Reads the lockfile and plans (`render` does this holding its run lock, so the
    /// lockfile it plans from is the one it will update).
    pub fn plan_for(&self, storyboard: Storyboard) -> miette::Result<Planned> {
        let lock = Lockfile::read(&storyboard.lockfile_path())?;
        let target = endpoint::resolve(storyboard.api, self.endpoint.as_deref(), self.local)?;
        let options = plan::Options {
            endpoint: target.lock_name().to_string(),
            verify: self.verify,
            force: self.force,
            only: self.shots.clone(),
            tags: self.tags.clone(),
            now: None,
            no_deps: self.no_deps,
        };
        let plan = plan::plan(&storyboard, &lock, &options);
        Ok(Planned {
            storyboard,
            lock,
            target,
            plan,
        })
    }

    /// The shared cache this run uses, if any: `--cache` (or SHOTLIST_CACHE), else the
    /// manifest's `cache:`; none with `--no-cache`. `Err`: a message for the user.
    pub fn cache_settings(
        &self,
        storyboard: &Storyboard,
        target: &Target,
        read_only: bool,
    ) -> Result<Option<crate::cache::Settings>, String> {
        if self.no_cache {
            return Ok(None);
        }
        let (url, from) = match (&self.cache, &storyboard.cache) {
            (Some(url), _) => {
                let from = if std::env::var(crate::cache::ENV_CACHE).ok().as_ref() == Some(url) {
                    crate::cache::ENV_CACHE.to_owned()
                } else {
                    "--cache".to_owned()
                };
                (url.clone(), from)
            }
            (None, Some(url)) => (url.clone(), format!("`cache:` in {}", self.file())),
            (None, None) => return Ok(None),
        };
        crate::cache::check_url(&url).map_err(|e| format!("{from}: {e}"))?;
        let signing_key = match std::env::var(crate::cache::ENV_SIGNING_KEY) {
            Ok(key) if key.trim().is_empty() => {
                return Err(format!(
                    "{} is set but empty: set a key, or unset it",
                    crate::cache::ENV_SIGNING_KEY
                ));
            }
            Ok(key) => Some(crate::api::auth::Secret::new(key)),
            Err(_) => None,
        };
        Ok(Some(crate::cache::Settings {
            url,
            from,
            read_only,
            signing_key,
            realm: crate::cache::Realm::of(target),
        }))
    }

    pub fn file(&self) -> String {
        self.manifest.display().to_string()
    }
}
