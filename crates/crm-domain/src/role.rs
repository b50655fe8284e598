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

    /// Whether the role holds `p`: the roles column of the `permissions!` table.
    pub fn permits(&self, p: Permission) -> bool {
        p.roles().contains(self)
    }
}

/// Declares [`Permission`] from one table, a row per permission: the variant (with its
/// doc comment), its scope name, and the roles that hold it.
macro_rules! permissions {
    ($( $(#[$doc:meta])* $p:ident $scope:literal [$($role:ident)*] )*) => {
        /// What an operation requires. API keys carry these directly as scopes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Permission {
            $( $(#[$doc])* $p, )*
        }

        impl Permission {
            pub const ALL: [Permission; [$(stringify!($p)),*].len()] = [$(Permission::$p),*];

            /// The scope name, as API keys list it and 403 responses name it.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $( Permission::$p => $scope, )*
                }
            }

            /// The roles that hold this permission.
            pub fn roles(&self) -> &'static [Role] {
                match self {
                    $( Permission::$p => &[$(Role::$role),*], )*
                }
            }
        }
    };
}

permissions! {
    // permission        scope name               roles that hold it
    ContactsRead         "contacts:read"          [Admin Manager Sales Support Viewer]
    ContactsWrite        "contacts:write"         [Admin Manager Sales Support]
    CompaniesRead        "companies:read"         [Admin Manager Sales Support Viewer]
    CompaniesWrite       "companies:write"        [Admin Manager Sales]
    FieldsRead           "fields:read"            [Admin Manager Sales Support Viewer]
    FieldsWrite          "fields:write"           [Admin]
    UsersRead            "users:read"             [Admin Manager Sales Support Viewer]
    UsersWrite           "users:write"            [Admin]
    TeamsRead            "teams:read"             [Admin Manager Sales Support Viewer]
    TeamsWrite           "teams:write"            [Admin Manager]
    /// Reading the change feed (`/events`).
    EventsRead           "events:read"            [Admin Manager]
    /// Reading the audit log.
    AuditRead            "audit:read"             [Admin Manager]
    /// Webhook subscriptions: they see every change, so only admins manage them.
    WebhooksManage       "webhooks:manage"        [Admin]
    ApiKeysManage        "api_keys:manage"        [Admin]
    /// Erasing records for good (`DELETE …?permanent=true`).
    RecordsPurge         "records:purge"          [Admin]
    LeadsRead            "leads:read"             [Admin Manager Sales Support Viewer]
    LeadsWrite           "leads:write"            [Admin Manager Sales]
    /// Managing the rules that distribute new leads to reps.
    AssignmentRulesWrite "assignment_rules:write" [Admin Manager]
    /// Reading deals, and the pipelines they move through.
    DealsRead            "deals:read"             [Admin Manager Sales Support Viewer]
    DealsWrite           "deals:write"            [Admin Manager Sales]
    /// Creating and changing pipelines and their stages.
    PipelinesWrite       "pipelines:write"        [Admin Manager]
    ActivitiesRead       "activities:read"        [Admin Manager Sales Support Viewer]
    ActivitiesWrite      "activities:write"       [Admin Manager Sales Support]
    /// The product catalogue and its price books.
    ProductsRead         "products:read"          [Admin Manager Sales Support Viewer]
    ProductsWrite        "products:write"         [Admin Manager]
    QuotesRead           "quotes:read"            [Admin Manager Sales Support Viewer]
    QuotesWrite          "quotes:write"           [Admin Manager Sales]
    /// Sales quotas; reading them is part of reading the forecast.
    QuotasRead           "quotas:read"            [Admin Manager Sales Support Viewer]
    QuotasWrite          "quotas:write"           [Admin Manager]
}

impl Permission {
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
    fn admins_hold_every_permission() {
        for p in Permission::ALL {
            assert!(Role::Admin.permits(p), "{p:?}");
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
