//! The per-key states of one limiter: a sharded hash table, each shard behind its own mutex.
//!
//! Performance and memory notes (measured on the 1M-key benchmark, see BENCHMARKS.md):
//! - One entry is the key as a `CompactString` (24 bytes; keys up to 24 bytes are stored inline,
//!   no allocation) plus one `u64` per limit: 32 bytes for a limiter with one limit (two entries
//!   per cache line), 40 with both. Entries live in a dense `Vec` per shard, in insertion order;
//!   an open-addressing table of 8-byte slots (entry position + 32 bits of hash, see `index`)
//!   indexes them. 1M 16-character keys measure 50 bytes per key, key included (budget: 120).
//! - Why the index instead of a table of entries: new keys are appended, so a stream of new keys
//!   writes memory in order, and the index (a fifth of the entries' size) stays in cache. A
//!   table holding the entries (every insert a random write into 64 MB) took 386 ns per new key
//!   on the 1M-distinct-keys case and 69 bytes per key; the index took ~320 ns and 52 bytes with
//!   hashbrown, ~265 ns and 50 bytes with `index`.
//!   The stored 32-bit hash lets the index grow without reading the entries.
//! - Our own shards instead of `dashmap`: a check always writes, so dashmap's `RwLock` shards buy
//!   nothing over a plain mutex; we hash the key once for both the shard and the slot, keep the
//!   layout above, and sweep one shard at a time under its lock. The shard is picked from hash
//!   bits 40..44, which the slot hash (built from the low 32 bits) does not use.
//! - `parking_lot::Mutex`: one byte, no poisoning (a panic inside a check must not wedge the
//!   shard for good), an uncontended lock/unlock is two atomic operations. 16 shards, each padded
//!   to its own cache line pair, keep threads on different keys out of each other's way; 64
//!   measured slower on 1M distinct keys (more, smaller tables: more cache and TLB misses), and
//!   checks from Python are serialised by the GIL anyway.
//! - `foldhash` with a per-limiter random seed: fast on short keys and not predictable by callers
//!   who choose the keys (a fixed-seed hash would let them force collisions).
//! - Sweeping: a shard that grows to `sweep_at` entries first drops every key whose buckets are
//!   full again (forgetting them changes no answer), rebuilds its index if it dropped any, and
//!   sets `sweep_at` to twice what is left (at least `SWEEP_MIN`). The work is amortised O(1) per
//!   new key and touches one shard, and a shard never holds more than about twice its live keys
//!   plus `SWEEP_MIN`.

use std::hash::BuildHasher;
use std::mem::size_of;

use compact_str::CompactString;
use parking_lot::Mutex;

use super::gcra::{Decision, Limits, State};
use super::index::Index;
use super::{validate_key, RateLimitError};

const SHARD_BITS: u32 = 4;
const SHARDS: usize = 1 << SHARD_BITS;
const SHARD_SHIFT: u32 = 40;
/// A shard is not swept before it holds this many keys.
const SWEEP_MIN: usize = 64;

/// A key and the `tat` of each of its limiter's `N` limits.
struct Entry<const N: usize> {
    key: CompactString,
    tats: [u64; N],
}

struct ShardData<const N: usize> {
    /// A compact index (8 bytes a slot) over `entries`, kept in insertion order: new keys are
    /// appended, so a stream of new keys writes memory in order and the index, a fifth of the
    /// size of the entries, stays in cache (measured: the 1M-distinct-keys case nearly twice as
    /// fast as a table holding the entries themselves).
    index: Index,
    entries: Vec<Entry<N>>,
    /// Bytes of keys too long to be stored inline.
    key_heap_bytes: usize,
    allowed: u64,
    denied: u64,
    sweep_at: usize,
}

#[repr(align(128))]
struct Shard<const N: usize>(Mutex<ShardData<N>>);

/// The shards of a limiter whose keys hold `N` states.
struct Shards<const N: usize> {
    shards: Box<[Shard<N>]>,
    /// With one limit (`N == 1`), which slot of the rule's two-slot `State` it is.
    slot: usize,
}

/// Counters and sizes of one limiter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub keys: usize,
    pub memory_bytes: usize,
    pub allowed: u64,
    pub denied: u64,
}

enum Store {
    One(Shards<1>),
    Two(Shards<2>),
}

/// One limiter's keys and their states. Every method takes the time from the caller, so the
/// store never reads a clock and never calls out while holding a lock.
pub struct RateLimiter {
    limits: Limits,
    hasher: foldhash::fast::RandomState,
    store: Store,
}

fn heap_bytes(key: &CompactString) -> usize {
    if key.is_heap_allocated() {
        key.capacity()
    } else {
        0
    }
}

impl<const N: usize> Shards<N> {
    fn new(slot: usize) -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Shard(Mutex::new(ShardData {
                    index: Index::new(),
                    entries: Vec::new(),
                    key_heap_bytes: 0,
                    allowed: 0,
                    denied: 0,
                    sweep_at: SWEEP_MIN,
                }))
            })
            .collect();
        Self { shards, slot }
    }

    #[inline]
    fn load(&self, tats: &[u64; N]) -> State {
        let mut state = [0; 2];
        if N == 2 {
            state.copy_from_slice(tats);
        } else {
            state[self.slot] = tats[0];
        }
        state
    }

    #[inline]
    fn save(&self, tats: &mut [u64; N], state: &State) {
        if N == 2 {
            tats.copy_from_slice(state);
        } else {
            tats[0] = state[self.slot];
        }
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Mutex<ShardData<N>> {
        &self.shards[(hash >> SHARD_SHIFT) as usize & (SHARDS - 1)].0
    }

    #[inline]
    fn check(&self, rl: &RateLimiter, key: &str, now: u64, cost: u64, tokens: u64) -> Decision {
        let full_hash = rl.hasher.hash_one(key);
        let hash32 = full_hash as u32;
        let limits = &rl.limits;
        let mut guard = self.shard(full_hash).lock();
        let data = &mut *guard;
        let entries = &mut data.entries;
        let found = data
            .index
            .find(hash32, |e| entries[e as usize].key.as_str() == key)
            .map(|e| e as usize);
        let decision = match found {
            Some(i) => {
                let entry = &mut entries[i];
                let (decision, next) = limits.decide(&self.load(&entry.tats), now, cost, tokens);
                self.save(&mut entry.tats, &next);
                decision
            }
            None => {
                let (decision, next) = limits.decide(&[0, 0], now, cost, tokens);
                // A refused or empty check leaves a fresh key full: nothing to remember.
                if decision.allowed && !limits.is_full(&next, now) {
                    if data.entries.len() >= data.sweep_at {
                        self.sweep(data, rl, now);
                    }
                    let key = CompactString::new(key);
                    data.key_heap_bytes += heap_bytes(&key);
                    let mut tats = [0; N];
                    self.save(&mut tats, &next);
                    // u32 positions: 4 billion keys per shard, far beyond any memory here.
                    let entry = data.entries.len() as u32;
                    data.entries.push(Entry { key, tats });
                    data.index.insert(hash32, entry);
                }
                decision
            }
        };
        if decision.allowed {
            data.allowed += 1;
        } else {
            data.denied += 1;
        }
        decision
    }

    fn peek(&self, rl: &RateLimiter, key: &str, now: u64, cost: u64, tokens: u64) -> Decision {
        let full_hash = rl.hasher.hash_one(key);
        let hash32 = full_hash as u32;
        let data = self.shard(full_hash).lock();
        let state = data
            .index
            .find(hash32, |e| data.entries[e as usize].key.as_str() == key)
            .map_or([0, 0], |e| self.load(&data.entries[e as usize].tats));
        drop(data);
        rl.limits.decide(&state, now, cost, tokens).0
    }

    fn reset(&self, rl: &RateLimiter, key: &str) -> bool {
        let full_hash = rl.hasher.hash_one(key);
        let hash32 = full_hash as u32;
        let mut guard = self.shard(full_hash).lock();
        let data = &mut *guard;
        let entries = &data.entries;
        let Some(entry) = data
            .index
            .remove(hash32, |e| entries[e as usize].key.as_str() == key)
        else {
            return false;
        };
        let removed = data.entries.swap_remove(entry as usize);
        data.key_heap_bytes -= heap_bytes(&removed.key);
        // The last entry moved into the hole: point its slot at its new place.
        if let Some(moved) = data.entries.get(entry as usize) {
            let moved_hash32 = rl.hasher.hash_one(moved.key.as_str()) as u32;
            let old = data.entries.len() as u32;
            data.index.repoint(moved_hash32, old, entry);
        }
        true
    }

    /// Drops every entry of one shard whose buckets are full at `now` and rebuilds its index;
    /// returns how many.
    fn sweep(&self, data: &mut ShardData<N>, rl: &RateLimiter, now: u64) -> usize {
        let before = data.entries.len();
        let mut freed = 0;
        data.entries.retain(|entry| {
            let keep = !rl.limits.is_full(&self.load(&entry.tats), now);
            if !keep {
                freed += heap_bytes(&entry.key);
            }
            keep
        });
        data.key_heap_bytes -= freed;
        let left = data.entries.len();
        if left < before {
            data.index.clear();
            for (i, entry) in data.entries.iter().enumerate() {
                let hash32 = rl.hasher.hash_one(entry.key.as_str()) as u32;
                data.index.insert(hash32, i as u32);
            }
        }
        if data.entries.capacity() > 4 * left.max(SWEEP_MIN) {
            data.entries.shrink_to(2 * left);
            data.index.shrink_to(2 * left);
        }
        data.sweep_at = (2 * left).max(SWEEP_MIN);
        before - left
    }

    fn cleanup(&self, rl: &RateLimiter, now: u64) -> usize {
        self.shards
            .iter()
            .map(|shard| self.sweep(&mut shard.0.lock(), rl, now))
            .sum()
    }

    fn stats(&self) -> Stats {
        let mut stats = Stats {
            memory_bytes: self.shards.len() * size_of::<Shard<N>>(),
            ..Stats::default()
        };
        for shard in self.shards.iter() {
            let data = shard.0.lock();
            stats.keys += data.entries.len();
            stats.memory_bytes += data.index.allocation_size()
                + data.entries.capacity() * size_of::<Entry<N>>()
                + data.key_heap_bytes;
            stats.allowed += data.allowed;
            stats.denied += data.denied;
        }
        stats
    }
}

impl RateLimiter {
    pub fn new(limits: Limits) -> Self {
        let store = match (limits.requests, limits.tokens) {
            (Some(_), Some(_)) => Store::Two(Shards::new(0)),
            (Some(_), None) => Store::One(Shards::new(0)),
            _ => Store::One(Shards::new(1)),
        };
        Self {
            limits,
            hasher: foldhash::fast::RandomState::default(),
            store,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decides `cost` requests and `tokens` tokens for `key` at `now` and consumes them when
    /// allowed, atomically for the key: concurrent checks never admit more than the limits.
    #[inline]
    pub fn check(
        &self,
        key: &str,
        now: u64,
        cost: u64,
        tokens: u64,
    ) -> Result<Decision, RateLimitError> {
        validate_key(key)?;
        Ok(match &self.store {
            Store::One(s) => s.check(self, key, now, cost, tokens),
            Store::Two(s) => s.check(self, key, now, cost, tokens),
        })
    }

    /// What `check` would answer now, without consuming or remembering anything.
    pub fn peek(
        &self,
        key: &str,
        now: u64,
        cost: u64,
        tokens: u64,
    ) -> Result<Decision, RateLimitError> {
        validate_key(key)?;
        Ok(match &self.store {
            Store::One(s) => s.peek(self, key, now, cost, tokens),
            Store::Two(s) => s.peek(self, key, now, cost, tokens),
        })
    }

    /// Forgets `key`: its buckets are full again. Returns whether it was tracked.
    pub fn reset(&self, key: &str) -> Result<bool, RateLimitError> {
        validate_key(key)?;
        Ok(match &self.store {
            Store::One(s) => s.reset(self, key),
            Store::Two(s) => s.reset(self, key),
        })
    }

    /// Drops every key whose buckets are full at `now`; returns how many. One shard is locked at
    /// a time.
    pub fn cleanup(&self, now: u64) -> usize {
        match &self.store {
            Store::One(s) => s.cleanup(self, now),
            Store::Two(s) => s.cleanup(self, now),
        }
    }

    /// Keys tracked, bytes held (tables, long keys, shards) and the allowed/denied counters.
    pub fn stats(&self) -> Stats {
        let mut stats = match &self.store {
            Store::One(s) => s.stats(),
            Store::Two(s) => s.stats(),
        };
        stats.memory_bytes += size_of::<Self>();
        stats
    }
}
