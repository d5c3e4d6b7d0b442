//! `/openapi.json` is a valid OpenAPI 3 document that documents exactly the routes of ROUTES,
//! and every route of ROUTES is served. ROUTES is kept by hand next to the router: a handler
//! added to the router but not to the document is caught here once it is listed; one neither
//! listed nor documented is not (axum cannot enumerate a router's routes).

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;

/// Every (method, path) the router serves.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/jobs"),
    ("get", "/v1/jobs"),
    ("get", "/v1/jobs/{id}"),
    ("post", "/v1/jobs/{id}/cancel"),
    ("post", "/v1/jobs/{id}/retry"),
    ("get", "/v1/jobs/{id}/logs"),
    ("get", "/v1/workers"),
    ("post", "/v1/events/azure"),
    ("post", "/v1/events/s3"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
];

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
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected, "the document and ROUTES differ");

    // Every listed route is served (not the 404/405 fallbacks).
    for (method, path) in ROUTES {
        let uri = path.replace("{id}", "some-id");
        let request = Request::builder()
            .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
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
            &["200", "201", "400", "413", "415", "422", "500", "503"],
        ),
        ("get", "/v1/jobs", &["200", "400", "500"]),
        ("get", "/v1/jobs/{id}", &["200", "404", "500"]),
        (
            "post",
            "/v1/jobs/{id}/cancel",
            &["200", "404", "409", "500"],
        ),
        ("post", "/v1/jobs/{id}/retry", &["200", "404", "409", "500"]),
        ("get", "/readyz", &["200", "503"]),
        ("get", "/v1/workers", &["200", "500"]),
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
