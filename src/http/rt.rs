//! What the request code needs from the engine it runs on (timers, spawning, hyper's executor
//! and timer), answered by tokio or by the loop engine (`local`) of the task being polled.
//!
//! The same request code serves both: a task polled by a loop engine's turn finds it in
//! `local::current()`, anything else is on the tokio runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::{AbortHandle, Abortable};
use tokio::time::Instant;

use super::local::{self, Engine};

/// A sleep on the engine that made it.
pub(crate) enum Sleep {
    Tokio(Pin<Box<tokio::time::Sleep>>),
    Local(local::Sleep),
}

pub(crate) fn sleep_until(deadline: Instant) -> Sleep {
    match local::current() {
        Some(engine) => Sleep::Local(local::Sleep::new(engine, deadline.into_std())),
        None => Sleep::Tokio(Box::pin(tokio::time::sleep_until(deadline))),
    }
}

pub(crate) fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

impl Sleep {
    pub(crate) fn deadline(&self) -> Instant {
        match self {
            Sleep::Tokio(sleep) => sleep.deadline(),
            Sleep::Local(sleep) => Instant::from_std(sleep.deadline()),
        }
    }

    pub(crate) fn reset(&mut self, deadline: Instant) {
        match self {
            Sleep::Tokio(sleep) => sleep.as_mut().reset(deadline),
            Sleep::Local(sleep) => sleep.reset(deadline.into_std()),
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            Sleep::Tokio(sleep) => sleep.as_mut().poll(cx),
            Sleep::Local(sleep) => Pin::new(sleep).poll(cx),
        }
    }
}

/// `future` bounded by `limit` (`Err(())` when the limit passed first).
pub(crate) async fn timeout<F: Future>(limit: Duration, future: F) -> Result<F::Output, ()> {
    if local::current().is_none() {
        return tokio::time::timeout(limit, future).await.map_err(|_| ());
    }
    let mut future = std::pin::pin!(future);
    let mut sleep = sleep(limit);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        Pin::new(&mut sleep).poll(cx).map(Err)
    })
    .await
}

/// Runs `job` beside the caller, on the caller's engine; the handle stops it.
pub(crate) fn spawn(job: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
    match local::current() {
        Some(engine) => engine.spawn(job),
        None => {
            let (handle, registration) = AbortHandle::new_pair();
            tokio::spawn(async move {
                let _ = Abortable::new(job, registration).await;
            });
            handle
        }
    }
}

/// hyper's executor (connection tasks, background connects).
#[derive(Clone)]
pub(crate) enum Exec {
    Tokio,
    Local(Arc<Engine>),
}

impl<F> hyper::rt::Executor<F> for Exec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        match self {
            Exec::Tokio => {
                tokio::spawn(future);
            }
            Exec::Local(engine) => {
                engine.spawn(async move {
                    future.await;
                });
            }
        }
    }
}

/// hyper's timer.
#[derive(Clone)]
pub(crate) enum Timer {
    Tokio(hyper_util::rt::TokioTimer),
    Local(Arc<Engine>),
}

struct HyperSleep(Sleep);

impl Future for HyperSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx)
    }
}

impl hyper::rt::Sleep for HyperSleep {}

impl hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        match self {
            Timer::Tokio(timer) => timer.sleep(duration),
            Timer::Local(engine) => Box::pin(HyperSleep(Sleep::Local(local::Sleep::new(
                Arc::clone(engine),
                std::time::Instant::now() + duration,
            )))),
        }
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        match self {
            Timer::Tokio(timer) => timer.sleep_until(deadline),
            Timer::Local(engine) => Box::pin(HyperSleep(Sleep::Local(local::Sleep::new(
                Arc::clone(engine),
                deadline,
            )))),
        }
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: std::time::Instant) {
        match self {
            Timer::Tokio(timer) => timer.reset(sleep, new_deadline),
            Timer::Local(_) => *sleep = self.sleep_until(new_deadline),
        }
    }
}
