//! Our hand on every connection: the TCP stream under hyper (and under TLS) is wrapped so that the
//! pool statistics count what really exists, read and write timeouts apply per operation, and an
//! idle connection can be closed from outside (`cleanup_expired_connections()`).
//!
//! Busy or idle: hyper does not say which of its pooled connections carries a request. A
//! connection becomes busy when a request is written on it (the first write after it was idle)
//! and idle again when the caller has read the whole response (`Conn::release`, told which
//! connection by the handle hyper copies into every response's extensions). Each busy period
//! has a sequence number, so a release that arrives after hyper already reused the connection
//! for the next request does not mark that one idle. A TLS connection is busy from its handshake
//! on: it is only ever opened for a request.
//!
//! The read timeout is armed only while the connection is busy: an idle pooled connection is
//! polled for reads all the time (to notice the server closing it), and silence there is normal.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use http::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::local::{LocalConnector, LocalTcp};
use super::rt::Sleep;

use super::error::IoTimeout;
use super::stats::{HostCounters, Stats};

/// What is known of one connection, shared by its stream, the registry and every response it
/// carried.
pub(crate) struct Conn {
    host: Arc<HostCounters>,
    stats: Arc<Stats>,
    /// `sequence << 1 | busy`: the number of busy periods so far, and whether one is open.
    state: AtomicU64,
    /// Nanoseconds since `epoch` of the last byte moved or the last release.
    last_activity: AtomicU64,
    close_requested: AtomicBool,
    closed: AtomicBool,
    /// Responses this connection has carried (a response after the first is a reuse; counted
    /// apart from the busy periods, which a late release can merge).
    served: AtomicU64,
    /// hyper's connection task is waiting to read while no request is out: it has finished
    /// with the last response, and the connection is (about to be) back in its pool.
    parked: AtomicBool,
    /// The task reading the connection, woken to close it.
    reader: AtomicWaker,
    epoch: Instant,
}

impl Conn {
    fn touch(&self) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        self.last_activity.store(now, Ordering::Relaxed);
    }

    fn busy(&self) -> bool {
        self.state.load(Ordering::Acquire) & 1 == 1
    }

    fn mark_busy(&self) {
        let started = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & 1 == 0).then_some(((s >> 1) + 1) << 1 | 1)
            });
        if started.is_ok() {
            self.parked.store(false, Ordering::Release);
            // hyper registered its read before writing the request: poll it again so the read
            // timeout, armed only while busy, starts now.
            self.reader.wake();
        }
    }

    /// Counts a response on this connection; whether it had carried one before.
    pub(crate) fn served_before(&self) -> bool {
        self.served.fetch_add(1, Ordering::AcqRel) > 0
    }

    pub(crate) fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire)
    }

    /// The busy period a response arrived in (read when its headers arrive).
    pub(crate) fn period(&self) -> u64 {
        self.state.load(Ordering::Acquire) >> 1
    }

    /// The caller has the whole response of busy period `period`: the connection is idle,
    /// unless hyper already wrote the next request on it.
    pub(crate) fn release(&self, period: u64) {
        let busy = period << 1 | 1;
        if self
            .state
            .compare_exchange(busy, period << 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.touch();
        }
    }

    fn idle_for(&self) -> Duration {
        let last = self.last_activity.load(Ordering::Relaxed);
        let now = self.epoch.elapsed().as_nanos() as u64;
        Duration::from_nanos(now.saturating_sub(last))
    }
}

/// The handle hyper copies into each response (`Connected::extra`).
#[derive(Clone)]
pub(crate) struct ConnHandle(pub(crate) Arc<Conn>);

/// The connections of one pool (one runtime generation of one client).
#[derive(Default)]
pub(crate) struct Registry {
    conns: Mutex<Vec<Weak<Conn>>>,
}

/// Open connections of one host, as counted from the registry.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenCount {
    pub active: usize,
    pub idle: usize,
}

impl Registry {
    fn add(&self, conn: &Arc<Conn>) {
        let mut conns = self.conns.lock();
        conns.retain(|c| {
            c.upgrade()
                .is_some_and(|c| !c.closed.load(Ordering::Acquire))
        });
        conns.push(Arc::downgrade(conn));
    }

    fn live(&self) -> Vec<Arc<Conn>> {
        let mut conns = self.conns.lock();
        let mut live = Vec::with_capacity(conns.len());
        conns.retain(|c| match c.upgrade() {
            Some(conn) if !conn.closed.load(Ordering::Acquire) => {
                live.push(conn);
                true
            }
            _ => false,
        });
        live
    }

    /// Active and idle connections per host key.
    pub(crate) fn open_by_host(&self) -> Vec<(String, OpenCount)> {
        let mut by_host: Vec<(String, OpenCount)> = Vec::new();
        for conn in self.live() {
            let key = conn.host.key.as_str();
            let index = match by_host.iter().position(|(k, _)| k == key) {
                Some(index) => index,
                None => {
                    by_host.push((key.to_owned(), OpenCount::default()));
                    by_host.len() - 1
                }
            };
            if conn.busy() {
                by_host[index].1.active += 1;
            } else {
                by_host[index].1.idle += 1;
            }
        }
        by_host
    }

    /// Asks every idle connection unused for longer than `expiry` to close; how many.
    pub(crate) fn close_expired(&self, expiry: Duration) -> usize {
        let mut closed = 0;
        for conn in self.live() {
            if !conn.busy()
                && conn.idle_for() >= expiry
                && !conn.close_requested.swap(true, Ordering::AcqRel)
            {
                conn.reader.wake();
                closed += 1;
            }
        }
        closed
    }
}

/// Per-operation limits applied by the stream wrapper.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IoTimeouts {
    pub read: Option<Duration>,
    pub write: Option<Duration>,
}

/// The TCP stream of one connection, wrapped.
pub(crate) struct TrackedTcp {
    tcp: Tcp,
    /// Connected to a forward proxy: hyper then writes requests in absolute form.
    via_proxy: bool,
    conn: Arc<Conn>,
    timeouts: IoTimeouts,
    read_deadline: Deadline,
    write_deadline: Deadline,
    /// The last write could not move bytes (the server is not reading).
    write_stalled: bool,
}

impl Drop for TrackedTcp {
    fn drop(&mut self) {
        self.conn.closed.store(true, Ordering::Release);
        self.conn.stats.connection_closed();
    }
}

/// A read or write timeout of one connection, armed for each operation that waits.
///
/// The timer stays registered between operations instead of being dropped when one completes
/// and made anew for the next: tokio's timer wakes its driver thread whenever a new deadline is
/// earlier than any it holds, so a fresh 60-second read timer per request cost a wake-up write
/// (and a pass of the driver) per request on an otherwise idle runtime. A registered timer is
/// never later than the armed deadline; when it fires early (it was set for an earlier
/// operation), it is moved to the armed deadline, once per timeout period at most.
#[derive(Default)]
struct Deadline {
    /// When the waiting operation times out; `None` while none waits.
    due: Option<tokio::time::Instant>,
    timer: Option<Sleep>,
}

impl Deadline {
    /// The operation completed: nothing waits any more (the timer stays registered).
    fn disarm(&mut self) {
        self.due = None;
    }

    /// A waiting operation gets `limit` from now (nothing changes when none waits).
    fn restart(&mut self, limit: Duration) {
        if self.due.is_some() {
            self.due = Some(tokio::time::Instant::now() + limit);
        }
    }

    /// The operation must wait: arms the deadline `limit` from now unless it is armed already,
    /// and an error once it has passed.
    fn poll(
        &mut self,
        limit: Duration,
        cx: &mut Context<'_>,
        which: IoTimeout,
    ) -> Poll<io::Result<()>> {
        let now = tokio::time::Instant::now();
        let due = *self.due.get_or_insert(now + limit);
        let timer = self
            .timer
            .get_or_insert_with(|| super::rt::sleep_until(due));
        if timer.deadline() > due {
            timer.reset(due);
        }
        loop {
            match Pin::new(&mut *timer).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if now >= due => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, which)))
                }
                // Set for an earlier operation: move it (it then waits, registering `cx`).
                Poll::Ready(()) => timer.reset(due),
            }
        }
    }
}

impl AsyncRead for TrackedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.read_deadline.disarm();
                if buf.filled().len() > before {
                    this.conn.touch();
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let conn = &this.conn;
                conn.reader.register(cx.waker());
                if !conn.busy() {
                    conn.parked.store(true, Ordering::Release);
                }
                if conn.close_requested.load(Ordering::Acquire) && !conn.busy() {
                    // End of stream: hyper drops an idle connection whose peer has gone.
                    return Poll::Ready(Ok(()));
                }
                match this.timeouts.read {
                    Some(limit) if conn.busy() => {
                        if this.write_stalled {
                            this.read_deadline.restart(limit);
                        }
                        this.read_deadline.poll(limit, cx, IoTimeout::Read)
                    }
                    _ => {
                        this.read_deadline.disarm();
                        Poll::Pending
                    }
                }
            }
        }
    }
}

impl TrackedTcp {
    /// A write moved bytes (the connection is busy with a request) or stalled (the write
    /// timeout runs while it does).
    ///
    /// A server is silent while it receives the request, so a waiting read's timeout counts
    /// from the last write that moved bytes (as httpx counts `read` from the end of the
    /// upload), and while a write is stalled only the write timeout runs (`poll_read`). Before,
    /// an upload that took longer than `read` failed with a read timeout.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        self.write_stalled = polled.is_pending();
        match polled {
            Poll::Ready(Ok(written)) => {
                self.write_deadline.disarm();
                if let (Some(limit), true) = (self.timeouts.read, written > 0) {
                    self.read_deadline.restart(limit);
                }
                if written > 0 {
                    self.conn.mark_busy();
                    self.conn.touch();
                }
                Poll::Ready(Ok(written))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => match self.timeouts.write {
                Some(limit) => match self.write_deadline.poll(limit, cx, IoTimeout::Write) {
                    Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                    _ => Poll::Pending,
                },
                None => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for TrackedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.tcp).poll_write(cx, data);
        this.after_write(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        this.after_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

impl Connection for TrackedTcp {
    fn connected(&self) -> Connected {
        let connected = match &self.tcp {
            Tcp::Tokio(tcp) => tcp.connected(),
            Tcp::Local(_) => Connected::new(),
        };
        connected
            .proxy(self.via_proxy)
            .extra(ConnHandle(Arc::clone(&self.conn)))
    }
}

/// The TCP stream under the wrapper: the runtime's, or a loop engine's (`local`).
pub(crate) enum Tcp {
    Tokio(TcpStream),
    Local(LocalTcp),
}

macro_rules! on_tcp {
    ($self:expr, $tcp:ident => $body:expr) => {
        match $self.get_mut() {
            Tcp::Tokio($tcp) => {
                let $tcp = Pin::new($tcp);
                $body
            }
            Tcp::Local($tcp) => {
                let $tcp = Pin::new($tcp);
                $body
            }
        }
    };
}

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        on_tcp!(self, tcp => tcp.poll_read(cx, buf))
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        on_tcp!(self, tcp => tcp.poll_write(cx, data))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_tcp!(self, tcp => tcp.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_tcp!(self, tcp => tcp.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_tcp!(self, tcp => tcp.poll_shutdown(cx))
    }
}

/// How a connection's TCP stream is opened: hyper-util's connector on the runtime, or a loop
/// engine's.
#[derive(Clone)]
pub(crate) enum Dial {
    Tokio(HttpConnector),
    Local(LocalConnector),
}

/// The TCP connector under TLS: hyper-util's (or a loop engine's), with every stream wrapped and
/// registered.
#[derive(Clone)]
pub(crate) struct TrackingConnector {
    pub(crate) http: Dial,
    pub(crate) registry: Arc<Registry>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) timeouts: IoTimeouts,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for TrackingConnector {
    type Response = TokioIo<TrackedTcp>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match &mut self.http {
            Dial::Tokio(http) => {
                tower_service::Service::<Uri>::poll_ready(http, cx).map_err(Into::into)
            }
            Dial::Local(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let host = self.stats.host(&super::client::host_key(&uri));
        let connecting: Pin<Box<dyn Future<Output = Result<Tcp, BoxError>> + Send>> =
            match &mut self.http {
                Dial::Tokio(http) => {
                    let connecting = tower_service::Service::<Uri>::call(http, uri);
                    Box::pin(async move {
                        Ok(Tcp::Tokio(
                            connecting.await.map_err(BoxError::from)?.into_inner(),
                        ))
                    })
                }
                Dial::Local(local) => {
                    let connecting = local.connect(&uri);
                    Box::pin(async move { Ok(Tcp::Local(connecting.await?)) })
                }
            };
        let registry = Arc::clone(&self.registry);
        let stats = Arc::clone(&self.stats);
        let timeouts = self.timeouts;
        Box::pin(async move {
            let tcp = connecting.await?;
            let epoch = stats.epoch();
            let conn = Arc::new(Conn {
                host,
                stats: Arc::clone(&stats),
                state: AtomicU64::new(0),
                last_activity: AtomicU64::new(epoch.elapsed().as_nanos() as u64),
                close_requested: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                parked: AtomicBool::new(false),
                served: AtomicU64::new(0),
                reader: AtomicWaker::new(),
                epoch,
            });
            stats.connection_opened(&conn.host);
            registry.add(&conn);
            Ok(TokioIo::new(TrackedTcp {
                tcp,
                via_proxy: false,
                conn,
                timeouts,
                read_deadline: Deadline::default(),
                write_deadline: Deadline::default(),
                write_stalled: false,
            }))
        })
    }
}

/// The connector hyper's pool uses: TLS (for https) over the tracking TCP connector, through
/// the proxy the environment names for the destination (`HTTP_PROXY`, `HTTPS_PROXY`,
/// `ALL_PROXY`, `NO_PROXY`, as curl and httpx read them): https through an HTTP `CONNECT`
/// tunnel, http as absolute-form requests to the proxy. The whole of it is bounded by the
/// connect timeout.
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) https: hyper_rustls::HttpsConnector<TrackingConnector>,
    pub(crate) tracking: TrackingConnector,
    /// Shared: hyper clones the connector for every request it sends.
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) http2: bool,
    pub(crate) proxies: Option<Arc<Matcher>>,
    pub(crate) connect_timeout: Option<Duration>,
}

pub(crate) type Stream = hyper_rustls::MaybeHttpsStream<TokioIo<TrackedTcp>>;

/// An environment variable as Python's `urllib.request.getproxies()` reads it (which httpx
/// uses): the lower-case name first, even when empty (an empty one turns the setting off);
/// `HTTP_PROXY` not at all in a CGI script (`REQUEST_METHOD` set: the client controls it).
fn proxy_variable(kind: &str) -> String {
    if let Ok(value) = std::env::var(format!("{kind}_proxy")) {
        return value;
    }
    if kind == "http" && std::env::var_os("REQUEST_METHOD").is_some() {
        return String::new();
    }
    std::env::var(format!("{}_PROXY", kind.to_ascii_uppercase())).unwrap_or_default()
}

/// The proxies of the environment, or `None` when it names none or `NO_PROXY` is `*` (every
/// host bypasses them, as for httpx and curl).
pub(crate) fn proxies_from_env() -> Option<Arc<Matcher>> {
    let [http, https, all, no] = ["http", "https", "all", "no"].map(proxy_variable);
    if [&http, &https, &all].iter().all(|value| value.is_empty())
        || no.split(',').any(|entry| entry.trim() == "*")
    {
        return None;
    }
    Some(Arc::new(
        Matcher::builder()
            .http(http)
            .https(https)
            .all(all)
            .no(no)
            .build(),
    ))
}

impl Connector {
    fn connect(
        &mut self,
        uri: Uri,
    ) -> Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>> {
        let intercept = self.proxies.as_ref().and_then(|m| m.intercept(&uri));
        let Some(intercept) = intercept else {
            return Box::pin(tower_service::Service::<Uri>::call(&mut self.https, uri));
        };
        let proxy = intercept.uri().clone();
        if uri.scheme_str() == Some("https") {
            let mut tunnel = Tunnel::new(proxy, self.tracking.clone());
            if let Some(auth) = intercept.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            let builder = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(rustls::ClientConfig::clone(&self.tls))
                .https_or_http();
            let mut https = if self.http2 {
                builder.enable_http1().enable_http2().wrap_connector(tunnel)
            } else {
                builder.enable_http1().wrap_connector(tunnel)
            };
            return Box::pin(tower_service::Service::<Uri>::call(&mut https, uri));
        }
        let connecting = tower_service::Service::<Uri>::call(&mut self.tracking, proxy);
        Box::pin(async move {
            let mut io = connecting.await?;
            io.inner_mut().via_proxy = true;
            Ok(hyper_rustls::MaybeHttpsStream::Http(io))
        })
    }
}

tokio::task_local! {
    /// The connect timeout of the request whose task is polling: a connection made for it is
    /// bounded by the request's own limit (hyper-util starts the connection inside the
    /// request's future), one made in the background by the client's.
    pub(crate) static REQUEST_CONNECT_TIMEOUT: Option<Duration>;
}

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.https, cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.connect(uri);
        let connect_timeout = REQUEST_CONNECT_TIMEOUT
            .try_with(|limit| *limit)
            .unwrap_or(self.connect_timeout);
        Box::pin(async move {
            match connect_timeout {
                Some(limit) => match super::rt::timeout(limit, connecting).await {
                    Ok(result) => result,
                    Err(_) => Err(Box::new(IoTimeout::Connect) as BoxError),
                },
                None => connecting.await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(deadline: &mut Deadline) -> Poll<io::Result<()>> {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        deadline.poll(Duration::from_secs(10), &mut cx, IoTimeout::Read)
    }

    fn timed_out(polled: Poll<io::Result<()>>) -> bool {
        matches!(polled, Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::TimedOut)
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_times_out_its_own_operation_only() {
        let step = |secs| tokio::time::advance(Duration::from_secs(secs));
        let mut deadline = Deadline::default();
        // Operation 1 waits from t=0 (due at 10) and completes at t=4.
        assert!(poll(&mut deadline).is_pending());
        step(4).await;
        deadline.disarm();
        // Operation 2 waits from t=5 (due at 15): the timer, still set for 10, is kept.
        step(1).await;
        assert!(poll(&mut deadline).is_pending());
        step(5).await;
        // t=10: the timer fired for operation 1; operation 2 has 5 seconds left.
        assert!(poll(&mut deadline).is_pending());
        step(4).await;
        assert!(poll(&mut deadline).is_pending());
        step(1).await;
        assert!(timed_out(poll(&mut deadline)));
        // Restarted while waiting (a write moved bytes 5 s into the wait): 10 s from then.
        deadline.disarm();
        step(3).await;
        assert!(poll(&mut deadline).is_pending());
        step(5).await;
        deadline.restart(Duration::from_secs(10));
        step(9).await;
        assert!(poll(&mut deadline).is_pending());
        step(1).await;
        assert!(timed_out(poll(&mut deadline)));
        // A new operation after a long quiet spell gets its full time again.
        deadline.disarm();
        step(100).await;
        assert!(poll(&mut deadline).is_pending());
        step(9).await;
        assert!(poll(&mut deadline).is_pending());
        step(1).await;
        assert!(timed_out(poll(&mut deadline)));
    }
}
