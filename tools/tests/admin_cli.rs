//! End-to-end tests of the admin commands (`spindle topic|group|cluster …`): the real
//! `spindle` binary, run as a subprocess against a real `spindle serve` started from the same
//! binary on free loopback ports, with real records and a real consumer group made by kcat
//! (librdkafka).
//!
//! Each test starts its own server in its own data directory and stops it with SIGTERM by its
//! PID when the test ends (also when it fails). Outcomes are the exit status, stdout and
//! stderr: 0 on success, 1 with a `spindle: …` line naming what failed, 2 for usage errors.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use spindle_server::{free_port, stop, Certificates, Server};

mod spindle_server;

/// How long the consumer may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for a consumer group to settle.
const GROUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What one command gave: its exit status, stdout and stderr.
#[derive(Debug)]
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn ok(self) -> String {
        assert_eq!(self.code, 0, "command failed: {}", self.stderr);
        self.stdout
    }

    /// Asserts the command failed with exit status 1 and said `what` on stderr.
    fn fails_with(self, what: &str) {
        assert_eq!(self.code, 1, "{self:?}");
        assert!(self.stderr.contains(what), "{}", self.stderr);
    }

    fn json(self) -> Value {
        let text = self.ok();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// Runs the real `spindle ARGS… --bootstrap ADDR`.
fn spindle(bootstrap: &str, args: &[&str]) -> Outcome {
    run(Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(args)
        .args(["--bootstrap", bootstrap]))
}

/// Runs `command` with no bootstrap from the environment; its exit status and output.
fn run(command: &mut Command) -> Outcome {
    let output = command.env_remove("SPINDLE_BOOTSTRAP").output().unwrap();
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn with_events(counts: [usize; 2]) -> Server {
    let server = Server::start_with("admin", &[]);
    spindle(
        &server.kafka,
        &["topic", "create", "events", "--partitions", "2"],
    )
    .ok();
    for (partition, count) in (0..).zip(counts) {
        produce(&server.kafka, "events", partition, count);
    }
    server
}

/// Produces `count` records to `topic` partition `partition` with kcat.
fn produce(bootstrap: &str, topic: &str, partition: i32, count: usize) {
    let records: String = (0..count).map(|i| format!("record-{i}\n")).collect();
    let mut kcat = Command::new("kcat")
        .args([
            "-b",
            bootstrap,
            "-t",
            topic,
            "-p",
            &partition.to_string(),
            "-P",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat must be installed (scripts/test-deps installs it)");
    std::io::Write::write_all(&mut kcat.stdin.take().unwrap(), records.as_bytes()).unwrap();
    assert!(kcat.wait().unwrap().success(), "kcat could not produce");
}

fn partition_field(doc: &Value, partition: i64, field: &str) -> Value {
    doc["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partition"] == partition)
        .unwrap_or_else(|| panic!("no partition {partition} in {doc}"))[field]
        .clone()
}

#[test]
fn topic_create_list_describe_alter_delete() {
    let server = Server::start_with("admin", &[]);
    let b = server.kafka.as_str();

    let created = spindle(
        b,
        &[
            "topic",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=86400000",
        ],
    )
    .ok();
    assert!(
        created.contains("created topic orders with 3 partition(s)"),
        "{created}"
    );

    let list = spindle(b, &["topic", "list", "--json"]).json();
    let orders = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "orders")
        .unwrap_or_else(|| panic!("orders not listed: {list}"));
    assert_eq!(orders["partitions"], 3);

    produce(b, "orders", 1, 4);
    let described = spindle(b, &["topic", "describe", "orders", "--json"]).json();
    assert_eq!(described["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(partition_field(&described, 1, "start_offset"), 0);
    assert_eq!(partition_field(&described, 1, "end_offset"), 4);
    assert_eq!(partition_field(&described, 0, "end_offset"), 0);
    assert_eq!(
        partition_field(&described, 1, "stable_offset"),
        4,
        "no transaction open: the end"
    );
    let topic_id = described["topic_id"]
        .as_str()
        .expect("a topic id")
        .to_owned();
    assert_eq!(topic_id.len(), 22, "Kafka's form: {topic_id}");
    let table = spindle(b, &["topic", "describe", "orders"]).ok();
    assert!(table.contains(&format!("TopicId: {topic_id}")), "{table}");
    assert!(table.contains("PARTITION  LEADER"), "{table}");

    let altered = spindle(
        b,
        &[
            "topic",
            "alter",
            "orders",
            "--set",
            "retention.ms=1000",
            "--partitions",
            "4",
        ],
    )
    .ok();
    assert!(altered.contains("set retention.ms=1000"), "{altered}");
    let described = spindle(b, &["topic", "describe", "orders", "--json"]).json();
    assert_eq!(described["partitions"].as_array().unwrap().len(), 4);
    let retention = described["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .unwrap_or_else(|| panic!("no retention.ms in {described}"));
    assert_eq!(retention["value"], "1000");

    let deleted = spindle(b, &["topic", "delete", "orders"]).ok();
    assert!(deleted.contains("deleted topic orders"), "{deleted}");
    let list = spindle(b, &["topic", "list", "--json"]).json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != "orders"),
        "{list}"
    );
}

#[test]
fn delete_records_moves_the_start_of_the_chosen_partitions() {
    let server = with_events([10, 5]);
    let b = server.kafka.as_str();

    let one = spindle(
        b,
        &[
            "topic",
            "delete-records",
            "events",
            "--before",
            "4",
            "--partition",
            "0",
            "--json",
        ],
    )
    .json();
    assert_eq!(
        one,
        serde_json::json!([{"topic": "events", "partition": 0, "start_offset": 4}])
    );
    let described = spindle(b, &["topic", "describe", "events", "--json"]).json();
    assert_eq!(partition_field(&described, 0, "start_offset"), 4);
    assert_eq!(partition_field(&described, 1, "start_offset"), 0);

    let table = spindle(b, &["topic", "delete-records", "events", "--before", "end"]).ok();
    assert_eq!(
        table,
        "PARTITION  START\n        0     10\n        1      5\n"
    );

    let past_end = spindle(b, &["topic", "delete-records", "events", "--before", "99"]);
    assert_eq!(past_end.code, 1, "{past_end:?}");
    assert!(past_end.stderr.contains("events-0"), "{}", past_end.stderr);
    let no_partition = spindle(
        b,
        &[
            "topic",
            "delete-records",
            "events",
            "--before",
            "1",
            "--partition",
            "7",
        ],
    );
    assert_eq!(no_partition.code, 1);
    assert_eq!(
        no_partition.stderr,
        "spindle: topic events has no partition 7\n"
    );
    let bad_offset = spindle(b, &["topic", "delete-records", "events", "--before", "-3"]);
    assert_eq!(bad_offset.code, 2, "{bad_offset:?}");
}

#[test]
fn errors_name_what_is_wrong_and_exit_non_zero() {
    let server = Server::start_with("admin", &[]);
    let b = server.kafka.as_str();

    let unknown = spindle(b, &["topic", "describe", "no-such-topic"]);
    assert_eq!(unknown.code, 1);
    assert_eq!(unknown.stderr, "spindle: unknown topic: no-such-topic\n");
    assert_eq!(unknown.stdout, "");
    spindle(b, &["topic", "delete", "no-such-topic"]).fails_with("no-such-topic");

    for wrong in [
        &["topic", "create"][..],
        &["topic", "alter", "orders"],
        &["topic", "create", "t", "--partitions", "zero"],
        &["group", "reset-offsets", "g", "--topic", "t"],
        &["topic", "frobnicate"],
    ] {
        let outcome = spindle(b, wrong);
        assert_eq!(outcome.code, 2, "{wrong:?}: {outcome:?}");
        assert!(
            outcome.stderr.starts_with("error: "),
            "{wrong:?}: {outcome:?}"
        );
    }

    spindle(b, &["topic", "create", "twice"]).ok();
    spindle(b, &["topic", "create", "twice"]).fails_with("TOPIC_ALREADY_EXISTS");
    let tolerated = spindle(
        b,
        &["topic", "create", "twice", "--if-not-exists", "--json"],
    )
    .json();
    assert_eq!(tolerated["created"], false, "{tolerated}");
    let skipped = spindle(
        b,
        &["topic", "delete", "no-such-topic", "twice", "--if-exists"],
    )
    .ok();
    assert_eq!(skipped, "deleted topic twice\n");

    let closed = format!("127.0.0.1:{}", free_port());
    let fallback = format!("{closed},{b}");
    spindle(&fallback, &["cluster", "info"]).ok();

    spindle(&closed, &["cluster", "info"])
        .fails_with(&format!("cannot reach a Kafka server at {closed}"));
}

#[test]
fn cluster_info_names_the_node() {
    let server = Server::start_with("admin", &[]);
    let info = spindle(&server.kafka, &["cluster", "info", "--json"]).json();
    let brokers = info["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1, "{info}");
    let port: u16 = server.kafka.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(brokers[0]["port"], port);
    assert_eq!(info["controller_id"], brokers[0]["node_id"]);
    assert!(info["cluster_id"].is_string(), "{info}");
    let table = spindle(&server.kafka, &["cluster", "info"]).ok();
    assert!(table.starts_with("Cluster: "), "{table}");
}

#[test]
fn group_offsets_lag_and_reset() {
    let server = with_events([5, 3]);
    let b = server.kafka.as_str();

    // Commit offsets for a group with no members (the admin path: generation -1).
    let plan = spindle(
        b,
        &[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "events",
            "--to-offset",
            "2",
            "--execute",
            "--json",
        ],
    )
    .json();
    assert_eq!(plan["executed"], true);
    assert_eq!(partition_field(&plan, 0, "new_offset"), 2);

    let groups = spindle(b, &["group", "list", "--json"]).json();
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["group"] == "audit" && g["group_type"] == "classic"),
        "{groups}"
    );
    let table = spindle(b, &["group", "list"]);
    assert!(
        table.stdout.lines().any(|l| l.starts_with("audit")
            && l.split_whitespace().collect::<Vec<_>>() == ["audit", "Empty", "classic", "-"]),
        "{}",
        table.stdout
    );

    let described = spindle(b, &["group", "describe", "audit", "--json"]).json();
    let lag = |doc: &Value, partition: i64| {
        doc["offsets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["topic"] == "events" && o["partition"] == partition)
            .unwrap_or_else(|| panic!("no events-{partition} in {doc}"))["lag"]
            .clone()
    };
    assert_eq!(lag(&described, 0), 3, "{described}");
    assert_eq!(lag(&described, 1), 1, "{described}");

    let dry = spindle(
        b,
        &[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "events",
            "--to-earliest",
        ],
    )
    .ok();
    assert!(dry.contains("dry run: nothing changed"), "{dry}");
    let described = spindle(b, &["group", "describe", "audit", "--json"]).json();
    assert_eq!(
        lag(&described, 0),
        3,
        "a dry run changed the offsets: {described}"
    );

    spindle(
        b,
        &[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "events",
            "--to-earliest",
            "--execute",
        ],
    )
    .ok();
    let described = spindle(b, &["group", "describe", "audit", "--json"]).json();
    assert_eq!(lag(&described, 0), 5, "{described}");
    assert_eq!(lag(&described, 1), 3, "{described}");

    spindle(
        b,
        &[
            "group",
            "reset-offsets",
            "audit",
            "--topic",
            "events",
            "--to-latest",
            "--execute",
        ],
    )
    .ok();
    let described = spindle(b, &["group", "describe", "audit", "--json"]).json();
    assert_eq!(lag(&described, 0), 0, "{described}");

    let table = spindle(b, &["group", "describe", "audit"]).ok();
    assert!(
        table.contains("TOPIC   PARTITION  COMMITTED  END  LAG  MEMBER"),
        "{table}"
    );
    spindle(b, &["group", "describe", "nobody"]).fails_with("unknown group: nobody");
}

#[test]
fn reset_to_a_timestamp_finds_the_first_record_at_or_after_it() {
    let server = Server::start_with("admin", &[]);
    let b = server.kafka.as_str();
    spindle(b, &["topic", "create", "ticks", "--partitions", "1"]).ok();
    produce(b, "ticks", 0, 3);
    // Records carry their producer's clock in milliseconds: leave a clear gap around `middle`.
    std::thread::sleep(Duration::from_millis(100));
    let middle = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    std::thread::sleep(Duration::from_millis(100));
    produce(b, "ticks", 0, 2);

    let reset = |to: &[&str]| {
        let mut args = vec![
            "group",
            "reset-offsets",
            "clock",
            "--topic",
            "ticks",
            "--json",
        ];
        args.extend_from_slice(to);
        partition_field(&spindle(b, &args).json(), 0, "new_offset")
    };
    assert_eq!(reset(&["--to-timestamp", &middle]), 3);
    assert_eq!(reset(&["--to-timestamp", "0"]), 0);
    assert_eq!(reset(&["--to-timestamp", "99999999999999"]), 5);
    assert_eq!(reset(&["--to-offset", "4"]), 4);
    assert_eq!(reset(&["--to-offset", "1000"]), 5);
}

#[test]
fn a_live_group_shows_its_members_and_refuses_a_reset() {
    let server = Server::start_with("admin", &[]);
    let b = server.kafka.as_str();
    spindle(b, &["topic", "create", "clicks", "--partitions", "2"]).ok();
    produce(b, "clicks", 0, 2);
    let mut consumer = Command::new("kcat")
        .args(["-b", b, "-G", "dashboard", "clicks", "-q"])
        .args(["-X", "group.instance.id=dashboard-1"])
        .stdout(Stdio::null())
        .spawn()
        .expect("kcat must be installed (scripts/test-deps installs it)");

    let deadline = Instant::now() + GROUP_TIMEOUT;
    let described = loop {
        let outcome = spindle(b, &["group", "describe", "dashboard", "--json"]);
        if outcome.code == 0 {
            let doc: Value = serde_json::from_str(&outcome.stdout).unwrap();
            if doc["state"] == "Stable" {
                break doc;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the group never became stable: {outcome:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let members = described["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{described}");
    assert_eq!(
        members[0]["group_instance_id"], "dashboard-1",
        "{described}"
    );
    let table = spindle(b, &["group", "describe", "dashboard"]).ok();
    assert!(
        table.contains("INSTANCE") && table.contains("dashboard-1"),
        "{table}"
    );
    let assignment = members[0]["assignment"].as_array().unwrap();
    assert_eq!(assignment[0]["topic"], "clicks", "{described}");
    assert_eq!(
        assignment[0]["partitions"],
        serde_json::json!([0, 1]),
        "{described}"
    );

    spindle(
        b,
        &[
            "group",
            "reset-offsets",
            "dashboard",
            "--topic",
            "clicks",
            "--to-earliest",
            "--execute",
        ],
    )
    .fails_with("group dashboard is Stable");
    stop(&mut consumer, STOP_TIMEOUT);
}

#[test]
fn group_delete_offsets_and_delete() {
    let server = with_events([5, 3]);
    let b = server.kafka.as_str();
    let reset = [
        "group",
        "reset-offsets",
        "audit",
        "--topic",
        "events",
        "--to-latest",
        "--execute",
    ];
    spindle(b, &reset).ok();
    let committed = |b: &str| -> Vec<i64> {
        let described = spindle(b, &["group", "describe", "audit", "--json"]).json();
        described["offsets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| !o["committed_offset"].is_null())
            .map(|o| o["partition"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(committed(b), vec![0, 1]);

    let deleted = spindle(
        b,
        &[
            "group",
            "delete-offsets",
            "audit",
            "--topic",
            "events",
            "-p",
            "1",
            "--json",
        ],
    )
    .json();
    assert_eq!(
        deleted,
        serde_json::json!([{"topic": "events", "partition": 1}])
    );
    assert_eq!(committed(b), vec![0]);
    spindle(
        b,
        &[
            "group",
            "delete-offsets",
            "audit",
            "--topic",
            "events",
            "-p",
            "7",
        ],
    )
    .fails_with("topic events has no partition 7");

    let table = spindle(b, &["group", "delete", "audit"]).ok();
    assert_eq!(table, "deleted group audit\n");
    spindle(b, &["group", "delete", "audit"]).fails_with("unknown group: audit");
    spindle(
        b,
        &["group", "delete-offsets", "audit", "--topic", "events"],
    )
    .fails_with("unknown group: audit");
}

/// The topic names of a `topic list --json` answer.
fn topic_names(listed: &Value) -> Vec<&str> {
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

/// Runs `spindle ARGS… --bootstrap ADDR` as `user` with SASL `mechanism`, the password from
/// the environment.
fn spindle_as(
    bootstrap: &str,
    mechanism: &str,
    user: &str,
    password: &str,
    args: &[&str],
) -> Outcome {
    run(Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(args)
        .args(["--bootstrap", bootstrap, "--sasl-username", user])
        .args(["--sasl-mechanism", mechanism])
        .env("SPINDLE_SASL_PASSWORD", password))
}

#[test]
fn admin_commands_authenticate_with_sasl_and_see_what_their_grants_allow() {
    let server = Server::start_sasl("admin-sasl", "PLAIN,SCRAM-SHA-512");
    let kafka = &server.kafka;
    for topic in ["app.events", "billing"] {
        spindle_as(
            kafka,
            "PLAIN",
            "ops",
            "ops-token",
            &["topic", "create", topic],
        )
        .ok();
    }
    for mechanism in ["PLAIN", "SCRAM-SHA-512"] {
        let listed = spindle_as(
            kafka,
            mechanism,
            "app",
            "app-token",
            &["topic", "list", "--json"],
        )
        .json();
        let names = topic_names(&listed);
        assert_eq!(names, ["app.events"], "{mechanism}: {listed}");
        spindle_as(
            kafka,
            mechanism,
            "app",
            "app-token",
            &["topic", "create", "app.more"],
        )
        .fails_with("TOPIC_AUTHORIZATION_FAILED");
        spindle_as(kafka, mechanism, "app", "wrong", &["topic", "list"])
            .fails_with("SASL_AUTHENTICATION_FAILED");
    }
    // A mechanism the listener does not offer is refused, and the answer names those it does.
    let refused = spindle_as(
        kafka,
        "SCRAM-SHA-256",
        "app",
        "app-token",
        &["topic", "list"],
    );
    assert!(
        refused.stderr.contains("SCRAM-SHA-512"),
        "{}",
        refused.stderr
    );
    refused.fails_with("UNSUPPORTED_SASL_MECHANISM");
    // Without credentials the listener serves nothing but the handshake.
    assert_eq!(spindle(kafka, &["topic", "list"]).code, 1);
    // A password without a user name, or an unknown mechanism, is refused before connecting.
    spindle(kafka, &["topic", "list", "--sasl-password", "x"]).fails_with("go together");
    let unknown = spindle(kafka, &["topic", "list", "--sasl-mechanism", "GSSAPI"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("SCRAM-SHA-256"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn acl_list_shows_each_principals_grants_to_a_principal_that_may_see_them() {
    let server = Server::start_sasl("admin-acl", "PLAIN");
    let kafka = &server.kafka;
    let as_ops = |args: &[&str]| spindle_as(kafka, "PLAIN", "ops", "ops-token", args);
    let listed = as_ops(&["acl", "list", "--json"]).json();
    let rows = listed.as_array().unwrap();
    let app_topics = rows
        .iter()
        .find(|r| r["principal"] == "User:app" && r["resource_type"] == "TOPIC")
        .unwrap_or_else(|| panic!("no topic row for app: {listed}"));
    assert_eq!(app_topics["resource_name"], "app.");
    assert_eq!(app_topics["pattern_type"], "PREFIXED");
    assert_eq!(app_topics["permission"], "ALLOW");
    assert_eq!(
        app_topics["operations"],
        serde_json::json!(["DESCRIBE", "READ", "WRITE"])
    );
    assert!(
        rows.iter().any(|r| r["principal"] == "User:ops"
            && r["resource_type"] == "CLUSTER"
            && r["operations"]
                .as_array()
                .unwrap()
                .contains(&"CLUSTER_ACTION".into())),
        "{listed}"
    );

    // A principal filter, with or without `User:`, and the table.
    let only_app = as_ops(&["acl", "list", "--principal", "app", "--json"]).json();
    let principals: Vec<_> = only_app
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["principal"].as_str().unwrap())
        .collect();
    assert!(!principals.is_empty() && principals.iter().all(|&p| p == "User:app"));
    let table = as_ops(&["acl", "list", "--principal", "User:app"]).ok();
    assert!(table.starts_with("PRINCIPAL"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("app.") && l.contains("DESCRIBE,READ,WRITE")),
        "{table}"
    );

    // Describing them takes admin on every topic; without principals there are none.
    spindle_as(kafka, "PLAIN", "app", "app-token", &["acl", "list"])
        .fails_with("CLUSTER_AUTHORIZATION_FAILED");
    let open = Server::start_with("admin-acl-open", &[]);
    spindle(&open.kafka, &["acl", "list"]).fails_with("SECURITY_DISABLED");
}

#[test]
fn cluster_quotas_shows_each_entity_with_the_rates_set_for_it() {
    let server = Server::start_with_config(
        "admin-quotas",
        "[[kafka.quotas]]\nclient_id = \"loader\"\nproducer_byte_rate = 1048576\n\
         [[kafka.quotas]]\nuser = \"app\"\nconsumer_byte_rate = 2048\n\
         [[kafka.quotas]]\nproducer_byte_rate = 4096\nconsumer_byte_rate = 8192\n",
        &[],
    );
    let listed = spindle(&server.kafka, &["cluster", "quotas", "--json"]).json();
    assert_eq!(
        listed,
        serde_json::json!([
            {
                "entity": { "client-id": null },
                "values": { "consumer_byte_rate": 8192.0, "producer_byte_rate": 4096.0 }
            },
            {
                "entity": { "client-id": "loader" },
                "values": { "producer_byte_rate": 1048576.0 }
            },
            {
                "entity": { "user": "app" },
                "values": { "consumer_byte_rate": 2048.0 }
            },
        ])
    );
    // The table: a column per rate, `-` where an entity sets none.
    let table = spindle(&server.kafka, &["cluster", "quotas"]).ok();
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["ENTITY", "CONSUMER_BYTE_RATE", "PRODUCER_BYTE_RATE"],
            vec!["client-id=<default>", "8192", "4096"],
            vec!["client-id=loader", "-", "1048576"],
            vec!["user=app", "2048", "-"],
        ],
        "{table}"
    );
    let none = Server::start_with("admin-quotas-none", &[]);
    assert_eq!(
        spindle(&none.kafka, &["cluster", "quotas", "--json"]).json(),
        serde_json::json!([])
    );
}

#[test]
fn cluster_quotas_alter_changes_an_entity_and_reports_what_the_server_refuses() {
    let server = Server::start("admin-quotas-alter");
    let kafka = &server.kafka;
    let alter = |args: &[&str]| {
        let mut all = vec!["cluster", "quotas", "alter"];
        all.extend_from_slice(args);
        spindle(kafka, &all)
    };
    let listed = || spindle(kafka, &["cluster", "quotas", "--json"]).json();
    let done = alter(&[
        "--name",
        "client-id=loader",
        "--add",
        "producer_byte_rate=1048576",
        "--add",
        "consumer_byte_rate=2048",
    ])
    .ok();
    assert!(
        done.contains("altered the quotas of client-id=loader"),
        "{done}"
    );
    let dry = alter(&[
        "--default",
        "client-id",
        "--add",
        "producer_byte_rate=10",
        "--dry-run",
    ])
    .ok();
    assert!(
        dry.contains("would alter the quotas of client-id=<default>"),
        "{dry}"
    );
    assert_eq!(
        listed(),
        serde_json::json!([{
            "entity": { "client-id": "loader" },
            "values": { "consumer_byte_rate": 2048.0, "producer_byte_rate": 1048576.0 }
        }])
    );
    alter(&[
        "--name",
        "client-id=loader",
        "--delete",
        "consumer_byte_rate",
    ])
    .ok();
    assert_eq!(
        listed(),
        serde_json::json!([{
            "entity": { "client-id": "loader" },
            "values": { "producer_byte_rate": 1048576.0 }
        }])
    );
    // Refused by the server, with its reason; and before asking it.
    alter(&["--default", "user", "--add", "producer_byte_rate=1"]).fails_with("default user");
    alter(&["--add", "producer_byte_rate=1"]).fails_with("name the entity");
    alter(&["--name", "client-id=x", "--add", "producer_byte_rate=fast"])
        .fails_with("not a number");
}

/// docs/CLI.md documents every admin command: each subcommand that `spindle GROUP --help`
/// lists has a section there.
#[test]
fn every_admin_command_is_documented() {
    let cli =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CLI.md")).unwrap();
    let mut documented = 0;
    for group in ["topic", "group", "cluster", "acl"] {
        let help = run(Command::new(env!("CARGO_BIN_EXE_spindle")).args([group, "--help"])).ok();
        let commands = help
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help");
        for command in commands {
            let section = format!("`spindle {group} {command}");
            assert!(cli.contains(&section), "no {section}` in docs/CLI.md");
            documented += 1;
        }
    }
    assert!(documented > 10, "only {documented} commands found");
}

#[test]
fn admin_commands_reach_a_tls_listener_with_the_ca_they_trust() {
    let certificates = Certificates::new("admin-tls");
    let server = Server::start_with_config("admin-tls", &certificates.kafka_tls_table(), &[]);
    let kafka = &server.kafka;
    let ca = certificates.ca.to_str().unwrap();
    spindle(kafka, &["topic", "create", "over-tls", "--tls-ca", ca]).ok();
    let listed = run(Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["topic", "list", "--json", "--bootstrap", kafka])
        .env("SPINDLE_TLS_CA", ca))
    .json();
    let names = topic_names(&listed);
    assert!(names.contains(&"over-tls"), "{listed}");
    // Without the CA the handshake (or the plaintext ApiVersions) fails, and says where.
    spindle(kafka, &["topic", "list"]).fails_with(kafka);
    let stranger = Certificates::new("admin-tls-stranger");
    let stranger_ca = stranger.ca.to_str().unwrap();
    spindle(kafka, &["topic", "list", "--tls-ca", stranger_ca]).fails_with("TLS handshake");
}

#[test]
fn admin_commands_present_a_client_certificate_when_the_listener_asks() {
    let certificates = Certificates::new("admin-mtls");
    let config = format!(
        "{}client_ca_path = {:?}\n{}",
        certificates.kafka_tls_table(),
        certificates.ca.to_str().unwrap(),
        spindle_server::PRINCIPALS
    );
    let server = Server::start_with_config("admin-mtls", &config, &[]);
    let kafka = &server.kafka;
    let ca = certificates.ca.to_str().unwrap();
    // The certificate's common name, "ops", is a principal with admin rights.
    let ops = [
        "--tls-ca",
        ca,
        "--tls-cert",
        certificates.client_cert.to_str().unwrap(),
        "--tls-key",
        certificates.client_key.to_str().unwrap(),
    ];
    let mut create = vec!["topic", "create", "by-certificate"];
    create.extend_from_slice(&ops);
    spindle(kafka, &create).ok();
    // Without a certificate the handshake fails.
    spindle(kafka, &["topic", "list", "--tls-ca", ca]).fails_with(kafka);
    // A key without its certificate is a usage error.
    let usage = spindle(kafka, &["topic", "list", "--tls-ca", ca, "--tls-key", ca]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
}

/// `spindle ARGS --bootstrap B` with `input` on its standard input.
fn spindle_with_input(bootstrap: &str, args: &[&str], input: &str) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(args)
        .args(["--bootstrap", bootstrap])
        .env_remove("SPINDLE_BOOTSTRAP")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Every record of `topic` as kcat reads it: `partition key value headers`, sorted.
fn kcat_records(bootstrap: &str, topic: &str) -> Vec<String> {
    let output = Command::new("kcat")
        .args(["-b", bootstrap, "-t", topic, "-C", "-e", "-q"])
        .args(["-f", "%p %k %s %h\n"])
        .output()
        .expect("kcat must be installed (scripts/test-deps installs it)");
    let mut lines: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect();
    lines.sort();
    lines
}

#[test]
fn topic_produce_writes_what_kcat_reads_and_places_keys_as_kafka_does() {
    let server = Server::start_with("admin-produce", &[]);
    let b = &server.kafka;
    spindle(b, &["topic", "create", "lines", "--partitions", "3"]).ok();
    let produced = spindle_with_input(
        b,
        &[
            "topic", "produce", "lines", "-K", ":", "-H", "src=cli", "-z", "lz4", "--json",
        ],
        "a:1\nb:2\nc:3\nno key here\r\n",
    )
    .json();
    assert_eq!(produced["records"], 4);
    // Keys go where Kafka's Java clients put them: librdkafka's murmur2 partitioner agrees.
    let by_kcat = std::process::Command::new("kcat")
        .args([
            "-b",
            b,
            "-t",
            "lines",
            "-P",
            "-K",
            ":",
            "-X",
            "partitioner=murmur2_random",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat must be installed (scripts/test-deps installs it)");
    std::io::Write::write_all(
        &mut by_kcat.stdin.as_ref().unwrap(),
        b"a:kcat\nb:kcat\nc:kcat\n",
    )
    .unwrap();
    assert!(by_kcat.wait_with_output().unwrap().status.success());
    let records = kcat_records(b, "lines");
    let partition_of = |key: &str, value: &str| {
        records
            .iter()
            .find(|r| r.split(' ').nth(1) == Some(key) && r.split(' ').nth(2) == Some(value))
            .and_then(|r| r.split(' ').next())
            .unwrap_or_else(|| panic!("{key}:{value} in {records:?}"))
            .to_owned()
    };
    for (key, value) in [("a", "1"), ("b", "2"), ("c", "3")] {
        assert_eq!(
            partition_of(key, value),
            partition_of(key, "kcat"),
            "key {key}"
        );
    }
    // The line without a key starts the round robin at partition 0; headers on every record.
    assert!(
        records.contains(&"0  no key here src=cli".to_owned()),
        "{records:?}"
    );
    assert_eq!(records.iter().filter(|r| r.ends_with("src=cli")).count(), 4);
    let to_one = spindle_with_input(b, &["topic", "produce", "lines", "-p", "1"], "x\ny\n").ok();
    assert_eq!(to_one, "produced 2 record(s) to lines\n");
    spindle_with_input(b, &["topic", "produce", "nowhere"], "x\n").fails_with("unknown topic");
    // A refused batch is reported with the server's reason (Produce v8+ carries it).
    spindle(
        b,
        &[
            "topic",
            "create",
            "table",
            "--config",
            "cleanup.policy=compact",
        ],
    )
    .ok();
    spindle_with_input(b, &["topic", "produce", "table"], "no key\n")
        .fails_with("INVALID_RECORD (87): topic table is compacted (cleanup.policy=compact): every record needs a key");
    spindle_with_input(b, &["topic", "produce", "lines", "-p", "7"], "x\n")
        .fails_with("has no partition 7");
}

#[test]
fn topic_consume_prints_to_the_end_or_follows() {
    let server = with_events([3, 2]);
    let b = &server.kafka;
    let mut all: Vec<String> = spindle(b, &["topic", "consume", "events"])
        .ok()
        .lines()
        .map(str::to_owned)
        .collect();
    all.sort();
    assert_eq!(
        all,
        ["record-0", "record-0", "record-1", "record-1", "record-2"]
    );

    let json = spindle(
        b,
        &[
            "topic", "consume", "events", "-p", "0", "--from", "1", "--json",
        ],
    )
    .ok();
    let records: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let offsets: Vec<i64> = records
        .iter()
        .map(|r| r["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, [1, 2]);
    assert_eq!(records[0]["value"], "record-1");
    assert_eq!(records[0]["partition"], 0);

    let counted = spindle(b, &["topic", "consume", "events", "-n", "2", "-p", "0"]).ok();
    assert_eq!(counted, "record-0\nrecord-1\n");
    assert_eq!(
        spindle(b, &["topic", "consume", "events", "--from", "end"]).ok(),
        ""
    );

    // --follow waits at the end for what arrives, here until its one record.
    let follower = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args([
            "topic", "consume", "events", "-p", "1", "--from", "end", "--follow",
        ])
        .args(["-n", "1", "-K", "/", "--bootstrap", b])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    spindle_with_input(
        b,
        &["topic", "produce", "events", "-p", "1", "-K", "/"],
        "k/late\n",
    )
    .ok();
    let output = follower.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "k/late\n");

    let usage = spindle(b, &["topic", "consume", "events", "--from", "soon"]);
    assert_eq!(usage.code, 2, "a usage error: {usage:?}");
    assert!(usage
        .stderr
        .contains("expected `beginning`, `end` or an offset"));
    spindle(b, &["topic", "consume", "nowhere"]).fails_with("unknown topic");
}
