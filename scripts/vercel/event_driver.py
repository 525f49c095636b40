"""Call a built function's `vc_handler(event, context)` the way the Lambda runtime does (event mode).

Run by scripts/vercelcheck/bridge.py under the bundle's Python (3.12), with the
bundle as working directory and the Lambda's environment:

    python event_driver.py REQUESTS.json RESPONSES.json

Each request is the payload Vercel wraps in the event body ({method, path,
headers, body, encoding}); each response is what vc_handler returned. Not deployed.
"""

import json
import os
import sys

requests_file, responses_file = sys.argv[1], sys.argv[2]
# The Lambda runtime imports the handler module from the task root, first on sys.path.
sys.path[0] = os.getcwd()

import vc__handler__python  # noqa: E402 - the bundle's own trampoline, found only now

responses = []
with open(requests_file) as source:
    for payload in json.load(source):
        responses.append(vc__handler__python.vc_handler({"body": json.dumps(payload)}, None))
with open(responses_file, "w") as sink:
    json.dump(responses, sink)
