//! One account, many machines: the service's limits shared through Redis (or Valkey).
//!
//! The limits belong to the account, not to a process: every `shotlist render` that uses
//! the same account and the same coordinator (`--coordinate redis://…`) shares
//! - its **job slots**: a slot is a lease in a sorted set (`…:slots`, scored by its expiry
//!   on Redis's clock), taken by an atomic script only while fewer than N live leases
//!   exist, renewed by its holder while the job runs, released when the job ends; a
//!   process that dies loses its leases when they expire;
//! - its **request pacing**: a sliding log of request times (`…:requests`), into which an
//!   atomic script adds a request only while fewer than N fall within the window.
//!
//! The keys are `shotlist:1:<account>:…`, where the account is a keyed hash of the
//! endpoint host and the credential (never the credential itself, nor anything it can be
//! recovered from).
//!
//! A Redis that comes back empty (first use, or a restart that lost its data) knows no
//! lease and no request: the scripts then hold new jobs for one lease and new requests for
//! one window (`…:epoch` says when the state began), by which time every live holder has
//! renewed its lease and every request the lost log held has left the window. A Redis
//! that keeps its data (`appendonly yes`) restarts with it, and nothing waits.
//!
//! When Redis goes away during a run, [`Coordinator::gone`] says so: the engine starts no
//! new job, the running ones are followed to their end on the local limits, and the run
//! ends with the reason.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The environment variable that may hold the coordinator's URL (with its password).
pub const ENV_COORDINATOR: &str = "SHOTLIST_COORDINATOR";

/// How long a Redis command may take before Redis counts as gone.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// Redis's clock, and when the state began: the epoch is reset when the key is missing
/// (first use, an emptied Redis) and when the server is another one (a restart, even from
/// an old snapshot, or a failover: its run id differs).
const PRELUDE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
local epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
if epoch == 0 or redis.call('GET', KEYS[3]) ~= run then
  epoch = now
  redis.call('SET', KEYS[2], now)
  redis.call('SET', KEYS[3], run)
end
"#;

/// KEYS: slots, epoch, server, waiting, tickets. ARGV: token, max, lease, grace, poll.
/// Waiters are served in the order they first asked (a ticket each), so a process that
/// releases and asks again at once never starves the others; a waiter that stops asking
/// leaves the queue.
const ACQUIRE_SLOT: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
local grace = epoch + tonumber(ARGV[4]) - now
local ticket = redis.call('HGET', KEYS[4], ARGV[1])
if not ticket then
  ticket = redis.call('INCR', KEYS[5])
  redis.call('HSET', KEYS[4], ARGV[1], ticket)
end
redis.call('HSET', KEYS[4], ARGV[1] .. '@', now)
if grace > 0 then
  return {0, held, grace}
end
local free = tonumber(ARGV[2]) - held
if free <= 0 then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, held, tonumber(first[2]) - now}
end
-- Ahead of us: waiters with an older ticket that asked within the last few polls.
local ahead = 0
local all = redis.call('HGETALL', KEYS[4])
local stale = now - 4 * tonumber(ARGV[5]) - 1000
for i = 1, #all, 2 do
  local name = all[i]
  if string.sub(name, -1) ~= '@' and name ~= ARGV[1] then
    local seen = tonumber(redis.call('HGET', KEYS[4], name .. '@') or '0')
    if seen < stale then
      redis.call('HDEL', KEYS[4], name, name .. '@')
    elseif tonumber(all[i + 1]) < tonumber(ticket) then
      ahead = ahead + 1
    end
  end
end
if ahead >= free then
  return {0, held, tonumber(ARGV[5])}
end
redis.call('HDEL', KEYS[4], ARGV[1], ARGV[1] .. '@')
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return {1, held + 1, 0}
"#;

/// KEYS: slots. ARGV: token, lease. Also puts back a lease that had expired (a job
/// still running at the service, after a pause or a Redis restart): 1 when it did.
const RENEW_SLOT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
"#;

const HELD: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"#;

/// KEYS: requests, epoch, server. ARGV: max, window, member.
const PACE: &str = r#"
local window = tonumber(ARGV[2])
local grace = epoch + window - now
if grace > 0 then
  return grace
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window * 2)
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) + window - now)
"#;

/// The limits one account shares.
#[derive(Clone, Debug)]
pub struct Limits {
    pub jobs: usize,
    pub requests: u32,
    /// The request window (a minute, divided by the clock speed-up).
    pub window: Duration,
    /// How long a slot stays held without renewal.
    pub lease: Duration,
    /// How often a process waiting for a slot asks again.
    pub poll: Duration,
}

impl Limits {
    /// N jobs and R requests a minute, on a clock `time_scale` times faster than real
    /// time; leases of 30 s (scaled, at least 1 s: a busy machine must not miss a
    /// renewal), renewed every third of that; a waiter asks every second (scaled, at
    /// least 5 ms).
    pub fn new(jobs: usize, requests_per_minute: u32, time_scale: f64) -> Limits {
        let scale = if time_scale.is_finite() && time_scale > 0.0 {
            time_scale
        } else {
            1.0
        };
        Limits {
            jobs: jobs.max(1),
            requests: requests_per_minute.max(1),
            window: Duration::from_secs_f64(60.0 / scale),
            lease: Duration::from_secs_f64(30.0 / scale).max(Duration::from_secs(1)),
            poll: Duration::from_secs_f64(1.0 / scale)
                .clamp(Duration::from_millis(5), Duration::from_secs(1)),
        }
    }
}

/// The coordinator of a run.
pub struct Coordinator {
    /// Reconnects by itself: a lease is renewed across a Redis restart.
    conn: redis::aio::ConnectionManager,
    /// `redis://host:port/db`, with no password.
    url: String,
    prefix: String,
    /// Unique to this process: its leases and requests are named after it.
    me: String,
    seq: AtomicU64,
    limits: Limits,
    gone: Mutex<Option<String>>,
    acquire: redis::Script,
    renew: redis::Script,
    held: redis::Script,
    pace: redis::Script,
    /// Releases of leases under way (a lease is dropped where nothing can wait).
    releasing: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Requests paced through Redis, and the round trips that took.
    pub paced: AtomicU64,
    pub round_trips: AtomicU64,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The coordinator's URL without its password, for messages.
pub fn display_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(an invalid URL)".into(),
    }
}

/// The account's name in Redis: a keyed hash of the endpoint host and the credential
/// (`credential` is `None` where the limits are the resource's whatever the credential,
/// as with Microsoft Entra ID tokens on Azure).
pub fn account_key(host: &str, credential: Option<&str>) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(credential.unwrap_or("").as_bytes())
        .expect("HMAC takes a key of any size");
    mac.update(b"shotlist coordination 1\n");
    mac.update(host.to_ascii_lowercase().as_bytes());
    crate::cache_key::hex(&mac.finalize().into_bytes()[..12])
}

impl Coordinator {
    /// Connects and checks Redis answers. `Err`: a message for the user (no password).
    pub async fn connect(
        url: &str,
        account: &str,
        limits: Limits,
    ) -> Result<Arc<Coordinator>, String> {
        let shown = display_url(url);
        let parsed = url::Url::parse(url).map_err(|e| format!("`{shown}` is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(format!(
                "`{shown}` is not a Redis URL: write redis://HOST:PORT[/DB] or rediss://… for TLS"
            ));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = redis::Client::open(url)
            .map_err(|e| format!("{shown}: {}", scrub(&e.to_string(), url)))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2);
        let conn = tokio::time::timeout(
            COMMAND_TIMEOUT * 3,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| {
            format!(
                "{shown} did not answer within {}s",
                COMMAND_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("{shown}: {}", scrub(&e.to_string(), url)))?;
        let coordinator = Coordinator {
            conn,
            url: shown.clone(),
            prefix: format!("shotlist:1:{account}"),
            me: format!(
                "{}-{}-{:08x}",
                std::process::id(),
                jiff::Timestamp::now().as_millisecond(),
                fastrand::u32(..)
            ),
            seq: AtomicU64::new(0),
            limits,
            gone: Mutex::new(None),
            acquire: redis::Script::new(&format!("{PRELUDE}{ACQUIRE_SLOT}")),
            renew: redis::Script::new(RENEW_SLOT),
            held: redis::Script::new(HELD),
            pace: redis::Script::new(&format!("{PRELUDE}{PACE}")),
            releasing: Mutex::default(),
            paced: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
        };
        let mut conn = coordinator.conn.clone();
        let pong: redis::RedisResult<String> =
            tokio::time::timeout(COMMAND_TIMEOUT, redis::cmd("PING").query_async(&mut conn))
                .await
                .map_err(|_| {
                    format!(
                        "{shown} did not answer within {}s",
                        COMMAND_TIMEOUT.as_secs()
                    )
                })?;
        pong.map_err(|e| format!("{shown}: {}", scrub(&e.to_string(), url)))?;
        Ok(Arc::new(coordinator))
    }

    /// The URL, without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Why Redis went away during the run, once it has.
    pub fn gone(&self) -> Option<String> {
        self.gone.lock().expect("gone lock").clone()
    }

    fn went_away(&self, why: String) -> String {
        let mut gone = self.gone.lock().expect("gone lock");
        gone.get_or_insert(why).clone()
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// Runs a script; a failure that outlasts three tries (the connection reconnects
    /// between them) marks Redis gone for the rest of the run.
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, String> {
        if let Some(why) = self.gone() {
            return Err(why);
        }
        let mut last = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            match self.once(&invocation).await {
                Ok(v) => return Ok(v),
                Err(e) => last = e,
            }
        }
        Err(self.went_away(last))
    }

    /// One try of a script, within the command timeout; never marks Redis gone.
    async fn once<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, String> {
        let mut conn = self.conn.clone();
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(COMMAND_TIMEOUT, invocation.invoke_async(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("{}: {e}", self.url)),
            Err(_) => Err(format!(
                "{} did not answer within {}s",
                self.url,
                COMMAND_TIMEOUT.as_secs()
            )),
        }
    }

    /// Waits for one of the account's job slots, as a lease renewed until dropped.
    /// `Err`: Redis went away (the reason).
    pub async fn acquire_slot(self: &Arc<Self>) -> Result<Lease, String> {
        let token = format!("{}-{}", self.me, self.seq.fetch_add(1, Ordering::Relaxed));
        loop {
            let mut invocation = self.acquire.prepare_invoke();
            invocation
                .key(self.key("slots"))
                .key(self.key("epoch"))
                .key(self.key("server"))
                .key(self.key("waiting"))
                .key(self.key("tickets"))
                .arg(&token)
                .arg(self.limits.jobs)
                .arg(self.limits.lease.as_millis() as u64)
                .arg(self.limits.lease.as_millis() as u64)
                .arg(self.limits.poll.as_millis() as u64);
            let (got, _held, wait): (i64, i64, i64) = self.run(invocation).await?;
            if got == 1 {
                return Ok(Lease::start(Arc::clone(self), token));
            }
            let wait = Duration::from_millis(wait.max(1) as u64).min(self.limits.poll);
            tokio::time::sleep(wait).await;
        }
    }

    /// Slots the account's processes hold now, other than `mine`.
    pub async fn held_by_others(&self, mine: usize) -> Result<usize, String> {
        let mut invocation = self.held.prepare_invoke();
        invocation.key(self.key("slots"));
        let held: i64 = self.run(invocation).await?;
        Ok((held.max(0) as usize).saturating_sub(mine))
    }

    /// Waits until one more request of the account may start, and records it.
    pub async fn pace(&self) -> Result<(), String> {
        let member = format!("{}-{}", self.me, self.seq.fetch_add(1, Ordering::Relaxed));
        loop {
            let mut invocation = self.pace.prepare_invoke();
            invocation
                .key(self.key("requests"))
                .key(self.key("epoch"))
                .key(self.key("server"))
                .arg(self.limits.requests)
                .arg(self.limits.window.as_millis() as u64)
                .arg(&member);
            let wait: i64 = self.run(invocation).await?;
            if wait <= 0 {
                self.paced.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }

    /// Renews (or puts back) a lease. Tried whatever [`Coordinator::gone`] says: a job
    /// still running at the service keeps its slot counted across a Redis restart.
    async fn renew(&self, token: &str) -> Result<bool, String> {
        let mut invocation = self.renew.prepare_invoke();
        invocation
            .key(self.key("slots"))
            .arg(token)
            .arg(self.limits.lease.as_millis() as u64);
        let added: i64 = self.once(&invocation).await?;
        Ok(added == 1)
    }

    /// A lease for a job already running at the service (one a render resumes): taken at
    /// once, even past N, since the job holds the service's slot whatever Redis says;
    /// `None` while Redis does not answer (the job is followed all the same).
    pub async fn hold_running(self: &Arc<Self>) -> Option<Lease> {
        let token = format!("{}-{}", self.me, self.seq.fetch_add(1, Ordering::Relaxed));
        self.renew(&token).await.ok()?;
        Some(Lease::start(Arc::clone(self), token))
    }

    /// Waits for every lease released so far to be given back, so that a process that
    /// ends leaves no slot held until its lease expires.
    pub async fn settle(&self) {
        let pending = std::mem::take(&mut *self.releasing.lock().expect("releasing lock"));
        for task in pending {
            let _ = task.await;
        }
    }

    async fn release(&self, token: &str) {
        let mut conn = self.conn.clone();
        let _: Result<redis::RedisResult<i64>, _> = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("ZREM")
                .arg(self.key("slots"))
                .arg(token)
                .query_async(&mut conn),
        )
        .await;
    }
}

/// A held slot of the account: renewed in the background, released when dropped.
pub struct Lease {
    coordinator: Arc<Coordinator>,
    token: String,
    renewing: tokio::task::JoinHandle<()>,
}

impl Lease {
    fn start(coordinator: Arc<Coordinator>, token: String) -> Lease {
        let renewing = {
            let (coordinator, token) = (Arc::clone(&coordinator), token.clone());
            tokio::spawn(async move {
                let every = coordinator.limits.lease / 3;
                loop {
                    tokio::time::sleep(every).await;
                    // A lease that had expired (the process was paused longer than a
                    // lease, or Redis restarted) is put back: the job is still running at
                    // the service. While Redis does not answer, the job goes on and the
                    // next renewal tries again.
                    let _ = coordinator.renew(&token).await;
                }
            })
        };
        Lease {
            coordinator,
            token,
            renewing,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewing.abort();
        let (coordinator, token) = (
            Arc::clone(&self.coordinator),
            std::mem::take(&mut self.token),
        );
        let renewing = std::mem::replace(&mut self.renewing, tokio::spawn(async {}));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let releasing = Arc::clone(&coordinator);
            // After the renewal task has stopped: a renewal in flight must not put the
            // lease back after it was released.
            let task = runtime.spawn(async move {
                let _ = renewing.await;
                coordinator.release(&token).await
            });
            releasing
                .releasing
                .lock()
                .expect("releasing lock")
                .push(task);
        }
    }
}

/// A Redis error made safe to print: the URL's password never appears.
fn scrub(message: &str, url: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        Some(password) if !password.is_empty() => message.replace(&password, "***"),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_a_keyed_hash_never_the_credential() {
        let a = account_key("myres.openai.azure.com", Some("key-one-0123456789"));
        assert_eq!(a.len(), 24);
        assert!(!a.contains("key-one"));
        assert_eq!(
            a,
            account_key("MYRES.openai.azure.com", Some("key-one-0123456789"))
        );
        assert_ne!(
            a,
            account_key("myres.openai.azure.com", Some("key-two-0123456789"))
        );
        assert_ne!(
            a,
            account_key("other.openai.azure.com", Some("key-one-0123456789"))
        );
    }

    #[test]
    fn passwords_never_shown() {
        assert_eq!(
            display_url("redis://:hunter2pw@10.0.0.5:6379/2"),
            "redis://:***@10.0.0.5:6379/2"
        );
        assert!(
            !scrub("auth failed for hunter2pw", "redis://:hunter2pw@h:1").contains("hunter2pw")
        );
    }
}
