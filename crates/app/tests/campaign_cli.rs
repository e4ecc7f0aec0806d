//! `big-market campaign …` on an embedded data directory: the command line runs the same
//! service as the endpoints (export, validate, simulate, apply, versions, rollback).

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_big-market"))
        .arg("campaign")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("BIG_MARKET_LOG_FILTER", "error")
        .output()
        .expect("the binary runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn the_command_line_exports_checks_simulates_applies_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let out = run(&data, &["export", "--activity-id", "100301"]);
    assert!(out.status.success(), "{out:?}");
    let mut doc = json(&out);
    assert_eq!(doc["strategy"]["strategyId"], 100006);

    let file = dir.path().join("100301.json");
    let award = doc["strategy"]["awards"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["awardId"] == 104)
        .unwrap();
    award["awardCount"] = Value::from(130);
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let path = file.to_str().unwrap();

    let out = run(&data, &["validate", path]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["valid"], true);

    let out = run(
        &data,
        &[
            "simulate",
            path,
            "--users",
            "20",
            "--draws-per-user",
            "50",
            "--seed",
            "3",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let sim = json(&out);
    assert_eq!(sim["draws"], 1000);
    let again = run(
        &data,
        &[
            "simulate",
            path,
            "--users",
            "20",
            "--draws-per-user",
            "50",
            "--seed",
            "3",
        ],
    );
    assert_eq!(json(&again), sim, "seeded");

    let out = run(&data, &["apply", path, "--author", "ci"]);
    assert!(out.status.success(), "{out:?}");
    let applied = json(&out);
    assert_eq!(applied["version"], 1);
    assert!(
        applied["summary"]
            .as_str()
            .unwrap()
            .contains("award 104 stock 100 → 130 (+30)"),
        "{applied}"
    );

    let out = run(&data, &["versions", "--strategy-id", "100006"]);
    let versions = json(&out);
    assert_eq!(versions[0]["author"], "ci");

    // An invalid document exits non-zero with its errors and writes nothing.
    let bad = dir.path().join("bad.json");
    doc["activity"]["beginDateTime"] = Value::from("2099-01-01 00:00:00");
    std::fs::write(&bad, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = run(&data, &["apply", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let report = json(&out);
    assert_eq!(report["errors"][0]["path"], "activity.beginDateTime");
    let out = run(&data, &["versions", "--activity-id", "100301"]);
    assert_eq!(json(&out).as_array().unwrap().len(), 1);

    let out = run(
        &data,
        &["rollback", "--activity-id", "100301", "--version", "1"],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["version"], 2);
    let out = run(&data, &["export", "--strategy-id", "100006"]);
    let exported = json(&out);
    let count = exported["strategy"]["awards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["awardId"] == 104)
        .unwrap()["awardCount"]
        .clone();
    assert_eq!(count, 130, "version 1 had 130");
}
