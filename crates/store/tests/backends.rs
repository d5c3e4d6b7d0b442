//! The shared store suite (`checks`), run on a local folder always and on Azurite when
//! `FRESCO_TEST_AZURITE=1` (start it with `eval "$(scripts/azurite.sh)"`); without it the Azurite
//! tests say "SKIPPED" and pass, unless `FRESCO_REQUIRE_AZURITE=1`.

mod checks;
mod support;

macro_rules! suite {
    ($($check:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let fixture = crate::support::Fixture::local();
                    crate::checks::$check(&fixture).await;
                }
            )*
        }

        mod azurite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(fixture) = crate::support::Fixture::azurite(stringify!($check)) else {
                        return;
                    };
                    crate::checks::$check(&fixture).await;
                }
            )*
        }
    };
}

suite!(
    upload_download_round_trip,
    failed_upload_leaves_nothing,
    download_respects_the_budget,
    ranged_reads,
    capped_reads,
    put_if_absent_creates_once,
    list_with_etags,
    prefixes_isolate_stores,
    delete_prefix_counts,
    bad_keys_are_refused,
    equivalent_urls_share_objects,
);

#[test]
fn bad_urls_are_refused() {
    for url in [
        "",
        "gs://bucket/x",
        "https://example.com/x",
        "az://",
        "s3://b/x?secret=1",
        "az://c/../x",
    ] {
        let err = fresco_store::Store::from_url(url).unwrap_err();
        assert!(
            matches!(err, fresco_store::StoreError::BadUrl { .. }),
            "{url}: {err}"
        );
        assert!(
            err.to_string().contains(&format!("'{url}'")),
            "{url}: {err}"
        );
    }
}

#[test]
fn relative_folders_are_made_absolute() {
    // Tests run in crates/store; the workspace's target folder is git-ignored.
    let relative = "../../target/fresco-store-relative-test";
    let store = fresco_store::Store::from_url(relative).unwrap();
    let folder = std::fs::canonicalize(relative).unwrap();
    let expected = url::Url::from_directory_path(folder).unwrap();
    assert_eq!(store.display_url() + "/", expected.to_string());
    assert!(
        !store.display_url().contains(".."),
        "{}",
        store.display_url()
    );
}
