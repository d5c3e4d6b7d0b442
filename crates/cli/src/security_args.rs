//! The flags of `fresco serve` that bound what a submission may name and how large its input
//! may be ([`fresco_server::limits`]), and the key of encrypted local stores
//! ([`fresco_store::crypt`]).

use clap::Args;
use fresco_server::limits::{InputLimits, PathRules};

use crate::exit::{self, Failure};

#[derive(Debug, Args)]
pub struct SecurityArgs {
    /// A folder or object-store prefix (`/srv/videos`, `az://container/in`, `s3://bucket`) that
    /// job inputs and outputs may lie under; repeat it for several. The data store (--data),
    /// the watch folder, its output and the event output are always allowed; nothing else is
    /// unless named here or --allow-any-local-path is given.
    #[arg(
        long = "allow-prefix",
        env = "FRESCO_ALLOW_PREFIX",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub allow_prefix: Vec<String>,
    /// Let submissions name any absolute local path the server's user can read or write (for a
    /// single-user machine only: any client with a submitter token could read files such as
    /// keys into a job, or write outputs anywhere). Traversal, other containers and other
    /// schemes are still refused; object URLs still need an allowed prefix.
    #[arg(long, env = "FRESCO_ALLOW_ANY_LOCAL_PATH")]
    pub allow_any_local_path: bool,
    /// The largest input accepted, in MiB (0: no limit).
    #[arg(long, env = "FRESCO_MAX_INPUT_MB", default_value_t = 64 * 1024, value_name = "MIB")]
    pub max_input_mb: u64,
    /// The longest input accepted, in seconds (0: no limit).
    #[arg(long, env = "FRESCO_MAX_INPUT_SECONDS", default_value_t = 6 * 3600, value_name = "SECONDS")]
    pub max_input_seconds: u64,
    /// The widest input frame accepted, in pixels (0: no limit).
    #[arg(
        long,
        env = "FRESCO_MAX_INPUT_WIDTH",
        default_value_t = 8192,
        value_name = "PIXELS"
    )]
    pub max_input_width: u32,
    /// The tallest input frame accepted, in pixels (0: no limit).
    #[arg(
        long,
        env = "FRESCO_MAX_INPUT_HEIGHT",
        default_value_t = 8192,
        value_name = "PIXELS"
    )]
    pub max_input_height: u32,
    /// The most pixels per input frame, width times height (0: no limit).
    #[arg(long, env = "FRESCO_MAX_INPUT_PIXELS", default_value_t = 8192 * 4320, value_name = "PIXELS")]
    pub max_input_pixels: u64,
    /// The most frames an input's video may have, counted by the worker's frame scan, which
    /// stops there (0: no limit).
    #[arg(long, env = "FRESCO_MAX_INPUT_FRAMES", default_value_t = 6 * 3600 * 120, value_name = "FRAMES")]
    pub max_input_frames: u64,
    /// The highest frame rate accepted, measured over the frames' timestamps (0: no limit).
    #[arg(
        long,
        env = "FRESCO_MAX_INPUT_FPS",
        default_value_t = 1000,
        value_name = "FPS"
    )]
    pub max_input_fps: u64,
    /// The most streams an input may have (0: no limit).
    #[arg(
        long,
        env = "FRESCO_MAX_INPUT_STREAMS",
        default_value_t = 64,
        value_name = "N"
    )]
    pub max_input_streams: u64,
    /// The most chapters an input may have (0: no limit).
    #[arg(
        long,
        env = "FRESCO_MAX_INPUT_CHAPTERS",
        default_value_t = 1000,
        value_name = "N"
    )]
    pub max_input_chapters: u64,
    /// The largest model file a submission may name, in MiB (checked without loading it; see
    /// docs/security.md, Models).
    #[arg(
        long,
        env = "FRESCO_MAX_MODEL_MB",
        default_value_t = 512,
        value_name = "MIB"
    )]
    pub max_model_mb: u64,
    /// The most nodes a submitted model may have, subgraphs and functions included.
    #[arg(
        long,
        env = "FRESCO_MAX_MODEL_NODES",
        default_value_t = 20_000,
        value_name = "NODES"
    )]
    pub max_model_nodes: usize,
    /// A file of keys (one per line, 64 hex digits or base64 of 32 bytes; the first encrypts,
    /// all decrypt) that encrypt every local store of this process at rest. Default:
    /// FRESCO_STORE_KEY (a key), else no encryption.
    #[arg(long, env = "FRESCO_STORE_KEY_FILE", value_name = "FILE")]
    pub store_key_file: Option<std::path::PathBuf>,
}

impl SecurityArgs {
    /// The input limits the flags give.
    pub fn limits(&self) -> InputLimits {
        let some = |v: u64| (v > 0).then_some(v);
        InputLimits {
            max_bytes: some(self.max_input_mb).map(|mb| mb.saturating_mul(1 << 20)),
            max_seconds: some(self.max_input_seconds).map(|s| s as f64),
            max_width: (self.max_input_width > 0).then_some(self.max_input_width),
            max_height: (self.max_input_height > 0).then_some(self.max_input_height),
            max_pixels: some(self.max_input_pixels),
            max_frames: some(self.max_input_frames),
            max_fps: some(self.max_input_fps).map(|f| f as f64),
            max_streams: some(self.max_input_streams),
            max_chapters: some(self.max_input_chapters),
        }
    }

    /// The limits a submitted model is held to (the rest are [`ModelBudget`]'s defaults).
    ///
    /// [`ModelBudget`]: fresco_infer::inspect::ModelBudget
    pub fn model_budget(&self) -> fresco_infer::inspect::ModelBudget {
        fresco_infer::inspect::ModelBudget {
            max_bytes: self.max_model_mb.max(1).saturating_mul(1 << 20),
            max_nodes: self.max_model_nodes.max(1),
            ..fresco_infer::inspect::ModelBudget::default()
        }
    }

    /// The roots the inputs and outputs of HTTP submissions (and trigger jobs) may lie under:
    /// `--allow-prefix` values plus `always` (the data store, watch and event locations), and
    /// any local path only with `--allow-any-local-path`. (`fresco run` and `jobs submit` are
    /// the machine's own user's commands and take any path; they have no rules.)
    pub fn path_rules<'a>(
        &'a self,
        always: impl IntoIterator<Item = &'a str>,
    ) -> Result<PathRules, Failure> {
        let mut rules = if self.allow_any_local_path {
            PathRules::any_local_path()
        } else {
            PathRules::default()
        };
        let roots: Vec<&str> = self
            .allow_prefix
            .iter()
            .map(String::as_str)
            .chain(always)
            .collect();
        for root in roots {
            rules = rules
                .allow(root)
                .map_err(|e| Failure::new(exit::BAD_INPUT, e.to_string()))?;
        }
        if rules.is_restricted() {
            tracing::info!(roots = ?rules.describe(), "job inputs and outputs are restricted to these roots");
        } else {
            tracing::warn!(
                "--allow-any-local-path: job inputs and outputs may be any absolute path this server's user can reach; use it on a single-user machine only"
            );
        }
        Ok(rules)
    }

    /// Installs the store key (before any store is opened); whether local stores are encrypted.
    pub fn install_store_key(&self) -> Result<bool, Failure> {
        let keys = match &self.store_key_file {
            Some(file) => Some(
                fresco_store::StoreKeys::from_file(file)
                    .map_err(|e| Failure::new(exit::BAD_INPUT, format!("--store-key-file: {e}")))?,
            ),
            None => fresco_store::StoreKeys::from_env()
                .map_err(|e| Failure::new(exit::BAD_INPUT, e.to_string()))?,
        };
        if let Some(keys) = &keys {
            tracing::info!(key_ids = ?keys.key_ids(), "local stores are encrypted at rest");
        }
        let encrypted = keys.is_some();
        fresco_store::set_local_keys(keys);
        Ok(encrypted)
    }
}

/// The data store's root as jobs name it: with encryption at rest a local folder becomes a
/// `file://` URL, so that workers read inputs and write outputs through the store (decrypting
/// into scratch, encrypting on upload) instead of handing ffmpeg the ciphertext.
pub fn data_root_for_jobs(root: String, encrypted: bool) -> String {
    if encrypted && !root.contains("://") && root.starts_with('/') {
        format!("file://{root}")
    } else {
        root
    }
}
