#!/usr/bin/env bash
# Runs the whole test suite once per Keras backend and prints one total.
# Extra arguments go to pytest, e.g. `bash tests/run_all_backends.sh -x -k dcgan`.
set -u
cd "$(dirname "$0")/.."
reports=$(mktemp -d)
status=0
# Two worker processes, one test file each at a time (module fixtures are built once), when
# pytest-xdist is installed (the test extra): the 2-core machine's second core is otherwise idle
# through most single-threaded test time. KGEN_TEST_WORKERS=0 runs serially. Each backend ends
# with its ten slowest tests (--durations=10): the list to look at before adding a slow one.
workers=${KGEN_TEST_WORKERS:-2}
parallel=()
if [ "$workers" != 0 ] && python -c "import xdist" 2>/dev/null; then
  parallel=(-n "$workers" --dist loadfile)
fi
for backend in tensorflow jax torch; do
  echo "=== KERAS_BACKEND=$backend"
  KERAS_BACKEND=$backend python -m pytest "${parallel[@]}" --durations=10 --junitxml="$reports/$backend.xml" "$@" || status=1
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
