//! The Redis backend of the rate limiter: many processes, one limit.
//!
//! Every check is one atomic Lua script (`python/fast_litellm/_lua/gcra.lua`, embedded here and
//! read by the Python backend, so native and Python instances can share keys). The script applies
//! the in-process rule of `super::gcra` with the time taken from the server's `TIME`, so the
//! clocks of the instances do not matter, checks and consumes the request and the token limit
//! together, and stores each limit's `tat` under a key that expires when the bucket is full again.
//!
//! Key layout (the Python backend builds the same names):
//!
//! ```text
//! <prefix>:{<key>}:requests     tat of the request limit, "<seconds>:<nanoseconds>"
//! <prefix>:{<key>}:tokens       tat of the token limit
//! ```
//!
//! (no `:` is added after a prefix that is empty or already ends with one).
//!
//! The braces are a Redis Cluster hash tag: both keys of one limiter key live in one slot, so the
//! script (which touches both) runs unchanged on a cluster. A `}` or `%` in the key is written as
//! `%7D` / `%25` so the tag always covers the whole key and two keys never share a name.
//!
//! Connections: one auto-reconnecting multiplexed connection (`ConnectionManager`) per backend,
//! or one cluster connection, both driven by the process-wide runtime (`crate::runtime`). Many
//! concurrent checks share it; the multiplexed connection pipelines them on one socket. Every
//! operation is bounded by the backend's timeout; what happens when Redis fails or is slow (allow,
//! deny, or an in-process limiter) is decided by the caller, which sees a `RedisBackendError`.
//!
//! No PyO3 here: the binding layer is `crate::py::ratelimit_redis`.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use redis::aio::ConnectionManager;
use redis::aio::ConnectionManagerConfig;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{IntoConnectionInfo, RedisError, Script};

use super::gcra::{Decision, Limit, LimitView, Limits, NEVER};
use super::{validate_key, RateLimitError};

/// The check script, shared with the Python backend.
pub const SCRIPT: &str = include_str!("../../python/fast_litellm/_lua/gcra.lua");

/// The longest window (`burst * interval`) the script handles exactly: Lua numbers are doubles,
/// exact for integers below 2^53, and the script adds two such windows (2^52 ns is about 52 days).
pub const MAX_WINDOW_NS: u64 = 1 << 52;

/// The default key prefix (the Python API passes its own, with the same default).
pub const DEFAULT_KEY_PREFIX: &str = "fast_litellm";

const SCHEMES: &str = "redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://";

/// A connection that does not come up within this long is abandoned and tried again by a later
/// call; it is independent of the per-check timeout so that a slow handshake (TLS, a remote
/// cluster) can still complete in the background while checks fail fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum RedisBackendError {
    /// The backend URL cannot be used; the message never repeats a password.
    #[error("invalid Redis backend {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{0}")]
    InvalidConfig(String),
    #[error(transparent)]
    InvalidKey(#[from] RateLimitError),
    /// Redis did not answer within the timeout.
    #[error("Redis did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Redis answered with an error, or the connection failed.
    #[error("Redis error: {0}")]
    Redis(#[from] RedisError),
    /// The script answered something it never answers: another script under our keys' names?
    #[error("unexpected reply from the {0}")]
    BadReply(String),
}

impl RedisBackendError {
    /// Whether this is a failure of the backend (down, slow, broken) rather than a mistake of the
    /// caller: the failure policies apply to these only.
    pub fn is_backend_failure(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Redis(_) | Self::BadReply(_))
    }
}

/// Where the limiter's state lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// One server (or a proxy in front of many): `redis://`, `rediss://` or `unix://`.
    Single(String),
    /// Redis Cluster: the URLs of some of its nodes (the rest are discovered).
    Cluster(Vec<String>),
}

/// `url` with the password of its user info replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    let masked = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        "***".to_owned()
    };
    format!("{}://{masked}{}", &url[..scheme_end], &rest[at..])
}

fn invalid(url: &str, reason: impl Into<String>) -> RedisBackendError {
    RedisBackendError::InvalidUrl {
        url: redact(url),
        reason: reason.into(),
    }
}

/// Checks one server URL the way the client will read it.
fn check_server_url(url: &str) -> Result<(), RedisBackendError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("redis" | "rediss" | "unix" | "redis+unix") => {}
        Some(other) => {
            return Err(invalid(
                url,
                format!("unsupported scheme '{other}://' (expected {SCHEMES})"),
            ))
        }
        None => return Err(invalid(url, format!("not a URL (expected {SCHEMES})"))),
    }
    url.into_connection_info()
        .map(|_| ())
        .map_err(|e| invalid(url, e.to_string()))
}

impl Backend {
    /// Reads a backend given as one string: a server URL, or `redis+cluster://host:port,...`.
    pub fn parse(url: &str) -> Result<Self, RedisBackendError> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        for (cluster_scheme, node_scheme) in [
            ("redis+cluster://", "redis://"),
            ("rediss+cluster://", "rediss://"),
        ] {
            if lower.starts_with(cluster_scheme) {
                let nodes = cluster_node_urls(url, cluster_scheme.len(), node_scheme)?;
                return Self::cluster(&nodes);
            }
        }
        check_server_url(url)?;
        Ok(Self::Single(url.to_owned()))
    }

    /// A cluster given by the URLs of some of its nodes (at least one).
    pub fn cluster<S: AsRef<str>>(urls: &[S]) -> Result<Self, RedisBackendError> {
        if urls.is_empty() {
            return Err(RedisBackendError::InvalidConfig(
                "a Redis Cluster backend needs at least one node URL".into(),
            ));
        }
        let mut nodes = Vec::with_capacity(urls.len());
        for url in urls {
            let url = url.as_ref().trim();
            check_server_url(url)?;
            let info = url
                .into_connection_info()
                .map_err(|e| invalid(url, e.to_string()))?;
            if matches!(info.addr(), redis::ConnectionAddr::Unix(_)) {
                return Err(invalid(
                    url,
                    "Redis Cluster nodes are reached over TCP, not unix://",
                ));
            }
            if info.redis_settings().db() != 0 {
                return Err(invalid(url, "Redis Cluster has only database 0"));
            }
            nodes.push(url.to_owned());
        }
        Ok(Self::Cluster(nodes))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// The URLs with their passwords masked.
    pub fn describe(&self) -> String {
        match self {
            Self::Single(url) => redact(url),
            Self::Cluster(urls) => {
                let urls: Vec<String> = urls.iter().map(|u| redact(u)).collect();
                format!("cluster [{}]", urls.join(", "))
            }
        }
    }
}

/// `redis+cluster://[user:pass@]host:port,host:port[/db][?query]` as one URL per node.
fn cluster_node_urls(
    url: &str,
    scheme_len: usize,
    node_scheme: &str,
) -> Result<Vec<String>, RedisBackendError> {
    let rest = &url[scheme_len..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|host| format!("{node_scheme}{userinfo}{host}{tail}"))
        .collect();
    if nodes.is_empty() {
        return Err(invalid(url, "no host:port given for the cluster"));
    }
    Ok(nodes)
}

/// The hash-tag body for `key`: the key itself, with `%` and `}` escaped when present.
pub fn key_tag(key: &str) -> Cow<'_, str> {
    if !key.contains(['%', '}']) {
        return Cow::Borrowed(key);
    }
    let mut out = String::with_capacity(key.len() + 8);
    for c in key.chars() {
        match c {
            '%' => out.push_str("%25"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The two Redis keys of one limiter key: `(requests, tokens)`.
pub fn redis_keys(prefix: &str, key: &str) -> (String, String) {
    let tag = key_tag(key);
    let separator = if prefix.is_empty() || prefix.ends_with(':') {
        ""
    } else {
        ":"
    };
    (
        format!("{prefix}{separator}{{{tag}}}:requests"),
        format!("{prefix}{separator}{{{tag}}}:tokens"),
    )
}

/// Checks a key prefix: braces in it would move the hash tag.
pub fn validate_prefix(prefix: &str) -> Result<(), RedisBackendError> {
    if prefix.contains(['{', '}']) {
        return Err(RedisBackendError::InvalidConfig(format!(
            "key_prefix {prefix:?} must not contain '{{' or '}}' (they would move the Redis \
             Cluster hash tag)"
        )));
    }
    Ok(())
}

fn check_window(limit: Option<Limit>, what: &str) -> Result<(), RedisBackendError> {
    match limit {
        Some(l) if l.capacity_ns() >= MAX_WINDOW_NS => {
            Err(RedisBackendError::InvalidConfig(format!(
                "the {what} limit's window (burst x interval = {} ns) is too long for the Redis \
                 backend, which handles windows shorter than {MAX_WINDOW_NS} ns (about 52 days)",
                l.capacity_ns()
            )))
        }
        _ => Ok(()),
    }
}

type ClusterFuture = Shared<BoxFuture<'static, Result<ClusterConnection, Arc<RedisError>>>>;

/// A cluster connection that is established in the background, on first use, and again after a
/// failed attempt. The attempt runs as its own task, so a check that times out while waiting for
/// it does not cancel it.
struct LazyCluster {
    client: ClusterClient,
    current: Mutex<Option<ClusterFuture>>,
}

impl LazyCluster {
    fn start(&self) -> ClusterFuture {
        let client = self.client.clone();
        let future = async move { client.get_async_connection().await.map_err(Arc::new) }
            .boxed()
            .shared();
        crate::runtime::runtime().spawn(future.clone().map(drop));
        future
    }

    async fn connection(&self) -> Result<ClusterConnection, RedisError> {
        let future = {
            let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            match current.as_ref() {
                // A finished failed attempt is replaced by a fresh one.
                Some(f) if !matches!(f.peek(), Some(Err(_))) => f.clone(),
                _ => {
                    let fresh = self.start();
                    *current = Some(fresh.clone());
                    fresh
                }
            }
        };
        future.await.map_err(|e| clone_error(&e))
    }
}

type SharedConnections = Mutex<std::collections::HashMap<Backend, std::sync::Weak<Connection>>>;

/// The connections of the current runtime by backend, shared by every limiter and budget
/// tracker of the process: a multiplexed connection pipelines the commands of all of them, so a
/// limiter per limit pair (the proxy hook makes one per distinct rpm/tpm) no longer opens a
/// connection of its own (500 keys with different limits held 500 connections to one Redis).
/// Forgotten in a child after `fork()` (`after_fork_in_child`): the connections belong to the
/// parent's runtime, and a thread that did not come along may hold the lock.
static SHARED: crate::published::Published<SharedConnections> = crate::published::Published::new();

/// The process's connection to `backend` on the current runtime, made (lazily) if none is
/// alive.
fn shared_connection(backend: &Backend) -> Result<Arc<Connection>, RedisBackendError> {
    let shared = SHARED.get_or_build(SharedConnections::default, drop);
    let mut connections = shared.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(connection) = connections.get(backend).and_then(std::sync::Weak::upgrade) {
        return Ok(connection);
    }
    connections.retain(|_, connection| connection.strong_count() > 0);
    // Lazy: nothing is sent while the lock is held.
    let connection = Arc::new(connect(backend)?);
    connections.insert(backend.clone(), Arc::downgrade(&connection));
    Ok(connection)
}

/// Forgets the parent's connections in a child process made by `fork()` (see `SHARED`).
pub fn after_fork_in_child() {
    SHARED.forget();
}

/// A lazy connection for `backend` on the current runtime (nothing is sent until first use).
fn connect(backend: &Backend) -> Result<Connection, RedisBackendError> {
    // The connection types find the runtime through the thread's context.
    let _context = crate::runtime::runtime().enter();
    let connection = match backend {
        Backend::Single(url) => {
            let client = redis::Client::open(connection_info(url)?)
                .map_err(|e| invalid(url, e.to_string()))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                // Fail a check at once when a reconnection attempt fails; the next check
                // starts another one. The caller's policy covers the checks in between.
                .set_number_of_retries(0)
                .set_response_timeout(None);
            let manager = ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| invalid(url, e.to_string()))?;
            Connection::Single(manager)
        }
        Backend::Cluster(urls) => {
            let nodes = urls
                .iter()
                .map(|url| connection_info(url))
                .collect::<Result<Vec<_>, _>>()?;
            let client = ClusterClient::builder(nodes)
                .connection_timeout(CONNECT_TIMEOUT)
                .retries(1)
                .build()
                .map_err(|e| {
                    RedisBackendError::InvalidConfig(format!(
                        "invalid Redis Cluster backend {}: {e}",
                        backend.describe()
                    ))
                })?;
            Connection::Cluster(Box::new(LazyCluster {
                client,
                current: Mutex::new(None),
            }))
        }
    };
    Ok(connection)
}

/// The connection settings of `url`. A password without a user name (`redis://:pw@host`) logs
/// in as the `default` user (`AUTH default pw`), as redis-py does in effect: a server without a
/// password then accepts it instead of refusing `AUTH pw`, and a server with `requirepass`
/// checks it as before, so both paths connect to the same servers (Redis >= 6).
fn connection_info(url: &str) -> Result<redis::ConnectionInfo, RedisBackendError> {
    let info = url
        .into_connection_info()
        .map_err(|e| invalid(url, e.to_string()))?;
    let settings = info.redis_settings();
    if settings.password().is_some() && settings.username().is_none() {
        let settings = settings.clone().set_username("default");
        return Ok(info.set_redis_settings(settings));
    }
    Ok(info)
}

fn clone_error(error: &RedisError) -> RedisError {
    // `RedisError` is not `Clone`; a connection error is reported to every waiter by kind and
    // text.
    RedisError::from((
        redis::ErrorKind::Io,
        "cannot connect to Redis Cluster",
        error.to_string(),
    ))
}

enum Connection {
    Single(ConnectionManager),
    Cluster(Box<LazyCluster>),
}

/// One auto-reconnecting connection (or cluster connection) to a backend, every operation
/// bounded by one timeout, remade after `fork()`. The rate limiter and the budget tracker
/// (`crate::budget::redis`) each hold one.
pub struct RedisConnection {
    backend: Backend,
    timeout: Duration,
    /// The connection and the runtime generation it was made on (see `connection()`).
    connection: ArcSwap<(u64, Arc<Connection>)>,
}

impl RedisConnection {
    /// Prepares the connection; nothing is sent until first use (it can be made while Redis is
    /// down).
    pub fn new(backend: Backend, timeout: Duration) -> Result<Self, RedisBackendError> {
        if timeout.is_zero() {
            return Err(RedisBackendError::InvalidConfig(
                "timeout must be greater than 0".into(),
            ));
        }
        let connection = shared_connection(&backend)?;
        Ok(Self {
            backend,
            timeout,
            connection: ArcSwap::from_pointee((crate::runtime::generation(), connection)),
        })
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connection to use now. After a `fork()` the inherited one belongs to a runtime that
    /// no longer runs (its driver task stayed in the parent), so the child makes a new one on
    /// the current runtime; the old one is leaked, since dropping it could wait on that runtime.
    /// No lock: a runtime thread may be here when the process forks, and a lock it held would
    /// stay held in the child (`arc-swap` loads are lock-free).
    fn connection(&self) -> Result<Arc<Connection>, RedisBackendError> {
        let generation = crate::runtime::generation();
        let current = self.connection.load_full();
        if current.0 == generation {
            return Ok(Arc::clone(&current.1));
        }
        let fresh = Arc::new((generation, shared_connection(&self.backend)?));
        let previous = self
            .connection
            .compare_and_swap(&current, Arc::clone(&fresh));
        if !Arc::ptr_eq(&previous, &current) {
            // Another thread of this process made the new connection first; ours never
            // connected (connections are made on first use).
            return Ok(Arc::clone(&previous.1));
        }
        drop(previous);
        std::mem::forget(current);
        Ok(Arc::clone(&fresh.1))
    }

    /// One script call (EVALSHA; on NOSCRIPT, from a restarted or flushed server, the script is
    /// loaded and the call repeated), bounded by the timeout.
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisBackendError> {
        let connection = self.connection()?;
        self.bounded(async {
            match &*connection {
                Connection::Single(manager) => {
                    on_single(manager, |mut connection| async move {
                        invocation.invoke_async(&mut connection).await
                    })
                    .await
                }
                Connection::Cluster(cluster) => {
                    let mut connection = cluster.connection().await?;
                    invocation.invoke_async(&mut connection).await
                }
            }
        })
        .await
    }

    /// One command on the current connection, bounded by the timeout.
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
    ) -> Result<T, RedisBackendError> {
        let connection = self.connection()?;
        self.bounded(async {
            match &*connection {
                Connection::Single(manager) => {
                    on_single(manager, |mut connection| async move {
                        command.query_async(&mut connection).await
                    })
                    .await
                }
                Connection::Cluster(cluster) => {
                    let mut connection = cluster.connection().await?;
                    command.query_async(&mut connection).await
                }
            }
        })
        .await
    }

    /// One `PING` round trip (to a node of the cluster), for health checks.
    pub async fn ping(&self) -> Result<(), RedisBackendError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }

    async fn bounded<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisBackendError> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(result) => result.map_err(RedisBackendError::from),
            Err(_) => Err(RedisBackendError::Timeout(self.timeout)),
        }
    }
}

/// `call` on the manager's connection, and once more on a new one when that connection turned
/// out to be gone: closed by the server or a proxy while idle (Redis's `timeout`, a load
/// balancer's idle limit), by a restart or a failover, or the failed reconnection of an outage
/// that has since ended. The manager reconnects on such an error, but hands it to the call that
/// found it: a healthy Redis was taken for an outage, and every check of the process went to
/// the failure policy for a whole retry interval. redis-py retries these too. (A script the
/// server ran just before the connection broke runs twice: a check counted twice, rarely.)
async fn on_single<T, F, Fut>(manager: &ConnectionManager, call: F) -> Result<T, RedisError>
where
    F: Fn(ConnectionManager) -> Fut,
    Fut: std::future::Future<Output = Result<T, RedisError>>,
{
    match call(manager.clone()).await {
        Err(err) if err.is_connection_dropped() || err.is_unrecoverable_error() => {
            call(manager.clone()).await
        }
        other => other,
    }
}

/// The Redis side of one limiter: its limits, key prefix and connection.
pub struct RedisLimiter {
    limits: Limits,
    prefix: String,
    script: Script,
    connection: RedisConnection,
    /// ARGV of the script for the two limits (interval 0 = no such limit).
    request_args: (u64, u64),
    token_args: (u64, u64),
}

impl RedisLimiter {
    /// Prepares the backend; connects on first use (a limiter can be made while Redis is down).
    pub fn new(
        backend: Backend,
        limits: Limits,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, RedisBackendError> {
        validate_prefix(prefix)?;
        check_window(limits.requests, "request")?;
        check_window(limits.tokens, "token")?;
        let connection = RedisConnection::new(backend, timeout)?;
        let args = |limit: Option<Limit>| limit.map_or((0, 0), |l| (l.interval_ns(), l.burst()));
        Ok(Self {
            request_args: args(limits.requests),
            token_args: args(limits.tokens),
            limits,
            prefix: prefix.to_owned(),
            script: Script::new(SCRIPT),
            connection,
        })
    }

    pub fn backend(&self) -> &Backend {
        self.connection.backend()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn timeout(&self) -> Duration {
        self.connection.timeout()
    }

    /// Decides `cost` requests and `tokens` tokens for `key` and, when `consume`, consumes them
    /// if allowed: one script call, atomic on the server.
    pub async fn check(
        &self,
        key: &str,
        cost: u64,
        tokens: u64,
        consume: bool,
    ) -> Result<Decision, RedisBackendError> {
        validate_key(key)?;
        let (request_key, token_key) = redis_keys(&self.prefix, key);
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(request_key)
            .key(token_key)
            .arg(if consume { 1 } else { 0 })
            .arg(self.request_args.0)
            .arg(self.request_args.1)
            .arg(cost)
            .arg(self.token_args.0)
            .arg(self.token_args.1)
            .arg(tokens);
        let reply: Vec<i64> = self.connection.invoke(&invocation).await?;
        self.decision(&reply)
    }

    /// Forgets `key` on the server (its buckets are full again); whether it held any state.
    pub async fn reset(&self, key: &str) -> Result<bool, RedisBackendError> {
        validate_key(key)?;
        let (request_key, token_key) = redis_keys(&self.prefix, key);
        let mut command = redis::cmd("DEL");
        command.arg(request_key).arg(token_key);
        let deleted: i64 = self.connection.query(&command).await?;
        Ok(deleted > 0)
    }

    /// One `PING` round trip (to a node of the cluster), for health checks.
    pub async fn ping(&self) -> Result<(), RedisBackendError> {
        self.connection.ping().await
    }

    fn decision(&self, reply: &[i64]) -> Result<Decision, RedisBackendError> {
        let bad = || RedisBackendError::BadReply(format!("rate-limit script: {reply:?}"));
        let &[allowed, retry_after, reset_after, request_remaining, token_remaining] = reply else {
            return Err(bad());
        };
        if !(0..=1).contains(&allowed) || retry_after < -1 || reset_after < 0 {
            return Err(bad());
        }
        let view = |limit: Option<Limit>, remaining: i64| {
            limit.map(|l| LimitView {
                remaining: remaining.max(0) as u64,
                limit: l.burst(),
            })
        };
        Ok(Decision {
            allowed: allowed == 1,
            retry_after_ns: if retry_after < 0 {
                NEVER
            } else {
                retry_after as u64
            },
            reset_after_ns: reset_after as u64,
            requests: view(self.limits.requests, request_remaining),
            tokens: view(self.limits.tokens, token_remaining),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_urls() {
        for url in [
            "redis://127.0.0.1:6379/0",
            "redis://localhost",
            "redis://:secret@host:1234/2",
            "rediss://host:6380",
            "unix:///tmp/redis.sock",
        ] {
            assert_eq!(
                Backend::parse(url).unwrap(),
                Backend::Single(url.to_owned())
            );
        }
    }

    #[test]
    fn parses_cluster_urls() {
        let backend = Backend::parse("redis+cluster://u:p@h1:7000,h2:7001").unwrap();
        assert_eq!(
            backend,
            Backend::Cluster(vec![
                "redis://u:p@h1:7000".into(),
                "redis://u:p@h2:7001".into()
            ])
        );
        let backend = Backend::parse("rediss+cluster://h1:7000").unwrap();
        assert_eq!(backend, Backend::Cluster(vec!["rediss://h1:7000".into()]));
        assert!(Backend::cluster(&["redis://h:1/3"]).is_err());
        assert!(Backend::cluster(&["unix:///tmp/x.sock"]).is_err());
        assert!(Backend::cluster::<&str>(&[]).is_err());
        assert!(Backend::parse("redis+cluster://").is_err());
    }

    #[test]
    fn rejects_bad_urls_without_leaking_passwords() {
        for url in [
            "http://h:1",
            "localhost:6379",
            "redis://user:hunter2@:1/x",
            "",
        ] {
            let err = Backend::parse(url).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("invalid Redis backend"), "{err}");
        }
        assert_eq!(redact("redis://u:pw@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact("redis://pw@h"), "redis://***@h");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn keys_share_one_hash_tag() {
        assert_eq!(
            redis_keys("p:", "user-1"),
            ("p:{user-1}:requests".into(), "p:{user-1}:tokens".into())
        );
        assert_eq!(redis_keys("p", "user-1").0, "p:{user-1}:requests");
        assert_eq!(redis_keys("", "a}b%c").0, "{a%7Db%25c}:requests");
        assert!(validate_prefix("a{b").is_err());
    }

    #[test]
    fn rejects_windows_the_script_cannot_hold() {
        let long = Limit::new(MAX_WINDOW_NS, 1).unwrap();
        let limits = Limits::new(Some(long), None).unwrap();
        let backend = Backend::parse("redis://127.0.0.1:1").unwrap();
        let err = RedisLimiter::new(backend, limits, "p:", Duration::from_millis(50));
        assert!(matches!(err, Err(RedisBackendError::InvalidConfig(_))));
    }

    #[test]
    fn a_down_server_fails_within_the_timeout() {
        // Port 1 on loopback: nothing listens there, the connection is refused at once.
        let limits = Limits::new(Some(Limit::new(1_000_000, 10).unwrap()), None).unwrap();
        let backend = Backend::parse("redis://127.0.0.1:1").unwrap();
        let limiter = RedisLimiter::new(backend, limits, "p:", Duration::from_millis(200)).unwrap();
        let started = std::time::Instant::now();
        let result = crate::runtime::block_on(limiter.check("k", 1, 0, true));
        let err = result.unwrap_err();
        assert!(err.is_backend_failure(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
