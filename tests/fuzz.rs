//! Property tests ("fuzzing") of the config loader and the template engine:
//! whatever text `montage.toml` holds, loading it either works or gives
//! diagnostics whose spans point inside the text — never a panic, never a
//! hang. Diagnostics are rendered with miette, as mtr prints them, which is
//! where a bad span would panic.
//!
//! Inputs come from three generators: arbitrary strings, TOML-shaped
//! documents built from mtr's own sections and keys (with templates,
//! escapes and multi-byte characters in the values), and random edits of
//! the example configs. The default case count keeps `cargo test` fast; a
//! long run is
//!
//! ```sh
//! PROPTEST_CASES=200000 cargo test --release --test fuzz
//! ```
//!
//! Every input that once failed is kept in [`REGRESSIONS`] below.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use miette::{GraphicalReportHandler, GraphicalTheme};
use mtr::config::Config;
use mtr::config::load::parse;
use mtr::config::template::Template;
use mtr::config::vars::Vars;
use mtr::render::{DepInfo, Renderer};
use proptest::prelude::*;

/// Inputs that once failed a property here, kept as regression cases.
/// (Names with control characters inside messages: miette renders the
/// message over several lines; nothing panicked.)
const REGRESSIONS: &[&str] = &[
    "[tasks.bench]\ndeps = [\"b\\nuild\"]\nrun = \"x\"\n[tasks.build]\nrun = \"y\"\n",
    "\n[tasks.a]\ndeps = ['''\n\r\n''']\n",
];

/// A case taking longer than this is a hang: the watchdog prints the input
/// and aborts (proptest itself cannot catch a case that never returns).
const HANG: Duration = Duration::from_secs(20);

static RUNNING: Mutex<Option<HashMap<ThreadId, (Instant, String)>>> = Mutex::new(None);

/// Runs `f` on `text` under the watchdog.
fn watched<T>(text: &str, f: impl FnOnce() -> T) -> T {
    static WATCHDOG: std::sync::Once = std::sync::Once::new();
    WATCHDOG.call_once(|| {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_millis(500));
                let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
                for (started, input) in running.iter().flat_map(|m| m.values()) {
                    if started.elapsed() > HANG {
                        eprintln!("a case ran for more than {HANG:?}; the input was:\n{input:?}");
                        std::process::abort();
                    }
                }
            }
        });
    });
    let id = std::thread::current().id();
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_default()
        .insert(id, (Instant::now(), text.to_string()));
    let out = f();
    if let Some(m) = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        m.remove(&id);
    }
    out
}

/// Loads `text` and checks everything a user could see of the result.
fn check_config(text: &str) {
    watched(text, || {
        let root = Path::new("/nonexistent/mtr-fuzz");
        match parse(text, "montage.toml", &root.join("montage.toml"), root) {
            Ok(config) => exercise(&config),
            Err(errors) => {
                assert!(!errors.is_empty(), "a failed load reports at least one error");
                for e in &errors {
                    assert!(!e.message.is_empty(), "an error without a message: {e:?}");
                    for (span, label) in &e.labels {
                        assert!(
                            span.start <= span.end && span.end <= text.len(),
                            "span {span:?} ({label}) outside the text ({} bytes) in {e:?}",
                            text.len()
                        );
                        assert!(
                            text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
                            "span {span:?} ({label}) not on character boundaries in {e:?}"
                        );
                    }
                    let mut out = String::new();
                    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
                        .render_report(&mut out, e)
                        .expect("a diagnostic renders");
                    assert!(!out.trim().is_empty(), "an empty rendering of {e:?}");
                }
            }
        }
    });
}

/// What mtr does with a loaded config before running anything: plan every
/// task, render its templates and compile its action (never `sh`: the
/// variables' commands are dropped first, fuzzed commands must not run).
fn exercise(config: &Config) {
    let mut config = config.clone();
    for var in config.vars.values_mut() {
        var.sh = None;
    }
    let names: Vec<String> = config.tasks.keys().cloned().collect();
    let plan = mtr::graph::Plan::new(&config, &names);
    assert_eq!(plan.order.len(), names.len(), "every task is planned once");
    let vars = Vars::new(&config, &[], HashMap::new()).expect("no assignments");
    let deps: HashMap<String, DepInfo> = names
        .iter()
        .map(|n| {
            let info = DepInfo {
                hash: "0123456789ab".into(),
                image: Some(format!("registry/{n}:0123456789ab")),
            };
            (n.clone(), info)
        })
        .collect();
    for task in config.tasks.values() {
        for hash in [None, Some("0123456789ab")] {
            let r = Renderer {
                vars: &vars,
                task: &task.name,
                root: "/nonexistent/mtr-fuzz",
                hash,
                deps: &deps,
            };
            for t in task.templates() {
                let _ = r.render(t);
            }
            if let Ok(compiled) = mtr::action::compile(&config, task, &r) {
                for step in &compiled.steps {
                    let _ = step.describe();
                }
            }
        }
    }
}

/// Parses a template and checks its error offsets and its rendering.
fn check_template(text: &str) {
    watched(text, || match Template::parse(text, 3..3 + text.len()) {
        Ok(t) => {
            let rendered = t
                .render::<()>(|r| Ok(format!("{{{{ {} }}}}", r.display())))
                .expect("the lookup never fails");
            // Rendering placeholders back as `{{ name }}` and parsing again
            // gives the same placeholders.
            if !text.contains("{{{{") {
                let again = Template::parse(&rendered, 0..0).expect("a rendered template parses again");
                assert_eq!(again.refs().collect::<Vec<_>>(), t.refs().collect::<Vec<_>>());
            }
            if !text.contains("{{") {
                assert_eq!(t.as_literal(), Some(text), "text without `{{{{` is literal");
            }
        }
        Err(e) => {
            assert!(!e.message.is_empty());
            let o = &e.offset;
            assert!(o.start <= o.end && o.end <= text.len(), "offset {o:?} outside {text:?}");
            assert!(
                text.is_char_boundary(o.start) && text.is_char_boundary(o.end),
                "offset {o:?} not on character boundaries of {text:?}"
            );
        }
    });
}

// ----- generators -----

const TOP: &[&str] = &["project", "vars", "env", "tasks", "builders", "cache"];
const KEYS: &[&str] = &[
    "name",
    "shell",
    "dotenv",
    "default",
    "env",
    "sh",
    "description",
    "volatile",
    "secret",
    "value",
    "group",
    "deps",
    "run",
    "image",
    "container",
    "deploy",
    "inputs",
    "outputs",
    "dir",
    "watch",
    "interactive",
    "aliases",
    "deprecated",
    "tags",
    "context",
    "dockerfile",
    "target",
    "platforms",
    "build_args",
    "cache_from",
    "cache_to",
    "builder",
    "ssh",
    "secrets",
    "push",
    "mounts",
    "command",
    "entrypoint",
    "workdir",
    "deployment",
    "manifests",
    "images",
    "namespace",
    "timeout",
    "undo_on_failure",
    "driver",
    "driver_opts",
    "insecure_registries",
    "nodes",
    "endpoint",
    "remote",
    "insecure",
];
const TASKS: &[&str] = &["a", "b", "dev-test", "c:d", "_hidden", "bad name", "é", ""];
const VARS: &[&str] = &["x", "registry", "token", "1x", "a-b", "_"];

/// Pieces of string contents: templates (good and bad), escapes,
/// multi-byte and odd characters; rarely one that breaks the TOML syntax.
fn piece() -> impl Strategy<Value = String> {
    let template = prop_oneof![
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{{{{".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        proptest::sample::select(VARS).prop_map(|v| format!("{{{{ {v} }}}}")),
        proptest::sample::select(VARS).prop_map(|v| format!("{{{{{v}}}}}")),
        proptest::sample::select(TASKS).prop_map(|t| format!("{{{{ tasks.{t}.hash }}}}")),
        proptest::sample::select(TASKS).prop_map(|t| format!("{{{{tasks.{t}.image}}}}")),
        Just("{{ env.HOME }}".to_string()),
        Just("{{ env. }}".to_string()),
        Just("{{ hash }}".to_string()),
        Just("{{ root }}".to_string()),
        Just("{{ task }}".to_string()),
        Just("{{ os }}{{arch}}".to_string()),
        Just("{{ }}".to_string()),
    ];
    let escape = prop_oneof![
        Just("\\n".to_string()),
        Just("\\t".to_string()),
        Just("\\\\".to_string()),
        Just("\\\"".to_string()),
        Just("\\u00e9".to_string()),
        Just("\\U0001F980".to_string()),
        Just("\\u007b\\u007b".to_string()),
    ];
    let odd = prop_oneof![
        Just("é".to_string()),
        Just("日本".to_string()),
        Just("🦀".to_string()),
        Just("\u{200b}".to_string()),
        Just("\u{feff}".to_string()),
        Just("#".to_string()),
        Just("'".to_string()),
        // Mapped, not filtered: rejected cases count against a long run.
        any::<char>().prop_map(|c| {
            let breaking = matches!(c, '"' | '\\') || c.is_control();
            String::from(if breaking { '·' } else { c })
        }),
    ];
    let breaking = prop_oneof![
        Just("\"".to_string()),
        Just("\\x".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        6 => "[a-z ./:=,*?!-]{1,6}",
        6 => template,
        2 => escape,
        2 => odd,
        1 => breaking,
    ]
}

fn string_value() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 0..6).prop_flat_map(|parts| {
        let body = parts.concat();
        prop_oneof![
            Just(format!("\"{body}\"")),
            Just(format!("'{}'", body.replace(['\'', '\n', '\r'], ""))),
            Just(format!("\"\"\"{body}\"\"\"")),
            Just(format!("'''\n{}'''", body.replace("'''", ""))),
        ]
    })
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => string_value(),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => Just("3.5".to_string()),
        1 => Just("nan".to_string()),
        1 => any::<bool>().prop_map(|b| b.to_string()),
        1 => Just("1979-05-27T07:32:00Z".to_string()),
        1 => proptest::sample::select(TASKS).prop_map(|t| format!("[\"{t}\"]")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::btree_map(key(), inner, 0..4).prop_map(|kv| {
                let items: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", items.join(", "))
            }),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => proptest::sample::select(KEYS).prop_map(str::to_string),
        4 => proptest::sample::select(TASKS).prop_map(|t| format!("\"{t}\"")),
        4 => proptest::sample::select(VARS).prop_map(|v| format!("\"{v}\"")),
        4 => "[a-zA-Z_][a-zA-Z0-9_-]{0,8}",
        4 => "\"[^\"\\\\\\p{Cc}]{0,6}\"",
        1 => "\"[^\"\\\\\n]{0,3}\"",
    ]
}

fn header() -> impl Strategy<Value = String> {
    let task = proptest::sample::select(TASKS).prop_map(|t| {
        if t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') && !t.is_empty() {
            t.to_string()
        } else {
            format!("\"{t}\"")
        }
    });
    prop_oneof![
        proptest::sample::select(TOP).prop_map(|t| format!("[{t}]")),
        task.clone().prop_map(|t| format!("[tasks.{t}]")),
        (
            task,
            proptest::sample::select(&["image", "container", "deploy", "env", "x"][..])
        )
            .prop_map(|(t, a)| format!("[tasks.{t}.{a}]")),
        Just("[builders.b]".to_string()),
        Just("[[builders.b.nodes]]".to_string()),
        Just("[vars.token]".to_string()),
        Just("[[tasks]]".to_string()),
        key().prop_map(|k| format!("[{k}]")),
    ]
}

/// A TOML-shaped document: sections of `key = value` lines.
fn document() -> impl Strategy<Value = String> {
    // Mostly distinct keys and headers: a repeated one is only a syntax error.
    let lines = proptest::collection::btree_map(key(), value(), 0..6)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>());
    let section = (header(), lines);
    (
        proptest::collection::vec((key(), value()).prop_map(|(k, v)| format!("{k} = {v}")), 0..2),
        proptest::collection::vec(section, 0..7),
    )
        .prop_map(|(top, sections)| {
            let mut doc = top.join("\n");
            let mut seen = std::collections::HashSet::new();
            for (h, lines) in sections {
                if !seen.insert(h.clone()) && !h.starts_with("[[") {
                    continue;
                }
                doc.push('\n');
                doc.push_str(&h);
                for l in lines {
                    doc.push('\n');
                    doc.push_str(&l);
                }
            }
            doc.push('\n');
            doc
        })
}

/// Real configs, to edit at random.
const SEEDS: &[&str] = &[
    include_str!("../examples/quickstart/montage.toml"),
    include_str!("../examples/montage-ai/montage.toml"),
    include_str!("../montage.toml"),
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..40usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), piece()).prop_map(|(at, s)| Edit::Insert(at, s)),
        (any::<usize>(), 1..80usize).prop_map(|(at, n)| Edit::Duplicate(at, n)),
    ]
}

/// Applies edits at character positions (so the text stays valid UTF-8).
fn mutate(seed: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for e in edits {
        let len = chars.len().max(1);
        match e {
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            Edit::Insert(at, s) => {
                let at = at % (chars.len() + 1);
                chars.splice(at..at, s.chars());
            }
            Edit::Duplicate(at, n) => {
                let at = at % len;
                let end = (at + n).min(chars.len());
                let copy: Vec<char> = chars[at.min(end)..end].to_vec();
                chars.splice(end..end, copy);
            }
        }
    }
    chars.into_iter().collect()
}

// ----- properties -----

proptest! {
    #[test]
    fn any_text_loads_or_gives_diagnostics(text in any::<String>()) {
        check_config(&text);
    }

    #[test]
    fn any_bytes_load_or_give_diagnostics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_config(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn toml_shaped_documents_load_or_give_diagnostics(doc in document()) {
        check_config(&doc);
    }

    #[test]
    fn edited_real_configs_load_or_give_diagnostics(
        seed in proptest::sample::select(SEEDS),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        check_config(&mutate(seed, &edits));
    }

    #[test]
    fn any_template_parses_or_gives_an_offset_inside_it(text in any::<String>()) {
        check_template(&text);
    }

    #[test]
    fn template_shaped_strings_parse_or_give_an_offset_inside_them(
        parts in proptest::collection::vec(piece(), 0..10),
    ) {
        check_template(&parts.concat());
    }
}

#[test]
fn regressions_load_or_give_diagnostics() {
    for text in REGRESSIONS {
        check_config(text);
        check_template(text);
    }
}

#[test]
fn the_seeds_load() {
    for seed in SEEDS {
        let root = Path::new("/nonexistent/mtr-fuzz");
        if let Err(e) = parse(seed, "montage.toml", &root.join("montage.toml"), root) {
            panic!("{e:?}");
        }
    }
}

/// Inputs built to be slow or deep: nesting far past any real file, long
/// dependency chains and cycles, tens of thousands of errors, huge
/// templates. Each must finish (the watchdog aborts a hang) with a result.
#[test]
fn pathological_inputs_finish() {
    // Smaller in a debug build, so `cargo test` stays quick.
    let n = |full: usize| if cfg!(debug_assertions) { full / 5 } else { full };
    let mut cases: Vec<(String, String)> = Vec::new();
    for depth in [1_000, n(100_000)] {
        cases.push((
            format!("{depth} nested arrays"),
            format!("a = {}{}", "[".repeat(depth), "]".repeat(depth)),
        ));
        cases.push((format!("{depth} unclosed arrays"), format!("a = {}", "[".repeat(depth))));
        cases.push((
            format!("{depth} nested inline tables"),
            format!("a = {}{}", "{ b = ".repeat(depth), "}".repeat(depth)),
        ));
        cases.push((
            format!("{depth} dotted keys"),
            format!("{} = 1", vec!["a"; depth].join(".")),
        ));
        cases.push((
            format!("{depth}-part header"),
            format!("[{}]", vec!["a"; depth].join(".")),
        ));
    }
    let mut chain = String::new();
    // (5000 once overflowed the stack: petgraph's Tarjan recursed per task.)
    for i in 0..5000 {
        chain.push_str(&format!(
            "[tasks.t{i}]\ndeps = [\"t{n}\"]\nrun = \"echo {{{{ tasks.t{n}.hash }}}}\"\n",
            n = i + 1
        ));
    }
    chain.push_str("[tasks.t5000]\nrun = \"x\"\n");
    cases.push(("a chain of 5000 tasks".into(), chain));
    let mut cycle = String::new();
    for i in 0..3000 {
        cycle.push_str(&format!("[tasks.t{i}]\ndeps = [\"t{}\"]\n", (i + 1) % 3000));
    }
    cases.push(("a cycle of 3000 tasks".into(), cycle));
    let mut vars = String::from("[vars]\n");
    for i in 0..3000 {
        vars.push_str(&format!("v{i} = \"{{{{ v{} }}}}\"\n", (i + 1) % 3000));
    }
    cases.push(("a cycle of 3000 variables".into(), vars));
    let mut errors = String::new();
    for i in 0..n(20_000) {
        errors.push_str(&format!("[tasks.t{i}]\nbogus = 1\nrun = \"{{{{ nope{i} }}}}\"\n"));
    }
    cases.push(("tens of thousands of errors".into(), errors));
    cases.push((
        "100000 placeholders".into(),
        format!("[tasks.a]\nrun = \"{}\"\n", "{{ x }}".repeat(n(100_000))),
    ));
    cases.push((
        "100000 `{{`".into(),
        format!("[tasks.a]\nrun = \"{}\"\n", "{{".repeat(n(100_000))),
    ));
    cases.push((
        "100000 `{{{{ x`".into(),
        format!("[tasks.a]\nrun = \"{}\"\n", "{{{{ x".repeat(n(100_000))),
    ));
    for (name, text) in &cases {
        watched(text, || {
            let root = Path::new("/nonexistent/mtr-fuzz");
            let result = parse(text, "montage.toml", &root.join("montage.toml"), root);
            // Rendering is checked on a few: all of 40,000 would only be slow.
            if let Err(errors) = &result {
                for e in errors.iter().take(3) {
                    let mut out = String::new();
                    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
                        .render_report(&mut out, e)
                        .unwrap_or_else(|_| panic!("{name}: a diagnostic renders"));
                }
            }
        });
    }
}
