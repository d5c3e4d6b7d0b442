//! A byte budget for a worker's scratch disk: every download into scratch reserves its size
//! first, and the bytes come back when the [`Reservation`] is dropped (when the file is deleted).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A budget of scratch-disk bytes shared by the threads and tasks of one worker.
///
/// Reservations never take the total above the limit: a reservation that does not fit fails at
/// once with [`BudgetExceeded`] (it does not wait). Cloning gives another handle on the same
/// budget.
#[derive(Clone, Debug)]
pub struct ScratchBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: u64,
    used: AtomicU64,
}

/// Bytes held from a [`ScratchBudget`]; they are given back when this is dropped.
#[derive(Debug)]
#[must_use = "the bytes are given back as soon as the reservation is dropped"]
pub struct Reservation {
    budget: Arc<Inner>,
    bytes: u64,
}

/// A reservation that would take a [`ScratchBudget`] past its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the scratch budget is too small: {needed} bytes needed, {available} available \
     ({limit} limit, {in_use} in use)"
)]
pub struct BudgetExceeded {
    /// Bytes asked for.
    pub needed: u64,
    /// Bytes free when asked.
    pub available: u64,
    /// The budget's limit.
    pub limit: u64,
    /// Bytes held by other reservations when asked.
    pub in_use: u64,
}

impl ScratchBudget {
    /// A budget of `limit_bytes`, none of it in use.
    pub fn new(limit_bytes: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit: limit_bytes,
                used: AtomicU64::new(0),
            }),
        }
    }

    /// Holds `bytes` of the budget until the returned [`Reservation`] is dropped, or fails
    /// without holding anything when they do not fit.
    pub fn reserve(&self, bytes: u64) -> Result<Reservation, BudgetExceeded> {
        let limit = self.inner.limit;
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .map_err(|in_use| BudgetExceeded {
                needed: bytes,
                available: limit.saturating_sub(in_use),
                limit,
                in_use,
            })?;
        Ok(Reservation {
            budget: Arc::clone(&self.inner),
            bytes,
        })
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> u64 {
        self.inner.limit.saturating_sub(self.in_use())
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        self.inner.used.load(Ordering::Acquire)
    }

    /// The budget's limit.
    pub fn limit(&self) -> u64 {
        self.inner.limit
    }
}

impl Reservation {
    /// The number of bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_never_exceed_the_limit_and_come_back_on_drop() {
        let budget = ScratchBudget::new(100);
        let a = budget.reserve(60).unwrap();
        assert_eq!(budget.available(), 40);
        let err = budget.reserve(41).unwrap_err();
        assert_eq!(
            err,
            BudgetExceeded {
                needed: 41,
                available: 40,
                limit: 100,
                in_use: 60
            }
        );
        assert!(err.to_string().contains("41 bytes needed, 40 available"));
        let b = budget.reserve(40).unwrap();
        assert_eq!(budget.available(), 0);
        drop(a);
        assert_eq!(budget.available(), 60);
        drop(b);
        assert_eq!(budget.available(), 100);
        assert!(budget.reserve(u64::MAX).is_err());
    }

    #[test]
    fn concurrent_reservations_stay_within_the_limit() {
        let budget = ScratchBudget::new(1000);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let budget = budget.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        if let Ok(r) = budget.reserve(300) {
                            assert!(budget.in_use() <= 1000);
                            drop(r);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(budget.in_use(), 0);
    }
}
