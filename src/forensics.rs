//! Fault forensics: a kernel bug can corrupt regtorture's own threads (a jump to a garbage
//! address, a wrong stack pointer). Such a fault is a finding, not a death: the handler in
//! `arch::linux` records the signal and every register of the faulting context, and this module
//! turns that record into a [`FaultReport`]: where the PC lies (regtorture's text, the vDSO and
//! which symbol, another mapping, nothing), what the registers say (the backend's readings, such
//! as "CTR holds the MSR image"), which thread and window it hit, and which known bug it matches.

use crate::arch::{self, linux::RawFault};
use crate::elf::{Symbol, elf_symbols, symbolize};
use crate::schema::Hex;
use crate::schema::{FaultReading, FaultReport, LostSignal};

/// Where an address lies, in words: "regtorture's text", "the vDSO: __kernel_... +0x4", "a
/// mapping of /lib/...", "\[stack\]", or "nothing (unmapped)".
pub fn locate(addr: u64, maps: &str, vdso: &[Symbol]) -> String {
    let exe = std::env::current_exe().ok().map(|p| p.display().to_string()).unwrap_or_default();
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else { continue };
        let Some((a, b)) = range.split_once('-') else { continue };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else { continue };
        if !(a..b).contains(&addr) {
            continue;
        }
        let path = f.nth(3).unwrap_or("");
        return match path {
            "[vdso]" => match symbolize(vdso, addr as usize) {
                Some(s) => format!("the vDSO: {s}"),
                None => format!("the vDSO (+{:#x})", addr - a),
            },
            p if !exe.is_empty() && p == exe && perms.contains('x') => format!("regtorture's text (+{:#x})", addr - a),
            "" => format!("an anonymous mapping ({perms})"),
            p => format!("{p} ({perms})"),
        };
    }
    "nothing (unmapped)".into()
}

/// A signal's name ("SIGSEGV", "SIGRTMIN+5").
pub fn signal_name(sig: i32) -> String {
    let rtmin = libc::SIGRTMIN();
    match sig {
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGTRAP => "SIGTRAP".into(),
        libc::SIGFPE => "SIGFPE".into(),
        libc::SIGALRM => "SIGALRM".into(),
        libc::SIGCHLD => "SIGCHLD".into(),
        s if s >= rtmin && s <= libc::SIGRTMAX() => format!("SIGRTMIN+{}", s - rtmin),
        s => format!("signal {s}"),
    }
}

/// What the engine knew of the run when the fault happened.
pub struct Context<'a> {
    /// What a checking thread was doing, in words, from the word it published.
    pub doing: &'a dyn Fn(u64) -> String,
    pub triggers: &'a [String],
    /// CLOCK_MONOTONIC nanoseconds when the run started.
    pub start_ns: u64,
}

/// Decode a recorded fault.
pub fn decode(f: &RawFault, ctx: &Context<'_>) -> FaultReport {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let vdso = arch::linux::vdso_image().map(|(img, base)| elf_symbols(img, base)).unwrap_or_default();
    let (names, pc_index) = arch::native().fault_layout();
    let registers: Vec<(String, Hex)> = f.regs.iter().enumerate().map(|(i, &v)| (names.get(i).map_or(format!("reg{i}"), |n| n.to_string()), Hex(v))).collect();
    let pc = f.regs.get(pc_index).copied().unwrap_or(0);
    let pc_location = locate(pc, &maps, &vdso);
    let mut readings = arch::native().fault_readings(&f.regs, &|name| vdso.iter().find(|s| s.name == name).map(|s| s.addr as u64));
    if pc_location.starts_with("nothing") {
        readings.push(FaultReading::PcUnmapped);
    }
    let in_a_window = |pc: u64| {
        crate::class::ClassId::ALL.iter().any(|&c| {
            let (b, e) = arch::native().live_range(c);
            (b as u64..e as u64).contains(&pc)
        })
    };
    // What the thread published is the window it was in or had just left; where the frame was
    // to resume says whether the system call was the window's own.
    let outside = f.lost_signal.is_some_and(|(_, _, resume)| !in_a_window(resume));
    let lost_signal = f.lost_signal.map(|(sig, trap, resume)| {
        if let Some(via) = arch::native().syscall_trap_name(trap) {
            readings.push(FaultReading::SignalSetUpOnSyscallExit { via: via.into() });
        }
        LostSignal { signal: signal_name(sig as i32), trap: Hex(trap), resume_pc: Hex(resume), resume_at: locate(resume, &maps, &vdso) }
    });
    let mut r = FaultReport {
        signal: signal_name(f.signo),
        si_code: f.code,
        si_addr: Hex(f.addr),
        tid: f.tid,
        thread: f.checker.map(|c| c.0),
        doing: f.checker.map(|c| {
            let d = (ctx.doing)(c.1);
            if outside { format!("{d} (the system call was regtorture's own code around it, not the window's)") } else { d }
        }),
        elapsed_s: f.when_ns.saturating_sub(ctx.start_ns) as f64 / 1e9,
        pc: Hex(pc),
        pc_location,
        registers,
        readings,
        lost_signal,
        recovered: f.recovered,
        triggers: ctx.triggers.to_vec(),
        at_ns: f.when_ns,
        window_start_ns: f.window_start_ns.filter(|&w| w <= f.when_ns),
        outside_since_ns: f.outside_since_ns.filter(|&w| w <= f.when_ns),
        timeline: None,
        signature: None,
    };
    r.signature = crate::signature::find_fault(arch::name(), &r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_vdso_has_symbols_and_they_symbolize() {
        let Some((img, base)) = crate::arch::linux::vdso_image() else {
            // A kernel without a vDSO (or qemu-user without one) has nothing to parse.
            assert!(crate::arch::linux::user_mode_emulation(), "no vDSO on a native kernel");
            return;
        };
        let syms = elf_symbols(img, base);
        assert!(!syms.is_empty(), "the vDSO has dynamic symbols");
        for s in &syms {
            assert!(s.addr >= base && s.addr < base + img.len(), "{s:?} outside the image");
            // Aliases share an address (clock_gettime, __vdso_clock_gettime): any of them.
            let got = symbolize(&syms, s.addr).expect("a symbol");
            assert!(syms.iter().any(|x| x.addr == s.addr && x.name == got), "{s:?} read as {got}");
        }
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(locate(syms[0].addr as u64, &maps, &syms).starts_with("the vDSO: "));
    }

    #[test]
    fn addresses_are_located() {
        let maps = "00400000-00500000 r-xp 00000000 08:01 123 /usr/lib/libx.so\n7fff0000-7fff2000 r-xp 00000000 00:00 0 [vdso]\n";
        let syms = vec![Symbol { name: "__kernel_sigtramp_rt64".into(), addr: 0x7fff0400, size: 16 }];
        assert_eq!(locate(0x400010, maps, &syms), "/usr/lib/libx.so (r-xp)");
        assert_eq!(locate(0x7fff0404, maps, &syms), "the vDSO: __kernel_sigtramp_rt64+0x4");
        assert_eq!(locate(0x8000_0000_0280_f030, maps, &syms), "nothing (unmapped)");
    }
}
