//! Active health checks on the shared runtime: a GET of each deployment's health URL every
//! `interval`, each answer written into the tracker (`ProbeSink`) as soon as it is in, with no
//! Python thread and no GIL.
//!
//! - An answer is healthy when it is a 2xx or 3xx status and its whole body arrives within
//!   `timeout` (the one limit of the whole check, connecting included). A timeout, a refused or
//!   reset connection, an answer that is not HTTP or a malformed URL are unhealthy answers
//!   without a status. No retries: a check reports what the endpoint does now, and the next
//!   round asks again.
//! - The checks of a round run concurrently, so a slow endpoint delays only its own answer; a
//!   round ends when every check has answered or timed out, and the next one starts `interval`
//!   seconds later (as the Python thread of the fallback does it).
//! - An answer is recorded at the tracker's time (`ProbeClock`: the caller's monotonic clock,
//!   or its `ManualClock`), inside a `runtime::NoFork` section: the write takes the tracker's
//!   mutex, and a fork must never copy that mutex held by a runtime thread.
//! - Nothing is held across an await: the recording is one short synchronous call.
//!
//! Stopping: `Prober::stop` (or dropping the prober) aborts the task at its next await; checks
//! in flight are dropped unrecorded. In a child process made by `fork()` the task does not exist
//! (the runtime threads stayed in the parent): the prober reports itself stopped and is never
//! touched there, since its handle belongs to the parent's runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::http::retry::RetryPolicy;
use crate::http::{Client, ClientConfig, HttpError, Timeouts};
use crate::ratelimit::ManualClock;
use crate::runtime::{self, NoFork};

/// Connections the checks' client may open (and keep) per host: every deployment of a large
/// `model_list` may sit behind one gateway, and a check waiting for a free connection would time
/// out and report a healthy deployment unhealthy.
const MAX_CONNECTIONS: usize = 4096;

/// One check's answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeAnswer {
    pub healthy: bool,
    /// The HTTP status, when an answer arrived in time.
    pub status: Option<u16>,
    /// Seconds from the start of the check to its answer or failure.
    pub latency: f64,
}

/// Where answers go: the tracker.
pub trait ProbeSink: Send + Sync + 'static {
    fn record_probe(&self, index: usize, now: f64, answer: ProbeAnswer);
}

/// The tracker's clock, read without Python.
#[derive(Clone, Debug)]
pub enum ProbeClock {
    /// The caller's monotonic clock (Python's `time.monotonic`, the same `CLOCK_MONOTONIC` as
    /// `Instant`): it read `origin` at `at`.
    Monotonic { origin: f64, at: Instant },
    /// A `ManualClock` shared with the caller.
    Manual(ManualClock),
}

impl ProbeClock {
    pub fn monotonic(origin: f64) -> Self {
        ProbeClock::Monotonic {
            origin,
            at: Instant::now(),
        }
    }

    pub fn now(&self) -> f64 {
        match self {
            ProbeClock::Monotonic { origin, at } => origin + at.elapsed().as_secs_f64(),
            // As `ManualClock.now()` reads it in Python.
            ProbeClock::Manual(clock) => clock.now_ns() as f64 / 1e9,
        }
    }
}

/// The client of the health checks: no retries, large pools, the check's limit on every phase.
pub fn probe_client(timeout: Duration) -> Result<Client, HttpError> {
    Client::new(ClientConfig {
        max_connections: MAX_CONNECTIONS,
        max_keepalive_connections: MAX_CONNECTIONS,
        timeouts: phase_limits(timeout),
        retry: RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        },
        ..ClientConfig::default()
    })
}

fn phase_limits(timeout: Duration) -> Timeouts {
    Timeouts {
        connect: Some(timeout),
        read: Some(timeout),
        write: Some(timeout),
        pool: Some(timeout),
    }
}

/// One check of `url`.
pub async fn probe(client: &Client, url: &str, timeout: Duration) -> ProbeAnswer {
    let started = Instant::now();
    let status = match client.prepare("GET", url, &[], None, Some(phase_limits(timeout))) {
        Ok(prepared) => match tokio::time::timeout(timeout, client.fetch(prepared)).await {
            Ok(Ok(finished)) => Some(finished.head.status),
            Ok(Err(_)) | Err(_) => None,
        },
        Err(_) => None,
    };
    ProbeAnswer {
        healthy: matches!(status, Some(200..=399)),
        status,
        latency: started.elapsed().as_secs_f64(),
    }
}

/// The deployments to check (tracker index, URL) and how.
pub struct ProbeSet {
    pub client: Arc<Client>,
    pub targets: Vec<(usize, String)>,
    pub timeout: Duration,
    pub clock: ProbeClock,
}

impl ProbeSet {
    /// One round: every target checked at once, each answer recorded as it comes in. The
    /// answers, in the order of `targets`.
    pub async fn round<S: ProbeSink + ?Sized>(&self, sink: &S) -> Vec<ProbeAnswer> {
        let mut pending: FuturesUnordered<_> = self
            .targets
            .iter()
            .enumerate()
            .map(|(slot, (index, url))| async move {
                (slot, *index, probe(&self.client, url, self.timeout).await)
            })
            .collect();
        let mut answers = vec![
            ProbeAnswer {
                healthy: false,
                status: None,
                latency: 0.0,
            };
            self.targets.len()
        ];
        while let Some((slot, index, answer)) = pending.next().await {
            let _section = NoFork::enter().await;
            sink.record_probe(index, self.clock.now(), answer);
            answers[slot] = answer;
        }
        answers
    }
}

/// Health checks running on the shared runtime until stopped or dropped.
pub struct Prober {
    task: Mutex<Option<JoinHandle<()>>>,
    /// The runtime generation the task runs on (see `runtime::generation`).
    generation: u64,
    rounds: Arc<AtomicU64>,
}

impl Prober {
    /// Starts the checks: the first round at once, then one every `interval` after the end of
    /// the last.
    pub fn start(set: ProbeSet, sink: Arc<dyn ProbeSink>, interval: Duration) -> Prober {
        let rounds = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&rounds);
        let task = runtime::runtime().spawn(async move {
            loop {
                set.round(&*sink).await;
                counted.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(interval).await;
            }
        });
        Prober {
            task: Mutex::new(Some(task)),
            generation: runtime::generation(),
            rounds,
        }
    }

    /// Whether this process forked since the checks started (they did not come along).
    pub fn forked(&self) -> bool {
        self.generation != runtime::generation()
    }

    pub fn running(&self) -> bool {
        !self.forked() && self.task.lock().as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Rounds completed.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Stops the checks (a check in flight is dropped unrecorded) and, with `wait`, waits up to
    /// that long for the task to be gone (`None`: until it is). Called from outside the runtime.
    /// Whether the task is known to be over.
    pub fn stop(&self, wait: Option<Duration>) -> bool {
        let Some(task) = self.take() else {
            return true;
        };
        task.abort();
        let over = runtime::block_on(async {
            match wait {
                Some(limit) => tokio::time::timeout(limit, task).await.is_ok(),
                None => {
                    let _ = task.await;
                    true
                }
            }
        });
        over
    }

    /// The task's handle, unless stopped already or in a forked child (where the handle belongs
    /// to the parent's runtime and is left alone).
    fn take(&self) -> Option<JoinHandle<()>> {
        let task = self.task.lock().take()?;
        if self.forked() {
            std::mem::forget(task);
            return None;
        }
        Some(task)
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        if let Some(task) = self.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Answers(parking_lot::Mutex<Vec<(usize, f64, ProbeAnswer)>>);

    impl ProbeSink for Answers {
        fn record_probe(&self, index: usize, now: f64, answer: ProbeAnswer) {
            self.0.lock().push((index, now, answer));
        }
    }

    /// A server on 127.0.0.1 answering each connection's first request with `reply`.
    fn serve(reply: &'static [u8]) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(16) {
                let Ok(mut stream) = stream else { continue };
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer);
                let _ = stream.write_all(reply);
            }
        });
        format!("http://127.0.0.1:{port}/health")
    }

    fn set(targets: Vec<(usize, String)>, clock: ProbeClock) -> ProbeSet {
        let timeout = Duration::from_secs(10);
        ProbeSet {
            client: Arc::new(probe_client(timeout).expect("client")),
            targets,
            timeout,
            clock,
        }
    }

    #[test]
    fn a_round_records_each_answer_at_the_trackers_time() {
        let ok = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        let down = serve(b"HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n");
        let junk = serve(b"this is not HTTP\r\n\r\n");
        let clock = ManualClock::new(5_000_000_000).expect("clock");
        let targets = vec![(2, ok), (0, down), (1, junk), (3, "not a url".to_owned())];
        let sink = Answers::default();
        let answers = runtime::block_on(set(targets, ProbeClock::Manual(clock)).round(&sink));
        let seen: Vec<_> = answers.iter().map(|a| (a.healthy, a.status)).collect();
        assert_eq!(
            seen,
            [
                (true, Some(200)),
                (false, Some(503)),
                (false, None),
                (false, None)
            ]
        );
        let mut recorded: Vec<_> = sink.0.lock().iter().map(|r| (r.0, r.1)).collect();
        recorded.sort_by_key(|r| r.0);
        assert_eq!(recorded, [(0, 5.0), (1, 5.0), (2, 5.0), (3, 5.0)]);
    }

    #[test]
    fn a_timeout_is_an_unhealthy_answer_in_bounded_time() {
        // Accepts and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        let client = probe_client(Duration::from_millis(50)).expect("client");
        let answer = runtime::block_on(probe(&client, &url, Duration::from_millis(50)));
        assert_eq!((answer.healthy, answer.status), (false, None));
        drop(listener);
    }

    #[test]
    fn a_prober_runs_rounds_until_stopped() {
        let ok = serve(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        let sink = Arc::new(Answers::default());
        let prober = Prober::start(
            set(vec![(0, ok)], ProbeClock::monotonic(0.0)),
            Arc::clone(&sink) as Arc<dyn ProbeSink>,
            Duration::from_millis(1),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while prober.rounds() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(prober.rounds() >= 3 && prober.running());
        assert!(prober.stop(None));
        assert!(!prober.running());
        let recorded = sink.0.lock().len();
        assert!(recorded >= 3);
        // (the server answers 16 connections, then no more)
        let first: Vec<_> = sink.0.lock().iter().take(3).map(|r| r.2.status).collect();
        assert_eq!(first, [Some(204); 3]);
        assert!(prober.stop(None), "a second stop is a no-op");
    }

    #[test]
    fn dropping_a_prober_ends_its_task() {
        let ok = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let sink = Arc::new(Answers::default());
        let alive = Arc::downgrade(&sink);
        let prober = Prober::start(
            set(vec![(0, ok)], ProbeClock::monotonic(0.0)),
            sink as Arc<dyn ProbeSink>,
            Duration::from_millis(1),
        );
        drop(prober);
        // The task held the only other reference to the sink: gone once the task is.
        let deadline = Instant::now() + Duration::from_secs(30);
        while alive.strong_count() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(alive.strong_count(), 0);
    }
}
