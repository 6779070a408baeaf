//! A fetch's byte budget: at least one whole batch for any budget of one byte or more, and none
//! at all, only the watermarks, for a budget of 0.

mod common;

use futures::executor::block_on;
use spindle_engine::{Offset, TopicConfig, TopicPartition};

#[test]
fn a_zero_budget_returns_the_watermarks_and_no_batches() {
    let dir = common::temp_dir();
    let engine = common::start(dir.path(), 2);
    let handle = engine.handle();
    block_on(handle.create_topic("budget", 2, TopicConfig::default())).expect("create");
    for p in 0..2 {
        let tp = TopicPartition::new("budget", p);
        for _ in 0..3 {
            block_on(handle.produce_records(&tp, common::records("r", 2))).expect("produce");
        }

        let none = block_on(handle.fetch(common::read_request(&tp, 2, 0))).expect("fetch");
        assert!(none.batches.is_empty(), "partition {p}: {:?}", none.batches);
        assert_eq!(none.high_watermark, Offset(6));
        assert_eq!(none.log_start_offset, Offset(0));

        // One byte still brings the whole batch holding the offset, and only that one.
        let one = block_on(handle.fetch(common::read_request(&tp, 2, 1))).expect("fetch");
        assert_eq!(
            common::decode(&one.batches),
            vec![(2, "r-0".to_owned()), (3, "r-1".to_owned())]
        );
        assert_eq!(one.high_watermark, Offset(6));
    }
}
