pub mod access;
pub mod companies;
pub mod contacts;
pub mod events;
pub mod fields;
pub mod health;
pub mod teams;
pub mod webhooks;
