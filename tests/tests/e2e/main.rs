//! End-to-end tests: every test starts the real server on a fresh database and talks HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod activities;
mod auth;
mod batch;
mod conformance;
mod contacts;
mod deals;
mod events;
mod exports;
mod forecast;
mod imports;
mod leads;
mod lists;
mod merge;
mod platform;
mod products;
mod quotes;
mod ratelimit;
mod search;
mod teams;
mod webhooks;
