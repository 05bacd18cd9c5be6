//! Command-line interface (clap derive). Parsing only; `app` does the work. Each subcommand's
//! arguments are one struct, handed whole to the function that runs it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::units::{DurationRange, parse_duration_in};

/// `--window`: checked here so an absurd value is a usage error (exit 2), not an overflow later.
fn window_arg(text: &str) -> Result<String, String> {
    parse_duration_in(text, DurationRange::SPAN).map(|_| text.to_string())
}

/// `--wait`: 0 to a day.
fn wait_arg(text: &str) -> Result<String, String> {
    parse_duration_in(text, DurationRange::WAIT).map(|_| text.to_string())
}

#[derive(Debug, Parser)]
#[command(
    name = "patrol",
    version,
    about = "Watches a fleet of Docker hosts and writes dated improvement reports from deterministic rules.",
    after_help = "Exit codes: 0 ok; 1 findings at or above --fail-on (run, report), a fixture that differs (rules test), messages still in the outbox or refused by Telegram (digest --send); 2 error (bad input, an unreadable file, another run holding the fleet); 3 degraded (run): some sources could not be read in this capture, each named on stderr (2 wins over 3, 3 over 1)."
)]
pub struct Cli {
    /// More detail on stderr (repeat for debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailOn {
    Warning,
    Info,
    Suggestion,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture every node, archive the snapshots, analyse them and append to the report.
    ///
    /// Without --config (and no ./patrol.toml) it watches this machine: host metrics from /proc,
    /// and containers from the Docker socket ($DOCKER_HOST, else /var/run/docker.sock) when
    /// there is one.
    Run(RunArgs),
    /// Capture on the configured interval ([daemon] interval) and send the digest on its cron
    /// schedule ([daemon] digest, fleet time zone), until SIGTERM or SIGINT, which finish the
    /// capture under way first. A digest whose time passed while the daemon was down is made
    /// when it starts (<output>/.state/digest.json records the last one made).
    Daemon(DaemonArgs),
    /// Analyse an archive as of one time and append the section to its report.
    Report(ReportArgs),
    /// Replay the bundled demo fleet capture by capture and write its rolling report.
    Demo(DemoArgs),
    /// Write the archive a scenario describes (same scenario and seed: same bytes).
    Simulate(SimulateArgs),
    /// Print one snapshot as JSON: a file, or node@time from an archive.
    Show(ShowArgs),
    /// Run one rule over every capture of an archive and print when it would have fired.
    Backtest(BacktestArgs),
    /// Compare two archived snapshots: NODE@TIME (nearest capture, stated), snapshot files, or
    /// two nodes at one time (`vk01 vk02 --at TIME`). Writes output/<fleet>/compare/… and prints
    /// it.
    Compare(CompareArgs),
    /// The values of a node's readings over time: a table, a sparkline on a terminal, and an
    /// SVG chart in output/<fleet>/history/.
    History(HistoryArgs),
    /// Write the weekly digest (score card, availability, growers, findings) and optionally
    /// send it to Telegram.
    Digest(DigestArgs),
    /// Look after the archive: its size, and thinning it by age.
    Archive(ArchiveArgs),
    /// Inspect the rule library.
    Rules(RulesArgs),
}

#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// Captures and bytes per node and per day.
    Stats,
    /// Thin the archive by age ([retention]: every capture for `full`, then hourly until
    /// `hourly`, daily until `daily`, then none), keeping what open findings point to.
    Prune(PruneArgs),
    /// Copy every capture and the fleet's metadata between archives, either way between a
    /// directory and PostgreSQL (postgres://user@host:port/db?fleet=NAME; the password from
    /// PGPASSWORD). Captures already there are replaced; the schema is created when missing.
    /// Exit 1 when some captures could not be read.
    Copy(CopyArgs),
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List rule instances: id, kind, severity, where defined.
    List,
    /// Print the documentation of a kind, or of the kind behind a rule id.
    Explain(ExplainArgs),
    /// Load the library and report every problem.
    Check,
    /// Rules that speak too often: fired in most of the last N report sections, or flapped
    /// (resolved and came back), from a report directory's ledger.
    Noise(NoiseArgs),
    /// Run rule fixtures: each <case>.toml (a scenario with its [[rule]]s) must give the
    /// findings written in <case>.expected. Exit 1 when one differs.
    Test(TestArgs),
    /// Score the library against answer keys: replay each key's scenario (or, with --archive,
    /// an archive) as `rules test` does and print recall (expectations met), precision
    /// (episodes expected or allowed), every miss and every extra. Exit 1 under --min-recall
    /// or --min-precision, 2 on a bad key (file:line:column).
    Score(ScoreArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Fleet configuration file (default: ./patrol.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Exit 1 when a new or open finding is at least this severe (3 instead when a source
    /// could not be read in this capture).
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
    /// When another run of the same fleet is going on, wait this long for it (e.g. 5m);
    /// by default say so and exit 2. At most 1 day.
    #[arg(long, value_parser = wait_arg)]
    pub wait: Option<String>,
    /// Capture and archive only, no analysis or report: a site collector writing to a shared
    /// archive whose reporter runs elsewhere (`patrol report --archive postgres://…`).
    #[arg(long)]
    pub capture_only: bool,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Fleet configuration file (default: ./patrol.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Archive: a directory (snapshots/<fleet>) or a shared archive
    /// (postgres://user@host:port/db?fleet=NAME; password from PGPASSWORD). Default: the
    /// config's.
    #[arg(long)]
    pub archive: Option<String>,
    /// Fleet configuration giving the archive (with its password), output, rules, window and
    /// [report] settings; a shared archive's reporter may list no nodes. Default:
    /// ./patrol.toml when there is no --archive.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Analyse as of this time (RFC 3339, or "YYYY-MM-DD HH:MM" in the fleet's time zone);
    /// default: the newest capture.
    #[arg(long)]
    pub at: Option<String>,
    /// Rules directory or file (default: the config's `rules`, else `rules/` beside the
    /// config; without a config ./rules; else the built-in library).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Output directory (default: output/<archive name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// History window the rules see (default: the config's, else 24h; longer when a rule's own
    /// `window` asks for more); at most 3650 days.
    #[arg(long, value_parser = window_arg)]
    pub window: Option<String>,
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
    /// Acknowledgements file (default: ./acknowledged.toml when present).
    #[arg(long)]
    pub acks: Option<PathBuf>,
    /// What to print: the section's path (markdown), or every finding with its lifecycle
    /// as JSON.
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: Format,
    /// Also write open findings by severity and rule, and each source's health
    /// (patrol_source_up, patrol_source_last_success_timestamp_seconds), as a Prometheus
    /// textfile (mode 0644: node-exporter reads it as its own user).
    #[arg(long)]
    pub textfile: Option<PathBuf>,
    /// When a run or report of the same fleet is going on, wait this long for it (e.g. 5m);
    /// by default say so and exit 2.
    #[arg(long)]
    pub wait: Option<String>,
    /// Rebuild the history window from the archive's snapshots instead of starting from the
    /// one the previous run saved in the output directory (window.bin); the rebuilt one is
    /// saved in its place.
    #[arg(long)]
    pub rebuild_window: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Archive directory, or postgres://… (password from PGPASSWORD).
    #[arg(long, default_value = "snapshots/demo")]
    pub archive: String,
    #[arg(long, default_value = "output/demo")]
    pub out: PathBuf,
    #[arg(long)]
    pub rules: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    pub scenario: PathBuf,
    /// Archive directory to write (created; existing captures are replaced).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A .json.zst/.json file, or NODE@TIME (nearest capture).
    pub target: String,
    /// Archive directory, or postgres://… (password from PGPASSWORD).
    #[arg(long, default_value = "snapshots/demo")]
    pub archive: String,
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// Rule id.
    pub rule: String,
    /// Archive directory, or postgres://… (password from PGPASSWORD).
    #[arg(long, default_value = "snapshots/demo")]
    pub archive: String,
    /// Rules directory or file (default: ./rules, else the built-in library).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// History window the rule sees; at most 3650 days.
    #[arg(long, default_value = "24h", value_parser = window_arg)]
    pub window: String,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    pub a: String,
    pub b: String,
    /// For two node names: the time (default: the newest capture).
    #[arg(long)]
    pub at: Option<String>,
    /// Archive directory, or postgres://… (password from PGPASSWORD).
    #[arg(long, default_value = "snapshots/demo")]
    pub archive: String,
    /// Report directory (default: output/<archive name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    pub node: String,
    /// Entity glob (default: host).
    pub entity: Option<String>,
    /// Metric (default: mem_usage_bytes for containers, else mem_available_bytes).
    pub metric: Option<String>,
    /// From when (RFC 3339 or "YYYY-MM-DD HH:MM" in the fleet's time zone); default 24 h
    /// before the newest capture.
    #[arg(long)]
    pub since: Option<String>,
    /// Archive directory, or postgres://… (password from PGPASSWORD).
    #[arg(long, default_value = "snapshots/demo")]
    pub archive: String,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// ISO week in the fleet's time zone, e.g. 2026-W08 (default: last week).
    #[arg(long)]
    pub week: Option<String>,
    /// Fleet configuration (archive, output, time zone, [telegram]); default ./patrol.toml
    /// when present.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Archive directory or postgres://… URL, when there is no config.
    #[arg(long, default_value = "snapshots/demo")]
    pub archive: String,
    /// Report directory (its ledger gives the findings; the digest goes to <out>/digests).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Send it to Telegram (with everything still waiting in the outbox).
    #[arg(long)]
    pub send: bool,
    /// Print the Telegram messages instead of sending them.
    #[arg(long)]
    pub dry_run: bool,
    /// When a run or report writes the same output, wait this long for it (e.g. 5m);
    /// without it, say who holds the output and exit 2.
    #[arg(long, value_parser = wait_arg)]
    pub wait: Option<String>,
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    #[command(subcommand)]
    pub command: ArchiveCommand,
    /// Fleet configuration (archive, output, [retention]); default ./patrol.toml when
    /// present.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Archive directory or postgres://… URL, when there is no config.
    #[arg(long, global = true, default_value = "snapshots/demo")]
    pub archive: String,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
    /// Rules directory or file, layered on the built-in library (default: the config's, else
    /// ./rules).
    #[arg(long, global = true)]
    pub rules: Option<PathBuf>,
    /// Fleet configuration whose library `list`, `explain`, `check` and `score` read (and,
    /// for `score --archive`, its window) (default: ./patrol.toml when present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Say what would go, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Report directory whose ledger names the captures to keep (default: the config's
    /// output, else output/<archive name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The archive to read: a directory, or postgres://… (?fleet=NAME when it holds several).
    #[arg(long)]
    pub from: String,
    /// The archive to write: a directory (created), or postgres://… (?fleet=NAME to store
    /// under another fleet name).
    #[arg(long)]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    pub name: String,
}

#[derive(Debug, Args)]
pub struct NoiseArgs {
    /// Report directory (holds ledger.json).
    #[arg(long, default_value = "output/demo")]
    pub out: PathBuf,
    /// How many recent sections to look at.
    #[arg(long, default_value_t = 20)]
    pub last: usize,
}

/// `--min-recall`, `--min-precision`: a percentage.
fn percent_arg(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('%').parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("`{text}` is not a percentage from 0 to 100")),
    }
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Answer keys (`*.key.toml`, each naming its scenario) or directories of them; with
    /// --expect, the one scenario to score it against.
    pub paths: Vec<PathBuf>,
    /// The answer key, for a scenario given as the argument or for --archive.
    #[arg(long)]
    pub expect: Option<PathBuf>,
    /// Score the key against an archive's history (a directory or postgres://…) instead of a
    /// scenario; local times in the key are the archive's time zone, `+6h` is after its first
    /// capture.
    #[arg(long)]
    pub archive: Option<String>,
    /// History window the rules see over an archive (default: the config's, else 24h).
    #[arg(long, value_parser = window_arg)]
    pub window: Option<String>,
    /// Exit 1 when the recall (over all keys given) is under this percentage.
    #[arg(long, value_parser = percent_arg)]
    pub min_recall: Option<f64>,
    /// Exit 1 when the precision (over all keys given) is under this percentage.
    #[arg(long, value_parser = percent_arg)]
    pub min_precision: Option<f64>,
    /// Print the scores as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Fixture files or directories (searched recursively). Default: ./tests/rules and
    /// <rules dir>/tests, whichever exist.
    pub paths: Vec<PathBuf>,
    /// Write the .expected files from what the fixtures give now.
    #[arg(long)]
    pub bless: bool,
}
