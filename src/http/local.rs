//! The loop engine: HTTP/1.1 requests driven by the thread of an event loop that can watch file
//! descriptors (asyncio's selector loops, uvloop) instead of by the tokio runtime.
//!
//! Why: on the runtime, each request of an asyncio caller crosses threads twice (the worker is
//! woken to send it, and the loop thread to take the answer), and with few requests in flight
//! those sleeps and wake-ups are most of a request's CPU: ~62 µs per request with one in flight,
//! against ~30 µs for a bare asyncio protocol client. Here the request is written by the loop
//! thread while the caller's `await` is being set up, and the answer is read by the loop thread
//! when the socket becomes readable: one wake-up per request, as asyncio's own transports.
//!
//! How:
//! - One engine per event loop, made and torn down by the Python layer (`crate::py::http_loop`),
//!   which implements `Host` for it. The engine owns one `mio::Poll`; the loop watches its
//!   descriptor (`add_reader`) and calls `Engine::turn` when it is readable. The sockets register
//!   with that poll, not with the loop, so a connection costs no Python call.
//! - Tasks (the request futures, and hyper's connection tasks) are polled only on the loop
//!   thread, inside `turn`. A wake-up on the loop thread during a turn only queues the task; on
//!   the loop thread otherwise it asks the host for a turn (`call_soon`); from another thread
//!   (a pool gate released by a request on the runtime, a name resolved on a blocking thread)
//!   it writes the poll's waker, which makes the descriptor readable: no GIL, no Python call.
//! - Timers: one deadline heap; the host keeps one loop timer armed for the earliest deadline
//!   (`Host::wake_at`), re-armed only when an earlier one arrives or it fires.
//! - The request code itself is the client's (`client`, `conn`): it reaches the engine it runs
//!   on through `current()` (set while a turn polls), see `rt`.
//!
//! What stays on the runtime: the blocking `Client`, HTTP/2, loops that cannot watch
//! descriptors (Windows' proactor loop), and the name lookups (`getaddrinfo` blocks; it runs on
//! the runtime's blocking threads, as hyper-util's resolver does).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use futures_util::future::{AbortHandle, Abortable};
use futures_util::task::AtomicWaker;
use http::Uri;
use mio::{Events, Interest, Token};
use parking_lot::Mutex;
use rustc_hash::FxHashMap as HashMap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the engine needs from its event loop (called on the loop thread only).
pub trait Host: Send + Sync {
    /// Run `Engine::turn(Wakeup::Tasks)` soon (`loop.call_soon`).
    fn schedule(&self);
    /// Run `Engine::turn(Wakeup::Timer)` at `at`, replacing the timer armed before
    /// (`loop.call_later`).
    fn wake_at(&self, at: Instant);
}

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a turn was called for (what it must look at before polling the ready tasks).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wakeup {
    /// The poll's descriptor is readable: sockets are ready, or another thread woke a task.
    Io,
    /// The host's timer: its deadline has passed.
    Timer,
    /// Tasks were queued on the loop thread (by the host's `call_soon`, or a new task).
    Tasks,
}

/// The token of the poll's own waker (cross-thread wake-ups).
const WAKER: Token = Token(0);
/// Tasks polled in one turn before the rest wait for the next (other callbacks of the loop run
/// in between).
const TURN_BUDGET: usize = 4096;

thread_local! {
    /// The engine whose turn is running on this thread.
    static CURRENT: RefCell<Option<Arc<Engine>>> = const { RefCell::new(None) };
}

/// The engine whose task is being polled here, if any: request code asks it which engine it
/// runs on (`rt`), and a loop pool is chosen by it (`Client::pool_here`).
pub fn current() -> Option<Arc<Engine>> {
    CURRENT.with(|current| current.borrow().clone())
}

struct Task {
    id: u64,
    job: Mutex<Option<Job>>,
    queued: AtomicBool,
    engine: std::sync::Weak<Engine>,
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(engine) = self.engine.upgrade() {
            // A closed engine's tasks are dropped: a late wake-up (an abort, a permit given
            // back) has nothing to run.
            if engine.is_closed() {
                return;
            }
            engine.ready.lock().push_back(Arc::clone(self));
            engine.notify();
        }
    }
}

/// Readiness of one socket, set by the poll's events and cleared by the reads and writes that
/// found nothing to do (edge-triggered, as tokio's registrations).
struct IoSlot {
    readable: AtomicBool,
    writable: AtomicBool,
    /// The peer closed its side (or the socket failed): sticky for reads, which will never block
    /// again (an event that reported data and the close together is not repeated once the data
    /// is read). Not for writes: a peer that closed its side may still be written to, and may
    /// stop reading (a write then blocks, and waits for its own readiness or timeout).
    read_closed: AtomicBool,
    /// Writing can never succeed again (the socket failed or was shut down for writing).
    write_closed: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    wakers: HashMap<u64, Waker>,
    /// The deadline the host's loop timer is armed for.
    armed: Option<Instant>,
}

pub struct Engine {
    poll: Mutex<(mio::Poll, Events)>,
    registry: mio::Registry,
    waker: mio::Waker,
    host: std::sync::OnceLock<Box<dyn Host>>,
    thread: ThreadId,
    /// The runtime generation it was made in (a forked child makes its own).
    generation: u64,
    ready: Mutex<VecDeque<Arc<Task>>>,
    tasks: Mutex<HashMap<u64, Arc<Task>>>,
    io: Mutex<HashMap<usize, Arc<IoSlot>>>,
    timers: Mutex<Timers>,
    next_id: AtomicU64,
    /// A turn is running (tasks woken on the loop thread are polled by it).
    running: AtomicBool,
    /// A turn has been asked for and has not started yet.
    scheduled: AtomicBool,
    closed: AtomicBool,
}

impl Engine {
    /// A new engine for the loop running on this thread; `set_host` completes it.
    pub fn new() -> io::Result<Arc<Engine>> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        Ok(Arc::new(Engine {
            poll: Mutex::new((poll, Events::with_capacity(256))),
            registry,
            waker,
            host: std::sync::OnceLock::new(),
            thread: std::thread::current().id(),
            generation: crate::runtime::generation(),
            ready: Mutex::new(VecDeque::new()),
            tasks: Mutex::new(HashMap::default()),
            io: Mutex::new(HashMap::default()),
            timers: Mutex::new(Timers::default()),
            next_id: AtomicU64::new(1),
            running: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }))
    }

    pub fn set_host(&self, host: Box<dyn Host>) {
        let _ = self.host.set(host);
    }

    /// The descriptor the loop watches: readable when a socket is ready or a wake-up came.
    #[cfg(unix)]
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.poll.lock().0.as_raw_fd()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn on_loop_thread(&self) -> bool {
        std::thread::current().id() == self.thread
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A task was queued: makes sure a turn polls it.
    fn notify(&self) {
        let here = self.on_loop_thread();
        if here && self.running.load(Ordering::Acquire) {
            return;
        }
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        if here {
            if let Some(host) = self.host.get() {
                host.schedule();
            }
        } else {
            // An error means the poll is gone: so is everything it would run.
            let _ = self.waker.wake();
        }
    }

    /// Runs `job` on this engine; the handle stops it (dropped at its next poll). On a closed
    /// engine the job is dropped at once.
    pub fn spawn(self: &Arc<Self>, job: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        self.queue(job, true)
    }

    /// `spawn` for a caller on the loop thread that runs a turn itself right after (no turn is
    /// asked of the loop for it).
    pub fn spawn_for_turn(
        self: &Arc<Self>,
        job: impl Future<Output = ()> + Send + 'static,
    ) -> AbortHandle {
        self.queue(job, false)
    }

    fn queue(
        self: &Arc<Self>,
        job: impl Future<Output = ()> + Send + 'static,
        notify: bool,
    ) -> AbortHandle {
        let (handle, registration) = AbortHandle::new_pair();
        if self.is_closed() {
            handle.abort();
            return handle;
        }
        let job = Abortable::new(job, registration);
        let task = Arc::new(Task {
            id: self.next_id(),
            job: Mutex::new(Some(Box::pin(async move {
                let _ = job.await;
            }))),
            queued: AtomicBool::new(false),
            engine: Arc::downgrade(self),
        });
        self.tasks.lock().insert(task.id, Arc::clone(&task));
        if notify {
            task.wake_by_ref();
        } else {
            task.queued.store(true, Ordering::Release);
            self.ready.lock().push_back(task);
        }
        handle
    }

    /// One turn, on the loop thread: takes the sockets' readiness (`Wakeup::Io`) or fires the
    /// due timers (`Wakeup::Timer`), then polls the ready tasks.
    pub fn turn(self: &Arc<Self>, why: Wakeup) {
        // A child forked since must not touch the parent's poll and sockets (see
        // `crate::py::http_loop`).
        if self.is_closed() || self.generation != crate::runtime::generation() {
            return;
        }
        if self.running.swap(true, Ordering::AcqRel) {
            // Called from inside a turn (Python code a task ran): the running turn polls the
            // tasks, but its timers were taken already, so the timer's turn comes again.
            if why == Wakeup::Timer {
                if let Some(host) = self.host.get() {
                    host.wake_at(Instant::now());
                }
            }
            return;
        }
        self.scheduled.store(false, Ordering::Release);
        let previous = CURRENT.with(|current| current.borrow_mut().replace(Arc::clone(self)));
        match why {
            Wakeup::Io => self.take_events(),
            Wakeup::Timer => self.fire_timers(),
            Wakeup::Tasks => {}
        }
        let mut budget = TURN_BUDGET;
        loop {
            let Some(task) = self.ready.lock().pop_front() else {
                break;
            };
            task.queued.store(false, Ordering::Release);
            let waker = Waker::from(Arc::clone(&task));
            let mut cx = Context::from_waker(&waker);
            // Taken out while it is polled, so that nothing is locked while it runs (it may call
            // into Python, which may close the engine).
            let Some(mut job) = task.job.lock().take() else {
                continue;
            };
            // A task that panics is over (as a tokio task is); the panic stops here, never in
            // the loop's callback.
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                job.as_mut().poll(&mut cx)
            }));
            if matches!(polled, Ok(Poll::Pending)) && !self.is_closed() {
                *task.job.lock() = Some(job);
            } else {
                drop(job);
                self.tasks.lock().remove(&task.id);
            }
            budget -= 1;
            if budget == 0 {
                break;
            }
        }
        CURRENT.with(|current| *current.borrow_mut() = previous);
        self.running.store(false, Ordering::Release);
        if !self.ready.lock().is_empty() {
            self.notify();
        }
    }

    fn take_events(&self) {
        let mut woken = Vec::new();
        {
            let mut guard = self.poll.lock();
            let (poll, events) = &mut *guard;
            if poll.poll(events, Some(Duration::ZERO)).is_err() {
                return;
            }
            let io = self.io.lock();
            for event in events.iter() {
                if event.token() == WAKER {
                    continue;
                }
                let Some(slot) = io.get(&event.token().0) else {
                    continue;
                };
                if event.is_read_closed() || event.is_error() {
                    slot.read_closed.store(true, Ordering::Release);
                }
                if event.is_write_closed() || event.is_error() {
                    slot.write_closed.store(true, Ordering::Release);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    slot.readable.store(true, Ordering::Release);
                    woken.push((Arc::clone(slot), true));
                }
                if event.is_writable() || event.is_write_closed() || event.is_error() {
                    slot.writable.store(true, Ordering::Release);
                    woken.push((Arc::clone(slot), false));
                }
            }
        }
        for (slot, read) in woken {
            if read {
                slot.reader.wake();
            } else {
                slot.writer.wake();
            }
        }
    }

    fn fire_timers(&self) {
        let now = Instant::now();
        let mut due = Vec::new();
        let arm = {
            let mut timers = self.timers.lock();
            while let Some(Reverse((at, id))) = timers.heap.peek().copied() {
                if at > now {
                    break;
                }
                timers.heap.pop();
                if let Some(waker) = timers.wakers.remove(&id) {
                    due.push(waker);
                }
            }
            // Entries whose sleep was dropped or moved are skipped, not armed for.
            while let Some(Reverse((_, id))) = timers.heap.peek().copied() {
                if timers.wakers.contains_key(&id) {
                    break;
                }
                timers.heap.pop();
            }
            timers.armed = timers.heap.peek().map(|Reverse((at, _))| *at);
            timers.armed
        };
        if let (Some(at), Some(host)) = (arm, self.host.get()) {
            host.wake_at(at);
        }
        for waker in due {
            waker.wake();
        }
    }

    /// Registers a timer entry (from a sleep polled on the loop thread).
    fn add_timer(&self, at: Instant, waker: &Waker) -> u64 {
        let id = self.next_id();
        let arm = {
            let mut timers = self.timers.lock();
            timers.heap.push(Reverse((at, id)));
            timers.wakers.insert(id, waker.clone());
            let earlier = timers.armed.is_none_or(|armed| at < armed);
            if earlier {
                timers.armed = Some(at);
            }
            earlier
        };
        if arm {
            if let Some(host) = self.host.get() {
                host.wake_at(at);
            }
        }
        id
    }

    fn update_timer(&self, id: u64, waker: &Waker) {
        if let Some(slot) = self.timers.lock().wakers.get_mut(&id) {
            if !slot.will_wake(waker) {
                *slot = waker.clone();
            }
        }
    }

    fn remove_timer(&self, id: u64) {
        let mut timers = self.timers.lock();
        timers.wakers.remove(&id);
        // Entries of sleeps that ended early stay in the heap until their deadline (60 s for a
        // read timeout, 600 s for LiteLLM's own): pruned once they are most of it.
        if timers.heap.len() > 64 + 2 * timers.wakers.len() {
            let Timers { heap, wakers, .. } = &mut *timers;
            heap.retain(|Reverse((_, id))| wakers.contains_key(id));
        }
    }

    fn register(&self, mut stream: mio::net::TcpStream) -> io::Result<LocalTcp> {
        let key = self.next_id() as usize;
        self.registry.register(
            &mut stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let slot = Arc::new(IoSlot {
            readable: AtomicBool::new(true),
            read_closed: AtomicBool::new(false),
            write_closed: AtomicBool::new(false),
            // A connect in progress: writable once it is made.
            writable: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            writer: AtomicWaker::new(),
        });
        self.io.lock().insert(key, Arc::clone(&slot));
        Ok(LocalTcp {
            stream,
            slot,
            key,
            engine: std::sync::Weak::new(),
        })
    }

    /// The loop is closed (or the engine replaced): drops every task, timer and socket, which
    /// closes the connections. On the loop thread, with the GIL (the tasks hold Python objects).
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let tasks: Vec<Arc<Task>> = self.tasks.lock().drain().map(|(_, task)| task).collect();
        self.ready.lock().clear();
        for task in tasks {
            // Taken out first: dropping a job may wake another task (and lock the queue).
            let job = task.job.lock().take();
            drop(job);
        }
        *self.timers.lock() = Timers::default();
        self.io.lock().clear();
    }
}

/// A sleep of the loop engine (see `rt::Sleep`).
pub struct Sleep {
    engine: Arc<Engine>,
    deadline: Instant,
    entry: Option<u64>,
}

impl Sleep {
    pub fn new(engine: Arc<Engine>, deadline: Instant) -> Self {
        Sleep {
            engine,
            deadline,
            entry: None,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn reset(&mut self, deadline: Instant) {
        if let Some(id) = self.entry.take() {
            self.engine.remove_timer(id);
        }
        self.deadline = deadline;
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some(id) = self.entry.take() {
                self.engine.remove_timer(id);
            }
            return Poll::Ready(());
        }
        match self.entry {
            Some(id) => self.engine.update_timer(id, cx.waker()),
            None => {
                let id = self.engine.add_timer(self.deadline, cx.waker());
                self.entry = Some(id);
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.entry.take() {
            self.engine.remove_timer(id);
        }
    }
}

/// A TCP connection of the loop engine: a non-blocking socket registered with its poll.
pub struct LocalTcp {
    stream: mio::net::TcpStream,
    slot: Arc<IoSlot>,
    key: usize,
    /// The engine whose poll and map hold this socket (it leaves both on drop; once the engine
    /// is gone, so is its poll, and closing the socket is all there is to do).
    engine: std::sync::Weak<Engine>,
}

impl LocalTcp {
    fn poll_ready(&self, cx: &mut Context<'_>, read: bool) -> Poll<()> {
        let (flag, closed, waker) = if read {
            (
                &self.slot.readable,
                &self.slot.read_closed,
                &self.slot.reader,
            )
        } else {
            (
                &self.slot.writable,
                &self.slot.write_closed,
                &self.slot.writer,
            )
        };
        let ready = || flag.load(Ordering::Acquire) || closed.load(Ordering::Acquire);
        if ready() {
            return Poll::Ready(());
        }
        waker.register(cx.waker());
        // An event between the check and the registration set the flag (and woke nobody).
        if ready() {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn io<T>(
        &mut self,
        cx: &mut Context<'_>,
        read: bool,
        mut op: impl FnMut(&mut mio::net::TcpStream) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            if self.poll_ready(cx, read).is_pending() {
                return Poll::Pending;
            }
            match op(&mut self.stream) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    // Not ready after all: wait for the next event. Never tried again in this
                    // poll, so that no sticky flag can make it spin (events are taken on this
                    // thread, between polls, so none is missed meanwhile).
                    let (flag, waker) = if read {
                        (&self.slot.readable, &self.slot.reader)
                    } else {
                        (&self.slot.writable, &self.slot.writer)
                    };
                    flag.store(false, Ordering::Release);
                    waker.register(cx.waker());
                    return Poll::Pending;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                result => return Poll::Ready(result),
            }
        }
    }

    /// Waits for a connect in progress to finish.
    async fn connected(&mut self) -> io::Result<()> {
        loop {
            std::future::poll_fn(|cx| self.poll_ready(cx, false)).await;
            if let Some(err) = self.stream.take_error()? {
                return Err(err);
            }
            match self.stream.peer_addr() {
                Ok(_) => return self.stream.set_nodelay(true),
                Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                    if self.slot.write_closed.load(Ordering::Acquire)
                        || self.slot.read_closed.load(Ordering::Acquire)
                    {
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionRefused,
                            "the connection was closed while it was being made",
                        ));
                    }
                    self.slot.writable.store(false, Ordering::Release);
                }
                Err(err) => return Err(err),
            }
        }
    }
}

impl Drop for LocalTcp {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.upgrade() {
            let _ = engine.registry.deregister(&mut self.stream);
            engine.io.lock().remove(&self.key);
        }
    }
}

impl AsyncRead for LocalTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let unfilled = buf.initialize_unfilled();
        let wanted = unfilled.len();
        let readable = Arc::clone(&this.slot);
        match this.io(cx, true, |stream| stream.read(unfilled)) {
            Poll::Ready(Ok(read)) => {
                // A short read emptied the socket: the next read waits for its event instead of
                // paying a `recv` that finds nothing (as tokio does).
                if read > 0 && read < wanted {
                    readable.readable.store(false, Ordering::Release);
                }
                buf.advance(read);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for LocalTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().io(cx, false, |stream| stream.write(data))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .io(cx, false, |stream| stream.write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.shutdown(std::net::Shutdown::Write))
    }
}

/// Why a connection could not be made, said as hyper-util's connector says it (the same
/// messages on both engines: "tcp connect error: ...", "dns error: ...").
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct ConnectFailure {
    what: &'static str,
    #[source]
    source: io::Error,
}

/// Opens TCP connections for the loop engine of the task that asks (`current()`): the name
/// looked up on the runtime's blocking threads (unless it is an address), then each address
/// tried in turn with a non-blocking connect.
#[derive(Clone)]
pub struct LocalConnector {
    engine: Arc<Engine>,
}

impl LocalConnector {
    pub fn new(engine: Arc<Engine>) -> Self {
        LocalConnector { engine }
    }

    pub fn connect(
        &self,
        uri: &Uri,
    ) -> impl Future<Output = Result<LocalTcp, ConnectFailure>> + Send {
        let engine = Arc::clone(&self.engine);
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        async move {
            let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, port)],
                Err(_) => {
                    let name = host.clone();
                    let found = crate::runtime::runtime()
                        .spawn_blocking(move || {
                            (name.as_str(), port)
                                .to_socket_addrs()
                                .map(Iterator::collect::<Vec<_>>)
                        })
                        .await
                        .map_err(|err| io::Error::other(err.to_string()))
                        .and_then(|found| found);
                    found.map_err(|source| ConnectFailure {
                        what: "dns error",
                        source,
                    })?
                }
            };
            let mut last = None;
            for address in addresses {
                match connect(&engine, address).await {
                    Ok(tcp) => return Ok(tcp),
                    Err(err) => last = Some(err),
                }
            }
            Err(ConnectFailure {
                what: "tcp connect error",
                source: last.unwrap_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("no address found for {host}"),
                    )
                }),
            })
        }
    }
}

async fn connect(engine: &Arc<Engine>, address: SocketAddr) -> io::Result<LocalTcp> {
    let stream = mio::net::TcpStream::connect(address)?;
    let mut tcp = engine.register(stream)?;
    tcp.engine = Arc::downgrade(engine);
    tcp.connected().await?;
    Ok(tcp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what the engine asks of its loop.
    #[derive(Default)]
    struct Recorder {
        scheduled: AtomicU64,
        timers: Mutex<Vec<Instant>>,
    }

    struct Shared(Arc<Recorder>);

    impl Host for Shared {
        fn schedule(&self) {
            self.0.scheduled.fetch_add(1, Ordering::Relaxed);
        }
        fn wake_at(&self, at: Instant) {
            self.0.timers.lock().push(at);
        }
    }

    fn engine() -> (Arc<Engine>, Arc<Recorder>) {
        let engine = Engine::new().unwrap();
        let recorder = Arc::new(Recorder::default());
        engine.set_host(Box::new(Shared(Arc::clone(&recorder))));
        (engine, recorder)
    }

    /// Polls `sleep` once, as its task would.
    fn register(sleep: &mut Sleep) {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(sleep).poll(&mut cx).is_pending());
    }

    #[test]
    fn the_loop_timer_is_armed_only_for_an_earlier_deadline() {
        let (engine, recorder) = engine();
        let now = Instant::now();
        let later = now + Duration::from_secs(100);
        let sooner = now + Duration::from_secs(50);
        let latest = now + Duration::from_secs(200);
        let mut first = Sleep::new(Arc::clone(&engine), later);
        register(&mut first);
        let mut second = Sleep::new(Arc::clone(&engine), sooner);
        register(&mut second);
        let mut third = Sleep::new(Arc::clone(&engine), latest);
        register(&mut third);
        assert_eq!(*recorder.timers.lock(), vec![later, sooner]);
        // The sooner one goes away; when the loop timer fires (early, for it), the next live
        // deadline is armed, and the dropped entry is skipped.
        drop(second);
        engine.turn(Wakeup::Timer);
        assert_eq!(*recorder.timers.lock(), vec![later, sooner, later]);
        // A reset moves an entry: the old deadline is no longer armed for.
        first.reset(latest);
        register(&mut first);
        engine.turn(Wakeup::Timer);
        assert_eq!(recorder.timers.lock().last(), Some(&latest));
    }

    #[test]
    fn a_due_sleep_is_ready_and_wakes_its_task() {
        let (engine, _recorder) = engine();
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let engine_in_task = Arc::clone(&engine);
        engine.spawn(async move {
            Sleep::new(engine_in_task, Instant::now()).await;
            flag.store(true, Ordering::Release);
        });
        engine.turn(Wakeup::Tasks);
        assert!(done.load(Ordering::Acquire));
    }

    #[test]
    fn a_wake_from_another_thread_makes_the_poll_readable() {
        let (engine, recorder) = engine();
        let (sender, receiver) = tokio::sync::oneshot::channel::<u32>();
        let got = Arc::new(AtomicU64::new(0));
        let into = Arc::clone(&got);
        engine.spawn(async move {
            into.store(u64::from(receiver.await.unwrap()), Ordering::Release);
        });
        // On the loop thread, outside a turn: the host is asked for one.
        assert_eq!(recorder.scheduled.load(Ordering::Relaxed), 1);
        engine.turn(Wakeup::Tasks);
        assert_eq!(got.load(Ordering::Acquire), 0);
        std::thread::spawn(move || sender.send(7).unwrap())
            .join()
            .unwrap();
        // The other thread asked through the poll's waker, not the host.
        assert_eq!(recorder.scheduled.load(Ordering::Relaxed), 1);
        let mut events = Events::with_capacity(4);
        let readable = {
            let mut guard = engine.poll.lock();
            guard
                .0
                .poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            events.iter().any(|event| event.token() == WAKER)
        };
        assert!(readable);
        engine.turn(Wakeup::Io);
        assert_eq!(got.load(Ordering::Acquire), 7);
    }

    #[test]
    fn a_closed_engine_drops_its_tasks_and_runs_nothing_new() {
        let (engine, _recorder) = engine();
        let (_keep, receiver) = tokio::sync::oneshot::channel::<()>();
        let dropped = Arc::new(AtomicBool::new(false));
        struct OnDrop(Arc<AtomicBool>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let guard = OnDrop(Arc::clone(&dropped));
        engine.spawn(async move {
            let _guard = guard;
            let _ = receiver.await;
        });
        engine.turn(Wakeup::Tasks);
        assert!(!dropped.load(Ordering::Acquire));
        engine.close();
        assert!(dropped.load(Ordering::Acquire));
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let handle = engine.spawn(async move { flag.store(true, Ordering::Release) });
        engine.turn(Wakeup::Tasks);
        assert!(!ran.load(Ordering::Acquire) && handle.is_aborted());
    }
}
