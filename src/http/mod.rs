//! The HTTP client core: a pooled client for LLM APIs (many concurrent JSON POSTs and
//! server-sent-event streams to a few hosts), on the process-wide tokio runtime, or, for asyncio
//! callers, on their event loop's own thread (`local`).
//!
//! - `client`: requests, retries, streams; hyper-util's pool behind our gate.
//! - `conn`: the wrapper on every connection (statistics that match reality, per-operation
//!   timeouts, closing idle connections on demand).
//! - `local`: the loop engine (HTTP/1.1 driven by an asyncio loop's thread).
//! - `rt`: timers, spawning and hyper's executor, from whichever engine polls the request.
//! - `limit`: the in-flight gate (`max_connections`, `max_concurrency`, adaptive concurrency).
//! - `retry`: what is retried and how long to wait (`Retry-After`, jittered backoff).
//! - `sse`: the event-stream decoder.
//! - `stats`: the counters of a client.
//! - `upload`: request bodies in pieces, telling when the upload is done.
//!
//! What it does not own: HTTP itself (hyper), TLS (rustls), proxies beyond the environment
//! variables, cookies, redirects (LLM APIs answer where they are asked; a redirect is returned
//! to the caller as it is).

pub mod client;
mod conn;
mod decode;
pub mod error;
mod limit;
pub mod local;
pub mod retry;
mod rt;
pub mod sse;
pub mod stats;
mod upload;

pub use client::{BodyStream, Client, ClientConfig, Finished, Head, Prepared, Ready, Timeouts};
pub use conn::OpenCount;
pub use error::HttpError;
