#!/bin/sh
# The baseline for DockerHost.run: what dockerd does for N containers on the default bridge,
# typed as `ip`, `sysctl` and `nft` commands (the ruleset file is Docker's chains, made by the
# benchmark with netteach.docker.rules so both sides install the same rules).
#   sh benchmarks/baseline_docker.sh build N PREFIX RULES_FILE   /   ... teardown N PREFIX
set -e
cmd=$1 n=$2 p=$3 rules=$4
h=$p.host
if [ "$cmd" = build ]; then
  ip netns add $h
  ip netns add $p.internet
  ip -n $h link add docker0 type bridge
  ip -n $h addr add 172.17.0.1/16 dev docker0
  ip -n $h link set docker0 up
  ip netns exec $h sysctl -qw net.ipv4.ip_forward=1
  ip -n $h link add eth0 type veth peer name eth0 netns $p.internet
  ip -n $h addr add 198.51.100.2/24 dev eth0
  ip -n $p.internet addr add 198.51.100.1/24 dev eth0
  ip -n $h link set eth0 up
  ip -n $p.internet link set eth0 up
  ip -n $h route add default via 198.51.100.1
  ip netns exec $h nft -f "$rules"
  i=0
  while [ $i -lt $n ]; do
    c=$p.c$i
    a=$((i + 2))
    ip4=172.17.$((a / 256)).$((a % 256))
    mac=$(printf '02:42:ac:11:%02x:%02x' $((a / 256)) $((a % 256)))
    v=$(printf 'veth%07x' $i)
    ip netns add $c
    ip -n $h link add $v type veth peer name eth0 netns $c
    ip -n $h link set $v master docker0 up
    ip -n $c link set eth0 address $mac up
    ip -n $c link set lo up
    ip -n $c addr add $ip4/16 dev eth0
    ip -n $c route add default via 172.17.0.1
    mkdir -p /etc/netns/$c
    printf '127.0.0.1\tlocalhost\n%s\t%s\n' $ip4 $c > /etc/netns/$c/hosts
    printf 'nameserver 198.51.100.1\n' > /etc/netns/$c/resolv.conf
    i=$((i + 1))
  done
elif [ "$cmd" = teardown ]; then
  i=0
  while [ $i -lt $n ]; do
    ip netns del $p.c$i
    rm -rf /etc/netns/$p.c$i
    i=$((i + 1))
  done
  ip netns del $p.internet
  ip netns del $h
  rmdir /etc/netns 2>/dev/null || true
fi
