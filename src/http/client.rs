//! The client: hyper-util's pooled client on the shared runtime, behind our gate, with retries.
//!
//! A client's pool is bound to the runtime it was built on (its connections are tasks there).
//! A child process made by `fork()` gets a new runtime (`crate::runtime`), so the client builds a
//! new pool there on its next request and leaks the parent's: dropping it would touch locks and
//! sockets that belong to the parent.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_ENCODING, RETRY_AFTER};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use parking_lot::Mutex;

use super::conn::{ConnHandle, Connector, IoTimeouts, Registry, TrackingConnector};
use super::error::{find_timeout, root_message, HttpError, IoTimeout};
use super::limit::{Gate, Permit};
use super::retry::RetryPolicy;
use super::sse::{Event, SseDecoder};
use super::stats::Stats;

type Hyper = hyper_util::client::legacy::Client<Connector, Full<Bytes>>;

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

/// One pool: hyper's client and the registry of its connections.
struct Pool {
    hyper: Hyper,
    registry: Arc<Registry>,
}

pub struct Client {
    config: ClientConfig,
    base: Option<Uri>,
    default_headers: HeaderMap,
    stats: Arc<Stats>,
    gate: Arc<Gate>,
    pool: Mutex<Option<(u64, Arc<Pool>)>>,
    closed: AtomicBool,
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
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub url: String,
    pub http_version: &'static str,
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
    fn release(&mut self) {
        if let Some((handle, period)) = self.conn.take() {
            handle.0.release(period);
        }
    }
}

/// An open response body, read piece by piece.
pub struct BodyStream {
    pub head: Head,
    body: Option<Incoming>,
    hold: Option<Hold>,
    decoder: SseDecoder,
    buffer_size: usize,
    read_timeout: Option<Duration>,
    started: Instant,
    pub time_to_first_byte: Option<Duration>,
    pub time_to_first_event: Option<Duration>,
    stats: Arc<Stats>,
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

fn parse_absolute(url: &str) -> Result<Uri, HttpError> {
    let uri: Uri = url
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

fn has_scheme(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || url.contains("://")
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
        let limit = config
            .max_concurrency
            .unwrap_or(config.max_connections)
            .min(config.max_connections);
        let gate = Gate::new(limit, config.max_connections, config.adaptive_concurrency);
        Ok(Self {
            base,
            default_headers,
            stats: Arc::new(Stats::default()),
            gate,
            pool: Mutex::new(None),
            closed: AtomicBool::new(false),
            config,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn concurrency_limit(&self) -> Option<usize> {
        (self.config.max_concurrency.is_some() || self.config.adaptive_concurrency)
            .then(|| self.gate.limit())
    }

    /// Active and idle connections per host, now.
    pub fn open_by_host(&self) -> Vec<(String, super::conn::OpenCount)> {
        match self.current_pool() {
            Some(pool) => pool.registry.open_by_host(),
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
        let old = self.pool.lock().take();
        if let Some((generation, pool)) = old {
            if generation != crate::runtime::generation() {
                std::mem::forget(pool);
            }
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn current_pool(&self) -> Option<Arc<Pool>> {
        let pool = self.pool.lock();
        match &*pool {
            Some((generation, pool)) if *generation == crate::runtime::generation() => {
                Some(Arc::clone(pool))
            }
            _ => None,
        }
    }

    /// The pool of the current runtime generation, built on first use (inside the runtime:
    /// hyper's pool and our reaper spawn tasks on it).
    fn pool(&self) -> Result<Arc<Pool>, HttpError> {
        if self.is_closed() {
            return Err(HttpError::Closed);
        }
        let generation = crate::runtime::generation();
        let mut slot = self.pool.lock();
        if let Some((built_on, pool)) = &*slot {
            if *built_on == generation {
                return Ok(Arc::clone(pool));
            }
        }
        let pool = Arc::new(self.build_pool());
        if let Some((_, stale)) = slot.replace((generation, Arc::clone(&pool))) {
            // Built in the parent before fork(): see the module notes.
            std::mem::forget(stale);
        }
        drop(slot);
        spawn_reaper(&pool, self.config.keepalive_expiry);
        Ok(pool)
    }

    fn build_pool(&self) -> Pool {
        let registry = Arc::new(Registry::default());
        let mut http = HttpConnector::new();
        // TLS wraps it, so it must accept https URIs too.
        http.enforce_http(false);
        http.set_nodelay(true);
        let timeouts = self.config.timeouts;
        let tracking = TrackingConnector {
            http,
            registry: Arc::clone(&registry),
            stats: Arc::clone(&self.stats),
            timeouts: IoTimeouts {
                read: timeouts.read,
                write: timeouts.write,
            },
        };
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config())
            .https_or_http();
        let https = if self.config.http2 {
            builder
                .enable_http1()
                .enable_http2()
                .wrap_connector(tracking)
        } else {
            builder.enable_http1().wrap_connector(tracking)
        };
        let connector = Connector {
            https,
            connect_timeout: timeouts.connect,
        };
        let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            // Expiry is ours (`Registry::close_expired`, from the reaper and on demand), so
            // that `cleanup_expired_connections()` sees what it closes.
            .pool_idle_timeout(None::<Duration>)
            .pool_max_idle_per_host(self.config.max_keepalive_connections)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Pool { hyper, registry }
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
            }
        }
    }

    /// Sends `prepared`, retrying as the policy says, up to the response headers.
    async fn send(&self, mut prepared: Prepared) -> Result<(Head, Incoming, Hold), HttpError> {
        let pool = self.pool()?;
        self.gzip(&mut prepared);
        let timeouts = prepared.timeouts.unwrap_or(self.config.timeouts);
        let host = self.stats.host(&host_key(&prepared.uri));
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let in_flight = InFlight(Arc::clone(&self.stats));
        let started = Instant::now();
        let policy = &self.config.retry;
        let mut retries = 0u32;
        loop {
            let (permit, waited) = match self.gate.acquire(timeouts.pool).await {
                Ok(acquired) => acquired,
                Err(err) => {
                    self.stats
                        .record_pool_wait(timeouts.pool.unwrap_or_default());
                    return Err(self.failed(err));
                }
            };
            self.stats.record_pool_wait(waited);
            let mut request = Request::new(Full::new(prepared.body.clone()));
            *request.method_mut() = prepared.method.clone();
            *request.uri_mut() = prepared.uri.clone();
            *request.headers_mut() = prepared.headers.clone();
            let sent_at = Instant::now();
            let responding = pool.hyper.request(request);
            // A per-request read timeout also bounds the wait for the headers here; the client's
            // own applies per read on the connection (see `conn`).
            let outcome = match prepared.timeouts.and_then(|t| t.read) {
                Some(limit) => match tokio::time::timeout(
                    limit + timeouts.connect.unwrap_or_default(),
                    responding,
                )
                .await
                {
                    Ok(result) => result.map_err(classify_client_error),
                    Err(_) => Err(HttpError::ReadTimeout),
                },
                None => responding.await.map_err(classify_client_error),
            };
            // A request is counted once it reached a server (a response, or a failure after
            // the connection was made); attempts that could not connect are errors only.
            if !matches!(&outcome, Err(err) if err.is_before_sending()) {
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
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
                        self.gate.overloaded(&permit);
                    }
                    if err.is_before_sending() && retries < policy.max_retries {
                        self.stats.error(err.kind());
                        retries += 1;
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        drop(permit);
                        tokio::time::sleep(policy.backoff(retries)).await;
                        continue;
                    }
                    return Err(self.failed(with_host(err, &prepared.uri)));
                }
            };
            let status = response.status().as_u16();
            let conn = response
                .extensions()
                .get::<ConnHandle>()
                .cloned()
                .map(|handle| {
                    let period = handle.0.period();
                    if period > 1 {
                        self.stats
                            .connections_reused
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    (handle, period)
                });
            if status == 429 {
                self.gate.overloaded(&permit);
            } else if status < 500 {
                self.gate.succeeded(sent_at.elapsed());
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
                    // Read the (small) refusal so its connection can carry the retry.
                    let _ = response.into_body().collect().await;
                    hold.release();
                    drop(hold);
                    retries += 1;
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            hold._in_flight = Some(in_flight);
            let head = Head {
                status,
                headers: response
                    .headers()
                    .iter()
                    .map(|(name, value)| {
                        (
                            name.as_str().to_owned(),
                            String::from_utf8_lossy(value.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                url: prepared.uri.to_string(),
                http_version: version_name(response.version()),
                retries,
                elapsed: started.elapsed(),
            };
            return Ok((head, response.into_body(), hold));
        }
    }

    fn failed(&self, err: HttpError) -> HttpError {
        self.stats.error(err.kind());
        err
    }

    /// Sends `prepared` and reads the whole response.
    pub async fn fetch(&self, prepared: Prepared) -> Result<Finished, HttpError> {
        let started = Instant::now();
        let read_timeout = prepared.timeouts.and_then(|t| t.read);
        let (head, mut body, mut hold) = self.send(prepared).await?;
        let mut collected = BytesMut::new();
        let mut only: Option<Bytes> = None;
        while let Some(frame) = next_frame(&mut body, read_timeout)
            .await
            .map_err(|e| self.failed(e))?
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
        hold.release();
        settle_connection().await;
        let body = only.unwrap_or_else(|| collected.freeze());
        Ok(Finished {
            head,
            body,
            elapsed: started.elapsed(),
        })
    }

    /// Sends `prepared` and returns once the response headers are in.
    pub async fn open_stream(&self, prepared: Prepared) -> Result<BodyStream, HttpError> {
        let started = Instant::now();
        let read_timeout = prepared.timeouts.and_then(|t| t.read);
        let (head, body, hold) = self.send(prepared).await?;
        Ok(BodyStream {
            head,
            body: Some(body),
            hold: Some(hold),
            decoder: SseDecoder::new(),
            buffer_size: self.config.stream_buffer_size,
            read_timeout,
            started,
            time_to_first_byte: None,
            time_to_first_event: None,
            stats: Arc::clone(&self.stats),
        })
    }
}

/// Lets hyper's connection task, woken by the end of the body, hand the connection back to the
/// pool before the caller's next request asks for one: without it a request sent right after
/// the previous response (a sequential caller) often finds no idle connection and opens a new
/// one. A turn of the scheduler, not a wait.
async fn settle_connection() {
    tokio::task::yield_now().await;
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
        Some(limit) => match tokio::time::timeout(limit, body.frame()).await {
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
    tokio::spawn(async move {
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

impl BodyStream {
    fn finished(&mut self) {
        if let Some(mut hold) = self.hold.take() {
            hold.release();
        }
        self.body = None;
    }

    /// Closes the stream early (its connection is not reused: the rest of the body is unread).
    pub fn close(&mut self) {
        self.hold = None;
        self.body = None;
    }

    /// The next pieces of the body: at least one piece, joined with every further piece already
    /// received, up to the buffer size; `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        let Some(body) = self.body.as_mut() else {
            return Ok(None);
        };
        let mut gathered = BytesMut::new();
        loop {
            let frame = if gathered.is_empty() {
                match next_frame(body, self.read_timeout).await {
                    Ok(frame) => frame,
                    Err(err) => {
                        self.stats.error(err.kind());
                        self.close();
                        return Err(err);
                    }
                }
            } else {
                // Only what is already here: never wait with data in hand.
                use futures_util::FutureExt;
                match body.frame().now_or_never() {
                    Some(frame) => match frame.transpose() {
                        Ok(frame) => frame,
                        Err(err) => {
                            // Hand over what arrived; the error comes with the next call.
                            let err = classify_body_error(err);
                            self.stats.error(err.kind());
                            self.close();
                            return Ok(Some(gathered.freeze()));
                        }
                    },
                    None => break,
                }
            };
            match frame {
                Some(frame) => {
                    if let Ok(data) = frame.into_data() {
                        if self.time_to_first_byte.is_none() && !data.is_empty() {
                            self.time_to_first_byte = Some(self.started.elapsed());
                        }
                        gathered.extend_from_slice(&data);
                        if gathered.len() >= self.buffer_size {
                            break;
                        }
                    }
                }
                None => {
                    self.finished();
                    settle_connection().await;
                    break;
                }
            }
        }
        if gathered.is_empty() && self.body.is_none() {
            return Ok(None);
        }
        Ok(Some(gathered.freeze()))
    }

    /// The next events: at least one, with every further event already received; `None` at
    /// the end of the stream.
    pub async fn next_events(&mut self) -> Result<Option<Vec<Event>>, HttpError> {
        loop {
            let Some(chunk) = self.next_chunk().await? else {
                self.decoder.finish();
                return Ok(None);
            };
            let events = self.decoder.feed(&chunk);
            if !events.is_empty() {
                if self.time_to_first_event.is_none() {
                    self.time_to_first_event = Some(self.started.elapsed());
                }
                return Ok(Some(events));
            }
        }
    }
}
