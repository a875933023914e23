//! The identity graph: which identifiers a customer is known by, and the rules that decide,
//! for the identifiers one message carries, which profile it belongs to, which profiles merge
//! and which conflicts a person must resolve.

use crate::ids::CustomerId;
use crate::{FieldError, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of an identifier. `External` names its source (`external:shopify`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKind {
    UserId,
    Email,
    Phone,
    Whatsapp,
    External(String),
    AnonymousId,
}

impl IdentityKind {
    pub fn as_string(&self) -> String {
        match self {
            IdentityKind::UserId => "user_id".into(),
            IdentityKind::AnonymousId => "anonymous_id".into(),
            IdentityKind::Email => "email".into(),
            IdentityKind::Phone => "phone".into(),
            IdentityKind::Whatsapp => "whatsapp".into(),
            IdentityKind::External(source) => format!("external:{source}"),
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Ok(match raw {
            "user_id" => IdentityKind::UserId,
            "anonymous_id" => IdentityKind::AnonymousId,
            "email" => IdentityKind::Email,
            "phone" => IdentityKind::Phone,
            "whatsapp" => IdentityKind::Whatsapp,
            other => match other.strip_prefix("external:") {
                Some(source) if !source.is_empty() && source.len() <= 64 => {
                    IdentityKind::External(source.to_string())
                }
                _ => return Err(FieldError::new(
                    "invalid_identity_kind",
                    "kind",
                    "expected user_id, anonymous_id, email, phone, whatsapp or external:<source>",
                )),
            },
        })
    }

    /// Identifiers that name a person for sure; two different ones never merge automatically.
    pub fn is_user_id(&self) -> bool {
        matches!(self, IdentityKind::UserId)
    }
}

impl Serialize for IdentityKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_string())
    }
}

impl<'de> Deserialize<'de> for IdentityKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        IdentityKind::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// One identifier: a kind and a normalised value (emails lower case, phones E.164).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdentityKey {
    pub kind: IdentityKind,
    pub value: String,
}

impl IdentityKey {
    pub fn new(kind: IdentityKind, value: impl Into<String>) -> Self {
        IdentityKey {
            kind,
            value: value.into(),
        }
    }
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_string(), self.value)
    }
}

/// An identifier attached to a profile, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub key: IdentityKey,
    /// The profile that owns the identifier. After a merge this is still the original profile;
    /// follow `merged_into` to reach the surviving one.
    pub customer_id: CustomerId,
    /// `api`, `import`, `identify`, `track`, `console`…
    pub source: String,
    pub created_at: Timestamp,
}

/// What the resolver knows about one surviving (root) profile that an identifier points to.
#[derive(Debug, Clone, PartialEq)]
pub struct RootProfile {
    pub id: CustomerId,
    pub created_at: Timestamp,
    /// The user ids known for this profile and everything merged into it.
    pub user_ids: Vec<String>,
}

/// An identifier that was found, and the root profile it leads to.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundIdentity {
    pub key: IdentityKey,
    pub root: CustomerId,
}

/// What to do with one message's identifiers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resolution {
    /// The profile the message belongs to; `None` means a new profile is to be created.
    pub target: Option<CustomerId>,
    /// `(loser, via)`: merge the root `loser` into the target, linked by identifier `via`.
    pub merges: Vec<(CustomerId, IdentityKey)>,
    /// `(other, via)`: `other` shares identifier `via` but has a different user id.
    pub conflicts: Vec<(CustomerId, IdentityKey)>,
    /// Identifiers not yet known, to attach to the target.
    pub attach: Vec<IdentityKey>,
}

/// Decides where a message's identifiers lead.
///
/// * `keys`: the identifiers the message carries (attached to the target when new);
/// * `found`: those of `keys` (and of any lookup-only keys) already known, with their roots;
/// * `roots`: what is known of each root in `found`.
///
/// Rules: the root that already owns the message's user id wins; else a root with a user id;
/// else the oldest root. Every other root merges into the winner, unless both have user ids and
/// they differ: two different user ids never merge, and the pair is reported as a conflict.
pub fn resolve(keys: &[IdentityKey], found: &[FoundIdentity], roots: &[RootProfile]) -> Resolution {
    let message_user_id = keys
        .iter()
        .find(|k| k.kind.is_user_id())
        .map(|k| k.value.clone());
    let root_info = |id: &CustomerId| roots.iter().find(|r| &r.id == id);

    // Distinct roots, each with the first identifier that led to it (keys are ordered by trust).
    let mut distinct: Vec<(CustomerId, IdentityKey)> = Vec::new();
    let mut ordered_found: Vec<&FoundIdentity> = found.iter().collect();
    ordered_found.sort_by(|a, b| a.key.cmp(&b.key));
    for f in ordered_found {
        if !distinct.iter().any(|(id, _)| id == &f.root) {
            distinct.push((f.root.clone(), f.key.clone()));
        }
    }

    let user_ids_of = |id: &CustomerId| {
        root_info(id)
            .map(|r| r.user_ids.clone())
            .unwrap_or_default()
    };
    let created_of = |id: &CustomerId| root_info(id).map(|r| r.created_at);

    let owner = message_user_id.as_ref().and_then(|u| {
        distinct
            .iter()
            .find(|(id, _)| user_ids_of(id).contains(u))
            .map(|(id, _)| id.clone())
    });
    let target = owner.or_else(|| {
        // A root with a different user id than the message's can never be the target.
        let eligible: Vec<&CustomerId> = distinct
            .iter()
            .map(|(id, _)| id)
            .filter(|id| message_user_id.is_none() || user_ids_of(id).is_empty())
            .collect();
        eligible
            .iter()
            .find(|id| !user_ids_of(id).is_empty())
            .or_else(|| {
                eligible
                    .iter()
                    .min_by_key(|id| (created_of(id), (**id).clone()))
            })
            .map(|id| (*id).clone())
    });

    let mut resolution = Resolution {
        target: target.clone(),
        ..Resolution::default()
    };
    let mut target_user_ids: Vec<String> = target.as_ref().map(&user_ids_of).unwrap_or_default();
    if let Some(u) = &message_user_id {
        if !target_user_ids.contains(u) {
            target_user_ids.push(u.clone());
        }
    }
    let mut conflicting: Vec<CustomerId> = Vec::new();
    for (id, via) in &distinct {
        if Some(id) == target.as_ref() {
            continue;
        }
        let theirs = user_ids_of(id);
        let clash = !theirs.is_empty()
            && !target_user_ids.is_empty()
            && theirs.iter().all(|u| !target_user_ids.contains(u));
        if clash {
            resolution.conflicts.push((id.clone(), via.clone()));
            conflicting.push(id.clone());
        } else {
            for u in theirs {
                if !target_user_ids.contains(&u) {
                    target_user_ids.push(u);
                }
            }
            resolution.merges.push((id.clone(), via.clone()));
        }
    }
    for key in keys {
        if !found.iter().any(|f| &f.key == key) && !resolution.attach.contains(key) {
            resolution.attach.push(key.clone());
        }
    }
    resolution
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(secs, 0).unwrap()
    }
    fn cid(n: u128) -> CustomerId {
        CustomerId::generate(1, n)
    }
    fn key(kind: IdentityKind, v: &str) -> IdentityKey {
        IdentityKey::new(kind, v)
    }

    #[test]
    fn unknown_identifiers_create_a_new_profile() {
        let keys = vec![key(IdentityKind::AnonymousId, "anon-1")];
        let r = resolve(&keys, &[], &[]);
        assert_eq!(r.target, None);
        assert_eq!(r.attach, keys);
    }

    #[test]
    fn identify_links_an_anonymous_visitor_to_the_known_customer() {
        let known = cid(1);
        let anon = cid(2);
        let keys = vec![
            key(IdentityKind::UserId, "u1"),
            key(IdentityKind::AnonymousId, "a1"),
        ];
        let found = vec![
            FoundIdentity {
                key: keys[0].clone(),
                root: known.clone(),
            },
            FoundIdentity {
                key: keys[1].clone(),
                root: anon.clone(),
            },
        ];
        let roots = vec![
            RootProfile {
                id: known.clone(),
                created_at: t(200),
                user_ids: vec!["u1".into()],
            },
            RootProfile {
                id: anon.clone(),
                created_at: t(100),
                user_ids: vec![],
            },
        ];
        let r = resolve(&keys, &found, &roots);
        assert_eq!(r.target, Some(known));
        assert_eq!(r.merges, vec![(anon, keys[1].clone())]);
        assert!(r.conflicts.is_empty());
        assert!(r.attach.is_empty());
    }

    #[test]
    fn a_new_user_id_on_a_shared_email_of_another_user_is_a_conflict_not_a_merge() {
        let other = cid(1);
        let keys = vec![
            key(IdentityKind::UserId, "u2"),
            key(IdentityKind::Email, "ana@x.com"),
        ];
        let found = vec![FoundIdentity {
            key: keys[1].clone(),
            root: other.clone(),
        }];
        let roots = vec![RootProfile {
            id: other.clone(),
            created_at: t(1),
            user_ids: vec!["u1".into()],
        }];
        let r = resolve(&keys, &found, &roots);
        assert_eq!(r.target, None, "u2 gets a profile of its own");
        assert!(r.merges.is_empty());
        assert_eq!(r.conflicts, vec![(other, keys[1].clone())]);
        assert_eq!(r.attach, vec![keys[0].clone()]);
    }

    #[test]
    fn two_anonymous_profiles_sharing_an_email_merge_into_the_oldest() {
        let old = cid(1);
        let young = cid(2);
        let keys = vec![
            key(IdentityKind::Email, "a@x.com"),
            key(IdentityKind::AnonymousId, "a2"),
        ];
        let found = vec![
            FoundIdentity {
                key: keys[0].clone(),
                root: young.clone(),
            },
            FoundIdentity {
                key: keys[1].clone(),
                root: old.clone(),
            },
        ];
        let roots = vec![
            RootProfile {
                id: old.clone(),
                created_at: t(1),
                user_ids: vec![],
            },
            RootProfile {
                id: young.clone(),
                created_at: t(2),
                user_ids: vec![],
            },
        ];
        let r = resolve(&keys, &found, &roots);
        assert_eq!(r.target, Some(old));
        assert_eq!(r.merges.len(), 1);
        assert_eq!(r.merges[0].0, young);
    }

    #[test]
    fn identity_kinds_round_trip() {
        for raw in [
            "user_id",
            "anonymous_id",
            "email",
            "phone",
            "whatsapp",
            "external:shopify",
        ] {
            assert_eq!(IdentityKind::parse(raw).unwrap().as_string(), raw);
        }
        assert!(IdentityKind::parse("external:").is_err());
        assert!(IdentityKind::parse("cpf").is_err());
    }
}
