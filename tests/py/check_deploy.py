"""Checks the deployment examples under deploy/ and prints what the Rust test runs.

Usage: check_deploy.py REPO RTCQ_BIN PIPELINE_DIR

- deploy/kubernetes/cronjob.yaml parses as YAML and has what a safe schedule needs.
- deploy/airflow/rtcq_dag.py imports with Airflow's DagBag (no import errors) and its
  DAG and tasks have the settings the README promises.
- deploy/Dockerfile is a multi-stage build of the binary onto a slim runtime.
- deploy/prometheus/rtcq-rules.yml passes `promtool check rules` and its unit tests
  (`promtool test rules`); deploy/kubernetes/prometheusrule.yaml holds the same groups.

Prints JSON: the CronJob's container args, its pipeline file, and each Airflow task's
bash command (built with RTCQ_BIN and PIPELINE_DIR).
"""

import json
import os
import re
import sys
import tempfile

import yaml


def check(cond, msg):
    if not cond:
        raise SystemExit(f"deploy check failed: {msg}")


def cronjob(repo):
    with open(os.path.join(repo, "deploy/kubernetes/cronjob.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {d["kind"]: d for d in docs}
    cj = by_kind["CronJob"]
    check(cj["apiVersion"] == "batch/v1", "CronJob apiVersion batch/v1")
    spec = cj["spec"]
    check(spec["concurrencyPolicy"] == "Forbid", "concurrencyPolicy: Forbid")
    check(isinstance(spec["startingDeadlineSeconds"], int), "startingDeadlineSeconds")
    check(spec["schedule"] == "*/5 * * * *", "a 5-minute schedule")
    job = spec["jobTemplate"]["spec"]
    deadline = job["activeDeadlineSeconds"]
    check(isinstance(deadline, int) and deadline <= 300, "activeDeadlineSeconds under the schedule")
    pod = job["template"]["spec"]
    check(pod["restartPolicy"] == "Never", "restartPolicy: Never")
    (c,) = pod["containers"]
    args = c["args"]
    check(args[0] == "run", "the container runs `rtcq run`")
    check(args[args.index("--log-format") + 1] == "json", "--log-format json")
    maxd = args[args.index("--max-duration") + 1]
    m = re.fullmatch(r"(\d+)m", maxd)
    check(m and int(m.group(1)) * 60 < deadline, "--max-duration under activeDeadlineSeconds")
    env = {e["name"]: e for e in c["env"]}
    # S3 through the ServiceAccount's IAM role (IRSA), no AWS keys in the pod.
    sa = by_kind["ServiceAccount"]
    check(pod["serviceAccountName"] == sa["metadata"]["name"], "the pod runs as the ServiceAccount")
    check(sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::"),
          "the ServiceAccount names an IAM role (IRSA)")
    check(not any(k.startswith("AWS_ACCESS") or k.startswith("AWS_SECRET") for k in env),
          "no AWS keys in the pod's env")
    for name in ["VOLC_ACCESSKEY", "VOLC_SECRETKEY"]:
        ref = env[name].get("valueFrom", {}).get("secretKeyRef")
        check(ref and ref["name"] == "rtcq-credentials" and ref["key"] == name,
              f"{name} from the Secret rtcq-credentials")
        check("value" not in env[name], f"{name} has no literal value")
    # The config file the args name comes from the ConfigMap mounted there.
    config = args[args.index("--config") + 1]
    (mount,) = [m for m in c["volumeMounts"] if config.startswith(m["mountPath"] + "/")]
    (vol,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    cm = by_kind["ConfigMap"]
    check(vol["configMap"]["name"] == cm["metadata"]["name"], "the ConfigMap is mounted")
    pipeline = cm["data"][os.path.basename(config)]
    import tomllib

    check(tomllib.loads(pipeline)["sink"].get("region"), "the bucket's region in the pipeline")
    # The image tag is the crate's version, as `make image` tags it.
    with open(os.path.join(repo, "Cargo.toml"), "rb") as f:
        version = tomllib.load(f)["package"]["version"]
    check(c["image"].endswith(f"/rtcq:{version}"), f"the image tag is the crate's version {version}")
    with open(os.path.join(repo, "deploy/kubernetes/secret.example.yaml")) as f:
        secret = yaml.safe_load(f)
    check(secret["kind"] == "Secret" and secret["metadata"]["name"] == "rtcq-credentials",
          "the example Secret")
    check(set(env) >= set(secret["stringData"]), "every Secret key is used")
    # A read-only root filesystem: rows spill to a writable emptyDir, with a size limit.
    check(c["securityContext"]["readOnlyRootFilesystem"] is True, "readOnlyRootFilesystem")
    spill = env["RTCQ_SPILL_DIR"]["value"]
    (smount,) = [m for m in c["volumeMounts"] if m["mountPath"] == spill]
    check(not smount.get("readOnly", False), "the spill folder is writable")
    (svol,) = [v for v in pod["volumes"] if v["name"] == smount["name"]]
    check("sizeLimit" in svol.get("emptyDir", {}), "the spill folder is an emptyDir with a sizeLimit")
    return {"args": args, "pipeline": pipeline, "spill_dir": spill}


def cronjob_local_disk(repo):
    """The local-disk variant: the sink on a PersistentVolumeClaim mounted writable at
    the pipeline's sink path; the rest as cronjob.yaml."""
    import tomllib

    with open(os.path.join(repo, "deploy/kubernetes/cronjob-local-disk.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {d["kind"]: d for d in docs}
    cj = by_kind["CronJob"]
    check(cj["spec"]["concurrencyPolicy"] == "Forbid", "local disk: concurrencyPolicy: Forbid")
    pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    args = c["args"]
    config = args[args.index("--config") + 1]
    pipeline = by_kind["ConfigMap"]["data"][os.path.basename(config)]
    sink = tomllib.loads(pipeline)["sink"]["url"]
    pvc = by_kind["PersistentVolumeClaim"]["metadata"]["name"]
    (vol,) = [v for v in pod["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == pvc]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == vol["name"]]
    check(sink == mount["mountPath"] or sink.startswith(mount["mountPath"] + "/"),
          "the sink lies on the claimed volume")
    check(not mount.get("readOnly", False), "the data volume is writable")
    check(c["securityContext"]["readOnlyRootFilesystem"] is True, "local disk: readOnlyRootFilesystem")
    return {"args": args, "pipeline": pipeline, "sink": sink}


def airflow(repo, rtcq_bin, pipeline_dir):
    os.environ["RTCQ_BIN"] = rtcq_bin
    os.environ["RTCQ_PIPELINE_DIR"] = pipeline_dir
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.path.join(repo, "deploy/airflow"))
    check(not bag.import_errors, f"DAG import errors: {bag.import_errors}")
    dag = bag.dags.get("rtcq")
    check(dag is not None, "a DAG named rtcq")
    check(dag.max_active_runs == 1, "max_active_runs=1")
    check(dag.catchup is False, "no Airflow catch-up")
    tasks = {}
    for t in dag.tasks:
        check(type(t).__name__ == "BashOperator", f"{t.task_id} is a BashOperator")
        check(list(t.skip_on_exit_code) == [4], f"{t.task_id}: exit 4 skips")
        check(t.do_xcom_push, f"{t.task_id} pushes to XCom")
        check("--summary -" in t.bash_command, f"{t.task_id} prints the summary")
        check("--log-format json" in t.bash_command, f"{t.task_id} logs JSON")
        check(t.env == {"VOLC_ACCESSKEY": "{{ conn.rtcq_volcengine.login }}",
                        "VOLC_SECRETKEY": "{{ conn.rtcq_volcengine.password }}"},
              f"{t.task_id} takes the key pair from the Connection rtcq_volcengine")
        check(t.append_env, f"{t.task_id} keeps the workers' environment")
        every = re.search(r"--schedule (\d+)m", t.bash_command)
        cron = str(getattr(dag, "schedule", None) or getattr(dag, "schedule_interval", ""))
        check(every and cron == f"*/{every.group(1)} * * * *",
              f"{t.task_id}: --schedule follows the DAG's schedule ({cron})")
        tasks[t.task_id] = t.bash_command
    check(tasks, "at least one task")
    return {"version": __import__("airflow").__version__, "tasks": tasks}


def dockerfile(repo):
    with open(os.path.join(repo, "deploy/Dockerfile")) as f:
        text = f.read()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    check(len(stages) >= 2, "a multi-stage build")
    check(stages[0][0].startswith("rust:"), "built with the rust image")
    check(re.fullmatch(r"rust:\d+\.\d+\.\d+-slim-\w+", stages[0][0]), "the builder pinned to a Rust release")
    check(re.fullmatch(r"debian:\d+\.\d+-slim", stages[-1][0]), "the runtime pinned to a Debian point release")
    check("slim" in stages[-1][0] or "distroless" in stages[-1][0], "a small runtime")
    check(f"--from={stages[0][1]}" in text, "the runtime copies from the builder")
    check("ca-certificates" in text or "distroless" in stages[-1][0], "CA certificates")
    check(re.search(r"^USER\s+(?!root|0\b)\S+", text, re.M), "runs as a non-root user")
    check(re.search(r'^ENTRYPOINT\s+\["/usr/local/bin/rtcq"\]', text, re.M), "ENTRYPOINT rtcq")
    for src in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", text, re.M):
        for p in src.split():
            check(os.path.exists(os.path.join(repo, p)), f"COPY source {p} exists")
    with open(os.path.join(repo, ".dockerignore")) as f:
        ignored = f.read().split()
    check("target" in ignored, ".dockerignore keeps target/ out of the context")


def alert_rules(repo):
    """The alert rules pass promtool's check and unit tests, and the PrometheusRule
    holds the same groups."""
    import shutil
    import subprocess

    rules_dir = os.path.join(repo, "deploy/prometheus")
    with open(os.path.join(rules_dir, "rtcq-rules.yml")) as f:
        rules = yaml.safe_load(f)
    with open(os.path.join(repo, "deploy/kubernetes/prometheusrule.yaml")) as f:
        pr = yaml.safe_load(f)
    check(pr["kind"] == "PrometheusRule", "a PrometheusRule")
    check(pr["spec"]["groups"] == rules["groups"], "the PrometheusRule holds the rules file's groups")
    promtool = shutil.which("promtool")
    check(promtool, "promtool is missing: run `make deps` (apt-get install prometheus)")
    for args in (["check", "rules", "rtcq-rules.yml"], ["test", "rules", "rtcq-rules.test.yml"]):
        out = subprocess.run([promtool, *args], cwd=rules_dir, capture_output=True, text=True)
        check(out.returncode == 0, f"promtool {' '.join(args)}:\n{out.stdout}{out.stderr}")
    return sorted(r["alert"] for g in rules["groups"] for r in g["rules"])


def main():
    repo, rtcq_bin, pipeline_dir = sys.argv[1:4]
    dockerfile(repo)
    alerts = alert_rules(repo)
    out = {
        "cronjob": cronjob(repo),
        "cronjob_local_disk": cronjob_local_disk(repo),
        "airflow": airflow(repo, rtcq_bin, pipeline_dir),
        "alerts": alerts,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
