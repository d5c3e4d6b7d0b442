//! Authentication, roles, sessions, rate limits, caps and the audit trail, in process: the route
//! table is walked (every route: 401 without credentials, 403 for every role it does not allow,
//! through for every role it does) and compared with `docs/security.md`; secrets are looked for
//! where they must never be; a flood from one token is refused while another token's job goes
//! through.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use fresco_queue::Role;
use fresco_server::auth::{AuthKind, RateLimitConfig, RateLimits, Secret};
use fresco_server::routes::all_routes;
use serde_json::{json, Value};
use tower::ServiceExt;

const EVENT_SECRET: &str = "event-secret-0123456789";

/// One token per role, made in `app`'s queue.
async fn role_tokens(app: &TestApp) -> Vec<(Role, String)> {
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let name = format!("t-{role}");
        tokens.push((role, make_token(app.queue.as_ref(), &name, role).await));
    }
    tokens
}

/// A session for `token`: (cookie header value, CSRF token).
async fn session(app: &TestApp, token: &str) -> (String, String) {
    let request = Request::post("/v1/session").body(Body::empty()).unwrap();
    let reply = send_as(&app.state, Some(token), request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let cookie = reply.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_string();
    let csrf = reply.body["csrf_token"].as_str().unwrap().to_string();
    (pair, csrf)
}

/// Only the status: some routes stream (server-sent events) and never end.
async fn status_of(app: &TestApp, request: Request<Body>) -> (StatusCode, String) {
    let response = fresco_server::router(app.state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        use http_body_util::BodyExt;
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        return (status, String::from_utf8_lossy(&bytes).into_owned());
    }
    (status, String::new())
}

fn request_for(method: &Method, uri: &str) -> axum::http::request::Builder {
    let builder = Request::builder().method(method.clone()).uri(uri);
    if *method == Method::GET || *method == Method::DELETE {
        builder
    } else {
        builder.header(header::CONTENT_TYPE, "application/json")
    }
}

fn body_for(method: &Method) -> Body {
    if *method == Method::GET || *method == Method::DELETE {
        Body::empty()
    } else {
        Body::from("{}")
    }
}

#[tokio::test]
async fn every_route_refuses_without_credentials_and_below_its_roles() {
    let mut app = app().await;
    app.state.auth.event_secret = Some(Secret::new(EVENT_SECRET));
    let tokens = role_tokens(&app).await;
    let job = post_json(&app.state, "/v1/jobs", &submission(1), None).await;
    assert_eq!(job.status, StatusCode::CREATED, "{job:?}");
    let job_id = job.body["id"].as_str().expect("a job").to_string();
    let mut walked = 0;
    for route in all_routes() {
        let uri = route
            .path
            .replace("{id}", &job_id)
            .replace("{*key}", "some/key")
            .replace("{which}", "before");
        let what = format!("{} {}", route.method, route.path);
        let request = || request_for(&route.method, &uri);
        let (status, text) =
            status_of(&app, request().body(body_for(&route.method)).unwrap()).await;
        match route.auth {
            AuthKind::Public | AuthKind::SignIn => {
                assert!(status.is_success(), "{what} is public: {status} {text}");
                continue;
            }
            AuthKind::Signature => {
                assert!(
                    status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
                    "{what} without a signature: {status} {text}"
                );
                continue;
            }
            AuthKind::EventSecret => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {text}");
                let wrong = request()
                    .header("x-fresco-event-secret", "not-the-secret")
                    .body(body_for(&route.method))
                    .unwrap();
                assert_eq!(
                    status_of(&app, wrong).await.0,
                    StatusCode::UNAUTHORIZED,
                    "{what}"
                );
                let right = request()
                    .header("x-fresco-event-secret", EVENT_SECRET)
                    .body(body_for(&route.method))
                    .unwrap();
                let (status, text) = status_of(&app, right).await;
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{what} with the secret: {status} {text}"
                );
                continue;
            }
            AuthKind::Bearer | AuthKind::Api | AuthKind::Session => {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{what} without credentials: {text}"
                );
            }
            AuthKind::Page => {
                // A browser is sent to sign in, and brought back here afterwards.
                let response = fresco_server::router(app.state.clone())
                    .oneshot(request().body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::SEE_OTHER, "{what}");
                assert_eq!(
                    response.headers()[header::LOCATION],
                    format!("/ui/login?next={uri}").as_str(),
                    "{what}"
                );
            }
        }
        for (role, token) in &tokens {
            let request = match route.auth {
                AuthKind::Session | AuthKind::Page => {
                    let (cookie, csrf) = session(&app, token).await;
                    request()
                        .header(header::COOKIE, cookie)
                        .header("x-csrf-token", csrf)
                        .body(body_for(&route.method))
                        .unwrap()
                }
                _ => request()
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(body_for(&route.method))
                    .unwrap(),
            };
            let (status, text) = status_of(&app, request).await;
            if route.roles.contains(role) {
                assert!(
                    status != StatusCode::UNAUTHORIZED
                        && status != StatusCode::FORBIDDEN
                        && status != StatusCode::TOO_MANY_REQUESTS
                        && !status.is_server_error(),
                    "{what} as {role}: {status} {text}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what} as {role}: {text}");
                assert!(text.contains("\"forbidden\""), "{what} as {role}: {text}");
            }
        }
        walked += 1;
    }
    assert!(walked >= 15, "only {walked} routes with tokens");
}

/// The rows of `docs/security.md`'s route table: (method, path, kind, roles).
fn documented_routes() -> BTreeSet<(String, String, String, String)> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/security.md"),
    )
    .expect("docs/security.md");
    let table = text
        .split("## Routes")
        .nth(1)
        .expect("a Routes section")
        .split("\n## ")
        .next()
        .unwrap();
    table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect();
            assert_eq!(cells.len(), 4, "{line}");
            (
                cells[0].clone(),
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
            )
        })
        .collect()
}

#[test]
fn the_documented_route_table_is_the_router_s() {
    let served: BTreeSet<(String, String, String, String)> = all_routes()
        .map(|r| {
            let roles: Vec<&str> = r.roles.iter().map(|role| role.as_str()).collect();
            (
                r.method.to_string(),
                r.path.to_string(),
                r.auth.as_str().to_string(),
                roles.join(", "),
            )
        })
        .collect();
    let documented = documented_routes();
    let missing: Vec<_> = served.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/security.md's route table differs from the router's:\n  not documented: {missing:?}\n  documented, not served: {stale:?}"
    );
}

#[tokio::test]
async fn submitters_see_and_cancel_their_own_jobs_only() {
    let app = app().await;
    let alice = make_token(app.queue.as_ref(), "alice", Role::Submitter).await;
    let bob = make_token(app.queue.as_ref(), "bob", Role::Submitter).await;
    let submit = |token: String, n: u32, key: &'static str| {
        let state = app.state.clone();
        async move {
            let request = Request::post("/v1/jobs")
                .header(header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", key)
                .body(Body::from(submission(n).to_string()))
                .unwrap();
            send_as(&state, Some(&token), request).await
        }
    };
    let a = submit(alice.clone(), 1, "k").await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    let a_id = a.body["id"].as_str().unwrap().to_string();
    // The same key from another token is another job.
    let b = submit(bob.clone(), 2, "k").await;
    assert_eq!(b.status, StatusCode::CREATED, "{b:?}");
    let b_id = b.body["id"].as_str().unwrap().to_string();
    assert_ne!(a_id, b_id);
    // Bob's work, submitted by Alice: not Bob's job.
    submit(alice.clone(), 2, "other")
        .await
        .error(StatusCode::CONFLICT, "duplicate-job-active");

    let get = |token: &str, uri: &str| {
        let (state, token) = (app.state.clone(), token.to_string());
        let request = Request::get(uri).body(Body::empty()).unwrap();
        async move { send_as(&state, Some(&token), request).await }
    };
    let listed = get(&bob, "/v1/jobs").await;
    let ids: Vec<&str> = listed.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b_id.as_str()]);
    get(&bob, &format!("/v1/jobs/{a_id}"))
        .await
        .error(StatusCode::NOT_FOUND, "job-not-found");
    get(&bob, &format!("/v1/jobs/{a_id}/logs"))
        .await
        .error(StatusCode::NOT_FOUND, "job-not-found");
    let cancel = |token: &str, id: &str| {
        let (state, token) = (app.state.clone(), token.to_string());
        let request = Request::post(format!("/v1/jobs/{id}/cancel"))
            .body(Body::empty())
            .unwrap();
        async move { send_as(&state, Some(&token), request).await }
    };
    cancel(&bob, &a_id)
        .await
        .error(StatusCode::NOT_FOUND, "job-not-found");
    assert_eq!(cancel(&alice, &a_id).await.body["state"], "canceled");
    // An operator sees both; the audit trail names who did what.
    let all = get(&app.token, "/v1/jobs").await;
    assert_eq!(all.body["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.queue
            .job(&a_id)
            .await
            .unwrap()
            .unwrap()
            .owner
            .as_deref(),
        Some("alice")
    );
    let audit = get(&app.token, &format!("/v1/audit?target={a_id}")).await;
    let actions: Vec<(String, String)> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("alice".into(), "cancel".into()),
            ("alice".into(), "submit".into())
        ]
    );
}

#[tokio::test]
async fn sessions_need_csrf_to_change_state_and_end_on_logout_or_revocation() {
    let app = app().await;
    let operator = make_token(app.queue.as_ref(), "ops", Role::Operator).await;
    let (cookie, csrf) = session(&app, &operator).await;
    let with_cookie = |method: Method, uri: &str, csrf: Option<&str>| {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, cookie.clone());
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        send_raw(&app.state, request.body(Body::empty()).unwrap())
    };
    let me = with_cookie(Method::GET, "/v1/session", None).await;
    assert_eq!(
        (me.body["name"].as_str(), me.body["role"].as_str()),
        (Some("ops"), Some("operator"))
    );
    assert_eq!(me.body["csrf_token"], csrf.as_str());
    assert_eq!(
        with_cookie(Method::GET, "/v1/jobs", None).await.status,
        StatusCode::OK
    );
    let job = post_json(&app.state, "/v1/jobs", &submission(1), None).await;
    let cancel = format!("/v1/jobs/{}/cancel", job.body["id"].as_str().unwrap());
    with_cookie(Method::POST, &cancel, None)
        .await
        .error(StatusCode::FORBIDDEN, "csrf-token-required");
    with_cookie(Method::POST, &cancel, Some("wrong"))
        .await
        .error(StatusCode::FORBIDDEN, "csrf-token-required");
    assert_eq!(
        with_cookie(Method::POST, &cancel, Some(&csrf)).await.status,
        StatusCode::OK
    );
    // A bearer token is no session: the session routes take the cookie only.
    let request = Request::delete("/v1/session").body(Body::empty()).unwrap();
    send_as(&app.state, Some(&operator), request)
        .await
        .error(StatusCode::UNAUTHORIZED, "session-required");
    // Logout ends it.
    let out = with_cookie(Method::DELETE, "/v1/session", Some(&csrf)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    with_cookie(Method::GET, "/v1/jobs", None)
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid-session");
    // Revoking the token ends its other sessions and the token itself.
    let (cookie2, _) = session(&app, &operator).await;
    let revoke = Request::delete("/v1/tokens/ops")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app.state, revoke).await.status, StatusCode::OK);
    let request = Request::get("/v1/jobs")
        .header(header::COOKIE, cookie2)
        .body(Body::empty())
        .unwrap();
    send_raw(&app.state, request)
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid-session");
    let request = Request::get("/v1/jobs").body(Body::empty()).unwrap();
    send_as(&app.state, Some(&operator), request)
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid-token");
}

#[tokio::test]
async fn tokens_are_refused_in_query_strings_and_bad_headers() {
    let app = app().await;
    let uri = format!("/v1/jobs?access_token={}", app.token);
    send_as(
        &app.state,
        None,
        Request::get(uri).body(Body::empty()).unwrap(),
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "token-in-query");
    let request = Request::get("/v1/jobs")
        .header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz")
        .body(Body::empty())
        .unwrap();
    let reply = send_raw(&app.state, request).await;
    reply.error(StatusCode::UNAUTHORIZED, "bad-authorization");
    assert_eq!(
        reply.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"fresco\""
    );
    let request = Request::get("/v1/jobs").body(Body::empty()).unwrap();
    send_as(&app.state, Some("fresco_not-a-token"), request)
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid-token");
}

#[tokio::test]
async fn admins_make_list_and_revoke_tokens_over_the_api() {
    let app = app().await;
    let made = post_json(
        &app.state,
        "/v1/tokens",
        &json!({"name": "ci", "role": "submitter", "expires_in_days": 30}),
        None,
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    let secret = made.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("fresco_"));
    assert_eq!(made.body["role"], "submitter");
    assert!(made.body["expires_at_ms"].as_i64().is_some());
    post_json(
        &app.state,
        "/v1/tokens",
        &json!({"name": "ci", "role": "viewer"}),
        None,
    )
    .await
    .error(StatusCode::CONFLICT, "token-name-taken");
    post_json(
        &app.state,
        "/v1/tokens",
        &json!({"name": "x y", "role": "viewer"}),
        None,
    )
    .await
    .error(StatusCode::BAD_REQUEST, "invalid-field");
    post_json(
        &app.state,
        "/v1/tokens",
        &json!({"name": "z", "role": "root"}),
        None,
    )
    .await
    .error(StatusCode::BAD_REQUEST, "invalid-field");
    let listed = get(&app.state, "/v1/tokens").await;
    assert!(!listed.text.contains(&secret), "a listing shows a secret");
    assert_eq!(listed.body["tokens"].as_array().unwrap().len(), 2);
    // The new token works, until it is revoked.
    let whoami = || {
        send_as(
            &app.state,
            Some(&secret),
            Request::get("/v1/session").body(Body::empty()).unwrap(),
        )
    };
    assert_eq!(whoami().await.body["name"], "ci");
    let revoked = send(
        &app.state,
        Request::delete("/v1/tokens/ci")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(revoked.body["active"], false);
    whoami()
        .await
        .error(StatusCode::UNAUTHORIZED, "invalid-token");
    let audit = get(&app.state, "/v1/audit?target=ci").await;
    let actions: Vec<&str> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["token-revoke", "token-create"]);
}

#[tokio::test]
async fn a_flood_from_one_token_hits_the_rate_and_the_cap_while_another_goes_through() {
    let mut app = app().await;
    app.state.auth.limits = Arc::new(RateLimits::new(&RateLimitConfig {
        submissions_per_minute: 6,
        submission_burst: 12,
        ..RateLimitConfig::default()
    }));
    app.state.auth.max_active_per_token = Some(5);
    app.state.auth.max_active = Some(20);
    let flooder = make_token(app.queue.as_ref(), "flooder", Role::Submitter).await;
    let other = make_token(app.queue.as_ref(), "other", Role::Submitter).await;
    let started = std::time::Instant::now();
    // A burst of 200 concurrent submissions, each of other work.
    let mut tasks = Vec::new();
    for n in 0..200 {
        let state = app.state.clone();
        let token = flooder.clone();
        tasks.push(tokio::spawn(async move {
            let request = Request::post("/v1/jobs")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(submission(n).to_string()))
                .unwrap();
            send_as(&state, Some(&token), request).await
        }));
    }
    let mut counts = std::collections::BTreeMap::new();
    for task in tasks {
        let reply = task.await.unwrap();
        let code = match reply.status {
            StatusCode::CREATED => "created".to_string(),
            status => {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{reply:?}");
                let seconds: u64 = reply.headers[header::RETRY_AFTER]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(seconds >= 1, "{reply:?}");
                reply.body["error"]["code"].as_str().unwrap().to_string()
            }
        };
        *counts.entry(code).or_insert(0) += 1;
    }
    eprintln!(
        "flood of 200 submissions: {counts:?} in {:?}",
        started.elapsed()
    );
    assert_eq!(counts.get("created"), Some(&5), "{counts:?}");
    assert_eq!(counts.get("token-queue-full"), Some(&7), "{counts:?}");
    assert_eq!(counts.get("rate-limited"), Some(&188), "{counts:?}");
    assert_eq!(app.queue.active_jobs(Some("flooder")).await.unwrap(), 5);
    // Another token's job is taken, and completes.
    let request = Request::post("/v1/jobs")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(submission(1000).to_string()))
        .unwrap();
    let reply = send_as(&app.state, Some(&other), request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let id = reply.body["id"].as_str().unwrap().to_string();
    complete(app.queue.as_ref(), &id).await;
    let request = Request::get(format!("/v1/jobs/{id}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send_as(&app.state, Some(&other), request).await.body["state"],
        "succeeded"
    );
    // The overall cap: 20 unfinished jobs at most, whoever submits.
    for n in 0..20 {
        let token = make_token(app.queue.as_ref(), &format!("s{n}"), Role::Submitter).await;
        let request = Request::post("/v1/jobs")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(submission(2000 + n).to_string()))
            .unwrap();
        let reply = send_as(&app.state, Some(&token), request).await;
        if n < 15 {
            assert_eq!(reply.status, StatusCode::CREATED, "{n}: {reply:?}");
        } else {
            reply.error(StatusCode::TOO_MANY_REQUESTS, "queue-full");
        }
    }
}

/// Runs `job` to success through the queue as a worker would (plan with no chunks, assemble).
async fn complete(queue: &dyn fresco_queue::Queue, job: &str) {
    let filter = fresco_queue::ClaimFilter {
        jobs: Some(vec![job.to_string()]),
        ..Default::default()
    };
    let lease = queue
        .claim("w", std::time::Duration::from_secs(60), &filter)
        .await
        .unwrap()
        .unwrap();
    queue.complete_plan(&lease, "{}", 0, &[]).await.unwrap();
    let lease = queue
        .claim("w", std::time::Duration::from_secs(60), &filter)
        .await
        .unwrap()
        .unwrap();
    queue.complete_job(&lease).await.unwrap();
}

#[tokio::test]
async fn every_request_counts_against_the_token_s_rate() {
    let mut app = app().await;
    app.state.auth.limits = Arc::new(RateLimits::new(&RateLimitConfig {
        requests_per_minute: 60,
        request_burst: 10,
        ..RateLimitConfig::default()
    }));
    let viewer = make_token(app.queue.as_ref(), "v", Role::Viewer).await;
    let mut limited = 0;
    for _ in 0..30 {
        let request = Request::get("/v1/jobs").body(Body::empty()).unwrap();
        let reply = send_as(&app.state, Some(&viewer), request).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            reply.error(StatusCode::TOO_MANY_REQUESTS, "rate-limited");
            limited += 1;
        }
    }
    assert_eq!(limited, 20);
    // Others are not slowed by it.
    assert_eq!(get(&app.state, "/v1/jobs").await.status, StatusCode::OK);
}

/// A request from `address` (as the served router sees it, through `ConnectInfo`).
fn from(address: &str, uri: &str, token: Option<&str>) -> Request<Body> {
    let peer = std::net::SocketAddr::new(address.parse().unwrap(), 40000);
    let mut request = Request::get(uri).extension(axum::extract::ConnectInfo(peer));
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn requests_without_valid_credentials_are_limited_per_address() {
    let mut app = app().await;
    app.state.auth.limits = Arc::new(RateLimits::new(&RateLimitConfig {
        anonymous_per_minute: 60,
        anonymous_burst: 10,
        address_failures_per_minute: 60,
        address_failure_burst: 5,
        ..RateLimitConfig::default()
    }));
    let good = make_token(app.queue.as_ref(), "good", Role::Viewer).await;
    // Guessing tokens from one address: 401 five times, then 429 with Retry-After.
    let mut seen = std::collections::BTreeMap::new();
    for n in 0..40 {
        let guess = format!("fresco_guess{n}");
        let reply = send_raw(&app.state, from("198.51.100.7", "/v1/jobs", Some(&guess))).await;
        let code = reply.body["error"]["code"].as_str().unwrap().to_string();
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            reply.error(StatusCode::TOO_MANY_REQUESTS, "too-many-failures");
            let seconds: u64 = reply.headers[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&seconds), "{reply:?}");
        } else {
            reply.error(StatusCode::UNAUTHORIZED, "invalid-token");
        }
        *seen.entry(code).or_insert(0) += 1;
    }
    assert_eq!(seen.get("invalid-token"), Some(&5), "{seen:?}");
    assert_eq!(seen.get("too-many-failures"), Some(&35), "{seen:?}");
    // While blocked, the address gets no answer to a guess, right or wrong: the good token is
    // refused there before it is looked up ...
    send_raw(&app.state, from("198.51.100.7", "/v1/jobs", Some(&good)))
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "too-many-failures");
    // ... and works from any other address, and in process.
    for address in ["198.51.100.8", "2001:db8::1"] {
        let reply = send_raw(&app.state, from(address, "/v1/jobs", Some(&good))).await;
        assert_eq!(reply.status, StatusCode::OK, "{address}: {reply:?}");
    }
    let reply = send_as(
        &app.state,
        Some(&good),
        Request::get("/v1/jobs").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    // Another address's wrong token is still a plain 401.
    send_raw(
        &app.state,
        from("198.51.100.8", "/v1/jobs", Some("fresco_x")),
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "invalid-token");

    // Requests without credentials: 10 at once per address, on every kind of route.
    for (address, uri, first) in [
        ("203.0.113.1", "/healthz", StatusCode::OK),
        ("203.0.113.2", "/v1/jobs", StatusCode::UNAUTHORIZED),
        ("203.0.113.3", "/ui/login", StatusCode::OK),
        ("203.0.113.4", "/", StatusCode::SEE_OTHER),
    ] {
        let mut statuses = Vec::new();
        for _ in 0..12 {
            let response = fresco_server::router(app.state.clone())
                .oneshot(from(address, uri, None))
                .await
                .unwrap();
            statuses.push(response.status());
        }
        assert!(
            statuses[..10].iter().all(|s| *s == first),
            "{uri}: {statuses:?}"
        );
        let over = send_raw(&app.state, from(address, uri, None)).await;
        over.error(StatusCode::TOO_MANY_REQUESTS, "address-rate-limited");
        assert!(over.headers.contains_key(header::RETRY_AFTER), "{over:?}");
    }
    // One IPv6 host is one /64: its neighbours in the prefix share its budget.
    for n in 0..10 {
        let address = format!("2001:db8:5:6::{n:x}");
        let reply = send_raw(&app.state, from(&address, "/healthz", None)).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
    send_raw(&app.state, from("2001:db8:5:6::ffff", "/healthz", None))
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "address-rate-limited");
    // A valid token is never counted against the address.
    for _ in 0..20 {
        let reply = send_raw(&app.state, from("203.0.113.2", "/v1/jobs", Some(&good))).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
}

#[tokio::test]
async fn behind_trusted_proxies_each_forwarded_client_has_its_own_budget() {
    let mut app = app().await;
    app.state.auth.limits = Arc::new(RateLimits::new(&RateLimitConfig {
        anonymous_per_minute: 60,
        anonymous_burst: 3,
        ..RateLimitConfig::default()
    }));
    app.state.auth.trusted_proxies = fresco_server::auth::TrustedProxies::new(vec![
        fresco_server::auth::client::parse_trusted_proxy("10.0.0.0/8").unwrap(),
    ]);
    let via = |peer: &str, forwarded: &str| {
        let mut request = from(peer, "/healthz", None);
        request
            .headers_mut()
            .insert("x-forwarded-for", forwarded.parse().unwrap());
        request
    };
    // Two clients behind one proxy: three each.
    for client in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..3 {
            let reply = send_raw(&app.state, via("10.0.0.5", &format!("{client}, 10.0.0.9"))).await;
            assert_eq!(reply.status, StatusCode::OK, "{client}: {reply:?}");
        }
        send_raw(&app.state, via("10.0.0.5", client))
            .await
            .error(StatusCode::TOO_MANY_REQUESTS, "address-rate-limited");
    }
    // A client that is not a trusted proxy cannot pick its address with the header.
    for n in 0..4 {
        let reply = send_raw(&app.state, via("203.0.113.9", &format!("192.0.2.{n}"))).await;
        let want = if n < 3 {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(reply.status, want, "{n}: {reply:?}");
    }
}

/// A writer for the log lines of a test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_secret_never_leaks() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut app = app().await;
    app.state.auth.event_secret = Some(Secret::new(EVENT_SECRET));
    let dir = tempfile::tempdir().unwrap();
    app.state.events = Some(fresco_server::routes::events::EventTrigger {
        output: dir.path().display().to_string(),
        style: Some("mosaic".into()),
        model: None,
        temporal: false,
    });
    let submitter = make_token(app.queue.as_ref(), "sub", Role::Submitter).await;
    let (cookie, csrf) = session(&app, &submitter).await;
    let cookie_secret = cookie.split_once('=').unwrap().1.to_string();
    let secrets = [
        app.token.clone(),
        submitter.clone(),
        cookie_secret,
        EVENT_SECRET.to_string(),
    ];

    let mut answers = Vec::new();
    let mut record = |reply: Reply| answers.push(reply.text);
    // Everything a client does, and what it gets wrong.
    for (token, uri) in [
        (Some(submitter.as_str()), "/v1/jobs"),
        (Some(app.token.as_str()), "/v1/tokens"),
        (Some(app.token.as_str()), "/v1/audit"),
        (Some(app.token.as_str()), "/openapi.json"),
        (Some(app.token.as_str()), "/v1/workers"),
        (None, "/v1/jobs"),
        (Some("fresco_wrong"), "/v1/jobs"),
    ] {
        record(
            send_as(
                &app.state,
                token,
                Request::get(uri).body(Body::empty()).unwrap(),
            )
            .await,
        );
    }
    let request = |token: &str| {
        Request::post("/v1/jobs")
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", "leak-1")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(submission(1).to_string()))
            .unwrap()
    };
    let created = send_raw(&app.state, request(&submitter)).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    record(created);
    record(send_raw(&app.state, request(&submitter)).await);
    let uri = format!("/v1/jobs?access_token={submitter}");
    record(
        send_as(
            &app.state,
            None,
            Request::get(uri).body(Body::empty()).unwrap(),
        )
        .await,
    );
    for uri in [format!("/v1/jobs/{id}"), format!("/v1/jobs/{id}/logs")] {
        let request = Request::get(uri)
            .header(header::COOKIE, cookie.clone())
            .body(Body::empty())
            .unwrap();
        record(send_raw(&app.state, request).await);
    }
    let cancel = Request::post(format!("/v1/jobs/{id}/cancel"))
        .header(header::COOKIE, cookie.clone())
        .header("x-csrf-token", csrf.clone())
        .body(Body::empty())
        .unwrap();
    record(send_raw(&app.state, cancel).await);
    let event = json!([{"eventType": "Microsoft.Storage.BlobCreated", "data": {"url": "https://a.blob.core.windows.net/c/in.mp4", "eTag": "e1"}}]);
    for secret in [EVENT_SECRET, "wrong-secret-0123456789"] {
        let request = Request::post("/v1/events/azure")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-fresco-event-secret", secret)
            .body(Body::from(event.to_string()))
            .unwrap();
        record(send_raw(&app.state, request).await);
    }

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        !logs.is_empty(),
        "nothing was logged: the check would prove nothing"
    );
    let jobs: Vec<String> = app
        .queue
        .jobs(&[], 100)
        .await
        .unwrap()
        .iter()
        .map(|j| {
            format!(
                "{} {} {}",
                serde_json::to_string(j).unwrap(),
                j.spec,
                j.identity
            )
        })
        .collect();
    let audit = serde_json::to_string(
        &app.queue
            .audit_log(&fresco_queue::AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap(),
    )
    .unwrap();
    let mut database = Vec::new();
    for entry in std::fs::read_dir(app.dir()).unwrap() {
        database.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let database = String::from_utf8_lossy(&database);
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret is in the log");
        for answer in &answers {
            assert!(
                !answer.contains(secret.as_str()),
                "a secret is in an answer: {answer}"
            );
        }
        for job in &jobs {
            assert!(
                !job.contains(secret.as_str()),
                "a secret is in a job record"
            );
        }
        assert!(
            !audit.contains(secret.as_str()),
            "a secret is in the audit trail"
        );
        assert!(
            !database.contains(secret.as_str()),
            "a secret is in the database file"
        );
    }
    assert!(!logs.contains(&csrf) && !audit.contains(&csrf) && !database.contains(&csrf));
}

#[tokio::test]
async fn https_serves_with_a_certificate_that_clients_verify() {
    let app = app().await;
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    // Files that cannot be used are named.
    let wrong = fresco_server::tls::server_config(&key, &key)
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("key.pem"), "{wrong}");
    let config = fresco_server::tls::server_config(&cert, &key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(fresco_server::tls::serve_tls(
        listener,
        app.state.clone(),
        config,
        async {
            let _ = stopped.await;
        },
    ));
    let token = app.token.clone();
    let pem = certified.cert.pem();
    tokio::task::spawn_blocking(move || {
        let url = format!("https://localhost:{port}/v1/jobs");
        // Not trusted by default.
        let refused = fresco_testkit::http::get(&url).try_send(None).unwrap_err();
        assert!(
            refused.to_lowercase().contains("certificate") || refused.contains("UnknownIssuer"),
            "{refused}"
        );
        // Trusted with the certificate as CA.
        let ca = ureq::tls::Certificate::from_pem(pem.as_bytes()).unwrap();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
            .build();
        let agent =
            ureq::Agent::new_with_config(ureq::Agent::config_builder().tls_config(tls).build());
        let mut response = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        assert!(body["jobs"].is_array());
    })
    .await
    .unwrap();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
