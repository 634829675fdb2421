#!/usr/bin/env bash
# The judging runs of Model v2 (docs/benchmarks.md): every model is trained on a training
# file and judged on the independent reference file, which no default was chosen on.
# Two processes (one per core); the samples of examples/decays_pythia.py and of
# bench/real_pairs.py are in $SAMPLES.
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLES=${SAMPLES:-/work/samples}
export OMP_NUM_THREADS=1
export PYTHONPATH=${JUDGE_SRC:-src}
R=bench/results
MU="0.1056583755 0.1056583755"
fid() { python bench/fidelity.py --no-progress "$@"; }
{
  fid --peers vaeaug --sizes 10000 1000 --seeds 1 2 3 --out $R/fidelity_v2_dplus.json
  fid --peers nsf-decay --sizes 10000 --seeds 1 \
      --data $SAMPLES/lambdac_train.root --reference $SAMPLES/lambdac_reference.root \
      --objects p K pi --name lambdac --out $R/fidelity_v2_lambdac_nsf.json
  fid --peers nsf-decay --sizes 10000 --seeds 1 \
      --data $SAMPLES/d0_k3pi_train.root --reference $SAMPLES/d0_k3pi_reference.root \
      --objects K pi1 pi2 pi3 --identical pi1,pi2 --name d0_k3pi --out $R/fidelity_v2_d0_k3pi_nsf.json
  fid --peers nsf-decay --sizes 10000 --seeds 1 \
      --data $SAMPLES/dplus_5body_train.root --reference $SAMPLES/dplus_5body_reference.root \
      --objects K pi1 pi2 pi3 pi4 --identical pi1,pi2,pi3 --name dplus_5body \
      --out $R/fidelity_v2_dplus_5body_nsf.json
} > $R/fidelity_v2_dplus.log 2>&1 &
{
  fid --peers vaeaug nsf-decay --sizes 10000 --seeds 1 \
      --data $SAMPLES/dimuon_train.root --reference $SAMPLES/dimuon_reference.root \
      --objects mu1 mu2 --identical mu1,mu2 --name dimuon \
      --resonances 'J/psi(1S)' 'Upsilon(1S)' Z0 --out $R/fidelity_v2_dimuon.json
  fid --peers vaeaug nsf-decay --sizes 500 --seeds 1 2 3 \
      --data $SAMPLES/hzz_mumu_train.root --reference $SAMPLES/hzz_mumu_reference.root \
      --objects l1 l2 --identical l1,l2 --masses $MU --name hzz_mumu \
      --resonances Z0 --out $R/fidelity_v2_hzz_mumu.json
  fid --peers vaeaug --sizes 10000 --seeds 1 \
      --data $SAMPLES/lambdac_train.root --reference $SAMPLES/lambdac_reference.root \
      --objects p K pi --name lambdac --out $R/fidelity_v2_lambdac.json
  fid --peers vaeaug --sizes 10000 --seeds 1 \
      --data $SAMPLES/d0_k3pi_train.root --reference $SAMPLES/d0_k3pi_reference.root \
      --objects K pi1 pi2 pi3 --identical pi1,pi2 --name d0_k3pi --out $R/fidelity_v2_d0_k3pi.json
  fid --peers vaeaug --sizes 10000 --seeds 1 \
      --data $SAMPLES/dplus_5body_train.root --reference $SAMPLES/dplus_5body_reference.root \
      --objects K pi1 pi2 pi3 pi4 --identical pi1,pi2,pi3 --name dplus_5body \
      --out $R/fidelity_v2_dplus_5body.json
} > $R/fidelity_v2_others.log 2>&1 &
wait
