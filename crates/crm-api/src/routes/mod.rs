pub mod access;
pub mod companies;
pub mod contacts;
pub mod fields;
pub mod health;
pub mod teams;
