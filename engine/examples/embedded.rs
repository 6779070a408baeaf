//! The embedded engine in a few lines: start it, create a topic, produce plain records from a
//! plain thread, read them back, shut down.
//!
//! Run with `cargo run -p spindle-engine --example embedded [DATA_DIR]`; without a directory it
//! uses a fresh temporary one. Run it twice on the same directory to see the records survive.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures::executor::block_on;
use spindle_engine::{
    Engine, EngineConfig, EngineError, FetchRequest, Offset, OffsetSpec, Placement, Record,
    TopicConfig, TopicPartition,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp;
    let data_dir = match std::env::args().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let engine = Engine::start(EngineConfig {
        data_dir: data_dir.clone(),
        shards: 2,
        // Unbound lets the example run on a machine with fewer CPUs than shards.
        placement: Placement::Unbound,
        ..EngineConfig::default()
    })?;
    let handle = engine.handle();

    match block_on(handle.create_topic("greetings", 2, TopicConfig::default())) {
        Ok(_) | Err(EngineError::TopicExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let tp = TopicPartition::new("greetings", 1);

    // Any thread may use a handle: its futures need no particular runtime.
    let producer = {
        let handle = handle.clone();
        let tp = tp.clone();
        std::thread::spawn(move || {
            let records = ["hello", "from", "a plain thread"]
                .into_iter()
                .map(|text| Record {
                    value: Some(Bytes::from(text)),
                    ..Record::default()
                })
                .collect();
            block_on(handle.produce_records(&tp, records))
        })
    };
    let outcome = producer.join().map_err(|_| "producer thread panicked")??;
    println!(
        "produced offsets {}..={} to {tp} in {}",
        outcome.base_offset,
        outcome.last_offset,
        data_dir.display()
    );

    let start = block_on(handle.list_offset(&tp, OffsetSpec::Earliest))?.map_or(Offset(0), |o| o.0);
    let fetched = block_on(handle.fetch(FetchRequest {
        tp: tp.clone(),
        offset: start,
        max_bytes: 1 << 20,
        max_wait: Duration::from_millis(100),
        min_bytes: 1,
        isolation: Default::default(),
    }))?;
    println!(
        "fetched {} batch(es), {} bytes, high watermark {}",
        fetched.batches.len(),
        fetched.bytes(),
        fetched.high_watermark
    );
    for batch in &fetched.batches {
        let mut buf = batch.clone();
        for set in kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf)? {
            for record in set.records {
                let value = record.value.unwrap_or_default();
                println!("  {}: {}", record.offset, String::from_utf8_lossy(&value));
            }
        }
    }

    engine.shutdown()?;
    Ok(())
}
