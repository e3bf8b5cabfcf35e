//! User grants: what a user authorized an application to do, with the
//! digest of the grant's authorization code and the generation of its
//! refresh token, and the answered authorization requests. Codes and refresh
//! tokens are consumed by compare-and-set writes (an `UPDATE` that names the
//! expected old value), never by a read followed by a write.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::insert_audit;
use super::entities::{answered_authorization_request, application, revoked_token, user_grant};
use super::shared_cache::Change;
use super::{Store, commit, db_error, is_unique_violation, retrying};
use crate::domain::{
    Error,
    audit::NewAuditEvent,
    clock::{from_micros, to_micros},
    names::{ClientId, OrganizationId},
    user_grant::{IssuedUnder, UserAuthorizationRecord, UserGrant},
};

/// A grant to create when a user accepts an authorization request. (No
/// `Debug`: it holds the code's digest.)
#[allow(missing_debug_implementations)]
#[derive(Clone)]
pub struct NewGrant {
    pub id: Uuid,
    pub client_id: ClientId,
    pub subject: String,
    pub scopes: BTreeSet<String>,
    pub offline_access: bool,
    pub expire_time: OffsetDateTime,
    pub code_digest: String,
    pub code_expire_time: OffsetDateTime,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub code_challenge: Option<String>,
    /// The application's revision the user consented at.
    pub revision: i64,
}

/// The answer of a request, to record once.
#[derive(Debug, Clone)]
pub struct Answer {
    pub request: Uuid,
    /// When the record may be purged: after the request expired.
    pub keep_until: OffsetDateTime,
    pub audit: NewAuditEvent,
}

/// Which grants a revocation ends.
#[derive(Debug, Clone)]
pub enum UserGrantsOf<'a> {
    One(Uuid),
    User {
        client_id: ClientId,
        subject: &'a str,
    },
}

/// Records on a grant what its current refresh token was issued under.
fn set_issued_under(
    update: sea_orm::UpdateMany<user_grant::Entity>,
    issued: IssuedUnder,
) -> sea_orm::UpdateMany<user_grant::Entity> {
    update
        .col_expr(
            user_grant::Column::RefreshCredential,
            Expr::value(issued.credential.map(|c| c.to_string())),
        )
        .col_expr(
            user_grant::Column::RefreshRevision,
            Expr::value(issued.revision),
        )
}

fn grant_from_row(row: user_grant::Model) -> Result<UserGrant, Error> {
    let corrupt = || {
        tracing::error!(grant = %row.id, "stored grant does not parse");
        Error::Internal
    };
    Ok(UserGrant {
        id: Uuid::parse_str(&row.id).map_err(|_| corrupt())?,
        client_id: ClientId::parse(&row.application_id).ok_or_else(corrupt)?,
        subject: row.subject.clone(),
        scopes: row
            .scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        offline_access: row.offline_access,
        create_time: from_micros(row.create_time),
        expire_time: from_micros(row.expire_time),
        revoke_time: row.revoke_time.map(from_micros),
        code_digest: row.code_digest,
        code_expire_time: from_micros(row.code_expire_time),
        code_redeem_time: row.code_redeem_time.map(from_micros),
        redirect_uri: row.redirect_uri,
        redirect_uri_given: row.redirect_uri_given,
        code_challenge: row.code_challenge,
        refresh_generation: row
            .refresh_generation
            .map(|g| u32::try_from(g).map_err(|_| corrupt()))
            .transpose()?,
        refresh_expire_time: row.refresh_expire_time.map(from_micros),
        rotate_time: row.rotate_time.map(from_micros),
        revision: row.revision,
        refresh_issued: IssuedUnder {
            credential: row
                .refresh_credential
                .as_deref()
                .map(|c| Uuid::parse_str(c).map_err(|_| corrupt()))
                .transpose()?,
            revision: row.refresh_revision,
        },
    })
}

/// User grants whose code was redeemed and that still work at `now`.
fn live(now: OffsetDateTime) -> Condition {
    Condition::all()
        .add(user_grant::Column::RevokeTime.is_null())
        .add(user_grant::Column::CodeRedeemTime.is_not_null())
        .add(user_grant::Column::ExpireTime.gt(to_micros(now)))
}

impl Store {
    /// Whether the authorization request with this ID was answered.
    pub async fn authorization_request_answered(&self, request: Uuid) -> Result<bool, Error> {
        retrying(|| async {
            Ok(
                answered_authorization_request::Entity::find_by_id(request.to_string())
                    .one(&self.db)
                    .await
                    .map_err(db_error)?
                    .is_some(),
            )
        })
        .await
    }

    /// Records an answer: fails with `AUTHORIZATION_REQUEST_ANSWERED` if the
    /// request was answered before, whoever answered it.
    async fn record_answer(
        &self,
        txn: &impl ConnectionTrait,
        answer: &Answer,
    ) -> Result<(), Error> {
        let inserted = answered_authorization_request::Entity::insert(
            answered_authorization_request::ActiveModel {
                id: Set(answer.request.to_string()),
                expire_time: Set(to_micros(answer.keep_until)),
            },
        )
        .exec(txn)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::authorization_request_answered()),
            Err(e) => Err(db_error(e)),
        }
    }

    /// Accepts a request: records the answer and creates the grant with
    /// its code, in one transaction with the audit event.
    pub async fn accept_authorization(
        &self,
        answer: Answer,
        grant: NewGrant,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let txn = self.write().await?;
        self.record_answer(&txn, &answer).await?;
        user_grant::Entity::insert(user_grant::ActiveModel {
            id: Set(grant.id.to_string()),
            application_id: Set(grant.client_id.to_string()),
            subject: Set(grant.subject),
            scopes: Set(grant.scopes.into_iter().collect::<Vec<_>>().join(" ")),
            offline_access: Set(grant.offline_access),
            create_time: Set(to_micros(now)),
            update_time: Set(to_micros(now)),
            expire_time: Set(to_micros(grant.expire_time)),
            revoke_time: Set(None),
            code_digest: Set(grant.code_digest),
            code_expire_time: Set(to_micros(grant.code_expire_time)),
            code_redeem_time: Set(None),
            redirect_uri: Set(grant.redirect_uri),
            redirect_uri_given: Set(grant.redirect_uri_given),
            code_challenge: Set(grant.code_challenge),
            refresh_generation: Set(None),
            refresh_expire_time: Set(None),
            rotate_time: Set(None),
            revision: Set(grant.revision),
            refresh_credential: Set(None),
            refresh_revision: Set(0),
        })
        .exec(&txn)
        .await
        .map_err(db_error)?;
        insert_audit(&txn, answer.audit, now).await?;
        commit(txn).await
    }

    /// Rejects a request: records the answer with its audit event.
    pub async fn reject_authorization(
        &self,
        answer: Answer,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let txn = self.write().await?;
        self.record_answer(&txn, &answer).await?;
        insert_audit(&txn, answer.audit, now).await?;
        commit(txn).await
    }

    /// A grant by its ID.
    pub async fn find_user_grant(&self, id: Uuid) -> Result<Option<UserGrant>, Error> {
        let row = retrying(|| async {
            user_grant::Entity::find_by_id(id.to_string())
                .one(&self.db)
                .await
                .map_err(db_error)
        })
        .await?;
        row.map(grant_from_row).transpose()
    }

    /// Marks a grant's code redeemed, starting its refresh tokens at
    /// generation 0 with this idle end (if it has them), and setting its
    /// own end: `false` if the code was redeemed (or the grant revoked)
    /// meanwhile.
    pub async fn redeem_code(
        &self,
        grant: Uuid,
        refresh_expire_time: Option<OffsetDateTime>,
        expire_time: OffsetDateTime,
        issued: IssuedUnder,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let mut update = user_grant::Entity::update_many()
            .col_expr(
                user_grant::Column::CodeRedeemTime,
                Expr::value(to_micros(now)),
            )
            .col_expr(user_grant::Column::UpdateTime, Expr::value(to_micros(now)))
            .col_expr(
                user_grant::Column::ExpireTime,
                Expr::value(to_micros(expire_time)),
            );
        if let Some(refresh_expire_time) = refresh_expire_time {
            update = update
                .col_expr(user_grant::Column::RefreshGeneration, Expr::value(0i64))
                .col_expr(
                    user_grant::Column::RefreshExpireTime,
                    Expr::value(to_micros(refresh_expire_time)),
                );
            update = set_issued_under(update, issued);
        }
        let updated = update
            .filter(user_grant::Column::Id.eq(grant.to_string()))
            .filter(user_grant::Column::CodeRedeemTime.is_null())
            .filter(user_grant::Column::RevokeTime.is_null())
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok(updated.rows_affected == 1)
    }

    /// Moves a grant's refresh token from generation `current` to the
    /// next, with a new idle end: `false` if the grant is no longer at
    /// `current` (another request rotated it first) or was revoked.
    pub async fn rotate_refresh(
        &self,
        grant: Uuid,
        current: u32,
        refresh_expire_time: OffsetDateTime,
        issued: IssuedUnder,
        now: OffsetDateTime,
    ) -> Result<bool, Error> {
        let updated = set_issued_under(user_grant::Entity::update_many(), issued)
            .col_expr(
                user_grant::Column::RefreshGeneration,
                Expr::value(i64::from(current) + 1),
            )
            .col_expr(
                user_grant::Column::RefreshExpireTime,
                Expr::value(to_micros(refresh_expire_time)),
            )
            .col_expr(user_grant::Column::RotateTime, Expr::value(to_micros(now)))
            .col_expr(user_grant::Column::UpdateTime, Expr::value(to_micros(now)))
            .filter(user_grant::Column::Id.eq(grant.to_string()))
            .filter(user_grant::Column::RefreshGeneration.eq(i64::from(current)))
            .filter(user_grant::Column::RevokeTime.is_null())
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok(updated.rows_affected == 1)
    }

    /// Ends grants at `now`: their codes and refresh tokens stop working,
    /// and the access tokens issued from them are revoked until
    /// `tokens_expire` (when the last of them expires anyway), on every
    /// replica. Returns how many grants ended; the audit event is written
    /// only if any did.
    pub async fn revoke_user_grants(
        &self,
        which: UserGrantsOf<'_>,
        tokens_expire: OffsetDateTime,
        audit: impl FnOnce(usize) -> NewAuditEvent,
        now: OffsetDateTime,
    ) -> Result<usize, Error> {
        let txn = self.write().await?;
        let filter = match &which {
            UserGrantsOf::One(id) => {
                Condition::all().add(user_grant::Column::Id.eq(id.to_string()))
            }
            UserGrantsOf::User { client_id, subject } => Condition::all()
                .add(user_grant::Column::ApplicationId.eq(client_id.to_string()))
                .add(user_grant::Column::Subject.eq(*subject)),
        };
        let rows: Vec<(String, String)> = user_grant::Entity::find()
            .select_only()
            .column(user_grant::Column::Id)
            .column(user_grant::Column::ApplicationId)
            .filter(filter)
            .filter(user_grant::Column::RevokeTime.is_null())
            .filter(user_grant::Column::ExpireTime.gt(to_micros(now)))
            .into_tuple()
            .all(&txn)
            .await
            .map_err(db_error)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
        let ended = user_grant::Entity::update_many()
            .col_expr(user_grant::Column::RevokeTime, Expr::value(to_micros(now)))
            .filter(user_grant::Column::Id.is_in(ids))
            .filter(user_grant::Column::RevokeTime.is_null())
            .exec(&txn)
            .await
            .map_err(db_error)?
            .rows_affected;
        // Another revocation got there first (PostgreSQL: between the read
        // and this write): it wrote the audit event.
        if ended == 0 {
            return Ok(0);
        }
        let expires = to_micros(tokens_expire);
        // One statement per few hundred grants, not one per grant, while the
        // write lock is held.
        for chunk in rows.chunks(300) {
            let revocations = chunk
                .iter()
                .map(|(id, application_id)| revoked_token::ActiveModel {
                    jti: Set(id.clone()),
                    application_id: Set(application_id.clone()),
                    expire_time: Set(expires),
                });
            revoked_token::Entity::insert_many(revocations)
                .on_conflict_do_nothing()
                .exec_without_returning(&txn)
                .await
                .map_err(db_error)?;
        }
        let changes = rows
            .iter()
            .map(|(id, _)| Uuid::parse_str(id).map(|id| Change::Revoked(id, expires)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::Internal)?;
        let ended = usize::try_from(ended).unwrap_or(usize::MAX);
        insert_audit(&txn, audit(ended), now).await?;
        self.commit_changes(txn, &changes).await?;
        Ok(ended)
    }

    /// Up to `limit` applications `subject` authorized (of `organization`,
    /// if given) whose client ID sorts after `after`, in client ID order.
    pub async fn list_user_authorizations(
        &self,
        subject: &str,
        organization: Option<&OrganizationId>,
        after: Option<&str>,
        limit: u64,
        now: OffsetDateTime,
    ) -> Result<Vec<UserAuthorizationRecord>, Error> {
        let mut apps = application::Entity::find().filter(
            application::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(user_grant::Column::ApplicationId)
                    .from(user_grant::Entity)
                    .cond_where(live(now).add(user_grant::Column::Subject.eq(subject)))
                    .to_owned(),
            ),
        );
        if let Some(organization) = organization {
            apps = apps.filter(application::Column::Organization.eq(organization.as_str()));
        }
        if let Some(after) = after {
            apps = apps.filter(application::Column::Id.gt(after));
        }
        let apps = apps
            .order_by_asc(application::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        if apps.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = apps.iter().map(|a| a.id.clone()).collect();
        let mut grants: BTreeMap<String, Vec<UserGrant>> = BTreeMap::new();
        for row in user_grant::Entity::find()
            .filter(live(now))
            .filter(user_grant::Column::Subject.eq(subject))
            .filter(user_grant::Column::ApplicationId.is_in(ids))
            .all(&self.db)
            .await
            .map_err(db_error)?
        {
            let grant = grant_from_row(row)?;
            grants
                .entry(grant.client_id.to_string())
                .or_default()
                .push(grant);
        }
        apps.into_iter()
            .filter_map(|app| {
                let of_app = grants.remove(&app.id)?;
                Some((app, of_app))
            })
            .map(|(app, of_app)| {
                Ok(UserAuthorizationRecord {
                    organization: OrganizationId::parse(&app.organization)
                        .map_err(|_| Error::Internal)?,
                    client_id: ClientId::parse(&app.id).ok_or(Error::Internal)?,
                    display_name: app.display_name,
                    scopes: of_app
                        .iter()
                        .flat_map(|g| g.scopes.iter().cloned())
                        .collect(),
                    offline_access: of_app.iter().any(|g| g.offline_access),
                    create_time: of_app.iter().map(|g| g.create_time).min().unwrap_or(now),
                    update_time: of_app
                        .iter()
                        .map(|g| {
                            g.rotate_time
                                .or(g.code_redeem_time)
                                .unwrap_or(g.create_time)
                        })
                        .max()
                        .unwrap_or(now),
                })
            })
            .collect()
    }

    /// Deletes grants that ended before `now` (expired, revoked before
    /// `revoked_before`, or whose code expired unredeemed: nothing was
    /// issued from it) and answers of expired requests.
    pub async fn purge_ended_user_grants(
        &self,
        now: OffsetDateTime,
        revoked_before: OffsetDateTime,
    ) -> Result<u64, Error> {
        let grants = user_grant::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(user_grant::Column::ExpireTime.lte(to_micros(now)))
                    .add(user_grant::Column::RevokeTime.lte(to_micros(revoked_before)))
                    .add(
                        Condition::all()
                            .add(user_grant::Column::CodeRedeemTime.is_null())
                            .add(user_grant::Column::CodeExpireTime.lte(to_micros(now))),
                    ),
            )
            .exec(&self.db)
            .await
            .map_err(db_error)?
            .rows_affected;
        let answers = answered_authorization_request::Entity::delete_many()
            .filter(answered_authorization_request::Column::ExpireTime.lte(to_micros(now)))
            .exec(&self.db)
            .await
            .map_err(db_error)?
            .rows_affected;
        Ok(grants + answers)
    }
}

/// Ends every grant of an application inside a change of the application
/// (a secret rotation that revokes tokens).
pub(super) async fn revoke_user_grants_of(
    conn: &impl ConnectionTrait,
    client_id: ClientId,
    now: OffsetDateTime,
) -> Result<(), Error> {
    user_grant::Entity::update_many()
        .col_expr(user_grant::Column::RevokeTime, Expr::value(to_micros(now)))
        .filter(user_grant::Column::ApplicationId.eq(client_id.to_string()))
        .filter(user_grant::Column::RevokeTime.is_null())
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Deletes every grant of an application being deleted.
pub(super) async fn delete_user_grants_of(
    conn: &impl ConnectionTrait,
    client_id: ClientId,
) -> Result<(), Error> {
    user_grant::Entity::delete_many()
        .filter(user_grant::Column::ApplicationId.eq(client_id.to_string()))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}
