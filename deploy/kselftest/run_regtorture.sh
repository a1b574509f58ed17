#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# regtorture as a kselftest-style test (a kselftest tree's TEST_PROGS, or a LAVA/tuxrun job):
# runs the static regtorture binary that sits next to this script (or the one on PATH) and
# prints its KTAP report. Exit codes as kselftest reads them: 0 pass (clean), 1 fail (register
# corruption or a fault found; the KTAP lines and the diagnostics say which), 4 skip (nothing
# testable here: KSFT_SKIP). Options go to `regtorture run`, e.g. through kselftest's
# KSELFTEST_RUN_REGTORTURE_SH_ARGS="--duration 2m --triggers io_uring,timer"; the default is the
# default run (30 s). The `settings` file beside it gives the runner's timeout.
here=$(dirname "$0")
bin="$here/regtorture"
if [ ! -x "$bin" ]; then
    bin=$(command -v regtorture) || {
        echo "KTAP version 1"
        echo "1..0 # SKIP no regtorture binary next to $0 or on PATH"
        exit 4
    }
fi
exec "$bin" run --ktap --quiet "$@"
