//! The shared storage conformance suite (`ciclo_store::conformance`), one test per story, each
//! on a fresh, migrated database.

use crate::fresh_database;
use crate::support::TestDatabaseStores as _;
use ciclo_store::conformance;

macro_rules! stories {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let db = fresh_database!();
                conformance::$name(&db.migrated_store());
            }
        )*

        /// A story added to the suite must get a test here too.
        #[test]
        fn every_story_has_a_test() {
            let ours = [$(stringify!($name)),*];
            for (name, _) in conformance::STORIES {
                assert!(ours.contains(name), "conformance story {name} has no test in this crate");
            }
        }
    };
}

stories!(
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
