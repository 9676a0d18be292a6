//! Bindings for `crate::http`: `fast_litellm._native.HttpClient` (the native engine of
//! `fast_litellm.http`), its streams, and the event-stream and retry helpers the fallback is
//! checked against.
//!
//! Sync calls block on the shared runtime with the GIL released; async calls return asyncio
//! futures completed from it (`super::aio::cancellable`: cancelling one stops the request).
//! Results cross as plain tuples; `fast_litellm.http` wraps them in the classes both engines
//! share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::aio::{awaitable, blocking, blocking_task, cancellable, get_running_loop};
use super::guard;
use crate::http::retry::{backoff_delay, parse_retry_after_seconds, RetryPolicy};
use crate::http::sse::{self, Event};
use crate::http::{
    BodyStream, Client, ClientConfig, Finished, Head, HttpError, Prepared, Ready, Timeouts,
};

pyo3::import_exception!(fast_litellm.errors, ConnectTimeout);
pyo3::import_exception!(fast_litellm.errors, ReadTimeout);
pyo3::import_exception!(fast_litellm.errors, WriteTimeout);
pyo3::import_exception!(fast_litellm.errors, PoolTimeout);
pyo3::import_exception!(fast_litellm.errors, ConnectError);
pyo3::import_exception!(fast_litellm.errors, RemoteProtocolError);
pyo3::import_exception!(fast_litellm.errors, ReadError);

impl From<HttpError> for PyErr {
    fn from(err: HttpError) -> PyErr {
        let message = err.to_string();
        match err {
            HttpError::InvalidUrl(_) | HttpError::InvalidRequest(_) => {
                PyValueError::new_err(message)
            }
            HttpError::ConnectTimeout(_) => ConnectTimeout::new_err(message),
            HttpError::ReadTimeout => ReadTimeout::new_err(message),
            HttpError::WriteTimeout => WriteTimeout::new_err(message),
            HttpError::PoolTimeout(_) => PoolTimeout::new_err(message),
            HttpError::Connect { .. } => ConnectError::new_err(message),
            HttpError::Protocol(_) => RemoteProtocolError::new_err(message),
            HttpError::Reset(_) => ReadError::new_err(message),
            // What httpx raises for a closed client, so code written for either catches it.
            HttpError::Closed | HttpError::Forked => {
                pyo3::exceptions::PyRuntimeError::new_err(message)
            }
        }
    }
}

const WHAT: &str = "HTTP client";

fn seconds(name: &str, value: Option<f64>) -> PyResult<Option<Duration>> {
    match value {
        None => Ok(None),
        Some(v) if v.is_finite() && v > 0.0 && v <= 1e9 => Ok(Some(Duration::from_secs_f64(v))),
        Some(v) => Err(PyValueError::new_err(format!(
            "{name} must be a positive number of seconds, at most 1e9 (None for no limit), got {v}"
        ))),
    }
}

/// Request headers from `(name, value)` pairs of `str` or `bytes` (httpx keeps them as bytes,
/// which pass unchanged; a `str` is sent as its UTF-8 bytes).
fn header_pairs(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(HeaderName, HeaderValue)>> {
    let pairs: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = headers.extract().map_err(|_| {
        PyTypeError::new_err("headers must be a list of (name, value) pairs of str or bytes")
    })?;
    pairs
        .into_iter()
        .map(|(name, value)| {
            let header = HeaderName::from_bytes(header_bytes(&name)?).map_err(|_| {
                PyValueError::new_err(format!("invalid header name {}", repr_of(&name)))
            })?;
            let value_bytes = header_bytes(&value)?;
            let value_ = HeaderValue::from_bytes(value_bytes).map_err(|_| {
                PyValueError::new_err(format!(
                    "invalid value for header {}: {} (control characters are not allowed)",
                    repr_of(&name),
                    repr_of(&value)
                ))
            })?;
            Ok((header, value_))
        })
        .collect()
}

fn repr_of(item: &Bound<'_, PyAny>) -> String {
    item.repr().map(|r| r.to_string()).unwrap_or_default()
}

fn header_bytes<'a>(item: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    if let Ok(bytes) = item.cast::<PyBytes>() {
        return Ok(bytes.as_bytes());
    }
    if let Ok(text) = item.cast::<PyString>() {
        return Ok(text.to_str()?.as_bytes());
    }
    Err(PyTypeError::new_err(format!(
        "header names and values must be str or bytes, not {}",
        item.get_type().name()?
    )))
}

type TimeoutArg = Option<(Option<f64>, Option<f64>, Option<f64>, Option<f64>)>;

fn timeouts_arg(timeout: TimeoutArg) -> PyResult<Option<Timeouts>> {
    timeout
        .map(|(connect, read, write, pool)| {
            Ok(Timeouts {
                connect: seconds("connect", connect)?,
                read: seconds("read", read)?,
                write: seconds("write", write)?,
                pool: seconds("pool", pool)?,
            })
        })
        .transpose()
}

/// The response headers as `str` pairs. A value is read as UTF-8 when its bytes are UTF-8 and as
/// Latin-1 (one character per byte) otherwise, as httpx reads them: nothing is lost or replaced.
fn head_items<'py>(py: Python<'py>, head: &Head) -> PyResult<Bound<'py, PyList>> {
    let pairs = head
        .headers
        .iter()
        .map(|(name, value)| {
            let bytes = value.as_bytes();
            let text = match std::str::from_utf8(bytes) {
                Ok(text) => std::borrow::Cow::Borrowed(text),
                Err(_) => std::borrow::Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
            };
            PyTuple::new(py, [name.as_str(), &text])
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, pairs)
}

/// The response headers as the `bytes` pairs received (what an httpx response holds).
fn head_raw_items<'py>(py: Python<'py>, head: &Head) -> PyResult<Bound<'py, PyList>> {
    let pairs = head
        .headers
        .iter()
        .map(|(name, value)| {
            PyTuple::new(
                py,
                [
                    PyBytes::new(py, name.as_str().as_bytes()),
                    PyBytes::new(py, value.as_bytes()),
                ],
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, pairs)
}

fn finished_object(py: Python<'_>, finished: Finished) -> PyResult<Py<PyAny>> {
    let head = &finished.head;
    let tuple = (
        head.status,
        head_items(py, head)?,
        PyBytes::new(py, &finished.body),
        finished.elapsed.as_secs_f64(),
        head.retries,
        head.url.as_str(),
        head.http_version,
    );
    Ok(tuple.into_pyobject(py)?.into_any().unbind())
}

fn events_object(py: Python<'_>, events: Option<Vec<Event>>) -> PyResult<Py<PyAny>> {
    let Some(events) = events else {
        return Ok(py.None());
    };
    let items = events
        .into_iter()
        .map(|e| (e.event, e.data, e.id, e.retry).into_pyobject(py))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, items)?.into_any().unbind())
}

fn chunk_object(py: Python<'_>, chunk: Option<Bytes>) -> PyResult<Py<PyAny>> {
    Ok(match chunk {
        Some(chunk) => PyBytes::new(py, &chunk).into_any().unbind(),
        None => py.None(),
    })
}

/// What `HttpClient.send` answers: the open response, its whole body when it came with the
/// headers, and the seconds from sending to then.
struct Exchange {
    stream: BodyStream,
    whole: Option<Bytes>,
    elapsed: Duration,
}

async fn exchange(client: &Client, prepared: Prepared) -> Result<Exchange, HttpError> {
    let started = std::time::Instant::now();
    let mut stream = client.open_stream(prepared, true).await?;
    let whole = stream.take_whole();
    Ok(Exchange {
        stream,
        whole,
        elapsed: started.elapsed(),
    })
}

fn exchange_object(py: Python<'_>, exchange: Exchange, on_loop: bool) -> PyResult<Py<PyAny>> {
    let Exchange {
        mut stream,
        whole,
        elapsed,
    } = exchange;
    let head = std::mem::take(&mut stream.head);
    let (status, http_version) = (head.status, head.http_version);
    let headers = head_raw_items(py, &head)?;
    let reason = head.reason.as_ref().map(|reason| PyBytes::new(py, reason));
    let (content, stream) = match whole {
        // The body is all in; dropping the stream here leaves its connection in the pool.
        Some(body) => (PyBytes::new(py, &body).into_any(), py.None().into_bound(py)),
        None => (
            py.None().into_bound(py),
            Bound::new(py, PyHttpStream::with_head(head, stream, on_loop))?.into_any(),
        ),
    };
    let http_version = PyBytes::new(py, http_version.as_bytes());
    let answer = (
        status,
        headers,
        http_version,
        content,
        stream,
        elapsed.as_secs_f64(),
        reason,
    );
    Ok(answer.into_pyobject(py)?.into_any().unbind())
}

/// The native engine of one `AsyncClient`/`Client`.
#[pyclass(module = "fast_litellm._native", name = "HttpClient", frozen, weakref)]
pub(crate) struct PyHttpClient {
    inner: Arc<Client>,
    /// Whether asyncio callers' HTTP/1.1 requests may run on their loop's engine (see
    /// `crate::http::local`): `FAST_LITELLM_HTTP_LOOP_ENGINE` when the client was made.
    loop_engine: bool,
    /// Asyncio requests handed to an engine and not yet answered. Counted here, when they are
    /// sent, not by the client's `in_flight`, which a request on the runtime joins only once a
    /// runtime thread has picked it up: a burst sent in one turn of the loop would all look
    /// alone.
    sending: Arc<AtomicU64>,
}

/// One asyncio request counted in `PyHttpClient::sending` until it is answered or dropped.
struct Sending(Arc<AtomicU64>);

impl Sending {
    fn new(counter: &Arc<AtomicU64>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Sending(Arc::clone(counter))
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PyHttpClient {
    /// Whether the asyncio request being sent goes to its loop's engine (see
    /// `LOOP_ENGINE_MAX_IN_FLIGHT`).
    fn on_loop(&self) -> bool {
        self.loop_engine && self.sending.load(Ordering::Relaxed) < LOOP_ENGINE_MAX_IN_FLIGHT
    }

    /// `future`, counted in `sending` while it runs.
    fn counted<F: std::future::Future>(
        &self,
        future: F,
    ) -> impl std::future::Future<Output = F::Output> {
        let sending = Sending::new(&self.sending);
        async move {
            let _sending = sending;
            future.await
        }
    }
}

/// `FAST_LITELLM_HTTP_LOOP_ENGINE`: `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`.
fn loop_engine_enabled() -> PyResult<bool> {
    let Ok(value) = std::env::var("FAST_LITELLM_HTTP_LOOP_ENGINE") else {
        return Ok(LOOP_ENGINE_DEFAULT);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "" => Ok(LOOP_ENGINE_DEFAULT),
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(PyValueError::new_err(format!(
            "FAST_LITELLM_HTTP_LOOP_ENGINE must be 1/true/yes/on or 0/false/no/off, got {value:?}"
        ))),
    }
}

const LOOP_ENGINE_DEFAULT: bool = true;

/// Asyncio requests of one client being sent (`PyHttpClient::sending`) below which the next goes
/// to its loop's engine.
///
/// Few in flight, the loop engine spends the least CPU: it saves the two thread hand-overs a
/// request costs on the runtime, and the loop thread would sleep meanwhile anyway (CPU per
/// request, `AsyncClient.post` against the mock server, measured in one run: 51 µs against 67
/// with one in flight, 26 against 35 with 4, 22–23 against 29–33 with 8, 26 against 24.5 with
/// 16). Many in flight, the loop thread is the busy one, and the runtime takes the HTTP work off
/// it, onto another core, where its thread hand-overs are shared by many requests.
const LOOP_ENGINE_MAX_IN_FLIGHT: u64 = 8;

/// The asyncio future of `future`: on the caller's loop engine when `on_loop` and its loop has
/// one, else on the runtime (`aio::cancellable`).
fn submit<'py, T, F, C>(
    py: Python<'py>,
    on_loop: bool,
    future: F,
    convert: C,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    F: std::future::Future<Output = PyResult<T>> + Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    if on_loop {
        let event_loop = get_running_loop(py)?;
        if let Some(engine) = super::http_loop::engine_for(py, &event_loop) {
            return super::http_loop::spawn(py, WHAT, &engine, &event_loop, future, convert);
        }
    }
    cancellable(py, WHAT, future, convert)
}

#[pymethods]
impl PyHttpClient {
    #[new]
    #[pyo3(signature = (
        *, base_url=None, headers=None, max_connections=100, max_keepalive_connections=20,
        keepalive_expiry=300.0, stream_buffer_size=65536, connect_timeout=Some(10.0),
        read_timeout=Some(60.0), write_timeout=Some(10.0), pool_timeout=Some(10.0),
        max_retries=2, retry_on_status=None, backoff_base=0.5, backoff_max=30.0,
        respect_retry_after=true, max_concurrency=None, adaptive_concurrency=false,
        http2=false, gzip_threshold=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        base_url: Option<String>,
        headers: Option<&Bound<'_, PyAny>>,
        max_connections: usize,
        max_keepalive_connections: usize,
        keepalive_expiry: f64,
        stream_buffer_size: usize,
        connect_timeout: Option<f64>,
        read_timeout: Option<f64>,
        write_timeout: Option<f64>,
        pool_timeout: Option<f64>,
        max_retries: u32,
        retry_on_status: Option<Vec<u16>>,
        backoff_base: f64,
        backoff_max: f64,
        respect_retry_after: bool,
        max_concurrency: Option<usize>,
        adaptive_concurrency: bool,
        http2: bool,
        gzip_threshold: Option<usize>,
    ) -> PyResult<Self> {
        if max_connections == 0 || stream_buffer_size == 0 || max_concurrency == Some(0) {
            return Err(PyValueError::new_err(
                "max_connections, stream_buffer_size and max_concurrency must be at least 1",
            ));
        }
        let non_negative = |name: &str, v: f64| {
            if v.is_finite() && (0.0..=1e9).contains(&v) {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(PyValueError::new_err(format!(
                    "{name} must be a finite number of seconds >= 0, got {v}"
                )))
            }
        };
        let config = ClientConfig {
            base_url,
            headers: match headers {
                Some(headers) => header_pairs(headers)?,
                None => Vec::new(),
            },
            max_connections,
            max_keepalive_connections,
            keepalive_expiry: non_negative("keepalive_expiry", keepalive_expiry)?,
            stream_buffer_size,
            timeouts: Timeouts {
                connect: seconds("connect_timeout", connect_timeout)?,
                read: seconds("read_timeout", read_timeout)?,
                write: seconds("write_timeout", write_timeout)?,
                pool: seconds("pool_timeout", pool_timeout)?,
            },
            retry: RetryPolicy {
                max_retries,
                retry_on_status: retry_on_status
                    .unwrap_or_else(|| RetryPolicy::default().retry_on_status),
                backoff_base: non_negative("backoff_base", backoff_base)?,
                backoff_max: non_negative("backoff_max", backoff_max)?,
                respect_retry_after,
            },
            max_concurrency,
            adaptive_concurrency,
            http2,
            gzip_threshold,
        };
        let loop_engine = loop_engine_enabled()? && !config.http2;
        let inner = guard(WHAT, || Ok(Client::new(config)?))?;
        Ok(Self {
            inner: Arc::new(inner),
            loop_engine,
            sending: Arc::default(),
        })
    }

    /// Sends a request and reads the whole response: `(status, headers, content, elapsed,
    /// retries, url, http_version)`.
    #[pyo3(signature = (method, url, headers, body=None, timeout=None))]
    fn request(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: &Bound<'_, PyAny>,
        body: Option<&Bound<'_, PyBytes>>,
        timeout: TimeoutArg,
    ) -> PyResult<Py<PyAny>> {
        let prepared = self.prepare(method, url, headers, body, timeout)?;
        let inner = Arc::clone(&self.inner);
        let finished = blocking_task(
            py,
            WHAT,
            async move { inner.fetch(prepared).await?.decoded() },
        )?;
        finished_object(py, finished)
    }

    /// `request` as an awaitable.
    #[pyo3(signature = (method, url, headers, body=None, timeout=None))]
    fn arequest<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        url: &str,
        headers: &Bound<'_, PyAny>,
        body: Option<&Bound<'_, PyBytes>>,
        timeout: TimeoutArg,
    ) -> PyResult<Bound<'py, PyAny>> {
        let prepared = self.prepare(method, url, headers, body, timeout)?;
        let inner = Arc::clone(&self.inner);
        let fetch = async move { Ok(inner.fetch(prepared).await?.decoded()?) };
        submit(py, self.on_loop(), self.counted(fetch), finished_object)
    }

    /// Sends a request and returns once its headers are in; the body is read from the stream.
    #[pyo3(signature = (method, url, headers, body=None, timeout=None))]
    fn stream(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: &Bound<'_, PyAny>,
        body: Option<&Bound<'_, PyBytes>>,
        timeout: TimeoutArg,
    ) -> PyResult<PyHttpStream> {
        let prepared = self.prepare(method, url, headers, body, timeout)?;
        let inner = Arc::clone(&self.inner);
        let stream = blocking_task(py, WHAT, async move {
            let mut stream = inner.open_stream(prepared, false).await?;
            stream.decode_content();
            Ok::<_, HttpError>(stream)
        })?;
        Ok(PyHttpStream::new(stream, false))
    }

    /// `stream` as an awaitable.
    #[pyo3(signature = (method, url, headers, body=None, timeout=None))]
    fn astream<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        url: &str,
        headers: &Bound<'_, PyAny>,
        body: Option<&Bound<'_, PyBytes>>,
        timeout: TimeoutArg,
    ) -> PyResult<Bound<'py, PyAny>> {
        let prepared = self.prepare(method, url, headers, body, timeout)?;
        let inner = Arc::clone(&self.inner);
        let open = async move {
            let mut stream = inner.open_stream(prepared, false).await?;
            stream.decode_content();
            Ok(stream)
        };
        let on_loop = self.on_loop();
        submit(py, on_loop, self.counted(open), move |py, stream| {
            Ok(Py::new(py, PyHttpStream::new(stream, on_loop))?.into_any())
        })
    }

    /// For the httpx transports: sends a request and returns `(status, headers, http_version,
    /// content, stream, elapsed, reason_phrase)` once its headers are in, in httpx's terms: the
    /// headers as `(bytes, bytes)` pairs as received, the version as bytes (`b"HTTP/1.1"`), the
    /// reason phrase as bytes (`None` over HTTP/2). A body of known length that fits the stream
    /// buffer is read in first and comes whole as `content` (`stream` is `None`); any other body
    /// is read from `stream` (`content` is `None`). `elapsed`: seconds from sending to this
    /// answer.
    #[pyo3(signature = (method, url, headers, body=None, timeout=None))]
    fn send(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: &Bound<'_, PyAny>,
        body: Option<&Bound<'_, PyBytes>>,
        timeout: TimeoutArg,
    ) -> PyResult<Py<PyAny>> {
        let prepared = self.prepare(method, url, headers, body, timeout)?;
        let inner = Arc::clone(&self.inner);
        let exchange = blocking_task(py, WHAT, async move { exchange(&inner, prepared).await })?;
        exchange_object(py, exchange, false)
    }

    /// `send` as an awaitable.
    #[pyo3(signature = (method, url, headers, body=None, timeout=None))]
    fn asend<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        url: &str,
        headers: &Bound<'_, PyAny>,
        body: Option<&Bound<'_, PyBytes>>,
        timeout: TimeoutArg,
    ) -> PyResult<Bound<'py, PyAny>> {
        let prepared = self.prepare(method, url, headers, body, timeout)?;
        let inner = Arc::clone(&self.inner);
        let send = async move { Ok(exchange(&inner, prepared).await?) };
        // The httpx transports stay on the runtime: httpx's own work per request is several
        // times the HTTP work, so few requests are ever being sent at this level while the
        // loop thread is busy with httpx, and the runtime's thread takes the HTTP work off it
        // (CPU per request through httpx at 64 in flight, one run: 95–97 µs on the runtime
        // against 102–110 with the loop engine below 8 being sent).
        let on_loop = false;
        submit(py, on_loop, self.counted(send), move |py, exchange| {
            exchange_object(py, exchange, on_loop)
        })
    }

    /// The pool statistics of this client (see `fast_litellm.http.AsyncClient.pool_stats`).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        use std::sync::atomic::Ordering::Relaxed;
        let client = &self.inner;
        let stats = client.stats();
        let open = client.open_by_host();
        let dict = PyDict::new(py);
        dict.set_item("native", true)?;
        dict.set_item(
            "active_connections",
            open.iter().map(|(_, o)| o.active).sum::<usize>(),
        )?;
        dict.set_item(
            "idle_connections",
            open.iter().map(|(_, o)| o.idle).sum::<usize>(),
        )?;
        dict.set_item("in_flight", stats.in_flight.load(Relaxed))?;
        dict.set_item("loop_engines", client.loop_engines())?;
        dict.set_item("requests", stats.requests.load(Relaxed))?;
        dict.set_item("retries", stats.retries.load(Relaxed))?;
        dict.set_item("connections_opened", stats.connections_opened.load(Relaxed))?;
        dict.set_item("connections_reused", stats.connections_reused.load(Relaxed))?;
        dict.set_item("connections_closed", stats.connections_closed.load(Relaxed))?;
        let errors = PyDict::new(py);
        for (kind, count) in stats.errors() {
            errors.set_item(kind, count)?;
        }
        dict.set_item("errors", errors)?;
        dict.set_item("max_connections", client.config().max_connections)?;
        dict.set_item("concurrency_limit", client.concurrency_limit())?;
        let wait = stats.pool_wait();
        let pool_wait = PyDict::new(py);
        pool_wait.set_item("count", wait.count)?;
        pool_wait.set_item("p50", wait.p50_ms)?;
        pool_wait.set_item("p95", wait.p95_ms)?;
        pool_wait.set_item("p99", wait.p99_ms)?;
        pool_wait.set_item("max", wait.max_ms)?;
        dict.set_item("pool_wait_ms", pool_wait)?;
        let hosts = PyDict::new(py);
        for host in stats.hosts() {
            let entry = PyDict::new(py);
            let now = open
                .iter()
                .find(|(key, _)| *key == host.key)
                .map(|(_, o)| *o)
                .unwrap_or_default();
            entry.set_item("active_connections", now.active)?;
            entry.set_item("idle_connections", now.idle)?;
            entry.set_item("requests", host.requests.load(Relaxed))?;
            entry.set_item("connections_opened", host.connections_opened.load(Relaxed))?;
            hosts.set_item(&host.key, entry)?;
        }
        dict.set_item("hosts", hosts)?;
        Ok(dict)
    }

    /// Closes idle connections past `keepalive_expiry`; how many.
    fn cleanup_expired(&self) -> usize {
        self.inner.cleanup_expired()
    }

    /// Closes the pool (idempotent); requests after it raise `HTTPError`.
    fn close(&self) {
        self.inner.close();
    }

    /// `close` as an awaitable (the fallback's httpx client closes asynchronously).
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.inner.close();
        awaitable(py, WHAT, async { Ok(()) }, |py, ()| Ok(py.None()))
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn __repr__(&self) -> String {
        let base = self
            .inner
            .config()
            .base_url
            .as_deref()
            .unwrap_or("no base URL");
        format!("<HttpClient {base}>")
    }
}

impl PyHttpClient {
    fn prepare(
        &self,
        method: &str,
        url: &str,
        headers: &Bound<'_, PyAny>,
        body: Option<&Bound<'_, PyBytes>>,
        timeout: TimeoutArg,
    ) -> PyResult<Prepared> {
        let headers = header_pairs(headers)?;
        let body = body.map(|b| Bytes::copy_from_slice(b.as_bytes()));
        let timeouts = timeouts_arg(timeout)?;
        Ok(self.inner.prepare(method, url, &headers, body, timeouts)?)
    }
}

/// Times of a stream, copied out after each read (its body is behind an async lock).
#[derive(Default, Clone, Copy)]
struct StreamTimes {
    first_byte: Option<f64>,
    first_event: Option<f64>,
}

/// An open response of `HttpClient.stream` / `astream`.
#[pyclass(module = "fast_litellm._native", name = "HttpStream", frozen)]
pub(crate) struct PyHttpStream {
    head: Head,
    body: Arc<tokio::sync::Mutex<BodyStream>>,
    times: Arc<parking_lot::Mutex<StreamTimes>>,
    /// Opened on a loop engine: its body is read there too.
    on_loop: bool,
}

impl PyHttpStream {
    fn new(mut stream: BodyStream, on_loop: bool) -> Self {
        let head = std::mem::take(&mut stream.head);
        Self::with_head(head, stream, on_loop)
    }

    fn with_head(head: Head, stream: BodyStream, on_loop: bool) -> Self {
        Self {
            head,
            body: Arc::new(tokio::sync::Mutex::new(stream)),
            times: Arc::default(),
            on_loop,
        }
    }

    fn note_times(times: &parking_lot::Mutex<StreamTimes>, stream: &BodyStream) {
        let mut t = times.lock();
        t.first_byte = stream.time_to_first_byte.map(|d| d.as_secs_f64());
        t.first_event = stream.time_to_first_event.map(|d| d.as_secs_f64());
    }
}

#[pymethods]
impl PyHttpStream {
    #[getter]
    fn status_code(&self) -> u16 {
        self.head.status
    }

    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        head_items(py, &self.head)
    }

    /// The headers as received, `(name, value)` pairs of `bytes`.
    #[getter]
    fn raw_headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        head_raw_items(py, &self.head)
    }

    #[getter]
    fn url(&self) -> &str {
        &self.head.url
    }

    #[getter]
    fn http_version(&self) -> &'static str {
        self.head.http_version
    }

    #[getter]
    fn retries(&self) -> u32 {
        self.head.retries
    }

    #[getter]
    fn elapsed(&self) -> f64 {
        self.head.elapsed.as_secs_f64()
    }

    #[getter]
    fn time_to_first_byte(&self) -> Option<f64> {
        self.times.lock().first_byte
    }

    #[getter]
    fn time_to_first_event(&self) -> Option<f64> {
        self.times.lock().first_event
    }

    /// The next pieces of the body (`bytes`), or `None` at the end.
    fn read_chunk(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (body, times) = (&self.body, &self.times);
        let chunk = blocking(py, WHAT, async {
            let mut stream = body.lock().await;
            let chunk = stream.next_chunk().await;
            Self::note_times(times, &stream);
            chunk
        })?;
        chunk_object(py, chunk)
    }

    fn aread_chunk<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (body, times) = (Arc::clone(&self.body), Arc::clone(&self.times));
        let read = async move {
            let mut stream = body.lock().await;
            let chunk = stream.next_chunk().await;
            Self::note_times(&times, &stream);
            Ok(chunk?)
        };
        submit(py, self.on_loop, read, chunk_object)
    }

    /// The next events (`[(event, data, id, retry), ...]`), or `None` at the end.
    fn read_events(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (body, times) = (&self.body, &self.times);
        let events = blocking(py, WHAT, async {
            let mut stream = body.lock().await;
            let events = stream.next_events().await;
            Self::note_times(times, &stream);
            events
        })?;
        events_object(py, events)
    }

    fn aread_events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (body, times) = (Arc::clone(&self.body), Arc::clone(&self.times));
        let read = async move {
            let mut stream = body.lock().await;
            let events = stream.next_events().await;
            Self::note_times(&times, &stream);
            Ok(events?)
        };
        submit(py, self.on_loop, read, events_object)
    }

    /// What is buffered now, without waiting: `bytes`, `b""` when nothing has arrived yet (or a
    /// read is in progress elsewhere), `None` at the end.
    fn try_read_chunk(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let Ok(mut stream) = self.body.try_lock() else {
            return Ok(PyBytes::new(py, b"").into_any().unbind());
        };
        let ready = stream.try_chunk();
        Self::note_times(&self.times, &stream);
        drop(stream);
        match ready? {
            Ready::Data(chunk) => chunk_object(py, Some(chunk)),
            Ready::Empty => Ok(PyBytes::new(py, b"").into_any().unbind()),
            Ready::End => Ok(py.None()),
        }
    }

    /// Whether the whole body has been taken (`False` while a read is in progress elsewhere).
    #[getter]
    fn at_end(&self) -> bool {
        self.body.try_lock().is_ok_and(|stream| stream.at_end())
    }

    /// The events complete in what is buffered now, without waiting: a list (empty when none
    /// yet), `None` at the end.
    fn try_read_events(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let Ok(mut stream) = self.body.try_lock() else {
            return events_object(py, Some(Vec::new()));
        };
        let ready = stream.try_events();
        Self::note_times(&self.times, &stream);
        drop(stream);
        match ready? {
            Ready::Data(events) => events_object(py, Some(events)),
            Ready::Empty => events_object(py, Some(Vec::new())),
            Ready::End => Ok(py.None()),
        }
    }

    /// Stops reading (idempotent): the connection is dropped unless the body was read to its end.
    fn close(&self) {
        match self.body.try_lock() {
            Ok(mut stream) => stream.close(),
            Err(_) => {
                // A read is in progress (another thread, or a cancelled task not yet unwound):
                // close once it lets go.
                let body = Arc::clone(&self.body);
                crate::runtime::runtime().spawn(async move { body.lock().await.close() });
            }
        }
    }

    fn __repr__(&self) -> String {
        format!("<HttpStream [{}]>", self.head.status)
    }
}

/// Decodes a whole `text/event-stream` body: `[(event, data, id, retry), ...]`.
#[pyfunction]
fn parse_sse(py: Python<'_>, body: &[u8]) -> PyResult<Py<PyAny>> {
    events_object(py, Some(sse::parse(body)))
}

/// The incremental event-stream decoder (`feed` pieces, then `finish`).
#[pyclass(module = "fast_litellm._native", name = "SseDecoder")]
pub(crate) struct PySseDecoder {
    inner: sse::SseDecoder,
}

#[pymethods]
impl PySseDecoder {
    #[new]
    fn new() -> Self {
        Self {
            inner: sse::SseDecoder::new(),
        }
    }

    fn feed(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
        let events = self
            .inner
            .feed(data)
            .map_err(|e| PyErr::from(HttpError::Protocol(e.to_string())))?;
        events_object(py, Some(events))
    }

    fn finish(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        events_object(py, Some(self.inner.finish()))
    }
}

/// A `Retry-After` value as seconds to wait from `now` (Unix seconds), or `None`.
#[pyfunction(name = "parse_retry_after")]
fn py_parse_retry_after(value: &str, now: f64) -> Option<f64> {
    parse_retry_after_seconds(value, now)
}

/// The jittered backoff before retry `attempt` (see `crate::http::retry::backoff_delay`).
#[pyfunction(name = "backoff_delay")]
fn py_backoff_delay(attempt: u32, base: f64, cap: f64, rand: f64) -> f64 {
    backoff_delay(attempt, base, cap, rand)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyHttpClient>()?;
    m.add_class::<PyHttpStream>()?;
    m.add_class::<PySseDecoder>()?;
    m.add_function(wrap_pyfunction!(parse_sse, m)?)?;
    m.add_function(wrap_pyfunction!(py_parse_retry_after, m)?)?;
    m.add_function(wrap_pyfunction!(py_backoff_delay, m)?)?;
    Ok(())
}
