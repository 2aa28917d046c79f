"""Packet and capture-file encoders (pcap/pcapng writers, protocol byte builders).

Used to synthesise deterministic captures for tests, demos and the plant simulator.
"""
