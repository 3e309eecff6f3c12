//! Vantage's official clients, unmodified, against the costd binary: `tests/clients/run.sh` installs the
//! pinned TypeScript and Python clients and runs their scenarios on SQLite and PostgreSQL (docs/clients.md).

use std::process::Command;

#[test]
fn vantages_own_clients_pass_their_scenarios_unmodified() {
    let have = |tool: &str| Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = ["node", "npm", "python3"].into_iter().filter(|t| !have(t)).collect();
    if !missing.is_empty() {
        assert!(std::env::var("CI").is_err(), "CI must run the client scenarios, but {missing:?} are missing");
        eprintln!("SKIPPED the Vantage client scenarios: {missing:?} not installed");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/run.sh");
    let out = Command::new("bash").arg(script).env("COSTD_BIN", env!("CARGO_BIN_EXE_costd")).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the client scenarios failed:\n{text}");
    assert!(text.matches("checks passed").count() >= 2, "both clients ran:\n{text}");
    eprintln!("{text}");
}
