//! Identity graph use cases: automatic resolution of a message's identifiers (merges and
//! conflicts), manual merge, and undoing a merge.

use crate::accounts::Actor;
use crate::error::CoreResult;
use crate::Ciclo;
use ciclo_domain::ids::{ConflictId, CustomerId, MergeId};
use ciclo_store::{IdentityConflict, MergeRecord};

impl Ciclo {
    /// Merges `loser` into `winner` at an operator's request. Refused (409 `user_id_conflict`)
    /// when both have different user ids unless `force` is set.
    pub fn merge_customers(&self, actor: &Actor, winner: &CustomerId, loser: &CustomerId, force: bool) -> CoreResult<MergeRecord> {
        let _ = (actor, winner, loser, force);
        todo!()
    }

    /// Undoes a merge: both profiles exist again with their own identities, events and orders;
    /// fields the merge filled in on the winner are cleared. Profiles merged into the loser stay
    /// with the loser.
    pub fn unmerge(&self, actor: &Actor, merge: &MergeId) -> CoreResult<MergeRecord> {
        let _ = (actor, merge);
        todo!()
    }

    pub fn list_conflicts(&self, actor: &Actor, open_only: bool) -> CoreResult<Vec<IdentityConflict>> {
        let _ = (actor, open_only);
        todo!()
    }

    /// Resolves a conflict by merging (`merge = true`, b into a) or keeping the profiles apart.
    pub fn resolve_conflict(&self, actor: &Actor, id: &ConflictId, merge: bool) -> CoreResult<IdentityConflict> {
        let _ = (actor, id, merge);
        todo!()
    }
}
