//! `[builders.NAME]`: the buildx builder mtr creates, and the commands that
//! (re)create it. A digest of the rendered section says when it changed.

use super::ActionError;
use crate::config::Builder;
use crate::render::Renderer;

/// A builder section with its templates rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderSpec {
    pub name: String,
    pub driver: String,
    pub driver_opts: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub nodes: Vec<(String, Vec<String>)>,
}

pub fn compile(b: &Builder, r: &Renderer) -> Result<BuilderSpec, ActionError> {
    let mut nodes = Vec::new();
    for n in &b.nodes {
        nodes.push((r.render(&n.endpoint)?, r.render_split(&n.platforms)?));
    }
    Ok(BuilderSpec {
        name: b.name.clone(),
        driver: r
            .render_opt(&b.driver)?
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "docker-container".into()),
        driver_opts: r.render_list(&b.driver_opts)?,
        insecure_registries: r.render_split(&b.insecure_registries)?,
        nodes,
    })
}

impl BuilderSpec {
    /// The buildkitd.toml mtr writes for this builder.
    pub fn buildkitd_config(&self) -> String {
        let mut out = String::from("# written by mtr from [builders.");
        out.push_str(&self.name);
        out.push_str("] in montage.toml\n");
        for reg in &self.insecure_registries {
            out.push_str(&format!("\n[registry.\"{reg}\"]\n  http = true\n  insecure = true\n"));
        }
        out
    }

    /// Identifies the configuration: a change means "recreate the builder".
    pub fn digest(&self) -> String {
        let mut h = blake3::Hasher::new();
        for part in [self.driver.as_str()]
            .into_iter()
            .chain(self.driver_opts.iter().map(String::as_str))
            .chain(["|"])
            .chain(self.insecure_registries.iter().map(String::as_str))
        {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        for (endpoint, platforms) in &self.nodes {
            h.update(endpoint.as_bytes());
            h.update(b"\0");
            h.update(platforms.join(",").as_bytes());
            h.update(b"\0");
        }
        h.finalize().to_hex()[..16].to_string()
    }

    /// The `docker buildx create` commands, given the config file path.
    pub fn create_commands(&self, config_file: &str) -> Vec<Vec<String>> {
        let base = |extra: &[String]| -> Vec<String> {
            let mut argv: Vec<String> = ["docker", "buildx", "create", "--name"].map(String::from).to_vec();
            argv.push(self.name.clone());
            argv.extend(extra.iter().cloned());
            argv
        };
        let mut common = vec!["--driver".to_string(), self.driver.clone()];
        for opt in &self.driver_opts {
            common.extend(["--driver-opt".into(), opt.clone()]);
        }
        // A remote daemon reads its own buildkitd.toml; buildx has no
        // config to hand it.
        if self.driver != "remote" {
            common.extend(["--config".into(), config_file.to_string()]);
        }
        if self.nodes.is_empty() {
            let mut argv = base(&common);
            argv.push("--bootstrap".into());
            return vec![argv];
        }
        let mut cmds = Vec::new();
        for (i, (endpoint, platforms)) in self.nodes.iter().enumerate() {
            let mut extra = if i == 0 {
                common.clone()
            } else {
                vec!["--append".to_string()]
            };
            extra.extend(["--node".into(), format!("{}-{i}", self.name)]);
            if !platforms.is_empty() {
                extra.extend(["--platform".into(), platforms.join(",")]);
            }
            let mut argv = base(&extra);
            if i + 1 == self.nodes.len() {
                argv.push("--bootstrap".into());
            }
            argv.push(endpoint.clone());
            cmds.push(argv);
        }
        cmds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(nodes: Vec<(String, Vec<String>)>) -> BuilderSpec {
        BuilderSpec {
            name: "mb".into(),
            driver: "remote".into(),
            driver_opts: vec!["network=host".into()],
            insecure_registries: vec!["10.0.0.1:5000".into()],
            nodes,
        }
    }

    #[test]
    fn creates_one_command_per_node() {
        let s = spec(vec![
            ("tcp://a:1234".into(), vec!["linux/amd64".into()]),
            ("tcp://b:1234".into(), vec!["linux/arm64".into()]),
        ]);
        let cmds = s.create_commands("/r/.mtr/builders/mb/buildkitd.toml");
        assert_eq!(
            cmds[0].join(" "),
            "docker buildx create --name mb --driver remote --driver-opt network=host --node mb-0 --platform linux/amd64 tcp://a:1234"
        );
        assert_eq!(
            cmds[1].join(" "),
            "docker buildx create --name mb --append --node mb-1 --platform linux/arm64 --bootstrap tcp://b:1234"
        );
        assert!(
            s.buildkitd_config()
                .contains("[registry.\"10.0.0.1:5000\"]\n  http = true\n  insecure = true")
        );
    }

    #[test]
    fn digest_changes_with_the_section() {
        let a = spec(vec![]);
        let mut b = spec(vec![]);
        b.insecure_registries.push("other:5000".into());
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest(), spec(vec![]).digest());
    }
}
