//! Secrets: a variable or an env value marked `secret = true` is printed as
//! `***` everywhere mtr prints, and `.mtr/` never holds any variable or
//! env value in plain text.

use crate::common::*;

const TOKEN: &str = "tok-3f9a1c7e-SECRET";
const PASSWORD: &str = "hunter2-pass-SECRET";
const API_KEY: &str = "apikey-77d1-SECRET";
/// Not secret, but not stored in `.mtr/` either.
const PLAIN: &str = "plain-value-5e1b-VISIBLE";

fn project() -> Project {
    Project::new()
        .file(
            "montage.toml",
            r#"
[vars]
token = { env = "REGISTRY_TOKEN", secret = true }
key = { env = "API_KEY_SOURCE" }
plain = { env = "PLAIN_VALUE" }

[env]
API_KEY = { value = "{{ key }}", secret = true }
PLAIN_ENV = "{{ plain }}"

[tasks.login]
inputs = ["src/**"]
env = { PASSWORD = { value = "hunter2-pass-SECRET", secret = true } }
run = [
  "echo login with {{ token }} as {{ plain }}",
  "echo \"env: $API_KEY $PASSWORD $PLAIN_ENV\"",
  "echo \"stderr: {{ token }}\" >&2",
]

[tasks.leak]
inputs = []
run = "echo \"raw env: $REGISTRY_TOKEN\""

[tasks.fail]
inputs = []
run = "echo \"cannot log in with {{ token }}\" >&2; exit 3"

[tasks.ship]
inputs = []
[tasks.ship.container]
image = "busybox"
env = { PASSWORD = { value = "hunter2-pass-SECRET", secret = true }, TOKEN = "{{ token }}" }
command = ["true"]
"#,
        )
        .file("src/a.txt", "a\n")
}

fn with_env(p: &Project, args: &[&str], token: &str) -> Output {
    p.mtr(args)
        .env("REGISTRY_TOKEN", token)
        .env("API_KEY_SOURCE", API_KEY)
        .env("PLAIN_VALUE", PLAIN)
        .output()
}

#[track_caller]
fn assert_masked(out: &Output, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "secret {s:?} printed\n{out}"
        );
    }
}

#[test]
fn secrets_are_masked_in_plans_output_explanations_and_summaries() {
    let p = project();
    let all = [TOKEN, PASSWORD, API_KEY];
    // The plan (commands rendered with the values).
    let plan = with_env(&p, &["--dry-run", "login", "ship"], TOKEN);
    plan.success();
    assert_masked(&plan, &all);
    assert!(
        plan.stdout.contains("echo login with *** as plain-value-5e1b-VISIBLE"),
        "{plan}"
    );
    assert!(plan.stdout.contains("PASSWORD=***"), "{plan}");
    assert!(plan.stdout.contains("TOKEN=***"), "{plan}");
    // The run: commands, task output on both streams.
    let out = with_env(&p, &["login"], TOKEN);
    out.success();
    assert_masked(&out, &all);
    assert!(out.stdout.contains("env: *** *** plain-value-5e1b-VISIBLE"), "{out}");
    assert!(out.stderr.contains("[login] echo login with *** as"), "{out}");
    assert!(out.stderr.contains("stderr: ***"), "{out}");
    // --explain after the secret changed names the variable, not the value.
    let out = with_env(&p, &["--explain", "login"], "another-token-SECRET");
    out.success();
    assert_masked(&out, &["another-token-SECRET", TOKEN]);
    assert!(out.stderr.contains("variable `token` changed"), "{out}");
    // A secret only read from the environment by the command is masked too.
    let out = with_env(&p, &["leak"], TOKEN);
    out.success();
    assert!(out.stdout.contains("raw env: ***"), "{out}");
    // A failure message quoting it, and the JSON summary.
    let summary = p.path("summary.json");
    let out = with_env(&p, &["fail", "--summary", summary.to_str().unwrap()], TOKEN);
    out.code(3);
    assert_masked(&out, &all);
    assert!(out.stderr.contains("cannot log in with ***"), "{out}");
    let json = p.read("summary.json");
    assert!(!json.contains(TOKEN), "{json}");
}

#[test]
fn each_line_of_a_multi_line_secret_is_masked() {
    let p = project();
    let pem = "-----BEGIN KEY-----\nc2VjcmV0LWxpbmUtb25l\nc2VjcmV0LWxpbmUtdHdv\n-----END KEY-----";
    let out = p
        .mtr(&["leak"])
        .env("REGISTRY_TOKEN", pem)
        .env("API_KEY_SOURCE", API_KEY)
        .env("PLAIN_VALUE", PLAIN)
        .output();
    out.success();
    assert!(!out.stdout.contains("c2VjcmV0LWxpbmUtb25l"), "{out}");
    assert!(!out.stdout.contains("c2VjcmV0LWxpbmUtdHdv"), "{out}");
}

/// `.mtr/` holds digests only: no variable or env value, secret or not.
#[test]
fn no_variable_or_env_value_is_stored_in_the_state() {
    let p = project();
    with_env(&p, &["login", "leak"], TOKEN).success();
    with_env(&p, &["login"], "rotated-token-SECRET").success();
    let mut files = vec![p.path(".mtr")];
    let mut checked = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for value in [TOKEN, "rotated-token-SECRET", PASSWORD, API_KEY, PLAIN] {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "`{}` holds {value:?}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 1, "the state was written");
}

#[test]
fn a_secret_env_value_needs_a_value() {
    let p = Project::new().file(
        "montage.toml",
        "[env]\nA = { secret = true }\nB = { value = \"b\", secret = \"yes\", nope = 1 }\n\n[tasks.t]\nrun = \"true\"\n",
    );
    let out = p.run(&["t"]);
    out.code(2);
    out.stderr_has("`env.A` needs a `value`")
        .stderr_has("`env.B.secret` must be `true` or `false`")
        .stderr_has("unknown key `nope`");
}
