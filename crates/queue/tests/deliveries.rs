//! Completion-callback deliveries on every backend (SQLite, and PostgreSQL when
//! `FRESCO_TEST_POSTGRES_URL` names a server; see `backend.rs`): pending until the job ends,
//! claimed by one claimer at a time, retried when due, kept with their outcome, and still there
//! when the queue is opened again.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fresco_queue::{Admission, DeliveryOutcome, DeliveryState, Queue, Submitted};

mod support;
use support::{job, submit, Db, LONG, SHORT};

async fn a_delivery_waits_for_its_job_and_is_sent_once(db: &Db) {
    let q = db.open().await;
    let id = submit(&q, job("a")).await;
    q.add_delivery(&id, "https://hooks.example/a")
        .await
        .unwrap();
    // The job is queued: nothing to send yet.
    assert!(q.claim_delivery(LONG).await.unwrap().is_none());
    assert!(q.cancel(&id).await.unwrap());

    let lease = q
        .claim_delivery(LONG)
        .await
        .unwrap()
        .expect("due once the job ended");
    assert_eq!(lease.job_id, id);
    assert_eq!(lease.url, "https://hooks.example/a");
    assert_eq!(lease.attempts, 0);
    assert!(lease.webhook_id.starts_with("msg_"));
    // Held: no second claim gets it.
    assert!(q.claim_delivery(LONG).await.unwrap().is_none());

    assert!(q
        .finish_delivery(&lease, &DeliveryOutcome::Delivered)
        .await
        .unwrap());
    // A finished lease changes nothing again.
    assert!(!q
        .finish_delivery(&lease, &DeliveryOutcome::Delivered)
        .await
        .unwrap());
    assert!(q.claim_delivery(LONG).await.unwrap().is_none());
    let records = q.deliveries(&id).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].state, DeliveryState::Delivered);
    assert_eq!(records[0].attempts, 1);
    assert_eq!(records[0].webhook_id, lease.webhook_id);
    assert!(records[0].finished_at_ms.is_some());
}

async fn a_failed_attempt_is_retried_when_due_with_the_same_id(db: &Db) {
    let q = db.open().await;
    let id = submit(&q, job("a")).await;
    q.add_delivery(&id, "http://hooks.example/b").await.unwrap();
    q.cancel(&id).await.unwrap();
    let first = q.claim_delivery(LONG).await.unwrap().unwrap();
    let later = fresco_queue::now_ms() + 300;
    let retry = DeliveryOutcome::Retry {
        error: "answered HTTP 500".into(),
        at_ms: later,
    };
    assert!(q.finish_delivery(&first, &retry).await.unwrap());
    // Not before its time.
    assert!(q.claim_delivery(LONG).await.unwrap().is_none());
    let record = &q.deliveries(&id).await.unwrap()[0];
    assert_eq!(record.state, DeliveryState::Pending);
    assert_eq!(record.last_error.as_deref(), Some("answered HTTP 500"));
    assert_eq!(record.next_attempt_at_ms, later);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = q.claim_delivery(LONG).await.unwrap().expect("due again");
    assert_eq!(second.attempts, 1);
    assert_eq!(second.webhook_id, first.webhook_id);
    let give_up = DeliveryOutcome::GiveUp {
        error: "gave up".into(),
    };
    assert!(q.finish_delivery(&second, &give_up).await.unwrap());
    let record = &q.deliveries(&id).await.unwrap()[0];
    assert_eq!(record.state, DeliveryState::Failed);
    assert_eq!(record.attempts, 2);
    assert!(q.claim_delivery(LONG).await.unwrap().is_none());
}

async fn an_expired_delivery_lease_is_claimed_again_and_fenced(db: &Db) {
    let q = db.open().await;
    let id = submit(&q, job("a")).await;
    q.add_delivery(&id, "http://hooks.example/c").await.unwrap();
    q.cancel(&id).await.unwrap();
    let dead = q.claim_delivery(SHORT).await.unwrap().unwrap();
    tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
    let alive = q
        .claim_delivery(LONG)
        .await
        .unwrap()
        .expect("the lease ran out");
    assert_eq!(alive.id, dead.id);
    assert_ne!(alive.token, dead.token);
    // The server whose lease ran out records nothing.
    assert!(!q
        .finish_delivery(&dead, &DeliveryOutcome::Delivered)
        .await
        .unwrap());
    assert_eq!(q.deliveries(&id).await.unwrap()[0].attempts, 0);
}

async fn deliveries_survive_reopening_the_queue(db: &Db) {
    let id = {
        let q = db.open().await;
        let id = submit(&q, job("a")).await;
        q.add_delivery(&id, "http://hooks.example/d").await.unwrap();
        id
    };
    let q = db.open().await;
    q.cancel(&id).await.unwrap();
    let lease = q.claim_delivery(LONG).await.unwrap().unwrap();
    assert_eq!(lease.job_id, id);
}

async fn concurrent_claimers_never_share_a_delivery(db: &Db) {
    let q = db.open().await;
    for n in 0..6 {
        let id = submit(&q, job(&format!("j{n}"))).await;
        q.add_delivery(&id, "http://hooks.example/e").await.unwrap();
        q.cancel(&id).await.unwrap();
    }
    let mut claimers = Vec::new();
    for _ in 0..4 {
        let q: Arc<dyn Queue> = db.open().await;
        claimers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..10 {
                if let Some(lease) = q.claim_delivery(LONG).await.unwrap() {
                    got.push(lease.id);
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        distinct.len(),
        "a delivery claimed twice: {all:?}"
    );
    assert_eq!(distinct.len(), 6);
}

async fn a_submission_with_a_callback_writes_its_delivery_with_the_job(db: &Db) {
    let q = db.open().await;
    let admission = Admission {
        owner: "alice".into(),
        max_active_per_owner: None,
        max_active: None,
        callback_url: Some("https://hooks.example/f".into()),
    };
    let Submitted::New(id) = q.submit_owned(job("a"), &admission).await.unwrap() else {
        panic!("a new job");
    };
    let records = q.deliveries(&id).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].url, "https://hooks.example/f");
    assert_eq!(records[0].state, DeliveryState::Pending);
    // The same work again finds the job, and adds no delivery.
    assert_eq!(
        q.submit_owned(job("a"), &admission).await.unwrap(),
        Submitted::Existing(id.clone())
    );
    assert_eq!(q.deliveries(&id).await.unwrap().len(), 1);
    // Without a callback, none.
    let plain = Admission {
        callback_url: None,
        ..admission
    };
    let Submitted::New(other) = q.submit_owned(job("b"), &plain).await.unwrap() else {
        panic!("a new job");
    };
    assert!(q.deliveries(&other).await.unwrap().is_empty());
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
    a_delivery_waits_for_its_job_and_is_sent_once,
    a_failed_attempt_is_retried_when_due_with_the_same_id,
    an_expired_delivery_lease_is_claimed_again_and_fenced,
    deliveries_survive_reopening_the_queue,
    concurrent_claimers_never_share_a_delivery,
    a_submission_with_a_callback_writes_its_delivery_with_the_job,
);
