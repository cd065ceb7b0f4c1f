#!/usr/bin/env python3
"""Writes an advocate's phone audio with keys pressed, for play_pcap_audio in
hotline_advocate.xml: one RTP stream (one SSRC, sequence numbers and
timestamps rising throughout, as a real phone sends it) of PCMU (payload
type 0) tone at FREQ Hz, in which the KEYS are pressed as RFC 4733
telephone-events (payload type 101) after LEAD seconds: each key 100 ms
(five updates, then the end packet three times), 100 ms of tone between
keys, no audio while a key is down. SIPp's own dtmf_2833_*.pcap captures
each come from a different moment of one call (their timestamps and
sequence numbers go backwards from one to the next), so several keys in a
row are generated here instead.

Usage: python3 sipp/mkkeys.py SECONDS FREQ KEYS [LEAD] > sipp/advocate_star9.pcap
  e.g. python3 sipp/mkkeys.py 16 700 '*9' 2 > sipp/advocate_star9.pcap
"""
import math
import struct
import sys

from mkpcap import checksum, ulaw

EVENTS = {str(d): d for d in range(10)}
EVENTS.update({"*": 10, "#": 11})


def main():
    seconds, freq, keys = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    lead = float(sys.argv[4]) if len(sys.argv) > 4 else 2.0
    out = sys.stdout.buffer
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
    src, dst = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
    sport, dport = 6000, 10000
    ssrc, seq0, ts0 = 0x41647663, 2000, 320000
    packets = []  # (payload type, marker, timestamp offset in samples, payload, send time)
    n = 0  # 20 ms slots so far

    def tone(slots):
        nonlocal n
        for _ in range(slots):
            pcm = [int(8000 * math.sin(2 * math.pi * freq * (n * 160 + k) / 8000)) for k in range(160)]
            packets.append((0, n == 0, n * 160, bytes(ulaw(s) for s in pcm), n * 0.02))
            n += 1

    tone(int(lead * 50))
    for key in keys:
        start = n * 160
        for i in range(5):
            packets.append((101, i == 0, start, struct.pack("!BBH", EVENTS[key], 10, 160 * (i + 1)), n * 0.02))
            n += 1
        for j in range(3):  # the end, sent three times (RFC 4733 2.5.1.4), 5 ms apart
            packets.append((101, False, start, struct.pack("!BBH", EVENTS[key], 0x80 | 10, 800), n * 0.02 + 0.005 * j))
        n += 1
        tone(5)
    tone(max(0, int(seconds * 50) - n))

    for i, (pt, marker, ts, payload, t) in enumerate(packets):
        rtp = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, (seq0 + i) & 0xFFFF,
                          (ts0 + ts) & 0xFFFFFFFF, ssrc) + payload
        ulen = 8 + len(rtp)
        pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
        udp = struct.pack("!HHHH", sport, dport, ulen, 0) + rtp
        csum = checksum(pseudo + udp) or 0xFFFF
        udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, i & 0xFFFF, 0, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        frame = b"\0" * 12 + b"\x08\x00" + ip + udp
        out.write(struct.pack("<IIII", int(t), int(round((t % 1) * 1e6)), len(frame), len(frame)))
        out.write(frame)


if __name__ == "__main__":
    main()
