//! `fresco tokens` and `fresco serve --tls-cert/--tls-key` end to end: tokens made on the
//! database, an HTTPS server with a certificate made in the test, and `fresco jobs --server
//! https://...` that verifies it (with `--ca-cert`) and presents the token (`--token-file`).

mod common;

use std::time::Duration;

use common::jobs::{read_log, wait_until};
use common::*;

fn tokens(db: &str, args: &[&str]) -> Out {
    let mut all = vec!["tokens"];
    all.extend_from_slice(args);
    all.extend(["--db", db]);
    fresco(all)
}

#[test]
fn tokens_are_made_listed_and_revoked_on_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("queue.db").display());
    let made = tokens(
        &db,
        &[
            "create",
            "--role",
            "submitter",
            "--name",
            "ci",
            "--expires",
            "30d",
        ],
    )
    .ok();
    let secret = made.stdout.trim().to_string();
    assert!(
        secret.starts_with("fresco_") && secret.len() > 40,
        "{}",
        made.dump()
    );
    assert!(made.stderr.contains("shown only now"), "{}", made.dump());
    tokens(&db, &["create", "--role", "viewer", "--name", "ci"]).fails(2, "", &["ci", "exists"]);
    tokens(&db, &["create", "--role", "root"]).fails(2, "", &["root"]);
    let listed = tokens(&db, &["list"]).ok();
    assert!(
        listed.stdout.contains("ci") && listed.stdout.contains("submitter"),
        "{}",
        listed.dump()
    );
    assert!(!listed.stdout.contains(&secret) && !listed.stderr.contains(&secret));
    tokens(&db, &["revoke", "ci"]).ok();
    let listed = tokens(&db, &["list", "--json"]).ok().json();
    assert!(listed[0]["revoked_at_ms"].is_i64(), "{listed}");
    tokens(&db, &["revoke", "nobody"]).fails(3, "", &["nobody"]);
    let audit = tokens(&db, &["audit"]).ok();
    assert!(
        audit.stdout.contains("token-create") && audit.stdout.contains("token-revoke"),
        "{}",
        audit.dump()
    );
}

#[test]
fn https_with_a_private_ca_and_a_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("queue.db").display());
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let token = tokens(&db, &["create", "--role", "viewer"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &token).unwrap();

    // Unusable TLS files are refused at start, naming the file.
    let bad = fresco_cmd()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "0",
            "--db",
            &db,
        ])
        .arg("--tls-cert")
        .arg(&key)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("key.pem"),
        "{bad:?}"
    );

    let log = dir.path().join("serve.log");
    let mut child = fresco_cmd()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "0",
            "--db",
            &db,
        ])
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .log_to(&log)
        .spawn()
        .unwrap();
    let mut port = String::new();
    wait_until(Duration::from_secs(30), "the server to listen", || {
        let text = read_log(&log);
        if let Some(rest) = text.split("listening on https://").nth(1) {
            port = rest
                .split_whitespace()
                .next()
                .unwrap_or("")
                .rsplit(':')
                .next()
                .unwrap_or("")
                .to_string();
        }
        !port.is_empty()
    });
    let server = format!("https://localhost:{port}");
    let list = |extra: &[&std::ffi::OsStr]| {
        let mut cmd = fresco_cmd();
        cmd.args(["jobs", "list", "--server", &server])
            .args(extra)
            .env_remove("FRESCO_TOKEN");
        run_with_timeout(&mut cmd, Duration::from_secs(60))
    };
    let ca = cert.as_os_str();
    let file = token_file.as_os_str();
    // Trusted and authenticated.
    let ok = list(&["--ca-cert".as_ref(), ca, "--token-file".as_ref(), file]);
    assert_eq!(ok.code, Some(0), "{}", ok.dump());
    // The certificate is not trusted without --ca-cert.
    let untrusted = list(&["--token-file".as_ref(), file]);
    assert_eq!(untrusted.code, Some(6), "{}", untrusted.dump());
    assert!(
        untrusted.stderr.to_lowercase().contains("certificate"),
        "{}",
        untrusted.dump()
    );
    // No token: 401, with a hint.
    let anonymous = list(&["--ca-cert".as_ref(), ca]);
    assert_eq!(anonymous.code, Some(2), "{}", anonymous.dump());
    assert!(
        anonymous.stderr.contains("FRESCO_TOKEN"),
        "{}",
        anonymous.dump()
    );
    // `fresco top --server` takes the same options and meets the same refusals.
    let top = |extra: &[&std::ffi::OsStr]| {
        let mut cmd = fresco_cmd();
        cmd.args(["top", "--once", "--server", &server])
            .args(extra)
            .env_remove("FRESCO_TOKEN");
        run_with_timeout(&mut cmd, Duration::from_secs(60))
    };
    let ok = top(&["--ca-cert".as_ref(), ca, "--token-file".as_ref(), file]);
    assert_eq!(ok.code, Some(0), "{}", ok.dump());
    assert!(ok.stdout.starts_with("fresco top"), "{}", ok.dump());
    let untrusted = top(&["--token-file".as_ref(), file]);
    assert_eq!(untrusted.code, Some(6), "{}", untrusted.dump());
    assert!(
        untrusted.stderr.to_lowercase().contains("certificate"),
        "{}",
        untrusted.dump()
    );
    let anonymous = top(&["--ca-cert".as_ref(), ca]);
    assert_eq!(anonymous.code, Some(2), "{}", anonymous.dump());
    assert!(
        anonymous.stderr.contains("FRESCO_TOKEN"),
        "{}",
        anonymous.dump()
    );
    // A token in the URL is refused before anything is sent.
    let mut cmd = fresco_cmd();
    cmd.args([
        "jobs",
        "list",
        "--server",
        &format!("{server}/?token={token}"),
    ]);
    let in_url = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert_eq!(in_url.code, Some(2), "{}", in_url.dump());
    let status = terminate(&mut child, Duration::from_secs(30), "fresco serve");
    assert!(status.success(), "{}", read_log(&log));
    assert!(
        !read_log(&log).contains(&token),
        "the token is in the server's log"
    );
}
