//! The command line of the contract tools: `contract check`, `contract schema` and `record`,
//! their flags and what each prints and exits with.
//!
//! Exit codes: 0 when everything is compatible (or recorded), 1 on drift (or an upstream that
//! failed), 2 on bad input (a file that cannot be read or parsed, no scenario to compare with,
//! a bad flag). Reports go to stdout; problems to stderr, one line each.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{print_out, CatalogueArgs, Failure};
use crate::catalogue::Catalogue;
use crate::config::parse_positive_duration;
use crate::contract::record::{self, Secret};
use crate::contract::{check, export};

/// `otk-mock contract ...`
#[derive(Debug, Args)]
pub struct ContractArgs {
    #[command(subcommand)]
    pub command: ContractCommand,
}

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Compare recorded get-journey responses or callback bodies with the mock's scenarios;
    /// exit 0 compatible, 1 drift, 2 bad input.
    Check(CheckArgs),
    /// Print a JSON Schema (draft 2020-12) of the get-journey response covering every
    /// scenario.
    Schema(SchemaArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Compare every file with this scenario, instead of the scenarios whose rendered
    /// currentStatus and step match the file's.
    #[arg(long, env = "OTK_MOCK_CONTRACT_SCENARIO", value_name = "NAME")]
    pub scenario: Option<String>,
    /// Count keys the mock renders and a recording lacks (and nulls the mock never renders)
    /// as errors, not warnings.
    #[arg(long, env = "OTK_MOCK_CONTRACT_STRICT", value_parser = super::boolean("OTK_MOCK_CONTRACT_STRICT"))]
    pub strict: bool,
    /// Recorded files, or directories searched (recursively) for *.json.
    #[arg(required = true, value_name = "FILES_OR_DIRS")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub catalogue: CatalogueArgs,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print the schema on one line instead of indented.
    #[arg(long)]
    pub compact: bool,
    #[command(flatten)]
    pub catalogue: CatalogueArgs,
}

/// `otk-mock record ...`
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The provider's base URL, e.g. https://api-preproduction.signzy.app.
    #[arg(long, env = "OTK_MOCK_UPSTREAM", value_name = "URL")]
    pub upstream: String,
    /// The access token, sent as the raw Authorization header and written nowhere. Prefer the
    /// environment variable, which keeps it out of shell history.
    #[arg(
        long,
        env = "OTK_MOCK_UPSTREAM_TOKEN",
        hide_env_values = true,
        value_name = "T"
    )]
    pub token: Secret,
    /// The journeys to fetch.
    #[arg(required = true, value_name = "JOURNEY_ID")]
    pub journey_ids: Vec<String>,
    /// Where to write the sanitized files (created if missing).
    #[arg(
        long,
        env = "OTK_MOCK_RECORD_OUT",
        default_value = ".",
        value_name = "DIR"
    )]
    pub out: PathBuf,
    /// How long to wait for each answer (above zero).
    #[arg(long, env = "OTK_MOCK_UPSTREAM_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
    /// A key that makes the fake values the same on every run for the same inputs [default: a
    /// random key per run]. Keep it secret: with it, small inputs can be guessed back.
    #[arg(
        long,
        env = "OTK_MOCK_RECORD_SALT",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub salt: Option<Secret>,
}

fn load(args: &CatalogueArgs) -> Result<Catalogue, Failure> {
    Catalogue::load(&args.source(), args.seed).map_err(Failure::Catalogue)
}

/// Run `otk-mock contract ...`.
pub fn run_contract(args: ContractArgs) -> Result<(), Failure> {
    match args.command {
        ContractCommand::Check(args) => run_check(&args),
        ContractCommand::Schema(args) => run_schema(&args),
    }
}

fn run_check(args: &CheckArgs) -> Result<(), Failure> {
    let catalogue = load(&args.catalogue)?;
    let outcome = check::run(
        &catalogue,
        &args.paths,
        args.scenario.as_deref(),
        args.strict,
    );
    let mut report = String::new();
    for file in &outcome.reports {
        for line in file.lines() {
            report.push_str(&line);
            report.push('\n');
        }
    }
    report.push_str(&outcome.summary());
    report.push('\n');
    print_out(&report)?;
    for problem in &outcome.problems {
        eprintln!("otk-mock: contract check: {problem}");
    }
    match outcome.exit_code() {
        0 => Ok(()),
        1 => Err(Failure::Runtime(anyhow::anyhow!(
            "contract check: the mock has drifted from {} of the recordings (see the errors above)",
            outcome.reports.iter().filter(|r| !r.compatible).count()
        ))),
        _ => Err(Failure::Usage(format!(
            "contract check: {} input problem{} (see above)",
            outcome.problems.len(),
            if outcome.problems.len() == 1 { "" } else { "s" }
        ))),
    }
}

fn run_schema(args: &SchemaArgs) -> Result<(), Failure> {
    let catalogue = load(&args.catalogue)?;
    let schema = export::catalogue_schema(&catalogue)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("contract schema: {e}")))?;
    let text = if args.compact {
        serde_json::to_string(&schema)
    } else {
        serde_json::to_string_pretty(&schema)
    }
    .map_err(|e| Failure::Runtime(anyhow::anyhow!("contract schema: cannot serialize: {e}")))?;
    print_out(&format!("{text}\n"))
}

/// Run `otk-mock record ...`.
pub fn run_record(args: RecordArgs) -> Result<(), Failure> {
    let plan = record::plan(record::Request {
        upstream: args.upstream,
        token: args.token,
        journey_ids: args.journey_ids,
        out: args.out,
        timeout: args.timeout,
        salt: args.salt,
    })
    .map_err(|e| Failure::Usage(format!("record: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("record: cannot start the runtime: {e}")))?;
    let results = runtime
        .block_on(plan.run())
        .map_err(|e| Failure::Usage(format!("record: {e}")))?;
    let mut out = String::new();
    let mut failed = 0;
    for result in &results {
        match result {
            Ok(done) => out.push_str(&format!(
                "recorded {} ({}) -> {}\n",
                done.journey,
                done.status,
                done.file.display()
            )),
            Err(e) => {
                failed += 1;
                eprintln!("otk-mock: record: {e}");
            }
        }
    }
    if failed < results.len() {
        out.push_str(
            "review the files before committing them: record replaces the personal fields it \
             knows (docs/contract.md lists them), and a new field may need a rule\n",
        );
    }
    print_out(&out)?;
    if failed > 0 {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "record: {failed} of {} journeys could not be recorded",
            results.len()
        )));
    }
    Ok(())
}
