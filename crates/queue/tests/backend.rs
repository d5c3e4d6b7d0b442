//! The queue's contract, one suite for every backend: each check runs against SQLite (a file in
//! a temporary folder) and against PostgreSQL (a fresh database per check on the server that
//! `FRESCO_TEST_POSTGRES_URL` names, e.g. `scripts/postgres.sh | tail -1`).
//!
//! Without that variable the PostgreSQL checks say so and pass, unless `FRESCO_REQUIRE_POSTGRES=1`
//! (CI), where they fail.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fresco_core::{FrameRange, JobState, TaskKind, TaskState};
use fresco_queue::{ClaimFilter, FailOutcome, LeaseStatus, Queue, QueueError, Submitted};

#[path = "backend/items.rs"]
mod items;
mod support;
use items::items_are_pinned_by_the_plan_and_counted;
use support::{
    budgets, chunks, claim, describe, job, only, plan, submit, task_of, Db, LONG, PAST_SHORT, SHORT,
};

async fn submit_dedupes_by_identity(db: &Db) {
    let q = db.open().await;
    let mut new = job("a");
    new.priority = 3;
    new.budgets = budgets(5, 7);
    let id = submit(&q, new.clone()).await;
    assert_eq!(
        q.submit(new.clone()).await.unwrap(),
        Submitted::Existing(id.clone())
    );

    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Queued);
    assert_eq!(record.identity, "a");
    assert_eq!(record.priority, 3);
    assert_eq!(
        (record.input.as_str(), record.output.as_str()),
        ("/in/a.mp4", "/out/a.mp4")
    );
    assert_eq!(record.spec, new.spec);
    assert_eq!((record.max_attempts, record.max_expiries), (5, 7));
    assert_eq!((record.chunks_total, record.frames_total), (0, None));
    assert!(record.enqueued_at_ms > 0 && record.started_at_ms.is_none());
    assert_eq!(q.active_job("a").await.unwrap().unwrap().id, id);
    assert!(q.active_job("b").await.unwrap().is_none());
    assert!(q.job("no-such-job").await.unwrap().is_none());

    // Another identity is another job.
    let other = submit(&q, job("b")).await;
    assert_ne!(other, id);

    // Once the job is over, the same identity makes a new one.
    assert!(q.cancel(&id).await.unwrap());
    assert!(q.active_job("a").await.unwrap().is_none());
    let again = submit(&q, new).await;
    assert_ne!(again, id);
    assert_eq!(q.active_job("a").await.unwrap().unwrap().id, again);

    // Newest first, filtered by state, limited.
    let all: Vec<String> = q
        .jobs(&[], 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2], id, "the first job is listed last: {all:?}");
    let canceled = q.jobs(&[JobState::Canceled], 10).await.unwrap();
    assert_eq!(canceled.len(), 1);
    assert_eq!(canceled[0].id, id);
    assert_eq!(
        q.jobs(&[JobState::Queued, JobState::Running], 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(q.jobs(&[], 1).await.unwrap().len(), 1);
}

async fn jobs_are_listed_newest_first(db: &Db) {
    let q = db.open().await;
    // Quick submits share milliseconds: the order must hold all the same.
    let mut submitted = Vec::new();
    for i in 0..12 {
        submitted.push(submit(&q, job(&format!("job {i}"))).await);
    }
    submitted.reverse();
    let listed: Vec<String> = q
        .jobs(&[], 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(listed, submitted);
    let first_five: Vec<String> = q
        .jobs(&[], 5)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(first_five, submitted[..5]);
    let tasks = q.tasks(&submitted[0]).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        (tasks[0].kind, tasks[0].state),
        (TaskKind::Plan, TaskState::Pending)
    );
}

async fn concurrent_submits_make_one_job(db: &Db) {
    // Several instances opening one fresh database at once also migrate it together.
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let db = db.clone();
        opening.spawn(async move { db.open().await });
    }
    let queues: Vec<Arc<dyn Queue>> = opening.join_all().await;
    let mut submits = tokio::task::JoinSet::new();
    for i in 0..16 {
        let q = queues[i % queues.len()].clone();
        submits.spawn(async move { q.submit(job("same")).await.unwrap() });
    }
    let results = submits.join_all().await;
    let new: Vec<&Submitted> = results
        .iter()
        .filter(|s| matches!(s, Submitted::New(_)))
        .collect();
    assert_eq!(new.len(), 1, "{results:?}");
    let ids: HashSet<&str> = results.iter().map(|s| s.id()).collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert_eq!(queues[0].jobs(&[], 100).await.unwrap().len(), 1);
}

async fn claim_order_is_fair_and_priority_wins(db: &Db) {
    let q = db.open().await;
    let first = submit(&q, job("first")).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = submit(&q, job("second")).await;
    // Plans in submission order.
    let lease = claim(&q, "w").await.unwrap();
    assert_eq!(describe(&lease), (first.clone(), TaskKind::Plan, 0));
    assert!(lease.plan.is_none());
    assert_eq!(lease.spec, job("first").spec);
    q.complete_plan(&lease, "p1", 30, &chunks(3)).await.unwrap();
    plan(&q, &second, 3).await;

    // Chunk 0 of every job before chunk 1 of any.
    let mut order = Vec::new();
    for _ in 0..6 {
        order.push(describe(&claim(&q, "w").await.unwrap()));
    }
    let expected: Vec<(String, TaskKind, u32)> = (0..3)
        .flat_map(|c| {
            [
                (first.clone(), TaskKind::Score, c),
                (second.clone(), TaskKind::Score, c),
            ]
        })
        .collect();
    assert_eq!(order, expected);
    // Every chunk is leased and the assemble tasks wait for theirs.
    assert!(claim(&q, "w").await.is_none());

    // A job of higher priority goes first, chunks included.
    let urgent = {
        let mut new = job("urgent");
        new.priority = 5;
        submit(&q, new).await
    };
    let third = submit(&q, job("third")).await;
    let lease = claim(&q, "w").await.unwrap();
    assert_eq!(describe(&lease), (urgent.clone(), TaskKind::Plan, 0));
    q.complete_plan(&lease, "p", 20, &chunks(2)).await.unwrap();
    assert_eq!(
        describe(&claim(&q, "w").await.unwrap()),
        (urgent.clone(), TaskKind::Score, 0)
    );
    assert_eq!(
        describe(&claim(&q, "w").await.unwrap()),
        (urgent, TaskKind::Score, 1)
    );
    assert_eq!(
        describe(&claim(&q, "w").await.unwrap()),
        (third, TaskKind::Plan, 0)
    );
}

async fn plan_adds_chunks_and_assemble_waits_for_them(db: &Db) {
    let q = db.open().await;
    let id = submit(&q, job("a")).await;
    let lease = claim(&q, "planner").await.unwrap();
    assert_eq!(
        (lease.kind, lease.chunk, lease.frames.len()),
        (TaskKind::Plan, 0, 0)
    );
    assert_eq!((lease.attempts, lease.expiries), (0, 0));
    let running = q.job(&id).await.unwrap().unwrap();
    assert_eq!(running.state, JobState::Running);
    assert!(running.started_at_ms.is_some());

    let ranges = vec![
        FrameRange { start: 0, end: 10 },
        FrameRange { start: 10, end: 20 },
        FrameRange { start: 20, end: 25 },
    ];
    let status = q
        .complete_plan(&lease, "the plan", 25, &ranges)
        .await
        .unwrap();
    assert_eq!(status, LeaseStatus::Held);
    // The same (now stale) lease cannot plan twice.
    assert_eq!(
        q.complete_plan(&lease, "again", 25, &ranges).await.unwrap(),
        LeaseStatus::Lost
    );
    let tasks = q.tasks(&id).await.unwrap();
    let shape: Vec<(TaskKind, u32, FrameRange, TaskState)> = tasks
        .iter()
        .map(|t| (t.kind, t.chunk, t.frames, t.state))
        .collect();
    let empty = FrameRange { start: 0, end: 0 };
    assert_eq!(
        shape,
        vec![
            (TaskKind::Plan, 0, empty, TaskState::Done),
            (TaskKind::Score, 0, ranges[0], TaskState::Pending),
            (TaskKind::Score, 1, ranges[1], TaskState::Pending),
            (TaskKind::Score, 2, ranges[2], TaskState::Pending),
            (TaskKind::Assemble, 0, empty, TaskState::Pending),
        ]
    );
    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!(record.plan.as_deref(), Some("the plan"));
    assert_eq!((record.frames_total, record.chunks_total), (Some(25), 3));

    let mut held = Vec::new();
    for chunk in 0..3 {
        let lease = claim(&q, "scorer").await.unwrap();
        assert_eq!((lease.kind, lease.chunk), (TaskKind::Score, chunk));
        assert_eq!(lease.frames, ranges[chunk as usize]);
        assert_eq!(lease.plan.as_deref(), Some("the plan"));
        held.push(lease);
    }
    let last = held.pop().unwrap();
    for lease in &held {
        assert_eq!(q.complete_chunk(lease).await.unwrap(), LeaseStatus::Held);
    }
    assert_eq!(q.complete_chunk(&held[0]).await.unwrap(), LeaseStatus::Lost);
    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!((record.chunks_done, record.frames_done), (2, 20));
    // One chunk is still out: nothing to claim.
    assert!(claim(&q, "assembler").await.is_none());
    assert_eq!(q.complete_chunk(&last).await.unwrap(), LeaseStatus::Held);

    let assemble = claim(&q, "assembler").await.unwrap();
    assert_eq!(assemble.kind, TaskKind::Assemble);
    assert_eq!(assemble.plan.as_deref(), Some("the plan"));
    assert_eq!(q.complete_job(&assemble).await.unwrap(), LeaseStatus::Held);
    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Succeeded);
    assert!(record.finished_at_ms.is_some());
    assert_eq!((record.chunks_done, record.frames_done), (3, 25));
    assert_eq!(q.complete_job(&assemble).await.unwrap(), LeaseStatus::Lost);
    assert!(claim(&q, "w").await.is_none());
    // Its identity is free again.
    assert!(matches!(
        q.submit(job("a")).await.unwrap(),
        Submitted::New(_)
    ));
}

async fn heartbeat_extends_and_a_lost_lease_is_fenced(db: &Db) {
    let q = db.open().await;
    let id = submit(&q, job("a")).await;
    plan(&q, &id, 2).await;

    // Renewed in time, the lease holds past its first end.
    let kept = q
        .claim("keeper", SHORT, &ClaimFilter::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(q.heartbeat(&kept, LONG).await.unwrap(), LeaseStatus::Held);
    tokio::time::sleep(PAST_SHORT).await;
    let other = q
        .claim("other", SHORT, &ClaimFilter::default())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(other.task_id, kept.task_id);
    assert_eq!(q.heartbeat(&kept, LONG).await.unwrap(), LeaseStatus::Held);

    // Not renewed, it is taken over and the old holder can do nothing with it.
    tokio::time::sleep(PAST_SHORT).await;
    let taken = q
        .claim("taker", LONG, &ClaimFilter::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.task_id, other.task_id);
    assert_ne!(taken.token, other.token);
    assert_eq!(taken.expiries, 1);
    assert_eq!(q.heartbeat(&other, LONG).await.unwrap(), LeaseStatus::Lost);
    assert_eq!(
        q.checkpoint(&other, "stale").await.unwrap(),
        LeaseStatus::Lost
    );
    assert_eq!(q.complete_chunk(&other).await.unwrap(), LeaseStatus::Lost);
    assert_eq!(
        q.fail(&other, "stale", true, Duration::ZERO).await.unwrap(),
        FailOutcome::LeaseLost
    );
    q.release(&other).await.unwrap();
    let record = task_of(&q, &taken).await;
    assert_eq!(record.state, TaskState::Leased);
    assert_eq!(record.worker.as_deref(), Some("taker"));
    assert_eq!((record.attempts, record.expiries), (0, 1));
    assert!(record.last_error.is_none());

    // A checkpoint reaches the next holder.
    assert_eq!(
        q.checkpoint(&taken, "published").await.unwrap(),
        LeaseStatus::Held
    );
    q.release(&taken).await.unwrap();
    let next = claim(&q, "next").await.unwrap();
    assert_eq!(next.task_id, taken.task_id);
    assert_eq!(next.checkpoint.as_deref(), Some("published"));
    assert_eq!(q.complete_chunk(&taken).await.unwrap(), LeaseStatus::Lost);
    assert_eq!(q.complete_chunk(&next).await.unwrap(), LeaseStatus::Held);
}

async fn spent_expiry_budget_fails_the_job(db: &Db) {
    let q = db.open().await;
    let mut new = job("a");
    new.budgets = budgets(3, 2);
    let id = submit(&q, new).await;
    let bystander = submit(&q, job("b")).await;
    let filter = only(&id);

    let first = q.claim("w1", SHORT, &filter).await.unwrap().unwrap();
    assert_eq!(first.expiries, 0);
    tokio::time::sleep(PAST_SHORT).await;
    let second = q.claim("w2", SHORT, &filter).await.unwrap().unwrap();
    assert_eq!((second.task_id, second.expiries), (first.task_id, 1));
    assert_eq!(q.job(&id).await.unwrap().unwrap().expiries, 1);
    tokio::time::sleep(PAST_SHORT).await;

    // The second expiry spends the budget: the next claim fails the job instead.
    assert!(q.claim("w3", SHORT, &filter).await.unwrap().is_none());
    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Failed);
    assert!(record.finished_at_ms.is_some());
    let error = record.last_error.unwrap();
    assert!(
        error.contains("lease expired 2 times") && error.contains("(last: w2)"),
        "{error}"
    );
    assert!(error.starts_with("plan: "), "{error}");
    let task = task_of(&q, &first).await;
    assert_eq!((task.state, task.expiries), (TaskState::Failed, 2));
    assert_eq!(q.heartbeat(&second, LONG).await.unwrap(), LeaseStatus::Lost);
    // Other jobs go on.
    assert_eq!(claim(&q, "w4").await.unwrap().job_id, bystander);
}

async fn retryable_failure_backs_off_then_fails_the_job(db: &Db) {
    let q = db.open().await;
    let mut new = job("a");
    new.budgets = budgets(3, 10);
    let id = submit(&q, new).await;
    let other = submit(&q, job("b")).await;
    plan(&q, &id, 1).await;
    let filter = only(&id);
    // Long enough that the claim right after the failure comes before it ends, even on a
    // machine that stalls a little.
    let backoff = Duration::from_millis(600);

    for attempt in 0..3 {
        let lease = q.claim("w", LONG, &filter).await.unwrap().unwrap();
        assert_eq!((lease.kind, lease.attempts), (TaskKind::Score, attempt));
        let before = fresco_queue::now_ms();
        let outcome = q
            .fail(&lease, &format!("boom {attempt}"), true, backoff)
            .await
            .unwrap();
        if attempt == 2 {
            assert_eq!(outcome, FailOutcome::JobFailed);
            break;
        }
        let FailOutcome::Retrying { not_before_ms } = outcome else {
            panic!("expected a retry, got {outcome:?}");
        };
        // PostgreSQL's clock is the database's: the same machine's here, give or take.
        assert!(
            (before + 550..=before + 2_500).contains(&not_before_ms),
            "not before {not_before_ms}, failed at {before}"
        );
        let record = q.job(&id).await.unwrap().unwrap();
        assert_eq!(record.state, JobState::Running);
        let expected = format!("chunk 0 (frames 0-9): boom {attempt}");
        assert_eq!(record.last_error.as_deref(), Some(expected.as_str()));
        let task = task_of(&q, &lease).await;
        assert_eq!(
            (task.state, task.attempts),
            (TaskState::Pending, attempt + 1)
        );
        assert_eq!(task.not_before_ms, not_before_ms);
        // Not before its time.
        assert!(q.claim("w", LONG, &filter).await.unwrap().is_none());
        tokio::time::sleep(backoff + Duration::from_millis(100)).await;
    }
    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Failed);
    assert_eq!(
        record.last_error.as_deref(),
        Some("chunk 0 (frames 0-9): boom 2")
    );
    assert_eq!(record.attempts, 3);
    let tasks = q.tasks(&id).await.unwrap();
    assert_eq!((tasks[1].state, tasks[1].attempts), (TaskState::Failed, 3));
    assert_eq!(tasks[1].last_error.as_deref(), Some("boom 2"));
    assert_eq!(tasks[2].state, TaskState::Canceled);
    // The other job is still claimable.
    assert_eq!(claim(&q, "w").await.unwrap().job_id, other);
}

async fn permanent_failure_fails_the_job_at_once(db: &Db) {
    let q = db.open().await;
    let id = submit(&q, job("a")).await;
    plan(&q, &id, 3).await;
    let chunk0 = claim(&q, "w").await.unwrap();
    let chunk1 = claim(&q, "w").await.unwrap();
    assert_eq!(q.complete_chunk(&chunk0).await.unwrap(), LeaseStatus::Held);
    let outcome = q.fail(&chunk1, "not a video", false, LONG).await.unwrap();
    assert_eq!(outcome, FailOutcome::JobFailed);
    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Failed);
    assert_eq!(
        record.last_error.as_deref(),
        Some("chunk 1 (frames 10-19): not a video")
    );
    assert_eq!(record.attempts, 1);
    let states: Vec<TaskState> = q
        .tasks(&id)
        .await
        .unwrap()
        .iter()
        .map(|t| t.state)
        .collect();
    use TaskState::*;
    assert_eq!(states, vec![Done, Done, Failed, Canceled, Canceled]);
    assert!(claim(&q, "w").await.is_none());

    // A plan that fails names the plan.
    let other = submit(&q, job("b")).await;
    let lease = claim(&q, "w").await.unwrap();
    assert_eq!(lease.job_id, other);
    q.fail(&lease, "no video stream", false, LONG)
        .await
        .unwrap();
    let record = q.job(&other).await.unwrap().unwrap();
    assert_eq!(record.last_error.as_deref(), Some("plan: no video stream"));
}

async fn release_counts_nothing(db: &Db) {
    let q = db.open().await;
    let id = submit(&q, job("a")).await;
    let lease = claim(&q, "w1").await.unwrap();
    q.release(&lease).await.unwrap();
    let task = task_of(&q, &lease).await;
    assert_eq!(task.state, TaskState::Pending);
    assert_eq!((task.attempts, task.expiries), (0, 0));
    assert_eq!(task.worker.as_deref(), Some("w1"));
    assert!(task.lease_expires_at_ms.is_none());
    let again = claim(&q, "w2").await.unwrap();
    assert_eq!(
        (again.task_id, again.attempts, again.expiries),
        (lease.task_id, 0, 0)
    );
    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!((record.attempts, record.expiries), (0, 0));
    // Releasing a lease that moved on changes nothing.
    q.release(&lease).await.unwrap();
    assert_eq!(task_of(&q, &again).await.state, TaskState::Leased);
}

async fn expire_worker_ends_its_leases(db: &Db) {
    let q = db.open().await;
    let id = submit(&q, job("a")).await;
    plan(&q, &id, 3).await;
    let dead0 = claim(&q, "dead").await.unwrap();
    let dead1 = claim(&q, "dead").await.unwrap();
    let alive = claim(&q, "alive").await.unwrap();
    assert_eq!(q.expire_worker("dead").await.unwrap(), 2);
    assert_eq!(q.expire_worker("nobody").await.unwrap(), 0);
    for lease in [&dead0, &dead1] {
        let task = task_of(&q, lease).await;
        assert_eq!((task.state, task.expiries), (TaskState::Pending, 1));
        assert_eq!(q.heartbeat(lease, LONG).await.unwrap(), LeaseStatus::Lost);
    }
    assert_eq!(task_of(&q, &alive).await.state, TaskState::Leased);
    let again = claim(&q, "w").await.unwrap();
    assert_eq!((again.task_id, again.expiries), (dead0.task_id, 1));

    // With the budget spent, the job fails.
    let mut new = job("b");
    new.budgets = budgets(3, 1);
    let fragile = submit(&q, new).await;
    let lease = q
        .claim("dead", LONG, &only(&fragile))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(q.expire_worker("dead").await.unwrap(), 1);
    let record = q.job(&fragile).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Failed);
    let error = record.last_error.unwrap();
    assert!(
        error.contains("lease expired 1 times") && error.contains("dead"),
        "{error}"
    );
    assert_eq!(task_of(&q, &lease).await.state, TaskState::Failed);
}

async fn cancel_ends_the_job_and_its_leases(db: &Db) {
    let q = db.open().await;
    let id = submit(&q, job("a")).await;
    plan(&q, &id, 3).await;
    let chunk0 = claim(&q, "w").await.unwrap();
    assert_eq!(q.complete_chunk(&chunk0).await.unwrap(), LeaseStatus::Held);
    let chunk1 = claim(&q, "w").await.unwrap();
    assert!(q.cancel(&id).await.unwrap());
    assert_eq!(q.heartbeat(&chunk1, LONG).await.unwrap(), LeaseStatus::Lost);
    assert_eq!(q.complete_chunk(&chunk1).await.unwrap(), LeaseStatus::Lost);
    assert_eq!(
        q.fail(&chunk1, "x", true, Duration::ZERO).await.unwrap(),
        FailOutcome::LeaseLost
    );
    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Canceled);
    assert!(record.finished_at_ms.is_some());
    let states: Vec<TaskState> = q
        .tasks(&id)
        .await
        .unwrap()
        .iter()
        .map(|t| t.state)
        .collect();
    use TaskState::*;
    assert_eq!(states, vec![Done, Done, Canceled, Canceled, Canceled]);
    assert!(claim(&q, "w").await.is_none());
    assert!(!q.cancel(&id).await.unwrap());
    assert!(matches!(
        q.cancel("no-such-job").await,
        Err(QueueError::NoSuchJob(_))
    ));
    // A queued job cancels too.
    let queued = submit(&q, job("b")).await;
    assert!(q.cancel(&queued).await.unwrap());
    assert!(claim(&q, "w").await.is_none());
}

async fn retry_keeps_the_plan_and_rescores_every_chunk(db: &Db) {
    let q = db.open().await;
    let mut new = job("a");
    new.budgets = budgets(2, 10);
    let id = submit(&q, new.clone()).await;
    plan(&q, &id, 3).await;
    let chunk0 = claim(&q, "w").await.unwrap();
    q.complete_chunk(&chunk0).await.unwrap();
    let chunk1 = claim(&q, "w").await.unwrap();
    q.fail(&chunk1, "retry me", true, Duration::ZERO)
        .await
        .unwrap();
    let chunk1 = claim(&q, "w").await.unwrap();
    assert_eq!((chunk1.chunk, chunk1.attempts), (1, 1));
    assert_eq!(
        q.fail(&chunk1, "gpu fell off", true, Duration::ZERO)
            .await
            .unwrap(),
        FailOutcome::JobFailed
    );
    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Failed);
    assert!(q.retry(&id).await.unwrap());
    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Queued);
    assert!(record.finished_at_ms.is_none());
    assert_eq!((record.chunks_done, record.attempts), (0, 0));
    let shape: Vec<(TaskState, u32)> = q
        .tasks(&id)
        .await
        .unwrap()
        .iter()
        .map(|t| (t.state, t.attempts))
        .collect();
    use TaskState::*;
    assert_eq!(
        shape,
        vec![
            (Done, 0),
            (Pending, 0),
            (Pending, 0),
            (Pending, 0),
            (Pending, 0)
        ]
    );
    assert!(!q.retry(&id).await.unwrap(), "a queued job is not retried");
    let again = claim(&q, "w").await.unwrap();
    assert_eq!((again.chunk, again.attempts), (0, 0));
    assert_eq!(q.job(&id).await.unwrap().unwrap().state, JobState::Running);
    assert!(matches!(
        q.retry("no-such-job").await,
        Err(QueueError::NoSuchJob(_))
    ));

    // A failed plan is planned again.
    let unplanned = submit(&q, job("b")).await;
    let lease = q
        .claim("w", LONG, &only(&unplanned))
        .await
        .unwrap()
        .unwrap();
    q.fail(&lease, "probe failed", false, LONG).await.unwrap();
    assert!(q.retry(&unplanned).await.unwrap());
    let lease = q
        .claim("w", LONG, &only(&unplanned))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((lease.kind, lease.attempts), (TaskKind::Plan, 0));

    // Not while another job with its identity is active: that one does the work.
    assert!(q.cancel(&unplanned).await.unwrap());
    let replacement = submit(&q, job("b")).await;
    assert!(!q.retry(&unplanned).await.unwrap());
    assert_eq!(
        q.job(&unplanned).await.unwrap().unwrap().state,
        JobState::Canceled
    );
    assert_eq!(q.active_job("b").await.unwrap().unwrap().id, replacement);
}

async fn claim_filter_limits_jobs(db: &Db) {
    let q = db.open().await;
    let a = submit(&q, job("a")).await;
    let b = submit(&q, job("b")).await;
    let none = ClaimFilter {
        jobs: Some(vec![]),
        ..ClaimFilter::default()
    };
    assert!(q.claim("w", LONG, &none).await.unwrap().is_none());
    assert_eq!(
        q.claim("w", LONG, &only(&b)).await.unwrap().unwrap().job_id,
        b
    );
    assert!(q.claim("w", LONG, &only(&b)).await.unwrap().is_none());
    let both = ClaimFilter {
        jobs: Some(vec![a.clone(), b.clone()]),
        ..ClaimFilter::default()
    };
    assert_eq!(q.claim("w", LONG, &both).await.unwrap().unwrap().job_id, a);
    assert!(q.claim("w", LONG, &both).await.unwrap().is_none());
}

async fn concurrent_claimers_never_share_a_task(db: &Db) {
    let chunk_count = 120;
    let q = db.open().await;
    let id = submit(&q, job("big")).await;
    plan(&q, &id, chunk_count).await;
    // Separate instances, as separate processes would have.
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let q = db.open().await;
        workers.spawn(async move {
            let name = format!("w{w}");
            let mut got = Vec::new();
            while let Some(lease) = q.claim(&name, LONG, &ClaimFilter::default()).await.unwrap() {
                match lease.kind {
                    TaskKind::Score => {
                        assert_eq!(q.complete_chunk(&lease).await.unwrap(), LeaseStatus::Held)
                    }
                    TaskKind::Assemble => {
                        assert_eq!(q.complete_job(&lease).await.unwrap(), LeaseStatus::Held)
                    }
                    TaskKind::Plan => panic!("the plan was done"),
                }
                got.push(lease.task_id);
            }
            got
        });
    }
    let claimed: Vec<i64> = workers.join_all().await.into_iter().flatten().collect();
    let distinct: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(distinct.len(), claimed.len(), "a task was claimed twice");
    let record = q.job(&id).await.unwrap().unwrap();
    // Workers that found nothing while the last chunks were out may have stopped before the
    // assemble task became claimable: finish it here if so.
    if record.state == JobState::Running {
        let lease = claim(&q, "w").await.unwrap();
        assert_eq!(lease.kind, TaskKind::Assemble);
        assert!(!distinct.contains(&lease.task_id));
        q.complete_job(&lease).await.unwrap();
    }
    let record = q.job(&id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Succeeded);
    assert_eq!(record.chunks_done, chunk_count as u32);
    assert!(claimed.len() >= chunk_count as usize);
}

async fn wait_for_work_wakes_on_a_submit_elsewhere(db: &Db) {
    let waiter = db.open().await;
    let submitter = db.open().await;
    assert!(claim(&waiter, "w").await.is_none());
    // Nothing happens: the wait lasts (about) its timeout.
    let start = Instant::now();
    waiter.wait_for_work(Duration::from_millis(200)).await;
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );

    let waiting = tokio::spawn(async move {
        let start = Instant::now();
        waiter.wait_for_work(Duration::from_secs(10)).await;
        let waited = start.elapsed();
        (waiter, waited)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    submit(&submitter, job("a")).await;
    let (waiter, waited) = waiting.await.unwrap();
    // PostgreSQL notifies; SQLite polls every half second.
    assert!(waited < Duration::from_secs(1), "waited {waited:?}");
    assert!(claim(&waiter, "w").await.is_some());

    // Work this process adds wakes it at once, even from the same instance.
    let q = db.open().await;
    assert!(claim(&q, "w").await.is_none());
    submit(&q, job("b")).await;
    let start = Instant::now();
    q.wait_for_work(Duration::from_secs(10)).await;
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );

    // A back-off or a lease that ends makes work too, though nobody announces it.
    let lease = q
        .claim("w", SHORT, &ClaimFilter::default())
        .await
        .unwrap()
        .unwrap();
    assert!(claim(&q, "w").await.is_none());
    let start = Instant::now();
    let again = wait_and_claim(&q).await;
    assert_eq!((again.task_id, again.expiries), (lease.task_id, 1));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let backoff = Duration::from_millis(600);
    let outcome = q.fail(&again, "flaky", true, backoff).await.unwrap();
    assert!(matches!(outcome, FailOutcome::Retrying { .. }));
    let start = Instant::now();
    assert!(claim(&q, "w").await.is_none());
    let again = wait_and_claim(&q).await;
    assert_eq!((again.task_id, again.attempts), (lease.task_id, 1));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

/// Waits for work and claims it, as a worker does, for at most a few seconds.
async fn idempotency_keys_return_the_first_job(db: &Db) {
    let q = db.open().await;
    let mut first = job("a");
    first.idempotency_key = Some("key-1".into());
    let id = submit(&q, first.clone()).await;
    // The same key returns the same job, even for another identity and after it ended.
    let mut again = job("b");
    again.idempotency_key = Some("key-1".into());
    assert_eq!(
        q.submit(again.clone()).await.unwrap(),
        Submitted::Existing(id.clone())
    );
    assert!(q.cancel(&id).await.unwrap());
    assert_eq!(
        q.submit(again).await.unwrap(),
        Submitted::Existing(id.clone())
    );
    // Another key is another job; racing submits of one new key make one job.
    let mut racers = Vec::new();
    for n in 0..8 {
        let q = Arc::clone(&q);
        let mut new = job(&format!("race-{n}"));
        new.idempotency_key = Some("key-2".into());
        racers.push(tokio::spawn(async move { q.submit(new).await.unwrap() }));
    }
    let mut ids = HashSet::new();
    for racer in racers {
        ids.insert(racer.await.unwrap().id().to_string());
    }
    assert_eq!(ids.len(), 1, "one key made several jobs: {ids:?}");
    assert!(!ids.contains(&id));
}

async fn jobs_page_by_submission_order(db: &Db) {
    let q = db.open().await;
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(submit(&q, job(&format!("j{n}"))).await);
    }
    ids.reverse(); // newest first
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = q.jobs_before(&[], 3, before).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        assert!(page.windows(2).all(|w| w[0].seq > w[1].seq));
        before = Some(page.last().unwrap().seq);
        seen.extend(page.into_iter().map(|j| j.id));
    }
    assert_eq!(seen, ids);
    // With a state filter, the cursor still applies.
    assert!(q.cancel(&ids[0]).await.unwrap());
    let queued = q
        .jobs_before(
            &[JobState::Queued],
            10,
            Some(q.job(&ids[2]).await.unwrap().unwrap().seq),
        )
        .await
        .unwrap();
    let queued: Vec<&str> = queued.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(
        queued,
        ids[3..].iter().map(String::as_str).collect::<Vec<_>>()
    );
}

async fn workers_announce_themselves(db: &Db) {
    let q = db.open().await;
    let status = |name: &str, state: &str, current: Option<&str>| fresco_queue::WorkerStatus {
        name: name.into(),
        host: "h1".into(),
        device: "cpu".into(),
        state: state.into(),
        current: current.map(str::to_string),
    };
    q.worker_seen(&status("h1:1:0", "idle", None))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    q.worker_seen(&status("h1:2:0", "busy", Some("score chunk 3 of job x")))
        .await
        .unwrap();
    let workers = q.workers(LONG).await.unwrap();
    let names: Vec<&str> = workers.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["h1:2:0", "h1:1:0"], "most recently seen first");
    assert_eq!(
        workers[0].current.as_deref(),
        Some("score chunk 3 of job x")
    );
    assert_eq!(workers[0].state, "busy");
    let started = workers[1].started_at_ms;
    // An update keeps the start time and moves last_seen on.
    tokio::time::sleep(Duration::from_millis(20)).await;
    q.worker_seen(&status("h1:1:0", "stopped", None))
        .await
        .unwrap();
    let again = q.workers(LONG).await.unwrap();
    let w = again.iter().find(|w| w.name == "h1:1:0").unwrap();
    assert_eq!((w.state.as_str(), w.started_at_ms), ("stopped", started));
    assert!(w.last_seen_ms > started);
    // Silent for longer than the window: not listed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(q
        .workers(Duration::from_millis(100))
        .await
        .unwrap()
        .is_empty());
}

async fn job_logs_read_on_from_a_cursor(db: &Db) {
    let q = db.open().await;
    let id = submit(&q, job("a")).await;
    let other = submit(&q, job("b")).await;
    for n in 0..5 {
        q.log(&id, Some("w1"), &format!("line {n}")).await.unwrap();
    }
    q.log(&other, None, "not this job's").await.unwrap();
    let first = q.job_log(&id, None, 3).await.unwrap();
    let texts: Vec<&str> = first.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(texts, ["line 0", "line 1", "line 2"]);
    assert_eq!(first[0].worker.as_deref(), Some("w1"));
    let rest = q.job_log(&id, Some(first[2].id), 10).await.unwrap();
    let texts: Vec<&str> = rest.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(texts, ["line 3", "line 4"]);
}

async fn task_counts_follow_the_work(db: &Db) {
    use fresco_queue::TaskCounts;
    let q = db.open().await;
    let counts = |pending, leased| TaskCounts { pending, leased };
    assert_eq!(q.task_counts().await.unwrap(), counts(0, 0));
    let id = submit(&q, job("a")).await;
    assert_eq!(
        q.task_counts().await.unwrap(),
        counts(1, 0),
        "the plan waits"
    );
    let lease = claim(&q, "planner").await.unwrap();
    assert_eq!(
        q.task_counts().await.unwrap(),
        counts(0, 1),
        "the plan is held"
    );
    q.complete_plan(&lease, "p", 30, &chunks(3)).await.unwrap();
    // Three chunks wait; the assemble task waits for them and is not work yet.
    assert_eq!(q.task_counts().await.unwrap(), counts(3, 0));
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(claim(&q, "scorer").await.unwrap());
    }
    assert_eq!(q.task_counts().await.unwrap(), counts(0, 3));
    for lease in &held {
        q.complete_chunk(lease).await.unwrap();
    }
    assert_eq!(
        q.task_counts().await.unwrap(),
        counts(1, 0),
        "assembly is work now"
    );
    // A canceled job's tasks are nobody's work.
    let other = submit(&q, job("b")).await;
    assert_eq!(q.task_counts().await.unwrap(), counts(2, 0));
    q.cancel(&other).await.unwrap();
    q.cancel(&id).await.unwrap();
    assert_eq!(q.task_counts().await.unwrap(), counts(0, 0));
}

async fn wait_and_claim(q: &Arc<dyn Queue>) -> fresco_queue::TaskLease {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        q.wait_for_work(Duration::from_secs(10)).await;
        if let Some(lease) = claim(q, "w").await {
            return lease;
        }
    }
    panic!("no work came");
}

macro_rules! backend_tests {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let db = super::Db::sqlite();
                    super::$check(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let Some(db) = super::Db::postgres().await else { return };
                    super::$check(&db).await;
                }
            )*
        }
    };
}

backend_tests!(
    submit_dedupes_by_identity,
    jobs_are_listed_newest_first,
    concurrent_submits_make_one_job,
    claim_order_is_fair_and_priority_wins,
    plan_adds_chunks_and_assemble_waits_for_them,
    heartbeat_extends_and_a_lost_lease_is_fenced,
    spent_expiry_budget_fails_the_job,
    retryable_failure_backs_off_then_fails_the_job,
    permanent_failure_fails_the_job_at_once,
    release_counts_nothing,
    expire_worker_ends_its_leases,
    cancel_ends_the_job_and_its_leases,
    retry_keeps_the_plan_and_rescores_every_chunk,
    claim_filter_limits_jobs,
    concurrent_claimers_never_share_a_task,
    wait_for_work_wakes_on_a_submit_elsewhere,
    idempotency_keys_return_the_first_job,
    jobs_page_by_submission_order,
    workers_announce_themselves,
    job_logs_read_on_from_a_cursor,
    task_counts_follow_the_work,
    items_are_pinned_by_the_plan_and_counted,
);
