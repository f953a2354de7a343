//! The provider of a run that has no credential because it needs none: every shot to
//! render is in the shared cache (a pull request's CI, say, with no provider key). It
//! never sends anything; should a shot need the service after all (a cached file that
//! does not verify), every call fails as a refused credential, which stops the run with
//! the help to set one.

use std::path::Path;

use super::error::{ApiError, Result};
use super::job::{Job, JobRequest, PollHint};
use super::{BoxFuture, ContentKind, ContentRef, Downloaded, Provider};
use crate::limits::Api;

#[derive(Debug)]
pub struct Uncredentialed {
    api: Api,
}

impl Uncredentialed {
    pub fn new(api: Api) -> Uncredentialed {
        Uncredentialed { api }
    }

    fn refuse<T>(&self) -> Result<T> {
        Err(ApiError::Auth {
            status: None,
            credential: "no credential".into(),
            message: format!(
                "every shot was to come from the cache, and one must be rendered after all; no credential for {} is set ({})",
                self.api,
                super::Auth::missing_help(self.api)
            ),
        })
    }
}

impl Provider for Uncredentialed {
    fn api(&self) -> Api {
        self.api
    }

    fn thumbnail_extension(&self) -> Option<&'static str> {
        None
    }

    fn auth_description(&self) -> String {
        "no credential (every shot from the cache)".into()
    }

    fn requests(&self) -> u64 {
        0
    }

    fn request_body(&self, _req: &JobRequest) -> serde_json::Value {
        serde_json::Value::Null
    }

    fn create<'a>(&'a self, _req: &'a JobRequest) -> BoxFuture<'a, Result<Job>> {
        Box::pin(async move { self.refuse() })
    }

    fn get<'a>(&'a self, _id: &'a str, _model: &'a str) -> BoxFuture<'a, Result<(Job, PollHint)>> {
        Box::pin(async move { self.refuse() })
    }

    fn list_recent(&self, _since_unix: i64) -> BoxFuture<'_, Result<Vec<Job>>> {
        Box::pin(async move { self.refuse() })
    }

    fn delete<'a>(&'a self, _id: &'a str, _model: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.refuse() })
    }

    fn download_content<'a>(
        &'a self,
        _content: &'a ContentRef<'a>,
        _kind: ContentKind,
        _final_path: &'a Path,
    ) -> BoxFuture<'a, Result<Downloaded>> {
        Box::pin(async move { self.refuse() })
    }
}
