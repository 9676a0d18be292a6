//! The threads that count large batches and build vocabularies: a rayon pool of our own, one per
//! process.
//!
//! Why not rayon's global pool: its threads do not survive `fork()`, and a process gets only one
//! global pool, so in a child forked after the parent had counted a large batch or loaded a
//! vocabulary (what servers that fork their workers do: gunicorn, uvicorn --workers,
//! multiprocessing's "fork" start method), the next parallel call waited for ever for workers
//! that were never there. Ours is tagged with the process that built it; a child finds another
//! process id (or a slot emptied by `after_fork_in_child`) and builds its own. The parent's pool
//! is leaked in the child: its threads do not exist there, and dropping it would signal them.
//!
//! Measured against the global pool (`count_tokens_batch` of 10,000 x 1 KB, see `benches/`):
//! within run-to-run noise; both have the same number of threads (`RAYON_NUM_THREADS`, else one
//! per core) and the same hand-off.

use std::sync::atomic::{AtomicPtr, Ordering};

use rayon::prelude::*;
use rayon::ThreadPool;

struct ProcessPool {
    pid: u32,
    pool: ThreadPool,
}

/// The current process's pool, leaked (a `&'static` to it stays valid), or null before first use
/// and after a fork.
static CURRENT: AtomicPtr<ProcessPool> = AtomicPtr::new(std::ptr::null_mut());

/// This process's pool, built on first use; `None` when the OS refuses the threads (the callers
/// then work on the calling thread).
fn pool() -> Option<&'static ThreadPool> {
    let pid = std::process::id();
    let current = CURRENT.load(Ordering::Acquire);
    // SAFETY: a non-null `CURRENT` comes from `Box::into_raw` below and is never freed.
    if let Some(current) = unsafe { current.as_ref() } {
        if current.pid == pid {
            return Some(&current.pool);
        }
    }
    // Built without any lock, so that no lock is ever held across a fork; two threads that race
    // here both build, one publishes and the other drops its pool.
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("fast-litellm-cpu-{i}"))
        .build()
        .ok()?;
    let built = Box::into_raw(Box::new(ProcessPool { pid, pool }));
    match CURRENT.compare_exchange(current, built, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: just leaked, never freed.
        Ok(_) => Some(unsafe { &(*built).pool }),
        Err(winner) => {
            // SAFETY: `built` was never published, so this is its only owner.
            drop(unsafe { Box::from_raw(built) });
            // SAFETY: as for `current` above; the winner was built by this process (a
            // concurrent builder runs in the same process).
            unsafe { winner.as_ref() }.map(|w| &w.pool)
        }
    }
}

/// `f` applied to every item, in order; on the pool in chunks of at least `min_len` items.
pub(crate) fn map<T, U, F>(items: &[T], min_len: usize, f: F) -> Vec<U>
where
    T: Sync,
    U: Send,
    F: Fn(&T) -> U + Sync + Send,
{
    match pool() {
        Some(pool) => pool.install(|| items.par_iter().with_min_len(min_len).map(f).collect()),
        None => items.iter().map(f).collect(),
    }
}

/// Forgets the pool in a child process right after `fork()`. The process id check already keeps
/// a child off its parent's pool; this also covers a grandchild that reuses the pid of an
/// ancestor whose pool it inherited.
pub fn after_fork_in_child() {
    CURRENT.store(std::ptr::null_mut(), Ordering::Release);
}
