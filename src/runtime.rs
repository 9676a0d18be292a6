//! The one tokio runtime of the process, shared by everything in this crate that does I/O: the
//! Redis backend of the rate limiter now, the HTTP client later. Nothing else may build a runtime.
//!
//! Why one, and why small:
//! - A multiplexed Redis connection (and an HTTP connection pool) belongs to the runtime that
//!   drives its socket; one runtime lets every limiter, every Python thread and every asyncio
//!   loop share the same connections.
//! - The work on it is I/O and a little parsing: two worker threads keep a stalled task from
//!   holding up the others without taking cores away from the Python threads that do the real
//!   work (the machine this is measured on has two cores, a LiteLLM pod often has one or two).
//! - It is built lazily, on first use, so importing the module starts no threads.
//!
//! Sync callers block on it (`block_on`, with the GIL released by the binding layer); async
//! callers hand its futures to asyncio through `pyo3-async-runtimes`, which is pointed at this
//! same runtime when the Python module is initialised (see `crate::py`).

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

/// Worker threads of the shared runtime.
pub const WORKER_THREADS: usize = 2;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The process-wide runtime, built on first use.
pub fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("fast-litellm-io")
            .enable_all()
            .build()
            // Building fails only when the OS refuses threads or an event queue; nothing can run
            // without them, and the binding layer turns this panic into `NativeError`.
            .expect("cannot start the fast_litellm I/O runtime")
    })
}

/// Runs `future` to completion on the shared runtime, blocking the calling thread. Must not be
/// called from inside the runtime (tokio panics on nested `block_on`).
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}
