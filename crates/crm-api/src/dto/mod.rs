//! Wire types: what requests carry and responses show.

pub mod activities;
pub mod common;
pub mod companies;
pub mod contacts;
pub mod deals;
pub mod leads;
pub mod products;
pub mod quotas;
pub mod quotes;
