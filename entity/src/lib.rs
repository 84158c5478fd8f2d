//! sea-orm entities: one module per table. Timestamps are Unix seconds (i64) so that SQLite and
//! PostgreSQL store them identically; lists are JSON text, parsed by the domain layer.

pub mod access_token;
pub mod agent_token;
pub mod approval;
pub mod audit_event;
pub mod authorization_code;
pub mod authorization_request;
pub mod ciba_request;
pub mod client;
pub mod client_origin;
pub mod device_authorization;
pub mod consent;
pub mod email_code;
pub mod factor_lockout;
pub mod initial_access_token;
pub mod mail_queue;
pub mod maintenance_lease;
pub mod organization;
pub mod organization_domain;
pub mod organization_member;
pub mod passkey;
pub mod recovery_code;
pub mod refresh_family;
pub mod resource;
pub mod refresh_token;
pub mod scim_directory;
pub mod scim_group;
pub mod scim_group_member;
pub mod scim_token;
pub mod scim_user;
pub mod scim_user_email;
pub mod service_account;
pub mod session;
pub mod signing_key;
pub mod status_list;
pub mod sso_assertion;
pub mod sso_connection;
pub mod sso_identity;
pub mod sso_request;
pub mod tenant;
pub mod totp_authenticator;
pub mod user;
pub mod webauthn_ceremony;

use sea_orm::EntityTrait;

/// A table whose rows belong to one tenant. The repository layer scopes every query on such a table
/// through this column, so there is exactly one place where tenant isolation is enforced.
pub trait TenantOwned: EntityTrait {
    fn tenant_column() -> Self::Column;
}
