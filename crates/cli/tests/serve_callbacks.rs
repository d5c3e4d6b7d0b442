//! `fresco serve`'s completion callbacks end to end: `--callback-allow` (flag and variable)
//! lets a local receiver in and nothing else, and a callback pending when the server stops is
//! delivered, once and signed with `--webhook-secret-file`'s secret, by the next server.

mod common;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::jobs::{read_log, wait_until};
use common::*;
use hmac::{KeyInit as _, Mac as _};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request a receiver got: lowercase header names, and the body.
type Delivery = (HashMap<String, String>, Vec<u8>);

/// A minimal HTTP receiver on 127.0.0.1 that records each request and answers 204.
fn receiver() -> (u16, Arc<Mutex<Vec<Delivery>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let seen = Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = HashMap::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.trim_end().split_once(':') {
                    headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
                }
            }
            let length: usize = headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            seen.lock().unwrap().push((headers, body));
            let _ = stream.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, got)
}

/// `fresco serve` with no workers (jobs stay queued until canceled), the data store `data`,
/// the test secret, and `extra`; its URL, from its log.
fn serve(
    dir: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, String, std::path::PathBuf) {
    let stamp = std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos();
    let log = dir.join(format!("serve-{stamp}.log"));
    let secret = dir.join("webhook-secrets");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let mut command = fresco_cmd();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "0"])
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--db")
        .arg(format!("sqlite://{}", dir.join("queue.db").display()))
        .arg("--work-dir")
        .arg(dir.join("work"))
        .arg("--webhook-secret-file")
        .arg(&secret)
        .args(extra)
        .log_to(&log);
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().expect("start fresco serve");
    let base = word_after(&log, "listening on ", Duration::from_secs(30));
    (child, base, log)
}

fn stop(child: &mut Child) {
    terminate(child, Duration::from_secs(30), "fresco serve after SIGTERM");
}

fn post(url: &str, token: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let answer = fresco_testkit::http::post(url)
        .bearer(token)
        .send_json(&body);
    let json = serde_json::from_slice(&answer.body).unwrap_or_default();
    (answer.status, json)
}

#[test]
fn a_pending_callback_is_delivered_once_signed_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    make_h264(&dir.path().join("data/clip.mp4"), "64x48", 25, 0.4);
    let db = format!("sqlite://{}", dir.path().join("queue.db").display());
    let token = fresco([
        s("tokens"),
        s("create"),
        s("--role"),
        s("admin"),
        s("--name"),
        s("admin"),
        s("--db"),
        s(&db),
    ])
    .ok()
    .stdout
    .trim()
    .to_string();
    let (port, received) = receiver();
    let job = |callback: String| {
        serde_json::json!({ "input": "clip.mp4", "output": "styled/a.mp4", "style": "vintage",
            "callback_url": callback })
    };

    let (mut first, base, log) = serve(dir.path(), &["--callback-allow", "127.0.0.1"], &[]);
    // No event secret: the event routes are off, and the log says why.
    let answer = fresco_testkit::http::post(&format!("{base}/v1/events/s3"))
        .send(
            br#"{"Type": "SubscriptionConfirmation", "SubscribeURL": "https://sns.us-east-1.amazonaws.com/"}"#,
        )
        .expect(404)
        .json();
    assert_eq!(answer["error"]["code"], "events-disabled", "{answer}");
    let text = read_log(&log);
    assert!(
        text.contains("storage event routes (/v1/events/...) are off: no event secret"),
        "{text}"
    );
    // Only what was allowed: another loopback address is still refused.
    let (status, body) = post(
        &format!("{base}/v1/jobs"),
        &token,
        job(format!("http://127.0.0.2:{port}/hook")),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "callback-url-not-allowed", "{body}");
    let (status, body) = post(
        &format!("{base}/v1/jobs"),
        &token,
        job(format!("http://127.0.0.1:{port}/hook/PATH-SECRET")),
    );
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    // The server stops while the job is still queued.
    stop(&mut first);
    assert!(received.lock().unwrap().is_empty());

    // The next server (allowing by the variable this time) ends the job and delivers.
    let (mut second, base, _) = serve(dir.path(), &[], &[("FRESCO_CALLBACK_ALLOW", "127.0.0.1")]);
    let (status, body) = post(
        &format!("{base}/v1/jobs/{id}/cancel"),
        &token,
        serde_json::json!({}),
    );
    assert!(status < 300, "{status} {body}");
    wait_until(Duration::from_secs(20), "the callback", || {
        !received.lock().unwrap().is_empty()
    });
    // The delivery loop polls every 2 s: a second delivery would come within this.
    std::thread::sleep(Duration::from_secs(5));
    stop(&mut second);

    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1, "exactly one delivery");
    let (headers, body) = &received[0];
    let id_header = &headers["webhook-id"];
    let timestamp = &headers["webhook-timestamp"];
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id_header}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(headers["webhook-signature"], expected);
    let job: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["state"], "canceled");
    // The logs name the receiver's host, never its path.
    for log in std::fs::read_dir(dir.path()).unwrap() {
        let path = log.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            assert!(
                !read_log(&path).contains("PATH-SECRET"),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn a_bad_callback_allowance_or_secret_file_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("queue.db").display());
    let serve = |extra: &[&str]| {
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "0",
            "--db",
            &db,
        ];
        args.extend_from_slice(extra);
        fresco(args.iter().map(|a| s(a)))
    };
    serve(&["--callback-allow", "not a host!"]).fails(4, "--callback-allow", &["not a host"]);
    serve(&["--callback-allow", "10.0.0.0/33"]).fails(4, "--callback-allow", &["CIDR"]);
    let secrets = dir.path().join("secrets.txt");
    std::fs::write(&secrets, "whsec_c2hvcnQ=\n").unwrap();
    let path = secrets.display().to_string();
    serve(&["--webhook-secret-file", &path]).fails(4, "secrets.txt", &["line 1", "whsec_"]);
    serve(&["--webhook-secret-file", "/no/such/file"]).fails(4, "/no/such/file", &["webhook"]);
}
