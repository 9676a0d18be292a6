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
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use tokio::runtime::{Builder, Runtime};

/// Worker threads of the shared runtime.
pub const WORKER_THREADS: usize = 2;

/// The current runtime, leaked (never freed, so a `&'static` to it stays valid), or null before
/// first use and in a child process right after `fork()`.
static CURRENT: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());
/// Bumped by `after_fork_in_child`: anything bound to an older runtime (a connection whose
/// driver task lived on it) must be rebuilt.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The process-wide runtime, built on first use.
pub fn runtime() -> &'static Runtime {
    let current = CURRENT.load(Ordering::Acquire);
    if !current.is_null() {
        // SAFETY: a non-null `CURRENT` always comes from `Box::into_raw` below and is never
        // freed (a runtime replaced after a fork is leaked), so it is valid for 'static.
        return unsafe { &*current };
    }
    // Built without any lock, so that no lock is ever held across a fork (a child would wait for
    // it for ever). Threads that race here each build one; the first published is kept and the
    // others are shut down at once (their worker threads have taken no task).
    let built = Box::into_raw(Box::new(
        Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("fast-litellm-io")
            .enable_all()
            .build()
            // Building fails only when the OS refuses threads or an event queue; nothing can run
            // without them, and the binding layer turns this panic into `NativeError`.
            .expect("cannot start the fast_litellm I/O runtime"),
    ));
    match CURRENT.compare_exchange(current, built, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: just published, never freed.
        Ok(_) => unsafe { &*built },
        Err(winner) => {
            // SAFETY: `built` was never published, so this is its only owner.
            unsafe { Box::from_raw(built) }.shutdown_background();
            // SAFETY: `winner` is non-null (another thread published it after our load; the
            // slot is emptied only in a child right after fork, when no other thread exists)
            // and never freed.
            unsafe { &*winner }
        }
    }
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
    CURRENT.store(std::ptr::null_mut(), Ordering::Release);
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Runs `future` to completion on the shared runtime, blocking the calling thread. Must not be
/// called from inside the runtime (tokio panics on nested `block_on`).
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}
