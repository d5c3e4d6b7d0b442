//! A dataset's pinned items: pinned by the plan's lease only, read by range in listing order,
//! failures recorded per chunk (a retry's report replaces the earlier one), kept by a retry,
//! and counted for many jobs at once (the dashboard's list).

use fresco_core::FrameRange;
use fresco_queue::{LeaseStatus, PinnedItem};

use crate::support::{claim, job, submit, Db};

fn item(index: u64) -> PinnedItem {
    PinnedItem {
        index,
        key: format!("dir/{index:03}.jpg"),
        size: 100 + index,
        version: index.is_multiple_of(2).then(|| format!("etag-{index}")),
    }
}

pub async fn items_are_pinned_by_the_plan_and_counted(db: &Db) {
    let q = db.open().await;
    let id = submit(&q, job("a")).await;
    let plan = claim(&q, "planner").await.unwrap();
    // A try that got as far as pinning some items, then the clear of the next try.
    let items: Vec<PinnedItem> = (0..25).map(item).collect();
    assert_eq!(
        q.pin_items(&plan, &items[..3]).await.unwrap(),
        LeaseStatus::Held
    );
    assert_eq!(q.clear_items(&plan).await.unwrap(), LeaseStatus::Held);
    for batch in items.chunks(10) {
        assert_eq!(q.pin_items(&plan, batch).await.unwrap(), LeaseStatus::Held);
    }
    let ranges = [
        FrameRange { start: 0, end: 20 },
        FrameRange { start: 20, end: 25 },
    ];
    q.complete_plan(&plan, "{}", 25, &ranges).await.unwrap();
    // The plan's lease is over: it pins nothing more.
    assert_eq!(
        q.pin_items(&plan, &[item(99)]).await.unwrap(),
        LeaseStatus::Lost
    );
    assert_eq!(q.clear_items(&plan).await.unwrap(), LeaseStatus::Lost);

    let got = q
        .items(&id, FrameRange { start: 18, end: 22 })
        .await
        .unwrap();
    assert_eq!(got, items[18..22].to_vec());
    assert_eq!(q.items(&id, ranges[1]).await.unwrap().len(), 5);

    let chunk = claim(&q, "w").await.unwrap();
    assert_eq!(chunk.frames, ranges[0]);
    let failed = vec![(3, "not-image".to_string()), (7, "empty".to_string())];
    assert_eq!(
        q.record_failures(&chunk, &failed).await.unwrap(),
        LeaseStatus::Held
    );
    // The same chunk's report again (a retry) replaces the first.
    assert_eq!(
        q.record_failures(&chunk, &failed[..1]).await.unwrap(),
        LeaseStatus::Held
    );
    let counts = q.item_counts(&id).await.unwrap();
    assert_eq!((counts.total, counts.failed), (25, 1));
    q.complete_chunk(&chunk).await.unwrap();
    assert_eq!(
        q.record_failures(&chunk, &failed).await.unwrap(),
        LeaseStatus::Lost
    );
    assert_eq!(q.item_counts(&id).await.unwrap().failed, 1);
    // Another job's items are its own.
    let other = submit(&q, job("b")).await;
    assert_eq!(q.item_counts(&other).await.unwrap().total, 0);

    // The dashboard's count, many jobs at once: only jobs with failures are in the map.
    let failed = q
        .failed_items(&[id.clone(), other.clone(), "no-such-job".into()])
        .await
        .unwrap();
    assert_eq!(failed, [(id.clone(), 1)].into_iter().collect());
    assert!(q.failed_items(&[]).await.unwrap().is_empty());
    // More jobs than one statement asks about: every slice is read.
    let mut many: Vec<String> = (0..1200).map(|n| format!("absent-{n}")).collect();
    many.push(id.clone());
    assert_eq!(q.failed_items(&many).await.unwrap().get(&id), Some(&1));
}
