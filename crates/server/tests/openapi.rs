//! `/openapi.json` is a valid OpenAPI 3 document that documents exactly the JSON API's routes,
//! [`fresco_server::routes::ROUTES`] (the table the router is built from), each route is
//! served, and each operation's security and error answers match its rule.

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use fresco_server::auth::AuthKind;
use fresco_server::routes::ROUTES;

#[tokio::test]
async fn the_document_lists_every_route_and_only_those() {
    let app = app().await;
    let reply = get(&app.state, "/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.body;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "not OpenAPI 3: {}",
        doc["openapi"]
    );
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete", "head", "options"]
                .contains(&method.as_str())
            {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_lowercase(), r.openapi_path()))
        .collect();
    assert_eq!(documented, expected, "the document and ROUTES differ");

    // Every listed route is served (not the 404/405 fallbacks).
    for route in ROUTES {
        let (method, path) = (&route.method, route.path);
        let uri = path
            .replace("{id}", "some-id")
            .replace("{*key}", "some/key");
        let request = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let reply = send(&app.state, request).await;
        let code = reply.body["error"]["code"].as_str().unwrap_or("");
        assert!(
            code != "route-not-found" && code != "method-not-allowed",
            "{method} {uri} is documented but not served: {reply:?}"
        );
    }
}

#[tokio::test]
async fn every_operation_documents_its_errors_with_the_error_schema() {
    let app = app().await;
    let doc = get(&app.state, "/openapi.json").await.body;
    let error_ref = "#/components/schemas/ErrorBody";
    let expect: &[(&str, &str, &[&str])] = &[
        (
            "post",
            "/v1/jobs",
            &[
                "200", "201", "400", "401", "403", "409", "413", "415", "422", "429", "500", "503",
            ],
        ),
        (
            "get",
            "/v1/jobs",
            &["200", "400", "401", "403", "429", "500"],
        ),
        (
            "get",
            "/v1/jobs/{id}",
            &["200", "401", "403", "404", "429", "500"],
        ),
        (
            "post",
            "/v1/jobs/{id}/cancel",
            &["200", "401", "403", "404", "409", "429", "500"],
        ),
        (
            "post",
            "/v1/jobs/{id}/retry",
            &["200", "401", "403", "404", "409", "429", "500"],
        ),
        // Public: limited per client address.
        ("get", "/readyz", &["200", "429", "503"]),
        ("get", "/v1/workers", &["200", "401", "403", "429", "500"]),
    ];
    for (method, path, statuses) in expect {
        let responses = doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}: no responses"));
        let got: BTreeSet<&str> = responses.keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = statuses.iter().copied().collect();
        assert_eq!(got, want, "{method} {path}");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"], error_ref,
                    "{method} {path} {status}"
                );
            }
        }
    }
    // The submission schema says that exactly one of style and model is given.
    let submit = &doc["components"]["schemas"]["SubmitRequest"];
    assert!(submit["allOf"][1]["oneOf"].is_array(), "{submit}");
    assert_eq!(
        submit["allOf"][0]["additionalProperties"], false,
        "{submit}"
    );
}

#[tokio::test]
async fn every_operation_declares_the_authentication_of_its_rule() {
    let app = app().await;
    let doc = get(&app.state, "/openapi.json").await.body;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["session"]["in"], "cookie", "{schemes}");
    assert_eq!(schemes["session"]["name"], "fresco_session", "{schemes}");
    assert_eq!(schemes["eventSecret"]["in"], "header", "{schemes}");
    for route in ROUTES {
        let method = route.method.as_str().to_lowercase();
        let operation = &doc["paths"][route.openapi_path()][&method];
        let names: BTreeSet<String> = operation["security"]
            .as_array()
            .map(|list| {
                list.iter()
                    .flat_map(|r| r.as_object().unwrap().keys().cloned())
                    .collect()
            })
            .unwrap_or_default();
        let want: BTreeSet<String> = match route.auth {
            AuthKind::Public | AuthKind::SignIn | AuthKind::Signature => BTreeSet::new(),
            AuthKind::Bearer => ["bearer".to_string()].into(),
            AuthKind::Api => ["bearer".to_string(), "session".to_string()].into(),
            AuthKind::Session | AuthKind::Page => ["session".to_string()].into(),
            AuthKind::EventSecret => ["eventSecret".to_string()].into(),
        };
        assert_eq!(names, want, "{method} {}", route.path);
        let has = |status: &str| operation["responses"][status].is_object();
        if !want.is_empty() {
            assert!(
                has("401") && has("429"),
                "{method} {}: {operation}",
                route.path
            );
            assert_eq!(
                operation["responses"]["429"]["headers"]["Retry-After"]["schema"]["type"],
                "integer",
                "{method} {}",
                route.path
            );
        }
        if route.auth.has_roles() {
            assert!(has("403"), "{method} {}: {operation}", route.path);
        }
    }
}
