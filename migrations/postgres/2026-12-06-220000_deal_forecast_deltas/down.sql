DROP TRIGGER deals_forecast_update ON deals;
DROP TRIGGER deals_forecast_delete ON deals;
DROP TRIGGER deals_forecast_insert ON deals;
DROP FUNCTION deal_forecast_delta();
DROP TABLE deal_forecast_deltas;
