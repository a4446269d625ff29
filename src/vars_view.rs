//! `--vars`: every variable of `[vars]`, its value and where it came from
//! (command line, environment, `sh`, default), as a table or JSON.
//!
//! Showing the variables resolves all of them, so each `sh` runs once. A
//! variable without a value is shown as such, with how to set it: that is
//! what `--vars` is for, not an error. Secrets print as `***`, also where
//! their value appears inside another variable's.

use serde::Serialize;

use crate::config::vars::{Origin, Vars};
use crate::report::Reporter;

/// One variable, resolved.
struct Row {
    name: String,
    value: Option<String>,
    origin: Option<Origin>,
    env: Option<String>,
    description: Option<String>,
    secret: bool,
    volatile: bool,
    missing: Option<String>,
}

fn rows(vars: &Vars, reporter: &Reporter) -> Vec<Row> {
    let defs: Vec<_> = vars.defs().cloned().collect();
    let values: Vec<_> = defs.iter().map(|d| vars.get(&d.name)).collect();
    // Resolve everything first, so every secret is known before masking.
    reporter.set_masks(vars.secrets());
    defs.into_iter()
        .zip(values)
        .map(|(d, v)| {
            let (value, origin, missing) = match v {
                Ok(v) if d.secret => (Some("***".to_string()), Some(v.origin), None),
                Ok(v) => (Some(reporter.mask(&v.value)), Some(v.origin), None),
                Err(m) => (None, None, Some(m.detail)),
            };
            Row {
                name: d.name,
                value,
                origin,
                env: d.env,
                description: d.description,
                secret: d.secret,
                volatile: d.volatile,
                missing,
            }
        })
        .collect()
}

/// The table printed by `mtr --vars`.
pub fn text(vars: &Vars, reporter: &Reporter) -> String {
    let rows = rows(vars, reporter);
    if rows.is_empty() {
        return "this montage.toml declares no [vars]\n".into();
    }
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let value = match &r.value {
                Some(v) if v.is_empty() => "\"\"".to_string(),
                Some(v) => v.replace('\n', "\\n"),
                None => "(no value)".to_string(),
            };
            let origin = r.origin.as_ref().map(ToString::to_string).unwrap_or_else(|| "-".into());
            let mut notes: Vec<String> = r.description.iter().cloned().collect();
            if r.secret {
                notes.push("[secret]".into());
            }
            if r.volatile {
                notes.push("[volatile]".into());
            }
            [r.name.clone(), value, origin, notes.join(" ")]
        })
        .collect();
    let header = ["NAME", "VALUE", "FROM", "DESCRIPTION"].map(String::from);
    let mut widths = [0; 3];
    for row in std::iter::once(&header).chain(&cells) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let missing: Vec<&Row> = rows.iter().filter(|r| r.missing.is_some()).collect();
    if !missing.is_empty() {
        out.push('\n');
        for r in missing {
            out.push_str(&format!(
                "`{}` has no value: {}\n",
                r.name,
                r.missing.as_deref().unwrap_or_default()
            ));
        }
    }
    out
}

#[derive(Serialize)]
struct JsonVars {
    vars: Vec<JsonVar>,
}

#[derive(Serialize)]
struct JsonVar {
    name: String,
    /// `null` when the variable has no value.
    value: Option<String>,
    /// `cli`, `env`, `sh`, `default`, or `null` without a value.
    origin: Option<&'static str>,
    /// The environment variable it is read from, if declared.
    env: Option<String>,
    description: Option<String>,
    secret: bool,
    volatile: bool,
    /// Why it has no value and how to set it.
    missing: Option<String>,
}

/// `mtr --vars --json`.
pub fn json(vars: &Vars, reporter: &Reporter) -> String {
    let vars = rows(vars, reporter)
        .into_iter()
        .map(|r| JsonVar {
            name: r.name,
            value: r.value,
            origin: r.origin.map(|o| match o {
                Origin::Cli => "cli",
                Origin::Env(_) => "env",
                Origin::Sh => "sh",
                Origin::Default => "default",
            }),
            env: r.env,
            description: r.description,
            secret: r.secret,
            volatile: r.volatile,
            missing: r.missing,
        })
        .collect();
    serde_json::to_string_pretty(&JsonVars { vars }).unwrap_or_default() + "\n"
}
