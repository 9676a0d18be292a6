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
//! - It is replaced in a child process after `fork()` (see `after_fork_in_child`): servers that
//!   fork workers (gunicorn, uvicorn --workers) must not inherit a runtime without threads.
//!
//! Sync callers block on it (`block_on`, with the GIL released by the binding layer); async
//! callers get asyncio futures completed from it (`crate::py::aio`).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::runtime::{Builder, Runtime};

use crate::published::Published;

/// Worker threads of the shared runtime.
pub const WORKER_THREADS: usize = 2;

/// The current runtime; empty before first use and in a child process right after `fork()`.
static CURRENT: Published<Runtime> = Published::new();
/// Bumped by `after_fork_in_child`: anything bound to an older runtime (a connection whose
/// driver task lived on it) must be rebuilt.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The process-wide runtime, built on first use.
pub fn runtime() -> &'static Runtime {
    // A runtime that lost a race to be published has taken no task: shut it down at once.
    CURRENT.get_or_build(build, Runtime::shutdown_background)
}

fn build() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("fast-litellm-io")
        .enable_all()
        .build()
        // Building fails only when the OS refuses threads or an event queue; nothing can run
        // without them, and the binding layer turns this panic into `NativeError`.
        .expect("cannot start the fast_litellm I/O runtime")
}

/// Which runtime is current: changes after every `fork()` into a child.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Called in a child process right after `fork()` (registered with `os.register_at_fork`). The
/// child has only the forking thread: the runtime's workers, and the tasks that drove its
/// connections, stayed behind in the parent, so anything waiting on them would wait forever.
/// The old runtime is dropped from use (and leaked: shutting it down would wait for threads
/// that do not exist here); the next `runtime()` builds a fresh one, and connections see the
/// new `generation()` and reconnect on it.
pub fn after_fork_in_child() {
    CURRENT.forget();
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Runs `future` to completion on the shared runtime, blocking the calling thread. Must not be
/// called from inside the runtime (tokio panics on nested `block_on`).
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}
