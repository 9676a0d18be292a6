//! fast_litellm: Rust cores for LiteLLM's hot paths.
//!
//! The cores (`tokens`, ...) are plain Rust with no PyO3 in them; `py` is the binding layer and is
//! compiled only with the `python` feature, which maturin turns on.

pub mod budget;
pub mod cache;
pub mod cost;
pub mod health;
pub mod http;
pub mod metrics;
mod published;
pub mod ratelimit;
pub mod routing;
pub mod runtime;
pub mod tokens;

#[cfg(feature = "python")]
mod py;

/// jemalloc for the extension's allocations on Linux (why: see Cargo.toml).
#[cfg(all(feature = "jemalloc", target_os = "linux"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The allocator above, by name (`_native.ALLOCATOR`, reported by `health_check()`).
#[cfg(feature = "python")]
const ALLOCATOR_NAME: &str = if cfg!(all(feature = "jemalloc", target_os = "linux")) {
    "jemalloc"
} else {
    "system"
};
