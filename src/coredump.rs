//! Core dumps: the registers a core file shows must be the ones the process held.
//!
//! A child loads one register class with pattern values (the backend's clobber routine, so
//! nothing touches them after) and dies of SIGABRT with a core ([`linux::dump_core`]; it dumps
//! no memory, only the headers and the notes). The kernel writes each thread's register sets
//! as notes with the same `user_regset` code ptrace uses (`fill_thread_core_info`,
//! fs/binfmt_elf.c): `NT_PRSTATUS` (whose `pr_reg` starts at byte 112 of `struct elf_prstatus`
//! on every 64-bit architecture here), `NT_PRFPREG`, `NT_X86_XSTATE` and the rest, so the same
//! maps say where each lane lies (`Backend::regsets`). The notes are read with the `object`
//! crate and every lane compared; a lane the core shows otherwise is a finding of the view kind.
//!
//! Where cores go is the machine's `core_pattern`: a file pattern (relative to the dumping
//! process's directory, or absolute) with `%p`, `%P`, `%e` and `%%` is followed; a pipe to a
//! program (systemd-coredump, apport) or another `%` token is a skip with that reason. The run
//! never changes `core_pattern`; a VM's init sets its own (`vm::init`).

use std::path::{Path, PathBuf};

use crate::arch::{self, NT_PRSTATUS, RegsetMap, linux};
use crate::class::{ClassId, ClassLayout, RegKind};
use crate::pattern::{CORE_THREAD, Pattern, Template};
use crate::schema::{ClassResult, Hex, Leak, SelftestStatus};
use crate::window::WindowKind;

/// Where `pr_reg` starts in the `NT_PRSTATUS` note (`struct elf_prstatus` on 64-bit Linux:
/// siginfo 12, cursig 2 + 2, sigpend 8, sighold 8, four pids 16, four timevals 64).
const PR_REG: usize = 112;

/// What the core-dump check did.
#[derive(Default)]
pub struct CoreCheck {
    /// Cores written and read.
    pub dumps: u32,
    /// Lanes a core showed otherwise than the process held them.
    pub findings: Vec<Leak>,
    /// Why it could not run, when it could not.
    pub skip: Option<String>,
}

/// Where the core of a process `pid` started in `dir` lands, from `core_pattern` and
/// `core_uses_pid`; `Err` says why the run cannot follow it.
pub fn core_path(pattern: &str, uses_pid: bool, comm: &str, dir: &Path, pid: i32) -> Result<PathBuf, String> {
    let pattern = pattern.trim_end_matches('\n');
    if let Some(prog) = pattern.strip_prefix('|') {
        return Err(format!(
            "core_pattern pipes cores to a program ({}), not to a file this run can read; the run does not change core_pattern (a VM's init sets its own)",
            prog.split_whitespace().next().unwrap_or("")
        ));
    }
    if pattern.is_empty() {
        return Err("core_pattern is empty: the kernel writes no core".into());
    }
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('p') | Some('P') => out.push_str(&pid.to_string()),
            Some('e') => out.push_str(comm),
            Some('%') => out.push('%'),
            other => return Err(format!("core_pattern {pattern:?} uses %{}, which the run cannot predict", other.map(String::from).unwrap_or_default())),
        }
    }
    if uses_pid && !pattern.contains("%p") && !pattern.contains("%P") {
        out.push_str(&format!(".{pid}"));
    }
    Ok(if out.starts_with('/') { PathBuf::from(out) } else { dir.join(out) })
}

/// The notes of a core file: (type, contents), in file order.
pub fn notes(data: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, String> {
    use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
    let elf = ElfFile64::<object::Endianness>::parse(data).map_err(|e| format!("not an ELF core: {e}"))?;
    let endian = elf.endian();
    let mut out = Vec::new();
    for ph in elf.elf_header().program_headers(endian, data).map_err(|e| e.to_string())? {
        let Some(mut it) = ph.notes(endian, data).map_err(|e| e.to_string())? else { continue };
        while let Some(n) = it.next().map_err(|e| e.to_string())? {
            out.push((n.n_type(endian).0, n.desc().to_vec()));
        }
    }
    Ok(out)
}

/// The classes a core can be checked for: plain ones the clobber routine loads whole (no
/// transition views, not the integer registers, which the call that raises the signal uses),
/// with a regset other than `NT_PRSTATUS`.
fn checkable(layouts: &[ClassLayout]) -> Vec<(&ClassLayout, Vec<RegsetMap>)> {
    // Nor a class the system call that raises the signal may discard (riscv64's V: the core
    // then shows the all-ones the kernel leaves, as the ABI allows; aarch64's SVE bits).
    let kept = |c: ClassId| arch::native().preserved(c, WindowKind::Syscall).is_none() && !arch::native().scrubbed(c, WindowKind::Syscall);
    layouts
        .iter()
        .filter(|l| !l.id.is_transition() && l.id != ClassId::Gpr && kept(l.id))
        .map(|l| (l, arch::native().regsets(l).into_iter().filter(|m| m.note != NT_PRSTATUS).collect::<Vec<_>>()))
        .filter(|(_, m)| !m.is_empty())
        .collect()
}

/// (word, regset, byte offset, what the core shows) of every plain-data or x87 lane of `layout`
/// that the core's notes show otherwise than `expect`.
fn compare(layout: &ClassLayout, maps: &[RegsetMap], notes: &[(u32, Vec<u8>)], expect: &[u64]) -> Result<Vec<(usize, &'static str, usize, u64)>, String> {
    let shown = |w: usize| layout.locate(w).is_some_and(|(r, _)| matches!(layout.regs[r].kind, RegKind::Data | RegKind::X87) || layout.id == ClassId::Pkru);
    let mut out = Vec::new();
    for m in maps {
        let Some((_, desc)) = notes.iter().find(|(t, _)| *t == m.note) else {
            return Err(format!("the core has no {} note", m.name));
        };
        // A note with a layout of its own (arm64's NT_ARM_SVE: FPSIMD or SVE format) is read
        // through the map of the layout it has.
        if m.when.is_some() && !m.describes(desc) {
            continue;
        }
        let base = if m.note == NT_PRSTATUS { PR_REG } else { 0 };
        for &(w, off, width) in m.words.iter().filter(|&&(w, _, _)| shown(w)) {
            let Some(bytes) = desc.get(base + off..base + off + width) else {
                return Err(format!("the core's {} note is {} bytes, too short for byte {}", m.name, desc.len(), base + off + width));
            };
            let mut b = [0u8; 8];
            b[..width].copy_from_slice(bytes);
            let seen = u64::from_le_bytes(b);
            let mask = if width >= 8 { u64::MAX } else { (1u64 << (8 * width)) - 1 };
            if (seen ^ expect[w]) & mask != 0 {
                out.push((w, m.name, off, seen | expect[w] & !mask));
            }
        }
    }
    Ok(out)
}

/// Where this run's children dump core: the machine's `core_pattern` and `core_uses_pid`,
/// read once, and a scratch directory of the run (the children's working directory, removed
/// when this is dropped).
struct Cores {
    dir: PathBuf,
    pattern: String,
    uses_pid: bool,
    comm: String,
}

impl Cores {
    /// Read where cores go; `Err` says why the run cannot follow it.
    fn new() -> Result<Cores, String> {
        let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").map_err(|e| format!("cannot read core_pattern: {e}"))?;
        let uses_pid = std::fs::read_to_string("/proc/sys/kernel/core_uses_pid").is_ok_and(|s| s.trim() == "1");
        let comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default().trim().to_string();
        let dir = std::env::temp_dir().join(format!("regtorture-core-{}", std::process::id()));
        core_path(&pattern, uses_pid, &comm, &dir, 0)?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("no directory for cores: {e}"))?;
        Ok(Cores { dir, pattern, uses_pid, comm })
    }

    /// One core of a child whose `layout` class holds `values`: its notes, or why there are
    /// none.
    fn dump(&self, layout: &ClassLayout, values: &[u64]) -> Result<Vec<(u32, Vec<u8>)>, String> {
        let (pid, status) = linux::dump_core(&[(layout.id, values.to_vec())], &self.dir).map_err(|e| format!("fork: {e}"))?;
        let path = core_path(&self.pattern, self.uses_pid, &self.comm, &self.dir, pid)?;
        if !(libc::WIFSIGNALED(status) && libc::WCOREDUMP(status)) {
            let _ = std::fs::remove_file(&path);
            return Err(format!(
                "the child was not dumped (wait status {status:#x}; core_pattern {:?}, and the hard core size limit of this process may be 0)",
                self.pattern.trim()
            ));
        }
        let data = std::fs::read(&path).map_err(|e| format!("the core is not at {} ({e})", path.display()))?;
        let _ = std::fs::remove_file(&path);
        notes(&data)
    }
}

impl Drop for Cores {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `rounds` cores, the classes taking turns (iteration = round): every lane each core shows
/// must be what the child held.
pub fn check(layouts: &[ClassLayout], seed: u64, rounds: u32) -> CoreCheck {
    let mut out = CoreCheck::default();
    if linux::user_mode_emulation() {
        out.skip = Some("core dumps are the emulator's under user-mode emulation (qemu-user)".into());
        return out;
    }
    let classes = checkable(layouts);
    if classes.is_empty() {
        out.skip = Some("no class here has a register set a core shows".into());
        return out;
    }
    let cores = match Cores::new() {
        Ok(c) => c,
        Err(why) => {
            out.skip = Some(why);
            return out;
        }
    };
    let p = Pattern::new(seed);
    for round in 0..rounds {
        let (layout, maps) = &classes[round as usize % classes.len()];
        let mut values = vec![0; layout.words];
        Template::new(&p, layout, CORE_THREAD).fill(&p, round as u64 + 1, &mut values);
        let diffs = cores.dump(layout, &values).and_then(|notes| compare(layout, maps, &notes, &values));
        match diffs {
            Err(why) => {
                out.skip = Some(why);
                break;
            }
            Ok(d) => {
                out.dumps += 1;
                out.findings.extend(d.into_iter().map(|(w, regset, off, seen)| finding(layout, w, regset, off, seen, values[w])));
            }
        }
    }
    out.findings.truncate(100);
    out
}

fn finding(layout: &ClassLayout, w: usize, regset: &str, off: usize, seen: u64, held: u64) -> Leak {
    let (r, lane) = layout.locate(w).unwrap_or((0, 0));
    Leak {
        source: "core dump".into(),
        class: layout.id,
        register: layout.regs.get(r).map(|r| r.name.clone()).unwrap_or_default(),
        lane: lane as u32,
        observed: Hex(seen),
        expected: Hex(held),
        reading: format!("the core's {regset} note shows this at byte {off}, where the process held the expected value"),
        signature: None,
    }
}

/// The core-dump check's positive control (`core-dump`): `rounds` cores of `layout`'s class,
/// each compared with an expectation one bit off in one random data lane: exactly that lane
/// must be reported, and nothing else.
pub fn control(layout: &ClassLayout, seed: u64, rounds: u32) -> ClassResult {
    let mut r = ClassResult { control: Some("core-dump".into()), ..ClassResult::empty(layout.id, SelftestStatus::Tested, None) };
    let skip = |mut r: ClassResult, why: String| {
        r.status = SelftestStatus::Skipped;
        r.reason = Some(why);
        r
    };
    if linux::user_mode_emulation() {
        return skip(r, "core dumps are the emulator's under user-mode emulation (qemu-user)".into());
    }
    let Some((_, maps)) = checkable(std::slice::from_ref(layout)).into_iter().next() else {
        return skip(r, "no register set of this class is in a core".into());
    };
    let data: Vec<usize> = layout.data_lanes().map(|(w, _, _)| w).filter(|&w| maps.iter().any(|m| m.site(w).is_some())).collect();
    if data.is_empty() {
        return skip(r, "no data lane of this class is in a core".into());
    }
    let cores = match Cores::new() {
        Ok(c) => c,
        Err(why) => return skip(r, why),
    };
    let p = Pattern::new(seed);
    let mut state = seed ^ 0x00c0_ded0;
    for round in 0..rounds {
        state = crate::pattern::mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
        let mut values = vec![0; layout.words];
        Template::new(&p, layout, CORE_THREAD).fill(&p, round as u64 + 1, &mut values);
        let w = data[(state % data.len() as u64) as usize];
        let mask = 1u64 << ((state >> 32) % 64);
        let mut expect = values.clone();
        expect[w] ^= mask;
        match cores.dump(layout, &values).and_then(|notes| compare(layout, &maps, &notes, &expect)) {
            Err(why) => return skip(r, why),
            Ok(d) => {
                r.injected += 1;
                let exact = d.iter().all(|x| x.0 == w && x.3 ^ expect[w] == mask) && !d.is_empty();
                if exact {
                    r.detected += 1;
                } else if d.is_empty() {
                    r.missed += 1;
                } else {
                    r.misplaced += 1;
                    if r.failures.len() < 5 {
                        r.failures.push(format!("planted word {w} mask {mask:#x}; reported {:?}", d.iter().map(|x| (x.0, x.1, x.2)).collect::<Vec<_>>()));
                    }
                }
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_pattern_is_followed_where_it_can_be_and_refused_with_the_reason_where_not() {
        let d = Path::new("/tmp/x");
        assert_eq!(core_path("core", false, "regtorture", d, 42), Ok(PathBuf::from("/tmp/x/core")));
        assert_eq!(core_path("core\n", true, "regtorture", d, 42), Ok(PathBuf::from("/tmp/x/core.42")));
        assert_eq!(core_path("/var/crash/%e.%p.core", true, "init", d, 7), Ok(PathBuf::from("/var/crash/init.7.core")));
        assert_eq!(core_path("c%%%P", false, "x", d, 3), Ok(PathBuf::from("/tmp/x/c%3")));
        assert!(core_path("|/lib/systemd/systemd-coredump %P %u", false, "x", d, 3).unwrap_err().contains("systemd-coredump"));
        assert!(core_path("core.%t", false, "x", d, 3).unwrap_err().contains("%t"));
        assert!(core_path("", false, "x", d, 3).is_err());
    }
}
