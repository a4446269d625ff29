//! `--completions SHELL`: clap_complete's script for the flags, plus a hook
//! per shell that completes task names (and aliases) from the montage.toml
//! in scope, by calling `mtr --complete-tasks` each time.
//!
//! `--complete-tasks` is handled before clap parses the command line (see
//! [`crate::app::main`]), so it appears in no help and no generated script.
//! The hooks honour `-f FILE` and `-C DIR` already typed on the line.

use std::ffi::OsString;

use clap::{CommandFactory, Parser};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::config::load;

/// The hidden first argument the scripts call: prints one line per task,
/// `NAME<TAB>DESCRIPTION`.
pub const TASKS_FLAG: &str = "--complete-tasks";

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "mtr", &mut buf);
    let base = String::from_utf8_lossy(&buf).into_owned();
    match shell {
        Shell::Bash => bash(&base),
        Shell::Zsh => zsh(&base),
        Shell::Fish => fish(&base),
        Shell::PowerShell => powershell(&base),
        Shell::Elvish => elvish(&base),
        _ => base,
    }
}

/// `mtr --complete-tasks [-f FILE] [-C DIR]`: the task names in scope. Prints
/// nothing when there is no (valid) montage.toml: completion must stay quiet.
pub fn print_tasks(rest: &[OsString]) {
    let argv = std::iter::once(OsString::from("mtr")).chain(rest.iter().cloned());
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|_| Cli::parse_from(["mtr"]));
    let Ok(file) = crate::app::config_path(&cli) else {
        return;
    };
    let Ok(config) = load::load(&file) else { return };
    print!("{}", task_lines(&config));
}

/// One `NAME<TAB>DESCRIPTION` line per visible task and alias, in
/// declaration order (hidden `_tasks` are runnable but not offered).
fn task_lines(config: &crate::config::Config) -> String {
    let mut out = String::new();
    for t in config.tasks.values().filter(|t| !t.hidden()) {
        let desc = t.description.as_deref().unwrap_or("").replace(['\t', '\n'], " ");
        out.push_str(&format!("{}\t{desc}\n", t.name));
        for alias in &t.aliases {
            out.push_str(&format!("{alias}\talias of {}\n", t.name));
        }
    }
    out
}

/// Options that take a value (their next word is not a task).
fn value_options() -> Vec<String> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        if arg.is_positional() || !arg.get_action().takes_values() || arg.get_id() == "graph" {
            continue;
        }
        out.extend(arg.get_short().map(|s| format!("-{s}")));
        out.extend(arg.get_long().map(|l| format!("--{l}")));
    }
    out
}

fn bash(base: &str) -> String {
    let hook = r#"
# Task names (and aliases) come from the montage.toml in scope: mtr is asked
# each time, with the `-f`/`-C` already on the line.
_mtr_task_names() {
    local i args=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -f|--file|-C|--dir) args+=("${COMP_WORDS[i]}" "${COMP_WORDS[i+1]}") ;;
            --file=*|--dir=*) args+=("${COMP_WORDS[i]}") ;;
        esac
    done
    command mtr --complete-tasks "${args[@]}" 2>/dev/null | while IFS=$'\t' read -r name _; do
        printf '%s\n' "$name"
    done
}

_mtr_complete() {
    # Rebuild the word under the cursor: bash splits words at `:` and `=`
    # (COMP_WORDBREAKS), and task names such as `docker:build` contain them.
    local line="${COMP_LINE:0:COMP_POINT}"
    local cur="${line##*[[:space:]]}"
    local -a before
    read -r -a before <<< "${line%"$cur"}"
    local prev="${before[${#before[@]}-1]}"
    local pre=""
    case "$cur" in
        --graph=*) pre="--graph="; cur="${cur#--graph=}" ;;
        -*) _mtr "$@"; return ;;
    esac
    case "$prev" in
        --graph) ;;
        __VALUE_OPTIONS__) _mtr "$@"; return ;;
    esac
    local IFS=$'\n'
    COMPREPLY=($(compgen -P "$pre" -W "$(_mtr_task_names)" -- "$cur"))
    # Bash replaces only the part after the last word break; answer with that part.
    local full="$pre$cur" wb="" c
    for c in : =; do
        [[ $COMP_WORDBREAKS == *"$c"* ]] && wb+="$c"
    done
    if [[ -n $wb && $full == *["$wb"]* ]]; then
        local cut="${full%"${full##*["$wb"]}"}"
        COMPREPLY=("${COMPREPLY[@]#"$cut"}")
    fi
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _mtr_complete -o nosort -o bashdefault -o default mtr
else
    complete -F _mtr_complete -o bashdefault -o default mtr
fi
"#;
    format!(
        "{base}{}",
        hook.replace("__VALUE_OPTIONS__", &value_options().join("|"))
    )
}

/// zsh: clap's `_arguments` spec completes the positional arguments and
/// `--graph`'s value with `_default`; point both at `_mtr_tasks`.
fn zsh(base: &str) -> String {
    let helper = r#"(( $+functions[_mtr_tasks] )) ||
_mtr_tasks() {
    # `opt_args` (from `_mtr`'s `_arguments`) holds the `-f`/`-C` already typed.
    local -a cfg items
    local name desc line
    [[ -n ${opt_args[-f]:-${opt_args[--file]}} ]] && cfg+=(--file "${(Q)${opt_args[-f]:-${opt_args[--file]}}}")
    [[ -n ${opt_args[-C]:-${opt_args[--dir]}} ]] && cfg+=(--dir "${(Q)${opt_args[-C]:-${opt_args[--dir]}}}")
    for line in ${(f)"$(_call_program tasks mtr --complete-tasks ${(q)cfg} 2>/dev/null)"}; do
        name=${line%%$'\t'*}
        desc=${line#*$'\t'}
        items+=("${name//:/\\:}:$desc")
    done
    _describe -t tasks 'mtr task' items
}

"#;
    let mut out = base
        .lines()
        .map(|l| {
            if l.starts_with("'*::args") || l.starts_with("'--graph=") {
                l.replace(":_default'", ":_mtr_tasks'")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    match out.find("if [ \"$funcstack[1]\" = \"_mtr\" ]") {
        Some(at) => out.insert_str(at, helper),
        None => out = format!("{helper}{out}"),
    }
    out
}

fn fish(base: &str) -> String {
    let hook = r#"
# Task names (and aliases) come from the montage.toml in scope.
function __mtr_tasks
    set -l tokens (commandline -opc)
    set -l cfg
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case -f --file -C --dir
                if test $i -lt (count $tokens)
                    set -a cfg $tokens[$i] $tokens[(math $i + 1)]
                end
            case '--file=*' '--dir=*'
                set -a cfg $tokens[$i]
        end
    end
    command mtr --complete-tasks $cfg 2>/dev/null
end

function __mtr_wants_task
    string match -q -- '-*' (commandline -ct); and return 1
    set -l prev (commandline -opc)[-1]
    contains -- $prev __VALUE_OPTIONS__; and return 1
    return 0
end

complete -c mtr -n __mtr_wants_task -f -a '(__mtr_tasks)'
"#;
    // `--graph` takes a task, not a file.
    let base: String = base
        .lines()
        .map(|l| {
            if l.starts_with("complete -c mtr -l graph ") {
                format!("{l} -f -a '(__mtr_tasks)'\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    format!(
        "{base}{}",
        hook.replace("__VALUE_OPTIONS__", &value_options().join(" "))
    )
}

/// PowerShell: add the task names to clap's candidates before they are
/// filtered by the word being completed.
fn powershell(base: &str) -> String {
    let hook = r#"    if (-not $wordToComplete.StartsWith('-')) {
        $cfg = @()
        for ($i = 1; $i -lt $commandElements.Count - 1; $i++) {
            if (@('-f', '--file', '-C', '--dir') -contains $commandElements[$i].Extent.Text) {
                $cfg += $commandElements[$i].Extent.Text, $commandElements[$i + 1].Extent.Text
            }
        }
        $completions += @(mtr --complete-tasks @cfg 2>$null | ForEach-Object {
            $name, $desc = $_ -split "`t", 2
            if (-not $desc) { $desc = $name }
            [CompletionResult]::new($name, $name, [CompletionResultType]::ParameterValue, $desc)
        })
    }

"#;
    insert_before(base, "    $completions.Where{", hook)
}

/// Elvish: clap's completer only knows the flags, keyed by the words typed
/// so far; after a task name it would look up a missing key.
fn elvish(base: &str) -> String {
    let hook = r#"    if (has-key $completions $command) {
        $completions[$command]
    }
    if (not (str:has-prefix $words[-1] '-')) {
        try {
            mtr --complete-tasks 2>/dev/null | from-lines | each {|line|
                var parts = [(str:split "\t" $line)]
                var desc = ''
                if (> (count $parts) 1) {
                    set desc = $parts[1]
                }
                cand $parts[0] $desc
            }
        } catch { }
    }
"#;
    match base.rfind("    $completions[$command]\n") {
        Some(at) => {
            let mut out = base.to_string();
            out.replace_range(at..at + "    $completions[$command]\n".len(), hook);
            out
        }
        None => base.to_string(),
    }
}

fn insert_before(base: &str, marker: &str, text: &str) -> String {
    match base.rfind(marker) {
        Some(at) => {
            let mut out = base.to_string();
            out.insert_str(at, text);
            out
        }
        None => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The hooks patch clap_complete's output at known places; a new
    // clap_complete that moves them must fail here, not in users' shells.
    #[test]
    fn every_script_calls_back_for_task_names() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell, Shell::Elvish] {
            let s = script(shell);
            assert!(s.contains("mtr --complete-tasks"), "{shell}: no task hook");
        }
    }

    #[test]
    fn fish_graph_takes_a_task() {
        let s = script(Shell::Fish);
        let graph = s.lines().find(|l| l.starts_with("complete -c mtr -l graph ")).unwrap();
        assert!(graph.ends_with("-f -a '(__mtr_tasks)'"), "{graph}");
    }

    #[test]
    fn zsh_positionals_and_graph_complete_tasks() {
        let s = script(Shell::Zsh);
        let args = s.lines().find(|l| l.starts_with("'*::args")).unwrap();
        assert!(args.ends_with(":_mtr_tasks' \\"), "{args}");
        let graph = s.lines().find(|l| l.starts_with("'--graph=")).unwrap();
        assert!(graph.ends_with(":_mtr_tasks' \\"), "{graph}");
        assert!(s.find("_mtr_tasks() {").unwrap() < s.find("if [ \"$funcstack[1]\" = \"_mtr\" ]").unwrap());
    }

    #[test]
    fn powershell_and_elvish_hooks_are_inside_the_completer() {
        let ps = script(Shell::PowerShell);
        assert!(ps.find("mtr --complete-tasks").unwrap() < ps.find("$completions.Where{").unwrap());
        let elv = script(Shell::Elvish);
        assert!(elv.contains("if (has-key $completions $command)"));
    }

    #[test]
    fn value_options_exclude_flags_and_graph() {
        let opts = value_options();
        for o in ["-f", "--file", "-C", "--dir", "-j", "--format", "--summary", "--color"] {
            assert!(opts.contains(&o.to_string()), "{o}");
        }
        for o in ["--graph", "--list", "-n", "--vars"] {
            assert!(!opts.contains(&o.to_string()), "{o}");
        }
    }
}
