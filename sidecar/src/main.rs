//! `headroom-sidecar`: admission control for processes sharing one GPU. `serve` runs the
//! daemon, `run` launches a command under admission control, `profiles` inspects and seeds
//! learned memory profiles, `plan` compares MIG layouts and MPS for a mix of jobs.
#![forbid(unsafe_code)]

mod api;
mod chart;
mod cli;
mod client;
mod daemon;
mod http;
mod launch;
mod metrics;
mod mps;
mod oom_text;
mod plan;
mod profiles_cmd;
mod routes;
mod serve;
mod store;
mod workload;

use clap::Parser;
use cli::{Cli, Command, ProfilesAction};
use client::Client;
use headroom_core::units::{parse_duration, parse_size};
use std::process::ExitCode;

fn run(args: cli::RunArgs) -> ExitCode {
    let mut errors = Vec::new();
    let workload = match args
        .workload
        .clone()
        .or_else(|| workload::derive(&args.command))
    {
        Some(w) if workload::valid(&w) => Some(w),
        Some(w) => {
            errors.push(format!(
                "--workload: {w:?} must be 1-128 characters of A-Z a-z 0-9 . _ -"
            ));
            None
        }
        None => {
            errors.push("no command given (headroom-sidecar run [OPTIONS] -- CMD ARGS...)".into());
            None
        }
    };
    let peak = match args.peak.as_deref().map(parse_size) {
        None => None,
        Some(Ok(0)) => {
            errors.push("--peak: must be larger than 0".into());
            None
        }
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            errors.push(format!("--peak: {e}"));
            None
        }
    };
    let timeout = match args.timeout.as_deref().map(parse_duration) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            errors.push(format!("--timeout: {e}"));
            None
        }
    };
    let Some(workload) = workload.filter(|_| errors.is_empty()) else {
        for e in errors {
            eprintln!("headroom-sidecar: {e}");
        }
        return ExitCode::from(2);
    };
    let request = api::AdmissionRequest {
        workload,
        peak_bytes: peak,
        device: args.device.clone(),
        command: args.command.clone(),
    };
    launch::run(
        &Client::new(args.socket.socket),
        launch::RunRequest {
            request,
            timeout,
            command: args.command,
        },
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(a) => serve::serve(*a),
        Command::Run(a) => run(a),
        Command::Plan(a) => plan::run(a),
        Command::Profiles(p) => {
            let client = Client::new(p.socket.socket);
            match p.action {
                ProfilesAction::List => profiles_cmd::list(&client),
                ProfilesAction::Show { name } => profiles_cmd::show(&client, &name),
                ProfilesAction::Export { output } => {
                    profiles_cmd::export(&client, output.as_deref())
                }
                ProfilesAction::Import { file } => profiles_cmd::import(&client, &file),
            }
        }
    }
}
