//! The admin REST API under `/api/v1`: one module per area. Handlers parse and check the
//! request, call one use case on a blocking thread, and shape the answer; the rules (roles
//! included) live in core.

pub(crate) mod analytics;
pub(crate) mod customers;
pub(crate) mod identity;
pub(crate) mod imports;
pub(crate) mod lifecycle;
pub(crate) mod segments;
pub(crate) mod session;
pub(crate) mod settings;
