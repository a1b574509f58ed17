//! The selftest's rows for the positive controls that run as triggers: `ptrace-write` (every
//! write of the ptrace tracer records one kept lane one bit wrong, `--triggers ptrace-control`)
//! and `frame-rewrite` (every frame rewrite of the clobbering handler does,
//! `--triggers rewrite-control`).
//!
//! Each runs as a short run of spin windows over every class the control reaches, in rounds of
//! a second, until each class has had the selftest's number of plants (or [`MAX_ROUNDS`] went
//! by). A class's row: the plants made in its windows, and of the findings of its class those in
//! one lane with one bit wrong (detected), the others (misplaced), and the plants that no
//! finding answered (missed).

use std::time::Duration;

use crate::arch::{self, linux};
use crate::class::{ClassId, ClassLayout};
use crate::engine::{self, Outcome};
use crate::pattern::Pattern;
use crate::plan::Plan;
use crate::schema::{ClassResult, Mismatch, SelftestStatus};
use crate::trigger::TriggerSet;
use crate::window::WindowKind;

/// At most this many one-second rounds per control: under QEMU's TCG a round makes tens of
/// plants, on a host hundreds.
const MAX_ROUNDS: u32 = 20;
/// At most this long per control, however many rounds.
const MAX_CONTROL_TIME: Duration = Duration::from_secs(60);

/// One control that runs as a trigger.
struct Control {
    /// The trigger (`--triggers`).
    trigger: &'static str,
    /// The row's name.
    row: &'static str,
    /// Whether the control reaches `layout`'s class.
    reaches: fn(&ClassLayout) -> bool,
}

const CONTROLS: [Control; 2] = [
    Control {
        trigger: "ptrace-control",
        row: "ptrace-write",
        reaches: |l| !l.id.is_transition() && arch::native().regsets(l).iter().any(|m| l.data_lanes().any(|(w, _, _)| m.site(w).is_some())),
    },
    Control { trigger: "rewrite-control", row: "frame-rewrite", reaches: |l| engine::rewritable(l.id) && l.data_lanes().next().is_some() },
];

/// The rows of every control for `layouts` (the available, selected classes).
pub(super) fn rows(layouts: &[ClassLayout], faults: u32, seed: u64) -> Vec<ClassResult> {
    CONTROLS.iter().flat_map(|c| control_rows(c, layouts, faults, seed)).collect()
}

fn control_rows(c: &Control, layouts: &[ClassLayout], faults: u32, seed: u64) -> Vec<ClassResult> {
    let reached: Vec<ClassLayout> = layouts.iter().filter(|l| (c.reaches)(l)).cloned().collect();
    let row = |id: ClassId, status, reason| ClassResult { control: Some(c.row.into()), ..ClassResult::empty(id, status, reason) };
    // Why the trigger cannot run here (ptrace: Yama, qemu-user), if it cannot.
    if let Some((_, why)) = TriggerSet::select(Some(&[c.trigger.to_string()])).skipped().into_iter().next() {
        return reached.iter().map(|l| row(l.id, SelftestStatus::Skipped, Some(why.clone()))).collect();
    }
    let mut plan = Plan {
        layouts: reached.clone(),
        windows: vec![WindowKind::Spin],
        threads: linux::allowed_cpus().len().clamp(1, 4),
        duration: Duration::from_secs(1),
        pattern: Pattern::new(seed),
        spin: 20_000,
        stop_on_first: false,
        stop_on_known: false,
        keep: usize::MAX,
    };
    let mut all: Option<Outcome> = None;
    let started = std::time::Instant::now();
    for _ in 0..MAX_ROUNDS {
        // A round that planted nothing was eaten by the trigger's own start (a tracer process
        // seizing every thread): the next one is twice as long, up to 8 s (measured: under TCG
        // beside other guests, 1 s rounds of ptrace-control over neon and sve planted nothing
        // in 20 rounds). At most a minute in all.
        if started.elapsed() > MAX_CONTROL_TIME {
            break;
        }
        // A fresh trigger each round: its counts are the round's, and rounds add up.
        let triggers = TriggerSet::select(Some(&[c.trigger.to_string()]));
        let fatal = |_: Outcome| eprintln!("regtorture: selftest: the {} control's run met a fault it cannot survive", c.row);
        let o = match engine::run(&plan, &triggers, |_| {}, &fatal) {
            Ok(o) => o,
            Err(e) => return reached.iter().map(|l| row(l.id, SelftestStatus::Skipped, Some(format!("the control's run could not start: {e}")))).collect(),
        };
        match &mut all {
            None => all = Some(o),
            Some(a) => a.merge(o, usize::MAX),
        }
        let a = all.as_ref().expect("a round ran");
        if a.interrupted || reached.iter().all(|l| planted(a, c.trigger, l.id) >= u64::from(faults)) {
            break;
        }
        if reached.iter().all(|l| planted(a, c.trigger, l.id) == 0) {
            plan.duration = (plan.duration * 2).min(Duration::from_secs(8));
        }
    }
    let Some(all) = all else { return Vec::new() };
    reached
        .iter()
        .map(|l| {
            let mut r = row(l.id, SelftestStatus::Tested, None);
            let ours = all.mismatches.iter().filter(|m| m.class == l.id);
            // A window in which a known bug of this kernel struck (riscv64 7.2's FP state lost
            // at rt_sigreturn took every FP register of one) cannot say what became of its
            // plant: not judged, and said so.
            let (known, found): (Vec<_>, Vec<_>) = ours.partition(|m| m.signature.is_some());
            let mut struck: Vec<(u32, u64)> = known.iter().map(|m| (m.thread, m.iteration)).collect();
            struck.sort_unstable();
            struck.dedup();
            if let Some(sig) = known.first().and_then(|m| m.signature.as_ref()) {
                r.note(format!("{} window(s) met the known bug {} ({}): a plant there is not judged", struck.len(), sig.id, sig.name));
            }
            // Each plant was found in its lane (exact), found otherwise (misplaced), not found,
            // or fell in a struck window, which may also have had no plant: of the plants no
            // finding answered, as many as there were struck windows are not judged.
            let plants = planted(&all, c.trigger, l.id);
            let exact = found.iter().filter(|m| one_bit(m)).count() as u64;
            let misplaced = found.len() as u64 - exact;
            let unanswered = plants.saturating_sub(exact + misplaced);
            let unjudged = unanswered.min(struck.len() as u64);
            r.injected = (plants - unjudged) as u32;
            r.detected = exact.min(plants) as u32;
            r.misplaced = misplaced as u32;
            r.missed = (unanswered - unjudged) as u32;
            r.spurious = (exact + misplaced).saturating_sub(plants) as u32;
            r.failures.extend(found.iter().filter(|m| !one_bit(m)).take(5).map(|m| not_its_plant(m)));
            r
        })
        .collect()
}

/// What a finding that is not its plant was: enough to tell a lost write from a stray one.
fn not_its_plant(m: &Mismatch) -> String {
    let how = m.ptrace.as_ref().map_or(String::new(), |p| format!(", {} through {} at a {} stop", p.kind, p.regset, p.stop));
    let first = m.lanes.first().map_or(String::new(), |l| {
        format!(", lane {}: expected {:#018x} observed {:#018x} ({} bits, {:?})", l.lane, l.expected.0, l.observed.0, l.bits_changed, l.reading)
    });
    format!("{} in a {} window: {} lanes differ{how}{first}", m.register, m.window, m.lanes.len())
}

/// A finding of one lane with one bit wrong: what a plant must come back as.
fn one_bit(m: &Mismatch) -> bool {
    m.lanes.len() == 1 && m.lanes[0].bits_changed == 1
}

/// The plants the control's trigger made in windows of `class` (its `planted.<class>` detail).
fn planted(o: &Outcome, trigger: &str, class: ClassId) -> u64 {
    let key = format!("planted.{class}");
    o.triggers.iter().filter(|t| t.name == trigger).flat_map(|t| &t.details).find(|(k, _)| *k == key).map_or(0, |(_, v)| *v as u64)
}
