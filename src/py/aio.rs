//! Futures of the shared tokio runtime (`crate::runtime`) as asyncio awaitables, completed in
//! batches.
//!
//! Why not `pyo3_async_runtimes::tokio::future_into_py` for every call: it completes each future
//! from its own blocking thread that must take the GIL, while the event loop thread is busy and
//! holds it; each such thread then waits for the interpreter's switch interval, so under load
//! (64 concurrent rate-limit checks) the latency of a check is mostly GIL waiting. Here the
//! results of one event loop are queued, and one wake-up per batch hands all of them to the loop
//! thread, which sets them while it holds the GIL anyway. Measured with 64 concurrent Redis
//! checks: see `fast_litellm._bench_redis`.
//!
//! The wake-up: on Unix the loop watches one end of a socket pair of its own (`add_reader`) and
//! a runtime worker writes a byte to the other end, without the GIL and without a thread hop.
//! Handing the batch to a blocking thread that takes the GIL and calls
//! `call_soon_threadsafe(drain)` (still the way for loops that cannot watch sockets) costs two
//! more thread wake-ups and a GIL hand-off per batch: with one request in flight that was most of
//! a request's CPU (about 180 µs against 50 µs per request, `benches/http_cases.py`).
//!
//! The other direction batches too: work submitted while the loop is busy with a turn goes to
//! the runtime together at the end of the turn (`submit`), so the runtime's worker is not woken
//! once per request.
//!
//! No `pyo3-async-runtimes` at all: its runtime is fixed once per process, and a child made by
//! `fork()` needs a new one (see `crate::runtime::after_fork_in_child`).
//!
//! Interpreter exit: checks may still be in flight when the program ends (it never awaited
//! them). A runtime thread that then attached to the interpreter would find it finalized (pyo3
//! panics) or being finalized (CPython parks or ends the thread). `at_exit` runs as an `atexit`
//! callback, before finalization starts: from then on no runtime thread attaches, and results
//! that arrive later are dropped unseen, since nothing can await them any more. (A socket
//! wake-up never attaches: its byte is simply never read.)

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::{AbortHandle, Abortable, Aborted};
use futures_util::FutureExt;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyWeakrefMethods, PyWeakrefReference};

use super::{guard, panic_detail, Catching, NativeError};
use crate::published::Published;

/// A result waiting to be handed to its asyncio future: the future, and a function that turns
/// the Rust value into a Python object once the GIL is held.
type MakeResult = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;
/// A result for its asyncio future, with the future's stop callback (`cancellable`), taken off
/// the future before the result is set so that the loop does not run it for nothing.
type Completion = (Py<PyAny>, Option<Py<PyAny>>, MakeResult);

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

/// Work submitted on a loop's thread, not yet handed to the runtime.
type Job = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// The queue of one event loop.
struct LoopQueue {
    event_loop: LoopRef,
    pending: Mutex<Vec<Completion>>,
    /// Work submitted on the loop thread while the runtime is likely busy with earlier work of
    /// the same turn of the loop, handed to it together at the end of the turn (`submit`).
    submitted: Mutex<Vec<Job>>,
    /// Whether work went to the runtime since the loop last took results or flushed (`submit`).
    spawned: AtomicBool,
    /// True from the moment a drain is requested until it starts running.
    scheduled: AtomicBool,
    /// How a runtime thread asks the loop to drain.
    wake: Wake,
}

/// How a runtime thread asks a loop to drain its queue.
enum Wake {
    /// The loop watches the reading end of a socket pair (`loop.add_reader`) and drains when it
    /// becomes readable; a runtime thread writes one byte to the other end. No thread hop and no
    /// GIL on the runtime side: the wake-up costs one `write` and lands on the loop thread, which
    /// sets the results while it holds the GIL anyway.
    #[cfg(unix)]
    Socket {
        reader: std::os::unix::net::UnixStream,
        writer: std::os::unix::net::UnixStream,
    },
    /// Loops that watch no file descriptors (Windows' proactor loop, a loop without weak
    /// references): a blocking thread of the runtime takes the GIL and calls
    /// `call_soon_threadsafe(drain)`.
    Threadsafe,
}

impl LoopQueue {
    fn new(event_loop: LoopRef, wake: Wake) -> Self {
        LoopQueue {
            event_loop,
            pending: Mutex::new(Vec::new()),
            submitted: Mutex::new(Vec::new()),
            spawned: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            wake,
        }
    }

    /// Asks the loop to drain (from a runtime thread, once per batch).
    fn wake(self: Arc<Self>) {
        match &self.wake {
            #[cfg(unix)]
            Wake::Socket { writer, .. } => {
                use std::io::Write;
                // Non-blocking: a full socket buffer means wake-ups are already pending, and an
                // error means the loop end is gone (nothing can await these results any more).
                let _ = (&*writer).write(&[1]);
            }
            Wake::Threadsafe => schedule_drain(self),
        }
    }

    /// Empties the wake-up socket (on the loop thread, before taking the batch).
    fn clear_wake(&self) {
        #[cfg(unix)]
        if let Wake::Socket { reader, .. } = &self.wake {
            use std::io::Read;
            let mut buffer = [0u8; 256];
            while matches!((&*reader).read(&mut buffer), Ok(n) if n == buffer.len()) {}
        }
    }
}

type Queues = Mutex<HashMap<usize, Arc<LoopQueue>>>;

/// Queues by `id(loop)`; each entry is checked against its weak reference, so a new loop at a
/// reused address gets a fresh queue. Forgotten by a child process after `fork()`: the parent's
/// lock may have been held by a thread that did not come along.
static QUEUES: Published<Queues> = Published::new();

fn queues() -> &'static Queues {
    QUEUES.get_or_build(Queues::default, drop)
}

/// Runtime threads between deciding to attach to the interpreter and detaching again, plus
/// `EXITING` once that is no longer allowed (see the module notes on interpreter exit). An atomic
/// rather than a lock, so that a fork can never leave it held.
static ATTACHING: AtomicUsize = AtomicUsize::new(0);
const EXITING: usize = 1 << (usize::BITS - 1);

/// Permission for a runtime thread to attach, held until it has detached again; `None` once the
/// interpreter is exiting.
struct Attaching;

impl Attaching {
    fn enter() -> Option<Attaching> {
        if ATTACHING.fetch_add(1, Ordering::AcqRel) & EXITING != 0 {
            ATTACHING.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Attaching)
    }
}

impl Drop for Attaching {
    fn drop(&mut self) {
        ATTACHING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The `atexit` callback: stops runtime threads from attaching, then lets the ones already on
/// their way (waiting for the GIL this callback holds) finish. They only hand results to their
/// loop, which takes microseconds; the bound is for a loop whose `call_soon_threadsafe` blocks.
#[pyfunction]
pub(crate) fn _at_exit(py: Python<'_>) {
    ATTACHING.fetch_or(EXITING, Ordering::AcqRel);
    py.detach(|| {
        let deadline = Instant::now() + Duration::from_secs(2);
        while ATTACHING.load(Ordering::Acquire) & !EXITING != 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn queue_for(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<LoopQueue>> {
    let id = event_loop.as_ptr() as usize;
    {
        // Only C-level calls while the lock is held (weak references), none of which can
        // release the GIL.
        let queues = lock(queues());
        if let Some(queue) = queues.get(&id) {
            if queue.event_loop.get(py).is_some_and(|l| l.is(event_loop)) {
                return Ok(Arc::clone(queue));
            }
        }
    }
    // A loop's queue is only ever made on its own thread (inside `get_running_loop()`), so no
    // other thread races this one for `id`; registering the reader calls into Python, outside
    // the lock.
    let queue = watched_queue(py, event_loop)?;
    let mut queues = lock(queues());
    // Forget the queues of loops that are gone.
    queues.retain(|_, q| q.event_loop.get(py).is_some());
    queues.insert(id, Arc::clone(&queue));
    Ok(queue)
}

/// A queue whose loop drains it when the wake-up socket becomes readable, or one woken with
/// `call_soon_threadsafe` when the loop cannot watch sockets.
#[cfg(unix)]
fn watched_queue(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<LoopQueue>> {
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    let Ok((reader, writer)) = UnixStream::pair() else {
        return Ok(Arc::new(LoopQueue::new(
            weak_ref(event_loop)?,
            Wake::Threadsafe,
        )));
    };
    if reader.set_nonblocking(true).is_err() || writer.set_nonblocking(true).is_err() {
        return Ok(Arc::new(LoopQueue::new(
            weak_ref(event_loop)?,
            Wake::Threadsafe,
        )));
    }
    let fd = reader.as_raw_fd();
    let queue = Arc::new(LoopQueue::new(
        weak_ref(event_loop)?,
        Wake::Socket { reader, writer },
    ));
    // The loop's reader holds the queue; the queue holds the loop only weakly.
    let target = Arc::clone(&queue);
    let callback = PyCFunction::new_closure(py, None, None, move |args, _kwargs| {
        drain(args.py(), &target);
        Ok::<_, PyErr>(())
    })?;
    match event_loop.call_method1(pyo3::intern!(py, "add_reader"), (fd, callback)) {
        Ok(_) => Ok(queue),
        // A loop that cannot watch sockets (NotImplementedError) is woken the other way.
        Err(_) => Ok(Arc::new(LoopQueue::new(
            weak_ref(event_loop)?,
            Wake::Threadsafe,
        ))),
    }
}

#[cfg(not(unix))]
fn watched_queue(_py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<LoopQueue>> {
    Ok(Arc::new(LoopQueue::new(
        weak_ref(event_loop)?,
        Wake::Threadsafe,
    )))
}

fn weak_ref(event_loop: &Bound<'_, PyAny>) -> PyResult<LoopRef> {
    Ok(LoopRef::Weak(PyWeakrefReference::new(event_loop)?.unbind()))
}

/// Hands `job` to the runtime (on the loop thread).
///
/// Spawning from outside the runtime wakes its worker when it is parked. When the Python side is
/// the slower one (httpx over the transport, an application's own work between requests) the
/// worker has finished each request and gone back to sleep before the next one is submitted: two
/// thread wake-ups per request. So only the first job after the loop last took results goes at
/// once (a lone request waits for nothing); later ones are queued and go together at the end of
/// the loop's turn (`flush`, scheduled with `call_soon` by the first of them): a few wake-ups
/// per turn of the loop instead of two per request.
fn submit(py: Python<'_>, queue: &Arc<LoopQueue>, event_loop: &Bound<'_, PyAny>, job: Job) {
    if !queue.spawned.swap(true, Ordering::Relaxed) {
        crate::runtime::runtime().spawn(job);
        return;
    }
    let first = {
        let mut submitted = lock(&queue.submitted);
        submitted.push(job);
        submitted.len() == 1
    };
    if !first {
        return;
    }
    let target = Arc::clone(queue);
    let scheduled = PyCFunction::new_closure(py, None, None, move |_args, _kwargs| {
        flush(&target);
        Ok::<_, PyErr>(())
    })
    .and_then(|flush| event_loop.call_method1(pyo3::intern!(py, "call_soon"), (flush,)));
    if scheduled.is_err() {
        // A loop that takes no callback (it is closing): the work goes now.
        flush(queue);
    }
}

/// Hands the queued work of this turn to the runtime.
fn flush(queue: &LoopQueue) {
    let jobs = std::mem::take(&mut *lock(&queue.submitted));
    queue.spawned.store(false, Ordering::Relaxed);
    let runtime = crate::runtime::runtime();
    for job in jobs {
        runtime.spawn(job);
    }
}

/// Sets every queued result of `queue` (runs on the loop thread, from `call_soon_threadsafe`).
fn drain(py: Python<'_>, queue: &LoopQueue) {
    // The wake-up socket is emptied first, then the flag cleared, then the batch taken: a byte
    // read here was written after its writer set the flag, which is cleared after the read, so
    // a flag left set always has a byte still to come (emptying the socket after clearing the
    // flag could eat the byte of a writer that set it again, and its batch would wait for
    // ever). A result queued after the take finds the flag clear and schedules a new drain.
    queue.clear_wake();
    queue.scheduled.store(false, Ordering::SeqCst);
    // A new turn of work: the next submission goes to the runtime at once (see `submit`).
    queue.spawned.store(false, Ordering::Relaxed);
    let batch = std::mem::take(&mut *lock(&queue.pending));
    for (future, on_done, make) in batch {
        deliver(py, future.bind(py), on_done, make);
    }
}

/// Sets `future`'s result (on its loop's thread): `make`'s value or exception, after taking
/// `on_done` (the stop callback of `stop_on_cancel`) off it. A future already done (its caller
/// gave up: a timeout, a cancelled task) takes nothing, and `make` is not called.
pub(crate) fn deliver(
    py: Python<'_>,
    future: &Bound<'_, PyAny>,
    on_done: Option<Py<PyAny>>,
    make: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>,
) {
    if future
        .call_method0(pyo3::intern!(py, "done"))
        .and_then(|d| d.is_truthy())
        .unwrap_or(true)
    {
        return;
    }
    if let Some(on_done) = on_done {
        // A done callback costs the loop a handle and a call; this one has nothing to do.
        let _ = future.call_method1(pyo3::intern!(py, "remove_done_callback"), (on_done,));
    }
    let outcome = match make(py) {
        Ok(value) => future.call_method1(pyo3::intern!(py, "set_result"), (value,)),
        Err(err) => future.call_method1(pyo3::intern!(py, "set_exception"), (err,)),
    };
    if let Err(err) = outcome {
        err.write_unraisable(py, Some(future));
    }
}

/// Adds to `future` a done callback that aborts `abort` when the future is cancelled (a
/// cancelled task, `asyncio.wait_for` timing out); the callback, for `deliver` to take off.
pub(crate) fn stop_on_cancel(
    py: Python<'_>,
    future: &Bound<'_, PyAny>,
    abort: AbortHandle,
) -> PyResult<Py<PyAny>> {
    let on_done = PyCFunction::new_closure(py, None, None, move |args, _kwargs| {
        let cancelled = args
            .get_item(0)
            .and_then(|f| f.call_method0(pyo3::intern!(args.py(), "cancelled")))
            .and_then(|c| c.is_truthy())
            .unwrap_or(false);
        if cancelled {
            abort.abort();
        }
        Ok::<_, PyErr>(())
    })?;
    future.call_method1(pyo3::intern!(py, "add_done_callback"), (&on_done,))?;
    Ok(on_done.into_any().unbind())
}

/// Asks the loop to drain `queue`; called once per batch, from a blocking thread of the runtime
/// (taking the GIL may wait, and a runtime worker must never wait for it).
fn schedule_drain(queue: Arc<LoopQueue>) {
    crate::runtime::runtime().spawn_blocking(move || {
        let attached = Attaching::enter().and_then(|_attaching| {
            Python::try_attach(|py| {
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
            })
        });
        if attached.is_none() {
            // The interpreter is exiting or gone: the Python objects in the queue must not be
            // touched, not even released, so they are left to the end of the process.
            std::mem::forget(queue);
        }
    });
}

/// Forgets every queue after `fork()`, in the child: they belong to the parent's loops, and
/// their lock may be held by a thread that stayed behind. Their wake-up sockets stay open in
/// the child (two descriptors per parent loop) and are shared with the parent, as asyncio's own
/// wake-up pipe is: a child must run a loop of its own, never one it inherited, or it could read
/// a wake-up meant for the parent (`tests/test_asyncio_bridge.py` forks inside a running loop).
pub(crate) fn after_fork_in_child() {
    QUEUES.forget();
    // Runtime threads that were attaching did not come along.
    ATTACHING.fetch_and(EXITING, Ordering::AcqRel);
}

/// How often a blocking call runs Python's signal handlers while it waits.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// The blocking twin of `awaitable`: runs `future` on the shared runtime and waits for it with
/// the GIL released. Its error becomes the Python exception, a panic inside `NativeError`.
///
/// Every `SIGNAL_CHECK` of waiting it takes the GIL back to run Python's signal handlers
/// (`PyErr_CheckSignals`, which does nothing off the main thread): Ctrl-C, or a SIGTERM handler
/// of a server shutting down, raises in the caller at once, and `future` is dropped, which
/// cancels the request and frees its connection. Before, they waited until the call returned
/// (a slow LLM answer: a minute).
pub(crate) fn blocking<T, E, F>(py: Python<'_>, what: &str, future: F) -> PyResult<T>
where
    T: Send,
    F: Future<Output = Result<T, E>> + Send,
    PyErr: From<E>,
    E: Send,
{
    guard(what, || {
        let mut future = std::pin::pin!(future);
        loop {
            let done = py.detach(|| {
                crate::runtime::block_on(async {
                    tokio::time::timeout(SIGNAL_CHECK, future.as_mut())
                        .await
                        .ok()
                })
            });
            match done {
                Some(result) => return result.map_err(PyErr::from),
                None => py.check_signals()?,
            }
        }
    })
}

/// `blocking` for work on a pool's connections (an HTTP request): `future` runs as a task of
/// the runtime, as an awaitable's does, rather than being polled on the calling thread.
///
/// Why: a pool settles a finished response's connection back in before its place is given to
/// the next request (`http::client::settle_connection`), by letting hyper's tasks take turns on
/// the worker. Polled from the caller's thread, those turns gave the worker nothing, and the
/// pool's checkouts ran on many threads at once beside its put-backs: 8 threads sharing a
/// `Client` of `max_connections` 1, 2 and 4 opened 2, 4 and 6 connections (up to 8 for 4), as
/// tasks they open 1, 2 and 4, like async callers. The request is aborted if the caller gives
/// up (Ctrl-C), which frees its connection.
pub(crate) fn blocking_task<T, E, F>(py: Python<'_>, what: &'static str, future: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, E>> + Send + 'static,
    PyErr: From<E>,
    E: Send + 'static,
{
    let task =
        crate::runtime::runtime().spawn(caught(
            what,
            async move { future.await.map_err(PyErr::from) },
        ));
    let mut task = AbortOnDrop(task);
    blocking::<T, PyErr, _>(py, what, async move {
        match (&mut task.0).await {
            Ok(result) => result,
            Err(err) => Err(NativeError::new_err(format!(
                "internal error in native {what}: the task ended without an answer ({err})"
            ))),
        }
    })
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `future` with each poll inside a panic boundary (see `super::guard`): a panic becomes its
/// `NativeError`, not text on stderr.
pub(crate) async fn caught<T, F>(what: &'static str, future: F) -> PyResult<T>
where
    F: Future<Output = PyResult<T>>,
{
    let mut future = std::pin::pin!(future);
    let polls = futures_util::future::poll_fn(move |cx| {
        let _scope = Catching::enter();
        future.as_mut().poll(cx)
    });
    match AssertUnwindSafe(polls).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => Err(NativeError::new_err(format!(
            "internal error in native {what}: {}",
            panic_detail(payload.as_ref())
        ))),
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
    spawn_awaitable(py, what, future, convert, false)
}

/// `awaitable`, and cancelling the asyncio future (a cancelled task, `asyncio.wait_for` timing
/// out) aborts the native future at its next await: a request stops and frees its connection
/// instead of running on unseen. One callback per call (about a microsecond), so only for work
/// worth stopping.
pub(crate) fn cancellable<'py, T, F, C>(
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
    spawn_awaitable(py, what, future, convert, true)
}

/// The asyncio future of `future`; with `stoppable`, cancelling it stops `future` (dropped at
/// its next await, delivering nothing).
fn spawn_awaitable<'py, T, F, C>(
    py: Python<'py>,
    what: &'static str,
    future: F,
    convert: C,
    stoppable: bool,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    F: Future<Output = PyResult<T>> + Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let event_loop = get_running_loop(py)?;
    let queue = match queue_for(py, &event_loop) {
        Ok(queue) => queue,
        Err(_) => Arc::new(LoopQueue::new(
            LoopRef::Strong(event_loop.clone().unbind()),
            Wake::Threadsafe,
        )),
    };
    let py_future = event_loop.call_method0(pyo3::intern!(py, "create_future"))?;
    let handle = py_future.clone().unbind();
    let (abort, registration) = AbortHandle::new_pair();
    let on_done = if stoppable {
        Some(stop_on_cancel(py, &py_future, abort)?)
    } else {
        None
    };
    let target = Arc::clone(&queue);
    let job = async move {
        let result = match Abortable::new(caught(what, future), registration).await {
            Ok(result) => result,
            // Stopped: its asyncio future was cancelled and takes nothing.
            Err(Aborted) => return,
        };
        let make: MakeResult = Box::new(move |py| result.and_then(|value| convert(py, value)));
        lock(&target.pending).push((handle, on_done, make));
        if !target.scheduled.swap(true, Ordering::SeqCst) {
            target.wake();
        }
    };
    submit(py, &queue, &event_loop, Box::pin(job));
    Ok(py_future)
}

/// `asyncio.get_running_loop`, looked up once.
pub(crate) fn get_running_loop<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
    static GET_RUNNING_LOOP: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    GET_RUNNING_LOOP
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import(pyo3::intern!(py, "asyncio"))?
                    .getattr(pyo3::intern!(py, "get_running_loop"))?
                    .unbind(),
            )
        })?
        .bind(py)
        .call0()
}
