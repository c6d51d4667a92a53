"""The entrypoint of a ``runtime: batch`` job: a POSIX shell script run as the job's command.

It holds no credentials. The worker stages the script and the input in S3 and hands the job three
pre-signed URLs (``WATCHER_SCRIPT_URL``, ``WATCHER_INPUT_URL``: GET; ``WATCHER_RESULT_URL``: PUT). The
entrypoint downloads both, runs the script with ``/bin/sh`` in ``JOB_DIR`` with the contract's
environment (the URLs removed), copies everything it prints to the container's output (so to the
job's CloudWatch log stream) and to ``meta/log.txt``, and uploads one tar: ``meta/exit_code``,
``meta/log.txt`` and, only when the script exited 0, ``job/output/``. It then exits with the
script's exit code. Which files of that tar become outputs is decided by the worker, under the same
rules as for every other runtime (watcher.handlers.container.runtimes.batch_staging).

The image needs ``/bin/sh``, ``tar``, and ``curl`` or ``python3`` (``wget`` can download but not
upload); it must not have an ``ENTRYPOINT`` that swallows the command. Staging failures exit 70
and say why on stderr, with no result uploaded: the worker then reports the job's end and its log.
"""

from __future__ import annotations

JOB_ROOT = "/tmp/watcher"
JOB_DIR = f"{JOB_ROOT}/job"  # the script's working directory, with input/, output/ and script.sh
STAGING_FAILED = 70

_PYTHON_GET = """import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=120) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f, 1 << 20)"""

_PYTHON_PUT = """import os, sys, urllib.request
with open(sys.argv[1], "rb") as f:
    size = str(os.fstat(f.fileno()).st_size)
    request = urllib.request.Request(sys.argv[2], data=f, method="PUT", headers={"Content-Length": size})
    urllib.request.urlopen(request, timeout=600).read()"""

ENTRYPOINT = f"""set -u
R={JOB_ROOT}
J={JOB_DIR}
say() {{ echo "watcher entrypoint: $*" >&2; }}
give_up() {{ say "$*"; exit {STAGING_FAILED}; }}
have() {{ command -v "$1" >/dev/null 2>&1; }}
get() {{
  if have curl; then curl -fsS --retry 3 -o "$2" "$1"
  elif have python3; then python3 -c '{_PYTHON_GET}' "$1" "$2"
  elif have wget; then wget -q -O "$2" "$1"
  else say "no curl, python3 or wget in this image"; return 1; fi
}}
put() {{
  if have curl; then curl -fsS --retry 3 -T "$1" "$2" >/dev/null
  elif have python3; then python3 -c '{_PYTHON_PUT}' "$1" "$2"
  else say "no curl or python3 in this image to upload the result"; return 1; fi
}}
rm -rf "$R" && mkdir -p "$R/meta" "$J/input" "$J/output" || give_up "cannot make $R"
get "$WATCHER_SCRIPT_URL" "$J/script.sh" || give_up "cannot download the script"
get "$WATCHER_INPUT_URL" "$INPUT_FILE_PATH" || give_up "cannot download the input"
result_url=$WATCHER_RESULT_URL
unset WATCHER_SCRIPT_URL WATCHER_INPUT_URL WATCHER_RESULT_URL
cd "$J" || give_up "cannot enter $J"
{{ /bin/sh "$J/script.sh" </dev/null 2>&1; echo "$?" >"$R/meta/exit_code"; }} | tee "$R/meta/log.txt"
code=$(cat "$R/meta/exit_code" 2>/dev/null) || code={STAGING_FAILED}
cd "$R" || give_up "cannot enter $R"
if [ "$code" = 0 ]; then tar -cf "$R/result.tar" meta job/output || say "tar reported a problem"
else tar -cf "$R/result.tar" meta || say "tar reported a problem"; fi
put "$R/result.tar" "$result_url" || give_up "cannot upload the result"
exit "$code"
"""
