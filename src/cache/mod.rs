//! A response cache: least-recently-used eviction bounded by entries (and optionally bytes), with
//! a time to live, on a clock the caller passes in.
//!
//! Why the `lru` crate and not `moka` (or `quick_cache`, `mini-moka`), all checked with
//! `cargo info`: the cache must give the same answers as its pure-Python twin (an `OrderedDict`
//! LRU), call for call, so that the two paths can be swapped and tested against each other.
//! `moka` admits entries by TinyLFU frequency by default and, even with its LRU policy, evicts in
//! batches on its own schedule (`run_pending_tasks`), so which entry is gone after a given `set`
//! and how many evictions were counted are not determined by the calls alone; `quick_cache` is
//! CLOCK-PRO (not LRU) for the same reason. None of them takes its time from an injected clock
//! (moka's mock clock is not public), so the time to live would have to be checked on top anyway.
//! `lru` (jeromefroe/lru-rs) is the plain doubly linked hash map an exact LRU needs; the calls
//! from Python are serialised by the GIL, so one uncontended mutex costs nothing a concurrent
//! cache would save.
//!
//! Time to live: each entry keeps its deadline; `get` on an expired entry removes it and answers
//! a miss (`expirations` counts them). Expired entries that are never asked for again stay until
//! they reach the LRU end or `cleanup` runs, as in the fallback.
//!
//! Values are generic so the core has no Python in it; the binding stores Python objects and
//! drops every removed value after the lock is released (dropping one can run Python code).

use lru::LruCache;
use parking_lot::Mutex;

pub mod key;

#[cfg(test)]
mod tests;

/// A deadline that never comes.
pub const NEVER: u64 = u64::MAX;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CacheError {
    #[error("max_entries must be >= 1, got {0}")]
    MaxEntries(u64),
    #[error("max_bytes must be >= 1, got {0}")]
    MaxBytes(u64),
}

struct Entry<V> {
    value: V,
    expires_at: u64,
    size: u64,
}

struct Inner<V> {
    lru: LruCache<String, Entry<V>>,
    /// Wider than a size: a new entry is added before the oldest are evicted, and two sizes of
    /// up to `max_bytes` (a u64) may add up past it.
    bytes: u128,
    hits: u64,
    misses: u64,
    evictions: u64,
    expirations: u64,
}

/// Counters and sizes (`bytes` is only kept when the cache has a byte limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub expirations: u64,
}

pub struct Cache<V> {
    max_entries: usize,
    max_bytes: Option<u64>,
    inner: Mutex<Inner<V>>,
}

/// Values taken out of the cache by an operation, for the caller to drop outside the lock.
pub type Removed<V> = Vec<V>;

impl<V> Cache<V> {
    pub fn new(max_entries: u64, max_bytes: Option<u64>) -> Result<Self, CacheError> {
        if max_entries == 0 {
            return Err(CacheError::MaxEntries(max_entries));
        }
        if max_bytes == Some(0) {
            return Err(CacheError::MaxBytes(0));
        }
        // Room is taken as entries arrive: a large bound costs nothing until it is used.
        let max_entries = usize::try_from(max_entries).unwrap_or(usize::MAX);
        Ok(Self {
            max_entries,
            max_bytes,
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
                hits: 0,
                misses: 0,
                evictions: 0,
                expirations: 0,
            }),
        })
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    pub fn max_bytes(&self) -> Option<u64> {
        self.max_bytes
    }

    /// Looks `key` up; a live entry becomes the most recently used and `read` sees its value. An
    /// entry expired at time `now()` (read only when the key is there, and only for an entry
    /// that can expire: a miss costs no clock reading) is removed (returned for dropping) and
    /// answers a miss.
    pub fn get<R>(
        &self,
        key: &str,
        now: impl FnOnce() -> u64,
        read: impl FnOnce(&V) -> R,
    ) -> (Option<R>, Removed<V>) {
        let mut inner = self.inner.lock();
        let expired = match inner.lru.get(key) {
            None => false,
            Some(entry) if entry.expires_at == NEVER || now() < entry.expires_at => {
                let answer = read(&entry.value);
                inner.hits += 1;
                return (Some(answer), Vec::new());
            }
            Some(_) => true,
        };
        inner.misses += 1;
        let mut removed = Vec::new();
        if expired {
            if let Some(entry) = inner.lru.pop(key) {
                inner.bytes -= u128::from(entry.size);
                inner.expirations += 1;
                removed.push(entry.value);
            }
        }
        (None, removed)
    }

    /// Stores `value` under `key` as the most recently used entry, until `expires_at`; evicts
    /// least recently used entries while a bound is exceeded. A value larger than `max_bytes` on
    /// its own is not stored (and whatever `key` held is removed). Returns whether it was stored
    /// and the values removed.
    pub fn set(&self, key: &str, value: V, size: u64, expires_at: u64) -> (bool, Removed<V>) {
        let mut removed = Vec::new();
        let mut inner = self.inner.lock();
        if let Some(old) = inner.lru.pop(key) {
            inner.bytes -= u128::from(old.size);
            removed.push(old.value);
        }
        if self.max_bytes.is_some_and(|max| size > max) {
            removed.push(value);
            return (false, removed);
        }
        let tracked = if self.max_bytes.is_some() { size } else { 0 };
        inner.bytes += u128::from(tracked);
        inner.lru.push(
            key.to_owned(),
            Entry {
                value,
                expires_at,
                size: tracked,
            },
        );
        while inner.lru.len() > self.max_entries
            || self
                .max_bytes
                .is_some_and(|max| inner.bytes > u128::from(max))
        {
            let Some((_, entry)) = inner.lru.pop_lru() else {
                break;
            };
            inner.bytes -= u128::from(entry.size);
            inner.evictions += 1;
            removed.push(entry.value);
        }
        (true, removed)
    }

    /// Removes `key`; whether it was there (expired or not).
    pub fn delete(&self, key: &str) -> (bool, Removed<V>) {
        let mut inner = self.inner.lock();
        match inner.lru.pop(key) {
            Some(entry) => {
                inner.bytes -= u128::from(entry.size);
                (true, vec![entry.value])
            }
            None => (false, Vec::new()),
        }
    }

    /// Removes every expired entry at time `now`; they count as expirations.
    pub fn cleanup(&self, now: u64) -> Removed<V> {
        let mut inner = self.inner.lock();
        let expired: Vec<String> = inner
            .lru
            .iter()
            .filter(|(_, e)| now >= e.expires_at)
            .map(|(k, _)| k.clone())
            .collect();
        let mut removed = Vec::with_capacity(expired.len());
        for key in expired {
            if let Some(entry) = inner.lru.pop(&key) {
                inner.bytes -= u128::from(entry.size);
                inner.expirations += 1;
                removed.push(entry.value);
            }
        }
        removed
    }

    /// Removes every entry (the counters stay).
    pub fn clear(&self) -> Removed<V> {
        let mut inner = self.inner.lock();
        inner.bytes = 0;
        let mut removed = Vec::with_capacity(inner.lru.len());
        while let Some((_, entry)) = inner.lru.pop_lru() {
            removed.push(entry.value);
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.inner.lock().lru.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> Stats {
        let inner = self.inner.lock();
        Stats {
            entries: inner.lru.len() as u64,
            // At most `max_bytes` between calls.
            bytes: u64::try_from(inner.bytes).unwrap_or(u64::MAX),
            hits: inner.hits,
            misses: inner.misses,
            evictions: inner.evictions,
            expirations: inner.expirations,
        }
    }

    /// The keys from least to most recently used (tests compare the order with the fallback's).
    pub fn keys_lru_first(&self) -> Vec<String> {
        let inner = self.inner.lock();
        inner.lru.iter().rev().map(|(k, _)| k.clone()).collect()
    }
}
