//! Tenants' namespaces in the data store: what a submitter's `input`, `output` and `model` may
//! name, and where its uploads land.
//!
//! Each submitter has a namespace, `tenants/NAME/` in the data store, derived from its token's
//! name ([`namespace`]). Its relative names resolve inside it (`uploads/ID/clip.mp4` is
//! `DATA/tenants/NAME/uploads/ID/clip.mp4`), and so do its uploads. An absolute path or URL is
//! accepted only inside the namespace or inside a prefix an admin shared with the token
//! (`fresco tokens create --share PREFIX`, `POST /v1/tokens {"shares": [...]}`). Anything else
//! answers exactly as a location that does not exist (`factory::missing` builds that answer):
//! the same status, code and message shape whether or not something is there, so a submitter
//! learns nothing about other tenants' files, and `output-exists` or `overwrite` never reach
//! them.
//!
//! A shared prefix is a name in the data store (`shared/team-a`: a relative name that starts
//! with it resolves at the data store's root instead of the namespace) or an absolute root
//! (`/srv/media`, `az://container/in`). `--allow-prefix` roots are open to submitters only
//! through such a grant; the server's own roots still apply on top (the factory's
//! [`crate::limits::PathRules`]), so a grant cannot widen what the server reaches.
//!
//! Operators and admins keep the wider view: relative names resolve at the data store's root,
//! and absolute locations are checked against the server's roots only. Viewers submit nothing.

use crate::api::SubmitRequest;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::factory::missing;
use crate::limits::PathRules;

/// The folder of the data store that holds the namespaces.
pub const TENANTS: &str = "tenants";

/// A token name as one path segment: token names are letters, digits, `.`, `_` and `-`
/// (`fresco_queue::check_token_name`), so only `.` and `..` (and names that begin with a dot)
/// need care; they get a `~`, which no token name holds, so two names never share a namespace.
pub fn namespace_segment(owner: &str) -> String {
    let plain = !owner.is_empty()
        && !owner.starts_with('.')
        && owner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if plain {
        owner.to_string()
    } else {
        // Not a name fresco makes; kept apart from every name it does.
        let safe: String = owner
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("~{safe}")
    }
}

/// The namespace of `owner`, as a name in the data store: `tenants/NAME`.
pub fn namespace(owner: &str) -> String {
    format!("{TENANTS}/{}", namespace_segment(owner))
}

/// The key of an upload's object: in the uploader's namespace for a submitter.
pub fn upload_key(tenancy: Option<&Tenancy>, principal: &Principal, rest: &str) -> String {
    match (tenancy, principal.only_owner()) {
        (Some(_), Some(owner)) => format!("{}/{rest}", namespace(owner)),
        _ => rest.to_string(),
    }
}

/// The name a client gives as `input` for the object at `key`: without the namespace a
/// submitter's relative names resolve in.
pub fn client_name(key: &str) -> &str {
    key.strip_prefix(TENANTS)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.split_once('/'))
        .map_or(key, |(_, name)| name)
}

/// The tenancy rules of a server with a data store.
#[derive(Debug, Clone)]
pub struct Tenancy {
    /// The data store as jobs name it: an absolute folder or a URL (`file:///...`, `az://...`).
    data_root: String,
}

impl Tenancy {
    pub fn new(data_root: impl Into<String>) -> Tenancy {
        Tenancy {
            data_root: data_root.into(),
        }
    }

    /// A name of the data store as an absolute location.
    fn absolute(&self, name: &str) -> String {
        if self.data_root.contains("://") {
            format!("{}/{name}", self.data_root.trim_end_matches('/'))
        } else {
            std::path::Path::new(&self.data_root)
                .join(name)
                .display()
                .to_string()
        }
    }

    /// `request` as `principal` may make it: a submitter's relative names placed in its
    /// namespace (or at the root for a shared prefix), and every location it names checked to
    /// be inside the namespace or a share, else answered as missing. Others' requests are
    /// returned as they are.
    pub fn scope(
        &self,
        principal: &Principal,
        request: &SubmitRequest,
    ) -> Result<SubmitRequest, ApiError> {
        let Some(owner) = principal.only_owner() else {
            return Ok(request.clone());
        };
        let scoring = request.scoring.as_ref();
        // Every location a submitter names: the files the server reads or writes for it.
        let named = [
            ("input", Some(&request.input)),
            ("output", Some(&request.output)),
            ("model", request.model.as_ref()),
            ("scoring.labels", scoring.and_then(|s| s.labels.as_ref())),
            (
                "scoring.model_card",
                scoring.and_then(|s| s.model_card.as_ref()),
            ),
        ];
        // A URL parser drops tabs and line breaks, so `.\t.` would become `..` when a store
        // opens the location: refused as it is, before any rule reads the text.
        for (field, text) in named {
            if text.is_some_and(|t| t.chars().any(char::is_control)) {
                return Err(ApiError::bad_request(
                    "bad-path",
                    format!("{field}: a location holds no control characters (tabs, line breaks)"),
                ));
            }
        }
        let own = namespace(owner);
        let (rules, relative_shares) = self.grants(owner, principal);
        let place = |field: &str, text: &str| -> Result<String, ApiError> {
            if is_relative(text) {
                let shared = relative_shares
                    .iter()
                    .any(|share| text == share || text.starts_with(&format!("{share}/")));
                let name = if shared {
                    text.to_string()
                } else {
                    format!("{own}/{text}")
                };
                // Traversal in a relative name is refused by the factory (400 bad-path), from
                // the text alone. A name that stays inside by its text must stay inside once
                // the symlinks on its way are followed too.
                if is_plain_name(text) {
                    let location = self.absolute(&name);
                    if rules.check(field, &location).is_err() {
                        return Err(missing(field, &location).into());
                    }
                }
                return Ok(name);
            }
            match rules.check(field, text) {
                Ok(()) => Ok(text.to_string()),
                Err(_) => Err(missing(field, text).into()),
            }
        };
        let mut scoped = request.clone();
        scoped.input = place("input", &request.input)?;
        scoped.output = place("output", &request.output)?;
        if let Some(model) = &request.model {
            // Models are named by absolute paths only (the factory refuses relative ones).
            if !is_relative(model) {
                scoped.model = Some(place("model", model)?);
            }
        }
        if let Some(scoring) = &mut scoped.scoring {
            // Read whole for the plan, and pinned into the job by content: the same rule as
            // the input's, and the same answer as a file that is not there.
            for (field, file) in [
                ("scoring.labels", &mut scoring.labels),
                ("scoring.model_card", &mut scoring.model_card),
            ] {
                if let Some(text) = file {
                    *text = place(field, text)?;
                }
            }
        }
        Ok(scoped)
    }

    /// Where `principal` may read and write, as the job factory checks the files it finds on
    /// its own (the card beside a model, the labels a card names): its namespace and shares.
    /// `None` for operators and admins, who keep the server's roots.
    pub fn rules(&self, principal: &Principal) -> Option<PathRules> {
        let owner = principal.only_owner()?;
        Some(self.grants(owner, principal).0)
    }

    /// The roots `owner` may reach (its namespace and its shares, as absolute locations), and
    /// its shares that are names in the data store.
    fn grants(&self, owner: &str, principal: &Principal) -> (PathRules, Vec<String>) {
        let own = namespace(owner);
        let mut rules = PathRules::default();
        let mut relative_shares = Vec::new();
        for root in
            std::iter::once(self.absolute(&own)).chain(principal.shares.iter().map(|share| {
                if is_relative(share) {
                    relative_shares.push(share.trim_end_matches('/').to_string());
                    self.absolute(share.trim_end_matches('/'))
                } else {
                    share.clone()
                }
            }))
        {
            // A share that is no root at all (refused when granted) grants nothing.
            if let Ok(more) = rules.clone().allow(&root) {
                rules = more;
            }
        }
        (rules, relative_shares)
    }
}

/// A relative name the factory takes as it is (no `.`, `..` or empty segments, no
/// backslashes): one whose place can be checked.
fn is_plain_name(text: &str) -> bool {
    !text.contains('\\')
        && text
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// A name in the data store rather than an absolute path or a URL.
fn is_relative(text: &str) -> bool {
    !text.is_empty() && !text.contains("://") && !text.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_one_safe_segment_each() {
        assert_eq!(namespace("alice"), "tenants/alice");
        assert_eq!(namespace_segment("ci-bot.2"), "ci-bot.2");
        assert_eq!(namespace_segment(".."), "~..");
        assert_eq!(namespace_segment("."), "~.");
        assert_eq!(namespace_segment(".hidden"), "~.hidden");
        assert_eq!(namespace_segment("a/b"), "~a_b");
        assert_ne!(namespace_segment("~.."), namespace_segment(".."));
    }

    fn principal(name: &str, role: crate::auth::Role, shares: &[&str]) -> Principal {
        Principal {
            token_id: "tok_1".into(),
            name: name.into(),
            role,
            token_expires_at_ms: None,
            via: crate::auth::Via::Bearer,
            shares: shares.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn request(input: &str, output: &str) -> SubmitRequest {
        serde_json::from_value(serde_json::json!({
            "input": input, "output": output, "style": "vintage"
        }))
        .unwrap()
    }

    /// An object-store data store: names become URLs under the namespace's prefix, a share by
    /// name resolves at the root, and a URL outside both is answered as missing.
    #[test]
    fn object_store_namespaces_are_prefixes() {
        let tenancy = Tenancy::new("az://videos/data");
        let alice = principal("alice", crate::auth::Role::Submitter, &["shared/team"]);
        let scoped = tenancy
            .scope(&alice, &request("uploads/1/a.mp4", "styled/a.mp4"))
            .unwrap();
        assert_eq!(scoped.input, "tenants/alice/uploads/1/a.mp4");
        assert_eq!(scoped.output, "tenants/alice/styled/a.mp4");
        let shared = tenancy
            .scope(&alice, &request("shared/team/b.mp4", "out.mp4"))
            .unwrap();
        assert_eq!(shared.input, "shared/team/b.mp4");
        let own_url = "az://videos/data/tenants/alice/x.mp4";
        let scoped = tenancy.scope(&alice, &request(own_url, "o.mp4")).unwrap();
        assert_eq!(scoped.input, own_url);
        for foreign in [
            "az://videos/data/tenants/bob/x.mp4",
            "az://videos/data/tenants/alicex/x.mp4",
            "az://videos/data/shared/other/x.mp4",
            "az://other/data/tenants/alice/x.mp4",
            "s3://videos/data/tenants/alice/x.mp4",
        ] {
            let refused = tenancy
                .scope(&alice, &request(foreign, "o.mp4"))
                .unwrap_err();
            // As a missing object: 422, or 503 where the store cannot be opened here (no
            // Azure account in the environment), as the factory's own check answers then.
            assert!(
                matches!(refused.code, "input-missing" | "store-unavailable"),
                "{foreign}: {} {}",
                refused.code,
                refused.message
            );
        }
        let refused = tenancy
            .scope(
                &alice,
                &request("a.mp4", "az://videos/data/tenants/bob/o.mp4"),
            )
            .unwrap_err();
        assert_eq!(refused.code, "output-unwritable");
        // An operator's names are left as they are: the data store's root.
        let ops = principal("ops", crate::auth::Role::Operator, &[]);
        let scoped = tenancy
            .scope(&ops, &request("tenants/bob/x.mp4", "out.mp4"))
            .unwrap();
        assert_eq!(scoped.input, "tenants/bob/x.mp4");
    }

    #[test]
    fn client_names_drop_the_namespace() {
        assert_eq!(
            client_name("tenants/alice/uploads/1/a.mp4"),
            "uploads/1/a.mp4"
        );
        assert_eq!(client_name("uploads/1/a.mp4"), "uploads/1/a.mp4");
        assert_eq!(client_name("tenantsx/a/b"), "tenantsx/a/b");
    }
}
