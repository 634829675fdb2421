#!/usr/bin/env bash
# The judging runs of Model v2 (docs/benchmarks.md): every model is trained on a training
# file and judged on the independent reference file, which no default was chosen on.
# Two processes (one per core); the samples of examples/decays_pythia.py and of
# bench/real_pairs.py are in $SAMPLES.
#
#   bash bench/run_judgement.sh                            # vaeaug and the NSF peer
#   TAG=_ema PEERS=vaeaug bash bench/run_judgement.sh      # vaeaug only, fidelity_v2_ema_*.json
#   TAG=_ema EXTENDED=1 bash bench/run_judgement.sh        # only N = 1,000 x 3 seeds on the
#       Pythia decays and seeds 2-3 at N = 10,000 on the dimuon spectrum, both peers
#   TAG=_small SMALL=1 PEERS=vaeaug bash bench/run_judgement.sh   # only the small samples:
#       D+ at N = 1,000 (with the amplification), the HZZ pairs at N = 500 and N = 1,000
#       on the Pythia decays, 3 seeds each (for a default that leaves N = 10k unchanged)
#   TAG=_exch SYMMETRIC=1 bash bench/run_judgement.sh   # vaeaug's rows (N = 10k, 1k, HZZ 500)
#       of every dataset with identical daughters: all but Lambda_c+ -> p K- pi+, whose
#       daughters differ in mass, so that its trainings are unchanged by the exchange symmetry
#   TAG=_sort TWO_BODY=1 bash bench/run_judgement.sh    # vaeaug's rows of the two-body
#       datasets only: the dimuon spectrum (N = 10k and 1k) and the HZZ muon pairs (N = 500)
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLES=${SAMPLES:-/work/samples}
TAG=${TAG:-}
PEERS=${PEERS:-vaeaug nsf-decay}
export OMP_NUM_THREADS=1
export PYTHONPATH=${JUDGE_SRC:-src}
R=bench/results
MU="0.1056583755 0.1056583755"
fid() { python bench/fidelity.py --no-progress "$@"; }
has() { [[ " $PEERS " == *" $1 "* ]]; }
EXTENDED=${EXTENDED:-0}
SMALL=${SMALL:-0}
SYMMETRIC=${SYMMETRIC:-0}
TWO_BODY=${TWO_BODY:-0}
dataset() {  # NAME: fidelity.py's arguments for the pair NAME_train.root, NAME_reference.root
  local name=$1
  echo --data $SAMPLES/${name}_train.root --reference $SAMPLES/${name}_reference.root --name $name
  case $name in
    lambdac) echo --objects p K pi ;;
    d0_k3pi) echo --objects K pi1 pi2 pi3 --identical pi1,pi2 ;;
    dplus_5body) echo --objects K pi1 pi2 pi3 pi4 --identical pi1,pi2,pi3 ;;
    dimuon) echo --objects mu1 mu2 --identical mu1,mu2 --resonances 'J/psi(1S)' 'Upsilon(1S)' Z0 ;;
    hzz_mumu) echo --objects l1 l2 --identical l1,l2 --masses $MU --resonances Z0 ;;
  esac
}
pythia_1k() {  # N = 1,000 x 3 seeds on each Pythia decay
  for name in lambdac d0_k3pi dplus_5body dimuon; do
    fid --peers $PEERS --sizes 1000 --seeds 1 2 3 $(dataset $name) \
        --out $R/fidelity_v2${TAG}_${name}_1k.json
  done
}
if [[ $SMALL == 1 ]]; then
  pythia_1k > $R/fidelity_v2${TAG}_small_pythia.log 2>&1 &
  {
    fid --peers $PEERS --sizes 1000 --seeds 1 2 3 --out $R/fidelity_v2${TAG}_dplus_1k.json
    fid --peers $PEERS --sizes 500 --seeds 1 2 3 $(dataset hzz_mumu) \
        --out $R/fidelity_v2${TAG}_hzz_mumu.json
  } > $R/fidelity_v2${TAG}_small_dplus_hzz.log 2>&1 &
  wait
  exit 0
fi
if [[ $TWO_BODY == 1 ]]; then
  fid --peers vaeaug --sizes 10000 --seeds 1 2 3 $(dataset dimuon) \
      --out $R/fidelity_v2${TAG}_dimuon.json > $R/fidelity_v2${TAG}_dimuon.log 2>&1 &
  {
    fid --peers vaeaug --sizes 500 --seeds 1 2 3 $(dataset hzz_mumu) \
        --out $R/fidelity_v2${TAG}_hzz_mumu.json
    fid --peers vaeaug --sizes 1000 --seeds 1 2 3 $(dataset dimuon) \
        --out $R/fidelity_v2${TAG}_dimuon_1k.json
  } > $R/fidelity_v2${TAG}_hzz_dimuon_1k.log 2>&1 &
  wait
  exit 0
fi
if [[ $SYMMETRIC == 1 ]]; then
  {
    fid --peers vaeaug --sizes 10000 1000 --seeds 1 2 3 --out $R/fidelity_v2${TAG}_dplus.json
    fid --peers vaeaug --sizes 500 --seeds 1 2 3 $(dataset hzz_mumu) \
        --out $R/fidelity_v2${TAG}_hzz_mumu.json
    for name in dimuon d0_k3pi; do
      fid --peers vaeaug --sizes 1000 --seeds 1 2 3 $(dataset $name) \
          --out $R/fidelity_v2${TAG}_${name}_1k.json
    done
  } > $R/fidelity_v2${TAG}_dplus_hzz.log 2>&1 &
  {
    fid --peers vaeaug --sizes 10000 --seeds 1 2 3 $(dataset dimuon) \
        --out $R/fidelity_v2${TAG}_dimuon.json
    for name in d0_k3pi dplus_5body; do
      fid --peers vaeaug --sizes 10000 --seeds 1 $(dataset $name) \
          --out $R/fidelity_v2${TAG}_${name}.json
    done
    fid --peers vaeaug --sizes 1000 --seeds 1 2 3 $(dataset dplus_5body) \
        --out $R/fidelity_v2${TAG}_dplus_5body_1k.json
  } > $R/fidelity_v2${TAG}_others.log 2>&1 &
  wait
  exit 0
fi
if [[ $EXTENDED == 1 ]]; then
  pythia_1k > $R/fidelity_v2${TAG}_extended_1k.log 2>&1 &
  fid --peers $PEERS --sizes 10000 --seeds 2 3 $(dataset dimuon) \
      --out $R/fidelity_v2${TAG}_dimuon_seeds23.json > $R/fidelity_v2${TAG}_extended_dimuon.log 2>&1 &
  wait
  exit 0
fi
{
  if has vaeaug; then
    fid --peers vaeaug --sizes 10000 1000 --seeds 1 2 3 --out $R/fidelity_v2${TAG}_dplus.json
  fi
  if has nsf-decay; then
    for name in lambdac d0_k3pi dplus_5body; do
      fid --peers nsf-decay --sizes 10000 --seeds 1 $(dataset $name) \
          --out $R/fidelity_v2${TAG}_${name}_nsf.json
    done
  fi
} > $R/fidelity_v2${TAG}_dplus.log 2>&1 &
{
  fid --peers $PEERS --sizes 10000 --seeds 1 $(dataset dimuon) --out $R/fidelity_v2${TAG}_dimuon.json
  fid --peers $PEERS --sizes 500 --seeds 1 2 3 $(dataset hzz_mumu) \
      --out $R/fidelity_v2${TAG}_hzz_mumu.json
  if has vaeaug; then
    for name in lambdac d0_k3pi dplus_5body; do
      fid --peers vaeaug --sizes 10000 --seeds 1 $(dataset $name) \
          --out $R/fidelity_v2${TAG}_${name}.json
    done
  fi
} > $R/fidelity_v2${TAG}_others.log 2>&1 &
wait
