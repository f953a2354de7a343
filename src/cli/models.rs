//! `shotlist models`: the catalogue (every model shotlist knows), its limits, prices and
//! the sources of each fact, for people (`shotlist models`) and tools (`--json`).

use std::fmt::Write;
use std::process::ExitCode;

use crate::catalogue::{Catalogue, Model};
use crate::exit_codes;
use crate::limits::Api;

/// Arguments of `shotlist models`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the models of this API (`azure-jobs`, `openai-videos`).
    #[arg(long, value_parser = parse_api)]
    pub api: Option<Api>,
    /// Print JSON: `{providers: [...], models: [...]}`, every fact with its sources.
    #[arg(long)]
    pub json: bool,
}

fn parse_api(s: &str) -> Result<Api, String> {
    Api::parse(s).ok_or_else(|| {
        let known: Vec<&str> = Api::ALL.iter().map(|a| a.as_str()).collect();
        format!("unknown API `{s}`; known: {}", known.join(", "))
    })
}

pub async fn execute(args: Args) -> miette::Result<ExitCode> {
    let catalogue = Catalogue::builtin();
    let wanted = |api: Api| args.api.is_none_or(|a| a == api);
    if args.json {
        let providers: Vec<_> = catalogue
            .providers
            .iter()
            .filter(|p| wanted(p.api))
            .collect();
        let models: Vec<_> = catalogue
            .models
            .iter()
            .filter(|m| wanted(m.provider))
            .collect();
        let out = serde_json::json!({ "providers": providers, "models": models });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("catalogue types serialize")
        );
    } else {
        print!("{}", render_text(catalogue, &wanted));
    }
    Ok(ExitCode::from(exit_codes::SUCCESS))
}

/// One block per model: what a manifest may ask of it and what it costs.
pub fn render_text(catalogue: &Catalogue, wanted: &dyn Fn(Api) -> bool) -> String {
    let mut out = String::new();
    for api in Api::ALL.into_iter().filter(|a| wanted(*a)) {
        let p = catalogue.provider(api);
        let _ = writeln!(
            out,
            "{api}: default model `{}`, {} jobs at once, {} requests a minute, outputs kept {} h{}",
            p.default_model,
            p.max_running_jobs,
            p.requests_per_minute,
            p.retention_seconds / 3600,
            if p.any_model_name {
                "; other model names are accepted"
            } else {
                ""
            }
        );
        for m in catalogue.models_of(api) {
            model_text(&mut out, m, p.takes_per_job);
        }
        out.push('\n');
    }
    out
}

fn model_text(out: &mut String, m: &Model, takes_per_job: bool) {
    let sizes: Vec<String> = m.sizes.iter().map(|s| s.size.to_string()).collect();
    let seconds = m.seconds.rule().map(|r| r.describe()).unwrap_or_else(|e| e);
    let max_takes = m.sizes.iter().map(|s| s.max_takes).max().unwrap_or(1);
    let price = match &m.price {
        Some(p) if p.by_size.is_empty() => format!("{} {}/s", p.currency, money_rate(p.per_second)),
        Some(p) => {
            let others: Vec<String> = p
                .by_size
                .iter()
                .map(|b| {
                    let mut when = Vec::new();
                    if !b.sizes.is_empty() {
                        let sizes: Vec<String> = b.sizes.iter().map(|s| s.to_string()).collect();
                        when.push(format!("at {}", sizes.join(", ")));
                    }
                    for (k, v) in &b.params {
                        when.push(format!("with {k}: {v}"));
                    }
                    format!("{}/s {}", money_rate(b.per_second), when.join(" "))
                })
                .collect();
            format!(
                "{} {}/s; {}",
                p.currency,
                money_rate(p.per_second),
                others.join("; ")
            )
        }
        None => "unknown".into(),
    };
    let _ = writeln!(out, "  {}  (`{}`)", m.id, m.provider_model);
    if let Some(d) = &m.description {
        let _ = writeln!(out, "    {d}");
    }
    let _ = writeln!(out, "    sizes:   {}", sizes.join(", "));
    let _ = writeln!(
        out,
        "    seconds: {seconds} (default {})",
        m.default_seconds
    );
    let _ = writeln!(
        out,
        "    takes:   up to {max_takes} {}",
        if takes_per_job {
            "in one job (fewer at large sizes)"
        } else {
            "a shot, one job each"
        }
    );
    let _ = writeln!(
        out,
        "    prompt:  {} to {} characters",
        m.prompt_chars.min, m.prompt_chars.max
    );
    let _ = writeln!(out, "    price:   {price}");
    if !m.params.is_empty() {
        let params: Vec<String> = m
            .params
            .iter()
            .map(|p| {
                let kind = match p.kind {
                    crate::catalogue::ParamKind::Integer => "whole number",
                    crate::catalogue::ParamKind::Number => "number",
                    crate::catalogue::ParamKind::Boolean => "true/false",
                    crate::catalogue::ParamKind::String if !p.one_of.is_empty() => "one of a list",
                    crate::catalogue::ParamKind::String => "text",
                };
                format!(
                    "{} ({kind}{})",
                    p.name,
                    if p.required { ", required" } else { "" }
                )
            })
            .collect();
        let _ = writeln!(out, "    params:  {}", params.join(", "));
    }
    if let Some(images) = &m.images {
        let mut takes = Vec::new();
        if let Some(s) = &images.first_frame {
            takes.push(format!(
                "image{}",
                if s.required { " (required)" } else { "" }
            ));
        }
        if images.last_frame.is_some() {
            takes.push("last_frame".to_owned());
        }
        if let Some(r) = &images.references {
            takes.push(format!("references (up to {})", r.max));
        }
        let formats: Vec<&str> = images.formats.iter().map(|f| f.name()).collect();
        let _ = writeln!(
            out,
            "    images:  {}; {}, up to {} bytes{}",
            takes.join(", "),
            formats.join("/"),
            images.max_bytes,
            if images.match_size {
                ", at the video's size"
            } else {
                ""
            }
        );
    }
    for s in &m.sources {
        let _ = writeln!(
            out,
            "    source:  {} ({}; {})",
            s.url,
            s.date,
            s.facts.join(", ")
        );
    }
}

/// A rate with as many decimals as it has (0.10, 0.112), at least two.
fn money_rate(r: f64) -> String {
    let three = format!("{r:.3}");
    if three.ends_with('0') {
        format!("{r:.2}")
    } else {
        three
    }
}
