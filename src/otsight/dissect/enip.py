"""EtherNet/IP encapsulation and CIP: encapsulation header, CPF, CIP messages, PCCC, I/O.

Three tables:

* ``enip``: one row per encapsulation PDU (TCP PDUs framed by reassembly's ENIP framer;
  UDP datagrams probed by content: strict header + exact length). ListIdentity answers are
  rare and decoded in Python (vendor, device type, product, revision, serial, name, state,
  socket address).
* ``cip``: one row per CIP message carried by SendRRData (0x6F, unconnected) or
  SendUnitData (0x70, connected: CIP sequence count, then the message). Multiple Service
  Packet (0x0A) and Unconnected Send (0x52 on the Connection Manager, class 6) are unwrapped:
  the wrapper keeps its own row and every embedded message gets one more row whose
  ``wrapper`` says what carried it. A response to an Unconnected Send is the embedded
  service's reply (the wrapper is transparent on the way back). Service names are
  class-scoped (Connection Manager, Logix symbol/template and vendor classes, File object,
  PCCC). Responses carry the class/instance/attribute/symbol of their request: unconnected
  ones are paired by (flow, sender context), connected ones by (flow, CIP sequence count);
  embedded messages by their position in the wrapper.
* ``enip_io``: implicit (class 0/1) I/O on UDP: CPF sequenced-address item (0x8002:
  connection id, sequence number) + connected data item (0x00B1), probed by content.

The hot path is three numba kernels: the encapsulation header and CPF walk (one row per
PDU), the CIP message walk (counted, then filled: one row per message), and the ANSI symbol
bytes (counted, then copied into an Arrow string buffer).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.capture import framing
from otsight.capture._prefetch import prefetch, prefetch_write
from otsight.dissect import _l2l4 as L
from otsight.dissect import sparse
from otsight.dissect.base import (
    ChunkContext,
    Dissector,
    Meaning,
    MeaningColumns,
    Semantics,
    distinct_strings,
    from_validity,
    null_negative,
    null_negative_rows,
    paired_columns,
    pairing_columns,
    sparse_column,
    take_envelope,
    timestamps,
)
from otsight.dissect.matching import RequestMatcher

# ---- semantics (seeded from shared/PROTOCOLS.md 3.3 and Wireshark 4.0 value strings) --------
COMMANDS = Semantics(
    "enip",
    "command",
    {
        0x0000: ("nop", "session"),
        0x0001: ("list_targets", "discovery", ["T0846"]),
        0x0004: ("list_services", "discovery", ["T0846", "T0888"]),
        0x0063: ("list_identity", "discovery", ["T0846", "T0888"]),
        0x0064: ("list_interfaces", "discovery", ["T0846", "T0888"]),
        0x0065: ("register_session", "session", ["T0886"]),
        0x0066: ("unregister_session", "session"),
        0x006F: ("send_rr_data", "session"),
        0x0070: ("send_unit_data", "session"),
        0x0072: ("indicate_status", "session"),
        0x0073: ("cancel", "session"),
        0x00C8: ("start_dtls", "session"),
    },
)

ENCAP_STATUS = Semantics(
    "enip",
    "status",
    {
        0x00: "success",
        0x01: "invalid_command",
        0x02: "no_memory_resources",
        0x03: "incorrect_data",
        0x64: "invalid_session_handle",
        0x65: "invalid_length",
        0x69: "unsupported_protocol_revision",
        0x6A: "encapsulated_cip_service_not_allowed_on_this_port",
    },
)

# Common services (CIP Vol. 1 appendix A): the same on every class.
SERVICES = Semantics(
    "cip",
    "service",
    {
        0x01: ("get_attributes_all", "read", ["T0801", "T0888"]),
        0x02: ("set_attributes_all", "write", ["T0836"]),
        0x03: ("get_attribute_list", "read", ["T0801"]),
        0x04: ("set_attribute_list", "write", ["T0836"]),
        0x05: ("reset", "control", ["T0816"]),
        0x06: ("start", "control", ["T0858"]),
        0x07: ("stop", "control", ["T0858"]),
        0x08: ("create", "write", ["T0836"]),
        0x09: ("delete", "write", ["T0836"]),
        0x0A: ("multiple_service_packet", "session"),
        0x0D: ("apply_attributes", "write", ["T0836"]),
        0x0E: ("get_attribute_single", "read", ["T0801"]),
        0x10: ("set_attribute_single", "write", ["T0836"]),
        0x11: ("find_next_object_instance", "read", ["T0861"]),
        0x14: ("error_response", None),
        0x15: ("restore", "write", ["T0836"]),
        0x16: ("save", "write", ["T0836"]),
        0x17: ("nop", "session"),
        0x18: ("get_member", "read", ["T0801"]),
        0x19: ("set_member", "write", ["T0836"]),
        0x1A: ("insert_member", "write", ["T0836"]),
        0x1B: ("remove_member", "write", ["T0836"]),
        0x1C: ("group_sync", "session"),
    },
)

# Connection Manager (class 0x06) services.
CM_SERVICES = Semantics(
    "cip",
    "service_connection_manager",
    {
        0x4E: ("forward_close", "session"),
        0x52: ("unconnected_send", "session", ["T0886"]),
        0x54: ("forward_open", "session", ["T0886", "T0855"]),
        0x56: ("get_connection_data", "read", ["T0840"]),
        0x57: ("search_connection_data", "read", ["T0840"]),
        0x5A: ("get_connection_owner", "read", ["T0840"]),
        0x5B: ("large_forward_open", "session", ["T0886", "T0855"]),
    },
)

# Logix controller services (Rockwell 1756-PM020): symbolic paths, Symbol (0x6B) and
# Template (0x6C) objects and the vendor-specific class range (0x64-0xC7, PCCC excepted).
LOGIX_SERVICES = Semantics(
    "cip",
    "service_logix",
    {
        0x4B: ("execute_pccc", "write", ["T0855"]),
        0x4C: ("read_tag", "read", ["T0801"]),
        0x4D: ("write_tag", "write", ["T0836", "T0855"]),
        0x4E: ("read_modify_write_tag", "write", ["T0836", "T0855"]),
        0x4F: ("read_other", "read", ["T0801"]),
        0x50: ("write_other", "write", ["T0836"]),
        0x51: ("logix_service_0x51", "control"),
        0x52: ("read_tag_fragmented", "read", ["T0801"]),
        0x53: ("write_tag_fragmented", "write", ["T0836", "T0855"]),
        0x54: ("logix_service_0x54", None),
        0x55: ("get_instance_attribute_list", "read", ["T0861"]),
    },
)

# File object (class 0x37): EDS, firmware and program files.
FILE_SERVICES = Semantics(
    "cip",
    "service_file",
    {
        0x4B: ("initiate_upload", "firmware", ["T0845"]),
        0x4C: ("initiate_download", "firmware", ["T0857", "T0843"]),
        0x4D: ("initiate_partial_read", "firmware", ["T0845"]),
        0x4E: ("initiate_partial_write", "firmware", ["T0857", "T0843"]),
        0x4F: ("upload_transfer", "firmware", ["T0845"]),
        0x50: ("download_transfer", "firmware", ["T0857", "T0843"]),
        0x51: ("clear_file", "firmware", ["T0857", "T0809"]),
    },
)

# PCCC object (class 0x67).
PCCC_SERVICES = Semantics("cip", "service_pccc", {0x4B: ("execute_pccc", "write", ["T0855"])})

# PCCC command/function codes: key = command << 8 | function (commands 0x06, 0x07, 0x0F).
PCCC = Semantics(
    "cip",
    "pccc",
    {
        0x0F00: ("word_range_write", "write", ["T0836"]),
        0x0F01: ("word_range_read", "read", ["T0801"]),
        0x0F02: ("bit_write", "write", ["T0836"]),
        0x0F03: ("file_write", "write", ["T0836"]),
        0x0F04: ("file_read", "read", ["T0801"]),
        0x0F05: ("download_request", "program", ["T0843"]),
        0x0F06: ("upload", "program", ["T0845"]),
        0x0F07: ("shutdown", "control", ["T0816"]),
        0x0F08: ("physical_write", "write", ["T0836"]),
        0x0F09: ("physical_read", "read", ["T0801"]),
        0x0F0A: ("restart_request", "control", ["T0816"]),
        0x0F11: ("get_edit_resource", "program", ["T0843"]),
        0x0F12: ("return_edit_resource", "program"),
        0x0F17: ("read_bytes_physical", "read", ["T0801"]),
        0x0F18: ("write_bytes_physical", "write", ["T0836"]),
        0x0F26: ("read_modify_write", "write", ["T0836"]),
        0x0F29: ("read_section_size", "read", ["T0801"]),
        0x0F3A: ("set_cpu_mode", "control", ["T0858"]),
        0x0F41: ("disable_forces", "control", ["T0855", "T0835"]),
        0x0F50: ("download_all_request", "program", ["T0843"]),
        0x0F52: ("download_completed", "program", ["T0843"]),
        0x0F53: ("upload_all_request", "program", ["T0845"]),
        0x0F55: ("upload_completed", "program", ["T0845"]),
        0x0F57: ("initialize_memory", "control", ["T0809", "T0816"]),
        0x0F5E: ("modify_plc2_compatibility_file", "write", ["T0836"]),
        0x0F67: ("typed_write", "write", ["T0836"]),
        0x0F68: ("typed_read", "read", ["T0801"]),
        0x0F79: ("read_modify_write_n", "write", ["T0836"]),
        0x0F80: ("change_cpu_mode", "control", ["T0858"]),
        0x0F81: ("open_file", "program"),
        0x0F82: ("close_file", "program"),
        0x0F88: ("execute_multiple_commands", "write", ["T0855"]),
        0x0F8F: ("apply_port_configuration", "write", ["T0836"]),
        0x0FA1: ("protected_typed_logical_read_2_address", "read", ["T0801"]),
        0x0FA2: ("protected_typed_logical_read_3_address", "read", ["T0801"]),
        0x0FA7: ("protected_typed_file_read", "read", ["T0801"]),
        0x0FA9: ("protected_typed_logical_write_2_address", "write", ["T0836"]),
        0x0FAA: ("protected_typed_logical_write_3_address", "write", ["T0836"]),
        0x0FAB: ("protected_typed_logical_masked_write_3_address", "write", ["T0836"]),
        0x0FAF: ("protected_typed_file_write", "write", ["T0836"]),
        0x0700: ("disable_outputs", "control", ["T0855", "T0835"]),
        0x0701: ("enable_outputs", "control", ["T0855", "T0835"]),
        0x0703: ("enable_plc_scanning", "control", ["T0858"]),
        0x0704: ("enter_download_mode", "program", ["T0843"]),
        0x0705: ("exit_download_upload_mode", "program"),
        0x0706: ("enter_upload_mode", "program", ["T0845"]),
        0x0600: ("echo", "diagnostic"),
        0x0601: ("read_diagnostic_counters", "diagnostic", ["T0888"]),
        0x0602: ("set_variables", "write", ["T0836"]),
        0x0603: ("diagnostic_status", "diagnostic", ["T0888"]),
        0x0604: ("set_timeout", "write", ["T0836"]),
        0x0605: ("set_naks", "write", ["T0836"]),
        0x0606: ("set_enqs", "write", ["T0836"]),
        0x0607: ("reset_diagnostic_counters", "diagnostic"),
        0x0608: ("set_data_table_size", "write", ["T0836"]),
        0x0609: ("read_link_parameters", "diagnostic", ["T0888"]),
        0x060A: ("set_link_parameters", "write", ["T0836"]),
    },
)

# (class, service) pairs whose meaning is sharper than the service alone.
CLASS_SERVICES = Semantics(
    "cip",
    "class_service",
    {
        (0x01, 0x01): ("get_attributes_all", "discovery", ["T0888"]),
        (0x01, 0x0E): ("get_attribute_single", "discovery", ["T0888"]),
        (0x01, 0x05): ("reset", "control", ["T0816", "T0809"]),
        (0xF5, 0x10): ("set_attribute_single", "write", ["T0836"]),
        (0xF5, 0x02): ("set_attributes_all", "write", ["T0836"]),
        (0xF6, 0x10): ("set_attribute_single", "write", ["T0836"]),
        (0x43, 0x10): ("set_attribute_single", "write", ["T0836"]),
    },
)

CLASSES = Semantics(
    "cip",
    "class",
    {
        0x01: "identity",
        0x02: "message_router",
        0x03: "devicenet",
        0x04: "assembly",
        0x05: "connection",
        0x06: "connection_manager",
        0x07: "register",
        0x08: "discrete_input_point",
        0x09: "discrete_output_point",
        0x0A: "analog_input_point",
        0x0B: "analog_output_point",
        0x0E: "presence_sensing",
        0x0F: "parameter",
        0x10: "parameter_group",
        0x12: "group",
        0x1D: "discrete_input_group",
        0x1E: "discrete_output_group",
        0x1F: "discrete_group",
        0x20: "analog_input_group",
        0x21: "analog_output_group",
        0x22: "analog_group",
        0x23: "position_sensor",
        0x24: "position_controller_supervisor",
        0x25: "position_controller",
        0x26: "block_sequencer",
        0x27: "command_block",
        0x28: "motor_data",
        0x29: "control_supervisor",
        0x2A: "ac_dc_drive",
        0x2B: "acknowledge_handler",
        0x2C: "overload",
        0x2D: "softstart",
        0x2E: "selection",
        0x30: "s_device_supervisor",
        0x31: "s_analog_sensor",
        0x32: "s_analog_actuator",
        0x33: "s_single_stage_controller",
        0x34: "s_gas_calibration",
        0x35: "trip_point",
        0x37: "file",
        0x38: "s_partial_pressure",
        0x39: "safety_supervisor",
        0x3A: "safety_validator",
        0x3B: "safety_discrete_output_point",
        0x3C: "safety_discrete_output_group",
        0x3D: "safety_discrete_input_point",
        0x3E: "safety_discrete_input_group",
        0x3F: "safety_dual_channel_output",
        0x40: "s_sensor_calibration",
        0x41: "event_log",
        0x42: "motion_device_axis",
        0x43: "time_sync",
        0x44: "modbus",
        0x45: "originator_connection_list",
        0x46: "modbus_serial_link",
        0x47: "device_level_ring_dlr",
        0x48: "qos",
        0x49: "safety_analog_input_point",
        0x4A: "safety_analog_input_group",
        0x4B: "safety_dual_channel_analog_input",
        0x4C: "sercos_iii_link",
        0x4D: "target_connection_list",
        0x4E: "base_energy",
        0x4F: "electrical_energy",
        0x50: "non_electrical_energy",
        0x51: "base_switch",
        0x52: "snmp",
        0x53: "power_management",
        0x54: "rstp_bridge",
        0x55: "rstp_port",
        0x56: "prp_hsr_protocol",
        0x57: "prp_hsr_nodes_table",
        0x58: "safety_feedback",
        0x59: "safety_dual_channel_feedback",
        0x5A: "safety_stop_functions",
        0x5B: "safety_limit_functions",
        0x5C: "power_curtailment",
        0x5D: "cip_security",
        0x5E: "ethernet_ip_security",
        0x5F: "certificate_management",
        0x60: "authority",
        0x61: "password_authenticator",
        0x62: "certificate_authenticator",
        0x67: "pccc_class",
        0xF0: "controlnet",
        0xF1: "controlnet_keeper",
        0xF2: "controlnet_scheduling",
        0xF3: "connection_configuration",
        0xF4: "port",
        0xF5: "tcp_ip_interface",
        0xF6: "ethernet_link",
        0xF7: "componet",
        0xF8: "componet_repeater",
        0xF9: "hart_master_port",
        0xFA: "i_o_aggregation",
        0x100: "protection_trip",
        0x101: "protection_alarm",
        0x102: "circuit_breaker_supervisor",
        0x103: "circuit_breaker_statistics",
        0x104: "electrical_demand",
        0x105: "electrical_statistics",
        0x106: "machine_base_data",
        0x107: "hart_process_device",
        0x108: "process_device_diagnostics",
        0x109: "lldp_management",
        0x10A: "lldp_data_table",
        0x10B: "io_link_service_parameter",
        0x10C: "io_link_master_phy",
        0x10D: "io_link_device_phy",
        0x10E: "pilot_light_supervisor",
        0x10F: "select_line_link",
        0x110: "in_cabinet_actual_topology",
        0x111: "in_cabinet_commissioning",
    },
)

GENERAL_STATUS = Semantics(
    "cip",
    "general_status",
    {
        0x00: "success",
        0x01: "connection_failure",
        0x02: "resource_unavailable",
        0x03: "invalid_parameter_value",
        0x04: "path_segment_error",
        0x05: "path_destination_unknown",
        0x06: "partial_transfer",
        0x07: "connection_lost",
        0x08: "service_not_supported",
        0x09: "invalid_attribute_value",
        0x0A: "attribute_list_error",
        0x0B: "already_in_requested_mode_state",
        0x0C: "object_state_conflict",
        0x0D: "object_already_exists",
        0x0E: "attribute_not_settable",
        0x0F: "privilege_violation",
        0x10: "device_state_conflict",
        0x11: "reply_data_too_large",
        0x12: "fragmentation_of_a_primitive_value",
        0x13: "not_enough_data",
        0x14: "attribute_not_supported",
        0x15: "too_much_data",
        0x16: "object_does_not_exist",
        0x17: "service_fragmentation_sequence_not_in_progress",
        0x18: "no_stored_attribute_data",
        0x19: "store_operation_failure",
        0x1A: "routing_failure_request_packet_too_large",
        0x1B: "routing_failure_response_packet_too_large",
        0x1C: "missing_attribute_list_entry_data",
        0x1D: "invalid_attribute_value_list",
        0x1E: "embedded_service_error",
        0x1F: "vendor_specific_error",
        0x20: "invalid_parameter",
        0x21: "write_once_value_or_medium_already_written",
        0x22: "invalid_reply_received",
        0x23: "buffer_overflow",
        0x24: "invalid_message_format",
        0x25: "key_failure_in_path",
        0x26: "path_size_invalid",
        0x27: "unexpected_attribute_in_list",
        0x28: "invalid_member_id",
        0x29: "member_not_settable",
        0x2A: "group_2_only_server_general_failure",
        0x2B: "unknown_modbus_error",
        0x2C: "attribute_not_gettable",
    },
)

DEVICE_TYPES = Semantics(
    "enip",
    "device_type",
    {
        0: "generic_device_deprecated",
        2: "ac_drive",
        3: "motor_overload",
        4: "limit_switch",
        5: "inductive_proximity_switch",
        6: "photoelectric_sensor",
        7: "general_purpose_discrete_i_o",
        9: "resolver",
        12: "communications_adapter",
        14: "programmable_logic_controller",
        16: "position_controller",
        19: "dc_drive",
        21: "contactor",
        22: "motor_starter",
        23: "soft_start",
        24: "human_machine_interface",
        26: "mass_flow_controller",
        27: "pneumatic_valve",
        28: "vacuum_pressure_gauge",
        29: "process_control_value",
        30: "residual_gas_analyzer",
        31: "dc_power_generator",
        32: "rf_power_generator",
        33: "turbomolecular_vacuum_pump",
        34: "encoder",
        35: "safety_discrete_i_o_device",
        36: "fluid_flow_controller",
        37: "cip_motion_drive",
        38: "componet_repeater",
        39: "mass_flow_controller_enhanced",
        40: "cip_modbus_device",
        41: "cip_modbus_translator",
        42: "safety_analog_i_o_device",
        43: "generic_device_keyable",
        44: "managed_ethernet_switch",
        45: "cip_motion_safety_drive_device",
        46: "safety_drive_device",
        47: "cip_motion_encoder",
        48: "cip_motion_converter",
        49: "cip_motion_i_o",
        50: "controlnet_physical_layer_component",
        51: "circuit_breaker",
        52: "hart_device",
        53: "cip_hart_translator",
        200: "embedded_component",
    },
)

# ODVA vendor ids (subset of Wireshark's table: industrial vendors met in the field).
VENDORS: dict[int, str] = {
    1: "Rockwell Automation/Allen-Bradley",
    3: "Honeywell Inc.",
    4: "Parker Hannifin Corp. (Veriflo Division)",
    5: "Rockwell Automation/Reliance Elec.",
    8: "Molex Incorporated",
    12: "Banner Engineering Corp.",
    13: "Belden Wire & Cable Company",
    16: "Daniel Woodhead Co. (Woodhead Connectivity)",
    26: "Festo Corporation",
    37: "Yaskawa Electric America formerly Magnetek Drives",
    40: "Wago Corporation",
    43: "BALLUFF, Inc.",
    44: "Yaskawa Electric America, Inc.",
    46: "ABB Industrial Systems",
    47: "Omron Corporation",
    48: "TURCk, Inc.",
    50: "Real Time Automation (C&ID)",
    56: "Softing GmbH",
    57: "Pepperl + Fuchs",
    58: "Spectrum Controls, Inc.",
    68: "Eaton Electrical",
    71: "Toshiba International Corp.",
    74: "Hitachi, Ltd.",
    75: "ABB Robotics Products AB",
    77: "Rockwell Software, Inc.",
    82: "Mitsubishi Electric Automation, Inc.",
    90: "HMS Industrial Networks AB",
    94: "Advantech Co. Ltd.",
    97: "Danfoss",
    100: "Bosch Rexroth Corporation, Pneumatics",
    108: "Beckhoff Automation GmbH",
    121: "KUKA Roboter GmbH",
    127: "ABB Inc. (Entrelec)",
    143: "GE Industrial Systems",
    145: "Siemens Energy & Automation/Drives",
    160: "Mitsubishi Heavy Industries Ltd",
    161: "Mitsubishi Electric Corporation",
    176: "Red Lion Controls",
    181: "Pilz GmbH & Co",
    186: "Hitachi Metals Ltd.",
    243: "Schneider Automation, Inc.",
    245: "Nihon Weidmuller Co., Ltd",
    246: "Brooks Instrument (Div. of Emerson)",
    250: "Yokogawa Electric Corporation",
    252: "Omron Software Co., Ltd",
    255: "Bosch Rexroth",
    256: "Turck",
    283: "Hilscher GmbH",
    287: "Bosch Rexroth Corporation, Indramat",
    301: "Yokogawa M&C Corporation",
    309: "Prosoft Technology",
    315: "SEW Eurodrive GmbH",
    319: "Fuji Electric Co., Ltd.",
    322: "ifm efector, inc.",
    326: "GE Fanuc Automation North America, Inc.",
    335: "Toshiba IT & Control Systems Corporation",
    345: "Endress + Hauser",
    347: "ABB ALSTOM Power UK Ltd. (EGT)",
    356: "Fanuc Robotics America",
    361: "Wonderware Corporation",
    367: "Keyence Corporation",
    369: "Mitsubishi Electric Semiconductor Application",
    371: "Omron ASO Co., Ltd",
    376: "Toshiba Information Systems (Japan) Corporation",
    377: "TOSHIBA Schneider Inverter Corporation",
    401: "Hitachi Cable Ltd.",
    408: "ABB Welding Systems AB",
    433: "Fujikura Ltd.",
    441: "Nachi Fujikoshi Corporation",
    445: "Lenze Drive Systems GmbH",
    482: "Koyo Electronics",
    490: "Fuji Machine Mfg. Co., Ltd",
    521: "Fujikin , Inc.",
    531: "Hitachi Kokusai Electric Co., Ltd.",
    545: "Shimafuji Electric Co., Ltd",
    562: "Phoenix Contact",
    563: "Yokogawa MAT Corporation",
    574: "Shin Caterpillar Mitsubishi Ltd.",
    577: "Hitachi Electric Systems",
    579: "Woodhead Software & Electronics France",
    591: "FANUC Ltd.",
    593: "ABB Automation Products",
    620: "Parker Hannifin/Compumotor Division",
    625: "Rockwell Automation-Sprecher+Schuh",
    634: "Hirschmann, Inc.",
    638: "Woodhead Connectivity",
    640: "Murrelektronik GmbH",
    660: "Automationdirect.com",
    668: "Rockwell Automation/Entek IRD Intl.",
    680: "Weidmuller, Inc.",
    719: "Yokogawa Digital Computer Corporation",
    722: "ABB, Inc.",
    755: "Fuji Automation Co., Ltd.",
    757: "Hitachi Via Mechanics, Ltd.",
    760: "ABB Stotz Kontakt GmbH",
    796: "Siemens Energy & Automation, Inc.",
    808: "SICK AG",
    829: "Rockwell Samsung Automation",
    862: "Siemens AG, A&D PI Flow Instruments",
    887: "B&R Industrial Automation GmbH",
    903: "Emerson Process Management Power & Water Solutions",
    909: "Comtrol Corporation",
    924: "Parker Hannifin SpA (SBC Division)",
    939: "Cisco Systems",
    943: "ABB K.K. Technical Center",
    947: "Belden CDT Electronics Division",
    971: "Siemens L&A",
    991: "Moxa Networking Co., Ltd.",
    998: "Emerson Network Power Co., Ltd.",
    1006: "N-Tron",
    1015: "Weidmueller Interface GmbH & Co. KG",
    1037: "MITSUBISHI HEAVY INDUSTRIES, LTD. KOBE SHIPYARD & MACHINERY WORKS",
    1051: "Mitsubishi Heavy Ind. Digital System Co., Ltd. (M.H.I.)",
    1073: "Mitsubishi Electric Engineering Co., Ltd.",
    1083: "ABB Global Services Limited",
    1112: "Hitachi Industrial Equipment Systems Co., Ltd.",
    1141: "Emerson Process Management Valve Automation",
    1151: "COPA-DATA GmbH",
    1154: "U.I. Lapp GmbH",
    1163: "COPALP",
}

STATES = {
    0: "nonexistent",
    1: "device_operational",
    2: "standby",
    3: "operational",
    4: "major_recoverable_fault",
    5: "major_unrecoverable_fault",
    255: "default",
}

WRAPPERS = {
    1: "multiple_service_packet",
    2: "unconnected_send",
    3: "unconnected_send+multiple_service_packet",
}

# ---- kernels ---------------------------------------------------------------------------
# enip kernel output columns (int64, -1 = absent)
(
    X_CMD,
    X_LEN,
    X_SESSION,
    X_STATUS,
    X_CTX,
    X_OPTIONS,
    X_CONNID,
    X_CIPSEQ,
    X_CIP_OFF,
    X_CIP_LEN,
    X_IDENT_OFF,
    X_ITEMS,
    X_WEIRD,
    X_IOSEQ,
) = range(14)
NX = 14

# PDUs ahead whose header _encap asks the cache for (the CIP kernel reads the same lines
# right after _encap: no hint there)
PREFETCH_AHEAD = 16

# cip kernel output columns
(
    C_PDU,
    C_MOFF,
    C_MLEN,
    C_WIDX,
    C_POS,
    C_ISREQ,
    # what a response takes from its request: adjacent, so the pairing payload is a view
    C_CLASS,
    C_INST,
    C_ATTR,
    C_MEMBER,
    C_SYM,  # symbol number (set by the dissector, not the kernel)
    C_SERVICE,
    C_WRAP,
    C_PCMD,
    C_PFNC,
    # the rest
    C_PATH_OFF,
    C_PATH_WORDS,
    C_SYMLEN,
    C_GSTAT,
    C_EXT,
    C_WEIRD,
    C_NSEG,
) = range(22)
NC = 22
# Message rows ahead whose lines are asked for, to write: the 22 column streams each start a
# new line every 8 rows, and each such store would wait for its line (20% of the kernel).
WRITE_AHEAD = 64
# Connection Manager fields (Forward Open / Close) come in perhaps one message in a
# thousand: a record each, in their own small row-major matrix, instead of seven columns
# of the message matrix written -1 on every row and read back to build null columns.
(
    CM_ROW,  # the message's row in the message matrix
    CM_OTCID,
    CM_TOCID,
    CM_CSERIAL,
    CM_OVENDOR,
    CM_OSERIAL,
    CM_OTRPI,
    CM_TORPI,
) = range(8)
NCM = 8
C_PAYLOAD = slice(C_CLASS, C_PFNC + 1)

OK = 0
(
    W_SHORT_HEADER,
    W_BAD_CPF,
    W_NO_CIP_ITEM,
    W_CIP_TRUNCATED,
    W_PATH_TRUNCATED,
    W_BAD_MSP,
    W_BAD_UCMM,
    W_BAD_LIST_IDENTITY,
    W_LENGTH_MISMATCH,
    W_CM_TRUNCATED,
) = range(1, 11)
WEIRD = {
    W_SHORT_HEADER: "enip_header_truncated",
    W_BAD_CPF: "enip_bad_cpf_item",
    W_NO_CIP_ITEM: "enip_no_data_item",
    W_CIP_TRUNCATED: "cip_message_truncated",
    W_PATH_TRUNCATED: "cip_path_truncated",
    W_BAD_MSP: "cip_bad_multiple_service_packet",
    W_BAD_UCMM: "cip_bad_unconnected_send",
    W_BAD_LIST_IDENTITY: "enip_bad_list_identity",
    W_LENGTH_MISMATCH: "enip_length_mismatch",
    W_CM_TRUNCATED: "cip_connection_manager_truncated",
}

MAX_MSGS = 1024  # CIP messages decoded per encapsulation PDU (MSP in MSP, bounded)
POS_US = 1 << 20  # pairing position of an Unconnected Send wrapper (never answered as such)


@njit(cache=True, inline="always")
def _u16(b, p):
    return np.int64(b[p]) | (np.int64(b[p + 1]) << 8)


@njit(cache=True, inline="always")
def _u32(b, p):
    return (
        np.int64(b[p])
        | (np.int64(b[p + 1]) << 8)
        | (np.int64(b[p + 2]) << 16)
        | (np.int64(b[p + 3]) << 24)
    )


@njit(cache=True, nogil=True, _nrt=False)
def _encap(buf, arena, in_arena, off, length, out):
    """Encapsulation header and CPF items of each PDU."""
    n = off.shape[0]
    for j in range(n):
        ahead = j + PREFETCH_AHEAD
        if ahead < n:  # the first read of each PDU since framing: ask for it early
            if in_arena[ahead]:
                prefetch(arena, off[ahead])
            else:
                prefetch(buf, off[ahead])
        for c in range(NX):
            out[j, c] = -1
        out[j, X_WEIRD] = OK
        b = arena if in_arena[j] else buf
        p = off[j]
        ln = length[j]
        if ln < 24:
            out[j, X_WEIRD] = W_SHORT_HEADER
            if ln >= 2:
                out[j, X_CMD] = _u16(b, p)
            if ln >= 4:
                out[j, X_LEN] = _u16(b, p + 2)
            continue
        cmd = _u16(b, p)
        out[j, X_CMD] = cmd
        dlen = _u16(b, p + 2)
        out[j, X_LEN] = dlen
        out[j, X_SESSION] = _u32(b, p + 4)
        out[j, X_STATUS] = _u32(b, p + 8)
        out[j, X_CTX] = _u32(b, p + 12) | (_u32(b, p + 16) << 32)
        out[j, X_OPTIONS] = _u32(b, p + 20)
        end = p + ln
        if 24 + dlen != ln:
            out[j, X_WEIRD] = W_LENGTH_MISMATCH
            if 24 + dlen < ln:
                end = p + 24 + dlen
        q = p + 24
        if cmd == 0x6F or cmd == 0x70:
            q += 6  # interface handle, timeout
        elif cmd == 0x63 or cmd == 0x04 or cmd == 0x64:
            if end - q == 0:
                continue  # a request: no items
        else:
            continue
        if q + 2 > end:
            if cmd == 0x6F or cmd == 0x70:
                out[j, X_WEIRD] = W_BAD_CPF
            continue
        count = _u16(b, q)
        out[j, X_ITEMS] = count
        q += 2
        for _ in range(count):
            if q + 4 > end:
                out[j, X_WEIRD] = W_BAD_CPF
                break
            typ = _u16(b, q)
            il = _u16(b, q + 2)
            d = q + 4
            if d + il > end:
                out[j, X_WEIRD] = W_BAD_CPF
                break
            if typ == 0x00A1 and il >= 4:
                out[j, X_CONNID] = _u32(b, d)
            elif typ == 0x8002 and il >= 8:
                out[j, X_CONNID] = _u32(b, d)
                out[j, X_IOSEQ] = _u32(b, d + 4)
            elif typ == 0x00B2:
                out[j, X_CIP_OFF] = d
                out[j, X_CIP_LEN] = il
            elif typ == 0x00B1:
                if cmd == 0x70:
                    if il >= 2:
                        out[j, X_CIPSEQ] = _u16(b, d)
                        out[j, X_CIP_OFF] = d + 2
                        out[j, X_CIP_LEN] = il - 2
                else:
                    out[j, X_CIP_OFF] = d
                    out[j, X_CIP_LEN] = il
            elif typ == 0x000C and cmd == 0x63:
                out[j, X_IDENT_OFF] = d
            q = d + il
        if (cmd == 0x6F or cmd == 0x70) and out[j, X_WEIRD] == OK and out[j, X_CIP_OFF] < 0:
            out[j, X_WEIRD] = W_NO_CIP_ITEM


@njit(cache=True, inline="always")
def _path(b, p, end, row, out):
    """Walk an EPATH [p, end): class / instance / attribute / member, symbol bytes needed."""
    symlen = 0
    nseg = 0
    while p < end:
        seg = np.int64(b[p])
        kind = seg & 0xE0
        fmt = seg & 0x03
        if kind == 0x20 and ((seg >> 2) & 0x07) <= 4:  # logical segment
            ltype = (seg >> 2) & 0x07
            if fmt == 0:
                if p + 2 > end:
                    return -1
                v = np.int64(b[p + 1])
                p += 2
            elif fmt == 1:
                if p + 4 > end:
                    return -1
                v = _u16(b, p + 2)
                p += 4
            elif fmt == 2:
                if p + 6 > end:
                    return -1
                v = _u32(b, p + 2)
                p += 6
            else:
                return -1
            if ltype == 0:
                if out[row, C_CLASS] < 0:
                    out[row, C_CLASS] = v
            elif ltype == 1:
                if out[row, C_INST] < 0:
                    out[row, C_INST] = v
            elif ltype == 2:
                if out[row, C_MEMBER] < 0:
                    out[row, C_MEMBER] = v
                if symlen > 0:
                    # array index after a symbol: "[n]"
                    d = 1
                    t = v
                    while t >= 10:
                        t //= 10
                        d += 1
                    symlen += 2 + d
            elif ltype == 4:
                if out[row, C_ATTR] < 0:
                    out[row, C_ATTR] = v
            nseg += 1
        elif seg == 0x34:  # electronic key
            if p + 10 > end:
                return -1
            p += 10
        elif seg == 0x91:  # ANSI extended symbol
            if p + 2 > end:
                return -1
            sl = np.int64(b[p + 1])
            if p + 2 + sl > end:
                return -1
            if symlen > 0:
                symlen += 1
            symlen += sl
            p += 2 + sl + (sl & 1)
            nseg += 1
        elif kind == 0x00:  # port segment
            ext = seg & 0x10
            port_wide = (seg & 0x0F) == 0x0F
            if ext:
                if p + 2 > end:
                    return -1
                ll = np.int64(b[p + 1])
                size = 2 + ll + (2 if port_wide else 0)
                p += size + (size & 1)
            else:
                p += 2 + (2 if port_wide else 0)
        elif kind == 0x80:  # data segment
            if seg == 0x80:
                if p + 2 > end:
                    return -1
                p += 2 + 2 * np.int64(b[p + 1])
            else:
                if p + 2 > end:
                    return -1
                sl = np.int64(b[p + 1])
                p += 2 + sl + (sl & 1)
        elif kind == 0x40:  # network segment
            if seg == 0x50 or seg == 0x51:
                if p + 2 > end:
                    return -1
                p += 2 + 2 * np.int64(b[p + 1])
            else:
                p += 2
        else:
            return -1
    if p > end:
        return -1
    out[row, C_NSEG] = nseg
    return symlen


@njit(cache=True, inline="always")
def _one(b, pdu, p, end, wrap, widx, pos, row, out, cm, cmn, stack, sp):
    """Decode one CIP message at [p, end) into ``out[row]``; push embedded messages."""
    out[row, C_PDU] = pdu  # the columns from C_CLASS on arrive as -1 (see _cip)
    out[row, C_ISREQ] = -1
    out[row, C_MOFF] = p
    out[row, C_MLEN] = end - p
    out[row, C_WRAP] = wrap
    out[row, C_WIDX] = widx
    out[row, C_POS] = pos
    out[row, C_WEIRD] = OK
    out[row, C_SYMLEN] = 0
    if end - p < 2:
        out[row, C_WEIRD] = W_CIP_TRUNCATED
        if end - p == 1:
            out[row, C_SERVICE] = np.int64(b[p]) & 0x7F
            out[row, C_ISREQ] = 1 if (b[p] & 0x80) == 0 else 0
        return sp
    sc = np.int64(b[p])
    svc = sc & 0x7F
    out[row, C_SERVICE] = svc
    req = (sc & 0x80) == 0
    out[row, C_ISREQ] = 1 if req else 0
    if req:
        words = np.int64(b[p + 1])
        ps = p + 2
        pe = ps + 2 * words
        out[row, C_PATH_OFF] = ps
        out[row, C_PATH_WORDS] = words
        if pe > end:
            out[row, C_WEIRD] = W_PATH_TRUNCATED
            return sp
        sl = _path(b, ps, pe, row, out)
        if sl < 0:
            out[row, C_WEIRD] = W_PATH_TRUNCATED
            sl = 0
        out[row, C_SYMLEN] = sl
        d = pe
    else:
        if end - p < 4:
            out[row, C_WEIRD] = W_CIP_TRUNCATED
            return sp
        out[row, C_GSTAT] = b[p + 2]
        asz = np.int64(b[p + 3])
        if asz > 0 and p + 6 <= end:
            out[row, C_EXT] = _u16(b, p + 4)
        d = p + 4 + 2 * asz
        if d > end:
            out[row, C_WEIRD] = W_CIP_TRUNCATED
            return sp
    cls = out[row, C_CLASS]
    rem = end - d
    if svc == 0x0A and wrap != 1 and wrap != 3:
        # Multiple Service Packet: count, offsets from the count field
        if rem < 2:
            if req or out[row, C_GSTAT] == 0:
                out[row, C_WEIRD] = W_BAD_MSP
            return sp
        cnt = _u16(b, d)
        if 2 + 2 * cnt > rem:
            out[row, C_WEIRD] = W_BAD_MSP
            return sp
        nwrap = 3 if wrap == 2 else 1
        for k in range(cnt):
            o1 = _u16(b, d + 2 + 2 * k)
            o2 = _u16(b, d + 4 + 2 * k) if k + 1 < cnt else rem
            if o1 < 2 + 2 * cnt or o2 > rem or o1 > o2:
                out[row, C_WEIRD] = W_BAD_MSP
                return sp
            if sp < stack.shape[0]:
                stack[sp, 0] = d + o1
                stack[sp, 1] = d + o2
                stack[sp, 2] = nwrap
                stack[sp, 3] = k
                stack[sp, 4] = (pos << 12) + 1 + k
                sp += 1
        return sp
    if req and cls == 0x06 and (svc == 0x52) and wrap != 2 and wrap != 3:
        # Unconnected Send: priority/tick, timeout ticks, message size, message, route path
        if rem < 4:
            out[row, C_WEIRD] = W_BAD_UCMM
            return sp
        msz = _u16(b, d + 2)
        if d + 4 + msz > end:
            out[row, C_WEIRD] = W_BAD_UCMM
            return sp
        if sp < stack.shape[0]:
            stack[sp, 0] = d + 4
            stack[sp, 1] = d + 4 + msz
            stack[sp, 2] = 2 if wrap == 0 else 3
            stack[sp, 3] = -1
            stack[sp, 4] = pos  # the embedded message answers in the wrapper's place
            sp += 1
        out[row, C_POS] = POS_US + pos
        return sp
    if cls == 0x06 or (not req):
        if svc == 0x54 or svc == 0x5B:
            _forward_open(b, d, end, req, svc == 0x5B, out[row, C_GSTAT], row, out, cm, cmn)
        elif svc == 0x4E:
            _forward_close(b, d, end, req, row, out, cm, cmn)
    if svc == 0x4B and req and cls == 0x67:
        # Execute PCCC: requestor id (length includes itself), then cmd, sts, tns, [fnc]
        if rem >= 1:
            rl = np.int64(b[d])
            q = d + rl
            if rl >= 1 and q + 1 <= end:
                out[row, C_PCMD] = b[q]
                if q + 5 <= end:
                    c = np.int64(b[q])
                    if c == 0x06 or c == 0x07 or c == 0x0F:
                        out[row, C_PFNC] = b[q + 4]
    return sp


@njit(cache=True, inline="always")
def _cm_record(row, cm, cmn):
    """A new Connection Manager record for message ``row``, every field absent; its index.
    (``_cip`` checks for room before each message, and a message makes one at most.)"""
    k = cmn[0]
    cmn[0] = k + 1
    cm[k, CM_ROW] = row
    for c in range(CM_OTCID, NCM):
        cm[k, c] = -1
    return k


@njit(cache=True, inline="always")
def _cm_serial(b, p, k, cm):
    """Connection serial, originator vendor and originator serial at ``b[p]`` (the triple
    that names a connection in every Forward Open and Close, request and reply)."""
    cm[k, CM_CSERIAL] = _u16(b, p)
    cm[k, CM_OVENDOR] = _u16(b, p + 2)
    cm[k, CM_OSERIAL] = _u32(b, p + 4)


@njit(cache=True, inline="always")
def _cm_open(b, ids, serial, ot_rpi, to_rpi, k, cm):
    """A Forward Open's connection ids (O→T then T→O at ``b[ids]``), serial triple and
    RPIs, wherever the request or the reply puts them."""
    cm[k, CM_OTCID] = _u32(b, ids)
    cm[k, CM_TOCID] = _u32(b, ids + 4)
    _cm_serial(b, serial, k, cm)
    cm[k, CM_OTRPI] = _u32(b, ot_rpi)
    cm[k, CM_TORPI] = _u32(b, to_rpi)


@njit(cache=True, inline="always")
def _forward_open(b, d, end, req, large, gstat, row, out, cm, cmn):
    if req:
        need = 36 + (4 if large else 0)
        if end - d < need:
            out[row, C_WEIRD] = W_CM_TRUNCATED
            return
        k = _cm_record(row, cm, cmn)
        _cm_open(b, d + 2, d + 10, d + 22, d + 26 + (4 if large else 2), k, cm)
    elif gstat == 0:
        if end - d < 26:
            out[row, C_WEIRD] = W_CM_TRUNCATED
            return
        k = _cm_record(row, cm, cmn)
        _cm_open(b, d, d + 8, d + 16, d + 20, k, cm)
    else:
        if end - d >= 8:
            _cm_serial(b, d, _cm_record(row, cm, cmn), cm)


@njit(cache=True, inline="always")
def _forward_close(b, d, end, req, row, out, cm, cmn):
    q = d + 2 if req else d
    if end - q < 8:
        out[row, C_WEIRD] = W_CM_TRUNCATED
        return
    _cm_serial(b, q, _cm_record(row, cm, cmn), cm)


@njit(cache=True, nogil=True, _nrt=False)
def _cip(buf, arena, in_arena, X, counts, out, cm, cmn, stack):
    """CIP messages of each PDU, decoded into the rows of ``out`` in one pass, and their
    Connection Manager records into ``cm`` (``cmn[0]`` of them). Returns the rows used, or
    -1 when ``out`` or ``cm`` is too small (the caller grows them). ``stack`` (MAX_MSGS
    × 5) is the caller's: allocating nothing, the kernel runs without reference counting,
    which would otherwise cost an atomic count per array passed to each inlined helper."""
    n = counts.shape[0]  # X may hold a padding row (see _encap_matrix)
    cap = out.shape[0]
    cmn[0] = 0
    row = 0
    for j in range(n):
        counts[j] = 0
        p = X[j, X_CIP_OFF]
        if p < 0:
            continue
        b = arena if in_arena[j] else buf
        stack[0, 0] = p
        stack[0, 1] = p + X[j, X_CIP_LEN]
        stack[0, 2] = 0
        stack[0, 3] = -1
        stack[0, 4] = 0
        sp = 1  # queue tail; ``k`` is its head: wrapper first, then embedded messages
        k = 0
        while k < sp and k < MAX_MSGS:
            if row >= cap or cmn[0] >= cm.shape[0]:
                return -1
            if row % 8 == 0 and row + WRITE_AHEAD < cap:
                for c in range(NC):
                    prefetch_write(out, (row + WRITE_AHEAD, c))
            mp, me, wr, wi, ps = stack[k, 0], stack[k, 1], stack[k, 2], stack[k, 3], stack[k, 4]
            # absent unless decoded; _one sets the columns before C_CLASS, C_WRAP, C_SYMLEN
            # and C_WEIRD itself
            for c in range(C_CLASS, C_WRAP):
                out[row, c] = -1
            for c in range(C_PCMD, C_SYMLEN):
                out[row, c] = -1
            for c in range(C_GSTAT, C_WEIRD):
                out[row, c] = -1
            out[row, C_NSEG] = -1
            sp = _one(b, j, mp, me, wr, wi, ps, row, out, cm, cmn, stack, sp)
            k += 1
            row += 1
        counts[j] = k
    return row


def _encap_matrix(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The encapsulation matrix of ``n`` PDUs, column-major (the row builders read whole
    columns), and the view of it the kernels take, which has a padding row when ``n`` is
    1: numpy flags a one-row matrix row-major too, and numba would load (or compile) a
    second version of every kernel that takes it."""
    full = np.empty((NX, max(n, 2)), np.int64).T
    return full[:n], full


def _decode_cip(buf, arena, in_arena, X, counts, per_pdu: float) -> tuple[np.ndarray, np.ndarray]:
    """The CIP message matrix (rows × NC, column-major so whole columns are contiguous for
    the row builders), sized from the messages-per-PDU ratio seen so far, and the
    Connection Manager records (rows × NCM)."""
    n = counts.shape[0]
    cap = int(n * per_pdu) + 64
    cm_cap = cap // 16 + 64
    stack = np.empty((MAX_MSGS, 5), np.int64)
    cmn = np.zeros(1, np.int64)
    while True:
        out = np.empty((NC, cap), np.int64).T
        cm = np.empty((cm_cap, NCM), np.int64)
        used = _cip(buf, arena, in_arena, X, counts, out, cm, cmn, stack)
        if used >= 0:
            return out[:used], cm[: cmn[0]]
        if cmn[0] >= cm_cap:
            cm_cap *= 2
        else:
            cap *= 2


@njit(cache=True, nogil=True, _nrt=False)
def _symbols(buf, arena, in_arena, out, rows, offsets, data):
    """Dotted ANSI symbols (with [n] array indexes) of messages ``rows`` into ``data``."""
    for r in range(rows.shape[0]):
        i = rows[r]
        b = arena if in_arena[out[i, C_PDU]] else buf
        p = out[i, C_PATH_OFF]
        end = p + 2 * out[i, C_PATH_WORDS]
        w = offsets[r]
        lim = offsets[r + 1]
        while p < end and w <= lim:
            seg = np.int64(b[p])
            kind = seg & 0xE0
            fmt = seg & 0x03
            if seg == 0x91:
                sl = np.int64(b[p + 1])
                if w > offsets[r] and w < lim:
                    data[w] = 46  # "."
                    w += 1
                for k in range(sl):
                    if w < lim:
                        data[w] = b[p + 2 + k]
                        w += 1
                p += 2 + sl + (sl & 1)
            elif kind == 0x20 and ((seg >> 2) & 0x07) <= 4:
                ltype = (seg >> 2) & 0x07
                if fmt == 0:
                    v = np.int64(b[p + 1])
                    p += 2
                elif fmt == 1:
                    v = _u16(b, p + 2)
                    p += 4
                else:
                    v = _u32(b, p + 2)
                    p += 6
                if ltype == 2 and w > offsets[r]:
                    d = 1
                    t = v
                    while t >= 10:
                        t //= 10
                        d += 1
                    if w + 2 + d <= lim:
                        data[w] = 91  # "["
                        for k in range(d):
                            data[w + d - k] = 48 + v % 10
                            v //= 10
                        data[w + d + 1] = 93  # "]"
                        w += 2 + d
            elif seg == 0x34:
                p += 10
            elif kind == 0x00:
                ext = seg & 0x10
                port_wide = (seg & 0x0F) == 0x0F
                if ext:
                    ll = np.int64(b[p + 1])
                    size = 2 + ll + (2 if port_wide else 0)
                    p += size + (size & 1)
                else:
                    p += 2 + (2 if port_wide else 0)
            elif kind == 0x80:
                if seg == 0x80:
                    p += 2 + 2 * np.int64(b[p + 1])
                else:
                    sl = np.int64(b[p + 1])
                    p += 2 + sl + (sl & 1)
            elif kind == 0x40:
                if seg == 0x50 or seg == 0x51:
                    p += 2 + 2 * np.int64(b[p + 1])
                else:
                    p += 2
            else:
                break
        while w < lim:  # never leave garbage (cannot happen when the count pass agreed)
            data[w] = 63
            w += 1


@njit(cache=True, nogil=True, _nrt=False)
def _probe_udp(buf, pay_off, pay_len, kind, out):
    """Content probe of UDP payloads: 1 = encapsulation PDU, 2 = CPF implicit I/O."""
    n = pay_off.shape[0]
    for i in range(n):
        kind[i] = 0
        p = pay_off[i]
        ln = pay_len[i]
        if ln >= 24:
            cmd = _u16(buf, p)
            dl = _u16(buf, p + 2)
            if 24 + dl == ln and (cmd == 0x04 or cmd == 0x63 or cmd == 0x64 or cmd == 0x01):
                if _u32(buf, p + 20) == 0:
                    kind[i] = 1
                    continue
        # implicit I/O: item count, then items tiling the datagram exactly
        if ln < 2 + 4 + 8 + 4:
            continue
        cnt = _u16(buf, p)
        if cnt < 2 or cnt > 8:
            continue
        q = p + 2
        end = p + ln
        ok = True
        seq_addr = False
        data_item = False
        cid = np.int64(-1)
        seq = np.int64(-1)
        dlen = np.int64(-1)
        for _ in range(cnt):
            if q + 4 > end:
                ok = False
                break
            typ = _u16(buf, q)
            il = _u16(buf, q + 2)
            if q + 4 + il > end:
                ok = False
                break
            if typ == 0x8002 and il == 8:
                seq_addr = True
                cid = _u32(buf, q + 4)
                seq = _u32(buf, q + 8)
            elif typ == 0x00A1 and il == 4:
                seq_addr = True
                cid = _u32(buf, q + 4)
            elif typ == 0x00B1:
                data_item = True
                dlen = il
            elif typ != 0x8000 and typ != 0x8001:
                ok = False
                break
            q += 4 + il
        if ok and q == end and seq_addr and data_item:
            kind[i] = 2
            out[i, 0] = cid
            out[i, 1] = seq
            out[i, 2] = dlen


# ---- schemas -----------------------------------------------------------------------------
_LI = pa.list_(pa.string())

ENIP = E._schema(
    "enip",
    E.PDU_COMMON
    + [
        pa.field("is_request", pa.bool_()),
        pa.field("command", pa.int32()),
        pa.field("command_name", E._STR),
        pa.field("category", E._STR),
        pa.field("length", pa.int32()),
        pa.field("session_handle", pa.int64()),
        pa.field("status", pa.int64()),
        pa.field("status_name", E._STR),
        pa.field("sender_context", pa.binary(8)),
        pa.field("options", pa.int64()),
        pa.field("item_count", pa.int32()),
        pa.field("connection_id", pa.int64()),  # SendUnitData connected address item
        pa.field("cip_sequence", pa.int32()),  # SendUnitData CIP sequence count
        pa.field("cip_messages", pa.int32()),  # cip rows this PDU produced
        # ListIdentity answers (CPF item 0x000C)
        pa.field("vendor_id", pa.int32()),
        pa.field("vendor_name", E._STR),
        pa.field("device_type", pa.int32()),
        pa.field("device_type_name", E._STR),
        pa.field("product_code", pa.int32()),
        pa.field("revision", pa.string()),  # "major.minor"
        pa.field("serial_number", pa.string()),  # 8 hex digits
        pa.field("product_name", pa.string()),
        pa.field("device_status", pa.int32()),
        pa.field("state", pa.int16()),
        pa.field("state_name", E._STR),
        pa.field("socket_address", pa.string()),  # "ip:port" the device announces
    ]
    + E._REQUEST_MATCH,
    "EtherNet/IP encapsulation PDUs (TCP 44818 framed, UDP probed by content).",
)

CIP = E._schema(
    "cip",
    E.PDU_COMMON
    + [
        pa.field("enip_command", pa.int32()),  # 0x6F unconnected / 0x70 connected
        pa.field("connection_id", pa.int64()),
        pa.field("cip_sequence", pa.int32()),
        pa.field("wrapper", E._STR),  # what carried an embedded message (null: top level)
        pa.field("wrapper_index", pa.int32()),  # position in a Multiple Service Packet
        pa.field("is_request", pa.bool_()),  # response bit 0x80 of the service byte clear
        pa.field("service", pa.int16()),  # 7-bit service code
        pa.field("service_name", E._STR),  # class-scoped
        pa.field("category", E._STR),
        pa.field("techniques", pa.list_(E._STR)),
        pa.field("class_id", pa.int32()),  # responses carry their request's path
        pa.field("class_name", E._STR),
        pa.field("instance_id", pa.int64()),
        pa.field("attribute_id", pa.int32()),
        pa.field("member_id", pa.int64()),
        pa.field("symbol", pa.string()),  # ANSI extended symbol segments, dotted, [n] indexes
        pa.field("general_status", pa.int16()),
        pa.field("general_status_name", E._STR),
        pa.field("extended_status", pa.int32()),  # first additional status word
        # Forward Open / Large Forward Open / Forward Close (Connection Manager)
        pa.field("ot_connection_id", pa.int64()),
        pa.field("to_connection_id", pa.int64()),
        pa.field("connection_serial", pa.int32()),
        pa.field("originator_vendor", pa.int32()),
        pa.field("originator_serial", pa.int64()),
        pa.field("ot_rpi", pa.int64()),  # requests: RPI (us); responses: granted API
        pa.field("to_rpi", pa.int64()),
        # Execute PCCC (0x4B on class 0x67)
        pa.field("pccc_command", pa.int16()),
        pa.field("pccc_function", pa.int16()),
        pa.field("pccc_name", E._STR),
    ]
    + E._REQUEST_MATCH,
    "CIP messages (explicit messaging), embedded ones unwrapped; one row per message.",
)

ENIP_IO = E._schema(
    "enip_io",
    E.PDU_COMMON
    + [
        pa.field("connection_id", pa.int64()),
        pa.field("sequence", pa.int64()),  # encapsulation sequence number (item 0x8002)
        pa.field("data_length", pa.int32()),  # connected data item (0x00B1) length
    ],
    "EtherNet/IP implicit (class 0/1) I/O datagrams, probed by content on UDP.",
)
SCHEMA = {"enip": ENIP, "cip": CIP, "enip_io": ENIP_IO}


# ---- naming, vectorised ------------------------------------------------------------------
class _Meanings:
    """Every meaning of every CIP service table, numbered, with per-scope lookup arrays."""

    GENERIC, CM, LOGIX, FILE, PCCC_OBJ = range(5)

    def __init__(self) -> None:
        self.items: list[Meaning] = []
        self.luts = np.full((5, 128), -1, np.int64)
        for scope, table in (
            (self.GENERIC, SERVICES),
            (self.CM, CM_SERVICES),
            (self.LOGIX, LOGIX_SERVICES),
            (self.FILE, FILE_SERVICES),
            (self.PCCC_OBJ, PCCC_SERVICES),
        ):
            for code, m in table.rows.items():
                self.luts[scope, cast(int, code)] = self._add(m)
        self.pccc = {cast(int, k): self._add(m) for k, m in PCCC.rows.items()}
        # keyed (class, service)
        self.by_class: dict[tuple[int, int], int] = {
            cast(tuple[int, int], k): self._add(m) for k, m in CLASS_SERVICES.rows.items()
        }

    def _add(self, m: Meaning) -> int:
        self.items.append(m)
        return len(self.items) - 1


_M = _Meanings()


def _dict_array(idx: np.ndarray, names: list[str], mask: np.ndarray | None = None):
    return pa.DictionaryArray.from_arrays(
        pa.array(idx.astype(np.int32), mask=mask), pa.array(names, type=pa.string())
    )


@njit(cache=True, nogil=True, _nrt=False)
def _cip_meanings(
    svc, cls, logix, pkey, pfnc, luts, class_row, by_class, pc_key, pc_mid,
    name_lut, pccc_name, unknown_lut, idx, name_idx, pname,
):  # fmt: skip
    """Per CIP row, in one pass: the meaning index ``idx`` (-1: unknown), class-scoped; the
    service-name index ``name_idx`` (-1: an unknown code not named
    yet; the PCCC service keeps its own name, an unknown one is named by scope and code);
    ``pname``, the PCCC command (+ function) to name, or -1."""
    for i in range(svc.shape[0]):
        s = svc[i] & 0x7F
        c = cls[i]
        if s < 0x4B:
            sc = 0  # _Meanings.GENERIC
        elif c == 0x06:
            sc = 1  # CM
        elif c == 0x67:
            sc = 4  # PCCC_OBJ
        elif c == 0x37:
            sc = 3  # FILE
        elif logix[i]:
            sc = 2  # LOGIX
        else:
            sc = -1
        m = luts[sc, s] if sc >= 0 else -1
        if 0 <= c < class_row.shape[0] and class_row[c] >= 0:  # a class's own services
            mc = by_class[class_row[c], s]
            if mc >= 0:
                m = mc
        pk = pkey[i]
        if pk >= 0:  # PCCC command (+ function): rare
            for k in range(pc_key.shape[0]):
                if pk == pc_key[k]:
                    m = pc_mid[k]
        idx[i] = m
        pccc = pk >= 0 and c == 0x67
        pname[i] = pk if pccc and pfnc[i] >= 0 else -1
        if pccc:
            name_idx[i] = pccc_name
        elif m >= 0:
            name_idx[i] = name_lut[m]
        else:
            name_idx[i] = unknown_lut[(0 if sc == 0 else 128) + s]


@njit(cache=True, nogil=True, _nrt=False)
def _apply_requests(C, src, carried, carried_pl, matched, is_req, pkey, logix, pl, wrapper,
                    wbits, wvalid):  # fmt: skip
    """Give responses their request's path (class, instance, attribute, member, symbol,
    PCCC command) and wrapper; blank the fields that mean nothing on the row's class; the
    PCCC key and the Logix scope of each row; its wrapper's name index ``wrapper`` (into
    ``_WRAPPER_NAMES``), with Arrow validity ``wbits`` and valid count ``wvalid[0]``.

    A matched row's request is ``src``: one of the ``carried`` requests of earlier chunks
    (``carried_pl``), else a row of ``C``, read in place (its ``C_PAYLOAD`` columns: class,
    instance, attribute, member, symbol, service, wrapper, PCCC command, PCCC function).
    Reading in place is safe because this loop never changes a request's payload: only
    responses take values, and requests have PCCC fields only on the PCCC object.
    ``pl`` is scratch for one request's payload."""
    for b in range(wbits.shape[0]):
        wbits[b] = 0
    wvalid[0] = 0
    for i in range(C.shape[0]):
        svc = C[i, C_SERVICE]
        us_fail = False
        if matched[i]:
            r = src[i]
            for k in range(pl.shape[0]):
                pl[k] = carried_pl[r, k] if r < carried else C[r - carried, C_CLASS + k]
            # an Unconnected Send that failed is answered by the Connection Manager itself
            us_fail = svc == 0x52 and pl[5] != 0x52 and (pl[6] & 2) != 0
            if pl[5] != svc and not us_fail:
                matched[i] = False
        if matched[i] and not is_req[i]:
            C[i, C_CLASS] = pl[0]
            C[i, C_INST] = pl[1]
            C[i, C_ATTR] = pl[2]
            C[i, C_MEMBER] = pl[3]
            C[i, C_SYM] = pl[4]
            C[i, C_PCMD] = pl[7]
            C[i, C_PFNC] = pl[8]
            # A response carries its request's wrapper: a top-level reply to an
            # Unconnected Send gets "unconnected_send"; replies inside a Multiple Service
            # Packet response that answered through an Unconnected Send (either nesting)
            # get the combined wrapper their requests have. (Responses are only unwrapped
            # from a Multiple Service Packet, so their own wrapper is 0 or 1 and a paired
            # request's is the same or wider.)
            if pl[6] > C[i, C_WRAP]:
                C[i, C_WRAP] = pl[6]
        if us_fail:
            C[i, C_CLASS] = 6
            C[i, C_INST] = 1
            C[i, C_ATTR] = -1
            C[i, C_MEMBER] = -1
            C[i, C_SYM] = -1
            C[i, C_WRAP] = 1 if pl[6] == 3 else -1
        cls = C[i, C_CLASS]
        pc, pf = C[i, C_PCMD], C[i, C_PFNC]
        if cls != 0x67 and (pc >= 0 or pf >= 0):
            C[i, C_PCMD] = -1
            C[i, C_PFNC] = -1
            pc = pf = -1
        if pc >= 0 and pf >= 0:
            pkey[i] = (pc << 8) | pf
        elif pc >= 0:
            pkey[i] = (pc << 8) | 0xFF00000
        else:
            pkey[i] = -1
        logix[i] = (
            C[i, C_SYM] >= 0
            or cls == 0x6B
            or cls == 0x6C
            or (cls >= 0x64 and cls <= 0xC7 and cls != 0x67)
            or (cls < 0 and C[i, C_NSEG] <= 0 and not is_req[i] and not matched[i])
        )
        w = C[i, C_WRAP]  # 1, 2, 3: wrapped; else sent on its own (null)
        wrapper[i] = w - 1 if w >= 1 else 0
        if w >= 1:
            wbits[i >> 3] |= np.uint8(1 << (i & 7))
            wvalid[0] += 1


class _MeaningColumns:
    """service_name, category and techniques of CIP rows, from their service, class and PCCC key.

    The names form one dictionary shared by every batch; an unknown service gets its
    ``unknown_N`` / ``class_specific_N`` name the first time it is seen."""

    def __init__(self) -> None:
        items = _M.items
        self.names = sorted({m.name for m in items})
        at = {n: i for i, n in enumerate(self.names)}
        self.name_lut = np.array([at[m.name] for m in items], np.int32)
        self.pccc_name = int(self.name_lut[_M.luts[_M.PCCC_OBJ, 0x4B]])
        self.unknown_lut = np.full(256, -1, np.int32)  # [generic | class-specific] × service
        self.name_values: pa.Array | None = None
        self.category_techniques = MeaningColumns(items)
        # (class, service) → meaning as a table per class: a row's look-up is two reads
        classes = sorted({c for c, _ in _M.by_class})
        self.class_row = np.full(max(classes) + 1, -1, np.int64)
        self.class_row[classes] = np.arange(len(classes))
        self.by_class = np.full((len(classes), 128), -1, np.int64)
        for (c, s), mid in _M.by_class.items():
            self.by_class[self.class_row[c], s] = mid
        self.pc = [np.array(list(_M.pccc), np.int64), np.array(list(_M.pccc.values()), np.int64)]

    def columns(self, svc, cls, logix, pkey, pfnc):
        """service_name, category, techniques, and the PCCC command (+ function) code of
        each row to name (-1: none)."""
        n = svc.shape[0]
        idx, pname = np.empty(n, np.int64), np.empty(n, np.int64)
        name_idx = np.empty(n, np.int32)
        _cip_meanings(
            svc, cls, logix, pkey, pfnc, _M.luts, self.class_row, self.by_class, *self.pc,
            self.name_lut, self.pccc_name, self.unknown_lut, idx, name_idx, pname,
        )  # fmt: skip
        if (name_idx < 0).any():  # services never seen before: named here, once
            for i in np.flatnonzero(name_idx < 0).tolist():
                code = int(svc[i]) & 0x7F
                generic = code < 0x4B  # the generic table's scope (see _cip_meanings)
                slot = (0 if generic else 128) + code
                if self.unknown_lut[slot] < 0:
                    label = f"unknown_{code}" if generic else f"class_specific_{code}"
                    self.unknown_lut[slot] = len(self.names)
                    self.names.append(label)
                    self.name_values = None
                name_idx[i] = self.unknown_lut[slot]
        if self.name_values is None:
            self.name_values = pa.array(self.names, pa.string())
        service_name = pa.DictionaryArray.from_arrays(
            pa.array(name_idx), self.name_values, safe=False
        )
        category, techniques = self.category_techniques(idx)
        return service_name, category, techniques, pname


_COLUMNS = _MeaningColumns()


# CIP table columns built straight from the matrices: (column, matrix column) by type
_C_INT64 = [("instance_id", C_INST), ("member_id", C_MEMBER)]
_C_INT32 = [
    ("wrapper_index", C_WIDX),
    ("class_id", C_CLASS),
    ("attribute_id", C_ATTR),
    ("extended_status", C_EXT),
]
# ... and from the Connection Manager records
_CM_INT64 = [
    ("ot_connection_id", CM_OTCID),
    ("to_connection_id", CM_TOCID),
    ("originator_serial", CM_OSERIAL),
    ("ot_rpi", CM_OTRPI),
    ("to_rpi", CM_TORPI),
]
_CM_INT32 = [("connection_serial", CM_CSERIAL), ("originator_vendor", CM_OVENDOR)]
_C_INT16 = [("general_status", C_GSTAT), ("pccc_command", C_PCMD), ("pccc_function", C_PFNC)]
_WRAPPER_NAMES = pa.array([WRAPPERS[1], WRAPPERS[2], WRAPPERS[3]], pa.string())


@njit(cache=True, nogil=True, _nrt=False)
def _directions(X, C, starts, sport, dport, orig, is_req, key2):
    """Per encapsulation PDU: whether it is a request, and its pairing key.

    Direction: the CIP response bit of its first message where it has one; else, for the
    listing commands, whether it is empty (a ListIdentity request has no data); else the
    side of port 44818; else the flow's originator. Key: unconnected data pairs by
    (flow, context, command), connected data by (flow, sequence)."""
    for k in range(sport.shape[0]):
        cmd = X[k, X_CMD]
        sp = sport[k]
        dp = dport[k]
        if dp == 44818 and sp != 44818:
            req = True
        elif sp == 44818 and dp != 44818:
            req = False
        else:
            req = orig[k]
        if cmd == 0x63 or cmd == 0x04 or cmd == 0x64 or cmd == 0x01:
            req = X[k, X_LEN] == 0
        if starts[k + 1] > starts[k]:
            req = C[starts[k], C_ISREQ] == 1
        is_req[k] = req
        key2[k] = (X[k, X_CIPSEQ] << 20) | 0x70 if cmd == 0x70 else X[k, X_CTX] * 31 + cmd


@njit(cache=True, nogil=True, _nrt=False)
def _pair_inputs(X, C, pdu_flow, pdu_frame, pdu_ts, cmd, flow, key2, frame, ts, conn, seq,
                 bits, valid):  # fmt: skip
    """Per CIP message: its PDU's encapsulation command, flow, frame and time, and the
    pairing key: (sequence, position) on connected data, else (sender context, position);
    and its PDU's connection id ``conn`` and CIP sequence ``seq``, with their Arrow
    validity (``bits`` rows 0 and 1) and valid counts (``valid``)."""
    for b in range(bits.shape[1]):
        bits[0, b] = 0
        bits[1, b] = 0
    valid[0] = 0
    valid[1] = 0
    for i in range(C.shape[0]):
        r = C[i, C_PDU]
        c = X[r, X_CMD]
        cmd[i] = c
        flow[i] = pdu_flow[r]
        frame[i] = pdu_frame[r]
        ts[i] = pdu_ts[r]
        pos = C[i, C_POS]
        if c == 0x70:
            key2[i] = (X[r, X_CIPSEQ] << 32) | (pos & 0xFFFFFFF) | (np.int64(1) << 62)
        else:
            key2[i] = X[r, X_CTX] * 1000003 + pos
        cid = X[r, X_CONNID]
        conn[i] = cid
        if cid >= 0:
            bits[0, i >> 3] |= np.uint8(1 << (i & 7))
            valid[0] += 1
        sq = X[r, X_CIPSEQ]
        seq[i] = sq
        if sq >= 0:
            bits[1, i >> 3] |= np.uint8(1 << (i & 7))
            valid[1] += 1


def _cm_columns(C: np.ndarray, CM: np.ndarray) -> dict[str, pa.Array]:
    """The Connection Manager columns of the CIP rows ``C``, from the records ``CM``: null
    where a row has no record, or where pairing gave a response another class (the
    fields mean something only on the Connection Manager; requests have its class)."""
    m = C.shape[0]
    cm = CM[C[CM[:, CM_ROW], C_CLASS] == 0x06]
    columns = {}
    for names, dtype in ((_CM_INT64, np.int64), (_CM_INT32, np.int32)):
        for name, c in names:
            present = cm[:, c] >= 0
            columns[name] = sparse_column(m, cm[present, CM_ROW], cm[present, c], dtype)
    return columns


def _wrappers(index: np.ndarray, bits: np.ndarray, valid: int) -> pa.Array:
    """The wrapper name of each CIP row (null for a message sent on its own), from the
    indices ``_apply_requests`` wrote."""
    indices = from_validity(index, np.int32, index.shape[0], valid, bits)
    return pa.DictionaryArray.from_arrays(indices, _WRAPPER_NAMES, safe=False)


def _strings(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> pa.Array:
    n = offsets.shape[0] - 1
    mask = pa.array(valid).buffers()[1] if not valid.all() else None
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data), mask
    )


def _list_identity(data: bytes, q: int) -> dict[str, Any] | None:
    """ListIdentity item 0x000C at ``data[q:]`` (item body), or None when malformed."""
    body = data[q:]
    if len(body) < 33:
        return None
    family, port = int.from_bytes(body[2:4], "big"), int.from_bytes(body[4:6], "big")
    addr = ".".join(str(x) for x in body[6:10])
    vendor = int.from_bytes(body[18:20], "little")
    dtype = int.from_bytes(body[20:22], "little")
    prod = int.from_bytes(body[22:24], "little")
    major, minor = body[24], body[25]
    status = int.from_bytes(body[26:28], "little")
    serial = int.from_bytes(body[28:32], "little")
    nlen = body[32]
    name = body[33 : 33 + nlen]
    if len(name) < nlen:
        return None
    state = body[33 + nlen] if len(body) > 33 + nlen else None
    return {
        "vendor_id": vendor,
        "device_type": dtype,
        "product_code": prod,
        "revision": f"{major}.{minor}",
        "serial_number": f"{serial:08x}",
        "product_name": name.decode("latin-1"),
        "device_status": status,
        "state": state,
        "socket_address": f"{addr}:{port}" if family == 2 else None,
    }


class EnipDissector(Dissector):
    name = "enip"
    tables = SCHEMA
    framers = (framing.ENIP,)
    wants_udp = True
    semantics = (
        COMMANDS,
        ENCAP_STATUS,
        SERVICES,
        CM_SERVICES,
        LOGIX_SERVICES,
        FILE_SERVICES,
        PCCC_SERVICES,
        PCCC,
        CLASS_SERVICES,
        CLASSES,
        GENERAL_STATUS,
        DEVICE_TYPES,
    )

    def __init__(self) -> None:
        self.enip_matcher = RequestMatcher(width=1)
        self.cip_matcher = RequestMatcher(width=C_PFNC + 1 - C_CLASS)
        self._cip_per_pdu = 2.0  # CIP messages per encapsulation PDU: sizes the matrix
        self._symbols: list[str] = []
        self._symbol_ids: dict[str, int] = {}
        self._symbol_values: pa.Array | None = None  # self._symbols as Arrow, once per growth

    # -- entry point -----------------------------------------------------------------------
    def process(self, ctx: ChunkContext) -> dict[str, list[pa.RecordBatch]]:
        out: dict[str, list[pa.RecordBatch]] = {"enip": [], "cip": [], "enip_io": []}
        idx = ctx.pdus(framing.ENIP)
        if idx.shape[0]:
            in_arena, off, length = ctx.pdu_locations(idx)
            env = ctx.pdu_envelope(idx)
            f = ctx.pdu_fields(idx)
            meta = {k: f[k] for k in ("flow", "frame", "ts", "orig")}
            meta["sport"], meta["dport"] = f["sport"], f["dport"]
            self._decode(
                ctx,
                env,
                in_arena,
                off,
                length,
                meta,
                True,
                out,
                lambda k: ctx.pdu_bytes(int(idx[k])),
            )
        pk = ctx.udp(min_payload=18) if ctx.cols.shape[0] else np.zeros(0, np.int64)
        if pk.shape[0]:
            c = ctx.cols
            kind = np.zeros(pk.shape[0], np.int64)
            io = np.full((pk.shape[0], 3), -1, np.int64)
            _probe_udp(ctx.chunk.buf, c[pk, L.PAY_OFF], c[pk, L.PAY_LEN], kind, io)
            enc = np.flatnonzero(kind == 1)
            if enc.shape[0]:
                p = pk[enc]
                env = ctx.packet_envelope(p)
                flow = ctx.track.pkt_flow[p]
                meta = {
                    "flow": flow,
                    "frame": ctx.chunk.first_frame + p,
                    "ts": ctx.chunk.ts[p],
                    "sport": c[p, L.SPORT],
                    "dport": c[p, L.DPORT],
                    "orig": ctx.track.pkt_orig[p] != 0,
                }
                buf = ctx.chunk.buf
                offs, lens = c[p, L.PAY_OFF], c[p, L.PAY_LEN]
                self._decode(
                    ctx,
                    env,
                    np.zeros(p.shape[0], np.int64),
                    offs,
                    lens,
                    meta,
                    False,
                    out,
                    lambda k: bytes(buf[offs[k] : offs[k] + lens[k]]),
                )
            iok = np.flatnonzero(kind == 2)
            if iok.shape[0]:
                env = ctx.packet_envelope(pk[iok])
                batch = dict(env)
                batch["connection_id"] = null_negative(io[iok, 0], np.int64)
                batch["sequence"] = null_negative(io[iok, 1], np.int64)
                batch["data_length"] = null_negative(io[iok, 2], np.int32)
                out["enip_io"].append(pa.RecordBatch.from_pydict(batch, schema=ENIP_IO))
        # TCP and UDP rows stay separate batches: merging them would copy every column
        return {table: batches for table, batches in out.items() if batches}

    # -- one set of encapsulation PDUs -----------------------------------------------------
    def _decode(self, ctx, env, in_arena, off, length, meta, tcp, out, pdu_bytes) -> None:
        n = off.shape[0]
        buf, arena = ctx.chunk.buf, ctx.track.arena
        X, Xk = _encap_matrix(n)  # Xk: the kernels' view
        _encap(buf, arena, in_arena, off, length, Xk)
        counts = np.zeros(n, np.int64)
        C, CM = _decode_cip(buf, arena, in_arena, Xk, counts, self._cip_per_pdu)
        if n:
            # a hostile chunk (MSPs of a thousand messages) must not inflate later chunks
            self._cip_per_pdu = min(max(self._cip_per_pdu, 1.25 * C.shape[0] / n), 8.0)
        starts = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=starts[1:])

        cmd = X[:, X_CMD]
        is_req = np.empty(n, np.bool_)
        key2 = np.empty(n, np.int64)
        _directions(Xk, C, starts, meta["sport"], meta["dport"], meta["orig"], is_req, key2)
        self._enip_rows(ctx, env, X, off, counts, is_req, key2, meta, tcp, out, pdu_bytes)
        if C.shape[0]:
            self._cip_rows(ctx, env, Xk, C, CM, in_arena, meta, tcp, out)
        bad = np.flatnonzero(X[:, X_WEIRD] != OK)
        if bad.shape[0]:
            ctx.weird(
                take_envelope(env, bad),
                distinct_strings(X[bad, X_WEIRD], lambda code: WEIRD[code]),
                distinct_strings(
                    ((cmd[bad] & 0xFFFF) << 32) | length[bad],
                    lambda k: f"command 0x{k >> 32:04x}, {k & 0xFFFFFFFF} bytes",
                ),
                "enip",
            )

    def _enip_rows(self, ctx, env, X, off, counts, is_req, key2, meta, tcp, out, pdu_bytes):
        n = X.shape[0]
        cmd = X[:, X_CMD]
        ctxv = X[:, X_CTX]
        batch = dict(env)
        if tcp:
            paired = self.enip_matcher.pair(
                meta["flow"], key2, is_req, meta["frame"], meta["ts"], cmd.reshape(n, 1)
            )
            pairing = paired_columns(paired, meta["ts"])
        else:
            nowhere = np.zeros(n, np.int64)
            pairing = pairing_columns(np.zeros(n, bool), nowhere, nowhere, nowhere)
        # ListIdentity answers are a few per device: decoded in Python, scattered into
        # otherwise null columns
        found: list[tuple[int, dict[str, Any]]] = []
        for k in np.flatnonzero(X[:, X_IDENT_OFF] >= 0).tolist():
            rel = int(X[k, X_IDENT_OFF]) - int(off[k])
            info = _list_identity(pdu_bytes(k), rel) if rel >= 0 else None
            if info is None:
                ctx.weird(
                    take_envelope(env, np.array([k])), [WEIRD[W_BAD_LIST_IDENTITY]], [None], "enip"
                )
                continue
            found.append((k, info))
        batch.update(_identity_columns(n, found))
        batch.update(
            {
                "is_request": pa.array(is_req),
                "command": pa.array(cmd.astype(np.int32)),
                "command_name": COMMANDS.names(np.maximum(cmd, 0)),
                "category": _command_categories(cmd),
                "length": null_negative(X[:, X_LEN], np.int32),
                "session_handle": null_negative(X[:, X_SESSION], np.int64),
                "status": null_negative(X[:, X_STATUS], np.int64),
                "status_name": ENCAP_STATUS.optional_names(X[:, X_STATUS]),
                "sender_context": _context(ctxv, X[:, X_SESSION] < 0),
                "options": null_negative(X[:, X_OPTIONS], np.int64),
                "item_count": null_negative(X[:, X_ITEMS], np.int32),
                "connection_id": null_negative(X[:, X_CONNID], np.int64),
                "cip_sequence": null_negative(X[:, X_CIPSEQ], np.int32),
                "cip_messages": pa.array(counts.astype(np.int32)),
                **pairing,
            }
        )
        out["enip"].append(pa.RecordBatch.from_pydict(batch, schema=ENIP))

    def _cip_rows(self, ctx, env, X, C, CM, in_arena, meta, tcp, out) -> None:
        # X: the kernels' view of the encapsulation matrix (see _encap_matrix)
        m = C.shape[0]
        j = C[:, C_PDU]
        is_req = C[:, C_ISREQ] == 1
        svc = C[:, C_SERVICE]
        # each message's encapsulation command and pairing inputs, in one pass
        enc_cmd = np.empty(m, np.int32)
        flow, key2, frame, ts, conn = (np.empty(m, np.int64) for _ in range(5))
        seq = np.empty(m, np.int32)
        bits = np.empty((2, (m + 7) >> 3), np.uint8)
        valid = np.empty(2, np.int64)
        _pair_inputs(
            X, C, meta["flow"], meta["frame"], meta["ts"], enc_cmd, flow, key2, frame, ts, conn,
            seq, bits, valid,
        )  # fmt: skip
        # symbols: counted by the kernel, copied into one Arrow string buffer
        symlen = np.maximum(C[:, C_SYMLEN], 0)
        has_sym = symlen > 0
        srows = np.flatnonzero(has_sym)
        soff = np.zeros(srows.shape[0] + 1, np.int64)
        np.cumsum(symlen[srows], out=soff[1:])
        sdata = np.empty(int(soff[-1]), np.uint8)
        _symbols(ctx.chunk.buf, ctx.track.arena, in_arena, C, srows, soff, sdata)
        sym_ids = C[:, C_SYM]
        if srows.shape[0]:
            sarr = _strings(soff, sdata, np.ones(srows.shape[0], bool)).dictionary_encode()
            local = [self._symbol_id(s) for s in sarr.dictionary.to_pylist()]
            sym_ids[srows] = np.array(local, np.int64)[sarr.indices.to_numpy()]
        pkey = np.empty(m, np.int64)
        logix = np.empty(m, np.bool_)
        wrapper = np.empty(m, np.int32)
        wbits = np.empty((m + 7) >> 3, np.uint8)
        wvalid = np.empty(1, np.int64)
        if tcp:
            paired = self.cip_matcher.pair(
                flow,
                key2,
                is_req,
                frame,
                ts,
                C[:, C_PAYLOAD],  # a view: adjacent columns
            )
            matched = paired.matched
            _apply_requests(
                C,
                paired.src,
                paired.carried,
                paired.carried_payload,
                matched,
                is_req,
                pkey,
                logix,
                np.empty(C_PFNC + 1 - C_CLASS, np.int64),
                wrapper,
                wbits,
                wvalid,
            )
            pairing = paired_columns(paired, paired.ts)
        else:
            matched = np.zeros(m, bool)
            nowhere = np.zeros(m, np.int64)
            nothing = np.zeros((0, C_PFNC + 1 - C_CLASS), np.int64)
            scratch = np.empty(C_PFNC + 1 - C_CLASS, np.int64)
            _apply_requests(
                C, nowhere, 0, nothing, matched, is_req, pkey, logix, scratch, wrapper, wbits,
                wvalid,
            )  # fmt: skip
            pairing = pairing_columns(matched, nowhere, nowhere, nowhere)
        cls, pfnc = C[:, C_CLASS], C[:, C_PFNC]
        service_name, category, techniques, pname_codes = _COLUMNS.columns(
            svc, cls, logix, pkey, pfnc
        )
        symbols = self._symbol_column(sym_ids)
        # The matrix is column-major, so its transpose has one contiguous row per field:
        # each dtype's columns come out of one pass.
        fields = C.T
        # frame, time and flow are at hand for TCP rows (UDP rows may have no flow: taken)
        known = {"frame": pa.array(frame), "ts": timestamps(ts), "flow_id": pa.array(flow)}
        batch = take_envelope(env, j, known if tcp else None)
        batch.update(
            {
                "enip_command": pa.array(enc_cmd),
                "connection_id": from_validity(conn, np.int64, m, int(valid[0]), bits[0]),
                "cip_sequence": from_validity(seq, np.int32, m, int(valid[1]), bits[1]),
                "wrapper": _wrappers(wrapper, wbits, int(wvalid[0])),
                "is_request": pa.array(is_req),
                "service": pa.array(svc.astype(np.int16)),
                "service_name": service_name,
                "category": category,
                "techniques": techniques,
                "class_name": CLASSES.optional_names(cls),
                "symbol": symbols,
                "general_status_name": GENERAL_STATUS.optional_names(C[:, C_GSTAT]),
                **null_negative_rows(fields, _C_INT64, np.int64),
                **null_negative_rows(fields, _C_INT32, np.int32),
                **null_negative_rows(fields, _C_INT16, np.int16),
                **_cm_columns(C, CM),
                "pccc_name": PCCC.optional_names(pname_codes),
                **pairing,
            }
        )
        out["cip"].append(pa.RecordBatch.from_pydict(batch, schema=CIP))
        bad = np.flatnonzero(C[:, C_WEIRD] != OK)
        if bad.shape[0]:
            ctx.weird(
                take_envelope(env, j[bad]),
                distinct_strings(C[bad, C_WEIRD], lambda code: WEIRD[code]),
                distinct_strings(
                    (svc[bad] << 32) | C[bad, C_MLEN],
                    lambda k: f"service 0x{k >> 32:02x}, {k & 0xFFFFFFFF} bytes",
                ),
                "cip",
            )

    def _symbol_column(self, sym_ids: np.ndarray) -> pa.Array:
        """The dotted symbol of each row (null where none), from the symbol numbers: the
        string buffers written by two kernel passes (sizes, then bytes), about twice as
        fast as Arrow's take of the known symbols."""
        n = sym_ids.shape[0]
        if not self._symbols:
            return pa.nulls(n, pa.string())
        if self._symbol_values is None or len(self._symbol_values) != len(self._symbols):
            self._symbol_values = pa.array(self._symbols, pa.string())
        known = self._symbol_values
        s_off = np.frombuffer(known.buffers()[1], np.int32)[known.offset :]
        s_data = np.frombuffer(known.buffers()[2] or b"\0", np.uint8)
        offsets = np.empty(n + 1, np.int32)
        bits = np.empty((n + 7) >> 3, np.uint8)
        rows = np.empty(n, np.int64)
        count = _symbol_sizes(sym_ids, s_off, offsets, bits, rows)
        if count == 0:
            return pa.nulls(n, pa.string())
        data = np.empty(int(offsets[n]), np.uint8)
        _symbol_bytes(sym_ids, rows[:count], s_off, s_data, offsets, data)
        return pa.StringArray.from_buffers(
            n, pa.py_buffer(offsets), pa.py_buffer(data), pa.py_buffer(bits), n - count
        )

    def _symbol_id(self, s: str) -> int:
        k = self._symbol_ids.get(s)
        if k is None:
            if len(self._symbols) >= 1_000_000:  # bounded memory on hostile traffic
                self._symbols.clear()
                self._symbol_ids.clear()
                self._symbol_values = None
            k = len(self._symbols)
            self._symbols.append(s)
            self._symbol_ids[s] = k
        return k


@njit(cache=True, nogil=True, _nrt=False)
def _symbol_sizes(ids, s_off, offsets, bits, rows):
    """Offsets and validity of a string column holding symbol ``ids[i]`` (-1: null) of the
    symbols whose offsets are ``s_off``; the rows with a symbol go to ``rows``. Returns
    how many. (An id past the symbols, from before the symbols were forgotten, is null.)"""
    for b in range(bits.shape[0]):
        bits[b] = 0
    offsets[0] = 0
    count = 0
    known = s_off.shape[0] - 1
    for i in range(ids.shape[0]):
        k = ids[i]
        size = 0
        if 0 <= k < known:
            size = s_off[k + 1] - s_off[k]
            bits[i >> 3] |= np.uint8(1 << (i & 7))
            rows[count] = i
            count += 1
        offsets[i + 1] = offsets[i] + size
    return count


@njit(cache=True, nogil=True, _nrt=False)
def _symbol_bytes(ids, rows, s_off, s_data, offsets, data):
    """The bytes of the symbol of each of ``rows``, where ``_symbol_sizes`` placed them."""
    for r in range(rows.shape[0]):
        i = rows[r]
        k = ids[i]
        at = offsets[i]
        src = s_off[k]
        for j in range(s_off[k + 1] - src):
            data[at + j] = s_data[src + j]


def _identity_columns(n: int, found: list[tuple[int, dict[str, Any]]]) -> dict[str, pa.Array]:
    """The ListIdentity columns of ``n`` rows, null but at the ``found`` answers (row,
    decoded item; rows ascending): a few rows per batch, so built around them."""
    rows = np.array([k for k, _ in found], np.int64)

    def ints(key: str, dtype: Any) -> pa.Array:
        have = [(k, info[key]) for k, info in found if info[key] is not None]
        at = np.array([k for k, _ in have], np.int64)
        return sparse_column(n, at, np.array([v for _, v in have], np.int64), dtype)

    vendor = {k: VENDORS.get(info["vendor_id"], f"vendor_{info['vendor_id']}") for k, info in found}
    state = {
        k: STATES.get(info["state"], f"state_{info['state']}")
        for k, info in found
        if info["state"] is not None
    }
    types = np.array([info["device_type"] for _, info in found], np.int64)
    texts = ("revision", "serial_number", "product_name", "socket_address")
    return {
        "vendor_id": ints("vendor_id", np.int32),
        "vendor_name": sparse.dictionary(n, vendor),
        "device_type": ints("device_type", np.int32),
        "device_type_name": sparse.spread_dictionary(n, rows, DEVICE_TYPES.optional_names(types)),
        "product_code": ints("product_code", np.int32),
        **sparse.strings(n, {key: {k: info[key] for k, info in found} for key in texts}),
        "device_status": ints("device_status", np.int32),
        "state": ints("state", np.int16),
        "state_name": sparse.dictionary(n, state),
    }


def _context(ctxv: np.ndarray, missing: np.ndarray) -> pa.Array:
    raw = np.ascontiguousarray(ctxv.astype("<i8")).view(np.uint8)
    mask = None if not missing.any() else pa.array(~missing).buffers()[1]
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(8), ctxv.shape[0], [mask, pa.py_buffer(raw)]
    )


_COMMAND_CATEGORIES = sorted({m.category for m in COMMANDS.rows.values() if m.category})
_COMMAND_CATEGORY_LUT = np.full(0x10000, -1, np.int64)  # command (16 bits) → category index
for _code, _m in COMMANDS.rows.items():
    if _m.category and isinstance(_code, int):
        _COMMAND_CATEGORY_LUT[_code] = _COMMAND_CATEGORIES.index(_m.category)


def _command_categories(cmd: np.ndarray) -> pa.Array:
    codes = _COMMAND_CATEGORY_LUT[cmd & 0xFFFF]
    return _dict_array(np.maximum(codes, 0), _COMMAND_CATEGORIES, mask=codes < 0)


def decode_pdus(pdus: list[bytes]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Run the kernels over standalone encapsulation PDUs (tests, fuzzing, plugins).

    Returns the encapsulation matrix, the CIP message matrix and the dotted symbols.
    """
    buf = np.frombuffer(b"".join(pdus) or b"\0", np.uint8)
    lens = np.array([len(p) for p in pdus], np.int64)
    off = np.zeros(lens.shape[0], np.int64)
    np.cumsum(lens[:-1], out=off[1:]) if lens.shape[0] > 1 else None
    in_arena = np.zeros(lens.shape[0], np.int64)
    X, Xk = _encap_matrix(lens.shape[0])
    _encap(buf, buf, in_arena, off, lens, Xk)
    counts = np.zeros(lens.shape[0], np.int64)
    C, _ = _decode_cip(buf, buf, in_arena, Xk, counts, 2.0)
    symlen = np.maximum(C[:, C_SYMLEN], 0)
    rows = np.flatnonzero(symlen > 0)
    soff = np.zeros(rows.shape[0] + 1, np.int64)
    np.cumsum(symlen[rows], out=soff[1:])
    data = np.empty(int(soff[-1]), np.uint8)
    _symbols(buf, buf, in_arena, C, rows, soff, data)
    raw = data.tobytes()
    names = [raw[soff[k] : soff[k + 1]].decode("latin-1") for k in range(rows.shape[0])]
    for k in np.flatnonzero(X[:, X_IDENT_OFF] >= 0):
        _list_identity(pdus[int(k)], int(X[k, X_IDENT_OFF] - off[k]))
    return X, C, names


DISSECTOR = EnipDissector
