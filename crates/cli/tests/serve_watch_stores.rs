//! `fresco serve --watch` on object stores, end to end: a video uploaded into a watched Azure
//! Blob container with Microsoft's own Python client (`azure-storage-blob`, on Azurite) becomes
//! one job; its styled output, with its audio, appears under the output prefix; chunks go
//! through an object system store; a server killed mid-job and started again neither loses nor
//! duplicates the job; and the same object seen again by a restarted server makes no second
//! job. Also the upload route (`POST /v1/uploads` + a signed `PUT`) into a local data store.
//!
//! The Azure test runs when `FRESCO_TEST_AZURITE=1` (after `eval "$(scripts/azurite.sh)"`)
//! and python3 can import `azure.storage.blob` (scripts/test.sh installs it into
//! .fresco/venv); it says SKIPPED otherwise, and fails with `FRESCO_REQUIRE_AZURITE=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::jobs::{read_log, wait_until};
use common::objects;
use common::*;

/// Microsoft's Python client, driven through a small script: `mkcontainer NAME...`,
/// `upload CONTAINER BLOB FILE` (prints the ETag), `list CONTAINER` (one name per line).
const AZURE_SDK: &str = r#"
import os, sys
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient
service = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
verb, args = sys.argv[1], sys.argv[2:]
if verb == "mkcontainer":
    for name in args:
        try:
            service.create_container(name)
        except ResourceExistsError:
            pass
elif verb == "upload":
    container, blob, path = args
    with open(path, "rb") as data:
        result = service.get_blob_client(container, blob).upload_blob(data, overwrite=True)
    print(result["etag"])
elif verb == "list":
    for blob in service.get_container_client(args[0]).list_blobs():
        print(blob.name)
else:
    sys.exit("unknown verb " + verb)
"#;

fn python() -> String {
    std::env::var("FRESCO_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether the Azure tests can run: Azurite is up and the Python client is importable.
fn azure_ready(test: &str) -> bool {
    let required = fresco_testkit::azurite::required();
    if !fresco_testkit::azurite::enabled(test) {
        return false;
    }
    let imported = Command::new(python())
        .args(["-c", "import azure.storage.blob"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !imported {
        assert!(
            !required,
            "FRESCO_REQUIRE_AZURITE=1 but `{} -c 'import azure.storage.blob'` fails: \
             pip install azure-storage-blob (scripts/test.sh does)",
            python()
        );
        println!("SKIPPED: {test}: python3 cannot import azure.storage.blob (pip install azure-storage-blob)");
        return false;
    }
    true
}

fn sdk(args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(AZURE_SDK)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "azure-storage-blob {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{:x}{nanos:08x}", std::process::id())
}

/// A `fresco serve` process, killed when dropped.
struct Serve {
    child: Child,
    log: PathBuf,
    base: String,
}

impl Serve {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
        let log = dir.join(format!(
            "serve-{}.log",
            std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos()
        ));
        let mut command = fresco_cmd();
        if args.contains(&"--config") {
            // The file's `data` must not lose to the test harness's FRESCO_DATA.
            command.env_remove("FRESCO_DATA");
        }
        let child = command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg("--db")
            .arg(format!("sqlite://{}", dir.join("queue.db").display()))
            .args(args)
            .envs(env.iter().copied())
            .log_to(&log)
            .spawn()
            .expect("start fresco serve");
        let base = word_after(&log, "listening on ", Duration::from_secs(30));
        Serve { child, log, base }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn stop(&mut self) {
        terminate(
            &mut self.child,
            Duration::from_secs(60),
            "fresco serve after SIGTERM",
        );
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The jobs in the queue, read from the database (not the API, which may need a token).
fn jobs(dir: &Path) -> Vec<serde_json::Value> {
    let db = format!("sqlite://{}", dir.join("queue.db").display());
    let out = fresco([s("jobs"), s("list"), s("--json"), s("--db"), s(&db)]).ok();
    out.json().as_array().cloned().unwrap_or_default()
}

/// Where the watched input, the outputs and the system store live in one run of the test.
struct Stores {
    watch: String,
    output: String,
    system: String,
    data: String,
    /// Puts the clip at `in/clip.mp4` as a user would.
    upload: Box<dyn Fn(&Path)>,
    /// The keys under `data`, sorted.
    data_keys: Box<dyn Fn() -> Vec<String>>,
}

fn azure_stores(test: &str) -> Option<Stores> {
    if !azure_ready(test) {
        return None;
    }
    let (data, system) = (unique("fresco-data"), unique("fresco-sys"));
    sdk(&["mkcontainer", &data, &system]);
    let container = data.clone();
    let listed = data.clone();
    Some(Stores {
        watch: format!("az://{data}/in"),
        output: format!("az://{data}/out"),
        system: format!("az://{system}/work"),
        data: format!("az://{data}"),
        upload: Box::new(move |clip| {
            let etag = sdk(&[
                "upload",
                &container,
                "in/clip.mp4",
                &clip.display().to_string(),
            ]);
            assert!(!etag.is_empty());
        }),
        data_keys: Box::new(move || {
            let mut keys: Vec<String> = sdk(&["list", &listed]).lines().map(String::from).collect();
            keys.sort();
            keys
        }),
    })
}

fn local_stores(dir: &Path) -> Stores {
    let data = dir.join("data");
    let incoming = data.join("in");
    std::fs::create_dir_all(&incoming).unwrap();
    let listed = data.display().to_string();
    Stores {
        watch: incoming.display().to_string(),
        output: data.join("out").display().to_string(),
        system: dir.join("system").display().to_string(),
        data: data.display().to_string(),
        upload: Box::new(move |clip| {
            std::fs::copy(clip, incoming.join("clip.mp4")).unwrap();
        }),
        data_keys: Box::new(move || objects::keys(&listed)),
    }
}

/// A video put into the watched location becomes one job; its styled output with the audio
/// appears under the output location; a server killed mid-job and started again finishes the
/// same job; a server restarted after it makes no second job for the same object; the chunks
/// went through the system store and were removed, leaving the job's log archive.
fn styled_once_across_restarts(dir: &Path, stores: Stores) {
    let clip = dir.join("clip.mp4");
    make_vfr_clip_with_audio(&clip, 2);
    let args = [
        "--watch",
        stores.watch.as_str(),
        "--output",
        stores.output.as_str(),
        "--system",
        stores.system.as_str(),
        "--data",
        stores.data.as_str(),
        "--style",
        "vintage",
        "--watch-interval",
        "1",
        "--lease-seconds",
        "3",
    ];
    // Slow frames, so that the server is killed while the job runs.
    let slow = [("FRESCO_TEST_FRAME_DELAY_MS", "150")];
    let mut server = Serve::start(dir, &args, &slow);
    (stores.upload)(&clip);

    wait_until(
        Duration::from_secs(60),
        "the upload to become a running job",
        || {
            jobs(dir)
                .iter()
                .any(|j| j["state"] == "running" || j["state"] == "succeeded")
        },
    );
    let first = jobs(dir);
    assert_eq!(first.len(), 1, "one job for one object: {first:#?}");
    let id = first[0]["id"].as_str().unwrap().to_string();
    assert_eq!(first[0]["input"], format!("{}/clip.mp4", stores.watch));
    let styled_url = format!("{}/clip.vintage.mp4", stores.output);

    // Killed like a lost machine, mid-job; a new server takes over the same queue.
    server.kill();
    let log_before = read_log(&server.log);
    assert!(
        !log_before.contains("succeeded"),
        "the job ended before the server was killed; the restart was not tested:\n{log_before}"
    );
    let mut server = Serve::start(dir, &args, &[]);
    wait_until(
        Duration::from_secs(180),
        "the job to finish after the restart",
        || {
            jobs(dir).iter().any(|j| {
                j["id"] == id.as_str() && j["state"] != "running" && j["state"] != "queued"
            })
        },
    );
    let after = jobs(dir);
    assert_eq!(after.len(), 1, "the restart made no second job: {after:#?}");
    assert_eq!(
        after[0]["state"],
        "succeeded",
        "{after:#?}\nbefore the kill:\n{log_before}\nafter:\n{}",
        read_log(&server.log)
    );
    let styled = dir.join("styled.mp4");
    if styled_url.contains("://") {
        assert!(objects::exists(&styled_url), "no output at {styled_url}");
        objects::download(&styled_url, &styled);
    } else {
        std::fs::copy(&styled_url, &styled).unwrap();
    }
    assert_eq!(
        frame_times(&clip).len(),
        frame_times(&styled).len(),
        "frame count changed"
    );
    assert_eq!(audio_md5(&clip, 0), audio_md5(&styled, 0), "audio changed");
    // Only the user's object and our output in the data store; the chunks were removed from
    // the system store with the job, and the job's log was archived there.
    assert_eq!(
        (stores.data_keys)(),
        vec!["in/clip.mp4", "out/clip.vintage.mp4"]
    );
    let archive = format!("logs/{id}.log");
    // (The system store's root on a local disk also keeps the generated webhook signing key.)
    let system_keys: Vec<String> = objects::keys(&stores.system)
        .into_iter()
        .filter(|key| key != "webhook-secret")
        .collect();
    assert_eq!(
        system_keys,
        vec![archive.clone()],
        "chunks left in the system store"
    );
    let system = fresco_store::Store::from_url(&stores.system).unwrap();
    let log = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(system.get_bytes(&archive))
        .unwrap();
    let log = String::from_utf8_lossy(&log);
    assert!(
        log.contains("planned:") && log.contains("assembled and published"),
        "the archived log:\n{log}"
    );

    // Restarted again, the server sees the same object (same ETag) and makes no second job.
    server.stop();
    let server = Serve::start(dir, &args, &[]);
    wait_until(Duration::from_secs(20), "the watcher to start", || {
        read_log(&server.log).contains("watching")
    });
    std::thread::sleep(Duration::from_secs(4));
    let again = jobs(dir);
    assert_eq!(
        again.len(),
        1,
        "the same object made a second job: {again:#?}"
    );
}

#[test]
fn a_blob_uploaded_with_the_azure_sdk_is_styled_once_across_restarts() {
    let Some(stores) = azure_stores("watching an Azure container") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    styled_once_across_restarts(dir.path(), stores);
}

#[test]
fn a_file_dropped_in_a_watched_folder_is_styled_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let stores = local_stores(dir.path());
    styled_once_across_restarts(dir.path(), stores);
}

#[test]
fn an_upload_url_takes_a_file_into_the_data_store_for_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Settings from a config file: the data store, and no in-process workers.
    let config = dir.path().join("fresco.toml");
    std::fs::write(
        &config,
        format!(
            "[serve]\ndata = {:?}\nworkers = 0\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let server = Serve::start(
        dir.path(),
        &["--config", &config.display().to_string()],
        &[],
    );
    assert!(
        read_log(&server.log).contains("0 workers"),
        "{}",
        read_log(&server.log)
    );
    let clip = dir.path().join("clip.mp4");
    make_vfr_clip_with_audio(&clip, 1);
    let bytes = std::fs::read(&clip).unwrap();
    // A submitter's token, made on the database as an operator would.
    let db = format!("sqlite://{}", dir.path().join("queue.db").display());
    let made = fresco([
        s("tokens"),
        s("create"),
        s("--role"),
        s("submitter"),
        s("--name"),
        s("uploader"),
        s("--db"),
        s(&db),
    ])
    .ok();
    let token = Some(made.stdout.trim().to_string());
    // A submitter's files live in its own namespace of the data store (docs/security.md,
    // "Tenants"): its names resolve there.
    let own = data.join("tenants/uploader");
    use fresco_testkit::http;
    let post = |path: &str| {
        let request = http::post(&format!("{}{path}", server.base));
        match &token {
            Some(t) => request.bearer(t),
            None => request,
        }
    };
    // Without the token: refused.
    http::post(&format!("{}/v1/uploads", server.base))
        .send_json(&serde_json::json!({"name": "clip.mp4"}))
        .expect(401);
    let grant = post("/v1/uploads")
        .send_json(&serde_json::json!({"name": "clip.mp4"}))
        .ok()
        .json();
    let url = grant["upload_url"].as_str().unwrap().to_string();
    let input = grant["input"].as_str().unwrap().to_string();
    assert!(
        input.starts_with("uploads/") && input.ends_with("/clip.mp4"),
        "{grant}"
    );
    assert!(url.contains("sig="), "{url}");

    // Nothing is at the key before the upload; a GET with the upload URL is refused.
    assert!(!own.join(&input).exists());
    let body = http::get(&url).call().expect(403).json();
    assert_eq!(body["error"]["code"], "signature-wrong-method", "{body}");
    // A tampered path is refused. (The server answers before reading the body and closes
    // the connection, so a body larger than the socket's buffer would meet a broken pipe in
    // the client before it reads the 403: send a small one.)
    let tampered = url.replace("/clip.mp4?", "/other.mp4?");
    http::put(&tampered).send(b"not read").expect(403);
    assert!(!own.join(input.replace("clip.mp4", "other.mp4")).exists());

    let stored = http::put(&url).send(&bytes).ok().json();
    assert_eq!(stored["size"], bytes.len() as u64, "{stored}");
    assert_eq!(std::fs::read(own.join(&input)).unwrap(), bytes);
    // Once only (refused before the body is read, as above: a small body).
    http::put(&url).send(b"again").expect(409);

    // The uploaded name is a job's input, and a relative output lands in the data store.
    let submitted = post("/v1/jobs")
        .send_json(&serde_json::json!({
            "input": input,
            "output": "styled/clip.mp4",
            "style": "vintage",
        }))
        .ok()
        .json();
    assert_eq!(
        submitted["input"],
        own.join(&input).display().to_string(),
        "{submitted}"
    );
    assert_eq!(
        submitted["output"],
        own.join("styled/clip.mp4").display().to_string()
    );
    // A name that leaves the data store is refused.
    let body = post("/v1/jobs")
        .send_json(&serde_json::json!({
            "input": "../secret.mp4", "output": "styled/x.mp4", "style": "vintage"
        }))
        .expect(400)
        .json();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("input"),
        "{body}"
    );
}

#[test]
fn a_bad_config_file_is_refused_with_its_name_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fresco.toml");
    std::fs::write(&config, "[serve]\nlisten = \"127.0.0.1:0\"\nwrokers = 2\n").unwrap();
    fresco([s("serve"), s("--config"), p(&config)]).fails(
        4,
        "fresco.toml",
        &["wrokers", "no flag"],
    );
    fresco([
        s("serve"),
        s("--config"),
        p(&dir.path().join("missing.toml")),
    ])
    .fails(4, "missing.toml", &["cannot read"]);
}
