//! The KEDA objects of deploy/kubernetes/keda.yaml, checked where no schema can check them:
//! - their fields, by hand against KEDA's own types (KEDA's CRD schema is in no package
//!   registry, so the offline validator of scripts/validate-manifests.sh skips them);
//! - their PostgreSQL queries, read from the file and run on a database migrated by the queue
//!   itself, with tasks in every state: each counts the tasks that need a worker of its kind
//!   (what a claim could take now, plus what is in flight), and a claim takes exactly the counted
//!   tasks that are not in flight.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fresco_core::TaskKind;
use fresco_queue::{ClaimFilter, FailOutcome, LeaseStatus, NewJob, Queue};
use sqlx::Connection as _;
use support::{claim, only, plan, submit, Db, LONG};
use yaml_rust2::{Yaml, YamlLoader};

/// The Deployments the two ScaledObjects scale, by the device their jobs were submitted for.
const CPU_WORKERS: &str = "fresco-worker-cpu";
const GPU_WORKERS: &str = "fresco-worker-gpu";

fn manifest_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/kubernetes")
        .join(name)
}

/// The YAML documents of `deploy/kubernetes/NAME`.
fn manifest(name: &str) -> Vec<Yaml> {
    let path = manifest_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// The documents of a manifest of one kind, by name.
fn by_kind<'a>(docs: &'a [Yaml], kind: &str) -> BTreeMap<String, &'a Yaml> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .map(|d| (d["metadata"]["name"].as_str().unwrap_or("").to_string(), d))
        .collect()
}

/// The keys of a mapping (empty for anything else).
fn keys(value: &Yaml) -> Vec<String> {
    value
        .as_hash()
        .map(|h| {
            h.keys()
                .map(|k| k.as_str().map(str::to_string).unwrap_or(format!("{k:?}")))
                .collect()
        })
        .unwrap_or_default()
}

/// Records, in `errors`, every key of `value` that is not in `known`.
fn only_known(errors: &mut Vec<String>, at: &str, value: &Yaml, known: &[&str]) {
    for key in keys(value) {
        if !known.contains(&key.as_str()) {
            errors.push(format!(
                "{at}: unknown field {key:?} (KEDA knows {known:?})"
            ));
        }
    }
}

/// The query of each ScaledObject's postgresql trigger, by the Deployment it scales.
fn keda_queries() -> BTreeMap<String, String> {
    let docs = manifest("keda.yaml");
    by_kind(&docs, "ScaledObject")
        .values()
        .map(|so| {
            let target = so["spec"]["scaleTargetRef"]["name"]
                .as_str()
                .expect("scaleTargetRef.name")
                .to_string();
            let query = so["spec"]["triggers"][0]["metadata"]["query"]
                .as_str()
                .expect("a postgresql trigger with a query")
                .to_string();
            (target, query)
        })
        .collect()
}

// Fields of KEDA's v1alpha1 types (apis/keda/v1alpha1 in KEDA's repository) and of the
// postgresql scaler's metadata, as of KEDA 2.x.
const SCALED_OBJECT_SPEC: &[&str] = &[
    "scaleTargetRef",
    "pollingInterval",
    "initialCooldownPeriod",
    "cooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "advanced",
    "triggers",
    "fallback",
];
const SCALE_TARGET: &[&str] = &["name", "apiVersion", "kind", "envSourceContainerName"];
const ADVANCED: &[&str] = &[
    "horizontalPodAutoscalerConfig",
    "restoreToOriginalReplicaCount",
    "scalingModifiers",
];
const HPA_CONFIG: &[&str] = &["behavior", "name"];
const HPA_BEHAVIOR: &[&str] = &["scaleUp", "scaleDown"];
const HPA_RULES: &[&str] = &[
    "stabilizationWindowSeconds",
    "selectPolicy",
    "policies",
    "tolerance",
];
const HPA_POLICY: &[&str] = &["type", "value", "periodSeconds"];
const TRIGGER: &[&str] = &[
    "type",
    "name",
    "useCachedMetrics",
    "metadata",
    "authenticationRef",
    "metricType",
];
const POSTGRES_METADATA: &[&str] = &[
    "query",
    "targetQueryValue",
    "activationTargetQueryValue",
    "connectionFromEnv",
    "host",
    "port",
    "userName",
    "passwordFromEnv",
    "dbName",
    "sslmode",
];
const AUTH_REF: &[&str] = &["name", "kind"];
const TRIGGER_AUTH_SPEC: &[&str] = &[
    "secretTargetRef",
    "env",
    "configMapTargetRef",
    "podIdentity",
    "hashiCorpVault",
    "azureKeyVault",
    "awsSecretManager",
    "gcpSecretManager",
    "boundServiceAccountToken",
];
const SECRET_TARGET_REF: &[&str] = &["parameter", "name", "key"];
/// What the postgresql scaler reads from a TriggerAuthentication.
const POSTGRES_AUTH_PARAMS: &[&str] = &[
    "connection",
    "password",
    "host",
    "port",
    "userName",
    "dbName",
    "sslmode",
];

fn check_trigger_authentication(
    errors: &mut Vec<String>,
    name: &str,
    doc: &Yaml,
    secrets: &BTreeMap<String, BTreeSet<String>>,
) {
    let at = format!("keda.yaml TriggerAuthentication {name}");
    only_known(
        errors,
        &format!("{at} spec"),
        &doc["spec"],
        TRIGGER_AUTH_SPEC,
    );
    let Some(refs) = doc["spec"]["secretTargetRef"].as_vec() else {
        errors.push(format!("{at}: spec.secretTargetRef is not a list"));
        return;
    };
    for (i, r) in refs.iter().enumerate() {
        let at = format!("{at} secretTargetRef[{i}]");
        only_known(errors, &at, r, SECRET_TARGET_REF);
        let field = |f: &str| r[f].as_str().unwrap_or("");
        if !POSTGRES_AUTH_PARAMS.contains(&field("parameter")) {
            errors.push(format!(
                "{at}: parameter {:?} is not one the postgresql scaler reads {POSTGRES_AUTH_PARAMS:?}",
                field("parameter")
            ));
        }
        match secrets.get(field("name")) {
            None => errors.push(format!(
                "{at}: no Secret {:?} in config.yaml",
                field("name")
            )),
            Some(keys) if !keys.contains(field("key")) => errors.push(format!(
                "{at}: Secret {:?} has no key {:?}",
                field("name"),
                field("key")
            )),
            Some(_) => {}
        }
    }
}

fn check_scaled_object(
    errors: &mut Vec<String>,
    name: &str,
    doc: &Yaml,
    deployments: &BTreeMap<String, &Yaml>,
    authentications: &BTreeMap<String, &Yaml>,
) {
    let at = format!("keda.yaml ScaledObject {name}");
    let spec = &doc["spec"];
    only_known(errors, &format!("{at} spec"), spec, SCALED_OBJECT_SPEC);
    only_known(
        errors,
        &format!("{at} scaleTargetRef"),
        &spec["scaleTargetRef"],
        SCALE_TARGET,
    );
    let target = spec["scaleTargetRef"]["name"].as_str().unwrap_or("");
    if !deployments.contains_key(target) {
        errors.push(format!(
            "{at}: scaleTargetRef.name {target:?} is no Deployment of workers.yaml"
        ));
    }
    if spec["minReplicaCount"].as_i64() != Some(0) {
        errors.push(format!("{at}: minReplicaCount must be 0 (scale to zero)"));
    }
    let max = spec["maxReplicaCount"].as_i64().unwrap_or(0);
    if max < 1 {
        errors.push(format!(
            "{at}: maxReplicaCount must be an integer of at least 1"
        ));
    }
    for field in ["pollingInterval", "cooldownPeriod"] {
        if !spec[field].is_badvalue() && spec[field].as_i64().is_none_or(|n| n < 1) {
            errors.push(format!("{at}: {field} must be a positive integer"));
        }
    }
    let advanced = &spec["advanced"];
    only_known(errors, &format!("{at} advanced"), advanced, ADVANCED);
    let hpa = &advanced["horizontalPodAutoscalerConfig"];
    only_known(
        errors,
        &format!("{at} horizontalPodAutoscalerConfig"),
        hpa,
        HPA_CONFIG,
    );
    only_known(
        errors,
        &format!("{at} behavior"),
        &hpa["behavior"],
        HPA_BEHAVIOR,
    );
    for direction in ["scaleUp", "scaleDown"] {
        let rules = &hpa["behavior"][direction];
        only_known(errors, &format!("{at} {direction}"), rules, HPA_RULES);
        for policy in rules["policies"].as_vec().into_iter().flatten() {
            only_known(
                errors,
                &format!("{at} {direction} policy"),
                policy,
                HPA_POLICY,
            );
            if !matches!(policy["type"].as_str(), Some("Pods" | "Percent")) {
                errors.push(format!(
                    "{at}: {direction} policy type must be Pods or Percent"
                ));
            }
            if policy["value"].as_i64().is_none() || policy["periodSeconds"].as_i64().is_none() {
                errors.push(format!(
                    "{at}: {direction} policy needs integer value and periodSeconds"
                ));
            }
        }
    }
    let Some(triggers) = spec["triggers"].as_vec().filter(|t| !t.is_empty()) else {
        errors.push(format!("{at}: spec.triggers must be a non-empty list"));
        return;
    };
    for (i, trigger) in triggers.iter().enumerate() {
        let at = format!("{at} triggers[{i}]");
        only_known(errors, &at, trigger, TRIGGER);
        if trigger["type"].as_str() != Some("postgresql") {
            errors.push(format!("{at}: type must be postgresql"));
        }
        let metadata = &trigger["metadata"];
        only_known(
            errors,
            &format!("{at} metadata"),
            metadata,
            POSTGRES_METADATA,
        );
        // KEDA's metadata is a map of strings: a bare number is refused by the CRD.
        for (key, value) in metadata.as_hash().into_iter().flatten() {
            if value.as_str().is_none() {
                errors.push(format!(
                    "{at} metadata.{}: must be a string (quote it)",
                    key.as_str().unwrap_or("?")
                ));
            }
        }
        if metadata["query"]
            .as_str()
            .is_none_or(|q| q.trim().is_empty())
        {
            errors.push(format!("{at}: metadata.query is missing"));
        }
        let number = |f: &str| metadata[f].as_str().and_then(|v| v.parse::<f64>().ok());
        if number("targetQueryValue").is_none_or(|v| v <= 0.0) {
            errors.push(format!(
                "{at}: metadata.targetQueryValue must be a number above 0"
            ));
        }
        if number("activationTargetQueryValue").is_some_and(|v| v < 0.0) {
            errors.push(format!(
                "{at}: metadata.activationTargetQueryValue must not be negative"
            ));
        }
        only_known(
            errors,
            &format!("{at} authenticationRef"),
            &trigger["authenticationRef"],
            AUTH_REF,
        );
        let auth = trigger["authenticationRef"]["name"].as_str().unwrap_or("");
        if !authentications.contains_key(auth) {
            errors.push(format!(
                "{at}: authenticationRef.name {auth:?} is no TriggerAuthentication of keda.yaml"
            ));
        }
    }
}

#[test]
fn keda_objects_carry_the_fields_keda_reads() {
    let keda = manifest("keda.yaml");
    let workers = manifest("workers.yaml");
    let config = manifest("config.yaml");
    let deployments = by_kind(&workers, "Deployment");
    let authentications = by_kind(&keda, "TriggerAuthentication");
    let scaled = by_kind(&keda, "ScaledObject");
    let secrets: BTreeMap<String, BTreeSet<String>> = by_kind(&config, "Secret")
        .into_iter()
        .map(|(name, doc)| {
            let mut keys: BTreeSet<String> = keys(&doc["stringData"]).into_iter().collect();
            keys.extend(self::keys(&doc["data"]));
            (name, keys)
        })
        .collect();

    let mut errors = Vec::new();
    for (i, doc) in keda.iter().enumerate() {
        if doc["apiVersion"].as_str() != Some("keda.sh/v1alpha1") {
            errors.push(format!(
                "keda.yaml document {i}: apiVersion must be keda.sh/v1alpha1"
            ));
        }
        if !matches!(
            doc["kind"].as_str(),
            Some("ScaledObject" | "TriggerAuthentication")
        ) {
            errors.push(format!(
                "keda.yaml document {i}: unexpected kind {:?}",
                doc["kind"]
            ));
        }
        if doc["metadata"]["namespace"].as_str() != Some("fresco") {
            errors.push(format!("keda.yaml document {i}: namespace must be fresco"));
        }
    }
    for (name, doc) in &authentications {
        check_trigger_authentication(&mut errors, name, doc, &secrets);
    }
    for (name, doc) in &scaled {
        check_scaled_object(&mut errors, name, doc, &deployments, &authentications);
    }
    // Every worker Deployment is scaled by exactly one ScaledObject, and starts at 0 replicas.
    for (name, deployment) in &deployments {
        let scalers = scaled
            .values()
            .filter(|so| so["spec"]["scaleTargetRef"]["name"].as_str() == Some(name.as_str()))
            .count();
        if scalers != 1 {
            errors.push(format!(
                "workers.yaml Deployment {name}: scaled by {scalers} ScaledObjects, not 1"
            ));
        }
        if deployment["spec"]["replicas"].as_i64() != Some(0) {
            errors.push(format!(
                "workers.yaml Deployment {name}: replicas must be 0 (KEDA sets them)"
            ));
        }
    }
    assert_eq!(
        keda_queries().keys().cloned().collect::<Vec<_>>(),
        vec![CPU_WORKERS.to_string(), GPU_WORKERS.to_string()]
    );
    assert!(
        errors.is_empty(),
        "KEDA objects:\n  {}",
        errors.join("\n  ")
    );
}

#[test]
fn the_hand_check_finds_a_wrong_keda_object() {
    // The check above must fail on the mistakes it is there for.
    let text = std::fs::read_to_string(manifest_path("keda.yaml")).unwrap();
    let broken = text
        .replacen("minReplicaCount: 0", "minReplicaCount: 1", 1)
        .replacen("targetQueryValue: \"1\"", "targetQueryValue: 1", 1)
        .replacen(
            "scaleTargetRef:\n    name: fresco-worker-cpu",
            "scaleTargetRef:\n    name: nothing",
            1,
        )
        .replacen("cooldownPeriod:", "coolDownPeriod:", 1);
    assert_ne!(broken, text);
    let docs = YamlLoader::load_from_str(&broken).unwrap();
    let workers = manifest("workers.yaml");
    let deployments = by_kind(&workers, "Deployment");
    let authentications = by_kind(&docs, "TriggerAuthentication");
    let mut errors = Vec::new();
    for (name, doc) in by_kind(&docs, "ScaledObject") {
        check_scaled_object(&mut errors, &name, doc, &deployments, &authentications);
    }
    let text = errors.join("\n");
    for expected in [
        "minReplicaCount must be 0",
        "targetQueryValue: must be a string",
        "\"nothing\" is no Deployment",
        "unknown field \"coolDownPeriod\"",
    ] {
        assert!(text.contains(expected), "no error {expected:?} in:\n{text}");
    }
}

/// A job submitted for `device` (None: the default kind, cpu).
fn job_for(device: Option<fresco_core::DeviceKind>, identity: &str) -> NewJob {
    NewJob {
        device_kind: device.unwrap_or_default(),
        ..support::job(identity)
    }
}

/// The value each ScaledObject's query returns now: (CPU workers, GPU workers).
async fn counts(db: &Db, queries: &BTreeMap<String, String>) -> (i64, i64) {
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let mut values = Vec::new();
    for deployment in [CPU_WORKERS, GPU_WORKERS] {
        let query = &queries[deployment];
        let value = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(query.as_str()))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("the KEDA query for {deployment} fails: {e}\n{query}"));
        values.push(value);
    }
    (values[0], values[1])
}

/// Claims the job's next task and finishes it as done.
async fn finish_next(q: &Arc<dyn Queue>, job: &str) -> TaskKind {
    let lease = q
        .claim("finisher", LONG, &only(job))
        .await
        .unwrap()
        .unwrap();
    let status = match lease.kind {
        TaskKind::Score => q.complete_chunk(&lease).await.unwrap(),
        TaskKind::Assemble => q.complete_job(&lease).await.unwrap(),
        TaskKind::Plan => panic!("plan tasks are finished with support::plan"),
    };
    assert_eq!(status, LeaseStatus::Held);
    lease.kind
}

#[tokio::test]
async fn keda_queries_count_the_tasks_that_need_a_worker_on_postgres() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let queries = keda_queries();
    let q = db.open().await;
    assert_eq!(
        counts(&db, &queries).await,
        (0, 0),
        "an empty queue needs no worker"
    );

    // CPU jobs.
    // Just submitted: its plan task is runnable.
    let _fresh = submit(&q, job_for(Some(fresco_core::DeviceKind::Cpu), "fresh")).await;
    // Planned into 5 chunks: one in flight, one whose lease runs out (below), one done, one
    // backing off after an error, one waiting; its assemble task waits for the chunks.
    let busy = submit(&q, job_for(Some(fresco_core::DeviceKind::Cpu), "busy")).await;
    plan(&q, &busy, 5).await;
    let in_flight = q.claim("w1", LONG, &only(&busy)).await.unwrap().unwrap();
    assert_eq!(in_flight.chunk, 0);
    // Its worker dies (below, its lease is made to have run out).
    let dying = q.claim("dies", LONG, &only(&busy)).await.unwrap().unwrap();
    assert_eq!(dying.chunk, 1);
    let done = q.claim("w3", LONG, &only(&busy)).await.unwrap().unwrap();
    assert_eq!(done.chunk, 2, "claims go in chunk order");
    q.complete_chunk(&done).await.unwrap();
    let failing = q.claim("w4", LONG, &only(&busy)).await.unwrap().unwrap();
    assert_eq!(failing.chunk, 3);
    let outcome = q
        .fail(&failing, "flaky", true, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(
        matches!(outcome, FailOutcome::Retrying { .. }),
        "{outcome:?}"
    );
    // A job whose spec names no device (counted for the CPU workers), with its one chunk done:
    // its assemble task is runnable.
    let assembling = submit(&q, job_for(None, "assembling")).await;
    plan(&q, &assembling, 1).await;
    assert_eq!(finish_next(&q, &assembling).await, TaskKind::Score);
    // Over: canceled, and succeeded.
    let canceled = submit(&q, job_for(Some(fresco_core::DeviceKind::Cpu), "canceled")).await;
    plan(&q, &canceled, 2).await;
    assert!(q.cancel(&canceled).await.unwrap());
    let succeeded = submit(&q, job_for(Some(fresco_core::DeviceKind::Cpu), "succeeded")).await;
    plan(&q, &succeeded, 1).await;
    assert_eq!(finish_next(&q, &succeeded).await, TaskKind::Score);
    assert_eq!(finish_next(&q, &succeeded).await, TaskKind::Assemble);

    // GPU jobs: three chunks waiting; one chunk in flight; one failed job.
    let waiting = submit(&q, job_for(Some(fresco_core::DeviceKind::Cuda), "waiting")).await;
    plan(&q, &waiting, 3).await;
    let gpu_busy = submit(&q, job_for(Some(fresco_core::DeviceKind::Cuda), "gpu-busy")).await;
    plan(&q, &gpu_busy, 1).await;
    let gpu_in_flight = q
        .claim("g1", LONG, &only(&gpu_busy))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gpu_in_flight.kind, TaskKind::Score);
    let broken = submit(&q, job_for(Some(fresco_core::DeviceKind::Cuda), "broken")).await;
    let lease = q.claim("g2", LONG, &only(&broken)).await.unwrap().unwrap();
    let outcome = q
        .fail(&lease, "not a video", false, Duration::ZERO)
        .await
        .unwrap();
    assert!(matches!(outcome, FailOutcome::JobFailed), "{outcome:?}");

    // Last, chunk 1's lease runs out (its worker stopped renewing it a minute ago).
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let expired = sqlx::query(
        "UPDATE tasks SET lease_expires_at = lease_expires_at - 120000 WHERE id = $1 AND state = 'leased'",
    )
    .bind(dying.task_id)
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(expired.rows_affected(), 1);

    // CPU: fresh's plan, busy's chunks 0 (in flight), 1 (lease ran out) and 4, assembling's
    // assemble task. GPU: waiting's three chunks and gpu-busy's chunk in flight.
    let (cpu, gpu) = counts(&db, &queries).await;
    assert_eq!((cpu, gpu), (5, 4), "(CPU, GPU) tasks that need a worker");

    // A worker of each kind claims exactly the tasks counted for its kind that are not in
    // flight (one of each kind was), and nothing is left for a claim of any kind.
    for (kind, counted) in [("cpu", cpu), ("cuda", gpu)] {
        let filter = ClaimFilter::device_kind(kind);
        let mut claimed = Vec::new();
        while let Some(lease) = q.claim("drain", LONG, &filter).await.unwrap() {
            claimed.push((lease.job_id.clone(), lease.kind, lease.chunk));
        }
        assert_eq!(
            claimed.len() as i64,
            counted - 1,
            "{kind} claims took {claimed:?}"
        );
    }
    assert!(claim(&q, "drain").await.is_none());
    // Now all of them are in flight: still needing their workers.
    assert_eq!(
        counts(&db, &queries).await,
        (5, 4),
        "tasks in flight must keep their workers"
    );

    // A back-off that ended makes its chunk count again.
    let ended = sqlx::query(
        "UPDATE tasks SET not_before = 0 WHERE job_id = $1 AND chunk = 3 AND state = 'pending'",
    )
    .bind(&busy)
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(ended.rows_affected(), 1, "chunk 3 was not backing off");
    assert_eq!(counts(&db, &queries).await, (6, 4));

    // When every job is over, both kinds scale to zero.
    for job in q
        .jobs(
            &[
                fresco_core::JobState::Queued,
                fresco_core::JobState::Running,
            ],
            100,
        )
        .await
        .unwrap()
    {
        q.cancel(&job.id).await.unwrap();
    }
    assert_eq!(
        counts(&db, &queries).await,
        (0, 0),
        "no work left, no worker needed"
    );
}
