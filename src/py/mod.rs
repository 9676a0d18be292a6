//! The PyO3 binding layer: type conversion, error mapping and GIL release. No algorithms here.

mod aio;
mod budget;
mod cache;
mod cost;
mod hf;
mod http;
mod http_loop;
mod messages;
mod metrics;
mod ratelimit;
mod ratelimit_redis;
mod request;
mod routing;
mod tokens;

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;
use pyo3::types::PyString;

// The exception classes are defined in Python (`fast_litellm/errors.py`) so that the native path
// and the fallback raise exactly the same classes.
pyo3::import_exception!(fast_litellm.errors, NativeError);
pyo3::import_exception!(fast_litellm.errors, TokenizerUnavailableError);
pyo3::import_exception!(fast_litellm.errors, UnsupportedContentError);
pyo3::import_exception!(fast_litellm.errors, FallbackNeeded);

/// Runs `f`, turning a Rust panic into `fast_litellm.errors.NativeError`.
///
/// PyO3 would otherwise raise `pyo3_runtime.PanicException`, which derives from `BaseException`
/// and escapes ordinary `except Exception` handlers, including the fallback dispatch. Nothing
/// behind the cores uses poisoning locks, so a panic leaves no broken state behind. The panic is
/// reported by the exception (and logged at debug level with where it happened), not by the
/// default panic hook's text on stderr (see `panic_hook`).
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    let caught = {
        let _scope = Catching::enter();
        catch_unwind(AssertUnwindSafe(f))
    };
    match caught {
        Ok(result) => result,
        Err(payload) => {
            let detail = panic_detail(payload.as_ref());
            let location = CAUGHT_AT.take().unwrap_or_else(|| "unknown".to_owned());
            Python::attach(|py| log_debug(py, &format!("native {what} panicked at {location}")));
            Err(NativeError::new_err(format!(
                "internal error in native {what}: {detail}"
            )))
        }
    }
}

pub(crate) fn panic_detail(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".to_owned())
}

/// Logs `message` to the `fast_litellm` logger; a logging failure is not the caller's problem.
pub(crate) fn log_debug(py: Python<'_>, message: &str) {
    let logged = py
        .import(pyo3::intern!(py, "logging"))
        .and_then(|logging| logging.call_method1("getLogger", ("fast_litellm",)))
        .and_then(|logger| logger.call_method1("debug", (message,)));
    if let Err(err) = logged {
        err.write_unraisable(py, None);
    }
}

thread_local! {
    /// How many boundaries that catch panics (`guard`, an async call) this thread is inside.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    /// Where the last panic caught on this thread happened, for the log.
    static CAUGHT_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Marks the current thread as inside a boundary that catches panics, until dropped.
pub(crate) struct Catching;

impl Catching {
    pub(crate) fn enter() -> Catching {
        CATCHING.set(CATCHING.get() + 1);
        Catching
    }
}

impl Drop for Catching {
    fn drop(&mut self) {
        CATCHING.set(CATCHING.get() - 1);
    }
}

/// Installs the process's panic hook, once: a panic inside a boundary that catches it (or on a
/// thread of the counting pool, whose panics rayon hands on to the caller, who is inside one)
/// becomes an exception and needs no text on stderr; any other panic, on any thread, still goes
/// to the hook that was there before (by default: the message on stderr).
fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.get() > 0 {
                let location = info
                    .location()
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "unknown".to_owned());
                CAUGHT_AT.set(Some(location));
            } else if rayon::current_thread_index().is_none() {
                previous(info);
            }
        }));
    });
}

/// The UTF-8 text of a Python `str` argument, with a `TypeError` naming the argument otherwise.
pub(crate) fn text_arg<'a>(
    obj: &'a Bound<'_, PyAny>,
    function: &str,
    argument: &str,
) -> PyResult<Cow<'a, str>> {
    let Ok(s) = obj.cast::<PyString>() else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{function}() argument '{argument}' must be str, not {}",
            type_name(obj)
        )));
    };
    str_utf8(s)
}

thread_local! {
    /// How many strings with lone surrogates `str_utf8` has repaired on this thread. A Hugging
    /// Face count must refuse such text instead (see `repairs_since`).
    static REPAIRED: Cell<u64> = const { Cell::new(0) };
    /// How many of them held a high surrogate right before a low one, which the repair joins
    /// into one character (see `paired_since`).
    static PAIRED: Cell<u64> = const { Cell::new(0) };
}

/// A mark to give `paired_since`.
pub(crate) fn paired_mark() -> u64 {
    PAIRED.with(Cell::get)
}

/// Whether `str_utf8` joined a surrogate pair on this thread since `mark`. LiteLLM counts a
/// message text in slices of 1,024 characters of the Python `str`, each repaired on its own by
/// tiktoken, where a surrogate is a character: a pair joined before slicing moves the slices'
/// boundaries, and one that a boundary splits becomes two U+FFFD. Only the Python path, which
/// slices the `str` itself, gives LiteLLM's number then (`FallbackNeeded`).
pub(crate) fn paired_since(mark: u64) -> bool {
    paired_mark() != mark
}

/// A mark to give `repairs_since`.
pub(crate) fn repairs_mark() -> u64 {
    REPAIRED.with(Cell::get)
}

/// Whether `str_utf8` repaired a string on this thread since `mark` (from `repairs_mark`).
pub(crate) fn repairs_since(mark: u64) -> bool {
    repairs_mark() != mark
}

/// The UTF-8 text of a `str`. One holding lone surrogates has no UTF-8 form; tiktoken then
/// counts `s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")` (each lone surrogate
/// becomes U+FFFD, a valid pair becomes its code point), and so do we.
pub(crate) fn str_utf8<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, str>> {
    match s.to_str() {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(_) => {
            REPAIRED.with(|repaired| repaired.set(repaired.get() + 1));
            // `str.encode` of the base type: a subclass's override is the caller's code, and the
            // text is what is counted.
            let py = s.py();
            let repaired = py
                .get_type::<PyString>()
                .call_method1("encode", (s, "utf-16", "surrogatepass"))?
                .call_method1("decode", ("utf-16", "replace"))?;
            let repaired = repaired.cast_into::<PyString>()?;
            // Code points as the `str` holds them (`PyUnicode_GetLength`; `len()` would call a
            // subclass's `__len__`): fewer after the repair means a pair was joined.
            // SAFETY: both are `str` objects, alive for the duration of the calls.
            let (before, after) = unsafe {
                (
                    pyo3::ffi::PyUnicode_GetLength(s.as_ptr()),
                    pyo3::ffi::PyUnicode_GetLength(repaired.as_ptr()),
                )
            };
            if after < before {
                PAIRED.with(|paired| paired.set(paired.get() + 1));
            }
            Ok(Cow::Owned(repaired.to_str()?.to_owned()))
        }
    }
}

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// Raises a panic inside the native module, to prove in tests that the error boundary turns it
/// into `NativeError` and that the module keeps working afterwards. Not part of the public API.
#[pyfunction]
fn _testing_panic(message: &str) -> PyResult<()> {
    guard("test hook", || panic!("{message}"))
}

/// Runs in a child process right after `fork()` (`fast_litellm._fork` registers it with
/// `os.register_at_fork`): the threads of the parent's I/O runtime and counting pool did not come
/// along, so the child gets its own.
#[pyfunction]
fn _after_fork() {
    crate::runtime::after_fork_in_child();
    crate::ratelimit::redis::after_fork_in_child();
    crate::tokens::after_fork_in_child();
    crate::metrics::after_fork_in_child();
    aio::after_fork_in_child();
    http_loop::after_fork_in_child();
}

/// Runs in the parent right before `fork()`: runtime threads finish what they are writing into
/// state that Python callers read (health-check answers) and start nothing more until
/// `_after_fork_in_parent`, so the child never gets a lock held by a thread it does not have.
/// The GIL stays held: the sections waited for are a few microseconds and never wait for it.
#[pyfunction]
fn _before_fork() {
    crate::runtime::before_fork();
}

/// Runs in the parent right after `fork()`, whether it worked or not.
#[pyfunction]
fn _after_fork_in_parent() {
    crate::runtime::after_fork_in_parent();
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    install_panic_hook();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Reported by `health_check()`, so a build that lost jemalloc shows.
    m.add("ALLOCATOR", crate::ALLOCATOR_NAME)?;
    m.add_function(wrap_pyfunction!(_testing_panic, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork, m)?)?;
    m.add_function(wrap_pyfunction!(_before_fork, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork_in_parent, m)?)?;
    let at_exit = wrap_pyfunction!(aio::_at_exit, m)?;
    m.py()
        .import("atexit")?
        .call_method1("register", (at_exit,))?;
    tokens::register(m)?;
    hf::register(m)?;
    request::register(m)?;
    ratelimit::register(m)?;
    ratelimit_redis::register(m)?;
    http::register(m)?;
    metrics::register(m)?;
    cache::register(m)?;
    routing::register(m)?;
    budget::register(m)?;
    cost::register(m)?;
    Ok(())
}
