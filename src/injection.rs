//! The faults positive controls inject: which register, lane and bits a signal-frame rewrite
//! corrupts ([`Fault`]), and how one is picked so that the corrupted value stays legal for its
//! register ([`pick_fault`]). The selftest and the `inject`/`replay` triggers share them; the
//! architecture backends apply them to a signal frame.

use crate::class::{ClassId, ClassLayout, RegKind};

/// A fault to inject into a signal frame: XOR `mask` into lane `lane` of register `reg` of
/// `class` in the saved register image, so that sigreturn loads the wrong value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub class: ClassId,
    pub reg: usize,
    pub lane: usize,
    pub mask: u64,
}

/// A random fault that keeps the register's value legal.
pub fn pick_fault(layout: &ClassLayout, rnd: &mut impl FnMut() -> u64) -> Fault {
    // Registers whose value varies; a constant one (configuration, a control register held
    // fixed) cannot take a fault that keeps it legal.
    let regs: Vec<usize> = (0..layout.regs.len()).filter(|&r| !matches!(layout.regs[r].kind, RegKind::Config(_) | RegKind::Control { valid: 0, .. })).collect();
    // A transition class's control is the state the ABI defines as zero (the SVE-only bits, the
    // upper halves): a value there that sigreturn delivers must be reported. Its other registers
    // are the plain classes' (neon, vmx, avx), whose controls cover them.
    // Unless the window makes that state zero again itself after any signal (sve-ssve): then
    // only its data can carry a fault to the check.
    let (zero, data): (Vec<usize>, Vec<usize>) = regs.iter().partition(|&&r| layout.regs[r].kind == RegKind::Zero);
    let regs = if layout.id.zero_state_remade_in_window() {
        data
    } else if zero.is_empty() {
        regs
    } else {
        zero
    };
    let reg = regs[(rnd() % regs.len() as u64) as usize];
    let spec = &layout.regs[reg];
    let (lane, legal) = match spec.kind {
        RegKind::Control { valid, .. } => (0, valid),
        RegKind::X87 => match rnd() % 2 {
            0 => (0, 0x7fff_ffff_ffff_ffff), // significand, keeping the integer bit
            _ => (1, 0xff),                  // low exponent bits: the number stays normal
        },
        _ => {
            let lane = (rnd() % spec.lanes() as u64) as usize;
            let width = (spec.bytes - 8 * lane).min(8);
            (lane, if width == 8 { u64::MAX } else { (1u64 << (8 * width)) - 1 })
        }
    };
    let mut mask = 0;
    while mask == 0 {
        // Sometimes a single bit, sometimes many: both must be seen.
        mask = if rnd() % 2 == 0 { 1u64 << (rnd() % 64) } else { rnd() } & legal;
    }
    Fault { class: layout.id, reg, lane, mask }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::RegSpec;

    /// A transition class's faults go into the state the ABI defines as zero, and stay inside it.
    #[test]
    fn a_transition_class_is_injected_where_the_abi_says_zero() {
        let reg = |name: &str, offset, bytes, kind| RegSpec { name: name.into(), offset, bytes, kind };
        let layout = ClassLayout {
            id: ClassId::NeonSve,
            words: 7,
            regs: vec![
                reg("v0", 0, 16, RegKind::Data),
                reg("z0.hi", 16, 16, RegKind::Zero),
                reg("p0", 32, 4, RegKind::Zero),
                reg("ffr", 48, 4, RegKind::Config(vec![0])),
            ],
        };
        let mut state = 1u64;
        let mut rnd = || {
            state = crate::pattern::mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            state
        };
        let mut seen = [false; 2];
        for _ in 0..200 {
            let f = pick_fault(&layout, &mut rnd);
            assert!(f.reg == 1 || f.reg == 2, "{f:?}");
            seen[f.reg - 1] = true;
            if f.reg == 2 {
                assert_eq!(f.mask >> 32, 0, "a 4-byte predicate: {f:?}");
            }
        }
        assert_eq!(seen, [true, true]);
        // sve-ssve: the window zeroes its z and p again after any signal, so faults go into
        // its ZA rows.
        let layout = ClassLayout { id: ClassId::SveSsve, regs: vec![reg("za0", 0, 16, RegKind::Data), reg("z0", 16, 16, RegKind::Zero)], words: 4 };
        assert!((0..200).all(|_| pick_fault(&layout, &mut rnd).reg == 0));
    }
}
