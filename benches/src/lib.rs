//! Shared fixtures for the criterion benches (batches of records in the Kafka v2 format).
