//! A value built on first use and never freed, published with a compare-and-set instead of behind
//! a lock or a `OnceLock`.
//!
//! Why: a process that forks while another of its threads holds a lock (or is inside a
//! `OnceLock`'s initialisation) gives its child that lock held for ever, and the child's first use
//! waits for a thread that does not exist there. Here nothing is ever held: threads that race each
//! build a value, the first one published is kept and the others are handed back to be discarded.
//! A slot can be emptied (`forget`) in a child right after `fork()`, for values that do not
//! survive one (anything that owns threads); the old value is leaked, since dropping it would
//! wait for or signal threads that stayed in the parent.

use std::sync::atomic::{AtomicPtr, Ordering};

pub struct Published<T>(AtomicPtr<T>);

impl<T: Send + Sync> Published<T> {
    pub const fn new() -> Self {
        Self(AtomicPtr::new(std::ptr::null_mut()))
    }

    /// The published value, if there is one.
    pub fn get(&'static self) -> Option<&'static T> {
        // SAFETY: a non-null pointer comes from `Box::into_raw` in `publish` and is never freed.
        unsafe { self.0.load(Ordering::Acquire).as_ref() }
    }

    /// The published value, or `build()`'s once published.
    pub fn get_or_build(
        &'static self,
        build: impl FnOnce() -> T,
        discard: impl FnOnce(T),
    ) -> &'static T {
        match self.get() {
            Some(value) => value,
            None => self.publish(build(), discard),
        }
    }

    /// Publishes `value` unless another thread published one first; the loser goes to `discard`.
    pub fn publish(&'static self, value: T, discard: impl FnOnce(T)) -> &'static T {
        let fresh = Box::into_raw(Box::new(value));
        match self.0.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: just published, never freed.
            Ok(_) => unsafe { &*fresh },
            Err(winner) => {
                // SAFETY: `fresh` was never published, so this is its only owner; `winner` is
                // non-null (the compare failed) and, like every published value, never freed.
                discard(*unsafe { Box::from_raw(fresh) });
                unsafe { &*winner }
            }
        }
    }

    /// Empties the slot, leaking its value: for a child process right after `fork()`, which has
    /// no other thread that could be using it.
    pub fn forget(&self) {
        self.0.store(std::ptr::null_mut(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn racing_builders_share_the_first_published_value() {
        static SLOT: Published<usize> = Published::new();
        static DISCARDED: AtomicUsize = AtomicUsize::new(0);
        let seen: Vec<usize> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    scope.spawn(move || {
                        let value = SLOT.get_or_build(
                            || i,
                            |_| {
                                DISCARDED.fetch_add(1, Ordering::Relaxed);
                            },
                        );
                        value as *const usize as usize
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(seen.iter().all(|&p| p == seen[0]));
        assert!(DISCARDED.load(Ordering::Relaxed) < 8);
        SLOT.forget();
        assert!(SLOT.get().is_none());
        assert_eq!(*SLOT.get_or_build(|| 42, drop), 42);
    }
}
