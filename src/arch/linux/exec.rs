//! Processes regtorture starts: execve with planted registers (the execve check), children that
//! die with it.

use super::*;

/// Start `/proc/self/exe` with `args` in a child that first loads every class of `values` with
/// them (the backend's clobber routines) and then calls execve directly, so that the new image
/// starts where the registers held those values. With `gprs` (one word per register of
/// `Backend::execve_registers`) the call is the backend's assembly execve, which loads them
/// into every integer register but the call's own: no compiled code runs in between. Returns
/// the child's pid and the read end of a pipe that is its standard output. The caller reaps the child ([`reap`]).
///
/// With `plant` (register set, byte offset, value), the positive control of the execve check:
/// the child is traced (`PTRACE_TRACEME`), so the kernel stops the new image with SIGTRAP
/// before its first instruction; the 64-bit word at that offset of that register set
/// (`NT_PRFPREG`, `NT_PRSTATUS`) is made `value` (`PTRACE_SETREGSET`) and the child is let go
/// (`PTRACE_DETACH`): the entry stub must then see the value, as it would a leak. Must be
/// called from the thread that later reaps:
/// ptrace answers only the tracer, the thread that forked.
pub fn exec_with_registers(
    values: &[(ClassId, Vec<u64>)],
    gprs: Option<&[u64]>,
    args: &[&str],
    plant: Option<(u32, usize, u64)>,
) -> io::Result<(i32, std::fs::File)> {
    use std::ffi::CString;
    use std::os::fd::FromRawFd;
    let path = CString::new("/proc/self/exe").expect("no NUL");
    let argv: Vec<CString> = args.iter().map(|a| CString::new(*a).map_err(|_| io::Error::other("an argument holds NUL"))).collect::<io::Result<_>>()?;
    let mut argp: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    zero_ok(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    unsafe extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: fork; the child only calls dup2, the clobber routines and execve (async-signal-safe:
    // no allocation, no locks), and _exit if execve fails.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child. dup2 makes the pipe its stdout (without O_CLOEXEC). The clobber
        // routines load each enabled class from a buffer long enough (checked by `clobber`) and
        // change callee-saved vector state: nothing after them but the execve call uses it, and
        // execve replaces the whole image. `path`, `argp` and `environ` are valid C arrays.
        unsafe {
            libc::dup2(fds[1], 1);
            if plant.is_some() && libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                libc::_exit(126);
            }
            for (class, v) in values {
                crate::arch::native().clobber(*class, v);
            }
            if let Some(g) = gprs {
                crate::arch::native().execve_with_registers(g, path.as_ptr(), argp.as_ptr(), environ);
            }
            libc::syscall(libc::SYS_execve, path.as_ptr(), argp.as_ptr(), environ);
            libc::_exit(127);
        }
    }
    // SAFETY: the write end is the child's now; close ours. The read end is ours to own.
    unsafe { libc::close(fds[1]) };
    if pid < 0 {
        // SAFETY: fds[0] is open and ours.
        unsafe { libc::close(fds[0]) };
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fds[0] is an open descriptor nobody else owns.
    let out = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    if let Some((note, offset, value)) = plant {
        if let Err(e) = plant_at_exec_stop(pid, note, offset, value) {
            // SAFETY: kill only sends a signal to our own child; reap collects it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = reap(pid as i64, std::time::Duration::from_secs(5));
            return Err(e);
        }
    }
    Ok((pid, out))
}

/// Wait for traced child `pid` to stop at its execve, write `value` at byte `offset` of its
/// register set `note`, and detach (the SIGTRAP of the stop is not passed on).
fn plant_at_exec_stop(pid: i32, note: u32, offset: usize, value: u64) -> io::Result<()> {
    let mut status = 0;
    // SAFETY: waitpid writes only `status`; __WALL waits for a child whoever its exit signal.
    let r = loop {
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break r;
        }
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if libc::WIFEXITED(status) {
        return Err(io::Error::other(match libc::WEXITSTATUS(status) {
            126 => "PTRACE_TRACEME was refused (a seccomp filter or LSM that forbids ptrace?)".to_string(),
            127 => "execve of /proc/self/exe failed".to_string(),
            c => format!("the traced child exited with {c} before its exec stop"),
        }));
    }
    if !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGTRAP {
        return Err(io::Error::other(format!("the traced child did not stop at its execve (wait status {status:#x})")));
    }
    let mut image = [0u8; 4096];
    let mut iov = libc::iovec { iov_base: image.as_mut_ptr() as *mut libc::c_void, iov_len: image.len() };
    // SAFETY: `pid` is our stopped tracee; GETREGSET writes at most iov_len bytes into `image`
    // and sets iov_len to what it wrote.
    zero_ok(unsafe { libc::ptrace(libc::PTRACE_GETREGSET, pid, note as libc::c_long, &mut iov as *mut libc::iovec) })?;
    if offset + 8 > iov.iov_len {
        return Err(io::Error::other(format!("register set {note:#x} has {} bytes, no word at {offset}", iov.iov_len)));
    }
    image[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    // SAFETY: as above; SETREGSET reads iov_len bytes of `image`, the set as GETREGSET gave it.
    zero_ok(unsafe { libc::ptrace(libc::PTRACE_SETREGSET, pid, note as libc::c_long, &mut iov as *mut libc::iovec) })?;
    // SAFETY: detaching our stopped tracee; signal 0: the exec stop's SIGTRAP is dropped.
    if unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this process was started without a program interpreter (AT_BASE is zero): a static
/// binary, whose entry point is the first user instruction after execve.
pub fn started_static() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_BASE) == 0 }
}

/// Make `cmd`'s child die when this process does (PR_SET_PDEATHSIG SIGKILL), so that no process
/// regtorture starts outlives it.
pub fn die_with_parent(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and makes one
    // async-signal-safe system call.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Ask process `pid` (a child of ours) to stop: SIGTERM, which ends a run with its report.
pub fn terminate(pid: i32) {
    // SAFETY: kill only sends a signal.
    unsafe { libc::kill(pid, libc::SIGTERM) };
}

/// Fork a child that loads every class of `values` (the clobber routines) and kills itself
/// with SIGABRT in `dir` (its working directory), so that the kernel writes a core of it with
/// those registers. The child dumps no memory (`coredump_filter` 0: the notes and headers
/// only) and raises its core size limit to the hard one. Returns the child's pid and its wait
/// status (the caller reads `WCOREDUMP`).
pub fn dump_core(values: &[(ClassId, Vec<u64>)], dir: &std::path::Path) -> io::Result<(i32, i32)> {
    use std::os::unix::ffi::OsStrExt;
    let dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| io::Error::other("NUL in the core directory"))?;
    let filter = c"/proc/self/coredump_filter";
    // SAFETY: fork; the child only makes system calls (chdir, setrlimit, open, write, prctl,
    // sigaction, sigprocmask, tgkill) on memory made before the fork, and the clobber routines,
    // after which nothing uses vector state: it dies of the signal (or _exit).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child, as above.
        unsafe {
            if libc::chdir(dir.as_ptr()) != 0 {
                libc::_exit(120);
            }
            let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::getrlimit(libc::RLIMIT_CORE, &mut lim);
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_CORE, &lim);
            let fd = libc::open(filter.as_ptr(), libc::O_WRONLY);
            if fd >= 0 {
                libc::write(fd, b"0\n".as_ptr() as *const libc::c_void, 2);
                libc::close(fd);
            }
            libc::prctl(libc::PR_SET_DUMPABLE, 1);
            libc::signal(libc::SIGABRT, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGABRT);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            let (me, tid) = (libc::getpid(), libc::gettid());
            for (class, v) in values {
                crate::arch::native().clobber(*class, v);
            }
            libc::syscall(libc::SYS_tgkill, me, tid, libc::SIGABRT);
            libc::_exit(121);
        }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut status = 0;
    // SAFETY: waitpid on our own child; writes only `status`.
    if unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((pid, status))
}
