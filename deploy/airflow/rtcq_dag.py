"""rtcq on Airflow: one task per pipeline every 5 minutes.

Needs Airflow 2.7 or newer (BashOperator's skip_on_exit_code and templated env; Airflow
3 works too). Put this file in the DAGs folder and the `rtcq` binary and the pipeline
files on the workers (RTCQ_BIN, RTCQ_PIPELINE_DIR). The Volcengine key pair comes from
the Airflow Connection `rtcq_volcengine` (login: the access key, password: the secret
key), e.g.
    airflow connections add rtcq_volcengine --conn-type generic \
        --conn-login AKLT... --conn-password ...
and AWS_* for an S3 sink from the workers' environment (or their IAM role). Before
enabling the DAG, run `rtcq check --config <pipeline>` once on a worker with the same
environment: it proves the config, the store, the lease and every API action the
pipeline uses, and names the fix of what fails.

- `max_active_runs=1` and no catch-up: rtcq catches up by itself (its lease also
  refuses a second run of a pipeline: exit 4).
- Exit 4 (another run holds the lease) marks the task skipped, not failed.
- A run that stops at --max-duration with work left exits 0: what waits is safe until
  the next runs, which serve it earliest due first. Exit 3 (requests failed after
  retries, or owed data would leave the API's horizon before the next runs reach it)
  fails the task so that someone looks; the next run still retries.
- `--summary -` prints the run summary as one JSON line, the last line on stdout, which
  the BashOperator pushes to XCom (parsed into a dict by `output_processor`).

Kept working by tests/it/deploy.rs: it imports this file with Airflow's DagBag and runs
each task's command against the emulator.
"""

import json
import os
import shlex
from datetime import datetime, timedelta

import airflow

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.bash import BashOperator

MIN_AIRFLOW = (2, 7)
_version = tuple(int(p) for p in airflow.__version__.split(".")[:2] if p.isdigit())
if _version < MIN_AIRFLOW:
    raise ImportError(f"rtcq's DAG needs Airflow 2.7 or newer, not {airflow.__version__}")

RTCQ_BIN = os.environ.get("RTCQ_BIN", "/usr/local/bin/rtcq")
PIPELINE_DIR = os.environ.get("RTCQ_PIPELINE_DIR", "/opt/rtcq/pipelines")
# One task per pipeline file (one pipeline per Volcengine account).
PIPELINES = ["demo"]
# How often the DAG runs, in minutes: the cron schedule, rtcq's --schedule (what a run
# leaves is judged against the next one) and its --max-duration all follow from it.
EVERY_MINUTES = 5
SCHEDULE = f"*/{EVERY_MINUTES} * * * *"
# The Airflow Connection holding the Volcengine key pair.
CONNECTION = "rtcq_volcengine"


def rtcq_command(pipeline: str) -> str:
    """The shell command of one pipeline's task (exit 4 marks it skipped)."""
    run = [
        RTCQ_BIN,
        "run",
        "--config",
        f"{PIPELINE_DIR}/{pipeline}.toml",
        "--log-format",
        "json",
        "--schedule",
        f"{EVERY_MINUTES}m",
        "--max-duration",
        f"{EVERY_MINUTES - 1}m",
        "--summary",
        "-",
    ]
    return " ".join(shlex.quote(a) for a in run)


with DAG(
    dag_id="rtcq",
    description="Copy Volcengine RTC call-quality metrics into Parquet",
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=EVERY_MINUTES),
    default_args={
        "retries": 0,
        "execution_timeout": timedelta(minutes=EVERY_MINUTES),
    },
    tags=["rtcq"],
) as dag:
    for name in PIPELINES:
        BashOperator(
            task_id=f"rtcq_{name}",
            bash_command=rtcq_command(name),
            skip_on_exit_code=4,
            # The key pair from the Connection, rendered when the task runs (never in
            # the DAG file or the logs); the workers' own environment is kept.
            env={
                "VOLC_ACCESSKEY": "{{ conn.%s.login }}" % CONNECTION,
                "VOLC_SECRETKEY": "{{ conn.%s.password }}" % CONNECTION,
            },
            append_env=True,
            do_xcom_push=True,
            output_processor=json.loads,
        )
