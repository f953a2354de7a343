//! Paging through a job list, newest first, the same way for both protocols.
//!
//! Only reconciliation lists jobs (to find one a lost create made), so paging stops as
//! soon as a page reaches jobs older than the moment of interest, and never runs past a
//! fixed number of pages whatever a server answers.

use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::Result;
use super::job::Job;
use super::parse_json;
use super::transport::{Call, Transport};

/// Most pages read for one reconciliation.
const MAX_PAGES: usize = 20;

/// One page of a list answer (`data`, `has_more`, `last_id` in both protocols).
#[derive(Deserialize)]
struct Page<W> {
    data: Vec<W>,
    #[serde(default)]
    has_more: bool,
    last_id: Option<String>,
}

/// Jobs created at or after `since_unix`, newest first. `url(after)` gives the URL of
/// the page after the cursor (the first page for `None`); `to_job` reads one wire item.
pub(crate) async fn since<W: DeserializeOwned>(
    transport: &Transport,
    what: &str,
    since_unix: i64,
    url: impl Fn(Option<&str>) -> Url,
    to_job: fn(W) -> Job,
) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let call = Call {
            method: Method::GET,
            url: url(after.as_deref()),
            json: None,
            what,
            create: false,
            multipart: None,
        };
        let answer = transport.fetch(&call).await?;
        let page = parse_json::<Page<W>>(&answer.body, what)?;
        let more = page.has_more && !page.data.is_empty();
        let page_jobs: Vec<Job> = page.data.into_iter().map(to_job).collect();
        let reached_older = page_jobs.iter().any(|j| j.created_at < since_unix);
        let next = page
            .last_id
            .or_else(|| page_jobs.last().map(|j| j.id.clone()));
        jobs.extend(page_jobs.into_iter().filter(|j| j.created_at >= since_unix));
        if !more || reached_older || next == after {
            break;
        }
        after = next;
    }
    Ok(jobs)
}
