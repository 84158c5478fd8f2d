//! Schema migrations. Each migration is a frozen snapshot of the schema change it makes: entities may
//! evolve, migrations never do.
pub use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;
mod m20261122_000002_passkeys;
mod m20261123_000003_totp;
mod m20261123_000004_tenant_totp_policy;
mod m20261123_000005_dynamic_registration;
mod m20261123_000006_resources;
mod m20261123_000007_organizations;
mod m20261123_000008_tenant_key_indexes;
mod m20261123_000009_token_primary_keys;
mod m20261201_000010_machine_token_policy;
mod m20261201_000011_mail_queue;
mod m20261201_000012_normalised_emails;
mod m20261201_000013_factor_lockouts;
mod m20261201_000014_consent_per_resource;
mod m20261201_000015_introspection_rights;
mod m20261201_000016_sweeping;
mod m20261202_000017_interop;
mod m20261203_000018_organization_domains;
mod m20261203_000019_sso_connections;
mod m20261203_000020_sso_assertions;
mod m20261203_000021_enforced_sso;
mod m20261203_000022_sso_tests;
mod m20261203_000023_scim;
mod m20261204_000024_approvals;
mod m20261204_000025_device_codes;
mod m20261207_000026_client_secret_rotation;
mod m20261207_000027_status_lists;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261122_000002_passkeys::Migration),
            Box::new(m20261123_000003_totp::Migration),
            Box::new(m20261123_000004_tenant_totp_policy::Migration),
            Box::new(m20261123_000005_dynamic_registration::Migration),
            Box::new(m20261123_000006_resources::Migration),
            Box::new(m20261123_000007_organizations::Migration),
            Box::new(m20261123_000008_tenant_key_indexes::Migration),
            Box::new(m20261123_000009_token_primary_keys::Migration),
            Box::new(m20261201_000010_machine_token_policy::Migration),
            Box::new(m20261201_000011_mail_queue::Migration),
            Box::new(m20261201_000012_normalised_emails::Migration),
            Box::new(m20261201_000013_factor_lockouts::Migration),
            Box::new(m20261201_000014_consent_per_resource::Migration),
            Box::new(m20261201_000015_introspection_rights::Migration),
            Box::new(m20261201_000016_sweeping::Migration),
            Box::new(m20261202_000017_interop::Migration),
            Box::new(m20261203_000018_organization_domains::Migration),
            Box::new(m20261203_000019_sso_connections::Migration),
            Box::new(m20261203_000020_sso_assertions::Migration),
            Box::new(m20261203_000021_enforced_sso::Migration),
            Box::new(m20261203_000022_sso_tests::Migration),
            Box::new(m20261203_000023_scim::Migration),
            Box::new(m20261204_000024_approvals::Migration),
            Box::new(m20261204_000025_device_codes::Migration),
            Box::new(m20261207_000026_client_secret_rotation::Migration),
            Box::new(m20261207_000027_status_lists::Migration),
        ]
    }
}
