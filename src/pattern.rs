//! Register patterns: every value says who wrote it, so a wrong value can be read.
//!
//! A 64-bit data lane holds two independent 32-bit halves, each a bijective mix of its fields:
//!
//! * low half  = mix32(tag:5 | thread:10 | class:4 | register:6 | lane:7), fixed for a thread;
//! * high half = mix32(iteration ^ key), the same for every lane of one window.
//!
//! Both halves vary in every bit, so a stuck or flipped bit is seen, and both can be inverted, so
//! an observed value can be explained ([`explain`]): another register's or another lane's value,
//! an older iteration's value (a stale restore), another thread's value, the signal handler's
//! value, zero, or unknown. The `tag` comes from the seed and makes a random value decode as
//! "ours" with probability 1/32 only. Control registers carry a seed-dependent value in the bits
//! that may legally change, never zero: a data register a kernel overwrote with a control
//! register's image (powerpc's save_fpu left FPSCR in f0) must not read as a cleared one.
//!
//! Filling a buffer for a new iteration is one OR per word ([`Template::fill`]), so the pattern
//! costs little next to the register loads and stores it feeds.

use crate::class::{ClassId, ClassLayout, RegKind};
use crate::schema::Reading;

/// The thread number that the signal handler's clobbering values carry.
pub const HANDLER_THREAD: u32 = 1023;
/// The thread number whose values the ptrace trigger's tracer writes (`trigger/ptrace.rs`).
pub const TRACER_THREAD: u32 = 1022;
/// The thread number of the values a process holds when it calls execve (`leak`).
pub const EXEC_THREAD: u32 = 1021;
/// The thread number of the values a child holds when it dumps core (`coredump`).
pub const CORE_THREAD: u32 = 1020;
/// The thread number whose values the clobbering handler writes into a signal frame when it
/// rewrites one (`arch::linux` frame rewrites).
pub const REWRITE_THREAD: u32 = 1019;
/// The largest number of checking threads a pattern can tell apart: the numbers from here up
/// are the writers above.
pub const MAX_THREADS: u32 = 1019;

const M1: u32 = 0x7feb_352d;
const M2: u32 = 0x846c_a68b;

const fn inverse(a: u32) -> u32 {
    // Newton's iteration for the inverse of an odd number modulo 2^32.
    let mut x = a;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u32.wrapping_sub(a.wrapping_mul(x)));
        i += 1;
    }
    x
}
const M1_INV: u32 = inverse(M1);
const M2_INV: u32 = inverse(M2);

/// A bijective 32-bit mix (every input bit changes about half of the output bits).
pub fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(M1);
    x ^= x >> 15;
    x = x.wrapping_mul(M2);
    x ^= x >> 16;
    x
}

/// The inverse of [`mix32`].
pub fn unmix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(M2_INV);
    x ^= (x >> 15) ^ (x >> 30);
    x = x.wrapping_mul(M1_INV);
    x ^= x >> 16;
    x
}

/// A 64-bit mix (splitmix64's finaliser), for control-register values.
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Who wrote a value: decoded from the low half of a pattern word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub thread: u32,
    pub class: ClassId,
    pub reg: u32,
    pub lane: u32,
}

/// The pattern of one run, derived from its seed.
#[derive(Clone, Copy, Debug)]
pub struct Pattern {
    seed: u64,
    tag: u32,
    key: u32,
}

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        let m = mix64(seed ^ 0x7265_6774_6f72_7475);
        Pattern { seed, tag: (m & 31) as u32, key: (m >> 32) as u32 }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The low half of every word written for (thread, class, register, lane).
    pub fn lo(&self, id: Identity) -> u32 {
        debug_assert!(id.thread <= 1023 && id.reg < 64 && id.lane < 128);
        let packed = (self.tag << 27) | (id.thread << 17) | (id.class.code() << 13) | (id.reg << 7) | id.lane;
        mix32(packed)
    }

    /// Decode a low half; `None` when it is not one of this run's values.
    pub fn identity(&self, lo: u32) -> Option<Identity> {
        let p = unmix32(lo);
        if p >> 27 != self.tag {
            return None;
        }
        Some(Identity { thread: (p >> 17) & 1023, class: ClassId::from_code((p >> 13) & 15)?, reg: (p >> 7) & 63, lane: p & 127 })
    }

    /// The high half of every word written in iteration `it`.
    pub fn hi(&self, it: u64) -> u32 {
        mix32((it as u32) ^ self.key)
    }

    /// The iteration (modulo 2^32) whose high half is `hi`.
    pub fn iteration_of(&self, hi: u32) -> u32 {
        unmix32(hi) ^ self.key
    }

    /// The value of a control register of `thread` in iteration `it`, before masking.
    pub fn control(&self, thread: u32, class: ClassId, reg: usize, it: u64) -> u64 {
        mix64(self.seed ^ mix64(((thread as u64) << 48) ^ ((class.code() as u64) << 40) ^ ((reg as u64) << 32) ^ it))
    }

    /// The value a control register with the given constraints holds in iteration `it`. Never
    /// zero where a bit may vary: a data register that a kernel clobbered with this register's
    /// image (powerpc's save_fpu and save_altivec left FPSCR in f0, VSCR in v0) must read as
    /// that image, not as a register cleared to zero. With VSCR's two bits a zero came 1 time in
    /// 4, and the seed bug's replay then went unnamed (measured in the ppc64el VM).
    pub fn control_value(&self, thread: u32, class: ClassId, reg: usize, it: u64, valid: u64, fixed: u64) -> u64 {
        match fixed | (self.control(thread, class, reg, it) & valid) {
            0 => valid & valid.wrapping_neg(),
            v => v,
        }
    }
}

/// Whether `v` is a data word some thread of this run wrote: its low half decodes as one of
/// the run's identities and its high half as an iteration below 2^28. A value nobody wrote
/// passes with probability 2^-5 * 2^-4 = 1/512; zero and all ones (what kernels scrub with)
/// never do.
pub fn is_written(p: &Pattern, v: u64) -> bool {
    v != 0 && v != u64::MAX && p.identity(v as u32).is_some() && p.iteration_of((v >> 32) as u32) < 1 << 28
}

const X87_INTEGER_BIT: u64 = 1 << 63;

/// The per-thread, per-class part of a pattern, computed once; [`Template::fill`] makes the
/// buffer for an iteration from it.
#[derive(Clone, Debug)]
pub struct Template {
    thread: u32,
    class: ClassId,
    base: Vec<u64>,
    /// Ranges of words that are plain data: `base | hi << 32`, nothing else (the hot loop).
    runs: Vec<(usize, usize)>,
    /// Other words that carry the iteration: (word, mask of the high half to OR in).
    partial: Vec<(usize, u64)>,
    /// (word, register, valid, fixed) of each control register.
    controls: Vec<(usize, usize, u64, u64)>,
}

impl Template {
    pub fn new(p: &Pattern, layout: &ClassLayout, thread: u32) -> Template {
        let mut base = vec![0u64; layout.words];
        let mut runs: Vec<(usize, usize)> = Vec::new();
        let mut partial = Vec::new();
        let mut controls = Vec::new();
        for (r, spec) in layout.regs.iter().enumerate() {
            let w0 = spec.offset / 8;
            let id = |lane: usize| Identity { thread, class: layout.id, reg: r as u32, lane: lane as u32 };
            match &spec.kind {
                RegKind::Data => {
                    for lane in 0..spec.lanes() {
                        base[w0 + lane] = p.lo(id(lane)) as u64;
                    }
                    let full = spec.bytes / 8;
                    let (s, e) = (w0, w0 + full);
                    match runs.last_mut() {
                        Some(last) if last.1 == s => last.1 = e,
                        _ if full > 0 => runs.push((s, e)),
                        _ => {}
                    }
                    if spec.bytes % 8 != 0 {
                        // A register that ends inside a word (a short SVE predicate).
                        let m = (1u64 << (8 * (spec.bytes % 8))) - 1;
                        base[e] &= m;
                        partial.push((e, 0xffff_ffff_0000_0000 & m));
                    }
                }
                RegKind::X87 => {
                    base[w0] = p.lo(id(0)) as u64 | X87_INTEGER_BIT;
                    partial.push((w0, 0x7fff_ffff_0000_0000));
                    // A normal number: biased exponent 0x3f00..0x3fff, sign from the pattern.
                    let e = p.lo(id(1));
                    base[w0 + 1] = (0x3f00 | (e & 0xff) | ((e >> 8) & 0x8000)) as u64;
                }
                RegKind::Control { valid, fixed, .. } => controls.push((w0, r, *valid, *fixed)),
                RegKind::Config(words) => base[w0..w0 + words.len()].copy_from_slice(words),
                // Expected zero: the base's zeros, copied by `fill` like a configuration's words.
                RegKind::Zero => {}
            }
        }
        Template { thread, class: layout.id, base, runs, partial, controls }
    }

    /// The words before the iteration is ORed in, when every word is plain data (so that a
    /// window's values are `base | hi_word(it)` in every word); `None` otherwise.
    pub fn pure_data(&self) -> Option<&[u64]> {
        (self.runs.len() == 1 && self.runs[0] == (0, self.base.len())).then_some(&self.base[..])
    }

    /// The word ORed into every plain-data word in iteration `it`.
    pub fn hi_word(p: &Pattern, it: u64) -> u64 {
        (p.hi(it) as u64) << 32
    }

    /// Write the values of iteration `it` into `buf` (which must be as long as the layout).
    #[inline]
    pub fn fill(&self, p: &Pattern, it: u64, buf: &mut [u64]) {
        let hi = Template::hi_word(p, it);
        for &(s, e) in &self.runs {
            for (out, b) in buf[s..e].iter_mut().zip(&self.base[s..e]) {
                *out = b | hi;
            }
        }
        if self.runs.len() != 1 || self.runs[0] != (0, self.base.len()) {
            // Words outside the data runs: their fixed value first, then what varies.
            let mut last = 0;
            for &(s, e) in self.runs.iter().chain(std::iter::once(&(self.base.len(), self.base.len()))) {
                buf[last..s].copy_from_slice(&self.base[last..s]);
                last = e;
            }
            for &(w, m) in &self.partial {
                buf[w] = self.base[w] | (hi & m);
            }
            for &(w, r, valid, fixed) in &self.controls {
                buf[w] = p.control_value(self.thread, self.class, r, it, valid, fixed);
            }
        }
    }
}

/// Whether a 64-bit lane holds the control-register image `img` in either 32-bit half (an
/// FPSCR image from mffs sits in the low word), the summary bits FX, FEX and VX (31-29), which
/// the hardware computes, aside; the other half is zero or the image again.
pub fn holds_image(lane: u64, img: u64) -> bool {
    const SUMMARY: u32 = 0xe000_0000;
    let img = img as u32;
    let is = |w: u32| (w ^ img) & !SUMMARY == 0;
    let (lo, hi) = (lane as u32, (lane >> 32) as u32);
    img & !SUMMARY != 0 && ((is(lo) && (hi == 0 || is(hi))) || (is(hi) && lo == 0))
}

/// How a reading names a register: (class, register index) -> name.
pub type RegName<'a> = &'a dyn Fn(ClassId, usize) -> String;

/// Explain `observed`, found in lane `lane` of register `reg` of `layout` where `expected` was
/// written by `thread` in iteration `it`.
#[allow(clippy::too_many_arguments)]
pub fn explain(p: &Pattern, layout: &ClassLayout, thread: u32, it: u64, reg: usize, lane: usize, expected: u64, observed: u64, name: RegName<'_>) -> Reading {
    let spec = &layout.regs[reg];
    let flips = || {
        let d = expected ^ observed;
        (d.count_ones() <= 4).then(|| Reading::BitFlip { bits: (0..64).filter(|b| d >> b & 1 == 1).collect() })
    };
    match &spec.kind {
        RegKind::Control { valid, fixed, init } => {
            if observed == *init {
                return Reading::InitState;
            }
            if let Some(k) = (1..=64u64).take_while(|k| *k <= it).find(|k| p.control_value(thread, layout.id, reg, it - k, *valid, *fixed) == observed) {
                return Reading::Stale { iterations_ago: k };
            }
            if observed == 0 {
                return Reading::Zero;
            }
            return flips().unwrap_or(Reading::Unknown);
        }
        RegKind::Config(_) => {
            return if observed == 0 { Reading::Zero } else { flips().unwrap_or(Reading::Unknown) };
        }
        RegKind::X87 if lane == 1 => return flips().unwrap_or(Reading::Unknown),
        _ => {}
    }
    if observed == 0 {
        return Reading::Zero;
    }
    let Some(mut who) = p.identity(observed as u32) else {
        return flips().unwrap_or(Reading::Unknown);
    };
    // Classes of different architectures may share a code (ClassId::code): the class being
    // explained is the one of its code that is in play.
    if who.class.code() == layout.id.code() {
        who.class = layout.id;
    }
    // The iteration that wrote the high half; an x87 significand lost its top bit to the
    // integer bit, so take whichever completion is nearest to now.
    let hi = (observed >> 32) as u32;
    let cur = it as u32;
    let ago = |h: u32| cur.wrapping_sub(p.iteration_of(h)) as i32 as i64;
    let iterations_ago = if spec.kind == RegKind::X87 {
        let (a, b) = (ago(hi & 0x7fff_ffff), ago(hi | 0x8000_0000));
        if a.abs() <= b.abs() { a } else { b }
    } else {
        ago(hi)
    };
    let other = name(who.class, who.reg as usize);
    if who.thread == HANDLER_THREAD {
        return Reading::SignalHandler { class: who.class, register: other, lane: who.lane };
    }
    if who.thread == TRACER_THREAD {
        return Reading::TracerValue { class: who.class, register: other, lane: who.lane };
    }
    if who.thread == REWRITE_THREAD {
        return Reading::FrameRewrite { class: who.class, register: other, lane: who.lane };
    }
    if who.thread != thread {
        return Reading::OtherThread { thread: who.thread, class: who.class, register: other, lane: who.lane };
    }
    if who.class == layout.id && who.reg as usize == reg && who.lane as usize == lane {
        if iterations_ago > 0 {
            return Reading::Stale { iterations_ago: iterations_ago as u64 };
        }
        return flips().unwrap_or(Reading::Unknown);
    }
    Reading::OtherRegister { class: who.class, register: other, lane: who.lane, iterations_ago }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> ClassLayout {
        let mut l = ClassLayout::data_regs(ClassId::Avx512, "zmm", 32, 64);
        l.push("ctl", 4, RegKind::Control { valid: 0xe07f, fixed: 0x1f80, init: 0x1f80 });
        l
    }

    fn name(c: ClassId, r: usize) -> String {
        format!("{c}:{r}")
    }

    fn read(p: &Pattern, l: &ClassLayout, it: u64, reg: usize, lane: usize, observed: u64) -> Reading {
        let mut buf = vec![0; l.words];
        Template::new(p, l, 3).fill(p, it, &mut buf);
        let w = l.regs[reg].offset / 8 + lane;
        explain(p, l, 3, it, reg, lane, buf[w], observed, &name)
    }

    /// A control register whose valid bits are few (powerpc VSCR: NJ and SAT) is never zero,
    /// yet still takes every other value; a register without valid bits keeps its fixed value.
    #[test]
    fn a_control_value_is_never_zero_where_its_bits_vary() {
        let p = Pattern::new(7);
        let mut seen = std::collections::HashSet::new();
        for it in 0..1000 {
            let v = p.control_value(2, ClassId::Vmx, 32, it, 0x0001_0001, 0);
            assert_ne!(v, 0, "iteration {it}");
            assert_eq!(v & !0x0001_0001, 0);
            seen.insert(v);
        }
        assert_eq!(seen.len(), 3, "{seen:x?}");
        assert_eq!(p.control_value(2, ClassId::Vmx, 32, 5, 0, 0x0001_0000), 0x0001_0000);
        assert_eq!(p.control_value(2, ClassId::Vmx, 32, 5, 0, 0), 0);
    }

    #[test]
    fn mix_is_a_bijection() {
        for x in [0u32, 1, 2, 0xdead_beef, u32::MAX, 0x8000_0000, 12345] {
            assert_eq!(unmix32(mix32(x)), x);
            assert_eq!(mix32(unmix32(x)), x);
        }
        let mut seen = std::collections::HashSet::new();
        for x in 0..100_000u32 {
            assert!(seen.insert(mix32(x)));
        }
    }

    #[test]
    fn identity_round_trips() {
        let p = Pattern::new(42);
        // The class of that code this architecture has (aarch64's sve-ssve shares vsx's).
        let class = ClassId::from_code(ClassId::Vsx.code()).expect("a class");
        let id = Identity { thread: 17, class, reg: 63, lane: 127 };
        assert_eq!(p.identity(p.lo(id)), Some(id));
        assert_eq!(p.iteration_of(p.hi(123_456)), 123_456);
    }

    #[test]
    fn every_lane_is_distinct_and_iterations_differ() {
        let p = Pattern::new(7);
        let l = layout();
        let t = Template::new(&p, &l, 3);
        let (mut a, mut b) = (vec![0; l.words], vec![0; l.words]);
        t.fill(&p, 10, &mut a);
        t.fill(&p, 11, &mut b);
        let data = &a[..256];
        let set: std::collections::HashSet<_> = data.iter().collect();
        assert_eq!(set.len(), 256);
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
        assert_eq!(a[256] & 0x1f80, 0x1f80);
        assert_eq!(a[256] & !0xffff, 0);
    }

    #[test]
    fn a_written_word_is_told_from_scrub_values() {
        let p = Pattern::new(99);
        let l = layout();
        let mut now = vec![0; l.words];
        Template::new(&p, &l, 3).fill(&p, 500, &mut now);
        assert!(is_written(&p, now[42]));
        assert!(!is_written(&p, 0) && !is_written(&p, u64::MAX));
        // Of values nobody wrote, about 1 in 512 passes.
        let passed = (0..100_000u64).filter(|&i| is_written(&p, mix64(i))).count();
        assert!((100..=300).contains(&passed), "{passed} of 100000 random values read as written");
    }

    #[test]
    fn explains_each_kind_of_wrong_value() {
        let p = Pattern::new(99);
        let l = layout();
        let t = Template::new(&p, &l, 3);
        let mut now = vec![0; l.words];
        let mut old = vec![0; l.words];
        t.fill(&p, 500, &mut now);
        t.fill(&p, 497, &mut old);
        // zmm5 lane 2 came back with its value of three iterations ago.
        assert_eq!(read(&p, &l, 500, 5, 2, old[5 * 8 + 2]), Reading::Stale { iterations_ago: 3 });
        // zmm5 lane 2 holds zmm9 lane 0 of this iteration.
        assert_eq!(
            read(&p, &l, 500, 5, 2, now[9 * 8]),
            Reading::OtherRegister { class: ClassId::Avx512, register: "avx512:9".into(), lane: 0, iterations_ago: 0 }
        );
        // Another thread's value.
        let mut other = vec![0; l.words];
        Template::new(&p, &l, 8).fill(&p, 500, &mut other);
        assert_eq!(read(&p, &l, 500, 5, 2, other[5 * 8 + 2]), Reading::OtherThread { thread: 8, class: ClassId::Avx512, register: "avx512:5".into(), lane: 2 });
        // The signal handler's value.
        let mut h = vec![0; l.words];
        Template::new(&p, &l, HANDLER_THREAD).fill(&p, 0, &mut h);
        assert!(matches!(read(&p, &l, 500, 5, 2, h[40]), Reading::SignalHandler { .. }));
        assert_eq!(read(&p, &l, 500, 5, 2, 0), Reading::Zero);
        assert_eq!(read(&p, &l, 500, 5, 2, now[42] ^ (1 << 17)), Reading::BitFlip { bits: vec![17] });
        assert_eq!(read(&p, &l, 500, 5, 2, 0x0123_4567_89ab_cdef ^ now[42]), Reading::Unknown);
        // Control register: init value, and a stale one.
        assert_eq!(read(&p, &l, 500, 32, 0, 0x1f80), Reading::InitState);
        assert_eq!(read(&p, &l, 500, 32, 0, old[256]), Reading::Stale { iterations_ago: 3 });
    }

    #[test]
    fn registers_that_end_inside_a_word_stay_inside() {
        let p = Pattern::new(11);
        let mut l = ClassLayout { id: ClassId::Sve, words: 0, regs: vec![] };
        for (i, bytes) in [2usize, 4, 6, 12].into_iter().enumerate() {
            l.push(&format!("p{i}"), bytes.div_ceil(8) * 8, RegKind::Data);
            l.regs[i].bytes = bytes;
        }
        let mut buf = vec![0; l.words];
        Template::new(&p, &l, 1).fill(&p, 77, &mut buf);
        assert_eq!(buf[0] >> 16, 0);
        assert_eq!(buf[1] >> 32, 0);
        assert_eq!(buf[2] >> 48, 0);
        assert_ne!(buf[2] >> 32, 0, "the iteration shows where there is room");
        assert_eq!(buf[4] >> 32, 0);
        assert_ne!(buf[3] >> 32, 0);
    }

    #[test]
    fn x87_values_are_normal_and_decode() {
        let p = Pattern::new(5);
        let mut l = ClassLayout { id: ClassId::X87, words: 0, regs: vec![] };
        for i in 0..8 {
            l.push(&format!("st{i}"), 16, RegKind::X87);
        }
        let mut now = vec![0; l.words];
        let mut old = vec![0; l.words];
        let t = Template::new(&p, &l, 0);
        t.fill(&p, 1000, &mut now);
        t.fill(&p, 990, &mut old);
        for r in 0..8 {
            assert_eq!(now[2 * r] >> 63, 1, "integer bit");
            let e = now[2 * r + 1] & 0x7fff;
            assert!((0x3f00..=0x3fff).contains(&e));
        }
        let mut buf = vec![0; l.words];
        Template::new(&p, &l, 0).fill(&p, 1000, &mut buf);
        let r = explain(&p, &l, 0, 1000, 2, 0, buf[4], old[4], &name);
        assert_eq!(r, Reading::Stale { iterations_ago: 10 });
    }
}
