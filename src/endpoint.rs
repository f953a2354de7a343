//! Where shots are rendered: the built-in emulator, or a service URL.
//!
//! Resolution order: `--local`, then `--endpoint`, then the environment
//! (`AZURE_OPENAI_ENDPOINT` for both APIs, `OPENAI_BASE_URL` for `openai-videos`), then
//! the built-in emulator. Only the host is ever recorded or printed: URLs here carry no
//! secrets, but query strings and user info are dropped all the same.

use crate::limits::Api;
use crate::plan::LOCAL_ENDPOINT;

pub const ENV_AZURE_ENDPOINT: &str = "AZURE_OPENAI_ENDPOINT";
pub const ENV_OPENAI_BASE_URL: &str = "OPENAI_BASE_URL";

/// The chosen target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The built-in emulator, started in-process on loopback.
    Local,
    /// A service. `base_url` as given (no trailing slash); `source` says where it came from.
    Remote {
        base_url: String,
        host: String,
        source: &'static str,
    },
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("invalid endpoint URL from {source_name}")]
#[diagnostic(help(
    "give a URL like `https://RESOURCE.openai.azure.com` or `http://127.0.0.1:8089`"
))]
pub struct EndpointError {
    source_name: &'static str,
}

impl Target {
    /// The name the lockfile records: `local` or the host.
    pub fn lock_name(&self) -> &str {
        match self {
            Target::Local => LOCAL_ENDPOINT,
            Target::Remote { host, .. } => host,
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Target::Local)
    }
}

/// Picks the target for `api` from the flags and the environment.
pub fn resolve(api: Api, flag: Option<&str>, local: bool) -> Result<Target, EndpointError> {
    resolve_with(api, flag, local, |k| std::env::var(k).ok())
}

pub fn resolve_with(
    api: Api,
    flag: Option<&str>,
    local: bool,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Target, EndpointError> {
    if local {
        return Ok(Target::Local);
    }
    let candidates: Vec<(Option<String>, &'static str)> = match api {
        Api::AzureJobs => vec![
            (flag.map(str::to_string), "--endpoint"),
            (env(ENV_AZURE_ENDPOINT), ENV_AZURE_ENDPOINT),
        ],
        Api::OpenaiVideos => vec![
            (flag.map(str::to_string), "--endpoint"),
            (env(ENV_OPENAI_BASE_URL), ENV_OPENAI_BASE_URL),
            (env(ENV_AZURE_ENDPOINT), ENV_AZURE_ENDPOINT),
        ],
    };
    for (value, source) in candidates {
        let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let host = host_of(&value).ok_or(EndpointError {
            source_name: source,
        })?;
        return Ok(Target::Remote {
            base_url: value.trim().trim_end_matches('/').to_string(),
            host,
            source,
        });
    }
    Ok(Target::Local)
}

/// `https://user:pw@host:443/path?q` → `host:443`. None when it is not an http(s) URL.
pub fn host_of(url: &str) -> Option<String> {
    let rest = url
        .trim()
        .strip_prefix("https://")
        .or_else(|| url.trim().strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_resolution() {
        let env = |k: &str| {
            (k == ENV_AZURE_ENDPOINT).then(|| "https://res.openai.azure.com/".to_string())
        };
        assert_eq!(
            resolve_with(Api::AzureJobs, None, true, env).unwrap(),
            Target::Local
        );
        let t = resolve_with(Api::AzureJobs, None, false, env).unwrap();
        assert_eq!(t.lock_name(), "res.openai.azure.com");
        let t = resolve_with(Api::AzureJobs, Some("http://127.0.0.1:9/"), false, env).unwrap();
        assert_eq!(
            t,
            Target::Remote {
                base_url: "http://127.0.0.1:9".into(),
                host: "127.0.0.1:9".into(),
                source: "--endpoint"
            }
        );
        assert_eq!(
            resolve_with(Api::AzureJobs, None, false, |_| None).unwrap(),
            Target::Local
        );
        assert!(resolve_with(Api::AzureJobs, Some("ftp://x"), false, |_| None).is_err());
    }

    #[test]
    fn host_drops_user_info_and_query() {
        assert_eq!(
            host_of("https://me:secret@h.example:8443/v1?key=k").as_deref(),
            Some("h.example:8443")
        );
    }
}
