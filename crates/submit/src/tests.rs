use super::*;

/// [`Submitter::build_request`] on a blocking thread, as the server calls it.
async fn build(factory: &Submitter, request: &SubmitRequest) -> Result<NewJob, Rejection> {
    let (factory, request) = (factory.clone(), request.clone());
    tokio::task::spawn_blocking(move || factory.build_request(&request))
        .await
        .unwrap()
        .map(|built| built.job)
}
use fresco_core::DeviceKind;

fn request(input: &str, output: &str, overwrite: bool) -> SubmitRequest {
    serde_json::from_value(serde_json::json!({
        "input": input,
        "output": output,
        "style": "vintage",
        "overwrite": overwrite,
    }))
    .expect("a valid request")
}

fn code(rejection: Rejection) -> &'static str {
    match rejection {
        Rejection::BadField { code, .. }
        | Rejection::Unusable { code, .. }
        | Rejection::Unavailable { code, .. } => code,
        Rejection::Internal(detail) => panic!("internal: {detail}"),
    }
}

#[test]
fn scoring_flags_count_except_the_channel_order() {
    let mut ask = ScoringAsk::default();
    ask.settings.channel_order = Some("bgr".into());
    assert!(
        !ask.is_given(),
        "--channel-order is an image model's flag too"
    );
    ask.sampling.every = Some(5);
    assert!(ask.is_given());
    assert!(ask.records_only_given());
    let ask = ScoringAsk {
        card: Some(PathBuf::from("/m/card.toml")),
        ..Default::default()
    };
    assert!(ask.is_given());
    assert!(
        !ask.records_only_given(),
        "a model card is an image model's too"
    );
}

#[test]
fn precision_defaults_to_fp32_and_fp16_needs_cuda() {
    assert_eq!(precision_of(None, Device::Cpu).unwrap(), Precision::Fp32);
    assert_eq!(
        precision_of(Some("fp32"), Device::Cpu).unwrap(),
        Precision::Fp32
    );
    assert_eq!(
        precision_of(Some("fp16"), Device::Cuda(0)).unwrap(),
        Precision::Fp16
    );
    let refused = precision_of(Some("fp16"), Device::Cpu).unwrap_err();
    assert!(
        refused.to_string().contains("needs --device cuda"),
        "{refused}"
    );
    assert_eq!(code(refused), "precision-needs-cuda");
    let bad = precision_of(Some("int8"), Device::Cpu).unwrap_err();
    assert!(bad.to_string().contains("expected fp32 or fp16"), "{bad}");
    assert_eq!(code(bad), "bad-precision");
}

#[test]
fn device_comes_from_the_request_or_the_server() {
    assert_eq!(device_of(None, Device::Cpu).unwrap(), Device::Cpu);
    assert_eq!(device_of(None, Device::Cuda(1)).unwrap(), Device::Cuda(1));
    assert_eq!(
        device_of(Some("cuda"), Device::Cpu).unwrap(),
        Device::Cuda(0)
    );
    assert_eq!(
        device_of(Some("cpu"), Device::Cuda(0)).unwrap(),
        Device::Cpu
    );
    let bad = device_of(Some("tpu"), Device::Cpu).unwrap_err();
    assert!(bad.to_string().contains("expected cpu or cuda"), "{bad}");
    assert_eq!(code(bad), "invalid-field");
}

/// A server without a GPU (this CPU build of ONNX Runtime has no CUDA provider) queues
/// cuda jobs: the model is checked on the CPU, and the job is pinned for cuda workers.
#[tokio::test]
async fn cuda_jobs_are_queued_by_a_server_without_a_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=64x48:d=0.2:r=10",
        ])
        .args(["-pix_fmt", "yuv420p"])
        .arg(&input)
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: ffmpeg could not make a test clip");
        return;
    }
    let output = dir.path().join("out.mp4");
    let submit = |device: Option<&str>, hwaccel: Option<&str>| {
        let mut body = serde_json::json!({
            "input": input.display().to_string(),
            "output": output.display().to_string(),
            "style": "vintage",
        });
        if let Some(device) = device {
            body["device"] = device.into();
        }
        if let Some(hwaccel) = hwaccel {
            body["hwaccel"] = hwaccel.into();
        }
        serde_json::from_value::<SubmitRequest>(body).unwrap()
    };
    let kind = |job: &NewJob| JobSpec::from_json(&job.spec).unwrap().model.device_kind;
    let cpu_server = Submitter::default().allow_download(false);
    let job = build(&cpu_server, &submit(Some("cuda"), None))
        .await
        .unwrap();
    assert_eq!(
        (kind(&job), job.device_kind),
        (DeviceKind::Cuda, DeviceKind::Cuda)
    );
    let job = build(&cpu_server, &submit(None, Some("auto")))
        .await
        .unwrap();
    assert_eq!(kind(&job), DeviceKind::Cpu);
    let spec = JobSpec::from_json(&job.spec).unwrap();
    assert_eq!(spec.options.hwaccel.as_deref(), Some("auto"));
    let cuda_server = cpu_server.clone().device(Device::Cuda(0));
    let job = build(&cuda_server, &submit(None, Some("none")))
        .await
        .unwrap();
    assert_eq!(kind(&job), DeviceKind::Cuda);
    assert_eq!(JobSpec::from_json(&job.spec).unwrap().options.hwaccel, None);
    let job = build(&cuda_server, &submit(Some("cpu"), None))
        .await
        .unwrap();
    assert_eq!(kind(&job), DeviceKind::Cpu);
}

#[tokio::test]
async fn object_urls_are_checked_in_their_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display();
    std::fs::write(dir.path().join("in.mp4"), b"some bytes").unwrap();
    std::fs::write(dir.path().join("taken.mp4"), b"x").unwrap();
    let factory = Submitter::default().allow_download(false);
    let build = |input: String, output: String, overwrite: bool| {
        let factory = factory.clone();
        async move {
            build(&factory, &request(&input, &output, overwrite))
                .await
                .map(drop)
                .map_err(code)
        }
    };
    let missing = build(
        format!("file://{root}/missing.mp4"),
        format!("file://{root}/out.mp4"),
        false,
    );
    assert_eq!(missing.await, Err("input-missing"));
    let taken = build(
        format!("file://{root}/in.mp4"),
        format!("file://{root}/taken.mp4"),
        false,
    );
    assert_eq!(taken.await, Err("output-exists"));
    let same = build(
        format!("file://{root}/in.mp4"),
        format!("file://{root}/in.mp4"),
        true,
    );
    assert_eq!(same.await, Err("same-file"));
    let no_object = build("az://container".into(), format!("{root}/out.mp4"), false);
    assert_eq!(no_object.await, Err("bad-url"));
    // Local paths are checked as before: relative ones are refused.
    let relative = build("in.mp4".into(), format!("file://{root}/out.mp4"), false);
    assert_eq!(relative.await, Err("path-not-absolute"));
    let relative_out = build(format!("file://{root}/in.mp4"), "out.mp4".into(), false);
    assert_eq!(relative_out.await, Err("path-not-absolute"));
}

/// A dataset request through the API: a folder or prefix input, the submitter's roots checked on
/// it, a records output only (.jsonl, .parquet), and (with the real classifier) a job whose spec pins the dataset.
#[tokio::test]
async fn dataset_requests_are_folders_or_prefixes_within_the_roots() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    let photos = allowed.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let outside = dir.path().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    let models = std::env::var_os("FRESCO_MODEL_DIR").map(|d| PathBuf::from(d).join("scoring"));
    let model = models
        .as_ref()
        .map(|m| m.join("efficientnet-lite0.onnx"))
        .filter(|m| m.is_file());
    let request_limited = |input: &Path, output: &str, max_item_bytes: u64| {
        let body = serde_json::json!({
            "input": input.display().to_string(),
            "output": allowed.join(output).display().to_string(),
            "model": model.clone().unwrap_or_else(|| allowed.join("m.onnx")).display().to_string(),
            "scoring": { "task": "classify" },
            "dataset": { "include": ["*.jpg"], "max_failed_items": 3, "max_item_bytes": max_item_bytes },
        });
        serde_json::from_value::<SubmitRequest>(body).unwrap()
    };
    let request = |input: &Path, output: &str| request_limited(input, output, 1_000_000);
    let rules = PathRules::default()
        .allow(&allowed.display().to_string())
        .unwrap();
    let factory = Submitter::default().allow_download(false).paths(rules);
    let refused = build(&factory, &request(&outside, "tags.jsonl")).await;
    assert_eq!(refused.map_err(code).err(), Some("path-not-allowed"));
    let video = build(&factory, &request(&photos, "tags.mp4")).await;
    assert_eq!(video.map_err(code).err(), Some("dataset-output"));
    // The item limit is checked here as the API's schema and the CLI's flag check it.
    let unlimited = build(&factory, &request_limited(&photos, "tags.jsonl", 0)).await;
    assert_eq!(unlimited.map_err(code).err(), Some("bad-item-limit"));
    let huge = request_limited(
        &photos,
        "tags.jsonl",
        fresco_core::dataset::MAX_ITEM_BYTES_LIMIT + 1,
    );
    assert_eq!(
        build(&factory, &huge).await.map_err(code).err(),
        Some("bad-item-limit")
    );
    let Some(_) = model else {
        eprintln!("skipped the accepted request: FRESCO_MODEL_DIR holds no scoring models");
        return;
    };
    // The model lies outside the roots above: accepted by a server without roots.
    let open = Submitter::default().allow_download(false);
    let job = build(&open, &request(&photos, "tags.jsonl")).await.unwrap();
    let spec = JobSpec::from_json(&job.spec).unwrap();
    let dataset = spec.dataset.expect("a dataset job");
    assert_eq!(
        dataset.source,
        fresco_core::dataset::DatasetSource::Folder {
            path: photos.clone()
        }
    );
    assert_eq!(dataset.include, ["*.jpg"]);
    assert_eq!(dataset.max_failed_items, Some(3));
    assert_eq!(dataset.max_item_bytes, 1_000_000);
    assert_eq!(
        dataset.max_failed_fraction,
        fresco_core::dataset::DEFAULT_MAX_FAILED_FRACTION
    );
}

/// An image dataset through the API: a folder styled into an output folder (no scoring), the
/// output neither inside the input nor around it, and the job's spec without scoring.
#[tokio::test]
async fn image_dataset_requests_style_into_a_folder_outside_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let request = |output: &Path| {
        let body = serde_json::json!({
            "input": photos.display().to_string(),
            "output": output.display().to_string(),
            "style": "vintage",
            "dataset": {},
        });
        serde_json::from_value::<SubmitRequest>(body).unwrap()
    };
    let factory = Submitter::default().allow_download(false);
    let job = build(&factory, &request(&dir.path().join("styled")))
        .await
        .unwrap();
    let spec: serde_json::Value = serde_json::from_str(&job.spec).unwrap();
    assert!(spec["scoring"].is_null(), "{spec:#}");
    assert_eq!(spec["dataset"]["source"]["kind"], "folder", "{spec:#}");
    let inside = build(&factory, &request(&photos.join("styled"))).await;
    assert_eq!(inside.map_err(code).err(), Some("dataset-output-overlaps"));
    let around = build(&factory, &request(dir.path())).await;
    assert_eq!(around.map_err(code).err(), Some("dataset-output-overlaps"));
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let onto_file = build(&factory, &request(&file)).await;
    assert_eq!(onto_file.map_err(code).err(), Some("dataset-output"));
}

/// The dataset trigger's jobs: a manifest the server wrote, as a local path or in an object
/// store, within the roots like any input; a manifest object that is not there is refused.
#[tokio::test]
async fn manifest_requests_take_a_path_or_an_object_url() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    std::fs::create_dir_all(&allowed).unwrap();
    let manifest = allowed.join("batch-000001.manifest");
    std::fs::write(&manifest, format!("{}\n", allowed.join("a.jpg").display())).unwrap();
    let models = std::env::var_os("FRESCO_MODEL_DIR").map(|d| PathBuf::from(d).join("scoring"));
    let model = models
        .as_ref()
        .map(|m| m.join("efficientnet-lite0.onnx"))
        .filter(|m| m.is_file());
    let request = |input: String, output: &str| {
        serde_json::from_value::<SubmitRequest>(serde_json::json!({
            "input": input,
            "output": allowed.join(output).display().to_string(),
            "model": model.clone().unwrap_or_else(|| allowed.join("m.onnx")).display().to_string(),
            "scoring": { "task": "classify" },
            "dataset": {},
        }))
        .unwrap()
    };
    let build_manifest = |factory: &Submitter, request: SubmitRequest| {
        let factory = factory.clone();
        async move {
            tokio::task::spawn_blocking(move || factory.build_manifest_request(&request))
                .await
                .unwrap()
                .map(|built| built.job)
        }
    };
    let rules = PathRules::default()
        .allow(&allowed.display().to_string())
        .unwrap();
    let confined = Submitter::default().allow_download(false).paths(rules);
    let outside = dir.path().join("elsewhere.manifest");
    std::fs::write(&outside, "").unwrap();
    let refused =
        build_manifest(&confined, request(outside.display().to_string(), "b.jsonl")).await;
    assert_eq!(refused.map_err(code).err(), Some("path-not-allowed"));
    let gone = format!("file://{}/gone.manifest", allowed.display());
    let missing = build_manifest(&confined, request(gone, "b.jsonl")).await;
    assert_eq!(missing.map_err(code).err(), Some("input-missing"));
    let Some(_) = model else {
        eprintln!("skipped the accepted requests: FRESCO_MODEL_DIR holds no scoring models");
        return;
    };
    let open = Submitter::default().allow_download(false);
    let url = format!("file://{}", manifest.display());
    for (input, output) in [
        (manifest.display().to_string(), "a.jsonl"),
        (url.clone(), "b.parquet"),
    ] {
        let job = build_manifest(&open, request(input.clone(), output))
            .await
            .unwrap();
        let spec = JobSpec::from_json(&job.spec).unwrap();
        assert_eq!(
            spec.dataset.expect("a dataset job").source,
            fresco_core::dataset::DatasetSource::Manifest {
                path: PathBuf::from(&input)
            }
        );
    }
}
