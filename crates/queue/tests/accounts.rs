//! Tokens, sessions, job owners, caps and the audit trail ([`fresco_queue::Accounts`]) on every
//! backend: SQLite always, PostgreSQL when `FRESCO_TEST_POSTGRES_URL` names a server.

use std::sync::Arc;

use fresco_queue::{
    hash_secret, now_ms, Admission, AuditFilter, CapReached, NewToken, Queue, QueueError, Role,
    Submitted,
};

mod support;
use support::{job, Db};

fn token(name: &str, role: Role, expires_at_ms: Option<i64>) -> NewToken {
    NewToken {
        name: name.into(),
        role,
        expires_at_ms,
    }
}

async fn tokens_authenticate_until_revoked_or_expired(db: &Db) {
    let q = db.open().await;
    let issued = q
        .create_token(&token("ci", Role::Submitter, None), None)
        .await
        .unwrap();
    let found = q
        .authenticate(&hash_secret(&issued.secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.name.as_str(), found.role), ("ci", Role::Submitter));
    assert!(q
        .authenticate(&hash_secret("fresco_other"))
        .await
        .unwrap()
        .is_none());
    // Names are never reused, even once revoked.
    let again = q.create_token(&token("ci", Role::Admin, None), None).await;
    assert!(matches!(again, Err(QueueError::NameTaken(_))), "{again:?}");
    let expired = q
        .create_token(&token("old", Role::Viewer, Some(now_ms() - 1)), Some("ci"))
        .await
        .unwrap();
    assert!(q
        .authenticate(&hash_secret(&expired.secret))
        .await
        .unwrap()
        .is_none());
    // A session lives with its token.
    q.open_session("s-hash", &found.id, "c-hash", now_ms() + 60_000)
        .await
        .unwrap();
    assert_eq!(q.session("s-hash").await.unwrap().unwrap().token.name, "ci");
    q.open_session("old-session", &found.id, "c", now_ms() - 1)
        .await
        .unwrap();
    assert!(
        q.session("old-session").await.unwrap().is_none(),
        "an expired session"
    );
    let revoked = q.revoke_token("ci", Some("admin")).await.unwrap().unwrap();
    assert!(revoked.revoked_at_ms.is_some());
    assert!(q
        .authenticate(&hash_secret(&issued.secret))
        .await
        .unwrap()
        .is_none());
    assert!(
        q.session("s-hash").await.unwrap().is_none(),
        "revoking ends sessions"
    );
    assert!(q.revoke_token("nobody", None).await.unwrap().is_none());
    let listed = q.tokens().await.unwrap();
    assert_eq!(listed.len(), 2);
    let audit = q
        .audit_log(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<(Option<&str>, &str, Option<&str>)> = audit
        .iter()
        .map(|e| (e.actor.as_deref(), e.action.as_str(), e.target.as_deref()))
        .collect();
    assert_eq!(
        actions,
        [
            (Some("admin"), "token-revoke", Some("ci")),
            (Some("ci"), "token-create", Some("old")),
            (None, "token-create", Some("ci")),
        ]
    );
}

async fn owned_submissions_respect_the_caps(db: &Db) {
    let q: Arc<dyn Queue> = db.open().await;
    let admit = |owner: &str| Admission {
        owner: owner.into(),
        max_active_per_owner: Some(2),
        max_active: Some(3),
        callback_url: None,
    };
    let a1 = q.submit_owned(job("a1"), &admit("alice")).await.unwrap();
    q.submit_owned(job("a2"), &admit("alice")).await.unwrap();
    match q.submit_owned(job("a3"), &admit("alice")).await {
        Err(QueueError::CapReached(CapReached::Owner { active: 2, cap: 2 })) => {}
        other => panic!("{other:?}"),
    }
    // The same work again is the same job, whatever the cap.
    assert_eq!(
        q.submit_owned(job("a1"), &admit("alice")).await.unwrap(),
        Submitted::Existing(a1.id().to_string())
    );
    q.submit_owned(job("b1"), &admit("bob")).await.unwrap();
    match q.submit_owned(job("b2"), &admit("bob")).await {
        Err(QueueError::CapReached(CapReached::Total { active: 3, cap: 3 })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(q.active_jobs(Some("alice")).await.unwrap(), 2);
    assert_eq!(q.active_jobs(None).await.unwrap(), 3);
    let mine = q.owned_jobs_before("alice", &[], 10, None).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|j| j.owner.as_deref() == Some("alice")));
    // A canceled job no longer counts.
    q.cancel(a1.id()).await.unwrap();
    q.submit_owned(job("a3"), &admit("alice")).await.unwrap();
}

/// Shared prefixes granted to a token come back with it: when it authenticates, in a session,
/// in the list; replacing them is audited; an unknown token is None.
async fn shared_prefixes_are_kept_with_the_token(db: &Db) {
    let q = db.open().await;
    let issued = q
        .create_token(&token("team", Role::Submitter, None), None)
        .await
        .unwrap();
    assert!(issued.record.shares.is_empty());
    let shares = vec!["shared/team-a".to_string(), "/srv/media".to_string()];
    let record = q
        .set_token_shares("team", &shares, Some("root"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.shares, shares);
    let found = q
        .authenticate(&hash_secret(&issued.secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.shares, shares);
    q.open_session("team-session", &found.id, "c", now_ms() + 60_000)
        .await
        .unwrap();
    let session = q.session("team-session").await.unwrap().unwrap();
    assert_eq!(session.token.shares, shares);
    let listed = q.tokens().await.unwrap();
    assert_eq!(
        listed.iter().find(|t| t.name == "team").unwrap().shares,
        shares
    );
    let audit = q
        .audit_log(&AuditFilter {
            target: Some("team".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit[0].action, "token-share");
    assert_eq!(audit[0].actor.as_deref(), Some("root"));
    // Withdrawn: no share left.
    let none = q
        .set_token_shares(&found.id, &[], None)
        .await
        .unwrap()
        .unwrap();
    assert!(none.shares.is_empty());
    assert!(q
        .set_token_shares("nobody", &shares, None)
        .await
        .unwrap()
        .is_none());
}

macro_rules! backend_tests {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check(&super::Db::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(db) = super::Db::postgres().await else { return };
                    super::$check(&db).await;
                }
            )*
        }
    };
}

backend_tests!(
    tokens_authenticate_until_revoked_or_expired,
    owned_submissions_respect_the_caps,
    shared_prefixes_are_kept_with_the_token,
);
