//! The dataset trigger (`fresco serve --dataset-watch`): images under a watched folder are
//! collected, and at the count or the interval exactly those become one dataset job whose
//! manifest lists them; a restart, a second server and a crash between cutting a batch and
//! queueing its job make no second job and lose no image; outputs, hidden files, non-images
//! and names a manifest cannot hold are not collected; storage events feed the same trigger.
//! The queue's own part runs on SQLite and PostgreSQL in `fresco-queue`'s `tests/batches.rs`;
//! here a SQLite queue, and a factory that makes the job without a model.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use fresco_core::RetryBudgets;
use fresco_queue::{NewJob, Queue};
use fresco_server::dataset_watch::{
    DatasetWatch, DatasetWatchConfig, DatasetWatchError, Listing, RecordsFormat,
};
use fresco_server::{JobFactory, Rejection, SubmitRequest};
use serde_json::json;

/// Makes a manifest job as the server's factory would, without a model: its input is the
/// manifest, and a model named `refused.onnx` is refused as an unusable model is.
struct ManifestFactory;

#[async_trait]
impl JobFactory for ManifestFactory {
    async fn build(&self, request: &SubmitRequest) -> Result<NewJob, Rejection> {
        Err(Rejection::Internal(format!(
            "not a manifest: {}",
            request.input
        )))
    }

    async fn build_manifest(&self, request: &SubmitRequest) -> Result<NewJob, Rejection> {
        assert!(request.dataset.is_some(), "a manifest job is a dataset job");
        if request
            .model
            .as_deref()
            .is_some_and(|m| m.ends_with("refused.onnx"))
        {
            return Err(Rejection::Unusable {
                code: "model-unusable",
                message: "refused.onnx: not a scoring model".into(),
            });
        }
        Ok(NewJob {
            identity: request.input.clone(),
            input: request.input.clone(),
            output: request.output.clone(),
            spec: json!({
                "task": request.scoring.as_ref().and_then(|s| s.task.clone()),
                "max_failed_items": request.dataset.as_ref().and_then(|d| d.max_failed_items),
                "max_failed_fraction": request.dataset.as_ref().and_then(|d| d.max_failed_fraction),
            })
            .to_string(),
            device_kind: fresco_core::DeviceKind::Cpu,
            priority: 0,
            budgets: RetryBudgets::default(),
            idempotency_key: None,
        })
    }
}

struct Setup {
    app: TestApp,
    watch: PathBuf,
    output: PathBuf,
}

async fn setup() -> Setup {
    let app = app_with(Arc::new(ManifestFactory)).await;
    let watch = app.dir().join("incoming");
    let output = app.dir().join("records");
    std::fs::create_dir_all(&watch).unwrap();
    Setup { app, watch, output }
}

fn config(watch: &Path, output: &Path, count: u64, interval: Duration) -> DatasetWatchConfig {
    DatasetWatchConfig {
        watch: watch.display().to_string(),
        output: output.display().to_string(),
        model: "/models/classifier.onnx".into(),
        task: Some("classify".into()),
        format: RecordsFormat::Jsonl,
        interval,
        count,
        poll: Duration::from_secs(1),
        max_failed_items: None,
        max_failed_fraction: None,
    }
}

fn trigger(s: &Setup, count: u64, interval: Duration) -> DatasetWatch {
    DatasetWatch::new(
        config(&s.watch, &s.output, count, interval),
        Arc::clone(&s.app.queue),
        Arc::new(ManifestFactory),
    )
    .unwrap()
}

fn write(dir: &Path, name: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("bytes of {name}")).unwrap();
}

/// Two listings: the first sees the files, the second finds them unchanged and collects them.
async fn settle(watch: &DatasetWatch, listing: &mut Listing) -> u64 {
    watch.poll(listing).await.unwrap() + watch.poll(listing).await.unwrap()
}

/// The lines of a job's manifest (its input).
fn manifest_of(job: &fresco_queue::JobRecord) -> Vec<String> {
    std::fs::read_to_string(&job.input)
        .unwrap_or_else(|e| panic!("{}: {e}", job.input))
        .lines()
        .map(str::to_string)
        .collect()
}

async fn jobs(queue: &Arc<dyn Queue>) -> Vec<fresco_queue::JobRecord> {
    let mut jobs = queue.jobs(&[], 100).await.unwrap();
    jobs.reverse(); // oldest first
    jobs
}

#[tokio::test]
async fn the_count_makes_one_job_of_exactly_the_first_images() {
    let s = setup().await;
    let watch = trigger(&s, 3, Duration::from_secs(3600));
    let mut listing = Listing::default();
    // Odd names an object store or a folder may hold, and things that are not ours.
    for name in ["a.jpg", "b c#%1.png", "ünï/çödé.JPEG", "d.webp", "e.jpg"] {
        write(&s.watch, name);
    }
    write(&s.watch, "notes.txt");
    write(&s.watch, "clip.mp4");
    write(&s.watch, ".upload-in-progress.jpg");
    write(&s.watch, ".partial/x.jpg");
    // A name with a line break would list another file in the manifest: never collected.
    write(&s.watch, "0 evil\n/etc/passwd.jpg");
    std::fs::write(s.watch.join("empty.jpg"), b"").unwrap();

    assert_eq!(watch.poll(&mut listing).await.unwrap(), 0, "first sighting");
    assert_eq!(watch.poll(&mut listing).await.unwrap(), 5);
    let made = watch.cut_due().await.unwrap();
    assert_eq!(made.len(), 1, "{made:?}");
    let all = jobs(&s.app.queue).await;
    assert_eq!(all.len(), 1);
    let job = &all[0];
    let lines = manifest_of(job);
    let root = s.watch.canonicalize().unwrap();
    // Collected together, so in key order: the first three.
    let expected: Vec<String> = ["a.jpg", "b c#%1.png", "d.webp"]
        .iter()
        .map(|k| root.join(k).display().to_string())
        .collect();
    assert_eq!(lines, expected);
    let batch = s.app.queue.batches(&watch.trigger()).await.unwrap()[0].clone();
    let (records, manifest) = watch.outputs_for(batch.id);
    assert_eq!(job.output, records);
    assert_eq!(job.input, manifest);
    assert!(
        records.ends_with(&format!("batch-{:06}.jsonl", batch.id)),
        "{records}"
    );
    assert!(job.spec.contains("classify"), "{}", job.spec);
    let keyed = s
        .app
        .queue
        .job_by_idempotency_key(&format!("dataset-watch:{}:{}", watch.trigger(), batch.id))
        .await
        .unwrap()
        .expect("the job carries the batch's key");
    assert_eq!(keyed.id, job.id);

    // Two wait, fewer than the count and younger than the interval: no job yet.
    assert!(watch.cut_due().await.unwrap().is_empty());
    assert_eq!(
        s.app.queue.waiting_objects(&watch.trigger()).await.unwrap(),
        2
    );
    // One more reaches the count again.
    write(&s.watch, "f.png");
    assert_eq!(settle(&watch, &mut listing).await, 1);
    assert_eq!(watch.cut_due().await.unwrap().len(), 1);
    let all = jobs(&s.app.queue).await;
    assert_eq!(all.len(), 2);
    let second = manifest_of(&all[1]);
    let expected: Vec<String> = ["e.jpg", "ünï/çödé.JPEG", "f.png"]
        .iter()
        .map(|k| root.join(k).display().to_string())
        .collect();
    assert_eq!(second, expected);
}

/// The trigger's failure thresholds go into each job it makes; without them a job has the
/// default of every dataset job (none given here).
#[tokio::test]
async fn the_failure_thresholds_go_into_every_job() {
    let s = setup().await;
    let mut given = config(&s.watch, &s.output, 2, Duration::from_secs(3600));
    given.max_failed_items = Some(7);
    given.max_failed_fraction = Some(0.25);
    let watch =
        DatasetWatch::new(given, Arc::clone(&s.app.queue), Arc::new(ManifestFactory)).unwrap();
    let mut listing = Listing::default();
    write(&s.watch, "a.jpg");
    write(&s.watch, "b.jpg");
    assert_eq!(settle(&watch, &mut listing).await, 2);
    assert_eq!(watch.cut_due().await.unwrap().len(), 1);
    let all = jobs(&s.app.queue).await;
    let spec: serde_json::Value = serde_json::from_str(&all[0].spec).unwrap();
    assert_eq!(spec["max_failed_items"], 7, "{spec}");
    assert_eq!(spec["max_failed_fraction"], 0.25, "{spec}");

    let other = tempfile::tempdir().unwrap();
    let plain = DatasetWatch::new(
        config(
            &other.path().join("in"),
            &other.path().join("out"),
            1,
            Duration::from_secs(3600),
        ),
        Arc::clone(&s.app.queue),
        Arc::new(ManifestFactory),
    )
    .unwrap();
    write(&other.path().join("in"), "c.jpg");
    let mut listing = Listing::default();
    assert_eq!(settle(&plain, &mut listing).await, 1);
    assert_eq!(plain.cut_due().await.unwrap().len(), 1);
    let all = jobs(&s.app.queue).await;
    let spec: serde_json::Value = serde_json::from_str(&all[1].spec).unwrap();
    assert!(spec["max_failed_items"].is_null(), "{spec}");
    assert!(spec["max_failed_fraction"].is_null(), "{spec}");
}

/// A flood: the count caps each job, the rest waits in the queue's database.
#[tokio::test]
async fn a_flood_is_cut_into_jobs_of_the_count() {
    let s = setup().await;
    let watch = trigger(&s, 1000, Duration::from_secs(3600));
    let mut listing = Listing::default();
    for n in 0..2500 {
        write(&s.watch, &format!("burst/{n:05}.jpg"));
    }
    assert_eq!(settle(&watch, &mut listing).await, 2500);
    let made = watch.cut_due().await.unwrap();
    assert_eq!(made.len(), 2, "two full batches, the rest waits");
    let all = jobs(&s.app.queue).await;
    let sizes: Vec<usize> = all.iter().map(|job| manifest_of(job).len()).collect();
    assert_eq!(sizes, [1000, 1000]);
    let mut lines: Vec<String> = all.iter().flat_map(manifest_of).collect();
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), 2000, "no image in two jobs");
    assert_eq!(
        s.app.queue.waiting_objects(&watch.trigger()).await.unwrap(),
        500
    );
}

#[tokio::test]
async fn the_interval_makes_a_job_of_fewer() {
    let s = setup().await;
    let watch = trigger(&s, 100, Duration::from_secs(1));
    let mut listing = Listing::default();
    write(&s.watch, "a.jpg");
    write(&s.watch, "b.jpg");
    assert_eq!(settle(&watch, &mut listing).await, 2);
    assert!(watch.cut_due().await.unwrap().is_empty(), "not due yet");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(watch.cut_due().await.unwrap().len(), 1);
    let all = jobs(&s.app.queue).await;
    assert_eq!(manifest_of(&all[0]).len(), 2);
    // Nothing waits: no empty job follows.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(watch.cut_due().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_restart_or_a_second_server_collects_nothing_twice() {
    let s = setup().await;
    let first = trigger(&s, 2, Duration::from_secs(3600));
    let mut listing = Listing::default();
    for name in ["a.jpg", "b.jpg", "c.jpg"] {
        write(&s.watch, name);
    }
    settle(&first, &mut listing).await;
    assert_eq!(first.cut_due().await.unwrap().len(), 1);

    // A second server, or this one restarted with its memory gone, over the same queue.
    let second = trigger(&s, 2, Duration::from_secs(3600));
    let mut fresh = Listing::default();
    assert_eq!(
        settle(&second, &mut fresh).await,
        0,
        "all were collected already"
    );
    assert!(second.cut_due().await.unwrap().is_empty());
    assert_eq!(jobs(&s.app.queue).await.len(), 1);
    // A rewritten image is new content: collected again.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(s.watch.join("a.jpg"), b"rewritten, longer than before").unwrap();
    assert_eq!(settle(&second, &mut fresh).await, 1);
    assert_eq!(second.cut_due().await.unwrap().len(), 1);
    let all = jobs(&s.app.queue).await;
    assert_eq!(all.len(), 2);
    let mut lines: Vec<String> = all.iter().flat_map(manifest_of).collect();
    lines.sort();
    let root = s.watch.canonicalize().unwrap();
    let name = |k: &str| root.join(k).display().to_string();
    assert_eq!(
        lines,
        [name("a.jpg"), name("a.jpg"), name("b.jpg"), name("c.jpg")]
    );
}

#[tokio::test]
async fn a_crash_after_the_cut_or_after_the_submission_makes_one_job() {
    let s = setup().await;
    let watch = trigger(&s, 2, Duration::from_secs(3600));
    let mut listing = Listing::default();
    for name in ["a.jpg", "b.jpg", "c.jpg", "d.jpg"] {
        write(&s.watch, name);
    }
    settle(&watch, &mut listing).await;
    let q = &s.app.queue;
    let now = fresco_queue::now_ms();
    // A server cut a batch and died before it queued the job.
    let orphan = q
        .cut_batch(&watch.trigger(), 2, now, Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    // Another cut one, queued its job and died before it recorded it.
    let half_done = q
        .cut_batch(&watch.trigger(), 2, now, Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    let earlier = q
        .submit(NewJob {
            identity: "made-before-the-crash".into(),
            input: "/x".into(),
            output: "/y.jsonl".into(),
            spec: "{}".into(),
            device_kind: fresco_core::DeviceKind::Cpu,
            priority: 0,
            budgets: RetryBudgets::default(),
            idempotency_key: Some(format!(
                "dataset-watch:{}:{}",
                watch.trigger(),
                half_done.id
            )),
        })
        .await
        .unwrap();
    // Held: nobody takes them over yet, and no image waits.
    assert!(watch.cut_due().await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let made = watch.cut_due().await.unwrap();
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(
        made.contains(&earlier.id().to_string()),
        "found, not made again"
    );
    assert_eq!(jobs(q).await.len(), 2);
    let batches = q.batches(&watch.trigger()).await.unwrap();
    assert!(batches.iter().all(|b| b.job_id.is_some()), "{batches:?}");
    let orphaned = batches.iter().find(|b| b.id == orphan.id).unwrap();
    assert_ne!(orphaned.job_id.as_deref(), Some(earlier.id()));
    assert!(watch.cut_due().await.unwrap().is_empty());
}

#[tokio::test]
async fn outputs_inside_the_watched_folder_are_never_collected() {
    let s = setup().await;
    let output = s.watch.join("records");
    let watch = DatasetWatch::new(
        config(&s.watch, &output, 1, Duration::from_secs(3600)),
        Arc::clone(&s.app.queue),
        Arc::new(ManifestFactory),
    )
    .unwrap();
    let mut listing = Listing::default();
    write(&s.watch, "a.jpg");
    settle(&watch, &mut listing).await;
    assert_eq!(watch.cut_due().await.unwrap().len(), 1);
    // The job's manifest is there; its records, and images a job might write beside them.
    let (records, manifest) = watch.outputs_for(1);
    assert!(Path::new(&manifest).is_file(), "{manifest}");
    std::fs::write(&records, b"{}\n").unwrap();
    write(&output, "preview.jpg");
    write(&output, "nested/mask.png");
    assert_eq!(settle(&watch, &mut listing).await, 0);
    assert!(watch.cut_due().await.unwrap().is_empty());
    assert_eq!(jobs(&s.app.queue).await.len(), 1);
}

#[tokio::test]
async fn a_refused_batch_is_recorded_and_not_retried() {
    let s = setup().await;
    let mut bad = config(&s.watch, &s.output, 1, Duration::from_secs(3600));
    bad.model = "/models/refused.onnx".into();
    let watch =
        DatasetWatch::new(bad, Arc::clone(&s.app.queue), Arc::new(ManifestFactory)).unwrap();
    let mut listing = Listing::default();
    write(&s.watch, "a.jpg");
    settle(&watch, &mut listing).await;
    assert!(watch.cut_due().await.unwrap().is_empty());
    let batches = s.app.queue.batches(&watch.trigger()).await.unwrap();
    assert_eq!(batches.len(), 1);
    assert!(
        batches[0]
            .error
            .as_deref()
            .unwrap()
            .contains("not a scoring model"),
        "{batches:?}"
    );
    assert!(watch.cut_due().await.unwrap().is_empty());
    assert!(jobs(&s.app.queue).await.is_empty());
}

#[tokio::test]
async fn bad_settings_are_refused_with_what_to_give() {
    let s = setup().await;
    let make = |c: DatasetWatchConfig| {
        DatasetWatch::new(c, Arc::clone(&s.app.queue), Arc::new(ManifestFactory))
            .err()
            .map(|e| e.to_string())
    };
    let base = || config(&s.watch, &s.output, 10, Duration::from_secs(60));
    let mut c = base();
    c.interval = Duration::ZERO;
    assert_eq!(
        make(c).unwrap(),
        "--dataset-interval 0 s: give 1 s to 604800 s (a week)"
    );
    let mut c = base();
    c.interval = Duration::from_secs(604_801);
    assert!(make(c).unwrap().contains("--dataset-interval 604801"));
    for count in [0, fresco_queue::MAX_BATCH_OBJECTS + 1] {
        let mut c = base();
        c.count = count;
        assert_eq!(
            make(c).unwrap(),
            format!("--dataset-count {count}: give 1 to 100000 images a job")
        );
    }
    for fraction in [1.5, -0.1, f64::NAN] {
        let mut c = base();
        c.max_failed_fraction = Some(fraction);
        assert_eq!(
            make(c).unwrap(),
            format!("--dataset-max-failed-fraction {fraction}: give a share from 0 to 1")
        );
    }
    let mut c = base();
    c.task = Some("segment".into());
    assert!(make(c).unwrap().contains("--dataset-task segment"));
    let mut c = base();
    c.output = c.watch.clone();
    assert!(make(c).unwrap().contains("is the watched location"));
    let mut c = base();
    c.watch = "ftp://nowhere/x".into();
    assert!(make(c)
        .unwrap()
        .starts_with("--dataset-watch ftp://nowhere/x"));
    assert!(matches!(
        DatasetWatch::new(
            {
                let mut c = base();
                c.count = 0;
                c
            },
            Arc::clone(&s.app.queue),
            Arc::new(ManifestFactory)
        ),
        Err(DatasetWatchError::Count(0))
    ));
}

const EVENT_SECRET: &str = "event-secret-for-tests";

fn blob_created(path: &str, etag: &str) -> serde_json::Value {
    json!([{
        "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
        "subject": format!("/blobServices/default/containers/photos/blobs/{path}"),
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "eventTime": "2026-11-28T12:00:00Z",
        "data": { "api": "PutBlockList", "eTag": etag, "contentType": "image/jpeg",
                  "contentLength": 1024, "blobType": "BlockBlob",
                  "url": format!("https://acct.blob.core.windows.net/photos/{path}") },
        "dataVersion": "", "metadataVersion": "1"
    }])
}

#[tokio::test]
async fn storage_events_collect_images_under_the_prefix_once() {
    let mut app = app_with(Arc::new(ManifestFactory)).await;
    app.state.auth.event_secret = Some(fresco_server::auth::Secret::new(EVENT_SECRET));
    // Opening an Azure store sends nothing, but needs an account: Azurite's well-known one.
    std::env::set_var("AZURE_STORAGE_USE_EMULATOR", "true");
    let mut c = config(
        Path::new("/unused"),
        Path::new("/unused"),
        100,
        Duration::from_secs(60),
    );
    c.watch = "az://photos/in".into();
    c.output = "az://photos/records".into();
    let watch =
        Arc::new(DatasetWatch::new(c, Arc::clone(&app.queue), Arc::new(ManifestFactory)).unwrap());
    app.state.dataset_watch = Some(Arc::clone(&watch));
    let post = |body: serde_json::Value| {
        let request = axum::http::Request::post("/v1/events/azure")
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .header(fresco_server::auth::EVENT_SECRET_HEADER, EVENT_SECRET)
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        send(&app.state, request)
    };
    let reply = post(blob_created("in/cam/1.jpg", "\"0x1\"")).await;
    assert_eq!(
        reply.status,
        axum::http::StatusCode::ACCEPTED,
        "{}",
        reply.text
    );
    assert_eq!(
        reply.body["objects"][0]["collected"], true,
        "{}",
        reply.text
    );
    assert!(reply.body["objects"][0]["job"].is_null());
    // Redelivered: still collected, once.
    let again = post(blob_created("in/cam/1.jpg", "\"0x1\"")).await;
    assert_eq!(again.body["objects"][0]["collected"], true);
    assert_eq!(
        app.queue.waiting_objects(&watch.trigger()).await.unwrap(),
        1
    );
    // Not ours: a video under the prefix, an image elsewhere, a hidden upload. With no video
    // trigger, each says why nothing was made.
    for path in ["in/clip.mp4", "other/2.jpg", "in/.partial.jpg"] {
        let reply = post(blob_created(path, "\"0x2\"")).await;
        assert_eq!(
            reply.status,
            axum::http::StatusCode::ACCEPTED,
            "{}",
            reply.text
        );
        let outcome = &reply.body["objects"][0];
        assert_eq!(outcome["collected"], false, "{path}: {outcome}");
        assert!(
            outcome["error"]
                .as_str()
                .unwrap()
                .contains("no trigger takes it"),
            "{path}: {outcome}"
        );
    }
    assert_eq!(
        app.queue.waiting_objects(&watch.trigger()).await.unwrap(),
        1
    );
}
