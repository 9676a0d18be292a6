//! The loop engines of asyncio event loops (`crate::http::local`): one per loop that can watch
//! file descriptors, made on its first request and closed with it.
//!
//! The loop watches the engine's poll descriptor (`add_reader`); that reader's callback owns
//! the engine, so when the loop is closed (its selector drops the callback) the engine closes
//! too, dropping its tasks and connections. The registry here holds engines weakly.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyWeakrefMethods, PyWeakrefReference};

use super::aio::{caught, deliver, stop_on_cancel};
use crate::http::local::{Engine, Host, Wakeup};
use crate::published::Published;

/// What the registry knows of a loop: its engine, or that it cannot have one.
struct Entry {
    event_loop: Py<PyWeakrefReference>,
    engine: Option<Weak<Engine>>,
}

type Engines = Mutex<HashMap<usize, Entry>>;

/// Engines by `id(loop)`, each checked against its weak reference. Forgotten by a child process
/// after `fork()` (its lock may have been held by a thread that stayed behind; the parent's
/// engines are the parent's).
static ENGINES: Published<Engines> = Published::new();

fn engines() -> &'static Engines {
    ENGINES.get_or_build(Engines::default, drop)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn after_fork_in_child() {
    ENGINES.forget();
}

/// The loop side of an engine: `call_soon` and `call_later` on its loop.
struct LoopHost {
    event_loop: Py<PyWeakrefReference>,
    /// Runs a turn (`call_soon`'s callback).
    turn: Py<PyAny>,
    /// Runs a turn for the timer.
    on_timer: Py<PyAny>,
    /// The loop timer armed for the engine's earliest deadline.
    timer: Mutex<Option<Py<PyAny>>>,
}

/// A call to the loop failed: said unless the loop is closed (its engine closes with it, and
/// nothing will run its tasks any more).
fn loop_refused(py: Python<'_>, event_loop: &Bound<'_, PyAny>, err: PyErr) {
    let closed = event_loop
        .call_method0(pyo3::intern!(py, "is_closed"))
        .and_then(|closed| closed.is_truthy())
        .unwrap_or(true);
    if !closed {
        err.write_unraisable(py, Some(event_loop));
    }
}

impl Host for LoopHost {
    fn schedule(&self) {
        Python::attach(|py| {
            if let Some(event_loop) = self.event_loop.bind(py).upgrade() {
                if let Err(err) =
                    event_loop.call_method1(pyo3::intern!(py, "call_soon"), (&self.turn,))
                {
                    loop_refused(py, &event_loop, err);
                }
            }
        });
    }

    fn wake_at(&self, at: Instant) {
        Python::attach(|py| {
            let Some(event_loop) = self.event_loop.bind(py).upgrade() else {
                return;
            };
            let previous = lock(&self.timer).take();
            if let Some(previous) = previous {
                let _ = previous.bind(py).call_method0(pyo3::intern!(py, "cancel"));
            }
            // A millisecond late rather than early: the loop's clock and ours differ slightly,
            // and a timer that fires before its deadline would have to be armed again.
            let delay = at.saturating_duration_since(Instant::now()).as_secs_f64() + 0.001;
            match event_loop.call_method1(pyo3::intern!(py, "call_later"), (delay, &self.on_timer))
            {
                Ok(handle) => *lock(&self.timer) = Some(handle.unbind()),
                Err(err) => loop_refused(py, &event_loop, err),
            }
        });
    }
}

/// Closes its engine when the loop drops the reader callback that owns it.
struct Closer(Arc<Engine>);

impl Drop for Closer {
    fn drop(&mut self) {
        if self.0.generation() != crate::runtime::generation() {
            // In a child forked since: its poll and sockets are shared with the parent, and
            // closing them here would take them from the parent too. Left alone for good.
            std::mem::forget(Arc::clone(&self.0));
            return;
        }
        self.0.close();
    }
}

fn turn_callback(py: Python<'_>, engine: Weak<Engine>, why: Wakeup) -> PyResult<Py<PyAny>> {
    let callback = PyCFunction::new_closure(py, None, None, move |_args, _kwargs| {
        if let Some(engine) = engine.upgrade() {
            engine.turn(why);
        }
        Ok::<_, PyErr>(())
    })?;
    Ok(callback.into_any().unbind())
}

/// The engine of `event_loop`, made on first use; `None` for a loop that cannot watch file
/// descriptors (its requests go to the runtime).
#[cfg(unix)]
pub(crate) fn engine_for(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> Option<Arc<Engine>> {
    let id = event_loop.as_ptr() as usize;
    {
        let engines = lock(engines());
        if let Some(entry) = engines.get(&id) {
            if entry
                .event_loop
                .bind(py)
                .upgrade()
                .is_some_and(|l| l.is(event_loop))
            {
                let engine = entry.engine.as_ref()?.upgrade();
                match engine {
                    Some(engine) if !engine.is_closed() => return Some(engine),
                    // Closed with its loop's selector; a loop closed is not running requests.
                    _ => return None,
                }
            }
        }
    }
    let weak = PyWeakrefReference::new(event_loop).ok()?.unbind();
    let engine = new_engine(py, event_loop, &weak).ok().flatten();
    let mut engines = lock(engines());
    engines.retain(|_, entry| entry.event_loop.bind(py).upgrade().is_some());
    engines.insert(
        id,
        Entry {
            event_loop: weak,
            engine: engine.as_ref().map(Arc::downgrade),
        },
    );
    engine
}

#[cfg(not(unix))]
pub(crate) fn engine_for(_py: Python<'_>, _event_loop: &Bound<'_, PyAny>) -> Option<Arc<Engine>> {
    None
}

#[cfg(unix)]
fn new_engine(
    py: Python<'_>,
    event_loop: &Bound<'_, PyAny>,
    weak: &Py<PyWeakrefReference>,
) -> PyResult<Option<Arc<Engine>>> {
    let Ok(engine) = Engine::new() else {
        return Ok(None);
    };
    engine.set_host(Box::new(LoopHost {
        event_loop: weak.clone_ref(py),
        turn: turn_callback(py, Arc::downgrade(&engine), Wakeup::Tasks)?,
        on_timer: turn_callback(py, Arc::downgrade(&engine), Wakeup::Timer)?,
        timer: Mutex::new(None),
    }));
    let closer = Closer(Arc::clone(&engine));
    let fd = engine.fd();
    let reader = PyCFunction::new_closure(py, None, None, move |_args, _kwargs| {
        if closer.0.generation() != crate::runtime::generation() {
            // A child forked while this loop ran, and running it still: the poll is the
            // parent's, and so is the loop's own epoll, which the fork shares: reading the poll
            // would take the parent's events, and `remove_reader` would unregister it in the
            // parent as well. Left alone: it stops being readable once the parent reads it.
            return Ok(());
        }
        closer.0.turn(Wakeup::Io);
        Ok::<_, PyErr>(())
    })?;
    match event_loop.call_method1(pyo3::intern!(py, "add_reader"), (fd, reader)) {
        Ok(_) => Ok(Some(engine)),
        // A loop that cannot watch descriptors (NotImplementedError): the runtime serves it.
        Err(_) => Ok(None),
    }
}

/// Runs `future` on the loop engine `engine` of `event_loop` and returns the asyncio future of
/// its result, as `aio::cancellable` does on the runtime: a panic inside becomes `NativeError`,
/// and cancelling the asyncio future drops `future` at once.
///
/// The first steps of `future` run before this returns (the request is written while the
/// caller's `await` is being set up).
pub(crate) fn spawn<'py, T, F, C>(
    py: Python<'py>,
    what: &'static str,
    engine: &Arc<Engine>,
    event_loop: &Bound<'py, PyAny>,
    future: F,
    convert: C,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    F: Future<Output = PyResult<T>> + Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let py_future = event_loop.call_method0(pyo3::intern!(py, "create_future"))?;
    let handle = py_future.clone().unbind();
    let on_done_slot: Arc<Mutex<Option<Py<PyAny>>>> = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&on_done_slot);
    let abort = engine.spawn_for_turn(async move {
        let result = caught(what, future).await;
        Python::attach(|py| {
            let on_done = lock(&slot).take();
            deliver(py, handle.bind(py), on_done, |py| {
                result.and_then(|value| convert(py, value))
            });
        });
    });
    let watched = stop_on_cancel(py, &py_future, abort.clone())
        .map(|on_done| *lock(&on_done_slot) = Some(on_done));
    if watched.is_err() {
        // Nobody will have the future: the job is stopped before it starts.
        abort.abort();
    }
    // The queued job runs now (and the request is written) whatever happened above.
    engine.turn(Wakeup::Tasks);
    watched.map(|()| py_future)
}
