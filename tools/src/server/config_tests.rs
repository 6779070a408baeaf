//! Merging and checking `spindle serve` settings: each layer's precedence, and errors that name
//! the key at fault.

use spindle_net::kafka::SaslMechanism;

use super::*;

fn parse(toml_text: &str) -> Result<FileConfig, String> {
    toml::from_str(toml_text).map_err(|e| e.to_string())
}

#[test]
fn unknown_keys_are_named() {
    let err = parse("[kafka]\nlisen = \"127.0.0.1:1\"\n").unwrap_err();
    assert!(err.contains("lisen"), "{err}");
}

#[test]
fn grpc_settings_are_checked_with_the_rest_unless_the_gateway_is_off() {
    let file = || parse("[grpc]\nruntime_threads = 0\n").unwrap();
    let err = resolve(file(), &ServeArgs::default()).unwrap_err();
    assert_eq!(err.key, "grpc");
    assert!(err.message.contains("runtime_threads"), "{}", err.message);
    let off = ServeArgs {
        grpc_enabled: Some("false".into()),
        ..ServeArgs::default()
    };
    assert!(resolve(file(), &off).is_ok());
    let empty_token =
        parse("[grpc.auth]\ntokens = [{ principal = \"p\", token = \"\", permissions = [] }]\n")
            .unwrap();
    let err = resolve(empty_token, &ServeArgs::default()).unwrap_err();
    assert_eq!(err.key, "grpc");
    assert!(err.message.contains("empty token"), "{}", err.message);
}

#[test]
fn flags_win_over_the_file() {
    let file = parse("[kafka]\nlisten = \"127.0.0.1:1111\"\n").unwrap();
    let args = ServeArgs {
        kafka_listen: Some("127.0.0.1:2222".into()),
        ..ServeArgs::default()
    };
    let (kafka, _) = kafka_config(&file, &args, &EngineConfig::default()).unwrap();
    assert_eq!(kafka.listen.port(), 2222);
    assert_eq!(kafka.advertised_port, 2222);
}

#[test]
fn bad_values_name_their_key() {
    let args = ServeArgs {
        shards: Some("many".into()),
        ..ServeArgs::default()
    };
    let err = engine_config(&FileConfig::default(), &args).unwrap_err();
    assert_eq!(err.key, "--shards");
    let file = parse("placement = \"spread\"\n").unwrap();
    let err = engine_config(&file, &ServeArgs::default()).unwrap_err();
    assert_eq!(err.key, "placement");
    assert!(err.message.contains("pinned, unbound"));
    let file = parse("[kafka]\nlisten = \"0.0.0.0:9092\"\n").unwrap();
    let err = kafka_config(&file, &ServeArgs::default(), &EngineConfig::default()).unwrap_err();
    assert_eq!(err.key, "kafka.advertise");
}

#[test]
fn cpuset_lists_cpus_in_order_and_names_its_key_when_bad() {
    assert_eq!(parse_cpu_list("1"), Ok(vec![1]));
    assert_eq!(parse_cpu_list("3, 0-1"), Ok(vec![3, 0, 1]));
    for bad in [
        "",
        "a",
        "1,,2",
        "2-1",
        "0-1,1",
        "-1",
        "1-",
        "1024",
        "0-99999999999",
    ] {
        assert!(parse_cpu_list(bad).is_err(), "{bad:?} accepted");
    }
    let file = parse("cpuset = \"0,2-3\"\n").unwrap();
    let engine = engine_config(&file, &ServeArgs::default()).unwrap();
    assert_eq!(engine.cpuset, Some(vec![0, 2, 3]));
    let args = ServeArgs {
        cpuset: Some("1".into()),
        ..ServeArgs::default()
    };
    let engine = engine_config(&file, &args).unwrap();
    assert_eq!(engine.cpuset, Some(vec![1]), "the flag wins over the file");
    let args = ServeArgs {
        cpuset: Some("1-0".into()),
        ..ServeArgs::default()
    };
    let err = engine_config(&file, &args).unwrap_err();
    assert_eq!(err.key, "--cpuset");
    assert!(err.message.contains("backwards"), "{}", err.message);
    let file = parse("cpuset = \"one\"\n").unwrap();
    let err = engine_config(&file, &ServeArgs::default()).unwrap_err();
    assert_eq!(err.key, "cpuset");
    assert!(err.message.contains("0,2-3"), "{}", err.message);
}

#[test]
fn shard_memory_is_checked_against_its_minimum_and_the_frame_limit() {
    let args = ServeArgs {
        shard_memory_bytes: Some("1000".into()),
        ..ServeArgs::default()
    };
    let err = engine_config(&FileConfig::default(), &args).unwrap_err();
    assert_eq!(err.key, "shard_memory_bytes");
    let file = parse("shard_memory_bytes = 33554432\n").unwrap();
    let engine = engine_config(&file, &ServeArgs::default()).unwrap();
    assert_eq!(engine.shard_memory_bytes, 32 << 20);
    let err = kafka_config(&file, &ServeArgs::default(), &engine).unwrap_err();
    assert_eq!(err.key, "kafka.max_frame_bytes");
    assert!(
        err.message.contains("shard_memory_bytes"),
        "{}",
        err.message
    );
    let args = ServeArgs {
        max_frame_bytes: Some("8388608".into()),
        ..ServeArgs::default()
    };
    assert!(kafka_config(&file, &args, &engine).is_ok());
}

#[test]
fn connection_limit_comes_from_the_flag_then_the_file_and_refuses_zero() {
    let engine = EngineConfig::default();
    let (kafka, _) = kafka_config(&FileConfig::default(), &ServeArgs::default(), &engine).unwrap();
    assert_eq!(kafka.max_connections_per_shard, 100_000);
    let file = parse("[kafka]\nmax_connections_per_shard = 20000\n").unwrap();
    let (kafka, _) = kafka_config(&file, &ServeArgs::default(), &engine).unwrap();
    assert_eq!(kafka.max_connections_per_shard, 20_000);
    let args = ServeArgs {
        max_connections_per_shard: Some("0".into()),
        ..ServeArgs::default()
    };
    let err = kafka_config(&file, &args, &engine).unwrap_err();
    assert_eq!(err.key, "kafka.max_connections_per_shard");
}

#[test]
fn fetch_cap_comes_from_the_flag_then_the_file_and_refuses_less_than_1_kib() {
    let engine = EngineConfig::default();
    let (kafka, _) = kafka_config(&FileConfig::default(), &ServeArgs::default(), &engine).unwrap();
    assert_eq!(kafka.fetch_max_bytes, 55 << 20);
    let file = parse("[kafka]\nfetch_max_bytes = 1048576\n").unwrap();
    let (kafka, _) = kafka_config(&file, &ServeArgs::default(), &engine).unwrap();
    assert_eq!(kafka.fetch_max_bytes, 1 << 20);
    let args = ServeArgs {
        fetch_max_bytes: Some("100".into()),
        ..ServeArgs::default()
    };
    let err = kafka_config(&file, &args, &engine).unwrap_err();
    assert_eq!(err.key, "kafka.fetch_max_bytes");
    assert!(err.message.contains("1024..="), "{}", err.message);
}

#[test]
fn connections_max_idle_defaults_to_kafkas_ten_minutes_and_refuses_out_of_range() {
    let engine = EngineConfig::default();
    let (kafka, _) = kafka_config(&FileConfig::default(), &ServeArgs::default(), &engine).unwrap();
    assert_eq!(kafka.connections_max_idle_ms, 600_000);
    let file = parse("[kafka]\nconnections_max_idle_ms = 60000\n").unwrap();
    let (kafka, _) = kafka_config(&file, &ServeArgs::default(), &engine).unwrap();
    assert_eq!(kafka.connections_max_idle_ms, 60_000);
    let args = ServeArgs {
        connections_max_idle_ms: Some("999".into()),
        ..ServeArgs::default()
    };
    let err = kafka_config(&file, &args, &engine).unwrap_err();
    assert_eq!(err.key, "kafka.connections_max_idle_ms");
    assert!(err.message.contains("1000..=604800000"), "{}", err.message);
}

#[test]
fn frame_body_timeout_comes_from_the_flag_then_the_file_and_refuses_out_of_range() {
    let engine = EngineConfig::default();
    let (kafka, _) = kafka_config(&FileConfig::default(), &ServeArgs::default(), &engine).unwrap();
    assert_eq!(kafka.frame_body_timeout_ms, 30_000);
    let file = parse("[kafka]\nframe_body_timeout_ms = 5000\n").unwrap();
    let (kafka, _) = kafka_config(&file, &ServeArgs::default(), &engine).unwrap();
    assert_eq!(kafka.frame_body_timeout_ms, 5_000);
    let args = ServeArgs {
        frame_body_timeout_ms: Some("1000".into()),
        ..ServeArgs::default()
    };
    let (kafka, _) = kafka_config(&file, &args, &engine).unwrap();
    assert_eq!(kafka.frame_body_timeout_ms, 1_000);
    for bad in ["0", "3600001"] {
        let args = ServeArgs {
            frame_body_timeout_ms: Some(bad.into()),
            ..ServeArgs::default()
        };
        let err = kafka_config(&file, &args, &engine).unwrap_err();
        assert_eq!(err.key, "kafka.frame_body_timeout_ms");
        assert!(err.message.contains("100..="), "{}", err.message);
    }
    let args = ServeArgs {
        frame_body_timeout_ms: Some("soon".into()),
        ..ServeArgs::default()
    };
    let err = kafka_config(&file, &args, &engine).unwrap_err();
    assert_eq!(err.key, "--frame-body-timeout-ms");
}

#[test]
fn admin_listen_comes_from_the_flag_then_the_file_then_the_default() {
    let default = resolve(FileConfig::default(), &ServeArgs::default()).unwrap();
    assert_eq!(default.admin_listen.to_string(), DEFAULT_ADMIN_LISTEN);
    let file = parse("[admin]\nlisten = \"127.0.0.1:1111\"\n").unwrap();
    let from_file = resolve(file, &ServeArgs::default()).unwrap();
    assert_eq!(from_file.admin_listen.port(), 1111);
    let file = parse("[admin]\nlisten = \"127.0.0.1:1111\"\n").unwrap();
    let args = ServeArgs {
        admin_listen: Some("127.0.0.1:2222".into()),
        ..ServeArgs::default()
    };
    assert_eq!(resolve(file, &args).unwrap().admin_listen.port(), 2222);
    let args = ServeArgs {
        admin_listen: Some("localhost".into()),
        ..ServeArgs::default()
    };
    let err = resolve(FileConfig::default(), &args).unwrap_err();
    assert_eq!(err.key, "--admin-listen");
    let file = parse("[admin]\nlisten = \"nowhere\"\n").unwrap();
    let err = resolve(file, &ServeArgs::default()).unwrap_err();
    assert_eq!(err.key, "admin.listen");
}

#[test]
fn advertise_overrides_the_listen_address() {
    let args = ServeArgs {
        kafka_advertise: Some("broker.example:19092".into()),
        ..ServeArgs::default()
    };
    let (kafka, given) =
        kafka_config(&FileConfig::default(), &args, &EngineConfig::default()).unwrap();
    assert!(given);
    assert_eq!(
        (kafka.advertised_host.as_str(), kafka.advertised_port),
        ("broker.example", 19092)
    );
    assert_eq!(
        parse_host_port("[::1]:9092"),
        Some(("::1".to_owned(), 9092))
    );
    assert_eq!(parse_host_port("host:0"), None);
    assert_eq!(parse_host_port(":9092"), None);
}

#[test]
fn kafka_sasl_takes_its_principals_from_the_grpc_tokens() {
    let tokens = "[[grpc.auth.tokens]]\nprincipal = \"app\"\ntoken = \"s3cret\"\n\
                  permissions = [{ topic = \"*\", ops = [\"read\"] }]\n";
    let file = parse(&format!("[kafka]\nsasl_mechanisms = [\"PLAIN\"]\n{tokens}")).unwrap();
    let config = resolve(file, &ServeArgs::default()).unwrap();
    let sasl = config.kafka.sasl.expect("SASL configured");
    assert_eq!(sasl.mechanisms(), [SaslMechanism::Plain]);
    let app = sasl
        .credentials()
        .by_name_and_secret("app", b"s3cret")
        .unwrap();
    assert!(!app.allows(spindle_engine::access::Operation::Write, "t"));
    assert!(resolve(parse("").unwrap(), &ServeArgs::default())
        .unwrap()
        .kafka
        .sasl
        .is_none());

    // Without tokens there is no one to authenticate as.
    let file = parse("[kafka]\nsasl_mechanisms = [\"PLAIN\"]\n").unwrap();
    let err = resolve(file, &ServeArgs::default()).unwrap_err();
    assert_eq!(err.key, "kafka.sasl_mechanisms");
    assert!(err.message.contains("grpc.auth.tokens"), "{}", err.message);

    // The flag wins over the file, empty turns SASL off, and an unknown name is refused.
    let file = || parse(&format!("[kafka]\nsasl_mechanisms = [\"PLAIN\"]\n{tokens}")).unwrap();
    let off = ServeArgs {
        kafka_sasl_mechanisms: Some(String::new()),
        ..ServeArgs::default()
    };
    assert!(resolve(file(), &off).unwrap().kafka.sasl.is_none());
    let scram = ServeArgs {
        kafka_sasl_mechanisms: Some("PLAIN, SCRAM-SHA-256".into()),
        ..ServeArgs::default()
    };
    let both = resolve(file(), &scram).unwrap().kafka.sasl.unwrap();
    assert_eq!(
        both.mechanisms(),
        [SaslMechanism::Plain, SaslMechanism::ScramSha256]
    );
    let gssapi = ServeArgs {
        kafka_sasl_mechanisms: Some("GSSAPI".into()),
        ..ServeArgs::default()
    };
    let err = resolve(file(), &gssapi).unwrap_err();
    assert_eq!(err.key, "--kafka-sasl-mechanisms");
    assert!(err.message.contains("allowed: PLAIN"), "{}", err.message);
}

#[test]
fn kafka_tls_names_the_file_it_cannot_use() {
    let file = parse(
        "[kafka.tls]\ncert_path = \"/nonexistent/server.pem\"\nkey_path = \"/nonexistent/server.key\"\n",
    )
    .unwrap();
    let err = resolve(file, &ServeArgs::default()).unwrap_err();
    assert_eq!(err.key, "kafka.tls");
    assert!(
        err.message.contains("/nonexistent/server.pem"),
        "{}",
        err.message
    );
    assert!(
        parse("[kafka.tls]\ncert_path = \"a.pem\"\n").is_err(),
        "key_path is required"
    );
    // A client CA that cannot be read is named too (it is read before the server's files).
    let file = parse(
        "[kafka.tls]\ncert_path = \"a.pem\"\nkey_path = \"a.key\"\n\
         client_ca_path = \"/nonexistent/clients-ca.pem\"\n",
    )
    .unwrap();
    let err = resolve(file, &ServeArgs::default()).unwrap_err();
    assert_eq!(err.key, "kafka.tls");
    assert!(
        err.message.contains("/nonexistent/clients-ca.pem"),
        "{}",
        err.message
    );
}

#[test]
fn offsets_retention_is_seven_days_unless_set_and_minus_one_keeps_offsets_forever() {
    let retention = |toml: &str, flag: Option<&str>| {
        let args = ServeArgs {
            offsets_retention_ms: flag.map(str::to_owned),
            ..ServeArgs::default()
        };
        engine_config(&parse(toml).unwrap(), &args).map(|e| e.offsets_retention)
    };
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    assert_eq!(retention("", None).unwrap(), Some(week));
    assert_eq!(
        retention("offsets_retention_ms = -1\n", None).unwrap(),
        None
    );
    let minute = std::time::Duration::from_secs(60);
    assert_eq!(
        retention("offsets_retention_ms = -1\n", Some("60000")).unwrap(),
        Some(minute)
    );
    let err = retention("offsets_retention_ms = 0\n", None).unwrap_err();
    assert_eq!(err.key, "offsets_retention_ms");
    assert!(err.message.contains("-1 (forever)"), "{}", err.message);
    assert_eq!(
        retention("", Some("soon")).unwrap_err().key,
        "--offsets-retention-ms"
    );
}

#[test]
fn kafka_quotas_are_read_and_checked() {
    let file = parse(
        "[[kafka.quotas]]\nclient_id = \"loader\"\nproducer_byte_rate = 1048576\n\
         [[kafka.quotas]]\nuser = \"app\"\nconsumer_byte_rate = 2048\nproducer_byte_rate = 10\n",
    )
    .unwrap();
    let quotas = resolve(file, &ServeArgs::default()).unwrap().kafka.quotas;
    assert_eq!(quotas.len(), 2);
    assert_eq!(quotas[0].client_id.as_deref(), Some("loader"));
    assert_eq!(quotas[0].producer_byte_rate, Some(1_048_576));
    assert_eq!(quotas[1].user.as_deref(), Some("app"));
    assert_eq!(quotas[1].consumer_byte_rate, Some(2048));

    let refused = |text: &str| resolve(parse(text).unwrap(), &ServeArgs::default()).unwrap_err();
    let err = refused("[[kafka.quotas]]\nclient_id = \"x\"\n");
    assert_eq!(err.key, "kafka.quotas[0]");
    assert!(err.message.contains("sets no rate"), "{}", err.message);
    let err = refused("[[kafka.quotas]]\nproducer_byte_rate = 0\n");
    assert!(err.message.contains("at least 1"), "{}", err.message);
    let err = refused(
        "[[kafka.quotas]]\nuser = \"a\"\nproducer_byte_rate = 5\n\
         [[kafka.quotas]]\nuser = \"a\"\nconsumer_byte_rate = 5\n",
    );
    assert_eq!(err.key, "kafka.quotas[1]");
    assert!(err.message.contains("already"), "{}", err.message);
    assert!(
        parse("[[kafka.quotas]]\nproducer_rate = 5\n").is_err(),
        "unknown key"
    );
}

#[test]
fn the_initial_rebalance_delay_is_a_second_unless_set_and_at_most_thirty_minutes() {
    let delay = |toml: &str, flag: Option<&str>| {
        let args = ServeArgs {
            group_initial_rebalance_delay_ms: flag.map(str::to_owned),
            ..ServeArgs::default()
        };
        engine_config(&parse(toml).unwrap(), &args).map(|e| e.group_initial_rebalance_delay)
    };
    let ms = std::time::Duration::from_millis;
    assert_eq!(delay("", None).unwrap(), ms(1_000));
    assert_eq!(
        delay("group_initial_rebalance_delay_ms = 0\n", None).unwrap(),
        ms(0)
    );
    assert_eq!(
        delay("group_initial_rebalance_delay_ms = 0\n", Some("3000")).unwrap(),
        ms(3_000)
    );
    let err = delay("group_initial_rebalance_delay_ms = 1800001\n", None).unwrap_err();
    assert_eq!(err.key, "group_initial_rebalance_delay_ms");
    assert!(err.message.contains("0..=1800000"), "{}", err.message);
    assert_eq!(
        delay("", Some("-1")).unwrap_err().key,
        "--group-initial-rebalance-delay-ms"
    );
}

#[test]
fn consumer_protocol_members_have_kafkas_session_and_heartbeat_unless_set() {
    let timing = |toml: &str, session: Option<&str>| {
        let args = ServeArgs {
            group_consumer_session_timeout_ms: session.map(str::to_owned),
            ..ServeArgs::default()
        };
        engine_config(&parse(toml).unwrap(), &args).map(|e| {
            let t = e.group_consumer_timing;
            (
                t.session_timeout.as_millis(),
                t.heartbeat_interval.as_millis(),
            )
        })
    };
    assert_eq!(timing("", None).unwrap(), (45_000, 5_000));
    let short =
        "group_consumer_session_timeout_ms = 10000\ngroup_consumer_heartbeat_interval_ms = 1000\n";
    assert_eq!(timing(short, None).unwrap(), (10_000, 1_000));
    // The flag wins over the file, and the interval must stay below the session it sets.
    let err = timing(short, Some("1000")).unwrap_err();
    assert_eq!(err.key, "group_consumer_heartbeat_interval_ms");
    assert!(
        err.message.contains("less than the session timeout (1000)"),
        "{}",
        err.message
    );
    let err = timing("group_consumer_session_timeout_ms = 999\n", None).unwrap_err();
    assert_eq!(err.key, "group_consumer_session_timeout_ms");
    let err = timing("group_consumer_heartbeat_interval_ms = 50\n", None).unwrap_err();
    assert_eq!(err.key, "group_consumer_heartbeat_interval_ms");
}

#[test]
fn groups_move_between_protocols_both_ways_unless_the_policy_says_otherwise() {
    use spindle_engine::group::consumer_group::MigrationPolicy;
    let policy = |toml: &str, flag: Option<&str>| {
        let args = ServeArgs {
            group_consumer_migration_policy: flag.map(str::to_owned),
            ..ServeArgs::default()
        };
        engine_config(&parse(toml).unwrap(), &args).map(|e| e.group_consumer_migration_policy)
    };
    assert_eq!(policy("", None).unwrap(), MigrationPolicy::Bidirectional);
    let upgrade = "group_consumer_migration_policy = \"upgrade\"\n";
    assert_eq!(policy(upgrade, None).unwrap(), MigrationPolicy::Upgrade);
    assert_eq!(
        policy(upgrade, Some("DISABLED")).unwrap(),
        MigrationPolicy::Disabled
    );
    let err = policy("group_consumer_migration_policy = \"both\"\n", None).unwrap_err();
    assert_eq!(err.key, "group_consumer_migration_policy");
    assert!(
        err.message
            .contains("\"both\": allowed: disabled, upgrade, downgrade, bidirectional"),
        "{}",
        err.message
    );
}

#[test]
fn idle_poll_is_off_by_default_bounded_and_for_pinned_shards_only() {
    let engine = engine_config(&FileConfig::default(), &ServeArgs::default()).unwrap();
    assert_eq!(engine.spin_before_park_us, None);
    let file = parse("idle_poll_us = 50\n").unwrap();
    assert_eq!(
        engine_config(&file, &ServeArgs::default())
            .unwrap()
            .spin_before_park_us,
        Some(50)
    );
    let args = ServeArgs {
        idle_poll_us: Some("0".into()),
        ..ServeArgs::default()
    };
    assert_eq!(
        engine_config(&file, &args).unwrap().spin_before_park_us,
        None,
        "the flag wins over the file"
    );
    let args = ServeArgs {
        idle_poll_us: Some("20000".into()),
        ..ServeArgs::default()
    };
    let err = engine_config(&FileConfig::default(), &args).unwrap_err();
    assert_eq!(err.key, "idle_poll_us");
    assert!(err.message.contains("0..=10000"), "{}", err.message);
    let args = ServeArgs {
        idle_poll_us: Some("fast".into()),
        ..ServeArgs::default()
    };
    let err = engine_config(&FileConfig::default(), &args).unwrap_err();
    assert_eq!(err.key, "--idle-poll-us");
    let file = parse("idle_poll_us = 50\nplacement = \"unbound\"\n").unwrap();
    let err = engine_config(&file, &ServeArgs::default()).unwrap_err();
    assert_eq!(err.key, "idle_poll_us");
    assert!(err.message.contains("pinned"), "{}", err.message);
}
