//! Terminal habits: completions and man pages from the CLI definition, `-y` for `--overwrite`,
//! the default config file and `fresco config path`, `--json` on the benchmarks' arguments,
//! `fresco top` fitted to a real terminal.

mod common;

use common::*;
use std::path::Path;

#[test]
fn completions_for_each_shell_come_from_the_cli_definition() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef fresco"),
        ("fish", "complete -c fresco"),
    ] {
        let out = fresco(["completions", shell]).ok();
        assert!(out.stdout.contains(marker), "{shell}:\n{}", out.stdout);
        // Commands and flags from the definition, including the newest ones.
        for word in ["bench-jobs", "overwrite", "completions", "token-file"] {
            assert!(
                out.stdout.contains(word),
                "{shell} completions lack {word:?}"
            );
        }
    }
    fresco(["completions", "tcsh"]).fails(2, "tcsh", &["invalid value"]);
    let missing = fresco(["completions"]);
    assert_eq!(missing.code, Some(2), "{}", missing.dump());
    assert!(
        missing.stderr.contains("required") && missing.stderr.contains("<SHELL>"),
        "{}",
        missing.dump()
    );
}

#[test]
fn completions_load_in_bash() {
    let script = fresco(["completions", "bash"]).ok().stdout;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fresco.bash");
    std::fs::write(&file, script).unwrap();
    // Source the script and ask it to complete `fresco be`, as bash would on TAB.
    let probe = format!(
        "source {}; COMP_WORDS=(fresco be); COMP_CWORD=1; COMP_LINE='fresco be'; COMP_POINT=9; \
         _fresco fresco be fresco; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = run_with_timeout(
        std::process::Command::new("bash").args(["--norc", "-c", &probe]),
        RUN_TIMEOUT,
    )
    .ok();
    let words: Vec<&str> = out.stdout.lines().collect();
    assert!(
        words.contains(&"bench") && words.contains(&"bench-jobs"),
        "completing `fresco be` gave {words:?}"
    );
}

#[test]
fn man_pages_come_from_the_cli_definition() {
    let page = fresco(["man"]).ok().stdout;
    assert!(
        page.starts_with(".ie") || page.contains(".TH fresco 1"),
        "{page}"
    );
    assert!(page.contains(".TH fresco 1"), "no title:\n{page}");
    for word in [
        "bench\\-jobs",
        "completions",
        "\\-\\-config",
        "fresco\\-top(1)",
    ] {
        assert!(page.contains(word), "the man page lacks {word:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    fresco(["man", "--dir"]).fails(2, "--dir", &["value"]);
    fresco([s("man"), s("--dir"), p(&pages)]).ok();
    for name in ["fresco.1", "fresco-run.1", "fresco-jobs-submit.1"] {
        let text = std::fs::read_to_string(pages.join(name))
            .unwrap_or_else(|e| panic!("{name} was not written: {e}"));
        assert!(text.contains(".TH"), "{name} is not a man page");
    }
    let run_page = std::fs::read_to_string(pages.join("fresco-run.1")).unwrap();
    assert!(run_page.contains("\\-\\-overwrite"), "{run_page}");
    // A folder that cannot be made is an output error that names it.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    fresco([s("man"), s("--dir"), p(&blocker.join("sub"))]).fails(5, "sub", &["cannot create"]);
}

fn png(dir: &Path) -> std::path::PathBuf {
    let input = dir.join("in.png");
    ffmpeg(
        &["-f", "lavfi", "-i", "testsrc2=size=32x24", "-frames:v", "1"],
        &input,
    );
    input
}

#[test]
fn y_is_overwrite_wherever_overwrite_exists() {
    let dir = tempfile::tempdir().unwrap();
    let input = png(dir.path());
    let output = dir.path().join("out.png");
    std::fs::write(&output, b"old").unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            s("run"),
            p(&input),
            s("-o"),
            p(&output),
            s("--style"),
            s("vintage"),
        ];
        args.extend(extra.iter().map(|a| s(a)));
        fresco(args)
    };
    run(&[]).fails(5, "out.png", &["exists", "--overwrite"]);
    assert_eq!(std::fs::read(&output).unwrap(), b"old");
    run(&["-y"]).ok();
    assert_ne!(
        std::fs::read(&output).unwrap(),
        b"old",
        "-y did not overwrite"
    );
    // The same short flag on every command that has --overwrite.
    for command in [["run", "--help"], ["jobs", "submit"]] {
        let mut args: Vec<&str> = command.to_vec();
        if command[0] == "jobs" {
            args.push("--help");
        }
        let help = fresco(args).ok().stdout;
        assert!(help.contains("-y, --overwrite"), "{command:?}:\n{help}");
    }
}

#[test]
fn the_default_config_file_is_read_and_shown_by_config_path() {
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().join("xdg");
    let default = xdg.join("fresco").join("config.toml");
    let env_xdg = [("XDG_CONFIG_HOME", xdg.as_os_str())];

    // Where it is looked for, before it exists.
    let out = fresco_env(["config", "path"], &env_xdg).ok();
    assert_eq!(out.stdout.trim(), default.to_str().unwrap());
    assert!(
        out.stderr.contains("default") && out.stderr.contains("not present"),
        "{}",
        out.stderr
    );
    // Without XDG_CONFIG_HOME: ~/.config/fresco/config.toml.
    let mut cmd = fresco_cmd();
    cmd.args(["config", "path"])
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home.path());
    let out = run_with_timeout(&mut cmd, RUN_TIMEOUT).ok();
    assert_eq!(
        out.stdout.trim(),
        home.path()
            .join(".config/fresco/config.toml")
            .to_str()
            .unwrap()
    );

    // A present default file is read: its queue is the one `jobs list` opens.
    let queue = home.path().join("from-default.db");
    std::fs::create_dir_all(default.parent().unwrap()).unwrap();
    std::fs::write(&default, format!("db = \"sqlite://{}\"\n", queue.display())).unwrap();
    let out = fresco_env(["config", "path"], &env_xdg).ok();
    assert!(out.stderr.contains("; read"), "{}", out.stderr);
    fresco_env(["jobs", "list"], &env_xdg).ok();
    assert!(queue.exists(), "the default config file's db was not used");

    // --config and FRESCO_CONFIG win over it, and config path says so.
    let other = home.path().join("other.toml");
    std::fs::write(&other, "").unwrap();
    let out = fresco_env([s("config"), s("path"), s("--config"), p(&other)], &env_xdg).ok();
    assert_eq!(out.stdout.trim(), other.to_str().unwrap());
    assert!(out.stderr.contains("--config"), "{}", out.stderr);
    let out = fresco_env(
        ["config", "path"],
        &[
            ("XDG_CONFIG_HOME", xdg.as_os_str()),
            ("FRESCO_CONFIG", other.as_os_str()),
        ],
    )
    .ok();
    assert_eq!(out.stdout.trim(), other.to_str().unwrap());
    assert!(out.stderr.contains("FRESCO_CONFIG"), "{}", out.stderr);

    // A broken default file is refused by name, like a named one, but not by `config path`,
    // and not where --config names another file.
    std::fs::write(&default, "colour = \"red\"\n").unwrap();
    fresco_env(["jobs", "list"], &env_xdg).fails(4, "config.toml", &["colour"]);
    fresco_env(["config", "path"], &env_xdg).ok();
    let db = format!("sqlite://{}", home.path().join("q2.db").display());
    std::fs::write(&other, format!("db = \"{db}\"\n")).unwrap();
    fresco_env([s("--config"), p(&other), s("jobs"), s("list")], &env_xdg).ok();
}

#[test]
fn benchmarks_take_json() {
    for command in ["bench", "bench-jobs"] {
        let help = fresco([command, "--help"]).ok().stdout;
        assert!(help.contains("--json"), "{command} --help:\n{help}");
    }
}

#[test]
fn bench_json_is_one_object_with_the_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = fresco([
        s("bench"),
        s("--style"),
        s("vintage"),
        s("--width"),
        s("64"),
        s("--height"),
        s("48"),
        s("--frames"),
        s("4"),
        s("--no-python"),
        s("--calibration"),
        p(&dir.path().join("cal.json")),
        s("--json"),
    ])
    .ok();
    let json = out.json();
    for key in ["model_fps", "e2e_fps", "ratio", "peak_rss_mib"] {
        assert!(
            json[key].as_f64().is_some_and(|v| v > 0.0),
            "{key} missing or not positive: {json}"
        );
    }
    assert_eq!(json["model"], "vintage");
    assert_eq!(json["width"], 64);
    assert!(json["python_fps"].is_null(), "{json}");
    assert!(
        json["calibration"].as_str().unwrap().ends_with("cal.json"),
        "{json}"
    );
}

#[test]
fn bench_jobs_json_is_one_object_with_the_figures() {
    let out = fresco([
        "bench-jobs",
        "--style",
        "vintage",
        "--no-scaling",
        "--chunks",
        "20",
        "--json",
    ])
    .ok();
    let json = out.json();
    assert!(
        json["sqlite_ms_per_chunk"]
            .as_f64()
            .is_some_and(|v| v > 0.0),
        "{json}"
    );
    // Not measured: null, not a made-up figure.
    assert!(json["fps_1_worker"].is_null(), "{json}");
    assert!(json["postgres_claims_per_second"].is_null(), "{json}");
}

/// `fresco top --once` in a pseudo-terminal of the given size (util-linux's `script`), so that
/// the size comes from the terminal itself, not from COLUMNS/LINES (which are removed).
fn top_in_terminal(db: &str, columns: u32, rows: u32, once: bool) -> String {
    let bin = env!("CARGO_BIN_EXE_fresco");
    let inner = format!(
        "stty cols {columns} rows {rows}; {bin} top {} --db '{db}'",
        if once { "--once" } else { "--interval 1" }
    );
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["-s", "INT", if once { "60" } else { "3" }])
        .args(["script", "-qfec", &inner, "/dev/null"])
        .env_remove("COLUMNS")
        .env_remove("LINES")
        .env("FRESCO_STATE_DIR", state_dir())
        .env("XDG_CONFIG_HOME", state_dir().join("config-home"));
    let out = run_with_timeout(&mut cmd, RUN_TIMEOUT);
    out.stdout
}

#[test]
fn top_fits_the_terminal_it_runs_in() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: util-linux's `script` is not installed (it gives the test a terminal)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("q.db").display());
    // Thirty queued jobs: more than a small terminal holds.
    let input = png(dir.path());
    for i in 0..30 {
        fresco([
            s("jobs"),
            s("submit"),
            p(&input),
            s("-o"),
            p(&dir
                .path()
                .join(format!("out-{i}-with-a-long-name-to-be-clipped.png"))),
            s("--style"),
            s("vintage"),
            s("--db"),
            s(&db),
            s("--work-dir"),
            p(&dir.path().join("work")),
        ])
        .ok();
    }
    let screen = top_in_terminal(&db, 50, 12, false);
    // The last full frame drawn: after the last "home" sequence.
    let frame = screen.rsplit("\x1b[H").next().unwrap_or("");
    let lines: Vec<String> = frame
        .split('\n')
        .map(|l| {
            l.replace("\x1b[K", "")
                .replace("\x1b[J", "")
                .trim_end_matches('\r')
                .to_string()
        })
        .filter(|l| !l.is_empty())
        .collect();
    assert!(!lines.is_empty(), "top drew nothing:\n{screen:?}");
    assert!(
        lines.len() < 12,
        "{} lines in a 12-row terminal:\n{}",
        lines.len(),
        lines.join("\n")
    );
    assert!(
        lines.iter().all(|l| l.chars().count() <= 50),
        "a line is wider than the 50-column terminal:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.iter().any(|l| l.contains("more jobs")),
        "{}",
        lines.join("\n")
    );

    // A wider, taller terminal shows more; a snapshot (--once) is never cut to the rows.
    let wide = top_in_terminal(&db, 200, 60, true);
    assert!(
        wide.lines().any(|l| l.trim_end().chars().count() > 50),
        "{wide}"
    );
    assert_eq!(wide.matches("queued").count() - 1, 30, "{wide}");
}
