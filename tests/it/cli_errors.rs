//! Exit codes and messages a scheduler and a person see when something is wrong.

use crate::kit::*;

#[test]
fn bad_config_exits_2_naming_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(
        dir.path(),
        "bad",
        "http://127.0.0.1:9",
        2.0,
        "[[targets]]\napp_id = \"a\"\nindicators = [\"stall_rate\"]\nusers = [\"u1\"]\n",
    );
    // What a person sees (text logs, as on a terminal).
    let out = rtcq(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--log-format",
        "text",
    ]);
    assert_eq!(out.code, 2);
    let reason = format!(
        "{}: targets[0].users (line 10, column 9): needs rooms: the API applies UserId only together with a RoomId",
        cfg.display()
    );
    assert!(
        out.stderr.contains(&format!("error: {reason}")),
        "{}",
        out.stderr
    );
    // With JSON logs (as the tests ask, RTCQ_LOG_FORMAT=json) stderr holds only JSON lines.
    let out = rtcq(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 2);
    let lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert_eq!(lines[0]["level"], "ERROR");
    assert_eq!(lines[0]["message"], reason.as_str());

    let out = rtcq(&[
        "plan",
        "--config",
        "/nonexistent/p.toml",
        "--log-format",
        "text",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("error: /nonexistent/p.toml: cannot read the file"),
        "{}",
        out.stderr
    );

    let out = rtcq(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--now",
        "yesterday",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("\"yesterday\" is not an RFC 3339 time"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_credentials_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(
        dir.path(),
        "creds",
        "http://127.0.0.1:9",
        2.0,
        "[[targets]]\napp_id = \"a\"\nindicators = [\"stall_rate\"]\n",
    );
    let out = rtcq_env(
        &["run", "--config", cfg.to_str().unwrap()],
        &[("VOLC_SECRETKEY", "")],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("VOLC_SECRETKEY is not set: export VOLC_ACCESSKEY and VOLC_SECRETKEY"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_exit_5_with_the_api_code() {
    let now = t0();
    let emu = emulator_at(now, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(
        dir.path(),
        "creds",
        &emu.url(),
        20.0,
        "[[targets]]\napp_id = \"a\"\nindicators = [\"stall_rate\"]\nrooms = [\"r1\", \"r2\", \"r3\"]\n",
    );
    let cfg_s = cfg.display().to_string();
    let now_s = now.to_rfc3339();
    let out = tokio::task::spawn_blocking(move || {
        rtcq_env(
            &["run", "--config", &cfg_s, "--now", &now_s, "--summary", "-"],
            &[("VOLC_SECRETKEY", "wrong-secret")],
        )
    })
    .await
    .unwrap();
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("API error SignatureDoesNotMatch (HTTP 401)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("wrong-secret"));
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["exit_code"], 5);
    assert_eq!(summary["files_written"], 0);

    let cfg_s = cfg.display().to_string();
    let now_s = now.to_rfc3339();
    let out = tokio::task::spawn_blocking(move || {
        rtcq_env(
            &["run", "--config", &cfg_s, "--now", &now_s],
            &[("VOLC_ACCESSKEY", "AKLTnobody")],
        )
    })
    .await
    .unwrap();
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr.contains("API error InvalidAccessKey (HTTP 401)"),
        "{}",
        out.stderr
    );
}

/// A pipeline name that would hide its files from Spark is refused when the file is
/// read, by every command, naming the file and the key, before anything is created.
#[test]
fn a_hidden_pipeline_name_exits_2_naming_the_key() {
    for name in ["_demo", "-demo"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_pipeline(
            dir.path(),
            name,
            "http://127.0.0.1:9",
            2.0,
            "[[targets]]\napp_id = \"a\"\nindicators = [\"stall_rate\"]\n",
        );
        for command in ["run", "plan", "status"] {
            let out = rtcq(&[
                command,
                "--config",
                cfg.to_str().unwrap(),
                "--log-format",
                "text",
            ]);
            assert_eq!(out.code, 2, "{command} {name}: {}", out.stderr);
            let want = format!(
                "error: {}: name (line 1, column 8): {name:?} is not a valid pipeline name: use 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
                cfg.display()
            );
            assert!(
                out.stderr.contains(&want),
                "{command} {name}: {}",
                out.stderr
            );
            assert!(
                !dir.path().join("data").exists(),
                "{command} created the sink"
            );
        }
    }
}

#[test]
fn a_schedule_longer_than_the_horizon_covers_is_refused_and_a_rate_above_2_warns() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(
        dir.path(),
        "numbers",
        "http://127.0.0.1:9",
        50.0,
        "[[targets]]\napp_id = \"a\"\nindicators = [\"stall_rate\"]\n",
    );
    let cfg_s = cfg.to_str().unwrap();
    for command in ["run", "plan", "status"] {
        let out = rtcq(&[
            command,
            "--config",
            cfg_s,
            "--schedule",
            "1h",
            "--log-format",
            "text",
        ]);
        assert_eq!(out.code, 2, "{command}: {}", out.stderr);
        assert!(
            out.stderr.contains(
                "runs 1 hour apart lose data: the API keeps 60 minutes, so runs must start at most 58 minutes apart (5m is a good default)"
            ),
            "{command}: {}",
            out.stderr
        );
    }
    // 58 minutes is the longest schedule taken; the rate above 2 is warned about.
    let out = rtcq(&[
        "plan",
        "--config",
        cfg_s,
        "--schedule",
        "58m",
        "--log-format",
        "text",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "{cfg_s}: api.requests_per_second = 50 is above the API's documented 2 requests/second per account"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn logs_are_text_by_default_and_json_when_asked_by_flag_or_env() {
    let run = |extra_args: &[&str], env: Option<&str>| {
        let mut cmd = rtcq_command();
        cmd.args(["plan", "--config", "/nonexistent/p.toml"])
            .args(extra_args)
            .env_remove("RTCQ_LOG_FORMAT");
        if let Some(v) = env {
            cmd.env("RTCQ_LOG_FORMAT", v);
        }
        let out = output_of(&mut cmd);
        assert_eq!(out.code, 2);
        out.stderr
    };
    // Off a terminal (as here) too: a person reads `rtcq plan … 2>&1 | head`.
    let text = run(&[], None);
    assert!(
        text.starts_with("error: /nonexistent/p.toml: cannot read the file"),
        "{text}"
    );
    for json in [run(&["--log-format", "json"], None), run(&[], Some("json"))] {
        let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        assert_eq!(v["level"], "ERROR", "{json}");
    }
    // The flag wins over the environment.
    assert!(run(&["--log-format", "text"], Some("json")).starts_with("error: "));
}

#[test]
fn commands_take_only_the_flags_they_use() {
    // plan and status never call the API; check runs on the real clock.
    for args in [
        &[
            "status",
            "--config",
            "p.toml",
            "--endpoint",
            "http://127.0.0.1:9",
        ][..],
        &[
            "plan",
            "--config",
            "p.toml",
            "--endpoint",
            "http://127.0.0.1:9",
        ][..],
        &[
            "check",
            "--config",
            "p.toml",
            "--now",
            "2026-11-25T12:00:00Z",
        ][..],
    ] {
        let out = rtcq(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("unexpected argument"), "{}", out.stderr);
    }
}
