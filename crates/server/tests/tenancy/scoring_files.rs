//! The files a records job reads for its submitter besides the input and the model: the labels
//! (`scoring.labels`), the model card (`scoring.model_card`, or `NAME.toml` beside the model)
//! and the labels a card names. Each is the submitter's only inside its namespace; anything
//! else answers as a file that does not exist, and nothing of another tenant's file (or of the
//! server's own, `/etc/passwd`) comes back in an answer or in a job.

use super::*;
use fresco_infer::onnx_build::constant_classifier_model;

/// What bob's files hold: no answer to alice may carry it.
const SECRET: &str = "BOBSECRET";

/// Ten labels, one a line.
fn labels(prefix: &str) -> String {
    (0..10).map(|i| format!("{prefix}-{i}\n")).collect()
}

/// Alice's classifier, labels and cards; bob's labels and cards; symlinks in alice's namespace
/// that lead to bob's files.
fn scoring_files(d: &str) {
    let alice = Path::new(d).join("tenants/alice");
    let bob = Path::new(d).join("tenants/bob");
    std::fs::write(alice.join("classifier.onnx"), constant_classifier_model(10)).unwrap();
    std::fs::write(alice.join("labels.txt"), labels("alice")).unwrap();
    std::fs::write(
        alice.join("own.toml"),
        "task = \"classify\"\nlabels = \"labels.txt\"\n",
    )
    .unwrap();
    // Alice's own cards, naming bob's labels by path and out of the folder.
    std::fs::write(
        alice.join("thief.toml"),
        format!("task = \"classify\"\nlabels = \"{d}/tenants/bob/secret-labels.txt\"\n"),
    )
    .unwrap();
    std::fs::write(
        alice.join("thief-missing.toml"),
        format!("task = \"classify\"\nlabels = \"{d}/tenants/alice/secret-labels.txt\"\n"),
    )
    .unwrap();
    std::fs::write(
        alice.join("climber.toml"),
        "task = \"classify\"\nlabels = \"../bob/secret-labels.txt\"\n",
    )
    .unwrap();
    std::fs::write(
        alice.join("climber-missing.toml"),
        "task = \"classify\"\nlabels = \"../bob/none-labels.txt\"\n",
    )
    .unwrap();
    std::fs::write(bob.join("secret-labels.txt"), labels(SECRET)).unwrap();
    // Bob's card: no TOML at all, so that reading it would fail and (before the fix) quote it.
    std::fs::write(
        bob.join("card.toml"),
        format!("{SECRET}:x:0:0:root:/root:/bin/bash\n"),
    )
    .unwrap();
    std::os::unix::fs::symlink(bob.join("secret-labels.txt"), alice.join("link-labels.txt"))
        .unwrap();
    std::os::unix::fs::symlink(bob.join("card.toml"), alice.join("link-card.toml")).unwrap();
    // A model whose card beside it is a symlink to bob's card.
    std::fs::create_dir_all(alice.join("beside")).unwrap();
    std::fs::write(
        alice.join("beside/classifier.onnx"),
        constant_classifier_model(10),
    )
    .unwrap();
    std::os::unix::fs::symlink(bob.join("card.toml"), alice.join("beside/classifier.toml"))
        .unwrap();
}

/// A records job of alice's classifier, with `scoring` as given.
fn records(d: &str, model: &str, scoring: Value) -> Value {
    json!({
        "input": "clip.mp4",
        "output": "records/a.jsonl",
        "model": format!("{d}/tenants/alice/{model}"),
        "scoring": scoring,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_and_cards_outside_the_namespace_answer_as_missing_ones() {
    let w = world().await;
    let d = &w.data;
    scoring_files(d);
    let labels_job = |labels: &str| {
        records(
            d,
            "classifier.onnx",
            json!({ "task": "classify", "labels": labels }),
        )
    };
    let card_job = |card: &str| records(d, "classifier.onnx", json!({ "model_card": card }));
    let twin = |name, attack, missing, swap, status, code| Twin {
        name,
        token: w.alice.clone(),
        attack,
        missing,
        swap,
        status,
        code,
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let cases = vec![
        twin(
            "another's labels by path",
            labels_job(&format!("{d}/tenants/bob/secret-labels.txt")),
            labels_job(&format!("{d}/tenants/alice/secret-labels.txt")),
            ("bob", "alice"),
            unprocessable,
            "model-scoring",
        ),
        // Labels and cards are files of the server, never URLs: refused alike.
        twin(
            "another's labels by file URL",
            labels_job(&format!("file://{d}/tenants/bob/secret-labels.txt")),
            labels_job(&format!("file://{d}/tenants/alice/secret-labels.txt")),
            ("bob", "alice"),
            StatusCode::BAD_REQUEST,
            "path-not-absolute",
        ),
        twin(
            "'..' to another's labels",
            labels_job("../bob/secret-labels.txt"),
            labels_job("../bob/none-labels.txt"),
            ("secret-labels", "none-labels"),
            StatusCode::BAD_REQUEST,
            "bad-path",
        ),
        twin(
            "the server's /etc/passwd as labels",
            labels_job("/etc/passwd"),
            labels_job("/etc/no-such-fresco-file"),
            ("passwd", "no-such-fresco-file"),
            unprocessable,
            "model-scoring",
        ),
        twin(
            "a symlink in the namespace to another's labels",
            labels_job("link-labels.txt"),
            labels_job("none-labels.txt"),
            ("link-labels", "none-labels"),
            unprocessable,
            "model-scoring",
        ),
        twin(
            "a symlink in the namespace to another's labels, by path",
            labels_job(&format!("{d}/tenants/alice/link-labels.txt")),
            labels_job(&format!("{d}/tenants/alice/none-labels.txt")),
            ("link-labels", "none-labels"),
            unprocessable,
            "model-scoring",
        ),
        twin(
            "another's card by path",
            card_job(&format!("{d}/tenants/bob/card.toml")),
            card_job(&format!("{d}/tenants/alice/card.toml")),
            ("bob", "alice"),
            unprocessable,
            "model-card",
        ),
        twin(
            "'..' to another's card",
            card_job("../bob/card.toml"),
            card_job("../bob/none.toml"),
            ("card.toml", "none.toml"),
            StatusCode::BAD_REQUEST,
            "bad-path",
        ),
        twin(
            "the server's /etc/passwd as a card",
            card_job("/etc/passwd"),
            card_job("/etc/no-such-fresco-file"),
            ("passwd", "no-such-fresco-file"),
            unprocessable,
            "model-card",
        ),
        twin(
            "a symlink in the namespace to another's card",
            card_job("link-card.toml"),
            card_job("none-card.toml"),
            ("link-card", "none-card"),
            unprocessable,
            "model-card",
        ),
        twin(
            "an own card naming another's labels by path",
            card_job("thief.toml"),
            card_job("thief-missing.toml"),
            ("bob", "alice"),
            unprocessable,
            "model-scoring",
        ),
        twin(
            "an own card naming another's labels out of its folder",
            card_job("climber.toml"),
            card_job("climber-missing.toml"),
            ("secret-labels", "none-labels"),
            unprocessable,
            "model-scoring",
        ),
    ];
    let failures = check_twins(&w, &cases).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for case in &cases {
        let reply = send(&w.app.state, submit(&case.token, &case.attack)).await;
        assert!(
            !reply.text.contains(SECRET) && !reply.text.contains("/bin/bash"),
            "{}: {}",
            case.name,
            reply.text
        );
    }
    // A line break in either name is refused from the text alone.
    for scoring in [
        json!({ "labels": "x/.\n./.\n./bob/secret-labels.txt" }),
        json!({ "model_card": "x/.\t./.\t./bob/card.toml" }),
    ] {
        let reply = send(
            &w.app.state,
            submit(&w.alice, &records(d, "classifier.onnx", scoring)),
        )
        .await;
        reply.error(StatusCode::BAD_REQUEST, "bad-path");
    }
    assert_eq!(
        w.app.queue.jobs(&[], 100).await.unwrap().len(),
        0,
        "an attack was queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_labels_and_cards_work_and_a_card_beside_that_leads_out_is_none() {
    let w = world().await;
    let d = &w.data;
    scoring_files(d);
    let accepted = |reply: &Reply, what: &str| {
        assert_eq!(reply.status, StatusCode::CREATED, "{what}: {}", reply.text);
        assert!(!reply.text.contains(SECRET), "{what}: {}", reply.text);
    };
    for (what, scoring) in [
        (
            "own labels by name",
            json!({ "task": "classify", "labels": "labels.txt" }),
        ),
        (
            "own labels by path",
            json!({ "task": "classify", "labels": format!("{d}/tenants/alice/labels.txt") }),
        ),
        ("own card by name", json!({ "model_card": "own.toml" })),
    ] {
        // A distinct output each, so that none is the same work as another.
        let mut body = records(d, "classifier.onnx", scoring);
        body["output"] = format!("records/{}.jsonl", what.replace(' ', "-")).into();
        let reply = send(&w.app.state, submit(&w.alice, &body)).await;
        accepted(&reply, what);
    }
    // `beside/classifier.toml` is a symlink to bob's card (which is no TOML): read, it would
    // refuse the job and name what it holds; as it leads out of the namespace it is no card.
    let reply = send(
        &w.app.state,
        submit(
            &w.alice,
            &records(d, "beside/classifier.onnx", json!({ "task": "classify" })),
        ),
    )
    .await;
    accepted(&reply, "a card beside that leads out");
    let jobs = w.app.queue.jobs(&[], 100).await.unwrap();
    assert_eq!(jobs.len(), 4);
    let pinned = format!("{jobs:?}");
    assert!(!pinned.contains(SECRET), "{pinned}");
    assert!(
        pinned.contains("alice-9"),
        "alice's labels are pinned: {pinned}"
    );
    // Operators keep the whole view: bob's labels are theirs to name.
    let mut body = records(
        d,
        "classifier.onnx",
        json!({ "task": "classify", "labels": format!("{d}/tenants/bob/secret-labels.txt") }),
    );
    body["input"] = "tenants/alice/clip.mp4".into();
    body["output"] = "ops/records.jsonl".into();
    let reply = send(&w.app.state, submit(&w.operator, &body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}
