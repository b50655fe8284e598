//! Wire types: what requests carry and responses show.

pub mod common;
pub mod companies;
pub mod contacts;
pub mod products;
pub mod quotes;
