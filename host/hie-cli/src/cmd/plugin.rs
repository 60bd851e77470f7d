//! `hie plugin`: scaffold a plugin crate, build it into a checked component, and
//! run a component in the real host over sample messages.

mod build;
mod cases;
mod diff;
mod scaffold;

use std::path::PathBuf;
use std::process::ExitCode;

/// `hie plugin` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Create a plugin crate with a working example, sample cases and a README.
    New(NewArgs),
    /// Build a plugin crate for wasm32-wasip2 and check the component fits a plugin world.
    Build(BuildArgs),
    /// Run a component over sample messages and compare with the expected outputs.
    Test(TestArgs),
}

/// What kind of plugin to scaffold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A business process: routing, transformation (world business-process).
    Process,
    /// A business service: inbound messages from an adapter (world business-service).
    Service,
    /// A business operation: outbound through an adapter (world business-operation).
    Operation,
    /// A message hook around processing and sending (world message-hook).
    Hook,
}

impl Kind {
    /// The world a plugin of this kind is built for.
    fn world(self) -> hie_wasm::TargetWorld {
        match self {
            Kind::Process => hie_wasm::TargetWorld::BusinessProcess,
            Kind::Service => hie_wasm::TargetWorld::BusinessService,
            Kind::Operation => hie_wasm::TargetWorld::BusinessOperation,
            Kind::Hook => hie_wasm::TargetWorld::MessageHook,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Process => "process",
            Kind::Service => "service",
            Kind::Operation => "operation",
            Kind::Hook => "hook",
        }
    }
}

/// Arguments of `hie plugin new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// Crate name of the plugin (lowercase, digits, '-', '_'); also its directory name.
    pub name: String,
    /// Directory to create the crate in.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// What the plugin is.
    #[arg(long, value_enum, default_value = "process")]
    pub kind: Kind,
    /// The hie-sdk crate to depend on (default: sdk/hie-sdk of the tree hie was built from).
    #[arg(long)]
    pub sdk_path: Option<PathBuf>,
}

/// Arguments of `hie plugin build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The plugin crate's directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// What the plugin must be: the component is checked against that world. Default:
    /// `[package.metadata.hie] kind` of the crate (`hie plugin new` writes it); without
    /// either, any plugin world is accepted.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
}

/// Arguments of `hie plugin test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The component to run (.wasm).
    pub plugin: PathBuf,
    /// Directory of cases: NAME.in.hl7 with NAME.out.hl7 and/or NAME.expect.toml,
    /// optionally NAME.settings.toml (or settings.toml for all: settings, lookups,
    /// [replies.TARGET], [[hooks]]) and replies/TARGET.hl7; see docs/plugins.md.
    #[arg(long)]
    pub cases: PathBuf,
    /// Name of the item the plugin runs as (what it sees in logs and sources).
    #[arg(long, default_value = "test")]
    pub item: String,
}

/// Runs a `hie plugin` subcommand.
pub fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::New(args) => new(args),
        PluginCommand::Build(args) => build(args),
        PluginCommand::Test(args) => cases::run(&args.plugin, &args.cases, &args.item),
    }
}

fn new(args: NewArgs) -> anyhow::Result<ExitCode> {
    let root = scaffold::create(&args.name, &args.dir, args.kind, args.sdk_path.as_deref())?;
    println!(
        "created {} plugin {} in {}",
        args.kind.as_str(),
        args.name,
        root.display()
    );
    println!("next: cd {} && cargo test && hie plugin build", root.display());
    Ok(ExitCode::SUCCESS)
}

/// A plugin crate made as `hie plugin new` makes it (for `hie import`'s custom
/// classes); `kind` is `service`, `process` or `operation`.
pub fn new_skeleton(name: &str, dir: &std::path::Path, kind: &str) -> anyhow::Result<PathBuf> {
    let kind = match kind {
        "service" => Kind::Service,
        "operation" => Kind::Operation,
        _ => Kind::Process,
    };
    scaffold::create(name, dir, kind, None)
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let built = build::cargo_build(&args.dir)?;
    let wasm = &built.wasm;
    let (kind, from) = match (args.kind, built.declared_kind.as_deref()) {
        (Some(kind), _) => (Some(kind), "--kind"),
        (None, Some(declared)) => (Some(build::parse_kind(declared, &args.dir)?), "Cargo.toml"),
        (None, None) => (None, ""),
    };
    let info = match kind {
        Some(kind) => hie_wasm::inspect_as(wasm, kind.world()).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => cases::inspect(wasm)?,
    };
    build::link(wasm)?;
    let size = std::fs::metadata(wasm).map(|m| m.len()).unwrap_or(0);
    println!(
        "built {} ({}, world {}, hie:plugin@{})",
        wasm.display(),
        human_size(size),
        info.world,
        info.plugin_version
    );
    match kind {
        Some(kind) => println!(
            "fits world {} (kind {} from {from}): exports, imports and functions checked",
            kind.world(),
            kind.as_str()
        ),
        None => println!(
            "no kind given: checked that it fits some plugin world; pass --kind or set \
             [package.metadata.hie] kind in Cargo.toml to check it against one"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}
