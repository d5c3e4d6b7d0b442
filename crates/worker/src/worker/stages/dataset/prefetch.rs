//! A chunk's items read ahead, in parallel, handed out in listing order.
//!
//! The [`Prefetcher`] keeps up to [`PREFETCH_ITEMS`] reads going on the tokio runtime (object
//! GETs from `az://`, `s3://` or `file://` stores, files on its blocking threads), within
//! [`PREFETCH_BYTES`] of encoded bytes ahead and within the chunk's [`ByteBudget`]: each read
//! takes its item's pinned size from the budget before it starts, as a parked share, which the
//! item keeps through its decode. A read that does not fit waits, untaken, until the items
//! ahead are handed out; so downloads overlap decoding and the model, and what they hold is
//! bounded whatever the items' sizes and the store's latency.

use std::collections::VecDeque;

use fresco_queue::PinnedItem;
use tokio::task::JoinHandle;

use super::budget::{ByteBudget, Share};
use crate::listing::{ItemError, ItemReader};

/// Reads a chunk keeps going ahead of its decoders: enough to hide an object store's latency
/// (tens of milliseconds a GET) from a model that scores hundreds of small images a second.
pub(super) const PREFETCH_ITEMS: usize = 32;

/// Encoded bytes a chunk reads ahead of its decoders, at most (or one item, when larger).
pub(super) const PREFETCH_BYTES: u64 = 64 << 20;

/// An item read (or why not), with its share of the budget.
pub(super) struct Fetched<'a> {
    pub item: &'a PinnedItem,
    pub bytes: Result<Vec<u8>, ItemError>,
    pub share: Share<'a>,
}

/// What [`Prefetcher::next`] gives.
pub(super) enum Next<'a> {
    Item(Fetched<'a>),
    /// Nothing is read ahead and the next item's bytes do not fit the budget: the items handed
    /// out must give some back (be decoded) first.
    Full,
    /// Every item was handed out.
    Done,
}

struct Reading<'a> {
    item: &'a PinnedItem,
    share: Share<'a>,
    bytes: u64,
    read: JoinHandle<Result<Vec<u8>, ItemError>>,
}

/// A chunk's items, read ahead (see the module's doc).
pub(super) struct Prefetcher<'a> {
    waiting: std::slice::Iter<'a, PinnedItem>,
    reader: &'a ItemReader,
    handle: &'a tokio::runtime::Handle,
    budget: &'a ByteBudget,
    ahead: VecDeque<Reading<'a>>,
    ahead_bytes: u64,
    max_items: usize,
    max_bytes: u64,
}

impl<'a> Prefetcher<'a> {
    pub(super) fn new(
        items: &'a [PinnedItem],
        reader: &'a ItemReader,
        handle: &'a tokio::runtime::Handle,
        budget: &'a ByteBudget,
    ) -> Prefetcher<'a> {
        Prefetcher::with_limits(
            items,
            reader,
            handle,
            budget,
            PREFETCH_ITEMS,
            PREFETCH_BYTES,
        )
    }

    fn with_limits(
        items: &'a [PinnedItem],
        reader: &'a ItemReader,
        handle: &'a tokio::runtime::Handle,
        budget: &'a ByteBudget,
        max_items: usize,
        max_bytes: u64,
    ) -> Prefetcher<'a> {
        Prefetcher {
            waiting: items.iter(),
            reader,
            handle,
            budget,
            ahead: VecDeque::with_capacity(max_items),
            ahead_bytes: 0,
            max_items: max_items.max(1),
            max_bytes,
        }
    }

    /// Starts the reads of the next items while they fit.
    fn fill(&mut self) {
        while self.ahead.len() < self.max_items {
            let Some(item) = self.waiting.as_slice().first() else {
                return;
            };
            // An item over the job's limit is not read: it takes nothing.
            let bytes = if item.size > self.reader.max_item_bytes() {
                0
            } else {
                item.size
            };
            if !self.ahead.is_empty() && self.ahead_bytes + bytes > self.max_bytes {
                return;
            }
            let Some(share) = self.budget.try_take(bytes) else {
                return;
            };
            self.waiting.next();
            let read = self.handle.spawn(self.reader.fetch(item));
            self.ahead_bytes += bytes;
            self.ahead.push_back(Reading {
                item,
                share,
                bytes,
                read,
            });
        }
    }

    /// The next item in order, once read (blocking this thread, which must not be one of the
    /// runtime's); the reads after it go on meanwhile.
    pub(super) fn next(&mut self) -> Next<'a> {
        self.fill();
        let Some(front) = self.ahead.pop_front() else {
            return if self.waiting.as_slice().is_empty() {
                Next::Done
            } else {
                Next::Full
            };
        };
        self.ahead_bytes -= front.bytes;
        let bytes = self.handle.block_on(front.read).unwrap_or_else(|e| {
            Err((
                fresco_core::dataset::ItemErrorKind::Unreadable,
                format!("{}: the read stopped: {e}", front.item.key),
            ))
        });
        self.fill();
        Next::Item(Fetched {
            item: front.item,
            bytes,
            share: front.share,
        })
    }
}

impl Drop for Prefetcher<'_> {
    /// Reads still going when the chunk stops (canceled, failed) are stopped.
    fn drop(&mut self) {
        for reading in &self.ahead {
            reading.read.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fresco_core::dataset::{DatasetSource, DatasetSpec, ItemErrorKind};

    /// A `file://` prefix of `count` items (`i` bytes of value `i` each, item 3 empty), pinned
    /// as listed; the reader and a multi-threaded runtime.
    fn prefix(
        dir: &std::path::Path,
        count: u8,
    ) -> (Vec<PinnedItem>, ItemReader, tokio::runtime::Runtime) {
        for i in 0..count {
            let len = if i == 3 { 0 } else { 10 + i as usize };
            std::fs::write(dir.join(format!("{i:03}.jpg")), vec![i; len]).unwrap();
        }
        let spec = DatasetSpec {
            source: DatasetSource::Prefix {
                url: format!("file://{}/", dir.display()),
            },
            include: Vec::new(),
            max_failed_items: None,
            max_failed_fraction: 0.01,
            max_item_bytes: 1000,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let filter = super::super::listing::KeyFilter::new(&spec).unwrap();
        let mut items = Vec::new();
        super::super::listing::list(&spec, &filter, &mut 0, &mut |l| {
            items.push(PinnedItem {
                index: items.len() as u64,
                key: l.key,
                size: l.size,
                version: l.version,
            });
            Ok(())
        })
        .unwrap();
        let reader = ItemReader::new(&spec).unwrap();
        (items, reader, runtime)
    }

    #[test]
    fn items_come_in_listing_order_with_bad_ones_in_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let (mut items, reader, runtime) = prefix(dir.path(), 40);
        // Pinned smaller than it is now: changed since the listing.
        items[7].size -= 1;
        let budget = ByteBudget::new(1 << 20);
        let mut prefetcher = Prefetcher::new(&items, &reader, runtime.handle(), &budget);
        let mut got = Vec::new();
        loop {
            match prefetcher.next() {
                Next::Item(fetched) => got.push((fetched.item.index, fetched.bytes)),
                Next::Full => panic!("nothing is held outside the prefetcher"),
                Next::Done => break,
            }
        }
        assert_eq!(got.len(), 40);
        for (i, (index, bytes)) in got.into_iter().enumerate() {
            assert_eq!(index, i as u64);
            match i {
                3 => assert_eq!(bytes.unwrap_err().0, ItemErrorKind::Empty),
                7 => assert_eq!(bytes.unwrap_err().0, ItemErrorKind::Changed),
                _ => assert_eq!(bytes.unwrap(), vec![i as u8; 10 + i]),
            }
        }
        assert_eq!(budget.used(), 0, "every share went back");
    }

    #[test]
    fn reads_ahead_are_bounded_in_count_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (items, reader, runtime) = prefix(dir.path(), 20);
        let budget = ByteBudget::new(1 << 20);
        // Four items ahead at most.
        let mut prefetcher =
            Prefetcher::with_limits(&items, &reader, runtime.handle(), &budget, 4, 1 << 20);
        let Next::Item(first) = prefetcher.next() else {
            panic!("an item")
        };
        assert_eq!(prefetcher.ahead.len(), 4);
        let held: u64 = items[..5].iter().map(|i| i.size).sum();
        assert_eq!(budget.used(), held, "the item handed out and four ahead");
        drop(first);
        drop(prefetcher);
        assert_eq!(budget.used(), 0);

        // 35 bytes ahead at most: items 1 (11 bytes), 2 (12), 3 (0) fit, item 4 (14) not.
        let mut prefetcher =
            Prefetcher::with_limits(&items, &reader, runtime.handle(), &budget, 10, 35);
        let Next::Item(_first) = prefetcher.next() else {
            panic!("an item")
        };
        assert_eq!(prefetcher.ahead.len(), 3);
        assert_eq!(prefetcher.ahead_bytes, 11 + 12);
    }

    #[test]
    fn a_spent_budget_stops_the_reads_until_items_are_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let (items, reader, runtime) = prefix(dir.path(), 6);
        // Items 0, 1 and 2 (10 + 11 + 12 bytes) fill a budget of 35.
        let budget = ByteBudget::new(35);
        let mut prefetcher = Prefetcher::new(&items, &reader, runtime.handle(), &budget);
        let mut handed = Vec::new();
        for _ in 0..3 {
            let Next::Item(fetched) = prefetcher.next() else {
                panic!("an item")
            };
            handed.push(fetched);
        }
        // Item 3 is empty (0 bytes) and fits; item 4 (14 bytes) does not.
        assert!(matches!(prefetcher.next(), Next::Item(f) if f.item.index == 3));
        assert!(matches!(prefetcher.next(), Next::Full));
        handed.remove(0);
        handed.remove(0);
        let Next::Item(fourth) = prefetcher.next() else {
            panic!("room again")
        };
        assert_eq!(fourth.item.index, 4);
        assert_eq!(fourth.bytes.as_deref().unwrap(), &[4u8; 14][..]);
    }
}
