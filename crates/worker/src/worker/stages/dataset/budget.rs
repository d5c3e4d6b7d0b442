//! The bytes a chunk's decoders hold at once, bounded.
//!
//! Each item takes its encoded size from the budget before it is read, and grows its share by
//! what decoding it will allocate (from the image's header) before its pixels are decoded; the
//! share goes back when the item is scaled down to the model's size. A share waits while the
//! budget is spent, except when nothing else is held (an item larger than the whole budget
//! still goes, alone) or when every other holder is itself waiting to grow (one of them goes,
//! so that holders waiting on each other never stall the chunk). So at most the budget is held,
//! or one item past it: the budget plus one item's bytes and decoded pixels.

use std::sync::{Condvar, Mutex};

/// The bytes a dataset chunk's items may hold while read and decoded (encoded and decoded
/// together): 512 MiB, room for a few full-size camera pictures at once.
pub(super) const DECODE_BUDGET_BYTES: u64 = 512 << 20;

/// A budget of bytes shared by a chunk's decode threads.
pub(super) struct ByteBudget {
    limit: u64,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Default)]
struct State {
    used: u64,
    /// Shares held now, and how many of them are waiting to grow.
    holders: usize,
    growing: usize,
}

/// One item's share of a [`ByteBudget`], given back when dropped.
pub(super) struct Share<'a> {
    budget: &'a ByteBudget,
    bytes: u64,
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

    /// A share of `bytes`, once they fit (or nothing else is held).
    pub(super) fn take(&self, bytes: u64) -> Share<'_> {
        let mut state = self.lock();
        while state.holders > 0 && state.used + bytes > self.limit {
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.used += bytes;
        state.holders += 1;
        Share {
            budget: self,
            bytes,
        }
    }

    /// Bytes held now.
    #[cfg(test)]
    fn used(&self) -> u64 {
        self.lock().used
    }
}

impl Share<'_> {
    /// Grows this share by `extra` bytes, once they fit (or every other holder waits too).
    pub(super) fn grow(&mut self, extra: u64) {
        let budget = self.budget;
        let mut state = budget.lock();
        state.growing += 1;
        // Others waiting to grow may now be all that is held: let them look again.
        budget.freed.notify_all();
        while state.used + extra > budget.limit && state.growing < state.holders {
            state = budget.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.growing -= 1;
        state.used += extra;
        self.bytes += extra;
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let mut state = self.budget.lock();
        state.used -= self.bytes;
        state.holders -= 1;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn shares_wait_for_room_and_one_alone_may_pass_the_limit() {
        let budget = ByteBudget::new(100);
        let alone = budget.take(500);
        assert_eq!(budget.used(), 500);
        drop(alone);
        let mut first = budget.take(60);
        first.grow(30);
        assert_eq!(budget.used(), 90);
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let _second = budget.take(20);
                budget.used()
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(budget.used(), 90, "the second share waits for room");
            drop(first);
            assert_eq!(waiter.join().unwrap(), 20);
        });
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn holders_all_waiting_to_grow_do_not_stall() {
        let budget = ByteBudget::new(100);
        let peak = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        let mut share = budget.take(20);
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
