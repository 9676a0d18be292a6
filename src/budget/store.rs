//! The per-key budget states of one tracker: a sharded hash map, each shard behind its own
//! mutex (the rate limiter's layout, simpler: a budget key is touched once or twice per
//! request, not on every token).
//!
//! - `std`'s `HashMap` with `foldhash` seeded per tracker (keys are chosen by callers: a fixed
//!   seed would let them force collisions), `compact_str` keys (inline up to 24 bytes),
//!   `parking_lot` mutexes (one byte, no poisoning). 16 shards keep threads on different keys
//!   apart; the shard is picked from high bits of the same hash.
//! - An entry is the key plus two `WindowState`s (a tracker has at most two windows: daily and
//!   monthly), 72 bytes.
//! - Sweeping: a shard that grows to `sweep_at` entries first drops every key whose windows are
//!   all over (forgetting it changes no answer), then sets `sweep_at` to twice what is left (at
//!   least `SWEEP_MIN`): amortised O(1) per new key.
//! - Every method takes the time from the caller, so no clock is read under a lock.

use std::collections::HashMap;
use std::hash::BuildHasher;

use compact_str::CompactString;
use parking_lot::Mutex;

use super::{validate_key, verdict, BudgetError, Verdict, WindowState, WindowView, Windows};

const SHARD_BITS: u32 = 4;
const SHARDS: usize = 1 << SHARD_BITS;
const SHARD_SHIFT: u32 = 58;
const SWEEP_MIN: usize = 256;

type States = [WindowState; 2];

struct ShardData {
    map: HashMap<CompactString, States, foldhash::fast::RandomState>,
    sweep_at: usize,
    recorded: u64,
    allowed: u64,
    denied: u64,
}

#[repr(align(128))]
struct Shard(Mutex<ShardData>);

/// Counters and sizes of one tracker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetStats {
    pub keys: usize,
    pub recorded: u64,
    pub allowed: u64,
    pub denied: u64,
}

/// One tracker's keys and their spend.
pub struct BudgetStore {
    windows: Windows,
    hasher: foldhash::fast::RandomState,
    shards: Box<[Shard]>,
}

impl BudgetStore {
    pub fn new(windows: Windows) -> Self {
        let hasher = foldhash::fast::RandomState::default();
        let shards = (0..SHARDS)
            .map(|_| {
                Shard(Mutex::new(ShardData {
                    map: HashMap::with_hasher(hasher.clone()),
                    sweep_at: SWEEP_MIN,
                    recorded: 0,
                    allowed: 0,
                    denied: 0,
                }))
            })
            .collect();
        Self {
            windows,
            hasher,
            shards,
        }
    }

    pub fn windows(&self) -> &Windows {
        &self.windows
    }

    #[inline]
    fn shard(&self, key: &str) -> &Mutex<ShardData> {
        let hash = self.hasher.hash_one(key);
        &self.shards[(hash >> SHARD_SHIFT) as usize & (SHARDS - 1)].0
    }

    /// The views of `states` at `now`, in a fixed array (no allocation per check): the first
    /// `self.windows.len()` entries are filled.
    fn views(&self, states: &States, now: u64) -> [WindowView; 2] {
        let windows = self.windows.as_slice();
        // `Windows::new` refuses an empty list, so `windows[0]` exists.
        let view = |i: usize| windows.get(i).unwrap_or(&windows[0]).view(&states[i], now);
        [view(0), view(1)]
    }

    fn is_over(&self, states: &States, now: u64) -> bool {
        self.windows
            .as_slice()
            .iter()
            .zip(states)
            .all(|(w, s)| w.is_over(s, now))
    }

    /// Adds `amount` nanodollars and one request to every window of `key` at `now`, exactly
    /// (under the shard's lock).
    pub fn record(&self, key: &str, now: u64, amount: u64) -> Result<(), BudgetError> {
        validate_key(key)?;
        let mut guard = self.shard(key).lock();
        let data = &mut *guard;
        data.recorded += 1;
        let states = match data.map.get_mut(key) {
            Some(states) => states,
            None => {
                if data.map.len() >= data.sweep_at {
                    data.map.retain(|_, s| !self.is_over(s, now));
                    data.sweep_at = (2 * data.map.len()).max(SWEEP_MIN);
                }
                data.map.entry(CompactString::new(key)).or_default()
            }
        };
        for (window, state) in self.windows.as_slice().iter().zip(states.iter_mut()) {
            window.record(state, now, amount);
        }
        Ok(())
    }

    /// Whether `estimate` nanodollars more would stay within every budget of `key` at `now`.
    pub fn check(&self, key: &str, now: u64, estimate: u64) -> Result<Verdict, BudgetError> {
        validate_key(key)?;
        let mut data = self.shard(key).lock();
        let states = data.map.get(key).copied().unwrap_or_default();
        let views = self.views(&states, now);
        let answer = verdict(&views[..self.windows.len()], now, estimate);
        if answer.allowed {
            data.allowed += 1;
        } else {
            data.denied += 1;
        }
        Ok(answer)
    }

    /// What each window of `key` holds at `now`.
    pub fn status(&self, key: &str, now: u64) -> Result<Vec<WindowView>, BudgetError> {
        validate_key(key)?;
        let states = self
            .shard(key)
            .lock()
            .map
            .get(key)
            .copied()
            .unwrap_or_default();
        Ok(self.views(&states, now)[..self.windows.len()].to_vec())
    }

    /// Forgets `key`; whether it was tracked.
    pub fn reset(&self, key: &str) -> Result<bool, BudgetError> {
        validate_key(key)?;
        Ok(self.shard(key).lock().map.remove(key).is_some())
    }

    /// Drops every key whose windows are all over at `now`; returns how many.
    pub fn cleanup(&self, now: u64) -> usize {
        let mut dropped = 0;
        for shard in self.shards.iter() {
            let mut data = shard.0.lock();
            let before = data.map.len();
            data.map.retain(|_, s| !self.is_over(s, now));
            dropped += before - data.map.len();
            data.sweep_at = (2 * data.map.len()).max(SWEEP_MIN);
        }
        dropped
    }

    pub fn stats(&self) -> BudgetStats {
        let mut stats = BudgetStats::default();
        for shard in self.shards.iter() {
            let data = shard.0.lock();
            stats.keys += data.map.len();
            stats.recorded += data.recorded;
            stats.allowed += data.allowed;
            stats.denied += data.denied;
        }
        stats
    }
}
