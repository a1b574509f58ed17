//! The library's error type and the exit codes: each variant maps to one of them.

/// Exit codes, as documented in the README.
pub const EXIT_CLEAN: i32 = 0;
pub const EXIT_CORRUPTION: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_ENVIRONMENT: i32 = 3;
/// With `--ktap`, nothing testable here: kselftest's KSFT_SKIP.
pub const EXIT_KSFT_SKIP: i32 = 4;
/// `regtorture vm --bisect`: this kernel cannot be tested (git bisect's "skip").
pub const EXIT_BISECT_SKIP: i32 = 125;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something that cannot be: exit 2.
    #[error("{0}")]
    Usage(String),
    /// This machine cannot run what was asked (missing facility, nothing testable): exit 3.
    #[error("{0}")]
    Environment(String),
    /// A setup the C reproducer generator cannot express (`regtorture export-c`, `triage
    /// --emit-c`): exit 2. Says what it can express.
    #[error("the C reproducer cannot express {what}; it can express {supported}")]
    CannotExpress { what: String, supported: String },
    /// An operating-system call failed: exit 3. The source is printed by the chain (`{:#}`),
    /// once.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::CannotExpress { .. } => EXIT_USAGE,
            Error::Environment(_) | Error::Io { .. } => EXIT_ENVIRONMENT,
        }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_prints_its_source_once() {
        let e = Error::io("cannot write the report")(std::io::Error::from_raw_os_error(libc::ENOENT));
        let text = format!("{:#}", anyhow::Error::new(e));
        assert_eq!(text.matches("os error 2").count(), 1, "{text}");
        assert!(text.starts_with("cannot write the report: "), "{text}");
    }
}
