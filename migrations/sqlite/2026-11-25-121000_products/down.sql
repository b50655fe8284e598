DROP TRIGGER products_fts_insert;
DROP TRIGGER products_fts_delete;
DROP TRIGGER products_fts_update;
DROP TABLE products_fts;
DROP TABLE price_book_prices;
DROP TABLE price_books;
DROP TABLE products;
