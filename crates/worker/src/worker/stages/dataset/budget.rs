//! The bytes a chunk's items hold at once while they are downloaded and decoded, bounded.
//!
//! Each item takes its encoded size from the budget before it is read ([`ByteBudget::try_take`],
//! by the prefetcher, which reads ahead only while the bytes fit), and grows its share by what
//! decoding it will allocate (from the image's header) before its pixels are decoded; the share
//! goes back when the item is scaled down to the model's size. A share is *parked* from its
//! take until its decode starts ([`Share::start`]): an item downloading or waiting for a decode
//! thread frees nothing until the chunk moves on, so it counts with the holders that wait.
//! A share waits to grow while the budget is spent, unless every other holder waits too (parked
//! or itself waiting to grow): then one of them goes, so that holders waiting on each other
//! never stall the chunk. A take never waits: it is refused while the bytes do not fit, unless
//! nothing else is held (an item larger than the whole budget still goes, alone). So at most
//! the budget is held, or one item past it: the budget plus one item's bytes and decoded pixels.

use std::sync::{Condvar, Mutex};

/// The bytes a dataset chunk's items may hold while read and decoded (encoded and decoded
/// together): 512 MiB, room for a few full-size camera pictures at once.
pub(super) const DECODE_BUDGET_BYTES: u64 = 512 << 20;

/// A budget of bytes shared by a chunk's prefetcher and decode threads.
pub(super) struct ByteBudget {
    limit: u64,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Default)]
struct State {
    used: u64,
    /// Shares held now, and how many of them wait: parked, or waiting to grow.
    holders: usize,
    waiting: usize,
}

/// One item's share of a [`ByteBudget`], given back when dropped.
pub(super) struct Share<'a> {
    budget: &'a ByteBudget,
    bytes: u64,
    parked: bool,
}

impl ByteBudget {
    pub(super) fn new(limit: u64) -> ByteBudget {
        ByteBudget {
            limit,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A parked share of `bytes` if they fit now (or nothing else is held); `None` otherwise.
    pub(super) fn try_take(&self, bytes: u64) -> Option<Share<'_>> {
        let state = self.lock();
        if state.holders > 0 && state.used + bytes > self.limit {
            return None;
        }
        Some(self.hand_out(state, bytes))
    }

    /// A parked share of `bytes`, once they fit (or nothing else is held): for threads that
    /// each read and decode one item at a time (styled datasets). A thread waiting here holds
    /// nothing, so the holders it waits for never wait for it.
    pub(super) fn take(&self, bytes: u64) -> Share<'_> {
        let mut state = self.lock();
        while state.holders > 0 && state.used + bytes > self.limit {
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        self.hand_out(state, bytes)
    }

    fn hand_out(&self, mut state: std::sync::MutexGuard<'_, State>, bytes: u64) -> Share<'_> {
        state.used += bytes;
        state.holders += 1;
        state.waiting += 1;
        // A holder may be waiting to grow until every other one waits: this one does.
        self.freed.notify_all();
        Share {
            budget: self,
            bytes,
            parked: true,
        }
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(super) fn used(&self) -> u64 {
        self.lock().used
    }
}

impl Share<'_> {
    /// The item's decode starts: from now on it frees its bytes by itself.
    pub(super) fn start(&mut self) {
        if std::mem::take(&mut self.parked) {
            self.budget.lock().waiting -= 1;
        }
    }

    /// Grows this share by `extra` bytes, once they fit (or every other holder waits too).
    pub(super) fn grow(&mut self, extra: u64) {
        self.start();
        let budget = self.budget;
        let mut state = budget.lock();
        state.waiting += 1;
        // Others waiting to grow may now be all that is held: let them look again.
        budget.freed.notify_all();
        while state.used + extra > budget.limit && state.waiting < state.holders {
            state = budget.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.waiting -= 1;
        state.used += extra;
        self.bytes += extra;
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let mut state = self.budget.lock();
        state.used -= self.bytes;
        state.holders -= 1;
        if self.parked {
            state.waiting -= 1;
        }
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn takes_are_refused_without_room_and_one_alone_may_pass_the_limit() {
        let budget = ByteBudget::new(100);
        let alone = budget.try_take(500).expect("nothing else is held");
        assert_eq!(budget.used(), 500);
        assert!(budget.try_take(1).is_none(), "the budget is spent");
        drop(alone);
        let mut first = budget.try_take(60).unwrap();
        first.grow(30);
        assert_eq!(budget.used(), 90);
        assert!(budget.try_take(20).is_none());
        let second = budget.try_take(10).unwrap();
        assert_eq!(budget.used(), 100);
        drop(first);
        drop(second);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_grow_waits_for_running_holders_but_not_for_parked_ones() {
        let budget = ByteBudget::new(100);
        let mut running = budget.try_take(50).unwrap();
        running.start();
        let parked = budget.try_take(40).unwrap();
        std::thread::scope(|scope| {
            let grower = scope.spawn(|| {
                let mut share = budget.try_take(10).unwrap();
                share.grow(30);
                budget.used()
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(budget.used(), 100, "the grow waits for the running holder");
            // Once only parked holders are left, the grow goes past the limit.
            drop(running);
            assert_eq!(grower.join().unwrap(), 40 + 10 + 30);
        });
        drop(parked);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn holders_all_waiting_to_grow_do_not_stall() {
        let budget = ByteBudget::new(100);
        let peak = AtomicU64::new(0);
        let taken = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    while taken.load(Ordering::SeqCst) < 200 {
                        let Some(mut share) = budget.try_take(20) else {
                            std::thread::yield_now();
                            continue;
                        };
                        taken.fetch_add(1, Ordering::SeqCst);
                        share.grow(70);
                        peak.fetch_max(budget.used(), Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(budget.used(), 0);
        // At most the budget, or the budget and one item's growth past it.
        assert!(peak.load(Ordering::SeqCst) <= 100 + 70);
    }
}
