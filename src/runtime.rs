//! The one tokio runtime of the process, shared by everything in this crate that does I/O: the
//! Redis backend of the rate limiter now, the HTTP client later. Nothing else may build a runtime.
//!
//! Why one, and why small:
//! - A multiplexed Redis connection (and an HTTP connection pool) belongs to the runtime that
//!   drives its socket; one runtime lets every limiter, every Python thread and every asyncio
//!   loop share the same connections.
//! - The work on it is I/O and a little parsing (SSE events, Redis replies), never a count or a
//!   long computation, so one worker thread keeps up with everything the process's Python side
//!   can ask of it and takes no core away from the Python threads that do the real work (see
//!   `WORKER_THREADS` for the measurements; a LiteLLM pod often has one or two cores).
//! - It is built lazily, on first use, so importing the module starts no threads.
//!
//! - It is replaced in a child process after `fork()` (see `after_fork_in_child`): servers that
//!   fork workers (gunicorn, uvicorn --workers) must not inherit a runtime without threads.
//!
//! Sync callers block on it (`block_on`, with the GIL released by the binding layer); async
//! callers get asyncio futures completed from it (`crate::py::aio`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::{Builder, Runtime};

use crate::published::Published;

/// Worker threads of the shared runtime: one. The runtime serves one Python process, whose
/// callers take turns on the GIL; per request its worker costs less CPU than the Python side
/// (about 27 against 30 µs at 64 HTTP requests in flight), so a second worker adds no capacity a
/// process can use, only hand-offs: with two, both woke for every lone request (37 µs of CPU
/// each at 1 in flight) and stole from each other under load. Measured on 2 cores, one worker
/// against two: HTTP CPU per request 152 -> 109 µs at 1 in flight, 61 -> 50 µs at 64 (req/s
/// 4.5k -> 7.4k and 19.6k -> 22.5k); 64 concurrent Redis checks 81k -> 123k per second.
/// Counting runs on its own pool (`crate::tokens::pool`) and on blocking threads, never here.
pub const WORKER_THREADS: usize = 1;

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
    // No runtime thread came along to be inside a `NoFork` section.
    NO_FORK_ACTIVE.store(0, Ordering::SeqCst);
    FORK_PENDING.store(false, Ordering::SeqCst);
}

/// Runs `future` to completion on the shared runtime, blocking the calling thread. Must not be
/// called from inside the runtime (tokio panics on nested `block_on`).
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// Set by `before_fork` until the fork is over: no new `NoFork` section may start.
static FORK_PENDING: AtomicBool = AtomicBool::new(false);
/// `NoFork` sections running now.
static NO_FORK_ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// A section of work that a `fork()` must not cut in half: a runtime thread writing into state
/// that the caller's threads read under a lock (the health checks write into a router's state,
/// under its mutex). Python threads take such locks only while holding the GIL, so a fork (made
/// by the thread holding the GIL) never copies one of them held; a runtime thread has no GIL, so
/// `before_fork` waits for its sections to end and holds new ones off until the fork is done, and
/// the child gets the lock free and the state whole (what `pthread_atfork` does for a lock).
///
/// Not a lock: two atomics, so nothing in the child can be found held. A section must be short
/// and must not wait for the GIL or await (`before_fork` spins until it ends).
pub struct NoFork(());

impl Drop for NoFork {
    fn drop(&mut self) {
        NO_FORK_ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

impl NoFork {
    /// A section, unless a fork is in progress.
    pub fn try_enter() -> Option<NoFork> {
        if FORK_PENDING.load(Ordering::SeqCst) {
            return None;
        }
        NO_FORK_ACTIVE.fetch_add(1, Ordering::SeqCst);
        // Seen together with `before_fork`'s store-then-load (both sequentially consistent):
        // either it sees this section, or this sees the fork pending.
        if FORK_PENDING.load(Ordering::SeqCst) {
            NO_FORK_ACTIVE.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(NoFork(()))
    }

    /// A section, once no fork is in progress (for tasks on the runtime).
    pub async fn enter() -> NoFork {
        loop {
            if let Some(section) = NoFork::try_enter() {
                return section;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Called in the parent right before `fork()` (`os.register_at_fork(before=...)`): waits for the
/// `NoFork` sections in progress and holds new ones off until `after_fork_in_parent`.
pub fn before_fork() {
    FORK_PENDING.store(true, Ordering::SeqCst);
    while NO_FORK_ACTIVE.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
}

/// Called in the parent right after `fork()` (or after a fork that failed).
pub fn after_fork_in_parent() {
    FORK_PENDING.store(false, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fork_waits_for_no_fork_sections_and_holds_new_ones_off() {
        let section = NoFork::try_enter().expect("no fork in progress");
        let forking = std::thread::spawn(before_fork);
        // `before_fork` has announced itself once new sections are refused.
        while let Some(probe) = NoFork::try_enter() {
            drop(probe);
            std::thread::yield_now();
        }
        assert!(
            !forking.is_finished(),
            "before_fork returned with a section open"
        );
        drop(section);
        forking.join().expect("before_fork");
        assert!(
            NoFork::try_enter().is_none(),
            "held off until the fork is over"
        );
        after_fork_in_parent();
        assert!(NoFork::try_enter().is_some());
    }
}
