#!/usr/bin/env bash
# Captures real traffic for the golden cases router_ping_capture and
# router_http_capture: a ping and an HTTP request between two hosts through a
# Linux router, all three in network namespaces this script creates and
# always deletes (trap), with addresses that exist only inside them:
#
#   p4l-cap-a (a0 10.0.1.10/24) -- r1 [p4l-cap-r: 10.0.1.1, 10.0.2.1] r2 -- (b0 10.0.2.20/24) p4l-cap-b
#
# tcpdump in the router namespace records what enters the router
# (captures/*_in_<port>.pcap: port 1 = r1, port 2 = r2) and what it forwards
# (captures/*_out_<port>.pcap). `gen.py captures` turns the latter into the
# cases' expected outputs: p4lite's ipv4_router, given the same MACs, must
# forward exactly what Linux forwarded.
#
# Needs root, iproute2, tcpdump, ethtool, curl, python3 with scapy; editcap
# (from tshark) turns one input into pcapng so both formats are exercised.
# Every step is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")"
OUT=captures
A=p4l-cap-a R=p4l-cap-r B=p4l-cap-b
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for ns in $A $R $B; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
cleanup

ip netns add $A
ip netns add $R
ip netns add $B
ip link add a0 netns $A type veth peer name r1 netns $R
ip link add b0 netns $B type veth peer name r2 netns $R

# Fixed MACs (gen.py's CAP_MACS), no IPv6 chatter, no offloads: with
# checksum offload on, veth carries TCP packets with unfinished checksums.
setup() { # ns dev mac addr
    ip -n "$1" link set "$2" address "$3"
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    ip -n "$1" addr add "$4" dev "$2"
    ip -n "$1" link set "$2" up
    ip -n "$1" link set lo up
}
setup $A a0 02:00:00:00:01:0a 10.0.1.10/24
setup $R r1 02:00:00:00:01:01 10.0.1.1/24
setup $R r2 02:00:00:00:02:01 10.0.2.1/24
setup $B b0 02:00:00:00:02:14 10.0.2.20/24
ip -n $A route add default via 10.0.1.1
ip -n $B route add default via 10.0.2.1
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0

mkdir -p $OUT

# Starts tcpdump on r1/r2, in and out, for a scenario; stops them after "$@".
capture() { # name command...
    local name=$1
    shift
    ip -n $A neigh flush all
    ip -n $B neigh flush all
    ip -n $R neigh flush all
    local dumps=()
    for port in 1 2; do
        for dir in in out; do
            timeout 30 ip netns exec $R tcpdump -q -n -U -i r$port -Q $dir -w "$OUT/${name}_${dir}_$port.pcap" 2>/dev/null &
            dumps+=($!)
            PIDS+=($!)
        done
    done
    sleep 1
    "$@"
    sleep 1
    for pid in "${dumps[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${dumps[@]}"; do wait "$pid" 2>/dev/null || true; done
}

capture ping timeout 10 ip netns exec $A ping -c 3 -i 0.2 -W 2 10.0.2.20

# A small file served by python's http.server in b, fetched by curl in a.
WWW=$(mktemp -d)
echo "hello from p4lite's capture namespace" >"$WWW/hello.txt"
timeout 30 ip netns exec $B python3 -m http.server 8000 --bind 10.0.2.20 --directory "$WWW" >/dev/null 2>&1 &
PIDS+=($!)
sleep 1
capture http timeout 10 ip netns exec $A curl -s --max-time 5 -o /dev/null http://10.0.2.20:8000/hello.txt
rm -rf "$WWW"

# One input as pcapng, so the cases read both formats.
editcap -F pcapng $OUT/http_in_1.pcap $OUT/http_in_1.pcapng
rm $OUT/http_in_1.pcap

python3 gen.py captures
ls -l $OUT
