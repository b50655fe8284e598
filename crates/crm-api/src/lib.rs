//! The CRM's HTTP API: routes, extractors, errors and the OpenAPI document.

pub mod auth;
pub mod batch;
pub(crate) mod cells;
pub mod dto;
pub mod duplicates;
pub mod error;
pub mod events;
pub mod exports;
pub mod extract;
pub mod handlers;
pub mod idempotency;
pub mod imports;
pub(crate) mod links;
pub mod listing;
pub mod merge;
pub mod observe;
pub mod openapi;
pub mod ratelimit;
pub mod records;
pub mod routes;
pub mod state;
pub mod webhooks;

use actix_web::{middleware, web, HttpRequest, HttpResponse};
pub use state::{ApiConfig, AppState};

/// Mounts the whole API on an actix `App`.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| error::ApiError::BadRequest(e.to_string()).into()),
            )
            .service(routes::health::healthz)
            .service(routes::health::readyz)
            .service(observe::metrics)
            .service(
                web::scope("/api/v1")
                    .wrap(middleware::from_fn(idempotency::idempotency))
                    .wrap(middleware::from_fn(auth::authenticate))
                    .wrap(middleware::from_fn(extract::refuse_nul_in_path))
                    .route("/openapi.json", web::get().to(openapi_json))
                    .configure(routes::access::configure)
                    .configure(routes::teams::configure)
                    .configure(routes::events::configure)
                    .configure(routes::webhooks::configure)
                    .configure(routes::fields::configure)
                    .configure(routes::contacts::configure)
                    .configure(routes::companies::configure)
                    .configure(routes::leads::configure)
                    .configure(routes::assignment_rules::configure)
                    .configure(routes::pipelines::configure)
                    .configure(routes::deals::configure)
                    .configure(routes::activities::configure)
                    .configure(routes::products::configure)
                    .configure(routes::price_books::configure)
                    .configure(routes::quotes::configure)
                    .configure(routes::quotas::configure)
                    .configure(routes::forecast::configure)
                    .configure(routes::exports::configure)
                    .configure(routes::imports::configure)
                    .default_service(web::to(not_found)),
            )
            .service(
                // The page loads the document from the API's own route; no worker keeps
                // a copy of it.
                utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                    .config(utoipa_swagger_ui::Config::from("/api/v1/openapi.json")),
            )
            .service(web::redirect("/docs", "/docs/"))
            .default_service(web::to(not_found));
    }
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(openapi::json())
}

/// No route matched: 405 with `Allow` when the path exists under other methods, else 404.
async fn not_found(req: HttpRequest) -> Result<HttpResponse, error::ApiError> {
    match openapi::allowed_methods(req.path()) {
        Some(allow) => Err(error::ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow,
        }),
        None => Err(error::ApiError::NotFound),
    }
}
