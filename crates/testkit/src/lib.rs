//! What the tests of several fresco crates share, written once: clips made with ffmpeg's
//! generators and checks of what came out ([`media`]), child processes run with a timeout
//! ([`process`]), containers on Azurite ([`azurite`]), pseudo-random files ([`files`]), plain
//! HTTP calls ([`http`]), the folder of the real models ([`models`]) and SVG documents read back
//! ([`svg`]).
//!
//! A dev-dependency only (`publish = false`): nothing here is part of fresco. Helpers that need
//! one crate's test binary or types (`fresco_cmd`, a server's router) stay in that crate's
//! `tests/common`.

pub mod azurite;
pub mod files;
pub mod http;
pub mod media;
pub mod models;
pub mod process;
pub mod svg;
