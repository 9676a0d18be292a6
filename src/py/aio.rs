//! Futures of the shared tokio runtime (`crate::runtime`) as asyncio awaitables, completed in
//! batches.
//!
//! Why not `pyo3_async_runtimes::tokio::future_into_py` for every call: it completes each future
//! from its own blocking thread that must take the GIL, while the event loop thread is busy and
//! holds it; each such thread then waits for the interpreter's switch interval, so under load
//! (64 concurrent rate-limit checks) the latency of a check is mostly GIL waiting. Here the
//! results of one event loop are queued, and one `call_soon_threadsafe(drain)` per batch hands
//! all of them to the loop thread, which sets them while it holds the GIL anyway. Measured with
//! 64 concurrent Redis checks: see `fast_litellm._bench_redis`.
//!
//! `pyo3-async-runtimes` still supplies the event loop of the caller (`get_current_loop`, which
//! also sees a loop set by a Rust task scope) and runs on the same runtime, so awaitables made
//! either way can be mixed.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyWeakrefMethods, PyWeakrefReference};

use super::NativeError;

/// A result waiting to be handed to its asyncio future: the future, and a function that turns
/// the Rust value into a Python object once the GIL is held.
type MakeResult = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;
type Completion = (Py<PyAny>, MakeResult);

/// The queue of one event loop.
struct LoopQueue {
    /// A weak reference to the loop: a queue never keeps a finished loop alive.
    event_loop: Py<PyWeakrefReference>,
    pending: Mutex<Vec<Completion>>,
    /// True from the moment a drain is requested until it starts running.
    scheduled: AtomicBool,
}

/// Queues by `id(loop)`; each entry is checked against its weak reference, so a new loop at a
/// reused address gets a fresh queue.
static QUEUES: Mutex<Option<HashMap<usize, Arc<LoopQueue>>>> = Mutex::new(None);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn queue_for(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<LoopQueue>> {
    let id = event_loop.as_ptr() as usize;
    // Only C-level calls below (weak references), none of which can release the GIL while the
    // lock is held.
    let mut queues = lock(&QUEUES);
    let queues = queues.get_or_insert_with(HashMap::new);
    if let Some(queue) = queues.get(&id) {
        if queue
            .event_loop
            .bind(py)
            .upgrade()
            .is_some_and(|l| l.is(event_loop))
        {
            return Ok(Arc::clone(queue));
        }
    }
    // Forget the queues of loops that are gone.
    queues.retain(|_, q| q.event_loop.bind(py).upgrade().is_some());
    let queue = Arc::new(LoopQueue {
        event_loop: PyWeakrefReference::new(event_loop)?.unbind(),
        pending: Mutex::new(Vec::new()),
        scheduled: AtomicBool::new(false),
    });
    queues.insert(id, Arc::clone(&queue));
    Ok(queue)
}

/// Sets every queued result of `queue` (runs on the loop thread, from `call_soon_threadsafe`).
fn drain(py: Python<'_>, queue: &LoopQueue) {
    // Cleared before taking the batch: a result queued after the take schedules a new drain.
    queue.scheduled.store(false, Ordering::SeqCst);
    let batch = std::mem::take(&mut *lock(&queue.pending));
    for (future, make) in batch {
        let future = future.bind(py);
        // A cancelled future (the caller gave up: a timeout, a cancelled task) takes nothing.
        if future
            .call_method0(pyo3::intern!(py, "done"))
            .and_then(|d| d.is_truthy())
            .unwrap_or(true)
        {
            continue;
        }
        let outcome = match make(py) {
            Ok(value) => future.call_method1(pyo3::intern!(py, "set_result"), (value,)),
            Err(err) => future.call_method1(pyo3::intern!(py, "set_exception"), (err,)),
        };
        if let Err(err) = outcome {
            err.write_unraisable(py, Some(future));
        }
    }
}

/// Asks the loop to drain `queue`; called once per batch, from a blocking thread of the runtime
/// (taking the GIL may wait, and a runtime worker must never wait for it).
fn schedule_drain(queue: Arc<LoopQueue>) {
    crate::runtime::runtime().spawn_blocking(move || {
        Python::attach(|py| {
            let Some(event_loop) = queue.event_loop.bind(py).upgrade() else {
                // The loop is gone, and with it every future waiting on it.
                lock(&queue.pending).clear();
                queue.scheduled.store(false, Ordering::SeqCst);
                return;
            };
            let target = Arc::clone(&queue);
            let callback = PyCFunction::new_closure(py, None, None, move |args, _kwargs| {
                drain(args.py(), &target);
                Ok::<_, PyErr>(())
            });
            let scheduled = callback.and_then(|cb| {
                event_loop.call_method1(pyo3::intern!(py, "call_soon_threadsafe"), (cb,))
            });
            if scheduled.is_err() {
                // The loop is closed: nothing will ever await these futures.
                lock(&queue.pending).clear();
                queue.scheduled.store(false, Ordering::SeqCst);
            }
        });
    });
}

/// Points `pyo3-async-runtimes` at the process-wide runtime, once, so that anything using its
/// own helpers (`future_into_py`) runs there too instead of on a runtime of its own.
pub(crate) fn share_runtime() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        // Err only if the bridge already has a runtime; nothing else in the crate sets one.
        let _ = pyo3_async_runtimes::tokio::init_with_runtime(crate::runtime::runtime());
    });
}

/// Runs `future` on the shared runtime and returns an asyncio future of the caller's event loop
/// that receives its result (`convert` turns it into a Python object on the loop thread). A
/// panic inside becomes `NativeError`, as `guard` does for sync calls.
pub(crate) fn awaitable<'py, T, F, C>(
    py: Python<'py>,
    what: &'static str,
    future: F,
    convert: C,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    F: Future<Output = PyResult<T>> + Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    share_runtime();
    let event_loop = pyo3_async_runtimes::tokio::get_current_loop(py)?;
    let Ok(queue) = queue_for(py, &event_loop) else {
        // A loop that takes no weak reference: one completion per result, the library's way.
        return pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let value = match AssertUnwindSafe(future).catch_unwind().await {
                Ok(result) => result?,
                Err(_) => {
                    return Err(NativeError::new_err(format!(
                        "internal error in native {what}: the operation panicked"
                    )))
                }
            };
            Python::attach(|py| convert(py, value))
        });
    };
    let py_future = event_loop.call_method0(pyo3::intern!(py, "create_future"))?;
    let handle = py_future.clone().unbind();
    crate::runtime::runtime().spawn(async move {
        let result = match AssertUnwindSafe(future).catch_unwind().await {
            Ok(result) => result,
            Err(_) => Err(NativeError::new_err(format!(
                "internal error in native {what}: the operation panicked"
            ))),
        };
        let make: MakeResult = Box::new(move |py| result.and_then(|value| convert(py, value)));
        lock(&queue.pending).push((handle, make));
        if !queue.scheduled.swap(true, Ordering::SeqCst) {
            schedule_drain(queue);
        }
    });
    Ok(py_future)
}
