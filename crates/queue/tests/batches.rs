//! The dataset trigger's batches on every backend (SQLite, and PostgreSQL when
//! `FRESCO_TEST_POSTGRES_URL` names a server; see `backend.rs`): an object is collected once,
//! a batch is cut at its count or its age and takes each object once, however many cut at
//! once, and a batch whose holder died is claimed again after its lease.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fresco_queue::{now_ms, BatchOutcome, CollectedObject, Queue};

mod support;
use support::{Db, LONG, PAST_SHORT, SHORT};

fn objects(names: &[&str]) -> Vec<CollectedObject> {
    names
        .iter()
        .map(|n| CollectedObject {
            key: n.to_string(),
            version: "v1".into(),
        })
        .collect()
}

/// Far in the past: an age limit that no object has reached.
const NEVER: i64 = 0;

async fn a_batch_is_cut_at_its_count_of_exactly_the_oldest(db: &Db) {
    let q = db.open().await;
    assert_eq!(
        q.collect_objects("t", &objects(&["a.jpg", "b.jpg"]))
            .await
            .unwrap(),
        2
    );
    // Seen again (another listing, a redelivered event): nothing new.
    assert_eq!(
        q.collect_objects("t", &objects(&["a.jpg"])).await.unwrap(),
        0
    );
    // Two of three: not due by count, nor by age.
    assert!(q.cut_batch("t", 3, NEVER, LONG).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(5)).await;
    q.collect_objects("t", &objects(&["c.jpg", "d.jpg"]))
        .await
        .unwrap();
    let batch = q.cut_batch("t", 3, NEVER, LONG).await.unwrap().unwrap();
    assert_eq!(batch.objects, 3);
    let keys: Vec<String> = q
        .batch_objects(batch.id)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["a.jpg", "b.jpg", "c.jpg"], "the oldest, in order");
    assert_eq!(q.waiting_objects("t").await.unwrap(), 1);
    // Another trigger's objects are its own.
    assert!(q.cut_batch("u", 1, now_ms(), LONG).await.unwrap().is_none());
    // A rewritten object (a new version) is collected again; the same one is not.
    let rewritten = CollectedObject {
        key: "a.jpg".into(),
        version: "v2".into(),
    };
    assert_eq!(q.collect_objects("t", &[rewritten]).await.unwrap(), 1);
    assert_eq!(
        q.collect_objects("t", &objects(&["a.jpg", "b.jpg", "c.jpg"]))
            .await
            .unwrap(),
        0,
        "objects in a batch are not collected again"
    );

    assert!(q
        .finish_batch(&batch, &BatchOutcome::Job("job-1".into()))
        .await
        .unwrap());
    assert!(!q
        .finish_batch(&batch, &BatchOutcome::Job("job-2".into()))
        .await
        .unwrap());
    let listed = q.batches("t").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].job_id.as_deref(), Some("job-1"));
    assert_eq!(listed[0].objects, 3);
}

async fn a_batch_is_cut_by_age_with_fewer(db: &Db) {
    let q = db.open().await;
    q.collect_objects("t", &objects(&["a.jpg"])).await.unwrap();
    assert!(q.cut_batch("t", 100, NEVER, LONG).await.unwrap().is_none());
    let batch = q
        .cut_batch("t", 100, now_ms(), LONG)
        .await
        .unwrap()
        .expect("the oldest object is old enough");
    assert_eq!(batch.objects, 1);
    assert_eq!(q.waiting_objects("t").await.unwrap(), 0);
    // Nothing waits: no empty batch.
    assert!(q
        .cut_batch("t", 100, now_ms(), LONG)
        .await
        .unwrap()
        .is_none());
    assert!(q
        .finish_batch(&batch, &BatchOutcome::Refused("no model".into()))
        .await
        .unwrap());
    let listed = q.batches("t").await.unwrap();
    assert_eq!(listed[0].error.as_deref(), Some("no model"));
    // A refused batch is not claimed again.
    assert!(q.claim_open_batch("t", LONG).await.unwrap().is_none());
}

async fn a_batch_whose_holder_died_is_claimed_again_and_fenced(db: &Db) {
    let q = db.open().await;
    q.collect_objects("t", &objects(&["a.jpg", "b.jpg"]))
        .await
        .unwrap();
    let first = q.cut_batch("t", 2, NEVER, SHORT).await.unwrap().unwrap();
    // Held: nobody else takes it.
    assert!(q.claim_open_batch("t", LONG).await.unwrap().is_none());
    tokio::time::sleep(PAST_SHORT).await;
    let second = q.claim_open_batch("t", LONG).await.unwrap().unwrap();
    assert_eq!((second.id, second.objects), (first.id, 2));
    assert!(q.claim_open_batch("t", LONG).await.unwrap().is_none());
    // The first holder's lease is gone: its outcome changes nothing.
    assert!(!q
        .finish_batch(&first, &BatchOutcome::Job("late".into()))
        .await
        .unwrap());
    assert!(q
        .finish_batch(&second, &BatchOutcome::Job("job".into()))
        .await
        .unwrap());
    // Reopened (a restart): the batch and its objects are still there.
    drop(q);
    let q = db.open().await;
    assert_eq!(
        q.batches("t").await.unwrap()[0].job_id.as_deref(),
        Some("job")
    );
    assert_eq!(q.batch_objects(first.id).await.unwrap().len(), 2);
}

async fn concurrent_cutters_never_share_an_object(db: &Db) {
    let q = db.open().await;
    let names: Vec<String> = (0..200).map(|n| format!("{n:04}.jpg")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    q.collect_objects("t", &objects(&names)).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..4 {
        let queue: Arc<dyn Queue> = db.open().await;
        handles.push(tokio::spawn(async move {
            let mut keys = Vec::new();
            while let Some(batch) = queue.cut_batch("t", 7, now_ms(), LONG).await.unwrap() {
                for object in queue.batch_objects(batch.id).await.unwrap() {
                    keys.push(object.key);
                }
            }
            keys
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for handle in handles {
        for key in handle.await.unwrap() {
            total += 1;
            assert!(seen.insert(key.clone()), "{key} is in two batches");
        }
    }
    assert_eq!(total, 200);
    assert!(q
        .batches("t")
        .await
        .unwrap()
        .iter()
        .all(|b| b.objects >= 1 && b.objects <= 7));
}

macro_rules! backend_tests {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let db = super::Db::sqlite();
                    super::$check(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(db) = super::Db::postgres().await else { return };
                    super::$check(&db).await;
                }
            )*
        }
    };
}

backend_tests!(
    a_batch_is_cut_at_its_count_of_exactly_the_oldest,
    a_batch_is_cut_by_age_with_fewer,
    a_batch_whose_holder_died_is_claimed_again_and_fenced,
    concurrent_cutters_never_share_an_object,
);
