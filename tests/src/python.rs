//! The Python `hl7` package (PyPI), an independent HL7/MLLP implementation: the MLLP
//! interop tests talk to it and the e2e bench runs a pass-through written with it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The pinned version of the `hl7` package.
pub const HL7_PACKAGE: &str = "hl7==0.4.5";

/// The python of a venv with `hl7` 0.4.5 importable, created on first use at
/// `${CARGO_TARGET_DIR:-<repo>/target}/tmp/hl7-0.4.5-venv` (`python3 -m venv`, then
/// `pip install hl7==0.4.5`); or why there is none (no python3 or venv module, the
/// package index unreachable), for the caller to print.
pub fn hl7_python() -> Result<&'static Path, &'static str> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(install_venv)
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(String::as_str)
}

fn install_venv() -> Result<PathBuf, String> {
    let venv = crate::target_dir().join("tmp").join("hl7-0.4.5-venv");
    let python = venv.join("bin").join("python");
    let has_hl7 = |python: &Path| {
        Command::new(python)
            .args([
                "-c",
                "import hl7, sys; sys.exit(0 if hl7.__version__ == '0.4.5' else 1)",
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_hl7(&python) {
        return Ok(python);
    }
    let created = Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
    if !created.is_ok_and(|s| s.success()) {
        return Err(
            "python3 with the venv module is not available (Debian: apt-get install python3-venv)".into(),
        );
    }
    let pip = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--timeout",
            "30",
            "--retries",
            "2",
            HL7_PACKAGE,
        ])
        .output()
        .map_err(|e| format!("cannot run pip of {}: {e}", python.display()))?;
    if !pip.status.success() {
        return Err(format!(
            "pip could not install {HL7_PACKAGE} into {} (package index unreachable?): {}",
            venv.display(),
            String::from_utf8_lossy(&pip.stderr).trim()
        ));
    }
    if has_hl7(&python) {
        Ok(python)
    } else {
        Err(format!(
            "{HL7_PACKAGE} installed into {} but not importable",
            venv.display()
        ))
    }
}
