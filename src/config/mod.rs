//! Everything about `montage.toml`: finding it, loading it into a validated
//! model, variables and templates.

pub mod cache;
pub mod diagnostic;
pub mod discover;
pub mod load;
pub mod model;
pub mod template;
pub mod vars;

pub use diagnostic::ConfigError;
pub use model::*;
