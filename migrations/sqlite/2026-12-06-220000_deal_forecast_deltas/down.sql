DROP TRIGGER deals_forecast_update;
DROP TRIGGER deals_forecast_delete;
DROP TRIGGER deals_forecast_insert;
DROP TABLE deal_forecast_deltas;
