//! Workspaces, operators, sign-in sessions and API keys, and the [`Actor`] every use case is
//! called on behalf of.

use crate::error::{CoreError, CoreResult};
use crate::Ciclo;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use ciclo_domain::ids::{ApiKeyId, OperatorId, WorkspaceId};
use ciclo_domain::operator::{ApiKey, Membership, Operator, Permission, Role, Session, Workspace};
use ciclo_domain::FieldError;
use ciclo_store::{read, write, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Sessions last this long after sign-in.
pub const SESSION_DAYS: i64 = 14;
/// Secret keys start with this, so a leaked one is easy to spot in code and logs.
pub const SECRET_KEY_PREFIX: &str = "sk_";

/// Who is acting: an operator signed in to a workspace, or a secret API key of one.
#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    pub workspace: Workspace,
    pub role: Role,
    pub operator_id: Option<OperatorId>,
    pub api_key_id: Option<ApiKeyId>,
}

impl Actor {
    /// Fails with `Forbidden` unless the actor's role grants `permission`.
    pub fn require(&self, permission: Permission) -> CoreResult<()> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(CoreError::Forbidden(permission_name(permission)))
        }
    }

    /// A short text naming the actor, for audit fields (`op_…` or `key_…`).
    pub fn label(&self) -> String {
        match (&self.operator_id, &self.api_key_id) {
            (Some(op), _) => op.to_string(),
            (None, Some(key)) => key.to_string(),
            _ => "system".into(),
        }
    }

    pub fn workspace_id(&self) -> &WorkspaceId {
        &self.workspace.id
    }
}

fn permission_name(p: Permission) -> &'static str {
    match p {
        Permission::ReadCustomers => "read_customers",
        Permission::WriteCustomers => "write_customers",
        Permission::ExportCustomers => "export_customers",
        Permission::ManageWorkspace => "manage_workspace",
        Permission::OwnWorkspace => "own_workspace",
    }
}

/// SHA-256 in hex: how tokens and keys are stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn hash_password(password: &str) -> CoreResult<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Store(StoreError::Backend(format!("argon2: {e}"))))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn validate_password(password: &str) -> CoreResult<()> {
    if password.chars().count() < 10 {
        return Err(CoreError::invalid(
            "weak_password",
            "password",
            "use at least 10 characters",
        ));
    }
    Ok(())
}

/// What the first start created, to print once.
#[derive(Debug, Clone, Serialize)]
pub struct Bootstrap {
    pub workspace: Workspace,
    pub owner_email: String,
    /// The generated password, shown once (none when the caller chose it).
    pub owner_password: Option<String>,
}

/// Settings for a new workspace.
#[derive(Debug, Clone)]
pub struct NewWorkspace {
    pub name: String,
    pub locale: String,
    pub time_zone: String,
    pub currency: String,
    pub default_region: String,
}

impl Default for NewWorkspace {
    fn default() -> Self {
        NewWorkspace {
            name: "Minha Loja".into(),
            locale: "pt-BR".into(),
            time_zone: "America/Sao_Paulo".into(),
            currency: "BRL".into(),
            default_region: "BR".into(),
        }
    }
}

impl Ciclo {
    /// On first start (no workspace yet) creates a workspace and its owner; otherwise `None`.
    pub fn bootstrap(
        &self,
        settings: NewWorkspace,
        owner_email: &str,
        owner_password: Option<&str>,
    ) -> CoreResult<Option<Bootstrap>> {
        let existing = read(&*self.store, |tx| tx.count_workspaces())?;
        if existing > 0 {
            return Ok(None);
        }
        let generated = owner_password.is_none().then(|| self.random.token(12));
        let password = owner_password
            .map(str::to_string)
            .or(generated.clone())
            .unwrap_or_default();
        validate_password(&password)?;
        let email = owner_email.trim().to_lowercase();
        let workspace = self.create_workspace_with_owner(settings, &email, "Owner", &password)?;
        Ok(Some(Bootstrap {
            workspace,
            owner_email: email,
            owner_password: generated,
        }))
    }

    /// Creates a workspace and makes the operator with this email its owner (creating the
    /// operator with `password` if there is none).
    pub fn create_workspace_with_owner(
        &self,
        settings: NewWorkspace,
        email: &str,
        name: &str,
        password: &str,
    ) -> CoreResult<Workspace> {
        let now = self.clock.now();
        let workspace = Workspace {
            id: self.new_id(WorkspaceId::generate),
            name: settings.name,
            write_key: format!("wk_{}", self.random.token(18)),
            locale: settings.locale,
            time_zone: settings.time_zone,
            currency: settings.currency,
            default_region: settings.default_region,
            created_at: now,
        };
        let password_hash = hash_password(password)?;
        let new_operator_id = self.new_id(OperatorId::generate);
        write(&*self.store, |tx| {
            tx.insert_workspace(&workspace)?;
            let operator = match tx.operator_by_email(email)? {
                Some(op) => op,
                None => {
                    let op = Operator {
                        id: new_operator_id.clone(),
                        email: email.to_string(),
                        name: name.to_string(),
                        password_hash: password_hash.clone(),
                        locale: None,
                        active: true,
                        created_at: now,
                    };
                    tx.insert_operator(&op)?;
                    op
                }
            };
            tx.upsert_membership(&Membership {
                workspace_id: workspace.id.clone(),
                operator_id: operator.id,
                role: Role::Owner,
            })
        })?;
        Ok(workspace)
    }

    /// Checks email and password; on success opens a session in the operator's first workspace
    /// (or `workspace` when given and the operator belongs to it). Returns the session token.
    /// An operator with two-factor sign-in gets `SecondFactorRequired` (with the challenge)
    /// here; [`Ciclo::login_start`] and [`Ciclo::login_complete`] are the two-step form.
    pub fn login(
        &self,
        email: &str,
        password: &str,
        workspace: Option<&WorkspaceId>,
    ) -> CoreResult<(String, Session)> {
        match self.login_start(email, password, workspace)? {
            crate::mfa::LoginStep::Done(token, session) => Ok((token, session)),
            crate::mfa::LoginStep::SecondFactor { challenge } => {
                Err(CoreError::SecondFactorRequired(challenge))
            }
        }
    }

    /// The password check and session of [`Ciclo::login`], without the second factor.
    pub(crate) fn login_password_only(
        &self,
        email: &str,
        password: &str,
        workspace: Option<&WorkspaceId>,
    ) -> CoreResult<(String, Session)> {
        let email = email.trim().to_lowercase();
        let operator = read(&*self.store, |tx| tx.operator_by_email(&email))?;
        let Some(operator) = operator.filter(|o| o.active) else {
            // Spend the same time as a real check so that timing does not reveal which emails exist.
            let _ = verify_password(password, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$3h1Q1bJ8m3bDbnxw7X8tJ0l1JyU9nY3Q0aYx5Zb9b2c");
            return Err(CoreError::Unauthorized);
        };
        if !verify_password(password, &operator.password_hash) {
            return Err(CoreError::Unauthorized);
        }
        let memberships = read(&*self.store, |tx| tx.workspaces_of_operator(&operator.id))?;
        let chosen = match workspace {
            Some(id) => memberships.iter().find(|(w, _)| &w.id == id),
            None => memberships.first(),
        }
        .ok_or(CoreError::Unauthorized)?;
        self.open_session_for(&operator.id, &chosen.0.id)
    }

    pub(crate) fn open_session_for(
        &self,
        operator: &OperatorId,
        workspace: &WorkspaceId,
    ) -> CoreResult<(String, Session)> {
        let token = self.random.token(32);
        let now = self.clock.now();
        let session = Session {
            token_hash: hash_token(&token),
            operator_id: operator.clone(),
            workspace_id: workspace.clone(),
            csrf_token: self.random.token(24),
            created_at: now,
            expires_at: now + chrono::Duration::days(SESSION_DAYS),
        };
        write(&*self.store, |tx| tx.insert_session(&session))?;
        Ok((token, session))
    }

    /// Moves a signed-in operator to another workspace they belong to (a new session).
    pub fn switch_workspace(
        &self,
        token: &str,
        workspace: &WorkspaceId,
    ) -> CoreResult<(String, Session)> {
        let (actor, _) = self.authenticate_session(token)?;
        let operator = actor.operator_id.ok_or(CoreError::Unauthorized)?;
        let role = read(&*self.store, |tx| tx.membership(workspace, &operator))?;
        if role.is_none() {
            return Err(CoreError::NotFound("workspace"));
        }
        self.logout(token)?;
        self.open_session_for(&operator, workspace)
    }

    /// The actor behind a session token, with the session (for its CSRF token).
    pub fn authenticate_session(&self, token: &str) -> CoreResult<(Actor, Session)> {
        let hash = hash_token(token);
        let now = self.clock.now();
        let found = read(&*self.store, |tx| {
            let Some(session) = tx.session_by_token_hash(&hash)? else {
                return Ok(None);
            };
            let operator = tx.get_operator(&session.operator_id)?;
            let role = tx.membership(&session.workspace_id, &session.operator_id)?;
            let workspace = tx.get_workspace(&session.workspace_id)?;
            Ok(Some((session, operator, role, workspace)))
        })?;
        match found {
            Some((session, Some(op), Some(role), Some(workspace)))
                if session.expires_at > now
                    && op.active
                    && session.csrf_token != crate::mfa::PENDING_MARK =>
            {
                Ok((
                    Actor {
                        workspace,
                        role,
                        operator_id: Some(op.id),
                        api_key_id: None,
                    },
                    session,
                ))
            }
            _ => Err(CoreError::Unauthorized),
        }
    }

    pub fn logout(&self, token: &str) -> CoreResult<()> {
        let hash = hash_token(token);
        write(&*self.store, |tx| tx.delete_session(&hash))?;
        Ok(())
    }

    /// The actor behind a secret API key (`Authorization: Bearer sk_…`).
    pub fn authenticate_api_key(&self, secret: &str) -> CoreResult<Actor> {
        if !secret.starts_with(SECRET_KEY_PREFIX) {
            return Err(CoreError::Unauthorized);
        }
        let hash = hash_token(secret);
        let found = read(&*self.store, |tx| {
            let Some(key) = tx.api_key_by_hash(&hash)? else {
                return Ok(None);
            };
            let workspace = tx.get_workspace(&key.workspace_id)?;
            Ok(Some((key, workspace)))
        })?;
        match found {
            Some((key, Some(workspace))) if key.revoked_at.is_none() => Ok(Actor {
                workspace,
                role: key.role,
                operator_id: None,
                api_key_id: Some(key.id),
            }),
            _ => Err(CoreError::Unauthorized),
        }
    }

    /// The workspace a Segment write key belongs to.
    pub fn workspace_for_write_key(&self, write_key: &str) -> CoreResult<Workspace> {
        read(&*self.store, |tx| tx.workspace_by_write_key(write_key))?
            .ok_or(CoreError::Unauthorized)
    }

    /// Creates a secret key; returns it with the secret, which is never shown again.
    pub fn create_api_key(
        &self,
        actor: &Actor,
        name: &str,
        role: Role,
    ) -> CoreResult<(ApiKey, String)> {
        actor.require(Permission::ManageWorkspace)?;
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(CoreError::invalid(
                "invalid_name",
                "name",
                "give the key a name of 1 to 100 characters",
            ));
        }
        if role == Role::Owner && actor.role != Role::Owner {
            return Err(CoreError::Forbidden("own_workspace"));
        }
        let secret = format!("{SECRET_KEY_PREFIX}{}", self.random.token(24));
        let key = ApiKey {
            id: self.new_id(ApiKeyId::generate),
            workspace_id: actor.workspace.id.clone(),
            name: name.to_string(),
            role,
            prefix: secret.chars().take(10).collect(),
            key_hash: hash_token(&secret),
            created_at: self.clock.now(),
            last_used_at: None,
            revoked_at: None,
        };
        write(&*self.store, |tx| tx.insert_api_key(&key))?;
        Ok((key, secret))
    }

    pub fn list_api_keys(&self, actor: &Actor) -> CoreResult<Vec<ApiKey>> {
        actor.require(Permission::ManageWorkspace)?;
        Ok(read(&*self.store, |tx| {
            tx.list_api_keys(&actor.workspace.id)
        })?)
    }

    pub fn revoke_api_key(&self, actor: &Actor, id: &ApiKeyId) -> CoreResult<()> {
        actor.require(Permission::ManageWorkspace)?;
        let now = self.clock.now();
        write(&*self.store, |tx| {
            tx.revoke_api_key(&actor.workspace.id, id, now)
        })
        .map_err(|e| match e {
            StoreError::NotFound => CoreError::NotFound("api_key"),
            other => other.into(),
        })
    }

    /// Adds an operator to the workspace (creating the account with `password` when new).
    pub fn add_operator(
        &self,
        actor: &Actor,
        email: &str,
        name: &str,
        role: Role,
        password: &str,
    ) -> CoreResult<Operator> {
        actor.require(Permission::ManageWorkspace)?;
        if role == Role::Owner {
            actor.require(Permission::OwnWorkspace)?;
        }
        let email =
            ciclo_domain::contact::Email::parse(email).map_err(|e| CoreError::Invalid(vec![e]))?;
        validate_password(password)?;
        let hash = hash_password(password)?;
        let now = self.clock.now();
        let new_id = self.new_id(OperatorId::generate);
        let operator = write(&*self.store, |tx| {
            let op = match tx.operator_by_email(email.as_str())? {
                Some(op) => op,
                None => {
                    let op = Operator {
                        id: new_id.clone(),
                        email: email.to_string(),
                        name: name.trim().to_string(),
                        password_hash: hash.clone(),
                        locale: None,
                        active: true,
                        created_at: now,
                    };
                    tx.insert_operator(&op)?;
                    op
                }
            };
            if tx.membership(&actor.workspace.id, &op.id)?.is_some() {
                return Err(StoreError::Conflict("memberships".into()));
            }
            tx.upsert_membership(&Membership {
                workspace_id: actor.workspace.id.clone(),
                operator_id: op.id.clone(),
                role,
            })?;
            Ok(op)
        })
        .map_err(|e| match e {
            StoreError::Conflict(_) => CoreError::Conflict(FieldError::new(
                "already_member",
                "email",
                "this operator is already in the workspace",
            )),
            other => other.into(),
        })?;
        Ok(operator)
    }

    pub fn list_operators(&self, actor: &Actor) -> CoreResult<Vec<(Operator, Role)>> {
        actor.require(Permission::ReadCustomers)?;
        Ok(read(&*self.store, |tx| {
            tx.list_members(&actor.workspace.id)
        })?)
    }

    /// Changes a member's role; the last owner cannot be demoted.
    pub fn change_role(&self, actor: &Actor, operator: &OperatorId, role: Role) -> CoreResult<()> {
        actor.require(Permission::ManageWorkspace)?;
        write(&*self.store, |tx| {
            let members = tx.list_members(&actor.workspace.id)?;
            let Some((_, current)) = members.iter().find(|(o, _)| &o.id == operator) else {
                return Err(StoreError::NotFound);
            };
            let owners = members.iter().filter(|(_, r)| *r == Role::Owner).count();
            if (*current == Role::Owner || role == Role::Owner) && actor.role != Role::Owner {
                return Err(StoreError::Conflict("owner_only".into()));
            }
            if *current == Role::Owner && role != Role::Owner && owners == 1 {
                return Err(StoreError::Conflict("last_owner".into()));
            }
            tx.upsert_membership(&Membership {
                workspace_id: actor.workspace.id.clone(),
                operator_id: operator.clone(),
                role,
            })
        })
        .map_err(|e| match e {
            StoreError::NotFound => CoreError::NotFound("operator"),
            StoreError::Conflict(c) if c == "owner_only" => CoreError::Forbidden("own_workspace"),
            StoreError::Conflict(_) => CoreError::Conflict(FieldError::new(
                "last_owner",
                "role",
                "a workspace keeps at least one owner",
            )),
            other => other.into(),
        })
    }

    /// Removes an operator from the workspace (their account stays for other workspaces).
    pub fn remove_operator(&self, actor: &Actor, operator: &OperatorId) -> CoreResult<()> {
        actor.require(Permission::ManageWorkspace)?;
        if actor.operator_id.as_ref() == Some(operator) {
            return Err(CoreError::Conflict(FieldError::new(
                "cannot_remove_self",
                "operator",
                "you cannot remove yourself",
            )));
        }
        self.change_role(actor, operator, Role::Analyst)?; // refuses to remove the last owner
        write(&*self.store, |tx| {
            tx.delete_membership(&actor.workspace.id, operator)
        })?;
        Ok(())
    }

    pub fn workspaces_of(&self, actor: &Actor) -> CoreResult<Vec<(Workspace, Role)>> {
        match &actor.operator_id {
            Some(op) => Ok(read(&*self.store, |tx| tx.workspaces_of_operator(op))?),
            None => Ok(vec![(actor.workspace.clone(), actor.role)]),
        }
    }

    /// Changes workspace settings (name, locale, time zone, currency, default region).
    pub fn update_workspace(
        &self,
        actor: &Actor,
        name: Option<&str>,
        locale: Option<&str>,
        time_zone: Option<&str>,
        currency: Option<&str>,
    ) -> CoreResult<Workspace> {
        actor.require(Permission::ManageWorkspace)?;
        let mut ws = actor.workspace.clone();
        let mut errors = Vec::new();
        if let Some(n) = name {
            if n.trim().is_empty() {
                errors.push(FieldError::new(
                    "invalid_name",
                    "name",
                    "the name cannot be empty",
                ));
            }
            ws.name = n.trim().to_string();
        }
        if let Some(l) = locale {
            if !["pt-BR", "en"].contains(&l) {
                errors.push(FieldError::new(
                    "invalid_locale",
                    "locale",
                    "expected pt-BR or en",
                ));
            }
            ws.locale = l.to_string();
        }
        if let Some(tz) = time_zone {
            if !ciclo_domain::customer::is_time_zone(tz) {
                errors.push(FieldError::new(
                    "invalid_time_zone",
                    "time_zone",
                    "unknown IANA time zone",
                ));
            }
            ws.time_zone = tz.to_string();
        }
        if let Some(c) = currency {
            if c.len() != 3 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
                errors.push(FieldError::new(
                    "invalid_currency",
                    "currency",
                    "expected an ISO 4217 code such as BRL",
                ));
            }
            ws.currency = c.to_string();
        }
        if !errors.is_empty() {
            return Err(CoreError::Invalid(errors));
        }
        write(&*self.store, |tx| tx.update_workspace(&ws))?;
        Ok(ws)
    }
}

impl Ciclo {
    /// Saves the signed-in operator's language (`pt-BR` or `en`; none to follow the browser),
    /// so that it follows them to every device.
    pub fn set_operator_locale(&self, actor: &Actor, locale: Option<&str>) -> CoreResult<()> {
        let Some(operator_id) = actor.operator_id.clone() else {
            return Err(CoreError::invalid(
                "not_an_operator",
                "locale",
                "only a signed-in operator has a language",
            ));
        };
        if let Some(l) = locale {
            if !["pt-BR", "en"].contains(&l) {
                return Err(CoreError::invalid(
                    "invalid_locale",
                    "locale",
                    "expected pt-BR or en",
                ));
            }
        }
        write(&*self.store, |tx| {
            let mut operator = tx.get_operator(&operator_id)?.ok_or(StoreError::NotFound)?;
            operator.locale = locale.map(str::to_string);
            tx.update_operator(&operator)
        })?;
        Ok(())
    }

    /// The operator's saved language, if any.
    pub fn operator_locale(&self, operator: &OperatorId) -> CoreResult<Option<String>> {
        Ok(read(&*self.store, |tx| tx.get_operator(operator))?.and_then(|o| o.locale))
    }
}
