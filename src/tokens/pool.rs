//! The threads that count large batches and large requests and build vocabularies: a rayon pool
//! of our own, one per process.
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

use std::sync::atomic::{AtomicUsize, Ordering};

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

/// The sum of `f` over `items`, computed by the calling thread together with the pool's other
/// threads: each takes the next item not yet taken until none is left.
///
/// Unlike [`map`], the calling thread does not wait for a pool thread to wake up before the
/// work starts: it works from the first item on, and the pool's threads join in as they wake.
/// The caller and `current_num_threads() - 1` pool threads: one thread per core. Measured with
/// `count_request_tokens`' count of the benchmark's 50 KB request after the pool had gone to
/// sleep (2 idle cores): ~196 µs with [`map`], ~181 µs with this (one thread: ~290 µs).
pub(crate) fn sum<T, F>(items: &[T], f: F) -> usize
where
    T: Sync,
    F: Fn(&T) -> usize + Sync,
{
    let pool = match pool() {
        Some(pool) if items.len() > 1 => pool,
        _ => return items.iter().map(f).sum(),
    };
    let others = pool
        .current_num_threads()
        .saturating_sub(1)
        .min(items.len() - 1);
    let next = AtomicUsize::new(0);
    let total = AtomicUsize::new(0);
    let work = || {
        let mut sum = 0;
        while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
            sum += f(item);
        }
        total.fetch_add(sum, Ordering::Relaxed);
    };
    // The scope returns once every spawned job has returned, which orders their additions
    // before the read below.
    pool.in_place_scope(|scope| {
        for _ in 0..others {
            scope.spawn(|_| work());
        }
        work();
    });
    total.into_inner()
}

/// Wakes the threads [`sum`] calls in, for a caller that will start one after other work: a
/// sleeping thread takes tens of microseconds to start, and once awake keeps looking for work for
/// a while before it sleeps again.
pub(crate) fn wake() {
    if let Some(pool) = pool() {
        for _ in 1..pool.current_num_threads() {
            pool.spawn(|| {});
        }
    }
}

/// Forgets the parent's pool in a child process right after `fork()`.
pub fn after_fork_in_child() {
    POOL.forget();
}
