#!/bin/sh
# The baseline: what a person would type to build N containers on one bridge with `ip`.
#   sh benchmarks/baseline_ip.sh build N PREFIX   /   sh benchmarks/baseline_ip.sh teardown N PREFIX
# PREFIX names the namespaces (PREFIX.host, PREFIX.c0, ...); everything stays in them.
set -e
cmd=$1 n=$2 p=$3
h=$p.host
if [ "$cmd" = build ]; then
  ip netns add $h
  ip -n $h link add br0 type bridge
  ip -n $h addr add 10.0.0.1/16 dev br0
  ip -n $h link set br0 up
  i=0
  while [ $i -lt $n ]; do
    c=$p.c$i
    a=$((i + 2))
    ip netns add $c
    ip -n $h link add v$i type veth peer name eth0 netns $c
    ip -n $h link set v$i master br0 up
    ip -n $c addr add 10.0.$((a / 256)).$((a % 256))/16 dev eth0
    ip -n $c link set eth0 up
    ip -n $c link set lo up
    ip -n $c route add default via 10.0.0.1
    i=$((i + 1))
  done
elif [ "$cmd" = teardown ]; then
  i=0
  while [ $i -lt $n ]; do
    ip netns del $p.c$i
    i=$((i + 1))
  done
  ip netns del $h
fi
