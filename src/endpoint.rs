//! Where shots are rendered: the built-in emulator, or a service URL.
//!
//! Resolution order: `--local`, then `--endpoint`, then `SHOTLIST_ENDPOINT`, then the
//! API's own variables (`AZURE_OPENAI_ENDPOINT` for both Sora APIs, `OPENAI_BASE_URL` for
//! `openai-videos`, `REPLICATE_BASE_URL` for `replicate`), then the service's public
//! address where it has one and its credential is set (fal, Replicate), then the
//! built-in emulator. Only the host is ever recorded or printed: URLs here carry no
//! secrets, but query strings and user info are dropped all the same.

use crate::limits::Api;
use crate::plan::LOCAL_ENDPOINT;

pub const ENV_AZURE_ENDPOINT: &str = "AZURE_OPENAI_ENDPOINT";
pub const ENV_OPENAI_BASE_URL: &str = "OPENAI_BASE_URL";
pub const ENV_REPLICATE_BASE_URL: &str = "REPLICATE_BASE_URL";
pub const ENV_OPENROUTER_BASE_URL: &str = "OPENROUTER_BASE_URL";

/// A service's public address, used when its credential is set and no URL is given.
struct Public {
    url: &'static str,
    /// Any of these set means the user has an account there.
    credentials: &'static [&'static str],
    source: &'static str,
}

fn public(api: Api) -> Option<Public> {
    match api {
        Api::Fal => Some(Public {
            url: "https://queue.fal.run",
            credentials: &["FAL_KEY", "FAL_KEY_ID"],
            source: "fal's queue (FAL_KEY is set)",
        }),
        Api::Replicate => Some(Public {
            url: "https://api.replicate.com/v1",
            credentials: &["REPLICATE_API_TOKEN"],
            source: "Replicate's API (REPLICATE_API_TOKEN is set)",
        }),
        Api::Openrouter => Some(Public {
            url: "https://openrouter.ai/api/v1",
            credentials: &["OPENROUTER_API_KEY"],
            source: "OpenRouter's API (OPENROUTER_API_KEY is set)",
        }),
        Api::AzureJobs | Api::OpenaiVideos => None,
    }
}

/// The API base a user-given URL means: Replicate's clients take the host alone
/// (`https://api.replicate.com`, the 1.x clients) or with `/v1`; both mean `.../v1`.
/// OpenRouter's host alone means `.../api/v1`.
fn api_base(api: Api, url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let path_empty = url
        .split_once("://")
        .is_some_and(|(_, rest)| !rest.contains('/'));
    match api {
        Api::Replicate if path_empty => format!("{url}/v1"),
        // `https://openrouter.ai` means its API, `/api/v1`.
        Api::Openrouter if path_empty => format!("{url}/api/v1"),
        _ => url.to_string(),
    }
}

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
    // `SHOTLIST_ENDPOINT` arrives as the flag (clap reads it for `--endpoint`).
    let mut candidates: Vec<(Option<String>, &'static str)> =
        vec![(flag.map(str::to_string), "--endpoint")];
    match api {
        Api::AzureJobs => candidates.push((env(ENV_AZURE_ENDPOINT), ENV_AZURE_ENDPOINT)),
        Api::OpenaiVideos => candidates.extend([
            (env(ENV_OPENAI_BASE_URL), ENV_OPENAI_BASE_URL),
            (env(ENV_AZURE_ENDPOINT), ENV_AZURE_ENDPOINT),
        ]),
        Api::Replicate => candidates.push((env(ENV_REPLICATE_BASE_URL), ENV_REPLICATE_BASE_URL)),
        Api::Openrouter => candidates.push((env(ENV_OPENROUTER_BASE_URL), ENV_OPENROUTER_BASE_URL)),
        Api::Fal => {}
    }
    if let Some(p) = public(api)
        && p.credentials
            .iter()
            .any(|k| env(k).is_some_and(|v| !v.trim().is_empty()))
    {
        candidates.push((Some(p.url.to_string()), p.source));
    }
    for (value, source) in candidates {
        let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let host = host_of(&value).ok_or(EndpointError {
            source_name: source,
        })?;
        return Ok(Target::Remote {
            base_url: api_base(api, &value),
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
    fn fal_and_replicate_use_their_public_address_only_with_a_credential() {
        let none = |_: &str| None::<String>;
        assert_eq!(
            resolve_with(Api::Fal, None, false, none).unwrap(),
            Target::Local
        );
        let fal = |k: &str| (k == "FAL_KEY").then(|| "id:secret".to_string());
        let t = resolve_with(Api::Fal, None, false, fal).unwrap();
        assert_eq!(t.lock_name(), "queue.fal.run");
        let rep = |k: &str| match k {
            "REPLICATE_API_TOKEN" => Some("r8_x".to_string()),
            "REPLICATE_BASE_URL" => Some("http://127.0.0.1:9".to_string()),
            _ => None,
        };
        let Target::Remote {
            base_url, source, ..
        } = resolve_with(Api::Replicate, None, false, rep).unwrap()
        else {
            panic!("local")
        };
        // The 1.x client's form (no `/v1`) means the same API base.
        assert_eq!(
            (base_url.as_str(), source),
            ("http://127.0.0.1:9/v1", ENV_REPLICATE_BASE_URL)
        );
        // `--endpoint` (or `SHOTLIST_ENDPOINT`, which clap reads for it) comes first.
        let t = resolve_with(Api::Fal, Some("http://127.0.0.1:7/"), false, fal).unwrap();
        assert_eq!(t.lock_name(), "127.0.0.1:7");
    }

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
