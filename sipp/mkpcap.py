#!/usr/bin/env python3
"""Writes sipp/g711u.pcap: RTP PCMU (payload type 0), 20 ms packets, for
play_pcap_audio in hotline_uac.xml.

SIPp ships only an A-law pcap (g711a.pcap, payload type 8); the scenario
offers PCMU, so its caller audio should be PCMU too. The audio is a quiet
440 Hz tone. SIPp rewrites the addresses and UDP ports when it plays the
file, so the ones written here do not matter.

Usage: python3 sipp/mkpcap.py [seconds] > sipp/g711u.pcap
"""
import math
import struct
import sys


def ulaw(sample):
    """G.711 mu-law encoding of a signed 16-bit sample."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, clip) + bias
    exp = 7
    mask = 0x4000
    while exp > 0 and not sample & mask:
        exp -= 1
        mask >>= 1
    mant = (sample >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    out = sys.stdout.buffer
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
    src, dst = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
    sport, dport = 6000, 10000
    ssrc, seq0, ts0 = 0x486F746C, 1000, 160000
    for i in range(int(seconds * 50)):
        pcm = [int(3000 * math.sin(2 * math.pi * 440 * (i * 160 + n) / 8000)) for n in range(160)]
        rtp = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | 0, (seq0 + i) & 0xFFFF,
                          (ts0 + 160 * i) & 0xFFFFFFFF, ssrc) + bytes(ulaw(s) for s in pcm)
        ulen = 8 + len(rtp)
        pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
        udp = struct.pack("!HHHH", sport, dport, ulen, 0) + rtp
        csum = checksum(pseudo + udp) or 0xFFFF
        udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, i & 0xFFFF, 0, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        frame = b"\0" * 12 + b"\x08\x00" + ip + udp
        t = i * 0.02
        out.write(struct.pack("<IIII", int(t), int(round((t % 1) * 1e6)), len(frame), len(frame)))
        out.write(frame)


if __name__ == "__main__":
    main()
