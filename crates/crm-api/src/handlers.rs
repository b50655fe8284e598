//! The standard HTTP handlers of a [`Record`](crate::records::Record) resource, generated
//! from one declaration per resource by [`record_handlers!`].
//!
//! ```ignore
//! record_handlers! {
//!     Deals { dto: Deal, input: DealInput, path: "/deals", tag: "deals",
//!             plural: "deals", singular: "deal", a: "a deal" }
//!     /// List deals.            (a doc comment replaces the default one)
//!     list list_deals;
//!     batch batch_deals;
//!     search search_deals;
//!     create create_deal;
//!     get get_deal;
//!     update update_deal { if_match: "The ETag last read; 412 if the deal changed since" };
//!     delete delete_deal;
//!     restore restore_deal;
//! }
//! ```
//!
//! Each line `<op> <fn name>` expands to `pub async fn <fn name>` with its
//! `#[utoipa::path]` (operation id = the function's name, path = `/api/v1` + `path` + the
//! op's suffix), calling `records::<op>::<Record>`. Ops left out are not generated, so a
//! resource can write one by hand. Without a doc comment an op gets the standard summary
//! (`Get a deal.`, `Restore an archived deal.`, …). The declaration also defines
//! `record_routes(cfg)`, which registers the generated handlers in the order declared, as
//! the `#[get("…")]`-style attributes would.

/// The description of a batch endpoint below its summary.
pub const BATCH_DESCRIPTION: &str =
    "Operations run in order; each result sits at its operation's index. Without `atomic`,\n\
a failed operation changes nothing and the others stand; with `atomic: true`, the first\n\
failure rolls back all of them (the others then answer 424).";

/// The description of the batch endpoint of a configuration resource, whose operations run
/// one by one through its own endpoints' logic.
pub const ITEM_BATCH_DESCRIPTION: &str =
    "Each operation runs as its own endpoint would run it (`create` as `POST`, `update` as a\n\
`PATCH` merge patch without `If-Match`, `delete` as `DELETE`), in order; each result sits at\n\
its operation's index. These records have no field to match on: an `upsert` answers 422\n\
naming `op`. Without `atomic`, a failed operation changes nothing and the others stand; with\n\
`atomic: true`, the first failure rolls back all of them (the others then answer 424).";

/// The description of a merge endpoint below its summary.
pub const MERGE_DESCRIPTION: &str =
    "The record of the path survives: it keeps its values, takes the other's where it has\n\
none (or where `prefer` picks the other's) and joins their lists; every link, activity and\n\
deal of the other moves to it. The other is erased: its id then answers `GET` with 301 to\n\
the survivor and other requests (batch items too) with 404, both naming it in\n\
`merged_into`; an upsert on the other's `external_id` (or a contact's `email`) that no\n\
record holds updates the survivor, which keeps its own. Events: the\n\
survivor's `merged` (with `merged_from`), the other's `deleted` (with `merged_into`), and\n\
an `updated` or `links_changed` for each record whose links moved.";

macro_rules! record_handlers {
    (
        $record:ident {
            dto: $dto:ident, input: $input:ident, path: $path:literal, tag: $tag:literal,
            plural: $plural:literal, singular: $singular:literal, a: $a:literal $(,)?
        }
        $( $(#$doc:tt)* $op:ident $name:ident $({ $($extra:tt)* })? ; )*
    ) => {
        $(
            $crate::handlers::record_handlers!(@op $op $name [$(#$doc)*] [$($($extra)*)?]
                ($record, $dto, $input, $path, $tag, $plural, $singular, $a));
        )*

        /// Registers the generated record handlers, in the order declared.
        pub fn record_routes(cfg: &mut ::actix_web::web::ServiceConfig) {
            $( $crate::handlers::record_handlers!(@route cfg $op $name $path); )*
        }
    };

    // One handler: its doc comment, or else the default summary (and description), then
    // its `#[utoipa::path]` and the function, which takes the request's state and principal
    // and then `params`, and answers `call` awaited.
    (@item [] [$($default:tt)*] [$($summary:tt)*] $args:tt $($fn:tt)*) => {
        $crate::handlers::record_handlers!(@fn [#[doc = $($summary)*]] [, summary = $($summary)* $($default)*] $args $($fn)*);
    };
    (@item [$($doc:tt)+] $default:tt $summary:tt $args:tt $($fn:tt)*) => {
        $crate::handlers::record_handlers!(@fn [$($doc)+] [] $args $($fn)*);
    };
    (@fn [$($doc:tt)*] [$($summary:tt)*] [$($args:tt)*]
        $name:ident($state:ident, $p:ident $(, $param:ident: $ty:ty)*) -> $ret:ty = $call:expr) => {
        $($doc)*
        #[utoipa::path($($args)*, security(("bearer" = [])) $($summary)*)]
        pub async fn $name(
            $state: ::actix_web::web::Data<$crate::state::AppState>,
            $crate::auth::Auth($p): $crate::auth::Auth,
            $($param: $ty),*
        ) -> $crate::error::ApiResult<$ret> {
            $call.await
        }
    };

    (@op list $name:ident $doc:tt [] ($record:ident, $dto:ident, $input:ident, $path:literal, $tag:literal, $plural:literal, $singular:literal, $a:literal)) => {
        $crate::handlers::record_handlers!(@item $doc [] [concat!("List ", $plural, ".")]
            [get, path = concat!("/api/v1", $path), tag = $tag, operation_id = stringify!($name), params($crate::listing::ListParams),
             responses((status = 200, description = concat!("A page of ", $plural), body = $crate::listing::Page<$dto>), $crate::error::ReadErrors)]
            $name(state, p, q: $crate::extract::QueryPairs) -> ::actix_web::web::Json<$crate::listing::Page<$dto>>
                = $crate::records::list::<$record>(state, p, q));
    };
    (@op batch $name:ident $doc:tt [] ($record:ident, $dto:ident, $input:ident, $path:literal, $tag:literal, $plural:literal, $singular:literal, $a:literal)) => {
        $crate::handlers::record_handlers!(@item $doc [, description = $crate::handlers::BATCH_DESCRIPTION]
            [concat!("Create, update, upsert and archive up to 1000 ", $plural, " in one request.")]
            [post, path = concat!("/api/v1", $path, "/batch"), tag = $tag, operation_id = stringify!($name), request_body = $crate::batch::BatchRequest,
             responses((status = 200, description = "One result per operation, in input order", body = $crate::batch::BatchResponse), $crate::error::WriteErrors)]
            $name(state, p, body: $crate::extract::RawJson) -> ::actix_web::HttpResponse
                = $crate::batch::batch::<$record>(state, p, body));
    };
    (@op search $name:ident $doc:tt [] ($record:ident, $dto:ident, $input:ident, $path:literal, $tag:literal, $plural:literal, $singular:literal, $a:literal)) => {
        $crate::handlers::record_handlers!(@item $doc [] [concat!("Search ", $plural, " with the full filter language.")]
            [post, path = concat!("/api/v1", $path, "/search"), tag = $tag, operation_id = stringify!($name), request_body = $crate::listing::SearchRequest,
             responses((status = 200, description = concat!("A page of ", $plural), body = $crate::listing::Page<$dto>), $crate::error::ReadErrors)]
            $name(state, p, body: $crate::extract::RawJson) -> ::actix_web::web::Json<$crate::listing::Page<$dto>>
                = $crate::records::search::<$record>(state, p, body));
    };
    (@op create $name:ident $doc:tt [] ($record:ident, $dto:ident, $input:ident, $path:literal, $tag:literal, $plural:literal, $singular:literal, $a:literal)) => {
        $crate::handlers::record_handlers!(@item $doc [] [concat!("Create ", $a, ".")]
            [post, path = concat!("/api/v1", $path), tag = $tag, operation_id = stringify!($name), request_body = $input,
             responses((status = 201, description = "Created", body = $dto, headers(("ETag" = String), ("Location" = String))), $crate::error::WriteErrors)]
            $name(state, p, body: $crate::extract::RawJson) -> ::actix_web::HttpResponse
                = $crate::records::create::<$record>(state, p, body));
    };
    (@op get $name:ident $doc:tt [] ($record:ident, $dto:ident, $input:ident, $path:literal, $tag:literal, $plural:literal, $singular:literal, $a:literal)) => {
        $crate::handlers::record_handlers!(@item $doc [] [concat!("Get ", $a, ".")]
            [get, path = concat!("/api/v1", $path, "/{id}"), tag = $tag, operation_id = stringify!($name),
             params(("id" = String, Path), ("archived" = Option<bool>, Query, description = concat!("Also return an archived ", $singular))),
             responses((status = 200, description = concat!("The ", $singular), body = $dto, headers(("ETag" = String))), $crate::error::ReadErrors)]
            $name(state, p, id: ::actix_web::web::Path<String>, q: $crate::extract::QueryPairs) -> ::actix_web::HttpResponse
                = $crate::records::get::<$record>(state, p, id.into_inner(), q));
    };
    (@op get $name:ident $doc:tt [merged] ($record:ident, $dto:ident, $input:ident, $path:literal, $tag:literal, $plural:literal, $singular:literal, $a:literal)) => {
        $crate::handlers::record_handlers!(@item $doc [] [concat!("Get ", $a, ".")]
            [get, path = concat!("/api/v1", $path, "/{id}"), tag = $tag, operation_id = stringify!($name),
             params(("id" = String, Path), ("archived" = Option<bool>, Query, description = concat!("Also return an archived ", $singular))),
             responses((status = 200, description = concat!("The ", $singular), body = $dto, headers(("ETag" = String))),
                       (status = 301, description = concat!("The ", $singular, " was merged into another: `Location` and `merged_into` name it"), body = $crate::error::Problem, content_type = "application/problem+json", headers(("Location" = String))),
                       $crate::error::ReadErrors)]
            $name(state, p, id: ::actix_web::web::Path<String>, q: $crate::extract::QueryPairs) -> ::actix_web::HttpResponse
                = $crate::records::get::<$record>(state, p, id.into_inner(), q));
    };
    (@op merge $name:ident $doc:tt [] ($record:ident, $dto:ident, $input:ident, $path:literal, $tag:literal, $plural:literal, $singular:literal, $a:literal)) => {
        $crate::handlers::record_handlers!(@item $doc [, description = $crate::handlers::MERGE_DESCRIPTION]
            [concat!("Merge another ", $singular, " into this one.")]
            [post, path = concat!("/api/v1", $path, "/{id}/merge"), tag = $tag, operation_id = stringify!($name), request_body = $crate::merge::MergeRequest,
             params(("id" = String, Path, description = "The survivor")),
             responses((status = 200, description = concat!("The merged ", $singular), body = $dto, headers(("ETag" = String))), $crate::error::WriteErrors)]
            $name(state, p, id: ::actix_web::web::Path<String>, body: $crate::extract::RawJson) -> ::actix_web::HttpResponse
                = $crate::merge::merge::<$record>(state, p, id.into_inner(), body));
    };
    (@op duplicates $name:ident $doc:tt [] ($record:ident, $dto:ident, $input:ident, $path:literal, $tag:literal, $plural:literal, $singular:literal, $a:literal)) => {
        $crate::handlers::record_handlers!(@item $doc [, description = "Pairs of live records that share a normalised value, best first; see `reasons` and `score`. Computed from the current data on each request."]
            [concat!("List candidate duplicate ", $plural, ".")]
            [get, path = concat!("/api/v1", $path, "/duplicates"), tag = $tag, operation_id = stringify!($name), params($crate::duplicates::DuplicateParams),
             responses((status = 200, description = "A page of candidate pairs", body = $crate::listing::Page<$crate::duplicates::Duplicate<$dto>>), $crate::error::ReadErrors)]
            $name(state, p, q: $crate::extract::QueryPairs) -> ::actix_web::web::Json<$crate::listing::Page<$crate::duplicates::Duplicate<$dto>>>
                = $crate::duplicates::list::<$record>(state, p, q));
    };
    (@op update $name:ident $doc:tt [] $args:tt) => {
        $crate::handlers::record_handlers!(@update $name $doc [("If-Match" = Option<String>, Header)] $args);
    };
    (@op update $name:ident $doc:tt [if_match: $if_match:literal] $args:tt) => {
        $crate::handlers::record_handlers!(@update $name $doc [("If-Match" = Option<String>, Header, description = $if_match)] $args);
    };
    (@update $name:ident $doc:tt [$if_match:tt] ($record:ident, $dto:ident, $input:ident, $path:literal, $tag:literal, $plural:literal, $singular:literal, $a:literal)) => {
        $crate::handlers::record_handlers!(@item $doc [] [concat!("Update ", $a, " with a JSON Merge Patch (RFC 7396).")]
            [patch, path = concat!("/api/v1", $path, "/{id}"), tag = $tag, operation_id = stringify!($name),
             request_body(content = $input, content_type = "application/merge-patch+json", description = "Any subset of the writable fields; null removes a value"),
             params(("id" = String, Path), $if_match),
             responses((status = 200, description = concat!("The updated ", $singular), body = $dto, headers(("ETag" = String))), $crate::error::WriteErrors)]
            $name(state, p, id: ::actix_web::web::Path<String>, if_match: $crate::extract::IfMatch, body: $crate::extract::RawJson) -> ::actix_web::HttpResponse
                = $crate::records::patch::<$record>(state, p, id.into_inner(), if_match, body));
    };
    (@op delete $name:ident $doc:tt [] ($record:ident, $dto:ident, $input:ident, $path:literal, $tag:literal, $plural:literal, $singular:literal, $a:literal)) => {
        $crate::handlers::record_handlers!(@item $doc [] [concat!("Archive ", $a, ", or erase it with `permanent=true` (admins).")]
            [delete, path = concat!("/api/v1", $path, "/{id}"), tag = $tag, operation_id = stringify!($name),
             params(("id" = String, Path), ("permanent" = Option<bool>, Query), ("If-Match" = Option<String>, Header)),
             responses((status = 204, description = "Archived or erased"), $crate::error::WriteErrors)]
            $name(state, p, id: ::actix_web::web::Path<String>, if_match: $crate::extract::IfMatch, q: $crate::extract::QueryPairs) -> ::actix_web::HttpResponse
                = $crate::records::delete::<$record>(state, p, id.into_inner(), if_match, q));
    };
    (@op restore $name:ident $doc:tt [] ($record:ident, $dto:ident, $input:ident, $path:literal, $tag:literal, $plural:literal, $singular:literal, $a:literal)) => {
        $crate::handlers::record_handlers!(@item $doc [] [concat!("Restore an archived ", $singular, ".")]
            [post, path = concat!("/api/v1", $path, "/{id}/restore"), tag = $tag, operation_id = stringify!($name), params(("id" = String, Path)),
             responses((status = 200, description = concat!("The restored ", $singular), body = $dto), $crate::error::WriteErrors)]
            $name(state, p, id: ::actix_web::web::Path<String>) -> ::actix_web::HttpResponse
                = $crate::records::restore::<$record>(state, p, id.into_inner()));
    };

    // Registration, as `#[get("…")]` and friends do it: a resource named after the handler,
    // guarded by its method.
    (@route $cfg:ident list $name:ident $path:literal) => { $crate::handlers::record_handlers!(@resource $cfg Get $name $path); };
    (@route $cfg:ident batch $name:ident $path:literal) => { $crate::handlers::record_handlers!(@resource $cfg Post $name $path "/batch"); };
    (@route $cfg:ident search $name:ident $path:literal) => { $crate::handlers::record_handlers!(@resource $cfg Post $name $path "/search"); };
    (@route $cfg:ident create $name:ident $path:literal) => { $crate::handlers::record_handlers!(@resource $cfg Post $name $path); };
    (@route $cfg:ident get $name:ident $path:literal) => { $crate::handlers::record_handlers!(@resource $cfg Get $name $path "/{id}"); };
    (@route $cfg:ident update $name:ident $path:literal) => { $crate::handlers::record_handlers!(@resource $cfg Patch $name $path "/{id}"); };
    (@route $cfg:ident delete $name:ident $path:literal) => { $crate::handlers::record_handlers!(@resource $cfg Delete $name $path "/{id}"); };
    (@route $cfg:ident merge $name:ident $path:literal) => { $crate::handlers::record_handlers!(@resource $cfg Post $name $path "/{id}/merge"); };
    (@route $cfg:ident duplicates $name:ident $path:literal) => { $crate::handlers::record_handlers!(@resource $cfg Get $name $path "/duplicates"); };
    (@route $cfg:ident restore $name:ident $path:literal) => { $crate::handlers::record_handlers!(@resource $cfg Post $name $path "/{id}/restore"); };
    (@resource $cfg:ident $method:ident $name:ident $($pattern:literal)+) => {
        $cfg.service(
            ::actix_web::Resource::new(concat!($($pattern),+))
                .name(stringify!($name))
                .guard(::actix_web::guard::$method())
                .to($name),
        );
    };
}
pub(crate) use record_handlers;
