//! What reading one answer costs, alone: a real-shaped `ListRealTimeQuality` body (one
//! room, five indicators, 60 minutes, as the emulator serves it) decoded the way a run
//! does, many times over, beside serde_json only skipping over the same bytes (the
//! floor of any serde_json reader). Run by `scripts/bench.sh` (`CASES=floor`):
//!
//!     cargo run --release --example bench_decode [ROUNDS]

use std::time::Instant;

use chrono::{TimeDelta, TimeZone, Utc};
use rtcq::api::client::decode_response_with;
use rtcq::api::{Envelope, ResponseMetadata};
use rtcq::domain::ProductType;
use rtcq::run::rows::Answer;

fn main() -> anyhow::Result<()> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 2000,
    };
    let now = Utc
        .with_ymd_and_hms(2026, 11, 25, 12, 0, 10)
        .single()
        .ok_or_else(|| anyhow::anyhow!("bad clock"))?;
    let indicators: Vec<String> = [
        "join_room_success_rate",
        "stall_rate",
        "first_frame_send_success_rate",
        "first_frame_recv_success_rate",
        "network_trans_delay",
    ]
    .map(String::from)
    .to_vec();
    let result = rtcq_emulator::generate(
        "bench-app",
        ProductType::Web,
        Some("room-00001"),
        &[],
        &indicators,
        now - TimeDelta::minutes(60),
        now - TimeDelta::minutes(1),
        now,
    );
    let body = serde_json::to_vec(&Envelope {
        metadata: ResponseMetadata::default(),
        result: Some(result),
    })?;

    let start = Instant::now();
    let mut points = 0usize;
    for _ in 0..rounds {
        let answer = decode_response_with(200, &body, Answer::from_ref)?;
        points += answer.series.iter().map(|s| s.points.len()).sum::<usize>();
    }
    let typed = start.elapsed().as_secs_f64();

    let start = Instant::now();
    for _ in 0..rounds {
        let _: serde::de::IgnoredAny = serde_json::from_slice(&body)?;
    }
    let skipped = start.elapsed().as_secs_f64();

    let per_point = |secs: f64| secs * 1e9 / points.max(1) as f64;
    println!(
        "decode: {} bytes, {} points per answer: {:.0} ns per point ({:.0} MB/s); serde_json skipping the same body: {:.0} ns per point",
        body.len(),
        points / rounds.max(1),
        per_point(typed),
        (body.len() * rounds) as f64 / typed / 1e6,
        per_point(skipped),
    );
    Ok(())
}
