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
//! No `pyo3-async-runtimes` at all: its runtime is fixed once per process, and a child made by
//! `fork()` needs a new one (see `crate::runtime::after_fork_in_child`).

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

/// How a queue refers to its loop.
enum LoopRef {
    /// Shared queues hold a weak reference: a queue never keeps a finished loop alive.
    Weak(Py<PyWeakrefReference>),
    /// A loop that takes no weak reference gets a queue per call, which holds it until the
    /// result is delivered.
    Strong(Py<PyAny>),
}

impl LoopRef {
    fn get<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        match self {
            LoopRef::Weak(weak) => weak.bind(py).upgrade(),
            LoopRef::Strong(strong) => Some(strong.bind(py).clone()),
        }
    }
}

/// The queue of one event loop.
struct LoopQueue {
    event_loop: LoopRef,
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
        if queue.event_loop.get(py).is_some_and(|l| l.is(event_loop)) {
            return Ok(Arc::clone(queue));
        }
    }
    // Forget the queues of loops that are gone.
    queues.retain(|_, q| q.event_loop.get(py).is_some());
    let queue = Arc::new(LoopQueue {
        event_loop: LoopRef::Weak(PyWeakrefReference::new(event_loop)?.unbind()),
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
            let Some(event_loop) = queue.event_loop.get(py) else {
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

/// Forgets every queue after `fork()`, in the child: they belong to the parent's loops. Only if
/// the lock is free (the child has a single thread, so a held lock was held by a thread that did
/// not come along and will never release it; the stale queues are then merely never used).
pub(crate) fn after_fork_in_child() {
    if let Ok(mut queues) = QUEUES.try_lock() {
        *queues = None;
    }
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
    let asyncio = py.import(pyo3::intern!(py, "asyncio"))?;
    let event_loop = asyncio.call_method0(pyo3::intern!(py, "get_running_loop"))?;
    let queue = match queue_for(py, &event_loop) {
        Ok(queue) => queue,
        Err(_) => Arc::new(LoopQueue {
            event_loop: LoopRef::Strong(event_loop.clone().unbind()),
            pending: Mutex::new(Vec::new()),
            scheduled: AtomicBool::new(false),
        }),
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
