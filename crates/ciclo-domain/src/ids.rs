//! Prefixed, sortable identifiers (`cus_01h…`): a ULID made from a time and randomness that the
//! caller supplies, so the domain never reads a clock or an RNG.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id from milliseconds since the epoch and 80 random bits.
            pub fn generate(unix_ms: u64, random: u128) -> Self {
                $name(format!(
                    "{}_{}",
                    $prefix,
                    ulid::Ulid::from_parts(unix_ms, random)
                        .to_string()
                        .to_lowercase()
                ))
            }

            /// Accepts only a well-formed id with this type's prefix.
            pub fn parse(raw: &str) -> Result<Self, crate::FieldError> {
                let rest = raw.strip_prefix(concat!($prefix, "_")).ok_or_else(|| {
                    crate::FieldError::new(
                        "invalid_id",
                        "id",
                        format!("expected an id starting with {}_", $prefix),
                    )
                })?;
                if rest.len() != 26 || !rest.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(crate::FieldError::new("invalid_id", "id", "malformed id"));
                }
                Ok($name(raw.to_ascii_lowercase()))
            }

            /// Wraps a value read back from storage, trusted to be well formed.
            pub fn from_trusted(raw: String) -> Self {
                $name(raw)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The ULID as a number (ids sort as their numbers do), for compact in-memory
            /// indexes; `None` for an id not made by [`Self::generate`].
            pub fn to_u128(&self) -> Option<u128> {
                let rest = self.0.strip_prefix(concat!($prefix, "_"))?;
                ulid::Ulid::from_string(&rest.to_ascii_uppercase())
                    .ok()
                    .map(|u| u.0)
            }

            /// The id whose number [`Self::to_u128`] gave.
            pub fn from_u128(value: u128) -> Self {
                $name(format!(
                    "{}_{}",
                    $prefix,
                    ulid::Ulid(value).to_string().to_lowercase()
                ))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(WorkspaceId, "ws");
prefixed_id!(OperatorId, "op");
prefixed_id!(CustomerId, "cus");
prefixed_id!(EventId, "evt");
prefixed_id!(OrderId, "ord");
prefixed_id!(MergeId, "mrg");
prefixed_id!(ConflictId, "cfl");
prefixed_id!(ApiKeyId, "key");
prefixed_id!(ImportId, "imp");
prefixed_id!(SegmentId, "seg");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let a = CustomerId::generate(1_700_000_000_000, 7);
        let b = CustomerId::generate(1_700_000_000_001, 1);
        assert!(a.as_str().starts_with("cus_"));
        assert!(a < b);
        assert_eq!(CustomerId::parse(a.as_str()).unwrap(), a);
        let number = a.to_u128().unwrap();
        assert_eq!(CustomerId::from_u128(number), a);
        assert!(number < b.to_u128().unwrap());
        assert_eq!(
            CustomerId::from_trusted("cus_nonsense".into()).to_u128(),
            None
        );
        assert_eq!(CustomerId::parse("evt_01h").unwrap_err().code, "invalid_id");
        assert!(EventId::parse(a.as_str()).is_err());
    }
}
