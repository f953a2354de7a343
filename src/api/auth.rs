//! Credentials: which one is used, how it goes on a request, and how it stays secret.
//!
//! Sources, in the order [`Auth::from_env`] tries them:
//! * an API key (`AZURE_OPENAI_API_KEY` for Azure, `OPENAI_API_KEY` for OpenAI);
//! * a Microsoft Entra ID token in `AZURE_OPENAI_AD_TOKEN` (used as is, never refreshed);
//! * the Azure CLI (`az account get-access-token`), cached and refreshed five minutes before
//!   it expires.
//!
//! A key or token lives only in a [`Secret`], whose `Debug` and `Display` print `***`.
//! This module must never log, print or put a credential's value in an error; errors name
//! the credential with [`Auth::describe`] instead.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::error::{ApiError, Result};

/// A credential value. Cannot be printed by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that needs it: the request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which header an API key goes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyHeader {
    /// `api-key: KEY` (Azure, both protocols).
    ApiKey,
    /// `Authorization: Bearer KEY` (OpenAI and compatible proxies, Replicate).
    Bearer,
    /// `Authorization: Key KEY` (fal).
    Key,
}

impl KeyHeader {
    /// How `api`'s own service takes a key (the built-in emulator is addressed the same way).
    pub fn of(api: crate::limits::Api) -> KeyHeader {
        match api {
            crate::limits::Api::AzureJobs => KeyHeader::ApiKey,
            crate::limits::Api::OpenaiVideos
            | crate::limits::Api::Replicate
            | crate::limits::Api::Openrouter => KeyHeader::Bearer,
            crate::limits::Api::Fal => KeyHeader::Key,
        }
    }
}

/// How requests to one endpoint are authenticated.
#[derive(Clone, Debug)]
pub enum Auth {
    ApiKey {
        key: Secret,
        header: KeyHeader,
        /// Where the key came from, for messages (e.g. the variable name).
        source: String,
    },
    /// A Microsoft Entra ID (or other) bearer token.
    Bearer(TokenSource),
}

#[derive(Clone, Debug)]
pub enum TokenSource {
    Static { token: Secret, source: String },
    AzureCli(AzureCli),
}

impl Auth {
    /// What tells one account from another for a coordinator (`--coordinate`), which
    /// keeps only a keyed hash of it: the key; `None` for bearer tokens (Microsoft Entra
    /// ID), whose limits are the resource's whoever holds the token.
    pub fn account_secret(&self) -> Option<&str> {
        match self {
            Auth::ApiKey { key, .. } => Some(key.expose()),
            Auth::Bearer(_) => None,
        }
    }

    /// Picks a credential from the environment for `api`, through `var` (usually
    /// `std::env::var(name).ok()`). For Azure, the CLI is the last resort, so this
    /// always returns `Some` there; for OpenAI, `None` means no key is set.
    pub fn from_env(
        api: crate::limits::Api,
        azure: bool,
        var: impl Fn(&str) -> Option<String>,
    ) -> Option<Auth> {
        let set = |name: &str| {
            var(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().to_owned())
        };
        let key = |name: &str, header| {
            set(name).map(|v| Auth::ApiKey {
                key: Secret::new(v),
                header,
                source: name.to_owned(),
            })
        };
        use crate::limits::Api;
        match (api, azure) {
            (Api::OpenaiVideos, false) => key("OPENAI_API_KEY", KeyHeader::Bearer),
            // fal's clients: `FAL_KEY`, else `FAL_KEY_ID` and `FAL_KEY_SECRET` as `id:secret`.
            (Api::Fal, _) => key("FAL_KEY", KeyHeader::Key).or_else(|| {
                let (id, secret) = (set("FAL_KEY_ID")?, set("FAL_KEY_SECRET")?);
                Some(Auth::ApiKey {
                    key: Secret::new(format!("{id}:{secret}")),
                    header: KeyHeader::Key,
                    source: "FAL_KEY_ID and FAL_KEY_SECRET".to_owned(),
                })
            }),
            (Api::Replicate, _) => key("REPLICATE_API_TOKEN", KeyHeader::Bearer),
            (Api::Openrouter, _) => key("OPENROUTER_API_KEY", KeyHeader::Bearer),
            _ => key("AZURE_OPENAI_API_KEY", KeyHeader::ApiKey)
                .or_else(|| {
                    set("AZURE_OPENAI_AD_TOKEN").map(|t| {
                        Auth::Bearer(TokenSource::Static {
                            token: Secret::new(t),
                            source: "AZURE_OPENAI_AD_TOKEN".to_owned(),
                        })
                    })
                })
                .or_else(|| Some(Auth::Bearer(TokenSource::AzureCli(AzureCli::new())))),
        }
    }

    /// What to set when [`Auth::from_env`] found nothing for `api`.
    pub fn missing_help(api: crate::limits::Api) -> &'static str {
        match api {
            crate::limits::Api::Fal => {
                "set FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET): a key from fal's dashboard"
            }
            crate::limits::Api::Replicate => {
                "set REPLICATE_API_TOKEN: a token from Replicate's account settings"
            }
            crate::limits::Api::Openrouter => {
                "set OPENROUTER_API_KEY: a key from OpenRouter's settings"
            }
            _ => "set OPENAI_API_KEY (or AZURE_OPENAI_API_KEY for an Azure endpoint)",
        }
    }

    /// Which credential this is, without its value, e.g. "API key from AZURE_OPENAI_API_KEY".
    pub fn describe(&self) -> String {
        match self {
            Auth::ApiKey { source, .. } => format!("API key from {source}"),
            Auth::Bearer(TokenSource::Static { source, .. }) => {
                format!("Entra ID token from {source}")
            }
            Auth::Bearer(TokenSource::AzureCli(_)) => {
                "Entra ID token from the Azure CLI (`az account get-access-token`)".to_owned()
            }
        }
    }

    /// The header to put on a request. May run the Azure CLI (once per token lifetime).
    pub async fn header(&self) -> Result<(HeaderName, HeaderValue)> {
        let (name, value) = match self {
            Auth::ApiKey {
                key,
                header: KeyHeader::ApiKey,
                ..
            } => (HeaderName::from_static("api-key"), key.expose().to_owned()),
            Auth::ApiKey {
                key,
                header: KeyHeader::Bearer,
                ..
            } => (AUTHORIZATION, bearer(key)),
            Auth::ApiKey {
                key,
                header: KeyHeader::Key,
                ..
            } => (AUTHORIZATION, format!("Key {}", key.expose())),
            Auth::Bearer(TokenSource::Static { token, .. }) => (AUTHORIZATION, bearer(token)),
            Auth::Bearer(TokenSource::AzureCli(cli)) => {
                (AUTHORIZATION, bearer(&cli.token().await?))
            }
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| ApiError::Auth {
            status: None,
            credential: self.describe(),
            message: "the credential contains characters not allowed in an HTTP header".to_owned(),
        })?;
        // Keeps the value out of hyper's and reqwest's own debug output.
        value.set_sensitive(true);
        Ok((name, value))
    }
}

fn bearer(secret: &Secret) -> String {
    format!("Bearer {}", secret.expose())
}

/// Tokens from `az account get-access-token`, cached until five minutes before expiry.
#[derive(Clone, Debug)]
pub struct AzureCli {
    program: String,
    cached: Arc<Mutex<Option<(Secret, SystemTime)>>>,
}

/// Refresh this long before the token expires: a request in flight (or waiting in the
/// pacer) must not reach the server with a token that expired on the way.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

impl Default for AzureCli {
    fn default() -> Self {
        AzureCli::new()
    }
}

impl AzureCli {
    pub fn new() -> AzureCli {
        AzureCli::with_program("az")
    }

    /// Another program with the CLI's arguments and output (tests use a script).
    pub fn with_program(program: impl Into<String>) -> AzureCli {
        AzureCli {
            program: program.into(),
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// A token valid for at least five more minutes. Concurrent callers wait for one run
    /// of the CLI instead of each starting their own.
    pub async fn token(&self) -> Result<Secret> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && SystemTime::now() + REFRESH_MARGIN < *expires
        {
            return Ok(token.clone());
        }
        let fail = |message: String| ApiError::Auth {
            status: None,
            credential: Auth::Bearer(TokenSource::AzureCli(self.clone())).describe(),
            message,
        };
        let output = tokio::process::Command::new(&self.program)
            .args([
                "account",
                "get-access-token",
                "--resource",
                "https://cognitiveservices.azure.com",
                "--output",
                "json",
            ])
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| {
                fail(format!(
                    "could not run `{}`: {e}; set AZURE_OPENAI_API_KEY or log in with `az login`",
                    self.program
                ))
            })?;
        if !output.status.success() {
            // The CLI's own stderr says what is wrong (not logged in, wrong tenant); it
            // holds no token.
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no output");
            return Err(fail(format!(
                "`az account get-access-token` failed: {first}"
            )));
        }
        let (token, expires) = parse_cli_token(&output.stdout).map_err(fail)?;
        *cached = Some((token.clone(), expires));
        Ok(token)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CliToken {
    access_token: String,
    /// Unix seconds (CLI 2.54 and later).
    #[serde(rename = "expires_on")]
    expires_on_unix: Option<i64>,
    /// Local time without a zone, `2025-05-20 13:45:00.000000` (older CLIs).
    expires_on: Option<String>,
}

/// Reads the CLI's JSON. Never puts the output in an error: it contains the token.
fn parse_cli_token(stdout: &[u8]) -> Result<(Secret, SystemTime), String> {
    let t: CliToken = serde_json::from_slice(stdout).map_err(|_| {
        "the Azure CLI printed something other than a token (expected JSON with `accessToken`)"
            .to_owned()
    })?;
    let expires = if let Some(unix) = t.expires_on_unix {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0))
    } else if let Some(local) = t.expires_on.as_deref() {
        let civil: jiff::civil::DateTime = local
            .trim()
            .parse()
            .map_err(|_| format!("the Azure CLI token has an unreadable `expiresOn`: `{local}`"))?;
        let ts = jiff::tz::TimeZone::system()
            .to_timestamp(civil)
            .map_err(|_| format!("the Azure CLI token has an unreadable `expiresOn`: `{local}`"))?;
        UNIX_EPOCH + Duration::from_secs(u64::try_from(ts.as_second()).unwrap_or(0))
    } else {
        // No expiry given: trust it briefly rather than forever.
        SystemTime::now() + REFRESH_MARGIN + Duration::from_secs(60)
    };
    Ok((Secret::new(t.access_token), expires))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Api;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk-very-secret");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let auth = Auth::ApiKey {
            key: s,
            header: KeyHeader::Bearer,
            source: "OPENAI_API_KEY".into(),
        };
        let debug = format!("{auth:?} {}", auth.describe());
        assert!(!debug.contains("sk-very-secret"), "{debug}");
        assert_eq!(auth.describe(), "API key from OPENAI_API_KEY");
    }

    #[test]
    fn env_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let a = Auth::from_env(
            Api::AzureJobs,
            true,
            env(&[
                ("AZURE_OPENAI_API_KEY", "k"),
                ("AZURE_OPENAI_AD_TOKEN", "t"),
            ]),
        );
        assert_eq!(a.unwrap().describe(), "API key from AZURE_OPENAI_API_KEY");
        let a = Auth::from_env(
            Api::AzureJobs,
            true,
            env(&[
                ("AZURE_OPENAI_API_KEY", " "),
                ("AZURE_OPENAI_AD_TOKEN", "t"),
            ]),
        );
        assert_eq!(
            a.unwrap().describe(),
            "Entra ID token from AZURE_OPENAI_AD_TOKEN"
        );
        let a = Auth::from_env(Api::OpenaiVideos, true, env(&[]));
        assert!(a.unwrap().describe().contains("Azure CLI"));
        assert!(
            Auth::from_env(
                Api::OpenaiVideos,
                false,
                env(&[("AZURE_OPENAI_API_KEY", "k")])
            )
            .is_none()
        );
        let a = Auth::from_env(Api::OpenaiVideos, false, env(&[("OPENAI_API_KEY", "k")])).unwrap();
        assert!(matches!(
            a,
            Auth::ApiKey {
                header: KeyHeader::Bearer,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn headers_are_sensitive_and_in_the_right_place() {
        let a = Auth::ApiKey {
            key: Secret::new("k1"),
            header: KeyHeader::ApiKey,
            source: "X".into(),
        };
        let (name, value) = a.header().await.unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("api-key", "k1"));
        assert!(value.is_sensitive());
        let a = Auth::Bearer(TokenSource::Static {
            token: Secret::new("t1"),
            source: "X".into(),
        });
        let (name, value) = a.header().await.unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("authorization", "Bearer t1")
        );
    }

    #[test]
    fn cli_token_formats() {
        let (t, exp) = parse_cli_token(br#"{"accessToken":"tok","expiresOn":"2030-01-01 00:00:00.000000","expires_on":1893456000,"tokenType":"Bearer"}"#).unwrap();
        assert_eq!(t.expose(), "tok");
        assert_eq!(exp, UNIX_EPOCH + Duration::from_secs(1_893_456_000));
        let (_, exp) =
            parse_cli_token(br#"{"accessToken":"tok","expiresOn":"2030-01-01 00:00:00.000000"}"#)
                .unwrap();
        assert!(exp > UNIX_EPOCH + Duration::from_secs(1_893_400_000));
        let err = parse_cli_token(b"accessToken tok").unwrap_err();
        assert!(!err.contains("tok\""), "{err}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn cli_tokens_are_cached_until_near_expiry() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let script = dir.path().join("az");
        let far = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho x >> '{}'\necho '{{\"accessToken\":\"cli-tok\",\"expires_on\":{far}}}'\n", count.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cli = AzureCli::with_program(script.to_str().unwrap());
        assert_eq!(cli.token().await.unwrap().expose(), "cli-tok");
        assert_eq!(cli.token().await.unwrap().expose(), "cli-tok");
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);
        // Near expiry: refreshed.
        *cli.cached.lock().await = Some((
            Secret::new("old"),
            SystemTime::now() + Duration::from_secs(60),
        ));
        assert_eq!(cli.token().await.unwrap().expose(), "cli-tok");
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 2);
    }
}
