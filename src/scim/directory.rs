//! A SCIM directory: what an organization's identity provider provisions, and what that does to
//! people (docs/scim.md).
//!
//! - **Tokens.** A directory has bearer tokens (`lk_scim_…`, 256 bits, stored as SHA-256 with a
//!   display prefix, shown once). Several may be live at once, so a token is rotated by issuing the
//!   next one, moving the IdP to it, then revoking the old one. Each is rate-limited, and every change
//!   it makes is audited with its id (actor `scim:{directory}:{token}`).
//! - **Users and groups** are documents (`schema`, `apply`) with versions; a write names the version
//!   it read and is retried on a concurrent change, or answers 412 when the client's `If-Match`
//!   named the old one.
//! - **People.** A directory user becomes a Latchkey account only when its address is in a domain
//!   the organization verified — so an IdP cannot claim, or later disable, an account of an address
//!   it does not own — and the account is not another organization's or another directory user's.
//!   An inactive or deleted directory user's account is disabled at once: every session ends, every
//!   refresh-token family is revoked (and with them the access tokens of those grants, which
//!   introspection then calls inactive); sign-in is refused. Reactivation enables sign-in again,
//!   never the old sessions or tokens. Group membership maps to organization roles through the
//!   directory's role map.

use serde_json::{Value as Json, json};

use super::{
    ScimError, apply, evaluate,
    filter::AttrPath,
    patch::{self, Op, Operation, Target},
    query::{self, ListQuery, MAX_SCAN},
    schema::{self, GROUP_SCHEMA, USER_SCHEMA},
};
use crate::{
    audit::Event,
    context::Ctx,
    crypto,
    oauth::families,
    organization::{self, OrganizationError},
    sso::enforcement::OWNER_ROLE,
    ratelimit::{self, RetryAfter},
    session,
    sso::domains::{self, DomainName},
    store::{
        Scoped, StoreError, StoreResult,
        audit_events::{self, AuditRow},
        now,
        organizations::{self, Organization},
        scim::{self as rows, DirectoryRow, GroupRow, GroupWrite, MemberChanges, Narrowing, Order, TokenRow, UserRow, UserWrite, Written},
    },
    user::{self, Email},
};

/// Directory tokens start with this, so secret scanners and people recognise a leaked one.
pub const TOKEN_PREFIX: &str = "lk_scim_";
/// Live tokens per directory: enough to rotate with an overlap, few enough to review.
pub const MAX_LIVE_TOKENS: usize = 5;
/// A token's `last_used_at` is written at most this often (seconds).
const LAST_USED_INTERVAL: i64 = 60;
/// Attempts at a write that keeps meeting concurrent changes before it gives up (409): each round of
/// racing writers lets one through, so this bounds how many may race on one resource.
const WRITE_ATTEMPTS: usize = 32;

/// Before another attempt: a short random pause, so racing writers do not meet again in step.
async fn back_off(attempt: usize) {
    let most = 2 + 2 * attempt as u64;
    let pause = 1 + u64::from(rand::random::<u16>()) % most;
    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error("the directory token is missing, unknown or revoked")]
    Unauthorized,
    #[error("too many requests with this token")]
    RateLimited(RetryAfter),
    #[error("a directory has at most {MAX_LIVE_TOKENS} live tokens: revoke one first")]
    TooManyTokens,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<OrganizationError> for DirectoryError {
    fn from(error: OrganizationError) -> Self {
        match error {
            OrganizationError::Store(e) => Self::Store(e),
            other => Self::Scim(ScimError::invalid_value(other.to_string())),
        }
    }
}

type Result<T, E = DirectoryError> = std::result::Result<T, E>;

/// An organization's directory.
#[derive(Debug, Clone)]
pub struct Directory {
    pub id: String,
    pub organization: Organization,
    /// (group displayName, role) pairs; a member of a named group has the role.
    pub role_map: Vec<(String, String)>,
}

fn directory_from(row: DirectoryRow, organization: Organization) -> StoreResult<Directory> {
    let role_map: Vec<(String, String)> =
        serde_json::from_str(&row.role_map).map_err(|e| StoreError::Corrupt(format!("scim role map: {e}")))?;
    Ok(Directory { id: row.id, organization, role_map })
}

/// The directory a request's token opened.
#[derive(Debug, Clone)]
pub struct Caller {
    pub directory: Directory,
    pub token_id: String,
    /// `{issuer}/scim/v2/{organization}`: resource locations start here.
    pub base: String,
}

impl Caller {
    fn actor(&self) -> String {
        format!("scim:{}:{}", self.directory.id, self.token_id)
    }
}

/// A token as the administration pages list it (never the secret).
#[derive(Debug, Clone)]
pub struct Token {
    pub id: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl From<TokenRow> for Token {
    fn from(row: TokenRow) -> Self {
        Self { id: row.id, prefix: row.prefix, created_at: row.created_at, last_used_at: row.last_used_at, revoked_at: row.revoked_at }
    }
}

/// The base URL of an organization's directory (what the IdP's "Tenant URL" field takes).
pub fn base_url(ctx: &Ctx<'_>, organization_slug: &str) -> String {
    ctx.endpoint(&format!("scim/v2/{organization_slug}"))
}

// ---------------------------------------------------------------------------------------------------
// Administration

pub async fn of_organization(scope: Scoped<'_>, organization: &Organization) -> StoreResult<Option<Directory>> {
    match rows::directory_of(scope, &organization.id).await? {
        Some(row) => Ok(Some(directory_from(row, organization.clone())?)),
        None => Ok(None),
    }
}

/// The organization's directory, made on first use. (Callers audit administration: the pages as
/// the administrator, the CLI as the operator.)
pub async fn enable(scope: Scoped<'_>, organization: &Organization) -> StoreResult<Directory> {
    if let Some(directory) = of_organization(scope, organization).await? {
        return Ok(directory);
    }
    let row = DirectoryRow {
        id: format!("dir_{}", crypto::random_id()),
        tenant_id: scope.tenant_id().to_owned(),
        organization_id: organization.id.clone(),
        role_map: "[]".into(),
        created_at: now(),
    };
    // Ours, or the one a concurrent call made (the unique index decides).
    rows::insert_directory(scope, row).await?;
    of_organization(scope, organization).await?.ok_or_else(|| StoreError::Corrupt("directory vanished".into()))
}

/// Issues a token; the secret is returned once and never stored.
pub async fn issue_token(scope: Scoped<'_>, directory: &Directory) -> Result<(Token, latchkey_proto::Secret)> {
    let live = rows::tokens(scope, &directory.id).await?.into_iter().filter(|t| t.revoked_at.is_none()).count();
    if live >= MAX_LIVE_TOKENS {
        return Err(DirectoryError::TooManyTokens);
    }
    let secret = crypto::random_token(TOKEN_PREFIX);
    let row = TokenRow {
        id: format!("sct_{}", crypto::random_id()),
        tenant_id: scope.tenant_id().to_owned(),
        directory_id: directory.id.clone(),
        token_hash: crypto::sha256_hex(&secret),
        prefix: crypto::display_prefix(&secret),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
    };
    rows::insert_token(scope, row.clone()).await?;
    Ok((row.into(), latchkey_proto::Secret::new(secret)))
}

/// Revokes a token of the directory; `false` when it names none that is live.
pub async fn revoke_token(scope: Scoped<'_>, directory: &Directory, token_id: &str) -> StoreResult<bool> {
    rows::revoke_token(scope, &directory.id, token_id, now()).await
}

pub async fn tokens(scope: Scoped<'_>, directory: &Directory) -> StoreResult<Vec<Token>> {
    Ok(rows::tokens(scope, &directory.id).await?.into_iter().map(Token::from).collect())
}

/// Replaces the role map: (group displayName, role) pairs.
pub async fn set_role_map(scope: Scoped<'_>, directory: &Directory, pairs: &[(String, String)]) -> Result<()> {
    let roles: Vec<String> = pairs.iter().map(|(_, role)| role.clone()).collect();
    organization::check_roles(&roles)?;
    let text = serde_json::to_string(pairs).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    rows::set_role_map(scope, &directory.id, &text).await?;
    Ok(())
}

/// The directory's most recent provisioning events, newest first.
pub async fn recent_events(scope: Scoped<'_>, directory: &Directory, limit: u64) -> StoreResult<Vec<AuditRow>> {
    audit_events::recent_by_actor(scope, &format!("scim:{}:", directory.id), limit).await
}

/// A directory user as the administration page lists it.
#[derive(Debug, Clone)]
pub struct ProvisionedUser {
    pub id: String,
    pub user_name: String,
    pub active: bool,
    pub account: Option<String>,
}

/// A directory group as the administration page lists it.
#[derive(Debug, Clone)]
pub struct ProvisionedGroup {
    pub id: String,
    pub display_name: String,
    pub members: usize,
}

/// The directory's first users and groups (by name), for the administration page.
pub async fn overview(scope: Scoped<'_>, directory: &Directory, limit: u64) -> StoreResult<(u64, Vec<ProvisionedUser>, u64, Vec<ProvisionedGroup>)> {
    let users = rows::users(scope, &directory.id, &Narrowing::All, (Order::NameKey, true), 0, limit).await?;
    let groups = rows::groups(scope, &directory.id, &Narrowing::All, (Order::NameKey, true), 0, limit).await?;
    let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    let members = rows::members_of(scope, &ids).await?;
    Ok((
        rows::count_users(scope, &directory.id, &Narrowing::All).await?,
        users
            .into_iter()
            .map(|u| ProvisionedUser { id: u.id, user_name: u.user_name, active: u.active, account: u.account_id })
            .collect(),
        rows::count_groups(scope, &directory.id, &Narrowing::All).await?,
        groups
            .into_iter()
            .map(|g| ProvisionedGroup { members: members.iter().filter(|(group, _)| *group == g.id).count(), id: g.id, display_name: g.display_name })
            .collect(),
    ))
}

// ---------------------------------------------------------------------------------------------------
// Callers

/// The directory a bearer token opens at `{issuer}/scim/v2/{organization}`: a live token of that
/// organization's directory, within its rate limit.
pub async fn authenticate(ctx: &Ctx<'_>, organization_slug: &str, bearer: Option<&str>) -> Result<Caller> {
    let presented = bearer.filter(|b| b.starts_with(TOKEN_PREFIX)).ok_or(DirectoryError::Unauthorized)?;
    let scope = ctx.scope();
    // The lookup is by SHA-256 of a 256-bit random value: nothing secret is compared byte by byte.
    let (token, row, organization) = rows::find_live_token(scope, &crypto::sha256_hex(presented)).await?.ok_or(DirectoryError::Unauthorized)?;
    // A token opens its own organization's directory only.
    if organization.slug != organization_slug {
        return Err(DirectoryError::Unauthorized);
    }
    ratelimit::check(&ctx.services.limiters.scim_per_token, &token.id).map_err(DirectoryError::RateLimited)?;
    // The row just read says whether the last use is recent enough: most requests write nothing.
    let at = now();
    if token.last_used_at.is_none_or(|last| last < at - LAST_USED_INTERVAL) {
        rows::token_used(scope, &token.id, at, LAST_USED_INTERVAL).await?;
    }
    let base = base_url(ctx, &organization.slug);
    Ok(Caller { directory: directory_from(row, organization)?, token_id: token.id, base })
}

/// A resource as answered: its JSON and its version (the ETag).
#[derive(Debug, Clone)]
pub struct Resource {
    pub body: Json,
    pub version: i64,
}

pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// `If-Match` (RFC 7232 §3.1, weak comparison as SCIM uses weak ETags): `*` or one of the listed tags.
fn check_if_match(if_match: Option<&str>, version: i64) -> Result<(), ScimError> {
    let Some(header) = if_match else { return Ok(()) };
    let current = version.to_string();
    let matches = header.split(',').map(str::trim).any(|tag| {
        tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"') == current
    });
    if matches { Ok(()) } else { Err(ScimError::precondition_failed()) }
}

fn instant(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn meta(resource_type: &str, location: String, created: i64, modified: i64, version: i64) -> Json {
    json!({
        "resourceType": resource_type,
        "created": instant(created),
        "lastModified": instant(modified),
        "location": location,
        "version": etag(version),
    })
}

fn stored(document: &str) -> Result<Json> {
    serde_json::from_str(document).map_err(|e| DirectoryError::Store(StoreError::Corrupt(format!("scim document: {e}"))))
}

async fn audit(ctx: &Ctx<'_>, caller: &Caller, action: &'static str, target: String, outcome: &Result<Json, &ScimError>) {
    let event = Event::new(&ctx.tenant.id, caller.actor(), action).target(target);
    let event = match outcome {
        Ok(details) => event.details(details.clone()),
        Err(error) => event.failed().details(json!({ "status": error.status, "scimType": error.scim_type, "detail": error.detail })),
    };
    ctx.audit(event).await;
}

/// Audits a change's refusal (a client mistake) and passes the error on.
async fn refused<T>(ctx: &Ctx<'_>, caller: &Caller, action: &'static str, target: String, result: Result<T>) -> Result<T> {
    if let Err(DirectoryError::Scim(error)) = &result {
        audit(ctx, caller, action, target, &Err(error)).await;
    }
    result
}

// ---------------------------------------------------------------------------------------------------
// Users

fn user_write(document: &Json) -> UserWrite {
    let text = |name: &str| document.get(name).and_then(Json::as_str).map(str::to_owned);
    let user_name = text("userName").unwrap_or_default();
    let mut emails: Vec<String> = document
        .get("emails")
        .and_then(Json::as_array)
        .map(|items| items.iter().filter_map(|e| e.get("value").and_then(Json::as_str)).map(str::to_lowercase).collect())
        .unwrap_or_default();
    emails.sort();
    emails.dedup();
    UserWrite {
        user_name_key: user_name.to_lowercase(),
        user_name,
        external_id: text("externalId"),
        display_name_key: text("displayName").map(|d| d.to_lowercase()),
        // Absent (never sent, or removed): active, as RFC 7643 §4.1.1 leaves it to the provider.
        active: document.get("active").and_then(Json::as_bool).unwrap_or(true),
        document: document.to_string(),
        emails,
    }
}

fn render_user(base: &str, row: &UserRow, document: Json, groups: Option<&[GroupRow]>) -> Json {
    let mut body = document;
    if let Some(object) = body.as_object_mut() {
        object.insert("id".into(), Json::String(row.id.clone()));
        if let Some(groups) = groups.filter(|g| !g.is_empty()) {
            object.insert(
                "groups".into(),
                groups
                    .iter()
                    .map(|g| json!({ "value": g.id, "$ref": format!("{base}/Groups/{}", g.id), "display": g.display_name, "type": "direct" }))
                    .collect(),
            );
        }
        object.insert("meta".into(), meta("User", format!("{base}/Users/{}", row.id), row.created_at, row.updated_at, row.version));
    }
    body
}

async fn user_resource(ctx: &Ctx<'_>, caller: &Caller, row: &UserRow) -> Result<Resource> {
    let groups = rows::groups_of(ctx.scope(), &row.id).await?;
    Ok(Resource { body: render_user(&caller.base, row, stored(&row.document)?, Some(&groups)), version: row.version })
}

async fn find_user(ctx: &Ctx<'_>, caller: &Caller, id: &str) -> Result<UserRow> {
    Ok(rows::find_user(ctx.scope(), &caller.directory.id, id).await?.ok_or_else(|| ScimError::not_found(format!("no user {id}")))?)
}

fn taken(user_name: &str) -> DirectoryError {
    ScimError::uniqueness(format!("userName {user_name:?} is taken in this directory")).into()
}

pub async fn create_user(ctx: &Ctx<'_>, caller: &Caller, body: &Json) -> Result<Resource> {
    let target = format!("scim-user:{}", body.get("userName").and_then(Json::as_str).unwrap_or("?").chars().take(64).collect::<String>());
    refused(ctx, caller, "scim.user_create", target, async {
        let document = schema::normalise(&USER_SCHEMA, body)?;
        let write = user_write(&document);
        let id = uuid::Uuid::new_v4().to_string();
        let user_name = write.user_name.clone();
        // Who the account is, read first; then the user, its account and membership in one commit.
        let plan = plan_link(ctx, caller, &document).await?;
        let (new_id, member_id) = (crypto::random_id(), crypto::random_id());
        let link = plan.as_ref().ok().map(|plan| rows::AccountLink {
            id: plan.existing.as_ref().map_or(new_id.as_str(), |p| p.id.as_str()),
            new_email: plan.existing.is_none().then(|| plan.email.as_str()),
            profile: profile_for(&document, plan.existing.as_ref()),
            membership: (!plan.is_member).then_some((member_id.as_str(), caller.directory.organization.id.as_str())),
        });
        let at = now();
        let (written, account) = rows::insert_user(ctx.writer_scope(), &caller.directory.id, &id, write.clone(), at, link).await?;
        if written != Written::Done(1) {
            return Err(taken(&user_name));
        }
        // One audit row says what the create did to an account (linked, or why not).
        let unlinked_because = match (&plan, &account) {
            (Err(reason), _) => Some(*reason),
            (Ok(_), None) => Some("account_provisioned_elsewhere"),
            (Ok(_), Some(_)) => None,
        };
        let row = UserRow {
            id: id.clone(),
            tenant_id: ctx.tenant.id.clone(),
            directory_id: caller.directory.id.clone(),
            user_name: write.user_name,
            user_name_key: write.user_name_key,
            external_id: write.external_id,
            display_name_key: write.display_name_key,
            active: write.active,
            account_id: account.clone(),
            document: write.document,
            version: 1,
            created_at: at,
            updated_at: at,
        };
        // What else the account needs: enabled or disabled as the directory says, its roles.
        if let (Some(account), Ok(plan)) = (&account, &plan) {
            let disabled = plan.existing.as_ref().is_some_and(|p| p.disabled_at.is_some());
            if row.active && disabled {
                if user::set_disabled(ctx.scope(), account, false).await? {
                    audit(ctx, caller, "scim.user_reactivate", format!("user:{account}"), &Ok(json!({ "scim_user": id }))).await;
                }
            } else if !row.active {
                deprovision(ctx, caller, account, "deactivated").await?;
            }
        }
        audit(ctx, caller, "scim.user_create", format!("scim-user:{id}"), &Ok(json!({ "account": account, "unlinked": unlinked_because }))).await;
        // A new user is in no group yet, so no roles to sync and none to list.
        Ok(Resource { body: render_user(&caller.base, &row, document, None), version: row.version })
    }
    .await)
    .await
}

pub async fn get_user(ctx: &Ctx<'_>, caller: &Caller, id: &str) -> Result<Resource> {
    let row = find_user(ctx, caller, id).await?;
    user_resource(ctx, caller, &row).await
}

/// PUT (RFC 7644 §3.5.1): the resource as sent replaces what is stored (Okta's shape).
pub async fn replace_user(ctx: &Ctx<'_>, caller: &Caller, id: &str, body: &Json, if_match: Option<&str>) -> Result<Resource> {
    let document = schema::normalise(&USER_SCHEMA, body);
    change_user(ctx, caller, id, if_match, "scim.user_replace", |_| document.clone().map_err(DirectoryError::from)).await
}

/// PATCH (RFC 7644 §3.5.2).
pub async fn patch_user(ctx: &Ctx<'_>, caller: &Caller, id: &str, body: &Json, if_match: Option<&str>) -> Result<Resource> {
    let operations = patch::parse(body).map_err(ScimError::from);
    change_user(ctx, caller, id, if_match, "scim.user_patch", |current| {
        let operations = operations.clone()?;
        Ok(apply::apply(&USER_SCHEMA, id, current, &operations)?)
    })
    .await
}

/// Reads the user, computes its new document from the current one, and writes it if it is still
/// the version read (else again, from the newer one); then provisions what changed.
async fn change_user(
    ctx: &Ctx<'_>,
    caller: &Caller,
    id: &str,
    if_match: Option<&str>,
    action: &'static str,
    change: impl Fn(&Json) -> Result<Json>,
) -> Result<Resource> {
    refused(ctx, caller, action, format!("scim-user:{id}"), async {
        for attempt in 0..WRITE_ATTEMPTS {
            let row = find_user(ctx, caller, id).await?;
            check_if_match(if_match, row.version)?;
            let current = stored(&row.document)?;
            let document = change(&current)?;
            if document == current {
                // Nothing changed: no write, no new version (a PATCH repeated by a retrying client).
                return user_resource(ctx, caller, &row).await;
            }
            let write = user_write(&document);
            let user_name = write.user_name.clone();
            match rows::update_user(ctx.writer_scope(), &caller.directory.id, id, row.version, write, now()).await? {
                Written::Done(_) => {
                    let row = find_user(ctx, caller, id).await?;
                    let account = provision(ctx, caller, &row, &document).await?;
                    audit(ctx, caller, action, format!("scim-user:{id}"), &Ok(json!({ "account": account, "active": row.active }))).await;
                    return user_resource(ctx, caller, &row).await;
                }
                Written::NameTaken => return Err(taken(&user_name)),
                // Changed meanwhile: with the client's If-Match that is its mistake; else go again.
                Written::Stale if if_match.is_some() => return Err(ScimError::precondition_failed().into()),
                Written::Stale => back_off(attempt).await,
            }
        }
        Err(ScimError::new(409, None, "the resource kept changing; try again").into())
    }
    .await)
    .await
}

pub async fn delete_user(ctx: &Ctx<'_>, caller: &Caller, id: &str, if_match: Option<&str>) -> Result<()> {
    refused(ctx, caller, "scim.user_delete", format!("scim-user:{id}"), async {
        let row = find_user(ctx, caller, id).await?;
        check_if_match(if_match, row.version)?;
        let Some(row) = rows::delete_user(ctx.writer_scope(), &caller.directory.id, id).await? else {
            return Err(ScimError::not_found(format!("no user {id}")).into());
        };
        if let Some(account) = &row.account_id {
            deprovision(ctx, caller, account, "deleted").await?;
            organization::remove_member(ctx.scope(), &caller.directory.organization, account).await?;
        }
        audit(ctx, caller, "scim.user_delete", format!("scim-user:{id}"), &Ok(json!({ "account": row.account_id }))).await;
        Ok(())
    }
    .await)
    .await
}

/// The address a directory user's account has: the primary email, else the work one, else the
/// first, else the userName if it is an address.
fn account_address(document: &Json) -> Option<Email> {
    let emails: Vec<&Json> = document.get("emails").and_then(Json::as_array).map(|e| e.iter().collect()).unwrap_or_default();
    emails
        .iter()
        .find(|e| e.get("primary") == Some(&Json::Bool(true)))
        .or_else(|| emails.iter().find(|e| e.get("type").and_then(Json::as_str) == Some("work")))
        .or_else(|| emails.first())
        .and_then(|e| e.get("value").and_then(Json::as_str))
        .or_else(|| document.get("userName").and_then(Json::as_str))
        .and_then(Email::parse)
}

/// Makes the directory user's account what the directory says: linked (when it may be), its names,
/// enabled or disabled, its roles. Returns the account, if there is one.
async fn provision(ctx: &Ctx<'_>, caller: &Caller, row: &UserRow, document: &Json) -> Result<Option<String>> {
    let scope = ctx.scope();
    let (account, person) = match &row.account_id {
        Some(account) => match user::find(scope, account).await? {
            Some(person) => (account.clone(), person),
            None => return Ok(Some(account.clone())),
        },
        None => match link(ctx, caller, row, document).await? {
            Some(person) => (person.id.clone(), person),
            None => return Ok(None),
        },
    };
    if let Some(profile) = profile_for(document, Some(&person)) {
        user::set_profile(scope, &account, profile).await?;
    }
    if row.active {
        if person.disabled_at.is_some() && user::set_disabled(scope, &account, false).await? {
            audit(ctx, caller, "scim.user_reactivate", format!("user:{account}"), &Ok(json!({ "scim_user": row.id }))).await;
        }
    } else {
        deprovision(ctx, caller, &account, "deactivated").await?;
    }
    if !caller.directory.role_map.is_empty() {
        sync_roles(ctx, caller, &row.id, &account).await?;
    }
    Ok(Some(account))
}

/// Whether a directory user may have the account of its address, and which: the organization must
/// own the address's domain, and the account (if there is one) belong to no other organization and
/// no other directory user. `Err` is why not.
struct Plan {
    email: Email,
    existing: Option<user::User>,
    is_member: bool,
}

async fn plan_link(ctx: &Ctx<'_>, caller: &Caller, document: &Json) -> Result<std::result::Result<Plan, &'static str>> {
    let scope = ctx.scope();
    let organization = &caller.directory.organization;
    let Some(email) = account_address(document) else { return Ok(Err("no_address")) };
    let owner = match DomainName::of_email(email.as_str()) {
        Some(domain) => domains::verified_owner(scope, &domain).await?.map(|claim| claim.organization_id),
        None => None,
    };
    if owner.as_deref() != Some(organization.id.as_str()) {
        return Ok(Err("domain_not_verified"));
    }
    let Some(person) = user::find_by_email(scope, &email).await? else { return Ok(Ok(Plan { email, existing: None, is_member: false })) };
    if rows::user_of_account(scope, &person.id).await?.is_some() {
        return Ok(Err("account_provisioned_elsewhere"));
    }
    let member = organizations::member(scope, &person.id).await?;
    if member.as_ref().is_some_and(|m| m.organization_id != organization.id) {
        return Ok(Err("other_organization"));
    }
    Ok(Ok(Plan { email, existing: Some(person), is_member: member.is_some() }))
}

async fn unlinked(ctx: &Ctx<'_>, caller: &Caller, scim_user: &str, reason: &'static str) {
    audit(ctx, caller, "scim.user_unlinked", format!("scim-user:{scim_user}"), &Ok(json!({ "reason": reason }))).await;
}

/// The names a directory user's document gives its account, if they differ from what it has.
fn profile_for(document: &Json, person: Option<&user::User>) -> Option<user::Profile> {
    let name = document.get("name");
    let text = |v: Option<&Json>| v.and_then(Json::as_str).map(str::to_owned);
    let current = person.map(user::Profile::of).unwrap_or_default();
    let profile = user::Profile {
        name: text(document.get("displayName")).or_else(|| text(name.and_then(|n| n.get("formatted")))),
        given_name: text(name.and_then(|n| n.get("givenName"))),
        family_name: text(name.and_then(|n| n.get("familyName"))),
        locale: text(document.get("locale")).or(current.locale.clone()),
        ..current.clone()
    };
    profile.checked().ok().filter(|p| *p != current)
}

/// Links an existing directory user (stored without an account) to the account of its address,
/// when `plan_link` allows; audits why not otherwise.
async fn link(ctx: &Ctx<'_>, caller: &Caller, row: &UserRow, document: &Json) -> Result<Option<user::User>> {
    let scope = ctx.scope();
    let plan = match plan_link(ctx, caller, document).await? {
        Ok(plan) => plan,
        Err(reason) => {
            unlinked(ctx, caller, &row.id, reason).await;
            return Ok(None);
        }
    };
    let person = match plan.existing {
        Some(person) => person,
        None => user::find_or_create(scope, &plan.email).await?,
    };
    if !rows::set_account(scope, &row.id, &person.id).await? {
        unlinked(ctx, caller, &row.id, "account_provisioned_elsewhere").await;
        return Ok(None);
    }
    if !plan.is_member {
        organization::set_member(scope, &caller.directory.organization, &person.id, &[]).await?;
    }
    audit(ctx, caller, "scim.user_link", format!("user:{}", person.id), &Ok(json!({ "scim_user": row.id }))).await;
    Ok(Some(person))
}

/// Disables an account and ends what it holds: every session, every refresh-token family (and so
/// the access tokens of those grants). Audited when it changed anything.
async fn deprovision(ctx: &Ctx<'_>, caller: &Caller, account: &str, reason: &'static str) -> Result<()> {
    let scope = ctx.scope();
    let disabled = user::set_disabled(scope, account, true).await?;
    let sessions = session::end_all_for_user(scope, account).await?;
    let families = families::revoke_for_user(scope, account, None, "deprovisioned").await?;
    if disabled || !sessions.is_empty() || families > 0 {
        audit(
            ctx,
            caller,
            "scim.user_deprovision",
            format!("user:{account}"),
            &Ok(json!({ "reason": reason, "sessions": sessions.len(), "families_revoked": families })),
        )
        .await;
    }
    Ok(())
}

/// The roles the directory's role map gives a member of these groups.
pub fn roles_for(role_map: &[(String, String)], groups: &[&str]) -> Vec<String> {
    let mut roles: Vec<String> = role_map
        .iter()
        .filter(|(group, _)| groups.iter().any(|g| g.eq_ignore_ascii_case(group)))
        .map(|(_, role)| role.clone())
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

/// Sets the account's organization roles from its groups, when the directory maps roles. `owner`
/// is never taken away here: owners are named on the administration pages (the last one stays).
async fn sync_roles(ctx: &Ctx<'_>, caller: &Caller, scim_user: &str, account: &str) -> Result<()> {
    let directory = &caller.directory;
    if directory.role_map.is_empty() {
        return Ok(());
    }
    let scope = ctx.scope();
    let groups = rows::groups_of(scope, scim_user).await?;
    let names: Vec<&str> = groups.iter().map(|g| g.display_name.as_str()).collect();
    let mut roles = roles_for(&directory.role_map, &names);
    let current = organization::membership_of(scope, account).await?;
    if let Some(current) = &current
        && current.roles.iter().any(|r| r == OWNER_ROLE)
        && !roles.iter().any(|r| r == OWNER_ROLE)
    {
        roles.push(OWNER_ROLE.to_owned());
        roles.sort();
    }
    if current.as_ref().is_some_and(|m| m.roles == roles) {
        return Ok(());
    }
    organization::set_member(scope, &directory.organization, account, &roles).await?;
    audit(ctx, caller, "scim.roles_set", format!("user:{account}"), &Ok(json!({ "roles": roles }))).await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Groups

fn group_write(document: &Json) -> GroupWrite {
    let display_name = document.get("displayName").and_then(Json::as_str).unwrap_or_default().to_owned();
    GroupWrite {
        display_name_key: display_name.to_lowercase(),
        display_name,
        external_id: document.get("externalId").and_then(Json::as_str).map(str::to_owned),
        document: document.to_string(),
    }
}

/// A group's document without its members (they are rows), and the member ids it named.
fn split_members(mut document: Json) -> (Json, Vec<String>) {
    let members = document
        .as_object_mut()
        .and_then(|o| o.remove("members"))
        .and_then(|m| m.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.get("value").and_then(Json::as_str).map(str::to_owned))
        .collect();
    (document, members)
}

async fn render_group(ctx: &Ctx<'_>, caller: &Caller, row: &GroupRow, with_members: bool) -> Result<Resource> {
    let mut body = stored(&row.document)?;
    if with_members {
        let members = rows::members_of(ctx.scope(), &[row.id.as_str()]).await?;
        let ids: Vec<String> = members.into_iter().map(|(_, user)| user).collect();
        let users = rows::users_by_ids(ctx.scope(), &caller.directory.id, &ids).await?;
        let listed: Vec<Json> = users
            .iter()
            .map(|u| json!({ "value": u.id, "$ref": format!("{}/Users/{}", caller.base, u.id), "type": "User" }))
            .collect();
        if !listed.is_empty()
            && let Some(object) = body.as_object_mut()
        {
            object.insert("members".into(), Json::Array(listed));
        }
    }
    if let Some(object) = body.as_object_mut() {
        object.insert("id".into(), Json::String(row.id.clone()));
        object.insert("meta".into(), meta("Group", format!("{}/Groups/{}", caller.base, row.id), row.created_at, row.updated_at, row.version));
    }
    Ok(Resource { body, version: row.version })
}

async fn find_group(ctx: &Ctx<'_>, caller: &Caller, id: &str) -> Result<GroupRow> {
    Ok(rows::find_group(ctx.scope(), &caller.directory.id, id).await?.ok_or_else(|| ScimError::not_found(format!("no group {id}")))?)
}

/// Members named must be users of this directory.
async fn check_members(ctx: &Ctx<'_>, caller: &Caller, ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let found = rows::existing_users(ctx.scope(), &caller.directory.id, ids).await?;
    if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
        return Err(ScimError::invalid_value(format!("members: no user {missing} in this directory")).into());
    }
    Ok(())
}

fn maps_roles(directory: &Directory, names: &[&str]) -> bool {
    directory.role_map.iter().any(|(group, _)| names.iter().any(|n| n.eq_ignore_ascii_case(group)))
}

/// After members or a mapped group changed: the roles of the users concerned.
async fn resync(ctx: &Ctx<'_>, caller: &Caller, names: &[&str], users: &[String]) -> Result<()> {
    if !maps_roles(&caller.directory, names) || users.is_empty() {
        return Ok(());
    }
    for row in rows::users_by_ids(ctx.scope(), &caller.directory.id, users).await? {
        if let Some(account) = &row.account_id {
            sync_roles(ctx, caller, &row.id, account).await?;
        }
    }
    Ok(())
}

pub async fn create_group(ctx: &Ctx<'_>, caller: &Caller, body: &Json) -> Result<Resource> {
    let target = format!("scim-group:{}", body.get("displayName").and_then(Json::as_str).unwrap_or("?").chars().take(64).collect::<String>());
    refused(ctx, caller, "scim.group_create", target, async {
        let (document, mut members) = split_members(schema::normalise(&GROUP_SCHEMA, body)?);
        members.sort();
        members.dedup();
        check_members(ctx, caller, &members).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let write = group_write(&document);
        let name = write.display_name.clone();
        rows::insert_group(ctx.writer_scope(), &caller.directory.id, &id, write, &members, now()).await?;
        resync(ctx, caller, &[&name], &members).await?;
        audit(ctx, caller, "scim.group_create", format!("scim-group:{id}"), &Ok(json!({ "members": members.len() }))).await;
        render_group(ctx, caller, &find_group(ctx, caller, &id).await?, true).await
    }
    .await)
    .await
}

pub async fn get_group(ctx: &Ctx<'_>, caller: &Caller, id: &str, with_members: bool) -> Result<Resource> {
    let row = find_group(ctx, caller, id).await?;
    render_group(ctx, caller, &row, with_members).await
}

fn is_members(path: &AttrPath) -> bool {
    path.name.eq_ignore_ascii_case("members") && path.sub.is_none() && path.urn.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(schema::GROUP))
}

fn member_ids(value: Option<&Json>) -> Vec<String> {
    let items: Vec<&Json> = match value {
        Some(Json::Array(items)) => items.iter().collect(),
        Some(single @ Json::Object(_)) => vec![single],
        _ => Vec::new(),
    };
    items.iter().filter_map(|m| schema::member(m, "value").and_then(Json::as_str).map(str::to_owned)).collect()
}

/// A group PATCH's member operations read into row changes (applied in order); the other
/// operations are returned to apply to the document. A filtered removal is evaluated on the
/// current members (`current`, loaded only if one needs it).
async fn member_changes(ctx: &Ctx<'_>, group_id: &str, operations: &[Operation]) -> Result<(MemberChanges, Vec<Operation>)> {
    let mut changes = MemberChanges::default();
    let mut rest = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for operation in operations {
        match (&operation.target, operation.op) {
            (Target::Attribute(path), op) if is_members(path) => {
                let ids = member_ids(operation.value.as_ref());
                match op {
                    Op::Add => {
                        changes.remove.retain(|r| !ids.contains(r));
                        changes.add.extend(ids);
                    }
                    Op::Replace => {
                        changes = MemberChanges { clear: true, remove: Vec::new(), add: ids };
                    }
                    Op::Remove if operation.value.is_none() => {
                        changes = MemberChanges { clear: true, remove: Vec::new(), add: Vec::new() };
                    }
                    Op::Remove => {
                        changes.add.retain(|a| !ids.contains(a));
                        changes.remove.extend(ids);
                    }
                }
            }
            (Target::Values { attribute, filter, sub: None }, Op::Remove) if is_members(attribute) => {
                if current.is_none() {
                    current = Some(rows::members_of(ctx.scope(), &[group_id]).await?.into_iter().map(|(_, user)| user).collect());
                }
                let mut known: Vec<String> = current.clone().unwrap_or_default();
                known.extend(changes.add.iter().cloned());
                let gone: Vec<String> = known.into_iter().filter(|id| evaluate::matches(filter, &json!({ "value": id, "type": "User" }))).collect();
                changes.add.retain(|a| !gone.contains(a));
                changes.remove.extend(gone);
            }
            (Target::Values { attribute, .. }, _) if is_members(attribute) => {
                return Err(ScimError::invalid_path("members are added and replaced by value, not through a filter").into());
            }
            _ => rest.push(operation.clone()),
        }
    }
    changes.add.sort();
    changes.add.dedup();
    Ok((changes, rest))
}

pub async fn patch_group(ctx: &Ctx<'_>, caller: &Caller, id: &str, body: &Json, if_match: Option<&str>) -> Result<Resource> {
    refused(ctx, caller, "scim.group_patch", format!("scim-group:{id}"), async {
        let operations = patch::parse(body).map_err(ScimError::from)?;
        for attempt in 0..WRITE_ATTEMPTS {
            let row = find_group(ctx, caller, id).await?;
            check_if_match(if_match, row.version)?;
            let (changes, rest) = member_changes(ctx, id, &operations).await?;
            check_members(ctx, caller, &changes.add).await?;
            let current = stored(&row.document)?;
            let document = if rest.is_empty() { current.clone() } else { split_members(apply::apply(&GROUP_SCHEMA, id, &current, &rest)?).0 };
            if document == current && changes.is_empty() {
                return render_group(ctx, caller, &row, false).await;
            }
            // The document is written only if unchanged since read; member rows need no such care.
            let write = (document != current).then(|| (row.version, group_write(&document)));
            let renamed = write.as_ref().map(|(_, w)| w.display_name.clone());
            match rows::update_group(ctx.writer_scope(), &caller.directory.id, id, write, &changes, now()).await? {
                Written::Done(_) => {
                    let names: Vec<&str> = [Some(row.display_name.as_str()), renamed.as_deref()].into_iter().flatten().collect();
                    let mut concerned: Vec<String> = changes.add.iter().chain(&changes.remove).cloned().collect();
                    if changes.clear || renamed.is_some() {
                        // Everyone who was or is a member.
                        concerned.extend(rows::members_of(ctx.scope(), &[id]).await?.into_iter().map(|(_, user)| user));
                    }
                    resync(ctx, caller, &names, &concerned).await?;
                    audit(
                        ctx,
                        caller,
                        "scim.group_patch",
                        format!("scim-group:{id}"),
                        &Ok(json!({ "added": changes.add.len(), "removed": changes.remove.len(), "cleared": changes.clear })),
                    )
                    .await;
                    return render_group(ctx, caller, &find_group(ctx, caller, id).await?, false).await;
                }
                Written::Stale if if_match.is_some() => return Err(ScimError::precondition_failed().into()),
                Written::Stale | Written::NameTaken => back_off(attempt).await,
            }
        }
        Err(ScimError::new(409, None, "the resource kept changing; try again").into())
    }
    .await)
    .await
}

pub async fn replace_group(ctx: &Ctx<'_>, caller: &Caller, id: &str, body: &Json, if_match: Option<&str>) -> Result<Resource> {
    refused(ctx, caller, "scim.group_replace", format!("scim-group:{id}"), async {
        let (document, mut members) = split_members(schema::normalise(&GROUP_SCHEMA, body)?);
        members.sort();
        members.dedup();
        check_members(ctx, caller, &members).await?;
        for attempt in 0..WRITE_ATTEMPTS {
            let row = find_group(ctx, caller, id).await?;
            check_if_match(if_match, row.version)?;
            let before: Vec<String> = rows::members_of(ctx.scope(), &[id]).await?.into_iter().map(|(_, u)| u).collect();
            let write = group_write(&document);
            let name = write.display_name.clone();
            let changes = MemberChanges { clear: true, remove: Vec::new(), add: members.clone() };
            match rows::update_group(ctx.writer_scope(), &caller.directory.id, id, Some((row.version, write)), &changes, now()).await? {
                Written::Done(_) => {
                    let concerned: Vec<String> = before.into_iter().chain(members.iter().cloned()).collect();
                    resync(ctx, caller, &[row.display_name.as_str(), name.as_str()], &concerned).await?;
                    audit(ctx, caller, "scim.group_replace", format!("scim-group:{id}"), &Ok(json!({ "members": members.len() }))).await;
                    return render_group(ctx, caller, &find_group(ctx, caller, id).await?, true).await;
                }
                Written::Stale if if_match.is_some() => return Err(ScimError::precondition_failed().into()),
                Written::Stale | Written::NameTaken => back_off(attempt).await,
            }
        }
        Err(ScimError::new(409, None, "the resource kept changing; try again").into())
    }
    .await)
    .await
}

pub async fn delete_group(ctx: &Ctx<'_>, caller: &Caller, id: &str, if_match: Option<&str>) -> Result<()> {
    refused(ctx, caller, "scim.group_delete", format!("scim-group:{id}"), async {
        let row = find_group(ctx, caller, id).await?;
        check_if_match(if_match, row.version)?;
        let Some(members) = rows::delete_group(ctx.writer_scope(), &caller.directory.id, id).await? else {
            return Err(ScimError::not_found(format!("no group {id}")).into());
        };
        resync(ctx, caller, &[row.display_name.as_str()], &members).await?;
        audit(ctx, caller, "scim.group_delete", format!("scim-group:{id}"), &Ok(json!({ "members": members.len() }))).await;
        Ok(())
    }
    .await)
    .await
}

// ---------------------------------------------------------------------------------------------------
// Lists

/// One page of a list or search (RFC 7644 §3.4.2).
#[derive(Debug, Clone)]
pub struct ListPage {
    pub total: u64,
    pub start_index: u64,
    pub resources: Vec<Json>,
}

fn mentions(query: &ListQuery, name: &str) -> bool {
    let text = query.filter.as_ref().map(|f| f.to_string().to_ascii_lowercase()).unwrap_or_default();
    text.contains(&name.to_ascii_lowercase()) || query.sort_path.as_ref().is_some_and(|p| p.name.eq_ignore_ascii_case(name))
}

fn wants(query: &ListQuery, name: &str) -> bool {
    let named = |paths: &[AttrPath]| paths.iter().any(|p| p.name.eq_ignore_ascii_case(name) && p.sub.is_none());
    if query.attributes.is_empty() { !named(&query.excluded) } else { query.attributes.iter().any(|p| p.name.eq_ignore_ascii_case(name)) }
}

/// A sort key for in-memory sorting: the first value `path` names, case-folded.
fn sort_key(resource: &Json, path: &AttrPath) -> Option<String> {
    let base = match &path.urn {
        Some(urn) if !urn.eq_ignore_ascii_case(schema::USER) && !urn.eq_ignore_ascii_case(schema::GROUP) => schema::member(resource, urn)?,
        _ => resource,
    };
    let mut value = schema::member(base, &path.name)?;
    if let Json::Array(items) = value {
        value = items.iter().find(|i| i.get("primary") == Some(&Json::Bool(true))).or(items.first())?;
    }
    if let Some(sub) = &path.sub {
        value = schema::member(value, sub)?;
    }
    Some(match value {
        Json::String(s) => s.to_lowercase(),
        other => other.to_string(),
    })
}

/// Runs a query the database answers whole (exact narrowing, indexed order), or else evaluates it
/// on at most `MAX_SCAN` candidates; then pages and projects.
async fn run_list<R, F, Fut>(query: &ListQuery, count: impl std::future::Future<Output = Result<u64>>, fetch: F, render: R) -> Result<ListPage>
where
    F: Fn(Order, u64, u64) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Json>>>,
    R: Fn(Vec<Json>) -> Vec<Json>,
{
    let offset = query.start_index - 1;
    let (total, mut page) = match (query.exact, query.order) {
        (true, Some(order)) => {
            let total = count.await?;
            let page = if query.count == 0 { Vec::new() } else { fetch(order, offset, query.count).await? };
            (total, page)
        }
        _ => {
            let candidates = fetch(query.order.unwrap_or(Order::Created), 0, MAX_SCAN + 1).await?;
            if candidates.len() as u64 > MAX_SCAN {
                return Err(ScimError::too_many(format!(
                    "the filter narrows to more than {MAX_SCAN} resources; filter by id, externalId, userName, displayName or emails.value"
                ))
                .into());
            }
            let mut matched: Vec<Json> =
                candidates.into_iter().filter(|r| query.filter.as_ref().is_none_or(|f| evaluate::matches(f, r))).collect();
            if let (None, Some(path)) = (query.order, &query.sort_path) {
                // Resources without the attribute sort last either way (RFC 7644 §3.4.2.3).
                matched.sort_by(|a, b| match (sort_key(a, path), sort_key(b, path)) {
                    (Some(a), Some(b)) => if query.ascending { a.cmp(&b) } else { b.cmp(&a) },
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                });
            }
            let total = matched.len() as u64;
            (total, matched.into_iter().skip(offset as usize).take(query.count as usize).collect())
        }
    };
    page = render(page);
    for resource in &mut page {
        query::project(resource, &query.attributes, &query.excluded);
    }
    Ok(ListPage { total, start_index: query.start_index, resources: page })
}

pub async fn list_users(ctx: &Ctx<'_>, caller: &Caller, query: &ListQuery) -> Result<ListPage> {
    let scope = ctx.scope();
    let directory = &caller.directory.id;
    // Groups are read per user only for what needs them: a filter or sort on groups, or the page.
    let filter_groups = mentions(query, "groups");
    let page_groups = wants(query, "groups");
    let fetch = |order: Order, offset: u64, limit: u64| async move {
        let found = rows::users(scope, directory, &query.narrowing, (order, query.ascending), offset, limit).await?;
        let mut rendered = Vec::with_capacity(found.len());
        for row in &found {
            let groups = if filter_groups { Some(rows::groups_of(scope, &row.id).await?) } else { None };
            rendered.push(render_user(&caller.base, row, stored(&row.document)?, groups.as_deref()));
        }
        Ok(rendered)
    };
    let mut page = run_list(query, async { Ok(rows::count_users(scope, directory, &query.narrowing).await?) }, fetch, |page| page).await?;
    if page_groups && !filter_groups {
        for resource in &mut page.resources {
            let Some(id) = resource.get("id").and_then(Json::as_str).map(str::to_owned) else { continue };
            let groups = rows::groups_of(scope, &id).await?;
            if !groups.is_empty() {
                resource["groups"] = groups
                    .iter()
                    .map(|g| json!({ "value": g.id, "$ref": format!("{}/Groups/{}", caller.base, g.id), "display": g.display_name, "type": "direct" }))
                    .collect();
            }
        }
    }
    Ok(page)
}

pub async fn list_groups(ctx: &Ctx<'_>, caller: &Caller, query: &ListQuery) -> Result<ListPage> {
    let scope = ctx.scope();
    let directory = &caller.directory.id;
    let with_members = mentions(query, "members") || wants(query, "members");
    let fetch = |order: Order, offset: u64, limit: u64| async move {
        let found = rows::groups(scope, directory, &query.narrowing, (order, query.ascending), offset, limit).await?;
        let mut rendered = Vec::with_capacity(found.len());
        for row in &found {
            rendered.push(render_group(ctx, caller, row, with_members).await?.body);
        }
        Ok(rendered)
    };
    run_list(query, async { Ok(rows::count_groups(scope, directory, &query.narrowing).await?) }, fetch, |page| page).await
}

/// `POST /.search` at the directory's root (RFC 7644 §3.4.3): users, then groups, paged as one list.
pub async fn list_all(ctx: &Ctx<'_>, caller: &Caller, users: &ListQuery, groups: &ListQuery) -> Result<ListPage> {
    let (start, count) = (users.start_index, users.count);
    let user_total = list_users(ctx, caller, &ListQuery { count: 0, start_index: 1, ..users.clone() }).await?.total;
    let mut resources = Vec::new();
    if start <= user_total && count > 0 {
        resources = list_users(ctx, caller, users).await?.resources;
    }
    let remaining = count.saturating_sub(resources.len() as u64);
    let group_start = start.saturating_sub(user_total).max(1);
    let group_page = list_groups(ctx, caller, &ListQuery { count: remaining, start_index: group_start, ..groups.clone() }).await?;
    resources.extend(group_page.resources);
    Ok(ListPage { total: user_total + group_page.total, start_index: start, resources })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_compares_weakly_and_accepts_any() {
        for (header, version, ok) in [
            (None, 3, true),
            (Some("W/\"3\""), 3, true),
            (Some("\"3\""), 3, true),
            (Some("*"), 3, true),
            (Some("W/\"2\", W/\"3\""), 3, true),
            (Some("W/\"2\""), 3, false),
            (Some("garbage"), 3, false),
        ] {
            assert_eq!(check_if_match(header, version).is_ok(), ok, "{header:?}");
        }
        assert_eq!(check_if_match(Some("W/\"1\""), 2).expect_err("stale").status, 412);
    }

    #[test]
    fn roles_come_from_the_mapped_groups_a_member_is_in() {
        let map = vec![("Engineering Admins".to_owned(), "admin".to_owned()), ("All Staff".to_owned(), "member".to_owned()), ("Ops".to_owned(), "admin".to_owned())];
        for (groups, expected) in [
            (vec![], vec![]),
            (vec!["engineering admins"], vec!["admin"]),
            (vec!["Ops", "Engineering Admins", "All Staff"], vec!["admin", "member"]),
            (vec!["Unmapped"], vec![]),
        ] {
            assert_eq!(roles_for(&map, &groups), expected, "{groups:?}");
        }
    }

    #[test]
    fn the_account_address_is_the_primary_then_work_then_first_email_then_the_user_name() {
        let address = |doc: Json| account_address(&doc).map(|e| e.to_string());
        assert_eq!(address(json!({ "userName": "x", "emails": [{ "value": "a@w.example", "type": "work" }, { "value": "B@P.example", "primary": true }] })), Some("b@p.example".into()));
        assert_eq!(address(json!({ "userName": "x", "emails": [{ "value": "h@h.example", "type": "home" }, { "value": "w@w.example", "type": "work" }] })), Some("w@w.example".into()));
        assert_eq!(address(json!({ "userName": "Ada@Example.com" })), Some("ada@example.com".into()));
        assert_eq!(address(json!({ "userName": "ada" })), None);
    }
}
