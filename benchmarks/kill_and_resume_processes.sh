#!/bin/bash
# A CIFAR-10 DDPM on 2 processes of this machine, per backend, with docs/scaling.md's commands (torch
# through torchrun): start it, SIGKILL the process of index 1 after the first commit, time how long
# the others take to end, rerun the same commands and check that they resume and finish.
#   KGEN_DATA_DIR=../shared/data bash benchmarks/kill_and_resume_processes.sh [torch jax tensorflow]
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3
T=$(mktemp -d)
ARGS="--data cifar10 --limit 512 --batch-size 32 --widths 16,32 --sample-steps 2 --checkpoint-every 0.05"
launch() { # backend epochs out logprefix
  B=$1; E=$2; O=$3; L=$4
  if [ $B = torch ]; then
    KERAS_BACKEND=torch torchrun --nproc-per-node 2 --master-port 29611 -m kgen.train ddpm $ARGS --epochs $E --output-dir $O > $L.0.log 2>&1 &
    echo $! > $L.pids
  else
    : > $L.pids
    for i in 0 1; do
      if [ $B = jax ]; then
        KERAS_BACKEND=jax KERAS_DISTRIBUTION_JOB_ADDRESSES=localhost:12355 KERAS_DISTRIBUTION_NUM_PROCESSES=2 KERAS_DISTRIBUTION_PROCESS_ID=$i python -m kgen.train ddpm $ARGS --epochs $E --output-dir $O > $L.$i.log 2>&1 &
      else
        KERAS_BACKEND=tensorflow TF_CONFIG='{"cluster": {"worker": ["localhost:12365", "localhost:12366"]}, "task": {"type": "worker", "index": '$i'}}' python -m kgen.train ddpm $ARGS --epochs $E --output-dir $O > $L.$i.log 2>&1 &
      fi
      echo $! >> $L.pids
    done
  fi
}
for B in ${@:-torch jax tensorflow}; do
  O=$T/demo_$B; rm -rf $O
  launch $B 100 $O $T/demo_$B.a
  until grep -qs '"step": [1-9][0-9]' $O/state.json; do sleep 2; done
  if [ $B = torch ]; then W=$(pgrep -f "kgen.train ddpm.*demo_torch" | tail -n 1); else W=$(sed -n 2p $T/demo_$B.a.pids); fi
  kill -9 $W; t0=$(date +%s.%N)
  while pgrep -f "kgen.train ddpm.*demo_$B" > /dev/null; do sleep 0.5; done
  t1=$(date +%s.%N)
  step=$(python -c "import json;print(json.load(open('$O/state.json'))['step'])")
  echo "$B: killed worker $W; the others ended after $(python -c "print(round($t1-$t0,1))") s; last commit step $step"
  grep -h "^error" $T/demo_$B.a.0.log | cut -c1-400
  E=$(( step / 16 + 2 ))
  launch $B $E $O $T/demo_$B.b; wait
  grep -h "Resuming\|Run folder" $T/demo_$B.b.0.log
  python -c "import json;s=json.load(open('$O/state.json'));c=json.load(open('$O/chunks.json'));print('$B: final step', s['step'], 'chunks', [(x['step_start'], x['step_end'], x.get('processes')) for x in c])"
done
