//! Requests that make io_uring create io-wq workers through task_work on the calling thread.
//!
//! `IORING_OP_SPLICE` from an empty pipe cannot complete inline, so io_uring punts it to the
//! submitting task's io-wq, where it blocks. The first worker is created synchronously inside
//! `io_uring_enter`; each further queued request gets its worker when the previous one blocks:
//! `io_wq_worker_sleeping` → `io_queue_worker_create` → `task_work_add(task, TWA_SIGNAL)`, which
//! kicks the *submitting* thread (an IPI when it is running) so that on its next return to user
//! space, at whatever instruction it was, it runs `create_worker_cb` → `create_io_thread` →
//! `copy_process`: the path of the powerpc save_fpu bug this tool was made for (Linux 6.1
//! io_uring/io-wq.c). Writing to the pipe completes every request.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use io_uring::{IoUring, opcode, types};

/// `n` splice requests blocked in this thread's io-wq; dropping it completes them.
pub struct BlockedSplices {
    ring: IoUring,
    pipe_r: OwnedFd,
    pipe_w: OwnedFd,
    _devnull: std::fs::File,
    n: usize,
}

/// Whether io_uring and IORING_OP_SPLICE work here; the error says why not.
pub fn probe() -> io::Result<()> {
    let ring = IoUring::new(2)?;
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    if !probe.is_supported(opcode::Splice::CODE) {
        return Err(io::Error::new(io::ErrorKind::Unsupported, "this kernel's io_uring has no IORING_OP_SPLICE"));
    }
    Ok(())
}

impl BlockedSplices {
    /// Queue `n` one-byte splices from an empty pipe to /dev/null and submit them.
    pub fn submit(n: usize) -> io::Result<BlockedSplices> {
        let mut ring = IoUring::new((n as u32).next_power_of_two().max(2))?;
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors, which become owned right after.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned by nothing else.
        let (pipe_r, pipe_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let devnull = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        for i in 0..n {
            let sqe = opcode::Splice::new(types::Fd(pipe_r.as_raw_fd()), -1, types::Fd(devnull.as_raw_fd()), -1, 1).build().user_data(i as u64);
            // SAFETY: a splice SQE refers to no memory, only to descriptors that live as long as
            // the ring (they are fields of the same value, dropped after the ring is drained).
            unsafe { ring.submission().push(&sqe) }.map_err(|_| io::Error::other("submission queue full"))?;
        }
        ring.submit()?;
        Ok(BlockedSplices { ring, pipe_r, pipe_w, _devnull: devnull, n })
    }
}

impl Drop for BlockedSplices {
    fn drop(&mut self) {
        let bytes = vec![0u8; self.n];
        // SAFETY: writing our own buffer to our own pipe.
        let _ = unsafe { libc::write(self.pipe_w.as_raw_fd(), bytes.as_ptr() as *const libc::c_void, bytes.len()) };
        let mut done = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while done < self.n && std::time::Instant::now() < deadline {
            let ts = types::Timespec::new().nsec(100_000_000);
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = self.ring.submitter().submit_with_args(1, &args);
            done += self.ring.completion().count();
        }
        let _ = &self.pipe_r;
    }
}
