//! Reading the audit log.

use super::Service;
use crate::domain::{
    Error, audit::AuditEvent, caller::Caller, names::ApplicationName, names::OrganizationId,
    page_token::page_size,
};

impl Service {
    /// One page of an organization's audit events, newest first, and the
    /// token of the next page (empty at the end).
    pub async fn list_audit_events(
        &self,
        caller: &Caller,
        organization: &OrganizationId,
        application: Option<&ApplicationName>,
        page_size_value: i32,
        page_token: &str,
    ) -> Result<(Vec<AuditEvent>, String), Error> {
        caller.require_admin("ListAuditEvents")?;
        if !caller.sees(organization) {
            return Err(Error::organization_not_found());
        }
        if let Some(app) = application
            && app.organization != *organization
        {
            return Err(Error::invalid_field(
                "application",
                "must be an application of `parent`",
            ));
        }
        let limit = page_size(page_size_value)?;
        let query = format!(
            "audit\n{organization}\n{}",
            application.map(ToString::to_string).unwrap_or_default()
        );
        let before = self
            .page_tokens
            .decode(&query, page_token)?
            .map(|cursor| {
                <[u8; 8]>::try_from(cursor.as_slice())
                    .map(i64::from_be_bytes)
                    .map_err(|_| {
                        Error::invalid_field("page_token", "is not a page token of this query")
                    })
            })
            .transpose()?;
        let mut events = self
            .store
            .list_audit_events(
                organization,
                application.map(|a| a.client_id),
                before,
                limit + 1,
            )
            .await?;
        let next = if events.len() as u64 > limit {
            events.truncate(limit as usize);
            match events.last() {
                Some(last) => self.page_tokens.encode(&query, &last.id.to_be_bytes())?,
                None => String::new(),
            }
        } else {
            String::new()
        };
        Ok((events, next))
    }
}
