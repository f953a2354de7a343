//! Integration tests: one binary, one module per area.

mod cache;
mod cli;
mod continuity;
mod coordinate;
mod corpus;
mod cost;
mod emulator_cli;
mod gateway;
mod marketplaces;
mod render;
mod review;
mod schema;
mod stores;
mod support;
mod upgrade;
