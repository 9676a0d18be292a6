//! The Redis backend of budgets: many processes, one spent total per key and window.
//!
//! Every operation is one atomic Lua script (`python/fast_litellm/_lua/budget.lua`, embedded
//! here and read by the Python backend, so native and Python instances share keys) on the rate
//! limiter's connection (`crate::ratelimit::redis::RedisConnection`: one auto-reconnecting
//! multiplexed connection or one cluster connection, every call bounded by the timeout, remade
//! after `fork()`). What happens when Redis fails or is slow is decided by the caller, which
//! sees a `RedisBackendError`, exactly as for the rate limiter.
//!
//! Key layout (the Python backend builds the same name): one hash per key,
//!
//! ```text
//! <prefix>:budget:{<key>}     fields "daily", "monthly", "period:<us>": "<id>:<spent>:<requests>"
//! ```
//!
//! with the rate limiter's hash-tag escaping (`key_tag`), expiring when its last window ends.
//! The script keeps time in microseconds (Lua numbers are exact below 2^53); the in-process
//! store keeps nanoseconds.

use std::time::Duration;

use redis::Script;

use super::{validate_key, verdict, Verdict, Window, WindowKind, WindowView, Windows};
use crate::ratelimit::redis::{
    key_tag, validate_prefix, Backend, RedisBackendError, RedisConnection,
};

/// The budget script, shared with the Python backend.
pub const SCRIPT: &str = include_str!("../../python/fast_litellm/_lua/budget.lua");

/// The Redis key of one budget key.
pub fn redis_key(prefix: &str, key: &str) -> String {
    let separator = if prefix.is_empty() || prefix.ends_with(':') {
        ""
    } else {
        ":"
    };
    format!("{prefix}{separator}budget:{{{}}}", key_tag(key))
}

/// The script's name for a window (`period:<microseconds>` for a period).
fn window_arg(window: &Window) -> String {
    match window.kind {
        WindowKind::Period { period_ns } => format!("period:{}", period_ns.div_ceil(1000).max(1)),
        kind => kind.name().to_owned(),
    }
}

/// The Redis side of one tracker.
pub struct RedisBudget {
    windows: Windows,
    window_args: Vec<String>,
    prefix: String,
    script: Script,
    connection: RedisConnection,
}

impl RedisBudget {
    /// Prepares the backend; connects on first use (a tracker can be made while Redis is down).
    pub fn new(
        backend: Backend,
        windows: Windows,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, RedisBackendError> {
        validate_prefix(prefix)?;
        Ok(Self {
            window_args: windows.as_slice().iter().map(window_arg).collect(),
            windows,
            prefix: prefix.to_owned(),
            script: Script::new(SCRIPT),
            connection: RedisConnection::new(backend, timeout)?,
        })
    }

    pub fn connection(&self) -> &RedisConnection {
        &self.connection
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs the script: `record` adds `amount` nanodollars, otherwise it reads. `now_ns` is the
    /// caller's clock, or `None` for the server's. Returns the time the script used (Unix ns)
    /// and the view of every window.
    async fn run(
        &self,
        key: &str,
        record: bool,
        amount: u64,
        now_ns: Option<u64>,
    ) -> Result<(u64, Vec<WindowView>), RedisBackendError> {
        validate_key(key)?;
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(redis_key(&self.prefix, key))
            .arg(if record { "record" } else { "read" })
            .arg(now_ns.map_or_else(String::new, |ns| (ns / 1000).to_string()))
            .arg(amount);
        for arg in &self.window_args {
            invocation.arg(arg);
        }
        let reply: Vec<i64> = self.connection.invoke(&invocation).await?;
        self.views(&reply)
    }

    fn views(&self, reply: &[i64]) -> Result<(u64, Vec<WindowView>), RedisBackendError> {
        let bad = || RedisBackendError::BadReply(format!("budget script: {reply:?}"));
        let windows = self.windows.as_slice();
        if reply.len() != 1 + 3 * windows.len() || reply.iter().any(|&v| v < -1) {
            return Err(bad());
        }
        let now_us = u64::try_from(reply[0]).map_err(|_| bad())?;
        let mut views = Vec::with_capacity(windows.len());
        for (window, values) in windows.iter().zip(reply[1..].chunks_exact(3)) {
            let (spent, requests) = (values[0], values[1]);
            if spent < 0 || requests < 0 {
                return Err(bad());
            }
            views.push(WindowView {
                window: *window,
                spent: spent as u64,
                requests: requests as u64,
                // -1: a period not started. Microseconds past what nanoseconds hold are junk.
                reset_at_ns: match values[2] {
                    -1 => None,
                    us => Some((us as u64).checked_mul(1000).ok_or_else(bad)?),
                },
            });
        }
        Ok((now_us.checked_mul(1000).ok_or_else(bad)?, views))
    }

    /// Adds `amount` nanodollars and one request to every window of `key`.
    pub async fn record(
        &self,
        key: &str,
        amount: u64,
        now_ns: Option<u64>,
    ) -> Result<(), RedisBackendError> {
        self.run(key, true, amount, now_ns).await.map(drop)
    }

    /// The check rule on the windows as Redis holds them.
    pub async fn check(
        &self,
        key: &str,
        estimate: u64,
        now_ns: Option<u64>,
    ) -> Result<Verdict, RedisBackendError> {
        let (now, views) = self.run(key, false, 0, now_ns).await?;
        Ok(verdict(&views, now, estimate))
    }

    /// What each window of `key` holds, and the time the server read it at (Unix ns).
    pub async fn status(
        &self,
        key: &str,
        now_ns: Option<u64>,
    ) -> Result<(u64, Vec<WindowView>), RedisBackendError> {
        self.run(key, false, 0, now_ns).await
    }

    /// Forgets `key` on the server; whether it held any spend.
    pub async fn reset(&self, key: &str) -> Result<bool, RedisBackendError> {
        validate_key(key)?;
        let mut command = redis::cmd("DEL");
        command.arg(redis_key(&self.prefix, key));
        let deleted: i64 = self.connection.query(&command).await?;
        Ok(deleted > 0)
    }

    pub async fn ping(&self) -> Result<(), RedisBackendError> {
        self.connection.ping().await
    }
}
