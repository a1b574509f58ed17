//! The first-use reader's control (`first-use`): a value planted in a unit the thread has not
//! used yet must be read back as another process's, in exactly its lane.

use std::time::{Duration, Instant};

use super::{LEAK_STRIDE, leak_lanes, process1_value};
use crate::class::ClassLayout;
use crate::pattern::{Pattern, mix64};
use crate::plan::Plan;
use crate::schema::{ClassResult, SelftestStatus};

/// The first-use reader's control (`first-use`), where the backend has one for the class:
/// `faults` fresh threads each load the unit with zeros but one lane, which holds process 1's
/// value, and read it with the first-use reader; the sorting must report exactly that lane as
/// another process's.
pub(super) fn first_use_control(layout: &ClassLayout, faults: u32, seed: u64) -> Option<ClassResult> {
    let zeros = vec![0u64; layout.words];
    let class = layout.id;
    crate::arch::native().first_use_control(class, &zeros)?;
    crate::leak::set_process(0, LEAK_STRIDE);
    let plan = Plan {
        layouts: vec![layout.clone()],
        windows: vec![],
        threads: 1,
        duration: Duration::ZERO,
        pattern: Pattern::new(seed),
        spin: 0,
        stop_on_first: false,
        stop_on_known: false,
        keep: 0,
    };
    let mut state = seed ^ 0x000f_1757_u64;
    let mut rnd = move || {
        state = mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
        state
    };
    let lanes: Vec<(usize, usize)> = leak_lanes(layout).collect();
    let mut r = ClassResult { control: Some("first-use".into()), ..ClassResult::empty(class, SelftestStatus::Tested, None) };
    let mut latencies = Vec::new();
    for _ in 0..faults {
        let (reg, lane) = lanes[(rnd() % lanes.len() as u64) as usize];
        let mut values = zeros.clone();
        values[layout.regs[reg].offset / 8 + lane] = process1_value(layout, &plan.pattern, reg, lane);
        let t0 = Instant::now();
        let read = std::thread::spawn(move || crate::arch::native().first_use_control(class, &values)).join().ok().flatten();
        r.injected += 1;
        let Some(read) = read else {
            r.missed += 1;
            r.note("the first-use reader did not run".into());
            continue;
        };
        let (leaks, stale) = crate::leak::classify_first_use(&plan, layout, crate::leak::ident(0), &read);
        let name = &layout.regs[reg].name;
        match (leaks.as_slice(), stale.is_empty()) {
            ([l], true) if &l.register == name && l.lane as usize == lane => {
                r.detected += 1;
                latencies.push(t0.elapsed().as_secs_f64() * 1e6);
            }
            ([], true) => {
                r.missed += 1;
                r.note(format!("{name} lane {lane}: process 1's value planted, nothing reported"));
            }
            _ => {
                r.misplaced += 1;
                let got: Vec<String> = leaks.iter().chain(&stale).map(|l| format!("{} lane {}: {}", l.register, l.lane, l.reading)).collect();
                r.note(format!("{name} lane {lane}: process 1's value planted, reported {got:?}"));
            }
        }
    }
    crate::leak::set_process(0, 0);
    latencies.sort_by(|a, b| a.total_cmp(b));
    r.median_latency_us = latencies.get(latencies.len() / 2).copied().unwrap_or(0.0);
    Some(r)
}
