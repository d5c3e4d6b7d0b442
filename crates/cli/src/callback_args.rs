//! `fresco serve`'s flags for completion callbacks: which non-public hosts they may reach, and
//! the secrets that sign them (see `fresco_server::callback`).

use std::path::{Path, PathBuf};

use clap::Args;
use fresco_server::outbound::CallbackPolicy;
use fresco_server::webhook::WebhookSecrets;
use fresco_server::CallbackSettings;

use crate::exit::{self, Failure};

#[derive(Debug, Args)]
pub struct CallbackArgs {
    /// A host name, IP address or CIDR range that completion callbacks may reach although it is
    /// not public (loopback, private, link-local ... are refused otherwise). Repeat, or give a
    /// comma-separated list.
    #[arg(
        long,
        env = "FRESCO_CALLBACK_ALLOW",
        value_delimiter = ',',
        value_name = "HOST|CIDR"
    )]
    pub callback_allow: Vec<String>,
    /// A file of the secrets that sign completion callbacks (`whsec_` and base64, one per line;
    /// every one signs, so a new one can be added before the old one is dropped). Default: a
    /// secret generated once and kept in `webhook-secret` in the work folder.
    #[arg(long, env = "FRESCO_WEBHOOK_SECRET_FILE", value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
}

impl CallbackArgs {
    /// The callback settings: the policy and the secrets (read, or generated and stored in
    /// `work_dir`).
    pub fn settings(&self, work_dir: &Path) -> Result<CallbackSettings, Failure> {
        let mut policy = CallbackPolicy::default();
        for entry in self.callback_allow.iter().filter(|e| !e.trim().is_empty()) {
            policy
                .allow(entry)
                .map_err(|e| Failure::new(exit::BAD_INPUT, e))?;
        }
        let secrets = match &self.webhook_secret_file {
            Some(path) => WebhookSecrets::from_file(path).map_err(|e| {
                Failure::new(exit::BAD_INPUT, format!("--webhook-secret-file: {e}"))
            })?,
            None => {
                let path = work_dir.join("webhook-secret");
                let (secrets, generated) = WebhookSecrets::load_or_generate(&path)
                    .map_err(|e| Failure::new(exit::OUTPUT, e.to_string()))?;
                if generated {
                    tracing::info!(path = %path.display(), "no --webhook-secret-file: completion callbacks are signed with a secret generated now and kept in this file; give it to the receivers");
                }
                secrets
            }
        };
        Ok(CallbackSettings {
            policy,
            secrets,
            ..CallbackSettings::default()
        })
    }
}
