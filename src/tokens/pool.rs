//! The threads that count large batches and build vocabularies: a rayon pool of our own, one per
//! process.
//!
//! Why not rayon's global pool: its threads do not survive `fork()`, and a process gets only one
//! global pool, so in a child forked after the parent had counted a large batch or loaded a
//! vocabulary (what servers that fork their workers do: gunicorn, uvicorn --workers,
//! multiprocessing's "fork" start method), the next parallel call waited for ever for workers
//! that were never there. Ours is forgotten in the child (`after_fork_in_child`, called by the
//! fork hook of the binding layer), which builds its own on first use.
//!
//! Measured against the global pool (`count_tokens_batch` of 10,000 x 1 KB English, cl100k;
//! median of 40 calls, old and new builds in turns on a shared 2-core machine under load):
//! 31.8 / 55.6 / 55.8 / 67-80 ms with the global pool, 30.3 / 53.5 / 40.5 / 57-91 ms with this
//! one, i.e. within run-to-run noise. Both have the same number of threads
//! (`RAYON_NUM_THREADS`, else one per core) and the same hand-off.

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::published::Published;

/// This process's pool; emptied in a child after `fork()`.
static POOL: Published<ThreadPool> = Published::new();

/// This process's pool, built on first use; `None` when the OS refuses the threads (the callers
/// then work on the calling thread).
fn pool() -> Option<&'static ThreadPool> {
    if let Some(pool) = POOL.get() {
        return Some(pool);
    }
    let built = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("fast-litellm-cpu-{i}"))
        .build()
        .ok()?;
    Some(POOL.publish(built, drop))
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

/// Forgets the parent's pool in a child process right after `fork()`.
pub fn after_fork_in_child() {
    POOL.forget();
}
