//! Pipelines and their ordered stages.

use crate::conn::DbConnection;
use crate::error::{RepoError, RepoResult};
use crate::models::{PipelineRow, StageRow};
use crate::schema::{deals, pipeline_stages as stages, pipelines};
use chrono::NaiveDateTime;
use crm_domain::deals::{DEFAULT_PIPELINE_NAME, DEFAULT_STAGES};
use crm_domain::{new_id, WorkspaceId};
use diesel::prelude::*;

/// A new stage row at `position` of `pipeline_id`.
pub fn new_stage(
    ws: &str,
    pipeline_id: &str,
    name: &str,
    position: i32,
    probability: i32,
    kind: &str,
    now: NaiveDateTime,
) -> StageRow {
    StageRow {
        workspace_id: ws.to_string(),
        id: new_id().to_string(),
        pipeline_id: pipeline_id.to_string(),
        name: name.to_string(),
        position,
        probability,
        kind: kind.to_string(),
        created_at: now,
        updated_at: now,
        archived_at: None,
    }
}

/// Creates the default sales pipeline of a new workspace (`ws` is its id).
pub fn create_default(conn: &mut DbConnection, ws: &str, now: NaiveDateTime) -> RepoResult<()> {
    let p = PipelineRow {
        workspace_id: ws.to_string(),
        id: new_id().to_string(),
        name: DEFAULT_PIPELINE_NAME.to_string(),
        is_default: true,
        created_at: now,
        updated_at: now,
        archived_at: None,
        version: 1,
    };
    diesel::insert_into(pipelines::table)
        .values(&p)
        .execute(conn)?;
    for (i, (name, probability, kind)) in DEFAULT_STAGES.iter().enumerate() {
        let s = new_stage(ws, &p.id, name, i as i32, *probability, kind.as_str(), now);
        diesel::insert_into(stages::table)
            .values(&s)
            .execute(conn)?;
    }
    Ok(())
}

pub fn insert(conn: &mut DbConnection, p: &PipelineRow, s: &[StageRow]) -> RepoResult<()> {
    diesel::insert_into(pipelines::table)
        .values(p)
        .execute(conn)?;
    for stage in s {
        insert_stage(conn, stage)?;
    }
    Ok(())
}

pub fn insert_stage(conn: &mut DbConnection, s: &StageRow) -> RepoResult<()> {
    diesel::insert_into(stages::table).values(s).execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<PipelineRow> {
    pipelines::table
        .filter(pipelines::workspace_id.eq(ws.as_string()))
        .filter(pipelines::id.eq(id))
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

pub fn get_default(conn: &mut DbConnection, ws: WorkspaceId) -> RepoResult<PipelineRow> {
    pipelines::table
        .filter(pipelines::workspace_id.eq(ws.as_string()))
        .filter(pipelines::is_default.eq(true))
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

/// A page of pipelines in id (creation) order after `after`; `limit + 1` rows at most.
pub fn list(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    archived: bool,
    after: Option<&str>,
    limit: i64,
) -> RepoResult<Vec<PipelineRow>> {
    let mut q = pipelines::table
        .filter(pipelines::workspace_id.eq(ws.as_string()))
        .into_boxed();
    q = if archived {
        q.filter(pipelines::archived_at.is_not_null())
    } else {
        q.filter(pipelines::archived_at.is_null())
    };
    page_after_id!(conn, q, pipelines, after, limit + 1)
}

/// The stages of the given pipelines, in pipeline then position order.
pub fn stages_of(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    pipeline_ids: &[String],
) -> RepoResult<Vec<StageRow>> {
    Ok(stages::table
        .filter(stages::workspace_id.eq(ws.as_string()))
        .filter(stages::pipeline_id.eq_any(pipeline_ids))
        .order((stages::pipeline_id.asc(), stages::position.asc()))
        .load(conn)?)
}

pub fn get_stage(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<StageRow> {
    stages::table
        .filter(stages::workspace_id.eq(ws.as_string()))
        .filter(stages::id.eq(id))
        .first(conn)
        .optional()?
        .ok_or(RepoError::NotFound)
}

/// Writes a pipeline's name, default flag and archive time, bumping its version if it is
/// still `current.version`. Making it the default takes the flag from the previous one.
pub fn update(
    conn: &mut DbConnection,
    ws: WorkspaceId,
    current: &PipelineRow,
    name: &str,
    is_default: bool,
    archived_at: Option<NaiveDateTime>,
) -> RepoResult<()> {
    let now = crm_domain::values_time::now();
    if is_default && !current.is_default {
        diesel::update(
            pipelines::table
                .filter(pipelines::workspace_id.eq(ws.as_string()))
                .filter(pipelines::is_default.eq(true)),
        )
        .set((
            pipelines::is_default.eq(false),
            pipelines::updated_at.eq(now),
            pipelines::version.eq(pipelines::version + 1),
        ))
        .execute(conn)?;
    }
    let n = diesel::update(
        pipelines::table
            .filter(pipelines::workspace_id.eq(ws.as_string()))
            .filter(pipelines::id.eq(&current.id))
            .filter(pipelines::version.eq(current.version)),
    )
    .set((
        pipelines::name.eq(name),
        pipelines::is_default.eq(is_default),
        pipelines::archived_at.eq(archived_at),
        pipelines::updated_at.eq(now),
        pipelines::version.eq(current.version + 1),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(RepoError::VersionMismatch {
            expected: current.version,
            current: current.version + 1,
        });
    }
    Ok(())
}

/// Writes a stage's name, probability, kind, position and archive time.
pub fn update_stage(conn: &mut DbConnection, ws: WorkspaceId, s: &StageRow) -> RepoResult<()> {
    diesel::update(
        stages::table
            .filter(stages::workspace_id.eq(ws.as_string()))
            .filter(stages::id.eq(&s.id)),
    )
    .set((
        stages::name.eq(&s.name),
        stages::probability.eq(s.probability),
        stages::kind.eq(&s.kind),
        stages::position.eq(s.position),
        stages::archived_at.eq(s.archived_at),
        stages::updated_at.eq(s.updated_at),
    ))
    .execute(conn)?;
    Ok(())
}

pub fn delete_stage(conn: &mut DbConnection, ws: WorkspaceId, id: &str) -> RepoResult<()> {
    diesel::delete(
        stages::table
            .filter(stages::workspace_id.eq(ws.as_string()))
            .filter(stages::id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}

/// How many deals, live or archived, sit in a stage.
pub fn deals_in_stage(conn: &mut DbConnection, ws: WorkspaceId, stage_id: &str) -> RepoResult<i64> {
    Ok(deals::table
        .filter(deals::workspace_id.eq(ws.as_string()))
        .filter(deals::stage_id.eq(stage_id))
        .count()
        .get_result(conn)?)
}
