//! Registry resolution and download, against a loopback HTTP server
//! (127.0.0.1 only; no external traffic). Process env vars are not used.

use fresco_infer::registry::{
    sha256_file, Location, ModelSource, Pin, Registry, RegistryError, ResolvedModel,
};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use tempfile::TempDir;

/// How the test server answers every request.
#[derive(Clone)]
enum Reply {
    /// 200 with the whole body.
    Body(Vec<u8>),
    /// 200 with `Content-Length: body.len()`, then only half the body, then close.
    Truncated(Vec<u8>),
    /// A bare status with an empty body.
    Status(u16, &'static str),
}

struct Server {
    base_url: String,
    hits: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(reply: Reply) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}/zoo/", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (h, p) = (hits.clone(), paths.clone());
        // Detached: it dies with the test process.
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                h.fetch_add(1, Ordering::SeqCst);
                let _ = handle(stream, &reply, &p);
            }
        });
        Server {
            base_url,
            hits,
            paths,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn handle(mut stream: TcpStream, reply: &Reply, paths: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    paths
        .lock()
        .unwrap()
        .push(line.split_whitespace().nth(1).unwrap_or("").to_string());
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    match reply {
        Reply::Body(body) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(body)?;
        }
        Reply::Truncated(body) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body[..body.len() / 2])?;
        }
        Reply::Status(code, text) => {
            write!(
                stream,
                "HTTP/1.1 {code} {text}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
        }
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// Deterministic bytes standing in for a model, large enough to need several reads.
fn fake_model() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    let dir = TempDir::new().unwrap();
    let f = dir.path().join("x");
    std::fs::write(&f, bytes).unwrap();
    sha256_file(&f).unwrap()
}

struct Fixture {
    _dir: TempDir,
    model_dir: PathBuf,
    cache_dir: PathBuf,
}

fn fixture() -> Fixture {
    let dir = TempDir::new().unwrap();
    let model_dir = dir.path().join("models");
    let cache_dir = dir.path().join("cache");
    std::fs::create_dir_all(&model_dir).unwrap();
    Fixture {
        _dir: dir,
        model_dir,
        cache_dir,
    }
}

fn registry(fx: &Fixture, base_url: &str, pin: Pin) -> Registry {
    Registry::new(
        Some(fx.model_dir.clone()),
        fx.cache_dir.clone(),
        base_url.to_string(),
    )
    .with_pins([("udnie", Some(pin))])
}

/// Files in a directory (none when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn right_digest_installs_into_cache_and_second_resolve_uses_it() {
    let body = fake_model();
    let server = Server::start(Reply::Body(body.clone()));
    let fx = fixture();
    let reg = registry(
        &fx,
        &server.base_url,
        Pin::new(sha256_hex(&body), body.len() as u64),
    );

    let first = reg.resolve("udnie", true).unwrap();
    let expected = fx.cache_dir.join("udnie.onnx");
    assert_eq!(
        first,
        ResolvedModel::File {
            name: "udnie",
            path: expected.clone(),
            source: ModelSource::Downloaded
        }
    );
    assert_eq!(std::fs::read(&expected).unwrap(), body);
    assert_eq!(entries(&fx.cache_dir), ["udnie.onnx"], "no temp files left");
    assert_eq!(server.hits(), 1);
    assert_eq!(
        server.paths.lock().unwrap().as_slice(),
        ["/zoo/udnie-9.onnx"]
    );

    let second = reg.resolve("udnie", true).unwrap();
    assert_eq!(
        second,
        ResolvedModel::File {
            name: "udnie",
            path: expected.clone(),
            source: ModelSource::Cache
        }
    );
    assert_eq!(server.hits(), 1, "second resolve must not make a request");
    assert_eq!(
        reg.locate("udnie").unwrap(),
        Location::Found {
            path: expected,
            source: ModelSource::Cache
        }
    );

    // pull keeps a cached file that already matches the pin.
    reg.pull("udnie").unwrap();
    assert_eq!(server.hits(), 1);
}

#[test]
fn wrong_digest_is_rejected_and_leaves_nothing() {
    let body = fake_model();
    let server = Server::start(Reply::Body(body.clone()));
    let fx = fixture();
    let wrong = sha256_hex(b"something else");
    let reg = registry(
        &fx,
        &server.base_url,
        Pin::new(wrong.clone(), body.len() as u64),
    );

    let err = reg.resolve("udnie", true).unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    let url = format!("{}udnie-9.onnx", server.base_url);
    assert!(
        msg.contains(&format!(
            "downloaded udnie-9.onnx from {url} has sha256 {}, expected {wrong}",
            sha256_hex(&body)
        )),
        "{msg}"
    );
    assert!(!fx.cache_dir.join("udnie.onnx").exists());
    assert!(
        entries(&fx.cache_dir).is_empty(),
        "left behind: {:?}",
        entries(&fx.cache_dir)
    );
}

#[test]
fn truncated_transfer_is_rejected_and_leaves_nothing() {
    let body = fake_model();
    let server = Server::start(Reply::Truncated(body.clone()));
    let fx = fixture();
    let reg = registry(
        &fx,
        &server.base_url,
        Pin::new(sha256_hex(&body), body.len() as u64),
    );

    let err = reg.resolve("udnie", true).unwrap_err();
    let msg = err.to_string();
    let RegistryError::Truncated {
        received, expected, ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(received, body.len() as u64 / 2);
    assert_eq!(expected, body.len() as u64);
    assert!(msg.contains(&server.base_url), "{msg}");
    assert!(!fx.cache_dir.join("udnie.onnx").exists());
    assert!(
        entries(&fx.cache_dir).is_empty(),
        "left behind: {:?}",
        entries(&fx.cache_dir)
    );
}

#[test]
fn http_404_names_url_and_status() {
    let server = Server::start(Reply::Status(404, "Not Found"));
    let fx = fixture();
    let reg = registry(&fx, &server.base_url, Pin::new("00".repeat(32), 10));

    let err = reg.resolve("udnie", true).unwrap_err();
    assert!(
        matches!(err, RegistryError::HttpStatus { status: 404, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{}udnie-9.onnx", server.base_url)),
        "{msg}"
    );
    assert!(msg.contains("404"), "{msg}");
    assert!(entries(&fx.cache_dir).is_empty());
}

#[test]
fn size_mismatch_from_content_length_is_rejected() {
    let body = fake_model();
    let server = Server::start(Reply::Body(body.clone()));
    let fx = fixture();
    let reg = registry(
        &fx,
        &server.base_url,
        Pin::new(sha256_hex(&body), body.len() as u64 - 1),
    );

    let err = reg.resolve("udnie", true).unwrap_err();
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err:?}");
    assert!(entries(&fx.cache_dir).is_empty());
}

#[test]
fn connection_refused_gives_clear_error_with_install_hint() {
    // Bind then drop, so nothing listens on the port.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base_url = format!("http://127.0.0.1:{port}/zoo/");
    let fx = fixture();
    let reg = registry(&fx, &base_url, Pin::new("00".repeat(32), 10));

    let err = reg.resolve("udnie", true).unwrap_err();
    assert!(matches!(err, RegistryError::Network { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("could not download {base_url}udnie-9.onnx")),
        "{msg}"
    );
    assert!(
        msg.contains(&fx.model_dir.join("udnie.onnx").display().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains(&fx.cache_dir.join("udnie.onnx").display().to_string()),
        "{msg}"
    );
    assert!(entries(&fx.cache_dir).is_empty());
}

#[test]
fn offline_missing_names_model_dir_and_cache_paths() {
    let server = Server::start(Reply::Status(500, "Should Not Be Called"));
    let fx = fixture();
    let reg = registry(&fx, &server.base_url, Pin::new("00".repeat(32), 10));

    assert_eq!(
        reg.locate("udnie").unwrap(),
        Location::Missing {
            expected_paths: vec![
                fx.model_dir.join("udnie.onnx"),
                fx.cache_dir.join("udnie.onnx")
            ]
        }
    );
    let err = reg.resolve("udnie", false).unwrap_err();
    assert!(matches!(err, RegistryError::Offline { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("$FRESCO_MODEL_DIR"), "{msg}");
    assert!(
        msg.contains(&fx.model_dir.join("udnie.onnx").display().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains(&fx.cache_dir.join("udnie.onnx").display().to_string()),
        "{msg}"
    );
    assert_eq!(server.hits(), 0);
}

#[test]
fn model_dir_takes_precedence_over_cache() {
    let server = Server::start(Reply::Status(500, "Should Not Be Called"));
    let fx = fixture();
    std::fs::create_dir_all(&fx.cache_dir).unwrap();
    std::fs::write(fx.model_dir.join("mosaic.onnx"), b"from model dir").unwrap();
    std::fs::write(fx.cache_dir.join("mosaic.onnx"), b"from cache").unwrap();
    let reg = Registry::new(
        Some(fx.model_dir.clone()),
        fx.cache_dir.clone(),
        server.base_url.clone(),
    );

    let path = fx.model_dir.join("mosaic.onnx");
    assert_eq!(
        reg.resolve("mosaic", true).unwrap(),
        ResolvedModel::File {
            name: "mosaic",
            path: path.clone(),
            source: ModelSource::ModelDir
        }
    );
    let entry = reg.list().into_iter().find(|e| e.name == "mosaic").unwrap();
    assert!(entry.present);
    assert_eq!(entry.path, Some(path));
    assert_eq!(server.hits(), 0);

    // Without the model-dir file, the cache copy is used.
    std::fs::remove_file(fx.model_dir.join("mosaic.onnx")).unwrap();
    assert_eq!(
        reg.resolve("mosaic", false).unwrap(),
        ResolvedModel::File {
            name: "mosaic",
            path: fx.cache_dir.join("mosaic.onnx"),
            source: ModelSource::Cache
        }
    );
}

#[test]
fn pull_downloads_into_cache_even_when_model_dir_has_it() {
    let body = fake_model();
    let server = Server::start(Reply::Body(body.clone()));
    let fx = fixture();
    std::fs::write(fx.model_dir.join("udnie.onnx"), b"local").unwrap();
    let reg = registry(
        &fx,
        &server.base_url,
        Pin::new(sha256_hex(&body), body.len() as u64),
    );

    let path = reg.pull("udnie").unwrap();
    assert_eq!(path, fx.cache_dir.join("udnie.onnx"));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(server.hits(), 1);
}

#[test]
fn unpinned_style_refuses_to_download() {
    let server = Server::start(Reply::Status(500, "Should Not Be Called"));
    let fx = fixture();
    let reg = Registry::new(
        Some(fx.model_dir.clone()),
        fx.cache_dir.clone(),
        server.base_url.clone(),
    );

    let err = reg.resolve("mosaic", true).unwrap_err();
    assert!(
        matches!(err, RegistryError::NoPinnedDigest { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("no pinned digest for mosaic"), "{msg}");
    assert!(msg.contains("mosaic.onnx"), "{msg}");
    assert_eq!(server.hits(), 0);
}

#[test]
fn unknown_style_lists_valid_names() {
    let fx = fixture();
    let reg = Registry::new(None, fx.cache_dir.clone(), "http://127.0.0.1:9/".into());
    for result in [
        reg.locate("starry-night").map(|_| ()),
        reg.resolve("starry-night", true).map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, RegistryError::UnknownStyle { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("starry-night"), "{msg}");
        for name in [
            "mosaic",
            "candy",
            "udnie",
            "rain-princess",
            "pointilism",
            "vintage",
        ] {
            assert!(msg.contains(name), "{msg} lacks {name}");
        }
    }
    // Names are matched exactly; nothing that looks like a path gets through.
    assert!(reg.locate("../udnie").is_err());
}

#[test]
fn vintage_is_builtin() {
    let fx = fixture();
    let reg = Registry::new(
        Some(fx.model_dir.clone()),
        fx.cache_dir.clone(),
        "http://127.0.0.1:9/".into(),
    );
    assert_eq!(reg.locate("vintage").unwrap(), Location::Builtin);
    assert_eq!(
        reg.resolve("vintage", true).unwrap(),
        ResolvedModel::Builtin { name: "vintage" }
    );
    assert_eq!(
        reg.resolve("vintage", false).unwrap(),
        ResolvedModel::Builtin { name: "vintage" }
    );
    assert!(matches!(
        reg.pull("vintage"),
        Err(RegistryError::NotDownloadable { .. })
    ));
    assert!(!fx.cache_dir.exists());
    let entry = reg
        .list()
        .into_iter()
        .find(|e| e.name == "vintage")
        .unwrap();
    assert!(entry.present && entry.path.is_none());
    assert_eq!(
        entry.kind,
        "built-in filter (hand-built ONNX graph, not learned)"
    );
}
