//! Integration tests of the SQLite adapter: every storage conformance story against a fresh
//! database file, then what only SQLite has (files, connections, query plans).

mod sqlite;

use ciclo_store::conformance;
use ciclo_store::Store;
use ciclo_store_sqlite::SqliteStore;

/// A migrated store on a new file, in a directory that does not exist yet (open creates it).
/// Keep the `TempDir`: dropping it deletes the database.
pub fn fresh_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let path = dir.path().join("nested").join("ciclo.db");
    let store =
        SqliteStore::open(path.to_str().expect("utf-8 temp path")).expect("open the database");
    store.migrate().expect("migrate a new database");
    (dir, store)
}

/// One test per conformance story, so that a failure names its story; and the list of stories
/// run here, checked against the suite's own list.
macro_rules! conformance_stories {
    ($($story:ident),* $(,)?) => {
        $(
            #[test]
            fn $story() {
                let (_dir, store) = fresh_store();
                conformance::$story(&store);
            }
        )*
        const STORIES_RUN_HERE: &[&str] = &[$(stringify!($story)),*];
    };
}

conformance_stories!(
    accounts_round_trip,
    sessions_and_api_keys,
    operator_mfa_round_trip,
    customers_round_trip,
    customer_list_sorts_and_paging,
    customer_search,
    customer_filters,
    identities_round_trip,
    merges_and_conflicts,
    events_deduplicate_by_message_id,
    timeline_order_filters_and_paging,
    orders_insert_once_and_stats,
    imports_round_trip,
    workspace_isolation,
    delete_customer_removes_everything,
    updates_of_missing_rows_are_not_found,
    migrate_is_idempotent,
    failed_write_rolls_back,
    settings_round_trip,
    segments_round_trip,
    segment_members_and_counts,
    evaluation_queue,
    computed_stages_and_scores,
    stage_history_and_transitions,
    named_events_windows,
    scan_named_events_streams,
    merged_profiles_listed,
    customer_and_order_summaries_stream,
    customer_list_stage_and_segment_filters,
    delete_customer_clears_segments_and_lifecycle,
    segments_and_lifecycle_workspace_isolation,
);

#[test]
fn every_conformance_story_runs_against_sqlite() {
    for (name, _) in conformance::STORIES {
        assert!(
            STORIES_RUN_HERE.contains(name),
            "story `{name}` is not run here: add it to conformance_stories!"
        );
    }
}

#[test]
fn the_whole_suite_passes_on_an_in_memory_database() {
    conformance::run_all(&|| {
        let store = SqliteStore::open(":memory:").expect("open an in-memory database");
        store.migrate().expect("migrate");
        Box::new(store) as Box<dyn Store>
    });
}
