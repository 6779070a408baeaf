//! Offset index lookup in a full segment's sparse index.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use spindle_log::SegmentIndex;

/// Entries of a 1 GiB segment indexed every 4 KiB.
const ENTRIES: u32 = 262_144;

fn lookup(c: &mut Criterion) {
    let mut index = SegmentIndex::default();
    for i in 0..ENTRIES {
        index.push(i * 4 + 1, i * 4096 + 4096, i64::from(i));
    }
    let mut g = c.benchmark_group("offset_index");
    g.bench_function("lookup_262k_entries", |b| {
        let mut probe: u32 = 12_345;
        b.iter(|| {
            probe = probe.wrapping_mul(1_103_515_245).wrapping_add(12_345) % (ENTRIES * 4);
            black_box(index.entry_for(black_box(probe)))
        });
    });
    g.bench_function("timestamp_lookup_262k_entries", |b| {
        let mut probe: i64 = 777;
        b.iter(|| {
            probe = (probe * 48_271) % i64::from(ENTRIES);
            black_box(index.entry_for_timestamp(black_box(probe)))
        });
    });
    g.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
