"""S7comm (ISO-on-TCP: TPKT + COTP + S7) and recognition of S7comm-plus.

Every PDU framed by the TPKT framer is looked at once by a numba kernel:

* COTP connection management (CR / CC / DR / DC / ER) becomes a ``cotp`` row; the TSAPs of
  CR / CC are kept per flow (with rack and slot from the called TSAP's second byte) and are
  carried by every ``s7comm`` / ``s7comm_plus`` row of the flow.
* COTP DT carrying protocol id 0x32 is S7comm: header (ROSCTR, PDU reference, parameter and
  data lengths, error class / code), function, setup-communication values, Userdata
  function group / sub-function / sequence / error code, SZL id and index. A second kernel
  walks the variable items (area, DB, byte.bit address, transport size, length, return
  code, data) into list columns, one element per item.
* COTP DT carrying protocol id 0x72 is S7comm-plus: version, data length, opcode, function,
  sequence number and session id go to the ``s7comm_plus`` table.
* Anything else in a DT (IEC 61850 MMS over ISO session/presentation, TLS, empty DTs) is
  not S7 and produces no S7 row.

Rare, rich PDUs are decoded in Python from the offsets the kernel hands over: block
download / upload file names (``_0A00001P`` → DB1), PI services (``_INSE``, ``_DELE``,
``P_PROGRAM``, ``_MODU``, ``_GARB`` ...) and the block lists they carry, PLC stop, SZL
answers 0x0011 (module identification: order number, hardware and firmware versions) and
0x001C (component identification: PLC name, module name, plant id, copyright, serial
number, module type), COTP connection parameters.

Requests and responses are paired per flow by PDU reference (Job ↔ Ack / Ack_Data,
Userdata request ↔ Userdata response); S7comm-plus by sequence number. Responses carry
``request_frame`` and ``latency``.

Not done: COTP reassembly of one S7 PDU split over several DT TPDUs (not seen in the
corpus: S7 negotiates a PDU size that fits one TPDU); the first TPDU is decoded as far as it
goes and marked only when its lengths point past it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.capture import _track as T
from otsight.capture import framing
from otsight.dissect.base import (
    ChunkContext,
    Dissector,
    Meaning,
    Semantics,
    pairing_columns,
    take_envelope,
)
from otsight.dissect.matching import RequestMatcher

# ---- semantics (seeded from shared/PROTOCOLS.md 3.4; names as Wireshark shows them) ------
ROSCTR = Semantics(
    "s7comm",
    "rosctr",
    {1: "job", 2: "ack", 3: "ack_data", 7: "userdata"},
)

_PROGRAM_DOWNLOAD = ("program", ["T0843", "T0889", "T0821"])
_PROGRAM_UPLOAD = ("program", ["T0845"])

FUNCTIONS = Semantics(
    "s7comm",
    "func_code",
    {
        0x00: ("cpu_services", "diagnostic", ["T0888"]),
        0x01: ("mode_transition", "control", ["T0858"]),
        0xF0: ("setup_communication", "session", ["T0886"]),
        0x04: ("read_var", "read", ["T0801", "T0861", "T0877"]),
        0x05: ("write_var", "write", ["T0836", "T0855"]),
        0x1A: ("request_download", *_PROGRAM_DOWNLOAD),
        0x1B: ("download_block", *_PROGRAM_DOWNLOAD),
        0x1C: ("download_ended", *_PROGRAM_DOWNLOAD),
        0x1D: ("start_upload", *_PROGRAM_UPLOAD),
        0x1E: ("upload", *_PROGRAM_UPLOAD),
        0x1F: ("end_upload", *_PROGRAM_UPLOAD),
        0x28: ("pi_service", "control", ["T0858"]),
        0x29: ("plc_stop", "control", ["T0858", "T0813", "T0826"]),
    },
)

PI_SERVICES = Semantics(
    "s7comm",
    "pi_service",
    {
        "_INSE": ("activate_plc_module", "program", ["T0843", "T0889"]),
        "_INS2": ("activate_plc_module", "program", ["T0843", "T0889"]),
        "_DELE": ("remove_module_from_passive_file_system", "program", ["T0809", "T0889"]),
        "P_PROGRAM": ("plc_start_stop", "control", ["T0858"]),
        "_MODU": ("plc_copy_ram_to_rom", "program", ["T0889"]),
        "_GARB": ("compress_plc_memory", "program", ["T0889"]),
        "_N_LOGIN_": ("login", "session", ["T0859"]),
        "_N_LOGOUT": ("logout", "session"),
        "_N_CANCEL": ("cancel_nc_alarm", "control", ["T0878"]),
        "_N_DASAVE": ("copy_sram_to_flash", "program", ["T0889"]),
        "_N_F_DELE": ("delete_file", "program", ["T0809"]),
        "_N_F_DELR": ("delete_file_without_access_rights", "program", ["T0809"]),
        "_N_F_COPY": ("copy_file", "program"),
        "_N_F_RENA": ("rename_file", "program"),
        "_N_F_PROT": ("assign_file_protection_level", "program"),
        "_N_F_OPEN": ("open_file", "read"),
        "_N_F_OPER": ("open_file_read_only", "read"),
        "_N_F_CLOS": ("close_file", "read"),
        "_N_F_XFER": ("select_file_for_upload", "program", ["T0845"]),
        "_N_SELECT": ("select_program", "control", ["T0858"]),
        "_N_EXTERN": ("select_external_program", "control", ["T0858"]),
        "_N_NEWPWD": ("new_password", "session", ["T0892"]),
        "_N_CONFIG": ("reconfigure_machine_data", "write", ["T0836"]),
        "_N_DELVAR": ("delete_data_block", "program", ["T0809"]),
    },
)

# Userdata: (function group, sub-function); (group, -1) is the group's default meaning
_TIS = 1
USERDATA = Semantics(
    "s7comm",
    "userdata",
    {
        (0, -1): ("mode_transition", "control", ["T0858"]),
        (0, 0): ("stop", "control", ["T0858", "T0816"]),
        (0, 1): ("warm_restart", "control", ["T0858", "T0816"]),
        (0, 2): ("run", "control", ["T0858"]),
        (0, 3): ("hot_restart", "control", ["T0858", "T0816"]),
        (0, 4): ("hold", "control", ["T0858"]),
        (0, 6): ("cold_restart", "control", ["T0858", "T0816"]),
        (0, 9): ("run_r", "control", ["T0858"]),
        (0, 11): ("link_up", "control", ["T0858"]),
        (0, 12): ("update", "control", ["T0858"]),
        (_TIS, -1): ("programmer_commands", "diagnostic", ["T0888"]),
        (_TIS, 0x01): ("block_status", "read", ["T0801"]),
        (_TIS, 0x02): ("variable_status", "read", ["T0801"]),
        (_TIS, 0x03): ("output_istack", "diagnostic"),
        (_TIS, 0x04): ("output_bstack", "diagnostic"),
        (_TIS, 0x05): ("output_lstack", "diagnostic"),
        (_TIS, 0x06): ("time_measurement", "diagnostic"),
        (_TIS, 0x07): ("force_selection", "control", ["T0835"]),
        (_TIS, 0x08): ("modify_variable", "write", ["T0836", "T0855"]),
        (_TIS, 0x09): ("force", "control", ["T0835"]),
        (_TIS, 0x0A): ("breakpoint", "control", ["T0858"]),
        (_TIS, 0x0B): ("exit_hold", "control", ["T0858"]),
        (_TIS, 0x0C): ("memory_reset", "control", ["T0809", "T0816"]),
        (_TIS, 0x0D): ("disable_job", "diagnostic"),
        (_TIS, 0x0E): ("enable_job", "diagnostic"),
        (_TIS, 0x0F): ("delete_job", "diagnostic"),
        (_TIS, 0x10): ("read_job_list", "diagnostic"),
        (_TIS, 0x11): ("read_job", "diagnostic"),
        (_TIS, 0x12): ("replace_job", "diagnostic"),
        (_TIS, 0x13): ("block_status_v2", "read", ["T0801"]),
        (_TIS, 0x16): ("flash_led", "diagnostic", ["T0888"]),
        (2, -1): ("cyclic_services", "read", ["T0801"]),
        (2, 0x01): ("cyclic_transfer", "read", ["T0801"]),
        (2, 0x04): ("unsubscribe", "read"),
        (2, 0x05): ("change_driven_transfer", "read", ["T0801"]),
        (2, 0x07): ("change_driven_transfer_modify", "read", ["T0801"]),
        (2, 0x08): ("rdrec", "read", ["T0801"]),
        (3, -1): ("block_functions", "discovery", ["T0888"]),
        (3, 0x01): ("list_blocks", "discovery", ["T0888"]),
        (3, 0x02): ("list_blocks_of_type", "discovery", ["T0888"]),
        (3, 0x03): ("get_block_info", "discovery", ["T0888"]),
        (4, -1): ("cpu_functions", "diagnostic"),
        (4, 0x01): ("read_szl", "discovery", ["T0888"]),
        (4, 0x02): ("message_service", "diagnostic"),
        (4, 0x03): ("diagnostic_message", "diagnostic"),
        (4, 0x05): ("alarm_8_indication", "diagnostic"),
        (4, 0x06): ("notify_indication", "diagnostic"),
        (4, 0x07): ("alarm_8_lock", "control", ["T0878"]),
        (4, 0x08): ("alarm_8_unlock", "control"),
        (4, 0x09): ("scan_indication", "diagnostic"),
        (4, 0x0B): ("alarm_ack", "control", ["T0878"]),
        (4, 0x0C): ("alarm_ack_indication", "diagnostic"),
        (4, 0x0D): ("alarm_lock_indication", "diagnostic"),
        (4, 0x0E): ("alarm_unlock_indication", "diagnostic"),
        (4, 0x10): ("ar_send_indication", "diagnostic"),
        (4, 0x11): ("alarm_sq_indication", "diagnostic"),
        (4, 0x12): ("alarm_s_indication", "diagnostic"),
        (4, 0x13): ("alarm_query", "diagnostic"),
        (4, 0x16): ("notify_8_indication", "diagnostic"),
        (5, -1): ("security", "session", ["T0859"]),
        (5, 0x01): ("plc_password", "session", ["T0859", "T0812"]),
        (5, 0x02): ("clean_session", "session"),
        (6, -1): ("pbc_bsend", None),
        (7, -1): ("time_functions", "diagnostic"),
        (7, 0x01): ("read_clock", "diagnostic"),
        (7, 0x02): ("set_clock", "write", ["T0836"]),
        (7, 0x03): ("read_clock_following", "diagnostic"),
        (7, 0x04): ("set_clock", "write", ["T0836"]),
        (0x3F, -1): ("nc_programming", "program", ["T0843", "T0845"]),
        (0x3F, 0x01): ("nc_request_download", "program", ["T0843"]),
        (0x3F, 0x02): ("nc_download_block", "program", ["T0843"]),
        (0x3F, 0x03): ("nc_continue_download", "program", ["T0843"]),
        (0x3F, 0x04): ("nc_download_ended", "program", ["T0843"]),
        (0x3F, 0x06): ("nc_start_upload", "program", ["T0845"]),
        (0x3F, 0x07): ("nc_upload", "program", ["T0845"]),
        (0x3F, 0x08): ("nc_continue_upload", "program", ["T0845"]),
        (0x20, -1): ("dr_routing", "diagnostic"),
    },
)

# names of Userdata sub-functions by group << 8 | sub-function (derived from USERDATA)
USERDATA_SUBFUNCS = Semantics(
    "s7comm",
    "ud_subfunc",
    {int(k[0]) * 256 + int(k[1]): m.name for k, m in USERDATA.rows.items() if k[1] >= 0},  # type: ignore[index,operator]
)

USERDATA_GROUPS = Semantics(
    "s7comm",
    "ud_group",
    {
        0x00: "mode_transition",
        0x01: "programmer_commands",
        0x02: "cyclic_services",
        0x03: "block_functions",
        0x04: "cpu_functions",
        0x05: "security",
        0x06: "pbc_bsend",
        0x07: "time_functions",
        0x3F: "nc_programming",
        0x20: "dr_routing",
    },
)

USERDATA_TYPES = Semantics("s7comm", "ud_type", {0: "push", 1: "request", 2: "response"})

SZL_IDS = Semantics(
    "s7comm",
    "szl_id",
    {
        0x0000: ("list_of_szl_ids", "discovery", ["T0888"]),
        0x0011: ("module_identification", "discovery", ["T0888"]),
        0x0111: ("module_identification_record", "discovery", ["T0888"]),
        0x0F11: ("module_identification_header", "discovery", ["T0888"]),
        0x0012: ("cpu_characteristics", "discovery", ["T0888"]),
        0x0013: ("user_memory_areas", "discovery", ["T0888"]),
        0x0014: ("system_areas", "discovery", ["T0888"]),
        0x0015: ("block_types", "discovery", ["T0888"]),
        0x0019: ("module_led_status", "discovery", ["T0888"]),
        0x001C: ("component_identification", "discovery", ["T0888"]),
        0x011C: ("component_identification_record", "discovery", ["T0888"]),
        0x0F1C: ("component_identification_header", "discovery", ["T0888"]),
        0x0022: ("interrupt_status", "discovery", ["T0888"]),
        0x0037: ("ethernet_details", "discovery", ["T0888"]),
        0x0074: ("module_led_status", "discovery", ["T0888"]),
        0x0091: ("module_status", "discovery", ["T0888"]),
        0x0092: ("rack_station_status", "discovery", ["T0888"]),
        0x00A0: ("diagnostic_buffer", "discovery", ["T0888"]),
        0x00B1: ("module_diagnostic_info", "discovery", ["T0888"]),
        0x0131: ("communication_capabilities", "discovery", ["T0888"]),
        0x0132: ("communication_status", "discovery", ["T0888", "T0868"]),
        0x0232: ("protection_level", "discovery", ["T0888", "T0868"]),
        0x0424: ("operating_mode", "discovery", ["T0888", "T0868"]),
        0x0524: ("operating_mode", "discovery", ["T0888", "T0868"]),
    },
)

ERROR_CLASSES = Semantics(
    "s7comm",
    "error_class",
    {
        0x00: "no_error",
        0x81: "application_relationship",
        0x82: "object_definition",
        0x83: "no_resources_available",
        0x84: "error_on_service_processing",
        0x85: "error_on_supplies",
        0x87: "access_error",
    },
)

# header error (class << 8 | code) and Userdata parameter error codes (same code space)
ERRORS = Semantics(
    "s7comm",
    "error",
    {
        0x0000: "no_error",
        0x0110: "invalid_block_number",
        0x0111: "invalid_request_length",
        0x0112: "invalid_parameter",
        0x0113: "invalid_block_type",
        0x0114: "block_not_found",
        0x0115: "block_already_exists",
        0x0116: "block_is_write_protected",
        0x0117: "block_or_os_update_too_large",
        0x0118: "invalid_block_number",
        0x0119: "incorrect_password_entered",
        0x011A: "pg_resource_error",
        0x011B: "plc_resource_error",
        0x011C: "protocol_error",
        0x011D: "too_many_blocks",
        0x011E: "no_connection_to_database",
        0x011F: "result_buffer_too_small",
        0x0120: "end_of_block_list",
        0x0140: "insufficient_memory",
        0x0141: "lack_of_resources",
        0x8001: "service_not_possible_in_block_status",
        0x8003: "error_transferring_block",
        0x8100: "service_unknown_to_remote_module",
        0x8104: "service_not_implemented_or_frame_error",
        0x8204: "object_type_inconsistent",
        0x8205: "copied_block_exists_not_linked",
        0x8301: "insufficient_memory_or_medium_not_accessible",
        0x8302: "too_few_resources",
        0x8304: "no_further_parallel_upload",
        0x8305: "function_not_available",
        0x8306: "insufficient_work_memory",
        0x8307: "not_enough_retentive_work_memory",
        0x8401: "invalid_service_sequence",
        0x8402: "service_not_possible_in_object_status",
        0x8404: "function_cannot_be_performed",
        0x8405: "remote_block_disabled",
        0x8500: "wrong_frames",
        0x8503: "service_canceled_prematurely",
        0x8701: "error_addressing_object",
        0x8702: "service_not_supported_by_module",
        0x8703: "access_to_object_refused",
        0x8704: "object_damaged",
        0xD001: "illegal_job_number",
        0xD002: "illegal_job_variant",
        0xD003: "debugging_function_not_supported",
        0xD004: "illegal_job_status",
        0xD005: "illegal_job_termination",
        0xD041: "illegal_status_list_id",
        0xD042: "illegal_tag_address",
        0xD081: "function_not_permitted_in_current_mode",
        0xD082: "cannot_exit_hold_mode",
        0xD0A1: "function_not_permitted_in_protection_level",
        0xD0A2: "memory_modifying_function_running",
        0xD0AD: "operating_mode_already_set",
        0xD201: "syntax_error_in_block_name",
        0xD202: "syntax_error_in_function_parameters",
        0xD209: "block_not_found_on_module",
        0xD20E: "no_further_block_available",
        0xD210: "invalid_block_number",
        0xD235: "block_checksum_incorrect",
        0xD241: "function_not_permitted_in_protection_level",
        0xD2A9: "new_parameters_being_assigned_to_cpu",
        0xD401: "information_function_unavailable",
        0xD402: "information_function_unavailable",
        0xD405: "service_not_supported_or_syntax_error",
        0xD406: "information_currently_unavailable",
        0xD601: "syntax_error_in_function_parameter",
        0xD602: "incorrect_password_entered",
        0xD603: "connection_already_legitimized",
        0xD604: "connection_already_enabled",
        0xD605: "password_does_not_exist",
        0xD801: "invalid_tag_address",
        0xD802: "job_does_not_exist",
        0xDC01: "date_or_time_invalid",
    },
)

AREAS = Semantics(
    "s7comm",
    "area",
    {
        0x01: "data_record",
        0x03: "system_info_200",
        0x05: "system_flags_200",
        0x06: "analog_inputs_200",
        0x07: "analog_outputs_200",
        0x1C: "counters",
        0x1D: "timers",
        0x1E: "iec_counters_200",
        0x1F: "iec_timers_200",
        0x80: "peripheral",
        0x81: "inputs",
        0x82: "outputs",
        0x83: "flags",
        0x84: "data_blocks",
        0x85: "instance_data_blocks",
        0x86: "local_data",
        0x87: "previous_local_data",
    },
)

RETURN_CODES = Semantics(
    "s7comm",
    "return_code",
    {
        0x00: "reserved",
        0x01: "hardware_error",
        0x03: "access_not_allowed",
        0x05: "invalid_address",
        0x06: "data_type_not_supported",
        0x07: "data_type_inconsistent",
        0x0A: "object_does_not_exist",
        0xFF: "success",
    },
)

BLOCK_TYPES = {
    "08": "OB",
    "09": "CMod",
    "0A": "DB",
    "0B": "SDB",
    "0C": "FC",
    "0D": "SFC",
    "0E": "FB",
    "0F": "SFB",
}

COTP_TYPES = Semantics(
    "s7comm",
    "cotp_type",
    {
        0xE0: ("connection_request", "session", ["T0886"]),
        0xD0: ("connection_confirm", "session"),
        0x80: ("disconnect_request", "session"),
        0xC0: ("disconnect_confirm", "session"),
        0x70: ("error", None),
        0xF0: ("data", None),
        0x10: ("expedited_data", None),
        0x60: ("data_ack", None),
        0x20: ("expedited_data_ack", None),
        0x50: ("reject", None),
    },
)

CONNECTION_TYPES = Semantics(
    "s7comm", "connection_type", {1: "pg", 2: "op", 3: "s7_basic", 0x10: "s7_basic"}
)

PLUS_VERSIONS = Semantics(
    "s7comm_plus", "version", {1: "v1", 2: "v2", 3: "v3", 0xFE: "system_event"}
)
PLUS_OPCODES = Semantics(
    "s7comm_plus",
    "opcode",
    {0x31: "request", 0x32: "response", 0x33: "notification", 0x02: "response2"},
)
PLUS_FUNCTIONS = Semantics(
    "s7comm_plus",
    "function",
    {
        0x04B1: ("error", None),
        0x04BB: ("explore", "discovery", ["T0888", "T0861"]),
        0x04CA: ("create_object", "session", ["T0886"]),
        0x04D4: ("delete_object", "session"),
        0x04F2: ("set_variable", "write", ["T0836", "T0855"]),
        0x04FC: ("get_variable", "read", ["T0801"]),
        0x0506: ("add_link", "write", ["T0836"]),
        0x051A: ("remove_link", "write", ["T0836"]),
        0x0524: ("get_link", "read", ["T0801"]),
        0x0542: ("set_multi_variables", "write", ["T0836", "T0855"]),
        0x054C: ("get_multi_variables", "read", ["T0801"]),
        0x0556: ("begin_sequence", "program", ["T0843"]),
        0x0560: ("end_sequence", "program", ["T0843"]),
        0x056B: ("invoke", "control", ["T0858", "T0855"]),
        0x057C: ("set_var_substreamed", "program", ["T0843", "T0889"]),
        0x0586: ("get_var_substreamed", "read", ["T0801", "T0845"]),
        0x0590: ("get_variables_address", "read", ["T0861"]),
        0x059A: ("abort", "session"),
        0x05A9: ("error2", None),
        0x05B3: ("init_ssl", "session"),
    },
)

# ---- schemas (the lead moves them into events.py) -----------------------------------------
_STR = E._STR
_TSAP = [
    pa.field("src_tsap", _STR),  # calling TSAP of the flow's COTP connection request
    pa.field("dst_tsap", _STR),  # called TSAP (the PLC's)
    pa.field("rack", pa.int16()),  # from the called TSAP's second byte (2-byte TSAPs only)
    pa.field("slot", pa.int16()),
]

SCHEMA = E._schema(
    "s7comm",
    E.PDU_COMMON
    + [
        pa.field("is_request", pa.bool_()),
        pa.field("rosctr", pa.int16()),
        pa.field("rosctr_name", _STR),
        pa.field("pdu_ref", pa.int32()),
        pa.field("param_length", pa.int32()),
        pa.field("data_length", pa.int32()),
        pa.field("error_class", pa.int16()),  # Ack / Ack_Data header
        pa.field("error_class_name", _STR),
        pa.field("error_code", pa.int16()),
        pa.field("error_name", _STR),  # of class << 8 | code
        pa.field("func_code", pa.int16()),  # responses without parameters carry the request's
        pa.field("func_name", _STR),
        pa.field("category", _STR),  # by function, refined by PI service and Userdata function
        pa.field("techniques", pa.list_(_STR)),
        pa.field("item_count", pa.int16()),
        # variable items, one element per item (Read / Write Var)
        pa.field("item_syntax_id", pa.list_(pa.int16())),
        pa.field("item_area", pa.list_(pa.int16())),
        pa.field("item_area_name", pa.list_(_STR)),
        pa.field("item_db", pa.list_(pa.int32())),
        pa.field("item_byte", pa.list_(pa.int32())),  # start address byte.bit
        pa.field("item_bit", pa.list_(pa.int8())),
        pa.field("item_transport_size", pa.list_(pa.int16())),
        pa.field("item_length", pa.list_(pa.int32())),
        pa.field("item_return_code", pa.list_(pa.int16())),  # Ack_Data
        pa.field("item_return_name", pa.list_(_STR)),
        pa.field("item_data", pa.list_(pa.binary())),  # values written / read
        # setup communication
        pa.field("pdu_length", pa.int32()),
        pa.field("max_amq_calling", pa.int32()),
        pa.field("max_amq_called", pa.int32()),
        # block transfer, PI services, PLC stop
        pa.field("filename", pa.string()),  # e.g. _0A00001P
        pa.field("blocks", pa.list_(pa.string())),  # e.g. ["DB1"]
        pa.field("pi_service", _STR),  # e.g. P_PROGRAM, _INSE
        pa.field("pi_service_name", _STR),
        # Userdata
        pa.field("ud_type", pa.int16()),  # 0 push, 1 request, 2 response
        pa.field("ud_type_name", _STR),
        pa.field("ud_group", pa.int16()),
        pa.field("ud_group_name", _STR),
        pa.field("ud_subfunc", pa.int16()),
        pa.field("ud_subfunc_name", _STR),
        pa.field("ud_seq", pa.int16()),
        pa.field("ud_last_unit", pa.bool_()),
        pa.field("ud_error_code", pa.int32()),  # e.g. 0xD602 incorrect password
        pa.field("ud_error_name", _STR),
        pa.field("szl_id", pa.int32()),
        pa.field("szl_index", pa.int32()),
        pa.field("szl_name", _STR),
        # SZL 0x0011 module identification
        pa.field("order_number", pa.string()),
        pa.field("hardware_version", pa.string()),
        pa.field("firmware_version", pa.string()),
        # SZL 0x001C component identification
        pa.field("plc_name", pa.string()),
        pa.field("module_name", pa.string()),
        pa.field("plant_id", pa.string()),
        pa.field("copyright", pa.string()),
        pa.field("serial_number", pa.string()),
        pa.field("module_type", pa.string()),
    ]
    + _TSAP
    + E._REQUEST_MATCH,
    "S7comm PDUs (Job, Ack, Ack_Data, Userdata) over ISO-on-TCP, with the COTP TSAPs.",
)

PLUS_SCHEMA = E._schema(
    "s7comm_plus",
    E.PDU_COMMON
    + [
        pa.field("is_request", pa.bool_()),
        pa.field("version", pa.int16()),
        pa.field("version_name", _STR),
        pa.field("data_length", pa.int32()),
        pa.field("continued", pa.bool_()),  # a fragment continuing the previous PDU
        pa.field("opcode", pa.int16()),
        pa.field("opcode_name", _STR),
        pa.field("function", pa.int32()),
        pa.field("function_name", _STR),
        pa.field("category", _STR),
        pa.field("seq_num", pa.int32()),
        pa.field("session_id", pa.int64()),
    ]
    + _TSAP
    + E._REQUEST_MATCH,
    "S7comm-plus (protocol id 0x72, S7-1200/1500) recognised: header, opcode, function.",
)

COTP_SCHEMA = E._schema(
    "cotp",
    E.PDU_COMMON
    + [
        pa.field("tpdu_type", pa.int16()),
        pa.field("tpdu_name", _STR),
        pa.field("dst_ref", pa.int32()),
        pa.field("src_ref", pa.int32()),
        pa.field("tpdu_class", pa.int16()),
        pa.field("tpdu_size", pa.int32()),
        pa.field("connection_type", pa.int16()),  # called TSAP's first byte (2-byte TSAPs)
        pa.field("connection_type_name", _STR),
        pa.field("disconnect_reason", pa.int16()),
    ]
    + _TSAP,
    "ISO 8073 COTP connection management over TPKT (CR, CC, DR, DC, ER), with TSAPs.",
)

# ---- kernel -----------------------------------------------------------------------------
(
    KIND,
    CTYPE,
    EOT,
    S7OFF,
    ROS,
    PDUREF,
    PARLG,
    DATLG,
    ERRCLS,
    ERRCOD,
    FUNC,
    ITEMCNT,
    NITEMS,
    PAROFF,
    DATOFF,
    PEND,
    DEND,
    SETUP_PDU,
    AMQ1,
    AMQ2,
    UD_TYPE,
    UD_GROUP,
    UD_SUBF,
    UD_SEQ,
    UD_LAST,
    UD_ERR,
    SZL_ID,
    SZL_IDX,
    STATUS,
    P_VER,
    P_DLEN,
    P_OPCODE,
    P_FUNC,
    P_SEQ,
    P_SESSION,
    P_TRAILER,
    UD_DUREF,
) = range(37)
NCOL = 37

K_NONE, K_CONN, K_S7, K_PLUS, K_OTHER = 0, 1, 2, 3, 4

OK, BAD_COTP, TRUNCATED, LENGTHS, ITEMS, BAD_ROSCTR, BAD_UD_HEAD = 0, 1, 2, 3, 4, 5, 6
WEIRD = {
    BAD_COTP: "cotp_bad_length_indicator",
    TRUNCATED: "s7comm_header_truncated",
    LENGTHS: "s7comm_lengths_exceed_pdu",
    ITEMS: "s7comm_bad_items",
    BAD_ROSCTR: "s7comm_unknown_rosctr",
    BAD_UD_HEAD: "s7comm_bad_userdata_header",
}

# item columns
I_SYNTAX, I_AREA, I_DB, I_BYTE, I_BIT, I_TSIZE, I_LEN, I_RC, I_DOFF, I_DLEN = range(10)
NICOL = 10


@njit(cache=True, inline="always")
def _b16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(cache=True, inline="always")
def _data_bytes(tsize, ln):
    """Byte length of a data item: sizes 3, 4, 5 count bits."""
    if tsize == 3 or tsize == 4 or tsize == 5:
        return (ln + 7) >> 3
    return ln


@njit(cache=True, nogil=True)
def _fields(buf, arena, in_arena, off, length, out):
    n = off.shape[0]
    for j in range(n):
        for c in range(NCOL):
            out[j, c] = -1
        out[j, KIND] = K_NONE
        out[j, STATUS] = OK
        out[j, NITEMS] = 0
        b = arena if in_arena[j] else buf
        p = off[j]
        end = p + length[j]
        if length[j] < 7:
            out[j, STATUS] = BAD_COTP
            continue
        li = np.int64(b[p + 4])
        ctype = np.int64(b[p + 5]) & 0xF0
        out[j, CTYPE] = ctype
        if li < 1 or p + 5 + li > end:
            out[j, STATUS] = BAD_COTP
            continue
        if ctype != 0xF0:
            if ctype == 0xE0 or ctype == 0xD0 or ctype == 0x80 or ctype == 0xC0 or ctype == 0x70:
                out[j, KIND] = K_CONN
            else:
                out[j, KIND] = K_OTHER
            continue
        if li >= 2:
            out[j, EOT] = np.int64(b[p + 6]) >> 7
        s = p + 5 + li
        out[j, S7OFF] = s
        avail = end - s
        if avail < 1:
            out[j, KIND] = K_OTHER
            continue
        pid = b[s]
        if pid == 0x72 and avail >= 4:
            out[j, KIND] = K_PLUS
            ver = np.int64(b[s + 1])
            out[j, P_VER] = ver
            dl = _b16(b, s + 2)
            out[j, P_DLEN] = dl
            t = s + 4 + dl
            if t + 4 <= end and b[t] == 0x72:
                out[j, P_TRAILER] = 1
            else:
                out[j, P_TRAILER] = 0
            q = s + 4
            if ver == 3 and q < end:
                q += 1 + np.int64(b[q])  # integrity part: digest length + digest
            if q < end and ver != 0xFE:
                op = np.int64(b[q])
                out[j, P_OPCODE] = op
                if (op == 0x31 or op == 0x32 or op == 0x02) and q + 9 <= end:
                    out[j, P_FUNC] = _b16(b, q + 3)
                    out[j, P_SEQ] = _b16(b, q + 7)
                    if op == 0x31 and q + 13 <= end:
                        out[j, P_SESSION] = (_b16(b, q + 9) << 16) | _b16(b, q + 11)
            continue
        if pid != 0x32 or avail < 2:
            out[j, KIND] = K_OTHER
            continue
        ros = np.int64(b[s + 1])
        if ros < 1 or ros > 7:
            out[j, KIND] = K_OTHER  # not S7 (Wireshark's heuristic rejects it too)
            continue
        out[j, KIND] = K_S7
        out[j, ROS] = ros
        hdr = 12 if (ros == 2 or ros == 3) else 10
        if avail < hdr:
            out[j, STATUS] = TRUNCATED
            if avail >= 6:
                out[j, PDUREF] = _b16(b, s + 4)
            continue
        if ros != 1 and ros != 2 and ros != 3 and ros != 7:
            out[j, STATUS] = BAD_ROSCTR
        out[j, PDUREF] = _b16(b, s + 4)
        parlg = _b16(b, s + 6)
        datlg = _b16(b, s + 8)
        out[j, PARLG] = parlg
        out[j, DATLG] = datlg
        if hdr == 12:
            out[j, ERRCLS] = b[s + 10]
            out[j, ERRCOD] = b[s + 11]
        par = s + hdr
        dat = par + parlg
        pend = min(dat, end)
        dend = min(dat + datlg, end)
        if dat + datlg > end and out[j, EOT] != 0:
            out[j, STATUS] = LENGTHS
        out[j, PAROFF] = par
        out[j, DATOFF] = dat
        out[j, PEND] = pend
        out[j, DEND] = dend
        if ros == 1 or ros == 3:
            if par >= pend:
                continue
            fc = np.int64(b[par])
            out[j, FUNC] = fc
            if fc == 0xF0:
                if par + 8 <= pend:
                    out[j, AMQ1] = _b16(b, par + 2)
                    out[j, AMQ2] = _b16(b, par + 4)
                    out[j, SETUP_PDU] = _b16(b, par + 6)
            elif fc == 4 or fc == 5:
                if par + 2 > pend:
                    out[j, STATUS] = ITEMS
                    continue
                cnt = np.int64(b[par + 1])
                out[j, ITEMCNT] = cnt
                k = 0
                if ros == 1:
                    q = par + 2
                    while k < cnt:
                        if q + 2 > pend:
                            break
                        q2 = q + 2 + np.int64(b[q + 1])
                        if q2 > pend:
                            break
                        q = q2
                        k += 1
                elif fc == 4:
                    q = dat
                    while k < cnt:
                        if q + 4 > dend:
                            break
                        q2 = q + 4
                        if b[q] == 0xFF:  # an error answer carries no data after its header
                            q2 += _data_bytes(np.int64(b[q + 1]), _b16(b, q + 2))
                        if q2 > dend:
                            break
                        k += 1
                        if k < cnt and ((q2 - q) & 1):
                            q2 += 1  # fill byte after an odd-length item
                        q = q2
                else:
                    k = min(cnt, max(dend - dat, 0))
                out[j, NITEMS] = k
                if k < cnt and out[j, STATUS] == OK and out[j, EOT] != 0:
                    out[j, STATUS] = ITEMS
        elif ros == 7:
            if par + 8 > pend:
                out[j, STATUS] = BAD_UD_HEAD
                continue
            head = (np.int64(b[par]) << 16) | _b16(b, par + 1)
            if head != 0x000112 and head != 0x010010:  # 0x010010: mode-transition push
                out[j, STATUS] = BAD_UD_HEAD
            plen = np.int64(b[par + 3])
            tg = np.int64(b[par + 5])
            out[j, UD_TYPE] = tg >> 6
            out[j, UD_GROUP] = tg & 0x3F
            out[j, UD_SUBF] = b[par + 6]
            out[j, UD_SEQ] = b[par + 7]
            if plen >= 8 and par + 12 <= pend:
                out[j, UD_DUREF] = b[par + 8]
                out[j, UD_LAST] = b[par + 9]
                out[j, UD_ERR] = _b16(b, par + 10)
            if (tg & 0x3F) == 4 and b[par + 6] == 1 and dat + 8 <= dend and b[dat] == 0xFF:
                # Read SZL: id and index lead the data (of the first unit of an answer;
                # the dissector gives later units their first unit's id)
                out[j, SZL_ID] = _b16(b, dat + 4)
                out[j, SZL_IDX] = _b16(b, dat + 6)


@njit(cache=True, nogil=True)
def _items(buf, arena, in_arena, out, starts, items):
    """Variable items of Read / Write Var PDUs into ``items[starts[j]:starts[j+1]]``."""
    n = out.shape[0]
    for j in range(n):
        cnt = out[j, NITEMS]
        if cnt <= 0:
            continue
        b = arena if in_arena[j] else buf
        s0 = starts[j]
        for k in range(cnt):
            for c in range(NICOL):
                items[s0 + k, c] = -1
        ros = out[j, ROS]
        fc = out[j, FUNC]
        pend = out[j, PEND]
        dend = out[j, DEND]
        if ros == 1:
            q = out[j, PAROFF] + 2
            for k in range(cnt):
                sl = np.int64(b[q + 1])
                if sl >= 1 and q + 3 <= pend:
                    items[s0 + k, I_SYNTAX] = b[q + 2]
                if b[q + 2] == 0x10 and sl >= 10 and q + 12 <= pend:
                    items[s0 + k, I_TSIZE] = b[q + 3]
                    items[s0 + k, I_LEN] = _b16(b, q + 4)
                    items[s0 + k, I_DB] = _b16(b, q + 6)
                    items[s0 + k, I_AREA] = b[q + 8]
                    addr = (np.int64(b[q + 9]) << 16) | _b16(b, q + 10)
                    ts = np.int64(b[q + 3])
                    if ts >= 28 and ts <= 31:  # timers and counters: a number, no bit
                        items[s0 + k, I_BYTE] = addr & 0xFFFF
                    else:
                        items[s0 + k, I_BYTE] = addr >> 3
                        items[s0 + k, I_BIT] = addr & 7
                q += 2 + sl
            if fc == 5:
                # the values to write: one data item per variable item
                q = out[j, DATOFF]
                for k in range(cnt):
                    if q + 4 > dend:
                        break
                    dl = _data_bytes(np.int64(b[q + 1]), _b16(b, q + 2))
                    dl = min(dl, dend - q - 4)
                    items[s0 + k, I_DOFF] = q + 4
                    items[s0 + k, I_DLEN] = dl
                    q2 = q + 4 + dl
                    if (dl & 1) and k + 1 < cnt:
                        q2 += 1
                    q = q2
        elif fc == 4:
            q = out[j, DATOFF]
            for k in range(cnt):
                items[s0 + k, I_RC] = b[q]
                items[s0 + k, I_TSIZE] = b[q + 1]
                items[s0 + k, I_LEN] = _b16(b, q + 2)
                dl = 0
                if b[q] == 0xFF:
                    dl = min(_data_bytes(np.int64(b[q + 1]), _b16(b, q + 2)), dend - q - 4)
                items[s0 + k, I_DOFF] = q + 4
                items[s0 + k, I_DLEN] = dl
                q2 = q + 4 + dl
                if (dl & 1) and k + 1 < cnt:
                    q2 += 1
                q = q2
        else:
            q = out[j, DATOFF]
            for k in range(cnt):
                items[s0 + k, I_RC] = b[q + k]


@njit(cache=True, nogil=True)
def _gather(buf, arena, in_arena_item, doff, dlen, starts, dst):
    """Copy each item's data bytes into ``dst[starts[i]:starts[i+1]]``."""
    for i in range(doff.shape[0]):
        ln = dlen[i]
        if ln <= 0:
            continue
        b = arena if in_arena_item[i] else buf
        s = starts[i]
        o = doff[i]
        for k in range(ln):
            dst[s + k] = b[o + k]


# ---- helpers ------------------------------------------------------------------------------
def _col(v: np.ndarray, dtype) -> pa.Array:
    return pa.array(v.astype(dtype), mask=v < 0)


def _sparse_lists(n: int, rows: dict[int, list[str]]) -> pa.Array:
    """A list<string> column that is null except at a few rows."""
    if not rows:
        return pa.nulls(n, pa.list_(pa.string()))
    pos = np.full(n, -1, np.int64)
    keys = list(rows)
    pos[keys] = np.arange(len(keys))
    small = pa.array([rows[k] for k in keys], pa.list_(pa.string()))
    return small.take(pa.array(pos, mask=pos < 0))


def _sparse_strings(n: int, rows: dict[int, str | None]) -> pa.Array:
    """A string column that is null except at a few rows."""
    if not rows:
        return pa.nulls(n, pa.string())
    pos = np.full(n, -1, np.int64)
    keys = list(rows)
    pos[keys] = np.arange(len(keys))
    small = pa.array([rows[k] for k in keys], pa.string())
    return small.take(pa.array(pos, mask=pos < 0))


def _strings(values: Sequence[str | None]) -> pa.Array:
    return pa.array(values, type=pa.string()).dictionary_encode()


def _list(starts: np.ndarray, values: pa.Array) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(starts.astype(np.int32)), values)


def _ascii(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()


def _tsap(raw: bytes) -> str:
    """A TSAP as Wireshark shows it: text when printable, else hex."""
    if len(raw) >= 3 and all(0x20 <= c < 0x7F for c in raw):
        return raw.decode("ascii")
    return "0x" + raw.hex()


def _block_name(name: str) -> str | None:
    """'0A00001P' or '_0A00001P' → 'DB1'."""
    if name.startswith(("_", "$")):
        name = name[1:]
    if len(name) < 7:
        return None
    kind = BLOCK_TYPES.get(name[:2].upper())
    if kind is None or not name[2:7].isdigit():
        return None
    return f"{kind}{int(name[2:7])}"


class _Meanings:
    """Meaning of each row: PI service > Userdata (group, sub-function) > function code."""

    def __init__(self) -> None:
        self.items: list[Meaning] = []
        self.index: dict[tuple, int] = {}
        for space, sem in (("f", FUNCTIONS), ("u", USERDATA), ("p", PI_SERVICES)):
            for code, m in sem.rows.items():
                self.index[(space, code)] = len(self.items)
                self.items.append(m)
        self.func_lut = np.full(256, -1, np.int64)
        for code in FUNCTIONS.rows:
            self.func_lut[int(code)] = self.index[("f", code)]  # type: ignore[call-overload]
        self.ud_lut = np.full((64, 257), -1, np.int64)
        for key in USERDATA.rows:
            grp, sub = int(key[0]), int(key[1])  # type: ignore[index]
            self.ud_lut[grp, sub + 1 if sub >= 0 else 0] = self.index[("u", key)]
        # sub-functions without an own meaning take the group's
        for g in range(64):
            base = self.ud_lut[g, 0]
            row = self.ud_lut[g, 1:]
            row[row < 0] = base
        cats = sorted({m.category for m in self.items if m.category})
        self.categories = cats
        cat_of = {c: i for i, c in enumerate(cats)}
        self.cat_lut = np.array(
            [cat_of[m.category] if m.category else -1 for m in self.items] + [-1]
        )
        self.techs = sorted({t for m in self.items for t in m.techniques})
        t_of = {t: i for i, t in enumerate(self.techs)}
        self.t_len = np.array([len(m.techniques) for m in self.items] + [0], np.int64)
        self.t_start = np.zeros(self.t_len.shape[0] + 1, np.int64)
        np.cumsum(self.t_len, out=self.t_start[1:])
        self.t_flat = np.array([t_of[t] for m in self.items for t in m.techniques], np.int32)

    def columns(self, midx: np.ndarray) -> tuple[pa.Array, pa.Array]:
        none = len(self.items)
        midx = np.where(midx >= 0, midx, none)
        cidx = self.cat_lut[midx]
        category = pa.DictionaryArray.from_arrays(
            pa.array(np.maximum(cidx, 0).astype(np.int32), mask=cidx < 0),
            pa.array(self.categories, pa.string()),
        )
        lens = self.t_len[midx]
        offsets = np.zeros(midx.shape[0] + 1, np.int64)
        np.cumsum(lens, out=offsets[1:])
        pos = (
            np.arange(offsets[-1])
            - np.repeat(offsets[:-1], lens)
            + np.repeat(self.t_start[midx], lens)
        )
        values = pa.DictionaryArray.from_arrays(
            pa.array(self.t_flat[pos] if pos.shape[0] else np.zeros(0, np.int32)),
            pa.array(self.techs, pa.string()),
        )
        return category, _list(offsets, values)


_M = _Meanings()


# ---- the dissector ---------------------------------------------------------------------------
class S7commDissector(Dissector):
    name = "s7comm"
    tables = {"s7comm": SCHEMA, "s7comm_plus": PLUS_SCHEMA, "cotp": COTP_SCHEMA}
    framers = (framing.TPKT,)
    semantics = (
        ROSCTR,
        FUNCTIONS,
        PI_SERVICES,
        USERDATA,
        USERDATA_GROUPS,
        USERDATA_TYPES,
        SZL_IDS,
        ERROR_CLASSES,
        ERRORS,
        AREAS,
        RETURN_CODES,
        COTP_TYPES,
        CONNECTION_TYPES,
        PLUS_VERSIONS,
        PLUS_OPCODES,
        PLUS_FUNCTIONS,
    )

    def __init__(self) -> None:
        self.matcher = RequestMatcher(width=4)
        self.plus_matcher = RequestMatcher(width=1)
        # flow → (src_tsap, dst_tsap, rack, slot) from its COTP CR / CC
        self.tsaps: dict[int, tuple[str | None, str | None, int, int]] = {}
        # (flow, data unit reference) → (SZL id, index) of an answer still arriving in units
        self.szl_units: dict[tuple[int, int], tuple[int, int]] = {}
        # (flow, is_orig) → the last S7comm-plus PDU of that direction had no trailer
        self.plus_open: dict[tuple[int, bool], bool] = {}

    # -- per chunk ------------------------------------------------------------------------
    def process(self, ctx: ChunkContext) -> dict[str, pa.RecordBatch]:
        idx = ctx.pdus(framing.TPKT)
        if idx.shape[0] == 0:
            return {}
        in_arena, off, length = ctx.pdu_locations(idx)
        out = np.empty((idx.shape[0], NCOL), dtype=np.int64)
        _fields(ctx.chunk.buf, ctx.track.arena, in_arena, off, length, out)
        kind = out[:, KIND]
        result: dict[str, pa.RecordBatch] = {}

        bad_cotp = np.flatnonzero(out[:, STATUS] == BAD_COTP)
        if bad_cotp.shape[0]:
            env = ctx.pdu_envelope(idx[bad_cotp])
            ctx.weird(
                env,
                [WEIRD[BAD_COTP]] * bad_cotp.shape[0],
                [f"{int(n)} bytes" for n in length[bad_cotp]],
                "cotp",
            )
        conn = np.flatnonzero(kind == K_CONN)
        if conn.shape[0]:
            result["cotp"] = self._cotp(ctx, idx[conn])
        s7 = np.flatnonzero(kind == K_S7)
        if s7.shape[0]:
            result["s7comm"] = self._s7(ctx, idx[s7], out[s7], in_arena[s7], length[s7])
        plus = np.flatnonzero(kind == K_PLUS)
        if plus.shape[0]:
            result["s7comm_plus"] = _decode_plus(self, ctx, idx[plus], out[plus])
        return result

    # -- COTP connection management (rare: Python) ------------------------------------------
    def _cotp(self, ctx: ChunkContext, idx: np.ndarray) -> pa.RecordBatch:
        env = ctx.pdu_envelope(idx)
        flows = ctx.track.pdus[idx, T.P_FLOW]
        rows: dict[str, list] = {
            k: []
            for k in (
                "tpdu_type",
                "dst_ref",
                "src_ref",
                "tpdu_class",
                "tpdu_size",
                "connection_type",
                "disconnect_reason",
                "src_tsap",
                "dst_tsap",
                "rack",
                "slot",
            )
        }
        for k, j in enumerate(idx):
            data = ctx.pdu_bytes(j)
            li = data[4]
            head = data[5 : 5 + li]
            ctype = head[0] & 0xF0
            dst_ref = int.from_bytes(head[1:3], "big") if len(head) >= 3 else None
            src_ref = int.from_bytes(head[3:5], "big") if len(head) >= 5 else None
            cls = size = conn = reason = None
            src = dst = None
            rack = slot = None
            if ctype in (0xE0, 0xD0) and len(head) >= 6:
                cls = head[5] >> 4
                p = 6
                while p + 2 <= len(head):
                    code, plen = head[p], head[p + 1]
                    val = head[p + 2 : p + 2 + plen]
                    if len(val) < plen:
                        break
                    if code == 0xC1:
                        src = _tsap(val)
                    elif code == 0xC2:
                        dst = _tsap(val)
                        if plen == 2:
                            conn = val[0]
                            rack, slot = val[1] >> 5, val[1] & 0x1F
                    elif code == 0xC0 and plen == 1 and 7 <= val[0] <= 13:
                        size = 1 << val[0]  # 128 .. 8192 octets
                    p += 2 + plen
                flow = int(flows[k])
                prev = self.tsaps.get(flow)
                if src is not None or dst is not None or prev is None:
                    self.tsaps[flow] = (
                        src,
                        dst,
                        -1 if rack is None else rack,
                        -1 if slot is None else slot,
                    )
            elif ctype == 0x80 and len(head) >= 6:
                reason = head[5]
            elif ctype == 0x70:
                src_ref = None
            rows["tpdu_type"].append(ctype)
            rows["dst_ref"].append(dst_ref)
            rows["src_ref"].append(src_ref if ctype not in (0x70,) else None)
            rows["tpdu_class"].append(cls)
            rows["tpdu_size"].append(size)
            rows["connection_type"].append(conn)
            rows["disconnect_reason"].append(reason)
            rows["src_tsap"].append(src)
            rows["dst_tsap"].append(dst)
            rows["rack"].append(rack)
            rows["slot"].append(slot)
        ctypes = np.array(rows["tpdu_type"], np.int64)
        conn_types = np.array([-1 if c is None else c for c in rows["connection_type"]], np.int64)
        batch = dict(env)
        batch.update(
            {
                "tpdu_type": pa.array(ctypes.astype(np.int16)),
                "tpdu_name": COTP_TYPES.names(ctypes),
                "dst_ref": pa.array(rows["dst_ref"], pa.int32()),
                "src_ref": pa.array(rows["src_ref"], pa.int32()),
                "tpdu_class": pa.array(rows["tpdu_class"], pa.int16()),
                "tpdu_size": pa.array(rows["tpdu_size"], pa.int32()),
                "connection_type": pa.array(rows["connection_type"], pa.int16()),
                "connection_type_name": CONNECTION_TYPES.optional_names(conn_types),
                "disconnect_reason": pa.array(rows["disconnect_reason"], pa.int16()),
                "src_tsap": _strings(rows["src_tsap"]),
                "dst_tsap": _strings(rows["dst_tsap"]),
                "rack": pa.array(rows["rack"], pa.int16()),
                "slot": pa.array(rows["slot"], pa.int16()),
            }
        )
        return pa.RecordBatch.from_pydict(batch, schema=COTP_SCHEMA)

    def _tsap_columns(self, flows: np.ndarray) -> dict[str, pa.Array]:
        src: list[str | None] = []
        dst: list[str | None] = []
        n = flows.shape[0]
        rack = np.full(n, -1, np.int64)
        slot = np.full(n, -1, np.int64)
        uniq, inv = np.unique(flows, return_inverse=True)
        u_src: list[str | None] = []
        u_dst: list[str | None] = []
        u_rack = np.full(uniq.shape[0], -1, np.int64)
        u_slot = np.full(uniq.shape[0], -1, np.int64)
        for k, f in enumerate(uniq.tolist()):
            t = self.tsaps.get(f)
            if t is None:
                u_src.append(None)
                u_dst.append(None)
            else:
                u_src.append(t[0])
                u_dst.append(t[1])
                u_rack[k], u_slot[k] = t[2], t[3]
        s_arr = _strings(u_src)
        d_arr = _strings(u_dst)
        ix = pa.array(inv.astype(np.int64))
        src_col = s_arr.take(ix)
        dst_col = d_arr.take(ix)
        rack = u_rack[inv]
        slot = u_slot[inv]
        del src, dst
        return {
            "src_tsap": src_col,
            "dst_tsap": dst_col,
            "rack": _col(rack, np.int16),
            "slot": _col(slot, np.int16),
        }

    # -- S7comm -----------------------------------------------------------------------------
    def _s7(self, ctx, idx, out, in_arena, length) -> pa.RecordBatch:
        n = idx.shape[0]
        P = ctx.track.pdus
        env = ctx.pdu_envelope(idx)
        buf, arena = ctx.chunk.buf, ctx.track.arena

        # variable items
        counts = out[:, NITEMS]
        starts = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=starts[1:])
        items = np.empty((int(starts[-1]), NICOL), np.int64)
        _items(buf, arena, in_arena, out, starts, items)
        dlen = np.maximum(items[:, I_DLEN], 0)
        dstarts = np.zeros(items.shape[0] + 1, np.int64)
        np.cumsum(dlen, out=dstarts[1:])
        data = np.empty(int(dstarts[-1]), np.uint8)
        item_arena = np.repeat(in_arena, counts)
        _gather(buf, arena, item_arena, items[:, I_DOFF], dlen, dstarts, data)
        has_data = items[:, I_DLEN] >= 0
        item_data = pa.BinaryArray.from_buffers(
            pa.binary(),
            items.shape[0],
            [
                pa.py_buffer(np.packbits(has_data, bitorder="little").tobytes()),
                pa.py_buffer(dstarts.astype(np.int32).tobytes()),
                pa.py_buffer(data.tobytes()),
            ],
        )

        ros = out[:, ROS]
        ud_type = out[:, UD_TYPE]
        is_req = (ros == 1) | ((ros == 7) & (ud_type == 1))
        # pairing: Job ↔ Ack/Ack_Data, Userdata request ↔ response (same PDU reference)
        space = np.where(ros == 7, np.where(ud_type == 0, 2, 1), 0)
        key2 = out[:, PDUREF] | (space << 16)
        flow = P[idx, T.P_FLOW]
        self._szl_units(out, flow)
        rich = self._rich(ctx, idx, out, is_req)  # reads requests only: before the pairing
        pi_m = rich["pi_meaning"]
        payload = np.stack([out[:, FUNC], out[:, UD_GROUP], out[:, UD_SUBF], pi_m], axis=1)
        matched, req_frame, req_ts, req_pl = self.matcher.match(
            flow, key2, is_req, P[idx, T.P_FRAME], P[idx, T.P_TS], payload
        )
        matched &= space != 2
        fill = matched & (out[:, FUNC] < 0) & (ros != 7)
        out[fill, FUNC] = req_pl[fill, 0]
        # an Ack_Data to a PI service means what its request's service means (_INSE, _DELE:
        # program; P_PROGRAM: control), not just "PI service"
        answer_pi = matched & ~is_req & (ros != 7) & (pi_m < 0) & (out[:, FUNC] == 0x28)
        pi_m[answer_pi] = req_pl[answer_pi, 3]

        fc = out[:, FUNC]
        group = out[:, UD_GROUP]
        subf = out[:, UD_SUBF]
        midx = np.where(fc >= 0, _M.func_lut[np.clip(fc, 0, 255)], -1)
        is_ud = (ros == 7) & (group >= 0)
        if is_ud.any():
            g = np.clip(group, 0, 63)
            sf = np.clip(subf, 0, 255) + 1
            midx = np.where(is_ud, _M.ud_lut[g, sf], midx)
        midx = np.where(pi_m >= 0, pi_m, midx)
        category, techniques = _M.columns(midx)

        ud_code = np.where((group >= 0) & (subf >= 0), group * 256 + subf, -1)
        err_combined = np.where(out[:, ERRCLS] >= 0, (out[:, ERRCLS] << 8) | out[:, ERRCOD], -1)

        area = items[:, I_AREA]
        rc = items[:, I_RC]
        batch = dict(env)
        batch.update(
            {
                "is_request": pa.array(is_req),
                "rosctr": pa.array(ros.astype(np.int16)),
                "rosctr_name": ROSCTR.names(ros),
                "pdu_ref": _col(out[:, PDUREF], np.int32),
                "param_length": _col(out[:, PARLG], np.int32),
                "data_length": _col(out[:, DATLG], np.int32),
                "error_class": _col(out[:, ERRCLS], np.int16),
                "error_class_name": ERROR_CLASSES.optional_names(out[:, ERRCLS]),
                "error_code": _col(out[:, ERRCOD], np.int16),
                "error_name": ERRORS.optional_names(err_combined),
                "func_code": _col(fc, np.int16),
                "func_name": FUNCTIONS.optional_names(fc),
                "category": category,
                "techniques": techniques,
                "item_count": _col(out[:, ITEMCNT], np.int16),
                "item_syntax_id": _list(starts, _col(items[:, I_SYNTAX], np.int16)),
                "item_area": _list(starts, _col(area, np.int16)),
                "item_area_name": _list(starts, AREAS.optional_names(area)),
                "item_db": _list(starts, _col(items[:, I_DB], np.int32)),
                "item_byte": _list(starts, _col(items[:, I_BYTE], np.int32)),
                "item_bit": _list(starts, _col(items[:, I_BIT], np.int8)),
                "item_transport_size": _list(starts, _col(items[:, I_TSIZE], np.int16)),
                "item_length": _list(starts, _col(items[:, I_LEN], np.int32)),
                "item_return_code": _list(starts, _col(rc, np.int16)),
                "item_return_name": _list(starts, RETURN_CODES.optional_names(rc)),
                "item_data": _list(starts, item_data),
                "pdu_length": _col(out[:, SETUP_PDU], np.int32),
                "max_amq_calling": _col(out[:, AMQ1], np.int32),
                "max_amq_called": _col(out[:, AMQ2], np.int32),
                "filename": _sparse_strings(n, rich["filename"]),
                "blocks": _sparse_lists(n, rich["blocks"]),
                "pi_service": _sparse_strings(n, rich["pi_service"]).dictionary_encode(),
                "pi_service_name": _sparse_strings(n, rich["pi_service_name"]).dictionary_encode(),
                "ud_type": _col(ud_type, np.int16),
                "ud_type_name": USERDATA_TYPES.optional_names(ud_type),
                "ud_group": _col(group, np.int16),
                "ud_group_name": USERDATA_GROUPS.optional_names(group),
                "ud_subfunc": _col(subf, np.int16),
                "ud_subfunc_name": USERDATA_SUBFUNCS.optional_names(ud_code),
                "ud_seq": _col(out[:, UD_SEQ], np.int16),
                "ud_last_unit": pa.array(out[:, UD_LAST] == 0, mask=out[:, UD_LAST] < 0),
                "ud_error_code": _col(out[:, UD_ERR], np.int32),
                "ud_error_name": ERRORS.optional_names(out[:, UD_ERR]),
                "szl_id": _col(out[:, SZL_ID], np.int32),
                "szl_index": _col(out[:, SZL_IDX], np.int32),
                "szl_name": SZL_IDS.optional_names(out[:, SZL_ID]),
            }
        )
        for k in (
            "order_number",
            "hardware_version",
            "firmware_version",
            "plc_name",
            "module_name",
            "plant_id",
            "copyright",
            "serial_number",
            "module_type",
        ):
            batch[k] = _sparse_strings(n, rich[k])
        batch.update(self._tsap_columns(flow))
        batch.update(pairing_columns(matched, req_frame, req_ts, P[idx, T.P_TS]))
        bad = np.flatnonzero(out[:, STATUS] != OK)
        if bad.shape[0]:
            ctx.weird(
                take_envelope(env, bad),
                [WEIRD[int(s)] for s in out[bad, STATUS]],
                [
                    f"rosctr {int(r)}, function {int(f)}, {int(ln)} bytes"
                    for r, f, ln in zip(ros[bad], fc[bad], length[bad], strict=True)
                ],
                "s7comm",
            )
        return pa.RecordBatch.from_pydict(batch, schema=SCHEMA)

    def _szl_units(self, out: np.ndarray, flow: np.ndarray) -> None:
        """Read SZL answers in several data units: later units take the first unit's id."""
        rows = np.flatnonzero(
            (out[:, ROS] == 7)
            & (out[:, UD_GROUP] == 4)
            & (out[:, UD_SUBF] == 1)
            & (out[:, UD_TYPE] == 2)
            & (out[:, UD_DUREF] > 0)
        )
        for k in rows.tolist():
            key = (int(flow[k]), int(out[k, UD_DUREF]))
            first_unit = self.szl_units.get(key)
            if first_unit is not None:
                out[k, SZL_ID], out[k, SZL_IDX] = first_unit
            elif out[k, SZL_ID] >= 0 and out[k, UD_LAST] != 0:
                self.szl_units[key] = (int(out[k, SZL_ID]), int(out[k, SZL_IDX]))
            if out[k, UD_LAST] == 0:
                self.szl_units.pop(key, None)
        if len(self.szl_units) > 10_000:  # answers never finished: forget the oldest
            for key in list(self.szl_units)[:5_000]:
                del self.szl_units[key]

    def _rich(self, ctx, idx, out, is_req) -> dict[str, Any]:
        """Block transfers, PI services, PLC stop and SZL identity answers (rare: Python)."""
        n = idx.shape[0]
        res: dict[str, Any] = {
            k: {}
            for k in (
                "filename",
                "blocks",
                "pi_service",
                "pi_service_name",
                "order_number",
                "hardware_version",
                "firmware_version",
                "plc_name",
                "module_name",
                "plant_id",
                "copyright",
                "serial_number",
                "module_type",
            )
        }
        pi_meaning = np.full(n, -1, np.int64)
        res["pi_meaning"] = pi_meaning
        fc = out[:, FUNC]
        ros = out[:, ROS]
        block_fc = (ros == 1) & (fc >= 0x1A) & (fc <= 0x1F)
        pi_fc = (ros == 1) & ((fc == 0x28) | (fc == 0x29))
        szl = (
            (ros == 7)
            & (out[:, UD_TYPE] == 2)
            & np.isin(out[:, SZL_ID], (0x0011, 0x0111, 0x001C, 0x011C))
        )
        for k in np.flatnonzero(block_fc | pi_fc | szl):
            j = int(idx[k])
            data = ctx.pdu_bytes(j)
            base = int(out[k, S7OFF]) - int(ctx.track.pdus[j, T.P_OFF])
            par = int(out[k, PAROFF]) - int(out[k, S7OFF]) + base
            pend = int(out[k, PEND]) - int(out[k, S7OFF]) + base
            dat = int(out[k, DATOFF]) - int(out[k, S7OFF]) + base
            dend = int(out[k, DEND]) - int(out[k, S7OFF]) + base
            param = data[par:pend]
            try:
                if block_fc[k]:
                    self._block_transfer(res, k, param)
                elif pi_fc[k]:
                    self._pi(res, k, param, int(fc[k]), pi_meaning)
                else:
                    self._szl(res, k, data[dat:dend], int(out[k, SZL_ID]))
            except (IndexError, ValueError, UnicodeDecodeError):
                env = ctx.pdu_envelope(idx[k : k + 1])
                ctx.weird(env, ["s7comm_bad_parameters"], [f"function {int(fc[k])}"], "s7comm")
        return res

    @staticmethod
    def _block_transfer(res, k, param: bytes) -> None:
        # func, status, 2 bytes, 4 bytes (upload id), filename length, filename
        if len(param) < 9:
            return
        flen = param[8]
        raw = param[9 : 9 + flen]
        if len(raw) < flen or flen == 0:
            return
        name = raw.decode("latin-1")
        res["filename"][k] = name  # type: ignore[index]
        block = _block_name(name)
        res["blocks"][k] = [block] if block else []  # type: ignore[index]

    @staticmethod
    def _pi(res, k, param: bytes, fc: int, pi_meaning) -> None:
        blocks: list[str] = []
        if fc == 0x28:
            # func, 7 unknown bytes, parameter block length, parameter block, name length, name
            if len(param) < 10:
                return
            plen = int.from_bytes(param[8:10], "big")
            pblock = param[10 : 10 + plen]
            q = 10 + plen
            if q >= len(param):
                return
            slen = param[q]
            service = param[q + 1 : q + 1 + slen].decode("latin-1")
            if service in ("_INSE", "_INS2", "_DELE") and len(pblock) >= 2:
                count = pblock[0]
                for i in range(count):
                    raw = pblock[2 + 8 * i : 10 + 8 * i]
                    if len(raw) < 8:
                        break
                    b = _block_name(raw.decode("latin-1"))
                    if b:
                        blocks.append(b)
        else:
            # PLC stop: func, 5 unknown bytes, name length, name
            if len(param) < 7:
                return
            slen = param[6]
            service = param[7 : 7 + slen].decode("latin-1")
        res["pi_service"][k] = service
        m = PI_SERVICES.rows.get(service)
        res["pi_service_name"][k] = m.name if m else f"unknown_{service}"
        if m is not None and fc == 0x28:
            pi_meaning[k] = _M.index[("p", service)]
        res["blocks"][k] = blocks

    @staticmethod
    def _szl(res, k, data: bytes, szl_id: int) -> None:
        # return code, transport size, length, szl id, index, record length, record count
        if len(data) < 12:
            return
        rlen = int.from_bytes(data[8:10], "big")
        rcnt = int.from_bytes(data[10:12], "big")
        if rlen < 2:
            return
        recs = data[12:]
        for i in range(rcnt):
            r = recs[i * rlen : (i + 1) * rlen]
            if len(r) < rlen:
                break
            index = int.from_bytes(r[0:2], "big")
            if szl_id & 0xFF == 0x11 and rlen >= 28:
                mlfb = _ascii(r[2:22])
                ausbg = int.from_bytes(r[24:26], "big")
                ausbe = int.from_bytes(r[26:28], "big")
                if index == 0x0001:
                    res["order_number"][k] = mlfb or None
                elif index == 0x0006:
                    res["hardware_version"][k] = _version(ausbg, ausbe)
                    if res["order_number"].get(k) is None and mlfb:
                        res["order_number"][k] = mlfb
                elif index == 0x0007:
                    res["firmware_version"][k] = _version(ausbg, ausbe)
            elif szl_id & 0xFF == 0x1C:
                text = _ascii(r[2:34]) if index not in (0x0009, 0x000A) else None
                key = {
                    1: "plc_name",
                    2: "module_name",
                    3: "plant_id",
                    4: "copyright",
                    5: "serial_number",
                    7: "module_type",
                }.get(index)
                if key is not None:
                    res[key][k] = text


def _version(ausbg: int, ausbe: int) -> str:
    """Hardware / firmware version of an SZL 0x0011 record ('V3.2.6', or the number)."""
    if ausbg >> 8 == ord("V"):
        return f"V{ausbg & 0xFF}.{ausbe >> 8}.{ausbe & 0xFF}"
    return str(ausbe)


def _decode_plus(
    self: S7commDissector, ctx: ChunkContext, idx: np.ndarray, out: np.ndarray
) -> pa.RecordBatch:
    """S7comm-plus rows; a PDU without trailer continues in the next one of its direction."""
    P = ctx.track.pdus
    env = ctx.pdu_envelope(idx)
    n = idx.shape[0]
    flow = P[idx, T.P_FLOW]
    orig = P[idx, T.P_ORIG] != 0
    trailer = out[:, P_TRAILER] == 1
    # a PDU without trailer continues in the next PDU of the same direction
    continued = np.zeros(n, bool)
    order = np.lexsort((np.arange(n), orig, flow))
    sf, so, st = flow[order], orig[order], trailer[order]
    same = np.zeros(n, bool)
    same[1:] = (sf[1:] == sf[:-1]) & (so[1:] == so[:-1])
    prev_open = np.zeros(n, bool)
    prev_open[1:] = same[1:] & ~st[:-1]
    firsts = np.flatnonzero(~same)
    for f in firsts:
        prev_open[f] = self.plus_open.get((int(sf[f]), bool(so[f])), False)
    continued[order] = prev_open
    lasts = np.flatnonzero(np.append(~same[1:], True))
    for f in lasts:
        key = (int(sf[f]), bool(so[f]))
        if st[f]:
            self.plus_open.pop(key, None)
        else:
            self.plus_open[key] = True
    op = np.where(continued, -1, out[:, P_OPCODE])
    func = np.where(continued, -1, out[:, P_FUNC])
    seq = np.where(continued, -1, out[:, P_SEQ])
    session = np.where(continued, -1, out[:, P_SESSION])
    is_req = op == 0x31
    is_resp = (op == 0x32) | (op == 0x02)
    matched, req_frame, req_ts, _pl = self.plus_matcher.match(
        flow,
        np.where(is_req | is_resp, seq, -2),
        is_req,
        P[idx, T.P_FRAME],
        P[idx, T.P_TS],
        func.reshape(n, 1),
    )
    matched &= is_resp
    fidx = np.full(n, -1, np.int64)
    cat_names = sorted({m.category for m in PLUS_FUNCTIONS.rows.values() if m.category})
    cat_of = {c: i for i, c in enumerate(cat_names)}
    for code, m in PLUS_FUNCTIONS.rows.items():
        if m.category:
            fidx[func == code] = cat_of[m.category]
    batch = dict(env)
    batch.update(
        {
            "is_request": pa.array(is_req),
            "version": _col(out[:, P_VER], np.int16),
            "version_name": PLUS_VERSIONS.optional_names(out[:, P_VER]),
            "data_length": _col(out[:, P_DLEN], np.int32),
            "continued": pa.array(continued),
            "opcode": _col(op, np.int16),
            "opcode_name": PLUS_OPCODES.optional_names(op),
            "function": _col(func, np.int32),
            "function_name": PLUS_FUNCTIONS.optional_names(func),
            "category": pa.DictionaryArray.from_arrays(
                pa.array(np.maximum(fidx, 0).astype(np.int32), mask=fidx < 0),
                pa.array(cat_names, pa.string()),
            ),
            "seq_num": _col(seq, np.int32),
            "session_id": _col(session, np.int64),
        }
    )
    batch.update(self._tsap_columns(flow))
    batch.update(pairing_columns(matched, req_frame, req_ts, P[idx, T.P_TS]))
    return pa.RecordBatch.from_pydict(batch, schema=PLUS_SCHEMA)


DISSECTOR = S7commDissector
