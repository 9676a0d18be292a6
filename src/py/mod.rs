//! The PyO3 binding layer: type conversion, error mapping and GIL release. No algorithms here.

mod aio;
mod messages;
mod ratelimit;
mod ratelimit_redis;
mod tokens;

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;
use pyo3::types::PyString;

// The exception classes are defined in Python (`fast_litellm/errors.py`) so that the native path
// and the fallback raise exactly the same classes.
pyo3::import_exception!(fast_litellm.errors, NativeError);
pyo3::import_exception!(fast_litellm.errors, TokenizerUnavailableError);
pyo3::import_exception!(fast_litellm.errors, UnsupportedContentError);

/// Runs `f`, turning a Rust panic into `fast_litellm.errors.NativeError`.
///
/// PyO3 would otherwise raise `pyo3_runtime.PanicException`, which derives from `BaseException`
/// and escapes ordinary `except Exception` handlers, including the fallback dispatch. Nothing
/// behind the cores uses poisoning locks, so a panic leaves no broken state behind.
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".to_owned());
            Err(NativeError::new_err(format!(
                "internal error in native {what}: {detail}"
            )))
        }
    }
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

/// The UTF-8 text of a `str`. One holding lone surrogates has no UTF-8 form; tiktoken then
/// counts `s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")` (each lone surrogate
/// becomes U+FFFD, a valid pair becomes its code point), and so do we.
pub(crate) fn str_utf8<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, str>> {
    match s.to_str() {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(_) => {
            // `str.encode` of the base type: a subclass's override is the caller's code, and the
            // text is what is counted.
            let py = s.py();
            let repaired = py
                .get_type::<PyString>()
                .call_method1("encode", (s, "utf-16", "surrogatepass"))?
                .call_method1("decode", ("utf-16", "replace"))?;
            let repaired = repaired.cast_into::<PyString>()?;
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

/// Runs in a child process right after `fork()` (registered with `os.register_at_fork`): gives
/// the child its own I/O runtime instead of the parent's, whose threads did not come along.
#[pyfunction]
fn _after_fork() {
    crate::runtime::after_fork_in_child();
    aio::after_fork_in_child();
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(_testing_panic, m)?)?;
    let after_fork = wrap_pyfunction!(_after_fork, m)?;
    m.add_function(after_fork.clone())?;
    let os = m.py().import("os")?;
    // Not on Windows, which has no fork().
    if os.hasattr("register_at_fork")? {
        let kwargs = pyo3::types::PyDict::new(m.py());
        kwargs.set_item("after_in_child", after_fork)?;
        os.call_method("register_at_fork", (), Some(&kwargs))?;
    }
    tokens::register(m)?;
    ratelimit::register(m)?;
    ratelimit_redis::register(m)?;
    Ok(())
}
