"""Link-layer header types (tcpdump.org LINKTYPE_ values) otsight knows by name."""

from __future__ import annotations

# Link types the L2 kernel decodes.
ETHERNET = 1
NULL = 0  # BSD loopback, family in host byte order
LOOP = 108  # OpenBSD loopback, family in network byte order
RAW = 101
RAW_DLT12 = 12  # DLT_RAW on most BSDs
RAW_DLT14 = 14  # DLT_RAW on OpenBSD
IPV4 = 228
IPV6 = 229
LINUX_SLL = 113
LINUX_SLL2 = 276

DECODED = frozenset(
    {ETHERNET, NULL, LOOP, RAW, RAW_DLT12, RAW_DLT14, IPV4, IPV6, LINUX_SLL, LINUX_SLL2}
)

_NAMES = {
    0: "NULL (BSD loopback)",
    1: "ETHERNET",
    6: "IEEE802_5 (Token Ring)",
    7: "ARCNET_BSD",
    9: "PPP",
    10: "FDDI",
    12: "RAW (DLT 12)",
    14: "RAW (DLT 14)",
    101: "RAW",
    104: "C_HDLC",
    105: "IEEE802_11",
    108: "LOOP",
    113: "LINUX_SLL",
    119: "PRISM_HEADER",
    127: "IEEE802_11_RADIOTAP",
    129: "ARCNET_LINUX",
    147: "USER0",
    189: "USB_LINUX",
    195: "IEEE802_15_4_WITHFCS",
    201: "BLUETOOTH_HCI_H4_WITH_PHDR",
    215: "IEEE802_15_4_NONASK_PHY",
    220: "USB_LINUX_MMAPPED",
    227: "CAN_SOCKETCAN",
    228: "IPV4",
    229: "IPV6",
    230: "IEEE802_15_4_NOFCS",
    249: "NETLINK",
    276: "LINUX_SLL2",
}


def linktype_name(linktype: int) -> str:
    return _NAMES.get(linktype, "unknown")


def is_decoded(linktype: int) -> bool:
    return linktype in DECODED
