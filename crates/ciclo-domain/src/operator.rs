//! Workspaces (tenants), operators, their roles, sessions and API keys.

use crate::ids::{ApiKeyId, OperatorId, WorkspaceId};
use crate::{FieldError, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    /// The Segment write key: identifies the workspace to ingestion. Like Segment's, it is not a
    /// secret (it ships in web pages), so it is stored as is and can be shown again.
    pub write_key: String,
    pub locale: String,
    pub time_zone: String,
    pub currency: String,
    /// ISO 3166 region used to read phone numbers written without a country code.
    pub default_region: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Marketer,
    Agent,
    Analyst,
}

/// What an operator or key may do. Each endpoint names the one permission it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read profiles, timelines, orders.
    ReadCustomers,
    /// Create, edit, tag, merge, un-merge, delete profiles; import.
    WriteCustomers,
    /// Export customer data in bulk.
    ExportCustomers,
    /// Operators, roles, API keys, workspace settings.
    ManageWorkspace,
    /// Change owners, delete the workspace.
    OwnWorkspace,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Marketer => "marketer",
            Role::Agent => "agent",
            Role::Analyst => "analyst",
        }
    }

    pub fn parse(raw: &str) -> Result<Role, FieldError> {
        Ok(match raw {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "marketer" => Role::Marketer,
            "agent" => Role::Agent,
            "analyst" => Role::Analyst,
            _ => {
                return Err(FieldError::new(
                    "invalid_role",
                    "role",
                    "expected owner, admin, marketer, agent or analyst",
                ))
            }
        })
    }

    /// The role matrix: owners do everything; admins all but ownership; marketers work with
    /// customer data including export; agents read and edit the customers they serve; analysts
    /// read and export.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Owner => true,
            Role::Admin => !matches!(permission, OwnWorkspace),
            Role::Marketer => {
                matches!(permission, ReadCustomers | WriteCustomers | ExportCustomers)
            }
            Role::Agent => matches!(permission, ReadCustomers | WriteCustomers),
            Role::Analyst => matches!(permission, ReadCustomers | ExportCustomers),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operator {
    pub id: OperatorId,
    pub email: String,
    pub name: String,
    /// Argon2id PHC string.
    #[serde(skip_serializing)]
    pub password_hash: String,
    pub locale: Option<String>,
    pub active: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    pub workspace_id: WorkspaceId,
    pub operator_id: OperatorId,
    pub role: Role,
}

/// A signed-in browser or API session. Only the SHA-256 of the token is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub token_hash: String,
    pub operator_id: OperatorId,
    pub workspace_id: WorkspaceId,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A secret API key for the admin API. Only its SHA-256 is stored; the key is shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub role: Role,
    /// The first characters of the key, to tell keys apart in lists (`sk_live_ab12…`).
    pub prefix: String,
    #[serde(skip_serializing)]
    pub key_hash: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_matrix() {
        assert!(Role::Owner.allows(Permission::OwnWorkspace));
        assert!(!Role::Admin.allows(Permission::OwnWorkspace));
        assert!(Role::Admin.allows(Permission::ManageWorkspace));
        assert!(!Role::Marketer.allows(Permission::ManageWorkspace));
        assert!(!Role::Agent.allows(Permission::ExportCustomers));
        assert!(!Role::Analyst.allows(Permission::WriteCustomers));
        assert!(Role::Analyst.allows(Permission::ExportCustomers));
        assert_eq!(Role::parse("agent").unwrap(), Role::Agent);
        assert_eq!(Role::parse("root").unwrap_err().code, "invalid_role");
    }
}
