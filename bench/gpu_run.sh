#!/usr/bin/env bash
# The prepared GPU run of issue #15 (item 3): run from the repository root on the device machine.
#
#     bash bench/gpu_run.sh            # device tool: carry [".whl", ".data"]
#
# It installs the carried wheels, then runs `bench/perf.py --device cuda --quick`, which writes
# ONE results record (perf-cuda-quick/latest.json and history.jsonl, through bench/_record.py)
# and the log (gpu_run.log) into $OUT (default bench/results). perf.py keeps itself to a 300 s budget (--budget); `timeout 560`
# is the hard stop.
#
# Before the run, on the machine with the checkout (both folders git-ignored):
#   .whl/  : the wheels of ../shared/device/wheels (bash ../shared/device/prepare.sh) plus
#            iminuit (imported by vaeaug.validation; not on the device image):
#              awkward, awkward_cpp, boost_histogram, cramjam, hist, histoprint, mplhep,
#              mplhep_data, uhi, uproot, vector, zuko      (from ../shared/device/wheels)
#              iminuit-2.33.0-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl, from
#              pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#                --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl iminuit==2.33.0
#            (particle is not needed: only vaeaug.datasets imports it, and perf.py does not;
#            coffea and ctgan are optional: their rows are recorded as skipped)
#   .data/ : dplus_kpipi_train.root and dplus_kpipi_reference.root from ../shared/data
#            (../shared does not travel to the device machine), about 19 MB.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-bench/results}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1
data=${VAEAUG_TESTDATA:-.data}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu_run.log"
set -o pipefail
timeout 560 python3 bench/perf.py --device cuda --quick --data "$data" --results "$out" 2>&1 \
    | tee -a "$out/gpu_run.log"
