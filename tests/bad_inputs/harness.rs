//! The harness of `tests/bad_inputs.rs`: a fresh folder per case, the real binary run in it, and
//! a snapshot of every file (path → SHA-256) to prove that nothing the user had was changed or
//! half-written.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path (relative to the case folder) → SHA-256 of the bytes.
pub type Snapshot = BTreeMap<PathBuf, Vec<u8>>;

/// Every file under `dir`, hashed (folders are walked; symlinks are not followed).
pub fn snapshot(dir: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, Sha256::digest(&bytes).to_vec());
            }
        }
    }
    out
}

/// One case: a temporary folder with the user's files in it.
pub struct Case {
    pub dir: tempfile::TempDir,
    before: Snapshot,
}

impl Case {
    /// A folder holding `files` (relative path, bytes).
    pub fn new(files: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            let path = dir.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(path, bytes).unwrap();
        }
        let before = snapshot(dir.path());
        Self { dir, before }
    }

    /// A case with the named fixtures of `tests/fixtures/data` copied in, plus `files`.
    pub fn with_fixtures(fixtures: &[&str], files: &[(&str, &[u8])]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data");
        let copied: Vec<(String, Vec<u8>)> = fixtures
            .iter()
            .map(|f| ((*f).to_string(), std::fs::read(root.join(f)).unwrap()))
            .collect();
        let mut all: Vec<(&str, &[u8])> = copied
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        all.extend_from_slice(files);
        Self::new(&all)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Takes a new "before" snapshot (after setting up outputs of earlier commands).
    pub fn resnapshot(&mut self) {
        self.before = snapshot(self.dir.path());
    }

    /// Runs `modelc args` in the case folder.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// Runs `modelc args` in the case folder with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelc"));
        cmd.current_dir(self.dir.path()).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Runs, then asserts the exit status, that the JSON diagnostics have exactly `codes` (as a
    /// set, in any order) and that no file changed.
    pub fn expect(&self, args: &[&str], status: i32, codes: &[&str]) -> Vec<serde_json::Value> {
        self.expect_writing(args, status, codes, &[])
    }

    /// Like [`Case::expect`], but the files in `outputs` may be created or replaced.
    pub fn expect_writing(
        &self,
        args: &[&str],
        status: i32,
        codes: &[&str],
        outputs: &[&str],
    ) -> Vec<serde_json::Value> {
        let o = self.run(args);
        let shown = describe(args, &o);
        assert_eq!(o.status.code(), Some(status), "{shown}");
        let lines = json_lines(&o);
        let mut found: Vec<String> = diagnostics(&lines)
            .iter()
            .map(|d| d["code"].as_str().unwrap().to_string())
            .collect();
        found.sort();
        found.dedup();
        let mut wanted: Vec<String> = codes.iter().map(|c| (*c).to_string()).collect();
        wanted.sort();
        wanted.dedup();
        assert_eq!(found, wanted, "{shown}");
        self.assert_unchanged_except(outputs);
        lines
    }

    /// Every file the case had is byte-identical, and the only new files are `outputs` (no
    /// temporary file is left behind either).
    pub fn assert_unchanged_except(&self, outputs: &[&str]) {
        let after = snapshot(self.dir.path());
        let is_output = |p: &Path| outputs.iter().any(|o| Path::new(o) == p);
        for (path, hash) in &self.before {
            if is_output(path) {
                continue;
            }
            assert_eq!(
                after.get(path),
                Some(hash),
                "{} was changed or removed",
                path.display()
            );
        }
        for path in after.keys() {
            assert!(
                self.before.contains_key(path) || is_output(path),
                "unexpected new file {}",
                path.display()
            );
        }
    }
}

/// The command and its output, for assertion messages.
pub fn describe(args: &[&str], o: &Output) -> String {
    format!(
        "modelc {}\nstatus: {:?}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every stdout line as JSON (panics on a line that is not JSON).
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// The lines that are epoch records (they have an `epoch`; the run's summary has `epochs`).
pub fn epoch_records(lines: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    lines.iter().filter(|l| l.get("epoch").is_some()).collect()
}

/// The lines that are diagnostics (they have a `code`).
pub fn diagnostics(lines: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    lines.iter().filter(|l| l.get("code").is_some()).collect()
}

/// The first diagnostic with this code.
pub fn find<'a>(lines: &'a [serde_json::Value], code: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| l["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {lines:?}"))
}
