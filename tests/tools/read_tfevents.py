#!/usr/bin/python3
"""An independent reader of TensorBoard event files, for tests: shares no code with strun.

Parses TFRecord framing (uint64 length, masked CRC-32C of the length, data, masked CRC-32C of the
data), checks both CRCs with its own CRC-32C, and decodes the Event protobuf with its own wire
format decoder and TensorFlow's field numbers (event.proto, summary.proto: Event.wall_time 1,
step 2, file_version 3, summary 5, session_log 7; Summary.value 1; Value.tag 1, simple_value 2,
tensor 8, metadata 9; SummaryMetadata.plugin_data 1; PluginData.plugin_name 1; TensorProto.dtype 1,
string_val 8; SessionLog.status 1).

    read_tfevents.py FILE_OR_DIR...   prints a JSON list of {"file", "events": [...]} on stdout
An event is {"wall_time", "step"} plus one of "file_version", "scalars" {tag: value},
"texts" {tag: text} (plugin "text", DT_STRING), "session_log" (status number).
Exits 1 naming the file and offset of the first damaged record.
"""
import json
import os
import struct
import sys


def _crc32c_table():
    table = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for byte in data:
        c = (c >> 8) ^ _TABLE[(c ^ byte) & 0xFF]
    return c ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, pos):
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf):
    """(field number, wire type, value) of a message: ints for varints, bytes otherwise."""
    pos, out = 0, []
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError("wire type %d" % wire)
        out.append((number, wire, value))
    return out


def signed64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def decode_value(buf, event):
    tag, simple, plugin, strings = None, None, None, []
    for number, _, value in fields(buf):
        if number == 1:
            tag = value.decode()
        elif number == 2:
            simple = struct.unpack("<f", value)[0]
        elif number == 8:  # TensorProto
            for n, _, v in fields(value):
                if n == 8:
                    strings.append(v.decode())
        elif number == 9:  # SummaryMetadata
            for n, _, v in fields(value):
                if n == 1:
                    for m, _, w in fields(v):
                        if m == 1:
                            plugin = w.decode()
    if simple is not None:
        event.setdefault("scalars", {})[tag] = simple
    elif plugin == "text":
        event.setdefault("texts", {})[tag] = strings[0] if len(strings) == 1 else strings


def decode_event(buf):
    event = {"wall_time": 0.0, "step": 0}
    for number, _, value in fields(buf):
        if number == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2:
            event["step"] = signed64(value)
        elif number == 3:
            event["file_version"] = value.decode()
        elif number == 5:
            for n, _, v in fields(value):
                if n == 1:
                    decode_value(v, event)
        elif number == 7:
            event["session_log"] = dict((n, v) for n, _, v in fields(value)).get(1, 0)
    return event


def read_file(path):
    with open(path, "rb") as f:
        data = f.read()
    pos, events = 0, []
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError("%s: offset %d: truncated record header" % (path, pos))
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked(crc32c(header)) != length_crc:
            raise ValueError("%s: offset %d: length CRC mismatch" % (path, pos))
        body = data[pos + 12:pos + 12 + length]
        if len(body) != length or pos + 16 + length > len(data):
            raise ValueError("%s: offset %d: truncated record" % (path, pos))
        (data_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if masked(crc32c(body)) != data_crc:
            raise ValueError("%s: offset %d: data CRC mismatch" % (path, pos))
        events.append(decode_event(body))
        pos += 16 + length
    return events


def event_files(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in sorted(os.walk(p)):
                for n in sorted(names):
                    if "tfevents" in n:
                        yield os.path.join(root, n)
        else:
            yield p


def main(argv):
    out = []
    try:
        for path in event_files(argv[1:]):
            out.append({"file": path, "events": read_file(path)})
    except (ValueError, IndexError, UnicodeDecodeError, struct.error) as e:
        print("read_tfevents: %s" % e, file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
