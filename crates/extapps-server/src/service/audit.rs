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
        // Newest first: the page after a key holds the events before it.
        let page = self
            .seals
            .page_tokens
            .request::<i64>(query, limit, page_token)?;
        let events = self
            .store
            .list_audit_events(
                organization,
                application.map(|a| a.client_id),
                page.after,
                page.rows_to_read(),
            )
            .await?;
        self.seals.page_tokens.page(&page, events, |event| event.id)
    }
}
