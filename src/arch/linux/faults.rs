//! Fault forensics: the fault handler, its records, the vDSO image and alternate signal stacks.

use super::*;

/// Faults kept in full (more are counted in [`fault_count`]).
pub const FAULT_SLOTS: usize = 8;
/// Registers a fault record holds at most (the backend's `FAULT_REGS` names them).
pub const FAULT_REGS_MAX: usize = 48;
/// The words of a fault record (`FAULT_DATA`): a head of these, then the registers from HEAD.
mod rec {
    pub const SIGNO: usize = 0;
    pub const CODE: usize = 1;
    pub const ADDR: usize = 2;
    pub const TID: usize = 3;
    pub const RECOVERED: usize = 4;
    pub const WHEN_NS: usize = 5;
    pub const NREGS: usize = 6;
    /// Four words: 1 if a signal was lost, then its number, thread and pc (the backend's
    /// `recover`).
    pub const LOST: usize = 7;
    /// (checking-thread slot + 1) << 48 | what it was doing; 0 for another thread.
    pub const CHECKER: usize = 11;
    /// The faulting checking thread's published window start (or end, with OUTSIDE).
    pub const WINDOW: usize = 12;
    pub const HEAD: usize = 13;
}
use rec::HEAD;

/// The signals that mean a thread cannot go on as it was: handled as findings, not deaths.
pub const FAULT_SIGNALS: [i32; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGTRAP, libc::SIGFPE];

/// One fault as the handler recorded it: the signal, where, and every register of the frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFault {
    pub signo: i32,
    pub code: i32,
    pub addr: u64,
    pub tid: i32,
    /// The handler repaired the frame and the thread went on (see the backend's `recover`).
    pub recovered: bool,
    /// CLOCK_MONOTONIC nanoseconds at the fault.
    pub when_ns: u64,
    /// The registers of the faulting context, named by the backend's `FAULT_REGS`.
    pub regs: Vec<u64>,
    /// powerpc64: the frame of a signal that was set up but whose handler was never reached,
    /// read from the stack the fault left: (signal, trap, nip of the interrupted context).
    pub lost_signal: Option<(u64, u64, u64)>,
    /// The checking thread's number and what it was doing ([`set_doing`]), when a checking
    /// thread faulted.
    pub checker: Option<(u32, u64)>,
    /// CLOCK_MONOTONIC nanoseconds at the start of the window the faulting checking thread was
    /// in ([`set_window_start`]; kept only while a trace records).
    pub window_start_ns: Option<u64>,
    /// For a checking thread that faulted outside a window: when its last window ended, or,
    /// before its first, when it registered ([`set_window_end`], [`register_thread`]).
    pub outside_since_ns: Option<u64>,
}

/// In a published window start: the thread is in no window, and has not been since then.
pub(super) const OUTSIDE: u64 = 1 << 63;

static FAULT_NEXT: AtomicUsize = AtomicUsize::new(0);
static FAULT_TOTAL: AtomicU64 = AtomicU64::new(0);
static FAULT_READY: [AtomicBool; FAULT_SLOTS] = [const { AtomicBool::new(false) }; FAULT_SLOTS];
static FAULT_DATA: [[AtomicU64; HEAD + FAULT_REGS_MAX]; FAULT_SLOTS] = [const { [const { AtomicU64::new(0) }; HEAD + FAULT_REGS_MAX] }; FAULT_SLOTS];
/// A fault that the thread could not survive happened: the run must stop and report.
static FATAL: AtomicBool = AtomicBool::new(false);
/// A run's monitor is watching [`fatal_fault`] and will report (else the handler reports).
pub static MONITORED: AtomicBool = AtomicBool::new(false);
/// The address a thread must resume at to finish a signal return (the vDSO's sigreturn
/// trampoline), for the backend's `recover`; 0 where there is none.
pub(crate) static SIGRETURN_TRAMPOLINE: AtomicUsize = AtomicUsize::new(0);
/// Where the vDSO's signal trampoline starts (the instruction that calls the handler).
pub(crate) static SIGNAL_TRAMPOLINE: AtomicUsize = AtomicUsize::new(0);

/// Faults so far, recovered or not.
pub fn fault_count() -> u64 {
    FAULT_TOTAL.load(Ordering::Acquire)
}

/// Whether a fault happened that a thread could not survive.
pub fn fatal_fault() -> bool {
    FATAL.load(Ordering::Acquire)
}

/// The faults recorded so far, in order.
pub fn faults() -> Vec<RawFault> {
    let n = FAULT_NEXT.load(Ordering::Acquire).min(FAULT_SLOTS);
    (0..n)
        .filter(|&i| FAULT_READY[i].load(Ordering::Acquire))
        .map(|i| {
            let w = |k: usize| FAULT_DATA[i][k].load(Ordering::Relaxed);
            let nregs = (w(rec::NREGS) as usize).min(FAULT_REGS_MAX);
            let (checker, window) = (w(rec::CHECKER), w(rec::WINDOW));
            RawFault {
                signo: w(rec::SIGNO) as i32,
                code: w(rec::CODE) as i32,
                addr: w(rec::ADDR),
                tid: w(rec::TID) as i32,
                recovered: w(rec::RECOVERED) & 1 != 0,
                when_ns: w(rec::WHEN_NS),
                regs: (0..nregs).map(|r| w(HEAD + r)).collect(),
                lost_signal: (w(rec::LOST) != 0).then(|| (w(rec::LOST + 1), w(rec::LOST + 2), w(rec::LOST + 3))),
                checker: (checker != 0).then(|| ((checker >> 48) as u32 - 1, checker & 0xffff_ffff_ffff)),
                window_start_ns: (window != 0 && window & OUTSIDE == 0).then_some(window),
                outside_since_ns: (window & OUTSIDE != 0).then_some(window & !OUTSIDE),
            }
        })
        .collect()
}

/// Forget recorded faults (between the selftest and a run, and in tests).
pub fn clear_faults() {
    FAULT_READY.iter().for_each(|r| r.store(false, Ordering::Release));
    FAULT_NEXT.store(0, Ordering::Release);
    FAULT_TOTAL.store(0, Ordering::Release);
    FATAL.store(false, Ordering::Release);
}

/// CLOCK_MONOTONIC in nanoseconds (async-signal-safe).
pub fn monotonic_ns() -> u64 {
    // SAFETY: clock_gettime writes only `ts`; it is async-signal-safe.
    unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
}

/// Read `buf.len()` bytes of this process's memory at `addr` without faulting: a bad address
/// gives an error (process_vm_readv checks it), so a signal handler may look at a stack that a
/// kernel bug may have left pointing anywhere.
pub fn read_own_memory(addr: usize, buf: &mut [u8]) -> bool {
    let local = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: the kernel writes at most buf.len() bytes into `buf` and reads the remote range
    // with its own checks; both iovecs live across the call.
    let r = unsafe { libc::process_vm_readv(getpid(), &local, 1, &remote, 1, 0) };
    r == buf.len() as isize
}

extern "C" fn on_fault(sig: i32, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // The time of the fault, before the handler's own work (slow under emulation) adds to it;
    // and the kernel's events that led here stay in the trace.
    let when = monotonic_ns();
    freeze_trace();
    let slot = FAULT_NEXT.fetch_add(1, Ordering::AcqRel);
    let mut regs = [0u64; FAULT_REGS_MAX];
    // SAFETY: `uc` is this handler's own frame; the backend copies registers out of it.
    let n = unsafe { crate::arch::native().fault_regs(uc, &mut regs) };
    // SAFETY: as above; the backend changes the frame only when it knows how to finish the
    // interrupted signal delivery (and reads other memory only through read_own_memory).
    let (recovered, lost) = unsafe { crate::arch::native().recover(uc) };
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as u64) };
    if slot < FAULT_SLOTS {
        let d = &FAULT_DATA[slot];
        let put = |k: usize, v: u64| d[k].store(v, Ordering::Relaxed);
        put(rec::SIGNO, sig as u64);
        put(rec::CODE, code as u64);
        put(rec::ADDR, addr);
        put(rec::TID, gettid() as u64);
        put(rec::RECOVERED, recovered as u64);
        put(rec::WHEN_NS, when);
        put(rec::NREGS, n as u64);
        let lost = lost.map_or([0; 4], |(s, t, p)| [1, s, t, p]);
        lost.iter().enumerate().for_each(|(k, v)| put(rec::LOST + k, *v));
        regs[..n].iter().enumerate().for_each(|(k, v)| put(HEAD + k, *v));
        let checker = checker_slot(gettid());
        put(rec::CHECKER, checker.map_or(0, |i| ((i as u64 + 1) << 48) | (THREAD_DOING[i].load(Ordering::Relaxed) & 0xffff_ffff_ffff)));
        put(rec::WINDOW, checker.map_or(0, |i| THREAD_WINDOW_START[i].load(Ordering::Relaxed)));
        FAULT_READY[slot].store(true, Ordering::Release);
    }
    FAULT_TOTAL.fetch_add(1, Ordering::AcqRel);
    if recovered {
        return;
    }
    FATAL.store(true, Ordering::Release);
    if !MONITORED.load(Ordering::Acquire) || gettid() == getpid() {
        // Nobody else will report: say what is known, in the only way left, and end.
        last_words(sig, addr, &regs[..n]);
    }
    // A run's monitor reports and ends the process; this thread must not go back to the
    // instruction that faulted.
    loop {
        // SAFETY: pause has no preconditions and is async-signal-safe.
        unsafe { libc::pause() };
    }
}

/// Write a fault's registers to standard error with write(2) and end the process (as init of
/// a VM: restart the machine, so that the host reads the lines and init never exits).
fn last_words(sig: i32, addr: u64, regs: &[u64]) -> ! {
    let mut buf = [0u8; 2048];
    let mut len = 0;
    let mut put = |b: &[u8]| {
        let n = b.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&b[..n]);
        len += n;
    };
    put(b"\nREGTORTURE-VM: error regtorture: CORRUPTION: fatal signal ");
    put(&hex(sig as u64));
    put(b" at address ");
    put(&hex(addr));
    put(b" in thread ");
    put(&hex(gettid() as u64));
    put(b"; registers:");
    for (i, r) in regs.iter().enumerate() {
        put(b" ");
        put(crate::arch::native().fault_layout().0.get(i).map_or(b"?".as_slice(), |n| n.as_bytes()));
        put(b"=");
        put(&hex(*r));
    }
    put(b"\n");
    // SAFETY: write and _exit are async-signal-safe; reboot only acts for init of a VM.
    unsafe {
        libc::write(2, buf.as_ptr() as *const libc::c_void, len);
        if getpid() == 1 {
            libc::sync();
            libc::reboot(libc::RB_AUTOBOOT);
        }
        libc::_exit(crate::error::EXIT_CORRUPTION);
    }
}

/// `0x...` of `v`, without allocating.
fn hex(v: u64) -> [u8; 18] {
    let mut out = [b'0'; 18];
    out[1] = b'x';
    for i in 0..16 {
        out[17 - i] = b"0123456789abcdef"[((v >> (4 * i)) & 15) as usize];
    }
    out
}

/// Install the fault handlers (once per process; idempotent) and this thread's alternate
/// signal stack. Every thread regtorture starts calls [`AltStack::new`] too: a fault on a
/// corrupted stack pointer must still reach the handler.
pub fn install_fault_handlers() -> io::Result<()> {
    if let Some((img, base)) = vdso_image() {
        let (start, ret) = crate::arch::native().signal_trampoline(img, base);
        SIGNAL_TRAMPOLINE.store(start, Ordering::Release);
        SIGRETURN_TRAMPOLINE.store(ret, Ordering::Release);
    }
    for sig in FAULT_SIGNALS {
        sigaction(sig, on_fault as *const () as usize, libc::SA_SIGINFO | libc::SA_ONSTACK)?;
    }
    Ok(())
}

/// Fault forensics for the calling thread from here on: the process's fault handlers
/// (idempotent) and an alternate signal stack for this thread, kept while the value lives.
/// The binary calls it first thing (the main thread, and init of a VM before it mounts
/// anything), and so does every thread regtorture starts outside a run (the selftest's): a
/// kernel bug that corrupts registers can strike in any phase, and a fault there must give a
/// report, not a silent death (with no run's monitor, the handler writes the registers to
/// standard error and ends the process; a VM's init restarts the machine after that).
pub fn protect_thread() -> io::Result<AltStack> {
    install_fault_handlers()?;
    AltStack::new()
}

/// This process's vDSO image (its bytes, and the address they start at), from AT_SYSINFO_EHDR
/// and the extent of the `[vdso]` mapping.
pub fn vdso_image() -> Option<(&'static [u8], usize)> {
    // SAFETY: getauxval has no preconditions.
    let base = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
    if base == 0 {
        return None;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let end = maps.lines().find_map(|l| {
        let range = l.split_whitespace().next()?;
        let (a, b) = range.split_once('-')?;
        let (a, b) = (usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?);
        (a == base).then_some(b)
    })?;
    // SAFETY: the kernel maps the vDSO image readable at AT_SYSINFO_EHDR for the whole life of
    // the process, up to the end of that mapping, and nothing writes to it.
    Some((unsafe { std::slice::from_raw_parts(base as *const u8, end - base) }, base))
}

/// An alternate signal stack for the calling thread, given back when dropped (the thread's
/// previous one, if any, is put back).
pub struct AltStack {
    base: *mut libc::c_void,
    old: libc::stack_t,
}

impl AltStack {
    const SIZE: usize = 256 * 1024;

    pub fn new() -> io::Result<AltStack> {
        // SAFETY: a fresh private mapping owned by the returned value; sigaltstack copies the
        // descriptor and keeps the previous one in `old`.
        unsafe {
            let base = libc::mmap(std::ptr::null_mut(), Self::SIZE, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let st = libc::stack_t { ss_sp: base, ss_flags: 0, ss_size: Self::SIZE };
            let mut old: libc::stack_t = std::mem::zeroed();
            if libc::sigaltstack(&st, &mut old) != 0 {
                let e = io::Error::last_os_error();
                libc::munmap(base, Self::SIZE);
                return Err(e);
            }
            Ok(AltStack { base, old })
        }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: this thread is not on the alternate stack here (drop runs in normal context);
        // the old descriptor is put back before the mapping goes.
        unsafe {
            let old = if self.old.ss_flags & libc::SS_DISABLE != 0 || self.old.ss_sp.is_null() {
                libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 }
            } else {
                self.old
            };
            libc::sigaltstack(&old, std::ptr::null_mut());
            libc::munmap(self.base, Self::SIZE);
        }
    }
}
