#!/usr/bin/env bash
# Runs the whole test suite once per Keras backend and prints one total.
# Extra arguments go to pytest, e.g. `bash tests/run_all_backends.sh -x -k dcgan`.
set -u
cd "$(dirname "$0")/.."
reports=$(mktemp -d)
status=0
for backend in tensorflow jax torch; do
  echo "=== KERAS_BACKEND=$backend"
  KERAS_BACKEND=$backend python -m pytest --junitxml="$reports/$backend.xml" "$@" || status=1
done
python - "$reports" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in sorted(glob.glob(sys.argv[1] + "/*.xml")):
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    total, f, e, s = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    passed += total - f - e - s; failed += f + e; skipped += s
    print(f"{path.rsplit('/', 1)[-1][:-4]}: {total - f - e - s} passed, {f + e} failed, {s} skipped")
print(f"all backends: {passed} passed, {failed} failed, {skipped} skipped")
PY
rm -rf "$reports"
exit $status
