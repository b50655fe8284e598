//! `/api/v1/products`: the product catalogue.

use crate::auth::Principal;
use crate::dto::products::{new_product, Product, ProductInput};
use crate::error::ApiResult;
use crate::handlers::record_handlers;
use crate::listing::Catalogue;
use crate::records::Record;
use actix_web::web;
use crm_db::models::ProductRow;
use crm_db::repo::catalogue as repo;
use crm_db::{DbConnection, RepoError};
use crm_domain::{Permission, WorkspaceId};
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub struct Products;

pub fn catalogue() -> &'static Catalogue {
    static RES: OnceLock<crm_db::query::Resource> = OnceLock::new();
    static CAT: OnceLock<Catalogue> = OnceLock::new();
    CAT.get_or_init(|| Catalogue {
        object: "products",
        resource: RES.get_or_init(repo::product_resource),
        relations: &[],
    })
}

impl Record for Products {
    const OBJECT: &'static str = "products";
    const EVENT: &'static str = "product";
    const MATCH_ON: &'static [&'static str] = &["sku"];
    const TABLE: &'static str = "products";
    const READ: Permission = Permission::ProductsRead;
    const WRITE: Permission = Permission::ProductsWrite;
    type Row = ProductRow;
    type Input = ProductInput;
    type Dto = Product;

    fn catalogue() -> &'static Catalogue {
        catalogue()
    }
    fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> Result<ProductRow, RepoError> {
        repo::get_product(conn, ws, id)
    }
    fn get_locked(
        conn: &mut DbConnection,
        ws: WorkspaceId,
        id: &str,
    ) -> Result<ProductRow, RepoError> {
        repo::get_product_locked(conn, ws, id)
    }
    fn version(row: &ProductRow) -> i32 {
        row.version
    }
    fn is_archived(row: &ProductRow) -> bool {
        row.archived_at.is_some()
    }
    fn owner(_: &ProductInput) -> Option<&str> {
        None
    }
    fn custom(input: &mut ProductInput) -> Map<String, Value> {
        std::mem::take(&mut input.custom)
    }
    fn insert(
        conn: &mut DbConnection,
        p: &Principal,
        input: ProductInput,
        custom: Map<String, Value>,
    ) -> ApiResult<ProductRow> {
        let row = new_product(&p.workspace.as_string(), input.into_changes(custom)?);
        Ok(repo::insert_product(conn, p.workspace, &row)?)
    }
    fn update(
        conn: &mut DbConnection,
        p: &Principal,
        current: &ProductRow,
        input: ProductInput,
        custom: Map<String, Value>,
    ) -> ApiResult<ProductRow> {
        let changes = input.into_changes(custom)?;
        Ok(repo::update_product(conn, p.workspace, current, &changes)?)
    }
}

record_handlers! {
    Products { dto: Product, input: ProductInput, path: "/products", tag: "products",
               plural: "products", singular: "product", a: "a product" }
    /// List products.
    ///
    /// Filters come as query parameters: `active=true`, `currency=EUR`,
    /// `unit_price[lte]=100`, `sku[starts_with]=SUP-`; `q` matches sku and name.
    list list_products;
    /// Create, update, upsert (`match_on: "sku"`) and archive up to 1000 products in one request.
    batch batch_products; search search_products;
    /// Create a product. A `sku` already used in the workspace is a 409 naming the product
    /// that holds it (`existing_id`).
    create create_product; get get_product; update update_product;
    /// Archive a product, or erase it with `permanent=true` (admins; its prices go with it).
    delete delete_product; restore restore_product;
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(record_routes);
}
