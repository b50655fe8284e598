use serde::{Deserialize, Serialize};

/// A user's role in a workspace. Roles are fixed sets of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Manager,
    Sales,
    Support,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Manager,
        Role::Sales,
        Role::Support,
        Role::Viewer,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Sales => "sales",
            Role::Support => "support",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn permits(&self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Manager => !matches!(
                p,
                UsersWrite | ApiKeysManage | WebhooksManage | FieldsWrite | RecordsPurge
            ),
            Role::Sales => matches!(
                p,
                ContactsRead
                    | ContactsWrite
                    | CompaniesRead
                    | CompaniesWrite
                    | LeadsRead
                    | LeadsWrite
                    | FieldsRead
                    | UsersRead
                    | TeamsRead
                    | DealsRead
                    | DealsWrite
                    | ActivitiesRead
                    | ActivitiesWrite
                    | ProductsRead
                    | QuotesRead
                    | QuotesWrite
                    | QuotasRead
            ),
            Role::Support => matches!(
                p,
                ContactsRead
                    | ContactsWrite
                    | CompaniesRead
                    | LeadsRead
                    | DealsRead
                    | FieldsRead
                    | UsersRead
                    | TeamsRead
                    | ActivitiesRead
                    | ActivitiesWrite
                    | ProductsRead
                    | QuotesRead
                    | QuotasRead
            ),
            Role::Viewer => matches!(
                p,
                ContactsRead
                    | CompaniesRead
                    | LeadsRead
                    | DealsRead
                    | FieldsRead
                    | UsersRead
                    | TeamsRead
                    | ActivitiesRead
                    | ProductsRead
                    | QuotesRead
                    | QuotasRead
            ),
        }
    }
}

/// What an operation requires. API keys carry these directly as scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ContactsRead,
    ContactsWrite,
    CompaniesRead,
    CompaniesWrite,
    FieldsRead,
    FieldsWrite,
    UsersRead,
    UsersWrite,
    TeamsRead,
    TeamsWrite,
    /// Reading the change feed (`/events`).
    EventsRead,
    /// Reading the audit log.
    AuditRead,
    /// Webhook subscriptions: they see every change, so only admins manage them.
    WebhooksManage,
    ApiKeysManage,
    /// Erasing records for good (`DELETE …?permanent=true`).
    RecordsPurge,
    LeadsRead,
    LeadsWrite,
    /// Managing the rules that distribute new leads to reps.
    AssignmentRulesWrite,
    /// Reading deals, and the pipelines they move through.
    DealsRead,
    DealsWrite,
    /// Creating and changing pipelines and their stages.
    PipelinesWrite,
    ActivitiesRead,
    ActivitiesWrite,
    /// The product catalogue and its price books.
    ProductsRead,
    ProductsWrite,
    QuotesRead,
    QuotesWrite,
    /// Sales quotas; reading them is part of reading the forecast.
    QuotasRead,
    QuotasWrite,
}

impl Permission {
    pub const ALL: [Permission; 29] = [
        Permission::ContactsRead,
        Permission::ContactsWrite,
        Permission::CompaniesRead,
        Permission::CompaniesWrite,
        Permission::FieldsRead,
        Permission::FieldsWrite,
        Permission::UsersRead,
        Permission::UsersWrite,
        Permission::TeamsRead,
        Permission::TeamsWrite,
        Permission::EventsRead,
        Permission::AuditRead,
        Permission::WebhooksManage,
        Permission::ApiKeysManage,
        Permission::RecordsPurge,
        Permission::LeadsRead,
        Permission::LeadsWrite,
        Permission::AssignmentRulesWrite,
        Permission::DealsRead,
        Permission::DealsWrite,
        Permission::PipelinesWrite,
        Permission::ActivitiesRead,
        Permission::ActivitiesWrite,
        Permission::ProductsRead,
        Permission::ProductsWrite,
        Permission::QuotesRead,
        Permission::QuotesWrite,
        Permission::QuotasRead,
        Permission::QuotasWrite,
    ];

    /// The scope name, as API keys list it and 403 responses name it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Permission::ContactsRead => "contacts:read",
            Permission::ContactsWrite => "contacts:write",
            Permission::CompaniesRead => "companies:read",
            Permission::CompaniesWrite => "companies:write",
            Permission::FieldsRead => "fields:read",
            Permission::FieldsWrite => "fields:write",
            Permission::UsersRead => "users:read",
            Permission::UsersWrite => "users:write",
            Permission::TeamsRead => "teams:read",
            Permission::TeamsWrite => "teams:write",
            Permission::EventsRead => "events:read",
            Permission::AuditRead => "audit:read",
            Permission::WebhooksManage => "webhooks:manage",
            Permission::ApiKeysManage => "api_keys:manage",
            Permission::RecordsPurge => "records:purge",
            Permission::LeadsRead => "leads:read",
            Permission::LeadsWrite => "leads:write",
            Permission::AssignmentRulesWrite => "assignment_rules:write",
            Permission::DealsRead => "deals:read",
            Permission::DealsWrite => "deals:write",
            Permission::PipelinesWrite => "pipelines:write",
            Permission::ActivitiesRead => "activities:read",
            Permission::ActivitiesWrite => "activities:write",
            Permission::ProductsRead => "products:read",
            Permission::ProductsWrite => "products:write",
            Permission::QuotesRead => "quotes:read",
            Permission::QuotesWrite => "quotes:write",
            Permission::QuotasRead => "quotas:read",
            Permission::QuotasWrite => "quotas:write",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_reads_only() {
        for p in Permission::ALL {
            let write = p.as_str().ends_with(":write")
                || p.as_str().ends_with(":manage")
                || p == Permission::RecordsPurge;
            let oversight = matches!(p, Permission::EventsRead | Permission::AuditRead);
            assert_eq!(Role::Viewer.permits(p), !write && !oversight, "{p:?}");
        }
    }

    #[test]
    fn only_admins_manage_people_and_keys() {
        for r in Role::ALL {
            assert_eq!(r.permits(Permission::UsersWrite), r == Role::Admin);
            assert_eq!(r.permits(Permission::ApiKeysManage), r == Role::Admin);
            assert_eq!(r.permits(Permission::WebhooksManage), r == Role::Admin);
        }
    }

    #[test]
    fn only_admins_and_managers_read_the_audit_log_and_feed() {
        for r in Role::ALL {
            let boss = matches!(r, Role::Admin | Role::Manager);
            assert_eq!(r.permits(Permission::AuditRead), boss);
            assert_eq!(r.permits(Permission::EventsRead), boss);
        }
    }

    #[test]
    fn leads_are_worked_by_sales_and_routed_by_managers() {
        for r in Role::ALL {
            let sells = matches!(r, Role::Admin | Role::Manager | Role::Sales);
            assert!(r.permits(Permission::LeadsRead));
            assert_eq!(r.permits(Permission::LeadsWrite), sells);
            assert_eq!(
                r.permits(Permission::AssignmentRulesWrite),
                matches!(r, Role::Admin | Role::Manager)
            );
        }
    }

    #[test]
    fn quotas_are_read_by_all_and_set_by_managers() {
        for r in Role::ALL {
            assert!(r.permits(Permission::QuotasRead));
            assert_eq!(
                r.permits(Permission::QuotasWrite),
                matches!(r, Role::Admin | Role::Manager)
            );
        }
    }

    #[test]
    fn deals_and_pipelines() {
        for r in Role::ALL {
            let boss = matches!(r, Role::Admin | Role::Manager);
            assert_eq!(r.permits(Permission::PipelinesWrite), boss);
            assert!(r.permits(Permission::DealsRead));
            assert_eq!(r.permits(Permission::DealsWrite), boss || r == Role::Sales);
        }
    }

    #[test]
    fn the_catalogue_is_managed_by_admins_and_managers_and_quoted_by_sales() {
        for r in Role::ALL {
            let boss = matches!(r, Role::Admin | Role::Manager);
            assert!(r.permits(Permission::ProductsRead));
            assert!(r.permits(Permission::QuotesRead));
            assert_eq!(r.permits(Permission::ProductsWrite), boss);
            assert_eq!(r.permits(Permission::QuotesWrite), boss || r == Role::Sales);
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}
