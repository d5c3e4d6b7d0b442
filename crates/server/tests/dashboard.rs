//! The dashboard and `/metrics`, in process: pages with no link outside the server, views and
//! streams behind the session cookie, views that follow the queue, previews (a records job's
//! overlay with its labels escaped, and its row count), a dataset job's items (done, scored,
//! failed, skipped, per second), and the metrics text behind a bearer token.

mod common;

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, Request, StatusCode};
use common::*;
use fresco_queue::{NewToken, Preview, Role};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A raw answer: status, headers and body bytes.
struct Raw {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Bytes,
}

impl Raw {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

async fn raw(app: &TestApp, uri: &str, auth: Auth<'_>) -> Raw {
    let mut request = Request::get(uri);
    match auth {
        Auth::None => {}
        Auth::Bearer(token) => {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"))
        }
        Auth::Cookie(cookie) => request = request.header(header::COOKIE, cookie),
    }
    let response = fresco_server::router(app.state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Raw {
        status,
        headers,
        body,
    }
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie(&'a str),
}

/// A token of `role`, and a session opened with it (`fresco_session=...`).
async fn signed_in(app: &TestApp, role: Role) -> (String, String) {
    let issued = app
        .queue
        .create_token(
            &NewToken {
                name: format!("dash-{}", role.as_str()),
                role,
                expires_at_ms: None,
            },
            None,
        )
        .await
        .unwrap();
    let response = fresco_server::router(app.state.clone())
        .oneshot(
            Request::post("/v1/session")
                .header(header::AUTHORIZATION, format!("Bearer {}", issued.secret))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    (issued.secret, cookie)
}

#[tokio::test]
async fn pages_are_served_with_nothing_from_outside() {
    let app = app().await;
    let (_, cookie) = signed_in(&app, Role::Viewer).await;
    for (uri, kind, auth) in [
        ("/", "text/html", Auth::Cookie(&cookie)),
        ("/ui/login", "text/html", Auth::None),
        ("/ui/jobs/some-id", "text/html", Auth::Cookie(&cookie)),
        ("/ui/assets/app.js", "text/javascript", Auth::None),
        ("/ui/assets/style.css", "text/css", Auth::None),
    ] {
        let page = raw(&app, uri, auth).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        assert!(
            page.content_type().starts_with(kind),
            "{uri}: {}",
            page.content_type()
        );
        let text = page.text();
        for outside in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "url(http",
            "@import",
        ] {
            assert!(
                !text.contains(outside),
                "{uri} loads something from outside: {outside}"
            );
        }
        assert!(!text.contains("cdn"), "{uri} names a CDN");
    }
}

#[tokio::test]
async fn pages_without_a_session_send_the_browser_to_sign_in() {
    let app = app().await;
    let (token, cookie) = signed_in(&app, Role::Viewer).await;
    for (uri, expected) in [
        ("/", "/ui/login?next=/"),
        ("/?state=failed", "/ui/login?next=/%3Fstate%3Dfailed"),
        ("/ui/jobs/abc", "/ui/login?next=/ui/jobs/abc"),
    ] {
        // No cookie, a stale cookie, or a bearer token (a page takes the cookie only).
        for auth in [
            Auth::None,
            Auth::Cookie("fresco_session=stale"),
            Auth::Bearer(&token),
        ] {
            let page = raw(&app, uri, auth).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{uri}: {}", page.text());
            assert_eq!(page.headers[header::LOCATION], expected, "{uri}");
            assert!(page.body.is_empty(), "{uri}: {}", page.text());
        }
        assert_eq!(
            raw(&app, uri, Auth::Cookie(&cookie)).await.status,
            StatusCode::OK
        );
    }
    // The views keep their JSON answers for programs.
    let view = raw(&app, "/ui/overview", Auth::None).await;
    assert_eq!(view.status, StatusCode::UNAUTHORIZED);
    assert_eq!(view.json()["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn views_streams_and_images_take_the_session_cookie_only() {
    let app = app().await;
    let (token, cookie) = signed_in(&app, Role::Viewer).await;
    for uri in ["/ui/overview", "/ui/events"] {
        assert_eq!(
            raw(&app, uri, Auth::None).await.status,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
        assert_eq!(
            raw(&app, uri, Auth::Bearer(&token)).await.status,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
        let stale = "fresco_session=fresco_s_not-a-session";
        assert_eq!(
            raw(&app, uri, Auth::Cookie(stale)).await.status,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
    }
    let overview = raw(&app, "/ui/overview", Auth::Cookie(&cookie)).await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.text());
    // /metrics is for scrapers: a bearer token, not the cookie.
    assert_eq!(
        raw(&app, "/metrics", Auth::None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        raw(&app, "/metrics", Auth::Bearer(&token)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn views_follow_the_queue_and_the_preview_appears_once_saved() {
    let app = app().await;
    let (_, cookie) = signed_in(&app, Role::Viewer).await;
    let reply = post_json(&app.state, "/v1/jobs", &submission(1), None).await;
    let job = match reply.status {
        // Submitting needs a token once authentication is on: submit through the queue then.
        StatusCode::CREATED => reply.body["id"].as_str().unwrap().to_string(),
        _ => {
            let job = fresco_queue::NewJob {
                identity: "dash-1".into(),
                input: "/videos/in-1.mp4".into(),
                output: "/videos/out-1.mp4".into(),
                spec: r#"{"model":{"name":"mosaic"}}"#.into(),
                device_kind: fresco_core::DeviceKind::Cpu,
                priority: 0,
                budgets: fresco_core::RetryBudgets::default(),
                idempotency_key: None,
            };
            app.queue.submit(job).await.unwrap().id().to_string()
        }
    };
    // Plan it into two chunks of 10 frames and score the first.
    let filter = fresco_queue::ClaimFilter {
        jobs: Some(vec![job.clone()]),
        ..Default::default()
    };
    let lease = app
        .queue
        .claim("w1", Duration::from_secs(60), &filter)
        .await
        .unwrap()
        .unwrap();
    let chunks = [
        fresco_core::FrameRange { start: 0, end: 10 },
        fresco_core::FrameRange { start: 10, end: 20 },
    ];
    app.queue
        .complete_plan(&lease, "{}", 20, &chunks)
        .await
        .unwrap();
    let lease = app
        .queue
        .claim("w1", Duration::from_secs(60), &filter)
        .await
        .unwrap()
        .unwrap();
    app.queue.complete_chunk(&lease).await.unwrap();

    let overview = raw(&app, "/ui/overview", Auth::Cookie(&cookie))
        .await
        .json();
    let listed = &overview["jobs"][0];
    assert_eq!(listed["id"], job.as_str());
    assert_eq!(listed["state"], "running");
    assert_eq!(listed["progress"], 0.5);
    assert_eq!(listed["frames_done"], 10);
    assert_eq!(overview["jobs_by_state"]["running"], 1);
    assert_eq!(overview["throughput"].as_array().unwrap().len(), 60);
    let last_minute = overview["throughput"][59]["frames_per_second"]
        .as_f64()
        .unwrap();
    let previous = overview["throughput"][58]["frames_per_second"]
        .as_f64()
        .unwrap();
    assert!(
        (last_minute + previous - 10.0 / 60.0).abs() < 1e-9,
        "{}",
        overview["throughput"]
    );
    let filtered = raw(&app, "/ui/overview?state=failed", Auth::Cookie(&cookie))
        .await
        .json();
    assert_eq!(filtered["jobs"].as_array().unwrap().len(), 0);
    let bad = raw(&app, "/ui/overview?state=lost", Auth::Cookie(&cookie)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let detail_uri = format!("/ui/jobs/{job}/detail");
    let detail = raw(&app, &detail_uri, Auth::Cookie(&cookie)).await.json();
    let states: Vec<&str> = detail["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["done", "done", "pending", "pending"]);
    assert!(detail["preview"].is_null());
    assert!(detail["rows"].is_null(), "a video job has no rows");
    let before_uri = format!("/ui/jobs/{job}/preview/before");
    let missing = raw(&app, &before_uri, Auth::Cookie(&cookie)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"]["code"], "preview-not-ready");
    let unknown = raw(
        &app,
        "/ui/jobs/no-such-job/preview/before",
        Auth::Cookie(&cookie),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"]["code"], "job-not-found");

    let preview = Preview {
        job_id: job.clone(),
        chunk: 0,
        frame: 0,
        mime: "image/jpeg".into(),
        before: vec![0xFF, 0xD8, 1, 2],
        after: vec![0xFF, 0xD8, 3, 4],
        created_at_ms: 0,
    };
    assert!(app.queue.save_preview(&preview).await.unwrap());
    let detail = raw(&app, &detail_uri, Auth::Cookie(&cookie)).await.json();
    assert_eq!(detail["preview"]["before_url"], before_uri.as_str());
    let image = raw(&app, &before_uri, Auth::Cookie(&cookie)).await;
    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(image.content_type(), "image/jpeg");
    assert_eq!(&image.body[..], &preview.before[..]);
    let after = raw(
        &app,
        &format!("/ui/jobs/{job}/preview/after"),
        Auth::Cookie(&cookie),
    )
    .await;
    assert_eq!(&after.body[..], &preview.after[..]);
    let sideways = raw(
        &app,
        &format!("/ui/jobs/{job}/preview/sideways"),
        Auth::Cookie(&cookie),
    )
    .await;
    assert_eq!(sideways.status, StatusCode::BAD_REQUEST);
}

/// A records job's spec (a detector's rows at every third frame) and the plan a real plan stage
/// would record for a 20-frame clip at 25 frames/s in two chunks of 10.
fn records_job(identity: &str) -> (fresco_queue::NewJob, String) {
    let scoring = fresco_core::scoring::ScoringSpec {
        sampling: fresco_core::scoring::Sampling {
            every: Some(3),
            fps: None,
        },
        ..Default::default()
    };
    let spec = serde_json::json!({"model": {"name": "yolov3-tiny-416"}, "scoring": scoring});
    let job = fresco_queue::NewJob {
        identity: identity.into(),
        input: "/videos/street.mp4".into(),
        output: "/videos/objects.jsonl".into(),
        spec: spec.to_string(),
        device_kind: fresco_core::DeviceKind::Cpu,
        priority: 0,
        budgets: fresco_core::RetryBudgets::default(),
        idempotency_key: None,
    };
    let plan = serde_json::json!({
        "video": {
            "input": "/videos/street.mp4", "output": "/videos/objects.jsonl",
            "video_ordinal": 0, "video_index": 0, "time_base": [1, 25], "width": 64,
            "height": 48, "model_width": 64, "model_height": 48, "out_width": 64,
            "out_height": 48, "raw_format": "Rgb24", "out_pix_fmt": "yuv420p", "streams": [],
            "notes": [],
            "encode": {"codec": "libx264", "crf": 18, "preset": "medium", "pix_fmt": null,
                       "threads": 2},
            "colour": {}, "rotation": 0
        },
        "frame_pts": {"first": 0, "runs": [[1, 19]]},
        "chunks": fresco_core::split_frames(20, 10),
        "warnings": []
    });
    // The stand-in must stay a plan the worker would write.
    serde_json::from_value::<fresco_pipeline::JobPlan>(plan.clone()).expect("a stand-in plan");
    (job, plan.to_string())
}

#[tokio::test]
async fn a_records_job_shows_its_rows_and_an_overlay_whose_labels_stay_text() {
    let app = app().await;
    let (_, cookie) = signed_in(&app, Role::Viewer).await;
    let (job, plan) = records_job("records-1");
    let job = app.queue.submit(job).await.unwrap().id().to_string();
    let detail_uri = format!("/ui/jobs/{job}/detail");
    let rows = |detail: Value| detail["rows"].clone();
    let detail = raw(&app, &detail_uri, Auth::Cookie(&cookie)).await.json();
    assert_eq!(
        rows(detail),
        serde_json::json!({"written": 0, "total": null})
    );

    let filter = fresco_queue::ClaimFilter {
        jobs: Some(vec![job.clone()]),
        ..Default::default()
    };
    let claim = || app.queue.claim("w1", Duration::from_secs(60), &filter);
    let lease = claim().await.unwrap().unwrap();
    let chunks = fresco_core::split_frames(20, 10);
    app.queue
        .complete_plan(&lease, &plan, 20, &chunks)
        .await
        .unwrap();
    // Every third frame: 0, 3, 6, 9 in the first chunk, 12, 15, 18 in the second.
    let detail = raw(&app, &detail_uri, Auth::Cookie(&cookie)).await.json();
    assert_eq!(rows(detail), serde_json::json!({"written": 0, "total": 7}));
    let lease = claim().await.unwrap().unwrap();
    assert_eq!(lease.chunk, 0);
    app.queue.complete_chunk(&lease).await.unwrap();
    let detail = raw(&app, &detail_uri, Auth::Cookie(&cookie)).await.json();
    assert_eq!(rows(detail), serde_json::json!({"written": 4, "total": 7}));
    let lease = claim().await.unwrap().unwrap();
    assert_eq!(lease.chunk, 1);
    app.queue.complete_chunk(&lease).await.unwrap();
    let detail = raw(&app, &detail_uri, Auth::Cookie(&cookie)).await.json();
    assert_eq!(rows(detail), serde_json::json!({"written": 7, "total": 7}));

    // The worker's overlay of a row whose label came from a hostile labels file.
    let hostile = "</text><script>alert(1)</script>";
    let row = fresco_score::Scores::Detections(vec![fresco_score::Detection {
        label: hostile.into(),
        class: 7,
        score: 0.5,
        bbox: [8.0, 12.0, 40.0, 44.0],
        keypoints: Vec::new(),
    }]);
    let before = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2];
    let after = fresco_worker::overlay::svg(&before, (64, 48), 640, &row);
    let preview = Preview {
        job_id: job.clone(),
        chunk: 0,
        frame: 0,
        mime: fresco_worker::overlay::MIME.into(),
        before: before.clone(),
        after: after.clone().into_bytes(),
        created_at_ms: 0,
    };
    assert!(app.queue.save_preview(&preview).await.unwrap());
    let detail = raw(&app, &detail_uri, Auth::Cookie(&cookie)).await.json();
    assert_eq!(detail["preview"]["frame"], 0);

    let image = raw(
        &app,
        &format!("/ui/jobs/{job}/preview/before"),
        Auth::Cookie(&cookie),
    )
    .await;
    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(image.content_type(), "image/jpeg");
    assert_eq!(&image.body[..], &before[..]);
    let overlay = raw(
        &app,
        &format!("/ui/jobs/{job}/preview/after"),
        Auth::Cookie(&cookie),
    )
    .await;
    assert_eq!(overlay.status, StatusCode::OK);
    assert_eq!(overlay.content_type(), "image/svg+xml");
    assert_eq!(overlay.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    // Opened on its own (not as an <img>), the SVG is a document: the policy lets no inline
    // script, event handler or style attribute run in it.
    let policy = overlay.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert_eq!(policy, fresco_server::hygiene::CONTENT_SECURITY_POLICY);
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    let text = overlay.text();
    assert_eq!(text, after);
    assert!(!text.contains("<script"), "{text}");
    assert!(
        text.contains("&lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt; 0.50</text>"),
        "{text}"
    );
    let svg = fresco_testkit::svg::parse(&text);
    let names: Vec<&str> = svg.elements.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["svg", "image", "g", "rect", "g", "text"]);
    assert_eq!(svg.texts, [format!("{hostile} 0.50")]);
    let rect = svg.named("rect").next().unwrap();
    assert_eq!(
        ["x", "y", "width", "height"].map(|k| rect.number(k)),
        [8.0, 12.0, 32.0, 32.0]
    );

    // A stored type that is not an image is never served as something a browser runs.
    let (other, _) = records_job("records-2");
    let other = app.queue.submit(other).await.unwrap().id().to_string();
    let odd = Preview {
        job_id: other.clone(),
        mime: "text/html".into(),
        after: b"<script>alert(1)</script>".to_vec(),
        ..preview
    };
    assert!(app.queue.save_preview(&odd).await.unwrap());
    let served = raw(
        &app,
        &format!("/ui/jobs/{other}/preview/after"),
        Auth::Cookie(&cookie),
    )
    .await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.content_type(), "application/octet-stream");
}

/// A dataset job's spec (as `fresco jobs submit FOLDER -o x.jsonl` makes it, in what the
/// dashboard reads) and the plan its plan task records: 10 items in chunks of 4, 2 skipped.
fn dataset_job(identity: &str) -> (fresco_queue::NewJob, String) {
    let dataset = fresco_core::dataset::DatasetSpec {
        source: fresco_core::dataset::DatasetSource::Folder {
            path: "/photos".into(),
        },
        include: Vec::new(),
        max_failed_items: None,
        max_failed_fraction: 0.5,
        max_item_bytes: fresco_core::dataset::DEFAULT_MAX_ITEM_BYTES,
    };
    let spec = serde_json::json!({
        "model": {"name": "efficientnet-lite0"},
        "scoring": fresco_core::scoring::ScoringSpec::default(),
        "dataset": dataset,
    });
    let job = fresco_queue::NewJob {
        identity: identity.into(),
        input: "/photos".into(),
        output: "/photos.jsonl".into(),
        spec: spec.to_string(),
        device_kind: fresco_core::DeviceKind::Cpu,
        priority: 0,
        budgets: fresco_core::RetryBudgets::default(),
        idempotency_key: None,
    };
    let plan = fresco_core::dataset::DatasetPlan {
        items: 10,
        chunks: fresco_core::split_frames(10, 4),
        per_chunk: 4,
        seconds_per_item: None,
        skipped: 2,
        outputs_since_ms: None,
    };
    (job, serde_json::to_string(&plan).unwrap())
}

#[tokio::test]
async fn a_dataset_job_shows_its_items_done_failed_skipped_and_per_second() {
    let app = app().await;
    let (_, cookie) = signed_in(&app, Role::Viewer).await;
    let (job, plan) = dataset_job("dataset-1");
    let job = app.queue.submit(job).await.unwrap().id().to_string();
    // A video job beside it has no items.
    let video = fresco_queue::NewJob {
        identity: "video-1".into(),
        input: "/videos/in.mp4".into(),
        output: "/videos/out.mp4".into(),
        spec: r#"{"model":{"name":"mosaic"}}"#.into(),
        device_kind: fresco_core::DeviceKind::Cpu,
        priority: -1,
        budgets: fresco_core::RetryBudgets::default(),
        idempotency_key: None,
    };
    let video = app.queue.submit(video).await.unwrap().id().to_string();
    let detail_uri = format!("/ui/jobs/{job}/detail");
    let listed = |overview: &Value, id: &str| {
        overview["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {overview}"))
            .clone()
    };

    // Queued: its items are not known yet.
    let detail = raw(&app, &detail_uri, Auth::Cookie(&cookie)).await.json();
    assert_eq!(
        detail["job"]["items"],
        serde_json::json!({"done": 0, "scored": 0, "failed": 0, "skipped": null,
                           "total": null, "per_second": null})
    );
    assert_eq!(
        detail["rows"],
        serde_json::json!({"written": 0, "total": null})
    );

    let filter = fresco_queue::ClaimFilter {
        jobs: Some(vec![job.clone()]),
        ..Default::default()
    };
    let claim = || app.queue.claim("w1", Duration::from_secs(60), &filter);
    let lease = claim().await.unwrap().unwrap();
    let items: Vec<fresco_queue::PinnedItem> = (0..10)
        .map(|index| fresco_queue::PinnedItem {
            index,
            key: format!("{index:02}.jpg"),
            size: 10,
            version: None,
        })
        .collect();
    app.queue.pin_items(&lease, &items).await.unwrap();
    let chunks = fresco_core::split_frames(10, 4);
    app.queue
        .complete_plan(&lease, &plan, 10, &chunks)
        .await
        .unwrap();
    // The first chunk (items 0-3): two error rows.
    let lease = claim().await.unwrap().unwrap();
    assert_eq!(lease.chunk, 0);
    let failures = [(1, "not-image".to_string()), (3, "empty".to_string())];
    app.queue.record_failures(&lease, &failures).await.unwrap();
    app.queue.complete_chunk(&lease).await.unwrap();
    // The second (items 4-7) is in flight, with one error row recorded already.
    let lease = claim().await.unwrap().unwrap();
    assert_eq!(lease.chunk, 1);
    app.queue
        .record_failures(&lease, &[(5, "too-large".to_string())])
        .await
        .unwrap();

    let detail = raw(&app, &detail_uri, Auth::Cookie(&cookie)).await.json();
    let items = &detail["job"]["items"];
    assert_eq!(items["done"], 4, "{items}");
    assert_eq!(items["failed"], 3, "{items}");
    assert_eq!(items["scored"], 1, "{items}");
    assert_eq!(items["skipped"], 2, "{items}");
    assert_eq!(items["total"], 10, "{items}");
    // Items per second are the job's rate: items done over the time since it started.
    assert_eq!(items["per_second"], detail["job"]["fps"], "{detail}");
    assert!(items["per_second"].as_f64().unwrap() > 0.0, "{items}");
    assert_eq!(
        detail["rows"],
        serde_json::json!({"written": 4, "total": 10})
    );

    let overview = raw(&app, "/ui/overview", Auth::Cookie(&cookie))
        .await
        .json();
    // The list counts the same (its rate is read at another moment).
    let mut in_list = listed(&overview, &job)["items"].clone();
    assert!(in_list["per_second"].as_f64().unwrap() > 0.0, "{in_list}");
    in_list["per_second"] = items["per_second"].clone();
    assert_eq!(in_list, *items);
    assert!(listed(&overview, &video)["items"].is_null());
    let video_detail = raw(
        &app,
        &format!("/ui/jobs/{video}/detail"),
        Auth::Cookie(&cookie),
    )
    .await
    .json();
    assert!(video_detail["job"]["items"].is_null());

    // The second chunk's retry reports no failure: its earlier report is forgotten.
    app.queue.record_failures(&lease, &[]).await.unwrap();
    app.queue.complete_chunk(&lease).await.unwrap();
    let overview = raw(&app, "/ui/overview", Auth::Cookie(&cookie))
        .await
        .json();
    let items = &listed(&overview, &job)["items"];
    assert_eq!(
        (items["done"].as_u64(), items["failed"].as_u64()),
        (Some(8), Some(2))
    );
    assert_eq!(items["scored"], 6);
}

#[tokio::test]
async fn a_submitter_sees_its_own_jobs_only_as_in_the_api() {
    let app = app().await;
    let (_, viewer) = signed_in(&app, Role::Viewer).await;
    let (_, submitter) = signed_in(&app, Role::Submitter).await;
    let job = fresco_queue::NewJob {
        identity: "someone-else".into(),
        input: "/in.mp4".into(),
        output: "/out.mp4".into(),
        spec: "{}".into(),
        device_kind: fresco_core::DeviceKind::Cpu,
        priority: 0,
        budgets: fresco_core::RetryBudgets::default(),
        idempotency_key: None,
    };
    let id = app.queue.submit(job).await.unwrap().id().to_string();
    let seen = raw(&app, "/ui/overview", Auth::Cookie(&viewer))
        .await
        .json();
    assert_eq!(seen["jobs"][0]["id"], id.as_str());
    let own = raw(&app, "/ui/overview", Auth::Cookie(&submitter))
        .await
        .json();
    assert_eq!(own["jobs"], serde_json::json!([]), "{own}");
    for path in ["detail", "events", "preview/before"] {
        let reply = raw(
            &app,
            &format!("/ui/jobs/{id}/{path}"),
            Auth::Cookie(&submitter),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.json()["error"]["code"], "job-not-found", "{path}");
    }
}

#[tokio::test]
async fn the_event_stream_starts_with_a_whole_view() {
    let app = app().await;
    let (_, cookie) = signed_in(&app, Role::Viewer).await;
    let response = fresco_server::router(app.state.clone())
        .oneshot(
            Request::get("/ui/events")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("a first event at once")
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    let data = text
        .strip_prefix("event: overview\ndata: ")
        .unwrap_or_else(|| panic!("not an overview event: {text}"));
    let view: Value = serde_json::from_str(data.trim_end()).unwrap();
    assert!(
        view["jobs"].is_array() && view["workers"].is_array(),
        "{view}"
    );
    // A job page's stream of an unknown job is a 404, not an empty stream.
    let missing = raw(&app, "/ui/jobs/no-such-job/events", Auth::Cookie(&cookie)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_read_the_queue() {
    // As `fresco serve` does at start: requests before it are not counted.
    fresco_server::metrics::install().expect("the Prometheus recorder installs");
    let app = app().await;
    let (token, cookie) = signed_in(&app, Role::Viewer).await;
    let job = fresco_queue::NewJob {
        identity: "m-1".into(),
        input: "/in.mp4".into(),
        output: "/out.mp4".into(),
        spec: "{}".into(),
        device_kind: fresco_core::DeviceKind::Cpu,
        priority: 0,
        budgets: fresco_core::RetryBudgets::default(),
        idempotency_key: None,
    };
    app.queue.submit(job).await.unwrap();
    raw(&app, "/ui/jobs/abc/detail", Auth::Cookie(&cookie)).await;
    let text = raw(&app, "/metrics", Auth::Bearer(&token)).await.text();
    assert!(text.contains("fresco_jobs{state=\"queued\"} 1"), "{text}");
    assert!(text.contains("fresco_jobs{state=\"failed\"} 0"), "{text}");
    assert!(text.contains("fresco_queue_pending_tasks 1"), "{text}");
    // The route's pattern, never the id in the path.
    assert!(
        text.contains("fresco_http_requests_total{method=\"GET\",route=\"/ui/jobs/{id}/detail\",status=\"404\"}"),
        "{text}"
    );
    assert!(!text.contains("/ui/jobs/abc"), "{text}");
    assert!(
        text.contains("# TYPE fresco_http_request_duration_seconds histogram"),
        "{text}"
    );
}
