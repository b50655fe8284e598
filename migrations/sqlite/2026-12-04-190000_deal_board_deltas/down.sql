DROP TRIGGER deals_board_update;
DROP TRIGGER deals_board_delete;
DROP TRIGGER deals_board_insert;
DROP TABLE deal_board_deltas;
