//! `fresco models`: what styles exist, where their files are, and fetching them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use fresco_infer::onnx_build;
use fresco_infer::registry::{ListEntry, ModelSource, Registry};

use crate::exit::{self, Failure};

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every known style, where its file is and whether it is present.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Download a zoo style into the cache, checked against its pinned digest.
    Pull { name: String },
    /// Write a model that fresco builds in code (identity, vintage, rank2, one-channel) to a
    /// file; used by tests and handy for trying --model.
    #[command(hide = true)]
    ExportBuiltin { name: String, path: PathBuf },
}

pub fn models(cmd: ModelsCommand) -> Result<ExitCode, Failure> {
    let registry = Registry::from_env();
    match cmd {
        ModelsCommand::List { json } => {
            let mut entries = registry.list();
            entries.extend(scoring_entries(&registry));
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&entries).expect("entries serialise")
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:<20} {:<8} {:<52} WHERE", "NAME", "PRESENT", "KIND");
            for e in entries {
                let place = match (&e.path, e.kind) {
                    (Some(p), _) => p.display().to_string(),
                    (None, _) if e.present => "in the binary".into(),
                    (None, SCORING_KIND) => format!(
                        "missing: put {}.onnx in {} (not downloaded)",
                        e.name,
                        registry
                            .model_dir()
                            .map(|d| format!("{}/scoring", d.display()))
                            .unwrap_or_else(|| registry.cache_dir().display().to_string()),
                    ),
                    (None, _) => format!(
                        "missing: put {}.onnx in {} (or run `fresco models pull {}`)",
                        e.name,
                        registry
                            .model_dir()
                            .map(|d| format!(
                                "{} or {}",
                                d.display(),
                                registry.cache_dir().display()
                            ))
                            .unwrap_or_else(|| registry.cache_dir().display().to_string()),
                        e.name
                    ),
                };
                println!(
                    "{:<20} {:<8} {:<52} {}",
                    e.name,
                    if e.present { "yes" } else { "no" },
                    e.kind,
                    place
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Pull { name } => {
            let path = registry
                .pull(&name)
                .map_err(|e| Failure::new(exit::MODEL, e.to_string()))?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::ExportBuiltin { name, path } => {
            let bytes = match name.as_str() {
                "identity" => onnx_build::identity_model(),
                "vintage" => onnx_build::vintage_filter_model(),
                "rank2" => onnx_build::rank2_model(),
                "one-channel" => onnx_build::one_channel_model(),
                "identity-nhwc" => onnx_build::identity_nhwc_unit_range_model(),
                "failing" => onnx_build::failing_model(),
                other => {
                    return Err(Failure::new(
                        2,
                        format!("unknown built model '{other}': identity, vintage, rank2, one-channel, identity-nhwc, failing"),
                    ))
                }
            };
            std::fs::write(&path, bytes)
                .map_err(|e| Failure::new(exit::OUTPUT, format!("{}: {e}", path.display())))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

const SCORING_KIND: &str = "known scoring model (used with .jsonl/.parquet)";

/// The known scoring models (`fresco_score::KNOWN_MODELS`), found by name and digest.
fn scoring_entries(registry: &Registry) -> Vec<ListEntry> {
    fresco_score::KNOWN_MODELS
        .iter()
        .map(|m| {
            let path = m.locate(registry).ok().map(|found| found.model);
            let source = path.as_ref().map(|p| {
                if p.starts_with(registry.cache_dir()) {
                    ModelSource::Cache
                } else {
                    ModelSource::ModelDir
                }
            });
            ListEntry {
                name: m.name,
                kind: SCORING_KIND,
                description: m.description,
                present: path.is_some(),
                path,
                source,
            }
        })
        .collect()
}
