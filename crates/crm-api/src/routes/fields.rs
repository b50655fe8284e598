//! `/api/v1/fields/{object}`: custom field definitions. Every write records its event
//! (`custom_field.created`, `custom_field.updated`, `custom_field.deleted`).

use crate::auth::{Auth, Principal};
use crate::batch::read_as;
use crate::dto::common::{utc, validate_input};
use crate::error::{ApiError, ApiResult, ReadErrors, WriteErrors};
use crate::events::record_shown;
use crate::extract::{parse_json, IfMatch, RawJson};
use crate::state::AppState;
use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use crm_db::models::CustomFieldRow;
use crm_db::repo::fields as repo;
use crm_db::DbConnection;
use crm_domain::custom_field::{
    valid_name, CustomFieldType, CustomObject, MAX_FIELDS_PER_OBJECT, MAX_OPTIONS,
};
use crm_domain::{new_id, FieldError, Permission};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use validator::Validate;

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "segment", "label": "Segment", "type": "select", "options": ["smb", "mid", "enterprise"]}))]
pub struct CreateField {
    /// The key under `custom` and in filters (`custom.<name>`): lower-case letters, digits, `_`.
    #[schema(max_length = 63)]
    pub name: String,
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: CustomFieldType,
    /// The choices of `select` and `multi_select` fields.
    #[serde(default)]
    #[schema(value_type = Vec<crate::dto::common::items::OptionLabel>)]
    pub options: Vec<String>,
    /// Records must carry a value (applies to records written from now on).
    #[serde(default)]
    pub required: bool,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// Changes to a custom field (merge-patch). `name` and `type` cannot change: define a new
/// field instead. Removing an option leaves stored values alone until a record is next
/// written, when its value must then be one of the current options.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"label": "Market segment", "options": ["smb", "mid", "enterprise", "public"]}))]
pub struct UpdateField {
    #[validate(length(min = 1, max = 100))]
    #[schema(max_length = 100, min_length = 1)]
    pub label: Option<String>,
    /// Replaces the choices of a `select` or `multi_select` field.
    #[schema(value_type = Option<Vec<crate::dto::common::items::OptionLabel>>)]
    pub options: Option<Vec<String>>,
    pub required: Option<bool>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::dto::common::double_option")]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub description: Option<Option<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomField {
    pub id: String,
    pub object: CustomObject,
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: CustomFieldType,
    pub options: Vec<String>,
    pub required: bool,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl From<CustomFieldRow> for CustomField {
    fn from(r: CustomFieldRow) -> Self {
        CustomField {
            object: CustomObject::parse(&r.object_type).unwrap_or(CustomObject::Contacts),
            field_type: CustomFieldType::parse(&r.field_type).unwrap_or(CustomFieldType::Text),
            options: serde_json::from_str(&r.options).unwrap_or_default(),
            id: r.id,
            name: r.name,
            label: r.label,
            required: r.required,
            description: r.description,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            version: r.version,
        }
    }
}

/// The type of a definition's events.
const EVENT: &str = "custom_field";

fn object(raw: &str) -> ApiResult<CustomObject> {
    CustomObject::parse(raw).ok_or(ApiError::NotFound)
}

/// A page of custom field definitions.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomFieldPage {
    pub data: Vec<CustomField>,
    /// The `cursor` of the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The custom fields of an object, oldest first.
#[utoipa::path(get, path = "/api/v1/fields/{object}", tag = "fields", operation_id = "list_fields",
    params(("object" = CustomObject, Path), ("limit" = Option<i64>, Query, description = "1 to 500, default 50"), ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, description = "Definitions, oldest first", body = CustomFieldPage), ReadErrors), security(("bearer" = [])))]
#[get("/fields/{object}")]
pub async fn list_fields(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<String>,
    q: crate::extract::QueryPairs,
) -> ApiResult<web::Json<CustomFieldPage>> {
    p.require(Permission::FieldsRead)?;
    let obj = object(&path)?;
    let (limit, cursor) = crate::extract::id_page_params(&q)?;
    let rows = state
        .db(move |c| {
            Ok(repo::page(
                c,
                p.workspace,
                obj.as_str(),
                cursor.as_deref(),
                limit + 1,
            )?)
        })
        .await?;
    let (rows, next_cursor) = crate::extract::id_page(rows, limit, |f| &f.id);
    Ok(web::Json(CustomFieldPage {
        data: rows.into_iter().map(CustomField::from).collect(),
        next_cursor,
    }))
}

/// Trims and de-duplicates the options of a field of `field_type`: choice fields need 1 to
/// [`MAX_OPTIONS`] options of 1 to 100 characters; other types take none.
fn clean_options(
    field_type: CustomFieldType,
    raw: &[String],
    errors: &mut Vec<FieldError>,
) -> Vec<String> {
    let mut options: Vec<String> = Vec::new();
    for (i, o) in raw.iter().enumerate() {
        let o = o.trim();
        if o.is_empty() || o.chars().count() > 100 {
            errors.push(FieldError::new(
                format!("options[{i}]"),
                "invalid_value",
                "each option must have 1 to 100 characters",
            ));
        } else if !options.iter().any(|x| x == o) {
            options.push(o.to_string());
        }
    }
    let is_choice = matches!(
        field_type,
        CustomFieldType::Select | CustomFieldType::MultiSelect
    );
    if is_choice && options.is_empty() {
        errors.push(FieldError::new(
            "options",
            "required",
            "select fields need at least one option",
        ));
    }
    if !is_choice && !raw.is_empty() {
        errors.push(FieldError::new(
            "options",
            "not_allowed",
            "only select and multi_select fields have options",
        ));
    }
    if options.len() > MAX_OPTIONS {
        errors.push(FieldError::new(
            "options",
            "too_many",
            format!("at most {MAX_OPTIONS} options"),
        ));
    }
    options
}

/// Define a custom field (admins).
#[utoipa::path(post, path = "/api/v1/fields/{object}", tag = "fields", operation_id = "create_field",
    params(("object" = CustomObject, Path)), request_body = CreateField,
    responses((status = 201, description = "Created", body = CustomField, headers(("ETag" = String), ("Location" = String))), WriteErrors), security(("bearer" = [])))]
#[post("/fields/{object}")]
pub async fn create_field(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<String>,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::FieldsWrite)?;
    let obj = object(&path)?;
    let input: CreateField = parse_json(&body.0)?;
    let row = state.tx(move |c| create_in(c, &p, obj, input)).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/v1/fields/{}/{}", row.object_type, row.name),
        ))
        .insert_header(crate::extract::etag(row.version))
        .json(CustomField::from(row)))
}

/// Get one custom field.
#[utoipa::path(get, path = "/api/v1/fields/{object}/{name}", tag = "fields", operation_id = "get_field",
    params(("object" = CustomObject, Path), ("name" = String, Path)),
    responses((status = 200, description = "The definition", body = CustomField, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
#[get("/fields/{object}/{name}")]
pub async fn get_field(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    p.require(Permission::FieldsRead)?;
    let (obj, name) = path.into_inner();
    let obj = object(&obj)?;
    let row = state
        .db(move |c| Ok(repo::get(c, p.workspace, obj.as_str(), &name)?))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(crate::extract::etag(row.version))
        .json(CustomField::from(row)))
}

/// Change a custom field's label, options, `required` flag or description (admins).
#[utoipa::path(patch, path = "/api/v1/fields/{object}/{name}", tag = "fields", operation_id = "update_field",
    params(("object" = CustomObject, Path), ("name" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 when the definition changed since")),
    request_body(content = UpdateField, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The definition", body = CustomField, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
#[patch("/fields/{object}/{name}")]
pub async fn update_field(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
    if_match: IfMatch,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    p.require(Permission::FieldsWrite)?;
    let (obj, name) = path.into_inner();
    let obj = object(&obj)?;
    let input: UpdateField = parse_json(&body.0)?;
    let row = state
        .tx(move |c| {
            let cur = repo::get(c, p.workspace, obj.as_str(), &name)?;
            update_in(c, &p, cur, if_match.0, input)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(crate::extract::etag(row.version))
        .json(CustomField::from(row)))
}

/// Delete a custom field definition (admins). Stored values stay in records' `custom`
/// until they are next written, and a field of the same name can be defined again.
#[utoipa::path(delete, path = "/api/v1/fields/{object}/{name}", tag = "fields", operation_id = "delete_field",
    params(("object" = CustomObject, Path), ("name" = String, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read; 412 when the definition changed since")),
    responses((status = 204, description = "Deleted"), WriteErrors), security(("bearer" = [])))]
#[delete("/fields/{object}/{name}")]
pub async fn delete_field(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<(String, String)>,
    if_match: IfMatch,
) -> ApiResult<HttpResponse> {
    p.require(Permission::FieldsWrite)?;
    let (obj, name) = path.into_inner();
    let obj = object(&obj)?;
    state
        .tx(move |c| {
            let cur = repo::get(c, p.workspace, obj.as_str(), &name)?;
            crm_db::repo::records::check_version(cur.version, if_match.0)?;
            delete_in(c, &p, cur)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Defines a custom field in the caller's transaction.
fn create_in(
    c: &mut DbConnection,
    p: &Principal,
    obj: CustomObject,
    input: CreateField,
) -> ApiResult<CustomFieldRow> {
    let mut errors = validate_input(&input);
    if !valid_name(&input.name) {
        errors.push(FieldError::new(
            "name",
            "invalid_value",
            "must start with a lower-case letter and hold only a-z, 0-9 and _ (at most 63)",
        ));
    }
    let options = clean_options(input.field_type, &input.options, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if repo::list(c, p.workspace, obj.as_str())?.len() >= MAX_FIELDS_PER_OBJECT {
        return Err(ApiError::field(
            "name",
            "too_many",
            format!("an object has at most {MAX_FIELDS_PER_OBJECT} custom fields"),
        ));
    }
    let t = crm_domain::values_time::now();
    let row = CustomFieldRow {
        workspace_id: p.workspace.as_string(),
        id: new_id().to_string(),
        object_type: obj.as_str().to_string(),
        name: input.name,
        label: input.label.trim().to_string(),
        field_type: input.field_type.as_str().to_string(),
        options: serde_json::to_string(&options).map_err(ApiError::internal)?,
        required: input.required,
        description: input.description,
        created_at: t,
        updated_at: t,
        version: 1,
    };
    let row = repo::insert(c, &row)?;
    let shown = CustomField::from(row.clone());
    record_shown(c, p, EVENT, "created", &row.id, None, Some(&shown))?;
    Ok(row)
}

/// The definition as a change would leave it, checked.
fn changed(cur: &CustomFieldRow, input: UpdateField) -> ApiResult<CustomFieldRow> {
    let mut errors = validate_input(&input);
    if let Some(Some(d)) = &input.description {
        if d.chars().count() > 500 {
            errors.push(FieldError::new(
                "description",
                "too_long",
                "at most 500 characters",
            ));
        }
    }
    let options = match &input.options {
        Some(o) => {
            let ty = CustomFieldType::parse(&cur.field_type)
                .ok_or_else(|| ApiError::internal("stored field type is unknown"))?;
            serde_json::to_string(&clean_options(ty, o, &mut errors)).map_err(ApiError::internal)?
        }
        None => cur.options.clone(),
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(CustomFieldRow {
        label: input
            .label
            .map(|l| l.trim().to_string())
            .unwrap_or(cur.label.clone()),
        options,
        required: input.required.unwrap_or(cur.required),
        description: input.description.unwrap_or(cur.description.clone()),
        updated_at: crm_domain::values_time::now(),
        version: cur.version + 1,
        ..cur.clone()
    })
}

/// Writes a definition's change in the caller's transaction.
fn write_change(
    c: &mut DbConnection,
    p: &Principal,
    cur: CustomFieldRow,
    next: CustomFieldRow,
) -> ApiResult<CustomFieldRow> {
    let row = repo::update(c, p.workspace, &next)?;
    let (before, after) = (CustomField::from(cur), CustomField::from(row.clone()));
    record_shown(c, p, EVENT, "updated", &row.id, Some(&before), Some(&after))?;
    Ok(row)
}

/// Applies a change to the definition `cur` in the caller's transaction.
fn update_in(
    c: &mut DbConnection,
    p: &Principal,
    cur: CustomFieldRow,
    if_match: Option<i32>,
    input: UpdateField,
) -> ApiResult<CustomFieldRow> {
    crm_db::repo::records::check_version(cur.version, if_match)?;
    let next = changed(&cur, input)?;
    write_change(c, p, cur, next)
}

/// Deletes the definition `cur` in the caller's transaction.
fn delete_in(c: &mut DbConnection, p: &Principal, cur: CustomFieldRow) -> ApiResult<()> {
    repo::delete(c, p.workspace, &cur.object_type, &cur.name)?;
    let shown = CustomField::from(cur);
    record_shown(c, p, EVENT, "deleted", &shown.id, Some(&shown), None)
}

/// The object's definition with this id.
fn by_id(
    c: &mut DbConnection,
    p: &Principal,
    obj: CustomObject,
    id: &str,
) -> ApiResult<CustomFieldRow> {
    repo::list(c, p.workspace, obj.as_str())?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(ApiError::NotFound)
}

/// Custom-field definitions of one object in a batch: each operation as its own endpoint
/// runs it, `update` and `delete` naming the definition by `id`; an `upsert` matches on
/// `name`.
pub struct FieldItems;

impl crate::batch::ItemWrites for FieldItems {
    const WRITE: Permission = Permission::FieldsWrite;
    const PLURAL: &'static str = "custom fields";
    type Scope = CustomObject;
    type Ready = ();

    fn create(
        c: &mut DbConnection,
        p: &Principal,
        obj: &CustomObject,
        data: &Value,
        _: (),
    ) -> ApiResult<Value> {
        shown(create_in(c, p, *obj, read_as(data)?)?)
    }

    fn update(
        c: &mut DbConnection,
        p: &Principal,
        obj: &CustomObject,
        id: &str,
        patch: &Value,
        _: (),
    ) -> ApiResult<Value> {
        let cur = by_id(c, p, *obj, id)?;
        shown(update_in(c, p, cur, None, read_as(patch)?)?)
    }

    fn delete(c: &mut DbConnection, p: &Principal, obj: &CustomObject, id: &str) -> ApiResult<()> {
        let cur = by_id(c, p, *obj, id)?;
        delete_in(c, p, cur)
    }

    /// The definition as the upsert describes it: its `type` must be the one it has (a
    /// field's type never changes); its label, options, `required` and description are
    /// brought in line, and nothing is written when they already are.
    fn upsert_found(
        c: &mut DbConnection,
        p: &Principal,
        obj: &CustomObject,
        id: &str,
        data: &Value,
        _: (),
    ) -> ApiResult<Value> {
        let cur = by_id(c, p, *obj, id)?;
        let wanted: CreateField = read_as(data)?;
        if wanted.field_type.as_str() != cur.field_type {
            return Err(ApiError::field(
                "type",
                "immutable",
                format!(
                    "the field `{}` is of type {}: a field's type cannot change",
                    cur.name, cur.field_type
                ),
            ));
        }
        let next = changed(
            &cur,
            UpdateField {
                label: Some(wanted.label),
                options: Some(wanted.options),
                required: Some(wanted.required),
                description: Some(wanted.description),
            },
        )?;
        let same = next.label == cur.label
            && next.options == cur.options
            && next.required == cur.required
            && next.description == cur.description;
        if same {
            return shown(cur);
        }
        shown(write_change(c, p, cur, next)?)
    }

    fn matching(
        c: &mut DbConnection,
        p: &Principal,
        obj: &CustomObject,
        match_on: Option<&str>,
        data: &Value,
    ) -> ApiResult<Option<String>> {
        let name = crate::batch::only_key(match_on, data, "name", Self::PLURAL)?;
        match repo::get(c, p.workspace, obj.as_str(), name) {
            Ok(row) => Ok(Some(row.id)),
            Err(crm_db::RepoError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn shown(row: CustomFieldRow) -> ApiResult<Value> {
    serde_json::to_value(CustomField::from(row)).map_err(ApiError::internal)
}

/// Define, change, upsert (on `name`) and delete up to 1000 custom fields of an object in
/// one request (admins).
#[utoipa::path(post, path = "/api/v1/fields/{object}/batch", tag = "fields", operation_id = "batch_fields",
    description = FIELD_BATCH_DESCRIPTION, params(("object" = CustomObject, Path)),
    request_body = crate::batch::BatchRequest,
    responses((status = 200, description = "One result per operation, in input order", body = crate::batch::BatchResponse), WriteErrors), security(("bearer" = [])))]
#[post("/fields/{object}/batch")]
pub async fn batch_fields(
    state: web::Data<AppState>,
    Auth(p): Auth,
    path: web::Path<String>,
    body: RawJson,
) -> ApiResult<HttpResponse> {
    let obj = object(&path)?;
    crate::batch::batch_items_in::<FieldItems>(state, p, obj, body).await
}

/// The description of `POST /fields/{object}/batch` below its summary.
const FIELD_BATCH_DESCRIPTION: &str =
    "Each operation runs as its own endpoint would run it (`create` as `POST`, `update` as a\n\
`PATCH` merge patch without `If-Match`, `delete` as `DELETE`), `update` and `delete` naming\n\
the definition by its `id`; each result sits at its operation's index. An `upsert` finds\n\
the definition by `name` (`match_on` may only be `name`) and brings its label, options,\n\
`required` and description in line with `data` (200; its `type` must be the one it has),\n\
or defines it (201). An upsert that would change nothing writes nothing (the same\n\
`version`, no event), so an integration can send its whole set of fields every time it\n\
starts. Without `atomic`, a failed operation changes nothing and the others stand; with\n\
`atomic: true`, the first failure rolls back all of them (the others then answer 424).";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_fields)
        .service(batch_fields)
        .service(create_field)
        .service(get_field)
        .service(update_field)
        .service(delete_field);
}
