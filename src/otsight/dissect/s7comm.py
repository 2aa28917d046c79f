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

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.capture import _track as T
from otsight.capture import framing
from otsight.dissect import sparse
from otsight.dissect.base import (
    ChunkContext,
    Dissector,
    Meaning,
    MeaningColumns,
    Semantics,
    null_negative_rows,
    paired_columns,
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
# rows of the S7 kernel's int32 output, one per field (-1 = absent; PAROFF .. DEND are
# offsets in the PDU). FUNC, UD_GROUP, UD_SUBF and PI_M (the PI service's meaning) lead: they
# are the payload a request hands to its response, passed to the matcher as a view.
(
    FUNC,
    UD_GROUP,
    UD_SUBF,
    PI_M,
    ROS,
    PDUREF,
    PARLG,
    DATLG,
    ERRCLS,
    ERRCOD,
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
    UD_SEQ,
    UD_LAST,
    UD_ERR,
    UD_DUREF,
    SZL_ID,
    SZL_IDX,
    STATUS,
    EOT,
    KEY,  # pairing key: PDU reference, and Userdata request / response apart from Jobs
    UD_CODE,  # Userdata group << 8 | sub-function
    ERR_ALL,  # header error class << 8 | code
) = range(31)
NCOL = 31

# rows of the S7comm-plus kernel's output
P_VER, P_DLEN, P_OPCODE, P_FUNC, P_SEQ, P_SESSION, P_TRAILER = range(7)
NPCOL = 7

# rows of the PDU columns read from the track table
G_IN_ARENA, G_OFF, G_LEN, G_FLOW, G_FRAME, G_TS, G_ORIG = range(7)
NG = 7

# what a TPKT PDU carries (K_NONE: its COTP header is malformed)
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

# rows of the item kernel's int32 output (-1 = absent)
I_SYNTAX, I_AREA, I_DB, I_BYTE, I_BIT, I_TSIZE, I_LEN, I_RC, I_DLEN = range(9)
NICOL = 9

# output columns built from those rows, by Arrow type
INT32_COLS = (
    ("pdu_ref", PDUREF),
    ("param_length", PARLG),
    ("data_length", DATLG),
    ("pdu_length", SETUP_PDU),
    ("max_amq_calling", AMQ1),
    ("max_amq_called", AMQ2),
    ("ud_error_code", UD_ERR),
    ("szl_id", SZL_ID),
    ("szl_index", SZL_IDX),
)
INT16_COLS = (
    ("rosctr", ROS),
    ("error_class", ERRCLS),
    ("error_code", ERRCOD),
    ("func_code", FUNC),
    ("item_count", ITEMCNT),
    ("ud_type", UD_TYPE),
    ("ud_group", UD_GROUP),
    ("ud_subfunc", UD_SUBF),
    ("ud_seq", UD_SEQ),
)
ITEM_INT16_COLS = (
    ("item_syntax_id", I_SYNTAX),
    ("item_area", I_AREA),
    ("item_transport_size", I_TSIZE),
    ("item_return_code", I_RC),
)
ITEM_INT32_COLS = (("item_db", I_DB), ("item_byte", I_BYTE), ("item_length", I_LEN))
ITEM_INT8_COLS = (("item_bit", I_BIT),)

# rows that need Python (rare): block transfer, PI service / PLC stop, SZL identity answer
R_BLOCK, R_PI, R_SZL = 0, 1, 2


@njit(cache=True, inline="always")
def _b16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(cache=True, inline="always")
def _data_bytes(tsize, ln):
    """Byte length of a data item: sizes 3, 4, 5 count bits."""
    if tsize == 3 or tsize == 4 or tsize == 5:
        return (ln + 7) >> 3
    return ln


@njit(cache=True, inline="always")
def _tpdu(b, p, ln):
    """What the TPKT PDU ``b[p:p + ln]`` carries, by its COTP header: (kind, offset of the
    DT TPDU's payload, length indicator)."""
    if ln < 7:
        return K_NONE, -1, -1
    end = p + ln
    li = np.int64(b[p + 4])
    ctype = np.int64(b[p + 5]) & 0xF0
    if li < 1 or p + 5 + li > end:
        return K_NONE, -1, li
    if ctype != 0xF0:
        if ctype == 0xE0 or ctype == 0xD0 or ctype == 0x80 or ctype == 0xC0 or ctype == 0x70:
            return K_CONN, -1, li
        return K_OTHER, -1, li
    s = p + 5 + li
    avail = end - s
    if avail < 1:
        return K_OTHER, s, li
    pid = b[s]
    if pid == 0x72 and avail >= 4:
        return K_PLUS, s, li
    if pid != 0x32 or avail < 2:
        return K_OTHER, s, li
    ros = np.int64(b[s + 1])
    if ros < 1 or ros > 7:
        return K_OTHER, s, li  # not S7 (Wireshark's heuristic rejects it too)
    return K_S7, s, li


@njit(cache=True, inline="always")
def _s7_fields(b, p, end, s, li, out, j):
    """S7comm header, parameters and Userdata head of the S7 PDU ``b[p:end]`` (S7 from
    ``s`` on; ``li``: COTP length indicator) into ``out[:, j]``."""
    out[STATUS, j] = OK
    out[NITEMS, j] = 0
    if li >= 2:
        out[EOT, j] = np.int64(b[p + 6]) >> 7
    avail = end - s
    ros = np.int64(b[s + 1])
    out[ROS, j] = ros
    hdr = 12 if (ros == 2 or ros == 3) else 10
    if avail < hdr:
        out[STATUS, j] = TRUNCATED
        if avail >= 6:
            out[PDUREF, j] = _b16(b, s + 4)
        return
    if ros != 1 and ros != 2 and ros != 3 and ros != 7:
        out[STATUS, j] = BAD_ROSCTR
    out[PDUREF, j] = _b16(b, s + 4)
    parlg = _b16(b, s + 6)
    datlg = _b16(b, s + 8)
    out[PARLG, j] = parlg
    out[DATLG, j] = datlg
    if hdr == 12:
        out[ERRCLS, j] = b[s + 10]
        out[ERRCOD, j] = b[s + 11]
    par = s + hdr
    dat = par + parlg
    pend = min(dat, end)
    dend = min(dat + datlg, end)
    if dat + datlg > end and out[EOT, j] != 0:
        out[STATUS, j] = LENGTHS
    out[PAROFF, j] = par - p
    out[DATOFF, j] = dat - p
    out[PEND, j] = pend - p
    out[DEND, j] = dend - p
    if ros == 1 or ros == 3:
        if par >= pend:
            return
        fc = np.int64(b[par])
        out[FUNC, j] = fc
        if fc == 0xF0:
            if par + 8 <= pend:
                out[AMQ1, j] = _b16(b, par + 2)
                out[AMQ2, j] = _b16(b, par + 4)
                out[SETUP_PDU, j] = _b16(b, par + 6)
        elif fc == 4 or fc == 5:
            if par + 2 > pend:
                out[STATUS, j] = ITEMS
                return
            cnt = np.int64(b[par + 1])
            out[ITEMCNT, j] = cnt
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
            out[NITEMS, j] = k
            if k < cnt and out[STATUS, j] == OK and out[EOT, j] != 0:
                out[STATUS, j] = ITEMS
    elif ros == 7:
        if par + 8 > pend:
            out[STATUS, j] = BAD_UD_HEAD
            return
        head = (np.int64(b[par]) << 16) | _b16(b, par + 1)
        if head != 0x000112 and head != 0x010010:  # 0x010010: mode-transition push
            out[STATUS, j] = BAD_UD_HEAD
        plen = np.int64(b[par + 3])
        tg = np.int64(b[par + 5])
        out[UD_TYPE, j] = tg >> 6
        out[UD_GROUP, j] = tg & 0x3F
        out[UD_SUBF, j] = b[par + 6]
        out[UD_SEQ, j] = b[par + 7]
        if plen >= 8 and par + 12 <= pend:
            out[UD_DUREF, j] = b[par + 8]
            out[UD_LAST, j] = b[par + 9]
            out[UD_ERR, j] = _b16(b, par + 10)
        if (tg & 0x3F) == 4 and b[par + 6] == 1 and dat + 8 <= dend and b[dat] == 0xFF:
            # Read SZL: id and index lead the data (of the first unit of an answer;
            # the dissector gives later units their first unit's id)
            out[SZL_ID, j] = _b16(b, dat + 4)
            out[SZL_IDX, j] = _b16(b, dat + 6)


@njit(cache=True, nogil=True, _nrt=False)
def _fields(buf, arena, P, idx, g, kind, out, s7_rows, is_req):
    """Each TPKT PDU ``idx[j]``: its columns of the track table into ``g[:, j]`` (one read of
    each row, not one fancy index per column) and its kind; the m-th S7 PDU's fields into
    ``out[:, m]`` (the caller fills ``out`` with -1), with ``s7_rows[m] = j`` and
    ``is_req[m]``: Job or Userdata request. Returns the number of S7 PDUs."""
    m = 0
    for j in range(idx.shape[0]):
        r = idx[j]
        g[G_IN_ARENA, j] = P[r, T.P_IN_ARENA]
        g[G_OFF, j] = P[r, T.P_OFF]
        g[G_LEN, j] = P[r, T.P_LEN]
        g[G_FLOW, j] = P[r, T.P_FLOW]
        g[G_FRAME, j] = P[r, T.P_FRAME]
        g[G_TS, j] = P[r, T.P_TS]
        g[G_ORIG, j] = P[r, T.P_ORIG]
        b = arena if g[G_IN_ARENA, j] else buf
        p = g[G_OFF, j]
        ln = g[G_LEN, j]
        k, s, li = _tpdu(b, p, ln)
        kind[j] = k
        if k == K_S7:
            _s7_fields(b, p, p + ln, s, li, out, m)
            s7_rows[m] = j
            m += 1
    for j in range(m):
        ros = out[ROS, j]
        ud_type = out[UD_TYPE, j]
        is_req[j] = ros == 1 or (ros == 7 and ud_type == 1)
        # pairing: Job ↔ Ack/Ack_Data, Userdata request ↔ response (same PDU reference)
        space = 0
        if ros == 7:
            space = 2 if ud_type == 0 else 1
        out[KEY, j] = out[PDUREF, j] | (space << 16)
        if out[UD_GROUP, j] >= 0 and out[UD_SUBF, j] >= 0:
            out[UD_CODE, j] = out[UD_GROUP, j] * 256 + out[UD_SUBF, j]
        if out[ERRCLS, j] >= 0:
            out[ERR_ALL, j] = (out[ERRCLS, j] << 8) | out[ERRCOD, j]
    return m


@njit(cache=True, nogil=True, _nrt=False)
def _plus_fields(buf, arena, in_arena, off, length, out):
    """S7comm-plus header of PDU ``j`` into ``out[:, j]`` (the caller fills it with -1)."""
    for j in range(off.shape[0]):
        b = arena if in_arena[j] else buf
        p = off[j]
        end = p + length[j]
        _, s, _li = _tpdu(b, p, length[j])
        ver = np.int64(b[s + 1])
        out[P_VER, j] = ver
        dl = _b16(b, s + 2)
        out[P_DLEN, j] = dl
        t = s + 4 + dl
        if t + 4 <= end and b[t] == 0x72:
            out[P_TRAILER, j] = 1
        else:
            out[P_TRAILER, j] = 0
        q = s + 4
        if ver == 3 and q < end:
            q += 1 + np.int64(b[q])  # integrity part: digest length + digest
        if q < end and ver != 0xFE:
            op = np.int64(b[q])
            out[P_OPCODE, j] = op
            if (op == 0x31 or op == 0x32 or op == 0x02) and q + 9 <= end:
                out[P_FUNC, j] = _b16(b, q + 3)
                out[P_SEQ, j] = _b16(b, q + 7)
                if op == 0x31 and q + 13 <= end:
                    out[P_SESSION, j] = (_b16(b, q + 9) << 16) | _b16(b, q + 11)


@njit(cache=True, nogil=True, _nrt=False)
def _item_data_bound(out):
    """Bytes enough for the data of every PDU's items: it lies in the PDU's data part, one
    item after the other."""
    bound = 0
    for j in range(out.shape[1]):
        if out[NITEMS, j] > 0:
            bound += max(out[DEND, j] - out[DATOFF, j], 0)
    return bound


@njit(cache=True, nogil=True, _nrt=False)
def _items(buf, arena, in_arena, off, out, starts, items, offsets, bits, data):
    """Variable items of Read / Write Var PDUs into ``items[:, starts[j]:starts[j+1]]`` (the
    caller fills ``items`` with -1), and their data as the buffers of an Arrow binary column:
    ``offsets``, validity ``bits`` (an item without a data part is null) and the bytes in
    ``data`` (sized by ``_item_data_bound``; returns how many), copied while the PDU is at
    hand. Allocating nothing, the kernel runs without reference counting."""
    n = out.shape[1]
    pos = 0
    offsets[0] = 0
    for i in range(bits.shape[0]):
        bits[i] = 0
    for j in range(n):
        cnt = out[NITEMS, j]
        if cnt <= 0:
            continue
        b = arena if in_arena[j] else buf
        p = off[j]
        s0 = starts[j]
        ros = out[ROS, j]
        fc = out[FUNC, j]
        pend = p + out[PEND, j]
        dend = p + out[DEND, j]
        if ros == 1:
            q = p + out[PAROFF, j] + 2
            for k in range(cnt):
                sl = np.int64(b[q + 1])
                if sl >= 1 and q + 3 <= pend:
                    items[I_SYNTAX, s0 + k] = b[q + 2]
                if b[q + 2] == 0x10 and sl >= 10 and q + 12 <= pend:
                    items[I_TSIZE, s0 + k] = b[q + 3]
                    items[I_LEN, s0 + k] = _b16(b, q + 4)
                    items[I_DB, s0 + k] = _b16(b, q + 6)
                    items[I_AREA, s0 + k] = b[q + 8]
                    addr = (np.int64(b[q + 9]) << 16) | _b16(b, q + 10)
                    ts = np.int64(b[q + 3])
                    if ts >= 28 and ts <= 31:  # timers and counters: a number, no bit
                        items[I_BYTE, s0 + k] = addr & 0xFFFF
                    else:
                        items[I_BYTE, s0 + k] = addr >> 3
                        items[I_BIT, s0 + k] = addr & 7
                q += 2 + sl
            if fc == 5:
                # the values to write: one data item per variable item
                q = p + out[DATOFF, j]
                for k in range(cnt):
                    if q + 4 > dend:
                        break
                    dl = _data_bytes(np.int64(b[q + 1]), _b16(b, q + 2))
                    dl = min(dl, dend - q - 4)
                    items[I_DLEN, s0 + k] = dl
                    for t in range(dl):
                        data[pos + t] = b[q + 4 + t]
                    pos += dl
                    q2 = q + 4 + dl
                    if (dl & 1) and k + 1 < cnt:
                        q2 += 1
                    q = q2
        elif fc == 4:
            q = p + out[DATOFF, j]
            for k in range(cnt):
                items[I_RC, s0 + k] = b[q]
                items[I_TSIZE, s0 + k] = b[q + 1]
                items[I_LEN, s0 + k] = _b16(b, q + 2)
                dl = 0
                if b[q] == 0xFF:
                    dl = min(_data_bytes(np.int64(b[q + 1]), _b16(b, q + 2)), dend - q - 4)
                items[I_DLEN, s0 + k] = dl
                for t in range(dl):
                    data[pos + t] = b[q + 4 + t]
                pos += dl
                q2 = q + 4 + dl
                if (dl & 1) and k + 1 < cnt:
                    q2 += 1
                q = q2
        else:
            q = p + out[DATOFF, j]
            for k in range(cnt):
                items[I_RC, s0 + k] = b[q + k]
        # data items are a prefix of a PDU's items, in order: offsets follow
        for i in range(s0, s0 + cnt):
            dl = items[I_DLEN, i]
            if dl >= 0:
                bits[i >> 3] |= np.uint8(1 << (i & 7))
            offsets[i + 1] = offsets[i] + max(dl, 0)
    return pos


@njit(cache=True, nogil=True, _nrt=False)
def _select(out, units, rich, what):
    """Rows that need Python: Read SZL answers in data units (``units``), and block
    transfers, PI services / PLC stop and SZL answers (``rich``, with ``what``; an SZL row
    is one of the identity lists, or a later unit that may take a first unit's id).
    Returns how many of ``units`` and of ``rich`` are filled (the caller's arrays)."""
    nu = 0
    nr = 0
    n = out.shape[1]
    for j in range(n):
        ros = out[ROS, j]
        if ros == 7:
            if out[UD_TYPE, j] != 2:
                continue
            unit = out[UD_GROUP, j] == 4 and out[UD_SUBF, j] == 1 and out[UD_DUREF, j] > 0
            if unit:
                units[nu] = j
                nu += 1
            sid = out[SZL_ID, j]
            if unit or sid == 0x0011 or sid == 0x0111 or sid == 0x001C or sid == 0x011C:
                rich[nr] = j
                what[nr] = R_SZL
                nr += 1
        elif ros == 1:
            fc = out[FUNC, j]
            if fc >= 0x1A and fc <= 0x1F:
                rich[nr] = j
                what[nr] = R_BLOCK
                nr += 1
            elif fc == 0x28 or fc == 0x29:
                rich[nr] = j
                what[nr] = R_PI
                nr += 1
    return nu, nr


@njit(cache=True, nogil=True, _nrt=False)
def _complete(out, is_req, matched, src, carried, carried_pl, func_lut, ud_lut, midx):
    """After pairing: a response without parameters takes its request's function, an answer
    to a PI service its service's meaning; ``midx``: each PDU's meaning (PI service >
    Userdata group and sub-function > function code; -1 = none). ``matched`` is cleared
    for Userdata pushes.

    A matched row's request is ``src[j]``: one of the ``carried`` requests of earlier chunks
    (``carried_pl``: the ``FUNC`` … ``PI_M`` fields), else a column of ``out`` read in place
    (this loop changes responses only)."""
    for j in range(out.shape[1]):
        ros = out[ROS, j]
        m = matched[j] and not (ros == 7 and out[UD_TYPE, j] == 0)
        matched[j] = m
        if m and ros != 7:
            r = src[j]
            if r < carried:
                rfunc, rpim = carried_pl[r, 0], carried_pl[r, PI_M - FUNC]
            else:
                rfunc, rpim = np.int64(out[FUNC, r - carried]), np.int64(out[PI_M, r - carried])
            if out[FUNC, j] < 0:
                out[FUNC, j] = rfunc
            # an Ack_Data to a PI service means what its request's service means (_INSE,
            # _DELE: program; P_PROGRAM: control), not just "PI service"
            if not is_req[j] and out[PI_M, j] < 0 and out[FUNC, j] == 0x28:
                out[PI_M, j] = rpim
        fc = out[FUNC, j]
        mi = func_lut[min(fc, 255)] if fc >= 0 else -1
        group = out[UD_GROUP, j]
        if ros == 7 and group >= 0:
            mi = ud_lut[min(group, 63), min(max(out[UD_SUBF, j], 0), 255) + 1]
        if out[PI_M, j] >= 0:
            mi = out[PI_M, j]
        midx[j] = mi


@njit(cache=True, inline="always")
def _slot(keys, slot, x):
    """Slot of ``x`` in an open-addressing table (a free one when absent)."""
    mask = keys.shape[0] - 1
    h = x * np.int64(-7046029254386353131)
    h ^= h >> np.int64(29)
    s = h & mask
    while slot[s] >= 0 and keys[s] != x:
        s = (s + 1) & mask
    return s


@njit(cache=True, nogil=True)
def _factorize(v):
    """Distinct values of ``v`` (in order of first appearance) and each row's index into
    them: a hash table sized by the distinct values (a chunk has few flows), no sort."""
    n = v.shape[0]
    keys = np.empty(64, np.int64)
    slot = np.full(64, -1, np.int64)
    uniq = np.empty(n, np.int64)
    inv = np.empty(n, np.int64)
    k = 0
    for i in range(n):
        x = v[i]
        if i > 0 and x == v[i - 1]:  # rows of a flow come in runs
            inv[i] = inv[i - 1]
            continue
        s = _slot(keys, slot, x)
        if slot[s] < 0:
            if 2 * (k + 1) > keys.shape[0]:  # grow, keeping the table at most half full
                keys = np.empty(2 * keys.shape[0], np.int64)
                slot = np.full(keys.shape[0], -1, np.int64)
                for u in range(k):
                    t = _slot(keys, slot, uniq[u])
                    keys[t] = uniq[u]
                    slot[t] = u
                s = _slot(keys, slot, x)
            keys[s] = x
            slot[s] = k
            uniq[k] = x
            k += 1
        inv[i] = slot[s]
    return uniq[:k], inv


@njit(cache=True, nogil=True, _nrt=False)
def _per_row(per_key, inv, dst, bits, nulls):
    """``dst[c, j]`` = ``per_key[c, inv[j]]`` cast, with validity ``bits[c]`` (negative =
    absent) and null count ``nulls[c]``."""
    n = inv.shape[0]
    for c in range(per_key.shape[0]):
        count = 0
        for i in range(bits.shape[1]):
            bits[c, i] = 0
        for j in range(n):
            v = per_key[c, inv[j]]
            if v >= 0:
                dst[c, j] = v
                bits[c, j >> 3] |= np.uint8(1 << (j & 7))
            else:
                dst[c, j] = 0
                count += 1
        nulls[c] = count


# ---- helpers ------------------------------------------------------------------------------
def _strings(values: Sequence[str | None]) -> pa.Array:
    return pa.array(values, type=pa.string()).dictionary_encode()


def _list(offsets: pa.Array, values: pa.Array) -> pa.Array:
    return pa.ListArray.from_arrays(offsets, values)


def _ascii(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()


def _tsap(raw: bytes) -> str:
    """A TSAP as Wireshark shows it: text when printable, else hex."""
    text = raw.decode("latin-1")
    if len(raw) >= 3 and text.isascii() and text.isprintable():  # all of 0x20..0x7E
        return text
    return "0x" + raw.hex()


@functools.lru_cache(maxsize=4096)  # block transfers repeat the same few names
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
        self.columns_of = MeaningColumns(self.items)

    def columns(self, midx: np.ndarray) -> tuple[pa.Array, pa.Array]:
        """Category and techniques of each row's meaning (``midx``, -1: none)."""
        return self.columns_of(midx)


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
        n = idx.shape[0]
        if n == 0:
            return {}
        g = np.empty((NG, n), np.int64)
        kind = np.empty(n, np.int8)
        # one spare column: out[:, :m] is never C-contiguous, so the kernels taking it are
        # compiled for one array layout whatever the share of S7 PDUs in a chunk
        out = np.full((NCOL, n + 1), -1, np.int32)
        is_req = np.empty(n, np.bool_)
        s7_rows = np.empty(n, np.int64)
        m = _fields(
            ctx.chunk.buf, ctx.track.arena, ctx.track.pdus, idx, g, kind, out, s7_rows, is_req
        )
        result: dict[str, pa.RecordBatch] = {}

        bad_cotp = np.flatnonzero(kind == K_NONE)
        if bad_cotp.shape[0]:
            env = ctx.pdu_envelope(idx[bad_cotp])
            ctx.weird(
                env,
                [WEIRD[BAD_COTP]] * bad_cotp.shape[0],
                [f"{int(n)} bytes" for n in g[G_LEN, bad_cotp]],
                "cotp",
            )
        conn = np.flatnonzero(kind == K_CONN)
        if conn.shape[0]:
            result["cotp"] = self._cotp(ctx, idx[conn], np.take(g, conn, axis=1))
        if m:
            s7 = s7_rows[:m]
            result["s7comm"] = self._s7(
                ctx, idx[s7], np.take(g, s7, axis=1), out[:, :m], is_req[:m]
            )
        plus = np.flatnonzero(kind == K_PLUS)
        if plus.shape[0]:
            result["s7comm_plus"] = _decode_plus(self, ctx, idx[plus], np.take(g, plus, axis=1))
        return result

    # -- COTP connection management (rare: Python) ------------------------------------------
    def _cotp(self, ctx: ChunkContext, idx: np.ndarray, g: np.ndarray) -> pa.RecordBatch:
        env = ctx.pdu_envelope(idx)
        buf, arena = ctx.chunk.buf, ctx.track.arena
        found: list[tuple] = []  # one tuple per row, turned into columns at the end
        for in_arena, off, ln, flow in zip(
            g[G_IN_ARENA].tolist(),
            g[G_OFF].tolist(),
            g[G_LEN].tolist(),
            g[G_FLOW].tolist(),
            strict=True,
        ):
            data = (arena if in_arena else buf)[off : off + ln].tobytes()
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
            found.append(
                (
                    ctype,
                    dst_ref,
                    src_ref if ctype not in (0x70,) else None,
                    cls,
                    size,
                    conn,
                    reason,
                    src,
                    dst,
                    rack,
                    slot,
                )
            )
        rows = dict(
            zip(
                (
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
                ),
                (list(c) for c in zip(*found, strict=True)),
                strict=True,
            )
        )
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
        """TSAPs, rack and slot of each row's flow (looked up once per flow of the chunk)."""
        uniq, inv = _factorize(flows)
        per_flow = np.full((4, uniq.shape[0]), -1, np.int64)  # src, dst (string index), rack, slot
        names: tuple[dict[str, int], dict[str, int]] = ({}, {})
        for k, f in enumerate(uniq.tolist()):
            t = self.tsaps.get(f)
            if t is None:
                continue
            for side, tsap in enumerate(t[:2]):
                if tsap is not None:
                    per_flow[side, k] = names[side].setdefault(tsap, len(names[side]))
            per_flow[2, k], per_flow[3, k] = t[2], t[3]
        n = flows.shape[0]
        dst = np.empty((4, n), np.int32)
        bits = np.empty((4, (n + 7) >> 3), np.uint8)
        nulls = np.empty(4, np.int64)
        _per_row(per_flow, inv, dst, bits, nulls)
        cols: dict[str, pa.Array] = {}
        for c, name in enumerate(("src_tsap", "dst_tsap", "rack", "slot")):
            atype = pa.int32() if c < 2 else pa.int16()
            values = dst[c] if c < 2 else dst[c].astype(np.int16)
            null_count = int(nulls[c])
            if null_count == n:
                col = pa.nulls(n, atype)
            else:
                validity = pa.py_buffer(bits[c]) if null_count else None
                col = pa.Array.from_buffers(
                    atype, n, [validity, pa.py_buffer(values)], null_count=null_count
                )
            if c < 2:
                col = pa.DictionaryArray.from_arrays(col, pa.array(list(names[c]), pa.string()))
            cols[name] = col
        return cols

    # -- S7comm -----------------------------------------------------------------------------
    def _s7(self, ctx, idx, g, out, is_req) -> pa.RecordBatch:
        n = idx.shape[0]
        env = ctx.pdu_envelope(idx)
        buf, arena = ctx.chunk.buf, ctx.track.arena
        in_arena = g[G_IN_ARENA]

        # variable items
        starts = np.zeros(n + 1, np.int64)
        np.cumsum(out[NITEMS], out=starts[1:])
        n_items = int(starts[-1])
        items = np.full((NICOL, n_items), -1, np.int32)
        offsets = np.empty(n_items + 1, np.int32)
        bits = np.empty((n_items + 7) >> 3, np.uint8)
        data = np.empty(_item_data_bound(out), np.uint8)
        used = _items(buf, arena, in_arena, g[G_OFF], out, starts, items, offsets, bits, data)
        data = data[:used]
        item_data = pa.BinaryArray.from_buffers(
            pa.binary(), n_items, [pa.py_buffer(bits), pa.py_buffer(offsets), pa.py_buffer(data)]
        )

        flow = g[G_FLOW]
        units, rich_rows, what = (np.empty(n, np.int64) for _ in range(3))
        nu, nr = _select(out, units, rich_rows, what)
        units, rich_rows, what = units[:nu], rich_rows[:nr], what[:nr]
        self._szl_units(out, flow, units)
        rich = self._rich(ctx, idx, out, g, rich_rows, what)  # before the pairing
        paired = self.matcher.pair(
            flow, out[KEY], is_req, g[G_FRAME], g[G_TS], out[FUNC : PI_M + 1].T
        )
        matched = paired.matched
        midx = np.empty(n, np.int64)
        _complete(
            out, is_req, matched, paired.src, paired.carried, paired.carried_payload,
            _M.func_lut, _M.ud_lut, midx,
        )  # fmt: skip
        category, techniques = _M.columns(midx)

        item_starts = pa.array(starts.astype(np.int32))
        area = items[I_AREA]
        rc = items[I_RC]
        item_cols = null_negative_rows(items, ITEM_INT16_COLS, np.int16)
        item_cols.update(null_negative_rows(items, ITEM_INT32_COLS, np.int32))
        item_cols.update(null_negative_rows(items, ITEM_INT8_COLS, np.int8))
        item_cols["item_area_name"] = AREAS.optional_names(area)
        item_cols["item_return_name"] = RETURN_CODES.optional_names(rc)
        item_cols["item_data"] = item_data
        last = out[UD_LAST]
        batch = dict(env)
        batch["is_request"] = pa.array(is_req)
        batch.update(null_negative_rows(out, INT32_COLS, np.int32))
        batch.update(null_negative_rows(out, INT16_COLS, np.int16))
        batch.update({name: _list(item_starts, col) for name, col in item_cols.items()})
        batch.update(
            {
                "rosctr_name": ROSCTR.names(out[ROS]),
                "error_class_name": ERROR_CLASSES.optional_names(out[ERRCLS]),
                "error_name": ERRORS.optional_names(out[ERR_ALL]),
                "func_name": FUNCTIONS.optional_names(out[FUNC]),
                "category": category,
                "techniques": techniques,
                "blocks": sparse.string_lists(n, rich["blocks"]),
                "pi_service": sparse.dictionary(n, rich["pi_service"]),
                "pi_service_name": sparse.dictionary(n, rich["pi_service_name"]),
                "ud_type_name": USERDATA_TYPES.optional_names(out[UD_TYPE]),
                "ud_group_name": USERDATA_GROUPS.optional_names(out[UD_GROUP]),
                "ud_subfunc_name": USERDATA_SUBFUNCS.optional_names(out[UD_CODE]),
                "ud_last_unit": pa.array(last == 0, mask=last < 0),
                "ud_error_name": ERRORS.optional_names(out[UD_ERR]),
                "szl_name": SZL_IDS.optional_names(out[SZL_ID]),
            }
        )
        texts = (
            "filename",
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
        batch.update(sparse.strings(n, {k: rich[k] for k in texts}))
        batch.update(self._tsap_columns(flow))
        batch.update(paired_columns(paired, g[G_TS]))
        bad = np.flatnonzero(out[STATUS] != OK)
        if bad.shape[0]:
            ctx.weird(
                take_envelope(env, bad),
                [WEIRD[int(s)] for s in out[STATUS, bad]],
                [
                    f"rosctr {int(r)}, function {int(f)}, {int(ln)} bytes"
                    for r, f, ln in zip(out[ROS, bad], out[FUNC, bad], g[G_LEN, bad], strict=True)
                ],
                "s7comm",
            )
        return pa.RecordBatch.from_pydict(batch, schema=SCHEMA)

    def _szl_units(self, out: np.ndarray, flow: np.ndarray, rows: np.ndarray) -> None:
        """Read SZL answers in several data units (``rows``): later units take the first
        unit's id."""
        for k in rows.tolist():
            key = (int(flow[k]), int(out[UD_DUREF, k]))
            first_unit = self.szl_units.get(key)
            if first_unit is not None:
                out[SZL_ID, k], out[SZL_IDX, k] = first_unit
            elif out[SZL_ID, k] >= 0 and out[UD_LAST, k] != 0:
                self.szl_units[key] = (int(out[SZL_ID, k]), int(out[SZL_IDX, k]))
            if out[UD_LAST, k] == 0:
                self.szl_units.pop(key, None)
        if len(self.szl_units) > 10_000:  # answers never finished: forget the oldest
            for key in list(self.szl_units)[:5_000]:
                del self.szl_units[key]

    def _rich(self, ctx, idx, out, g, rows, what) -> dict[str, Any]:
        """Block transfers, PI services, PLC stop and SZL identity answers (rare: Python);
        a PI service's meaning goes to ``out[PI_M]``."""
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
        if rows.shape[0] == 0:
            return res
        buf, arena = ctx.chunk.buf, ctx.track.arena
        pi_meaning = out[PI_M]
        # one conversion to Python ints for all the rows, not one per value
        at = out[:, rows]
        for k, w, ina, p, par, pend, dat, dend, fc, szl_id in zip(
            rows.tolist(),
            what.tolist(),
            g[G_IN_ARENA, rows].tolist(),
            g[G_OFF, rows].tolist(),
            at[PAROFF].tolist(),
            at[PEND].tolist(),
            at[DATOFF].tolist(),
            at[DEND].tolist(),
            at[FUNC].tolist(),
            at[SZL_ID].tolist(),
            strict=True,
        ):
            if w == R_SZL and szl_id not in (0x0011, 0x0111, 0x001C, 0x011C):
                continue  # a later data unit of another list
            b = arena if ina else buf
            try:
                if w == R_BLOCK:
                    self._block_transfer(res, k, b[p + par : p + pend].tobytes())
                elif w == R_PI:
                    self._pi(res, k, b[p + par : p + pend].tobytes(), fc, pi_meaning)
                else:
                    self._szl(res, k, b[p + dat : p + dend].tobytes(), szl_id)
            except (IndexError, ValueError, UnicodeDecodeError):
                env = ctx.pdu_envelope(idx[k : k + 1])
                ctx.weird(env, ["s7comm_bad_parameters"], [f"function {fc}"], "s7comm")
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


def _plus_categories() -> tuple[np.ndarray, pa.Array]:
    """Category index of each S7comm-plus function code (-1: none), and their names."""
    cat_names = sorted({m.category for m in PLUS_FUNCTIONS.rows.values() if m.category})
    cat_of = {c: i for i, c in enumerate(cat_names)}
    lut = np.full(max(int(c) for c in PLUS_FUNCTIONS.rows) + 1, -1, np.int64)  # type: ignore[call-overload]
    for code, m in PLUS_FUNCTIONS.rows.items():
        if m.category:
            lut[int(code)] = cat_of[m.category]  # type: ignore[call-overload]
    return lut, pa.array(cat_names, pa.string())


PLUS_CAT_LUT, PLUS_CATEGORY_NAMES = _plus_categories()


def _decode_plus(
    self: S7commDissector, ctx: ChunkContext, idx: np.ndarray, g: np.ndarray
) -> pa.RecordBatch:
    """S7comm-plus rows; a PDU without trailer continues in the next one of its direction."""
    env = ctx.pdu_envelope(idx)
    n = idx.shape[0]
    out = np.full((NPCOL, n), -1, np.int64)
    _plus_fields(ctx.chunk.buf, ctx.track.arena, g[G_IN_ARENA], g[G_OFF], g[G_LEN], out)
    flow = g[G_FLOW]
    orig = g[G_ORIG] != 0
    trailer = out[P_TRAILER] == 1
    # a PDU without trailer continues in the next PDU of the same direction
    continued = np.zeros(n, bool)
    order = np.lexsort((np.arange(n), orig, flow))
    sf, so, st = flow[order], orig[order], trailer[order]
    same = np.zeros(n, bool)
    same[1:] = (sf[1:] == sf[:-1]) & (so[1:] == so[:-1])
    prev_open = np.zeros(n, bool)
    prev_open[1:] = same[1:] & ~st[:-1]
    firsts = np.flatnonzero(~same)
    prev_open[firsts] = [
        self.plus_open.get(key, False)
        for key in zip(sf[firsts].tolist(), so[firsts].tolist(), strict=True)
    ]
    continued[order] = prev_open
    lasts = np.flatnonzero(np.append(~same[1:], True))
    for f, o, closed in zip(
        sf[lasts].tolist(), so[lasts].tolist(), st[lasts].tolist(), strict=True
    ):
        if closed:
            self.plus_open.pop((f, o), None)
        else:
            self.plus_open[(f, o)] = True
    # a continuation carries no header of its own
    out[P_OPCODE : P_SESSION + 1, continued] = -1
    op = out[P_OPCODE]
    func = out[P_FUNC]
    is_req = op == 0x31
    is_resp = (op == 0x32) | (op == 0x02)
    matched, req_frame, req_ts, _pl = self.plus_matcher.match(
        flow,
        np.where(is_req | is_resp, out[P_SEQ], -2),
        is_req,
        g[G_FRAME],
        g[G_TS],
        func.reshape(n, 1),
    )
    matched &= is_resp
    inside = (func >= 0) & (func < PLUS_CAT_LUT.shape[0])
    fidx = np.where(inside, PLUS_CAT_LUT[np.where(inside, func, 0)], -1)
    batch = dict(env)
    batch["is_request"] = pa.array(is_req)
    batch.update(null_negative_rows(out, (("version", P_VER), ("opcode", P_OPCODE)), np.int16))
    batch.update(
        null_negative_rows(
            out,
            (("data_length", P_DLEN), ("function", P_FUNC), ("seq_num", P_SEQ)),
            np.int32,
        )
    )
    batch.update(null_negative_rows(out, (("session_id", P_SESSION),), np.int64))
    batch.update(
        {
            "version_name": PLUS_VERSIONS.optional_names(out[P_VER]),
            "continued": pa.array(continued),
            "opcode_name": PLUS_OPCODES.optional_names(op),
            "function_name": PLUS_FUNCTIONS.optional_names(func),
            "category": pa.DictionaryArray.from_arrays(
                pa.array(np.maximum(fidx, 0).astype(np.int32), mask=fidx < 0),
                PLUS_CATEGORY_NAMES,
            ),
        }
    )
    batch.update(self._tsap_columns(flow))
    batch.update(pairing_columns(matched, req_frame, req_ts, g[G_TS]))
    return pa.RecordBatch.from_pydict(batch, schema=PLUS_SCHEMA)


DISSECTOR = S7commDissector
