//! What writing one slot file costs, alone: 2,000 rooms x 10 series x 10 points (a
//! 5-minute slot of the throughput benchmark) pushed through the Parquet encoder a run
//! uses, with the file's settings (dictionary, page statistics, ZSTD 3). Run by
//! `scripts/bench.sh` (`CASES=floor`):
//!
//!     cargo run --release --example bench_encode [ROUNDS]

use std::time::Instant;

use chrono::{TimeDelta, TimeZone, Utc};
use rtcq::domain::ProductType;
use rtcq::plan::Slot;
use rtcq::sink::{FileMeta, RowRef, SlotEncoder};

const SERIES: [&str; 10] = [
    "10s_join_room_success_rate",
    "5s_join_room_success_rate",
    "audio_first_frame_recv_success_rate",
    "audio_first_frame_send_success_rate",
    "audio_network_trans_delay",
    "audio_stall_rate",
    "video_first_frame_recv_success_rate",
    "video_first_frame_send_success_rate",
    "video_network_trans_delay",
    "video_stall_rate",
];

fn main() -> anyhow::Result<()> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 5,
    };
    let start = Utc
        .with_ymd_and_hms(2026, 11, 25, 11, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("bad clock"))?;
    let meta = FileMeta {
        pipeline: "bench".into(),
        slot: Slot {
            start,
            end: start + TimeDelta::minutes(5),
        },
    };
    let rooms: Vec<String> = (0..2000).map(|i| format!("room-{i:05}")).collect();
    let t0 = start.timestamp_micros();
    let began = Instant::now();
    let (mut rows, mut bytes) = (0usize, 0usize);
    for _ in 0..rounds {
        let mut enc = SlotEncoder::new(&meta)?;
        let mut n = 0u64;
        for room in &rooms {
            for name in SERIES {
                for k in 0..10 {
                    enc.push(RowRef {
                        room_id: Some(room),
                        user_id: None,
                        product_type: ProductType::Web,
                        indicator: name,
                        unit: "%",
                        timestamp_us: t0 + k * 30_000_000,
                        value: 90.0 + ((n * 7919) % 1000) as f64 / 100.0,
                        stream_id: None,
                        interval_s: 30,
                    })?;
                    n += 1;
                }
            }
        }
        let (file, count) = enc.finish()?;
        rows += count;
        bytes = file.len();
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "encode: {} rows per file, {} bytes: {:.0} ns per row",
        rows / rounds.max(1),
        bytes,
        secs * 1e9 / rows.max(1) as f64
    );
    Ok(())
}
