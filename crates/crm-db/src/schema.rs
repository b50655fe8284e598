// The shared schema of both databases. UUIDs, JSON and enumerations are Text; times are
// UTC `Timestamp`s at microsecond precision (ARCHITECTURE.md, "Two databases").

diesel::table! {
    workspaces (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    users (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        active -> Bool,
        last_login_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
        failed_sign_ins -> Integer,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    teams (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    team_members (workspace_id, team_id, user_id) {
        workspace_id -> Text,
        team_id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    refresh_tokens (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        user_id -> Text,
        family_id -> Text,
        token_hash -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        name -> Text,
        scopes -> Text,
        secret_hash -> Text,
        last_four -> Text,
        created_by -> Text,
        last_used_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        rate_limit -> Nullable<Integer>,
        bulk_rate_limit -> Nullable<Integer>,
    }
}

diesel::table! {
    companies (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        name -> Text,
        domain -> Nullable<Text>,
        industry -> Nullable<Text>,
        size -> Nullable<Text>,
        annual_revenue -> Nullable<Text>,
        currency -> Nullable<Text>,
        tier -> Nullable<Text>,
        region -> Nullable<Text>,
        address_line1 -> Nullable<Text>,
        address_line2 -> Nullable<Text>,
        address_city -> Nullable<Text>,
        address_region -> Nullable<Text>,
        address_postal_code -> Nullable<Text>,
        address_country -> Nullable<Text>,
        owner_id -> Nullable<Text>,
        tags -> Text,
        external_id -> Nullable<Text>,
        custom -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    contacts (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        email -> Nullable<Text>,
        additional_emails -> Text,
        phone -> Nullable<Text>,
        additional_phones -> Text,
        job_title -> Nullable<Text>,
        lifecycle_stage -> Text,
        lifecycle_stage_changed_at -> Timestamp,
        owner_id -> Nullable<Text>,
        source -> Nullable<Text>,
        tags -> Text,
        address_line1 -> Nullable<Text>,
        address_line2 -> Nullable<Text>,
        address_city -> Nullable<Text>,
        address_region -> Nullable<Text>,
        address_postal_code -> Nullable<Text>,
        address_country -> Nullable<Text>,
        preferred_channel -> Nullable<Text>,
        consent_email -> Bool,
        consent_sms -> Bool,
        consent_phone -> Bool,
        do_not_contact -> Bool,
        external_id -> Nullable<Text>,
        custom -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    contact_companies (workspace_id, contact_id, company_id) {
        workspace_id -> Text,
        contact_id -> Text,
        company_id -> Text,
        role -> Nullable<Text>,
        is_primary -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    contact_lifecycle_changes (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        contact_id -> Text,
        from_stage -> Nullable<Text>,
        to_stage -> Text,
        changed_at -> Timestamp,
        changed_by -> Nullable<Text>,
    }
}

diesel::table! {
    custom_field_definitions (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        object_type -> Text,
        name -> Text,
        label -> Text,
        field_type -> Text,
        options -> Text,
        required -> Bool,
        description -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    idempotency_keys (workspace_id, caller, idempotency_key) {
        workspace_id -> Text,
        caller -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        response_status -> Nullable<Integer>,
        response_headers -> Nullable<Text>,
        response_body -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    event_sequences (workspace_id) {
        workspace_id -> Text,
        last_seq -> BigInt,
    }
}

diesel::table! {
    events (workspace_id, seq) {
        workspace_id -> Text,
        seq -> BigInt,
        id -> Text,
        event_type -> Text,
        record_type -> Text,
        record_id -> Text,
        actor_type -> Text,
        actor_id -> Text,
        data -> Text,
        changes -> Text,
        occurred_at -> Timestamp,
    }
}

diesel::table! {
    webhooks (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        url -> Text,
        description -> Nullable<Text>,
        event_types -> Text,
        filter -> Nullable<Text>,
        secret -> Text,
        active -> Bool,
        cursor_seq -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_deliveries (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        webhook_id -> Text,
        event_id -> Text,
        event_seq -> BigInt,
        record_id -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        locked_until -> Nullable<Timestamp>,
        last_status_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_attempts (workspace_id, delivery_id, attempt) {
        workspace_id -> Text,
        delivery_id -> Text,
        attempt -> Integer,
        attempted_at -> Timestamp,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        duration_ms -> Integer,
    }
}

diesel::table! {
    leads (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        company_name -> Nullable<Text>,
        title -> Nullable<Text>,
        source -> Nullable<Text>,
        campaign_id -> Nullable<Text>,
        status -> Text,
        disqualified_reason -> Nullable<Text>,
        score -> Nullable<Integer>,
        owner_id -> Nullable<Text>,
        tags -> Text,
        external_id -> Nullable<Text>,
        custom -> Text,
        converted_at -> Nullable<Timestamp>,
        converted_contact_id -> Nullable<Text>,
        converted_company_id -> Nullable<Text>,
        converted_deal_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    assignment_rules (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        name -> Text,
        object -> Text,
        position -> Integer,
        active -> Bool,
        filter -> Nullable<Text>,
        strategy -> Text,
        user_id -> Nullable<Text>,
        user_ids -> Text,
        team_id -> Nullable<Text>,
        assigned_count -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    pipelines (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        name -> Text,
        is_default -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    pipeline_stages (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        pipeline_id -> Text,
        name -> Text,
        position -> Integer,
        probability -> Integer,
        kind -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    deals (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        name -> Text,
        amount -> Nullable<Text>,
        amount_micros -> Nullable<BigInt>,
        currency -> Nullable<Text>,
        pipeline_id -> Text,
        stage_id -> Text,
        stage_changed_at -> Timestamp,
        expected_close_date -> Nullable<Text>,
        owner_id -> Nullable<Text>,
        company_id -> Nullable<Text>,
        lost_reason -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
        external_id -> Nullable<Text>,
        custom -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    deal_stage_changes (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        deal_id -> Text,
        from_stage_id -> Nullable<Text>,
        to_stage_id -> Text,
        changed_at -> Timestamp,
        changed_by -> Nullable<Text>,
        time_in_stage_seconds -> Nullable<BigInt>,
    }
}

diesel::table! {
    deal_contacts (workspace_id, deal_id, contact_id) {
        workspace_id -> Text,
        deal_id -> Text,
        contact_id -> Text,
        role -> Nullable<Text>,
        is_primary -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    activities (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        activity_type -> Text,
        subject -> Text,
        body -> Nullable<Text>,
        due_at -> Nullable<Timestamp>,
        start_at -> Nullable<Timestamp>,
        end_at -> Nullable<Timestamp>,
        all_day -> Bool,
        status -> Text,
        completed_at -> Nullable<Timestamp>,
        priority -> Text,
        assignee_id -> Nullable<Text>,
        owner_id -> Nullable<Text>,
        outcome -> Nullable<Text>,
        channel -> Nullable<Text>,
        occurred_at -> Timestamp,
        links -> Text,
        external_id -> Nullable<Text>,
        custom -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    activity_links (workspace_id, activity_id, record_type, record_id) {
        workspace_id -> Text,
        activity_id -> Text,
        record_type -> Text,
        record_id -> Text,
        occurred_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    products (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        sku -> Text,
        name -> Text,
        description -> Nullable<Text>,
        unit_price -> Text,
        currency -> Text,
        tax_rate -> Text,
        active -> Bool,
        custom -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    price_books (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        name -> Text,
        currency -> Text,
        active -> Bool,
        is_default -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    price_book_prices (workspace_id, price_book_id, product_id) {
        workspace_id -> Text,
        price_book_id -> Text,
        product_id -> Text,
        unit_price -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    quotes (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        number -> BigInt,
        deal_id -> Nullable<Text>,
        status -> Text,
        currency -> Text,
        price_book_id -> Nullable<Text>,
        valid_until -> Nullable<Text>,
        subtotal -> Text,
        discount_total -> Text,
        tax_total -> Text,
        total -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    quote_lines (workspace_id, quote_id, position) {
        workspace_id -> Text,
        quote_id -> Text,
        position -> Integer,
        product_id -> Nullable<Text>,
        description -> Nullable<Text>,
        quantity -> Text,
        unit_price -> Text,
        discount_percent -> Text,
        tax_rate -> Text,
        gross -> Text,
        discount -> Text,
        net -> Text,
        tax -> Text,
        total -> Text,
    }
}

diesel::table! {
    lead_status_changes (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        lead_id -> Text,
        from_status -> Nullable<Text>,
        to_status -> Text,
        changed_at -> Timestamp,
        changed_by -> Nullable<Text>,
    }
}

diesel::table! {
    quotas (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        user_id -> Nullable<Text>,
        team_id -> Nullable<Text>,
        period -> Text,
        period_start -> Text,
        amount -> Text,
        currency -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        archived_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    imports (workspace_id, id) {
        workspace_id -> Text,
        id -> Text,
        object -> Text,
        format -> Text,
        mode -> Text,
        match_on -> Nullable<Text>,
        dry_run -> Bool,
        mapping -> Nullable<Text>,
        column_targets -> Nullable<Text>,
        status -> Text,
        bytes_total -> BigInt,
        rows_total -> BigInt,
        rows_processed -> BigInt,
        created -> BigInt,
        updated -> BigInt,
        failed -> BigInt,
        next_offset -> BigInt,
        next_line -> BigInt,
        error -> Nullable<Text>,
        actor_kind -> Text,
        actor_id -> Text,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        attempts -> Integer,
    }
}

diesel::table! {
    import_chunks (workspace_id, import_id, seq) {
        workspace_id -> Text,
        import_id -> Text,
        seq -> Integer,
        start_offset -> BigInt,
        data -> Binary,
    }
}

diesel::table! {
    import_errors (workspace_id, import_id, line) {
        workspace_id -> Text,
        import_id -> Text,
        line -> BigInt,
        problem -> Text,
    }
}

diesel::table! {
    record_merge_keys (workspace_id, object_type, match_column, value) {
        workspace_id -> Text,
        object_type -> Text,
        match_column -> Text,
        value -> Text,
        survivor_id -> Text,
    }
}

diesel::table! {
    record_merges (workspace_id, object_type, merged_id) {
        workspace_id -> Text,
        object_type -> Text,
        merged_id -> Text,
        survivor_id -> Text,
        merged_at -> Timestamp,
        merged_by -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    lead_status_changes,
    quotas,
    workspaces,
    users,
    teams,
    team_members,
    refresh_tokens,
    api_keys,
    companies,
    contacts,
    contact_companies,
    contact_lifecycle_changes,
    custom_field_definitions,
    idempotency_keys,
    event_sequences,
    events,
    webhooks,
    webhook_deliveries,
    webhook_attempts,
    leads,
    assignment_rules,
    pipelines,
    pipeline_stages,
    deals,
    deal_stage_changes,
    deal_contacts,
    activities,
    activity_links,
);
