//! `fresco jobs ... --server URL`: the same commands through the HTTP API instead of the
//! database, for people who hold no database credentials.
//!
//! The token comes from `--token-file FILE` or `FRESCO_TOKEN` and goes in the Authorization
//! header, never in the URL. `https://` servers have their certificate verified against the
//! usual public roots or, with `--ca-cert FILE`, against the CA certificates in that file only
//! (a private CA, or a self-signed server certificate), as curl's `--cacert` does.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};

use crate::exit::{self, Failure};

/// A call's timeout: the API answers quickly; submissions probe the input and load the model.
const TIMEOUT: Duration = Duration::from_secs(120);

/// How to reach and authenticate to a server.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// A file holding the API token (default: the FRESCO_TOKEN variable).
    #[arg(long, env = "FRESCO_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The CA certificates (PEM) to trust for the server's HTTPS, instead of the public roots.
    #[arg(long, env = "FRESCO_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// A server, its HTTP agent and the token to present.
pub struct Client {
    server: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl ClientArgs {
    /// The client for `server`, with the token and trust these arguments give.
    pub fn connect(&self, server: &str) -> Result<Client, Failure> {
        if server.contains('?') || server.contains('@') {
            return Err(Failure::new(
                exit::BAD_ARGUMENTS,
                "--server: give the server's URL without credentials or a query string; the token goes in FRESCO_TOKEN or --token-file",
            ));
        }
        let token = match &self.token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Failure::new(
                        exit::BAD_ARGUMENTS,
                        format!("--token-file {}: cannot read it: {e}", path.display()),
                    )
                })?;
                let token = text.trim().to_string();
                if token.is_empty() {
                    return Err(Failure::new(
                        exit::BAD_ARGUMENTS,
                        format!("--token-file {}: the file is empty", path.display()),
                    ));
                }
                Some(token)
            }
            None => std::env::var("FRESCO_TOKEN")
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
        };
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .proxy(None);
        if let Some(ca) = &self.ca_cert {
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(trusting(ca)?)
                    .build(),
            );
        }
        Ok(Client {
            server: server.trim_end_matches('/').to_string(),
            agent: ureq::Agent::new_with_config(config.build()),
            token,
        })
    }
}

/// The CA certificates in the PEM file `ca`, as the only roots to trust.
fn trusting(ca: &std::path::Path) -> Result<ureq::tls::RootCerts, Failure> {
    let bad = |detail: String| {
        Failure::new(
            exit::BAD_ARGUMENTS,
            format!("--ca-cert {}: {detail}", ca.display()),
        )
    };
    let pem = std::fs::read(ca).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| bad(e.to_string()))? {
            // A certificate rustls cannot use as a trust anchor would only show later as every
            // connection failing: check it now.
            webpki_anchor(c.der()).map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
            certificates.push(c);
        }
    }
    if certificates.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certificates))
}

/// Whether `der` can be a root of trust (what rustls does with each root).
fn webpki_anchor(der: &[u8]) -> Result<(), String> {
    let mut store = rustls::RootCertStore::empty();
    store
        .add(rustls_pki_types::CertificateDer::from(der.to_vec()))
        .map_err(|e| e.to_string())
}

/// Calls `METHOD SERVER/PATH` with an optional JSON body; a non-2xx answer becomes a failure with
/// the API's own message and an exit code for its class.
pub fn call(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, Failure> {
    let server = &client.server;
    let url = format!("{server}{path}");
    let mut request = ureq::http::Request::builder().method(method).uri(&url);
    if let Some(token) = &client.token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let result = match body {
        Some(body) => request
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .map(|r| client.agent.run(r)),
        None => request.body(()).map(|r| client.agent.run(r)),
    }
    .map_err(|e| Failure::new(exit::BAD_ARGUMENTS, format!("{url}: {e}")))?;
    match result {
        Ok(mut response) if response.status().is_success() => {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
        }
        Ok(mut response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("Retry-After")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body: Value = response.body_mut().read_json().unwrap_or(Value::Null);
            let mut message = body["error"]["message"]
                .as_str()
                .unwrap_or("no message")
                .to_string();
            if status == 401 && client.token.is_none() {
                message.push_str(" (set FRESCO_TOKEN or --token-file)");
            }
            if let Some(seconds) = retry_after {
                message.push_str(&format!(" (retry after {seconds} s)"));
            }
            let code = match status {
                _ if body["error"]["code"] == "input-missing" => exit::INPUT_MISSING,
                _ if body["error"]["code"] == "output-exists" => exit::OUTPUT,
                // As `fresco jobs submit` exits without `--server` (see exit.rs).
                _ if body["error"]["code"] == fresco_submit::TEMPORAL_NOT_APPLICABLE => {
                    exit::BAD_ARGUMENTS
                }
                401 | 403 => exit::BAD_ARGUMENTS,
                404 => exit::INPUT_MISSING,
                400 | 409 | 413 | 415 | 422 => exit::BAD_INPUT,
                429 | 503 => exit::MISSING_DEPENDENCY,
                _ => exit::PROCESSING,
            };
            Err(Failure::new(
                code,
                format!(
                    "{server}: {message} (HTTP {status}, {})",
                    body["error"]["code"]
                ),
            ))
        }
        Err(e) => Err(Failure::new(
            exit::MISSING_DEPENDENCY,
            format!("{server}: the fresco server cannot be reached: {e}"),
        )),
    }
}

/// `GET SERVER/PATH` read into one of the server's own response types; an answer that does not
/// fit it (another version of the API) is a failure that names the path.
pub fn get<T: serde::de::DeserializeOwned>(client: &Client, path: &str) -> Result<T, Failure> {
    let value = call(client, "GET", path, None)?;
    serde_json::from_value(value).map_err(|e| {
        Failure::new(
            exit::PROCESSING,
            format!(
                "{}{path}: the answer is not what this fresco's API describes ({e}); is the server another version?",
                client.server
            ),
        )
    })
}

/// `jobs list --server`.
pub fn list(
    client: &Client,
    state: Option<&str>,
    limit: u32,
    as_json: bool,
) -> Result<ExitCode, Failure> {
    let mut path = format!("/v1/jobs?limit={limit}");
    if let Some(state) = state {
        path.push_str(&format!("&state={state}"));
    }
    let page = call(client, "GET", &path, None)?;
    let jobs = page["jobs"].as_array().cloned().unwrap_or_default();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&jobs).expect("serialises")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        eprintln!("no jobs");
    }
    for job in &jobs {
        println!("{}", job_line(job));
    }
    Ok(ExitCode::SUCCESS)
}

fn job_line(job: &Value) -> String {
    let frames = match job["frames_total"].as_u64() {
        Some(total) => format!("{}/{total} frames", job["frames_done"]),
        None => "planning".into(),
    };
    let mut line = format!(
        "{}  {:<9}  {frames}  {}/{} chunks  {} -> {}",
        text(&job["id"]),
        text(&job["state"]),
        job["chunks_done"],
        job["chunks_total"],
        text(&job["input"]),
        text(&job["output"]),
    );
    if job["state"] == "failed" {
        line.push_str(&format!("\n    error: {}", text(&job["last_error"])));
    }
    line
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string())
}

/// `jobs show --server`.
pub fn show(client: &Client, id: &str, as_json: bool) -> Result<ExitCode, Failure> {
    let job = call(client, "GET", &format!("/v1/jobs/{id}"), None)?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&job).expect("serialises")
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", job_line(&job));
    if job["temporal"].as_bool() == Some(true) {
        println!("  temporal: on (frames blended along the input's flow)");
    }
    if let Some(error) = job["last_error"].as_str() {
        println!("  error: {error}");
    }
    for task in job["tasks"].as_array().cloned().unwrap_or_default() {
        println!(
            "  {:<8} chunk {:>4}  frames {}-{}  {:<8} attempts {} expiries {}{}",
            text(&task["kind"]),
            task["chunk"],
            task["frame_start"],
            task["frame_end"],
            text(&task["state"]),
            task["attempts"],
            task["expiries"],
            task["last_error"]
                .as_str()
                .map(|e| format!("\n      error: {e}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `jobs cancel|retry --server`.
pub fn action(client: &Client, id: &str, verb: &str) -> Result<ExitCode, Failure> {
    let job = call(client, "POST", &format!("/v1/jobs/{id}/{verb}"), None)?;
    println!("{} {}", text(&job["id"]), text(&job["state"]));
    Ok(ExitCode::SUCCESS)
}

/// `jobs submit --server`: the API takes the same fields as the command's flags.
pub fn submit(client: &Client, request: &Value, as_json: bool) -> Result<ExitCode, Failure> {
    let job = call(client, "POST", "/v1/jobs", Some(request))?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&job).expect("serialises")
        );
    } else {
        println!("{}", text(&job["id"]));
    }
    Ok(ExitCode::SUCCESS)
}

/// The API's submission body from what `jobs submit` was given.
#[allow(clippy::too_many_arguments)]
pub fn submission(
    input: &str,
    output: &str,
    style: Option<&str>,
    model: Option<&str>,
    video: &crate::run::VideoArgs,
    chunk_frames: Option<u64>,
    priority: i32,
    max_attempts: u32,
    max_expiries: u32,
) -> Value {
    let mut body = json!({
        "input": input,
        "output": output,
        "overwrite": video.overwrite,
        "priority": priority,
        "max_attempts": max_attempts,
        "max_expiries": max_expiries,
        "drop_streams": video.drop_streams.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
    });
    let fields = body.as_object_mut().expect("an object");
    if let Some(style) = style {
        fields.insert("style".into(), json!(style));
    }
    if let Some(model) = model {
        fields.insert("model".into(), json!(model));
    }
    // Unset, the server's defaults apply: the container's encoder and the codec's CRF.
    for (name, value) in [("codec", &video.codec), ("preset", &video.preset)] {
        if let Some(value) = value {
            fields.insert(name.into(), json!(value));
        }
    }
    if let Some(crf) = video.crf {
        fields.insert("crf".into(), json!(crf));
    }
    if let Some(pix_fmt) = &video.pix_fmt {
        fields.insert("pix_fmt".into(), json!(pix_fmt));
    }
    if let Some(max_side) = video.max_side {
        fields.insert("max_side".into(), json!(max_side));
    }
    if let Some(hwaccel) = &video.hwaccel {
        fields.insert("hwaccel".into(), json!(hwaccel));
    }
    if let Some(n) = chunk_frames {
        fields.insert("chunk_frames".into(), json!(n));
    }
    if video.temporal {
        // Sent only when asked for, so that servers without the field still take other jobs.
        fields.insert("temporal".into(), json!(true));
    }
    body
}

/// `jobs logs --server`: every line, read on page by page.
pub fn logs(client: &Client, id: &str, as_json: bool) -> Result<ExitCode, Failure> {
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(a) => format!("/v1/jobs/{id}/logs?after={a}&limit=1000"),
            None => format!("/v1/jobs/{id}/logs?limit=1000"),
        };
        let page = call(client, "GET", &path, None)?;
        let lines = page["lines"].as_array().cloned().unwrap_or_default();
        if lines.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        for line in &lines {
            if as_json {
                println!("{line}");
            } else {
                println!(
                    "{}  {}",
                    line["worker"].as_str().unwrap_or("-"),
                    text(&line["message"])
                );
            }
        }
        after = page["next"].as_i64();
    }
}
