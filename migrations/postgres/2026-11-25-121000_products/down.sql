DROP TABLE price_book_prices;
DROP TABLE price_books;
DROP TABLE products;
