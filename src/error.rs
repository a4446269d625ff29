//! The top-level error: what went wrong and which exit status it means.

use crate::config::ConfigError;

#[derive(Debug)]
pub enum Error {
    /// Problems in montage.toml or with the command line: exit 2.
    Config(Vec<ConfigError>),
    /// A plain usage error with an optional hint: exit 2.
    Usage { message: String, help: Option<String> },
    /// Tasks ran and the run ended with this status.
    Exit(i32),
    /// mtr itself could not work (IO): exit 1.
    Internal(String),
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
            help: None,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage { .. } => 2,
            Error::Exit(code) => *code,
            Error::Internal(_) => 1,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::Config(vec![e])
    }
}
