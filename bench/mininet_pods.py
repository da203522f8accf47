#!/usr/bin/python3
"""Mininet peer for bench/pods.ts: N hosts on one LinuxBridge switch, no controller.

Times net.build(); net.start() (up) and net.stop() (down) and prints one line:
    MININET n=N up_s=SECONDS down_s=SECONDS
(`from mininet.node import LinuxBridge` fails on 2.3: the class lives in mininet.nodelib.)
Run with Debian's /usr/bin/python3 (the mininet package installs there). Only
LinuxBridge is used: no Open vSwitch daemon and no controller are needed.
After net.stop() it checks what the run left on the machine (its bridge, its
veths in the root namespace, its mnexec shells) and removes those objects by
name only (never `mn -c`, which also kills unrelated processes); exit 3 if any
were found, so the caller knows Mininet did not clean up after itself.
"""
import os
import subprocess
import sys
import time

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.nodelib import LinuxBridge  # Mininet 2.3 keeps it in nodelib
from mininet.topo import Topo

SWITCH = 'bns1'  # a name unlikely to clash with anything else on the machine


class PodsTopo(Topo):
    def build(self, n=10):
        s = self.addSwitch(SWITCH, cls=LinuxBridge, stp=False)
        for i in range(1, n + 1):
            self.addLink(self.addHost(f'bh{i}', ip=f'10.99.{i // 250}.{i % 250 + 1}/16'), s)


def leftovers(pids):
    left = []
    links = subprocess.run(['ip', '-o', 'link', 'show'], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(':')[1].strip().split('@')[0]
        if name == SWITCH or name.startswith(SWITCH + '-'):
            left.append(('link', name))
    for pid in pids:
        if pid and os.path.exists(f'/proc/{pid}'):
            left.append(('pid', pid))
    return left


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    setLogLevel('error')
    net = Mininet(topo=PodsTopo(n=n), switch=LinuxBridge, controller=None, build=False,
                  autoSetMacs=False, waitConnected=False)
    t0 = time.perf_counter()
    net.build()
    net.start()
    t1 = time.perf_counter()
    pids = [h.pid for h in net.hosts]
    t2 = time.perf_counter()
    net.stop()
    t3 = time.perf_counter()
    left = leftovers(pids)
    for kind, what in left:
        if kind == 'link':
            subprocess.run(['ip', 'link', 'del', what], capture_output=True)
        else:
            try:
                os.kill(what, 9)
            except ProcessLookupError:
                pass
    print(f'MININET n={n} up_s={t1 - t0:.4f} down_s={t3 - t2:.4f}', flush=True)
    if left:
        print(f'mininet left {len(left)} objects (removed now): {left[:5]}', file=sys.stderr)
        sys.exit(3)


if __name__ == '__main__':
    main()
