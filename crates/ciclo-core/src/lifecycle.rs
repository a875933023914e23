//! Lifecycle stages as stored: the per-workspace rules, each customer's stage with its history,
//! and counts. The stage itself is computed by `evaluate` (in real time and on a schedule) from
//! `ciclo_domain::lifecycle::LifecycleRules`.

use crate::accounts::Actor;
use crate::error::{CoreError, CoreResult};
use crate::evaluate::{lifecycle_rules, LIFECYCLE_RULES_SETTING};
use crate::identity::{merge_set, root_of};
use crate::Ciclo;
use ciclo_domain::ids::CustomerId;
use ciclo_domain::lifecycle::{LifecycleRules, Stage};
use ciclo_domain::operator::Permission;
use ciclo_domain::{FieldError, Timestamp};
use ciclo_store::{read, write, StageChange, StageTransition};
use serde::Serialize;
use std::collections::HashSet;

/// A customer's stage now and how they got there.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerLifecycle {
    /// None until the evaluator has seen the customer.
    pub stage: Option<Stage>,
    pub since: Option<Timestamp>,
    /// Newest first.
    pub history: Vec<StageChange>,
}

/// Checks rules an operator sends: every number in range and the stages in a sensible order.
pub fn check_rules(rules: &LifecycleRules) -> CoreResult<()> {
    let mut errors = Vec::new();
    let mut need = |ok: bool, field: &str, reason: &str| {
        if !ok {
            errors.push(FieldError::new("out_of_range", field, reason));
        }
    };
    need(
        (1..=3650).contains(&rules.acquisition_days),
        "acquisition_days",
        "between 1 and 3650 days",
    );
    need(
        (1..=3650).contains(&rules.at_risk_after_days),
        "at_risk_after_days",
        "between 1 and 3650 days",
    );
    need(
        (1..=7300).contains(&rules.lapsed_after_days),
        "lapsed_after_days",
        "between 1 and 7300 days",
    );
    need(
        rules.lapsed_after_days > rules.at_risk_after_days,
        "lapsed_after_days",
        "must be more than at_risk_after_days",
    );
    need(
        (2..=1000).contains(&rules.loyalty_min_orders),
        "loyalty_min_orders",
        "between 2 and 1000 orders",
    );
    need(
        rules.loyalty_min_spent_minor >= 0,
        "loyalty_min_spent_minor",
        "cannot be negative",
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CoreError::Invalid(errors))
    }
}

impl Ciclo {
    /// The workspace's lifecycle rules (the documented defaults until changed).
    pub fn lifecycle_rules(&self, actor: &Actor) -> CoreResult<LifecycleRules> {
        actor.require(Permission::ReadCustomers)?;
        Ok(read(&*self.store, |tx| {
            lifecycle_rules(tx, &actor.workspace.id)
        })?)
    }

    /// Saves new rules and re-evaluates every customer's stage with them before returning (each
    /// change is recorded in the history and on the timeline).
    pub fn set_lifecycle_rules(
        &self,
        actor: &Actor,
        rules: &LifecycleRules,
    ) -> CoreResult<LifecycleRules> {
        actor.require(Permission::ManageWorkspace)?;
        check_rules(rules)?;
        let ws = actor.workspace.id.clone();
        let value = serde_json::to_value(rules)
            .map_err(|e| CoreError::Store(ciclo_store::StoreError::Backend(e.to_string())))?;
        write(&*self.store, |tx| {
            tx.put_setting(&ws, LIFECYCLE_RULES_SETTING, &value)
        })?;
        // Segments that read the stage follow through the evaluation queue.
        self.refresh_workspace(&ws, Some(&[]), true, &HashSet::new())?;
        self.mark_stage_readers(&ws)?;
        Ok(rules.clone())
    }

    /// After stages moved in bulk, segments reading `lifecycle_stage` are evaluated again.
    fn mark_stage_readers(&self, ws: &ciclo_domain::ids::WorkspaceId) -> CoreResult<()> {
        let ids: Vec<_> = read(&*self.store, |tx| {
            Ok(tx
                .list_segments(ws)?
                .into_iter()
                .filter(|s| {
                    s.definition.as_ref().is_some_and(|d| {
                        ciclo_domain::segment::depends_on(d).depends_on_field("lifecycle_stage")
                    })
                })
                .map(|s| s.id)
                .collect())
        })?;
        if !ids.is_empty() {
            self.refresh_workspace(ws, Some(&ids), false, &HashSet::new())?;
        }
        Ok(())
    }

    /// A customer's stage and stage history (of every profile merged into it).
    pub fn customer_lifecycle(
        &self,
        actor: &Actor,
        customer: &CustomerId,
    ) -> CoreResult<CustomerLifecycle> {
        actor.require(Permission::ReadCustomers)?;
        let ws = &actor.workspace.id;
        read(&*self.store, |tx| {
            let Some(root) = root_of(tx, ws, customer)? else {
                return Ok(Err(CoreError::NotFound("customer")));
            };
            let set = merge_set(tx, ws, &root.id)?;
            let computed = tx
                .computed_of(ws, std::slice::from_ref(&root.id))?
                .into_iter()
                .next();
            let history = tx.stage_history(ws, &set)?;
            Ok(Ok(CustomerLifecycle {
                stage: computed.as_ref().and_then(|c| c.stage),
                since: computed.and_then(|c| c.stage_since),
                history,
            }))
        })?
    }

    /// Surviving customers per stored stage, every stage listed (zero included), in the
    /// order of the cycle.
    pub fn stage_counts(&self, actor: &Actor) -> CoreResult<Vec<(Stage, i64)>> {
        actor.require(Permission::ReadCustomers)?;
        let counts = read(&*self.store, |tx| tx.stage_counts(&actor.workspace.id))?;
        Ok(Stage::ALL
            .iter()
            .map(|s| {
                (
                    *s,
                    counts
                        .iter()
                        .find(|(stage, _)| stage == s)
                        .map_or(0, |(_, n)| *n),
                )
            })
            .collect())
    }

    /// Moves between stages recorded in `[from, to)`, by (from, to), most frequent first.
    pub fn stage_flow(
        &self,
        actor: &Actor,
        from: Timestamp,
        to: Timestamp,
    ) -> CoreResult<Vec<StageTransition>> {
        actor.require(Permission::ReadCustomers)?;
        if from >= to {
            return Err(CoreError::invalid(
                "invalid_period",
                "from",
                "the start of the period must be before its end",
            ));
        }
        let mut flow = read(&*self.store, |tx| {
            tx.stage_transitions(&actor.workspace.id, from, to)
        })?;
        flow.sort_by_key(|t| std::cmp::Reverse(t.customers));
        Ok(flow)
    }
}
