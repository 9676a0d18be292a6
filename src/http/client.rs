//! The client: hyper-util's pooled client on the shared runtime, behind our gate, with retries.
//!
//! A client's pool is bound to the runtime it was built on (its connections are tasks there).
//! A child process made by `fork()` gets a new runtime (`crate::runtime`), so the client builds a
//! new pool there on its next request and leaks the parent's: dropping it would touch locks and
//! sockets that belong to the parent. The gate belongs to the pool too: places held by the
//! parent's requests at the moment of the fork would never come back in the child.
//!
//! No lock guards the current pool: `fork()` may happen while a runtime thread of the parent is
//! looking the pool up, and a lock held then would be held for ever in the child, whose first
//! request would wait on it. `arc-swap` (lock-free reads and compare-and-swap publication)
//! keeps nothing held that a thread missing from the child could own.

use std::borrow::Cow;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, RETRY_AFTER};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioTimer;
use parking_lot::Mutex;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use super::conn::{
    proxies_from_env, ConnHandle, Connector, Dial, IoTimeouts, Registry, TrackingConnector,
    REQUEST_CONNECT_TIMEOUT,
};
use super::decode::ContentDecoder;
use super::error::{find_timeout, is_reset, root_message, HttpError, IoTimeout};
use super::limit::{Gate, Permit};
use super::local::{Engine, LocalConnector};
use super::retry::RetryPolicy;
use super::rt::{Exec, Timer};
use super::sse::{Event, SseDecoder};
use super::stats::Stats;
use super::upload::Upload;
use hyper_util::client::proxy::matcher::Matcher;

type Hyper = hyper_util::client::legacy::Client<Connector, Upload>;

/// The limits of each phase of a request; `None` is no limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    pub connect: Option<Duration>,
    pub read: Option<Duration>,
    pub write: Option<Duration>,
    pub pool: Option<Duration>,
}

/// Everything a client is built from (the Python options, checked).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: Option<String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub max_connections: usize,
    /// Idle connections kept per host.
    pub max_keepalive_connections: usize,
    pub keepalive_expiry: Duration,
    pub stream_buffer_size: usize,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub max_concurrency: Option<usize>,
    pub adaptive_concurrency: bool,
    pub http2: bool,
    pub gzip_threshold: Option<usize>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            headers: Vec::new(),
            max_connections: 100,
            max_keepalive_connections: 20,
            keepalive_expiry: Duration::from_secs(300),
            stream_buffer_size: 65536,
            timeouts: Timeouts {
                connect: Some(Duration::from_secs(10)),
                read: Some(Duration::from_secs(60)),
                write: Some(Duration::from_secs(10)),
                pool: Some(Duration::from_secs(10)),
            },
            retry: RetryPolicy::default(),
            max_concurrency: None,
            adaptive_concurrency: false,
            http2: false,
            gzip_threshold: None,
        }
    }
}

/// What the pools of one client share (the runtime's and the loop engines').
struct Shared {
    generation: u64,
    /// Built once per runtime pool: the roots and `SSL_CERT_*` files are read when the
    /// client's pool is built, as before, not again for each loop.
    tls: Arc<rustls::ClientConfig>,
    gate: Arc<Gate>,
    registry: Arc<Registry>,
    stats: Arc<Stats>,
    proxies: Option<Arc<Matcher>>,
}

/// One pool: hyper's client and the registry of its connections.
struct Pool {
    /// The runtime generation it was built on.
    generation: u64,
    hyper: Hyper,
    /// For requests with a read limit of their own: connections without the client's per-read
    /// limit, which would otherwise cut a request allowed to wait longer (a health check of 20 s
    /// on a client of 5 s, LiteLLM's 600 s through a transport of 60 s). Those requests are
    /// bounded by their own limit instead (`send`, `next_frame`), as httpx bounds them.
    hyper_own_read: Hyper,
    /// Admission: `max_connections` and `max_concurrency` (adaptive or not).
    gate: Arc<Gate>,
    registry: Arc<Registry>,
    /// The counters of this pool: a forked child counts its own requests from zero.
    stats: Arc<Stats>,
    /// The proxies of the environment when the pool was built.
    proxies: Option<Arc<Matcher>>,
    tls: Arc<rustls::ClientConfig>,
}

pub struct Client {
    config: ClientConfig,
    base: Option<Uri>,
    default_headers: HeaderMap,
    /// The counters of the first pool (shown before it is built).
    first_stats: Arc<Stats>,
    pool: ArcSwapOption<Pool>,
    /// The pools of the loop engines that sent requests (see `local`): each shares the gate,
    /// the connection registry and the counters of `pool`, and holds its own connections.
    /// Copied on write, without a lock a fork could strand.
    local_pools: arc_swap::ArcSwap<Vec<(Arc<Engine>, Arc<Pool>)>>,
    /// What the stats still show of the pool `close` let go of.
    closed_pool: ArcSwapOption<ClosedPool>,
    closed: AtomicBool,
}

/// A closed pool's counters, and the registry of its connections: those busy when it was
/// closed stay open (and counted active) until their response is over.
struct ClosedPool {
    generation: u64,
    stats: Arc<Stats>,
    registry: Arc<Registry>,
}

/// A request ready to send: the URL resolved, the headers checked.
pub struct Prepared {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Per-request limits that replace the client's (pool and read; see `Client::send`).
    pub timeouts: Option<Timeouts>,
}

/// The status line and headers of a response.
#[derive(Debug, Clone, Default)]
pub struct Head {
    pub status: u16,
    /// Names (lower case) and values as received: a value may hold any byte but controls.
    /// Hyper's own map, moved out of the response (no copy per header).
    pub headers: HeaderMap,
    pub url: String,
    pub http_version: &'static str,
    /// The reason phrase of an HTTP/1 status line as received (`None` over HTTP/2, which has
    /// none).
    pub reason: Option<Bytes>,
    pub retries: u32,
    /// From sending the first attempt to these headers.
    pub elapsed: Duration,
}

/// A response read to its end.
pub struct Finished {
    pub head: Head,
    pub body: Bytes,
    /// From sending the first attempt to the last byte.
    pub elapsed: Duration,
}

impl Finished {
    /// The body with its `Content-Encoding` undone, as the client's own API (not the httpx
    /// transports) hands it over.
    pub fn decoded(mut self) -> Result<Finished, HttpError> {
        if let Some(decoder) = ContentDecoder::for_headers(&self.head.headers) {
            self.body = decoder.decode_all(&self.body)?;
        }
        Ok(self)
    }
}

/// Decrements `in_flight` when the request is over, however it ends.
struct InFlight(Arc<Stats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What holds a connection while its body is read.
struct Hold {
    _permit: Permit,
    _in_flight: Option<InFlight>,
    conn: Option<(ConnHandle, u64)>,
}

impl Hold {
    /// The response is read: its connection is idle again (returned, to settle on).
    fn release(&mut self) -> Option<ConnHandle> {
        let (handle, period) = self.conn.take()?;
        handle.0.release(period);
        Some(handle)
    }
}

/// An open response body, read piece by piece.
///
/// A task of the runtime (the pump) reads the body as it arrives into a buffer of up to
/// `stream_buffer_size` bytes; the caller takes everything buffered at once. So however the
/// server splits its writes, Python is woken only when it asks and something is there, and a
/// burst of events is one hand-over, not one per event. The pump stops when the buffer is full
/// (back-pressure on the server) and is aborted when the stream is closed or dropped.
pub struct BodyStream {
    pub head: Head,
    shared: Arc<Pumped>,
    pump: Option<futures_util::future::AbortHandle>,
    decoder: SseDecoder,
    started: Instant,
    pub time_to_first_byte: Option<Duration>,
    pub time_to_first_event: Option<Duration>,
    /// An error that arrived after data the caller had not taken yet: raised on the next call.
    pending_error: Option<HttpError>,
    ended: bool,
    /// The connection and busy period of this response, released when the stream is closed
    /// early: hyper then either closes the connection or, when the rest of the body had
    /// already arrived, keeps it for the next request.
    conn: Option<(ConnHandle, u64)>,
    /// The runtime generation whose pump fills it: in a child forked since, nothing does.
    generation: u64,
    /// Undoes the body's `Content-Encoding` (`decode_content`).
    content_decoder: Option<ContentDecoder>,
    /// The body failed to decode: every read is an error.
    undecodable: bool,
}

/// What the pump hands over.
struct Pumped {
    state: Mutex<PumpState>,
    data_ready: tokio::sync::Notify,
    space_ready: tokio::sync::Notify,
    buffer_size: usize,
}

#[derive(Default)]
struct PumpState {
    chunks: Vec<Bytes>,
    buffered: usize,
    first_byte: Option<Duration>,
    /// How the body ended, once it has.
    end: Option<Result<(), HttpError>>,
}

/// What a non-blocking read found.
pub enum Ready<T> {
    Data(T),
    /// Nothing yet: wait (`next_*`).
    Empty,
    End,
}

/// "host:port", the key of the per-host statistics.
pub(crate) fn host_key(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("");
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    format!("{host}:{port}")
}

fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // The variables httpx (and OpenSSL) honour for extra or replacement trust anchors.
    for variable in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
        let Some(path) = std::env::var_os(variable) else {
            continue;
        };
        let path = std::path::PathBuf::from(path);
        let files: Vec<std::path::PathBuf> = if path.is_dir() {
            std::fs::read_dir(&path)
                .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default()
        } else {
            vec![path]
        };
        for file in files {
            use rustls::pki_types::pem::PemObject;
            if let Ok(certs) = rustls::pki_types::CertificateDer::pem_file_iter(&file) {
                for cert in certs.flatten() {
                    let _ = roots.add(cert);
                }
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // The ring provider supports the default versions; this cannot fail.
        .expect("TLS 1.2 and 1.3 are supported by the ring provider")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The path percent-encode set of the URL standard (which httpx applies): controls, space,
/// `"`, `#`, `<`, `>`, `?`, `` ` ``, `{`, `}`; bytes beyond ASCII are always encoded.
const PATH_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');
/// The query percent-encode set: controls, space, `"`, `#`, `<`, `>`.
const QUERY_ENCODE: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'<').add(b'>');

/// `path` without its `.` and `..` segments, as httpx removes them (its `normalize_path`: a
/// `..` drops the segment before it, never the root; `/a/b/..` is `/a`).
fn without_dot_segments(path: &str) -> Cow<'_, str> {
    if !path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Cow::Borrowed(path);
    }
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "." => {}
            ".." => {
                if !(kept.is_empty() || kept == [""]) {
                    kept.pop();
                }
            }
            other => kept.push(other),
        }
    }
    Cow::Owned(kept.join("/"))
}

/// `url` with its path and query percent-encoded as httpx encodes them (existing `%XX` kept),
/// and without its fragment, which is not sent. Before, a non-ASCII path went out as raw UTF-8,
/// which servers such as uvicorn refuse with a 400.
fn encode_target(url: &str) -> Cow<'_, str> {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let target = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    let (origin, rest) = url.split_at(target);
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, _)) => (rest, true),
        None => (rest, false),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    // Borrowed when nothing in them needs encoding.
    let path: Cow<'_, str> = match without_dot_segments(path) {
        Cow::Borrowed(path) => utf8_percent_encode(path, PATH_ENCODE).into(),
        Cow::Owned(path) => Cow::Owned(utf8_percent_encode(&path, PATH_ENCODE).to_string()),
    };
    let query: Option<Cow<'_, str>> = query.map(|q| utf8_percent_encode(q, QUERY_ENCODE).into());
    let unchanged = |part: &Cow<'_, str>| matches!(part, Cow::Borrowed(_));
    if !fragment && unchanged(&path) && query.as_ref().is_none_or(unchanged) {
        return Cow::Borrowed(url);
    }
    let mut encoded = String::with_capacity(url.len() + 16);
    encoded.push_str(origin);
    encoded.push_str(&path);
    if let Some(query) = query {
        encoded.push('?');
        encoded.push_str(&query);
    }
    Cow::Owned(encoded)
}

fn parse_absolute(url: &str) -> Result<Uri, HttpError> {
    let uri: Uri = encode_target(url)
        .parse()
        .map_err(|e| HttpError::InvalidUrl(format!("invalid URL {url:?}: {e}")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(HttpError::InvalidUrl(format!(
                "invalid URL {url:?}: expected an http:// or https:// URL"
            )))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(HttpError::InvalidUrl(format!(
            "invalid URL {url:?}: no host"
        )));
    }
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let after_host = host_port.rsplit(']').next().unwrap_or("");
    if after_host.contains(':') && uri.port_u16().is_none() {
        return Err(HttpError::InvalidUrl(format!(
            "invalid URL {url:?}: the port is not a number"
        )));
    }
    Ok(uri)
}

/// The URL without its `user:password@`, and the Basic `Authorization` value of those
/// credentials (percent-decoded, UTF-8, as httpx's `BasicAuth` of `url.username` and
/// `url.password`; none when both are empty); `None` for a URL without a `@`.
fn take_credentials(uri: &Uri) -> Result<Option<(Uri, Option<HeaderValue>)>, HttpError> {
    use base64::Engine as _;

    let Some(authority) = uri.authority() else {
        return Ok(None);
    };
    let Some((userinfo, host_port)) = authority.as_str().rsplit_once('@') else {
        return Ok(None);
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let bad = |e: &dyn std::fmt::Display| HttpError::InvalidUrl(format!("invalid URL: {e}"));
    let mut parts = uri.clone().into_parts();
    parts.authority = Some(host_port.parse().map_err(|e| bad(&e))?);
    let without = Uri::from_parts(parts).map_err(|e| bad(&e))?;
    if user.is_empty() && password.is_empty() {
        // `@host` or `:@host`: httpx authenticates only with a user name or a password.
        return Ok(Some((without, None)));
    }
    let decode = |part: &str| percent_encoding::percent_decode_str(part).collect::<Vec<u8>>();
    let mut pair = decode(user);
    pair.push(b':');
    pair.extend(decode(password));
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    let header = HeaderValue::from_str(&value).map_err(|e| bad(&e))?;
    Ok(Some((without, Some(header))))
}

/// Whether `url` starts with a scheme and `://` (RFC 3986: a letter, then letters, digits, `+`,
/// `-` or `.`). Not merely "contains `://`": a relative URL may carry one in its query
/// (`/search?next=https://...`), and is joined to the base URL as httpx joins it.
fn has_scheme(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, HttpError> {
        let base = config.base_url.as_deref().map(parse_absolute).transpose()?;
        let mut default_headers = HeaderMap::new();
        default_headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
        default_headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("fast-litellm/", env!("CARGO_PKG_VERSION"))),
        );
        merge_headers(&mut default_headers, &config.headers);
        Ok(Self {
            base,
            default_headers,
            first_stats: Arc::new(Stats::default()),
            pool: ArcSwapOption::empty(),
            local_pools: arc_swap::ArcSwap::from_pointee(Vec::new()),
            closed_pool: ArcSwapOption::empty(),
            closed: AtomicBool::new(false),
            config,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The counters of the current pool.
    pub fn stats(&self) -> Arc<Stats> {
        if let Some(pool) = self.current_pool() {
            return Arc::clone(&pool.stats);
        }
        match self.closed_pool() {
            Some(closed) => Arc::clone(&closed.stats),
            None => Arc::clone(&self.first_stats),
        }
    }

    pub fn concurrency_limit(&self) -> Option<usize> {
        (self.config.max_concurrency.is_some() || self.config.adaptive_concurrency).then(|| {
            match self.current_pool() {
                Some(pool) => pool.gate.limit(),
                None => Gate::bounded(self.requested_limit(), self.config.max_connections),
            }
        })
    }

    /// The concurrency limit a new pool's gate is asked to start with (the gate bounds it).
    fn requested_limit(&self) -> usize {
        self.config
            .max_concurrency
            .unwrap_or(self.config.max_connections)
    }

    /// Event loops whose own engine (see `local`) serves this client's requests now.
    pub fn loop_engines(&self) -> usize {
        let generation = crate::runtime::generation();
        self.local_pools
            .load()
            .iter()
            .filter(|(engine, pool)| !engine.is_closed() && pool.generation == generation)
            .count()
    }

    /// Active and idle connections per host, now.
    pub fn open_by_host(&self) -> Vec<(String, super::conn::OpenCount)> {
        if let Some(pool) = self.current_pool() {
            return pool.registry.open_by_host();
        }
        match self.closed_pool() {
            Some(closed) => closed.registry.open_by_host(),
            None => Vec::new(),
        }
    }

    /// Closes idle connections unused for `keepalive_expiry`; how many.
    pub fn cleanup_expired(&self) -> usize {
        match self.current_pool() {
            Some(pool) => pool.registry.close_expired(self.config.keepalive_expiry),
            None => 0,
        }
    }

    /// Closes the pool: idle connections now, busy ones when their response is over. Later
    /// requests fail with `HttpError::Closed`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Their idle connections are in the shared registry, closed below with the runtime's.
        let local = self.local_pools.swap(Arc::new(Vec::new()));
        if local
            .iter()
            .any(|(_, pool)| pool.generation != crate::runtime::generation())
        {
            std::mem::forget(local);
        }
        if let Some(pool) = self.pool.swap(None) {
            if pool.generation != crate::runtime::generation() {
                std::mem::forget(pool);
            } else {
                // Requests in flight hold the pool (and so hyper's idle connections) until they
                // are over: its idle connections are asked to close now.
                pool.registry.close_expired(Duration::ZERO);
                // Requests still in flight keep counting, and their connections stay in the
                // stats until they are over.
                self.closed_pool.store(Some(Arc::new(ClosedPool {
                    generation: pool.generation,
                    stats: Arc::clone(&pool.stats),
                    registry: Arc::clone(&pool.registry),
                })));
            }
        }
    }

    fn closed_pool(&self) -> Option<Arc<ClosedPool>> {
        self.closed_pool
            .load_full()
            .filter(|closed| closed.generation == crate::runtime::generation())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn current_pool(&self) -> Option<Arc<Pool>> {
        self.pool
            .load_full()
            .filter(|pool| pool.generation == crate::runtime::generation())
    }

    /// The pool of the current runtime generation, built on first use (inside the runtime:
    /// hyper's pool and our reaper spawn tasks on it).
    fn pool(&self) -> Result<Arc<Pool>, HttpError> {
        if self.is_closed() {
            return Err(HttpError::Closed);
        }
        let generation = crate::runtime::generation();
        let current = self.pool.load_full();
        if let Some(pool) = &current {
            if pool.generation == generation {
                return Ok(Arc::clone(pool));
            }
        }
        // The first pool counts into `first_stats`; one rebuilt in a forked child starts at zero.
        let stats = match &current {
            None => Arc::clone(&self.first_stats),
            Some(_) => Arc::new(Stats::default()),
        };
        let pool = Arc::new(self.build_pool(generation, stats));
        let previous = self
            .pool
            .compare_and_swap(&current, Some(Arc::clone(&pool)));
        let won = match (&*previous, &current) {
            (Some(seen), Some(expected)) => Arc::ptr_eq(seen, expected),
            (None, None) => true,
            _ => false,
        };
        if !won {
            // Another thread published a pool first (or the client was closed meanwhile): ours
            // never carried a request, so it goes quietly.
            drop(previous);
            return self.pool();
        }
        drop(previous);
        if let Some(stale) = current {
            // Built in the parent before fork(): see the module notes.
            std::mem::forget(stale);
        }
        spawn_reaper(&pool, self.config.keepalive_expiry);
        Ok(pool)
    }

    fn build_pool(&self, generation: u64, stats: Arc<Stats>) -> Pool {
        let mut http = HttpConnector::new();
        // TLS wraps it, so it must accept https URIs too.
        http.enforce_http(false);
        http.set_nodelay(true);
        let proxies = proxies_from_env();
        let gate = Gate::new(
            self.requested_limit(),
            self.config.max_connections,
            self.config.adaptive_concurrency,
        );
        let registry = Arc::new(Registry::default());
        self.pool_over(
            Dial::Tokio(http),
            Exec::Tokio,
            Timer::Tokio(TokioTimer::new()),
            Shared {
                generation,
                tls: Arc::new(tls_config()),
                gate,
                registry,
                stats,
                proxies,
            },
        )
    }

    /// A pool over `dial`, whose connections are driven by `exec`.
    fn pool_over(&self, dial: Dial, exec: Exec, timer: Timer, shared: Shared) -> Pool {
        let timeouts = self.config.timeouts;
        let tracking = TrackingConnector {
            http: dial,
            registry: Arc::clone(&shared.registry),
            stats: Arc::clone(&shared.stats),
            timeouts: IoTimeouts {
                read: timeouts.read,
                write: timeouts.write,
            },
        };
        let tls = shared.tls;
        let unbounded_reads = TrackingConnector {
            timeouts: IoTimeouts {
                read: None,
                write: timeouts.write,
            },
            ..tracking.clone()
        };
        let hyper = self.hyper_client(tracking, &tls, &shared.proxies, &exec, &timer);
        let hyper_own_read =
            self.hyper_client(unbounded_reads, &tls, &shared.proxies, &exec, &timer);
        Pool {
            generation: shared.generation,
            hyper,
            hyper_own_read,
            gate: shared.gate,
            registry: shared.registry,
            stats: shared.stats,
            proxies: shared.proxies,
            tls,
        }
    }

    /// The pool for a request polled here: the loop engine's when a loop engine polls it (made
    /// on its first request, sharing the runtime pool's gate, registry and counters), else the
    /// runtime's.
    fn pool_here(&self) -> Result<Arc<Pool>, HttpError> {
        let shared = self.pool()?;
        let Some(engine) = super::local::current() else {
            return Ok(shared);
        };
        // HTTP/2 multiplexes on the runtime's connections (see `local`).
        if self.config.http2 {
            return Ok(shared);
        }
        let current = self.local_pools.load();
        if let Some((_, pool)) = current
            .iter()
            .find(|(e, pool)| Arc::ptr_eq(e, &engine) && pool.generation == shared.generation)
        {
            return Ok(Arc::clone(pool));
        }
        let pool = Arc::new(self.pool_over(
            Dial::Local(LocalConnector::new(Arc::clone(&engine))),
            Exec::Local(Arc::clone(&engine)),
            Timer::Local(Arc::clone(&engine)),
            Shared {
                generation: shared.generation,
                tls: Arc::clone(&shared.tls),
                gate: Arc::clone(&shared.gate),
                registry: Arc::clone(&shared.registry),
                stats: Arc::clone(&shared.stats),
                proxies: shared.proxies.clone(),
            },
        ));
        // Only the loop thread of `engine` adds its pool, so no other writer adds the same one.
        self.local_pools.rcu(|pools| {
            let mut kept = Vec::with_capacity(pools.len() + 1);
            for (e, p) in pools.iter() {
                if p.generation != shared.generation {
                    // Built in the parent before fork(): left alone, as `pool` leaves the
                    // runtime's (dropping it could wake tasks behind a lock held at the fork).
                    std::mem::forget((Arc::clone(e), Arc::clone(p)));
                } else if !e.is_closed() {
                    kept.push((Arc::clone(e), Arc::clone(p)));
                }
            }
            kept.push((Arc::clone(&engine), Arc::clone(&pool)));
            kept
        });
        Ok(pool)
    }

    /// A hyper client over `tracking` (TLS for https, the environment's proxies).
    fn hyper_client(
        &self,
        tracking: TrackingConnector,
        tls: &Arc<rustls::ClientConfig>,
        proxies: &Option<Arc<Matcher>>,
        exec: &Exec,
        timer: &Timer,
    ) -> Hyper {
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(rustls::ClientConfig::clone(tls))
            .https_or_http();
        let https = if self.config.http2 {
            builder
                .enable_http1()
                .enable_http2()
                .wrap_connector(tracking.clone())
        } else {
            builder.enable_http1().wrap_connector(tracking.clone())
        };
        let connector = Connector {
            https,
            connect_timeout: self.config.timeouts.connect,
            tracking,
            tls: Arc::clone(tls),
            http2: self.config.http2,
            proxies: proxies.clone(),
        };
        hyper_util::client::legacy::Client::builder(exec.clone())
            // A checkout passes over idle connections past the expiry (hyper's pool checks it
            // at checkout, with no timer of its own); closing them when nobody asks is ours
            // (`Registry::close_expired`, from the reaper and on demand), so that
            // `cleanup_expired_connections()` sees what it closes. Hence no `pool_timer`: with
            // one, hyper's own sweep would close them first.
            .pool_idle_timeout(self.config.keepalive_expiry)
            .pool_max_idle_per_host(self.config.max_keepalive_connections)
            .timer(timer.clone())
            .build(connector)
    }

    /// Resolves `url` against the base URL (the rules httpx follows: the base keeps its path,
    /// and `x` and `/x` are both appended to it) and merges the headers.
    pub fn prepare(
        &self,
        method: &str,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Option<Bytes>,
        timeouts: Option<Timeouts>,
    ) -> Result<Prepared, HttpError> {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("invalid HTTP method {method:?}")))?;
        let uri = if has_scheme(url) {
            parse_absolute(url)?
        } else {
            let Some(base) = &self.base else {
                return Err(HttpError::InvalidUrl(format!(
                    "relative URL {url:?} needs the client's base_url"
                )));
            };
            let base = base.to_string();
            let joined = if base.ends_with('/') {
                format!("{base}{}", url.trim_start_matches('/'))
            } else {
                format!("{base}/{}", url.trim_start_matches('/'))
            };
            let joined = if url.is_empty() { base } else { joined };
            parse_absolute(&joined)?
        };
        let mut merged = self.default_headers.clone();
        merge_headers(&mut merged, headers);
        let uri = match take_credentials(&uri)? {
            // `user:password@` in the URL is Basic authentication, as httpx makes it (in place
            // of an Authorization header given), and never goes out in the URL itself.
            Some((without, authorization)) => {
                if let Some(authorization) = authorization {
                    merged.insert(http::header::AUTHORIZATION, authorization);
                }
                without
            }
            None => uri,
        };
        Ok(Prepared {
            method,
            uri,
            headers: merged,
            body: body.unwrap_or_default(),
            timeouts,
        })
    }

    fn gzip(&self, prepared: &mut Prepared) {
        let Some(threshold) = self.config.gzip_threshold else {
            return;
        };
        if prepared.body.len() < threshold.max(1) || prepared.headers.contains_key(CONTENT_ENCODING)
        {
            return;
        }
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(prepared.body.len() / 4),
            flate2::Compression::fast(),
        );
        // Writing to a Vec cannot fail.
        if encoder.write_all(&prepared.body).is_ok() {
            if let Ok(compressed) = encoder.finish() {
                prepared.body = Bytes::from(compressed);
                prepared
                    .headers
                    .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                // A length the caller gave is the uncompressed one: the body's own goes out.
                prepared.headers.remove(CONTENT_LENGTH);
            }
        }
    }

    /// Sends `prepared`, retrying as the policy says, up to the response headers.
    async fn send(
        &self,
        pool: &Pool,
        mut prepared: Prepared,
    ) -> Result<(Head, Incoming, Hold), HttpError> {
        let stats = &pool.stats;
        self.gzip(&mut prepared);
        // A forward proxy (plain http through it) takes its credentials on each request; an
        // https tunnel took them with its CONNECT.
        if prepared.uri.scheme_str() == Some("http") {
            if let Some(auth) = pool
                .proxies
                .as_ref()
                .and_then(|m| m.intercept(&prepared.uri))
                .and_then(|i| i.basic_auth().cloned())
            {
                prepared
                    .headers
                    .entry(http::header::PROXY_AUTHORIZATION)
                    .or_insert(auth);
            }
        }
        let timeouts = prepared.timeouts.unwrap_or(self.config.timeouts);
        let host = stats.host(&host_key(&prepared.uri));
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let in_flight = InFlight(Arc::clone(stats));
        let started = Instant::now();
        let policy = &self.config.retry;
        let mut retries = 0u32;
        loop {
            let (permit, waited) = match pool.gate.acquire(timeouts.pool).await {
                Ok(acquired) => acquired,
                Err(err) => {
                    stats.record_pool_wait(timeouts.pool.unwrap_or_default());
                    return Err(failed(stats, err));
                }
            };
            stats.record_pool_wait(waited);
            let own_read = prepared.timeouts.and_then(|t| t.read);
            // With its own read timeout, the request learns when its upload ends.
            let (body, uploaded) = match own_read {
                Some(limit) => {
                    let (body, uploaded) = Upload::watched(prepared.body.clone());
                    (body, Some((limit, uploaded)))
                }
                None => (Upload::new(prepared.body.clone()), None),
            };
            let mut request = Request::new(body);
            *request.method_mut() = prepared.method.clone();
            *request.uri_mut() = prepared.uri.clone();
            *request.headers_mut() = prepared.headers.clone();
            let sent_at = Instant::now();
            // A read limit of the request's own that differs from the client's is the only one
            // that applies: its connection must not have the client's (see `Pool`).
            let hyper = match prepared.timeouts {
                Some(own) if own.read != self.config.timeouts.read => &pool.hyper_own_read,
                _ => &pool.hyper,
            };
            // The connect limit of the request's own, for a connection made for it.
            let responding =
                REQUEST_CONNECT_TIMEOUT.scope(timeouts.connect, hyper.request(request));
            // A request's own read timeout bounds the wait for its headers from the end of its
            // upload (see `upload`; which connection serves it is not known before the answer,
            // so it cannot be set per read there). Otherwise the client's read timeout applies
            // per read on the connection itself (see `conn`).
            let outcome = match uploaded {
                Some((limit, uploaded)) => {
                    tokio::pin!(responding);
                    let early = tokio::select! {
                        result = &mut responding => Some(result),
                        _ = uploaded => None,
                    };
                    match early {
                        Some(result) => result.map_err(classify_client_error),
                        None => match super::rt::timeout(limit, responding).await {
                            Ok(result) => result.map_err(classify_client_error),
                            Err(_) => Err(HttpError::ReadTimeout),
                        },
                    }
                }
                None => responding.await.map_err(classify_client_error),
            };
            // A request is counted once it reached a server (a response, or a failure after
            // the connection was made); attempts that could not connect are errors only.
            if !matches!(&outcome, Err(err) if err.is_before_sending()) {
                stats.requests.fetch_add(1, Ordering::Relaxed);
                host.requests.fetch_add(1, Ordering::Relaxed);
            }
            let response = match outcome {
                Ok(response) => response,
                Err(err) => {
                    if matches!(
                        err,
                        HttpError::ConnectTimeout(_)
                            | HttpError::ReadTimeout
                            | HttpError::WriteTimeout
                    ) {
                        pool.gate.overloaded(&permit);
                    }
                    if err.is_before_sending() && retries < policy.max_retries {
                        stats.error(err.kind());
                        retries += 1;
                        stats.retries.fetch_add(1, Ordering::Relaxed);
                        drop(permit);
                        super::rt::sleep(policy.backoff(retries)).await;
                        continue;
                    }
                    return Err(failed(stats, with_host(err, &prepared.uri)));
                }
            };
            let status = response.status().as_u16();
            let conn = response
                .extensions()
                .get::<ConnHandle>()
                .cloned()
                .map(|handle| {
                    let period = handle.0.period();
                    if handle.0.served_before() {
                        stats.connections_reused.fetch_add(1, Ordering::Relaxed);
                    }
                    (handle, period)
                });
            if status == 429 {
                pool.gate.overloaded(&permit);
            } else if status < 500 {
                pool.gate.succeeded(sent_at.elapsed());
            }
            let mut hold = Hold {
                _permit: permit,
                _in_flight: None,
                conn,
            };
            if retries < policy.max_retries && policy.retries_status(status) {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                if let Some(wait) = policy.wait_after_response(retries + 1, retry_after.as_deref())
                {
                    // Read the (small) refusal so its connection can carry the retry, within
                    // the request's own read timeout (the client's applies per read).
                    let refusal = response.into_body().collect();
                    if let Some(limit) = own_read {
                        if super::rt::timeout(limit, refusal).await.is_err() {
                            return Err(failed(
                                stats,
                                with_host(HttpError::ReadTimeout, &prepared.uri),
                            ));
                        }
                    } else {
                        let _ = refusal.await;
                    }
                    hold.release();
                    drop(hold);
                    retries += 1;
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    super::rt::sleep(wait).await;
                    continue;
                }
            }
            hold._in_flight = Some(in_flight);
            let (parts, body) = response.into_parts();
            let reason = reason_phrase(&parts);
            let head = Head {
                status,
                headers: parts.headers,
                url: prepared.uri.to_string(),
                http_version: version_name(parts.version),
                reason,
                retries,
                elapsed: started.elapsed(),
            };
            return Ok((head, body, hold));
        }
    }

    /// Sends `prepared` and reads the whole response.
    pub async fn fetch(&self, prepared: Prepared) -> Result<Finished, HttpError> {
        let started = Instant::now();
        let read_timeout = prepared.timeouts.and_then(|t| t.read);
        let pool = self.pool_here()?;
        let (head, mut body, mut hold) = self.send(&pool, prepared).await?;
        let mut collected = BytesMut::new();
        let mut only: Option<Bytes> = None;
        while let Some(frame) = next_frame(&mut body, read_timeout)
            .await
            .map_err(|e| failed(&pool.stats, e))?
        {
            if let Ok(data) = frame.into_data() {
                // One piece (the usual small JSON answer) is handed over without a copy.
                match only.take() {
                    None if collected.is_empty() => only = Some(data),
                    Some(first) => {
                        collected.extend_from_slice(&first);
                        collected.extend_from_slice(&data);
                    }
                    None => collected.extend_from_slice(&data),
                }
            }
        }
        // The place in the gate is given back only once the connection is back in the pool, so
        // that the request it admits finds it there.
        let released = hold.release();
        settle_connection(released).await;
        drop(hold);
        let body = only.unwrap_or_else(|| collected.freeze());
        Ok(Finished {
            head,
            body,
            elapsed: started.elapsed(),
        })
    }

    /// Sends `prepared` and returns once the response headers are in; with `prefetch`, a body
    /// whose declared length fits the stream buffer is read in before returning (it is on its
    /// way in the same packets: one hand-over to Python instead of two).
    pub async fn open_stream(
        &self,
        prepared: Prepared,
        prefetch: bool,
    ) -> Result<BodyStream, HttpError> {
        let started = Instant::now();
        let read_timeout = prepared.timeouts.and_then(|t| t.read);
        let pool = self.pool_here()?;
        let (head, body, hold) = self.send(&pool, prepared).await?;
        let buffer_size = self.config.stream_buffer_size;
        let small = hyper::body::Body::size_hint(&body)
            .exact()
            .is_some_and(|length| length as usize <= buffer_size);
        let conn = hold.conn.clone();
        let shared = Arc::new(Pumped {
            state: Mutex::new(PumpState::default()),
            data_ready: tokio::sync::Notify::new(),
            space_ready: tokio::sync::Notify::new(),
            buffer_size,
        });
        let pump = super::rt::spawn(pump(
            body,
            hold,
            Arc::clone(&shared),
            read_timeout,
            Arc::clone(&pool.stats),
            started,
        ));
        if prefetch && small {
            loop {
                let ready = shared.data_ready.notified();
                if shared.state.lock().end.is_some() {
                    break;
                }
                ready.await;
            }
        }
        Ok(BodyStream {
            head,
            shared,
            pump: Some(pump),
            decoder: SseDecoder::new(),
            started,
            time_to_first_byte: None,
            time_to_first_event: None,
            pending_error: None,
            ended: false,
            conn,
            generation: crate::runtime::generation(),
            content_decoder: None,
            undecodable: false,
        })
    }
}

/// Lets hyper hand the connection of a finished response back to its pool before the caller's
/// next request asks for one. The end of the body reaches us from hyper's connection task, which
/// then goes idle (it parks on a read, `Conn::is_parked`) and another of its tasks returns the
/// connection to the pool. A sequential caller that asked in between would find no idle
/// connection and open a new one. So: a few turns of the scheduler until the connection task
/// has parked (it runs on the other worker meanwhile), then one more for the return. Turns, not
/// a timed wait: bounded, and a connection that never parks (the server kept sending) only
/// costs the bound.
async fn settle_connection(released: Option<ConnHandle>) {
    let Some(handle) = released else {
        return;
    };
    for _ in 0..64 {
        if handle.0.is_parked() {
            break;
        }
        tokio::task::yield_now().await;
    }
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
}

/// Counts `err` in `stats` and passes it on.
fn failed(stats: &Stats, err: HttpError) -> HttpError {
    stats.error(err.kind());
    err
}

/// The reason phrase of an HTTP/1 status line: hyper keeps it only when it is not the status's
/// canonical one, which it then was.
fn reason_phrase(parts: &http::response::Parts) -> Option<Bytes> {
    if parts.version >= http::Version::HTTP_2 {
        return None;
    }
    Some(match parts.extensions.get::<hyper::ext::ReasonPhrase>() {
        Some(reason) => Bytes::copy_from_slice(reason.as_bytes()),
        None => Bytes::from_static(
            parts
                .status
                .canonical_reason()
                .unwrap_or_default()
                .as_bytes(),
        ),
    })
}

fn version_name(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// Later pairs replace earlier ones of the same name; repeats within `headers` are kept.
fn merge_headers(map: &mut HeaderMap, headers: &[(HeaderName, HeaderValue)]) {
    for (name, _) in headers {
        map.remove(name);
    }
    for (name, value) in headers {
        map.append(name.clone(), value.clone());
    }
}

fn with_host(err: HttpError, uri: &Uri) -> HttpError {
    match err {
        HttpError::Connect { detail, .. } => HttpError::Connect {
            host: host_key(uri),
            detail,
        },
        HttpError::ConnectTimeout(_) => HttpError::ConnectTimeout(host_key(uri)),
        other => other,
    }
}

fn classify_client_error(err: hyper_util::client::legacy::Error) -> HttpError {
    let timeout = find_timeout(&err);
    if err.is_connect() {
        return match timeout {
            Some(_) => HttpError::ConnectTimeout(String::new()),
            None => HttpError::Connect {
                host: String::new(),
                detail: root_message(&err),
            },
        };
    }
    match timeout {
        Some(IoTimeout::Read) => HttpError::ReadTimeout,
        Some(IoTimeout::Write) => HttpError::WriteTimeout,
        Some(IoTimeout::Connect) => HttpError::ConnectTimeout(String::new()),
        None if is_reset(&err) => HttpError::Reset(format!(
            "the server reset the connection: {}",
            root_message(&err)
        )),
        None => HttpError::Protocol(format!(
            "the server broke the exchange: {}",
            root_message(&err)
        )),
    }
}

fn classify_body_error(err: hyper::Error) -> HttpError {
    match find_timeout(&err) {
        Some(IoTimeout::Write) => HttpError::WriteTimeout,
        Some(_) => HttpError::ReadTimeout,
        None if is_reset(&err) => HttpError::Reset(format!(
            "the response body was cut off: {}",
            root_message(&err)
        )),
        None => HttpError::Protocol(format!(
            "the response body was cut off: {}",
            root_message(&err)
        )),
    }
}

async fn next_frame(
    body: &mut Incoming,
    read_timeout: Option<Duration>,
) -> Result<Option<hyper::body::Frame<Bytes>>, HttpError> {
    let frame = match read_timeout {
        Some(limit) => match super::rt::timeout(limit, body.frame()).await {
            Ok(frame) => frame,
            Err(_) => return Err(HttpError::ReadTimeout),
        },
        None => body.frame().await,
    };
    frame.transpose().map_err(classify_body_error)
}

/// Closes idle connections past their expiry now and then, so a quiet client does not keep
/// them; a sweep every `max(expiry, 30 s)` (expiry is checked per connection at each sweep,
/// and `cleanup_expired_connections()` does it on demand). Ends with its pool.
fn spawn_reaper(pool: &Arc<Pool>, expiry: Duration) {
    let registry = Arc::downgrade(&pool.registry);
    let period = expiry.max(Duration::from_secs(30));
    crate::runtime::runtime().spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticks.tick().await;
            match registry.upgrade() {
                Some(registry) => {
                    registry.close_expired(expiry);
                }
                None => return,
            }
        }
    });
}

/// Reads `body` into `shared` until it ends, fails or the stream is closed (aborted).
async fn pump(
    mut body: Incoming,
    mut hold: Hold,
    shared: Arc<Pumped>,
    read_timeout: Option<Duration>,
    stats: Arc<Stats>,
    started: Instant,
) {
    loop {
        while shared.state.lock().buffered >= shared.buffer_size {
            shared.space_ready.notified().await;
        }
        let end = match next_frame(&mut body, read_timeout).await {
            Ok(Some(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        let mut state = shared.state.lock();
                        state.first_byte.get_or_insert_with(|| started.elapsed());
                        state.buffered += data.len();
                        state.chunks.push(data);
                        drop(state);
                        shared.data_ready.notify_one();
                    }
                }
                continue;
            }
            Ok(None) => Ok(()),
            Err(err) => {
                stats.error(err.kind());
                Err(err)
            }
        };
        // The connection goes back to the pool (or, after an error, is dropped) before the
        // caller learns that the body is over.
        let released = if end.is_ok() { hold.release() } else { None };
        drop(body);
        // The place in the gate goes back once the connection is back in the pool (see fetch).
        settle_connection(released).await;
        drop(hold);
        shared.state.lock().end = Some(end);
        shared.data_ready.notify_one();
        return;
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        self.close();
    }
}

impl BodyStream {
    /// Closes the stream early (its connection is not reused: the rest of the body is unread).
    pub fn close(&mut self) {
        if self.generation != crate::runtime::generation() {
            self.leave_to_parent();
            self.ended = true;
            return;
        }
        if let Some(pump) = self.pump.take() {
            pump.abort();
        }
        if let Some((handle, period)) = self.conn.take() {
            handle.0.release(period);
        }
        self.ended = true;
    }

    /// In a child forked since the stream was opened: its pump and connection are the
    /// parent's, on a runtime whose threads are not in this process (waking them could wait on
    /// a lock one of them held). Left as they are, as the runtime itself is.
    fn leave_to_parent(&mut self) {
        std::mem::forget(self.pump.take());
        std::mem::forget(self.conn.take());
    }

    /// Whether the whole body has been handed over (nothing more will come).
    pub fn at_end(&self) -> bool {
        self.ended && self.pending_error.is_none()
    }

    /// From now on the pieces come with the body's `Content-Encoding` undone (the client's own
    /// API; the httpx transports take the body as received).
    pub fn decode_content(&mut self) {
        self.content_decoder = ContentDecoder::for_headers(&self.head.headers);
    }

    /// Everything buffered now, without waiting (decoded, see `decode_content`).
    pub fn try_chunk(&mut self) -> Result<Ready<Bytes>, HttpError> {
        loop {
            let raw = self.try_raw_chunk()?;
            let Some(decoder) = self.content_decoder.as_mut() else {
                return Ok(raw);
            };
            // The end may come with the last data: the decoder then finishes too.
            let ended = self.ended;
            let decoded = match raw {
                Ready::Empty => return Ok(Ready::Empty),
                Ready::Data(data) => match decoder.feed(&data) {
                    Ok(out) if ended => decoder
                        .finish()
                        .map(|tail| Bytes::from([out.as_ref(), tail.as_ref()].concat())),
                    other => other,
                },
                Ready::End => decoder.finish(),
            };
            let decoded = match decoded {
                Ok(decoded) => decoded,
                Err(err) => {
                    // The rest cannot be decoded either: every later read fails too, so that
                    // a body cut here never reads as a whole one.
                    self.content_decoder = None;
                    self.close();
                    self.ended = false;
                    self.undecodable = true;
                    return Err(err);
                }
            };
            if self.ended {
                // The last of it; the end comes with the next call.
                self.content_decoder = None;
                return Ok(if decoded.is_empty() {
                    Ready::End
                } else {
                    Ready::Data(decoded)
                });
            }
            if !decoded.is_empty() {
                return Ok(Ready::Data(decoded));
            }
            // Not a whole block yet: what else is buffered, or wait.
        }
    }

    /// Everything buffered now, as received, without waiting.
    fn try_raw_chunk(&mut self) -> Result<Ready<Bytes>, HttpError> {
        if let Some(err) = self.pending_error.take() {
            return Err(err);
        }
        if self.undecodable {
            return Err(HttpError::Protocol(
                "the response body could not be decoded".into(),
            ));
        }
        if self.ended {
            return Ok(Ready::End);
        }
        if self.generation != crate::runtime::generation() {
            // Nothing in this process reads the parent's connection: waiting would be for ever.
            // Every read says so (not a clean end after the first), until the stream is closed.
            self.leave_to_parent();
            return Err(HttpError::Forked);
        }
        let mut state = self.shared.state.lock();
        if self.time_to_first_byte.is_none() {
            self.time_to_first_byte = state.first_byte;
        }
        let chunks = std::mem::take(&mut state.chunks);
        state.buffered = 0;
        let end = if chunks.is_empty() || matches!(state.end, Some(Ok(()))) {
            state.end.take()
        } else {
            // Data first; an error that followed it comes with the next call.
            None
        };
        drop(state);
        if !chunks.is_empty() {
            self.shared.space_ready.notify_one();
        }
        match end {
            Some(Ok(())) => self.ended = true,
            Some(Err(err)) => {
                self.ended = true;
                if chunks.is_empty() {
                    return Err(err);
                }
                self.pending_error = Some(err);
            }
            None => {}
        }
        if chunks.is_empty() {
            return Ok(if self.ended { Ready::End } else { Ready::Empty });
        }
        if chunks.len() == 1 {
            return Ok(Ready::Data(chunks.into_iter().next().unwrap_or_default()));
        }
        let mut joined = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
        for chunk in chunks {
            joined.extend_from_slice(&chunk);
        }
        Ok(Ready::Data(joined.freeze()))
    }

    /// The whole body when all of it has arrived and none of it was taken yet (a prefetched
    /// body, see `Client::open_stream`); `None` while more may come or after an error.
    pub fn take_whole(&mut self) -> Option<Bytes> {
        if self.ended || self.pending_error.is_some() {
            return None;
        }
        if !matches!(self.shared.state.lock().end, Some(Ok(()))) {
            return None;
        }
        // The pump is done: this takes every piece and the end together.
        match self.try_chunk() {
            Ok(Ready::Data(body)) if self.ended => Some(body),
            Ok(Ready::End) => Some(Bytes::new()),
            _ => None,
        }
    }

    /// The next pieces of the body: everything buffered, waiting for at least one piece;
    /// `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        let shared = Arc::clone(&self.shared);
        loop {
            let notified = shared.data_ready.notified();
            match self.try_chunk()? {
                Ready::Data(chunk) => return Ok(Some(chunk)),
                Ready::End => return Ok(None),
                Ready::Empty => notified.await,
            }
        }
    }

    /// The events complete in what is buffered now, without waiting.
    pub fn try_events(&mut self) -> Result<Ready<Vec<Event>>, HttpError> {
        loop {
            match self.try_chunk()? {
                Ready::Data(chunk) => {
                    let events = self
                        .decoder
                        .feed(&chunk)
                        .map_err(|e| HttpError::Protocol(e.to_string()))?;
                    if !events.is_empty() {
                        self.time_to_first_event
                            .get_or_insert_with(|| self.started.elapsed());
                        return Ok(Ready::Data(events));
                    }
                }
                Ready::Empty => return Ok(Ready::Empty),
                Ready::End => {
                    self.decoder.finish();
                    return Ok(Ready::End);
                }
            }
        }
    }

    /// The next events: at least one, with every further event already received; `None` at
    /// the end of the stream.
    pub async fn next_events(&mut self) -> Result<Option<Vec<Event>>, HttpError> {
        let shared = Arc::clone(&self.shared);
        loop {
            let notified = shared.data_ready.notified();
            match self.try_events()? {
                Ready::Data(events) => return Ok(Some(events)),
                Ready::End => return Ok(None),
                Ready::Empty => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_encoded_as_httpx_encodes_them() {
        for (url, sent) in [
            ("http://h:1/plain?a=b", "http://h:1/plain?a=b"),
            (
                "http://h/files/r\u{e9}sum\u{e9}.txt",
                "http://h/files/r%C3%A9sum%C3%A9.txt",
            ),
            (
                "http://h/search?q=caf\u{e9} au lait",
                "http://h/search?q=caf%C3%A9%20au%20lait",
            ),
            (
                "http://h/a b/{x}`<y>\"?q=\"<{x}>`",
                "http://h/a%20b/%7Bx%7D%60%3Cy%3E%22?q=%22%3C{x}%3E`",
            ),
            (
                "http://h/already%20done%zz?x=%41",
                "http://h/already%20done%zz?x=%41",
            ),
            ("http://h/page#section", "http://h/page"),
            ("http://h?q=\u{1f642}#f", "http://h?q=%F0%9F%99%82"),
            ("https://user:pw@h:8443", "https://user:pw@h:8443"),
        ] {
            assert_eq!(encode_target(url), sent, "{url}");
        }
        // A URL that needs nothing is handed back as it is.
        assert!(matches!(
            encode_target("http://h/a?b=c?d"),
            Cow::Borrowed(_)
        ));
        let uri =
            parse_absolute("http://127.0.0.1:8/files/r\u{e9}sum\u{e9}.txt?q=caf\u{e9}").unwrap();
        assert_eq!(
            uri.path_and_query().unwrap().as_str(),
            "/files/r%C3%A9sum%C3%A9.txt?q=caf%C3%A9"
        );
    }

    #[test]
    fn a_scheme_starts_the_url() {
        assert!(has_scheme("http://h/") && has_scheme("HTTPS://h/") && has_scheme("ftp://h"));
        assert!(has_scheme("svn+ssh://h") && has_scheme("a.b-c://h"));
        for relative in [
            "/echo?url=https://example.com/a",
            "echo",
            "",
            "://h",
            "1http://h",
            "/a://b",
        ] {
            assert!(!has_scheme(relative), "{relative}");
        }
    }
}
