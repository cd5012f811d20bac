#!/usr/bin/env python3
"""Writes the topology fixtures of tests/unit/test_topology.cc into a directory (default: beside
this script): hwloc's XML export of a synthetic description (lstopo --input "pack:2 ..."), with I/O
objects (host bridges, PCI bridges, PCI devices, OS devices) added by hand under chosen CPU-side
objects, in hwloc 2.x XML. hwloc's XML parser takes no comments, hence this script as the record of
what each file holds. Needs lstopo (hwloc-nox); the output depends on hwloc's version only through
its <info> lines.

  single_numa.xml        1 package, 1 NUMA node, 4 cores x 2 PUs, caches; no PCI devices
  two_numa_gpus_nic.xml  2 packages with a NUMA node each, 8 cores, caches; an NVIDIA GPU on each
                         package (one behind a PCI bridge), a Mellanox InfiniBand NIC (mlx5_0, ib0)
                         on package 1, an NVMe drive (of no interest) on package 0
  four_numa_npus.xml     2 packages x 2 NUMA nodes, 8 cores; an Ascend NPU (19e5:d802, class 1200)
                         on each NUMA node, a NIC (enp66s0f0) on NUMA node 1 and one (enp189s0f0)
                         on package 1, which spans NUMA nodes 2 and 3
"""
import os
import re
import subprocess
import sys

# hwloc 2.x OS device types (osdev_type="N").
BLOCK, GPU, NETWORK, OPENFABRICS, DMA, COPROC = range(6)


def export(desc):
    return subprocess.run(["lstopo-no-graphics", "--input", desc, "--of", "xml", "-"],
                          check=True, capture_output=True, text=True).stdout


class Builder:
    """Makes I/O objects with gp_index values after those of the base topology."""

    def __init__(self, xml):
        self.gp = max(int(x) for x in re.findall(r'gp_index="(\d+)"', xml))

    def _next(self):
        self.gp += 1
        return self.gp

    @staticmethod
    def _wrap(head, children, ind):
        if not children:
            return head + '/>\n'
        return head + '>\n' + ''.join(children) + f'{ind}</object>\n'

    def osdev(self, ind, name, kind, subtype=None):
        sub = f' subtype="{subtype}"' if subtype else ''
        return (f'{ind}<object type="OSDev" gp_index="{self._next()}" name="{name}"{sub} '
                f'osdev_type="{kind}"/>\n')

    def pcidev(self, ind, busid, cls, vendor, device, *children):
        head = (f'{ind}<object type="PCIDev" gp_index="{self._next()}" pci_busid="{busid}" '
                f'pci_type="{cls:04x} [{vendor:04x}:{device:04x}] [{vendor:04x}:{device:04x}] 00" '
                f'pci_link_speed="15.753846"')
        return self._wrap(head, children, ind)

    def hostbridge(self, ind, lo, hi, *children):
        head = (f'{ind}<object type="Bridge" gp_index="{self._next()}" bridge_type="0-1" '
                f'depth="0" bridge_pci="0000:[{lo:02x}-{hi:02x}]"')
        return self._wrap(head, children, ind)

    def pcibridge(self, ind, busid, lo, hi, *children):
        head = (f'{ind}<object type="Bridge" gp_index="{self._next()}" bridge_type="1-1" '
                f'depth="1" bridge_pci="0000:[{lo:02x}-{hi:02x}]" pci_busid="{busid}" '
                f'pci_type="0604 [1000:c010] [1000:a064] b0" pci_link_speed="31.507692"')
        return self._wrap(head, children, ind)


def insert_under(xml, pattern, block):
    """Inserts block before the closing tag of the first object whose start tag matches."""
    lines = xml.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if '<object' in line and re.search(pattern, line):
            indent = ' ' * (len(line) - len(line.lstrip()))
            for j in range(i + 1, len(lines)):
                if lines[j].startswith(indent + '</object>'):
                    lines.insert(j, block)
                    return ''.join(lines)
    sys.exit(f'no object matches {pattern}')


def single_numa():
    return export('pack:1 numa:1(memory=17179869184) l3:1(size=16777216) l2:4(size=1048576) '
                  'l1d:1(size=49152) core:1 pu:2')


def two_numa_gpus_nic():
    xml = export('pack:2 numa:1(memory=68719476736) l3:1(size=33554432) l2:4(size=1048576) '
                 'l1d:1(size=32768) core:1 pu:1')
    b = Builder(xml)
    i = ' ' * 6
    p0 = b.hostbridge(
        i, 0x16, 0x18,
        b.pcibridge(i + '  ', '0000:16:00.0', 0x17, 0x17,
                    b.pcidev(i + '    ', '0000:17:00.0', 0x0302, 0x10de, 0x20b0,
                             b.osdev(i + '      ', 'card1', GPU),
                             b.osdev(i + '      ', 'cuda0', COPROC, 'CUDA'))),
        b.pcidev(i + '  ', '0000:18:00.0', 0x0108, 0x144d, 0xa808,
                 b.osdev(i + '    ', 'nvme0n1', BLOCK)))
    p1 = b.hostbridge(
        i, 0xb0, 0xca,
        b.pcidev(i + '  ', '0000:b1:00.0', 0x0302, 0x10de, 0x20b0,
                 b.osdev(i + '    ', 'card2', GPU),
                 b.osdev(i + '    ', 'cuda1', COPROC, 'CUDA')),
        b.pcidev(i + '  ', '0000:ca:00.0', 0x0207, 0x15b3, 0x101b,
                 b.osdev(i + '    ', 'ib0', NETWORK),
                 b.osdev(i + '    ', 'mlx5_0', OPENFABRICS)))
    xml = insert_under(xml, r'type="Package" os_index="0"', p0)
    return insert_under(xml, r'type="Package" os_index="1"', p1)


def four_numa_npus():
    xml = export('pack:2 numa:2(memory=137438953472) core:2 pu:1')
    b = Builder(xml)
    i = ' ' * 8
    # The Group holding NUMA node n has nodeset 1 << n.
    for numa, bus in enumerate([0x01, 0x41, 0x81, 0xc1]):
        devices = [b.pcidev(i + '  ', f'0000:{bus:02x}:00.0', 0x1200, 0x19e5, 0xd802)]
        if numa == 1:
            devices.append(b.pcidev(i + '  ', '0000:42:00.0', 0x0200, 0x19e5, 0x1822,
                                    b.osdev(i + '    ', 'enp66s0f0', NETWORK)))
        xml = insert_under(xml, rf'type="Group" .*nodeset="0x{1 << numa:08x}"',
                           b.hostbridge(i, bus - 1, bus + 1, *devices))
    i = ' ' * 6
    return insert_under(xml, r'type="Package" os_index="1"',
                        b.hostbridge(i, 0xbc, 0xbd,
                                     b.pcidev(i + '  ', '0000:bd:00.0', 0x0200, 0x15b3, 0x1017,
                                              b.osdev(i + '    ', 'enp189s0f0', NETWORK))))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for name, make in [('single_numa', single_numa), ('two_numa_gpus_nic', two_numa_gpus_nic),
                       ('four_numa_npus', four_numa_npus)]:
        with open(os.path.join(out, name + '.xml'), 'w') as f:
            f.write(make())


if __name__ == '__main__':
    main()
