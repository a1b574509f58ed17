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
    /// The selftest could not run (a control that ran and failed is a row of its report
    /// instead): exit 3.
    #[error(transparent)]
    Selftest(#[from] SelftestError),
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
            Error::Environment(_) | Error::Io { .. } | Error::Selftest(_) => EXIT_ENVIRONMENT,
        }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

/// Why the selftest could not run (as opposed to a control that ran and failed, which is a
/// row of the report): each operation that can fail, with the class it was for.
#[derive(Debug, thiserror::Error)]
pub enum SelftestError {
    /// The handlers that write faults into signal frames could not be set up.
    #[error("cannot install the selftest's signal handlers")]
    Handlers(#[source] std::io::Error),
    /// The checking thread could not give itself fault forensics (an alternate signal stack).
    #[error("the {class} checking thread has no fault forensics (alternate signal stack)")]
    Forensics {
        class: crate::class::ClassId,
        #[source]
        source: std::io::Error,
    },
    /// The checking thread could not set up its windows.
    #[error("the {class} checking thread could not start")]
    Checker {
        class: crate::class::ClassId,
        #[source]
        source: std::io::Error,
    },
    /// The checking thread did not report in: the machine is too loaded, or the thread hangs.
    #[error("the {class} checking thread did not start within 5 s; is the machine overloaded?")]
    CheckerSilent { class: crate::class::ClassId },
    /// Sending the injecting signal failed.
    #[error("cannot send a fault into the {class} checking thread")]
    Inject {
        class: crate::class::ClassId,
        #[source]
        source: std::io::Error,
    },
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

    /// A selftest that cannot run is an environment problem that names its operation, its
    /// class and the OS error, once each.
    #[test]
    fn a_selftest_error_names_its_operation_and_class() {
        let e: Error = SelftestError::Inject { class: crate::class::ClassId::Sse, source: std::io::Error::from_raw_os_error(libc::ESRCH) }.into();
        assert_eq!(e.exit_code(), EXIT_ENVIRONMENT);
        let text = format!("{:#}", anyhow::Error::new(e));
        assert!(text.starts_with("cannot send a fault into the sse checking thread: "), "{text}");
        assert_eq!(text.matches("os error 3").count(), 1, "{text}");
    }
}
