"""Which dissector gets which traffic, as data.

Non-IP industrial protocols are recognised by ethertype. (TCP/UDP protocols are recognised by
content in ``otsight.capture.framing`` and the protocol dissectors, with ports as hints only.)
"""

from __future__ import annotations

ETHERTYPE_PROTOCOLS: dict[int, str] = {
    0x8892: "profinet",
    0x88B8: "goose",
    0x88B9: "gse_management",
    0x88BA: "sv",
    0x88A4: "ethercat",
    0x88F7: "ptp",
    0x88E3: "mrp",
    0x88AB: "powerlink",
    0x891D: "tte",
}
