"""BACnet/IP (BVLC, Annex J) and BACnet over Ethernet (ISO 8802-2 LLC, SAP 0x82): NPDU + APDU.

Detection is by content. A UDP datagram is BACnet/IP when it starts with BVLC type 0x81, a
known BVLC function (0x00-0x0C) and a BVLC length equal to the UDP payload length (on the
BACnet ports 47808-47823 a disagreeing length is still decoded and reported as weird). An
802.3 frame is BACnet when its LLC header is DSAP 0x82, SSAP 0x82, UI (0x03).

One row per BACnet message. The kernel decodes the BVLC header, the NPDU (addresses, hop
count, network-layer message type) and the APDU header (type, service, invoke id,
segmentation) of every message, plus the small service fields that say what the message does:
object and property of ReadProperty / WriteProperty (and the first of RPM / WPM), I-Am and
Who-Is fields, ReinitializeDevice and DeviceCommunicationControl parameters, error class and
code, reject and abort reasons. Values of the device-identity properties (vendor-name,
model-name, firmware-revision, ...) are rare and decoded in Python. Responses are paired with
their confirmed request by (flow, invoke id) for request_frame and latency.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, cast

import numpy as np
import pyarrow as pa

from otsight import events as E
from otsight._jit import njit
from otsight.capture.addresses import mac_array
from otsight.dissect import _l2l4 as L
from otsight.dissect.base import (
    ChunkContext,
    Dissector,
    Meaning,
    Semantics,
    pairing_columns,
    take_envelope,
)
from otsight.dissect.matching import RequestMatcher

BACNET_PORTS = (47808, 47823)  # 0xBAC0-0xBACF: a hint for reporting bad lengths, never a test

# ---- semantics --------------------------------------------------------------------------
BVLC_FUNCTIONS = Semantics(
    "bacnet",
    "bvlc_function",
    {
        0x00: ("bvlc_result", None),
        0x01: ("write_broadcast_distribution_table", "control", ["T0836", "T0830"]),
        0x02: ("read_broadcast_distribution_table", "discovery", ["T0840"]),
        0x03: ("read_broadcast_distribution_table_ack", None),
        0x04: ("forwarded_npdu", None),
        0x05: ("register_foreign_device", "session", ["T0886"]),
        0x06: ("read_foreign_device_table", "discovery", ["T0840"]),
        0x07: ("read_foreign_device_table_ack", None),
        0x08: ("delete_foreign_device_table_entry", "control", ["T0814"]),
        0x09: ("distribute_broadcast_to_network", None),
        0x0A: ("original_unicast_npdu", None),
        0x0B: ("original_broadcast_npdu", None),
        0x0C: ("secure_bvll", None),
    },
)

NETWORK_MESSAGES = Semantics(
    "bacnet",
    "network_message",
    {
        0x00: ("who_is_router_to_network", "discovery", ["T0840", "T0846"]),
        0x01: ("i_am_router_to_network", None),
        0x02: ("i_could_be_router_to_network", None),
        0x03: ("reject_message_to_network", None),
        0x04: ("router_busy_to_network", "control", ["T0814", "T0803"]),
        0x05: ("router_available_to_network", "control"),
        0x06: ("initialize_routing_table", "control", ["T0836", "T0830"]),
        0x07: ("initialize_routing_table_ack", None),
        0x08: ("establish_connection_to_network", "session"),
        0x09: ("disconnect_connection_to_network", "control", ["T0814"]),
        0x0A: ("challenge_request", "session"),
        0x0B: ("security_payload", None),
        0x0C: ("security_response", None),
        0x0D: ("request_key_update", "session"),
        0x0E: ("update_key_set", "session", ["T0836"]),
        0x0F: ("update_distribution_key", "session", ["T0836"]),
        0x10: ("request_master_key", "session"),
        0x11: ("set_master_key", "session", ["T0836"]),
        0x12: ("what_is_network_number", "discovery", ["T0840"]),
        0x13: ("network_number_is", None),
    },
)

APDU_TYPES = Semantics(
    "bacnet",
    "apdu_type",
    {
        0: "confirmed_request",
        1: "unconfirmed_request",
        2: "simple_ack",
        3: "complex_ack",
        4: "segment_ack",
        5: "error",
        6: "reject",
        7: "abort",
    },
)

CONFIRMED_SERVICES = Semantics(
    "bacnet",
    "confirmed_service",
    {
        0: ("acknowledge_alarm", "control", ["T0878"]),
        1: ("confirmed_cov_notification", None),
        2: ("confirmed_event_notification", None),
        3: ("get_alarm_summary", "read", ["T0801"]),
        4: ("get_enrollment_summary", "read", ["T0801"]),
        5: ("subscribe_cov", "read", ["T0801"]),
        6: ("atomic_read_file", "read", ["T0882", "T0845"]),
        7: ("atomic_write_file", "program", ["T0843", "T0857"]),
        8: ("add_list_element", "write", ["T0836"]),
        9: ("remove_list_element", "write", ["T0836"]),
        10: ("create_object", "write", ["T0836", "T0889"]),
        11: ("delete_object", "write", ["T0809", "T0836"]),
        12: ("read_property", "read", ["T0801", "T0861"]),
        13: ("read_property_conditional", "read", ["T0801", "T0861"]),
        14: ("read_property_multiple", "read", ["T0801", "T0861"]),
        15: ("write_property", "write", ["T0836", "T0855"]),
        16: ("write_property_multiple", "write", ["T0836", "T0855"]),
        17: ("device_communication_control", "control", ["T0814", "T0803", "T0804"]),
        18: ("confirmed_private_transfer", "control", ["T0855"]),
        19: ("confirmed_text_message", None),
        20: ("reinitialize_device", "control", ["T0816"]),
        21: ("vt_open", "session", ["T0886"]),
        22: ("vt_close", "session"),
        23: ("vt_data", "session", ["T0886"]),
        24: ("authenticate", "session", ["T0859"]),
        25: ("request_key", "session"),
        26: ("read_range", "read", ["T0801", "T0882"]),
        27: ("life_safety_operation", "control", ["T0855", "T0878"]),
        28: ("subscribe_cov_property", "read", ["T0801"]),
        29: ("get_event_information", "read", ["T0801"]),
        30: ("subscribe_cov_property_multiple", "read", ["T0801"]),
        31: ("confirmed_cov_notification_multiple", None),
        32: ("confirmed_audit_notification", None),
        33: ("audit_log_query", "read", ["T0882"]),
    },
)

UNCONFIRMED_SERVICES = Semantics(
    "bacnet",
    "unconfirmed_service",
    {
        0: ("i_am", "discovery", ["T0846", "T0888"]),
        1: ("i_have", "discovery", ["T0846", "T0888"]),
        2: ("unconfirmed_cov_notification", None),
        3: ("unconfirmed_event_notification", None),
        4: ("unconfirmed_private_transfer", "control", ["T0855"]),
        5: ("unconfirmed_text_message", None),
        6: ("time_synchronization", "control", ["T0855"]),
        7: ("who_has", "discovery", ["T0846", "T0888"]),
        8: ("who_is", "discovery", ["T0846", "T0888"]),
        9: ("utc_time_synchronization", "control", ["T0855"]),
        10: ("write_group", "write", ["T0836", "T0855"]),
        11: ("unconfirmed_cov_notification_multiple", None),
        12: ("unconfirmed_audit_notification", None),
        13: ("who_am_i", "discovery", ["T0846"]),
        14: ("you_are", "control", ["T0836"]),
    },
)

REINIT_STATES = Semantics(
    "bacnet",
    "reinitialized_state",
    {
        0: ("coldstart", "control", ["T0816"]),
        1: ("warmstart", "control", ["T0816"]),
        2: ("start_backup", "program", ["T0845"]),
        3: ("end_backup", "program", ["T0845"]),
        4: ("start_restore", "program", ["T0843"]),
        5: ("end_restore", "program", ["T0843"]),
        6: ("abort_restore", "program", ["T0843"]),
        7: ("activate_changes", "control", ["T0816"]),
    },
)

DCC_STATES = Semantics(
    "bacnet",
    "enable_disable",
    {
        0: ("enable", "control"),
        1: ("disable", "control", ["T0814", "T0803", "T0804"]),
        2: ("disable_initiation", "control", ["T0804"]),
    },
)

SEGMENTATION = Semantics(
    "bacnet",
    "segmentation_supported",
    {0: "segmented_both", 1: "segmented_transmit", 2: "segmented_receive", 3: "no_segmentation"},
)

ERROR_CLASSES = Semantics(
    "bacnet",
    "error_class",
    {
        0: "device",
        1: "object",
        2: "property",
        3: "resources",
        4: "security",
        5: "services",
        6: "vt",
        7: "communication",
    },
)

REJECT_REASONS = Semantics(
    "bacnet",
    "reject_reason",
    {
        0: "other",
        1: "buffer_overflow",
        2: "inconsistent_parameters",
        3: "invalid_parameter_data_type",
        4: "invalid_tag",
        5: "missing_required_parameter",
        6: "parameter_out_of_range",
        7: "too_many_arguments",
        8: "undefined_enumeration",
        9: "unrecognized_service",
    },
)

ABORT_REASONS = Semantics(
    "bacnet",
    "abort_reason",
    {
        0: "other",
        1: "buffer_overflow",
        2: "invalid_apdu_in_this_state",
        3: "preempted_by_higher_priority_task",
        4: "segmentation_not_supported",
        5: "security_error",
        6: "insufficient_security",
        7: "window_size_out_of_range",
        8: "application_exceeded_reply_time",
        9: "out_of_resources",
        10: "tsm_timeout",
        11: "apdu_too_long",
    },
)

OBJECT_TYPES = Semantics(
    "bacnet",
    "object_type",
    {
        i: name
        for i, name in enumerate(
            """analog_input analog_output analog_value binary_input binary_output binary_value
            calendar command device event_enrollment file group loop multi_state_input
            multi_state_output notification_class program schedule averaging multi_state_value
            trend_log life_safety_point life_safety_zone accumulator pulse_converter event_log
            global_group trend_log_multiple load_control structured_view access_door timer
            access_credential access_point access_rights access_user access_zone
            credential_data_input network_security bitstring_value characterstring_value
            date_pattern_value date_value datetime_pattern_value datetime_value integer_value
            large_analog_value octetstring_value positive_integer_value time_pattern_value
            time_value notification_forwarder alert_enrollment channel lighting_output
            binary_lighting_output network_port elevator_group escalator lift staging audit_log
            audit_reporter color color_temperature""".split()
        )
    },
)


def _numbered(text: str) -> dict[Hashable, Any]:
    return {int(k): v for k, v in (item.split(":", 1) for item in text.split())}


# Wireshark 4.0 value strings (standard range), in otsight's snake_case spelling
PROPERTIES = Semantics(
    "bacnet",
    "property_id",
    _numbered(
        """
    0:acked_transition 1:ack_required 2:action 3:action_text 4:active_text 5:active_vt_session
    6:alarm_value 7:alarm_values 8:all 9:all_writes_successful 10:apdu_segment_timeout
    11:apdu_timeout 12:application_software_version 13:archive 14:bias 15:change_of_state_count
    16:change_of_state_time 17:notification_class 18:deleted_18 19:controlled_variable_reference
    20:controlled_variable_units 21:controlled_variable_value 22:cov_increment 23:datelist
    24:daylights_savings_status 25:deadband 26:derivative_constant 27:derivative_constant_units
    28:description 29:description_of_halt 30:device_address_binding 31:device_type
    32:effective_period 33:elapsed_active_time 34:error_limit 35:event_enable 36:event_state
    37:event_type 38:exception_schedule 39:fault_values 40:feedback_value 41:file_access_method
    42:file_size 43:file_type 44:firmware_revision 45:high_limit 46:inactive_text 47:in_process
    48:instance_of 49:integral_constant 50:integral_constant_units
    51:issue_confirmed_notifications 52:limit_enable 53:list_of_group_members
    54:list_of_object_property_references 55:list_of_session_keys 56:local_date 57:local_time
    58:location 59:low_limit 60:manipulated_variable_reference 61:maximum_output
    62:max_apdu_length_accepted 63:max_info_frames 64:max_master 65:max_pres_value
    66:minimum_off_time 67:minimum_on_time 68:minimum_output 69:min_pres_value 70:model_name
    71:modification_date 72:notify_type 73:number_of_apdu_retries 74:number_of_states
    75:object_identifier 76:object_list 77:object_name 78:object_property_reference
    79:object_type 80:optional 81:out_of_service 82:output_units 83:event_parameters 84:polarity
    85:present_value 86:priority 87:priority_array 88:priority_for_writing 89:process_identifier
    90:program_change 91:program_location 92:program_state 93:proportional_constant
    94:proportional_constant_units 95:protocol_conformance_class
    96:protocol_object_types_supported 97:protocol_services_supported 98:protocol_version
    99:read_only 100:reason_for_halt 101:recipient 102:recipient_list 103:reliability
    104:relinquish_default 105:required 106:resolution 107:segmentation_supported 108:setpoint
    109:setpoint_reference 110:state_text 111:status_flags 112:system_status 113:time_delay
    114:time_of_active_time_reset 115:time_of_state_count_reset
    116:time_synchronization_recipients 117:units 118:update_interval 119:utc_offset
    120:vendor_identifier 121:vendor_name 122:vt_class_supported 123:weekly_schedule
    124:attempted_samples 125:average_value 126:buffer_size 127:client_cov_increment
    128:cov_resubscription_interval 129:current_notify_time 130:event_time_stamp 131:log_buffer
    132:log_device_object_property 133:enable 134:log_interval 135:maximum_value
    136:minimum_value 137:notification_threshold 138:previous_notify_time 139:protocol_revision
    140:records_since_notification 141:record_count 142:start_time 143:stop_time
    144:stop_when_full 145:total_record_count 146:valid_samples 147:window_interval
    148:window_samples 149:maximum_value_time_stamp 150:minimum_value_time_stamp
    151:variance_value 152:active_cov_subscriptions 153:backup_failure_timeout
    154:configuration_files 155:database_revision 156:direct_reading 157:last_restore_time
    158:maintenance_required 159:member_of 160:mode 161:operation_expected 162:setting
    163:silenced 164:tracking_value 165:zone_members 166:life_safety_alarm_values
    167:max_segments_accepted 168:profile_name 169:auto_slave_discovery
    170:manual_slave_address_binding 171:slave_address_binding 172:slave_proxy_enable
    173:last_notify_record 174:schedule_default 175:accepted_modes 176:adjust_value 177:count
    178:count_before_change 179:count_change_time 180:cov_period 181:input_reference
    182:limit_monitoring_interval 183:logging_object 184:logging_record 185:prescale
    186:pulse_rate 187:scale 188:scale_factor 189:update_time 190:value_before_change
    191:value_set 192:value_change_time 193:align_intervals 194:group_member_names
    195:interval_offset 196:last_restart_reason 197:logging_type 198:member_status_flags
    199:notification_period 200:previous_notify_record 201:requested_update_interval
    202:restart_notification_recipients 203:time_of_device_restart
    204:time_synchronization_interval 205:trigger 206:utc_time_synchronization_recipients
    207:node_subtype 208:node_type 209:structured_object_list 210:subordinate_annotations
    211:subordinate_list 212:actual_shed_level 213:duty_window 214:expected_shed_level
    215:full_duty_baseline 216:node_subtype 217:node_type 218:requested_shed_level
    219:shed_duration 220:shed_level_descriptions 221:shed_levels 222:state_description
    226:door_alarm_state 227:door_extended_pulse_time 228:door_members
    229:door_open_too_long_time 230:door_pulse_time 231:door_status 232:door_unlock_delay_time
    233:lock_status 234:masked_alarm_values 235:secured_status
    """
    ),
)

ERROR_CODES = Semantics(
    "bacnet",
    "error_code",
    _numbered(
        """
    0:other 1:authentication_failed 2:configuration_in_progress 3:device_busy
    4:dynamic_creation_not_supported 5:file_access_denied 6:incompatible_security_levels
    7:inconsistent_parameters 8:inconsistent_selection_criterion 9:invalid_data_type
    10:invalid_file_access_method 11:invalid_file_start_position 12:invalid_operator_name
    13:invalid_parameter_data_type 14:invalid_time_stamp 15:key_generation_error
    16:missing_required_parameter 17:no_objects_of_specified_type 18:no_space_for_object
    19:no_space_to_add_list_element 20:no_space_to_write_property 21:no_vt_sessions_available
    22:property_is_not_a_list 23:object_deletion_not_permitted
    24:object_identifier_already_exists 25:operational_problem 26:password_failure
    27:read_access_denied 28:security_not_supported 29:service_request_denied 30:timeout
    31:unknown_object 32:unknown_property 33:removed_enumeration 34:unknown_vt_class
    35:unknown_vt_session 36:unsupported_object_type 37:value_out_of_range
    38:vt_session_already_closed 39:vt_session_termination_failure 40:write_access_denied
    41:character_set_not_supported 42:invalid_array_index 43:cov_subscription_failed
    44:not_cov_property 45:optional_functionality_not_supported 46:invalid_configuration_data
    47:datatype_not_supported 48:duplicate_name 49:duplicate_object_id
    50:property_is_not_an_array 51:abort_buffer_overflow 52:abort_invalid_apdu_in_this_state
    53:abort_preempted_by_higher_priority_task 54:abort_segmentation_not_supported
    55:abort_proprietary 56:abort_other 57:invalid_tag 58:network_down 59:reject_buffer_overflow
    60:reject_inconsistent_parameters 61:reject_invalid_parameter_data_type
    62:reject_invalid_tag 63:reject_missing_required_parameter 64:reject_parameter_out_of_range
    65:reject_too_many_arguments 66:reject_undefined_enumeration 67:reject_unrecognized_service
    68:reject_proprietary 69:reject_other 70:unknown_device 71:unknown_route
    72:value_not_initialized 73:invalid_event_state 74:no_alarm_configured 75:log_buffer_full
    76:logged_value_purged 77:no_property_specified 78:not_configured_for_triggered_logging
    79:unknown_subscription 80:parameter_out_of_range 81:list_element_not_found 82:busy
    83:communication_disabled 84:success 85:access_denied 86:bad_destination_address
    87:bad_destination_device_id 88:bad_signature 89:bad_source_address 90:bad_timestamp
    91:cannot_use_key 92:cannot_verify_message_id 93:correct_key_revision
    94:destination_device_id_required 95:duplicate_message 96:encryption_not_configured
    97:encryption_required 98:incorrect_key 99:invalid_key_data 100:key_update_in_progress
    101:malformed_message 102:not_key_server 103:security_not_configured
    104:source_security_required 105:too_many_keys 106:unknown_authentication_type
    107:unknown_key 108:unknown_key_revision 109:unknown_source_message 110:not_router_to_dnet
    111:router_busy 112:unknown_network_message 113:message_too_long 114:security_error
    115:addressing_error 116:write_bdt_failed 117:read_bdt_failed
    118:register_foreign_device_failed 119:read_fdt_failed 120:delete_fdt_entry_failed
    121:distribute_broadcast_failed 122:unknown_file_size 123:abort_apdu_too_long
    124:abort_application_exceeded_reply_time 125:abort_out_of_resources 126:abort_tsm_timeout
    127:abort_window_size_out_of_range 128:file_full 129:inconsistent_configuration
    130:inconsistent_object_type 131:internal_error 132:not_configured 133:out_of_memory
    134:value_too_long 135:abort_insufficient_security 136:abort_security_error
    137:duplicate_entry 138:invalid_value_in_this_state 139:invalid_operation_in_this_state
    140:list_item_not_numbered
    """
    ),
)

# properties whose values name the device: decoded into the ``value`` column
IDENTITY_PROPERTIES = {
    121: "vendor_name",
    70: "model_name",
    44: "firmware_revision",
    12: "application_software_version",
    77: "object_name",
    28: "description",
    58: "location",
}

# ---- kernel -----------------------------------------------------------------------------
# columns of the kernel's int64 output (-1 = absent)
(
    BVLC_FUNC,
    BVLC_LEN,
    FWD_IP,
    FWD_PORT,
    NPDU_VER,
    NPDU_CTRL,
    DNET,
    DADR,
    SNET,
    SADR,
    HOPS,
    NET_MSG,
    NET_VENDOR,
    APDU_TYPE,
    APDU_FLAGS,
    SERVICE,
    INVOKE,
    SEQ,
    WINDOW,
    MAX_SEGS,
    MAX_APDU,
    OBJ_TYPE,
    OBJ_INST,
    PROP,
    ARRAY_IDX,
    DEV_INST,
    MAX_APDU_ACC,
    SEG_SUPP,
    VENDOR,
    LOW,
    HIGH,
    REINIT,
    DCC_DUR,
    DCC_STATE,
    PASSWORD,
    ERR_CLASS,
    ERR_CODE,
    REJECT,
    ABORT,
    VAL_OFF,
    VAL_END,
    STATUS,
) = range(42)
NCOL = 42

# links
LINK_IP, LINK_LLC = 0, 1

OK = 0
BVLC_LENGTH_MISMATCH = 1
BVLC_TRUNCATED = 2
NPDU_TRUNCATED = 3
BAD_NPDU_VERSION = 4
APDU_TRUNCATED = 5
BAD_APDU_TYPE = 6
BAD_SERVICE_DATA = 7
NO_APDU = 8
WEIRD = {
    BVLC_LENGTH_MISMATCH: "bacnet_bvlc_length_mismatch",
    BVLC_TRUNCATED: "bacnet_bvlc_truncated",
    NPDU_TRUNCATED: "bacnet_npdu_truncated",
    BAD_NPDU_VERSION: "bacnet_bad_npdu_version",
    APDU_TRUNCATED: "bacnet_apdu_truncated",
    BAD_APDU_TYPE: "bacnet_bad_apdu_type",
    BAD_SERVICE_DATA: "bacnet_bad_service_data",
    NO_APDU: "bacnet_npdu_without_apdu",
}

# APDU header flags
SEG, MOR, SA = 0x08, 0x04, 0x02

# an address longer than 7 octets is formatted in Python from its offset (flagged so)
_LONG_ADDR = np.int64(1) << np.int64(62)


@njit(cache=True, inline="always")
def _b16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@njit(cache=True, inline="always")
def _uint(b, p, n):
    v = np.int64(0)
    for k in range(n):
        v = (v << 8) | np.int64(b[p + k])
    return v


@njit(cache=True, inline="always")
def _tag(b, p, end):
    """One BACnet tag at ``p``: (number, is_context, lvt, value_offset, value_length).

    value_offset is -1 when the tag header or its value does not fit before ``end``. For
    opening/closing context tags (lvt 6/7) and application booleans the value length is 0.
    """
    if p < 0 or p >= end:
        return -1, 0, 0, -1, 0
    t = np.int64(b[p])
    num = t >> 4
    ctx = (t >> 3) & 1
    lvt = t & 7
    q = p + 1
    if num == 15:
        if q >= end:
            return -1, 0, 0, -1, 0
        num = np.int64(b[q])
        q += 1
    if ctx == 1 and (lvt == 6 or lvt == 7):
        return num, ctx, lvt, q, 0
    if ctx == 0 and num == 1:  # application boolean: the value is in the LVT
        return num, ctx, lvt, q, 0
    n = lvt
    if lvt == 5:
        if q >= end:
            return -1, 0, 0, -1, 0
        n = np.int64(b[q])
        q += 1
        if n == 254:
            if q + 2 > end:
                return -1, 0, 0, -1, 0
            n = _b16(b, q)
            q += 2
        elif n == 255:
            if q + 4 > end:
                return -1, 0, 0, -1, 0
            n = _uint(b, q, 4)
            q += 4
    if q + n > end:
        return num, ctx, lvt, -1, n
    return num, ctx, lvt, q, n


@njit(cache=True, inline="always")
def _is_ctx(num, ctx, lvt, want):
    return ctx == 1 and num == want and lvt != 6 and lvt != 7


@njit(cache=True, inline="always")
def _object(b, p, end, want_ctx, tagnum, o, j):
    """Read an object identifier tag (context ``tagnum`` or application 12) into OBJ_*.

    Returns the offset after it, or -1 when the tag is not there or malformed."""
    num, ctx, lvt, q, n = _tag(b, p, end)
    if q < 0 or n != 4:
        return -1
    if want_ctx:
        if not _is_ctx(num, ctx, lvt, tagnum):
            return -1
    elif ctx != 0 or num != 12:
        return -1
    v = _uint(b, q, 4)
    o[j, OBJ_TYPE] = v >> 22
    o[j, OBJ_INST] = v & 0x3FFFFF
    return q + 4


@njit(cache=True, inline="always")
def _ctx_uint(b, p, end, tagnum):
    """(value, next offset) of context tag ``tagnum`` holding an unsigned; (-1, p) if absent,
    (-1, -1) if malformed."""
    num, ctx, lvt, q, n = _tag(b, p, end)
    if num < 0:
        return -1, p
    if not _is_ctx(num, ctx, lvt, tagnum):
        return -1, p
    if q < 0 or n < 1 or n > 4:
        return -1, -1
    return _uint(b, q, n), q + n


@njit(cache=True, inline="always")
def _app_uint(b, p, end, tagnum):
    """(value, next offset) of an application tag ``tagnum`` (unsigned or enumerated)."""
    num, ctx, lvt, q, n = _tag(b, p, end)
    if q < 0 or ctx != 0 or num != tagnum or n < 1 or n > 4:
        return -1, -1
    return _uint(b, q, n), q + n


@njit(cache=True, nogil=True, _nrt=False)
def _service(b, p, end, typ, svc, o, j):
    """Decode the few service fields we keep. Returns False when the data is malformed."""
    if typ == 0 or typ == 3:  # confirmed request / complex ack
        ack = typ == 3
        if svc == 12 or svc == 15:
            if svc == 15 and ack:
                return True
            q = _object(b, p, end, True, 0, o, j)
            if q < 0:
                return False
            v, q = _ctx_uint(b, q, end, 1)
            if q < 0 or v < 0:
                return False
            o[j, PROP] = v
            v, q2 = _ctx_uint(b, q, end, 2)
            if q2 < 0:
                return False
            if v >= 0:
                o[j, ARRAY_IDX] = v
            if (svc == 12 and ack) or (svc == 15 and not ack):
                num, ctx, lvt, r, n = _tag(b, q2, end)
                if num != 3 or ctx != 1 or lvt != 6:
                    return False
                o[j, VAL_OFF] = r
                o[j, VAL_END] = end
            return True
        if svc == 14 or svc == 16:
            if svc == 16 and ack:
                return True
            q = _object(b, p, end, True, 0, o, j)
            if q < 0:
                return False
            num, ctx, lvt, r, n = _tag(b, q, end)
            if num != 1 or ctx != 1 or lvt != 6:
                return False
            num, ctx, lvt, r2, n = _tag(b, r, end)
            want = 2 if ack else 0
            if _is_ctx(num, ctx, lvt, want) and r2 >= 0 and n >= 1 and n <= 4:
                o[j, PROP] = _uint(b, r2, n)
            return True
        if (svc == 6 or svc == 7) and not ack:
            return _object(b, p, end, False, 12, o, j) >= 0
        if svc == 20 and not ack:
            v, q = _ctx_uint(b, p, end, 0)
            if q < 0 or v < 0:
                return False
            o[j, REINIT] = v
            num, ctx, lvt, r, n = _tag(b, q, end)
            o[j, PASSWORD] = 1 if _is_ctx(num, ctx, lvt, 1) else 0
            return True
        if svc == 17 and not ack:
            v, q = _ctx_uint(b, p, end, 0)
            if q < 0:
                return False
            if v >= 0:
                o[j, DCC_DUR] = v
            v, q = _ctx_uint(b, q, end, 1)
            if q < 0 or v < 0:
                return False
            o[j, DCC_STATE] = v
            num, ctx, lvt, r, n = _tag(b, q, end)
            o[j, PASSWORD] = 1 if _is_ctx(num, ctx, lvt, 2) else 0
            return True
        return True
    if typ == 1:  # unconfirmed request
        if svc == 0:  # I-Am
            q = _object(b, p, end, False, 12, o, j)
            if q < 0:
                return False
            o[j, DEV_INST] = o[j, OBJ_INST]
            v, q = _app_uint(b, q, end, 2)
            if q < 0:
                return False
            o[j, MAX_APDU_ACC] = v
            v, q = _app_uint(b, q, end, 9)
            if q < 0:
                return False
            o[j, SEG_SUPP] = v
            v, q = _app_uint(b, q, end, 2)
            if q < 0:
                return False
            o[j, VENDOR] = v
            return True
        if svc == 8 or svc == 7:  # Who-Is / Who-Has: optional limits
            v, q = _ctx_uint(b, p, end, 0)
            if q < 0:
                return False
            if v >= 0:
                o[j, LOW] = v
                v, q = _ctx_uint(b, q, end, 1)
                if q < 0 or v < 0:
                    return False
                o[j, HIGH] = v
            if svc == 7:
                num, ctx, lvt, r, n = _tag(b, q, end)
                if _is_ctx(num, ctx, lvt, 2):
                    return _object(b, q, end, True, 2, o, j) >= 0
                return _is_ctx(num, ctx, lvt, 3) and r >= 0
            return True
        if svc == 1:  # I-Have: device id, object id, object name
            q = _object(b, p, end, False, 12, o, j)
            if q < 0:
                return False
            o[j, DEV_INST] = o[j, OBJ_INST]
            return _object(b, q, end, False, 12, o, j) >= 0
        return True
    if typ == 5:  # error: class and code, possibly inside an opening context tag
        num, ctx, lvt, q, n = _tag(b, p, end)
        if num >= 0 and ctx == 1 and lvt == 6:
            p = q
        v, q = _app_uint(b, p, end, 9)
        if q < 0:
            return False
        o[j, ERR_CLASS] = v
        v, q = _app_uint(b, q, end, 9)
        if q < 0:
            return False
        o[j, ERR_CODE] = v
        return True
    return True


@njit(cache=True, inline="always")
def _address(b, p, n):
    if n == 0:
        return np.int64(0)
    if n > 7:
        return _LONG_ADDR | p
    return (np.int64(n) << 56) | _uint(b, p, n)


@njit(cache=True, nogil=True, _nrt=False)
def _decode(buf, start, end, wire_len, link, out):
    """Every BACnet message: BVLC (link 0) or LLC-carried NPDU (link 1) starting at ``start``.

    ``end`` is the end of the captured bytes, ``wire_len`` the datagram's length on the wire.
    ``out`` must arrive filled with -1 (absent).
    """
    n = start.shape[0]
    for j in range(n):
        b = buf
        p = start[j]
        e = end[j]
        out[j, STATUS] = OK
        if link[j] == LINK_IP:
            fn = np.int64(b[p + 1])
            ln = _b16(b, p + 2)
            out[j, BVLC_FUNC] = fn
            out[j, BVLC_LEN] = ln
            if ln != wire_len[j]:
                out[j, STATUS] = BVLC_LENGTH_MISMATCH
            if p + ln < e:
                e = p + ln
            if fn == 0x04:
                if p + 10 > e:
                    out[j, STATUS] = BVLC_TRUNCATED
                    continue
                out[j, FWD_IP] = _uint(b, p + 4, 4)
                out[j, FWD_PORT] = _b16(b, p + 8)
                p += 10
            elif fn == 0x09 or fn == 0x0A or fn == 0x0B:
                p += 4
            else:
                continue  # BVLL-only function (no NPDU)
        # ---- NPDU
        if p + 2 > e:
            if out[j, STATUS] == OK:
                out[j, STATUS] = NPDU_TRUNCATED
            continue
        out[j, NPDU_VER] = b[p]
        ctrl = np.int64(b[p + 1])
        out[j, NPDU_CTRL] = ctrl
        if b[p] != 1 and out[j, STATUS] == OK:
            out[j, STATUS] = BAD_NPDU_VERSION
        p += 2
        bad = False
        if ctrl & 0x20:
            if p + 3 > e:
                bad = True
            else:
                out[j, DNET] = _b16(b, p)
                dl = np.int64(b[p + 2])
                p += 3
                if p + dl > e:
                    bad = True
                else:
                    out[j, DADR] = _address(b, p, dl)
                    p += dl
        if not bad and ctrl & 0x08:
            if p + 3 > e:
                bad = True
            else:
                out[j, SNET] = _b16(b, p)
                sl = np.int64(b[p + 2])
                p += 3
                if p + sl > e:
                    bad = True
                else:
                    out[j, SADR] = _address(b, p, sl)
                    p += sl
        if not bad and ctrl & 0x20:
            if p + 1 > e:
                bad = True
            else:
                out[j, HOPS] = b[p]
                p += 1
        if not bad and ctrl & 0x80:
            if p + 1 > e:
                bad = True
            else:
                mt = np.int64(b[p])
                out[j, NET_MSG] = mt
                p += 1
                if mt >= 0x80:
                    if p + 2 > e:
                        bad = True
                    else:
                        out[j, NET_VENDOR] = _b16(b, p)
        if bad:
            if out[j, STATUS] == OK:
                out[j, STATUS] = NPDU_TRUNCATED
            continue
        if ctrl & 0x80:
            continue
        # ---- APDU
        if p >= e:
            if out[j, STATUS] == OK:
                out[j, STATUS] = NO_APDU
            continue
        h = np.int64(b[p])
        typ = h >> 4
        fl = h & 0x0F
        out[j, APDU_TYPE] = typ
        out[j, APDU_FLAGS] = fl
        rem = e - p
        body = np.int64(-1)
        short = False
        if typ == 0:
            if rem < 4:
                short = True
            else:
                out[j, MAX_SEGS] = (np.int64(b[p + 1]) >> 4) & 7
                out[j, MAX_APDU] = np.int64(b[p + 1]) & 0x0F
                out[j, INVOKE] = b[p + 2]
                q = p + 3
                if fl & SEG:
                    if rem < 6:
                        short = True
                    else:
                        out[j, SEQ] = b[q]
                        out[j, WINDOW] = b[q + 1]
                        q += 2
                if not short:
                    if q >= e:
                        short = True
                    else:
                        out[j, SERVICE] = b[q]
                        body = q + 1
        elif typ == 1:
            if rem < 2:
                short = True
            else:
                out[j, SERVICE] = b[p + 1]
                body = p + 2
        elif typ == 2:
            if rem < 3:
                short = True
            else:
                out[j, INVOKE] = b[p + 1]
                out[j, SERVICE] = b[p + 2]
        elif typ == 3:
            if rem < 3:
                short = True
            else:
                out[j, INVOKE] = b[p + 1]
                q = p + 2
                if fl & SEG:
                    if rem < 5:
                        short = True
                    else:
                        out[j, SEQ] = b[q]
                        out[j, WINDOW] = b[q + 1]
                        q += 2
                if not short:
                    out[j, SERVICE] = b[q]
                    body = q + 1
        elif typ == 4:
            if rem < 4:
                short = True
            else:
                out[j, INVOKE] = b[p + 1]
                out[j, SEQ] = b[p + 2]
                out[j, WINDOW] = b[p + 3]
        elif typ == 5:
            if rem < 3:
                short = True
            else:
                out[j, INVOKE] = b[p + 1]
                out[j, SERVICE] = b[p + 2]
                body = p + 3
        elif typ == 6 or typ == 7:
            if rem < 3:
                short = True
            else:
                out[j, INVOKE] = b[p + 1]
                out[j, REJECT if typ == 6 else ABORT] = b[p + 2]
        else:
            if out[j, STATUS] == OK:
                out[j, STATUS] = BAD_APDU_TYPE
            continue
        if short:
            if out[j, STATUS] == OK:
                out[j, STATUS] = APDU_TRUNCATED
            continue
        if body < 0:
            continue
        segmented = (typ == 0 or typ == 3) and (fl & SEG) != 0
        if segmented and out[j, SEQ] != 0:
            continue  # a later segment: its bytes continue the first segment's service data
        ok = _service(b, body, e, typ, out[j, SERVICE], out, j)
        if not ok and not segmented and out[j, STATUS] == OK:
            out[j, STATUS] = BAD_SERVICE_DATA


# ---- rare values, in Python ---------------------------------------------------------------
_CHARSETS = {0: "utf-8", 4: "utf-16-be", 3: "utf-32-be", 5: "latin-1"}


def decode_value(data: bytes) -> str | None:
    """The first application-tagged value of ``data`` as text (None if it is not one)."""
    if not data:
        return None
    t = data[0]
    num, is_ctx, lvt = t >> 4, (t >> 3) & 1, t & 7
    p = 1
    if is_ctx:
        return None
    if num == 15:
        if len(data) < 2:
            return None
        num, p = data[1], 2
    if num == 1:
        return "true" if lvt else "false"
    n = lvt
    if lvt == 5:
        if p >= len(data):
            return None
        n, p = data[p], p + 1
        if n == 254:
            n, p = int.from_bytes(data[p : p + 2], "big"), p + 2
        elif n == 255:
            n, p = int.from_bytes(data[p : p + 4], "big"), p + 4
    v = data[p : p + n]
    if len(v) < n:
        return None
    if num == 0:
        return ""
    if num == 2 or num == 9:
        return str(int.from_bytes(v, "big"))
    if num == 3:
        return str(int.from_bytes(v, "big", signed=True))
    if num == 4 and n == 4:
        return repr(float(np.frombuffer(v, ">f4")[0]))
    if num == 5 and n == 8:
        return repr(float(np.frombuffer(v, ">f8")[0]))
    if num == 7:
        if not v:
            return ""
        codec = _CHARSETS.get(v[0])
        if codec is None:
            return v[1:].hex()
        return v[1:].decode(codec, errors="replace")
    if num == 6:
        return v.hex()
    return None


# ---- schema -------------------------------------------------------------------------------
_S = E._STR
SCHEMA = E._schema(
    "bacnet",
    E.PDU_COMMON
    + [
        pa.field("link", _S),  # bacnet_ip (BVLC over UDP) or bacnet_ethernet (802.2 LLC)
        pa.field("src_mac", _S),
        pa.field("dst_mac", _S),
        pa.field("bvlc_function", pa.int16()),
        pa.field("bvlc_function_name", _S),
        pa.field("bvlc_length", pa.int32()),
        pa.field("forwarded_ip", _S),  # Forwarded-NPDU: the originating device's B/IP address
        pa.field("forwarded_port", pa.int32()),
        pa.field("npdu_version", pa.int16()),
        pa.field("npdu_control", pa.int16()),
        pa.field("expecting_reply", pa.bool_()),
        pa.field("priority", pa.int16()),
        pa.field("dnet", pa.int32()),
        pa.field("dadr", _S),  # hex octets, colon-separated ("" = broadcast)
        pa.field("snet", pa.int32()),
        pa.field("sadr", _S),
        pa.field("hop_count", pa.int16()),
        pa.field("network_message", pa.int16()),
        pa.field("network_message_name", _S),
        pa.field("network_vendor_id", pa.int32()),
        pa.field("apdu_type", pa.int16()),
        pa.field("apdu_type_name", _S),
        pa.field("is_request", pa.bool_()),  # confirmed or unconfirmed request
        pa.field("service_choice", pa.int16()),
        pa.field("service_name", _S),
        pa.field("category", _S),
        pa.field("invoke_id", pa.int16()),
        pa.field("segmented", pa.bool_()),
        pa.field("more_follows", pa.bool_()),
        pa.field("segmented_response_accepted", pa.bool_()),
        pa.field("sequence_number", pa.int16()),
        pa.field("window_size", pa.int16()),
        pa.field("max_segments_code", pa.int16()),
        pa.field("max_apdu_code", pa.int16()),
        pa.field("object_type", pa.int32()),
        pa.field("object_type_name", _S),
        pa.field("object_instance", pa.int32()),
        pa.field("property_id", pa.int32()),
        pa.field("property_name", _S),
        pa.field("array_index", pa.int64()),
        pa.field("value", pa.string()),  # identity properties (vendor-name, model-name, ...)
        pa.field("device_instance", pa.int32()),  # I-Am, I-Have
        pa.field("max_apdu_accepted", pa.int32()),
        pa.field("segmentation_supported", pa.int16()),
        pa.field("segmentation_supported_name", _S),
        pa.field("vendor_id", pa.int32()),
        pa.field("low_limit", pa.int64()),  # Who-Is, Who-Has
        pa.field("high_limit", pa.int64()),
        pa.field("reinit_state", pa.int16()),  # ReinitializeDevice
        pa.field("reinit_state_name", _S),
        pa.field("password_present", pa.bool_()),  # ReinitializeDevice, DCC
        pa.field("dcc_duration", pa.int32()),  # DeviceCommunicationControl (minutes)
        pa.field("dcc_state", pa.int16()),
        pa.field("dcc_state_name", _S),
        pa.field("error_class", pa.int32()),
        pa.field("error_class_name", _S),
        pa.field("error_code", pa.int32()),
        pa.field("error_code_name", _S),
        pa.field("reject_reason", pa.int16()),
        pa.field("reject_reason_name", _S),
        pa.field("abort_reason", pa.int16()),
        pa.field("abort_reason_name", _S),
        pa.field("abort_by_server", pa.bool_()),
    ]
    + E._REQUEST_MATCH,
    "BACnet/IP and BACnet/Ethernet messages: BVLC, NPDU and APDU, requests and responses.",
)


# ---- the dissector --------------------------------------------------------------------------
def _col(out: np.ndarray, c: int, dtype) -> pa.Array:
    v = out[:, c]
    return pa.array(v.astype(dtype), mask=v < 0)


class _Names:
    """Codes → dictionary names through a lookup table: no sort per batch.

    The dictionary is the whole code space of the table; codes it does not know (rare) get
    ``unknown_N`` entries appended for the batch that has them.
    """

    def __init__(self, names: dict[int, str], offset: int = 0) -> None:
        self.offset = offset  # codes >= offset are spelled ``unknown_{code - offset}``
        keys = sorted(names)
        self.size = (keys[-1] + 1) if keys else 0
        self.lut = np.full(self.size, -1, dtype=np.int32)
        for i, k in enumerate(keys):
            self.lut[k] = i
        self.strings = [names[k] for k in keys]
        self.dictionary = pa.array(self.strings, type=pa.string())

    @classmethod
    def of(cls, sem: Semantics) -> _Names:
        return cls({k: m.name for k, m in _int_rows(sem).items()})

    def __call__(self, codes: np.ndarray) -> pa.Array:
        absent = codes < 0
        known = ~absent & (codes < self.size)
        idx = np.full(codes.shape[0], -1, dtype=np.int32)
        idx[known] = self.lut[codes[known]]
        unknown = ~absent & (idx < 0)
        dictionary = self.dictionary
        if unknown.any():
            extra = np.unique(codes[unknown])
            pos = np.searchsorted(extra, codes[unknown])
            idx[unknown] = len(self.strings) + pos.astype(np.int32)
            base = [
                int(c) - self.offset if self.offset and c >= self.offset else int(c) for c in extra
            ]
            dictionary = pa.array(self.strings + [f"unknown_{c}" for c in base])
        return pa.DictionaryArray.from_arrays(pa.array(np.maximum(idx, 0), mask=absent), dictionary)


def _flag(out: np.ndarray, bit: int, valid: np.ndarray) -> pa.Array:
    fl = out[:, APDU_FLAGS]
    return pa.array((fl & bit) != 0, mask=~valid)


def _addresses(values: np.ndarray, buf: np.ndarray) -> pa.Array:
    """NPDU DADR/SADR codes from the kernel → colon-separated hex (null when absent)."""
    if not (values >= 0).any():
        return pa.nulls(values.shape[0], type=E._STR)
    uniq, inv = np.unique(values, return_inverse=True)
    strings: list[str] = []
    for u in uniq:
        u = int(u)
        if u < 0:
            strings.append("")
        elif u & int(_LONG_ADDR):
            p = u & ~int(_LONG_ADDR)
            n = int(buf[p - 1])
            strings.append(":".join(f"{x:02x}" for x in bytes(buf[p : p + n])))
        else:
            n = u >> 56
            raw = (u & ((1 << 56) - 1)).to_bytes(7, "big")[7 - n :]
            strings.append(":".join(f"{x:02x}" for x in raw))
    return pa.DictionaryArray.from_arrays(
        pa.array(inv.reshape(-1).astype(np.int32), mask=values < 0), pa.array(strings)
    )


def _ipv4(ips: np.ndarray) -> pa.Array:
    if not (ips >= 0).any():
        return pa.nulls(ips.shape[0], type=E._STR)
    uniq, inv = np.unique(ips, return_inverse=True)
    strings = [".".join(str(x) for x in int(u).to_bytes(4, "big")) if u >= 0 else "" for u in uniq]
    return pa.DictionaryArray.from_arrays(
        pa.array(inv.reshape(-1).astype(np.int32), mask=ips < 0), pa.array(strings)
    )


def _int_rows(sem: Semantics) -> dict[int, Meaning]:
    return {cast(int, k): m for k, m in sem.rows.items()}


def _lut(sem: Semantics) -> np.ndarray:
    lut = np.zeros(256, dtype=np.int32)
    for k, m in _int_rows(sem).items():
        if m.category:
            lut[k] = _CATEGORY_CODE[m.category]
    return lut


_CATEGORY_NAMES = [
    "",
    "read",
    "write",
    "control",
    "program",
    "firmware",
    "diagnostic",
    "discovery",
    "session",
]
_CATEGORY_CODE = {c: i for i, c in enumerate(_CATEGORY_NAMES)}
_CAT_CONFIRMED = _lut(CONFIRMED_SERVICES)
_CAT_UNCONFIRMED = _lut(UNCONFIRMED_SERVICES)
_CAT_NETWORK = _lut(NETWORK_MESSAGES)
_CAT_BVLC = _lut(BVLC_FUNCTIONS)


def _categories(out: np.ndarray) -> pa.Array:
    """By service (confirmed / unconfirmed), else network message, else BVLC function."""
    typ, svc = out[:, APDU_TYPE], out[:, SERVICE]
    codes = np.zeros(out.shape[0], dtype=np.int32)
    has_svc = svc >= 0
    conf = has_svc & (typ != 1)
    codes[conf] = _CAT_CONFIRMED[svc[conf] & 0xFF]
    unc = has_svc & (typ == 1)
    codes[unc] = _CAT_UNCONFIRMED[svc[unc] & 0xFF]
    net = out[:, NET_MSG] >= 0
    codes[net] = _CAT_NETWORK[out[net, NET_MSG] & 0xFF]
    bvll = (out[:, NPDU_VER] < 0) & (out[:, BVLC_FUNC] >= 0)
    codes[bvll] = _CAT_BVLC[out[bvll, BVLC_FUNC] & 0xFF]
    # a restore/backup is program transfer, not a restart
    reinit = out[:, REINIT]
    for k, m in REINIT_STATES.rows.items():
        if m.category:
            codes[reinit == k] = _CATEGORY_CODE[m.category]
    return pa.DictionaryArray.from_arrays(
        pa.array(codes, mask=codes == 0), pa.array(_CATEGORY_NAMES)
    )


def _service_names(out: np.ndarray) -> pa.Array:
    """Confirmed and unconfirmed service names share one column (unconfirmed keyed +256)."""
    typ, svc = out[:, APDU_TYPE], out[:, SERVICE]
    keys = np.where(svc < 0, -1, np.where(typ == 1, 256 + svc, svc))
    return _N_SERVICES(keys)


_N_BVLC_FUNCTIONS = _Names.of(BVLC_FUNCTIONS)
_N_NETWORK_MESSAGES = _Names.of(NETWORK_MESSAGES)
_N_APDU_TYPES = _Names.of(APDU_TYPES)
_N_OBJECT_TYPES = _Names.of(OBJECT_TYPES)
_N_PROPERTIES = _Names.of(PROPERTIES)
_N_SEGMENTATION = _Names.of(SEGMENTATION)
_N_REINIT_STATES = _Names.of(REINIT_STATES)
_N_DCC_STATES = _Names.of(DCC_STATES)
_N_ERROR_CLASSES = _Names.of(ERROR_CLASSES)
_N_ERROR_CODES = _Names.of(ERROR_CODES)
_N_REJECT_REASONS = _Names.of(REJECT_REASONS)
_N_ABORT_REASONS = _Names.of(ABORT_REASONS)
_N_SERVICES = _Names(
    {k: m.name for k, m in _int_rows(CONFIRMED_SERVICES).items()}
    | {256 + k: m.name for k, m in _int_rows(UNCONFIRMED_SERVICES).items()},
    offset=256,
)


def _pair_keys(ctx: ChunkContext, pkt: np.ndarray) -> np.ndarray:
    """Flow id for BACnet/IP; for BACnet/Ethernet a negative key from the two MAC addresses."""
    flow = ctx.track.pkt_flow[pkt].astype(np.int64)
    a = ctx.cols[pkt, L.ETH_SRC]
    b = ctx.cols[pkt, L.ETH_DST]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    mac_key = -1 - (((hi * np.int64(1000003)) ^ lo) & np.int64(0x3FFFFFFFFFFFFFFF))
    return np.where(flow >= 0, flow, mac_key)


@njit(cache=True, nogil=True, _nrt=False)
def _probe_bvlc(buf, cols, udp, lo, hi, ok):
    """BVLC type 0x81, a known function and a length of at least 4 that is the datagram's
    (or any length on the BACnet ports): BACnet/IP by content, one pass."""
    for k in range(udp.shape[0]):
        i = udp[k]
        p = cols[i, L.PAY_OFF]
        ln = (np.int64(buf[p + 2]) << 8) | np.int64(buf[p + 3])
        sp, dp = cols[i, L.SPORT], cols[i, L.DPORT]
        hint = (lo <= sp <= hi) or (lo <= dp <= hi)
        ok[k] = (
            buf[p] == 0x81 and buf[p + 1] <= 0x0C and ln >= 4 and (ln == cols[i, L.SEG_LEN] or hint)
        )


class BacnetDissector(Dissector):
    name = "bacnet"
    tables = {"bacnet": SCHEMA}
    wants_udp = True
    ethertypes = (0,)  # IEEE 802.3 length field: LLC follows
    semantics = (
        BVLC_FUNCTIONS,
        NETWORK_MESSAGES,
        APDU_TYPES,
        CONFIRMED_SERVICES,
        UNCONFIRMED_SERVICES,
        REINIT_STATES,
        DCC_STATES,
        SEGMENTATION,
        ERROR_CLASSES,
        ERROR_CODES,
        REJECT_REASONS,
        ABORT_REASONS,
        OBJECT_TYPES,
        PROPERTIES,
    )

    def __init__(self) -> None:
        self.matcher = RequestMatcher(width=1)

    # -- selecting BACnet messages by content ------------------------------------------------
    @staticmethod
    def select(
        ctx: ChunkContext,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(packet, start, captured end, wire length, link) of every BACnet message."""
        c, buf = ctx.cols, ctx.chunk.buf
        udp = ctx.udp(min_payload=4)
        ok = np.empty(udp.shape[0], np.bool_)
        _probe_bvlc(buf, c, udp, BACNET_PORTS[0], BACNET_PORTS[1], ok)
        ip_pkt = udp[ok]
        ip_start = c[ip_pkt, L.PAY_OFF]
        ip_end = ip_start + c[ip_pkt, L.PAY_LEN]
        ip_wire = c[ip_pkt, L.SEG_LEN]

        llc = ctx.ethertype(0)
        if llc.shape[0]:
            l3 = c[llc, L.L3_OFF]
            cap_end = ctx.chunk.offset[llc] + ctx.chunk.caplen[llc]
            room = (l3 + 4 <= cap_end) & (l3 >= 2)
            llc, l3, cap_end = llc[room], l3[room], cap_end[room]
            is_bac = (buf[l3] == 0x82) & (buf[l3 + 1] == 0x82) & (buf[l3 + 2] == 0x03)
            llc, l3, cap_end = llc[is_bac], l3[is_bac], cap_end[is_bac]
            length = (buf[l3 - 2].astype(np.int64) << 8) | buf[l3 - 1]  # 802.3 length
            frame_end = np.where((length >= 3) & (l3 + length < cap_end), l3 + length, cap_end)
            llc_start = l3 + 3
        else:
            llc_start = frame_end = llc
        pkt = np.concatenate([ip_pkt, llc])
        start = np.concatenate([ip_start, llc_start]).astype(np.int64)
        end = np.concatenate([ip_end, frame_end]).astype(np.int64)
        wire_len = np.concatenate([ip_wire, np.full(llc.shape[0], -1)]).astype(np.int64)
        link = np.concatenate(
            [np.zeros(ip_pkt.shape[0], np.int64), np.ones(llc.shape[0], np.int64)]
        )
        order = np.argsort(pkt, kind="stable")
        return pkt[order], start[order], end[order], wire_len[order], link[order]

    def process(self, ctx: ChunkContext) -> dict[str, pa.RecordBatch]:
        if ctx.cols.shape[0] == 0:
            return {}
        pkt, start, end, wire_len, link = self.select(ctx)
        n = pkt.shape[0]
        if n == 0:
            return {}
        buf = ctx.chunk.buf
        out = np.full((n, NCOL), -1, dtype=np.int64)
        _decode(buf, start, end, wire_len, link, out)
        env = ctx.packet_envelope(pkt)
        typ = out[:, APDU_TYPE]
        has_apdu = typ >= 0

        # pair responses with confirmed requests: (flow, invoke id)
        is_req = typ == 0
        is_resp = (typ == 2) | (typ == 3) | (typ == 5) | (typ == 6)
        is_resp |= (typ == 7) & ((out[:, APDU_FLAGS] & 1) != 0)
        ts = ctx.chunk.ts[pkt]
        frames = ctx.chunk.first_frame + pkt
        rows = np.flatnonzero(is_req | is_resp)
        matched = np.zeros(n, bool)
        req_frame = np.zeros(n, np.int64)
        req_ts = np.zeros(n, np.int64)
        if rows.shape[0]:
            m, rf, rts, rpl = self.matcher.match(
                _pair_keys(ctx, pkt[rows]),
                out[rows, INVOKE],
                is_req[rows],
                frames[rows],
                ts[rows],
                out[rows, SERVICE].reshape(-1, 1),
            )
            svc = out[rows, SERVICE]
            m &= (svc < 0) | (rpl[:, 0] == svc)  # acks and errors name the service
            matched[rows] = m
            req_frame[rows] = rf
            req_ts[rows] = rts

        seg_capable = (typ == 0) | (typ == 3)
        batch = dict(env)
        batch.update(
            {
                "link": pa.DictionaryArray.from_arrays(
                    pa.array(link.astype(np.int32)),
                    pa.array(["bacnet_ip", "bacnet_ethernet"]),
                ),
                "src_mac": mac_array(ctx.cols[pkt, L.ETH_SRC]),
                "dst_mac": mac_array(ctx.cols[pkt, L.ETH_DST]),
                "bvlc_function": _col(out, BVLC_FUNC, np.int16),
                "bvlc_function_name": _N_BVLC_FUNCTIONS(out[:, BVLC_FUNC]),
                "bvlc_length": _col(out, BVLC_LEN, np.int32),
                "forwarded_ip": _ipv4(out[:, FWD_IP]),
                "forwarded_port": _col(out, FWD_PORT, np.int32),
                "npdu_version": _col(out, NPDU_VER, np.int16),
                "npdu_control": _col(out, NPDU_CTRL, np.int16),
                "expecting_reply": pa.array(
                    (out[:, NPDU_CTRL] & 0x04) != 0, mask=out[:, NPDU_CTRL] < 0
                ),
                "priority": pa.array(
                    (out[:, NPDU_CTRL] & 3).astype(np.int16), mask=out[:, NPDU_CTRL] < 0
                ),
                "dnet": _col(out, DNET, np.int32),
                "dadr": _addresses(out[:, DADR], buf),
                "snet": _col(out, SNET, np.int32),
                "sadr": _addresses(out[:, SADR], buf),
                "hop_count": _col(out, HOPS, np.int16),
                "network_message": _col(out, NET_MSG, np.int16),
                "network_message_name": _N_NETWORK_MESSAGES(out[:, NET_MSG]),
                "network_vendor_id": _col(out, NET_VENDOR, np.int32),
                "apdu_type": _col(out, APDU_TYPE, np.int16),
                "apdu_type_name": _N_APDU_TYPES(typ),
                "is_request": pa.array((typ == 0) | (typ == 1), mask=~has_apdu),
                "service_choice": _col(out, SERVICE, np.int16),
                "service_name": _service_names(out),
                "category": _categories(out),
                "invoke_id": _col(out, INVOKE, np.int16),
                "segmented": _flag(out, SEG, seg_capable),
                "more_follows": _flag(out, MOR, seg_capable),
                "segmented_response_accepted": _flag(out, SA, typ == 0),
                "sequence_number": _col(out, SEQ, np.int16),
                "window_size": _col(out, WINDOW, np.int16),
                "max_segments_code": _col(out, MAX_SEGS, np.int16),
                "max_apdu_code": _col(out, MAX_APDU, np.int16),
                "object_type": _col(out, OBJ_TYPE, np.int32),
                "object_type_name": _N_OBJECT_TYPES(out[:, OBJ_TYPE]),
                "object_instance": _col(out, OBJ_INST, np.int32),
                "property_id": _col(out, PROP, np.int32),
                "property_name": _N_PROPERTIES(out[:, PROP]),
                "array_index": _col(out, ARRAY_IDX, np.int64),
                "value": self._values(buf, out),
                "device_instance": _col(out, DEV_INST, np.int32),
                "max_apdu_accepted": _col(out, MAX_APDU_ACC, np.int32),
                "segmentation_supported": _col(out, SEG_SUPP, np.int16),
                "segmentation_supported_name": _N_SEGMENTATION(out[:, SEG_SUPP]),
                "vendor_id": _col(out, VENDOR, np.int32),
                "low_limit": _col(out, LOW, np.int64),
                "high_limit": _col(out, HIGH, np.int64),
                "reinit_state": _col(out, REINIT, np.int16),
                "reinit_state_name": _N_REINIT_STATES(out[:, REINIT]),
                "password_present": pa.array(out[:, PASSWORD] == 1, mask=out[:, PASSWORD] < 0),
                "dcc_duration": _col(out, DCC_DUR, np.int32),
                "dcc_state": _col(out, DCC_STATE, np.int16),
                "dcc_state_name": _N_DCC_STATES(out[:, DCC_STATE]),
                "error_class": _col(out, ERR_CLASS, np.int32),
                "error_class_name": _N_ERROR_CLASSES(out[:, ERR_CLASS]),
                "error_code": _col(out, ERR_CODE, np.int32),
                "error_code_name": _N_ERROR_CODES(out[:, ERR_CODE]),
                "reject_reason": _col(out, REJECT, np.int16),
                "reject_reason_name": _N_REJECT_REASONS(out[:, REJECT]),
                "abort_reason": _col(out, ABORT, np.int16),
                "abort_reason_name": _N_ABORT_REASONS(out[:, ABORT]),
                "abort_by_server": pa.array((out[:, APDU_FLAGS] & 1) != 0, mask=typ != 7),
                **pairing_columns(matched, req_frame, req_ts, ts),
            }
        )
        bad = np.flatnonzero(out[:, STATUS] != OK)
        if bad.shape[0]:
            ctx.weird(
                take_envelope(env, bad),
                [WEIRD[int(s)] for s in out[bad, STATUS]],
                [_detail(out[k], int(end[k] - start[k])) for k in bad],
                "bacnet",
            )
        return {"bacnet": pa.RecordBatch.from_pydict(batch, schema=SCHEMA)}

    @staticmethod
    def _values(buf: np.ndarray, out: np.ndarray) -> pa.Array:
        prop = out[:, PROP]
        rows = np.flatnonzero((out[:, VAL_OFF] >= 0) & np.isin(prop, list(IDENTITY_PROPERTIES)))
        values: list[str | None] = [None] * out.shape[0]
        for k in rows:
            lo, hi = int(out[k, VAL_OFF]), int(out[k, VAL_END])
            values[int(k)] = decode_value(bytes(buf[lo:hi]))
        return pa.array(values, type=pa.string())


def _detail(row: np.ndarray, length: int) -> str:
    parts = [f"{length} bytes"]
    if row[BVLC_FUNC] >= 0:
        parts.append(f"bvlc function {int(row[BVLC_FUNC])}, length field {int(row[BVLC_LEN])}")
    if row[APDU_TYPE] >= 0:
        parts.append(f"apdu type {int(row[APDU_TYPE])}")
    if row[SERVICE] >= 0:
        parts.append(f"service {int(row[SERVICE])}")
    return ", ".join(parts)


DISSECTOR = BacnetDissector
