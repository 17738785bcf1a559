//! The `cityos` command: the demo, the simulated day, benchmarks, the territory generator
//! and configuration checks. The only crate that talks to the terminal. This file parses
//! the arguments and calls: the demo is in `demo`, serving in `serve`, the benchmarks in
//! `bench`, the small commands in `commands`; simulation and territory generation are the
//! `cityos-sim` library.

mod assistance;
mod audit;
mod bench;
mod classify;
mod commands;
mod corrections;
mod demo;
mod serve;
mod whatif;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: the service allocates many small, short-lived
/// buffers on several threads (request bodies, JSON views, case clones); glibc's malloc
/// spent about a sixth of the API benchmark's time in its own bookkeeping.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// cityos — the urban-district operating system of a City Operations Centre (城运中心).
#[derive(Parser)]
#[command(name = "cityos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the Xuhui demo on the embedded default (SQLite in a data directory): a
    /// simulated day of history, the demo accounts, and a live simulator that keeps
    /// reports arriving and staff acting. Prints the URL and the accounts.
    Demo {
        /// Address to listen on.
        #[arg(long, env = "CITYOS_ADDR", default_value = "127.0.0.1:8080")]
        addr: String,
        /// Data directory (created if missing).
        #[arg(long, env = "CITYOS_DATA", default_value = "cityos-data")]
        data: PathBuf,
        /// Random seed of the simulated day and the live simulator.
        #[arg(long, default_value_t = 2021)]
        seed: u64,
        /// Only simulate the day into the data directory and print its summary.
        #[arg(long)]
        no_serve: bool,
        /// Serve without the live simulator.
        #[arg(long)]
        no_live: bool,
        /// mqtt://host:port of a broker: readings on cityos/readings/{device} are taken
        /// too, and the demo's devices publish there instead of the embedded path.
        #[arg(long, env = "CITYOS_MQTT_URL")]
        mqtt_url: Option<String>,
    },
    /// Serve the API (configuration: file < CITYOS_* environment < flags).
    Serve(Box<serve::ServeArgs>),
    /// Run one synthetic day of Xuhui through the engine and print a summary.
    Simulate {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Reports arriving over the day.
        #[arg(long, default_value_t = 3000)]
        reports: usize,
        /// Days the departments keep working after the day's intake.
        #[arg(long, default_value_t = 2)]
        tail_days: u32,
        /// Database URL (postgres://… or a SQLite file path); default: in memory.
        #[arg(long, env = "CITYOS_DATABASE_URL")]
        db: Option<String>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks (commands, not tests).
    Bench {
        #[command(subcommand)]
        which: BenchCmd,
    },
    /// The citizen-text classifier (issue 14): train, evaluate, predict, staff corrections.
    Classify {
        #[command(subcommand)]
        which: ClassifyCmd,
    },
    /// 为老助餐: the demo's canteens and meal points file.
    Meals {
        #[command(subcommand)]
        which: MealsCmd,
    },
    /// 精准救助 precision assistance (issue 15): the synthetic district and the rulebook's
    /// precision and recall against its planted truth.
    Assistance {
        #[command(subcommand)]
        which: AssistanceCmd,
    },
    /// The tamper-evident audit trail (数据归集共享).
    Audit {
        #[command(subcommand)]
        which: AuditCmd,
    },
    /// The demo territory.
    Territory {
        #[command(subcommand)]
        which: TerritoryCmd,
    },
    /// Validate configuration files and report every problem with its place.
    Check {
        /// Territory GeoJSON (default: the embedded Xuhui territory).
        #[arg(long)]
        territory: Option<PathBuf>,
        /// Taxonomy and departments TOML (default: the embedded one).
        #[arg(long)]
        taxonomy: Option<PathBuf>,
        /// Holiday calendar CSV (default: the embedded 2026 calendar).
        #[arg(long)]
        calendar: Option<PathBuf>,
        /// Vital-sign indicators TOML (default: the embedded Xuhui pack).
        #[arg(long)]
        indicators: Option<PathBuf>,
        /// Alert rules over the vital signs, TOML (default: the embedded ones).
        #[arg(long, alias = "vital-rules")]
        alert_rules: Option<PathBuf>,
        /// The evaluation's scoring scheme, TOML (default: the embedded scoring.toml).
        #[arg(long)]
        scoring: Option<PathBuf>,
    },
    /// What-if replay (考核评价): the period's real reports and staff actions from the
    /// store, replayed through the engine under candidate rules in a scratch store; the
    /// measures side by side with what happened (a table, or JSON).
    Whatif {
        /// First day (YYYY-MM-DD, Beijing time).
        #[arg(long)]
        from: String,
        /// Last day, included (YYYY-MM-DD).
        #[arg(long)]
        to: String,
        /// The candidate taxonomy (routing, deadlines, escalation), TOML.
        #[arg(long)]
        taxonomy: PathBuf,
        /// A candidate holiday calendar, CSV (default: the embedded one).
        #[arg(long)]
        calendar: Option<PathBuf>,
        /// Database URL (postgres://… or a SQLite file); default: the data directory's.
        #[arg(long, env = "CITYOS_DATABASE_URL")]
        db: Option<String>,
        #[arg(long, env = "CITYOS_DATA", default_value = "cityos-data")]
        data: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print the closed loop's transition table (Markdown).
    WorkflowTable,
    /// Issue an API token for a machine (a sensor gateway, an integration), signed with
    /// the data directory's key.
    Token {
        /// The machine's name (it appears as the actor in case logs).
        #[arg(long)]
        name: String,
        /// Role: system (sensors, data rules) or any person role.
        #[arg(long, default_value = "system")]
        role: String,
        /// Channel a system token reports on, which is all it may reach: sensor (readings,
        /// photos, sensor reports) or data (datasets, external indicator values, data
        /// reports). `--scope` confines its reports to a region.
        #[arg(long, default_value = "sensor")]
        channel: String,
        /// Region code the token is confined to.
        #[arg(long)]
        scope: Option<String>,
        /// Department (for handler tokens).
        #[arg(long)]
        department: Option<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        #[arg(long, env = "CITYOS_DATA", default_value = "cityos-data")]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Several nodes (issue 20): API intake with 1, 2, 3… real nodes on one PostgreSQL
    /// database (the same clients), and the failover time after kill -9 of a node.
    Cluster {
        /// Node counts to measure, e.g. 1,2,3.
        #[arg(long, default_value = "1,2,3")]
        nodes: String,
        #[arg(long, default_value_t = 6_000)]
        reports: usize,
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// postgres://… [default: CITYOS_TEST_POSTGRES_URL, else the local `test` database]
        #[arg(long)]
        database_url: Option<String>,
        /// nats://…: the nodes run their bus (and readings work queue) on NATS JetStream,
        /// a stream of the benchmark's own per node count.
        #[arg(long)]
        nats_url: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// 为老助餐's 11:00 peak: orders over loopback HTTP (subsidy, cut-off, capacity, ledger).
    Meals {
        #[arg(long, default_value_t = 5000)]
        orders: usize,
        #[arg(long, default_value_t = 3000)]
        elders: usize,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Orders arriving per second (0: as fast as the clients go — the saturation).
        #[arg(long, default_value_t = 60.0)]
        rate: f64,
        /// Then load the elder's page in headless Chromium on a throttled slow-4G profile
        /// (needs `chromium` and `chromedriver`): bytes transferred and time to usable.
        #[arg(long)]
        page: bool,
        #[arg(long)]
        json: bool,
    },
    /// A month's evaluation (考核评价) over many stored cases, and a what-if replay of many
    /// reports (the store is kept between runs; --dir chooses it).
    Evaluation {
        #[arg(long, default_value_t = 100_000)]
        cases: usize,
        /// The fill spreads the reports over this many months ending with November 2026;
        /// the month evaluated is the middle one.
        #[arg(long, default_value_t = 1)]
        months: u32,
        #[arg(long, default_value_t = 100_000)]
        whatif_reports: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// End-to-end durable case intake vs bare SQLite inserts of the same rows.
    Intake {
        #[arg(long, default_value_t = 200_000)]
        reports: usize,
        #[arg(long, default_value_t = 4)]
        submitters: usize,
        /// Requests each submitter keeps in flight.
        #[arg(long, default_value_t = 2048)]
        in_flight: usize,
        #[arg(long, default_value_t = 4096)]
        max_batch: usize,
        /// Keep the databases in this directory (default: a temporary one, removed).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The audit trail: verify over many chained entries, and the API's throughput with
    /// audited reads against the same traffic without the audit.
    Audit {
        #[arg(long, default_value_t = 10_000_000)]
        entries: u64,
        /// Reports filed (and read back by an officer) in each of the two runs.
        #[arg(long, default_value_t = 4_000)]
        reports: usize,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Report intake over loopback HTTP with concurrent keep-alive clients.
    Api {
        #[arg(long, default_value_t = 50_000)]
        reports: usize,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Case list and stats latency over HTTP with many stored cases (the store is kept
    /// in a temporary directory between runs; --dir chooses it).
    Query {
        #[arg(long, default_value_t = 1_000_000)]
        cases: usize,
        #[arg(long, default_value_t = 30)]
        rounds: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Sensor readings through an MQTT broker into cityos, against a bare subscriber
    /// draining the same messages from the same broker in the same run.
    Mqtt {
        #[arg(long, default_value_t = 200_000)]
        readings: usize,
        #[arg(long, env = "CITYOS_MQTT_URL", default_value = "mqtt://127.0.0.1:1883")]
        url: String,
        #[arg(long)]
        json: bool,
        /// The payload shape the devices send: native (cityos's own JSON on
        /// {prefix}/readings/{device}), senml (RFC 8428 on {prefix}/senml/{device}),
        /// telemetry ({"ts","values"} on {prefix}/telemetry/{device}) or mapped (a vendor
        /// shape on {prefix}/mapped/{kind}, read through a declared mapping).
        #[arg(long, default_value = "native", value_parser = ["native", "senml", "telemetry", "mapped"])]
        payload: String,
    },
    /// NDJSON sensor readings through parse → device lookup → windows → indicators →
    /// alarm rules, against a bare serde_json parse of the same bytes.
    Ingest {
        #[arg(long, default_value_t = 1_000_000)]
        devices: usize,
        /// Readings per device (10 s apart).
        #[arg(long, default_value_t = 4)]
        rounds: usize,
        #[arg(long)]
        json: bool,
    },
    /// The seven scenario packs judging every reading of their kinds, against the same
    /// readings with no pack running (`ratio` = with / without; target ≥ 0.7).
    Scenarios {
        #[arg(long, default_value_t = 1_000_000)]
        readings: usize,
        /// Dataset rows the packs join (flats, lone-elder households, lifts, registrations).
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        #[arg(long)]
        json: bool,
    },
    /// The command centre in headless Chromium with many open cases: from navigation until
    /// the map, the vital-sign tiles and today's figures are drawn (needs chromium and
    /// chromedriver).
    Ui {
        /// Reports filed first (each stays an open case).
        #[arg(long, default_value_t = 12_000)]
        reports: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long)]
        json: bool,
    },
    /// Citizen-text classification: trains on the labelled messages if the file exists
    /// (else on generated text) and predicts on one core.
    Classify {
        /// Labelled CSV (default: ../shared/data/citizen_messages_labelled_tipdm2020.csv
        /// when present).
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The 15-minute life circle: coverage of every type × ring with straight-line walking
    /// (target ≤ 1 s), the same over a synthetic walking network (target ≤ 10 s), a what-if
    /// (target ≤ 200 ms).
    Lifecircle {
        /// Edges of the synthetic walking network.
        #[arg(long, default_value_t = 50_000)]
        edges: usize,
        #[arg(long)]
        json: bool,
    },
    /// 精准救助: the whole synthetic district (about 16 million source rows) parsed, hashed,
    /// fused and evaluated, then an incremental import of changed rows.
    Assistance {
        #[command(flatten)]
        common: assistance::Common,
        /// Changed rows of the incremental import.
        #[arg(long, default_value_t = 10_000)]
        changes: usize,
        #[arg(long)]
        json: bool,
    },
    /// Point → region-chain lookups on the Xuhui territory.
    Locate {
        #[arg(long, default_value_t = 20_000_000)]
        lookups: usize,
        #[arg(long, default_value_t = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))]
        threads: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ClassifyCmd {
    /// Train a model on a labelled CSV file into the data directory (classifier.model).
    Train {
        /// CSV file with a header (quoted fields may hold commas and line breaks).
        #[arg(long)]
        data: PathBuf,
        /// Columns whose text is classified, comma-separated (joined by a line break).
        #[arg(long, default_value = "subject,detail")]
        text_cols: String,
        /// Column holding the label.
        #[arg(long, default_value = "label1")]
        label_col: String,
        #[arg(long, env = "CITYOS_DATA", default_value = "cityos-data")]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Staff corrections (from `cityos classify corrections`; columns text and label)
        /// added to the training rows; repeatable. A category the labels lack adds a label.
        #[arg(long)]
        corrections: Vec<PathBuf>,
    },
    /// Write the staff labels (every case a command-centre officer classified: 分拨) as a
    /// CSV for retraining: text,label,suggested,score,case,at. The file holds citizens'
    /// words (personal data of the district; phone, ID and e-mail masked): it is written
    /// in the data directory (owner-readable only) and must stay there.
    Corrections {
        /// Data directory of the server (its SQLite store, and where the file goes).
        #[arg(long, env = "CITYOS_DATA", default_value = "cityos-data")]
        data_dir: PathBuf,
        /// Database URL (postgres://… or a SQLite file path) instead of the data
        /// directory's store.
        #[arg(long, env = "CITYOS_DATABASE_URL")]
        db: Option<String>,
        /// Output file (default: DATA_DIR/classify-corrections.csv).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Stratified k-fold cross-validation on a labelled CSV file: macro-F1, accuracy, the
    /// per-class table and the confusion matrix.
    Eval {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 5)]
        folds: usize,
        #[arg(long, default_value = "subject,detail")]
        text_cols: String,
        #[arg(long, default_value = "label1")]
        label_col: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        tuning: classify::Tuning,
        #[arg(long)]
        json: bool,
    },
    /// Read one text per line on stdin, print one JSON object per line (label, score, top 3).
    Predict {
        #[arg(long, env = "CITYOS_DATA", default_value = "cityos-data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum MealsCmd {
    /// Write the canteens and meal points file from the territory (deterministic).
    Generate {
        #[arg(long, default_value = "data/xuhui/meals/canteens.csv")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AssistanceCmd {
    /// Generate the synthetic district (no real persons) and evaluate the rulebook on it:
    /// per-policy precision and recall against the planted truth; with --json the last
    /// line is one JSON object (precision, recall, policies).
    Eval {
        #[command(flatten)]
        common: assistance::Common,
        /// Read a folder written by `assistance generate` instead of generating.
        #[arg(long)]
        data: Option<PathBuf>,
        /// File holding the pool's secret id key (16–64 bytes); default: the demo key,
        /// fit only for synthetic data.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Print one found household's explanation per policy (JSON, one a line).
        #[arg(long)]
        explain: bool,
        #[arg(long)]
        json: bool,
    },
    /// Write the synthetic district's source CSVs, truth.csv and decoys.csv into a folder.
    Generate {
        #[command(flatten)]
        common: assistance::Common,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Walk the whole stored audit trail: prove its hash chain intact (and print its
    /// head), or name the first broken entry and exit with status 1.
    Verify {
        /// Data directory of the server (its SQLite store).
        #[arg(long, env = "CITYOS_DATA", default_value = "cityos-data")]
        data: PathBuf,
        /// Database URL (postgres://… or a SQLite file path) instead of the data
        /// directory's store.
        #[arg(long, env = "CITYOS_DATABASE_URL")]
        db: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TerritoryCmd {
    /// Regenerate the demo territory GeoJSON from the source files (deterministic).
    Generate {
        #[arg(long, default_value = "data/xuhui/sources")]
        sources: PathBuf,
        #[arg(long, default_value_t = 20211)]
        seed: u64,
        #[arg(long, default_value_t = 3000)]
        grids: usize,
        #[arg(long, default_value = "data/xuhui/territory.geojson")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Cmd::Demo {
            addr,
            data,
            seed,
            no_serve,
            no_live,
            mqtt_url,
        } => demo::run(demo::Options {
            addr,
            data,
            seed,
            no_serve,
            no_live,
            mqtt_url,
        }),
        Cmd::Serve(args) => serve::run((*args).resolve()?, None),
        Cmd::Simulate {
            seed,
            reports,
            tail_days,
            db,
            json,
        } => commands::simulate(seed, reports, tail_days, db, json),
        Cmd::Bench { which } => match which {
            BenchCmd::Evaluation {
                cases,
                months,
                whatif_reports,
                dir,
                json,
            } => bench::evaluation::evaluation(cases, months, whatif_reports, dir, json),
            BenchCmd::Intake {
                reports,
                submitters,
                in_flight,
                max_batch,
                dir,
                json,
            } => bench::intake(
                &bench::IntakeOptions {
                    reports,
                    submitters,
                    in_flight,
                    max_batch,
                    dir,
                },
                json,
            ),
            BenchCmd::Api {
                reports,
                clients,
                dir,
                json,
            } => bench::api::api(reports, clients.max(1), json, dir),
            BenchCmd::Cluster {
                nodes,
                reports,
                clients,
                database_url,
                nats_url,
                json,
            } => bench::cluster::cluster(
                &nodes,
                reports.max(1),
                clients.max(1),
                database_url,
                nats_url,
                json,
            ),
            BenchCmd::Audit {
                entries,
                reports,
                clients,
                dir,
                json,
            } => bench::audit::audit(entries, reports.max(1), clients.max(1), json, dir),
            BenchCmd::Mqtt {
                readings,
                url,
                json,
                payload,
            } => bench::mqtt::mqtt(readings, &url, json, &payload),
            BenchCmd::Ui {
                reports,
                rounds,
                json,
            } => bench::ui::ui(reports.max(1), rounds.max(1), json),
            BenchCmd::Ingest {
                devices,
                rounds,
                json,
            } => bench::ingest::ingest(devices.max(1), rounds.max(1), json),
            BenchCmd::Scenarios {
                readings,
                rows,
                json,
            } => bench::scenarios::scenarios(readings.max(1), rows, json),
            BenchCmd::Query {
                cases,
                rounds,
                dir,
                json,
            } => bench::api::query(cases, rounds.max(2), json, dir),
            BenchCmd::Classify { data, json } => bench::classify::classify(data, json),
            BenchCmd::Lifecircle { edges, json } => {
                bench::lifecircle::lifecircle(edges.max(4), json)
            }
            BenchCmd::Meals {
                orders,
                elders,
                clients,
                rate,
                page,
                json,
            } => bench::meals::meals(
                orders.max(1),
                elders.max(1),
                clients.max(1),
                rate.max(0.0),
                page,
                json,
            ),
            BenchCmd::Assistance {
                common,
                changes,
                json,
            } => bench::assistance::assistance(&common, changes, json),
            BenchCmd::Locate {
                lookups,
                threads,
                json,
            } => {
                bench::locate(lookups, threads.max(1), json);
                Ok(())
            }
        },
        Cmd::Audit { which } => match which {
            AuditCmd::Verify { data, db, json } => audit::verify_cmd(&data, db.as_deref(), json),
        },
        Cmd::Classify { which } => match which {
            ClassifyCmd::Train {
                data,
                text_cols,
                label_col,
                data_dir,
                seed,
                corrections,
            } => classify::train_cmd(
                &data,
                &classify::Columns {
                    text_cols,
                    label_col,
                },
                &data_dir,
                seed,
                &corrections,
            ),
            ClassifyCmd::Corrections { data_dir, db, out } => {
                corrections::export_cmd(&data_dir, db.as_deref(), out)
            }
            ClassifyCmd::Eval {
                data,
                folds,
                text_cols,
                label_col,
                seed,
                tuning,
                json,
            } => classify::eval_cmd(
                &data,
                &classify::Columns {
                    text_cols,
                    label_col,
                },
                folds,
                tuning.options(seed)?,
                json,
            ),
            ClassifyCmd::Predict { data_dir } => classify::predict_cmd(&data_dir),
        },
        Cmd::Meals {
            which: MealsCmd::Generate { out },
        } => commands::generate_canteens(&out),
        Cmd::Assistance { which } => match which {
            AssistanceCmd::Eval {
                common,
                data,
                key_file,
                explain,
                json,
            } => assistance::eval_cmd(&common, data.as_deref(), key_file.as_deref(), explain, json),
            AssistanceCmd::Generate { common, out } => assistance::generate_cmd(&common, &out),
        },
        Cmd::Territory {
            which:
                TerritoryCmd::Generate {
                    sources,
                    seed,
                    grids,
                    out,
                },
        } => commands::generate_territory(&sources, seed, grids, &out),
        Cmd::Check {
            territory,
            taxonomy,
            calendar,
            indicators,
            alert_rules,
            scoring,
        } => commands::check(&commands::CheckFiles {
            territory,
            taxonomy,
            calendar,
            indicators,
            alert_rules,
            scoring,
        }),
        Cmd::Token {
            name,
            role,
            channel,
            scope,
            department,
            days,
            data,
        } => commands::token(commands::TokenRequest {
            name,
            role,
            channel,
            scope,
            department,
            days,
            data,
        }),
        Cmd::Whatif {
            from,
            to,
            taxonomy,
            calendar,
            db,
            data,
            json,
        } => whatif::run(whatif::Options {
            from,
            to,
            taxonomy,
            calendar,
            db,
            data,
            json,
        }),
        Cmd::WorkflowTable => {
            print!("{}", cityos_core::workflow::markdown_table());
            Ok(())
        }
    }
}
