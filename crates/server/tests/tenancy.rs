//! Tenants' namespaces (issue 13, item 6), in process against the real job factory (ffprobe,
//! the built-in vintage style, path rules): each submitter reaches `tenants/NAME/` of the data
//! store and the prefixes granted to it, and every other location answers byte for byte as a
//! location that does not exist (modulo the path), whether or not something is there.
//! Operators keep the whole view; uploads land in the uploader's namespace; the dashboard and
//! `/v1/workers` show no other tenant's job ids.
//!
//! Needs ffmpeg and ONNX Runtime, as `hostile.rs` does. About 10-20 s.

mod common;
#[path = "tenancy/scoring_files.rs"]
mod scoring_files;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use fresco_infer::registry::Registry;
use fresco_queue::{Admission, NewJob, Role, WorkerStatus};
use fresco_server::limits::PathRules;
use fresco_server::tenancy::Tenancy;
use fresco_server::LocalJobFactory;
use fresco_testkit::media::clip;
use serde_json::{json, Value};

/// A 0.4 s clip at `path`, its folders made.
fn clip_at(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    clip(path, "0.4", &[]);
}

/// A data store with two tenants' files, a shared folder and a root outside the data store.
struct World {
    app: TestApp,
    data: String,
    outside: String,
    alice: String,
    bob: String,
    /// A submitter granted the `--allow-prefix` root outside the data store.
    carol: String,
    operator: String,
    viewer: String,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    world_with(false).await
}

/// With `file_urls`, the data store is named `file:///...`, as `fresco serve` names it when the
/// store is encrypted at rest: jobs' names in it become URLs.
async fn world_with(file_urls: bool) -> World {
    if let Err(e) = fresco_infer::runtime::environment() {
        panic!("ONNX Runtime cannot be loaded, so the vintage style cannot be checked: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let outside: PathBuf = dir.path().join("outside");
    clip_at(&data.join("tenants/alice/clip.mp4"));
    clip_at(&data.join("tenants/bob/uploads/u1/clip.mp4"));
    clip_at(&data.join("tenants/bob/out/done.mp4"));
    std::fs::write(data.join("tenants/bob/model.onnx"), b"bob's model").unwrap();
    clip_at(&data.join("shared/team/clip.mp4"));
    clip_at(&outside.join("clip.mp4"));
    let data = data.canonicalize().unwrap().display().to_string();
    let outside = outside.canonicalize().unwrap().display().to_string();
    let root = if file_urls {
        format!("file://{data}")
    } else {
        data.clone()
    };
    let factory = LocalJobFactory::new(Registry::from_env())
        .allow_download(false)
        .data_root(root.clone())
        .paths(
            PathRules::default()
                .allow(&root)
                .unwrap()
                .allow(&outside)
                .unwrap(),
        );
    let mut app = app_with(Arc::new(factory)).await;
    app.state.tenancy = Some(Tenancy::new(root));
    app.state.data = Some(fresco_store::Store::from_url(&data).unwrap());
    let q = app.queue.as_ref();
    let alice = make_token(q, "alice", Role::Submitter).await;
    app.queue
        .set_token_shares("alice", &["shared/team".into()], None)
        .await
        .unwrap();
    let bob = make_token(q, "bob", Role::Submitter).await;
    let carol = make_token(q, "carol", Role::Submitter).await;
    app.queue
        .set_token_shares("carol", std::slice::from_ref(&outside), None)
        .await
        .unwrap();
    let operator = make_token(q, "ops", Role::Operator).await;
    let viewer = make_token(q, "watcher", Role::Viewer).await;
    World {
        app,
        data,
        outside,
        alice,
        bob,
        carol,
        operator,
        viewer,
        _dir: dir,
    }
}

fn submit(token: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri("/v1/jobs")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn job(input: &str, output: &str) -> Value {
    json!({ "input": input, "output": output, "style": "vintage" })
}

/// One attack: a submission naming something that exists outside the tenant's namespace, and
/// its twin naming something that does not exist; the answers must be equal once `swap` turns
/// the first's path into the second's.
struct Twin {
    name: &'static str,
    token: String,
    attack: Value,
    missing: Value,
    swap: (&'static str, &'static str),
    status: StatusCode,
    code: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locations_outside_the_namespace_answer_as_missing_ones() {
    let w = world().await;
    let d = &w.data;
    let o = &w.outside;
    let with = |mut body: Value, key: &str, value: Value| {
        body[key] = value;
        body
    };
    let twin = |name, token: &str, attack, missing, swap, status, code| Twin {
        name,
        token: token.to_string(),
        attack,
        missing,
        swap,
        status,
        code,
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let cases = vec![
        // Another's upload, against a missing upload in one's own namespace.
        twin(
            "another's upload by path",
            &w.alice,
            job(
                &format!("{d}/tenants/bob/uploads/u1/clip.mp4"),
                "styled/a.mp4",
            ),
            job(
                &format!("{d}/tenants/alice/uploads/u1/clip.mp4"),
                "styled/a.mp4",
            ),
            ("bob", "alice"),
            unprocessable,
            "input-missing",
        ),
        twin(
            "another's upload by file URL",
            &w.alice,
            job(
                &format!("file://{d}/tenants/bob/uploads/u1/clip.mp4"),
                "styled/a.mp4",
            ),
            job(
                &format!("file://{d}/tenants/alice/uploads/u1/clip.mp4"),
                "styled/a.mp4",
            ),
            ("bob", "alice"),
            unprocessable,
            "input-missing",
        ),
        twin(
            "another's output as input",
            &w.alice,
            job(&format!("{d}/tenants/bob/out/done.mp4"), "styled/a.mp4"),
            job(&format!("{d}/tenants/alice/out/done.mp4"), "styled/a.mp4"),
            ("bob", "alice"),
            unprocessable,
            "input-missing",
        ),
        twin(
            "a relative name shaped like another's namespace",
            &w.alice,
            job("tenants/bob/uploads/u1/clip.mp4", "styled/a.mp4"),
            job("tenants/bob/uploads/u2/clip.mp4", "styled/a.mp4"),
            ("u1", "u2"),
            unprocessable,
            "input-missing",
        ),
        twin(
            "'..' out of the namespace",
            &w.alice,
            job("../bob/uploads/u1/clip.mp4", "styled/a.mp4"),
            job("../bob/uploads/u2/clip.mp4", "styled/a.mp4"),
            ("u1", "u2"),
            StatusCode::BAD_REQUEST,
            "bad-path",
        ),
        twin(
            "'..' percent-encoded in a file URL",
            &w.alice,
            job(
                &format!("file://{d}/tenants/alice/%2e%2e/bob/uploads/u1/clip.mp4"),
                "styled/a.mp4",
            ),
            job(
                &format!("file://{d}/tenants/alice/%2e%2e/bob/uploads/u2/clip.mp4"),
                "styled/a.mp4",
            ),
            ("u1", "u2"),
            unprocessable,
            "input-missing",
        ),
        twin(
            "an --allow-prefix root not granted",
            &w.alice,
            job(&format!("{o}/clip.mp4"), "styled/a.mp4"),
            job(&format!("{o}/none.mp4"), "styled/a.mp4"),
            ("clip.mp4", "none.mp4"),
            unprocessable,
            "input-missing",
        ),
        twin(
            "a file of the server outside every root",
            &w.alice,
            job("/etc/passwd", "styled/a.mp4"),
            job("/etc/no-such-fresco-file", "styled/a.mp4"),
            ("passwd", "no-such-fresco-file"),
            unprocessable,
            "input-missing",
        ),
        // Outputs: existing or not, overwrite or not, another's output answers as a folder
        // that does not exist in one's own namespace.
        twin(
            "overwrite another's output",
            &w.alice,
            with(
                job("clip.mp4", &format!("{d}/tenants/bob/out/done.mp4")),
                "overwrite",
                true.into(),
            ),
            with(
                job("clip.mp4", &format!("{d}/tenants/alice/out/done.mp4")),
                "overwrite",
                true.into(),
            ),
            ("bob", "alice"),
            unprocessable,
            "output-unwritable",
        ),
        twin(
            "probe whether another's output exists",
            &w.alice,
            job("clip.mp4", &format!("{d}/tenants/bob/out/done.mp4")),
            job("clip.mp4", &format!("{d}/tenants/alice/out/done.mp4")),
            ("bob", "alice"),
            unprocessable,
            "output-unwritable",
        ),
        twin(
            "another's output by file URL",
            &w.alice,
            with(
                job("clip.mp4", &format!("file://{d}/tenants/bob/out/done.mp4")),
                "overwrite",
                true.into(),
            ),
            job("clip.mp4", &format!("file://{d}/tenants/bob/none/done.mp4")),
            ("/out", "/none"),
            unprocessable,
            "output-unwritable",
        ),
        twin(
            "another's model",
            &w.alice,
            json!({ "input": "clip.mp4", "output": "styled/m.mp4",
                    "model": format!("{d}/tenants/bob/model.onnx") }),
            json!({ "input": "clip.mp4", "output": "styled/m.mp4",
                    "model": format!("{d}/tenants/alice/model.onnx") }),
            ("bob", "alice"),
            unprocessable,
            "model-missing",
        ),
        // A prefix shared with alice is not bob's, by name or by path.
        twin(
            "a shared prefix not granted, by name",
            &w.bob,
            job("shared/team/clip.mp4", "styled/b.mp4"),
            job("shared/team/none.mp4", "styled/b.mp4"),
            ("clip.mp4", "none.mp4"),
            unprocessable,
            "input-missing",
        ),
        twin(
            "a shared prefix not granted, by path",
            &w.bob,
            job(&format!("{d}/shared/team/clip.mp4"), "styled/b.mp4"),
            job(&format!("{d}/shared/team/none.mp4"), "styled/b.mp4"),
            ("clip.mp4", "none.mp4"),
            unprocessable,
            "input-missing",
        ),
    ];
    let failures = check_twins(&w, &cases).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        w.app.queue.jobs(&[], 100).await.unwrap().len(),
        0,
        "an attack was queued"
    );
    // Bob's files are as they were.
    let bob_out = Path::new(d).join("tenants/bob/out/done.mp4");
    assert!(std::fs::metadata(bob_out).unwrap().len() > 0);
}

/// Sends each attack and its twin; returns what differed.
async fn check_twins(w: &World, cases: &[Twin]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let attack = send(&w.app.state, submit(&case.token, &case.attack)).await;
        let missing = send(&w.app.state, submit(&case.token, &case.missing)).await;
        let code = |r: &Reply| r.body["error"]["code"].as_str().unwrap_or("").to_string();
        if missing.status != case.status || code(&missing) != case.code {
            failures.push(format!(
                "{}: the missing twin answered {} {} (expected {} {})",
                case.name, missing.status, missing.text, case.status, case.code
            ));
            continue;
        }
        missing.error(case.status, case.code);
        let swapped = attack.text.replace(case.swap.0, case.swap.1);
        if attack.status != missing.status || swapped != missing.text {
            failures.push(format!(
                "{}: answered {} {}\n  where a missing location answers {} {}",
                case.name, attack.status, attack.text, missing.status, missing.text
            ));
        }
    }
    failures
}

/// A data store named by `file://` URL (an encrypted one's form): the namespace holds the same,
/// by path and by URL, and a submitter's own names become URLs in its namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_store_named_by_url_is_scoped_alike() {
    let w = world_with(true).await;
    let d = &w.data;
    let twin = |name, attack: String, missing: String| Twin {
        name,
        token: w.alice.clone(),
        attack: job(&attack, "styled/a.mp4"),
        missing: job(&missing, "styled/a.mp4"),
        swap: ("bob", "alice"),
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "input-missing",
    };
    let cases = [
        twin(
            "another's upload by path",
            format!("{d}/tenants/bob/uploads/u1/clip.mp4"),
            format!("{d}/tenants/alice/uploads/u1/clip.mp4"),
        ),
        twin(
            "another's upload by file URL",
            format!("file://{d}/tenants/bob/uploads/u1/clip.mp4"),
            format!("file://{d}/tenants/alice/uploads/u1/clip.mp4"),
        ),
    ];
    let failures = check_twins(&w, &cases).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let reply = send(
        &w.app.state,
        submit(&w.alice, &job("clip.mp4", "styled/a.mp4")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(
        reply.body["input"],
        format!("file://{d}/tenants/alice/clip.mp4")
    );
    assert_eq!(
        reply.body["output"],
        format!("file://{d}/tenants/alice/styled/a.mp4")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_names_shares_and_the_operators_view_work() {
    let w = world().await;
    let d = &w.data;
    let accepted = |reply: &Reply, what: &str| {
        assert_eq!(reply.status, StatusCode::CREATED, "{what}: {}", reply.text);
        (
            reply.body["input"].as_str().unwrap().to_string(),
            reply.body["output"].as_str().unwrap().to_string(),
        )
    };
    // Relative names resolve in the submitter's namespace.
    let reply = send(
        &w.app.state,
        submit(&w.alice, &job("clip.mp4", "styled/a.mp4")),
    )
    .await;
    let (input, output) = accepted(&reply, "alice's own clip");
    assert_eq!(input, format!("{d}/tenants/alice/clip.mp4"));
    assert_eq!(output, format!("{d}/tenants/alice/styled/a.mp4"));
    // A shared prefix granted to alice: by name (resolved at the data store's root) and by path.
    let reply = send(
        &w.app.state,
        submit(&w.alice, &job("shared/team/clip.mp4", "styled/s.mp4")),
    )
    .await;
    let (input, _) = accepted(&reply, "alice's share by name");
    assert_eq!(input, format!("{d}/shared/team/clip.mp4"));
    let reply = send(
        &w.app.state,
        submit(
            &w.alice,
            &job(&format!("{d}/shared/team/clip.mp4"), "styled/p.mp4"),
        ),
    )
    .await;
    accepted(&reply, "alice's share by path");
    // An --allow-prefix root granted to carol.
    let reply = send(
        &w.app.state,
        submit(
            &w.carol,
            &job(&format!("{}/clip.mp4", w.outside), "styled/c.mp4"),
        ),
    )
    .await;
    accepted(&reply, "carol's granted root");
    // Operators reach every namespace, by path and by name from the data store's root.
    let reply = send(
        &w.app.state,
        submit(
            &w.operator,
            &job(&format!("{d}/tenants/bob/uploads/u1/clip.mp4"), "ops/1.mp4"),
        ),
    )
    .await;
    accepted(&reply, "the operator, bob's upload by path");
    let reply = send(
        &w.app.state,
        submit(&w.operator, &job("tenants/bob/out/done.mp4", "ops/2.mp4")),
    )
    .await;
    let (input, _) = accepted(&reply, "the operator, bob's output by name");
    assert_eq!(input, format!("{d}/tenants/bob/out/done.mp4"));
    // And the operator may still be told that an output exists.
    let reply = send(
        &w.app.state,
        submit(
            &w.operator,
            &job(
                &format!("{d}/tenants/alice/clip.mp4"),
                "tenants/bob/out/done.mp4",
            ),
        ),
    )
    .await;
    reply.error(StatusCode::UNPROCESSABLE_ENTITY, "output-exists");
    // Viewers submit nothing.
    let reply = send(&w.app.state, submit(&w.viewer, &job("clip.mp4", "v.mp4"))).await;
    reply.error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_land_in_the_uploaders_namespace() {
    let w = world().await;
    let grant = send(
        &w.app.state,
        Request::post("/v1/uploads")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", w.alice))
            .body(Body::from(r#"{"name":"mine.mp4"}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(grant.status, StatusCode::CREATED, "{}", grant.text);
    let input = grant.body["input"].as_str().unwrap().to_string();
    assert!(
        input.starts_with("uploads/") && input.ends_with("/mine.mp4"),
        "{input}"
    );
    let url = grant.body["upload_url"].as_str().unwrap();
    let path_and_query = &url[url.find("/v1/objects/").unwrap()..];
    assert!(
        path_and_query.starts_with("/v1/objects/tenants/alice/uploads/"),
        "{url}"
    );
    let bytes = std::fs::read(Path::new(&w.data).join("tenants/alice/clip.mp4")).unwrap();
    let stored = send_raw(
        &w.app.state,
        Request::put(path_and_query)
            .body(Body::from(bytes))
            .unwrap(),
    )
    .await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
    assert_eq!(stored.body["input"], input.as_str());
    assert!(Path::new(&w.data)
        .join("tenants/alice")
        .join(&input)
        .is_file());
    // The uploader submits it by the name it was given; another submitter cannot, and is told
    // exactly what a name that was never uploaded gets.
    let reply = send(
        &w.app.state,
        submit(&w.alice, &job(&input, "styled/up.mp4")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let theirs = send(&w.app.state, submit(&w.bob, &job(&input, "styled/up.mp4"))).await;
    let never = input.replace("mine.mp4", "never.mp4");
    let missing = send(&w.app.state, submit(&w.bob, &job(&never, "styled/up.mp4"))).await;
    missing.error(StatusCode::UNPROCESSABLE_ENTITY, "input-missing");
    assert_eq!(theirs.text.replace("mine.mp4", "never.mp4"), missing.text);
    // An operator's upload stays at the data store's root.
    let grant = send(
        &w.app.state,
        Request::post("/v1/uploads")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", w.operator))
            .body(Body::from(r#"{"name":"ops.mp4"}"#))
            .unwrap(),
    )
    .await;
    let url = grant.body["upload_url"].as_str().unwrap();
    assert!(url.contains("/v1/objects/uploads/"), "{url}");
}

/// Queues a job owned by `owner` directly (no factory): the dashboard test needs ids only.
async fn owned_job(app: &TestApp, owner: &str, n: u32) -> String {
    let job = NewJob {
        identity: format!("{owner}-{n}"),
        input: format!("/in-{owner}.mp4"),
        output: format!("/out-{owner}.mp4"),
        spec: "{}".into(),
        device_kind: fresco_core::DeviceKind::Cpu,
        priority: 0,
        budgets: fresco_core::RetryBudgets::default(),
        idempotency_key: None,
    };
    let admission = Admission {
        owner: owner.into(),
        max_active_per_owner: None,
        max_active: None,
        callback_url: None,
    };
    app.queue
        .submit_owned(job, &admission)
        .await
        .unwrap()
        .id()
        .to_string()
}

/// The "current" line of every worker an answer lists.
fn currents(workers: &Value) -> Vec<String> {
    workers
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["current"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn the_dashboard_and_workers_show_no_other_tenants_job_ids() {
    let app = app().await;
    let alice = make_token(app.queue.as_ref(), "alice", Role::Submitter).await;
    let viewer = make_token(app.queue.as_ref(), "watcher", Role::Viewer).await;
    let mine = owned_job(&app, "alice", 1).await;
    let theirs = owned_job(&app, "bob", 1).await;
    for (n, id) in [(1, &mine), (2, &theirs)] {
        app.queue
            .worker_seen(&WorkerStatus {
                name: format!("host:1:{n}"),
                host: "host".into(),
                device: "cpu".into(),
                state: "busy".into(),
                current: Some(format!("score chunk 0 of job {id}")),
            })
            .await
            .unwrap();
    }
    // A session for alice: the overview is the dashboard's (cookie only).
    let opened = send_as(
        &app.state,
        Some(&alice),
        Request::post("/v1/session").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    let cookie = opened.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let overview = send_raw(
        &app.state,
        Request::get("/ui/overview")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.text);
    assert!(!overview.text.contains(&theirs), "{}", overview.text);
    assert_eq!(
        currents(&overview.body["workers"]),
        vec![format!("score chunk 0 of job {mine}")]
    );
    // The API's list of workers is not a submitter's at all; a viewer sees every line.
    let workers = send_as(
        &app.state,
        Some(&alice),
        Request::get("/v1/workers").body(Body::empty()).unwrap(),
    )
    .await;
    workers.error(StatusCode::FORBIDDEN, "forbidden");
    assert!(!workers.text.contains(&theirs));
    let workers = send_as(
        &app.state,
        Some(&viewer),
        Request::get("/v1/workers").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(workers.status, StatusCode::OK, "{}", workers.text);
    let mut seen = currents(&workers.body["workers"]);
    seen.sort();
    let mut all = vec![
        format!("score chunk 0 of job {mine}"),
        format!("score chunk 0 of job {theirs}"),
    ];
    all.sort();
    assert_eq!(seen, all);
}

/// Admins grant shared prefixes when they make a token; a prefix that could reach outside
/// what it names is refused, naming the field.
#[tokio::test]
async fn admins_grant_shares_with_a_token() {
    let app = app().await;
    let create = |body: Value| {
        Request::post("/v1/tokens")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let made = send(
        &app.state,
        create(
            json!({"name": "team", "role": "submitter", "shares": ["shared/team-a", "/srv/media"]}),
        ),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    assert_eq!(made.body["shares"], json!(["shared/team-a", "/srv/media"]));
    let listed = get(&app.state, "/v1/tokens").await;
    let team = listed.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "team")
        .unwrap()
        .clone();
    assert_eq!(team["shares"], json!(["shared/team-a", "/srv/media"]));
    let audit = get(&app.state, "/v1/audit?target=team").await;
    assert!(
        audit.text.contains("token-share") && audit.text.contains("shared/team-a"),
        "{}",
        audit.text
    );
    for (n, bad) in ["../x", "shared/%2e%2e/x", "/", "http://h/x", "a//b", ""]
        .into_iter()
        .enumerate()
    {
        let reply = send(
            &app.state,
            create(json!({"name": format!("bad-{n}"), "role": "submitter", "shares": [bad]})),
        )
        .await;
        let message = reply.error(StatusCode::BAD_REQUEST, "invalid-field");
        assert!(
            message.starts_with("shares: shared prefix"),
            "{bad}: {message}"
        );
    }
    // Nothing was made for the refused ones.
    let listed = get(&app.state, "/v1/tokens").await;
    assert!(!listed.text.contains("bad-"), "{}", listed.text);
}

/// URL parsers drop tabs and line breaks anywhere in a URL, so `.\t.` passed the segment checks
/// and became `..` when the worker opened the store: another tenant's file as input, or any
/// path as output. Every spelling is refused before anything is read, for a data store named by
/// path and by `file://` URL, and nothing is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_cannot_turn_into_dot_segments() {
    for file_urls in [false, true] {
        let w = world_with(file_urls).await;
        let d = &w.data;
        let attacks = [
            job(
                &format!("file://{d}/tenants/alice/.\t./bob/uploads/u1/clip.mp4"),
                "styled/a.mp4",
            ),
            job(
                &format!("file://{d}/tenants/alice/.\n%2e/bob/uploads/u1/clip.mp4"),
                "styled/a.mp4",
            ),
            job(
                &format!("file://{d}/tenants/alice/.\r./bob/uploads/u1/clip.mp4"),
                "styled/a.mp4",
            ),
            job(
                "clip.mp4",
                &format!("file://{d}/tenants/alice/.\t./.\t./.\t./x.mp4"),
            ),
            job("x/.\t./.\t./bob/uploads/u1/clip.mp4", "styled/a.mp4"),
            job("clip.mp4", "styled/.\n./.\n./.\n./x.mp4"),
        ];
        for attack in attacks {
            let reply = send(&w.app.state, submit(&w.alice, &attack)).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "file_urls={file_urls} {attack}: {}",
                reply.text
            );
            let code = reply.body["error"]["code"].as_str().unwrap_or_default();
            assert!(
                matches!(code, "path-not-allowed" | "bad-path" | "bad-url"),
                "file_urls={file_urls} {attack}: {}",
                reply.text
            );
        }
        let jobs = w.app.queue.jobs(&[], 100).await.unwrap();
        assert!(jobs.is_empty(), "a job was queued: {jobs:?}");
    }
}
