//! The command line of the contract tools: `contract check` and `contract schema`, their
//! flags and what each prints and exits with.
//!
//! Exit codes: 0 when everything is compatible, 1 on drift, 2 on bad input (a file that
//! cannot be read or parsed, no scenario to compare with, a bad flag). Reports go to stdout; problems to stderr, one line each.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::check;
use super::export;
use crate::catalogue::Catalogue;
use crate::cli::{CatalogueArgs, Failure};
use crate::scenario::loader::CatalogueSource;

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
    #[arg(long, env = "OTK_MOCK_CONTRACT_STRICT")]
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

fn load(args: &CatalogueArgs) -> Result<Catalogue, Failure> {
    let source = CatalogueSource {
        scenarios_dir: args.scenarios.clone(),
        templates_dir: args.templates.clone(),
    };
    Catalogue::load(&source, args.seed).map_err(Failure::Catalogue)
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

/// Write to stdout; a closed pipe (`| head`) is not an error.
fn print_out(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Runtime(anyhow::anyhow!(
            "cannot write output: {e}"
        ))),
    }
}
