"""Signs requests with the official Volcengine Python SDK (volcengine.auth.SignerV4).

Reads a JSON list of requests on stdin and prints a JSON list of Authorization values,
so the Rust signer can be compared with an independent implementation byte for byte.
"""
import json
import sys

from volcengine.auth.SignerV4 import SignerV4
from volcengine.base.Request import Request
from volcengine.Credentials import Credentials


def sign(case):
    SignerV4.get_current_format_date = staticmethod(lambda: case["x_date"])
    req = Request()
    req.set_method(case["method"])
    req.set_host(case["host"])
    req.set_path(case["path"])
    req.set_query(dict(case["query"]))
    req.set_headers({"Content-Type": case["content_type"], "Host": case["host"]})
    req.set_body(case["body"])
    creds = Credentials(case["ak"], case["sk"], case["service"], case["region"], case.get("token") or "")
    SignerV4.sign(req, creds)
    return req.headers["Authorization"]


print(json.dumps([sign(c) for c in json.load(sys.stdin)]))
