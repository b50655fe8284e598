DROP TRIGGER deals_board_update ON deals;
DROP TRIGGER deals_board_delete ON deals;
DROP TRIGGER deals_board_insert ON deals;
DROP FUNCTION deal_board_delta();
DROP TABLE deal_board_deltas;
