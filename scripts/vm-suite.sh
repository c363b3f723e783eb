#!/bin/sh
# What CI runs inside each scripts/vm-test.sh VM (.ci/run): the tests whose
# outcome depends on the cgroup layout (the layout pin, the managers on the
# real kernel, limits, the helper's cgroup joins, the job's view of its
# cgroups), then scripts/vm-e2e.sh (stop, OOM, pids, IO through the server).
# The rest runs on the host only: under emulation on a loaded 2-core host
# (load 20) isolation-lifecycle took over 10 min (500 orphans 250 s, 200
# jobs 296 s) and the host budget's fork bombs did not fill 400 tasks within
# their 10 s bound. Expects a built
# checkout (npm ci, npm run build) and CI=true, so that missing cgroups fail.
cd "$(dirname "$0")/.." || exit 1
tests=""
for t in contract/cgroup-layout contract/cgroup-manager integration/isolation-limits \
  integration/isolation-helper integration/isolation-host-view; do
  tests="$tests dist/tests/$t.test.js"
done
started=$(date +%s)
# shellcheck disable=SC2086 # the list is word-split on purpose
node --test --test-reporter=spec --enable-source-maps --test-timeout=600000 $tests
suite=$?
echo "vm-suite: tests took $(($(date +%s) - started)) s (status $suite)"
started=$(date +%s)
scripts/vm-e2e.sh
e2e=$?
echo "vm-suite: e2e took $(($(date +%s) - started)) s (status $e2e)"
[ $suite = 0 ] && [ $e2e = 0 ]
